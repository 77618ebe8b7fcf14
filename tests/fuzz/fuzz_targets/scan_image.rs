//! Fuzz target `scan_image`: the body is `countersign_fuzz::scan_image` (tests/fuzz/targets.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| countersign_fuzz::scan_image(data));
