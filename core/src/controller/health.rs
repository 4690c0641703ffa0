//! Node health as the controller observes it: the Node object, its kubelet heartbeat Lease,
//! the cilium-agent and VIP agent Pods on it, and the results of probing the node directly;
//! from these, the [`NodeFacts`] election needs, including whether a recovered node has
//! settled, and the [`HealthReason`] a node is unhealthy for.
//!
//! Heartbeat staleness is judged by when the controller *observed* the Lease change, never by
//! comparing the Lease's renewTime with the controller's clock, and only counts as evidence
//! while observation works (see `gaps.rs`): the [`View`] says whether it does. Settling is
//! tracked from the last instant the node was seen unhealthy; unhealthy moments are only
//! recorded once caches are synced (or on probe evidence, which does not go through the API),
//! so a controller restart does not make every node unsettled.

use std::collections::BTreeMap;

use super::time::{Instant, Timing};
use crate::elect::{SharedLabels, SharedNode};
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

/// A [`NodeObservation`] as the controller keeps it: the name is the key it is kept under, and
/// the labels are shared with the elector (one copy per node, however many hold it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct ObservedNode {
    /// `metadata.labels`.
    pub labels: SharedLabels,
    /// The Ready condition is True.
    pub ready: bool,
    /// `spec.unschedulable`.
    pub unschedulable: bool,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
}

/// Why a node cannot carry a gateway: the first that applies, in this order. Stable CamelCase
/// names (`as_str`) go into Events, gateway status and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HealthReason {
    /// The Node object is not known (deleted).
    NodeGone,
    /// `metadata.deletionTimestamp` is set.
    NodeDeleting,
    /// `spec.unschedulable` (cordoned).
    NodeCordoned,
    /// The Node's Ready condition is not True.
    NodeNotReady,
    /// The node's direct probe (Cilium's health endpoint) failed the threshold.
    NodeProbeFailed,
    /// The kubelet heartbeat Lease was not seen renewed within `--node-lease-grace` while
    /// other nodes' heartbeats were (see `gaps.rs`).
    HeartbeatStale,
    /// No Ready cilium-agent Pod on the node.
    CiliumAgentNotReady,
    /// VIP gateways only: the VIP agent's `/readyz` probe failed the threshold.
    VipAgentProbeFailed,
    /// VIP gateways only: no Ready VIP agent Pod on the node.
    VipAgentNotReady,
}

impl HealthReason {
    /// The stable name used in Events, status and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthReason::NodeGone => "NodeGone",
            HealthReason::NodeDeleting => "NodeDeleting",
            HealthReason::NodeCordoned => "NodeCordoned",
            HealthReason::NodeNotReady => "NodeNotReady",
            HealthReason::NodeProbeFailed => "NodeProbeFailed",
            HealthReason::HeartbeatStale => "HeartbeatStale",
            HealthReason::CiliumAgentNotReady => "CiliumAgentNotReady",
            HealthReason::VipAgentProbeFailed => "VipAgentProbeFailed",
            HealthReason::VipAgentNotReady => "VipAgentNotReady",
        }
    }
}

/// A heartbeat Lease's renewTime, opaque: only ever compared for change. Kept inline when it
/// is short (the shell's RFC 3339 form, at most 30 bytes with nanoseconds, always is), so
/// that a heartbeat allocates nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Renewal {
    Short {
        len: u8,
        bytes: [u8; Renewal::SHORT],
    },
    Long(Box<str>),
}

impl Renewal {
    const SHORT: usize = 30;

    pub fn new(text: &str) -> Self {
        let mut bytes = [0; Renewal::SHORT];
        match bytes.get_mut(..text.len()) {
            Some(prefix) => {
                prefix.copy_from_slice(text.as_bytes());
                Renewal::Short {
                    len: text.len() as u8,
                    bytes,
                }
            }
            None => Renewal::Long(text.into()),
        }
    }

    /// The text it was made from.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Renewal::Short { len, bytes } => &bytes[..usize::from(*len)],
            Renewal::Long(text) => text.as_bytes(),
        }
    }
}

/// The agent Pods of one kind on one node, counted: health only asks whether any is Ready.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct PodCount {
    pub pods: u32,
    pub ready: u32,
}

impl PodCount {
    pub fn add(&mut self, ready: bool) {
        self.pods += 1;
        self.ready += u32::from(ready);
    }

    pub fn remove(&mut self, ready: bool) {
        self.pods = self.pods.saturating_sub(1);
        self.ready = self.ready.saturating_sub(u32::from(ready));
    }

    pub fn any_ready(&self) -> bool {
        self.ready > 0
    }

    /// There are Pods and none is Ready.
    pub fn none_ready(&self) -> bool {
        self.pods > 0 && self.ready == 0
    }
}

