//! The in-memory index of [`super::sync_core::SyncCore`]: every watch event goes through
//! [`Index::handle`], which keeps what the decisions need of the objects (gateways, policies, VIP
//! Leases, managed CEGPs), validates gateways and policies (cached per object, so node churn
//! never re-validates anything), and feeds the election's [`Controller`] it is handed. It also
//! tracks which watches have listed, so the controller is only told "synced" when every cache
//! is complete. No I/O.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::Value;

use super::cegp::CegpSummary;
use super::convert;
use super::objects::{GatewayStore, PolicyStore, Verdict};
use crate::controller::{Controller, Instant, NodeKind};
use crate::model::catalog::{Catalog, Gateway, Policy};
use crate::model::labels::is_egressc_node_label;
use crate::validate::Options;

/// The watches the shell runs, one per source of observations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// `v1` Nodes.
    Node,
    /// kubelet heartbeat Leases in `kube-node-lease`.
    NodeLease,
    /// `cilium.io/v2` CiliumNodes.
    CiliumNode,
    /// cilium-agent Pods.
    CiliumPod,
    /// VIP agent Pods.
    VipPod,
    /// VIP Leases in the controller namespace.
    VipLease,
    /// EgressGateways.
    Gateway,
    /// EgressGatewayPolicies.
    Policy,
    /// CiliumEgressGatewayPolicies managed by egressc.
    Cegp,
}

impl Source {
    /// Every source; the core is synced once all of them have listed.
    pub const ALL: [Source; 9] = [
        Source::Node,
        Source::NodeLease,
        Source::CiliumNode,
        Source::CiliumPod,
        Source::VipPod,
        Source::VipLease,
        Source::Gateway,
        Source::Policy,
        Source::Cegp,
    ];
}

/// One object from a watch.
#[derive(Clone, Debug)]
pub enum Object {
    /// A Node.
    Node(Box<Node>),
    /// A heartbeat Lease.
    NodeLease(Box<Lease>),
    /// A CiliumNode (JSON).
    CiliumNode(Value),
    /// A cilium-agent Pod.
    CiliumPod(Box<Pod>),
    /// A VIP agent Pod.
    VipPod(Box<Pod>),
    /// A VIP Lease.
    VipLease(Box<Lease>),
    /// An EgressGateway (JSON: validated from the raw object).
    Gateway(Value),
    /// An EgressGatewayPolicy (JSON).
    Policy(Value),
    /// A managed CiliumEgressGatewayPolicy (JSON).
    Cegp(Value),
}

impl Object {
    fn source(&self) -> Source {
        match self {
            Object::Node(_) => Source::Node,
            Object::NodeLease(_) => Source::NodeLease,
            Object::CiliumNode(_) => Source::CiliumNode,
            Object::CiliumPod(_) => Source::CiliumPod,
            Object::VipPod(_) => Source::VipPod,
            Object::VipLease(_) => Source::VipLease,
            Object::Gateway(_) => Source::Gateway,
            Object::Policy(_) => Source::Policy,
            Object::Cegp(_) => Source::Cegp,
        }
    }

    /// The key a deletion is known by: the name, or `namespace/name` for Pods.
    fn key(&self) -> Option<String> {
        let json_name = |v: &Value| {
            v.pointer("/metadata/name")
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        match self {
            Object::Node(n) => n.metadata.name.clone(),
            Object::NodeLease(l) | Object::VipLease(l) => l.metadata.name.clone(),
            Object::CiliumPod(p) | Object::VipPod(p) => Some(convert::pod_key(
                p.metadata.namespace.as_deref().unwrap_or_default(),
                p.metadata.name.as_deref()?,
            )),
            Object::CiliumNode(v) | Object::Gateway(v) | Object::Policy(v) | Object::Cegp(v) => {
                json_name(v)
            }
        }
    }
}

/// What a watch reports.
#[derive(Clone, Debug)]
pub enum WatchEvent {
    /// The watch (re)started listing.
    Init(Source),
    /// An object was listed, added or changed.
    Apply(Object),
    /// An object was deleted.
    Delete(Object),
    /// The list is complete; objects not listed since `Init` are gone.
    InitDone(Source),
    /// The watch failed; it restarts with a fresh list.
    Failed(Source),
}

/// A gateway or policy whose validity changed (for an Event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerdictChange {
    /// `EgressGateway` or `EgressGatewayPolicy`.
    pub kind: &'static str,
    /// Object name.
    pub name: String,
    /// The diagnostic, or `None` when it became valid.
    pub invalid: Option<String>,
}

