//! What one reconcile asks the shell to do, as data. The plan is level-based: a write appears
//! again in every plan until its effect is observed, and VIP Lease writes carry the
//! `resourceVersion` they are conditioned on, so repeating one is harmless.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

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
    pub set: BTreeMap<String, String>,
    /// Label keys to remove.
    pub remove: BTreeSet<String>,
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
