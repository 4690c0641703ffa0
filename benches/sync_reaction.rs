//! Sync reaction benchmarks: the CPU work `egressc sync` does between a watch event and the
//! writes it causes, on 5,000 nodes (10 groups of 500, each with a Node, CiliumNode,
//! cilium-agent Pod and heartbeat Lease), 1,000 gateways (100 per group) and 10,000 policies
//! (10 per gateway). The index is driven exactly as the watch loop drives it:
//! `Index::handle` per event, then `Controller::reconcile` and the status scan.
//!
//! Run with `cargo bench --bench sync_reaction`. Network and API server time are not part of
//! these numbers (see BENCHMARKS.md for the end-to-end reaction).

use std::time::Duration;

use egressc::controller::{Controller, Instant, NodeKind, Plan, Timing};
use egressc::sync::index::{Index, Object, Source, WatchEvent};
use egressc::sync::objects::Verdict;
use egressc::sync::statuses;
use egressc::validate::Options;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{Value, json};

const GROUPS: usize = 10;
const NODES_PER_GROUP: usize = 500;
const GATEWAYS_PER_GROUP: usize = 100;
const POLICIES_PER_GATEWAY: usize = 10;

fn main() {
    divan::main();
}

fn node_name(group: usize, i: usize) -> String {
    format!("node-{group}-{i:04}")
}

fn node_json(name: &str, group: usize, ready: bool, labels: &Value) -> Value {
    let mut all =
        json!({"node.example.com/group": format!("group-{group}"), "kubernetes.io/os": "linux"});
    if let (Some(all), Some(ours)) = (all.as_object_mut(), labels.as_object()) {
        all.extend(ours.clone());
    }
    json!({
        "metadata": {"name": name, "labels": all},
        "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
    })
}

fn node(value: Value) -> Object {
    Object::Node(Box::new(
        serde_json::from_value(value).expect("bench Node is well-formed"),
    ))
}

fn heartbeat(name: &str, renew: &str) -> Object {
    Object::NodeLease(Box::new(
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": name, "renewTime": renew}
        }))
        .expect("bench Lease is well-formed"),
    ))
}

