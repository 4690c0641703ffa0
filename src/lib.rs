//! egressc: hot-standby egress gateways for Cilium.
//!
//! This crate holds the shells: `cli` (files, flags, exit codes), `sync` (the kube-rs
//! controller) and `agent` (the VIP holder: tokio, netlink, raw sockets). Every decision lives
//! in the pure core crate `egressc_core`, re-exported here so that `egressc::model`,
//! `egressc::controller` and the rest keep their paths. See ARCHITECTURE.md for the map.

pub use egressc_core::{
    controller, crds, diag, elect, lease_protocol, load, model, pipeline, render, strict_cegp,
    time, validate,
};

pub mod agent;
pub mod cli;
pub mod sync;
