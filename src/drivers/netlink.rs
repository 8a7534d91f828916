//! rtnetlink, hand-encoded: the few route-netlink requests the `ip` resource needs — add and
//! delete an address, ask whether an address is on an interface, and read a link's index,
//! flags, operational state and MAC address.
//!
//! One `Netlink` owns one non-blocking `NETLINK_ROUTE` socket and one fixed receive buffer,
//! both made at open; a request never allocates. Call protocol for the loop (SPEC §7.3: no
//! blocking netlink read): `send(request)`, then poll `fd()` with the loop's other fds and call
//! `poll_reply()` when it is readable, until it hands back the answer; the caller gives up
//! after its own deadline (`REPLY_TIMEOUT_MS`) with `abandon()`. One request is pending at a
//! time; replies are matched by sequence number, and late answers to an abandoned request are
//! skipped. The kernel queues the answer to these requests while it handles `sendto`, so in
//! practice it is there at the first read; the send itself can still wait for the kernel's
//! routing lock (`rtnl_lock`) when another process holds it, as any rtnetlink client does.
//! `link`, `add_addr`, `del_addr` and `has_addr` are the same requests done blocking
//! (`wait_reply`, at most `REPLY_TIMEOUT_MS`), for start-up, tools and tests.
//!
//! The socket belongs to the network namespace of the thread that opened it.
//!
//! Not here: routes, neighbours, link changes, multicast notifications (nothing subscribes),
//! and any policy — "already so" answers (`EEXIST` on add, `EADDRNOTAVAIL` on delete) are
//! reported as `Applied::AlreadySo` and the caller decides what they mean.

use core::fmt;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, poll};
use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, recv, sendto, socket,
};

/// How long a request waits for the kernel's answer before it fails with `ETIMEDOUT`.
pub const REPLY_TIMEOUT_MS: i64 = 200;
/// Receive buffer: the kernel sizes dump chunks to the reader's buffer, at most a page or so.
const RX_LEN: usize = 16 * 1024;
/// The longest request we build (header, ifaddrmsg and four attributes).
const TX_LEN: usize = 128;
/// Longest interface name, without the NUL (IFNAMSIZ - 1).
pub const IFNAME_LEN_MAX: usize = 15;

const NLMSG_HDR_LEN: usize = 16;
pub(crate) const NLMSG_ERROR: u16 = 2;
pub(crate) const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_DUMP: u16 = 0x300;
pub(crate) const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
pub(crate) const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_GETADDR: u16 = 22;
const IFADDRMSG_LEN: usize = 8;
const IFINFOMSG_LEN: usize = 16;
pub(crate) const IFA_ADDRESS: u16 = 1;
pub(crate) const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const IFA_FLAGS: u16 = 8;
/// Do not run duplicate address detection: the address is usable at once.
const IFA_F_NODAD: u32 = 0x02;
pub(crate) const IFLA_ADDRESS: u16 = 1;
pub(crate) const IFLA_IFNAME: u16 = 3;
pub(crate) const IFLA_OPERSTATE: u16 = 16;
pub(crate) const IFF_UP: u32 = 0x1;
pub(crate) const IFF_LOWER_UP: u32 = 0x1_0000;
/// RFC 2863 operational states as the kernel reports them (IF_OPER_*).
const IF_OPER_UNKNOWN: u8 = 0;
const IF_OPER_UP: u8 = 6;

/// An interface name: 1 to 15 bytes, no NUL, `/` or whitespace. `Copy`, so errors can carry it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct IfName {
    bytes: [u8; IFNAME_LEN_MAX],
    len: u8,
}

impl IfName {
    /// The name, or `None` when the kernel could never accept it.
    pub fn new(name: &str) -> Option<IfName> {
        let raw = name.as_bytes();
        let bad = |b: &u8| *b == 0 || *b == b'/' || b.is_ascii_whitespace();
        if raw.is_empty() || raw.len() > IFNAME_LEN_MAX || raw.iter().any(bad) {
            return None;
        }
        let mut bytes = [0; IFNAME_LEN_MAX];
        bytes[..raw.len()].copy_from_slice(raw);
        Some(IfName { bytes, len: raw.len() as u8 })
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        // INVARIANT: `new` copied the bytes of a `&str` whole, so they are valid UTF-8.
        core::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("?")
    }
}

