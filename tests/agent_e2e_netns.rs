//! End to end: the real `egressc agent` in two node namespaces on one LAN, a test API server
//! reached over a separate link, the test playing the controller's side of
//! docs/lease-protocol.md, and an observer recording every ARP/NA claim for the VIP.
//! Asserted in every case: the VIP moves to the right node and two MACs never claim it within
//! one probe window. Needs root and `ip`; skips otherwise (fails with EGRESSC_REQUIRE_NETNS=1).
//! `failover_bench` (ignored) measures SIGKILL → new MAC over 20 trials.

mod support;

use std::io;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use support::agent::{vip_addrs, wait_vanished};
use support::agents::AgentProcess;
use support::apinet::ApiNet;
use support::netns::{LAN_IF, Lan};
use support::observer::{Observer, Sighting, ownership_runs, two_answers_within};
use support::vipctl::{VipControl, install};

/// Two owners answering one probe (100 ms apart) would answer within this of each other.
const SAME_PROBE: Duration = Duration::from_millis(10);
const GATEWAY: &str = "gw";

struct Cluster {
    lan: Lan,
    api: ApiNet,
    ctl: VipControl,
    observer: Observer,
    a: AgentProcess,
    b: AgentProcess,
    vip: IpAddr,
    _dir: tempfile::TempDir,
}

impl Cluster {
    fn start(vip: IpAddr) -> io::Result<Cluster> {
        let lan = Lan::new()?;
        let api = ApiNet::new(&[&lan.a, &lan.b])?;
        let dir = tempfile::tempdir()?;
        let kubeconfig = dir.path().join("kubeconfig");
        api.write_node_kubeconfig(&kubeconfig)?;
        let client = api.client()?;
        let ctl = api
            .run(async move { install(client, GATEWAY, vip, &[LAN_IF]).await })?
            .map_err(io::Error::other)?;
        let observer = Observer::start(&lan.observer, vip)?;
        observer.set_probing(true);
        let a = AgentProcess::start(&lan.a.ns, "node-a", &kubeconfig, dir.path())?;
        let b = AgentProcess::start(&lan.b.ns, "node-b", &kubeconfig, dir.path())?;
        Ok(Cluster {
            lan,
            api,
            ctl,
            observer,
            a,
            b,
            vip,
            _dir: dir,
        })
    }

    fn grant(&self, node: &'static str, takeover: bool) -> io::Result<()> {
        let ctl = self.ctl.clone();
        self.api
            .run(async move { ctl.grant(node, takeover).await })?
            .map_err(io::Error::other)
    }

    fn wait_ready(&self, node: &'static str, timeout: Duration) -> io::Result<()> {
        let ctl = self.ctl.clone();
        match self
            .api
            .run(async move { ctl.wait_ready(node, timeout).await })?
        {
            Some(_) => Ok(()),
            None => Err(self.failure(&format!("{node} never became ready"))),
        }
    }

    /// Starts the test controller's liveness watch: it grants `to` with a takeover once the
    /// holder has not been seen to change for `D`. Started before the holder is lost, as a
    /// real controller watches all along.
    fn watch_takeover(&self, to: &'static str) -> tokio::task::JoinHandle<Option<Instant>> {
        let ctl = self.ctl.clone();
        self.api
            .spawn(async move { ctl.take_over_when_dead(to, Duration::from_secs(15)).await })
    }

    /// Waits for the observer to see `mac` claim the VIP after `since`.
    fn seen(&self, mac: egressc::agent::frames::MacAddr, since: Instant) -> io::Result<Sighting> {
        self.observer
            .wait_for(mac, since, Duration::from_secs(10))
            .ok_or_else(|| self.failure(&format!("the observer never saw {mac}")))
    }

    /// Never two owners at once: no two MACs answer the same probe, and every MAC's claims
    /// form one contiguous run (two live owners would interleave across the 100 ms probes).
    fn no_overlap(&self) -> io::Result<()> {
        let sightings = self.observer.sightings();
        if let Some((x, y)) = two_answers_within(&sightings, SAME_PROBE) {
            return Err(self.failure(&format!("two owners: {x:?} and {y:?}")));
        }
        let runs = ownership_runs(&sightings);
        let macs: Vec<_> = runs.iter().map(|(mac, _, _)| *mac).collect();
        let mut distinct = macs.clone();
        distinct.sort_by_key(|m| m.0);
        distinct.dedup();
        if distinct.len() != macs.len() {
            return Err(self.failure(&format!("owners interleave: {runs:?}")));
        }
        Ok(())
    }

