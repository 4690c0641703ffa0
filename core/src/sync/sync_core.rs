//! Every decision of `egressc sync` in one place. [`SyncCore`] owns the [`Index`] of watched
//! objects, the election's [`Controller`] and the CEGP compiler. The shell hands it every watch
//! event, probe result, leadership gain and failed write ([`SyncCore::handle`]) and asks it what
//! to write ([`SyncCore::reconcile`], then [`SyncCore::reconcile_after_labels`]): label moves, VIP
//! Lease writes, every status condition (gateway `Ready` and `Accepted`, policy `Ready`),
//! Events, and every CEGP create, update and delete. The shell only watches, writes each
//! [`Plan`] in order (label removals, label additions, VIP Leases, statuses, Events, CEGPs),
//! reports failed writes back and exports metrics. No I/O: `now` is the election's monotonic
//! clock, `wall` the timestamp a flipped condition gets.
//!
//! A reconcile has two stages, written in this order. [`SyncCore::reconcile`] is the failover
//! path, kept as short as the decision allows: label moves and VIP Lease writes. Once its label
//! writes succeeded, [`SyncCore::reconcile_after_labels`] decides the rest: gateway and policy
//! statuses, Events and CEGPs, after running the policy checks deferred until then.
//! Validating 10,000 listed policies and rendering their CEGPs takes about a second, which the
//! first labels after a start must not wait for (BENCHMARKS.md, "Initial sync"), and a
//! failover's labels need not wait for 100 status bodies either. Both stages look only at what
//! changed: node events never re-validate anything, and every CEGP is compared again only
//! after a gateway or policy change, a leadership gain or a failed CEGP write.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::Value;

use super::cegp::CegpCompiler;
use super::echoes::AwaitedEchoes;
use super::index::{Index, WatchEvent};
use super::patches::{self, Body};
use super::statuses;
use crate::controller::conditions::{CEGP_CONFLICT_REASON, INVALID_REASON, cegp_conflict_message};
use crate::controller::{
    Controller, DecisionLatency, DisruptionChange, Event as ControllerEvent, Instant, LabelPatch,
    LabelSet, NodeKind, ProbeTarget, ProbeTargets, StatusUpdate, Timing, VipWrite,
};
use crate::render::RenderError;
use crate::validate::Options;
use crate::validate::documents::GATEWAY_KIND;

/// What the shell reports to the core.
#[derive(Clone, Debug)]
pub enum Input {
    /// A watch event.
    Watch(WatchEvent),
    /// A direct probe of `node`'s `target`.
    Probe {
        /// Node name.
        node: String,
        /// What was probed.
        target: ProbeTarget,
        /// Whether it answered healthy.
        ok: bool,
    },
    /// This replica became leader: adopt the labels in place and compare every CEGP again.
    Leading,
    /// The API server accepted this label patch: it is not planned again until an event of
    /// its object is indexed (its echo, or anything else that may have changed its labels).
    LabelsAnswered(LabelPatch),
    /// A write of a plan failed (label and VIP Lease writes need no report: plans are
    /// level-based and plan them again until their echo is observed).
    Failed(Written),
}

/// A write whose failure the core must know about, to plan it again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Written {
    /// The status patch of this gateway.
    GatewayStatus(String),
    /// The status patch of this policy.
    PolicyStatus(String),
    /// The apply or delete of this CEGP.
    Cegp(String),
}

/// One label patch with the full set of egressc labels the object keeps after it (applied
/// by server-side apply when the patch sets any; removals go by merge patch).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelWrite {
    /// What the election decided.
    pub patch: LabelPatch,
    /// egressc's labels on the object after the patch.
    pub labels: LabelSet,
}

/// One VIP Lease request.
#[derive(Clone, Debug, PartialEq)]
pub struct VipLeaseWrite {
    /// The decision (docs/lease-protocol.md), for logs.
    pub write: VipWrite,
    /// The Lease's name.
    pub lease: String,
    /// The request.
    pub request: VipRequest,
}

