//! `egressc agent`, kernel side: holds a gateway's VIP on the active node.
//!
//! `plan` decides (pure), `netlink` adds, refreshes and removes addresses with kernel
//! lifetimes (the dead-man switch), `frames` builds the announcements and `announce` sends them.
//! The Lease side (which VIPs this node holds) feeds `plan` and lives elsewhere.

pub mod announce;
pub mod lease;
pub mod lease_object;
pub mod metrics;
pub mod frames;
pub mod health;
pub mod netlink;
pub mod plan;
