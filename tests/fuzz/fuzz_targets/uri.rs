//! Fuzz target `uri`: the body is `countersign_fuzz::uri` (tests/fuzz/targets.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| countersign_fuzz::uri(data));
