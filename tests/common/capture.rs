//! Frame capture for tests: `Capture` is an `AF_PACKET` socket bound to one interface in one
//! namespace that hands back every frame the interface sees, plus parsers for the frames the
//! `ip` resource sends (ARP and ICMPv6 neighbour advertisements).
//!
//! Not here: any filtering by the kernel (BPF) — tests filter with the parsers.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::Netns;

const ETH_P_ALL: u16 = 0x0003;
const ETH_HDR_LEN: usize = 14;

/// A raw socket capturing every frame (either direction) on one interface.
pub struct Capture {
    fd: OwnedFd,
}

impl Capture {
    /// Opens the capture on `dev` inside `ns`.
    pub fn open(ns: &Netns, dev: &str) -> Capture {
        let dev = dev.to_owned();
        ns.run(move || {
            let index = nix::net::if_::if_nametoindex(dev.as_str())
                .unwrap_or_else(|e| panic!("no interface {dev}: {e}"));
            let kind = libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
            // SAFETY: plain socket(2); checked below.
            let raw = unsafe { libc::socket(libc::AF_PACKET, kind, i32::from(ETH_P_ALL.to_be())) };
            assert!(raw >= 0, "AF_PACKET socket: {}", nix::errno::Errno::last());
            // SAFETY: fresh descriptor, owned from here on.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            // SAFETY: an all-zero sockaddr_ll is valid; we fill the fields we need.
            let mut sa: libc::sockaddr_ll = unsafe { core::mem::zeroed() };
            sa.sll_family = libc::AF_PACKET as u16;
            sa.sll_protocol = ETH_P_ALL.to_be();
            sa.sll_ifindex = index as i32;
            // SAFETY: `sa` is valid for its size.
            let rc = unsafe {
                libc::bind(
                    fd.as_raw_fd(),
                    (&sa as *const libc::sockaddr_ll).cast(),
                    core::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
                )
            };
            assert!(rc == 0, "bind AF_PACKET: {}", nix::errno::Errno::last());
            Capture { fd }
        })
    }

    /// The next frame (Ethernet header included), or `None` if none came within `timeout`.
    pub fn next(&self, timeout: Duration) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 2048];
        loop {
            // SAFETY: reads into our own buffer of the given length.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n >= 0 {
                buf.truncate(n as usize);
                return Some(buf);
            }
            let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(0) => return None,
                Ok(_) => continue,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => panic!("poll: {e}"),
            }
        }
    }

    /// Collects frames for which `pick` returns something, until `enough` of them or
    /// `timeout` with no frame at all.
    pub fn collect<T>(
        &self,
        enough: usize,
        timeout: Duration,
        mut pick: impl FnMut(&[u8]) -> Option<T>,
    ) -> Vec<T> {
        let mut seen = Vec::new();
        while seen.len() < enough {
            match self.next(timeout) {
                Some(frame) => seen.extend(pick(&frame)),
                None => break,
            }
        }
        seen
    }
}

/// An ARP packet as seen on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpSeen {
    /// Ethernet destination.
    pub eth_dst: [u8; 6],
    /// 1 request, 2 reply.
    pub op: u16,
    /// Sender hardware address.
    pub sha: [u8; 6],
    /// Sender protocol address.
    pub spa: Ipv4Addr,
    /// Target hardware address.
    pub tha: [u8; 6],
    /// Target protocol address.
    pub tpa: Ipv4Addr,
}

/// Parses an Ethernet/IPv4 ARP frame.
pub fn parse_arp(frame: &[u8]) -> Option<ArpSeen> {
    if frame.len() < ETH_HDR_LEN + 28 || frame[12..14] != [0x08, 0x06] {
        return None;
    }
    let arp = &frame[ETH_HDR_LEN..];
    if arp[0..6] != [0, 1, 8, 0, 6, 4] {
        return None;
    }
    let mac = |at: usize| -> [u8; 6] { arp[at..at + 6].try_into().unwrap_or([0; 6]) };
    let ip = |at: usize| Ipv4Addr::new(arp[at], arp[at + 1], arp[at + 2], arp[at + 3]);
    Some(ArpSeen {
        eth_dst: frame[0..6].try_into().unwrap_or([0; 6]),
        op: u16::from_be_bytes([arp[6], arp[7]]),
        sha: mac(8),
        spa: ip(14),
        tha: mac(18),
        tpa: ip(24),
    })
}

/// A neighbour advertisement as seen on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NaSeen {
    /// Ethernet destination.
    pub eth_dst: [u8; 6],
    /// IPv6 source.
    pub src: Ipv6Addr,
    /// IPv6 destination.
    pub dst: Ipv6Addr,
    /// IPv6 hop limit.
    pub hop_limit: u8,
    /// The R, S and O flags (top three bits of the flags word).
    pub flags: u8,
    /// The target address.
    pub target: Ipv6Addr,
    /// The target link-layer address option, if present.
    pub lladdr: Option<[u8; 6]>,
    /// Whether the ICMPv6 checksum verifies.
    pub checksum_ok: bool,
}

/// Parses an Ethernet/IPv6/ICMPv6 neighbour advertisement (no extension headers).
pub fn parse_na(frame: &[u8]) -> Option<NaSeen> {
    if frame.len() < ETH_HDR_LEN + 40 + 24 || frame[12..14] != [0x86, 0xdd] {
        return None;
    }
    let ip6 = &frame[ETH_HDR_LEN..];
    let payload_len = usize::from(u16::from_be_bytes([ip6[4], ip6[5]]));
    if ip6[6] != 58 || ip6.len() < 40 + payload_len || payload_len < 24 {
        return None;
    }
    let icmp = &ip6[40..40 + payload_len];
    if icmp[0] != 136 {
        return None;
    }
    let addr = |b: &[u8]| -> Ipv6Addr {
        let octets: [u8; 16] = b[..16].try_into().unwrap_or([0; 16]);
        Ipv6Addr::from(octets)
    };
    let (src, dst) = (addr(&ip6[8..]), addr(&ip6[24..]));
    let lladdr = (icmp.len() >= 32 && icmp[24] == 2 && icmp[25] == 1)
        .then(|| icmp[26..32].try_into().unwrap_or([0; 6]));
    Some(NaSeen {
        eth_dst: frame[0..6].try_into().unwrap_or([0; 6]),
        src,
        dst,
        hop_limit: ip6[7],
        flags: icmp[4] >> 5,
        target: addr(&icmp[8..]),
        lladdr,
        checksum_ok: hapair::drivers::arp::icmpv6_checksum(src, dst, icmp) == 0,
    })
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        *byte = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}
