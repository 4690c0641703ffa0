//! The cost of direct node probing at scale: 500 nodes, each a loopback address
//! (127.0.1.1 …) with a stand-in for Cilium's health endpoint on one port, served by a child
//! process so that only the prober's CPU and memory are measured here. Probes every node with
//! the production defaults (200 ms interval and timeout) for `SECONDS` (default 30) and prints
//! probes/s, CPU time of this process per second, and RSS before and after.
//!
//!   cargo run --release --example probe_cost [-- NODES SECONDS]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use egressc::controller::ProbeTarget;
use egressc::sync::metrics::Metrics;
use egressc::sync::probe::{Endpoints, ProbeConfig, Prober};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PORT: u16 = 14240;

fn address(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        127,
        0,
        1 + (i / 250) as u8,
        1 + (i % 250) as u8,
    ))
}

async fn serve(nodes: usize) {
    for i in 0..nodes {
        let listener = tokio::net::TcpListener::bind((address(i), PORT))
            .await
            .expect("bind");
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = stream.read(&mut buf).await {
                        if n == 0 {
                            return;
                        }
                        let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                        if stream.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
    }
    println!("ready");
    std::future::pending::<()>().await;
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the struct we pass; no other preconditions.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let nodes: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(500);
    if args.get(2).map(String::as_str) == Some("serve") {
        return serve(nodes).await;
    }
    let seconds: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(30);
    let mut child = tokio::process::Command::new(std::env::current_exe().expect("exe"))
        .args([nodes.to_string(), "serve".to_string()])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("server process");
    let mut out = child.stdout.take().expect("stdout");
    let mut ready = [0u8; 6];
    out.read_exact(&mut ready).await.expect("server ready");

    let config = ProbeConfig {
        node_port: PORT,
        node_path: "/hello".into(),
        agent_port: 0,
        interval: Duration::from_millis(200),
        timeout: Duration::from_millis(200),
    };
    let metrics = Arc::new(Metrics::new());
    let rss_before = rss_kib();
    let (prober, mut results) = Prober::spawn(config.clone(), metrics.clone());
    let endpoints: Endpoints = (0..nodes)
        .filter_map(|i| {
            let url = config.url(address(i), ProbeTarget::CiliumHealth)?;
            Some(((format!("node-{i}"), ProbeTarget::CiliumHealth), url))
        })
        .collect();
    prober.set(endpoints);
    let drain = tokio::spawn(async move {
        let mut failures = 0u64;
        while let Some(result) = results.recv().await {
            failures += u64::from(!result.ok);
        }
        failures
    });
    // Warm up (connections opened), then measure.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (cpu0, t0) = (cpu_seconds(), Instant::now());
    let count = |m: &Metrics| {
        m.encode()
            .lines()
            .find(|l| l.starts_with("egressc_node_probe_duration_seconds_count"))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let probes0 = count(&metrics);
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let (cpu, wall) = (cpu_seconds() - cpu0, t0.elapsed().as_secs_f64());
    let probes = count(&metrics) - probes0;
    let text = metrics.encode();
    let failures: f64 = text
        .lines()
        .filter(|l| l.starts_with("egressc_node_probe_failures_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .fold(0.0, |a, b| a + b);
    println!(
        "nodes={nodes} seconds={wall:.1} probes/s={:.0} failures={failures} cpu={:.1}% of one core rss_before={} KiB rss_after={} KiB",
        probes / wall,
        100.0 * cpu / wall,
        rss_before,
        rss_kib()
    );
    drop(prober);
    drain.abort();
}
