//! The `ip` resource (SPEC §2 `resource ip ADDR/PREFIX dev IFACE [garp N] [garp_interval DUR]
//! [garp_refresh DUR]`): a small state machine the event loop drives, which puts a service
//! address on an interface, announces it, watches it and takes it away again.
//!
//! Call protocol (all calls return at once; netlink answers are synchronous, packet sends are
//! non-blocking):
//! - `is_configured()` at daemon start, to adopt an address a previous run left behind;
//! - `start(now)` adds the address (already there is fine) and sends the first announcement
//!   round at once; then the loop calls `poll(now)` whenever `next_deadline()` has passed.
//!   A round is one gratuitous ARP request plus one reply (IPv4) or one unsolicited neighbour
//!   advertisement (IPv6). `garp` rounds go out `garp_interval` apart, then one every
//!   `garp_refresh` while active (never when it is zero);
//! - `monitor()` checks that the address is still on the interface and the link is up;
//! - `stop()` removes the address (already gone, or the interface gone, is fine) and stops
//!   announcing.
//!
//! Both sockets (rtnetlink and the packet socket) are opened together on the first call of
//! any kind, in the calling thread's network namespace, and stay there. The interface is
//! looked up again on every call: an interface that was deleted and made again gets a new
//! index, and the packet socket is bound again. Opening allocates once (the netlink buffer).
//!
//! Not here: when to start or stop (the core decides), retries (the loop's restart policy),
//! and parsing the configuration line (`config`).

use core::fmt;
use std::net::IpAddr;

use log::{debug, info};
use nix::errno::Errno;

use crate::core::time::{Duration, Instant};
use crate::drivers::arp::Announcer;
use crate::drivers::netlink::{IfName, LinkState, Netlink, NetlinkError, NetlinkOp};

/// Announcement rounds sent on start (SPEC §2 default).
pub const GARP_COUNT_DEFAULT: u32 = 5;
/// Time between the first rounds (SPEC §2 default).
pub const GARP_INTERVAL_DEFAULT: Duration = Duration::from_millis(200);
/// Time between later rounds while active; zero means none (SPEC §2 default).
pub const GARP_REFRESH_DEFAULT: Duration = Duration::ZERO;

/// What went wrong with an `ip` resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpErrorKind {
    /// There is no interface by that name.
    NoSuchInterface,
    /// The interface is down or has no carrier.
    LinkDown,
    /// The address is no longer on the interface.
    AddressGone,
    /// The interface has no Ethernet MAC address, so nothing can be announced.
    NoMac,
    /// An rtnetlink request failed.
    Netlink(NetlinkOp, Errno),
    /// The packet socket could not be opened or a send failed.
    Announce(Errno),
}

/// An `ip` resource error: what went wrong, for which address on which interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpError {
    /// The service address.
    pub addr: IpAddr,
    /// Its prefix length.
    pub prefix: u8,
    /// The interface.
    pub dev: IfName,
    /// What went wrong.
    pub kind: IpErrorKind,
}

impl fmt::Display for IpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ip {}/{} dev {}: ", self.addr, self.prefix, self.dev)?;
        match self.kind {
            IpErrorKind::NoSuchInterface => write!(f, "no interface named {}", self.dev),
            IpErrorKind::LinkDown => f.write_str("link is down"),
            IpErrorKind::AddressGone => f.write_str("address is no longer on the interface"),
            IpErrorKind::NoMac => f.write_str("interface has no Ethernet address"),
            IpErrorKind::Netlink(op, errno) => {
                let err = NetlinkError { op, dev: None, addr: None, errno };
                write!(f, "{err}")
            }
            IpErrorKind::Announce(errno) => write!(f, "send announcement: {}", errno.desc()),
        }
    }
}

/// Counters for status and SIGUSR1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IpStats {
    /// Announcement rounds sent without error.
    pub rounds_sent: u64,
    /// Announcement rounds in which a send failed.
    pub rounds_failed: u64,
}

/// One `resource ip` line. See the module doc for the call protocol.
pub struct IpResource {
    addr: IpAddr,
    prefix: u8,
    dev: IfName,
    garp_count: u32,
    garp_interval: Duration,
    garp_refresh: Duration,
    netlink: Option<Netlink>,
    announcer: Option<Announcer>,
    active: bool,
    rounds_done: u32,
    next_round: Option<Instant>,
    stats: IpStats,
}

