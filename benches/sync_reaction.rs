//! Sync reaction benchmarks: the CPU work `egressc sync` does between a watch event and the
//! writes it causes, on 5,000 nodes (10 groups of 500, each with a Node, CiliumNode,
//! cilium-agent Pod and heartbeat Lease), 1,000 gateways (100 per group) and 10,000 policies
//! (10 per gateway). The core is driven exactly as the watch loop drives it:
//! `SyncCore::handle` per event, then both stages of a reconcile (`reconcile`: labels and VIP
//! Leases; `reconcile_after_labels`: statuses, Events and CEGPs).
//!
//! Run with `cargo bench --bench sync_reaction`. Network and API server time are not part of
//! these numbers (see BENCHMARKS.md for the end-to-end reaction).

use std::time::Duration;

use egressc::controller::{Instant, NodeKind, Timing};
use egressc::sync::index::{Object, Source, WatchEvent};
use egressc::sync::objects::Verdict;
use egressc::sync::sync_core::{Input, Plan, SyncCore};
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

/// Feeds the writes of `plan` back as the watch events the API server would send: the label
/// patches on Nodes and CiliumNodes, and the gateway and policy status patches.
fn echo(core: &mut SyncCore, plan: &Plan, now: Instant) {
    for write in &plan.labels {
        let patch = &write.patch;
        let labels = json!(write.labels);
        let object = match patch.kind {
            NodeKind::Node => {
                let group = group_of(&patch.node);
                node(node_json(&patch.node, group, true, &labels))
            }
            NodeKind::CiliumNode => Object::CiliumNode(json!({
                "apiVersion": "cilium.io/v2", "kind": "CiliumNode",
                "metadata": {"name": patch.node, "labels": labels}})),
        };
        core.handle(now, Input::Watch(WatchEvent::Apply(object)));
    }
    for write in &plan.gateway_statuses {
        if let Some(mut object) = core.index().gateways.object(&write.name) {
            object["status"] = write.body.value()["status"].clone();
            let event = WatchEvent::Apply(Object::Gateway(object));
            core.handle(now, Input::Watch(event));
        }
    }
    for write in &plan.policy_statuses {
        if let Some(mut object) = core.index().policies.object(&write.name) {
            object["status"] = write.body.value()["status"].clone();
            let event = WatchEvent::Apply(Object::Policy(object));
            core.handle(now, Input::Watch(event));
        }
    }
}

/// Both stages of one reconcile at `now`, as the loop runs them.
fn reconcile(core: &mut SyncCore, now: Instant) -> (Plan, Plan) {
    let first = core.reconcile(now);
    (first, core.reconcile_after_labels(&wall()))
}

fn nothing_to_write(plan: &Plan) -> bool {
    plan.labels.is_empty()
        && plan.vip.is_empty()
        && plan.statuses() == 0
        && plan.events.is_empty()
        && plan.cegps.is_empty()
}

fn group_of(node: &str) -> usize {
    node.split('-')
        .nth(1)
        .and_then(|g| g.parse().ok())
        .unwrap_or_default()
}

/// The cluster after its first reconcile, with every write observed back (CEGPs are not
/// echoed: nothing reads them again until a gateway or policy changes): the steady state in
/// which one event arrives.
fn steady() -> SyncCore {
    let mut core = SyncCore::new(Timing::default(), Options::default()).expect("templates");
    for event in initial_events() {
        core.handle(at(0), Input::Watch(event));
    }
    assert!(core.synced(), "every watch listed");
    let (first, second) = reconcile(&mut core, at(1));
    assert_eq!(
        first.gateway_updates.len(),
        GROUPS * GATEWAYS_PER_GROUP,
        "every gateway elected"
    );
    echo(&mut core, &first, at(1));
    echo(&mut core, &second, at(1));
    let (first, second) = reconcile(&mut core, at(2));
    assert!(nothing_to_write(&first), "the echo leaves nothing to write");
    // The status echoes are looked at once (as the loop's next step would), so that the
    // benches below time their own event, not this one-time scan of 10,000 policies.
    assert!(
        nothing_to_write(&second),
        "the echo leaves no status to write"
    );
    assert!(
        core.index()
            .policies
            .verdicts()
            .all(|(_, v)| *v == Verdict::Valid),
        "every policy valid"
    );
    core
}

/// The node holding `gateway`'s active label.
fn holder(core: &SyncCore, gateway: &str) -> String {
    let key = egressc::model::labels::active_for_label(gateway);
    (0..GROUPS)
        .flat_map(|group| (0..NODES_PER_GROUP).map(move |i| node_name(group, i)))
        .find(|name| {
            core.observed_labels(NodeKind::Node, name)
                .is_some_and(|labels| labels.contains_key(&key))
        })
        .unwrap_or_default()
}

