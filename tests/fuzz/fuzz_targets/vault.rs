//! Fuzz target `vault`: the body is `countersign_fuzz::vault` (tests/fuzz/targets.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| countersign_fuzz::vault(data));
