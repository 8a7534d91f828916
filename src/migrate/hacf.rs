//! Reads a heartbeat v1 `ha.cf` into the values hapair can use. It does not write the
//! configuration (`heartbeat` does) and it never fails: a directive it cannot use is recorded
//! in [`Findings`] with its line.
//!
//! What heartbeat means, as this reader takes it: one directive per line, `#` starts a
//! comment (anywhere on the line); durations are seconds with an optional `ms` suffix
//! (fractions of a second allowed); `node`, `bcast`, `serial` and `ping` take several values;
//! `baud` applies to the `serial` lines after it (heartbeat's default is 19200); `mcast` is
//! `mcast DEV GROUP PORT TTL LOOP`; `ucast DEV ADDR` lists the peer's address (each node's
//! file names the other). Booleans are on/off, yes/no, true/false, y/n, 1/0.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::{Findings, is_ifname, is_name};
use crate::config::quote;

/// heartbeat's serial speed when no `baud` line precedes a `serial` line.
pub const HEARTBEAT_BAUD: u32 = 19200;
/// heartbeat's and hapair's UDP port.
pub const DEFAULT_UDPPORT: u16 = 694;
/// Speeds hapair's serial driver accepts.
const BAUDS: [u32; 11] =
    [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600];

/// heartbeat's keepalive and deadtime when ha.cf gives none (its config.c).
pub const HEARTBEAT_KEEPALIVE_MS: u64 = 1_000;
pub const HEARTBEAT_DEADTIME_MS: u64 = 30_000;

/// What was read from ha.cf.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HaCf {
    pub nodes: Vec<String>,
    pub keepalive_ms: Option<u64>,
    pub warntime_ms: Option<u64>,
    pub deadtime_ms: Option<u64>,
    pub initdead_ms: Option<u64>,
    pub udpport: Option<u16>,
    /// `serial` and `bcast` lines as hapair writes them, in file order.
    pub media: Vec<String>,
    /// `mcast` lines: (line, dev, group, port, ttl).
    pub mcast: Vec<(usize, String, IpAddr, u16, u8)>,
    /// `ucast` addresses per interface, in file order, with the line of each.
    pub ucast: BTreeMap<String, Vec<(usize, IpAddr)>>,
    pub auto_failback: Option<bool>,
    pub watchdog: Option<String>,
    pub ping: Vec<IpAddr>,
    pub realtime: bool,
}

impl HaCf {
    /// The four timings heartbeat ran with, in ms: (keepalive, warntime, deadtime, initdead),
    /// each `true` when the file did not set it and heartbeat's rule gave it: warntime is
    /// half the deadtime; initdead is the deadtime above 10 s, else 12 s below 6 s, else twice
    /// the deadtime.
    pub fn timings(&self) -> [(u64, bool); 4] {
        let keepalive = self.keepalive_ms.unwrap_or(HEARTBEAT_KEEPALIVE_MS);
        let deadtime = self.deadtime_ms.unwrap_or(HEARTBEAT_DEADTIME_MS);
        let warntime = self.warntime_ms.filter(|w| *w > 0).unwrap_or(deadtime / 2);
        let initdead = self.initdead_ms.unwrap_or(if deadtime > 10_000 {
            deadtime
        } else if deadtime < 6_000 {
            12_000
        } else {
            2 * deadtime
        });
        [
            (keepalive, self.keepalive_ms.is_none()),
            (warntime, self.warntime_ms.is_none_or(|w| w == 0)),
            (deadtime, self.deadtime_ms.is_none()),
            (initdead, self.initdead_ms.is_none()),
        ]
    }
}

/// Reads `text` (the file ha.cf), recording what it cannot use in `found`.
pub fn parse(text: &str, found: &mut Findings) -> HaCf {
    let mut cf = HaCf::default();
    let mut baud = HEARTBEAT_BAUD;
    for (i, raw) in text.lines().enumerate() {
        let words = strip_comment(raw);
        let Some((name, args)) = words.split_first() else { continue };
        let at = format!("ha.cf:{}", i + 1);
        let what = words.join(" ");
        let name = name.to_ascii_lowercase();
        let r = match name.as_str() {
            "baud" => one(args).and_then(|w| set_baud(&mut baud, w)),
            "serial" => serial(&mut cf, args, baud),
            _ => directive(&mut cf, &name, args, i + 1, &at, found),
        };
        if let Err(why) = r {
            // stonith lines carry passwords: name them, never copy their arguments.
            let what = if name.starts_with("stonith") {
                format!("{name} (arguments not shown: they may hold passwords)")
            } else {
                what
            };
            found.skip(&at, &what, &why);
        }
    }
    cf
}

/// The words of a line before its comment (heartbeat cuts at the first `#`, even inside a
/// word).
fn strip_comment(line: &str) -> Vec<&str> {
    line.split('#').next().unwrap_or("").split_whitespace().collect()
}

