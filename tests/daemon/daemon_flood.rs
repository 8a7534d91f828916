//! End to end, SPEC §7.3 (issue 18): a flood on the heartbeat port neither fails the pair over
//! nor delays `status`, and shows in `status` as numbers. Real `hapair run` daemons, each node
//! in a network namespace of its own on one bridged LAN (`common::segment`), heartbeats by
//! `bcast` on it (a LAN-only pair, keepalive 100 ms, deadtime 500 ms), and a third host that
//! floods the standby node's heartbeat port for 10 s as fast as one core sends
//! (scripts/lib/flood.c, built here with gcc): garbage of random lengths, random datagrams of
//! a frame's length, frame-shaped forgeries (version, length, sender and link right: what no
//! filter without the key can tell from a frame) and replays of alpha's real frames, recorded
//! on the LAN just before.
//!
//! The standby node is the one flooded: if the flood cost it its peer's heartbeats for a
//! deadtime, it would take the group (a false failover, and two active nodes). The bounds are
//! generous (the machine has two shared cores); scripts/bench-flood measures the figures.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::segment::Segment;
use crate::common::wait_until;
use serde_json::Value;

/// The pair's timings.
const TIMINGS: &str = "keepalive 100ms\ndeadtime 500ms\ninitdead 2s";
const UDPPORT: u16 = 694;
/// How long the flood lasts.
const FLOOD_SECONDS: u32 = 10;
/// How long alpha's frames are recorded for the replays, before the flood.
const CAPTURE_SECONDS: u32 = 1;
/// Start-up of a pair (initdead, probes, the group's start) on a loaded machine.
const START: Duration = Duration::from_secs(30);
/// The longest a `status` may take during the flood: far above what it takes (a few ms,
/// see scripts/bench-flood), far below what a stalled loop would make it.
const STATUS_BOUND: Duration = Duration::from_secs(2);
/// How often the test asks both nodes during the flood.
const PROBE_EVERY: Duration = Duration::from_millis(200);

#[allow(clippy::disallowed_methods)] // tests may read the real clock
fn now() -> Instant {
    Instant::now()
}

/// A LAN-only pair: heartbeats by broadcast on lan0, the VIP as its one resource, no fence
/// and no ping node.
fn pair_conf(authkey: &Path) -> String {
    format!(
        "node alpha\nnode beta\n{TIMINGS}\nauthkey {}\nudpport {UDPPORT}\nbcast lan0\n\
         home alpha\nauto_failback off\n\
         resource ip 192.0.2.100/24 dev lan0 garp 1 garp_interval 100ms\nmonitor_interval 1s\n",
        authkey.display(),
    )
}

