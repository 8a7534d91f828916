//! The ping driver in network namespaces this test creates (names carry the PID; removed on
//! drop, also when a test fails): loopback inside a fresh namespace, then a veth pair to a
//! peer namespace on 198.51.100.0/24 and 2001:db8::/64 that answers until its link goes down
//! (or its kernel is told to ignore one family's echoes). The daemon's clock is simulated
//! (`now` passed by hand); only the wait for a reply polls the sockets, a bounded number of
//! times. A forger in the peer namespace, whose kernel then ignores echoes, answers our ICMP
//! or ICMPv6 echoes itself with replies that carry another cookie.

use hapair::core::time::{Duration, Instant};
use hapair::drivers::ping::{ECHO_LEN, Icmp, Ping, checksum, encode_echo, field};
use hapair::health::Reasons;
use nix::poll::{PollFd, PollFlags, poll};
use nix::sched::CloneFlags;
use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrIn6, SockaddrStorage,
    recvfrom, sendto, setsockopt, socket, sockopt,
};
use nix::sys::time::TimeVal;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};
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
const LOCAL6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const PEER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

/// `addrs` as the driver takes them.
fn ips<const N: usize>(addrs: [impl Into<IpAddr>; N]) -> [IpAddr; N] {
    addrs.map(Into::into)
}

/// Sets sysctl `key=value` in namespace `ns`.
fn sysctl(ns: &str, key_value: &str) {
    ip(&["netns", "exec", ns, "sysctl", "-q", "-w", key_value]);
}

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
        ip(&["-n", a, "addr", "add", &format!("{LOCAL6}/64"), "dev", &va, "nodad"]);
        ip(&["-n", b, "addr", "add", &format!("{PEER6}/64"), "dev", vb, "nodad"]);
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

/// Whether one of the ping sockets polls readable within `ms` milliseconds.
fn readable(ping: &Ping, ms: u16) -> bool {
    let mut fds: Vec<PollFd<'_>> =
        ping.fds().map(|fd| PollFd::new(fd, PollFlags::POLLIN)).collect();
    poll(&mut fds, ms).unwrap() > 0
}

