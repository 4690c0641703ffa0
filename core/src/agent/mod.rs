//! The pure half of `egressc agent`: the agent's rules of the Lease protocol
//! (docs/lease-protocol.md) and the data it sends. The tokio, netlink and raw-socket shell that
//! carries them out lives in the `egressc` crate (`egressc::agent`).
//!
//! `lease` (the agent rules: what to do next), `lease_object` (reading and writing the Lease
//! object as data), `gateways` (which gateways have a VIP), `plan` (address operations),
//! `frames` (announcement and probe frames), `conflict` (what a frame about the VIP means,
//! probe verdicts, a holder's reaction).

pub mod conflict;
pub mod frames;
pub mod gateways;
pub mod lease;
pub mod lease_object;
pub mod plan;
