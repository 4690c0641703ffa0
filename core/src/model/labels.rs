//! The node-label scheme. Failover is a label move: a compiled CiliumEgressGatewayPolicy selects
//! its gateway node through `active-for-<gateway>`, and `build`/`sync` only decide which node
//! carries it. Keys are compatible with Deckhouse's implementation.

use super::names::shorten;

/// Prefix (DNS subdomain part) shared by every label egressc writes on nodes.
pub const LABEL_PREFIX: &str = "egress-gateway.network.deckhouse.io";

/// Carried (value `""`) by every node that is eligible for at least one gateway.
pub const MEMBER_LABEL: &str = "egress-gateway.network.deckhouse.io/member";

/// `app.kubernetes.io/managed-by` value on everything egressc renders or writes.
pub const MANAGED_BY: &str = "egressc";

/// Kubernetes limits the name part of a label key to 63 characters.
const MAX_NAME_PART: usize = 63;
const ACTIVE_FOR: &str = "active-for-";
/// Between stem and hash in the hashed fallback: a character label names allow and gateway
/// names cannot contain.
const HASHED_SEPARATOR: char = '_';

/// The longest gateway name whose `active-for-<name>` label key is used verbatim.
pub const MAX_VERBATIM_GATEWAY_NAME: usize = MAX_NAME_PART - ACTIVE_FOR.len();

/// The label key that marks the active node of `gateway`.
///
/// Names up to [`MAX_VERBATIM_GATEWAY_NAME`] (52) characters are used as they are, which keeps
/// keys identical to Deckhouse's. Longer names (legal: gateway names are DNS subdomains of up to
/// 253 characters) get a deterministic fallback ([`shorten`]): the first 41 characters, trailing
/// `-`/`.` trimmed, then `_` and the first 10 hex digits of sha256(name). The result is a valid
/// label name part of at most 63 characters.
///
/// The `_` is what keeps keys apart: label name parts may contain it, gateway names (DNS
/// subdomains) never do, so no verbatim key equals a hashed one. (With `-`, the 52-character
/// name `<41 characters>-<10 hex>` would get the key of a longer name.) Two hashed keys are equal
/// only when both names share the 41 characters and 40 bits of hash; validation refuses that
/// pair (E041) rather than letting both policies select both nodes.
pub fn active_for_label(gateway: &str) -> String {
    format!("{LABEL_PREFIX}/{}", active_for_name_part(gateway))
}

/// The name part (after the `/`) of [`active_for_label`].
pub fn active_for_name_part(gateway: &str) -> String {
    let name = shorten(gateway, MAX_VERBATIM_GATEWAY_NAME, HASHED_SEPARATOR);
    format!("{ACTIVE_FOR}{name}")
}

/// Is `key` a node label egressc owns (`member` or any `active-for-…`)? The one answer to
/// "may egressc write or remove this label": every other label on a Node or CiliumNode is left
/// alone.
pub fn is_egressc_node_label(key: &str) -> bool {
    key == MEMBER_LABEL || is_active_for_label(key)
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
        assert!(!active_for_name_part(&dotted).contains("._"));
    }

    /// Is `part` a valid label name part: at most 63 of `[A-Za-z0-9_.-]`, alphanumeric at both
    /// ends? (Written out here, independently of the implementation.)
    fn valid_name_part(part: &str) -> bool {
        part.len() <= 63
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && part.starts_with(|c: char| c.is_ascii_alphanumeric())
            && part.ends_with(|c: char| c.is_ascii_alphanumeric())
    }

    #[test]
    fn a_hashed_key_never_equals_a_verbatim_one() {
        // The pair from the review: 63 `g`s hash to a key that the 52-character literal name
        // `<41 g>-<hash>` produced verbatim before the separator became `_`.
        let long = "g".repeat(63);
        let hashed = active_for_name_part(&long);
        let hash = &hashed[hashed.len() - crate::model::names::HASH_HEX..];
        let literal = format!("{}-{hash}", "g".repeat(41));
        assert_eq!(literal.len(), MAX_VERBATIM_GATEWAY_NAME);
        assert_ne!(active_for_name_part(&literal), hashed);
        assert_eq!(hashed, format!("active-for-{}_{hash}", "g".repeat(41)));
        assert!(valid_name_part(&hashed), "{hashed}");
        // Every verbatim key comes from a DNS subdomain, which has no `_`; every hashed key has.
        for name in [
            long.as_str(),
            &"a.b-c".repeat(20),
            &format!("{}-.x", "q".repeat(60)),
        ] {
            let part = active_for_name_part(name);
            assert!(part.contains('_') && valid_name_part(&part), "{part}");
        }
        assert!(!active_for_name_part(&literal).contains('_'));
    }

    #[test]
    fn recognises_own_labels() {
        assert!(is_active_for_label(&active_for_label("gw")));
        assert!(!is_active_for_label(MEMBER_LABEL));
        assert!(!is_active_for_label("example.com/active-for-gw"));
    }
}
