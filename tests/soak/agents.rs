//! The VIP agents' side of docs/lease-protocol.md, played by the harness: for every VIP gateway,
//! one simulated agent per node of its group runs egressc's own pure agent rules
//! (`agent::lease::decide`, `agent::lease_object`) against the real Lease over the API (so it
//! suffers the injected faults), without netlink: "the VIP is up" is the agent's belief plus the
//! address lifetime `L` counted from the send of its last successful write, exactly what the
//! kernel would enforce. A node whose agent is down or powered off acts no more, but its VIP
//! lives out its lifetime. A bring-up after a takeover probes first (rule 8): the probe is
//! answered while another node still has the VIP configured, as its kernel would answer it.
//! Checked every round: no VIP is up on two nodes at once (the protocol's safety claim, which
//! rests on the takeover timing and the probe). Not modelled: the outage hold (a sim whose
//! renewals fail lets its VIP expire, the fail-closed behaviour of the previous protocol).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use egressc::agent::lease::{Action, AgentTiming, Local, bring_up_needs_probe, decide};
use egressc::agent::lease_object;
use egressc::controller::{Instant, lease_name};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, PostParams};

use super::world::{NAMESPACE, World};

/// How often every simulated agent looks at its Lease (the real agent watches; 100 ms polling
/// keeps the harness simple and is well inside the 500 ms renew interval).
const TICK: Duration = Duration::from_millis(100);

/// What the agents saw that breaks the protocol's safety claim.
#[derive(Default)]
pub struct AgentReport {
    pub violations: Vec<String>,
    /// Successful writes by kind: acquire, renew, ready, release.
    pub writes: BTreeMap<&'static str, u64>,
}

/// Starts the agents of every VIP gateway; the report fills as they run.
pub fn spawn(world: World, epoch: std::time::Instant) -> Arc<Mutex<AgentReport>> {
    let report = Arc::new(Mutex::new(AgentReport::default()));
    for gateway in world.gateways.iter().filter(|g| g.vip.is_some()) {
        let nodes: Vec<String> = world
            .nodes
            .iter()
            .filter(|(_, group)| *group == gateway.group)
            .map(|(n, _)| n.clone())
            .collect();
        let agents = GatewayAgents {
            world: world.clone(),
            gateway: gateway.name.clone(),
            lease: lease_name(&gateway.name),
            nodes,
            sims: BTreeMap::new(),
            report: Arc::clone(&report),
            epoch,
        };
        tokio::spawn(agents.run());
    }
    report
}

struct GatewayAgents {
    world: World,
    gateway: String,
    lease: String,
    nodes: Vec<String>,
    /// Per node: the agent process's protocol state and the address the kernel holds.
    sims: BTreeMap<String, NodeAgent>,
    report: Arc<Mutex<AgentReport>>,
    epoch: std::time::Instant,
}

/// One node's agent for one gateway.
#[derive(Clone, Copy, Default)]
struct NodeAgent {
    /// The agent process's state; a restarted process starts from the default.
    local: Local,
    /// The process ran at the last tick.
    running: bool,
    /// When the kernel removes the VIP (`L` after the send of the last successful write);
    /// `None`: not configured. A dead process leaves it to expire.
    address_until: Option<Instant>,
}

impl GatewayAgents {
    fn now(&self) -> Instant {
        Instant(self.epoch.elapsed())
    }

    async fn run(mut self) {
        let leases: Api<Lease> = Api::namespaced(self.world.client.clone(), NAMESPACE);
        let timing = AgentTiming::default();
        loop {
            tokio::time::sleep(TICK).await;
            self.check_single_vip();
            let Ok(mut lease) = leases.get_opt(&self.lease).await else {
                continue;
            };
            for node in self.nodes.clone() {
                let state = self.world.state(&node);
                let mut sim = self.sims.get(&node).copied().unwrap_or_default();
                let running = state.powered && state.agent_up;
                if running && !sim.running {
                    sim.local = Local::default();
                }
                sim.running = running;
                if running {
                    let (next, written) = self
                        .step(&leases, &node, sim, lease.as_ref(), &timing)
                        .await;
                    sim = next;
                    if written.is_some() {
                        lease = written;
                    }
                }
                self.sims.insert(node, sim);
            }
        }
    }

