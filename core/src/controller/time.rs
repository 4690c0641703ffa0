//! Time as a value: the controller core never reads a clock. The shell passes `now` into every
//! call as an [`Instant`] on its own monotonic clock; [`Timing`] holds the protocol durations
//! and thresholds.

use std::time::Duration;

pub use crate::time::Instant;

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
            vip_lease_duration: crate::lease_protocol::LEASE_DURATION,
            probe_failures: 2,
        }
    }
}
