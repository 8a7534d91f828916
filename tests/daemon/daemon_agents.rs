//! Resource agents under real daemons (issue 7), in the namespace lab: a group of
//! `ocf:heartbeat:Dummy`, an LSB init script fixture, the `hapair-test:Logged` fixture (a state
//! file, a log of every action, injectable monitor failures and hangs) and
//! `ocf:heartbeat:IPaddr2` as the VIP the client asks. Each node runs with its own
//! configuration file (the lab's nodes share one filesystem, so each node's state files get
//! their own names); the LSB fixture's pid directory follows `HAPAIR_NODE`, which every agent
//! gets.
//!
//! Shown here: the group follows the active node (state files appear and disappear), a
//! `kill -9` of the active daemon and a restart adopt the running group (no second start, the
//! client keeps being answered by the same node), a monitor failure and a monitor timeout
//! restart in place (counted in status), exhaustion hands the group over, `cleanup` resets,
//! and 1,000 monitor cycles leave neither zombies nor leaked descriptors. A SIGHUP reload whose
//! OCF agent takes 5 s to print its meta-data does not stall the node (SPEC §7.3): its peer
//! never loses it, `status` keeps answering, and the new definition is in effect afterwards
//! (also on a node that took the group meanwhile: the changed resource restarts with it);
//! a meta-data run that hangs past its timeout refuses the reload and the old definition
//! stays. Needs root and the resource-agents package (scripts/test.sh installs it).
//!
//! Not here: the agent layer alone (tests/drivers/agents_run.rs), `check`
//! (tests/pure/agents_check.rs), timing figures.

use crate::common::lab::VIP;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common;
use crate::common::lab::Node;
use crate::common::pair::{NODES, NodeExtra, Pair};
use crate::common::{TempDir, assert_soon};
use nix::sys::signal::Signal;

/// Generous: the machine may be busy building; nothing here measures time.
const PATIENCE: Duration = Duration::from_secs(40);
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/agents");

/// The test's own files (OCF root, init.d, per-node state files and logs), removed on drop.
/// Declare it before the `Pair` so that the daemons are gone first.
struct Files {
    dir: String,
    _removed_on_drop: TempDir,
}

impl Files {
    fn new(tag: char) -> Files {
        let tmp = TempDir::new(&format!("daemon-agents-{tag}"));
        let dir = tmp.path().display().to_string();
        let root = format!("{dir}/ocf");
        std::fs::create_dir_all(format!("{root}/resource.d")).unwrap();
        std::fs::create_dir_all(format!("{dir}/init.d")).unwrap();
        let hapair_test = format!("{FIXTURES}/ocf/resource.d/hapair-test");
        let links = [
            ("/usr/lib/ocf/lib", format!("{root}/lib")),
            ("/usr/lib/ocf/resource.d/heartbeat", format!("{root}/resource.d/heartbeat")),
            (&*hapair_test, format!("{root}/resource.d/hapair-test")),
        ];
        for (target, link) in links {
            std::os::unix::fs::symlink(target, link).unwrap();
        }
        // The LSB fixture keeps its pid file in $HAPAIR_LSB_STATE: one directory per node,
        // told apart by the HAPAIR_NODE every agent gets.
        for node in NODES {
            std::fs::create_dir_all(file(&dir, node, "lsb")).unwrap();
        }
        let wrapper = format!(
            "#!/bin/sh\nHAPAIR_LSB_STATE={dir}/$HAPAIR_NODE-lsb \
             exec {FIXTURES}/init.d/hapair-lsb \"$@\"\n"
        );
        let script = format!("{dir}/init.d/hapair-lsb");
        std::fs::write(&script, wrapper).unwrap();
        common::cmd(&["chmod", "755", &script]);
        Files { dir, _removed_on_drop: tmp }
    }

    /// `node`'s file `what`.
    fn of(&self, node: Node, what: &str) -> String {
        file(&self.dir, node, what)
    }
}

/// Node `node`'s file `what` in `dir`.
fn file(dir: &str, node: Node, what: &str) -> String {
    format!("{dir}/{}-{what}", node.as_str())
}

