//! Shared helpers for the integration tests (include with `mod common;`).
//!
//! - `netns`: `Netns` (a uniquely named network namespace deleted on drop, also on panic),
//!   `veth`, `Lan` (a bridge in its own namespace), `Netns::run` / `spawn` (a closure on a
//!   thread inside the namespace), `Netns::exec` (`ip netns exec`), neighbour and address
//!   queries, `cmd` / `try_cmd`; and for any named namespace (the lab's): `run_in`,
//!   `spawn_in`, `exec_in`, `ping_from`.
//! - `lab`: `Lab`, scripts/lab.sh up on `Lab::up`, down on drop, with its namespaces, ttys
//!   and addresses (`Node::{Alpha, Beta, Client, Lan}`).
//! - `daemon`: `Pair`, two real `hapair run` processes on a `Lab` (config, authkey, cmdlines,
//!   notify script and marker logs written for them), status JSON, signals by pid, kill on drop.
//! - `capture`: `Capture`, an `AF_PACKET` socket that records the frames one interface sees,
//!   with parsers for ARP and neighbour advertisements.
//! - `pair`: `Pair`, two `hapair run` daemons in a `Lab` with UDP responders, a prober in the
//!   client (who answers the VIP, and when) and the marker resource, whose monotonic start and
//!   stop stamps show whether the group ever ran on both nodes at once (`overlaps`).
//! - `segment`: `Segment`, daemons of one or more pairs on one bridged LAN (`Lan`), each node
//!   in a namespace of its own, with hosts beside them (two pairs sharing a LAN, a recorder).
//! - `bmc`: `Bmc`, an IPMI BMC per node from OpenIPMI's `ipmi_sim` (RMCP+ on a management
//!   cable from the peer), whose power control kills and restarts that node's daemon, for
//!   tests that fence with the real `fence_ipmilan`.
//! - `wait_until`: poll a condition until a deadline — tests never sleep a fixed time.
//!
//! Every test binary uses a different subset, so unused items are not warnings here.
#![allow(dead_code, unused_imports)]

pub mod alloc;
pub mod bmc;
pub mod capture;
pub mod daemon;
pub mod lab;
pub mod netns;
pub mod pair;
pub mod segment;

pub use netns::{Lan, Netns, cmd, exec_in, ping_from, run_in, spawn_in, try_cmd, veth};

use std::time::Duration;

/// Makes a FIFO at `path` and opens its reader, non-blocking: the lab's stand-in for a
/// hardware watchdog (README "The hardware watchdog"), which the daemon opens for writing.
/// Keep the returned reader open while the daemon runs.
pub fn watchdog_fifo(path: &std::path::Path) -> std::fs::File {
    use std::os::unix::fs::OpenOptionsExt;
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .unwrap_or_else(|e| panic!("mkfifo {}: {e}", path.display()));
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .unwrap_or_else(|e| panic!("FIFO reader {}: {e}", path.display()))
}

/// Polls `cond` every 5 ms until it holds (true) or `timeout` has passed (false).
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    // Tests may read the real clock; the ban in clippy.toml is for the daemon.
    #[allow(clippy::disallowed_methods)]
    let start = std::time::Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() >= timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Fails the test unless `cond` holds within `timeout`, naming `what`.
pub fn assert_soon(timeout: Duration, what: &str, cond: impl FnMut() -> bool) {
    assert!(wait_until(timeout, cond), "timed out after {timeout:?} waiting for {what}");
}
