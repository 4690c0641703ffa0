//! `egressc sync`, the in-cluster controller shell around the pure core: watches and probes
//! feed a [`sync_core::SyncCore`], which makes every decision; a single loop ([`run::Loop`])
//! asks it for plans and writes them while it leads; metrics and probes are served over HTTP.
//!
//! Pure, in `egressc_core::sync` (re-exported here): `sync_core` (the one entry point:
//! `handle` every report, `reconcile` to a plan of every write), `convert` (API objects →
//! controller observations), `validation` and `objects` (gateways and policies validated by
//! `pipeline::check`, cached per object), `index` (watch events → objects and observations,
//! relist bookkeeping), `patches` (request bodies), `statuses` (which status patches a
//! reconcile needs), `cegp` (CEGPs rendered by `render`).
//! Shell: `watch`, `writer`, `leader` (with `leader_release`), `metrics`, `probe` (direct node probing), `run` (the
//! I/O) and `config`.

pub use egressc_core::sync::{
    cegp, convert, echoes, index, leader_fence, objects, patches, statuses, sync_core, validation,
};

pub mod config;
pub mod leader;
pub mod leader_release;
pub mod metrics;
pub mod probe;
pub mod reaction;
pub mod run;
pub mod watch;
pub mod writer;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use config::SyncConfig;

use crate::validate::Options;

/// Why `egressc sync` stopped.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// No cluster connection could be configured (no kubeconfig, not in a Pod).
    #[error("cannot configure the Kubernetes client: {0}")]
    Client(#[source] kube::Error),
    /// The metrics address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Leader election could not start.
    #[error("leader election: {0}")]
    Leader(#[from] kube_lease_manager::LeaseManagerError),
    /// The built-in templates did not compile (a bug) or the Cilium version is unsupported.
    #[error("rendering: {0}")]
    Render(#[from] crate::render::RenderError),
    /// Signal handlers could not be installed.
    #[error("signals: {0}")]
    Signal(String),
}

/// After SIGTERM/SIGINT, how long writes already sent may take to finish.
pub const WRITE_GRACE: Duration = Duration::from_secs(1);
/// Then how long handing the leader Lease back may take.
pub const RELEASE_GRACE: Duration = Duration::from_secs(1);

/// The API client of the controller. kube retries 429/503/504 answers by itself for many
/// minutes by default; here a failed request must fail: a leader cut off from the API must see
/// its renewals fail (and stop writing, `leader`), a write must not land long after it was
/// decided (possibly after another replica took over), and a watch that cannot list must show
/// as an observation gap. The loop and kube-runtime's watchers retry with their own backoff.
fn client(mut config: kube::Config) -> Result<kube::Client, SyncError> {
    config.default_retry = false;
    kube::Client::try_from(config).map_err(SyncError::Client)
}

/// Runs the controller until `shutdown` completes; then it stops reconciling, lets the writes
/// in flight finish (at most [`WRITE_GRACE`]) and hands the leader Lease back (at most
/// [`RELEASE_GRACE`]), so a standby takes over without waiting the Lease out.
pub async fn run(
    config: SyncConfig,
    kube_config: kube::Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), SyncError> {
    let client = client(kube_config)?;
    let metrics = Arc::new(metrics::Metrics::new());
    let listener = tokio::net::TcpListener::bind(config.metrics_addr)
        .await
        .map_err(|source| SyncError::Listen {
            addr: config.metrics_addr,
            source,
        })?;
    tokio::spawn(metrics::serve(listener, metrics.clone()));
    let mut shutdown = std::pin::pin!(shutdown);
    let mut leadership = if config.leader_elect {
        let elect = leader::Leadership::elect(
            client.clone(),
            &config.namespace,
            leader::LEADER_LEASE,
            &config.identity,
            config.leader_lease_duration,
        );
        // Joining the election waits out an API outage; a signal meanwhile ends the process.
        tokio::select! {
            leadership = elect => leadership?,
            () = &mut shutdown => {
                tracing::info!("egressc sync stopped before joining the election");
                return Ok(());
            }
        }
    } else {
        leader::Leadership::always()
    };
    let options = Options {
        cilium: config.cilium_version,
        ignore_unknown_kinds: false,
    };
    let core = sync_core::SyncCore::new(config.timing, options)?;
    let writer = writer::Writer::new(client.clone(), &config.namespace, &config.identity);
    let events = watch::spawn_all(&client, &config);
    let release = leadership.release_handle();
    let (prober, probe_results) = if config.probe.enabled() {
        let (prober, results) = probe::Prober::spawn(config.probe.clone(), metrics.clone());
        (Some(prober), results)
    } else {
        (None, tokio::sync::mpsc::channel(1).1)
    };
    tracing::info!(identity = %config.identity, namespace = %config.namespace, "egressc sync started");
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let main = run::Loop::new(core, writer, metrics, leadership)
        .with_prober(prober, config.probe.clone())
        .with_slow_reaction(config.slow_reaction);
    let mut reconciling = Box::pin(main.run(events, probe_results, stopping));
    let ended = tokio::select! {
        () = &mut shutdown => false,
        () = &mut reconciling => true,
    };
    let _ = stop.send(true);
    if !ended
        && tokio::time::timeout(WRITE_GRACE, &mut reconciling)
            .await
            .is_err()
    {
        tracing::warn!(grace = ?WRITE_GRACE, "writes still in flight; abandoning them");
    }
    drop(reconciling);
    // The loop (and with it every receiver of the leadership state) is gone: release.
    if let Some(release) = release
        && release.wait(RELEASE_GRACE).await
    {
        tracing::info!("leader Lease handed back");
    }
    tracing::info!("egressc sync stopped");
    Ok(())
}
