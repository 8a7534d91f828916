//! UDP heartbeat links: one non-blocking socket per `bcast`, `mcast` or `ucast` line, bound
//! to the udpport with SO_REUSEADDR and to its interface with SO_BINDTODEVICE. `bcast` is
//! IPv4; `mcast` and `ucast` are IPv4 or IPv6, as their addresses say (an IPv6 socket is
//! IPV6_V6ONLY, and a link-scope address is scoped to the line's interface).
//!
//! The socket is set up once (an event, so it may allocate); `recv_batch` and `send` then never
//! block and never allocate. Transient send errors (full buffers, an unreachable network, a
//! cable pulled) are counted, not fatal: the link's liveness shows in the peer's frames.
//!
//! Before a datagram can wake the loop, a socket filter (classic BPF, attached before the
//! socket is bound) drops what cannot be a frame ([`filter_program`]): a length, version or
//! body length `wire::Frame::check` refuses, a sender or link byte no frame has, and for
//! `ucast` any source but the peer's configured address (IPv4 and IPv6), for `bcast` our own
//! looped-back broadcasts (an `mcast` socket, of either family, has the kernel's multicast
//! loopback turned off instead). A UDP socket's filter sees the datagram from its UDP header
//! on, whatever the family, so the frame checks are the same for IPv4 and IPv6; only the
//! source checks read the IP header, at offsets of its family. It does not tell this pair's
//! frames from another pair's: only the key does (they are `auth_failures`, SPEC §7.2). The
//! receive buffer is sized for a burst (`limits::UDP_RCVBUF_BYTES`), and the kernel's count
//! of what it dropped on the socket, the filter's drops and those for a full buffer
//! alike, is read from each datagram (SO_RXQ_OVFL) and on demand (SO_MEMINFO):
//! `UdpStats::kernel_dropped`. This file does not frame, authenticate or pace anything: what
//! passes the filter still goes through `wire::Receiver`.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, SockFlag, SockType, SockaddrLike, SockaddrStorage, bind, getsockopt, setsockopt,
    socket, sockopt,
};

use crate::limits::{LINKS_MAX, UDP_RCVBUF_BYTES};
use crate::wire::frame::{body_len_range, field};
use crate::wire::{TAG_LEN, VERSION, VERSION_LEGACY};

/// The heartbeat medium of one UDP link, as the configuration names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UdpMedium<'a> {
    /// `bcast IF`: IPv4 broadcast on the interface.
    Bcast {
        /// The interface name.
        ifname: &'a str,
    },
    /// `mcast IF GROUP [ttl N]`: IPv4 or IPv6 multicast joined on the interface.
    Mcast {
        /// The interface name.
        ifname: &'a str,
        /// The multicast group, IPv4 or IPv6.
        group: IpAddr,
        /// IP_MULTICAST_TTL, or for an IPv6 group IPV6_MULTICAST_HOPS.
        ttl: u8,
    },
    /// `ucast IF ADDR ADDR`: unicast to the peer's address, IPv4 or IPv6.
    Ucast {
        /// The interface name.
        ifname: &'a str,
        /// This node's address of the two (the socket is bound to it, so the peer sees the
        /// frames come from the address its configuration names, and its filter admits them).
        own: IpAddr,
        /// The peer's address (see `pick_peer`): the only source the socket admits.
        peer: IpAddr,
    },
}

/// A UDP link that could not be set up, with the interface and the failing step.
#[derive(Debug)]
pub struct OpenError {
    /// The interface name.
    pub ifname: String,
    /// The step that failed (`socket`, `SO_BINDTODEVICE`, `bind`, ...).
    pub step: &'static str,
    /// The error the kernel returned.
    pub error: io::Error,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: cannot set up UDP link ({}): {}", self.ifname, self.step, self.error)
    }
}

impl std::error::Error for OpenError {}

/// What became of one datagram handed to `send`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    /// The kernel took it.
    Sent,
    /// Dropped on a transient error (EAGAIN, ENOBUFS, ENETUNREACH, ...) and counted.
    Dropped,
}

/// Counters of one UDP link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UdpStats {
    /// Datagrams received.
    pub datagrams_rx: u64,
    /// Datagrams sent.
    pub datagrams_tx: u64,
    /// Datagrams dropped on send.
    pub send_errors: u64,
    /// Receive errors other than "nothing waiting".
    pub recv_errors: u64,
    /// The last send error, as an errno value (0: none yet).
    pub last_send_errno: i32,
    /// Datagrams the kernel dropped on this socket before we read them: refused by the
    /// socket filter (not a frame) or no room in the buffer. On a
    /// broadcast link, less our own broadcasts: the kernel loops each one back and the
    /// filter drops it, one drop per datagram sent, which is no news.
    pub kernel_dropped: u64,
}

/// Datagrams one `recv_batch` takes at most.
pub const BATCH: usize = 8;
/// The longest datagram `recv_batch` keeps whole (a frame is at most 128 bytes).
pub const DATAGRAM_MAX: usize = 256;
/// Instructions of the longest socket filter `filter_program` builds.
pub const FILTER_LEN_MAX: usize = 48;
/// Room for the control message of one datagram: one SO_RXQ_OVFL counter (a u32), in u64
/// words so that the buffer is aligned for a `cmsghdr`.
const CMSG_WORDS: usize = 4;

/// The datagrams of one `recv_batch`, on the caller's stack.
pub struct Batch {
    bufs: [[u8; DATAGRAM_MAX]; BATCH],
    lens: [usize; BATCH],
    senders: [Option<SocketAddr>; BATCH],
    count: usize,
    full: bool,
}

impl Default for Batch {
    fn default() -> Batch {
        Batch {
            bufs: [[0; DATAGRAM_MAX]; BATCH],
            lens: [0; BATCH],
            senders: [None; BATCH],
            count: 0,
            full: false,
        }
    }
}

impl Batch {
    /// The datagrams taken, oldest first.
    pub fn datagrams(&self) -> impl Iterator<Item = &[u8]> {
        self.bufs.iter().zip(self.lens).take(self.count).map(|(b, n)| &b[..n])
    }

    /// The datagrams taken with their senders, oldest first.
    pub fn with_senders(&self) -> impl Iterator<Item = (&[u8], Option<SocketAddr>)> {
        self.datagrams().zip(self.senders)
    }

