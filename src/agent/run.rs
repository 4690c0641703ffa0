//! The agent's tokio shell: watches EgressGateways and the VIP Leases of its namespace, and
//! every round decides per gateway ([`lease::decide`]), makes the Lease write, then runs the
//! address phase ([`AddressPhase`]). Follows docs/lease-protocol.md ("Agent rules"); the
//! numbered rules cited below are that document's.
//!
//! One task owns all state; watches and the VIPs' keepers (`keeper`) feed it through channels.
//! Every API call is bounded by `write_timeout`, so an unreachable API server cannot stall the
//! loop. While renewals fail without a conflict the keeper holds the VIP on the LAN's word
//! (rule 7); a bring-up follows a probe round unless it follows a graceful acquire (rule 8). On
//! shutdown every VIP is removed before the Leases this node holds are released (rule 4).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, watcher};
use tokio::sync::mpsc;

use crate::agent::addresses::{AddressPhase, HeldVip, VipIntent};
use crate::agent::announce::BurstSchedule;
use crate::agent::conflict::ProbeSchedule;
use crate::agent::health::Health;
use crate::agent::keeper::{LanReport, VipKeep};
use crate::agent::lease::{self, Action, AgentTiming};
use crate::agent::lease_object::{self, MANAGED_BY_SELECTOR};
use crate::agent::metrics::Metrics;
use crate::agent::netlink::AddressTable;
use crate::agent::plan::{DesiredVip, Lifetimes, PlanIssue};
use crate::agent::state::{GatewayState, Input, Inputs};
use crate::model::api::EgressGateway;
use crate::time::Instant;

/// How the agent runs.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// This node's name (the Lease holder identity).
    pub node: String,
    /// The namespace of the VIP Leases.
    pub namespace: String,
    /// Renew interval and address lifetime.
    pub timing: AgentTiming,
    /// The announcement burst after a VIP is added.
    pub burst: BurstSchedule,
    /// Periodic announcements after the burst, for as long as the VIP is held.
    pub advert_interval: Duration,
    /// Probe rounds before bring-ups.
    pub probe: ProbeSchedule,
    /// Upper bound of every API request.
    pub write_timeout: Duration,
}

/// Why the agent could not run.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// Netlink could not be opened.
    #[error(transparent)]
    Netlink(#[from] crate::agent::netlink::NetlinkError),
}

/// How often the API is probed when nothing else has reached it (for `/readyz`).
const API_PROBE_EVERY: Duration = Duration::from_secs(3);

/// Runs the agent until `shutdown` completes, then removes its VIPs and releases its Leases.
pub async fn run(
    client: kube::Client,
    config: AgentConfig,
    health: Arc<Health>,
    metrics: Metrics,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    let (reports, mut lan) = mpsc::channel(64);
    let lifetime_secs = u32::try_from(config.timing.address_lifetime.as_secs()).unwrap_or(u32::MAX);
    let addresses = AddressPhase {
        table: AddressTable::connect()?,
        burst: config.burst,
        advert_interval: config.advert_interval,
        probe: config.probe,
        hold: (
            config.timing.renew_interval,
            Lifetimes {
                valid_secs: lifetime_secs,
                preferred_secs: lifetime_secs,
            },
        ),
        reports,
        metrics: metrics.clone(),
    };
    let leases: Api<Lease> = Api::namespaced(client.clone(), &config.namespace);
    let (tx, mut rx) = mpsc::channel(256);
    spawn_watches(client, leases.clone(), tx);
    let mut agent = Agent {
        config,
        leases,
        addresses,
        metrics,
        health,
        clock: std::time::Instant::now(),
        inputs: Inputs::default(),
        gateways: BTreeMap::new(),
        last_api_probe: None,
    };
    tokio::pin!(shutdown);
    let mut wake = agent.now();
    loop {
        let sleep = tokio::time::sleep(wake.since(agent.now()));
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            input = rx.recv() => match input {
                Some(input) => {
                    agent.health.api_ok();
                    agent.inputs.apply(input);
                    while let Ok(more) = rx.try_recv() {
                        agent.inputs.apply(more);
                    }
                }
                None => break,
            },
            Some(report) = lan.recv() => agent.on_lan(report).await,
            () = sleep => {}
        }
        wake = agent.round().await;
        agent.health.loop_round();
    }
    agent.shut_down().await;
    Ok(())
}

