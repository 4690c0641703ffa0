//! What one reconcile asks the shell to do, as data. The plan is level-based: a write appears
//! again in every plan until its effect is observed, and VIP Lease writes carry the
//! `resourceVersion` they are conditioned on, so repeating one is harmless.

use std::time::Duration;

use serde::ser::{Serialize, SerializeMap, Serializer};

use super::health::HealthReason;
use super::status::StatusUpdate;
use super::time::Instant;

/// Everything to write after one reconcile. Apply `labels` in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Label patches. Patches that remove an `active-for-…` label come first, so that Cilium
    /// never sees two nodes carrying the same gateway.
    pub labels: Vec<LabelPatch>,
    /// VIP Lease writes (docs/lease-protocol.md).
    pub vip: Vec<VipWrite>,
    /// Gateway status patches, only for gateways whose status differs from the observed one.
    pub statuses: Vec<StatusUpdate>,
    /// Events to emit on gateways.
    pub events: Vec<Event>,
    /// For each label move made in this plan away from a node whose health changed: the time
    /// from observing that health change to this decision (export as a histogram).
    pub decision_latencies: Vec<DecisionLatency>,
    /// Heartbeat disruption mode was entered or left since the last plan (for the log).
    pub disruption: Option<super::gaps::DisruptionChange>,
    /// When time alone will change the outcome (heartbeat expiry, settle end, VIP holder
    /// death): reconcile again then even without new observations.
    pub next_wakeup: Option<Instant>,
}

impl Plan {
    /// True when there is nothing to write.
    pub fn has_no_writes(&self) -> bool {
        self.labels.is_empty()
            && self.vip.is_empty()
            && self.statuses.is_empty()
            && self.events.is_empty()
    }
}

/// One label move away from a node whose health changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecisionLatency {
    /// Gateway name.
    pub gateway: String,
    /// Why the node it moved from could no longer carry it (`None`: it could, e.g. the
    /// gateway's selector no longer matches it).
    pub reason: Option<HealthReason>,
    /// From observing the health change to this decision.
    pub latency: Duration,
}

/// Which object carries the labels: Cilium selects gateway nodes from CiliumNode labels, and a
/// dead node's agent can no longer update its CiliumNode (cilium#41547), so both are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeKind {
    /// `v1` Node.
    Node,
    /// `cilium.io/v2` CiliumNode (same name as the Node).
    CiliumNode,
}

/// Labels to set and remove on one object (a merge patch of `metadata.labels`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelPatch {
    /// The object kind.
    pub kind: NodeKind,
    /// The node name.
    pub node: String,
    /// Labels to set, with their values.
    pub set: LabelSet,
    /// Label keys to remove.
    pub remove: LabelKeys,
}

/// Labels (key → value) sorted by key, in a plain vector. A plan carries one or two per
/// object for every Node and CiliumNode it writes (20,000 at a start); a `BTreeMap` allocates
/// an eleven-slot node (~550 bytes) even for one entry, a vector the entry alone. Serialises
/// as a JSON object, keys in order, as a `BTreeMap` does.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct LabelSet(Vec<(String, String)>);

impl LabelSet {
    /// No labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&String> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|at| &self.0[at].1)
    }

    /// Is `key` set?
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The labels in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

/// Collects as a `BTreeMap` does: sorted by key, the last value of a repeated key wins.
impl FromIterator<(String, String)> for LabelSet {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        let mut labels: Vec<(String, String)> = iter.into_iter().collect();
        // Stable: among equal keys the last one collected stays last.
        labels.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(String, String)> = Vec::with_capacity(labels.len());
        for label in labels {
            match out.last_mut() {
                Some(last) if last.0 == label.0 => *last = label,
                _ => out.push(label),
            }
        }
        out.shrink_to_fit();
        LabelSet(out)
    }
}

