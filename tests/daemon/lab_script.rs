//! scripts/lab.sh end to end: up, status, the three links (LAN, crossover, serial relay),
//! cut and restore, `up` over the leftovers of an earlier run, and a `down` that leaves no
//! namespace, relay or process behind. Needs root, iproute2, ping and socat (scripts/test.sh
//! installs them).
//!
//! Not here: hapair itself (the end-to-end tests run it in this lab).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::lab::{Lab, Node};
use crate::common::netns::ping_from;
use crate::common::{assert_soon, try_cmd, wait_until};
use nix::poll::{PollFd, PollFlags, poll};

const PATIENCE: Duration = Duration::from_secs(10);

fn ping(ns: &str, addr: &str) -> bool {
    ping_from(ns, addr)
}

/// The process exists and is not a zombie (the relay's parent is gone; init reaps it).
fn alive(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state follows the parenthesised command name.
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next());
    state.is_some_and(|s| s != "Z")
}

fn open_tty(path: &str) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(path)
        .unwrap_or_else(|e| panic!("open {path}: {e}"))
}

/// Writes `msg` into `from` and reads until `to` has produced all of it.
fn crosses(from: &mut File, to: &mut File, msg: &[u8]) -> bool {
    if from.write_all(msg).is_err() {
        return false;
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while got.len() < msg.len() {
        let mut fds = [PollFd::new(to.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, 2000u16) {
            Ok(n) if n > 0 => {}
            _ => return false,
        }
        match to.read(&mut buf) {
            Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => return false,
        }
    }
    got == msg
}

#[test]
fn lab_up_links_cuts_and_down() {
    let lab = Lab::up('t');
    let (alpha, beta) = (lab.ns(Node::Alpha).to_owned(), lab.ns(Node::Beta).to_owned());
    let client = lab.ns(Node::Client).to_owned();

    let status = lab.ok(&["status"]);
    for n in [&alpha, &beta, &client, lab.ns(Node::Lan)] {
        assert!(status.contains(n), "status lacks {n}: {status}");
    }

    assert_soon(PATIENCE, "alpha to ping beta over xover", || ping(&alpha, "198.51.100.2"));
    assert_soon(PATIENCE, "beta to ping alpha over xover", || ping(&beta, "198.51.100.1"));
    assert_soon(PATIENCE, "client to ping alpha on the LAN", || ping(&client, "192.0.2.1"));
    assert_soon(PATIENCE, "client to ping beta over IPv6", || ping(&client, "2001:db8::2"));

    let (mut a, mut b) = (open_tty(lab.tty(Node::Alpha)), open_tty(lab.tty(Node::Beta)));
    assert!(crosses(&mut a, &mut b, b"alpha to beta"), "serial alpha -> beta");
    assert!(crosses(&mut b, &mut a, b"beta to alpha"), "serial beta -> alpha");

    let relay = lab.relay_pid().unwrap_or_else(|| panic!("no relay.pid"));
    lab.ok(&["serial", "cut"]);
    assert!(!alive(relay), "relay {relay} still running after serial cut");
    assert!(!crosses(&mut a, &mut b, b"lost"), "bytes crossed a cut serial line");
    assert!(!Path::new(lab.tty(Node::Alpha)).exists(), "pty link outlived the relay");
    assert_eq!(lab.sh(&["status"]).status.code(), Some(1), "status reports the cut");
    lab.ok(&["serial", "restore"]);
    let (mut a, mut b) = (open_tty(lab.tty(Node::Alpha)), open_tty(lab.tty(Node::Beta)));
    assert!(crosses(&mut a, &mut b, b"back again"), "serial after restore");

    lab.cut("lan", Node::Alpha);
    assert!(!ping(&client, "192.0.2.1"), "client reached alpha through a cut LAN");
    assert!(ping(&client, "192.0.2.2"), "cutting alpha's LAN must not cut beta's");
    lab.restore("lan", Node::Alpha);
    assert_soon(PATIENCE, "LAN restored", || ping(&client, "192.0.2.1"));

    lab.ok(&["cut", "xover", "beta", "--loss"]);
    assert!(!ping(&alpha, "198.51.100.2"), "ping crossed a lossy xover");
    lab.ok(&["restore", "xover", "beta"]);
    assert_soon(PATIENCE, "xover restored", || ping(&alpha, "198.51.100.2"));
    lab.ok(&["cut", "xover", "alpha"]);
    assert!(!ping(&beta, "198.51.100.1"), "ping crossed a pulled xover");
    lab.ok(&["restore", "xover", "alpha"]);
    assert_soon(PATIENCE, "xover plugged back", || ping(&beta, "198.51.100.1"));
}

#[test]
fn up_cleans_an_earlier_run_and_down_leaves_nothing() {
    let lab = Lab::up('u');
    let first = lab.namespaces();
    assert_eq!(first.len(), 4, "{first:?}");
    let first_relay = lab.relay_pid().unwrap_or_else(|| panic!("no relay.pid"));

    // A process left running in the lab, as a crashed test would leave a daemon.
    let alpha = lab.ns(Node::Alpha).to_owned();
    let mut straggler = Command::new("ip")
        .args(["netns", "exec", &alpha, "sleep", "600"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn sleep: {e}"));
    assert_soon(PATIENCE, "sleep to run in alpha", || {
        !try_cmd(&["ip", "netns", "pids", &alpha]).unwrap_or_default().trim().is_empty()
    });

    // `up` again without `down`: the earlier run is removed first.
    lab.ok(&["up"]);
    let second = lab.namespaces();
    assert_eq!(second.len(), 4, "{second:?}");
    assert!(first.iter().all(|n| !second.contains(n)), "{first:?} survived in {second:?}");
    assert!(!alive(first_relay), "earlier relay {first_relay} still running");
    let killed = wait_until(PATIENCE, || matches!(straggler.try_wait(), Ok(Some(_))));
    assert!(killed, "process in the earlier run's namespace survived");

    let relay = lab.relay_pid().unwrap_or_else(|| panic!("no relay.pid"));
    lab.ok(&["down"]);
    assert!(lab.namespaces().is_empty(), "namespaces left: {:?}", lab.namespaces());
    assert!(!alive(relay), "relay {relay} still running after down");
    assert!(!Path::new(&lab.dir()).exists(), "state dir left behind");
    assert_eq!(lab.sh(&["status"]).status.code(), Some(3));
    // `down` twice is fine.
    lab.ok(&["down"]);
}
