//! Address rules: CIDR parsing with the host-bits check, and which addresses can serve as a
//! VIP. Pure functions over `std::net`/`ipnet`; messages are built by the callers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// Why a CIDR was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CidrError {
    /// Not `address/prefix`, or the prefix is out of range.
    Malformed,
    /// Valid, but with host bits set; carries the network form to suggest.
    HostBits(IpNet),
}

/// Parses `address/prefix` and insists on the network form (no host bits).
pub fn parse_cidr(text: &str) -> Result<IpNet, CidrError> {
    let net: IpNet = text.trim().parse().map_err(|_| CidrError::Malformed)?;
    if net.trunc() != net {
        return Err(CidrError::HostBits(net.trunc()));
    }
    Ok(net)
}

/// Why an address cannot be a VIP, or `None` if it can. Only addresses that can never be a
/// unicast source on a host are refused: whether `.0`/`.255` are usable depends on the prefix
/// length of the node subnet, which egressc does not know (in a /23, `x.x.1.255` is a host).
pub fn vip_problem(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_problem(v4),
        IpAddr::V6(v6) => v6_problem(v6),
    }
}

fn v4_problem(ip: Ipv4Addr) -> Option<&'static str> {
    if ip.is_unspecified() {
        Some("the unspecified address")
    } else if ip.is_broadcast() {
        Some("the limited broadcast address")
    } else if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if ip.is_link_local() {
        Some("a link-local address (169.254.0.0/16)")
    } else if ip.octets()[0] == 0 {
        // RFC 1122: 0.0.0.0/8 means "this network" and is never a source address.
        Some("in 0.0.0.0/8 (\"this network\")")
    } else {
        None
    }
}

fn v6_problem(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_unspecified() {
        Some("the unspecified address")
    } else if ip.is_loopback() {
        Some("the loopback address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if ip.is_unicast_link_local() {
        Some("a link-local address (fe80::/10)")
    } else if ip.to_ipv4_mapped().is_some() {
        Some("an IPv4-mapped IPv6 address; write the IPv4 address instead")
    } else {
        None
    }
}

/// The edge of its /24 that an IPv4 address is, if any: `.0` is the network address and
/// `.255` the broadcast address of the /24 around it. Such an address is a host only in a
/// wider subnet, which egressc cannot see, so callers warn rather than refuse.
pub fn v4_subnet_edge(ip: IpAddr) -> Option<&'static str> {
    let IpAddr::V4(v4) = ip else { return None };
    match v4.octets()[3] {
        0 => Some("network"),
        255 => Some("broadcast"),
        _ => None,
    }
}

/// Is `inner` contained in `outer` (same family, at least as long a prefix)?
pub fn contains(outer: &IpNet, inner: &IpNet) -> bool {
    outer.contains(inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_must_be_networks() {
        assert_eq!(
            parse_cidr("198.51.100.0/24").map(|n| n.to_string()),
            Ok("198.51.100.0/24".into())
        );
        assert_eq!(parse_cidr("0.0.0.0/0").map(|n| n.prefix_len()), Ok(0));
        assert_eq!(parse_cidr("2001:db8::/32").map(|n| n.prefix_len()), Ok(32));
        assert_eq!(
            parse_cidr("198.51.100.7/24"),
            Err(CidrError::HostBits("198.51.100.0/24".parse().unwrap()))
        );
        for bad in [
            "198.51.100.0",
            "198.51.100.0/33",
            "x/8",
            "2001:db8::/129",
            "",
        ] {
            assert_eq!(parse_cidr(bad), Err(CidrError::Malformed), "{bad}");
        }
    }

    #[test]
    fn vips_must_be_host_addresses() {
        for ok in [
            "192.0.2.10",
            "203.0.113.255",
            "198.51.100.0",
            "2001:db8::10",
        ] {
            assert_eq!(vip_problem(ok.parse().unwrap()), None, "{ok}");
        }
        for bad in [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "224.0.0.5",
            "169.254.1.1",
            "255.255.255.255",
            "::",
            "::1",
            "ff02::1",
            "fe80::1",
            "::ffff:192.0.2.1",
        ] {
            assert!(vip_problem(bad.parse().unwrap()).is_some(), "{bad}");
        }
    }

    #[test]
    fn dot_zero_and_dot_255_are_subnet_edges() {
        let edge = |s: &str| v4_subnet_edge(s.parse().unwrap());
        assert_eq!(edge("198.51.100.0"), Some("network"));
        assert_eq!(edge("203.0.113.255"), Some("broadcast"));
        assert_eq!(edge("192.0.2.10"), None);
        assert_eq!(edge("192.0.2.254"), None);
        assert_eq!(edge("2001:db8::ff"), None);
        assert_eq!(edge("2001:db8::"), None);
    }

    #[test]
    fn containment_respects_family_and_prefix() {
        let net = |s: &str| s.parse::<IpNet>().unwrap();
        assert!(contains(&net("0.0.0.0/0"), &net("198.51.100.0/24")));
        assert!(!contains(&net("198.51.100.0/24"), &net("198.51.0.0/16")));
        assert!(!contains(&net("0.0.0.0/0"), &net("2001:db8::/32")));
    }
}
