//! What the fuzz targets run on one input, shared by `fuzz_targets/*.rs` and the stable
//! replay test (`core/tests/fuzz_replay.rs`, which includes this file), so the replay always
//! exercises exactly what the fuzzer does.

use egressc::load::{Limits, parse_stream, parse_stream_reference, text};
use egressc::model::cilium::CiliumVersion;
use egressc::pipeline::{self, Input};
use egressc::render::{RenderOptions, Renderer};
use egressc::validate::Options;

/// The loader on arbitrary bytes: decoding (E008) and `load::parse_stream`, which must give
/// exactly what the serde-saphyr reference route gives (compared printed: NaN equals NaN).
pub fn parse_bytes(data: &[u8]) {
    if let Ok(text) = text::decode("fuzz.yaml", data.to_vec()) {
        let fast = parse_stream("fuzz.yaml", &text, &Limits::default());
        let reference = parse_stream_reference("fuzz.yaml", &text, &Limits::default());
        let (fast, reference) = (format!("{fast:?}"), format!("{reference:?}"));
        assert!(
            fast == reference,
            "loader routes differ\nfast: {fast}\nreference: {reference}"
        );
    }
}

/// The whole pipeline (`pipeline::compile`: load, validate, elect, render) on UTF-8 text split
/// at the first NUL byte into sources and a `--nodes` inventory, for the oldest and newest
/// Cilium versions.
pub fn compile_text(data: &[u8], renderer: &Renderer) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (sources, nodes) = match text.split_once('\0') {
        Some((sources, nodes)) => (sources, Some(nodes)),
        None => (text, None),
    };
    let inputs = [Input {
        name: "fuzz.yaml".to_owned(),
        text: sources.to_owned(),
    }];
    let inventory = nodes.map(|text| Input {
        name: "nodes.yaml".to_owned(),
        text: text.to_owned(),
    });
    for cilium in [CiliumVersion::OLDEST, CiliumVersion::NEWEST] {
        let options = Options {
            cilium,
            ignore_unknown_kinds: false,
        };
        let _ = pipeline::compile(
            &inputs,
            inventory.as_ref(),
            &options,
            &Limits::default(),
            renderer,
            &RenderOptions::default(),
        );
    }
}
