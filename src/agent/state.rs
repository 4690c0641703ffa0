//! The agent loop's memory, without I/O: the latest EgressGateways and VIP Leases as the
//! watches and the agent's own writes report them, and the per-gateway protocol state.
//!
//! Watch events can lag behind the response of the agent's own write; an event whose
//! `resourceVersion` is numerically older than the stored one is dropped, so a stale event never
//! makes the holder step down. (The API calls versions opaque; non-numeric ones are always
//! taken, and the worst a stale view causes is a conflicting write and a re-read.) A relist
//! (`Init` … `InitDone`) forgets objects that did not reappear.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::coordination::v1::Lease;
use kube::runtime::watcher::Event;

use crate::agent::gateways::vip_of;
use crate::agent::keeper::{LanReport, VipKeep};
use crate::agent::lease::Local;
use crate::agent::lease_object::{self, resource_version_number};
use crate::agent::plan::DesiredVip;
use crate::model::api::EgressGateway;

/// A watch event for the loop.
#[derive(Debug)]
pub enum Input {
    /// An EgressGateway event.
    Gateway(Event<EgressGateway>),
    /// A VIP Lease event.
    Lease(Event<Lease>),
    /// What a VIP's keeper heard on the LAN.
    Lan(LanReport),
}

/// The latest gateways and Leases, by gateway name.
#[derive(Debug, Default)]
pub struct Inputs {
    vips: BTreeMap<String, DesiredVip>,
    leases: BTreeMap<String, Lease>,
    relisted_gateways: Option<BTreeSet<String>>,
    relisted_leases: Option<BTreeSet<String>>,
}

impl Inputs {
    /// Applies one watch event.
    pub fn apply(&mut self, input: Input) {
        match input {
            Input::Gateway(event) => self.apply_gateway(event),
            Input::Lease(event) => self.apply_lease(event),
            // The loop handles these; nothing about the API objects changes.
            Input::Lan(_) => {}
        }
    }

    fn apply_gateway(&mut self, event: Event<EgressGateway>) {
        match event {
            Event::Init => self.relisted_gateways = Some(BTreeSet::new()),
            Event::InitApply(gateway) | Event::Apply(gateway) => {
                let Some(name) = gateway.metadata.name.clone() else {
                    return;
                };
                if let Some(seen) = &mut self.relisted_gateways {
                    seen.insert(name.clone());
                }
                match vip_of(&gateway) {
                    Some(vip) => self.vips.insert(name, vip),
                    None => self.vips.remove(&name),
                };
            }
            Event::Delete(gateway) => {
                if let Some(name) = &gateway.metadata.name {
                    self.vips.remove(name);
                }
            }
            Event::InitDone => {
                if let Some(seen) = self.relisted_gateways.take() {
                    self.vips.retain(|name, _| seen.contains(name));
                }
            }
        }
    }

    fn apply_lease(&mut self, event: Event<Lease>) {
        match event {
            Event::Init => self.relisted_leases = Some(BTreeSet::new()),
            Event::InitApply(lease) | Event::Apply(lease) => {
                if let (Some(seen), Some(read)) =
                    (&mut self.relisted_leases, lease_object::read(&lease))
                {
                    seen.insert(read.gateway);
                }
                self.put_lease(lease);
            }
            Event::Delete(lease) => {
                if let Some(read) = lease_object::read(&lease)
                    && !self.is_older(&read.gateway, &lease)
                {
                    self.leases.remove(&read.gateway);
                }
            }
            Event::InitDone => {
                if let Some(seen) = self.relisted_leases.take() {
                    self.leases.retain(|gateway, _| seen.contains(gateway));
                }
            }
        }
    }

    /// Stores `lease` unless the stored one is newer (e.g. the response of our own write).
    pub fn put_lease(&mut self, lease: Lease) {
        let Some(read) = lease_object::read(&lease) else {
            return;
        };
        if !self.is_older(&read.gateway, &lease) {
            self.leases.insert(read.gateway, lease);
        }
    }

    /// Forgets the Lease of `gateway` (a re-read found it gone).
    pub fn forget_lease(&mut self, gateway: &str) {
        self.leases.remove(gateway);
    }

    fn is_older(&self, gateway: &str, lease: &Lease) -> bool {
        let stored = self.leases.get(gateway).and_then(resource_version_number);
        matches!((resource_version_number(lease), stored), (Some(new), Some(old)) if new < old)
    }

    /// The latest Lease of `gateway`.
    pub fn lease(&self, gateway: &str) -> Option<&Lease> {
        self.leases.get(gateway)
    }

    /// The VIP of `gateway`, if it is a known VIP gateway.
    pub fn vip(&self, gateway: &str) -> Option<&DesiredVip> {
        self.vips.get(gateway)
    }

    /// Gateways that have a Lease.
    pub fn lease_gateways(&self) -> impl Iterator<Item = String> + '_ {
        self.leases.keys().cloned()
    }

    /// Every VIP egressc may have put on this node: those of the known gateways and those named
    /// on the Leases (a deleted gateway's VIP is still cleaned up).
    pub fn known_vips(&self) -> BTreeSet<IpAddr> {
        let from_leases = self
            .leases
            .values()
            .filter_map(lease_object::read)
            .filter_map(|l| l.vip);
        self.vips
            .values()
            .map(|v| v.ip)
            .chain(from_leases)
            .collect()
    }
}

/// The protocol state of one gateway on this node.
#[derive(Debug, Default)]
pub struct GatewayState {
    /// What the agent holds, for [`crate::agent::lease::decide`].
    pub local: Local,
    /// A probe round found the VIP taken: the next bring-up attempt is due then.
    pub probe_retry_at: Option<crate::time::Instant>,
    keep: Option<Arc<VipKeep>>,
}

impl GatewayState {
    /// The state shared with the gateway's keeper task (`clock`: the loop's epoch, used when
    /// it is created).
    pub fn keep(&mut self, clock: std::time::Instant) -> Arc<VipKeep> {
        self.keep.get_or_insert_with(|| VipKeep::new(clock)).clone()
    }

    /// No longer held (step down, release, yield, shutdown): closes the keeper's state and
    /// forgets the successful send, so the address phase removes the VIP. Keeps `last_attempt`
    /// to pace a retried release and `yielded` (a yielded holder releases). Returns the closed
    /// state: the caller waits on its edit lock before removing the address, so that no
    /// refresh by the keeper can land after the removal.
    pub fn drop_vip(&mut self) -> Option<Arc<VipKeep>> {
        let keep = self.keep.take();
        if let Some(keep) = &keep {
            keep.close();
        }
        self.local = Local {
            last_attempt: self.local.last_attempt,
            yielded: self.local.yielded,
            ..Local::default()
        };
        keep
    }
}

#[cfg(test)]
mod tests;
