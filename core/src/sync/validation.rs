//! Validation of cluster objects with the same code as `egressc build`: each object is turned
//! into the loader's input (its JSON, named `EgressGateway/<name>`) and run through
//! [`pipeline::check`]. There is no second definition of valid.
//!
//! Checks across objects are reproduced by validating the objects involved together: a policy
//! with the gateway it names (reference and address-family checks), gateways sharing a VIP with
//! each other, oldest first, so the gateway that had the VIP first keeps it.

use serde_json::{Value, json};

use crate::diag::Diagnostic;
use crate::load::Limits;
use crate::model::catalog::{Gateway, Policy};
use crate::pipeline::{self, Input};
use crate::validate::Options;
use crate::validate::documents::{GATEWAY_KIND, POLICY_KIND};

/// Display name of an object in diagnostics: `EgressGateway/<name>`.
pub fn display_name(kind: &str, name: &str) -> String {
    format!("{kind}/{name}")
}

/// The loader input for a cluster object: only what a user wrote (apiVersion, kind, name,
/// labels, spec), so server-set metadata and status are not judged.
pub fn input_of(kind: &str, name: &str, object: &Value) -> Input {
    let mut metadata = json!({ "name": name });
    if let Some(labels) = object.pointer("/metadata/labels") {
        metadata["labels"] = labels.clone();
    }
    let mut doc = json!({
        "apiVersion": object.get("apiVersion").cloned().unwrap_or(Value::Null),
        "kind": kind,
        "metadata": metadata,
    });
    if let Some(spec) = object.get("spec") {
        doc["spec"] = spec.clone();
    }
    Input {
        name: display_name(kind, name),
        text: doc.to_string(),
    }
}

