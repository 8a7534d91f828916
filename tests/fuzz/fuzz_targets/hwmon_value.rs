//! Fuzz target: arbitrary bytes as an hwmon input's name, limit files and readings.
//! The checks live in `hapair::drivers::fuzz::hwmon_value`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = hapair::drivers::fuzz::hwmon_value(data);
});
