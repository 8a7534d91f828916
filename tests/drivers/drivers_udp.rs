//! UDP links between two network namespaces joined by veth pairs (created per test, deleted
//! by a Drop guard). Each socket is created on a thread that entered its namespace; sockets
//! stay in the namespace they were made in, so the test thread then drives them directly.
//!
//! Every socket admits only what can be a frame, so what the tests send is shaped like one
//! (`frame`; node `a` sends as node 0, `b` as node 1). The socket filter itself, and the
//! kernel's count of what it drops, are tested here on real sockets, IPv4 and IPv6 (the
//! filter's logic, instruction by instruction, in `src/drivers/udp.rs`). IPv6 multicast runs
//! over the veths' link-local addresses (duplicate detection is off in these namespaces).

// Test deadlines are wall-clock time; the daemon itself reads the clock only in event_loop.rs.
#![allow(clippy::disallowed_methods)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use hapair::drivers::udp::{BATCH, Batch, SendOutcome, UdpLink, UdpMedium, pick_peer};
use hapair::limits::UDP_RCVBUF_BYTES;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sched::CloneFlags;

const PORT: u16 = 6694;
const GROUP: IpAddr = IpAddr::V4(Ipv4Addr::new(239, 0, 0, 94));
/// The SPEC's IPv6 group: link-local scope, so bound and sent to as [ff02::1:694%IF].
const GROUP6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 0x694));
/// A site-local group (no interface scope in its address; the socket's interface decides).
const GROUP6_SITE: IpAddr = IpAddr::V6(Ipv6Addr::new(0xff05, 0, 0, 0, 0, 0, 1, 0x694));
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

