//! [`Controller::reconcile`]: brings the elector up to date with the observations, runs the
//! VIP handshake, and turns the result into a [`Plan`] of label patches, VIP Lease writes,
//! status patches, events and metrics.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::health::HealthReason;
use super::labels;
use super::plan::{DecisionLatency, Event, Plan, VipWrite};
use super::state::Controller;
use super::status;
use super::time::Instant;
use super::vip::{self, lease_name};
use crate::elect::Elector;
use crate::elect::SharedNode;
use crate::model::catalog::SourceIp;
use crate::model::labels::active_for_label;

impl Controller {
    /// Decides what to write at `now`. Returns an empty plan while caches are not synced.
    ///
    /// Only what changed since the last call is looked at: nodes observed or due (time
    /// changed their facts), gateways whose record or election result changed, VIP gateways
    /// (their handshake moves with time and Lease updates), and whatever the last plan still
    /// had to write (a write not yet seen echoed is planned again: plans stay level-based).
    pub fn reconcile(&mut self, now: Instant) -> Plan {
        if !self.synced {
            return Plan::default();
        }
        self.evaluate_due(now);
        let Some(changed) = self.update_elector(now) else {
            return Plan::default();
        };
        let Some(elector) = &self.elector else {
            return Plan::default();
        };
        let election = elector.election();
        let look_at: BTreeSet<String> = match changed {
            Changed::All => {
                // `targeted` is the inverse of `decided`, which now holds the adopted holders.
                self.targeted.clear();
                for (gateway, node) in &self.decided {
                    if let Some(node) = node {
                        self.targeted
                            .entry(node.clone())
                            .or_default()
                            .insert(gateway.clone());
                    }
                }
                self.relabel.extend(self.nodes.keys().cloned());
                self.relabel.extend(self.cilium_nodes.keys().cloned());
                self.gateways
                    .keys()
                    .chain(self.decided.keys())
                    .cloned()
                    .collect()
            }
            Changed::Gateways(mut names) => {
                names.append(&mut self.restatus);
                names.extend(
                    self.gateways
                        .iter()
                        .filter(|(_, r)| r.gateway.needs_vip_agent())
                        .map(|(n, _)| n.clone()),
                );
                names
            }
        };
        self.restatus.clear();

        let mut plan = Plan {
            disruption: self.observation.pending_change.take(),
            ..Plan::default()
        };
        let mut wakeups: Vec<Instant> = Vec::new();
        let mut decisions: Vec<(String, Option<String>)> = Vec::new();
        for name in &look_at {
            let (Some(record), Some(result)) =
                (self.gateways.get(name), election.gateways.get(name))
            else {
                // Gone: its label goes with it.
                if let Some(Some(old)) = self.decided.remove(name) {
                    untarget(&mut self.targeted, &old, name);
                    self.relabel.insert(old);
                }
                continue;
            };
            let desired = result.active.as_deref();
            let (target, vip_pending) = match &record.gateway.source {
                SourceIp::PrimaryInterface { .. } => (desired.map(str::to_owned), false),
                SourceIp::VirtualIp { ip, .. } => {
                    let lease = self.vip_leases.get(name);
                    let holder = lease.and_then(|l| l.observed.holder.as_deref());
                    let view = self.view(now);
                    let cannot_renew =
                        holder.is_some_and(|h| vip::cannot_renew(self.nodes.get(h), &view));
                    let step = vip::step(
                        name,
                        &ip.to_string(),
                        desired,
                        lease,
                        cannot_renew,
                        now,
                        &self.timing,
                    );
                    plan.vip.extend(step.write);
                    wakeups.extend(step.wakeup);
                    match desired {
                        None => (None, false),
                        Some(_) if step.confirmed => (desired.map(str::to_owned), false),
                        // Until the new node confirms the VIP, the label stays where it is.
                        Some(_) => (self.current_holder(name), true),
                    }
                }
            };
            let unhealthy = if result.active.is_none() {
                self.unhealthy_members(name, now)
            } else {
                Vec::new()
            };
            if let Some(update) = status::update(
                name,
                record.generation,
                result,
                (target.as_deref(), vip_pending),
                &unhealthy,
                record.status.as_ref(),
            ) {
                plan.statuses.push(update);
                self.restatus.insert(name.clone());
            }
            // `decided` still holds the previous target: `record_decisions` updates it below.
            let previous = self.decided.get(name).cloned().flatten();
            if previous != target {
                if let Some(old) = previous {
                    untarget(&mut self.targeted, &old, name);
                    self.relabel.insert(old);
                }
                if let Some(node) = &target {
                    self.targeted
                        .entry(node.clone())
                        .or_default()
                        .insert(name.clone());
                    self.relabel.insert(node.clone());
                }
            }
            decisions.push((name.clone(), target));
        }
        plan.vip.extend(self.orphan_lease_deletions());
        let relabel = std::mem::take(&mut self.relabel);
        plan.labels = labels::patches(
            &relabel,
            &self.nodes,
            &self.cilium_nodes,
            &self.targeted,
            elector,
        );
        // Level-based: a node with a patch is diffed again until its echo shows the labels.
        self.relabel
            .extend(plan.labels.iter().map(|patch| patch.node.clone()));
        self.record_decisions(now, &decisions, &mut plan);
        wakeups.extend(self.next_due());
        plan.next_wakeup = wakeups.into_iter().min();
        plan
    }

