//! Minimal OpenAPI v3 documents: per group-version, one PATCH operation per kind that declares
//! the `fieldValidation` query parameter. kubectl reads exactly that to decide it may leave
//! validation to the server, so it never needs real schemas (no schemas are served).

use serde_json::{Map, Value, json};

use crate::registry::{Registry, ResourceType};

/// `/openapi/v3`: the index of group-version documents.
pub fn index(registry: &Registry) -> Value {
    let mut paths = Map::new();
    for (group, versions) in registry.groups() {
        for version in versions {
            let path = prefix(&group, &version);
            paths.insert(
                path.trim_start_matches('/').to_owned(),
                json!({"serverRelativeURL": format!("/openapi/v3{path}?hash=kube-testserver")}),
            );
        }
    }
    json!({"paths": paths})
}

fn prefix(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    }
}

/// `/openapi/v3/api/v1` or `/openapi/v3/apis/<group>/<version>`.
pub fn group_version(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let served: Vec<&ResourceType> = registry
        .all()
        .filter(|rt| rt.group == group && rt.versions.iter().any(|v| v == version))
        .collect();
    if served.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    for rt in served {
        let scope = if rt.namespaced {
            "/namespaces/{namespace}"
        } else {
            ""
        };
        let path = format!("{}{scope}/{}/{{name}}", prefix(group, version), rt.plural);
        paths.insert(path, json!({"patch": {
            "x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": rt.kind},
            "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}}],
            "responses": {"200": {"description": "OK"}},
        }}));
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "kube-testserver", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_declares_field_validation_on_patch() {
        let registry = Registry::with_builtins();
        let doc = group_version(&registry, "", "v1").expect("core");
        let node = &doc["paths"]["/api/v1/nodes/{name}"]["patch"];
        assert_eq!(node["x-kubernetes-group-version-kind"]["kind"], "Node");
        assert_eq!(node["parameters"][0]["name"], "fieldValidation");
        assert!(doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"].is_object());
        assert!(
            index(&registry)["paths"]["apis/coordination.k8s.io/v1"]["serverRelativeURL"]
                .is_string()
        );
    }
}
