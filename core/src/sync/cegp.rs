//! CiliumEgressGatewayPolicies as `sync` writes them: rendered by `src/render` exactly as
//! `egressc build` renders them (one policy with its gateway at a time, cached, so one policy
//! Cilium cannot express does not block the others), owner-referenced to their policy for
//! garbage collection, and compared with the observed object to write only on a change.
//!
//! With 10,000 policies the CEGPs would be most of the controller's memory as JSON values, so
//! both sides are kept compact: a rendering and an observed CEGP only as their
//! [`CegpSummary`] (digests of spec and owner references, and the labels); the few CEGPs a
//! pass writes are rendered again for the write.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::elect::Election;
use crate::model::api::API_VERSION;
use crate::model::catalog::{Catalog, Gateway, Policy};
use crate::model::cilium::CiliumVersion;
use crate::model::labels::MANAGED_BY;
use crate::render::MANAGED_BY_KEY;
use crate::render::{RenderError, RenderOptions, Renderer, Templates};
use crate::validate::documents::POLICY_KIND;

/// What [`RenderedCegp::differs`] compares of a CEGP: digests of `spec` and of
/// `metadata.ownerReferences` (over keys in sorted order, so key order never matters) and
/// `metadata.labels`. Boxed: 10,000 are kept in a map, whose nodes have room for eleven.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CegpSummary(Box<Summary>);

/// The fields of a [`CegpSummary`].
#[derive(Clone, Debug, PartialEq, Eq)]
struct Summary {
    spec: Option<[u8; 32]>,
    owners: Option<[u8; 32]>,
    labels: Labels,
    uid: Option<Box<str>>,
}

/// `metadata.labels` of a CEGP, sorted by key, in one exact-size text: per label its key and
/// its value's JSON text, each written as its length, `:` and itself. 20,000 summaries
/// (observed and rendered) of three labels each were ~15 MB as JSON maps (a map node is
/// allocated for eleven entries), ~6 MB as a slice of a string and a JSON value per label.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Labels(Box<str>);

impl Labels {
    fn of(labels: Option<&serde_json::Map<String, Value>>) -> Self {
        let mut text = String::new();
        let mut write = |field: &str| text.push_str(&format!("{}:{field}", field.len()));
        // A JSON map iterates in key order.
        for (key, value) in labels.into_iter().flatten() {
            write(key);
            write(&value.to_string());
        }
        Labels(text.into_boxed_str())
    }

    /// `(key, the value's JSON text)`, sorted by key.
    fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut rest = &*self.0;
        let mut field = move || {
            let (len, tail) = rest.split_once(':')?;
            let (field, tail) = tail.split_at_checked(len.parse().ok()?)?;
            rest = tail;
            Some(field)
        };
        std::iter::from_fn(move || Some((field()?, field()?)))
    }

    /// The JSON text of label `key`'s value.
    fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
}

impl CegpSummary {
    /// `metadata.uid` of the observed object (none for a rendering).
    pub fn uid(&self) -> Option<&str> {
        self.0.uid.as_deref()
    }

    /// Does egressc own this CEGP? Ownership is the `app.kubernetes.io/managed-by: egressc`
    /// label, which everything egressc renders carries; a CEGP without it was written by
    /// someone else and is never written or deleted by `sync`.
    pub fn is_owned(&self) -> bool {
        // The JSON text of a string value is canonical: equal exactly when the strings are.
        self.0.labels.get(MANAGED_BY_KEY) == Some(&*Value::from(MANAGED_BY).to_string())
    }
}

impl CegpSummary {
    /// The summary of a CEGP object.
    pub fn of(cegp: &Value) -> Self {
        CegpSummary(Box::new(Summary {
            spec: cegp.get("spec").map(digest),
            owners: cegp.pointer("/metadata/ownerReferences").map(digest),
            labels: Labels::of(cegp.pointer("/metadata/labels").and_then(Value::as_object)),
            uid: cegp
                .pointer("/metadata/uid")
                .and_then(Value::as_str)
                .map(Into::into),
        }))
    }
}

