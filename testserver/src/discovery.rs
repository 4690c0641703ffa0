//! Discovery documents: `/version`, `/api`, `/apis`, `/api/v1` and `/apis/<group>/<version>`,
//! all derived from the registry (unaggregated form; clients fall back to it).

use serde_json::{Value, json};

use crate::registry::{Registry, ResourceType};

/// The Kubernetes version the server claims to be.
pub fn version() -> Value {
    json!({
        "major": "1", "minor": "33", "gitVersion": "v1.33.0-kube-testserver",
        "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.24", "compiler": "gc", "platform": "linux/amd64",
    })
}

pub fn core_versions(address: &str) -> Value {
    json!({
        "kind": "APIVersions", "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
    })
}

pub fn group_list(registry: &Registry) -> Value {
    let groups: Vec<Value> = registry
        .groups()
        .into_iter()
        .filter(|(group, _)| !group.is_empty())
        .map(|(group, versions)| group_document(&group, &versions))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>`.
pub fn group(registry: &Registry, name: &str) -> Option<Value> {
    let (group, versions) = registry
        .groups()
        .into_iter()
        .find(|(g, _)| g == name && !g.is_empty())?;
    let mut document = group_document(&group, &versions);
    document["kind"] = json!("APIGroup");
    document["apiVersion"] = json!("v1");
    Some(document)
}

fn group_document(group: &str, versions: &[String]) -> Value {
    let entries: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({"name": group, "versions": entries, "preferredVersion": entries.first().cloned().unwrap_or(Value::Null)})
}

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// `/api/v1` or `/apis/<group>/<version>`; `None` if nothing is served there.
pub fn resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let served: Vec<&ResourceType> = registry
        .all()
        .filter(|rt| rt.group == group && rt.versions.iter().any(|v| v == version))
        .collect();
    if served.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for rt in served {
        resources.push(json!({
            "name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced,
            "kind": rt.kind, "verbs": VERBS, "shortNames": rt.short_names,
            "storageVersionHash": "",
        }));
        if rt.has_status {
            resources.push(json!({
                "name": format!("{}/status", rt.plural), "singularName": "", "namespaced": rt.namespaced,
                "kind": rt.kind, "verbs": ["get", "patch", "update"],
            }));
        }
    }
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_lists_include_status_subresources_and_short_names() {
        let registry = Registry::with_builtins();
        let core = resource_list(&registry, "", "v1").expect("core");
        let names: Vec<&str> = core["resources"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|r| r["name"].as_str())
            .collect();
        assert!(
            names.contains(&"nodes")
                && names.contains(&"nodes/status")
                && !names.contains(&"configmaps/status")
        );
        let leases = resource_list(&registry, "coordination.k8s.io", "v1").expect("leases");
        assert_eq!(leases["groupVersion"], "coordination.k8s.io/v1");
        assert!(resource_list(&registry, "cilium.io", "v2").is_none());
    }

    #[test]
    fn group_list_names_every_non_core_group() {
        let registry = Registry::with_builtins();
        let list = group_list(&registry);
        let names: Vec<&str> = list["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .filter_map(|g| g["name"].as_str())
            .collect();
        assert!(
            names.contains(&"apps")
                && names.contains(&"apiextensions.k8s.io")
                && !names.contains(&"")
        );
        assert_eq!(
            group(&registry, "apps").expect("apps")["preferredVersion"]["version"],
            "v1"
        );
    }
}
