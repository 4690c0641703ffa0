//! Byte-for-byte checks of the announcement frames against hand-assembled packets.

use super::*;

const MAC: MacAddr = MacAddr([0x02, 0x00, 0x5e, 0x10, 0x00, 0x01]);
const VIP4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 100);

fn vip6() -> Ipv6Addr {
    "2001:db8::100".parse().unwrap_or(Ipv6Addr::UNSPECIFIED)
}

#[rustfmt::skip]
fn arp_expected(op: u8, target_mac: [u8; 6]) -> Vec<u8> {
    let mut v = vec![
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff,   // eth dst: broadcast
        0x02, 0x00, 0x5e, 0x10, 0x00, 0x01,   // eth src
        0x08, 0x06,                           // ARP
        0x00, 0x01, 0x08, 0x00, 6, 4,         // Ethernet/IPv4, hlen 6, plen 4
        0x00, op,                             // operation
        0x02, 0x00, 0x5e, 0x10, 0x00, 0x01,   // sender MAC
        198, 51, 100, 100,                    // sender IP = VIP
    ];
    v.extend_from_slice(&target_mac);
    v.extend_from_slice(&[198, 51, 100, 100]); // target IP = VIP
    v.resize(60, 0); // padding to the Ethernet minimum
    v
}

#[test]
fn gratuitous_request_is_an_rfc5227_announcement() {
    assert_eq!(gratuitous_arp_request(MAC, VIP4), arp_expected(1, [0; 6]));
}

#[test]
fn gratuitous_reply_carries_own_mac_as_target() {
    assert_eq!(gratuitous_arp_reply(MAC, VIP4), arp_expected(2, MAC.0));
}

#[rustfmt::skip]
#[test]
fn unsolicited_na_matches_hand_assembled_frame() {
    let mut expected = vec![
        0x33, 0x33, 0x00, 0x00, 0x00, 0x01,   // eth dst: all-nodes multicast
        0x02, 0x00, 0x5e, 0x10, 0x00, 0x01,   // eth src
        0x86, 0xdd,                           // IPv6
        0x60, 0, 0, 0,                        // version 6
        0x00, 32,                             // payload length: 24 + 8 (option)
        58, 255,                              // ICMPv6, hop limit 255
    ];
    expected.extend_from_slice(&vip6().octets()); // source: the VIP
    expected.extend_from_slice(&[0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    // Checksum 0x991c computed independently (Python, RFC 4443 pseudo-header).
    expected.extend_from_slice(&[136, 0, 0x99, 0x1c]);
    expected.extend_from_slice(&[0x20, 0, 0, 0]); // override only
    expected.extend_from_slice(&vip6().octets()); // target
    expected.extend_from_slice(&[2, 1, 0x02, 0x00, 0x5e, 0x10, 0x00, 0x01]); // target LL option
    assert_eq!(unsolicited_neighbor_advertisement(MAC, vip6()), expected);
}

#[test]
fn checksum_verifies_to_zero_over_the_finished_message() {
    let frame = unsolicited_neighbor_advertisement(MAC, vip6());
    let icmp = &frame[14 + 40..];
    let dst = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    // Summing a message including its correct checksum gives 0xffff, whose complement is 0.
    assert_eq!(icmpv6_checksum(vip6(), dst, icmp), 0);
}

#[test]
fn checksum_pads_an_odd_trailing_byte() {
    let a = Ipv6Addr::LOCALHOST;
    // 0xfec2 computed independently (Python) for the one-byte message [0x01] between ::1 and ::1.
    assert_eq!(icmpv6_checksum(a, a, &[0x01]), 0xfec2);
}

#[test]
fn ipv6_multicast_mac_uses_low_32_bits() {
    let group: Ipv6Addr = "ff02::1:ff00:100".parse().unwrap_or(Ipv6Addr::UNSPECIFIED);
    assert_eq!(
        MacAddr::ipv6_multicast(group),
        MacAddr([0x33, 0x33, 0xff, 0x00, 0x01, 0x00])
    );
    assert_eq!(MAC.to_string(), "02:00:5e:10:00:01");
}
