//! Time as a value: the controller core never reads a clock. The shell passes `now` into every
//! call as an [`Instant`] on its own monotonic clock; [`Timing`] holds the protocol durations
//! and thresholds.

use std::ops::{Add, Sub};
use std::time::Duration;

/// A point on the shell's monotonic clock, as the time elapsed since an arbitrary epoch (e.g.
/// process start). Only differences between instants are meaningful.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(pub Duration);

impl Instant {
    /// The instant `secs` seconds after the epoch (for tests and simulations).
    pub fn from_secs_f64(secs: f64) -> Self {
        Instant(Duration::from_secs_f64(secs.max(0.0)))
    }

    /// Time elapsed from `earlier` to `self`; zero if `earlier` is later.
    pub fn since(self, earlier: Instant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        Instant(self.0.saturating_add(rhs))
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, rhs: Duration) -> Instant {
        Instant(self.0.saturating_sub(rhs))
    }
}

/// The durations the controller works with. Defaults are the documented ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// A node whose heartbeat Lease (kube-node-lease, renewed by kubelet every 10 s) has not
    /// been seen to change for this long is unhealthy, long before the node controller marks
    /// it NotReady (40 s by default).
    pub node_lease_grace: Duration,
    /// A node that became healthy again gets no new assignments until it has stayed healthy
    /// this long.
    pub settle: Duration,
    /// VIP Lease duration: a VIP holder not seen renewing for this long is dead
    /// (docs/lease-protocol.md).
    pub vip_lease_duration: Duration,
    /// Consecutive failed direct probes (`--node-probe-failures`) after which a node (or its
    /// VIP agent) is unhealthy; `0` ignores probe results.
    pub probe_failures: u32,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            node_lease_grace: Duration::from_secs(20),
            settle: Duration::from_secs(10),
            vip_lease_duration: Duration::from_secs(3),
            probe_failures: 2,
        }
    }
}