impl fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// An interface as the kernel knows it now: its name and index. The index changes when the
/// interface is deleted and made again, so callers look it up again before each use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Iface {
    /// The name it was looked up by.
    pub name: IfName,
    /// The kernel's interface index (never 0).
    pub index: u32,
}

/// What a link looks like from rtnetlink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkState {
    /// The interface, name and index.
    pub iface: Iface,
    /// IFF_UP: the administrator set it up.
    pub admin_up: bool,
    /// IFF_LOWER_UP: the driver sees carrier.
    pub lower_up: bool,
    /// IFLA_OPERSTATE (RFC 2863: 6 is up, 0 is unknown, 2 is down...).
    pub oper_state: u8,
    /// The hardware address, when it is a 6-byte (Ethernet) one.
    pub mac: Option<[u8; 6]>,
}

impl LinkState {
    /// Up, with carrier, and operationally up (or "unknown", which drivers without carrier
    /// reporting such as dummy interfaces always say).
    pub fn is_up(&self) -> bool {
        self.admin_up
            && self.lower_up
            && (self.oper_state == IF_OPER_UP || self.oper_state == IF_OPER_UNKNOWN)
    }
}

/// The result of a change that may already have been made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The kernel made the change.
    Done,
    /// Nothing to do: the address was already there (add) or already gone (delete).
    AlreadySo,
}

/// Which request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetlinkOp {
    /// Opening the socket.
    Open,
    /// RTM_GETLINK by name.
    Link,
    /// RTM_NEWADDR.
    AddAddr,
    /// RTM_DELADDR.
    DelAddr,
    /// RTM_GETADDR dump.
    ListAddrs,
}

impl NetlinkOp {
    fn as_str(self) -> &'static str {
        match self {
            NetlinkOp::Open => "open rtnetlink socket",
            NetlinkOp::Link => "look up link",
            NetlinkOp::AddAddr => "add address",
            NetlinkOp::DelAddr => "delete address",
            NetlinkOp::ListAddrs => "list addresses",
        }
    }
}

/// A failed request, naming the interface and address it was about. `ENODEV` means there is
/// no such interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetlinkError {
    /// The request.
    pub op: NetlinkOp,
    /// The interface it was about (absent for `Open`).
    pub dev: Option<IfName>,
    /// The address it was about, if any.
    pub addr: Option<IpAddr>,
    /// The kernel's answer (`ETIMEDOUT` when no answer came in time).
    pub errno: Errno,
}

impl fmt::Display for NetlinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.op.as_str())?;
        if let Some(addr) = self.addr {
            write!(f, " {addr}")?;
        }
        if let Some(dev) = self.dev {
            write!(f, " dev {dev}")?;
        }
        if self.errno == Errno::ENODEV {
            write!(f, ": no interface named {}", self.dev.as_ref().map_or("?", IfName::as_str))
        } else {
            write!(f, ": {}", self.errno.desc())
        }
    }
}

/// A request of the `ip` resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// RTM_GETLINK by name: index, flags, operational state and MAC address.
    Link(IfName),
    /// RTM_NEWADDR: IPv4 with its broadcast address, IPv6 with IFA_F_NODAD (usable at once).
    AddAddr {
        /// The interface.
        iface: Iface,
        /// The address.
        addr: IpAddr,
        /// Its prefix length.
        prefix: u8,
    },
    /// RTM_DELADDR.
    DelAddr {
        /// The interface.
        iface: Iface,
        /// The address.
        addr: IpAddr,
        /// Its prefix length.
        prefix: u8,
    },
    /// RTM_GETADDR dump: whether the address (any prefix length) is on the interface.
    HasAddr {
        /// The interface.
        iface: Iface,
        /// The address.
        addr: IpAddr,
    },
}

impl Request {
    /// Which operation this is, for errors.
    pub fn op(self) -> NetlinkOp {
        match self {
            Request::Link(_) => NetlinkOp::Link,
            Request::AddAddr { .. } => NetlinkOp::AddAddr,
            Request::DelAddr { .. } => NetlinkOp::DelAddr,
            Request::HasAddr { .. } => NetlinkOp::ListAddrs,
        }
    }

