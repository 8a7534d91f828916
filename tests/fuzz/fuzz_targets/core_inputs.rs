//! Fuzz target: arbitrary bytes as a sequence of inputs to the failover core.
//! The checks live in `hapair::core::fuzz::inputs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = hapair::core::fuzz::inputs(data);
});
