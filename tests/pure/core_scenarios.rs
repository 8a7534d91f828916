//! Scenario tests of the failover core with exact expected timelines (issue 4): each table
//! lists every role change of both nodes, in milliseconds, in a quiet simulated world
//! (`Config::scripted`: 5 ms one-way delay, 100 ms per resource action, 500 ms per fence,
//! keepalive 100 ms, deadtime 500 ms, initdead 1 s, two resources, node 0 is home).
//! A node acts on its peer's frames only once the peer echoes its challenge (frame v2's
//! freshness handshake): at a start that is one round trip, 10 ms, after the first frame.

#[path = "../sim/world.rs"]
mod world;

use hapair::core::time::Duration;
use hapair::core::{Admin, FenceMode, Reason, Role};
use world::{Config, Happening, World};

use Reason as R;
use Role::{Active, Fencing, Standby, Starting};

const STOPPING_STANDBY: Role = Role::Stopping { floor: 0, then: hapair::core::AfterStop::Standby };
const STOPPING_HANDOVER: Role =
    Role::Stopping { floor: 0, then: hapair::core::AfterStop::HandOver };
const STOPPING_RESTART: Role = Role::Stopping { floor: 0, then: hapair::core::AfterStop::Restart };
const STOPPING_GIVEUP: Role = Role::Stopping { floor: 0, then: hapair::core::AfterStop::GiveUp };
const STOPPING_EXIT: Role = Role::Stopping { floor: 0, then: hapair::core::AfterStop::Exit };

/// Runs a scripted world and compares every role change with `expected`
/// (`(ms, node, role, reason)`), printing the actual timeline when they differ.
fn check(cfg: Config, script: &[(u64, Happening)], expected: &[(u64, usize, Role, Reason)]) {
    let mut w = World::new(cfg, true);
    for (at, h) in script {
        w.at(*at, *h);
    }
    let result = w.run();
    let actual: Vec<_> = w.changes.iter().map(|c| (c.at_ms, c.node, c.role, c.reason)).collect();
    if result.is_err() || actual != expected {
        println!("{}", w.trace.as_deref().unwrap_or(""));
        for a in &actual {
            println!("        {a:?},");
        }
    }
    assert_eq!(result, Ok(()));
    assert_eq!(actual, expected);
}

fn cfg(fence: FenceMode, secs: u64) -> Config {
    let mut c = Config::scripted(fence);
    c.duration = Duration::from_secs(secs);
    c
}

/// Both boot at 0; their first frames (5 ms) teach each the other's challenge, which the
/// answers echo (10 ms): then they hear each other. The home node arbitrates once the peer's
/// frame says it hears the home node too (one more one-way trip), and starts.
#[test]
fn cold_start_of_both_elects_home() {
    check(
        cfg(FenceMode::External, 3),
        &[],
        &[
            (10, 0, Standby, R::PeerHeard),
            (10, 1, Standby, R::PeerHeard),
            (15, 0, Starting, R::Elected),
            (215, 0, Active, R::Started),
        ],
    );
}

/// The peer never boots: initdead (1 s), then the fence (500 ms), then two starts.
#[test]
fn cold_start_alone_waits_initdead_then_fences() {
    let mut c = cfg(FenceMode::External, 3);
    c.second_boot = Duration::MAX;
    check(
        c,
        &[],
        &[
            (1000, 0, Fencing, R::PeerDead),
            (1500, 0, Starting, R::Fenced),
            (1700, 0, Active, R::Started),
        ],
    );
}

/// `standby` on the active node: two stops, `Release`, and the peer starts 5 ms later.
#[test]
fn planned_handover_starts_on_release_not_deadtime() {
    check(
        cfg(FenceMode::External, 4),
        &[(2000, Happening::Admin(0, Admin::Standby))],
        &[
            (10, 0, Standby, R::PeerHeard),
            (10, 1, Standby, R::PeerHeard),
            (15, 0, Starting, R::Elected),
            (215, 0, Active, R::Started),
            (2000, 0, STOPPING_HANDOVER, R::AdminStandby),
            (2200, 0, Standby, R::Stopped),
            (2205, 1, Starting, R::Granted),
            (2405, 1, Active, R::Started),
        ],
    );
}

/// Node 0 crashes at 2 s: its last frame arrives at 1.920 s, deadtime: dead at 2.420 s,
/// the fence takes 500 ms. Node 0 is back at 3 s; with auto_failback the group returns home
/// as soon as node 1 finished starting it.
#[test]
fn failback_with_auto_failback_on() {
    let mut c = cfg(FenceMode::External, 8);
    c.groups[0].auto_failback = true;
    check(
        c,
        &[(2000, Happening::Crash(0, Duration::from_millis(1000)))],
        &[
            (10, 0, Standby, R::PeerHeard),
            (10, 1, Standby, R::PeerHeard),
            (15, 0, Starting, R::Elected),
            (215, 0, Active, R::Started),
            (2420, 1, Fencing, R::PeerDead),
            (2920, 1, Starting, R::Fenced),
            (3010, 0, Standby, R::PeerHeard),
            (3120, 1, STOPPING_HANDOVER, R::Failback),
            (3320, 1, Standby, R::Stopped),
            (3325, 0, Starting, R::Granted),
            (3525, 0, Active, R::Started),
        ],
    );
}