    /// How many datagrams the last call took.
    pub fn len(&self) -> usize {
        self.count
    }

    /// The last call took nothing.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// True when the call filled every slot: more may be waiting.
    pub fn is_full(&self) -> bool {
        self.full
    }
}

/// One open UDP link.
pub struct UdpLink {
    socket: UdpSocket,
    dest: SocketAddr,
    /// Our own address on a broadcast link: the kernel loops our broadcasts back to us.
    own: Option<SocketAddr>,
    stats: UdpStats,
    /// The kernel's drop counter as last read (a u32 that wraps), and the sum of its moves.
    drops_raw: u32,
    drops_total: u64,
    /// A broadcast link: each datagram sent comes back and is one of the kernel's drops.
    loops_back: bool,
}

impl UdpLink {
    /// Creates and configures the socket for `medium` on `port`, attaches the filter that
    /// admits only what can be a frame, then binds it (so nothing unfiltered is ever queued).
    pub fn open(medium: &UdpMedium<'_>, port: u16) -> Result<UdpLink, OpenError> {
        match *medium {
            UdpMedium::Bcast { ifname } => open_bcast(ifname, port),
            UdpMedium::Mcast { ifname, group, ttl } => open_mcast(ifname, group, ttl, port),
            UdpMedium::Ucast { ifname, own, peer } => open_ucast(ifname, own, peer, port),
        }
    }

    /// Takes up to `BATCH` waiting datagrams in one recvmmsg(2) call, without blocking.
    /// Our own broadcasts are skipped (the socket filter drops them before they wake anyone;
    /// this is the fallback). A datagram longer than `DATAGRAM_MAX` is cut there, and fails
    /// authentication upstream. `batch.is_full()` afterwards says more may be waiting. Each
    /// datagram carries the kernel's drop count as it was queued (SO_RXQ_OVFL), which
    /// updates `UdpStats::kernel_dropped` without a syscall of its own.
    pub fn recv_batch(&mut self, batch: &mut Batch) {
        // Raw recvmmsg(2), not nix's: nix 0.32 keeps its `mmsghdr`s from one call to the next
        // without resetting `msg_controllen`, which the kernel lowers to what it wrote, so
        // after a datagram without a SO_RXQ_OVFL count no later one would carry it (and its
        // headers are allocated, which `preallocate` would have to do at open). These headers
        // live on the stack and are built afresh for each call.
        batch.count = 0;
        batch.full = false;
        // SAFETY: all-zero is a valid value for these plain C structs.
        let mut names: [libc::sockaddr_storage; BATCH] = unsafe { core::mem::zeroed() };
        let mut iovs = [libc::iovec { iov_base: core::ptr::null_mut(), iov_len: 0 }; BATCH];
        let mut controls = [[0u64; CMSG_WORDS]; BATCH];
        // SAFETY: as above.
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { core::mem::zeroed() };
        for i in 0..BATCH {
            iovs[i] =
                libc::iovec { iov_base: batch.bufs[i].as_mut_ptr().cast(), iov_len: DATAGRAM_MAX };
            let hdr = &mut msgs[i].msg_hdr;
            hdr.msg_name = (&mut names[i] as *mut libc::sockaddr_storage).cast();
            hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdr.msg_iov = &mut iovs[i];
            hdr.msg_iovlen = 1;
            hdr.msg_control = controls[i].as_mut_ptr().cast();
            hdr.msg_controllen = size_of::<[u64; CMSG_WORDS]>();
        }
        let n = loop {
            // SAFETY: `msgs` holds BATCH headers whose name, iovec and control pointers point
            // into `names`, `iovs`, `batch.bufs` and `controls`, all live and unaliased for
            // the call.
            let r = unsafe {
                libc::recvmmsg(
                    self.socket.as_raw_fd(),
                    msgs.as_mut_ptr(),
                    BATCH as libc::c_uint,
                    libc::MSG_DONTWAIT,
                    core::ptr::null_mut(),
                )
            };
            if r >= 0 {
                // INVARIANT: recvmmsg returns at most vlen (BATCH) messages.
                break r as usize;
            }
            match Errno::last() {
                Errno::EINTR => continue,
                Errno::EAGAIN => return,
                _ => {
                    // ICMP errors from earlier sends surface here (ECONNREFUSED, ...).
                    self.stats.recv_errors += 1;
                    return;
                }
            }
        };
        batch.full = n == BATCH;
        for i in 0..n {
            if let Some(raw) = rxq_ovfl(&msgs[i].msg_hdr) {
                self.note_drops(raw);
            }
            let len = (msgs[i].msg_len as usize).min(DATAGRAM_MAX);
            let from = sockaddr_of(&names[i], msgs[i].msg_hdr.msg_namelen);
            if from.is_some() && from == self.own {
                continue;
            }
            self.stats.datagrams_rx += 1;
            batch.lens[batch.count] = len;
            batch.senders[batch.count] = from;
            batch.count += 1;
            if batch.count - 1 != i {
                batch.bufs.copy_within(i..=i, batch.count - 1);
            }
        }
    }

