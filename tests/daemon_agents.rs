//! Resource agents under real daemons (issue 7), in the namespace lab: a group of
//! `ocf:heartbeat:Dummy`, an LSB init script fixture, the `hapair-test:Logged` fixture (a state
//! file, a log of every action, injectable monitor failures and hangs) and
//! `ocf:heartbeat:IPaddr2` as the VIP the client asks. Each node runs with its own
//! configuration file (the lab's nodes share one filesystem, so each node's state files get
//! their own names) and its own init.d directory (the LSB fixture's pid file).
//!
//! Shown here: the group follows the active node (state files appear and disappear), a
//! `kill -9` of the active daemon and a restart adopt the running group (no second start, the
//! client keeps being answered by the same node), a monitor failure and a monitor timeout
//! restart in place (counted in status), exhaustion hands the group over, `cleanup` resets,
//! and 1,000 monitor cycles leave neither zombies nor leaked descriptors. Needs root and the
//! resource-agents package (scripts/test.sh installs it).
//!
//! Not here: the agent layer alone (tests/agents_run.rs), `check` (tests/agents_check.rs),
//! timing figures.

mod common;

use std::path::Path;
use std::time::Duration;

use common::assert_soon;
use common::lab::Node;
use common::pair::{NodeSetup, Pair};
use nix::sys::signal::Signal;

/// Generous: the machine may be busy building; nothing here measures time.
const PATIENCE: Duration = Duration::from_secs(40);
const VIP: &str = "192.0.2.100";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/agents");

/// An OCF root in `dir` with the real heartbeat agents and our fixtures side by side.
fn ocf_root(dir: &str) -> String {
    let root = format!("{dir}/ocf");
    if !Path::new(&root).exists() {
        std::fs::create_dir_all(format!("{root}/resource.d")).unwrap();
        let links = [
            ("/usr/lib/ocf/lib", format!("{root}/lib")),
            ("/usr/lib/ocf/resource.d/heartbeat", format!("{root}/resource.d/heartbeat")),
            (
                &*format!("{FIXTURES}/ocf/resource.d/hapair-test"),
                format!("{root}/resource.d/hapair-test"),
            ),
        ];
        for (target, link) in links {
            std::os::unix::fs::symlink(target, link).unwrap();
        }
    }
    root
}

/// The lab's base configuration without its resources, plus `resources` and
/// `monitor_interval`.
fn conf_with(resources: &str, monitor_interval: &str) -> String {
    let base =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/board/lab/hapair.conf"))
            .unwrap();
    let mut conf: String = base
        .lines()
        .filter(|l| !l.starts_with("resource ") && !l.starts_with("monitor_interval"))
        .map(|l| format!("{l}\n"))
        .collect();
    conf.push_str(resources);
    conf.push_str(&format!("monitor_interval {monitor_interval}\n"));
    conf
}

/// Node `node`'s file `what` in the lab directory.
fn file(dir: &str, node: Node, what: &str) -> String {
    format!("{dir}/{}-{what}", node.as_str())
}

/// The full group: Dummy, the LSB fixture, Logged, and IPaddr2 as the VIP.
fn full_group(dir: &str, node: Node) -> NodeSetup {
    let initd = file(dir, node, "init.d");
    let lsb_state = file(dir, node, "lsb");
    std::fs::create_dir_all(&initd).unwrap();
    std::fs::create_dir_all(&lsb_state).unwrap();
    let wrapper = format!(
        "#!/bin/sh\nHAPAIR_LSB_STATE={lsb_state} exec {FIXTURES}/init.d/hapair-lsb \"$@\"\n"
    );
    let script = format!("{initd}/hapair-lsb");
    std::fs::write(&script, wrapper).unwrap();
    common::cmd(&["chmod", "755", &script]);
    let resources = format!(
        "resource ocf heartbeat:Dummy state={}\n\
         resource lsb hapair-lsb\n\
         resource ocf hapair-test:Logged state={} log={}\n\
         resource ocf heartbeat:IPaddr2 ip={VIP} cidr_netmask=24 nic=lan0\n",
        file(dir, node, "dummy.state"),
        file(dir, node, "logged.state"),
        file(dir, node, "logged.log"),
    );
    NodeSetup {
        conf: conf_with(&resources, "200ms"),
        env: vec![("HAPAIR_OCF_ROOT".into(), ocf_root(dir)), ("HAPAIR_INITD".into(), initd)],
    }
}

