//! End to end: two real `hapair run` daemons in the namespace lab (scripts/lab.sh), linked by
//! the pty null-modem, the crossover (ucast) and the service LAN (bcast), running an `ip`
//! resource and an `exec` resource whose start and stop commands log wall-clock stamps to a
//! marker file per node (`$HAPAIR_NODE`), and a notify script that logs every event.
//!
//! Each test has its own lab (`Lab::up`: tag letter, pid and count), its files in the lab's
//! directory, torn down on drop, also when it fails (then the daemons' logs are printed). Waits are
//! conditions with generous deadlines; the only time comparisons are orderings of stamps, "before
//! deadtime" with a 3 s deadtime where a handover takes a fraction of a second, and a loose bound
//! on the takeover after a kill (deadtime + 1 s of start + 2 s of slack).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use crate::common;
use crate::common::daemon::wall_ns;
use crate::common::lab::Node;
use crate::common::pair::{Pair, START, STEP, Setup};
use crate::common::{assert_soon, wait_until};
use nix::sys::signal::Signal;

const ALPHA: usize = 0;
const BETA: usize = 1;

/// A started pair: alpha (home) active, beta standby and hearing it.
fn running_pair(tag: char, setup: &Setup) -> Pair {
    let mut pair = Pair::new(tag, setup);
    pair.start_both();
    pair.settle();
    pair
}

fn link<'a>(status: &'a serde_json::Value, medium: &str) -> &'a serde_json::Value {
    let links = status["peer"]["links"].as_array().expect("links array");
    links
        .iter()
        .find(|l| l["medium"].as_str().is_some_and(|m| m.starts_with(medium)))
        .unwrap_or_else(|| panic!("no {medium} link in {status}"))
}

fn all_links_up(pair: &Pair, i: usize) -> bool {
    let Some(s) = pair.status(i) else { return false };
    ["serial", "ucast", "bcast"].iter().all(|m| link(&s, m)["up"] == true)
}

/// Every field SPEC §5 names, with its JSON type.
fn assert_spec_fields(s: &serde_json::Value) {
    let has = |v: &serde_json::Value, keys: &[&str], what: &str| {
        for k in keys {
            assert!(v.get(k).is_some(), "status has no {what}{k}: {s}");
        }
    };
    has(s, &["node", "state", "role_since_ms", "peer", "resources", "health", "counters"], "");
    assert!(s["node"].is_string() && s["state"].is_string() && s["role_since_ms"].is_u64());
    has(&s["peer"], &["name", "alive", "state", "links"], "peer.");
    for l in s["peer"]["links"].as_array().expect("links") {
        has(l, &["medium", "up", "last_heard_ms", "frames_rx", "frames_lost"], "link.");
    }
    let resources = s["resources"].as_array().expect("resources");
    assert_eq!(resources.len(), 2, "ip and exec resources: {s}");
    for r in resources {
        has(r, &["name", "kind", "state", "failures"], "resource.");
    }
    has(&s["health"], &["ok", "reasons", "sensors", "raid", "ping", "watchdog"], "health.");
    let counters = [
        "auth_failures",
        "replays",
        "malformed",
        "crc_errors",
        "late_heartbeats",
        "failovers",
        "handovers",
    ];
    has(&s["counters"], &counters, "counters.");
    for c in counters {
        assert!(s["counters"][c].is_u64(), "counter {c} is a number: {s}");
    }
}

