//! The cluster the full-stack VIP test runs against, seeded through a client of the test API
//! server: egressc's CRDs with the CiliumNode and CEGP CRD fixtures, a VirtualIPAddress
//! gateway and a policy, and per node a Ready Node, a CiliumNode, a Ready cilium-agent Pod, a
//! Ready VIP agent Pod and a heartbeat Lease that a background task renews every 500 ms while
//! the node is "powered". The test plays kubelet and the node lifecycle controller; the real
//! `egressc sync` and `egressc agent` do everything else. Async; run it on the api runtime.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::api::{crd_texts, dynamic, set_ready};
use super::vipctl::NAMESPACE;

/// The gateway's name in these tests.
pub const GATEWAY: &str = "gw";
/// The label Cilium selects the gateway's node by.
pub const ACTIVE: &str = "egress-gateway.network.deckhouse.io/active-for-gw";
/// Heartbeat renewal period of a powered node (kubelet renews every 10 s; faster here).
const HEARTBEAT: Duration = Duration::from_millis(500);

/// A handle on the seeded cluster.
#[derive(Clone)]
pub struct Fleet {
    client: Client,
    powered: Arc<Mutex<BTreeSet<String>>>,
}

/// Which nodes carry the active label, on Node and on CiliumNode objects, at one instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelSample {
    pub at: Instant,
    pub nodes: Vec<String>,
    pub cilium_nodes: Vec<String>,
}

impl LabelSample {
    /// The node carrying the label on both kinds, when exactly one does.
    pub fn single(&self) -> Option<&str> {
        match (self.nodes.as_slice(), self.cilium_nodes.as_slice()) {
            ([n], [c]) if n == c => Some(n),
            _ => None,
        }
    }
}

fn from<T: serde::de::DeserializeOwned>(value: Value) -> kube::Result<T> {
    serde_json::from_value(value).map_err(kube::Error::SerdeError)
}

fn yaml_docs(text: &str) -> kube::Result<Vec<Value>> {
    serde_saphyr::from_str_multiple(text).map_err(|e| {
        kube::Error::Api(kube::core::Status::failure(&e.to_string(), "BadFixture").boxed())
    })
}

fn micro_now() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
}

/// The gateway (VIP mode, nodes labelled role=egress, VIP on `eth0`) and its policy.
fn sources(vip: IpAddr) -> Vec<Value> {
    vec![
        json!({
            "apiVersion": "network.deckhouse.io/v1alpha1", "kind": "EgressGateway",
            "metadata": {"name": GATEWAY},
            "spec": {"nodeSelector": {"role": "egress"},
                     "sourceIP": {"mode": "VirtualIPAddress",
                                  "virtualIPAddress": {"ip": vip.to_string(),
                                                       "interfaces": ["eth0"]}}}}),
        json!({
            "apiVersion": "network.deckhouse.io/v1alpha1", "kind": "EgressGatewayPolicy",
            "metadata": {"name": "p"},
            "spec": {"egressGatewayName": GATEWAY,
                     "destinationCIDRs": ["203.0.113.0/24"],
                     "selectors": [{"podSelector": {"matchLabels": {"app": "web"}}}]}}),
    ]
}

impl Fleet {
    /// Creates the CRDs, the namespace, `nodes` (powered, everything Ready), the gateway with
    /// `vip` and its policy, and starts the heartbeats.
    pub async fn install(client: Client, nodes: &[&str], vip: IpAddr) -> kube::Result<Fleet> {
        let pp = PostParams::default();
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        let texts = crd_texts().map_err(|e| kube::Error::Service(e.into()))?;
        for text in texts {
            for crd in yaml_docs(&text)? {
                crds.create(&pp, &from(crd)?).await?;
            }
        }
        let namespaces: Api<Namespace> = Api::all(client.clone());
        namespaces
            .create(&pp, &from(json!({"metadata": {"name": NAMESPACE}}))?)
            .await?;
        let fleet = Fleet {
            client,
            powered: Arc::new(Mutex::new(BTreeSet::new())),
        };
        for node in nodes {
            fleet.add_node(node).await?;
        }
        fleet.spawn_heartbeats();
        for doc in sources(vip) {
            let api = if doc["kind"] == "EgressGateway" {
                dynamic(
                    &fleet.client,
                    "network.deckhouse.io",
                    "EgressGateway",
                    "egressgateways",
                )
            } else {
                dynamic(
                    &fleet.client,
                    "network.deckhouse.io",
                    "EgressGatewayPolicy",
                    "egressgatewaypolicies",
                )
            };
            api.create(&pp, &from(doc)?).await?;
        }
        Ok(fleet)
    }

