//! `egressc sync` end to end at scale: the release binary against an in-process kube-testserver
//! holding 5,000 Nodes (10 groups of 500, each with a CiliumNode, a Ready cilium-agent Pod and
//! a heartbeat Lease renewed every 10 s like a kubelet's), 1,000 gateways (100 per group) and
//! 10,000 policies (10 per gateway).
//!
//! Measured (times are request arrivals at the server, from its request log, so a watcher of
//! our own adds nothing to them):
//! - initial sync: process start → the last initial write answered (every Node and CiliumNode
//!   labelled, every gateway and policy status written, every CEGP applied), with the
//!   milestones in between;
//! - reaction: the active node of a gateway is set Ready=False (status patch) → the patch
//!   putting the gateway's `active-for-…` label on the new node's Node and CiliumNode (the
//!   later of the two arrivals), over many trials;
//! - peak RSS (VmHWM) of the controller after the initial sync and after the trials;
//! - restart on the converged cluster: a new process's start → `/readyz` (every watch listed),
//!   and the label writes it sends in the seconds after (it adopts what it finds: none).
//!
//! Run: `cargo bench --bench sync_scale`. Knobs (environment): `SCALE_GROUPS` (10),
//! `SCALE_NODES_PER_GROUP` (500), `SCALE_NODES` (all nodes; default groups × nodes per group,
//! more adds worker nodes no gateway selects, each with its CiliumNode, cilium-agent Pod and
//! heartbeat Lease), `SCALE_GATEWAYS_PER_GROUP` (100), `SCALE_POLICIES_PER_GATEWAY` (10),
//! `SCALE_TRIALS` (100), `SCALE_HEARTBEAT_SECONDS` (10; 0 turns renewals off),
//! `SCALE_EGRESSC` (the binary to run; default: this build's), `SCALE_RUST_LOG` (egressc's log
//! filter; `warn`), `SCALE_LOG` (where its log goes), `SCALE_SLOW_REACTION` (egressc's
//! `--slow-reaction`, 20ms; its slow-reaction log lines are printed after the trials; `off`
//! leaves the flag out, for builds without it), `SCALE_ALLOCATOR_ENV` (`off`: start egressc
//! without the Deployment's allocator settings).

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use futures::{StreamExt, stream};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
};
use kube_testserver::{Options, RequestRecord, TestServer};
use serde_json::{Value, json};

const NAMESPACE: &str = "egressc-system";
const LABEL_PREFIX: &str = "egress-gateway.network.deckhouse.io/";
const GROUP_LABEL: &str = "node.example.com/group";
/// Requests in flight while loading the cluster.
const LOAD_CONCURRENCY: usize = 64;
/// Upper bound for one awaited step: a guard against hangs, not a measurement.
const PATIENCE: Duration = Duration::from_secs(120);

type Error = Box<dyn std::error::Error + Send + Sync>;

// The allocator egressc ships with (src/main.rs), for the in-process test server too: with the
// system allocator the server spent a third of its time in malloc and free.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The cluster's size.
#[derive(Clone, Copy, Debug)]
struct Shape {
    groups: usize,
    nodes_per_group: usize,
    /// Nodes no gateway selects (`SCALE_NODES` minus the grouped ones).
    workers: usize,
    gateways_per_group: usize,
    policies_per_gateway: usize,
    trials: usize,
    heartbeat: Duration,
}

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

impl Shape {
    fn from_env() -> Shape {
        let groups = knob("SCALE_GROUPS", 10);
        let nodes_per_group = knob("SCALE_NODES_PER_GROUP", 500);
        let grouped = groups * nodes_per_group;
        Shape {
            groups,
            nodes_per_group,
            workers: knob("SCALE_NODES", grouped).saturating_sub(grouped),
            gateways_per_group: knob("SCALE_GATEWAYS_PER_GROUP", 100),
            policies_per_gateway: knob("SCALE_POLICIES_PER_GATEWAY", 10),
            trials: knob("SCALE_TRIALS", 100),
            heartbeat: Duration::from_secs(knob("SCALE_HEARTBEAT_SECONDS", 10) as u64),
        }
    }

    /// Every node: the grouped ones, then the workers.
    fn nodes(&self) -> Vec<String> {
        (0..self.groups)
            .flat_map(|g| (0..self.nodes_per_group).map(move |i| node_name(g, i)))
            .chain((0..self.workers).map(worker_name))
            .collect()
    }

    fn gateways(&self) -> Vec<(usize, String)> {
        (0..self.groups)
            .flat_map(|g| (0..self.gateways_per_group).map(move |i| (g, gateway_name(g, i))))
            .collect()
    }

    fn policies(&self) -> Vec<(String, String)> {
        self.gateways()
            .into_iter()
            .flat_map(|(_, gw)| {
                (0..self.policies_per_gateway).map(move |n| (gw.clone(), format!("{gw}-p{n}")))
            })
            .collect()
    }
}

