//! Field paths and field sets in the `FieldsV1` vocabulary (`f:name`, `k:{..}`, `v:..`), plus
//! which lists are keyed maps or sets — the structure server-side apply and strategic merge
//! patch both need.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

/// One step of a path, already in its FieldsV1 spelling (`f:spec`, `k:{"type":"Ready"}`, `v:"a"`).
pub type PathElement = String;
pub type FieldPath = Vec<PathElement>;
/// The fields a manager owns: leaves, atomic lists, keyed-list items and set members.
pub type FieldSet = BTreeSet<FieldPath>;

/// How a list is merged and owned.
#[derive(Debug, Clone, PartialEq)]
pub enum ListType {
    /// Replaced as a whole (the default).
    Atomic,
    /// Items are identified by the values of these keys.
    Map(Vec<String>),
    /// Items are scalars identified by value.
    Set,
}

/// Answers "what kind of list is at this path" for one resource kind.
#[derive(Debug, Clone, Default)]
pub struct ListTypes {
    /// The CRD's openAPIV3Schema, if the kind is custom.
    schema: Option<Value>,
}

impl ListTypes {
    pub fn new(schema: Option<Value>) -> Self {
        Self { schema }
    }

    /// `fields` are the field names leading to the list; `"[]"` marks a step into a list item.
    pub fn list_type(&self, fields: &[&str]) -> ListType {
        if fields.first() == Some(&"metadata") || self.schema.is_none() {
            return builtin_list_type(fields);
        }
        let mut node = self.schema.as_ref();
        for field in fields {
            node = node.and_then(|n| {
                if *field == "[]" {
                    n.get("items")
                } else {
                    n.pointer(&format!("/properties/{}", escape_pointer(field)))
                        .or_else(|| n.get("additionalProperties").filter(|a| a.is_object()))
                }
            });
        }
        match node
            .and_then(|n| n.get("x-kubernetes-list-type"))
            .and_then(Value::as_str)
        {
            Some("map") => {
                let keys = node
                    .and_then(|n| n.get("x-kubernetes-list-map-keys"))
                    .and_then(Value::as_array)
                    .map(|k| {
                        k.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default();
                ListType::Map(keys)
            }
            Some("set") => ListType::Set,
            _ => ListType::Atomic,
        }
    }
}

fn escape_pointer(field: &str) -> String {
    field.replace('~', "~0").replace('/', "~1")
}

/// Merge keys of the built-in lists egressc and its tools touch; everything else is atomic.
fn builtin_list_type(fields: &[&str]) -> ListType {
    let keyed = |keys: &[&str]| ListType::Map(keys.iter().map(|k| (*k).to_owned()).collect());
    match fields.last().copied() {
        Some("conditions") => keyed(&["type"]),
        Some(
            "containers"
            | "initContainers"
            | "ephemeralContainers"
            | "volumes"
            | "env"
            | "volumeMounts",
        ) => keyed(&["name"]),
        Some("ownerReferences") => keyed(&["uid"]),
        Some("taints") => keyed(&["key", "effect"]),
        Some("finalizers") => ListType::Set,
        _ => ListType::Atomic,
    }
}

pub fn field_element(name: &str) -> PathElement {
    format!("f:{name}")
}

/// `k:{"name":"x"}` for a keyed-list item; `None` if the item lacks a key.
pub fn key_element(item: &Value, keys: &[String]) -> Option<PathElement> {
    let mut fields = Map::new();
    for key in keys {
        fields.insert(key.clone(), item.get(key)?.clone());
    }
    // serde_json's Map keeps keys sorted, which makes the element canonical.
    Some(format!("k:{}", Value::Object(fields)))
}

pub fn value_element(item: &Value) -> PathElement {
    format!("v:{item}")
}

/// Top-level and metadata fields the server owns; they never appear in managed fields.
fn is_system_field(path: &[&str]) -> bool {
    match path {
        ["apiVersion" | "kind"] => true,
        ["metadata", rest] => !matches!(
            *rest,
            "labels" | "annotations" | "finalizers" | "ownerReferences"
        ),
        _ => false,
    }
}

/// The field set an object (or an applied configuration) specifies.
pub fn fields_of(object: &Value, types: &ListTypes) -> FieldSet {
    let mut out = FieldSet::new();
    let mut path = Vec::new();
    let mut names = Vec::new();
    walk(object, &mut path, &mut names, types, &mut out);
    out
}

fn walk<'a>(
    value: &'a Value,
    path: &mut FieldPath,
    names: &mut Vec<&'a str>,
    types: &ListTypes,
    out: &mut FieldSet,
) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (name, child) in map {
                names.push(name);
                if !is_system_field(names) && !child.is_null() {
                    path.push(field_element(name));
                    walk(child, path, names, types, out);
                    path.pop();
                }
                names.pop();
            }
        }
        // An empty list is owned as a value whatever its type.
        Value::Array(items) if items.is_empty() => {
            out.insert(path.clone());
        }
        Value::Array(items) => match types.list_type(names) {
            ListType::Map(keys) if items.iter().all(|i| key_element(i, &keys).is_some()) => {
                for item in items {
                    let Some(element) = key_element(item, &keys) else {
                        continue;
                    };
                    path.push(element);
                    out.insert(path.clone());
                    names.push("[]");
                    walk(item, path, names, types, out);
                    names.pop();
                    path.pop();
                }
            }
            ListType::Set => {
                for item in items {
                    path.push(value_element(item));
                    out.insert(path.clone());
                    path.pop();
                }
            }
            _ => {
                out.insert(path.clone());
            }
        },
        _ => {
            if !path.is_empty() {
                out.insert(path.clone());
            }
        }
    }
}

