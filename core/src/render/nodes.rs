//! Partial Node objects carrying the labels the election decided: `active-for-<gateway>` on each
//! gateway's active node and `member` on every eligible node. Meant for server-side apply, where
//! the applier owns exactly the labels it sends and the API server removes the ones it stops
//! sending.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::elect::Election;
use crate::model::catalog::Catalog;
use crate::model::labels::{MEMBER_LABEL, active_for_label, is_egressc_node_label};

/// Argo CD per-resource sync options of every partial Node: apply it server-side (so only the
/// sent labels are owned), and never prune or delete it, since that would delete the Node itself.
pub const ARGOCD_SYNC_OPTIONS: (&str, &str) = (
    "argocd.argoproj.io/sync-options",
    "ServerSideApply=true,Prune=false,Delete=false",
);

/// Context of `node.yaml.j2`.
#[derive(Serialize, Debug)]
pub struct NodeContext {
    /// `metadata.name`.
    pub name: String,
    /// The egressc labels this node must carry (possibly none).
    pub labels: BTreeMap<String, String>,
    /// `metadata.annotations`.
    pub annotations: BTreeMap<String, String>,
}

/// One context per inventory node that egressc has a say about: nodes that get a label, nodes
/// of any gateway's group, and nodes that already carry an egressc label. The latter two are
/// rendered even with no labels so that applying the stream removes stale labels (a stale
/// `active-for-` label would make Cilium send traffic to a node that lost the role). Nodes
/// outside the inventory are never rendered: applying a partial Node would create it.
pub fn contexts(catalog: &Catalog, election: &Election) -> Vec<NodeContext> {
    let mut active: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut members: BTreeSet<&str> = BTreeSet::new();
    for gateway in &catalog.gateways {
        let Some(result) = election.gateways.get(&gateway.name) else {
            continue;
        };
        if let Some(node) = &result.active {
            active.entry(node).or_default().push(&gateway.name);
        }
        members.extend(result.ready_nodes.iter().map(String::as_str));
    }
    let mut contexts: Vec<NodeContext> = catalog
        .nodes
        .iter()
        .filter_map(|node| {
            let mut labels = BTreeMap::new();
            for gateway in active.get(node.name.as_str()).into_iter().flatten() {
                labels.insert(active_for_label(gateway), String::new());
            }
            if members.contains(node.name.as_str()) {
                labels.insert(MEMBER_LABEL.to_string(), String::new());
            }
            let relevant = !labels.is_empty()
                || catalog.gateways.iter().any(|g| g.selects(&node.labels))
                || node.labels.keys().any(|k| is_egressc_node_label(k));
            relevant.then(|| NodeContext {
                name: node.name.clone(),
                labels,
                annotations: BTreeMap::from([(
                    ARGOCD_SYNC_OPTIONS.0.to_string(),
                    ARGOCD_SYNC_OPTIONS.1.to_string(),
                )]),
            })
        })
        .collect();
    contexts.sort_by(|a, b| a.name.cmp(&b.name));
    contexts.dedup_by(|a, b| a.name == b.name);
    contexts
}
