//! Fuzz target `value`: see `dopy_fuzz::checks::check_value` for the properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dopy_fuzz::checks::check_value(data));