/// The index. See the module docs.
#[derive(Clone, Debug)]
pub struct Index {
    options: Options,
    listed: BTreeSet<Source>,
    /// The keys of the agent Pods applied and not deleted (the core keeps only scheduled
    /// ones). Every other source's keys are read from where its objects are kept
    /// ([`Index::known`]), not copied.
    pods: BTreeMap<Source, BTreeSet<String>>,
    /// Per source being relisted, the keys listed since its `Init`.
    relisting: BTreeMap<Source, BTreeSet<String>>,
    /// VIP Leases by name (the writer updates them conditionally).
    pub vip_leases: BTreeMap<String, Lease>,
    /// Every CEGP by name, egressc's and others' (see [`CegpSummary::is_owned`]).
    pub cegps: BTreeMap<String, CegpSummary>,
    /// Policies whose CEGP name is taken by a CEGP egressc does not own, with that CEGP's
    /// name (the policy's): reported on the policy's status and by an Event, never written.
    pub cegp_conflicts: BTreeSet<String>,
    /// Each Node's InternalIP (where it is probed).
    pub node_ips: BTreeMap<String, std::net::IpAddr>,
    /// `node_ips` changed since the last [`Index::take_node_ips_change`].
    node_ips_changed: bool,
    /// Gateways, validated.
    pub gateways: GatewayStore,
    /// Policies, validated.
    pub policies: PolicyStore,
    /// Gateway or policy revisions changed since the last [`Index::take_catalog_change`]
    /// (status-only changes do not count: they cannot change a CEGP).
    catalog_changed: bool,
    /// CEGPs seen changed or deleted since the last [`Index::take_cegp_changes`].
    cegp_changes: BTreeSet<String>,
    changes: Vec<VerdictChange>,
    defer_policy_checks: bool,
}

impl Index {
    /// An empty index; validation with `options`.
    pub fn new(options: Options) -> Self {
        Index {
            options,
            listed: BTreeSet::new(),
            pods: BTreeMap::new(),
            relisting: BTreeMap::new(),
            vip_leases: BTreeMap::new(),
            cegps: BTreeMap::new(),
            cegp_conflicts: BTreeSet::new(),
            node_ips: BTreeMap::new(),
            node_ips_changed: false,
            gateways: GatewayStore::default(),
            policies: PolicyStore::default(),
            catalog_changed: true,
            cegp_changes: BTreeSet::new(),
            changes: Vec::new(),
            defer_policy_checks: false,
        }
    }

    /// Policies are validated only when [`Index::settle_policies`] is called, not per event.
    /// `SyncCore` settles them in its second stage, after the label writes: validating 10,000
    /// listed policies (election does not depend on them) would otherwise delay the first
    /// labels.
    pub fn defer_policy_checks(&mut self) {
        self.defer_policy_checks = true;
    }

    /// Has every watch listed since its last failure?
    pub fn synced(&self) -> bool {
        Source::ALL.iter().all(|s| self.listed.contains(s))
    }

