//! The README's "Install" section, run: every shell block there is a file of `examples/install/`
//! (the README holds it verbatim, checked here), and each runs with bash, the real kubectl and
//! helm, and this build's egressc against a fresh kube-testserver standing in for the cluster
//! (with what a cluster would already have: Cilium's CRDs, an Argo CD with its repo-server,
//! Deckhouse's `d8-cni-cilium` namespace). Each block must succeed and leave the objects it
//! promises. The CI blocks are `examples/ci/` (run by tests/ci_examples.rs).
//!
//! kube-testserver speaks JSON only, while `kubectl create` and Helm's release storage (a
//! Secret) send protobuf, and it keeps no Helm releases: the harness therefore runs `kubectl …
//! create …` as the same object applied (`--dry-run=client -o json | kubectl apply`) and `helm
//! install NAME CHART FLAGS` as `helm template NAME CHART FLAGS | kubectl apply` (the same
//! rendering, without the release record). The blocks themselves are unchanged.
//!
//! kubectl and helm are found as in tests/support/tools.rs: without them this skips unless
//! `EGRESSC_REQUIRE_TOOLS=1`.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kube_testserver::TestServer;
use serde_json::Value;
use support::tools::Tool;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// What every block needs around it: a server, its kubeconfig, a HOME for kubectl and helm.
struct Cluster {
    runtime: tokio::runtime::Runtime,
    _server: TestServer,
    dir: tempfile::TempDir,
    path: String,
}

impl Cluster {
    fn start(tools: &[&Tool]) -> Cluster {
        let cluster = Cluster::start_bare(tools);
        cluster.prepare();
        cluster
    }

    fn start_bare(tools: &[&Tool]) -> Cluster {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let server = runtime.block_on(TestServer::start()).expect("server");
        let dir = tempfile::tempdir().unwrap();
        server
            .write_kubeconfig(&dir.path().join("kubeconfig"))
            .unwrap();
        let mut paths: Vec<PathBuf> = vec![
            Path::new(env!("CARGO_BIN_EXE_egressc"))
                .parent()
                .unwrap()
                .to_path_buf(),
        ];
        paths.extend(tools.iter().map(|t| t.dir()));
        paths.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        let path = std::env::join_paths(paths)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        Cluster {
            runtime,
            _server: server,
            dir,
            path,
        }
    }

    /// What the cluster has before egressc.
    fn prepare(&self) {
        let cluster = self;
        for namespace in ["argocd", "d8-cni-cilium", "payments"] {
            cluster.ok(&format!("kubectl create namespace {namespace}"));
        }
        cluster.ok(
            "kubectl apply --server-side -f tests/fixtures/cilium/ciliumegressgatewaypolicies.v1.19.0.yaml \
             -f tests/fixtures/ciliumnodes.crd.yaml",
        );
        let application_crd = cluster.dir.path().join("application-crd.yaml");
        std::fs::write(&application_crd, APPLICATION_CRD).unwrap();
        cluster.ok(&format!(
            "kubectl apply --server-side -f {}",
            application_crd.display()
        ));
        cluster.ok(
            "kubectl apply --server-side -n argocd -f tests/fixtures/kustomize/argocd/repo-server.yaml",
        );
    }

    fn bash(&self, script: &str) -> Output {
        let home = self.dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        Command::new("bash")
            .args(["-eo", "pipefail", "-c", &format!("{JSON_ONLY}\n{script}")])
            .current_dir(ROOT)
            .env("PATH", &self.path)
            .env("HOME", &home)
            .env("KUBECONFIG", self.dir.path().join("kubeconfig"))
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("XDG_CACHE_HOME")
            .output()
            .expect("bash runs")
    }

    fn ok(&self, script: &str) -> String {
        let out = self.bash(script);
        assert!(
            out.status.success(),
            "{script}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn get(&self, what: &str) -> Value {
        serde_json::from_str(&self.ok(&format!("kubectl get {what} -o json"))).unwrap()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // The server's tasks run on this runtime; stop it without waiting for watches.
        let runtime = std::mem::replace(
            &mut self.runtime,
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap(),
        );
        runtime.shutdown_background();
    }
}

/// `kubectl … create …` and `helm install` as applies of what they would create (see the
/// module docs).
const JSON_ONLY: &str = r#"kubectl() {
  case " $* " in
    *" create "*) command kubectl "$@" --dry-run=client -o json | command kubectl apply --server-side -f - ;;
    *) command kubectl "$@" ;;
  esac
}
helm() {
  if [ "$1" = install ]; then
    shift
    command helm template "$@" | command kubectl apply --server-side -f -
  else
    command helm "$@"
  fi
}"#;

