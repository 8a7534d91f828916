//! Address announcements: gratuitous ARP (IPv4) and unsolicited neighbour advertisements
//! (IPv6), sent through an `AF_PACKET` socket bound to one interface so that switches, routers
//! and clients on the LAN move a service address to this node's MAC at once.
//!
//! IPv4 goes out in both forms that real gear learns from (some only take one): an ARP request
//! and an ARP reply, each with sender = target = the address, to the broadcast MAC. IPv6 goes
//! out as an ICMPv6 neighbour advertisement (RFC 4861 §7.2.6): override flag set, solicited
//! flag clear, target = the address, a target link-layer address option, from the address to
//! ff02::1 with hop limit 255.
//!
//! Frames are built by the pure `emit_*` functions into fixed buffers; the socket is
//! `SOCK_DGRAM`, so the kernel adds the Ethernet header with the interface's own source MAC.
//! The socket never receives (it is bound with protocol 0) and never blocks: a full queue is
//! `EAGAIN`, reported to the caller like any other send error.
//!
//! Not here: when to announce (that is `ipaddr`), and listening for conflicts.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, LinkAddr, MsgFlags, SockFlag, SockType, SockaddrLike, bind, sendto, socket,
};

use crate::drivers::checksum::internet_checksum;
use crate::drivers::netlink::Iface;

/// Length of an Ethernet/IPv4 ARP packet (after the Ethernet header).
pub const ARP_LEN: usize = 28;
/// Length of an unsolicited NA: IPv6 header, ICMPv6 NA and one link-layer address option.
pub const NA_LEN: usize = 40 + 24 + 8;
/// The broadcast MAC address.
pub const BROADCAST_MAC: [u8; 6] = [0xff; 6];
/// The MAC address of ff02::1 (all nodes), RFC 2464 §7.
pub const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];
/// ff02::1, all nodes on the link.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

const ETH_P_IP: u16 = 0x0800;
const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IPV6: u16 = 0x86dd;
const ICMPV6: u8 = 58;
const ND_NEIGHBOR_ADVERT: u8 = 136;
const NA_FLAG_OVERRIDE: u32 = 0x2000_0000;
const ND_OPT_TARGET_LL_ADDR: u8 = 2;

/// The ARP operation of a gratuitous ARP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArpOp {
    /// ARP request (operation 1), target hardware address zero (RFC 5227 announcement).
    Request,
    /// ARP reply (operation 2), target hardware address = sender's (what Linux needs to
    /// treat a broadcast reply as gratuitous).
    Reply,
}

/// Writes a gratuitous ARP for `ip` at `mac` into `buf`.
pub fn emit_garp(op: ArpOp, mac: [u8; 6], ip: Ipv4Addr, buf: &mut [u8; ARP_LEN]) {
    let (code, tha) = match op {
        ArpOp::Request => (1u16, [0; 6]),
        ArpOp::Reply => (2u16, mac),
    };
    buf[0..2].copy_from_slice(&1u16.to_be_bytes()); // Ethernet
    buf[2..4].copy_from_slice(&ETH_P_IP.to_be_bytes());
    buf[4] = 6;
    buf[5] = 4;
    buf[6..8].copy_from_slice(&code.to_be_bytes());
    buf[8..14].copy_from_slice(&mac);
    buf[14..18].copy_from_slice(&ip.octets());
    buf[18..24].copy_from_slice(&tha);
    buf[24..28].copy_from_slice(&ip.octets());
}

