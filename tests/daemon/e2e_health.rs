//! End to end, in the namespace lab (scripts/lab.sh): health on two real `hapair run`
//! daemons. On the active node a fake lm78 temp1 rising past its `max`, a degraded
//! /proc/mdstat and a lost ping node each make it hand the group over to its healthy peer
//! (the VIP moves, the client follows, the old active's `status --json` says why); a peer
//! that is itself unhealthy does not get the group; a health change is notified as a
//! `health` event; and the watchdog, a FIFO the test reads, is petted at its cadence while
//! the loop runs, not while it is stopped, and closed with the magic 'V' on SIGTERM.
//!
//! Each node has its own sensor tree, mdstat file and notify log in a scratch directory
//! (`hwmon` through a per-node config copy, the rest through kernel-command-line flags).
//! Needs root (CI is root). Not here: the judging details (tests/health_*.rs), and timing
//! figures: every wait polls a condition with a generous deadline.

use crate::common::lab::VIP;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common;
use crate::common::TempDir;
use crate::common::lab::Node;
use crate::common::pair::{NODES, NodeExtra, Pair};
use crate::common::{assert_soon, wait_until};
use nix::sys::signal::Signal;

/// Generous: the machine may be busy building; nothing here measures time.
const PATIENCE: Duration = Duration::from_secs(40);
/// How long a decision not to move is watched: more than two health samples (2 s apart)
/// plus a handover, so a wrong move would show.
const HOLD: Duration = Duration::from_secs(6);
const CONF: &str = "hapair.conf";
/// The lab's client, which the daemons ping (Pair sets `hapair.ping=192.0.2.10`).
const PING_NODE: &str = "192.0.2.10/32";

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(rel)
}

fn copy_dir(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap_or_else(|e| panic!("{}: {e}", dst.display()));
    for entry in fs::read_dir(src).unwrap_or_else(|e| panic!("{}: {e}", src.display())) {
        let entry = entry.unwrap_or_else(|e| panic!("{}: {e}", src.display()));
        let to = dst.join(entry.file_name());
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            copy_dir(&entry.path(), &to);
        } else {
            fs::copy(entry.path(), &to).unwrap_or_else(|e| panic!("{}: {e}", to.display()));
        }
    }
}

