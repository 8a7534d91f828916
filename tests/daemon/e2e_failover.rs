//! End to end, in the namespace lab (scripts/lab.sh): two real `hapair run` daemons, a client
//! that asks the VIP who it is every 5 ms (a UDP responder runs in each node's namespace), and
//! the marker resource, whose monotonic start and stop stamps show whether the group ever ran
//! on both nodes at once (tests/common/pair.rs). For IPv4 and IPv6, after each fault — node
//! death (SIGKILL and every cable pulled), a planned `standby` handover, SIGTERM — the
//! client's neighbour entry for the VIP must hold the survivor's MAC, the survivor must
//! answer, and its first answer must come within a loose bound derived from the configuration
//! (deadtime for a death, plus the group's stop and start and `SLACK`). Needs root (CI is
//! root).
//!
//! Not here: how fast exactly (scripts/bench-failover measures it; the bounds here only catch
//! a takeover ten times too slow), and the core's decisions in detail (tests/sim.rs).

use std::time::Duration;

use crate::common;
use crate::common::assert_soon;
use crate::common::lab::Node;
use crate::common::pair::{Pair, mono_ns, overlaps_in, runs_in};
use nix::sys::signal::Signal;

/// Generous: the machine may be busy building; how long a wait may take, not a bound.
const PATIENCE: Duration = Duration::from_secs(20);
/// What the group (the marker script, the address and its first gratuitous ARP, the client's
/// neighbour update) may take to start, or to stop, on a busy machine.
const GROUP_START: Duration = Duration::from_secs(1);
const GROUP_STOP: Duration = Duration::from_secs(1);
/// Added to every bound: the machine has two shared cores and is noisy.
const SLACK: Duration = Duration::from_secs(2);

const V4: (&str, &str) = ("hapair.conf", "192.0.2.100");
const V6: (&str, &str) = ("v6.conf", "2001:db8::100");

/// What happens to the active node.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// SIGKILL, then its LAN and crossover cables pulled and the serial line cut.
    Death,
    /// `hapair standby` on it.
    Standby,
    /// SIGTERM to its daemon.
    Term,
}

/// Starts a pair and waits until one node is active, the other standby, and the client is
/// answered by the active one at the VIP. Returns the pair and the active node: usually alpha
/// (home), but a node whose first ping has not answered yet is unhealthy and leaves the group
/// to its peer.
fn settled(tag: char, (conf, vip): (&str, &str)) -> (Pair, Node, Node) {
    let pair = Pair::board(tag, conf, vip);
    let (active, survivor) = pair.settled(PATIENCE);
    assert_eq!(pair.client_neigh(), Some(pair.mac(active)), "client's entry for the VIP");
    (pair, active, survivor)
}

/// The fault on the active node, then: the survivor active, the client's entry holding the
/// survivor's MAC, the survivor answering within the bound; and the markers show the victim's
/// run ended, the survivor's running, and never both at once.
fn fails_over(tag: char, family: (&str, &str), fault: Fault) {
    let (mut pair, victim, survivor) = settled(tag, family);
    pair.clear_answers();
    let t = pair.timings(survivor);
    let (bound, why) = match fault {
        Fault::Death => (t.deadtime + GROUP_START + SLACK, "deadtime + the group's start + slack"),
        Fault::Standby | Fault::Term => {
            (GROUP_STOP + GROUP_START + SLACK, "the group's stop and start + slack")
        }
    };
    let t0 = mono_ns();
    match fault {
        Fault::Death => pair.kill_and_cut(victim),
        Fault::Standby => {
            let out = pair.admin(victim, &["standby"]);
            assert!(out.status.success(), "standby: {}", String::from_utf8_lossy(&out.stderr));
        }
        Fault::Term => pair.signal(victim, Signal::SIGTERM),
    }
    assert_soon(PATIENCE, "the survivor active", || pair.state(survivor) == "active");
    let mac = pair.mac(survivor);
    assert_soon(PATIENCE, "the client's entry for the VIP at the survivor's MAC", || {
        pair.client_neigh().as_deref() == Some(mac.as_str())
    });
    assert_soon(PATIENCE, "the survivor answering the client", || {
        pair.last_answer().as_deref() == Some(survivor.as_str())
    });
    let answered = pair.first_answer_from(survivor, t0).unwrap_or(u64::MAX);
    let took = Duration::from_nanos(answered.saturating_sub(t0));
    eprintln!("{fault:?} -> first answer from the survivor: {} ms", took.as_millis());
    assert!(
        took <= bound,
        "{fault:?}: the survivor first answered after {} ms, over the bound of {} ms ({why})",
        took.as_millis(),
        bound.as_millis()
    );
    // Once the survivor answers, the victim never does again.
    let answers = pair.answers();
    let first = answers.iter().position(|a| a == survivor.as_str()).unwrap_or(answers.len());
    assert!(answers[first..].iter().all(|a| a == survivor.as_str()), "after: {answers:?}");
    match fault {
        Fault::Death => {}
        Fault::Standby => assert_eq!(pair.state(victim), "standby"),
        Fault::Term => assert_soon(PATIENCE, "the victim's daemon exits 0", || {
            pair.exited(victim) == Some(Some(0))
        }),
    }
    // The markers saw the victim's run end and the survivor's begin after the fault, and
    // never both at once.
    let runs = pair.runs();
    let ended = runs.iter().any(|r| r.node == victim.as_str() && r.to.is_some_and(|e| e > t0));
    let began = runs.iter().any(|r| r.node == survivor.as_str() && r.from > t0 && r.to.is_none());
    assert!(ended && began, "runs {runs:?} in the markers:\n{}", pair.markers());
    assert_eq!(pair.overlaps(), Vec::<String>::new(), "the group on both nodes");
}

