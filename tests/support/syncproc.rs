//! The real `egressc sync` binary running in a namespace (`ip netns exec`, which execs it, so
//! the child's pid is the controller's), single replica, with the short timings of the
//! end-to-end tests; its log in a file.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::netns::Netns;
use super::vipctl::NAMESPACE;

/// Heartbeat grace given to the controller (production default 20 s).
pub const NODE_LEASE_GRACE: &str = "3s";

/// A running controller; SIGKILLed when dropped.
pub struct SyncProcess {
    child: Child,
    pub log: PathBuf,
}

impl SyncProcess {
    /// Starts `egressc sync` in `ns` against the API server of `kubeconfig`, compiling for
    /// Cilium `cilium_version` (e.g. `1.19`).
    pub fn start(
        ns: &Netns,
        kubeconfig: &Path,
        dir: &Path,
        cilium_version: &str,
    ) -> io::Result<Self> {
        let log = dir.join("sync.log");
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns.name,
                env!("CARGO_BIN_EXE_egressc"),
                "sync",
            ])
            .args(["--namespace", NAMESPACE, "--metrics-addr", "127.0.0.1:0"])
            .args(["--node-lease-grace", NODE_LEASE_GRACE, "--settle", "1s"])
            .args([
                "--leader-elect",
                "false",
                "--cilium-version",
                cilium_version,
            ])
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log)?)
            .spawn()?;
        Ok(SyncProcess { child, log })
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