    fn failure(&self, what: &str) -> io::Error {
        io::Error::other(format!(
            "{what}\n--- agent A ---\n{}\n--- agent B ---\n{}",
            self.a.log_text(),
            self.b.log_text()
        ))
    }

    /// Grants A and waits until the observer resolves the VIP to A's MAC.
    fn a_holds(&self) -> io::Result<Instant> {
        let t0 = Instant::now();
        self.grant("node-a", false)?;
        self.wait_ready("node-a", Duration::from_secs(10))?;
        self.seen(self.lan.a.mac, t0)?;
        Ok(t0)
    }

    /// After A is gone (killed, hung or cut): its VIP leaves within valid_lft (+ kernel
    /// slack), the test controller takes over for B, the observer sees B; returns the time from
    /// `lost` to B's first claim.
    fn b_takes_over(
        &self,
        lost: Instant,
        takeover: tokio::task::JoinHandle<Option<Instant>>,
    ) -> io::Result<Duration> {
        let gone = wait_vanished(&self.lan.a.ns, self.vip, Duration::from_secs(4))?
            .ok_or_else(|| self.failure("the VIP stayed on A"))?;
        let after = gone.duration_since(lost);
        assert!(
            after <= Duration::from_millis(2600),
            "VIP left A {after:?} after the loss"
        );
        let takeover = self
            .api
            .join(takeover)?
            .ok_or_else(|| self.failure("the holder never looked dead"))?;
        assert!(takeover >= gone, "took over before A's VIP was gone");
        let first_b = self.seen(self.lan.b.mac, lost)?;
        self.wait_ready("node-b", Duration::from_secs(5))?;
        self.no_overlap()?;
        if std::env::var_os("EGRESSC_PHASES").is_some() {
            eprintln!(
                "phases after loss: A's VIP gone {:?}, takeover {:?}, B claims {:?}",
                gone.duration_since(lost),
                takeover.duration_since(lost),
                first_b.at.duration_since(lost)
            );
        }
        Ok(first_b.at.duration_since(lost))
    }
}

fn kill_case(vip: IpAddr) -> io::Result<Duration> {
    let cluster = Cluster::start(vip)?;
    cluster.a_holds()?;
    let takeover = cluster.watch_takeover("node-b");
    let killed = Instant::now();
    cluster.a.signal(libc::SIGKILL)?;
    let failover = cluster.b_takes_over(killed, takeover)?;
    let a_claims_after: Vec<_> = cluster
        .observer
        .sightings()
        .into_iter()
        .filter(|s| s.mac == cluster.lan.a.mac && s.at > killed + Duration::from_secs(3))
        .collect();
    assert!(
        a_claims_after.is_empty(),
        "A claimed after it died: {a_claims_after:?}"
    );
    Ok(failover)
}

#[test]
fn sigkill_of_the_holder_moves_the_vip_after_the_lease_expires() -> io::Result<()> {
    require_netns!();
    let failover = kill_case("198.51.100.100".parse().map_err(io::Error::other)?)?;
    assert!(
        failover < Duration::from_secs(5),
        "failover took {failover:?}"
    );
    Ok(())
}

#[test]
fn ipv6_sigkill_of_the_holder_moves_the_vip() -> io::Result<()> {
    require_netns!();
    let failover = kill_case("2001:db8::100".parse().map_err(io::Error::other)?)?;
    assert!(
        failover < Duration::from_secs(5),
        "failover took {failover:?}"
    );
    Ok(())
}

