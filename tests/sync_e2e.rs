//! `egressc sync` end to end: the real binary against kube-testserver. Initial election
//! (labels on Node and CiliumNode), the CEGP equal to `egressc build`'s, status and Events;
//! failover on NotReady and on a heartbeat Lease that stops (power-off); a restart that moves
//! nothing; leader handover after SIGKILL; a CEGP egressc does not own is never written.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use serde_json::Value;
use support::cluster::{Cluster, NAMESPACE, cegps, eventually, gateways, policies, poll};

/// A running `egressc sync`; killed (SIGKILL) on drop.
struct Sync {
    child: Child,
    log: std::path::PathBuf,
}

impl Sync {
    fn start(cluster: &Cluster, identity: &str, leader_elect: bool) -> Sync {
        Sync::start_with(cluster, identity, leader_elect, &[])
    }

    fn start_with(cluster: &Cluster, identity: &str, leader_elect: bool, extra: &[&str]) -> Sync {
        let log = cluster.dir.path().join(format!("{identity}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_egressc"))
            .args([
                "sync",
                "--namespace",
                NAMESPACE,
                "--metrics-addr",
                "127.0.0.1:0",
            ])
            .args(["--node-lease-grace", "3s", "--settle", "1s"])
            .args([
                "--leader-elect",
                if leader_elect { "true" } else { "false" },
            ])
            .args(["--identity", identity])
            // 3 s unless the test sets its own.
            .args(if extra.contains(&"--leader-lease-duration") {
                &[][..]
            } else {
                &["--leader-lease-duration", "3s"][..]
            })
            .args(["--cilium-version", "1.19"])
            .args(extra)
            .env("KUBECONFIG", cluster.dir.path().join("kubeconfig"))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("egressc sync starts");
        Sync { child, log }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`) and waits at most `bound` for the exit.
    fn signal_and_wait(
        &mut self,
        signal: libc::c_int,
        bound: std::time::Duration,
    ) -> Option<(std::process::ExitStatus, std::time::Duration)> {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid");
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "signal sent");
        let sent = std::time::Instant::now();
        while sent.elapsed() < bound {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some((status, sent.elapsed()));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        None
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Sync {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The CEGP `egressc build` renders for the same sources.
fn built_cegp(dir: &Path) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_egressc"))
        .args(["build", "--cilium-version", "1.19"])
        .arg(dir.join("sources.yaml"))
        .output()
        .expect("egressc build runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs: Vec<Value> =
        serde_saphyr::from_str_multiple(&String::from_utf8_lossy(&out.stdout)).expect("yaml");
    docs.into_iter()
        .find(|d| d["kind"] == "CiliumEgressGatewayPolicy")
        .expect("build renders a CEGP")
}

async fn node_version(cluster: &Cluster, node: &str) -> String {
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    let n = nodes.get(node).await.expect("node");
    n.metadata.resource_version.unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elects_fails_over_and_restarts_without_moving() {
    let cluster = Cluster::start(&["n1", "n2", "n3"]).await;
    let mut sync = Sync::start(&cluster, "solo", false);

    // Initial election: one node carries the label on Node and CiliumNode.
    let first = cluster.wait_active(&[]).await;

    // The CEGP equals what `egressc build` renders, plus the owner reference.
    let built = built_cegp(cluster.dir.path());
    let applied: Value = poll("the CEGP is created", || async {
        let cegp = cegps(&cluster.client).get_opt("p").await.ok().flatten()?;
        serde_json::to_value(cegp).ok()
    })
    .await;
    assert_eq!(applied["spec"], built["spec"], "log:\n{}", sync.log());
    for (key, value) in Cluster::labels_of(&built) {
        assert_eq!(
            Cluster::labels_of(&applied).get(&key),
            Some(&value),
            "label {key}"
        );
    }
    assert_eq!(
        applied["metadata"]["ownerReferences"][0]["kind"],
        "EgressGatewayPolicy"
    );

    // Status and an Event.
    eventually("gateway status names the active node", || async {
        let gw = gateways(&cluster.client).get("gw").await.expect("gateway");
        let gw = serde_json::to_value(gw).unwrap_or_default();
        gw["status"]["activeNodeName"] == first.as_str()
            && gw["status"]["readyNodes"] == 3
            && gw["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
    })
    .await;
    eventually("an ActiveNodeElected Event", || async {
        cluster
            .events()
            .await
            .iter()
            .any(|e| e["reason"] == "ActiveNodeElected")
    })
    .await;

    // Failover after the active node goes NotReady.
    let not_ready = std::time::Instant::now();
    cluster.set_ready(&first, false).await;
    let second = cluster.wait_active(&[first.as_str()]).await;
    eprintln!("NotReady -> label on both kinds: {:?}", not_ready.elapsed());
    eventually("a Failover Event", || async {
        cluster
            .events()
            .await
            .iter()
            .any(|e| e["reason"] == "Failover")
    })
    .await;

    // Failover after the active node's heartbeat stops (Node stays Ready): grace is 3 s.
    let powered_off = std::time::Instant::now();
    cluster.power_off(&second);
    let third = cluster
        .wait_active(&[first.as_str(), second.as_str()])
        .await;
    let took = powered_off.elapsed();
    eprintln!("heartbeat stopped (grace 3 s) -> label on both kinds: {took:?}");
    assert!(
        took.as_secs_f64() < 3.0 + 5.0,
        "power-off failover took {took:?}"
    );

    // Restart: the new process adopts the label in place and moves nothing.
    let before = node_version(&cluster, &third).await;
    sync.kill();
    let restarted = Sync::start(&cluster, "solo-2", false);
    eventually("the restarted process is synced", || async {
        restarted.log().contains("synced=true")
    })
    .await;
    // Give it several reconcile rounds (heartbeats arrive every 500 ms) to prove a negative.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let (nodes, cilium) = cluster.active().await;
    assert_eq!(nodes, vec![third.clone()], "log:\n{}", restarted.log());
    assert_eq!(cilium, vec![third.clone()]);
    assert_eq!(
        node_version(&cluster, &third).await,
        before,
        "the active Node was rewritten"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_after_the_leader_is_killed() {
    let cluster = Cluster::start(&["n1", "n2"]).await;
    let a = Sync::start(&cluster, "replica-a", true);
    let b = Sync::start(&cluster, "replica-b", true);
    let first = cluster.wait_active(&[]).await;

    let leases: Api<Lease> = Api::namespaced(cluster.client.clone(), NAMESPACE);
    let holder = leases
        .get("egressc-sync")
        .await
        .expect("leader lease")
        .spec
        .and_then(|s| s.holder_identity)
        .unwrap_or_default();
    let (mut leader, standby) = if holder == "replica-a" {
        (a, b)
    } else {
        (b, a)
    };
    leader.kill();

    let killed = std::time::Instant::now();
    cluster.set_ready(&first, false).await;
    let second = cluster.wait_active(&[first.as_str()]).await;
    eprintln!(
        "leader SIGKILL (lease 3 s) -> failover by standby: {:?}",
        killed.elapsed()
    );
    assert_ne!(first, second, "standby log:\n{}", standby.log());
    let holder = leases
        .get("egressc-sync")
        .await
        .expect("leader lease")
        .spec
        .and_then(|s| s.holder_identity)
        .unwrap_or_default();
    assert_ne!(holder, leader_identity(&leader));
}

async fn leader_holder(cluster: &Cluster) -> String {
    let leases: Api<Lease> = Api::namespaced(cluster.client.clone(), NAMESPACE);
    leases
        .get("egressc-sync")
        .await
        .expect("leader lease")
        .spec
        .and_then(|s| s.holder_identity)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_hands_the_leader_lease_back_and_exits_zero() {
    let cluster = Cluster::start(&["n1", "n2"]).await;
    // A long Lease: the holder renews 6 s before it runs out, so at any moment the standby
    // would otherwise wait at least 6 s for the old term to end.
    let lease = ["--leader-lease-duration", "15s"];
    let a = Sync::start_with(&cluster, "term-a", true, &lease);
    let b = Sync::start_with(&cluster, "term-b", true, &lease);
    cluster.wait_active(&[]).await;
    let holder = leader_holder(&cluster).await;
    let (mut leader, standby) = if holder == "term-a" { (a, b) } else { (b, a) };
    assert_eq!(leader_identity(&leader), holder);
    // A hang guard, not a measurement: the process itself allows 1 s for writes in flight
    // and 1 s for the release.
    let (status, took) = leader
        .signal_and_wait(libc::SIGTERM, std::time::Duration::from_secs(10))
        .unwrap_or_else(|| panic!("still running after SIGTERM; log:\n{}", leader.log()));
    eprintln!("SIGTERM -> exit: {took:?}");
    assert!(status.success(), "{status:?}; log:\n{}", leader.log());
    assert!(
        leader.log().contains("leader Lease handed back"),
        "{}",
        leader.log()
    );
    // Released, not left to expire: the holder is cleared (or already the standby).
    let after = leader_holder(&cluster).await;
    assert!(
        after.is_empty() || after == leader_identity(&standby),
        "holder after SIGTERM: {after:?}"
    );
    // The standby notices the release and leads well before the old term (≥ 5 s left)
    // would have run out.
    let exited = std::time::Instant::now();
    let standby_identity = leader_identity(&standby);
    while leader_holder(&cluster).await != standby_identity {
        assert!(
            exited.elapsed() < std::time::Duration::from_secs(3),
            "the standby did not take the released Lease; its log:\n{}",
            standby.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    eprintln!(
        "leader exit -> standby holds the Lease: {:?}",
        exited.elapsed()
    );
    assert!(
        standby
            .log()
            .contains("leader Lease released by its holder"),
        "{}",
        standby.log()
    );
    // SIGINT works the same for the standby (nothing to release).
    let mut standby = standby;
    let (status, _) = standby
        .signal_and_wait(libc::SIGINT, std::time::Duration::from_secs(10))
        .expect("standby exits on SIGINT");
    assert!(status.success());
}

/// A stand-in for Cilium's health endpoint on one node: answers `GET` with 200 and keeps
/// the connection, or — "powered off" — accepts and never answers (packets dropped).
struct HealthEndpoint {
    alive: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl HealthEndpoint {
    async fn serve(listener: tokio::net::TcpListener) -> HealthEndpoint {
        use std::sync::atomic::Ordering;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let alive = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let flag = alive.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let flag = flag.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    loop {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                        if !flag.load(Ordering::Relaxed) {
                            // Powered off: hold the connection, answer nothing.
                            std::future::pending::<()>().await;
                        }
                        let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if stream.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        HealthEndpoint { alive }
    }

    fn power_off(&self) {
        self.alive
            .store(false, std::sync::atomic::Ordering::Relaxed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_failing_its_probes_is_failed_over_at_once() {
    let cluster = Cluster::start(&["n1", "n2"]).await;
    // One loopback address per node, the same port on each (as Cilium's 4240).
    let first = tokio::net::TcpListener::bind("127.0.0.11:0")
        .await
        .expect("bind");
    let port = first.local_addr().expect("addr").port();
    let second = tokio::net::TcpListener::bind(("127.0.0.12", port))
        .await
        .expect("bind the same port on the second address");
    let endpoints = [
        ("n1", HealthEndpoint::serve(first).await),
        ("n2", HealthEndpoint::serve(second).await),
    ];
    cluster.set_internal_ip("n1", "127.0.0.11").await;
    cluster.set_internal_ip("n2", "127.0.0.12").await;
    let port = port.to_string();
    let sync = Sync::start_with(
        &cluster,
        "prober",
        false,
        &[
            "--node-probe-port",
            &port,
            "--node-probe-interval",
            "100ms",
            "--node-probe-timeout",
            "100ms",
            "--node-probe-failures",
            "2",
            "--agent-probe-port",
            "0",
        ],
    );
    let active = cluster.wait_active(&[]).await;
    // Let a few probes succeed first.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (_, endpoint) = endpoints
        .iter()
        .find(|(node, _)| *node == active)
        .expect("endpoint");
    // Its heartbeat goes on and the Node stays Ready: only the probe can tell.
    let off = std::time::Instant::now();
    endpoint.power_off();
    let other = cluster.wait_active(&[active.as_str()]).await;
    eprintln!(
        "probe black-holed (100 ms x 2) -> label on both kinds: {:?}",
        off.elapsed()
    );
    assert_ne!(other, active, "log:\n{}", sync.log());
    eventually("a Failover Event naming NodeProbeFailed", || async {
        cluster.events().await.iter().any(|e| {
            e["reason"] == "Failover"
                && e["note"]
                    .as_str()
                    .is_some_and(|n| n.contains("NodeProbeFailed"))
        })
    })
    .await;
}

fn leader_identity(sync: &Sync) -> String {
    sync.log
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A replica (re)started while the API answers 503 to everything waits the outage out and
/// then leads; it does not exit (found by the soak once kube's built-in retries were turned
/// off: joining the election failed at the first 503 and the process exited 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_started_during_an_api_outage_waits_and_then_leads() {
    let cluster = Cluster::start(&["n1", "n2"]).await;
    cluster
        .server
        .faults()
        .outage(std::time::Duration::from_secs(3));
    let mut sync = Sync::start(&cluster, "outage-a", true);
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert!(
        matches!(sync.child.try_wait(), Ok(None)),
        "exited during the outage; log:\n{}",
        sync.log()
    );
    cluster.wait_active(&[]).await;
    assert_eq!(leader_holder(&cluster).await, "outage-a");
    sync.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cegp_egressc_does_not_own_is_reported_not_taken_over() {
    let cluster = Cluster::start(&["n1", "n2"]).await;
    // Someone else's CEGP with the name of policy `p` (no managed-by label, an egressIP).
    let foreign: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumEgressGatewayPolicy",
        "metadata": {"name": "p", "labels": {"team": "platform"}},
        "spec": {
            "selectors": [{"podSelector": {"matchLabels": {"app": "legacy"}}}],
            "destinationCIDRs": ["203.0.113.0/24"],
            "egressGateway": {
                "nodeSelector": {"matchLabels": {"legacy": "gw"}},
                "egressIP": "192.0.2.99"
            }
        }
    }))
    .expect("object");
    let created = cegps(&cluster.client)
        .create(&PostParams::default(), &foreign)
        .await
        .expect("foreign CEGP");
    let version = created.metadata.resource_version.clone();

    let sync = Sync::start(&cluster, "solo", false);
    cluster.wait_active(&[]).await;
    eventually(
        "the policy's Ready condition names the conflict",
        || async {
            let policy = policies(&cluster.client).get("p").await.expect("policy");
            let policy = serde_json::to_value(policy).unwrap_or_default();
            policy["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter().any(|c| {
                    c["type"] == "Ready"
                        && c["status"] == "False"
                        && c["reason"] == "CiliumPolicyConflict"
                })
            })
        },
    )
    .await;
    eventually("a CiliumPolicyConflict Event", || async {
        cluster
            .events()
            .await
            .iter()
            .any(|e| e["reason"] == "CiliumPolicyConflict" && e["regarding"]["name"] == "p")
    })
    .await;
    // Several reconcile rounds later the object is still exactly the other manager's.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let now = cegps(&cluster.client).get("p").await.expect("still there");
    assert_eq!(
        now.metadata.resource_version,
        version,
        "log:\n{}",
        sync.log()
    );
    let now = serde_json::to_value(now).unwrap_or_default();
    assert_eq!(now["spec"]["egressGateway"]["egressIP"], "192.0.2.99");
    assert!(now["spec"]["egressGateway"].get("interface").is_none());

    // Once the other object is gone, egressc creates its own and the conflict clears.
    cegps(&cluster.client)
        .delete("p", &DeleteParams::default())
        .await
        .expect("delete the foreign CEGP");
    let built = built_cegp(cluster.dir.path());
    eventually("egressc's CEGP replaces it", || async {
        let Ok(Some(cegp)) = cegps(&cluster.client).get_opt("p").await else {
            return false;
        };
        let cegp = serde_json::to_value(cegp).unwrap_or_default();
        cegp["spec"] == built["spec"]
            && cegp["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "egressc"
    })
    .await;
    eventually("the policy is Ready again", || async {
        let policy = policies(&cluster.client).get("p").await.expect("policy");
        let policy = serde_json::to_value(policy).unwrap_or_default();
        policy["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
    })
    .await;
}