fn node_name(group: usize, i: usize) -> String {
    format!("node-{group}-{i:04}")
}

fn worker_name(i: usize) -> String {
    format!("worker-{i:05}")
}

fn gateway_name(group: usize, i: usize) -> String {
    format!("gw-{group}-{i:03}")
}

fn active_label(gateway: &str) -> String {
    format!("{LABEL_PREFIX}active-for-{gateway}")
}

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

fn cilium_nodes(client: &Client) -> Api<DynamicObject> {
    Api::all_with(
        client.clone(),
        &resource("cilium.io", "v2", "CiliumNode", "ciliumnodes"),
    )
}

fn from<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, Error> {
    Ok(serde_json::from_value(value)?)
}

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("sync_scale: no runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(Shape::from_env())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sync_scale: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(shape: Shape) -> Result<(), Error> {
    let server = TestServer::start_with(Options {
        record_requests: true,
        ..Options::default()
    })
    .await?;
    let client = server.client()?;
    let loading = Instant::now();
    load(&client, &shape).await?;
    println!(
        "loaded {} nodes ({} of them selected by no gateway), {} gateways, {} policies in {:.1} s",
        shape.groups * shape.nodes_per_group + shape.workers,
        shape.workers,
        shape.groups * shape.gateways_per_group,
        shape.groups * shape.gateways_per_group * shape.policies_per_gateway,
        loading.elapsed().as_secs_f64()
    );
    let heartbeats = spawn_heartbeats(client.clone(), shape);
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig)?;
    let log_path = std::env::var_os("SCALE_LOG")
        .map_or_else(|| dir.path().join("sync.log"), std::path::PathBuf::from);

    let _ = std::fs::remove_file(&log_path);
    let mark = server.requests_recorded();
    let spawned = Instant::now();
    let mut sync = SyncProcess::start(&kubeconfig, &log_path, "127.0.0.1:0")?;
    let initial = wait_initial_sync(&server, &shape, mark, spawned).await;
    let initial = match initial {
        Ok(initial) => initial,
        Err(error) => {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            return Err(format!("{error}\n--- egressc sync log ---\n{log}").into());
        }
    };
    verify_labels(&client, &shape).await?;
    let rss_initial = sync.peak_rss_kib();
    initial.print();
    println!(
        "controller peak RSS after initial sync: {} (RSS now {})",
        mib(rss_initial),
        mib(sync.rss_kib())
    );

    // Let the initial burst's echoes drain before timing reactions.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let log_mark = std::fs::metadata(&log_path).map_or(0, |m| m.len() as usize);
    let trials = reaction_trials(&server, &client, &shape).await?;
    let rss_final = sync.peak_rss_kib();
    trials.print();
    print_slow_reactions(&log_path, log_mark);
    println!(
        "controller peak RSS after the trials: {} (RSS now {})",
        mib(rss_final),
        mib(sync.rss_kib())
    );

    sync.stop();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let restarted = restart(&server, &kubeconfig, &log_path).await?;
    // The restarted controller fails over like the first one.
    let after_restart = reaction_trials(
        &server,
        &client,
        &Shape {
            trials: TRIALS_AFTER_RESTART,
            ..shape
        },
    )
    .await?;
    println!("after the restart:");
    after_restart.print();
    drop(restarted);
    heartbeats.abort();
    Ok(())
}

/// How long after a restart the harness watches for label writes that should not come.
const AFTER_RESTART: Duration = Duration::from_secs(3);
/// Reaction trials run against the restarted controller.
const TRIALS_AFTER_RESTART: usize = 10;