#[test]
fn a_hung_holder_loses_the_vip_by_itself_and_steps_down_when_it_wakes() -> io::Result<()> {
    require_netns!();
    let cluster = Cluster::start("198.51.100.100".parse().map_err(io::Error::other)?)?;
    cluster.a_holds()?;
    let takeover = cluster.watch_takeover("node-b");
    let stopped = Instant::now();
    cluster.a.signal(libc::SIGSTOP)?;
    cluster.b_takes_over(stopped, takeover)?;
    let woke = Instant::now();
    cluster.a.signal(libc::SIGCONT)?;
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        vip_addrs(&cluster.lan.a.ns, cluster.vip)?.is_empty(),
        "A re-added the VIP"
    );
    let ctl = cluster.ctl.clone();
    let lease = cluster
        .api
        .run(async move { ctl.read().await })?
        .map_err(io::Error::other)?;
    assert_eq!(lease.view.holder.as_deref(), Some("node-b"));
    let late: Vec<_> = cluster
        .observer
        .sightings()
        .into_iter()
        .filter(|s| s.mac == cluster.lan.a.mac && s.at > woke)
        .collect();
    assert!(late.is_empty(), "A claimed the VIP after waking: {late:?}");
    cluster.no_overlap()
}

#[test]
fn a_holder_cut_from_the_api_drops_the_vip_while_its_lan_stays_up() -> io::Result<()> {
    require_netns!();
    let cluster = Cluster::start("198.51.100.100".parse().map_err(io::Error::other)?)?;
    cluster.a_holds()?;
    let takeover = cluster.watch_takeover("node-b");
    let cut = Instant::now();
    cluster.api.cut(&cluster.lan.a)?;
    cluster.b_takes_over(cut, takeover)?;
    // A's agent is alive and its LAN link up: it must still not answer for the VIP.
    std::thread::sleep(Duration::from_secs(1));
    assert!(vip_addrs(&cluster.lan.a.ns, cluster.vip)?.is_empty());
    cluster.no_overlap()
}

#[test]
fn a_graceful_move_needs_no_expiry_and_never_overlaps() -> io::Result<()> {
    require_netns!();
    let cluster = Cluster::start("198.51.100.100".parse().map_err(io::Error::other)?)?;
    cluster.a_holds()?;
    let moved = Instant::now();
    let ctl = cluster.ctl.clone();
    let released = cluster.api.run(async move {
        ctl.withdraw().await?;
        let free = ctl
            .wait(Duration::from_secs(5), |l| l.view.holder.is_none())
            .await;
        if free.is_some() {
            ctl.grant("node-b", false).await?;
        }
        Ok::<bool, kube::Error>(free.is_some())
    })?;
    assert!(released.map_err(io::Error::other)?, "A never released");
    let first_b = cluster.seen(cluster.lan.b.mac, moved)?;
    let took = first_b.at.duration_since(moved);
    assert!(took < Duration::from_secs(2), "graceful move took {took:?}");
    assert!(vip_addrs(&cluster.lan.a.ns, cluster.vip)?.is_empty());
    cluster.wait_ready("node-b", Duration::from_secs(5))?;
    cluster.no_overlap()
}

#[test]
fn sigterm_removes_the_vip_releases_the_lease_and_exits_zero() -> io::Result<()> {
    require_netns!();
    let mut cluster = Cluster::start("198.51.100.100".parse().map_err(io::Error::other)?)?;
    cluster.a_holds()?;
    cluster.a.signal(libc::SIGTERM)?;
    let status = cluster.a.wait_exit(Duration::from_secs(5))?;
    assert!(
        status.is_some_and(|s| s.success()),
        "exit: {status:?}\n{}",
        cluster.a.log_text()
    );
    assert!(vip_addrs(&cluster.lan.a.ns, cluster.vip)?.is_empty());
    let ctl = cluster.ctl.clone();
    let lease = cluster
        .api
        .run(async move { ctl.read().await })?
        .map_err(io::Error::other)?;
    assert_eq!((lease.view.holder, lease.view.ready), (None, None));
    Ok(())
}

/// `cargo test --test agent_e2e_netns -- --ignored --nocapture failover_bench`
#[test]
#[ignore = "benchmark: 20 SIGKILL failovers, about two minutes"]
fn failover_bench() -> io::Result<()> {
    require_netns!();
    let trials: usize = std::env::var("EGRESSC_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let mut samples = Vec::new();
    for _ in 0..trials {
        samples.push(kill_case(
            "198.51.100.100".parse().map_err(io::Error::other)?,
        )?);
    }
    samples.sort();
    let pick =
        |q: f64| samples[((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1];
    eprintln!(
        "failover SIGKILL -> new MAC over {} trials: min {:?} p50 {:?} p99 {:?} max {:?}; overlaps: 0",
        samples.len(),
        samples[0],
        pick(0.5),
        pick(0.99),
        samples[samples.len() - 1]
    );
    Ok(())
}