/// How a VIP Lease is written; every update is conditioned on the version it was decided on.
#[derive(Clone, Debug, PartialEq)]
pub enum VipRequest {
    /// Create this Lease.
    Create(Lease),
    /// Replace the Lease with this one (its `resourceVersion` is the precondition).
    Replace(Lease),
    /// Delete the Lease if it is still at this `resourceVersion`.
    Delete {
        /// The precondition.
        resource_version: String,
    },
}

/// A merge patch of a status subresource.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusWrite {
    /// The object's name.
    pub name: String,
    /// The patch.
    pub body: Body,
}

/// An Event to create.
#[derive(Clone, Debug, PartialEq)]
pub struct EventWrite {
    /// The gateway or policy it is about.
    pub regarding: ObjectReference,
    /// `Warning` rather than `Normal`.
    pub warning: bool,
    /// Stable CamelCase reason.
    pub reason: String,
    /// Human-readable note.
    pub note: String,
}

/// A CEGP write. The body of an apply is built when it is sent ([`SyncCore::cegp_body`]):
/// 10,000 CEGP bodies held at once would cost tens of megabytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CegpWrite {
    /// Apply the rendering of policy `name`. `force` only for a CEGP observed to be egressc's
    /// own: one not seen yet is applied without force, so that one someone else created in the
    /// meantime is refused by the API server (409) instead of being taken over.
    Apply {
        /// The CEGP's (and its policy's) name.
        name: String,
        /// Take over conflicting fields.
        force: bool,
    },
    /// Delete egressc's CEGP `name` (its policy is gone), only if it is still the object with
    /// `uid`: a CEGP recreated by someone else under that name is left alone.
    Delete {
        /// The CEGP's name.
        name: String,
        /// Its observed `metadata.uid`.
        uid: Option<String>,
    },
}

/// What one stage of a reconcile asks the shell to write, in the order to write it, plus what
/// the shell reports in metrics and logs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Label patches; those removing an `active-for-…` label are to be answered before any
    /// other is sent, and a failure ends the batch.
    pub labels: Vec<LabelWrite>,
    /// VIP Lease writes.
    pub vip: Vec<VipLeaseWrite>,
    /// EgressGateway status patches (`Ready` and `Accepted`).
    pub gateway_statuses: Vec<StatusWrite>,
    /// EgressGatewayPolicy status patches (`Ready`).
    pub policy_statuses: Vec<StatusWrite>,
    /// Events.
    pub events: Vec<EventWrite>,
    /// CEGP applies and deletes.
    pub cegps: Vec<CegpWrite>,
    /// The election's gateway status updates (active node, ready nodes: for metrics).
    pub gateway_updates: Vec<StatusUpdate>,
    /// See [`crate::controller::Plan::decision_latencies`].
    pub decision_latencies: Vec<DecisionLatency>,
    /// Heartbeat disruption mode was entered or left (for the log).
    pub disruption: Option<DisruptionChange>,
    /// Reconcile again then even without new observations.
    pub next_wakeup: Option<Instant>,
    /// How many policies name a gateway that does not exist, when that may have changed.
    pub orphan_policies: Option<usize>,
    /// Policies whose CEGP cannot be rendered, with why (the CEGP in place is kept).
    pub unrenderable: Vec<(String, String)>,
}

impl Plan {
    /// Status writes of both kinds.
    pub fn statuses(&self) -> usize {
        self.gateway_statuses.len() + self.policy_statuses.len()
    }
}

/// The core of `egressc sync`. See the module docs.
#[derive(Clone, Debug)]
pub struct SyncCore {
    index: Index,
    controller: Controller,
    compiler: CegpCompiler,
    /// Every CEGP must be compared with its rendering again (start, leadership gained, a
    /// failed CEGP write).
    cegps_dirty: bool,
    /// Every watch has listed since its last failure (as last told to the controller).
    synced: bool,
    /// The election's status updates and Events of the last [`SyncCore::reconcile`], written
    /// by the second stage (replaced by the next reconcile: status updates are planned again
    /// until observed, and the Events of a batch whose labels failed are dropped).
    after_labels: (Vec<StatusUpdate>, Vec<ControllerEvent>),
    /// Label patches the API server accepted whose echo is not indexed yet: not planned again
    /// meanwhile (`echoes.rs`).
    echoes: AwaitedEchoes,
}

