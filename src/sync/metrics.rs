//! Prometheus metrics of `egressc sync` and the HTTP endpoint serving them with the probes:
//! `/metrics`, `/healthz` (the process runs), `/readyz` (every watch has listed).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Label set `{gateway}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GatewayLabel {
    /// Gateway name.
    pub gateway: String,
}

/// Label set `{gateway, node}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GatewayNodeLabels {
    /// Gateway name.
    pub gateway: String,
    /// Node name.
    pub node: String,
}

/// The metrics; cheap to share (`Arc`).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// `egressc_failovers_total{gateway}`.
    pub failovers: Family<GatewayLabel, Counter>,
    /// `egressc_active_node{gateway,node}`: 1 for the node carrying the gateway.
    pub active_node: Family<GatewayNodeLabels, Gauge>,
    /// `egressc_eligible_nodes{gateway}`.
    pub eligible_nodes: Family<GatewayLabel, Gauge>,
    /// `egressc_reconcile_errors_total`.
    pub reconcile_errors: Counter,
    /// `egressc_label_move_seconds`: observed health change → label patch response.
    pub label_move: Histogram,
    ready: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("egressc");
        let failovers = Family::<GatewayLabel, Counter>::default();
        let active_node = Family::<GatewayNodeLabels, Gauge>::default();
        let eligible_nodes = Family::<GatewayLabel, Gauge>::default();
        let reconcile_errors = Counter::default();
        let label_move =
            Histogram::new([0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0]);
        registry.register(
            "failovers",
            "Moves of a gateway's active label to another node",
            failovers.clone(),
        );
        registry.register(
            "active_node",
            "1 for the node carrying the gateway's active label",
            active_node.clone(),
        );
        registry.register(
            "eligible_nodes",
            "Nodes eligible to carry the gateway",
            eligible_nodes.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Failed writes while applying a plan",
            reconcile_errors.clone(),
        );
        registry.register_with_unit(
            "label_move",
            "Time from an observed node health change to the label patch response",
            prometheus_client::registry::Unit::Seconds,
            label_move.clone(),
        );
        Metrics {
            registry,
            failovers,
            active_node,
            eligible_nodes,
            reconcile_errors,
            label_move,
            ready: AtomicBool::new(false),
        }
    }

    /// Sets readiness (every watch listed).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Records that `gateway` is now carried by `node` (or by none).
    pub fn set_active(&self, gateway: &str, previous: Option<&str>, node: Option<&str>) {
        if let Some(old) = previous {
            self.active_node.remove(&GatewayNodeLabels {
                gateway: gateway.to_owned(),
                node: old.to_owned(),
            });
        }
        if let Some(node) = node {
            self.active_node
                .get_or_create(&GatewayNodeLabels {
                    gateway: gateway.to_owned(),
                    node: node.to_owned(),
                })
                .set(1);
        }
    }

    /// Records one label move's latency.
    pub fn observe_label_move(&self, latency: Duration) {
        self.label_move.observe(latency.as_secs_f64());
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(render))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .with_state(metrics);
    axum::serve(listener, app).await
}

async fn render(State(metrics): State<Arc<Metrics>>) -> String {
    metrics.encode()
}

async fn ready(State(metrics): State<Arc<Metrics>>) -> (StatusCode, &'static str) {
    if metrics.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "caches not synced")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moving_the_active_node_replaces_its_series() {
        let metrics = Metrics::new();
        metrics.set_active("gw", None, Some("n1"));
        metrics.set_active("gw", Some("n1"), Some("n2"));
        metrics
            .failovers
            .get_or_create(&GatewayLabel {
                gateway: "gw".into(),
            })
            .inc();
        let text = metrics.encode();
        assert!(
            text.contains(r#"egressc_active_node{gateway="gw",node="n2"} 1"#),
            "{text}"
        );
        assert!(!text.contains(r#"node="n1""#), "{text}");
        assert!(
            text.contains(r#"egressc_failovers_total{gateway="gw"} 1"#),
            "{text}"
        );
        assert!(text.contains("egressc_label_move_seconds_bucket"), "{text}");
    }
}
