//! `egressc build --check-against PATH`: compares freshly rendered manifests with the ones
//! committed at PATH (a file, or a directory whose *.yaml/*.yml/*.json files together hold the
//! stream) and explains every difference.
//!
//! Objects are compared by identity (apiVersion, kind, namespace, name) and by value, so
//! formatting, key order and file layout of the committed copy do not matter; a changed
//! object is shown as a unified diff of both sides in egressc's own formatting.
//!
//! The committed copy may also be what `kubectl get -o yaml` writes: a `v1 List` (or any
//! `…List` kind) is read as its items, and the fields only the API server writes (`status`,
//! `metadata.uid`, `resourceVersion`, `generation`, `creationTimestamp`, `managedFields`,
//! `selfLink`) are left out of the comparison: no commit could make them match.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use crate::load::Limits;
use crate::pipeline::Input;

/// Identity of a Kubernetes object in a stream.
type ObjectKey = (String, String, String, String);

/// How the committed manifests differ from the rendered ones; empty: up to date.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Drift {
    /// Human-readable report, one section per differing object.
    pub report: String,
    /// Number of objects that differ, are missing or are stale.
    pub differences: usize,
}

/// Compares `rendered` (egressc's output) with the `committed` streams.
pub fn compare(rendered: &str, committed: &[Input]) -> Result<Drift, String> {
    let want = objects("rendered output", rendered)?;
    let mut have = BTreeMap::new();
    for input in committed {
        for (key, value) in objects(&input.name, &input.text)? {
            if have.insert(key.clone(), value).is_some() {
                return Err(format!(
                    "{}: {} appears more than once in the committed manifests",
                    input.name,
                    describe(&key)
                ));
            }
        }
    }
    let mut drift = Drift::default();
    for (key, value) in &want {
        match have.get(key) {
            None => drift.add(key, "missing from the committed manifests", None),
            Some(old) if old != value => {
                drift.add(key, "differs", Some(diff(&yaml(old)?, &yaml(value)?)));
            }
            Some(_) => {}
        }
    }
    for key in have.keys().filter(|k| !want.contains_key(*k)) {
        drift.add(key, "is committed but egressc no longer renders it", None);
    }
    Ok(drift)
}

impl Drift {
    fn add(&mut self, key: &ObjectKey, what: &str, diff: Option<String>) {
        self.differences += 1;
        let _ = writeln!(self.report, "{} {what}", describe(key));
        if let Some(diff) = diff {
            self.report.push_str(&diff);
        }
    }
}

fn describe(key: &ObjectKey) -> String {
    let (api_version, kind, namespace, name) = key;
    if namespace.is_empty() {
        format!("{kind} {name} ({api_version})")
    } else {
        format!("{kind} {namespace}/{name} ({api_version})")
    }
}

/// Parses a YAML/JSON stream into objects keyed by identity; empty documents are skipped.
fn objects(name: &str, text: &str) -> Result<BTreeMap<ObjectKey, Value>, String> {
    // The same budgets as egressc's own inputs: the committed copy is repository content too.
    let documents: Vec<Value> = serde_saphyr::from_str_multiple_with_options::<Value, Vec<Value>>(
        text,
        Limits::default().options(),
    )
    .map_err(|e| format!("{name}: not a YAML manifest stream: {e}"))?;
    let mut found = BTreeMap::new();
    for mut document in list_items(documents) {
        forget_server_fields(&mut document);
        let field = |path: &[&str]| {
            path.iter()
                .try_fold(&document, |v, k| v.get(k))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let key = (
            field(&["apiVersion"]),
            field(&["kind"]),
            field(&["metadata", "namespace"]),
            field(&["metadata", "name"]),
        );
        if key.1.is_empty() || key.3.is_empty() {
            return Err(format!("{name}: a document without kind or metadata.name"));
        }
        found.insert(key, document);
    }
    Ok(found)
}

/// The documents with every List (`kind` ending in `List`, with `items`) replaced by its
/// items; empty documents dropped. Lists inside items are not a Kubernetes form and stay as
/// they are (they then fail the identity check).
fn list_items(documents: Vec<Value>) -> Vec<Value> {
    let mut objects = Vec::new();
    for document in documents.into_iter().filter(|d| !d.is_null()) {
        let is_list = document
            .get("kind")
            .and_then(Value::as_str)
            .is_some_and(|kind| kind.ends_with("List"));
        match document {
            Value::Object(mut map) if is_list && map.contains_key("items") => {
                match map.remove("items") {
                    Some(Value::Array(items)) => {
                        objects.extend(items.into_iter().filter(|i| !i.is_null()));
                    }
                    // `items: null`: an empty list.
                    Some(Value::Null) | None => {}
                    Some(other) => {
                        map.insert("items".to_owned(), other);
                        objects.push(Value::Object(map));
                    }
                }
            }
            other => objects.push(other),
        }
    }
    objects
}

/// Removes what only the API server writes, so a live dump compares by what was applied.
fn forget_server_fields(object: &mut Value) {
    let Some(map) = object.as_object_mut() else {
        return;
    };
    map.remove("status");
    if let Some(metadata) = map.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in [
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "managedFields",
            "selfLink",
        ] {
            metadata.remove(field);
        }
    }
}

