//! UDP links between two network namespaces joined by veth pairs (created per test, deleted
//! by a Drop guard). Each socket is created on a thread that entered its namespace; sockets
//! stay in the namespace they were made in, so the test thread then drives them directly.

// Test deadlines are wall-clock time; the daemon itself reads the clock only in event_loop.rs.
#![allow(clippy::disallowed_methods)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use hapair::drivers::udp::{BATCH, Batch, SendOutcome, UdpLink, UdpMedium, pick_peer};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sched::CloneFlags;

const PORT: u16 = 6694;
const GROUP: Ipv4Addr = Ipv4Addr::new(239, 0, 0, 94);
const A1: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const B1: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const A2: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const B2: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

/// Two namespaces `a` and `b`, joined by veth `v` (198.51.100.0/24) and veth `w`
/// (192.0.2.0/24). Interface names: `{v,w}{a,b}` inside the namespaces.
struct Lab {
    a: String,
    b: String,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl Lab {
    fn new() -> Lab {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let tag = format!("{}x{n}", std::process::id());
        let lab = Lab { a: format!("hpdrv{tag}a"), b: format!("hpdrv{tag}b") };
        for (ns, _) in [(&lab.a, 0), (&lab.b, 1)] {
            ip(&["netns", "add", ns]);
            // Link-local IPv6 addresses usable at once (no duplicate detection).
            for conf in ["all", "default"] {
                let key = format!("net.ipv6.conf.{conf}.accept_dad=0");
                ip(&["netns", "exec", ns, "sysctl", "-qw", &key]);
            }
        }
        for (pair, prefix) in [("v", [A1, B1]), ("w", [A2, B2])] {
            let (ta, tb) = (format!("hp{n}{pair}{}a", std::process::id()), format!("hp{n}{pair}b"));
            let (ta, tb) = (&ta[..ta.len().min(15)], &tb[..tb.len().min(15)]);
            ip(&["link", "add", ta, "type", "veth", "peer", "name", tb]);
            for (tmp, ns, name, addr) in
                [(ta, &lab.a, "a", prefix[0]), (tb, &lab.b, "b", prefix[1])]
            {
                let ifname = format!("{pair}{name}");
                ip(&["link", "set", tmp, "netns", ns, "name", &ifname]);
                let cidr = format!("{addr}/24");
                ip(&["-n", ns, "addr", "add", &cidr, "dev", &ifname]);
                ip(&["-n", ns, "link", "set", &ifname, "up"]);
            }
        }
        for ns in [&lab.a, &lab.b] {
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        lab
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Runs `f` on a thread inside namespace `ns`.
fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let fd = std::fs::File::open(&path).expect("open netns");
        nix::sched::setns(&fd, CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
    .join()
    .expect("namespace thread")
}

fn open(ns: &str, medium: UdpMedium<'static>) -> UdpLink {
    in_ns(ns, move || UdpLink::open(&medium, PORT).unwrap_or_else(|e| panic!("{e}")))
}

/// Waits for one datagram on `link`.
fn recv(link: &mut UdpLink) -> Option<(Vec<u8>, SocketAddr)> {
    let until = Instant::now() + Duration::from_secs(10);
    let mut batch = Batch::default();
    loop {
        link.recv_batch(&mut batch);
        if let Some((bytes, from)) = batch.with_senders().next() {
            assert_eq!(batch.len(), 1, "one datagram was sent");
            return Some((bytes.to_vec(), from.expect("a sender address")));
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        // SAFETY: the fd belongs to `link`, alive across this call.
        let fd = unsafe { BorrowedFd::borrow_raw(link.as_raw_fd()) };
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        let _ = poll(&mut fds, PollTimeout::try_from(left.as_millis() as i32).unwrap());
    }
}

/// Takes what waits on `link` now: true when that is nothing.
fn nothing_waits(link: &mut UdpLink) -> bool {
    let mut batch = Batch::default();
    link.recv_batch(&mut batch);
    batch.is_empty()
}

fn exchange(x: &mut UdpLink, y: &mut UdpLink, x_addr: IpAddr, y_addr: IpAddr) {
    assert_eq!(x.send(b"from x"), SendOutcome::Sent);
    let (bytes, from) = recv(y).expect("y hears x");
    assert_eq!((bytes.as_slice(), from.ip()), (&b"from x"[..], x_addr));
    assert_eq!(y.send(b"from y"), SendOutcome::Sent);
    let (bytes, from) = recv(x).expect("x hears y");
    assert_eq!((bytes.as_slice(), from.ip()), (&b"from y"[..], y_addr));
    assert!(nothing_waits(x), "nothing more, and no echo of our own");
    assert!(nothing_waits(y));
}

/// Whether `link`'s socket is readable within `ms` milliseconds.
fn readable(link: &UdpLink, ms: u16) -> bool {
    // SAFETY: the fd belongs to `link`, alive across this call.
    let fd = unsafe { BorrowedFd::borrow_raw(link.as_raw_fd()) };
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    poll(&mut fds, PollTimeout::from(ms)).unwrap_or(0) > 0
}

#[test]
fn our_own_broadcasts_never_wake_us_and_a_batch_takes_what_waits() {
    let lab = Lab::new();
    let mut a = open(&lab.a, UdpMedium::Bcast { ifname: "va" });
    let mut b = open(&lab.b, UdpMedium::Bcast { ifname: "vb" });
    // The kernel loops a broadcast back to its sender's socket; the socket filter drops it
    // there, so poll(2) does not even report the socket readable (a wake saved per beat).
    for _ in 0..3 {
        assert_eq!(a.send(b"beat"), SendOutcome::Sent);
    }
    assert!(readable(&b, 10_000), "the peer hears them");
    assert!(!readable(&a, 200), "our own broadcasts do not make our socket readable");
    // The peer takes all three in one call, and the batch says it emptied the queue.
    let mut batch = Batch::default();
    let until = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    while got.len() < 3 && Instant::now() < until {
        b.recv_batch(&mut batch);
        got.extend(batch.datagrams().map(<[u8]>::to_vec));
        assert!(!batch.is_full());
        if got.len() < 3 {
            readable(&b, 100);
        }
    }
    assert_eq!(got, vec![b"beat".to_vec(); 3]);
    b.recv_batch(&mut batch);
    assert_eq!(batch.datagrams().count(), 0, "nothing left");
    // More than a batch: the first call fills it and says more may wait.
    for i in 0..BATCH + 2 {
        assert_eq!(b.send(&[i as u8; 4]), SendOutcome::Sent);
    }
    let mut seen = 0;
    let until = Instant::now() + Duration::from_secs(10);
    while seen < BATCH + 2 && Instant::now() < until {
        if !readable(&a, 100) {
            continue;
        }
        a.recv_batch(&mut batch);
        let n = batch.datagrams().count();
        assert_eq!(batch.is_full(), n == BATCH);
        for (k, d) in batch.datagrams().enumerate() {
            assert_eq!(d, &[(seen + k) as u8; 4], "in order, whole");
        }
        seen += n;
    }
    assert_eq!(seen, BATCH + 2);
    assert_eq!(a.stats().datagrams_rx, (BATCH + 2) as u64);
}

#[test]
fn broadcast_crosses_both_ways() {
    let lab = Lab::new();
    let mut a = open(&lab.a, UdpMedium::Bcast { ifname: "va" });
    let mut b = open(&lab.b, UdpMedium::Bcast { ifname: "vb" });
    assert_eq!(a.destination(), SocketAddr::from((Ipv4Addr::new(198, 51, 100, 255), PORT)));
    exchange(&mut a, &mut b, A1.into(), B1.into());
}

#[test]
fn multicast_crosses_both_ways_without_loopback() {
    let lab = Lab::new();
    let medium = |ifname| UdpMedium::Mcast { ifname, group: GROUP, ttl: 1 };
    let mut a = open(&lab.a, medium("va"));
    let mut b = open(&lab.b, medium("vb"));
    exchange(&mut a, &mut b, A1.into(), B1.into());
}

#[test]
fn unicast_ipv4_crosses_both_ways() {
    let lab = Lab::new();
    let mut a = open(&lab.a, UdpMedium::Ucast { ifname: "va", peer: B1.into() });
    let mut b = open(&lab.b, UdpMedium::Ucast { ifname: "vb", peer: A1.into() });
    exchange(&mut a, &mut b, A1.into(), B1.into());
}

#[test]
fn unicast_ipv6_link_local_crosses_both_ways() {
    let lab = Lab::new();
    let link_local = |ns: &str, ifname: &'static str| {
        in_ns(ns, move || {
            nix::ifaddrs::getifaddrs()
                .unwrap()
                .filter(|i| i.interface_name == ifname)
                .find_map(|i| i.address.and_then(|a| a.as_sockaddr_in6().map(|a| a.ip())))
                .expect("an IPv6 link-local address")
        })
    };
    let (a6, b6) = (link_local(&lab.a, "va"), link_local(&lab.b, "vb"));
    let mut a = open(&lab.a, UdpMedium::Ucast { ifname: "va", peer: b6.into() });
    let mut b = open(&lab.b, UdpMedium::Ucast { ifname: "vb", peer: a6.into() });
    exchange(&mut a, &mut b, a6.into(), b6.into());
}

#[test]
fn a_socket_hears_only_its_own_interface() {
    let lab = Lab::new();
    let mut a_v = open(&lab.a, UdpMedium::Bcast { ifname: "va" });
    let mut a_w = open(&lab.a, UdpMedium::Bcast { ifname: "wa" });
    let mut a_mcast_w = open(&lab.a, UdpMedium::Mcast { ifname: "wa", group: GROUP, ttl: 1 });
    let mut b_w = open(&lab.b, UdpMedium::Bcast { ifname: "wb" });
    assert_eq!(b_w.send(b"on w"), SendOutcome::Sent);
    let (bytes, from) = recv(&mut a_w).expect("the w socket hears it");
    assert_eq!((bytes.as_slice(), from.ip()), (&b"on w"[..], IpAddr::from(B2)));
    // Delivery to every matching socket happens at once: had the others matched, they
    // would hold the datagram by now.
    assert!(nothing_waits(&mut a_v), "the v socket must not hear w");
    assert!(nothing_waits(&mut a_mcast_w), "the mcast socket must not hear bcast");
    assert_eq!(a_v.stats().datagrams_rx, 0);
    assert_eq!(a_w.stats().datagrams_rx, 1);
}

#[test]
fn send_errors_are_counted_not_fatal() {
    let lab = Lab::new();
    let mut a = open(&lab.a, UdpMedium::Ucast { ifname: "va", peer: B1.into() });
    assert_eq!(a.send(b"fine"), SendOutcome::Sent);
    ip(&["-n", &lab.a, "link", "set", "va", "down"]); // the cable is pulled
    assert_eq!(a.send(b"lost"), SendOutcome::Dropped);
    assert_eq!(a.send(b"lost"), SendOutcome::Dropped);
    let stats = a.stats();
    assert_eq!((stats.send_errors, stats.datagrams_tx), (2, 1));
    assert_ne!(stats.last_send_errno, 0);
    ip(&["-n", &lab.a, "link", "set", "va", "up"]);
    let mut b = open(&lab.b, UdpMedium::Ucast { ifname: "vb", peer: A1.into() });
    exchange(&mut a, &mut b, A1.into(), B1.into());
}

#[test]
fn setup_errors_name_the_interface() {
    let lab = Lab::new();
    let err = in_ns(&lab.a, || UdpLink::open(&UdpMedium::Bcast { ifname: "nosuch0" }, PORT));
    let err = err.err().expect("no such interface");
    assert_eq!((err.ifname.as_str(), err.step), ("nosuch0", "SO_BINDTODEVICE"));
    let bad_group = UdpMedium::Mcast { ifname: "va", group: A1, ttl: 1 };
    assert!(in_ns(&lab.a, move || UdpLink::open(&bad_group, PORT)).is_err());
}

#[test]
fn pick_peer_skips_our_own_address() {
    let lab = Lab::new();
    let (a, b) = (IpAddr::from(A1), IpAddr::from(B1));
    assert_eq!(in_ns(&lab.a, move || pick_peer([a, b]).unwrap()), Some(b));
    assert_eq!(in_ns(&lab.a, move || pick_peer([b, a]).unwrap()), Some(b));
    assert_eq!(in_ns(&lab.b, move || pick_peer([a, b]).unwrap()), Some(a));
    let far = IpAddr::from(Ipv4Addr::new(203, 0, 113, 7));
    assert_eq!(in_ns(&lab.a, move || pick_peer([b, far]).unwrap()), None, "neither is ours");
}
