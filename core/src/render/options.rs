//! What the user chooses about the output: the targeted Cilium version and how the VIP agent is
//! deployed.

pub use crate::model::cilium::CiliumVersion;

/// Default namespace of the VIP agent: its own, because the agent needs the `privileged` Pod
/// Security level (hostNetwork, NET_ADMIN) and labelling `kube-system` for that is not ours to do.
pub const DEFAULT_AGENT_NAMESPACE: &str = "egressc-system";

/// Repository part of the one documented default image reference, `egressc:<version>`: the tag
/// `docker build -t egressc:<version> .` gives the image of `Dockerfile`. Every default (the
/// controller of `install`, the Helm chart, the Kustomize base, the VIP agent of `build`, the
/// Argo CD sidecar) uses it, and a cluster can pull it only where it was loaded by hand (kind,
/// minikube), so egressc warns (W030) when it would be rendered unchanged.
pub const DEFAULT_IMAGE_REPOSITORY: &str = "egressc";

/// The default image reference: [`DEFAULT_IMAGE_REPOSITORY`]`:<version of this binary>`.
pub fn default_image() -> String {
    format!("{DEFAULT_IMAGE_REPOSITORY}:{}", env!("CARGO_PKG_VERSION"))
}

/// Options of one render.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderOptions {
    /// The Cilium version the CiliumEgressGatewayPolicies must be valid for.
    pub cilium: CiliumVersion,
    /// Image of the VIP agent (runs `egressc agent`).
    pub agent_image: String,
    /// Namespace of the VIP agent, its ServiceAccount, Role and Leases. Its Namespace object
    /// belongs to the controller's install (`egressc install --namespace` the same).
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
            agent_image: default_image(),
            agent_namespace: DEFAULT_AGENT_NAMESPACE.to_string(),
            agent_priority_class: Some("system-node-critical".to_string()),
            include_node_labels: false,
        }
    }
}
