//! The data-plane lab: what a pod sees when a gateway fails (docs/arch/datapath-lab.md).
//!
//! Each scenario runs on a fresh lab (tests/support/lab.rs): a pod on a client node sends a
//! UDP packet every 10 ms to an external host through the Cilium datapath stand-in, with the
//! release `egressc sync` (two replicas) and, in VIP mode, `egressc agent` on both gateway
//! nodes, started as `egressc install` / `egressc build` render them, with default flags.
//! Hard assertions in every scenario: no packet reaches the external host from a wrong source,
//! the active label is never on two (Cilium)Nodes, two MACs never answer one ARP probe. The
//! blackout is bounded by [`BLACKOUT_BOUNDS`]. Needs root, `ip` and `nft`; skips otherwise
//! (fails with EGRESSC_REQUIRE_NETNS=1). `scripts/lab-bench.sh` runs the scenarios N times.

mod support;

use std::collections::BTreeMap;
use std::io;
use std::net::Ipv4Addr;
use std::time::Duration;

use support::datapath::{
    Action, CiliumNode, ClusterView, Endpoint, Entry, Policy, gateway_of, plan, ruleset,
};
use support::lab::{Fault, Outcome, run, scenario};

/// **The blackout bound of every scenario**: a guard for `cargo test` (debug binaries on a
/// loaded CI machine), with margin over what the product achieves. The issue targets — power-off
/// ≤ 1.0 s in both modes, cordon and graceful moves ≤ 0.3 s, a dead VIP agent ≤ 1.5 s — are
/// checked by the benchmark (`scripts/lab-bench.sh`, release, 20 trials, p50/p99/max in
/// BENCHMARKS.md "Data-plane lab"), not by a timed test. Debug runs measured here in the
/// comments.
const BLACKOUT_BOUNDS: &[(&str, Duration)] = &[
    // Direct probes (200 ms interval and timeout, 2 failures), then the label moves; 573 ms.
    ("power-off-primary-ip", Duration::from_secs(2)),
    // The same detection, a takeover on evidence, the new holder's probe round, then the
    // label; 710 ms.
    ("power-off-vip", Duration::from_secs(2)),
    // The agent's /readyz stops answering: taken over at once; the new holder claims as soon
    // as the old kernel stops answering (its lifetime); the flow rides the old holder's SNAT
    // meanwhile; 50 ms.
    ("vip-agent-sigkill", Duration::from_millis(1500)),
    // The frozen datapath keeps forwarding; the probe-driven move costs packets; 40 ms.
    ("cilium-agent-killed", Duration::from_secs(1)),
    // A graceful hand-over; 39 ms.
    ("cordon", Duration::from_secs(1)),
    // The standby waits out the leader Lease (5 s, the install default) before it can finish
    // the failover the killed leader started; 4.2 s.
    ("leader-killed-mid-failover", Duration::from_secs(8)),
    // The controller cannot probe a healthy node, so it fails the gateway over to a node it can
    // verify (safe: one label, the VIP handed over by the protocol); 209 ms.
    (
        "controller-partitioned-from-gateway",
        Duration::from_secs(1),
    ),
    // Issue 18: no packet lost.
    ("api-outage-30s-twice-vip", Duration::ZERO),
    ("api-outage-30s-twice-primary-ip", Duration::ZERO),
];

/// Runs the scenario `name` and checks safety, then the blackout bound.
fn check(name: &str) -> io::Result<()> {
    require_netns!();
    if let Some(why) = nft_missing() {
        if std::env::var("EGRESSC_REQUIRE_NETNS").as_deref() == Ok("1") {
            panic!("EGRESSC_REQUIRE_NETNS=1 but the lab cannot run: {why}");
        }
        eprintln!("skipping the lab: {why}");
        return Ok(());
    }
    let outcome = run(scenario(name)?)?;
    eprintln!("{}", outcome.summary());
    judge(&outcome)
}

fn nft_missing() -> Option<String> {
    match std::process::Command::new("nft").arg("--version").output() {
        Ok(o) if o.status.success() => None,
        _ => Some("the `nft` command (nftables) is missing".into()),
    }
}

fn judge(outcome: &Outcome) -> io::Result<()> {
    if let Err(broken) = outcome.check_safety() {
        return Err(io::Error::other(format!("{broken}\n{}", outcome.logs)));
    }
    let name = outcome.scenario.name;
    let bound = BLACKOUT_BOUNDS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, b)| *b)
        .ok_or_else(|| io::Error::other(format!("no blackout bound for {name}")))?;
    let blackout = outcome.verdict.blackout;
    // A zero bound means "no packet lost": the blackout itself also counts scheduling jitter
    // of the sender (a delivery gap of a few ms beyond the 10 ms interval).
    let exceeded = if bound.is_zero() {
        outcome.verdict.lost > 0
    } else {
        blackout > bound
    };
    if exceeded {
        return Err(io::Error::other(format!(
            "{name}: blackout {blackout:?} ({} packets lost) exceeds the bound {bound:?}\n{}\n{}",
            outcome.verdict.lost,
            outcome.summary(),
            outcome.logs
        )));
    }
    if matches!(outcome.scenario.fault, Fault::ApiOutages { .. }) {
        steady_through_the_outage(outcome)?;
    }
    Ok(())
}

