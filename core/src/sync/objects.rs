//! Stores of the cluster's EgressGateways and EgressGatewayPolicies: one generic [`Store`]
//! holding per object the raw object, its validation verdict (cached by uid and generation, so
//! only a spec change re-validates) and the last good validated value, plus the verdict
//! transitions to report and the objects whose status may need a write. An object that turns
//! invalid keeps its last good value in use: a typo in an edit must not tear down a working
//! gateway or delete a compiled policy. What differs per kind (how an object is validated,
//! what else is indexed) is in `impl Store<GatewayEntry>` and `impl Store<PolicyEntry>`.
//!
//! An object is kept as compact JSON text of only the fields something reads ([`kept`]) and
//! parsed again when read: 1,000 gateways as JSON values were ~11 MB (a value's map allocates
//! room for eleven entries), 10,000 policies' full text ~15 MB; a step reads a few of them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use serde_json::Value;

use super::convert;
use super::validation;
use crate::controller::ObservedStatus;
use crate::model::catalog::{Gateway, Policy};
use crate::model::labels::{MAX_VERBATIM_GATEWAY_NAME, active_for_label};
use crate::validate::Options;

/// Validity of one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted.
    Valid,
    /// Refused, with the diagnostics in one line.
    Invalid(String),
}

/// A gateway as the core takes it: last good value, its generation, the stored status.
pub type CoreGateway = (Gateway, i64, Option<ObservedStatus>);

/// `(uid, generation)`: what makes a cached verdict stale. The uid is shared (a policy's
/// cache key holds its own and its gateway's: 10,000 policies need not copy them).
type Revision = (Arc<str>, i64);

fn revision(object: &Value) -> Revision {
    let uid = object
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .into();
    let generation = object
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or_default();
    (uid, generation)
}

fn name_of(object: &Value) -> Option<String> {
    object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn created_of(object: &Value) -> Box<str> {
    object
        .pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .into()
}

/// What a store keeps of its kind's objects (see [`kept`]).
struct Shape {
    /// The `metadata` fields something reads: the name, the uid, generation and
    /// resourceVersion (verdict cache, `observedGeneration`, Event references), the labels
    /// (validated with the spec) and for gateways the creation time (the older of two
    /// gateways keeps a shared VIP).
    metadata: &'static [&'static str],
}

const GATEWAY_SHAPE: Shape = Shape {
    metadata: &[
        "name",
        "uid",
        "generation",
        "resourceVersion",
        "labels",
        "creationTimestamp",
    ],
};

const POLICY_SHAPE: Shape = Shape {
    metadata: &["name", "uid", "generation", "resourceVersion", "labels"],
};

/// The `status` fields something reads: the stored conditions and `observedGeneration`
/// (which status patches are needed) and the gateway's election fields (the core's
/// [`ObservedStatus`]).
const KEPT_STATUS: [&str; 4] = [
    "conditions",
    "observedGeneration",
    "activeNodeName",
    "readyNodes",
];

/// `object` as compact JSON text of only what validation, statuses and Events read:
/// `apiVersion`, `kind`, `spec`, and the `shape`'s metadata and the [`KEPT_STATUS`] fields (a
/// `status` is kept, possibly empty, whenever there is one: its presence is observed).
/// Annotations (a `kubectl apply` copy of the object), finalizers and other server fields are
/// dropped. The text is allocated to its exact length.
fn kept(mut object: Value, shape: &Shape) -> Box<str> {
    fn retain(value: Option<&mut Value>, keys: &[&str]) {
        if let Some(Value::Object(map)) = value {
            map.retain(|k, _| keys.contains(&k.as_str()));
        }
    }
    if let Value::Object(fields) = &mut object {
        fields.retain(|k, _| {
            matches!(
                k.as_str(),
                "apiVersion" | "kind" | "spec" | "metadata" | "status"
            )
        });
        retain(fields.get_mut("metadata"), shape.metadata);
        retain(fields.get_mut("status"), &KEPT_STATUS);
    }
    object.to_string().into_boxed_str()
}

/// Parses text written by [`kept`].
fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_default()
}

