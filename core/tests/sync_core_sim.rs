//! Deterministic simulation of `egressc sync`'s decisions through its one entry point,
//! [`SyncCore`]: a fake API server holds Nodes, CiliumNodes, heartbeat Leases, cilium-agent
//! Pods, EgressGateways, EgressGatewayPolicies and CEGPs as the watches would deliver them; every
//! step (one second of injected time) the kubelets renew their heartbeats, the core's two plans
//! are carried out on the fake server as the shell would (labels, statuses, Events, CEGPs) and
//! every write is echoed back as a watch event. Failed writes are injected and reported back.
//! Where `core/tests/controller_sim.rs` drives the election alone, this drives validation, status
//! conditions and CEGP decisions too.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use egressc_core::controller::{Instant, Timing};
use egressc_core::model::labels::active_for_label;
use egressc_core::sync::index::{Object, Source, WatchEvent};
use egressc_core::sync::sync_core::{CegpWrite, EventWrite, Input, Plan, SyncCore, Written};
use egressc_core::validate::Options;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

const GROUP: &str = "example.com/egress";
const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The simulation's wall clock starts here (condition timestamps).
const EPOCH: i64 = 1_767_225_600;

fn gateway(name: &str, interface: &str, generation: i64) -> Value {
    json!({
        "apiVersion": "network.deckhouse.io/v1alpha1", "kind": "EgressGateway",
        "metadata": {"name": name, "uid": format!("uid-{name}"), "generation": generation},
        "spec": {
            "nodeSelector": {GROUP: "yes"},
            "sourceIP": {"mode": "PrimaryIPFromEgressGatewayNodeInterface",
                         "primaryIPFromEgressGatewayNodeInterface": {"interfaceName": interface}}
        }
    })
}

fn policy(name: &str, gateway: &str, cidr: &str, generation: i64) -> Value {
    json!({
        "apiVersion": "network.deckhouse.io/v1alpha1", "kind": "EgressGatewayPolicy",
        "metadata": {"name": name, "uid": format!("uid-{name}"), "generation": generation},
        "spec": {
            "egressGatewayName": gateway,
            "destinationCIDRs": [cidr],
            "selectors": [{"podSelector": {"matchLabels": {"app": name}}}]
        }
    })
}

fn typed<T: serde::de::DeserializeOwned>(value: Value) -> Box<T> {
    Box::new(serde_json::from_value(value).expect("well-formed test object"))
}

/// The fake API server and the core it feeds.
struct Sim {
    core: SyncCore,
    secs: i64,
    rv: u64,
    /// Node name → (Ready, labels).
    nodes: BTreeMap<String, (bool, BTreeMap<String, String>)>,
    cilium_labels: BTreeMap<String, BTreeMap<String, String>>,
    gateways: BTreeMap<String, Value>,
    policies: BTreeMap<String, Value>,
    cegps: BTreeMap<String, Value>,
    /// Events created, with the step they were created at.
    events: Vec<(i64, EventWrite)>,
    /// Writes of the last step, as `kind/name`.
    writes: Vec<String>,
    /// The two plans of the last step.
    plans: (Plan, Plan),
    /// Writes (`kind/name`) that fail once.
    fail: BTreeSet<String>,
}

