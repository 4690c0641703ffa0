//! The kinds the server serves: a data table of built-ins plus kinds added by CRDs at run time.

use std::collections::BTreeMap;

use serde_json::Value;

/// Identifies a stored resource independently of the version it is read through.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceKey {
    pub group: String,
    pub plural: String,
}

/// Everything the server needs to know about one resource kind.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceType {
    pub group: String,
    /// Served versions; the first is the preferred (and storage) version.
    pub versions: Vec<String>,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub has_status: bool,
    /// `openAPIV3Schema` of the preferred version, for CRDs: tells SSA which lists are maps/sets.
    pub schema: Option<Value>,
    /// True for kinds defined by a CustomResourceDefinition.
    pub custom: bool,
}

impl ResourceType {
    pub fn key(&self) -> ResourceKey {
        ResourceKey {
            group: self.group.clone(),
            plural: self.plural.clone(),
        }
    }

    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_owned()
        } else {
            format!("{}/{version}", self.group)
        }
    }

    pub fn preferred_version(&self) -> &str {
        self.versions.first().map(String::as_str).unwrap_or("v1")
    }
}

/// One row of the built-in table: group, version, plural, kind, namespaced, status, short names.
type BuiltinRow = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
    bool,
    &'static [&'static str],
);

/// Built-in kinds. Adding a kind is one line here.
const BUILTINS: &[BuiltinRow] = &[
    ("", "v1", "namespaces", "Namespace", false, true, &["ns"]),
    ("", "v1", "nodes", "Node", false, true, &["no"]),
    ("", "v1", "pods", "Pod", true, true, &["po"]),
    ("", "v1", "events", "Event", true, false, &["ev"]),
    ("", "v1", "configmaps", "ConfigMap", true, false, &["cm"]),
    ("", "v1", "secrets", "Secret", true, false, &[]),
    (
        "",
        "v1",
        "serviceaccounts",
        "ServiceAccount",
        true,
        false,
        &["sa"],
    ),
    ("", "v1", "services", "Service", true, true, &["svc"]),
    ("apps", "v1", "daemonsets", "DaemonSet", true, true, &["ds"]),
    (
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        true,
        true,
        &["pdb"],
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "ClusterRole",
        false,
        false,
        &[],
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        false,
        false,
        &[],
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "Role",
        true,
        false,
        &[],
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "RoleBinding",
        true,
        false,
        &[],
    ),
    (
        "apps",
        "v1",
        "deployments",
        "Deployment",
        true,
        true,
        &["deploy"],
    ),
    (
        "coordination.k8s.io",
        "v1",
        "leases",
        "Lease",
        true,
        false,
        &[],
    ),
    (
        "events.k8s.io",
        "v1",
        "events",
        "Event",
        true,
        false,
        &["ev"],
    ),
    (
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
        true,
        &["crd", "crds"],
    ),
];

/// The set of served kinds, keyed by (group, plural).
#[derive(Debug, Clone)]
pub struct Registry {
    types: BTreeMap<ResourceKey, ResourceType>,
}

impl Registry {
    pub fn with_builtins() -> Self {
        let types = BUILTINS
            .iter()
            .map(
                |&(group, version, plural, kind, namespaced, has_status, short_names)| {
                    let rt = ResourceType {
                        group: group.to_owned(),
                        versions: vec![version.to_owned()],
                        plural: plural.to_owned(),
                        singular: kind.to_lowercase(),
                        kind: kind.to_owned(),
                        namespaced,
                        short_names: short_names.iter().map(|s| (*s).to_owned()).collect(),
                        has_status,
                        schema: None,
                        custom: false,
                    };
                    (rt.key(), rt)
                },
            )
            .collect();
        Self { types }
    }

