//! Fuzz target `privacyidea_link`: the body is `countersign_fuzz::privacyidea_link` (tests/fuzz/targets.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| countersign_fuzz::privacyidea_link(data));
