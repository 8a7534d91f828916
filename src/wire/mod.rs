//! Heartbeat frames (SPEC §4). Filled in by the "heartbeat frames" issue.
#![forbid(unsafe_code)]

pub mod authentic;
pub mod payload;

pub use authentic::{Authentic, Repr};
pub use payload::{GroupState, Health, Intent, Kind, Payload};
