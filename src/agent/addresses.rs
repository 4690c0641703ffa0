//! The address phase of one agent round: turn the planner's operations into what the Lease
//! allows (pure [`gate`]), carry them out with netlink and start the announcements
//! ([`AddressPhase::run`]).
//!
//! The planner knows only *which* VIPs are held. The protocol adds *when* they may be touched
//! (docs/lease-protocol.md, agent rule 3): a VIP is added or refreshed only right after a
//! successful Lease write, with the lifetime left since that write was sent
//! ([`VipIntent::Refresh`]); a held VIP without a fresh success is neither refreshed nor removed
//! ([`VipIntent::Keep`]), so the kernel deletes it by itself if the renewals keep failing.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::agent::announce::{BurstSchedule, PacketSocket, announce_burst, announcement_frames};
use crate::agent::metrics::Metrics;
use crate::agent::netlink::{AddressTable, NetlinkError};
use crate::agent::plan::{DesiredVip, Lifetimes, Op, Plan, PlanIssue, VipOnLink, is_ours, plan};

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

/// Until when a held VIP may be announced: the end of the kernel lifetime given at its latest
/// refresh, less a margin. The loop extends it after each refresh and closes it when the VIP is
/// dropped; the burst task checks it before every round. A deadline rather than a flag, so that
/// a process resumed after a stop (SIGSTOP, long pause) does not announce a VIP the kernel has
/// already removed before the loop gets to step down.
#[derive(Clone, Debug)]
pub struct AnnounceWindow {
    clock: std::time::Instant,
    until_ms: Arc<AtomicU64>,
}

impl AnnounceWindow {
    /// A closed window; `clock` is the epoch of the instants passed to [`Self::open_until`].
    pub fn new(clock: std::time::Instant) -> Self {
        AnnounceWindow {
            clock,
            until_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Allows announcements until `until` (time since the clock's epoch).
    pub fn open_until(&self, until: Duration) {
        let ms = u64::try_from(until.as_millis()).unwrap_or(u64::MAX);
        self.until_ms.store(ms, Ordering::Relaxed);
    }

    /// Stops announcements.
    pub fn close(&self) {
        self.until_ms.store(0, Ordering::Relaxed);
    }

    /// True while announcements are allowed.
    pub fn is_open(&self) -> bool {
        let now = u64::try_from(self.clock.elapsed().as_millis()).unwrap_or(u64::MAX);
        now < self.until_ms.load(Ordering::Relaxed)
    }
}

/// A held VIP for one round: where it should be and what the Lease allows.
#[derive(Clone, Debug)]
pub struct HeldVip {
    /// The gateway's VIP and interface preferences.
    pub vip: DesiredVip,
    /// What the Lease allows now.
    pub intent: VipIntent,
    /// Until when its announcement burst may continue.
    pub window: AnnounceWindow,
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
}

/// Runs address phases against one network namespace.
#[derive(Clone, Debug)]
pub struct AddressPhase {
    /// The kernel's address table.
    pub table: AddressTable,
    /// The announcement burst after a VIP is added.
    pub burst: BurstSchedule,
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
        let issues = planned.issues.clone();
        let ops = gate(planned, &intents);
        let mut skipped = Vec::new();
        for op in &ops {
            let Op::AddOrRefresh { vip, lifetimes } = op else {
                self.table.execute(op).await?;
                continue;
            };
            let deadline = held
                .iter()
                .find(|h| h.vip.ip == vip.ip)
                .and_then(|h| h.deadline);
            let Some(lifetimes) = lifetimes_at(*lifetimes, deadline, std::time::Instant::now())
            else {
                skipped.push(vip.ip);
                continue;
            };
            let vip = vip.clone();
            self.table
                .execute(&Op::AddOrRefresh {
                    vip: vip.clone(),
                    lifetimes,
                })
                .await?;
            // Stopped during the call itself: the address may now outlive the allowance.
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                self.table.execute(&Op::Remove(vip.clone())).await?;
                skipped.push(vip.ip);
            }
        }
        for op in &ops {
            if let Op::Announce { vip, mac } = op
                && !skipped.contains(&vip.ip)
            {
                let flag = held
                    .iter()
                    .find(|h| h.vip.ip == vip.ip)
                    .map(|h| h.window.clone());
                if let Some(flag) = flag {
                    self.announce(vip, announcement_frames(vip.ip, *mac), flag);
                }
            }
        }
        let after = self.table.observe().await?;
        let mut present: Vec<IpAddr> = after
            .addrs
            .iter()
            .filter(|a| is_ours(a, known))
            .map(|a| a.ip)
            .collect();
        present.sort();
        present.dedup();
        Ok(Outcome { present, issues })
    }

    /// Sends the first round now and the rest of the burst from a task that stops when the VIP
    /// is no longer held.
    fn announce(&self, vip: &VipOnLink, frames: Vec<Vec<u8>>, window: AnnounceWindow) {
        let socket = match PacketSocket::open(vip.ifindex) {
            Ok(socket) => socket,
            Err(error) => {
                tracing::warn!(%vip, %error, "cannot open a packet socket to announce the VIP");
                return;
            }
        };
        let sent = frames.iter().filter(|f| socket.send(f).is_ok()).count();
        self.metrics.garp_sent.inc_by(sent as u64);
        if sent < frames.len() {
            tracing::warn!(%vip, "some announcement frames could not be sent");
        }
        let rest = BurstSchedule {
            interval: self.burst.interval,
            duration: self.burst.duration.saturating_sub(self.burst.interval),
        };
        if self.burst.interval.is_zero() || self.burst.duration <= self.burst.interval {
            return;
        }
        let metrics = self.metrics.clone();
        let vip = vip.clone();
        tokio::spawn(async move {
            tokio::time::sleep(rest.interval).await;
            let per_round = frames.len() as u64;
            let check = || window.is_open();
            match announce_burst(&socket, &frames, rest, check).await {
                Ok(rounds) => {
                    metrics.garp_sent.inc_by(per_round * rounds as u64);
                }
                Err(error) => tracing::warn!(%vip, %error, "announcement burst failed"),
            }
        });
    }
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
    fn a_window_is_closed_until_opened_and_after_its_deadline() {
        let clock = std::time::Instant::now();
        let window = AnnounceWindow::new(clock);
        assert!(!window.is_open());
        window.open_until(clock.elapsed() + Duration::from_secs(3600));
        assert!(window.is_open());
        window.open_until(Duration::ZERO);
        assert!(!window.is_open(), "a deadline in the past");
        window.open_until(Duration::from_secs(3600));
        window.close();
        assert!(!window.is_open());
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
