//! EgressGateway checks: node selector syntax, mode ↔ settings block, VIP address rules and
//! interface names. Produces the validated [`Gateway`] when the document is usable.

use std::net::IpAddr;

use super::documents::Object;
use super::net::IpError;
use super::syntax::check_interface;
use super::{Report, labels};
use crate::diag::{Code, Diagnostic};
use crate::load::Path;
use crate::model::api::{EgressGatewaySpec, SourceIpMode};
use crate::model::catalog::{Gateway, SourceIp};
use crate::model::cilium::CiliumVersion;
use crate::model::labels::MAX_VERBATIM_GATEWAY_NAME;

const VIP_BLOCK: &str = "virtualIPAddress";
const PRIMARY_BLOCK: &str = "primaryIPFromEgressGatewayNodeInterface";

/// Checks one gateway; `None` if it has errors.
pub fn check(
    obj: &Object<EgressGatewaySpec>,
    cilium: CiliumVersion,
    report: &mut Report,
) -> Option<Gateway> {
    let spec = obj.spec.as_ref()?;
    let errors_before = report.errors();
    if obj.name.len() > MAX_VERBATIM_GATEWAY_NAME {
        report.push(
            Diagnostic::new(
                Code::HashedActiveLabel,
                obj.doc.span(&Path::root().key("metadata").key("name")),
                format!(
                    "gateway name is {} characters long; `active-for-<name>` labels allow {MAX_VERBATIM_GATEWAY_NAME}, so a hashed label key is used",
                    obj.name.len()
                ),
            )
            .with_hint(format!(
                "shorten the name to at most {MAX_VERBATIM_GATEWAY_NAME} characters for Deckhouse-compatible labels"
            )),
        );
    }
    let selector_path = Path::root().key("spec").key("nodeSelector");
    labels::check_map(&obj.doc, &selector_path, &spec.node_selector, false, report);
    let source = source_ip(obj, spec, cilium, report);
    if report.errors() > errors_before {
        return None;
    }
    Some(Gateway {
        name: obj.name.clone(),
        node_selector: spec.node_selector.clone(),
        source: source?,
    })
}

fn source_ip(
    obj: &Object<EgressGatewaySpec>,
    spec: &EgressGatewaySpec,
    cilium: CiliumVersion,
    report: &mut Report,
) -> Option<SourceIp> {
    let base = Path::root().key("spec").key("sourceIP");
    let source = &spec.source_ip;
    let (own, other) = match source.mode {
        SourceIpMode::VirtualIPAddress => (VIP_BLOCK, PRIMARY_BLOCK),
        SourceIpMode::PrimaryIPFromEgressGatewayNodeInterface => (PRIMARY_BLOCK, VIP_BLOCK),
    };
    let has_other = match source.mode {
        SourceIpMode::VirtualIPAddress => source
            .primary_ip_from_egress_gateway_node_interface
            .is_some(),
        SourceIpMode::PrimaryIPFromEgressGatewayNodeInterface => {
            source.virtual_ip_address.is_some()
        }
    };
    let has_own = match source.mode {
        SourceIpMode::VirtualIPAddress => source.virtual_ip_address.is_some(),
        SourceIpMode::PrimaryIPFromEgressGatewayNodeInterface => source
            .primary_ip_from_egress_gateway_node_interface
            .is_some(),
    };
    // Without its own block the gateway gets E023; the other block is then the likely
    // intent, not something to delete.
    if has_other && has_own {
        report.push(
            Diagnostic::new(
                Code::UnusedModeBlock,
                obj.doc.key_span(&base.key(other)),
                format!(
                    "`{other}` is ignored because `mode` is `{own_mode}`",
                    own_mode = mode_name(source.mode)
                ),
            )
            .with_hint(format!(
                "delete `{other}`, or change `mode` if that block is what you meant"
            )),
        );
    }
    match source.mode {
        SourceIpMode::VirtualIPAddress => {
            let Some(vip) = &source.virtual_ip_address else {
                report.push(missing_block(
                    obj,
                    &base,
                    own,
                    "virtualIPAddress: {ip: 192.0.2.10}",
                ));
                return None;
            };
            let ip = check_vip(obj, &base.key(VIP_BLOCK).key("ip"), &vip.ip, cilium, report);
            for (i, interface) in vip.interfaces.iter().enumerate() {
                check_interface_at(
                    obj,
                    &base.key(VIP_BLOCK).key("interfaces").index(i),
                    interface,
                    report,
                );
            }
            Some(SourceIp::VirtualIp {
                ip: ip?,
                interfaces: vip.interfaces.clone(),
            })
        }
        SourceIpMode::PrimaryIPFromEgressGatewayNodeInterface => {
            let Some(primary) = &source.primary_ip_from_egress_gateway_node_interface else {
                report.push(missing_block(
                    obj,
                    &base,
                    own,
                    "primaryIPFromEgressGatewayNodeInterface: {interfaceName: eth1}",
                ));
                return None;
            };
            let path = base.key(PRIMARY_BLOCK).key("interfaceName");
            check_interface_at(obj, &path, &primary.interface_name, report).then(|| {
                SourceIp::PrimaryInterface {
                    interface: primary.interface_name.clone(),
                }
            })
        }
    }
}

