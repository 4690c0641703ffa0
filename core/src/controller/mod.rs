//! The election half of `egressc sync`'s core: a state machine fed with observations from watches and
//! asked, at any instant, what to write. It does no I/O, holds no client and reads no clock:
//! every call takes `now` ([`Instant`]).
//!
//! # How it is driven
//!
//! `sync::sync_core::SyncCore` owns the controller and drives it as below (the shell only talks
//! to `SyncCore`); the deterministic simulation `core/tests/controller_sim.rs` drives it directly.
//!
//! 1. Create a [`Controller`] with [`Timing`].
//! 2. For every watch event call the matching method: `apply_node` / `delete_node`,
//!    `apply_node_lease` (kube-node-lease), `apply_cilium_pod` / `apply_vip_agent_pod` /
//!    `delete_pod`, `apply_cilium_node` / `delete_cilium_node`, `apply_vip_lease` /
//!    `delete_vip_lease`, `apply_gateway` / `delete_gateway` (validated gateways with their
//!    generation and stored status); for every direct probe result `apply_probe`, probing
//!    the nodes `probe_targets` names.
//! 3. When every watch has listed once, `set_synced(now, true)`; when a watch breaks (API
//!    outage, relist), `set_synced(now, false)` until it has listed again.
//! 4. After a batch of events, and at `plan.next_wakeup`, call [`Controller::reconcile`] and
//!    apply the [`Plan`]: label patches in order (Node and CiliumNode), VIP Lease writes
//!    conditioned on their `resourceVersion`, status patches (a [`TransitionTime::Now`] gets
//!    the shell's wall clock), events; export `decision_latencies` and
//!    [`Controller::failovers_total`]. The plan is level-based: writes repeat until observed.
//!
//! # Behaviour
//!
//! - Health: Node Ready and heartbeat Lease seen changing within `node_lease_grace`, direct
//!   probe not failing `probe_failures` times in a row, not cordoned, not deleting, a Ready
//!   cilium-agent Pod; for VIP gateways a Ready VIP agent Pod whose `/readyz` probe passes.
//!   Each failure has a [`HealthReason`], named in Events, status and metrics.
//! - Observation gaps are not evidence (`gaps.rs`): staleness clocks restart after a resync,
//!   silence counts only while other heartbeats move, and mass staleness is lost observation.
//! - Settle: a node recovering from unhealthy gets no new assignments for `settle`.
//! - Adoption: the first reconcile after sync builds the election from the observed
//!   `active-for-…` labels, so a restart moves nothing.
//! - VIP gateways follow docs/lease-protocol.md: grant, wait for the agent's confirmation,
//!   only then move the label.

pub mod conditions;
mod gaps;
mod health;
mod labels;
mod plan;
mod probe;
mod reconcile;
mod state;
mod status;
mod time;
mod vip;

pub use conditions::VIP_PENDING;
pub use gaps::{DISRUPTION_MIN_NODES, DISRUPTION_PERCENT, DisruptionChange};
pub use health::{HealthReason, NodeObservation};
pub use plan::{DecisionLatency, Event, LabelKeys, LabelPatch, LabelSet, NodeKind, Plan, VipWrite};
pub use probe::{ProbeTarget, ProbeTargets};
pub use state::Controller;
pub use status::{
    ConditionUpdate, ObservedCondition, ObservedStatus, StatusUpdate, TransitionTime,
};
pub use time::{Instant, Timing};
pub use vip::{
    GATEWAY_ANNOTATION, GRANT_ANNOTATION, READY_ANNOTATION, TAKEOVER_ANNOTATION, VIP_ANNOTATION,
    VipLeaseObservation, lease_name,
};
