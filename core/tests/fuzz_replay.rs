//! Replays the committed fuzz seed corpus (`fuzz/seeds/`: examples, fixtures, the bad-input
//! corpus, and every input a fuzzing run found to crash or hang) through the same calls the
//! fuzz targets make (`fuzz/harness.rs`), on stable and without cargo-fuzz. A panic fails the test.

// An integration test reads fixture files, which the core's own code may not (core/clippy.toml).
#![allow(clippy::disallowed_methods)]

// The harness is shared with the fuzz crate, which depends on `egressc` (the core's modules
// re-exported under their old paths): the alias lets the same file compile here.
extern crate egressc_core as egressc;

mod support;

use std::fs;

use egressc_core::render::{Renderer, Templates};

#[path = "../../fuzz/harness.rs"]
mod harness;

/// Debug builds spend ~35 KB of stack per nesting level while parsing; the 64-level budget
/// needs more than a test thread's default 2 MB (the binary's main thread has 8 MB).
const STACK: usize = 16 * 1024 * 1024;

#[test]
fn fuzz_seeds_never_panic() {
    let dir = support::repo_root().join("fuzz/seeds");
    let mut seeds: Vec<_> = fs::read_dir(&dir)
        .expect("fuzz/seeds exists")
        .map(|e| e.expect("entry").path())
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 60, "only {} seeds", seeds.len());
    let worker = std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(move || {
            let renderer =
                Renderer::new(&Templates::builtin()).expect("built-in templates compile");
            for seed in &seeds {
                let data = fs::read(seed).expect("seed readable");
                harness::parse_bytes(&data);
                harness::compile_text(&data, &renderer);
            }
            seeds.len()
        })
        .expect("thread starts");
    let replayed = worker.join().expect("no seed panics");
    assert!(replayed >= 60);
}
