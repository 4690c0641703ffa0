//! Test cluster for `tests/sync_e2e.rs` and `tests/install_rbac.rs`: kube-testserver in-process with egressc's CRDs, the
//! CiliumNode and CEGP CRD fixtures, Ready Nodes with CiliumNodes, cilium-agent Pods and
//! heartbeat Leases that a background task keeps renewing for the nodes marked alive.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube_testserver::TestServer;
use serde_json::{Value, json};

pub const NAMESPACE: &str = "egressc-system";
pub const ACTIVE: &str = "egress-gateway.network.deckhouse.io/active-for-gw";
/// Upper bound for any expected reaction: a guard against hangs, not a measurement.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub struct Cluster {
    pub server: TestServer,
    pub client: Client,
    pub alive: Arc<Mutex<BTreeSet<String>>>,
    pub dir: tempfile::TempDir,
}

pub fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

pub fn cilium_nodes(client: &Client) -> Api<DynamicObject> {
    Api::all_with(
        client.clone(),
        &resource("cilium.io", "v2", "CiliumNode", "ciliumnodes"),
    )
}

pub fn cegps(client: &Client) -> Api<DynamicObject> {
    Api::all_with(
        client.clone(),
        &resource(
            "cilium.io",
            "v2",
            "CiliumEgressGatewayPolicy",
            "ciliumegressgatewaypolicies",
        ),
    )
}

pub fn gateways(client: &Client) -> Api<DynamicObject> {
    Api::all_with(
        client.clone(),
        &resource(
            "network.deckhouse.io",
            "v1alpha1",
            "EgressGateway",
            "egressgateways",
        ),
    )
}

pub fn policies(client: &Client) -> Api<DynamicObject> {
    Api::all_with(
        client.clone(),
        &resource(
            "network.deckhouse.io",
            "v1alpha1",
            "EgressGatewayPolicy",
            "egressgatewaypolicies",
        ),
    )
}

pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    poll(what, || {
        let done = check();
        async move { done.await.then_some(()) }
    })
    .await;
}

