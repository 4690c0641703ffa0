//! Deterministic simulations of the sync controller core with injected time: a small cluster
//! (kubelets, cilium-agents, VIP agents following docs/lease-protocol.md) is stepped every
//! 500 ms, the core's plans are applied to it, and safety invariants are checked at every step.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use egressc_core::controller::{
    Controller, Instant, NodeKind, NodeObservation, ObservedStatus, Plan, ProbeTarget, Timing,
    VipLeaseObservation, VipWrite,
};
use egressc_core::model::catalog::Gateway;
use egressc_core::model::labels::active_for_label;

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
    /// The kubelet can reach the API (renews its heartbeat).
    kubelet_connected: bool,
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
        source: support::test_source(vip),
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
                    kubelet_connected: true,
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

    /// The API answers nothing for `seconds` (watches fail, kubelets and agents cannot
    /// write); `during` runs at the start of it. Then every watch relists.
    fn outage(&mut self, seconds: f64, during: impl FnOnce(&mut Sim)) {
        self.api_up = false;
        self.core.set_synced(self.now(), false);
        during(self);
        self.run(seconds); // step() asserts that every plan is empty
        self.api_up = true;
        self.feed_all();
        self.core.set_synced(self.now(), true);
    }

    /// One direct probe result of every node, as the shell reports them (probes do not go
    /// through the API): a powered node answers, a powered-off one does not.
    fn probe_all(&mut self) {
        let now = self.now();
        for (name, node) in &self.nodes {
            self.core
                .apply_probe(now, name, ProbeTarget::CiliumHealth, node.powered);
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
        // Kubelets renew their heartbeat every 10 s while powered and able to reach the API.
        if self.steps.is_multiple_of(20) && self.api_up {
            let renewing = |n: &SimNode| n.powered && n.kubelet_connected;
            for (name, node) in self.nodes.iter_mut().filter(|(_, n)| renewing(n)) {
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
                // Outage hold: an agent that cannot reach the API keeps the VIP it has while no
                // other node probes for it (nobody can be granted while the API is down).
                if node.powered
                    && node.vip_agent_ready
                    && !self.api_up
                    && let Some(expiry) = vips.get_mut(name)
                {
                    *expiry = t + 2.0;
                }
                if !agent_alive {
                    continue;
                }
                let granted = lease.grant.as_deref() == Some(name.as_str());
                let holding = lease.holder.as_deref() == Some(name.as_str());
                if granted && (lease.holder.is_none() || holding) {
                    lease.holder = Some(name.clone());
                    lease.renew += 1;
                    lease.rv += 1;
                    // A bring-up probes first: it waits while another node's kernel still has
                    // the VIP (and so answers the probe).
                    let answered_elsewhere = vips.keys().any(|n| n != name);
                    if vips.contains_key(name) || !answered_elsewhere {
                        // VIP lifetime: 2 s from the send of this successful renewal.
                        vips.insert(name.clone(), t + 2.0);
                        lease.ready = Some(name.clone());
                    }
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
                        if self.gateways[gw].0.needs_vip_agent() {
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
                        lease.grant.is_none() || *takeover,
                        "t={t}: granted {node} over grant {:?} without a takeover",
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
            *stored = Some(update.stored(&format!("t={t}")));
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
        .flat_map(|p| p.decision_latencies.iter().map(|d| d.latency))
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
    let alone = egressc_core::elect::elect(
        &[gateway("c", false)],
        &["n1", "n2"].map(|n| {
            let labels = BTreeMap::from([(GROUP.to_owned(), "yes".to_owned())]);
            egressc_core::model::catalog::NodeFacts::healthy(n, labels)
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
fn a_crashed_vip_agent_is_taken_over_at_once_and_replaced_when_its_vip_expires() {
    let mut sim = Sim::new(&["n1", "n2"], &[gateway("v", true)], &[]);
    sim.run(3.0);
    let first = sim.active("v").unwrap();
    let crashed_at = sim.t();
    let expires_at = sim.vips["v"][&first];
    sim.change_node(&first, |n| n.vip_agent_ready = false);
    sim.run(4.0);
    let second = sim.active("v").expect("replaced");
    assert_ne!(second, first);
    // Its Pod is not Ready: evidence it cannot renew, so no waiting out D (3 s) …
    let (grant_at, _, granted) = sim.grants.last().cloned().unwrap();
    assert_eq!(granted, second);
    assert!(
        grant_at - crashed_at < 1.0,
        "granted {} s after the crash",
        grant_at - crashed_at
    );
    // … but the new node brings the VIP up only once the dead agent's VIP expired (it probes;
    // the sim checks every step that the VIP is never on two nodes).
    let moved_at = sim.additions("v").last().map(|(t, _)| *t).unwrap();
    assert!(
        moved_at >= expires_at,
        "label moved at {moved_at}, before the old VIP expired at {expires_at}"
    );
}

/// A cluster of `n` nodes with a PrimaryIP and a VIP gateway, elected and settled.
fn settled_cluster(n: usize) -> (Sim, String, String) {
    let names: Vec<String> = (1..=n).map(|i| format!("n{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut sim = Sim::new(&names, &[gateway("a", false), gateway("v", true)], &[]);
    sim.run(15.0);
    let (a, v) = (sim.active("a").unwrap(), sim.active("v").unwrap());
    (sim, a, v)
}

/// Label removals and additions on Node objects since move index `from`.
fn moves_since(sim: &Sim, from: usize) -> Vec<(f64, String, Option<String>, Option<String>)> {
    sim.moves[from..].to_vec()
}

#[test]
fn an_api_outage_of_30_s_or_5_min_with_no_node_failing_moves_nothing() {
    // Two nodes: too few for disruption mode, so the clock restart alone must hold.
    for (outage, nodes) in [(30.0, 2), (300.0, 2), (30.0, 3), (300.0, 5)] {
        let (mut sim, a, v) = settled_cluster(nodes);
        let (moves, grants) = (sim.moves.len(), sim.grants.len());
        sim.outage(outage, |_| {});
        // Kubelets renew again on their own schedule (10 s); watch a few rounds.
        sim.run(45.0);
        assert_eq!(
            moves_since(&sim, moves),
            [],
            "an outage of {outage} s moved or removed labels"
        );
        assert_eq!(sim.grants.len(), grants, "the VIP was re-granted");
        assert_eq!((sim.active("a"), sim.active("v")), (Some(a), Some(v)));
        let warnings: Vec<_> = sim
            .plans
            .iter()
            .flat_map(|p| &p.events)
            .filter(|e| e.warning)
            .collect();
        assert_eq!(warnings, Vec::<&egressc_core::controller::Event>::new());
    }
}

#[test]
fn kubelets_cut_off_from_the_api_are_not_failed_nodes() {
    // The controller still sees the cluster (synced), but no heartbeat moves at all. Two
    // nodes: too few for disruption mode, so the progress rule alone must hold.
    for nodes in [2, 3] {
        let (mut sim, a, v) = settled_cluster(nodes);
        let moves = sim.moves.len();
        for node in sim.nodes.values_mut() {
            node.kubelet_connected = false;
        }
        sim.run(120.0);
        assert_eq!(moves_since(&sim, moves), [], "{nodes} nodes");
        assert_eq!((sim.active("a"), sim.active("v")), (Some(a), Some(v)));
    }
}

#[test]
fn most_heartbeats_stopping_at_once_is_a_disruption_not_a_failure() {
    // 3 of 5 kubelets lose the API (55 % and at least 3): nothing moves although the other
    // two keep renewing. 2 of 5 would be failures (next test).
    let (mut sim, a, _) = settled_cluster(5);
    let moves = sim.moves.len();
    let mut cut: Vec<String> = vec![a.clone()];
    cut.extend(sim.nodes.keys().filter(|n| **n != a).take(2).cloned());
    for name in &cut {
        sim.nodes.get_mut(name).unwrap().kubelet_connected = false;
    }
    sim.run(60.0);
    assert_eq!(moves_since(&sim, moves), []);
    assert_eq!(sim.active("a"), Some(a.clone()));
    // The kubelets reconnect; one of them stays silent (it died meanwhile): once the
    // disruption is over, its clock restarts and it is failed over a grace later.
    for name in &cut[1..] {
        sim.nodes.get_mut(name).unwrap().kubelet_connected = true;
    }
    sim.nodes.get_mut(&a).unwrap().powered = false;
    sim.run(45.0);
    assert_ne!(sim.active("a"), Some(a));
}

#[test]
fn a_minority_of_silent_heartbeats_is_still_failed_over() {
    let (mut sim, a, _) = settled_cluster(5);
    let other = sim.nodes.keys().find(|n| **n != a).cloned().unwrap();
    for name in [&a, &other] {
        sim.nodes.get_mut(name).unwrap().powered = false;
    }
    let off = sim.t();
    sim.run(31.0);
    let moved = sim.active("a").expect("moved to a live node");
    assert!(moved != a && moved != other);
    let (at, _) = sim.additions("a").last().cloned().unwrap();
    assert!(at - off <= 30.5, "took {}", at - off);
}

#[test]
fn a_heartbeat_that_stops_during_an_outage_counts_only_from_the_resync() {
    // Its kubelet dies during the outage; the Node and its Pods still say Ready, as they
    // would until the node lifecycle controller acts.
    let (mut sim, a, _) = settled_cluster(3);
    let moves = sim.moves.len();
    sim.outage(30.0, |sim| {
        sim.nodes.get_mut(&a).unwrap().kubelet_connected = false;
    });
    let resynced = sim.t();
    sim.run(5.0);
    // Its heartbeat stopped long ago, but that was not observable: nothing moves at resync.
    assert_eq!(moves_since(&sim, moves), []);
    sim.run(30.0);
    let second = sim.active("a").expect("failed over");
    assert_ne!(second, a);
    let (at, _) = sim.additions("a").last().cloned().unwrap();
    assert!(
        at - resynced >= 20.0,
        "moved {} s after the resync, before a full grace of fresh observation",
        at - resynced
    );
}

#[test]
fn a_probe_detected_death_during_an_outage_is_acted_on_at_resync_and_not_before() {
    let (mut sim, a, _) = settled_cluster(3);
    let moves = sim.moves.len();
    sim.outage(30.0, |sim| {
        sim.nodes.get_mut(&a).unwrap().powered = false;
        // Probes keep running while the API is down; step() asserts nothing is written.
        sim.probe_all();
        sim.probe_all();
    });
    assert_eq!(moves_since(&sim, moves), [], "written while not synced");
    sim.run(0.5);
    let second = sim.active("a").expect("failed over at resync");
    assert_ne!(second, a);
    let events: Vec<_> = sim.plans.iter().flat_map(|p| &p.events).collect();
    let failover = events
        .iter()
        .rev()
        .find(|e| e.reason == "Failover")
        .unwrap();
    assert!(
        failover.message.contains("(NodeProbeFailed)"),
        "{}",
        failover.message
    );
}

#[test]
fn failed_probes_fail_a_node_over_at_once_and_it_settles_after_recovery() {
    let (mut sim, a, _) = settled_cluster(2);
    sim.core
        .apply_probe(sim.now(), &a, ProbeTarget::CiliumHealth, false);
    sim.run(0.5);
    assert_eq!(
        sim.active("a"),
        Some(a.clone()),
        "one failure is below the threshold"
    );
    assert!(!sim.core.proves_unreachable(&a, sim.now()));
    sim.core
        .apply_probe(sim.now(), &a, ProbeTarget::CiliumHealth, false);
    assert!(sim.core.proves_unreachable(&a, sim.now()));
    sim.run(0.5);
    let b = sim.active("a").expect("moved");
    assert_ne!(b, a);
    let latency = sim
        .plans
        .iter()
        .flat_map(|p| &p.decision_latencies)
        .last()
        .cloned()
        .unwrap();
    assert_eq!(
        latency.reason,
        Some(egressc_core::controller::HealthReason::NodeProbeFailed)
    );
    // The probe succeeds again: no fail-back, and a new gateway avoids the unsettled node.
    sim.core
        .apply_probe(sim.now(), &a, ProbeTarget::CiliumHealth, true);
    assert!(!sim.core.proves_unreachable(&a, sim.now()));
    sim.run(1.0);
    sim.gateways.insert("c".into(), (gateway("c", false), None));
    sim.core
        .apply_gateway(sim.now(), gateway("c", false), 1, None);
    sim.run(1.0);
    assert_eq!(sim.active("c"), Some(b.clone()));
    assert_eq!(sim.active("a"), Some(b));
}

#[test]
fn a_failed_vip_agent_probe_moves_only_the_vip_gateway() {
    let (mut sim, a, v) = settled_cluster(2);
    for _ in 0..2 {
        sim.core
            .apply_probe(sim.now(), &v, ProbeTarget::VipAgent, false);
    }
    assert!(sim.core.proves_unreachable(&v, sim.now()));
    sim.run(10.0);
    assert_eq!(sim.active("a"), Some(a), "the PrimaryIP gateway moved");
    // The VIP gateway waits for the handshake (the old holder's Lease), then moves.
    assert_ne!(sim.active("v"), Some(v));
}

#[test]
fn probe_targets_are_the_nodes_some_gateway_selects() {
    let mut sim = Sim::new(&["n1", "n2"], &[gateway("a", false)], &[]);
    let mut outside = sim.nodes["n2"].clone();
    outside.labels.clear();
    sim.nodes.insert("n3".into(), outside);
    sim.cilium_labels.insert("n3".into(), BTreeMap::new());
    sim.feed_all();
    let targets = sim.core.probe_targets(sim.now()).expect("first call");
    let names: Vec<&String> = targets.keys().collect();
    assert_eq!(names, ["n1", "n2"]);
    assert!(
        targets
            .values()
            .all(|t| t.iter().eq([&ProbeTarget::CiliumHealth]))
    );
    assert_eq!(sim.core.probe_targets(sim.now()), None, "unchanged");
    // A VIP gateway adds the agent probe.
    sim.core
        .apply_gateway(sim.now(), gateway("v", true), 1, None);
    let targets = sim.core.probe_targets(sim.now()).expect("changed");
    assert!(targets["n1"].contains(&ProbeTarget::VipAgent));
    // A node leaving the selector stops being probed and forgets its failures.
    for _ in 0..2 {
        sim.core
            .apply_probe(sim.now(), "n2", ProbeTarget::CiliumHealth, false);
    }
    assert!(sim.core.proves_unreachable("n2", sim.now()));
    sim.change_node("n2", |n| n.labels.clear());
    let targets = sim.core.probe_targets(sim.now()).expect("changed");
    assert!(!targets.contains_key("n2"));
    assert!(!sim.core.proves_unreachable("n2", sim.now()));
}
