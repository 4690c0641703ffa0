//! Patch bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge patch,
//! plus the structural merge server-side apply shares with strategic merge.

use serde_json::{Map, Value};

use crate::fieldpath::{ListType, ListTypes, key_element};

/// The patch formats the server understands, by request content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    Json,
    Merge,
    Strategic,
    Apply,
}

impl PatchKind {
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let media = content_type.split(';').next().unwrap_or("").trim();
        match media {
            "application/json-patch+json" => Some(Self::Json),
            "application/merge-patch+json" => Some(Self::Merge),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// Applies an RFC 6902 patch; the error text is the apiserver-style reason.
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), String> {
    let operations: json_patch::Patch =
        serde_json::from_value(patch.clone()).map_err(|e| e.to_string())?;
    json_patch::patch(target, &operations).map_err(|e| e.to_string())
}

/// Applies an RFC 7386 merge patch (null deletes, lists replace).
pub fn merge_patch(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// Applies a strategic merge patch: like merge patch, but keyed lists merge item by item and
/// `$patch`, `$setElementOrder/…`, `$retainKeys` and `$deleteFromPrimitiveList/…` are honoured.
pub fn strategic_merge(target: &mut Value, patch: &Value, types: &ListTypes) {
    merge_structured(target, patch, types, true);
}

/// Merges `patch` into `target` by structure. With `directives` (strategic merge) null deletes
/// and `$` directives apply; without (server-side apply) nulls are ignored.
pub fn merge_structured(target: &mut Value, patch: &Value, types: &ListTypes, directives: bool) {
    let mut names = Vec::new();
    merge_at(target, patch, types, directives, &mut names);
}

fn merge_at(
    target: &mut Value,
    patch: &Value,
    types: &ListTypes,
    directives: bool,
    names: &mut Vec<String>,
) {
    let Some(patch_map) = patch.as_object() else {
        *target = clean(patch, directives);
        return;
    };
    if directives && patch_map.get("$patch").and_then(Value::as_str) == Some("replace") {
        *target = clean(patch, directives);
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    for (name, value) in patch_map {
        if name.starts_with('$') {
            if directives && let Some(field) = name.strip_prefix("$deleteFromPrimitiveList/") {
                delete_from_primitive_list(target, field, value);
            }
            continue;
        }
        let Some(map) = target.as_object_mut() else {
            return;
        };
        if value.is_null() {
            if directives {
                map.remove(name);
            }
            continue;
        }
        names.push(name.clone());
        match (map.get_mut(name), value) {
            (Some(existing @ Value::Array(_)), Value::Array(items)) => {
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                let list_type = types.list_type(&refs);
                merge_list(existing, items, list_type, types, directives, names);
            }
            (Some(existing @ Value::Object(_)), Value::Object(_)) => {
                merge_at(existing, value, types, directives, names)
            }
            _ => {
                map.insert(name.clone(), clean(value, directives));
            }
        }
        names.pop();
    }
}

fn merge_list(
    target: &mut Value,
    items: &[Value],
    list_type: ListType,
    types: &ListTypes,
    directives: bool,
    names: &mut Vec<String>,
) {
    let Some(existing) = target.as_array_mut() else {
        return;
    };
    match list_type {
        ListType::Atomic => *target = clean(&Value::Array(items.to_vec()), directives),
        ListType::Set => {
            for item in items {
                if !existing.contains(item) {
                    existing.push(item.clone());
                }
            }
        }
        ListType::Map(keys) => {
            names.push("[]".into());
            for item in items {
                let Some(identity) = key_element(item, &keys) else {
                    existing.push(clean(item, directives));
                    continue;
                };
                let position = existing
                    .iter()
                    .position(|e| key_element(e, &keys).as_ref() == Some(&identity));
                let delete =
                    directives && item.get("$patch").and_then(Value::as_str) == Some("delete");
                match (position, delete) {
                    (Some(index), true) => {
                        existing.remove(index);
                    }
                    (None, true) => {}
                    (Some(index), false) => {
                        merge_at(&mut existing[index], item, types, directives, names)
                    }
                    (None, false) => existing.push(clean(item, directives)),
                }
            }
            names.pop();
        }
    }
}

fn delete_from_primitive_list(target: &mut Value, field: &str, values: &Value) {
    let (Some(list), Some(values)) = (
        target.get_mut(field).and_then(Value::as_array_mut),
        values.as_array(),
    ) else {
        return;
    };
    list.retain(|item| !values.contains(item));
}

/// Copies a patch value, dropping directives and (for strategic merge) nulls.
fn clean(value: &Value, directives: bool) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, v)| !(k.starts_with('$') || (directives && v.is_null())))
                .map(|(k, v)| (k.clone(), clean(v, directives)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|i| clean(i, directives)).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_deletes_with_null_and_replaces_lists() {
        let mut obj = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"l": [1, 2]}});
        merge_patch(
            &mut obj,
            &json!({"metadata": {"labels": {"a": null, "c": "3"}}, "spec": {"l": [3]}}),
        );
        assert_eq!(
            obj,
            json!({"metadata": {"labels": {"b": "2", "c": "3"}}, "spec": {"l": [3]}})
        );
    }

    #[test]
    fn json_patch_applies_operations_and_reports_failures() {
        let mut obj = json!({"spec": {"unschedulable": false}});
        json_patch(
            &mut obj,
            &json!([{"op": "replace", "path": "/spec/unschedulable", "value": true}]),
        )
        .expect("ok");
        assert_eq!(obj["spec"]["unschedulable"], json!(true));
        let err = json_patch(
            &mut obj,
            &json!([{"op": "test", "path": "/spec/unschedulable", "value": false}]),
        );
        assert!(err.is_err());
        assert_eq!(
            obj["spec"]["unschedulable"],
            json!(true),
            "failed patch leaves the object alone"
        );
    }

    #[test]
    fn strategic_merge_merges_conditions_by_type() {
        let types = ListTypes::default();
        let mut node = json!({"status": {"conditions": [
            {"type": "Ready", "status": "True"}, {"type": "MemoryPressure", "status": "False"}]}});
        strategic_merge(
            &mut node,
            &json!({"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "KubeletDown"}],
                    "$setElementOrder/conditions": [{"type": "Ready"}]}}),
            &types,
        );
        assert_eq!(
            node["status"]["conditions"],
            json!([{"type": "Ready", "status": "False", "reason": "KubeletDown"}, {"type": "MemoryPressure", "status": "False"}])
        );
        strategic_merge(
            &mut node,
            &json!({"status": {"conditions": [{"type": "MemoryPressure", "$patch": "delete"}]}}),
            &types,
        );
        assert_eq!(
            node["status"]["conditions"].as_array().map(Vec::len),
            Some(1)
        );
    }

    #[test]
    fn strategic_merge_handles_sets_nulls_and_replace() {
        let types = ListTypes::default();
        let mut obj = json!({"metadata": {"finalizers": ["a"]}, "spec": {"x": 1, "m": {"k": 1}}});
        strategic_merge(
            &mut obj,
            &json!({"metadata": {"finalizers": ["b"]}, "spec": {"x": null, "m": {"$patch": "replace", "j": 2}}}),
            &types,
        );
        assert_eq!(
            obj,
            json!({"metadata": {"finalizers": ["a", "b"]}, "spec": {"m": {"j": 2}}})
        );
        strategic_merge(
            &mut obj,
            &json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
            &types,
        );
        assert_eq!(obj["metadata"]["finalizers"], json!(["b"]));
    }

    #[test]
    fn content_types_map_to_patch_kinds() {
        assert_eq!(
            PatchKind::from_content_type("application/apply-patch+yaml"),
            Some(PatchKind::Apply)
        );
        assert_eq!(
            PatchKind::from_content_type("application/merge-patch+json; charset=utf-8"),
            Some(PatchKind::Merge)
        );
        assert_eq!(PatchKind::from_content_type("application/json"), None);
    }
}
