//! The holder's companion task for one VIP (shell), started when the VIP is brought up and
//! stopped when the agent drops it (docs/lease-protocol.md, holder rules):
//! - announces the VIP: the burst after the bring-up, then every advert interval, so that a
//!   node that was cut from the LAN hears the holder soon after the cut heals;
//! - listens on the VIP's interface and reacts to other MACs as `conflict::holder_reaction`
//!   says: yields (deletes the VIP itself, at once) during an outage hold, re-announces against
//!   a stray claim while leased;
//! - during an outage hold (renewals fail without a conflict), keeps extending the lifetime of
//!   the address — only while it is provably still there, so an address that expired (a
//!   stopped process) is never re-created — and only while the link is up.
//!
//! [`VipKeep`] is the state it shares with the agent loop. Every change to the address made by
//! either side happens under [`VipKeep::edit`], and the keeper re-checks the state inside it,
//! so the loop's removal can never be overtaken by a hold refresh.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::agent::announce::{BurstSchedule, PacketSocket, announcement_frames};
use crate::agent::conflict::{Reaction, Sighting, Standing, holder_reaction};
use crate::agent::frames::MacAddr;
use crate::agent::lan::LanListener;
use crate::agent::metrics::Metrics;
use crate::agent::netlink::AddressTable;
use crate::agent::plan::{Lifetimes, VipOnLink};

/// Presence of the address is only relied on up to this long before its known expiry: covers
/// the kernel's expiry timer running slightly early and the time a refresh takes.
pub const PRESENCE_MARGIN: Duration = Duration::from_millis(200);
/// How often the keeper looks at the hold (and at its announcement schedule).
const TICK: Duration = Duration::from_millis(100);
/// Announcements stop this long before the address's known expiry.
pub const ANNOUNCE_MARGIN: Duration = Duration::from_millis(100);

/// State one held VIP shares between the agent loop and its keeper task. Times are
/// milliseconds since `clock` (the loop's epoch); 0 means "never" / "not known".
#[derive(Debug)]
pub struct VipKeep {
    clock: std::time::Instant,
    announce_until_ms: AtomicU64,
    present_until_ms: AtomicU64,
    outage_hold: AtomicBool,
    closed: AtomicBool,
    keeper_running: AtomicBool,
    /// Held while the address is added, refreshed or removed.
    pub edit: tokio::sync::Mutex<()>,
}

impl VipKeep {
    /// A closed announcement window, nothing known about the address, no hold.
    pub fn new(clock: std::time::Instant) -> Arc<Self> {
        Arc::new(VipKeep {
            clock,
            announce_until_ms: AtomicU64::new(0),
            present_until_ms: AtomicU64::new(0),
            outage_hold: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            keeper_running: AtomicBool::new(false),
            edit: tokio::sync::Mutex::new(()),
        })
    }

    fn ms(at: Duration) -> u64 {
        u64::try_from(at.as_millis()).unwrap_or(u64::MAX)
    }

    fn since_epoch(&self, at: std::time::Instant) -> u64 {
        Self::ms(at.saturating_duration_since(self.clock))
    }

    /// Allows announcements until `until` (time since the clock's epoch).
    pub fn open_until(&self, until: Duration) {
        self.announce_until_ms
            .store(Self::ms(until), Ordering::SeqCst);
    }

    /// True while announcements are allowed.
    pub fn is_open(&self) -> bool {
        !self.is_closed()
            && self.since_epoch(std::time::Instant::now())
                < self.announce_until_ms.load(Ordering::SeqCst)
    }

    /// The VIP is no longer held: no announcements, no hold, the keeper stops.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.announce_until_ms.store(0, Ordering::SeqCst);
        self.outage_hold.store(false, Ordering::SeqCst);
    }

    /// Closed by the loop or by the keeper's yield.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Records an add or refresh that was *sent* at `sent` with `lifetimes`: the kernel keeps
    /// the address at least until `sent + valid` (it starts counting when it processes the
    /// request, which is later), and announcements may go on until shortly before.
    pub fn refreshed(&self, sent: std::time::Instant, lifetimes: Lifetimes) {
        let until = sent + Duration::from_secs(u64::from(lifetimes.valid_secs));
        self.present_until_ms
            .store(self.since_epoch(until), Ordering::SeqCst);
        let announce = until.saturating_duration_since(self.clock);
        self.open_until(announce.saturating_sub(ANNOUNCE_MARGIN));
    }

    /// Forgets the address (it was removed).
    pub fn removed(&self) {
        self.present_until_ms.store(0, Ordering::SeqCst);
    }

    /// True when the address this agent added is certainly still configured at `at` (unless
    /// someone else removed it): `at` is more than [`PRESENCE_MARGIN`] before its known expiry.
    pub fn surely_present(&self, at: std::time::Instant) -> bool {
        self.present_for(at) > Duration::ZERO
    }

    /// How much longer than `at` the address is surely configured (see [`Self::surely_present`]).
    pub fn present_for(&self, at: std::time::Instant) -> Duration {
        let until = self.present_until_ms.load(Ordering::SeqCst);
        let left = until.saturating_sub(self.since_epoch(at) + Self::ms(PRESENCE_MARGIN));
        Duration::from_millis(left)
    }

    /// Sets whether the holder is in an outage hold: its renewals fail without a conflict, or
    /// one is in flight (the loop may be blocked in it for up to the write timeout).
    pub fn set_outage_hold(&self, on: bool) {
        self.outage_hold.store(on, Ordering::SeqCst);
    }

    /// How the holder stands with the API, as far as the keeper is concerned.
    pub fn standing(&self) -> Standing {
        if self.outage_hold.load(Ordering::SeqCst) {
            Standing::OutageHold
        } else {
            Standing::Leased
        }
    }
}