/// Starts a new controller on the converged cluster: prints start → `/readyz` and the label
/// writes (PATCH of a Node or CiliumNode) that arrive until [`AFTER_RESTART`] after ready —
/// adopting the labels in place means none.
async fn restart(
    server: &TestServer,
    kubeconfig: &std::path::Path,
    log_path: &std::path::Path,
) -> Result<SyncProcess, Error> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mark = server.requests_recorded();
    let spawned = Instant::now();
    let restarted = SyncProcess::start(kubeconfig, log_path, &format!("127.0.0.1:{port}"))?;
    let deadline = spawned + Duration::from_secs(60);
    while !ready(port).await {
        if Instant::now() > deadline {
            return Err("the restarted controller never became ready".into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let ready_after = spawned.elapsed();
    tokio::time::sleep(AFTER_RESTART).await;
    let requests = server.requests_since(mark);
    // The harness's own writes in this window are the heartbeat Lease renewals.
    let writes: Vec<_> = requests
        .iter()
        .filter(|r| r.method.as_str() != "GET" && !r.path.contains("/namespaces/kube-node-lease/"))
        .collect();
    let label_writes = writes
        .iter()
        .filter(|r| {
            r.method.as_str() == "PATCH"
                && !r.path.ends_with("/status")
                && (r.path.starts_with("/api/v1/nodes/")
                    || r.path.starts_with("/apis/cilium.io/v2/ciliumnodes/"))
        })
        .count();
    println!(
        "restart on the converged cluster: ready (every watch listed) after {} ms; in the {} s after: {label_writes} label writes, {} writes in all; peak RSS {}",
        ready_after.as_millis(),
        AFTER_RESTART.as_secs(),
        writes.len(),
        mib(restarted.peak_rss_kib())
    );
    if label_writes > 0 {
        return Err(format!("the restarted controller wrote {label_writes} labels").into());
    }
    Ok(restarted)
}

/// `GET /readyz` on the controller's metrics port answers 200.
async fn ready(port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    if stream
        .write_all(b"GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.is_ok() && head.ends_with(b"200")
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(
        || "unknown".to_owned(),
        |k| format!("{:.1} MiB", k as f64 / 1024.0),
    )
}

/// `render::SYNC_ALLOCATOR_ENV`, or nothing with `SCALE_ALLOCATOR_ENV=off`.
fn allocator_env() -> &'static [(&'static str, &'static str)] {
    if std::env::var("SCALE_ALLOCATOR_ENV").is_ok_and(|v| v == "off") {
        &[]
    } else {
        &egressc::render::SYNC_ALLOCATOR_ENV
    }
}

/// `--slow-reaction` for egressc (`SCALE_SLOW_REACTION`, default 20ms; `off`: none).
fn slow_reaction_args() -> Vec<String> {
    let threshold = std::env::var("SCALE_SLOW_REACTION").unwrap_or_else(|_| "20ms".to_owned());
    if threshold == "off" {
        return Vec::new();
    }
    vec!["--slow-reaction".to_owned(), threshold]
}

/// Prints egressc's own slow-reaction log lines (phases as it measured them) since `from`
/// bytes into its log; the slowest [`SLOWEST_SHOWN`] in full.
fn print_slow_reactions(log: &std::path::Path, from: usize) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut lines: Vec<(Duration, &str)> = text
        .get(from..)
        .unwrap_or_default()
        .lines()
        .filter(|line| line.contains("slow reaction"))
        .map(|line| (field_duration(line, "reaction=").unwrap_or_default(), line))
        .collect();
    lines.sort_by_key(|(took, _)| std::cmp::Reverse(*took));
    println!(
        "egressc's slow-reaction log lines (over SCALE_SLOW_REACTION): {}",
        lines.len()
    );
    for (_, line) in lines.iter().take(SLOWEST_SHOWN) {
        let fields = line.find("reaction=").map_or(*line, |at| &line[at..]);
        println!("    {fields}");
    }
}

/// The `Debug` duration after `key` in a log line (`1.5ms`, `12µs`, `2.1s`).
fn field_duration(line: &str, key: &str) -> Option<Duration> {
    let rest = &line[line.find(key)? + key.len()..];
    let value = rest.split_whitespace().next()?;
    let digits = value.trim_end_matches(|c: char| c.is_alphabetic() || c == 'µ');
    let number: f64 = digits.parse().ok()?;
    let seconds = match &value[digits.len()..] {
        "s" => number,
        "ms" => number / 1e3,
        "µs" | "us" => number / 1e6,
        "ns" => number / 1e9,
        _ => return None,
    };
    Some(Duration::from_secs_f64(seconds))
}

/// The running `egressc sync`; killed on drop.
struct SyncProcess {
    child: Child,
}

impl SyncProcess {
    fn start(
        kubeconfig: &std::path::Path,
        log: &std::path::Path,
        metrics_addr: &str,
    ) -> Result<Self, Error> {
        // Appending keeps the first process's log when the harness restarts the controller.
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(log)?;
        // `SCALE_EGRESSC` runs another build (e.g. a baseline) against the same cluster.
        let binary = std::env::var_os("SCALE_EGRESSC")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_egressc").into());
        let child = Command::new(binary)
            .args(["sync", "--namespace", NAMESPACE])
            .args(["--metrics-addr", metrics_addr])
            .args(["--node-lease-grace", "40s", "--settle", "10s"])
            .args(["--leader-elect", "false", "--identity", "bench"])
            .args(["--cilium-version", "1.19"])
            .args(slow_reaction_args())
            .env("KUBECONFIG", kubeconfig)
            // The allocator settings the installed Deployment gives the controller, unless
            // `SCALE_ALLOCATOR_ENV=off` (mimalloc's defaults).
            .envs(allocator_env().iter().copied())
            .env(
                "RUST_LOG",
                std::env::var("SCALE_RUST_LOG").unwrap_or_else(|_| "warn".to_owned()),
            )
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        Ok(SyncProcess { child })
    }

    /// VmHWM from /proc, in KiB.
    fn peak_rss_kib(&self) -> Option<u64> {
        self.status_kib("VmHWM:")
    }

    /// VmRSS (now) from /proc, in KiB: what the process still holds, where the peak may be
    /// an earlier burst's.
    fn rss_kib(&self) -> Option<u64> {
        self.status_kib("VmRSS:")
    }

    fn status_kib(&self, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SyncProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn create_crd(client: &Client, crd: Value) -> Result<(), Error> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    api.create(&PostParams::default(), &from(crd)?).await?;
    Ok(())
}

/// Runs `make(item)` for every item, `LOAD_CONCURRENCY` at a time; fails on the first error.
async fn for_all<T, F, Fut>(items: Vec<T>, make: F) -> Result<(), Error>
where
    F: Fn(T) -> Fut,
    Fut: Future<Output = Result<(), Error>>,
{
    let results: Vec<Result<(), Error>> = stream::iter(items)
        .map(make)
        .buffer_unordered(LOAD_CONCURRENCY)
        .collect()
        .await;
    results.into_iter().collect()
}

async fn load(client: &Client, shape: &Shape) -> Result<(), Error> {
    let crds: Vec<Value> = serde_saphyr::from_str_multiple(&egressc::crds::render_crds())?;
    for crd in crds {
        create_crd(client, crd).await?;
    }
    let root = env!("CARGO_MANIFEST_DIR");
    for fixture in [
        "ciliumnodes.crd.yaml",
        "ciliumegressgatewaypolicies.v1.19.0.yaml",
    ] {
        let text = std::fs::read_to_string(format!("{root}/tests/fixtures/{fixture}"))?;
        let crds: Vec<Value> = serde_saphyr::from_str_multiple(&text)?;
        for crd in crds {
            create_crd(client, crd).await?;
        }
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": NAMESPACE}}))?,
        )
        .await?;

    let nodes: Api<Node> = Api::all(client.clone());
    let pods: Api<Pod> = Api::namespaced(client.clone(), "kube-system");
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let cilium = cilium_nodes(client);
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let all_nodes: Vec<(String, String)> = (0..shape.groups)
        .flat_map(|g| {
            (0..shape.nodes_per_group).map(move |i| (format!("group-{g}"), node_name(g, i)))
        })
        .chain((0..shape.workers).map(|i| ("workers".to_owned(), worker_name(i))))
        .collect();
    for_all(all_nodes, |(group, name)| {
        let (nodes, pods, leases, cilium, now) = (&nodes, &pods, &leases, &cilium, &now);
        async move {
            let pp = PostParams::default();
            // Built-in kinds keep the status given on create, as the apiserver does.
            nodes
                .create(
                    &pp,
                    &from(json!({
                        "metadata": {"name": name, "labels": {
                            GROUP_LABEL: group, "kubernetes.io/os": "linux"}},
                        "status": {"conditions": [{"type": "Ready", "status": "True"}]}}))?,
                )
                .await?;
            cilium
                .create(
                    &pp,
                    &from(json!({"apiVersion": "cilium.io/v2", "kind": "CiliumNode",
                        "metadata": {"name": name}, "spec": {}}))?,
                )
                .await?;
            pods.create(
                &pp,
                &from(json!({
                    "metadata": {"name": format!("cilium-{name}"), "labels": {"k8s-app": "cilium"}},
                    "spec": {"nodeName": name, "containers": [{"name": "agent", "image": "cilium"}]},
                    "status": {"conditions": [{"type": "Ready", "status": "True"}]}}))?,
            )
            .await?;
            leases
                .create(
                    &pp,
                    &from(json!({
                        "metadata": {"name": name},
                        "spec": {"holderIdentity": name, "leaseDurationSeconds": 40,
                                 "renewTime": now}}))?,
                )
                .await?;
            Ok(())
        }
    })
    .await?;

    let gateways = Api::<DynamicObject>::all_with(
        client.clone(),
        &resource(
            "network.deckhouse.io",
            "v1alpha1",
            "EgressGateway",
            "egressgateways",
        ),
    );
    for_all(shape.gateways(), |(group, name)| {
        let gateways = &gateways;
        async move {
            let body = json!({
                "apiVersion": "network.deckhouse.io/v1alpha1", "kind": "EgressGateway",
                "metadata": {"name": name},
                "spec": {
                    "nodeSelector": {GROUP_LABEL: format!("group-{group}")},
                    "sourceIP": {"mode": "PrimaryIPFromEgressGatewayNodeInterface",
                                 "primaryIPFromEgressGatewayNodeInterface": {"interfaceName": "eth0"}}
                }
            });
            gateways.create(&PostParams::default(), &from(body)?).await?;
            Ok(())
        }
    })
    .await?;
    let policies = Api::<DynamicObject>::all_with(
        client.clone(),
        &resource(
            "network.deckhouse.io",
            "v1alpha1",
            "EgressGatewayPolicy",
            "egressgatewaypolicies",
        ),
    );
    for_all(shape.policies().into_iter().enumerate().collect(), |(n, (gateway, name))| {
        let policies = &policies;
        async move {
            let body = json!({
                "apiVersion": "network.deckhouse.io/v1alpha1", "kind": "EgressGatewayPolicy",
                "metadata": {"name": name},
                "spec": {
                    "egressGatewayName": gateway,
                    "destinationCIDRs": [format!("203.0.113.{}/32", n % 256), "198.51.100.0/24"],
                    "selectors": [{"podSelector": {"matchLabels": {"app": format!("app-{}", n % 10)}}}]
                }
            });
            policies.create(&PostParams::default(), &from(body)?).await?;
            Ok(())
        }
    })
    .await
}

/// Renews every heartbeat Lease once per `shape.heartbeat`, spread evenly, as kubelets do.
fn spawn_heartbeats(client: Client, shape: Shape) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if shape.heartbeat.is_zero() {
            return;
        }
        let leases: Api<Lease> = Api::namespaced(client, "kube-node-lease");
        let names = shape.nodes();
        let tick = Duration::from_millis(20);
        let per_tick = ((names.len() as f64) * tick.as_secs_f64() / shape.heartbeat.as_secs_f64())
            .ceil()
            .max(1.0) as usize;
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut next = 0;
        loop {
            interval.tick().await;
            let now = k8s_openapi::jiff::Timestamp::now().to_string();
            let batch: Vec<&String> = (0..per_tick)
                .map(|k| &names[(next + k) % names.len()])
                .collect();
            next = (next + per_tick) % names.len();
            let body = Patch::Merge(json!({"spec": {"renewTime": now}}));
            stream::iter(batch)
                .for_each_concurrent(8, |name| {
                    let (leases, body) = (&leases, &body);
                    async move {
                        let _ = leases.patch(name, &PatchParams::default(), body).await;
                    }
                })
                .await;
        }
    })
}

