//! `egressc sync`: flags → [`SyncConfig`], a tokio runtime, logging to stderr, and the exit
//! status of the controller.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::shell::parse_duration;

use crate::controller::Timing;
use crate::model::cilium::CiliumVersion;
use crate::sync::SyncConfig;

/// Flags of `egressc sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The controller's namespace (VIP Leases, leader Lease, VIP agent Pods).
    #[arg(long, env = "POD_NAMESPACE", default_value = "egressc-system")]
    namespace: String,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:9477")]
    metrics_addr: SocketAddr,
    /// Namespace of the cilium-agent Pods.
    #[arg(long, default_value = "kube-system")]
    cilium_namespace: String,
    /// Label selector of the cilium-agent Pods.
    #[arg(long, default_value = "k8s-app=cilium")]
    cilium_selector: String,
    /// Label selector of the VIP agent Pods (as `egressc build` renders them).
    #[arg(
        long,
        default_value = "app.kubernetes.io/name=egressc,app.kubernetes.io/component=vip-agent"
    )]
    vip_agent_selector: String,
    /// A node whose heartbeat Lease is not seen renewed for this long is unhealthy.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    node_lease_grace: Duration,
    /// A recovered node gets no new gateways until it has been healthy this long.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    settle: Duration,
    /// Compete for the leader Lease `egressc-sync` (false: single replica, always writes).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    leader_elect: bool,
    /// Duration of the leader Lease; a dead leader is replaced after at most this long.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    leader_lease_duration: Duration,
    /// This replica's identity (default: env POD_NAME, else host name and process id).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Cilium release to compile CiliumEgressGatewayPolicies for.
    #[arg(long, value_name = "X.Y", default_value_t = CiliumVersion::OLDEST)]
    cilium_version: CiliumVersion,
    #[command(flatten)]
    shell: super::shell::ShellArgs,
}

impl SyncArgs {
    fn config(&self) -> SyncConfig {
        let identity = self.identity.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_else(|_| "egressc".to_owned());
            format!("{host}-{}", std::process::id())
        });
        SyncConfig {
            namespace: self.namespace.clone(),
            metrics_addr: self.metrics_addr,
            cilium_namespace: self.cilium_namespace.clone(),
            cilium_selector: self.cilium_selector.clone(),
            vip_agent_selector: self.vip_agent_selector.clone(),
            timing: Timing {
                node_lease_grace: self.node_lease_grace,
                settle: self.settle,
                ..Timing::default()
            },
            leader_elect: self.leader_elect,
            leader_lease_duration: self.leader_lease_duration,
            identity,
            cilium_version: self.cilium_version,
        }
    }
}

/// Runs `egressc sync`; returns only on a fatal error.
pub fn run(args: SyncArgs) -> ExitCode {
    super::shell::init_logging(args.shell.log_format);
    let runtime = match super::shell::runtime(None) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let run = async {
        let client = super::shell::client(args.shell.kubeconfig.as_deref()).await?;
        crate::sync::run_with_client(args.config(), client)
            .await
            .map_err(|error| error.to_string())
    };
    match runtime.block_on(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => super::trouble(&message),
    }
}
