//! The reconcile loop: drain watch events into the [`Index`], and after each batch (or at the
//! plan's wakeup, or a retry) ask the core for a plan and — only while every cache is synced
//! and this replica leads — write it. Writes run in order: label removals before additions,
//! then VIP Leases, statuses, Events, CEGPs. A failed label write ends the batch, so a new
//! active label is never added while the old one may still be in place.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use tokio::time::Instant as TokioInstant;

use super::cegp::{self, CegpCompiler};
use super::echoes::AwaitedEchoes;
use super::index::{Index, WatchEvent};
use super::leader::Leadership;
use super::metrics::{GatewayLabel, Metrics};
use super::patches;
use super::probe::{Endpoints, ProbeConfig, ProbeResult, Prober};
use super::reaction::{self, Intake, Phases, StepSummary};
use super::statuses;
use super::watch::Seen;
use super::writer::Writer;
use futures::{StreamExt, stream};

use crate::controller::{Instant, LabelPatch, Plan, ProbeTargets};
use crate::model::labels::is_active_for_label;
use crate::validate::documents::GATEWAY_KIND;

const IDLE: Duration = Duration::from_secs(3600);
const MIN_RETRY: Duration = Duration::from_millis(200);
const MAX_RETRY: Duration = Duration::from_secs(5);
/// Requests in flight at once within one group of independent writes. Thousands of label,
/// status and CEGP writes after a start would take seconds one round trip at a time.
const CONCURRENT_WRITES: usize = 32;

/// Runs `writes` with at most [`CONCURRENT_WRITES`] in flight; their outputs in completion order.
async fn concurrently<W: std::future::Future>(
    writes: impl IntoIterator<Item = W>,
) -> Vec<W::Output> {
    stream::iter(writes)
        .buffer_unordered(CONCURRENT_WRITES)
        .collect()
        .await
}

/// The loop's state.
pub struct Loop {
    pub(super) index: Index,
    pub(super) compiler: CegpCompiler,
    pub(super) writer: Writer,
    pub(super) metrics: Arc<Metrics>,
    pub(super) leadership: Leadership,
    epoch: TokioInstant,
    synced: bool,
    retry: Duration,
    cegps_dirty: bool,
    failovers_seen: BTreeMap<String, u64>,
    active_seen: BTreeMap<String, Option<String>>,
    prober: Option<(Prober, ProbeConfig)>,
    leadership_changed: bool,
    /// The core's last probe targets (endpoints also follow Node IP changes).
    probe_targets: ProbeTargets,
    /// The latest instant given to the core (it must never go back).
    last_now: Instant,
    /// The batch of events the current step reacts to.
    intake: Intake,
    /// What the previous step that did something did (for the slow-reaction log).
    previous: StepSummary,
    /// What the current step does.
    current: StepSummary,
    /// CEGP writes of the current step.
    cegp_writes: usize,
    /// Reactions slower than this are logged.
    slow_reaction: Duration,
    /// Label patches answered whose echo is not indexed yet: not sent again meanwhile.
    echoes: AwaitedEchoes,
}

impl Loop {
    /// A loop over the given parts; its monotonic epoch is now.
    pub fn new(
        index: Index,
        compiler: CegpCompiler,
        writer: Writer,
        metrics: Arc<Metrics>,
        leadership: Leadership,
    ) -> Self {
        let mut index = index;
        index.defer_policy_checks();
        Loop {
            index,
            compiler,
            writer,
            metrics,
            leadership,
            epoch: TokioInstant::now(),
            synced: false,
            retry: MIN_RETRY,
            cegps_dirty: true,
            failovers_seen: BTreeMap::new(),
            active_seen: BTreeMap::new(),
            prober: None,
            leadership_changed: true,
            probe_targets: ProbeTargets::new(),
            last_now: Instant::default(),
            intake: Intake::none(TokioInstant::now()),
            previous: StepSummary::default(),
            current: StepSummary::default(),
            cegp_writes: 0,
            slow_reaction: Duration::from_millis(100),
            echoes: AwaitedEchoes::default(),
        }
    }