impl IntoIterator for LabelSet {
    type Item = (String, String);
    type IntoIter = std::vec::IntoIter<(String, String)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a LabelSet {
    type Item = (&'a String, &'a String);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, String)>,
        fn(&'a (String, String)) -> (&'a String, &'a String),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

impl Serialize for LabelSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// Label keys, sorted and without repeats, in a plain vector (see [`LabelSet`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct LabelKeys(Vec<String>);

impl LabelKeys {
    /// No keys.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many keys.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Is `key` one of them?
    pub fn contains(&self, key: &str) -> bool {
        self.0.binary_search_by(|k| k.as_str().cmp(key)).is_ok()
    }

    /// The keys in order.
    pub fn iter(&self) -> std::slice::Iter<'_, String> {
        self.0.iter()
    }
}

impl FromIterator<String> for LabelKeys {
    fn from_iter<I: IntoIterator<Item = String>>(iter: I) -> Self {
        let mut keys: Vec<String> = iter.into_iter().collect();
        keys.sort();
        keys.dedup();
        keys.shrink_to_fit();
        LabelKeys(keys)
    }
}

impl<'a> IntoIterator for &'a LabelKeys {
    type Item = &'a String;
    type IntoIter = std::slice::Iter<'a, String>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// A write to a VIP Lease. Conditional writes must fail on a `resourceVersion` mismatch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VipWrite {
    /// Create the Lease, without a grant.
    Create {
        /// Gateway name.
        gateway: String,
        /// Lease name.
        lease: String,
        /// The VIP (for the `vip` annotation).
        vip: String,
        /// `spec.leaseDurationSeconds`.
        duration_seconds: u64,
    },
    /// Set `vip-grant = node`; with `takeover`, also clear `holderIdentity` and `vip-ready` (the
    /// old holder was observed dead).
    Grant {
        /// Gateway name.
        gateway: String,
        /// Lease name.
        lease: String,
        /// The `resourceVersion` this write is conditioned on.
        resource_version: String,
        /// The node granted the VIP.
        node: String,
        /// Clear a dead holder in the same write.
        takeover: bool,
    },
    /// Set `vip-grant = ""`.
    Withdraw {
        /// Gateway name.
        gateway: String,
        /// Lease name.
        lease: String,
        /// The `resourceVersion` this write is conditioned on.
        resource_version: String,
    },
    /// Delete the Lease of a gateway that no longer exists or is no longer in VIP mode, once
    /// nobody holds it.
    Delete {
        /// Lease name.
        lease: String,
        /// The `resourceVersion` this write is conditioned on.
        resource_version: String,
    },
}

/// An event on an EgressGateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Gateway name.
    pub gateway: String,
    /// `Normal` or `Warning`.
    pub warning: bool,
    /// Stable CamelCase reason.
    pub reason: &'static str,
    /// Human-readable message.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn pairs() -> Vec<(String, String)> {
        [("b", "1"), ("a", ""), ("c", "x"), ("a", "2")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    #[test]
    fn a_label_set_collects_looks_up_and_serialises_as_a_btree_map() {
        let set: LabelSet = pairs().into_iter().collect();
        let map: BTreeMap<String, String> = pairs().into_iter().collect();
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            map.iter().collect::<Vec<_>>(),
            "sorted, the last value of a repeated key wins"
        );
        assert_eq!(set.len(), 3);
        assert_eq!(set.get("a").map(String::as_str), Some("2"));
        assert!(set.contains_key("c") && !set.contains_key("d"));
        assert_eq!(
            serde_json::to_string(&set).expect("set"),
            serde_json::to_string(&map).expect("map")
        );
        assert_eq!(set.into_iter().collect::<BTreeMap<_, _>>(), map);
    }

    #[test]
    fn label_keys_are_sorted_and_unique() {
        let keys: LabelKeys = pairs().into_iter().map(|(k, _)| k).collect();
        let set: BTreeSet<String> = pairs().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys.iter().collect::<Vec<_>>(),
            set.iter().collect::<Vec<_>>()
        );
        assert_eq!(keys.len(), 3);
        assert!(keys.contains("b") && !keys.contains("d"));
    }
}
