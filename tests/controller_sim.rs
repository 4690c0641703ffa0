//! Deterministic simulations of the sync controller core with injected time: a small cluster
//! (kubelets, cilium-agents, VIP agents following docs/lease-protocol.md) is stepped every
//! 500 ms, the core's plans are applied to it, and safety invariants are checked at every step.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use egressc::controller::{
    Controller, Instant, NodeKind, NodeObservation, ObservedCondition, ObservedStatus, Plan,
    Timing, TransitionTime, VipLeaseObservation, VipWrite,
};
use egressc::model::catalog::{Gateway, SourceIp};
use egressc::model::labels::active_for_label;

const STEP: f64 = 0.5;
const GROUP: &str = "example.com/egress";

#[derive(Clone, Debug)]
struct SimNode {
    labels: BTreeMap<String, String>,
    ready: bool,
    cordoned: bool,
    powered: bool,
    cilium_ready: bool,
    vip_agent_ready: bool,
    heartbeat: u64,
}

#[derive(Clone, Debug, Default)]
struct SimLease {
    rv: u64,
    grant: Option<String>,
    holder: Option<String>,
    ready: Option<String>,
    renew: u64,
}

impl SimLease {
    fn observation(&self) -> VipLeaseObservation {
        VipLeaseObservation {
            resource_version: self.rv.to_string(),
            grant: self.grant.clone(),
            holder: self.holder.clone(),
            ready: self.ready.clone(),
            renew_time: Some(self.renew.to_string()),
        }
    }
}

struct Sim {
    core: Controller,
    steps: u64,
    nodes: BTreeMap<String, SimNode>,
    cilium_labels: BTreeMap<String, BTreeMap<String, String>>,
    gateways: BTreeMap<String, (Gateway, Option<ObservedStatus>)>,
    leases: BTreeMap<String, SimLease>,
    /// Per VIP gateway: node → instant its VIP expires (kernel lifetime).
    vips: BTreeMap<String, BTreeMap<String, f64>>,
    api_up: bool,
    /// Every (time, gateway, from, to) label move applied to Node objects.
    moves: Vec<(f64, String, Option<String>, Option<String>)>,
    grants: Vec<(f64, String, String)>,
    plans: Vec<Plan>,
}

fn gateway(name: &str, vip: bool) -> Gateway {
    Gateway {
        name: name.to_owned(),
        node_selector: BTreeMap::from([(GROUP.to_owned(), "yes".to_owned())]),
        source: if vip {
            SourceIp::VirtualIp {
                ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
                interfaces: vec![],
            }
        } else {
            SourceIp::PrimaryInterface {
                interface: "eth0".to_owned(),
            }
        },
    }
}

impl Sim {
    /// `nodes` healthy nodes in the group, the given gateways, optional pre-existing labels.
    fn new(nodes: &[&str], gateways: &[Gateway], labels: &[(&str, &str)]) -> Self {
        let mut sim = Sim {
            core: Controller::new(Timing::default()),
            steps: 0,
            nodes: BTreeMap::new(),
            cilium_labels: BTreeMap::new(),
            gateways: BTreeMap::new(),
            leases: BTreeMap::new(),
            vips: BTreeMap::new(),
            api_up: true,
            moves: Vec::new(),
            grants: Vec::new(),
            plans: Vec::new(),
        };
        for name in nodes {
            let mut node_labels = BTreeMap::from([(GROUP.to_owned(), "yes".to_owned())]);
            for (node, gw) in labels {
                if node == name {
                    node_labels.insert(active_for_label(gw), String::new());
                }
            }
            sim.cilium_labels
                .insert(name.to_string(), node_labels.clone());
            sim.nodes.insert(
                name.to_string(),
                SimNode {
                    labels: node_labels,
                    ready: true,
                    cordoned: false,
                    powered: true,
                    cilium_ready: true,
                    vip_agent_ready: true,
                    heartbeat: 0,
                },
            );
        }
        for gw in gateways {
            sim.gateways.insert(gw.name.clone(), (gw.clone(), None));
        }
        sim.feed_all();
        sim.core.set_synced(sim.now(), true);
        sim
    }