/// Consecutive failures of one direct probe, as reported by the shell.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct ProbeRecord {
    pub failures: u32,
}

impl ProbeRecord {
    /// At or past the failure threshold (`0` disables the verdict).
    pub fn failed(&self, timing: &Timing) -> bool {
        timing.probe_failures > 0 && self.failures >= timing.probe_failures
    }
}

/// Everything health is judged against besides the node itself: the instant, the durations,
/// and the state of observation (maintained by `gaps.rs`).
#[derive(Clone, Copy, Debug)]
pub(super) struct View {
    pub now: Instant,
    pub timing: Timing,
    /// The latest instant any node's heartbeat was observed to change: evidence that
    /// heartbeats are being observed at all.
    pub last_beat: Option<Instant>,
    /// Heartbeats of most nodes look stale at once: observation is lost, and heartbeat
    /// staleness is no evidence against any node.
    pub disrupted: bool,
    /// Caches are complete.
    pub synced: bool,
}

/// Everything known about one node.
#[derive(Clone, Debug, Default)]
pub(super) struct NodeHealth {
    pub node: Option<ObservedNode>,
    /// The heartbeat Lease's renewTime as last seen (opaque) and when it was seen to change
    /// (moved forward to the end of an observation gap, see `gaps.rs`).
    pub heartbeat: Option<(Renewal, Instant)>,
    /// cilium-agent Pods on this node (which ones: `Controller::cilium_pods`).
    pub cilium_pods: PodCount,
    /// VIP agent Pods on this node.
    pub vip_pods: PodCount,
    /// The direct probe of the node (Cilium's health endpoint).
    pub node_probe: ProbeRecord,
    /// The direct probe of the VIP agent's `/readyz`.
    pub agent_probe: ProbeRecord,
    /// The last instant this node was evaluated unhealthy (while synced, or on probe evidence).
    pub last_unhealthy: Option<Instant>,
    /// When the node's health last flipped, as observed (for the decision-latency metric).
    pub health_changed_at: Option<Instant>,
    /// Health at the last evaluation.
    pub was_healthy: Option<bool>,
    /// The instant at which this node is due for re-evaluation (see
    /// [`NodeHealth::next_change`]).
    pub scheduled: Option<Instant>,
    /// The instant of this node's entry in `Controller::due`, at or before `scheduled`. A
    /// `scheduled` that moves later (every heartbeat moves it) is queued only when that entry
    /// comes up, so the queue holds about one entry per node, not one per heartbeat.
    pub queued: Option<Instant>,
    /// Counted in `Observation::population`: has a Node object and a heartbeat (as of the
    /// last `track`).
    pub counted: bool,
    /// Counted in `Observation::overdue`.
    pub overdue: bool,
    /// Set while the heartbeat is past its grace but no later heartbeat of any other node
    /// has been seen yet (the key of `Controller::awaiting_progress`).
    pub awaiting_progress: Option<Instant>,
}

impl NodeHealth {
    /// The heartbeat is past its grace *and* some node's heartbeat was seen changing at least
    /// half a grace after this one's last change: without such progress nobody's heartbeat is
    /// being observed, and silence is no evidence. Unknown (no Lease seen yet) is not overdue.
    pub fn heartbeat_overdue(&self, view: &View) -> bool {
        self.heartbeat.as_ref().is_some_and(|(_, seen)| {
            view.now >= *seen + view.timing.node_lease_grace
                && view
                    .last_beat
                    .is_some_and(|beat| beat >= *seen + view.timing.node_lease_grace / 2)
        })
    }

    /// Past the grace without any progress evidence yet: re-judged when a heartbeat arrives.
    pub fn heartbeat_unconfirmed(&self, view: &View) -> bool {
        self.heartbeat.as_ref().is_some_and(|(_, seen)| {
            view.now >= *seen + view.timing.node_lease_grace && !self.heartbeat_overdue(view)
        })
    }

    fn heartbeat_stale(&self, view: &View) -> bool {
        !view.disrupted && self.heartbeat_overdue(view)
    }

    /// Evidence that nothing on this node can renew a Lease or answer for it: the node's
    /// direct probe or its VIP agent's probe failed the threshold, or its heartbeat is stale
    /// while other heartbeats are observed. A node merely NotReady, cordoned or with an agent
    /// Pod not Ready does not qualify. VIP takeover without waiting out the VIP Lease relies
    /// on this (and still ARP-probes first: a node cut off only from the controller answers).
    pub fn proves_unreachable(&self, view: &View) -> bool {
        self.node_probe.failed(&view.timing)
            || self.agent_probe.failed(&view.timing)
            || self.heartbeat_stale(view)
    }

