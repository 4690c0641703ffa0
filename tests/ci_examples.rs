//! The CI jobs of `examples/ci/` run as written: their egressc commands are taken from the
//! YAML (GitHub steps' `run:`, GitLab's `script:` lines) and run with bash in a repository laid
//! out as they expect (`egress/` sources and inventory, committed `deploy/egress.yaml`), with
//! this build's egressc standing in for the cached one. A clean repository passes; stale
//! manifests fail with the drift in `drift.txt`; an invalid source fails with a Code Quality
//! report that names it.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn repo_file(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A repository like the examples expect; `policy_gateway` replaces the gateway name of the
/// first policy (a typo makes it invalid).
fn repository(policy_gateway: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("egress/inventory")).unwrap();
    std::fs::create_dir_all(root.join("deploy")).unwrap();
    std::fs::create_dir_all(root.join(".egressc/bin")).unwrap();
    std::fs::write(
        root.join("egress/gateways.yaml"),
        repo_file("examples/production/gateways.yaml"),
    )
    .unwrap();
    let policies = repo_file("examples/production/policies.yaml");
    let policies = match policy_gateway {
        Some(name) => policies.replacen(
            "egressGatewayName: ",
            &format!("egressGatewayName: {name} #"),
            1,
        ),
        None => policies,
    };
    std::fs::write(root.join("egress/policies.yaml"), policies).unwrap();
    std::fs::write(
        root.join("egress/inventory/nodes.yaml"),
        repo_file("examples/inventory/nodes.yaml"),
    )
    .unwrap();
    let built = Command::new(env!("CARGO_BIN_EXE_egressc"))
        .args([
            "build",
            "examples/production",
            "--nodes",
            "examples/inventory/nodes.yaml",
        ])
        .args(["--cilium-version", "1.19"])
        .args(["--agent-image", "registry.example/platform/egressc:0.1.0"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(built.status.success());
    std::fs::write(root.join("deploy/egress.yaml"), built.stdout).unwrap();
    // The "cached" egressc of both jobs.
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_egressc"),
        root.join(".egressc/bin/egressc"),
    )
    .unwrap();
    dir
}

fn bash(root: &Path, script: &str) -> Output {
    Command::new("bash")
        .args(["-eo", "pipefail", "-c", script])
        .current_dir(root)
        .env(
            "PATH",
            format!(
                "{}:{}",
                root.join(".egressc/bin").display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("CI_PROJECT_DIR", root)
        .output()
        .expect("bash runs")
}

/// The GitHub job's egressc steps (the install step is skipped: the cache has egressc).
fn github_steps() -> Vec<String> {
    let workflow: Value =
        serde_saphyr::from_str(&repo_file("examples/ci/github-actions.yaml")).unwrap();
    let workflow_permissions = &workflow["permissions"];
    assert_eq!(
        workflow_permissions,
        &serde_json::json!({"contents": "read"})
    );
    workflow["jobs"]["egressc"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["run"].as_str())
        .filter(|run| run.starts_with("egressc "))
        .map(str::to_owned)
        .collect()
}

/// The GitLab job's script, whole.
fn gitlab_script() -> String {
    let ci: Value = serde_saphyr::from_str(&repo_file("examples/ci/gitlab-ci.yaml")).unwrap();
    let job = &ci["egressc"];
    assert_eq!(job["artifacts"]["when"], "always");
    assert_eq!(
        job["artifacts"]["reports"]["codequality"],
        "gl-code-quality.json"
    );
    job["script"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_clean_repository_passes_both_jobs() {
    let steps = github_steps();
    assert_eq!(steps.len(), 3, "{steps:?}");
    let repo = repository(None);
    for step in &steps {
        let out = bash(repo.path(), step);
        assert!(
            out.status.success(),
            "{step}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(repo.path().join("rendered.yaml").exists());
    let repo = repository(None);
    let out = bash(repo.path(), &gitlab_script());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(repo.path().join("gl-code-quality.json")).unwrap(),
    )
    .unwrap();
    // The example's VIP gateway `partners` gets static labels from `--nodes`: W011 reminds
    // that its VIP comes up only with the controller. A warning, not a failure.
    let codes: Vec<&str> = report
        .as_array()
        .unwrap()
        .iter()
        .map(|issue| issue["check_name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(codes, ["W011"], "{report}");
    // The drift step saves stderr: nothing stale, no error, only the same W011.
    let drift = std::fs::read_to_string(repo.path().join("drift.txt")).unwrap();
    assert!(
        !drift.contains("stale") && !drift.contains("error[") && drift.contains("W011"),
        "{drift}"
    );
}

#[test]
fn stale_manifests_fail_with_the_drift_saved() {
    let repo = repository(None);
    let deploy = repo.path().join("deploy/egress.yaml");
    let committed = std::fs::read_to_string(&deploy).unwrap();
    std::fs::write(
        &deploy,
        committed.replacen("component: vip-agent", "component: vip-agent-old", 1),
    )
    .unwrap();
    assert_ne!(
        std::fs::read_to_string(&deploy).unwrap(),
        committed,
        "the fixture changed"
    );
    let drift_step = github_steps().pop().unwrap();
    let out = bash(repo.path(), &drift_step);
    assert!(!out.status.success());
    let drift = std::fs::read_to_string(repo.path().join("drift.txt")).unwrap();
    assert!(drift.contains("stale:"), "{drift}");
    let out = bash(repo.path(), &gitlab_script());
    assert!(!out.status.success());
}

#[test]
fn an_invalid_source_fails_with_a_code_quality_report() {
    let repo = repository(Some("no-such-gateway"));
    let out = bash(repo.path(), &gitlab_script());
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(repo.path().join("gl-code-quality.json")).unwrap(),
    )
    .unwrap();
    let issue = report
        .as_array()
        .unwrap()
        .iter()
        .find(|issue| issue["check_name"] == "E022")
        .unwrap_or_else(|| panic!("no E022 in {report}"));
    assert_eq!(issue["location"]["path"], "egress/policies.yaml");
    assert!(issue["location"]["lines"]["begin"].as_u64().unwrap() > 1);
    // GitHub: the check step annotates the same finding.
    let check = github_steps().remove(0);
    let out = bash(repo.path(), &check);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("::error file=egress/policies.yaml"));
}