/// The value at a path, if the object has it.
pub fn get_at<'a>(object: &'a Value, path: &[PathElement]) -> Option<&'a Value> {
    let mut node = object;
    for element in path {
        node = step(node, element)?;
    }
    Some(node)
}

fn step<'a>(node: &'a Value, element: &str) -> Option<&'a Value> {
    if let Some(name) = element.strip_prefix("f:") {
        return node.get(name);
    }
    let items = node.as_array()?;
    items.get(item_index(items, element)?)
}

fn step_mut<'a>(node: &'a mut Value, element: &str) -> Option<&'a mut Value> {
    if let Some(name) = element.strip_prefix("f:") {
        return node.get_mut(name);
    }
    let index = item_index(node.as_array()?, element)?;
    node.as_array_mut()?.get_mut(index)
}

/// Position of the list item a `k:`, `v:` or `i:` element names.
fn item_index(items: &[Value], element: &str) -> Option<usize> {
    if let Some(key) = element.strip_prefix("k:") {
        let key: Map<String, Value> = serde_json::from_str(key).ok()?;
        return items
            .iter()
            .position(|item| key.iter().all(|(k, v)| item.get(k) == Some(v)));
    }
    if let Some(value) = element.strip_prefix("v:") {
        let value: Value = serde_json::from_str(value).ok()?;
        return items.iter().position(|item| *item == value);
    }
    let index: usize = element.strip_prefix("i:")?.parse().ok()?;
    (index < items.len()).then_some(index)
}

/// Removes the value at a path (a map field or a list item); absent paths are a no-op.
pub fn remove_at(object: &mut Value, path: &[PathElement]) {
    let Some((last, parent_path)) = path.split_last() else {
        return;
    };
    let mut node = object;
    for element in parent_path {
        match step_mut(node, element) {
            Some(child) => node = child,
            None => return,
        }
    }
    if let Some(name) = last.strip_prefix("f:") {
        if let Some(map) = node.as_object_mut() {
            map.remove(name);
        }
    } else if let Some(items) = node.as_array_mut()
        && let Some(index) = item_index(items, last)
    {
        items.remove(index);
    }
}

/// Encodes a field set as a FieldsV1 tree (`"."` marks a node owned while having children).
pub fn to_fields_v1(set: &FieldSet) -> Value {
    #[derive(Default)]
    struct Node {
        owned: bool,
        children: BTreeMap<String, Node>,
    }
    fn render(node: &Node) -> Value {
        let mut map = Map::new();
        if node.owned && !node.children.is_empty() {
            map.insert(".".into(), Value::Object(Map::new()));
        }
        for (name, child) in &node.children {
            map.insert(name.clone(), render(child));
        }
        Value::Object(map)
    }
    let mut root = Node::default();
    for path in set {
        let mut node = &mut root;
        for element in path {
            node = node.children.entry(element.clone()).or_default();
        }
        node.owned = true;
    }
    render(&root)
}

