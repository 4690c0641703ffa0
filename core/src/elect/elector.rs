//! [`Elector`]: election over an indexed, updatable set of gateways and nodes.
//!
//! Built from scratch it runs the full election (see the rules in [`super`]); afterwards
//! `apply_node`, `delete_node`, `apply_gateway` and `delete_gateway` update the result in place
//! and touch only the gateways whose node group contains the changed node, so a failover in a
//! large cluster costs microseconds rather than a full pass.
//!
//! After construction the Elector's own result is the record of who holds each gateway; node
//! labels are consulted for holders only when a gateway is first seen. This is what the
//! controller needs (its label writes lag behind its decisions), and it is equivalent to running
//! [`super::elect`] again over nodes whose `active-for-…` labels reflect the previous result
//! (checked by the property tests).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use super::hash;
use super::nodes::{NodeStore, SharedNode, Slot};
use super::{Election, ElectionReason, GatewayElection};
use crate::model::catalog::{Gateway, NodeFacts};
use crate::model::labels::active_for_label;

/// A gateway's eligible node names, shared by the gateways of one node group.
type ReadyList = Arc<Vec<String>>;

/// A gateway as election stores it (shared with the caller, like node labels).
#[derive(Clone, Debug)]
struct GatewayEntry {
    gateway: Arc<Gateway>,
    /// [`hash::gateway_hash`] of the name.
    hash: u64,
    /// `active_for_label(name)`, computed once.
    holder_label: String,
    /// Nodes whose labels match the selector, eligible or not.
    matching: usize,
}

/// Election state that can be updated one object at a time. See the module docs.
#[derive(Clone, Debug, Default)]
pub struct Elector {
    nodes: NodeStore,
    gateways: BTreeMap<String, GatewayEntry>,
    /// First selector pair → gateways with that first pair; used to find the gateways a node
    /// may belong to from its labels.
    by_anchor: HashMap<String, HashMap<String, BTreeSet<String>>>,
    /// Gateways with an empty selector (every node belongs to them).
    select_all: BTreeSet<String>,
    /// Label key → how many gateway selectors name it. A node change touching only other
    /// keys (egressc's own labels, for one) cannot change which gateways select the node.
    selector_keys: HashMap<String, usize>,
    election: Election,
}

impl Elector {
    /// Runs the full election over `gateways` and `nodes`, adopting holders from node labels.
    pub fn new(gateways: &[Gateway], nodes: &[NodeFacts]) -> Self {
        let gateways = gateways.iter().cloned().map(Arc::new).collect();
        let nodes = nodes.iter().cloned().map(SharedNode::from).collect();
        Elector::from_shared(gateways, nodes)
    }

    /// [`Elector::new`] over gateways and nodes shared with the caller: nothing is copied.
    pub fn from_shared(gateways: Vec<Arc<Gateway>>, nodes: Vec<SharedNode>) -> Self {
        let mut elector = Elector::default();
        // Filling slots in name order makes every label posting list name-sorted, so the full
        // pass gets sorted `ready_nodes` without sorting per gateway.
        let nodes = canonical_nodes(nodes);
        elector.nodes.reserve(nodes.len());
        for node in nodes {
            elector.nodes.upsert(node);
        }
        for gateway in canonical_gateways(gateways) {
            elector.insert_gateway(gateway);
        }
        // Gateways with the same selector and mode have the same eligible nodes: computed
        // once per group and shared.
        type Group = (Arc<Vec<Slot>>, Arc<Vec<String>>);
        let mut groups: HashMap<(&BTreeMap<String, String>, bool), Group> = HashMap::new();
        let mut firsts: Vec<(String, Group, Option<Slot>, usize)> = Vec::new();
        for (name, entry) in &elector.gateways {
            let key = (
                &entry.gateway.node_selector,
                entry.gateway.needs_vip_agent(),
            );
            let group = groups
                .entry(key)
                .or_insert_with(|| {
                    let (slots, names) = elector.eligible_nodes(entry);
                    (Arc::new(slots), Arc::new(names))
                })
                .clone();
            firsts.push((
                name.clone(),
                group,
                elector.label_holder(entry),
                entry.matching,
            ));
        }
        drop(groups);
        // Each gateway decides alone: its label holder if eligible, otherwise the rendezvous
        // choice among its eligible nodes. No gateway's result depends on another's.
        for (name, (eligible, ready_nodes), holder, matching) in firsts {
            let gateway_hash = elector.gateways.get(&name).map_or(0, |e| e.hash);
            let chosen = match holder {
                Some(slot) => Some((slot, ElectionReason::Kept)),
                None => choose(&elector.nodes, gateway_hash, &eligible)
                    .map(|slot| (slot, ElectionReason::Elected)),
            };
            match chosen {
                Some((slot, reason)) => elector.set_active(&name, slot, reason, ready_nodes),
                None => {
                    let vacant = GatewayElection {
                        active: None,
                        reason: vacant_reason(matching),
                        ready_nodes,
                    };
                    elector.election.gateways.insert(name, vacant);
                }
            }
        }
        elector
    }

