//! Running the real binary with a hang bound and its peak memory: the binary's own `VmHWM`
//! (debug builds write it when `EGRESSC_TEST_PEAK_RSS_FILE` names a file), else the maximum
//! resident set size `wait4` reports. Shared by `tests/cli_robust.rs` and `tests/corpus.rs`
//! (as `support::measured`). Memory assertions are generous bounds, never measurements.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

/// Generous upper bound on one run; only a hang (or a pathological slowdown) reaches it.
pub const HANG_BOUND: Duration = Duration::from_secs(90);

/// Reads a child's pipe to its end on a thread, so a large report cannot block the child.
pub fn drain(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf);
        }
        buf
    })
}

/// What one run produced.
pub struct Run {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
    /// Peak resident set size of the child, KiB.
    pub max_rss_kib: i64,
}

impl Run {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

/// Runs egressc with `args` in `dir`; `stdout` defaults to a pipe.
// The child is reaped with `wait4` (for its rusage), not `Child::wait`.
#[allow(clippy::zombie_processes)]
pub fn run_with(dir: &Path, args: &[&str], stdin: Stdio, stdout: Option<Stdio>) -> Run {
    // The child's own peak, written by the binary (debug builds): `ru_maxrss` from `wait4`
    // also holds this test process's peak RSS, which Linux carries over through the spawn.
    let peak_file = tempfile::NamedTempFile::new().expect("peak RSS file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_egressc"))
        .env("EGRESSC_TEST_PEAK_RSS_FILE", peak_file.path())
        .args(args)
        .current_dir(dir)
        .stdin(stdin)
        .stdout(stdout.unwrap_or(Stdio::piped()))
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let pid = i32::try_from(child.id()).expect("pid");
    let out_reader = drain(child.stdout.take());
    let err_reader = drain(child.stderr.take());
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let done = done.clone();
        thread::spawn(move || {
            let step = Duration::from_millis(20);
            let mut waited = Duration::ZERO;
            while !done.load(Ordering::SeqCst) {
                if waited > HANG_BOUND {
                    // SAFETY: signals the child this test spawned and has not reaped yet.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    return true;
                }
                thread::sleep(step);
                waited += step;
            }
            false
        })
    };
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value to be overwritten by wait4.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child; both out-pointers are valid.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    done.store(true, Ordering::SeqCst);
    assert_eq!(reaped, pid, "wait4");
    let killed = watchdog.join().expect("watchdog");
    assert!(
        !killed,
        "egressc {args:?} did not finish within {HANG_BOUND:?}"
    );
    Run {
        status: ExitStatus::from_raw(status),
        stdout: out_reader.join().expect("stdout"),
        stderr: String::from_utf8_lossy(&err_reader.join().expect("stderr")).into_owned(),
        max_rss_kib: std::fs::read_to_string(peak_file.path())
            .ok()
            .and_then(|kib| kib.trim().parse().ok())
            .unwrap_or(usage.ru_maxrss),
    }
}
