//! The canonical text of a `Config`, in the file's own syntax with every default written out
//! (`hapair check --print`; it parses back to the same `Config`), the configuration digest
//! carried in heartbeats, and the warnings `check` prints. No I/O.
//!
//! The digest is the first 8 bytes of SHA-256 over the canonical text of the directives both
//! nodes must agree on: those whose row of the directive table (`parse::DIRECTIVES`) puts
//! them in a digested part (`Part::digested`: the pair-wide part, the groups and the
//! resources). The node-local directives and the health sources are left out, so per-node
//! kernel flags for them do not make the digests differ. Each line of the canonical text is
//! written with the name of its directive, which picks it for the digest (or not) by that row
//! alone. The one exception: a medium's own `keepalive` and `deadtime` (SPEC §7.7) are
//! pair-wide even on a `serial` line, whose line is local: the digest adds one line
//! `link N keepalive K deadtime D` per link that sets them (none when no link does, so a file
//! without them digests as before).
//!
//! `group` lines are written, each before its resources and with every option, exactly when
//! the groups are not those of a file without them (`Config::has_group_lines`): a file
//! without `group` lines prints, and digests, as it did before groups existed.

use std::fmt::{self, Write};

use sha2::{Digest, Sha256};

use super::lex::quote;
use super::parse::{Directive, Reload, Restart, directive};
use super::value::render_milli;
use super::{Config, Fence, LinkTiming, Medium, Resource};

/// A medium line's own timing as its options: ` keepalive K deadtime D`, each only when set
/// (a line without them prints, and digests, as before per-link timing existed).
struct LinkOptions(LinkTiming);

impl fmt::Display for LinkOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(k) = self.0.keepalive {
            write!(f, " keepalive {k}")?;
        }
        if let Some(d) = self.0.deadtime {
            write!(f, " deadtime {d}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        self.render(&mut s, &|_| true)?;
        f.write_str(&s)
    }
}

impl Config {
    /// First 8 bytes of SHA-256 over the shared part of the canonical text (module doc).
    pub fn digest(&self) -> [u8; 8] {
        let mut s = String::new();
        // Writing to a String cannot fail.
        let _ = self.render(&mut s, &|d| d.part.digested());
        // A link's own timing is pair-wide even on a (local) serial line: both ends must
        // agree (SPEC §7.7). One more line per link that has one; none without.
        for (i, t) in self.pair.link_timing.iter().enumerate() {
            if !t.is_global() {
                let _ = writeln!(s, "link {i}{}", LinkOptions(*t));
            }
        }
        let hash = Sha256::digest(s.as_bytes());
        let mut out = [0; 8];
        out.copy_from_slice(&hash[..8]);
        out
    }

    /// What a reload from `self` to `new` leaves for a restart (README "Reload"): each group
    /// of directives (the table's `reload` column) whose canonical text differs, in the order
    /// the log names them. A group is compared as one text, so media that only moved in the
    /// file (a link is numbered by its place) differ too. The `group` lines are in
    /// `Restart::Core`, and so is a resource (by name) that is in both and moved to another
    /// group; a resource added to or removed from a group is the resource plan's, as in the
    /// one group of a file without `group` lines.
    pub fn restarts_needed(&self, new: &Config) -> Vec<Restart> {
        let text = |c: &Config, r: Restart| {
            let mut s = String::new();
            // Writing to a String cannot fail.
            let _ = c.render(&mut s, &|d| d.reload == Reload::Restart(r));
            s
        };
        let moved = self.moved_between_groups(new);
        Restart::ALL
            .into_iter()
            .filter(|&r| text(self, r) != text(new, r) || (r == Restart::Core && moved))
            .collect()
    }

    /// A resource of both `self` and `new` (by name) is in groups of different names.
    fn moved_between_groups(&self, new: &Config) -> bool {
        self.resources.iter().enumerate().any(|(i, r)| {
            let Some(j) = new.resources.iter().position(|n| n.name() == r.name()) else {
                return false;
            };
            self.groups[self.group_of(i)].name != new.groups[new.group_of(j)].name
        })
    }

