//! The continuous invariants, checked on every change the server commits (kube-testserver's
//! in-process change feed: faults do not blind it, and no state is too short-lived to be seen,
//! which a 20 ms poller could not promise):
//! - no gateway's `active-for-…` label is on two nodes at once, counting Node and CiliumNode
//!   objects together;
//! - a VIP gateway's label only ever moves to a node that holds its Lease (`holderIdentity` and
//!   `vip-ready` both name it);
//! - no CEGP egressc owns (the policy's, owner-referenced to it) is deleted while its policy
//!   exists (the soak never deletes policies);
//! - nothing egressc does not own changes: the foreign label on every Node and CiliumNode, the
//!   hand-written CEGP.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use egressc::controller::{GATEWAY_ANNOTATION, READY_ANNOTATION};
use kube_testserver::{Change, ChangeFeed, ChangeKind, FeedError};
use serde_json::Value;

use super::world::{FOREIGN_LABEL, FOREIGN_VALUE, HAND_WRITTEN_CEGP, NAMESPACE};

const ACTIVE_PREFIX: &str = "egress-gateway.network.deckhouse.io/active-for-";

/// What the checker found so far.
#[derive(Default, Debug)]
pub struct Findings {
    pub violations: Vec<String>,
    /// Changes looked at.
    pub changes: u64,
    /// Times a gateway's label appeared on a node that did not carry it.
    pub label_moves: u64,
    /// Of those, moves of VIP gateways.
    pub vip_moves: u64,
}

/// The checker's model of the cluster, built from the feed alone.
struct Model {
    epoch: Instant,
    vip_gateways: BTreeSet<String>,
    policies: BTreeSet<String>,
    /// gateway → nodes whose Node carries the label; same for CiliumNodes.
    on_nodes: BTreeMap<String, BTreeSet<String>>,
    on_cilium: BTreeMap<String, BTreeSet<String>>,
    /// gateway → (holderIdentity, vip-ready) of its VIP Lease.
    vip_leases: BTreeMap<String, (String, String)>,
    hand_written_seen: bool,
    findings: Arc<Mutex<Findings>>,
}

