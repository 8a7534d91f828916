//! The canonical text of a `Config`, in the file's own syntax with every default written out
//! (`hapair check --print`; it parses back to the same `Config`), the configuration digest
//! carried in heartbeats, and the warnings `check` prints. No I/O.
//!
//! The digest is the first 8 bytes of SHA-256 over the canonical text of the directives both
//! nodes must agree on: those whose row of the directive table (`parse::DIRECTIVES`) puts
//! them in a digested part (`Part::digested`: the pair-wide part and the resources). The
//! node-local directives and the health sources are left out, so per-node kernel flags for
//! them do not make the digests differ. Each line of the canonical text is written with the
//! name of its directive, which picks it for the digest (or not) by that row alone.

use std::fmt::{self, Write};

use sha2::{Digest, Sha256};

use super::lex::quote;
use super::parse::{Directive, Reload, Restart, directive};
use super::value::render_milli;
use super::{Config, Fence, Medium, Resource};

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
        let hash = Sha256::digest(s.as_bytes());
        let mut out = [0; 8];
        out.copy_from_slice(&hash[..8]);
        out
    }

    /// What a reload from `self` to `new` leaves for a restart (README "Reload"): each group
    /// of directives (the table's `reload` column) whose canonical text differs, in the order
    /// the log names them. A group is compared as one text, so media that only moved in the
    /// file (a link is numbered by its place) differ too.
    pub fn restarts_needed(&self, new: &Config) -> Vec<Restart> {
        let text = |c: &Config, r: Restart| {
            let mut s = String::new();
            // Writing to a String cannot fail.
            let _ = c.render(&mut s, &|d| d.reload == Reload::Restart(r));
            s
        };
        Restart::ALL.into_iter().filter(|&r| text(self, r) != text(new, r)).collect()
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
        for m in &p.media {
            render_medium(w, m)?;
        }
        w.line("home", format_args!("{}", quote(&p.home)))?;
        w.line("auto_failback", format_args!("{}", if p.auto_failback { "on" } else { "off" }))?;
        for r in &self.resources {
            w.line("resource", format_args!("{}", resource(r)?))?;
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
            w.line(
                "errors",
                format_args!(
                    "{}{name} max {} in {} root {}",
                    e.kind,
                    e.max,
                    e.window,
                    path(&e.root)
                ),
            )?;
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

fn render_medium(w: &mut Canon, m: &Medium) -> fmt::Result {
    match m {
        Medium::Serial { device, baud } => {
            w.line("serial", format_args!("{} baud {baud}", path(device)))
        }
        Medium::Bcast { iface } => w.line("bcast", format_args!("{}", quote(iface))),
        Medium::Mcast { iface, group, ttl } => {
            w.line("mcast", format_args!("{} {group} ttl {ttl}", quote(iface)))
        }
        Medium::Ucast { iface, addrs: [a, b] } => {
            w.line("ucast", format_args!("{} {a} {b}", quote(iface)))
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
        Resource::Ocf(o) => {
            write!(out, "ocf {}:{} name {}", o.provider, o.agent, quote(&o.name))?;
            for (k, v) in &o.params {
                write!(out, " {k}={}", quote(v))?;
            }
        }
    }
    Ok(out)
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
