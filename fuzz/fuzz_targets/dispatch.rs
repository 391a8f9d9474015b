//! Fuzz target `dispatch`: a decoded `Call` runs on a published `#[dopy::remote]` object; see
//! `dopy_fuzz::checks::check_dispatch` for the properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    dopy_fuzz::checks::check_dispatch(data, dopy_fuzz::table(), dopy_fuzz::runtime())
});
