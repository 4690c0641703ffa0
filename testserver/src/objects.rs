//! Small helpers over JSON objects: metadata access, identity, and the spec/status split that
//! decides generation bumps and status-subresource isolation.

use serde_json::{Map, Value};

use crate::registry::ResourceType;

pub fn meta<'a>(object: &'a Value, field: &str) -> Option<&'a Value> {
    object.get("metadata").and_then(|m| m.get(field))
}

pub fn meta_str<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    meta(object, field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// `metadata` as a mutable map, created if missing or not a map.
pub fn meta_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object.is_object() {
        *object = Value::Object(Map::new());
    }
    let Some(map) = object.as_object_mut() else {
        unreachable!("made an object above")
    };
    let metadata = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !metadata.is_object() {
        *metadata = Value::Object(Map::new());
    }
    match metadata {
        Value::Object(m) => m,
        _ => unreachable!("made an object above"),
    }
}

pub fn set_meta(object: &mut Value, field: &str, value: Value) {
    meta_mut(object).insert(field.to_owned(), value);
}

pub fn finalizers(object: &Value) -> Vec<String> {
    meta(object, "finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// UIDs of the owners named in `metadata.ownerReferences`.
pub fn owner_uids(object: &Value) -> Vec<String> {
    meta(object, "ownerReferences")
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter_map(|r| r.get("uid"))
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The part of an object whose change bumps `metadata.generation`: everything but metadata,
/// and but status when status is a subresource.
pub fn generation_relevant(rt: &ResourceType, object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(map) = copy.as_object_mut() {
        map.remove("metadata");
        map.remove("apiVersion");
        map.remove("kind");
        if rt.has_status {
            map.remove("status");
        }
    }
    copy
}

/// Sets the object's `status` to `status` (or removes it when `None`).
pub fn replace_status(object: &mut Value, status: Option<&Value>) {
    if let Some(map) = object.as_object_mut() {
        match status {
            Some(s) => {
                map.insert("status".into(), s.clone());
            }
            None => {
                map.remove("status");
            }
        }
    }
}

/// The object as served through `version` (no conversion: only `apiVersion` changes).
pub fn as_version(rt: &ResourceType, version: &str, object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(map) = copy.as_object_mut() {
        map.insert("apiVersion".into(), Value::String(rt.api_version(version)));
        map.insert("kind".into(), Value::String(rt.kind.clone()));
    }
    copy
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use serde_json::json;

    #[test]
    fn generation_ignores_metadata_and_status_subresource() {
        let registry = Registry::with_builtins();
        let nodes = registry.lookup("", "v1", "nodes").expect("builtin");
        let cms = registry.lookup("", "v1", "configmaps").expect("builtin");
        let a = json!({"metadata": {"labels": {"x": "1"}}, "spec": {"a": 1}, "status": {"s": 1}});
        let b = json!({"metadata": {"labels": {"x": "2"}}, "spec": {"a": 1}, "status": {"s": 2}});
        assert_eq!(
            generation_relevant(nodes, &a),
            generation_relevant(nodes, &b)
        );
        assert_ne!(generation_relevant(cms, &a), generation_relevant(cms, &b));
    }

    #[test]
    fn metadata_accessors_tolerate_garbage() {
        let mut obj = json!("not an object");
        set_meta(&mut obj, "name", json!("x"));
        assert_eq!(meta_str(&obj, "name"), Some("x"));
        assert!(finalizers(&json!({"metadata": {"finalizers": "oops"}})).is_empty());
        assert_eq!(
            owner_uids(&json!({"metadata": {"ownerReferences": [{"uid": "u1"}, {}]}})),
            vec!["u1"]
        );
    }
}
