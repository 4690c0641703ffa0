//! The soaked cluster and the harness's intent for it: egressc's CRDs with the CiliumNode and
//! CEGP CRD fixtures, groups of nodes (each a Node, a CiliumNode, a cilium-agent Pod, a VIP agent
//! Pod and a heartbeat Lease), gateways in both source-IP modes (one group each), two policies
//! per gateway, and objects egressc does not own (a foreign label on every Node and CiliumNode,
//! a hand-written CEGP). The harness plays kubelet and the node lifecycle controller: it writes
//! each node's state ([`NodeState`]) and renews the heartbeats of powered nodes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::support::api::{crd_texts, dynamic, set_ready};

/// egressc's namespace: leader Lease, VIP Leases, VIP agent Pods.
pub const NAMESPACE: &str = "egressc-system";
/// The node label gateways select by (`g0`, `g1`, …).
pub const GROUP_LABEL: &str = "soak.example.com/group";
/// A label egressc does not own, on every Node and CiliumNode: it must never change.
pub const FOREIGN_LABEL: &str = "soak.example.com/owner";
pub const FOREIGN_VALUE: &str = "harness";
/// A CEGP nobody's policy owns: egressc must never touch it.
pub const HAND_WRITTEN_CEGP: &str = "hand-written";
/// kubelet renews every 10 s; faster here, against a 3 s grace.
const HEARTBEAT: Duration = Duration::from_millis(500);

/// What the harness wants a node to look like; every field true is a healthy node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeState {
    /// The Node's Ready condition.
    pub ready: bool,
    /// `spec.unschedulable` is false.
    pub schedulable: bool,
    /// The heartbeat Lease is renewed and the node's agents run (a hard power-off: no).
    pub powered: bool,
    /// The cilium-agent Pod is Ready.
    pub cilium_ready: bool,
    /// The VIP agent Pod is Ready and the (simulated) agent acts on the Lease.
    pub agent_up: bool,
}

impl NodeState {
    pub const HEALTHY: NodeState = NodeState {
        ready: true,
        schedulable: true,
        powered: true,
        cilium_ready: true,
        agent_up: true,
    };

    /// Eligible for a gateway of this mode (the controller also waits for the settle time).
    pub fn eligible(&self, vip: bool) -> bool {
        self.ready
            && self.schedulable
            && self.powered
            && self.cilium_ready
            && (!vip || self.agent_up)
    }
}

/// One gateway of the soak.
#[derive(Clone, Debug)]
pub struct Gateway {
    pub name: String,
    pub group: usize,
    /// The VIP in `VirtualIPAddress` mode; `None`: `PrimaryIPFromEgressGatewayNodeInterface`.
    pub vip: Option<String>,
}

/// The size of the soaked cluster.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub nodes: usize,
    pub groups: usize,
    pub gateways: usize,
    /// The last `vip_gateways` gateways are in VIP mode.
    pub vip_gateways: usize,
    pub policies_per_gateway: usize,
}

/// The seeded cluster and the harness's intent for its nodes.
#[derive(Clone)]
pub struct World {
    pub client: Client,
    pub nodes: Vec<(String, usize)>,
    pub gateways: Vec<Gateway>,
    /// (policy, gateway)
    pub policies: Vec<(String, String)>,
    states: Arc<Mutex<BTreeMap<String, NodeState>>>,
}

pub fn cegps(client: &Client) -> Api<DynamicObject> {
    dynamic(
        client,
        "cilium.io",
        "CiliumEgressGatewayPolicy",
        "ciliumegressgatewaypolicies",
    )
}

fn from<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("valid soak object")
}

fn micro_now() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
}

pub fn agent_pod(node: &str) -> String {
    format!("egressc-agent-{node}")
}

fn cilium_pod(node: &str) -> String {
    format!("cilium-{node}")
}