    /// The node carrying the gateway's `active-for-…` label (the first by name, if several).
    fn current_holder(&self, gateway: &str) -> Option<String> {
        self.holders
            .get(&active_for_label(gateway))
            .and_then(|nodes| nodes.first())
            .cloned()
    }

    /// Why the node can no longer carry `gateway` (`None`: it can, or it is unknown).
    fn unhealthy_reason(&self, node: &str, gateway: &str, now: Instant) -> Option<HealthReason> {
        let health = self.nodes.get(node)?;
        let view = self.view(now);
        match self.gateways.get(gateway) {
            Some(record) if record.gateway.needs_vip_agent() => health.vip_reason(&view),
            _ => health.reason(&view),
        }
    }

    /// The first few nodes `gateway`'s selector matches, with why each cannot carry it (for
    /// the status of a gateway without an eligible node).
    fn unhealthy_members(&self, gateway: &str, now: Instant) -> Vec<(String, HealthReason)> {
        const SHOWN: usize = 3;
        let Some(record) = self.gateways.get(gateway) else {
            return Vec::new();
        };
        let view = self.view(now);
        self.nodes
            .iter()
            .filter_map(|(name, health)| {
                let node = health.node.as_ref()?;
                if !record.gateway.selects(&node.labels) {
                    return None;
                }
                let reason = if record.gateway.needs_vip_agent() {
                    health.vip_reason(&view)
                } else {
                    health.reason(&view)
                };
                Some((name.clone(), reason?))
            })
            .take(SHOWN)
            .collect()
    }

    /// Feeds changed node facts and gateways to the elector, building it on first use.
    /// Returns which gateways' results may have changed (`None` if there is no elector).
    fn update_elector(&mut self, now: Instant) -> Option<Changed> {
        let dirty = std::mem::take(&mut self.dirty_nodes);
        let view = self.view(now);
        let Some(elector) = &mut self.elector else {
            let nodes: Vec<SharedNode> = self
                .nodes
                .iter()
                .filter_map(|(name, health)| health.facts(name, &view))
                .collect();
            let gateways: Vec<_> = self
                .gateways
                .values()
                .map(|r| Arc::clone(&r.gateway))
                .collect();
            let elector = Elector::from_shared(gateways, nodes);
            // Adopted holders are not decisions: no events, no failovers.
            self.decided = self
                .gateways
                .keys()
                .map(|g| (g.clone(), self.current_holder(g)))
                .collect();
            self.dirty_gateways.clear();
            self.restatus.clear();
            self.elector = Some(elector);
            return Some(Changed::All);
        };
        let mut changed = BTreeSet::new();
        for name in dirty {
            let node = self
                .nodes
                .get(&name)
                .and_then(|health| health.facts(&name, &view));
            // The elector's copy is what it was last given: only a difference is fed.
            match node {
                None => changed.extend(elector.delete_node(&name)),
                Some(node) => {
                    if elector.node(&name) != Some(&node) {
                        changed.extend(elector.apply_shared(node));
                    }
                }
            }
        }
        let dirty_gateways = std::mem::take(&mut self.dirty_gateways);
        if !dirty_gateways.is_empty() {
            // Membership of any node may follow a gateway's selector: diff every node.
            self.relabel.extend(self.nodes.keys().cloned());
            self.relabel.extend(self.cilium_nodes.keys().cloned());
        }
        for name in dirty_gateways {
            match self.gateways.get(&name) {
                Some(record) => {
                    elector.apply_shared_gateway(Arc::clone(&record.gateway));
                }
                None => {
                    elector.delete_gateway(&name);
                }
            }
            changed.insert(name);
        }
        Some(Changed::Gateways(changed))
    }

