//! The canonical text of a `Config`, in the file's own syntax with every default written out
//! (`hapair check --print`; it parses back to the same `Config`), the configuration digest
//! carried in heartbeats, and the warnings `check` prints. No I/O.
//!
//! The digest is the first 8 bytes of SHA-256 over the canonical text of the directives both
//! nodes must agree on: nodes, timings, udpport, the UDP media, home, auto_failback, the
//! resources, monitor_interval, restart_limit and fence. Node-local directives (authkey path,
//! control, control_group, statedir, serial devices, watchdog, hwmon, sensor, raid, ping,
//! check, notify, realtime) are left out, so per-node kernel flags for them do not make the digests differ.

use std::fmt::{self, Write};

use sha2::{Digest, Sha256};

use super::lex::quote;
use super::value::render_milli;
use super::{Config, Fence, Medium, Resource};

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        self.render(&mut s, false)?;
        f.write_str(&s)
    }
}

impl Config {
    /// First 8 bytes of SHA-256 over the shared part of the canonical text (module doc).
    pub fn digest(&self) -> [u8; 8] {
        let mut s = String::new();
        // Writing to a String cannot fail.
        let _ = self.render(&mut s, true);
        let hash = Sha256::digest(s.as_bytes());
        let mut out = [0; 8];
        out.copy_from_slice(&hash[..8]);
        out
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
        if self.pair.fence == Some(Fence::Watchdog) && self.health.ping.is_empty() {
            w.push("fence watchdog without ping nodes: a node cut off cannot tell".into());
        }
        if self.resources.is_empty() {
            w.push("no resources: the group is empty".into());
        }
        w
    }

    fn render(&self, out: &mut String, shared_only: bool) -> fmt::Result {
        for n in &self.pair.nodes {
            writeln!(out, "node {}", quote(n))?;
        }
        writeln!(out, "keepalive {}", self.pair.keepalive)?;
        writeln!(out, "warntime {}", self.pair.warntime)?;
        writeln!(out, "deadtime {}", self.pair.deadtime)?;
        writeln!(out, "initdead {}", self.pair.initdead)?;
        writeln!(out, "udpport {}", self.pair.udpport)?;
        if !shared_only {
            writeln!(out, "authkey {}", path(&self.local.authkey))?;
            writeln!(out, "control {}", path(&self.local.control))?;
            match &self.local.control_group {
                None => writeln!(out, "# control_group: none (the control socket is root's)")?,
                Some(g) => writeln!(out, "control_group {}", quote(g))?,
            }
            writeln!(out, "statedir {}", path(&self.local.statedir))?;
        }
        for m in &self.pair.media {
            render_medium(out, m, shared_only)?;
        }
        writeln!(out, "home {}", quote(&self.pair.home))?;
        writeln!(out, "auto_failback {}", if self.pair.auto_failback { "on" } else { "off" })?;
        for r in &self.resources {
            render_resource(out, r)?;
        }
        writeln!(out, "monitor_interval {}", self.pair.monitor_interval)?;
        let rl = self.pair.restart_limit;
        writeln!(out, "restart_limit {} in {}", rl.count, rl.window)?;
        match &self.pair.fence {
            None => writeln!(out, "# fence: none")?,
            Some(Fence::Watchdog) => writeln!(out, "fence watchdog")?,
            Some(Fence::Command(argv)) => writeln!(out, "fence {}", words(argv))?,
        }
        if !shared_only {
            self.render_local(out)?;
        }
        Ok(())
    }

    fn render_local(&self, out: &mut String) -> fmt::Result {
        match &self.local.watchdog {
            None => writeln!(out, "# watchdog: none")?,
            Some(w) => writeln!(out, "watchdog {} timeout {}", path(&w.device), w.timeout)?,
        }
        for h in &self.health.hwmon {
            writeln!(out, "hwmon {} root {}", quote(&h.chip), path(&h.root))?;
        }
        for s in &self.health.sensors {
            write!(out, "sensor {}/{}", s.chip, s.input)?;
            for (k, v) in [("min", s.min_milli), ("max", s.max_milli), ("crit", s.crit_milli)] {
                if let Some(v) = v {
                    write!(out, " {k} {}", render_milli(v))?;
                }
            }
            writeln!(out)?;
        }
        match &self.health.raid {
            None => writeln!(out, "# raid: none")?,
            Some(p) => writeln!(out, "raid {}", path(p))?,
        }
        if !self.health.ping.is_empty() {
            let list: Vec<String> = self.health.ping.iter().map(|a| a.to_string()).collect();
            writeln!(out, "ping {}", list.join(" "))?;
        }
        for c in &self.health.checks {
            let (n, cmd) = (quote(&c.name), quote(&c.command));
            writeln!(out, "check {n} {cmd} interval {} timeout {}", c.interval, c.timeout)?;
        }
        match &self.local.notify {
            None => writeln!(out, "# notify: none")?,
            Some(p) => writeln!(out, "notify {}", path(p))?,
        }
        match &self.local.realtime {
            None => writeln!(out, "realtime off"),
            Some(r) => writeln!(out, "realtime on priority {}", r.priority),
        }
    }
}

fn render_medium(out: &mut String, m: &Medium, shared_only: bool) -> fmt::Result {
    match m {
        Medium::Serial { .. } if shared_only => Ok(()),
        Medium::Serial { device, baud } => writeln!(out, "serial {} baud {baud}", path(device)),
        Medium::Bcast { iface } => writeln!(out, "bcast {}", quote(iface)),
        Medium::Mcast { iface, group, ttl } => {
            writeln!(out, "mcast {} {group} ttl {ttl}", quote(iface))
        }
        Medium::Ucast { iface, addrs: [a, b] } => writeln!(out, "ucast {} {a} {b}", quote(iface)),
    }
}

fn render_resource(out: &mut String, r: &Resource) -> fmt::Result {
    match r {
        Resource::Ip(ip) => writeln!(
            out,
            "resource ip {}/{} dev {} garp {} garp_interval {} garp_refresh {} name {}",
            ip.addr,
            ip.prefix,
            quote(&ip.dev),
            ip.garp,
            ip.garp_interval,
            ip.garp_refresh,
            quote(&ip.name)
        ),
        Resource::Exec(e) => {
            let mut line =
                format!("resource exec {} start={}", quote(&e.name), quote_always(&e.start));
            write!(line, " stop={}", quote_always(&e.stop))?;
            if let Some(m) = &e.monitor {
                write!(line, " monitor={}", quote_always(m))?;
            }
            writeln!(out, "{line} timeout {}", e.timeout)
        }
        Resource::Lsb { name } => writeln!(out, "resource lsb {}", quote(name)),
        Resource::Ocf(o) => {
            write!(out, "resource ocf {}:{} name {}", o.provider, o.agent, quote(&o.name))?;
            for (k, v) in &o.params {
                write!(out, " {k}={}", quote(v))?;
            }
            writeln!(out)
        }
    }
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