    /// The error `errno` of this request, naming its interface and address.
    pub fn error(self, errno: Errno) -> NetlinkError {
        let (dev, addr) = match self {
            Request::Link(name) => (Some(name), None),
            Request::AddAddr { iface, addr, .. }
            | Request::DelAddr { iface, addr, .. }
            | Request::HasAddr { iface, addr } => (Some(iface.name), Some(addr)),
        };
        NetlinkError { op: self.op(), dev, addr, errno }
    }
}

/// The answer to a `Request`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// To `Link`.
    Link(LinkState),
    /// To `AddAddr` (`AlreadySo`: it was there) and `DelAddr` (`AlreadySo`: it was gone).
    Applied(Applied),
    /// To `HasAddr`.
    HasAddr(bool),
}

/// The request awaiting its answer, and what the answer said so far.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pending {
    pub(crate) req: Request,
    pub(crate) seq: u32,
    pub(crate) link: Option<LinkState>,
    pub(crate) found: bool,
}

/// One rtnetlink socket and its receive buffer. See the module doc for the call protocol.
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
    pending: Option<Pending>,
    rx: Box<[u8; RX_LEN]>,
}

impl Netlink {
    /// Opens a non-blocking `NETLINK_ROUTE` socket in the calling thread's network namespace.
    pub fn open() -> Result<Netlink, NetlinkError> {
        let fail = |errno| NetlinkError { op: NetlinkOp::Open, dev: None, addr: None, errno };
        let flags = SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK;
        let fd = socket(AddressFamily::Netlink, SockType::Raw, flags, SockProtocol::NetlinkRoute)
            .map_err(fail)?;
        Ok(Netlink { fd, seq: 0, pending: None, rx: Box::new([0; RX_LEN]) })
    }

    /// The socket, to poll for readability while a request is pending.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The request sent and not answered yet.
    pub fn pending(&self) -> Option<Request> {
        self.pending.map(|p| p.req)
    }

    /// Sends `req`; its answer is read by `poll_reply`. A request still pending is
    /// abandoned (its late answer is skipped by sequence number). Never blocks: a full
    /// socket buffer is `EAGAIN`.
    pub fn send(&mut self, req: Request) -> Result<(), NetlinkError> {
        self.pending = None;
        let mut tx = build(req);
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let bytes = tx.finish(seq);
        // Port 0, no groups: the kernel.
        let kernel = NetlinkAddr::new(0, 0);
        sendto(self.fd.as_raw_fd(), bytes, &kernel, MsgFlags::MSG_DONTWAIT)
            .map_err(|errno| req.error(errno))?;
        self.pending = Some(Pending { req, seq, link: None, found: false });
        Ok(())
    }

    /// Reads what the kernel has answered so far, without waiting: `None` while the pending
    /// request (if any) is not answered yet, else its answer. Call when the socket is
    /// readable.
    pub fn poll_reply(&mut self) -> Option<Result<Reply, NetlinkError>> {
        let mut pending = self.pending?;
        loop {
            let len = match self.recv() {
                Ok(len) => len,
                Err(Errno::EAGAIN) => {
                    self.pending = Some(pending);
                    return None;
                }
                Err(Errno::EINTR) => continue,
                Err(errno) => {
                    self.pending = None;
                    return Some(Err(pending.req.error(errno)));
                }
            };
            if let Some(reply) = take_datagram(&mut pending, &self.rx[..len]) {
                self.pending = None;
                return Some(reply);
            }
        }
    }

    /// Forgets the pending request (it timed out); returns it, for the error.
    pub fn abandon(&mut self) -> Option<Request> {
        self.pending.take().map(|p| p.req)
    }

    /// Blocks until the pending request is answered or `REPLY_TIMEOUT_MS` passed (then
    /// `ETIMEDOUT`): for start-up, tools and tests only, never the loop, which polls the
    /// socket with the others and calls `poll_reply`.
    pub fn wait_reply(&mut self) -> Result<Reply, NetlinkError> {
        let Some(req) = self.pending() else { return Err(NetlinkError::idle()) };
        let mut waited_ms = 0;
        loop {
            if let Some(reply) = self.poll_reply() {
                return reply;
            }
            if waited_ms >= REPLY_TIMEOUT_MS {
                self.abandon();
                return Err(req.error(Errno::ETIMEDOUT));
            }
            let mut pfd = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            // Readiness or not, the next pass reads (and EINTR just shortens the wait).
            let _ = poll(&mut pfd, 10u8);
            waited_ms += 10;
        }
    }

