//! End to end, SPEC §7.2 (issue 17): frames only this pair, this boot, could have sent. Real
//! `hapair run` daemons, each node in a network namespace of its own on one bridged LAN
//! (`common::segment`), heartbeats by `bcast` on it, `fence` none.
//!
//! - Two pairs share one authkey, one udpport and one LAN: each must take only its own
//!   peer's frames, so that when one pair's active node dies, its survivor notices.
//! - A node restarted while a recording of its dead peer's heartbeats is replayed to it must
//!   not take them for a live peer: it takes the group after `initdead`.
//!
//! Both tests need root (namespaces, bridges), as every real-process test here. Waits are
//! conditions polled with generous deadlines; the only time bounds are the takeover bounds of
//! SPEC §3 L1 with seconds of slack. Each test prints its timings.
#![allow(clippy::unwrap_used)]

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::segment::Segment;
use crate::common::{assert_soon, wait_until};

/// The heartbeat timings of every pair here.
const TIMINGS: &str = "keepalive 100ms\ndeadtime 500ms\ninitdead 2s";
const DEADTIME: Duration = Duration::from_millis(500);
const INITDEAD: Duration = Duration::from_secs(2);
/// What a takeover may take after the peer is known dead (deadtime) or unheard (initdead):
/// with `fence` none there is no fencing wait, so this is the group's start (an `ip`
/// resource and its first gratuitous ARP) and the scheduling of a busy 2-core machine.
const MARGIN: Duration = Duration::from_secs(2);
/// The slack every takeover bound here adds on top.
const SLACK: Duration = Duration::from_secs(2);
/// Start-up of a pair (initdead, probes, the group's start) on a loaded machine.
const START: Duration = Duration::from_secs(30);
/// Any single later step.
const STEP: Duration = Duration::from_secs(15);
const UDPPORT: u16 = 694;
/// How long test 2 records alpha's heartbeats: its replay must outlast beta's takeover bound
/// (initdead + margin + slack) by seconds.
const RECORD: Duration = Duration::from_secs(12);

#[allow(clippy::disallowed_methods)] // tests may read the real clock
fn now() -> Instant {
    Instant::now()
}

/// A pair's configuration: heartbeats by broadcast on the LAN, its VIP as its one resource,
/// no fence and no ping node (a lone survivor takes over as soon as its peer is dead).
fn pair_conf(nodes: [&str; 2], home: &str, vip: &str, authkey: &std::path::Path) -> String {
    format!(
        "node {}\nnode {}\n{TIMINGS}\nauthkey {}\nudpport {UDPPORT}\nbcast lan0\n\
         home {home}\nauto_failback off\n\
         resource ip {vip}/24 dev lan0 garp 1 garp_interval 100ms\nmonitor_interval 1s\n",
        nodes[0],
        nodes[1],
        authkey.display(),
    )
}

/// Waits until `active` runs the group, `standby` is standby, and both hear their peer.
fn wait_settled(seg: &Segment, active: usize, standby: usize, timeout: Duration) {
    let mut last = (None, None);
    let ok = wait_until(timeout, || {
        let (a, s) = (seg.status(active), seg.status(standby));
        let settled = a
            .as_ref()
            .is_some_and(|a| a["state"] == "active" && a["peer"]["alive"] == true)
            && s.as_ref().is_some_and(|s| s["state"] == "standby" && s["peer"]["alive"] == true);
        last = (a, s);
        settled
    });
    let (a, s) = (seg.name(active), seg.name(standby));
    assert!(ok, "{a} active and {s} standby, hearing each other, within {timeout:?}: {last:?}");
}

/// A counter of node `i`'s status (0 while it does not answer).
fn counter(seg: &Segment, i: usize, name: &str) -> u64 {
    seg.status(i).and_then(|s| s["counters"][name].as_u64()).unwrap_or(0)
}

/// Pair Y as it settled: gamma active, delta standby, no failover, handover or split brain
/// on either. Returns what is wrong; a node that does not answer this once is not wrong.
fn y_undisturbed(seg: &Segment, gamma: usize, delta: usize) -> Result<(), String> {
    for (i, state) in [(gamma, "active"), (delta, "standby")] {
        let Some(s) = seg.status(i) else { continue };
        let moved = ["failovers", "handovers", "split_brains"]
            .iter()
            .any(|c| s["counters"][c].as_u64() != Some(0));
        if s["state"] != state || moved {
            return Err(format!("pair Y disturbed: {} should stay {state}: {s}", seg.name(i)));
        }
    }
    Ok(())
}

