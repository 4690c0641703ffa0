//! What an agent hears on its LAN about a VIP, and what that means (docs/lease-protocol.md,
//! "Probing" and "Outage hold"), pure: classifying ARP and NDP frames, the claimant's probe
//! schedule and verdict, and a holder's reaction to what it hears. The sockets are in `lan`.
//!
//! Linux answers an ARP probe (RFC 5227, sender IP 0.0.0.0) and a DAD Neighbor Solicitation
//! (RFC 4862, source `::`) for every address it has configured, from the kernel, even while the
//! agent that added the address is stopped. So a probe round that nobody answers shows that no
//! kernel on the LAN has the VIP, and every frame that carries the VIP as a sender (an ARP reply
//! or announcement, a Neighbor Advertisement) shows that some host has it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::agent::frames::{
    ARP_REQUEST, ETHERTYPE_ARP, ETHERTYPE_IPV6, ICMPV6_NEIGHBOR_ADVERTISEMENT,
    ICMPV6_NEIGHBOR_SOLICITATION, MacAddr, NDP_OPT_TARGET_LLADDR,
};

/// What a frame about the VIP says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Heard {
    /// Someone wants to take the VIP: an ARP probe (sender IP 0.0.0.0) or a DAD solicitation
    /// (source `::`) for it.
    Probe,
    /// Someone has the VIP: an ARP reply, gratuitous ARP or request sent from the VIP, or a
    /// Neighbor Advertisement for it.
    Claim,
}

/// One frame about the VIP from another MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sighting {
    /// The MAC the frame speaks for (ARP sender hardware address; NA target link-layer
    /// address, else the Ethernet source).
    pub mac: MacAddr,
    /// What it says.
    pub heard: Heard,
}

/// What `frame` says about `vip`, if anything.
pub fn classify(frame: &[u8], vip: IpAddr) -> Option<Sighting> {
    let ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    match (ethertype, vip) {
        (ETHERTYPE_ARP, IpAddr::V4(vip)) => classify_arp(frame.get(14..42)?, vip),
        (ETHERTYPE_IPV6, IpAddr::V6(vip)) => classify_ndp(frame, vip),
        _ => None,
    }
}

fn classify_arp(arp: &[u8], vip: Ipv4Addr) -> Option<Sighting> {
    // Ethernet/IPv4 ARP only.
    if arp[0..2] != [0, 1] || arp[2..4] != [8, 0] || arp[4] != 6 || arp[5] != 4 {
        return None;
    }
    let operation = u16::from_be_bytes([arp[6], arp[7]]);
    let mac = MacAddr(arp[8..14].try_into().ok()?);
    let sender = Ipv4Addr::new(arp[14], arp[15], arp[16], arp[17]);
    let target = Ipv4Addr::new(arp[24], arp[25], arp[26], arp[27]);
    if sender == vip {
        return Some(Sighting {
            mac,
            heard: Heard::Claim,
        });
    }
    (operation == ARP_REQUEST && sender.is_unspecified() && target == vip).then_some(Sighting {
        mac,
        heard: Heard::Probe,
    })
}

fn classify_ndp(frame: &[u8], vip: Ipv6Addr) -> Option<Sighting> {
    let (ip6, icmp) = (frame.get(14..54)?, frame.get(54..)?);
    // Next header ICMPv6, hop limit 255 (RFC 4861 drops anything else).
    if ip6[6] != 58 || ip6[7] != 255 {
        return None;
    }
    let source = Ipv6Addr::from(<[u8; 16]>::try_from(&ip6[8..24]).ok()?);
    let target = Ipv6Addr::from(<[u8; 16]>::try_from(icmp.get(8..24)?).ok()?);
    let ethernet_source = MacAddr(frame.get(6..12)?.try_into().ok()?);
    match *icmp.first()? {
        ICMPV6_NEIGHBOR_ADVERTISEMENT if target == vip => {
            let option = icmp.get(24..32).filter(|o| o[0] == NDP_OPT_TARGET_LLADDR);
            let mac = match option {
                Some(o) => MacAddr(o[2..8].try_into().ok()?),
                None => ethernet_source,
            };
            Some(Sighting {
                mac,
                heard: Heard::Claim,
            })
        }
        ICMPV6_NEIGHBOR_SOLICITATION if source.is_unspecified() && target == vip => {
            Some(Sighting {
                mac: ethernet_source,
                heard: Heard::Probe,
            })
        }
        ICMPV6_NEIGHBOR_SOLICITATION if source == vip => Some(Sighting {
            mac: ethernet_source,
            heard: Heard::Claim,
        }),
        _ => None,
    }
}

