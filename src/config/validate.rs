//! Cross-checks: turns a `Draft` into a `Config`, filling in the defaults, or names the line
//! at fault. The rules (also in the README):
//! - exactly two distinct `node` lines; `home` (default: the first node) is one of them;
//! - keepalive < warntime <= deadtime, deadtime >= 2 x keepalive, initdead >= deadtime;
//! - `watchdog ... timeout T`: whole seconds, 1s to 10m, and T >= 3 x keepalive so that
//!   petting at T/3 (or faster) leaves room for two missed pets; `fence watchdog` needs a
//!   `watchdog` line;
//! - at least one medium, no medium twice, at most `LINKS_MAX`;
//! - every `ucast` interface lists exactly two distinct addresses of one family (one per node);
//! - no two resources with the same name or the same address, no duplicate check, hwmon chip,
//!   sensor or ping node; lists fit their `limits`.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::parse::{Draft, Loc, MediumDraft};
use super::{
    Config, ConfigError, Fence, HealthSources, Medium, NodeLocal, PairWide, Resource, RestartLimit,
};
use crate::core::time::Duration;

/// Where errors point: the configuration file or the kernel command line.
struct Files<'a> {
    config: &'a Path,
    cmdline: &'a Path,
}

impl Files<'_> {
    fn at(&self, loc: Loc, msg: impl Into<String>) -> ConfigError {
        let file = if loc.cmdline { self.cmdline } else { self.config };
        ConfigError::new(file, loc.line, msg)
    }

    fn whole(&self, msg: impl Into<String>) -> ConfigError {
        ConfigError::new(self.config, 0, msg)
    }
}

/// Applies defaults and cross-checks.
pub fn validate(d: Draft, config: &Path, cmdline: &Path) -> Result<Config, ConfigError> {
    let f = Files { config, cmdline };
    let nodes = nodes(&d, &f)?;
    let (keepalive, warntime, deadtime, initdead) = timings(&d, &f)?;
    let home = match &d.home {
        Some((h, loc)) if !nodes.contains(h) => {
            return Err(f.at(*loc, format!("home {h} is not a node (nodes: {})", nodes.join(", "))));
        }
        Some((h, _)) => h.clone(),
        None => nodes[0].clone(),
    };
    if let Some((w, loc)) = &d.watchdog {
        let min = keepalive.saturating_mul(3);
        if w.timeout < min {
            let m = format!(
                "watchdog timeout {} does not fit: it must be at least 3 x keepalive ({min})",
                w.timeout
            );
            return Err(f.at(*loc, m));
        }
    }
    if let Some((Fence::Watchdog, loc)) = &d.fence
        && d.watchdog.is_none()
    {
        return Err(f.at(*loc, "fence watchdog needs a watchdog line"));
    }
    let Some((authkey, _)) = d.authkey.clone() else {
        return Err(f.whole("no authkey line (required: authkey /etc/hapair/authkey)"));
    };
    let val = |s: &Option<(PathBuf, Loc)>, default: &str| {
        s.as_ref().map(|(p, _)| p.clone()).unwrap_or_else(|| PathBuf::from(default))
    };
    let default_limit = RestartLimit { count: 3, window: Duration::from_secs(600) };
    // The lists are checked in this order: of several errors, the first is reported.
    let media = media(&d, &f)?;
    let resources = resources(&d, &f)?;
    let hwmon = fill(unique(d.hwmon, &f, "hwmon chip", |h| h.chip.clone())?, &f, "hwmon")?;
    let sensors = unique(d.sensors, &f, "sensor", |s| format!("{}/{}", s.chip, s.input))?;
    let sensors = fill(sensors, &f, "sensor")?;
    let ping = fill(unique(d.ping, &f, "ping node", |a| a.to_string())?, &f, "ping")?;
    let checks = checks(d.checks, &f)?;
    let errors = unique(d.errors, &f, "errors source", |e| format!("{} {}", e.kind, e.name))?;
    let errors = fill(errors, &f, "errors")?;
    let pair = PairWide {
        nodes,
        keepalive,
        warntime,
        deadtime,
        initdead,
        udpport: d.udpport.map_or(694, |(p, _)| p),
        media,
        home,
        auto_failback: d.auto_failback.is_some_and(|(b, _)| b),
        monitor_interval: d.monitor_interval.map_or(Duration::from_secs(5), |(v, _)| v),
        restart_limit: d.restart_limit.map_or(default_limit, |(v, _)| v),
        fence: d.fence.map(|(v, _)| v),
        fence_delay: d.fence_delay.map_or(deadtime, |(v, _)| v),
    };
    let local = NodeLocal {
        authkey,
        control: val(&d.control, "/run/hapair/hapair.sock"),
        control_group: d.control_group.map(|(g, _)| g),
        statedir: val(&d.statedir, "/var/lib/hapair"),
        watchdog: d.watchdog.map(|(w, _)| w),
        notify: d.notify.map(|(v, _)| v),
        realtime: d.realtime.and_then(|(v, _)| v),
    };
    let health =
        HealthSources { hwmon, sensors, raid: d.raid.map(|(p, _)| p), ping, checks, errors };
    Ok(Config { pair, local, health, resources })
}