    /// Applies one watch event at `now`, feeding what the election needs to `core`.
    pub fn handle(&mut self, now: Instant, event: WatchEvent, core: &mut Controller) {
        match event {
            WatchEvent::Init(source) => {
                self.relisting.insert(source, BTreeSet::new());
            }
            WatchEvent::Apply(object) => {
                let source = object.source();
                if let Some(key) = object.key() {
                    if let Some(pods) = self.pods_mut(source) {
                        pods.insert(key.clone());
                    }
                    if let Some(listing) = self.relisting.get_mut(&source) {
                        listing.insert(key);
                    }
                }
                self.apply(now, object, core);
            }
            WatchEvent::Delete(object) => {
                let source = object.source();
                if let Some(key) = object.key() {
                    if let Some(pods) = self.pods_mut(source) {
                        pods.remove(&key);
                    }
                    self.forget(now, source, &key, core);
                }
            }
            WatchEvent::InitDone(source) => {
                let listed = self.relisting.remove(&source).unwrap_or_default();
                let gone: Vec<String> = self
                    .known(source, core)
                    .filter(|key| !listed.contains(*key))
                    .map(str::to_owned)
                    .collect();
                if let Some(pods) = self.pods_mut(source) {
                    pods.retain(|key| listed.contains(key));
                }
                for key in &gone {
                    self.forget(now, source, key, core);
                }
                self.listed.insert(source);
            }
            WatchEvent::Failed(source) => {
                self.listed.remove(&source);
                self.relisting.remove(&source);
            }
        }
    }

    /// The known pod keys of `source`, if it is a source of Pods.
    fn pods_mut(&mut self, source: Source) -> Option<&mut BTreeSet<String>> {
        matches!(source, Source::CiliumPod | Source::VipPod)
            .then(|| self.pods.entry(source).or_default())
    }

