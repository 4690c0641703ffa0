//! The VIP agent's pure planner: from the VIPs this node holds, the VIPs of every known gateway
//! and the addresses the kernel reports, compute the address operations that make the node carry
//! exactly the held VIPs — no I/O, no clock.
//!
//! # Which addresses are ours
//! An address is egressc's when it is a host address (`/32` or `/128`), its IP equals the VIP
//! of a known gateway, and it has a finite lifetime. egressc never adds a permanent address, so
//! a permanent (or non-host-prefix) copy of a VIP belongs to someone else: the planner reports
//! it and leaves that VIP alone entirely, because adding our own copy would still leave the node
//! answering ARP for an address it may not hold. IPv4 address labels (`IFA_LABEL`) were rejected
//! as the marker: IPv6 has none and they are limited to 15 characters.
//!
//! # Interface choice
//! The first of the gateway's `interfaces` that exists on the node; otherwise the interface
//! with the longest-prefix configured (non-host) subnet containing the VIP, lowest ifindex on a
//! tie; otherwise [`PlanIssue::NoInterface`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::agent::frames::MacAddr;

/// A VIP this node must carry now (it holds the gateway's Lease).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredVip {
    /// The gateway the VIP belongs to (for messages).
    pub gateway: String,
    /// The VIP.
    pub ip: IpAddr,
    /// `virtualIPAddress.interfaces`, in order of preference; may be empty.
    pub interfaces: Vec<String>,
}

/// A network interface as the kernel reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedLink {
    /// The ifindex.
    pub index: u32,
    /// The interface name.
    pub name: String,
    /// The Ethernet address; `None` on links without one (no ARP/NDP to announce on).
    pub mac: Option<MacAddr>,
}

/// How long the kernel keeps an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifetime {
    /// `valid_lft forever`.
    Permanent,
    /// Remaining lifetimes in seconds, as the kernel reports them.
    Finite {
        /// Seconds until the kernel deletes the address.
        valid_secs: u32,
        /// Seconds until the address is deprecated.
        preferred_secs: u32,
    },
}

/// An address as the kernel reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedAddr {
    /// The ifindex of the interface carrying it.
    pub ifindex: u32,
    /// The local address.
    pub ip: IpAddr,
    /// The prefix length.
    pub prefix_len: u8,
    /// Its lifetime.
    pub lifetime: Lifetime,
}

/// The node's links and addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// All links.
    pub links: Vec<ObservedLink>,
    /// All addresses of all links.
    pub addrs: Vec<ObservedAddr>,
}

/// Lifetimes given to VIPs on every add or refresh: the kernel dead-man switch. The kernel
/// deletes a VIP `valid_secs` after the last refresh, so a hung or dead agent stops answering
/// for it by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetimes {
    /// `valid_lft` in seconds (at least 1).
    pub valid_secs: u32,
    /// `preferred_lft` in seconds (at most `valid_secs`).
    pub preferred_secs: u32,
}

impl Default for Lifetimes {
    /// 2 s: the kernel removes the address 2–3 s after the last refresh. Preferred equals valid
    /// so the address is never deprecated while it is held.
    fn default() -> Self {
        Lifetimes {
            valid_secs: 2,
            preferred_secs: 2,
        }
    }
}

/// A VIP on a specific interface.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct VipOnLink {
    /// The ifindex.
    pub ifindex: u32,
    /// The interface name (for messages).
    pub ifname: String,
    /// The VIP.
    pub ip: IpAddr,
}

impl VipOnLink {
    /// The prefix length a VIP is added with: `/32` or `/128`.
    pub fn prefix_len(&self) -> u8 {
        host_prefix_len(self.ip)
    }
}

impl fmt::Display for VipOnLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} on {}", self.ip, self.prefix_len(), self.ifname)
    }
}

/// One step for the executors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Delete an address of ours that this node must not carry (or carries on the wrong link).
    Remove(VipOnLink),
    /// Add the VIP, or replace it with fresh lifetimes if it is there.
    AddOrRefresh {
        /// Where.
        vip: VipOnLink,
        /// Lifetimes to set.
        lifetimes: Lifetimes,
    },
    /// Announce the VIP (gratuitous ARP or unsolicited NA) from `mac`: it has just been added.
    Announce {
        /// Where.
        vip: VipOnLink,
        /// The link's Ethernet address.
        mac: MacAddr,
    },
}

/// Something the planner could not do; the agent reports these (and should not claim ready).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlanIssue {
    /// No listed interface exists and no configured subnet contains the VIP.
    NoInterface {
        /// The gateway.
        gateway: String,
        /// Its VIP.
        ip: IpAddr,
    },
    /// An address equal to a VIP that egressc did not add (permanent or not a host prefix);
    /// egressc leaves that VIP alone on this node.
    ForeignAddress {
        /// The interface carrying it.
        ifname: String,
        /// The address.
        ip: IpAddr,
        /// Its prefix length.
        prefix_len: u8,
    },
}

