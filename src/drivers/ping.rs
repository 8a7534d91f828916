//! Ping nodes: ICMP echo to each IPv4 `ping` address and ICMPv6 echo to each IPv6 one, from
//! one non-blocking socket per family in use, both served by the loop. When the nodes count as
//! reachable (window, cadence, stalls) is `health::reach`, which judges both families alike:
//! this driver sends the echo rounds it says are due and hands it the replies that carry our
//! cookie, nothing else.
//!
//! Each socket is an unprivileged "ping" datagram socket (`socket(AF_INET, SOCK_DGRAM,
//! IPPROTO_ICMP)`, and `AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6` for IPv6, both allowed by
//! `net.ipv4.ping_group_range`; the kernel picks the echo id, fills in the checksum and
//! delivers only our replies) and, when that is refused, a raw socket of the family (root or
//! CAP_NET_RAW; we filter replies by our id, which `open` draws at random). A raw ICMP socket
//! hands over the IPv4 header too, a raw ICMPv6 socket only the message, and only echo replies
//! (ICMP6_FILTER: neighbour discovery never wakes the loop); the kernel computes the ICMPv6
//! checksum, over the IPv6 pseudo-header, on both kinds. Each echo carries a cookie and the
//! send time, so a reply is matched by source address, id (raw) and payload, and gives its
//! round trip without any table of outstanding requests. A reply older than the window is
//! ignored.
//!
//! The cookie (SPEC §7.2) is 8 random bytes drawn from the kernel once per `open`, that is
//! once per daemon run, the same for both families. A reply counts only when it is an echo
//! reply of its socket's family, exactly as long as our echo and carries exactly that cookie:
//! a forger who cannot see our echoes, or who recorded the replies of an earlier run, cannot
//! make a lost ping node look reachable. Anything else (another cookie, the fixed magic of
//! older versions, a short or long payload) counts as nothing.
//!
//! Echo layout (`field`), the same in ICMP and ICMPv6: type, code, checksum, id and sequence
//! (8 bytes), then the cookie (8 bytes) and the send time in milliseconds (u64 big-endian).
//!
//! Call protocol: `send_due(now)` when `next_deadline()` is reached (sends one echo to every
//! node and re-evaluates reachability), `handle_readable(now)` when one of `fds()` polls
//! readable (it reads both), and `reach_mut().handle_wake` on every wake of the loop (stalls,
//! see `health::reach`). Allocation-free after `open`. Send errors (no route, link down) count
//! as a lost echo.

use crate::core::time::{Duration, Instant};
use crate::drivers::checksum::internet_checksum;
use crate::health::Reasons;
pub use crate::health::reach::PingNode;
use crate::health::reach::Reach;
use crate::limits::PING_NODES_MAX;
use core::fmt;
use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrLike, SockaddrStorage,
    recvfrom, sendto, socket,
};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// Where each part of an echo request or reply lies.
pub mod field {
    /// A run of bytes within the echo.
    pub type Field = core::ops::Range<usize>;

    /// ICMP type: the family's echo request or echo reply (`Icmp`).
    pub const TYPE: usize = 0;
    /// ICMP code (0 for echoes).
    pub const CODE: usize = 1;
    /// Internet checksum over the whole echo (ICMPv6: and the IPv6 pseudo-header).
    pub const CHECKSUM: Field = 2..4;
    /// Echo id: ours on a raw socket, the kernel's on a datagram socket.
    pub const IDENT: Field = 4..6;
    /// Echo sequence number.
    pub const SEQ: Field = 6..8;
    /// This run's random cookie.
    pub const COOKIE: Field = 8..16;
    /// Send time, milliseconds of our clock, big-endian.
    pub const SENT_MS: Field = 16..24;
}

/// ICMP header + cookie + send time.
pub const ECHO_LEN: usize = field::SENT_MS.end;
/// Replies taken per socket and `handle_readable`, so that a flood cannot starve the loop.
const REPLIES_PER_WAKE_MAX: usize = 64;
/// The ICMPv6 socket option that picks the message types a raw socket sees (Linux
/// `ICMPV6_FILTER`, RFC 3542 `ICMP6_FILTER`; not in the libc crate).
const ICMP6_FILTER: libc::c_int = 1;