    /// Reads the kernel's drop count of the socket now (SO_MEMINFO): what `recv_batch` learns
    /// from each datagram, also while none passes the filter. Returns the total so far.
    pub fn refresh_kernel_dropped(&mut self) -> u64 {
        // Raw getsockopt(2): nix has no SO_MEMINFO.
        let mut info = [0u32; SK_MEMINFO_VARS];
        let mut len = size_of::<[u32; SK_MEMINFO_VARS]>() as libc::socklen_t;
        // SAFETY: `info` is valid for `len` bytes; the kernel writes at most that many and
        // sets `len` to what it wrote.
        let r = unsafe {
            libc::getsockopt(
                self.socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_MEMINFO,
                info.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let drops = libc::SK_MEMINFO_DROPS as usize;
        if r == 0 && len as usize >= (drops + 1) * size_of::<u32>() {
            self.note_drops(info[drops]);
        }
        self.stats().kernel_dropped
    }

    /// Adds what the kernel's 32-bit drop counter moved since it was last read. A value
    /// older than the last one (a datagram queued before a later SO_MEMINFO read) moves
    /// nothing. The counter wraps; it is read with every datagram taken and every status, so
    /// only 2^31 drops or more between two readings (over an hour of a flood of half a
    /// million datagrams a second with nothing let through and no status asked) are missed.
    fn note_drops(&mut self, raw: u32) {
        let delta = raw.wrapping_sub(self.drops_raw);
        if delta != 0 && delta < 1 << 31 {
            self.drops_total += u64::from(delta);
            self.drops_raw = raw;
        }
    }

    /// Sends one datagram to the link's destination without blocking.
    pub fn send(&mut self, bytes: &[u8]) -> SendOutcome {
        match self.socket.send_to(bytes, self.dest) {
            Ok(_) => {
                self.stats.datagrams_tx += 1;
                SendOutcome::Sent
            }
            Err(e) => {
                self.stats.send_errors += 1;
                self.stats.last_send_errno = e.raw_os_error().unwrap_or(0);
                SendOutcome::Dropped
            }
        }
    }

    /// Where `send` sends to.
    pub fn destination(&self) -> SocketAddr {
        self.dest
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// The counters so far.
    pub fn stats(&self) -> UdpStats {
        // A broadcast just sent may not have come back yet: the count is then one short,
        // never more than what the kernel dropped of others' datagrams.
        let own = if self.loops_back { self.stats.datagrams_tx } else { 0 };
        UdpStats { kernel_dropped: self.drops_total.saturating_sub(own), ..self.stats }
    }
}

impl AsRawFd for UdpLink {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

impl AsFd for UdpLink {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

/// Of the two `ucast` addresses the configuration lists for an interface, the one that is
/// not an address of this machine: the peer's. `None` when both or neither are local.
pub fn pick_peer(addrs: [IpAddr; 2]) -> io::Result<Option<IpAddr>> {
    let local = [is_local(addrs[0])?, is_local(addrs[1])?];
    Ok(match local {
        [true, false] => Some(addrs[1]),
        [false, true] => Some(addrs[0]),
        _ => None,
    })
}

/// Whether `addr` is one of this machine's addresses, on any interface: sending heartbeats to
/// ourselves would hide a dead peer, whichever interface holds the address.
fn is_local(addr: IpAddr) -> io::Result<bool> {
    let found = nix::ifaddrs::getifaddrs()
        .map_err(io::Error::from)?
        .any(|ifa| ifa.address.as_ref().and_then(ip_of) == Some(addr));
    Ok(found)
}

fn ip_of(sa: &SockaddrStorage) -> Option<IpAddr> {
    if let Some(v4) = sa.as_sockaddr_in() {
        return Some(IpAddr::V4(v4.ip()));
    }
    sa.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
}

/// The first IPv4 address on `ifname`, with its broadcast address.
fn interface_addr(ifname: &str) -> io::Result<Option<(Ipv4Addr, Option<Ipv4Addr>)>> {
    for ifa in nix::ifaddrs::getifaddrs().map_err(io::Error::from)? {
        if ifa.interface_name != ifname {
            continue;
        }
        let Some(a) = ifa.address.as_ref().and_then(|sa| sa.as_sockaddr_in()) else { continue };
        // From address and netmask: `ip addr add` leaves the broadcast field unset unless
        // told `brd +`.
        let mask = ifa.netmask.as_ref().and_then(|m| m.as_sockaddr_in()).map(|m| m.ip());
        let bcast = mask.map(|m| Ipv4Addr::from(u32::from(a.ip()) | !u32::from(m)));
        return Ok(Some((a.ip(), bcast)));
    }
    Ok(None)
}

fn open_bcast(ifname: &str, port: u16) -> Result<UdpLink, OpenError> {
    let fd = new_socket(ifname, false)?;
    setsockopt(&fd, sockopt::Broadcast, &true).map_err(nix_step(ifname, "SO_BROADCAST"))?;
    set_opt(&fd, libc::IPPROTO_IP, libc::IP_MULTICAST_ALL, &OFF)
        .map_err(step(ifname, "IP_MULTICAST_ALL"))?;
    let local = interface_addr(ifname).map_err(step(ifname, "getifaddrs"))?;
    let own = local.map(|(a, _)| a);
    attach_filter(&fd, &filter_program(Source::NotFrom(own)))
        .map_err(step(ifname, "SO_ATTACH_FILTER"))?;
    let any = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
    bind_to(&fd, any).map_err(step(ifname, "bind"))?;
    let bcast = local.and_then(|(_, b)| b).unwrap_or(Ipv4Addr::BROADCAST);
    let mut link = UdpLink::new(fd, SocketAddr::from((bcast, port)));
    link.own = own.map(|a| SocketAddr::from((a, port)));
    // Our broadcasts come back; the filter drops them when it knows our address.
    link.loops_back = own.is_some();
    Ok(link)
}

fn open_mcast(ifname: &str, group: IpAddr, ttl: u8, port: u16) -> Result<UdpLink, OpenError> {
    if !group.is_multicast() {
        let error = io::Error::from(io::ErrorKind::InvalidInput);
        return Err(OpenError { ifname: ifname.to_string(), step: "group", error });
    }
    let fd = new_socket(ifname, group.is_ipv6())?;
    let index =
        nix::net::if_::if_nametoindex(ifname).map_err(nix_step(ifname, "if_nametoindex"))?;
    match group {
        IpAddr::V4(group) => join_mcast4(&fd, ifname, index, group, ttl)?,
        IpAddr::V6(group) => join_mcast6(&fd, ifname, index, group, ttl)?,
    }
    attach_filter(&fd, &filter_program(Source::Any)).map_err(step(ifname, "SO_ATTACH_FILTER"))?;
    // Bound to the group, the socket sees only that group's datagrams, not unicast or
    // broadcast meant for a sibling link on the same port. A link-scope IPv6 group is
    // scoped to the interface, and frames go to [group%IF]:port.
    let at = scoped(group, port, index);
    bind_to(&fd, at).map_err(step(ifname, "bind"))?;
    Ok(UdpLink::new(fd, at))
}

/// Joins an IPv4 group on interface `index` and sends there with `ttl`, without looping our
/// own datagrams back to us.
fn join_mcast4(
    fd: &OwnedFd,
    ifname: &str,
    index: u32,
    group: Ipv4Addr,
    ttl: u8,
) -> Result<(), OpenError> {
    let mreqn = libc::ip_mreqn {
        imr_multiaddr: libc::in_addr { s_addr: u32::from(group).to_be() },
        imr_address: libc::in_addr { s_addr: 0 },
        // INVARIANT: interface indexes are small positive ints in the kernel.
        imr_ifindex: index as libc::c_int,
    };
    set_opt(fd, libc::IPPROTO_IP, libc::IP_ADD_MEMBERSHIP, &mreqn)
        .map_err(step(ifname, "IP_ADD_MEMBERSHIP"))?;
    set_opt(fd, libc::IPPROTO_IP, libc::IP_MULTICAST_IF, &mreqn)
        .map_err(step(ifname, "IP_MULTICAST_IF"))?;
    setsockopt(fd, sockopt::IpMulticastTtl, &ttl).map_err(nix_step(ifname, "IP_MULTICAST_TTL"))?;
    setsockopt(fd, sockopt::IpMulticastLoop, &false)
        .map_err(nix_step(ifname, "IP_MULTICAST_LOOP"))?;
    set_opt(fd, libc::IPPROTO_IP, libc::IP_MULTICAST_ALL, &OFF)
        .map_err(step(ifname, "IP_MULTICAST_ALL"))
}

/// The IPv6 twin of `join_mcast4`: IPV6_JOIN_GROUP on interface `index`, sent from it with
/// `hops` as the hop limit, our own datagrams not looped back.
fn join_mcast6(
    fd: &OwnedFd,
    ifname: &str,
    index: u32,
    group: Ipv6Addr,
    hops: u8,
) -> Result<(), OpenError> {
    setsockopt(fd, sockopt::Ipv6V6Only, &true).map_err(nix_step(ifname, "IPV6_V6ONLY"))?;
    let mreq = libc::ipv6_mreq {
        ipv6mr_multiaddr: libc::in6_addr { s6_addr: group.octets() },
        ipv6mr_interface: index,
    };
    set_opt(fd, libc::IPPROTO_IPV6, libc::IPV6_ADD_MEMBERSHIP, &mreq)
        .map_err(step(ifname, "IPV6_JOIN_GROUP"))?;
    // INVARIANT: interface indexes are small positive ints in the kernel.
    let index = index as libc::c_int;
    set_opt(fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_IF, &index)
        .map_err(step(ifname, "IPV6_MULTICAST_IF"))?;
    set_opt(fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_HOPS, &libc::c_int::from(hops))
        .map_err(step(ifname, "IPV6_MULTICAST_HOPS"))?;
    set_opt(fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_LOOP, &OFF)
        .map_err(step(ifname, "IPV6_MULTICAST_LOOP"))?;
    // Only what the socket joined (Linux 4.20 and later; bound to the group, an older
    // kernel's socket takes no other group's datagrams either).
    match set_opt(fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_ALL, &OFF) {
        Err(e) if e.raw_os_error() == Some(libc::ENOPROTOOPT) => Ok(()),
        other => other.map_err(step(ifname, "IPV6_MULTICAST_ALL")),
    }
}

fn open_ucast(ifname: &str, own: IpAddr, peer: IpAddr, port: u16) -> Result<UdpLink, OpenError> {
    let v6 = peer.is_ipv6();
    if own.is_ipv6() != v6 {
        let error = io::Error::from(io::ErrorKind::InvalidInput);
        return Err(OpenError { ifname: ifname.to_string(), step: "address family", error });
    }
    let fd = new_socket(ifname, v6)?;
    let index =
        nix::net::if_::if_nametoindex(ifname).map_err(nix_step(ifname, "if_nametoindex"))?;
    if v6 {
        setsockopt(&fd, sockopt::Ipv6V6Only, &true).map_err(nix_step(ifname, "IPV6_V6ONLY"))?;
    }
    attach_filter(&fd, &filter_program(Source::From(peer)))
        .map_err(step(ifname, "SO_ATTACH_FILTER"))?;
    // Bound to our own configured address, the socket takes unicast datagrams ahead of a
    // sibling bcast socket bound to the wildcard address, and our frames leave from the
    // address the peer's configuration names (and its filter admits), whatever else the
    // interface holds. A link-local address needs the interface as its scope.
    bind_to(&fd, scoped(own, port, index)).map_err(step(ifname, "bind"))?;
    Ok(UdpLink::new(fd, scoped(peer, port, index)))
}

/// `addr`:`port`, with `index` as the scope of an IPv6 address that needs one: a link-local
/// unicast address, or a multicast group of interface-local or link-local scope (`ff02::`).
fn scoped(addr: IpAddr, port: u16, index: u32) -> SocketAddr {
    match addr {
        IpAddr::V4(a) => SocketAddr::from((a, port)),
        IpAddr::V6(a) => {
            let link_local = a.segments()[0] & 0xffc0 == 0xfe80;
            let link_scope_group = a.is_multicast() && a.segments()[0] & 0x000f <= 2;
            let scope = if link_local || link_scope_group { index } else { 0 };
            SocketAddr::V6(SocketAddrV6::new(a, port, 0, scope))
        }
    }
}

impl UdpLink {
    fn new(fd: OwnedFd, dest: SocketAddr) -> UdpLink {
        UdpLink {
            socket: UdpSocket::from(fd),
            dest,
            own: None,
            stats: UdpStats::default(),
            drops_raw: 0,
            drops_total: 0,
            loops_back: false,
        }
    }

    /// The receive buffer the kernel granted, in bytes of its own accounting (twice what
    /// was asked: it counts its bookkeeping too).
    pub fn receive_buffer(&self) -> io::Result<usize> {
        getsockopt(&self.socket, sockopt::RcvBuf).map_err(io::Error::from)
    }
}

/// A non-blocking UDP socket with SO_REUSEADDR, bound to the device `ifname`, its receive
/// buffer sized for a burst, and the kernel's drop count on every datagram.
fn new_socket(ifname: &str, v6: bool) -> Result<OwnedFd, OpenError> {
    let family = if v6 { AddressFamily::Inet6 } else { AddressFamily::Inet };
    let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
    let fd = socket(family, SockType::Datagram, flags, None).map_err(nix_step(ifname, "socket"))?;
    setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(nix_step(ifname, "SO_REUSEADDR"))?;
    // Past `net.core.rmem_max` only with CAP_NET_ADMIN (which the daemon has as root); without
    // it, as much as the system allows.
    if setsockopt(&fd, sockopt::RcvBufForce, &UDP_RCVBUF_BYTES).is_err() {
        setsockopt(&fd, sockopt::RcvBuf, &UDP_RCVBUF_BYTES)
            .map_err(nix_step(ifname, "SO_RCVBUF"))?;
    }
    setsockopt(&fd, sockopt::RxqOvfl, &1).map_err(nix_step(ifname, "SO_RXQ_OVFL"))?;
    let name = ifname.as_bytes();
    if name.is_empty() || name.len() >= libc::IFNAMSIZ {
        let error = io::Error::from(io::ErrorKind::InvalidInput);
        return Err(OpenError { ifname: ifname.to_string(), step: "interface name", error });
    }
    setsockopt(&fd, sockopt::BindToDevice, &OsString::from(ifname))
        .map_err(nix_step(ifname, "SO_BINDTODEVICE"))?;
    Ok(fd)
}

/// Which source addresses a socket filter admits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Any (`mcast`).
    Any,
    /// Only this one: the peer's configured address (`ucast`).
    From(IpAddr),
    /// Any but this IPv4 address: our own, whose broadcasts the kernel loops back to us
    /// (`bcast`), each of which would otherwise wake the loop for nothing.
    NotFrom(Option<Ipv4Addr>),
}

/// A classic BPF instruction: one `struct sock_filter`.
pub type Insn = libc::sock_filter;
/// A socket filter program as `filter_program` builds it.
pub type Program = heapless::Vec<Insn, FILTER_LEN_MAX>;

/// Where the kernel's BPF loads find the network header (Linux `SKF_NET_OFF`): a UDP socket's
/// filter otherwise sees the datagram from its UDP header on.
const SKF_NET_OFF: i32 = -0x10_0000;
/// The UDP header before the payload, in what a UDP socket's filter sees.
const UDP_HEADER_LEN: u32 = 8;
/// `jt`/`jf` placeholder for "to the drop at the end", patched once the length is known.
const TO_DROP: u8 = u8::MAX;

/// The socket filter of a heartbeat socket: it keeps, whole, only the datagrams that can be
/// frames, and drops the rest (return 0) before they are queued:
///
/// - the version is one this code accepts, and the body length byte is one
///   `wire::frame::body_len_range` allows for it (per version: a v1 frame is exactly 74 bytes,
///   a v3 frame 126, a v4 frame 128, a v5 one 128 to `FRAME_LEN_MAX`, so 128 too; v2 is not
///   read), and equals the datagram's length less the tag: what `wire::Frame::check`
///   refuses, the filter drops;
/// - the sender byte is 0 or 1 and the link byte below `LINKS_MAX`: what the receiver would
///   find malformed in any frame, whatever its key;
/// - the source address (from the IP header, at SKF_NET_OFF: offset 12 in IPv4, 8 to 24 in
///   IPv6) is as `source` says.
///
/// So a random datagram of a frame's length passes about once in 10^8. Nothing here needs
/// the key, nor tells this pair's frames from another pair's (with another link index, or
/// from the node of our own index): what passes is authenticated by `wire::Receiver`, which
/// counts another pair's frames as `auth_failures` (SPEC §7.2).
pub fn filter_program(source: Source) -> Program {
    let mut p = Program::new();
    let mut emit = |code: u32, jt: u8, jf: u8, k: u32| {
        // INVARIANT: the longest program (four versions, v2 dropped, an IPv6 source) is under
        // FILTER_LEN_MAX instructions; the unit tests build every shape.
        let pushed = p.push(Insn { code: code as u16, jt, jf, k });
        assert!(pushed.is_ok(), "socket filter longer than FILTER_LEN_MAX");
    };
    let ld_b = libc::BPF_LD | libc::BPF_B | libc::BPF_ABS;
    let ld_w = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let ld_len = libc::BPF_LD | libc::BPF_W | libc::BPF_LEN;
    let jeq = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
    let jge = libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K;
    let jgt = libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K;
    let byte = |offset: usize| UDP_HEADER_LEN + offset as u32;
    // The datagram length the kernel sees, UDP header included, of a frame whose body is
    // `body` bytes long.
    let datagram = |body: usize| UDP_HEADER_LEN + (body + TAG_LEN) as u32;
    // Per version from the legacy one up to the next after ours, its lengths, or a drop for
    // one it does not read between them (v2 since v4); any other version is dropped below.
    let (mut lowest, mut highest) = (u8::MAX, 0u8);
    for version in VERSION_LEGACY..=VERSION.saturating_add(1) {
        let Some((shortest, longest)) = body_len_range(version) else {
            emit(ld_b, 0, 0, byte(field::VERSION));
            emit(jeq, TO_DROP, 0, u32::from(version));
            continue;
        };
        lowest = lowest.min(version);
        highest = highest.max(version);
        emit(ld_b, 0, 0, byte(field::VERSION));
        // Another version: skip this one's three checks.
        emit(jeq, 0, 3, u32::from(version));
        emit(ld_len, 0, 0, 0);
        emit(jge, 0, TO_DROP, datagram(shortest));
        emit(jgt, TO_DROP, 0, datagram(longest));
    }
    emit(ld_b, 0, 0, byte(field::VERSION));
    emit(jge, 0, TO_DROP, u32::from(lowest));
    emit(jgt, TO_DROP, 0, u32::from(highest));
    // The body length byte and the datagram's length agree: X = body_len + tag + header.
    emit(ld_b, 0, 0, byte(field::BODY_LEN));
    emit(libc::BPF_ALU | libc::BPF_ADD | libc::BPF_K, 0, 0, datagram(0));
    emit(libc::BPF_MISC | libc::BPF_TAX, 0, 0, 0);
    emit(ld_len, 0, 0, 0);
    emit(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_X, 0, TO_DROP, 0);
    emit(ld_b, 0, 0, byte(field::SENDER));
    emit(jgt, TO_DROP, 0, 1);
    emit(ld_b, 0, 0, byte(field::LINK));
    emit(jge, TO_DROP, 0, LINKS_MAX as u32);
    let net = |offset: u32| (SKF_NET_OFF as u32).wrapping_add(offset);
    match source {
        Source::Any | Source::NotFrom(None) => {}
        Source::From(IpAddr::V4(a)) => {
            emit(ld_w, 0, 0, net(12));
            emit(jeq, 0, TO_DROP, u32::from(a));
        }
        Source::From(IpAddr::V6(a)) => {
            for (i, word) in a.octets().chunks_exact(4).enumerate() {
                let word = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
                emit(ld_w, 0, 0, net(8 + 4 * i as u32));
                emit(jeq, 0, TO_DROP, word);
            }
        }
        Source::NotFrom(Some(own)) => {
            emit(ld_w, 0, 0, net(12));
            emit(jeq, TO_DROP, 0, u32::from(own));
        }
    }
    emit(libc::BPF_RET | libc::BPF_K, 0, 0, u32::MAX);
    emit(libc::BPF_RET | libc::BPF_K, 0, 0, 0);
    // Every TO_DROP jumps to the last instruction.
    let drop_at = p.len() - 1;
    for (i, insn) in p.iter_mut().enumerate().take(drop_at) {
        // INVARIANT: a program is shorter than FILTER_LEN_MAX (48): every jump fits a u8.
        let to_drop = (drop_at - i - 1) as u8;
        for j in [&mut insn.jt, &mut insn.jf] {
            if *j == TO_DROP {
                *j = to_drop;
            }
        }
    }
    p
}

/// Attaches `program` as the socket's filter (SO_ATTACH_FILTER; the kernel copies it).
fn attach_filter(fd: &OwnedFd, program: &[Insn]) -> io::Result<()> {
    let fprog = libc::sock_fprog { len: program.len() as u16, filter: program.as_ptr().cast_mut() };
    set_opt(fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog)
}

/// The SO_RXQ_OVFL count a received datagram carries, when it carries one (the kernel adds
/// it once it has dropped anything on the socket).
fn rxq_ovfl(hdr: &libc::msghdr) -> Option<u32> {
    // SAFETY: `hdr` is a msghdr the kernel filled in, whose control buffer is live and holds
    // `msg_controllen` bytes of well-formed cmsgs; the macros only walk within them.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(hdr);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SO_RXQ_OVFL {
                // The data may be unaligned for a u32: read it byte-wise.
                return Some(core::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<u32>()));
            }
            cmsg = libc::CMSG_NXTHDR(hdr, cmsg);
        }
    }
    None
}