fn spawn_watches(client: kube::Client, leases: Api<Lease>, tx: mpsc::Sender<Input>) {
    let by_label = watcher::Config::default().labels(MANAGED_BY_SELECTOR);
    forward(leases, by_label, tx.clone(), Input::Lease, "VIP Lease");
    let gateways: Api<EgressGateway> = Api::all(client);
    forward(
        gateways,
        watcher::Config::default(),
        tx,
        Input::Gateway,
        "EgressGateway",
    );
}

/// Runs a watch (restarting with backoff after errors) and sends its events to the loop.
fn forward<K>(
    api: Api<K>,
    config: watcher::Config,
    tx: mpsc::Sender<Input>,
    wrap: fn(watcher::Event<K>) -> Input,
    what: &'static str,
) where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    tokio::spawn(async move {
        let mut stream = watcher(api, config).default_backoff().boxed();
        while let Some(event) = stream.next().await {
            match event {
                Ok(event) => {
                    if tx.send(wrap(event)).await.is_err() {
                        return;
                    }
                }
                Err(error) => tracing::warn!(%error, "{what} watch"),
            }
        }
    });
}

struct Agent {
    config: AgentConfig,
    leases: Api<Lease>,
    addresses: AddressPhase,
    metrics: Metrics,
    health: Arc<Health>,
    clock: std::time::Instant,
    inputs: Inputs,
    gateways: BTreeMap<String, GatewayState>,
    last_api_probe: Option<Instant>,
}

/// What a Lease write came to.
enum Written {
    Ok(Box<Lease>),
    Conflict,
    Failed,
}

/// What a Lease write came to, for the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WriteResult {
    Done,
    /// 409: someone else wrote first; the Lease was re-read.
    Conflict,
    /// Error or timeout: the API could not be reached; nothing is known about the Lease.
    Failed,
}

impl Agent {
    fn now(&self) -> Instant {
        Instant(self.clock.elapsed())
    }

    /// One round: decide and write per gateway, then the address phase. Returns when the next
    /// round is due at the latest.
    async fn round(&mut self) -> Instant {
        let mut fresh = BTreeSet::new();
        let names: BTreeSet<String> = self
            .inputs
            .lease_gateways()
            .chain(self.gateways.keys().cloned())
            .collect();
        for gateway in &names {
            if self.step(gateway).await {
                fresh.insert(gateway.clone());
            }
        }
        self.sync_addresses(&fresh).await;
        self.probe_api().await;
        self.next_wake()
    }

    /// Decides and carries out the Lease step of one gateway; true when a write succeeded and
    /// left this node the holder (the VIP may be added or refreshed now).
    async fn step(&mut self, gateway: &str) -> bool {
        let now = self.now();
        let view = self.view(gateway);
        let state = self.gateways.entry(gateway.to_owned()).or_default();
        if view
            .as_ref()
            .is_some_and(|v| v.holder.as_deref() != Some(&self.config.node))
        {
            // Someone else holds (or nobody, after our release): the yield is settled.
            state.local.yielded = false;
        }
        let action = lease::decide(
            view.as_ref(),
            &self.config.node,
            now,
            &state.local,
            &self.config.timing,
        );
        match action {
            Action::Wait { .. } => false,
            Action::StepDown => {
                tracing::info!(gateway, "stepping down: the Lease names another holder");
                quiesce(state.drop_vip()).await;
                false
            }
            Action::Release => {
                // Rule 4: the VIP goes before the Lease says so.
                quiesce(state.drop_vip()).await;
                self.sync_addresses(&BTreeSet::new()).await;
                tracing::info!(gateway, "releasing the VIP Lease");
                self.write(gateway, |lease, _, _| lease_object::released(lease))
                    .await;
                false
            }
            Action::Acquire => {
                // Rule 8: a Lease that was taken over (or a VIP this node yielded) calls for a
                // probe before the bring-up.
                let graceful = view.as_ref().is_some_and(|v| !v.takeover) && !state.local.yielded;
                let acquired = self.hold(gateway, lease_object::acquired, false).await;
                if acquired {
                    let state = self.gateways.entry(gateway.to_owned()).or_default();
                    state.local.graceful_bring_up = graceful;
                    state.local.yielded = false;
                }
                acquired
            }
            Action::Renew { mark_ready } => {
                let renew =
                    move |l: &Lease, me: &str, t| lease_object::renewed(l, me, t, mark_ready);
                self.hold(gateway, renew, true).await
            }
        }
    }

