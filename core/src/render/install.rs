//! The install manifests of the `egressc sync` controller (`egressc install`): egressc's CRDs,
//! the shared Namespace, ServiceAccount, least-privilege RBAC, the Deployment and its
//! PodDisruptionBudget. The RBAC rules are decided here, next to the API calls they allow
//! (`sync::watch`, `sync::writer`, `sync::leader`); templates only lay them out.

use std::collections::BTreeMap;

use serde::Serialize;

use super::error::RenderError;
use super::objects::Objects;
use super::options::{CiliumVersion, DEFAULT_AGENT_NAMESPACE};
use super::provenance;

/// Name of the controller's Deployment, ServiceAccount, roles and bindings.
pub const SYNC_NAME: &str = "egressc-sync";
/// `app.kubernetes.io/component` of the controller Pods.
pub const SYNC_COMPONENT: &str = "sync";
/// Port of the controller's `/metrics`, `/healthz` and `/readyz` (on the node's IP: the
/// controller runs in the host network to probe nodes).
pub const SYNC_METRICS_PORT: u16 = 9477;
/// mimalloc settings the controller's container runs with. mimalloc reads them from the
/// environment when the process starts, before `main`, so they cannot be set from code
/// without its FFI. By default it keeps freed pages resident for a while and commits arenas
/// eagerly: at 5,000 nodes and 10,000 policies the controller's peak RSS was 152–166 MiB with
/// the defaults and 122–142 MiB with these, at no measurable cost in reaction time
/// (BENCHMARKS.md, "Sync reaction"; `benches/sync_scale.rs` runs the binary with them too).
pub const SYNC_ALLOCATOR_ENV: [(&str, &str); 2] = [
    ("MIMALLOC_PURGE_DELAY", "0"),
    ("MIMALLOC_ARENA_EAGER_COMMIT", "0"),
];
/// `sync` flags install renders from its own options (never from [`InstallOptions::sync_flags`]).
pub const RESERVED_SYNC_FLAGS: [&str; 5] = [
    "metrics-addr",
    "cilium-version",
    "cilium-namespace",
    "namespace",
    "identity",
];
/// Namespace of the kubelets' heartbeat Leases, which the controller reads for node health.
const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";
/// Where Events about cluster-scoped objects (EgressGateway, EgressGatewayPolicy) go: the
/// event recorder puts them in `default`.
const EVENT_NAMESPACE: &str = "default";
/// Seconds a replica stays on a NotReady/unreachable node before it is evicted and replaced.
const NODE_FAILURE_TOLERATION_SECONDS: u32 = 30;

/// Options of the install manifests. The same settings are the values of the Helm chart
/// (`charts/egressc`), whose output the tests compare with this one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstallOptions {
    /// Namespace of the controller; the VIP agent and its Leases must live in the same one.
    pub namespace: String,
    /// Render the Namespace object. The controller's install is its one owner: `build` never
    /// renders it, so pruning the application of either never deletes the other's objects.
    pub create_namespace: bool,
    /// Render egressc's CRDs.
    pub crds: bool,
    /// Image running `egressc sync`.
    pub image: String,
    /// Number of replicas (one leader, the rest warm standbys).
    pub replicas: u32,
    /// The Cilium version the controller compiles CiliumEgressGatewayPolicies for.
    pub cilium: CiliumVersion,
    /// Namespace of the cilium-agent Pods.
    pub cilium_namespace: String,
    /// Further `egressc sync` flags, by name without `--` (e.g. `cilium-selector`), rendered
    /// after the fixed arguments in name order; only what is set is rendered, so `sync`'s own
    /// default applies otherwise.
    pub sync_flags: BTreeMap<String, String>,
    /// PriorityClass of the controller Pods (`None`: none).
    pub priority_class: Option<String>,
    /// Run the controller Pods in the node's network namespace.
    pub host_network: bool,
    /// The container's `resources` (a Kubernetes ResourceRequirements object).
    pub resources: serde_json::Value,
    /// `nodeSelector` of the controller Pods.
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations added after the built-in not-ready/unreachable ones.
    pub tolerations: Vec<serde_json::Value>,
    /// Prometheus Operator objects (ServiceMonitor, PodMonitor, PrometheusRule).
    pub monitoring: monitoring::Monitoring,
}

