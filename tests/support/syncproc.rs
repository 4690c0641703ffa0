//! The real `egressc sync` binary running in a namespace (`ip netns exec`, which execs it, so
//! the child's pid is the controller's), with the short timings of the end-to-end tests; its log
//! in a file. Either a single replica (no leader election) or one of several replicas competing
//! for the leader Lease.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::netns::Netns;
use super::vipctl::NAMESPACE;

/// Heartbeat grace given to the controller (production default 20 s).
pub const NODE_LEASE_GRACE: &str = "3s";
/// Leader Lease duration of replicas (production default 15 s).
pub const LEADER_LEASE: &str = "3s";

/// A running controller; SIGKILLed when dropped.
pub struct SyncProcess {
    child: Child,
    pub log: PathBuf,
}

impl SyncProcess {
    /// Starts `egressc sync` in `ns` against the API server of `kubeconfig`, compiling for
    /// Cilium `cilium_version` (e.g. `1.19`): a single replica, always writing.
    pub fn start(
        ns: &Netns,
        kubeconfig: &Path,
        dir: &Path,
        cilium_version: &str,
    ) -> io::Result<Self> {
        Self::spawn(ns, kubeconfig, dir, cilium_version, None)
    }

    /// Starts one replica named `identity` that competes for the leader Lease
    /// ([`LEADER_LEASE`]) and writes only while it holds it.
    pub fn start_replica(
        ns: &Netns,
        kubeconfig: &Path,
        dir: &Path,
        cilium_version: &str,
        identity: &str,
    ) -> io::Result<Self> {
        Self::spawn(ns, kubeconfig, dir, cilium_version, Some(identity))
    }

    fn spawn(
        ns: &Netns,
        kubeconfig: &Path,
        dir: &Path,
        cilium_version: &str,
        identity: Option<&str>,
    ) -> io::Result<Self> {
        let mut command = Command::new("ip");
        command
            .args([
                "netns",
                "exec",
                &ns.name,
                env!("CARGO_BIN_EXE_egressc"),
                "sync",
            ])
            .args(["--namespace", NAMESPACE, "--metrics-addr", "127.0.0.1:0"])
            .args(["--node-lease-grace", NODE_LEASE_GRACE, "--settle", "1s"])
            .args(["--cilium-version", cilium_version]);
        let log = match identity {
            None => {
                command.args(["--leader-elect", "false"]);
                dir.join("sync.log")
            }
            Some(identity) => {
                command
                    .args(["--leader-elect", "true", "--identity", identity])
                    .args(["--leader-lease-duration", LEADER_LEASE]);
                dir.join(format!("sync-{identity}.log"))
            }
        };
        // Appending keeps the log of an earlier process with the same name (a restart).
        let stderr = File::options().create(true).append(true).open(&log)?;
        let child = command
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()?;
        Ok(SyncProcess { child, log })
    }

    /// SIGKILLs the controller and reaps it: no shutdown path runs.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The controller's log so far (for failure messages).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for SyncProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
