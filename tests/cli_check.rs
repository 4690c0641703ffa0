//! Black-box tests of the `egressc` binary: exit codes, stdout/stderr discipline, the three
//! diagnostic formats, stdin, and flags. Temp paths are replaced by `[TMP]` before snapshots.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const GATEWAY: &str = "apiVersion: network.deckhouse.io/v1alpha1
kind: EgressGateway
metadata:
  name: edge
spec:
  nodeSelector:
    node-role.example.com/egress: \"\"
  sourceIP:
    mode: VirtualIPAddress
    virtualIPAddress:
      ip: 192.0.2.10
";

const POLICY_ALL_PODS: &str = "apiVersion: network.deckhouse.io/v1alpha1
kind: EgressGatewayPolicy
metadata:
  name: everything
spec:
  egressGatewayName: edge
  destinationCIDRs: [198.51.100.0/24]
  selectors:
  - podSelector: {}
";

fn egressc(args: &[&str]) -> Output {
    egressc_with_stdin(args, "")
}

fn egressc_with_stdin(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_egressc"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("stdin written");
    child.wait_with_output().expect("binary finishes")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("utf-8 output")
}

fn write(dir: &Path, name: &str, content: &str) {
    std::fs::write(dir.join(name), content).expect("fixture written");
}

#[test]
fn seed_example_reports_the_dangling_reference() {
    let out = egressc(&["check", "examples/seed"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    insta::assert_snapshot!(text(&out.stderr));
}

#[test]
fn seed_example_as_json() {
    let out = egressc(&["check", "examples/seed", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let list: serde_json::Value = serde_json::from_slice(&out.stderr).expect("json on stderr");
    let list = list.as_array().expect("array");
    assert_eq!(list.len(), 1);
    let d = &list[0];
    assert_eq!(d["code"], "E022");
    assert_eq!(d["severity"], "error");
    assert_eq!(d["file"], "examples/seed/03-egressgatewaypolicy.yaml");
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(8), Some(22))
    );
    assert_eq!(d["path"], "spec.egressGatewayName");
    assert_eq!(d["hint"], "did you mean `myegressgw`?");
}

#[test]
fn seed_example_as_github_annotations() {
    let out = egressc(&["check", "examples/seed", "--format", "github"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "::error file=examples/seed/03-egressgatewaypolicy.yaml,line=8,col=22,title=E022::\
         EgressGatewayPolicy `my-egressgw-policy` refers to unknown EgressGateway `my-egressgw`\
         %0Ahelp: did you mean `myegressgw`?\n"
    );
}

#[test]
fn build_prints_nothing_on_invalid_input() {
    let out = egressc(&["build", "examples/seed"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "stdout: {}", text(&out.stdout));
    assert!(text(&out.stderr).contains("error[E022]"));
}

#[test]
fn valid_input_passes_quietly() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "gw.yaml", GATEWAY);
    let path = dir.path().to_str().expect("utf-8 path");
    let out = egressc(&["check", path]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty() && out.stdout.is_empty());
    let build = egressc(&["build", path]);
    assert_eq!(build.status.code(), Some(0), "{}", text(&build.stderr));
}

#[test]
fn warnings_pass_unless_denied() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "all.yaml",
        &format!("{GATEWAY}---\n{POLICY_ALL_PODS}"),
    );
    let path = dir.path().to_str().expect("utf-8 path");
    let out = egressc(&["check", path]);
    assert_eq!(out.status.code(), Some(0));
    let stderr = text(&out.stderr).replace(path, "[TMP]");
    insta::assert_snapshot!(stderr);
    let denied = egressc(&["check", path, "--deny-warnings"]);
    assert_eq!(denied.status.code(), Some(1));
}

#[test]
fn duplicates_across_files_point_at_both() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "a.yaml", GATEWAY);
    std::fs::create_dir(dir.path().join("sub")).expect("subdir");
    write(
        &dir.path().join("sub"),
        "b.yml",
        GATEWAY.replace("192.0.2.10", "192.0.2.11").as_str(),
    );
    write(dir.path(), "notes.txt", "not yaml: [");
    let path = dir.path().to_str().expect("utf-8 path");
    let out = egressc(&["check", path]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr).replace(path, "[TMP]");
    insta::assert_snapshot!(stderr);
}

