//! Time as a value: the core never reads a clock. Shells pass `now` into every decision as an
//! [`Instant`] on their own monotonic clock, so the controller and the agent rules are tested
//! deterministically.

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