impl World {
    /// Creates everything, all nodes healthy, and starts the heartbeats.
    pub async fn seed(client: Client, shape: Shape) -> World {
        let pp = PostParams::default();
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        let texts = crd_texts().expect("CRD fixtures");
        for text in texts {
            let docs: Vec<Value> = serde_saphyr::from_str_multiple(&text).expect("CRD YAML");
            for crd in docs {
                crds.create(&pp, &from(crd)).await.expect("CRD created");
            }
        }
        Api::<Namespace>::all(client.clone())
            .create(&pp, &from(json!({"metadata": {"name": NAMESPACE}})))
            .await
            .expect("namespace");

        let nodes: Vec<(String, usize)> = (0..shape.nodes)
            .map(|i| (format!("soak-n{i:02}"), i % shape.groups))
            .collect();
        let gateways: Vec<Gateway> = (0..shape.gateways)
            .map(|k| Gateway {
                name: format!("gw-{k}"),
                group: k % shape.groups,
                vip: (k >= shape.gateways - shape.vip_gateways)
                    .then(|| format!("192.0.2.{}", 10 + k)),
            })
            .collect();
        let policies: Vec<(String, String)> = gateways
            .iter()
            .flat_map(|g| {
                (0..shape.policies_per_gateway)
                    .map(|j| (format!("{}-p{j}", g.name), g.name.clone()))
            })
            .collect();
        let world = World {
            client,
            nodes,
            gateways,
            policies,
            states: Arc::new(Mutex::new(BTreeMap::new())),
        };
        for (node, group) in &world.nodes {
            world.add_node(node, *group).await;
        }
        for gateway in &world.gateways {
            dynamic(
                &world.client,
                "network.deckhouse.io",
                "EgressGateway",
                "egressgateways",
            )
            .create(&pp, &from(gateway_object(gateway)))
            .await
            .expect("gateway");
        }
        for (k, (policy, gateway)) in world.policies.iter().enumerate() {
            dynamic(
                &world.client,
                "network.deckhouse.io",
                "EgressGatewayPolicy",
                "egressgatewaypolicies",
            )
            .create(&pp, &from(policy_object(policy, gateway, k)))
            .await
            .expect("policy");
        }
        cegps(&world.client)
            .create(&pp, &from(hand_written_cegp()))
            .await
            .expect("hand-written CEGP");
        world.spawn_heartbeats();
        world
    }

    async fn add_node(&self, name: &str, group: usize) {
        let pp = PostParams::default();
        Api::<Node>::all(self.client.clone())
            .create(
                &pp,
                &from(json!({"metadata": {"name": name, "labels": {
                    GROUP_LABEL: format!("g{group}"), FOREIGN_LABEL: FOREIGN_VALUE}}})),
            )
            .await
            .expect("node");
        dynamic(&self.client, "cilium.io", "CiliumNode", "ciliumnodes")
            .create(
                &pp,
                &from(json!({"apiVersion": "cilium.io/v2", "kind": "CiliumNode",
                    "metadata": {"name": name, "labels": {FOREIGN_LABEL: FOREIGN_VALUE}},
                    "spec": {}})),
            )
            .await
            .expect("ciliumnode");
        for (namespace, pod, labels) in [
            (
                "kube-system",
                cilium_pod(name),
                json!({"k8s-app": "cilium"}),
            ),
            (
                NAMESPACE,
                agent_pod(name),
                json!({"app.kubernetes.io/name": "egressc",
                       "app.kubernetes.io/component": "vip-agent"}),
            ),
        ] {
            Api::<Pod>::namespaced(self.client.clone(), namespace)
                .create(
                    &pp,
                    &from(json!({"metadata": {"name": pod, "labels": labels},
                        "spec": {"nodeName": name, "containers": [{"name": "c", "image": "x"}]}})),
                )
                .await
                .expect("pod");
        }
        Api::<Lease>::namespaced(self.client.clone(), "kube-node-lease")
            .create(
                &pp,
                &from(json!({"metadata": {"name": name},
                    "spec": {"holderIdentity": name, "leaseDurationSeconds": 40,
                             "renewTime": micro_now()}})),
            )
            .await
            .expect("heartbeat lease");
        self.write_state(name, NodeState::HEALTHY)
            .await
            .expect("node state");
        self.lock().insert(name.to_owned(), NodeState::HEALTHY);
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, NodeState>> {
        self.states.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The harness's intent for `node`.
    pub fn state(&self, node: &str) -> NodeState {
        self.lock().get(node).copied().unwrap_or(NodeState::HEALTHY)
    }

    /// Every node's intent.
    pub fn states(&self) -> BTreeMap<String, NodeState> {
        self.lock().clone()
    }

    /// Records the intent for `node` and writes what differs from `before` (an API error leaves
    /// the cluster behind the intent; [`World::enforce`] catches up).
    pub async fn set_state(&self, node: &str, state: NodeState) -> kube::Result<()> {
        let before = self
            .lock()
            .insert(node.to_owned(), state)
            .unwrap_or(NodeState::HEALTHY);
        let mut result = Ok(());
        if before.ready != state.ready {
            result = result.and(self.set_node_ready(node, state.ready).await);
        }
        if before.schedulable != state.schedulable {
            result = result.and(self.set_schedulable(node, state.schedulable).await);
        }
        if before.cilium_ready != state.cilium_ready {
            result = result.and(
                self.set_pod_ready("kube-system", &cilium_pod(node), state.cilium_ready)
                    .await,
            );
        }
        if before.agent_up != state.agent_up {
            result = result.and(
                self.set_pod_ready(NAMESPACE, &agent_pod(node), state.agent_up)
                    .await,
            );
        }
        result
    }

    /// Writes every node's whole intent until the API accepts it (after faults stop).
    pub async fn enforce(&self) {
        for (node, state) in self.states() {
            for attempt in 0.. {
                match self.write_state(&node, state).await {
                    Ok(()) => break,
                    Err(error) if attempt < 50 => {
                        let _ = error;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(error) => panic!("cannot write {node}'s state: {error}"),
                }
            }
        }
    }

    async fn write_state(&self, node: &str, state: NodeState) -> kube::Result<()> {
        self.set_node_ready(node, state.ready).await?;
        self.set_schedulable(node, state.schedulable).await?;
        self.set_pod_ready("kube-system", &cilium_pod(node), state.cilium_ready)
            .await?;
        self.set_pod_ready(NAMESPACE, &agent_pod(node), state.agent_up)
            .await
    }

    async fn set_node_ready(&self, node: &str, ready: bool) -> kube::Result<()> {
        set_ready(&Api::<Node>::all(self.client.clone()), node, ready).await
    }

    async fn set_schedulable(&self, node: &str, schedulable: bool) -> kube::Result<()> {
        Api::<Node>::all(self.client.clone())
            .patch(
                node,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"unschedulable": !schedulable}})),
            )
            .await
            .map(drop)
    }

    async fn set_pod_ready(&self, namespace: &str, pod: &str, ready: bool) -> kube::Result<()> {
        set_ready(
            &Api::<Pod>::namespaced(self.client.clone(), namespace),
            pod,
            ready,
        )
        .await
    }

    /// Renews the heartbeat Lease of every powered node every [`HEARTBEAT`], concurrently (a
    /// slow API must not make one node's renewal wait for the others').
    fn spawn_heartbeats(&self) {
        let world = self.clone();
        tokio::spawn(async move {
            let leases: Api<Lease> = Api::namespaced(world.client.clone(), "kube-node-lease");
            loop {
                let powered: Vec<String> = world
                    .states()
                    .into_iter()
                    .filter(|(_, s)| s.powered)
                    .map(|(n, _)| n)
                    .collect();
                join_all(powered.iter().map(|name| {
                    let body = json!({"spec": {"renewTime": micro_now()}});
                    let leases = leases.clone();
                    async move {
                        let _ = leases
                            .patch(name, &PatchParams::default(), &Patch::Merge(body))
                            .await;
                    }
                }))
                .await;
                tokio::time::sleep(HEARTBEAT).await;
            }
        });
    }
}