/// The same crash without auto_failback: the group stays where it runs.
#[test]
fn no_failback_with_auto_failback_off() {
    let c = cfg(FenceMode::External, 8);
    check(
        c,
        &[(2000, Happening::Crash(0, Duration::from_millis(1000)))],
        &[
            (10, 0, Standby, R::PeerHeard),
            (10, 1, Standby, R::PeerHeard),
            (15, 0, Starting, R::Elected),
            (215, 0, Active, R::Started),
            (2420, 1, Fencing, R::PeerDead),
            (2920, 1, Starting, R::Fenced),
            (3010, 0, Standby, R::PeerHeard),
            (3120, 1, Active, R::Started),
        ],
    );
}

/// A total partition from 2 s to 5 s without fencing: node 1 takes over at deadtime; after
/// the heal one round trip shows the overlap and the non-home node releases.
#[test]
fn both_active_after_heal_non_home_releases() {
    let mut script = Vec::new();
    for link in 0..3 {
        for from in 0..2 {
            script.push((2000, Happening::Cut { link, from, cut: true }));
            script.push((5000, Happening::Cut { link, from, cut: false }));
        }
    }
    check(
        cfg(FenceMode::None, 7),
        &script,
        &[
            (10, 0, Standby, R::PeerHeard),
            (10, 1, Standby, R::PeerHeard),
            (15, 0, Starting, R::Elected),
            (215, 0, Active, R::Started),
            (2420, 1, Fencing, R::PeerDead),
            (2420, 1, Starting, R::FenceWaitOver),
            (2620, 1, Active, R::Started),
            (5030, 1, STOPPING_STANDBY, R::SplitBrain),
            (5230, 1, Standby, R::Stopped),
        ],
    );
}

/// restart_limit 2: a broken resource whose starts keep failing is restarted twice in place;
/// the third failure hands the group to the healthy peer.
#[test]
fn restart_limit_exhaustion_hands_over() {
    let script = [(1500, Happening::StartsFail(0, true)), (1500, Happening::Break(0, 0))];
    check(
        cfg(FenceMode::External, 6),
        &script,
        &[
            (10, 0, Standby, R::PeerHeard),
            (10, 1, Standby, R::PeerHeard),
            (15, 0, Starting, R::Elected),
            (215, 0, Active, R::Started),
            (2515, 0, STOPPING_RESTART, R::Restart),
            (2715, 0, Starting, R::Restart),
            (2815, 0, STOPPING_RESTART, R::Restart),
            (2915, 0, Starting, R::Restart),
            (3015, 0, STOPPING_GIVEUP, R::RestartsExhausted),
            (3115, 0, Standby, R::Stopped),
            (3120, 1, Starting, R::Granted),
            (3320, 1, Active, R::Started),
        ],
    );
}

/// The active node hangs at 2 s (its 2 s watchdog resets it at 4 s). The survivor enters
/// Fencing at 2.420 s and waits W + M = 2 s + (500 + 2 x 200 + 2 x 100) ms = 3.1 s.
#[test]
fn peer_hang_with_watchdog_fencing() {
    let script = [(2000, Happening::Hang(0, Duration::from_secs(10)))];
    check(
        cfg(FenceMode::Watchdog, 9),
        &script,
        &[
            (10, 0, Standby, R::PeerHeard),
            (10, 1, Standby, R::PeerHeard),
            (15, 0, Starting, R::Elected),
            (215, 0, Active, R::Started),
            (2420, 1, Fencing, R::PeerDead),
            (5520, 1, Starting, R::FenceWaitOver),
            (5720, 1, Active, R::Started),
            (6010, 0, Standby, R::PeerHeard),
        ],
    );
}

/// `kill -9` of the active daemon and a restart at once: its probes find both resources
/// running, it says it may hold them, and it keeps them (no start, no stop) as soon as it
/// hears the standby peer hear it. The standby peer never starts anything. (The peer takes
/// the new run for a restart once the old one has been quiet for a send interval and a
/// keepalive: a peer runs one run at a time, so until then it could be a recording; its
/// acceptance moves the peer's challenge on, and the restarted node answers that at once, as
/// it may twice a keepalive.)
#[test]
fn daemon_restart_on_the_active_node_adopts_the_group() {
    check(
        cfg(FenceMode::External, 3),
        &[(1000, Happening::Restart(0))],
        &[
            (10, 0, Standby, R::PeerHeard),
            (10, 1, Standby, R::PeerHeard),
            (15, 0, Starting, R::Elected),
            (215, 0, Active, R::Started),
            (1025, 0, Active, R::Adopted),
        ],
    );
}