#[test]
fn kill_9_of_the_active_fails_over_and_the_markers_do_not_overlap() {
    let mut pair = running_pair('k', &Setup::default());
    let s = pair.status(ALPHA).expect("alpha answers");
    assert_spec_fields(&s);
    assert_eq!(s["peer"]["name"], "beta");
    assert_eq!(s["peer"]["state"], "standby");
    assert!(s["health"]["ok"] == true, "alpha healthy: {s}");
    assert_eq!(s["health"]["ping"][0]["reachable"], true, "the client answers ping: {s}");
    assert_soon(STEP, "all three links up on alpha", || all_links_up(&pair, ALPHA));
    // The ping node's first answer is not late: no health change at start on either node.
    for i in [ALPHA, BETA] {
        assert!(pair.notified(i, "health").is_empty(), "health flapped at start");
    }

    let killed_at = wall_ns();
    pair.signal(ALPHA, Signal::SIGKILL);
    assert!(pair.nodes[ALPHA].wait_exit(STEP).is_some(), "alpha gone after SIGKILL");
    pair.wait_state(BETA, "active", STEP);

    let alpha_starts = pair.marks(ALPHA, "start");
    let beta_starts = pair.marks(BETA, "start");
    assert!(!alpha_starts.is_empty() && !beta_starts.is_empty(), "both started once");
    assert!(alpha_starts.iter().all(|&t| t < killed_at), "alpha started after its death");
    assert!(beta_starts.iter().all(|&t| t > killed_at), "beta started while alpha lived");
    let s = pair.status(BETA).expect("beta answers");
    assert_eq!(s["peer"]["alive"], false);
    assert_eq!(s["counters"]["failovers"], 1, "one failover: {s}");
    let took_ms = (beta_starts[0] - killed_at) / 1_000_000;
    eprintln!("kill -9 -> beta start: {took_ms} ms");
    // Loose, from the configuration: deadtime, 1 s for the group's start, 2 s of slack for a
    // noisy machine. A takeover ten times too slow fails.
    let deadtime_ms: u128 = Setup::default()
        .timings
        .lines()
        .find_map(|l| l.strip_prefix("deadtime ")?.strip_suffix("ms")?.parse().ok())
        .expect("Setup::default() sets deadtime in ms");
    let bound_ms = deadtime_ms + 1_000 + 2_000;
    assert!(took_ms <= bound_ms, "beta started {took_ms} ms after the kill, bound {bound_ms} ms");
    // The socket file is still there, nobody listens: "not running", exit 3.
    assert_eq!(pair.admin(ALPHA, &["status"]).status.code(), Some(3));

    // Alpha comes back over its stale socket file: it joins as standby (auto_failback off)
    // and beta keeps the group.
    pair.start(ALPHA);
    pair.wait_state(ALPHA, "standby", START);
    assert_soon(STEP, "beta sees alpha again", || {
        pair.status(BETA).is_some_and(|s| s["peer"]["alive"] == true)
    });
    assert_eq!(pair.state(BETA), "active");
    assert_eq!(pair.marks(ALPHA, "start").len(), alpha_starts.len(), "alpha started again");
    assert_eq!(pair.marks(BETA, "stop").len(), 0, "beta stopped the group");
}

#[test]
fn sigterm_of_the_active_hands_over_without_waiting_for_deadtime() {
    let deadtime_ns = 3_000_000_000;
    let setup = Setup { timings: "keepalive 100ms\ndeadtime 3s\ninitdead 6s", ..Setup::default() };
    let mut pair = running_pair('t', &setup);

    let term_at = wall_ns();
    pair.signal(ALPHA, Signal::SIGTERM);
    pair.wait_state(BETA, "active", STEP);
    assert_eq!(pair.nodes[ALPHA].wait_exit(STEP), Some(0), "graceful exit code");

    let alpha_stops = pair.marks(ALPHA, "stop");
    let beta_starts = pair.marks(BETA, "start");
    let (Some(&stopped), Some(&started)) = (alpha_stops.last(), beta_starts.first()) else {
        panic!("alpha stopped {alpha_stops:?}, beta started {beta_starts:?}");
    };
    assert!(stopped > term_at && started > stopped, "beta started before alpha stopped");
    assert!(
        started - term_at < deadtime_ns,
        "beta took over {} ms after SIGTERM, not before deadtime",
        (started - term_at) / 1_000_000
    );
    eprintln!("SIGTERM -> beta start: {} ms", (started - term_at) / 1_000_000);
    assert_eq!(pair.admin(ALPHA, &["status"]).status.code(), Some(3), "alpha not running");
}

/// Nodes that disagree on a directive both must share (here `restart_limit`) still pair up,
/// and each says so: a warning in its log and `config_match: false` in status.
#[test]
fn a_peer_with_another_configuration_is_named_in_status_and_log() {
    let setup = Setup { children: false, ..Setup::default() };
    let mut pair = Pair::new('c', &setup);
    let text = std::fs::read_to_string(&pair.conf).unwrap();
    let other = text.replace("restart_limit 2 in 1m", "restart_limit 3 in 1m");
    assert_ne!(other, text, "the restart_limit line was found");
    let conf2 = pair.dir.join("beta.conf");
    std::fs::write(&conf2, other).unwrap();
    pair.start(ALPHA);
    pair.start_with_conf(BETA, &conf2);
    assert_soon(START, "both see the peer alive", || {
        (0..2).all(|i| pair.status(i).is_some_and(|s| s["peer"]["alive"] == true))
    });
    for i in [ALPHA, BETA] {
        assert_soon(STEP, "config_match false", || {
            pair.status(i).is_some_and(|s| s["peer"]["config_match"] == false)
        });
        assert!(pair.log(i).contains("the peer runs another configuration"), "{}", pair.log(i));
    }
}

