//! The address phase of one agent round: turn the planner's operations into what the Lease
//! allows (pure [`gate`]), carry them out with netlink and start the announcements
//! ([`AddressPhase::run`]).
//!
//! The planner knows only *which* VIPs are held. The protocol adds *when* they may be touched
//! (docs/lease-protocol.md, agent rule 3): a VIP is added or refreshed only right after a
//! successful Lease write, with the lifetime left since that write was sent
//! ([`VipIntent::Refresh`]); a held VIP without a fresh success is neither refreshed nor removed
//! here ([`VipIntent::Keep`]): the kernel deletes it by itself unless the keeper holds it
//! through an outage (`keeper`).
//!
//! Adding an address that is not there (a bring-up) follows a free probe round
//! (docs/lease-protocol.md, "Probing") unless the loop says it follows a graceful acquire; a
//! present address is only extended while it is surely still there (its known expiry is more
//! than a margin away), so an address that expired is never re-created without a probe.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::agent::announce::{BurstSchedule, PacketSocket, announcement_frames};
use crate::agent::conflict::{ProbeOutcome, ProbeSchedule, Sighting};
use crate::agent::frames::MacAddr;
use crate::agent::keeper::{Keeper, LanReport, VipKeep};
use crate::agent::lan::probe_round;
use crate::agent::metrics::Metrics;
use crate::agent::netlink::{AddressTable, NetlinkError};
use crate::agent::plan::{
    DesiredVip, Lifetimes, Observed, Op, Plan, PlanIssue, VipOnLink, is_ours, plan,
};

/// What the Lease allows for a held VIP in this round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VipIntent {
    /// A Lease write just succeeded: add or refresh with these lifetimes (and announce if new).
    Refresh(Lifetimes),
    /// Held, but no fresh successful write: leave the address as it is.
    Keep,
}

/// The planner's operations restricted to what the Lease allows: removals as planned, adds and
/// refreshes (with the given lifetimes) and announcements only for [`VipIntent::Refresh`].
pub fn gate(plan: Plan, intents: &BTreeMap<IpAddr, VipIntent>) -> Vec<Op> {
    plan.ops
        .into_iter()
        .filter_map(|op| match op {
            Op::Remove(_) => Some(op),
            Op::AddOrRefresh { vip, .. } => match intents.get(&vip.ip) {
                Some(VipIntent::Refresh(lifetimes)) => Some(Op::AddOrRefresh {
                    vip,
                    lifetimes: *lifetimes,
                }),
                _ => None,
            },
            Op::Announce { ref vip, .. } => {
                matches!(intents.get(&vip.ip), Some(VipIntent::Refresh(_))).then_some(op)
            }
        })
        .collect()
}

/// A held VIP for one round: where it should be and what the Lease allows.
#[derive(Clone, Debug)]
pub struct HeldVip {
    /// The gateway's VIP and interface preferences.
    pub vip: DesiredVip,
    /// What the Lease allows now.
    pub intent: VipIntent,
    /// State shared with the VIP's keeper task.
    pub keep: Arc<VipKeep>,
    /// A bring-up (adding the address where it is not) must follow a free probe round.
    pub probe: bool,
    /// When the lifetime the Lease allows runs out (send time of the latest successful write
    /// plus the address lifetime), on this process's monotonic clock.
    pub deadline: Option<std::time::Instant>,
}

/// The lifetimes to set at `now` for a VIP whose Lease allowance ends at `deadline`: the planned
/// ones, cut to the whole seconds that are really left. `None`: nothing is left, do not touch
/// the address.
///
/// Re-derived right before the netlink call because the round may have been computed long
/// before it runs: a process stopped (SIGSTOP, a long pause) between reading the clock and
/// adding the address would otherwise give the kernel a lifetime from a stale reading and
/// resurrect a VIP that another node may already hold.
pub fn lifetimes_at(
    planned: Lifetimes,
    deadline: Option<std::time::Instant>,
    now: std::time::Instant,
) -> Option<Lifetimes> {
    let Some(deadline) = deadline else {
        return Some(planned);
    };
    let left = u32::try_from(deadline.saturating_duration_since(now).as_secs()).unwrap_or(u32::MAX);
    let valid_secs = planned.valid_secs.min(left);
    (valid_secs > 0).then_some(Lifetimes {
        valid_secs,
        preferred_secs: planned.preferred_secs.min(valid_secs),
    })
}

/// The result of one address phase.
#[derive(Debug, Default)]
pub struct Outcome {
    /// VIPs configured on this node after the round (ours, host prefix, finite lifetime).
    pub present: Vec<IpAddr>,
    /// Problems the planner reported.
    pub issues: Vec<PlanIssue>,
    /// Bring-ups held back because a probe round heard another MAC.
    pub blocked: Vec<(IpAddr, Sighting)>,
}

