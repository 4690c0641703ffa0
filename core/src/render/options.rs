//! What the user chooses about the output: the targeted Cilium version and how the VIP agent is
//! deployed.

pub use crate::model::cilium::CiliumVersion;

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
