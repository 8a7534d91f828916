//! The human rendering of the status (`hapair status`): one screen of text, every line
//! within 80 columns, names cut and cleaned of control characters, healthy sensors counted
//! rather than listed, counters in the lines `COUNTER_LINES` lays out. With several groups
//! (SPEC §7.1), a section per group (its state, owner, home and resources) takes the place
//! of the one `resources:` list.

use core::fmt::{self, Write};

use heapless::String;

use super::{
    COUNTERS, Counters, Fence, GroupStatus, HealthStatus, IpmiStatus, Link, Owner, Resource,
    Snapshot, peer_state_name, state_name,
};
use Shown::{Aside, Item};

/// Writes the snapshot as one screen of text, every line within 80 columns: long names are
/// cut, and healthy sensors are counted rather than listed.
pub fn render_human<W: Write + ?Sized>(s: &Snapshot, w: &mut W) -> fmt::Result {
    // Several groups: each has a section of its own (state, owner, home, resources) and the
    // node and peer lines count the groups they hold; one group: its state on the node line.
    let several = s.groups.len() > 1;
    let held = |who| s.groups.iter().filter(|g| g.owner == Some(who)).count();
    if several {
        let (here, of) = (held(Owner::This), s.groups.len());
        writeln!(w, "node {:.32}: holds {here} of {of} groups", Clean(&s.node))?;
    } else {
        let since = Age(Some(s.role_since_ms));
        writeln!(w, "node {:.32}: {} for {since}", Clean(&s.node), state_name(s.state))?;
    }
    if s.incarnation_went_back {
        writeln!(w, "  incarnation {} WENT BACK (statedir lost or restored?);", s.incarnation)?;
        writeln!(w, "  the peer resynchronised: check the statedir and the clock")?;
    }
    let alive = if s.peer.alive { "alive" } else { "DEAD" };
    let peer_state = peer_state_name(s.peer.state);
    // A dead peer's state is only what it said last.
    let last = if s.peer.alive { "" } else { "was " };
    let differs = if s.peer.config_differs { ", OTHER CONFIG" } else { "" };
    if !several {
        writeln!(w, "peer {:.32}: {alive}, {last}{peer_state}{differs}", Clean(&s.peer.name))?;
    } else if s.peer.alive {
        let (there, of) = (held(Owner::Peer), s.groups.len());
        writeln!(
            w,
            "peer {:.32}: alive, holds {there} of {of} groups{differs}",
            Clean(&s.peer.name)
        )?;
    } else {
        writeln!(w, "peer {:.32}: DEAD{differs}", Clean(&s.peer.name))?;
    }
    if s.peer.unfenceable {
        writeln!(w, "  peer has NO ARMED WATCHDOG: never taken over by waiting")?;
    }
    if s.waits_for_peer.is_some() {
        writeln!(w, "  WAITS FOR ITS PEER: last run did not exit cleanly; no fence, no takeover")?;
        writeln!(w, "  until the peer is heard (hapair takeover --force if it is down)")?;
    }
    // Each link's timing (SPEC §7.7): on the heading when every link has the same, else on a
    // line under each link (one screen for the usual pair).
    let timing = |l: &Link| (l.keepalive_ms, l.deadtime_ms);
    let first = s.peer.links.first().map(timing);
    let shared = first.filter(|t| s.peer.links.iter().all(|l| timing(l) == *t));
    match shared {
        Some((k, d)) => {
            writeln!(w, "links: keepalive {}, deadtime {}", Age(Some(k)), Age(Some(d)))?
        }
        None => writeln!(w, "links:")?,
    }
    for l in &s.peer.links {
        let up = if l.up { "up" } else { "DOWN" };
        // A label past its column (an IPv6 multicast group, a long interface name) gets a
        // line of its own rather than losing its end, where the group is.
        if l.medium.chars().count() > LINK_COLUMN {
            writeln!(w, "  {:.76}", Clean(&l.medium))?;
            write!(w, "  {:<LINK_COLUMN$} {up:<4} ", "")?;
        } else {
            write!(w, "  {:<LINK_COLUMN$} {up:<4} ", Clean(&l.medium))?;
        }
        match l.last_heard_ms {
            Some(ms) => write!(w, "heard {:>8} ago", Age(Some(ms)))?,
            None => write!(w, "{:<18}", "never heard")?,
        }
        writeln!(w, "  rx {:<9} lost {}", Count(l.frames_rx), Count(l.frames_lost))?;
        if shared.is_none() {
            let (k, d) = (Age(Some(l.keepalive_ms)), Age(Some(l.deadtime_ms)));
            writeln!(w, "    keepalive {k}, deadtime {d}")?;
        }
        if !l.error.is_empty() {
            writeln!(w, "    {:.74}", Clean(&l.error))?;
        }
        if !l.nic_errors.is_empty() {
            writeln!(w, "    NIC: {:.69}", Clean(&l.nic_errors))?;
        }
    }
    if several {
        for g in &s.groups {
            human_group(w, s, g)?;
            human_resources(w, s.group_resources(g))?;
        }
    } else {
        writeln!(w, "resources:")?;
        human_resources(w, s.first_resources())?;
    }
    human_fence(w, &s.fence)?;
    for d in &s.drbd {
        write!(
            w,
            "drbd {}: {} {}/{} disk {}/{}",
            d.resource, d.connection, d.role, d.peer_role, d.disk, d.peer_disk
        )?;
        match d.synced_permille {
            Some(p) => writeln!(w, ", resync {}.{}% done", p / 10, p % 10)?,
            None => writeln!(w)?,
        }
    }
    human_health(w, &s.health)?;
    human_counters(w, &s.counters)
}

