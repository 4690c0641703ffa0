//! The template context of one CiliumEgressGatewayPolicy, built from a validated policy and its
//! gateway. This is where the Cilium-version rules are applied; the template only lays out YAML.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::Serialize;

use super::error::RenderError;
use super::options::CiliumVersion;
use super::provenance;
use crate::model::catalog::{Gateway, Policy, SourceIp};
use crate::model::labels::active_for_label;

/// Context of `cegp.yaml.j2`.
#[derive(Serialize, Debug)]
pub struct CegpContext {
    /// `metadata.name` (the policy name).
    pub name: String,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// `spec.selectors[].podSelector`, copied from the policy.
    pub selectors: Vec<SelectorContext>,
    /// `spec.destinationCIDRs`.
    pub destination_cidrs: Vec<String>,
    /// `spec.excludedCIDRs`; the template omits the field when empty.
    pub excluded_cidrs: Vec<String>,
    /// `spec.egressGateway`.
    pub gateway: GatewayContext,
}

/// One pod selector, with empty parts left out by the template.
#[derive(Serialize, Debug)]
pub struct SelectorContext {
    /// `matchLabels`.
    pub match_labels: BTreeMap<String, String>,
    /// `matchExpressions`.
    pub match_expressions: Vec<ExpressionContext>,
}

/// One `matchExpressions` entry.
#[derive(Serialize, Debug)]
pub struct ExpressionContext {
    /// `key`.
    pub key: String,
    /// `operator`.
    pub operator: String,
    /// `values`; the template omits the field when empty (Exists/DoesNotExist).
    pub values: Vec<String>,
}

/// `spec.egressGateway`: a node selector on the active-for label and exactly one of
/// `interface`/`egressIP` (Cilium ignores a policy that sets both).
#[derive(Serialize, Debug)]
pub struct GatewayContext {
    /// The gateway name.
    pub name: String,
    /// The node label key whose carrier is the active node (`nodeSelector.matchLabels`, value "").
    pub active_label: String,
    /// `interface` in PrimaryIP mode.
    pub interface: Option<String>,
    /// `egressIP` in VirtualIP mode.
    pub egress_ip: Option<String>,
}

/// The context for `policy` through `gateway`, or why Cilium `version` cannot express it.
pub fn context(
    policy: &Policy,
    gateway: &Gateway,
    version: CiliumVersion,
) -> Result<CegpContext, RenderError> {
    let object = || format!("EgressGatewayPolicy/{}", policy.name);
    let unsupported = |detail: String| RenderError::UnsupportedByCilium {
        object: object(),
        detail,
        minor: version.minor(),
    };
    if !version.supports_ipv6_destinations()
        && let Some(v6) = policy
            .destinations
            .iter()
            .chain(&policy.excluded)
            .find(|net| matches!(net, IpNet::V6(_)))
    {
        return Err(unsupported(format!("IPv6 CIDR {v6}")));
    }
    let (interface, egress_ip) = match &gateway.source {
        SourceIp::PrimaryInterface { interface } => (Some(interface.clone()), None),
        SourceIp::VirtualIp { ip, .. } => {
            if matches!(ip, IpAddr::V6(_)) && !version.supports_ipv6_egress_ip() {
                return Err(unsupported(format!(
                    "IPv6 egress IP {ip} of EgressGateway/{}",
                    gateway.name
                )));
            }
            (None, Some(ip.to_string()))
        }
    };
    Ok(CegpContext {
        name: policy.name.clone(),
        labels: provenance::for_policy(&policy.name, &gateway.name),
        selectors: policy.selectors.iter().map(selector).collect(),
        destination_cidrs: policy.destinations.iter().map(cidr_text).collect(),
        excluded_cidrs: policy.excluded.iter().map(cidr_text).collect(),
        gateway: GatewayContext {
            name: gateway.name.clone(),
            active_label: active_for_label(&gateway.name),
            interface,
            egress_ip,
        },
    })
}

/// A CIDR as Cilium's CRD accepts it. Cilium's IPv6 pattern lost its backslashes (`d` for
/// `\d`), so the embedded-IPv4 form std prints for IPv4-mapped networks
/// (`::ffff:192.0.2.0/120`) never matches; the same network in plain hex groups
/// (`::ffff:c000:200/120`) does, and means the same to Cilium's parser.
fn cidr_text(net: &IpNet) -> String {
    match net {
        IpNet::V6(v6) if v6.addr().to_ipv4_mapped().is_some() => {
            let [.., high, low] = v6.addr().segments();
            format!("::ffff:{high:x}:{low:x}/{}", v6.prefix_len())
        }
        _ => net.to_string(),
    }
}

fn selector(selector: &LabelSelector) -> SelectorContext {
    SelectorContext {
        match_labels: selector.match_labels.clone().unwrap_or_default(),
        match_expressions: selector
            .match_expressions
            .iter()
            .flatten()
            .map(|req| ExpressionContext {
                key: req.key.clone(),
                operator: req.operator.clone(),
                values: req.values.clone().unwrap_or_default(),
            })
            .collect(),
    }
}
