//! The real `egressc agent` binary running in a node namespace (`ip netns exec`), its log in a
//! file; signals by pid (`ip netns exec` execs the agent, so the child's pid is the agent's).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::netns::Netns;
use super::vipctl::NAMESPACE;

/// A running agent; SIGKILLed when dropped.
pub struct AgentProcess {
    child: Child,
    pub log: PathBuf,
}

impl AgentProcess {
    /// Starts `egressc agent --node <node>` in `ns` with default timings.
    pub fn start(ns: &Netns, node: &str, kubeconfig: &Path, dir: &Path) -> io::Result<Self> {
        let log = dir.join(format!("agent-{node}.log"));
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns.name,
                env!("CARGO_BIN_EXE_egressc"),
                "agent",
            ])
            .args(["--node", node, "--namespace", NAMESPACE])
            .args(["--health-addr", "127.0.0.1:9478"])
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log)?)
            .spawn()?;
        Ok(AgentProcess { child, log })
    }

    /// Sends `signal` (e.g. `libc::SIGKILL`).
    pub fn signal(&self, signal: i32) -> io::Result<()> {
        let pid = i32::try_from(self.child.id()).map_err(io::Error::other)?;
        // SAFETY: kill(2) on our own child's pid.
        if unsafe { libc::kill(pid, signal) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits up to `timeout` for the agent to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The agent's log so far (for failure messages).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.signal(libc::SIGCONT);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
