//! The Cilium release egressc compiles for (`--cilium-version`). What a release can express
//! differs: IPv6 destination CIDRs arrived in 1.18, IPv6 egress IPs in 1.20. Validation and
//! rendering both ask this type rather than comparing version strings.

use std::fmt;
use std::str::FromStr;

/// A supported Cilium minor release (1.x). Ordered: later releases compare greater.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CiliumVersion {
    minor: u8,
}

impl CiliumVersion {
    /// The oldest supported release; the default because it is the strictest.
    pub const OLDEST: CiliumVersion = CiliumVersion { minor: 17 };
    /// The newest supported release.
    pub const NEWEST: CiliumVersion = CiliumVersion { minor: 20 };

    /// The minor number (the `x` of 1.x).
    pub fn minor(self) -> u8 {
        self.minor
    }

    /// IPv6 `destinationCIDRs`/`excludedCIDRs` are accepted (1.18+).
    pub fn supports_ipv6_destinations(self) -> bool {
        self.minor >= 18
    }

    /// An IPv6 egress IP (VIP) is accepted (1.20+).
    pub fn supports_ipv6_egress_ip(self) -> bool {
        self.minor >= 20
    }
}

impl Default for CiliumVersion {
    fn default() -> Self {
        CiliumVersion::OLDEST
    }
}

impl fmt::Display for CiliumVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "1.{}", self.minor)
    }
}

/// Why a `--cilium-version` value was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unsupported Cilium version `{0}`: expected one of 1.17, 1.18, 1.19, 1.20 (a patch release such as 1.17.6 is accepted too)"
)]
pub struct UnsupportedCiliumVersion(pub String);

impl FromStr for CiliumVersion {
    type Err = UnsupportedCiliumVersion;

    /// Accepts `1.N` or `1.N.P` (optionally with a leading `v`) for a supported `N`. Numbers
    /// are plain decimals as Cilium writes them: no leading zeros (`1.020` is not 1.20), no
    /// signs, no spaces.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let refuse = || UnsupportedCiliumVersion(s.to_owned());
        let number = |part: &str| {
            !part.is_empty()
                && part.bytes().all(|b| b.is_ascii_digit())
                && (part == "0" || !part.starts_with('0'))
        };
        let text = s.strip_prefix('v').unwrap_or(s);
        let mut parts = text.split('.');
        let (Some("1"), Some(minor)) = (parts.next(), parts.next()) else {
            return Err(refuse());
        };
        let patch_ok = match (parts.next(), parts.next()) {
            (None, None) => true,
            (Some(patch), None) => number(patch),
            _ => false,
        };
        if !number(minor) {
            return Err(refuse());
        }
        let minor: u8 = minor.parse().map_err(|_| refuse())?;
        let version = CiliumVersion { minor };
        if !patch_ok || version < Self::OLDEST || version > Self::NEWEST {
            return Err(refuse());
        }
        Ok(version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_supported_releases_only() {
        for (text, minor) in [
            ("1.17", 17),
            ("1.18", 18),
            ("v1.19", 19),
            ("1.20", 20),
            ("1.17.6", 17),
        ] {
            assert_eq!(
                text.parse::<CiliumVersion>().map(|v| v.minor()),
                Ok(minor),
                "{text}"
            );
        }
        for text in [
            "1.16", "1.21", "2.0", "1", "1.x", "", "1.17.", "1.17.6.1", "1.+17", "1.020", "1.017",
            "01.17", "1.17.06", " 1.17", "1.17 ", "v 1.17",
        ] {
            assert!(text.parse::<CiliumVersion>().is_err(), "{text}");
        }
    }

    #[test]
    fn features_follow_the_release() {
        let v = |s: &str| s.parse::<CiliumVersion>().unwrap();
        assert!(!v("1.17").supports_ipv6_destinations());
        assert!(v("1.18").supports_ipv6_destinations());
        assert!(!v("1.19").supports_ipv6_egress_ip());
        assert!(v("1.20").supports_ipv6_egress_ip());
        assert!(v("1.17") < v("1.20"));
        assert_eq!(CiliumVersion::default().to_string(), "1.17");
    }
}