/// A 128-byte datagram shaped like a v4 frame sent by node `sender` on link 0, its other
/// bytes `fill`: what the socket filter admits (only the receiver checks the tag).
fn frame(sender: u8, fill: u8) -> Vec<u8> {
    let mut f = vec![fill; 128];
    f[..4].copy_from_slice(&[4, 96, sender, 0]);
    f
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

/// `x` (node 0) and `y` (node 1) hear each other, each from the address given.
fn exchange(x: &mut UdpLink, y: &mut UdpLink, x_addr: IpAddr, y_addr: IpAddr) {
    assert_eq!(x.send(&frame(0, b'x')), SendOutcome::Sent);
    let (bytes, from) = recv(y).expect("y hears x");
    assert_eq!((bytes, from.ip()), (frame(0, b'x'), x_addr));
    assert_eq!(y.send(&frame(1, b'y')), SendOutcome::Sent);
    let (bytes, from) = recv(x).expect("x hears y");
    assert_eq!((bytes, from.ip()), (frame(1, b'y'), y_addr));
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
        assert_eq!(a.send(&frame(0, 7)), SendOutcome::Sent);
    }
    assert!(readable(&b, 10_000), "the peer hears them");
    assert!(!readable(&a, 200), "our own broadcasts do not make our socket readable");
    assert_eq!(a.refresh_kernel_dropped(), 0, "and they are no flood: not counted");
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
    assert_eq!(got, vec![frame(0, 7); 3]);
    b.recv_batch(&mut batch);
    assert_eq!(batch.datagrams().count(), 0, "nothing left");
    // More than a batch: the first call fills it and says more may wait.
    for i in 0..BATCH + 2 {
        assert_eq!(b.send(&frame(1, i as u8)), SendOutcome::Sent);
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
            assert_eq!(d, frame(1, (seen + k) as u8), "in order, whole");
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

/// SPEC §7.7: `mcast IF ff02::1:694`. Each side joins the group on its interface, sends to
/// [group%IF] from its link-local address, hears the other, and never its own frames (the
/// kernel's multicast loopback is off, as for IPv4).
#[test]
fn ipv6_multicast_crosses_both_ways_without_loopback() {
    let lab = Lab::new();
    let medium = |ifname, group| UdpMedium::Mcast { ifname, group, ttl: 1 };
    let (a6, b6) = (link_local(&lab.a, "va"), link_local(&lab.b, "vb"));
    for group in [GROUP6, GROUP6_SITE] {
        let mut a = open(&lab.a, medium("va", group));
        let mut b = open(&lab.b, medium("vb", group));
        let IpAddr::V6(g) = group else { unreachable!() };
        // Only the link-scope group carries the interface in its address.
        let scope = if group == GROUP6 { index_of(&lab.a, "va") } else { 0 };
        let dest = SocketAddr::V6(SocketAddrV6::new(g, PORT, 0, scope));
        assert_eq!((a.destination(), a.local_addr().unwrap()), (dest, dest), "{group}");
        exchange(&mut a, &mut b, a6.into(), b6.into());
        exchange(&mut a, &mut b, a6.into(), b6.into());
        assert_eq!(a.stats().datagrams_rx, 2, "{group}: the peer's two, none of our own");
    }
}

/// `ttl N` of an IPv6 `mcast` line is the hop limit its datagrams leave with
/// (IPV6_MULTICAST_HOPS), read off a datagram by a plain listener on the peer's side.
#[test]
fn ipv6_multicast_sends_with_the_ttl_as_hop_limit() {
    let lab = Lab::new();
    let index = index_of(&lab.b, "vb");
    for (group, ttl) in [(GROUP6, 1), (GROUP6, 7), (GROUP6_SITE, 64)] {
        let mut a = open(&lab.a, UdpMedium::Mcast { ifname: "va", group, ttl });
        let IpAddr::V6(g) = group else { unreachable!() };
        let listener = in_ns(&lab.b, move || hop_limit_listener(g, index));
        assert_eq!(a.send(&frame(0, ttl)), SendOutcome::Sent);
        assert_eq!(receive_hop_limit(&listener), (frame(0, ttl), i32::from(ttl)), "{group}");
    }
}

/// A plain IPv6 UDP socket in the current namespace that joined `group` on interface `index`
/// and reports each datagram's hop limit.
fn hop_limit_listener(group: Ipv6Addr, index: u32) -> std::os::fd::OwnedFd {
    use nix::sys::socket::*;
    let fd = socket(AddressFamily::Inet6, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)
        .expect("a UDP socket");
    setsockopt(&fd, sockopt::ReuseAddr, &true).unwrap();
    setsockopt(&fd, sockopt::Ipv6RecvHopLimit, &true).unwrap();
    setsockopt(&fd, sockopt::ReceiveTimeout, &nix::sys::time::TimeVal::new(10, 0)).unwrap();
    let join = Ipv6MembershipRequest::new(group);
    setsockopt(&fd, sockopt::Ipv6AddMembership, &join).unwrap();
    let at = SockaddrIn6::from(SocketAddrV6::new(group, PORT, 0, index));
    bind(fd.as_raw_fd(), &at).expect("bind the listener");
    fd
}

/// One datagram from `listener` and the hop limit it arrived with.
fn receive_hop_limit(listener: &std::os::fd::OwnedFd) -> (Vec<u8>, i32) {
    use nix::sys::socket::*;
    let mut buf = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!(libc::c_int);
    let msg =
        recvmsg::<SockaddrIn6>(listener.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::empty())
            .expect("a datagram within 10 s");
    let hops = msg.cmsgs().unwrap().find_map(|c| match c {
        ControlMessageOwned::Ipv6HopLimit(h) => Some(h),
        _ => None,
    });
    let len = msg.bytes;
    (buf[..len].to_vec(), hops.expect("a hop limit"))
}

#[test]
fn unicast_ipv4_crosses_both_ways() {
    let lab = Lab::new();
    let mut a = open(&lab.a, ucast("va", A1, B1));
    let mut b = open(&lab.b, ucast("vb", B1, A1));
    exchange(&mut a, &mut b, A1.into(), B1.into());
}

fn ucast(
    ifname: &'static str,
    own: impl Into<IpAddr>,
    peer: impl Into<IpAddr>,
) -> UdpMedium<'static> {
    UdpMedium::Ucast { ifname, own: own.into(), peer: peer.into() }
}

/// The IPv6 link-local address of `ifname` in namespace `ns` (its only IPv6 address).
fn link_local(ns: &str, ifname: &'static str) -> Ipv6Addr {
    in_ns(ns, move || {
        nix::ifaddrs::getifaddrs()
            .unwrap()
            .filter(|i| i.interface_name == ifname)
            .find_map(|i| i.address.and_then(|a| a.as_sockaddr_in6().map(|a| a.ip())))
            .expect("an IPv6 link-local address")
    })
}

/// The index of `ifname` in namespace `ns`.
fn index_of(ns: &str, ifname: &'static str) -> u32 {
    in_ns(ns, move || nix::net::if_::if_nametoindex(ifname).unwrap())
}

#[test]
fn unicast_ipv6_link_local_crosses_both_ways() {
    let lab = Lab::new();
    let (a6, b6) = (link_local(&lab.a, "va"), link_local(&lab.b, "vb"));
    let mut a = open(&lab.a, ucast("va", a6, b6));
    let mut b = open(&lab.b, ucast("vb", b6, a6));
    exchange(&mut a, &mut b, a6.into(), b6.into());
}

#[test]
fn a_socket_hears_only_its_own_interface() {
    let lab = Lab::new();
    let mut a_v = open(&lab.a, UdpMedium::Bcast { ifname: "va" });
    let mut a_w = open(&lab.a, UdpMedium::Bcast { ifname: "wa" });
    let a_mcast = UdpMedium::Mcast { ifname: "wa", group: GROUP, ttl: 1 };
    let mut a_mcast_w = open(&lab.a, a_mcast);
    let mut b_w = open(&lab.b, UdpMedium::Bcast { ifname: "wb" });
    assert_eq!(b_w.send(&frame(1, 0)), SendOutcome::Sent);
    let (bytes, from) = recv(&mut a_w).expect("the w socket hears it");
    assert_eq!((bytes, from.ip()), (frame(1, 0), IpAddr::from(B2)));
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
    let mut a = open(&lab.a, ucast("va", A1, B1));
    assert_eq!(a.send(&frame(0, 1)), SendOutcome::Sent);
    ip(&["-n", &lab.a, "link", "set", "va", "down"]); // the cable is pulled
    assert_eq!(a.send(&frame(0, 2)), SendOutcome::Dropped);
    assert_eq!(a.send(&frame(0, 3)), SendOutcome::Dropped);
    let stats = a.stats();
    assert_eq!((stats.send_errors, stats.datagrams_tx), (2, 1));
    assert_ne!(stats.last_send_errno, 0);
    ip(&["-n", &lab.a, "link", "set", "va", "up"]);
    let mut b = open(&lab.b, ucast("vb", B1, A1));
    exchange(&mut a, &mut b, A1.into(), B1.into());
}

#[test]
fn setup_errors_name_the_interface() {
    let lab = Lab::new();
    let nosuch = UdpMedium::Bcast { ifname: "nosuch0" };
    let err = in_ns(&lab.a, move || UdpLink::open(&nosuch, PORT));
    let err = err.err().expect("no such interface");
    assert_eq!((err.ifname.as_str(), err.step), ("nosuch0", "SO_BINDTODEVICE"));
    for group in [IpAddr::from(A1), "2001:db8::1".parse().unwrap()] {
        let bad_group = UdpMedium::Mcast { ifname: "va", group, ttl: 1 };
        let err = in_ns(&lab.a, move || UdpLink::open(&bad_group, PORT));
        assert_eq!(err.err().expect("not a group").step, "group");
    }
    // An own address that is not this machine's: bind fails, naming the step.
    let elsewhere = ucast("va", Ipv4Addr::new(203, 0, 113, 9), B1);
    let err = in_ns(&lab.a, move || UdpLink::open(&elsewhere, PORT));
    assert_eq!(err.err().expect("not ours").step, "bind");
    let mixed = ucast("va", A1, IpAddr::from(std::net::Ipv6Addr::LOCALHOST));
    let err = in_ns(&lab.a, move || UdpLink::open(&mixed, PORT));
    assert_eq!(err.err().expect("one family").step, "address family");
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

/// A plain UDP socket in namespace `ns`, bound to `from` (port 0: any), for sending what a
/// hapair socket would not: garbage, and frames from addresses that are not the peer's.
fn raw_sender(ns: &str, from: IpAddr) -> std::net::UdpSocket {
    in_ns(ns, move || std::net::UdpSocket::bind((from, 0)).expect("bind the sender"))
}

/// Reads `link` until `n` datagrams came or nothing more arrives for a second; returns them.
fn drain(link: &mut UdpLink, n: usize) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let mut batch = Batch::default();
    while got.len() < n {
        link.recv_batch(&mut batch);
        got.extend(batch.datagrams().map(<[u8]>::to_vec));
        if batch.is_empty() && !readable(link, 1000) {
            break;
        }
    }
    got
}

/// Datagrams the socket filter must refuse (garbage, and frames no receiver could accept),
/// and frames as any pair could send them (only the key tells whose they are).
fn filter_cases() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut refused: Vec<Vec<u8>> = Vec::new();
    for len in [0, 1, 4, 42, 73, 75, 86, 88, 129, 200, 1400] {
        refused.push(vec![0xa5; len]); // garbage of any length but a frame's
    }
    let shaped = |v: u8, body: u8, sender: u8, link: u8, len: usize| {
        let mut f = frame(sender, 0);
        f.resize(len, 0);
        f[..4].copy_from_slice(&[v, body, sender, link]);
        f
    };
    refused.push(shaped(0, 96, 1, 0, 128)); // version 0 is reserved
    refused.push(shaped(6, 96, 1, 0, 128)); // two versions ahead
    refused.push(shaped(2, 55, 1, 0, 87)); // two versions back: v2 is not read
    refused.push(shaped(4, 95, 1, 0, 128)); // body length and datagram length disagree
    refused.push(shaped(1, 42, 1, 0, 87)); // a v1 frame is 74 bytes
    refused.push(shaped(3, 55, 1, 0, 87)); // a v3 frame is 126 bytes
    refused.push(shaped(4, 94, 1, 0, 126)); // a v4 frame is 128 bytes
    refused.push(shaped(5, 94, 1, 0, 126)); // a newer frame is no shorter than a v4 one
    refused.push(shaped(4, 96, 2, 0, 128)); // no node 2
    refused.push(shaped(4, 96, 1, 8, 128)); // no link 8
    refused.push(shaped(5, 97, 1, 0, 129)); // longer than any frame
    let admitted = vec![
        shaped(1, 42, 1, 0, 74),
        shaped(3, 94, 1, 0, 126),
        shaped(4, 96, 1, 0, 128),
        shaped(5, 96, 1, 0, 128),
        shaped(4, 96, 0, 0, 128), // as a's own node index
        shaped(4, 96, 1, 7, 128), // on another link
        frame(1, 9),
    ];
    (refused, admitted)
}

