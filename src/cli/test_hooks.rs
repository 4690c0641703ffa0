//! Hidden hooks for black-box tests, honoured only in debug builds (a release binary ignores
//! them): smaller input budgets, so that budgets too large to reach quickly in a debug build
//! (20 million nodes) are still exercised through the real CLI; and a deliberate panic, to
//! prove that an internal error becomes exit status 2 with a bug-report message; and the
//! peak resident set of the run, which `wait4` cannot give a test (Linux carries the
//! spawning test process's own peak over into the child's `ru_maxrss`).

use crate::load::Limits;

/// `max_nodes=1000,max_depth=8`: budget overrides (field names of [`Limits`]).
const LIMITS_VAR: &str = "EGRESSC_TEST_LIMITS";
/// Any value: panic after argument parsing.
const PANIC_VAR: &str = "EGRESSC_TEST_PANIC";

/// A file to write this run's peak resident set size to (KiB, `VmHWM`), on a normal exit.
const PEAK_RSS_VAR: &str = "EGRESSC_TEST_PEAK_RSS_FILE";

/// Writes the peak resident set size when asked to (debug builds only).
pub fn record_peak_rss() {
    if !cfg!(debug_assertions) {
        return;
    }
    let Some(path) = std::env::var_os(PEAK_RSS_VAR) else {
        return;
    };
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if let Some(kib) = status.lines().find_map(|l| l.strip_prefix("VmHWM:")) {
        let _ = std::fs::write(path, kib.trim().trim_end_matches("kB").trim());
    }
}

/// The budgets of this run: the defaults, or in debug builds the overrides of `LIMITS_VAR`.
pub fn limits() -> Result<Limits, String> {
    let defaults = Limits::default();
    if !cfg!(debug_assertions) {
        return Ok(defaults);
    }
    match std::env::var(LIMITS_VAR) {
        Ok(spec) => defaults
            .with_overrides(&spec)
            .map_err(|e| format!("{LIMITS_VAR}: {e}")),
        Err(_) => Ok(defaults),
    }
}

/// Panics when asked to (debug builds only), standing in for an unknown internal bug.
pub fn maybe_panic() {
    if cfg!(debug_assertions) && std::env::var_os(PANIC_VAR).is_some() {
        panic!("deliberate panic requested by {PANIC_VAR}");
    }
}
