//! What the user chooses about the output: the targeted Cilium version and how the VIP agent is
//! deployed.

use std::fmt;
use std::str::FromStr;

use super::error::RenderError;

/// The Cilium minor version the output must be valid for (1.17 to 1.20).
///
/// What differs between them for egressc: the CiliumEgressGatewayPolicy CRD of 1.17 accepts only
/// IPv4 `destinationCIDRs`/`excludedCIDRs`; 1.19 accepts IPv6 too. `egressIP` is `format: ipv4`
/// in every CRD checked (1.17.6, 1.19.0), so an IPv6 VIP cannot be expressed. 1.18 is treated
/// like 1.17 (IPv4 only) because its CRD was not checked; 1.20 like 1.19.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CiliumVersion {
    minor: u8,
}

impl CiliumVersion {
    /// Oldest supported minor version.
    pub const MIN_MINOR: u8 = 17;
    /// Newest supported minor version.
    pub const MAX_MINOR: u8 = 20;

    /// Cilium `1.<minor>`.
    pub fn new(minor: u8) -> Result<Self, RenderError> {
        if (Self::MIN_MINOR..=Self::MAX_MINOR).contains(&minor) {
            Ok(CiliumVersion { minor })
        } else {
            Err(RenderError::InvalidOption(format!(
                "Cilium 1.{minor} is not supported (1.{} to 1.{})",
                Self::MIN_MINOR,
                Self::MAX_MINOR
            )))
        }
    }

    /// The minor version number.
    pub fn minor(self) -> u8 {
        self.minor
    }

    /// Does the CEGP CRD accept IPv6 destination and excluded CIDRs?
    pub fn supports_ipv6_cidrs(self) -> bool {
        self.minor >= 19
    }

    /// Does the CEGP CRD accept an IPv6 `egressIP`?
    pub fn supports_ipv6_egress_ip(self) -> bool {
        false
    }
}

impl Default for CiliumVersion {
    /// The newest version whose CRD egressc is tested against (1.19).
    fn default() -> Self {
        CiliumVersion { minor: 19 }
    }
}

impl fmt::Display for CiliumVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "1.{}", self.minor)
    }
}

impl FromStr for CiliumVersion {
    type Err = RenderError;

    /// Accepts `1.19`, `1.19.0` and `v1.19.0`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid =
            || RenderError::InvalidOption(format!("`{s}` is not a Cilium version like 1.19"));
        let mut parts = s.strip_prefix('v').unwrap_or(s).split('.');
        if parts.next() != Some("1") {
            return Err(invalid());
        }
        let minor = parts
            .next()
            .and_then(|m| m.parse::<u8>().ok())
            .ok_or_else(invalid)?;
        match parts.next() {
            Some(patch) if patch.parse::<u32>().is_err() => return Err(invalid()),
            _ if parts.next().is_some() => return Err(invalid()),
            _ => {}
        }
        CiliumVersion::new(minor)
    }
}

/// Default namespace of the VIP agent: its own, because the agent needs the `privileged` Pod
/// Security level (hostNetwork, NET_ADMIN) and labelling `kube-system` for that is not ours to do.
pub const DEFAULT_AGENT_NAMESPACE: &str = "egressc-system";

/// Options of one render.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderOptions {
    /// The Cilium version the CiliumEgressGatewayPolicies must be valid for.
    pub cilium: CiliumVersion,
    /// Image of the VIP agent (runs `egressc agent`).
    pub agent_image: String,
    /// Namespace of the VIP agent, its ServiceAccount, Role and Leases. A Namespace object is
    /// rendered too unless it is `default` or `kube-*`.
    pub agent_namespace: String,
    /// PriorityClass of the agent Pods (`None`: none). The default `system-node-critical` keeps
    /// the VIP holder from being evicted before ordinary workloads.
    pub agent_priority_class: Option<String>,
    /// Render partial Node objects carrying the election's labels (needs a node inventory).
    pub include_node_labels: bool,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            cilium: CiliumVersion::default(),
            agent_image: format!("egressc:{}", env!("CARGO_PKG_VERSION")),
            agent_namespace: DEFAULT_AGENT_NAMESPACE.to_string(),
            agent_priority_class: Some("system-node-critical".to_string()),
            include_node_labels: false,
        }
    }
}

impl RenderOptions {
    /// Is the agent namespace one egressc should create (not `default` or a `kube-*` one)?
    pub fn renders_namespace(&self) -> bool {
        self.agent_namespace != "default" && !self.agent_namespace.starts_with("kube-")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions_in_range_only() {
        assert_eq!("1.19".parse::<CiliumVersion>().unwrap().minor(), 19);
        assert_eq!("v1.17.6".parse::<CiliumVersion>().unwrap().minor(), 17);
        for bad in ["1.16", "1.21", "2.19", "1", "1.x", "1.19.x", "1.19.0.1", ""] {
            assert!(bad.parse::<CiliumVersion>().is_err(), "{bad}");
        }
    }
}