/// The lab's base configuration without its resources, monitor interval and restart limit,
/// plus `monitor_interval` and `restart_limit`, written into `files`; each node's resource
/// lines are added to its own copy (`NodeExtra`).
fn base_conf(files: &Files, monitor_interval: &str, restart_limit: &str) -> PathBuf {
    let base =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/board/lab/hapair.conf"))
            .unwrap();
    let mut conf: String = base
        .lines()
        .filter(|l| {
            !["resource ", "monitor_interval", "restart_limit"].iter().any(|p| l.starts_with(p))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    conf.push_str(&format!("monitor_interval {monitor_interval}\n"));
    conf.push_str(&format!("restart_limit {restart_limit}\n"));
    let path = PathBuf::from(format!("{}/base.conf", files.dir));
    std::fs::write(&path, conf).unwrap();
    path
}

/// A lab pair whose nodes run `resources(files, node)` (resource lines), with the test's OCF
/// root; both daemons started.
fn start(
    tag: char,
    resources: impl Fn(&Files, Node) -> String,
    monitor_interval: &str,
    restart_limit: &str,
) -> (Files, Pair) {
    let files = Files::new(tag);
    let conf = base_conf(&files, monitor_interval, restart_limit);
    let extras =
        NODES.map(|node| NodeExtra { cmdline: String::new(), conf: resources(&files, node) });
    let mut pair = Pair::prepare_with(tag, |_| conf, VIP, extras);
    for node in NODES {
        pair.set_env(node, "HAPAIR_OCF_ROOT", &format!("{}/ocf", files.dir));
        pair.set_env(node, "HAPAIR_INITD", &format!("{}/init.d", files.dir));
        pair.start(node);
    }
    (files, pair)
}

/// The full group: Dummy, the LSB fixture, Logged, and IPaddr2 as the VIP.
fn full_group(files: &Files, node: Node) -> String {
    format!(
        "resource ocf heartbeat:Dummy state={}\n\
         resource lsb hapair-lsb\n\
         resource ocf hapair-test:Logged state={} log={}\n\
         resource ocf heartbeat:IPaddr2 ip={VIP} cidr_netmask=24 nic=lan0\n",
        files.of(node, "dummy.state"),
        files.of(node, "logged.state"),
        files.of(node, "logged.log"),
    )
}

/// Only the Logged fixture and an in-process `ip` VIP.
fn logged_only(files: &Files, node: Node) -> String {
    format!(
        "resource ocf hapair-test:Logged state={} log={}\n\
         resource ip {VIP}/24 dev lan0 garp 3 garp_interval 100ms\n",
        files.of(node, "logged.state"),
        files.of(node, "logged.log"),
    )
}

/// How many times `action` is in `node`'s Logged log.
fn count(files: &Files, node: Node, action: &str) -> usize {
    let log = std::fs::read_to_string(files.of(node, "logged.log")).unwrap_or_default();
    log.lines().filter(|l| *l == action).count()
}

fn exists(files: &Files, node: Node, what: &str) -> bool {
    Path::new(&files.of(node, what)).exists()
}

/// The status entry of resource `name` on `node`.
fn resource(pair: &Pair, node: Node, name: &str) -> serde_json::Value {
    let status = pair.status(node).unwrap_or_default();
    let list = status["resources"].as_array().cloned().unwrap_or_default();
    list.into_iter().find(|r| r["name"] == name).unwrap_or_default()
}

/// SIGTERM to both daemons (they stop their resources) and wait for them to exit.
fn shut_down(pair: &mut Pair) {
    for node in [Node::Beta, Node::Alpha] {
        pair.signal(node, Signal::SIGTERM);
        assert_soon(PATIENCE, "daemon exits on SIGTERM", || pair.exited(node).is_some());
    }
}

#[test]
fn the_group_follows_the_active_node_and_a_daemon_restart_adopts_it() {
    let (files, mut pair) = start('g', full_group, "200ms", "2 in 1m");
    let (a, b) = pair.settled(PATIENCE);
    assert!(exists(&files, a, "dummy.state"), "Dummy runs on the active node");
    assert!(!exists(&files, b, "dummy.state"), "Dummy does not run on the standby node");
    assert!(exists(&files, a, "lsb/hapair-lsb.pid"), "the LSB service runs on the active node");
    assert_eq!(count(&files, a, "start"), 1);
    assert_eq!(count(&files, b, "start"), 0);

    // kill -9 of the active daemon, and a restart: the group is adopted, not started again.
    pair.clear_answers();
    let old_pid = pair.pid(a).unwrap();
    pair.signal(a, Signal::SIGKILL);
    assert_soon(PATIENCE, "the active daemon is gone", || pair.exited(a).is_some());
    pair.start(a);
    assert_ne!(pair.pid(a).unwrap(), old_pid);
    assert_soon(PATIENCE, "active again after the restart", || pair.state(a) == "active");
    assert_soon(PATIENCE, "answers after the restart", || pair.answers().len() >= 20);
    assert_eq!(count(&files, a, "start"), 1, "the restart ran no second start");
    assert!(count(&files, a, "monitor") >= 1, "the restart probed");
    assert_eq!(count(&files, b, "start"), 0, "the standby node never started the group");
    assert!(
        pair.answers().iter().all(|x| x == a.as_str()),
        "only the active node answered across the restart: {:?}",
        pair.answers()
    );
    assert_eq!(pair.state(b), "standby");
    assert!(exists(&files, a, "dummy.state"));
    let log = std::fs::read_to_string(format!("{}/{}.log", pair.lab().dir(), a.as_str())).unwrap();
    assert!(log.contains("role Init -> Active: Adopted"), "the restarted node adopted the group");

    // A planned handover: the state files move with the group, IPaddr2 moves the VIP.
    let out = pair.admin(a, &["standby"]);
    assert!(out.status.success(), "standby: {out:?}");
    assert_soon(PATIENCE, "the other node active", || pair.state(b) == "active");
    assert_soon(PATIENCE, "the client answered by the other node", || {
        pair.last_answer().as_deref() == Some(b.as_str())
    });
    assert!(!exists(&files, a, "dummy.state"), "Dummy stopped on the active node");
    assert!(exists(&files, b, "dummy.state"), "Dummy started on the new active node");
    assert!(!exists(&files, a, "lsb/hapair-lsb.pid"), "the LSB service left the old active node");
    assert!(exists(&files, b, "lsb/hapair-lsb.pid"));
    pair.assert_moved(a, b);
    shut_down(&mut pair);
    assert!(!exists(&files, b, "dummy.state"), "SIGTERM stopped the group");
}

#[test]
fn monitor_failures_restart_in_place_then_hand_over_and_cleanup_resets() {
    let (files, mut pair) = start('m', logged_only, "200ms", "2 in 1m");
    let (a, b) = pair.settled(PATIENCE);
    let state = files.of(a, "logged.state");

    // One monitor that fails (OCF_ERR_GENERIC): stop and start in place, counted.
    std::fs::write(format!("{state}.fail-once"), "").unwrap();
    assert_soon(PATIENCE, "a restart in place", || count(&files, a, "start") == 2);
    assert_soon(PATIENCE, "one failure in status", || {
        let r = resource(&pair, a, "Logged");
        r["failures"] == 1 && r["last_exit_code"] == 1
    });
    assert_eq!(pair.state(a), "active");

    // One monitor that hangs: the meta-data's 1 s monitor timeout kills it; restart again.
    std::fs::write(format!("{state}.hang-once"), "").unwrap();
    assert_soon(PATIENCE, "a second restart in place", || count(&files, a, "start") == 3);
    assert_soon(PATIENCE, "two failures in status", || {
        resource(&pair, a, "Logged")["failures"] == 2
    });
    assert!(
        resource(&pair, a, "Logged")["last_error"].as_str().unwrap_or("").contains("tim"),
        "the hang reads as a timeout: {}",
        resource(&pair, a, "Logged")
    );
    assert_eq!(pair.state(a), "active");

    // Failing for good: past `restart_limit 2 in 1m` the group goes to the other node.
    std::fs::write(format!("{state}.fail"), "").unwrap();
    assert_soon(PATIENCE, "the other node active", || pair.state(b) == "active");
    assert_soon(PATIENCE, "the client answered by the other node", || {
        pair.last_answer().as_deref() == Some(b.as_str())
    });
    assert!(exists(&files, b, "logged.state"));
    let r = resource(&pair, a, "Logged");
    assert_eq!(r["failures"], 3, "{r}");
    assert_eq!(r["last_exit_code"], 1, "{r}");

    // cleanup resets the counts and the last exit code.
    std::fs::remove_file(format!("{state}.fail")).unwrap();
    let out = pair.admin(a, &["cleanup", "Logged"]);
    assert!(out.status.success(), "cleanup: {out:?}");
    let r = resource(&pair, a, "Logged");
    assert_eq!(
        (r["failures"].clone(), r["last_exit_code"].clone()),
        (0.into(), serde_json::Value::Null),
        "{r}"
    );
    assert_eq!(r["last_error"], "", "{r}");
    assert_eq!(pair.state(a), "standby");
    shut_down(&mut pair);
}

/// Open descriptors of `pid`.
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// The smallest of 50 samples of `f`, 5 ms apart (sampling, not waiting for anything).
fn fewest(mut f: impl FnMut() -> usize) -> usize {
    (0..50)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(5));
            f()
        })
        .min()
        .unwrap_or(usize::MAX)
}