/// Sends `filter_cases` from `sender` to `to`; `link` takes only the admitted ones, in order,
/// and the kernel counts the others, which never wake anyone.
fn the_filter_drops_and_counts(link: &mut UdpLink, sender: &std::net::UdpSocket, to: SocketAddr) {
    let (refused, admitted) = filter_cases();
    for d in refused.iter().chain(&admitted) {
        sender.send_to(d, to).expect("send");
    }
    assert_eq!(drain(link, admitted.len()), admitted, "only the frame-shaped ones, in order");
    assert!(nothing_waits(link));
    // Each admitted datagram carried the kernel's count (SO_RXQ_OVFL), before any getsockopt.
    let n = refused.len() as u64;
    assert_eq!(link.stats().kernel_dropped, n, "counted from the datagrams themselves");
    assert_eq!(link.refresh_kernel_dropped(), n, "and SO_MEMINFO agrees");
    assert_eq!(link.stats().datagrams_rx, admitted.len() as u64);
    // With nothing admitted, the count still moves (read from the socket).
    sender.send_to(b"more garbage", to).expect("send");
    let until = Instant::now() + Duration::from_secs(10);
    while link.refresh_kernel_dropped() == n && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(link.refresh_kernel_dropped(), n + 1);
    assert!(!readable(link, 100), "the garbage never woke anyone");
}

