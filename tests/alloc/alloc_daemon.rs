//! The whole daemon allocates nothing in the steady state: two `event_loop::run_until` loops,
//! each on a thread inside its lab namespace (alpha, beta) with its own configuration, run the
//! lab's serial, ucast and bcast links, an `ip` resource, an `exec` resource whose monitor is
//! a child process every second (fork and execve, reaped, its output drained), a ping node and
//! a notify command, under a counting global allocator that counts only those two threads.
//! After warm-up (roles settled, every link up), at least 10 s of heartbeats and monitors must
//! add no allocation, while the test asks both for their status JSON over the control socket.
//! Two daemon threads in one process are a test device; the product runs one per process.

// Test deadlines are wall-clock time; the daemon itself reads the clock only in event_loop.rs.
#![allow(clippy::disallowed_methods)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::common::alloc;
use crate::common::daemon::{Pair, Setup};
use crate::common::lab::Lab;
use crate::common::{assert_soon, spawn_in};
use hapair::config::{self, LoadOptions};

static STOP: AtomicBool = AtomicBool::new(false);

fn frames_rx(pair: &Pair, i: usize) -> u64 {
    let Some(s) = pair.socket_status(i) else { return 0 };
    let links = s["peer"]["links"].as_array().cloned().unwrap_or_default();
    links.iter().filter_map(|l| l["frames_rx"].as_u64()).min().unwrap_or(0)
}

#[test]
fn two_daemons_allocate_nothing_in_the_steady_state() {
    // Info-level logging, as the shipped daemon: a steady state logs nothing at info.
    let _counters = alloc::exclusive();
    let _ = env_logger::builder().is_test(true).filter_level(log::LevelFilter::Info).try_init();
    let lab = Lab::up('m');
    let pair = Pair::new(&lab, &Setup::default());
    let mut threads = Vec::new();
    for (slot, node) in pair.nodes.iter().enumerate() {
        // As `hapair run` loads it (ownership judged too).
        let opts = LoadOptions {
            config: pair.conf.clone(),
            cmdline: node.cmdline.clone(),
            check_ownership: true,
            ..LoadOptions::default()
        };
        let loaded = config::load(&opts).unwrap_or_else(|e| panic!("config: {e}"));
        threads.push(spawn_in(&node.ns, move || {
            alloc::count_this_thread(Some(slot));
            let code = hapair::event_loop::run_until(
                &loaded.config,
                &loaded.boot,
                &loaded.authkey,
                &opts,
                &STOP,
            );
            alloc::count_this_thread(None);
            code
        }));
    }
    let settled = || {
        let (Some(a), Some(b)) = (pair.socket_status(0), pair.socket_status(1)) else {
            return false;
        };
        let links_up = |s: &serde_json::Value| {
            s["peer"]["links"]
                .as_array()
                .is_some_and(|l| l.len() == 3 && l.iter().all(|l| l["up"] == true))
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

    STOP.store(true, Ordering::SeqCst);
    for t in threads {
        let code = t.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        assert_eq!(code, 0, "a daemon thread ended with {code}");
    }
    let first = alloc::first_trace();
    assert_eq!(
        after - before,
        0,
        "allocations in the steady state; the first at:\n{}",
        first.unwrap_or_default()
    );
}
