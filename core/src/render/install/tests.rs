use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::Role;
use serde_json::Value;

use super::*;
use crate::render::{Renderer, Templates};

fn render(options: &InstallOptions) -> String {
    Renderer::new(&Templates::builtin())
        .and_then(|r| r.render_install(options))
        .unwrap_or_else(|e| panic!("install renders: {e}"))
}

fn documents(text: &str) -> Vec<Value> {
    serde_saphyr::from_str_multiple(text).unwrap_or_else(|e| panic!("valid YAML: {e}\n{text}"))
}

fn kinds(docs: &[Value]) -> Vec<String> {
    docs.iter()
        .map(|d| d["kind"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn only<T: serde::de::DeserializeOwned>(docs: &[Value], kind: &str) -> T {
    let found: Vec<&Value> = docs.iter().filter(|d| d["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "exactly one {kind}");
    serde_json::from_value(found[0].clone()).unwrap_or_else(|e| panic!("{kind}: {e}"))
}

#[test]
fn default_stream_has_every_object_in_apply_order() {
    let docs = documents(&render(&InstallOptions::default()));
    assert_eq!(
        kinds(&docs),
        [
            "CustomResourceDefinition",
            "CustomResourceDefinition",
            "Namespace",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "Role",
            "Role",
            "Role",
            "RoleBinding",
            "RoleBinding",
            "RoleBinding",
            "RoleBinding",
            "Deployment",
            "PodDisruptionBudget",
        ]
    );
    let role_namespaces: Vec<&str> = docs
        .iter()
        .filter(|d| d["kind"] == "Role")
        .filter_map(|d| d["metadata"]["namespace"].as_str())
        .collect();
    // Events, own namespace (Leases, agent Pods), heartbeats, cilium-agent Pods.
    assert_eq!(
        role_namespaces,
        [
            "default",
            "egressc-system",
            "kube-node-lease",
            "kube-system"
        ]
    );
}

#[test]
fn deployment_runs_sync_as_non_root_with_probes_on_the_metrics_port() {
    let options = InstallOptions {
        image: "registry.example/egressc:1.2.3".to_string(),
        replicas: 3,
        ..InstallOptions::default()
    };
    let docs = documents(&render(&options));
    let deployment: Deployment = only(&docs, "Deployment");
    let spec = deployment.spec.unwrap_or_default();
    assert_eq!(spec.replicas, Some(3));
    let pod = spec.template.spec.unwrap_or_default();
    assert_eq!(pod.service_account_name.as_deref(), Some(SYNC_NAME));
    let container = &pod.containers[0];
    assert_eq!(
        container.image.as_deref(),
        Some("registry.example/egressc:1.2.3")
    );
    let args = container.args.clone().unwrap_or_default();
    assert_eq!(args[0], "sync");
    assert!(args.windows(2).any(|w| w == ["--cilium-version", "1.17"]));
    let ports = container.ports.clone().unwrap_or_default();
    let port = &ports[0];
    assert_eq!(port.container_port, i32::from(SYNC_METRICS_PORT));
    for (probe, path) in [
        (&container.liveness_probe, "/healthz"),
        (&container.readiness_probe, "/readyz"),
    ] {
        let get = probe
            .as_ref()
            .and_then(|p| p.http_get.clone())
            .unwrap_or_default();
        assert_eq!(get.path.as_deref(), Some(path));
        assert_eq!(
            serde_json::to_value(&get.port).unwrap_or_default(),
            Value::from(port.name.clone().unwrap_or_default())
        );
    }
    let env: BTreeMap<String, String> = container
        .env
        .iter()
        .flatten()
        .filter_map(|e| {
            let path = e
                .value_from
                .as_ref()?
                .field_ref
                .as_ref()?
                .field_path
                .clone();
            Some((e.name.clone(), path))
        })
        .collect();
    assert_eq!(
        env.get("POD_NAMESPACE").map(String::as_str),
        Some("metadata.namespace")
    );
    assert_eq!(
        env.get("POD_NAME").map(String::as_str),
        Some("metadata.name")
    );
    let values: BTreeMap<&str, &str> = container
        .env
        .iter()
        .flatten()
        .filter_map(|e| Some((e.name.as_str(), e.value.as_deref()?)))
        .collect();
    for (key, value) in SYNC_ALLOCATOR_ENV {
        assert_eq!(values.get(key), Some(&value), "allocator setting {key}");
    }
    let pod_security = pod.security_context.unwrap_or_default();
    assert_eq!(pod_security.run_as_non_root, Some(true));
    let security = container.security_context.clone().unwrap_or_default();
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(
        security.capabilities.and_then(|c| c.drop),
        Some(vec!["ALL".to_string()])
    );
    let anti = pod
        .affinity
        .and_then(|a| a.pod_anti_affinity)
        .and_then(|a| a.preferred_during_scheduling_ignored_during_execution)
        .unwrap_or_default();
    assert_eq!(
        anti[0].pod_affinity_term.topology_key,
        "kubernetes.io/hostname"
    );
}

#[test]
fn selectors_match_the_controller_pods_and_not_the_vip_agents() {
    let docs = documents(&render(&InstallOptions::default()));
    let deployment: Deployment = only(&docs, "Deployment");
    let budget: PodDisruptionBudget = only(&docs, "PodDisruptionBudget");
    let spec = deployment.spec.unwrap_or_default();
    let pod_labels = spec
        .template
        .metadata
        .unwrap_or_default()
        .labels
        .unwrap_or_default();
    let matches = |selector: &BTreeMap<String, String>| {
        selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v))
    };
    assert!(matches(&spec.selector.match_labels.unwrap_or_default()));
    let budget_spec = budget.spec.unwrap_or_default();
    assert_eq!(
        budget_spec.min_available,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1))
    );
    assert!(matches(
        &budget_spec
            .selector
            .and_then(|s| s.match_labels)
            .unwrap_or_default()
    ));
    // `sync` counts Pods with the agent's labels as VIP agents: the controller must not look
    // like one.
    let agent = BTreeMap::from([
        (
            "app.kubernetes.io/name".to_string(),
            crate::render::AGENT_APP_NAME.to_string(),
        ),
        (
            "app.kubernetes.io/component".to_string(),
            crate::render::AGENT_COMPONENT.to_string(),
        ),
    ]);
    assert!(!matches(&agent));
}

#[test]
fn one_replica_gets_no_budget_and_kube_namespaces_are_not_rendered() {
    let options = InstallOptions {
        replicas: 1,
        namespace: "kube-system".to_string(),
        ..InstallOptions::default()
    };
    let docs = documents(&render(&options));
    let kinds = kinds(&docs);
    assert!(!kinds.iter().any(|k| k == "PodDisruptionBudget"));
    assert!(!kinds.iter().any(|k| k == "Namespace"));
    // cilium-agent in the controller's namespace: one Role there, its pod rule not repeated.
    let role: Role = serde_json::from_value(
        docs.iter()
            .find(|d| d["kind"] == "Role" && d["metadata"]["namespace"] == "kube-system")
            .cloned()
            .unwrap_or_default(),
    )
    .unwrap_or_else(|e| panic!("role: {e}"));
    let pod_rules = role
        .rules
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.resources.as_deref() == Some(&["pods".to_string()]))
        .count();
    assert_eq!(pod_rules, 1);
}

