//! The [`Controller`] state and its observation API: the sync shell calls one `apply_*` /
//! `delete_*` method per watch event, passing `now`. Observations only record — and mark what
//! they touched dirty, so that [`Controller::reconcile`] looks at the changed nodes and
//! gateways instead of all of them; deciding is `reconcile`'s job.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::sync::Arc;

use super::gaps::Observation;
use super::health::{NodeHealth, NodeObservation, ObservedNode, PodCount, Renewal, View};
use super::plan::NodeKind;
use super::probe::ProbePlan;
use super::status::ObservedStatus;
use super::time::{Instant, Timing};
use super::vip::{VipLease, VipLeaseObservation};
use crate::elect::Elector;
use crate::model::catalog::Gateway;
use crate::model::labels::is_active_for_label;

/// A gateway as the controller knows it.
#[derive(Clone, Debug)]
pub(super) struct GatewayRecord {
    /// Shared with the elector.
    pub gateway: Arc<Gateway>,
    /// `metadata.generation`.
    pub generation: i64,
    pub status: Option<ObservedStatus>,
}

/// Which agent a Pod runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PodKind {
    Cilium,
    VipAgent,
}

/// An agent Pod as last seen: where it runs and whether it is Ready (counted per node in
/// [`NodeHealth`]).
#[derive(Clone, Debug)]
struct AgentPod {
    node: Box<str>,
    ready: bool,
}

/// The pure core of `egressc sync`. Feed it observations, call [`Controller::reconcile`], apply
/// the returned plan. See the module docs of [`super`].
#[derive(Clone, Debug, Default)]
pub struct Controller {
    pub(super) timing: Timing,
    pub(super) synced: bool,
    pub(super) nodes: BTreeMap<String, NodeHealth>,
    pub(super) cilium_nodes: BTreeMap<String, BTreeMap<String, String>>,
    pub(super) gateways: BTreeMap<String, GatewayRecord>,
    pub(super) vip_leases: BTreeMap<String, VipLease>,
    /// cilium-agent Pods by key, to count them per node and find a deleted Pod's node.
    cilium_pods: HashMap<Box<str>, AgentPod>,
    /// VIP agent Pods by key.
    vip_pods: HashMap<Box<str>, AgentPod>,
    /// Built at the first reconcile after caches are synced (adopting existing labels). It
    /// keeps the facts last given to it per node: what a node's current facts are compared to.
    pub(super) elector: Option<Elector>,
    /// Gateways changed or deleted since the last reconcile.
    pub(super) dirty_gateways: BTreeSet<String>,
    /// The label target decided per gateway at the last reconcile.
    pub(super) decided: BTreeMap<String, Option<String>>,
    pub(super) failovers: BTreeMap<String, u64>,
    /// Nodes observed (or due, see `due`) since the last reconcile: their facts may differ
    /// from `fed`.
    pub(super) dirty_nodes: BTreeSet<String>,
    /// Nodes whose Node / CiliumNode labels must be diffed at the next reconcile: changed,
    /// or a patch was planned and its echo has not been seen yet (plans are level-based).
    pub(super) relabel: BTreeSet<String>,
    /// Gateways whose status or target must be looked at at the next reconcile: their record
    /// changed, or a status patch was planned and its echo has not been seen yet.
    pub(super) restatus: BTreeSet<String>,
    /// When time alone changes a node's facts (heartbeat goes stale, node settles). Entries
    /// are valid only while equal to the node's `NodeHealth::queued`; one that comes up before
    /// the node's `scheduled` is queued again at it (see `NodeHealth::dequeue`).
    pub(super) due: BinaryHeap<Reverse<(Instant, String)>>,
    /// `active-for-…` label key → Nodes carrying it (observed), kept up to date per event.
    /// Sorted (a label is usually on one node: a set's tree would allocate eleven slots).
    pub(super) holders: HashMap<String, Vec<String>>,
    /// Node → gateways whose target it is: the inverse of `decided`.
    pub(super) targeted: HashMap<String, BTreeSet<String>>,
    /// Whether heartbeats are being observed (see `gaps.rs`).
    pub(super) observation: Observation,
    /// Which nodes to probe (see `probe.rs`).
    pub(super) probes: ProbePlan,
}