    /// Logs reactions slower than `threshold` (`--slow-reaction`).
    pub fn with_slow_reaction(mut self, threshold: Duration) -> Self {
        self.slow_reaction = threshold;
        self
    }

    /// Probes the nodes the core names with `prober` (while this replica leads).
    pub fn with_prober(mut self, prober: Option<Prober>, config: ProbeConfig) -> Self {
        self.prober = prober.map(|prober| (prober, config));
        self
    }

    /// Feeds probe results to the core.
    fn apply_probe(&mut self, result: ProbeResult) {
        let now = self.now();
        self.index
            .controller
            .apply_probe(now, &result.node, result.target, result.ok);
    }

    /// Points the prober at the core's targets on their current InternalIPs; a standby probes
    /// nothing (the leader does; a new leader has results after one failure threshold).
    fn update_probes(&mut self) {
        let Some((prober, config)) = &self.prober else {
            return;
        };
        let now = Instant(self.epoch.elapsed());
        let changed = match self.index.controller.probe_targets(now) {
            Some(targets) => {
                self.probe_targets = targets;
                true
            }
            None => false,
        };
        if !(self.index.take_node_ips_change() || changed || self.leadership_changed) {
            return;
        }
        self.leadership_changed = false;
        let mut endpoints = Endpoints::new();
        if self.leadership.is_leader() {
            for (node, targets) in &self.probe_targets {
                let Some(ip) = self.index.node_ips.get(node) else {
                    continue;
                };
                for target in targets {
                    if let Some(url) = config.url(*ip, *target) {
                        endpoints.insert((node.clone(), *target), url);
                    }
                }
            }
        }
        prober.set(endpoints);
    }

    /// The core's clock: monotonic time since the loop started, never going back.
    fn now(&mut self) -> Instant {
        self.observed_at(TokioInstant::now())
    }

    /// The core's clock at `at` (when a watcher yielded an event: the observation happened
    /// then, however long the event waited for the loop), never going back.
    fn observed_at(&mut self, at: TokioInstant) -> Instant {
        self.last_now = self
            .last_now
            .max(Instant(at.saturating_duration_since(self.epoch)));
        self.last_now
    }

    /// Indexes one event at the instant it was seen.
    fn intake_one(&mut self, seen: Seen) {
        self.count_watch_restart(&seen.event);
        if let WatchEvent::Init(source) = &seen.event {
            self.metrics.reactions.listed(*source);
        }
        let now = self.observed_at(seen.at);
        self.echoes.observe(&seen.event);
        self.index.handle(now, seen.event);
    }

    /// Runs until `stop` turns true (or the watches end, which they do not); a step already
    /// writing is finished first.
    pub async fn run(
        mut self,
        mut events: tokio::sync::mpsc::Receiver<Seen>,
        mut probes: tokio::sync::mpsc::Receiver<ProbeResult>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut wake = TokioInstant::now() + IDLE;
        loop {
            if *stop.borrow() {
                tracing::info!("stopping: no more reconciles");
                return;
            }
            tokio::select! {
                _ = stop.changed() => continue,
                Some(result) = probes.recv() => {
                    self.intake = Intake::none(TokioInstant::now());
                    self.apply_probe(result);
                    while let Ok(result) = probes.try_recv() {
                        self.apply_probe(result);
                    }
                }
                event = events.recv() => {
                    let Some(seen) = event else { return };
                    let taken = TokioInstant::now();
                    self.intake_one(seen);
                    // Coalesce a burst: everything already queued joins this batch.
                    let mut batch = 1;
                    while let Ok(seen) = events.try_recv() {
                        self.intake_one(seen);
                        batch += 1;
                    }
                    self.intake = Intake { taken, indexed: TokioInstant::now(), events: batch };
                    tracing::trace!(batch, took = ?self.intake.indexed.duration_since(taken), "events indexed");
                }
                () = tokio::time::sleep_until(wake) => {
                    self.intake = Intake::none(TokioInstant::now());
                }
                () = self.leadership.changed() => {
                    self.intake = Intake::none(TokioInstant::now());
                    self.leadership_changed = true;
                    if self.leadership.is_leader() {
                        tracing::info!("became leader; adopting the labels in place");
                        self.index.controller.readopt();
                        self.cegps_dirty = true;
                    } else {
                        tracing::warn!("lost leadership; writing stops");
                    }
                }
            }
            self.update_probes();
            wake = self.step().await;
        }
    }

