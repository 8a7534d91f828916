//! Fuzz target: arbitrary bytes as a sequence of inputs to a node with several groups.
//! The checks live in `hapair::core::fuzz::groups_inputs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = hapair::core::fuzz::groups_inputs(data);
});
