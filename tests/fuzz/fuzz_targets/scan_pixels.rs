//! Fuzz target `scan_pixels`: the body is `countersign_fuzz::scan_pixels` (tests/fuzz/targets.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| countersign_fuzz::scan_pixels(data));