impl SyncCore {
    /// A core with the election's `timing`, validating and rendering with `options`.
    pub fn new(timing: Timing, options: Options) -> Result<Self, RenderError> {
        let compiler = CegpCompiler::new(options.cilium)?;
        let mut index = Index::new(options);
        index.defer_policy_checks();
        Ok(SyncCore {
            index,
            controller: Controller::new(timing),
            compiler,
            cegps_dirty: true,
            synced: false,
            after_labels: (Vec::new(), Vec::new()),
            echoes: AwaitedEchoes::default(),
        })
    }

    /// Takes one report at `now`.
    pub fn handle(&mut self, now: Instant, input: Input) {
        match input {
            Input::Watch(event) => {
                self.echoes.observe(&event);
                self.index.handle(now, event, &mut self.controller);
                let synced = self.index.synced();
                if synced != self.synced {
                    self.synced = synced;
                    self.controller.set_synced(now, synced);
                }
            }
            Input::Probe { node, target, ok } => {
                self.controller.apply_probe(now, &node, target, ok);
            }
            Input::Leading => {
                self.controller.readopt();
                self.cegps_dirty = true;
            }
            Input::LabelsAnswered(patch) => self.echoes.answered(&patch),
            Input::Failed(Written::GatewayStatus(name)) => self.index.gateways.unsettle(&name),
            Input::Failed(Written::PolicyStatus(name)) => self.index.policies.unsettle(&name),
            Input::Failed(Written::Cegp(_)) => self.cegps_dirty = true,
        }
    }

    /// Has every watch listed since its last failure? Until then every plan is empty.
    pub fn synced(&self) -> bool {
        self.synced
    }

    /// The failover path at `now`: label moves and VIP Lease writes. Write them, then ask
    /// [`SyncCore::reconcile_after_labels`] for the rest.
    pub fn reconcile(&mut self, now: Instant) -> Plan {
        self.after_labels = (Vec::new(), Vec::new());
        if !self.synced {
            return Plan::default();
        }
        let decided = self.controller.reconcile(now);
        let empty = BTreeMap::new();
        // Plans are level-based: a patch is decided again until its echo is indexed. One the
        // API server already accepted is not sent again meanwhile — after a start thousands
        // are in flight, and a failover's patches would queue behind them.
        let labels = decided
            .labels
            .into_iter()
            .filter(|patch| !self.echoes.awaiting(patch))
            .map(|patch| {
                let observed = self.observed_labels(patch.kind, &patch.node);
                let labels = patches::owned_labels(observed.unwrap_or(&empty), &patch);
                LabelWrite { patch, labels }
            })
            .collect();
        let vip = decided
            .vip
            .into_iter()
            .filter_map(|write| self.vip_request(write))
            .collect();
        self.after_labels = (decided.statuses.clone(), decided.events);
        Plan {
            labels,
            vip,
            gateway_updates: decided.statuses,
            decision_latencies: decided.decision_latencies,
            disruption: decided.disruption,
            next_wakeup: decided.next_wakeup,
            ..Plan::default()
        }
    }

