//! `egressc sync`: flags → [`SyncConfig`], a tokio runtime, logging to stderr, and the exit
//! status of the controller.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::daemon::parse_duration;
use super::flags;

use crate::controller::Timing;
use crate::model::cilium::CiliumVersion;
use crate::sync::SyncConfig;
use crate::sync::probe::ProbeConfig;

/// Flags of `egressc sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The controller's namespace (VIP Leases, leader Lease, VIP agent Pods).
    #[arg(long, env = "POD_NAMESPACE", default_value = "egressc-system",
          value_parser = flags::namespace)]
    namespace: String,
    /// Address of /metrics, /healthz and /readyz (`IP:PORT`; an IPv6 address may go without
    /// brackets, as `$(POD_IP):9477` expands in a manifest).
    #[arg(long, default_value = "0.0.0.0:9477", value_parser = parse_listen_addr)]
    metrics_addr: SocketAddr,
    /// Namespace of the cilium-agent Pods.
    #[arg(long, default_value = "kube-system", value_parser = flags::namespace)]
    cilium_namespace: String,
    /// Label selector of the cilium-agent Pods.
    #[arg(long, default_value = "k8s-app=cilium", value_parser = flags::label_selector)]
    cilium_selector: String,
    /// Label selector of the VIP agent Pods (as `egressc build` renders them).
    #[arg(
        long,
        default_value = "app.kubernetes.io/name=egressc,app.kubernetes.io/component=vip-agent",
        value_parser = flags::label_selector
    )]
    vip_agent_selector: String,
    /// A node whose heartbeat Lease is not seen renewed for this long is unhealthy.
    #[arg(long, default_value = "20s", value_parser = flags::positive_duration)]
    node_lease_grace: Duration,
    /// A recovered node gets no new gateways until it has been healthy this long.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    settle: Duration,
    /// Compete for the leader Lease `egressc-sync` (false: single replica, always writes).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    leader_elect: bool,
    /// Duration of the leader Lease; a dead leader is replaced after at most this long (a
    /// failover that a dead leader left unfinished waits this long too). At least 2 s.
    #[arg(long, default_value = "5s", value_parser = flags::positive_duration)]
    leader_lease_duration: Duration,
    /// This replica's identity (default: env POD_NAME, else host name and process id).
    #[arg(long, env = "POD_NAME", value_parser = flags::identity)]
    identity: Option<String>,
    /// Cilium release to compile CiliumEgressGatewayPolicies for.
    #[arg(long, value_name = "X.Y", default_value_t = CiliumVersion::OLDEST)]
    cilium_version: CiliumVersion,
    /// Port of Cilium's health endpoint probed on every gateway node's InternalIP (0: no
    /// direct probing; failures are then seen through the heartbeat Lease only).
    #[arg(long, default_value_t = 4240)]
    node_probe_port: u16,
    /// Path probed on that port.
    #[arg(long, default_value = "/hello", value_parser = flags::url_path)]
    node_probe_path: String,
    /// Time between the starts of two probes of one node.
    #[arg(long, default_value = "200ms", value_parser = flags::positive_duration)]
    node_probe_interval: Duration,
    /// A probe not answered within this fails.
    #[arg(long, default_value = "200ms", value_parser = flags::positive_duration)]
    node_probe_timeout: Duration,
    /// Consecutive failed probes that make a node unhealthy (it regains new gateways after
    /// --settle).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    node_probe_failures: u32,
    /// Port of the VIP agent's health server, whose /readyz is probed on nodes of VIP gateways
    /// (0: not probed).
    #[arg(long, default_value_t = 9478)]
    agent_probe_port: u16,
    /// A reaction (watch event seen → label patches answered) slower than this is logged
    /// with its phases; every reaction goes into egressc_reaction_seconds.
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    slow_reaction: Duration,
    #[command(flatten)]
    shell: super::daemon::ShellArgs,
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
                probe_failures: self.node_probe_failures,
                ..Timing::default()
            },
            leader_elect: self.leader_elect,
            leader_lease_duration: self.leader_lease_duration,
            identity,
            cilium_version: self.cilium_version,
            probe: ProbeConfig {
                node_port: self.node_probe_port,
                node_path: self.node_probe_path.clone(),
                agent_port: self.agent_probe_port,
                interval: self.node_probe_interval,
                timeout: self.node_probe_timeout,
            },
            slow_reaction: self.slow_reaction,
        }
    }
}

/// `IP:PORT`, also with an unbracketed IPv6 address (the port is after the last colon).
fn parse_listen_addr(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let (ip, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("`{text}` is not IP:PORT"))?;
    let ip: std::net::IpAddr = ip
        .parse()
        .map_err(|_| format!("`{ip}` is not an IP address"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("`{port}` is not a port"))?;
    Ok(SocketAddr::new(ip, port))
}

/// Runs `egressc sync`; returns on a fatal error, or with success after SIGTERM/SIGINT.
pub fn run(args: SyncArgs) -> ExitCode {
    super::daemon::init_logging(args.shell.log_format);
    let runtime = match super::daemon::runtime(None) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let run = async {
        let kube_config = super::daemon::kube_config(args.shell.kubeconfig.as_deref()).await?;
        let shutdown = super::daemon::shutdown_signal()?;
        crate::sync::run(args.config(), kube_config, shutdown)
            .await
            .map_err(|error| error.to_string())
    };
    match runtime.block_on(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => super::trouble(&message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_take_unbracketed_ipv6_as_pod_ip_expands() {
        assert_eq!(
            parse_listen_addr("2001:db8::7:9477"),
            Ok("[2001:db8::7]:9477".parse().unwrap())
        );
        assert_eq!(
            parse_listen_addr("192.0.2.7:9477"),
            Ok("192.0.2.7:9477".parse().unwrap())
        );
        assert!(parse_listen_addr("$(POD_IP):9477").is_err());
    }
}
