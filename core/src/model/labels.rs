//! The node-label scheme. Failover is a label move: a compiled CiliumEgressGatewayPolicy selects
//! its gateway node through `active-for-<gateway>`, and `build`/`sync` only decide which node
//! carries it. Keys are compatible with Deckhouse's implementation.

use sha2::{Digest, Sha256};

/// Prefix (DNS subdomain part) shared by every label egressc writes on nodes.
pub const LABEL_PREFIX: &str = "egress-gateway.network.deckhouse.io";

/// Carried (value `""`) by every node that is eligible for at least one gateway.
pub const MEMBER_LABEL: &str = "egress-gateway.network.deckhouse.io/member";

/// `app.kubernetes.io/managed-by` value on everything egressc renders or writes.
pub const MANAGED_BY: &str = "egressc";

/// Kubernetes limits the name part of a label key to 63 characters.
const MAX_NAME_PART: usize = 63;
const ACTIVE_FOR: &str = "active-for-";
/// Characters of the gateway name kept in front of the hash when the name is too long.
const HASHED_KEEP: usize = MAX_NAME_PART - ACTIVE_FOR.len() - 1 - HASH_HEX;
/// Hex digits of sha256(gateway name) appended in the hashed fallback.
const HASH_HEX: usize = 10;

/// The longest gateway name whose `active-for-<name>` label key is used verbatim.
pub const MAX_VERBATIM_GATEWAY_NAME: usize = MAX_NAME_PART - ACTIVE_FOR.len();

/// The label key that marks the active node of `gateway`.
///
/// Names up to [`MAX_VERBATIM_GATEWAY_NAME`] (52) characters are used as they are, which keeps
/// keys identical to Deckhouse's. Longer names (legal: gateway names are DNS subdomains of up to
/// 253 characters) get a deterministic fallback: the first 41 characters, trailing `-`/`.`
/// trimmed, then `-` and the first 10 hex digits of sha256(name). The result is a valid label
/// name part of at most 63 characters and is unique unless two names share both the prefix and
/// 40 bits of hash.
pub fn active_for_label(gateway: &str) -> String {
    format!("{LABEL_PREFIX}/{}", active_for_name_part(gateway))
}

/// The name part (after the `/`) of [`active_for_label`].
pub fn active_for_name_part(gateway: &str) -> String {
    if gateway.len() <= MAX_VERBATIM_GATEWAY_NAME {
        return format!("{ACTIVE_FOR}{gateway}");
    }
    let digest = Sha256::digest(gateway.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    // Gateway names are validated as ASCII DNS subdomains before they get here; still, cut on a
    // char boundary so that no input can make this panic.
    let mut keep = HASHED_KEEP.min(gateway.len());
    while !gateway.is_char_boundary(keep) {
        keep -= 1;
    }
    let stem = gateway[..keep].trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    format!("{ACTIVE_FOR}{stem}-{}", &hex[..HASH_HEX])
}

/// Is `key` an `active-for-…` label written by egressc (for any gateway)?
pub fn is_active_for_label(key: &str) -> bool {
    key.strip_prefix(LABEL_PREFIX)
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|name| name.starts_with(ACTIVE_FOR))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_verbatim_and_deckhouse_compatible() {
        assert_eq!(
            active_for_label("myegressgw"),
            "egress-gateway.network.deckhouse.io/active-for-myegressgw"
        );
        let max = "a".repeat(MAX_VERBATIM_GATEWAY_NAME);
        assert_eq!(active_for_name_part(&max).len(), 63);
        assert!(active_for_name_part(&max).ends_with(&max));
    }

    #[test]
    fn long_names_hash_to_valid_distinct_keys() {
        let a = format!("{}-a", "x".repeat(60));
        let b = format!("{}-b", "x".repeat(60));
        let (ka, kb) = (active_for_name_part(&a), active_for_name_part(&b));
        assert_ne!(ka, kb);
        for k in [&ka, &kb] {
            assert!(k.len() <= 63, "{k}");
            assert!(k.chars().last().unwrap().is_ascii_alphanumeric());
            assert!(k.starts_with("active-for-xxxx"));
        }
        // Deterministic.
        assert_eq!(ka, active_for_name_part(&a));
        // A trailing separator at the cut is trimmed, so the key stays a valid label name.
        let dotted = format!("{}.{}", "y".repeat(40), "z".repeat(30));
        assert!(!active_for_name_part(&dotted).contains(".-"));
    }

    #[test]
    fn recognises_own_labels() {
        assert!(is_active_for_label(&active_for_label("gw")));
        assert!(!is_active_for_label(MEMBER_LABEL));
        assert!(!is_active_for_label("example.com/active-for-gw"));
    }
}