/// Only the Logged fixture and an in-process `ip` VIP, monitored every `interval`.
fn logged_only(dir: &str, node: Node, interval: &str) -> NodeSetup {
    let resources = format!(
        "resource ocf hapair-test:Logged state={} log={}\n\
         resource ip {VIP}/24 dev lan0 garp 3 garp_interval 100ms\n",
        file(dir, node, "logged.state"),
        file(dir, node, "logged.log"),
    );
    NodeSetup {
        conf: conf_with(&resources, interval),
        env: vec![("HAPAIR_OCF_ROOT".into(), ocf_root(dir))],
    }
}

/// How many times `action` is in `node`'s Logged log.
fn count(pair: &Pair, node: Node, action: &str) -> usize {
    let log =
        std::fs::read_to_string(file(&pair.lab().dir(), node, "logged.log")).unwrap_or_default();
    log.lines().filter(|l| *l == action).count()
}

fn exists(pair: &Pair, node: Node, what: &str) -> bool {
    Path::new(&file(&pair.lab().dir(), node, what)).exists()
}

/// The status entry of resource `name` on `node`.
fn resource(pair: &Pair, node: Node, name: &str) -> serde_json::Value {
    let status = pair.status(node).unwrap_or_default();
    let list = status["resources"].as_array().cloned().unwrap_or_default();
    list.into_iter().find(|r| r["name"] == name).unwrap_or_default()
}

/// Waits until alpha is active and beta standby and the client is answered by alpha.
fn settled(pair: &Pair) {
    assert_soon(PATIENCE, "alpha active, beta standby", || {
        pair.state(Node::Alpha) == "active" && pair.state(Node::Beta) == "standby"
    });
    assert_soon(PATIENCE, "the client answered by alpha at the VIP", || {
        pair.last_answer().as_deref() == Some("alpha")
    });
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
    let mut pair = Pair::start_with('g', VIP, full_group);
    settled(&pair);
    assert!(exists(&pair, Node::Alpha, "dummy.state"), "Dummy runs on alpha");
    assert!(!exists(&pair, Node::Beta, "dummy.state"), "Dummy does not run on beta");
    assert!(exists(&pair, Node::Alpha, "lsb/hapair-lsb.pid"), "the LSB service runs on alpha");
    assert_eq!(count(&pair, Node::Alpha, "start"), 1);
    assert_eq!(count(&pair, Node::Beta, "start"), 0);

    // kill -9 of the active daemon, and a restart: the group is adopted, not started again.
    pair.clear_answers();
    let old_pid = pair.pid(Node::Alpha);
    pair.signal(Node::Alpha, Signal::SIGKILL);
    assert_soon(PATIENCE, "alpha's daemon is gone", || pair.exited(Node::Alpha).is_some());
    pair.start_daemon(Node::Alpha);
    assert_ne!(pair.pid(Node::Alpha), old_pid);
    assert_soon(PATIENCE, "alpha active again", || pair.state(Node::Alpha) == "active");
    assert_soon(PATIENCE, "answers after the restart", || pair.answers().len() >= 20);
    assert_eq!(count(&pair, Node::Alpha, "start"), 1, "the restart ran no second start");
    assert!(count(&pair, Node::Alpha, "monitor") >= 1, "the restart probed");
    assert_eq!(count(&pair, Node::Beta, "start"), 0, "beta never started the group");
    assert!(
        pair.answers().iter().all(|a| a == "alpha"),
        "only alpha answered across the restart: {:?}",
        pair.answers()
    );
    assert_eq!(pair.state(Node::Beta), "standby");
    assert!(exists(&pair, Node::Alpha, "dummy.state"));

    // A planned handover: the state files move with the group, IPaddr2 moves the VIP.
    let out = pair.hapair(Node::Alpha, &["standby"]);
    assert!(out.status.success(), "standby: {out:?}");
    assert_soon(PATIENCE, "beta active", || pair.state(Node::Beta) == "active");
    assert_soon(PATIENCE, "the client answered by beta", || {
        pair.last_answer().as_deref() == Some("beta")
    });
    assert!(!exists(&pair, Node::Alpha, "dummy.state"), "Dummy stopped on alpha");
    assert!(exists(&pair, Node::Beta, "dummy.state"), "Dummy started on beta");
    assert!(!exists(&pair, Node::Alpha, "lsb/hapair-lsb.pid"), "the LSB service left alpha");
    assert!(exists(&pair, Node::Beta, "lsb/hapair-lsb.pid"));
    assert!(pair.overlaps().is_empty(), "VIP on both nodes: {:?}", pair.overlaps());
    shut_down(&mut pair);
    assert!(!exists(&pair, Node::Beta, "dummy.state"), "SIGTERM stopped the group");
}

