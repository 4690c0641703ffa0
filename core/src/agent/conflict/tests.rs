//! Frame classification against frames built by `frames`, the probe schedule, the probe verdict
//! and the holder's reactions.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;
use crate::agent::frames::{
    ARP_REPLY, Arp, arp_probe, dad_neighbor_solicitation, gratuitous_arp_reply,
    gratuitous_arp_request, unsolicited_neighbor_advertisement,
};

const ME: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const PEER: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

fn vip4() -> Ipv4Addr {
    Ipv4Addr::new(198, 51, 100, 100)
}

fn vip6() -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100)
}

fn seen(frame: &[u8], vip: IpAddr) -> Option<(MacAddr, Heard)> {
    classify(frame, vip).map(|s| (s.mac, s.heard))
}

#[test]
fn an_arp_probe_for_the_vip_is_a_probe_and_for_another_address_nothing() {
    let vip = IpAddr::V4(vip4());
    assert_eq!(
        seen(&arp_probe(PEER, vip4()), vip),
        Some((PEER, Heard::Probe))
    );
    let other = arp_probe(PEER, Ipv4Addr::new(198, 51, 100, 7));
    assert_eq!(seen(&other, vip), None);
}

#[test]
fn replies_and_announcements_from_the_vip_are_claims() {
    let vip = IpAddr::V4(vip4());
    let reply = Arp {
        eth_dst: ME,
        operation: ARP_REPLY,
        sender_mac: PEER,
        sender_ip: vip4(),
        target_mac: ME,
        target_ip: Ipv4Addr::UNSPECIFIED,
    }
    .to_frame();
    assert_eq!(seen(&reply, vip), Some((PEER, Heard::Claim)));
    for frame in [
        gratuitous_arp_request(PEER, vip4()),
        gratuitous_arp_reply(PEER, vip4()),
    ] {
        assert_eq!(seen(&frame, vip), Some((PEER, Heard::Claim)));
    }
}

#[test]
fn an_ordinary_request_for_the_vip_is_nothing() {
    // Someone resolving the VIP (the observer, a router) neither has it nor wants it.
    let ask = Arp {
        eth_dst: MacAddr::BROADCAST,
        operation: crate::agent::frames::ARP_REQUEST,
        sender_mac: PEER,
        sender_ip: Ipv4Addr::new(198, 51, 100, 10),
        target_mac: MacAddr::ZERO,
        target_ip: vip4(),
    }
    .to_frame();
    assert_eq!(seen(&ask, IpAddr::V4(vip4())), None);
}

#[test]
fn ipv6_dad_is_a_probe_and_an_na_for_the_vip_a_claim() {
    let vip = IpAddr::V6(vip6());
    let dad = dad_neighbor_solicitation(PEER, vip6());
    assert_eq!(seen(&dad, vip), Some((PEER, Heard::Probe)));
    // The DAD NS goes to the solicited-node group from `::`.
    assert_eq!(&dad[22..38], &[0u8; 16]);
    assert_eq!(&dad[0..6], &[0x33, 0x33, 0xff, 0, 0x01, 0x00]);
    let na = unsolicited_neighbor_advertisement(PEER, vip6());
    assert_eq!(seen(&na, vip), Some((PEER, Heard::Claim)));
    // An IPv4 frame says nothing about an IPv6 VIP, and the other way round.
    assert_eq!(seen(&arp_probe(PEER, vip4()), vip), None);
    assert_eq!(seen(&na, IpAddr::V4(vip4())), None);
}

#[test]
fn truncated_or_foreign_frames_are_nothing() {
    let vip = IpAddr::V4(vip4());
    let probe = arp_probe(PEER, vip4());
    for len in [0, 13, 14, 30, 41] {
        assert_eq!(seen(&probe[..len], vip), None, "{len} bytes");
    }
    let mut not_ethernet = probe.clone();
    not_ethernet[15] = 6; // hardware type 6 (IEEE 802)
    assert_eq!(seen(&not_ethernet, vip), None);
    let na = unsolicited_neighbor_advertisement(PEER, vip6());
    let mut forwarded = na.clone();
    forwarded[21] = 64; // hop limit below 255: not an on-link NDP message
    assert_eq!(seen(&forwarded, IpAddr::V6(vip6())), None);
}

#[test]
fn a_round_is_three_probes_and_150_ms() {
    let schedule = ProbeSchedule::default();
    let ms: Vec<u128> = schedule.offsets().iter().map(|d| d.as_millis()).collect();
    assert_eq!(ms, vec![0, 50, 100]);
    assert_eq!(schedule.round(), Duration::from_millis(150));
    let single = ProbeSchedule {
        count: 0,
        ..schedule
    };
    assert_eq!(single.offsets(), vec![Duration::ZERO]);
    assert_eq!(single.round(), schedule.listen);
}

#[test]
fn a_round_is_free_only_when_no_other_mac_was_heard() {
    assert_eq!(probe_outcome(&[], ME), ProbeOutcome::Free);
    let own = Sighting {
        mac: ME,
        heard: Heard::Probe,
    };
    assert_eq!(probe_outcome(&[own], ME), ProbeOutcome::Free);
    for heard in [Heard::Claim, Heard::Probe] {
        let other = Sighting { mac: PEER, heard };
        assert_eq!(probe_outcome(&[own, other], ME), ProbeOutcome::Taken(other));
    }
}

#[test]
fn an_outage_holder_yields_to_anything_a_leased_one_only_out_announces_claims() {
    use Reaction::*;
    assert_eq!(holder_reaction(Heard::Probe, Standing::OutageHold), Yield);
    assert_eq!(holder_reaction(Heard::Claim, Standing::OutageHold), Yield);
    assert_eq!(holder_reaction(Heard::Probe, Standing::Leased), Ignore);
    assert_eq!(holder_reaction(Heard::Claim, Standing::Leased), Reannounce);
}