    fn count_watch_restart(&self, event: &WatchEvent) {
        if let WatchEvent::Failed(source) = event {
            self.metrics.operator.watch_restarted(source);
        }
    }

    /// One reconcile; returns when to run again without new events.
    async fn step(&mut self) -> TokioInstant {
        let started = TokioInstant::now();
        self.current = StepSummary::default();
        let wake = self.reconcile_and_write().await;
        let current = &mut self.current;
        if current.labels + current.statuses + current.cegps > 0 {
            current.ended = Some(TokioInstant::now());
            current.took = started.elapsed();
            self.previous = *current;
        }
        wake
    }

    async fn reconcile_and_write(&mut self) -> TokioInstant {
        let now = self.now();
        self.metrics
            .operator
            .leader
            .set(i64::from(self.leadership.is_leader()));
        let synced = self.index.synced();
        if synced != self.synced {
            self.synced = synced;
            self.index.controller.set_synced(now, synced);
            self.metrics.set_ready(synced);
            tracing::info!(synced, "watch caches");
        }
        if !synced || !self.leadership.is_leader() {
            return TokioInstant::now() + IDLE;
        }
        let decided_at = TokioInstant::now();
        let plan = self.index.controller.reconcile(now);
        tracing::debug!(
            labels = plan.labels.len(),
            statuses = plan.statuses.len(),
            batch = self.intake.events,
            indexing = ?self.intake.indexed.duration_since(self.intake.taken),
            took = ?decided_at.elapsed(),
            "planned"
        );
        self.current.labels = plan.labels.len();
        if let Some(change) = plan.disruption {
            tracing::warn!(
                stale = change.stale,
                nodes = change.nodes,
                disrupted = change.disrupted,
                "heartbeat disruption: staleness is {} evidence",
                if change.disrupted { "no" } else { "again" }
            );
        }
        let mut wake = plan
            .next_wakeup
            .map_or(decided_at + IDLE, |at| self.epoch + at.0);
        self.export_decisions(&plan);
        let applied = self.apply(plan, now, decided_at).await;
        self.metrics
            .operator
            .reconcile_duration
            .observe(decided_at.elapsed().as_secs_f64());
        if applied {
            self.retry = MIN_RETRY;
        } else {
            self.metrics.reconcile_errors.inc();
            wake = wake.min(TokioInstant::now() + self.retry);
            self.retry = (self.retry * 2).min(MAX_RETRY);
        }
        wake
    }

    fn export_decisions(&mut self, plan: &Plan) {
        for (gateway, total) in self.index.controller.failovers_total() {
            let seen = self.failovers_seen.entry(gateway.clone()).or_default();
            if *total > *seen {
                self.metrics
                    .failovers
                    .get_or_create(&GatewayLabel {
                        gateway: gateway.clone(),
                    })
                    .inc_by(*total - *seen);
                *seen = *total;
            }
        }
        for update in &plan.statuses {
            let previous = self
                .active_seen
                .insert(update.gateway.clone(), update.active_node.clone())
                .flatten();
            self.metrics.set_active(
                &update.gateway,
                previous.as_deref(),
                update.active_node.as_deref(),
            );
            self.metrics
                .eligible_nodes
                .get_or_create(&GatewayLabel {
                    gateway: update.gateway.clone(),
                })
                .set(update.ready_nodes);
        }
    }

