//! The `ip` resource on the real kernel, in namespaces: a node and a client on a bridged LAN.
//! The resource runs in the node's namespace; the client watches with a packet capture, its
//! neighbour table and ping. Needs root (CI is root).
//!
//! Every action is driven as the loop drives it (`act`): `begin` sends the first netlink
//! request and never returns the kernel's answer itself; the answers are read when the socket
//! is readable (SPEC §7.3: no blocking netlink read), and a request never answered times out.
//!
//! Not here: the event loop (a small driver below stands in for it) and failover between two
//! daemons (the end-to-end tests).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration as StdDuration;

use crate::common::capture::{ArpSeen, Capture, parse_arp, parse_mac, parse_na};
use crate::common::{Lan, Netns, assert_soon};
use hapair::core::time::{Duration, Instant};
use hapair::drivers::ipaddr::{IpAction, IpError, IpErrorKind, IpOutcome, IpResource};
use hapair::drivers::netlink::{Applied, IfName, Netlink, NetlinkOp, REPLY_TIMEOUT_MS};
use nix::errno::Errno;

const VIP4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
const OTHER_MAC: &str = "02:00:00:00:00:99";
const PATIENCE: StdDuration = StdDuration::from_secs(5);
/// With nothing scheduled, this long without a frame means the announcements are over.
const QUIET: StdDuration = StdDuration::from_millis(500);

/// A node and a client, each with `lan0` on one bridge.
struct Site {
    node: Netns,
    client: Netns,
    lan: Lan,
    /// The bridge-side port of the node's `lan0`.
    node_port: String,
}

impl Site {
    fn new() -> Site {
        let mut lan = Lan::new();
        let node = Netns::new();
        let client = Netns::new();
        let node_port = lan.attach(&node, "lan0");
        lan.attach(&client, "lan0");
        node.add_addr("lan0", "192.0.2.1/24");
        client.add_addr("lan0", "192.0.2.10/24");
        node.add_addr("lan0", "2001:db8::1/64");
        client.add_addr("lan0", "2001:db8::10/64");
        Site { node, client, lan, node_port }
    }

    fn node_mac(&self) -> String {
        self.node.mac("lan0")
    }
}

fn lan0() -> IfName {
    IfName::new("lan0").unwrap_or_else(|| panic!("lan0 is a valid name"))
}

/// A resource on the node's `lan0`, its sockets opened inside the node's namespace.
fn resource_in(
    node: &Netns,
    addr: IpAddr,
    prefix: u8,
    count: u32,
    interval_ms: u64,
    refresh_ms: u64,
) -> IpResource {
    node.run(move || {
        let mut ip = IpResource::new(
            addr,
            prefix,
            lan0(),
            count,
            Duration::from_millis(interval_ms),
            Duration::from_millis(refresh_ms),
        );
        // The first call opens the netlink socket here, in the node's namespace.
        assert_eq!(ip.is_configured(), Ok(false));
        ip
    })
}

