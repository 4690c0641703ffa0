//! kube-testserver driven by the real kubectl: apply of Nodes, CRDs and custom resources,
//! label, cordon, status patches, `get -w`, server-side apply conflicts and delete.
//! Skips (with a printed reason) only when kubectl is not installed.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use kube_testserver::TestServer;
use tempfile::TempDir;

/// Upper bound for `kubectl get -w` to show a change; only a guard against hangs.
const PATIENCE: Duration = Duration::from_secs(20);

/// A server running on its own runtime plus a kubeconfig and discovery cache for kubectl.
struct Cluster {
    _runtime: tokio::runtime::Runtime,
    _server: TestServer,
    dir: TempDir,
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn kubectl_available() -> bool {
    let found = Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("skipping: kubectl is not installed");
    }
    found
}

impl Cluster {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let server = runtime.block_on(TestServer::start()).expect("server");
        let dir = tempfile::tempdir().expect("tempdir");
        server
            .write_kubeconfig(&dir.path().join("kubeconfig"))
            .expect("kubeconfig");
        Self {
            _runtime: runtime,
            _server: server,
            dir,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("kubectl");
        command
            .env("KUBECONFIG", self.dir.path().join("kubeconfig"))
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            .args(args);
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("kubectl runs")
    }

    /// Runs kubectl, asserts success, returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubectl, asserts failure, returns stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "kubectl {args:?} unexpectedly succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    fn apply_fixture(&self, name: &str) -> String {
        let path = fixture(name);
        self.ok(&["apply", "-f", path.to_str().expect("utf-8 path")])
    }
}

#[test]
fn kubectl_applies_nodes_crds_and_custom_resources() {
    if !kubectl_available() {
        return;
    }
    let cluster = Cluster::start();
    assert!(
        cluster
            .apply_fixture("nodes.yaml")
            .contains("node/worker-1 created")
    );
    cluster.apply_fixture("ciliumnodes.crd.yaml");
    cluster.apply_fixture("ciliumegressgatewaypolicies.v1.19.0.yaml");
    cluster.apply_fixture("ciliumnode-worker-1.yaml");
    cluster.apply_fixture("cegp.yaml");

    let names = cluster.ok(&[
        "get",
        "nodes",
        "-l",
        "node-role.kubernetes.io/egress",
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ]);
    assert_eq!(names, "worker-1 worker-2");
    let ip = cluster.ok(&[
        "get",
        "cn",
        "worker-1",
        "-o",
        "jsonpath={.spec.addresses[0].ip}",
    ]);
    assert_eq!(ip, "192.0.2.11");
    let gateway = cluster.ok(&[
        "get",
        "ciliumegressgatewaypolicies",
        "egress-web",
        "-o",
        "jsonpath={.spec.egressGateway.egressIP}",
    ]);
    assert_eq!(gateway, "203.0.113.10");

    // Re-applying unchanged manifests is a no-op.
    assert!(
        cluster
            .apply_fixture("nodes.yaml")
            .contains("node/worker-1 unchanged")
    );
}