#[test]
fn v4_node_death_moves_the_vip_to_the_survivor() {
    fails_over('d', V4, Fault::Death);
}

#[test]
fn v4_standby_hands_the_vip_to_the_survivor() {
    fails_over('s', V4, Fault::Standby);
}

#[test]
fn v4_sigterm_hands_the_vip_to_the_survivor() {
    fails_over('t', V4, Fault::Term);
}

#[test]
fn v6_node_death_moves_the_vip_to_the_survivor() {
    fails_over('e', V6, Fault::Death);
}

#[test]
fn v6_standby_hands_the_vip_to_the_survivor() {
    fails_over('f', V6, Fault::Standby);
}

#[test]
fn v6_sigterm_hands_the_vip_to_the_survivor() {
    fails_over('u', V6, Fault::Term);
}

/// The overlap check can fail, on a real double run however short: the active node is
/// frozen (SIGSTOP) until its peer has started the group, and woken at once; it releases as
/// soon as it sees the peer active, and the markers show the moments both ran it.
#[test]
fn the_markers_show_a_short_double_run() {
    let (pair, active, survivor) = settled('o', V4);
    let t0 = mono_ns();
    pair.signal(active, Signal::SIGSTOP);
    let started = || pair.runs().iter().any(|r| r.node == survivor.as_str() && r.from > t0);
    let waited = common::wait_until(PATIENCE, started);
    pair.signal(active, Signal::SIGCONT);
    assert!(waited, "the peer never started the group: {}", pair.markers());
    assert_soon(PATIENCE, "the woken node's run ended", || {
        pair.runs().iter().any(|r| r.node == active.as_str() && r.to.is_some_and(|e| e > t0))
    });
    let overlaps = pair.overlaps();
    assert_eq!(overlaps.len(), 1, "{overlaps:?} in the markers:\n{}", pair.markers());
    eprintln!("the double run: {}", overlaps[0]);
}

/// How the marker log is judged: a run is [start, stop); a millisecond of overlap shows, runs
/// that touch do not; a failed stop leaves a run open, a failed start or the test's `dead`
/// closes it; `clear_overlaps`'s time forgets only what ended before it.
#[test]
fn marker_logs_are_judged_interval_by_interval() {
    let log = "alpha start 1000000\nalpha stop 5000000\nbeta start 4999000\n";
    assert_eq!(overlaps_in(log, 0).len(), 1, "a 1 us overlap");
    assert_eq!(overlaps_in(log, 5_000_000), Vec::<String>::new(), "ended before");
    assert_eq!(overlaps_in(log, 4_999_999).len(), 1, "still lasting then");
    let touching = "alpha start 1000000\nalpha stop 5000000\nbeta start 5000000\n";
    assert_eq!(overlaps_in(touching, 0), Vec::<String>::new());
    let stuck = "alpha start 1\nalpha stop-failed 5\nbeta start 9\n";
    assert_eq!(overlaps_in(stuck, 0).len(), 1, "a failed stop keeps running");
    let failed = "alpha start 1\nalpha start-failed 2\nbeta start 9\n";
    assert_eq!(overlaps_in(failed, 0), Vec::<String>::new());
    let dead = "alpha start 1\nbeta dead 2\nalpha dead 5\nbeta start 5\n";
    assert_eq!(overlaps_in(dead, 0), Vec::<String>::new());
    assert_eq!(runs_in(dead).len(), 2, "{:?}", runs_in(dead));
    // Out of order in the file (two writers), in order in time.
    let shuffled = "beta start 9\nalpha stop 10\nalpha start 1\n";
    assert_eq!(overlaps_in(shuffled, 0).len(), 1);
}

/// A marker line without its stamp (a marker script whose clock failed) fails the test
/// instead of reading as "never ran".
#[test]
#[should_panic(expected = "malformed marker line")]
fn a_marker_without_its_stamp_fails() {
    runs_in("alpha start \n");
}
