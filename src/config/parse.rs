//! Directives: the one table of them all ([`DIRECTIVES`]: name, syntax, part, what a reload
//! does with a change, how often it may appear, parser), and the parsers that turn each
//! line's words into a typed entry of a `Draft`, remembering the line of every entry so that
//! the cross-checks (`validate`) can name it. Kernel command-line overrides go through the
//! same parsers. Every use of a directive's class derives from the table: which kernel flags
//! exist and how their value is split (`cmdline`), the duplicate check, the digest and the
//! reload's comparison (`render`). No file I/O here.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::value::{self, duration, number};
use super::{
    Check, ConfigError, ErrorReport, Errors, ExecResource, FENCE_ARGS_MAX, Fence, Hwmon,
    IpResource, Ipmi, LinkTiming, OcfResource, Realtime, Resource, RestartLimit, Sensor, Watchdog,
    lex,
};
use crate::core::time::Duration;
use crate::limits::AGENT_PARAMS_MAX;

/// The part of `Config` a directive belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// What both nodes must agree on (`Config::pair`).
    Pair,
    /// Each node's own business (`Config::local`).
    Local,
    /// A health source (`Config::health`).
    Health,
    /// The resource groups (`Config::groups`).
    Groups,
    /// The resources (`Config::resources`).
    Resources,
}

impl Part {
    /// The digest covers the directives of this part (README "Configuration digest").
    pub fn digested(self) -> bool {
        matches!(self, Part::Pair | Part::Groups | Part::Resources)
    }
}

/// What a reload (SIGHUP) does with a changed directive (README "Reload").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reload {
    /// Applied in place, at once.
    Live,
    /// Applied through the resource plan (core "Reload").
    Resources,
    /// Checked, then logged as needing a restart; the running value stays in force.
    Restart(Restart),
}

/// The groups of changes that need a restart, as a reload names them in its log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restart {
    /// What the core and the peer depend on.
    Core,
    /// The heartbeat media.
    Media,
    /// The files and the control socket.
    Files,
}

impl Restart {
    /// Every group, in the order the log names them.
    pub const ALL: [Restart; 3] = [Restart::Core, Restart::Media, Restart::Files];

    /// The group as the log names it.
    pub fn what(self) -> &'static str {
        match self {
            Restart::Core => "timings, nodes, home, groups, fence, port, watchdog or realtime",
            Restart::Media => "media",
            Restart::Files => "control socket or group, statedir or authkey",
        }
    }
}

/// How often a directive may appear, and what a kernel flag (`hapair.KEY=VALUE`) does to it.
#[derive(Clone, Copy)]
pub enum Lines {
    /// At most one line: a second line is an error; a kernel flag replaces the line.
    Once,
    /// Any number of lines; no kernel flag.
    Many,
    /// Any number of lines; the first kernel flag forgets the file's lines (with this
    /// function), further flags add to it.
    Replaced(fn(&mut Draft)),
}

/// Reads a directive's words into the draft.
type Parser = fn(&mut Draft, &mut Args<'_>, Loc) -> Result<(), String>;

/// One directive: a row of [`DIRECTIVES`].
pub struct Directive {
    pub name: &'static str,
    /// Its arguments as the README's configuration reference writes them (alternatives
    /// separated by ` | `). A syntax of one word is one argument: a kernel flag's whole value
    /// is that argument, spaces and all.
    pub syntax: &'static str,
    pub part: Part,
    pub reload: Reload,
    pub lines: Lines,
    pub parse: Parser,
}

impl Directive {
    /// A kernel flag may set it.
    pub fn flag_allowed(&self) -> bool {
        !matches!(self.lines, Lines::Many)
    }

    /// It takes one argument: a kernel flag's value is that argument, not split at spaces.
    pub fn one_word(&self) -> bool {
        !self.syntax.contains(' ')
    }
}

/// The directive called `name`.
pub fn directive(name: &str) -> Option<&'static Directive> {
    DIRECTIVES.iter().find(|d| d.name == name)
}

use Lines::{Many, Once};
use Part::{Health, Local, Pair};

const CORE: Reload = Reload::Restart(Restart::Core);
const MEDIA: Reload = Reload::Restart(Restart::Media);
const FILES: Reload = Reload::Restart(Restart::Files);
const LIVE: Reload = Reload::Live;

const RESOURCE_SYNTAX: &str = "ip ADDR/PREFIX dev IF [garp N] [garp_interval DUR] \
    [garp_refresh DUR] [name NAME] | exec NAME start=\"CMD\" stop=\"CMD\" [monitor=\"CMD\"] \
    [timeout DUR] | lsb NAME | ocf PROVIDER:AGENT [name NAME] KEY=VALUE...";

const GROUP_SYNTAX: &str = "NAME [home NODE] [auto_failback on|off]";

const ERRORS_SYNTAX: &str = "edac [max N in DUR] [root PATH] | net IF [max N in DUR] [root PATH] \
    [report link|node] | disk DEV [max N in DUR] [root PATH]";

const fn row(
    name: &'static str,
    syntax: &'static str,
    part: Part,
    reload: Reload,
    lines: Lines,
    parse: Parser,
) -> Directive {
    Directive { name, syntax, part, reload, lines, parse }
}

