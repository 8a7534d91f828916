//! The drivers on the real kernel, one driver at a time and no daemon: the serial port on a
//! pty, UDP links and the ping driver between network namespaces, the `ip` resource over
//! netlink, the child supervisor, the control socket, the signalfd, resource agents run for
//! real, and the health drivers (hwmon, mdstat, watchdog). Needs root (namespaces; CI is
//! root). Each former test file is a module of this one test binary:
//! `cargo test --test drivers MODULE::` runs one (`cargo test --test drivers drivers_udp::`).
//!
//! The tests share one process: every namespace, veth and directory name carries the process
//! id and a counter; a test that judges the whole process (its open descriptors, its pending
//! signals) runs in a process of its own (`common::own_process`).
//! Not here: the steady-state allocation of the drivers (`tests/alloc/`), daemons
//! (`tests/daemon/`).

#[path = "../common/mod.rs"]
mod common;

mod agents_run;
mod drivers_children;
mod drivers_control;
mod drivers_serial;
mod drivers_signals;
mod drivers_udp;
mod health_hwmon;
mod health_mdstat;
mod health_ping;
mod health_watchdog;
mod ip_takeover;
