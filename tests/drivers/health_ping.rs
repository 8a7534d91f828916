//! The ping driver in network namespaces this test creates (names carry the PID; removed on
//! drop, also when a test fails): loopback inside a fresh namespace, then a veth pair to a
//! peer namespace on 198.51.100.0/24 that answers until its link goes down. The daemon's
//! clock is simulated (`now` passed by hand); only the wait for a reply polls the socket,
//! a bounded number of times. A forger in the peer namespace, whose kernel then ignores
//! echoes, answers our echoes itself with replies that carry another cookie.

use hapair::core::time::{Duration, Instant};
use hapair::drivers::ping::{ECHO_LEN, Ping, checksum, field};
use hapair::health::Reasons;
use nix::poll::{PollFd, PollFlags, poll};
use nix::sched::CloneFlags;
use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrIn, recvfrom, sendto,
    setsockopt, socket, sockopt,
};
use nix::sys::time::TimeVal;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

const INTERVAL: Duration = Duration::from_secs(1);
const WINDOW_INTERVALS: u32 = 3;
const LOCAL: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
/// Nothing answers here and there is no route to it.
const NOWHERE: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 9);

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("ip(8) runs");
    assert!(status.success(), "ip {args:?}");
}

/// A pair of namespaces `a` (ours) and `b` (the ping node), deleted on drop.
struct Lab {
    a: String,
    b: String,
    veth_b: String,
}

impl Lab {
    fn new(test: &str) -> Lab {
        let pid = std::process::id();
        let lab = Lab {
            a: format!("hapair-ping-{pid}-{test}-a"),
            b: format!("hapair-ping-{pid}-{test}-b"),
            veth_b: format!("hpb{pid}"),
        };
        ip(&["netns", "add", &lab.a]);
        ip(&["netns", "add", &lab.b]);
        ip(&["-n", &lab.a, "link", "set", "lo", "up"]);
        lab
    }

    fn with_peer(self) -> Lab {
        let (a, b, vb) = (&self.a, &self.b, &self.veth_b);
        let va = format!("hpa{}", std::process::id());
        ip(&["link", "add", &va, "netns", a, "type", "veth", "peer", "name", vb, "netns", b]);
        ip(&["-n", a, "addr", "add", &format!("{LOCAL}/24"), "dev", &va]);
        ip(&["-n", b, "addr", "add", &format!("{PEER}/24"), "dev", vb]);
        ip(&["-n", a, "link", "set", &va, "up"]);
        ip(&["-n", b, "link", "set", vb, "up"]);
        ip(&["-n", b, "link", "set", "lo", "up"]);
        self
    }

    /// Runs `f` on a thread that has entered namespace `a`: sockets it makes live there.
    fn run_in_a<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        spawn_in(&self.a, f).join().unwrap()
    }
}

/// Starts `f` on a thread that has entered namespace `ns`.
fn spawn_in<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let ns = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
    std::thread::spawn(move || {
        nix::sched::setns(&ns, CloneFlags::CLONE_NEWNET).unwrap();
        f()
    })
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Polls the socket up to `polls` times 100 ms each, feeding replies at `now`; returns how
/// many matched.
fn await_replies(ping: &mut Ping, now: Instant, want: usize, polls: usize) -> usize {
    let mut matched = 0;
    for _ in 0..polls {
        let mut fds = [PollFd::new(ping.fd(), PollFlags::POLLIN)];
        if poll(&mut fds, 100u16).unwrap() > 0 {
            matched += ping.handle_readable(now);
        }
        if matched >= want {
            break;
        }
    }
    matched
}

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

#[test]
fn loopback_answers_in_a_fresh_namespace_over_raw_and_datagram_sockets() {
    let lab = Lab::new("lo");
    let lo = Ipv4Addr::LOCALHOST;
    let raw = lab.run_in_a(move || {
        let mut ping = Ping::open(&[lo], INTERVAL, WINDOW_INTERVALS, at(0)).unwrap();
        assert!(ping.reachable(), "nothing heard yet: not yet known counts as reachable");
        assert_eq!(ping.send_due(at(0)), 1);
        assert_eq!(ping.send_due(at(999)), 0, "not due");
        assert_eq!(ping.next_deadline(), at(1000));
        assert_eq!(await_replies(&mut ping, at(3), 1, 50), 1);
        assert!(ping.reachable());
        let node = ping.nodes()[0];
        assert_eq!((node.received, node.last_rtt), (1, Some(Duration::from_millis(3))));
        ping.is_raw()
    });
    // A fresh namespace's ping_group_range ("1 0") refuses datagram ICMP: raw as root.
    assert!(raw);
    let range = format!("net.ipv4.ping_group_range=0 {}", u32::MAX >> 1);
    let status = Command::new("ip")
        .args(["netns", "exec", &lab.a, "sysctl", "-q", "-w", &range])
        .status()
        .unwrap();
    assert!(status.success());
    let raw = lab.run_in_a(move || {
        let mut ping = Ping::open(&[lo], INTERVAL, WINDOW_INTERVALS, at(0)).unwrap();
        ping.send_due(at(0));
        assert_eq!(await_replies(&mut ping, at(1), 1, 50), 1);
        assert!(ping.reachable());
        ping.is_raw()
    });
    assert!(!raw, "unprivileged ICMP datagram socket preferred");
}

