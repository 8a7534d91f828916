//! Fuzz target: arbitrary bytes as heartbeat v1 ha.cf, haresources and authkeys.
//! The checks live in `hapair::migrate::fuzz::heartbeat_import`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = hapair::migrate::fuzz::heartbeat_import(data);
});