/// A reload that changes the resources in force changes the digest the node's heartbeats
/// carry (the resources are in it): beta, standby, reloads another `garp` count and both
/// nodes show `config_match: false`; alpha, active, reloads the same and both agree again.
#[test]
fn a_reload_of_the_resources_changes_the_digest_the_heartbeats_carry() {
    let setup = Setup { children: false, ..Setup::default() };
    let mut pair = Pair::new('g', &setup);
    let text = std::fs::read_to_string(&pair.conf).unwrap();
    let changed = text.replace("garp 2 garp_interval", "garp 3 garp_interval");
    assert_ne!(changed, text, "the ip resource's garp was found");
    let confs = [pair.dir.join("alpha.conf"), pair.dir.join("beta.conf")];
    for conf in &confs {
        std::fs::write(conf, &text).unwrap();
    }
    pair.start_with_conf(ALPHA, &confs[ALPHA]);
    pair.wait_state(ALPHA, "active", START);
    pair.start_with_conf(BETA, &confs[BETA]);
    pair.wait_state(BETA, "standby", STEP);
    let config_match = |want: bool| {
        (0..2).all(|i| {
            pair.status(i)
                .is_some_and(|s| s["peer"]["alive"] == true && s["peer"]["config_match"] == want)
        })
    };
    assert_soon(STEP, "both alive, the same configuration", || config_match(true));
    for (node, matching) in [(BETA, false), (ALPHA, true)] {
        std::fs::write(&confs[node], &changed).unwrap();
        pair.signal(node, Signal::SIGHUP);
        assert_soon(
            STEP,
            &format!("config_match {matching} after a reload of node {node}"),
            || config_match(matching),
        );
    }
    assert!(pair.log(BETA).contains("the peer runs another configuration"), "{}", pair.log(BETA));
    assert!(pair.log(ALPHA).contains("matches ours again"), "{}", pair.log(ALPHA));
    assert_eq!(pair.state(ALPHA), "active");
}

/// Bytes waiting in the pipe behind `fd` (FIONREAD).
fn pipe_queued(fd: &std::os::fd::OwnedFd) -> usize {
    use std::os::fd::AsRawFd;
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int into `n`; `fd` is an open pipe end we own.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n) };
    assert_eq!(r, 0, "FIONREAD");
    usize::try_from(n).unwrap_or(0)
}

/// alpha logs every frame (trace) into a one-page pipe that nobody reads: once the pipe is
/// full its records are dropped, not waited for, so it keeps sending heartbeats (beta keeps
/// counting its frames and never fails over) and answering status; when the pipe is read
/// again, the next record comes after a line that counts the dropped ones. With a plain
/// write(2) alpha would stop at the first record that finds the pipe full.
#[test]
fn a_log_that_nobody_reads_does_not_stop_the_heartbeats() {
    let setup = Setup { children: false, ..Setup::default() };
    let mut pair = Pair::new('l', &setup);
    let (reader, writer) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    nix::fcntl::fcntl(&reader, nix::fcntl::FcntlArg::F_SETPIPE_SZ(4096)).unwrap();
    pair.start_with_stderr(ALPHA, std::process::Stdio::from(writer), "trace");
    pair.start(BETA);
    pair.wait_state(ALPHA, "active", START);
    pair.wait_state(BETA, "standby", STEP);
    assert_soon(STEP, "alpha's log pipe full", || pipe_queued(&reader) >= 4096 - 256);
    let frames = |i| pair.status(i).map_or(0, |s| link(&s, "ucast")["frames_rx"].as_u64().unwrap());
    let before = frames(BETA);
    assert_soon(STEP, "30 more frames from alpha with its log pipe full", || {
        frames(BETA) >= before + 30
    });
    assert!(pipe_queued(&reader) >= 4096 - 256, "the pipe stayed full meanwhile");
    for i in [ALPHA, BETA] {
        let s = pair.status(i).expect("answers with its log pipe full");
        assert_eq!(s["counters"]["failovers"], 0, "{s}");
    }
    assert_eq!(pair.state(ALPHA), "active");

    let mut text = String::new();
    assert_soon(STEP, "the dropped-records line", || {
        let mut buf = vec![0; pipe_queued(&reader)];
        let n = nix::unistd::read(&reader, &mut buf).unwrap();
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
        text.contains("log records dropped or cut short: the log output had no room")
    });
}