/// One stored object of a kind.
pub trait Entry {
    /// The validated value.
    type Value;
    /// What the store of this kind indexes besides the entries.
    type Index: Clone + std::fmt::Debug + Default;
    /// The verdict reported so far.
    fn verdict(&self) -> &Verdict;
    /// The last good validated value.
    fn last_good(&self) -> Option<&Self::Value>;
}

/// Objects of one kind by name. See the module docs.
#[derive(Clone, Debug)]
pub struct Store<E: Entry> {
    /// Boxed: a map node has room for eleven entries, mostly empty, and an entry is a few
    /// hundred bytes.
    entries: BTreeMap<String, Box<E>>,
    /// Verdict transitions not yet reported.
    changes: Vec<(String, Option<String>)>,
    /// Objects whose status may need a write: changed, verdict changed (or re-checked), or a
    /// failed status write. Scanning only these keeps a node event from costing a pass over
    /// every object.
    unsettled: BTreeSet<String>,
    /// The kind's own index.
    index: E::Index,
}

impl<E: Entry> Default for Store<E> {
    fn default() -> Self {
        Store {
            entries: BTreeMap::new(),
            changes: Vec::new(),
            unsettled: BTreeSet::new(),
            index: E::Index::default(),
        }
    }
}

impl<E: Entry> Store<E> {
    /// Takes the objects whose status may need a write (see [`Store::unsettle`]).
    pub fn take_unsettled(&mut self) -> BTreeSet<String> {
        std::mem::take(&mut self.unsettled)
    }

    /// Marks `name`'s status as possibly needing a write again (e.g. after a failed write).
    pub fn unsettle(&mut self, name: &str) {
        if self.entries.contains_key(name) {
            self.unsettled.insert(name.to_owned());
        }
    }

    /// Every object's name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Is object `name` known?
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// The verdict of object `name`.
    pub fn verdict(&self, name: &str) -> Option<&Verdict> {
        self.entries.get(name).map(|e| e.verdict())
    }

    /// Every object's name and verdict.
    pub fn verdicts(&self) -> impl Iterator<Item = (&str, &Verdict)> {
        self.entries.iter().map(|(n, e)| (n.as_str(), e.verdict()))
    }

    /// Verdict transitions since the last call: `(name, Some(diagnostic))` when it turned
    /// invalid, `(name, None)` when it became valid again.
    pub fn take_changes(&mut self) -> Vec<(String, Option<String>)> {
        std::mem::take(&mut self.changes)
    }

    /// The last good value of every object, sorted by name (borrowed: 10,000 policies are
    /// worth not copying for every CEGP pass).
    pub fn last_good_refs(&self) -> Vec<&E::Value> {
        self.entries
            .values()
            .filter_map(|e| e.last_good())
            .collect()
    }

    /// The last good value of object `name`.
    pub fn last_good(&self, name: &str) -> Option<&E::Value> {
        self.entries.get(name).and_then(|e| e.last_good())
    }
}

/// Records a transition of `name`'s verdict from `old` to `new` in `changes`; true if it is one.
fn report(
    changes: &mut Vec<(String, Option<String>)>,
    name: &str,
    old: &Verdict,
    new: &Verdict,
) -> bool {
    if old == new {
        return false;
    }
    let report = match new {
        Verdict::Valid => None,
        Verdict::Invalid(m) => Some(m.clone()),
    };
    changes.push((name.to_owned(), report));
    true
}

/// A stored gateway.
#[derive(Clone, Debug)]
pub struct GatewayEntry {
    /// The object's [`kept`] text.
    object: Box<str>,
    /// `metadata.creationTimestamp` (read for every gateway on each gateway change).
    created: Box<str>,
    revision: Revision,
    /// Validated on its own (shared with `last_good`).
    own: Result<Arc<Gateway>, String>,
    /// After the checks across gateways.
    verdict: Verdict,
    last_good: Option<(Arc<Gateway>, i64)>,
}

impl Entry for GatewayEntry {
    type Value = Gateway;
    /// Gateways changed since the core was last updated.
    type Index = BTreeSet<String>;
    fn verdict(&self) -> &Verdict {
        &self.verdict
    }
    fn last_good(&self) -> Option<&Gateway> {
        self.last_good.as_ref().map(|(g, _)| &**g)
    }
}

/// The gateways.
pub type GatewayStore = Store<GatewayEntry>;