/// Which initial write a request is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum WriteKind {
    NodeLabels,
    CiliumNodeLabels,
    GatewayStatus,
    PolicyStatus,
    Cegp,
}

fn classify(record: &RequestRecord) -> Option<(WriteKind, String)> {
    if record.method != "PATCH" || !(200..300).contains(&record.status) {
        return None;
    }
    let segments: Vec<&str> = record.path.split('/').filter(|s| !s.is_empty()).collect();
    let kind = match segments.as_slice() {
        ["api", "v1", "nodes", name] => (WriteKind::NodeLabels, *name),
        ["apis", "cilium.io", "v2", "ciliumnodes", name] => (WriteKind::CiliumNodeLabels, *name),
        [
            "apis",
            "network.deckhouse.io",
            _,
            "egressgateways",
            name,
            "status",
        ] => (WriteKind::GatewayStatus, *name),
        [
            "apis",
            "network.deckhouse.io",
            _,
            "egressgatewaypolicies",
            name,
            "status",
        ] => (WriteKind::PolicyStatus, *name),
        [
            "apis",
            "cilium.io",
            "v2",
            "ciliumegressgatewaypolicies",
            name,
        ] => (WriteKind::Cegp, *name),
        _ => return None,
    };
    Some((kind.0, kind.1.to_owned()))
}

