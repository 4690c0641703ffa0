//! The CustomResourceDefinitions of `EgressGateway` and `EgressGatewayPolicy`, generated from the
//! `model::api` types and adjusted to be field-compatible with Deckhouse's CRDs (see `compat`),
//! plus JSON Schemas of both kinds for editors (yaml-language-server, see `json_schema`).
//!
//! Pure: returns text; `schemas/` in the repository holds the committed output, and a test fails
//! when it is stale.

mod compat;
mod json_schema;

use kube::CustomResourceExt;
use serde_json::Value;

use crate::model::api::{EgressGateway, EgressGatewayPolicy};
use crate::render::yaml_block::to_yaml;

/// A generated file: its name under `schemas/` and its content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaFile {
    /// File name, e.g. `egressgateways.network.deckhouse.io.yaml`.
    pub name: String,
    /// File content.
    pub content: String,
}

/// The EgressGateway CRD as a JSON value.
pub fn egress_gateway_crd() -> Value {
    let mut crd = crd_value(EgressGateway::crd());
    compat::egress_gateway(&mut crd);
    crd
}

/// The EgressGatewayPolicy CRD as a JSON value.
pub fn egress_gateway_policy_crd() -> Value {
    let mut crd = crd_value(EgressGatewayPolicy::crd());
    compat::egress_gateway_policy(&mut crd);
    crd
}

/// Both CRDs as one YAML stream (what `egressc crds` prints).
pub fn render_crds() -> String {
    [egress_gateway_crd(), egress_gateway_policy_crd()]
        .iter()
        .map(|crd| format!("---\n{}", to_yaml(crd)))
        .collect()
}

/// Every file of `schemas/`: each CRD, and a JSON Schema per kind.
pub fn schema_files() -> Vec<SchemaFile> {
    let mut files = Vec::new();
    for (crd, json_name) in [
        (egress_gateway_crd(), "egressgateway.json"),
        (egress_gateway_policy_crd(), "egressgatewaypolicy.json"),
    ] {
        let crd_name = crd["metadata"]["name"]
            .as_str()
            .unwrap_or("unnamed")
            .to_string();
        files.push(SchemaFile {
            name: format!("{crd_name}.yaml"),
            content: format!("---\n{}", to_yaml(&crd)),
        });
        let schema = json_schema::from_crd(&crd);
        files.push(SchemaFile {
            name: json_name.to_string(),
            // Serialising a `Value` cannot fail; an empty object is never written in practice.
            content: serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n",
        });
    }
    files
}

/// The derive's CRD as plain JSON, which the compatibility patches edit.
fn crd_value<T: serde::Serialize>(crd: T) -> Value {
    serde_json::to_value(crd).unwrap_or(Value::Null)
}

/// The node at `path` below `value`, created (as an empty object) where missing, so patches never
/// fail; a patch aimed at a field the types no longer have shows up as a non-structural schema
/// in the tests.
fn node<'a>(value: &'a mut Value, path: &[&str]) -> &'a mut Value {
    let mut current = value;
    for key in path {
        if !current.is_object() {
            *current = Value::Object(serde_json::Map::new());
        }
        current = match current {
            Value::Object(map) => map
                .entry(key.to_string())
                .or_insert(Value::Object(serde_json::Map::new())),
            // Not reached: `current` was made an object above.
            other => other,
        };
    }
    current
}

/// The `openAPIV3Schema` of the first (only) version of `crd`.
pub fn open_api_schema(crd: &Value) -> Option<&Value> {
    crd.pointer("/spec/versions/0/schema/openAPIV3Schema")
}