/// `group web: active for 1h02m, owner alpha, home alpha` (`owner none`: nobody holds it),
/// cut at 80 columns.
fn human_group<W: Write + ?Sized>(w: &mut W, s: &Snapshot, g: &GroupStatus) -> fmt::Result {
    let mut line = String::<512>::new();
    let since = Age(Some(g.role_since_ms));
    let owner = g.owner.map_or("none", |o| s.owner_name(o));
    // A line too long for the buffer is cut like one too wide for the screen.
    let _ = write!(
        line,
        "group {}: {} for {since}, owner {owner}, home {}",
        g.name,
        state_name(g.state),
        g.home
    );
    // This node's own word on the group, when it has one (`move` reads as standby).
    let _ = match g.intent {
        crate::wire::Intent::None => Ok(()),
        crate::wire::Intent::Standby => line.push_str(", standby here"),
        crate::wire::Intent::Takeover => line.push_str(", takeover asked"),
        crate::wire::Intent::Maintenance => line.push_str(", maintenance"),
    };
    writeln!(w, "{:.80}", Clean(&line))
}

/// One line per resource (and its last error under it).
fn human_resources<W: Write + ?Sized>(w: &mut W, resources: &[Resource]) -> fmt::Result {
    for r in resources {
        write!(w, "  {:<5.5} {:<24.24} {:<8}", Clean(&r.kind), Clean(&r.name), r.state.name())?;
        let failures = Count(u64::from(r.failures));
        match r.last_exit_code {
            Some(code) => writeln!(w, " failures {failures:<5} exit {code}")?,
            None => writeln!(w, " failures {failures}")?,
        }
        if !r.last_error.is_empty() {
            writeln!(w, "    {:.74}", Clean(&r.last_error))?;
        }
    }
    Ok(())
}

