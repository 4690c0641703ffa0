//! Desired egressc labels on Node and CiliumNode objects, diffed against what is observed. Only
//! egressc's own keys (`member` and `active-for-…`) are ever set or removed.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::health::NodeHealth;
use super::plan::{LabelKeys, LabelPatch, LabelSet, NodeKind};
use crate::elect::Elector;
use crate::model::labels::{
    MEMBER_LABEL, active_for_label, is_active_for_label, is_egressc_node_label,
};

/// Label patches turning the observed labels of the `relabel` nodes into the desired ones:
/// `active-for-<g>` on the target node of each gateway (`targeted`: node → gateways),
/// `member` on every node eligible for some gateway. Patches that remove an `active-for-…`
/// label come first.
pub(super) fn patches(
    relabel: &BTreeSet<String>,
    nodes: &BTreeMap<String, NodeHealth>,
    cilium_nodes: &BTreeMap<String, BTreeMap<String, String>>,
    targeted: &HashMap<String, BTreeSet<String>>,
    elector: &Elector,
) -> Vec<LabelPatch> {
    let empty = BTreeSet::new();
    let mut out = Vec::new();
    for name in relabel {
        let node = nodes.get(name).and_then(|h| h.node.as_ref());
        let cilium = cilium_nodes.get(name);
        if node.is_none() && cilium.is_none() {
            continue;
        }
        let want = match node {
            // A dead node's CiliumNode may outlive its Node; its labels are cleared too.
            None => empty.clone(),
            Some(_) => {
                let mut want: BTreeSet<String> = targeted
                    .get(name)
                    .into_iter()
                    .flatten()
                    .map(|gateway| active_for_label(gateway))
                    .collect();
                if elector.is_member(name) {
                    want.insert(MEMBER_LABEL.to_owned());
                }
                want
            }
        };
        if let Some(node) = node {
            out.extend(diff(NodeKind::Node, name, &node.labels, &want));
        }
        if let Some(labels) = cilium {
            out.extend(diff(NodeKind::CiliumNode, name, labels, &want));
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
    let set: LabelSet = want
        .iter()
        .filter(|key| observed.get(*key).is_none_or(|value| !value.is_empty()))
        .map(|key| (key.clone(), String::new()))
        .collect();
    let remove: LabelKeys = observed
        .keys()
        .filter(|k| is_egressc_node_label(k) && !want.contains(*k))
        .cloned()
        .collect();
    (!set.is_empty() || !remove.is_empty()).then(|| LabelPatch {
        kind,
        node: node.to_owned(),
        set,
        remove,
    })
}
