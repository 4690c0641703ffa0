//! Labels that say where a rendered object came from: `app.kubernetes.io/managed-by: egressc`
//! on everything, plus the policy and gateway an object was compiled from.

use std::collections::BTreeMap;

use crate::model::labels::MANAGED_BY;
use crate::model::names::hashed;

/// `app.kubernetes.io/managed-by`.
pub const MANAGED_BY_KEY: &str = "app.kubernetes.io/managed-by";
/// Label naming the EgressGatewayPolicy an object was compiled from.
pub const POLICY_KEY: &str = "egress-gateway.network.deckhouse.io/policy";
/// Label naming the EgressGateway an object serves.
pub const GATEWAY_KEY: &str = "egress-gateway.network.deckhouse.io/gateway";

const MAX_LABEL_VALUE: usize = 63;

/// The managed-by label alone.
pub fn managed_by() -> BTreeMap<String, String> {
    BTreeMap::from([(MANAGED_BY_KEY.to_string(), MANAGED_BY.to_string())])
}

/// Labels of an object compiled from `policy` for `gateway`.
pub fn for_policy(policy: &str, gateway: &str) -> BTreeMap<String, String> {
    let mut labels = managed_by();
    labels.insert(POLICY_KEY.to_string(), label_value(policy));
    labels.insert(GATEWAY_KEY.to_string(), label_value(gateway));
    labels
}

/// `name` as a valid label value: verbatim when it is one, otherwise its leading valid
/// characters (at most 52), then `-` and 10 hex digits of sha256(name) ([`hashed`]), so that
/// long names (object names may have 253 characters) still identify their object.
pub fn label_value(name: &str) -> String {
    if is_valid_label_value(name) {
        return name.to_string();
    }
    let label_chars: String = name.chars().filter(|c| is_label_char(*c)).collect();
    // The stem must also start with a letter or digit; with no stem, only the hash is left.
    hashed(&label_chars, name, MAX_LABEL_VALUE, '-')
        .trim_start_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

fn is_label_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// Kubernetes label value syntax: empty, or at most 63 of `[A-Za-z0-9_.-]`, alphanumeric at both
/// ends.
pub fn is_valid_label_value(value: &str) -> bool {
    value.is_empty()
        || (value.len() <= MAX_LABEL_VALUE
            && value.chars().all(is_label_char)
            && value.starts_with(|c: char| c.is_ascii_alphanumeric())
            && value.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_verbatim_long_names_hashed() {
        assert_eq!(label_value("web"), "web");
        let long = format!("{}.example", "a".repeat(70));
        let value = label_value(&long);
        assert!(is_valid_label_value(&value), "{value}");
        assert_ne!(value, label_value(&format!("{}.examplf", "a".repeat(70))));
        assert!(is_valid_label_value(&label_value("---")));
        assert!(is_valid_label_value(&label_value("ä: x")));
    }
}