/// Runs address phases against one network namespace.
#[derive(Clone, Debug)]
pub struct AddressPhase {
    /// The kernel's address table.
    pub table: AddressTable,
    /// The announcement burst after a VIP is added.
    pub burst: BurstSchedule,
    /// Periodic announcements after the burst.
    pub advert_interval: Duration,
    /// Probe rounds before bring-ups.
    pub probe: ProbeSchedule,
    /// Outage-hold refresh period and lifetime (renew interval and `L`).
    pub hold: (Duration, Lifetimes),
    /// Where keepers report what they hear.
    pub reports: mpsc::Sender<LanReport>,
    /// Counts announcement frames.
    pub metrics: Metrics,
}

impl AddressPhase {
    /// Makes the node carry exactly `held` (as far as the Lease allows) among the `known` VIPs:
    /// removals first, then adds and refreshes, then the first announcement round of every
    /// newly added VIP; the rest of each burst runs in a spawned task.
    pub async fn run(
        &self,
        held: &[HeldVip],
        known: &std::collections::BTreeSet<IpAddr>,
    ) -> Result<Outcome, NetlinkError> {
        let observed = self.table.observe().await?;
        let desired: Vec<DesiredVip> = held.iter().map(|h| h.vip.clone()).collect();
        let intents = held.iter().map(|h| (h.vip.ip, h.intent)).collect();
        let planned = plan(&desired, known, &observed, Lifetimes::default());
        let mut outcome = Outcome {
            issues: planned.issues.clone(),
            ..Outcome::default()
        };
        let ops = gate(planned, &intents);
        let mut brought_up = Vec::new();
        for op in &ops {
            let Op::AddOrRefresh { vip, lifetimes } = op else {
                if let Op::Remove(vip) = op
                    && let Some(h) = held.iter().find(|h| h.vip.ip == vip.ip)
                {
                    // Moving links: the keeper must not extend what is being removed.
                    let _edit = h.keep.edit.lock().await;
                    self.table.execute(op).await?;
                    h.keep.removed();
                    continue;
                }
                self.table.execute(op).await?;
                continue;
            };
            let Some(h) = held.iter().find(|h| h.vip.ip == vip.ip) else {
                continue;
            };
            let mac = link_mac(&observed, vip.ifindex);
            match self
                .add_or_refresh(h, vip, *lifetimes, mac, &observed)
                .await?
            {
                Added::BroughtUp => brought_up.push((vip.clone(), mac, h.keep.clone())),
                Added::Extended | Added::Skipped => {}
                Added::Blocked(sighting) => outcome.blocked.push((vip.ip, sighting)),
            }
        }
        for (vip, mac, keep) in brought_up {
            if let Some(mac) = mac {
                self.announce(&vip, mac, keep);
            }
        }
        let after = self.table.observe().await?;
        outcome.present = after
            .addrs
            .iter()
            .filter(|a| is_ours(a, known))
            .map(|a| a.ip)
            .collect();
        outcome.present.sort();
        outcome.present.dedup();
        Ok(outcome)
    }

    /// One add or refresh, under the VIP's edit lock: an extension when the address is surely
    /// there, otherwise a bring-up (after a free probe round when `h.probe`).
    async fn add_or_refresh(
        &self,
        h: &HeldVip,
        vip: &VipOnLink,
        planned: Lifetimes,
        mac: Option<MacAddr>,
        observed: &Observed,
    ) -> Result<Added, NetlinkError> {
        let _edit = h.keep.edit.lock().await;
        let present = observed
            .addrs
            .iter()
            .any(|a| a.ip == vip.ip && a.ifindex == vip.ifindex)
            && h.keep.surely_present(std::time::Instant::now());
        if !present
            && h.probe
            && let Some(mac) = mac
        {
            match probe_round(vip.ifindex, mac, vip.ip, &self.probe).await {
                Ok(ProbeOutcome::Free) => {}
                Ok(ProbeOutcome::Taken(sighting)) => {
                    self.metrics.probe_conflicts.inc();
                    return Ok(Added::Blocked(sighting));
                }
                Err(error) => {
                    tracing::warn!(%vip, %error, "cannot probe for the VIP; not adding it");
                    return Ok(Added::Skipped);
                }
            }
        }
        let probed = std::time::Instant::now();
        let sent = std::time::Instant::now();
        let Some(lifetimes) = lifetimes_at(planned, h.deadline, sent) else {
            return Ok(Added::Skipped);
        };
        self.table
            .execute(&Op::AddOrRefresh {
                vip: vip.clone(),
                lifetimes,
            })
            .await?;
        let done = std::time::Instant::now();
        // Stopped during the call itself: the address may now outlive the allowance, or a
        // probe result (or the presence it relied on) may have gone stale.
        let stale_probe = !present && h.probe && done.duration_since(probed) > self.probe.fresh_for;
        let lost_presence = present && !h.keep.surely_present(done);
        if h.deadline.is_some_and(|d| done >= d) || stale_probe || lost_presence {
            self.table.execute(&Op::Remove(vip.clone())).await?;
            h.keep.removed();
            return Ok(Added::Skipped);
        }
        h.keep.refreshed(sent, lifetimes);
        Ok(if present {
            Added::Extended
        } else {
            Added::BroughtUp
        })
    }

