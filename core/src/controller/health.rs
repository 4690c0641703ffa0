//! Node health as the controller observes it: the Node object, its kubelet heartbeat Lease,
//! and the cilium-agent and VIP agent Pods on it; from these, the [`NodeFacts`] election needs,
//! including whether a recovered node has settled.
//!
//! Heartbeat staleness is judged by when the controller *observed* the Lease change, never by
//! comparing the Lease's renewTime with the controller's clock. Settling is tracked from the
//! last instant the node was seen unhealthy; unhealthy moments are only recorded once caches
//! are synced, so a controller restart does not make every node unsettled.

use std::collections::BTreeMap;

use super::time::{Instant, Timing};
use crate::model::catalog::NodeFacts;

/// What the Node object says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeObservation {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// The Ready condition is True.
    pub ready: bool,
    /// `spec.unschedulable`.
    pub unschedulable: bool,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
}

/// Everything known about one node.
#[derive(Clone, Debug, Default)]
pub(super) struct NodeHealth {
    pub node: Option<NodeObservation>,
    /// The heartbeat Lease's renewTime as last seen (opaque) and when it was seen to change.
    pub heartbeat: Option<(String, Instant)>,
    /// cilium-agent Pods on this node: pod name → Ready.
    pub cilium_pods: BTreeMap<String, bool>,
    /// VIP agent Pods on this node: pod name → Ready.
    pub vip_pods: BTreeMap<String, bool>,
    /// The last instant this node was evaluated unhealthy (while synced).
    pub last_unhealthy: Option<Instant>,
    /// When the node's health last flipped, as observed (for the decision-latency metric).
    pub health_changed_at: Option<Instant>,
    /// Health at the last evaluation.
    pub was_healthy: Option<bool>,
    /// The instant queued for re-evaluating this node (see [`NodeHealth::next_change`]).
    pub scheduled: Option<Instant>,
}

impl NodeHealth {
    /// Is the heartbeat fresh at `now`? Unknown (no Lease seen yet) counts as fresh.
    pub fn heartbeat_fresh(&self, now: Instant, timing: &Timing) -> bool {
        self.heartbeat
            .as_ref()
            .is_none_or(|(_, seen)| now < *seen + timing.node_lease_grace)
    }

    /// Ready (condition and fresh heartbeat), schedulable, not deleting, cilium-agent Ready.
    /// The VIP agent is not part of it: it only matters for VIP gateways.
    pub fn healthy(&self, now: Instant, timing: &Timing) -> bool {
        self.node.as_ref().is_some_and(|node| {
            node.ready
                && !node.unschedulable
                && !node.deleting
                && self.cilium_ready() != Some(false)
        }) && self.heartbeat_fresh(now, timing)
    }

    /// A node without any cilium-agent Pod has no datapath: not ready.
    fn cilium_ready(&self) -> Option<bool> {
        Some(self.cilium_pods.values().any(|&ready| ready))
    }

    fn vip_ready(&self) -> Option<bool> {
        Some(self.vip_pods.values().any(|&ready| ready))
    }

    /// Records the health at `now` (before and after every observation and on every
    /// reconcile); returns the health.
    pub fn evaluate(&mut self, now: Instant, timing: &Timing, synced: bool) -> bool {
        let healthy = self.healthy(now, timing);
        if synced {
            if !healthy {
                self.last_unhealthy = Some(now);
            }
            if self.was_healthy.is_some_and(|was| was != healthy) {
                self.health_changed_at = Some(now);
            }
        }
        self.was_healthy = Some(healthy);
        healthy
    }

    /// Has the node been healthy for the settle time?
    pub fn settled(&self, now: Instant, timing: &Timing) -> bool {
        self.last_unhealthy
            .is_none_or(|at| now >= at + timing.settle)
    }

    /// The facts election works on; `None` while the Node object itself is unknown.
    pub fn facts(&self, now: Instant, timing: &Timing) -> Option<NodeFacts> {
        let node = self.node.as_ref()?;
        Some(NodeFacts {
            name: node.name.clone(),
            labels: node.labels.clone(),
            ready: node.ready && self.heartbeat_fresh(now, timing),
            unschedulable: node.unschedulable,
            deleting: node.deleting,
            cilium_agent_ready: self.cilium_ready(),
            vip_agent_ready: self.vip_ready(),
            settled: self.settled(now, timing),
        })
    }

    /// Updates `scheduled` to the next change after `now`; returns it when it must be queued
    /// (it differs from what is queued already).
    pub fn reschedule(&mut self, now: Instant, timing: &Timing) -> Option<Instant> {
        let next = self.next_change(now, timing);
        if next == self.scheduled {
            return None;
        }
        self.scheduled = next;
        next
    }

    /// The next instant at which time alone changes this node's facts.
    pub fn next_change(&self, now: Instant, timing: &Timing) -> Option<Instant> {
        let stale_at = self
            .heartbeat
            .as_ref()
            .map(|(_, seen)| *seen + timing.node_lease_grace)
            .filter(|at| *at > now);
        let settles_at = self
            .last_unhealthy
            .map(|at| at + timing.settle)
            .filter(|at| *at > now);
        match (stale_at, settles_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}