fn assert_y_undisturbed(seg: &Segment, gamma: usize, delta: usize) {
    if let Err(e) = y_undisturbed(seg, gamma, delta) {
        panic!("{e}");
    }
}

/// Pairs X (alpha, beta; home alpha) and Y (gamma, delta; home gamma) share the authkey, the
/// udpport and the LAN, and broadcast their heartbeats on it, so each node receives the
/// other pair's frames, signed with the same key, from a sender whose index in its own pair
/// (0 or 1) is that of a node of the receiver's pair.
///
/// X starts first and Y once X has settled. Incarnations come from the wall clock at start,
/// so Y's are the newer ones. A receiver that checks only the sender's index and the HMAC
/// under the raw authkey therefore takes gamma's frames (index 0) for alpha's on beta, and
/// delta's for beta's on alpha, calls it a restart of its peer, and from then on drops its
/// real peer's frames as stale; Y's nodes drop X's as stale and never notice. When alpha then
/// dies, beta goes on hearing "alpha" (gamma, active) and stays standby: that is the bug.
/// Y is checked all along all the same (`y_undisturbed`). With frame keys of each pair's own
/// (SPEC §7.2), beta drops Y's frames as authentication failures and takes over after
/// deadtime.
#[test]
fn two_pairs_sharing_an_authkey_on_one_lan_each_hear_only_their_own_peer() {
    let mut seg = Segment::new();
    let key = seg.keygen("authkey");
    let conf_x = seg.write("x.conf", &pair_conf(["alpha", "beta"], "alpha", "192.0.2.100", &key));
    let conf_y = seg.write("y.conf", &pair_conf(["gamma", "delta"], "gamma", "192.0.2.101", &key));
    let alpha = seg.add_node("alpha", "192.0.2.1/24", &conf_x);
    let beta = seg.add_node("beta", "192.0.2.2/24", &conf_x);
    let gamma = seg.add_node("gamma", "192.0.2.3/24", &conf_y);
    let delta = seg.add_node("delta", "192.0.2.4/24", &conf_y);

    let t0 = now();
    seg.start(alpha);
    seg.start(beta);
    wait_settled(&seg, alpha, beta, START);
    eprintln!("pair X settled (alpha active) after {} ms", t0.elapsed().as_millis());
    // A second of X alone first: Y's nodes start well after X's (their incarnations, read
    // from the wall clock at start, are the newer ones), as a pair installed later would.
    assert_soon(STEP, "beta hears ten of alpha's frames", || {
        seg.status(beta).is_some_and(|s| s["peer"]["links"][0]["frames_rx"].as_u64() >= Some(10))
    });
    let t1 = now();
    seg.start(gamma);
    seg.start(delta);
    wait_settled(&seg, gamma, delta, START);
    eprintln!("pair Y settled (gamma active) after {} ms", t1.elapsed().as_millis());
    assert!(seg.has_addr(gamma, "192.0.2.101") && !seg.has_addr(delta, "192.0.2.101"));
    // Some seconds of both pairs' frames crossing before the death (and X still as it was).
    let frames_until = now() + Duration::from_secs(2);
    assert_soon(STEP, "two seconds of both pairs beating", || {
        assert_y_undisturbed(&seg, gamma, delta);
        now() >= frames_until
    });
    assert_eq!(seg.state(alpha), "active", "alpha still active");
    assert_eq!(seg.state(beta), "standby", "beta still standby");
    assert!(seg.has_addr(alpha, "192.0.2.100"), "alpha holds X's VIP");

    // alpha dies: its daemon killed by the pid we started it with, its cable pulled, and the
    // VIP it left behind removed (a dead machine answers for nothing).
    let pid = seg.pid(alpha).unwrap();
    seg.kill(alpha);
    seg.cut(alpha);
    seg.remove_addr(alpha, "192.0.2.100");
    let died = now();
    eprintln!("alpha (pid {pid}) killed and cut");

    let bound = DEADTIME + MARGIN + SLACK;
    let mut last = None;
    let took_over = wait_until(bound, || {
        assert_y_undisturbed(&seg, gamma, delta);
        last = seg.status(beta);
        last.as_ref().is_some_and(|s| s["state"] == "active")
    });
    let waited = died.elapsed();
    if !took_over {
        let s = last.unwrap_or_default();
        panic!(
            "beta not active within {bound:?} (deadtime {DEADTIME:?} + margin {MARGIN:?} + \
             {SLACK:?}) of alpha's death: it is {}, and it believes its peer alive: {} \
             (peer state {}, links {}); counters {}",
            s["state"], s["peer"]["alive"], s["peer"]["state"], s["peer"]["links"], s["counters"]
        );
    }
    let (waited_ms, bound_ms) = (waited.as_millis(), bound.as_millis());
    eprintln!("alpha's death -> beta active: {waited_ms} ms (bound {bound_ms} ms)");
    assert_soon(STEP, "X's VIP on beta", || seg.has_addr(beta, "192.0.2.100"));

    let s = seg.status(beta).expect("beta answers");
    let auth = s["counters"]["auth_failures"].as_u64().unwrap_or(0);
    eprintln!("beta's counters: {}", s["counters"]);
    assert!(auth > 0, "pair Y's frames dropped by authentication on beta: {}", s["counters"]);
    assert_eq!(s["counters"]["failovers"], 1, "one failover on beta: {s}");
    // Y saw none of this: still as it settled, its VIP where it was.
    let settle_until = now() + Duration::from_secs(1);
    assert_soon(STEP, "a second more of pair Y", || {
        assert_y_undisturbed(&seg, gamma, delta);
        now() >= settle_until
    });
    assert_eq!(seg.state(gamma), "active");
    assert_eq!(seg.state(delta), "standby");
    assert!(seg.has_addr(gamma, "192.0.2.101") && !seg.has_addr(delta, "192.0.2.101"));
    assert!(counter(&seg, gamma, "auth_failures") > 0, "X's frames dropped on gamma too");
}

