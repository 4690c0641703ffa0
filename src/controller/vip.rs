//! The controller's side of the VIP Lease handshake (docs/lease-protocol.md, "Controller
//! rules"): from the observed Lease and election's desired node, the one write to make next
//! and whether the desired node has confirmed the VIP, so the label may move to it.

use sha2::{Digest, Sha256};

use super::plan::VipWrite;
use super::time::{Instant, Timing};

/// Annotation naming the node granted the VIP (written by the controller only).
pub const GRANT_ANNOTATION: &str = "egress-gateway.network.deckhouse.io/vip-grant";
/// Annotation naming the node whose agent has the VIP up and announced.
pub const READY_ANNOTATION: &str = "egress-gateway.network.deckhouse.io/vip-ready";
/// Annotation carrying the gateway name (the Lease name may be hashed).
pub const GATEWAY_ANNOTATION: &str = "egress-gateway.network.deckhouse.io/gateway";
/// Annotation carrying the VIP.
pub const VIP_ANNOTATION: &str = "egress-gateway.network.deckhouse.io/vip";

const LEASE_PREFIX: &str = "egressc-vip-";
/// Prefix of a hashed Lease name. Verbatim names have `-` after `egressc-vip`, hashed ones `.`,
/// so no gateway name's verbatim Lease name equals another gateway's hashed one.
const HASHED_LEASE_PREFIX: &str = "egressc-vip.";
const MAX_NAME: usize = 253;
const HASH_HEX: usize = 10;

/// The VIP Lease name of `gateway` (see docs/lease-protocol.md).
pub fn lease_name(gateway: &str) -> String {
    if LEASE_PREFIX.len() + gateway.len() <= MAX_NAME {
        return format!("{LEASE_PREFIX}{gateway}");
    }
    let digest = Sha256::digest(gateway.as_bytes());
    let hex: String = digest
        .iter()
        .take(HASH_HEX / 2)
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut keep = (MAX_NAME - HASHED_LEASE_PREFIX.len() - 1 - HASH_HEX).min(gateway.len());
    while !gateway.is_char_boundary(keep) {
        keep -= 1;
    }
    let stem = gateway[..keep].trim_end_matches(['-', '.']);
    format!("{HASHED_LEASE_PREFIX}{stem}-{hex}")
}

/// What the controller reads from a VIP Lease. Empty strings in the object are `None` here.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VipLeaseObservation {
    /// `metadata.resourceVersion`; every write is conditioned on it.
    pub resource_version: String,
    /// The `vip-grant` annotation.
    pub grant: Option<String>,
    /// `spec.holderIdentity`.
    pub holder: Option<String>,
    /// The `vip-ready` annotation.
    pub ready: Option<String>,
    /// `spec.renewTime`, opaque: only compared for change.
    pub renew_time: Option<String>,
}

/// An observed VIP Lease and when its holder was last seen alive.
#[derive(Clone, Debug)]
pub(super) struct VipLease {
    pub observed: VipLeaseObservation,
    /// When `holder` or `renew_time` was last seen to change (or first seen).
    pub last_change: Instant,
}

impl VipLease {
    pub fn observe(
        previous: Option<VipLease>,
        observed: VipLeaseObservation,
        now: Instant,
    ) -> Self {
        let last_change = match previous {
            Some(prev)
                if prev.observed.holder == observed.holder
                    && prev.observed.renew_time == observed.renew_time =>
            {
                prev.last_change
            }
            _ => now,
        };
        VipLease {
            observed,
            last_change,
        }
    }

    fn holder_alive(&self, now: Instant, timing: &Timing) -> bool {
        now < self.last_change + timing.vip_lease_duration
    }
}

/// The handshake's verdict for one gateway at one instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct VipStep {
    pub write: Option<VipWrite>,
    /// `grant == holder == ready == desired` and the holder is alive: the label may be on it.
    pub confirmed: bool,
    /// When time alone changes the verdict (a holder becoming dead).
    pub wakeup: Option<Instant>,
}

/// Decides the next VIP Lease write for `gateway` towards `desired`.
pub(super) fn step(
    gateway: &str,
    vip: &str,
    desired: Option<&str>,
    lease: Option<&VipLease>,
    now: Instant,
    timing: &Timing,
) -> VipStep {
    let Some(lease) = lease else {
        let create = VipWrite::Create {
            gateway: gateway.to_owned(),
            lease: lease_name(gateway),
            vip: vip.to_owned(),
            duration_seconds: timing.vip_lease_duration.as_secs().max(1),
        };
        return VipStep {
            write: Some(create),
            confirmed: false,
            wakeup: None,
        };
    };
    let seen = &lease.observed;
    let alive = lease.holder_alive(now, timing);
    let death =
        (seen.holder.is_some() && alive).then(|| lease.last_change + timing.vip_lease_duration);
    let conditional = |write: fn(String, String, String) -> VipWrite| {
        Some(write(
            gateway.to_owned(),
            lease_name(gateway),
            seen.resource_version.clone(),
        ))
    };
    let withdraw = |g, l, rv| VipWrite::Withdraw {
        gateway: g,
        lease: l,
        resource_version: rv,
    };
    let write = match (desired, seen.grant.as_deref()) {
        (None, None) => None,
        (None, Some(_)) => conditional(withdraw),
        (Some(target), Some(granted)) if granted != target => conditional(withdraw),
        (Some(_), Some(_)) => None,
        (Some(target), None) => match seen.holder.as_deref() {
            Some(holder) if holder != target && alive => None,
            holder => Some(VipWrite::Grant {
                gateway: gateway.to_owned(),
                lease: lease_name(gateway),
                resource_version: seen.resource_version.clone(),
                node: target.to_owned(),
                takeover: holder.is_some_and(|h| h != target),
            }),
        },
    };
    let confirmed = desired.is_some_and(|target| {
        seen.grant.as_deref() == Some(target)
            && seen.holder.as_deref() == Some(target)
            && seen.ready.as_deref() == Some(target)
            && alive
    });
    VipStep {
        write,
        confirmed,
        wakeup: death,
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