/// Runs `action` to its end as the event loop does: `begin` sends the first request (and
/// must not hand back the kernel's answer: that comes on a later pass); then, each time the
/// netlink socket is readable, `poll_action` takes what is there, until the result.
fn act(ip: &mut IpResource, now: Instant, action: IpAction) -> Result<IpOutcome, IpError> {
    let early = ip.begin(now, action);
    assert!(early.is_none(), "{action:?}: a result inside begin: {early:?}");
    for _ in 0..100 {
        let fd = ip.fd().unwrap_or_else(|| panic!("{action:?} runs without a socket to poll"));
        let mut pfd = nix::libc::pollfd { fd, events: nix::libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd for the duration of the call.
        unsafe { nix::libc::poll(&mut pfd, 1, 100) };
        if let Some(result) = ip.poll_action(now) {
            assert!(!ip.is_running() && ip.fd().is_none(), "over, but still polled");
            return result;
        }
    }
    panic!("{action:?}: no answer in 10 s");
}

/// The resource's actions, each driven to its end by `act`.
trait Driven {
    fn start(&mut self, now: Instant) -> Result<(), IpError>;
    fn stop(&mut self) -> Result<(), IpError>;
    fn monitor(&mut self) -> Result<IpOutcome, IpError>;
    fn is_configured(&mut self) -> Result<bool, IpError>;
}

impl Driven for IpResource {
    fn start(&mut self, now: Instant) -> Result<(), IpError> {
        act(self, now, IpAction::Start).map(|_| ())
    }
    fn stop(&mut self) -> Result<(), IpError> {
        act(self, Instant::ZERO, IpAction::Stop).map(|_| ())
    }
    fn monitor(&mut self) -> Result<IpOutcome, IpError> {
        act(self, Instant::ZERO, IpAction::Monitor)
    }
    fn is_configured(&mut self) -> Result<bool, IpError> {
        act(self, Instant::ZERO, IpAction::Monitor).map(|o| o == IpOutcome::Ok)
    }
}

/// Stands in for the event loop: the real clock as a `hapair` Instant.
struct Clock(std::time::Instant);

impl Clock {
    fn new() -> Clock {
        #[allow(clippy::disallowed_methods)] // tests may read the clock
        Clock(std::time::Instant::now())
    }

    fn now(&self) -> Instant {
        Instant::from_millis(self.0.elapsed().as_millis() as u64)
    }
}

/// Runs the resource's schedule like the loop would, feeding every captured frame to
/// `frame`, until `done` returns true (true) or nothing is scheduled and nothing arrives for
/// `QUIET` (false).
fn drive(
    ip: &mut IpResource,
    clock: &Clock,
    cap: &Capture,
    mut frame: impl FnMut(&[u8]),
    mut done: impl FnMut() -> bool,
) -> bool {
    loop {
        if done() {
            return true;
        }
        let now = clock.now();
        ip.poll(now).unwrap_or_else(|e| panic!("poll: {e}"));
        let wait = match ip.next_deadline() {
            Some(at) => StdDuration::from_millis(at.saturating_since(now).total_millis()),
            None => QUIET,
        };
        match cap.next(wait.min(QUIET)) {
            Some(f) => frame(&f),
            None if ip.next_deadline().is_none() => return done(),
            None => {}
        }
    }
}

fn garps_for(vip: Ipv4Addr) -> impl Fn(&[u8]) -> Option<ArpSeen> {
    move |f| parse_arp(f).filter(|a| a.spa == vip && a.tpa == vip)
}

#[test]
fn start_adds_the_address_and_both_garp_forms_reach_the_client() {
    let site = Site::new();
    let node_mac = parse_mac(&site.node_mac());
    site.client.set_neigh_stale("lan0", "192.0.2.100", OTHER_MAC);
    let cap = Capture::open(&site.client, "lan0");
    let mut ip = resource_in(&site.node, IpAddr::V4(VIP4), 24, 3, 50, 0);
    let clock = Clock::new();
    #[allow(clippy::disallowed_methods)] // a figure for the report, never asserted
    let t0 = std::time::Instant::now();
    ip.start(clock.now()).unwrap_or_else(|e| panic!("start: {e}"));
    eprintln!("figure: IpResource::start (add address + first garp round) {:?}", t0.elapsed());
    assert!(site.node.has_addr("lan0", "192.0.2.100"));

    let mut seen = Vec::new();
    let pick = garps_for(VIP4);
    drive(&mut ip, &clock, &cap, |f| seen.extend(pick(f)), || false);
    let requests: Vec<_> = seen.iter().filter(|a| a.op == 1).collect();
    let replies: Vec<_> = seen.iter().filter(|a| a.op == 2).collect();
    assert_eq!((requests.len(), replies.len()), (3, 3), "garp count is 3 rounds: {seen:?}");
    for a in &seen {
        assert_eq!(Some(a.sha), node_mac);
        assert_eq!(a.eth_dst, [0xff; 6]);
    }
    assert!(requests.iter().all(|a| a.tha == [0; 6]));
    assert!(replies.iter().all(|a| Some(a.tha) == node_mac));
    assert_eq!(ip.stats().rounds_sent, 3);

    // The client's stale entry moved to the node without the client asking.
    let (lladdr, _) = site.client.neigh("lan0", "192.0.2.100").unwrap_or_default();
    assert_eq!(parse_mac(&lladdr), node_mac, "client neighbour entry follows the garp");
    assert!(site.client.ping_once("192.0.2.100"), "client reaches the VIP");

    ip.stop().unwrap_or_else(|e| panic!("stop: {e}"));
    assert!(!site.node.has_addr("lan0", "192.0.2.100"));
    assert_eq!(ip.next_deadline(), None);
}

#[test]
fn garp_refresh_keeps_announcing_while_active() {
    let site = Site::new();
    let cap = Capture::open(&site.client, "lan0");
    let mut ip = resource_in(&site.node, IpAddr::V4(VIP4), 24, 1, 10, 30);
    let clock = Clock::new();
    ip.start(clock.now()).unwrap_or_else(|e| panic!("start: {e}"));
    let pick = garps_for(VIP4);
    let requests = std::cell::Cell::new(0);
    let count =
        |f: &[u8]| requests.set(requests.get() + pick(f).filter(|a| a.op == 1).map_or(0, |_| 1));
    let enough = drive(&mut ip, &clock, &cap, count, || requests.get() >= 4);
    let n = requests.get();
    assert!(enough, "only {n} requests with garp 1 and garp_refresh 30ms");
    ip.stop().unwrap_or_else(|e| panic!("stop: {e}"));
    assert_eq!(ip.next_deadline(), None, "no announcements once stopped");
}

#[test]
fn monitor_fails_when_the_address_goes_or_the_link_drops() {
    let site = Site::new();
    let mut ip = resource_in(&site.node, IpAddr::V4(VIP4), 24, 0, 200, 0);
    let clock = Clock::new();
    ip.start(clock.now()).unwrap_or_else(|e| panic!("start: {e}"));
    assert_eq!(ip.monitor(), Ok(IpOutcome::Ok));

    site.node.ip(&["addr", "del", "192.0.2.100/24", "dev", "lan0"]);
    assert_eq!(ip.monitor(), Ok(IpOutcome::NotRunning), "the address went");

    ip.start(clock.now()).unwrap_or_else(|e| panic!("restart: {e}"));
    assert_eq!(ip.monitor(), Ok(IpOutcome::Ok));
    // Carrier lost: the switch port (bridge-side veth end) goes down.
    site.lan.ns.ip(&["link", "set", &site.node_port, "down"]);
    assert_soon(PATIENCE, "monitor to see carrier loss", || {
        ip.monitor().map_err(|e| e.kind) == Err(IpErrorKind::LinkDown)
    });
    site.lan.ns.ip(&["link", "set", &site.node_port, "up"]);
    assert_soon(PATIENCE, "monitor to recover", || ip.monitor() == Ok(IpOutcome::Ok));
    // Administratively down.
    site.node.ip(&["link", "set", "lan0", "down"]);
    assert_eq!(ip.monitor().map_err(|e| e.kind), Err(IpErrorKind::LinkDown));
    ip.stop().unwrap_or_else(|e| panic!("stop: {e}"));
}

#[test]
fn stop_removes_the_address_and_the_probe_sees_it() {
    let site = Site::new();
    let mut ip = resource_in(&site.node, IpAddr::V4(VIP4), 24, 1, 200, 0);
    let mut probe = resource_in(&site.node, IpAddr::V4(VIP4), 24, 1, 200, 0);
    ip.start(Instant::ZERO).unwrap_or_else(|e| panic!("start: {e}"));
    assert!(ip.is_active());
    assert_eq!(probe.is_configured(), Ok(true), "a second daemon would adopt it");
    // Starting over an address that is already there is fine (adoption).
    probe.start(Instant::ZERO).unwrap_or_else(|e| panic!("adopt: {e}"));
    ip.stop().unwrap_or_else(|e| panic!("stop: {e}"));
    assert!(!ip.is_active());
    assert_eq!(probe.is_configured(), Ok(false));
    assert!(!site.node.has_addr("lan0", "192.0.2.100"));
    assert_eq!(probe.stop(), Ok(()), "already gone is not an error");
}

#[test]
fn ipv6_vip_is_usable_at_once_and_its_na_moves_the_client() {
    let site = Site::new();
    let node_mac = parse_mac(&site.node_mac());
    // The client must know the node's LAN address first so that the NA is not its first
    // contact with the link (Linux only updates existing entries from unsolicited NAs).
    site.client.set_neigh_stale("lan0", "2001:db8::100", OTHER_MAC);
    let cap = Capture::open(&site.client, "lan0");
    let mut ip = resource_in(&site.node, IpAddr::V6(VIP6), 64, 2, 50, 0);
    let clock = Clock::new();
    ip.start(clock.now()).unwrap_or_else(|e| panic!("start: {e}"));

    let out = site.node.ip(&["-j", "-6", "addr", "show", "dev", "lan0"]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    let infos = json[0]["addr_info"].as_array().cloned().unwrap_or_default();
    let vip = infos.iter().find(|i| i["local"] == "2001:db8::100");
    let vip = vip.unwrap_or_else(|| panic!("VIP not on lan0: {out}"));
    assert!(vip.get("tentative").is_none(), "NODAD: usable at once: {vip}");

    let mut seen = Vec::new();
    drive(
        &mut ip,
        &clock,
        &cap,
        |f| seen.extend(parse_na(f).filter(|n| n.target == VIP6)),
        || false,
    );
    assert_eq!(seen.len(), 2, "garp 2 gives two NAs: {seen:?}");
    for na in &seen {
        assert!(na.checksum_ok, "ICMPv6 checksum");
        assert_eq!(na.hop_limit, 255);
        assert_eq!(na.flags, 0b001, "override set, router and solicited clear");
        assert_eq!(na.dst, "ff02::1".parse::<Ipv6Addr>().unwrap_or(Ipv6Addr::UNSPECIFIED));
        assert_eq!(na.eth_dst, [0x33, 0x33, 0, 0, 0, 1]);
        assert_eq!(na.lladdr, node_mac);
    }
    let (lladdr, _) = site.client.neigh("lan0", "2001:db8::100").unwrap_or_default();
    assert_eq!(parse_mac(&lladdr), node_mac, "client neighbour entry follows the NA");
    assert_soon(PATIENCE, "client to ping the IPv6 VIP", || site.client.ping_once("2001:db8::100"));
    ip.stop().unwrap_or_else(|e| panic!("stop: {e}"));
    assert!(!site.node.has_addr("lan0", "2001:db8::100"));
}

#[test]
fn a_missing_interface_is_named_in_the_error() {
    let node = Netns::new();
    let missing = IfName::new("nosuch0").unwrap_or_else(|| panic!("valid name"));
    let (start, configured, monitor, stop) = node.run(move || {
        let addr = IpAddr::V4(VIP4);
        let mut ip =
            IpResource::new(addr, 24, missing, 5, Duration::from_millis(200), Duration::ZERO);
        (ip.start(Instant::ZERO), ip.is_configured(), ip.monitor(), ip.stop())
    });
    let err = start.err().unwrap_or_else(|| panic!("start on a missing interface succeeded"));
    assert_eq!(err.kind, IpErrorKind::NoSuchInterface);
    assert!(err.to_string().contains("nosuch0"), "{err}");
    assert!(err.to_string().contains("192.0.2.100/24"), "{err}");
    assert_eq!(configured, Ok(false));
    assert_eq!(monitor, Ok(IpOutcome::NotRunning), "no interface: nothing runs");
    assert_eq!(stop, Ok(()));
}

#[test]
fn netlink_changes_report_already_so_and_links_report_their_mac() {
    let site = Site::new();
    let mac = parse_mac(&site.node_mac());
    let addr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 77));
    let mut nl = site.node.run(move || {
        let mut nl = Netlink::open().unwrap_or_else(|e| panic!("{e}"));
        let link = nl.link(lan0()).unwrap_or_else(|e| panic!("{e}"));
        assert!(link.is_up());
        assert_eq!(link.mac, mac);
        assert_eq!(nl.add_addr(link.iface, addr, 24), Ok(Applied::Done));
        nl
    });
    // The socket stays in the node's namespace after the thread is gone.
    let link = nl.link(lan0()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(nl.add_addr(link.iface, addr, 24), Ok(Applied::AlreadySo));
    assert_eq!(nl.has_addr(link.iface, addr), Ok(true));
    let out = site.node.ip(&["-j", "-4", "addr", "show", "dev", "lan0"]);
    assert!(
        out.contains(r#""local":"192.0.2.77","prefixlen":24,"broadcast":"192.0.2.255""#),
        "{out}"
    );
    assert_eq!(nl.del_addr(link.iface, addr, 24), Ok(Applied::Done));
    assert_eq!(nl.del_addr(link.iface, addr, 24), Ok(Applied::AlreadySo));
    assert_eq!(nl.has_addr(link.iface, addr), Ok(false));
    let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x77));
    assert_eq!(nl.add_addr(link.iface, v6, 64), Ok(Applied::Done));
    assert_eq!(nl.has_addr(link.iface, v6), Ok(true));
    assert_eq!(nl.del_addr(link.iface, v6, 64), Ok(Applied::Done));
    let gone = nl.link(IfName::new("nosuch0").unwrap_or(lan0())).map_err(|e| e.errno);
    assert_eq!(gone, Err(nix::errno::Errno::ENODEV));
}