    /// Why the node cannot carry a PrimaryIP gateway; `None` if it can.
    pub fn reason(&self, view: &View) -> Option<HealthReason> {
        let Some(node) = &self.node else {
            return Some(HealthReason::NodeGone);
        };
        if node.deleting {
            Some(HealthReason::NodeDeleting)
        } else if node.unschedulable {
            Some(HealthReason::NodeCordoned)
        } else if !node.ready {
            Some(HealthReason::NodeNotReady)
        } else if self.node_probe.failed(&view.timing) {
            Some(HealthReason::NodeProbeFailed)
        } else if self.heartbeat_stale(view) {
            Some(HealthReason::HeartbeatStale)
        } else if !self.cilium_ready() {
            Some(HealthReason::CiliumAgentNotReady)
        } else {
            None
        }
    }

    /// Why the node cannot carry a VIP gateway; `None` if it can.
    pub fn vip_reason(&self, view: &View) -> Option<HealthReason> {
        self.reason(view).or_else(|| {
            if self.agent_probe.failed(&view.timing) {
                Some(HealthReason::VipAgentProbeFailed)
            } else if !self.vip_ready() {
                Some(HealthReason::VipAgentNotReady)
            } else {
                None
            }
        })
    }

    /// No [`NodeHealth::reason`]. The VIP agent is not part of it: it only matters for VIP
    /// gateways.
    pub fn healthy(&self, view: &View) -> bool {
        self.reason(view).is_none()
    }

    /// A node without any cilium-agent Pod has no datapath: not ready.
    fn cilium_ready(&self) -> bool {
        self.cilium_pods.any_ready()
    }

    fn vip_ready(&self) -> bool {
        self.vip_pods.any_ready()
    }

    /// Records the health at `view.now` (before and after every observation and on every
    /// reconcile); returns the health.
    pub fn evaluate(&mut self, view: &View) -> bool {
        let healthy = self.healthy(view);
        // Probe failures do not go through the API: evidence even while caches are not synced.
        let evidence = view.synced || self.node_probe.failed(&view.timing);
        if evidence {
            if !healthy {
                self.last_unhealthy = Some(view.now);
            }
            if self.was_healthy.is_some_and(|was| was != healthy) {
                self.health_changed_at = Some(view.now);
            }
        }
        self.was_healthy = Some(healthy);
        healthy
    }

    /// Has the node been healthy for the settle time?
    pub fn settled(&self, view: &View) -> bool {
        self.last_unhealthy
            .is_none_or(|at| view.now >= at + view.timing.settle)
    }

    /// The facts election works on (for the node called `name`, sharing its labels); `None`
    /// while the Node object itself is unknown.
    pub fn facts(&self, name: &str, view: &View) -> Option<SharedNode> {
        let node = self.node.as_ref()?;
        let facts = NodeFacts {
            name: name.to_owned(),
            labels: BTreeMap::new(),
            ready: node.ready
                && !self.heartbeat_stale(view)
                && !self.node_probe.failed(&view.timing),
            unschedulable: node.unschedulable,
            deleting: node.deleting,
            cilium_agent_ready: Some(self.cilium_ready()),
            vip_agent_ready: Some(self.vip_ready() && !self.agent_probe.failed(&view.timing)),
            settled: self.settled(view),
        };
        Some(SharedNode::new(facts, SharedLabels::clone(&node.labels)))
    }

    /// Updates `scheduled` to the next change after `now`; returns it when it must be queued
    /// (it is earlier than what is queued already).
    pub fn reschedule(&mut self, view: &View) -> Option<Instant> {
        self.scheduled = self.next_change(view);
        let at = self.scheduled?;
        if self.queued.is_some_and(|queued| queued <= at) {
            return None;
        }
        self.queued = Some(at);
        Some(at)
    }

    /// The queue entry at `at` came up: is the node due now? If not, returns the later instant
    /// it must be queued at instead (its schedule moved), if any.
    pub fn dequeue(&mut self, at: Instant) -> Result<(), Option<Instant>> {
        if self.queued != Some(at) {
            // Superseded by an earlier entry, which has come up already.
            return Err(None);
        }
        self.queued = match self.scheduled {
            Some(scheduled) if scheduled == at => None,
            later => later,
        };
        match self.queued {
            None if self.scheduled.is_some() => Ok(()),
            queued => Err(queued),
        }
    }

    /// The next instant at which time alone changes this node's facts.
    pub fn next_change(&self, view: &View) -> Option<Instant> {
        let stale_at = self
            .heartbeat
            .as_ref()
            .map(|(_, seen)| *seen + view.timing.node_lease_grace)
            .filter(|at| *at > view.now);
        let settles_at = self
            .last_unhealthy
            .map(|at| at + view.timing.settle)
            .filter(|at| *at > view.now);
        match (stale_at, settles_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}