/// Writes an unsolicited neighbour advertisement for `ip` at `mac`, from `ip` to ff02::1,
/// into `buf` (IPv6 header included, checksum filled in).
pub fn emit_unsolicited_na(mac: [u8; 6], ip: Ipv6Addr, buf: &mut [u8; NA_LEN]) {
    let icmp_len = (NA_LEN - 40) as u16;
    buf.fill(0);
    buf[0] = 0x60; // version 6, traffic class and flow label zero
    buf[4..6].copy_from_slice(&icmp_len.to_be_bytes());
    buf[6] = ICMPV6;
    buf[7] = 255; // hop limit: receivers drop ND with anything else
    buf[8..24].copy_from_slice(&ip.octets());
    buf[24..40].copy_from_slice(&ALL_NODES.octets());
    let icmp = &mut buf[40..];
    icmp[0] = ND_NEIGHBOR_ADVERT;
    icmp[4..8].copy_from_slice(&NA_FLAG_OVERRIDE.to_be_bytes());
    icmp[8..24].copy_from_slice(&ip.octets());
    icmp[24] = ND_OPT_TARGET_LL_ADDR;
    icmp[25] = 1; // in units of 8 bytes
    icmp[26..32].copy_from_slice(&mac);
    let sum = icmpv6_checksum(ip, ALL_NODES, &buf[40..]);
    buf[42..44].copy_from_slice(&sum.to_be_bytes());
}

/// The ICMPv6 checksum of `msg` (with its checksum field zero) over the IPv6 pseudo-header.
pub fn icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, msg: &[u8]) -> u16 {
    // The pseudo-header: source, destination, upper-layer length (32 bits), zeros and the
    // next header.
    let (src, dst) = (src.octets(), dst.octets());
    let len = (msg.len() as u32).to_be_bytes();
    internet_checksum(&[&src, &dst, &len, &[0, 0, 0, ICMPV6], msg])
}

/// A send-only `AF_PACKET` socket bound to one interface, with that interface's MAC.
///
/// `open` makes the socket (in the calling thread's network namespace, for good); `bind`
/// points it at an interface of that namespace, and may be called again when the interface
/// was made again with a new index. Sends before the first `bind` fail with `EDESTADDRREQ`.
pub struct Announcer {
    fd: OwnedFd,
    bound: Option<(Iface, [u8; 6])>,
}

impl Announcer {
    /// Opens the socket in the calling thread's network namespace, not yet bound.
    pub fn open() -> Result<Announcer, Errno> {
        let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
        // Protocol 0: this socket receives nothing.
        let fd = socket(AddressFamily::Packet, SockType::Datagram, flags, None)?;
        Ok(Announcer { fd, bound: None })
    }

    /// Binds to `iface`, sending as `mac` (the interface's own MAC, from `Netlink::link`).
    pub fn bind(&mut self, iface: Iface, mac: [u8; 6]) -> Result<(), Errno> {
        if let Err(e) = bind(self.fd.as_raw_fd(), &link_addr(iface.index, 0, [0; 6])) {
            self.bound = None;
            return Err(e);
        }
        self.bound = Some((iface, mac));
        Ok(())
    }

    /// The interface and MAC it is bound to.
    pub fn bound(&self) -> Option<(Iface, [u8; 6])> {
        self.bound
    }

    /// Announces `ip`: both gratuitous ARP forms for IPv4, one unsolicited NA for IPv6.
    /// Every frame is attempted; the first error is returned.
    pub fn announce(&self, ip: IpAddr) -> Result<(), Errno> {
        match ip {
            IpAddr::V4(v4) => {
                let request = self.send_garp(ArpOp::Request, v4);
                let reply = self.send_garp(ArpOp::Reply, v4);
                request.and(reply)
            }
            IpAddr::V6(v6) => self.send_unsolicited_na(v6),
        }
    }

    /// Sends one gratuitous ARP to the broadcast MAC.
    pub fn send_garp(&self, op: ArpOp, ip: Ipv4Addr) -> Result<(), Errno> {
        let (_, mac) = self.bound.ok_or(Errno::EDESTADDRREQ)?;
        let mut buf = [0; ARP_LEN];
        emit_garp(op, mac, ip, &mut buf);
        self.send(ETH_P_ARP, BROADCAST_MAC, &buf)
    }

    /// Sends one unsolicited neighbour advertisement to ff02::1.
    pub fn send_unsolicited_na(&self, ip: Ipv6Addr) -> Result<(), Errno> {
        let (_, mac) = self.bound.ok_or(Errno::EDESTADDRREQ)?;
        let mut buf = [0; NA_LEN];
        emit_unsolicited_na(mac, ip, &mut buf);
        self.send(ETH_P_IPV6, ALL_NODES_MAC, &buf)
    }

