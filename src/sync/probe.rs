//! Direct node probing, the I/O: one task per probed endpoint (Cilium's health endpoint on a
//! node's InternalIP, and in VIP mode the VIP agent's `/readyz`), one request in flight per
//! endpoint, at most [`MAX_IN_FLIGHT`] in flight overall, HTTP/1.1 keep-alive connections
//! reused across probes (hyper-util's pooled client, already in the tree through kube). Every
//! failure and the first success after failures go to the reconcile loop as
//! [`ProbeResult`]s; deciding what they mean is the core's job (`controller::probe`).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::metrics::{Metrics, ProbeFailure};
use crate::controller::ProbeTarget;

/// Probes in flight at once across all endpoints: 500 black-holed nodes must not open 1,000
/// sockets at once, while a healthy fleet of thousands still fits one interval.
pub const MAX_IN_FLIGHT: usize = 256;
/// Path of the VIP agent's readiness endpoint.
pub const AGENT_PATH: &str = "/readyz";

/// How to probe (the `--node-probe-*` and `--agent-probe-port` flags).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeConfig {
    /// Port of Cilium's health endpoint; `0`: no probing at all.
    pub node_port: u16,
    /// Path on it.
    pub node_path: String,
    /// Port of the VIP agent's health server; `0`: the agent is not probed.
    pub agent_port: u16,
    /// From the start of one probe of an endpoint to the start of the next.
    pub interval: Duration,
    /// A probe not answered within this is a failure.
    pub timeout: Duration,
}

impl ProbeConfig {
    /// Is any probing enabled?
    pub fn enabled(&self) -> bool {
        self.node_port != 0
    }

    /// The URL of `target` on a node at `ip`; `None` when that probe is off.
    pub fn url(&self, ip: IpAddr, target: ProbeTarget) -> Option<String> {
        let (port, path) = match target {
            ProbeTarget::CiliumHealth => (self.node_port, self.node_path.as_str()),
            ProbeTarget::VipAgent => (self.agent_port, AGENT_PATH),
        };
        (self.enabled() && port != 0).then(|| format!("http://{}{path}", SocketAddr::new(ip, port)))
    }
}

/// One probe outcome, for the core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeResult {
    /// Node name.
    pub node: String,
    /// What was probed.
    pub target: ProbeTarget,
    /// Answered 2xx within the timeout.
    pub ok: bool,
}

/// Endpoint → URL: what to probe now.
pub type Endpoints = BTreeMap<(String, ProbeTarget), String>;

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// The running prober: set its endpoints with [`Prober::set`].
#[derive(Debug)]
pub struct Prober {
    endpoints: watch::Sender<Endpoints>,
}

impl Prober {
    /// Starts the prober (no endpoints yet); results arrive on the returned channel.
    pub fn spawn(
        config: ProbeConfig,
        metrics: Arc<Metrics>,
    ) -> (Prober, mpsc::Receiver<ProbeResult>) {
        let (endpoints, mut wanted) = watch::channel(Endpoints::new());
        let (results, receiver) = mpsc::channel(1024);
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(config.timeout));
        connector.set_nodelay(true);
        let client: HttpClient = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(1)
            .build(connector);
        let limit = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        tokio::spawn(async move {
            let mut running: BTreeMap<(String, ProbeTarget), (String, JoinHandle<()>)> =
                BTreeMap::new();
            loop {
                let now = wanted.borrow_and_update().clone();
                running.retain(|key, (url, task)| {
                    let keep = now.get(key) == Some(url);
                    if !keep {
                        task.abort();
                    }
                    keep
                });
                for (key, url) in now {
                    if running.contains_key(&key) {
                        continue;
                    }
                    let endpoint = Endpoint {
                        node: key.0.clone(),
                        target: key.1,
                        url: url.clone(),
                    };
                    let task = tokio::spawn(endpoint.run(
                        client.clone(),
                        config.clone(),
                        limit.clone(),
                        results.clone(),
                        metrics.clone(),
                    ));
                    running.insert(key, (url, task));
                }
                if wanted.changed().await.is_err() {
                    for (_, task) in running.values() {
                        task.abort();
                    }
                    return;
                }
            }
        });
        (Prober { endpoints }, receiver)
    }

    /// Probes exactly `endpoints` from now on (unchanged ones keep their connection).
    pub fn set(&self, endpoints: Endpoints) {
        self.endpoints.send_if_modified(|current| {
            let changed = *current != endpoints;
            *current = endpoints;
            changed
        });
    }
}

/// One probed endpoint.
struct Endpoint {
    node: String,
    target: ProbeTarget,
    url: String,
}

impl Endpoint {
    async fn run(
        self,
        client: HttpClient,
        config: ProbeConfig,
        limit: Arc<Semaphore>,
        results: mpsc::Sender<ProbeResult>,
        metrics: Arc<Metrics>,
    ) {
        let Ok(uri) = self.url.parse::<hyper::Uri>() else {
            tracing::warn!(url = %self.url, "cannot probe: not a URL");
            return;
        };
        let mut last_ok = None;
        loop {
            let started = Instant::now();
            let outcome = {
                let Ok(_permit) = limit.acquire().await else {
                    return;
                };
                let sent = Instant::now();
                let outcome = probe(&client, &uri, config.timeout).await;
                metrics
                    .probes
                    .observe(self.target, sent.elapsed(), outcome.err());
                outcome
            };
            let ok = outcome.is_ok();
            if !ok || last_ok != Some(true) {
                if let Err(failure) = outcome {
                    tracing::debug!(node = %self.node, target = self.target.as_str(), ?failure, "probe failed");
                }
                let result = ProbeResult {
                    node: self.node.clone(),
                    target: self.target,
                    ok,
                };
                if results.send(result).await.is_err() {
                    return;
                }
            }
            last_ok = Some(ok);
            tokio::time::sleep_until(started + config.interval).await;
        }
    }
}

/// One GET: a 2xx answer with its body read (so the connection can be reused) within
/// `timeout`.
async fn probe(
    client: &HttpClient,
    uri: &hyper::Uri,
    timeout: Duration,
) -> Result<(), ProbeFailure> {
    let exchange = async {
        let response = client
            .get(uri.clone())
            .await
            .map_err(|_| ProbeFailure::Error)?;
        let status = response.status();
        response
            .into_body()
            .collect()
            .await
            .map_err(|_| ProbeFailure::Error)?;
        if status.is_success() {
            Ok(())
        } else {
            Err(ProbeFailure::Status)
        }
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(outcome) => outcome,
        Err(_) => Err(ProbeFailure::Timeout),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_bracket_ipv6_and_respect_disabled_ports() {
        let config = ProbeConfig {
            node_port: 4240,
            node_path: "/hello".into(),
            agent_port: 0,
            interval: Duration::from_millis(200),
            timeout: Duration::from_millis(200),
        };
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(
            config.url(v6, ProbeTarget::CiliumHealth).as_deref(),
            Some("http://[2001:db8::1]:4240/hello")
        );
        assert_eq!(config.url(v6, ProbeTarget::VipAgent), None);
        let off = ProbeConfig {
            node_port: 0,
            agent_port: 9478,
            ..config
        };
        assert_eq!(
            off.url(v6, ProbeTarget::VipAgent),
            None,
            "port 0 turns all probing off"
        );
    }
}