    fn now(&self) -> Instant {
        Instant::from_secs_f64(self.t())
    }

    fn t(&self) -> f64 {
        self.steps as f64 * STEP
    }

    fn feed_all(&mut self) {
        let now = self.now();
        let names: Vec<String> = self.nodes.keys().cloned().collect();
        for name in names {
            self.feed_node(&name);
            let node = &self.nodes[&name];
            self.core
                .apply_node_lease(now, &name, &node.heartbeat.to_string());
            self.core
                .apply_cilium_node(now, &name, self.cilium_labels[&name].clone());
        }
        for (gw, status) in self.gateways.values() {
            self.core.apply_gateway(now, gw.clone(), 1, status.clone());
        }
        for (gw, lease) in &self.leases {
            self.core.apply_vip_lease(now, gw, lease.observation());
        }
    }

    fn feed_node(&mut self, name: &str) {
        let now = self.now();
        let node = &self.nodes[name];
        self.core.apply_node(
            now,
            NodeObservation {
                name: name.to_owned(),
                labels: node.labels.clone(),
                ready: node.ready,
                unschedulable: node.cordoned,
                deleting: false,
            },
        );
        let cilium_ready = node.cilium_ready && node.powered;
        let vip_ready = node.vip_agent_ready && node.powered;
        self.core
            .apply_cilium_pod(now, &format!("cilium-{name}"), name, cilium_ready);
        self.core
            .apply_vip_agent_pod(now, &format!("vip-agent-{name}"), name, vip_ready);
    }

    fn change_node(&mut self, name: &str, change: impl FnOnce(&mut SimNode)) {
        change(self.nodes.get_mut(name).expect("node exists"));
        if self.api_up {
            self.feed_node(name);
        }
    }

    fn run(&mut self, seconds: f64) {
        let steps = (seconds / STEP).round() as u64;
        for _ in 0..steps {
            self.step();
        }
    }

    fn step(&mut self) {
        self.steps += 1;
        let now = self.now();
        // Kubelets renew their heartbeat every 10 s while powered.
        if self.steps.is_multiple_of(20) {
            for (name, node) in self.nodes.iter_mut().filter(|(_, n)| n.powered) {
                node.heartbeat += 1;
                if self.api_up {
                    self.core
                        .apply_node_lease(now, name, &node.heartbeat.to_string());
                }
            }
        }
        self.run_agents();
        if !self.api_up {
            // The core still ticks; it must not write.
            let plan = self.core.reconcile(now);
            assert!(plan.has_no_writes(), "wrote while not synced: {plan:?}");
            return;
        }
        let plan = self.core.reconcile(now);
        self.apply(plan);
        self.check_invariants();
    }

    /// VIP agents per docs/lease-protocol.md (acquire, bring up, renew, release).
    fn run_agents(&mut self) {
        let t = self.t();
        for (gw, lease) in self.leases.iter_mut() {
            let vips = self.vips.entry(gw.clone()).or_default();
            vips.retain(|_, expiry| *expiry > t);
            let before = lease.clone();
            for (name, node) in &self.nodes {
                let agent_alive = node.powered && node.vip_agent_ready && self.api_up;
                if !agent_alive {
                    continue;
                }
                let granted = lease.grant.as_deref() == Some(name.as_str());
                let holding = lease.holder.as_deref() == Some(name.as_str());
                if granted && (lease.holder.is_none() || holding) {
                    lease.holder = Some(name.clone());
                    lease.renew += 1;
                    lease.rv += 1;
                    // VIP lifetime: 2 s from the send of this successful renewal.
                    vips.insert(name.clone(), t + 2.0);
                    lease.ready = Some(name.clone());
                } else if holding && !granted {
                    vips.remove(name);
                    lease.holder = None;
                    lease.ready = None;
                    lease.rv += 1;
                } else if !holding {
                    vips.remove(name);
                }
            }
            if lease.rv != before.rv && self.api_up {
                self.core
                    .apply_vip_lease(Instant::from_secs_f64(t), gw, lease.observation());
            }
        }
    }

