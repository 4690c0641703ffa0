//! The VIP Lease protocol's shared vocabulary (docs/lease-protocol.md): the Lease's name and
//! annotations and the protocol's durations. Both sides take them from here — the controller
//! (`controller::vip`) and the agent (`agent::lease`, `agent::lease_object`) — so neither
//! depends on the other.

use std::time::Duration;

use crate::model::names::{Shortened, shorten};

/// `D`: a holder not seen renewing for this long is dead (the Lease's `leaseDurationSeconds`).
pub const LEASE_DURATION: Duration = Duration::from_secs(3);
/// How often the holder renews.
pub const RENEW_INTERVAL: Duration = Duration::from_millis(500);
/// `L`: `valid_lft` and `preferred_lft` of the VIP, counted from the send of the latest
/// successful renewal; shorter than `D` by the safety margin.
pub const ADDRESS_LIFETIME: Duration = Duration::from_secs(2);

/// Annotation naming the node granted the VIP (written by the controller only).
pub const GRANT_ANNOTATION: &str = "egress-gateway.network.deckhouse.io/vip-grant";
/// Annotation naming the node whose agent has the VIP up and announced.
pub const READY_ANNOTATION: &str = "egress-gateway.network.deckhouse.io/vip-ready";
/// Annotation set by a takeover (the controller cleared the holder without its release): the
/// old holder's name. The next acquirer probes the LAN before it brings the VIP up and clears
/// the mark with its acquire.
pub const TAKEOVER_ANNOTATION: &str = "egress-gateway.network.deckhouse.io/vip-takeover";
/// Annotation carrying the gateway name (the Lease name may be hashed).
pub const GATEWAY_ANNOTATION: &str = "egress-gateway.network.deckhouse.io/gateway";
/// Annotation carrying the VIP.
pub const VIP_ANNOTATION: &str = "egress-gateway.network.deckhouse.io/vip";

const LEASE_PREFIX: &str = "egressc-vip-";
/// Prefix of a hashed Lease name. Verbatim names have `-` after `egressc-vip`, hashed ones `.`,
/// so no gateway name's verbatim Lease name equals another gateway's hashed one.
const HASHED_LEASE_PREFIX: &str = "egressc-vip.";
const MAX_NAME: usize = 253;

/// The VIP Lease name of `gateway` (see docs/lease-protocol.md): `egressc-vip-<gateway>`, or for
/// names too long for that, `egressc-vip.` and the name shortened by [`shorten`].
pub fn lease_name(gateway: &str) -> String {
    match shorten(gateway, MAX_NAME - LEASE_PREFIX.len(), '-') {
        Shortened::Verbatim(name) => format!("{LEASE_PREFIX}{name}"),
        Shortened::Hashed(name) => format!("{HASHED_LEASE_PREFIX}{name}"),
    }
}

#[cfg(test)]
mod lease_name_tests {
    use super::*;

    #[test]
    fn short_names_are_verbatim_and_long_ones_never_equal_a_verbatim_name() {
        assert_eq!(lease_name("gw"), "egressc-vip-gw");
        let longest_verbatim = "a".repeat(MAX_NAME - LEASE_PREFIX.len());
        assert_eq!(lease_name(&longest_verbatim).len(), MAX_NAME);
        let long = "g".repeat(MAX_NAME);
        let hashed = lease_name(&long);
        assert!(hashed.len() <= MAX_NAME, "{hashed}");
        assert!(hashed.starts_with("egressc-vip.g"), "{hashed}");
        // The gateway name that spells out the hashed form after `egressc-vip-` (a valid name
        // of at most 241 characters) keeps its own, different, verbatim name.
        let spelled = hashed["egressc-vip.".len()..].to_owned();
        assert!(spelled.len() <= MAX_NAME - LEASE_PREFIX.len());
        assert_ne!(lease_name(&spelled), hashed);
        assert_eq!(lease_name(&spelled), format!("egressc-vip-{spelled}"));
    }
}
