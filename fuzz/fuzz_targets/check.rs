//! Fuzz target: the whole pipeline (`pipeline::check`, then `pipeline::compile`: load, validate,
//! elect, render) on arbitrary text, split at the first NUL byte into sources and a `--nodes`
//! inventory, for every Cilium version. Nothing may panic; every error is a diagnostic.
#![no_main]

use egressc::render::{RenderOptions, Renderer, Templates};
use egressc::load::Limits;
use egressc::model::cilium::CiliumVersion;
use egressc::pipeline::{self, Input};
use egressc::validate::Options;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
    for cilium in ["1.17", "1.20"] {
        let Ok(cilium) = cilium.parse::<CiliumVersion>() else {
            return;
        };
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
});
