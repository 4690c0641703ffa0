//! egressc: hot-standby egress gateways for Cilium.
//!
//! The pure core (`model`, `load`, `validate`, `diag`, and the compiler modules added beside
//! them) does no I/O; the shells (`cli`, `sync`, `agent`) do. See ARCHITECTURE.md for the map.

pub mod agent;
pub mod cilium;
pub mod cli;
pub mod controller;
pub mod crds;
pub mod diag;
pub mod elect;
pub mod load;
pub mod model;
pub mod pipeline;
pub mod render;
pub mod sync;
pub mod validate;
