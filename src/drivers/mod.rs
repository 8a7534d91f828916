//! Thin I/O drivers: bytes become core inputs, core outputs become syscalls, nothing else.
//! One file per medium or device.

pub mod adminstate;
pub mod agents;
pub mod arp;
pub mod children;
pub mod entropy;
pub mod hwmon;
pub mod ipaddr;
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
