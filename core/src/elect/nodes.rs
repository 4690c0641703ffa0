//! The node store behind election: node facts in stable slots, their per-node precomputed data
//! (hash, health verdicts) and an index from label `key=value`
//! to the nodes carrying it, so a gateway finds its node group without scanning every node.
//! Labels are kept behind an `Arc` ([`SharedNode`]): the controller keeps every node's labels
//! for its own label diffs, and sharing them holds each map once instead of twice.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::hash;
use crate::model::catalog::{Gateway, HealthKey, NodeFacts};

/// A node's labels, shareable between the Elector and whoever else keeps them.
pub type SharedLabels = Arc<BTreeMap<String, String>>;

/// A node as the Elector takes and keeps it: [`NodeFacts`] with the labels held apart, behind
/// an `Arc`, so that a caller which keeps the labels anyway shares one copy with election.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedNode {
    /// Everything but the labels; `facts.labels` is always empty.
    facts: NodeFacts,
    labels: SharedLabels,
}

impl SharedNode {
    /// The node `facts` describe, with `labels` in place of `facts.labels` (which is dropped).
    pub fn new(mut facts: NodeFacts, labels: SharedLabels) -> Self {
        facts.labels = BTreeMap::new();
        SharedNode { facts, labels }
    }

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        &self.facts.name
    }

    /// `metadata.labels`.
    pub fn labels(&self) -> &SharedLabels {
        &self.labels
    }

    /// See [`NodeFacts::health_key`].
    pub fn health_key(&self) -> HealthKey {
        self.facts.health_key()
    }

    /// See [`NodeFacts::settled`].
    pub fn settled(&self) -> bool {
        self.facts.settled
    }

    /// The node as plain [`NodeFacts`] (copies the labels).
    pub fn to_facts(&self) -> NodeFacts {
        NodeFacts {
            labels: (*self.labels).clone(),
            ..self.facts.clone()
        }
    }
}

impl From<NodeFacts> for SharedNode {
    fn from(mut facts: NodeFacts) -> Self {
        let labels = Arc::new(std::mem::take(&mut facts.labels));
        SharedNode { facts, labels }
    }
}

/// Index of a node inside [`NodeStore`]; stable for the node's lifetime in the store.
pub(super) type Slot = u32;

/// One stored node and what election precomputes about it.
#[derive(Clone, Debug)]
pub(super) struct NodeEntry {
    pub node: SharedNode,
    /// [`hash::node_hash`] of the name.
    pub hash: u64,
    /// Healthy apart from the VIP agent: Ready, schedulable, not deleting, cilium-agent not
    /// known to be unready.
    pub healthy: bool,
    /// The VIP agent is not known to be unready.
    pub vip_ok: bool,
}

impl NodeEntry {
    fn new(node: SharedNode) -> Self {
        NodeEntry {
            hash: hash::node_hash(node.name()),
            healthy: node.facts.is_healthy(),
            vip_ok: node.facts.vip_agent_ok(),
            node,
        }
    }

    /// May this node carry `gateway`? (Settling is not part of eligibility.)
    pub fn eligible_for(&self, gateway: &Gateway) -> bool {
        self.healthy_for(gateway) && gateway.selects(&self.node.labels)
    }

    /// Eligibility for `gateway` of a node already known to match its selector.
    pub fn healthy_for(&self, gateway: &Gateway) -> bool {
        self.healthy && (self.vip_ok || !gateway.needs_vip_agent())
    }
}

/// All known nodes, addressable by slot and by name, indexed by label.
#[derive(Clone, Debug, Default)]
pub(super) struct NodeStore {
    slots: Vec<Option<NodeEntry>>,
    free: Vec<Slot>,
    by_name: HashMap<String, Slot>,
    /// label key → label value → slots carrying that pair (in insertion order).
    by_label: HashMap<String, HashMap<String, Vec<Slot>>>,
}

impl NodeStore {
    /// Room for `additional` more nodes, exactly: a store filled once (the first election)
    /// would otherwise keep up to twice the slots it needs.
    pub fn reserve(&mut self, additional: usize) {
        self.slots.reserve_exact(additional);
        self.by_name.reserve(additional);
    }

    pub fn get(&self, slot: Slot) -> Option<&NodeEntry> {
        self.slots.get(slot as usize).and_then(Option::as_ref)
    }

    pub fn slot_of(&self, name: &str) -> Option<Slot> {
        self.by_name.get(name).copied()
    }

