//! The template set: the built-in minijinja sources (compiled into the binary) and user
//! overrides by name. Pure data; reading an override directory is the CLI shell's job.

use std::collections::BTreeMap;

use super::error::RenderError;

/// Template of one CiliumEgressGatewayPolicy.
pub const CEGP: &str = "cegp.yaml.j2";
/// Template of one partial Node carrying egressc's labels.
pub const NODE: &str = "node.yaml.j2";
/// Template of the agent's Namespace.
pub const AGENT_NAMESPACE: &str = "agent-namespace.yaml.j2";
/// Template of the agent's ServiceAccount.
pub const AGENT_SERVICE_ACCOUNT: &str = "agent-serviceaccount.yaml.j2";
/// Template of the agent's ClusterRole (read EgressGateways).
pub const AGENT_CLUSTER_ROLE: &str = "agent-clusterrole.yaml.j2";
/// Template of the agent's ClusterRoleBinding.
pub const AGENT_CLUSTER_ROLE_BINDING: &str = "agent-clusterrolebinding.yaml.j2";
/// Template of the agent's Role (Leases in its namespace).
pub const AGENT_ROLE: &str = "agent-role.yaml.j2";
/// Template of the agent's RoleBinding.
pub const AGENT_ROLE_BINDING: &str = "agent-rolebinding.yaml.j2";
/// Template of the agent DaemonSet.
pub const AGENT_DAEMONSET: &str = "agent-daemonset.yaml.j2";

/// Template of the controller's ServiceAccount (`egressc install`).
pub const SYNC_SERVICE_ACCOUNT: &str = "sync-serviceaccount.yaml.j2";
/// Template of the controller's ClusterRole.
pub const SYNC_CLUSTER_ROLE: &str = "sync-clusterrole.yaml.j2";
/// Template of the controller's ClusterRoleBinding.
pub const SYNC_CLUSTER_ROLE_BINDING: &str = "sync-clusterrolebinding.yaml.j2";
/// Template of one of the controller's Roles (one per namespace it works in).
pub const SYNC_ROLE: &str = "sync-role.yaml.j2";
/// Template of one of the controller's RoleBindings.
pub const SYNC_ROLE_BINDING: &str = "sync-rolebinding.yaml.j2";
/// Template of the controller Deployment.
pub const SYNC_DEPLOYMENT: &str = "sync-deployment.yaml.j2";
/// Template of the controller's PodDisruptionBudget.
pub const SYNC_PDB: &str = "sync-poddisruptionbudget.yaml.j2";

/// Every template name the renderer uses, with its built-in source.
const BUILTIN: &[(&str, &str)] = &[
    (CEGP, include_str!("../../../templates/cegp.yaml.j2")),
    (NODE, include_str!("../../../templates/node.yaml.j2")),
    (
        AGENT_NAMESPACE,
        include_str!("../../../templates/agent-namespace.yaml.j2"),
    ),
    (
        AGENT_SERVICE_ACCOUNT,
        include_str!("../../../templates/agent-serviceaccount.yaml.j2"),
    ),
    (
        AGENT_CLUSTER_ROLE,
        include_str!("../../../templates/agent-clusterrole.yaml.j2"),
    ),
    (
        AGENT_CLUSTER_ROLE_BINDING,
        include_str!("../../../templates/agent-clusterrolebinding.yaml.j2"),
    ),
    (
        AGENT_ROLE,
        include_str!("../../../templates/agent-role.yaml.j2"),
    ),
    (
        AGENT_ROLE_BINDING,
        include_str!("../../../templates/agent-rolebinding.yaml.j2"),
    ),
    (
        AGENT_DAEMONSET,
        include_str!("../../../templates/agent-daemonset.yaml.j2"),
    ),
    (
        SYNC_SERVICE_ACCOUNT,
        include_str!("../../../templates/sync-serviceaccount.yaml.j2"),
    ),
    (
        SYNC_CLUSTER_ROLE,
        include_str!("../../../templates/sync-clusterrole.yaml.j2"),
    ),
    (
        SYNC_CLUSTER_ROLE_BINDING,
        include_str!("../../../templates/sync-clusterrolebinding.yaml.j2"),
    ),
    (
        SYNC_ROLE,
        include_str!("../../../templates/sync-role.yaml.j2"),
    ),
    (
        SYNC_ROLE_BINDING,
        include_str!("../../../templates/sync-rolebinding.yaml.j2"),
    ),
    (
        SYNC_DEPLOYMENT,
        include_str!("../../../templates/sync-deployment.yaml.j2"),
    ),
    (
        SYNC_PDB,
        include_str!("../../../templates/sync-poddisruptionbudget.yaml.j2"),
    ),
];

/// Template sources by name. Starts from the built-in set; overrides replace sources by name.
/// Names starting with `_` are extra partials (for `{% import %}`/`{% include %}`) and may be
/// added freely; any other unknown name is rejected so that a misspelt override file does not go
/// unnoticed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Templates {
    sources: BTreeMap<String, String>,
}

impl Templates {
    /// The built-in templates.
    pub fn builtin() -> Self {
        Templates {
            sources: BUILTIN
                .iter()
                .map(|(name, source)| (name.to_string(), source.to_string()))
                .collect(),
        }
    }

    /// Names of the templates the renderer uses (the built-in set).
    pub fn builtin_names() -> impl Iterator<Item = &'static str> {
        BUILTIN.iter().map(|(name, _)| *name)
    }

    /// Replaces the source of `name` (or adds a `_` partial).
    pub fn set(&mut self, name: &str, source: String) -> Result<(), RenderError> {
        let known = BUILTIN.iter().any(|(builtin, _)| *builtin == name);
        if !known && !name.starts_with('_') {
            return Err(RenderError::UnknownTemplate {
                name: name.to_string(),
                suggestion: closest_builtin(name),
            });
        }
        self.sources.insert(name.to_string(), source);
        Ok(())
    }

    /// The builtin set with each `(name, source)` of `overrides` applied.
    pub fn with_overrides(
        overrides: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, RenderError> {
        let mut templates = Templates::builtin();
        for (name, source) in overrides {
            templates.set(&name, source)?;
        }
        Ok(templates)
    }

    /// All `(name, source)` pairs, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.sources.iter().map(|(n, s)| (n.as_str(), s.as_str()))
    }
}

/// The built-in name most similar to `name`, when it is close enough to be a likely typo.
fn closest_builtin(name: &str) -> Option<String> {
    Templates::builtin_names()
        .map(|builtin| (strsim::jaro_winkler(name, builtin), builtin))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, builtin)| builtin.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_known_names_and_reject_typos() {
        let t = Templates::with_overrides([(CEGP.to_string(), "x".to_string())]).unwrap();
        assert_eq!(
            t.iter().find(|(n, _)| *n == CEGP).map(|(_, s)| s),
            Some("x")
        );

        let err =
            Templates::with_overrides([("cegp.yml.j2".to_string(), String::new())]).unwrap_err();
        assert!(
            matches!(&err, RenderError::UnknownTemplate { suggestion: Some(s), .. } if s == CEGP),
            "{err:?}"
        );
        assert!(Templates::with_overrides([("_macros.j2".to_string(), String::new())]).is_ok());
    }
}
