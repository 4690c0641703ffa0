//! Direct node probing, the core's side: which nodes the shell must probe (every node some
//! gateway's `nodeSelector` matches; also its VIP agent when a VIP gateway's does), and what a
//! probe result means. The shell only probes and reports each result; counting consecutive
//! failures against `Timing::probe_failures` is health's job (`health.rs`), and a node that
//! recovers regains new assignments through `settle` like after any other reason.

use std::collections::{BTreeMap, BTreeSet};

use super::health::ProbeRecord;
use super::state::Controller;
use super::time::Instant;

/// Which endpoint of a node is probed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProbeTarget {
    /// Cilium's cluster health endpoint on the node (`:4240/hello`): the node and its
    /// datapath are up.
    CiliumHealth,
    /// The VIP agent's `/readyz` on the node: the agent can hold a VIP.
    VipAgent,
}

impl ProbeTarget {
    /// Stable lower-case name (metrics label, logs).
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeTarget::CiliumHealth => "cilium-health",
            ProbeTarget::VipAgent => "vip-agent",
        }
    }
}

/// Node → what to probe on it.
pub type ProbeTargets = BTreeMap<String, BTreeSet<ProbeTarget>>;

/// The probe-target bookkeeping of the [`Controller`].
#[derive(Clone, Debug, Default)]
pub(super) struct ProbePlan {
    pub targets: ProbeTargets,
    /// Nodes whose labels changed (or that were deleted) since the last computation.
    pub dirty: BTreeSet<String>,
    /// A gateway changed: every node is looked at again.
    pub dirty_all: bool,
    /// `targets` changed since the shell last asked.
    pub changed: bool,
}

impl Controller {
    /// The result of one probe of `target` on `node` at `now`. The shell may leave out a
    /// success that follows a success: only failures and the first success after them count.
    pub fn apply_probe(&mut self, now: Instant, node: &str, target: ProbeTarget, ok: bool) {
        if !self.nodes.contains_key(node) {
            return;
        }
        self.observe_node(now, node, |health| {
            let record = match target {
                ProbeTarget::CiliumHealth => &mut health.node_probe,
                ProbeTarget::VipAgent => &mut health.agent_probe,
            };
            record.failures = if ok {
                0
            } else {
                record.failures.saturating_add(1)
            };
        });
    }

    /// The probe targets when they changed since the last call (`None`: unchanged). A node
    /// that stops being a target forgets its probe failures.
    pub fn probe_targets(&mut self, now: Instant) -> Option<ProbeTargets> {
        let probes = &mut self.probes;
        if !probes.dirty_all && probes.dirty.is_empty() {
            return probes.changed.then(|| {
                probes.changed = false;
                probes.targets.clone()
            });
        }
        let mut selectors: Vec<(&BTreeMap<String, String>, bool)> = self
            .gateways
            .values()
            .map(|record| {
                (
                    &record.gateway.node_selector,
                    record.gateway.needs_vip_agent(),
                )
            })
            .collect();
        selectors.sort();
        selectors.dedup();
        let names: Vec<String> = if probes.dirty_all {
            self.nodes.keys().cloned().collect()
        } else {
            probes.dirty.iter().cloned().collect()
        };
        probes.dirty.clear();
        probes.dirty_all = false;
        let mut forget = Vec::new();
        for name in names {
            let labels = self
                .nodes
                .get(&name)
                .and_then(|health| health.node.as_ref())
                .map(|node| &node.labels);
            let mut wanted = BTreeSet::new();
            for (selector, vip) in &selectors {
                let Some(labels) = labels else { break };
                if selector.iter().all(|(k, v)| labels.get(k) == Some(v)) {
                    wanted.insert(ProbeTarget::CiliumHealth);
                    if *vip {
                        wanted.insert(ProbeTarget::VipAgent);
                    }
                }
            }
            let had = probes.targets.get(&name).cloned().unwrap_or_default();
            if had == wanted {
                continue;
            }
            probes.changed = true;
            forget.extend(had.difference(&wanted).map(|t| (name.clone(), *t)));
            if wanted.is_empty() {
                probes.targets.remove(&name);
            } else {
                probes.targets.insert(name, wanted);
            }
        }
        for (name, target) in forget {
            if self.nodes.contains_key(&name) {
                self.observe_node(now, &name, |health| match target {
                    ProbeTarget::CiliumHealth => health.node_probe = ProbeRecord::default(),
                    ProbeTarget::VipAgent => health.agent_probe = ProbeRecord::default(),
                });
            }
        }
        let probes = &mut self.probes;
        probes.changed.then(|| {
            probes.changed = false;
            probes.targets.clone()
        })
    }

    /// Is there evidence that nothing on `node` can renew a Lease (its probes failed, or its
    /// heartbeat is stale while others' are observed)? See `NodeHealth::proves_unreachable`.
    /// For VIP takeover: a holder on such a node may be replaced without waiting out its
    /// VIP Lease (after an ARP probe finds the address unanswered).
    pub fn proves_unreachable(&self, node: &str, now: Instant) -> bool {
        let view = self.view(now);
        self.nodes
            .get(node)
            .is_some_and(|health| health.proves_unreachable(&view))
    }
}
