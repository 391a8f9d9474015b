//! Fuzz target `message`: see `dopy_fuzz::checks::check_message` for the properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dopy_fuzz::checks::check_message(data));
