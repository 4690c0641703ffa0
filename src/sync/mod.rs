//! `egressc sync`, the in-cluster controller shell around the pure core in
//! [`crate::controller`]: watches feed an [`index::Index`], a single loop ([`run::Loop`])
//! reconciles and writes while it leads, metrics and probes are served over HTTP.
//!
//! - `convert`: API objects → core observations (pure).
//! - `validation`, `objects`: gateways and policies validated by `pipeline::check`, cached per
//!   object, with their last good values.
//! - `index`: watch events → core, relist bookkeeping, sync state (pure).
//! - `patches`: plan → request bodies (pure); `statuses`: which status patches a reconcile
//!   needs (pure); `cegp`: CEGPs rendered by `src/render`.
//! - `watch`, `writer`, `leader`, `metrics`, `run`: the I/O.

pub mod cegp;
pub mod config;
pub mod convert;
pub mod index;
pub mod leader;
pub mod metrics;
pub mod objects;
pub mod patches;
pub mod run;
pub mod statuses;
pub mod validation;
pub mod watch;
pub mod writer;

use std::sync::Arc;

pub use config::SyncConfig;

use crate::controller::Controller;
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
}

/// Runs the controller until the process is stopped, with the in-cluster or default
/// configuration.
pub async fn run(config: SyncConfig) -> Result<(), SyncError> {
    let client = kube::Client::try_default()
        .await
        .map_err(SyncError::Client)?;
    run_with_client(config, client).await
}

/// Runs the controller with `client` (e.g. one built from `--kubeconfig`).
pub async fn run_with_client(config: SyncConfig, client: kube::Client) -> Result<(), SyncError> {
    let metrics = Arc::new(metrics::Metrics::new());
    let listener = tokio::net::TcpListener::bind(config.metrics_addr)
        .await
        .map_err(|source| SyncError::Listen {
            addr: config.metrics_addr,
            source,
        })?;
    tokio::spawn(metrics::serve(listener, metrics.clone()));
    let compiler = cegp::CegpCompiler::new(config.cilium_version)?;
    let leadership = if config.leader_elect {
        leader::Leadership::elect(
            client.clone(),
            &config.namespace,
            leader::LEADER_LEASE,
            &config.identity,
            config.leader_lease_duration,
        )
        .await?
    } else {
        leader::Leadership::always()
    };
    let options = Options {
        cilium: config.cilium_version,
        ignore_unknown_kinds: false,
    };
    let index = index::Index::new(Controller::new(config.timing), options);
    let writer = writer::Writer::new(client.clone(), &config.namespace, &config.identity);
    let events = watch::spawn_all(&client, &config);
    tracing::info!(identity = %config.identity, namespace = %config.namespace, "egressc sync started");
    run::Loop::new(index, compiler, writer, metrics, leadership)
        .run(events)
        .await;
    Ok(())
}
