//! Fuzz target: arbitrary bytes as the kernel command line, applied to a valid file.
//! The checks live in `hapair::config::fuzz::cmdline`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = hapair::config::fuzz::cmdline(data);
});
