//! UDP heartbeat links: one non-blocking socket per `bcast`, `mcast` or `ucast` line, bound
//! to the udpport with SO_REUSEADDR and to its interface with SO_BINDTODEVICE.
//!
//! The socket is set up once (an event, so it may allocate); `recv_batch` and `send` then never
//! block and never allocate. Transient send errors (full buffers, an unreachable network, a
//! cable pulled) are counted, not fatal: the link's liveness shows in the peer's frames. This
//! file does not frame, authenticate or pace anything.

use std::fmt;
use std::io;
use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, SockFlag, SockType, SockaddrLike, SockaddrStorage, bind, socket,
};

/// The heartbeat medium of one UDP link, as the configuration names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UdpMedium<'a> {
    /// `bcast IF`: IPv4 broadcast on the interface.
    Bcast {
        /// The interface name.
        ifname: &'a str,
    },
    /// `mcast IF GROUP [ttl N]`: IPv4 multicast joined on the interface.
    Mcast {
        /// The interface name.
        ifname: &'a str,
        /// The multicast group.
        group: Ipv4Addr,
        /// IP_MULTICAST_TTL.
        ttl: u8,
    },
    /// `ucast IF ADDR`: unicast to the peer's address, IPv4 or IPv6.
    Ucast {
        /// The interface name.
        ifname: &'a str,
        /// The peer's address (see `pick_peer`).
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
}

/// Datagrams one `recv_batch` takes at most.
pub const BATCH: usize = 8;
/// The longest datagram `recv_batch` keeps whole (a frame is at most 128 bytes).
pub const DATAGRAM_MAX: usize = 256;

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
}

impl UdpLink {
    /// Creates, configures and binds the socket for `medium` on `port`.
    pub fn open(medium: &UdpMedium<'_>, port: u16) -> Result<UdpLink, OpenError> {
        match *medium {
            UdpMedium::Bcast { ifname } => open_bcast(ifname, port),
            UdpMedium::Mcast { ifname, group, ttl } => open_mcast(ifname, group, ttl, port),
            UdpMedium::Ucast { ifname, peer } => open_ucast(ifname, peer, port),
        }
    }

