//! Fuzz target: arbitrary bytes as a heartbeat frame (decode, decode -> emit -> decode round
//! trip, and the receiver).
//! The checks live in `hapair::wire::fuzz::decode`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = hapair::wire::fuzz::decode(data);
});
