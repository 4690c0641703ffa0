//! Hidden hooks for black-box tests, honoured only in debug builds (a release binary ignores
//! them): smaller input budgets, so that budgets too large to reach quickly in a debug build
//! (20 million nodes) are still exercised through the real CLI; and a deliberate panic, to
//! prove that an internal error becomes exit status 2 with a bug-report message.

use crate::load::Limits;

/// `max_nodes=1000,max_depth=8`: budget overrides (field names of [`Limits`]).
const LIMITS_VAR: &str = "EGRESSC_TEST_LIMITS";
/// Any value: panic after argument parsing.
const PANIC_VAR: &str = "EGRESSC_TEST_PANIC";

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
