//! The user-facing API, group `network.deckhouse.io/v1alpha1`: `EgressGateway` and
//! `EgressGatewayPolicy`, field-compatible with Deckhouse's CRDs. These are the raw shapes as
//! they appear in YAML and in the cluster; `catalog` holds the validated, typed form.
//!
//! `egressc crds` and `schemas/` are generated from these types.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of both kinds.
pub const GROUP: &str = "network.deckhouse.io";
/// API version of both kinds.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` as written in manifests.
pub const API_VERSION: &str = "network.deckhouse.io/v1alpha1";

/// A group of nodes that carries egress traffic in hot standby: exactly one eligible node is
/// active at a time.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "network.deckhouse.io",
    version = "v1alpha1",
    kind = "EgressGateway",
    plural = "egressgateways",
    shortname = "egw",
    category = "egressc",
    status = "EgressGatewayStatus",
    printcolumn = r#"{"name":"Mode","type":"string","jsonPath":".spec.sourceIP.mode"}"#,
    printcolumn = r#"{"name":"Active node","type":"string","jsonPath":".status.activeNodeName"}"#,
    printcolumn = r#"{"name":"Ready nodes","type":"integer","jsonPath":".status.readyNodes"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EgressGatewaySpec {
    /// Selects the node group. Among matching nodes the eligible ones are found (Ready, not
    /// cordoned, cilium-agent Ready, and in VirtualIPAddress mode the VIP agent Ready) and one of
    /// them is made active.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// How the source IP of egress traffic is chosen.
    #[serde(rename = "sourceIP")]
    pub source_ip: SourceIpSpec,
}

/// The `spec.sourceIP` block: a mode and the block of that mode.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceIpSpec {
    /// Which source-IP mode this gateway uses.
    pub mode: SourceIpMode,
    /// Settings of `VirtualIPAddress` mode.
    #[serde(
        rename = "virtualIPAddress",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub virtual_ip_address: Option<VirtualIpAddressSpec>,
    /// Settings of `PrimaryIPFromEgressGatewayNodeInterface` mode.
    #[serde(
        rename = "primaryIPFromEgressGatewayNodeInterface",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub primary_ip_from_egress_gateway_node_interface: Option<PrimaryIpSpec>,
}

/// Source-IP modes.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum SourceIpMode {
    /// Traffic leaves with the active node's primary IP on `interfaceName`.
    PrimaryIPFromEgressGatewayNodeInterface,
    /// Traffic leaves with a virtual IP that moves with the active node.
    VirtualIPAddress,
}

/// `spec.sourceIP.virtualIPAddress`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VirtualIpAddressSpec {
    /// The virtual source IP address (IPv4, or IPv6 where the target Cilium supports it).
    pub ip: String,
    /// Interfaces the VIP is put on; empty: the interface whose subnet contains the VIP.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<String>,
}

/// `spec.sourceIP.primaryIPFromEgressGatewayNodeInterface`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrimaryIpSpec {
    /// The public interface; it must have the same name on every node of the group.
    pub interface_name: String,
}

/// `EgressGateway.status`, written by `egressc sync`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EgressGatewayStatus {
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Number of nodes eligible to act as this gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_nodes: Option<i64>,
    /// The current active node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_node_name: Option<String>,
    /// Standard conditions; `Ready` says whether an active node carries the gateway.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Sends traffic of selected pods to selected destinations through an EgressGateway.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "network.deckhouse.io",
    version = "v1alpha1",
    kind = "EgressGatewayPolicy",
    plural = "egressgatewaypolicies",
    shortname = "egwp",
    category = "egressc",
    status = "EgressGatewayPolicyStatus",
    printcolumn = r#"{"name":"Gateway","type":"string","jsonPath":".spec.egressGatewayName"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EgressGatewayPolicySpec {
    /// Destinations routed through the gateway.
    #[serde(default, rename = "destinationCIDRs")]
    pub destination_cidrs: Vec<String>,
    /// Destinations excluded from `destinationCIDRs`.
    #[serde(
        default,
        rename = "excludedCIDRs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub excluded_cidrs: Vec<String>,
    /// The EgressGateway that carries the traffic.
    pub egress_gateway_name: String,
    /// Pods whose traffic is redirected; namespaces via the `io.kubernetes.pod.namespace`
    /// pseudo-label.
    #[serde(default)]
    pub selectors: Vec<PolicySelector>,
}

/// One entry of `spec.selectors`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicySelector {
    /// Standard label selector over pod labels.
    pub pod_selector: LabelSelector,
}

/// `EgressGatewayPolicy.status` (Deckhouse declares an open object; egressc reports the
/// generation it compiled).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EgressGatewayPolicyStatus {
    /// The `metadata.generation` last compiled into a CiliumEgressGatewayPolicy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Standard conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
