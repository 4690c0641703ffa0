//! Fuzz target: the whole pipeline (`pipeline::compile`: load, validate, elect, render) on
//! arbitrary text, split at the first NUL byte into sources and a `--nodes` inventory, for the
//! oldest and newest Cilium versions. Nothing may panic; every error is a diagnostic.
#![no_main]

#[path = "../harness.rs"]
mod harness;

use std::sync::OnceLock;

use egressc::render::{Renderer, Templates};
use libfuzzer_sys::fuzz_target;

/// Compiled once: the templates are not under test here, the inputs are.
static RENDERER: OnceLock<Renderer> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let renderer = RENDERER
        .get_or_init(|| Renderer::new(&Templates::builtin()).expect("built-in templates compile"));
    harness::compile_text(data, renderer);
});
