//! The reconcile loop: drain watch events and probe results into the [`SyncCore`], and after
//! each batch (or at the plan's wakeup, or a retry) ask it for a plan and — only while every
//! cache is synced and this replica leads — write it. Writes run in order: label removals
//! before additions, then VIP Leases, statuses, Events, then the second stage's policy
//! statuses, Events and CEGPs. A failed label write ends the batch, so a new active label is
//! never added while the old one may still be in place. Failed writes are reported back to
//! the core, which plans them again; every decision is the core's.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use tokio::time::Instant as TokioInstant;

use super::index::WatchEvent;
use super::leader::Leadership;
use super::metrics::{GatewayLabel, Metrics};
use super::probe::{Endpoints, ProbeConfig, ProbeResult, Prober};
use super::reaction::{self, Intake, Phases, StepSummary};
use super::sync_core::{
    CegpWrite, EventWrite, Input, LabelWrite, Plan, StatusWrite, SyncCore, Written,
};
use super::watch::Seen;
use super::writer::Writer;
use futures::{StreamExt, stream};

use crate::controller::conditions::CEGP_CONFLICT_REASON;
use crate::controller::{Instant, ProbeTargets};
use crate::model::labels::is_active_for_label;

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
    pub(super) core: SyncCore,
    pub(super) writer: Writer,
    pub(super) metrics: Arc<Metrics>,
    pub(super) leadership: Leadership,
    epoch: TokioInstant,
    synced: bool,
    retry: Duration,
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
    /// Reactions slower than this are logged.
    slow_reaction: Duration,
}

