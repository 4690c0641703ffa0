//! Adjustments that make the derived CRDs field-compatible with Deckhouse's
//! (`ee/se-plus/modules/021-cni-cilium/crds/`): the same fields and the same `required`, so every
//! document Deckhouse accepts is accepted here, and stricter only where no meaningful document
//! is lost — IP, CIDR, interface-name and object-name syntax and selector operators.

use serde_json::{Value, json};

use super::node;

/// DNS-1123 subdomain: what EgressGateway names are.
const DNS_SUBDOMAIN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/// A Linux interface name: 1 to 15 bytes, no `/`, `:` or whitespace (kernel `dev_valid_name`).
const INTERFACE_NAME: &str = r"^[^/:\s]{1,15}$";
/// An IPv4 or IPv6 CIDR (prefix length in range, no leading zeros in IPv4 octets or prefix
/// lengths, no spaces: what `egressc check` accepts). `format: cidr` makes the API server parse
/// it exactly; the pattern gives editors and other validators the same shape.
const CIDR: &str = r"^(((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])/([0-9]|[12][0-9]|3[0-2])|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*/([0-9]|[1-9][0-9]|1[01][0-9]|12[0-8]))$";

/// EgressGateway: Deckhouse requires neither `spec` nor `spec.sourceIP`, and requires the block
/// of each mode (and its field) only through a `oneOf` on `mode`.
pub fn egress_gateway(crd: &mut Value) {
    list_kind(crd);
    let Some(schema) = crd.pointer_mut("/spec/versions/0/schema/openAPIV3Schema") else {
        return;
    };
    document_root(schema);
    remove(schema, "required");
    let spec = node(schema, &["properties", "spec"]);
    remove(spec, "required");
    let source = node(spec, &["properties", "sourceIP"]);
    let vip = node(source, &["properties", "virtualIPAddress"]);
    remove(vip, "required");
    *node(vip, &["properties", "ip", "anyOf"]) = json!([{"format": "ipv4"}, {"format": "ipv6"}]);
    let interfaces = node(vip, &["properties", "interfaces"]);
    interfaces["default"] = json!([]);
    interfaces["items"]["pattern"] = json!(INTERFACE_NAME);
    let primary = node(
        source,
        &["properties", "primaryIPFromEgressGatewayNodeInterface"],
    );
    remove(primary, "required");
    node(primary, &["properties", "interfaceName"])["pattern"] = json!(INTERFACE_NAME);
    source["oneOf"] = json!([
        {
            "required": ["virtualIPAddress"],
            "properties": {
                "mode": {"enum": ["VirtualIPAddress"]},
                "virtualIPAddress": {"required": ["ip"]}
            }
        },
        {
            "required": ["primaryIPFromEgressGatewayNodeInterface"],
            "properties": {
                "mode": {"enum": ["PrimaryIPFromEgressGatewayNodeInterface"]},
                "primaryIPFromEgressGatewayNodeInterface": {"required": ["interfaceName"]}
            }
        }
    ]);
}

/// EgressGatewayPolicy: same `required` as the derive (`spec`, `egressGatewayName`), no
/// defaults Deckhouse does not have, stricter item syntax.
pub fn egress_gateway_policy(crd: &mut Value) {
    list_kind(crd);
    let Some(schema) = crd.pointer_mut("/spec/versions/0/schema/openAPIV3Schema") else {
        return;
    };
    document_root(schema);
    let spec = node(schema, &["properties", "spec"]);
    for list in ["destinationCIDRs", "excludedCIDRs"] {
        let field = node(spec, &["properties", list]);
        remove(field, "default");
        field["items"]["format"] = json!("cidr");
        field["items"]["pattern"] = json!(CIDR);
    }
    let name = node(spec, &["properties", "egressGatewayName"]);
    name["pattern"] = json!(DNS_SUBDOMAIN);
    name["maxLength"] = json!(253);
    let selectors = node(spec, &["properties", "selectors"]);
    remove(selectors, "default");
    let pod_selector = node(selectors, &["items", "properties", "podSelector"]);
    pod_selector["x-kubernetes-map-type"] = json!("atomic");
    node(
        pod_selector,
        &[
            "properties",
            "matchExpressions",
            "items",
            "properties",
            "operator",
        ],
    )["enum"] = json!(["In", "NotIn", "Exists", "DoesNotExist"]);
}

/// `spec.names.listKind` (`<Kind>List`), which Deckhouse declares and the derive leaves to the
/// API server's default.
fn list_kind(crd: &mut Value) {
    let names = node(crd, &["spec", "names"]);
    if let Some(kind) = names["kind"].as_str() {
        names["listKind"] = json!(format!("{kind}List"));
    }
}

/// Replaces the derive's "Auto-generated derived type" text with the spec type's own doc and
/// drops the Rust type name used as `title`.
fn document_root(schema: &mut Value) {
    let description = schema
        .pointer("/properties/spec/description")
        .cloned()
        .unwrap_or(Value::Null);
    if !description.is_null() {
        schema["description"] = description;
    }
    remove(schema, "title");
}

fn remove(value: &mut Value, key: &str) {
    if let Some(map) = value.as_object_mut() {
        map.remove(key);
    }
}