/// Every other directive: `Err(why)` when it is not converted.
fn directive(
    cf: &mut HaCf,
    name: &str,
    args: &[&str],
    line: usize,
    at: &str,
    found: &mut Findings,
) -> Result<(), String> {
    match name {
        "node" => nodes(cf, args),
        "keepalive" => duration(args).map(|d| cf.keepalive_ms = Some(d)),
        "warntime" => duration(args).map(|d| cf.warntime_ms = Some(d)),
        "deadtime" => duration(args).map(|d| cf.deadtime_ms = Some(d)),
        "initdead" => duration(args).map(|d| cf.initdead_ms = Some(d)),
        "udpport" => port(one(args)?).map(|p| cf.udpport = Some(p)),
        "bcast" => bcast(cf, args),
        "mcast" => mcast(cf, args, line, found, at),
        "mcast6" => v6_only(args.get(1).copied(), "mcast6", "a group")
            .and_then(|()| mcast(cf, args, line, found, at)),
        "ucast" => ucast(cf, args, line),
        "auto_failback" => auto_failback(cf, one(args)?, found, at),
        "nice_failback" => boolean(one(args)?).map(|b| {
            cf.auto_failback = Some(!b);
            found.note(at, &format!("nice_failback {} is auto_failback {}", on(b), on(!b)));
        }),
        "watchdog" => {
            let dev = one(args)?;
            if !dev.starts_with('/') {
                return Err("the watchdog device must be an absolute path".into());
            }
            cf.watchdog = Some(dev.to_string());
            Ok(())
        }
        "ping" => ping(cf, args),
        "ping6" => args
            .iter()
            .try_for_each(|a| v6_only(Some(a), "ping6", "an address"))
            .and_then(|()| ping(cf, args)),
        "ping_group" => ping_group(cf, args, found, at),
        "realtime" => boolean(one(args)?).map(|b| cf.realtime = b),
        _ => Err(unsupported(name)),
    }
}

/// Why a directive hapair has no counterpart for is left out.
fn unsupported(name: &str) -> String {
    match name {
        "logfile" | "debugfile" | "logfacility" | "use_logd" | "conn_logd_time" | "debug" => {
            "hapair logs to stderr; its init script or systemd unit sends that to syslog".into()
        }
        "stonith" | "stonith_host" => {
            "hapair fences with `fence CMD ARGS...` (a command that makes the peer safe) or \
             `fence watchdog`"
                .into()
        }
        "respawn" => {
            "hapair supervises no helper processes: use a resource or the init system".into()
        }
        "crm" => "the v2 cluster resource manager is not read; this converts haresources".into(),
        "deadping" => "hapair's ping nodes use their own timing".into(),
        "apiauth" => "hapair has no client API; its control socket is root's only".into(),
        _ => "no hapair equivalent".into(),
    }
}

fn on(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

/// The single argument of a directive.
fn one<'a>(args: &[&'a str]) -> Result<&'a str, String> {
    match args {
        [w] => Ok(w),
        _ => Err(format!("expected one value, found {}", args.len())),
    }
}

/// A heartbeat duration in ms: seconds (fractions allowed) or `Nms`.
pub fn parse_duration(w: &str) -> Option<u64> {
    if let Some(ms) = w.strip_suffix("ms") {
        return ms.parse().ok();
    }
    let secs = w.strip_suffix('s').unwrap_or(w);
    let (int, frac) = secs.split_once('.').unwrap_or((secs, ""));
    if int.is_empty() && frac.is_empty() || frac.len() > 3 {
        return None;
    }
    let int: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let frac_ms: u64 = if frac.is_empty() { 0 } else { format!("{frac:0<3}").parse().ok()? };
    int.checked_mul(1000)?.checked_add(frac_ms)
}

fn duration(args: &[&str]) -> Result<u64, String> {
    let w = one(args)?;
    parse_duration(w).ok_or_else(|| format!("bad duration \"{w}\" (seconds, or Nms)"))
}

fn boolean(w: &str) -> Result<bool, String> {
    match w.to_ascii_lowercase().as_str() {
        "on" | "yes" | "true" | "y" | "1" => Ok(true),
        "off" | "no" | "false" | "n" | "0" => Ok(false),
        _ => Err(format!("\"{w}\" is not a boolean")),
    }
}

fn port(w: &str) -> Result<u16, String> {
    match w.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("bad port \"{w}\"")),
    }
}

fn set_baud(baud: &mut u32, w: &str) -> Result<(), String> {
    match w.parse::<u32>() {
        Ok(b) if BAUDS.contains(&b) => {
            *baud = b;
            Ok(())
        }
        _ => Err(format!(
            "baud \"{w}\" is not a speed hapair supports; later serial lines \
                          keep {baud}"
        )),
    }
}