    /// The keys of `source`'s objects applied and not deleted or forgotten since, sorted:
    /// read from where each source's objects are kept, since each is kept exactly when it
    /// has a key (a name; for a Node, `convert::node` answers for every named one; Nodes and
    /// CiliumNodes are kept by the election's `core`). A heartbeat Lease is not kept, and
    /// forgetting one does nothing: none are listed.
    fn known<'a>(
        &'a self,
        source: Source,
        core: &'a Controller,
    ) -> Box<dyn Iterator<Item = &'a str> + 'a> {
        match source {
            Source::Node => core.observed_nodes(NodeKind::Node),
            Source::CiliumNode => core.observed_nodes(NodeKind::CiliumNode),
            Source::NodeLease => Box::new(std::iter::empty()),
            Source::CiliumPod | Source::VipPod => Box::new(
                self.pods
                    .get(&source)
                    .into_iter()
                    .flatten()
                    .map(String::as_str),
            ),
            Source::VipLease => Box::new(self.vip_leases.keys().map(String::as_str)),
            Source::Gateway => Box::new(self.gateways.names()),
            Source::Policy => Box::new(self.policies.names()),
            Source::Cegp => Box::new(self.cegps.keys().map(String::as_str)),
        }
    }

    /// True once after any Node's InternalIP changed (the probe endpoints must follow).
    pub fn take_node_ips_change(&mut self) -> bool {
        std::mem::replace(&mut self.node_ips_changed, false)
    }

    /// Validity changes since the last call (for Events).
    pub fn take_verdict_changes(&mut self) -> Vec<VerdictChange> {
        std::mem::take(&mut self.changes)
    }

    /// True once after any gateway or policy change: the CEGPs must be recomputed.
    pub fn take_catalog_change(&mut self) -> bool {
        std::mem::replace(&mut self.catalog_changed, false)
    }

    /// Managed CEGPs changed or deleted by someone since the last call: each is compared with
    /// its desired body again (a full pass is only needed after a catalog change).
    pub fn take_cegp_changes(&mut self) -> BTreeSet<String> {
        std::mem::take(&mut self.cegp_changes)
    }

    /// The catalog of the last good gateways and policies, as `build` would see it.
    pub fn catalog(&self) -> Catalog {
        let (gateways, policies) = self.catalog_refs();
        Catalog {
            gateways: gateways.into_iter().cloned().collect(),
            policies: policies.into_iter().cloned().collect(),
            nodes: Vec::new(),
        }
    }

    /// [`Index::catalog`]'s gateways and policies, borrowed (10,000 policies are worth not
    /// copying for every CEGP pass).
    pub fn catalog_refs(&self) -> (Vec<&Gateway>, Vec<&Policy>) {
        let gateways = self.gateways.last_good_refs();
        let known: BTreeSet<&str> = gateways.iter().map(|g| g.name.as_str()).collect();
        let policies = self
            .policies
            .last_good_refs()
            .into_iter()
            .filter(|p| known.contains(p.gateway.as_str()))
            .collect();
        (gateways, policies)
    }

    fn apply(&mut self, now: Instant, object: Object, core: &mut Controller) {
        match object {
            Object::Node(node) => {
                if let Some(seen) = convert::node(&node) {
                    let ip = convert::internal_ip(&node);
                    if self.node_ips.get(&seen.name) != ip.as_ref() {
                        self.node_ips_changed = true;
                        match ip {
                            Some(ip) => self.node_ips.insert(seen.name.clone(), ip),
                            None => self.node_ips.remove(&seen.name),
                        };
                    }
                    core.apply_node(now, seen);
                }
            }
            Object::NodeLease(lease) => {
                if let Some((node, renew)) = convert::node_heartbeat(&lease) {
                    core.apply_node_lease(now, &node, &renew);
                }
            }
            Object::CiliumNode(value) => {
                if let Some(name) = value.pointer("/metadata/name").and_then(Value::as_str) {
                    // Only egressc's own labels of a CiliumNode matter (they are diffed; no
                    // selector reads CiliumNode labels): 5,000–15,000 CiliumNodes need not
                    // keep the rest.
                    core.apply_cilium_node(now, name, ours(&convert::labels_of(&value)));
                }
            }
            Object::CiliumPod(pod) => match convert::agent_pod(&pod) {
                Some((key, node, ready)) => core.apply_cilium_pod(now, &key, &node, ready),
                None => forget_pod(now, &pod, core),
            },
            Object::VipPod(pod) => match convert::agent_pod(&pod) {
                Some((key, node, ready)) => core.apply_vip_agent_pod(now, &key, &node, ready),
                None => forget_pod(now, &pod, core),
            },
            Object::VipLease(lease) => {
                if let Some((gateway, seen)) = convert::vip_lease(&lease) {
                    core.apply_vip_lease(now, &gateway, seen);
                }
                if let Some(name) = lease.metadata.name.clone() {
                    self.vip_leases.insert(name, *lease);
                }
            }
            Object::Gateway(value) => {
                if let Some(name) = value.pointer("/metadata/name").and_then(Value::as_str) {
                    self.policies.gateway_changed(name);
                }
                if self.gateways.apply(value, &self.options) {
                    self.catalog_changed = true;
                }
                self.after_gateway_change(now, core);
            }
            Object::Policy(value) => {
                self.policies.apply(value);
                self.revalidate_policies();
            }
            Object::Cegp(value) => {
                if let Some(name) = value.pointer("/metadata/name").and_then(Value::as_str) {
                    let name = name.to_owned();
                    self.cegp_changes.insert(name.clone());
                    self.cegps.insert(name, CegpSummary::of(&value));
                }
            }
        }
    }

    fn forget(&mut self, now: Instant, source: Source, key: &str, core: &mut Controller) {
        match source {
            Source::Node => {
                if self.node_ips.remove(key).is_some() {
                    self.node_ips_changed = true;
                }
                core.delete_node(now, key);
            }
            // A vanished heartbeat Lease simply stops changing: the node goes stale.
            Source::NodeLease => {}
            Source::CiliumNode => {
                core.delete_cilium_node(now, key);
            }
            Source::CiliumPod | Source::VipPod => core.delete_pod(now, key),
            Source::VipLease => {
                if let Some(lease) = self.vip_leases.remove(key)
                    && let Some((gateway, _)) = convert::vip_lease(&lease)
                {
                    core.delete_vip_lease(now, &gateway);
                }
            }
            Source::Gateway => {
                self.gateways.remove(key);
                self.policies.gateway_changed(key);
                self.catalog_changed = true;
                self.after_gateway_change(now, core);
            }
            Source::Policy => {
                self.policies.remove(key);
                self.catalog_changed = true;
            }
            Source::Cegp => {
                self.cegps.remove(key);
                self.cegp_changes.insert(key.to_owned());
            }
        }
    }

    /// Re-runs the cross-gateway checks, pushes the last good gateways into the core and
    /// re-checks policies (their gateway may have changed).
    fn after_gateway_change(&mut self, now: Instant, core: &mut Controller) {
        self.gateways.check_shared_vips(&self.options);
        let (present, gone) = self.gateways.core_updates();
        for (gateway, generation, status) in present {
            core.apply_gateway(now, gateway, generation, status);
        }
        for name in gone {
            core.delete_gateway(now, &name);
        }
        self.changes.extend(
            self.gateways
                .take_changes()
                .into_iter()
                .map(|(name, invalid)| VerdictChange {
                    kind: crate::validate::documents::GATEWAY_KIND,
                    name,
                    invalid,
                }),
        );
        self.revalidate_policies();
    }

    fn revalidate_policies(&mut self) {
        if !self.defer_policy_checks {
            self.settle_policies();
        }
    }

    /// Validates the policies changed (or whose gateway changed) since the last call. Runs
    /// on every event unless [`Index::defer_policy_checks`] was called; the policy status scan
    /// ([`super::statuses::policies`]) calls it first.
    pub fn settle_policies(&mut self) {
        if self.policies.revalidate(&self.gateways, &self.options) {
            self.catalog_changed = true;
        }
        self.changes.extend(
            self.policies
                .take_changes()
                .into_iter()
                .map(|(name, invalid)| VerdictChange {
                    kind: crate::validate::documents::POLICY_KIND,
                    name,
                    invalid,
                }),
        );
    }

    /// The validity of gateway `name`, if known.
    pub fn gateway_verdict(&self, name: &str) -> Option<&Verdict> {
        self.gateways.verdict(name)
    }
}

