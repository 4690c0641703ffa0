//! The whole VIP stack end to end: the real `egressc sync` (in the api namespace) and the real
//! `egressc agent` on two nodes (one namespace each, on one LAN with an observer), against
//! kube-testserver seeded with a VirtualIPAddress gateway. The test plays only kubelet and the
//! node lifecycle controller (Node Ready, heartbeat Leases, Pod readiness).
//!
//! Asserted in every case: the controller grants the elected node, its agent brings the VIP
//! up, and the label that makes Cilium use the node appears only after the VIP is announced
//! (cilium#47761); the label is never on two nodes; two MACs never claim the VIP at once; a
//! lost holder's VIP leaves with its kernel lifetime before the other node claims it; a
//! controller that restarts or loses its leader moves nothing and the VIP stays up.
//! Needs root and `ip`; skips otherwise (fails with EGRESSC_REQUIRE_NETNS=1).

mod support;

use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::agent::{is_finite, vip_addrs, wait_vanished};
use support::agents::AgentProcess;
use support::apinet::ApiNet;
use support::fleet::{ACTIVE, Fleet, GATEWAY, LabelSample};
use support::netns::{Host, Lan};
use support::observer::{Observer, Sighting, ownership_runs, two_answers_within};
use support::syncproc::SyncProcess;
use support::vipctl::{LeaseChange, VipControl};

/// Two owners answering one probe (100 ms apart) would answer within this of each other.
const SAME_PROBE: Duration = Duration::from_millis(10);
/// Upper bound for any expected reaction: a guard against hangs, not a measurement.
const PATIENCE: Duration = Duration::from_secs(30);
const NODES: [&str; 2] = ["node-a", "node-b"];
/// Bound on first announcement → label on the new node: the agent writes `vip-ready` right
/// after the bring-up and the controller moves the label on seeing it (measured 10–25 ms).
/// Kept under the agent's renew interval (500 ms), which is what a `vip-ready` write that
/// waits for the next renewal would cost.
const ANNOUNCED_TO_LABEL: Duration = Duration::from_millis(400);

/// The label and Lease samplers running on the api runtime.
struct Recording {
    stop: Arc<AtomicBool>,
    labels: tokio::task::JoinHandle<Vec<LabelSample>>,
    lease: tokio::task::JoinHandle<Vec<LeaseChange>>,
}

struct Stack {
    lan: Lan,
    api: ApiNet,
    fleet: Fleet,
    lease: VipControl,
    observer: Observer,
    a: AgentProcess,
    b: AgentProcess,
    /// The controller processes: one, or replicas competing for leadership.
    syncs: Vec<SyncProcess>,
    kubeconfig: std::path::PathBuf,
    cilium: &'static str,
    vip: IpAddr,
    dir: tempfile::TempDir,
}

/// How the controller runs in a [`Stack`].
#[derive(Clone, Copy)]
enum Controllers {
    /// One process without leader election.
    Single,
    /// Processes with these identities competing for the leader Lease.
    Replicas(&'static [&'static str]),
}

/// The leader Lease the replicas compete for (`src/sync/run.rs`).
const LEADER_LEASE_NAME: &str = "egressc-sync";

impl Stack {
    fn start(vip: IpAddr) -> io::Result<Stack> {
        Self::start_with(vip, Controllers::Single)
    }

