//! Ping nodes: ICMP echo to each `ping` address from one non-blocking socket served by the
//! loop. IPv4 only. When the nodes count as reachable (window, cadence, stalls) is
//! `health::reach`: this driver sends the echo rounds it says are due and hands it the replies
//! that carry our cookie, nothing else.
//!
//! The socket is an unprivileged ICMP datagram socket (`socket(AF_INET, SOCK_DGRAM,
//! IPPROTO_ICMP)`, allowed by `net.ipv4.ping_group_range`; the kernel picks the echo id and
//! delivers only our replies) and, when that is refused, a raw ICMP socket (root or
//! CAP_NET_RAW; we filter replies by our id, which `open` draws at random). Each echo carries
//! a cookie and the send time, so a reply is matched by source address, id (raw) and payload,
//! and gives its round trip without any table of outstanding requests. A reply older than the
//! window is ignored.
//!
//! The cookie (SPEC §7.2) is 8 random bytes drawn from the kernel once per `open`, that is
//! once per daemon run. A reply counts only when it is exactly as long as our echo and carries
//! exactly that cookie: a forger who cannot see our echoes, or who recorded the replies of an
//! earlier run, cannot make a lost ping node look reachable. Anything else (another cookie,
//! the fixed magic of older versions, a short or long payload) counts as nothing.
//!
//! Echo layout (`field`): ICMP type, code, checksum, id and sequence (8 bytes), then the
//! cookie (8 bytes) and the send time in milliseconds (u64 big-endian).
//!
//! Call protocol: `send_due(now)` when `next_deadline()` is reached (sends one echo to every
//! node and re-evaluates reachability), `handle_readable(now)` when `fd()` polls readable,
//! and `reach_mut().handle_wake` on every wake of the loop (stalls, see `health::reach`).
//! Allocation-free after `open`. Send errors (no route, link down) count as a lost echo.

use crate::core::time::{Duration, Instant};
use crate::drivers::checksum::internet_checksum;
use crate::health::Reasons;
pub use crate::health::reach::PingNode;
use crate::health::reach::Reach;
use crate::limits::PING_NODES_MAX;
use core::fmt;
use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrIn, recvfrom, sendto, socket,
};
use std::net::Ipv4Addr;
use std::net::SocketAddrV4;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// Where each part of an echo request or reply lies.
pub mod field {
    /// A run of bytes within the echo.
    pub type Field = core::ops::Range<usize>;

    /// ICMP type: `ECHO_REQUEST` or `ECHO_REPLY`.
    pub const TYPE: usize = 0;
    /// ICMP code (0 for echoes).
    pub const CODE: usize = 1;
    /// Internet checksum over the whole echo.
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
/// ICMP type of an echo request.
const ECHO_REQUEST: u8 = 8;
/// ICMP type of an echo reply.
pub(crate) const ECHO_REPLY: u8 = 0;
/// Replies taken per `handle_readable`, so that a flood cannot starve the loop.
const REPLIES_PER_WAKE_MAX: usize = 64;

/// Why the ping socket could not be opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PingError {
    /// Neither an ICMP datagram nor a raw socket could be made.
    Socket(Errno),
    /// The kernel gave no random bytes for the cookie and id.
    Random(Errno),
    /// More addresses than `limits::PING_NODES_MAX`.
    TooMany,
}

impl fmt::Display for PingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PingError::Socket(e) => write!(f, "ping: no ICMP socket: {}", e.desc()),
            PingError::Random(e) => write!(f, "ping: no random cookie: {}", e.desc()),
            PingError::TooMany => write!(f, "ping: more than {PING_NODES_MAX} nodes"),
        }
    }
}

/// The ping socket and every node's state.
#[derive(Debug)]
pub struct Ping {
    fd: OwnedFd,
    raw: bool,
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
    /// Opens the socket for `addrs`, sending every `interval`; a node is reachable when it
    /// answered within `window_intervals` intervals (at least 1). The first echoes are due at
    /// `now`.
    pub fn open(
        addrs: &[Ipv4Addr],
        interval: Duration,
        window_intervals: u32,
        now: Instant,
    ) -> Result<Ping, PingError> {
        let reach =
            Reach::new(addrs, interval, window_intervals, now).map_err(|_| PingError::TooMany)?;
        let mut random = [0u8; 10];
        crate::drivers::entropy::fill(&mut random).map_err(PingError::Random)?;
        let [c0, c1, c2, c3, c4, c5, c6, c7, i0, i1] = random;
        let (fd, raw) = open_socket()?;
        Ok(Ping {
            fd,
            raw,
            ident: u16::from_be_bytes([i0, i1]),
            cookie: u64::from_be_bytes([c0, c1, c2, c3, c4, c5, c6, c7]),
            seq: 0,
            reach,
            send_errors: 0,
        })
    }

