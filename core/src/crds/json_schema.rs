//! JSON Schemas for editors (yaml-language-server `# yaml-language-server: $schema=...`), made
//! from a CRD's `openAPIV3Schema`: `apiVersion`, `kind` and `metadata` added, OpenAPI's
//! `nullable` turned into a JSON Schema `null` type, and unknown fields under `spec` flagged
//! (the API server would silently prune them).

use serde_json::{Map, Value, json};

use super::open_api_schema;

/// The editor schema of `crd`.
pub fn from_crd(crd: &Value) -> Value {
    let group = crd["spec"]["group"].as_str().unwrap_or_default();
    let version = crd
        .pointer("/spec/versions/0/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = crd["spec"]["names"]["kind"].as_str().unwrap_or_default();
    let mut schema = open_api_schema(crd).cloned().unwrap_or_else(|| json!({}));
    convert_nullable(&mut schema);
    if let Some(spec) = schema.pointer_mut("/properties/spec") {
        close_objects(spec);
    }
    let properties = schema
        .as_object_mut()
        .map(|root| root.entry("properties").or_insert_with(|| json!({})));
    if let Some(Value::Object(properties)) = properties {
        properties.insert(
            "apiVersion".into(),
            json!({"type": "string", "enum": [format!("{group}/{version}")]}),
        );
        properties.insert("kind".into(), json!({"type": "string", "enum": [kind]}));
        properties.insert(
            "metadata".into(),
            json!({
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "annotations": {"type": "object", "additionalProperties": {"type": "string"}}
                }
            }),
        );
    }
    let mut required: Vec<Value> = vec![json!("apiVersion"), json!("kind"), json!("metadata")];
    if let Some(Value::Array(existing)) = schema.get("required") {
        required.extend(existing.iter().cloned());
    }
    schema["required"] = Value::Array(required);
    schema["$schema"] = json!("http://json-schema.org/draft-07/schema#");
    // A URN: no host serves these files; editors find them by the modeline's relative path.
    schema["$id"] = json!(format!("urn:egressc:schema:{group}:{version}:{kind}"));
    schema["title"] = json!(format!("{kind} ({group}/{version})"));
    schema
}

/// `nullable: true` (OpenAPI 3.0) → `type: [<type>, "null"]` (JSON Schema).
fn convert_nullable(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.remove("nullable") == Some(Value::Bool(true))
                && let Some(Value::String(ty)) = map.get("type").cloned()
            {
                map.insert("type".into(), json!([ty, "null"]));
            }
            map.values_mut().for_each(convert_nullable);
        }
        Value::Array(items) => items.iter_mut().for_each(convert_nullable),
        _ => {}
    }
}

/// `additionalProperties: false` on every object schema that lists its properties, so that a
/// misspelt field is an editor error. Branches of `oneOf` only restate fields and stay open.
fn close_objects(value: &mut Value) {
    let Value::Object(map) = value else {
        return;
    };
    if map.contains_key("properties") && !map.contains_key("additionalProperties") {
        map.insert("additionalProperties".into(), Value::Bool(false));
    }
    for (key, child) in map.iter_mut() {
        match key.as_str() {
            "properties" => child
                .as_object_mut()
                .into_iter()
                .flat_map(Map::values_mut)
                .for_each(close_objects),
            "items" | "additionalProperties" => close_objects(child),
            _ => {}
        }
    }
}
