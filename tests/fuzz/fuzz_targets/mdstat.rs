//! Fuzz target: arbitrary bytes as /proc/mdstat.
//! The checks live in `hapair::drivers::fuzz::mdstat`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = hapair::drivers::fuzz::mdstat(data);
});