fn yaml(value: &Value) -> Result<String, String> {
    serde_saphyr::to_string(value).map_err(|e| format!("cannot format an object: {e}"))
}

fn diff(old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header("committed", "rendered")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(text: &str) -> Input {
        Input {
            name: "deploy/egress.yaml".into(),
            text: text.into(),
        }
    }

    const RENDERED: &str = "apiVersion: v1\nkind: Node\nmetadata:\n  name: a\n  labels:\n    x: \"1\"\n---\napiVersion: v1\nkind: Node\nmetadata:\n  name: b\n";

    #[test]
    fn same_objects_in_other_formatting_are_up_to_date() {
        let committed = r#"{"kind":"Node","apiVersion":"v1","metadata":{"labels":{"x":"1"},"name":"a"}}
---
apiVersion: v1
kind: Node
metadata: {name: b}
"#;
        let drift = compare(RENDERED, &[input(committed)]).unwrap();
        assert_eq!(drift, Drift::default());
    }

    #[test]
    fn changed_missing_and_stale_objects_are_reported() {
        let committed = "apiVersion: v1\nkind: Node\nmetadata:\n  name: a\n  labels:\n    x: \"2\"\n---\napiVersion: v1\nkind: Node\nmetadata:\n  name: c\n";
        let drift = compare(RENDERED, &[input(committed)]).unwrap();
        assert_eq!(drift.differences, 3, "{}", drift.report);
        assert!(drift.report.contains("Node a (v1) differs"));
        assert!(
            drift.report.contains("-    x: '2'") || drift.report.contains("-    x: \"2\""),
            "{}",
            drift.report
        );
        assert!(
            drift
                .report
                .contains("Node b (v1) missing from the committed manifests")
        );
        assert!(
            drift
                .report
                .contains("Node c (v1) is committed but egressc no longer renders it")
        );
    }

    #[test]
    fn a_kubectl_list_is_read_as_its_items() {
        let committed = "apiVersion: v1\nkind: List\nmetadata:\n  resourceVersion: \"\"\nitems:\n- apiVersion: v1\n  kind: Node\n  metadata:\n    name: a\n    uid: 1f0c\n    resourceVersion: \"42\"\n    creationTimestamp: \"2026-01-01T00:00:00Z\"\n    labels:\n      x: \"1\"\n  status:\n    phase: Running\n---\napiVersion: v1\nkind: NodeList\nitems:\n- apiVersion: v1\n  kind: Node\n  metadata:\n    name: b\n";
        let drift = compare(RENDERED, &[input(committed)]).unwrap();
        assert_eq!(drift, Drift::default(), "{}", drift.report);
        let empty = compare("", &[input("apiVersion: v1\nkind: List\nitems: []\n")]).unwrap();
        assert_eq!(empty, Drift::default());
    }

    #[test]
    fn broken_committed_stream_is_an_error() {
        let err = compare(RENDERED, &[input("kind: [")]).unwrap_err();
        assert!(
            err.starts_with("deploy/egress.yaml: not a YAML manifest stream"),
            "{err}"
        );
    }
}