/// What the keeper tells the loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LanReport {
    /// The VIP.
    pub vip: IpAddr,
    /// What was heard.
    pub sighting: Sighting,
    /// The keeper yielded: the VIP is gone from this node.
    pub yielded: bool,
}

/// Everything a keeper needs.
#[derive(Debug)]
pub struct Keeper {
    /// The kernel's address table.
    pub table: AddressTable,
    /// The VIP and its link.
    pub vip: VipOnLink,
    /// The link's MAC.
    pub mac: MacAddr,
    /// The shared state.
    pub keep: Arc<VipKeep>,
    /// The burst after the bring-up.
    pub burst: BurstSchedule,
    /// Announcement period after the burst; zero: no periodic announcements.
    pub advert_interval: Duration,
    /// An outage hold refreshes once the address's remaining sure presence falls below
    /// `lifetime − refresh_every` (so about this often, and at once after a short Lease
    /// refresh).
    pub refresh_every: Duration,
    /// The lifetime an outage hold refresh gives (`L`).
    pub lifetime: Lifetimes,
    /// Reports to the loop.
    pub reports: mpsc::Sender<LanReport>,
    /// Counters.
    pub metrics: Metrics,
}

impl Keeper {
    /// Starts the task unless one is running for this VIP already. The first announcement
    /// round has been sent by the caller.
    pub fn spawn(self) {
        if self.keep.keeper_running.swap(true, Ordering::SeqCst) {
            return;
        }
        tokio::spawn(async move {
            let keep = self.keep.clone();
            if let Err(error) = self.run().await {
                tracing::warn!(%error, "VIP keeper stopped");
            }
            keep.keeper_running.store(false, Ordering::SeqCst);
        });
    }

    async fn run(self) -> std::io::Result<()> {
        let socket = PacketSocket::open(self.vip.ifindex)?;
        let listener = match LanListener::open(self.vip.ifindex, self.vip.ip) {
            Ok(listener) => Some(listener),
            Err(error) => {
                // Without ears the holder cannot yield to a claimant: it does not hold
                // through outages either (the loop falls back to fail-closed expiry).
                tracing::warn!(vip = %self.vip, %error, "cannot listen on the VIP's link");
                None
            }
        };
        if listener.is_none() {
            self.keep.set_outage_hold(false);
        }
        let frames = announcement_frames(self.vip.ip, self.mac);
        let started = tokio::time::Instant::now();
        let mut adverts = announcement_offsets(self.burst, self.advert_interval).skip(1);
        let mut next_advert = adverts.next().map(|o| started + o);
        let mut next_tick = started + TICK;
        let refresh_below = Duration::from_secs(u64::from(self.lifetime.valid_secs))
            .saturating_sub(self.refresh_every);
        while !self.keep.is_closed() {
            let wake = next_advert.map_or(next_tick, |a| a.min(next_tick));
            tokio::select! {
                heard = next_sighting(listener.as_ref()) => {
                    let sighting = heard?;
                    if sighting.mac == self.mac {
                        continue;
                    }
                    match holder_reaction(sighting.heard, self.keep.standing()) {
                        Reaction::Yield => {
                            if self.yield_vip(sighting).await {
                                return Ok(());
                            }
                        }
                        Reaction::Reannounce => self.announce(&socket, &frames),
                        Reaction::Ignore => {}
                    }
                }
                () = tokio::time::sleep_until(wake) => {
                    let now = tokio::time::Instant::now();
                    if next_advert.is_some_and(|a| a <= now) {
                        self.announce(&socket, &frames);
                        next_advert = adverts.next().map(|o| started + o);
                    }
                    if next_tick <= now {
                        if self.keep.present_for(std::time::Instant::now()) < refresh_below {
                            self.hold_refresh().await;
                        }
                        next_tick = now + TICK;
                    }
                }
            }
        }
        Ok(())
    }

    fn announce(&self, socket: &PacketSocket, frames: &[Vec<u8>]) {
        if !self.keep.is_open() {
            return;
        }
        let sent = frames.iter().filter(|f| socket.send(f).is_ok()).count();
        self.metrics.garp_sent.inc_by(sent as u64);
    }