    /// `Request::Link`, blocking (`wait_reply`). `ENODEV` when there is no such interface.
    pub fn link(&mut self, name: IfName) -> Result<LinkState, NetlinkError> {
        let req = Request::Link(name);
        self.send(req)?;
        match self.wait_reply()? {
            Reply::Link(link) => Ok(link),
            _ => Err(req.error(Errno::EBADMSG)),
        }
    }

    /// `Request::AddAddr`, blocking (`wait_reply`).
    pub fn add_addr(
        &mut self,
        iface: Iface,
        addr: IpAddr,
        prefix: u8,
    ) -> Result<Applied, NetlinkError> {
        self.applied(Request::AddAddr { iface, addr, prefix })
    }

    /// `Request::DelAddr`, blocking (`wait_reply`).
    pub fn del_addr(
        &mut self,
        iface: Iface,
        addr: IpAddr,
        prefix: u8,
    ) -> Result<Applied, NetlinkError> {
        self.applied(Request::DelAddr { iface, addr, prefix })
    }

    /// `Request::HasAddr`, blocking (`wait_reply`).
    pub fn has_addr(&mut self, iface: Iface, addr: IpAddr) -> Result<bool, NetlinkError> {
        let req = Request::HasAddr { iface, addr };
        self.send(req)?;
        match self.wait_reply()? {
            Reply::HasAddr(found) => Ok(found),
            _ => Err(req.error(Errno::EBADMSG)),
        }
    }

    fn applied(&mut self, req: Request) -> Result<Applied, NetlinkError> {
        self.send(req)?;
        match self.wait_reply()? {
            Reply::Applied(applied) => Ok(applied),
            _ => Err(req.error(Errno::EBADMSG)),
        }
    }

    fn recv(&mut self) -> Result<usize, Errno> {
        let flags = MsgFlags::MSG_TRUNC | MsgFlags::MSG_DONTWAIT;
        // With MSG_TRUNC the kernel returns the datagram's real length, even when longer.
        match recv(self.fd.as_raw_fd(), &mut self.rx[..], flags)? {
            n if n > RX_LEN => Err(Errno::EMSGSIZE),
            n => Ok(n),
        }
    }
}

impl NetlinkError {
    /// `wait_reply` with nothing sent.
    fn idle() -> NetlinkError {
        NetlinkError { op: NetlinkOp::Link, dev: None, addr: None, errno: Errno::EINVAL }
    }
}

/// The bytes of `req`, header included (its length and sequence number are set by `finish`).
fn build(req: Request) -> Tx {
    match req {
        Request::Link(name) => {
            let mut tx = Tx::new(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK);
            tx.put(&[0; IFINFOMSG_LEN]);
            tx.attr(IFLA_IFNAME, name.as_str().as_bytes(), true);
            tx
        }
        Request::AddAddr { iface, addr, prefix } => {
            let flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
            let mut tx = Tx::new(RTM_NEWADDR, flags);
            put_ifaddrmsg(&mut tx, iface.index, addr, prefix);
            match addr {
                IpAddr::V4(v4) => {
                    tx.attr(IFA_LOCAL, &v4.octets(), false);
                    tx.attr(IFA_ADDRESS, &v4.octets(), false);
                    if prefix < 31 {
                        let host_mask = u32::MAX >> prefix;
                        let bcast = (u32::from(v4) | host_mask).to_be_bytes();
                        tx.attr(IFA_BROADCAST, &bcast, false);
                    }
                }
                IpAddr::V6(v6) => {
                    tx.attr(IFA_ADDRESS, &v6.octets(), false);
                    tx.attr(IFA_FLAGS, &IFA_F_NODAD.to_ne_bytes(), false);
                }
            }
            tx
        }
        Request::DelAddr { iface, addr, prefix } => {
            let mut tx = Tx::new(RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK);
            put_ifaddrmsg(&mut tx, iface.index, addr, prefix);
            match addr {
                IpAddr::V4(v4) => tx.attr(IFA_LOCAL, &v4.octets(), false),
                IpAddr::V6(v6) => tx.attr(IFA_ADDRESS, &v6.octets(), false),
            }
            tx
        }
        Request::HasAddr { addr, .. } => {
            let mut tx = Tx::new(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP);
            put_ifaddrmsg(&mut tx, 0, addr, 0);
            tx
        }
    }
}