fn nodes(cf: &mut HaCf, args: &[&str]) -> Result<(), String> {
    for n in args {
        if !is_name(n) {
            return Err(format!("node name \"{n}\" is not a valid hapair name"));
        }
        if cf.nodes.len() == 2 {
            return Err(format!("node {n}: hapair runs a pair, this is a third node"));
        }
        if !cf.nodes.iter().any(|have| have == n) {
            cf.nodes.push((*n).to_string());
        }
    }
    Ok(())
}

fn serial(cf: &mut HaCf, args: &[&str], baud: u32) -> Result<(), String> {
    if args.is_empty() || args.iter().any(|d| !d.starts_with('/')) {
        return Err("serial devices must be absolute paths".into());
    }
    for dev in args {
        cf.media.push(format!("serial {} baud {baud}", quote(dev)));
    }
    Ok(())
}

fn bcast(cf: &mut HaCf, args: &[&str]) -> Result<(), String> {
    if args.is_empty() || !args.iter().all(|i| is_ifname(i)) {
        return Err("expected interface names".into());
    }
    for iface in args {
        cf.media.push(format!("bcast {iface}"));
    }
    Ok(())
}

fn mcast(
    cf: &mut HaCf,
    args: &[&str],
    line: usize,
    found: &mut Findings,
    at: &str,
) -> Result<(), String> {
    let [dev, group, port_w, ttl, looped] = args else {
        return Err("expected mcast DEV GROUP PORT TTL LOOP".into());
    };
    if !is_ifname(dev) {
        return Err(format!("bad interface \"{dev}\""));
    }
    let group: IpAddr = match group.parse() {
        Ok(g @ IpAddr::V4(v4)) if v4.is_multicast() => g,
        Ok(g @ IpAddr::V6(v6)) if v6.is_multicast() => g,
        _ => return Err(format!("\"{group}\" is not a multicast group")),
    };
    let ttl = match ttl.parse::<u8>() {
        Ok(t) if t > 0 => t,
        _ => return Err(format!("ttl \"{ttl}\" is not 1 to 255")),
    };
    if *looped != "0" {
        found.note(at, &format!("mcast loop {looped} is dropped: hapair ignores its own frames"));
    }
    cf.mcast.push((line, (*dev).to_string(), group, port(port_w)?, ttl));
    Ok(())
}

/// heartbeat's `mcast6 DEV GROUP PORT TTL LOOP` and `ping6 ADDR` are its `mcast` and `ping`
/// over IPv6, which hapair's own `mcast` and `ping` take (SPEC §7.7): the one difference is
/// that an IPv4 word is refused (anything else is left to `mcast` and `ping` to judge).
fn v6_only(word: Option<&str>, name: &str, what: &str) -> Result<(), String> {
    match word.map(str::parse::<IpAddr>) {
        Some(Ok(IpAddr::V4(a))) => Err(format!("{name} takes {what} of IPv6, not {a}")),
        _ => Ok(()),
    }
}

fn ucast(cf: &mut HaCf, args: &[&str], line: usize) -> Result<(), String> {
    let [dev, addrs @ ..] = args else { return Err("expected ucast DEV ADDR".into()) };
    if !is_ifname(dev) || addrs.is_empty() {
        return Err("expected ucast DEV ADDR".into());
    }
    let mut parsed = Vec::new();
    for a in addrs {
        let ip: IpAddr = a
            .parse()
            .map_err(|_| format!("\"{a}\" is not an IP address (names are not looked up)"))?;
        parsed.push((line, ip));
    }
    let list = cf.ucast.entry((*dev).to_string()).or_default();
    for (l, ip) in parsed {
        if !list.iter().any(|(_, have)| *have == ip) {
            list.push((l, ip));
        }
    }
    Ok(())
}

fn auto_failback(cf: &mut HaCf, w: &str, found: &mut Findings, at: &str) -> Result<(), String> {
    if w.eq_ignore_ascii_case("legacy") {
        found.note(at, "auto_failback legacy is auto_failback on");
        cf.auto_failback = Some(true);
        return Ok(());
    }
    cf.auto_failback = Some(boolean(w)?);
    Ok(())
}

fn ping(cf: &mut HaCf, addrs: &[&str]) -> Result<(), String> {
    if addrs.is_empty() {
        return Err("expected addresses".into());
    }
    let mut parsed = Vec::new();
    for a in addrs {
        parsed.push(
            a.parse::<IpAddr>()
                .map_err(|_| format!("\"{a}\" is not an IP address (names are not looked up)"))?,
        );
    }
    for ip in parsed {
        if cf.ping.len() == crate::limits::PING_NODES_MAX {
            return Err(format!(
                "hapair takes at most {} ping nodes",
                crate::limits::PING_NODES_MAX
            ));
        }
        if !cf.ping.contains(&ip) {
            cf.ping.push(ip);
        }
    }
    Ok(())
}