impl IpResource {
    /// A stopped resource; no syscalls yet. `prefix` must fit the family (the config checks).
    pub fn new(
        addr: IpAddr,
        prefix: u8,
        dev: IfName,
        garp_count: u32,
        garp_interval: Duration,
        garp_refresh: Duration,
    ) -> IpResource {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        assert!(prefix <= max, "prefix /{prefix} does not fit {addr}");
        IpResource {
            addr,
            prefix,
            dev,
            garp_count,
            garp_interval,
            garp_refresh,
            netlink: None,
            announcer: None,
            active: false,
            rounds_done: 0,
            next_round: None,
            stats: IpStats::default(),
        }
    }

    /// The service address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The interface name.
    pub fn dev(&self) -> IfName {
        self.dev
    }

    /// Whether `start` succeeded and `stop` has not been called since.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Counters.
    pub fn stats(&self) -> IpStats {
        self.stats
    }

    /// Adds the address and sends the first announcement round. The address being there
    /// already is fine (adoption, or a restart after a crash).
    pub fn start(&mut self, now: Instant) -> Result<(), IpError> {
        let link = self.link()?;
        let (addr, prefix) = (self.addr, self.prefix);
        let applied = self.nl()?.add_addr(link.iface, addr, prefix).map_err(|e| self.nl_err(e))?;
        info!("ip {addr}/{prefix} dev {}: added ({applied:?})", self.dev);
        let mac = link.mac.ok_or(self.err(IpErrorKind::NoMac))?;
        let err =
            |e| IpError { addr, prefix, dev: link.iface.name, kind: IpErrorKind::Announce(e) };
        let announcer = self.announcer.as_mut().ok_or(err(Errno::EBADF))?;
        if announcer.bound() != Some((link.iface, mac)) {
            announcer.bind(link.iface, mac).map_err(err)?;
        }
        self.active = true;
        self.rounds_done = 0;
        self.next_round = if self.garp_count > 0 || self.garp_refresh > Duration::ZERO {
            Some(now)
        } else {
            None
        };
        self.poll(now)
    }

    /// Sends the announcement round that is due, if any. A failed send is counted and
    /// returned; the schedule moves on regardless, so a dead link does not make the loop spin.
    pub fn poll(&mut self, now: Instant) -> Result<(), IpError> {
        match self.next_round {
            Some(due) if self.active && due <= now => {}
            _ => return Ok(()),
        }
        let result = match &self.announcer {
            Some(announcer) => announcer.announce(self.addr),
            None => Err(Errno::EBADF),
        };
        self.rounds_done = self.rounds_done.saturating_add(1);
        self.next_round = if self.rounds_done < self.garp_count {
            Some(now + self.garp_interval)
        } else if self.garp_refresh > Duration::ZERO {
            Some(now + self.garp_refresh)
        } else {
            None
        };
        debug!("ip {} dev {}: announcement {} sent", self.addr, self.dev, self.rounds_done);
        match result {
            Ok(()) => {
                self.stats.rounds_sent += 1;
                Ok(())
            }
            Err(errno) => {
                self.stats.rounds_failed += 1;
                Err(self.err(IpErrorKind::Announce(errno)))
            }
        }
    }