    /// Deletes the VIP at once (outage hold, another MAC heard); true when it did.
    async fn yield_vip(&self, sighting: Sighting) -> bool {
        let _edit = self.keep.edit.lock().await;
        if self.keep.is_closed() || self.keep.standing() != Standing::OutageHold {
            return self.keep.is_closed();
        }
        self.keep.close();
        if let Err(error) = self.table.remove(&self.vip).await {
            tracing::warn!(vip = %self.vip, %error, "cannot delete the VIP to yield");
        }
        self.keep.removed();
        self.metrics.yields.inc();
        tracing::info!(vip = %self.vip, mac = %sighting.mac, heard = ?sighting.heard,
            "outage hold: another MAC wants the VIP; yielded");
        let report = LanReport {
            vip: self.vip.ip,
            sighting,
            yielded: true,
        };
        let _ = self.reports.send(report).await;
        true
    }

    /// Extends the lifetime during an outage hold, only while the address is surely still
    /// there and its link is up; re-checked after the call for a process stopped during it.
    async fn hold_refresh(&self) {
        let _edit = self.keep.edit.lock().await;
        if self.keep.is_closed() || self.keep.standing() != Standing::OutageHold {
            return;
        }
        let sent = std::time::Instant::now();
        if !self.keep.surely_present(sent) {
            return;
        }
        match self.table.link_running(self.vip.ifindex).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(vip = %self.vip, "outage hold: link down, letting the VIP expire");
                return;
            }
            Err(error) => {
                tracing::warn!(vip = %self.vip, %error, "outage hold: link state unknown");
                return;
            }
        }
        if !self.keep.surely_present(std::time::Instant::now()) {
            return;
        }
        if let Err(error) = self.table.add_or_refresh(&self.vip, self.lifetime).await {
            tracing::warn!(vip = %self.vip, %error, "outage hold: refresh failed");
            return;
        }
        if !self.keep.surely_present(std::time::Instant::now()) {
            // Stopped between the check and the call: the request may have re-created an
            // address that had expired. Take it away again.
            let _ = self.table.remove(&self.vip).await;
            self.keep.close();
            self.keep.removed();
            return;
        }
        self.keep.refreshed(sent, self.lifetime);
        self.metrics.hold_refreshes.inc();
    }
}

async fn next_sighting(listener: Option<&LanListener>) -> std::io::Result<Sighting> {
    match listener {
        Some(listener) => listener.next().await,
        None => std::future::pending().await,
    }
}

/// Offsets from the bring-up at which announcement rounds go out: the burst, then every
/// `advert` after the burst's last round (none when `advert` is zero).
pub fn announcement_offsets(
    burst: BurstSchedule,
    advert: Duration,
) -> impl Iterator<Item = Duration> {
    let offsets = burst.offsets();
    let last = offsets.last().copied().unwrap_or_default();
    let periodic = (!advert.is_zero())
        .then(|| (1u32..).map(move |n| last + advert * n))
        .into_iter()
        .flatten();
    offsets.into_iter().chain(periodic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_burst_is_followed_by_periodic_adverts() {
        let ms: Vec<u128> = announcement_offsets(BurstSchedule::default(), Duration::from_secs(1))
            .take(8)
            .map(|d| d.as_millis())
            .collect();
        assert_eq!(ms, vec![0, 1100, 2200, 3300, 4400, 5400, 6400, 7400]);
        let burst_only: Vec<Duration> =
            announcement_offsets(BurstSchedule::default(), Duration::ZERO).collect();
        assert_eq!(burst_only.len(), 5);
    }

    #[test]
    fn the_window_is_closed_until_opened_after_its_deadline_and_once_closed() {
        let clock = std::time::Instant::now();
        let keep = VipKeep::new(clock);
        assert!(!keep.is_open());
        keep.open_until(clock.elapsed() + Duration::from_secs(3600));
        assert!(keep.is_open());
        keep.open_until(Duration::ZERO);
        assert!(!keep.is_open(), "a deadline in the past");
        keep.open_until(Duration::from_secs(3600));
        keep.close();
        assert!(!keep.is_open());
        keep.open_until(Duration::from_secs(3600));
        assert!(!keep.is_open(), "closed for good");
    }

    #[test]
    fn presence_is_known_only_until_shortly_before_the_known_expiry() {
        let clock = std::time::Instant::now();
        let keep = VipKeep::new(clock);
        assert!(!keep.surely_present(clock), "nothing added yet");
        let two = Lifetimes {
            valid_secs: 2,
            preferred_secs: 2,
        };
        keep.refreshed(clock, two);
        assert!(keep.surely_present(clock + Duration::from_millis(1700)));
        assert_eq!(
            keep.present_for(clock + Duration::from_millis(1000)),
            Duration::from_millis(800)
        );
        assert!(!keep.surely_present(clock + Duration::from_millis(1800)));
        assert!(!keep.surely_present(clock + Duration::from_secs(5)));
        keep.removed();
        assert!(!keep.surely_present(clock));
    }

    #[test]
    fn standing_follows_the_hold_flag_and_close_ends_the_hold() {
        let keep = VipKeep::new(std::time::Instant::now());
        assert_eq!(keep.standing(), Standing::Leased);
        keep.set_outage_hold(true);
        assert_eq!(keep.standing(), Standing::OutageHold);
        keep.close();
        assert_eq!(keep.standing(), Standing::Leased);
    }
}
