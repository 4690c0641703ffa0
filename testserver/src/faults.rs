//! Fault injection: API outages (503), added latency and dropping every open watch. Shared by
//! the in-process handle and the `/__testserver/*` HTTP control endpoints.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// The fault state the HTTP layer consults on every request.
#[derive(Debug)]
pub struct Faults {
    outage_until: Mutex<Option<Instant>>,
    latency_ms: AtomicU64,
    /// Bumped to tell every open watch to end.
    watch_epoch: watch::Sender<u64>,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            outage_until: Mutex::new(None),
            latency_ms: AtomicU64::new(0),
            watch_epoch: watch::channel(0).0,
        }
    }
}

impl Faults {
    /// Makes the API answer 503 for `duration`, and closes open watches (as a restarting
    /// apiserver would).
    pub fn outage(&self, duration: Duration) {
        if let Ok(mut until) = self.outage_until.lock() {
            *until = Some(Instant::now() + duration);
        }
        self.drop_watches();
    }

    /// Ends an outage early.
    pub fn restore(&self) {
        if let Ok(mut until) = self.outage_until.lock() {
            *until = None;
        }
    }

    pub fn in_outage(&self) -> bool {
        self.outage_until
            .lock()
            .ok()
            .and_then(|u| *u)
            .is_some_and(|until| Instant::now() < until)
    }

    pub fn set_latency(&self, latency: Duration) {
        self.latency_ms.store(
            u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms.load(Ordering::Relaxed))
    }

    pub fn drop_watches(&self) {
        self.watch_epoch.send_modify(|epoch| *epoch += 1);
    }

    /// A receiver that changes when watches must be dropped.
    pub fn watch_drops(&self) -> watch::Receiver<u64> {
        self.watch_epoch.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outage_is_reported_until_restored_and_drops_watches() {
        let faults = Faults::default();
        let drops = faults.watch_drops();
        assert!(!faults.in_outage());
        faults.outage(Duration::from_secs(3600));
        assert!(faults.in_outage());
        assert!(drops.has_changed().unwrap_or(false));
        faults.restore();
        assert!(!faults.in_outage());
    }

    #[test]
    fn latency_is_stored() {
        let faults = Faults::default();
        faults.set_latency(Duration::from_millis(50));
        assert_eq!(faults.latency(), Duration::from_millis(50));
    }
}
