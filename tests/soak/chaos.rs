//! The fault schedule: a seeded random stream of faults (the seed replays the same choices;
//! timing still varies with the machine), each node fault undone after a random time. Node
//! faults: NotReady, cordon, heartbeat stop (power-off: the agents stop too), cilium-agent Pod
//! NotReady, VIP agent down. API faults: dropped watches, compacted history (every resuming
//! watch gets 410 Gone and re-lists), 503 outages of up to `max_outage`, latency. Process faults: SIGKILL
//! of the leader, restarted after a pause.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kube_testserver::TestServer;

use super::replicas::Replicas;
use super::world::{NAMESPACE, NodeState, World};

/// One kind of fault, with its weight in the random choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    NodeNotReady,
    Cordon,
    HeartbeatStop,
    CiliumPodNotReady,
    AgentDown,
    DropWatches,
    CompactHistory,
    Outage,
    Latency,
    KillLeader,
}

impl Fault {
    const ALL: [(Fault, u32); 10] = [
        (Fault::NodeNotReady, 30),
        (Fault::Cordon, 15),
        (Fault::HeartbeatStop, 20),
        (Fault::CiliumPodNotReady, 15),
        (Fault::AgentDown, 15),
        (Fault::DropWatches, 6),
        (Fault::CompactHistory, 6),
        (Fault::Outage, 4),
        (Fault::Latency, 4),
        (Fault::KillLeader, 5),
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::NodeNotReady => "node NotReady",
            Fault::Cordon => "node cordoned",
            Fault::HeartbeatStop => "heartbeat stopped",
            Fault::CiliumPodNotReady => "cilium Pod NotReady",
            Fault::AgentDown => "VIP agent down",
            Fault::DropWatches => "watches dropped",
            Fault::CompactHistory => "history compacted (410)",
            Fault::Outage => "503 outage",
            Fault::Latency => "latency",
            Fault::KillLeader => "leader SIGKILL",
        }
    }
}

/// Something to undo later.
#[derive(Clone, Debug)]
enum Undo {
    Node(String, Fault),
    Latency,
    Restart(String),
}

/// The fault injector of one soak.
pub struct Chaos {
    rng: fastrand::Rng,
    pending: Vec<(Instant, Undo)>,
    pub injected: BTreeMap<Fault, u64>,
    /// No new outage before this (outages are seconds long; back to back they would be one).
    quiet_until: Instant,
    /// The longest outage; zero: none.
    max_outage: Duration,
}

/// Who holds the leader Lease, read without going through the (possibly failing) API.
pub fn leader(server: &TestServer) -> Option<String> {
    server
        .stored("coordination.k8s.io", "leases")
        .iter()
        .find(|l| {
            l["metadata"]["namespace"] == NAMESPACE && l["metadata"]["name"] == "egressc-sync"
        })
        .and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_owned))
        .filter(|h| !h.is_empty())
}

impl Chaos {
    pub fn new(seed: u64, max_outage: Duration) -> Chaos {
        Chaos {
            rng: fastrand::Rng::with_seed(seed),
            pending: Vec::new(),
            injected: BTreeMap::new(),
            quiet_until: Instant::now(),
            max_outage,
        }
    }

    /// Time until the next fault: 50–300 ms.
    pub fn pause(&mut self) -> Duration {
        Duration::from_millis(self.rng.u64(50..300))
    }

    fn pick(&mut self) -> Fault {
        let total: u32 = Fault::ALL.iter().map(|(_, w)| w).sum();
        let mut roll = self.rng.u32(0..total);
        for (fault, weight) in Fault::ALL {
            if roll < weight {
                return fault;
            }
            roll -= weight;
        }
        Fault::NodeNotReady
    }

    /// A random duration in `from..to` seconds.
    fn secs(&mut self, from: f64, to: f64) -> Duration {
        Duration::from_secs_f64(from + self.rng.f64() * (to - from))
    }

