//! Property checks of the drivers' decoders of outside input, for the fuzz targets
//! (tests/fuzz/, `cfg(fuzzing)`) and for the replay of their committed corpus in the test
//! build (`tests/pure/fuzz_corpus.rs`, `sim` feature); never part of the shipped binary. Each takes
//! arbitrary bytes as what the kernel, sysfs or an agent could hand the driver, checks the
//! decoder's promises and returns true when the input reached its deepest path (a reply
//! counted, an answer finished, an array or a sample judged, meta-data read).
//!
//! - `ping_reply`: an ICMP message as a datagram socket gives it, and as a raw socket gives
//!   it (behind an IP header); and the same bytes as an ICMPv6 message, which both kinds of
//!   ICMPv6 socket give without a header. A reply counts only when it is our echo of its
//!   family, byte for byte (the checksum aside), with our cookie, and the echo we would send
//!   for it decodes the same; no message counts in both families.
//! - `netlink_reply`: one datagram of rtnetlink answers to each kind of request (the first
//!   byte picks it). An answer matches its request; an error names it; the same messages one
//!   per datagram, as a long dump comes, give the same answer; and the kernel's own datagram
//!   for that answer (`netlink_answer`) decodes to it again.
//! - `mdstat`: /proc/mdstat. Every array gets a state; an unhealthy array gives one reason.
//! - `hwmon_value`: an input file's name, then sysfs files (limits, alarm, readings), as
//!   NUL-separated parts. Names and integers read back the same, and any i64 written as
//!   sysfs writes it reads back whole; the judge never panics, and an input out of its
//!   limits for the debounce count is bad.
//! - `ocf_metadata`: an agent's `meta-data` output. What parses, written back as XML, parses
//!   to the same meta-data.
//!
//! No I/O, no state between calls.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use nix::errno::Errno;

use super::agents::{Action, ActionMeta, MetaData};
use super::hwmon::{Reading, parse_input_file, parse_int};
use super::mdstat::{ArrayState, MDSTAT_LEN_MAX, MdStat, Sync};
use super::netlink::{
    Applied, IFA_ADDRESS, IFA_LOCAL, IFF_LOWER_UP, IFF_UP, IFLA_ADDRESS, IFLA_IFNAME,
    IFLA_OPERSTATE, IfName, Iface, NLMSG_DONE, NLMSG_ERROR, NetlinkError, Pending, RTM_NEWADDR,
    RTM_NEWLINK, Reply, Request, take_datagram,
};
use super::ping::{ECHO_LEN, Icmp, decode_reply, encode_echo, field, icmp_message};
use crate::core::time::{Duration, Instant};
use crate::health::Reasons;
use crate::health::sensor::{
    Breach, Limits, SensorJudge, SensorKind, SensorPolicy, Verdict, breach_of,
};

/// The cookie of the ping replies in the corpus ("hapair.f").
pub const PING_COOKIE: u64 = 0x6861_7061_6972_2e66;
/// The echo id of the raw-socket replies in the corpus.
pub const PING_IDENT: u16 = 0x6870;
/// The sequence number of the netlink request the corpus answers.
pub const NETLINK_SEQ: u32 = 7;
/// The interface of the netlink requests (`lan9`, index 9).
pub const NETLINK_INDEX: u32 = 9;

/// Checks `data` as a ping reply on each socket the driver may have: ICMP datagram and raw,
/// ICMPv6 datagram and raw. True when it counted on one.
pub fn ping_reply(data: &[u8]) -> bool {
    let mut counted = [false; 2];
    for (icmp, slot) in [Icmp::V4, Icmp::V6].into_iter().zip(&mut counted) {
        for (raw, ident) in [(false, None), (true, Some(PING_IDENT))] {
            let Some(message) = icmp_message(data, icmp, raw) else { continue };
            if let Some(sent) = decode_reply(message, icmp, ident, PING_COOKIE) {
                our_echo_answered(message, icmp, ident, sent);
                *slot = true;
            }
        }
    }
    // The two families' reply types differ, and a raw ICMP socket's header is no message of
    // our length: one input never counts as both.
    assert!(!(counted[0] && counted[1]), "a reply counted as ICMP and as ICMPv6");
    counted[0] || counted[1]
}

