//! Fuzz target `push`: the body is `countersign_fuzz::push` (tests/fuzz/targets.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| countersign_fuzz::push(data));