    fn apply(&mut self, plan: Plan) {
        let now = self.now();
        let t = self.t();
        for patch in &plan.labels {
            let labels = match patch.kind {
                NodeKind::Node => match self.nodes.get_mut(&patch.node) {
                    Some(node) => &mut node.labels,
                    None => continue,
                },
                NodeKind::CiliumNode => match self.cilium_labels.get_mut(&patch.node) {
                    Some(labels) => labels,
                    None => continue,
                },
            };
            for key in &patch.remove {
                labels.remove(key);
            }
            for (key, value) in &patch.set {
                labels.insert(key.clone(), value.clone());
            }
            if patch.kind == NodeKind::Node {
                for gw in self.gateways.keys() {
                    let key = active_for_label(gw);
                    if patch.set.contains_key(&key) {
                        self.moves
                            .push((t, gw.clone(), None, Some(patch.node.clone())));
                        if self.gateways[gw].0.is_vip() {
                            let vip_up = self
                                .vips
                                .get(gw)
                                .is_some_and(|v| v.contains_key(&patch.node));
                            assert!(
                                vip_up,
                                "t={t}: label for {gw} moved to {} before its VIP was up",
                                patch.node
                            );
                        }
                    }
                    if patch.remove.contains(&key) {
                        self.moves
                            .push((t, gw.clone(), Some(patch.node.clone()), None));
                    }
                }
                let name = patch.node.clone();
                self.feed_node(&name);
            } else {
                self.core.apply_cilium_node(
                    now,
                    &patch.node,
                    self.cilium_labels[&patch.node].clone(),
                );
            }
        }
        for write in &plan.vip {
            match write {
                VipWrite::Create { gateway, .. } => {
                    self.leases.entry(gateway.clone()).or_insert(SimLease {
                        rv: 1,
                        ..SimLease::default()
                    });
                }
                VipWrite::Grant {
                    gateway,
                    resource_version,
                    node,
                    takeover,
                    ..
                } => {
                    let lease = self.leases.get_mut(gateway).expect("lease exists");
                    if lease.rv.to_string() != *resource_version {
                        continue; // 409 Conflict
                    }
                    assert!(
                        lease.grant.is_none(),
                        "t={t}: granted {node} over grant {:?}",
                        lease.grant
                    );
                    if *takeover {
                        lease.holder = None;
                        lease.ready = None;
                    }
                    assert!(lease.holder.is_none() || lease.holder.as_deref() == Some(node));
                    lease.grant = Some(node.clone());
                    lease.rv += 1;
                    self.grants.push((t, gateway.clone(), node.clone()));
                }
                VipWrite::Withdraw {
                    gateway,
                    resource_version,
                    ..
                } => {
                    let lease = self.leases.get_mut(gateway).expect("lease exists");
                    if lease.rv.to_string() == *resource_version {
                        lease.grant = None;
                        lease.rv += 1;
                    }
                }
                VipWrite::Delete { .. } => {}
            }
        }
        for (gw, lease) in &self.leases {
            self.core.apply_vip_lease(now, gw, lease.observation());
        }
        for update in &plan.statuses {
            let Some((gw, stored)) = self.gateways.get_mut(&update.gateway) else {
                continue;
            };
            let last_transition = match &update.ready.last_transition {
                TransitionTime::Keep(kept) => kept.clone(),
                TransitionTime::Now => format!("t={t}"),
            };
            *stored = Some(ObservedStatus {
                observed_generation: Some(update.observed_generation),
                active_node: update.active_node.clone(),
                ready_nodes: Some(update.ready_nodes),
                ready: Some(ObservedCondition {
                    status: update.ready.status,
                    reason: update.ready.reason.clone(),
                    message: update.ready.message.clone(),
                    last_transition,
                }),
            });
            self.core.apply_gateway(now, gw.clone(), 1, stored.clone());
        }
        self.plans.push(plan);
    }