#[test]
fn monitor_failures_restart_in_place_then_hand_over_and_cleanup_resets() {
    let mut pair = Pair::start_with('m', VIP, |dir, node| logged_only(dir, node, "200ms"));
    settled(&pair);
    let state = file(&pair.lab().dir(), Node::Alpha, "logged.state");

    // One monitor that fails (OCF_ERR_GENERIC): stop and start in place, counted.
    std::fs::write(format!("{state}.fail-once"), "").unwrap();
    assert_soon(PATIENCE, "a restart in place", || count(&pair, Node::Alpha, "start") == 2);
    assert_soon(PATIENCE, "one failure in status", || {
        let r = resource(&pair, Node::Alpha, "Logged");
        r["failures"] == 1 && r["last_exit_code"] == 1
    });
    assert_eq!(pair.state(Node::Alpha), "active");

    // One monitor that hangs: the meta-data's 1 s monitor timeout kills it; restart again.
    std::fs::write(format!("{state}.hang-once"), "").unwrap();
    assert_soon(PATIENCE, "a second restart in place", || count(&pair, Node::Alpha, "start") == 3);
    assert_soon(PATIENCE, "two failures in status", || {
        resource(&pair, Node::Alpha, "Logged")["failures"] == 2
    });
    assert!(
        resource(&pair, Node::Alpha, "Logged")["last_error"].as_str().unwrap_or("").contains("tim"),
        "the hang reads as a timeout: {}",
        resource(&pair, Node::Alpha, "Logged")
    );
    assert_eq!(pair.state(Node::Alpha), "active");

    // Failing for good: past `restart_limit 2 in 1m` the group goes to beta.
    std::fs::write(format!("{state}.fail"), "").unwrap();
    assert_soon(PATIENCE, "beta active", || pair.state(Node::Beta) == "active");
    assert_soon(PATIENCE, "the client answered by beta", || {
        pair.last_answer().as_deref() == Some("beta")
    });
    assert!(exists(&pair, Node::Beta, "logged.state"));
    let r = resource(&pair, Node::Alpha, "Logged");
    assert_eq!(r["failures"], 3, "{r}");
    assert_eq!(r["last_exit_code"], 1, "{r}");

    // cleanup resets the counts and the last exit code.
    std::fs::remove_file(format!("{state}.fail")).unwrap();
    let out = pair.hapair(Node::Alpha, &["cleanup", "Logged"]);
    assert!(out.status.success(), "cleanup: {out:?}");
    let r = resource(&pair, Node::Alpha, "Logged");
    assert_eq!(
        (r["failures"].clone(), r["last_exit_code"].clone()),
        (0.into(), serde_json::Value::Null),
        "{r}"
    );
    assert_eq!(r["last_error"], "", "{r}");
    assert_eq!(pair.state(Node::Alpha), "standby");
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
    let mut pair = Pair::start_with('z', VIP, |dir, node| logged_only(dir, node, "10ms"));
    settled(&pair);
    let pid = pair.pid(Node::Alpha);
    let start = count(&pair, Node::Alpha, "monitor");
    assert_soon(PATIENCE, "a few monitor cycles", || {
        count(&pair, Node::Alpha, "monitor") > start + 20
    });
    // An agent child may be running at any one sample (its pipe open; a zombie for the moment
    // between its exit and the loop's reap): the fewest over many samples is the baseline.
    let before = fewest(|| fds(pid));
    let first = count(&pair, Node::Alpha, "monitor");
    assert_soon(Duration::from_secs(180), "1,000 monitor cycles", || {
        count(&pair, Node::Alpha, "monitor") >= first + 1000
    });
    let after = fewest(|| fds(pid));
    assert!(after <= before, "descriptors: {before} before, {after} after 1,000 cycles");
    let zombies = fewest(|| zombies_of(pid).len());
    assert_eq!(zombies, 0, "zombie children of the daemon: {:?}", zombies_of(pid));
    assert_eq!(pair.state(Node::Alpha), "active");
    assert_eq!(resource(&pair, Node::Alpha, "Logged")["failures"], 0);
    shut_down(&mut pair);
}