    /// One decision of `node`'s agent on the Lease as last read, and its write.
    async fn step(
        &self,
        leases: &Api<Lease>,
        node: &str,
        mut sim: NodeAgent,
        lease: Option<&Lease>,
        timing: &AgentTiming,
    ) -> (NodeAgent, Option<Lease>) {
        let view = lease.and_then(lease_object::read).map(|l| l.view);
        let now = self.now();
        let action = decide(view.as_ref(), node, now, &sim.local, timing);
        match action {
            Action::Wait { .. } => return (sim, None),
            Action::StepDown => {
                sim.local = Local::default();
                sim.address_until = None;
                return (sim, None);
            }
            Action::Acquire | Action::Renew { .. } | Action::Release => {}
        }
        // `decide` only asks for a write about a Lease it was given.
        let Some(current) = lease else {
            return (sim, None);
        };
        // Rule 8: an acquire of a Lease that was taken over calls for a probe before bring-up.
        let graceful = view.as_ref().is_some_and(|v| !v.takeover);
        let (body, kind) = match action {
            Action::Acquire => (lease_object::acquired(current, node, jiff_now()), "acquire"),
            Action::Renew { mark_ready } => (
                lease_object::renewed(current, node, jiff_now(), mark_ready),
                if mark_ready { "ready" } else { "renew" },
            ),
            Action::Release => {
                // The VIP goes first, then the write.
                sim.address_until = None;
                sim.local.last_successful_send = None;
                sim.local.vip_up = false;
                (lease_object::released(current), "release")
            }
            Action::Wait { .. } | Action::StepDown => return (sim, None),
        };
        sim.local.last_attempt = Some(now);
        match leases
            .replace(&self.lease, &PostParams::default(), &body)
            .await
        {
            Ok(written) => {
                if let Ok(mut report) = self.report.lock() {
                    *report.writes.entry(kind).or_default() += 1;
                }
                if kind == "acquire" {
                    sim.local.graceful_bring_up = graceful;
                }
                if kind != "release" {
                    sim.local.last_successful_send = Some(now);
                    if sim.local.vip_up {
                        // Every successful holder write refreshes the lifetime from its send.
                        sim.address_until = Some(now + timing.address_lifetime);
                    } else if bring_up_needs_probe(&sim.local) && self.answered_elsewhere(node) {
                        // The probe round is answered by a node that still has the VIP
                        // configured: no bring-up yet; the next write tries again.
                    } else {
                        sim.local.vip_up = true;
                        sim.local.graceful_bring_up = false;
                        sim.address_until = Some(now + timing.address_lifetime);
                    }
                }
                (sim, Some(written))
            }
            Err(kube::Error::Api(status)) if status.code == 409 => {
                // A conflict allows an immediate retry with the fresh Lease.
                sim.local.last_attempt = None;
                (sim, None)
            }
            Err(_) => (sim, None),
        }
    }

    /// Would a probe for the VIP sent by `node` now be answered: does another node still have
    /// it configured (its kernel answers ARP probes and DAD whatever its agent does)?
    fn answered_elsewhere(&self, node: &str) -> bool {
        let now = self.now();
        self.sims
            .iter()
            .any(|(other, sim)| other != node && sim.address_until.is_some_and(|u| now < u))
    }

    /// No two nodes have the VIP configured at the same instant.
    fn check_single_vip(&self) {
        let now = self.now();
        let up: Vec<&String> = self
            .sims
            .iter()
            .filter(|(_, sim)| sim.address_until.is_some_and(|until| now < until))
            .map(|(node, _)| node)
            .collect();
        if up.len() > 1
            && let Ok(mut report) = self.report.lock()
        {
            report.violations.push(format!(
                "at {:.3} s: VIP of {} up on {} nodes: {up:?}",
                now.0.as_secs_f64(),
                self.gateway,
                up.len()
            ));
        }
    }
}

fn jiff_now() -> k8s_openapi::jiff::Timestamp {
    k8s_openapi::jiff::Timestamp::now()
}
