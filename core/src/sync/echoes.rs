//! Label patches answered by the API server whose echo (the watch event showing the new labels)
//! has not been indexed yet. The core plans a node's label patch until it sees the echo (its
//! plans are level-based), so without this every step after a start re-sent thousands of
//! answered patches while their echoes were still arriving, and a new failover's patches waited
//! behind them (BENCHMARKS.md, issue 17 session 4: a 1,542.7 ms reaction). A patch is skipped
//! only while it equals the one answered and no event of that object has been indexed since;
//! any event of the object, a relist or a watch failure forgets it.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use serde_json::Value;

use super::index::{Object, Source, WatchEvent};
use crate::controller::{LabelPatch, NodeKind};

/// See the module docs.
#[derive(Clone, Debug, Default)]
pub struct AwaitedEchoes {
    /// Object → a 64-bit hash of the patch answered (not a copy: after a start there are
    /// 10,000 of them at once, each a few maps).
    answered: HashMap<(NodeKind, String), u64>,
}

/// The patch's labels to set and remove, hashed (SipHash with fixed keys).
fn digest(patch: &LabelPatch) -> u64 {
    let mut hasher = DefaultHasher::new();
    patch.set.hash(&mut hasher);
    patch.remove.hash(&mut hasher);
    hasher.finish()
}

impl AwaitedEchoes {
    /// Was this patch answered, with no event of its object indexed since?
    pub fn awaiting(&self, patch: &LabelPatch) -> bool {
        self.answered.get(&(patch.kind, patch.node.clone())) == Some(&digest(patch))
    }

    /// `patch` was answered with success.
    pub fn answered(&mut self, patch: &LabelPatch) {
        self.answered
            .insert((patch.kind, patch.node.clone()), digest(patch));
    }

    /// Called with every watch event before it is indexed.
    pub fn observe(&mut self, event: &WatchEvent) {
        match event {
            WatchEvent::Apply(object) | WatchEvent::Delete(object) => match object {
                Object::Node(node) => {
                    if let Some(name) = &node.metadata.name {
                        self.answered.remove(&(NodeKind::Node, name.clone()));
                    }
                }
                Object::CiliumNode(value) => {
                    if let Some(name) = value.pointer("/metadata/name").and_then(Value::as_str) {
                        self.answered
                            .remove(&(NodeKind::CiliumNode, name.to_owned()));
                    }
                }
                Object::NodeLease(_)
                | Object::CiliumPod(_)
                | Object::VipPod(_)
                | Object::VipLease(_)
                | Object::Gateway(_)
                | Object::Policy(_)
                | Object::Cegp(_) => {}
            },
            WatchEvent::Init(source)
            | WatchEvent::InitDone(source)
            | WatchEvent::Failed(source) => {
                let kind = match source {
                    Source::Node => NodeKind::Node,
                    Source::CiliumNode => NodeKind::CiliumNode,
                    Source::NodeLease
                    | Source::CiliumPod
                    | Source::VipPod
                    | Source::VipLease
                    | Source::Gateway
                    | Source::Policy
                    | Source::Cegp => return,
                };
                self.answered.retain(|(k, _), _| *k != kind);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patch(kind: NodeKind, node: &str, value: &str) -> LabelPatch {
        LabelPatch {
            kind,
            node: node.to_owned(),
            set: [(
                "egress-gateway.network.deckhouse.io/member".to_owned(),
                value.to_owned(),
            )]
            .into_iter()
            .collect(),
            remove: Default::default(),
        }
    }

    fn node_event(name: &str) -> WatchEvent {
        WatchEvent::Apply(Object::Node(Box::new(
            serde_json::from_value(json!({"metadata": {"name": name}})).expect("node"),
        )))
    }

    #[test]
    fn an_answered_patch_is_awaited_until_an_event_of_its_object() {
        let mut echoes = AwaitedEchoes::default();
        let p = patch(NodeKind::Node, "n1", "a");
        assert!(!echoes.awaiting(&p));
        echoes.answered(&p);
        assert!(echoes.awaiting(&p));
        // Another patch of the same node, or the same patch of the CiliumNode, is news.
        assert!(!echoes.awaiting(&patch(NodeKind::Node, "n1", "b")));
        assert!(!echoes.awaiting(&patch(NodeKind::CiliumNode, "n1", "a")));
        // Events of other objects change nothing.
        echoes.observe(&node_event("n2"));
        echoes.observe(&WatchEvent::Init(Source::Gateway));
        assert!(echoes.awaiting(&p));
        // The echo (or any event of n1) ends the wait: a plan after it is sent again.
        echoes.observe(&node_event("n1"));
        assert!(!echoes.awaiting(&p));
    }

    #[test]
    fn a_relist_or_failure_of_the_watch_forgets_its_kind() {
        let mut echoes = AwaitedEchoes::default();
        let node = patch(NodeKind::Node, "n1", "a");
        let cilium = patch(NodeKind::CiliumNode, "n1", "a");
        echoes.answered(&node);
        echoes.answered(&cilium);
        echoes.observe(&WatchEvent::Failed(Source::Node));
        assert!(!echoes.awaiting(&node));
        assert!(echoes.awaiting(&cilium));
        echoes.observe(&WatchEvent::Apply(Object::CiliumNode(
            json!({"metadata": {"name": "n1"}}),
        )));
        assert!(!echoes.awaiting(&cilium));
    }
}