impl Sim {
    /// Three healthy nodes in the group, and the given gateways and policies; every watch
    /// lists, then the first step runs.
    fn new(gateways: &[Value], policies: &[Value]) -> Self {
        let mut sim = Sim {
            core: SyncCore::new(Timing::default(), Options::default()).expect("templates"),
            secs: 0,
            rv: 1,
            nodes: BTreeMap::new(),
            cilium_labels: BTreeMap::new(),
            gateways: BTreeMap::new(),
            policies: BTreeMap::new(),
            cegps: BTreeMap::new(),
            events: Vec::new(),
            writes: Vec::new(),
            plans: (Plan::default(), Plan::default()),
            fail: BTreeSet::new(),
        };
        for name in ["n1", "n2", "n3"] {
            let labels = BTreeMap::from([(GROUP.to_owned(), "yes".to_owned())]);
            sim.nodes.insert(name.to_owned(), (true, labels));
            sim.cilium_labels.insert(name.to_owned(), BTreeMap::new());
        }
        for g in gateways {
            sim.gateways.insert(name_of(g), g.clone());
        }
        for p in policies {
            sim.policies.insert(name_of(p), p.clone());
        }
        let mut lists: Vec<(Source, Vec<Object>)> = Vec::new();
        let names: Vec<String> = sim.nodes.keys().cloned().collect();
        lists.push((Source::Node, names.iter().map(|n| sim.node(n)).collect()));
        lists.push((
            Source::NodeLease,
            names.iter().map(|n| sim.heartbeat(n)).collect(),
        ));
        lists.push((
            Source::CiliumNode,
            names.iter().map(|n| sim.cilium_node(n)).collect(),
        ));
        lists.push((
            Source::CiliumPod,
            names.iter().map(|n| cilium_pod(n)).collect(),
        ));
        lists.push((Source::VipPod, Vec::new()));
        lists.push((Source::VipLease, Vec::new()));
        lists.push((
            Source::Gateway,
            sim.gateways
                .values()
                .cloned()
                .map(Object::Gateway)
                .collect(),
        ));
        lists.push((
            Source::Policy,
            sim.policies.values().cloned().map(Object::Policy).collect(),
        ));
        lists.push((Source::Cegp, Vec::new()));
        for (source, objects) in lists {
            sim.watch(WatchEvent::Init(source));
            for object in objects {
                sim.watch(WatchEvent::Apply(object));
            }
            sim.watch(WatchEvent::InitDone(source));
        }
        assert!(sim.core.synced());
        sim.step();
        sim
    }

    fn now(&self) -> Instant {
        Instant(Duration::from_secs(self.secs.unsigned_abs()))
    }

    fn wall(&self) -> Time {
        Time(Timestamp::from_second(EPOCH + self.secs).expect("in range"))
    }

    fn wall_text(&self) -> String {
        self.wall().0.to_string()
    }

    fn watch(&mut self, event: WatchEvent) {
        let now = self.now();
        self.core.handle(now, Input::Watch(event));
    }

    fn next_rv(&mut self) -> String {
        self.rv += 1;
        self.rv.to_string()
    }

    fn node(&self, name: &str) -> Object {
        let (ready, labels) = &self.nodes[name];
        Object::Node(typed(json!({
            "metadata": {"name": name, "labels": labels},
            "status": {
                "conditions": [{"type": "Ready", "status": if *ready { "True" } else { "False" }}],
                "addresses": [{"type": "InternalIP", "address": "192.0.2.1"}]
            }
        })))
    }

    fn cilium_node(&self, name: &str) -> Object {
        Object::CiliumNode(json!({
            "apiVersion": "cilium.io/v2", "kind": "CiliumNode",
            "metadata": {"name": name, "labels": self.cilium_labels[name]}
        }))
    }