    /// The current result.
    pub fn election(&self) -> &Election {
        &self.election
    }

    /// Consumes the Elector, returning the current result.
    pub fn into_election(self) -> Election {
        self.election
    }

    /// The node as last applied.
    pub fn node(&self, node: &str) -> Option<&SharedNode> {
        let slot = self.nodes.slot_of(node)?;
        self.nodes.get(slot).map(|entry| &entry.node)
    }

    /// Is `node` eligible for some gateway (in some gateway's `ready_nodes`)?
    pub fn is_member(&self, node: &str) -> bool {
        let Some(entry) = self
            .nodes
            .slot_of(node)
            .and_then(|slot| self.nodes.get(slot))
        else {
            return false;
        };
        let listed = |gateway: &String| {
            self.election.gateways.get(gateway).is_some_and(|result| {
                result
                    .ready_nodes
                    .binary_search_by(|n| n.as_str().cmp(node))
                    .is_ok()
            })
        };
        if self.select_all.iter().any(listed) {
            return true;
        }
        entry.node.labels().iter().any(|(key, value)| {
            self.by_anchor
                .get(key)
                .and_then(|values| values.get(value))
                .is_some_and(|gateways| gateways.iter().any(listed))
        })
    }

    /// Inserts or replaces a node; returns the names (sorted) of gateways whose result changed.
    pub fn apply_node(&mut self, facts: NodeFacts) -> Vec<String> {
        self.apply_shared(facts.into())
    }

    /// [`Elector::apply_node`] for a node whose labels may be shared with the caller.
    pub fn apply_shared(&mut self, node: SharedNode) -> Vec<String> {
        let old = self
            .nodes
            .slot_of(node.name())
            .and_then(|slot| self.nodes.get(slot));
        if old.is_some_and(|old| self.only_unselected_labels_differ(&old.node, &node)) {
            // Same health, and no selector can see the difference: no result changes. The
            // labels are still stored, for adopting holders of gateways added later.
            self.nodes.upsert(node);
            return Vec::new();
        }
        // The old labels are shared, not copied: `upsert` replaces the entry's `Arc` only.
        let old_labels = old.map(|entry| Arc::clone(entry.node.labels()));
        let mut affected = self.gateways_selecting(node.labels());
        if let Some(labels) = &old_labels {
            affected.extend(self.gateways_selecting(labels));
        }
        let name = node.name().to_owned();
        let (slot, _) = self.nodes.upsert(node);
        self.refresh(&affected, &name, old_labels.as_deref(), Some(slot))
    }

    /// Removes a node; returns the names (sorted) of gateways whose result changed.
    pub fn delete_node(&mut self, node: &str) -> Vec<String> {
        let Some((_, entry)) = self.nodes.remove(node) else {
            return Vec::new();
        };
        let affected = self.gateways_selecting(entry.node.labels());
        self.refresh(&affected, node, Some(entry.node.labels().as_ref()), None)
    }

