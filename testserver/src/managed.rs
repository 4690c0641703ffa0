//! `metadata.managedFields`: who owns which field, how ordinary writes move ownership, and how
//! server-side apply detects conflicts and removes fields a manager stops applying.

use serde_json::{Value, json};

use crate::fieldpath::{
    FieldSet, ListTypes, display_path, fields_of, from_fields_v1, get_at, remove_at, to_fields_v1,
};
use crate::patch::merge_structured;

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: Option<String>,
    pub fields: FieldSet,
}

/// Who is writing, through which version and subresource, and when.
#[derive(Debug, Clone, Copy)]
pub struct Writer<'a> {
    pub manager: &'a str,
    pub subresource: Option<&'a str>,
    pub api_version: &'a str,
    pub now: &'a str,
    pub types: &'a ListTypes,
}

impl Writer<'_> {
    fn is(&self, entry: &Entry, operation: &str) -> bool {
        entry.manager == self.manager
            && entry.operation == operation
            && entry.subresource.as_deref() == self.subresource
    }

    fn entry(&self, operation: &str, fields: FieldSet) -> Entry {
        Entry {
            manager: self.manager.to_owned(),
            operation: operation.to_owned(),
            api_version: self.api_version.to_owned(),
            time: self.now.to_owned(),
            subresource: self.subresource.map(str::to_owned),
            fields,
        }
    }
}

/// Reads the entries of an object; malformed entries are dropped.
pub fn read_entries(object: &Value) -> Vec<Entry> {
    let Some(list) = object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|raw| {
            let text = |key: &str| raw.get(key).and_then(Value::as_str).map(str::to_owned);
            Some(Entry {
                manager: text("manager")?,
                operation: text("operation").unwrap_or_else(|| "Update".into()),
                api_version: text("apiVersion").unwrap_or_default(),
                time: text("time").unwrap_or_default(),
                subresource: text("subresource"),
                fields: raw.get("fieldsV1").map(from_fields_v1).unwrap_or_default(),
            })
        })
        .collect()
}

/// Stores entries into `metadata.managedFields` (dropping entries that own nothing).
pub fn write_entries(object: &mut Value, entries: &[Entry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut raw = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": to_fields_v1(&e.fields),
            });
            if let Some(sub) = &e.subresource {
                raw["subresource"] = Value::String(sub.clone());
            }
            raw
        })
        .collect();
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        if list.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(list));
        }
    }
}

/// An ordinary write (create, update, patch): the writer takes the fields it changed from
/// everyone else; fields that disappeared are dropped from every entry.
pub fn record_update(
    entries: &mut Vec<Entry>,
    old: Option<&Value>,
    new: &Value,
    writer: Writer<'_>,
) {
    let present = fields_of(new, writer.types);
    let changed: FieldSet = present
        .iter()
        .filter(|path| old.and_then(|o| get_at(o, path)) != get_at(new, path))
        .cloned()
        .collect();
    for entry in entries.iter_mut() {
        let own = writer.is(entry, "Update");
        entry
            .fields
            .retain(|p| present.contains(p) && (own || !changed.contains(p)));
    }
    if !changed.is_empty() {
        match entries.iter_mut().find(|e| writer.is(e, "Update")) {
            Some(own) => {
                own.fields.extend(changed);
                own.time = writer.now.to_owned();
                own.api_version = writer.api_version.to_owned();
            }
            None => entries.push(writer.entry("Update", changed)),
        }
    }
    entries.retain(|e| !e.fields.is_empty());
}

/// Server-side apply of `applied` onto `current`. On success returns the new object (without
/// managedFields, which are updated in `entries`); on conflict returns (manager, field) pairs.
pub fn apply(
    entries: &mut Vec<Entry>,
    current: &Value,
    applied: &Value,
    force: bool,
    writer: Writer<'_>,
) -> Result<Value, Vec<(String, String)>> {
    let applied_fields = fields_of(applied, writer.types);
    let mut conflicts = Vec::new();
    for entry in entries.iter_mut().filter(|e| e.manager != writer.manager) {
        let clashing: Vec<_> = entry
            .fields
            .intersection(&applied_fields)
            .filter(|path| !is_item_node(path))
            .filter(|path| {
                get_at(current, path).is_some_and(|now| Some(now) != get_at(applied, path))
            })
            .cloned()
            .collect();
        if force {
            for path in &clashing {
                entry.fields.remove(path);
            }
        } else {
            conflicts.extend(
                clashing
                    .iter()
                    .map(|p| (entry.manager.clone(), display_path(p))),
            );
        }
    }
    if !conflicts.is_empty() {
        return Err(conflicts);
    }

    let previously_applied = entries
        .iter()
        .find(|e| writer.is(e, "Apply"))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let mut result = current.clone();
    // Fields this manager stopped applying go away unless someone else also owns them.
    for dropped in previously_applied.difference(&applied_fields) {
        let shared = entries
            .iter()
            .filter(|e| !writer.is(e, "Apply"))
            .any(|e| e.fields.iter().any(|p| p.starts_with(dropped)));
        if !shared {
            remove_at(&mut result, dropped);
        }
    }
    merge_structured(&mut result, applied, writer.types, false);

    entries.retain(|e| !writer.is(e, "Apply"));
    entries.push(writer.entry("Apply", applied_fields));
    entries.retain(|e| !e.fields.is_empty());
    Ok(result)
}