/// At start-up nothing has answered yet: the node set counts as reachable until a whole
/// window has passed since the first echoes without a reply (so that a daemon is not
/// briefly unhealthy at every start).
#[test]
fn a_silent_node_is_lost_only_after_a_whole_window_since_the_first_echo() {
    let lab = Lab::new("start");
    let lost_at = lab.run_in_a(move || {
        // Opened at 0 but first sent at 1 s: the window starts at the first echo.
        let mut ping = Ping::open(&[NOWHERE], INTERVAL, WINDOW_INTERVALS, at(0)).unwrap();
        assert!(ping.reachable(), "before any echo");
        let mut lost_at = None;
        for tick in 1..10u64 {
            let now = at(tick * 1000);
            ping.send_due(now);
            let mut r = Reasons::new();
            ping.reasons(&mut r);
            if !ping.reachable() {
                assert_eq!(r.iter().collect::<Vec<_>>(), ["no ping node answers"]);
                lost_at = Some(tick);
                break;
            }
            assert!(r.is_empty(), "no reason while not yet known: {r:?}");
        }
        lost_at
    });
    // First echo at 1 s; the 3 s window keeps it until 4 s; the evaluation at 5 s loses it.
    assert_eq!(lost_at, Some(5));
}

#[test]
fn peer_answers_until_its_link_goes_down_then_unreachable_after_the_window() {
    let lab = Lab::new("veth").with_peer();
    let (b, vb) = (lab.b.clone(), lab.veth_b.clone());
    let (down_at, nowhere_errors) = lab.run_in_a(move || {
        let mut ping = Ping::open(&[NOWHERE, PEER], INTERVAL, WINDOW_INTERVALS, at(0)).unwrap();
        for tick in 0..3u64 {
            let now = at(tick * 1000);
            ping.send_due(now);
            assert_eq!(await_replies(&mut ping, now + Duration::from_millis(5), 1, 50), 1);
            assert!(ping.reachable());
        }
        let mut r = Reasons::new();
        ping.reasons(&mut r);
        assert!(r.is_empty());
        ip(&["-n", &b, "link", "set", &vb, "down"]);
        let mut down_at = None;
        for tick in 3..10u64 {
            let now = at(tick * 1000);
            ping.send_due(now);
            await_replies(&mut ping, now + Duration::from_millis(5), 1, 2);
            if !ping.reachable() {
                down_at = Some(tick);
                break;
            }
        }
        let mut r = Reasons::new();
        ping.reasons(&mut r);
        assert_eq!(r.iter().collect::<Vec<_>>(), ["no ping node answers"]);
        let [nowhere, peer] = ping.nodes() else { panic!("two nodes") };
        assert!(!nowhere.reachable && nowhere.received == 0);
        assert_eq!((peer.addr, peer.received, peer.last_reply), (PEER, 3, Some(at(2005))));
        (down_at, ping.send_errors())
    });
    // The last reply came at 2.005 s; a 3 s window keeps the peer until 5.005 s.
    assert_eq!(down_at, Some(6));
    assert!(nowhere_errors > 0, "no route to 203.0.113.9: refused by the kernel");
}

/// What the forger puts where our cookie belongs in the replies it makes.
#[derive(Clone, Copy, Debug)]
enum Forgery {
    /// Our cookie, copied from the echo: a faithful reply (the control).
    Copied,
    /// Our cookie with one bit flipped: another run's, or a guess.
    OtherCookie,
    /// The fixed magic every echo carried before cookies.
    OldMagic,
}

