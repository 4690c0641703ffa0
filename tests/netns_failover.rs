//! VIP failover between two nodes on one LAN, watched from a third host: node A holds the VIP
//! while refreshed, the kernel deletes it once refreshes stop, node B takes it and announces,
//! and the observer's neighbour cache and its wire recording show one owner at a time.
//! Needs root and `ip`; skips otherwise (fails instead with EGRESSC_REQUIRE_NETNS=1).

mod support;

use std::collections::BTreeSet;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use egressc::agent::announce::BurstSchedule;
use egressc::agent::plan::{Lifetimes, Op, Plan};
use support::agent::{announce_in, held, reconcile, vip_addrs, wait_vanished};
use support::netns::{Host, Lan};
use support::observer::{Claim, Observer, ownership_runs, two_answers_within, two_owners_within};

/// A short burst so the test stays quick: rounds at 0, 200 and 400 ms.
const BURST: BurstSchedule = BurstSchedule {
    interval: Duration::from_millis(200),
    duration: Duration::from_millis(500),
};

/// Two probe intervals: no two MACs may claim the VIP closer together than this.
const PROBE_WINDOW: Duration = Duration::from_millis(200);

/// Makes the observer's kernel resolve `vip` (one UDP datagram to the discard port).
fn resolve_from(host: &Host, vip: IpAddr) -> io::Result<()> {
    host.ns.run(|| -> io::Result<()> {
        let bind: SocketAddr = match vip {
            IpAddr::V4(_) => (host.ip4, 0).into(),
            IpAddr::V6(_) => (host.ip6, 0).into(),
        };
        UdpSocket::bind(bind)?.send_to(b"who", (vip, 9))?;
        Ok(())
    })?
}

