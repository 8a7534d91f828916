//! The allocation census of the daemon (issue 11): two `event_loop::run_until` loops, each on a
//! thread inside its lab namespace (alpha, beta), under a counting global allocator that
//! counts, per node, the calls (alloc, alloc_zeroed, realloc) and bytes of those two threads
//! only. It prints one `census:` line per measurement, which scripts/bench-footprint --census
//! shows beside the footprint tables:
//!   steady state, per heartbeat (target 0); a status request over the control socket, per
//!   request; a planned handover (`hapair standby` on the active node) until the peer runs
//!   the group; `hapair online`; and `hapair takeover` back.
//! It asserts only what makes the census meaningful: the counter sees the daemon threads,
//! every event happened, and the steady state allocates nothing (the target). Event counts
//! are reported, not asserted (tests/alloc/alloc_daemon.rs owns the steady-state guarantee).
//!
//! Run: `cargo test --test alloc alloc_census:: -- --nocapture` (root: it builds a lab).

// Test deadlines are wall-clock time; the daemon itself reads the clock only in event_loop.rs.
#![allow(clippy::disallowed_methods)]

use std::time::Duration;

use crate::common;
use crate::common::alloc;
use crate::common::assert_soon;
use crate::common::pair::{Pair, Setup};
use crate::{Loops, frames_rx};

/// (calls, bytes) per node so far.
fn snapshot() -> [(u64, u64); 2] {
    [0, 1].map(|i| (alloc::calls(i), alloc::bytes(i)))
}

fn delta(a: [(u64, u64); 2], b: [(u64, u64); 2]) -> [(u64, u64); 2] {
    [0, 1].map(|i| (b[i].0 - a[i].0, b[i].1 - a[i].1))
}

fn state(pair: &Pair, i: usize) -> String {
    pair.socket_status(i).and_then(|s| s["state"].as_str().map(str::to_owned)).unwrap_or_default()
}

fn roles(pair: &Pair, active: usize) -> bool {
    state(pair, active) == "active" && state(pair, 1 - active) == "standby"
}

fn report(what: &str, per: &str, n: u64, d: [(u64, u64); 2]) {
    let f = |x: u64| x as f64 / n as f64;
    println!(
        "census: {what:<34} per {per:<10} alpha {:>8.2} calls {:>10.1} B | beta {:>8.2} calls \
         {:>10.1} B  (over {n})",
        f(d[0].0),
        f(d[0].1),
        f(d[1].0),
        f(d[1].1)
    );
}

/// Runs `admin` on node `i` and waits until `active` runs the group; returns the allocations
/// meanwhile.
fn event(pair: &Pair, i: usize, admin: &str, active: usize) -> [(u64, u64); 2] {
    let before = snapshot();
    pair.admin_ok(i, &[admin]);
    assert_soon(Duration::from_secs(30), &format!("{admin}: roles settle"), || roles(pair, active));
    delta(before, snapshot())
}

#[test]
fn census_of_allocations_per_heartbeat_status_and_handover() {
    let _counters = alloc::exclusive();
    let _ = env_logger::builder().is_test(true).filter_level(log::LevelFilter::Info).try_init();
    let pair = Pair::new('c', &Setup::default());
    let loops = Loops::start(&pair);
    assert_soon(Duration::from_secs(30), "alpha active, beta standby", || roles(&pair, 0));
    let start = snapshot();
    assert!(start[0].0 > 0 && start[1].0 > 0, "the counter sees both daemon threads");
    report("start-up until settled", "node", 1, start);
    let warm = frames_rx(&pair, 1) + 30;
    assert_soon(Duration::from_secs(15), "3 s of warm-up", || frames_rx(&pair, 1) >= warm);

    // Status requests (the test thread's own allocations are not counted).
    const REQUESTS: u64 = 50;
    let s1 = snapshot();
    for _ in 0..REQUESTS {
        assert!(pair.socket_status(0).is_some(), "status over the control socket");
    }
    let status = delta(s1, snapshot());
    report("status request (json, alpha)", "request", REQUESTS, status);

    // Steady state: at least 100 heartbeats each way (10 s at 100 ms), checked once a second
    // so that the checks' own status requests (reported above) stay few.
    let (a0, b0, s0) = (frames_rx(&pair, 0), frames_rx(&pair, 1), snapshot());
    let mut checks = 0;
    let enough = common::wait_until(Duration::from_secs(60), || {
        std::thread::sleep(Duration::from_secs(1));
        checks += 1;
        let (a, b) = (frames_rx(&pair, 0), frames_rx(&pair, 1));
        a >= a0 + 100 && b >= b0 + 100
    });
    assert!(enough, "100 heartbeats each way within 60 s");
    let steady = delta(s0, snapshot());
    let beats = (frames_rx(&pair, 0) - a0).min(frames_rx(&pair, 1) - b0);
    report("steady state (raw)", "heartbeat", beats, steady);
    // Each check asked both nodes for their status once: take out what the status
    // measurement says a request costs (measured on alpha; beta answers the same request).
    let per_request = status[0].0 as f64 / REQUESTS as f64;
    let corrected = steady.map(|(calls, _)| calls as f64 - per_request * f64::from(checks));
    println!(
        "census: steady state less the {} status checks   per heartbeat  alpha {:>8.2} calls \
         | beta {:>8.2} calls",
        checks,
        corrected[0] / beats as f64,
        corrected[1] / beats as f64
    );

    report("handover: standby on alpha", "event", 1, event(&pair, 0, "standby", 1));
    report("online on alpha (no failback)", "event", 1, event(&pair, 0, "online", 1));
    report("takeover on alpha", "event", 1, event(&pair, 0, "takeover", 0));

    loops.stop();
    // Whole calls: a fraction left over means a status request does not cost the same each
    // time, and the figure is not a census any more.
    let leftover = corrected[0].abs() + corrected[1].abs();
    assert!(leftover < 0.5, "allocations in the steady state (target 0): {corrected:?}");
}