    /// Writes the plan and everything validation asks for; false if any write failed.
    /// `now` is the core's clock of the reconcile that made the plan, started at `decided_at`.
    async fn apply(&mut self, plan: Plan, now: Instant, decided_at: TokioInstant) -> bool {
        let planned = TokioInstant::now();
        let Some(removed) = self.write_labels(&plan).await else {
            return false;
        };
        let labelled = TokioInstant::now();
        tracing::debug!(
            removals = ?removed.duration_since(planned),
            additions = ?labelled.duration_since(removed),
            "labels written"
        );
        self.record_reactions(&plan, now, planned, removed, labelled);
        self.index.settle_policies();
        let applied = decided_at.elapsed();
        for decision in &plan.decision_latencies {
            self.metrics.observe_label_move(decision.latency + applied);
            self.metrics
                .probes
                .observe_move(decision.reason, decision.latency + applied);
        }
        if !self.leadership.is_leader() {
            return true;
        }
        let mut ok = true;
        for write in &plan.vip {
            if let Err(error) = self.writer.vip(write, &self.index.vip_leases).await {
                tracing::warn!(?write, %error, "VIP Lease write failed");
                ok = false;
            }
        }
        ok &= self.write_statuses(&plan).await;
        tracing::debug!(took = ?decided_at.elapsed(), "labels and statuses written");
        let (writer, gateways) = (&self.writer, &self.index.gateways);
        let events = plan.events.iter().filter_map(|event| {
            let object = gateways.object(&event.gateway)?;
            Some(async move {
                if let Err(error) = writer
                    .event(object, event.warning, event.reason, event.message.clone())
                    .await
                {
                    tracing::warn!(gateway = %event.gateway, %error, "event failed");
                }
            })
        });
        concurrently(events).await;
        ok &= self.write_verdict_events().await;
        ok &= self.write_cegps().await;
        self.current.cegps = std::mem::take(&mut self.cegp_writes);
        tracing::debug!(took = ?decided_at.elapsed(), cegps = self.current.cegps, "plan written");
        ok
    }

    /// One reaction per observation that moved gateways (the moves of one node share it).
    fn record_reactions(
        &self,
        plan: &Plan,
        now: Instant,
        planned: TokioInstant,
        removed: TokioInstant,
        labelled: TokioInstant,
    ) {
        let mut by_observation: BTreeMap<Duration, usize> = BTreeMap::new();
        for decision in &plan.decision_latencies {
            *by_observation.entry(decision.latency).or_default() += 1;
        }
        for (latency, gateways) in by_observation {
            let observed = self.epoch + now.0.saturating_sub(latency);
            let phases = Phases::split(observed, &self.intake, planned, removed, labelled);
            reaction::record(
                &self.metrics.reactions,
                self.slow_reaction,
                gateways,
                phases,
                &self.intake,
                &self.previous,
            );
        }
    }

    /// The label patches, many at a time but in two phases: every patch removing an
    /// `active-for-…` label is answered before any other is sent, so a new active label is
    /// never added while the old one may still be in place. A failure ends the batch.
    /// Returns when the removals were answered, `None` after a failure.
    async fn write_labels(&mut self, plan: &Plan) -> Option<TokioInstant> {
        let empty = BTreeMap::new();
        let removing = |patch: &LabelPatch| patch.remove.iter().any(|k| is_active_for_label(k));
        let (removals, others): (Vec<&LabelPatch>, Vec<&LabelPatch>) = plan
            .labels
            .iter()
            .filter(|patch| !self.echoes.awaiting(patch))
            .partition(|patch| removing(patch));
        let mut removed = TokioInstant::now();
        for (n, phase) in [removals, others].into_iter().enumerate() {
            let (index, writer, leadership) = (&self.index, &self.writer, &self.leadership);
            let writes = phase.into_iter().map(|patch| {
                let observed = index
                    .node_labels
                    .get(&(patch.kind, patch.node.clone()))
                    .unwrap_or(&empty);
                async move {
                    // Checked before every write: a replica that lost the Lease stops at once.
                    if !leadership.is_leader() {
                        return Ok(None);
                    }
                    writer.labels(patch, observed).await.map(|_| Some(patch)).map_err(|error| {
                        tracing::warn!(node = %patch.node, kind = ?patch.kind, %error, "label write failed");
                    })
                }
            });
            let results = concurrently(writes).await;
            for patch in results.iter().flatten().flatten() {
                self.echoes.answered(patch);
            }
            if results.iter().any(Result::is_err) {
                return None;
            }
            if n == 0 {
                removed = TokioInstant::now();
            }
        }
        Some(removed)
    }