    async fn add_node(&self, name: &str) -> kube::Result<()> {
        let pp = PostParams::default();
        let nodes: Api<Node> = Api::all(self.client.clone());
        nodes
            .create(
                &pp,
                &from(json!({"metadata": {"name": name, "labels": {"role": "egress"}}}))?,
            )
            .await?;
        self.set_node_ready(name, true).await?;
        dynamic(&self.client, "cilium.io", "CiliumNode", "ciliumnodes")
            .create(
                &pp,
                &from(json!({"apiVersion": "cilium.io/v2", "kind": "CiliumNode",
                             "metadata": {"name": name}, "spec": {}}))?,
            )
            .await?;
        self.add_ready_pod(
            "kube-system",
            &format!("cilium-{name}"),
            name,
            json!({"k8s-app": "cilium"}),
        )
        .await?;
        self.add_ready_pod(
            NAMESPACE,
            &agent_pod(name),
            name,
            json!({"app.kubernetes.io/name": "egressc",
                   "app.kubernetes.io/component": "vip-agent"}),
        )
        .await?;
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), "kube-node-lease");
        leases
            .create(
                &pp,
                &from(json!({"metadata": {"name": name},
                             "spec": {"holderIdentity": name, "leaseDurationSeconds": 40,
                                      "renewTime": micro_now()}}))?,
            )
            .await?;
        self.lock().insert(name.to_owned());
        Ok(())
    }

    async fn add_ready_pod(
        &self,
        namespace: &str,
        pod: &str,
        node: &str,
        labels: Value,
    ) -> kube::Result<()> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        pods.create(
            &PostParams::default(),
            &from(json!({
                "metadata": {"name": pod, "labels": labels},
                "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x"}]}}))?,
        )
        .await?;
        set_pod_ready(&pods, pod, true).await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        // A panicking heartbeat task cannot leave the set half-updated: insert/remove are atomic.
        self.powered.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The node lifecycle controller's verdict on `node` (the Node's Ready condition).
    pub async fn set_node_ready(&self, node: &str, ready: bool) -> kube::Result<()> {
        set_ready(&Api::<Node>::all(self.client.clone()), node, ready).await
    }

    /// Kubelet's readiness verdict on `node`'s VIP agent Pod.
    pub async fn set_agent_ready(&self, node: &str, ready: bool) -> kube::Result<()> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), NAMESPACE);
        set_pod_ready(&pods, &agent_pod(node), ready).await
    }

    /// A hard power-off as the API sees it: the heartbeat stops, nothing else changes.
    pub fn power_off(&self, node: &str) {
        self.lock().remove(node);
    }

    fn spawn_heartbeats(&self) {
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), "kube-node-lease");
        let fleet = self.clone();
        tokio::spawn(async move {
            loop {
                let names: Vec<String> = fleet.lock().iter().cloned().collect();
                for name in names {
                    let body = json!({"spec": {"renewTime": micro_now()}});
                    let _ = leases
                        .patch(&name, &PatchParams::default(), &Patch::Merge(body))
                        .await;
                }
                tokio::time::sleep(HEARTBEAT).await;
            }
        });
    }

    /// Which nodes carry the active label now.
    pub async fn labels(&self) -> kube::Result<LabelSample> {
        let selector = ListParams::default().labels(ACTIVE);
        let nodes = Api::<Node>::all(self.client.clone())
            .list(&selector)
            .await?
            .items
            .into_iter()
            .filter_map(|n| n.metadata.name)
            .collect();
        let cilium_nodes = dynamic(&self.client, "cilium.io", "CiliumNode", "ciliumnodes")
            .list(&selector)
            .await?
            .items
            .into_iter()
            .filter_map(|n| n.metadata.name)
            .collect();
        Ok(LabelSample {
            at: Instant::now(),
            nodes,
            cilium_nodes,
        })
    }

    /// Polls [`Fleet::labels`] every 20 ms until exactly one node, not in `not`, carries the
    /// label on Node and CiliumNode; that node and when it was seen, or `None` after `timeout`.
    pub async fn wait_single(
        self,
        not: Vec<String>,
        timeout: Duration,
    ) -> Option<(String, Instant)> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(sample) = self.labels().await
                && let Some(node) = sample.single()
                && !not.iter().any(|n| n == node)
            {
                return Some((node.to_owned(), sample.at));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// Samples [`Fleet::labels`] every 20 ms until `stop` is set; every sample, in order.
    pub async fn record_labels(self, stop: Arc<std::sync::atomic::AtomicBool>) -> Vec<LabelSample> {
        let mut samples = Vec::new();
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok(sample) = self.labels().await {
                samples.push(sample);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        samples
    }

    /// The policy's CiliumEgressGatewayPolicy, once `egressc sync` created it.
    pub async fn cegp(&self) -> kube::Result<Option<Value>> {
        let cegp = dynamic(
            &self.client,
            "cilium.io",
            "CiliumEgressGatewayPolicy",
            "ciliumegressgatewaypolicies",
        )
        .get_opt("p")
        .await?;
        Ok(cegp.and_then(|c| serde_json::to_value(c).ok()))
    }
}

fn agent_pod(node: &str) -> String {
    format!("egressc-agent-{node}")
}

async fn set_pod_ready(pods: &Api<Pod>, pod: &str, ready: bool) -> kube::Result<()> {
    set_ready(pods, pod, ready).await
}
