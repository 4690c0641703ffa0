//! The object store: every object of every kind, the global resourceVersion counter, the
//! owner→dependents index for garbage collection, and the commit step that feeds the watch hub.
//! Pure state: callers pass in the time and hold the lock.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::objects::{meta_str, owner_uids, set_meta};
use crate::registry::{Registry, ResourceKey, ResourceType};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::status::{ApiError, Subject};
use crate::watch::{Change, ChangeKind, WatchHub};

/// (namespace, name); the namespace is empty for cluster-scoped kinds.
pub type ObjectKey = (String, String);

/// A stored object's address, used by the garbage-collection index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectRef {
    pub resource: ResourceKey,
    pub key: ObjectKey,
}

/// Namespaces that exist from the start, as in a fresh cluster.
const INITIAL_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

#[derive(Debug)]
pub struct Store {
    pub registry: Registry,
    objects: HashMap<ResourceKey, BTreeMap<ObjectKey, Arc<Value>>>,
    resource_version: u64,
    uid_sequence: u64,
    dependents: HashMap<String, BTreeSet<ObjectRef>>,
    pub hub: WatchHub,
}

impl Store {
    pub fn new(history_limit: usize, now: &str) -> Self {
        let mut store = Self {
            registry: Registry::with_builtins(),
            objects: HashMap::new(),
            resource_version: 0,
            uid_sequence: 0,
            dependents: HashMap::new(),
            hub: WatchHub::new(history_limit),
        };
        let namespaces = ResourceKey {
            group: String::new(),
            plural: "namespaces".into(),
        };
        for name in INITIAL_NAMESPACES {
            let mut ns = json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
            store.stamp_new(&mut ns, now);
            store.commit(
                &namespaces,
                (String::new(), (*name).to_owned()),
                None,
                Some(ns),
            );
        }
        store
    }

    pub fn resource_version(&self) -> u64 {
        self.resource_version
    }

    pub fn get(
        &self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
    ) -> Result<Arc<Value>, ApiError> {
        self.objects
            .get(&rt.key())
            .and_then(|objects| objects.get(&(namespace.to_owned(), name.to_owned())))
            .cloned()
            .ok_or_else(|| ApiError::not_found(subject(rt, name)))
    }

    pub fn exists(&self, key: &ResourceKey, object: &ObjectKey) -> bool {
        self.objects
            .get(key)
            .is_some_and(|objects| objects.contains_key(object))
    }

