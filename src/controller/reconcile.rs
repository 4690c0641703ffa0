//! [`Controller::reconcile`]: brings the elector up to date with the observations, runs the
//! VIP handshake, and turns the result into a [`Plan`] of label patches, VIP Lease writes,
//! status patches, events and metrics.

use std::collections::{BTreeMap, BTreeSet};

use super::labels;
use super::observe::Controller;
use super::plan::{Event, Plan, VipWrite};
use super::status;
use super::time::Instant;
use super::vip::{self, lease_name};
use crate::elect::Elector;
use crate::model::catalog::{NodeFacts, SourceIp};
use crate::model::labels::active_for_label;

impl Controller {
    /// Decides what to write at `now`. Returns an empty plan while caches are not synced.
    pub fn reconcile(&mut self, now: Instant) -> Plan {
        if !self.synced {
            return Plan::default();
        }
        self.evaluate_all(now);
        self.update_elector(now);
        let Some(elector) = &self.elector else {
            return Plan::default();
        };
        let election = elector.election();
        let holders = labels::observed_holders(&self.nodes);

        let mut plan = Plan::default();
        let mut wakeups: Vec<Instant> = Vec::new();
        let mut targets: BTreeMap<String, Option<String>> = BTreeMap::new();
        for (name, record) in &self.gateways {
            let Some(result) = election.gateways.get(name) else {
                continue;
            };
            let desired = result.active.as_deref();
            let label_key = active_for_label(name);
            let current = holders
                .get(&label_key)
                .and_then(|nodes| nodes.first())
                .cloned();
            let (target, vip_pending) = match &record.gateway.source {
                SourceIp::PrimaryInterface { .. } => (desired.map(str::to_owned), false),
                SourceIp::VirtualIp { ip, .. } => {
                    let step = vip::step(
                        name,
                        &ip.to_string(),
                        desired,
                        self.vip_leases.get(name),
                        now,
                        &self.timing,
                    );
                    plan.vip.extend(step.write);
                    wakeups.extend(step.wakeup);
                    match desired {
                        None => (None, false),
                        Some(_) if step.confirmed => (desired.map(str::to_owned), false),
                        // Until the new node confirms the VIP, the label stays where it is.
                        Some(_) => (current.clone(), true),
                    }
                }
            };
            if let Some(update) = status::update(
                name,
                record.generation,
                result,
                target.as_deref(),
                vip_pending,
                record.status.as_ref(),
            ) {
                plan.statuses.push(update);
            }
            targets.insert(name.clone(), target);
        }
        plan.vip.extend(self.orphan_lease_deletions());
        plan.labels = labels::patches(&self.nodes, &self.cilium_nodes, &targets, election);
        self.record_decisions(now, &targets, &mut plan);
        wakeups.extend(
            self.nodes
                .values()
                .filter_map(|h| h.next_change(now, &self.timing)),
        );
        plan.next_wakeup = wakeups.into_iter().min();
        plan
    }

    /// Feeds changed node facts and gateways to the elector, building it on first use.
    fn update_elector(&mut self, now: Instant) {
        let facts: BTreeMap<&String, NodeFacts> = self
            .nodes
            .iter()
            .filter_map(|(name, health)| health.facts(now, &self.timing).map(|f| (name, f)))
            .collect();
        let Some(elector) = &mut self.elector else {
            let gateways: Vec<_> = self.gateways.values().map(|r| r.gateway.clone()).collect();
            let nodes: Vec<NodeFacts> = facts.values().cloned().collect();
            let elector = Elector::new(&gateways, &nodes);
            // Adopted holders are not decisions: no events, no failovers.
            let holders = labels::observed_holders(&self.nodes);
            self.decided = self
                .gateways
                .keys()
                .map(|g| {
                    let current = holders
                        .get(&active_for_label(g))
                        .and_then(|n| n.first())
                        .cloned();
                    (g.clone(), current)
                })
                .collect();
            self.fed = facts.into_iter().map(|(n, f)| (n.clone(), f)).collect();
            self.dirty_gateways.clear();
            self.elector = Some(elector);
            return;
        };
        let gone: Vec<String> = self
            .fed
            .keys()
            .filter(|name| !facts.contains_key(name))
            .cloned()
            .collect();
        for name in gone {
            elector.delete_node(&name);
            self.fed.remove(&name);
        }
        for (name, node) in facts {
            if self.fed.get(name) != Some(&node) {
                self.fed.insert(name.clone(), node.clone());
                elector.apply_node(node);
            }
        }
        for name in std::mem::take(&mut self.dirty_gateways) {
            match self.gateways.get(&name) {
                Some(record) => {
                    elector.apply_gateway(record.gateway.clone());
                }
                None => {
                    elector.delete_gateway(&name);
                }
            }
        }
    }

    /// Leases of gateways that are gone or no longer VIP: withdraw the grant, then delete the
    /// Lease once its holder released it.
    fn orphan_lease_deletions(&self) -> Vec<VipWrite> {
        let orphans = self.vip_leases.iter().filter(|(gateway, _)| {
            self.gateways
                .get(*gateway)
                .is_none_or(|r| !r.gateway.is_vip())
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
        targets: &BTreeMap<String, Option<String>>,
        plan: &mut Plan,
    ) {
        for (gateway, target) in targets {
            let previous = self.decided.get(gateway).cloned().flatten();
            if self.decided.contains_key(gateway) && previous == *target {
                continue;
            }
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
                    message: format!("moved from node {old} to node {node}"),
                },
                (Some(old), None) => Event {
                    gateway: gateway.clone(),
                    warning: true,
                    reason: "NoEligibleNode",
                    message: format!("node {old} no longer carries the gateway and no node can"),
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
                    plan.decision_latencies
                        .push((gateway.clone(), now.since(changed)));
                }
            }
            plan.events.push(event);
            self.decided.insert(gateway.clone(), target.clone());
        }
        let live: BTreeSet<&String> = targets.keys().collect();
        self.decided.retain(|gateway, _| live.contains(gateway));
    }
}