/// Both daemons frozen at once for four deadtimes (SIGSTOP, as a hypervisor that takes the
/// whole machine away): neither takes the other for dead, and neither holds its own stall
/// against the ping node (the window would otherwise have lapsed: "health 0x0000 -> ...").
#[test]
fn a_stall_of_both_nodes_is_neither_a_dead_peer_nor_a_lost_ping_node() {
    let setup = Setup { children: false, ..Setup::default() };
    let pair = running_pair('z', &setup);
    assert_soon(STEP, "the ping node answered both", || {
        (0..2).all(|i| pair.status(i).is_some_and(|s| s["health"]["ok"] == true))
    });
    let logged = [ALPHA, BETA].map(|i| pair.log(i).len());
    // Standby first, active last, and back in the reverse order: should this thread be
    // held up between two signals, the node left running is the active one, which keeps
    // the group whatever it concludes about its peer.
    for i in [BETA, ALPHA] {
        pair.signal(i, Signal::SIGSTOP);
    }
    std::thread::sleep(Duration::from_secs(2));
    for i in [ALPHA, BETA] {
        pair.signal(i, Signal::SIGCONT);
    }
    let frames = |i| pair.status(i).map_or(0, |s| link(&s, "ucast")["frames_rx"].as_u64().unwrap());
    let before = frames(BETA);
    assert_soon(STEP, "10 more frames after the stall", || frames(BETA) >= before + 10);
    for i in [ALPHA, BETA] {
        let log = pair.log(i);
        let new = &log[logged[i]..];
        assert!(new.contains("stalled from"), "the stall was seen: {new}");
        assert!(!new.contains("health 0x0000 -> "), "health changed over a stall: {new}");
        let s = pair.status(i).expect("answers");
        assert_eq!(s["counters"]["failovers"], 0, "{s}");
        assert_eq!(s["counters"]["handovers"], 0, "{s}");
    }
    assert_eq!(pair.state(ALPHA), "active");
    assert_eq!(pair.state(BETA), "standby");
}

/// The `polls N` figure of the newest SIGUSR1 stats line in `log`.
fn polls_in(log: &str) -> Option<u64> {
    let line = log.lines().rev().find(|l| l.contains("stats: "))?;
    line.split_whitespace().skip_while(|w| *w != "polls").nth(1)?.parse().ok()
}

/// Asks node `i` for its stats line (SIGUSR1) and returns its poll(2) count.
fn polls(pair: &Pair, i: usize) -> u64 {
    let before = pair.log(i).matches("stats: ").count();
    pair.signal(i, Signal::SIGUSR1);
    assert_soon(STEP, "the stats line", || pair.log(i).matches("stats: ").count() > before);
    polls_in(&pair.log(i)).expect("a polls figure in the stats line")
}

/// A running pair with three links and a ping node: every link, parked or not, keeps
/// counting frames and stays up, and the loop stays near three poll(2) calls per keepalive
/// (measured 3.0 to 3.5 at 100 ms; 3.9 to 4.2 when our own broadcasts still reached it). The
/// bound only catches a loop that spins or polls per frame several times over; the socket
/// filter is proven in drivers_udp, and what parking saves shows at 10 and 20 ms in
/// scripts/bench-footprint (wakes and CPU), not here.
#[test]
fn three_links_are_all_read_at_a_few_polls_per_keepalive() {
    let setup = Setup { children: false, ..Setup::default() };
    let pair = running_pair('w', &setup);
    assert_soon(STEP, "all links up on both", || {
        all_links_up(&pair, ALPHA) && all_links_up(&pair, BETA)
    });
    let frames = |s: &serde_json::Value, m: &str| link(s, m)["frames_rx"].as_u64().unwrap_or(0);
    let before = [ALPHA, BETA].map(|i| polls(&pair, i));
    let rx_before = pair.status(BETA).expect("beta answers");
    #[allow(clippy::disallowed_methods)]
    let t0 = std::time::Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    let after = [ALPHA, BETA].map(|i| polls(&pair, i));
    #[allow(clippy::disallowed_methods)]
    let keepalives = t0.elapsed().as_millis() as f64 / 100.0;
    let rx_after = pair.status(BETA).expect("beta answers");
    for i in [ALPHA, BETA] {
        let per_keepalive = (after[i] - before[i]) as f64 / keepalives;
        eprintln!("node {i}: {per_keepalive:.2} polls per keepalive");
        assert!(per_keepalive < 6.0, "node {i}: {per_keepalive:.2} polls per keepalive");
    }
    for m in ["serial", "ucast", "bcast"] {
        let got = frames(&rx_after, m) - frames(&rx_before, m);
        // 5 s of 100 ms beats (the serial line may pace itself slower): every link read.
        assert!(got >= 10, "{m}: only {got} frames read in 5 s");
        assert_eq!(link(&rx_after, m)["up"], true, "{m} up: {rx_after}");
    }
}

