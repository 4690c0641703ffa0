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
    /// Direct node probing (see [`ProbeMetrics`]).
    pub probes: ProbeMetrics,
    /// Reactions and relists (see [`super::reaction`]).
    pub reactions: super::reaction::ReactionMetrics,
    /// What operators expect of any controller (build info, leader, watches, reconciles).
    pub operator: OperatorMetrics,
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
        let probes = ProbeMetrics::register(&mut registry);
        let reactions = super::reaction::ReactionMetrics::register(&mut registry);
        let operator = OperatorMetrics::register(&mut registry);
        Metrics {
            probes,
            reactions,
            registry,
            operator,
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

// ---- Direct node probing and detection → label move (fast failover) -------------------------

/// Why a probe failed: the `reason` label of `egressc_node_probe_failures_total`.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum ProbeFailure {
    /// No answer within `--node-probe-timeout` (a powered-off node: packets dropped).
    Timeout,
    /// Connection refused or reset, or a broken answer.
    Error,
    /// An answer other than 2xx.
    Status,
}

impl ProbeFailure {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeFailure::Timeout => "timeout",
            ProbeFailure::Error => "error",
            ProbeFailure::Status => "status",
        }
    }
}

/// Label set `{probe}`: `cilium-health` or `vip-agent`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProbeLabel {
    /// What was probed.
    pub probe: &'static str,
}

/// Label set `{probe, reason}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProbeFailureLabels {
    /// What was probed.
    pub probe: &'static str,
    /// Why it failed ([`ProbeFailure::as_str`]).
    pub reason: &'static str,
}

/// Label set `{reason}`: the health reason of the node a gateway moved away from.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// A `HealthReason` name, or `None` when the old node was healthy.
    pub reason: &'static str,
}

/// The probing metrics. No `node` label: probed nodes can number thousands and are replaced
/// over time, and each would add a series per probe kind and reason for ever; which node
/// failed is named in Events, gateway status and the log.
#[derive(Debug)]
pub struct ProbeMetrics {
    /// `egressc_node_probe_duration_seconds{probe}`: answered or not, per probe.
    pub duration: Family<ProbeLabel, Histogram>,
    /// `egressc_node_probe_failures_total{probe,reason}`.
    pub failures: Family<ProbeFailureLabels, Counter>,
    /// `egressc_detection_to_label_move_seconds{reason}`: from the core's verdict that a node
    /// is unhealthy to the label patch response, by the reason of the verdict.
    pub detection_to_move: Family<ReasonLabel, Histogram>,
}

impl ProbeMetrics {
    fn register(registry: &mut Registry) -> Self {
        let duration = Family::<ProbeLabel, Histogram>::new_with_constructor(|| {
            Histogram::new([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0])
        });
        let failures = Family::<ProbeFailureLabels, Counter>::default();
        let detection_to_move = Family::<ReasonLabel, Histogram>::new_with_constructor(|| {
            Histogram::new([0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
        });
        registry.register_with_unit(
            "node_probe_duration",
            "Duration of direct node probes (Cilium health endpoint, VIP agent readiness)",
            prometheus_client::registry::Unit::Seconds,
            duration.clone(),
        );
        registry.register(
            "node_probe_failures",
            "Failed direct node probes",
            failures.clone(),
        );
        registry.register_with_unit(
            "detection_to_label_move",
            "From a node's unhealthy verdict to the label patch response, by reason",
            prometheus_client::registry::Unit::Seconds,
            detection_to_move.clone(),
        );
        ProbeMetrics {
            duration,
            failures,
            detection_to_move,
        }
    }

    /// Records one probe of `target` taking `took`, failed for `failure` if any.
    pub fn observe(
        &self,
        target: crate::controller::ProbeTarget,
        took: Duration,
        failure: Option<ProbeFailure>,
    ) {
        let probe = target.as_str();
        self.duration
            .get_or_create(&ProbeLabel { probe })
            .observe(took.as_secs_f64());
        if let Some(reason) = failure {
            self.failures
                .get_or_create(&ProbeFailureLabels {
                    probe,
                    reason: reason.as_str(),
                })
                .inc();
        }
    }

    /// Records one label move away from a node unhealthy for `reason`.
    pub fn observe_move(&self, reason: Option<crate::controller::HealthReason>, took: Duration) {
        let reason = reason.map_or("None", |r| r.as_str());
        self.detection_to_move
            .get_or_create(&ReasonLabel { reason })
            .observe(took.as_secs_f64());
    }
}

// ---- end of direct node probing ------------------------------------------------------------

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

/// The content type of the OpenMetrics text that prometheus-client writes (with `# EOF`);
/// served as `text/plain`, Prometheus would parse it with the classic text parser.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

async fn render(
    State(metrics): State<Arc<Metrics>>,
) -> ([(axum::http::header::HeaderName, &'static str); 1], String) {
    (
        [(axum::http::header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)],
        metrics.encode(),
    )
}

async fn ready(State(metrics): State<Arc<Metrics>>) -> (StatusCode, &'static str) {
    if metrics.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "caches not synced")
    }
}

// ---- Operator metrics: build info, leadership, watch restarts, reconcile duration, orphan
// policies. Kept apart from the election metrics above; the alert rules in
// monitoring/egressc.rules.yaml and the dashboard use these names.

/// Label set `{version}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VersionLabel {
    /// egressc's version.
    pub version: String,
}

/// Label set `{source}`: which watch.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabel {
    /// The watched kind, e.g. `node`, `ciliumnode`, `gateway`.
    pub source: String,
}