    fn heartbeat(&self, name: &str) -> Object {
        Object::NodeLease(typed(json!({
            "metadata": {"name": name, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": name, "renewTime": self.wall_text()}
        })))
    }

    /// Someone (a user, Argo CD) applies `object`; its watch event follows.
    fn user_applies(&mut self, object: Value) {
        let name = name_of(&object);
        let rv = self.next_rv();
        let mut object = object;
        object["metadata"]["resourceVersion"] = json!(rv);
        match object["kind"].as_str() {
            Some("EgressGateway") => {
                if let Some(status) = self.gateways.get(&name).and_then(|g| g.get("status")) {
                    object["status"] = status.clone();
                }
                self.gateways.insert(name, object.clone());
                self.watch(WatchEvent::Apply(Object::Gateway(object)));
            }
            Some("EgressGatewayPolicy") => {
                if let Some(status) = self.policies.get(&name).and_then(|p| p.get("status")) {
                    object["status"] = status.clone();
                }
                self.policies.insert(name, object.clone());
                self.watch(WatchEvent::Apply(Object::Policy(object)));
            }
            Some("CiliumEgressGatewayPolicy") => {
                // An edit keeps the object's uid; a new object gets one.
                object["metadata"]["uid"] = self.cegps.get(&name).map_or_else(
                    || json!(format!("uid-cegp-{name}-{rv}")),
                    |c| c["metadata"]["uid"].clone(),
                );
                self.cegps.insert(name, object.clone());
                self.watch(WatchEvent::Apply(Object::Cegp(object)));
            }
            other => panic!("unexpected kind {other:?}"),
        }
    }

    fn user_deletes_policy(&mut self, name: &str) {
        let object = self.policies.remove(name).expect("policy exists");
        self.watch(WatchEvent::Delete(Object::Policy(object)));
    }

    fn user_deletes_cegp(&mut self, name: &str) {
        let object = self.cegps.remove(name).expect("CEGP exists");
        self.watch(WatchEvent::Delete(Object::Cegp(object)));
    }

    fn set_ready(&mut self, node: &str, ready: bool) {
        self.nodes.get_mut(node).expect("node").0 = ready;
        let object = self.node(node);
        self.watch(WatchEvent::Apply(object));
    }

    /// One second: kubelets renew, both stages are planned and carried out.
    fn step(&mut self) {
        self.secs += 1;
        self.writes.clear();
        let names: Vec<String> = self.nodes.keys().cloned().collect();
        for name in &names {
            let lease = self.heartbeat(name);
            self.watch(WatchEvent::Apply(lease));
        }
        let (now, wall) = (self.now(), self.wall());
        let first = self.core.reconcile(now);
        self.carry_out(&first);
        let second = self.core.reconcile_after_labels(&wall);
        self.carry_out(&second);
        self.plans = (first, second);
        self.check_invariants();
    }

    fn run(&mut self, steps: usize) {
        for _ in 0..steps {
            self.step();
        }
    }

    /// Does the write `key` fail this time? Reports it to the core as the shell does.
    fn fails(&mut self, key: &str, written: Written) -> bool {
        if !self.fail.remove(key) {
            return false;
        }
        let now = self.now();
        self.core.handle(now, Input::Failed(written));
        true
    }

    fn carry_out(&mut self, plan: &Plan) {
        assert!(plan.vip.is_empty(), "no VIP gateway here");
        for write in &plan.labels {
            let patch = &write.patch;
            let node = patch.node.clone();
            let labels = match patch.kind {
                egressc_core::controller::NodeKind::Node => {
                    &mut self.nodes.get_mut(&node).expect("node").1
                }
                egressc_core::controller::NodeKind::CiliumNode => {
                    self.cilium_labels.get_mut(&node).expect("CiliumNode")
                }
            };
            labels.retain(|k, _| !patch.remove.contains(k));
            if !patch.set.is_empty() {
                labels.extend(write.labels.clone());
            }
            let object = match patch.kind {
                egressc_core::controller::NodeKind::Node => self.node(&node),
                egressc_core::controller::NodeKind::CiliumNode => self.cilium_node(&node),
            };
            self.writes.push(format!("labels/{node}"));
            self.watch(WatchEvent::Apply(object));
        }
        let statuses = [
            (true, &plan.gateway_statuses),
            (false, &plan.policy_statuses),
        ];
        for (is_gateway, writes) in statuses {
            for write in writes {
                let name = write.name.clone();
                let (key, written) = if is_gateway {
                    (
                        format!("gateway-status/{name}"),
                        Written::GatewayStatus(name),
                    )
                } else {
                    (format!("policy-status/{name}"), Written::PolicyStatus(name))
                };
                if self.fails(&key, written) {
                    continue;
                }
                let rv = self.next_rv();
                let store = if is_gateway {
                    &mut self.gateways
                } else {
                    &mut self.policies
                };
                let object = store.get_mut(&write.name).expect("written object exists");
                merge_status(object, &write.body.value(), &rv);
                let object = object.clone();
                self.writes.push(key);
                let object = if is_gateway {
                    Object::Gateway(object)
                } else {
                    Object::Policy(object)
                };
                self.watch(WatchEvent::Apply(object));
            }
        }
        for event in &plan.events {
            self.events.push((self.secs, event.clone()));
        }
        for write in &plan.cegps {
            match write {
                CegpWrite::Apply { name, force } => {
                    let key = format!("cegp/{name}");
                    if let Some(stored) = self.cegps.get(name) {
                        assert_eq!(
                            stored["metadata"]["labels"][MANAGED_BY], "egressc",
                            "wrote a CEGP egressc does not own"
                        );
                        assert!(force, "an owned CEGP is applied with force");
                    }
                    if self.fails(&key, Written::Cegp(name.clone())) {
                        continue;
                    }
                    let mut body = self.core.cegp_body(name).expect("a planned CEGP renders");
                    let rv = self.next_rv();
                    let uid = self.cegps.get(name).map_or_else(
                        || json!(format!("uid-cegp-{name}-{rv}")),
                        |c| c["metadata"]["uid"].clone(),
                    );
                    body["metadata"]["uid"] = uid;
                    body["metadata"]["resourceVersion"] = json!(rv);
                    self.cegps.insert(name.clone(), body.clone());
                    self.writes.push(key);
                    self.watch(WatchEvent::Apply(Object::Cegp(body)));
                }
                CegpWrite::Delete { name, uid } => {
                    let key = format!("cegp-delete/{name}");
                    let stored = self.cegps.get(name).expect("deletes only what it saw");
                    assert_eq!(stored["metadata"]["labels"][MANAGED_BY], "egressc");
                    assert_eq!(stored["metadata"]["uid"].as_str(), uid.as_deref());
                    if self.fails(&key, Written::Cegp(name.clone())) {
                        continue;
                    }
                    self.writes.push(key);
                    self.user_deletes_cegp(name);
                }
            }
        }
    }

    /// Every step: at most one node carries each gateway's active label, and no policy's
    /// status says it is compiled unless egressc's CEGP of its name exists.
    fn check_invariants(&self) {
        for gw in self.gateways.keys() {
            let key = active_for_label(gw);
            let carriers = self
                .nodes
                .values()
                .filter(|(_, labels)| labels.contains_key(&key))
                .count();
            assert!(carriers <= 1, "{gw} is active on {carriers} nodes");
        }
        for (name, policy) in &self.policies {
            if self.ready(policy).0 == "True" {
                let cegp = self.cegps.get(name);
                assert!(
                    cegp.is_some_and(|c| c["metadata"]["labels"][MANAGED_BY] == "egressc"),
                    "{name} is Ready without its CEGP"
                );
            }
        }
    }

    /// `(status, reason, lastTransitionTime)` of `object`'s `Ready` condition.
    fn ready(&self, object: &Value) -> (String, String, String) {
        condition(object, "Ready")
    }

    fn policy_ready(&self, name: &str) -> (String, String, String) {
        self.ready(&self.policies[name])
    }

    fn gateway_condition(&self, name: &str, type_: &str) -> (String, String, String) {
        condition(&self.gateways[name], type_)
    }

    fn carrier(&self, gateway: &str) -> Option<String> {
        let key = active_for_label(gateway);
        self.nodes
            .iter()
            .find(|(_, (_, labels))| labels.contains_key(&key))
            .map(|(name, _)| name.clone())
    }

    fn events_since(&self, secs: i64) -> Vec<(String, String, bool)> {
        self.events
            .iter()
            .filter(|(at, _)| *at >= secs)
            .map(|(_, e)| {
                let name = e.regarding.name.clone().unwrap_or_default();
                (name, e.reason.clone(), e.warning)
            })
            .collect()
    }
}

fn name_of(object: &Value) -> String {
    object["metadata"]["name"]
        .as_str()
        .expect("named")
        .to_owned()
}

fn cilium_pod(node: &str) -> Object {
    Object::CiliumPod(typed(json!({
        "metadata": {"name": format!("cilium-{node}"), "namespace": "kube-system"},
        "spec": {"nodeName": node, "containers": []},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]}
    })))
}