const SK_MEMINFO_VARS: usize = 9;

/// The IP address and port of a sockaddr the kernel filled in.
fn sockaddr_of(ss: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    // SAFETY: `ss` is a valid sockaddr_storage of which the kernel filled `len` bytes.
    let sa = unsafe {
        SockaddrStorage::from_raw((ss as *const libc::sockaddr_storage).cast(), Some(len))
    }?;
    if let Some(v4) = sa.as_sockaddr_in() {
        return Some(SocketAddr::V4(SocketAddrV4::from(*v4)));
    }
    sa.as_sockaddr_in6().map(|v6| SocketAddr::V6(SocketAddrV6::from(*v6)))
}

fn step(ifname: &str, step: &'static str) -> impl FnOnce(io::Error) -> OpenError {
    let ifname = ifname.to_string();
    move |error| OpenError { ifname, step, error }
}

fn nix_step(ifname: &str, step: &'static str) -> impl FnOnce(Errno) -> OpenError {
    let ifname = ifname.to_string();
    move |errno| OpenError { ifname, step, error: io::Error::from(errno) }
}

fn bind_to(fd: &OwnedFd, addr: SocketAddr) -> io::Result<()> {
    bind(fd.as_raw_fd(), &SockaddrStorage::from(addr)).map_err(io::Error::from)
}

