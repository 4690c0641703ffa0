//! The settings of one `egressc sync` process, as the CLI parsed them.

use std::net::SocketAddr;
use std::time::Duration;

use crate::controller::Timing;
use crate::model::cilium::CiliumVersion;

/// Everything `egressc sync` needs besides the cluster connection.
#[derive(Clone, Debug)]
pub struct SyncConfig {
    /// The controller's namespace: VIP Leases, the leader Lease, VIP agent Pods.
    pub namespace: String,
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    pub metrics_addr: SocketAddr,
    /// Namespace of the cilium-agent Pods.
    pub cilium_namespace: String,
    /// Label selector of the cilium-agent Pods.
    pub cilium_selector: String,
    /// Label selector of the VIP agent Pods (in [`SyncConfig::namespace`]).
    pub vip_agent_selector: String,
    /// Grace, settle and VIP Lease durations for the core.
    pub timing: Timing,
    /// Compete for the leader Lease; false: always write (single replica).
    pub leader_elect: bool,
    /// Leader Lease duration.
    pub leader_lease_duration: Duration,
    /// This replica's identity in the leader Lease and in Events.
    pub identity: String,
    /// The Cilium release compiled for.
    pub cilium_version: CiliumVersion,
    /// Direct node probing.
    pub probe: super::probe::ProbeConfig,
    /// Reactions slower than this are logged with their phases.
    pub slow_reaction: Duration,
}