/// Zombie processes whose parent is `pid`.
fn zombies_of(pid: u32) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // pid (comm) STATE PPID ...: comm may hold spaces, so split after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { continue };
        let mut fields = rest.split_whitespace();
        let (state, ppid) = (fields.next(), fields.next());
        if state == Some("Z") && ppid == Some(&*pid.to_string()) {
            found.push(stat);
        }
    }
    found
}

#[test]
fn a_thousand_monitor_cycles_leave_no_zombie_and_no_leaked_descriptor() {
    let (files, mut pair) = start('z', logged_only, "10ms", "2 in 1m");
    let (a, b) = pair.settled(PATIENCE);
    let pid = pair.pid(a).unwrap();
    let start = count(&files, a, "monitor");
    assert_soon(PATIENCE, "a few monitor cycles", || count(&files, a, "monitor") > start + 20);
    // An agent child may be running at any one sample (its pipe open; a zombie for the moment
    // between its exit and the loop's reap): the fewest over many samples is the baseline.
    let before = fewest(|| fds(pid));
    let first = count(&files, a, "monitor");
    assert_soon(Duration::from_secs(180), "1,000 monitor cycles", || {
        count(&files, a, "monitor") >= first + 1000
    });
    // A leak of one per cycle would show as a thousand; a busy machine may keep one agent
    // child (three descriptors, one zombie) in every sample.
    let after = fewest(|| fds(pid));
    assert!(after <= before + 3, "descriptors: {before} before, {after} after 1,000 cycles");
    let zombies = fewest(|| zombies_of(pid).len());
    assert!(zombies <= 1, "zombie children of the daemon: {:?}", zombies_of(pid));
    println!("after 1,000 monitor cycles: descriptors {before} -> {after}, zombies {zombies}");
    assert_eq!((pair.state(a), pair.state(b)), ("active".into(), "standby".into()));
    assert_eq!(resource(&pair, a, "Logged")["failures"], 0);
    shut_down(&mut pair);
}