/// `message`, which counted as an `icmp` reply sent at `sent`, is the echo we send with its id
/// and sequence number, answered; that echo decodes the same, and with another cookie not at
/// all.
fn our_echo_answered(message: &[u8], icmp: Icmp, ident: Option<u16>, sent: Instant) {
    assert_eq!(message.len(), ECHO_LEN, "a reply of another length counted");
    let word = |at: usize| u16::from_be_bytes([message[at], message[at + 1]]);
    let id = word(field::IDENT.start);
    assert!(ident.is_none_or(|ours| ours == id), "another id counted on a raw socket");
    let mut echo = [0u8; ECHO_LEN];
    encode_echo(&mut echo, icmp, id, word(field::SEQ.start), PING_COOKIE, sent);
    echo[field::TYPE] = icmp.echo_reply();
    // The checksum is not the decoder's to judge: the kernel checks it before a datagram
    // socket sees the reply, and the cookie, not the checksum, is what a forger lacks.
    echo[field::CHECKSUM].copy_from_slice(&message[field::CHECKSUM]);
    assert_eq!(&echo[..], message, "a reply that is not our echo counted");
    assert_eq!(decode_reply(&echo, icmp, ident, PING_COOKIE), Some(sent));
    echo[field::COOKIE.start] ^= 1;
    assert_eq!(decode_reply(&echo, icmp, ident, PING_COOKIE), None, "another cookie counted");
}

/// Checks `data[1..]` as one datagram of answers to the request `data[0]` picks. True when
/// the datagram finished the answer.
pub fn netlink_reply(data: &[u8]) -> bool {
    let Some((&pick, datagram)) = data.split_first() else {
        return false;
    };
    let req = netlink_request(pick);
    let fresh = || Pending { req, seq: NETLINK_SEQ, link: None, found: false };
    let whole = take_datagram(&mut fresh(), datagram);
    let mut pending = fresh();
    let split = messages(datagram).find_map(|m| take_datagram(&mut pending, m));
    assert_eq!(whole, split, "one datagram and one per message answer differently");
    let Some(reply) = whole else {
        return false;
    };
    answers(req, reply);
    let again = netlink_answer(req, &reply);
    assert_eq!(take_datagram(&mut fresh(), &again), Some(reply), "decode -> encode -> decode");
    true
}

/// The datagram the kernel sends to give `reply` to `req` (sequence `NETLINK_SEQ`): the
/// link and its ACK, the matching address and the dump's end, or the ACK or error.
pub fn netlink_answer(req: Request, reply: &Result<Reply, NetlinkError>) -> Vec<u8> {
    let seq = NETLINK_SEQ;
    let error = |errno: i32| nl_error(seq, errno);
    let done = nlmsg(NLMSG_DONE, seq, &0u32.to_ne_bytes());
    match (req, reply) {
        // An errno nix does not know decodes as `UnknownErrno` (0): send one it does not know.
        (_, Err(e)) if e.errno == Errno::UnknownErrno => error(4095),
        (_, Err(e)) => error(e.errno as i32),
        (Request::Link(name), Ok(Reply::Link(link))) => {
            let flags = if link.admin_up { IFF_UP } else { 0 }
                | if link.lower_up { IFF_LOWER_UP } else { 0 };
            let mut body = vec![0, 0, 1, 0]; // family, pad, type (ARPHRD_ETHER)
            body.extend_from_slice(&link.iface.index.to_ne_bytes());
            body.extend_from_slice(&flags.to_ne_bytes());
            body.extend_from_slice(&0u32.to_ne_bytes()); // change mask
            body.extend(rtattr(IFLA_IFNAME, &[name.as_str().as_bytes(), &[0]].concat()));
            body.extend(rtattr(IFLA_OPERSTATE, &[link.oper_state]));
            if let Some(mac) = link.mac {
                body.extend(rtattr(IFLA_ADDRESS, &mac));
            }
            [nlmsg(RTM_NEWLINK, seq, &body), error(0)].concat()
        }
        (Request::HasAddr { iface, addr }, Ok(Reply::HasAddr(true))) => {
            let (family, attr, octets) = match addr {
                IpAddr::V4(a) => (libc::AF_INET, IFA_LOCAL, a.octets().to_vec()),
                IpAddr::V6(a) => (libc::AF_INET6, IFA_ADDRESS, a.octets().to_vec()),
            };
            let mut body = vec![family as u8, 0, 0, 0]; // family, prefix, flags, scope
            body.extend_from_slice(&iface.index.to_ne_bytes());
            body.extend(rtattr(attr, &octets));
            [nlmsg(RTM_NEWADDR, seq, &body), done].concat()
        }
        (Request::HasAddr { .. }, Ok(Reply::HasAddr(false))) => done,
        (Request::AddAddr { .. }, Ok(Reply::Applied(Applied::AlreadySo))) => error(libc::EEXIST),
        (Request::DelAddr { .. }, Ok(Reply::Applied(Applied::AlreadySo))) => {
            error(libc::EADDRNOTAVAIL)
        }
        (_, Ok(_)) => error(0),
    }
}

