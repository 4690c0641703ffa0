//! egressc's pure core: every decision egressc makes, and none of its I/O.
//!
//! Nothing in this crate reads a file, opens a socket, reads a clock, spawns a task or prints;
//! its `Cargo.toml` has no async runtime, no Kubernetes client and no netlink, so the rule is a
//! compile error rather than a convention (`tests/purity.rs` checks the dependency tree).
//! The shells of the `egressc` crate (`cli`, `sync`, `agent`) feed it data and time and carry
//! out what it returns. See ARCHITECTURE.md for the map.

#![deny(clippy::print_stdout, clippy::print_stderr, clippy::dbg_macro)]

pub mod agent;
pub mod controller;
pub mod crds;
pub mod diag;
pub mod elect;
pub mod lease_protocol;
pub mod load;
pub mod model;
pub mod pipeline;
pub mod render;
pub mod strict_cegp;
pub mod sync;
pub mod time;
pub mod validate;