/// Every directive, in the README's order. Classes (SPEC §2, README "Configuration
/// digest"): what both nodes must agree on is `Pair`; a node's own paths, devices and
/// scheduling are `Local` (a `serial` line too: its device is the node's own, though the line
/// sits in the pair's list of media, whose order numbers the links; its `keepalive` and
/// `deadtime` are pair-wide all the same and digested apart, `render`); the health sources are
/// `Health`; the `group` lines, which say which resources move together, are `Groups`.
#[rustfmt::skip]
pub const DIRECTIVES: &[Directive] = &[
    row("node", "NAME", Pair, CORE, Many,
        |d, a, l| push(&mut d.nodes, value::name(a.next("node name")?, "node name")?, l)),
    row("keepalive", "DUR", Pair, CORE, Once, |d, a, l| put(&mut d.keepalive, timing(a)?, l)),
    row("warntime", "DUR", Pair, CORE, Once, |d, a, l| put(&mut d.warntime, timing(a)?, l)),
    row("deadtime", "DUR", Pair, CORE, Once, |d, a, l| put(&mut d.deadtime, timing(a)?, l)),
    row("initdead", "DUR", Pair, CORE, Once, |d, a, l| put(&mut d.initdead, timing(a)?, l)),
    row("authkey", "PATH", Local, FILES, Once, |d, a, l| put(&mut d.authkey, path(a)?, l)),
    row("udpport", "PORT", Pair, CORE, Once, |d, a, l| put(&mut d.udpport, port(a)?, l)),
    row("control", "PATH", Local, FILES, Once, |d, a, l| put(&mut d.control, path(a)?, l)),
    row("control_group", "NAME", Local, FILES, Once,
        |d, a, l| put(&mut d.control_group, value::name(a.next("group name")?, "group name")?, l)),
    row("statedir", "PATH", Local, FILES, Once, |d, a, l| put(&mut d.statedir, path(a)?, l)),
    row("serial", "DEVICE [baud N] [keepalive DUR] [deadtime DUR]", Local, MEDIA,
        Lines::Replaced(forget_serial), serial),
    row("bcast", "IF [keepalive DUR] [deadtime DUR]", Pair, MEDIA, Many, bcast),
    row("mcast", "IF GROUP [ttl N] [keepalive DUR] [deadtime DUR]", Pair, MEDIA, Many, mcast),
    row("ucast", "IF ADDR [ADDR] [keepalive DUR] [deadtime DUR]", Pair, MEDIA, Many, ucast),
    row("home", "NAME", Pair, CORE, Once, |d, a, l| {
        let (home, l) = (value::name(a.next("node name")?, "node name")?, before_groups(d, a, l)?);
        put(&mut d.home, home, l)
    }),
    row("auto_failback", "on|off", Pair, CORE, Once, |d, a, l| {
        let (on, l) = (value::on_off(a.next("on|off")?, a.directive)?, before_groups(d, a, l)?);
        put(&mut d.auto_failback, on, l)
    }),
    row("group", GROUP_SYNTAX, Part::Groups, CORE, Many, group),
    row("resource", RESOURCE_SYNTAX, Part::Resources, Reload::Resources, Many, resource),
    row("monitor_interval", "DUR", Pair, CORE, Once,
        |d, a, l| put(&mut d.monitor_interval, timing(a)?, l)),
    row("restart_limit", "N in DUR", Pair, CORE, Once, restart_limit),
    row("watchdog", "DEVICE [timeout DUR]", Local, CORE, Once, watchdog),
    row("hwmon", "CHIP [root PATH]", Health, LIVE, Many, hwmon),
    row("sensor", "CHIP/INPUT [min X] [max X] [crit X]", Health, LIVE, Many, sensor),
    row("raid", "PATH", Health, LIVE, Once, |d, a, l| put(&mut d.raid, path(a)?, l)),
    row("ping", "ADDR [ADDR...]", Health, LIVE, Lines::Replaced(|d| d.ping.clear()), ping),
    row("check", "NAME \"CMD\" [interval DUR] [timeout DUR]", Health, LIVE, Many, check),
    row("errors", ERRORS_SYNTAX, Health, LIVE, Many, errors),
    row("ipmi", "[device PATH]", Health, LIVE, Once, ipmi),
    row("fence", "watchdog | CMD ARGS...", Pair, CORE, Once, fence),
    row("fence_delay", "DUR", Pair, CORE, Once,
        |d, a, l| put(&mut d.fence_delay, duration(a.next("duration")?, a.directive)?, l)),
    row("notify", "PATH", Local, LIVE, Once, |d, a, l| put(&mut d.notify, path(a)?, l)),
    row("realtime", "on|off [priority N]", Local, CORE, Once, realtime),
];

/// Where an entry came from: a line of the configuration or of the kernel command line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Loc {
    pub line: u32,
    pub cmdline: bool,
}

/// A heartbeat medium before the cross-checks (ucast lines are merged per interface).
#[derive(Clone, Debug)]
pub enum MediumDraft {
    Serial { device: PathBuf, baud: u32 },
    Bcast { iface: String },
    Mcast { iface: String, group: IpAddr, ttl: u8 },
    Ucast { iface: String, addrs: Vec<IpAddr> },
}

/// A `group` line before the cross-checks: what it says, and where its resources start.
#[derive(Clone, Debug)]
pub struct GroupDraft {
    pub name: String,
    /// `home NODE` on the line (the pair's `home` otherwise).
    pub home: Option<String>,
    /// `auto_failback on|off` on the line (the pair's otherwise).
    pub auto_failback: Option<bool>,
    /// The index in `Draft::resources` of its first resource: the resources after the line,
    /// up to the next `group` line, are its.
    pub first: usize,
}

type Slot<T> = Option<(T, Loc)>;

/// Everything the lines said, with the line of each entry, before the cross-checks.
#[derive(Default)]
pub struct Draft {
    pub nodes: Vec<(String, Loc)>,
    pub keepalive: Slot<Duration>,
    pub warntime: Slot<Duration>,
    pub deadtime: Slot<Duration>,
    pub initdead: Slot<Duration>,
    pub authkey: Slot<PathBuf>,
    pub udpport: Slot<u16>,
    pub control: Slot<PathBuf>,
    pub control_group: Slot<String>,
    pub statedir: Slot<PathBuf>,
    pub home: Slot<String>,
    pub auto_failback: Slot<bool>,
    pub monitor_interval: Slot<Duration>,
    pub restart_limit: Slot<RestartLimit>,
    pub watchdog: Slot<Watchdog>,
    pub raid: Slot<PathBuf>,
    pub ipmi: Slot<Ipmi>,
    pub fence: Slot<Fence>,
    pub fence_delay: Slot<Duration>,
    pub notify: Slot<PathBuf>,
    pub realtime: Slot<Option<Realtime>>,
    pub media: Vec<(MediumDraft, LinkTiming, Loc)>,
    pub groups: Vec<(GroupDraft, Loc)>,
    pub resources: Vec<(Resource, Loc)>,
    pub hwmon: Vec<(Hwmon, Loc)>,
    pub sensors: Vec<(Sensor, Loc)>,
    pub ping: Vec<(IpAddr, Loc)>,
    pub checks: Vec<(Check, Loc)>,
    pub errors: Vec<(Errors, Loc)>,
    /// The file line of each `Once` directive given (a second line is an error).
    given: Vec<(&'static str, u32)>,
    /// `Replaced` directives already set by a kernel flag (a second flag adds to the first).
    replaced: Vec<&'static str>,
}

/// A kernel flag `hapair.KEY=VALUE` that sets a directive (`Cmdline::overrides`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Override {
    pub key: String,
    pub value: String,
    pub line: u32,
}

/// Reads the lines of `text` (the configuration `file`), then the kernel flags `overrides`
/// (from `flags_file`), into a draft for the cross-checks.
pub fn draft(
    text: &[u8],
    file: &Path,
    overrides: &[Override],
    flags_file: &Path,
) -> Result<Draft, ConfigError> {
    let mut draft = Draft::default();
    for (i, raw) in text.split(|&b| b == b'\n').enumerate() {
        let line = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let err = |m: String| ConfigError::new(file, line, m);
        let s = std::str::from_utf8(raw).map_err(|_| err("not valid UTF-8".into()))?;
        let s = s.strip_suffix('\r').unwrap_or(s);
        let words = lex::words(s, true).map_err(err)?;
        let Some((name, args)) = words.split_first() else { continue };
        let loc = Loc { line, cmdline: false };
        let Some(d) = directive(name) else {
            return Err(err(format!("unknown directive \"{name}\"")));
        };
        draft.apply(d, args, loc).map_err(err)?;
    }
    for o in overrides {
        let loc = Loc { line: o.line, cmdline: true };
        let err = |m: String| ConfigError::new(flags_file, o.line, m);
        let d = match directive(&o.key) {
            Some(d) if d.flag_allowed() => d,
            _ => {
                let m = format!("hapair.{} cannot be set on the kernel command line", o.key);
                return Err(err(m));
            }
        };
        let words: Vec<String> = if d.one_word() {
            vec![o.value.clone()]
        } else {
            o.value.split_whitespace().map(str::to_string).collect()
        };
        if let Lines::Replaced(forget) = d.lines
            && !draft.replaced.contains(&d.name)
        {
            draft.replaced.push(d.name);
            forget(&mut draft);
        }
        draft.apply(d, &words, loc).map_err(err)?;
    }
    Ok(draft)
}