    /// An acquire or renewal: on success the send time starts the VIP's lifetime (rules 2, 3).
    async fn hold(
        &mut self,
        gateway: &str,
        change: impl Fn(&Lease, &str, Timestamp) -> Lease,
        renewal: bool,
    ) -> bool {
        if renewal
            && let Some(state) = self.gateways.get_mut(gateway)
            && state.local.vip_up
            && !state.local.yielded
        {
            // The write may block for the whole write timeout: the keeper holds the VIP until
            // its outcome is known (a conflict drops it, a success refreshes it).
            state.keep(self.clock).set_outage_hold(true);
        }
        let result = self.write(gateway, change).await;
        let ok = result == Some(WriteResult::Done);
        let state = self.gateways.entry(gateway.to_owned()).or_default();
        state.local.renew_failing = result == Some(WriteResult::Failed);
        if ok {
            // The send time `write` recorded as the attempt: `decide` recognises "the last
            // write succeeded" by the two being equal, and then writes `vip-ready` at once
            // instead of a renew interval later.
            state.local.last_successful_send = state.local.last_attempt;
        } else if renewal {
            self.metrics.lease_renew_failures.inc();
        }
        ok
    }

    /// A conditional write of `change(lease)`; `None` when there is no Lease to write. Paces
    /// retries through `last_attempt`; a conflict re-reads the Lease.
    async fn write(
        &mut self,
        gateway: &str,
        change: impl Fn(&Lease, &str, Timestamp) -> Lease,
    ) -> Option<WriteResult> {
        let current = self.inputs.lease(gateway)?.clone();
        let name = current.metadata.name.clone()?;
        let sent = self.now();
        let body = change(&current, &self.config.node, Timestamp::now());
        let outcome = match self
            .bounded(self.leases.replace(&name, &PostParams::default(), &body))
            .await
        {
            Some(Ok(lease)) => Written::Ok(Box::new(lease)),
            Some(Err(kube::Error::Api(status))) if status.code == 409 => Written::Conflict,
            Some(Err(error)) => {
                tracing::warn!(gateway, %error, "VIP Lease write failed");
                Written::Failed
            }
            None => {
                tracing::warn!(gateway, "VIP Lease write timed out");
                Written::Failed
            }
        };
        let state = self.gateways.entry(gateway.to_owned()).or_default();
        state.local.last_attempt = Some(sent);
        match outcome {
            Written::Ok(lease) => {
                self.health.api_ok();
                self.inputs.put_lease(*lease);
                Some(WriteResult::Done)
            }
            Written::Conflict => {
                // Re-read and re-decide at once (docs/lease-protocol.md, "The Lease").
                self.health.api_ok();
                tracing::info!(gateway, "VIP Lease write conflicted; re-reading");
                state.local.last_attempt = None;
                if let Some(Ok(fresh)) = self.bounded(self.leases.get_opt(&name)).await {
                    match fresh {
                        Some(lease) => self.inputs.put_lease(lease),
                        None => self.inputs.forget_lease(gateway),
                    }
                }
                Some(WriteResult::Conflict)
            }
            Written::Failed => Some(WriteResult::Failed),
        }
    }

    async fn bounded<T>(&self, request: impl Future<Output = T>) -> Option<T> {
        tokio::time::timeout(self.config.write_timeout, request)
            .await
            .ok()
    }

    /// The Lease of `gateway` as the protocol sees it; `None` when it is missing or the gateway
    /// is not a known VIP gateway (nothing could be put on an interface).
    fn view(&self, gateway: &str) -> Option<lease::LeaseView> {
        self.inputs.vip(gateway)?;
        self.inputs
            .lease(gateway)
            .and_then(lease_object::read)
            .map(|l| l.view)
    }

    /// The address phase: held gateways with a fresh success are refreshed (or brought up),
    /// other held ones kept (and held through an outage by their keeper), everything else of
    /// ours removed.
    async fn sync_addresses(&mut self, fresh: &BTreeSet<String>) {
        let now = self.now();
        let timing = self.config.timing;
        let mut held = Vec::new();
        for (gateway, state) in &mut self.gateways {
            let (Some(sent), Some(vip)) =
                (state.local.last_successful_send, self.inputs.vip(gateway))
            else {
                continue;
            };
            let keep = state.keep(self.clock);
            keep.set_outage_hold(lease::outage_hold(&state.local));
            let intent = match lease::allowance(now, &state.local, fresh.contains(gateway), &timing)
            {
                Some(lifetimes) => VipIntent::Refresh(lifetimes),
                None => VipIntent::Keep,
            };
            held.push(HeldVip {
                vip: vip.clone(),
                intent,
                keep,
                probe: lease::bring_up_needs_probe(&state.local),
                deadline: Some(self.clock + sent.0 + timing.address_lifetime),
            });
        }
        let known = self.inputs.known_vips();
        match self.addresses.run(&held, &known).await {
            Ok(outcome) => {
                self.health.netlink(true);
                let retry = self.now() + self.config.probe.retry;
                for (ip, sighting) in &outcome.blocked {
                    tracing::info!(%ip, mac = %sighting.mac, heard = ?sighting.heard,
                        "probe: the VIP is still answered elsewhere; not bringing it up yet");
                    for (gateway, state) in &mut self.gateways {
                        if self.inputs.vip(gateway).is_some_and(|v| v.ip == *ip) {
                            state.probe_retry_at = Some(retry);
                        }
                    }
                }
                self.record(&held, &outcome.present, &outcome.issues);
            }
            Err(error) => {
                self.health.netlink(false);
                tracing::warn!(%error, "address phase failed");
            }
        }
    }

