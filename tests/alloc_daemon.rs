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

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::daemon::{Pair, Setup};
use common::lab::Lab;
use common::{assert_soon, spawn_in};
use hapair::config::{self, LoadOptions};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
/// Set after warm-up: the first counted allocation then records its backtrace.
static TRAP: AtomicBool = AtomicBool::new(false);
static FIRST: Mutex<Option<String>> = Mutex::new(None);
static STOP: AtomicBool = AtomicBool::new(false);

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    if !COUNTING.try_with(Cell::get).unwrap_or(false) {
        return;
    }
    ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
    if TRAP.swap(false, Ordering::SeqCst) {
        // Not counted: the backtrace allocates too.
        COUNTING.with(|c| c.set(false));
        let trace = std::backtrace::Backtrace::force_capture().to_string();
        if let Ok(mut first) = FIRST.lock() {
            *first = Some(trace);
        }
        COUNTING.with(|c| c.set(true));
    }
}

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: forwarded with the caller's pointer and layouts.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn frames_rx(pair: &Pair, i: usize) -> u64 {
    let Some(s) = pair.socket_status(i) else { return 0 };
    let links = s["peer"]["links"].as_array().cloned().unwrap_or_default();
    links.iter().filter_map(|l| l["frames_rx"].as_u64()).min().unwrap_or(0)
}

#[test]
fn two_daemons_allocate_nothing_in_the_steady_state() {
    // Info-level logging, as the shipped daemon: a steady state logs nothing at info.
    let _ = env_logger::builder().is_test(true).filter_level(log::LevelFilter::Info).try_init();
    let lab = Lab::up('m');
    let pair = Pair::new(&lab, &Setup::default());
    let mut threads = Vec::new();
    for node in &pair.nodes {
        let opts =
            LoadOptions { config: pair.conf.clone(), cmdline: node.cmdline.clone(), node: None };
        let loaded = config::load(&opts).unwrap_or_else(|e| panic!("config: {e}"));
        threads.push(spawn_in(&node.ns, move || {
            COUNTING.with(|c| c.set(true));
            let code = hapair::event_loop::run_until(
                &loaded.config,
                &loaded.boot,
                &loaded.authkey,
                &opts,
                &STOP,
            );
            COUNTING.with(|c| c.set(false));
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

    let before = ALLOCATIONS.load(Ordering::SeqCst);
    assert!(before > 0, "the counter sees the daemon threads (start-up allocates)");
    TRAP.store(true, Ordering::SeqCst);
    // 100 heartbeats at 100 ms on every link of both nodes: at least 10 s.
    let (a0, b0) = (frames_rx(&pair, 0), frames_rx(&pair, 1));
    let monitors = pair.lines("alpha.monitors").len();
    assert_soon(Duration::from_secs(60), "10 s of heartbeats", || {
        frames_rx(&pair, 0) >= a0 + 100 && frames_rx(&pair, 1) >= b0 + 100
    });
    let after = ALLOCATIONS.load(Ordering::SeqCst);
    let monitored = pair.lines("alpha.monitors").len() - monitors;
    assert!(monitored >= 5, "the exec monitor ran {monitored} times while measured");
    assert!(settled(), "the pair stayed settled while measured");

    STOP.store(true, Ordering::SeqCst);
    for t in threads {
        let code = t.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        assert_eq!(code, 0, "a daemon thread ended with {code}");
    }
    let first = FIRST.lock().map(|f| f.clone()).unwrap_or_default();
    assert_eq!(
        after - before,
        0,
        "allocations in the steady state; the first at:\n{}",
        first.unwrap_or_default()
    );
}
