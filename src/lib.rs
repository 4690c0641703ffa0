//! egressc: hot-standby egress gateways for Cilium.
//!
//! The pure core (`model`, and the compiler modules added beside it) does no I/O; the shells
//! (`cli`, `sync`, `agent`) do. See ARCHITECTURE.md for the map.

pub mod cilium;
pub mod crds;
pub mod elect;
pub mod model;
pub mod render;