/// One recorded heartbeat: when it arrived (from the first one), and its UDP payload.
type Recorded = (Duration, Vec<u8>);

/// Records the UDP payloads `sock` receives from `from` during `span`, in order, with their
/// offsets from the first one.
fn record(sock: &UdpSocket, from: SocketAddr, span: Duration) -> Vec<Recorded> {
    sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let mut frames = Vec::new();
    let mut first = None;
    let mut buf = [0u8; 512];
    let until = now() + span;
    while now() < until {
        let Ok((n, sender)) = sock.recv_from(&mut buf) else { continue };
        if sender != from {
            continue;
        }
        let at = now();
        let first = *first.get_or_insert(at);
        frames.push((at - first, buf[..n].to_vec()));
    }
    frames
}

/// Sends `frames` from `sock` to `to` at their recorded pace, from now on; counts them in
/// `sent` as it goes.
fn replay(sock: &UdpSocket, to: SocketAddr, frames: &[Recorded], sent: &AtomicUsize) {
    let start = now();
    for (at, bytes) in frames {
        let due = start + *at;
        let wait = due.saturating_duration_since(now());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        sock.send_to(bytes, to).unwrap_or_else(|e| panic!("replay to {to}: {e}"));
        sent.fetch_add(1, Ordering::Relaxed);
    }
}