/// Requests the harness itself makes while egressc starts: heartbeat renewals.
fn is_harness(record: &RequestRecord) -> bool {
    record.path.contains("/namespaces/kube-node-lease/")
}

/// `/api/v1/nodes/NAME` or `/apis/cilium.io/v2/ciliumnodes/NAME`: the harness's GETs.
fn is_single_object(path: &str) -> bool {
    path.starts_with("/api/v1/nodes/") || path.starts_with("/apis/cilium.io/v2/ciliumnodes/")
}

fn is_list(record: &RequestRecord) -> bool {
    record.method == "GET"
        && !record
            .query
            .as_deref()
            .is_some_and(|q| q.contains("watch=true") || q.contains("watch=1"))
}

/// Milestones of the initial sync, since the process was spawned.
struct Initial {
    first_request: Duration,
    lists_done: Duration,
    list_server_time: Duration,
    first_write: Duration,
    done: BTreeMap<WriteKind, Duration>,
    all_done: Duration,
    writes: usize,
    write_server_time: Duration,
}

impl Initial {
    fn print(&self) {
        let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
        println!("initial sync (process start → …):");
        println!("  first API request        {}", ms(self.first_request));
        println!(
            "  last initial list answered {} (server time in lists: {})",
            ms(self.lists_done),
            ms(self.list_server_time)
        );
        println!("  first write arrived      {}", ms(self.first_write));
        for (kind, at) in &self.done {
            println!("  {kind:?} all answered  {}", ms(*at));
        }
        println!(
            "  ALL initial writes answered {} ({} writes; server time in them: {})",
            ms(self.all_done),
            self.writes,
            ms(self.write_server_time)
        );
    }
}