impl Default for InstallOptions {
    fn default() -> Self {
        InstallOptions {
            namespace: DEFAULT_AGENT_NAMESPACE.to_string(),
            create_namespace: true,
            crds: true,
            image: super::options::default_image(),
            replicas: 2,
            cilium: CiliumVersion::default(),
            cilium_namespace: "kube-system".to_string(),
            sync_flags: BTreeMap::new(),
            priority_class: Some("system-cluster-critical".to_string()),
            // Probes reach the nodes from the node network (README, "Running the controller").
            host_network: true,
            // No CPU limit: throttling would delay failover decisions.
            resources: serde_json::json!({
                "requests": {"cpu": "50m", "memory": "64Mi"},
                "limits": {"memory": "512Mi"},
            }),
            node_selector: BTreeMap::new(),
            tolerations: Vec::new(),
            monitoring: monitoring::Monitoring::default(),
        }
    }
}

impl InstallOptions {
    /// Refuses values that would give objects the API server rejects.
    pub fn check(&self) -> Result<(), RenderError> {
        for (what, value) in [
            ("namespace", &self.namespace),
            ("cilium namespace", &self.cilium_namespace),
        ] {
            if !is_dns_label(value) {
                return Err(RenderError::InvalidOption(format!(
                    "{what} `{value}` is not a DNS-1123 label (a-z, 0-9, `-`, at most 63)"
                )));
            }
        }
        if self.replicas == 0 {
            return Err(RenderError::InvalidOption(
                "replicas must be at least 1".to_string(),
            ));
        }
        if let Some(flag) = self
            .sync_flags
            .keys()
            .find(|f| RESERVED_SYNC_FLAGS.contains(&f.as_str()))
        {
            return Err(RenderError::InvalidOption(format!(
                "sync flag `--{flag}` is set by install itself; use its own option"
            )));
        }
        if !self.resources.is_object() {
            return Err(RenderError::InvalidOption(
                "resources must be an object (requests, limits)".to_string(),
            ));
        }
        if self.image.trim().is_empty() || self.image.chars().any(char::is_whitespace) {
            return Err(RenderError::InvalidOption(format!(
                "image `{}` is not an image reference",
                self.image
            )));
        }
        Ok(())
    }

    /// Should the Namespace object be rendered (not `default` or a `kube-*` one)? The same
    /// rule as the agent's.
    fn renders_namespace(&self) -> bool {
        self.create_namespace && self.namespace != "default" && !self.namespace.starts_with("kube-")
    }
}

fn is_dns_label(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-')
}

/// One RBAC policy rule.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// API groups (`""` is the core group).
    pub api_groups: &'static [&'static str],
    /// Resources, `resource/subresource` for subresources.
    pub resources: &'static [&'static str],
    /// Verbs.
    pub verbs: &'static [&'static str],
}

/// The rules of one namespaced Role.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct NamespaceRole {
    /// Namespace of the Role and its RoleBinding.
    pub namespace: String,
    /// Its rules.
    pub rules: Vec<Rule>,
}

/// What a watched kind needs: kube-rs watchers list and watch, they never GET, so no rule
/// grants `get` unless a shell reads one object (the leader fence's Lease).
/// `tests/install_rbac.rs` runs `sync` against these rules and names every unused grant.
const WATCH: &[&str] = &["list", "watch"];