/// A status merge patch as the API server applies it (top-level status keys replaced).
fn merge_status(object: &mut Value, body: &Value, rv: &str) {
    let status = object
        .as_object_mut()
        .expect("object")
        .entry("status")
        .or_insert_with(|| json!({}));
    for (key, value) in body["status"].as_object().expect("a status patch") {
        status[key] = value.clone();
    }
    object["metadata"]["resourceVersion"] = json!(rv);
}

fn condition(object: &Value, type_: &str) -> (String, String, String) {
    let found = object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_));
    let text = |c: &Value, key: &str| c[key].as_str().unwrap_or_default().to_owned();
    found.map_or_else(Default::default, |c| {
        (
            text(c, "status"),
            text(c, "reason"),
            text(c, "lastTransitionTime"),
        )
    })
}

fn two_policies() -> Sim {
    Sim::new(
        &[gateway("gw", "eth0", 1)],
        &[
            policy("p1", "gw", "198.51.100.0/24", 1),
            policy("p2", "gw", "203.0.113.0/24", 1),
        ],
    )
}

#[test]
fn a_cluster_converges_then_node_events_cause_no_writes_and_no_cegp_pass() {
    let mut sim = two_policies();
    sim.run(2);
    let carrier = sim.carrier("gw").expect("gw is carried");
    let gw = &sim.gateways["gw"];
    assert_eq!(gw["status"]["activeNodeName"], json!(carrier));
    assert_eq!(sim.gateway_condition("gw", "Ready").0, "True");
    assert_eq!(
        sim.gateway_condition("gw", "Accepted"),
        Default::default(),
        "never refused: no Accepted condition"
    );
    for name in ["p1", "p2"] {
        assert_eq!(sim.policy_ready(name).1, "Compiled");
        let cegp = &sim.cegps[name];
        assert_eq!(
            cegp["metadata"]["ownerReferences"][0]["uid"],
            json!(format!("uid-{name}"))
        );
        assert_eq!(cegp["metadata"]["labels"][MANAGED_BY], "egressc");
    }
    // Steady: heartbeats every step, nothing written, no CEGP pass (that would recount the
    // orphan policies).
    for _ in 0..5 {
        sim.step();
        assert!(sim.writes.is_empty(), "{:?}", sim.writes);
        assert_eq!(sim.plans.1.orphan_policies, None);
    }
}