/// An int option turned off.
const OFF: libc::c_int = 0;

/// setsockopt(2) for the options nix has no setter for, or sets in another way:
/// IP_MULTICAST_ALL, IP_MULTICAST_IF, IPV6_MULTICAST_ALL, IPV6_MULTICAST_IF,
/// IPV6_MULTICAST_LOOP and SO_ATTACH_FILTER (none in nix), IP_ADD_MEMBERSHIP with an
/// `ip_mreqn` (nix's `IpAddMembership` takes an `ip_mreq`, which names the interface by an
/// IPv4 address where we name it by index), and IPV6_ADD_MEMBERSHIP and IPV6_MULTICAST_HOPS
/// beside them, so that the two families read alike.
fn set_opt<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` points to a live T of `size_of::<T>()` bytes, the layout the option
    // expects (callers pass c_int, ip_mreqn, ipv6_mreq or sock_fprog as the kernel documents
    // for each option); the kernel only reads it, during the call.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    Errno::result(r).map(drop).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::FRAME_LEN_MAX;
    use crate::wire::{FRAME_LEN_V1, FRAME_LEN_V2, FRAME_LEN_V3, FRAME_LEN_V4, Frame};

    /// Runs `program` as the kernel runs a UDP socket's classic BPF filter: absolute loads
    /// read `udp` (the UDP header, then the datagram) big-endian, or `ip` (the IP header)
    /// at SKF_NET_OFF; a load past either end ends the program with 0 (drop). Returns what
    /// the filter returns: how many bytes to keep, 0 to drop. Panics on an instruction
    /// `filter_program` is not supposed to emit.
    fn run(program: &[Insn], ip: &[u8], udp: &[u8]) -> u32 {
        let load = |k: u32, size: usize| -> Option<u32> {
            let (bytes, at) = match (k as i32).checked_sub(SKF_NET_OFF) {
                Some(at) if (k as i32) < 0 => (ip, usize::try_from(at).ok()?),
                _ => (udp, k as usize),
            };
            let b = bytes.get(at..at + size)?;
            Some(b.iter().fold(0, |v, &x| v << 8 | u32::from(x)))
        };
        let (mut a, mut x, mut pc) = (0u32, 0u32, 0usize);
        loop {
            let Insn { code, jt, jf, k } = program[pc];
            let code = u32::from(code);
            pc += 1;
            let jump = |cond: bool| usize::from(if cond { jt } else { jf });
            match code {
                c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => match load(k, 4) {
                    Some(v) => a = v,
                    None => return 0,
                },
                c if c == libc::BPF_LD | libc::BPF_B | libc::BPF_ABS => match load(k, 1) {
                    Some(v) => a = v,
                    None => return 0,
                },
                c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_LEN => a = udp.len() as u32,
                c if c == libc::BPF_ALU | libc::BPF_ADD | libc::BPF_K => a = a.wrapping_add(k),
                c if c == libc::BPF_MISC | libc::BPF_TAX => x = a,
                c if c == libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K => pc += jump(a == k),
                c if c == libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K => pc += jump(a >= k),
                c if c == libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K => pc += jump(a > k),
                c if c == libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_X => pc += jump(a == x),
                c if c == libc::BPF_RET | libc::BPF_K => return k,
                other => panic!("instruction {other:#x} not expected in a socket filter"),
            }
        }
    }

    /// An IPv4 header from `src`, or an IPv6 one.
    fn ip_header(src: IpAddr) -> Vec<u8> {
        match src {
            IpAddr::V4(a) => {
                let mut h = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0];
                h.extend(a.octets());
                h.extend([192, 0, 2, 255]);
                h
            }
            IpAddr::V6(a) => {
                let mut h = vec![0x60, 0, 0, 0, 0, 0, 17, 64];
                h.extend(a.octets());
                h.extend(Ipv6Addr::LOCALHOST.octets());
                h
            }
        }
    }

    /// The UDP header and `payload`, as a UDP socket's filter sees a datagram.
    fn udp(payload: &[u8]) -> Vec<u8> {
        let len = (payload.len() + 8) as u16;
        let mut d = vec![0x02, 0xb6, 0x02, 0xb6];
        d.extend(len.to_be_bytes());
        d.extend([0, 0]);
        d.extend(payload);
        d
    }

    /// A datagram of `len` bytes shaped like a frame: version, body length, sender, link.
    fn shaped(len: usize, version: u8, body_len: u8, sender: u8, link: u8) -> Vec<u8> {
        let mut d = vec![0xa5; len];
        for (i, b) in [version, body_len, sender, link].into_iter().enumerate().take(len) {
            d[i] = b;
        }
        d
    }

    fn frame(len: usize, version: u8) -> Vec<u8> {
        shaped(len, version, (len - TAG_LEN) as u8, 1, 3)
    }

    fn passes(program: &[Insn], src: IpAddr, payload: &[u8]) -> bool {
        match run(program, &ip_header(src), &udp(payload)) {
            0 => false,
            u32::MAX => true,
            n => panic!("the filter keeps {n} bytes: it must keep all or nothing"),
        }
    }

    const PEER_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
    const PEER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

    /// Every filter with a datagram source it admits; `mcast` (`Source::Any`) of both
    /// families: the frame checks read the UDP payload, the same behind either IP header.
    fn every_shape() -> [(Program, IpAddr); 6] {
        let own = Ipv4Addr::new(192, 0, 2, 1);
        [
            (filter_program(Source::Any), PEER_V4.into()),
            (filter_program(Source::Any), PEER_V6.into()),
            (filter_program(Source::NotFrom(None)), PEER_V4.into()),
            (filter_program(Source::NotFrom(Some(own))), PEER_V4.into()),
            (filter_program(Source::From(PEER_V4.into())), PEER_V4.into()),
            (filter_program(Source::From(PEER_V6.into())), PEER_V6.into()),
        ]
    }

    /// The filter drops exactly what the receiver would find malformed or of a bad version
    /// in any frame, whatever the key (`Frame::check`, a sender other than 0 or 1, a link
    /// index out of range), for every version byte, every length up to past the longest
    /// frame, body length bytes right and wrong, sender and link bytes in and out of range:
    /// it never costs the peer a frame the receiver would take (nor hides another pair's,
    /// which the receiver counts as `auth_failures`), and what it lets through could be one.
    #[test]
    fn the_filter_admits_what_the_receiver_could_accept_and_nothing_else() {
        for (program, src) in every_shape() {
            for version in (0..=6).chain([0x7f, 0x80, 0xff]) {
                for len in 0..=FRAME_LEN_MAX + 16_usize {
                    let right = len.wrapping_sub(TAG_LEN) as u8;
                    for body_len in [right, right.wrapping_add(1), 42, 55, 94, 96, 0, 0xff] {
                        for (sender, link) in [(1, 3), (0, 0), (0, 7), (2, 3), (1, 8), (0xff, 0xff)]
                        {
                            let payload = shaped(len, version, body_len, sender, link);
                            let receiver_could = Frame::new_checked(&payload[..]).is_ok()
                                && sender <= 1
                                && usize::from(link) < LINKS_MAX;
                            assert_eq!(
                                passes(&program, src, &payload),
                                receiver_could,
                                "version {version} len {len} body_len {body_len} sender \
                                 {sender} link {link}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// The legacy v1, the v3 before ours, ours (v4) and the v5 after it pass at their
    /// lengths; v2, two versions back, at none.
    #[test]
    fn frames_of_the_legacy_and_the_adjacent_versions_pass_and_v2_does_not() {
        assert_eq!((VERSION, FRAME_LEN_V4), (4, FRAME_LEN_MAX));
        for (program, src) in every_shape() {
            assert!(passes(&program, src, &frame(FRAME_LEN_V1, 1)), "v1: 74 bytes");
            assert!(passes(&program, src, &frame(FRAME_LEN_V3, 3)), "v3: 126 bytes");
            assert!(passes(&program, src, &frame(FRAME_LEN_V4, 4)), "v4: 128 bytes");
            assert!(passes(&program, src, &frame(FRAME_LEN_MAX, 5)), "v5: up to FRAME_LEN_MAX");
            assert!(!passes(&program, src, &frame(FRAME_LEN_MAX + 1, 5)), "not beyond");
            assert!(!passes(&program, src, &frame(FRAME_LEN_MAX + 1, 4)), "v4 has 128 bytes");
            assert!(!passes(&program, src, &frame(FRAME_LEN_V4, 6)), "v6 is too new");
            assert!(!passes(&program, src, &frame(FRAME_LEN_V4 - 1, 5)), "shorter than v4");
            assert!(!passes(&program, src, &frame(FRAME_LEN_V4 - 1, 4)), "v4 has 128 bytes");
            assert!(!passes(&program, src, &frame(FRAME_LEN_V3 + 1, 3)), "v3 has 126 bytes");
            assert!(!passes(&program, src, &frame(FRAME_LEN_V4, 3)), "v3 has 126 bytes");
            assert!(!passes(&program, src, &frame(FRAME_LEN_V2, 1)), "v1 has 74 bytes");
            for len in [FRAME_LEN_V1, FRAME_LEN_V2, FRAME_LEN_V3, FRAME_LEN_V4, TAG_LEN] {
                assert!(!passes(&program, src, &frame(len, 2)), "v2 is not read: {len} bytes");
            }
            assert!(!passes(&program, src, &[]), "nothing at all");
        }
    }

    #[test]
    fn ucast_admits_only_the_peers_address_v4_and_v6() {
        let v4 = filter_program(Source::From(PEER_V4.into()));
        let f = frame(FRAME_LEN_V4, VERSION);
        assert!(passes(&v4, PEER_V4.into(), &f));
        for other in [Ipv4Addr::new(192, 0, 2, 3), Ipv4Addr::new(2, 2, 0, 192)] {
            assert!(!passes(&v4, other.into(), &f), "{other}");
        }
        let v6 = filter_program(Source::From(PEER_V6.into()));
        assert!(passes(&v6, PEER_V6.into(), &f));
        // Each of the four words of the address on its own decides.
        for other in [
            Ipv6Addr::new(0x2001, 0xdb9, 0, 0, 0, 0, 0, 2),
            Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 2),
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 1, 0, 2),
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 3),
            Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2),
        ] {
            assert!(!passes(&v6, other.into(), &f), "{other}");
        }
    }

    #[test]
    fn bcast_drops_our_own_broadcasts_and_admits_any_other_source() {
        let own = Ipv4Addr::new(192, 0, 2, 1);
        let program = filter_program(Source::NotFrom(Some(own)));
        let f = frame(FRAME_LEN_V4, VERSION);
        assert!(!passes(&program, own.into(), &f));
        assert!(passes(&program, PEER_V4.into(), &f));
        assert!(passes(&program, Ipv4Addr::new(192, 0, 2, 77).into(), &f));
        let mcast = filter_program(Source::Any);
        assert!(passes(&mcast, own.into(), &f), "mcast does not loop back: any source");
    }

    /// The instructions themselves: the frame checks are shared by every shape; each ends in
    /// the source checks of its medium, "keep all", then the one "drop" every failed check
    /// jumps to; and every jump stays inside the program.
    #[test]
    fn the_programs_instructions() {
        let insn = |code: u32, jt: u8, jf: u8, k: u32| (code as u16, jt, jf, k);
        let of = |p: &Program| p.iter().map(|i| (i.code, i.jt, i.jf, i.k)).collect::<Vec<_>>();
        let ld_w = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
        let jeq = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
        let ret = libc::BPF_RET | libc::BPF_K;
        let net = |k: u32| (SKF_NET_OFF as u32).wrapping_add(k);
        let any = of(&filter_program(Source::Any));
        let common = any.len() - 2;
        assert_eq!(any[common..], [insn(ret, 0, 0, u32::MAX), insn(ret, 0, 0, 0)]);
        // The first block: version 1 is exactly 74 bytes (82 with the UDP header).
        let ld_b = libc::BPF_LD | libc::BPF_B | libc::BPF_ABS;
        let ld_len = libc::BPF_LD | libc::BPF_W | libc::BPF_LEN;
        let drop_from = |i: usize| (common - i) as u8;
        assert_eq!(
            any[..5],
            [
                insn(ld_b, 0, 0, 8),
                insn(jeq, 0, 3, 1),
                insn(ld_len, 0, 0, 0),
                insn(libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K, 0, drop_from(3), 82),
                insn(libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K, drop_from(4), 0, 82),
            ]
        );
        let v4 = of(&filter_program(Source::From(PEER_V4.into())));
        // The frame checks are the same in every shape, each failed one a jump to the drop.
        let to_drop = |p: &[(u16, u8, u8, u32)]| -> Vec<(u16, u8, u8, u32)> {
            let drop_at = p.len() - 1;
            let mark =
                |i: usize, j: u8| if i + 1 + usize::from(j) == drop_at { TO_DROP } else { j };
            p.iter().enumerate().map(|(i, &(c, t, f, k))| (c, mark(i, t), mark(i, f), k)).collect()
        };
        assert_eq!(to_drop(&v4)[..common], to_drop(&any)[..common]);
        assert_eq!(
            v4[common..],
            [
                insn(ld_w, 0, 0, net(12)),
                insn(jeq, 0, 1, 0xc000_0202),
                insn(ret, 0, 0, u32::MAX),
                insn(ret, 0, 0, 0)
            ]
        );
        let own = of(&filter_program(Source::NotFrom(Some(Ipv4Addr::new(192, 0, 2, 1)))));
        assert_eq!(
            own[common..common + 2],
            [insn(ld_w, 0, 0, net(12)), insn(jeq, 1, 0, 0xc000_0201)]
        );
        let v6 = of(&filter_program(Source::From(PEER_V6.into())));
        let words = [0x2001_0db8, 0, 0, 2];
        for (i, w) in words.into_iter().enumerate() {
            let at = common + 2 * i;
            let to_drop = (v6.len() - 1 - (at + 1) - 1) as u8;
            assert_eq!(
                v6[at..at + 2],
                [insn(ld_w, 0, 0, net(8 + 4 * i as u32)), insn(jeq, 0, to_drop, w)]
            );
        }
        for (program, _) in every_shape() {
            assert!(program.len() <= FILTER_LEN_MAX);
            for (i, insn) in program.iter().enumerate() {
                let is_jump = u32::from(insn.code) & 0x07 == libc::BPF_JMP;
                let target = i + 1 + usize::from(insn.jt.max(insn.jf));
                assert!(!is_jump || target < program.len(), "instruction {i} jumps out");
            }
            let last = program[program.len() - 1];
            assert_eq!(u32::from(last.code), libc::BPF_RET | libc::BPF_K, "ends in a return");
        }
    }

    #[test]
    fn the_drop_count_adds_what_the_kernel_counter_moved_across_a_wrap() {
        let fd = socket(AddressFamily::Inet, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)
            .expect("a UDP socket");
        let mut link = UdpLink::new(fd, SocketAddr::from((Ipv4Addr::LOCALHOST, 9)));
        link.note_drops(5);
        link.note_drops(5);
        assert_eq!(link.stats().kernel_dropped, 5);
        link.note_drops(3); // a datagram queued before the last reading: nothing new
        assert_eq!(link.stats().kernel_dropped, 5);
        link.note_drops(0x7000_0000);
        link.note_drops(0xe000_0000);
        link.note_drops(0x5000_0000); // wrapped
        assert_eq!(link.stats().kernel_dropped, 0x1_5000_0000);
    }
}
