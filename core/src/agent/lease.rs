//! The agent's side of the VIP Lease protocol (docs/lease-protocol.md, "Agent rules"), pure:
//! from what the agent last read of one gateway's Lease and what it holds locally, the next
//! step. No I/O and no clock: `now` is an instant on the agent's monotonic clock.
//!
//! The rules map onto [`decide`] as follows (numbers are the protocol's agent rules):
//! 1. grant is me, holder empty → [`Action::Acquire`];
//! 2. after a successful acquire the shell brings the VIP up with [`address_lifetime`] and
//!    announces, then [`decide`] asks for the `vip-ready` write ([`Action::Renew`] with
//!    `mark_ready`);
//! 3. grant and holder are me → [`Action::Renew`] every renew interval; lifetimes are refreshed
//!    only from the send time of a successful write ([`address_lifetime`]);
//! 4. grant is not me but holder is → [`Action::Release`] (VIP first, then the write);
//! 5. holder is someone else (or the Lease is gone) while I hold → [`Action::StepDown`];
//! 6. holder is someone else → never [`Action::Acquire`], whatever the Lease's times say;
//! 7. renewals fail without a conflict while the VIP is up → [`outage_hold`]: the keeper holds
//!    the VIP on the LAN's word; it yielded to another MAC → [`Action::Release`];
//! 8. a bring-up probes first ([`bring_up_needs_probe`]) unless it follows an acquire of a
//!    Lease that was released, not taken over.

use std::time::Duration;

use crate::agent::plan::Lifetimes;
use crate::lease_protocol::{ADDRESS_LIFETIME, RENEW_INTERVAL};
use crate::time::Instant;

/// What the agent read of one VIP Lease. Empty strings in the object are `None` here.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseView {
    /// `metadata.resourceVersion`; every write is conditioned on it.
    pub resource_version: String,
    /// The `vip-grant` annotation (written by the controller only).
    pub grant: Option<String>,
    /// `spec.holderIdentity`.
    pub holder: Option<String>,
    /// The `vip-ready` annotation.
    pub ready: Option<String>,
    /// The `vip-takeover` annotation is set: the controller cleared the last holder without
    /// its release, so the VIP may still be on that node.
    pub takeover: bool,
}

/// What this agent holds for one gateway, as far as it knows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Local {
    /// Send time of the latest write that succeeded and left this node the holder (acquire or
    /// renewal); `None` while the agent does not hold the gateway.
    pub last_successful_send: Option<Instant>,
    /// When the latest write (successful or not) was sent: paces renewals.
    pub last_attempt: Option<Instant>,
    /// The VIP has been added and its first announcement round sent since the acquisition.
    pub vip_up: bool,
    /// The latest renewal failed without a conflict (error, timeout, 5xx): the API cannot be
    /// reached, which says nothing about who holds the Lease.
    pub renew_failing: bool,
    /// The keeper gave the VIP up during an outage hold (another MAC probed or claimed it).
    pub yielded: bool,
    /// The next bring-up follows an acquire of a released (not taken over) Lease and needs no
    /// probe.
    pub graceful_bring_up: bool,
}

impl Local {
    /// True while the agent believes it holds the gateway (it may have the VIP configured).
    pub fn holding(&self) -> bool {
        self.last_successful_send.is_some()
    }
}

/// The agent's protocol constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AgentTiming {
    /// How often the holder renews.
    pub renew_interval: Duration,
    /// `L`: how long the VIP outlives the send of the latest successful renewal.
    pub address_lifetime: Duration,
}

impl Default for AgentTiming {
    /// 500 ms and 2 s (docs/lease-protocol.md, "Timing").
    fn default() -> Self {
        AgentTiming {
            renew_interval: RENEW_INTERVAL,
            address_lifetime: ADDRESS_LIFETIME,
        }
    }
}

/// The next step for one gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// No write now; decide again at `wake` (or on the next Lease change).
    Wait {
        /// When a renewal falls due; `None` when only a Lease change can change the verdict.
        wake: Option<Instant>,
    },
    /// Write `holderIdentity = me`, `acquireTime`, `renewTime`, `leaseTransitions + 1`.
    Acquire,
    /// Write a new `renewTime`; with `mark_ready` also `vip-ready = me`.
    Renew {
        /// The VIP is up and announced but the Lease does not say so yet.
        mark_ready: bool,
    },
    /// Delete the VIP, then write `holderIdentity = ""`, `vip-ready = ""`.
    Release,
    /// Delete the VIP at once and write nothing.
    StepDown,
}