    /// The type served at `/apis/<group>/<version>/<plural>`, if that version is served.
    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        let key = ResourceKey {
            group: group.to_owned(),
            plural: plural.to_owned(),
        };
        self.types
            .get(&key)
            .filter(|rt| rt.versions.iter().any(|v| v == version))
    }

    pub fn get(&self, key: &ResourceKey) -> Option<&ResourceType> {
        self.types.get(key)
    }

    pub fn all(&self) -> impl Iterator<Item = &ResourceType> {
        self.types.values()
    }

    /// Groups with their served versions, preferred version first, in a stable order.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for rt in self.types.values() {
            let versions = groups.entry(rt.group.clone()).or_default();
            for version in &rt.versions {
                if !versions.contains(version) {
                    versions.push(version.clone());
                }
            }
        }
        groups.into_iter().collect()
    }

    /// Starts (or updates) serving the kind a CRD defines. Returns the key it is served under.
    pub fn serve_crd(&mut self, crd: &Value) -> Option<ResourceKey> {
        let rt = crd_resource_type(crd)?;
        let key = rt.key();
        self.types.insert(key.clone(), rt);
        Some(key)
    }

    /// Stops serving a custom kind; built-ins are never removed.
    pub fn forget_crd(&mut self, key: &ResourceKey) {
        if self.types.get(key).is_some_and(|rt| rt.custom) {
            self.types.remove(key);
        }
    }
}

/// Reads the served kind out of a CustomResourceDefinition object; `None` if it is malformed.
pub fn crd_resource_type(crd: &Value) -> Option<ResourceType> {
    let spec = crd.get("spec")?;
    let names = spec.get("names")?;
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let plural = text(names.get("plural"))?;
    let kind = text(names.get("kind"))?;
    let group = text(spec.get("group"))?;
    let served: Vec<&Value> = spec
        .get("versions")?
        .as_array()?
        .iter()
        .filter(|v| v.get("served").and_then(Value::as_bool).unwrap_or(true))
        .collect();
    // The storage version is preferred, as kubectl's discovery picks it first.
    let mut ordered = served.clone();
    ordered.sort_by_key(|v| !v.get("storage").and_then(Value::as_bool).unwrap_or(false));
    let preferred = ordered.first()?;
    let short_names = names
        .get("shortNames")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Some(ResourceType {
        group,
        versions: ordered.iter().filter_map(|v| text(v.get("name"))).collect(),
        singular: text(names.get("singular")).unwrap_or_else(|| kind.to_lowercase()),
        plural,
        kind,
        namespaced: spec.get("scope").and_then(Value::as_str) == Some("Namespaced"),
        short_names,
        has_status: preferred.pointer("/subresources/status").is_some(),
        schema: preferred.pointer("/schema/openAPIV3Schema").cloned(),
        custom: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn crd_defines_a_served_kind_with_status_from_its_storage_version() {
        let crd = json!({"spec": {
        "group": "cilium.io", "scope": "Cluster",
        "names": {"plural": "ciliumnodes", "kind": "CiliumNode", "shortNames": ["cn"]},
        "versions": [
            {"name": "v2alpha1", "served": true, "storage": false},
            {"name": "v2", "served": true, "storage": true, "subresources": {"status": {}}},
            {"name": "v1", "served": false, "storage": false}
        ]}});
        let mut registry = Registry::with_builtins();
        let key = registry.serve_crd(&crd).expect("valid crd");
        let rt = registry.get(&key).expect("served");
        assert_eq!(rt.versions, vec!["v2", "v2alpha1"]);
        assert!(rt.has_status && !rt.namespaced && rt.custom);
        assert!(registry.lookup("cilium.io", "v1", "ciliumnodes").is_none());
        registry.forget_crd(&key);
        assert!(registry.lookup("cilium.io", "v2", "ciliumnodes").is_none());
    }

    #[test]
    fn builtins_cannot_be_forgotten() {
        let mut registry = Registry::with_builtins();
        let key = ResourceKey {
            group: String::new(),
            plural: "nodes".into(),
        };
        registry.forget_crd(&key);
        assert!(registry.lookup("", "v1", "nodes").is_some());
    }
}
