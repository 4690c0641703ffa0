//! The controller's side of the VIP Lease handshake (docs/lease-protocol.md, "Controller
//! rules"): from the observed Lease and election's desired node, the one write to make next
//! and whether the desired node has confirmed the VIP, so the label may move to it.
//!
//! A holder is taken over when it is dead by the Lease (no renewal observed for `D`) or, at
//! once, when its node shows evidence that it cannot renew ([`cannot_renew`]). A takeover marks
//! the Lease, and the next holder probes the LAN before it brings the VIP up, so a takeover is
//! safe at any time: a holder that still has the VIP keeps it until its kernel stops answering.

use super::health::{NodeHealth, View};
use super::plan::VipWrite;
use super::time::{Instant, Timing};

pub use crate::lease_protocol::{
    GATEWAY_ANNOTATION, GRANT_ANNOTATION, READY_ANNOTATION, TAKEOVER_ANNOTATION, VIP_ANNOTATION,
    lease_name,
};

/// What the controller reads from a VIP Lease. Empty strings in the object are `None` here.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VipLeaseObservation {
    /// `metadata.resourceVersion`; every write is conditioned on it.
    pub resource_version: String,
    /// The `vip-grant` annotation.
    pub grant: Option<String>,
    /// `spec.holderIdentity`.
    pub holder: Option<String>,
    /// The `vip-ready` annotation.
    pub ready: Option<String>,
    /// `spec.renewTime`, opaque: only compared for change.
    pub renew_time: Option<String>,
}

/// An observed VIP Lease and when its holder was last seen alive.
#[derive(Clone, Debug)]
pub(super) struct VipLease {
    pub observed: VipLeaseObservation,
    /// When `holder` or `renew_time` was last seen to change (or first seen).
    pub last_change: Instant,
}

impl VipLease {
    pub fn observe(
        previous: Option<VipLease>,
        observed: VipLeaseObservation,
        now: Instant,
    ) -> Self {
        let last_change = match previous {
            Some(prev)
                if prev.observed.holder == observed.holder
                    && prev.observed.renew_time == observed.renew_time =>
            {
                prev.last_change
            }
            _ => now,
        };
        VipLease {
            observed,
            last_change,
        }
    }

    fn holder_alive(&self, now: Instant, timing: &Timing) -> bool {
        now < self.last_change + timing.vip_lease_duration
    }
}

/// Evidence that the VIP agent on the holder's node cannot renew its Lease, so waiting out `D`
/// only delays the takeover: the node is gone or being deleted, health proves it unreachable
/// ([`NodeHealth::proves_unreachable`]: its Cilium health endpoint or its VIP agent's `/readyz`
/// failed the probe threshold, or its kubelet heartbeat is stale while others progress), or its
/// VIP agent Pods are all not Ready (a dead agent on a live node). Node `Ready` alone is not
/// evidence: a NotReady node's agent usually still runs and releases the VIP itself, which is
/// faster than a takeover and needs no probe.
pub(super) fn cannot_renew(node: Option<&NodeHealth>, view: &View) -> bool {
    let Some(node) = node else {
        return true;
    };
    let gone = node.node.as_ref().is_none_or(|n| n.deleting);
    let agent_dead = node.vip_pods.none_ready();
    gone || node.proves_unreachable(view) || agent_dead
}

/// The handshake's verdict for one gateway at one instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct VipStep {
    pub write: Option<VipWrite>,
    /// `grant == holder == ready == desired` and the holder is alive: the label may be on it.
    pub confirmed: bool,
    /// When time alone changes the verdict (a holder becoming dead).
    pub wakeup: Option<Instant>,
}

/// Decides the next VIP Lease write for `gateway` towards `desired`; `holder_cannot_renew` is
/// [`cannot_renew`] for the Lease's current holder.
pub(super) fn step(
    gateway: &str,
    vip: &str,
    desired: Option<&str>,
    lease: Option<&VipLease>,
    holder_cannot_renew: bool,
    now: Instant,
    timing: &Timing,
) -> VipStep {
    let Some(lease) = lease else {
        let create = VipWrite::Create {
            gateway: gateway.to_owned(),
            lease: lease_name(gateway),
            vip: vip.to_owned(),
            duration_seconds: timing.vip_lease_duration.as_secs().max(1),
        };
        return VipStep {
            write: Some(create),
            confirmed: false,
            wakeup: None,
        };
    };
    let seen = &lease.observed;
    let alive = lease.holder_alive(now, timing);
    // A holder that may be taken over now: dead by the Lease, or unable to renew by its node.
    let replaceable = !alive || holder_cannot_renew;
    let death =
        (seen.holder.is_some() && alive).then(|| lease.last_change + timing.vip_lease_duration);
    let conditional = |write: fn(String, String, String) -> VipWrite| {
        Some(write(
            gateway.to_owned(),
            lease_name(gateway),
            seen.resource_version.clone(),
        ))
    };
    let withdraw = |g, l, rv| VipWrite::Withdraw {
        gateway: g,
        lease: l,
        resource_version: rv,
    };
    let grant = |target: &str, holder: Option<&str>| {
        Some(VipWrite::Grant {
            gateway: gateway.to_owned(),
            lease: lease_name(gateway),
            resource_version: seen.resource_version.clone(),
            node: target.to_owned(),
            takeover: holder.is_some_and(|h| h != target),
        })
    };
    let write = match (desired, seen.grant.as_deref()) {
        (None, None) => None,
        (None, Some(_)) => conditional(withdraw),
        // The holder cannot release: grant and take over in one write, no withdrawal first.
        (Some(target), Some(granted))
            if granted != target
                && seen.holder.as_deref().is_some_and(|h| h != target)
                && replaceable =>
        {
            grant(target, seen.holder.as_deref())
        }
        (Some(target), Some(granted)) if granted != target => conditional(withdraw),
        (Some(_), Some(_)) => None,
        (Some(target), None) => match seen.holder.as_deref() {
            Some(holder) if holder != target && !replaceable => None,
            holder => grant(target, holder),
        },
    };
    let confirmed = desired.is_some_and(|target| {
        seen.grant.as_deref() == Some(target)
            && seen.holder.as_deref() == Some(target)
            && seen.ready.as_deref() == Some(target)
            && alive
    });
    VipStep {
        write,
        confirmed,
        wakeup: death,
    }
}
