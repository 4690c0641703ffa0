//! Election: which eligible node carries each gateway. One pure function shared by `build`
//! (over a node inventory) and `sync` (over live cluster state).
//!
//! The result types below are the contract consumed by rendering and by the controller.

use std::collections::BTreeMap;

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
    /// Names of the eligible nodes of this gateway, sorted.
    pub ready_nodes: Vec<String>,
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