    /// Takes up to `BATCH` waiting datagrams in one recvmmsg(2) call, without blocking.
    /// Our own broadcasts are skipped (the socket filter drops them before they wake anyone;
    /// this is the fallback). A datagram longer than `DATAGRAM_MAX` is cut there, and fails
    /// authentication upstream. `batch.is_full()` afterwards says more may be waiting.
    pub fn recv_batch(&mut self, batch: &mut Batch) {
        batch.count = 0;
        batch.full = false;
        // SAFETY: all-zero is a valid value for these plain C structs.
        let mut names: [libc::sockaddr_storage; BATCH] = unsafe { core::mem::zeroed() };
        let mut iovs = [libc::iovec { iov_base: core::ptr::null_mut(), iov_len: 0 }; BATCH];
        // SAFETY: as above.
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { core::mem::zeroed() };
        for i in 0..BATCH {
            iovs[i] =
                libc::iovec { iov_base: batch.bufs[i].as_mut_ptr().cast(), iov_len: DATAGRAM_MAX };
            msgs[i].msg_hdr.msg_name = (&mut names[i] as *mut libc::sockaddr_storage).cast();
            msgs[i].msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            msgs[i].msg_hdr.msg_iov = &mut iovs[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        let n = loop {
            // SAFETY: `msgs` holds BATCH headers whose name and iovec pointers point into
            // `names`, `iovs` and `batch.bufs`, all live and unaliased for the call.
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
        self.stats
    }
}

impl AsRawFd for UdpLink {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
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

/// The first address of `family` on `ifname`, with its broadcast address for IPv4 and its
/// scope id for IPv6.
fn interface_addr(ifname: &str, v6: bool) -> io::Result<Option<(SocketAddr, Option<Ipv4Addr>)>> {
    for ifa in nix::ifaddrs::getifaddrs().map_err(io::Error::from)? {
        if ifa.interface_name != ifname {
            continue;
        }
        let Some(sa) = ifa.address.as_ref() else { continue };
        if !v6 && let Some(a) = sa.as_sockaddr_in() {
            // From address and netmask: `ip addr add` leaves the broadcast field unset
            // unless told `brd +`.
            let mask = ifa.netmask.as_ref().and_then(|m| m.as_sockaddr_in()).map(|m| m.ip());
            let bcast = mask.map(|m| Ipv4Addr::from(u32::from(a.ip()) | !u32::from(m)));
            return Ok(Some((SocketAddr::V4(SocketAddrV4::from(*a)), bcast)));
        }
        if v6 && let Some(a) = sa.as_sockaddr_in6() {
            return Ok(Some((SocketAddr::V6(SocketAddrV6::from(*a)), None)));
        }
    }
    Ok(None)
}

fn open_bcast(ifname: &str, port: u16) -> Result<UdpLink, OpenError> {
    let fd = new_socket(ifname, false)?;
    set_int(&fd, libc::SOL_SOCKET, libc::SO_BROADCAST, 1).map_err(step(ifname, "SO_BROADCAST"))?;
    set_int(&fd, libc::IPPROTO_IP, libc::IP_MULTICAST_ALL, 0)
        .map_err(step(ifname, "IP_MULTICAST_ALL"))?;
    let any = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
    bind_to(&fd, any).map_err(step(ifname, "bind"))?;
    let local = interface_addr(ifname, false).map_err(step(ifname, "getifaddrs"))?;
    let bcast = local.and_then(|(_, b)| b).unwrap_or(Ipv4Addr::BROADCAST);
    if let Some((SocketAddr::V4(own), _)) = local {
        drop_own_broadcasts(&fd, *own.ip()).map_err(step(ifname, "SO_ATTACH_FILTER"))?;
    }
    let mut link = UdpLink::new(fd, SocketAddr::from((bcast, port)));
    link.own = local.map(|(a, _)| SocketAddr::new(a.ip(), port));
    Ok(link)
}

fn open_mcast(ifname: &str, group: Ipv4Addr, ttl: u8, port: u16) -> Result<UdpLink, OpenError> {
    if !group.is_multicast() {
        let error = io::Error::from(io::ErrorKind::InvalidInput);
        return Err(OpenError { ifname: ifname.to_string(), step: "group", error });
    }
    let fd = new_socket(ifname, false)?;
    let index = nix::net::if_::if_nametoindex(ifname)
        .map_err(|e| step(ifname, "if_nametoindex")(io::Error::from(e)))?;
    let mreqn = libc::ip_mreqn {
        imr_multiaddr: libc::in_addr { s_addr: u32::from(group).to_be() },
        imr_address: libc::in_addr { s_addr: 0 },
        // INVARIANT: interface indexes are small positive ints in the kernel.
        imr_ifindex: index as libc::c_int,
    };
    set_opt(&fd, libc::IPPROTO_IP, libc::IP_ADD_MEMBERSHIP, &mreqn)
        .map_err(step(ifname, "IP_ADD_MEMBERSHIP"))?;
    set_opt(&fd, libc::IPPROTO_IP, libc::IP_MULTICAST_IF, &mreqn)
        .map_err(step(ifname, "IP_MULTICAST_IF"))?;
    set_int(&fd, libc::IPPROTO_IP, libc::IP_MULTICAST_TTL, i32::from(ttl))
        .map_err(step(ifname, "IP_MULTICAST_TTL"))?;
    set_int(&fd, libc::IPPROTO_IP, libc::IP_MULTICAST_LOOP, 0)
        .map_err(step(ifname, "IP_MULTICAST_LOOP"))?;
    set_int(&fd, libc::IPPROTO_IP, libc::IP_MULTICAST_ALL, 0)
        .map_err(step(ifname, "IP_MULTICAST_ALL"))?;
    // Bound to the group, the socket sees only that group's datagrams, not unicast or
    // broadcast meant for a sibling link on the same port.
    bind_to(&fd, SocketAddr::from((group, port))).map_err(step(ifname, "bind"))?;
    Ok(UdpLink::new(fd, SocketAddr::from((group, port))))
}

fn open_ucast(ifname: &str, peer: IpAddr, port: u16) -> Result<UdpLink, OpenError> {
    let v6 = peer.is_ipv6();
    let fd = new_socket(ifname, v6)?;
    let index = nix::net::if_::if_nametoindex(ifname)
        .map_err(|e| step(ifname, "if_nametoindex")(io::Error::from(e)))?;
    // Bound to the interface's own address (when it has one) the socket takes unicast
    // datagrams ahead of a sibling bcast socket bound to the wildcard address.
    let local = interface_addr(ifname, v6).map_err(step(ifname, "getifaddrs"))?;
    let bind_addr = match (local, peer) {
        (Some((SocketAddr::V4(a), _)), _) => SocketAddr::from((*a.ip(), port)),
        (Some((SocketAddr::V6(a), _)), _) => {
            SocketAddr::V6(SocketAddrV6::new(*a.ip(), port, 0, a.scope_id()))
        }
        (None, IpAddr::V4(_)) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)),
        (None, IpAddr::V6(_)) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)),
    };
    if v6 {
        set_int(&fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1)
            .map_err(step(ifname, "IPV6_V6ONLY"))?;
    }
    bind_to(&fd, bind_addr).map_err(step(ifname, "bind"))?;
    let dest = match peer {
        IpAddr::V4(a) => SocketAddr::from((a, port)),
        // A link-local peer needs the interface as its scope; others ignore it.
        IpAddr::V6(a) => SocketAddr::V6(SocketAddrV6::new(a, port, 0, index)),
    };
    Ok(UdpLink::new(fd, dest))
}