    /// Things that are allowed but weaken the guarantees; `check` prints them on stderr.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.pair.media.len() == 1 {
            w.push(format!(
                "only one heartbeat medium ({}): when it fails both nodes take the group{}",
                self.pair.media[0].label(),
                if self.pair.fence == Some(Fence::Watchdog) {
                    " (with fence watchdog this is the residual split-brain risk: add a medium)"
                } else {
                    ""
                }
            ));
        }
        if self.pair.fence.is_none() {
            w.push("no fence configured: a hung peer may still hold the resources".into());
        }
        if matches!(self.pair.fence, Some(Fence::Command(_)))
            && self.pair.fence_delay == crate::core::time::Duration::ZERO
        {
            w.push(
                "fence_delay 0: in a full partition both nodes may fence each other at once".into(),
            );
        }
        if self.pair.fence == Some(Fence::Watchdog) && self.health.ping.is_empty() {
            w.push("fence watchdog without ping nodes: a node cut off cannot tell".into());
        }
        if self.resources.is_empty() {
            w.push("no resources: the group is empty".into());
        }
        let p = &self.pair;
        for (i, m) in p.media.iter().enumerate() {
            let dead = p.link_deadtime(i);
            if dead > p.deadtime {
                w.push(format!(
                    "{}: deadtime {dead} is longer than the global deadtime {}: failover then \
                     waits for it (the peer is dead only once every link is down, each by its \
                     own deadtime)",
                    m.label(),
                    p.deadtime
                ));
            }
        }
        w
    }

    /// The canonical text of the directives `keep` selects by their row of the directive
    /// table, in the canonical order (that of `check --print`).
    fn render(&self, out: &mut String, keep: &dyn Fn(&Directive) -> bool) -> fmt::Result {
        let w = &mut Canon { out, keep };
        let p = &self.pair;
        for n in &p.nodes {
            w.line("node", format_args!("{}", quote(n)))?;
        }
        w.line("keepalive", format_args!("{}", p.keepalive))?;
        w.line("warntime", format_args!("{}", p.warntime))?;
        w.line("deadtime", format_args!("{}", p.deadtime))?;
        w.line("initdead", format_args!("{}", p.initdead))?;
        w.line("udpport", format_args!("{}", p.udpport))?;
        let l = &self.local;
        w.line("authkey", format_args!("{}", path(&l.authkey)))?;
        w.line("control", format_args!("{}", path(&l.control)))?;
        match &l.control_group {
            None => w.none("control_group", " (the control socket is root's)")?,
            Some(g) => w.line("control_group", format_args!("{}", quote(g)))?,
        }
        w.line("statedir", format_args!("{}", path(&l.statedir)))?;
        for (i, m) in p.media.iter().enumerate() {
            render_medium(w, m, p.link_timing.get(i).copied().unwrap_or_default())?;
        }
        w.line("home", format_args!("{}", quote(&p.home)))?;
        w.line("auto_failback", format_args!("{}", on_off(p.auto_failback)))?;
        if self.has_group_lines() {
            for g in &self.groups {
                let (name, home, back) = (quote(&g.name), quote(&g.home), on_off(g.auto_failback));
                w.line("group", format_args!("{name} home {home} auto_failback {back}"))?;
                for r in &self.resources[g.resources.clone()] {
                    w.line("resource", format_args!("{}", resource(r)?))?;
                }
            }
        } else {
            for r in &self.resources {
                w.line("resource", format_args!("{}", resource(r)?))?;
            }
        }
        w.line("monitor_interval", format_args!("{}", p.monitor_interval))?;
        let rl = p.restart_limit;
        w.line("restart_limit", format_args!("{} in {}", rl.count, rl.window))?;
        match &p.fence {
            None => w.none("fence", "")?,
            Some(Fence::Watchdog) => w.line("fence", format_args!("watchdog"))?,
            Some(Fence::Command(argv)) => w.line("fence", format_args!("{}", words(argv)))?,
        }
        w.line("fence_delay", format_args!("{}", p.fence_delay))?;
        self.render_local(w)
    }

    fn render_local(&self, w: &mut Canon) -> fmt::Result {
        match &self.local.watchdog {
            None => w.none("watchdog", "")?,
            Some(d) => {
                w.line("watchdog", format_args!("{} timeout {}", path(&d.device), d.timeout))?
            }
        }
        let h = &self.health;
        for c in &h.hwmon {
            w.line("hwmon", format_args!("{} root {}", quote(&c.chip), path(&c.root)))?;
        }
        for s in &h.sensors {
            let mut limits = String::new();
            for (k, v) in [("min", s.min_milli), ("max", s.max_milli), ("crit", s.crit_milli)] {
                if let Some(v) = v {
                    write!(limits, " {k} {}", render_milli(v))?;
                }
            }
            w.line("sensor", format_args!("{}/{}{limits}", s.chip, s.input))?;
        }
        match &h.raid {
            None => w.none("raid", "")?,
            Some(p) => w.line("raid", format_args!("{}", path(p)))?,
        }
        if !h.ping.is_empty() {
            let list: Vec<String> = h.ping.iter().map(|a| a.to_string()).collect();
            w.line("ping", format_args!("{}", list.join(" ")))?;
        }
        for c in &h.checks {
            let (n, cmd) = (quote(&c.name), quote(&c.command));
            w.line(
                "check",
                format_args!("{n} {cmd} interval {} timeout {}", c.interval, c.timeout),
            )?;
        }
        for e in &h.errors {
            let name =
                if e.name.is_empty() { String::new() } else { format!(" {}", quote(&e.name)) };
            let report = e.report.map_or(String::new(), |r| format!(" report {}", r.name()));
            w.line(
                "errors",
                format_args!(
                    "{}{name} max {} in {} root {}{report}",
                    e.kind,
                    e.max,
                    e.window,
                    path(&e.root)
                ),
            )?;
        }
        if let Some(i) = &h.ipmi {
            w.line("ipmi", format_args!("device {}", path(&i.device)))?;
        }
        match &self.local.notify {
            None => w.none("notify", "")?,
            Some(p) => w.line("notify", format_args!("{}", path(p)))?,
        }
        match &self.local.realtime {
            None => w.line("realtime", format_args!("off")),
            Some(r) => w.line("realtime", format_args!("on priority {}", r.priority)),
        }
    }
}

