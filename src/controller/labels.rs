//! Desired egressc labels on Node and CiliumNode objects, diffed against what is observed. Only
//! egressc's own keys (`member` and `active-for-…`) are ever set or removed.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::health::NodeHealth;
use super::plan::{LabelPatch, NodeKind};
use crate::elect::Election;
use crate::model::labels::{MEMBER_LABEL, active_for_label, is_active_for_label};

/// `active-for-…` label key → nodes carrying it (sorted), from the observed Node objects.
pub(super) fn observed_holders(
    nodes: &BTreeMap<String, NodeHealth>,
) -> HashMap<String, Vec<String>> {
    let mut holders: HashMap<String, Vec<String>> = HashMap::new();
    for (name, health) in nodes {
        let Some(node) = &health.node else { continue };
        for key in node.labels.keys().filter(|k| is_active_for_label(k)) {
            holders.entry(key.clone()).or_default().push(name.clone());
        }
    }
    holders
}

/// Label patches turning the observed labels into the desired ones: `active-for-<g>` on the
/// target node of each gateway, `member` on every node eligible for some gateway. Patches that
/// remove an `active-for-…` label come first.
pub(super) fn patches(
    nodes: &BTreeMap<String, NodeHealth>,
    cilium_nodes: &BTreeMap<String, BTreeMap<String, String>>,
    targets: &BTreeMap<String, Option<String>>,
    election: &Election,
) -> Vec<LabelPatch> {
    let mut desired: HashMap<&str, BTreeSet<String>> = HashMap::new();
    for (gateway, target) in targets {
        if let Some(node) = target {
            desired
                .entry(node.as_str())
                .or_default()
                .insert(active_for_label(gateway));
        }
    }
    // Gateways sharing a selector share their ready nodes (hundreds each): collect the member
    // nodes as borrowed names first, then allocate the label once per node, not per pair.
    let members: HashSet<&str> = election
        .gateways
        .values()
        .flat_map(|result| result.ready_nodes.iter().map(String::as_str))
        .collect();
    for node in members {
        desired
            .entry(node)
            .or_default()
            .insert(MEMBER_LABEL.to_owned());
    }
    let empty = BTreeSet::new();
    let mut out = Vec::new();
    for (name, health) in nodes {
        let Some(node) = &health.node else { continue };
        let want = desired.get(name.as_str()).unwrap_or(&empty);
        out.extend(diff(NodeKind::Node, name, &node.labels, want));
        if let Some(labels) = cilium_nodes.get(name) {
            out.extend(diff(NodeKind::CiliumNode, name, labels, want));
        }
    }
    // A dead node's CiliumNode may outlive its Node; clear its labels too.
    for (name, labels) in cilium_nodes {
        if nodes.get(name).is_none_or(|h| h.node.is_none()) {
            out.extend(diff(NodeKind::CiliumNode, name, labels, &empty));
        }
    }
    out.sort_by_key(|patch| !patch.remove.iter().any(|k| is_active_for_label(k)));
    out
}

fn diff(
    kind: NodeKind,
    node: &str,
    observed: &BTreeMap<String, String>,
    want: &BTreeSet<String>,
) -> Option<LabelPatch> {
    let ours = |key: &str| key == MEMBER_LABEL || is_active_for_label(key);
    let set: BTreeMap<String, String> = want
        .iter()
        .filter(|key| observed.get(*key).is_none_or(|value| !value.is_empty()))
        .map(|key| (key.clone(), String::new()))
        .collect();
    let remove: BTreeSet<String> = observed
        .keys()
        .filter(|k| ours(k) && !want.contains(*k))
        .cloned()
        .collect();
    (!set.is_empty() || !remove.is_empty()).then(|| LabelPatch {
        kind,
        node: node.to_owned(),
        set,
        remove,
    })
}