/// The echo protocol of one address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Icmp {
    /// ICMP, for IPv4 ping nodes: request 8, reply 0.
    V4,
    /// ICMPv6, for IPv6 ping nodes: request 128, reply 129.
    V6,
}

impl Icmp {
    /// The protocol of echoes to `addr`.
    pub const fn of(addr: IpAddr) -> Icmp {
        match addr {
            IpAddr::V4(_) => Icmp::V4,
            IpAddr::V6(_) => Icmp::V6,
        }
    }

    /// The type of an echo request.
    pub const fn echo_request(self) -> u8 {
        match self {
            Icmp::V4 => 8,
            Icmp::V6 => 128,
        }
    }

    /// The type of an echo reply.
    pub const fn echo_reply(self) -> u8 {
        match self {
            Icmp::V4 => 0,
            Icmp::V6 => 129,
        }
    }

    /// The socket's index in `Ping::sockets`.
    const fn index(self) -> usize {
        match self {
            Icmp::V4 => 0,
            Icmp::V6 => 1,
        }
    }
}

/// Why the ping socket could not be opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PingError {
    /// Neither a datagram nor a raw socket of the family could be made.
    Socket(Icmp, Errno),
    /// The kernel gave no random bytes for the cookie and id.
    Random(Errno),
    /// More addresses than `limits::PING_NODES_MAX`.
    TooMany,
}

impl fmt::Display for PingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PingError::Socket(Icmp::V4, e) => write!(f, "ping: no ICMP socket: {}", e.desc()),
            PingError::Socket(Icmp::V6, e) => write!(f, "ping: no ICMPv6 socket: {}", e.desc()),
            PingError::Random(e) => write!(f, "ping: no random cookie: {}", e.desc()),
            PingError::TooMany => write!(f, "ping: more than {PING_NODES_MAX} nodes"),
        }
    }
}

/// The socket of one family.
#[derive(Debug)]
struct Socket {
    fd: OwnedFd,
    raw: bool,
}

/// The ping sockets and every node's state.
#[derive(Debug)]
pub struct Ping {
    /// The ICMP socket and the ICMPv6 socket (`Icmp::index`), each when a node needs it.
    sockets: [Option<Socket>; 2],
    /// The echo id, random per run (it matters on a raw socket only).
    ident: u16,
    /// Random per run: a reply counts only when it carries it back.
    cookie: u64,
    seq: u16,
    /// What the replies mean: the pure judge.
    reach: Reach,
    send_errors: u64,
}

impl Ping {
    /// Opens a socket for each family among `addrs`, sending every `interval`; a node is
    /// reachable when it answered within `window_intervals` intervals (at least 1). The first
    /// echoes are due at `now`.
    pub fn open(
        addrs: &[IpAddr],
        interval: Duration,
        window_intervals: u32,
        now: Instant,
    ) -> Result<Ping, PingError> {
        let reach =
            Reach::new(addrs, interval, window_intervals, now).map_err(|_| PingError::TooMany)?;
        let mut random = [0u8; 10];
        crate::drivers::entropy::fill(&mut random).map_err(PingError::Random)?;
        let [c0, c1, c2, c3, c4, c5, c6, c7, i0, i1] = random;
        let mut sockets = [None, None];
        for icmp in [Icmp::V4, Icmp::V6] {
            if addrs.iter().any(|&a| Icmp::of(a) == icmp) {
                sockets[icmp.index()] = Some(open_socket(icmp)?);
            }
        }
        Ok(Ping {
            sockets,
            ident: u16::from_be_bytes([i0, i1]),
            cookie: u64::from_be_bytes([c0, c1, c2, c3, c4, c5, c6, c7]),
            seq: 0,
            reach,
            send_errors: 0,
        })
    }

