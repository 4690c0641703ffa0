//! Drives the agent's kernel side inside a namespace the way the agent does: observe, plan,
//! execute address operations, then announce.

use std::collections::BTreeSet;
use std::io;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use egressc::agent::announce::{BurstSchedule, PacketSocket, announce_burst, announcement_frames};
use egressc::agent::netlink::AddressTable;
use egressc::agent::plan::{
    DesiredVip, Lifetime, Lifetimes, ObservedAddr, Op, Plan, host_prefix_len, plan,
};

use super::netns::Netns;

/// A held VIP with no interface preference.
pub fn held(ip: IpAddr, interfaces: &[&str]) -> DesiredVip {
    DesiredVip {
        gateway: format!("gw-{ip}"),
        ip,
        interfaces: interfaces.iter().map(|s| s.to_string()).collect(),
    }
}

/// One reconcile round in `ns`: plan against the kernel's state, run the address operations,
/// and (when `announce` is given) send the announcement burst for newly added VIPs.
pub fn reconcile(
    ns: &Netns,
    held: &[DesiredVip],
    known: &BTreeSet<IpAddr>,
    lifetimes: Lifetimes,
    announce: Option<BurstSchedule>,
) -> io::Result<Plan> {
    ns.block_on(|| async move {
        let table = AddressTable::connect().map_err(io::Error::other)?;
        let observed = table.observe().await.map_err(io::Error::other)?;
        let plan = plan(held, known, &observed, lifetimes);
        for op in &plan.ops {
            table.execute(op).await.map_err(io::Error::other)?;
        }
        if let Some(schedule) = announce {
            announce_ops(&plan, schedule).await?;
        }
        Ok(plan)
    })?
}

/// Sends the bursts of the plan's [`Op::Announce`] operations (in the current namespace).
pub async fn announce_ops(plan: &Plan, schedule: BurstSchedule) -> io::Result<usize> {
    let mut rounds = 0;
    for op in &plan.ops {
        if let Op::Announce { vip, mac } = op {
            let socket = PacketSocket::open(vip.ifindex)?;
            let frames = announcement_frames(vip.ip, *mac);
            rounds += announce_burst(&socket, &frames, schedule, || true).await?;
        }
    }
    Ok(rounds)
}

/// Announces `plan`'s new VIPs from inside `ns`.
pub fn announce_in(ns: &Netns, plan: &Plan, schedule: BurstSchedule) -> io::Result<usize> {
    ns.block_on(|| announce_ops(plan, schedule))?
}

/// The host-prefix copies of `ip` in `ns`, as the executor reads them.
pub fn vip_addrs(ns: &Netns, ip: IpAddr) -> io::Result<Vec<ObservedAddr>> {
    ns.block_on(|| async move {
        let table = AddressTable::connect().map_err(io::Error::other)?;
        let observed = table.observe().await.map_err(io::Error::other)?;
        Ok(observed
            .addrs
            .into_iter()
            .filter(|a| a.ip == ip && a.prefix_len == host_prefix_len(ip))
            .collect())
    })?
}

/// Polls every 20 ms until `ip` is gone from `ns`; returns when it was first seen gone, or
/// `None` after `timeout`.
pub fn wait_vanished(ns: &Netns, ip: IpAddr, timeout: Duration) -> io::Result<Option<Instant>> {
    let deadline = Instant::now() + timeout;
    ns.block_on(|| async move {
        let table = AddressTable::connect().map_err(io::Error::other)?;
        loop {
            let observed = table.observe().await.map_err(io::Error::other)?;
            if !observed.addrs.iter().any(|a| a.ip == ip) {
                return Ok(Some(Instant::now()));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })?
}

/// True when the lifetime is finite (egressc's own address).
pub fn is_finite(a: &ObservedAddr) -> bool {
    matches!(a.lifetime, Lifetime::Finite { .. })
}
