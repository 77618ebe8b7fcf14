//! Fuzz target `transfer`: the body is `countersign_fuzz::transfer` (tests/fuzz/targets.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| countersign_fuzz::transfer(data));
