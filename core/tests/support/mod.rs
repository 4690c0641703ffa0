//! Helpers shared by egressc-core's integration tests. Each test that needs one declares
//! `mod support;` — the one way tests share code here, as in the root crate's `tests/support/`.
//! Not shipped.

// Each test binary uses a different part of this support code.
#![allow(dead_code)]

use std::path::Path;

/// The repository root: the fixtures, examples, schemas and fuzz seeds these tests read are
/// shared with the `egressc` crate's tests and live outside `core/`.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("core/ sits in the repository root")
}
