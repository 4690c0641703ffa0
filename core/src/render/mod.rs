//! Rendering: a validated [`Catalog`] plus an [`Election`] become one YAML stream of Kubernetes
//! objects — a CiliumEgressGatewayPolicy per policy, the VIP agent (when any gateway is in
//! VirtualIPAddress mode) and, on request, partial Nodes carrying the election's labels. The
//! controller's install manifests (`egressc install`) come from the same engine (`install`).
//!
//! Pure: no I/O. Templates come in as text ([`Templates`]); the CLI reads overrides from disk.
//! Contexts (what goes into the objects) are computed in Rust by `cegp`, `agent` and `nodes`;
//! templates only lay them out, and every value they print is YAML-quoted by `yaml_scalar`.

mod agent;
mod cegp;
mod engine;
mod error;
mod install;
mod nodes;
mod objects;
mod options;
mod provenance;
mod stream;
mod templates;
mod verify;
pub(crate) mod yaml_block;
mod yaml_scalar;

use std::collections::BTreeMap;

pub use agent::{AGENT_APP_NAME, AGENT_COMPONENT, AGENT_HEALTH_PORT, AGENT_NAME};
pub use engine::{MAX_OBJECT_BYTES, TEMPLATE_FUEL};
pub use error::RenderError;
/// The controller's Prometheus Operator objects (`InstallOptions::monitoring`).
pub use install::monitoring;
pub use install::{
    InstallOptions, NamespaceRole, Rule, SYNC_ALLOCATOR_ENV, SYNC_COMPONENT, SYNC_METRICS_PORT,
    SYNC_NAME, cluster_rules, namespace_roles, sync_args as install_sync_args,
};
pub use nodes::ARGOCD_SYNC_OPTIONS;
pub use objects::MAX_OUTPUT_BYTES;
pub use options::{
    CiliumVersion, DEFAULT_AGENT_NAMESPACE, DEFAULT_IMAGE_REPOSITORY, RenderOptions, default_image,
};
pub use provenance::{GATEWAY_KEY, MANAGED_BY_KEY, POLICY_KEY, is_valid_label_value, label_value};
pub use templates::Templates;
pub use yaml_scalar::quote as yaml_quote;

use crate::elect::Election;
use crate::model::catalog::{Catalog, Gateway};
use engine::Engine;
use objects::Objects;

/// Compiled templates, reusable across renders (the controller renders on every change).
pub struct Renderer {
    engine: Engine,
}

impl Renderer {
    /// Compiles `templates`. Errors name the template and line.
    pub fn new(templates: &Templates) -> Result<Self, RenderError> {
        Ok(Renderer {
            engine: Engine::new(templates)?,
        })
    }

    /// Renders the whole stream. Output is byte-identical for identical input, whatever the
    /// order of gateways, policies and nodes in `catalog`.
    pub fn render(
        &self,
        catalog: &Catalog,
        election: &Election,
        options: &RenderOptions,
    ) -> Result<String, RenderError> {
        let gateways: BTreeMap<&str, &Gateway> = catalog
            .gateways
            .iter()
            .map(|g| (g.name.as_str(), g))
            .collect();
        let mut objects = Objects::new(&self.engine, catalog.policies.len() + 8);

        for policy in &catalog.policies {
            let gateway = gateways.get(policy.gateway.as_str()).ok_or_else(|| {
                RenderError::UnknownGateway {
                    policy: policy.name.clone(),
                    gateway: policy.gateway.clone(),
                }
            })?;
            let context = cegp::context(policy, gateway, options.cilium)?;
            objects.render(
                templates::CEGP,
                "CiliumEgressGatewayPolicy",
                &policy.name,
                &context,
            )?;
        }

        if let Some(context) = agent::context(gateways.values().copied(), options) {
            let agent_objects = [
                (templates::AGENT_SERVICE_ACCOUNT, "ServiceAccount"),
                (templates::AGENT_CLUSTER_ROLE, "ClusterRole"),
                (templates::AGENT_CLUSTER_ROLE_BINDING, "ClusterRoleBinding"),
                (templates::AGENT_ROLE, "Role"),
                (templates::AGENT_ROLE_BINDING, "RoleBinding"),
                (templates::AGENT_DAEMONSET, "DaemonSet"),
            ];
            // No Namespace: the controller's install (`egressc install`, the Helm chart, the
            // Kustomize base) is its one owner, so pruning this stream's Argo CD application
            // never deletes the controller, nor pruning the controller's this stream's objects.
            for (template, kind) in agent_objects {
                objects.render(template, kind, AGENT_NAME, &context)?;
            }
        }

        if options.include_node_labels {
            for context in nodes::contexts(catalog, election) {
                objects.render(templates::NODE, "Node", &context.name, &context)?;
            }
        }

        Ok(objects.finish())
    }
}

/// Renders with the built-in templates (see [`Renderer::render`]).
pub fn render(
    catalog: &Catalog,
    election: &Election,
    options: &RenderOptions,
) -> Result<String, RenderError> {
    Renderer::new(&Templates::builtin())?.render(catalog, election, options)
}