/// SHA-256 over a canonical encoding of `value` (object keys sorted).
fn digest(value: &Value) -> [u8; 32] {
    fn feed(hasher: &mut Sha256, value: &Value) {
        match value {
            Value::Null => hasher.update(b"n"),
            Value::Bool(b) => hasher.update(if *b { b"t" } else { b"f" }),
            Value::Number(n) => {
                hasher.update(b"#");
                hasher.update(n.to_string().as_bytes());
                hasher.update(b";");
            }
            Value::String(text) => {
                hasher.update(b"s");
                hasher.update((text.len() as u64).to_le_bytes());
                hasher.update(text.as_bytes());
            }
            Value::Array(items) => {
                hasher.update(b"[");
                hasher.update((items.len() as u64).to_le_bytes());
                for item in items {
                    feed(hasher, item);
                }
            }
            Value::Object(map) => {
                hasher.update(b"{");
                hasher.update((map.len() as u64).to_le_bytes());
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                for key in keys {
                    hasher.update((key.len() as u64).to_le_bytes());
                    hasher.update(key.as_bytes());
                    feed(hasher, &map[key]);
                }
            }
        }
    }
    let mut hasher = Sha256::new();
    feed(&mut hasher, value);
    hasher.finalize().into()
}

/// One policy's rendered CEGP, without owner references, as its summary: what a write pass
/// compares with the observed CEGP. The object itself is rendered again for the writes that
/// are needed ([`CegpCompiler::body_of`]): 10,000 renderings kept as JSON text were ~10 MB, and
/// after the first pass almost none of them is ever written again.
#[derive(Clone, Debug)]
pub struct RenderedCegp {
    spec: Option<[u8; 32]>,
    labels: Labels,
}

impl RenderedCegp {
    fn new(rendered: &Value) -> Self {
        let Summary { spec, labels, .. } = *CegpSummary::of(rendered).0;
        RenderedCegp { spec, labels }
    }

    /// Does `observed` differ from [`CegpCompiler::body_of`] in what egressc writes?
    pub fn differs(&self, observed: Option<&CegpSummary>, policy: &str, uid: &str) -> bool {
        let owners = Some(digest(&owner_references(policy, uid)));
        summaries_differ(observed, self.spec, owners, &self.labels)
    }
}

/// A cached rendering: the fingerprint of its inputs and the result.
type Cached = ([u8; 32], Result<RenderedCegp, String>);

/// Renders CEGPs per policy, caching each result until its policy or gateway changes.
#[derive(Clone)]
pub struct CegpCompiler {
    /// Shared by clones (the compiled templates never change).
    renderer: std::sync::Arc<Renderer>,
    options: RenderOptions,
    /// Policy name → (fingerprint of the policy and its gateway, rendering), boxed like a
    /// [`CegpSummary`].
    cache: BTreeMap<String, Box<Cached>>,
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
            renderer: std::sync::Arc::new(Renderer::new(&Templates::builtin())?),
            options,
            cache: BTreeMap::new(),
        })
    }

    /// The CEGP to apply for `policy` through `gateway`, owned by the policy of uid `uid`
    /// (rendered again: the cache keeps only summaries).
    pub fn body_of(&self, policy: &Policy, gateway: &Gateway, uid: &str) -> Result<Value, String> {
        self.render_one(policy, gateway)
            .map(|rendered| owned_by_policy(rendered, &policy.name, uid))
    }

    /// Renders what changed among `policies` (with their `gateways`) into the cache; returns
    /// the names of every policy with a CEGP (sorted), to read with [`CegpCompiler::cached`]
    /// without copying them all.
    pub fn render(&mut self, gateways: &[&Gateway], policies: &[&Policy]) -> Vec<String> {
        let gateways: BTreeMap<&str, &Gateway> =
            gateways.iter().map(|g| (g.name.as_str(), *g)).collect();
        let mut names = BTreeSet::new();
        for &policy in policies {
            let Some(gateway) = gateways.get(policy.gateway.as_str()) else {
                continue;
            };
            let inputs = fingerprint(policy, gateway);
            let fresh = self
                .cache
                .get(&policy.name)
                .is_some_and(|cached| cached.0 == inputs);
            if !fresh {
                let result = self
                    .render_one(policy, gateway)
                    .map(|value| RenderedCegp::new(&value));
                self.cache
                    .insert(policy.name.clone(), Box::new((inputs, result)));
            }
            names.insert(policy.name.clone());
        }
        self.cache.retain(|name, _| names.contains(name));
        names.into_iter().collect()
    }

    /// The last rendering of policy `name` (from the last [`CegpCompiler::render`]).
    pub fn cached(&self, name: &str) -> Option<&Result<RenderedCegp, String>> {
        self.cache.get(name).map(|cached| &cached.1)
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

/// SHA-256 of the debug form of a policy and its gateway: what a rendering depends on. A
/// digest instead of copies of both keeps 10,000 policies' cache small; the debug form of
/// these plain data types (maps ordered) is equal exactly when the values are.
fn fingerprint(policy: &Policy, gateway: &Gateway) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(format!("{policy:?}\n{gateway:?}").as_bytes());
    hasher.finalize().into()
}