/// Reads one datagram of answers to `pending`: its answer when the datagram ends it, else
/// `None` (what the datagram said so far is kept in `pending`).
pub(crate) fn take_datagram(
    pending: &mut Pending,
    datagram: &[u8],
) -> Option<Result<Reply, NetlinkError>> {
    let dump = matches!(pending.req, Request::HasAddr { .. });
    let walked = walk(datagram, pending.seq, dump, &mut |kind, body| collect(pending, kind, body));
    match walked {
        Walk::Finished(result) => Some(answer(*pending, result)),
        Walk::More => None,
    }
}

/// Notes what one answer message of type `kind` says about the pending request.
fn collect(pending: &mut Pending, kind: u16, body: &[u8]) {
    match pending.req {
        Request::Link(name) if kind == RTM_NEWLINK && pending.link.is_none() => {
            pending.link = parse_link(body, name);
        }
        Request::HasAddr { iface, addr } if kind == RTM_NEWADDR => {
            pending.found |= addr_matches(body, iface.index, addr);
        }
        _ => {}
    }
}

/// The reply to `pending`, whose answer ended with `result` (the ACK's errno, or the dump's
/// end). "Already so" answers are `Applied::AlreadySo`, not errors.
fn answer(pending: Pending, result: Result<(), Errno>) -> Result<Reply, NetlinkError> {
    let req = pending.req;
    match (req, result) {
        (Request::Link(_), Ok(())) => pending.link.map(Reply::Link).ok_or(req.error(Errno::ENODEV)),
        (Request::HasAddr { .. }, Ok(())) => Ok(Reply::HasAddr(pending.found)),
        (Request::AddAddr { .. } | Request::DelAddr { .. }, Ok(())) => {
            Ok(Reply::Applied(Applied::Done))
        }
        (Request::AddAddr { .. }, Err(Errno::EEXIST)) => Ok(Reply::Applied(Applied::AlreadySo)),
        // IPv4 reports a missing address on delete as EADDRNOTAVAIL, some paths ENOENT.
        (Request::DelAddr { .. }, Err(Errno::EADDRNOTAVAIL | Errno::ENOENT)) => {
            Ok(Reply::Applied(Applied::AlreadySo))
        }
        (_, Err(errno)) => Err(req.error(errno)),
    }
}

/// What one datagram of answers told us.
enum Walk {
    /// The answer goes on in the next datagram.
    More,
    /// The request is answered.
    Finished(Result<(), Errno>),
}

/// Walks the netlink messages in one datagram.
fn walk(mut buf: &[u8], seq: u32, dump: bool, on_msg: &mut impl FnMut(u16, &[u8])) -> Walk {
    while buf.len() >= NLMSG_HDR_LEN {
        let len = u32_at(buf, 0) as usize;
        if len < NLMSG_HDR_LEN || len > buf.len() {
            return Walk::Finished(Err(Errno::EBADMSG));
        }
        let kind = u16_at(buf, 4);
        let msg_seq = u32_at(buf, 8);
        let body = &buf[NLMSG_HDR_LEN..len];
        buf = &buf[align4(len).min(buf.len())..];
        if msg_seq != seq {
            // A late answer to an earlier request that timed out.
            continue;
        }
        match kind {
            NLMSG_ERROR => {
                let code = if body.len() >= 4 { u32_at(body, 0) as i32 } else { -libc::EIO };
                // The kernel sends 0 or a negative errno; anything else (i32::MIN, whose
                // negation overflows, included) is a malformed answer.
                let result = match code.checked_neg() {
                    Some(0) => Ok(()),
                    Some(errno) if errno > 0 => Err(Errno::from_raw(errno)),
                    _ => Err(Errno::EBADMSG),
                };
                return Walk::Finished(result);
            }
            NLMSG_DONE if dump => return Walk::Finished(Ok(())),
            _ => on_msg(kind, body),
        }
    }
    Walk::More
}