async fn wait_initial_sync(
    server: &TestServer,
    shape: &Shape,
    mark: usize,
    spawned: Instant,
) -> Result<Initial, Error> {
    let nodes = shape.groups * shape.nodes_per_group;
    let gateways = shape.groups * shape.gateways_per_group;
    let expected: BTreeMap<WriteKind, usize> = [
        (WriteKind::NodeLabels, nodes),
        (WriteKind::CiliumNodeLabels, nodes),
        (WriteKind::GatewayStatus, gateways),
        (
            WriteKind::PolicyStatus,
            gateways * shape.policies_per_gateway,
        ),
        (WriteKind::Cegp, gateways * shape.policies_per_gateway),
    ]
    .into_iter()
    .collect();
    let mut seen: BTreeMap<WriteKind, BTreeSet<String>> = BTreeMap::new();
    let mut done: BTreeMap<WriteKind, Duration> = BTreeMap::new();
    let mut records: Vec<RequestRecord> = Vec::new();
    let mut position = mark;
    loop {
        if spawned.elapsed() > PATIENCE {
            let counts: BTreeMap<_, _> = seen.iter().map(|(k, v)| (*k, v.len())).collect();
            return Err(format!("initial sync incomplete after {PATIENCE:?}: {counts:?}").into());
        }
        let fresh = server.requests_since(position);
        position += fresh.len();
        for record in fresh {
            if let Some((kind, name)) = classify(&record) {
                let names = seen.entry(kind).or_default();
                names.insert(name);
                if names.len() == expected[&kind] && !done.contains_key(&kind) {
                    done.insert(kind, (record.arrived + record.handled) - spawned);
                }
            }
            if !is_harness(&record) {
                records.push(record);
            }
        }
        if done.len() == expected.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let since = |at: Instant| at.saturating_duration_since(spawned);
    let all_done = done.values().copied().max().unwrap_or_default();
    let lists: Vec<&RequestRecord> = records.iter().filter(|r| is_list(r)).collect();
    let writes: Vec<&RequestRecord> = records
        .iter()
        .filter(|r| r.method != "GET" && since(r.arrived) <= all_done)
        .collect();
    Ok(Initial {
        first_request: records
            .first()
            .map(|r| since(r.arrived))
            .unwrap_or_default(),
        lists_done: lists
            .iter()
            .map(|r| since(r.arrived + r.handled))
            .max()
            .unwrap_or_default(),
        list_server_time: lists.iter().map(|r| r.handled).sum(),
        first_write: writes
            .iter()
            .map(|r| since(r.arrived))
            .min()
            .unwrap_or_default(),
        done,
        all_done,
        writes: writes.len(),
        write_server_time: writes.iter().map(|r| r.handled).sum(),
    })
}

/// Every grouped Node carries `member` and no worker any egressc label; every gateway's
/// `active-for-…` label sits on exactly one Node and the same CiliumNode.
async fn verify_labels(client: &Client, shape: &Shape) -> Result<(), Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let listed = nodes.list(&ListParams::default()).await?;
    let mut holders: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for node in &listed.items {
        let labels = node.metadata.labels.clone().unwrap_or_default();
        let worker = node
            .metadata
            .name
            .as_deref()
            .is_some_and(|n| n.starts_with("worker-"));
        if worker && labels.keys().any(|k| k.starts_with(LABEL_PREFIX)) {
            return Err(format!("worker {:?} has egressc labels", node.metadata.name).into());
        }
        if !worker && !labels.contains_key(&format!("{LABEL_PREFIX}member")) {
            return Err(format!("node {:?} has no member label", node.metadata.name).into());
        }
        for key in labels.keys().filter_map(|k| k.strip_prefix(LABEL_PREFIX)) {
            if let Some(gateway) = key.strip_prefix("active-for-") {
                holders
                    .entry(gateway.to_owned())
                    .or_default()
                    .push(node.metadata.name.clone().unwrap_or_default());
            }
        }
    }
    let cilium = cilium_nodes(client).list(&ListParams::default()).await?;
    let cilium_labels: BTreeMap<String, BTreeMap<String, String>> = cilium
        .items
        .into_iter()
        .map(|n| {
            (
                n.metadata.name.unwrap_or_default(),
                n.metadata.labels.unwrap_or_default(),
            )
        })
        .collect();
    for (_, gateway) in shape.gateways() {
        let Some([holder]) = holders.get(&gateway).map(Vec::as_slice) else {
            return Err(format!("gateway {gateway}: holders {:?}", holders.get(&gateway)).into());
        };
        if !cilium_labels
            .get(holder)
            .is_some_and(|l| l.contains_key(&active_label(&gateway)))
        {
            return Err(format!("gateway {gateway}: CiliumNode {holder} lacks the label").into());
        }
    }
    Ok(())
}

