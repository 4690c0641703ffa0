//! Which gateways the agent may have to carry a VIP for: the `VirtualIPAddress` gateways among
//! the EgressGateways it watches, with their VIP and interface preferences. Pure. Gateways in
//! other modes, or with a VIP that does not parse, are left out: validation and the controller
//! report them; the agent has nothing to put on an interface for them.

use std::net::IpAddr;

use crate::agent::plan::DesiredVip;
use crate::model::api::{EgressGateway, SourceIpMode};

/// The VIP of `gateway`, if it is a `VirtualIPAddress` gateway with a parseable IP.
pub fn vip_of(gateway: &EgressGateway) -> Option<DesiredVip> {
    let name = gateway.metadata.name.clone()?;
    let source = &gateway.spec.source_ip;
    let block = match source.mode {
        SourceIpMode::PrimaryIPFromEgressGatewayNodeInterface => return None,
        SourceIpMode::VirtualIPAddress => source.virtual_ip_address.as_ref()?,
    };
    let ip: IpAddr = block.ip.trim().parse().ok()?;
    Some(DesiredVip {
        gateway: name,
        ip,
        interfaces: block.interfaces.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::api::{EgressGatewaySpec, PrimaryIpSpec, SourceIpSpec, VirtualIpAddressSpec};

    fn gateway(mode: SourceIpMode, ip: &str) -> EgressGateway {
        EgressGateway::new(
            "gw",
            EgressGatewaySpec {
                node_selector: Default::default(),
                source_ip: SourceIpSpec {
                    mode,
                    virtual_ip_address: Some(VirtualIpAddressSpec {
                        ip: ip.into(),
                        interfaces: vec!["eth1".into()],
                    }),
                    primary_ip_from_egress_gateway_node_interface: Some(PrimaryIpSpec {
                        interface_name: "eth0".into(),
                    }),
                },
            },
        )
    }

    #[test]
    fn vip_gateways_yield_their_vip_and_interfaces() {
        let vip = vip_of(&gateway(SourceIpMode::VirtualIPAddress, "198.51.100.100"));
        assert_eq!(
            vip,
            Some(DesiredVip {
                gateway: "gw".into(),
                ip: IpAddr::from([198, 51, 100, 100]),
                interfaces: vec!["eth1".into()],
            })
        );
    }

    #[test]
    fn other_modes_and_bad_ips_yield_nothing() {
        let primary = gateway(
            SourceIpMode::PrimaryIPFromEgressGatewayNodeInterface,
            "198.51.100.100",
        );
        assert_eq!(vip_of(&primary), None);
        assert_eq!(
            vip_of(&gateway(SourceIpMode::VirtualIPAddress, "not-an-ip")),
            None
        );
    }
}