    fn check_invariants(&self) {
        for (gw, vips) in &self.vips {
            assert!(
                vips.len() <= 1,
                "t={}: VIP of {gw} on {:?}",
                self.t(),
                vips.keys()
            );
        }
        for gw in self.gateways.keys() {
            let key = active_for_label(gw);
            let carriers: Vec<_> = self
                .nodes
                .iter()
                .filter(|(_, n)| n.labels.contains_key(&key))
                .collect();
            assert!(
                carriers.len() <= 1,
                "t={}: {gw} on {} nodes",
                self.t(),
                carriers.len()
            );
        }
    }

    /// The node carrying `gw`'s label, on Node and on CiliumNode (they must agree).
    fn active(&self, gw: &str) -> Option<String> {
        let key = active_for_label(gw);
        let on_nodes: Vec<&String> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.labels.contains_key(&key))
            .map(|(n, _)| n)
            .collect();
        let on_cilium: Vec<&String> = self
            .cilium_labels
            .iter()
            .filter(|(_, l)| l.contains_key(&key))
            .map(|(n, _)| n)
            .collect();
        assert_eq!(
            on_nodes, on_cilium,
            "Node and CiliumNode labels disagree for {gw}"
        );
        on_nodes.first().map(|n| n.to_string())
    }

    fn additions(&self, gw: &str) -> Vec<(f64, String)> {
        self.moves
            .iter()
            .filter(|(_, g, _, to)| g == gw && to.is_some())
            .map(|(t, _, _, to)| (*t, to.clone().unwrap_or_default()))
            .collect()
    }

    fn other_node(&self, gw: &str) -> String {
        let active = self.active(gw);
        self.nodes
            .keys()
            .find(|n| Some(*n) != active.as_ref())
            .cloned()
            .expect("another node")
    }
}

#[test]
fn first_election_labels_node_and_cilium_node_and_sets_status() {
    let mut sim = Sim::new(&["n1", "n2"], &[gateway("gw", false)], &[]);
    sim.run(1.0);
    let active = sim.active("gw").expect("elected");
    let (_, status) = &sim.gateways["gw"];
    let status = status.clone().expect("status written");
    assert_eq!(status.active_node.as_deref(), Some(active.as_str()));
    assert_eq!(status.ready_nodes, Some(2));
    let ready = status.ready.expect("condition");
    assert!(ready.status);
    assert_eq!(ready.reason, "ActiveNodeElected");
    let events: Vec<_> = sim.plans.iter().flat_map(|p| &p.events).collect();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].reason, "ActiveNodeElected");
    assert_eq!(sim.core.failovers_total().get("gw"), None);
    // Steady state: no more writes.
    sim.run(30.0);
    assert!(sim.plans.last().is_some_and(Plan::has_no_writes));
}

fn failover_after(break_node: impl FnOnce(&mut Sim, &str), within: f64) -> (Sim, String) {
    let mut sim = Sim::new(&["n1", "n2", "n3"], &[gateway("gw", false)], &[]);
    sim.run(2.0);
    let first = sim.active("gw").expect("elected");
    let since = sim.t();
    break_node(&mut sim, &first);
    sim.run(within);
    let second = sim.active("gw").expect("failed over");
    assert_ne!(first, second);
    assert_eq!(sim.core.failovers_total().get("gw"), Some(&1));
    let moved_at = sim
        .additions("gw")
        .last()
        .map(|(t, _)| *t)
        .unwrap_or_default();
    assert!(
        moved_at - since <= within,
        "moved after {}",
        moved_at - since
    );
    (sim, first)
}

#[test]
fn not_ready_node_fails_over_at_once() {
    let (sim, _) = failover_after(|sim, n| sim.change_node(n, |node| node.ready = false), 0.5);
    let latencies: Vec<Duration> = sim
        .plans
        .iter()
        .flat_map(|p| p.decision_latencies.iter().map(|(_, d)| *d))
        .collect();
    // The simulated shell reconciles on the next 500 ms step after the observation.
    assert_eq!(latencies, [Duration::from_millis(500)]);
}

