//! The kernel's error counters as a health source (SPEC §7.6), end to end: two real
//! `hapair run` daemons in the namespace lab (tests/common/pair.rs), each with its own fake
//! sysfs tree shaped like the kernel's (`ROOT/devices/system/edac/mc/mc0/ce_count`, ...,
//! `ROOT/class/net/IF/statistics/rx_errors`, ...) named by an `errors ... root` line of its
//! own config. The active node's corrected memory errors climbing past the limit hand the
//! group over to the healthy peer (a handover: no failover counted, never both running); an
//! uncorrected error does the same; a counter reset is no false alarm; a NIC whose errors
//! climb makes a node unhealthy only as its line says, and is shown in `status`; NIC errors
//! on the crossover are reported on its link and leave the node healthy unless its line says
//! `report node`; a reload keeps an unchanged source's window. And the
//! reads and judging allocate nothing once set up.
//!
//! Needs root (CI is root). Not here: the judging details (`health::errors` unit tests) and
//! timing figures: every wait polls a condition with a generous deadline.

mod common;

use common::lab::VIP;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::alloc::{self, Counting};
use common::lab::Node;
use common::pair::{NODES, NodeExtra, Pair};
use common::{assert_soon, wait_until};
use nix::sys::signal::Signal;

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Generous: the machine may be busy building; nothing here measures time.
const PATIENCE: Duration = Duration::from_secs(40);
/// How long a decision not to move is watched: several health samples (2 s apart).
const HOLD: Duration = Duration::from_secs(7);
const CONF: &str = "hapair.conf";