/// The fixed part of an address request or dump filter.
fn put_ifaddrmsg(tx: &mut Tx, index: u32, addr: IpAddr, prefix: u8) {
    let family = match addr {
        IpAddr::V4(_) => libc::AF_INET,
        IpAddr::V6(_) => libc::AF_INET6,
    };
    let flags = match addr {
        IpAddr::V4(_) => 0,
        IpAddr::V6(_) => IFA_F_NODAD as u8,
    };
    // family, prefixlen, flags, scope (universe), index
    tx.put(&[family as u8, prefix, flags, 0]);
    tx.put(&index.to_ne_bytes());
}

/// Whether an RTM_NEWADDR body is `addr` on interface `index`.
fn addr_matches(body: &[u8], index: u32, addr: IpAddr) -> bool {
    if body.len() < IFADDRMSG_LEN || u32_at(body, 4) != index {
        return false;
    }
    // IPv4 keeps the interface's own address in IFA_LOCAL (IFA_ADDRESS is the peer on
    // point-to-point links); IPv6 only has IFA_ADDRESS.
    let (want, octets): (u16, &[u8]) = match addr {
        IpAddr::V4(ref v4) if body[0] == libc::AF_INET as u8 => (IFA_LOCAL, &v4.octets()[..]),
        IpAddr::V6(ref v6) if body[0] == libc::AF_INET6 as u8 => (IFA_ADDRESS, &v6.octets()[..]),
        _ => return false,
    };
    let mut matched = false;
    for_each_attr(&body[IFADDRMSG_LEN..], |kind, data| {
        if kind == want && data == octets {
            matched = true;
        }
    });
    matched
}

/// Parses an RTM_NEWLINK body.
fn parse_link(body: &[u8], name: IfName) -> Option<LinkState> {
    if body.len() < IFINFOMSG_LEN {
        return None;
    }
    let index = u32_at(body, 4);
    let flags = u32_at(body, 8);
    let mut oper_state = IF_OPER_UNKNOWN;
    let mut mac = None;
    for_each_attr(&body[IFINFOMSG_LEN..], |kind, data| match kind {
        IFLA_OPERSTATE if !data.is_empty() => oper_state = data[0],
        IFLA_ADDRESS if data.len() == 6 => {
            let mut m = [0; 6];
            m.copy_from_slice(data);
            mac = Some(m);
        }
        _ => {}
    });
    Some(LinkState {
        iface: Iface { name, index },
        admin_up: flags & IFF_UP != 0,
        lower_up: flags & IFF_LOWER_UP != 0,
        oper_state,
        mac,
    })
}

/// Calls `f(type, data)` for each well-formed rtattr; stops at the first malformed one.
fn for_each_attr(mut buf: &[u8], mut f: impl FnMut(u16, &[u8])) {
    while buf.len() >= 4 {
        let len = usize::from(u16_at(buf, 0));
        if len < 4 || len > buf.len() {
            return;
        }
        // The top bits of the type are NLA_F_NESTED and NLA_F_NET_BYTEORDER.
        f(u16_at(buf, 2) & 0x3fff, &buf[4..len]);
        buf = &buf[align4(len).min(buf.len())..];
    }
}

/// A request being built in a fixed buffer: header first, then body and attributes.
struct Tx {
    buf: [u8; TX_LEN],
    len: usize,
}

impl Tx {
    fn new(kind: u16, flags: u16) -> Tx {
        let mut tx = Tx { buf: [0; TX_LEN], len: NLMSG_HDR_LEN };
        tx.buf[4..6].copy_from_slice(&kind.to_ne_bytes());
        tx.buf[6..8].copy_from_slice(&flags.to_ne_bytes());
        tx
    }

