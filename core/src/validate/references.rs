//! Checks across objects: duplicate names per kind, policy → gateway references (with
//! did-you-mean), VIPs shared by two gateways, address family of destinations vs the VIP, and
//! (with an inventory) gateways that match no node.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::Report;
use super::documents::{GATEWAY_KIND, Object, POLICY_KIND, Sorted};
use super::suggest::did_you_mean;
use crate::diag::{Code, Diagnostic, Span};
use crate::load::{Document, Path};
use crate::model::catalog::{Gateway, NodeFacts, Policy, SourceIp};
use crate::model::labels::active_for_label;

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

/// Keeps the first gateway of each key (`key_of`; `None`: no key) and drops the later ones,
/// reporting each with `diagnose(gateway, key, first owner's name, span, first owner's span)`.
fn drop_later_sharing<K: Ord>(
    gateways: &mut Vec<Checked<'_>>,
    report: &mut Report,
    key_of: impl Fn(&Checked<'_>) -> Option<(K, Span)>,
    diagnose: impl Fn(&Gateway, &K, &str, Span, Span) -> Diagnostic,
) {
    let mut owners: BTreeMap<K, (String, Span)> = BTreeMap::new();
    gateways.retain(|checked| {
        let Some((key, span)) = key_of(checked) else {
            return true;
        };
        if let Some((owner, first)) = owners.get(&key) {
            report.push(diagnose(&checked.gateway, &key, owner, span, first.clone()));
            return false;
        }
        owners.insert(key, (checked.gateway.name.clone(), span));
        true
    });
}

/// Reports a VIP used by more than one gateway; the later ones are dropped from `gateways`.
pub fn check_shared_vips(gateways: &mut Vec<Checked<'_>>, report: &mut Report) {
    let vip_path = Path::root()
        .key("spec")
        .key("sourceIP")
        .key("virtualIPAddress")
        .key("ip");
    let key_of = |Checked { gateway, doc }: &Checked<'_>| match &gateway.source {
        SourceIp::VirtualIp { ip, .. } => Some((*ip, doc.span(&vip_path))),
        SourceIp::PrimaryInterface { .. } => None,
    };
    drop_later_sharing(
        gateways,
        report,
        key_of,
        |gateway, ip: &IpAddr, owner, span, first| {
            Diagnostic::new(
                Code::DuplicateVip,
                span,
                format!(
                    "VIP `{ip}` of gateway `{}` is already used by gateway `{owner}`",
                    gateway.name
                ),
            )
            .with_related(first, format!("`{owner}` uses it here"))
            .with_hint("give each gateway its own VIP, or point the policies at one gateway")
        },
    );
}

/// Reports a gateway whose `active-for-…` label key equals an earlier gateway's (possible only
/// for two hashed keys, see [`active_for_label`]); the later ones are dropped from `gateways`.
pub fn check_label_collisions(gateways: &mut Vec<Checked<'_>>, report: &mut Report) {
    let key_of = |Checked { gateway, doc }: &Checked<'_>| {
        Some((active_for_label(&gateway.name), doc.span(&name_path())))
    };
    drop_later_sharing(
        gateways,
        report,
        key_of,
        |gateway, key: &String, owner, span, first| {
            Diagnostic::new(
            Code::ActiveLabelCollision,
            span,
            format!(
                "gateway `{}` would be marked by the label `{key}`, which gateway `{owner}` already uses",
                gateway.name
            ),
        )
        .with_related(first, format!("`{owner}` is defined here"))
        .with_hint("rename one of them; names of at most 52 characters keep their own label key")
        },
    );
}

/// Checks the address family of a policy's destinations against its gateway's VIP: an IPv6
/// VIP with an IPv4 destination is refused (E040, Cilium's parser ignores the policy), IPv6
/// destinations through an IPv4 VIP are a warning (W006). Returns false on an error.
pub fn check_families(
    policy: &Policy,
    gateway: &Gateway,
    span_of: impl Fn(usize) -> Span,
    report: &mut Report,
) -> bool {
    let Some(ip) = gateway.source.virtual_ip() else {
        return true;
    };
    let mut ok = true;
    for (i, net) in policy.destinations.iter().enumerate() {
        match (net, ip) {
            (ipnet::IpNet::V4(_), IpAddr::V4(_)) | (ipnet::IpNet::V6(_), IpAddr::V6(_)) => {}
            (ipnet::IpNet::V4(_), IpAddr::V6(_)) => {
                ok = false;
                report.push(
                    Diagnostic::new(
                        Code::Ipv6VipWithIpv4Destinations,
                        span_of(i),
                        format!(
                            "IPv4 destination `{net}` goes through gateway `{}` whose VIP `{ip}` is IPv6; Cilium refuses such a policy, IPv6 traffic included",
                            gateway.name
                        ),
                    )
                    .with_hint("move the IPv4 destinations to a policy whose gateway has an IPv4 VIP"),
                );
            }
            (ipnet::IpNet::V6(_), IpAddr::V4(_)) => report.push(
                Diagnostic::new(
                    Code::FamilyMismatch,
                    span_of(i),
                    format!("destination `{net}` and the VIP `{ip}` of gateway `{}` are of different IP families", gateway.name),
                )
                .with_hint("route each family through a gateway with a VIP of that family"),
            ),
        }
    }
    ok
}

/// Warns about gateways whose nodeSelector matches no node of the inventory (W005), or only
/// nodes none of which is eligible (W010).
pub fn check_node_matches(gateways: &[Checked<'_>], nodes: &[NodeFacts], report: &mut Report) {
    for Checked { gateway, doc } in gateways {
        // Stop at the first eligible node: that settles it for almost every gateway, where a
        // full scan would cost gateways × nodes selector matches. Only a gateway about to be
        // warned about needs the whole list of its nodes.
        if nodes.iter().any(|n| n.eligible_for(gateway)) {
            continue;
        }
        let selector_span = || doc.key_span(&Path::root().key("spec").key("nodeSelector"));
        let matching: Vec<&NodeFacts> = nodes
            .iter()
            .filter(|n| gateway.selects(&n.labels))
            .collect();
        if matching.is_empty() {
            report.push(
                Diagnostic::new(
                    Code::NoMatchingNode,
                    selector_span(),
                    format!(
                        "gateway `{}` selects no node of the inventory ({} node{})",
                        gateway.name,
                        nodes.len(),
                        if nodes.len() == 1 { "" } else { "s" }
                    ),
                )
                .with_hint("correct `spec.nodeSelector` or label the egress nodes"),
            );
        } else {
            let names: Vec<&str> = matching.iter().take(5).map(|n| n.name.as_str()).collect();
            let more = matching.len().saturating_sub(names.len());
            report.push(
                Diagnostic::new(
                    Code::NoEligibleNode,
                    selector_span(),
                    format!(
                        "gateway `{}` selects {} node{} of the inventory ({}{}), but none is eligible (Ready, not cordoned, not being deleted): it has no active node and its traffic is dropped",
                        gateway.name,
                        matching.len(),
                        if matching.len() == 1 { "" } else { "s" },
                        names.join(", "),
                        if more > 0 { format!(" and {more} more") } else { String::new() },
                    ),
                )
                .with_hint("uncordon or repair a node of the group, or widen `spec.nodeSelector`"),
            );
        }
    }
}
