//! The Kustomize base `deploy/` and the Argo CD Component `examples/argocd`, built by the real
//! `kubectl kustomize` (kubectl 1.32's built-in Kustomize): the base is `egressc install`, an
//! overlay replaces the image, and the Component adds the plugin sidecar and its ConfigMap to an
//! argocd-repo-server.
//!
//! kubectl is found as `$EGRESSC_KUBECTL` or on PATH; without it the tests skip unless
//! `EGRESSC_REQUIRE_TOOLS=1`.

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;
use support::tools::{Tool, documents, egressc, objects_by_identity};

fn kustomize(dir: &str) -> Option<Vec<Value>> {
    let kubectl = Tool::find("EGRESSC_KUBECTL", "kubectl")?;
    let out = kubectl.run(&["kustomize", dir]);
    assert!(
        out.status.success(),
        "kubectl kustomize {dir}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(documents(&out.stdout))
}

/// `deploy/egressc.yaml` is what `egressc install` prints; `UPDATE_SCHEMAS=1` rewrites it.
#[test]
fn the_base_is_egressc_install() {
    let installed = egressc(&["install"]);
    assert!(installed.status.success());
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/egressc.yaml");
    if std::env::var_os("UPDATE_SCHEMAS").is_some() {
        std::fs::write(&path, &installed.stdout).unwrap();
    }
    assert!(
        std::fs::read(&path).unwrap_or_default() == installed.stdout,
        "deploy/egressc.yaml is stale: egressc install -o deploy/egressc.yaml"
    );
    let Some(built) = kustomize("deploy") else {
        return;
    };
    assert_eq!(
        objects_by_identity(built),
        objects_by_identity(documents(&installed.stdout))
    );
}

#[test]
fn an_overlay_sets_the_image() {
    let Some(built) = kustomize("examples/kustomize/controller") else {
        return;
    };
    let deployment = built
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("the controller");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example/platform/egressc:0.1.0"
    );
    assert_eq!(
        built.len(),
        documents(&egressc(&["install"]).stdout).len(),
        "every object of the base"
    );
}

#[test]
fn the_argocd_component_adds_the_plugin_sidecar() {
    let Some(built) = kustomize("tests/fixtures/kustomize/argocd") else {
        return;
    };
    let config_map = built
        .iter()
        .find(|d| d["kind"] == "ConfigMap")
        .expect("the plugin ConfigMap");
    assert_eq!(config_map["metadata"]["name"], "egressc-cmp-plugin");
    assert_eq!(config_map["metadata"]["namespace"], "argocd");
    let plugin = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/argocd/plugin.yaml"),
    )
    .unwrap();
    assert_eq!(config_map["data"]["plugin.yaml"], plugin.as_str());
    let repo_server = built
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("argocd-repo-server");
    let pod = &repo_server["spec"]["template"]["spec"];
    let containers = pod["containers"].as_array().unwrap();
    let names: Vec<&str> = containers
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["egressc-cmp", "argocd-repo-server"]);
    let sidecar = &containers[0];
    assert_eq!(sidecar["image"], "registry.example/platform/egressc:0.1.0");
    assert_eq!(sidecar["securityContext"]["runAsUser"], 999);
    // Every mount names a volume of the Pod.
    let volumes: BTreeSet<&str> = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    for mount in sidecar["volumeMounts"].as_array().unwrap() {
        let name = mount["name"].as_str().unwrap();
        assert!(
            volumes.contains(name),
            "{name} is not a volume: {volumes:?}"
        );
    }
}