/// One line per error diagnostic of `file`: `spec.x.y: message (E012)`; empty when none.
pub fn summarize(diagnostics: &[Diagnostic], file: &str) -> String {
    diagnostics
        .iter()
        .filter(|d| d.is_error() && d.span.file == file)
        .map(|d| match &d.span.path {
            Some(path) => format!("{path}: {} ({})", d.message, d.code.as_str()),
            None => format!("{} ({})", d.message, d.code.as_str()),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Validates one gateway on its own.
pub fn gateway(name: &str, object: &Value, options: &Options) -> Result<Gateway, String> {
    let input = input_of(GATEWAY_KIND, name, object);
    let checked = pipeline::check(
        std::slice::from_ref(&input),
        None,
        options,
        &Limits::default(),
    );
    match checked
        .catalog
        .gateways
        .into_iter()
        .find(|g| g.name == name)
    {
        Some(gateway) => Ok(gateway),
        None => Err(summarize(&checked.diagnostics, &input.name)),
    }
}

/// Validates one policy together with the gateway it names (`None`: no such gateway object).
/// A policy whose gateway exists but is invalid is refused with a message saying so.
pub fn policy(
    name: &str,
    object: &Value,
    gateway: Option<(&str, &Value)>,
    options: &Options,
) -> Result<Policy, String> {
    let input = input_of(POLICY_KIND, name, object);
    let mut inputs = vec![input];
    if let Some((gateway_name, gateway_object)) = gateway {
        inputs.push(input_of(GATEWAY_KIND, gateway_name, gateway_object));
    }
    let checked = pipeline::check(&inputs, None, options, &Limits::default());
    if let Some(policy) = checked
        .catalog
        .policies
        .into_iter()
        .find(|p| p.name == name)
    {
        return Ok(policy);
    }
    let own = summarize(&checked.diagnostics, &inputs[0].name);
    match gateway {
        Some((gateway_name, _)) if own.is_empty() => Err(format!(
            "{GATEWAY_KIND} `{gateway_name}` is invalid; see its status"
        )),
        _ => Err(own),
    }
}

/// Among gateways that are each valid, those that lose a VIP shared with an older gateway:
/// `(name, message)`. `gateways` are `(name, object)` sorted oldest first.
pub fn shared_vip_losers(gateways: &[(&str, &Value)], options: &Options) -> Vec<(String, String)> {
    let inputs: Vec<Input> = gateways
        .iter()
        .map(|(name, object)| input_of(GATEWAY_KIND, name, object))
        .collect();
    let checked = pipeline::check(&inputs, None, options, &Limits::default());
    gateways
        .iter()
        .filter(|(name, _)| checked.catalog.gateway(name).is_none())
        .map(|(name, _)| {
            let file = display_name(GATEWAY_KIND, name);
            (name.to_string(), summarize(&checked.diagnostics, &file))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gw(ip: &str) -> Value {
        json!({
            "apiVersion": "network.deckhouse.io/v1alpha1",
            "kind": "EgressGateway",
            "metadata": {"name": "ignored", "uid": "u", "resourceVersion": "7",
                         "managedFields": [{"manager": "kubectl"}]},
            "spec": {"nodeSelector": {"role": "egress"},
                     "sourceIP": {"mode": "VirtualIPAddress",
                                  "virtualIPAddress": {"ip": ip}}},
            "status": {"readyNodes": 1}
        })
    }

    fn pol(gateway: &str, cidr: &str) -> Value {
        json!({
            "apiVersion": "network.deckhouse.io/v1alpha1",
            "kind": "EgressGatewayPolicy",
            "metadata": {"name": "p"},
            "spec": {"egressGatewayName": gateway, "destinationCIDRs": [cidr],
                     "selectors": [{"podSelector": {"matchLabels": {"app": "web"}}}]}
        })
    }

    #[test]
    fn a_valid_gateway_with_server_metadata_and_status_passes() {
        let gateway = gateway("gw", &gw("192.0.2.10"), &Options::default()).expect("valid");
        assert_eq!(gateway.name, "gw");
        assert!(gateway.needs_vip_agent());
    }

    #[test]
    fn an_invalid_gateway_reports_the_path_and_code() {
        let message = gateway("gw", &gw("not-an-ip"), &Options::default()).expect_err("invalid");
        assert!(
            message.contains("spec.sourceIP.virtualIPAddress.ip"),
            "{message}"
        );
        assert!(message.contains("(E"), "{message}");
    }

    #[test]
    fn a_policy_is_checked_against_its_gateway() {
        let options = Options::default();
        let good = gw("192.0.2.10");
        let ok = policy(
            "p",
            &pol("gw", "198.51.100.0/24"),
            Some(("gw", &good)),
            &options,
        )
        .expect("valid");
        assert_eq!(ok.gateway, "gw");
        let missing =
            policy("p", &pol("gw", "198.51.100.0/24"), None, &options).expect_err("no gateway");
        assert!(missing.contains("unknown EgressGateway `gw`"), "{missing}");
        let bad = gw("nope");
        let broken_gateway = policy(
            "p",
            &pol("gw", "198.51.100.0/24"),
            Some(("gw", &bad)),
            &options,
        )
        .expect_err("gateway invalid");
        assert!(broken_gateway.contains("is invalid"), "{broken_gateway}");
        let bad_cidr = policy(
            "p",
            &pol("gw", "198.51.100.1/24"),
            Some(("gw", &good)),
            &options,
        )
        .expect_err("host bits");
        assert!(bad_cidr.contains("destinationCIDRs"), "{bad_cidr}");
    }

    #[test]
    fn the_younger_gateway_loses_a_shared_vip() {
        let (old, young) = (gw("192.0.2.10"), gw("192.0.2.10"));
        let losers =
            shared_vip_losers(&[("b-old", &old), ("a-young", &young)], &Options::default());
        assert_eq!(losers.len(), 1);
        assert_eq!(losers[0].0, "a-young");
        assert!(losers[0].1.contains("already used"), "{}", losers[0].1);
    }
}