/// Writes the lines of the directives it keeps.
struct Canon<'a> {
    out: &'a mut String,
    keep: &'a dyn Fn(&Directive) -> bool,
}

impl Canon<'_> {
    /// A line of directive `name`: the name, then `args`.
    fn line(&mut self, name: &'static str, args: fmt::Arguments<'_>) -> fmt::Result {
        if self.keeps(name) { writeln!(self.out, "{name} {args}") } else { Ok(()) }
    }

    /// The comment that stands for directive `name` when it is not set: `# name: none`.
    fn none(&mut self, name: &'static str, why: &str) -> fmt::Result {
        if self.keeps(name) { writeln!(self.out, "# {name}: none{why}") } else { Ok(()) }
    }

    fn keeps(&self, name: &str) -> bool {
        // INVARIANT: only directives of the table are written (the tests print every one).
        let d = directive(name).expect("a directive of the table");
        (self.keep)(d)
    }
}

fn render_medium(w: &mut Canon, m: &Medium, t: LinkTiming) -> fmt::Result {
    let t = LinkOptions(t);
    match m {
        Medium::Serial { device, baud } => {
            w.line("serial", format_args!("{} baud {baud}{t}", path(device)))
        }
        Medium::Bcast { iface } => w.line("bcast", format_args!("{}{t}", quote(iface))),
        Medium::Mcast { iface, group, ttl } => {
            w.line("mcast", format_args!("{} {group} ttl {ttl}{t}", quote(iface)))
        }
        Medium::Ucast { iface, addrs: [a, b] } => {
            w.line("ucast", format_args!("{} {a} {b}{t}", quote(iface)))
        }
    }
}

/// A resource's arguments (after `resource`).
fn resource(r: &Resource) -> Result<String, fmt::Error> {
    let mut out = String::new();
    match r {
        Resource::Ip(ip) => write!(
            out,
            "ip {}/{} dev {} garp {} garp_interval {} garp_refresh {} name {}",
            ip.addr,
            ip.prefix,
            quote(&ip.dev),
            ip.garp,
            ip.garp_interval,
            ip.garp_refresh,
            quote(&ip.name)
        )?,
        Resource::Exec(e) => {
            write!(out, "exec {} start={}", quote(&e.name), quote_always(&e.start))?;
            write!(out, " stop={}", quote_always(&e.stop))?;
            if let Some(m) = &e.monitor {
                write!(out, " monitor={}", quote_always(m))?;
            }
            write!(out, " timeout {}", e.timeout)?;
        }
        Resource::Lsb { name } => write!(out, "lsb {}", quote(name))?,
        Resource::Drbd { name } => write!(out, "drbd {}", quote(name))?,
        Resource::Ocf(o) => {
            write!(out, "ocf {}:{} name {}", o.provider, o.agent, quote(&o.name))?;
            for (k, v) in &o.params {
                write!(out, " {k}={}", quote(v))?;
            }
        }
    }
    Ok(out)
}

fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