#[test]
fn the_filter_drops_what_cannot_be_a_frame_and_the_kernel_counts_it() {
    let lab = Lab::new();
    let mut a = open(&lab.a, UdpMedium::Bcast { ifname: "va" });
    let sender = raw_sender(&lab.b, B1.into());
    the_filter_drops_and_counts(&mut a, &sender, SocketAddr::from((A1, PORT)));
}

/// A UDP socket's filter sees the datagram from the UDP header on, behind an IPv6 header as
/// behind an IPv4 one: the same program keeps the same datagrams on an IPv6 `mcast` socket.
#[test]
fn the_filter_works_the_same_on_an_ipv6_multicast_socket() {
    let lab = Lab::new();
    let mut a = open(&lab.a, UdpMedium::Mcast { ifname: "va", group: GROUP6, ttl: 1 });
    let b6 = link_local(&lab.b, "vb");
    let index = index_of(&lab.b, "vb");
    let sender = in_ns(&lab.b, move || {
        std::net::UdpSocket::bind(SocketAddrV6::new(b6, 0, 0, index)).expect("bind the sender")
    });
    let IpAddr::V6(g) = GROUP6 else { unreachable!() };
    the_filter_drops_and_counts(&mut a, &sender, SocketAddrV6::new(g, PORT, 0, index).into());
}

#[test]
fn ucast_admits_only_the_peers_address() {
    let lab = Lab::new();
    let b3 = Ipv4Addr::new(198, 51, 100, 3);
    ip(&["-n", &lab.b, "addr", "add", "198.51.100.3/24", "dev", "vb"]);
    let mut a = open(&lab.a, ucast("va", A1, B1));
    let to = SocketAddr::from((A1, PORT));
    raw_sender(&lab.b, b3.into()).send_to(&frame(1, 3), to).expect("send");
    raw_sender(&lab.b, B1.into()).send_to(&frame(1, 1), to).expect("send");
    assert_eq!(drain(&mut a, 1), vec![frame(1, 1)], "only the one from the peer's address");
    assert!(nothing_waits(&mut a));
    assert_eq!(a.refresh_kernel_dropped(), 1, "the other one dropped and counted");
}

