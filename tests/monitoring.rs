//! The alert rules and the Grafana dashboard of `monitoring/`: `promtool check rules` and
//! `promtool test rules` (the real promtool, Debian package `prometheus`), every dashboard query
//! parsed by promtool too, and every metric they name exported by `egressc sync` or the VIP
//! agent — except the node-probe metric, which the failover work adds (listed below).
//!
//! promtool is found as `$EGRESSC_PROMTOOL` or on PATH; without it those tests skip unless
//! `EGRESSC_REQUIRE_TOOLS=1`.

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;
use support::tools::Tool;

/// Metric names the rules and dashboard use that the test's registry does not show (none: the
/// node probe metrics are part of `sync`'s registry).
const EXPECTED_ELSEWHERE: &[&str] = &[];

fn monitoring(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("monitoring")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn promtool() -> Option<Tool> {
    Tool::find("EGRESSC_PROMTOOL", "promtool")
}

fn promtool_in_monitoring(promtool: &Tool, args: &[&str]) {
    let out = promtool
        .command()
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("monitoring"))
        .output()
        .expect("promtool runs");
    assert!(
        out.status.success(),
        "promtool {args:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn promtool_checks_and_unit_tests_the_rules() {
    let Some(promtool) = promtool() else { return };
    promtool_in_monitoring(&promtool, &["check", "rules", "egressc.rules.yaml"]);
    promtool_in_monitoring(&promtool, &["test", "rules", "egressc.rules.test.yaml"]);
}

fn dashboard_queries() -> Vec<String> {
    let dashboard: Value = serde_json::from_str(&monitoring("grafana-dashboard.json")).unwrap();
    dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn promtool_parses_every_dashboard_query() {
    let Some(promtool) = promtool() else { return };
    // As recording rules, so `promtool check rules` parses each expression.
    let rules: Vec<Value> = dashboard_queries()
        .iter()
        .enumerate()
        .map(|(i, expr)| serde_json::json!({"record": format!("dashboard:query{i}"), "expr": expr}))
        .collect();
    assert!(rules.len() >= 10, "{rules:?}");
    let file = serde_json::json!({"groups": [{"name": "dashboard", "rules": rules}]});
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dashboard.rules.json");
    std::fs::write(&path, file.to_string()).unwrap();
    let out = promtool
        .command()
        .args(["check", "rules"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every series name the expositions can produce: `# TYPE` lines give the family and its type
/// (a labelled family shows only once it has a series, so each gets one).
fn exported_series() -> BTreeSet<String> {
    use egressc::sync::metrics::{GatewayLabel, Metrics};
    let metrics = Metrics::new();
    metrics.set_active("gw", None, Some("n1"));
    let gateway = GatewayLabel {
        gateway: "gw".into(),
    };
    metrics.failovers.get_or_create(&gateway).inc();
    metrics.eligible_nodes.get_or_create(&gateway).set(1);
    metrics
        .operator
        .watch_restarted(egressc::sync::index::Source::Node);
    metrics.probes.observe(
        egressc::controller::ProbeTarget::CiliumHealth,
        std::time::Duration::from_millis(5),
        Some(egressc::sync::metrics::ProbeFailure::Timeout),
    );
    let sync = metrics.encode();
    let agent_metrics = egressc::agent::metrics::Metrics::default();
    agent_metrics.set_held("gw", true);
    let agent = agent_metrics.render();
    let mut names = BTreeSet::new();
    for line in sync.lines().chain(agent.lines()) {
        let mut words = line.split_whitespace();
        if words.next() != Some("#") || words.next() != Some("TYPE") {
            continue;
        }
        let (Some(name), Some(kind)) = (words.next(), words.next()) else {
            continue;
        };
        match kind {
            "counter" => {
                names.insert(format!("{name}_total"));
            }
            "histogram" => {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
            _ => {
                names.insert(name.to_string());
            }
        }
    }
    names
}

fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("egressc_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

#[test]
fn rules_and_dashboard_use_only_exported_metrics() {
    let exported = exported_series();
    assert!(exported.contains("egressc_leader"), "{exported:?}");
    let rules = monitoring("egressc.rules.yaml");
    let expressions: String = rules
        .lines()
        .filter(|l| l.trim_start().starts_with("expr:"))
        .collect::<Vec<_>>()
        .join("\n");
    let used: BTreeSet<String> = metric_names(&expressions)
        .into_iter()
        .chain(dashboard_queries().iter().flat_map(|q| metric_names(q)))
        .collect();
    let unknown: Vec<&String> = used
        .iter()
        .filter(|n| !exported.contains(*n) && !EXPECTED_ELSEWHERE.contains(&n.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "not exported: {unknown:?}; exported: {exported:?}"
    );
    for name in EXPECTED_ELSEWHERE {
        assert!(used.contains(*name), "{name} is listed but unused");
    }
}