impl Draft {
    /// Parses one line (or kernel flag) of directive `d`. A `Once` directive's second line
    /// is an error once the line itself parsed; a kernel flag replaces the line.
    fn apply(&mut self, d: &'static Directive, words: &[String], loc: Loc) -> Result<(), String> {
        let mut a = Args { directive: d.name, words, pos: 0 };
        (d.parse)(self, &mut a, loc)?;
        if matches!(d.lines, Once) && !loc.cmdline {
            if let Some((_, first)) = self.given.iter().find(|(n, _)| *n == d.name) {
                return Err(format!("duplicate {} (first on line {first})", d.name));
            }
            self.given.push((d.name, loc.line));
        }
        a.end()
    }
}

/// The words after a directive's name, read front to back.
pub struct Args<'a> {
    directive: &'static str,
    words: &'a [String],
    pos: usize,
}

impl<'a> Args<'a> {
    fn next(&mut self, what: &str) -> Result<&'a str, String> {
        let w = self.words.get(self.pos).ok_or_else(|| {
            format!("missing {what} for {} (see the README for its syntax)", self.directive)
        })?;
        self.pos += 1;
        Ok(w)
    }

    fn peek(&self) -> Option<&'a str> {
        self.words.get(self.pos).map(String::as_str)
    }

    fn end(&self) -> Result<(), String> {
        match self.peek() {
            None => Ok(()),
            Some(w) => Err(format!("unexpected \"{w}\" after {}", self.directive)),
        }
    }

    /// Reads `keyword value` pairs up to the end; each keyword must be in `allowed`, once.
    fn options(&mut self, allowed: &[&str]) -> Result<Vec<(&'a str, &'a str)>, String> {
        let mut out: Vec<(&str, &str)> = Vec::new();
        while let Some(k) = self.peek() {
            self.pos += 1;
            if !allowed.contains(&k) {
                let list = allowed.join(", ");
                return Err(format!(
                    "unknown option \"{k}\" for {} (expected {list})",
                    self.directive
                ));
            }
            if out.iter().any(|(o, _)| *o == k) {
                return Err(format!("option {k} given twice for {}", self.directive));
            }
            let v = self.next(&format!("value of {k}"))?;
            out.push((k, v));
        }
        Ok(out)
    }
}

/// Sets a single-value directive (a second line is refused by `Draft::apply`).
fn put<T>(slot: &mut Slot<T>, v: T, loc: Loc) -> Result<(), String> {
    *slot = Some((v, loc));
    Ok(())
}

/// Adds an entry of a list directive.
fn push<T>(list: &mut Vec<(T, Loc)>, v: T, loc: Loc) -> Result<(), String> {
    list.push((v, loc));
    Ok(())
}

/// A path: the directive's one argument.
fn path(a: &mut Args) -> Result<PathBuf, String> {
    value::path(a.next("path")?, a.directive)
}

fn port(a: &mut Args) -> Result<u16, String> {
    let p = number(a.next("port")?, "udpport", 1, 65535)?;
    Ok(u16::try_from(p).unwrap_or(0))
}

/// A duration longer than 0 (keepalive: 10ms to 1m): the directive's one argument.
fn timing(a: &mut Args) -> Result<Duration, String> {
    let name = a.directive;
    let v = duration(a.next("duration")?, name)?;
    if v == Duration::ZERO {
        return Err(format!("{name} must be longer than 0"));
    }
    let (min, max) = (Duration::from_millis(10), Duration::from_secs(60));
    if name == "keepalive" && !(min..=max).contains(&v) {
        return Err(format!("keepalive {v} is out of range ({min} to {max})"));
    }
    Ok(v)
}

/// The options every medium line takes (SPEC §7.7).
const LINK_OPTIONS: [&str; 2] = ["keepalive", "deadtime"];

/// The `keepalive DUR` and `deadtime DUR` options of a medium line (others are ignored here).
fn link_timing(opts: &[(&str, &str)]) -> Result<LinkTiming, String> {
    let mut t = LinkTiming::default();
    for (k, v) in opts {
        let slot = match *k {
            "keepalive" => &mut t.keepalive,
            "deadtime" => &mut t.deadtime,
            _ => continue,
        };
        let d = duration(v, k)?;
        if d == Duration::ZERO {
            return Err(format!("{k} must be longer than 0"));
        }
        let (min, max) = (Duration::from_millis(10), Duration::from_secs(60));
        if *k == "keepalive" && !(min..=max).contains(&d) {
            return Err(format!("keepalive {d} is out of range ({min} to {max})"));
        }
        *slot = Some(d);
    }
    Ok(t)
}

/// The value of option `key`, if given.
fn option<'a>(opts: &[(&str, &'a str)], key: &str) -> Option<&'a str> {
    opts.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

fn serial(d: &mut Draft, a: &mut Args, loc: Loc) -> Result<(), String> {
    let device = value::path(a.next("device")?, "serial")?;
    let opts = a.options(&["baud", LINK_OPTIONS[0], LINK_OPTIONS[1]])?;
    let baud = match option(&opts, "baud") {
        Some(b) => baud(b)?,
        None => 115_200,
    };
    push_medium(d, MediumDraft::Serial { device, baud }, link_timing(&opts)?, loc)
}

/// Before the first kernel flag `hapair.serial=`, the file's serial lines are forgotten.
fn forget_serial(d: &mut Draft) {
    d.media.retain(|(m, _, _)| !matches!(m, MediumDraft::Serial { .. }));
}

fn push_medium(d: &mut Draft, m: MediumDraft, t: LinkTiming, loc: Loc) -> Result<(), String> {
    d.media.push((m, t, loc));
    Ok(())
}

fn bcast(d: &mut Draft, a: &mut Args, loc: Loc) -> Result<(), String> {
    let iface = value::ifname(a.next("interface")?, "bcast")?;
    let timing = link_timing(&a.options(&LINK_OPTIONS)?)?;
    push_medium(d, MediumDraft::Bcast { iface }, timing, loc)
}

fn mcast(d: &mut Draft, a: &mut Args, loc: Loc) -> Result<(), String> {
    let iface = value::ifname(a.next("interface")?, "mcast")?;
    let g = a.next("group")?;
    let group = value::multicast(g, "mcast group")?;
    let opts = a.options(&["ttl", LINK_OPTIONS[0], LINK_OPTIONS[1]])?;
    let ttl = match option(&opts, "ttl") {
        Some(t) => number(t, "mcast ttl", 1, 255)? as u8,
        None => 1,
    };
    push_medium(d, MediumDraft::Mcast { iface, group, ttl }, link_timing(&opts)?, loc)
}

fn baud(word: &str) -> Result<u32, String> {
    const RATES: [u32; 11] =
        [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600];
    match word.parse::<u32>() {
        Ok(b) if RATES.contains(&b) => Ok(b),
        _ => Err(format!("bad baud rate \"{word}\" for serial (one of {RATES:?})")),
    }
}

/// `ucast IF ADDR [ADDR]`: lines for the same interface are merged into one medium.
fn ucast(d: &mut Draft, a: &mut Args, loc: Loc) -> Result<(), String> {
    let iface = value::ifname(a.next("interface")?, "ucast")?;
    let mut addrs = vec![value::unicast(a.next("address")?, "ucast")?];
    if let Some(w) = a.peek().filter(|w| !LINK_OPTIONS.contains(w)) {
        a.pos += 1;
        addrs.push(value::unicast(w, "ucast")?);
    }
    let timing = link_timing(&a.options(&LINK_OPTIONS)?)?;
    for (m, have_timing, _) in &mut d.media {
        if let MediumDraft::Ucast { iface: i, addrs: have } = m
            && *i == iface
        {
            have.extend(addrs);
            return merge_timing(have_timing, timing, &iface);
        }
    }
    push_medium(d, MediumDraft::Ucast { iface, addrs }, timing, loc)
}

