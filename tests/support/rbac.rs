//! A small RBAC authorizer for tests: request attributes from an HTTP request line, and the
//! Kubernetes RBAC decision for one ServiceAccount under a set of Roles, ClusterRoles and
//! bindings (as `egressc install` renders them). Covers what the API server's RBAC authorizer
//! does for resource requests: groups, resources and subresources, verbs, resource names and
//! `*`, Roles only in their own namespace.

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use serde_json::Value;

/// What RBAC decides on.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Attributes {
    pub verb: String,
    pub group: String,
    /// `resource` or `resource/subresource`.
    pub resource: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
}

impl std::fmt::Display for Attributes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let namespace = self.namespace.as_deref().unwrap_or("(cluster)");
        write!(
            f,
            "{} {}/{} in {namespace}",
            self.verb, self.group, self.resource
        )
    }
}

/// The attributes of a resource request, `None` for a non-resource URL (`/version`, discovery).
pub fn attributes(method: &str, target: &str) -> Option<Attributes> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest) = match segments.as_slice() {
        ["api", _version, rest @ ..] if !rest.is_empty() => ("", rest),
        ["apis", group, _version, rest @ ..] if !rest.is_empty() => (*group, rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", namespace, rest @ ..] if !rest.is_empty() => {
            (Some((*namespace).to_owned()), rest)
        }
        _ => (None, rest),
    };
    let (resource, name) = match rest {
        [resource] => ((*resource).to_owned(), None),
        [resource, name] => ((*resource).to_owned(), Some((*name).to_owned())),
        [resource, name, sub] => (format!("{resource}/{sub}"), Some((*name).to_owned())),
        _ => return None,
    };
    let watch = query
        .split('&')
        .any(|pair| pair == "watch=true" || pair == "watch=1");
    let verb = match (method, &name) {
        ("GET", Some(_)) => "get",
        ("GET", None) if watch => "watch",
        ("GET", None) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", Some(_)) => "delete",
        ("DELETE", None) => "deletecollection",
        _ => method,
    };
    Some(Attributes {
        verb: verb.to_owned(),
        group: group.to_owned(),
        resource,
        namespace,
        name,
    })
}

/// The RBAC objects of a manifest stream.
#[derive(Default)]
pub struct Policy {
    pub roles: Vec<Role>,
    pub cluster_roles: Vec<ClusterRole>,
    pub role_bindings: Vec<RoleBinding>,
    pub cluster_role_bindings: Vec<ClusterRoleBinding>,
}

fn parse<T: serde::de::DeserializeOwned>(doc: &Value) -> T {
    serde_json::from_value(doc.clone()).expect("RBAC object")
}

impl Policy {
    pub fn from_documents(docs: &[Value]) -> Policy {
        let mut policy = Policy::default();
        for doc in docs {
            match doc["kind"].as_str() {
                Some("Role") => policy.roles.push(parse(doc)),
                Some("ClusterRole") => policy.cluster_roles.push(parse(doc)),
                Some("RoleBinding") => policy.role_bindings.push(parse(doc)),
                Some("ClusterRoleBinding") => policy.cluster_role_bindings.push(parse(doc)),
                _ => {}
            }
        }
        policy
    }

    /// The rules ServiceAccount `namespace/name` holds, each with the namespace it applies in
    /// (`None`: every namespace and cluster-scoped resources, through a ClusterRoleBinding).
    pub fn grants(&self, namespace: &str, name: &str) -> Vec<(Option<String>, PolicyRule)> {
        let is_subject = |subjects: &Option<Vec<k8s_openapi::api::rbac::v1::Subject>>| {
            subjects.iter().flatten().any(|s| {
                s.kind == "ServiceAccount"
                    && s.name == name
                    && s.namespace.as_deref() == Some(namespace)
            })
        };
        let cluster_role_rules = |role_name: &str| -> Vec<PolicyRule> {
            self.cluster_roles
                .iter()
                .filter(|r| r.metadata.name.as_deref() == Some(role_name))
                .flat_map(|r| r.rules.clone().unwrap_or_default())
                .collect()
        };
        let mut grants: Vec<(Option<String>, PolicyRule)> = self
            .cluster_role_bindings
            .iter()
            .filter(|b| b.role_ref.kind == "ClusterRole" && is_subject(&b.subjects))
            .flat_map(|b| cluster_role_rules(&b.role_ref.name))
            .map(|rule| (None, rule))
            .collect();
        for binding in self
            .role_bindings
            .iter()
            .filter(|b| is_subject(&b.subjects))
        {
            let scope = binding.metadata.namespace.clone();
            let rules = match binding.role_ref.kind.as_str() {
                "ClusterRole" => cluster_role_rules(&binding.role_ref.name),
                _ => self
                    .roles
                    .iter()
                    .filter(|r| {
                        r.metadata.name.as_deref() == Some(binding.role_ref.name.as_str())
                            && r.metadata.namespace == scope
                    })
                    .flat_map(|r| r.rules.clone().unwrap_or_default())
                    .collect(),
            };
            grants.extend(rules.into_iter().map(|rule| (scope.clone(), rule)));
        }
        grants
    }

    /// Does ServiceAccount `namespace/name` get `request`?
    pub fn allows(&self, namespace: &str, name: &str, request: &Attributes) -> bool {
        self.grants(namespace, name).iter().any(|(scope, rule)| {
            (scope.is_none() || *scope == request.namespace) && matches(rule, request)
        })
    }

    /// Every `verb group/resource in scope` the rules of ServiceAccount `namespace/name` grant
    /// that none of `requests` used: permissions the account holds for nothing.
    pub fn unused<'r>(
        &self,
        namespace: &str,
        name: &str,
        requests: impl IntoIterator<Item = &'r Attributes> + Clone,
    ) -> Vec<String> {
        let mut unused = Vec::new();
        for (scope, rule) in self.grants(namespace, name) {
            let groups = rule.api_groups.clone().unwrap_or_default();
            let resources = rule.resources.clone().unwrap_or_default();
            for group in &groups {
                for resource in &resources {
                    for verb in &rule.verbs {
                        let used = requests.clone().into_iter().any(|r| {
                            r.group == *group
                                && r.resource == *resource
                                && r.verb == *verb
                                && (scope.is_none() || r.namespace == scope)
                        });
                        if !used {
                            let scope = scope.as_deref().unwrap_or("(cluster role)");
                            unused.push(format!("{verb} {group}/{resource} in {scope}"));
                        }
                    }
                }
            }
        }
        unused
    }
}

fn contains(list: &Option<Vec<String>>, value: &str) -> bool {
    list.iter()
        .flatten()
        .any(|item| item == "*" || item == value)
}

fn matches(rule: &PolicyRule, request: &Attributes) -> bool {
    let names_ok = match (&rule.resource_names, &request.name) {
        (None, _) => true,
        (Some(names), _) if names.is_empty() => true,
        (Some(names), Some(name)) => names.contains(name),
        (Some(_), None) => false,
    };
    contains(&rule.api_groups, &request.group)
        && contains(&rule.resources, &request.resource)
        && rule.verbs.iter().any(|v| v == "*" || *v == request.verb)
        && names_ok
}