/// When a claimant sends its probes and how long it listens.
///
/// RFC 5227 spaces three probes 1–2 s apart and then waits 2 s, for hosts that may be asleep
/// or behind slow bridges. Here the hosts that matter are Linux kernels on one L2 segment with
/// the VIP configured: they answer from the softirq within microseconds to a few milliseconds,
/// whatever their user space is doing. The repeats guard against a lost frame, not against a
/// slow answer; a round costs `(count − 1) × spacing + listen`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeSchedule {
    /// Probes per round (at least 1).
    pub count: u32,
    /// Time between probes.
    pub spacing: Duration,
    /// How long to listen after the last probe.
    pub listen: Duration,
    /// A free round allows adding the VIP only this soon after it ended: a process stopped
    /// between the round and the add must probe again.
    pub fresh_for: Duration,
    /// After a round found the VIP taken, the next round starts this much later.
    pub retry: Duration,
}

impl Default for ProbeSchedule {
    /// Three probes 50 ms apart, then 50 ms of listening: 150 ms per round; retried every
    /// 50 ms while the VIP is taken. The add must be done within 80 ms of the round's end:
    /// before a claimant that started probing right after that end sends its last probe
    /// (100 ms into its round), so that probe is answered.
    fn default() -> Self {
        ProbeSchedule {
            count: 3,
            spacing: Duration::from_millis(50),
            listen: Duration::from_millis(50),
            fresh_for: Duration::from_millis(80),
            retry: Duration::from_millis(50),
        }
    }
}

impl ProbeSchedule {
    /// Offsets from the start of a round at which probes go out.
    pub fn offsets(&self) -> Vec<Duration> {
        (0..self.count.max(1)).map(|i| self.spacing * i).collect()
    }

    /// The whole round: from the first probe to the end of listening.
    pub fn round(&self) -> Duration {
        self.spacing * (self.count.max(1) - 1) + self.listen
    }
}

/// The result of a probe round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// Nobody answered, claimed or probed: no kernel on the LAN has the VIP.
    Free,
    /// Another MAC has the VIP or is probing for it.
    Taken(Sighting),
}

/// The verdict of a round from everything heard during it (`own`: the prober's MAC; its own
/// frames are not evidence). Another claimant's probe counts as taken, as in RFC 5227 §2.1.1.
pub fn probe_outcome(heard: &[Sighting], own: MacAddr) -> ProbeOutcome {
    heard
        .iter()
        .find(|s| s.mac != own)
        .map_or(ProbeOutcome::Free, |s| ProbeOutcome::Taken(*s))
}

/// How a holder stands with the API when it hears something.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Its renewals succeed: the Lease says it holds the VIP.
    Leased,
    /// Its renewals fail without a conflict (API unreachable): it holds the VIP on its own,
    /// as long as nobody on the LAN wants it.
    OutageHold,
}

/// What a holder does about a frame from another MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reaction {
    /// Delete the VIP at once and stop holding.
    Yield,
    /// Announce again at once, so neighbour caches return to this node.
    Reannounce,
    /// Nothing: the kernel answers the probe, which keeps the claimant off, and the Lease
    /// settles who holds (a holder that was taken over fails its next renewal with a conflict).
    Ignore,
}

/// A holder's reaction (docs/lease-protocol.md, holder rules). In an outage hold anything from
/// another MAC — a claimant's probe or another node's claim — makes it yield: it cannot ask the
/// API who is right, and yielding is safe. A leased holder is right by the Lease; it does not
/// give the VIP away to a stray prober, and out-announces a stray claim.
pub fn holder_reaction(heard: Heard, standing: Standing) -> Reaction {
    match (standing, heard) {
        (Standing::OutageHold, Heard::Probe | Heard::Claim) => Reaction::Yield,
        (Standing::Leased, Heard::Probe) => Reaction::Ignore,
        (Standing::Leased, Heard::Claim) => Reaction::Reannounce,
    }
}

#[cfg(test)]
mod tests;
