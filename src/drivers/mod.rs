//! Thin I/O drivers: bytes become core inputs, core outputs become syscalls, nothing else.
//! One file per medium or device; in fuzz and test builds only, `fuzz` holds the property
//! checks of their decoders of outside input.

pub mod adminstate;
pub mod agents;
pub mod arp;
pub mod checksum;
pub mod children;
pub mod drbd;
pub mod entropy;
pub mod errors;
#[cfg(any(fuzzing, feature = "sim"))]
pub mod fuzz;
pub mod hwmon;
pub mod ipaddr;
pub mod ipmi;
pub mod logsink;
pub mod mdstat;
pub mod netlink;
pub mod ping;
pub mod realtime;
pub mod sdnotify;
pub mod serial;
pub mod signals;
pub mod statefile;
pub mod udp;
pub mod watchdog;