impl fmt::Display for PlanIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanIssue::NoInterface { gateway, ip } => write!(
                f,
                "gateway {gateway}: no listed interface exists and no interface subnet contains VIP {ip}"
            ),
            PlanIssue::ForeignAddress {
                ifname,
                ip,
                prefix_len,
            } => write!(
                f,
                "{ip}/{prefix_len} on {ifname} equals a VIP but was not added by egressc; leaving it alone"
            ),
        }
    }
}

/// The planner's output: operations in execution order (removals, then adds/refreshes, then
/// announcements) and the problems found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Operations in execution order.
    pub ops: Vec<Op>,
    /// Problems, in a stable order.
    pub issues: Vec<PlanIssue>,
}

/// `/32` for IPv4, `/128` for IPv6.
pub fn host_prefix_len(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// Is `addr` one egressc added for one of `vips`?
pub fn is_ours(addr: &ObservedAddr, vips: &BTreeSet<IpAddr>) -> bool {
    vips.contains(&addr.ip)
        && addr.prefix_len == host_prefix_len(addr.ip)
        && matches!(addr.lifetime, Lifetime::Finite { .. })
}

/// Plan the operations that make this node carry exactly `held` (a VIP of `known_vips` not in
/// `held` is removed wherever egressc added it, which is also the start-up cleanup).
pub fn plan(
    held: &[DesiredVip],
    known_vips: &BTreeSet<IpAddr>,
    observed: &Observed,
    lifetimes: Lifetimes,
) -> Plan {
    let vips: BTreeSet<IpAddr> = known_vips
        .iter()
        .copied()
        .chain(held.iter().map(|v| v.ip))
        .collect();
    let links: BTreeMap<u32, &ObservedLink> = observed.links.iter().map(|l| (l.index, l)).collect();
    let mut issues = Vec::new();

    let mut foreign: BTreeSet<IpAddr> = BTreeSet::new();
    for addr in &observed.addrs {
        if vips.contains(&addr.ip) && !is_ours(addr, &vips) {
            foreign.insert(addr.ip);
            issues.push(PlanIssue::ForeignAddress {
                ifname: link_name(&links, addr.ifindex),
                ip: addr.ip,
                prefix_len: addr.prefix_len,
            });
        }
    }

    // Where each held VIP goes; the first gateway wins if two share a VIP (validation forbids it).
    let mut targets: BTreeMap<IpAddr, &ObservedLink> = BTreeMap::new();
    let mut seen: BTreeSet<IpAddr> = BTreeSet::new();
    for want in held {
        if !seen.insert(want.ip) || foreign.contains(&want.ip) {
            continue;
        }
        match choose_link(want, observed, &links, &vips) {
            Some(link) => {
                targets.insert(want.ip, link);
            }
            None => issues.push(PlanIssue::NoInterface {
                gateway: want.gateway.clone(),
                ip: want.ip,
            }),
        }
    }

    let mut removes = Vec::new();
    let mut present: BTreeSet<IpAddr> = BTreeSet::new();
    for addr in observed.addrs.iter().filter(|a| is_ours(a, &vips)) {
        match targets.get(&addr.ip) {
            Some(link) if link.index == addr.ifindex => {
                present.insert(addr.ip);
            }
            _ => removes.push(Op::Remove(VipOnLink {
                ifindex: addr.ifindex,
                ifname: link_name(&links, addr.ifindex),
                ip: addr.ip,
            })),
        }
    }

    let mut adds = Vec::new();
    let mut announces = Vec::new();
    for (ip, link) in &targets {
        let vip = VipOnLink {
            ifindex: link.index,
            ifname: link.name.clone(),
            ip: *ip,
        };
        if !present.contains(ip)
            && let Some(mac) = link.mac
        {
            announces.push(Op::Announce {
                vip: vip.clone(),
                mac,
            });
        }
        adds.push(Op::AddOrRefresh { vip, lifetimes });
    }

    let mut ops = removes;
    ops.extend(adds);
    ops.extend(announces);
    Plan { ops, issues }
}

fn link_name(links: &BTreeMap<u32, &ObservedLink>, index: u32) -> String {
    links
        .get(&index)
        .map_or_else(|| format!("if{index}"), |l| l.name.clone())
}

/// The interface `want` goes on: the first listed one that exists, else the longest-prefix
/// subnet containing the VIP (VIP copies themselves do not count as subnets).
fn choose_link<'a>(
    want: &DesiredVip,
    observed: &Observed,
    links: &BTreeMap<u32, &'a ObservedLink>,
    vips: &BTreeSet<IpAddr>,
) -> Option<&'a ObservedLink> {
    for name in &want.interfaces {
        if let Some(link) = links.values().find(|l| &l.name == name) {
            return Some(link);
        }
    }
    observed
        .addrs
        .iter()
        .filter(|a| a.prefix_len < host_prefix_len(a.ip) && !vips.contains(&a.ip))
        .filter(|a| IpNet::new(a.ip, a.prefix_len).is_ok_and(|net| net.contains(&want.ip)))
        .filter_map(|a| links.get(&a.ifindex).map(|l| (a.prefix_len, *l)))
        .max_by(|(pa, la), (pb, lb)| pa.cmp(pb).then(lb.index.cmp(&la.index)))
        .map(|(_, link)| link)
}

#[cfg(test)]
mod tests;
