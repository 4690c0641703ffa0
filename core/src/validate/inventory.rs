//! Checks of VIP gateways against a node inventory (`--nodes`), i.e. when the active node
//! comes from static labels: VIP mode needs the controller (W011), and a VIP must not be
//! an address a node already has (W013).

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::Report;
use super::references::Checked;
use crate::diag::{Code, Diagnostic, Span};
use crate::load::Path;
use crate::model::catalog::SourceIp;

fn vip_path() -> Path {
    Path::root()
        .key("spec")
        .key("sourceIP")
        .key("virtualIPAddress")
        .key("ip")
}

/// For every VIP gateway: W011 (the VIP is only brought up on the controller's grant, which
/// static labels never give) and W013 when the VIP is one of `addresses` (node `InternalIP`s,
/// with the node and where the address is written).
pub fn check_static_vips(
    gateways: &[Checked<'_>],
    addresses: &[(IpAddr, String, Span)],
    report: &mut Report,
) {
    // The addresses by value (each list in inventory order), so that each VIP is one lookup
    // rather than a scan of every node's addresses.
    let mut by_ip: BTreeMap<IpAddr, Vec<&(IpAddr, String, Span)>> = BTreeMap::new();
    for entry in addresses {
        by_ip.entry(entry.0).or_default().push(entry);
    }
    for Checked { gateway, doc } in gateways {
        let ip = match &gateway.source {
            SourceIp::VirtualIp { ip, .. } => ip,
            SourceIp::PrimaryInterface { .. } => continue,
        };
        report.push(
            Diagnostic::new(
                Code::VipNeedsController,
                doc.span(&Path::root().key("spec").key("sourceIP").key("mode")),
                format!(
                    "VIP gateway `{}` gets a static active node from `--nodes`, but its VIP agent brings `{ip}` up only when `egressc sync` grants it: without the controller the VIP never comes up",
                    gateway.name
                ),
            )
            .with_hint("run the controller (`egressc install`) and leave `--nodes` out, or use mode `PrimaryIPFromEgressGatewayNodeInterface`"),
        );
        for (address, node, span) in by_ip.get(ip).into_iter().flatten() {
            report.push(
                Diagnostic::new(
                    Code::VipIsNodeAddress,
                    doc.span(&vip_path()),
                    format!(
                        "VIP `{address}` of gateway `{}` is the InternalIP of node `{node}`",
                        gateway.name
                    ),
                )
                .with_related(span.clone(), format!("`{node}` has it here"))
                .with_hint("pick an unused address of the egress nodes' subnet"),
            );
        }
    }
}