#[test]
fn a_serial_cut_changes_only_that_link_and_sighup_reloads_or_refuses() {
    let pair = running_pair('s', &Setup::default());
    assert_soon(STEP, "all links up on both", || {
        all_links_up(&pair, ALPHA) && all_links_up(&pair, BETA)
    });

    pair.lab().cut("serial", Node::Alpha);
    assert_soon(STEP, "serial link down on both", || {
        (0..2).all(|i| pair.status(i).is_some_and(|s| link(&s, "serial")["up"] == false))
    });
    for (i, state) in [(ALPHA, "active"), (BETA, "standby")] {
        let s = pair.status(i).expect("answers");
        assert_eq!(s["state"], state, "state unchanged by the cut: {s}");
        assert_eq!(s["peer"]["alive"], true);
        assert!(link(&s, "ucast")["up"] == true && link(&s, "bcast")["up"] == true, "{s}");
    }
    assert_soon(STEP, "the reopen error in status", || {
        pair.status(ALPHA).is_some_and(|s| link(&s, "serial")["error"] != "")
    });
    pair.lab().restore("serial", Node::Alpha);
    assert_soon(STEP, "serial back up on both", || {
        (0..2).all(|i| pair.status(i).is_some_and(|s| link(&s, "serial")["up"] == true))
    });

    // A bad file: refused, the daemon runs on with the old configuration.
    let good = std::fs::read_to_string(&pair.conf).unwrap();
    std::fs::write(&pair.conf, format!("{good}no_such_directive 1\n")).unwrap();
    pair.signal(ALPHA, Signal::SIGHUP);
    assert_soon(STEP, "the refusal in alpha's log", || pair.log(ALPHA).contains("reload refused"));
    let s = pair.socket_status(ALPHA).expect("alpha still answers");
    assert_eq!(s["state"], "active", "still active after the refused reload");
    // A good file with a new notify command: applied in place.
    let notify2 = pair.dir.join("notify2");
    std::fs::copy(pair.dir.join("notify"), &notify2).unwrap();
    let changed = good.replace(&format!("notify {}/notify\n", pair.dir.display()), "");
    assert_ne!(changed, good, "the notify line was found");
    std::fs::write(&pair.conf, format!("{changed}notify {}\n", notify2.display())).unwrap();
    pair.signal(ALPHA, Signal::SIGHUP);
    assert_soon(STEP, "the reload applied", || pair.log(ALPHA).contains("reload: applied"));
    assert_eq!(pair.state(ALPHA), "active");
    assert_eq!(pair.marks(ALPHA, "start").len(), 1, "the resources were not restarted");
    assert_eq!(pair.marks(ALPHA, "stop").len(), 0, "the resources were not stopped");
}