#[test]
fn stdin_and_unknown_kinds() {
    let input = format!("{GATEWAY}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: x}}\n");
    let out = egressc_with_stdin(&["check", "-"], &input);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("error[E012]") && stderr.contains("--> <stdin>:14:7"),
        "{stderr}"
    );
    let ignored = egressc_with_stdin(&["check", "-", "--ignore-unknown-kinds"], &input);
    assert_eq!(ignored.status.code(), Some(0), "{}", text(&ignored.stderr));
}

#[test]
fn cilium_version_gates_ipv6() {
    let v6 = GATEWAY.replace("192.0.2.10", "\"2001:db8::10\"");
    let old = egressc_with_stdin(&["check", "-"], &v6);
    assert_eq!(old.status.code(), Some(1));
    assert!(text(&old.stderr).contains("error[E027]"));
    let new = egressc_with_stdin(&["check", "-", "--cilium-version", "1.20"], &v6);
    assert_eq!(new.status.code(), Some(0), "{}", text(&new.stderr));
}

#[test]
fn usage_and_io_errors_exit_2() {
    let bad_version = egressc(&["check", "examples/seed", "--cilium-version", "1.16"]);
    assert_eq!(bad_version.status.code(), Some(2));
    assert!(text(&bad_version.stderr).contains("unsupported Cilium version `1.16`"));
    let bad_format = egressc(&["check", "examples/seed", "--format", "xml"]);
    assert_eq!(bad_format.status.code(), Some(2));
    let missing = egressc(&["check", "does/not/exist.yaml"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).starts_with("egressc: cannot read does/not/exist.yaml"));
    assert!(missing.stdout.is_empty());
    let no_command = egressc(&[]);
    assert_eq!(no_command.status.code(), Some(2));
}

#[test]
fn help_has_examples_and_version_is_printed() {
    let help = egressc(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    let help = text(&help.stdout);
    assert!(
        help.contains("Examples:") && help.contains("egressc build"),
        "{help}"
    );
    let build_help = text(&egressc(&["build", "--help"]).stdout);
    for flag in [
        "--nodes",
        "--templates",
        "--output",
        "--cilium-version",
        "--format",
    ] {
        assert!(
            build_help.contains(flag),
            "{flag} missing from build --help"
        );
    }
    let version = egressc(&["--version"]);
    assert_eq!(
        text(&version.stdout),
        format!("egressc {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn build_writes_output_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "gw.yaml", GATEWAY);
    let target = dir.path().join("out.yaml");
    let out = egressc(&[
        "build",
        dir.path().join("gw.yaml").to_str().expect("utf-8"),
        "-o",
        target.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    assert!(target.exists());
}

#[test]
fn production_example_is_clean() {
    let out = egressc(&["check", "examples/production", "--deny-warnings"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty());
}

#[test]
fn static_labels_for_a_vip_gateway_warn_that_the_controller_is_needed() {
    // With `--nodes` the active node is a static label; the VIP agent only brings the VIP up
    // on the controller's grant, so `partners` (VIP mode) gets W011 and nothing else warns.
    let out = egressc(&[
        "check",
        "examples/production",
        "--nodes",
        "examples/inventory/nodes.yaml",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    let report: serde_json::Value = serde_json::from_str(&stderr).expect("json diagnostics");
    let codes: Vec<&str> = report
        .as_array()
        .expect("diagnostics")
        .iter()
        .filter_map(|d| d["code"].as_str())
        .collect();
    assert_eq!(codes, ["W011"], "{stderr}");
    assert!(stderr.contains("egressc sync"), "{stderr}");
    let denied = egressc(&[
        "check",
        "examples/production",
        "--nodes",
        "examples/inventory/nodes.yaml",
        "--deny-warnings",
    ]);
    assert_eq!(denied.status.code(), Some(1));
}