    fn start_with(vip: IpAddr, controllers: Controllers) -> io::Result<Stack> {
        let lan = Lan::new()?;
        let api = ApiNet::new(&[&lan.a, &lan.b])?;
        let dir = tempfile::tempdir()?;
        let kubeconfig = dir.path().join("kubeconfig");
        api.write_node_kubeconfig(&kubeconfig)?;
        let client = api.client()?;
        let seeded = client.clone();
        let fleet = api
            .run(async move { Fleet::install(seeded, &NODES, vip).await })?
            .map_err(io::Error::other)?;
        let lease = VipControl::attach(client, GATEWAY);
        let observer = Observer::start(&lan.observer, vip)?;
        observer.set_probing(true);
        let a = AgentProcess::start(&lan.a.ns, NODES[0], &kubeconfig, dir.path())?;
        let b = AgentProcess::start(&lan.b.ns, NODES[1], &kubeconfig, dir.path())?;
        // IPv6 egress IPs need Cilium 1.20; egressc rejects an IPv6 VIP for older targets.
        let cilium = if vip.is_ipv6() { "1.20" } else { "1.19" };
        let syncs = match controllers {
            Controllers::Single => vec![SyncProcess::start(
                &api.ns,
                &kubeconfig,
                dir.path(),
                cilium,
            )?],
            Controllers::Replicas(names) => names
                .iter()
                .map(|name| {
                    SyncProcess::start_replica(&api.ns, &kubeconfig, dir.path(), cilium, name)
                })
                .collect::<io::Result<_>>()?,
        };
        Ok(Stack {
            lan,
            api,
            fleet,
            lease,
            observer,
            a,
            b,
            syncs,
            kubeconfig,
            cilium,
            vip,
            dir,
        })
    }

    fn host(&self, node: &str) -> &Host {
        if node == NODES[0] {
            &self.lan.a
        } else {
            &self.lan.b
        }
    }

    fn agent(&self, node: &str) -> &AgentProcess {
        if node == NODES[0] { &self.a } else { &self.b }
    }