/// A scratch directory for one test, removed on drop (also when the test fails).
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir = std::env::temp_dir()
            .join(format!("hapair-health-errors-{}-{test}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        Scratch(dir)
    }

    /// The fake sysfs root of `node`.
    fn sys(&self, node: Node) -> PathBuf {
        self.0.join(format!("{}.sys", node.as_str()))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn put(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap_or_else(|e| panic!("{e}"));
    fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// One EDAC memory controller as drivers/edac/edac_mc_sysfs.c lays it out (the attributes
/// hapair reads and their neighbours), with `ce` corrected errors and none uncorrected.
fn fake_edac(root: &Path, ce: u64) {
    let mc = root.join("devices/system/edac/mc");
    put(&mc.join("power/control"), "auto\n");
    let mc0 = mc.join("mc0");
    for (file, text) in [
        ("mc_name", "Skylake Socket#0 IMC#0\n"),
        ("size_mb", "16384\n"),
        ("seconds_since_reset", "1234\n"),
        ("ce_noinfo_count", "0\n"),
        ("ue_noinfo_count", "0\n"),
        ("ue_count", "0\n"),
        ("max_location", "memory 3 \n"),
        ("dimm0/dimm_ce_count", "0\n"),
        ("dimm0/dimm_ue_count", "0\n"),
        ("dimm0/size", "16384\n"),
    ] {
        put(&mc0.join(file), text);
    }
    put(&mc0.join("ce_count"), &format!("{ce}\n"));
}

/// An interface's statistics as net/core/net-sysfs.c lays them out.
fn fake_nic(root: &Path, iface: &str, rx_errors: u64) {
    let stats = root.join("class/net").join(iface).join("statistics");
    for file in [
        "rx_packets",
        "tx_packets",
        "tx_errors",
        "rx_crc_errors",
        "rx_frame_errors",
        "rx_length_errors",
        "rx_over_errors",
        "rx_fifo_errors",
        "rx_missed_errors",
        "tx_carrier_errors",
    ] {
        put(&stats.join(file), "0\n");
    }
    put(&stats.join("rx_errors"), &format!("{rx_errors}\n"));
}

fn set(root: &Path, rel: &str, value: u64) {
    put(&root.join(rel), &format!("{value}\n"));
}

const CE: &str = "devices/system/edac/mc/mc0/ce_count";
const UE: &str = "devices/system/edac/mc/mc0/ue_count";

/// Each node gets `lines(root)` appended to its own config, `root` its fake sysfs.
fn extras(scratch: &Scratch, lines: impl Fn(&Path) -> String) -> [NodeExtra; 2] {
    NODES.map(|node| NodeExtra { cmdline: String::new(), conf: lines(&scratch.sys(node)) })
}

/// Waits until alpha (the home node) is active, beta standby, the client answered by alpha
/// and both healthy; returns (active, standby).
fn settled(pair: &Pair) -> (Node, Node) {
    assert_soon(PATIENCE, "alpha active, beta standby", || {
        pair.state(Node::Alpha) == "active" && pair.state(Node::Beta) == "standby"
    });
    assert_soon(PATIENCE, "the client answered by alpha at the VIP", || {
        pair.last_answer().as_deref() == Some("alpha")
    });
    for node in NODES {
        assert_eq!(pair.health(node).0, Some(true), "{node:?} healthy before the fault");
    }
    (Node::Alpha, Node::Beta)
}

/// After a fault on the active `victim`: the group handed over to `survivor`
/// (`Pair::assert_handed_over`), and counted as a handover, no failover on either node.
fn hands_over(pair: &Pair, victim: Node, survivor: Node, why: &str) {
    pair.assert_handed_over(victim, survivor, why, PATIENCE);
    let mut handovers = 0;
    for node in NODES {
        let s = pair.status(node).unwrap_or_else(|| panic!("{node:?} status"));
        assert_eq!(s["counters"]["failovers"], 0, "{node:?}: a handover, not a failover: {s}");
        handovers += s["counters"]["handovers"].as_u64().unwrap_or(0);
    }
    assert!(handovers >= 1, "a handover counted");
}

/// `node`'s `health.errors` entries.
fn errors_of(pair: &Pair, node: Node) -> Vec<serde_json::Value> {
    let s = pair.status(node).unwrap_or_else(|| panic!("{node:?} status"));
    s["health"]["errors"].as_array().cloned().unwrap_or_default()
}

/// Watches `node` for `HOLD`: it stays healthy and active.
fn stays_active_and_healthy(pair: &Pair, node: Node) {
    let left =
        wait_until(HOLD, || pair.health(node).0 != Some(true) || pair.state(node) != "active");
    let (ok, reasons) = pair.health(node);
    assert!(!left, "{node:?} left: {} healthy {ok:?} {reasons:?}", pair.state(node));
}

#[test]
fn corrected_memory_errors_past_the_limit_hand_the_group_over_and_back() {
    let scratch = Scratch::new("ce");
    for node in NODES {
        fake_edac(&scratch.sys(node), 17);
    }
    let lines = |root: &Path| format!("errors edac max 3 in 15s root {}", root.display());
    let pair = Pair::board_with('c', CONF, VIP, extras(&scratch, lines));
    let (active, standby) = settled(&pair);
    let sys = scratch.sys(active);
    // Within the limit; the 17 from before start never count.
    set(&sys, CE, 19);
    assert_soon(PATIENCE, "2 corrected errors in the window", || {
        errors_of(&pair, active).first().is_some_and(|e| e["rate"] == 2)
    });
    stays_active_and_healthy(&pair, active);
    set(&sys, CE, 23);
    hands_over(&pair, active, standby, "errors edac: over 3 in 15s");
    let e = &errors_of(&pair, active)[0];
    assert_eq!((&e["kind"], &e["name"], &e["count"]), (&"edac".into(), &"".into(), &23.into()));
    assert_eq!((&e["limit"], &e["state"]), (&3.into(), &"over-limit".into()));
    assert!(e["rate"].as_u64().is_some_and(|r| r >= 4), "{e}");
    // The human and Prometheus forms show it too.
    let human = pair.admin(active, &["status"]);
    let human = String::from_utf8_lossy(&human.stdout);
    assert!(human.contains("errors edac") && human.contains("over-limit"), "{human}");
    let prom = pair.admin(active, &["status", "--prometheus"]);
    let prom = String::from_utf8_lossy(&prom.stdout);
    assert!(prom.contains("hapair_errors_total{kind=\"edac\",name=\"\"} 6"), "{prom}");
    assert!(prom.contains("hapair_errors_ok{kind=\"edac\",name=\"\"} 0"), "{prom}");
    // Once the window has passed the errors the node is healthy again; with auto_failback
    // off the group stays where it is, until the new active's own errors send it back.
    assert_soon(PATIENCE, "the old active healthy again once the window passed", || {
        pair.health(active).0 == Some(true)
    });
    assert_eq!(pair.state(standby), "active", "auto_failback off: the group stays");
    set(&scratch.sys(standby), CE, 21);
    hands_over(&pair, standby, active, "errors edac: over 3 in 15s");
}

#[test]
fn an_uncorrected_memory_error_hands_the_group_over() {
    let scratch = Scratch::new("ue");
    for node in NODES {
        fake_edac(&scratch.sys(node), 0);
    }
    let lines = |root: &Path| format!("errors edac root {}", root.display());
    let mut extras = extras(&scratch, lines);
    // A notify script per node that appends its arguments to `<node>.events`.
    for (node, extra) in NODES.iter().zip(&mut extras) {
        let script = scratch.0.join(format!("{}.notify", node.as_str()));
        let events = scratch.0.join(format!("{}.events", node.as_str()));
        put(&script, &format!("#!/bin/sh\necho \"$@\" >> {}\n", events.display()));
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        extra.cmdline = format!("hapair.notify={}", script.display());
    }
    let pair = Pair::board_with('u', CONF, VIP, extras);
    let (active, standby) = settled(&pair);
    set(&scratch.sys(active), UE, 1);
    hands_over(&pair, active, standby, "errors edac: uncorrected memory error");
    assert_eq!(errors_of(&pair, active)[0]["uncorrected"], 1);
    // The `health` notify names the source.
    let events = scratch.0.join(format!("{}.events", active.as_str()));
    let want = format!("health {} unhealthy:0x0040:errors", active.as_str());
    assert_soon(PATIENCE, "a health event naming errors", || {
        fs::read_to_string(&events).is_ok_and(|t| t.lines().any(|l| l == want))
    });
}

#[test]
fn a_reload_keeps_the_window_of_an_unchanged_source() {
    let scratch = Scratch::new("reload");
    for node in NODES {
        fake_edac(&scratch.sys(node), 0);
        fake_nic(&scratch.sys(node), "eth1", 0);
    }
    let lines = |root: &Path| format!("errors edac max 3 in 1m root {}", root.display());
    let pair = Pair::board_with('l', CONF, VIP, extras(&scratch, lines));
    let (active, standby) = settled(&pair);
    set(&scratch.sys(active), CE, 4);
    hands_over(&pair, active, standby, "errors edac: over 3 in 1m");
    // Another source added by a reload: the edac line is unchanged, so is its judgement.
    let conf = pair.conf_of(active).to_path_buf();
    let mut text = fs::read_to_string(&conf).unwrap_or_else(|e| panic!("{e}"));
    let root = scratch.sys(active);
    text.push_str(&format!("errors net eth1 root {}\n", root.display()));
    fs::write(&conf, text).unwrap_or_else(|e| panic!("{e}"));
    pair.signal(active, Signal::SIGHUP);
    assert_soon(PATIENCE, "the reload applied: two sources", || {
        errors_of(&pair, active).len() == 2
    });
    let (ok, reasons) = pair.health(active);
    assert_eq!(ok, Some(false), "the reload forgot the window: {reasons:?}");
    let e = &errors_of(&pair, active)[0];
    assert_eq!((&e["rate"], &e["state"]), (&4.into(), &"over-limit".into()), "{e}");
}

#[test]
fn a_counter_reset_is_no_false_alarm() {
    let scratch = Scratch::new("reset");
    for node in NODES {
        fake_edac(&scratch.sys(node), 5000);
    }
    let lines = |root: &Path| format!("errors edac max 3 in 1m root {}", root.display());
    let pair = Pair::board_with('z', CONF, VIP, extras(&scratch, lines));
    let (active, _) = settled(&pair);
    let sys = scratch.sys(active);
    assert_soon(PATIENCE, "the baseline read", || {
        errors_of(&pair, active).first().is_some_and(|e| e["count"] == 5000)
    });
    // EDAC's reset_counters: back to 0, then two new errors. 2 is within the limit.
    set(&sys, CE, 0);
    assert_soon(PATIENCE, "the reset read", || {
        errors_of(&pair, active).first().is_some_and(|e| e["count"] == 0)
    });
    set(&sys, CE, 2);
    assert_soon(PATIENCE, "two errors after the reset", || {
        errors_of(&pair, active).first().is_some_and(|e| e["rate"] == 2)
    });
    stays_active_and_healthy(&pair, active);
}

#[test]
fn nic_errors_climbing_make_a_node_unhealthy_only_as_its_line_says() {
    let scratch = Scratch::new("nic");
    for node in NODES {
        fake_nic(&scratch.sys(node), "eth1", 0);
    }
    // The same NIC, the same errors: a generous limit on alpha, a strict one on beta.
    let lines = |root: &Path| {
        let max = if root == scratch.sys(Node::Alpha) { 1000 } else { 5 };
        format!("errors net eth1 max {max} in 1m root {}", root.display())
    };
    let pair = Pair::board_with('n', CONF, VIP, extras(&scratch, lines));
    let (active, standby) = settled(&pair);
    let stats = "class/net/eth1/statistics";
    let sys = scratch.sys(active);
    set(&sys, &format!("{stats}/rx_errors"), 40);
    set(&sys, &format!("{stats}/rx_crc_errors"), 40);
    set(&sys, &format!("{stats}/tx_errors"), 10);
    // rx_crc_errors is a part of rx_errors, not added to it: 50, not 90.
    assert_soon(PATIENCE, "50 NIC errors in the window", || {
        errors_of(&pair, active).first().is_some_and(|e| e["rate"] == 50)
    });
    let e = &errors_of(&pair, active)[0];
    assert_eq!(
        (&e["kind"], &e["name"], &e["state"]),
        (&"net".into(), &"eth1".into(), &"ok".into())
    );
    stays_active_and_healthy(&pair, active);
    // On beta the same climb is past its line's limit: unhealthy, and it takes nothing.
    let sys = scratch.sys(standby);
    set(&sys, &format!("{stats}/rx_errors"), 40);
    set(&sys, &format!("{stats}/tx_errors"), 10);
    assert_soon(PATIENCE, "the standby unhealthy: over its limit", || {
        let (ok, reasons) = pair.health(standby);
        ok == Some(false) && reasons.iter().any(|r| r == "errors net eth1: over 5 in 1m")
    });
    // The NIC vanishing there is a reason of its own.
    fs::remove_dir_all(scratch.sys(standby).join("class/net/eth1")).unwrap();
    assert_soon(PATIENCE, "the standby unhealthy: its NIC is gone", || {
        let (ok, reasons) = pair.health(standby);
        ok == Some(false) && reasons.iter().any(|r| r == "errors net eth1: device gone")
    });
    assert_eq!(pair.state(active), "active", "an unhealthy standby takes nothing");
}

/// `node`'s link whose medium starts with `medium`: its `nic_errors` (`None`: null).
fn link_nic_errors(pair: &Pair, node: Node, medium: &str) -> Option<String> {
    let s = pair.status(node).unwrap_or_else(|| panic!("{node:?} status"));
    let links = s["peer"]["links"].as_array().cloned().unwrap_or_default();
    let link = links.iter().find(|l| l["medium"].as_str().is_some_and(|m| m.starts_with(medium)));
    let link = link.unwrap_or_else(|| panic!("no link {medium} in {s}"));
    link["nic_errors"].as_str().map(str::to_string)
}

#[test]
fn nic_errors_on_the_crossover_are_the_links_and_the_node_stays_healthy() {
    let scratch = Scratch::new("xover");
    for node in NODES {
        fake_nic(&scratch.sys(node), "xover0", 0);
    }
    // The lab's crossover is xover0 (a ucast medium, no `ip` resource on it). Alpha's line
    // leaves the report to the default (the links), beta's says `report node`.
    let lines = |root: &Path| {
        let report = if root == scratch.sys(Node::Alpha) { "" } else { " report node" };
        format!("errors net xover0 max 5 in 1m root {}{report}", root.display())
    };
    let pair = Pair::board_with('x', CONF, VIP, extras(&scratch, lines));
    let (active, standby) = settled(&pair);
    let rx_errors = "class/net/xover0/statistics/rx_errors";
    set(&scratch.sys(active), rx_errors, 40);
    let want = "errors net xover0: over 5 in 1m";
    assert_soon(PATIENCE, "the crossover's link shows its NIC's errors", || {
        link_nic_errors(&pair, active, "ucast xover0").as_deref() == Some(want)
    });
    let e = &errors_of(&pair, active)[0];
    assert_eq!(
        (&e["state"], &e["report"], &e["rate"]),
        (&"over-limit".into(), &"link".into(), &40.into())
    );
    assert_eq!(
        link_nic_errors(&pair, active, "bcast lan0"),
        None,
        "the LAN's link is not concerned"
    );
    stays_active_and_healthy(&pair, active);
    let human = pair.admin(active, &["status"]);
    let human = String::from_utf8_lossy(&human.stdout);
    assert!(human.contains(&format!("    NIC: {want}")), "{human}");
    let prom = pair.admin(active, &["status", "--prometheus"]);
    let prom = String::from_utf8_lossy(&prom.stdout);
    let sample =
        prom.lines().find(|l| l.starts_with("hapair_link_nic_errors_ok{medium=\"ucast xover0"));
    assert!(sample.is_some_and(|l| l.ends_with(" 0")), "{prom}");
    // Configured to report to the node, the same climb makes beta unhealthy.
    set(&scratch.sys(standby), rx_errors, 40);
    assert_soon(PATIENCE, "the standby unhealthy: its line says report node", || {
        let (ok, reasons) = pair.health(standby);
        ok == Some(false) && reasons.iter().any(|r| r == want)
    });
    assert_eq!(link_nic_errors(&pair, standby, "ucast xover0"), None);
    assert_eq!(pair.state(active), "active", "an unhealthy standby takes nothing");
}

/// Reading and judging every kind of source, once set up, allocates nothing.
#[test]
fn reads_and_judging_allocate_nothing() {
    use hapair::config::Errors;
    use hapair::core::time::{Duration as D, Instant};
    use hapair::drivers::errors::ErrorSource;
    use hapair::health::errors::{ErrorKind, reason};
    use hapair::health::{HealthMonitor, Reasons, Source};

    let scratch = Scratch::new("alloc");
    let root = scratch.sys(Node::Alpha);
    fake_edac(&root, 0);
    fake_nic(&root, "eth1", 0);
    put(&root.join("block/sda/device/ioerr_cnt"), "0x0\n");
    let line = |kind, name: &str| Errors {
        kind,
        name: name.into(),
        max: 10,
        window: D::from_secs(60),
        root: root.clone(),
        report: None,
    };
    let mut sources = [
        ErrorSource::open(&line(ErrorKind::Edac, "")),
        ErrorSource::open(&line(ErrorKind::Net, "eth1")),
        ErrorSource::open(&line(ErrorKind::Disk, "sda")),
        ErrorSource::open(&line(ErrorKind::Disk, "sdz")),
    ];
    let mut monitor = HealthMonitor::new();
    let mut reasons = Reasons::new();
    alloc::count_this_thread(Some(0));
    let before = alloc::calls(0);
    for i in 0..100u64 {
        let now = Instant::from_millis(i * 2000);
        reasons.clear();
        for s in &mut sources {
            let v = s.read(now);
            reason(&mut reasons, s.line.kind, &s.line.name, v, s.line.max, s.line.window);
        }
        monitor.handle_report(Source::Errors, &reasons);
        let _ = monitor.poll_change();
    }
    let used = alloc::calls(0) - before;
    alloc::count_this_thread(None);
    assert_eq!(used, 0, "allocations in 100 rounds of error reads");
    assert_eq!(reasons.iter().collect::<Vec<_>>(), ["errors disk sdz: device gone"]);
    assert_eq!(sources[0].judge.count(), Some(0));
}
