//! `egressc krm` end to end through the real `kubectl kustomize --enable-alpha-plugins`
//! (kubectl 1.32's built-in Kustomize), in both ways it runs a plugin:
//!
//! - the exec plugin of `examples/kustomize/krm` (`$KUSTOMIZE_PLUGIN_HOME/…/EgressCompiler`
//!   runs `egressc krm CONFIG`, resources as a YAML stream) — no stand-in at all;
//! - a containerized KRM function (`config.kubernetes.io/function: {container: …}`, a
//!   ResourceList on stdin): kubectl runs `docker run … IMAGE`; the machine has no container
//!   engine, so a `docker` on PATH stands in for the runtime and runs `egressc krm` as the image
//!   would. Everything else — the ResourceList kubectl writes and reads — is kubectl's own.
//!
//! (kubectl has no `--enable-exec`: it skips `exec:` KRM functions silently; kubernetes/kubectl
//! issue 1498.) The output must equal `egressc build` for the same sources, with every other
//! item passed through; errors fail the build with egressc's diagnostics on stderr.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use support::tools::{Tool, documents, egressc, objects_by_identity};

const EXAMPLE: &str = "examples/kustomize/krm";

fn kubectl() -> Option<Tool> {
    Tool::find("EGRESSC_KUBECTL", "kubectl")
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// PATH with this build's egressc (and `extra`) first.
fn path_with(extra: Option<&Path>) -> String {
    let bin = Path::new(env!("CARGO_BIN_EXE_egressc"))
        .parent()
        .expect("bin dir")
        .to_path_buf();
    let mut paths: Vec<PathBuf> = extra.into_iter().map(Path::to_path_buf).collect();
    paths.push(bin);
    paths.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(paths)
        .expect("PATH")
        .to_string_lossy()
        .into_owned()
}

fn kustomize(kubectl: &Tool, dir: &Path, shim: Option<&Path>) -> Output {
    kubectl
        .command()
        .args(["kustomize", "--enable-alpha-plugins"])
        .arg(dir)
        .env("PATH", path_with(shim))
        .env("KUSTOMIZE_PLUGIN_HOME", repo(&format!("{EXAMPLE}/plugin")))
        .output()
        .expect("kubectl runs")
}

/// What `egressc build` renders for the example's sources, plus the passed-through ConfigMap.
fn expected() -> BTreeMap<String, Value> {
    let built = egressc(&[
        "build",
        &format!("{EXAMPLE}/egress.yaml"),
        "--nodes",
        &format!("{EXAMPLE}/nodes.yaml"),
        "--cilium-version",
        "1.19",
    ]);
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let mut objects = documents(&built.stdout);
    objects.extend(documents(
        &std::fs::read(repo(&format!("{EXAMPLE}/app-config.yaml"))).unwrap(),
    ));
    objects_by_identity(objects)
}

/// A copy of the example in a temporary directory, with `policy_gateway` as the policy's
/// gateway and `function` as the function config.
fn example_copy(policy_gateway: &str, function: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for file in [
        "kustomization.yaml",
        "egressc.yaml",
        "nodes.yaml",
        "app-config.yaml",
    ] {
        std::fs::copy(repo(&format!("{EXAMPLE}/{file}")), dir.path().join(file)).unwrap();
    }
    let egress = std::fs::read_to_string(repo(&format!("{EXAMPLE}/egress.yaml"))).unwrap();
    let egress = egress.replace(
        "egressGatewayName: egress-main",
        &format!("egressGatewayName: {policy_gateway}"),
    );
    std::fs::write(dir.path().join("egress.yaml"), egress).unwrap();
    if let Some(function) = function {
        std::fs::write(dir.path().join("egressc.yaml"), function).unwrap();
    }
    dir
}

#[test]
fn the_exec_plugin_compiles_and_passes_the_rest_through() {
    let Some(kubectl) = kubectl() else { return };
    let out = kustomize(&kubectl, &repo(EXAMPLE), None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(objects_by_identity(documents(&out.stdout)), expected());
}

#[test]
fn the_exec_plugin_fails_the_build_on_errors() {
    let Some(kubectl) = kubectl() else { return };
    let dir = example_copy("egress-mian", None);
    let out = kustomize(&kubectl, dir.path(), None);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error[E022]"), "{stderr}");
    assert!(stderr.contains("did you mean `egress-main`"), "{stderr}");
}

const CONTAINER_FUNCTION: &str = "\
apiVersion: egressc.deckhouse.io/v1alpha1
kind: EgressCompiler
metadata:
  name: egressc
  annotations:
    config.kubernetes.io/function: |
      container:
        image: registry.example/egressc-krm:0.1.0
spec:
  ciliumVersion: \"1.19\"
  denyWarnings: true
";

/// A `docker` that runs `egressc krm` in place of the image, and records how it was called.
fn docker_shim(dir: &Path) -> PathBuf {
    let bin = dir.join("shim");
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join("docker");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$@\" > '{}'\ntee '{}' | egressc krm\n",
            dir.join("docker-args").display(),
            dir.join("resource-list").display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

#[test]
fn the_containerized_function_speaks_resource_lists() {
    let Some(kubectl) = kubectl() else { return };
    let dir = example_copy("egress-main", Some(CONTAINER_FUNCTION));
    let shim = docker_shim(dir.path());
    let out = kustomize(&kubectl, dir.path(), Some(&shim));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(objects_by_identity(documents(&out.stdout)), expected());
    // kubectl ran the image, and what it sent was a ResourceList with the function config.
    let args = std::fs::read_to_string(dir.path().join("docker-args")).unwrap();
    assert!(args.starts_with("run "), "{args}");
    assert!(
        args.contains("registry.example/egressc-krm:0.1.0"),
        "{args}"
    );
    let sent: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(dir.path().join("resource-list")).unwrap())
            .unwrap();
    assert_eq!(sent["kind"], "ResourceList");
    assert_eq!(sent["functionConfig"]["spec"]["ciliumVersion"], "1.19");
}

#[test]
fn the_containerized_function_fails_the_build_with_results() {
    let Some(kubectl) = kubectl() else { return };
    let dir = example_copy("egress-mian", Some(CONTAINER_FUNCTION));
    let shim = docker_shim(dir.path());
    let out = kustomize(&kubectl, dir.path(), Some(&shim));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("E022"), "{stderr}");
    // The same input straight into egressc gives the results kubectl received.
    let sent = std::fs::read(dir.path().join("resource-list")).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_egressc"))
        .arg("krm")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &sent).unwrap();
    let direct = child.wait_with_output().unwrap();
    assert_eq!(direct.status.code(), Some(1));
    let list: Value = serde_json::from_slice(&direct.stdout).unwrap();
    let result = &list["results"][0];
    assert_eq!(result["severity"], "error");
    assert_eq!(result["tags"]["code"], "E022");
    assert_eq!(result["field"]["path"], "spec.egressGatewayName");
    assert_eq!(result["resourceRef"]["name"], "payments-to-bank");
    // Kustomize sends no file path (kpt does: `config.kubernetes.io/path`, unit-tested), so
    // the result names none.
    assert!(result.get("file").is_none(), "{result}");
}