impl Controller {
    /// A controller with the given timing; nothing observed, not synced.
    pub fn new(timing: Timing) -> Self {
        Controller {
            timing,
            ..Controller::default()
        }
    }

    /// The shell's caches are (`true`) or are no longer (`false`, e.g. API outage) complete.
    /// While not synced, `reconcile` returns an empty plan.
    /// Becoming synced again after a gap restarts every staleness clock (see `gaps.rs`).
    pub fn set_synced(&mut self, now: Instant, synced: bool) {
        let resumed = synced && !self.synced;
        self.synced = synced;
        if resumed {
            self.restart_clocks(now);
        }
        self.evaluate_all(now);
    }

    /// Forgets the election so that the next reconcile adopts the labels in place, as after a
    /// restart. For a replica that (re)gains leadership: another replica may have moved labels
    /// while this one was not deciding.
    pub fn readopt(&mut self) {
        self.elector = None;
        self.decided.clear();
    }

    /// Label key → nodes carrying it, maintained from Node events (`old`, `new`: the node's
    /// labels before and after).
    fn index_holders(
        &mut self,
        name: &str,
        old: Option<&BTreeMap<String, String>>,
        new: Option<&BTreeMap<String, String>>,
    ) {
        let (before, after) = (active_for_keys(old), active_for_keys(new));
        let position = |nodes: &Vec<String>| nodes.binary_search_by(|n| n.as_str().cmp(name));
        for key in before.difference(&after) {
            if let Some(nodes) = self.holders.get_mut(*key) {
                if let Ok(at) = position(nodes) {
                    nodes.remove(at);
                }
                if nodes.is_empty() {
                    self.holders.remove(*key);
                }
            }
        }
        for key in after.difference(&before) {
            let nodes = self.holders.entry((*key).clone()).or_default();
            if let Err(at) = position(nodes) {
                nodes.insert(at, name.to_owned());
            }
        }
    }

    /// Every label last observed on Node (or CiliumNode) `name`; the controller keeps them
    /// anyway, so a shell needing them need not keep its own copy.
    pub fn observed_labels(&self, kind: NodeKind, name: &str) -> Option<&BTreeMap<String, String>> {
        match kind {
            NodeKind::Node => self.nodes.get(name)?.node.as_ref().map(|n| &*n.labels),
            NodeKind::CiliumNode => self.cilium_nodes.get(name),
        }
    }