    /// Inserts or replaces a gateway; returns whether its result changed. A replaced gateway
    /// keeps its active node while that node stays eligible; a new one adopts an eligible node
    /// carrying its `active-for-…` label.
    pub fn apply_gateway(&mut self, gateway: Gateway) -> bool {
        self.apply_shared_gateway(Arc::new(gateway))
    }

    /// [`Elector::apply_gateway`] for a gateway shared with the caller.
    pub fn apply_shared_gateway(&mut self, gateway: Arc<Gateway>) -> bool {
        let name = gateway.name.clone();
        let previous = self.remove_gateway(&name);
        self.insert_gateway(gateway);
        let Some(entry) = self.gateways.get(&name) else {
            return true;
        };
        let (eligible, mut ready_nodes) = self.eligible_nodes(entry);
        ready_nodes.sort_unstable();
        let ready_nodes = Arc::new(ready_nodes);
        let kept = match &previous {
            Some(prev) => prev
                .active
                .as_deref()
                .and_then(|node| self.nodes.slot_of(node))
                .filter(|slot| eligible.contains(slot)),
            None => self.label_holder(entry),
        };
        let chosen = match kept {
            Some(slot) => Some((slot, ElectionReason::Kept)),
            None => {
                choose(&self.nodes, entry.hash, &eligible).map(|s| (s, ElectionReason::Elected))
            }
        };
        let matching = entry.matching;
        match chosen {
            Some((slot, mut reason)) => {
                // An unchanged active node keeps the reason it already had.
                if let Some(prev) = &previous
                    && prev.active.is_some()
                    && prev.active.as_deref() == self.nodes.get(slot).map(|n| n.node.name())
                {
                    reason = prev.reason;
                }
                self.set_active(&name, slot, reason, ready_nodes);
            }
            None => {
                let vacant = GatewayElection {
                    active: None,
                    reason: vacant_reason(matching),
                    ready_nodes,
                };
                self.election.gateways.insert(name.clone(), vacant);
            }
        }
        previous.as_ref() != self.election.gateways.get(&name)
    }

    /// Removes a gateway; returns whether it existed.
    pub fn delete_gateway(&mut self, gateway: &str) -> bool {
        self.remove_gateway(gateway).is_some()
    }

    /// Do `old` and `new` differ only in labels no gateway selector names?
    fn only_unselected_labels_differ(&self, old: &SharedNode, new: &SharedNode) -> bool {
        if old.name() != new.name() || old.health_key() != new.health_key() {
            return false;
        }
        let unselected = |key: &String| !self.selector_keys.contains_key(key);
        let (old, new) = (old.labels(), new.labels());
        let changed_or_gone = old
            .iter()
            .filter(|(k, v)| new.get(*k) != Some(*v))
            .map(|(k, _)| k);
        let added = new.keys().filter(|k| !old.contains_key(*k));
        changed_or_gone.chain(added).all(unselected)
    }

    fn insert_gateway(&mut self, gateway: Arc<Gateway>) {
        let name = gateway.name.clone();
        for key in gateway.node_selector.keys() {
            *self.selector_keys.entry(key.clone()).or_default() += 1;
        }
        match gateway.node_selector.iter().next() {
            Some((key, value)) => {
                self.by_anchor
                    .entry(key.clone())
                    .or_default()
                    .entry(value.clone())
                    .or_default()
                    .insert(name.clone());
            }
            None => {
                self.select_all.insert(name.clone());
            }
        }
        let matching = self.nodes.matching(&gateway.node_selector).len();
        let entry = GatewayEntry {
            hash: hash::gateway_hash(&name),
            holder_label: active_for_label(&name),
            matching,
            gateway,
        };
        self.gateways.insert(name, entry);
    }

    /// Forgets a gateway, releasing its active node; returns its last result.
    fn remove_gateway(&mut self, name: &str) -> Option<GatewayElection> {
        let entry = self.gateways.remove(name)?;
        for key in entry.gateway.node_selector.keys() {
            if let Some(count) = self.selector_keys.get_mut(key) {
                *count -= 1;
                if *count == 0 {
                    self.selector_keys.remove(key);
                }
            }
        }
        match entry.gateway.node_selector.iter().next() {
            Some((key, value)) => {
                if let Some(values) = self.by_anchor.get_mut(key) {
                    if let Some(names) = values.get_mut(value) {
                        names.remove(name);
                        if names.is_empty() {
                            values.remove(value);
                        }
                    }
                    if values.is_empty() {
                        self.by_anchor.remove(key);
                    }
                }
            }
            None => {
                self.select_all.remove(name);
            }
        }
        self.election.gateways.remove(name)
    }

