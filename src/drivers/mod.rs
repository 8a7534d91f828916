//! Thin I/O drivers: bytes become core inputs, core outputs become syscalls, nothing else.
//! One file per medium or device.

pub mod agents;
pub mod arp;
pub mod hwmon;
pub mod ipaddr;
pub mod mdstat;
pub mod netlink;
pub mod ping;
pub mod watchdog;