fn owner_references(policy: &str, uid: &str) -> Value {
    json!([{
        "apiVersion": API_VERSION,
        "kind": POLICY_KIND,
        "name": policy,
        "uid": uid,
    }])
}

/// `rendered` with an owner reference to the policy (so deleting the policy deletes it).
pub fn owned_by_policy(mut rendered: Value, policy: &str, uid: &str) -> Value {
    rendered["metadata"]["ownerReferences"] = owner_references(policy, uid);
    rendered
}

/// Does the observed CEGP differ from the desired one (its spec and owner references digests
/// and labels) in what egressc writes (spec, owner references, and the labels egressc sets;
/// other labels may be added by others)?
fn summaries_differ(
    observed: Option<&CegpSummary>,
    spec: Option<[u8; 32]>,
    owners: Option<[u8; 32]>,
    labels: &Labels,
) -> bool {
    let Some(observed) = observed else {
        return true;
    };
    observed.0.spec != spec
        || observed.0.owners != owners
        || labels
            .iter()
            .any(|(k, v)| observed.0.labels.get(k) != Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::catalog::SourceIp;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

    fn differs(observed: Option<&CegpSummary>, desired: &Value) -> bool {
        let desired = CegpSummary::of(desired);
        summaries_differ(
            observed,
            desired.0.spec,
            desired.0.owners,
            &desired.0.labels,
        )
    }

    /// Test views of the compiler over a whole catalog.
    impl CegpCompiler {
        fn render_all(&mut self, catalog: &Catalog) -> Vec<String> {
            let gateways: Vec<&Gateway> = catalog.gateways.iter().collect();
            let policies: Vec<&Policy> = catalog.policies.iter().collect();
            self.render(&gateways, &policies)
        }

        /// Every policy's CEGP as rendered, by name.
        fn desired(&mut self, catalog: &Catalog) -> BTreeMap<String, Result<Value, String>> {
            self.render_all(catalog)
                .into_iter()
                .map(|name| {
                    let policy = catalog.policies.iter().find(|p| p.name == name);
                    let policy = policy.expect("rendered policies are in the catalog");
                    let gateway = catalog.gateways.iter().find(|g| g.name == policy.gateway);
                    let gateway = gateway.expect("rendered policies have their gateway");
                    (name, self.render_one(policy, gateway))
                })
                .collect()
        }
    }

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
    fn a_changed_policy_or_gateway_is_rendered_again() {
        let mut compiler = CegpCompiler::new(CiliumVersion::OLDEST).expect("templates");
        let mut catalog = catalog();
        let first = compiler.desired(&catalog)["p"].clone().expect("renders");
        catalog.policies[0].destinations = vec!["203.0.113.0/24".parse().expect("literal")];
        let second = compiler.desired(&catalog)["p"].clone().expect("renders");
        assert_ne!(first["spec"], second["spec"]);
        assert_eq!(second["spec"]["destinationCIDRs"][0], "203.0.113.0/24");
        catalog.gateways[0].source = SourceIp::VirtualIp {
            ip: "192.0.2.20".parse().expect("literal"),
            interfaces: Vec::new(),
        };
        let third = compiler.desired(&catalog)["p"].clone().expect("renders");
        assert_eq!(third["spec"]["egressGateway"]["egressIP"], "192.0.2.20");
    }

    #[test]
    fn the_cached_rendering_compares_like_the_full_object() {
        let mut compiler = CegpCompiler::new(CiliumVersion::OLDEST).expect("templates");
        compiler.render_all(&catalog());
        let Some(Ok(rendered)) = compiler.cached("p") else {
            panic!("p renders");
        };
        let catalog = catalog();
        let body = compiler
            .body_of(&catalog.policies[0], &catalog.gateways[0], "uid-1")
            .expect("renders");
        assert!(!rendered.differs(Some(&CegpSummary::of(&body)), "p", "uid-1"));
        assert!(rendered.differs(Some(&CegpSummary::of(&body)), "p", "uid-2"));
        assert!(rendered.differs(None, "p", "uid-1"));
        // Key order does not matter: the server may send the fields in any order.
        let reordered: Value =
            serde_json::from_str(&body.to_string()).expect("round trip of a JSON value");
        assert_eq!(CegpSummary::of(&reordered), CegpSummary::of(&body));
    }

    #[test]
    fn only_a_cegp_with_egressc_managed_by_label_is_owned() {
        let mut compiler = CegpCompiler::new(CiliumVersion::OLDEST).expect("templates");
        let rendered = compiler.desired(&catalog())["p"].clone().expect("renders");
        assert!(CegpSummary::of(&rendered).is_owned());
        let mut foreign = rendered.clone();
        foreign["metadata"]["labels"] = json!({"app": "hand-written"});
        assert!(!CegpSummary::of(&foreign).is_owned());
        foreign["metadata"]["labels"]["app.kubernetes.io/managed-by"] = json!("Helm");
        assert!(!CegpSummary::of(&foreign).is_owned());
        assert!(!CegpSummary::of(&json!({"metadata": {"name": "p"}})).is_owned());
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
        assert!(!differs(Some(&CegpSummary::of(&observed)), &desired));
        observed["spec"]["destinationCIDRs"] = json!(["203.0.113.0/24"]);
        assert!(differs(Some(&CegpSummary::of(&observed)), &desired));
        let other_owner = owned_by_policy(desired.clone(), "p", "uid-2");
        assert!(differs(Some(&CegpSummary::of(&desired)), &other_owner));
        let mut relabelled = desired.clone();
        relabelled["metadata"]["labels"][crate::render::POLICY_KEY] = json!("q");
        assert!(differs(Some(&CegpSummary::of(&relabelled)), &desired));
        relabelled["metadata"]["labels"][crate::render::POLICY_KEY] = json!(1);
        assert!(differs(Some(&CegpSummary::of(&relabelled)), &desired));
        let mut unlabelled = desired.clone();
        unlabelled["metadata"]["labels"] = json!({});
        assert!(differs(Some(&CegpSummary::of(&unlabelled)), &desired));
    }

    #[test]
    fn labels_read_back_as_written_whatever_their_characters() {
        let map = json!({"a:1": "2:b", "": "", "k": {"x": [1, "y"]}, "z\u{0}": "9", "12:x": "3:",
                         MANAGED_BY_KEY: MANAGED_BY, crate::render::POLICY_KEY: "egressc",
                         crate::render::GATEWAY_KEY: "gw"});
        let labels = Labels::of(map.as_object());
        let read: Vec<(String, Value)> = labels
            .iter()
            .map(|(k, v)| (k.to_owned(), serde_json::from_str(v).expect("JSON text")))
            .collect();
        let expected: Vec<(String, Value)> = map
            .as_object()
            .expect("object")
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(read, expected);
        assert_eq!(labels.get("a:1"), Some("\"2:b\""));
        assert_eq!(labels.get("missing"), None);
    }
}
