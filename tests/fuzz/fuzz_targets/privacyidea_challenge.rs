//! Fuzz target `privacyidea_challenge`: the body is `countersign_fuzz::privacyidea_challenge` (tests/fuzz/targets.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| countersign_fuzz::privacyidea_challenge(data));