fn nodes(d: &Draft, f: &Files) -> Result<[String; 2], ConfigError> {
    match d.nodes.as_slice() {
        [] => Err(f.whole("no node lines (exactly two are needed)")),
        [(n, loc)] => Err(f.at(*loc, format!("only one node ({n}); exactly two are needed"))),
        [(a, _), (b, loc)] if a == b => Err(f.at(*loc, format!("duplicate node {b}"))),
        [(a, _), (b, _)] => Ok([a.clone(), b.clone()]),
        [_, _, (n, loc), ..] => {
            Err(f.at(*loc, format!("third node {n}: exactly two nodes are allowed")))
        }
    }
}

type Timings = (Duration, Duration, Duration, Duration);

fn timings(d: &Draft, f: &Files) -> Result<Timings, ConfigError> {
    let keepalive = d.keepalive.map_or(Duration::from_secs(1), |(v, _)| v);
    let warntime = d.warntime.map_or(keepalive.saturating_mul(3), |(v, _)| v);
    let deadtime = d.deadtime.map_or(keepalive.saturating_mul(5), |(v, _)| v);
    let initdead_default = deadtime.saturating_mul(2).min(super::value::DURATION_MAX);
    let initdead = d.initdead.map_or(initdead_default, |(v, _)| v);
    // An error points at the line that was written (a default has no line).
    let pick = |slots: &[&Option<(Duration, Loc)>]| {
        slots.iter().find_map(|s| s.map(|(_, l)| l)).unwrap_or_default()
    };
    let at = |loc: Loc, m: String| {
        if loc.line == 0 { f.whole(m) } else { f.at(loc, m) }
    };
    if keepalive >= deadtime {
        let m = format!("keepalive {keepalive} must be shorter than deadtime {deadtime}");
        return Err(at(pick(&[&d.keepalive, &d.deadtime]), m));
    }
    if keepalive >= warntime {
        let m = format!("keepalive {keepalive} must be shorter than warntime {warntime}");
        return Err(at(pick(&[&d.warntime, &d.keepalive]), m));
    }
    if warntime > deadtime {
        let m = format!("warntime {warntime} must not be longer than deadtime {deadtime}");
        return Err(at(pick(&[&d.warntime, &d.deadtime]), m));
    }
    if deadtime < keepalive.saturating_mul(2) {
        let m = format!("deadtime {deadtime} must be at least 2 x keepalive {keepalive}");
        return Err(at(pick(&[&d.deadtime, &d.keepalive]), m));
    }
    if initdead < deadtime {
        let m = format!("initdead {initdead} must not be shorter than deadtime {deadtime}");
        return Err(at(pick(&[&d.initdead, &d.deadtime]), m));
    }
    Ok((keepalive, warntime, deadtime, initdead))
}

fn media(
    d: &Draft,
    f: &Files,
) -> Result<heapless::Vec<Medium, { crate::limits::LINKS_MAX }>, ConfigError> {
    if d.media.is_empty() {
        return Err(f.whole("no heartbeat medium (serial, bcast, mcast or ucast)"));
    }
    let mut out = heapless::Vec::new();
    for (m, loc) in &d.media {
        let m = match m {
            MediumDraft::Serial { device, baud } => {
                Medium::Serial { device: device.clone(), baud: *baud }
            }
            MediumDraft::Bcast { iface } => Medium::Bcast { iface: iface.clone() },
            MediumDraft::Mcast { iface, group, ttl } => {
                Medium::Mcast { iface: iface.clone(), group: *group, ttl: *ttl }
            }
            MediumDraft::Ucast { iface, addrs } => ucast(iface, addrs, *loc, f)?,
        };
        if out.iter().any(|o| same_medium(o, &m)) {
            return Err(f.at(*loc, format!("duplicate medium {}", m.label())));
        }
        if out.push(m).is_err() {
            let max = crate::limits::LINKS_MAX;
            return Err(f.at(*loc, format!("too many heartbeat media (at most {max})")));
        }
    }
    Ok(out)
}