/// Polls the observer's neighbour cache until it holds `mac` for `vip`.
fn wait_neighbour(host: &Host, vip: IpAddr, mac: &str, timeout: Duration) -> io::Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        if host.neighbour_mac(&vip.to_string())?.as_deref() == Some(mac) {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn without_announce(plan: &Plan) -> bool {
    plan.ops.iter().all(|o| !matches!(o, Op::Announce { .. }))
}

fn failover(vip: IpAddr) -> io::Result<()> {
    let lan = Lan::new()?;
    let (a, b, obs) = (&lan.a, &lan.b, &lan.observer);
    let (mac_a, mac_b) = (a.mac.to_string(), b.mac.to_string());
    let want = [held(vip, &[])];
    let known: BTreeSet<IpAddr> = [vip].into_iter().collect();
    let lifetimes = Lifetimes::default();
    let observer = Observer::start(obs, vip)?;
    observer.set_probing(true);

    // A takes the VIP; the observer's kernel resolves it to A and the prober sees A answer.
    let t0 = Instant::now();
    reconcile(
        &a.ns,
        &want,
        &known,
        lifetimes,
        Some(BurstSchedule {
            interval: Duration::ZERO,
            ..BURST
        }),
    )?;
    resolve_from(obs, vip)?;
    assert!(
        observer
            .wait_for(a.mac, t0, Duration::from_secs(2))
            .is_some(),
        "A never answered"
    );
    assert!(
        wait_neighbour(obs, vip, &mac_a, Duration::from_secs(2))?,
        "cache never learned A"
    );

    // A's agent refreshes for 3 s (longer than the lifetime), then hangs: no more refreshes.
    for _ in 0..3 {
        std::thread::sleep(Duration::from_secs(1));
        reconcile(&a.ns, &want, &known, lifetimes, None)?;
    }
    let last_refresh = Instant::now();
    let Some(gone) = wait_vanished(&a.ns, vip, Duration::from_secs(5))? else {
        panic!("{vip} still on A 5 s after the last refresh");
    };
    let expiry = gone.duration_since(last_refresh);
    eprintln!("{vip}: kernel removed it from A {expiry:?} after the last refresh");
    assert!(expiry <= Duration::from_secs(3), "{expiry:?}");

    // The prober keeps asking for 500 ms: A must have stopped answering (100 ms grace for
    // answers already in flight).
    std::thread::sleep(Duration::from_millis(500));
    observer.set_probing(false);
    let late: Vec<_> = observer
        .sightings()
        .into_iter()
        .filter(|s| s.mac == a.mac && s.at > gone + Duration::from_millis(100))
        .collect();
    assert!(
        late.is_empty(),
        "A answered after its VIP expired: {late:?}"
    );
    std::thread::sleep(Duration::from_millis(200));

    // B takes the VIP. Adding the address alone does not move the observer's cache ...
    let plan_b = reconcile(&b.ns, &want, &known, lifetimes, None)?;
    assert!(
        !without_announce(&plan_b),
        "B's plan must announce: {plan_b:?}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        obs.neighbour_mac(&vip.to_string())?.as_deref(),
        Some(mac_a.as_str())
    );

    // ... the announcement does, with no traffic from the observer.
    let announced = Instant::now();
    let rounds = announce_in(&b.ns, &plan_b, BURST)?;
    assert_eq!(rounds, 3);
    assert!(
        wait_neighbour(obs, vip, &mac_b, Duration::from_millis(500))?,
        "cache still not B"
    );
    let claims_b: Vec<Claim> = observer
        .sightings()
        .into_iter()
        .filter(|s| s.mac == b.mac && s.at >= announced)
        .map(|s| s.claim)
        .collect();
    match vip {
        IpAddr::V4(_) => {
            assert!(
                claims_b.contains(&Claim::GratuitousArp { reply: false }),
                "{claims_b:?}"
            );
            assert!(
                claims_b.contains(&Claim::GratuitousArp { reply: true }),
                "{claims_b:?}"
            );
        }
        IpAddr::V6(_) => assert!(
            claims_b.contains(&Claim::NeighborAdvert {
                solicited: false,
                override_flag: true
            }),
            "{claims_b:?}"
        ),
    }

    // B keeps it (refreshed) and answers probes.
    observer.set_probing(true);
    let probing_again = Instant::now();
    reconcile(&b.ns, &want, &known, lifetimes, None)?;
    assert!(
        observer
            .wait_for(b.mac, probing_again, Duration::from_secs(1))
            .is_some()
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(vip_addrs(&b.ns, vip)?.len(), 1);
    let sightings = observer.stop()?;

    // One owner at a time on the wire: all of A's claims, then all of B's.
    let runs = ownership_runs(&sightings);
    let owners: Vec<String> = runs.iter().map(|(m, _, _)| m.to_string()).collect();
    assert_eq!(owners, vec![mac_a, mac_b], "claims interleaved: {runs:?}");
    let overlap = two_owners_within(&sightings, PROBE_WINDOW);
    assert!(
        overlap.is_none(),
        "two owners within {PROBE_WINDOW:?}: {overlap:?}"
    );
    let gap = runs[1].1.duration_since(runs[0].2);
    eprintln!(
        "{vip}: {} claims; last A claim to first B claim: {gap:?}; total {:?}",
        sightings.len(),
        t0.elapsed()
    );
    Ok(())
}

#[test]
fn ipv4_vip_fails_over_with_gratuitous_arp_and_never_two_owners() -> io::Result<()> {
    require_netns!();
    failover("198.51.100.100".parse().map_err(io::Error::other)?)
}

#[test]
fn ipv6_vip_fails_over_with_unsolicited_na_and_never_two_owners() -> io::Result<()> {
    require_netns!();
    failover("2001:db8::100".parse().map_err(io::Error::other)?)
}

/// The detector itself: with the VIP on both nodes at once (no fencing), the observer must
/// report two owners within one window.
#[test]
fn observer_reports_two_nodes_answering_at_once() -> io::Result<()> {
    require_netns!();
    let lan = Lan::new()?;
    let vip: IpAddr = "198.51.100.100".parse().map_err(io::Error::other)?;
    let observer = Observer::start(&lan.observer, vip)?;
    for node in [&lan.a, &lan.b] {
        reconcile(
            &node.ns,
            &[held(vip, &[])],
            &BTreeSet::new(),
            Lifetimes::default(),
            None,
        )?;
    }
    observer.set_probing(true);
    let start = Instant::now();
    assert!(
        observer
            .wait_for(lan.a.mac, start, Duration::from_secs(1))
            .is_some()
    );
    assert!(
        observer
            .wait_for(lan.b.mac, start, Duration::from_secs(1))
            .is_some()
    );
    let sightings = observer.stop()?;
    assert!(
        two_owners_within(&sightings, PROBE_WINDOW).is_some(),
        "{sightings:?}"
    );
    // Both answer the same probes: the answers-only detector of the end-to-end tests sees it too.
    assert!(
        two_answers_within(&sightings, PROBE_WINDOW).is_some(),
        "{sightings:?}"
    );
    Ok(())
}