#[test]
fn every_ocf_code_of_a_failed_monitor_restarts_in_place_and_shows_in_status() {
    let (files, mut pair) = start('c', logged_only, "200ms", "9 in 1m");
    let (a, b) = pair.settled(PATIENCE);
    let state = files.of(a, "logged.state");
    let codes = [
        (1, "OCF_ERR_GENERIC"),
        (2, "OCF_ERR_ARGS"),
        (3, "OCF_ERR_UNIMPLEMENTED"),
        (5, "OCF_ERR_INSTALLED"),
        (6, "OCF_ERR_CONFIGURED"),
        (7, "not running"),
    ];
    for (n, (code, meaning)) in codes.into_iter().enumerate() {
        std::fs::write(format!("{state}.code-once"), code.to_string()).unwrap();
        assert_soon(PATIENCE, &format!("monitor exit {code} in status"), || {
            let r = resource(&pair, a, "Logged");
            r["failures"] == n + 1
                && r["last_exit_code"] == code
                && r["last_error"].as_str().is_some_and(|e| e.contains(meaning))
        });
        assert_soon(PATIENCE, "restarted in place", || {
            count(&files, a, "start") == n + 2 && pair.state(a) == "active"
        });
    }
    assert_eq!(pair.state(b), "standby");
    shut_down(&mut pair);
}

/// Frames `node` received from its peer, over all links.
fn frames_rx(pair: &Pair, node: Node) -> u64 {
    let status = pair.status(node).unwrap_or_default();
    let links = status["peer"]["links"].as_array().cloned().unwrap_or_default();
    links.iter().filter_map(|l| l["frames_rx"].as_u64()).sum()
}

