//! A fault-injection soak of `egressc sync`: two real replicas with leader election against an
//! in-process kube-testserver holding groups of nodes, gateways in both source-IP modes (the
//! harness plays the VIP agents with egressc's own agent rules) and policies. The soak runs in
//! rounds: a stretch of seeded random faults (`chaos`), then the faults stop (API and process
//! faults are lifted, nodes keep the state they reached) and every gateway that has an eligible
//! node must be labelled on one, on Node and CiliumNode, within [`Config::converge_bound`].
//! Throughout, `checker` and `agents` check every committed change and every agent tick; the
//! replicas' RSS is sampled and must not grow past [`Config::rss_growth_bound`] after warm-up.
//!
//! Knobs (environment): `SOAK_SEED` (random when unset; printed), `SOAK_SECONDS` (seconds of
//! faults in all), `SOAK_ROUND_SECONDS`, `SOAK_OUTAGE_SECONDS` (the longest 503 outage; 0:
//! none), `SOAK_NODES`, `SOAK_GATEWAYS`, `SOAK_VIP_GATEWAYS`,
//! `SOAK_RUST_LOG` (the replicas' log filter), `SOAK_KEEP` (keep the logs' directory).

mod agents;
pub mod chaos;
pub mod checker;
pub mod replicas;
pub mod world;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use egressc::controller::{GRANT_ANNOTATION, READY_ANNOTATION, lease_name};
use kube_testserver::TestServer;
use serde_json::Value;

use chaos::{Chaos, Fault};
use replicas::{LEADER_LEASE, NODE_LEASE_GRACE, Replicas, SETTLE};
use world::{FOREIGN_LABEL, FOREIGN_VALUE, HAND_WRITTEN_CEGP, NAMESPACE, NodeState, Shape, World};

/// One soak's settings.
#[derive(Clone, Debug)]
pub struct Config {
    pub seed: u64,
    /// Seconds of faults in all, split into rounds.
    pub fault_time: Duration,
    pub round: Duration,
    /// The longest 503 outage (zero: none); longer than the leader Lease (3 s) meets the open
    /// split-brain bug (`tests/sync_soak.rs`, the ignored leadership test).
    pub max_outage: Duration,
    pub shape: Shape,
    /// After faults stop, every gateway with an eligible node is labelled on one within this.
    pub converge_bound: Duration,
    /// Resident memory of a replica may grow by at most this after its warm-up.
    pub rss_growth_bound_kib: u64,
    pub warm_up: Duration,
}

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

impl Config {
    /// The defaults given, overridden by the `SOAK_*` environment.
    pub fn from_env(
        fault_seconds: u64,
        round_seconds: u64,
        nodes: u64,
        max_outage_seconds: u64,
    ) -> Config {
        let random_seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        let gateways = knob("SOAK_GATEWAYS", 6).max(1) as usize;
        Config {
            seed: knob("SOAK_SEED", random_seed),
            fault_time: Duration::from_secs(knob("SOAK_SECONDS", fault_seconds)),
            round: Duration::from_secs(knob("SOAK_ROUND_SECONDS", round_seconds).max(1)),
            max_outage: Duration::from_secs(knob("SOAK_OUTAGE_SECONDS", max_outage_seconds)),
            shape: Shape {
                nodes: knob("SOAK_NODES", nodes).max(3) as usize,
                groups: 3,
                gateways,
                vip_gateways: (knob("SOAK_VIP_GATEWAYS", 2) as usize).min(gateways),
                policies_per_gateway: 2,
            },
            // Worst case after faults stop: a leader restarted at that instant waits out the
            // old leader's Lease (3 s) and re-lists; a powered-off holder is judged after the
            // grace (3 s), a VIP holder taken over after D (3 s), a recovered node settles
            // (1 s); the rest is slack for a loaded 2-core machine.
            converge_bound: LEADER_LEASE
                + NODE_LEASE_GRACE
                + Duration::from_secs(3)
                + SETTLE
                + Duration::from_secs(10),
            rss_growth_bound_kib: 64 * 1024,
            warm_up: Duration::from_secs(10),
        }
    }
}