#[test]
fn invalid_options_are_refused() {
    for options in [
        InstallOptions {
            namespace: "Egress".to_string(),
            ..InstallOptions::default()
        },
        InstallOptions {
            cilium_namespace: "kube-system\nx".to_string(),
            ..InstallOptions::default()
        },
        InstallOptions {
            replicas: 0,
            ..InstallOptions::default()
        },
        InstallOptions {
            image: "a b".to_string(),
            ..InstallOptions::default()
        },
    ] {
        let result = Renderer::new(&Templates::builtin()).and_then(|r| r.render_install(&options));
        assert!(
            matches!(result, Err(RenderError::InvalidOption(_))),
            "{options:?} gave {result:?}"
        );
    }
}

#[test]
fn sync_runs_in_the_host_network_to_probe_nodes_and_serves_metrics_on_the_node_ip() {
    let docs = documents(&render(&InstallOptions::default()));
    let deployment: Deployment = only(&docs, "Deployment");
    let pod = deployment
        .spec
        .and_then(|s| s.template.spec)
        .expect("pod spec");
    assert_eq!(pod.host_network, Some(true));
    assert_eq!(pod.dns_policy.as_deref(), Some("ClusterFirstWithHostNet"));
    let container = &pod.containers[0];
    let args = container.args.clone().unwrap_or_default();
    assert!(
        args.contains(&format!("$(POD_IP):{SYNC_METRICS_PORT}")),
        "{args:?}"
    );
    let env = container.env.clone().unwrap_or_default();
    assert!(env.iter().any(|e| {
        e.name == "POD_IP"
            && e.value_from
                .as_ref()
                .and_then(|v| v.field_ref.as_ref())
                .map(|f| f.field_path.as_str())
                == Some("status.podIP")
    }));
}