/// Decodes a FieldsV1 tree; malformed parts are skipped.
pub fn from_fields_v1(tree: &Value) -> FieldSet {
    fn visit(node: &Value, path: &mut FieldPath, out: &mut FieldSet) {
        let Some(map) = node.as_object() else { return };
        if map.is_empty() && !path.is_empty() {
            out.insert(path.clone());
        }
        for (name, child) in map {
            if name == "." {
                out.insert(path.clone());
            } else {
                path.push(name.clone());
                visit(child, path, out);
                path.pop();
            }
        }
    }
    let mut out = FieldSet::new();
    visit(tree, &mut Vec::new(), &mut out);
    out
}

/// `.spec.x` / `.status.conditions[type="Ready"]`, the spelling conflict messages use.
pub fn display_path(path: &[PathElement]) -> String {
    let mut out = String::new();
    for element in path {
        if let Some(name) = element.strip_prefix("f:") {
            out.push('.');
            out.push_str(name);
        } else if let Some(key) = element.strip_prefix("k:") {
            let parsed: Map<String, Value> = serde_json::from_str(key).unwrap_or_default();
            let parts: Vec<String> = parsed.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(value) = element.strip_prefix("v:") {
            out.push_str(&format!("[={value}]"));
        } else {
            out.push_str(&format!("[{element}]"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn paths(set: &FieldSet) -> Vec<String> {
        set.iter().map(|p| display_path(p)).collect()
    }

    #[test]
    fn fields_cover_leaves_keyed_items_and_sets_but_not_system_metadata() {
        let obj = json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "n", "resourceVersion": "3", "labels": {"a": "1"}, "finalizers": ["x"]},
            "spec": {"podCIDRs": ["192.0.2.0/24"], "taints": []},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}
        });
        let set = fields_of(&obj, &ListTypes::default());
        assert_eq!(
            paths(&set),
            vec![
                ".metadata.finalizers[=\"x\"]",
                ".metadata.labels.a",
                ".spec.podCIDRs",
                ".spec.taints",
                ".status.conditions[type=\"Ready\"]",
                ".status.conditions[type=\"Ready\"].status",
                ".status.conditions[type=\"Ready\"].type",
            ]
        );
    }

    #[test]
    fn fields_v1_round_trips_and_marks_owned_parents_with_dot() {
        let obj = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}, "spec": {"x": 1}});
        let set = fields_of(&obj, &ListTypes::default());
        let tree = to_fields_v1(&set);
        assert_eq!(
            tree,
            json!({"f:spec": {"f:x": {}}, "f:status": {"f:conditions": {"k:{\"type\":\"Ready\"}": {".": {}, "f:status": {}, "f:type": {}}}}})
        );
        assert_eq!(from_fields_v1(&tree), set);
    }

    #[test]
    fn crd_schema_decides_list_types() {
        let schema = json!({"properties": {"spec": {"properties": {
            "rules": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                      "items": {"properties": {"cidrs": {"x-kubernetes-list-type": "set"}}}},
            "conditions": {"type": "array"}
        }}}});
        let types = ListTypes::new(Some(schema));
        assert_eq!(
            types.list_type(&["spec", "rules"]),
            ListType::Map(vec!["name".into()])
        );
        assert_eq!(
            types.list_type(&["spec", "rules", "[]", "cidrs"]),
            ListType::Set
        );
        // Without x-kubernetes-list-type a CRD list is atomic, even one named "conditions".
        assert_eq!(types.list_type(&["spec", "conditions"]), ListType::Atomic);
        assert_eq!(types.list_type(&["metadata", "finalizers"]), ListType::Set);
    }

    #[test]
    fn get_and_remove_follow_keys_and_values() {
        let mut obj = json!({"status": {"conditions": [{"type": "A"}, {"type": "B", "status": "x"}]}, "m": {"f": ["p", "q"]}});
        let cond_b = vec![
            "f:status".into(),
            "f:conditions".into(),
            "k:{\"type\":\"B\"}".into(),
        ];
        assert_eq!(
            get_at(&obj, &cond_b).and_then(|c| c.get("status")),
            Some(&json!("x"))
        );
        remove_at(&mut obj, &cond_b);
        assert_eq!(obj["status"]["conditions"], json!([{"type": "A"}]));
        remove_at(&mut obj, &["f:m".into(), "f:f".into(), "v:\"p\"".into()]);
        assert_eq!(obj["m"]["f"], json!(["q"]));
        remove_at(&mut obj, &["f:m".into(), "f:f".into()]);
        assert_eq!(obj["m"], json!({}));
        remove_at(&mut obj, &["f:nothing".into(), "f:here".into()]);
    }
}