    fn record(&mut self, held: &[HeldVip], present: &[IpAddr], issues: &[PlanIssue]) {
        let mut problems = Vec::new();
        for issue in issues {
            tracing::warn!(%issue, "cannot place a VIP");
            if matches!(issue, PlanIssue::NoInterface { .. }) {
                problems.push(issue.to_string());
            }
        }
        self.health.interfaces(problems);
        for (gateway, state) in &mut self.gateways {
            let ip = self.inputs.vip(gateway).map(|v: &DesiredVip| v.ip);
            let up = ip.is_some_and(|ip| present.contains(&ip))
                && held.iter().any(|h| Some(h.vip.ip) == ip);
            state.local.vip_up = up;
            if up {
                state.local.graceful_bring_up = false;
                state.probe_retry_at = None;
            }
            self.metrics.set_held(gateway, up);
        }
    }

    /// Keeps `/readyz` honest on a quiet node: one cheap list when nothing reached the API lately.
    async fn probe_api(&mut self) {
        let now = self.now();
        if self
            .last_api_probe
            .is_some_and(|at| now.since(at) < API_PROBE_EVERY)
        {
            return;
        }
        self.last_api_probe = Some(now);
        let params = ListParams::default().labels(MANAGED_BY_SELECTOR).limit(1);
        if let Some(Ok(_)) = self.bounded(self.leases.list_metadata(&params)).await {
            self.health.api_ok();
        }
    }

    /// A keeper's report: a yield ends the hold (rule 7); the Lease is released next round.
    async fn on_lan(&mut self, report: LanReport) {
        if !report.yielded {
            return;
        }
        for (gateway, state) in &mut self.gateways {
            if self.inputs.vip(gateway).is_some_and(|v| v.ip == report.vip) && state.local.holding()
            {
                tracing::info!(gateway, mac = %report.sighting.mac, "yielded the VIP during an outage hold");
                state.local.yielded = true;
                quiesce(state.drop_vip()).await;
            }
        }
    }

    /// The earliest time a decision can change without new input, at most one renew interval.
    fn next_wake(&self) -> Instant {
        let now = self.now();
        let mut wake = now + self.config.timing.renew_interval;
        for (gateway, state) in &self.gateways {
            if let Some(at) = state.probe_retry_at.filter(|_| !state.local.vip_up) {
                wake = wake.min(at);
            }
            let view = self.view(gateway);
            match lease::decide(
                view.as_ref(),
                &self.config.node,
                now,
                &state.local,
                &self.config.timing,
            ) {
                Action::Wait { wake: Some(at) } => wake = wake.min(at),
                Action::Wait { wake: None } => {}
                _ => return now,
            }
        }
        wake
    }

    /// Rule 4 at shutdown: every VIP goes first, then the Leases this node holds are cleared.
    async fn shut_down(&mut self) {
        let releases: Vec<String> = self
            .gateways
            .keys()
            .filter(|g| {
                let view = self
                    .inputs
                    .lease(g)
                    .and_then(lease_object::read)
                    .map(|l| l.view);
                lease::decide_shutdown(view.as_ref(), &self.config.node) == Action::Release
            })
            .cloned()
            .collect();
        for state in self.gateways.values_mut() {
            quiesce(state.drop_vip()).await;
        }
        self.sync_addresses(&BTreeSet::new()).await;
        for gateway in releases {
            tracing::info!(gateway, "shutting down: releasing the VIP Lease");
            self.write(&gateway, |lease, _, _| lease_object::released(lease))
                .await;
        }
    }
}

/// Waits until no keeper change to a dropped VIP is in flight: after this, the keeper sees the
/// VIP closed before it touches the address again, so the removal that follows is final.
async fn quiesce(keep: Option<Arc<VipKeep>>) {
    if let Some(keep) = keep {
        drop(keep.edit.lock().await);
    }
}
