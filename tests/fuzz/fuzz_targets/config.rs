//! Fuzz target: arbitrary bytes as the configuration file (parse, validate, print, parse).
//! The checks live in `hapair::config::fuzz::config`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = hapair::config::fuzz::config(data);
});
