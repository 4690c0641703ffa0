//! The pure half of `egressc sync`: Kubernetes objects in, decisions and request bodies out.
//! The kube-rs shell (`egressc::sync`: watches, writer, leadership, metrics, the loop) feeds it
//! watch events and carries out what it returns.
//!
//! - `convert`: API objects → controller observations.
//! - `validation`, `objects`: gateways and policies validated by `pipeline::check`, cached per
//!   object, with their last good values.
//! - `sync_core`: [`sync_core::SyncCore`], every decision of `sync` behind one entry point
//!   (`handle` every report, `reconcile` to a plan of every write).
//! - `index`: watch events → the objects the decisions need, the election's observations,
//!   relist bookkeeping, sync state.
//! - `patches`: plan → request bodies; `statuses`: which status patches a reconcile needs;
//!   `cegp`: CEGPs rendered by `render`; `leader_fence`: how long a look at the leader Lease lets
//!   this replica write; `echoes`: label patches answered whose echo is not indexed yet.

pub mod cegp;
pub mod convert;
pub mod echoes;
pub mod index;
pub mod leader_fence;
pub mod objects;
pub mod patches;
pub mod statuses;
pub mod sync_core;
pub mod validation;