/// scripts/lib/flood.c built into `dir`.
fn build_flooder(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lib/flood.c");
    let bin = dir.join("flood");
    let out = Command::new("gcc")
        .args(["-O2", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("gcc (scripts/test.sh installs it): {e}"));
    assert!(
        out.status.success(),
        "gcc {}: {}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    bin
}

/// What the flooder says it sent: total and per kind.
#[derive(Debug, Default)]
struct Sent {
    total: u64,
    garbage: u64,
    forged: u64,
    shaped: u64,
    replayed: u64,
    captured: u64,
}

fn parse_sent(line: &str) -> Sent {
    let words: Vec<&str> = line.split_whitespace().collect();
    let field = |name: &str| {
        let i = words.iter().position(|w| *w == name).unwrap_or_else(|| panic!("{line}"));
        words[i + 1].parse::<u64>().unwrap_or_else(|e| panic!("{name} in {line}: {e}"))
    };
    Sent {
        total: field("sent"),
        garbage: field("garbage"),
        forged: field("forged"),
        shaped: field("shaped"),
        replayed: field("replayed"),
        captured: field("captured"),
    }
}

fn counter(s: &Value, name: &str) -> u64 {
    s["counters"][name].as_u64().unwrap_or_else(|| panic!("counters.{name} in {s}"))
}

fn link(s: &Value, name: &str) -> u64 {
    s["peer"]["links"][0][name].as_u64().unwrap_or_else(|| panic!("links[0].{name} in {s}"))
}

/// Ends the flooder (by the pid this test started it with) if the test fails early.
struct Flooder(Child);

impl Drop for Flooder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_flood_on_the_heartbeat_port_neither_fails_over_nor_delays_status() {
    let mut seg = Segment::new();
    let flood = build_flooder(&seg.dir);
    let key = seg.keygen("authkey");
    let conf = seg.write("hapair.conf", &pair_conf(&key));
    let alpha = seg.add_node("alpha", "192.0.2.1/24", &conf);
    let beta = seg.add_node("beta", "192.0.2.2/24", &conf);
    let flooder = seg.add_host("192.0.2.66/24");

    let t0 = now();
    seg.start(alpha);
    seg.start(beta);
    let settled = |s: &Option<Value>, state: &str| {
        s.as_ref().is_some_and(|s| s["state"] == state && s["peer"]["alive"] == true)
    };
    let mut last = (None, None);
    let ok = wait_until(START, || {
        last = (seg.status(alpha), seg.status(beta));
        settled(&last.0, "active") && settled(&last.1, "standby")
    });
    assert!(ok, "alpha active and beta standby, hearing each other, within {START:?}: {last:?}");
    eprintln!("pair settled after {} ms", t0.elapsed().as_millis());
    let (a0, b0) = (seg.status(alpha).unwrap(), seg.status(beta).unwrap());

    // The flood, at beta: it records alpha's frames (sender 0, link 0) first, for the replays.
    let argv = [
        "192.0.2.2".to_owned(),
        UDPPORT.to_string(),
        FLOOD_SECONDS.to_string(),
        "gfsr".to_owned(),
        CAPTURE_SECONDS.to_string(),
        "0".to_owned(),
        "0".to_owned(),
    ];
    let child = Command::new("ip")
        .args(["netns", "exec", seg.ns(flooder).name()])
        .arg(&flood)
        .args(&argv)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the flooder");
    let mut child = Flooder(child);
    let started = now();
    eprintln!("flooding beta: {} {}", flood.display(), argv.join(" "));

    // Until the flooder is done: both nodes answer, quickly, and nothing moves.
    let (mut probes, mut slowest) = (0u32, Duration::ZERO);
    let limit = Duration::from_secs(u64::from(CAPTURE_SECONDS + FLOOD_SECONDS) + 30);
    while child.0.try_wait().expect("flooder status").is_none() {
        assert!(started.elapsed() < limit, "the flooder did not end");
        for (i, name, state) in [(beta, "beta", "standby"), (alpha, "alpha", "active")] {
            let asked = now();
            let s = seg.status(i);
            let took = asked.elapsed();
            let s = s.unwrap_or_else(|| panic!("{name} did not answer status during the flood"));
            assert!(took < STATUS_BOUND, "{name}'s status took {took:?} during the flood");
            if i == beta {
                slowest = slowest.max(took);
                probes += 1;
            }
            assert_eq!(s["state"], state, "{name} changed state during the flood: {s}");
            assert_eq!(s["peer"]["alive"], true, "{name} lost its peer during the flood: {s}");
            assert_eq!(counter(&s, "failovers"), 0, "{name} failed over: {s}");
        }
        std::thread::sleep(PROBE_EVERY);
    }
    let out = child.0.wait_with_output_ref();
    assert!(out.0.success(), "the flooder failed: {}", out.2);
    let sent = parse_sent(&out.1);
    eprintln!(
        "flood over after {} ms: {sent:?}; beta's status answered {probes} times during it, \
         the slowest in {} ms",
        started.elapsed().as_millis(),
        slowest.as_millis()
    );
    assert!(sent.captured > 0 && sent.replayed > 0, "alpha's frames recorded and replayed");
    assert!(sent.total >= 100_000, "a flood: {} datagrams in {FLOOD_SECONDS} s", sent.total);
    assert!(probes >= 10, "status asked during the flood: {probes} times");

    // What the queue still holds is read within a keepalive or two.
    std::thread::sleep(Duration::from_millis(500));
    let (a1, b1) = (seg.status(alpha).unwrap(), seg.status(beta).unwrap());
    eprintln!("beta's counters after: {}; its link: {}", b1["counters"], b1["peer"]["links"][0]);
    assert_eq!(b1["state"], "standby", "{b1}");
    assert_eq!(a1["state"], "active", "{a1}");
    for (s, name) in [(&a1, "alpha"), (&b1, "beta")] {
        for c in ["failovers", "handovers", "split_brains"] {
            assert_eq!(counter(s, c), 0, "{name}'s {c}: {s}");
        }
    }
    // beta's loop kept sending its heartbeats through the flood: alpha heard them.
    let heard = link(&a1, "frames_rx") - link(&a0, "frames_rx");
    let expected = u64::from(FLOOD_SECONDS) * 10 / 2;
    assert!(heard >= expected, "alpha heard {heard} of beta's frames during the flood");

    // Everything the flooder sent is counted, and where: the kernel dropped the garbage and
    // the random datagrams (none reached the receiver as malformed or forged), the receiver
    // dropped the frame-shaped forgeries and the replays it read. What the buffer had no room
    // for is in the kernel's count too (with any of alpha's frames lost the same way).
    let delta = |name: &str| counter(&b1, name) - counter(&b0, name);
    let (kernel, auth, replays) =
        (delta("kernel_dropped"), delta("auth_failures"), delta("replays"));
    let lost = link(&b1, "frames_lost") - link(&b0, "frames_lost");
    assert_eq!(delta("malformed"), 0, "garbage reached the receiver: {}", b1["counters"]);
    let filtered = sent.garbage + sent.forged;
    assert!(kernel >= filtered * 99 / 100, "kernel dropped {kernel} of {filtered} non-frames");
    assert!(auth <= sent.shaped, "auth failures {auth} of {} forgeries", sent.shaped);
    assert!(replays > 0 && replays <= sent.replayed, "replays {replays} of {}", sent.replayed);
    let counted = kernel + auth + replays;
    assert!(
        counted >= sent.total * 99 / 100 && counted <= sent.total + lost + 10,
        "counted {counted} (kernel {kernel}, auth {auth}, replays {replays}) of {} sent \
         ({lost} of alpha's frames lost)",
        sent.total
    );
    eprintln!(
        "beta: kernel dropped {kernel}, auth failures {auth}, replays {replays}, frames lost \
         {lost} (alpha heard {heard} of beta's)"
    );
}

/// `wait_with_output` on a child whose owner must keep it (for the drop that kills it).
trait WaitRef {
    fn wait_with_output_ref(&mut self) -> (std::process::ExitStatus, String, String);
}

impl WaitRef for Child {
    fn wait_with_output_ref(&mut self) -> (std::process::ExitStatus, String, String) {
        use std::io::Read;
        let status = self.wait().expect("wait for the flooder");
        let (mut out, mut err) = (String::new(), String::new());
        if let Some(mut o) = self.stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        if let Some(mut e) = self.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        (status, out, err)
    }
}
