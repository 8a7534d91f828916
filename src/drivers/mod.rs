//! Thin I/O drivers: bytes become core inputs, core outputs become syscalls, nothing else.
//! One file per medium or device.
pub mod statefile;