#[test]
fn an_invalid_policy_is_not_ready_gets_no_cegp_and_a_deleted_policy_loses_its_cegp() {
    let mut sim = Sim::new(
        &[gateway("gw", "eth0", 1)],
        &[
            policy("p1", "gw", "198.51.100.0/24", 1),
            policy("bad", "gw", "not-a-cidr", 1),
        ],
    );
    sim.run(1);
    let (status, reason, _) = sim.policy_ready("bad");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "InvalidSpec"));
    assert!(!sim.cegps.contains_key("bad"));
    assert!(
        sim.events_since(0)
            .contains(&("bad".to_owned(), "InvalidSpec".to_owned(), true)),
        "{:?}",
        sim.events
    );
    assert!(sim.cegps.contains_key("p1"));
    sim.user_deletes_policy("p1");
    sim.step();
    assert!(
        !sim.cegps.contains_key("p1"),
        "the CEGP of a deleted policy is deleted"
    );
    assert_eq!(sim.writes, ["cegp-delete/p1"]);
}

#[test]
fn an_invalid_edit_keeps_the_last_good_cegp_and_the_transition_time_moves_only_on_a_flip() {
    let mut sim = two_policies();
    sim.run(1);
    let (status, _, compiled_at) = sim.policy_ready("p1");
    assert_eq!(status, "True");
    let cegp_before = sim.cegps["p1"].clone();
    // Unchanged status: nothing written, the time stays.
    sim.run(3);
    assert_eq!(sim.policy_ready("p1").2, compiled_at);
    // A broken edit: Ready flips to False at this step's time, the CEGP stays as it was.
    sim.user_applies(policy("p1", "gw", "not-a-cidr", 2));
    sim.step();
    let (status, reason, refused_at) = sim.policy_ready("p1");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "InvalidSpec"));
    assert_eq!(refused_at, sim.wall_text());
    assert_ne!(refused_at, compiled_at);
    assert_eq!(
        sim.cegps["p1"]["spec"], cegp_before["spec"],
        "last good CEGP kept"
    );
    // Broken differently: the message changes, the status does not, so the time stays.
    sim.run(2);
    sim.user_applies(policy("p1", "gw", "still-not-a-cidr", 3));
    sim.step();
    assert!(sim.writes.contains(&"policy-status/p1".to_owned()));
    assert_eq!(sim.policy_ready("p1").2, refused_at);
    // Fixed with a new destination: True again at a new time, and the CEGP follows.
    sim.run(2);
    sim.user_applies(policy("p1", "gw", "192.0.2.0/24", 4));
    sim.step();
    let (status, _, fixed_at) = sim.policy_ready("p1");
    assert_eq!(status, "True");
    assert_eq!(fixed_at, sim.wall_text());
    assert_eq!(
        sim.cegps["p1"]["spec"]["destinationCIDRs"],
        json!(["192.0.2.0/24"])
    );
    let events = sim.events_since(0);
    assert!(events.contains(&("p1".to_owned(), "InvalidSpec".to_owned(), true)));
    assert!(events.contains(&("p1".to_owned(), "Valid".to_owned(), false)));
}

