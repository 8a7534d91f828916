//! Cross-checks: turns a `Draft` into a `Config`, filling in the defaults, or names the line
//! at fault. The rules (also in the README):
//! - exactly two distinct `node` lines; `home` (default: the first node) is one of them;
//! - keepalive < warntime <= deadtime, deadtime >= 2 x keepalive, initdead >= deadtime;
//! - `watchdog ... timeout T`: whole seconds, 1s to 10m, and T >= 3 x keepalive so that
//!   petting at T/3 (or faster) leaves room for two missed pets; `fence watchdog` needs a
//!   `watchdog` line;
//! - at least one medium, no medium twice, at most `LINKS_MAX`;
//! - a medium's own `keepalive` and `deadtime` (SPEC §7.7, defaults the global ones): its
//!   deadtime at least 2 x its keepalive, and `initdead` not shorter than any link's deadtime
//!   (the default `initdead` is twice the longest deadtime, link or global);
//! - every `ucast` interface lists exactly two distinct addresses of one family (one per node);
//! - no two resources with the same name or the same address, no duplicate check, hwmon chip,
//!   sensor or ping node; lists fit their `limits`;
//! - groups (SPEC §7.1): without `group` lines, every resource is in the one group `main`;
//!   with them, no resource before the first, no group without a resource, no two groups of
//!   one name, at most `GROUPS_MAX`, and each `home` is a node.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::parse::{Draft, Loc, MediumDraft};
use super::{
    Config, ConfigError, ErrorReport, Errors, Fence, Group, HealthSources, LinkTiming, MAIN_GROUP,
    Medium, NodeLocal, PairWide, Resource, RestartLimit,
};
use crate::core::time::Duration;
use crate::limits::GROUPS_MAX;

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
    let (media, link_timing) = media(&d, &f)?;
    let initdead = link_timings(&d, &f, (keepalive, deadtime, initdead), &link_timing)?;
    let resources = resources(&d, &f)?;
    let auto_failback = d.auto_failback.is_some_and(|(b, _)| b);
    let groups = groups(&d, &f, &nodes, (&home, auto_failback))?;
    let hwmon = fill(unique(d.hwmon, &f, "hwmon chip", |h| h.chip.clone())?, &f, "hwmon")?;
    let sensors = unique(d.sensors, &f, "sensor", |s| format!("{}/{}", s.chip, s.input))?;
    let sensors = fill(sensors, &f, "sensor")?;
    let ping = fill(unique(d.ping, &f, "ping node", |a| a.to_string())?, &f, "ping")?;
    let checks = checks(d.checks, &f)?;
    let errors = unique(d.errors, &f, "errors source", |e| format!("{} {}", e.kind, e.name))?;
    let errors = errors.into_iter().map(|(e, loc)| (report_to(e, &media, &resources), loc));
    let errors = fill(errors.collect(), &f, "errors")?;
    let pair = PairWide {
        nodes,
        keepalive,
        warntime,
        deadtime,
        initdead,
        udpport: d.udpport.map_or(694, |(p, _)| p),
        media,
        link_timing,
        home,
        auto_failback,
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
    let health = HealthSources {
        hwmon,
        sensors,
        raid: d.raid.map(|(p, _)| p),
        ping,
        checks,
        errors,
        ipmi: d.ipmi.map(|(i, _)| i),
    };
    Ok(Config { pair, local, health, groups, resources })
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

type Media = (
    heapless::Vec<Medium, { crate::limits::LINKS_MAX }>,
    heapless::Vec<LinkTiming, { crate::limits::LINKS_MAX }>,
);

/// Each medium's own `keepalive` and `deadtime` (SPEC §7.7) against the global timings:
/// a link's deadtime at least 2 x its keepalive, and `initdead` at least every link's
/// deadtime (its default grows to twice the longest). Returns `initdead`.
fn link_timings(
    d: &Draft,
    f: &Files,
    (keepalive, deadtime, initdead): (Duration, Duration, Duration),
    timing: &[LinkTiming],
) -> Result<Duration, ConfigError> {
    let mut longest = deadtime;
    for ((m, _, loc), t) in d.media.iter().zip(timing) {
        let (k, dead) = (t.keepalive.unwrap_or(keepalive), t.deadtime.unwrap_or(deadtime));
        if dead < k.saturating_mul(2) {
            let label = medium_label(m);
            let m = format!("{label}: deadtime {dead} must be at least 2 x its keepalive {k}");
            return Err(f.at(*loc, m));
        }
        if let Some((_, at)) = d.initdead
            && initdead < dead
        {
            let label = medium_label(m);
            let m = format!(
                "initdead {initdead} must not be shorter than the deadtime {dead} of {label}"
            );
            return Err(f.at(at, m));
        }
        longest = longest.max(dead);
    }
    if d.initdead.is_some() {
        return Ok(initdead);
    }
    Ok(initdead.max(longest.saturating_mul(2).min(super::value::DURATION_MAX)))
}

/// `Medium::label` of a draft, for messages.
fn medium_label(m: &MediumDraft) -> String {
    match m {
        MediumDraft::Serial { device, .. } => format!("serial {}", device.display()),
        MediumDraft::Bcast { iface } => format!("bcast {iface}"),
        MediumDraft::Mcast { iface, group, .. } => format!("mcast {iface} {group}"),
        MediumDraft::Ucast { iface, .. } => format!("ucast {iface}"),
    }
}

fn media(d: &Draft, f: &Files) -> Result<Media, ConfigError> {
    if d.media.is_empty() {
        return Err(f.whole("no heartbeat medium (serial, bcast, mcast or ucast)"));
    }
    let mut out = heapless::Vec::new();
    let mut timing = heapless::Vec::new();
    for (m, t, loc) in &d.media {
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
        // Cannot fail: `timing` has the capacity of `out`, which took the medium.
        let _ = timing.push(*t);
    }
    Ok((out, timing))
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

/// Resolves where an `errors net` source reports when its line does not say: to the links
/// on an interface that carries a heartbeat medium and no `ip` resource (the crossover: both
/// nodes' cable, which a handover does not mend), else to the node. Other kinds: the node.
fn report_to(mut e: Errors, media: &[Medium], resources: &[Resource]) -> Errors {
    if e.kind != crate::health::errors::ErrorKind::Net {
        return e;
    }
    let medium = media.iter().any(|m| match m {
        Medium::Serial { .. } => false,
        Medium::Bcast { iface } | Medium::Mcast { iface, .. } | Medium::Ucast { iface, .. } => {
            *iface == e.name
        }
    });
    let service = resources.iter().any(|r| matches!(r, Resource::Ip(ip) if ip.dev == e.name));
    let default = if medium && !service { ErrorReport::Link } else { ErrorReport::Node };
    e.report.get_or_insert(default);
    e
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

/// The groups of the resources (`Config::groups`), `defaults` being the pair's `home` and
/// `auto_failback`.
fn groups(
    d: &Draft,
    f: &Files,
    nodes: &[String; 2],
    defaults: (&String, bool),
) -> Result<heapless::Vec<Group, GROUPS_MAX>, ConfigError> {
    let mut out = heapless::Vec::new();
    let (home, auto_failback) = defaults;
    let count = d.resources.len();
    let Some((first, _)) = d.groups.first() else {
        let main = Group {
            name: MAIN_GROUP.into(),
            home: home.clone(),
            auto_failback,
            resources: 0..count,
        };
        // INVARIANT: `GROUPS_MAX` is at least 1.
        out.push(main).expect("room for one group");
        return Ok(out);
    };
    if first.first > 0 {
        let (r, loc) = &d.resources[0];
        let m = format!(
            "resource {} before the first group line: with groups, every resource \
                         follows the group line of its group",
            r.name()
        );
        return Err(f.at(*loc, m));
    }
    for (i, (g, loc)) in d.groups.iter().enumerate() {
        if let Some((_, at)) = d.groups[..i].iter().find(|(o, _)| o.name == g.name) {
            return Err(
                f.at(*loc, format!("duplicate group {} (first on line {})", g.name, at.line))
            );
        }
        let end = d.groups.get(i + 1).map_or(count, |(next, _)| next.first);
        if end == g.first {
            return Err(f.at(
                *loc,
                format!(
                    "group {} has no resource (a resource line after \
                                           it is its)",
                    g.name
                ),
            ));
        }
        let home = match &g.home {
            Some(h) if !nodes.contains(h) => {
                let m = format!(
                    "group {}: home {h} is not a node (nodes: {})",
                    g.name,
                    nodes.join(", ")
                );
                return Err(f.at(*loc, m));
            }
            Some(h) => h.clone(),
            None => home.clone(),
        };
        let group = Group {
            name: g.name.clone(),
            home,
            auto_failback: g.auto_failback.unwrap_or(auto_failback),
            resources: g.first..end,
        };
        if out.push(group).is_err() {
            return Err(f.at(*loc, format!("too many groups (at most {GROUPS_MAX})")));
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{Config, Group, MAIN_GROUP, parse_str};

    const BASE: &str = "node a\nnode b\nauthkey /k\nbcast eth0\n";

    fn parse(extra: &str) -> Result<Config, String> {
        parse_str(&format!("{BASE}{extra}"), Path::new("t.conf")).map_err(|e| e.to_string())
    }

    fn group(
        name: &str,
        home: &str,
        auto_failback: bool,
        resources: std::ops::Range<usize>,
    ) -> Group {
        Group { name: name.into(), home: home.into(), auto_failback, resources }
    }

    #[test]
    fn without_group_lines_every_resource_is_in_main() {
        let c = parse("home b\nauto_failback on\nresource lsb x\nresource lsb y\n").unwrap();
        assert_eq!(c.groups.as_slice(), [group(MAIN_GROUP, "b", true, 0..2)]);
        assert_eq!((c.group_of(0), c.group_of(1)), (0, 0));
        let empty = parse("").unwrap();
        assert_eq!(empty.groups.as_slice(), [group(MAIN_GROUP, "a", false, 0..0)]);
    }

    /// SPEC §7.1: the resources after a `group` line are its; `home` and `auto_failback`
    /// before the first one are the defaults of every group.
    #[test]
    fn groups_take_the_resources_after_them_and_the_defaults_before() {
        let c = parse(
            "home b\nauto_failback on\n\
             group web\nresource ip 192.0.2.100/24 dev eth0\nresource lsb nginx\n\
             group db home a\nresource ip 192.0.2.101/24 dev eth0\nresource lsb mysql\n\
             resource ocf heartbeat:Filesystem name fs device=/dev/drbd0 directory=/srv\n\
             group mail auto_failback off\nresource lsb postfix\n",
        )
        .unwrap();
        assert_eq!(
            c.groups.as_slice(),
            [
                group("web", "b", true, 0..2),
                group("db", "a", true, 2..5),
                group("mail", "b", false, 5..6)
            ]
        );
        let owners: Vec<usize> = (0..c.resources.len()).map(|i| c.group_of(i)).collect();
        assert_eq!(owners, [0, 0, 1, 1, 1, 2]);
        assert_eq!((c.group_index("db"), c.group_index("main")), (Some(1), None));
        assert_eq!(c.resources[c.groups[1].resources.clone()][1].name(), "mysql");
        // The canonical text writes each group line, with every option, before its resources,
        // and reads back the same.
        let text = c.to_string();
        assert!(
            text.contains(
                "\nhome b\nauto_failback on\ngroup web home b auto_failback on\nresource ip \
                 192.0.2.100/24"
            ),
            "{text}"
        );
        assert!(
            text.contains("\nresource lsb nginx\ngroup db home a auto_failback on\n"),
            "{text}"
        );
        assert_eq!(parse_str(&text, Path::new("p.conf")).unwrap(), c);
    }

    /// The README's example (SPEC §7.1's) is valid, and means what it says.
    #[test]
    fn the_readme_example_of_groups_is_valid() {
        let readme = include_str!("../../README.md");
        let (_, after) = readme.split_once("Several groups (active/active)").unwrap();
        let (_, block) = after.split_once("```\n").unwrap();
        let (example, _) = block.split_once("```").unwrap();
        let c = parse(&example.replace("alpha", "a").replace("beta", "b")).unwrap();
        assert_eq!(
            c.groups.as_slice(),
            [group("web", "a", false, 0..2), group("db", "b", false, 2..4)]
        );
    }

    /// A lone `group main` without options means what no `group` line means: the same
    /// configuration, printed (and digested) the same.
    #[test]
    fn a_lone_group_main_is_no_group_line() {
        let plain = parse("resource lsb x\n").unwrap();
        let main = parse("group main\nresource lsb x\n").unwrap();
        assert_eq!(main, plain);
        assert_eq!(main.to_string(), plain.to_string());
        assert!(!plain.to_string().contains("\ngroup "));
        // With its own home it is a group line of its own.
        let homed = parse("group main home b\nresource lsb x\n").unwrap();
        assert!(homed.to_string().contains("\ngroup main home b auto_failback off\n"));
        assert_ne!(homed.digest(), plain.digest());
    }

    /// Two nodes with different group layouts of the same resources have different digests.
    #[test]
    fn the_digest_sees_the_group_lines() {
        let one = parse("group g\nresource lsb x\nresource lsb y\n").unwrap();
        let two = parse("group g\nresource lsb x\ngroup h\nresource lsb y\n").unwrap();
        let homed = parse("group g home b\nresource lsb x\nresource lsb y\n").unwrap();
        let back = parse("group g auto_failback on\nresource lsb x\nresource lsb y\n").unwrap();
        let named = parse("group h\nresource lsb x\nresource lsb y\n").unwrap();
        let plain = parse("resource lsb x\nresource lsb y\n").unwrap();
        let digests = [&one, &two, &homed, &back, &named, &plain].map(|c| c.digest());
        for (i, a) in digests.iter().enumerate() {
            for b in &digests[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn group_errors_name_the_line() {
        let many: String = (1..=9).map(|i| format!("group g{i}\nresource lsb r{i}\n")).collect();
        for (extra, want) in [
            ("group web\n", "t.conf:5: group web has no resource"),
            ("group web\ngroup db\nresource lsb x\n", "t.conf:5: group web has no resource"),
            (
                "group web\nresource lsb x\ngroup web\nresource lsb y\n",
                "t.conf:7: duplicate group web (first on line 5)",
            ),
            (
                "resource lsb x\ngroup web\nresource lsb y\n",
                "t.conf:5: resource x before the first group line",
            ),
            ("group web home c\nresource lsb x\n", "t.conf:5: group web: home c is not a node"),
            ("group a/b\nresource lsb x\n", "t.conf:5: bad group name \"a/b\""),
            ("group abcdefghijklmnop\nresource lsb x\n", "t.conf:5: bad group name"),
            ("group .x\nresource lsb x\n", "t.conf:5: bad group name"),
            ("group\n", "t.conf:5: missing group name for group"),
            ("group g home\nresource lsb x\n", "t.conf:5: missing value of home for group"),
            ("group g auto_failback yes\n", "t.conf:5: bad value \"yes\" for auto_failback"),
            ("group g owner a\n", "t.conf:5: unknown option \"owner\" for group"),
            (
                "group g\nresource lsb x\nhome b\n",
                "t.conf:7: home after a group line: the default of every group goes before \
                 the first one (line 5)",
            ),
            ("group g\nresource lsb x\nauto_failback on\n", "t.conf:7: auto_failback after a"),
            (&many, "t.conf:21: too many groups (at most 8)"),
        ] {
            let got = parse(extra).unwrap_err();
            assert!(got.starts_with(want), "{extra}: {got}");
        }
        // Fifteen bytes is a name; 32 resources in all, over groups.
        assert!(parse("group abcdefghijklmno\nresource lsb x\n").is_ok());
        let line = |i: usize| {
            let group =
                if i.is_multiple_of(4) { format!("group g{}\n", i / 4) } else { String::new() };
            format!("{group}resource lsb r{i}\n")
        };
        let full: String = (0..32).map(line).collect();
        assert_eq!(parse(&full).unwrap().groups.len(), 8);
        let err = parse(&format!("{full}resource lsb r32\n")).unwrap_err();
        assert!(err.contains("too many resources (at most 32)"), "{err}");
    }

    /// A group line is pair-wide: no kernel flag sets it; `hapair.home=` sets the default,
    /// which the groups without a home of their own take.
    #[test]
    fn kernel_flags_set_the_defaults_not_the_groups() {
        use crate::config::{Cmdline, parse_bytes};
        let text = format!("{BASE}group g\nresource lsb x\ngroup h home a\nresource lsb y\n");
        let flags =
            Cmdline::parse(b"hapair.home=b hapair.auto_failback=on", Path::new("c")).unwrap();
        let c = parse_bytes(text.as_bytes(), Path::new("t.conf"), &flags).unwrap();
        assert_eq!(c.groups.as_slice(), [group("g", "b", true, 0..1), group("h", "a", true, 1..2)]);
        let err = Cmdline::parse(b"hapair.group=g", Path::new("c")).unwrap_err();
        assert!(err.to_string().contains("hapair.group cannot be set"), "{err}");
    }
}