fn active_gateways(object: &Value) -> BTreeSet<String> {
    object["metadata"]["labels"]
        .as_object()
        .map(|labels| {
            labels
                .keys()
                .filter_map(|k| k.strip_prefix(ACTIVE_PREFIX).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn name(object: &Value) -> String {
    object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Starts checking every change from `feed`; findings accumulate in the returned handle.
pub fn spawn(
    mut feed: ChangeFeed,
    vip_gateways: BTreeSet<String>,
    policies: BTreeSet<String>,
    epoch: Instant,
) -> Arc<Mutex<Findings>> {
    let findings = Arc::new(Mutex::new(Findings::default()));
    let mut model = Model {
        epoch,
        vip_gateways,
        policies,
        on_nodes: BTreeMap::new(),
        on_cilium: BTreeMap::new(),
        vip_leases: BTreeMap::new(),
        hand_written_seen: false,
        findings: Arc::clone(&findings),
    };
    tokio::spawn(async move {
        loop {
            match feed.next().await {
                Ok(change) => model.check(&change),
                Err(FeedError::Lagged(missed)) => {
                    model.violation(format!("the checker fell {missed} changes behind"));
                }
                Err(FeedError::Closed) => return,
            }
        }
    });
    findings
}

impl Model {
    fn violation(&self, what: String) {
        if let Ok(mut findings) = self.findings.lock() {
            findings.violations.push(format!(
                "at {:.3} s: {what}",
                self.epoch.elapsed().as_secs_f64()
            ));
        }
    }

    fn check(&mut self, change: &Change) {
        if let Ok(mut findings) = self.findings.lock() {
            findings.changes += 1;
        }
        let object = &change.object;
        let rv = change.resource_version;
        match (
            change.resource.group.as_str(),
            change.resource.plural.as_str(),
        ) {
            ("", "nodes") => {
                self.foreign_label(change, "Node");
                self.labels(change, false);
            }
            ("cilium.io", "ciliumnodes") => {
                self.foreign_label(change, "CiliumNode");
                self.labels(change, true);
            }
            ("coordination.k8s.io", "leases") if object["metadata"]["namespace"] == NAMESPACE => {
                if let Some(gateway) =
                    object["metadata"]["annotations"][GATEWAY_ANNOTATION].as_str()
                {
                    let holder = object["spec"]["holderIdentity"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    let ready = object["metadata"]["annotations"][READY_ANNOTATION]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    self.vip_leases.insert(gateway.to_owned(), (holder, ready));
                }
            }
            ("cilium.io", "ciliumegressgatewaypolicies") => {
                let cegp = name(object);
                if cegp == HAND_WRITTEN_CEGP {
                    if self.hand_written_seen {
                        self.violation(format!(
                            "rv {rv}: the hand-written CEGP was {:?}",
                            change.kind
                        ));
                    }
                    self.hand_written_seen = true;
                } else if change.kind == ChangeKind::Deleted && self.policies.contains(&cegp) {
                    self.violation(format!("rv {rv}: CEGP {cegp} of a live policy was deleted"));
                }
            }
            _ => {}
        }
    }

    fn foreign_label(&self, change: &Change, kind: &str) {
        let object = &change.object;
        if change.kind != ChangeKind::Deleted
            && object["metadata"]["labels"][FOREIGN_LABEL] != FOREIGN_VALUE
        {
            self.violation(format!(
                "rv {}: {kind} {}: foreign label {FOREIGN_LABEL} is now {}",
                change.resource_version,
                name(object),
                object["metadata"]["labels"][FOREIGN_LABEL]
            ));
        }
    }

    /// Updates who carries which gateway's label and checks the label invariants for the
    /// gateways this change touched.
    fn labels(&mut self, change: &Change, cilium: bool) {
        let node = name(&change.object);
        let now: BTreeSet<String> = match change.kind {
            ChangeKind::Deleted => BTreeSet::new(),
            ChangeKind::Added | ChangeKind::Modified => active_gateways(&change.object),
        };
        let before: BTreeSet<String> = change
            .previous
            .as_deref()
            .map(active_gateways)
            .unwrap_or_default();
        let map = if cilium {
            &mut self.on_cilium
        } else {
            &mut self.on_nodes
        };
        for gateway in before.difference(&now) {
            if let Some(holders) = map.get_mut(gateway) {
                holders.remove(&node);
            }
        }
        let added: Vec<String> = now.difference(&before).cloned().collect();
        for gateway in &added {
            let was_elsewhere = self.holders(gateway);
            let map = if cilium {
                &mut self.on_cilium
            } else {
                &mut self.on_nodes
            };
            map.entry(gateway.clone()).or_default().insert(node.clone());
            let holders = self.holders(gateway);
            if holders.len() > 1 {
                self.violation(format!(
                    "rv {}: gateway {gateway} labelled on {} nodes: {holders:?} \
                     (Nodes {:?}, CiliumNodes {:?})",
                    change.resource_version,
                    holders.len(),
                    self.on_nodes.get(gateway),
                    self.on_cilium.get(gateway),
                ));
            }
            if was_elsewhere.contains(&node) {
                continue;
            }
            let vip = self.vip_gateways.contains(gateway);
            if let Ok(mut findings) = self.findings.lock() {
                findings.label_moves += 1;
                findings.vip_moves += u64::from(vip);
            }
            if vip {
                let lease = self.vip_leases.get(gateway).cloned().unwrap_or_default();
                if lease.0 != node || lease.1 != node {
                    self.violation(format!(
                        "rv {}: VIP gateway {gateway} labelled on {node} while its Lease has \
                         holder {:?}, vip-ready {:?}",
                        change.resource_version, lease.0, lease.1
                    ));
                }
            }
        }
    }

    /// Nodes carrying `gateway`'s label on either kind.
    fn holders(&self, gateway: &str) -> BTreeSet<String> {
        let mut all = self.on_nodes.get(gateway).cloned().unwrap_or_default();
        all.extend(self.on_cilium.get(gateway).cloned().unwrap_or_default());
        all
    }
}