fn path(p: &std::path::Path) -> String {
    quote(&p.to_string_lossy())
}

fn words(list: &[String]) -> String {
    list.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
}

/// Commands are always quoted, to read as commands.
fn quote_always(s: &str) -> String {
    let q = quote(s);
    if q.starts_with('"') { q } else { format!("\"{q}\"") }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{Config, Restart, parse_str};

    fn parse(text: &str) -> Config {
        parse_str(text, Path::new("t.conf")).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    fn hex(digest: [u8; 8]) -> String {
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    const PLAIN: &str = "node alpha\nnode beta\nauthkey /k\nbcast eth1\nhome beta\n\
        auto_failback on\nresource ip 192.0.2.100/24 dev eth0\nresource lsb apache2\n\
        resource exec web start=\"w start\" stop=\"w stop\"\n";

    /// A file without `group` lines prints and digests exactly as before groups existed: the
    /// text and digest below are what `check --print` of the version before them printed.
    #[test]
    fn a_file_without_group_lines_prints_and_digests_as_before() {
        let c = parse(PLAIN);
        assert_eq!(
            c.to_string(),
            "node alpha\nnode beta\nkeepalive 1s\nwarntime 3s\ndeadtime 5s\ninitdead 10s\n\
             udpport 694\nauthkey /k\ncontrol /run/hapair/hapair.sock\n\
             # control_group: none (the control socket is root's)\nstatedir /var/lib/hapair\n\
             bcast eth1\nhome beta\nauto_failback on\nresource ip 192.0.2.100/24 dev eth0 \
             garp 5 garp_interval 200ms garp_refresh 0s name 192.0.2.100\n\
             resource lsb apache2\nresource exec web start=\"w start\" stop=\"w stop\" \
             timeout 20s\nmonitor_interval 5s\nrestart_limit 3 in 10m\n# fence: none\n\
             fence_delay 5s\n# watchdog: none\n# raid: none\n# notify: none\nrealtime off\n"
        );
        assert_eq!(hex(c.digest()), "41766e4ca1f677c0");
    }

    /// SPEC §7.1 with §1's reload: the group lines are the core's business, so any change to
    /// them (a name, the order, a home, a failback, a resource moved to another group) is
    /// left for a restart; a resource added to, changed in or removed from a group is the
    /// resource plan's, as in a file without groups.
    #[test]
    fn a_reload_that_changes_a_group_line_needs_a_restart() {
        const GROUPS: &str = "node alpha\nnode beta\nauthkey /k\nbcast eth1\n\
            group web home alpha\nresource lsb nginx\nresource lsb php\n\
            group db home beta auto_failback on\nresource lsb mysql\n";
        let old = parse(GROUPS);
        for (from, to) in [
            ("group web home alpha", "group www home alpha"),
            ("group db home beta", "group db home alpha"),
            ("auto_failback on\n", "auto_failback off\n"),
            ("group db home beta auto_failback on\n", "group db home beta\n"),
            (
                "resource lsb php\ngroup db home beta auto_failback on\n",
                "group db home beta auto_failback on\nresource lsb php\n",
            ),
            // The order of the groups.
            (
                "group web home alpha\nresource lsb nginx\nresource lsb php\n\
                 group db home beta auto_failback on\nresource lsb mysql\n",
                "group db home beta auto_failback on\nresource lsb mysql\n\
                 group web home alpha\nresource lsb nginx\nresource lsb php\n",
            ),
            // A group line removed: its resources join the group before it.
            ("group db home beta auto_failback on\n", ""),
        ] {
            assert_eq!(GROUPS.matches(from).count(), 1, "{from}");
            let new = parse(&GROUPS.replace(from, to));
            assert_eq!(old.restarts_needed(&new), [Restart::Core], "{from:?} -> {to:?}");
            assert_eq!(new.restarts_needed(&old), [Restart::Core], "{to:?} -> {from:?}");
        }
        let plain = parse(PLAIN);
        let grouped = parse(&PLAIN.replace("resource ip", "group g\nresource ip"));
        assert_eq!(plain.restarts_needed(&grouped), [Restart::Core]);
        for (from, to) in [
            ("resource lsb php\n", ""),
            ("resource lsb mysql\n", "resource lsb mysql\nresource lsb postgresql\n"),
            ("resource lsb nginx\n", "resource lsb apache2\n"),
        ] {
            let new = parse(&GROUPS.replace(from, to));
            assert_eq!(old.restarts_needed(&new), [], "{from:?} -> {to:?}");
        }
    }
}