    /// Every live slot in slot order.
    pub fn all_slots(&self) -> impl Iterator<Item = Slot> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, entry)| entry.is_some())
            .map(|(slot, _)| slot as Slot)
    }

    /// Inserts or replaces the node called `node.name()`; returns its slot and the node it
    /// replaced.
    pub fn upsert(&mut self, node: SharedNode) -> (Slot, Option<SharedNode>) {
        let entry = NodeEntry::new(node);
        if let Some(slot) = self.slot_of(entry.node.name()) {
            let old = self.slots[slot as usize].take();
            if let Some(old) = &old
                && old.node.labels != entry.node.labels
            {
                // Only the pairs that changed: most of a node's labels stay, and the
                // posting lists of common pairs hold thousands of slots.
                let gone = pairs_missing_from(&old.node.labels, &entry.node.labels);
                let added = pairs_missing_from(&entry.node.labels, &old.node.labels);
                self.unindex(slot, &gone);
                self.index(slot, &added);
            }
            self.slots[slot as usize] = Some(entry);
            return (slot, old.map(|old| old.node));
        }
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                (self.slots.len() - 1) as Slot
            }
        };
        self.index(slot, &entry.node.labels);
        self.by_name.insert(entry.node.name().to_owned(), slot);
        self.slots[slot as usize] = Some(entry);
        (slot, None)
    }

    /// Removes the node called `name`, returning its slot and entry.
    pub fn remove(&mut self, name: &str) -> Option<(Slot, NodeEntry)> {
        let slot = self.by_name.remove(name)?;
        let entry = self.slots.get_mut(slot as usize)?.take()?;
        self.unindex(slot, &entry.node.labels);
        self.free.push(slot);
        Some((slot, entry))
    }

    /// Slots of nodes whose labels satisfy `selector`, in slot order when the store was filled
    /// in name order and not changed since.
    pub fn matching(&self, selector: &BTreeMap<String, String>) -> Vec<Slot> {
        // The rarest pair narrows the scan; the other pairs are checked on each candidate.
        let mut narrowest: Option<&Vec<Slot>> = None;
        for (key, value) in selector {
            match self.by_label.get(key).and_then(|values| values.get(value)) {
                None => return Vec::new(),
                Some(list) if narrowest.is_none_or(|best| list.len() < best.len()) => {
                    narrowest = Some(list)
                }
                Some(_) => {}
            }
        }
        let candidates: Vec<Slot> = match narrowest {
            Some(list) => list.clone(),
            None => return self.all_slots().collect(),
        };
        if selector.len() == 1 {
            return candidates;
        }
        candidates
            .into_iter()
            .filter(|&slot| {
                self.get(slot).is_some_and(|node| {
                    selector
                        .iter()
                        .all(|(k, v)| node.node.labels.get(k) == Some(v))
                })
            })
            .collect()
    }

    /// Slots of nodes that carry label `key` with any value.
    pub fn carrying_key(&self, key: &str) -> Vec<Slot> {
        let mut slots: Vec<Slot> = self
            .by_label
            .get(key)
            .into_iter()
            .flat_map(|values| values.values().flatten().copied())
            .collect();
        slots.sort_unstable();
        slots
    }

    fn index(&mut self, slot: Slot, labels: &BTreeMap<String, String>) {
        for (key, value) in labels {
            // Look up before inserting: most pairs are already indexed (every node of a group
            // shares them), and `entry` would copy the key and value each time.
            let values = match self.by_label.get_mut(key) {
                Some(values) => values,
                None => self.by_label.entry(key.clone()).or_default(),
            };
            match values.get_mut(value) {
                Some(slots) => slots.push(slot),
                None => {
                    values.insert(value.clone(), vec![slot]);
                }
            }
        }
    }

    fn unindex(&mut self, slot: Slot, labels: &BTreeMap<String, String>) {
        for (key, value) in labels {
            let Some(values) = self.by_label.get_mut(key) else {
                continue;
            };
            if let Some(list) = values.get_mut(value) {
                list.retain(|&s| s != slot);
                if list.is_empty() {
                    values.remove(value);
                }
            }
            if values.is_empty() {
                self.by_label.remove(key);
            }
        }
    }
}

/// The label pairs of `labels` that `other` does not have with the same value.
fn pairs_missing_from(
    labels: &BTreeMap<String, String>,
    other: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    labels
        .iter()
        .filter(|(k, v)| other.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}
