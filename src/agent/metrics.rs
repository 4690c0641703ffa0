//! The agent's Prometheus metrics (served on `/metrics` by `health`): which VIPs this node
//! holds, how many announcement frames went out, how many Lease renewals failed.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The `gateway` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GatewayLabel {
    /// The EgressGateway's name.
    pub gateway: String,
}

/// The metrics and the registry that exposes them; cheap to clone (shared counters).
#[derive(Clone, Debug)]
pub struct Metrics {
    /// `egressc_vip_held{gateway}`: 1 while the VIP is configured on this node.
    pub vip_held: Family<GatewayLabel, Gauge>,
    /// `egressc_garp_sent_total`: gratuitous ARP and unsolicited NA frames sent.
    pub garp_sent: Counter,
    /// `egressc_lease_renew_failures_total`: renewals that failed (error, timeout, conflict).
    pub lease_renew_failures: Counter,
    /// `egressc_vip_probe_conflicts_total`: probe rounds before a bring-up that found the VIP
    /// answered or probed for by another MAC.
    pub probe_conflicts: Counter,
    /// `egressc_vip_yields_total`: outage holds given up because another MAC probed for or
    /// claimed the VIP.
    pub yields: Counter,
    /// `egressc_vip_hold_refreshes_total`: lifetime refreshes made while renewals failed.
    pub hold_refreshes: Counter,
    registry: std::sync::Arc<Registry>,
}

impl Default for Metrics {
    fn default() -> Self {
        let vip_held = Family::<GatewayLabel, Gauge>::default();
        let garp_sent = Counter::default();
        let lease_renew_failures = Counter::default();
        let probe_conflicts = Counter::default();
        let yields = Counter::default();
        let hold_refreshes = Counter::default();
        let mut registry = Registry::default();
        registry.register(
            "egressc_vip_held",
            "1 while this node has the gateway's VIP configured",
            vip_held.clone(),
        );
        // The text encoder appends `_total` to counters.
        registry.register(
            "egressc_garp_sent",
            "Gratuitous ARP and unsolicited Neighbor Advertisement frames sent",
            garp_sent.clone(),
        );
        registry.register(
            "egressc_lease_renew_failures",
            "VIP Lease renewals that failed (error, timeout or conflict)",
            lease_renew_failures.clone(),
        );
        registry.register(
            "egressc_vip_probe_conflicts",
            "Probe rounds before a VIP bring-up that found the VIP taken by another MAC",
            probe_conflicts.clone(),
        );
        registry.register(
            "egressc_vip_yields",
            "Outage holds given up because another MAC probed for or claimed the VIP",
            yields.clone(),
        );
        registry.register(
            "egressc_vip_hold_refreshes",
            "VIP lifetime refreshes made while Lease renewals failed (outage hold)",
            hold_refreshes.clone(),
        );
        Metrics {
            vip_held,
            garp_sent,
            lease_renew_failures,
            probe_conflicts,
            yields,
            hold_refreshes,
            registry: std::sync::Arc::new(registry),
        }
    }
}

impl Metrics {
    /// Sets `egressc_vip_held{gateway}`.
    pub fn set_held(&self, gateway: &str, held: bool) {
        self.vip_held
            .get_or_create(&GatewayLabel {
                gateway: gateway.to_owned(),
            })
            .set(i64::from(held));
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_carries_the_documented_names() {
        let metrics = Metrics::default();
        metrics.set_held("gw-a", true);
        metrics.set_held("gw-b", false);
        metrics.garp_sent.inc_by(3);
        metrics.lease_renew_failures.inc();
        let text = metrics.render();
        assert!(
            text.contains("egressc_vip_held{gateway=\"gw-a\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("egressc_vip_held{gateway=\"gw-b\"} 0"),
            "{text}"
        );
        assert!(text.contains("egressc_garp_sent_total 3"), "{text}");
        assert!(
            text.contains("egressc_lease_renew_failures_total 1"),
            "{text}"
        );
    }
}