/// Issue 18: through an API outage no label is removed or moved, and the VIP keeps
/// answering ARP (probes every 100 ms; a silence of more than [`ARP_SILENCE_BOUND`] means it
/// was gone).
fn steady_through_the_outage(outcome: &Outcome) -> io::Result<()> {
    let mut broken = Vec::new();
    if let Some(sample) = &outcome.label_left {
        broken.push(format!(
            "the label left {}: {sample:?}",
            outcome.active_before
        ));
    }
    if let Some(silence) = outcome.arp_silence
        && silence > ARP_SILENCE_BOUND
    {
        broken.push(format!("no ARP answer for the VIP for {silence:?}"));
    }
    if broken.is_empty() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "{}\n{}\n{}",
        broken.join("\n"),
        outcome.summary(),
        outcome.logs
    )))
}

/// Longest tolerated time without an answer to the external host's ARP probes for the VIP
/// during an API outage (probes go out every 100 ms).
const ARP_SILENCE_BOUND: Duration = Duration::from_millis(500);

#[test]
fn power_off_of_the_active_node_primary_ip() -> io::Result<()> {
    check("power-off-primary-ip")
}

#[test]
fn power_off_of_the_active_node_vip() -> io::Result<()> {
    check("power-off-vip")
}

#[test]
fn vip_agent_sigkill_without_restart() -> io::Result<()> {
    check("vip-agent-sigkill")
}

#[test]
fn cilium_agent_killed_on_the_active_node() -> io::Result<()> {
    check("cilium-agent-killed")
}

#[test]
fn cordon_of_the_active_node() -> io::Result<()> {
    check("cordon")
}

#[test]
fn leader_controller_killed_in_the_middle_of_a_failover() -> io::Result<()> {
    check("leader-killed-mid-failover")
}

#[test]
fn controller_partitioned_from_a_healthy_gateway_node() -> io::Result<()> {
    check("controller-partitioned-from-gateway")
}

/// Issue 18: two 30 s API outages (503 to everything, watches dropped): the VIP holder keeps
/// its VIP (outage hold), nothing is written, no packet is lost, ARP silence ≤ 0.5 s.
#[test]
fn api_outage_of_30s_twice_vip() -> io::Result<()> {
    check("api-outage-30s-twice-vip")
}

/// Issue 18: the same in PrimaryIP mode: the label never leaves the active node.
#[test]
fn api_outage_of_30s_twice_primary_ip() -> io::Result<()> {
    check("api-outage-30s-twice-primary-ip")
}

/// `scripts/lab-bench.sh`: runs `EGRESSC_LAB_SCENARIOS` (comma-separated, default all)
/// `EGRESSC_LAB_TRIALS` times each (default 1) and prints one `LAB …` line per trial.
#[test]
#[ignore = "benchmark: run by scripts/lab-bench.sh"]
fn lab_bench() -> io::Result<()> {
    require_netns!();
    let trials: usize = std::env::var("EGRESSC_LAB_TRIALS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(1);
    let names: Vec<String> = match std::env::var("EGRESSC_LAB_SCENARIOS") {
        Ok(list) if !list.is_empty() => list.split(',').map(str::to_owned).collect(),
        _ => support::lab::SCENARIOS
            .iter()
            .map(|s| s.name.to_owned())
            .collect(),
    };
    for name in &names {
        for trial in 0..trials {
            match run(scenario(name)?) {
                Ok(outcome) => println!("{} trial={trial}", outcome.summary()),
                Err(e) => println!(
                    "LAB scenario={name} trial={trial} error={:?}",
                    e.to_string().lines().next().unwrap_or_default()
                ),
            }
        }
    }
    Ok(())
}

// ---- the stand-in's rules, without namespaces ----------------------------------------------

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

const ACTIVE: &str = "egress-gateway.network.deckhouse.io/active-for-gw";

fn policy(egress_ip: Option<Ipv4Addr>, interface: Option<&str>) -> Policy {
    Policy {
        name: "p".into(),
        selectors: vec![(
            Some(
                k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
                    match_labels: Some(labels(&[("app", "web")])),
                    match_expressions: None,
                },
            ),
            None,
        )],
        destinations: vec!["198.51.100.10/32".parse().unwrap()],
        excluded: vec![],
        node_selector: k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
            match_labels: Some(labels(&[(ACTIVE, "")])),
            match_expressions: None,
        },
        egress_ip,
        interface: interface.map(str::to_owned),
    }
}