/// Rewrites `path` in place (same inode: the daemon keeps it open and re-reads it from 0).
fn write_in_place(path: &Path, text: &str) {
    fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// Puts the mdstat fixture `name` into `path`.
fn set_mdstat(path: &Path, name: &str) {
    let text = fs::read_to_string(fixture(&format!("mdstat/{name}")))
        .unwrap_or_else(|e| panic!("mdstat fixture {name}: {e}"));
    write_in_place(path, &text);
}

/// What each node is given: a clean mdstat of its own (`hapair.raid`), a notify script that
/// appends its arguments to `<node>.events`, and optionally its own lm78 tree.
fn extras(scratch: &TempDir, hwmon: bool) -> [NodeExtra; 2] {
    NODES.map(|node| {
        let name = node.as_str();
        let mdstat = scratch.join(&format!("{name}.mdstat"));
        set_mdstat(&mdstat, "raid1-clean");
        let notify = scratch.join(&format!("{name}.notify"));
        let events = scratch.join(&format!("{name}.events"));
        let script = format!("#!/bin/sh\necho \"$@\" >> {}\n", events.display());
        fs::write(&notify, script).unwrap_or_else(|e| panic!("notify: {e}"));
        fs::set_permissions(&notify, fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("notify: {e}"));
        let mut extra = NodeExtra {
            cmdline: format!("hapair.raid={} hapair.notify={}", mdstat.display(), notify.display()),
            conf: String::new(),
        };
        if hwmon {
            let root = scratch.join(&format!("{name}.hwmon"));
            copy_dir(&fixture("hwmon/lm78-ok"), &root);
            extra.conf = format!("hwmon lm78 root {}", root.display());
        }
        extra
    })
}

/// Waits until one node is active, the other standby, and the client is answered by the
/// active one at the VIP; returns (active, standby).
fn settled(pair: &Pair) -> (Node, Node) {
    let (active, standby) = pair.settled(PATIENCE);
    for node in NODES {
        assert_eq!(pair.health(node).0, Some(true), "{node:?} healthy before the fault");
    }
    (active, standby)
}

/// `settled`, and the start was clean: the home node (alpha) holds the group and neither
/// node notified a health change (a ping node not answering yet is not a lost one).
fn settled_clean(pair: &Pair, scratch: &TempDir) -> (Node, Node) {
    let (active, standby) = settled(pair);
    for node in NODES {
        let events = fs::read_to_string(scratch.join(&format!("{}.events", node.as_str())))
            .unwrap_or_default();
        let blips: Vec<&str> = events.lines().filter(|l| l.starts_with("health ")).collect();
        assert!(blips.is_empty(), "{node:?} notified health changes at start: {blips:?}");
    }
    assert_eq!(active, Node::Alpha, "the home node keeps the group at start");
    (active, standby)
}

/// Waits until `node` reports itself unhealthy with a reason containing `why`.
fn await_unhealthy(pair: &Pair, node: Node, why: &str) {
    assert_soon(PATIENCE, &format!("{node:?} unhealthy: {why}"), || {
        let (ok, reasons) = pair.health(node);
        ok == Some(false) && reasons.iter().any(|r| r.contains(why))
    });
}

/// After a fault on the active `victim`: the group handed over to `survivor`
/// (`Pair::assert_handed_over`).
fn hands_over(pair: &Pair, victim: Node, survivor: Node, why: &str) {
    pair.assert_handed_over(victim, survivor, why, PATIENCE);
}

#[test]
fn hot_lm78_temp1_hands_the_group_to_the_healthy_peer() {
    let scratch = TempDir::new("e2e-health-hwmon");
    let pair = Pair::board_with('h', CONF, VIP, extras(&scratch, true));
    let (active, standby) = settled_clean(&pair, &scratch);
    // temp1_max is 60 °C in the fixture: 75 °C is out of limits.
    let input = scratch.join(&format!("{}.hwmon/hwmon0/temp1_input", active.as_str()));
    write_in_place(&input, "75000\n");
    hands_over(&pair, active, standby, "lm78/temp1 above max");
}

#[test]
fn degraded_raid_hands_the_group_to_the_healthy_peer_and_is_notified() {
    let scratch = TempDir::new("e2e-health-raid");
    let pair = Pair::board_with('r', CONF, VIP, extras(&scratch, false));
    let (active, standby) = settled_clean(&pair, &scratch);
    set_mdstat(&scratch.join(&format!("{}.mdstat", active.as_str())), "raid1-failed-member");
    hands_over(&pair, active, standby, "md0 degraded");
    // The health change was notified: `health NODE DETAIL`.
    let events = scratch.join(&format!("{}.events", active.as_str()));
    let want = format!("health {} unhealthy", active.as_str());
    assert_soon(PATIENCE, "a health event from the old active", || {
        fs::read_to_string(&events).is_ok_and(|t| t.lines().any(|l| l.starts_with(&want)))
    });
}

#[test]
fn lost_ping_node_hands_the_group_to_the_healthy_peer() {
    let scratch = TempDir::new("e2e-health-ping");
    let pair = Pair::board_with('p', CONF, VIP, extras(&scratch, false));
    let (active, standby) = settled_clean(&pair, &scratch);
    // The active node loses its route to the ping node (echoes fail at send); the peer
    // still reaches it.
    let ns = pair.lab().ns(active).to_owned();
    common::cmd(&["ip", "-n", &ns, "route", "add", "blackhole", PING_NODE]);
    hands_over(&pair, active, standby, "no ping node answers");
}

#[test]
fn an_unhealthy_peer_does_not_get_the_group() {
    let scratch = TempDir::new("e2e-health-both");
    let pair = Pair::board_with('b', CONF, VIP, extras(&scratch, false));
    let (active, standby) = settled_clean(&pair, &scratch);
    let mdstat = |node: Node| scratch.join(&format!("{}.mdstat", node.as_str()));
    set_mdstat(&mdstat(standby), "raid1-failed-member");
    await_unhealthy(&pair, standby, "md0 degraded");
    set_mdstat(&mdstat(active), "raid5-failed");
    await_unhealthy(&pair, active, "md");
    let moved =
        wait_until(HOLD, || pair.state(active) != "active" || pair.state(standby) != "standby");
    assert!(!moved, "the group left the active node for an unhealthy peer");
    assert_eq!(pair.last_answer().as_deref(), Some(active.as_str()), "the client's server");
    // The hold was the peer's health: once the peer is healthy again, the group moves.
    set_mdstat(&mdstat(standby), "raid1-clean");
    hands_over(&pair, active, standby, "md");
}

/// A FIFO standing in for /dev/watchdog; the test holds the read end.
struct Fifo {
    path: PathBuf,
    reader: File,
}

impl Fifo {
    fn new(scratch: &TempDir) -> Fifo {
        let path = scratch.join("watchdog");
        // Opened first and non-blocking: the daemon's O_WRONLY|O_NONBLOCK open then succeeds.
        let reader = common::watchdog_fifo(&path);
        Fifo { path, reader }
    }

    /// Bytes waiting; empty when none (EAGAIN) or no writer (EOF).
    fn drain(&mut self) -> Vec<u8> {
        let mut buf = [0u8; 256];
        match self.reader.read(&mut buf) {
            Ok(n) => buf[..n].to_vec(),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Vec::new(),
            Err(e) => panic!("fifo read: {e}"),
        }
    }
}

#[test]
fn watchdog_fifo_is_petted_while_the_loop_runs_and_closed_with_v_on_sigterm() {
    let scratch = TempDir::new("e2e-health-watchdog");
    let mut fifo = Fifo::new(&scratch);
    let mut extras: [NodeExtra; 2] = Default::default();
    // Whole seconds, at least 3 x keepalive (100 ms): pets every second.
    extras[0].cmdline = format!("hapair.watchdog=\"{} timeout 3s\"", fifo.path.display());
    let mut pair = Pair::board_with('w', CONF, VIP, extras);
    let _ = settled(&pair);
    // Pets arrive, one byte each, never the magic 'V', and not faster than timeout/3.
    fifo.drain();
    let mut pets = Vec::new();
    assert_soon(PATIENCE, "four pets", || {
        let bytes = fifo.drain();
        assert!(!bytes.contains(&b'V'), "magic close while running: {bytes:?}");
        #[allow(clippy::disallowed_methods)] // tests may read the real clock
        let now = std::time::Instant::now();
        pets.extend(bytes.iter().map(|_| now));
        pets.len() >= 4
    });
    let span = pets[3].duration_since(pets[0]);
    assert!(span >= Duration::from_secs(2), "4 pets within {span:?}: faster than timeout/3");
    // The loop stalls: no pet for a whole timeout.
    pair.signal(Node::Alpha, Signal::SIGSTOP);
    fifo.drain();
    let petted = wait_until(Duration::from_secs(3), || !fifo.drain().is_empty());
    pair.signal(Node::Alpha, Signal::SIGCONT);
    assert!(!petted, "a pet arrived while the daemon was stopped");
    // Running again, it pets again.
    assert_soon(PATIENCE, "pets after SIGCONT", || fifo.drain().contains(&b'.'));
    // SIGTERM: the magic 'V' is the last byte before the writer closes.
    pair.signal(Node::Alpha, Signal::SIGTERM);
    let mut tail = Vec::new();
    assert_soon(PATIENCE, "alpha exits 0", || {
        tail.extend(fifo.drain());
        pair.exited(Node::Alpha) == Some(Some(0))
    });
    tail.extend(fifo.drain());
    assert_eq!(tail.last(), Some(&b'V'), "bytes after SIGTERM: {tail:?}");
}
