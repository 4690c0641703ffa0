//! `egressc agent`: holds a gateway's VIP on the node the controller granted it to, following
//! docs/lease-protocol.md.
//!
//! Pure, in `egressc_core::agent` (re-exported here): `lease` (the agent rules: what to do
//! next), `lease_object` (reading and writing the Lease object), `gateways` (which gateways
//! have a VIP), `plan` (address operations), `frames` (announcement and probe frames),
//! `conflict` (what a frame about the VIP means, probe verdicts, a holder's reaction). Pure
//! helpers kept beside their shell: `state` (watch bookkeeping over kube-runtime events),
//! `addresses::gate` and `health::verdict`. Shells: `run` (the tokio loop: watches, Lease
//! writes), `addresses` (netlink, probe before bring-up), `keeper` (per held VIP: adverts,
//! listening, outage hold), `lan` (ARP/NDP receive socket, probe rounds), `netlink`,
//! `announce`, `health` (HTTP endpoints) and `metrics`.

pub use egressc_core::agent::{conflict, frames, gateways, lease, lease_object, plan};

pub mod addresses;
pub mod announce;
pub mod health;
pub mod keeper;
pub mod lan;
pub mod metrics;
pub mod netlink;
pub mod run;
pub mod state;
