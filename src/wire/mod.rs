//! Heartbeat frames (SPEC §4). Filled in by the "heartbeat frames" issue.
#![forbid(unsafe_code)]

pub mod payload;
