//! The agent's HTTP endpoints: `/healthz` (the process is alive and its loop is not stuck),
//! `/readyz` (the API has been reached since the start, netlink works, the interfaces of the
//! VIPs this node must carry exist) and `/metrics`. The loop reports into [`Health`]; [`verdict`] is the
//! pure judgement; [`serve`] is the axum shell.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::agent::metrics::Metrics;

/// `/healthz` fails when the loop has not completed a round for this long.
pub const STUCK_AFTER: Duration = Duration::from_secs(10);

/// What the loop last reported, as times since process start in milliseconds (0: never).
#[derive(Debug)]
pub struct Health {
    start: Instant,
    loop_round_ms: AtomicU64,
    api_ok_ms: AtomicU64,
    netlink_ok: AtomicBool,
    interface_problems: Mutex<Vec<String>>,
}

/// A copy of [`Health`] at one instant, for [`verdict`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Time since start.
    pub now: Duration,
    /// When the loop last completed a round.
    pub loop_round: Option<Duration>,
    /// When an API request last succeeded.
    pub api_ok: Option<Duration>,
    /// The latest netlink read or write succeeded.
    pub netlink_ok: bool,
    /// Interfaces missing for VIPs this node must carry.
    pub interface_problems: Vec<String>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            start: Instant::now(),
            loop_round_ms: AtomicU64::new(0),
            api_ok_ms: AtomicU64::new(0),
            netlink_ok: AtomicBool::new(false),
            interface_problems: Mutex::new(Vec::new()),
        }
    }
}

impl Health {
    fn elapsed_ms(&self) -> u64 {
        // At least 1 so that 0 keeps meaning "never".
        u64::try_from(self.start.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// The loop completed a round.
    pub fn loop_round(&self) {
        self.loop_round_ms
            .store(self.elapsed_ms(), Ordering::Relaxed);
    }

    /// An API request succeeded.
    pub fn api_ok(&self) {
        self.api_ok_ms.store(self.elapsed_ms(), Ordering::Relaxed);
    }

    /// The outcome of the latest netlink round.
    pub fn netlink(&self, ok: bool) {
        self.netlink_ok.store(ok, Ordering::Relaxed);
    }

    /// The interface problems found in the latest round (empty: none).
    pub fn interfaces(&self, problems: Vec<String>) {
        if let Ok(mut slot) = self.interface_problems.lock() {
            *slot = problems;
        }
    }

    /// The current state.
    pub fn snapshot(&self) -> Snapshot {
        let at = |ms: u64| (ms > 0).then(|| Duration::from_millis(ms));
        Snapshot {
            now: Duration::from_millis(self.elapsed_ms()),
            loop_round: at(self.loop_round_ms.load(Ordering::Relaxed)),
            api_ok: at(self.api_ok_ms.load(Ordering::Relaxed)),
            netlink_ok: self.netlink_ok.load(Ordering::Relaxed),
            interface_problems: self
                .interface_problems
                .lock()
                .map(|p| p.clone())
                .unwrap_or_default(),
        }
    }
}

/// `/healthz` and `/readyz` verdicts: `Ok(())` or the reasons for failing.
pub fn verdict(s: &Snapshot) -> (Result<(), String>, Result<(), Vec<String>>) {
    let recent = |at: Option<Duration>, limit: Duration| {
        at.is_some_and(|at| s.now.saturating_sub(at) < limit)
    };
    // Before the first round completes the process counts as alive for STUCK_AFTER.
    let alive =
        if recent(s.loop_round, STUCK_AFTER) || (s.loop_round.is_none() && s.now < STUCK_AFTER) {
            Ok(())
        } else {
            Err(format!(
                "the agent loop has not completed a round for {STUCK_AFTER:?}"
            ))
        };
    let mut problems = Vec::new();
    // Losing the API later does not make the agent unready: it keeps its VIPs through an
    // outage (the outage hold, docs/lease-protocol.md), and readiness drives both the
    // controller's `/readyz` probe and the Pod's Ready condition — an outage every node sees
    // must not read as every agent failing, which would move VIPs once the API is back.
    if s.api_ok.is_none() {
        problems.push("the API server has not been reached yet".to_owned());
    }
    if !s.netlink_ok {
        problems.push("netlink does not work".to_owned());
    }
    problems.extend(s.interface_problems.iter().cloned());
    let ready = if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    };
    (alive, ready)
}

#[derive(Clone)]
struct AppState {
    health: Arc<Health>,
    metrics: Metrics,
}

/// Serves the endpoints on `listener` until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    health: Arc<Health>,
    metrics: Metrics,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(AppState { health, metrics });
    axum::serve(listener, app).await
}

/// Binds the health address.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    match verdict(&state.health.snapshot()).0 {
        Ok(()) => (StatusCode::OK, "ok\n".to_owned()),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
    }
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match verdict(&state.health.snapshot()).1 {
        Ok(()) => (StatusCode::OK, "ok\n".to_owned()),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why.join("\n") + "\n"),
    }
}

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Option<Duration> {
        Some(Duration::from_secs(s))
    }

    fn fine(now: u64) -> Snapshot {
        Snapshot {
            now: Duration::from_secs(now),
            loop_round: secs(now),
            api_ok: secs(now),
            netlink_ok: true,
            interface_problems: vec![],
        }
    }

    #[test]
    fn everything_fresh_is_alive_and_ready() {
        assert_eq!(verdict(&fine(100)), (Ok(()), Ok(())));
    }

    #[test]
    fn a_stuck_loop_is_not_alive_but_a_young_process_is() {
        let stuck = Snapshot {
            loop_round: secs(80),
            ..fine(100)
        };
        assert!(verdict(&stuck).0.is_err());
        let young = Snapshot {
            loop_round: None,
            ..fine(3)
        };
        assert!(verdict(&young).0.is_ok());
        let never = Snapshot {
            loop_round: None,
            ..fine(30)
        };
        assert!(verdict(&never).0.is_err());
    }

    #[test]
    fn an_agent_cut_from_the_api_stays_ready_through_the_outage() {
        let cut_off = Snapshot {
            api_ok: secs(10),
            ..fine(300)
        };
        assert_eq!(verdict(&cut_off), (Ok(()), Ok(())));
    }

    #[test]
    fn readiness_lists_every_reason() {
        let bad = Snapshot {
            api_ok: None,
            netlink_ok: false,
            interface_problems: vec!["gateway gw: no interface".into()],
            ..fine(100)
        };
        let (alive, ready) = verdict(&bad);
        assert!(alive.is_ok());
        let reasons = ready.err().unwrap_or_default();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert!(reasons[2].contains("gateway gw"));
        let never_reached = Snapshot {
            api_ok: None,
            ..fine(1)
        };
        assert!(verdict(&never_reached).1.is_err());
    }
}