    /// The second stage (after [`SyncCore::reconcile`]'s labels were written): gateway
    /// statuses (the election's `Ready` with `Accepted`) and the election's Events, then the
    /// deferred policy checks, policy statuses, validity Events and CEGP writes.
    pub fn reconcile_after_labels(&mut self, wall: &Time) -> Plan {
        let (updates, election_events) = std::mem::take(&mut self.after_labels);
        if !self.synced {
            return Plan::default();
        }
        let mut plan = Plan {
            gateway_statuses: statuses::gateways(&mut self.index, &updates, wall)
                .into_iter()
                .map(|(name, body)| StatusWrite { name, body })
                .collect(),
            ..Plan::default()
        };
        for event in election_events {
            let Some(object) = self.index.gateways.object(&event.gateway) else {
                continue;
            };
            plan.events.push(EventWrite {
                regarding: reference(&object),
                warning: event.warning,
                reason: event.reason.to_owned(),
                note: event.message,
            });
        }
        self.index.settle_policies();
        let changes = self.index.take_verdict_changes();
        let touched = self.index.take_cegp_changes();
        let full = self.index.take_catalog_change() || self.cegps_dirty;
        if full || !changes.is_empty() {
            // A gateway or policy appeared, went or changed validity: orphans may have too.
            plan.orphan_policies = Some(self.orphan_policies());
        }
        let names: Vec<String> = if full {
            self.cegps_dirty = false;
            let (gateways, policies) = self.index.catalog_refs();
            self.compiler.render(&gateways, &policies)
        } else {
            touched.iter().cloned().collect()
        };
        let conflicts = if full || !touched.is_empty() {
            self.update_conflicts(&names, full)
        } else {
            Vec::new()
        };
        plan.policy_statuses = statuses::policies(&mut self.index, wall)
            .into_iter()
            .map(|(name, body)| StatusWrite { name, body })
            .collect();
        for change in changes {
            let object = if change.kind == GATEWAY_KIND {
                self.index.gateways.object(&change.name)
            } else {
                self.index.policies.object(&change.name)
            };
            let Some(object) = object else { continue };
            let (warning, reason, note) = match change.invalid {
                Some(message) => (true, INVALID_REASON, message),
                None => (false, "Valid", "the spec is valid again".to_owned()),
            };
            plan.events.push(EventWrite {
                regarding: reference(&object),
                warning,
                reason: reason.to_owned(),
                note,
            });
        }
        for name in conflicts {
            let Some(object) = self.index.policies.object(&name) else {
                continue;
            };
            plan.events.push(EventWrite {
                regarding: reference(&object),
                warning: true,
                reason: CEGP_CONFLICT_REASON.to_owned(),
                note: cegp_conflict_message(&name),
            });
        }
        self.plan_cegps(&names, &touched, full, &mut plan);
        plan
    }

    /// CEGP applies for the policies among `names` whose rendering differs from what is
    /// observed, and deletes of egressc's CEGPs (all when `full`, else those `touched`) whose
    /// policy is gone. A CEGP egressc does not own is never written or deleted.
    fn plan_cegps(
        &self,
        names: &[String],
        touched: &BTreeSet<String>,
        full: bool,
        plan: &mut Plan,
    ) {
        for name in names {
            let rendered = match self.compiler.cached(name) {
                None => continue,
                Some(Ok(rendered)) => rendered,
                Some(Err(error)) => {
                    plan.unrenderable.push((name.clone(), error.clone()));
                    continue;
                }
            };
            let observed = self.index.cegps.get(name);
            if observed.is_some_and(|cegp| !cegp.is_owned()) {
                // Someone else's CEGP of that name: reported, never written.
                continue;
            }
            let uid = self.index.policies.uid(name).unwrap_or_default();
            if rendered.differs(observed, name, uid) {
                plan.cegps.push(CegpWrite::Apply {
                    name: name.clone(),
                    force: observed.is_some(),
                });
            }
        }
        let orphans = self
            .index
            .cegps
            .iter()
            .filter(|(name, cegp)| (full || touched.contains(*name)) && cegp.is_owned())
            .filter(|(name, _)| !self.index.policies.contains(name))
            .map(|(name, cegp)| CegpWrite::Delete {
                name: name.clone(),
                uid: cegp.uid().map(str::to_owned),
            });
        plan.cegps.extend(orphans);
    }

    /// Finds the policies among `names` (all policies when `full`) whose CEGP name is taken by
    /// a CEGP egressc does not own; every change unsettles the policy's status (its `Ready`
    /// says so). Returns the policies whose conflict started (for a Warning Event).
    fn update_conflicts(&mut self, names: &[String], full: bool) -> Vec<String> {
        let index = &self.index;
        let conflicted = |name: &String| {
            index.policies.contains(name)
                && index.cegps.get(name).is_some_and(|cegp| !cegp.is_owned())
        };
        let now: BTreeSet<String> = names.iter().filter(|n| conflicted(n)).cloned().collect();
        let looked_at: BTreeSet<&String> = names.iter().collect();
        let before: BTreeSet<String> = index
            .cegp_conflicts
            .iter()
            .filter(|name| full || looked_at.contains(name) || !index.policies.contains(name))
            .cloned()
            .collect();
        let started: Vec<String> = now.difference(&before).cloned().collect();
        let ended: Vec<String> = before.difference(&now).cloned().collect();
        for name in &ended {
            self.index.cegp_conflicts.remove(name);
            self.index.policies.unsettle(name);
        }
        for name in &started {
            self.index.cegp_conflicts.insert(name.clone());
            self.index.policies.unsettle(name);
        }
        started
    }