/// The metrics operators expect of a controller.
#[derive(Debug)]
pub struct OperatorMetrics {
    /// `egressc_build_info{version}`: always 1.
    pub build_info: Family<VersionLabel, Gauge>,
    /// `egressc_leader`: 1 while this replica holds the leader Lease (or runs without election).
    pub leader: Gauge,
    /// `egressc_watch_restarts_total{source}`: watches that failed and were restarted.
    pub watch_restarts: Family<SourceLabel, Counter>,
    /// `egressc_reconcile_duration_seconds`: one reconcile, plan and writes.
    pub reconcile_duration: Histogram,
    /// `egressc_orphan_policies`: policies naming an EgressGateway that does not exist.
    pub orphan_policies: Gauge,
}

impl OperatorMetrics {
    fn register(registry: &mut Registry) -> Self {
        let metrics = OperatorMetrics {
            build_info: Family::default(),
            leader: Gauge::default(),
            watch_restarts: Family::default(),
            reconcile_duration: Histogram::new([
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            orphan_policies: Gauge::default(),
        };
        metrics
            .build_info
            .get_or_create(&VersionLabel {
                version: env!("CARGO_PKG_VERSION").to_string(),
            })
            .set(1);
        registry.register(
            "build_info",
            "egressc's version (value 1)",
            metrics.build_info.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica holds the leader Lease",
            metrics.leader.clone(),
        );
        registry.register(
            "watch_restarts",
            "Watches of the API server that failed and were restarted",
            metrics.watch_restarts.clone(),
        );
        registry.register_with_unit(
            "reconcile_duration",
            "Duration of one reconcile: planning and the writes it needs",
            prometheus_client::registry::Unit::Seconds,
            metrics.reconcile_duration.clone(),
        );
        registry.register(
            "orphan_policies",
            "EgressGatewayPolicies naming an EgressGateway that does not exist",
            metrics.orphan_policies.clone(),
        );
        metrics
    }

    /// Counts a restart of the watch of `source` (its `Debug` name, lowercased).
    pub fn watch_restarted(&self, source: impl std::fmt::Debug) {
        self.watch_restarts
            .get_or_create(&SourceLabel {
                source: format!("{source:?}").to_lowercase(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_metrics_are_exported_under_their_documented_names() {
        let metrics = Metrics::new();
        metrics.operator.leader.set(1);
        metrics
            .operator
            .watch_restarted(crate::sync::index::Source::CiliumNode);
        metrics.operator.reconcile_duration.observe(0.02);
        metrics.operator.orphan_policies.set(2);
        let text = metrics.encode();
        let version = env!("CARGO_PKG_VERSION");
        for line in [
            format!("egressc_build_info{{version=\"{version}\"}} 1"),
            "egressc_leader 1".to_string(),
            "egressc_watch_restarts_total{source=\"ciliumnode\"} 1".to_string(),
            "egressc_reconcile_duration_seconds_count 1".to_string(),
            "egressc_orphan_policies 2".to_string(),
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }

    #[tokio::test]
    async fn metrics_are_served_as_openmetrics() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, Arc::new(Metrics::new())));
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let header = format!("content-type: {OPENMETRICS_CONTENT_TYPE}");
        assert!(
            response.to_lowercase().contains(&header.to_lowercase()),
            "{response}"
        );
        assert!(response.trim_end().ends_with("# EOF"), "{response}");
    }

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