    fn send(&self, protocol: u16, dst: [u8; 6], frame: &[u8]) -> Result<(), Errno> {
        let (iface, _) = self.bound.ok_or(Errno::EDESTADDRREQ)?;
        let to = link_addr(iface.index, protocol, dst);
        match sendto(self.fd.as_raw_fd(), frame, &to, MsgFlags::empty())? {
            n if n != frame.len() => Err(Errno::EMSGSIZE),
            _ => Ok(()),
        }
    }
}

/// The `AF_PACKET` address of interface `index`, `protocol` and destination MAC `dst`.
fn link_addr(index: u32, protocol: u16, dst: [u8; 6]) -> LinkAddr {
    let sa = sockaddr_ll(index, protocol, dst);
    let len = core::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // nix's LinkAddr has no constructor from its parts, only this one from a raw sockaddr.
    // SAFETY: `sa` is a whole, initialised sockaddr_ll of `len` bytes that lives across the
    // call, which copies it.
    let addr = unsafe { LinkAddr::from_raw((&raw const sa).cast(), Some(len)) };
    // INVARIANT: `sockaddr_ll` sets the family to AF_PACKET and `len` is its size, the two
    // things from_raw checks.
    addr.expect("a sockaddr_ll is a LinkAddr")
}

fn sockaddr_ll(index: u32, protocol: u16, dst: [u8; 6]) -> libc::sockaddr_ll {
    let mut addr = [0; 8];
    addr[..6].copy_from_slice(&dst);
    libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        sll_protocol: protocol.to_be(),
        sll_ifindex: index as i32,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 6,
        sll_addr: addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];

    #[test]
    fn garp_request_and_reply_bytes() {
        let ip = Ipv4Addr::new(192, 0, 2, 100);
        let mut buf = [0; ARP_LEN];
        emit_garp(ArpOp::Request, MAC, ip, &mut buf);
        #[rustfmt::skip]
        let want = [
            0, 1, 8, 0, 6, 4, 0, 1,
            2, 0, 0, 0, 0, 10, 192, 0, 2, 100,
            0, 0, 0, 0, 0, 0, 192, 0, 2, 100,
        ];
        assert_eq!(buf, want);
        emit_garp(ArpOp::Reply, MAC, ip, &mut buf);
        assert_eq!(&buf[6..8], &[0, 2]);
        assert_eq!(&buf[18..24], &MAC);
    }

    #[test]
    fn unsolicited_na_bytes_and_checksum() {
        let ip = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
        let mut buf = [0; NA_LEN];
        emit_unsolicited_na(MAC, ip, &mut buf);
        assert_eq!(&buf[..8], &[0x60, 0, 0, 0, 0, 32, 58, 255]);
        assert_eq!(&buf[24..40], &ALL_NODES.octets());
        assert_eq!(&buf[40..42], &[136, 0]);
        assert_eq!(&buf[44..48], &[0x20, 0, 0, 0]);
        assert_eq!(&buf[48..64], &ip.octets());
        assert_eq!(&buf[64..72], &[2, 1, 2, 0, 0, 0, 0, 10]);
        // A correct checksum makes the sum over pseudo-header and message come out as zero.
        assert_eq!(icmpv6_checksum(ip, ALL_NODES, &buf[40..]), 0);
        // Cross-checked with an independent one-liner (Python, struct-based 16-bit sum).
        assert_eq!(&buf[42..44], &[0xf7, 0x23]);
    }

    #[test]
    fn checksum_pads_odd_lengths() {
        let a = icmpv6_checksum(Ipv6Addr::UNSPECIFIED, Ipv6Addr::UNSPECIFIED, &[1]);
        let b = icmpv6_checksum(Ipv6Addr::UNSPECIFIED, Ipv6Addr::UNSPECIFIED, &[1, 0]);
        assert_ne!(a, b, "lengths differ in the pseudo-header");
        let c = icmpv6_checksum(Ipv6Addr::UNSPECIFIED, Ipv6Addr::UNSPECIFIED, &[0x12, 0x34]);
        assert_eq!(c, !(0x1234u16 + 2 + 58));
    }
}