    /// The sockets, for `poll(2)` (readable = replies waiting): one per family in use.
    pub fn fds(&self) -> impl Iterator<Item = BorrowedFd<'_>> {
        self.sockets.iter().flatten().map(|s| s.fd.as_fd())
    }

    /// True when a socket is a raw one (the datagram kind was refused).
    pub fn is_raw(&self) -> bool {
        self.sockets.iter().flatten().any(|s| s.raw)
    }

    /// When `send_due` next has work.
    pub fn next_deadline(&self) -> Instant {
        self.reach.next_deadline()
    }

    /// When due, re-evaluates reachability and sends one echo to every node; returns the
    /// number of echoes the kernel accepted.
    pub fn send_due(&mut self, now: Instant) -> usize {
        self.send_within(now, Duration::ZERO)
    }

    /// As `send_due`, but also when the echoes are due within `early`: the loop sends them
    /// on a wake it has anyway (a heartbeat) instead of waking once more for them.
    pub fn send_within(&mut self, now: Instant, early: Duration) -> usize {
        if !self.reach.poll_send(now, early) {
            return 0;
        }
        self.seq = self.seq.wrapping_add(1);
        let mut echoes = [[0u8; ECHO_LEN]; 2];
        for icmp in [Icmp::V4, Icmp::V6] {
            encode_echo(&mut echoes[icmp.index()], icmp, self.ident, self.seq, self.cookie, now);
        }
        let mut sent = 0;
        for node in self.reach.nodes() {
            let icmp = Icmp::of(node.addr);
            // INVARIANT: `open` made a socket for the family of every node.
            let socket = self.sockets[icmp.index()].as_ref().expect("a socket per family");
            match send_to(&socket.fd, &echoes[icmp.index()], node.addr) {
                Ok(()) => sent += 1,
                Err(e) => {
                    self.send_errors = self.send_errors.saturating_add(1);
                    log::debug!("ping {}: send: {}", node.addr, e.desc());
                }
            }
        }
        sent
    }

    /// This node itself stalled until `now` (`Reach::resume_after_stall`).
    pub fn resume_after_stall(&mut self, now: Instant) {
        self.reach.resume_after_stall(now);
    }

    /// The echo interval.
    pub fn interval(&self) -> Duration {
        self.reach.interval()
    }

    /// The judge of the replies.
    pub fn reach(&self) -> &Reach {
        &self.reach
    }

    /// The judge of the replies, to tell it of the loop's wakes (`Reach::handle_wake`).
    pub fn reach_mut(&mut self) -> &mut Reach {
        &mut self.reach
    }

    /// Takes the waiting replies on every socket; returns how many matched a node.
    pub fn handle_readable(&mut self, now: Instant) -> usize {
        let mut matched = 0;
        let mut buf = [0u8; 256];
        for icmp in [Icmp::V4, Icmp::V6] {
            let Some(socket) = &self.sockets[icmp.index()] else { continue };
            let ident = socket.raw.then_some(self.ident);
            for _ in 0..REPLIES_PER_WAKE_MAX {
                let Ok((len, from)) = recv_from(&socket.fd, &mut buf) else { break };
                let message = icmp_message(&buf[..len], icmp, socket.raw);
                let reply = message.and_then(|m| decode_reply(m, icmp, ident, self.cookie));
                let Some(sent_at) = reply else { continue };
                matched += usize::from(self.reach.handle_reply(now, from, sent_at));
            }
        }
        matched
    }

    /// True when at least one node answered within the window, or is not yet known to be
    /// lost (or there are no nodes).
    pub fn reachable(&self) -> bool {
        self.reach.reachable()
    }

    /// Every node's state.
    pub fn nodes(&self) -> &[PingNode] {
        self.reach.nodes()
    }

    /// Echoes the kernel refused (no route, link down).
    pub fn send_errors(&self) -> u64 {
        self.send_errors
    }

    /// `no ping node answers` when unreachable.
    pub fn reasons(&self, reasons: &mut Reasons) {
        if !self.reachable() {
            reasons.push(format_args!("no ping node answers"));
        }
    }
}

