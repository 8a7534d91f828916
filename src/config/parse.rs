//! Directives: turns each line's words into a typed entry of a `Draft`, remembering the line
//! of every entry so that the cross-checks (`validate`) can name it. Kernel command-line
//! overrides go through the same directive parsers. No file I/O here.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::cmdline::Cmdline;
use super::value::{self, duration, number};
use super::{
    Check, Config, ConfigError, ExecResource, FENCE_ARGS_MAX, Fence, Hwmon, IpResource,
    OcfResource, Realtime, Resource, RestartLimit, Sensor, Watchdog, lex,
};
use crate::core::time::Duration;
use crate::limits::AGENT_PARAMS_MAX;

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
    pub fence: Slot<Fence>,
    pub notify: Slot<PathBuf>,
    pub realtime: Slot<Option<Realtime>>,
    pub media: Vec<(MediumDraft, Loc)>,
    pub resources: Vec<(Resource, Loc)>,
    pub hwmon: Vec<(Hwmon, Loc)>,
    pub sensors: Vec<(Sensor, Loc)>,
    pub ping: Vec<(IpAddr, Loc)>,
    pub checks: Vec<(Check, Loc)>,
    /// List directives already replaced by a kernel flag (a second flag adds to the first).
    replaced: Vec<&'static str>,
}

/// Directives that `hapair.KEY=VALUE` may set: those that appear at most once, plus `serial`
/// and `ping`, whose override replaces every line of that kind.
pub const OVERRIDABLE: &[&str] = &[
    "keepalive",
    "warntime",
    "deadtime",
    "initdead",
    "authkey",
    "udpport",
    "control",
    "control_group",
    "statedir",
    "home",
    "auto_failback",
    "monitor_interval",
    "restart_limit",
    "watchdog",
    "raid",
    "fence",
    "notify",
    "realtime",
    "serial",
    "ping",
];

/// Overridable directives that take exactly one word: a kernel flag's whole value is that
/// word (so a path may hold spaces). The other flags' values are split at spaces.
const ONE_WORD: &[&str] = &[
    "keepalive",
    "warntime",
    "deadtime",
    "initdead",
    "authkey",
    "udpport",
    "control",
    "control_group",
    "statedir",
    "home",
    "auto_failback",
    "monitor_interval",
    "raid",
    "notify",
];

/// Every directive name.
pub const KNOWN: &[&str] = &[
    "node",
    "keepalive",
    "warntime",
    "deadtime",
    "initdead",
    "authkey",
    "udpport",
    "control",
    "control_group",
    "statedir",
    "serial",
    "bcast",
    "mcast",
    "ucast",
    "home",
    "auto_failback",
    "resource",
    "monitor_interval",
    "restart_limit",
    "watchdog",
    "hwmon",
    "sensor",
    "raid",
    "ping",
    "check",
    "fence",
    "notify",
    "realtime",
];

/// Parses a whole configuration, applies the kernel flags in `cmdline`, and cross-checks.
pub fn parse_bytes(text: &[u8], file: &Path, cmdline: &Cmdline) -> Result<Config, ConfigError> {
    parse_located(text, file, cmdline).map(|(c, _)| c)
}

/// As [`parse_bytes`], and also where the `authkey` directive was (for the key file's errors).
pub fn parse_located(
    text: &[u8],
    file: &Path,
    cmdline: &Cmdline,
) -> Result<(Config, Loc), ConfigError> {
    let draft = parse_draft(text, file, cmdline)?;
    let authkey_at = draft.authkey.as_ref().map(|(_, l)| *l).unwrap_or_default();
    Ok((super::validate::validate(draft, file, &cmdline.path)?, authkey_at))
}

/// Where each `resource` line is, in group order (file lines, then kernel flags).
pub fn resource_locations(
    text: &[u8],
    file: &Path,
    cmdline: &Cmdline,
) -> Result<Vec<Loc>, ConfigError> {
    Ok(parse_draft(text, file, cmdline)?.resources.iter().map(|(_, l)| *l).collect())
}

/// Where the `control_group` directive is (file line or kernel flag), for the error when the
/// group does not exist (`config::control_gid`).
pub fn control_group_location(
    text: &[u8],
    file: &Path,
    cmdline: &Cmdline,
) -> Result<Option<Loc>, ConfigError> {
    Ok(parse_draft(text, file, cmdline)?.control_group.map(|(_, l)| l))
}