impl UdpLink {
    fn new(fd: OwnedFd, dest: SocketAddr) -> UdpLink {
        UdpLink { socket: UdpSocket::from(fd), dest, own: None, stats: UdpStats::default() }
    }
}

/// A non-blocking UDP socket with SO_REUSEADDR, bound to the device `ifname`.
fn new_socket(ifname: &str, v6: bool) -> Result<OwnedFd, OpenError> {
    let family = if v6 { AddressFamily::Inet6 } else { AddressFamily::Inet };
    let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
    let fd = socket(family, SockType::Datagram, flags, None)
        .map_err(|e| step(ifname, "socket")(io::Error::from(e)))?;
    set_int(&fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1).map_err(step(ifname, "SO_REUSEADDR"))?;
    let name = ifname.as_bytes();
    if name.is_empty() || name.len() >= libc::IFNAMSIZ {
        let error = io::Error::from(io::ErrorKind::InvalidInput);
        return Err(OpenError { ifname: ifname.to_string(), step: "interface name", error });
    }
    // SAFETY: `name` is valid for `name.len()` bytes; the kernel copies at most that many.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            name.as_ptr().cast(),
            name.len() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(step(ifname, "SO_BINDTODEVICE")(io::Error::last_os_error()));
    }
    Ok(fd)
}

/// A socket filter (classic BPF) that drops datagrams whose IPv4 source is `own`: the
/// kernel loops every broadcast we send back to our own socket, and without the filter each
/// one would wake the loop for nothing. The filter reads the source address from the IP
/// header (SKF_NET_OFF + 12); everything else passes whole.
fn drop_own_broadcasts(fd: &OwnedFd, own: Ipv4Addr) -> io::Result<()> {
    const SKF_NET_OFF: i32 = -0x10_0000;
    let op = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter { code: code as u16, jt, jf, k };
    let program = [
        // A = the IPv4 source address (network order, loaded as a big-endian word)
        op(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, (SKF_NET_OFF + 12) as u32),
        // if A == own: drop, else keep
        op(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, 0, 1, u32::from(own)),
        op(libc::BPF_RET | libc::BPF_K, 0, 0, 0),
        op(libc::BPF_RET | libc::BPF_K, 0, 0, u32::MAX),
    ];
    let fprog = libc::sock_fprog { len: program.len() as u16, filter: program.as_ptr().cast_mut() };
    set_opt(fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog)
}

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

fn bind_to(fd: &OwnedFd, addr: SocketAddr) -> io::Result<()> {
    bind(fd.as_raw_fd(), &SockaddrStorage::from(addr)).map_err(io::Error::from)
}

fn set_int(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: i32) -> io::Result<()> {
    set_opt(fd, level, name, &(value as libc::c_int))
}

fn set_opt<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` points to a live T of `size_of::<T>()` bytes, the layout the option
    // expects (callers pass c_int or ip_mreqn as the kernel documents for each option).
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