    /// The names of the Nodes (or CiliumNodes) observed and not deleted since, sorted.
    pub fn observed_nodes(&self, kind: NodeKind) -> Box<dyn Iterator<Item = &str> + '_> {
        match kind {
            NodeKind::Node => Box::new(
                self.nodes
                    .iter()
                    .filter(|(_, health)| health.node.is_some())
                    .map(|(name, _)| name.as_str()),
            ),
            NodeKind::CiliumNode => Box::new(self.cilium_nodes.keys().map(String::as_str)),
        }
    }

    /// Label moves (not first elections) per gateway since start: `failovers_total`.
    pub fn failovers_total(&self) -> &BTreeMap<String, u64> {
        &self.failovers
    }

    /// A Node was added or changed.
    pub fn apply_node(&mut self, now: Instant, node: NodeObservation) {
        let NodeObservation {
            name,
            labels,
            ready,
            unschedulable,
            deleting,
        } = node;
        let old = self.nodes.get(&name).and_then(|h| h.node.as_ref());
        // Unchanged labels keep their shared map (the elector holds the same one).
        let labels = match old {
            Some(old) if *old.labels == labels => Arc::clone(&old.labels),
            _ => {
                let old = old.map(|old| Arc::clone(&old.labels));
                self.index_holders(&name, old.as_deref(), Some(&labels));
                self.probes.dirty.insert(name.clone());
                Arc::new(labels)
            }
        };
        let node = ObservedNode {
            labels,
            ready,
            unschedulable,
            deleting,
        };
        self.observe_node(now, &name, |health| health.node = Some(node));
    }

    /// A Node was deleted.
    pub fn delete_node(&mut self, now: Instant, name: &str) {
        if let Some(old) = self.nodes.get_mut(name).and_then(|h| h.node.take()) {
            self.index_holders(name, Some(&old.labels), None);
            self.probes.dirty.insert(name.to_owned());
            self.retrack(now, vec![name.to_owned()]);
        }
        self.dirty_nodes.insert(name.to_owned());
        self.relabel.insert(name.to_owned());
    }

    /// The node's heartbeat Lease (kube-node-lease) was seen with `renew_time` (opaque, only
    /// compared for change). A change restarts the grace period from `now`, and is evidence
    /// that heartbeats are observed (other nodes' silence may now count, see `gaps.rs`).
    pub fn apply_node_lease(&mut self, now: Instant, node: &str, renew_time: &str) {
        let mut changed = false;
        self.observe_node(now, node, |health| {
            if health
                .heartbeat
                .as_ref()
                .is_none_or(|(seen, _)| seen.as_bytes() != renew_time.as_bytes())
            {
                health.heartbeat = Some((Renewal::new(renew_time), now));
                changed = true;
            }
        });
        if changed {
            let proven = self.heartbeat_progressed(now);
            if !proven.is_empty() {
                self.retrack(now, proven);
            }
        }
    }

    /// A cilium-agent Pod on `node` was added or changed.
    pub fn apply_cilium_pod(&mut self, now: Instant, pod: &str, node: &str, ready: bool) {
        self.apply_pod(now, pod, node, ready, PodKind::Cilium);
    }

    /// A VIP agent Pod on `node` was added or changed.
    pub fn apply_vip_agent_pod(&mut self, now: Instant, pod: &str, node: &str, ready: bool) {
        self.apply_pod(now, pod, node, ready, PodKind::VipAgent);
    }

    /// A cilium-agent or VIP agent Pod was deleted.
    pub fn delete_pod(&mut self, now: Instant, pod: &str) {
        self.forget_pod(now, pod, PodKind::Cilium);
        self.forget_pod(now, pod, PodKind::VipAgent);
    }

    fn pods_mut(&mut self, kind: PodKind) -> &mut HashMap<Box<str>, AgentPod> {
        match kind {
            PodKind::Cilium => &mut self.cilium_pods,
            PodKind::VipAgent => &mut self.vip_pods,
        }
    }

    /// Removes Pod `pod` of `kind` from its node's count, if known.
    fn forget_pod(&mut self, now: Instant, pod: &str, kind: PodKind) {
        let Some(gone) = self.pods_mut(kind).remove(pod) else {
            return;
        };
        self.observe_node(now, &gone.node, |health| {
            count_of(health, kind).remove(gone.ready)
        });
    }

    /// The CiliumNode called `name` was added or changed.
    pub fn apply_cilium_node(
        &mut self,
        _now: Instant,
        name: &str,
        labels: BTreeMap<String, String>,
    ) {
        self.cilium_nodes.insert(name.to_owned(), labels);
        self.relabel.insert(name.to_owned());
    }

    /// The CiliumNode called `name` was deleted.
    pub fn delete_cilium_node(&mut self, _now: Instant, name: &str) {
        self.cilium_nodes.remove(name);
        self.relabel.insert(name.to_owned());
    }

    /// The VIP Lease of `gateway` was added or changed.
    pub fn apply_vip_lease(&mut self, now: Instant, gateway: &str, lease: VipLeaseObservation) {
        let previous = self.vip_leases.remove(gateway);
        self.vip_leases
            .insert(gateway.to_owned(), VipLease::observe(previous, lease, now));
    }

    /// The VIP Lease of `gateway` was deleted.
    pub fn delete_vip_lease(&mut self, _now: Instant, gateway: &str) {
        self.vip_leases.remove(gateway);
    }

    /// An EgressGateway was added or changed (validated), with its generation and stored status.
    pub fn apply_gateway(
        &mut self,
        _now: Instant,
        gateway: Gateway,
        generation: i64,
        status: Option<ObservedStatus>,
    ) {
        let name = gateway.name.clone();
        let old = self.gateways.get(&name);
        let spec_changed = old.is_none_or(|old| *old.gateway != gateway);
        if spec_changed {
            self.dirty_gateways.insert(name.clone());
            self.probes.dirty_all = true;
        }
        if old.is_none_or(|old| old.generation != generation || old.status != status) {
            self.restatus.insert(name.clone());
        }
        // An unchanged spec keeps the copy the elector shares.
        let gateway = match old {
            Some(old) if !spec_changed => Arc::clone(&old.gateway),
            _ => Arc::new(gateway),
        };
        self.gateways.insert(
            name,
            GatewayRecord {
                gateway,
                generation,
                status,
            },
        );
    }

    /// An EgressGateway was deleted (or became invalid).
    pub fn delete_gateway(&mut self, _now: Instant, name: &str) {
        if self.gateways.remove(name).is_some() {
            self.dirty_gateways.insert(name.to_owned());
            self.probes.dirty_all = true;
        }
    }

    fn apply_pod(&mut self, now: Instant, pod: &str, node: &str, ready: bool, kind: PodKind) {
        // A Pod never changes node; a reused name on another node is a new Pod.
        if self
            .pods_mut(kind)
            .get(pod)
            .is_some_and(|known| &*known.node != node)
        {
            self.forget_pod(now, pod, kind);
        }
        let was_ready = match self.pods_mut(kind).get_mut(pod) {
            Some(known) => Some(std::mem::replace(&mut known.ready, ready)),
            None => {
                let node = node.into();
                self.pods_mut(kind)
                    .insert(pod.into(), AgentPod { node, ready });
                None
            }
        };
        self.observe_node(now, node, |health| {
            let count = count_of(health, kind);
            if let Some(was_ready) = was_ready {
                count.remove(was_ready);
            }
            count.add(ready);
        });
    }

    /// Evaluates the node's health before and after `change`, so that a recovery observed now
    /// counts as "unhealthy until now" for settling.
    pub(super) fn observe_node(
        &mut self,
        now: Instant,
        node: &str,
        change: impl FnOnce(&mut NodeHealth),
    ) {
        let view = self.view(now);
        let health = match self.nodes.get_mut(node) {
            Some(health) => health,
            None => self.nodes.entry(node.to_owned()).or_default(),
        };
        health.evaluate(&view);
        change(health);
        self.retrack(now, vec![node.to_owned()]);
    }

    /// Evaluates one node under `view`, queues its next time-driven change, marks it dirty.
    pub(super) fn evaluate_node(&mut self, name: &str, view: &View) {
        let Some(health) = self.nodes.get_mut(name) else {
            return;
        };
        health.evaluate(view);
        if let Some(at) = health.reschedule(view) {
            self.due.push(Reverse((at, name.to_owned())));
        }
        if !self.dirty_nodes.contains(name) {
            self.dirty_nodes.insert(name.to_owned());
        }
        if !self.relabel.contains(name) {
            self.relabel.insert(name.to_owned());
        }
    }

    /// Re-evaluates every node (sync or observation state changed).
    pub(super) fn evaluate_all(&mut self, now: Instant) {
        let view = self.view(now);
        let names: Vec<String> = self.nodes.keys().cloned().collect();
        for name in names {
            self.evaluate_node(&name, &view);
        }
    }

    /// Re-evaluates the nodes whose facts time alone has changed by `now` and marks them dirty.
    pub(super) fn evaluate_due(&mut self, now: Instant) {
        let mut due = Vec::new();
        while let Some(Reverse((at, _))) = self.due.peek() {
            if *at > now {
                break;
            }
            if let Some(name) = self.pop_due() {
                due.push(name);
            }
        }
        if !due.is_empty() {
            self.retrack(now, due);
        }
    }

    /// The next instant at which time alone changes some node's facts.
    pub(super) fn next_due(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, name))) = self.due.peek() {
            if self
                .nodes
                .get(name)
                .is_some_and(|h| h.queued == Some(*at) && h.scheduled == Some(*at))
            {
                return Some(*at);
            }
            self.pop_due();
        }
        None
    }

    /// Takes the first entry off `due`: the node's name if it is due at that instant; an entry
    /// whose node's schedule moved later is queued again at the new instant.
    fn pop_due(&mut self) -> Option<String> {
        let Reverse((at, name)) = self.due.pop()?;
        match self.nodes.get_mut(&name)?.dequeue(at) {
            Ok(()) => Some(name),
            Err(Some(later)) => {
                self.due.push(Reverse((later, name)));
                None
            }
            Err(None) => None,
        }
    }
}