impl Loop {
    /// A loop over the given parts; its monotonic epoch is now.
    pub fn new(
        core: SyncCore,
        writer: Writer,
        metrics: Arc<Metrics>,
        leadership: Leadership,
    ) -> Self {
        Loop {
            core,
            writer,
            metrics,
            leadership,
            epoch: TokioInstant::now(),
            synced: false,
            retry: MIN_RETRY,
            failovers_seen: BTreeMap::new(),
            active_seen: BTreeMap::new(),
            prober: None,
            leadership_changed: true,
            probe_targets: ProbeTargets::new(),
            last_now: Instant::default(),
            intake: Intake::none(TokioInstant::now()),
            previous: StepSummary::default(),
            current: StepSummary::default(),
            slow_reaction: Duration::from_millis(100),
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
        let probe = Input::Probe {
            node: result.node,
            target: result.target,
            ok: result.ok,
        };
        self.core.handle(now, probe);
    }

    /// Points the prober at the core's targets on their current InternalIPs; a standby probes
    /// nothing (the leader does; a new leader has results after one failure threshold).
    fn update_probes(&mut self) {
        let Some((prober, config)) = &self.prober else {
            return;
        };
        let now = Instant(self.epoch.elapsed());
        let changed = match self.core.probe_targets(now) {
            Some(targets) => {
                self.probe_targets = targets;
                true
            }
            None => false,
        };
        if !(self.core.take_node_ips_change() || changed || self.leadership_changed) {
            return;
        }
        self.leadership_changed = false;
        let mut endpoints = Endpoints::new();
        if self.leadership.is_leader() {
            for (node, targets) in &self.probe_targets {
                let Some(ip) = self.core.node_ip(node) else {
                    continue;
                };
                for target in targets {
                    if let Some(url) = config.url(ip, *target) {
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
        self.core.handle(now, Input::Watch(seen.event));
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
                        let now = self.now();
                        self.core.handle(now, Input::Leading);
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
        let synced = self.core.synced();
        if synced != self.synced {
            self.synced = synced;
            self.metrics.set_ready(synced);
            tracing::info!(synced, "watch caches");
        }
        if !synced || !self.leadership.is_leader() {
            return TokioInstant::now() + IDLE;
        }
        let decided_at = TokioInstant::now();
        let plan = self.core.reconcile(now);
        tracing::debug!(
            labels = plan.labels.len(),
            statuses = plan.gateway_updates.len(),
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
        for (gateway, total) in self.core.failovers_total() {
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
        for update in &plan.gateway_updates {
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

    /// Writes the plan (labels, VIP Leases), then the core's second stage (statuses, Events,
    /// CEGPs); false if any write failed. `now` is the core's clock of the reconcile that made the plan,
    /// started at `decided_at`.
    async fn apply(&mut self, mut plan: Plan, now: Instant, decided_at: TokioInstant) -> bool {
        let planned = TokioInstant::now();
        // Released once written: after a start they are 10,000 writes, and the second stage's
        // bodies need not be built on top of them.
        let labels = std::mem::take(&mut plan.labels);
        let Some(removed) = self.write_labels(&labels).await else {
            return false;
        };
        drop(labels);
        let labelled = TokioInstant::now();
        tracing::debug!(
            removals = ?removed.duration_since(planned),
            additions = ?labelled.duration_since(removed),
            "labels written"
        );
        self.record_reactions(&plan, now, planned, removed, labelled);
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
            if let Err(error) = self.writer.vip(write).await {
                tracing::warn!(write = ?write.write, %error, "VIP Lease write failed");
                ok = false;
            }
        }
        let second = self.core.reconcile_after_labels(&wall_clock());
        self.export_second_stage(&second);
        ok &= self
            .write_statuses(second.gateway_statuses, second.policy_statuses)
            .await;
        tracing::debug!(took = ?decided_at.elapsed(), "labels and statuses written");
        self.write_events(&second.events).await;
        self.current.cegps = second.cegps.len();
        ok &= self.write_cegps(&second.cegps).await;
        tracing::debug!(took = ?decided_at.elapsed(), cegps = self.current.cegps, "plan written");
        ok
    }

    /// Metrics and logs of the second stage's decisions.
    fn export_second_stage(&self, plan: &Plan) {
        if let Some(orphans) = plan.orphan_policies {
            self.metrics
                .operator
                .orphan_policies
                .set(i64::try_from(orphans).unwrap_or(i64::MAX));
        }
        for (policy, error) in &plan.unrenderable {
            tracing::warn!(%policy, %error, "cannot render; keeping the CEGP in place");
        }
        for event in &plan.events {
            if event.reason == CEGP_CONFLICT_REASON {
                tracing::warn!(policy = ?event.regarding.name, "a CiliumEgressGatewayPolicy of that name exists and is not managed by egressc; leaving it alone");
            }
        }
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
    async fn write_labels(&mut self, labels: &[LabelWrite]) -> Option<TokioInstant> {
        let removing =
            |write: &LabelWrite| write.patch.remove.iter().any(|k| is_active_for_label(k));
        let (removals, others): (Vec<&LabelWrite>, Vec<&LabelWrite>) =
            labels.iter().partition(|write| removing(write));
        let mut removed = TokioInstant::now();
        for (n, phase) in [removals, others].into_iter().enumerate() {
            let (writer, leadership) = (&self.writer, &self.leadership);
            let writes = phase.into_iter().map(|write| async move {
                // Checked before every write: a replica that lost the Lease stops at once.
                if !leadership.is_leader() {
                    return Ok(None);
                }
                writer.labels(write).await.map(|()| Some(write)).map_err(|error| {
                    let patch = &write.patch;
                    tracing::warn!(node = %patch.node, kind = ?patch.kind, %error, "label write failed");
                })
            });
            let results = concurrently(writes).await;
            // Accepted patches are not planned again until their objects' next events.
            let now = self.now();
            for write in results.iter().flatten().flatten() {
                self.core
                    .handle(now, Input::LabelsAnswered(write.patch.clone()));
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

    /// Gateway statuses, then policy statuses; a failed one is reported to the core.
    async fn write_statuses(
        &mut self,
        gateways: Vec<StatusWrite>,
        policies: Vec<StatusWrite>,
    ) -> bool {
        self.current.statuses += gateways.len() + policies.len();
        let writer = &self.writer;
        let gateways = gateways.into_iter().map(|write| async move {
            match writer.gateway_status(&write.name, write.body).await {
                Ok(()) => None,
                Err(error) => {
                    tracing::warn!(gateway = %write.name, %error, "status write failed");
                    Some(Written::GatewayStatus(write.name))
                }
            }
        });
        let mut failed = concurrently(gateways).await;
        let policies = policies.into_iter().map(|write| async move {
            match writer.policy_status(&write.name, write.body).await {
                Ok(()) => None,
                Err(error) => {
                    tracing::warn!(policy = %write.name, %error, "status write failed");
                    Some(Written::PolicyStatus(write.name))
                }
            }
        });
        failed.extend(concurrently(policies).await);
        self.report_failed(failed)
    }

    /// Reports failed writes to the core (it plans them again); true if there were none.
    fn report_failed(&mut self, failed: Vec<Option<Written>>) -> bool {
        let now = self.now();
        let mut ok = true;
        for written in failed.into_iter().flatten() {
            self.core.handle(now, Input::Failed(written));
            ok = false;
        }
        ok
    }

    /// Events, many at a time; a failed one is logged (an Event is not planned again).
    async fn write_events(&self, events: &[EventWrite]) {
        let writer = &self.writer;
        let writes = events.iter().map(|event| async move {
            if let Err(error) = writer.event(event).await {
                tracing::warn!(regarding = ?event.regarding.name, reason = %event.reason, %error, "event failed");
            }
        });
        concurrently(writes).await;
    }

    /// CEGP applies and deletes; the body of an apply is built as it is sent, so that only
    /// the writes in flight hold a copy.
    async fn write_cegps(&mut self, cegps: &[CegpWrite]) -> bool {
        let (writer, core) = (&self.writer, &self.core);
        let writes = cegps.iter().map(|write| async move {
            let (name, result) = match write {
                CegpWrite::Apply { name, force } => {
                    let body = core.cegp_body(name)?;
                    (name, writer.apply_cegp(name, body, *force).await)
                }
                CegpWrite::Delete { name, uid } => {
                    (name, writer.delete_cegp(name, uid.as_deref()).await)
                }
            };
            let error = result.err()?;
            tracing::warn!(cegp = %name, %error, "CEGP write failed");
            Some(Written::Cegp(name.clone()))
        });
        let failed = concurrently(writes).await;
        self.report_failed(failed)
    }
}

/// The wall clock a flipped condition gets as its `lastTransitionTime`.
fn wall_clock() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}