/// Slowest trials printed with their phases.
const SLOWEST_SHOWN: usize = 5;

/// One failover's numbers.
struct Trial {
    /// Status patch arrival → the later label patch arrival (server clock).
    reaction: Duration,
    /// Time the server spent handling the status patch and the label patches.
    server: Duration,
    /// From sending the status patch to seeing both labels with a GET (harness view).
    observed: Duration,
    /// Status patch arrival → the first label patch's arrival (watch delivery, egressc's
    /// intake and plan).
    detect: Duration,
    /// The first label patch's arrival → the last one's (egressc's label writes).
    writes: Duration,
    /// egressc's other requests between the status patch and the last label patch.
    traffic: String,
}

/// The plural of a request path (`…/egressgateways/NAME/status` → `egressgateways/status`).
fn resource_of(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut rest = match segments.first() {
        Some(&"api") => segments.get(2..),
        _ => segments.get(3..),
    }
    .unwrap_or_default();
    if rest.first() == Some(&"namespaces") && rest.len() > 2 {
        rest = &rest[2..];
    }
    let plural = rest.first().copied().unwrap_or("?");
    if rest.last() == Some(&"status") && rest.len() > 2 {
        format!("{plural}/status")
    } else {
        plural.to_owned()
    }
}

/// egressc's requests in a trial's window, by kind (the harness's own are left out: heartbeat
/// renewals, the status patch, GETs of single objects), and the slowest of them.
fn traffic(records: &[&RequestRecord]) -> String {
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    let mut slowest: Option<&RequestRecord> = None;
    for record in records {
        let kind = if record.method == "GET" {
            if record
                .query
                .as_deref()
                .is_some_and(|q| q.contains("watch=true") || q.contains("watch=1"))
            {
                format!("watch {}", record.path)
            } else {
                format!("list {}", record.path)
            }
        } else {
            format!("{} {}", record.method, resource_of(&record.path))
        };
        *kinds.entry(kind).or_default() += 1;
        if slowest.is_none_or(|s| record.handled > s.handled) {
            slowest = Some(record);
        }
    }
    let mut out: Vec<String> = kinds.iter().map(|(k, n)| format!("{n}× {k}")).collect();
    if let Some(s) = slowest {
        out.push(format!(
            "slowest: {} {} {:.1} ms",
            s.method,
            s.path,
            s.handled.as_secs_f64() * 1000.0
        ));
    }
    out.join(", ")
}

struct Trials {
    trials: Vec<Trial>,
    failed: usize,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    // Nearest rank.
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

impl Trials {
    fn print(&self) {
        let stats = |pick: fn(&Trial) -> Duration| {
            let mut values: Vec<Duration> = self.trials.iter().map(pick).collect();
            values.sort();
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            format!(
                "p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                ms(percentile(&values, 0.50)),
                ms(percentile(&values, 0.90)),
                ms(percentile(&values, 0.99)),
                ms(values.last().copied().unwrap_or_default())
            )
        };
        println!(
            "reaction, {} trials ({} failed): NotReady status patch → active-for label patch on Node and CiliumNode (arrivals at the server)",
            self.trials.len(),
            self.failed
        );
        println!("  reaction          {}", stats(|t| t.reaction));
        println!("  of it server time {}", stats(|t| t.server));
        println!("  to 1st label patch {}", stats(|t| t.detect));
        println!("  label patches     {}", stats(|t| t.writes));
        println!("  harness view      {}", stats(|t| t.observed));
        let mut slowest: Vec<&Trial> = self.trials.iter().collect();
        slowest.sort_by_key(|t| std::cmp::Reverse(t.reaction));
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "  slowest trials (status patch → 1st label patch → last; server time; egressc's requests meanwhile):"
        );
        for trial in slowest.iter().take(SLOWEST_SHOWN) {
            println!(
                "    {:.1} ms = {:.1} + {:.1} ms; server {:.1} ms; {}",
                ms(trial.reaction),
                ms(trial.detect),
                ms(trial.writes),
                ms(trial.server),
                trial.traffic
            );
        }
    }
}

async fn holder(client: &Client, gateway: &str) -> Result<String, Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let list = nodes
        .list(&ListParams::default().labels(&active_label(gateway)))
        .await?;
    match list.items.as_slice() {
        [node] => Ok(node.metadata.name.clone().unwrap_or_default()),
        other => Err(format!("gateway {gateway} has {} holders", other.len()).into()),
    }
}

async fn set_ready(nodes: &Api<Node>, node: &str, ready: bool) -> Result<(), Error> {
    let status = if ready { "True" } else { "False" };
    nodes
        .patch_status(
            node,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"conditions": [{"type": "Ready", "status": status}]}})),
        )
        .await?;
    Ok(())
}

