//! The `ip` resource (SPEC §2 `resource ip ADDR/PREFIX dev IFACE [garp N] [garp_interval DUR]
//! [garp_refresh DUR]`): a small state machine the event loop drives, which puts a service
//! address on an interface, announces it, watches it and takes it away again.
//!
//! Call protocol (SPEC §7.3: nothing here waits for the kernel). An action (`IpAction`:
//! start, stop, monitor) is a short sequence of rtnetlink requests, each answered on the
//! non-blocking netlink socket: `begin(now, action)` sends the first; while it runs the loop
//! polls `fd()` and calls `poll_action(now)` when the fd is readable or `next_deadline()` has
//! passed, until it hands back the result (`IpOutcome` or `IpError`). A request unanswered
//! after `netlink::REPLY_TIMEOUT_MS` fails the action with `ETIMEDOUT`. One action at a time
//! (the core runs one resource action at a time); `begin` abandons one still running.
//! - start: look the interface up, add the address (already there is fine: adoption, or a
//!   restart after a crash), bind the packet socket and send the first announcement round;
//!   then the loop calls `poll(now)` whenever `next_deadline()` has passed. A round is one
//!   gratuitous ARP request plus one reply (IPv4) or one unsolicited neighbour advertisement
//!   (IPv6); when rounds are due is `announce::Announcements`;
//! - monitor (also the probe at daemon start, to adopt an address a previous run left
//!   behind): not running when there is no such interface or the address is not on it; a
//!   failure when it is, but the link is down;
//! - stop: stops announcing and removes the address (already gone, or the interface gone, is
//!   fine).
//!
//! Both sockets (rtnetlink and the packet socket) are opened together by the first action,
//! in the calling thread's network namespace, and stay there. The interface is looked up
//! again by every action: an interface that was deleted and made again gets a new index, and
//! the packet socket is bound again. Opening allocates once (the netlink buffer). Packet
//! sends never block (`arp::Announcer`).
//!
//! Not here: when to start or stop (the core decides), retries (the loop's restart policy),
//! and parsing the configuration line (`config`).

use core::fmt;
use std::net::IpAddr;

use std::os::fd::RawFd;

use log::{debug, info};
use nix::errno::Errno;

use crate::announce::Announcements;
pub use crate::announce::{GARP_COUNT_DEFAULT, GARP_INTERVAL_DEFAULT, GARP_REFRESH_DEFAULT};
use crate::core::time::{Duration, Instant};
use crate::drivers::arp::Announcer;
use crate::drivers::netlink::{
    self, Applied, IfName, LinkState, Netlink, NetlinkError, NetlinkOp, Reply, Request,
};

/// What went wrong with an `ip` resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpErrorKind {
    /// There is no interface by that name.
    NoSuchInterface,
    /// The interface is down or has no carrier.
    LinkDown,
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

/// An action of the resource (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpAction {
    /// Add the address and announce it.
    Start,
    /// Stop announcing and remove the address.
    Stop,
    /// Is the address on its interface, and the link up?
    Monitor,
}

/// How an action ended well.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpOutcome {
    /// It did what was asked; after a monitor: the address is on its interface, link up.
    Ok,
    /// A monitor found the address not configured (or no such interface).
    NotRunning,
}

/// Where a running action stands: which request is out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// The interface is being looked up.
    Lookup,
    /// The address is being added or removed on this link.
    Change(LinkState),
    /// The addresses of this link are being listed.
    Check(LinkState),
}

#[derive(Clone, Copy, Debug)]
struct Running {
    action: IpAction,
    step: Step,
    /// When the request out now is given up.
    deadline: Instant,
}

/// How long one request may go unanswered.
const REPLY_TIMEOUT: Duration = Duration::from_millis(netlink::REPLY_TIMEOUT_MS as u64);