/// The part of Argo CD's Application CRD the example Application needs.
const APPLICATION_CRD: &str = "\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: applications.argoproj.io
spec:
  group: argoproj.io
  scope: Namespaced
  names: {kind: Application, plural: applications, singular: application, listKind: ApplicationList}
  versions:
    - name: v1alpha1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
";

/// The block `examples/install/NAME.sh`, checked to be in the README verbatim.
fn block(name: &str) -> String {
    let script = std::fs::read_to_string(Path::new(ROOT).join("examples/install").join(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    assert!(
        readme.contains(&format!("```sh\n{script}```\n")),
        "README.md must hold examples/install/{name} verbatim in a ```sh block"
    );
    script
}

fn tools() -> Option<(Tool, Tool)> {
    Some((
        Tool::find("EGRESSC_KUBECTL", "kubectl")?,
        Tool::find("EGRESSC_HELM", "helm")?,
    ))
}

fn deployment_image(cluster: &Cluster, namespace: &str) -> Value {
    let deployment = cluster.get(&format!("deployment egressc-sync -n {namespace}"));
    deployment["spec"]["template"]["spec"]["containers"][0]["image"].clone()
}

#[test]
fn helm_block() {
    let Some((kubectl, helm)) = tools() else {
        return;
    };
    let cluster = Cluster::start(&[&kubectl, &helm]);
    cluster.ok(&block("helm.sh"));
    assert_eq!(
        deployment_image(&cluster, "egressc-system"),
        "registry.example/platform/egressc:0.1.0"
    );
    let namespace = cluster.get("namespace egressc-system");
    assert_eq!(
        namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "privileged"
    );
    cluster.get("crd egressgateways.network.deckhouse.io");
}

#[test]
fn kustomize_block() {
    let Some((kubectl, _)) = tools() else { return };
    let cluster = Cluster::start(&[&kubectl]);
    cluster.ok(&block("kustomize.sh"));
    assert_eq!(
        deployment_image(&cluster, "egressc-system"),
        "registry.example/platform/egressc:0.1.0"
    );
    cluster.get("clusterrole egressc-sync");
}

#[test]
fn egressc_install_block() {
    let Some((kubectl, _)) = tools() else { return };
    let cluster = Cluster::start(&[&kubectl]);
    cluster.ok(&block("egressc-install.sh"));
    let deployment = cluster.get("deployment egressc-sync -n egressc-system");
    let args = &deployment["spec"]["template"]["spec"]["containers"][0]["args"];
    assert!(
        args.as_array()
            .unwrap()
            .windows(2)
            .any(|w| w[0] == "--cilium-selector" && w[1] == "app=agent,module=cni-cilium"),
        "{args}"
    );
    cluster.get("role egressc-sync -n d8-cni-cilium");
}

#[test]
fn argocd_block() {
    let Some((kubectl, _)) = tools() else { return };
    let cluster = Cluster::start(&[&kubectl]);
    cluster.ok(&block("argocd.sh"));
    let repo_server = cluster.get("deployment argocd-repo-server -n argocd");
    let names: Vec<&str> = repo_server["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert!(names.contains(&"egressc-cmp"), "{names:?}");
    cluster.get("configmap egressc-cmp-plugin -n argocd");
    let application = cluster.get("application egress-gateways -n argocd");
    assert_eq!(
        application["spec"]["source"]["plugin"]["name"],
        "egressc-v1"
    );
}

#[test]
fn krm_block() {
    let Some((kubectl, _)) = tools() else { return };
    let cluster = Cluster::start(&[&kubectl]);
    cluster.ok(&block("krm.sh"));
    let cegp = cluster.get("ciliumegressgatewaypolicy payments-to-bank");
    assert_eq!(cegp["spec"]["egressGateway"]["interface"], "eth1");
    cluster.get("configmap payments-config -n payments");
    let node = cluster.get("node egress-1");
    assert!(
        node["metadata"]["labels"]
            .get("egress-gateway.network.deckhouse.io/active-for-egress-main")
            .is_some(),
        "{node}"
    );
}
