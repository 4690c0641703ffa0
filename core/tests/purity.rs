//! The architecture as a test: egressc-core's dependency tree holds no async runtime, no
//! Kubernetes client or runtime, no netlink, no HTTP server, no libc and no metrics library.
//! `core/Cargo.toml` states it; this test fails the build of CI when one comes back (directly or
//! through a feature of a shared dependency such as `kube`).

// This test is the one place in the crate that runs a process: it asks cargo about the crate.
#![allow(clippy::disallowed_methods)]

use std::process::Command;

/// Crates whose presence would mean the core can do I/O or needs a runtime.
const FORBIDDEN: &[&str] = &[
    "tokio",
    "kube-client",
    "kube-runtime",
    "rtnetlink",
    "netlink-proto",
    "axum",
    "hyper",
    "libc",
    "prometheus-client",
    "mio",
    "reqwest",
];

#[test]
fn the_core_depends_on_no_io_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let output = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "--edges",
            "normal,build",
            "--prefix",
            "none",
        ])
        .args([
            "--format",
            "{p}",
            "--manifest-path",
            manifest,
            "-p",
            "egressc-core",
        ])
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8(output.stdout).expect("cargo tree prints UTF-8");
    let crates: Vec<&str> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert!(
        crates.contains(&"egressc-core") && crates.contains(&"serde"),
        "unexpected cargo tree output:\n{tree}"
    );
    let found: Vec<&&str> = FORBIDDEN
        .iter()
        .filter(|name| crates.contains(name))
        .collect();
    assert!(
        found.is_empty(),
        "egressc-core must stay pure, but its dependency tree now holds {found:?}:\n{tree}"
    );
}