#[test]
fn standby_takeover_and_maintenance_behave_as_the_spec_says() {
    let pair = running_pair('a', &Setup::default());

    pair.admin_ok(ALPHA, &["standby"]);
    pair.wait_state(BETA, "active", STEP);
    pair.wait_state(ALPHA, "standby", STEP);
    let stopped = *pair.marks(ALPHA, "stop").last().expect("alpha stopped");
    let started = *pair.marks(BETA, "start").first().expect("beta started");
    assert!(started > stopped, "handover overlap: beta started before alpha stopped");

    // Leaving standby does not take the group back (no flapping).
    pair.admin_ok(ALPHA, &["online"]);
    let frames = |i| pair.status(i).map_or(0, |s| link(&s, "ucast")["frames_rx"].as_u64().unwrap());
    let before = frames(BETA);
    assert_soon(STEP, "beta hears alpha online for 2 s", || frames(BETA) >= before + 20);
    assert_eq!(pair.state(BETA), "active", "online moved the group");

    pair.admin_ok(ALPHA, &["takeover"]);
    pair.wait_state(ALPHA, "active", STEP);
    pair.wait_state(BETA, "standby", STEP);
    let stopped = *pair.marks(BETA, "stop").last().expect("beta stopped");
    let started = *pair.marks(ALPHA, "start").last().expect("alpha started again");
    assert!(started > stopped, "takeover overlap: alpha started before beta stopped");

    // Maintenance: nothing is started, stopped or monitored; heartbeats go on.
    pair.admin_ok(ALPHA, &["maintenance", "on"]);
    pair.wait_state(ALPHA, "maintenance", STEP);
    let starts = pair.marks(ALPHA, "start").len();
    std::fs::remove_file(pair.dir.join("alpha.running")).expect("alpha's resource ran");
    let before = frames(BETA);
    // 40 heartbeats at 100 ms: four monitor intervals would have passed.
    assert_soon(STEP, "beta keeps hearing alpha", || frames(BETA) >= before + 40);
    assert_eq!(pair.marks(ALPHA, "start").len(), starts, "maintenance restarted a resource");
    assert_eq!(pair.state(ALPHA), "maintenance");
    assert_eq!(pair.state(BETA), "standby", "the peer did not take over");
    let s = pair.status(BETA).expect("beta answers");
    assert_eq!(s["peer"]["state"], "maintenance", "beta sees alpha in maintenance");

    // Leaving maintenance: monitoring resumes, finds the resource gone and restarts it.
    pair.admin_ok(ALPHA, &["maintenance", "off"]);
    assert_soon(STEP, "alpha out of maintenance", || {
        let s = pair.state(ALPHA);
        !s.is_empty() && s != "maintenance"
    });
    assert_soon(STEP, "the resource restarted", || {
        pair.marks(ALPHA, "start").len() > starts && pair.state(ALPHA) == "active"
    });
    assert!(wait_until(STEP, || pair.dir.join("alpha.running").exists()));
}

#[test]
fn a_failing_monitor_restarts_in_place_then_hands_over_and_cleanup_forgets() {
    let pair = running_pair('r', &Setup::default());
    let running = pair.dir.join("alpha.running");
    let web = |i: usize| -> serde_json::Value {
        let s = pair.status(i).expect("answers");
        s["resources"].as_array().expect("resources")[1].clone()
    };
    // restart_limit 2 in 1m: two failures are restarted in place.
    for restart in 1..=2 {
        let starts = pair.marks(ALPHA, "start").len();
        std::fs::remove_file(&running).expect("the resource runs");
        assert_soon(STEP, "a restart in place", || {
            pair.marks(ALPHA, "start").len() > starts && running.exists()
        });
        assert_eq!(pair.state(ALPHA), "active", "restart {restart} in place");
        assert_eq!(pair.state(BETA), "standby");
    }
    assert_soon(STEP, "two failures counted", || web(ALPHA)["failures"] == 2);
    // The third is past the limit: the group goes to the healthy peer.
    std::fs::remove_file(&running).expect("the resource runs");
    pair.wait_state(BETA, "active", STEP);
    assert_soon(STEP, "alpha gave the group up", || {
        matches!(pair.state(ALPHA).as_str(), "standby" | "failed")
    });
    // The dead exec resource needs no stop; the address moved.
    let has_vip = |node| {
        let out =
            common::exec_in(pair.lab().ns(node), &["ip", "-br", "addr", "show", "dev", "lan0"]);
        String::from_utf8_lossy(&out.stdout).contains("192.0.2.100/")
    };
    assert_soon(STEP, "the VIP on beta only", || has_vip(Node::Beta) && !has_vip(Node::Alpha));

    pair.admin_ok(ALPHA, &["cleanup"]);
    assert_soon(STEP, "cleanup forgot the failures", || web(ALPHA)["failures"] == 0);
    assert_soon(STEP, "alpha healthy again", || {
        pair.status(ALPHA).is_some_and(|s| s["health"]["ok"] == true)
    });
    assert_eq!(pair.state(BETA), "active", "no failback after cleanup");
}