/// A restart of the standby daemon: its probes find nothing; the active node is untouched.
#[test]
fn daemon_restart_on_the_standby_node_changes_nothing() {
    check(
        cfg(FenceMode::External, 3),
        &[(1000, Happening::Restart(1))],
        &[
            (10, 0, Standby, R::PeerHeard),
            (10, 1, Standby, R::PeerHeard),
            (15, 0, Starting, R::Elected),
            (215, 0, Active, R::Started),
            (1030, 1, Standby, R::PeerHeard),
        ],
    );
}

/// Fence watchdog, and node 0 (home, active) runs without an armed watchdog (a broken or older
/// peer: it advertises timeout 0). It hangs at 2 s for 20 s and nothing can reset it, so node 1
/// must never take it over by waiting (SPEC §7.3): not in this run, and not after its own
/// daemon restarts at 2.1 s (its statedir remembers what node 0 advertised). Node 1 never
/// enters `Fencing`; the hung node keeps the group, and still runs it when it wakes at 22 s.
#[test]
fn a_peer_without_an_armed_watchdog_is_never_taken_over_by_waiting() {
    let mut c = cfg(FenceMode::Watchdog, 30);
    c.unarmed = Some(0);
    let script =
        [(2000, Happening::Hang(0, Duration::from_secs(20))), (2100, Happening::Restart(1))];
    check(
        c,
        &script,
        &[
            (10, 0, Standby, R::PeerHeard),
            (10, 1, Standby, R::PeerHeard),
            (15, 0, Starting, R::Elected),
            (215, 0, Active, R::Started),
            (3100, 1, Standby, R::InitDeadExpired),
        ],
    );
}

/// The same node 0, stopped with SIGTERM at 2 s: it stops the group and says `Leaving`, and
/// node 1 takes over at once, no fencing needed. (Node 0's machine reboots 2 s after its
/// exit and comes back standby.)
#[test]
fn a_peer_without_an_armed_watchdog_that_leaves_is_taken_over_at_once() {
    let mut c = cfg(FenceMode::Watchdog, 6);
    c.unarmed = Some(0);
    check(
        c,
        &[(2000, Happening::Shutdown(0))],
        &[
            (10, 0, Standby, R::PeerHeard),
            (10, 1, Standby, R::PeerHeard),
            (15, 0, Starting, R::Elected),
            (215, 0, Active, R::Started),
            (2000, 0, STOPPING_EXIT, R::Shutdown),
            (2205, 1, Starting, R::PeerLeft),
            (2405, 1, Active, R::Started),
            (4210, 0, Standby, R::PeerHeard),
        ],
    );
}

/// The active node's watchdog fails at 1 s (a pet cannot be written): the loop reports
/// `Health::WATCHDOG`, and the node hands the group to its healthy peer before the reset.
#[test]
fn a_failing_watchdog_hands_the_group_to_the_healthy_peer() {
    check(
        cfg(FenceMode::Watchdog, 3),
        &[(1000, Happening::Health(0, hapair::wire::Health(hapair::wire::Health::WATCHDOG)))],
        &[
            (10, 0, Standby, R::PeerHeard),
            (10, 1, Standby, R::PeerHeard),
            (15, 0, Starting, R::Elected),
            (215, 0, Active, R::Started),
            (1000, 0, STOPPING_HANDOVER, R::Health),
            (1200, 0, Standby, R::Stopped),
            (1205, 1, Starting, R::Granted),
            (1405, 1, Active, R::Started),
        ],
    );
}

/// SIGTERM on the active node whose stop fails: under fence watchdog it stays, holding and
/// self-fencing. An operator's cleanup before the reset stops what is left: the shutdown is
/// still asked for, so the node then exits (and says so, so the peer takes over at once); it
/// never lingers as a standby that may not run. (It stayed a standby forever: SIM seed
/// 287427, L1.)
#[test]
fn a_shutdown_whose_stop_failed_exits_after_cleanup() {
    let script = [
        (1000, Happening::StopFails(0)),
        (1000, Happening::Shutdown(0)),
        (1300, Happening::Admin(0, Admin::Cleanup(None))),
    ];
    check(
        cfg(FenceMode::Watchdog, 3),
        &script,
        &[
            (10, 0, Standby, R::PeerHeard),
            (10, 1, Standby, R::PeerHeard),
            (15, 0, Starting, R::Elected),
            (215, 0, Active, R::Started),
            (1000, 0, STOPPING_EXIT, R::Shutdown),
            (1100, 0, Role::Failed { holding: true }, R::StopFailed),
            (1300, 0, STOPPING_EXIT, R::Cleanup),
            (1505, 1, Starting, R::PeerLeft),
            (1705, 1, Active, R::Started),
        ],
    );
}