/// How the human screen arranges the counters: lines of a heading and `label N` items
/// separated by commas; an `Aside` follows the item before it in brackets (`N label`).
/// Every counter of `COUNTERS` appears once (a unit test checks).
const COUNTER_LINES: [(&str, &[Shown]); 4] = [
    ("frames: ", &[Item("auth_failures"), Item("replays"), Item("malformed")]),
    ("        ", &[Item("crc_errors"), Item("late_heartbeats"), Item("kernel_dropped")]),
    ("        ", &[Item("unconfirmed"), Item("peer_restarts"), Aside("incarnation_resyncs")]),
    (
        "moves: ",
        &[
            Item("failovers"),
            Item("handovers"),
            Item("split_brains"),
            Item("fence_attempts"),
            Aside("fence_failures"),
        ],
    ),
];

/// A counter on a line of `COUNTER_LINES`, by its name in `COUNTERS`.
#[derive(Clone, Copy, Debug)]
enum Shown {
    /// `label N`, after a comma unless first on its line.
    Item(&'static str),
    /// ` (N label)`, right after the item before it.
    Aside(&'static str),
}

fn human_counters<W: Write + ?Sized>(w: &mut W, c: &Counters) -> fmt::Result {
    let find = |name: &str| COUNTERS.iter().find(|k| k.name == name);
    for (heading, shown) in COUNTER_LINES {
        w.write_str(heading)?;
        for (i, s) in shown.iter().enumerate() {
            let (Shown::Item(name) | Shown::Aside(name)) = *s;
            // INVARIANT: every name in COUNTER_LINES is in COUNTERS (unit test).
            let Some(k) = find(name) else { continue };
            let n = Count((k.value)(c));
            match s {
                Shown::Item(_) if i == 0 => write!(w, "{} {n}", k.label)?,
                Shown::Item(_) => write!(w, ", {} {n}", k.label)?,
                Shown::Aside(_) => write!(w, " ({n} {})", k.label)?,
            }
        }
        writeln!(w)?;
    }
    Ok(())
}

/// `fence: command, delay 3.0s`, then `  last ok 12.3s ago: exit code 0` once it ran (and
/// the agent's last line when that failed); nothing without a fence.
fn human_fence<W: Write + ?Sized>(w: &mut W, f: &Fence) -> fmt::Result {
    match f.mode {
        "none" => return Ok(()),
        "command" => write!(w, "fence: command, delay {}", Age(Some(f.delay_ms)))?,
        mode => write!(w, "fence: {mode}")?,
    }
    if let Some(left) = f.delay_left_ms {
        write!(w, ", fencing in {}", Age(Some(left)))?;
    }
    if f.peer_vouched_down {
        w.write_str(", peer VOUCHED DOWN")?;
    }
    writeln!(w)?;
    let Some(l) = &f.last else { return Ok(()) };
    let ok = if l.ok { "ok" } else { "FAILED" };
    writeln!(w, "  last {ok} {} ago: {:.50}", Age(Some(l.ago_ms)), Clean(&l.status))?;
    if !l.ok && !l.output.is_empty() {
        writeln!(w, "    {:.74}", Clean(&l.output))?;
    }
    Ok(())
}

/// The BMC: one line, then each sensor out of its thresholds and a latched SEL failure.
fn human_ipmi<W: Write + ?Sized>(w: &mut W, i: &IpmiStatus) -> fmt::Result {
    write!(w, "  ipmi {:.24}: ", Clean(&i.device))?;
    if !i.reachable {
        return writeln!(w, "NOT ANSWERING: {:.48}", Clean(&i.error));
    }
    let out = i.sensors.iter().filter(|s| !s.ok).count();
    write!(w, "{} sensors", i.sensors.len())?;
    if out > 0 {
        write!(w, " ({out} OUT)")?;
    }
    writeln!(w)?;
    writeln!(
        w,
        "    SEL: {} new, {} failures, {} correctable in 1h",
        Count(i.sel_entries),
        Count(i.sel_failures),
        Count(i.sel_correctable_in_window)
    )?;
    if !i.error.is_empty() {
        writeln!(w, "    {:.74}", Clean(&i.error))?;
    }
    for s in i.sensors.iter().filter(|s| !s.ok) {
        let value = s.value.unwrap_or(f64::NAN);
        write!(w, "    OUT {:<16.16} {:>9.1} {:<3.3}", Clean(&s.name), Finite(value), s.unit)?;
        for (name, v) in
            [("crit", s.upper_crit.or(s.lower_crit)), ("nr", s.upper_nr.or(s.lower_nr))]
        {
            if let Some(v) = v {
                write!(w, "  {name} {:.1}", Finite(v))?;
            }
        }
        writeln!(w)?;
    }
    if i.sel_latched {
        writeln!(w, "    SEL {:.50} (until cleanup)", Clean(&i.last_failure))?;
    }
    Ok(())
}

fn human_health<W: Write + ?Sized>(w: &mut W, h: &HealthStatus) -> fmt::Result {
    writeln!(w, "health: {}", if h.ok { "ok" } else { "UNHEALTHY" })?;
    for r in &h.reasons {
        writeln!(w, "  - {:.76}", Clean(r))?;
    }
    let healthy = h.sensors.iter().filter(|s| s.ok).count();
    if !h.sensors.is_empty() {
        writeln!(w, "  sensors: {healthy} of {} within limits", h.sensors.len())?;
    }
    for s in h.sensors.iter().filter(|s| !s.ok) {
        write!(w, "    OUT {:<20.20} {:>10.1}", Clean(&s.name), Finite(s.value))?;
        if let Some(max) = s.max {
            write!(w, "  max {:.1}", Finite(max))?;
        }
        if let Some(crit) = s.crit {
            write!(w, "  crit {:.1}", Finite(crit))?;
        }
        writeln!(w)?;
    }
    for r in &h.raid {
        let ok = if r.ok { "ok" } else { "DEGRADED" };
        writeln!(w, "  raid {:<12.12} {:<20.20} {ok}", Clean(&r.name), Clean(&r.state))?;
    }
    for e in &h.errors {
        let mut what = String::<48>::new();
        let _ = write!(what, "{} {}", Clean(&e.kind), Clean(&e.name));
        let mut count = String::<24>::new();
        match e.count {
            Some(c) => {
                let _ = write!(count, "{c}");
            }
            None => {
                let _ = count.push('-');
            }
        }
        write!(
            w,
            "  errors {:<16.16} count {count:>10}  {} in window (max {})",
            what.as_str(),
            e.rate,
            e.limit
        )?;
        let report = if e.report == "link" { " (link)" } else { "" };
        writeln!(w, "  {}{report}", Clean(&e.state))?;
    }
    if let Some(i) = &h.ipmi {
        human_ipmi(w, i)?;
    }
    for p in &h.ping {
        let ok = if p.reachable { "reachable" } else { "UNREACHABLE" };
        let mut addr = String::<46>::new();
        // INVARIANT: an IPv6 address prints in at most 45 characters.
        let _ = write!(addr, "{}", p.address);
        writeln!(w, "  ping {:<33} {ok}", addr.as_str())?;
    }
    let wd = &h.watchdog;
    if wd.device.is_empty() {
        return writeln!(w, "  watchdog: none");
    }
    let armed = if wd.armed { "armed" } else { "NOT ARMED" };
    let timeout = Age(Some(wd.timeout_ms));
    writeln!(w, "  watchdog {:.32}: {armed}, timeout {timeout}", Clean(&wd.device))
}

/// An age in milliseconds, short: `850ms`, `12.3s`, `4m05s`, `3h02m`, `12d03h`, `400d`;
/// `never`.
struct Age(Option<u64>);

impl fmt::Display for Age {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = String::<16>::new();
        let Some(ms) = self.0 else { return f.pad("never") };
        let (s, m, h, d) = (ms / 1000, ms / 60_000, ms / 3_600_000, ms / 86_400_000);
        let r = match ms {
            0..1000 => write!(buf, "{ms}ms"),
            1000..60_000 => write!(buf, "{}.{}s", s, ms % 1000 / 100),
            60_000..3_600_000 => write!(buf, "{m}m{:02}s", s % 60),
            3_600_000..86_400_000 => write!(buf, "{h}h{:02}m", m % 60),
            _ if d < 100 => write!(buf, "{d}d{:02}h", h % 24),
            _ if d < 100_000 => write!(buf, "{d}d"),
            _ => write!(buf, ">99999d"),
        };
        // INVARIANT: every form above is at most 8 characters.
        debug_assert!(r.is_ok());
        f.pad(&buf)
    }
}

/// A counter in at most 7 characters (`999999`, `1234k`, `98M`, `18446P`), so that
/// columns stay put.
struct Count(u64);

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const TIERS: [(u64, &str); 5] = [
            (1_000, "k"),
            (1_000_000, "M"),
            (1_000_000_000, "G"),
            (1_000_000_000_000, "T"),
            (1_000_000_000_000_000, "P"),
        ];
        let mut buf = String::<24>::new();
        let n = self.0;
        let tier = TIERS.iter().find(|(unit, _)| n / unit < 1_000_000);
        let r = match (n, tier) {
            (0..1_000_000, _) => write!(buf, "{n}"),
            (_, Some((unit, suffix))) => write!(buf, "{}{suffix}", n / unit),
            (_, None) => write!(buf, "{}P", n / 1_000_000_000_000_000),
        };
        debug_assert!(r.is_ok(), "u64 fits 24 characters");
        f.pad(&buf)
    }
}