fn parse_draft(text: &[u8], file: &Path, cmdline: &Cmdline) -> Result<Draft, ConfigError> {
    let mut draft = Draft::default();
    for (i, raw) in text.split(|&b| b == b'\n').enumerate() {
        let line = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let err = |m: String| ConfigError::new(file, line, m);
        let s = std::str::from_utf8(raw).map_err(|_| err("not valid UTF-8".into()))?;
        let s = s.strip_suffix('\r').unwrap_or(s);
        let words = lex::words(s, true).map_err(err)?;
        let Some((name, args)) = words.split_first() else { continue };
        let loc = Loc { line, cmdline: false };
        directive(&mut draft, name, args, loc).map_err(err)?;
    }
    for o in &cmdline.overrides {
        let loc = Loc { line: o.line, cmdline: true };
        let err = |m: String| ConfigError::new(&cmdline.path, o.line, m);
        if !OVERRIDABLE.contains(&o.key.as_str()) {
            return Err(err(format!("hapair.{} cannot be set on the kernel command line", o.key)));
        }
        let words: Vec<String> = if ONE_WORD.contains(&o.key.as_str()) {
            vec![o.value.clone()]
        } else {
            o.value.split_whitespace().map(str::to_string).collect()
        };
        draft.replace_list(&o.key);
        directive(&mut draft, &o.key, &words, loc).map_err(err)?;
    }
    Ok(draft)
}

/// Parses a configuration held in a string (no kernel flags).
pub fn parse_str(text: &str, file: &Path) -> Result<Config, ConfigError> {
    parse_bytes(text.as_bytes(), file, &Cmdline::empty())
}

impl Draft {
    /// Before the first kernel flag for a list directive, forgets the file's lines of it.
    fn replace_list(&mut self, key: &str) {
        let key: &'static str = match key {
            "serial" => "serial",
            "ping" => "ping",
            _ => return,
        };
        if self.replaced.contains(&key) {
            return;
        }
        self.replaced.push(key);
        match key {
            "serial" => self.media.retain(|(m, _)| !matches!(m, MediumDraft::Serial { .. })),
            _ => self.ping.clear(),
        }
    }
}

/// The words after a directive's name, read front to back.
struct Args<'a> {
    directive: &'a str,
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

/// Sets a single-value directive; a second line is an error, a kernel flag replaces.
fn set<T>(slot: &mut Slot<T>, v: T, loc: Loc, name: &str) -> Result<(), String> {
    if let Some((_, first)) = slot
        && !loc.cmdline
    {
        return Err(format!("duplicate {name} (first on line {})", first.line));
    }
    *slot = Some((v, loc));
    Ok(())
}

/// Parses one directive into `d`.
fn directive(d: &mut Draft, name: &str, words: &[String], loc: Loc) -> Result<(), String> {
    let mut a = Args { directive: name, words, pos: 0 };
    let a = &mut a;
    match name {
        "node" => {
            let n = value::name(a.next("node name")?, "node name")?;
            d.nodes.push((n, loc));
        }
        "keepalive" | "warntime" | "deadtime" | "initdead" | "monitor_interval" => {
            timing(d, name, a, loc)?;
        }
        "authkey" => set(&mut d.authkey, value::path(a.next("path")?, name)?, loc, name)?,
        "control" => set(&mut d.control, value::path(a.next("path")?, name)?, loc, name)?,
        "control_group" => {
            let g = value::name(a.next("group name")?, "group name")?;
            set(&mut d.control_group, g, loc, name)?;
        }
        "statedir" => set(&mut d.statedir, value::path(a.next("path")?, name)?, loc, name)?,
        "notify" => set(&mut d.notify, value::path(a.next("path")?, name)?, loc, name)?,
        "raid" => set(&mut d.raid, value::path(a.next("path")?, name)?, loc, name)?,
        "udpport" => {
            let p = number(a.next("port")?, "udpport", 1, 65535)?;
            set(&mut d.udpport, u16::try_from(p).unwrap_or(0), loc, name)?;
        }
        "home" => set(&mut d.home, value::name(a.next("node name")?, "node name")?, loc, name)?,
        "auto_failback" => {
            set(&mut d.auto_failback, value::on_off(a.next("on|off")?, name)?, loc, name)?
        }
        "serial" | "bcast" | "mcast" | "ucast" => medium(d, name, a, loc)?,
        "resource" => resource(d, a, loc)?,
        "restart_limit" => restart_limit(d, a, loc)?,
        "watchdog" => watchdog(d, a, loc)?,
        "hwmon" => hwmon(d, a, loc)?,
        "sensor" => sensor(d, a, loc)?,
        "ping" => ping(d, a, loc)?,
        "check" => check(d, a, loc)?,
        "fence" => fence(d, a, loc)?,
        "realtime" => realtime(d, a, loc)?,
        _ => return Err(format!("unknown directive \"{name}\"")),
    }
    a.end()
}

