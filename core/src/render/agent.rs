//! The template context of the VIP agent (DaemonSet, ServiceAccount, RBAC), built
//! from the VirtualIPAddress gateways of a catalog.

use std::collections::BTreeMap;

use serde::Serialize;

use super::options::RenderOptions;
use super::provenance;
use crate::model::catalog::Gateway;

/// Name of the agent's DaemonSet, ServiceAccount, roles and bindings.
pub const AGENT_NAME: &str = "egressc-agent";
/// `app.kubernetes.io/name` of the agent Pods: `sync` finds them by this label (with
/// [`AGENT_COMPONENT`]) to learn per-node agent readiness.
pub const AGENT_APP_NAME: &str = "egressc";
/// `app.kubernetes.io/component` of the agent Pods.
pub const AGENT_COMPONENT: &str = "vip-agent";
/// Port of the agent's `/healthz` and `/readyz` on the node's network (hostNetwork). Chosen
/// outside the ports Kubernetes, Cilium and common node agents use (9879/9890/9962-9965 for
/// Cilium, 10248-10259 for Kubernetes, 9100 for node-exporter).
pub const AGENT_HEALTH_PORT: u16 = 9478;

/// Context shared by every agent template.
#[derive(Serialize, Debug)]
pub struct AgentContext {
    /// Name of all the agent's objects.
    pub name: &'static str,
    /// The agent namespace.
    pub namespace: String,
    /// Labels of the Namespace (Pod Security level).
    pub namespace_labels: BTreeMap<String, String>,
    /// The agent image.
    pub image: String,
    /// Labels of every agent object and of its Pods.
    pub labels: BTreeMap<String, String>,
    /// The DaemonSet's Pod selector (a stable subset of `labels`).
    pub selector_labels: BTreeMap<String, String>,
    /// Health and readiness port.
    pub health_port: u16,
    /// PriorityClass, if any.
    pub priority_class: Option<String>,
    /// Node affinity: one term per distinct node selector of the VIP gateways; `None` when one
    /// of them selects every node (an empty term would match no node).
    pub node_affinity_terms: Option<Vec<Vec<Requirement>>>,
}

/// `key In [values]` of a node selector term.
#[derive(Serialize, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Requirement {
    /// Label key.
    pub key: String,
    /// Accepted values (one, from a gateway's `nodeSelector`).
    pub values: Vec<String>,
}

/// The agent context, or `None` when no gateway is in VirtualIPAddress mode (no agent needed).
pub fn context<'a>(
    gateways: impl IntoIterator<Item = &'a Gateway>,
    options: &RenderOptions,
) -> Option<AgentContext> {
    let vip_gateways: Vec<&Gateway> = gateways
        .into_iter()
        .filter(|g| g.needs_vip_agent())
        .collect();
    if vip_gateways.is_empty() {
        return None;
    }
    let selector_labels = selector_labels();
    let mut labels = provenance::managed_by();
    labels.extend(selector_labels.clone());
    Some(AgentContext {
        name: AGENT_NAME,
        namespace: options.agent_namespace.clone(),
        namespace_labels: namespace_labels(),
        image: options.agent_image.clone(),
        labels,
        selector_labels,
        health_port: AGENT_HEALTH_PORT,
        priority_class: options.agent_priority_class.clone(),
        node_affinity_terms: affinity_terms(&vip_gateways),
    })
}

/// The agent Pods' selector labels.
fn selector_labels() -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/name".to_string(),
            AGENT_APP_NAME.to_string(),
        ),
        (
            "app.kubernetes.io/component".to_string(),
            AGENT_COMPONENT.to_string(),
        ),
    ])
}

/// Labels of the namespace the controller and the VIP agent share. Only `egressc install`
/// renders it (its one owner); `build` leaves it out. The agent needs `privileged`.
pub(super) fn namespace_labels() -> BTreeMap<String, String> {
    let mut labels = provenance::managed_by();
    labels.extend(selector_labels());
    labels.insert(
        "pod-security.kubernetes.io/enforce".to_string(),
        "privileged".to_string(),
    );
    labels
}

/// One term per distinct gateway node selector, sorted, so that input order does not matter.
fn affinity_terms(gateways: &[&Gateway]) -> Option<Vec<Vec<Requirement>>> {
    let mut terms = Vec::with_capacity(gateways.len());
    for gateway in gateways {
        if gateway.node_selector.is_empty() {
            return None;
        }
        let term: Vec<Requirement> = gateway
            .node_selector
            .iter()
            .map(|(key, value)| Requirement {
                key: key.clone(),
                values: vec![value.clone()],
            })
            .collect();
        terms.push(term);
    }
    terms.sort();
    terms.dedup();
    Some(terms)
}