/// The timing of a second `ucast` line of one interface: what it sets must agree with the
/// first (they are one link).
fn merge_timing(have: &mut LinkTiming, new: LinkTiming, iface: &str) -> Result<(), String> {
    for (name, slot, v) in [
        ("keepalive", &mut have.keepalive, new.keepalive),
        ("deadtime", &mut have.deadtime, new.deadtime),
    ] {
        match (*slot, v) {
            (Some(old), Some(v)) if old != v => {
                return Err(format!(
                    "ucast {iface}: {name} {v} differs from the {old} of an earlier line of \
                     this interface (one link, one timing)"
                ));
            }
            (_, Some(v)) => *slot = Some(v),
            _ => {}
        }
    }
    Ok(())
}

/// `home` and `auto_failback` are the defaults of every group: in the file they come before
/// the first `group` line, where they cannot be mistaken for a group's own (a kernel flag is
/// pair-wide, so it sets the default too). Returns `loc` for the line to be kept.
fn before_groups(d: &Draft, a: &Args, loc: Loc) -> Result<Loc, String> {
    match d.groups.first() {
        Some((_, first)) if !loc.cmdline => Err(format!(
            "{0} after a group line: the default of every group goes before the first one \
             (line {1}), a group's own on its line (group NAME {0} ...)",
            a.directive, first.line
        )),
        _ => Ok(loc),
    }
}

/// `group NAME [home NODE] [auto_failback on|off]`: the resources after it are its. The
/// cross-checks (`validate`) see to the rest (names, homes, empty groups).
fn group(d: &mut Draft, a: &mut Args, loc: Loc) -> Result<(), String> {
    let name = value::group_name(a.next("group name")?)?;
    let mut g = GroupDraft { name, home: None, auto_failback: None, first: d.resources.len() };
    for (k, v) in a.options(&["home", "auto_failback"])? {
        match k {
            "home" => g.home = Some(value::name(v, "node name")?),
            _ => g.auto_failback = Some(value::on_off(v, "auto_failback")?),
        }
    }
    push(&mut d.groups, g, loc)
}

fn resource(d: &mut Draft, a: &mut Args, loc: Loc) -> Result<(), String> {
    let r = match a.next("kind (ip, exec, lsb, ocf or drbd)")? {
        "ip" => Resource::Ip(ip_resource(a)?),
        "exec" => Resource::Exec(exec_resource(a)?),
        "lsb" => {
            let name = value::name(a.next("script name")?, "lsb script name")?;
            Resource::Lsb { name }
        }
        "ocf" => Resource::Ocf(ocf_resource(a)?),
        "drbd" => {
            let name = value::name(a.next("DRBD resource name")?, "drbd resource name")?;
            Resource::Drbd { name }
        }
        k => return Err(format!("unknown resource kind \"{k}\" (ip, exec, lsb, ocf or drbd)")),
    };
    d.resources.push((r, loc));
    Ok(())
}

fn ip_resource(a: &mut Args) -> Result<IpResource, String> {
    let w = a.next("ADDRESS/PREFIX")?;
    let (addr, prefix) = value::prefix(w, "resource ip")?;
    let mut r = IpResource {
        name: addr.to_string(),
        addr,
        prefix,
        dev: String::new(),
        garp: 5,
        garp_interval: Duration::from_millis(200),
        garp_refresh: Duration::ZERO,
    };
    for (k, v) in a.options(&["dev", "garp", "garp_interval", "garp_refresh", "name"])? {
        match k {
            "dev" => r.dev = value::ifname(v, "resource ip dev")?,
            "garp" => r.garp = number(v, "garp", 0, 100)? as u32,
            "garp_interval" => r.garp_interval = duration(v, "garp_interval")?,
            "garp_refresh" => r.garp_refresh = duration(v, "garp_refresh")?,
            // The default name, the address itself, as `check --print` writes it (an IPv6
            // address is no valid name otherwise).
            _ if v == r.name => {}
            _ => r.name = value::name(v, "resource name")?,
        }
    }
    if r.dev.is_empty() {
        return Err(format!("missing dev IF for resource ip {w}"));
    }
    Ok(r)
}

fn exec_resource(a: &mut Args) -> Result<ExecResource, String> {
    let name = value::name(a.next("resource name")?, "resource name")?;
    let mut r = ExecResource {
        name,
        start: String::new(),
        stop: String::new(),
        monitor: None,
        timeout: Duration::from_secs(20),
    };
    while let Some(w) = a.peek() {
        a.pos += 1;
        if w == "timeout" {
            r.timeout = duration(a.next("value of timeout")?, "exec timeout")?;
            continue;
        }
        let Some((k, v)) = w.split_once('=') else {
            return Err(format!("unexpected \"{w}\" in resource exec (start=, stop=, monitor=)"));
        };
        if v.trim().is_empty() {
            return Err(format!("empty command for {k}= in resource exec {}", r.name));
        }
        match k {
            "start" => r.start = v.to_string(),
            "stop" => r.stop = v.to_string(),
            "monitor" => r.monitor = Some(v.to_string()),
            _ => {
                return Err(format!(
                    "unknown action \"{k}\" in resource exec (start, stop, monitor)"
                ));
            }
        }
    }
    if r.start.is_empty() || r.stop.is_empty() {
        return Err(format!("resource exec {} needs start=\"CMD\" and stop=\"CMD\"", r.name));
    }
    if r.timeout == Duration::ZERO {
        return Err("exec timeout must be longer than 0".into());
    }
    Ok(r)
}

fn ocf_resource(a: &mut Args) -> Result<OcfResource, String> {
    let w = a.next("PROVIDER:AGENT")?;
    let Some((p, ag)) = w.split_once(':') else {
        return Err(format!("bad OCF agent \"{w}\" (use PROVIDER:AGENT, e.g. heartbeat:IPaddr2)"));
    };
    let provider = value::name(p, "OCF provider")?;
    let agent = value::name(ag, "OCF agent")?;
    let mut r = OcfResource { name: agent.clone(), provider, agent, params: heapless::Vec::new() };
    while let Some(w) = a.peek() {
        a.pos += 1;
        if w == "name" {
            r.name = value::name(a.next("value of name")?, "resource name")?;
            continue;
        }
        let Some((k, v)) = w.split_once('=') else {
            return Err(format!("unexpected \"{w}\" in resource ocf (KEY=VALUE or name N)"));
        };
        let k = value::name(k, "OCF parameter name")?;
        if r.params.iter().any(|(have, _)| *have == k) {
            return Err(format!("OCF parameter {k} given twice"));
        }
        if r.params.push((k, v.to_string())).is_err() {
            return Err(format!("too many OCF parameters (at most {AGENT_PARAMS_MAX})"));
        }
    }
    Ok(r)
}

