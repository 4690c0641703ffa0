//! What the daemons (`sync`, `agent`) share: duration flags, logging to stderr, and the tokio
//! runtime.

use std::process::ExitCode;
use std::time::Duration;

/// Parses a duration flag: `500ms`, `2s`, `1.5s`, `2m`. A unit is required, so that `20`
/// cannot be misread as milliseconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .ok_or_else(|| format!("`{text}`: give a unit, e.g. 500ms, 20s or 2m"))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 500ms, 20s or 2m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("`{text}`: the unit must be ms, s or m")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("`{text}` is out of range"))
}

/// Flags `sync` and `agent` share: where the API server is, how to log.
#[derive(Debug, clap::Args)]
pub struct ShellArgs {
    /// Kubeconfig to use instead of the in-cluster or default configuration.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// Log format on stderr: text or json.
    #[arg(
        long,
        value_name = "FORMAT",
        value_enum,
        default_value_t,
        env = "EGRESSC_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
}

/// How `sync` and `agent` write their logs (`--log-format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (for log collectors).
    Json,
}

/// Logs to stderr, filtered by RUST_LOG (default `info`); text without colour escapes off a
/// terminal, or JSON lines.
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder.json().with_current_span(false).try_init(),
    };
}

/// A Kubernetes client from `kubeconfig`, or from the in-cluster or default configuration.
pub async fn client(kubeconfig: Option<&std::path::Path>) -> Result<kube::Client, String> {
    let config = kube_config(kubeconfig).await?;
    kube::Client::try_from(config).map_err(|e| format!("cannot build the API client: {e}"))
}

/// The client configuration from `kubeconfig`, or the in-cluster or default one.
pub async fn kube_config(kubeconfig: Option<&std::path::Path>) -> Result<kube::Config, String> {
    Ok(match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &Default::default())
                .await
                .map_err(|e| format!("kubeconfig {}: {e}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| format!("no Kubernetes configuration: {e}"))?,
    })
}

/// A multi-threaded runtime with 8 MiB worker stacks, or the exit status explaining why not.
///
/// Validation parses gateways and policies on worker threads; the parser's recursion is
/// bounded by the nesting budget (64), but a debug build needs ~35 KB of stack per level, more
/// than tokio's 2 MiB default. 8 MiB matches a main thread.
pub fn runtime(worker_threads: Option<usize>) -> Result<tokio::runtime::Runtime, ExitCode> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = worker_threads {
        builder.worker_threads(threads);
    }
    builder
        .enable_all()
        .thread_stack_size(8 * 1024 * 1024)
        .build()
        .map_err(|error| super::trouble(&format!("cannot start the runtime: {error}")))
}

/// Completes on the first SIGTERM or SIGINT (handlers are installed at once, so they also
/// work as PID 1 in a container, which has no default handlers).
pub fn shutdown_signal() -> Result<impl Future<Output = ()>, String> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(|e| format!("SIGTERM: {e}"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| format!("SIGINT: {e}"))?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_a_unit_and_accept_fractions() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.1s"), Ok(Duration::from_millis(1100)));
        assert_eq!(parse_duration("20s"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        for bad in ["2", "xs", "-1s", "3h", "x", ""] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