/// Cluster-wide rules: every watch of `sync::watch` on cluster-scoped kinds, and the writes of
/// `sync::writer` on them. No `update` anywhere: labels and CEGPs go by apply/merge patch.
pub fn cluster_rules() -> Vec<Rule> {
    vec![
        // Node health and the active/member labels (apply and merge patch).
        Rule {
            api_groups: &[""],
            resources: &["nodes"],
            verbs: &["list", "watch", "patch"],
        },
        // The same labels on CiliumNode (Cilium reads them there).
        Rule {
            api_groups: &["cilium.io"],
            resources: &["ciliumnodes"],
            verbs: &["list", "watch", "patch"],
        },
        // The compiled policies: apply (which may create), delete when the source is gone.
        Rule {
            api_groups: &["cilium.io"],
            resources: &["ciliumegressgatewaypolicies"],
            verbs: &["list", "watch", "create", "patch", "delete"],
        },
        Rule {
            api_groups: &["network.deckhouse.io"],
            resources: &["egressgateways", "egressgatewaypolicies"],
            verbs: WATCH,
        },
        Rule {
            api_groups: &["network.deckhouse.io"],
            resources: &["egressgateways/status", "egressgatewaypolicies/status"],
            verbs: &["patch"],
        },
    ]
}

/// Namespaced rules, one Role per namespace (rules of the same namespace merged, e.g. when
/// cilium-agent runs in the controller's namespace).
pub fn namespace_roles(options: &InstallOptions) -> Vec<NamespaceRole> {
    let grants: [(&str, Rule); 5] = [
        // Leader election Lease (the fence GETs it) and the VIP Leases (created, granted,
        // withdrawn, deleted).
        (
            &options.namespace,
            Rule {
                api_groups: &["coordination.k8s.io"],
                resources: &["leases"],
                verbs: &[
                    "get", "list", "watch", "create", "update", "patch", "delete",
                ],
            },
        ),
        // VIP agent readiness.
        (
            &options.namespace,
            Rule {
                api_groups: &[""],
                resources: &["pods"],
                verbs: WATCH,
            },
        ),
        // cilium-agent readiness.
        (
            &options.cilium_namespace,
            Rule {
                api_groups: &[""],
                resources: &["pods"],
                verbs: WATCH,
            },
        ),
        // Kubelet heartbeats (a powered-off node stays Ready for minutes; its Lease stops).
        (
            NODE_LEASE_NAMESPACE,
            Rule {
                api_groups: &["coordination.k8s.io"],
                resources: &["leases"],
                verbs: WATCH,
            },
        ),
        // Events about gateways and policies (the recorder creates, then patches a series).
        (
            EVENT_NAMESPACE,
            Rule {
                api_groups: &["events.k8s.io"],
                resources: &["events"],
                verbs: &["create", "patch"],
            },
        ),
    ];
    let mut by_namespace: BTreeMap<&str, Vec<Rule>> = BTreeMap::new();
    for (namespace, rule) in grants {
        let rules = by_namespace.entry(namespace).or_default();
        if !rules.contains(&rule) {
            rules.push(rule);
        }
    }
    by_namespace
        .into_iter()
        .map(|(namespace, rules)| NamespaceRole {
            namespace: namespace.to_string(),
            rules,
        })
        .collect()
}

/// Context shared by the controller's templates.
#[derive(Serialize, Debug)]
struct SyncContext<'a> {
    name: &'static str,
    namespace: String,
    namespace_labels: BTreeMap<String, String>,
    image: String,
    labels: BTreeMap<String, String>,
    selector_labels: BTreeMap<String, String>,
    replicas: u32,
    args: Vec<String>,
    metrics_port: u16,
    priority_class: Option<String>,
    host_network: bool,
    resources: &'a serde_json::Value,
    node_selector: &'a BTreeMap<String, String>,
    tolerations: &'a [serde_json::Value],
    node_failure_toleration_seconds: u32,
    allocator_env: BTreeMap<&'static str, &'static str>,
    cluster_rules: Vec<Rule>,
}

/// A Role's context: the shared one plus the Role's namespace and rules.
#[derive(Serialize)]
struct RoleContext<'a> {
    #[serde(flatten)]
    shared: &'a SyncContext<'a>,
    role: &'a NamespaceRole,
}