impl Store<GatewayEntry> {
    /// Stores a listed or changed gateway, validating it when its revision is new. Returns
    /// whether the revision is new (a status-only change is not).
    pub fn apply(&mut self, object: Value, options: &Options) -> bool {
        let Some(name) = name_of(&object) else {
            return false;
        };
        let mut revision = revision(&object);
        let (own, revised) = match self.entries.get(&name) {
            Some(entry) if entry.revision == revision => {
                // The same uid shared on: policies' cache keys hold it.
                revision = entry.revision.clone();
                (entry.own.clone(), false)
            }
            _ => (
                validation::gateway(&name, &object, options).map(Arc::new),
                true,
            ),
        };
        let previous = self.entries.remove(&name);
        let entry = GatewayEntry {
            // The verdict reported so far; `check_shared_vips` decides the new one. A new
            // object counts as valid so far: only a refusal is news.
            verdict: previous
                .as_ref()
                .map_or(Verdict::Valid, |p| p.verdict.clone()),
            last_good: previous.as_ref().and_then(|p| p.last_good.clone()),
            own,
            revision,
            created: created_of(&object),
            object: kept(object, &GATEWAY_SHAPE),
        };
        self.entries.insert(name.clone(), Box::new(entry));
        self.unsettled.insert(name.clone());
        self.index.insert(name);
        revised
    }

    /// Forgets a deleted gateway.
    pub fn remove(&mut self, name: &str) {
        self.unsettled.remove(name);
        if self.entries.remove(name).is_some() {
            self.index.insert(name.to_owned());
        }
    }

    /// The object of gateway `name`: its [`kept`] fields.
    pub fn object(&self, name: &str) -> Option<Value> {
        self.entries.get(name).map(|e| parse(&e.object))
    }

    /// Gateways valid on their own that share a VIP (or an `active-for-…` label key) are
    /// validated together, oldest first; the younger ones are refused. Then verdict transitions are recorded and the last good
    /// values updated.
    pub fn check_shared_vips(&mut self, options: &Options) {
        let mut by_vip: BTreeMap<IpAddr, Vec<(&str, String)>> = BTreeMap::new();
        for (name, entry) in &self.entries {
            if let Some(ip) = entry.own.as_ref().ok().and_then(|g| g.source.virtual_ip()) {
                by_vip
                    .entry(ip)
                    .or_default()
                    .push((&entry.created, name.clone()));
            }
        }
        // Only hashed label keys (names longer than 52 characters) can coincide; such gateways
        // are grouped by key and checked together like a shared VIP (E041).
        let mut by_label: BTreeMap<String, Vec<(&str, String)>> = BTreeMap::new();
        for (name, entry) in &self.entries {
            if name.len() > MAX_VERBATIM_GATEWAY_NAME && entry.own.is_ok() {
                by_label
                    .entry(active_for_label(name))
                    .or_default()
                    .push((&entry.created, name.clone()));
            }
        }
        let mut losers: BTreeMap<String, String> = BTreeMap::new();
        let groups = by_vip.into_values().chain(by_label.into_values());
        for mut group in groups.filter(|g| g.len() > 1) {
            group.sort();
            let objects: Vec<(&str, Value)> = group
                .iter()
                .filter_map(|(_, n)| Some((n.as_str(), parse(&self.entries.get(n)?.object))))
                .collect();
            let objects: Vec<(&str, &Value)> = objects.iter().map(|(n, o)| (*n, o)).collect();
            losers.extend(validation::shared_vip_losers(&objects, options));
        }
        for (name, entry) in &mut self.entries {
            let verdict = match (&entry.own, losers.get(name)) {
                (Err(message), _) | (Ok(_), Some(message)) => Verdict::Invalid(message.clone()),
                (Ok(_), None) => Verdict::Valid,
            };
            if let (Ok(gateway), Verdict::Valid) = (&entry.own, &verdict) {
                let generation = entry.revision.1;
                if entry.last_good.as_ref() != Some(&(Arc::clone(gateway), generation)) {
                    entry.last_good = Some((Arc::clone(gateway), generation));
                    self.index.insert(name.clone());
                }
            }
            if report(&mut self.changes, name, &entry.verdict, &verdict) {
                self.unsettled.insert(name.clone());
            }
            entry.verdict = verdict;
        }
    }

