//! `egressc agent`: flags, logging, the tokio runtime, signals, and the health server around
//! [`crate::agent::run::run`]. Exits 0 after a graceful shutdown (SIGTERM or SIGINT: VIPs
//! removed, Leases released), 2 when it cannot start.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::daemon::parse_duration;
use super::flags;

use crate::agent::announce::BurstSchedule;
use crate::agent::conflict::ProbeSchedule;
use crate::agent::health::{self, Health};
use crate::agent::lease::AgentTiming;
use crate::agent::metrics::Metrics;
use crate::agent::run::{AgentConfig, run};

/// Flags of `egressc agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// This node's name: the Lease holder identity.
    #[arg(long, env = "NODE_NAME", value_name = "NAME", value_parser = flags::node_name)]
    node: String,
    /// Namespace of the VIP Leases (where egressc is deployed).
    #[arg(long, env = "POD_NAMESPACE", default_value = "egressc-system",
          value_parser = flags::namespace)]
    namespace: String,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "EGRESSC_HEALTH_ADDR", default_value = "0.0.0.0:9478")]
    health_addr: SocketAddr,
    /// Listen on this IP instead of the one in --health-addr (its port is kept). The
    /// DaemonSet sets it to the node's IP (downward API `status.hostIP`), so the endpoints are
    /// not open on every address of the node's host network.
    #[arg(long, env = "EGRESSC_HEALTH_IP", value_name = "IP")]
    health_ip: Option<std::net::IpAddr>,
    /// How often the holder renews its Lease (e.g. 500ms, 1s).
    #[arg(long, default_value = "500ms", value_parser = flags::positive_duration)]
    renew_interval: Duration,
    /// How long a VIP outlives the send of the last successful renewal (whole seconds count).
    #[arg(long, default_value = "2s", value_parser = address_lifetime)]
    address_lifetime: Duration,
    /// Time between announcement rounds after a VIP is added; 0 sends one round.
    #[arg(long, default_value = "1100ms", value_parser = parse_duration)]
    announce_interval: Duration,
    /// How long announcement rounds continue after a VIP is added.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    announce_duration: Duration,
    /// Announcement period after the burst, for as long as the VIP is held (a node that was
    /// cut from the LAN hears the holder this soon after the cut heals); 0 turns it off.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    advert_interval: Duration,
    #[command(flatten)]
    shell: super::daemon::ShellArgs,
}

/// Runs the agent until SIGTERM/SIGINT.
pub fn agent(args: AgentArgs) -> ExitCode {
    super::daemon::init_logging(args.shell.log_format);
    let runtime = match super::daemon::runtime(Some(2)) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => super::trouble(&message),
    }
}

async fn serve(args: AgentArgs) -> Result<(), String> {
    let client = super::daemon::client(args.shell.kubeconfig.as_deref()).await?;
    let health_addr = health_address(args.health_addr, args.health_ip);
    let listener = health::bind(health_addr)
        .await
        .map_err(|e| format!("cannot listen on {health_addr}: {e}"))?;
    let health = Arc::new(Health::default());
    let metrics = Metrics::default();
    tokio::spawn(health::serve(listener, health.clone(), metrics.clone()));
    let config = AgentConfig {
        node: args.node,
        namespace: args.namespace,
        timing: AgentTiming {
            renew_interval: args.renew_interval,
            address_lifetime: args.address_lifetime,
        },
        burst: BurstSchedule {
            interval: args.announce_interval,
            duration: args.announce_duration,
        },
        advert_interval: args.advert_interval,
        probe: ProbeSchedule::default(),
        write_timeout: (args.renew_interval * 2).max(Duration::from_millis(500)),
    };
    tracing::info!(node = %config.node, namespace = %config.namespace, "egressc agent starting");
    run(
        client,
        config,
        health,
        metrics,
        super::daemon::shutdown_signal()?,
    )
    .await
    .map_err(|e| e.to_string())?;
    tracing::info!("egressc agent stopped: VIPs removed, Leases released");
    Ok(())
}

/// `--address-lifetime`: at least a second, as the kernel counts address lifetimes in seconds.
fn address_lifetime(value: &str) -> Result<Duration, String> {
    let lifetime = parse_duration(value)?;
    if lifetime < Duration::from_secs(1) {
        return Err(format!(
            "`{value}` is shorter than 1s (the kernel counts seconds)"
        ));
    }
    Ok(lifetime)
}

/// `--health-addr`, with its IP replaced by `--health-ip` when that is given.
fn health_address(addr: SocketAddr, ip: Option<std::net::IpAddr>) -> SocketAddr {
    ip.map_or(addr, |ip| SocketAddr::new(ip, addr.port()))
}