/// Decides the next step for one gateway's Lease (`None`: the Lease does not exist).
pub fn decide(
    lease: Option<&LeaseView>,
    me: &str,
    now: Instant,
    local: &Local,
    timing: &AgentTiming,
) -> Action {
    let Some(lease) = lease else {
        return step_down_or_wait(local);
    };
    let granted = lease.grant.as_deref() == Some(me);
    match lease.holder.as_deref() {
        Some(holder) if holder != me => step_down_or_wait(local),
        // Holding: release at once (the VIP goes first); already dropped: a paced retry.
        Some(_) if !granted && local.holding() => Action::Release,
        Some(_) if !granted => paced(Action::Release, now, local, timing),
        // Yielded on the LAN's word: the Lease goes back (the VIP is already gone).
        Some(_) if local.yielded && local.holding() => Action::Release,
        Some(_) if local.yielded => paced(Action::Release, now, local, timing),
        None if !granted => step_down_or_wait(local),
        None => paced(Action::Acquire, now, local, timing),
        // Right after the bring-up that followed a successful write; after a failed write the
        // `vip-ready` write waits like any retry.
        Some(_) if local.vip_up && lease.ready.as_deref() != Some(me) => {
            let last_write_succeeded = local.last_attempt == local.last_successful_send;
            let mark = Action::Renew { mark_ready: true };
            if last_write_succeeded {
                mark
            } else {
                paced(mark, now, local, timing)
            }
        }
        // Granted and holding (or holding before a restart: the renewal re-confirms it
        // before the VIP is brought up again).
        Some(_) => paced(Action::Renew { mark_ready: false }, now, local, timing),
    }
}

/// `action`, unless the previous write was sent less than a renew interval ago: writes are
/// not retried faster than renewals (a conflict clears `last_attempt` for an immediate retry).
fn paced(action: Action, now: Instant, local: &Local, timing: &AgentTiming) -> Action {
    match local.last_attempt.map(|sent| sent + timing.renew_interval) {
        Some(due) if due > now => Action::Wait { wake: Some(due) },
        _ => action,
    }
}

/// What to do at shutdown (agent rule 4): release a Lease this node holds, otherwise only drop
/// whatever VIP it may still carry.
pub fn decide_shutdown(lease: Option<&LeaseView>, me: &str) -> Action {
    match lease {
        Some(view) if view.holder.as_deref() == Some(me) => Action::Release,
        _ => Action::StepDown,
    }
}

fn step_down_or_wait(local: &Local) -> Action {
    if local.holding() {
        Action::StepDown
    } else {
        Action::Wait { wake: None }
    }
}

/// Rule 7: the keeper holds the VIP through an outage when the holder has it up, its latest
/// renewal failed without a conflict, and it has not yielded.
pub fn outage_hold(local: &Local) -> bool {
    local.holding() && local.vip_up && local.renew_failing && !local.yielded
}

/// Rule 8: a bring-up probes first unless it follows an acquire of a released Lease.
pub fn bring_up_needs_probe(local: &Local) -> bool {
    !local.graceful_bring_up
}

/// What the address phase may give a held VIP now (rules 2, 3): after a successful write
/// (`fresh`), the lifetime left since its send; while the VIP is not up yet (a bring-up held
/// back by a probe round), the same allowance without a new write; otherwise nothing (the
/// address is left to the kernel and the keeper).
pub fn allowance(
    now: Instant,
    local: &Local,
    fresh: bool,
    timing: &AgentTiming,
) -> Option<Lifetimes> {
    let sent = local.last_successful_send?;
    (fresh || !local.vip_up)
        .then(|| address_lifetime(now, sent, timing.address_lifetime))
        .flatten()
}

/// The lifetimes to give the VIP now (agent rules 2 and 3): what is left of `L` since the send
/// of the latest successful write, rounded down to whole seconds because the kernel counts
/// lifetimes in seconds; `None` when not even one second is left (do not add or refresh).
pub fn address_lifetime(
    now: Instant,
    last_successful_send: Instant,
    address_lifetime: Duration,
) -> Option<Lifetimes> {
    let left = address_lifetime.checked_sub(now.since(last_successful_send))?;
    let secs = u32::try_from(left.as_secs()).unwrap_or(u32::MAX);
    (secs > 0).then_some(Lifetimes {
        valid_secs: secs,
        preferred_secs: secs,
    })
}

#[cfg(test)]
mod tests;
