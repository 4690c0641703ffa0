//! Checks across objects: duplicate names per kind, policy → gateway references (with
//! did-you-mean), VIPs shared by two gateways, address family of destinations vs the VIP, and
//! (with an inventory) gateways that match no node.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::Report;
use super::documents::{GATEWAY_KIND, Object, POLICY_KIND, Sorted};
use super::gateway::selects_any;
use super::suggest::did_you_mean;
use crate::diag::{Code, Diagnostic, Span};
use crate::load::{Document, Path};
use crate::model::catalog::{Gateway, NodeFacts, Policy};

fn name_path() -> Path {
    Path::root().key("metadata").key("name")
}

/// Reports second and later objects of a kind with the same name; returns the indexes of
/// the objects to keep (the first of each name).
pub fn first_of_each_name<T>(objects: &[Object<T>], kind: &str, report: &mut Report) -> Vec<usize> {
    let mut seen: BTreeMap<&str, Span> = BTreeMap::new();
    let mut keep = Vec::new();
    for (i, obj) in objects.iter().enumerate() {
        let span = obj.doc.span(&name_path());
        if let Some(first) = seen.get(obj.name.as_str()) {
            report.push(
                Diagnostic::new(
                    Code::DuplicateName,
                    span,
                    format!("{kind} `{}` is defined twice", obj.name),
                )
                .with_related(first.clone(), "first defined here")
                .with_hint("rename one of them or delete the stale copy"),
            );
        } else {
            seen.insert(&obj.name, span);
            keep.push(i);
        }
    }
    keep
}

/// Checks every policy's `egressGatewayName` against the gateway documents of the input
/// (valid or not: a broken gateway gets its own diagnostics, not a dangling reference too).
pub fn check_gateway_refs(sorted: &Sorted, report: &mut Report) {
    let names: Vec<&str> = sorted.gateways.iter().map(|g| g.name.as_str()).collect();
    let known: std::collections::BTreeSet<&str> = names.iter().copied().collect();
    for policy in &sorted.policies {
        let Some(spec) = &policy.spec else { continue };
        let wanted = spec.egress_gateway_name.as_str();
        if known.contains(wanted) {
            continue;
        }
        let hint = did_you_mean(wanted, names.iter().copied()).unwrap_or_else(|| {
            if names.is_empty() {
                format!("the input defines no {GATEWAY_KIND}; add one named `{wanted}`")
            } else {
                format!("known gateways: {}", names.join(", "))
            }
        });
        report.push(
            Diagnostic::new(
                Code::UnknownGateway,
                policy
                    .doc
                    .span(&Path::root().key("spec").key("egressGatewayName")),
                format!(
                    "{POLICY_KIND} `{}` refers to unknown {GATEWAY_KIND} `{wanted}`",
                    policy.name
                ),
            )
            .with_hint(hint),
        );
    }
}

/// A validated gateway with the document it came from.
pub struct Checked<'a> {
    /// The gateway.
    pub gateway: Gateway,
    /// Its document.
    pub doc: &'a Document,
}

/// Reports a VIP used by more than one gateway; the later ones are dropped from `gateways`.
pub fn check_shared_vips(gateways: &mut Vec<Checked<'_>>, report: &mut Report) {
    let mut owners: BTreeMap<IpAddr, (String, Span)> = BTreeMap::new();
    let vip_path = Path::root()
        .key("spec")
        .key("sourceIP")
        .key("virtualIPAddress")
        .key("ip");
    gateways.retain(|Checked { gateway, doc }| {
        let Some(ip) = gateway.source.virtual_ip() else {
            return true;
        };
        let span = doc.span(&vip_path);
        if let Some((owner, first)) = owners.get(&ip) {
            report.push(
                Diagnostic::new(
                    Code::DuplicateVip,
                    span,
                    format!(
                        "VIP `{ip}` of gateway `{}` is already used by gateway `{owner}`",
                        gateway.name
                    ),
                )
                .with_related(first.clone(), format!("`{owner}` uses it here"))
                .with_hint("give each gateway its own VIP, or point the policies at one gateway"),
            );
            return false;
        }
        owners.insert(ip, (gateway.name.clone(), span));
        true
    });
}

/// Warns when a policy's destinations are of a family its gateway's VIP cannot translate to.
pub fn check_families(
    policy: &Policy,
    gateway: &Gateway,
    span_of: impl Fn(usize) -> Span,
    report: &mut Report,
) {
    let Some(ip) = gateway.source.virtual_ip() else {
        return;
    };
    for (i, net) in policy.destinations.iter().enumerate() {
        let same = matches!(
            (net, ip),
            (ipnet::IpNet::V4(_), IpAddr::V4(_)) | (ipnet::IpNet::V6(_), IpAddr::V6(_))
        );
        if !same {
            report.push(
                Diagnostic::new(
                    Code::FamilyMismatch,
                    span_of(i),
                    format!("destination `{net}` and the VIP `{ip}` of gateway `{}` are of different IP families", gateway.name),
                )
                .with_hint("route each family through a gateway with a VIP of that family"),
            );
        }
    }
}

/// Warns about gateways whose nodeSelector matches no node of the inventory.
pub fn check_node_matches(gateways: &[Checked<'_>], nodes: &[NodeFacts], report: &mut Report) {
    for Checked { gateway, doc } in gateways {
        if !selects_any(&gateway.node_selector, nodes) {
            report.push(
                Diagnostic::new(
                    Code::NoMatchingNode,
                    doc.key_span(&Path::root().key("spec").key("nodeSelector")),
                    format!(
                        "gateway `{}` selects no node of the inventory ({} node{})",
                        gateway.name,
                        nodes.len(),
                        if nodes.len() == 1 { "" } else { "s" }
                    ),
                )
                .with_hint("correct `spec.nodeSelector` or label the egress nodes"),
            );
        }
    }
}
