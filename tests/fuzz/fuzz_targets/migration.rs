//! Fuzz target `migration`: the body is `countersign_fuzz::migration` (tests/fuzz/targets.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| countersign_fuzz::migration(data));
