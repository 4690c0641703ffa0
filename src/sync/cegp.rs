//! CiliumEgressGatewayPolicies as `sync` writes them: rendered by `src/render` exactly as
//! `egressc build` renders them (one policy with its gateway at a time, cached, so one policy
//! Cilium cannot express does not block the others), owner-referenced to their policy for
//! garbage collection, and compared with the observed object to write only on a change.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::elect::Election;
use crate::model::api::API_VERSION;
use crate::model::catalog::{Catalog, Gateway, Policy};
use crate::model::cilium::CiliumVersion;
use crate::render::{RenderError, RenderOptions, Renderer, Templates};
use crate::validate::documents::POLICY_KIND;

/// Renders CEGPs per policy, caching each result until its policy or gateway changes.
pub struct CegpCompiler {
    renderer: Renderer,
    options: RenderOptions,
    cache: BTreeMap<String, (Policy, Gateway, Result<Value, String>)>,
}

impl std::fmt::Debug for CegpCompiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CegpCompiler")
            .field("options", &self.options)
            .field("cached", &self.cache.len())
            .finish_non_exhaustive()
    }
}

impl CegpCompiler {
    /// A compiler for `cilium` with the built-in templates.
    pub fn new(cilium: CiliumVersion) -> Result<Self, RenderError> {
        let options = RenderOptions {
            cilium,
            ..RenderOptions::default()
        };
        Ok(CegpCompiler {
            renderer: Renderer::new(&Templates::builtin())?,
            options,
            cache: BTreeMap::new(),
        })
    }

    /// The CEGP of every policy of `catalog` (by policy name), or why it cannot be rendered.
    pub fn desired(&mut self, catalog: &Catalog) -> BTreeMap<String, Result<Value, String>> {
        self.render_all(catalog)
            .into_iter()
            .filter_map(|name| {
                let result = self.cached(&name)?.clone();
                Some((name, result))
            })
            .collect()
    }

    /// Renders what changed in `catalog` into the cache; returns the names of every policy
    /// with a CEGP (sorted), to read with [`CegpCompiler::cached`] without copying them all.
    pub fn render_all(&mut self, catalog: &Catalog) -> Vec<String> {
        let gateways: BTreeMap<&str, &Gateway> = catalog
            .gateways
            .iter()
            .map(|g| (g.name.as_str(), g))
            .collect();
        let mut names = BTreeSet::new();
        for policy in &catalog.policies {
            let Some(gateway) = gateways.get(policy.gateway.as_str()) else {
                continue;
            };
            let fresh = self
                .cache
                .get(&policy.name)
                .is_some_and(|(p, g, _)| p == policy && g == *gateway);
            if !fresh {
                let result = self.render_one(policy, gateway);
                self.cache.insert(
                    policy.name.clone(),
                    (policy.clone(), (*gateway).clone(), result),
                );
            }
            names.insert(policy.name.clone());
        }
        self.cache.retain(|name, _| names.contains(name));
        names.into_iter().collect()
    }

    /// The last rendering of policy `name` (from the last [`CegpCompiler::render_all`]).
    pub fn cached(&self, name: &str) -> Option<&Result<Value, String>> {
        self.cache.get(name).map(|(_, _, result)| result)
    }

    fn render_one(&self, policy: &Policy, gateway: &Gateway) -> Result<Value, String> {
        let catalog = Catalog {
            gateways: vec![gateway.clone()],
            policies: vec![policy.clone()],
            nodes: Vec::new(),
        };
        let stream = self
            .renderer
            .render(&catalog, &Election::default(), &self.options)
            .map_err(|e| e.to_string())?;
        let documents: Vec<Value> =
            serde_saphyr::from_str_multiple(&stream).map_err(|e| e.to_string())?;
        documents
            .into_iter()
            .find(|d| d.get("kind").and_then(Value::as_str) == Some("CiliumEgressGatewayPolicy"))
            .ok_or_else(|| {
                format!(
                    "rendering produced no CiliumEgressGatewayPolicy for {}",
                    policy.name
                )
            })
    }
}

/// `rendered` with an owner reference to the policy (so deleting the policy deletes it).
pub fn owned_by_policy(mut rendered: Value, policy: &str, uid: &str) -> Value {
    rendered["metadata"]["ownerReferences"] = json!([{
        "apiVersion": API_VERSION,
        "kind": POLICY_KIND,
        "name": policy,
        "uid": uid,
    }]);
    rendered
}

/// Does the observed CEGP differ from the desired one in what egressc writes?
pub fn differs(observed: Option<&Value>, desired: &Value) -> bool {
    let Some(observed) = observed else {
        return true;
    };
    observed.get("spec") != desired.get("spec")
        || desired
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .is_some_and(|labels| {
                labels.iter().any(|(k, v)| {
                    observed.pointer("/metadata/labels").and_then(|l| l.get(k)) != Some(v)
                })
            })
        || observed.pointer("/metadata/ownerReferences")
            != desired.pointer("/metadata/ownerReferences")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::catalog::SourceIp;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

    fn catalog() -> Catalog {
        Catalog {
            gateways: vec![Gateway {
                name: "gw".into(),
                node_selector: BTreeMap::new(),
                source: SourceIp::VirtualIp {
                    ip: "192.0.2.10".parse().expect("literal"),
                    interfaces: Vec::new(),
                },
            }],
            policies: vec![Policy {
                name: "p".into(),
                gateway: "gw".into(),
                selectors: vec![LabelSelector::default()],
                destinations: vec!["198.51.100.0/24".parse().expect("literal")],
                excluded: Vec::new(),
            }],
            nodes: Vec::new(),
        }
    }

    #[test]
    fn renders_the_same_cegp_as_the_whole_stream() {
        let catalog = catalog();
        let mut compiler = CegpCompiler::new(CiliumVersion::OLDEST).expect("templates");
        let desired = compiler.desired(&catalog);
        let cegp = desired["p"].clone().expect("renders");
        let options = RenderOptions {
            cilium: CiliumVersion::OLDEST,
            ..RenderOptions::default()
        };
        let stream =
            crate::render::render(&catalog, &Election::default(), &options).expect("renders");
        let whole: Vec<Value> = serde_saphyr::from_str_multiple(&stream).expect("yaml");
        let from_stream = whole
            .into_iter()
            .find(|d| d["kind"] == "CiliumEgressGatewayPolicy")
            .expect("a CEGP");
        assert_eq!(cegp, from_stream);
        assert_eq!(cegp["spec"]["egressGateway"]["egressIP"], "192.0.2.10");
    }

    #[test]
    fn owner_reference_and_spec_changes_are_detected() {
        let mut compiler = CegpCompiler::new(CiliumVersion::OLDEST).expect("templates");
        let rendered = compiler.desired(&catalog())["p"].clone().expect("renders");
        let desired = owned_by_policy(rendered, "p", "uid-1");
        assert!(differs(None, &desired));
        let mut observed = desired.clone();
        observed["metadata"]["resourceVersion"] = json!("5");
        observed["metadata"]["labels"]["extra"] = json!("kept");
        assert!(!differs(Some(&observed), &desired));
        observed["spec"]["destinationCIDRs"] = json!(["203.0.113.0/24"]);
        assert!(differs(Some(&observed), &desired));
        let other_owner = owned_by_policy(desired.clone(), "p", "uid-2");
        assert!(differs(Some(&desired), &other_owner));
    }
}