async fn labelled(client: &Client, node: &str, label: &str) -> Result<bool, Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let on_node = nodes
        .get(node)
        .await?
        .metadata
        .labels
        .is_some_and(|l| l.contains_key(label));
    let on_cilium = cilium_nodes(client)
        .get(node)
        .await?
        .metadata
        .labels
        .is_some_and(|l| l.contains_key(label));
    Ok(on_node && on_cilium)
}

/// Waits until the request log shows PATCHes of Node and CiliumNode `node` after `from`.
async fn wait_patched(server: &TestServer, from: usize, node: &str) -> Result<(), Error> {
    let started = Instant::now();
    let node_path = format!("/api/v1/nodes/{node}");
    let cilium_path = format!("/apis/cilium.io/v2/ciliumnodes/{node}");
    while started.elapsed() < PATIENCE {
        let records = server.requests_since(from);
        let patched = |path: &str| {
            records
                .iter()
                .any(|r| r.method == "PATCH" && r.path == path)
        };
        if patched(&node_path) && patched(&cilium_path) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Err(format!("{node} was not relabelled").into())
}

async fn reaction_trials(
    server: &TestServer,
    client: &Client,
    shape: &Shape,
) -> Result<Trials, Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let gateways = shape.gateways();
    let mut out = Trials {
        trials: Vec::new(),
        failed: 0,
    };
    for k in 0..shape.trials {
        // Walk the groups first, so consecutive trials touch different node groups.
        let group = k % shape.groups;
        let index = (k / shape.groups) % shape.gateways_per_group;
        let Some((_, gateway)) = gateways
            .iter()
            .find(|(g, name)| *g == group && *name == gateway_name(group, index))
        else {
            continue;
        };
        let label = active_label(gateway);
        let old = holder(client, gateway).await?;
        let mark = server.requests_recorded();
        let sent = Instant::now();
        set_ready(&nodes, &old, false).await?;
        let status_path = format!("/api/v1/nodes/{old}/status");
        let mut result = None;
        while sent.elapsed() < Duration::from_secs(10) {
            let records = server.requests_since(mark);
            let Some(status) = records
                .iter()
                .find(|r| r.method == "PATCH" && r.path == status_path)
            else {
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            };
            // Label patches on nodes other than the failed one, by node: (Node, CiliumNode).
            let mut patched: BTreeMap<String, (Option<&RequestRecord>, Option<&RequestRecord>)> =
                BTreeMap::new();
            for record in &records {
                if let Some((kind, name)) = classify(record)
                    && name != old
                {
                    assign(patched.entry(name).or_default(), kind, record);
                }
            }
            let mut found = None;
            for (node, pair) in &patched {
                if let (Some(on_node), Some(on_cilium)) = pair
                    && labelled(client, node, &label).await?
                {
                    found = Some((*on_node, *on_cilium));
                    break;
                }
            }
            if let Some((on_node, on_cilium)) = found {
                let last = on_node.arrived.max(on_cilium.arrived);
                let first_label = records
                    .iter()
                    .filter(|r| {
                        r.arrived >= status.arrived
                            && classify(r).is_some_and(|(kind, _)| {
                                matches!(kind, WriteKind::NodeLabels | WriteKind::CiliumNodeLabels)
                            })
                    })
                    .map(|r| r.arrived)
                    .min()
                    .unwrap_or(last);
                let window: Vec<&RequestRecord> = records
                    .iter()
                    .filter(|r| {
                        r.arrived > status.arrived
                            && r.arrived <= last
                            && !is_harness(r)
                            && !(r.method == "GET" && is_single_object(&r.path))
                    })
                    .collect();
                let server_time: Duration = records
                    .iter()
                    .filter(|r| {
                        std::ptr::eq(*r, status)
                            || classify(r).is_some_and(|(kind, _)| {
                                matches!(kind, WriteKind::NodeLabels | WriteKind::CiliumNodeLabels)
                            }) && r.arrived <= last
                    })
                    .map(|r| r.handled)
                    .sum();
                result = Some(Trial {
                    reaction: last.saturating_duration_since(status.arrived),
                    server: server_time,
                    observed: sent.elapsed(),
                    detect: first_label.saturating_duration_since(status.arrived),
                    writes: last.saturating_duration_since(first_label),
                    traffic: traffic(&window),
                });
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        match result {
            Some(trial) => out.trials.push(trial),
            None => out.failed += 1,
        }
        // Recover the node and wait for its member label to come back, so the next trial
        // starts from a quiet controller.
        let mark = server.requests_recorded();
        set_ready(&nodes, &old, true).await?;
        wait_patched(server, mark, &old).await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(out)
}

fn assign<'a>(
    entry: &mut (Option<&'a RequestRecord>, Option<&'a RequestRecord>),
    kind: WriteKind,
    record: &'a RequestRecord,
) {
    match kind {
        WriteKind::NodeLabels => entry.0 = Some(record),
        WriteKind::CiliumNodeLabels => entry.1 = Some(record),
        _ => {}
    }
}