    /// Gateway statuses (the core's, plus `Accepted`) and policy statuses.
    async fn write_statuses(&mut self, plan: &Plan) -> bool {
        let now = Time(k8s_openapi::jiff::Timestamp::now());
        let bodies = statuses::bodies(&mut self.index, plan, &now);
        self.current.statuses = bodies.gateways.len() + bodies.policies.len();
        let writer = &self.writer;
        let gateways = bodies.gateways.into_iter().map(|(name, body)| async move {
            match writer.gateway_status(&name, body).await {
                Ok(_) => None,
                Err(error) => {
                    tracing::warn!(gateway = %name, %error, "status write failed");
                    Some(name)
                }
            }
        });
        let gateways_failed = concurrently(gateways).await;
        let policies = bodies.policies.into_iter().map(|(name, body)| async move {
            match writer.policy_status(&name, body).await {
                Ok(_) => None,
                Err(error) => {
                    tracing::warn!(policy = %name, %error, "status write failed");
                    Some(name)
                }
            }
        });
        let failed = concurrently(policies).await;
        let mut ok = true;
        for name in gateways_failed.into_iter().flatten() {
            // The core plans its part again by itself; `Accepted` needs another look.
            self.index.gateways.unsettle(&name);
            ok = false;
        }
        for name in failed.into_iter().flatten() {
            self.index.policies.unsettle(&name);
            ok = false;
        }
        ok
    }

    /// `egressc_orphan_policies`: counted again whenever some verdict changed (a gateway or
    /// policy added, removed or edited changes one).
    fn export_orphans(&self) {
        let orphans = self
            .index
            .policies
            .verdicts()
            .filter(|(name, _)| {
                self.index
                    .policies
                    .object(name)
                    .and_then(|p| {
                        p.pointer("/spec/egressGatewayName")
                            .and_then(serde_json::Value::as_str)
                            .map(|g| self.index.gateways.object(g).is_none())
                    })
                    .unwrap_or(false)
            })
            .count();
        self.metrics
            .operator
            .orphan_policies
            .set(i64::try_from(orphans).unwrap_or(i64::MAX));
    }

    async fn write_verdict_events(&mut self) -> bool {
        let changes = self.index.take_verdict_changes();
        if !changes.is_empty() {
            self.export_orphans();
        }
        for change in changes {
            let object = if change.kind == GATEWAY_KIND {
                self.index.gateways.object(&change.name).cloned()
            } else {
                self.index.policies.object(&change.name)
            };
            let Some(object) = object else { continue };
            let (warning, reason, note) = match change.invalid {
                Some(message) => (true, patches::INVALID_REASON, message),
                None => (false, "Valid", "the spec is valid again".to_owned()),
            };
            if let Err(error) = self.writer.event(&object, warning, reason, note).await {
                tracing::warn!(name = %change.name, %error, "event failed");
            }
        }
        true
    }

    /// Finds the policies among `names` (all policies when `full`) whose CEGP name is taken by a
    /// CEGP egressc does not own, and reports each change: the policy's `Ready` condition says
    /// so (written here, since statuses went out before the CEGPs) and a Warning Event names the
    /// conflict; a resolved conflict restores the condition.
    async fn report_cegp_conflicts(&mut self, names: &[String], full: bool) {
        let index = &self.index;
        let conflicted = |name: &String| {
            index.policies.contains(name)
                && index.cegps.get(name).is_some_and(|cegp| !cegp.is_owned())
        };
        let now: BTreeSet<String> = names.iter().filter(|n| conflicted(n)).cloned().collect();
        let looked_at: BTreeSet<&String> = names.iter().collect();
        let before: BTreeSet<String> = self
            .index
            .cegp_conflicts
            .iter()
            .filter(|name| full || looked_at.contains(name) || !self.index.policies.contains(name))
            .cloned()
            .collect();
        let started: Vec<String> = now.difference(&before).cloned().collect();
        let ended: Vec<String> = before.difference(&now).cloned().collect();
        if started.is_empty() && ended.is_empty() {
            return;
        }
        for name in &ended {
            self.index.cegp_conflicts.remove(name);
            self.index.policies.unsettle(name);
        }
        for name in &started {
            tracing::warn!(policy = %name, "a CiliumEgressGatewayPolicy of that name exists and is not managed by egressc; leaving it alone");
            self.index.cegp_conflicts.insert(name.clone());
            self.index.policies.unsettle(name);
        }
        self.write_statuses(&Plan::default()).await;
        for name in &started {
            let Some(object) = self.index.policies.object(name) else {
                continue;
            };
            let note = patches::cegp_conflict_message(name);
            if let Err(error) = self
                .writer
                .event(&object, true, patches::CEGP_CONFLICT_REASON, note)
                .await
            {
                tracing::warn!(policy = %name, %error, "event failed");
            }
        }
    }

