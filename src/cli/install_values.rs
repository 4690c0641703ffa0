//! The settings of the controller's install as a values file: the schema of the Helm chart's
//! `values.yaml` (`charts/egressc/values.schema.json` is generated from these types), read by
//! `egressc install --values FILE`. One values file gives the same objects through `helm
//! template` and through `egressc install` (tested with the real helm), so the chart cannot
//! drift from the binary.
//!
//! Adding a `sync` flag: nothing to do for `extraArgs` (any flag `sync` accepts); a first-class
//! value is a field here, a line in [`InstallValues::apply`] and one in the chart's
//! `templates/deployment.yaml` (the equality test shows what is missing).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::render::monitoring::{Monitoring, Rules, Scrape};
use crate::render::{DEFAULT_IMAGE_REPOSITORY, InstallOptions};

/// The alert rules shipped in the PrometheusRule (and checked by `promtool` in CI).
pub const PROMETHEUS_RULES: &str = include_str!("../../monitoring/egressc.rules.yaml");

/// Values of the `egressc` Helm chart and of `egressc install --values`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
#[schemars(title = "egressc chart values")]
pub struct InstallValues {
    /// Image running `egressc sync`.
    pub image: ImageValues,
    /// Replicas: one leader, the others warm standbys (2 or more also renders a
    /// PodDisruptionBudget).
    #[schemars(range(min = 1))]
    pub replicas: u32,
    /// Cilium release the controller compiles CiliumEgressGatewayPolicies for (1.17 .. 1.20).
    #[schemars(regex(pattern = r"^1\.(1[7-9]|20)$"))]
    pub cilium_version: String,
    /// Where the cilium-agent Pods are (their readiness makes a node eligible).
    pub cilium: CiliumValues,
    /// PriorityClass of the controller Pods; empty for none.
    pub priority_class_name: String,
    /// Run the controller in the node's network namespace (for probes that must reach nodes).
    pub host_network: bool,
    /// More `egressc sync` flags, by name without `--` (e.g. `node-lease-grace: 20s`); rendered
    /// in name order after the fixed ones, only when set.
    pub extra_args: BTreeMap<String, String>,
    /// The container's resources (Kubernetes ResourceRequirements).
    #[schemars(with = "BTreeMap<String, BTreeMap<String, String>>")]
    pub resources: Value,
    /// nodeSelector of the controller Pods.
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations added to the built-in not-ready/unreachable ones (30 s).
    #[schemars(with = "Vec<BTreeMap<String, Value>>")]
    pub tolerations: Vec<Value>,
    /// The controller's Namespace object.
    pub namespace: NamespaceValues,
    /// egressc's CustomResourceDefinitions.
    pub crds: CrdValues,
    /// A ServiceMonitor (and a headless Service) for the controller's `/metrics`.
    pub service_monitor: MonitorValues,
    /// A PodMonitor for the controller's `/metrics`.
    pub pod_monitor: MonitorValues,
    /// A PrometheusRule with egressc's alerts.
    pub prometheus_rule: RuleValues,
}

/// Image reference as repository and tag.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ImageValues {
    /// Repository (the default `egressc` is the local build tag of `Dockerfile`).
    #[schemars(length(min = 1))]
    pub repository: String,
    /// Tag; empty: the chart's appVersion (the version of egressc).
    pub tag: String,
}

/// Where the cilium-agent Pods are.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct CiliumValues {
    /// Namespace of the cilium-agent Pods (Deckhouse: `d8-cni-cilium`).
    #[schemars(length(min = 1, max = 63))]
    pub namespace: String,
    /// Label selector of the cilium-agent Pods; empty: `sync`'s default `k8s-app=cilium`
    /// (Deckhouse: `app=agent,module=cni-cilium`).
    pub selector: String,
}

/// The Namespace object.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct NamespaceValues {
    /// Render the Namespace (with the `privileged` Pod Security label the VIP agent needs).
    /// Helm stores its release in the namespace before it creates anything, so with Helm
    /// create the namespace first and leave this false.
    pub create: bool,
}

/// The CRDs.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct CrdValues {
    /// Render egressc's CRDs.
    pub install: bool,
    /// Helm only: keep the CRDs (and so every gateway and policy) on `helm uninstall`.
    pub keep: bool,
}

/// One Prometheus Operator monitor object.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct MonitorValues {
    /// Render it.
    pub enabled: bool,
    /// Scrape interval.
    pub interval: String,
    /// Extra labels, e.g. the `release` label a Prometheus selects monitors by.
    pub labels: BTreeMap<String, String>,
}

/// The PrometheusRule.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RuleValues {
    /// Render it.
    pub enabled: bool,
    /// Extra labels, e.g. the `release` label a Prometheus selects rules by.
    pub labels: BTreeMap<String, String>,
}

impl Default for InstallValues {
    fn default() -> Self {
        let options = InstallOptions::default();
        InstallValues {
            image: ImageValues::default(),
            replicas: options.replicas,
            cilium_version: options.cilium.to_string(),
            cilium: CiliumValues::default(),
            priority_class_name: options.priority_class.unwrap_or_default(),
            host_network: options.host_network,
            extra_args: BTreeMap::new(),
            resources: options.resources,
            node_selector: BTreeMap::new(),
            tolerations: Vec::new(),
            namespace: NamespaceValues::default(),
            crds: CrdValues::default(),
            service_monitor: MonitorValues::default(),
            pod_monitor: MonitorValues::default(),
            prometheus_rule: RuleValues::default(),
        }
    }
}