    /// Gateways to (re)apply to the core with generation and stored status, and names to
    /// delete from it, since the last call.
    pub fn core_updates(&mut self) -> (Vec<CoreGateway>, Vec<String>) {
        let mut present = Vec::new();
        let mut gone = Vec::new();
        for name in std::mem::take(&mut self.index) {
            match self.entries.get(&name) {
                Some(entry) => {
                    if let Some((gateway, generation)) = &entry.last_good {
                        let status = convert::gateway_status(&parse(&entry.object));
                        present.push((Gateway::clone(gateway), *generation, status));
                    }
                }
                None => gone.push(name),
            }
        }
        (present, gone)
    }
}

/// What a policy's verdict depends on: its own revision and its gateway's.
type PolicyRevision = (Revision, Option<Revision>);

/// A stored policy.
#[derive(Clone, Debug)]
pub struct PolicyEntry {
    /// The object's [`kept`] text: read only to validate it or write its status.
    raw: Box<str>,
    /// `spec.egressGatewayName`.
    gateway: Box<str>,
    revision: Revision,
    checked: Option<PolicyRevision>,
    verdict: Verdict,
    last_good: Option<Policy>,
}

impl Entry for PolicyEntry {
    type Value = Policy;
    type Index = PolicyIndex;
    fn verdict(&self) -> &Verdict {
        &self.verdict
    }
    fn last_good(&self) -> Option<&Policy> {
        self.last_good.as_ref()
    }
}

/// What the policy store indexes besides its entries.
#[derive(Clone, Debug, Default)]
pub struct PolicyIndex {
    /// Policies to check at the next [`Store::revalidate`].
    pending: BTreeSet<String>,
}

/// The policies.
pub type PolicyStore = Store<PolicyEntry>;