fn restart_limit(d: &mut Draft, a: &mut Args, loc: Loc) -> Result<(), String> {
    let count = number(a.next("count")?, "restart_limit count", 0, 1000)? as u32;
    match a.next("\"in\"")? {
        "in" => {}
        w => return Err(format!("expected \"in\" after restart_limit {count}, found \"{w}\"")),
    }
    let window = duration(a.next("window")?, "restart_limit window")?;
    if window == Duration::ZERO {
        return Err("restart_limit window must be longer than 0".into());
    }
    put(&mut d.restart_limit, RestartLimit { count, window }, loc)
}

fn watchdog(d: &mut Draft, a: &mut Args, loc: Loc) -> Result<(), String> {
    let device = value::path(a.next("device")?, "watchdog")?;
    let mut timeout = Duration::from_secs(10);
    if let Some((_, w)) = a.options(&["timeout"])?.first() {
        timeout = duration(w, "watchdog timeout")?;
        let ms = timeout.total_millis();
        if !ms.is_multiple_of(1000) || !(1000..=600_000).contains(&ms) {
            return Err(format!("bad watchdog timeout \"{w}\" (whole seconds, 1s to 10m)"));
        }
    }
    put(&mut d.watchdog, Watchdog { device, timeout }, loc)
}

fn hwmon(d: &mut Draft, a: &mut Args, loc: Loc) -> Result<(), String> {
    let chip = value::name(a.next("chip")?, "hwmon chip")?;
    let mut root = PathBuf::from("/sys/class/hwmon");
    if let Some((_, w)) = a.options(&["root"])?.first() {
        root = value::path(w, "hwmon root")?;
    }
    d.hwmon.push((Hwmon { chip, root }, loc));
    Ok(())
}

fn sensor(d: &mut Draft, a: &mut Args, loc: Loc) -> Result<(), String> {
    let w = a.next("CHIP/INPUT")?;
    let Some((c, i)) = w.split_once('/') else {
        return Err(format!("bad sensor \"{w}\" (use CHIP/INPUT, e.g. lm78/temp1)"));
    };
    let chip = value::name(c, "sensor chip")?;
    let input = value::name(i, "sensor input")?;
    let mut s = Sensor { chip, input, min_milli: None, max_milli: None, crit_milli: None };
    for (k, v) in a.options(&["min", "max", "crit"])? {
        let m = Some(value::milli(v, &format!("sensor {k}"))?);
        match k {
            "min" => s.min_milli = m,
            "max" => s.max_milli = m,
            _ => s.crit_milli = m,
        }
    }
    if s.min_milli.is_none() && s.max_milli.is_none() && s.crit_milli.is_none() {
        return Err(format!("sensor {w} sets no limit (min, max or crit)"));
    }
    let order = [s.min_milli, s.max_milli, s.crit_milli];
    let set: Vec<i64> = order.iter().flatten().copied().collect();
    if set.windows(2).any(|p| p[0] > p[1]) {
        return Err(format!("sensor {w} limits are out of order (need min <= max <= crit)"));
    }
    d.sensors.push((s, loc));
    Ok(())
}

fn ping(d: &mut Draft, a: &mut Args, loc: Loc) -> Result<(), String> {
    d.ping.push((value::ping_node(a.next("address")?)?, loc));
    while let Some(w) = a.peek() {
        a.pos += 1;
        d.ping.push((value::ping_node(w)?, loc));
    }
    Ok(())
}

fn check(d: &mut Draft, a: &mut Args, loc: Loc) -> Result<(), String> {
    let name = value::name(a.next("check name")?, "check name")?;
    let command = a.next("command")?.to_string();
    if command.trim().is_empty() {
        return Err(format!("empty command for check {name}"));
    }
    let mut c =
        Check { name, command, interval: Duration::from_secs(10), timeout: Duration::from_secs(5) };
    for (k, v) in a.options(&["interval", "timeout"])? {
        let t = duration(v, &format!("check {k}"))?;
        if t == Duration::ZERO {
            return Err(format!("check {k} must be longer than 0"));
        }
        if k == "interval" { c.interval = t } else { c.timeout = t }
    }
    d.checks.push((c, loc));
    Ok(())
}

fn errors(d: &mut Draft, a: &mut Args, loc: Loc) -> Result<(), String> {
    use crate::health::errors::ErrorKind;
    let kind = match a.next("edac, net or disk")? {
        "edac" => ErrorKind::Edac,
        "net" => ErrorKind::Net,
        "disk" => ErrorKind::Disk,
        w => return Err(format!("bad errors source \"{w}\" (edac, net IF or disk DEV)")),
    };
    let name = match kind {
        ErrorKind::Edac => String::new(),
        ErrorKind::Net => value::name(a.next("interface")?, "errors net interface")?,
        ErrorKind::Disk => value::name(a.next("block device")?, "errors disk device")?,
    };
    let mut e = Errors {
        kind,
        name,
        max: 10,
        window: Duration::from_secs(3600),
        root: PathBuf::from("/sys"),
        report: None,
    };
    let (mut max_seen, mut root_seen) = (false, false);
    while let Some(k) = a.peek() {
        a.pos += 1;
        match k {
            "max" if !max_seen => {
                max_seen = true;
                e.max = number(a.next("count")?, "errors max", 0, 1_000_000)? as u32;
                match a.next("\"in\"")? {
                    "in" => {}
                    w => {
                        return Err(format!(
                            "expected \"in\" after errors max {}, found \"{w}\"",
                            e.max
                        ));
                    }
                }
                e.window = duration(a.next("window")?, "errors window")?;
                if e.window < Duration::from_secs(1) {
                    return Err(format!("bad errors window {} (1s to 24h)", e.window));
                }
            }
            "root" if !root_seen => {
                root_seen = true;
                e.root = value::path(a.next("value of root")?, "errors root")?;
            }
            "report" if e.report.is_none() && kind == ErrorKind::Net => {
                e.report = Some(match a.next("link or node")? {
                    "link" => ErrorReport::Link,
                    "node" => ErrorReport::Node,
                    w => return Err(format!("bad errors report \"{w}\" (link or node)")),
                });
            }
            "report" if kind != ErrorKind::Net => {
                return Err(format!("report is for errors net only, not {kind}"));
            }
            "max" | "root" | "report" => {
                return Err(format!("option {k} given twice for errors"));
            }
            _ => {
                let options =
                    if kind == ErrorKind::Net { "max, root, report" } else { "max, root" };
                return Err(format!("unknown option \"{k}\" for errors (expected {options})"));
            }
        }
    }
    d.errors.push((e, loc));
    Ok(())
}

fn ipmi(d: &mut Draft, a: &mut Args, loc: Loc) -> Result<(), String> {
    let mut device = PathBuf::from("/dev/ipmi0");
    if let Some((_, w)) = a.options(&["device"])?.first() {
        device = value::path(w, "ipmi device")?;
    }
    put(&mut d.ipmi, Ipmi { device }, loc)
}

fn fence(d: &mut Draft, a: &mut Args, loc: Loc) -> Result<(), String> {
    let first = a.next("\"watchdog\" or a command")?;
    let f = if first == "watchdog" {
        Fence::Watchdog
    } else {
        let mut argv = heapless::Vec::new();
        for w in std::iter::once(first).chain(a.words[a.pos..].iter().map(String::as_str)) {
            if w.is_empty() || argv.push(w.to_string()).is_err() {
                return Err(format!("bad fence command (1 to {FENCE_ARGS_MAX} non-empty words)"));
            }
        }
        a.pos = a.words.len();
        Fence::Command(argv)
    };
    put(&mut d.fence, f, loc)
}