/// A datagram socket of the family, else a raw one (an ICMPv6 one seeing echo replies only).
fn open_socket(icmp: Icmp) -> Result<Socket, PingError> {
    let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
    let (family, protocol) = match icmp {
        Icmp::V4 => (AddressFamily::Inet, SockProtocol::Icmp),
        Icmp::V6 => (AddressFamily::Inet6, SockProtocol::IcmpV6),
    };
    match socket(family, SockType::Datagram, flags, protocol) {
        Ok(fd) => return Ok(Socket { fd, raw: false }),
        Err(e) => log::debug!("ping: {icmp:?} datagram socket refused ({}), trying raw", e.desc()),
    }
    let fd =
        socket(family, SockType::Raw, flags, protocol).map_err(|e| PingError::Socket(icmp, e))?;
    if icmp == Icmp::V6 {
        pass_only_echo_replies(&fd).map_err(|e| PingError::Socket(icmp, e))?;
    }
    Ok(Socket { fd, raw: true })
}

/// ICMP6_FILTER on a raw ICMPv6 socket: only echo replies reach it, not the neighbour
/// discovery, router advertisements and multicast listener traffic of the link.
fn pass_only_echo_replies(fd: &OwnedFd) -> Result<(), Errno> {
    // `struct icmp6_filter`: one bit per type, set = blocked.
    let mut filter = [u32::MAX; 8];
    let reply = usize::from(Icmp::V6.echo_reply());
    filter[reply / 32] &= !(1 << (reply % 32));
    // SAFETY: `filter` is a live `struct icmp6_filter` (8 u32 words) of the size passed; the
    // kernel only reads it, during the call.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_ICMPV6,
            ICMP6_FILTER,
            filter.as_ptr().cast(),
            core::mem::size_of_val(&filter) as libc::socklen_t,
        )
    };
    Errno::result(r).map(drop)
}

fn send_to(fd: &OwnedFd, buf: &[u8], addr: IpAddr) -> Result<(), Errno> {
    let to = SockaddrStorage::from(SocketAddr::new(addr, 0));
    sendto(fd.as_raw_fd(), buf, &to, MsgFlags::MSG_DONTWAIT).map(drop)
}

/// One datagram and its source, without waiting (the socket is non-blocking: `open_socket`).
fn recv_from(fd: &OwnedFd, buf: &mut [u8]) -> Result<(usize, IpAddr), Errno> {
    let (n, from) = recvfrom::<SockaddrStorage>(fd.as_raw_fd(), buf)?;
    let ip = from.as_ref().and_then(|sa| match sa.family() {
        Some(AddressFamily::Inet) => sa.as_sockaddr_in().map(|a| IpAddr::V4(a.ip())),
        Some(AddressFamily::Inet6) => sa.as_sockaddr_in6().map(|a| IpAddr::V6(a.ip())),
        _ => None,
    });
    Ok((n, ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))))
}

/// The ICMP message in what a socket of `icmp` returned: a raw ICMP socket puts the IPv4
/// header first; a datagram socket, and a raw ICMPv6 one, give the message alone.
pub fn icmp_message(packet: &[u8], icmp: Icmp, raw: bool) -> Option<&[u8]> {
    match (icmp, raw) {
        (Icmp::V4, true) => strip_ip_header(packet),
        _ => Some(packet),
    }
}

/// Writes an echo request of `icmp` with `cookie` and `now` into `buf`. The ICMP checksum is
/// ours to fill in (a raw socket sends it as it is); the ICMPv6 one is left zero: it covers
/// the IPv6 pseudo-header, which only the kernel knows (it picks the source address), and the
/// kernel fills it in on both kinds of socket.
pub fn encode_echo(
    buf: &mut [u8; ECHO_LEN],
    icmp: Icmp,
    ident: u16,
    seq: u16,
    cookie: u64,
    now: Instant,
) {
    buf.fill(0);
    buf[field::TYPE] = icmp.echo_request();
    buf[field::IDENT].copy_from_slice(&ident.to_be_bytes());
    buf[field::SEQ].copy_from_slice(&seq.to_be_bytes());
    buf[field::COOKIE].copy_from_slice(&cookie.to_be_bytes());
    buf[field::SENT_MS].copy_from_slice(&now.total_millis().to_be_bytes());
    if icmp == Icmp::V4 {
        let sum = checksum(buf);
        buf[field::CHECKSUM].copy_from_slice(&sum.to_be_bytes());
    }
}