fn node(name: &str, active: bool, ip: [u8; 4]) -> CiliumNode {
    CiliumNode {
        name: name.into(),
        labels: if active {
            labels(&[(ACTIVE, "")])
        } else {
            BTreeMap::new()
        },
        internal_ip: Some(Ipv4Addr::from(ip)),
    }
}

fn pod() -> Vec<Endpoint> {
    vec![Endpoint {
        ip: Ipv4Addr::new(203, 0, 113, 10),
        labels: labels(&[("app", "web"), ("io.kubernetes.pod.namespace", "default")]),
        namespace_labels: BTreeMap::new(),
    }]
}

fn view(policy: Policy, nodes: Vec<CiliumNode>) -> ClusterView {
    ClusterView {
        generation: 1,
        policies: vec![policy],
        nodes,
    }
}

fn actions(me: &str, view: &ClusterView, local: &[(String, Ipv4Addr)]) -> Vec<Action> {
    plan(me, view, &pod(), local)
        .into_iter()
        .map(|e| e.action)
        .collect()
}

#[test]
fn the_gateway_is_the_first_matching_cilium_node_by_name() {
    let nodes = vec![
        node("node-b", true, [192, 0, 2, 11]),
        node("node-a", true, [192, 0, 2, 10]),
    ];
    let p = policy(Some(Ipv4Addr::new(198, 51, 100, 100)), None);
    assert_eq!(
        gateway_of(&p, &nodes).map(|n| n.name.as_str()),
        Some("node-a")
    );
    let v = view(p, nodes);
    assert_eq!(
        actions("node-c", &v, &[]),
        vec![Action::Forward(Ipv4Addr::new(192, 0, 2, 10))]
    );
}

#[test]
fn traffic_is_dropped_while_no_node_matches() {
    let v = view(
        policy(Some(Ipv4Addr::new(198, 51, 100, 100)), None),
        vec![node("node-a", false, [192, 0, 2, 10])],
    );
    assert_eq!(actions("node-c", &v, &[]), vec![Action::Drop]);
    assert_eq!(actions("node-a", &v, &[]), vec![Action::Drop]);
}

#[test]
fn the_gateway_snats_to_the_egress_ip_only_when_it_is_on_the_node() {
    let vip = Ipv4Addr::new(198, 51, 100, 100);
    let v = view(
        policy(Some(vip), None),
        vec![node("node-a", true, [192, 0, 2, 10])],
    );
    let without = [("eth0".to_owned(), Ipv4Addr::new(198, 51, 100, 1))];
    assert_eq!(actions("node-a", &v, &without), vec![Action::Drop]);
    let with = [without[0].clone(), ("eth0".to_owned(), vip)];
    assert_eq!(actions("node-a", &v, &with), vec![Action::Snat(vip)]);
}

#[test]
fn the_interface_mode_snats_to_the_first_ipv4_of_the_interface() {
    let v = view(
        policy(None, Some("eth0")),
        vec![node("node-a", true, [192, 0, 2, 10])],
    );
    let local = [
        ("api0".to_owned(), Ipv4Addr::new(192, 0, 2, 10)),
        ("eth0".to_owned(), Ipv4Addr::new(198, 51, 100, 1)),
        ("eth0".to_owned(), Ipv4Addr::new(198, 51, 100, 100)),
    ];
    assert_eq!(
        actions("node-a", &v, &local),
        vec![Action::Snat(Ipv4Addr::new(198, 51, 100, 1))]
    );
    assert_eq!(actions("node-a", &v, &local[..1]), vec![Action::Drop]);
}

#[test]
fn the_ruleset_replaces_the_table_atomically_and_marks_forwarded_traffic() {
    let entry = |action| Entry {
        source: Ipv4Addr::new(203, 0, 113, 10),
        destination: "198.51.100.10/32".parse().unwrap(),
        excluded: vec!["198.51.100.10/32".parse().unwrap()],
        action,
    };
    let gateways = [Ipv4Addr::new(192, 0, 2, 10), Ipv4Addr::new(192, 0, 2, 11)];
    let text = ruleset(
        &[
            entry(Action::Forward(gateways[1])),
            entry(Action::Snat(Ipv4Addr::new(198, 51, 100, 100))),
            entry(Action::Drop),
        ],
        &gateways,
    );
    assert!(text.starts_with("table ip cilium_egw_lab {}\ndelete table ip cilium_egw_lab\n"));
    assert!(text.contains("meta mark set 0x6c01 notrack"), "{text}");
    assert!(text.contains("snat ip to 198.51.100.100"), "{text}");
    assert!(text.contains("198.51.100.10/32 drop"), "{text}");
    assert!(text.contains("198.51.100.10/32 return"), "{text}");
}
