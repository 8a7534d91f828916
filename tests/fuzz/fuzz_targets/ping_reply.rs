//! Fuzz target: arbitrary bytes as an ICMP echo reply (datagram and raw socket).
//! The checks live in `hapair::drivers::fuzz::ping_reply`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = hapair::drivers::fuzz::ping_reply(data);
});