/// One netlink message: header (length, type, flags, sequence, port id), body, padding.
pub fn nlmsg(kind: u16, seq: u32, body: &[u8]) -> Vec<u8> {
    let len = 16 + body.len();
    let mut m = Vec::with_capacity(len + 3);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(&0u16.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(body);
    m.resize((len + 3) & !3, 0);
    m
}

/// One route attribute, padded.
pub fn rtattr(kind: u16, data: &[u8]) -> Vec<u8> {
    let len = 4 + data.len();
    let mut a = Vec::with_capacity(len + 3);
    a.extend_from_slice(&(len as u16).to_ne_bytes());
    a.extend_from_slice(&kind.to_ne_bytes());
    a.extend_from_slice(data);
    a.resize((len + 3) & !3, 0);
    a
}

/// NLMSG_ERROR with `errno` (0: the ACK), echoing a request header.
pub fn nl_error(seq: u32, errno: i32) -> Vec<u8> {
    let mut body = errno.wrapping_neg().to_ne_bytes().to_vec();
    body.extend_from_slice(&nlmsg(0, seq, &[])[..16]);
    nlmsg(NLMSG_ERROR, seq, &body)
}

/// The request `pick` names: a link lookup, or an address change or lookup, IPv4 or IPv6.
pub fn netlink_request(pick: u8) -> Request {
    // INVARIANT: a constant name of 4 bytes.
    let name = IfName::new("lan9").expect("lan9 is an interface name");
    let iface = Iface { name, index: NETLINK_INDEX };
    let v4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100));
    let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100));
    match pick % 7 {
        0 => Request::Link(name),
        1 => Request::AddAddr { iface, addr: v4, prefix: 24 },
        2 => Request::AddAddr { iface, addr: v6, prefix: 64 },
        3 => Request::DelAddr { iface, addr: v4, prefix: 24 },
        4 => Request::DelAddr { iface, addr: v6, prefix: 64 },
        5 => Request::HasAddr { iface, addr: v4 },
        _ => Request::HasAddr { iface, addr: v6 },
    }
}

/// `reply` is of the kind `req` asks for, or an error that names `req`.
fn answers(req: Request, reply: Result<Reply, NetlinkError>) {
    match (req, reply) {
        (Request::Link(name), Ok(Reply::Link(link))) => {
            assert_eq!(link.iface.name, name, "the link of another name");
            let _ = link.is_up();
        }
        (Request::AddAddr { .. } | Request::DelAddr { .. }, Ok(Reply::Applied(_))) => {}
        (Request::HasAddr { .. }, Ok(Reply::HasAddr(_))) => {}
        (req, Err(e)) => {
            assert_eq!(e, req.error(e.errno), "the error does not name its request");
            assert!(!e.to_string().contains('\n'), "an error of more than one line: {e}");
        }
        (req, Ok(reply)) => panic!("{reply:?} answers {req:?}"),
    }
}

/// Cuts a datagram where the reader steps from one message to the next (a header's length,
/// 4-aligned); from a header that does not fit (or is shorter than a header) the rest is one.
fn messages(mut datagram: &[u8]) -> impl Iterator<Item = &[u8]> {
    const HEADER_LEN: usize = 16;
    std::iter::from_fn(move || {
        if datagram.is_empty() {
            return None;
        }
        let len = match datagram.get(..4) {
            Some(&[a, b, c, d]) => u32::from_ne_bytes([a, b, c, d]) as usize,
            _ => 0,
        };
        let end = if (HEADER_LEN..=datagram.len()).contains(&len) {
            ((len + 3) & !3).min(datagram.len())
        } else {
            datagram.len()
        };
        let (message, rest) = datagram.split_at(end);
        datagram = rest;
        Some(message)
    })
}

/// Checks `data` as /proc/mdstat (as much as the reader reads). True when it held an array.
pub fn mdstat(data: &[u8]) -> bool {
    let stat = MdStat::parse_bytes(&data[..data.len().min(MDSTAT_LEN_MAX)]);
    for a in &stat.arrays {
        assert!(a.state.is_some(), "{a:?} was not judged");
        assert_eq!(a.level.is_none(), a.state() == ArrayState::Inactive, "{a:?}");
        let marked = a.failed.max(a.spares).max(a.write_mostly).max(a.replacements);
        assert!(marked <= a.listed, "more members marked than listed: {a:?}");
        if let Some(Sync::Running { permille, .. }) = a.sync {
            assert!(permille <= 1000, "{a:?}");
        }
    }
    let mut reasons = Reasons::new();
    stat.reasons(&mut reasons);
    let unhealthy = stat.arrays.iter().filter(|a| a.is_unhealthy()).count();
    assert_eq!(reasons.len() + usize::from(reasons.dropped()), unhealthy);
    assert_eq!(stat.is_healthy(), unhealthy == 0);
    !stat.arrays.is_empty()
}

