//! Strict serde types of Cilium's `CiliumEgressGatewayPolicy` (cilium.io/v2), covering the
//! fields of the CRD in Cilium 1.17 and 1.19. Unknown fields are rejected, so re-parsing
//! rendered output through these types catches misspelt or misplaced fields that the API server
//! would silently prune.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `apiVersion` of the kind.
pub const API_VERSION: &str = "cilium.io/v2";
/// `kind`.
pub const KIND: &str = "CiliumEgressGatewayPolicy";

/// A whole CiliumEgressGatewayPolicy object.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CiliumEgressGatewayPolicy {
    /// Always [`API_VERSION`].
    pub api_version: String,
    /// Always [`KIND`].
    pub kind: String,
    /// Name and labels (the only metadata egressc sets).
    pub metadata: Metadata,
    /// The policy.
    pub spec: Spec,
}

/// The metadata egressc writes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.labels`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `metadata.annotations`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// `spec`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Which pods the policy applies to.
    pub selectors: Vec<EgressRule>,
    /// Destinations.
    #[serde(rename = "destinationCIDRs")]
    pub destination_cidrs: Vec<String>,
    /// Destinations excluded.
    #[serde(
        rename = "excludedCIDRs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub excluded_cidrs: Option<Vec<String>>,
    /// The gateway node and SNAT address.
    #[serde(rename = "egressGateway")]
    pub egress_gateway: EgressGateway,
    /// Several gateways (1.19+); egressc never renders it.
    #[serde(
        rename = "egressGateways",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub egress_gateways: Option<Vec<EgressGateway>>,
}

/// One entry of `spec.selectors`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EgressRule {
    /// Namespaces of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// The pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<LabelSelector>,
    /// Nodes of the pods (1.19+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<LabelSelector>,
}

/// `spec.egressGateway`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EgressGateway {
    /// Selects the gateway node (the first match by name).
    pub node_selector: LabelSelector,
    /// SNAT to the first IPv4 of this interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// SNAT to this address.
    #[serde(rename = "egressIP", default, skip_serializing_if = "Option::is_none")]
    pub egress_ip: Option<String>,
}

/// A standard label selector, strict.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    /// Exact matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<BTreeMap<String, String>>,
    /// Set-based requirements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_expressions: Option<Vec<LabelSelectorRequirement>>,
}

/// One set-based requirement.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LabelSelectorRequirement {
    /// Label key.
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    pub operator: String,
    /// Values for `In`/`NotIn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
}
