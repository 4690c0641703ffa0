//! Replays the committed fuzz seed corpus (`fuzz/seeds/`: examples, fixtures, the bad-input
//! corpus, and every input a fuzzing run found to crash or hang) through the same calls the
//! fuzz targets make, on stable and without cargo-fuzz. A panic fails the test.

use std::fs;
use std::path::Path;

use egressc::load::{Limits, parse_stream, text};
use egressc::model::cilium::CiliumVersion;
use egressc::pipeline::{self, Input};
use egressc::render::{RenderOptions, Renderer, Templates};
use egressc::validate::Options;

/// Debug builds spend ~35 KB of stack per nesting level while parsing; the 64-level budget
/// needs more than a test thread's default 2 MB (the binary's main thread has 8 MB).
const STACK: usize = 16 * 1024 * 1024;

/// What `fuzz_targets/parse_stream.rs` does.
fn replay_parse(data: &[u8]) {
    if let Ok(text) = text::decode("seed.yaml", data.to_vec()) {
        let _ = parse_stream("seed.yaml", &text, &Limits::default());
    }
}

/// What `fuzz_targets/check.rs` does.
fn replay_check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (sources, nodes) = match text.split_once('\0') {
        Some((sources, nodes)) => (sources, Some(nodes)),
        None => (text, None),
    };
    let inputs = [Input {
        name: "seed.yaml".to_owned(),
        text: sources.to_owned(),
    }];
    let inventory = nodes.map(|text| Input {
        name: "nodes.yaml".to_owned(),
        text: text.to_owned(),
    });
    for cilium in [
        CiliumVersion::OLDEST,
        "1.20".parse().expect("known version"),
    ] {
        let options = Options {
            cilium,
            ignore_unknown_kinds: false,
        };
        let renderer = Renderer::new(&Templates::builtin()).expect("built-in templates compile");
        let _ = pipeline::compile(
            &inputs,
            inventory.as_ref(),
            &options,
            &Limits::default(),
            &renderer,
            &RenderOptions::default(),
        );
    }
}

#[test]
fn fuzz_seeds_never_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    let mut seeds: Vec<_> = fs::read_dir(&dir)
        .expect("fuzz/seeds exists")
        .map(|e| e.expect("entry").path())
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 60, "only {} seeds", seeds.len());
    let worker = std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(move || {
            for seed in &seeds {
                let data = fs::read(seed).expect("seed readable");
                replay_parse(&data);
                replay_check(&data);
            }
            seeds.len()
        })
        .expect("thread starts");
    let replayed = worker.join().expect("no seed panics");
    assert!(replayed >= 60);
}