fn ping_group(cf: &mut HaCf, args: &[&str], found: &mut Findings, at: &str) -> Result<(), String> {
    let [group, addrs @ ..] = args else { return Err("expected ping_group NAME ADDR...".into()) };
    ping(cf, addrs)?;
    found.note(
        at,
        &format!(
            "ping_group {group}: its addresses become ping nodes; hapair counts all ping nodes \
             as one group (a node that reaches none may not take over)"
        ),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_seconds_or_ms() {
        assert_eq!(parse_duration("2"), Some(2000));
        assert_eq!(parse_duration("1500ms"), Some(1500));
        assert_eq!(parse_duration("0.5"), Some(500));
        assert_eq!(parse_duration("1.25"), Some(1250));
        assert_eq!(parse_duration("3s"), Some(3000));
        assert_eq!(parse_duration("x"), None);
        assert_eq!(parse_duration("1.2345"), None);
        assert_eq!(parse_duration("."), None);
    }

    #[test]
    fn missing_timings_are_heartbeats_defaults() {
        let t = |text: &str| parse(text, &mut Findings::default()).timings();
        assert_eq!(t(""), [(1000, true), (15000, true), (30000, true), (30000, true)]);
        assert_eq!(
            t("keepalive 200ms\ndeadtime 2\n"),
            [(200, false), (1000, true), (2000, false), (12000, true)]
        );
        assert_eq!(
            t("deadtime 8\nwarntime 0\n")[1..],
            [(4000, true), (8000, false), (16000, true)]
        );
        assert_eq!(t("initdead 60 # x\n")[3], (60000, false));
        assert_eq!(t("keepalive 3#5\n")[0], (3000, false));
    }

    /// heartbeat's IPv6 forms become hapair's `mcast` and `ping`, which take IPv6 (SPEC §7.7);
    /// an IPv4 word on them is refused.
    #[test]
    fn mcast6_and_ping6_are_mcast_and_ping_over_ipv6() {
        let text = "mcast6 eth1 ff02::1:694 694 1 0
ping6 2001:db8::fe 2001:db8::fd
                    mcast6 eth1 239.0.0.1 694 1 0
ping6 192.0.2.254
mcast6 eth2 ff02::1
";
        let mut f = Findings::default();
        let cf = parse(text, &mut f);
        let group: IpAddr = "ff02::1:694".parse().unwrap();
        assert_eq!(cf.mcast, [(1, "eth1".to_string(), group, 694, 1)]);
        assert_eq!(cf.ping, ["2001:db8::fe", "2001:db8::fd"].map(|a| a.parse::<IpAddr>().unwrap()));
        assert_eq!(f.not_converted.len(), 3, "{f:?}");
        assert!(f.not_converted[0].ends_with("mcast6 takes a group of IPv6, not 239.0.0.1"));
        assert!(f.not_converted[1].ends_with("ping6 takes an address of IPv6, not 192.0.2.254"));
        assert!(f.not_converted[2].ends_with("expected mcast DEV GROUP PORT TTL LOOP"), "{f:?}");
    }

    #[test]
    fn reads_directives_and_lists_the_rest() {
        let text = "# c\nlogfacility local0\nkeepalive 500ms # x\nnode a b\nbaud 38400\n\
                    serial /dev/ttyS0 /dev/ttyS1\nbcast eth1 eth2\nucast eth3 192.0.2.2\n\
                    mcast eth0 239.0.0.1 694 1 1\nauto_failback legacy\nping 192.0.2.254\n\
                    stonith_host * baytech 10.0.0.3 login secret\n";
        let mut f = Findings::default();
        let cf = parse(text, &mut f);
        assert_eq!(cf.nodes, ["a", "b"]);
        assert_eq!(cf.keepalive_ms, Some(500));
        assert_eq!(
            cf.media,
            [
                "serial /dev/ttyS0 baud 38400",
                "serial /dev/ttyS1 baud 38400",
                "bcast eth1",
                "bcast eth2"
            ]
        );
        assert_eq!(cf.ucast["eth3"], [(8, "192.0.2.2".parse().unwrap())]);
        assert_eq!(cf.mcast.len(), 1);
        assert_eq!(cf.auto_failback, Some(true));
        assert_eq!(f.not_converted.len(), 2, "{f:?}");
        assert!(f.not_converted[0].starts_with("ha.cf:2: logfacility local0: hapair logs"));
        assert!(f.not_converted[1].contains("stonith_host (arguments not shown"));
        assert!(!format!("{f:?}").contains("secret"));
        assert_eq!(f.notes.len(), 2, "{f:?}");
    }
}