#[test]
fn label_cordon_and_status_patch_show_up_in_get_watch() {
    if !kubectl_available() {
        return;
    }
    let cluster = Cluster::start();
    cluster.apply_fixture("nodes.yaml");
    let columns = "custom-columns=NAME:.metadata.name,MEMBER:.metadata.labels.member,UNSCHEDULABLE:.spec.unschedulable,READY:.status.conditions[0].status";
    let mut watch = cluster
        .command(&[
            "get",
            "node",
            "worker-1",
            "-w",
            "--no-headers",
            "-o",
            columns,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl get -w");
    let (lines, received) = mpsc::channel();
    let stdout = watch.stdout.take().expect("piped stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let words: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
            if lines.send(words).is_err() {
                return;
            }
        }
    });
    let expect_row = |wanted: [&str; 4]| loop {
        match received.recv_timeout(PATIENCE) {
            Ok(row) if row == wanted => return,
            Ok(_) => continue,
            Err(_) => panic!("kubectl get -w never showed {wanted:?}"),
        }
    };
    expect_row(["worker-1", "<none>", "<none>", "True"]);

    cluster.ok(&["label", "node", "worker-1", "member=yes"]);
    expect_row(["worker-1", "yes", "<none>", "True"]);
    cluster.ok(&["cordon", "worker-1"]);
    expect_row(["worker-1", "yes", "true", "True"]);
    cluster.ok(&[
        "patch",
        "node",
        "worker-1",
        "--subresource=status",
        "-p",
        r#"{"status":{"conditions":[{"type":"Ready","status":"False"}]}}"#,
    ]);
    expect_row(["worker-1", "yes", "true", "False"]);

    // A status write through the main resource is ignored for kinds with a status subresource.
    cluster.ok(&[
        "patch",
        "node",
        "worker-1",
        "--type=merge",
        "-p",
        r#"{"status":{"conditions":[{"type":"Ready","status":"Unknown"}]}}"#,
    ]);
    let ready = cluster.ok(&[
        "get",
        "node",
        "worker-1",
        "-o",
        "jsonpath={.status.conditions[0].status}",
    ]);
    assert_eq!(ready, "False");
    let _ = watch.kill();
    let _ = watch.wait();
}

#[test]
fn server_side_apply_conflicts_between_field_managers_until_forced() {
    if !kubectl_available() {
        return;
    }
    let cluster = Cluster::start();
    let dir = cluster.dir.path();
    let manifest = |value: &str| {
        let path = dir.join(format!("node-{value}.yaml"));
        let text = format!(
            "apiVersion: v1\nkind: Node\nmetadata:\n  name: worker-9\n  labels:\n    zone: {value}\n"
        );
        std::fs::write(&path, text).expect("write manifest");
        path.to_str().expect("utf-8").to_owned()
    };
    let (a, b) = (manifest("a"), manifest("b"));
    cluster.ok(&["apply", "--server-side", "--field-manager=alice", "-f", &a]);
    let err = cluster.fails(&["apply", "--server-side", "--field-manager=bob", "-f", &b]);
    assert!(
        err.contains(r#"conflict with "alice": .metadata.labels.zone"#),
        "{err}"
    );
    cluster.ok(&[
        "apply",
        "--server-side",
        "--field-manager=bob",
        "--force-conflicts",
        "-f",
        &b,
    ]);
    let zone = cluster.ok(&[
        "get",
        "node",
        "worker-9",
        "-o",
        "jsonpath={.metadata.labels.zone}",
    ]);
    assert_eq!(zone, "b");
    let managers = cluster.ok(&[
        "get",
        "node",
        "worker-9",
        "--show-managed-fields",
        "-o",
        "jsonpath={.metadata.managedFields[*].manager}",
    ]);
    assert_eq!(managers, "bob");
}

#[test]
fn kubectl_delete_removes_objects_and_crd_instances() {
    if !kubectl_available() {
        return;
    }
    let cluster = Cluster::start();
    cluster.apply_fixture("nodes.yaml");
    cluster.apply_fixture("ciliumnodes.crd.yaml");
    cluster.apply_fixture("ciliumnode-worker-1.yaml");
    assert!(
        cluster
            .ok(&["delete", "node", "worker-2"])
            .contains("\"worker-2\" deleted")
    );
    assert_eq!(
        cluster.ok(&["get", "nodes", "-o", "name"]),
        "node/worker-1\n"
    );
    let err = cluster.fails(&["get", "node", "worker-2"]);
    assert!(err.contains("NotFound"), "{err}");

    cluster.ok(&["delete", "crd", "ciliumnodes.cilium.io"]);
    let err = cluster.fails(&["get", "ciliumnodes.v2.cilium.io"]);
    assert!(
        err.contains("the server doesn't have a resource type") || err.contains("could not find"),
        "{err}"
    );
}