    /// Leases of gateways that are gone or no longer VIP: withdraw the grant, then delete the
    /// Lease once its holder released it.
    fn orphan_lease_deletions(&self) -> Vec<VipWrite> {
        let orphans = self.vip_leases.iter().filter(|(gateway, _)| {
            self.gateways
                .get(*gateway)
                .is_none_or(|r| !r.gateway.needs_vip_agent())
        });
        orphans
            .filter_map(|(gateway, lease)| {
                let (lease_name, resource_version) =
                    (lease_name(gateway), lease.observed.resource_version.clone());
                match (&lease.observed.grant, &lease.observed.holder) {
                    (Some(_), _) => Some(VipWrite::Withdraw {
                        gateway: gateway.clone(),
                        lease: lease_name,
                        resource_version,
                    }),
                    (None, None) => Some(VipWrite::Delete {
                        lease: lease_name,
                        resource_version,
                    }),
                    (None, Some(_)) => None,
                }
            })
            .collect()
    }

    /// Events, failover counters and decision latencies for targets that changed.
    fn record_decisions(
        &mut self,
        now: Instant,
        targets: &[(String, Option<String>)],
        plan: &mut Plan,
    ) {
        for (gateway, target) in targets {
            let previous = self.decided.get(gateway).cloned().flatten();
            if self.decided.contains_key(gateway) && previous == *target {
                continue;
            }
            let why = previous
                .as_deref()
                .and_then(|old| self.unhealthy_reason(old, gateway, now));
            let because = why.map_or_else(String::new, |r| format!(" ({})", r.as_str()));
            let event = match (&previous, target) {
                (None, Some(node)) => Event {
                    gateway: gateway.clone(),
                    warning: false,
                    reason: "ActiveNodeElected",
                    message: format!("node {node} now carries the gateway"),
                },
                (Some(old), Some(node)) => Event {
                    gateway: gateway.clone(),
                    warning: true,
                    reason: "Failover",
                    message: format!("moved from node {old}{because} to node {node}"),
                },
                (Some(old), None) => Event {
                    gateway: gateway.clone(),
                    warning: true,
                    reason: "NoEligibleNode",
                    message: format!(
                        "node {old}{because} no longer carries the gateway and no node can"
                    ),
                },
                (None, None) => {
                    self.decided.insert(gateway.clone(), None);
                    continue;
                }
            };
            if let Some(old) = &previous {
                if target.is_some() {
                    *self.failovers.entry(gateway.clone()).or_default() += 1;
                }
                if let Some(changed) = self.nodes.get(old).and_then(|h| h.health_changed_at) {
                    plan.decision_latencies.push(DecisionLatency {
                        gateway: gateway.clone(),
                        reason: why,
                        latency: now.since(changed),
                    });
                }
            }
            plan.events.push(event);
            self.decided.insert(gateway.clone(), target.clone());
        }
    }
}

/// What [`Controller::update_elector`] changed.
enum Changed {
    /// The elector was (re)built: look at everything.
    All,
    /// Gateways whose result or record may have changed.
    Gateways(BTreeSet<String>),
}

fn untarget(targeted: &mut HashMap<String, BTreeSet<String>>, node: &str, gateway: &str) {
    if let Some(gateways) = targeted.get_mut(node) {
        gateways.remove(gateway);
        if gateways.is_empty() {
            targeted.remove(node);
        }
    }
}