/// Polls the sockets up to `polls` times 100 ms each, feeding replies at `now`; returns how
/// many matched.
fn await_replies(ping: &mut Ping, now: Instant, want: usize, polls: usize) -> usize {
    let mut matched = 0;
    for _ in 0..polls {
        if readable(ping, 100) {
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
    // IPv4 and IPv6 loopback: an ICMP and an ICMPv6 socket, judged as one set.
    let lo = ips([IpAddr::from(Ipv4Addr::LOCALHOST), IpAddr::from(Ipv6Addr::LOCALHOST)]);
    let raw = lab.run_in_a(move || {
        let mut ping = Ping::open(&lo, INTERVAL, WINDOW_INTERVALS, at(0)).unwrap();
        assert_eq!(ping.fds().count(), 2, "a socket per family");
        assert!(ping.reachable(), "nothing heard yet: not yet known counts as reachable");
        assert_eq!(ping.send_due(at(0)), 2);
        assert_eq!(ping.send_due(at(999)), 0, "not due");
        assert_eq!(ping.next_deadline(), at(1000));
        assert_eq!(await_replies(&mut ping, at(3), 2, 50), 2);
        assert!(ping.reachable());
        for node in ping.nodes() {
            assert_eq!((node.received, node.last_rtt), (1, Some(Duration::from_millis(3))));
        }
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
        let mut ping = Ping::open(&lo, INTERVAL, WINDOW_INTERVALS, at(0)).unwrap();
        ping.send_due(at(0));
        assert_eq!(await_replies(&mut ping, at(1), 2, 50), 2);
        assert!(ping.reachable());
        assert!(ping.nodes().iter().all(|n| n.received == 1), "{:?}", ping.nodes());
        ping.is_raw()
    });
    assert!(!raw, "unprivileged ICMP and ICMPv6 datagram sockets preferred");
}

/// At start-up nothing has answered yet: the node set counts as reachable until a whole
/// window has passed since the first echoes without a reply (so that a daemon is not
/// briefly unhealthy at every start).
#[test]
fn a_silent_node_is_lost_only_after_a_whole_window_since_the_first_echo() {
    let lab = Lab::new("start");
    let lost_at = lab.run_in_a(move || {
        // Opened at 0 but first sent at 1 s: the window starts at the first echo.
        let mut ping = Ping::open(&ips([NOWHERE]), INTERVAL, WINDOW_INTERVALS, at(0)).unwrap();
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
        let nodes = ips([NOWHERE, PEER]);
        let mut ping = Ping::open(&nodes, INTERVAL, WINDOW_INTERVALS, at(0)).unwrap();
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
        assert_eq!((peer.addr, peer.received, peer.last_reply), (PEER.into(), 3, Some(at(2005))));
        (down_at, ping.send_errors())
    });
    // The last reply came at 2.005 s; a 3 s window keeps the peer until 5.005 s.
    assert_eq!(down_at, Some(6));
    assert!(nowhere_errors > 0, "no route to 203.0.113.9: refused by the kernel");
}

/// An IPv6 ping node answers ICMPv6 echoes, beside an IPv4 one, and the set is judged as one
/// (`health::reach` alike for both): when the peer's kernel stops answering IPv6 echoes, the
/// IPv6 node alone is lost a window after its last reply and the IPv4 node keeps the set
/// reachable; once it ignores IPv4 echoes too, the set is lost.
#[test]
fn an_ipv6_node_answers_and_is_judged_with_the_ipv4_ones() {
    let lab = Lab::new("six").with_peer();
    let b = lab.b.clone();
    let (v6_lost_at, all_lost_at) = lab.run_in_a(move || {
        let nodes = ips([IpAddr::from(PEER), IpAddr::from(PEER6)]);
        let mut ping = Ping::open(&nodes, INTERVAL, WINDOW_INTERVALS, at(0)).unwrap();
        for tick in 0..3u64 {
            let now = at(tick * 1000);
            assert_eq!(ping.send_due(now), 2);
            assert_eq!(await_replies(&mut ping, now + Duration::from_millis(5), 2, 50), 2);
        }
        let [v4, v6] = ping.nodes() else { panic!("two nodes") };
        assert_eq!((v6.addr, v6.received, v6.reachable), (PEER6.into(), 3, true));
        assert_eq!((v4.received, v6.last_rtt), (3, Some(Duration::from_millis(5))));
        sysctl(&b, "net.ipv6.icmp.echo_ignore_all=1");
        let (mut v6_lost_at, mut all_lost_at) = (None, None);
        for tick in 3..12u64 {
            let now = at(tick * 1000);
            ping.send_due(now);
            await_replies(&mut ping, now + Duration::from_millis(5), 2, 3);
            let [v4, v6] = ping.nodes() else { panic!("two nodes") };
            if !v6.reachable && v6_lost_at.is_none() {
                v6_lost_at = Some(tick);
                assert!(v4.reachable && ping.reachable(), "the IPv4 node still answers");
                sysctl(&b, "net.ipv4.icmp_echo_ignore_all=1");
            }
            if !ping.reachable() {
                all_lost_at = Some(tick);
                break;
            }
        }
        (v6_lost_at, all_lost_at)
    });
    // Last IPv6 reply at 2.005 s, kept by the 3 s window until 5.005 s: lost at 6 s. The
    // IPv4 node's last reply then comes at 6.005 s: lost at 10 s.
    assert_eq!((v6_lost_at, all_lost_at), (Some(6), Some(10)));
}

/// A raw ICMPv6 socket would see every ICMPv6 message of the host (neighbour discovery,
/// router and multicast listener traffic, others' echoes): the driver's passes echo replies
/// only, so nothing else wakes the loop.
#[test]
fn a_raw_icmpv6_socket_sees_echo_replies_only() {
    let lab = Lab::new("filt").with_peer();
    let b = lab.b.clone();
    lab.run_in_a(move || {
        let mut ping = Ping::open(&ips([PEER6]), INTERVAL, WINDOW_INTERVALS, at(0)).unwrap();
        assert!(ping.is_raw(), "a fresh namespace refuses datagram ICMPv6");
        // The peer sends us echo requests (and our kernel answers them), and neighbour
        // discovery runs both ways: none of it reaches our socket.
        let peer = spawn_in(&b, || {
            let flags = SockFlag::SOCK_CLOEXEC;
            let fd =
                socket(AddressFamily::Inet6, SockType::Raw, flags, SockProtocol::IcmpV6).unwrap();
            let to = SockaddrIn6::from(std::net::SocketAddrV6::new(LOCAL6, 0, 0, 0));
            for seq in 0..5 {
                let mut echo = [0u8; ECHO_LEN];
                encode_echo(&mut echo, Icmp::V6, 7, seq, 0, at(0));
                sendto(fd.as_raw_fd(), &echo, &to, MsgFlags::empty()).unwrap();
            }
        });
        peer.join().unwrap();
        ip(&["-n", &b, "neigh", "flush", "all"]);
        assert!(!readable(&ping, 500), "requests and neighbour discovery woke the socket");
        // Our own echo's reply does.
        assert_eq!(ping.send_due(at(0)), 1);
        assert_eq!(await_replies(&mut ping, at(2), 1, 50), 1);
    });
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

/// Answers every echo request to `peer` that reaches namespace `ns` from a raw socket of its
/// family, as the kernel would but with `forgery` in the cookie field (same id, sequence and
/// send time), until `stop` is set. Returns once the socket is open; reports each reply sent
/// on `sent`; the thread returns how many it sent.
fn forger(
    ns: &str,
    peer: IpAddr,
    forgery: Forgery,
    stop: Arc<AtomicBool>,
    sent: mpsc::Sender<()>,
) -> std::thread::JoinHandle<usize> {
    let (ready_tx, ready) = mpsc::channel();
    let icmp = Icmp::of(peer);
    let thread = spawn_in(ns, move || {
        let flags = SockFlag::SOCK_CLOEXEC;
        let (family, protocol) = match icmp {
            Icmp::V4 => (AddressFamily::Inet, SockProtocol::Icmp),
            Icmp::V6 => (AddressFamily::Inet6, SockProtocol::IcmpV6),
        };
        let fd = socket(family, SockType::Raw, flags, protocol).unwrap();
        setsockopt(&fd, sockopt::ReceiveTimeout, &TimeVal::new(0, 50_000)).unwrap();
        ready_tx.send(()).unwrap();
        let mut replies = 0;
        let mut packet = [0u8; 256];
        while !stop.load(Ordering::Relaxed) {
            let Ok((len, Some(from))) = recvfrom::<SockaddrStorage>(fd.as_raw_fd(), &mut packet)
            else {
                continue;
            };
            // A raw ICMP socket gets the IP header (ours is 20 bytes, no options); a raw
            // ICMPv6 socket the message alone.
            let header = if icmp == Icmp::V4 { 20 } else { 0 };
            let Some(Ok(echo)) = packet.get(header..len).map(<[u8; ECHO_LEN]>::try_from) else {
                continue;
            };
            if echo[field::TYPE] != icmp.echo_request() {
                continue;
            }
            let mut reply = echo;
            reply[field::TYPE] = icmp.echo_reply();
            match forgery {
                Forgery::Copied => {}
                Forgery::OtherCookie => reply[field::COOKIE.start] ^= 0x80,
                Forgery::OldMagic => reply[field::COOKIE].copy_from_slice(b"hapair\0\x01"),
            }
            // The kernel computes the ICMPv6 checksum of a raw socket's message.
            reply[field::CHECKSUM].fill(0);
            if icmp == Icmp::V4 {
                let sum = checksum(&reply);
                reply[field::CHECKSUM].copy_from_slice(&sum.to_be_bytes());
            }
            let to = match (from.as_sockaddr_in(), from.as_sockaddr_in6()) {
                (Some(v4), _) => SockaddrStorage::from(SocketAddrV4::new(v4.ip(), 0)),
                (_, Some(v6)) => SockaddrStorage::from(SocketAddr::new(v6.ip().into(), 0)),
                _ => continue,
            };
            sendto(fd.as_raw_fd(), &reply, &to, MsgFlags::empty()).unwrap();
            replies += 1;
            sent.send(()).unwrap();
        }
        replies
    });
    ready.recv().expect("the forger's socket opens");
    thread
}

/// Pings `peer`, answered by a forger making `forgery`, once a second for 5 s of simulated
/// time; returns whether it was still reachable at the end and the replies that matched.
fn ping_the_forger(lab: &Lab, peer: IpAddr, forgery: Forgery) -> (bool, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let forger = forger(&lab.b, peer, forgery, stop.clone(), tx);
    let result = lab.run_in_a(move || {
        let mut ping = Ping::open(&[peer], INTERVAL, WINDOW_INTERVALS, at(0)).unwrap();
        assert!(ping.is_raw(), "a fresh namespace refuses datagram ICMP");
        for tick in 0..=5u64 {
            let now = at(tick * 1000);
            assert_eq!(ping.send_due(now), 1);
            let answered = rx.recv_timeout(std::time::Duration::from_secs(5));
            answered.unwrap_or_else(|e| panic!("{forgery:?}: the forger answers echo {tick}: {e}"));
            // The reply is on its way: wait until it is here, then take it.
            assert!(readable(&ping, 5000), "{forgery:?}: the reply arrives");
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
    sysctl(&lab.b, "net.ipv4.icmp_echo_ignore_all=1");
    forged_replies_count_as_nothing(&lab, PEER.into());
}

/// The same, for an IPv6 ping node and ICMPv6 replies.
#[test]
fn forged_icmpv6_replies_never_keep_a_ping_node_reachable() {
    let lab = Lab::new("forge6").with_peer();
    sysctl(&lab.b, "net.ipv6.icmp.echo_ignore_all=1");
    forged_replies_count_as_nothing(&lab, PEER6.into());
}

fn forged_replies_count_as_nothing(lab: &Lab, peer: IpAddr) {
    // The control: the forger's faithful replies reach us and count.
    assert_eq!(ping_the_forger(lab, peer, Forgery::Copied), (true, 6), "faithful replies");
    // The first echo went out at 0 with a 3 s window: lost from the evaluation at 4 s.
    assert_eq!(ping_the_forger(lab, peer, Forgery::OtherCookie), (false, 0), "another cookie");
    assert_eq!(ping_the_forger(lab, peer, Forgery::OldMagic), (false, 0), "the old magic");
}