/// The send time of an `icmp` echo reply to one of our echoes, `None` for anything else: a
/// reply must be of the family's reply type, exactly as long as our echo and carry exactly
/// `cookie`. `ident` is checked when given (raw sockets see every reply on the host). Never
/// panics, whatever `message` holds.
pub fn decode_reply(
    message: &[u8],
    icmp: Icmp,
    ident: Option<u16>,
    cookie: u64,
) -> Option<Instant> {
    let message: &[u8; ECHO_LEN] = message.try_into().ok()?;
    if message[field::TYPE] != icmp.echo_reply() || message[field::CODE] != 0 {
        return None;
    }
    if message[field::COOKIE] != cookie.to_be_bytes() {
        return None;
    }
    if ident.is_some_and(|id| message[field::IDENT] != id.to_be_bytes()) {
        return None;
    }
    let mut ms = [0u8; 8];
    ms.copy_from_slice(&message[field::SENT_MS]);
    Some(Instant::from_millis(u64::from_be_bytes(ms)))
}

pub(crate) fn strip_ip_header(packet: &[u8]) -> Option<&[u8]> {
    let ihl = usize::from(packet.first()? & 0x0f) * 4;
    packet.get(ihl..).filter(|_| ihl >= 20)
}

/// The Internet checksum (RFC 1071) of an ICMP message.
pub fn checksum(data: &[u8]) -> u16 {
    internet_checksum(&[data])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    const COOKIE: u64 = 0x0123_4567_89ab_cdef;

    /// Our ICMP echo to `ident`, `seq` 7, sent at 99 ms with `COOKIE`, turned into its reply.
    fn reply(ident: u16) -> [u8; ECHO_LEN] {
        let mut buf = [0u8; ECHO_LEN];
        encode_echo(&mut buf, Icmp::V4, ident, 7, COOKIE, Instant::from_millis(99));
        assert_eq!(checksum(&buf), 0, "checksum verifies");
        assert_eq!(decode_reply(&buf, Icmp::V4, None, COOKIE), None, "a request is no reply");
        buf[field::TYPE] = Icmp::V4.echo_reply();
        buf
    }

    /// The same, in ICMPv6.
    fn reply6(ident: u16) -> [u8; ECHO_LEN] {
        let mut buf = [0u8; ECHO_LEN];
        encode_echo(&mut buf, Icmp::V6, ident, 7, COOKIE, Instant::from_millis(99));
        assert_eq!(buf[field::TYPE], 128, "an ICMPv6 echo request");
        assert_eq!(buf[field::CHECKSUM], [0, 0], "left to the kernel (pseudo-header)");
        assert_eq!(decode_reply(&buf, Icmp::V6, None, COOKIE), None, "a request is no reply");
        buf[field::TYPE] = Icmp::V6.echo_reply();
        buf
    }

    #[test]
    fn a_reply_with_our_cookie_gives_its_send_time() {
        let buf = reply(0x1234);
        assert_eq!(buf[field::COOKIE], COOKIE.to_be_bytes());
        let sent = Some(Instant::from_millis(99));
        assert_eq!(decode_reply(&buf, Icmp::V4, Some(0x1234), COOKIE), sent);
        assert_eq!(decode_reply(&buf, Icmp::V4, None, COOKIE), sent);
        assert_eq!(decode_reply(&buf, Icmp::V4, Some(0x1235), COOKIE), None, "another id (raw)");
        let buf6 = reply6(0x1234);
        assert_eq!(buf6[field::COOKIE], COOKIE.to_be_bytes());
        assert_eq!(decode_reply(&buf6, Icmp::V6, Some(0x1234), COOKIE), sent);
        assert_eq!(decode_reply(&buf6, Icmp::V6, None, COOKIE), sent);
        assert_eq!(decode_reply(&buf6, Icmp::V6, Some(0x1235), COOKIE), None, "another id");
    }

    /// A reply counts only on the socket of its own family: type 0 is no ICMPv6 echo reply
    /// and 129 no ICMP one (whatever else they carry, cookie included).
    #[test]
    fn a_reply_counts_only_as_its_own_familys() {
        assert_eq!(decode_reply(&reply(1), Icmp::V6, None, COOKIE), None);
        assert_eq!(decode_reply(&reply6(1), Icmp::V4, None, COOKIE), None);
        assert_eq!(
            (Icmp::of(Ipv4Addr::LOCALHOST.into()), Icmp::of(Ipv6Addr::LOCALHOST.into())),
            (Icmp::V4, Icmp::V6)
        );
        // A raw ICMP socket hands over the IPv4 header; an ICMPv6 one never the IPv6 header.
        let mut packet = [0u8; 20 + ECHO_LEN];
        packet[0] = 0x45;
        packet[20..].copy_from_slice(&reply(1));
        assert_eq!(icmp_message(&packet, Icmp::V4, true), Some(&packet[20..]));
        assert_eq!(icmp_message(&packet, Icmp::V4, false), Some(&packet[..]));
        assert_eq!(icmp_message(&packet[20..], Icmp::V6, true), Some(&packet[20..]));
    }

    #[test]
    fn a_reply_without_exactly_our_cookie_counts_as_nothing() {
        for icmp in [Icmp::V4, Icmp::V6] {
            without_our_cookie(icmp);
        }
    }

    fn without_our_cookie(icmp: Icmp) {
        let ours = if icmp == Icmp::V4 { reply(0x1234) } else { reply6(0x1234) };
        let decode = |b: &[u8]| decode_reply(b, icmp, Some(0x1234), COOKIE);
        assert!(decode(&ours).is_some());
        // Another run's cookie, one bit off, and the fixed magic of older versions.
        let mut other = [0u8; ECHO_LEN];
        encode_echo(&mut other, icmp, 0x1234, 7, COOKIE ^ (1 << 40), Instant::from_millis(99));
        other[field::TYPE] = icmp.echo_reply();
        assert_eq!(decode(&other), None, "another cookie");
        for bit in 0..64 {
            let mut b = ours;
            b[field::COOKIE].copy_from_slice(&(COOKIE ^ (1 << bit)).to_be_bytes());
            assert_eq!(decode(&b), None, "cookie bit {bit} flipped");
        }
        let mut old = ours;
        old[field::COOKIE].copy_from_slice(b"hapair\0\x01");
        assert_eq!(decode(&old), None, "the old fixed magic");
        // Truncated anywhere, or longer than our echo: never a panic, never a reply.
        for len in 0..ECHO_LEN {
            assert_eq!(decode(&ours[..len]), None, "truncated to {len}");
        }
        let mut long = [0u8; ECHO_LEN + 1];
        long[..ECHO_LEN].copy_from_slice(&ours);
        assert_eq!(decode(&long), None, "a longer payload");
        let mut code = ours;
        code[field::CODE] = 1;
        assert_eq!(decode(&code), None, "a non-zero code");
    }

    #[test]
    fn every_open_draws_its_own_cookie_and_id() {
        let open = || {
            let addrs = [Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()];
            Ping::open(&addrs, Duration::from_millis(10), 3, Instant::ZERO)
                .expect("ICMP and ICMPv6 sockets (the tests run as root)")
        };
        let pings: Vec<Ping> = (0..4).map(|_| open()).collect();
        for (i, a) in pings.iter().enumerate() {
            for b in &pings[i + 1..] {
                assert_ne!(a.cookie, b.cookie, "a cookie per run (64 random bits)");
            }
        }
        // Four equal random 16-bit ids come once in 2^48; a pid-derived id always repeats.
        assert!(pings.iter().any(|p| p.ident != pings[0].ident), "a random id per run");
        assert!(pings.iter().all(|p| p.fds().count() == 2), "a socket per family");
    }

    #[test]
    fn ip_header_is_skipped_by_ihl() {
        let mut p = [0u8; 28];
        p[0] = 0x45;
        assert_eq!(strip_ip_header(&p).map(<[u8]>::len), Some(8));
        p[0] = 0x41;
        assert_eq!(strip_ip_header(&p), None);
        assert_eq!(strip_ip_header(&[]), None);
    }
}