fn cilium_pod(name: &str) -> Object {
    Object::CiliumPod(Box::new(
        serde_json::from_value(json!({
            "metadata": {"name": format!("cilium-{name}"), "namespace": "kube-system"},
            "spec": {"nodeName": name, "containers": []},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .expect("bench Pod is well-formed"),
    ))
}

fn gateway(group: usize, i: usize) -> Value {
    json!({
        "apiVersion": "network.deckhouse.io/v1alpha1", "kind": "EgressGateway",
        "metadata": {"name": format!("gw-{group}-{i:03}"), "uid": format!("gw-uid-{group}-{i}"),
                     "generation": 1, "resourceVersion": "1"},
        "spec": {
            "nodeSelector": {"node.example.com/group": format!("group-{group}")},
            "sourceIP": {"mode": "PrimaryIPFromEgressGatewayNodeInterface",
                         "primaryIPFromEgressGatewayNodeInterface": {"interfaceName": "eth0"}}
        }
    })
}

fn policy(gateway: &str, n: usize) -> Value {
    json!({
        "apiVersion": "network.deckhouse.io/v1alpha1", "kind": "EgressGatewayPolicy",
        "metadata": {"name": format!("{gateway}-p{n}"), "uid": format!("p-uid-{gateway}-{n}"),
                     "generation": 1, "resourceVersion": "1"},
        "spec": {
            "egressGatewayName": gateway,
            "destinationCIDRs": [format!("203.0.113.{}/32", n % 256), "198.51.100.0/24"],
            "selectors": [{"podSelector": {"matchLabels": {"app": format!("app-{n}")}}}]
        }
    })
}

/// Every watch's initial list, in the order the watches usually complete.
fn initial_events() -> Vec<WatchEvent> {
    let mut by_source: Vec<(Source, Vec<Object>)> =
        Source::ALL.iter().map(|s| (*s, Vec::new())).collect();
    let mut push = |source: Source, object: Object| {
        if let Some((_, list)) = by_source.iter_mut().find(|(s, _)| *s == source) {
            list.push(object);
        }
    };
    for group in 0..GROUPS {
        for i in 0..NODES_PER_GROUP {
            let name = node_name(group, i);
            push(
                Source::Node,
                node(node_json(&name, group, true, &json!({}))),
            );
            push(
                Source::NodeLease,
                heartbeat(&name, "2026-01-01T00:00:00.000000Z"),
            );
            push(
                Source::CiliumNode,
                Object::CiliumNode(json!({"apiVersion": "cilium.io/v2", "kind": "CiliumNode",
                                          "metadata": {"name": name}})),
            );
            push(Source::CiliumPod, cilium_pod(&name));
        }
        for i in 0..GATEWAYS_PER_GROUP {
            let gw = gateway(group, i);
            let gw_name = gw["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            push(Source::Gateway, Object::Gateway(gw));
            for n in 0..POLICIES_PER_GATEWAY {
                push(Source::Policy, Object::Policy(policy(&gw_name, n)));
            }
        }
    }
    let mut events = Vec::new();
    for (source, objects) in by_source {
        events.push(WatchEvent::Init(source));
        events.extend(objects.into_iter().map(WatchEvent::Apply));
        events.push(WatchEvent::InitDone(source));
    }
    events
}

fn at(secs: u64) -> Instant {
    Instant(Duration::from_secs(secs))
}

/// The wall clock of the simulated reconciles (only stored in condition timestamps).
fn wall() -> Time {
    Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)
}

fn labels_after(observed: Option<&Value>, set: &[String], remove: &[String]) -> Value {
    let mut labels = observed
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for key in remove {
        labels.remove(key);
    }
    for key in set {
        labels.insert(key.clone(), json!(""));
    }
    Value::Object(labels)
}

/// Feeds the writes of `plan` back as the watch events the API server would send: the label
/// patches on Nodes and CiliumNodes, and the gateway and policy status patches.
fn echo(index: &mut Index, plan: &Plan, now: Instant) {
    let bodies = statuses::bodies(&mut *index, plan, &wall());
    for patch in &plan.labels {
        let set: Vec<String> = patch.set.keys().cloned().collect();
        let remove: Vec<String> = patch.remove.iter().cloned().collect();
        let observed = index.node_labels.get(&(patch.kind, patch.node.clone()));
        let observed = observed.map(|l| json!(l));
        let labels = labels_after(observed.as_ref(), &set, &remove);
        let object = match patch.kind {
            NodeKind::Node => {
                let group = group_of(&patch.node);
                node(node_json(&patch.node, group, true, &labels))
            }
            NodeKind::CiliumNode => Object::CiliumNode(json!({
                "apiVersion": "cilium.io/v2", "kind": "CiliumNode",
                "metadata": {"name": patch.node, "labels": labels}})),
        };
        index.handle(now, WatchEvent::Apply(object));
    }
    for (name, body) in bodies.gateways {
        if let Some(mut object) = index.gateways.object(&name).cloned() {
            object["status"] = body["status"].clone();
            index.handle(now, WatchEvent::Apply(Object::Gateway(object)));
        }
    }
    for (name, body) in bodies.policies {
        if let Some(mut object) = index.policies.object(&name) {
            object["status"] = body["status"].clone();
            index.handle(now, WatchEvent::Apply(Object::Policy(object)));
        }
    }
}

fn group_of(node: &str) -> usize {
    node.split('-')
        .nth(1)
        .and_then(|g| g.parse().ok())
        .unwrap_or_default()
}

/// The cluster after its first reconcile, with every write observed back: the steady state
/// in which one event arrives.
fn steady() -> Index {
    let mut index = Index::new(Controller::new(Timing::default()), Options::default());
    for event in initial_events() {
        index.handle(at(0), event);
    }
    assert!(index.synced(), "every watch listed");
    index.controller.set_synced(at(0), true);
    let plan = index.controller.reconcile(at(1));
    assert_eq!(
        plan.statuses.len(),
        GROUPS * GATEWAYS_PER_GROUP,
        "every gateway elected"
    );
    echo(&mut index, &plan, at(1));
    let plan = index.controller.reconcile(at(2));
    assert!(plan.has_no_writes(), "the echo leaves nothing to write");
    // The status echoes are looked at once (as the loop's next step would), so that the
    // benches below time their own event, not this one-time scan of 10,000 policies.
    let bodies = statuses::bodies(&mut index, &plan, &wall());
    assert!(
        bodies.gateways.is_empty() && bodies.policies.is_empty(),
        "the echo leaves no status to write"
    );
    assert!(
        index.policies.verdicts().all(|(_, v)| *v == Verdict::Valid),
        "every policy valid"
    );
    index
}

/// The node holding `gateway`'s active label.
fn holder(index: &Index, gateway: &str) -> String {
    let key = egressc::model::labels::active_for_label(gateway);
    index
        .node_labels
        .iter()
        .find(|((kind, _), labels)| *kind == NodeKind::Node && labels.contains_key(&key))
        .map(|((_, name), _)| name.clone())
        .unwrap_or_default()
}

/// Listing every watch and the first reconcile (the plan only, no writes).
#[divan::bench(sample_count = 3, sample_size = 1)]
fn initial_list_and_first_plan(bencher: divan::Bencher) {
    bencher
        .with_inputs(initial_events)
        .bench_local_values(|events| {
            let mut index = Index::new(Controller::new(Timing::default()), Options::default());
            for event in events {
                index.handle(at(0), event);
            }
            index.controller.set_synced(at(0), true);
            index.controller.reconcile(at(1))
        });
}

/// A gateway's active node goes NotReady: the Node event, reconcile, and the status scan,
/// up to the plan that moves the label.
#[divan::bench(sample_count = 20, sample_size = 1)]
fn node_not_ready_to_plan(bencher: divan::Bencher) {
    let index = steady();
    let failed = holder(&index, "gw-3-042");
    let group = group_of(&failed);
    bencher
        .with_inputs(|| index.clone())
        .bench_local_values(|mut index| {
            let event = node(node_json(&failed, group, false, &json!({})));
            index.handle(at(3), WatchEvent::Apply(event));
            let plan = index.controller.reconcile(at(3));
            let bodies = statuses::bodies(&mut index, &plan, &wall());
            assert!(!plan.labels.is_empty() && !bodies.gateways.is_empty());
            (index, plan, bodies)
        });
}

/// One kubelet heartbeat renewal (5,000 nodes renewing every 10 s send 500 per second):
/// the Lease event, reconcile and status scan; nothing to write.
#[divan::bench(sample_count = 50, sample_size = 1)]
fn heartbeat_renewal(bencher: divan::Bencher) {
    let mut index = steady();
    let mut tick = 0u64;
    bencher.bench_local(|| {
        tick += 1;
        let name = node_name((tick as usize) % GROUPS, (tick as usize) % NODES_PER_GROUP);
        let renew = format!("2026-01-01T00:00:{:02}.{:06}Z", tick % 60, tick % 1_000_000);
        index.handle(at(3), WatchEvent::Apply(heartbeat(&name, &renew)));
        let plan = index.controller.reconcile(at(3));
        let bodies = statuses::bodies(&mut index, &plan, &wall());
        assert!(plan.has_no_writes() && bodies.gateways.is_empty() && bodies.policies.is_empty());
    });
}

/// The echo of one policy status write (the controller writes one per policy at start):
/// the policy event, reconcile and status scan.
#[divan::bench(sample_count = 50, sample_size = 1)]
fn policy_status_echo(bencher: divan::Bencher) {
    let mut index = steady();
    let mut tick = 0u64;
    bencher.bench_local(|| {
        tick += 1;
        let name = format!("gw-{}-{:03}-p{}", tick % 10, tick % 100, tick % 10);
        let Some(mut object) = index.policies.object(&name) else {
            return;
        };
        object["metadata"]["resourceVersion"] = json!(format!("{}", tick + 1));
        index.handle(at(3), WatchEvent::Apply(Object::Policy(object)));
        let plan = index.controller.reconcile(at(3));
        let bodies = statuses::bodies(&mut index, &plan, &wall());
        assert!(plan.has_no_writes() && bodies.policies.is_empty());
    });
}

/// Parts of one reaction, measured apart on the steady cluster with nothing changed: the
/// core's reconcile alone.
#[divan::bench(sample_count = 50, sample_size = 1)]
fn part_reconcile_unchanged(bencher: divan::Bencher) {
    let mut index = steady();
    bencher.bench_local(|| index.controller.reconcile(at(3)));
}

/// The status scan alone (every gateway's and policy's stored conditions against the wanted).
#[divan::bench(sample_count = 50, sample_size = 1)]
fn part_status_scan_unchanged(bencher: divan::Bencher) {
    let mut index = steady();
    let plan = Plan::default();
    bencher.bench_local(|| statuses::bodies(&mut index, &plan, &wall()));
}