/// A stop that fails leaves the node `failed` and holding: without a fence configured the
/// peer never starts the group (nothing runs twice), and the service stays where it is.
/// `cleanup` retries the stop; once it succeeds the pair runs the group again.
#[test]
fn a_failed_stop_leaves_the_node_failed_and_the_peer_starts_nothing() {
    let (files, mut pair) = start('s', logged_only, "200ms", "2 in 1m");
    let (a, b) = pair.settled(PATIENCE);
    let state = files.of(a, "logged.state");
    std::fs::write(format!("{state}.stop-fails"), "").unwrap();
    let out = pair.admin(a, &["standby"]);
    assert!(out.status.success(), "standby: {out:?}");
    assert_soon(PATIENCE, "the active node failed", || pair.state(a) == "failed");
    let r = resource(&pair, a, "Logged");
    assert_eq!((r["failures"].clone(), r["last_exit_code"].clone()), (1.into(), 1.into()), "{r}");
    assert!(r["last_error"].as_str().is_some_and(|e| e.starts_with("Stop")), "{r}");
    // The peer holds off for as long as we look: ~30 heartbeats on each of the 3 links
    // (deadtime is 5).
    let stop_at = count(&files, a, "stop");
    let first = frames_rx(&pair, b);
    assert_soon(PATIENCE, "90 more frames heard by the peer", || frames_rx(&pair, b) > first + 90);
    assert_eq!(count(&files, a, "stop"), stop_at);
    assert_eq!(pair.state(b), "standby");
    assert_eq!(count(&files, b, "start"), 0, "the peer started nothing");
    assert!(exists(&files, a, "logged.state"));

    std::fs::remove_file(format!("{state}.stop-fails")).unwrap();
    let out = pair.admin(a, &["cleanup"]);
    assert!(out.status.success(), "cleanup: {out:?}");
    assert_soon(PATIENCE, "the group runs again on one node", || {
        let (sa, sb) = (pair.state(a), pair.state(b));
        (sa == "active" && sb == "standby") || (sa == "standby" && sb == "active")
    });
    assert!(!exists(&files, a, "logged.state") || pair.state(a) == "active");
    assert_eq!(pair.overlaps(), Vec::<String>::new(), "the group ran on both nodes");
    shut_down(&mut pair);
}

/// `node`'s daemon log so far.
fn log_of(pair: &Pair, node: Node) -> String {
    std::fs::read_to_string(format!("{}/{}.log", pair.lab().dir(), node.as_str()))
        .unwrap_or_default()
}

/// Replaces `from` with `to` in `node`'s own configuration file and sends it SIGHUP.
fn reload_with(pair: &Pair, node: Node, from: &str, to: &str) {
    let path = pair.conf_of(node).to_owned();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{from:?} not in {}", path.display());
    std::fs::write(&path, text.replace(from, to)).unwrap();
    pair.signal(node, Signal::SIGHUP);
}