    /// Eligible slots of a gateway and their names, both in slot order.
    fn eligible_nodes(&self, entry: &GatewayEntry) -> (Vec<Slot>, Vec<String>) {
        let mut slots = self.nodes.matching(&entry.gateway.node_selector);
        // `matching` already checked the selector; only health is left to test.
        slots.retain(|&slot| {
            self.nodes
                .get(slot)
                .is_some_and(|n| n.healthy_for(&entry.gateway))
        });
        let names = slots
            .iter()
            .filter_map(|&slot| self.nodes.get(slot).map(|n| n.node.name().to_owned()))
            .collect();
        (slots, names)
    }

    /// The eligible node carrying the gateway's `active-for-…` label; if several do (corrupt
    /// state), the one with the smallest rendezvous weight, then name.
    fn label_holder(&self, entry: &GatewayEntry) -> Option<Slot> {
        self.nodes
            .carrying_key(&entry.holder_label)
            .into_iter()
            .filter_map(|slot| self.nodes.get(slot).map(|node| (slot, node)))
            .filter(|(_, node)| node.eligible_for(&entry.gateway))
            .min_by(|(_, a), (_, b)| {
                hash::weight(entry.hash, a.hash)
                    .cmp(&hash::weight(entry.hash, b.hash))
                    .then_with(|| a.node.name().cmp(b.node.name()))
            })
            .map(|(slot, _)| slot)
    }

    fn set_active(
        &mut self,
        gateway: &str,
        slot: Slot,
        reason: ElectionReason,
        ready: Arc<Vec<String>>,
    ) {
        let Some(node) = self.nodes.get(slot) else {
            return;
        };
        let active = Some(node.node.name().to_owned());
        self.election.gateways.insert(
            gateway.to_owned(),
            GatewayElection {
                active,
                reason,
                ready_nodes: ready,
            },
        );
    }

    /// Names of gateways whose selector matches `labels`.
    fn gateways_selecting(&self, labels: &BTreeMap<String, String>) -> BTreeSet<String> {
        let mut names = self.select_all.clone();
        for (key, value) in labels {
            let Some(candidates) = self.by_anchor.get(key).and_then(|v| v.get(value)) else {
                continue;
            };
            for name in candidates {
                if self
                    .gateways
                    .get(name)
                    .is_some_and(|g| g.gateway.selects(labels))
                {
                    names.insert(name.clone());
                }
            }
        }
        names
    }