/// Listing every watch and the first reconcile (the plan only, no writes).
#[divan::bench(sample_count = 3, sample_size = 1)]
fn initial_list_and_first_plan(bencher: divan::Bencher) {
    bencher
        .with_inputs(initial_events)
        .bench_local_values(|events| {
            let mut core = SyncCore::new(Timing::default(), Options::default()).expect("templates");
            for event in events {
                core.handle(at(0), Input::Watch(event));
            }
            core.reconcile(at(1))
        });
}

/// The steady cluster and the node holding `gw-3-042`.
fn steady_and_holder() -> (SyncCore, String) {
    let core = steady();
    let failed = holder(&core, "gw-3-042");
    (core, failed)
}

/// The watch event of `node` going NotReady (built inside the timed part, as the watcher's
/// conversion is part of a reaction).
fn not_ready(name: &str) -> Input {
    let event = node(node_json(name, group_of(name), false, &json!({})));
    Input::Watch(WatchEvent::Apply(event))
}

/// A gateway's active node goes NotReady: the Node event and both reconcile stages, up to
/// the plan that moves the label.
#[divan::bench(sample_count = 20, sample_size = 1)]
fn node_not_ready_to_plan(bencher: divan::Bencher) {
    let (core, failed) = steady_and_holder();
    bencher
        .with_inputs(|| core.clone())
        .bench_local_values(|mut core| {
            core.handle(at(3), not_ready(&failed));
            let (first, second) = reconcile(&mut core, at(3));
            assert!(!first.labels.is_empty() && !second.gateway_statuses.is_empty());
            (core, first, second)
        });
}

/// The same event up to the first stage's plan only: what a failover's labels wait for (the
/// second stage runs after the label writes).
#[divan::bench(sample_count = 20, sample_size = 1)]
fn node_not_ready_to_labels(bencher: divan::Bencher) {
    let (core, failed) = steady_and_holder();
    bencher
        .with_inputs(|| core.clone())
        .bench_local_values(|mut core| {
            core.handle(at(3), not_ready(&failed));
            let first = core.reconcile(at(3));
            assert!(!first.labels.is_empty());
            (core, first)
        });
}

/// One kubelet heartbeat renewal (5,000 nodes renewing every 10 s send 500 per second):
/// the Lease event and both reconcile stages; nothing to write.
#[divan::bench(sample_count = 50, sample_size = 1)]
fn heartbeat_renewal(bencher: divan::Bencher) {
    let mut core = steady();
    let mut tick = 0u64;
    bencher.bench_local(|| {
        tick += 1;
        let name = node_name((tick as usize) % GROUPS, (tick as usize) % NODES_PER_GROUP);
        let renew = format!("2026-01-01T00:00:{:02}.{:06}Z", tick % 60, tick % 1_000_000);
        core.handle(
            at(3),
            Input::Watch(WatchEvent::Apply(heartbeat(&name, &renew))),
        );
        let (first, second) = reconcile(&mut core, at(3));
        assert!(nothing_to_write(&first) && nothing_to_write(&second));
    });
}

/// The echo of one policy status write (the controller writes one per policy at start):
/// the policy event and both reconcile stages.
#[divan::bench(sample_count = 50, sample_size = 1)]
fn policy_status_echo(bencher: divan::Bencher) {
    let mut core = steady();
    let mut tick = 0u64;
    bencher.bench_local(|| {
        tick += 1;
        let name = format!("gw-{}-{:03}-p{}", tick % 10, tick % 100, tick % 10);
        let Some(mut object) = core.index().policies.object(&name) else {
            return;
        };
        object["metadata"]["resourceVersion"] = json!(format!("{}", tick + 1));
        core.handle(
            at(3),
            Input::Watch(WatchEvent::Apply(Object::Policy(object))),
        );
        let (first, second) = reconcile(&mut core, at(3));
        assert!(nothing_to_write(&first) && nothing_to_write(&second));
    });
}

/// Parts of one reaction, measured apart on the steady cluster with nothing changed: the
/// first stage alone (the election's reconcile: labels and VIP Leases).
#[divan::bench(sample_count = 50, sample_size = 1)]
fn part_reconcile_unchanged(bencher: divan::Bencher) {
    let mut core = steady();
    bencher.bench_local(|| core.reconcile(at(3)));
}

/// The second stage alone (the gateway and policy status scans and CEGP decisions).
#[divan::bench(sample_count = 50, sample_size = 1)]
fn part_status_scan_unchanged(bencher: divan::Bencher) {
    let mut core = steady();
    bencher.bench_local(|| core.reconcile_after_labels(&wall()));
}
