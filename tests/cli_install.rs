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

/// One owner of the shared Namespace: `install` renders it (with the `privileged` Pod Security
/// label the VIP agent needs), `build` never does, so pruning the Argo CD application of either
/// cannot delete the other's objects.
#[test]
fn only_install_renders_the_shared_namespace() {
    for ns in ["egressc-system", "egress"] {
        let installed = documents(&egressc(&["install", "--namespace", ns]));
        let built = documents(&egressc(&[
            "build",
            "examples/seed/02-egressgateway-virtual-ip.yaml",
            "--agent-namespace",
            ns,
            "--agent-image",
            "registry.example/egressc:1",
        ]));
        assert!(built.iter().any(|d| d["kind"] == "DaemonSet"));
        assert!(!built.iter().any(|d| d["kind"] == "Namespace"), "{ns}");
        let namespace = namespace(&installed);
        assert_eq!(namespace["metadata"]["name"], ns);
        assert_eq!(
            namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
            "privileged"
        );
        let deployment = installed
            .iter()
            .find(|d| d["kind"] == "Deployment")
            .expect("a Deployment");
        assert_eq!(deployment["metadata"]["namespace"], ns);
        let daemonset = built.iter().find(|d| d["kind"] == "DaemonSet").unwrap();
        assert_eq!(daemonset["metadata"]["namespace"], ns);
    }
    let without = documents(&egressc(&["install", "--no-namespace"]));
    assert!(!without.iter().any(|d| d["kind"] == "Namespace"));
}

fn deployment_args(docs: &[Value]) -> Vec<String> {
    let deployment = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment");
    deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect()
}

/// Issue 13 item 8: every `sync` flag a cluster may need reaches the controller, e.g.
/// Deckhouse's cilium-agents (`app=agent,module=cni-cilium` in `d8-cni-cilium`).
#[test]
fn sync_flags_reach_the_controller() {
    let docs = documents(&egressc(&[
        "install",
        "--cilium-namespace",
        "d8-cni-cilium",
        "--cilium-selector",
        "app=agent,module=cni-cilium",
        "--node-lease-grace",
        "30s",
        "--settle",
        "5s",
        "--leader-lease-duration",
        "20s",
        "--vip-agent-selector",
        "app=vip",
        "--sync-flag",
        "leader-elect=true",
    ]));
    let args = deployment_args(&docs);
    for pair in [
        ["--cilium-namespace", "d8-cni-cilium"],
        ["--cilium-selector", "app=agent,module=cni-cilium"],
        ["--node-lease-grace", "30s"],
        ["--settle", "5s"],
        ["--leader-lease-duration", "20s"],
        ["--vip-agent-selector", "app=vip"],
        ["--leader-elect", "true"],
    ] {
        assert!(args.windows(2).any(|w| w == pair), "{pair:?} in {args:?}");
    }
    // The controller may read cilium-agent Pods where they are.
    assert!(
        docs.iter()
            .any(|d| d["kind"] == "Role" && d["metadata"]["namespace"] == "d8-cni-cilium")
    );
    // Without the flags, sync's defaults apply: nothing extra is rendered.
    let plain = deployment_args(&documents(&egressc(&["install"])));
    assert!(!plain.iter().any(|a| a == "--cilium-selector"), "{plain:?}");
}

/// W030: the default image is the local build tag of Dockerfile; rendering it says so.
#[test]
fn the_default_image_is_named_by_a_warning() {
    let out = egressc(&["install"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("warning[W030]"), "{stderr}");
    assert!(stderr.contains("--image"), "{stderr}");
    let pushed = egressc(&["install", "--image", "registry.example/egressc:1"]);
    assert!(
        pushed.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    let vip = "examples/seed/02-egressgateway-virtual-ip.yaml";
    let built = egressc(&["build", vip]);
    assert!(built.status.success());
    assert!(String::from_utf8_lossy(&built.stderr).contains("warning[W030]"));
    let denied = egressc(&["build", vip, "--deny-warnings"]);
    assert_eq!(denied.status.code(), Some(1));
    assert!(denied.stdout.is_empty());
    let primary = egressc(&["build", "examples/seed/01-egressgateway-primary-ip.yaml"]);
    assert!(primary.stderr.is_empty(), "no agent, no warning");
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
        // Flags `sync` would refuse (the controller would crash-loop).
        &["install", "--sync-flag", "no-such-flag=1"],
        &["install", "--settle", "five"],
        &["install", "--sync-flag", "cilium-namespace=x"],
        &["install", "--sync-flag", "settle"],
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