/// A name or message for a terminal: control characters become `?`, so that no name can
/// break a line or move the cursor. Honours width and precision (in characters) like `str`.
/// The width of the links' label column.
const LINK_COLUMN: usize = 26;

struct Clean<'a>(&'a str);

impl fmt::Display for Clean<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let limit = f.precision().unwrap_or(usize::MAX);
        let mut written = 0;
        for c in self.0.chars().take(limit) {
            f.write_char(if c.is_control() { '?' } else { c })?;
            written += 1;
        }
        for _ in written..f.width().unwrap_or(0) {
            f.write_char(' ')?;
        }
        Ok(())
    }
}

/// A reading, kept to 10 characters: out-of-range or non-finite values print as `?`.
struct Finite(f64);

impl fmt::Display for Finite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_finite() && self.0.abs() < 1e7 {
            fmt::Display::fmt(&self.0, f)
        } else {
            f.pad("?")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(v: impl fmt::Display) -> std::string::String {
        v.to_string()
    }

    #[test]
    fn ages_and_counts_stay_short() {
        assert_eq!(shown(Age(None)), "never");
        assert_eq!(shown(Age(Some(850))), "850ms");
        assert_eq!(shown(Age(Some(12_345))), "12.3s");
        assert_eq!(shown(Age(Some(245_000))), "4m05s");
        assert_eq!(shown(Age(Some(10_920_000))), "3h02m");
        assert_eq!(shown(Age(Some(u64::MAX))), ">99999d");
        assert_eq!(shown(Count(999_999)), "999999");
        assert_eq!(shown(Count(1_234_567)), "1234k");
        assert_eq!(shown(Count(u64::MAX)), "18446P");
        assert_eq!(format!("[{:<6.4}]", Clean("ab\ncdef")), "[ab?c  ]");
    }

    /// The screen shows every counter of the table exactly once, and nothing else.
    #[test]
    fn the_counter_lines_show_the_table() {
        let mut names: std::vec::Vec<&str> = COUNTER_LINES
            .iter()
            .flat_map(|(_, shown)| shown.iter())
            .map(|s| match *s {
                Shown::Item(name) | Shown::Aside(name) => name,
            })
            .collect();
        names.sort_unstable();
        let mut table: std::vec::Vec<&str> = COUNTERS.iter().map(|c| c.name).collect();
        table.sort_unstable();
        assert_eq!(names, table);
        for (_, shown) in COUNTER_LINES {
            assert!(matches!(shown[0], Shown::Item(_)), "a line starts with an item");
        }
    }
}
