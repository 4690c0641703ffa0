//! Fuzz target: the loader on arbitrary bytes. Decoding (E008) and `load::parse_stream`
//! must never panic, whatever the input; errors are diagnostics.
#![no_main]

#[path = "../harness.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| harness::parse_bytes(data));
