//! The validated model: what `validate` produces from raw documents and what election,
//! rendering and the controller consume. Values here are already parsed (IPs, CIDRs) and
//! checked, so consumers never re-validate.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// A validated EgressGateway.
#[derive(Clone, Debug, PartialEq)]
pub struct Gateway {
    /// `metadata.name` (a DNS-1123 subdomain).
    pub name: String,
    /// `spec.nodeSelector`: all pairs must match (an empty selector matches every node).
    pub node_selector: BTreeMap<String, String>,
    /// How traffic gets its source IP.
    pub source: SourceIp,
}

/// The source-IP mode of a gateway with the data of that mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceIp {
    /// `PrimaryIPFromEgressGatewayNodeInterface`: SNAT to the active node's IP on `interface`.
    PrimaryInterface {
        /// A valid Linux interface name.
        interface: String,
    },
    /// `VirtualIPAddress`: SNAT to `ip`, held by the active node's VIP agent.
    VirtualIp {
        /// The VIP.
        ip: IpAddr,
        /// Interfaces to put the VIP on; empty: the one whose subnet contains it.
        interfaces: Vec<String>,
    },
}

// Every question about the mode is an exhaustive `match` (no `matches!`, `if let` or `_`), so
// that adding a mode makes the compiler list the places that must decide what it means
// (ARCHITECTURE.md, "Adding a source-IP mode").
impl SourceIp {
    /// The address that moves with the active node and is held by a VIP agent; `None` in modes
    /// whose source IP belongs to the node itself.
    pub fn virtual_ip(&self) -> Option<IpAddr> {
        match self {
            SourceIp::PrimaryInterface { .. } => None,
            SourceIp::VirtualIp { ip, .. } => Some(*ip),
        }
    }
}

impl Gateway {
    /// Does this gateway's active node need a Ready VIP agent? It then counts for eligibility,
    /// the controller runs the VIP Lease protocol for it, and `build` renders the agent.
    pub fn needs_vip_agent(&self) -> bool {
        match &self.source {
            SourceIp::PrimaryInterface { .. } => false,
            SourceIp::VirtualIp { .. } => true,
        }
    }

    /// Does the node with these labels belong to this gateway's node group?
    pub fn selects(&self, node_labels: &BTreeMap<String, String>) -> bool {
        self.node_selector
            .iter()
            .all(|(k, v)| node_labels.get(k) == Some(v))
    }
}

/// A validated EgressGatewayPolicy.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// `metadata.name`.
    pub name: String,
    /// `spec.egressGatewayName`; refers to an existing [`Gateway`].
    pub gateway: String,
    /// Pod selectors, copied verbatim into the CiliumEgressGatewayPolicy.
    pub selectors: Vec<LabelSelector>,
    /// Destinations (no host bits set).
    pub destinations: Vec<IpNet>,
    /// Excluded destinations (no host bits set); may be empty.
    pub excluded: Vec<IpNet>,
}

/// What egressc knows about one node: its labels and the health facts election needs.
///
/// `build` reads these from a node inventory; `sync` derives them from Node, Lease and Pod
/// watches. Agent readiness is `None` when unknown (e.g. an inventory has no pods), which does
/// not count against the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeFacts {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// The Ready condition is True (and, in `sync`, the node heartbeat Lease is fresh).
    pub ready: bool,
    /// `spec.unschedulable` (cordoned).
    pub unschedulable: bool,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    /// The cilium-agent Pod on this node is Ready; `None`: unknown.
    pub cilium_agent_ready: Option<bool>,
    /// The egressc VIP agent Pod on this node is Ready; `None`: unknown.
    pub vip_agent_ready: Option<bool>,
    /// False while a node that recovered is still inside the settle window: it may keep roles
    /// but receives no new assignments. `build` always passes true.
    pub settled: bool,
}

/// Everything about a node's health that election reads, as one comparable value:
/// ready, unschedulable, deleting, cilium agent, VIP agent, settled.
pub type HealthKey = (bool, bool, bool, Option<bool>, Option<bool>, bool);

impl NodeFacts {
    /// The node's health facts (everything but name and labels), for comparing and ordering.
    pub fn health_key(&self) -> HealthKey {
        (
            self.ready,
            self.unschedulable,
            self.deleting,
            self.cilium_agent_ready,
            self.vip_agent_ready,
            self.settled,
        )
    }

    /// Healthy apart from the VIP agent: Ready, schedulable, not being deleted, cilium-agent
    /// not known to be unready. The first half of eligibility (see `elect`).
    pub fn is_healthy(&self) -> bool {
        self.ready
            && !self.unschedulable
            && !self.deleting
            && self.cilium_agent_ready != Some(false)
    }

    /// The VIP agent is not known to be unready (counts for `VirtualIPAddress` gateways).
    pub fn vip_agent_ok(&self) -> bool {
        self.vip_agent_ready != Some(false)
    }

    /// May this node carry `gateway`: it matches the selector and is healthy for its mode.
    pub fn eligible_for(&self, gateway: &Gateway) -> bool {
        gateway.selects(&self.labels)
            && self.is_healthy()
            && (self.vip_agent_ok() || !gateway.needs_vip_agent())
    }

    /// A healthy, settled node with these labels (for inventories and tests).
    pub fn healthy(name: impl Into<String>, labels: BTreeMap<String, String>) -> Self {
        NodeFacts {
            name: name.into(),
            labels,
            ready: true,
            unschedulable: false,
            deleting: false,
            cilium_agent_ready: None,
            vip_agent_ready: None,
            settled: true,
        }
    }
}

/// Everything one `build` (or one controller pass) works on.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Catalog {
    /// Gateways sorted by name.
    pub gateways: Vec<Gateway>,
    /// Policies sorted by name.
    pub policies: Vec<Policy>,
    /// Nodes sorted by name; empty when no inventory was given.
    pub nodes: Vec<NodeFacts>,
}

impl Catalog {
    /// The gateway called `name`.
    pub fn gateway(&self, name: &str) -> Option<&Gateway> {
        self.gateways
            .binary_search_by(|g| g.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.gateways[i])
    }
}