fn context(options: &InstallOptions) -> SyncContext<'_> {
    let selector_labels = BTreeMap::from([
        (
            "app.kubernetes.io/name".to_string(),
            super::AGENT_APP_NAME.to_string(),
        ),
        (
            "app.kubernetes.io/component".to_string(),
            SYNC_COMPONENT.to_string(),
        ),
    ]);
    let mut labels = provenance::managed_by();
    labels.extend(selector_labels.clone());
    SyncContext {
        name: SYNC_NAME,
        namespace: options.namespace.clone(),
        namespace_labels: super::agent::namespace_labels(),
        image: options.image.clone(),
        labels,
        selector_labels,
        replicas: options.replicas,
        args: sync_args(options),
        metrics_port: SYNC_METRICS_PORT,
        priority_class: options.priority_class.clone(),
        host_network: options.host_network,
        resources: &options.resources,
        node_selector: &options.node_selector,
        tolerations: &options.tolerations,
        node_failure_toleration_seconds: NODE_FAILURE_TOLERATION_SECONDS,
        allocator_env: SYNC_ALLOCATOR_ENV.into_iter().collect(),
        cluster_rules: cluster_rules(),
    }
}

/// The controller container's arguments: `sync`, the fixed flags, then every further flag
/// in name order.
pub fn sync_args(options: &InstallOptions) -> Vec<String> {
    let mut args = vec![
        "sync".to_string(),
        "--metrics-addr".to_string(),
        format!("$(POD_IP):{SYNC_METRICS_PORT}"),
        "--cilium-version".to_string(),
        options.cilium.to_string(),
        "--cilium-namespace".to_string(),
        options.cilium_namespace.clone(),
    ];
    for (flag, value) in &options.sync_flags {
        args.push(format!("--{flag}"));
        args.push(value.clone());
    }
    args
}

impl super::Renderer {
    /// Renders the install manifests in apply order (CRDs first). Identical options give
    /// identical bytes.
    pub fn render_install(&self, options: &InstallOptions) -> Result<String, RenderError> {
        options.check()?;
        let context = context(options);
        let mut rendered = Objects::new(&self.engine, 16);
        let crds = if options.crds {
            vec![
                crate::crds::egress_gateway_crd(),
                crate::crds::egress_gateway_policy_crd(),
            ]
        } else {
            Vec::new()
        };
        for crd in crds {
            let name = crd["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            rendered.add(
                "CustomResourceDefinition",
                &name,
                super::yaml_block::to_yaml(&crd),
            )?;
        }
        let mut objects = vec![
            (super::templates::SYNC_SERVICE_ACCOUNT, "ServiceAccount"),
            (super::templates::SYNC_CLUSTER_ROLE, "ClusterRole"),
            (
                super::templates::SYNC_CLUSTER_ROLE_BINDING,
                "ClusterRoleBinding",
            ),
            (super::templates::SYNC_DEPLOYMENT, "Deployment"),
        ];
        // A budget of one with one replica would block every node drain.
        if options.replicas >= 2 {
            objects.push((super::templates::SYNC_PDB, "PodDisruptionBudget"));
        }
        for (template, kind) in objects {
            rendered.render(template, kind, SYNC_NAME, &context)?;
        }
        if options.renders_namespace() {
            rendered.render(
                super::templates::AGENT_NAMESPACE,
                "Namespace",
                &options.namespace,
                &context,
            )?;
        }
        for role in namespace_roles(options) {
            let role_context = RoleContext {
                shared: &context,
                role: &role,
            };
            for (template, kind) in [
                (super::templates::SYNC_ROLE, "Role"),
                (super::templates::SYNC_ROLE_BINDING, "RoleBinding"),
            ] {
                rendered.render(template, kind, SYNC_NAME, &role_context)?;
            }
        }
        for (kind, text) in
            monitoring::documents(options, &context.labels, &context.selector_labels)
        {
            rendered.add(&kind, SYNC_NAME, text)?;
        }
        Ok(rendered.finish())
    }
}

pub mod monitoring;
#[cfg(test)]
mod tests;