/// Polls `probe` until it yields a value (at most [`PATIENCE`]).
pub async fn poll<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let waited = tokio::time::timeout(PATIENCE, async {
        loop {
            if let Some(value) = probe().await {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    match waited {
        Ok(value) => value,
        Err(_) => panic!("timed out waiting for: {what}"),
    }
}

fn from<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("valid test object")
}

async fn create_crd(client: &Client, crd: Value) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    api.create(&PostParams::default(), &from(crd))
        .await
        .expect("CRD created");
}

fn yaml_docs(text: &str) -> Vec<Value> {
    serde_saphyr::from_str_multiple(text).expect("fixture YAML")
}

/// The gateway (PrimaryIP mode, nodes labelled role=egress) and policy used by the tests.
pub const SOURCES: &str = "\
apiVersion: network.deckhouse.io/v1alpha1
kind: EgressGateway
metadata:
  name: gw
spec:
  nodeSelector:
    role: egress
  sourceIP:
    mode: PrimaryIPFromEgressGatewayNodeInterface
    primaryIPFromEgressGatewayNodeInterface:
      interfaceName: eth0
---
apiVersion: network.deckhouse.io/v1alpha1
kind: EgressGatewayPolicy
metadata:
  name: p
spec:
  egressGatewayName: gw
  destinationCIDRs: [198.51.100.0/24]
  selectors:
  - podSelector:
      matchLabels:
        app: web
";

impl Cluster {
    pub async fn start(nodes: &[&str]) -> Cluster {
        let server = TestServer::start().await.expect("test server");
        let client = server.client().expect("client");
        let crds = egressc::crds::render_crds();
        for crd in yaml_docs(&crds) {
            create_crd(&client, crd).await;
        }
        let root = env!("CARGO_MANIFEST_DIR");
        for fixture in [
            "ciliumnodes.crd.yaml",
            "ciliumegressgatewaypolicies.v1.19.0.yaml",
        ] {
            let text = std::fs::read_to_string(format!("{root}/tests/fixtures/{fixture}"))
                .expect("fixture");
            for crd in yaml_docs(&text) {
                create_crd(&client, crd).await;
            }
        }
        let namespaces: Api<Namespace> = Api::all(client.clone());
        namespaces
            .create(
                &PostParams::default(),
                &from(json!({"metadata": {"name": NAMESPACE}})),
            )
            .await
            .expect("namespace");
        let cluster = Cluster {
            server,
            client,
            alive: Arc::new(Mutex::new(BTreeSet::new())),
            dir: tempfile::tempdir().expect("temp dir"),
        };
        for node in nodes {
            cluster.add_node(node).await;
        }
        cluster.spawn_heartbeats();
        for doc in yaml_docs(SOURCES) {
            let api = if doc["kind"] == "EgressGateway" {
                gateways(&cluster.client)
            } else {
                policies(&cluster.client)
            };
            api.create(&PostParams::default(), &from(doc))
                .await
                .expect("source created");
        }
        let kubeconfig = cluster.dir.path().join("kubeconfig");
        cluster
            .server
            .write_kubeconfig(&kubeconfig)
            .expect("kubeconfig");
        std::fs::write(cluster.dir.path().join("sources.yaml"), SOURCES).expect("sources");
        cluster
    }

    async fn add_node(&self, name: &str) {
        let nodes: Api<Node> = Api::all(self.client.clone());
        nodes
            .create(
                &PostParams::default(),
                &from(json!({
                "metadata": {"name": name, "labels": {"role": "egress"}}})),
            )
            .await
            .expect("node");
        self.set_ready(name, true).await;
        cilium_nodes(&self.client)
            .create(
                &PostParams::default(),
                &from(json!({
                "apiVersion": "cilium.io/v2", "kind": "CiliumNode",
                "metadata": {"name": name}, "spec": {}})),
            )
            .await
            .expect("ciliumnode");
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), "kube-system");
        let pod = format!("cilium-{name}");
        pods.create(
            &PostParams::default(),
            &from(json!({
                "metadata": {"name": pod, "labels": {"k8s-app": "cilium"}},
                "spec": {"nodeName": name, "containers": [{"name": "agent", "image": "cilium"}]}})),
        )
        .await
        .expect("pod");
        pods.patch_status(
            &pod,
            &PatchParams::default(),
            &Patch::Merge(json!({
                "status": {"conditions": [{"type": "Ready", "status": "True"}]}})),
        )
        .await
        .expect("pod ready");
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), "kube-node-lease");
        leases
            .create(
                &PostParams::default(),
                &from(json!({
                "metadata": {"name": name},
                "spec": {"holderIdentity": name, "leaseDurationSeconds": 40,
                         "renewTime": micro_now()}})),
            )
            .await
            .expect("lease");
        self.alive.lock().expect("lock").insert(name.to_owned());
    }

    pub async fn set_ready(&self, node: &str, ready: bool) {
        let status = if ready { "True" } else { "False" };
        self.patch_node_status(
            node,
            json!({"status": {"conditions": [{"type": "Ready", "status": status}]}}),
        )
        .await;
    }

    /// Sets `node`'s `InternalIP` (where `egressc sync` probes it).
    pub async fn set_internal_ip(&self, node: &str, ip: &str) {
        self.patch_node_status(
            node,
            json!({"status": {"addresses": [{"type": "InternalIP", "address": ip}]}}),
        )
        .await;
    }

    async fn patch_node_status(&self, node: &str, body: Value) {
        let nodes: Api<Node> = Api::all(self.client.clone());
        nodes
            .patch_status(node, &PatchParams::default(), &Patch::Merge(body))
            .await
            .expect("node status");
    }

    /// Stops renewing `node`'s heartbeat Lease (a hard power-off: the Node stays Ready).
    pub fn power_off(&self, node: &str) {
        self.alive.lock().expect("lock").remove(node);
    }

    fn spawn_heartbeats(&self) {
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), "kube-node-lease");
        let alive = self.alive.clone();
        tokio::spawn(async move {
            loop {
                let names: Vec<String> = alive.lock().expect("lock").iter().cloned().collect();
                for name in names {
                    let body = json!({"spec": {"renewTime": micro_now()}});
                    let _ = leases
                        .patch(&name, &PatchParams::default(), &Patch::Merge(body))
                        .await;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    }

    /// Nodes carrying the gateway's active label, on Node and on CiliumNode objects.
    pub async fn active(&self) -> (Vec<String>, Vec<String>) {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let on_nodes = carrying_active(nodes.list(&Default::default()).await.expect("nodes"));
        let on_cilium = carrying_active(
            cilium_nodes(&self.client)
                .list(&Default::default())
                .await
                .expect("ciliumnodes"),
        );
        (on_nodes, on_cilium)
    }

    /// Waits until exactly one node carries the label on both kinds and it is not in `not`;
    /// returns it.
    pub async fn wait_active(&self, not: &[&str]) -> String {
        poll(&format!("one active node other than {not:?}"), || async {
            let (nodes, cilium) = self.active().await;
            let ok = nodes.len() == 1 && nodes == cilium && !not.contains(&nodes[0].as_str());
            ok.then(|| nodes[0].clone())
        })
        .await
    }

    pub async fn events(&self) -> Vec<Value> {
        let api: Api<DynamicObject> = Api::all_with(
            self.client.clone(),
            &resource("events.k8s.io", "v1", "Event", "events"),
        );
        api.list(&Default::default())
            .await
            .map(|l| {
                l.items
                    .into_iter()
                    .map(|e| serde_json::to_value(e).unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn labels_of(value: &Value) -> BTreeMap<String, String> {
        serde_json::from_value(value["metadata"]["labels"].clone()).unwrap_or_default()
    }
}

fn micro_now() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
}

/// The names of the listed objects that carry the gateway's active label.
fn carrying_active<K: kube::Resource + Clone>(list: kube::core::ObjectList<K>) -> Vec<String> {
    list.items
        .into_iter()
        .filter(|o| kube::ResourceExt::labels(o).contains_key(ACTIVE))
        .map(|o| kube::ResourceExt::name_any(&o))
        .collect()
}
