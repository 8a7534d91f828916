//! The whole daemon allocates nothing in the steady state: two `event_loop::run_until` loops,
//! each on a thread inside its lab namespace (alpha, beta) with its own configuration, run the
//! lab's serial, ucast and bcast links and an IPv6 multicast link on the LAN, an `ip` resource,
//! an `exec` resource whose monitor is a child process every second (fork and execve, reaped,
//! its output drained), an IPv4 and an IPv6 ping node (the client's addresses) and a notify
//! command, under a counting global allocator that counts only those two threads.
//! After warm-up (roles settled, every link up), at least 10 s of heartbeats and monitors must
//! add no allocation, while the test asks both for their status JSON over the control socket.
//! Two daemon threads in one process are a test device; the product runs one per process.

// Test deadlines are wall-clock time; the daemon itself reads the clock only in event_loop.rs.
#![allow(clippy::disallowed_methods)]

use std::time::Duration;

use crate::common::alloc;
use crate::common::assert_soon;
use crate::common::pair::{Pair, Setup};
use crate::{Loops, frames_rx};

#[test]
fn two_daemons_allocate_nothing_in_the_steady_state() {
    // Info-level logging, as the shipped daemon: a steady state logs nothing at info.
    let _counters = alloc::exclusive();
    let _ = env_logger::builder().is_test(true).filter_level(log::LevelFilter::Info).try_init();
    let setup = Setup { extra: "mcast lan0 ff02::1:694\nping 2001:db8::10", ..Setup::default() };
    let pair = Pair::new('m', &setup);
    let loops = Loops::start(&pair);
    let settled = || {
        let (Some(a), Some(b)) = (pair.socket_status(0), pair.socket_status(1)) else {
            return false;
        };
        let links_up = |s: &serde_json::Value| {
            s["peer"]["links"]
                .as_array()
                .is_some_and(|l| l.len() == 4 && l.iter().all(|l| l["up"] == true))
        };
        a["state"] == "active" && b["state"] == "standby" && links_up(&a) && links_up(&b)
    };
    assert_soon(Duration::from_secs(30), "alpha active, beta standby, all links up", settled);
    // Warm-up: the address announcements, the first monitors and ping answers, status replies.
    let warm = frames_rx(&pair, 1) + 30;
    assert_soon(Duration::from_secs(15), "3 s of warm-up", || frames_rx(&pair, 1) >= warm);

    let before = alloc::total_calls();
    assert!(before > 0, "the counter sees the daemon threads (start-up allocates)");
    alloc::arm_trap();
    // 100 heartbeats at 100 ms on every link of both nodes: at least 10 s.
    let (a0, b0) = (frames_rx(&pair, 0), frames_rx(&pair, 1));
    let monitors = pair.lines("alpha.monitors").len();
    assert_soon(Duration::from_secs(60), "10 s of heartbeats", || {
        frames_rx(&pair, 0) >= a0 + 100 && frames_rx(&pair, 1) >= b0 + 100
    });
    let after = alloc::total_calls();
    let monitored = pair.lines("alpha.monitors").len() - monitors;
    assert!(monitored >= 5, "the exec monitor ran {monitored} times while measured");
    assert!(settled(), "the pair stayed settled while measured");
    // Both ping nodes answered all along (10 s is many windows: not merely "not yet known").
    let status = pair.socket_status(0).expect("alpha's status");
    let ping = status["health"]["ping"].as_array().expect("ping nodes");
    assert_eq!(ping.len(), 2, "{status}");
    assert!(ping.iter().all(|p| p["reachable"] == true), "{status}");

    loops.stop();
    let first = alloc::first_trace();
    assert_eq!(
        after - before,
        0,
        "allocations in the steady state; the first at:\n{}",
        first.unwrap_or_default()
    );
}