/// Samples both nodes until `node`'s log contains `done`: every `hapair status` of `node`
/// answers within `STATUS_BOUND`, its peer always sees it alive, and neither changes state.
/// Returns the samples taken.
fn unstalled_until(pair: &Pair, node: Node, peer: Node, done: &str) -> usize {
    /// Generous: a status round trip takes milliseconds; a stalled loop takes seconds.
    const STATUS_BOUND: Duration = Duration::from_millis(2500);
    #[allow(clippy::disallowed_methods)] // tests read the wall clock
    let until = std::time::Instant::now() + Duration::from_secs(60);
    let mut samples = 0;
    while !log_of(pair, node).contains(done) {
        #[allow(clippy::disallowed_methods)]
        let t0 = std::time::Instant::now();
        assert!(t0 < until, "no {done:?} in {}'s log", node.as_str());
        let status = pair.status(node);
        let took = t0.elapsed();
        assert!(took < STATUS_BOUND, "status of {} took {took:?}", node.as_str());
        let status = status.unwrap_or_else(|| panic!("{} does not answer", node.as_str()));
        assert_eq!(status["state"], "standby", "{status}");
        let seen = pair.status(peer).unwrap_or_default();
        assert_eq!(seen["state"], "active", "{seen}");
        assert_eq!(seen["peer"]["alive"], true, "the peer lost {}: {seen}", node.as_str());
        samples += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    samples
}

/// SPEC §7.3: a reload never blocks the loop. The standby node reloads a changed OCF resource
/// whose agent takes 5 s to print its meta-data: meanwhile it keeps beating (its peer never
/// sees it dead, nothing fails over) and answers `status`; then the new definition is in
/// effect (a handover starts the agent with the new state file). A meta-data run that hangs
/// past the 20 s action timeout refuses the reload: the old definition stays.
#[test]
fn a_reload_waits_for_slow_meta_data_without_stalling_and_refuses_a_hung_one() {
    let (files, mut pair) = start('r', logged_only, "200ms", "2 in 1m");
    let (a, b) = pair.settled(PATIENCE);
    let old = format!("state={}", files.of(b, "logged.state"));
    let new = format!("state={} meta_delay=5", files.of(b, "logged-new.state"));
    #[allow(clippy::disallowed_methods)]
    let t0 = std::time::Instant::now();
    reload_with(&pair, b, &old, &new);
    // A second SIGHUP while the first waits: it is applied after it (nothing left to change).
    assert_soon(PATIENCE, "the reload waits", || log_of(&pair, b).contains("wait for the meta"));
    pair.signal(b, Signal::SIGHUP);
    let samples = unstalled_until(&pair, b, a, "reload: applied resources");
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(4500), "the meta-data took 5 s, not {took:?}");
    assert!(samples >= 10, "only {samples} samples while the meta-data was read");
    let log = log_of(&pair, b);
    assert!(log.contains("wait for the meta-data of Logged"), "{log}");
    assert!(log.contains("the last one still waits for meta-data; this one follows"), "{log}");
    assert_soon(PATIENCE, "the deferred reload ran", || {
        let log = log_of(&pair, b);
        let applied = log.find("reload: applied resources").unwrap_or(usize::MAX);
        log.rfind("reload: configuration unchanged").is_some_and(|at| at > applied)
    });
    println!("reload with a 5 s meta-data: {samples} samples, applied after {took:?}");

    // The new definition is in effect: the group moves to b, whose agent uses the new file.
    let out = pair.admin(a, &["standby"]);
    assert!(out.status.success(), "standby: {out:?}");
    assert_soon(PATIENCE, "b active", || pair.state(b) == "active");
    assert!(exists(&files, b, "logged-new.state"), "the reloaded state file is used");
    assert!(!exists(&files, b, "logged.state"));

    // A meta-data run that hangs: a (now standby) refuses the reload after the timeout, and
    // keeps beating meanwhile.
    let old = format!("state={}", files.of(a, "logged.state"));
    let hung = format!("state={} meta_delay=600", files.of(a, "logged-hung.state"));
    #[allow(clippy::disallowed_methods)]
    let t0 = std::time::Instant::now();
    reload_with(&pair, a, &old, &hung);
    let refused = "reload: resources refused, the old ones stay";
    let samples = unstalled_until(&pair, a, b, refused);
    let took = t0.elapsed();
    let log = log_of(&pair, a);
    let line = log.lines().find(|l| l.contains(refused)).unwrap_or_default();
    assert!(line.contains("resource Logged") && line.contains("timed out"), "{line}");
    assert!(samples >= 20, "only {samples} samples during the hung meta-data");
    assert!(took >= Duration::from_secs(19), "refused after {took:?}, before the 20 s timeout");
    println!("reload with a hung meta-data: {samples} samples, refused after {took:?}: {line}");
    // The old definition stays: the group moves back to a, whose agent uses the old file.
    let out = pair.admin(a, &["online"]);
    assert!(out.status.success(), "online: {out:?}");
    let out = pair.admin(b, &["standby"]);
    assert!(out.status.success(), "standby: {out:?}");
    assert_soon(PATIENCE, "a active again", || pair.state(a) == "active");
    assert!(exists(&files, a, "logged.state"), "the old state file is used");
    assert!(!exists(&files, a, "logged-hung.state"));

    // The node takes the group while its meta-data is read: once it is in, the new
    // definition applies under the running group (SPEC §1): Logged, changed, is stopped with
    // its old definition and started with its new one; the node stays active.
    let out = pair.admin(b, &["online"]);
    assert!(out.status.success(), "online: {out:?}");
    let log_before = log_of(&pair, b).len();
    let (starts, stops) = (count(&files, b, "start"), count(&files, b, "stop"));
    reload_with(&pair, b, "meta_delay=5", "meta_delay=3");
    assert_soon(PATIENCE, "b's reload waits", || {
        log_of(&pair, b)[log_before..].contains("wait for the meta-data of Logged")
    });
    let out = pair.admin(a, &["standby"]);
    assert!(out.status.success(), "standby: {out:?}");
    assert_soon(PATIENCE, "b active during the reload", || pair.state(b) == "active");
    assert_soon(PATIENCE, "b applies the new definition", || {
        log_of(&pair, b)[log_before..].contains("reload: applied resources")
    });
    // Started by the handover, then once more with the new definition after one stop.
    assert_soon(PATIENCE, "Logged started again", || count(&files, b, "start") == starts + 2);
    assert_eq!(count(&files, b, "stop"), stops + 1, "Logged stopped once, with the old definition");
    assert_eq!(pair.state(b), "active");
    assert!(exists(&files, b, "logged-new.state"), "b runs Logged");
    shut_down(&mut pair);
}

