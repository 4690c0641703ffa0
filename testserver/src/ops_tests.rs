//! Unit tests of the write verbs against a bare [`Store`]: status subresource isolation,
//! generation, optimistic concurrency, generateName, finalizers and cascading deletion.

use serde_json::{Value, json};

use crate::objects::meta_str;
use crate::ops::Request;
use crate::patch::PatchKind;
use crate::registry::ResourceType;
use crate::store::Store;

const NOW: &str = "2025-01-01T00:00:00Z";

fn kind(store: &Store, group: &str, plural: &str) -> ResourceType {
    store
        .registry
        .all()
        .find(|rt| rt.group == group && rt.plural == plural)
        .cloned()
        .expect("served kind")
}

fn req<'a>(rt: &'a ResourceType, namespace: &'a str) -> Request<'a> {
    Request {
        rt,
        version: "v1",
        namespace,
        manager: "test",
        now: NOW,
    }
}

#[test]
fn status_subresource_isolates_spec_and_status_writes() {
    let mut store = Store::new(100, NOW);
    let nodes = kind(&store, "", "nodes");
    store
        .create(
            req(&nodes, ""),
            json!({"metadata": {"name": "n"}, "spec": {}, "status": {"phase": "a"}}),
        )
        .expect("create");

    let main = json!({"spec": {"unschedulable": true}, "status": {"phase": "ignored"}});
    let after = store
        .patch(req(&nodes, ""), "n", PatchKind::Merge, main, None, false)
        .expect("patch");
    assert_eq!(
        (
            after["spec"]["unschedulable"].clone(),
            after["status"]["phase"].clone()
        ),
        (json!(true), json!("a"))
    );
    assert_eq!(
        after["metadata"]["generation"],
        json!(2),
        "spec change bumps generation"
    );

    let status = json!({"spec": {"unschedulable": false}, "status": {"phase": "b"}});
    let after = store
        .patch(
            req(&nodes, ""),
            "n",
            PatchKind::Merge,
            status,
            Some("status"),
            false,
        )
        .expect("status");
    assert_eq!(
        (
            after["spec"]["unschedulable"].clone(),
            after["status"]["phase"].clone()
        ),
        (json!(true), json!("b"))
    );
    assert_eq!(
        after["metadata"]["generation"],
        json!(2),
        "status change keeps generation"
    );
}

#[test]
fn stale_resource_version_conflicts_and_no_op_writes_keep_the_version() {
    let mut store = Store::new(100, NOW);
    let maps = kind(&store, "", "configmaps");
    let created = store
        .create(
            req(&maps, "default"),
            json!({"metadata": {"name": "c"}, "data": {"a": "1"}}),
        )
        .expect("create");
    let rv = meta_str(&created, "resourceVersion")
        .expect("rv")
        .to_owned();

    let unchanged = store
        .replace(req(&maps, "default"), "c", (*created).clone(), None)
        .expect("no-op");
    assert_eq!(meta_str(&unchanged, "resourceVersion"), Some(rv.as_str()));

    let mut edit = (*created).clone();
    edit["data"]["a"] = json!("2");
    store
        .replace(req(&maps, "default"), "c", edit.clone(), None)
        .expect("update");
    edit["data"]["a"] = json!("3");
    let err = store
        .replace(req(&maps, "default"), "c", edit, None)
        .expect_err("stale");
    assert_eq!((err.code, err.reason), (409, "Conflict"));
}

#[test]
fn create_assigns_generated_names_and_rejects_duplicates_and_missing_namespaces() {
    let mut store = Store::new(100, NOW);
    let pods = kind(&store, "", "pods");
    let made = store
        .create(
            req(&pods, "default"),
            json!({"metadata": {"generateName": "agent-"}}),
        )
        .expect("create");
    let name = meta_str(&made, "name").expect("name");
    assert!(
        name.starts_with("agent-") && name.len() == "agent-".len() + 5,
        "{name}"
    );
    assert!(meta_str(&made, "uid").is_some() && meta_str(&made, "creationTimestamp") == Some(NOW));

    let dup = store
        .create(req(&pods, "default"), json!({"metadata": {"name": name}}))
        .expect_err("dup");
    assert_eq!((dup.code, dup.reason), (409, "AlreadyExists"));
    let missing = store
        .create(req(&pods, "nowhere"), json!({"metadata": {"name": "p"}}))
        .expect_err("ns");
    assert_eq!(missing.code, 404);
}

