//! Ethernet frames that tell a LAN where a VIP lives: gratuitous ARP (request and reply forms,
//! RFC 5227 / RFC 5944) and the unsolicited IPv6 Neighbor Advertisement with the override flag
//! (RFC 4861). Pure byte building; sending is in `announce`.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// An Ethernet (EUI-48) address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// `00:00:00:00:00:00`.
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// The Ethernet multicast address an IPv6 multicast group maps to (`33:33` + low 32 bits).
    pub fn ipv6_multicast(group: Ipv6Addr) -> MacAddr {
        let o = group.octets();
        MacAddr([0x33, 0x33, o[12], o[13], o[14], o[15]])
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// ARP operation: request.
pub const ARP_REQUEST: u16 = 1;
/// ARP operation: reply.
pub const ARP_REPLY: u16 = 2;
/// ICMPv6 type: Neighbor Solicitation.
pub const ICMPV6_NEIGHBOR_SOLICITATION: u8 = 135;
/// ICMPv6 type: Neighbor Advertisement.
pub const ICMPV6_NEIGHBOR_ADVERTISEMENT: u8 = 136;
/// NDP option: source link-layer address.
pub const NDP_OPT_SOURCE_LLADDR: u8 = 1;
/// NDP option: target link-layer address.
pub const NDP_OPT_TARGET_LLADDR: u8 = 2;
/// Neighbor Advertisement flag: override existing cache entries.
pub const NA_FLAG_OVERRIDE: u32 = 0x2000_0000;
/// IPv6 next-header value of ICMPv6.
const IPPROTO_ICMPV6: u8 = 58;
/// Ethernet frames shorter than this (without FCS) are padded; some switches drop runts.
const MIN_FRAME_LEN: usize = 60;

/// The fields of an Ethernet/IPv4 ARP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arp {
    /// Ethernet destination.
    pub eth_dst: MacAddr,
    /// [`ARP_REQUEST`] or [`ARP_REPLY`].
    pub operation: u16,
    /// Sender hardware address (also the Ethernet source).
    pub sender_mac: MacAddr,
    /// Sender protocol address.
    pub sender_ip: Ipv4Addr,
    /// Target hardware address.
    pub target_mac: MacAddr,
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

impl Arp {
    /// The Ethernet frame, padded to the 60-byte minimum.
    pub fn to_frame(&self) -> Vec<u8> {
        let mut f = ethernet_header(self.eth_dst, self.sender_mac, ETHERTYPE_ARP);
        f.extend_from_slice(&1u16.to_be_bytes()); // hardware type: Ethernet
        f.extend_from_slice(&0x0800u16.to_be_bytes()); // protocol type: IPv4
        f.extend_from_slice(&[6, 4]);
        f.extend_from_slice(&self.operation.to_be_bytes());
        f.extend_from_slice(&self.sender_mac.0);
        f.extend_from_slice(&self.sender_ip.octets());
        f.extend_from_slice(&self.target_mac.0);
        f.extend_from_slice(&self.target_ip.octets());
        f.resize(f.len().max(MIN_FRAME_LEN), 0);
        f
    }
}

/// Gratuitous ARP request (RFC 5227 "ARP announcement"): broadcast, sender and target IP both the
/// VIP, target MAC zero.
pub fn gratuitous_arp_request(mac: MacAddr, vip: Ipv4Addr) -> Vec<u8> {
    Arp {
        eth_dst: MacAddr::BROADCAST,
        operation: ARP_REQUEST,
        sender_mac: mac,
        sender_ip: vip,
        target_mac: MacAddr::ZERO,
        target_ip: vip,
    }
    .to_frame()
}

/// Gratuitous ARP reply (RFC 5944 §4.6): broadcast, sender and target IP the VIP, target MAC the
/// sender's — the form Linux treats as gratuitous and lets override a fresh neighbour entry.
pub fn gratuitous_arp_reply(mac: MacAddr, vip: Ipv4Addr) -> Vec<u8> {
    Arp {
        eth_dst: MacAddr::BROADCAST,
        operation: ARP_REPLY,
        sender_mac: mac,
        sender_ip: vip,
        target_mac: mac,
        target_ip: vip,
    }
    .to_frame()
}

/// ARP probe (RFC 5227 §2.1.1): broadcast request for `vip` with sender IP 0.0.0.0, so that a
/// host that has `vip` answers without anyone's ARP cache learning the prober.
pub fn arp_probe(mac: MacAddr, vip: Ipv4Addr) -> Vec<u8> {
    Arp {
        eth_dst: MacAddr::BROADCAST,
        operation: ARP_REQUEST,
        sender_mac: mac,
        sender_ip: Ipv4Addr::UNSPECIFIED,
        target_mac: MacAddr::ZERO,
        target_ip: vip,
    }
    .to_frame()
}

/// The solicited-node multicast group of `ip` (`ff02::1:ffXX:XXXX`, RFC 4291 §2.7.1).
pub fn solicited_node_group(ip: Ipv6Addr) -> Ipv6Addr {
    let o = ip.octets();
    Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, o[13], o[14], o[15],
    ])
}

