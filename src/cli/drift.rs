//! `egressc build --check-against PATH`: compares freshly rendered manifests with the ones
//! committed at PATH (a file, or a directory whose *.yaml/*.yml/*.json files together hold the
//! stream) and explains every difference.
//!
//! Objects are compared by identity (apiVersion, kind, namespace, name) and by value, so
//! formatting, key order and file layout of the committed copy do not matter; a changed
//! object is shown as a unified diff of both sides in egressc's own formatting.

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
    for document in documents.into_iter().filter(|d| !d.is_null()) {
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
    fn broken_committed_stream_is_an_error() {
        let err = compare(RENDERED, &[input("kind: [")]).unwrap_err();
        assert!(
            err.starts_with("deploy/egress.yaml: not a YAML manifest stream"),
            "{err}"
        );
    }
}
