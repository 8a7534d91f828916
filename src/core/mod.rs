//! The failover core: a pure, sans-IO state machine (SPEC §3). No I/O, no clock reads, no
//! threads, no allocation. Filled in by the "failover core" issue.
#![forbid(unsafe_code)]

pub mod time;