#[test]
fn finalizers_delay_deletion_until_removed() {
    let mut store = Store::new(100, NOW);
    let nodes = kind(&store, "", "nodes");
    store
        .create(
            req(&nodes, ""),
            json!({"metadata": {"name": "n", "finalizers": ["egressc/cleanup"]}}),
        )
        .expect("create");
    let marked = store
        .delete(req(&nodes, ""), "n", &json!({}))
        .expect("delete");
    assert_eq!(marked["metadata"]["deletionTimestamp"], json!(NOW));
    assert!(
        store.get(&nodes, "", "n").is_ok(),
        "still there while finalized"
    );

    let clear = json!({"metadata": {"finalizers": null}});
    store
        .patch(req(&nodes, ""), "n", PatchKind::Merge, clear, None, false)
        .expect("clear finalizers");
    assert!(
        store.get(&nodes, "", "n").is_err(),
        "gone once finalizers are empty"
    );
}

#[test]
fn deleting_an_owner_deletes_dependents_and_crd_deletion_removes_its_kind() {
    let mut store = Store::new(100, NOW);
    let crds = kind(&store, "apiextensions.k8s.io", "customresourcedefinitions");
    let crd = json!({"metadata": {"name": "widgets.example.com"}, "spec": {
        "group": "example.com", "scope": "Namespaced", "names": {"plural": "widgets", "kind": "Widget"},
        "versions": [{"name": "v1", "served": true, "storage": true}]}});
    let crd = store.create(req(&crds, ""), crd).expect("crd");
    assert_eq!(crd["status"]["conditions"][1]["type"], json!("Established"));
    let widgets = store
        .registry
        .lookup("example.com", "v1", "widgets")
        .cloned()
        .expect("served");

    let owner = store
        .create(
            req(&widgets, "default"),
            json!({"metadata": {"name": "owner"}}),
        )
        .expect("owner");
    let owner_uid = meta_str(&owner, "uid").expect("uid").to_owned();
    let maps = kind(&store, "", "configmaps");
    let dependent = json!({"metadata": {"name": "dep", "ownerReferences": [
        {"apiVersion": "example.com/v1", "kind": "Widget", "name": "owner", "uid": owner_uid}]}});
    store
        .create(req(&maps, "default"), dependent)
        .expect("dependent");

    store
        .delete(req(&widgets, "default"), "owner", &json!({}))
        .expect("delete owner");
    assert!(
        store.get(&maps, "default", "dep").is_err(),
        "dependent collected"
    );

    store
        .create(
            req(&widgets, "default"),
            json!({"metadata": {"name": "w2"}}),
        )
        .expect("w2");
    store
        .delete(req(&crds, ""), "widgets.example.com", &Value::Null)
        .expect("delete crd");
    assert!(
        store
            .registry
            .lookup("example.com", "v1", "widgets")
            .is_none()
    );
}

#[test]
fn strategic_merge_is_refused_for_custom_resources() {
    let mut store = Store::new(100, NOW);
    let crds = kind(&store, "apiextensions.k8s.io", "customresourcedefinitions");
    let crd = json!({"metadata": {"name": "gadgets.example.com"}, "spec": {
        "group": "example.com", "scope": "Cluster", "names": {"plural": "gadgets", "kind": "Gadget"},
        "versions": [{"name": "v1", "served": true, "storage": true}]}});
    store.create(req(&crds, ""), crd).expect("crd");
    let gadgets = store
        .registry
        .lookup("example.com", "v1", "gadgets")
        .cloned()
        .expect("served");
    store
        .create(req(&gadgets, ""), json!({"metadata": {"name": "g"}}))
        .expect("create");
    let err = store
        .patch(
            req(&gadgets, ""),
            "g",
            PatchKind::Strategic,
            json!({}),
            None,
            false,
        )
        .expect_err("415");
    assert_eq!(err.code, 415);
}