fn gateway_of(object: &Value) -> &str {
    object
        .pointer("/spec/egressGatewayName")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

impl Store<PolicyEntry> {
    /// Stores a listed or changed policy; [`Store::revalidate`] checks it.
    pub fn apply(&mut self, object: Value) {
        let Some(name) = name_of(&object) else { return };
        self.index.pending.insert(name.clone());
        self.unsettled.insert(name.clone());
        let gateway: Box<str> = gateway_of(&object).into();
        let revision = revision(&object);
        let raw = kept(object, &POLICY_SHAPE);
        match self.entries.get_mut(&name) {
            Some(entry) => {
                entry.raw = raw;
                entry.gateway = gateway;
                // A status change keeps the revision and its uid, shared with `checked`.
                if entry.revision != revision {
                    entry.revision = revision;
                }
            }
            None => {
                self.entries.insert(
                    name,
                    Box::new(PolicyEntry {
                        raw,
                        gateway,
                        revision,
                        checked: None,
                        verdict: Verdict::Valid,
                        last_good: None,
                    }),
                );
            }
        }
    }

    /// Forgets a deleted policy.
    pub fn remove(&mut self, name: &str) {
        self.index.pending.remove(name);
        self.unsettled.remove(name);
        self.entries.remove(name);
    }

    /// Gateway `name` changed or went away: its policies are checked again. (A scan of the
    /// entries rather than an index by gateway: gateway changes are rare, and the index
    /// would hold every policy's name once more.)
    pub fn gateway_changed(&mut self, name: &str) {
        let policies = self.entries.iter().filter(|(_, e)| &*e.gateway == name);
        self.index
            .pending
            .extend(policies.map(|(policy, _)| policy.clone()));
    }

    /// The object of policy `name`: its [`kept`] fields.
    pub fn object(&self, name: &str) -> Option<Value> {
        self.entries.get(name).map(|e| parse(&e.raw))
    }

    /// `metadata.uid` of policy `name`.
    pub fn uid(&self, name: &str) -> Option<&str> {
        self.entries.get(name).map(|e| &*e.revision.0)
    }

    /// Validates the policies changed, or whose gateway changed, since the last call when
    /// their own revision or their gateway's revision differs from the one last checked.
    /// Returns whether any was validated (a status echo is not).
    pub fn revalidate(&mut self, gateways: &GatewayStore, options: &Options) -> bool {
        let mut validated = false;
        let reported = self.changes.len();
        // By gateway, so each gateway's object is parsed once (10,000 policies at a start).
        let mut pending: Vec<(Box<str>, String)> = std::mem::take(&mut self.index.pending)
            .into_iter()
            .filter_map(|name| Some((self.entries.get(&name)?.gateway.clone(), name)))
            .collect();
        pending.sort();
        let mut parsed: Option<(&str, Option<Value>)> = None;
        for (gateway_name, name) in &pending {
            let Some(entry) = self.entries.get_mut(name) else {
                continue;
            };
            let gateway_entry = gateways.entries.get(&**gateway_name);
            let key = (
                entry.revision.clone(),
                gateway_entry.map(|g| g.revision.clone()),
            );
            if entry.checked.as_ref() == Some(&key) {
                continue;
            }
            entry.checked = Some(key);
            validated = true;
            self.unsettled.insert(name.clone());
            if parsed.as_ref().is_none_or(|(n, _)| *n != &**gateway_name) {
                let object = gateway_entry.map(|g| parse(&g.object));
                parsed = Some((gateway_name, object));
            }
            let gateway = parsed.as_ref().and_then(|(n, g)| Some((*n, g.as_ref()?)));
            let result = validation::policy(name, &parse(&entry.raw), gateway, options);
            let verdict = match result {
                Ok(policy) => {
                    entry.last_good = Some(policy);
                    Verdict::Valid
                }
                Err(message) => Verdict::Invalid(message),
            };
            report(&mut self.changes, name, &entry.verdict, &verdict);
            entry.verdict = verdict;
        }
        // Reported in name order, as if checked in that order.
        self.changes[reported..].sort_by(|a, b| a.0.cmp(&b.0));
        validated
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::documents::POLICY_KIND;
    use serde_json::json;

    #[test]
    fn kept_text_has_what_validation_statuses_and_events_read_and_nothing_else() {
        let object = json!({
            "apiVersion": "network.deckhouse.io/v1alpha1", "kind": "EgressGateway",
            "metadata": {"name": "g", "uid": "u", "generation": 2, "resourceVersion": "7",
                         "labels": {"team": "a"}, "creationTimestamp": "2026-01-01T00:00:00Z",
                         "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
                         "finalizers": ["f"]},
            "spec": {"nodeSelector": {}},
            "status": {"observedGeneration": 1, "conditions": [{"type": "Ready"}],
                       "activeNodeName": "n1", "readyNodes": 2, "other": true},
            "extra": 1
        });
        let mut expected = object.clone();
        expected.as_object_mut().expect("object").remove("extra");
        let metadata = expected["metadata"].as_object_mut().expect("object");
        metadata.remove("annotations");
        metadata.remove("finalizers");
        expected["status"]
            .as_object_mut()
            .expect("object")
            .remove("other");
        let text = kept(object.clone(), &GATEWAY_SHAPE);
        assert_eq!(parse(&text), expected);
        // A policy's creation time is not read.
        let mut policy = object.clone();
        policy["kind"] = json!(POLICY_KIND);
        expected["kind"] = json!(POLICY_KIND);
        expected["metadata"]
            .as_object_mut()
            .expect("object")
            .remove("creationTimestamp");
        assert_eq!(parse(&kept(policy, &POLICY_SHAPE)), expected);
        // Another apiVersion or kind is kept as it is.
        for (key, other) in [
            ("apiVersion", "network.deckhouse.io/v1beta1"),
            ("kind", "X"),
        ] {
            let mut odd = object.clone();
            odd[key] = json!(other);
            let text = kept(odd, &GATEWAY_SHAPE);
            assert_eq!(parse(&text)[key], json!(other));
        }
        let untyped = json!({"metadata": {"name": "g"}});
        assert_eq!(parse(&kept(untyped.clone(), &GATEWAY_SHAPE)), untyped);
        // A status without any field read is still a status (the core sees one stored).
        let bare = json!({"metadata": {"name": "g"}, "status": {"other": 1}});
        assert_eq!(
            parse(&kept(bare, &GATEWAY_SHAPE)),
            json!({"metadata": {"name": "g"}, "status": {}})
        );
    }
}
