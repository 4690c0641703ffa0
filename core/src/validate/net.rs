//! Address rules: CIDR parsing with the host-bits check, and which addresses can serve as a
//! VIP. Pure functions over `std::net`/`ipnet`; messages are built by the callers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// Why a CIDR was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CidrError {
    /// Not `address/prefix`, or the prefix is out of range.
    Malformed,
    /// Would parse, but is not written the way the API server and Cilium accept it: spaces
    /// around it, or leading zeros. Carries what is wrong and the form to write instead.
    NotCanonical {
        /// What is wrong, e.g. "has spaces around it".
        problem: &'static str,
        /// The same network written as the CRDs accept it.
        suggestion: IpNet,
    },
    /// Valid, but with host bits set; carries the network form to suggest.
    HostBits(IpNet),
}

/// Why an IP address was refused (`Malformed`: no address at all).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IpError {
    /// Not an IP address.
    Malformed,
    /// An address written in a form the CRDs refuse; carries what is wrong and the address.
    NotCanonical {
        /// What is wrong, e.g. "has leading zeros".
        problem: &'static str,
        /// The address the text would mean to a lenient parser.
        suggestion: IpAddr,
    },
}

/// Parses an IP address exactly as the Kubernetes API server's `ipv4`/`ipv6` formats and
/// Cilium (Go's parser) do: no surrounding or inner whitespace, no leading zeros in IPv4
/// octets (Go refuses them since 1.17, as they used to mean octal), no IPv6 zone.
pub fn parse_ip(text: &str) -> Result<IpAddr, IpError> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(ip);
    }
    let trimmed = text.trim();
    if trimmed != text
        && let Ok(ip) = parse_ip(trimmed)
    {
        return Err(IpError::NotCanonical {
            problem: "has spaces around it",
            suggestion: ip,
        });
    }
    match lenient_v4(trimmed) {
        Some(ip) => Err(IpError::NotCanonical {
            problem: "has leading zeros (which some parsers read as octal)",
            suggestion: IpAddr::V4(ip),
        }),
        None => Err(IpError::Malformed),
    }
}

/// A dotted quad whose octets may carry leading zeros (`010.1.1.0`), read as decimal; only to
/// suggest the canonical form.
fn lenient_v4(text: &str) -> Option<Ipv4Addr> {
    let octets: Vec<u8> = text
        .split('.')
        .map(|part| {
            (!part.is_empty() && part.len() <= 3 && part.bytes().all(|b| b.is_ascii_digit()))
                .then(|| part.parse::<u8>().ok())
                .flatten()
        })
        .collect::<Option<_>>()?;
    let [a, b, c, d] = octets[..] else {
        return None;
    };
    Some(Ipv4Addr::new(a, b, c, d))
}

/// Parses `address/prefix` as the CRDs accept it (see [`parse_ip`]; the prefix length is
/// decimal without leading zeros) and insists on the network form (no host bits).
pub fn parse_cidr(text: &str) -> Result<IpNet, CidrError> {
    let Some((address, prefix)) = text.split_once('/') else {
        return Err(CidrError::Malformed);
    };
    let prefix_ok = !prefix.is_empty()
        && prefix.bytes().all(|b| b.is_ascii_digit())
        && (prefix == "0" || !prefix.starts_with('0'));
    let net = match (parse_ip(address), prefix_ok) {
        (Ok(ip), true) => {
            let len = prefix.parse::<u8>().map_err(|_| CidrError::Malformed)?;
            IpNet::new(ip, len).map_err(|_| CidrError::Malformed)?
        }
        (Err(IpError::Malformed), _) => return Err(CidrError::Malformed),
        (Ok(_) | Err(IpError::NotCanonical { .. }), _) => {
            return Err(not_canonical_cidr(text).unwrap_or(CidrError::Malformed));
        }
    };
    if net.trunc() != net {
        return Err(CidrError::HostBits(net.trunc()));
    }
    Ok(net)
}

/// What a lenient reading of `text` would give, as the error explaining why it is refused.
fn not_canonical_cidr(text: &str) -> Option<CidrError> {
    let trimmed = text.trim();
    let (address, prefix) = trimmed.split_once('/')?;
    let ip = match parse_ip(address) {
        Ok(ip) => ip,
        Err(IpError::NotCanonical { suggestion, .. }) => suggestion,
        Err(IpError::Malformed) => return None,
    };
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) || prefix.len() > 3 {
        return None;
    }
    let suggestion = IpNet::new(ip, prefix.parse().ok()?).ok()?.trunc();
    let problem = if trimmed != text {
        "has spaces around it"
    } else {
        "has leading zeros (which some parsers read as octal)"
    };
    Some(CidrError::NotCanonical {
        problem,
        suggestion,
    })
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
            "10.0.0.0/+8",
            "10.0.0.0/8/8",
            "2001:db8::%eth0/32",
        ] {
            assert_eq!(parse_cidr(bad), Err(CidrError::Malformed), "{bad}");
        }
    }

    #[test]
    fn cidrs_are_written_as_the_crds_accept_them() {
        let net = |s: &str| s.parse::<IpNet>().unwrap();
        for (text, problem, suggestion) in [
            (" 10.0.0.0/8", "has spaces around it", "10.0.0.0/8"),
            ("10.0.0.0/8 ", "has spaces around it", "10.0.0.0/8"),
            ("010.1.1.0/24", "has leading zeros", "10.1.1.0/24"),
            ("10.0.0.0/08", "has leading zeros", "10.0.0.0/8"),
            ("2001:db8::/032", "has leading zeros", "2001:db8::/32"),
        ] {
            match parse_cidr(text) {
                Err(CidrError::NotCanonical {
                    problem: p,
                    suggestion: s,
                }) => {
                    assert!(p.starts_with(problem), "{text}: {p}");
                    assert_eq!(s, net(suggestion), "{text}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        assert_eq!(parse_cidr("10.0.0.0/8"), Ok(net("10.0.0.0/8")));
        assert_eq!(parse_cidr("0.0.0.0/0"), Ok(net("0.0.0.0/0")));
        assert_eq!(parse_cidr("10.0.0.0/ 8"), Err(CidrError::Malformed));
    }

    #[test]
    fn ips_are_written_as_the_crds_accept_them() {
        assert_eq!(parse_ip("192.0.2.10"), Ok("192.0.2.10".parse().unwrap()));
        assert_eq!(parse_ip("2001:db8::a"), Ok("2001:db8::a".parse().unwrap()));
        for (text, problem) in [
            (" 192.0.2.10 ", "has spaces around it"),
            ("192.0.2.10\n", "has spaces around it"),
            ("192.0.2.010", "has leading zeros"),
            (" 192.000.2.10", "has leading zeros"),
        ] {
            match parse_ip(text) {
                Err(IpError::NotCanonical { problem: p, .. }) => {
                    assert!(p.starts_with(problem), "{text:?}: {p}")
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
        for bad in [
            "",
            "192.0.2",
            "192.0.2.256",
            "fe80::1%eth0",
            "192.0.2.10/32",
        ] {
            assert_eq!(parse_ip(bad), Err(IpError::Malformed), "{bad}");
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