    /// Sends the first round now and hands the VIP to its keeper (burst, adverts, listening,
    /// outage hold).
    fn announce(&self, vip: &VipOnLink, mac: MacAddr, keep: Arc<VipKeep>) {
        match PacketSocket::open(vip.ifindex) {
            Ok(socket) => {
                let frames = announcement_frames(vip.ip, mac);
                let sent = frames.iter().filter(|f| socket.send(f).is_ok()).count();
                self.metrics.garp_sent.inc_by(sent as u64);
                if sent < frames.len() {
                    tracing::warn!(%vip, "some announcement frames could not be sent");
                }
            }
            Err(error) => {
                tracing::warn!(%vip, %error, "cannot open a packet socket to announce the VIP");
            }
        }
        Keeper {
            table: self.table.clone(),
            vip: vip.clone(),
            mac,
            keep,
            burst: self.burst,
            advert_interval: self.advert_interval,
            refresh_every: self.hold.0,
            lifetime: self.hold.1,
            reports: self.reports.clone(),
            metrics: self.metrics.clone(),
        }
        .spawn();
    }
}

/// What one add or refresh came to.
enum Added {
    /// A present address got new lifetimes.
    Extended,
    /// The address was added.
    BroughtUp,
    /// Nothing was done (no allowance left, a stale probe, a failed probe).
    Skipped,
    /// A probe round heard another MAC.
    Blocked(Sighting),
}

fn link_mac(observed: &Observed, ifindex: u32) -> Option<MacAddr> {
    observed
        .links
        .iter()
        .find(|l| l.index == ifindex)
        .and_then(|l| l.mac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::frames::MacAddr;

    fn on_link(ip: [u8; 4]) -> VipOnLink {
        VipOnLink {
            ifindex: 2,
            ifname: "eth0".into(),
            ip: IpAddr::from(ip),
        }
    }

    fn planned() -> Plan {
        let mac = MacAddr([2, 0, 0, 0, 0, 1]);
        Plan {
            ops: vec![
                Op::Remove(on_link([198, 51, 100, 9])),
                Op::AddOrRefresh {
                    vip: on_link([198, 51, 100, 1]),
                    lifetimes: Lifetimes::default(),
                },
                Op::AddOrRefresh {
                    vip: on_link([198, 51, 100, 2]),
                    lifetimes: Lifetimes::default(),
                },
                Op::Announce {
                    vip: on_link([198, 51, 100, 1]),
                    mac,
                },
                Op::Announce {
                    vip: on_link([198, 51, 100, 2]),
                    mac,
                },
            ],
            issues: vec![],
        }
    }

    #[test]
    fn refresh_gets_the_lease_lifetime_keep_is_left_alone_removals_stay() {
        let one = Lifetimes {
            valid_secs: 1,
            preferred_secs: 1,
        };
        let intents = BTreeMap::from([
            (IpAddr::from([198, 51, 100, 1]), VipIntent::Refresh(one)),
            (IpAddr::from([198, 51, 100, 2]), VipIntent::Keep),
        ]);
        let ops = gate(planned(), &intents);
        assert_eq!(ops.len(), 3, "{ops:?}");
        assert_eq!(ops[0], Op::Remove(on_link([198, 51, 100, 9])));
        assert_eq!(
            ops[1],
            Op::AddOrRefresh {
                vip: on_link([198, 51, 100, 1]),
                lifetimes: one
            }
        );
        assert!(
            matches!(&ops[2], Op::Announce { vip, .. } if vip.ip == IpAddr::from([198, 51, 100, 1]))
        );
    }

    #[test]
    fn lifetimes_are_cut_to_what_is_left_at_the_call() {
        let planned = Lifetimes {
            valid_secs: 2,
            preferred_secs: 2,
        };
        let now = std::time::Instant::now();
        // No Lease deadline (nothing to cut against): as planned.
        assert_eq!(lifetimes_at(planned, None, now), Some(planned));
        // 1.5 s left: one whole second.
        let one = lifetimes_at(planned, Some(now + Duration::from_millis(1500)), now);
        assert_eq!(one.map(|l| (l.valid_secs, l.preferred_secs)), Some((1, 1)));
        // Plenty left: never more than planned.
        assert_eq!(
            lifetimes_at(planned, Some(now + Duration::from_secs(60)), now),
            Some(planned)
        );
        // A process that resumes after the allowance ran out must not touch the address.
        assert_eq!(
            lifetimes_at(planned, Some(now + Duration::from_millis(900)), now),
            None
        );
        assert_eq!(
            lifetimes_at(planned, Some(now), now + Duration::from_secs(5)),
            None
        );
    }
}
