//! The Helm chart `charts/egressc` against `egressc install`, with the real helm v3: for each
//! values file, `helm template` and `egressc install --values` must give the same objects
//! (compared as values, keyed by kind, namespace and name), and `helm lint --strict` must pass.
//! Values the schema refuses are refused by both.
//!
//! helm is found as `$EGRESSC_HELM` or `helm` on PATH (`.ci/run` installs it); without it the
//! tests skip, unless `EGRESSC_REQUIRE_TOOLS=1` (CI) makes that a failure.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use support::tools::{Tool, egressc, objects_by_identity, printed_documents};

const CHART: &str = "charts/egressc";

fn helm() -> Option<Tool> {
    Tool::find("EGRESSC_HELM", "helm")
}

/// The objects `helm template` renders, keyed; the Helm-only annotation is dropped.
fn helm_template(helm: &Tool, namespace: &str, values: &Path) -> BTreeMap<String, Value> {
    let out = helm.run(&[
        "template",
        "egressc",
        CHART,
        "--namespace",
        namespace,
        "--values",
        values.to_str().expect("utf-8 path"),
    ]);
    let mut docs = printed_documents(&out, "helm template");
    for doc in &mut docs {
        drop_helm_only(doc);
    }
    objects_by_identity(docs)
}

/// `helm.sh/resource-policy` (keep the CRDs on uninstall) has no meaning outside Helm.
fn drop_helm_only(doc: &mut Value) {
    let Some(metadata) = doc.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(annotations) = metadata
        .get_mut("annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.remove("helm.sh/resource-policy");
        if annotations.is_empty() {
            metadata.remove("annotations");
        }
    }
}

fn install(namespace: &str, values: &Path) -> BTreeMap<String, Value> {
    let out = egressc(&[
        "install",
        "--namespace",
        namespace,
        "--values",
        values.to_str().expect("utf-8 path"),
    ]);
    objects_by_identity(printed_documents(&out, "egressc install"))
}

/// Settings combinations: the defaults; Deckhouse's Cilium with a pushed image, one replica
/// and the Namespace object; everything else at once (extra sync flags, host network,
/// resources, scheduling, monitoring, no CRDs, cilium-agent in the release namespace so that
/// the Roles merge, a `kube-*` namespace that is never rendered).
const CASES: &[(&str, &str, &str)] = &[
    ("defaults", "egressc-system", ""),
    (
        "deckhouse",
        "egress",
        "image:\n  repository: registry.example/platform/egressc\n  tag: \"9.9\"\n\
         replicas: 1\nciliumVersion: \"1.19\"\npriorityClassName: \"\"\n\
         cilium:\n  namespace: d8-cni-cilium\n  selector: app=agent,module=cni-cilium\n\
         namespace:\n  create: true\ncrds:\n  keep: false\n",
    ),
    (
        "everything",
        "kube-system",
        "replicas: 3\nciliumVersion: \"1.20\"\nhostNetwork: true\n\
         cilium:\n  namespace: kube-system\n\
         extraArgs:\n  settle: 5s\n  node-lease-grace: 30s\n  leader-lease-duration: 20s\n\
         resources:\n  requests:\n    cpu: 100m\n    memory: 128Mi\n  limits:\n    cpu: \"1\"\n    memory: 1Gi\n\
         nodeSelector:\n  node-role.kubernetes.io/control-plane: \"\"\n\
         tolerations:\n  - key: node-role.kubernetes.io/control-plane\n    operator: Exists\n    effect: NoSchedule\n\
         namespace:\n  create: true\ncrds:\n  install: false\n\
         serviceMonitor:\n  enabled: true\n  interval: 15s\n  labels:\n    release: kube-prometheus-stack\n\
         podMonitor:\n  enabled: true\n\
         prometheusRule:\n  enabled: true\n  labels:\n    release: kube-prometheus-stack\n",
    ),
];

#[test]
fn helm_template_equals_egressc_install_and_lints_strictly() {
    let Some(helm) = helm() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, namespace, values) in CASES {
        let file = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&file, values).expect("values file");
        let charted = helm_template(&helm, namespace, &file);
        let installed = install(namespace, &file);
        let keys = |m: &BTreeMap<String, Value>| m.keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&charted), keys(&installed), "{name}: objects differ");
        for (key, object) in &installed {
            assert_eq!(
                &charted[key], object,
                "{name}: {key} differs (left: helm template, right: egressc install)"
            );
        }
        let lint = helm.run(&[
            "lint",
            "--strict",
            CHART,
            "--values",
            file.to_str().unwrap(),
        ]);
        assert!(
            lint.status.success(),
            "{name}: helm lint --strict: {}{}",
            String::from_utf8_lossy(&lint.stdout),
            String::from_utf8_lossy(&lint.stderr)
        );
    }
}

#[test]
fn the_comparison_sees_a_difference() {
    // Not vacuous: the same values with one different setting give different objects.
    let Some(helm) = helm() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let a = dir.path().join("a.yaml");
    let b = dir.path().join("b.yaml");
    std::fs::write(&a, "replicas: 3\n").unwrap();
    std::fs::write(&b, "replicas: 4\n").unwrap();
    assert_ne!(
        helm_template(&helm, "egressc-system", &a),
        install("egressc-system", &b)
    );
}

#[test]
fn values_the_schema_refuses_are_refused_by_both() {
    let Some(helm) = helm() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, values) in [
        ("typo", "replicass: 2\n"),
        ("zero replicas", "replicas: 0\n"),
        ("version as a number", "ciliumVersion: 1.2\n"),
        ("reserved flag", "extraArgs:\n  cilium-namespace: x\n"),
    ] {
        let file = dir.path().join("values.yaml");
        std::fs::write(&file, values).unwrap();
        let path = file.to_str().unwrap();
        let charted = helm.run(&["template", "egressc", CHART, "--values", path]);
        assert!(!charted.status.success(), "{name}: helm accepted it");
        let installed = egressc(&["install", "--values", path]);
        assert_eq!(
            installed.status.code(),
            Some(2),
            "{name}: install accepted it"
        );
        assert!(installed.stdout.is_empty(), "{name}");
    }
}

#[test]
fn chart_files_are_egressc_s_own() {
    // The CRDs and alert rules the chart ships are the generated CRDs and the rules file.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (chart_file, source) in [
        (
            "charts/egressc/files/crds/egressgateways.network.deckhouse.io.yaml",
            "schemas/egressgateways.network.deckhouse.io.yaml",
        ),
        (
            "charts/egressc/files/crds/egressgatewaypolicies.network.deckhouse.io.yaml",
            "schemas/egressgatewaypolicies.network.deckhouse.io.yaml",
        ),
        (
            "charts/egressc/files/egressc.rules.yaml",
            "monitoring/egressc.rules.yaml",
        ),
    ] {
        let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap_or_default();
        assert_eq!(
            read(chart_file),
            read(source),
            "{chart_file} must be a copy of {source}: cp {source} {chart_file}"
        );
    }
    let chart = std::fs::read_to_string(root.join("charts/egressc/Chart.yaml")).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        chart.contains(&format!("appVersion: \"{version}\"")),
        "Chart.yaml appVersion must be {version}"
    );
}