/// What one soak did and found.
#[derive(Debug, Default)]
pub struct Report {
    pub rounds: u64,
    pub faults: BTreeMap<&'static str, u64>,
    pub converged_in: Vec<Duration>,
    pub violations: Vec<String>,
    pub changes_checked: u64,
    pub label_moves: u64,
    pub vip_moves: u64,
    pub agent_writes: BTreeMap<&'static str, u64>,
    /// identity#n, lived, warm-up peak KiB, later peak KiB
    pub rss: Vec<(String, Duration, u64, Option<u64>)>,
    pub logs: String,
}

impl Report {
    pub fn summary(&self, config: &Config) -> String {
        let mut out = String::new();
        let shape = config.shape;
        let _ = writeln!(
            out,
            "soak: seed {} ({} nodes, {} gateways of which {} VIP, {} policies; {} rounds, {} s of faults)",
            config.seed,
            shape.nodes,
            shape.gateways,
            shape.vip_gateways,
            shape.gateways * shape.policies_per_gateway,
            self.rounds,
            config.fault_time.as_secs()
        );
        let total: u64 = self.faults.values().sum();
        let _ = writeln!(out, "soak: {total} faults injected: {:?}", self.faults);
        let max = self.converged_in.iter().max().copied().unwrap_or_default();
        let _ = writeln!(
            out,
            "soak: converged after faults stopped in max {:.2} s (bound {} s): {:?}",
            max.as_secs_f64(),
            config.converge_bound.as_secs(),
            self.converged_in
                .iter()
                .map(|d| format!("{:.2}", d.as_secs_f64()))
                .collect::<Vec<_>>()
        );
        let _ = writeln!(
            out,
            "soak: {} changes checked, {} label moves ({} VIP), agent writes {:?}",
            self.changes_checked, self.label_moves, self.vip_moves, self.agent_writes
        );
        for (who, lived, warm, later) in &self.rss {
            let _ = writeln!(
                out,
                "soak: RSS {who} lived {:.0} s: warm-up peak {:.1} MiB, later peak {}",
                lived.as_secs_f64(),
                *warm as f64 / 1024.0,
                later.map_or("-".to_owned(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
            );
        }
        let _ = writeln!(out, "soak: {} violations", self.violations.len());
        for violation in self.violations.iter().take(30) {
            let _ = writeln!(out, "soak: VIOLATION {violation}");
        }
        out
    }
}

/// Runs one soak.
pub async fn run(config: &Config) -> Report {
    eprintln!(
        "soak: seed {} (replay: SOAK_SEED={} …)",
        config.seed, config.seed
    );
    let epoch = Instant::now();
    let server = TestServer::start().await.expect("test server");
    let feed = server.changes();
    // The harness plays kubelets and agents: their writes fail during an outage instead of
    // being retried by kube's default policy (for minutes: 15 tries, exponential from 5 ms).
    let mut client_config = server.client_config();
    client_config.default_retry = false;
    let client = kube::Client::try_from(client_config).expect("client");
    let world = World::seed(client, config.shape).await;
    let vip_gateways: BTreeSet<String> = world
        .gateways
        .iter()
        .filter(|g| g.vip.is_some())
        .map(|g| g.name.clone())
        .collect();
    let policies: BTreeSet<String> = world.policies.iter().map(|(p, _)| p.clone()).collect();
    let findings = checker::spawn(feed, vip_gateways, policies.clone(), epoch);
    let agents = agents::spawn(world.clone(), epoch);
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let mut replicas = Replicas::start(&kubeconfig, dir.path(), &["soak-a", "soak-b"]);
    let mut report = Report::default();

    // The initial election and every CEGP, before any fault.
    let initial = converge(&server, &world, config.converge_bound * 2).await;
    if let Err(unmet) = initial {
        report
            .violations
            .push(format!("no initial convergence: {unmet}"));
    }
    wait_for_cegps(&server, &policies, config.converge_bound).await;

    let mut chaos = Chaos::new(config.seed, config.max_outage);
    let mut faulted = Duration::ZERO;
    while faulted < config.fault_time && report.violations.is_empty() {
        report.rounds += 1;
        chaos.heal_nodes(&world).await;
        let round = config.round.min(config.fault_time - faulted);
        let started = Instant::now();
        while started.elapsed() < round {
            chaos.step(&server, &world, &mut replicas).await;
            for (identity, status) in replicas.crashed() {
                report
                    .violations
                    .push(format!("replica {identity} exited by itself: {status}"));
            }
            tokio::time::sleep(chaos.pause()).await;
        }
        faulted += round;
        // Faults stop: API and processes back, nodes as they are, written until accepted.
        chaos.undo_due(&server, &world, &mut replicas, true).await;
        world.enforce().await;
        match converge(&server, &world, config.converge_bound).await {
            Ok(took) => report.converged_in.push(took),
            Err(unmet) => report.violations.push(format!(
                "round {}: not converged {} s after faults stopped: {unmet}",
                report.rounds,
                config.converge_bound.as_secs()
            )),
        }
        if let Ok(f) = findings.lock() {
            report.violations.extend(f.violations.iter().cloned());
        }
        if let Ok(a) = agents.lock() {
            report.violations.extend(a.violations.iter().cloned());
        }
        report.violations.dedup();
        eprintln!(
            "soak: round {} done after {:.0} s, {} violations",
            report.rounds,
            epoch.elapsed().as_secs_f64(),
            report.violations.len()
        );
    }

    // Let the checker see the last changes, then the final state.
    tokio::time::sleep(Duration::from_millis(200)).await;
    report.violations.extend(final_state(&server, &policies));
    report.faults = chaos
        .injected
        .iter()
        .map(|(fault, n)| (Fault::name(*fault), *n))
        .collect();
    if let Ok(f) = findings.lock() {
        report.violations.extend(f.violations.iter().cloned());
        report.changes_checked = f.changes;
        report.label_moves = f.label_moves;
        report.vip_moves = f.vip_moves;
    }
    if let Ok(a) = agents.lock() {
        report.violations.extend(a.violations.iter().cloned());
        report.agent_writes = a.writes.clone();
    }
    let mut seen = BTreeSet::new();
    report.violations.retain(|v| seen.insert(v.clone()));
    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    for inc in replicas.incarnations() {
        let n = counts.entry(inc.identity.clone()).or_default();
        *n += 1;
        let who = format!("{}#{n} (pid {})", inc.identity, inc.pid);
        let peaks = inc.growth(config.warm_up);
        let warm = inc.rss.iter().map(|(_, k)| *k).max().unwrap_or(0);
        match peaks {
            Some((warm, later)) => {
                if later > warm + config.rss_growth_bound_kib {
                    report.violations.push(format!(
                        "{who}: RSS grew from {warm} KiB to {later} KiB after warm-up"
                    ));
                }
                report.rss.push((who, inc.lived(), warm, Some(later)));
            }
            None => report.rss.push((who, inc.lived(), warm, None)),
        }
    }
    if !report.violations.is_empty() {
        report.logs = replicas.log_tails(60);
    }
    if std::env::var_os("SOAK_KEEP").is_some() {
        let kept = dir.keep();
        eprintln!("soak: logs kept in {}", kept.display());
    }
    report
}

/// Labels on nodes, as stored now: gateway → nodes, for Node and CiliumNode objects.
fn stored_labels(server: &TestServer, plural: &str, group: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for object in server.stored(group, plural) {
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        if let Some(labels) = object["metadata"]["labels"].as_object() {
            for key in labels.keys() {
                if let Some(gw) =
                    key.strip_prefix("egress-gateway.network.deckhouse.io/active-for-")
                {
                    out.entry(gw.to_owned()).or_default().push(name.to_owned());
                }
            }
        }
    }
    out
}

/// What keeps the cluster from the converged state: for every gateway with an eligible node
/// (by the harness's intent), exactly one node labelled, the same on Node and CiliumNode, and
/// eligible; for VIP gateways its Lease granted to, held by and ready on that node.
fn unmet(server: &TestServer, world: &World) -> Vec<String> {
    let states = world.states();
    let on_nodes = stored_labels(server, "nodes", "");
    let on_cilium = stored_labels(server, "ciliumnodes", "cilium.io");
    let leases = server.stored("coordination.k8s.io", "leases");
    let mut out = Vec::new();
    for gateway in &world.gateways {
        let vip = gateway.vip.is_some();
        let eligible: BTreeSet<&str> = world
            .nodes
            .iter()
            .filter(|(n, g)| {
                *g == gateway.group
                    && states
                        .get(n)
                        .copied()
                        .unwrap_or(NodeState::HEALTHY)
                        .eligible(vip)
            })
            .map(|(n, _)| n.as_str())
            .collect();
        if eligible.is_empty() {
            continue;
        }
        let nodes = on_nodes.get(&gateway.name).cloned().unwrap_or_default();
        let cilium = on_cilium.get(&gateway.name).cloned().unwrap_or_default();
        let target = match (nodes.as_slice(), cilium.as_slice()) {
            ([n], [c]) if n == c && eligible.contains(n.as_str()) => n.clone(),
            _ => {
                out.push(format!(
                    "{}: Nodes {nodes:?}, CiliumNodes {cilium:?}, eligible {eligible:?}",
                    gateway.name
                ));
                continue;
            }
        };
        if vip {
            let name = lease_name(&gateway.name);
            let lease: Option<&Value> = leases
                .iter()
                .map(|l| l.as_ref())
                .find(|l| l["metadata"]["namespace"] == NAMESPACE && l["metadata"]["name"] == name);
            let field = |v: &Value| v.as_str().unwrap_or_default().to_owned();
            let (grant, holder, ready) = lease.map_or_else(Default::default, |l| {
                (
                    field(&l["metadata"]["annotations"][GRANT_ANNOTATION]),
                    field(&l["spec"]["holderIdentity"]),
                    field(&l["metadata"]["annotations"][READY_ANNOTATION]),
                )
            });
            if grant != target || holder != target || ready != target {
                out.push(format!(
                    "{}: labelled {target} but Lease grant {grant:?} holder {holder:?} ready {ready:?}",
                    gateway.name
                ));
            }
        }
    }
    out
}

/// Waits until [`unmet`] is empty; how long it took, or what was still unmet at `bound`.
async fn converge(server: &TestServer, world: &World, bound: Duration) -> Result<Duration, String> {
    let started = Instant::now();
    loop {
        let unmet = unmet(server, world);
        if unmet.is_empty() {
            return Ok(started.elapsed());
        }
        if started.elapsed() > bound {
            return Err(unmet.join("; "));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// CEGPs egressc owns: name → (owner kind, owner name), as stored.
fn owned_cegps(server: &TestServer) -> BTreeMap<String, (String, String)> {
    server
        .stored("cilium.io", "ciliumegressgatewaypolicies")
        .iter()
        .filter_map(|c| {
            let owner = c["metadata"]["ownerReferences"].get(0)?;
            Some((
                c["metadata"]["name"].as_str()?.to_owned(),
                (
                    owner["kind"].as_str().unwrap_or_default().to_owned(),
                    owner["name"].as_str().unwrap_or_default().to_owned(),
                ),
            ))
        })
        .collect()
}

async fn wait_for_cegps(server: &TestServer, policies: &BTreeSet<String>, bound: Duration) {
    let started = Instant::now();
    while started.elapsed() < bound {
        let owned = owned_cegps(server);
        if policies.iter().all(|p| owned.contains_key(p)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The end state: every policy's CEGP, owned by it; the hand-written CEGP and the foreign labels
/// as created.
fn final_state(server: &TestServer, policies: &BTreeSet<String>) -> Vec<String> {
    let mut out = Vec::new();
    let owned = owned_cegps(server);
    for policy in policies {
        match owned.get(policy) {
            Some((kind, owner)) if kind == "EgressGatewayPolicy" && owner == policy => {}
            other => out.push(format!("final: CEGP of policy {policy}: {other:?}")),
        }
    }
    let cegps = server.stored("cilium.io", "ciliumegressgatewaypolicies");
    match cegps
        .iter()
        .find(|c| c["metadata"]["name"] == HAND_WRITTEN_CEGP)
    {
        Some(c)
            if c["metadata"]["generation"] == 1
                && c["metadata"].get("ownerReferences").is_none() => {}
        other => out.push(format!("final: hand-written CEGP is {other:?}")),
    }
    for (group, plural) in [("", "nodes"), ("cilium.io", "ciliumnodes")] {
        for object in server.stored(group, plural) {
            if object["metadata"]["labels"][FOREIGN_LABEL] != FOREIGN_VALUE {
                out.push(format!(
                    "final: {plural}/{} lost its foreign label",
                    object["metadata"]["name"]
                ));
            }
        }
    }
    out
}
