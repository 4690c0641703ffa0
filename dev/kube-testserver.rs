//! Runs kube-testserver as a process: listens on an ephemeral 127.0.0.1 port, writes a
//! kubeconfig for itself to `--kubeconfig FILE`, prints `ready` and serves until killed.
//! Faults are injected with `POST /__testserver/{outage?seconds=N,restore,drop-watches,latency?ms=N,compact}`.

use std::io::Write;
use std::path::PathBuf;

use clap::Parser;
use kube_testserver::{Options, TestServer};

#[derive(Parser)]
#[command(about = "In-memory Kubernetes API server for egressc's tests")]
struct Args {
    /// Where to write the kubeconfig that points at the server.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Change events kept for resuming watches; older resourceVersions get 410 Gone.
    #[arg(long, default_value_t = kube_testserver::DEFAULT_HISTORY_LIMIT)]
    history_limit: usize,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let server = match TestServer::start_with(Options {
        history_limit: args.history_limit,
        ..Options::default()
    })
    .await
    {
        Ok(server) => server,
        Err(error) => {
            eprintln!("kube-testserver: cannot listen on 127.0.0.1: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if let Err(error) = server.write_kubeconfig(&args.kubeconfig) {
        eprintln!(
            "kube-testserver: cannot write {}: {error}",
            args.kubeconfig.display()
        );
        return std::process::ExitCode::FAILURE;
    }
    let mut stdout = std::io::stdout();
    if writeln!(stdout, "ready")
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return std::process::ExitCode::FAILURE;
    }
    // Serve until killed (SIGTERM/SIGKILL) or interrupted.
    let _ = tokio::signal::ctrl_c().await;
    drop(server);
    std::process::ExitCode::SUCCESS
}
