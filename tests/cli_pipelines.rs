//! egressc in pipelines: the Argo CD Config Management Plugin contract (discover, generate
//! with the environment Argo CD sets, fail-safe empty stdout) and the CI drift check
//! (`build --check-against`). Runs the real binary in a copied application directory.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// An Argo CD-like application source directory: the production example, with its node
/// inventory inside the directory (as a repository would keep it).
fn app_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    for file in ["gateways.yaml", "policies.yaml"] {
        fs::copy(root.join("production").join(file), dir.path().join(file)).unwrap();
    }
    fs::create_dir(dir.path().join("inventory")).unwrap();
    fs::copy(
        root.join("inventory/nodes.yaml"),
        dir.path().join("inventory/nodes.yaml"),
    )
    .unwrap();
    dir
}

/// Runs egressc in `cwd` with only the given environment (as the CMP server does: it passes
/// ARGOCD_ENV_*, ARGOCD_APP_* and PARAM_* variables).
fn run_in(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_egressc"))
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// Parses a manifest stream and returns (kind, name) of every object, checking that each is a
/// Kubernetes object.
fn objects(stream: &str) -> Vec<(String, String)> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(stream).unwrap();
    docs.iter()
        .filter(|d| !d.is_null())
        .map(|d| {
            assert!(d["apiVersion"].is_string(), "no apiVersion in {d}");
            (
                d["kind"].as_str().unwrap().to_owned(),
                d["metadata"]["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn discover_claims_source_directories_only() {
    let app = app_dir();
    let found = run_in(app.path(), &["discover", "."], &[]);
    assert!(found.status.success());
    assert_eq!(stdout(&found), "./gateways.yaml\n");

    let other = tempfile::tempdir().unwrap();
    fs::write(
        other.path().join("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\n",
    )
    .unwrap();
    let none = run_in(other.path(), &["discover", "."], &[]);
    assert!(none.status.success());
    assert_eq!(
        stdout(&none),
        "",
        "empty output means: not this plugin's directory"
    );
}

#[test]
fn generate_reads_argocd_env_and_parameters() {
    let app = app_dir();
    let out = run_in(
        app.path(),
        &["build", "--argocd", "."],
        &[
            ("ARGOCD_APP_NAME", "egress"),
            ("ARGOCD_ENV_NODES", "inventory/nodes.yaml"),
            ("ARGOCD_ENV_AGENT_IMAGE", "registry.example/egressc:9.9"),
            (
                "ARGOCD_APP_PARAMETERS",
                r#"[{"name":"cilium-version","string":"1.19"}]"#,
            ),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let kinds = objects(&text);
    assert!(kinds.iter().any(|(k, _)| k == "CiliumEgressGatewayPolicy"));
    // The inventory in the source directory is read as the inventory (Node objects with the
    // election's labels), not as a source document.
    assert!(kinds.iter().any(|(k, _)| k == "Node"), "{kinds:?}");
    assert!(text.contains("registry.example/egressc:9.9"));
}

#[test]
fn broken_source_fails_with_empty_stdout() {
    let app = app_dir();
    let gateways = app.path().join("gateways.yaml");
    let text = fs::read_to_string(&gateways).unwrap();
    fs::write(
        &gateways,
        text.replacen("interfaceName: ", "interfaceName: bad/if", 1),
    )
    .unwrap();
    let out = run_in(app.path(), &["build", "--argocd", "."], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "an error must never print manifests");
    assert!(stderr(&out).contains("error["), "{}", stderr(&out));
}

#[test]
fn plugin_settings_cannot_escape_the_source_directory() {
    let app = app_dir();
    let out = run_in(
        app.path(),
        &["build", "--argocd", "."],
        &[("ARGOCD_ENV_NODES", "../../etc/passwd")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(stderr(&out).contains("inside the application's source directory"));
}

#[test]
fn unknown_plugin_parameter_fails_safe() {
    let app = app_dir();
    let out = run_in(
        app.path(),
        &["build", "--argocd", "."],
        &[("ARGOCD_APP_PARAMETERS", r#"[{"name":"node","string":"x"}]"#)],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

fn build_to(app: &Path, file: &Path) {
    let out = run_in(
        app,
        &[
            "build",
            ".",
            "--nodes",
            "inventory/nodes.yaml",
            "-o",
            file.to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "-o writes the file, not stdout");
}

/// `build` of the app directory written to a file in a new temporary directory.
fn built_into_temp(app: &Path) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("egress.yaml");
    build_to(app, &file);
    (dir, file)
}

/// `build` of the app directory compared with the committed manifests at `committed`.
fn check_against_args(committed: &Path) -> [&str; 6] {
    [
        "build",
        ".",
        "--nodes",
        "inventory/nodes.yaml",
        "--check-against",
        committed.to_str().unwrap(),
    ]
}

#[test]
fn check_against_passes_when_up_to_date_and_explains_drift() {
    let app = app_dir();
    let (_committed_dir, committed) = built_into_temp(app.path());

    let args = check_against_args(&committed);
    let fresh = run_in(app.path(), &args, &[]);
    assert!(fresh.status.success(), "{}", stderr(&fresh));
    assert!(fresh.stdout.is_empty());

    // The sources change: a destination is added; the committed copy is now stale.
    let policies = app.path().join("policies.yaml");
    let text = fs::read_to_string(&policies).unwrap();
    fs::write(&policies, text.replacen("0.0.0.0/0", "203.0.113.0/24", 1)).unwrap();
    let stale = run_in(app.path(), &args, &[]);
    assert_eq!(stale.status.code(), Some(1));
    assert!(stale.stdout.is_empty());
    let report = stderr(&stale);
    assert!(report.contains("CiliumEgressGatewayPolicy"), "{report}");
    assert!(
        report.contains("+") && report.contains("203.0.113.0/24"),
        "{report}"
    );
    assert!(report.contains("stale: 1 object"), "{report}");
}

#[test]
fn check_against_reads_a_kubectl_list() {
    let app = app_dir();
    let (committed_dir, rendered) = built_into_temp(app.path());
    // What `kubectl get … -o yaml` writes: one `v1 List` whose items carry server fields.
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(&fs::read_to_string(&rendered).unwrap()).unwrap();
    let items: Vec<Value> = docs
        .into_iter()
        .filter(|d| !d.is_null())
        .map(|mut d| {
            d["metadata"]["uid"] = "0b5f".into();
            d["metadata"]["resourceVersion"] = "17".into();
            d["status"] = serde_json::json!({});
            d
        })
        .collect();
    let list = serde_json::json!({
        "apiVersion": "v1",
        "kind": "List",
        "metadata": {"resourceVersion": ""},
        "items": items,
    });
    let committed = committed_dir.path().join("live.yaml");
    fs::write(&committed, serde_saphyr::to_string(&list).unwrap()).unwrap();
    let out = run_in(app.path(), &check_against_args(&committed), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn crds_prints_both_definitions() {
    let out = run_in(Path::new(env!("CARGO_MANIFEST_DIR")), &["crds"], &[]);
    assert!(out.status.success());
    let mut names: Vec<String> = objects(&stdout(&out)).into_iter().map(|(_, n)| n).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "egressgatewaypolicies.network.deckhouse.io",
            "egressgateways.network.deckhouse.io"
        ]
    );
}
