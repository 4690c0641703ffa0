//! `egressc agent`: holds a gateway's VIP on the node the controller granted it to, following
//! docs/lease-protocol.md.
//!
//! Pure: `lease` (the agent rules: what to do next), `lease_object` (reading and writing the
//! Lease object), `state` (watch bookkeeping), `gateways` (which gateways have a VIP), `plan`
//! (address operations), `frames` (announcement and probe frames), `conflict` (what a frame
//! about the VIP means, probe verdicts, a holder's reaction), `addresses::gate` and
//! `health::verdict`. Shells: `run` (the tokio loop: watches, Lease writes), `addresses`
//! (netlink, probe before bring-up), `keeper` (per held VIP: adverts, listening, outage hold),
//! `lan` (ARP/NDP receive socket, probe rounds), `netlink`, `announce`, `health` (HTTP
//! endpoints) and `metrics`.

pub mod addresses;
pub mod announce;
pub mod conflict;
pub mod frames;
pub mod gateways;
pub mod health;
pub mod keeper;
pub mod lan;
pub mod lease;
pub mod lease_object;
pub mod metrics;
pub mod netlink;
pub mod plan;
pub mod run;
pub mod state;
