//! Fuzz target: arbitrary bytes as a control socket request line.
//! The checks live in `hapair::control::fuzz::request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = hapair::control::fuzz::request(data);
});
