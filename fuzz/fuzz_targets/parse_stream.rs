//! Fuzz target: the loader on arbitrary bytes. Decoding (E008) and `load::parse_stream`
//! must never panic, whatever the input; errors are diagnostics.
#![no_main]

use egressc::load::{Limits, parse_stream, text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = text::decode("fuzz.yaml", data.to_vec()) {
        let _ = parse_stream("fuzz.yaml", &text, &Limits::default());
    }
});