/// Checks `data` as NUL-separated parts: an input file's name (`temp1_input`), then the
/// contents of its `_min`, `_max`, `_crit`, `_max_hyst` and `_alarm` files (empty: no such
/// file), then successive contents of its `_input` file, each judged as the driver does.
/// True when a reading was judged.
pub fn hwmon_value(data: &[u8]) -> bool {
    let mut parts = data.split(|&b| b == 0);
    let name = parts.next().unwrap_or_default();
    let kind = match core::str::from_utf8(name).ok().and_then(parse_input_file) {
        Some((kind, n)) => {
            let again = format!("{}{n}_input", kind.prefix());
            assert_eq!(parse_input_file(&again), Some((kind, n)), "{again}");
            kind
        }
        None => SensorKind::Temperature,
    };
    // Every i64 as sysfs writes it reads back whole (the input's first bytes make one).
    let probe = data.get(..8).map_or(0, |b| i64::from_ne_bytes(b.try_into().unwrap_or([0; 8])));
    for value in [probe, i64::MIN, i64::MAX, -1] {
        assert_eq!(parse_int(format!("{value}\n").as_bytes()), Some(value), "{value}");
    }
    let mut file = || parts.next().and_then(sysfs_int);
    let limits = Limits { min: file(), max: file(), crit: file(), max_hyst: file() };
    let alarm = file().is_some_and(|a| a != 0);
    let policy = SensorPolicy::default();
    let mut judge = SensorJudge::new(kind);
    let (mut now, mut outs, mut judged) = (Instant::from_millis(1_000), 0u32, false);
    for reading in parts {
        now += Duration::from_secs(1);
        let Some(value) = sysfs_int(reading) else {
            // A failed read starts the count over (the state stays).
            judge.handle_read_error();
            outs = 0;
            continue;
        };
        let verdict = judge.handle_sample(&policy, &limits, now, value, alarm);
        outs = if breach_of(&limits, value, alarm).is_some() { outs + 1 } else { 0 };
        if outs >= u32::from(policy.debounce_reads) {
            assert!(matches!(verdict, Verdict::Bad(_)), "out {outs} times yet {verdict:?}");
        }
        describe(kind, verdict);
        judged = true;
    }
    judged
}

/// A sysfs integer as the driver reads it; what parses prints back to the same value.
fn sysfs_int(bytes: &[u8]) -> Option<i64> {
    let value = parse_int(bytes)?;
    assert_eq!(parse_int(value.to_string().as_bytes()), Some(value));
    Some(value)
}

/// Prints a verdict's limit as status and the reasons do.
fn describe(kind: SensorKind, verdict: Verdict) {
    if let Verdict::Bad(b) | Verdict::Predicted(b) = verdict {
        let limit = match b {
            Breach::Min(l) | Breach::Max(l) | Breach::Crit(l) => l,
            Breach::Alarm => 0,
        };
        assert!(!Reading(kind, limit).to_string().is_empty());
    }
}

/// Checks `data` as an agent's `meta-data` output. True when it is meta-data.
pub fn ocf_metadata(data: &[u8]) -> bool {
    let Ok(meta) = MetaData::parse_bytes(data) else {
        return false;
    };
    for action in
        [Action::Start, Action::Stop, Action::Monitor, Action::MetaData, Action::ValidateAll]
    {
        let _ = meta.action(action);
    }
    let xml = metadata_xml(&meta);
    assert_eq!(MetaData::parse(&xml).as_ref(), Ok(&meta), "parse -> write -> parse:\n{xml}");
    true
}

/// `meta` as the XML an agent prints.
fn metadata_xml(meta: &MetaData) -> String {
    let mut xml = format!(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">\n\
         <resource-agent name=\"{}\" version=\"1.0\">\n<parameters>\n",
        escape(&meta.agent)
    );
    for p in &meta.parameters {
        let (required, unique) = (u8::from(p.required), u8::from(p.unique));
        xml += &format!(
            "<parameter name=\"{}\" required=\"{required}\" unique=\"{unique}\">\n\
             <content type=\"string\"/>\n</parameter>\n",
            escape(&p.name)
        );
    }
    xml += "</parameters>\n<actions>\n";
    for a in &meta.actions {
        xml += &action_xml(a);
    }
    xml + "</actions>\n</resource-agent>\n"
}

fn action_xml(a: &ActionMeta) -> String {
    let mut xml = format!("<action name=\"{}\"", escape(&a.name));
    let ms = |d: Duration| d.total_millis();
    if let Some(t) = a.timeout {
        xml += &format!(" timeout=\"{}ms\"", ms(t));
    }
    if let Some(i) = a.interval {
        xml += &format!(" interval=\"{}ms\"", ms(i));
    }
    if let Some(d) = a.depth {
        xml += &format!(" depth=\"{d}\"");
    }
    xml + " />\n"
}

/// An attribute value with the five predefined entities.
fn escape(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}