/// SPEC §7.3: an `ip` action is a sequence of netlink requests whose answers are read on
/// later passes: after `begin` the address is not there yet (only the interface lookup went
/// out); it is once the answers were read. A request whose answer never comes (here: read
/// away behind the resource's back) fails the action with a clear timeout, and until its
/// deadline `poll_action` returns at once.
#[test]
fn an_action_goes_on_as_answers_are_read_and_a_silent_kernel_times_out() {
    let site = Site::new();
    let mut ip = resource_in(&site.node, IpAddr::V4(VIP4), 24, 0, 200, 0);
    let t0 = Instant::from_millis(1000);
    assert_eq!(ip.begin(t0, IpAction::Start), None);
    assert!(ip.is_running() && ip.fd().is_some());
    assert!(!site.node.has_addr("lan0", "192.0.2.100"), "nothing added before an answer");
    let mut steps = 0;
    let result = loop {
        steps += 1;
        let fd = ip.fd().unwrap_or_else(|| panic!("running without a socket"));
        let mut pfd = nix::libc::pollfd { fd, events: nix::libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd for the duration of the call.
        unsafe { nix::libc::poll(&mut pfd, 1, 1000) };
        if let Some(result) = ip.poll_action(t0) {
            break result;
        }
        assert!(steps < 10, "start still running after {steps} reads");
    };
    assert_eq!(result, Ok(IpOutcome::Ok));
    assert!(steps >= 2, "lookup, then add: {steps} reads");
    assert!(site.node.has_addr("lan0", "192.0.2.100"));

    // The kernel's answer to the lookup is taken away: no answer ever reaches the resource.
    assert_eq!(ip.begin(t0, IpAction::Monitor), None);
    let fd = ip.fd().unwrap_or_else(|| panic!("monitor runs without a socket"));
    let mut buf = [0u8; 16 * 1024];
    let dontwait = nix::sys::socket::MsgFlags::MSG_DONTWAIT;
    let mut taken = 0;
    // The link, then the acknowledgement: every datagram of the answer.
    while nix::sys::socket::recv(fd, &mut buf, dontwait).is_ok_and(|n| n > 0) {
        taken += 1;
    }
    assert!(taken >= 1, "the answer was there at once");
    let timeout = hapair::core::time::Duration::from_millis(REPLY_TIMEOUT_MS as u64);
    assert_eq!(ip.next_deadline(), Some(t0 + timeout), "the loop wakes to give up");
    assert_eq!(ip.poll_action(t0), None, "no answer: no wait either");
    assert_eq!(ip.poll_action(t0 + timeout - Duration::from_millis(1)), None);
    let err = ip.poll_action(t0 + timeout).unwrap_or_else(|| panic!("no timeout"));
    let err = err.expect_err("a silent kernel is a failed monitor");
    assert_eq!(err.kind, IpErrorKind::Netlink(NetlinkOp::Link, Errno::ETIMEDOUT));
    assert_eq!(
        err.to_string(),
        "ip 192.0.2.100/24 dev lan0: look up link: Connection timed out",
        "names the address, the interface and the request"
    );
    assert!(!ip.is_running() && ip.fd().is_none());
    // The late answer (if the kernel sends one) is skipped by the next action.
    assert_eq!(ip.monitor(), Ok(IpOutcome::Ok));
    ip.stop().unwrap_or_else(|e| panic!("stop: {e}"));
}
