//! Shared helpers for the integration tests. Each test binary declares it once, in its root:
//! `#[path = "../common/mod.rs"] mod common;` in `tests/NAME/main.rs` (`mod common;` in
//! tests/fence_ipmi.rs, a binary of its own).
//!
//! - `bin`: the real binary as a command (`hapair(args)`, its output as text, a valid `KEY`),
//!   for the tests of the offline commands.
//! - `TempDir` (src/testutil.rs, which the unit tests use too): a fresh directory per test,
//!   removed on drop.
//! - `alloc`: the counting global allocator of `tests/alloc/`, and `exclusive()`, which lets
//!   one test at a time count.
//! - `netns`: `Netns` (a uniquely named network namespace deleted on drop, also on panic),
//!   `veth`, `Lan` (a bridge in its own namespace), `Netns::run` / `spawn` (a closure on a
//!   thread inside the namespace), `Netns::exec` (`ip netns exec`), neighbour and address
//!   queries, `cmd` / `try_cmd`; and for any named namespace (the lab's): `run_in`,
//!   `spawn_in`, `exec_in`, `ping_from`.
//! - `lab`: `Lab`, scripts/lab.sh up on `Lab::up`, down on drop, with its namespaces, ttys
//!   and addresses (`Node::{Alpha, Beta, Client, Lan}`).
//! - `daemon`: `Daemon`, one real `hapair run` process in a namespace: started, asked
//!   (`hapair status --json` and the other admin commands), signalled and killed by pid.
//! - `capture`: `Capture`, an `AF_PACKET` socket that records the frames one interface sees,
//!   with parsers for ARP and neighbour advertisements.
//! - `pair`: `Pair`, two `Daemon`s in a `Lab` (authkey, cmdlines and configuration written
//!   for them: from a `Setup`, the test's own, or board/lab/ with the VIP probed from the
//!   client and the marker resource, whose monotonic start and stop stamps show whether the
//!   group ever ran on both nodes at once, `overlaps`).
//! - `segment`: `Segment`, daemons of one or more pairs on one bridged LAN (`Lan`), each node
//!   in a namespace of its own, with hosts beside them (two pairs sharing a LAN, a recorder).
//! - `marks`: the stamped logs of the lab's exec resource and notify script (`Mark`, `read`,
//!   `notified`, `runs`, `overlaps`, `uptime_ns`), shared by daemon_spec and fence_ipmi.
//! - `rng`: `Rng`, splitmix64 (`splitmix.rs`, the simulator's generator, the same file), with
//!   `from_clock`, for noise and coin tosses.
//! - `bmc`: `Bmc`, an IPMI BMC per node from OpenIPMI's `ipmi_sim` (RMCP+ on a management
//!   cable from the peer), whose power control kills and restarts that node's daemon, for
//!   tests that fence with the real `fence_ipmilan`.
//! - `wait_until`, `wait_every`, `assert_soon`: poll a condition until a deadline — tests
//!   never sleep a fixed time.
//! - `own_process`: the calling test run again, alone, in a process of its own (for a test
//!   that judges the whole process: its open descriptors, its pending signals).
//!
//! Every test binary uses a different subset, so unused items are not warnings here.
#![allow(dead_code, unused_imports)]

pub mod alloc;
pub mod bin;
pub mod bmc;
pub mod capture;
pub mod daemon;
pub mod lab;
pub mod marks;
pub mod netns;
pub mod pair;
pub mod rng;
pub mod segment;

// The unit tests' helpers (`cfg(test)` in the library, so out of the integration tests'
// reach as a module of the crate): included here, so that both use the same `TempDir`.
#[path = "../../src/testutil.rs"]
pub mod testutil;

pub use netns::{Lan, Netns, cmd, exec_in, ping_from, run_in, spawn_in, try_cmd, veth};
pub use testutil::TempDir;

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

/// How often `wait_until` and `assert_soon` poll.
pub const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// Polls `cond` every 5 ms until it holds (true) or `timeout` has passed (false).
pub fn wait_until(timeout: Duration, cond: impl FnMut() -> bool) -> bool {
    wait_every(POLL_INTERVAL, timeout, cond)
}

/// Polls `cond` every `interval` until it holds (true) or `timeout` has passed (false).
pub fn wait_every(interval: Duration, timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
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
        std::thread::sleep(interval);
    }
}

/// Fails the test unless `cond` holds within `timeout`, naming `what`.
pub fn assert_soon(timeout: Duration, what: &str, cond: impl FnMut() -> bool) {
    assert!(wait_until(timeout, cond), "timed out after {timeout:?} waiting for {what}");
}

/// Set in the process `own_process` starts for one test.
const OWN_PROCESS: &str = "HAPAIR_TEST_OWN_PROCESS";

/// Gives the calling test a process of its own, for a test whose figures are the whole
/// process's (the descriptors in /proc/self/fd, signals pending for the process), which the
/// harness's other test threads would change. Call it first, as
/// `if !common::own_process() { return; }`.
///
/// In the harness's process it runs this test binary again with only the calling test
/// (`--exact`, one test thread), passes its output on, fails when that run fails or ran no
/// test, and returns false: the caller returns at once. In that process it returns true:
/// the caller runs its body there.
pub fn own_process() -> bool {
    if std::env::var_os(OWN_PROCESS).is_some() {
        return true;
    }
    // libtest runs each test on a thread named after it (with any number of test threads).
    let thread = std::thread::current();
    let test = thread.name().filter(|n| *n != "main").expect("a test thread named after its test");
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = std::process::Command::new(&exe)
        .args([test, "--exact", "--test-threads=1", "--nocapture"])
        .env(OWN_PROCESS, "1")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", exe.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{test} failed in a process of its own: {}", out.status);
    assert!(stdout.contains("test result: ok. 1 passed"), "{test} did not run in its own process");
    false
}