#[test]
fn cordon_and_cilium_crash_fail_over() {
    failover_after(
        |sim, n| sim.change_node(n, |node| node.cordoned = true),
        0.5,
    );
    failover_after(
        |sim, n| sim.change_node(n, |node| node.cilium_ready = false),
        0.5,
    );
}

#[test]
fn hard_power_off_fails_over_after_the_heartbeat_grace() {
    // The Node stays Ready (nobody updates it); only the heartbeat Lease stops changing.
    let (sim, dead) = failover_after(|sim, n| sim.nodes.get_mut(n).unwrap().powered = false, 21.0);
    let moved_at = sim.additions("gw").last().map(|(t, _)| *t).unwrap();
    // Last heartbeat at t=0 (setup) or the 10 s tick; grace is 20 s after it was observed.
    assert!(moved_at >= 20.0, "moved too early: {moved_at}");
    assert!(sim.nodes[&dead].ready, "the Node object still says Ready");
}

#[test]
fn a_flapping_node_causes_one_move_and_never_takes_the_role_back() {
    let mut sim = Sim::new(
        &["n1", "n2"],
        &[gateway("a", false), gateway("b", false)],
        &[],
    );
    sim.run(2.0);
    let (a, b) = (sim.active("a").unwrap(), sim.active("b").unwrap());
    let other = if a == "n1" { "n2" } else { "n1" }.to_owned();
    for _ in 0..10 {
        sim.change_node(&a, |n| n.ready = false);
        sim.run(1.0);
        sim.change_node(&a, |n| n.ready = true);
        sim.run(1.0);
    }
    // Gateway a moved once (to the other node) and stayed; b moved only if it shared a's node,
    // and then exactly once too.
    assert_eq!(sim.additions("a").len(), 2, "{:?}", sim.additions("a"));
    assert_eq!(sim.active("a"), Some(other.clone()));
    let b_moves = if b == a { 2 } else { 1 };
    assert_eq!(
        sim.additions("b").len(),
        b_moves,
        "{:?}",
        sim.additions("b")
    );
    assert_eq!(sim.active("b"), Some(other));
    // After settling, a new gateway takes its own rendezvous choice: the other gateways'
    // placement (both now on one node) does not pull it anywhere.
    sim.run(11.0);
    sim.gateways.insert("c".into(), (gateway("c", false), None));
    sim.core
        .apply_gateway(sim.now(), gateway("c", false), 1, None);
    sim.run(1.0);
    let alone = egressc::elect::elect(
        &[gateway("c", false)],
        &["n1", "n2"].map(|n| {
            let labels = BTreeMap::from([(GROUP.to_owned(), "yes".to_owned())]);
            egressc::model::catalog::NodeFacts::healthy(n, labels)
        }),
    );
    assert_eq!(sim.active("c"), alone.gateways["c"].active);
}

#[test]
fn an_unsettled_node_gets_no_new_gateway_while_a_settled_one_exists() {
    let mut sim = Sim::new(&["n1", "n2"], &[], &[]);
    sim.run(1.0);
    sim.change_node("n1", |n| n.ready = false);
    sim.run(1.0);
    sim.change_node("n1", |n| n.ready = true);
    sim.run(1.0);
    for name in ["a", "b", "c"] {
        sim.gateways
            .insert(name.into(), (gateway(name, false), None));
        sim.core
            .apply_gateway(sim.now(), gateway(name, false), 1, None);
    }
    sim.run(1.0);
    for name in ["a", "b", "c"] {
        assert_eq!(sim.active(name).as_deref(), Some("n2"));
    }
    let wakeup = sim
        .plans
        .last()
        .and_then(|p| p.next_wakeup)
        .expect("settle end is a wakeup");
    assert!(wakeup <= Instant::from_secs_f64(12.5), "{wakeup:?}");
}