/// Keyed-list items and set members are owned as identities, not compared as values.
fn is_item_node(path: &[String]) -> bool {
    path.last()
        .is_some_and(|e| e.starts_with("k:") || e.starts_with("v:"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fieldpath::display_path;

    fn writer<'a>(manager: &'a str, types: &'a ListTypes) -> Writer<'a> {
        Writer {
            manager,
            subresource: None,
            api_version: "v1",
            now: "2025-01-01T00:00:00Z",
            types,
        }
    }

    fn owned(entries: &[Entry], manager: &str) -> Vec<String> {
        entries
            .iter()
            .filter(|e| e.manager == manager)
            .flat_map(|e| e.fields.iter().map(|p| display_path(p)))
            .collect()
    }

    #[test]
    fn apply_conflicts_on_differing_values_and_force_takes_ownership() {
        let types = ListTypes::default();
        let mut entries = Vec::new();
        let empty = json!({"metadata": {"name": "x"}});
        let first = json!({"spec": {"a": 1, "b": 2}});
        let obj = apply(&mut entries, &empty, &first, false, writer("alice", &types))
            .expect("first apply");
        assert_eq!(obj["spec"], json!({"a": 1, "b": 2}));

        // Same value: shared ownership, no conflict.
        let same = json!({"spec": {"a": 1}});
        let obj =
            apply(&mut entries, &obj, &same, false, writer("bob", &types)).expect("same value");
        assert_eq!(owned(&entries, "bob"), vec![".spec.a"]);

        let other = json!({"spec": {"b": 3}});
        let err =
            apply(&mut entries, &obj, &other, false, writer("bob", &types)).expect_err("conflict");
        assert_eq!(err, vec![("alice".to_owned(), ".spec.b".to_owned())]);

        let obj = apply(&mut entries, &obj, &other, true, writer("bob", &types)).expect("forced");
        assert_eq!(obj["spec"]["b"], json!(3));
        assert_eq!(owned(&entries, "alice"), vec![".spec.a"]);
        // bob stopped applying .spec.a but alice still owns it: it stays.
        assert_eq!(obj["spec"]["a"], json!(1));
        assert_eq!(owned(&entries, "bob"), vec![".spec.b"]);
    }

    #[test]
    fn sole_owner_dropping_a_field_removes_it() {
        let types = ListTypes::default();
        let mut entries = Vec::new();
        let base = json!({"metadata": {"name": "x"}});
        let obj = apply(
            &mut entries,
            &base,
            &json!({"metadata": {"labels": {"a": "1", "b": "2"}}}),
            false,
            writer("m", &types),
        )
        .expect("apply");
        let obj = apply(
            &mut entries,
            &obj,
            &json!({"metadata": {"labels": {"a": "1"}}}),
            false,
            writer("m", &types),
        )
        .expect("apply");
        assert_eq!(obj["metadata"]["labels"], json!({"a": "1"}));
    }

    #[test]
    fn updates_take_changed_fields_from_appliers_and_drop_vanished_ones() {
        let types = ListTypes::default();
        let mut entries = Vec::new();
        let base = json!({"metadata": {"name": "x"}});
        let obj = apply(
            &mut entries,
            &base,
            &json!({"spec": {"holder": "h1", "renew": "t1"}}),
            false,
            writer("h1", &types),
        )
        .expect("apply");
        let mut renewed = obj.clone();
        renewed["spec"]["renew"] = json!("t2");
        record_update(
            &mut entries,
            Some(&obj),
            &renewed,
            writer("kubectl", &types),
        );
        assert_eq!(owned(&entries, "h1"), vec![".spec.holder"]);
        assert_eq!(owned(&entries, "kubectl"), vec![".spec.renew"]);

        let mut released = renewed.clone();
        released["spec"]
            .as_object_mut()
            .expect("map")
            .remove("holder");
        record_update(
            &mut entries,
            Some(&renewed),
            &released,
            writer("kubectl", &types),
        );
        assert!(
            owned(&entries, "h1").is_empty(),
            "vanished field leaves its owner"
        );
        // A new holder can now apply without conflict.
        let taken = apply(
            &mut entries,
            &released,
            &json!({"spec": {"holder": "h2"}}),
            false,
            writer("h2", &types),
        );
        assert_eq!(taken.expect("no conflict")["spec"]["holder"], json!("h2"));
    }

    #[test]
    fn entries_round_trip_through_the_object() {
        let types = ListTypes::default();
        let mut entries = Vec::new();
        let obj = json!({"metadata": {"name": "x", "labels": {"a": "b"}}});
        record_update(&mut entries, None, &obj, writer("creator", &types));
        let mut stored = obj.clone();
        write_entries(&mut stored, &entries);
        assert_eq!(
            stored["metadata"]["managedFields"][0]["fieldsV1"],
            json!({"f:metadata": {"f:labels": {"f:a": {}}}})
        );
        assert_eq!(read_entries(&stored), entries);
    }
}