fn mode_name(mode: SourceIpMode) -> &'static str {
    match mode {
        SourceIpMode::VirtualIPAddress => "VirtualIPAddress",
        SourceIpMode::PrimaryIPFromEgressGatewayNodeInterface => {
            "PrimaryIPFromEgressGatewayNodeInterface"
        }
    }
}

fn missing_block(
    obj: &Object<EgressGatewaySpec>,
    base: &Path,
    block: &str,
    example: &str,
) -> Diagnostic {
    let mode = obj
        .spec
        .as_ref()
        .map_or("", |s| mode_name(s.source_ip.mode));
    Diagnostic::new(
        Code::ModeBlockMissing,
        obj.doc.span(&base.key("mode")),
        format!("mode `{mode}` needs the `sourceIP.{block}` block"),
    )
    .with_hint(format!("add `{example}` under `sourceIP`"))
}

fn check_vip(
    obj: &Object<EgressGatewaySpec>,
    path: &Path,
    text: &str,
    cilium: CiliumVersion,
    report: &mut Report,
) -> Option<IpAddr> {
    let span = obj.doc.span(path);
    let ip = match super::net::parse_ip(text) {
        Ok(ip) => ip,
        Err(IpError::NotCanonical {
            problem,
            suggestion,
        }) => {
            report.push(
                Diagnostic::new(
                    Code::InvalidIp,
                    span,
                    format!("`{text}` {problem}; the API server and Cilium refuse it"),
                )
                .with_hint(format!("write `{suggestion}`")),
            );
            return None;
        }
        Err(IpError::Malformed) => {
            let hint = if text.contains('/') {
                "write the address without a prefix length, e.g. `192.0.2.10`"
            } else {
                "write an IPv4 or IPv6 address, e.g. `192.0.2.10`"
            };
            report.push(
                Diagnostic::new(
                    Code::InvalidIp,
                    span,
                    format!("`{text}` is not an IP address"),
                )
                .with_hint(hint),
            );
            return None;
        }
    };
    if let Some(problem) = super::net::vip_problem(ip) {
        report.push(
            Diagnostic::new(
                Code::VipNotHostAddress,
                span,
                format!("VIP `{ip}` is {problem}"),
            )
            .with_hint("use an unused address of the egress nodes' public subnet"),
        );
        return None;
    }
    if let Some(edge) = super::net::v4_subnet_edge(ip) {
        report.push(
            Diagnostic::new(
                Code::VipSubnetEdge,
                span.clone(),
                format!("VIP `{ip}` is the {edge} address of its /24"),
            )
            .with_hint(
                "this is only valid when the node subnet is wider than /24 (e.g. a /23); \
                 otherwise choose another address",
            ),
        );
    }
    if ip.is_ipv6() && !cilium.supports_ipv6_egress_ip() {
        report.push(
            Diagnostic::new(
                Code::Ipv6Unsupported,
                span,
                format!("IPv6 VIP `{ip}` needs Cilium 1.20 or later; the target is {cilium}"),
            )
            .with_hint("pass `--cilium-version 1.20` if the cluster runs it, or use an IPv4 VIP"),
        );
        return None;
    }
    Some(ip)
}

fn check_interface_at(
    obj: &Object<EgressGatewaySpec>,
    path: &Path,
    name: &str,
    report: &mut Report,
) -> bool {
    match check_interface(name) {
        Ok(()) => true,
        Err(why) => {
            report.push(
                Diagnostic::new(
                    Code::InvalidInterface,
                    obj.doc.span(path),
                    format!("interface name `{name}` {why}"),
                )
                .with_hint("use the interface name as `ip link` shows it, e.g. `eth1`"),
            );
            false
        }
    }
}