fn timing(d: &mut Draft, name: &str, a: &mut Args, loc: Loc) -> Result<(), String> {
    let v = duration(a.next("duration")?, name)?;
    if v == Duration::ZERO {
        return Err(format!("{name} must be longer than 0"));
    }
    let (min, max) = (Duration::from_millis(10), Duration::from_secs(60));
    if name == "keepalive" && !(min..=max).contains(&v) {
        return Err(format!("keepalive {v} is out of range ({min} to {max})"));
    }
    let slot = match name {
        "keepalive" => &mut d.keepalive,
        "warntime" => &mut d.warntime,
        "deadtime" => &mut d.deadtime,
        "initdead" => &mut d.initdead,
        _ => &mut d.monitor_interval,
    };
    set(slot, v, loc, name)
}

fn medium(d: &mut Draft, name: &str, a: &mut Args, loc: Loc) -> Result<(), String> {
    let m = match name {
        "serial" => {
            let device = value::path(a.next("device")?, "serial")?;
            let opts = a.options(&["baud"])?;
            let baud = match opts.first() {
                Some((_, b)) => baud(b)?,
                None => 115_200,
            };
            MediumDraft::Serial { device, baud }
        }
        "bcast" => MediumDraft::Bcast { iface: value::ifname(a.next("interface")?, name)? },
        "mcast" => {
            let iface = value::ifname(a.next("interface")?, name)?;
            let g = a.next("group")?;
            let group = value::addr(g, "mcast group")?;
            if !group.is_multicast() {
                return Err(format!("mcast group {g} is not a multicast address"));
            }
            let ttl = match a.options(&["ttl"])?.first() {
                Some((_, t)) => number(t, "mcast ttl", 1, 255)? as u8,
                None => 1,
            };
            MediumDraft::Mcast { iface, group, ttl }
        }
        _ => return ucast(d, a, loc),
    };
    d.media.push((m, loc));
    Ok(())
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
    if let Some(w) = a.peek() {
        a.pos += 1;
        addrs.push(value::unicast(w, "ucast")?);
    }
    for (m, _) in &mut d.media {
        if let MediumDraft::Ucast { iface: i, addrs: have } = m
            && *i == iface
        {
            have.extend(addrs);
            return Ok(());
        }
    }
    d.media.push((MediumDraft::Ucast { iface, addrs }, loc));
    Ok(())
}

fn resource(d: &mut Draft, a: &mut Args, loc: Loc) -> Result<(), String> {
    let r = match a.next("kind (ip, exec, lsb or ocf)")? {
        "ip" => Resource::Ip(ip_resource(a)?),
        "exec" => Resource::Exec(exec_resource(a)?),
        "lsb" => {
            let name = value::name(a.next("script name")?, "lsb script name")?;
            Resource::Lsb { name }
        }
        "ocf" => Resource::Ocf(ocf_resource(a)?),
        k => return Err(format!("unknown resource kind \"{k}\" (ip, exec, lsb or ocf)")),
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
    set(&mut d.restart_limit, RestartLimit { count, window }, loc, "restart_limit")
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
    set(&mut d.watchdog, Watchdog { device, timeout }, loc, "watchdog")
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
    d.ping.push((value::unicast(a.next("address")?, "ping")?, loc));
    while let Some(w) = a.peek() {
        a.pos += 1;
        d.ping.push((value::unicast(w, "ping")?, loc));
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
    set(&mut d.fence, f, loc, "fence")
}

fn realtime(d: &mut Draft, a: &mut Args, loc: Loc) -> Result<(), String> {
    let on = value::on_off(a.next("on|off")?, "realtime")?;
    let mut rt = Realtime { priority: 50 };
    if let Some((_, w)) = a.options(&["priority"])?.first() {
        rt.priority = number(w, "realtime priority", 1, 99)? as u8;
    }
    set(&mut d.realtime, on.then_some(rt), loc, "realtime")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Medium;

    const BASE: &str = "node a\nnode b\nauthkey /k\n";

    fn parse(extra: &str) -> Result<Config, String> {
        parse_str(&format!("{BASE}{extra}"), Path::new("t.conf")).map_err(|e| e.to_string())
    }

    #[test]
    fn ucast_lines_merge_per_interface() {
        let c = parse("ucast eth1 192.0.2.1\nbcast eth0\nucast eth1 192.0.2.2\n").unwrap();
        let a = [IpAddr::from([192, 0, 2, 1]), IpAddr::from([192, 0, 2, 2])];
        assert_eq!(c.pair.media[0], Medium::Ucast { iface: "eth1".into(), addrs: a });
        assert_eq!(c.pair.media.len(), 2);
    }

    #[test]
    fn errors_name_the_line_and_word() {
        assert_eq!(
            parse("bcast eth0\nmcast eth0\n").unwrap_err(),
            "t.conf:5: missing group for mcast (see the README for its syntax)"
        );
        assert_eq!(
            parse("bcast eth0\nserial /dev/ttyS0 speed 9600\n").unwrap_err(),
            "t.conf:5: unknown option \"speed\" for serial (expected baud)"
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