fn forget_pod(now: Instant, pod: &Pod, core: &mut Controller) {
    if let Some(name) = &pod.metadata.name {
        let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
        core.delete_pod(now, &convert::pod_key(ns, name));
    }
}

/// egressc's own labels among `labels`.
fn ours(labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    labels
        .iter()
        .filter(|(k, _)| is_egressc_node_label(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::Timing;
    use crate::sync::objects::Verdict;
    use serde_json::json;

    /// The election's controller, unused by these tests of the index alone.
    fn core() -> Controller {
        Controller::new(Timing::default())
    }

    fn node(name: &str) -> Object {
        Object::Node(Box::new(
            serde_json::from_value(json!({"metadata": {"name": name}})).expect("node"),
        ))
    }

    fn gateway(name: &str, ip: &str) -> Object {
        Object::Gateway(json!({
            "apiVersion": "network.deckhouse.io/v1alpha1", "kind": "EgressGateway",
            "metadata": {"name": name, "uid": format!("u-{name}"), "generation": 1},
            "spec": {"sourceIP": {"mode": "VirtualIPAddress", "virtualIPAddress": {"ip": ip}}}
        }))
    }

    fn listed(index: &mut Index, source: Source, objects: Vec<Object>) {
        listed_into(index, &mut core(), source, objects);
    }

    /// [`listed`] with the election's controller kept (it keeps the Nodes and CiliumNodes).
    fn listed_into(index: &mut Index, core: &mut Controller, source: Source, objects: Vec<Object>) {
        index.handle(Instant::default(), WatchEvent::Init(source), core);
        for object in objects {
            index.handle(Instant::default(), WatchEvent::Apply(object), core);
        }
        index.handle(Instant::default(), WatchEvent::InitDone(source), core);
    }

    #[test]
    fn synced_only_when_every_watch_listed_and_lost_on_failure() {
        let mut index = Index::new(Options::default());
        for source in Source::ALL {
            assert!(!index.synced());
            listed(&mut index, source, Vec::new());
        }
        assert!(index.synced());
        index.handle(
            Instant::default(),
            WatchEvent::Failed(Source::Node),
            &mut core(),
        );
        assert!(!index.synced());
        listed(&mut index, Source::Node, Vec::new());
        assert!(index.synced());
    }

    #[test]
    fn a_relist_forgets_objects_not_listed_again() {
        let mut index = Index::new(Options::default());
        listed(
            &mut index,
            Source::Gateway,
            vec![gateway("a", "192.0.2.1"), gateway("b", "192.0.2.2")],
        );
        assert_eq!(index.catalog().gateways.len(), 2);
        listed(&mut index, Source::Gateway, vec![gateway("b", "192.0.2.2")]);
        let names: Vec<String> = index
            .catalog()
            .gateways
            .into_iter()
            .map(|g| g.name)
            .collect();
        assert_eq!(names, ["b"]);
        // Nodes and CiliumNodes: the keys are read from the election's controller.
        let mut nodes = core();
        let observed = |core: &Controller, kind| {
            core.observed_nodes(kind)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        listed_into(
            &mut index,
            &mut nodes,
            Source::Node,
            vec![node("n1"), node("n2")],
        );
        listed_into(&mut index, &mut nodes, Source::Node, vec![node("n2")]);
        assert_eq!(observed(&nodes, NodeKind::Node), ["n2"]);
        // Policies and CEGPs: the keys are read from their stores.
        listed(
            &mut index,
            Source::Policy,
            vec![policy("p1", "b"), policy("p2", "b")],
        );
        listed(&mut index, Source::Policy, vec![policy("p2", "b")]);
        assert_eq!(index.policies.names().collect::<Vec<_>>(), ["p2"]);
        let cegp = |name: &str| Object::Cegp(json!({"metadata": {"name": name}}));
        listed(&mut index, Source::Cegp, vec![cegp("c1"), cegp("c2")]);
        listed(&mut index, Source::Cegp, vec![cegp("c1")]);
        assert_eq!(index.cegps.keys().collect::<Vec<_>>(), ["c1"]);
        let cilium_node = |name: &str| Object::CiliumNode(json!({"metadata": {"name": name}}));
        let both = vec![cilium_node("n1"), cilium_node("n2")];
        listed_into(&mut index, &mut nodes, Source::CiliumNode, both);
        listed_into(&mut index, &mut nodes, Source::CiliumNode, Vec::new());
        assert!(observed(&nodes, NodeKind::CiliumNode).is_empty());
    }

    fn policy(name: &str, gateway: &str) -> Object {
        Object::Policy(json!({
            "apiVersion": "network.deckhouse.io/v1alpha1", "kind": "EgressGatewayPolicy",
            "metadata": {"name": name, "uid": format!("u-{name}"), "generation": 1},
            "spec": {"egressGatewayName": gateway, "destinationCIDRs": ["198.51.100.0/24"],
                     "selectors": [{"podSelector": {"matchLabels": {"app": "web"}}}]}
        }))
    }

    fn policy_verdict(index: &Index, name: &str) -> Option<Verdict> {
        index
            .policies
            .verdicts()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    }

    #[test]
    fn only_the_policies_of_a_changed_gateway_are_checked_again() {
        let mut index = Index::new(Options::default());
        let now = Instant::default();
        index.handle(now, WatchEvent::Apply(policy("p-a", "a")), &mut core());
        index.handle(now, WatchEvent::Apply(policy("p-b", "b")), &mut core());
        assert!(matches!(
            policy_verdict(&index, "p-a"),
            Some(Verdict::Invalid(_))
        ));
        index.handle(
            now,
            WatchEvent::Apply(gateway("a", "192.0.2.1")),
            &mut core(),
        );
        assert_eq!(policy_verdict(&index, "p-a"), Some(Verdict::Valid));
        assert!(matches!(
            policy_verdict(&index, "p-b"),
            Some(Verdict::Invalid(_))
        ));
        // Moving a policy to another gateway unlinks it from the old one.
        index.handle(now, WatchEvent::Apply(policy("p-a", "b")), &mut core());
        assert!(matches!(
            policy_verdict(&index, "p-a"),
            Some(Verdict::Invalid(_))
        ));
        index.handle(
            now,
            WatchEvent::Apply(gateway("b", "192.0.2.2")),
            &mut core(),
        );
        assert_eq!(policy_verdict(&index, "p-a"), Some(Verdict::Valid));
        assert_eq!(policy_verdict(&index, "p-b"), Some(Verdict::Valid));
        index.handle(
            now,
            WatchEvent::Delete(gateway("b", "192.0.2.2")),
            &mut core(),
        );
        assert!(matches!(
            policy_verdict(&index, "p-b"),
            Some(Verdict::Invalid(_))
        ));
    }

    #[test]
    fn an_invalid_edit_keeps_the_last_good_gateway_and_is_reported_once() {
        let mut index = Index::new(Options::default());
        index.handle(
            Instant::default(),
            WatchEvent::Apply(gateway("gw", "192.0.2.1")),
            &mut core(),
        );
        assert!(index.take_verdict_changes().is_empty());
        let mut broken = gateway("gw", "not-an-ip");
        if let Object::Gateway(v) = &mut broken {
            v["metadata"]["generation"] = json!(2);
        }
        index.handle(
            Instant::default(),
            WatchEvent::Apply(broken.clone()),
            &mut core(),
        );
        let changes = index.take_verdict_changes();
        assert_eq!(changes.len(), 1);
        assert!(
            changes[0]
                .invalid
                .as_deref()
                .is_some_and(|m| m.contains("virtualIPAddress"))
        );
        // The same revision again (e.g. a status write): no re-report.
        index.handle(Instant::default(), WatchEvent::Apply(broken), &mut core());
        assert!(index.take_verdict_changes().is_empty());
        let kept = index.catalog().gateways;
        assert_eq!(kept.len(), 1);
        assert_eq!(
            kept[0].source,
            crate::model::catalog::SourceIp::VirtualIp {
                ip: "192.0.2.1".parse().expect("literal"),
                interfaces: Vec::new(),
            }
        );
    }

    #[test]
    fn of_two_gateways_with_the_same_hashed_label_key_the_younger_is_refused() {
        // Names from tests/fixtures/invalid/E041-active-label-collision.yaml.
        let older = "long-gateway-name-for-a-label-collision-x-6ab56z-ppppp";
        let younger = "long-gateway-name-for-a-label-collision-x-2125ffz-pppp";
        assert_eq!(
            crate::model::labels::active_for_label(older),
            crate::model::labels::active_for_label(younger)
        );
        let mut index = Index::new(Options::default());
        for (name, ip, created) in [
            (younger, "192.0.2.2", "2026-02-01T00:00:00Z"),
            (older, "192.0.2.1", "2026-01-01T00:00:00Z"),
        ] {
            let mut object = gateway(name, ip);
            if let Object::Gateway(v) = &mut object {
                v["metadata"]["creationTimestamp"] = json!(created);
            }
            index.handle(Instant::default(), WatchEvent::Apply(object), &mut core());
        }
        assert_eq!(index.gateways.verdict(older), Some(&Verdict::Valid));
        match index.gateways.verdict(younger) {
            Some(Verdict::Invalid(message)) => assert!(message.contains("E041"), "{message}"),
            other => panic!("{other:?}"),
        }
    }
}