    /// When `poll` next has something to send.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.active { self.next_round } else { None }
    }

    /// Checks that the link is up and the address is still on it.
    pub fn monitor(&mut self) -> Result<(), IpError> {
        let link = self.link()?;
        if !link.is_up() {
            return Err(self.err(IpErrorKind::LinkDown));
        }
        let addr = self.addr;
        if self.nl()?.has_addr(link.iface, addr).map_err(|e| self.nl_err(e))? {
            Ok(())
        } else {
            Err(self.err(IpErrorKind::AddressGone))
        }
    }

    /// Stops announcing and removes the address. Already gone, or no such interface any more
    /// (which takes its addresses with it), counts as done.
    pub fn stop(&mut self) -> Result<(), IpError> {
        self.active = false;
        self.next_round = None;
        let link = match self.link() {
            Err(IpError { kind: IpErrorKind::NoSuchInterface, .. }) => return Ok(()),
            other => other?,
        };
        let (addr, prefix) = (self.addr, self.prefix);
        match self.nl()?.del_addr(link.iface, addr, prefix) {
            Ok(applied) => {
                info!("ip {addr}/{prefix} dev {}: removed ({applied:?})", self.dev);
                Ok(())
            }
            Err(e) if e.errno == Errno::ENODEV => Ok(()),
            Err(e) => Err(self.nl_err(e)),
        }
    }

    /// Whether the address is on the interface now (false when there is no such interface).
    pub fn is_configured(&mut self) -> Result<bool, IpError> {
        let link = match self.link() {
            Err(IpError { kind: IpErrorKind::NoSuchInterface, .. }) => return Ok(false),
            other => other?,
        };
        let addr = self.addr;
        self.nl()?.has_addr(link.iface, addr).map_err(|e| self.nl_err(e))
    }

    fn link(&mut self) -> Result<LinkState, IpError> {
        let dev = self.dev;
        self.nl()?.link(dev).map_err(|e| self.nl_err(e))
    }

    /// The netlink socket, opening it and the packet socket on first use so that both live
    /// in the namespace of the first caller.
    fn nl(&mut self) -> Result<&mut Netlink, IpError> {
        if self.announcer.is_none() {
            let announcer = Announcer::open().map_err(|e| self.err(IpErrorKind::Announce(e)))?;
            self.announcer = Some(announcer);
        }
        let nl = match self.netlink.take() {
            Some(nl) => nl,
            None => Netlink::open().map_err(|e| self.nl_err(e))?,
        };
        Ok(self.netlink.insert(nl))
    }

    fn nl_err(&self, e: NetlinkError) -> IpError {
        if e.errno == Errno::ENODEV {
            return self.err(IpErrorKind::NoSuchInterface);
        }
        self.err(IpErrorKind::Netlink(e.op, e.errno))
    }

    fn err(&self, kind: IpErrorKind) -> IpError {
        IpError { addr: self.addr, prefix: self.prefix, dev: self.dev, kind }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn resource(count: u32, interval_ms: u64, refresh_ms: u64) -> IpResource {
        let dev = IfName::new("lan0");
        // INVARIANT: "lan0" is a valid interface name.
        let dev = dev.unwrap();
        let addr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100));
        let interval = Duration::from_millis(interval_ms);
        IpResource::new(addr, 24, dev, count, interval, Duration::from_millis(refresh_ms))
    }

    /// What `start` does after the syscalls succeed; the sends fail (no socket) and are
    /// counted, which is all the schedule needs.
    fn activate(ip: &mut IpResource, now: Instant) {
        ip.active = true;
        ip.rounds_done = 0;
        ip.next_round = Some(now);
        assert!(ip.poll(now).is_err());
    }

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn count_rounds_at_interval_then_nothing() {
        let mut ip = resource(3, 200, 0);
        activate(&mut ip, at(1000));
        assert_eq!(ip.next_deadline(), Some(at(1200)));
        assert!(ip.poll(at(1199)).is_ok(), "nothing due yet");
        assert_eq!(ip.stats().rounds_failed, 1);
        let _ = ip.poll(at(1200));
        assert_eq!(ip.next_deadline(), Some(at(1400)));
        let _ = ip.poll(at(1450));
        assert_eq!(ip.next_deadline(), None);
        assert_eq!(ip.stats().rounds_failed, 3);
    }

    #[test]
    fn refresh_keeps_announcing_while_active() {
        let mut ip = resource(2, 100, 5000);
        activate(&mut ip, at(0));
        let _ = ip.poll(at(100));
        assert_eq!(ip.next_deadline(), Some(at(5100)));
        let _ = ip.poll(at(5100));
        assert_eq!(ip.next_deadline(), Some(at(10_100)));
        ip.active = false;
        assert_eq!(ip.next_deadline(), None);
        assert!(ip.poll(at(20_000)).is_ok());
        assert_eq!(ip.stats().rounds_failed, 3);
    }

    #[test]
    fn errors_name_address_and_interface() {
        let ip = resource(5, 200, 0);
        let err = ip.err(IpErrorKind::NoSuchInterface);
        assert_eq!(err.to_string(), "ip 192.0.2.100/24 dev lan0: no interface named lan0");
        let err = ip.err(IpErrorKind::Netlink(NetlinkOp::AddAddr, Errno::EPERM));
        assert_eq!(
            err.to_string(),
            "ip 192.0.2.100/24 dev lan0: add address: Operation not permitted"
        );
    }
}