fn realtime(d: &mut Draft, a: &mut Args, loc: Loc) -> Result<(), String> {
    let on = value::on_off(a.next("on|off")?, "realtime")?;
    let mut rt = Realtime { priority: 50 };
    if let Some((_, w)) = a.options(&["priority"])?.first() {
        rt.priority = number(w, "realtime priority", 1, 99)? as u8;
    }
    put(&mut d.realtime, on.then_some(rt), loc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Medium;
    use crate::config::{Cmdline, Config, parse_bytes, parse_str};

    const BASE: &str = "node a\nnode b\nauthkey /k\n";

    fn parse(extra: &str) -> Result<Config, String> {
        parse_str(&format!("{BASE}{extra}"), Path::new("t.conf")).map_err(|e| e.to_string())
    }

    #[test]
    fn errors_lines_take_defaults_and_name_bad_values_by_line() {
        use crate::health::errors::ErrorKind;
        let c =
            parse("bcast eth0\nerrors edac\nerrors net eth1 max 3 in 10s root /tmp/s\n").unwrap();
        let e = &c.health.errors;
        assert_eq!((e[0].kind, e[0].name.as_str(), e[0].max), (ErrorKind::Edac, "", 10));
        assert_eq!(
            (e[0].window, e[0].root.as_path()),
            (Duration::from_secs(3600), Path::new("/sys"))
        );
        assert_eq!((e[1].kind, e[1].name.as_str(), e[1].max), (ErrorKind::Net, "eth1", 3));
        assert_eq!(
            (e[1].window, e[1].root.as_path()),
            (Duration::from_secs(10), Path::new("/tmp/s"))
        );
        assert_eq!(parse_str(&c.to_string(), Path::new("p.conf")).unwrap(), c);
        for (line, want) in [
            ("errors cpu", "t.conf:4: bad errors source \"cpu\""),
            ("errors net", "t.conf:4: missing interface for errors"),
            ("errors disk sda max x in 1h", "t.conf:4: bad number \"x\" for errors max"),
            ("errors edac max 3 per 1h", "t.conf:4: expected \"in\" after errors max 3"),
            ("errors edac max 3 in 0s", "t.conf:4: bad errors window 0s"),
            ("errors edac max 3 in 2d", "t.conf:4: bad duration \"2d\" for errors window"),
            ("errors edac root", "t.conf:4: missing value of root for errors"),
            ("errors edac max 1 in 1s max 2 in 1s", "t.conf:4: option max given twice"),
            ("errors edac limit 3", "t.conf:4: unknown option \"limit\" for errors"),
            ("errors edac\nerrors edac max 1 in 1s", "t.conf:5: duplicate errors source edac"),
        ] {
            let got = parse(&format!("{line}\nbcast eth0\n")).unwrap_err();
            assert!(got.starts_with(want), "{line}: {got}");
        }
    }

    /// `errors net IF` reports to the links of a crossover (an interface with heartbeats and
    /// no `ip` resource) and to the node elsewhere, unless its line says.
    #[test]
    fn nic_errors_report_to_the_crossover_links_or_the_node() {
        let text = "ucast xover0 192.0.2.1 192.0.2.2\nbcast lan0\n\
            resource ip 198.51.100.9/24 dev lan0\nerrors net xover0\nerrors net lan0\n\
            errors net eth9\nerrors edac\n";
        let c = parse(text).unwrap();
        let reports: Vec<_> = c.health.errors.iter().map(|e| e.report).collect();
        let (link, node) = (Some(ErrorReport::Link), Some(ErrorReport::Node));
        assert_eq!(reports, [link, node, node, None], "crossover, service LAN, other, edac");
        assert!(c.health.errors[0].on_link() && !c.health.errors[1].on_link());
        // Written out, so `check --print` shows what applies; and it parses back.
        let printed = c.to_string();
        assert!(printed.contains("errors net xover0 max 10 in 60m root /sys report link\n"));
        assert_eq!(parse_str(&printed, Path::new("p.conf")).unwrap(), c);
        // Said on the line, it stands.
        let said = parse(&text.replace("errors net xover0", "errors net xover0 report node"));
        assert_eq!(said.unwrap().health.errors[0].report, node);
        for (line, want) in [
            ("errors net eth1 report both", "t.conf:4: bad errors report \"both\" (link or node)"),
            ("errors edac report link", "t.conf:4: report is for errors net only, not edac"),
            ("errors net eth1 report link report node", "t.conf:4: option report given twice"),
            (
                "errors net eth1 limit 1",
                "t.conf:4: unknown option \"limit\" for errors (expected max, root, report)",
            ),
        ] {
            let got = parse(&format!("{line}\nbcast eth0\n")).unwrap_err();
            assert!(got.starts_with(want), "{line}: {got}");
        }
    }

    #[test]
    fn an_ipmi_line_takes_its_device_and_round_trips() {
        let c = parse("bcast eth0\nipmi\n").unwrap();
        let device = c.health.ipmi.as_ref().map(|i| i.device.as_path());
        assert_eq!(device, Some(Path::new("/dev/ipmi0")));
        assert!(c.to_string().contains("\nipmi device /dev/ipmi0\n"));
        assert_eq!(parse_str(&c.to_string(), Path::new("p.conf")).unwrap(), c);
        let d = parse("bcast eth0\nipmi device /dev/ipmi1\n").unwrap();
        let device = d.health.ipmi.as_ref().map(|i| i.device.as_path());
        assert_eq!(device, Some(Path::new("/dev/ipmi1")));
        assert_eq!(parse("bcast eth0\n").unwrap().health.ipmi, None);
        for (line, want) in [
            ("ipmi dev /dev/ipmi0", "t.conf:4: unknown option \"dev\" for ipmi (expected device)"),
            ("ipmi device", "t.conf:4: missing value of device for ipmi"),
            ("ipmi device ipmi0", "t.conf:4: path \"ipmi0\" for ipmi device must be absolute"),
            ("ipmi\nipmi", "t.conf:5: "),
        ] {
            let got = parse(&format!("{line}\nbcast eth0\n")).unwrap_err();
            assert!(got.starts_with(want), "{line}: {got}");
        }
    }

    #[test]
    fn ucast_lines_merge_per_interface() {
        let c = parse("ucast eth1 192.0.2.1\nbcast eth0\nucast eth1 192.0.2.2\n").unwrap();
        let a = [IpAddr::from([192, 0, 2, 1]), IpAddr::from([192, 0, 2, 2])];
        assert_eq!(c.pair.media[0], Medium::Ucast { iface: "eth1".into(), addrs: a });
        assert_eq!(c.pair.media.len(), 2);
    }

    /// SPEC §7.7: `mcast` takes IPv6 groups (the hop limit from `ttl`) and `ping` IPv6
    /// addresses, mixed with IPv4 ones; both print and parse back as they were.
    #[test]
    fn ipv6_mcast_groups_and_ping_nodes() {
        let c = parse(
            "mcast eth1 ff02::1:694\nmcast eth2 ff05::694 ttl 4\nmcast eth1 239.0.0.94\n\
             ping 192.0.2.254 2001:db8::fe\n",
        )
        .unwrap();
        let group = |s: &str| s.parse::<IpAddr>().unwrap();
        let mcast =
            |iface: &str, g: &str, ttl| Medium::Mcast { iface: iface.into(), group: group(g), ttl };
        assert_eq!(
            c.pair.media[..],
            [
                mcast("eth1", "ff02::1:694", 1),
                mcast("eth2", "ff05::694", 4),
                mcast("eth1", "239.0.0.94", 1)
            ]
        );
        assert_eq!(c.pair.media[0].label(), "mcast eth1 ff02::1:694");
        assert_eq!(c.health.ping[..], [group("192.0.2.254"), group("2001:db8::fe")]);
        let text = c.to_string();
        assert!(text.contains("\nmcast eth2 ff05::694 ttl 4\n"), "{text}");
        assert_eq!(parse_str(&text, Path::new("p.conf")).unwrap(), c);
        // Another interface or another group is another medium; the same one twice is not.
        assert!(
            parse("mcast eth1 ff02::1:694\nmcast eth1 ff02::1:694\n")
                .unwrap_err()
                .starts_with("t.conf:5: duplicate medium mcast eth1 ff02::1:694")
        );
        for (line, want) in [
            ("mcast eth1 2001:db8::1", "mcast group 2001:db8::1 is not a multicast address"),
            ("mcast eth1 ff01::694", "mcast group ff01::694 is interface-local"),
            ("mcast eth1 ff00::694", "mcast group ff00::694 has a reserved scope"),
            ("mcast eth1 ff0f::694", "mcast group ff0f::694 has a reserved scope"),
            ("mcast eth1 ff02::1:694%eth1", "bad address \"ff02::1:694%eth1\" for mcast group"),
            ("mcast eth1 ff02::1:694 ttl 0", "mcast ttl 0 is out of range (1..255)"),
            ("mcast eth1 ff02::1:694 ttl 256", "mcast ttl 256 is out of range (1..255)"),
            ("ping fe80::1", "ping node fe80::1 is link-local"),
            ("ping 2001:db8::fe ff02::1", "address ff02::1 for ping is not a unicast address"),
            ("ping ::ffff:192.0.2.1", "ping node ::ffff:192.0.2.1 is IPv4-mapped"),
        ] {
            let got = parse(&format!("{line}\nbcast eth0\n")).unwrap_err();
            assert!(got.starts_with(&format!("t.conf:4: {want}")), "{line}: {got}");
        }
    }

    #[test]
    fn errors_name_the_line_and_word() {
        assert_eq!(
            parse("bcast eth0\nmcast eth0\n").unwrap_err(),
            "t.conf:5: missing group for mcast (see the README for its syntax)"
        );
        assert_eq!(
            parse("bcast eth0\nserial /dev/ttyS0 speed 9600\n").unwrap_err(),
            "t.conf:5: unknown option \"speed\" for serial (expected baud, keepalive, deadtime)"
        );
        assert_eq!(
            parse("bcast eth0\nwatchdog /dev/watchdog timeout 2s timeout 3s\n").unwrap_err(),
            "t.conf:5: option timeout given twice for watchdog"
        );
        assert!(
            parse("bcast eth0\nresource ocf Filesystem\n").unwrap_err().contains("PROVIDER:AGENT")
        );
    }

    #[test]
    fn control_group_is_node_local_and_round_trips() {
        let without = parse("bcast eth0\n").unwrap();
        assert_eq!(without.local.control_group, None);
        let with = parse("bcast eth0\ncontrol_group hapair-admins\n").unwrap();
        assert_eq!(with.local.control_group.as_deref(), Some("hapair-admins"));
        // Each node's own business, like `control`: the digest does not see it.
        assert_eq!(with.digest(), without.digest());
        let text = with.to_string();
        assert!(text.contains("\ncontrol_group hapair-admins\n"), "{text}");
        assert_eq!(parse_str(&text, Path::new("p.conf")).unwrap(), with);
        assert_eq!(parse_str(&without.to_string(), Path::new("p.conf")).unwrap(), without);
        let flag = Cmdline::parse(b"hapair.control_group=wheel", Path::new("c")).unwrap();
        let text = format!("{BASE}bcast eth0\ncontrol_group adm\n");
        let c = parse_bytes(text.as_bytes(), Path::new("t.conf"), &flag).unwrap();
        assert_eq!(c.local.control_group.as_deref(), Some("wheel"));
        assert_eq!(
            parse("bcast eth0\ncontrol_group a/b\n").unwrap_err(),
            "t.conf:5: bad group name \"a/b\" (letters, digits, '-', '_' and '.', at most 64 bytes)"
        );
        assert!(parse("bcast eth0\ncontrol_group\n").unwrap_err().contains("missing group name"));
    }

    /// `check --print` writes every ip resource's name, the default (its address) included;
    /// that text must parse back, for IPv6 too (found by the config fuzz target:
    /// tests/fuzz/corpus/config/crash-ipv6-ip-default-name).
    #[test]
    fn an_ip_resource_named_by_its_address_round_trips() {
        let c = parse("bcast eth0\nresource ip 2001:db8::100/64 dev eth0\n").unwrap();
        let Resource::Ip(ip) = &c.resources[0] else { panic!("{:?}", c.resources) };
        assert_eq!(ip.name, "2001:db8::100");
        let text = c.to_string();
        assert!(text.contains(" name 2001:db8::100\n"), "{text}");
        assert_eq!(parse_str(&text, Path::new("p.conf")).unwrap(), c);
        // Only the address itself: another address, or another spelling, is no name.
        let other = parse("bcast eth0\nresource ip 2001:db8::100/64 dev eth0 name 2001:db8::1\n");
        assert!(other.unwrap_err().contains("bad resource name"));
        let upper = parse("bcast eth0\nresource ip 2001:db8::100/64 dev eth0 name 2001:DB8::100\n");
        assert!(upper.unwrap_err().contains("bad resource name"));
    }

    /// Every directive once, each with a value that `EDITS` changes.
    const FULL: &str = "node a\nnode b\nkeepalive 100ms\nwarntime 300ms\ndeadtime 1s\n\
        initdead 10s\nauthkey /k\nudpport 694\ncontrol /run/h.sock\ncontrol_group adm\n\
        statedir /var/lib/h\nserial /dev/ttyS0\nbcast eth0\nmcast eth1 239.0.0.1\n\
        ucast eth2 192.0.2.1 192.0.2.2\nhome a\nauto_failback off\n\
        group g home a auto_failback on\nresource lsb apache2\n\
        monitor_interval 5s\nrestart_limit 3 in 10m\nwatchdog /dev/watchdog timeout 10s\n\
        hwmon lm78\nsensor lm78/temp1 max 70\nraid /proc/mdstat\nping 192.0.2.254\n\
        check c \"true\"\nerrors edac max 10 in 1h\nipmi device /dev/ipmi0\nfence watchdog\nfence_delay 3s\nnotify /n\nrealtime off\n";

    /// For each directive, a line of `FULL` and another value for it.
    const EDITS: &[(&str, &str, &str)] = &[
        ("node", "node b", "node c"),
        ("keepalive", "keepalive 100ms", "keepalive 200ms"),
        ("warntime", "warntime 300ms", "warntime 400ms"),
        ("deadtime", "deadtime 1s", "deadtime 2s"),
        ("initdead", "initdead 10s", "initdead 20s"),
        ("authkey", "authkey /k", "authkey /k2"),
        ("udpport", "udpport 694", "udpport 695"),
        ("control", "control /run/h.sock", "control /run/i.sock"),
        ("control_group", "control_group adm", "control_group wheel"),
        ("statedir", "statedir /var/lib/h", "statedir /var/lib/i"),
        ("serial", "serial /dev/ttyS0", "serial /dev/ttyS1"),
        ("bcast", "bcast eth0", "bcast eth3"),
        ("mcast", "239.0.0.1", "239.0.0.2"),
        ("ucast", "192.0.2.2\n", "192.0.2.3\n"),
        ("home", "\nhome a", "\nhome b"),
        ("auto_failback", "auto_failback off", "auto_failback on"),
        ("group", "group g ", "group h "),
        ("resource", "lsb apache2", "lsb nginx"),
        ("monitor_interval", "monitor_interval 5s", "monitor_interval 6s"),
        ("restart_limit", "restart_limit 3", "restart_limit 4"),
        ("watchdog", "timeout 10s", "timeout 11s"),
        ("hwmon", "hwmon lm78", "hwmon it87"),
        ("sensor", "max 70", "max 71"),
        ("raid", "raid /proc/mdstat", "raid /proc/md"),
        ("ping", "192.0.2.254", "192.0.2.253"),
        ("check", "\"true\"", "\"false\""),
        ("errors", "errors edac max 10", "errors edac max 11"),
        ("ipmi", "ipmi device /dev/ipmi0", "ipmi device /dev/ipmi1"),
        ("fence", "fence watchdog", "fence /bin/true"),
        ("fence_delay", "fence_delay 3s", "fence_delay 4s"),
        ("notify", "notify /n", "notify /m"),
        ("realtime", "realtime off", "realtime on"),
    ];

    /// The table's `part` and `reload` columns say what the code does: a change to one
    /// directive changes its part of `Config` and nothing else, the digest exactly when the
    /// part is digested, and what a reload reports exactly in its row's group.
    #[test]
    fn each_directive_lives_in_its_part_and_the_digest_and_reload_follow_its_row() {
        let base = parse_str(FULL, Path::new("t.conf")).unwrap();
        let printed = base.to_string();
        assert_eq!(EDITS.len(), DIRECTIVES.len());
        for d in DIRECTIVES {
            let name = d.name;
            let Some((_, from, to)) = EDITS.iter().find(|(n, ..)| *n == name) else {
                panic!("no edit for {name}")
            };
            let written = printed.lines().any(|l| l.starts_with(&format!("{name} ")));
            assert!(written, "{name} is not in the canonical text:\n{printed}");
            assert_eq!(FULL.matches(from).count(), 1, "{from}");
            let new = parse_str(&FULL.replace(from, to), Path::new("t.conf"));
            let new = new.unwrap_or_else(|e| panic!("{name}: {e}"));
            let changed: Vec<Part> = [
                (Part::Pair, base.pair != new.pair),
                (Part::Local, base.local != new.local),
                (Part::Health, base.health != new.health),
                (Part::Groups, base.groups != new.groups),
                (Part::Resources, base.resources != new.resources),
            ]
            .into_iter()
            .filter_map(|(p, c)| c.then_some(p))
            .collect();
            // A serial line is node-local (its device is each node's own), but it is kept
            // among the media, whose order numbers the links (`Config`).
            let holder = if name == "serial" { Part::Pair } else { d.part };
            assert_eq!(changed, [holder], "{name}");
            assert_eq!(base.digest() != new.digest(), d.part.digested(), "digest and {name}");
            let restarts = base.restarts_needed(&new);
            match d.reload {
                Reload::Restart(r) => assert_eq!(restarts, [r], "{name}"),
                Reload::Live | Reload::Resources => assert_eq!(restarts, [], "{name}"),
            }
            // What the loop applies in place (`Daemon::reload`): the health sources, notify.
            let live = new.health != base.health || new.local.notify != base.local.notify;
            assert_eq!(d.reload == Reload::Live, live, "{name}");
            assert_eq!(d.reload == Reload::Resources, d.part == Part::Resources, "{name}");
        }
    }

    /// The README's configuration reference documents every directive of the table, with
    /// its syntax, and nothing else.
    #[test]
    fn the_readme_documents_every_directive() {
        let readme = include_str!("../../README.md").replace("\\|", "|");
        let (_, reference) = readme.split_once("\n## Configuration reference\n").unwrap();
        let (reference, _) = reference.split_once("\n### Configuration digest\n").unwrap();
        for d in DIRECTIVES {
            for alternative in d.syntax.split(" | ") {
                let usage = format!("`{} {alternative}`", d.name);
                assert!(reference.contains(&usage), "the README does not document {usage}");
            }
        }
        let rows = reference.lines().filter_map(|l| l.strip_prefix("| `"));
        for row in rows {
            let name = row.split([' ', '`']).next().unwrap_or(row);
            assert!(directive(name).is_some(), "the README documents no directive {name}");
        }
    }

    /// Directive names in backquotes in `text`, in order.
    fn quoted_directives(text: &str) -> Vec<&str> {
        text.split('`').skip(1).step_by(2).filter(|w| directive(w).is_some()).collect()
    }

    fn names(keep: impl Fn(&Directive) -> bool) -> Vec<&'static str> {
        DIRECTIVES.iter().filter(|d| keep(d)).map(|d| d.name).collect()
    }

    /// The README's lists of kernel flags, of what the digest covers and of what a reload
    /// applies at once are the table's.
    #[test]
    fn the_readme_lists_are_the_tables() {
        let readme = include_str!("../../README.md");
        let section = |from: &str, to: &str| {
            let (_, s) = readme.split_once(from).unwrap();
            s.split_once(to).unwrap().0
        };
        let flags = section("replaces the file's `KEY` directive", "whose flag");
        let (once, lists) = flags.split_once(" and for ").unwrap();
        assert_eq!(quoted_directives(once), names(|d| matches!(d.lines, Lines::Once)));
        let replaced = names(|d| matches!(d.lines, Lines::Replaced(_)));
        assert_eq!(quoted_directives(lists), replaced);
        let digest = section("### Configuration digest", "`check --print` shows it");
        let (digested, left_out) = digest.split_once("are left out").unwrap();
        assert_eq!(quoted_directives(digested), names(|d| d.part.digested()));
        assert_eq!(quoted_directives(left_out), names(|d| !d.part.digested()));
        let reload = section("An invalid file is refused", "at once");
        let mut live = quoted_directives(reload);
        live.sort_unstable();
        let mut want = names(|d| d.reload == Reload::Live);
        want.sort_unstable();
        assert_eq!(live, want);
    }

    #[test]
    fn kernel_flags_replace_lists_once_then_add() {
        let cmdline = Cmdline::parse(
            b"hapair.serial=/dev/pts/1 hapair.serial=\"/dev/pts/2 baud 9600\"",
            Path::new("c"),
        )
        .unwrap();
        let text = format!("{BASE}serial /dev/ttyS0\nbcast eth0\n");
        let c = parse_bytes(text.as_bytes(), Path::new("t.conf"), &cmdline).unwrap();
        let labels: Vec<String> = c.pair.media.iter().map(Medium::label).collect();
        assert_eq!(labels, ["bcast eth0", "serial /dev/pts/1", "serial /dev/pts/2"]);
        assert_eq!(c.pair.media[2], Medium::Serial { device: "/dev/pts/2".into(), baud: 9600 });
    }
}