impl Default for ImageValues {
    fn default() -> Self {
        ImageValues {
            repository: DEFAULT_IMAGE_REPOSITORY.to_string(),
            tag: String::new(),
        }
    }
}

impl Default for CiliumValues {
    fn default() -> Self {
        CiliumValues {
            namespace: InstallOptions::default().cilium_namespace,
            selector: String::new(),
        }
    }
}

impl Default for CrdValues {
    fn default() -> Self {
        CrdValues {
            install: true,
            keep: true,
        }
    }
}

impl Default for MonitorValues {
    fn default() -> Self {
        MonitorValues {
            enabled: false,
            interval: "30s".to_string(),
            labels: BTreeMap::new(),
        }
    }
}

impl InstallValues {
    /// Reads a values file (YAML); unknown keys are errors, missing ones keep their defaults.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Ok(InstallValues::default());
        }
        serde_saphyr::from_str(text).map_err(|e| e.to_string())
    }

    /// Overwrites `options` with these values (the namespace stays: Helm's is the release's).
    pub fn apply(&self, options: &mut InstallOptions) -> Result<(), String> {
        let tag = if self.image.tag.is_empty() {
            env!("CARGO_PKG_VERSION")
        } else {
            &self.image.tag
        };
        options.image = format!("{}:{tag}", self.image.repository);
        options.replicas = self.replicas;
        options.cilium = self
            .cilium_version
            .parse()
            .map_err(|e| format!("ciliumVersion: {e}"))?;
        options.cilium_namespace = self.cilium.namespace.clone();
        options.sync_flags = self.extra_args.clone();
        if !self.cilium.selector.is_empty() {
            options
                .sync_flags
                .insert("cilium-selector".to_string(), self.cilium.selector.clone());
        }
        options.priority_class = Some(self.priority_class_name.clone()).filter(|p| !p.is_empty());
        options.host_network = self.host_network;
        options.resources = self.resources.clone();
        options.node_selector = self.node_selector.clone();
        options.tolerations = self.tolerations.clone();
        options.create_namespace = self.namespace.create;
        options.crds = self.crds.install;
        let scrape = |m: &MonitorValues| {
            m.enabled.then(|| Scrape {
                interval: m.interval.clone(),
                labels: m.labels.clone(),
            })
        };
        options.monitoring = Monitoring {
            service_monitor: scrape(&self.service_monitor),
            pod_monitor: scrape(&self.pod_monitor),
            prometheus_rule: match self.prometheus_rule.enabled {
                true => Some(Rules {
                    labels: self.prometheus_rule.labels.clone(),
                    groups: rule_groups()?,
                }),
                false => None,
            },
        };
        Ok(())
    }
}

/// The `groups` of [`PROMETHEUS_RULES`].
pub fn rule_groups() -> Result<Value, String> {
    let file: Value = serde_saphyr::from_str(PROMETHEUS_RULES)
        .map_err(|e| format!("built-in alert rules: {e}"))?;
    Ok(file["groups"].clone())
}

#[cfg(test)]
/// `values.schema.json` of the chart: JSON Schema draft 7 (what Helm 3 validates with).
pub fn values_schema() -> String {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    let schema = generator.into_root_schema_for::<InstallValues>();
    serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The chart's own defaults are these types' defaults: `values.yaml` reads back as
    /// `InstallValues::default()`, so an unset value means the same thing to both renderers.
    #[test]
    fn chart_values_yaml_is_the_default() {
        let text = include_str!("../../charts/egressc/values.yaml");
        assert_eq!(InstallValues::parse(text), Ok(InstallValues::default()));
    }

    #[test]
    fn unknown_keys_are_refused_with_a_position() {
        let error = InstallValues::parse("replicas: 2\nrepllicas: 3\n").unwrap_err();
        assert!(error.contains("repllicas"), "{error}");
        assert!(error.contains('2'), "{error}");
    }

    #[test]
    fn cilium_selector_becomes_a_sync_flag() {
        let values = InstallValues::parse(
            "cilium:\n  namespace: d8-cni-cilium\n  selector: app=agent,module=cni-cilium\n",
        )
        .unwrap();
        let mut options = InstallOptions::default();
        values.apply(&mut options).unwrap();
        assert_eq!(options.cilium_namespace, "d8-cni-cilium");
        assert_eq!(
            options
                .sync_flags
                .get("cilium-selector")
                .map(String::as_str),
            Some("app=agent,module=cni-cilium")
        );
    }

    /// `charts/egressc/values.schema.json` is generated from these types;
    /// `UPDATE_SCHEMAS=1 cargo test --lib install_values` rewrites it.
    #[test]
    fn chart_values_schema_is_up_to_date() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/charts/egressc/values.schema.json"
        );
        let schema = values_schema();
        if std::env::var_os("UPDATE_SCHEMAS").is_some() {
            std::fs::write(path, &schema).unwrap();
        }
        assert_eq!(
            std::fs::read_to_string(path).unwrap_or_default(),
            schema,
            "{path} is stale: UPDATE_SCHEMAS=1 cargo test --lib install_values"
        );
    }

    #[test]
    fn the_shipped_rules_parse() {
        let groups = rule_groups().unwrap();
        assert!(groups.as_array().is_some_and(|g| !g.is_empty()), "{groups}");
    }
}
