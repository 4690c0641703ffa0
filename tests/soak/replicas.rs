//! The two `egressc sync` replicas under soak (the real binary, leader election on, the short
//! timings of the end-to-end tests), SIGKILL and restart, and their resident memory: VmRSS from
//! /proc/PID/status, sampled for every incarnation of every replica.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::world::NAMESPACE;

/// Heartbeat grace, settle time and leader Lease duration given to the replicas.
pub const NODE_LEASE_GRACE: Duration = Duration::from_secs(3);
pub const SETTLE: Duration = Duration::from_secs(1);
pub const LEADER_LEASE: Duration = Duration::from_secs(3);
/// How often resident memory is sampled.
const RSS_PERIOD: Duration = Duration::from_millis(100);

/// One process's life and memory.
#[derive(Clone, Debug)]
pub struct Incarnation {
    pub identity: String,
    pub pid: u32,
    pub started: Instant,
    pub ended: Option<Instant>,
    /// (time since start, VmRSS in KiB)
    pub rss: Vec<(Duration, u64)>,
}

impl Incarnation {
    pub fn lived(&self) -> Duration {
        self.ended.unwrap_or_else(Instant::now) - self.started
    }

    /// The highest RSS up to `warm_up` after start, and the highest after it; `None` for a
    /// process that did not outlive its warm-up.
    pub fn growth(&self, warm_up: Duration) -> Option<(u64, u64)> {
        let warm = self
            .rss
            .iter()
            .filter(|(at, _)| *at <= warm_up)
            .map(|(_, kib)| *kib)
            .max()?;
        let later = self
            .rss
            .iter()
            .filter(|(at, _)| *at > warm_up)
            .map(|(_, kib)| *kib)
            .max()?;
        Some((warm, later))
    }
}

struct Replica {
    identity: String,
    child: Option<Child>,
}

/// Both replicas; SIGKILLed when dropped.
pub struct Replicas {
    kubeconfig: PathBuf,
    dir: PathBuf,
    replicas: Vec<Replica>,
    incarnations: Arc<Mutex<Vec<Incarnation>>>,
}

fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

impl Replicas {
    /// Starts replicas `identities` against `kubeconfig`, logs in `dir`, and the RSS sampler.
    pub fn start(kubeconfig: &Path, dir: &Path, identities: &[&str]) -> Replicas {
        let mut replicas = Replicas {
            kubeconfig: kubeconfig.to_owned(),
            dir: dir.to_owned(),
            replicas: identities
                .iter()
                .map(|identity| Replica {
                    identity: (*identity).to_owned(),
                    child: None,
                })
                .collect(),
            incarnations: Arc::new(Mutex::new(Vec::new())),
        };
        for identity in identities {
            replicas.spawn(identity);
        }
        let incarnations = Arc::clone(&replicas.incarnations);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(RSS_PERIOD).await;
                let mut all = incarnations.lock().unwrap_or_else(|e| e.into_inner());
                for inc in all.iter_mut().filter(|i| i.ended.is_none()) {
                    if let Some(kib) = vm_rss_kib(inc.pid) {
                        let at = inc.started.elapsed();
                        inc.rss.push((at, kib));
                    }
                }
            }
        });
        replicas
    }

    pub fn log_path(&self, identity: &str) -> PathBuf {
        self.dir.join(format!("{identity}.log"))
    }

    fn spawn(&mut self, identity: &str) {
        let log = self.log_path(identity);
        // Appending keeps the log of the killed incarnation.
        let stderr = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let secs = |d: Duration| format!("{}s", d.as_secs());
        let child = Command::new(env!("CARGO_BIN_EXE_egressc"))
            .args(["sync", "--namespace", NAMESPACE])
            .args(["--metrics-addr", "127.0.0.1:0"])
            .args(["--node-lease-grace", &secs(NODE_LEASE_GRACE)])
            .args(["--settle", &secs(SETTLE)])
            .args(["--leader-elect", "true", "--identity", identity])
            .args(["--leader-lease-duration", &secs(LEADER_LEASE)])
            .args(["--cilium-version", "1.19"])
            .env("KUBECONFIG", &self.kubeconfig)
            .env(
                "RUST_LOG",
                std::env::var("SOAK_RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("egressc sync starts");
        self.incarnations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Incarnation {
                identity: identity.to_owned(),
                pid: child.id(),
                started: Instant::now(),
                ended: None,
                rss: Vec::new(),
            });
        match self.replicas.iter_mut().find(|r| r.identity == identity) {
            Some(replica) => replica.child = Some(child),
            None => {
                let mut child = child;
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    /// Is `identity` running?
    pub fn running(&self, identity: &str) -> bool {
        self.replicas
            .iter()
            .any(|r| r.identity == identity && r.child.is_some())
    }

    /// SIGKILLs `identity` (no shutdown path runs); false when it was not running.
    pub fn kill(&mut self, identity: &str) -> bool {
        let Some(replica) = self.replicas.iter_mut().find(|r| r.identity == identity) else {
            return false;
        };
        let Some(mut child) = replica.child.take() else {
            return false;
        };
        let pid = child.id();
        let _ = child.kill();
        // Whether it had exited by itself (it never should) is in its log and exit status.
        let status = child.wait().ok();
        if let Some(status) = status.filter(|s| s.code().is_some()) {
            eprintln!("soak: {identity} had exited by itself: {status}");
        }
        let mut all = self.incarnations.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(inc) = all.iter_mut().find(|i| i.pid == pid && i.ended.is_none()) {
            inc.ended = Some(Instant::now());
        }
        true
    }

    /// Starts `identity` again if it is not running.
    pub fn restart(&mut self, identity: &str) {
        if !self.running(identity) {
            self.spawn(identity);
        }
    }

    /// Starts every replica that is not running.
    pub fn restart_all(&mut self) {
        let ids: Vec<String> = self.replicas.iter().map(|r| r.identity.clone()).collect();
        for identity in ids {
            self.restart(&identity);
        }
    }

    /// Replicas that exited without being killed (a crash): (identity, exit status).
    pub fn crashed(&mut self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for replica in &mut self.replicas {
            if let Some(child) = replica.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                out.push((replica.identity.clone(), status.to_string()));
                // Reaped: restarted when faults stop.
                replica.child = None;
            }
        }
        out
    }

    pub fn incarnations(&self) -> Vec<Incarnation> {
        self.incarnations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The last `lines` lines of every replica's log (for failure messages).
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for replica in &self.replicas {
            let text =
                std::fs::read_to_string(self.log_path(&replica.identity)).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            let from = all.len().saturating_sub(lines);
            out.push_str(&format!(
                "--- {} (last {lines} lines) ---\n",
                replica.identity
            ));
            for line in &all[from..] {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }
}

impl Drop for Replicas {
    fn drop(&mut self) {
        for replica in &mut self.replicas {
            if let Some(mut child) = replica.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