    /// Undoes what is due, then injects one random fault.
    pub async fn step(&mut self, server: &TestServer, world: &World, replicas: &mut Replicas) {
        self.undo_due(server, world, replicas, false).await;
        let fault = self.pick();
        let now = Instant::now();
        let injected = match fault {
            Fault::NodeNotReady
            | Fault::Cordon
            | Fault::HeartbeatStop
            | Fault::CiliumPodNotReady
            | Fault::AgentDown => {
                let (node, _) = world.nodes[self.rng.usize(0..world.nodes.len())].clone();
                // Heartbeats must stay stopped past the grace (3 s) some of the time.
                let lasts = if fault == Fault::HeartbeatStop {
                    self.secs(1.0, 7.0)
                } else {
                    self.secs(0.3, 5.0)
                };
                let before = world.state(&node);
                let after = with_fault(before, fault, false);
                if after == before {
                    false
                } else {
                    let _ = world.set_state(&node, after).await;
                    self.pending.push((now + lasts, Undo::Node(node, fault)));
                    true
                }
            }
            Fault::DropWatches => {
                server.faults().drop_watches();
                true
            }
            Fault::CompactHistory => {
                server.compact_history();
                server.faults().drop_watches();
                true
            }
            Fault::Outage => {
                if now < self.quiet_until || self.max_outage.is_zero() {
                    false
                } else {
                    let max = self.max_outage.as_secs_f64();
                    let lasts = self.secs(max / 6.0, max);
                    server.faults().outage(lasts);
                    self.quiet_until = now + lasts + Duration::from_secs(3);
                    true
                }
            }
            Fault::Latency => {
                let ms = self.rng.u64(20..150);
                server.faults().set_latency(Duration::from_millis(ms));
                let lasts = self.secs(1.0, 4.0);
                self.pending.push((now + lasts, Undo::Latency));
                true
            }
            Fault::KillLeader => match leader(server) {
                Some(identity) if replicas.running(&identity) => {
                    replicas.kill(&identity);
                    let pause = self.secs(0.2, 3.0);
                    self.pending.push((now + pause, Undo::Restart(identity)));
                    true
                }
                _ => false,
            },
        };
        if injected {
            *self.injected.entry(fault).or_default() += 1;
        }
    }

    /// Undoes the pending faults that are due (`all`: every API and process fault, while node
    /// faults stay as they are: "faults stop" leaves the nodes in whatever state they reached).
    pub async fn undo_due(
        &mut self,
        server: &TestServer,
        world: &World,
        replicas: &mut Replicas,
        all: bool,
    ) {
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        self.pending = later;
        for (_, undo) in due {
            match undo {
                Undo::Node(node, fault) => {
                    let state = with_fault(world.state(&node), fault, true);
                    let _ = world.set_state(&node, state).await;
                }
                Undo::Latency => server.faults().set_latency(Duration::ZERO),
                Undo::Restart(identity) => replicas.restart(&identity),
            }
        }
        if all {
            self.pending.clear();
            server.faults().restore();
            server.faults().set_latency(Duration::ZERO);
            replicas.restart_all();
        }
    }

    /// Makes every node healthy again (the start of a round).
    pub async fn heal_nodes(&mut self, world: &World) {
        for (node, state) in world.states() {
            if state != NodeState::HEALTHY {
                let _ = world.set_state(&node, NodeState::HEALTHY).await;
            }
        }
    }
}

/// `state` with `fault` applied (`undo`: lifted).
fn with_fault(mut state: NodeState, fault: Fault, undo: bool) -> NodeState {
    let healthy = undo;
    match fault {
        Fault::NodeNotReady => state.ready = healthy,
        Fault::Cordon => state.schedulable = healthy,
        Fault::HeartbeatStop => state.powered = healthy,
        Fault::CiliumPodNotReady => state.cilium_ready = healthy,
        Fault::AgentDown => state.agent_up = healthy,
        Fault::DropWatches
        | Fault::CompactHistory
        | Fault::Outage
        | Fault::Latency
        | Fault::KillLeader => {}
    }
    state
}
