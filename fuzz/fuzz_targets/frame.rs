//! Fuzz target `frame`: see `dopy_fuzz::checks::check_frames` for the properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dopy_fuzz::checks::check_frames(data));