/// One `resource ip` line. See the module doc for the call protocol.
pub struct IpResource {
    addr: IpAddr,
    prefix: u8,
    dev: IfName,
    netlink: Option<Netlink>,
    announcer: Option<Announcer>,
    /// When announcement rounds are due.
    announcements: Announcements,
    running: Option<Running>,
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
            netlink: None,
            announcer: None,
            announcements: Announcements::new(garp_count, garp_interval, garp_refresh),
            running: None,
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
        self.announcements.is_active()
    }

    /// Counters.
    pub fn stats(&self) -> IpStats {
        self.stats
    }

    /// Starts `action` by sending its first request; `None` while it runs (then poll `fd()`
    /// and call `poll_action`), or its result when it ended at once (a socket that cannot
    /// be opened or a request that cannot be sent). An action still running is abandoned.
    pub fn begin(&mut self, now: Instant, action: IpAction) -> Option<Result<IpOutcome, IpError>> {
        self.running = None;
        if action == IpAction::Stop {
            self.announcements.handle_stopped();
        }
        let running = Running { action, step: Step::Lookup, deadline: now };
        self.send(now, running, Request::Link(self.dev))
    }

    /// The netlink socket while an action runs, to poll for readability.
    pub fn fd(&self) -> Option<RawFd> {
        self.running.and(self.netlink.as_ref()).map(Netlink::fd)
    }

    /// Whether an action runs.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Takes the kernel's answers so far, without waiting; the action's result once it is
    /// over, `None` while it runs. A request past its deadline fails it with `ETIMEDOUT`.
    pub fn poll_action(&mut self, now: Instant) -> Option<Result<IpOutcome, IpError>> {
        let running = self.running?;
        let Some(nl) = self.netlink.as_mut() else {
            // INVARIANT: an action runs only after `send` opened the socket.
            self.running = None;
            return Some(Err(self.err(IpErrorKind::Netlink(running_op(running), Errno::EBADF))));
        };
        let reply = match nl.poll_reply() {
            Some(reply) => reply,
            None if now >= running.deadline => {
                let req = nl.abandon().unwrap_or(Request::Link(self.dev));
                self.running = None;
                return Some(Err(self.nl_err(req.error(Errno::ETIMEDOUT))));
            }
            None => return None,
        };
        self.running = None;
        self.advance(now, running, reply)
    }

    /// The next step of `running` after `reply`.
    fn advance(
        &mut self,
        now: Instant,
        running: Running,
        reply: Result<Reply, NetlinkError>,
    ) -> Option<Result<IpOutcome, IpError>> {
        let (addr, prefix) = (self.addr, self.prefix);
        let gone = |e: &NetlinkError| e.errno == Errno::ENODEV;
        match (running.action, running.step, reply) {
            // No such interface: nothing to start on, nothing to stop, nothing running.
            (IpAction::Stop, _, Err(e)) if gone(&e) => Some(Ok(IpOutcome::Ok)),
            (IpAction::Monitor, Step::Lookup, Err(e)) if gone(&e) => {
                Some(Ok(IpOutcome::NotRunning))
            }
            (_, _, Err(e)) => Some(Err(self.nl_err(e))),
            (action, Step::Lookup, Ok(Reply::Link(link))) => {
                let iface = link.iface;
                let (step, req) = match action {
                    IpAction::Start => {
                        (Step::Change(link), Request::AddAddr { iface, addr, prefix })
                    }
                    IpAction::Stop => {
                        (Step::Change(link), Request::DelAddr { iface, addr, prefix })
                    }
                    IpAction::Monitor => (Step::Check(link), Request::HasAddr { iface, addr }),
                };
                self.send(now, Running { step, ..running }, req)
            }
            (IpAction::Start, Step::Change(link), Ok(Reply::Applied(applied))) => {
                Some(self.announce_from(now, link, applied).map(|()| IpOutcome::Ok))
            }
            (IpAction::Stop, Step::Change(_), Ok(Reply::Applied(applied))) => {
                info!("ip {addr}/{prefix} dev {}: removed ({applied:?})", self.dev);
                Some(Ok(IpOutcome::Ok))
            }
            (IpAction::Monitor, Step::Check(_), Ok(Reply::HasAddr(false))) => {
                Some(Ok(IpOutcome::NotRunning))
            }
            (IpAction::Monitor, Step::Check(link), Ok(Reply::HasAddr(true))) if link.is_up() => {
                Some(Ok(IpOutcome::Ok))
            }
            (IpAction::Monitor, Step::Check(_), Ok(Reply::HasAddr(true))) => {
                Some(Err(self.err(IpErrorKind::LinkDown)))
            }
            (_, _, Ok(_)) => {
                let op = running_op(running);
                Some(Err(self.err(IpErrorKind::Netlink(op, Errno::EBADMSG))))
            }
        }
    }

    /// Sends `req` for `running`, whose next deadline it sets; the result at once when the
    /// sockets cannot be opened or the request cannot be sent.
    fn send(
        &mut self,
        now: Instant,
        running: Running,
        req: Request,
    ) -> Option<Result<IpOutcome, IpError>> {
        let sent = match self.nl() {
            Ok(nl) => nl.send(req),
            Err(e) => return Some(Err(e)),
        };
        if let Err(e) = sent {
            return Some(Err(self.nl_err(e)));
        }
        self.running = Some(Running { deadline: now + REPLY_TIMEOUT, ..running });
        None
    }

    /// The address is on `link` (`applied`): binds the packet socket to it and sends the
    /// first announcement round.
    fn announce_from(
        &mut self,
        now: Instant,
        link: LinkState,
        applied: Applied,
    ) -> Result<(), IpError> {
        let (addr, prefix) = (self.addr, self.prefix);
        info!("ip {addr}/{prefix} dev {}: added ({applied:?})", self.dev);
        let mac = link.mac.ok_or(self.err(IpErrorKind::NoMac))?;
        let err =
            |e| IpError { addr, prefix, dev: link.iface.name, kind: IpErrorKind::Announce(e) };
        let announcer = self.announcer.as_mut().ok_or(err(Errno::EBADF))?;
        if announcer.bound() != Some((link.iface, mac)) {
            announcer.bind(link.iface, mac).map_err(err)?;
        }
        self.announcements.handle_started(now);
        self.poll(now)
    }

    /// Sends the announcement round that is due, if any. A failed send is counted and
    /// returned; the schedule moves on regardless, so a dead link does not make the loop spin.
    pub fn poll(&mut self, now: Instant) -> Result<(), IpError> {
        if !self.announcements.poll_due(now) {
            return Ok(());
        }
        let result = match &self.announcer {
            Some(announcer) => announcer.announce(self.addr),
            None => Err(Errno::EBADF),
        };
        let round = self.announcements.rounds_done();
        debug!("ip {} dev {}: announcement {round} sent", self.addr, self.dev);
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

    /// When `poll` next has something to send, or the running action's request is due to
    /// be given up (`poll_action`).
    pub fn next_deadline(&self) -> Option<Instant> {
        let round = self.announcements.next_deadline();
        let request = self.running.map(|r| r.deadline);
        match (round, request) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
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

/// The operation of the request `running` has out.
fn running_op(running: Running) -> NetlinkOp {
    match (running.action, running.step) {
        (_, Step::Lookup) => NetlinkOp::Link,
        (IpAction::Start, _) => NetlinkOp::AddAddr,
        (IpAction::Stop, _) => NetlinkOp::DelAddr,
        (IpAction::Monitor, _) => NetlinkOp::ListAddrs,
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
        ip.announcements.handle_started(now);
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
        ip.announcements.handle_stopped();
        assert_eq!(ip.next_deadline(), None);
        assert!(ip.poll(at(20_000)).is_ok());
        assert_eq!(ip.stats().rounds_failed, 3);
    }

    fn link(up: bool) -> LinkState {
        let iface = crate::drivers::netlink::Iface { name: IfName::new("lan0").unwrap(), index: 3 };
        LinkState {
            iface,
            admin_up: up,
            lower_up: up,
            oper_state: 6,
            mac: Some([2, 0, 0, 0, 0, 1]),
        }
    }

    fn step(
        action: IpAction,
        step: Step,
        reply: Result<Reply, Errno>,
    ) -> Result<IpOutcome, IpError> {
        let mut ip = resource(0, 200, 0);
        let running = Running { action, step, deadline: at(200) };
        let req = Request::Link(ip.dev);
        let reply = reply.map_err(|e| req.error(e));
        ip.advance(at(0), running, reply).expect("a last step")
    }

    /// The last step of each action, as the kernel's answer decides it.
    #[test]
    fn answers_end_actions() {
        let gone = Err(Errno::ENODEV);
        assert_eq!(step(IpAction::Stop, Step::Lookup, gone), Ok(IpOutcome::Ok));
        assert_eq!(step(IpAction::Monitor, Step::Lookup, gone), Ok(IpOutcome::NotRunning));
        let start = step(IpAction::Start, Step::Lookup, gone).map_err(|e| e.kind);
        assert_eq!(start, Err(IpErrorKind::NoSuchInterface));
        let change = Step::Change(link(true));
        let removed = Ok(Reply::Applied(crate::drivers::netlink::Applied::AlreadySo));
        assert_eq!(step(IpAction::Stop, change, removed), Ok(IpOutcome::Ok));
        assert_eq!(step(IpAction::Stop, change, gone), Ok(IpOutcome::Ok));
        let (up, down) = (Step::Check(link(true)), Step::Check(link(false)));
        assert_eq!(step(IpAction::Monitor, up, Ok(Reply::HasAddr(true))), Ok(IpOutcome::Ok));
        assert_eq!(
            step(IpAction::Monitor, down, Ok(Reply::HasAddr(false))),
            Ok(IpOutcome::NotRunning)
        );
        let down = step(IpAction::Monitor, down, Ok(Reply::HasAddr(true))).map_err(|e| e.kind);
        assert_eq!(down, Err(IpErrorKind::LinkDown));
        let odd = step(IpAction::Monitor, up, Ok(Reply::Link(link(true)))).map_err(|e| e.kind);
        assert_eq!(odd, Err(IpErrorKind::Netlink(NetlinkOp::ListAddrs, Errno::EBADMSG)));
        let perm = step(IpAction::Start, change, Err(Errno::EPERM)).map_err(|e| e.kind);
        assert_eq!(perm, Err(IpErrorKind::Netlink(NetlinkOp::Link, Errno::EPERM)));
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