/// Duplicate Address Detection probe (RFC 4862 §5.4.2): a Neighbor Solicitation for `vip` from
/// the unspecified address `::` to its solicited-node group, without a source link-layer
/// option (none is allowed with `::`). A host that has `vip` answers with an NA to `ff02::1`.
pub fn dad_neighbor_solicitation(mac: MacAddr, vip: Ipv6Addr) -> Vec<u8> {
    let group = solicited_node_group(vip);
    let mut body = vec![ICMPV6_NEIGHBOR_SOLICITATION, 0, 0, 0, 0, 0, 0, 0];
    body.extend_from_slice(&vip.octets());
    icmpv6_frame(
        MacAddr::ipv6_multicast(group),
        mac,
        Ipv6Addr::UNSPECIFIED,
        group,
        &body,
    )
}

/// Unsolicited Neighbor Advertisement for `vip` from `mac` to all nodes (`ff02::1`): override
/// flag set, solicited and router flags clear, target link-layer address option, hop limit 255.
pub fn unsolicited_neighbor_advertisement(mac: MacAddr, vip: Ipv6Addr) -> Vec<u8> {
    let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    let mut body = vec![ICMPV6_NEIGHBOR_ADVERTISEMENT, 0, 0, 0];
    body.extend_from_slice(&NA_FLAG_OVERRIDE.to_be_bytes());
    body.extend_from_slice(&vip.octets());
    body.extend_from_slice(&[NDP_OPT_TARGET_LLADDR, 1]);
    body.extend_from_slice(&mac.0);
    icmpv6_frame(
        MacAddr::ipv6_multicast(all_nodes),
        mac,
        vip,
        all_nodes,
        &body,
    )
}

/// An Ethernet/IPv6 frame with hop limit 255 carrying the ICMPv6 message `icmp` (whose checksum
/// field, bytes 2..4, is filled in here).
pub fn icmpv6_frame(
    eth_dst: MacAddr,
    eth_src: MacAddr,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    icmp: &[u8],
) -> Vec<u8> {
    let mut icmp = icmp.to_vec();
    if icmp.len() >= 4 {
        icmp[2..4].copy_from_slice(&[0, 0]);
        let sum = icmpv6_checksum(src, dst, &icmp);
        icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    let mut f = ethernet_header(eth_dst, eth_src, ETHERTYPE_IPV6);
    f.extend_from_slice(&[0x60, 0, 0, 0]); // version 6, traffic class 0, flow label 0
    // NDP messages are far below 64 KiB; saturate rather than wrap on absurd input.
    let payload_len = u16::try_from(icmp.len()).unwrap_or(u16::MAX);
    f.extend_from_slice(&payload_len.to_be_bytes());
    f.extend_from_slice(&[IPPROTO_ICMPV6, 255]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&icmp);
    f
}

/// The ICMPv6 checksum (RFC 4443 §2.3) over the IPv6 pseudo-header and `icmp`, whose checksum
/// field must be zero.
pub fn icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, icmp: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    let mut add = |bytes: &[u8]| {
        for chunk in bytes.chunks(2) {
            let hi = u64::from(chunk[0]) << 8;
            let lo = chunk.get(1).copied().map_or(0, u64::from);
            sum += hi | lo;
        }
    };
    add(&src.octets());
    add(&dst.octets());
    add(&(icmp.len() as u32).to_be_bytes());
    add(&[0, 0, 0, IPPROTO_ICMPV6]);
    add(icmp);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ethernet_header(dst: MacAddr, src: MacAddr, ethertype: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(MIN_FRAME_LEN + 32);
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

#[cfg(test)]
mod tests;