/// alpha (home) and beta run with alpha active while a third host records alpha's LAN
/// heartbeats. Both daemons are then killed; alpha stays dead and its VIP is removed. beta's
/// daemon is started again while the recording is replayed from alpha's address and port,
/// at its pace: frames of alpha's last incarnation, seq strictly increasing, authentic.
///
/// A receiver that restarted with no replay window trusts them: beta believes alpha alive and
/// active for as long as the replay runs, and stays standby (the bug). A restarted node that
/// accepts nothing sent before its restart (SPEC §7.2) drops them as replays, hears nothing,
/// and takes the group after initdead, while the replay still runs.
#[test]
fn a_restarted_node_does_not_take_a_replayed_recording_for_a_live_peer() {
    let mut seg = Segment::new();
    let key = seg.keygen("authkey");
    let conf =
        seg.write("hapair.conf", &pair_conf(["alpha", "beta"], "alpha", "192.0.2.100", &key));
    let alpha = seg.add_node("alpha", "192.0.2.1/24", &conf);
    let beta = seg.add_node("beta", "192.0.2.2/24", &conf);
    let recorder = seg.add_host("192.0.2.10/24");

    let t0 = now();
    seg.start(alpha);
    seg.start(beta);
    wait_settled(&seg, alpha, beta, START);
    eprintln!("pair settled (alpha active) after {} ms", t0.elapsed().as_millis());
    // Bound only now, so that nothing queued before the recording starts: a socket on the
    // heartbeat port in a third namespace receives every broadcast on it.
    let sock = seg.ns(recorder).run(|| UdpSocket::bind(("0.0.0.0", UDPPORT)).unwrap());
    let alpha_addr: SocketAddr = ([192, 0, 2, 1], UDPPORT).into();
    let frames = record(&sock, alpha_addr, RECORD);
    let span = frames.last().map_or(Duration::ZERO, |(at, _)| *at);
    eprintln!("recorded {} of alpha's datagrams over {} ms", frames.len(), span.as_millis());
    assert!(frames.len() >= 50, "alpha beat on the LAN: {} datagrams recorded", frames.len());
    let bound = INITDEAD + MARGIN + SLACK;
    assert!(span > bound + Duration::from_secs(3), "the replay outlasts the bound");
    assert_eq!(seg.state(alpha), "active", "alpha active while recorded");

    // Both die, beta first (so that it takes nothing over in between); alpha stays dead, and
    // its VIP goes with it.
    let pids = [seg.pid(beta).unwrap(), seg.pid(alpha).unwrap()];
    seg.kill(beta);
    seg.kill(alpha);
    seg.remove_addr(alpha, "192.0.2.100");
    assert!(!seg.has_addr(beta, "192.0.2.100"), "beta never held the VIP");
    eprintln!("beta (pid {}) and alpha (pid {}) killed", pids[0], pids[1]);

    // The replay, from alpha's namespace, address and heartbeat port (the daemon sends from
    // its socket bound to the udpport), to the LAN's broadcast address as alpha sent them.
    let out = seg.ns(alpha).run(|| {
        let sock = UdpSocket::bind(("192.0.2.1", UDPPORT)).unwrap();
        sock.set_broadcast(true).unwrap();
        sock
    });
    let sent = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let total = frames.len();
    let replayer = {
        let (sent, done) = (sent.clone(), done.clone());
        std::thread::spawn(move || {
            let to: SocketAddr = ([192, 0, 2, 255], UDPPORT).into();
            replay(&out, to, &frames, &sent);
            done.store(true, Ordering::Relaxed);
        })
    };
    let replay_start = now();
    seg.start(beta);
    let restarted = now();
    eprintln!("replay started; beta restarted {} ms later", (restarted - replay_start).as_millis());

    let mut last = None;
    let mut during_replay = false;
    let took_over = wait_until(bound, || {
        last = seg.status(beta);
        during_replay = !done.load(Ordering::Relaxed);
        last.as_ref().is_some_and(|s| s["state"] == "active")
    });
    let waited = restarted.elapsed();
    let sent_then = sent.load(Ordering::Relaxed);
    if !(took_over && during_replay) {
        let s = last.unwrap_or_default();
        // For the message: how long beta believed the recording, if it ever let go.
        replayer.join().unwrap();
        let replay_end = now();
        let later = wait_until(STEP, || seg.state(beta) == "active");
        let after = if later {
            format!("active {} ms after the replay ended", replay_end.elapsed().as_millis())
        } else {
            "still not active after it".to_owned()
        };
        panic!(
            "beta not active within {bound:?} (initdead {INITDEAD:?} + margin {MARGIN:?} + \
             {SLACK:?}) of its restart while alpha's recorded frames were replayed \
             ({sent_then} of {total} sent): it was {} (took over: {took_over}, during the \
             replay: {during_replay}), believing its peer alive: {} (peer state {}); \
             counters {}; the replay lasted {} ms and beta was {after}",
            s["state"],
            s["peer"]["alive"],
            s["peer"]["state"],
            s["counters"],
            (replay_end - replay_start).as_millis(),
        );
    }
    eprintln!(
        "beta restart -> active: {} ms (bound {} ms), {sent_then} of {total} replayed by then",
        waited.as_millis(),
        bound.as_millis()
    );
    assert_soon(STEP, "the VIP on beta", || seg.has_addr(beta, "192.0.2.100"));
    let replays = |s: &serde_json::Value| s["counters"]["replays"].as_u64().unwrap_or(0);
    assert_soon(STEP, "beta counts the recorded frames as replays", || {
        seg.status(beta).is_some_and(|s| replays(&s) > 0)
    });
    replayer.join().unwrap();
    let s = seg.status(beta).expect("beta answers");
    eprintln!(
        "replay of {total} datagrams ended {} ms after it began; beta's counters: {}",
        replay_start.elapsed().as_millis(),
        s["counters"]
    );
    assert_eq!(s["state"], "active", "beta stayed active through the replay: {s}");
    assert_eq!(s["peer"]["alive"], false, "beta never took the recording for alpha: {s}");
}
