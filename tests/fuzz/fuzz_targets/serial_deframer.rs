//! Fuzz target: arbitrary bytes as a serial line stream, fed in pieces to the deframer and
//! every record decoded.
//! The checks live in `hapair::wire::fuzz::deframe`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = hapair::wire::fuzz::deframe(data);
});
