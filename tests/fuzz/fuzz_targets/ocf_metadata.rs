//! Fuzz target: arbitrary bytes as an OCF agent's meta-data output.
//! The checks live in `hapair::drivers::fuzz::ocf_metadata`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = hapair::drivers::fuzz::ocf_metadata(data);
});