    fn other(node: &str) -> &'static str {
        if node == NODES[0] { NODES[1] } else { NODES[0] }
    }

    fn failure(&self, what: &str) -> io::Error {
        let syncs: String = self
            .syncs
            .iter()
            .map(|sync| format!("--- {} ---\n{}\n", sync.log.display(), sync.log_text()))
            .collect();
        io::Error::other(format!(
            "{what}\n{syncs}--- agent A ---\n{}\n--- agent B ---\n{}",
            self.a.log_text(),
            self.b.log_text()
        ))
    }

    /// The identity in the leader Lease, once one replica holds it.
    fn leader(&self) -> io::Result<String> {
        let client = self.api.client()?;
        let found = self.api.run(async move {
            let leases: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
                kube::Api::namespaced(client, support::vipctl::NAMESPACE);
            let deadline = Instant::now() + PATIENCE;
            while Instant::now() < deadline {
                if let Ok(Some(lease)) = leases.get_opt(LEADER_LEASE_NAME).await
                    && let Some(holder) = lease.spec.and_then(|s| s.holder_identity)
                    && !holder.is_empty()
                {
                    return Some(holder);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            None
        })?;
        found.ok_or_else(|| self.failure("no replica became leader"))
    }

    /// Starts sampling the active label every 20 ms and the Lease every 10 ms.
    fn record(&self) -> Recording {
        let stop = Arc::new(AtomicBool::new(false));
        let labels = self
            .api
            .spawn(self.fleet.clone().record_labels(stop.clone()));
        let lease = self
            .api
            .spawn(self.lease.clone().record_changes(stop.clone()));
        Recording {
            stop,
            labels,
            lease,
        }
    }

    /// Stops the samplers; fails if any sample saw the label on two nodes of one kind. With
    /// EGRESSC_PHASES set, prints the Lease's changes relative to `since`.
    fn label_never_doubled(&self, recording: Recording, since: Instant) -> io::Result<()> {
        self.stop_recording(recording, since).map(drop)
    }

    /// [`Self::label_never_doubled`], returning what was recorded.
    fn stop_recording(
        &self,
        recording: Recording,
        since: Instant,
    ) -> io::Result<(Vec<LabelSample>, Vec<LeaseChange>)> {
        recording.stop.store(true, Ordering::Relaxed);
        let samples = self.api.join(recording.labels)?;
        let changes = self.api.join(recording.lease)?;
        if std::env::var_os("EGRESSC_PHASES").is_some() {
            for c in changes.iter().filter(|c| c.at >= since) {
                eprintln!(
                    "  +{:?} grant={:?} holder={:?} ready={:?}",
                    c.at.duration_since(since),
                    c.grant,
                    c.holder,
                    c.ready
                );
            }
        }
        if samples.is_empty() {
            return Err(self.failure("the label sampler recorded nothing"));
        }
        if let Some(doubled) = samples
            .iter()
            .find(|s| s.nodes.len() > 1 || s.cilium_nodes.len() > 1)
        {
            return Err(self.failure(&format!("the label was on two nodes: {doubled:?}")));
        }
        Ok((samples, changes))
    }

    /// Waits until exactly one node, not in `not`, carries the label on Node and CiliumNode;
    /// returns it and when that was first seen (20 ms polls).
    fn wait_label(&self, not: &[&str]) -> io::Result<(String, Instant)> {
        let not = not.iter().map(|s| s.to_string()).collect();
        let found = self
            .api
            .run(self.fleet.clone().wait_single(not, PATIENCE))?;
        found.ok_or_else(|| self.failure("the label never settled on one node"))
    }

    /// The first claim of the VIP by `node`'s MAC after `since`.
    fn first_claim(&self, node: &str, since: Instant) -> io::Result<Sighting> {
        self.observer
            .wait_for(self.host(node).mac, since, Duration::from_secs(10))
            .ok_or_else(|| self.failure(&format!("the observer never saw {node} claim the VIP")))
    }

    /// The Lease says `grant == holder == ready == node`.
    fn lease_confirms(&self, node: &'static str) -> io::Result<()> {
        let lease = self.lease.clone();
        match self
            .api
            .run(async move { lease.wait_ready(node, Duration::from_secs(5)).await })?
        {
            Some(_) => Ok(()),
            None => Err(self.failure(&format!("the Lease never confirmed {node}"))),
        }
    }

    /// Never two owners at once on the wire: no two MACs answer one probe, and every MAC's
    /// claims form one contiguous run.
    fn no_overlap(&self) -> io::Result<()> {
        let sightings = self.observer.sightings();
        if let Some((x, y)) = two_answers_within(&sightings, SAME_PROBE) {
            return Err(self.failure(&format!("two owners: {x:?} and {y:?}")));
        }
        let runs = ownership_runs(&sightings);
        let mut macs: Vec<_> = runs.iter().map(|(mac, _, _)| mac.0).collect();
        let claims = macs.len();
        macs.sort();
        macs.dedup();
        if macs.len() != claims {
            return Err(self.failure(&format!("owners interleave: {runs:?}")));
        }
        Ok(())
    }

    /// The label reached `node` after its first announcement, and without waiting for a
    /// renewal in between.
    fn label_follows_announcement(
        &self,
        node: &str,
        announced: Instant,
        labelled: Instant,
    ) -> io::Result<()> {
        if announced >= labelled {
            return Err(self.failure(&format!(
                "{node} got the label {:?} before it announced the VIP",
                announced.duration_since(labelled)
            )));
        }
        let gap = labelled.duration_since(announced);
        if gap >= ANNOUNCED_TO_LABEL {
            return Err(self.failure(&format!(
                "{node} announced the VIP {gap:?} before it got the label"
            )));
        }
        Ok(())
    }

    /// The first election: returns the active node once the whole handshake is visible.
    fn first_holder(&self, started: Instant) -> io::Result<String> {
        let (node, labelled) = self.wait_label(&[])?;
        let claimed = self.first_claim(&node, started)?;
        self.label_follows_announcement(&node, claimed.at, labelled)?;
        Ok(node)
    }
    /// The node lifecycle controller marks `holder` NotReady; its agent lives on and releases,
    /// so the VIP moves to the other node without waiting for an expiry.
    fn hand_over_not_ready(&self, holder: &str) -> io::Result<()> {
        let second = Self::other(holder);
        let lost = Instant::now();
        let fleet = self.fleet.clone();
        let node = holder.to_owned();
        self.api
            .run(async move { fleet.set_node_ready(&node, false).await })?
            .map_err(io::Error::other)?;
        let (moved, labelled) = self.wait_label(&[holder])?;
        if moved != second {
            return Err(self.failure(&format!("the label moved to {moved}, not {second}")));
        }
        let claimed = self.first_claim(second, lost)?;
        self.label_follows_announcement(second, claimed.at, labelled)?;
        self.lease_confirms(second)?;
        if !vip_addrs(&self.host(holder).ns, self.vip)?.is_empty() {
            return Err(self.failure(&format!("{holder} kept the VIP after the move")));
        }
        eprintln!(
            "NotReady -> {second} claims the VIP {:?}, -> label on {second} {:?}",
            claimed.at.duration_since(lost),
            labelled.duration_since(lost)
        );
        if labelled.duration_since(lost) >= Duration::from_secs(3) {
            return Err(self.failure(&format!(
                "a graceful move waited for an expiry: {:?}",
                labelled.duration_since(lost)
            )));
        }
        Ok(())
    }

    /// Waits until the log of controller `index` holds `needle` at least `times` times.
    fn wait_logged(&self, index: usize, needle: &str, times: usize) -> io::Result<()> {
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if self.syncs[index].log_text().matches(needle).count() >= times {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(self.failure(&format!(
            "controller {index} never logged {needle:?} {times}×"
        )))
    }

    /// Everything recorded since `since` shows `holder` keeping the label (Node and CiliumNode),
    /// the grant, the Lease and the VIP, and no other MAC answering for the VIP.
    fn held_steady(&self, holder: &str, recording: Recording, since: Instant) -> io::Result<()> {
        let (samples, changes) = self.stop_recording(recording, since)?;
        if let Some(moved) = samples.iter().find(|s| s.single() != Some(holder)) {
            return Err(self.failure(&format!("the label left {holder}: {moved:?}")));
        }
        let mine = Some(holder.to_owned());
        if let Some(change) = changes
            .iter()
            .find(|c| c.grant != mine || c.holder != mine || c.ready != mine)
        {
            return Err(self.failure(&format!("the VIP Lease left {holder}: {change:?}")));
        }
        let held = vip_addrs(&self.host(holder).ns, self.vip)?;
        if held.is_empty() || !held.iter().all(is_finite) {
            return Err(self.failure(&format!("{holder} lost the VIP: {held:?}")));
        }
        let other = self.host(Self::other(holder)).mac;
        let sightings = self.observer.sightings();
        if let Some(stray) = sightings.iter().find(|s| s.at >= since && s.mac == other) {
            return Err(self.failure(&format!("the standby answered for the VIP: {stray:?}")));
        }
        // Probes go out every 100 ms: the holder must have kept answering to the end.
        let mac = self.host(holder).mac;
        let last = sightings
            .iter()
            .filter(|s| s.mac == mac)
            .map(|s| s.at)
            .max();
        match last {
            Some(at) if at.elapsed() < Duration::from_secs(1) => Ok(()),
            _ => Err(self.failure(&format!("{holder} stopped answering for the VIP: {last:?}"))),
        }
    }
}

fn node_name(node: &str) -> &'static str {
    if node == NODES[0] { NODES[0] } else { NODES[1] }
}

#[test]
fn the_vip_is_announced_before_the_label_and_a_not_ready_node_hands_it_over() -> io::Result<()> {
    require_netns!();
    let started = Instant::now();
    let stack = Stack::start("198.51.100.100".parse().map_err(io::Error::other)?)?;
    let recording = stack.record();
    let first = stack.first_holder(started)?;
    let second = Stack::other(&first);
    eprintln!("start -> label on {first}: {:?}", started.elapsed());
    stack.lease_confirms(node_name(&first))?;
    let held = vip_addrs(&stack.host(&first).ns, stack.vip)?;
    assert!(
        !held.is_empty() && held.iter().all(is_finite),
        "{first} should hold the VIP with a finite lifetime: {held:?}"
    );
    assert!(vip_addrs(&stack.host(second).ns, stack.vip)?.is_empty());

    // The CEGP sends through the VIP on the labelled node.
    let fleet = stack.fleet.clone();
    let cegp = stack
        .api
        .run(async move { fleet.cegp().await })?
        .map_err(io::Error::other)?
        .ok_or_else(|| stack.failure("no CEGP"))?;
    let gateway = &cegp["spec"]["egressGateway"];
    assert_eq!(gateway["egressIP"], stack.vip.to_string(), "{cegp}");
    assert_eq!(gateway["nodeSelector"]["matchLabels"][ACTIVE], "", "{cegp}");

    let lost = Instant::now();
    stack.hand_over_not_ready(&first)?;
    stack.label_never_doubled(recording, lost)?;
    stack.no_overlap()
}

/// How the holder is lost in [`loss_case`].
#[derive(Clone, Copy, Debug)]
enum Loss {
    /// The node dies: agent SIGKILLed, heartbeat stops; Node and Pods still look Ready.
    PowerOff,
    /// Only the agent dies; kubelet then reports its Pod NotReady.
    AgentCrash,
}

/// Loses the holder, then checks the kernel drops its VIP, the other node claims it only
/// afterwards, and the label follows only after that claim. Returns the measured phases.
fn loss_case(vip: IpAddr, loss: Loss) -> io::Result<()> {
    let started = Instant::now();
    let stack = Stack::start(vip)?;
    let recording = stack.record();
    let first = stack.first_holder(started)?;
    let second = Stack::other(&first);
    stack.lease_confirms(node_name(&first))?;

    let lost = Instant::now();
    stack.agent(&first).signal(libc::SIGKILL)?;
    match loss {
        Loss::PowerOff => stack.fleet.power_off(&first),
        Loss::AgentCrash => {
            let fleet = stack.fleet.clone();
            let holder = first.clone();
            stack
                .api
                .run(async move { fleet.set_agent_ready(&holder, false).await })?
                .map_err(io::Error::other)?;
        }
    }
    let gone = wait_vanished(&stack.host(&first).ns, stack.vip, Duration::from_secs(4))?
        .ok_or_else(|| stack.failure("the VIP stayed on the dead holder"))?;
    assert!(
        gone.duration_since(lost) <= Duration::from_millis(2600),
        "the VIP left the dead holder {:?} after the loss",
        gone.duration_since(lost)
    );
    let (moved, labelled) = stack.wait_label(&[first.as_str()])?;
    assert_eq!(moved, second);
    let claimed = stack.first_claim(second, lost)?;
    assert!(
        claimed.at > gone,
        "{second} claimed the VIP before it left {first}"
    );
    stack.label_follows_announcement(second, claimed.at, labelled)?;
    stack.lease_confirms(second)?;
    let late: Vec<_> = stack
        .observer
        .sightings()
        .into_iter()
        // The observer stamps a frame when its thread reads it, which can lag the wire a little
        // under load; a reply sent just before the address went would otherwise look late.
        .filter(|s| s.mac == stack.host(&first).mac && s.at > gone + Duration::from_millis(50))
        .collect();
    assert!(
        late.is_empty(),
        "{first} claimed after its VIP left: {late:?}"
    );
    eprintln!(
        "{loss:?} ({vip}): VIP left {first} {:?}, {second} claims {:?}, label on {second} {:?}",
        gone.duration_since(lost),
        claimed.at.duration_since(lost),
        labelled.duration_since(lost)
    );
    stack.label_never_doubled(recording, lost)?;
    stack.no_overlap()
}

#[test]
fn a_powered_off_holder_loses_the_vip_before_the_other_node_claims_it() -> io::Result<()> {
    require_netns!();
    loss_case(
        "198.51.100.100".parse().map_err(io::Error::other)?,
        Loss::PowerOff,
    )
}

#[test]
fn ipv6_a_powered_off_holder_loses_the_vip_before_the_other_node_claims_it() -> io::Result<()> {
    require_netns!();
    loss_case(
        "2001:db8::100".parse().map_err(io::Error::other)?,
        Loss::PowerOff,
    )
}

#[test]
fn a_crashed_agent_on_a_live_node_hands_over_after_the_lease_expires() -> io::Result<()> {
    require_netns!();
    loss_case(
        "198.51.100.100".parse().map_err(io::Error::other)?,
        Loss::AgentCrash,
    )
}

/// Longer than the VIP Lease duration `D` (3 s) and the address lifetime `L` (2 s): a VIP that
/// depended on the controller would be gone, and a controller judging by stale renewals would
/// declare the holder dead.
const CONTROLLER_ABSENT: Duration = Duration::from_secs(4);
/// Time given to a new controller after it synced (or became leader) to do anything wrong:
/// longer than the settle window (1 s) plus a few reconcile rounds.
const ROOM_TO_ACT: Duration = Duration::from_millis(2500);

#[test]
fn a_restarted_controller_moves_nothing_and_the_vip_stays_up() -> io::Result<()> {
    require_netns!();
    let started = Instant::now();
    let mut stack = Stack::start("198.51.100.100".parse().map_err(io::Error::other)?)?;
    let first = stack.first_holder(started)?;
    stack.lease_confirms(node_name(&first))?;
    stack.wait_logged(0, "synced=true", 1)?;

    let recording = stack.record();
    let since = Instant::now();
    stack.syncs[0].kill();
    std::thread::sleep(CONTROLLER_ABSENT);
    let restarted = SyncProcess::start(
        &stack.api.ns,
        &stack.kubeconfig,
        stack.dir.path(),
        stack.cilium,
    )?;
    stack.syncs.push(restarted);
    // The old process's lines stay in the shared log: the new one is the second "synced".
    stack.wait_logged(1, "synced=true", 2)?;
    std::thread::sleep(ROOM_TO_ACT);
    stack.held_steady(&first, recording, since)?;

    // The restarted controller is live: a NotReady holder still hands over at once.
    let recording = stack.record();
    let lost = Instant::now();
    stack.hand_over_not_ready(&first)?;
    stack.label_never_doubled(recording, lost)?;
    stack.no_overlap()
}

#[test]
fn a_killed_leader_is_replaced_without_moving_the_vip() -> io::Result<()> {
    require_netns!();
    const REPLICAS: &[&str] = &["sync-a", "sync-b"];
    let started = Instant::now();
    let mut stack = Stack::start_with(
        "198.51.100.100".parse().map_err(io::Error::other)?,
        Controllers::Replicas(REPLICAS),
    )?;
    let first = stack.first_holder(started)?;
    stack.lease_confirms(node_name(&first))?;
    let leader = stack.leader()?;
    let (killed, standby) = if leader == REPLICAS[0] {
        (0, 1)
    } else {
        (1, 0)
    };

    let recording = stack.record();
    let since = Instant::now();
    stack.syncs[killed].kill();
    // The standby takes the leader Lease after it expires (3 s) and adopts what it finds.
    stack.wait_logged(standby, "became leader", 1)?;
    eprintln!("leader SIGKILL -> standby leads: {:?}", since.elapsed());
    std::thread::sleep(ROOM_TO_ACT);
    stack.held_steady(&first, recording, since)?;
    if stack.leader()? != REPLICAS[standby] {
        return Err(stack.failure("the leader Lease did not pass to the standby"));
    }

    let recording = stack.record();
    let lost = Instant::now();
    stack.hand_over_not_ready(&first)?;
    stack.label_never_doubled(recording, lost)?;
    stack.no_overlap()
}