#[test]
fn a_gateway_change_updates_the_cegps_of_its_policies_only() {
    let mut sim = Sim::new(
        &[gateway("gw", "eth0", 1), gateway("other", "eth0", 1)],
        &[
            policy("p1", "gw", "198.51.100.0/24", 1),
            policy("p2", "gw", "203.0.113.0/24", 1),
            policy("q", "other", "203.0.113.0/24", 1),
        ],
    );
    sim.run(1);
    assert!(sim.cegps["p1"]["spec"].to_string().contains("eth0"));
    sim.user_applies(gateway("gw", "eth1", 2));
    sim.step();
    let mut cegp_writes: Vec<&str> = sim
        .writes
        .iter()
        .filter(|w| w.starts_with("cegp"))
        .map(String::as_str)
        .collect();
    cegp_writes.sort_unstable();
    assert_eq!(cegp_writes, ["cegp/p1", "cegp/p2"]);
    for name in ["p1", "p2"] {
        let spec = sim.cegps[name]["spec"].to_string();
        assert!(spec.contains("eth1") && !spec.contains("eth0"), "{spec}");
    }
    assert!(sim.cegps["q"]["spec"].to_string().contains("eth0"));
    // An invalid gateway edit is refused (Accepted=False) and changes no CEGP.
    let mut broken = gateway("gw", "eth1", 3);
    broken["spec"]["sourceIP"]["mode"] = json!("Nonsense");
    sim.user_applies(broken);
    sim.step();
    let (status, reason, _) = sim.gateway_condition("gw", "Accepted");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "InvalidSpec"));
    assert!(
        !sim.writes.iter().any(|w| w.starts_with("cegp")),
        "{:?}",
        sim.writes
    );
    assert_eq!(
        sim.gateway_condition("gw", "Ready").0,
        "True",
        "last good gateway kept"
    );
}

#[test]
fn gateway_ready_keeps_its_transition_time_on_a_failover_and_moves_it_when_no_node_is_left() {
    let mut sim = two_policies();
    sim.run(1);
    let (_, _, ready_at) = sim.gateway_condition("gw", "Ready");
    let first = sim.carrier("gw").expect("carried");
    sim.run(2);
    sim.set_ready(&first, false);
    sim.step();
    let second = sim.carrier("gw").expect("failed over");
    assert_ne!(first, second);
    assert_eq!(
        sim.gateways["gw"]["status"]["activeNodeName"],
        json!(second)
    );
    let (status, _, at) = sim.gateway_condition("gw", "Ready");
    assert_eq!((status.as_str(), at.as_str()), ("True", ready_at.as_str()));
    let others: Vec<String> = sim.nodes.keys().filter(|n| **n != first).cloned().collect();
    sim.run(2);
    for node in &others {
        sim.set_ready(node, false);
    }
    sim.step();
    let (status, _, at) = sim.gateway_condition("gw", "Ready");
    assert_eq!(status, "False");
    assert_eq!(at, sim.wall_text(), "the flip moves the time");
    assert_eq!(sim.carrier("gw"), None);
}

#[test]
fn failed_status_and_cegp_writes_are_reported_and_planned_again() {
    // A new policy's status and CEGP fail on the first try.
    let mut sim = Sim::new(&[gateway("gw", "eth0", 1)], &[]);
    sim.fail.insert("policy-status/p1".to_owned());
    sim.fail.insert("cegp/p1".to_owned());
    sim.user_applies(policy("p1", "gw", "198.51.100.0/24", 1));
    sim.step();
    assert!(sim.fail.is_empty(), "both writes were tried");
    assert!(!sim.cegps.contains_key("p1"));
    assert_eq!(sim.policy_ready("p1"), Default::default());
    sim.step();
    assert!(
        sim.writes.contains(&"cegp/p1".to_owned()),
        "{:?}",
        sim.writes
    );
    assert!(sim.writes.contains(&"policy-status/p1".to_owned()));
    assert_eq!(sim.policy_ready("p1").1, "Compiled");
    sim.step();
    assert!(sim.writes.is_empty(), "{:?}", sim.writes);
    // A failed gateway status write is planned again too.
    sim.fail.insert("gateway-status/gw".to_owned());
    let first = sim.carrier("gw").expect("carried");
    sim.set_ready(&first, false);
    sim.step();
    assert!(sim.fail.is_empty());
    assert_eq!(sim.gateways["gw"]["status"]["activeNodeName"], json!(first));
    sim.step();
    let now = sim.carrier("gw").expect("carried");
    assert_eq!(sim.gateways["gw"]["status"]["activeNodeName"], json!(now));
}

