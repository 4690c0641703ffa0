//! `egressc install` as a black box: the manifests it prints, the Namespace it shares with the
//! VIP agent of `egressc build`, and its refusal of bad options (exit 2, nothing on stdout).

use std::process::{Command, Output};

use serde_json::Value;

fn egressc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_egressc"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("egressc runs")
}

fn documents(output: &Output) -> Vec<Value> {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_saphyr::from_str_multiple(&String::from_utf8_lossy(&output.stdout)).expect("YAML")
}

fn namespace(docs: &[Value]) -> Value {
    docs.iter()
        .find(|d| d["kind"] == "Namespace")
        .cloned()
        .expect("a Namespace")
}

#[test]
fn install_and_build_render_the_same_shared_namespace() {
    for ns in ["egressc-system", "egress"] {
        let installed = documents(&egressc(&["install", "--namespace", ns]));
        let built = documents(&egressc(&[
            "build",
            "examples/seed/02-egressgateway-virtual-ip.yaml",
            "--agent-namespace",
            ns,
        ]));
        assert_eq!(namespace(&installed), namespace(&built));
        assert_eq!(namespace(&installed)["metadata"]["name"], ns);
        let deployment = installed
            .iter()
            .find(|d| d["kind"] == "Deployment")
            .expect("a Deployment");
        assert_eq!(deployment["metadata"]["namespace"], ns);
    }
}

#[test]
fn install_carries_the_crds_of_egressc_crds() {
    let installed = documents(&egressc(&["install"]));
    let crds = documents(&egressc(&["crds"]));
    let by_name = |docs: Vec<&Value>| {
        let mut docs: Vec<Value> = docs.into_iter().cloned().collect();
        docs.sort_by_key(|d| d["metadata"]["name"].as_str().map(str::to_owned));
        docs
    };
    let installed_crds = installed
        .iter()
        .filter(|d| d["kind"] == "CustomResourceDefinition")
        .collect();
    assert_eq!(by_name(installed_crds), by_name(crds.iter().collect()));
    assert_eq!(crds.len(), 2);
}

#[test]
fn options_reach_the_deployment() {
    let docs = documents(&egressc(&[
        "install",
        "--image",
        "registry.example/egressc:9",
        "--replicas",
        "1",
        "--cilium-version",
        "1.19",
        "--priority-class",
        "",
    ]));
    let deployment = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert_eq!(pod["containers"][0]["image"], "registry.example/egressc:9");
    assert!(pod.get("priorityClassName").is_none());
    let args: Vec<&str> = pod["containers"][0]["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(args.windows(2).any(|w| w == ["--cilium-version", "1.19"]));
    assert!(!docs.iter().any(|d| d["kind"] == "PodDisruptionBudget"));
}

#[test]
fn bad_options_exit_2_with_nothing_on_stdout() {
    for args in [
        &["install", "--namespace", "Not_A_Namespace"][..],
        &["install", "--replicas", "0"],
        &["install", "--cilium-version", "1.9"],
    ] {
        let out = egressc(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
}

#[test]
fn output_file_holds_what_stdout_would() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("install.yaml");
    let written = egressc(&["install", "-o", path.to_str().expect("utf-8 path")]);
    assert!(written.status.success());
    assert!(written.stdout.is_empty());
    let printed = egressc(&["install"]);
    assert_eq!(std::fs::read(&path).expect("written"), printed.stdout);
}