#[test]
fn an_api_outage_writes_nothing_and_a_restart_moves_nothing() {
    let mut sim = Sim::new(
        &["n1", "n2", "n3"],
        &[gateway("a", false), gateway("v", true)],
        &[],
    );
    sim.run(3.0);
    let (a, v) = (sim.active("a").unwrap(), sim.active("v").unwrap());
    sim.api_up = false;
    sim.core.set_synced(sim.now(), false);
    sim.run(30.0); // step() asserts that every plan is empty
    sim.api_up = true;
    // The controller restarts: a fresh core adopts the labels and the VIP Lease.
    sim.core = Controller::new(Timing::default());
    sim.feed_all();
    sim.core.set_synced(sim.now(), true);
    let moves_before = sim.moves.len();
    let grants_before = sim.grants.len();
    sim.run(5.0);
    assert_eq!(sim.moves.len(), moves_before, "a restart moved labels");
    assert_eq!(
        sim.grants.len(),
        grants_before,
        "a restart re-granted the VIP"
    );
    assert_eq!((sim.active("a"), sim.active("v")), (Some(a), Some(v)));
    assert!(
        sim.plans
            .iter()
            .rev()
            .take(10)
            .all(|p| p.statuses.is_empty() && p.events.is_empty())
    );
}

#[test]
fn vip_label_moves_only_after_the_new_node_confirms() {
    let mut sim = Sim::new(&["n1", "n2"], &[gateway("v", true)], &[]);
    sim.run(3.0);
    let first = sim.active("v").expect("elected after the handshake");
    assert_eq!(sim.grants.len(), 1);
    // Graceful: the active node is cordoned while its agent keeps running; the grant is
    // withdrawn, the old holder releases, the new node acquires and confirms, then the label
    // moves — without waiting for the Lease to expire.
    let other = sim.other_node("v");
    sim.change_node(&first, |n| n.cordoned = true);
    sim.run(3.0);
    assert_eq!(sim.active("v"), Some(other.clone()));
    let moved_at = sim.additions("v").last().map(|(t, _)| *t).unwrap();
    assert!(
        moved_at - 3.0 <= 2.0,
        "graceful move took {}",
        moved_at - 3.0
    );
    assert_eq!(
        sim.grants
            .iter()
            .map(|(_, _, n)| n.clone())
            .collect::<Vec<_>>(),
        [first, other]
    );
}

#[test]
fn a_dead_vip_holder_is_taken_over_only_after_its_lease_expires() {
    let mut sim = Sim::new(&["n1", "n2"], &[gateway("v", true)], &[]);
    sim.run(3.0);
    let first = sim.active("v").unwrap();
    // Power-off: agent stops renewing, node heartbeat stops; Node stays Ready.
    sim.nodes.get_mut(&first).unwrap().powered = false;
    let off_at = sim.t();
    sim.run(25.0);
    let second = sim.active("v").expect("taken over");
    assert_ne!(first, second);
    let (grant_at, _, _) = sim.grants.last().cloned().unwrap();
    assert!(
        grant_at - off_at >= 3.0,
        "granted {} s after the holder died",
        grant_at - off_at
    );
}

#[test]
fn a_crashed_vip_agent_is_replaced_after_the_lease_duration() {
    let mut sim = Sim::new(&["n1", "n2"], &[gateway("v", true)], &[]);
    sim.run(3.0);
    let first = sim.active("v").unwrap();
    sim.change_node(&first, |n| n.vip_agent_ready = false);
    sim.run(2.0);
    assert_eq!(
        sim.active("v"),
        Some(first.clone()),
        "label moved before the VIP could be up elsewhere"
    );
    sim.run(3.0);
    assert_ne!(sim.active("v"), Some(first));
    let (grant_at, _, _) = sim.grants.last().cloned().unwrap();
    assert!(
        grant_at >= 6.0,
        "re-granted at {grant_at}, before the dead holder's Lease expired"
    );
}