#[test]
fn a_foreign_cegp_is_reported_never_written_and_replaced_once_gone() {
    let mut sim = two_policies();
    sim.run(1);
    // Someone else's CEGP appears under a policy's name (egressc's was deleted first).
    sim.user_deletes_cegp("p2");
    sim.user_applies(json!({
        "apiVersion": "cilium.io/v2", "kind": "CiliumEgressGatewayPolicy",
        "metadata": {"name": "p2", "labels": {"app": "hand-written"}},
        "spec": {"destinationCIDRs": ["192.0.2.0/24"]}
    }));
    sim.step();
    let (status, reason, _) = sim.policy_ready("p2");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "CiliumPolicyConflict")
    );
    assert!(sim.events_since(sim.secs).contains(&(
        "p2".to_owned(),
        "CiliumPolicyConflict".to_owned(),
        true
    )));
    assert_eq!(sim.cegps["p2"]["metadata"]["labels"]["app"], "hand-written");
    sim.run(3);
    assert!(sim.writes.is_empty(), "reported once: {:?}", sim.writes);
    sim.user_deletes_cegp("p2");
    sim.step();
    assert_eq!(sim.policy_ready("p2").1, "Compiled");
    assert_eq!(sim.cegps["p2"]["metadata"]["labels"][MANAGED_BY], "egressc");
}

#[test]
fn a_cegp_changed_by_someone_else_is_restored_without_a_full_pass() {
    let mut sim = two_policies();
    sim.run(1);
    let mut edited = sim.cegps["p1"].clone();
    edited["spec"]["destinationCIDRs"] = json!(["192.0.2.0/24"]);
    sim.user_applies(edited);
    sim.step();
    assert_eq!(sim.writes, ["cegp/p1"]);
    assert_eq!(
        sim.plans.1.orphan_policies, None,
        "only the changed CEGP was compared"
    );
    assert_eq!(
        sim.cegps["p1"]["spec"]["destinationCIDRs"],
        json!(["198.51.100.0/24"])
    );
}

#[test]
fn an_answered_label_patch_is_not_planned_again_until_its_node_has_an_event() {
    let mut sim = two_policies();
    sim.run(2);
    let carrier = sim.carrier("gw").expect("gw is carried");
    // The carrier fails; the core plans the move, the API server answers every patch, and
    // the echoes have not come back yet.
    sim.set_ready(&carrier, false);
    sim.secs += 1;
    let now = sim.now();
    let first = sim.core.reconcile(now);
    assert!(!first.labels.is_empty(), "the failover is planned");
    for write in &first.labels {
        sim.core
            .handle(now, Input::LabelsAnswered(write.patch.clone()));
    }
    let again = sim.core.reconcile(now);
    assert!(
        again.labels.is_empty(),
        "answered patches are not sent again while their echoes are on the way: {:?}",
        again.labels
    );
    // An event of an object that shows the patch did not land (here: the old labels) makes
    // the core plan that object's patch again.
    let node = first.labels[0].patch.node.clone();
    let object = match first.labels[0].patch.kind {
        egressc_core::controller::NodeKind::Node => sim.node(&node),
        egressc_core::controller::NodeKind::CiliumNode => sim.cilium_node(&node),
    };
    sim.watch(WatchEvent::Apply(object));
    let replanned = sim.core.reconcile(now);
    assert_eq!(
        replanned
            .labels
            .iter()
            .map(|w| &w.patch)
            .collect::<Vec<_>>(),
        vec![&first.labels[0].patch]
    );
}