#[test]
fn ucast_ipv6_is_bound_to_its_own_address_and_admits_only_the_peers() {
    let lab = Lab::new();
    let [a6, b6, b6_other]: [std::net::Ipv6Addr; 3] =
        ["2001:db8::1", "2001:db8::2", "2001:db8::3"].map(|s| s.parse().unwrap());
    ip(&["-n", &lab.a, "addr", "add", "2001:db8::1/64", "dev", "va", "nodad"]);
    // Another address on b's interface, added last so that it is listed first: b's frames
    // must still come from the address the configuration names.
    ip(&["-n", &lab.b, "addr", "add", "2001:db8::2/64", "dev", "vb", "nodad"]);
    ip(&["-n", &lab.b, "addr", "add", "2001:db8::3/64", "dev", "vb", "nodad"]);
    let mut a = open(&lab.a, ucast("va", a6, b6));
    let mut b = open(&lab.b, ucast("vb", b6, a6));
    exchange(&mut a, &mut b, a6.into(), b6.into());
    let to = SocketAddr::from((a6, PORT));
    raw_sender(&lab.b, b6_other.into()).send_to(&frame(1, 3), to).expect("send");
    let link_local = in_ns(&lab.b, || {
        nix::ifaddrs::getifaddrs()
            .unwrap()
            .filter(|i| i.interface_name == "vb")
            .find_map(|i| {
                let a = i.address?.as_sockaddr_in6()?.ip();
                (a.segments()[0] == 0xfe80).then_some(a)
            })
            .expect("a link-local address")
    });
    let index = in_ns(&lab.b, || nix::net::if_::if_nametoindex("vb").unwrap());
    let from_ll = in_ns(&lab.b, move || {
        let sa = std::net::SocketAddrV6::new(link_local, 0, 0, index);
        std::net::UdpSocket::bind(sa).expect("bind link-local")
    });
    from_ll.send_to(&frame(1, 4), to).expect("send");
    raw_sender(&lab.b, b6.into()).send_to(&frame(1, 5), to).expect("send");
    assert_eq!(drain(&mut a, 1), vec![frame(1, 5)], "only the one from the peer's address");
    assert!(nothing_waits(&mut a));
    assert_eq!(a.refresh_kernel_dropped(), 2, "the two others dropped and counted");
}

/// A burst of frame-shaped datagrams (forged or replayed: the filter cannot tell) waits in
/// the receive buffer until the loop reads it, instead of pushing out the peer's next frame;
/// the default buffer (208 kB here) would hold about 250 of them.
#[test]
fn a_burst_of_1500_frames_waits_to_be_read() {
    const BURST: usize = 1500;
    let lab = Lab::new();
    let mut a = open(&lab.a, ucast("va", A1, B1));
    let granted = a.receive_buffer().expect("SO_RCVBUF");
    assert!(granted >= 2 * UDP_RCVBUF_BYTES, "receive buffer {granted} bytes");
    let sender = raw_sender(&lab.b, B1.into());
    for i in 0..BURST {
        sender.send_to(&frame(1, i as u8), SocketAddr::from((A1, PORT))).expect("send");
    }
    let got = drain(&mut a, BURST);
    assert_eq!((got.len(), a.refresh_kernel_dropped()), (BURST, 0), "all of them, none dropped");
    assert!(got.iter().enumerate().all(|(i, d)| *d == frame(1, i as u8)), "in order");
}

/// More than the buffer holds: what the kernel had no room for is counted, and what was
/// read plus what was dropped is what was sent.
#[test]
fn what_a_full_buffer_drops_is_counted() {
    const SENT: usize = 20_000;
    let lab = Lab::new();
    let mut a = open(&lab.a, ucast("va", A1, B1));
    let sender = raw_sender(&lab.b, B1.into());
    for i in 0..SENT {
        sender.send_to(&frame(1, i as u8), SocketAddr::from((A1, PORT))).expect("send");
    }
    let got = drain(&mut a, SENT);
    let dropped = a.refresh_kernel_dropped();
    assert!(dropped > 0, "{SENT} frames fit the buffer: make SENT larger");
    assert_eq!(got.len() as u64 + dropped, SENT as u64, "read {} dropped {dropped}", got.len());
    assert_eq!(a.stats().kernel_dropped, dropped);
}