    /// Objects of a kind, optionally in one namespace, filtered by selectors, in name order.
    pub fn list(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> Vec<Arc<Value>> {
        self.list_page(rt, namespace, labels, fields, None, None).0
    }

    /// One page of [`Store::list`]: the matching objects after key `after`, at most `limit`;
    /// and whether more follow. Scans from `after` on, so paging a long list stays linear.
    pub fn list_page(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
        after: Option<&ObjectKey>,
        limit: Option<usize>,
    ) -> (Vec<Arc<Value>>, bool) {
        let Some(objects) = self.objects.get(&rt.key()) else {
            return (Vec::new(), false);
        };
        if fields.pinned_name().is_none() {
            let matches = |obj: &Arc<Value>| labels.matches(obj) && fields.matches(obj);
            let lower = match (after, namespace) {
                (Some(key), _) => Bound::Excluded(key.clone()),
                (None, Some(ns)) => Bound::Included((ns.to_owned(), String::new())),
                (None, None) => Bound::Unbounded,
            };
            let mut page: Vec<Arc<Value>> = objects
                .range((lower, Bound::Unbounded))
                .skip_while(|((n, _), _)| namespace.is_some_and(|ns| n.as_str() < ns))
                .take_while(|((n, _), _)| namespace.is_none_or(|ns| n == ns))
                .map(|(_, o)| o)
                .filter(|o| matches(o))
                .take(limit.map_or(usize::MAX, |l| l.saturating_add(1)))
                .cloned()
                .collect();
            let more = limit.is_some_and(|l| page.len() > l);
            if let Some(limit) = limit {
                page.truncate(limit);
            }
            return (page, more);
        }
        let mut all = self.list_all(objects, namespace, labels, fields);
        if let Some(after) = after {
            all.retain(|o| object_key(o) > *after);
        }
        let more = limit.is_some_and(|l| all.len() > l);
        if let Some(limit) = limit {
            all.truncate(limit);
        }
        (all, more)
    }

    fn list_all(
        &self,
        objects: &BTreeMap<ObjectKey, Arc<Value>>,
        namespace: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> Vec<Arc<Value>> {
        let matches = |obj: &Arc<Value>| labels.matches(obj) && fields.matches(obj);
        match (namespace, fields.pinned_name()) {
            (ns, Some(name)) => {
                let candidates: Vec<&Arc<Value>> = match ns {
                    Some(ns) => objects
                        .get(&(ns.to_owned(), name.to_owned()))
                        .into_iter()
                        .collect(),
                    None => objects
                        .iter()
                        .filter(|((_, n), _)| n == name)
                        .map(|(_, o)| o)
                        .collect(),
                };
                candidates
                    .into_iter()
                    .filter(|o| matches(o))
                    .cloned()
                    .collect()
            }
            (Some(ns), None) => objects
                .range((ns.to_owned(), String::new())..)
                .take_while(|((n, _), _)| n == ns)
                .map(|(_, o)| o)
                .filter(|o| matches(o))
                .cloned()
                .collect(),
            (None, None) => objects.values().filter(|o| matches(o)).cloned().collect(),
        }
    }

    /// Sets the fields a new object gets from the server (uid, creation time, generation).
    pub fn stamp_new(&mut self, object: &mut Value, now: &str) {
        self.uid_sequence += 1;
        let uid = format!("7e57d00d-0000-4000-8000-{:012x}", self.uid_sequence);
        set_meta(object, "uid", Value::String(uid));
        set_meta(object, "creationTimestamp", Value::String(now.to_owned()));
        set_meta(object, "generation", json!(1));
    }

    /// A short pseudo-random suffix for `generateName`, in the apiserver's alphabet.
    pub fn name_suffix(&mut self) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        self.uid_sequence += 1;
        let mut state =
            self.uid_sequence.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ self.resource_version;
        (0..5)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ALPHABET[((state >> 33) % ALPHABET.len() as u64) as usize] as char
            })
            .collect()
    }

    /// Stores `new` (or removes the object when `None`), bumps the resourceVersion, updates the
    /// indexes and publishes the change. Returns the stored object.
    pub fn commit(
        &mut self,
        resource: &ResourceKey,
        key: ObjectKey,
        previous: Option<Arc<Value>>,
        new: Option<Value>,
    ) -> Arc<Value> {
        self.resource_version += 1;
        let rv = self.resource_version;
        let objects = self.objects.entry(resource.clone()).or_default();
        let (kind, object) = match new {
            Some(mut object) => {
                set_meta(
                    &mut object,
                    "resourceVersion",
                    Value::String(rv.to_string()),
                );
                let object = Arc::new(object);
                objects.insert(key.clone(), Arc::clone(&object));
                let kind = if previous.is_some() {
                    ChangeKind::Modified
                } else {
                    ChangeKind::Added
                };
                (kind, object)
            }
            None => {
                objects.remove(&key);
                // A deleted object is reported with the resourceVersion of its deletion.
                let mut last = previous.as_deref().cloned().unwrap_or(Value::Null);
                set_meta(&mut last, "resourceVersion", Value::String(rv.to_string()));
                (ChangeKind::Deleted, Arc::new(last))
            }
        };
        let reference = ObjectRef {
            resource: resource.clone(),
            key,
        };
        if let Some(old) = &previous {
            for uid in owner_uids(old) {
                if let Some(set) = self.dependents.get_mut(&uid) {
                    set.remove(&reference);
                }
            }
        }
        if kind != ChangeKind::Deleted {
            for uid in owner_uids(&object) {
                self.dependents
                    .entry(uid)
                    .or_default()
                    .insert(reference.clone());
            }
        } else if let Some(uid) = meta_str(&object, "uid") {
            self.dependents.remove(uid);
        }
        self.hub.publish(Change {
            resource_version: rv,
            resource: resource.clone(),
            kind,
            object: Arc::clone(&object),
            previous,
        });
        object
    }

    /// Removes an object (publishing DELETED); cascades are the caller's business.
    pub fn remove(&mut self, reference: &ObjectRef, previous: Option<Arc<Value>>) -> Arc<Value> {
        self.commit(&reference.resource, reference.key.clone(), previous, None)
    }

    /// Objects whose ownerReferences name `uid`.
    pub fn dependents_of(&self, uid: &str) -> Vec<ObjectRef> {
        self.dependents
            .get(uid)
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Every stored object of a kind, in namespace/name order.
    pub fn objects_of(&self, resource: &ResourceKey) -> Vec<Arc<Value>> {
        self.objects
            .get(resource)
            .map(|o| o.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Every object of a kind (for cascading a CRD deletion).
    pub fn keys_of(&self, resource: &ResourceKey) -> Vec<ObjectKey> {
        self.objects
            .get(resource)
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Every namespaced object in a namespace (for cascading a Namespace deletion).
    pub fn refs_in_namespace(&self, namespace: &str) -> Vec<ObjectRef> {
        let mut refs = Vec::new();
        for (resource, objects) in &self.objects {
            let namespaced = self.registry.get(resource).is_some_and(|rt| rt.namespaced);
            if !namespaced {
                continue;
            }
            refs.extend(
                objects
                    .range((namespace.to_owned(), String::new())..)
                    .take_while(|((ns, _), _)| ns == namespace)
                    .map(|(key, _)| ObjectRef {
                        resource: resource.clone(),
                        key: key.clone(),
                    }),
            );
        }
        refs
    }

    pub fn object(&self, reference: &ObjectRef) -> Option<Arc<Value>> {
        self.objects
            .get(&reference.resource)
            .and_then(|o| o.get(&reference.key))
            .cloned()
    }

    /// Drops the storage of a kind whose CRD is gone.
    pub fn drop_kind(&mut self, resource: &ResourceKey) {
        self.objects.remove(resource);
    }

    /// A throwaway copy for `dryRun` requests: same objects, but changes reach no watcher.
    pub fn dry_run_copy(&self) -> Self {
        Self {
            registry: self.registry.clone(),
            objects: self.objects.clone(),
            resource_version: self.resource_version,
            uid_sequence: self.uid_sequence,
            dependents: self.dependents.clone(),
            hub: WatchHub::new(1),
        }
    }
}

pub fn subject<'a>(rt: &'a ResourceType, name: &'a str) -> Subject<'a> {
    Subject {
        group: &rt.group,
        plural: &rt.plural,
        name,
    }
}

/// The store key of an object: (namespace, name).
pub fn object_key(object: &Value) -> ObjectKey {
    (
        meta_str(object, "namespace").unwrap_or_default().to_owned(),
        meta_str(object, "name").unwrap_or_default().to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2025-01-01T00:00:00Z";

    fn node(name: &str, owner: Option<&str>) -> Value {
        let mut obj = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {"role": name}}});
        if let Some(uid) = owner {
            obj["metadata"]["ownerReferences"] =
                json!([{"uid": uid, "name": "o", "kind": "X", "apiVersion": "v1"}]);
        }
        obj
    }

    #[test]
    fn commits_bump_one_global_resource_version_and_feed_history() {
        let mut store = Store::new(100, NOW);
        let base = store.resource_version();
        let nodes = store
            .registry
            .lookup("", "v1", "nodes")
            .cloned()
            .expect("nodes");
        let key = (String::new(), "a".to_owned());
        let first = store.commit(&nodes.key(), key.clone(), None, Some(node("a", None)));
        let second = store.commit(
            &nodes.key(),
            key.clone(),
            Some(first),
            Some(node("a", None)),
        );
        assert_eq!(
            meta_str(&second, "resourceVersion"),
            Some((base + 2).to_string().as_str())
        );
        let sub = store.hub.subscribe_after(base).expect("history");
        let kinds: Vec<ChangeKind> = sub.backlog.iter().map(|c| c.kind).collect();
        assert_eq!(kinds, vec![ChangeKind::Added, ChangeKind::Modified]);
        store.commit(&nodes.key(), key, Some(second), None);
        assert!(store.get(&nodes, "", "a").is_err());
    }

    #[test]
    fn list_filters_by_namespace_selectors_and_pinned_name() {
        let mut store = Store::new(100, NOW);
        let pods = store
            .registry
            .lookup("", "v1", "pods")
            .cloned()
            .expect("pods");
        for (ns, name) in [("a", "p1"), ("a", "p2"), ("b", "p1")] {
            let obj = json!({"metadata": {"name": name, "namespace": ns, "labels": {"app": name}}});
            store.commit(&pods.key(), (ns.into(), name.into()), None, Some(obj));
        }
        let all = LabelSelector::default();
        let none = FieldSelector::default();
        assert_eq!(store.list(&pods, Some("a"), &all, &none).len(), 2);
        assert_eq!(
            store
                .list(
                    &pods,
                    None,
                    &LabelSelector::parse("app=p1").expect("sel"),
                    &none
                )
                .len(),
            2
        );
        let pinned = FieldSelector::parse("metadata.name=p1").expect("sel");
        assert_eq!(store.list(&pods, Some("b"), &all, &pinned).len(), 1);
        assert_eq!(store.list(&pods, None, &all, &pinned).len(), 2);
    }

    #[test]
    fn dependents_index_follows_owner_references() {
        let mut store = Store::new(100, NOW);
        let nodes = store
            .registry
            .lookup("", "v1", "nodes")
            .cloned()
            .expect("nodes");
        let obj = store.commit(
            &nodes.key(),
            (String::new(), "d".into()),
            None,
            Some(node("d", Some("owner-1"))),
        );
        assert_eq!(store.dependents_of("owner-1").len(), 1);
        store.commit(
            &nodes.key(),
            (String::new(), "d".into()),
            Some(obj),
            Some(node("d", None)),
        );
        assert!(store.dependents_of("owner-1").is_empty());
    }
}
