//! SPEC §7.7 end to end, in the namespace lab: two real `hapair run` daemons on a fast
//! crossover (`ucast xover0 ... keepalive 10ms deadtime 50ms`) and a slow LAN link (`bcast
//! lan0 keepalive 200ms deadtime 2s`), the global timing in between (100 ms, 500 ms). A
//! working slow link is proof of life: cutting the crossover alone makes no failover, for far
//! longer than the fast link's (and the global) deadtime; a dead peer is found dead only when
//! the slow link's deadtime has run out after its last frame, and the survivor then takes the
//! group. Ordering facts only (no takeover before the slow deadtime less its interval and a
//! margin, a takeover eventually): the machine is noisy. Needs root (CI is root).
//!
//! Not here: how fast exactly (scripts/bench-failover), the core's judgement in detail (the
//! unit tests of `core::node`, and tests/sim.rs, whose oracle checks it on every step).

use std::fs;
use std::time::Duration;

use crate::common::assert_soon;
use crate::common::daemon::wall_ns;
use crate::common::lab::Node;
use crate::common::pair::{Pair, START, STEP};
use nix::sys::signal::Signal;

const ALPHA: usize = 0;
const BETA: usize = 1;
/// The slow link's deadtime and keepalive.
const SLOW_DEADTIME: Duration = Duration::from_secs(2);
const SLOW_KEEPALIVE: Duration = Duration::from_millis(200);
/// Generous: how long a wait may take on a busy machine, not a bound.
const PATIENCE: Duration = Duration::from_secs(20);

/// A pair on the two links, an `exec` resource stamping its starts, and a notify script
/// stamping every event (`<lab dir>/notify-NODE`: "NS EVENT").
fn pair(tag: char) -> Pair {
    let pair = Pair::with_conf(tag, |lab| {
        let d = lab.dir();
        let notify = format!("{d}/notify");
        fs::write(&notify, format!("#!/bin/sh\necho \"$(date +%s%N) $1 $3\" >> {d}/notify-$2\n"))
            .expect("notify script");
        fs::set_permissions(&notify, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let m = format!("{d}/$HAPAIR_NODE");
        let conf = format!(
            "node alpha\nnode beta\nkeepalive 100ms\nwarntime 300ms\ndeadtime 500ms\n\
             initdead 5s\nauthkey /etc/hapair/authkey\n\
             ucast xover0 198.51.100.1 198.51.100.2 keepalive 10ms deadtime 50ms\n\
             bcast lan0 keepalive 200ms deadtime 2s\nhome alpha\nauto_failback off\n\
             resource exec web start=\"touch {m}.running\" stop=\"rm -f {m}.running\" \
             monitor=\"test -e {m}.running\" timeout 10s\nnotify {notify}\n"
        );
        let path = std::path::Path::new(&d).join("hapair.conf");
        fs::write(&path, conf).expect("config");
        path
    });
    // No serial line: the two links above only.
    for node in [Node::Alpha, Node::Beta] {
        pair.write_cmdline(node, &format!("hapair.node={}", node.as_str()));
    }
    pair
}

/// Starts alpha, then beta; waits until alpha is active, beta standby, each hearing the
/// other on both links.
fn started(tag: char) -> Pair {
    let mut pair = pair(tag);
    pair.start(ALPHA);
    pair.wait_state(ALPHA, "active", START);
    pair.start(BETA);
    pair.wait_state(BETA, "standby", STEP);
    assert_soon(STEP, "both links up at both nodes", || {
        (0..2).all(|i| {
            pair.status(i).is_some_and(|s| {
                let links = s["peer"]["links"].as_array().cloned().unwrap_or_default();
                s["peer"]["alive"] == true
                    && links.len() == 2
                    && links.iter().all(|l| l["up"] == true)
            })
        })
    });
    pair
}

/// `status` shows each link's own timing; cutting the crossover alone (the fast link goes
/// down within 50 ms) makes no failover: for 4 s (twice the slow link's deadtime, eight times
/// the global one) beta hears alpha alive on the LAN, stays standby, and notifies no death.
#[test]
fn a_fast_link_down_alone_never_makes_the_peer_dead() {
    let pair = started('k');
    let s = pair.status(BETA).expect("beta's status");
    let links = s["peer"]["links"].as_array().expect("links").clone();
    let timing: Vec<_> =
        links.iter().map(|l| (l["keepalive_ms"].as_u64(), l["deadtime_ms"].as_u64())).collect();
    assert_eq!(timing, [(Some(10), Some(50)), (Some(200), Some(2000))], "{s}");

    let cut = wall_ns();
    pair.lab().cut("xover", Node::Alpha);
    assert_soon(STEP, "the crossover down at beta", || {
        pair.status(BETA).is_some_and(|s| s["peer"]["links"][0]["up"] == false)
    });
    let until = wall_ns() + 4_000_000_000;
    while wall_ns() < until {
        let s = pair.status(BETA).expect("beta's status");
        assert_eq!(s["peer"]["alive"], true, "beta lost alpha with the LAN link working: {s}");
        assert_eq!(pair.state(BETA), "standby");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(pair.state(ALPHA), "active");
    for node in [ALPHA, BETA] {
        for event in ["peer-dead", "failover", "fencing"] {
            let since: Vec<_> =
                pair.notified(node, event).into_iter().filter(|t| *t >= cut).collect();
            assert!(since.is_empty(), "node {node} notified {event} after the cut");
        }
    }
    // The crossover back: both links up again.
    pair.lab().restore("xover", Node::Alpha);
    assert_soon(STEP, "the crossover up again at beta", || {
        pair.status(BETA).is_some_and(|s| s["peer"]["links"][0]["up"] == true)
    });
}

/// alpha dies (SIGKILL, then its cables pulled): beta finds it dead only once the slow link's
/// deadtime has run out after alpha's last frame (which came at most one slow keepalive before
/// the kill), never at the fast link's 50 ms or the global 500 ms; then beta takes the group.
#[test]
fn a_dead_peer_is_found_dead_by_the_slowest_link_and_taken_over() {
    let pair = started('w');
    let killed = wall_ns();
    pair.signal(ALPHA, Signal::SIGKILL);
    pair.lab().cut("lan", Node::Alpha);
    pair.lab().cut("xover", Node::Alpha);
    assert_soon(PATIENCE, "beta active", || pair.state(BETA) == "active");
    // The notify script runs in the background: its stamps come soon after.
    let after = |event: &str| pair.notified(BETA, event).into_iter().find(|t| *t >= killed);
    assert_soon(STEP, "beta's peer-dead and active notified", || {
        after("peer-dead").is_some() && after("active").is_some()
    });
    let (dead, active) = (after("peer-dead").unwrap_or(0), after("active").unwrap_or(0));
    let ms = |ns: u128| ns.saturating_sub(killed) / 1_000_000;
    eprintln!("killed -> peer-dead {} ms, -> active {} ms", ms(dead), ms(active));
    // The last slow frame came at most a slow keepalive before the kill; 100 ms for the
    // stamps' own noise.
    let earliest = (SLOW_DEADTIME - SLOW_KEEPALIVE - Duration::from_millis(100)).as_nanos();
    assert!(dead >= killed + earliest, "peer dead {} ms after the kill", ms(dead));
    assert!(active >= dead, "active before the peer was dead");
}