fn ucast(iface: &str, addrs: &[IpAddr], loc: Loc, f: &Files) -> Result<Medium, ConfigError> {
    match addrs {
        [a, b] if a != b && a.is_ipv4() == b.is_ipv4() => {
            Ok(Medium::Ucast { iface: iface.to_string(), addrs: [*a, *b] })
        }
        [a, b] if a == b => Err(f.at(loc, format!("ucast {iface} lists {a} twice"))),
        [_, _] => Err(f.at(loc, format!("ucast {iface} mixes IPv4 and IPv6 addresses"))),
        [a] => Err(f.at(
            loc,
            format!("ucast {iface} lists only {a}: list the pair's two addresses (one per node)"),
        )),
        _ => Err(f.at(loc, format!("ucast {iface} lists {} addresses (exactly two)", addrs.len()))),
    }
}

/// Two media that would use the same device, interface socket or group.
fn same_medium(a: &Medium, b: &Medium) -> bool {
    match (a, b) {
        (Medium::Serial { device: x, .. }, Medium::Serial { device: y, .. }) => x == y,
        (Medium::Bcast { iface: x }, Medium::Bcast { iface: y }) => x == y,
        (Medium::Mcast { iface: x, group: g, .. }, Medium::Mcast { iface: y, group: h, .. }) => {
            x == y && g == h
        }
        (Medium::Ucast { iface: x, .. }, Medium::Ucast { iface: y, .. }) => x == y,
        _ => false,
    }
}

fn resources(
    d: &Draft,
    f: &Files,
) -> Result<heapless::Vec<Resource, { crate::limits::RESOURCES_MAX }>, ConfigError> {
    let mut names = HashSet::new();
    let mut addrs = HashSet::new();
    let mut out = heapless::Vec::new();
    for (r, loc) in &d.resources {
        if !names.insert(r.name().to_string()) {
            return Err(f.at(*loc, format!("duplicate resource {}", r.name())));
        }
        if let Resource::Ip(ip) = r
            && !addrs.insert(ip.addr)
        {
            return Err(f.at(*loc, format!("duplicate resource address {}", ip.addr)));
        }
        if out.push(r.clone()).is_err() {
            let max = crate::limits::RESOURCES_MAX;
            return Err(f.at(*loc, format!("too many resources (at most {max})")));
        }
    }
    Ok(out)
}

fn checks<const N: usize>(
    list: Vec<(super::Check, Loc)>,
    f: &Files,
) -> Result<heapless::Vec<super::Check, N>, ConfigError> {
    let mut seen = HashSet::new();
    for (c, loc) in &list {
        if !seen.insert(c.name.clone()) {
            return Err(f.at(*loc, format!("duplicate check {}", c.name)));
        }
        if c.timeout > c.interval {
            let m = format!(
                "check {} timeout {} is longer than its interval {}",
                c.name, c.timeout, c.interval
            );
            return Err(f.at(*loc, m));
        }
    }
    fill(list, f, "check")
}

/// Refuses a list where two entries have the same key, at the second one.
fn unique<T>(
    list: Vec<(T, Loc)>,
    f: &Files,
    what: &str,
    key: impl Fn(&T) -> String,
) -> Result<Vec<(T, Loc)>, ConfigError> {
    let mut seen = HashSet::new();
    for (v, loc) in &list {
        let k = key(v);
        if !seen.insert(k.clone()) {
            return Err(f.at(*loc, format!("duplicate {what} {k}")));
        }
    }
    Ok(list)
}

/// Moves a list into its fixed-capacity form; too many entries is an error at the first extra.
fn fill<T, const N: usize>(
    list: Vec<(T, Loc)>,
    f: &Files,
    what: &str,
) -> Result<heapless::Vec<T, N>, ConfigError> {
    let mut out = heapless::Vec::new();
    for (v, loc) in list {
        if out.push(v).is_err() {
            return Err(f.at(loc, format!("too many {what} entries (at most {N})")));
        }
    }
    Ok(out)
}
