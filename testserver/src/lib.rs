//! kube-testserver: an in-memory server that speaks enough of the Kubernetes API for unmodified
//! clients (kube-rs watchers and controllers, kube-lease-manager, kubectl) to run against it in
//! tests. Start it with [`TestServer::start`]; inject faults through [`TestServer::faults`] or the
//! `/__testserver/*` HTTP endpoints.

mod deletion;
mod discovery;
mod faults;
mod fieldpath;
mod inspect;
mod managed;
mod metadata;
mod objects;
mod openapi;
mod ops;
#[cfg(test)]
mod ops_tests;
mod patch;
mod registry;
mod requests;
mod resources;
mod routes;
mod selectors;
mod status;
mod store;
mod watch;
mod watch_stream;

use std::path::Path;
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use faults::Faults;
pub use inspect::{ChangeFeed, FeedError};
pub use registry::ResourceKey;
use requests::RequestLog;
pub use requests::RequestRecord;
use store::Store;
pub use watch::{Change, ChangeKind};

/// Watch history kept by default: enough for 5,000 nodes plus churn.
pub const DEFAULT_HISTORY_LIMIT: usize = 100_000;

/// Shared server state.
#[derive(Debug)]
pub struct App {
    store: Mutex<Store>,
    faults: Faults,
    requests: RequestLog,
    /// `127.0.0.1:PORT`, for discovery's serverAddressByClientCIDRs.
    address: String,
}

impl App {
    fn resource_version(&self) -> u64 {
        self.store.lock().map(|s| s.resource_version()).unwrap_or(0)
    }

    /// Forgets watch history up to now: watches resuming from an older version get 410.
    pub fn compact_history(&self) {
        if let Ok(mut store) = self.store.lock() {
            let current = store.resource_version();
            store.hub.compact(current);
        }
    }
}

/// Current time in the apiserver's RFC 3339 seconds format.
pub(crate) fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Options for [`TestServer::start_with`].
#[derive(Debug, Clone)]
pub struct Options {
    /// How many change events are kept for resuming watches; older resourceVersions get 410.
    pub history_limit: usize,
    /// Keep a log of handled requests ([`TestServer::requests_since`]); for benchmarks.
    pub record_requests: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            history_limit: DEFAULT_HISTORY_LIMIT,
            record_requests: false,
        }
    }
}

/// A running server on 127.0.0.1; stops when dropped.
#[derive(Debug)]
pub struct TestServer {
    app: Arc<App>,
    port: u16,
    task: JoinHandle<()>,
}

impl TestServer {
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let port = listener.local_addr()?.port();
        let app = Arc::new(App {
            store: Mutex::new(Store::new(options.history_limit, &now())),
            faults: Faults::default(),
            requests: RequestLog::new(options.record_requests),
            address: format!("127.0.0.1:{port}"),
        });
        let router = routes::router(Arc::clone(&app));
        let task = tokio::spawn(async move {
            // The server runs until the task is aborted; an accept error ends it.
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self { app, port, task })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A kubeconfig pointing at this server (context `kube-testserver`, namespace `default`).
    pub fn kubeconfig_yaml(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kube-testserver\n  cluster:\n    server: {url}\n\
             contexts:\n- name: kube-testserver\n  context:\n    cluster: kube-testserver\n    user: kube-testserver\n    namespace: default\n\
             current-context: kube-testserver\nusers:\n- name: kube-testserver\n  user:\n    token: kube-testserver\n",
            url = self.url()
        )
    }

    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml())
    }

    /// A kube-rs client configuration for this server.
    pub fn client_config(&self) -> kube::Config {
        let mut config = kube::Config::new(self.url().parse().unwrap_or_default());
        config.default_namespace = "default".into();
        config
    }

    /// A kube-rs client for this server.
    pub fn client(&self) -> kube::Result<kube::Client> {
        kube::Client::try_from(self.client_config())
    }

    /// Fault injection: outages, latency, dropped watches.
    pub fn faults(&self) -> &Faults {
        &self.app.faults
    }

    /// Forgets watch history, so watches resuming from any earlier resourceVersion get 410 Gone.
    pub fn compact_history(&self) {
        self.app.compact_history();
    }

    /// Handled requests from position `from` on (empty unless started with
    /// [`Options::record_requests`]).
    pub fn requests_since(&self, from: usize) -> Vec<RequestRecord> {
        self.app.requests.since(from)
    }

    /// How many requests were recorded so far.
    pub fn requests_recorded(&self) -> usize {
        self.app.requests.len()
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.app.resource_version()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