fn gateway_object(gateway: &Gateway) -> Value {
    let source_ip = match &gateway.vip {
        None => json!({"mode": "PrimaryIPFromEgressGatewayNodeInterface",
                       "primaryIPFromEgressGatewayNodeInterface": {"interfaceName": "eth0"}}),
        Some(vip) => json!({"mode": "VirtualIPAddress",
                            "virtualIPAddress": {"ip": vip, "interfaces": ["eth0"]}}),
    };
    json!({"apiVersion": "network.deckhouse.io/v1alpha1", "kind": "EgressGateway",
           "metadata": {"name": gateway.name},
           "spec": {"nodeSelector": {GROUP_LABEL: format!("g{}", gateway.group)},
                    "sourceIP": source_ip}})
}

fn policy_object(policy: &str, gateway: &str, k: usize) -> Value {
    json!({"apiVersion": "network.deckhouse.io/v1alpha1", "kind": "EgressGatewayPolicy",
           "metadata": {"name": policy},
           "spec": {"egressGatewayName": gateway,
                    "destinationCIDRs": [format!("198.51.100.{}/32", k % 256)],
                    "selectors": [{"podSelector": {"matchLabels": {"app": policy}}}]}})
}

fn hand_written_cegp() -> Value {
    json!({"apiVersion": "cilium.io/v2", "kind": "CiliumEgressGatewayPolicy",
           "metadata": {"name": HAND_WRITTEN_CEGP, "labels": {FOREIGN_LABEL: FOREIGN_VALUE}},
           "spec": {"selectors": [{"podSelector": {"matchLabels": {"app": "legacy"}}}],
                    "destinationCIDRs": ["203.0.113.0/24"],
                    "egressGateway": {"nodeSelector": {"matchLabels": {GROUP_LABEL: "g0"}},
                                      "interface": "eth0"}}})
}
