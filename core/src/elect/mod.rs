//! Election: which eligible node carries each gateway. One implementation shared by `build`
//! (over a node inventory, through [`elect`]) and `sync` (over live cluster state, through the
//! incrementally updated [`Elector`]).
//!
//! # Rules
//!
//! - **Eligible**: a node is eligible for a gateway when the gateway's `nodeSelector` matches
//!   its labels, it is Ready, not cordoned, not being deleted, its cilium-agent is not known to
//!   be unready and, for a `VirtualIPAddress` gateway, its VIP agent is not known to be unready.
//!   `ready_nodes` lists the eligible nodes by name, settled or not.
//! - **Current holder**: the node carrying the gateway's `active-for-<gateway>` label (any
//!   value). If several do (corrupt state), the eligible one with the smallest rendezvous weight
//!   (see [`hash`]) is taken, then the smallest name.
//! - **Sticky**: an eligible holder keeps the role ([`ElectionReason::Kept`]), even while it is
//!   unsettled. Nothing ever fails back to a recovered node.
//! - **Independent**: a gateway's active node depends only on that gateway (its name,
//!   selector and mode), the nodes (labels and health) and the existing assignment (which node
//!   carries its `active-for-<gateway>` label) — never on which other gateways exist or what
//!   they decide. Adding, removing or renaming a gateway never moves another one, in `build`
//!   and in `sync` alike.
//! - **Spread by rendezvous hashing**: a gateway without an eligible holder takes, among its
//!   eligible nodes, the one with the smallest rendezvous weight (see [`hash`]), then the
//!   smallest name. Settled nodes are preferred; an unsettled eligible node is chosen only when
//!   no settled one is eligible, because dropping traffic is worse than landing on a node that
//!   has just recovered. Every gateway orders the nodes differently, so gateways sharing a
//!   group spread over it like independent uniform choices, and when a node fails its
//!   gateways scatter over the survivors instead of piling onto one.
//!
//!   There is deliberately no load counting. Balancing on the other gateways' *new* decisions
//!   (fewest active gateways, assigned in some order) makes a gateway's node depend on which
//!   other gateways exist and on the order they are decided in: adding `aa` moves `alpha`.
//!   Balancing only on *existing* assignments (labels) does not have that flaw but herds:
//!   every gateway vacant at the same moment (all of a failed node's) sees the same loads and
//!   piles onto the same least-loaded node. Rendezvous hashing spreads without either.
//! - **Vacant**: a gateway without an eligible node has no active node, with reason
//!   [`ElectionReason::NoEligibleNode`] if some node matches its selector and
//!   [`ElectionReason::NoMatchingNode`] otherwise.
//!
//! The result depends only on the set of gateways and nodes, never on their input order. Node
//! and gateway names are unique in a cluster; repeated names are resolved deterministically
//! (see [`Elector::new`]).

mod elector;
pub mod hash;
mod nodes;
#[cfg(test)]
mod tests;

pub use elector::Elector;
pub use nodes::{SharedLabels, SharedNode};

use crate::model::catalog::{Gateway, NodeFacts};

/// Elects an active node for every gateway. See the module docs for the rules.
pub fn elect(gateways: &[Gateway], nodes: &[NodeFacts]) -> Election {
    Elector::new(gateways, nodes).into_election()
}

use std::collections::BTreeMap;
use std::sync::Arc;

/// The election result for every gateway, keyed by gateway name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Election {
    /// One entry per gateway of the input, keyed by gateway name.
    pub gateways: BTreeMap<String, GatewayElection>,
}

/// The outcome for one gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayElection {
    /// The node that carries the gateway, if any.
    pub active: Option<String>,
    /// Why `active` is what it is.
    pub reason: ElectionReason,
    /// Names of the eligible nodes of this gateway, sorted. Shared between gateways with the
    /// same node group (a full election over 1,000 gateways of 500 nodes would otherwise copy
    /// half a million names).
    pub ready_nodes: Arc<Vec<String>>,
}

/// Why a gateway has (or lacks) its active node. `as_str` values are stable: they appear in
/// status conditions, events and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ElectionReason {
    /// The current active node is still eligible and keeps the role (sticky).
    Kept,
    /// A new active node was chosen (first election or failover).
    Elected,
    /// Nodes match the selector but none is eligible.
    NoEligibleNode,
    /// No node matches the gateway's nodeSelector.
    NoMatchingNode,
}

impl ElectionReason {
    /// The stable CamelCase name used in conditions, events and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ElectionReason::Kept => "ActiveNodeKept",
            ElectionReason::Elected => "ActiveNodeElected",
            ElectionReason::NoEligibleNode => "NoEligibleNode",
            ElectionReason::NoMatchingNode => "NoMatchingNode",
        }
    }
}
