//! Fuzz target: a request kind, then arbitrary bytes as the kernel's rtnetlink answer.
//! The checks live in `hapair::drivers::fuzz::netlink_reply`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = hapair::drivers::fuzz::netlink_reply(data);
});