/// The `notify` commands `node`'s daemon started that still run (their pid files are in
/// `dir/notify-pids`; each execs `sleep 600`, which survives our SIGTERM).
fn live_notifies(dir: &str, node: Node) -> Vec<i32> {
    let prefix = format!("{}.", node.as_str());
    let Ok(entries) = std::fs::read_dir(format!("{dir}/notify-pids")) else { return Vec::new() };
    let mut pids = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(&prefix).and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let zombie = stat.rsplit(')').next().is_some_and(|r| r.trim_start().starts_with('Z'));
        if cmdline == b"sleep\x00600\x00" && !zombie {
            pids.push(pid);
        }
    }
    pids
}

/// Kills, by pid, the notify commands of both nodes still running when the test ends.
struct NotifyReaper(String);

impl Drop for NotifyReaper {
    fn drop(&mut self) {
        for node in NODES {
            for pid in live_notifies(&self.0, node) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}

/// SPEC §7.3: resource actions and fencing always find a child slot. Notify commands that
/// hang take at most `NOTIFY_CHILDREN_MAX` slots (the next notifies are dropped and
/// counted); with that share full, the survivor of a dead peer still runs its fence command
/// (which counts the hung notifies when it runs) and starts the group.
#[test]
fn hung_notify_commands_leave_fencing_and_resource_actions_their_slots() {
    use hapair::limits::notify_children_max;
    // One group: its gate admits 6 and 3.
    const NOTIFY_CHILDREN_MAX: usize = notify_children_max(1);
    let files = Files::new('n');
    let dir = files.dir.clone();
    std::fs::create_dir_all(format!("{dir}/notify-pids")).unwrap();
    let _reaper = NotifyReaper(dir.clone());
    let notify = format!("{dir}/notify");
    std::fs::write(
        &notify,
        format!(
            "#!/bin/sh\n# EVENT NODE DETAIL: note it, then hang past our SIGTERM\n\
             echo \"$1\" >> {dir}/$2-notify.log\necho $$ > {dir}/notify-pids/$2.$$\n\
             trap '' TERM\nexec sleep 600\n"
        ),
    )
    .unwrap();
    // The survivor is the node that is not HAPAIR_PEER; it records how many of its
    // notify commands run as it fences.
    let fence = format!("{dir}/fence");
    std::fs::write(
        &fence,
        format!(
            "#!/bin/sh\ncat > /dev/null\n\
             if [ \"$HAPAIR_PEER\" = alpha ]; then me=beta; else me=alpha; fi\nn=0\n\
             for f in {dir}/notify-pids/$me.*; do p=${{f##*.}}\n\
               if [ \"$(tr '\\0' ' ' < /proc/$p/cmdline 2>/dev/null)\" = 'sleep 600 ' ] && \
                  ! grep -q ') Z' /proc/$p/stat 2>/dev/null; then n=$((n+1)); fi\n\
             done\necho $n > {dir}/fenced-by-$me\n"
        ),
    )
    .unwrap();
    common::cmd(&["chmod", "755", &notify, &fence]);
    let conf = base_conf(&files, "200ms", "2 in 1m");
    let extras = NODES.map(|node| NodeExtra {
        cmdline: String::new(),
        conf: format!("{}notify {notify}\nfence {fence}\n", logged_only(&files, node)),
    });
    let mut pair = Pair::prepare_with('n', |_| conf, VIP, extras);
    for node in NODES {
        pair.set_env(node, "HAPAIR_OCF_ROOT", &format!("{dir}/ocf"));
        pair.start(node);
    }
    let (a, b) = pair.settled(PATIENCE);
    // Maintenance on and off on the standby node: two notifies a time, more than its share.
    for _ in 0..NOTIFY_CHILDREN_MAX {
        for mode in ["on", "off"] {
            let out = pair.admin(b, &["maintenance", mode]);
            assert!(out.status.success(), "maintenance {mode}: {out:?}");
            let running = live_notifies(&dir, b).len();
            assert!(running <= NOTIFY_CHILDREN_MAX, "{running} notify commands run at once");
        }
    }
    assert_soon(PATIENCE, "b back in standby", || pair.state(b) == "standby");
    assert_soon(PATIENCE, "b's notify share full", || {
        live_notifies(&dir, b).len() == NOTIFY_CHILDREN_MAX
    });
    let log = log_of(&pair, b);
    assert!(log.contains("dropped: notify commands still running"), "{log}");

    // a dies: b fences it and starts the group, every notify slot still taken.
    pair.kill_and_cut(a);
    assert_soon(PATIENCE, "b active", || pair.state(b) == "active");
    let fenced = std::fs::read_to_string(format!("{dir}/fenced-by-{}", b.as_str()));
    let fenced = fenced.unwrap_or_else(|e| panic!("the fence command did not run: {e}"));
    assert_eq!(fenced.trim(), NOTIFY_CHILDREN_MAX.to_string(), "hung notifies as b fenced");
    assert!(exists(&files, b, "logged.state"), "the survivor started Logged");
    assert!(live_notifies(&dir, b).len() <= NOTIFY_CHILDREN_MAX);
    // And a stop: SIGTERM stops the group (the hung notifies still run) before b exits.
    assert!(!live_notifies(&dir, b).is_empty(), "the notify share is still taken");
    pair.signal(b, Signal::SIGTERM);
    assert_soon(PATIENCE, "b exits on SIGTERM", || pair.exited(b).is_some());
    assert!(!exists(&files, b, "logged.state"), "the stop ran");
    assert_eq!(count(&files, b, "stop"), 1);
}

/// SPEC §7.3: a child's exec never blocks the loop, and its failure is the action's result.
/// A fence command that does not exist fails each attempt (the survivor stays `fencing`,
/// never active: nothing runs twice), a notify script that is not executable fails, and the
/// node answers `status` all along.
#[test]
fn a_command_that_cannot_be_executed_fails_as_its_action() {
    let files = Files::new('x');
    let dir = files.dir.clone();
    let notify = format!("{dir}/notify-not-executable");
    std::fs::write(&notify, "#!/bin/sh\nexit 0\n").unwrap();
    let conf = base_conf(&files, "200ms", "2 in 1m");
    let extras = NODES.map(|node| NodeExtra {
        cmdline: String::new(),
        conf: format!(
            "{}notify {notify}\nfence {dir}/no-such-fence-agent --ip=192.0.2.31\n",
            logged_only(&files, node)
        ),
    });
    let mut pair = Pair::prepare_with('x', |_| conf, VIP, extras);
    for node in NODES {
        pair.set_env(node, "HAPAIR_OCF_ROOT", &format!("{dir}/ocf"));
        pair.start(node);
    }
    let (a, b) = pair.settled(PATIENCE);
    pair.kill_and_cut(a);
    assert_soon(PATIENCE, "two failed fence attempts", || {
        log_of(&pair, b).matches("fence command failed: could not be executed").count() >= 2
    });
    let log = log_of(&pair, b);
    assert!(log.contains("could not be executed: No such file or directory"), "{log}");
    assert!(log.contains("notify command: could not be executed: Permission denied"), "{log}");
    let status = pair.status(b).unwrap_or_else(|| panic!("b does not answer"));
    assert_eq!(status["state"], "standby", "fencing reads as standby: {status}");
    assert!(!exists(&files, b, "logged.state"), "no fence, no takeover");
    pair.signal(b, Signal::SIGTERM);
    assert_soon(PATIENCE, "b exits on SIGTERM", || pair.exited(b).is_some());
}
