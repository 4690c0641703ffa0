//! EgressGatewayPolicy checks that need only the policy itself: destinations and exclusions
//! (syntax, host bits, IPv6 support of the target Cilium), and pod selectors. Cross-object
//! checks (the gateway reference) live in `references`.

use ipnet::IpNet;

use super::documents::Object;
use super::net::{CidrError, parse_cidr};
use super::{Report, labels};
use crate::diag::{Code, Diagnostic};
use crate::load::Path;
use crate::model::api::EgressGatewayPolicySpec;
use crate::model::catalog::Policy;
use crate::model::cilium::CiliumVersion;

/// Checks one policy; `None` if it has errors. The gateway reference is checked later. A
/// valid policy's pod selectors move into the result (they are its largest part; a copy
/// would double them until validation ends).
pub fn check(
    obj: &mut Object<EgressGatewayPolicySpec>,
    cilium: CiliumVersion,
    report: &mut Report,
) -> Option<Policy> {
    let spec = obj.spec.as_ref()?;
    let errors_before = report.errors();
    let spec_path = Path::root().key("spec");

    if spec.destination_cidrs.is_empty() {
        report.push(
            Diagnostic::new(
                Code::EmptyDestinations,
                obj.doc.key_span(&spec_path.key("destinationCIDRs")),
                "policy has no destinationCIDRs: no traffic would be redirected",
            )
            .with_hint("add e.g. `destinationCIDRs: [0.0.0.0/0]`"),
        );
    }
    let destinations = cidrs(
        obj,
        &spec_path.key("destinationCIDRs"),
        &spec.destination_cidrs,
        cilium,
        report,
    );
    let excluded = cidrs(
        obj,
        &spec_path.key("excludedCIDRs"),
        &spec.excluded_cidrs,
        cilium,
        report,
    );
    for (i, exclusion) in &excluded {
        if !destinations.iter().any(|(_, d)| d.contains(exclusion)) {
            report.push(
                Diagnostic::new(
                    Code::ExclusionOutsideDestinations,
                    obj.doc.span(&spec_path.key("excludedCIDRs").index(*i)),
                    format!("excluded CIDR `{exclusion}` is not inside any destination CIDR, so it excludes nothing"),
                )
                .with_hint("correct it or remove it"),
            );
        }
    }

    if !destinations.is_empty() && !excluded.is_empty() {
        // The exclusions merged into their largest blocks: a destination is covered exactly
        // when one merged block contains it (several small exclusions may cover it together).
        let merged = IpNet::aggregate(&excluded.iter().map(|(_, net)| *net).collect());
        if destinations
            .iter()
            .all(|(_, d)| merged.iter().any(|e| e.contains(d)))
        {
            report.push(
                Diagnostic::new(
                    Code::ExclusionsCoverDestinations,
                    obj.doc.key_span(&spec_path.key("excludedCIDRs")),
                    "`excludedCIDRs` cover every destination: no traffic goes through the gateway",
                )
                .with_hint("narrow the exclusions, or delete the policy if it is no longer needed"),
            );
        }
    }

    if spec.selectors.is_empty() {
        report.push(
            Diagnostic::new(
                Code::EmptySelectors,
                obj.doc.key_span(&spec_path.key("selectors")),
                "policy has no selectors: it would select no pods",
            )
            .with_hint("add `selectors: [{podSelector: {matchLabels: {app: backend}}}]`"),
        );
    }
    for (i, selector) in spec.selectors.iter().enumerate() {
        let path = spec_path.key("selectors").index(i).key("podSelector");
        if labels::check_selector(&obj.doc, &path, &selector.pod_selector, report) {
            report.push(
                Diagnostic::new(
                    Code::SelectsAllPods,
                    obj.doc.span(&path),
                    "empty podSelector selects every pod in the cluster",
                )
                .with_hint("narrow it, e.g. `matchLabels: {io.kubernetes.pod.namespace: my-ns}`"),
            );
        }
    }

    if report.errors() > errors_before {
        return None;
    }
    let gateway = spec.egress_gateway_name.clone();
    let selectors = obj
        .spec
        .as_mut()
        .map(|spec| std::mem::take(&mut spec.selectors))
        .unwrap_or_default();
    Some(Policy {
        name: obj.name.clone(),
        gateway,
        selectors: selectors.into_iter().map(|s| s.pod_selector).collect(),
        destinations: destinations.into_iter().map(|(_, net)| net).collect(),
        excluded: excluded.into_iter().map(|(_, net)| net).collect(),
    })
}

/// Parses the CIDR list at `path`, reporting each bad entry; returns the good ones with
/// their index.
fn cidrs(
    obj: &Object<EgressGatewayPolicySpec>,
    path: &Path,
    texts: &[String],
    cilium: CiliumVersion,
    report: &mut Report,
) -> Vec<(usize, IpNet)> {
    let mut nets = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        let span = obj.doc.span(&path.index(i));
        match parse_cidr(text) {
            Ok(IpNet::V6(net)) if !cilium.supports_ipv6_destinations() => report.push(
                Diagnostic::new(
                    Code::Ipv6Unsupported,
                    span,
                    format!("IPv6 CIDR `{net}` needs Cilium 1.18 or later; the target is {cilium}"),
                )
                .with_hint("pass `--cilium-version 1.18` (or later) if the cluster runs it"),
            ),
            Ok(net) => nets.push((i, net)),
            Err(CidrError::NotCanonical {
                problem,
                suggestion,
            }) => report.push(
                Diagnostic::new(
                    Code::InvalidCidr,
                    span,
                    format!("CIDR `{text}` {problem}; the API server and Cilium refuse it"),
                )
                .with_hint(format!("write `{suggestion}`")),
            ),
            Err(CidrError::HostBits(network)) => report.push(
                Diagnostic::new(
                    Code::CidrHostBits,
                    span,
                    format!("CIDR `{text}` has host bits set"),
                )
                .with_hint(format!("write the network form `{network}`")),
            ),
            Err(CidrError::Malformed) => report.push(
                Diagnostic::new(Code::InvalidCidr, span, format!("`{text}` is not a CIDR"))
                    .with_hint(match super::net::parse_ip(text) {
                        Ok(ip) if ip.is_ipv6() => {
                            format!("add a prefix length, e.g. `{ip}/128` for one host")
                        }
                        Ok(ip) => format!("add a prefix length, e.g. `{ip}/32` for one host"),
                        Err(_) => "write `address/prefix`, e.g. `198.51.100.0/24`".to_owned(),
                    }),
            ),
        }
    }
    nets
}