    /// Applies changed CEGPs and deletes egressc's own ones whose policy is gone: all of them
    /// after a catalog change, otherwise only the CEGPs someone else changed or deleted. A CEGP
    /// egressc does not own is never written or deleted (see [`Loop::report_cegp_conflicts`]).
    async fn write_cegps(&mut self) -> bool {
        let touched = self.index.take_cegp_changes();
        let full = self.index.take_catalog_change() || self.cegps_dirty;
        if full {
            // A policy or gateway appeared or went: orphans may have too.
            self.export_orphans();
        }
        if !full && touched.is_empty() {
            return true;
        }
        self.cegps_dirty = false;
        let names = if full {
            let started = TokioInstant::now();
            let (gateways, policies) = self.index.catalog_refs();
            let names = self.compiler.render(&gateways, &policies);
            tracing::debug!(cegps = names.len(), took = ?started.elapsed(), "CEGPs rendered");
            names
        } else {
            touched.iter().cloned().collect()
        };
        self.report_cegp_conflicts(&names, full).await;
        let (writer, index, compiler) = (&self.writer, &self.index, &self.compiler);
        let (gateways, policies) = index.catalog_refs();
        let inputs = cegp::Inputs::new(&gateways, &policies);
        let inputs = &inputs;
        // Bodies are rendered as the writes go, so that only the writes in flight hold one.
        let applies = names.iter().filter_map(|name| {
            let rendered = match compiler.cached(name)? {
                Ok(rendered) => rendered,
                Err(error) => {
                    tracing::warn!(policy = %name, %error, "cannot render; keeping the CEGP in place");
                    return None;
                }
            };
            let observed = index.cegps.get(name);
            if observed.is_some_and(|cegp| !cegp.is_owned()) {
                // Someone else's CEGP of that name: reported, never written.
                return None;
            }
            let uid = index.policies.uid(name).unwrap_or_default();
            let force = observed.is_some();
            rendered.differs(observed, name, uid).then_some(async move {
                let result = match compiler.body(inputs, name, uid) {
                    Some(Ok(body)) => writer.apply_cegp(name, body, force).await,
                    // Gone from the catalog since the rendering: the next full pass decides.
                    None => return true,
                    Some(Err(error)) => {
                        tracing::warn!(policy = %name, %error, "cannot render; keeping the CEGP in place");
                        return true;
                    }
                };
                if let Err(error) = &result {
                    tracing::warn!(policy = %name, %error, "CEGP write failed");
                }
                result.is_ok()
            })
        });
        let mut results = concurrently(applies).await;
        let orphans: Vec<(&String, Option<&str>)> = self
            .index
            .cegps
            .iter()
            .filter(|(name, cegp)| (full || touched.contains(*name)) && cegp.is_owned())
            .filter(|(name, _)| !self.index.policies.contains(name))
            .map(|(name, cegp)| (name, cegp.uid()))
            .collect();
        let deletes = orphans.into_iter().map(|(name, uid)| async move {
            let result = writer.delete_cegp(name, uid).await;
            if let Err(error) = &result {
                tracing::warn!(cegp = %name, %error, "CEGP delete failed");
            }
            result.is_ok()
        });
        results.extend(concurrently(deletes).await);
        self.cegp_writes = results.len();
        let ok = results.into_iter().all(|ok| ok);
        self.cegps_dirty = !ok;
        ok
    }
}