/// The `active-for-…` keys among `labels`.
fn active_for_keys(labels: Option<&BTreeMap<String, String>>) -> BTreeSet<&String> {
    labels
        .into_iter()
        .flat_map(BTreeMap::keys)
        .filter(|k| is_active_for_label(k))
        .collect()
}

fn count_of(health: &mut NodeHealth, kind: PodKind) -> &mut PodCount {
    match kind {
        PodKind::Cilium => &mut health.cilium_pods,
        PodKind::VipAgent => &mut health.vip_pods,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> Instant {
        Instant::from_secs_f64(secs as f64)
    }

    fn healthy(name: &str) -> NodeObservation {
        NodeObservation {
            name: name.to_owned(),
            ready: true,
            ..NodeObservation::default()
        }
    }

    fn ready(controller: &Controller, node: &str) -> Option<bool> {
        let elector = controller.elector.as_ref()?;
        Some(elector.node(node)?.health_key().0)
    }

    #[test]
    fn heartbeats_keep_one_queue_entry_per_node_and_staleness_comes_on_time() {
        let mut controller = Controller::new(Timing::default());
        for node in ["n1", "n2"] {
            controller.apply_node(at(0), healthy(node));
            controller.apply_cilium_pod(at(0), &format!("kube-system/cilium-{node}"), node, true);
        }
        controller.set_synced(at(0), true);
        // Both beat every 10 s until 90 s; then only n2 does.
        for second in (0..=150).step_by(10) {
            controller.apply_node_lease(at(second), "n2", &format!("2026-01-01T00:00:{second}Z"));
            if second <= 90 {
                controller.apply_node_lease(
                    at(second),
                    "n1",
                    &format!("2026-01-01T00:00:{second}Z"),
                );
            }
            let plan = controller.reconcile(at(second));
            assert!(
                controller.due.len() <= 2,
                "queue grew to {}",
                controller.due.len()
            );
            let grace = Timing::default().node_lease_grace.as_secs();
            if second == 100 {
                assert_eq!(plan.next_wakeup, Some(at(90 + grace)), "n1 goes stale next");
            }
            let stale = second >= 90 + grace;
            assert_eq!(ready(&controller, "n1"), Some(!stale), "n1 at {second} s");
            assert_eq!(ready(&controller, "n2"), Some(true), "n2 at {second} s");
        }
    }

    #[test]
    fn observed_labels_are_the_last_seen_on_each_object() {
        let mut controller = Controller::new(Timing::default());
        let labels = BTreeMap::from([("group".to_owned(), "a".to_owned())]);
        let node = NodeObservation {
            labels: labels.clone(),
            ..healthy("n1")
        };
        controller.apply_node(at(0), node);
        controller.apply_cilium_node(at(0), "n1", BTreeMap::new());
        assert_eq!(
            controller.observed_labels(NodeKind::Node, "n1"),
            Some(&labels)
        );
        let cilium = controller.observed_labels(NodeKind::CiliumNode, "n1");
        assert_eq!(cilium, Some(&BTreeMap::new()));
        controller.delete_node(at(1), "n1");
        assert_eq!(controller.observed_labels(NodeKind::Node, "n1"), None);
    }

    #[test]
    fn agent_pods_count_per_node_across_moves_and_deletes() {
        let mut controller = Controller::new(Timing::default());
        controller.apply_node(at(0), healthy("n1"));
        controller.apply_node(at(0), healthy("n2"));
        let pods = |c: &Controller, node: &str| c.nodes[node].cilium_pods;
        controller.apply_cilium_pod(at(1), "ks/a", "n1", false);
        controller.apply_cilium_pod(at(1), "ks/b", "n1", true);
        assert_eq!(pods(&controller, "n1"), PodCount { pods: 2, ready: 1 });
        controller.apply_cilium_pod(at(2), "ks/b", "n1", false);
        assert!(!controller.nodes["n1"].cilium_pods.any_ready());
        // A reused name on another node is a new Pod.
        controller.apply_cilium_pod(at(3), "ks/a", "n2", true);
        assert_eq!(pods(&controller, "n1"), PodCount { pods: 1, ready: 0 });
        assert_eq!(pods(&controller, "n2"), PodCount { pods: 1, ready: 1 });
        controller.delete_pod(at(4), "ks/b");
        controller.delete_pod(at(4), "ks/unknown");
        assert_eq!(pods(&controller, "n1"), PodCount::default());
        assert_eq!(controller.nodes["n2"].vip_pods, PodCount::default());
    }
}
