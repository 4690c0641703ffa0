//! The controller's Prometheus Operator objects, each rendered only when asked for: a
//! ServiceMonitor (with the headless Service it scrapes through), a PodMonitor, and a
//! PrometheusRule carrying egressc's alert rules. Built as data and written with the same YAML
//! writer as the CRDs: they are not meant to be edited through template overrides.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{InstallOptions, SYNC_NAME};

/// How Prometheus scrapes the controller through one monitor object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scrape {
    /// Scrape interval, e.g. `30s`.
    pub interval: String,
    /// Extra labels of the monitor object (e.g. the `release` a Prometheus selects).
    pub labels: BTreeMap<String, String>,
}

/// The alert rules object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    /// Extra labels of the PrometheusRule.
    pub labels: BTreeMap<String, String>,
    /// The rule groups (the `groups` list of a Prometheus rules file).
    pub groups: Value,
}

/// Which Prometheus Operator objects to render (`None`: not rendered).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Monitoring {
    /// A ServiceMonitor and its Service.
    pub service_monitor: Option<Scrape>,
    /// A PodMonitor.
    pub pod_monitor: Option<Scrape>,
    /// A PrometheusRule.
    pub prometheus_rule: Option<Rules>,
}

fn metadata(
    options: &InstallOptions,
    labels: &BTreeMap<String, String>,
    extra: &BTreeMap<String, String>,
) -> Value {
    let mut all = labels.clone();
    all.extend(extra.clone());
    json!({"name": SYNC_NAME, "namespace": options.namespace, "labels": all})
}

fn endpoint(scrape: &Scrape) -> Value {
    json!({"port": "metrics", "path": "/metrics", "interval": scrape.interval})
}

/// The monitoring documents `options` asks for.
pub(super) fn documents(
    options: &InstallOptions,
    labels: &BTreeMap<String, String>,
    selector: &BTreeMap<String, String>,
) -> Vec<(String, String)> {
    let mut objects = Vec::new();
    let monitoring = &options.monitoring;
    if let Some(scrape) = &monitoring.service_monitor {
        objects.push(json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata(options, labels, &BTreeMap::new()),
            "spec": {
                "clusterIP": "None",
                "selector": selector,
                "ports": [{
                    "name": "metrics",
                    "port": super::SYNC_METRICS_PORT,
                    "targetPort": "metrics",
                    "protocol": "TCP",
                }],
            },
        }));
        objects.push(json!({
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "ServiceMonitor",
            "metadata": metadata(options, labels, &scrape.labels),
            "spec": {
                "selector": {"matchLabels": selector},
                "endpoints": [endpoint(scrape)],
            },
        }));
    }
    if let Some(scrape) = &monitoring.pod_monitor {
        objects.push(json!({
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PodMonitor",
            "metadata": metadata(options, labels, &scrape.labels),
            "spec": {
                "selector": {"matchLabels": selector},
                "podMetricsEndpoints": [endpoint(scrape)],
            },
        }));
    }
    if let Some(rules) = &monitoring.prometheus_rule {
        objects.push(json!({
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PrometheusRule",
            "metadata": metadata(options, labels, &rules.labels),
            "spec": {"groups": rules.groups},
        }));
    }
    objects
        .into_iter()
        .map(|object| {
            let kind = object["kind"].as_str().unwrap_or_default().to_owned();
            (kind, crate::render::yaml_block::to_yaml(&object))
        })
        .collect()
}