    /// Updates `affected` gateways after node `node` changed from `old_labels` (None: it was
    /// new) to the node now in `slot` (None: deleted). Returns the gateways whose result changed.
    fn refresh(
        &mut self,
        affected: &BTreeSet<String>,
        node: &str,
        old_labels: Option<&BTreeMap<String, String>>,
        slot: Option<Slot>,
    ) -> Vec<String> {
        let mut changed = Vec::new();
        // Gateways of one node group share their ready list: the changed list is built once
        // per (old list, eligibility) and shared again. The old list is kept alive here, so
        // its address cannot be reused while it serves as the key.
        let mut edited: HashMap<(usize, bool), (ReadyList, ReadyList)> = HashMap::new();
        for name in affected {
            let Some(entry) = self.gateways.get_mut(name) else {
                continue;
            };
            let was_matching = old_labels.is_some_and(|labels| entry.gateway.selects(labels));
            let current = slot.and_then(|s| self.nodes.get(s));
            let now_matching = current.is_some_and(|n| entry.gateway.selects(n.node.labels()));
            let now_eligible =
                now_matching && current.is_some_and(|n| n.healthy_for(&entry.gateway));
            entry.matching = entry.matching + usize::from(now_matching) - usize::from(was_matching);
            let (gateway_hash, matching) = (entry.hash, entry.matching);

            let Some(result) = self.election.gateways.get_mut(name) else {
                continue;
            };
            // Only `active`, `reason` and membership of `node` can change here, so those are
            // what is remembered; cloning the whole result would copy every ready node's name.
            let (active_before, reason_before) = (result.active.clone(), result.reason);
            let position = result
                .ready_nodes
                .binary_search_by(|n| n.as_str().cmp(node));
            let ready_changed = position.is_ok() != now_eligible;
            if ready_changed {
                let old = Arc::clone(&result.ready_nodes);
                let key = (Arc::as_ptr(&old) as usize, now_eligible);
                let (_, new) = edited.entry(key).or_insert_with(|| {
                    let mut list = (*old).clone();
                    match position {
                        Ok(i) => {
                            list.remove(i);
                        }
                        Err(i) => list.insert(i, node.to_owned()),
                    }
                    (Arc::clone(&old), Arc::new(list))
                });
                result.ready_nodes = Arc::clone(new);
            }
            let lost_holder = !now_eligible && result.active.as_deref() == Some(node);
            if lost_holder {
                result.active = None;
            }
            if result.active.is_none() {
                let eligible: Vec<Slot> = result
                    .ready_nodes
                    .iter()
                    .filter_map(|n| self.nodes.slot_of(n))
                    .collect();
                result.reason = vacant_reason(matching);
                if let Some(chosen) = choose(&self.nodes, gateway_hash, &eligible) {
                    let ready = std::mem::take(&mut result.ready_nodes);
                    self.set_active(name, chosen, ElectionReason::Elected, ready);
                }
            }
            let unchanged = self.election.gateways.get(name).is_some_and(|after| {
                after.active == active_before && after.reason == reason_before
            });
            if ready_changed || !unchanged {
                changed.push(name.clone());
            }
        }
        changed
    }
}

/// The node a gateway without a holder gets: settled nodes first (an unsettled one only when no
/// settled node is eligible, so that traffic is not dropped), then the smallest rendezvous
/// weight, then name. A function of the gateway and its eligible nodes only, never of other
/// gateways (see the rules in [`super`]).
fn choose(nodes: &NodeStore, gateway_hash: u64, eligible: &[Slot]) -> Option<Slot> {
    // The key is computed once per candidate (a comparison-based minimum would hash both
    // sides of every comparison).
    eligible
        .iter()
        .filter_map(|&slot| nodes.get(slot).map(|node| (slot, node)))
        .min_by_key(|&(_, n)| {
            (
                !n.node.settled(),
                hash::weight(gateway_hash, n.hash),
                n.node.name(),
            )
        })
        .map(|(slot, _)| slot)
}

fn vacant_reason(matching: usize) -> ElectionReason {
    if matching > 0 {
        ElectionReason::NoEligibleNode
    } else {
        ElectionReason::NoMatchingNode
    }
}

/// Nodes sorted by name, one per name. Node names are unique in a cluster; if an input repeats
/// one anyway, the copy that sorts first by its facts wins, so the result still does not depend
/// on input order.
fn canonical_nodes(mut nodes: Vec<SharedNode>) -> Vec<SharedNode> {
    nodes.sort_by(|a, b| {
        a.name().cmp(b.name()).then_with(|| {
            a.health_key()
                .cmp(&b.health_key())
                .then_with(|| a.labels().cmp(b.labels()))
        })
    });
    nodes.dedup_by(|later, first| later.name() == first.name());
    nodes
}

/// Gateways sorted by name, one per name (the validated catalog guarantees uniqueness; repeats
/// are resolved by their debug form so the result does not depend on input order).
fn canonical_gateways(mut gateways: Vec<Arc<Gateway>>) -> Vec<Arc<Gateway>> {
    gateways.sort_by(|a, b| match a.name.cmp(&b.name) {
        Ordering::Equal => format!("{a:?}").cmp(&format!("{b:?}")),
        other => other,
    });
    gateways.dedup_by(|later, first| later.name == first.name);
    gateways
}