    fn put(&mut self, bytes: &[u8]) {
        // INVARIANT: every request is built from constants and at most four attributes of at
        // most 16 bytes, well within TX_LEN; overflowing it is a bug here.
        assert!(self.len + bytes.len() <= TX_LEN, "netlink request too long");
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    /// Appends an attribute, NUL-terminated when `cstr`, padded to 4 bytes.
    fn attr(&mut self, kind: u16, data: &[u8], cstr: bool) {
        let len = 4 + data.len() + usize::from(cstr);
        self.put(&(len as u16).to_ne_bytes());
        self.put(&kind.to_ne_bytes());
        self.put(data);
        let pad = align4(len) - len + usize::from(cstr);
        self.put(&[0; 4][..pad]);
    }

    fn finish(&mut self, seq: u32) -> &[u8] {
        let len = self.len as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        &self.buf[..self.len]
    }
}

fn align4(len: usize) -> usize {
    (len + 3) & !3
}

fn u16_at(buf: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([buf[at], buf[at + 1]])
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn interface_names_are_checked() {
        assert_eq!(IfName::new("lan0").map(|n| n.to_string()), Some("lan0".to_string()));
        assert!(IfName::new("").is_none());
        assert!(IfName::new("sixteen-chars-xx").is_none());
        assert!(IfName::new("a/b").is_none());
        assert!(IfName::new("a b").is_none());
        assert!(IfName::new("fifteen-chars-x").is_some());
    }

    #[test]
    fn add_request_for_ipv4_carries_local_and_broadcast() {
        let mut tx = Tx::new(RTM_NEWADDR, NLM_F_REQUEST);
        let addr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100));
        put_ifaddrmsg(&mut tx, 7, addr, 24);
        tx.attr(IFA_LOCAL, &[192, 0, 2, 100], false);
        tx.attr(IFA_BROADCAST, &[192, 0, 2, 255], false);
        let req = tx.finish(9).to_vec();
        assert_eq!(u32_at(&req, 0) as usize, req.len());
        assert_eq!(u32_at(&req, 8), 9);
        assert_eq!(&req[16..20], &[libc::AF_INET as u8, 24, 0, 0]);
        assert_eq!(u32_at(&req, 20), 7);
        assert_eq!(&req[24..32], &[8, 0, 2, 0, 192, 0, 2, 100]);
        assert_eq!(&req[32..40], &[8, 0, 4, 0, 192, 0, 2, 255]);
    }

    #[test]
    fn string_attributes_are_nul_terminated_and_padded() {
        let mut tx = Tx::new(RTM_GETLINK, NLM_F_REQUEST);
        tx.attr(IFLA_IFNAME, b"lan0", true);
        let req = tx.finish(1).to_vec();
        assert_eq!(&req[16..], &[9, 0, 3, 0, b'l', b'a', b'n', b'0', 0, 0, 0, 0]);
    }

    #[test]
    fn address_dump_entries_match_on_index_and_address() {
        let mut body = vec![libc::AF_INET6 as u8, 64, 0, 0];
        body.extend_from_slice(&3u32.to_ne_bytes());
        let v6: Ipv6Addr = "2001:db8::100".parse().unwrap_or(Ipv6Addr::LOCALHOST);
        body.extend_from_slice(&20u16.to_ne_bytes());
        body.extend_from_slice(&IFA_ADDRESS.to_ne_bytes());
        body.extend_from_slice(&v6.octets());
        assert!(addr_matches(&body, 3, IpAddr::V6(v6)));
        assert!(!addr_matches(&body, 4, IpAddr::V6(v6)));
        assert!(!addr_matches(&body, 3, IpAddr::V6(Ipv6Addr::LOCALHOST)));
        assert!(!addr_matches(&body, 3, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))));
        // Truncated or garbage input never matches and never panics.
        assert!(!addr_matches(&body[..10], 3, IpAddr::V6(v6)));
        body[8] = 0xff;
        assert!(!addr_matches(&body, 3, IpAddr::V6(v6)));
    }

    #[test]
    fn answers_to_other_requests_are_skipped() {
        let mut dgram = Vec::new();
        for (seq, code) in [(4u32, -libc::EEXIST), (5, 0)] {
            dgram.extend_from_slice(&20u32.to_ne_bytes());
            dgram.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
            dgram.extend_from_slice(&0u16.to_ne_bytes());
            dgram.extend_from_slice(&seq.to_ne_bytes());
            dgram.extend_from_slice(&0u32.to_ne_bytes());
            dgram.extend_from_slice(&code.to_ne_bytes());
        }
        let mut seen = 0;
        assert!(matches!(walk(&dgram, 5, false, &mut |_, _| seen += 1), Walk::Finished(Ok(()))));
        assert!(matches!(
            walk(&dgram, 4, false, &mut |_, _| seen += 1),
            Walk::Finished(Err(Errno::EEXIST))
        ));
        assert!(matches!(walk(&dgram, 6, false, &mut |_, _| seen += 1), Walk::More));
        assert!(matches!(walk(&dgram[..19], 5, false, &mut |_, _| {}), Walk::Finished(Err(_))));
        assert_eq!(seen, 0);
    }

    /// An error code that is no negative errno is a malformed answer, never a panic (the
    /// fuzzer found `i32::MIN`, whose negation overflowed: tests/fuzz/corpus/netlink_reply/
    /// crash-error-code-i32-min).
    #[test]
    fn error_codes_that_are_no_errno_are_malformed() {
        for (code, expected) in [
            (i32::MIN, Err(Errno::EBADMSG)),
            (5, Err(Errno::EBADMSG)),
            (-libc::EPERM, Err(Errno::EPERM)),
            (0, Ok(())),
        ] {
            let mut dgram = Vec::new();
            dgram.extend_from_slice(&20u32.to_ne_bytes());
            dgram.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
            dgram.extend_from_slice(&0u16.to_ne_bytes());
            dgram.extend_from_slice(&1u32.to_ne_bytes());
            dgram.extend_from_slice(&0u32.to_ne_bytes());
            dgram.extend_from_slice(&code.to_ne_bytes());
            match walk(&dgram, 1, false, &mut |_, _| {}) {
                Walk::Finished(result) => assert_eq!(result, expected, "code {code}"),
                Walk::More => panic!("code {code}: not finished"),
            }
        }
    }

    fn lan9() -> Iface {
        Iface { name: IfName::new("lan9").unwrap(), index: 9 }
    }

    #[test]
    fn answers_read_already_so_and_missing_links() {
        let addr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100));
        let (iface, prefix) = (lan9(), 24);
        let p = |req| Pending { req, seq: 1, link: None, found: false };
        let add = p(Request::AddAddr { iface, addr, prefix });
        let del = p(Request::DelAddr { iface, addr, prefix });
        let done = Ok(Reply::Applied(Applied::Done));
        let already = Ok(Reply::Applied(Applied::AlreadySo));
        assert_eq!(answer(add, Ok(())), done);
        assert_eq!(answer(add, Err(Errno::EEXIST)), already);
        assert_eq!(answer(del, Err(Errno::EADDRNOTAVAIL)), already);
        assert_eq!(answer(del, Err(Errno::ENOENT)), already);
        assert_eq!(answer(add, Err(Errno::ENOENT)).map_err(|e| e.errno), Err(Errno::ENOENT));
        let link = p(Request::Link(iface.name));
        let err = answer(link, Ok(())).unwrap_err();
        assert_eq!((err.op, err.errno), (NetlinkOp::Link, Errno::ENODEV));
        assert_eq!(err.to_string(), "look up link dev lan9: no interface named lan9");
        let mut has = p(Request::HasAddr { iface, addr });
        assert_eq!(answer(has, Ok(())), Ok(Reply::HasAddr(false)));
        has.found = true;
        assert_eq!(answer(has, Ok(())), Ok(Reply::HasAddr(true)));
    }

    /// Nothing answered yet: `poll_reply` returns at once, the request stays pending until
    /// the caller abandons it (its deadline passed).
    #[test]
    fn an_unanswered_request_never_blocks_the_reader() {
        let Ok(mut nl) = Netlink::open() else { return };
        assert_eq!(nl.poll_reply(), None, "nothing pending");
        let req = Request::Link(IfName::new("lan9").unwrap());
        nl.pending = Some(Pending { req, seq: 77, link: None, found: false });
        assert_eq!(nl.poll_reply(), None, "no answer: EAGAIN, not a wait");
        assert_eq!(nl.pending(), Some(req));
        assert_eq!(nl.abandon(), Some(req));
        assert_eq!(nl.pending(), None);
        let err = req.error(Errno::ETIMEDOUT);
        assert_eq!(err.to_string(), "look up link dev lan9: Connection timed out");
    }

    #[test]
    fn errors_name_the_interface_and_address() {
        let err = NetlinkError {
            op: NetlinkOp::AddAddr,
            dev: IfName::new("lan9"),
            addr: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100))),
            errno: Errno::ENODEV,
        };
        assert_eq!(err.to_string(), "add address 192.0.2.100 dev lan9: no interface named lan9");
    }
}