/// Answers every echo request that reaches namespace `ns` from a raw socket, as the kernel
/// would but with `forgery` in the cookie field (same id, sequence and send time), until
/// `stop` is set. Returns once the socket is open; reports each reply sent on `sent`; the
/// thread returns how many it sent.
fn forger(
    ns: &str,
    forgery: Forgery,
    stop: Arc<AtomicBool>,
    sent: mpsc::Sender<()>,
) -> std::thread::JoinHandle<usize> {
    let (ready_tx, ready) = mpsc::channel();
    let thread = spawn_in(ns, move || {
        let flags = SockFlag::SOCK_CLOEXEC;
        let fd = socket(AddressFamily::Inet, SockType::Raw, flags, SockProtocol::Icmp).unwrap();
        setsockopt(&fd, sockopt::ReceiveTimeout, &TimeVal::new(0, 50_000)).unwrap();
        ready_tx.send(()).unwrap();
        let mut replies = 0;
        let mut packet = [0u8; 256];
        while !stop.load(Ordering::Relaxed) {
            let Ok((len, Some(from))) = recvfrom::<SockaddrIn>(fd.as_raw_fd(), &mut packet) else {
                continue;
            };
            // A raw socket gets the IP header; ours is 20 bytes (no options).
            let Some(Ok(echo)) = packet.get(20..len).map(<[u8; ECHO_LEN]>::try_from) else {
                continue;
            };
            if echo[field::TYPE] != 8 {
                continue;
            }
            let mut reply = echo;
            reply[field::TYPE] = 0;
            match forgery {
                Forgery::Copied => {}
                Forgery::OtherCookie => reply[field::COOKIE.start] ^= 0x80,
                Forgery::OldMagic => reply[field::COOKIE].copy_from_slice(b"hapair\0\x01"),
            }
            reply[field::CHECKSUM].fill(0);
            let sum = checksum(&reply);
            reply[field::CHECKSUM].copy_from_slice(&sum.to_be_bytes());
            let to = SockaddrIn::from(SocketAddrV4::new(from.ip(), 0));
            sendto(fd.as_raw_fd(), &reply, &to, MsgFlags::empty()).unwrap();
            replies += 1;
            sent.send(()).unwrap();
        }
        replies
    });
    ready.recv().expect("the forger's socket opens");
    thread
}

/// Pings `PEER`, answered by a forger making `forgery`, once a second for 5 s of simulated
/// time; returns whether it was still reachable at the end and the replies that matched.
fn ping_the_forger(lab: &Lab, forgery: Forgery) -> (bool, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let forger = forger(&lab.b, forgery, stop.clone(), tx);
    let result = lab.run_in_a(move || {
        let mut ping = Ping::open(&[PEER], INTERVAL, WINDOW_INTERVALS, at(0)).unwrap();
        assert!(ping.is_raw(), "a fresh namespace refuses datagram ICMP");
        for tick in 0..=5u64 {
            let now = at(tick * 1000);
            assert_eq!(ping.send_due(now), 1);
            let answered = rx.recv_timeout(std::time::Duration::from_secs(5));
            answered.unwrap_or_else(|e| panic!("{forgery:?}: the forger answers echo {tick}: {e}"));
            // The reply is on its way: wait until it is here, then take it.
            let mut fds = [PollFd::new(ping.fd(), PollFlags::POLLIN)];
            assert_eq!(poll(&mut fds, 5000u16).unwrap(), 1, "{forgery:?}: the reply arrives");
            ping.handle_readable(now + Duration::from_millis(5));
        }
        (ping.reachable(), ping.nodes()[0].received)
    });
    stop.store(true, Ordering::Relaxed);
    assert_eq!(forger.join().unwrap(), 6, "{forgery:?}: one reply per echo");
    result
}

/// SPEC §7.2: a ping node that does not answer stays lost however many replies a forger
/// sends for it without our cookie, even with the right id, sequence and send time.
#[test]
fn forged_replies_never_keep_a_ping_node_reachable() {
    let lab = Lab::new("forge").with_peer();
    // The peer's kernel no longer answers: every reply comes from the forger.
    let status = Command::new("ip")
        .args(["netns", "exec", &lab.b, "sysctl", "-q", "-w", "net.ipv4.icmp_echo_ignore_all=1"])
        .status()
        .unwrap();
    assert!(status.success());
    // The control: the forger's faithful replies reach us and count.
    assert_eq!(ping_the_forger(&lab, Forgery::Copied), (true, 6), "faithful replies");
    // The first echo went out at 0 with a 3 s window: lost from the evaluation at 4 s.
    assert_eq!(ping_the_forger(&lab, Forgery::OtherCookie), (false, 0), "another cookie");
    assert_eq!(ping_the_forger(&lab, Forgery::OldMagic), (false, 0), "the old magic");
}