    /// The socket, for `poll(2)` (readable = replies waiting).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// True when this is a raw socket (the datagram kind was refused).
    pub fn is_raw(&self) -> bool {
        self.raw
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
        let mut buf = [0u8; ECHO_LEN];
        encode_echo(&mut buf, self.ident, self.seq, self.cookie, now);
        let mut sent = 0;
        for node in self.reach.nodes() {
            match send_to(&self.fd, &buf, node.addr) {
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

    /// Takes the waiting replies; returns how many matched a node.
    pub fn handle_readable(&mut self, now: Instant) -> usize {
        let mut matched = 0;
        let mut buf = [0u8; 256];
        for _ in 0..REPLIES_PER_WAKE_MAX {
            let Ok((len, from)) = recv_from(&self.fd, &mut buf) else { break };
            let icmp = if self.raw { strip_ip_header(&buf[..len]) } else { Some(&buf[..len]) };
            let ident = self.raw.then_some(self.ident);
            let Some(sent_at) = icmp.and_then(|p| decode_reply(p, ident, self.cookie)) else {
                continue;
            };
            matched += usize::from(self.reach.handle_reply(now, from, sent_at));
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

fn open_socket() -> Result<(OwnedFd, bool), PingError> {
    let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
    for (ty, raw) in [(SockType::Datagram, false), (SockType::Raw, true)] {
        match socket(AddressFamily::Inet, ty, flags, SockProtocol::Icmp) {
            Ok(fd) => return Ok((fd, raw)),
            Err(e) if raw => return Err(PingError::Socket(e)),
            Err(e) => {
                log::debug!("ping: ICMP datagram socket refused ({}), trying raw", e.desc());
            }
        }
    }
    Err(PingError::Socket(Errno::EPROTONOSUPPORT))
}

fn send_to(fd: &OwnedFd, buf: &[u8], addr: Ipv4Addr) -> Result<(), Errno> {
    let to = SockaddrIn::from(SocketAddrV4::new(addr, 0));
    sendto(fd.as_raw_fd(), buf, &to, MsgFlags::MSG_DONTWAIT).map(drop)
}

/// One datagram and its source, without waiting (the socket is non-blocking: `open_socket`).
fn recv_from(fd: &OwnedFd, buf: &mut [u8]) -> Result<(usize, Ipv4Addr), Errno> {
    let (n, from) = recvfrom::<SockaddrIn>(fd.as_raw_fd(), buf)?;
    Ok((n, from.map_or(Ipv4Addr::UNSPECIFIED, |sa| sa.ip())))
}

/// Writes an ICMP echo request with `cookie` and `now` into `buf`.
pub fn encode_echo(buf: &mut [u8; ECHO_LEN], ident: u16, seq: u16, cookie: u64, now: Instant) {
    buf.fill(0);
    buf[field::TYPE] = ECHO_REQUEST;
    buf[field::IDENT].copy_from_slice(&ident.to_be_bytes());
    buf[field::SEQ].copy_from_slice(&seq.to_be_bytes());
    buf[field::COOKIE].copy_from_slice(&cookie.to_be_bytes());
    buf[field::SENT_MS].copy_from_slice(&now.total_millis().to_be_bytes());
    let sum = checksum(buf);
    buf[field::CHECKSUM].copy_from_slice(&sum.to_be_bytes());
}

/// The send time of an echo reply to one of our echoes, `None` for anything else: a reply
/// must be exactly as long as our echo and carry exactly `cookie`. `ident` is checked when
/// given (raw sockets see every reply on the host). Never panics, whatever `icmp` holds.
pub fn decode_reply(icmp: &[u8], ident: Option<u16>, cookie: u64) -> Option<Instant> {
    let icmp: &[u8; ECHO_LEN] = icmp.try_into().ok()?;
    if icmp[field::TYPE] != ECHO_REPLY || icmp[field::CODE] != 0 {
        return None;
    }
    if icmp[field::COOKIE] != cookie.to_be_bytes() {
        return None;
    }
    if ident.is_some_and(|id| icmp[field::IDENT] != id.to_be_bytes()) {
        return None;
    }
    let mut ms = [0u8; 8];
    ms.copy_from_slice(&icmp[field::SENT_MS]);
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

    const COOKIE: u64 = 0x0123_4567_89ab_cdef;

    /// Our echo to `ident`, `seq` 7, sent at 99 ms with `COOKIE`, turned into its reply.
    fn reply(ident: u16) -> [u8; ECHO_LEN] {
        let mut buf = [0u8; ECHO_LEN];
        encode_echo(&mut buf, ident, 7, COOKIE, Instant::from_millis(99));
        assert_eq!(checksum(&buf), 0, "checksum verifies");
        assert_eq!(decode_reply(&buf, None, COOKIE), None, "a request is not a reply");
        buf[field::TYPE] = ECHO_REPLY;
        buf
    }

    #[test]
    fn a_reply_with_our_cookie_gives_its_send_time() {
        let buf = reply(0x1234);
        assert_eq!(buf[field::COOKIE], COOKIE.to_be_bytes());
        assert_eq!(decode_reply(&buf, Some(0x1234), COOKIE), Some(Instant::from_millis(99)));
        assert_eq!(decode_reply(&buf, None, COOKIE), Some(Instant::from_millis(99)));
        assert_eq!(decode_reply(&buf, Some(0x1235), COOKIE), None, "another id (raw)");
    }

    #[test]
    fn a_reply_without_exactly_our_cookie_counts_as_nothing() {
        let ours = reply(0x1234);
        let decode = |b: &[u8]| decode_reply(b, Some(0x1234), COOKIE);
        // Another run's cookie, one bit off, and the fixed magic of older versions.
        let mut other = [0u8; ECHO_LEN];
        encode_echo(&mut other, 0x1234, 7, COOKIE ^ (1 << 40), Instant::from_millis(99));
        other[field::TYPE] = ECHO_REPLY;
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
            Ping::open(&[Ipv4Addr::LOCALHOST], Duration::from_millis(10), 3, Instant::ZERO)
                .expect("an ICMP socket (the tests run as root)")
        };
        let pings: Vec<Ping> = (0..4).map(|_| open()).collect();
        for (i, a) in pings.iter().enumerate() {
            for b in &pings[i + 1..] {
                assert_ne!(a.cookie, b.cookie, "a cookie per run (64 random bits)");
            }
        }
        // Four equal random 16-bit ids come once in 2^48; a pid-derived id always repeats.
        assert!(pings.iter().any(|p| p.ident != pings[0].ident), "a random id per run");
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