    /// Policies naming a gateway that does not exist.
    fn orphan_policies(&self) -> usize {
        let index = &self.index;
        index
            .policies
            .verdicts()
            .filter(|(name, _)| {
                index
                    .policies
                    .object(name)
                    .and_then(|p| {
                        p.pointer("/spec/egressGatewayName")
                            .and_then(Value::as_str)
                            .map(|g| !index.gateways.contains(g))
                    })
                    .unwrap_or(false)
            })
            .count()
    }

    /// The request carrying out `write`, or `None` when the stored Lease is no longer the
    /// version it was decided on (the watch brings the newer one; the next plan decides again).
    fn vip_request(&self, write: VipWrite) -> Option<VipLeaseWrite> {
        let (lease, request) = match &write {
            VipWrite::Create {
                gateway,
                lease,
                vip,
                duration_seconds,
            } => (
                lease.clone(),
                VipRequest::Create(patches::new_vip_lease(
                    gateway,
                    lease,
                    vip,
                    *duration_seconds,
                )),
            ),
            VipWrite::Grant { lease, .. } | VipWrite::Withdraw { lease, .. } => {
                let stored = self.index.vip_leases.get(lease)?;
                let updated = patches::updated_vip_lease(stored, &write)?;
                (lease.clone(), VipRequest::Replace(updated))
            }
            VipWrite::Delete {
                lease,
                resource_version,
            } => (
                lease.clone(),
                VipRequest::Delete {
                    resource_version: resource_version.clone(),
                },
            ),
        };
        Some(VipLeaseWrite {
            write,
            lease,
            request,
        })
    }

    /// The object to apply for [`CegpWrite::Apply`] of policy `name`, rendered again from
    /// the policy's and its gateway's last good values (the compiler keeps only summaries;
    /// `None` once either is gone or the policy no longer renders — the next pass decides).
    pub fn cegp_body(&self, name: &str) -> Option<Value> {
        let policy = self.index.policies.last_good(name)?;
        let gateway = self.index.gateways.last_good(&policy.gateway)?;
        let uid = self.index.policies.uid(name).unwrap_or_default();
        self.compiler.body_of(policy, gateway, uid).ok()
    }

    /// The labels of a Node (all) or CiliumNode (egressc's), as observed.
    pub fn observed_labels(&self, kind: NodeKind, node: &str) -> Option<&BTreeMap<String, String>> {
        self.controller.observed_labels(kind, node)
    }

    /// The nodes and targets to probe, when they changed (see
    /// [`Controller::probe_targets`]).
    pub fn probe_targets(&mut self, now: Instant) -> Option<ProbeTargets> {
        self.controller.probe_targets(now)
    }

    /// True once after any Node's InternalIP changed (probe endpoints must follow).
    pub fn take_node_ips_change(&mut self) -> bool {
        self.index.take_node_ips_change()
    }

    /// Node `name`'s InternalIP, where it is probed.
    pub fn node_ip(&self, name: &str) -> Option<IpAddr> {
        self.index.node_ips.get(name).copied()
    }

    /// Label moves per gateway since the start (for metrics).
    pub fn failovers_total(&self) -> &BTreeMap<String, u64> {
        self.controller.failovers_total()
    }

    /// The index, read-only (for tests, benchmarks and metrics).
    pub fn index(&self) -> &Index {
        &self.index
    }
}

/// The reference an Event about `object` (a gateway or policy as JSON) carries.
fn reference(object: &Value) -> ObjectReference {
    let text = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    ObjectReference {
        api_version: text("/apiVersion"),
        kind: text("/kind"),
        name: text("/metadata/name"),
        uid: text("/metadata/uid"),
        resource_version: text("/metadata/resourceVersion"),
        ..ObjectReference::default()
    }
}
