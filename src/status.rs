//! The status of the pair as this node sees it (SPEC §5): a plain-data `Snapshot` that the
//! event loop fills in place, and three renderers (JSON, one human screen, Prometheus text)
//! that write into a caller's `fmt::Write` without allocating.
//!
//! Capacities come from `limits`; names and messages are fixed-length strings that truncate
//! (`set_text`) instead of growing. This file gathers and prints; it decides nothing, and
//! it reads no clock: every age in it is computed by the loop.

use core::fmt::{self, Write};
use std::net::IpAddr;

use heapless::{String, Vec};

use crate::limits::{LINKS_MAX, PING_NODES_MAX, RAID_ARRAYS_MAX, RESOURCES_MAX, SENSORS_MAX};
use crate::wire::GroupState;

/// Longest node, resource, sensor or array name kept.
pub const NAME_LEN_MAX: usize = 32;
/// Longest link label (`serial /dev/ttyS0`, `ucast eth1 2001:db8::2`) or device path kept.
pub const LABEL_LEN_MAX: usize = 64;
/// Longest reason or error message kept.
pub const TEXT_LEN_MAX: usize = 96;
/// Health reasons listed at once.
pub const REASONS_MAX: usize = 8;

/// A node, resource, sensor or array name.
pub type Name = String<NAME_LEN_MAX>;
/// A link label or a device path.
pub type Label = String<LABEL_LEN_MAX>;
/// A reason or an error message.
pub type Text = String<TEXT_LEN_MAX>;

/// Everything `hapair status` shows.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// This node's name.
    pub node: Name,
    /// This node's group state.
    pub state: GroupState,
    /// Milliseconds this node has been in `state`.
    pub role_since_ms: u64,
    /// This start's incarnation (the statedir's counter).
    pub incarnation: u64,
    /// The peer says this node's incarnation went backwards (its statedir was lost or
    /// restored) and it resynchronised (SPEC §7.2).
    pub incarnation_went_back: bool,
    /// The other node.
    pub peer: Peer,
    /// The group's resources, in start order.
    pub resources: Vec<Resource, RESOURCES_MAX>,
    /// This node's health.
    pub health: HealthStatus,
    /// Anomaly and event counters.
    pub counters: Counters,
}

/// The peer as this node sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Peer {
    /// Its name.
    pub name: Name,
    /// A valid frame arrived on some link within deadtime.
    pub alive: bool,
    /// Its group state from its last frame; `None` before the first.
    pub state: Option<GroupState>,
    /// The incarnation of its run that this node accepted; `None` before the handshake.
    pub incarnation: Option<u64>,
    /// Its last frame carried another configuration digest than ours.
    pub config_differs: bool,
    /// The watchdog timeout its last frame advertised (0: none armed); `None` before one.
    pub watchdog_timeout_ms: Option<u64>,
    /// Under `fence watchdog` it advertised no armed watchdog: waiting cannot fence it, so
    /// it is never taken over by waiting (SPEC §7.3).
    pub unfenceable: bool,
    /// One entry per heartbeat medium.
    pub links: Vec<Link, LINKS_MAX>,
}

/// One heartbeat link.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Link {
    /// The medium as configured: `serial /dev/ttyS0`, `bcast eth1`, ...
    pub medium: Label,
    /// The link carries the peer's frames at its own cadence.
    pub up: bool,
    /// Milliseconds since the last valid frame on this link; `None`: never.
    pub last_heard_ms: Option<u64>,
    /// Valid frames received.
    pub frames_rx: u64,
    /// Frames missing by sequence number.
    pub frames_lost: u64,
    /// Datagrams the kernel dropped on this link's socket before hapair read them: not a
    /// frame of this pair on this link (the socket filter), or no room in the buffer. What
    /// a flood looks like (0 for serial).
    pub kernel_dropped: u64,
    /// Why the link is not open (open error), empty when it is.
    pub error: Text,
}

/// What a resource is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceState {
    /// Not running here.
    Stopped,
    /// Its start action runs.
    Starting,
    /// Started and its monitor passes.
    Running,
    /// Its stop action runs.
    Stopping,
    /// Failed past `restart_limit`, or its stop failed.
    Failed,
    /// Not monitored (maintenance) or not known yet.
    Unknown,
}

/// One resource of the group.
#[derive(Clone, Debug, PartialEq)]
pub struct Resource {
    /// Its name (`web`, `192.0.2.100/24`, `apache2`).
    pub name: Name,
    /// Its kind: `ip`, `exec`, `lsb`, `ocf`.
    pub kind: Name,
    /// What it is doing.
    pub state: ResourceState,
    /// Monitor or start failures since the last cleanup.
    pub failures: u32,
    /// The exit code of its last failed action, if any.
    pub last_exit_code: Option<i32>,
    /// The last error (output tail or reason), empty when none.
    pub last_error: Text,
}

/// This node's health (SPEC §5 `health`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HealthStatus {
    /// Healthy: may hold or take the group.
    pub ok: bool,
    /// Why not, one line each.
    pub reasons: Vec<Text, REASONS_MAX>,
    /// Sensor readings.
    pub sensors: Vec<Sensor, SENSORS_MAX>,
    /// md arrays.
    pub raid: Vec<Raid, RAID_ARRAYS_MAX>,
    /// Ping nodes.
    pub ping: Vec<Ping, PING_NODES_MAX>,
    /// The hardware watchdog.
    pub watchdog: Watchdog,
}

/// One sensor reading against its limits.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sensor {
    /// `chip/input`, e.g. `lm78/temp1`.
    pub name: Name,
    /// The reading (°C, V or RPM).
    pub value: f64,
    /// The warning limit, if any.
    pub max: Option<f64>,
    /// The critical limit, if any.
    pub crit: Option<f64>,
    /// Within limits.
    pub ok: bool,
}

/// One md array.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Raid {
    /// `md0`.
    pub name: Name,
    /// The member map as /proc/mdstat shows it: `[UU_]`.
    pub state: Name,
    /// Neither degraded nor failed.
    pub ok: bool,
}

/// One ping node.
#[derive(Clone, Debug, PartialEq)]
pub struct Ping {
    /// Its address.
    pub address: IpAddr,
    /// It answered recently.
    pub reachable: bool,
}

/// The hardware watchdog.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Watchdog {
    /// The device, empty when none is configured.
    pub device: Label,
    /// Open and being petted.
    pub armed: bool,
    /// Its timeout.
    pub timeout_ms: u64,
}

/// Counters since start (SPEC §5 `counters`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames whose HMAC did not verify.
    pub auth_failures: u64,
    /// Frames that repeated or went back in sequence, or were sent before this node's
    /// restart (recorded and replayed).
    pub replays: u64,
    /// Frames sent before the peer heard this node's challenge (the handshake at a start).
    pub unconfirmed: u64,
    /// Restarts of the peer seen (a new run accepted in place of another).
    pub peer_restarts: u64,
    /// Of those, restarts whose incarnation did not go up (its statedir lost or restored).
    pub incarnation_resyncs: u64,
    /// Frames that did not parse.
    pub malformed: u64,
    /// Serial frames with a bad CRC.
    pub crc_errors: u64,
    /// Datagrams the kernel dropped before hapair read them, all links together (see
    /// `Link::kernel_dropped`).
    pub kernel_dropped: u64,
    /// Heartbeats later than warntime.
    pub late_heartbeats: u64,
    /// Takeovers after the peer died.
    pub failovers: u64,
    /// Planned moves of the group.
    pub handovers: u64,
    /// Split brains seen (both nodes ran the group).
    pub split_brains: u64,
    /// Fence commands started.
    pub fence_attempts: u64,
    /// Fence commands that failed.
    pub fence_failures: u64,
}

impl Snapshot {
    /// An empty snapshot for `node` and `peer`, standby, nothing known yet.
    pub fn new(node: &str, peer: &str) -> Snapshot {
        let mut s = Snapshot {
            node: Name::new(),
            state: GroupState::Standby,
            role_since_ms: 0,
            incarnation: 0,
            incarnation_went_back: false,
            peer: Peer {
                name: Name::new(),
                alive: false,
                state: None,
                incarnation: None,
                config_differs: false,
                watchdog_timeout_ms: None,
                unfenceable: false,
                links: Vec::new(),
            },
            resources: Vec::new(),
            health: HealthStatus::default(),
            counters: Counters::default(),
        };
        set_text(&mut s.node, node);
        set_text(&mut s.peer.name, peer);
        s
    }
}

/// Replaces `dst` with as much of `src` as fits, cut at a character boundary.
pub fn set_text<const N: usize>(dst: &mut String<N>, src: &str) {
    dst.clear();
    for c in src.chars() {
        if dst.push(c).is_err() {
            break;
        }
    }
}

/// The name SPEC §3 gives a group state.
pub fn state_name(state: GroupState) -> &'static str {
    match state {
        GroupState::Standby => "standby",
        GroupState::Starting => "starting",
        GroupState::Active => "active",
        GroupState::Stopping => "stopping",
        GroupState::Failed => "failed",
        GroupState::Maintenance => "maintenance",
    }
}

fn peer_state_name(state: Option<GroupState>) -> &'static str {
    state.map_or("unknown", state_name)
}

impl ResourceState {
    /// The lower-case name used in every output.
    pub fn name(self) -> &'static str {
        match self {
            ResourceState::Stopped => "stopped",
            ResourceState::Starting => "starting",
            ResourceState::Running => "running",
            ResourceState::Stopping => "stopping",
            ResourceState::Failed => "failed",
            ResourceState::Unknown => "unknown",
        }
    }
}

// ---- JSON ---------------------------------------------------------------------------------

/// Writes the snapshot as one JSON object (SPEC §5), without a trailing newline.
pub fn render_json<W: Write + ?Sized>(s: &Snapshot, w: &mut W) -> fmt::Result {
    w.write_str("{\"node\":")?;
    json_str(w, &s.node)?;
    w.write_str(",\"state\":")?;
    json_str(w, state_name(s.state))?;
    write!(
        w,
        ",\"role_since_ms\":{},\"incarnation\":{},\"incarnation_went_back\":{},\"peer\":{{\"name\":",
        s.role_since_ms, s.incarnation, s.incarnation_went_back
    )?;
    json_str(w, &s.peer.name)?;
    write!(w, ",\"alive\":{},\"state\":", s.peer.alive)?;
    json_str(w, peer_state_name(s.peer.state))?;
    w.write_str(",\"incarnation\":")?;
    json_opt(w, s.peer.incarnation)?;
    write!(w, ",\"config_match\":{},\"watchdog_timeout_ms\":", !s.peer.config_differs)?;
    json_opt(w, s.peer.watchdog_timeout_ms)?;
    write!(w, ",\"unfenceable\":{},\"links\":[", s.peer.unfenceable)?;
    for (i, l) in s.peer.links.iter().enumerate() {
        w.write_str(if i == 0 { "{\"medium\":" } else { ",{\"medium\":" })?;
        json_str(w, &l.medium)?;
        write!(w, ",\"up\":{},\"last_heard_ms\":", l.up)?;
        json_opt(w, l.last_heard_ms)?;
        write!(w, ",\"frames_rx\":{},\"frames_lost\":{}", l.frames_rx, l.frames_lost)?;
        write!(w, ",\"kernel_dropped\":{}", l.kernel_dropped)?;
        w.write_str(",\"error\":")?;
        json_str(w, &l.error)?;
        w.write_str("}")?;
    }
    w.write_str("]},\"resources\":[")?;
    for (i, r) in s.resources.iter().enumerate() {
        w.write_str(if i == 0 { "{\"name\":" } else { ",{\"name\":" })?;
        json_str(w, &r.name)?;
        w.write_str(",\"kind\":")?;
        json_str(w, &r.kind)?;
        w.write_str(",\"state\":")?;
        json_str(w, r.state.name())?;
        write!(w, ",\"failures\":{},\"last_exit_code\":", r.failures)?;
        json_opt(w, r.last_exit_code)?;
        w.write_str(",\"last_error\":")?;
        json_str(w, &r.last_error)?;
        w.write_str("}")?;
    }
    w.write_str("],")?;
    json_health(w, &s.health)?;
    let c = &s.counters;
    write!(
        w,
        ",\"counters\":{{\"auth_failures\":{},\"replays\":{},\"unconfirmed\":{},\
         \"peer_restarts\":{},\"incarnation_resyncs\":{},\"malformed\":{},\
         \"crc_errors\":{},\"kernel_dropped\":{},\"late_heartbeats\":{},\"failovers\":{},\"handovers\":{},\
         \"split_brains\":{},\"fence_attempts\":{},\"fence_failures\":{}}}}}",
        c.auth_failures,
        c.replays,
        c.unconfirmed,
        c.peer_restarts,
        c.incarnation_resyncs,
        c.malformed,
        c.crc_errors,
        c.kernel_dropped,
        c.late_heartbeats,
        c.failovers,
        c.handovers,
        c.split_brains,
        c.fence_attempts,
        c.fence_failures
    )
}

fn json_health<W: Write + ?Sized>(w: &mut W, h: &HealthStatus) -> fmt::Result {
    write!(w, "\"health\":{{\"ok\":{},\"reasons\":[", h.ok)?;
    for (i, r) in h.reasons.iter().enumerate() {
        if i > 0 {
            w.write_str(",")?;
        }
        json_str(w, r)?;
    }
    w.write_str("],\"sensors\":[")?;
    for (i, s) in h.sensors.iter().enumerate() {
        w.write_str(if i == 0 { "{\"name\":" } else { ",{\"name\":" })?;
        json_str(w, &s.name)?;
        w.write_str(",\"value\":")?;
        json_num(w, Some(s.value))?;
        w.write_str(",\"max\":")?;
        json_num(w, s.max)?;
        w.write_str(",\"crit\":")?;
        json_num(w, s.crit)?;
        write!(w, ",\"ok\":{}}}", s.ok)?;
    }
    w.write_str("],\"raid\":[")?;
    for (i, r) in h.raid.iter().enumerate() {
        w.write_str(if i == 0 { "{\"name\":" } else { ",{\"name\":" })?;
        json_str(w, &r.name)?;
        w.write_str(",\"state\":")?;
        json_str(w, &r.state)?;
        write!(w, ",\"ok\":{}}}", r.ok)?;
    }
    w.write_str("],\"ping\":[")?;
    for (i, p) in h.ping.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        write!(w, "{sep}{{\"address\":\"{}\",\"reachable\":{}}}", p.address, p.reachable)?;
    }
    w.write_str("],\"watchdog\":{\"device\":")?;
    json_str(w, &h.watchdog.device)?;
    write!(w, ",\"armed\":{},\"timeout_ms\":{}}}}}", h.watchdog.armed, h.watchdog.timeout_ms)
}

/// A JSON string literal: quotes, backslashes and control characters escaped.
fn json_str<W: Write + ?Sized>(w: &mut W, s: &str) -> fmt::Result {
    w.write_char('"')?;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let escape = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            c if (c as u32) < 0x20 || c == '\u{7f}' => "",
            _ => continue,
        };
        w.write_str(&s[start..i])?;
        if escape.is_empty() {
            write!(w, "\\u{:04x}", c as u32)?;
        } else {
            w.write_str(escape)?;
        }
        start = i + c.len_utf8();
    }
    w.write_str(&s[start..])?;
    w.write_char('"')
}

fn json_opt<W: Write + ?Sized, T: fmt::Display>(w: &mut W, v: Option<T>) -> fmt::Result {
    match v {
        Some(v) => write!(w, "{v}"),
        None => w.write_str("null"),
    }
}

/// A JSON number, `null` for none and for NaN or infinity (which JSON cannot carry).
fn json_num<W: Write + ?Sized>(w: &mut W, v: Option<f64>) -> fmt::Result {
    match v {
        Some(v) if v.is_finite() => write!(w, "{v}"),
        _ => w.write_str("null"),
    }
}

// ---- Human --------------------------------------------------------------------------------

/// Writes the snapshot as one screen of text, every line within 80 columns: long names are
/// cut, and healthy sensors are counted rather than listed.
pub fn render_human<W: Write + ?Sized>(s: &Snapshot, w: &mut W) -> fmt::Result {
    let since = Age(Some(s.role_since_ms));
    writeln!(w, "node {:.32}: {} for {since}", Clean(&s.node), state_name(s.state))?;
    if s.incarnation_went_back {
        writeln!(w, "  incarnation {} WENT BACK (statedir lost or restored?);", s.incarnation)?;
        writeln!(w, "  the peer resynchronised: check the statedir and the clock")?;
    }
    let alive = if s.peer.alive { "alive" } else { "DEAD" };
    let peer_state = peer_state_name(s.peer.state);
    // A dead peer's state is only what it said last.
    let last = if s.peer.alive { "" } else { "was " };
    let differs = if s.peer.config_differs { ", OTHER CONFIG" } else { "" };
    writeln!(w, "peer {:.32}: {alive}, {last}{peer_state}{differs}", Clean(&s.peer.name))?;
    if s.peer.unfenceable {
        writeln!(w, "  peer has NO ARMED WATCHDOG: never taken over by waiting")?;
    }
    writeln!(w, "links:")?;
    for l in &s.peer.links {
        let up = if l.up { "up" } else { "DOWN" };
        write!(w, "  {:<26.26} {up:<4} ", Clean(&l.medium))?;
        match l.last_heard_ms {
            Some(ms) => write!(w, "heard {:>8} ago", Age(Some(ms)))?,
            None => write!(w, "{:<18}", "never heard")?,
        }
        writeln!(w, "  rx {:<9} lost {}", Count(l.frames_rx), Count(l.frames_lost))?;
        if !l.error.is_empty() {
            writeln!(w, "    {:.74}", Clean(&l.error))?;
        }
    }
    writeln!(w, "resources:")?;
    for r in &s.resources {
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
    human_health(w, &s.health)?;
    let c = &s.counters;
    write!(w, "frames: auth failures {}, replays {}", Count(c.auth_failures), Count(c.replays))?;
    writeln!(w, ", malformed {}", Count(c.malformed))?;
    let (crc, late) = (Count(c.crc_errors), Count(c.late_heartbeats));
    write!(w, "        crc errors {crc}, late heartbeats {late}")?;
    writeln!(w, ", kernel dropped {}", Count(c.kernel_dropped))?;
    let (unconfirmed, restarts) = (Count(c.unconfirmed), Count(c.peer_restarts));
    write!(w, "        unconfirmed {unconfirmed}, peer restarts {restarts}")?;
    writeln!(w, " ({} incarnation back)", Count(c.incarnation_resyncs))?;
    writeln!(
        w,
        "moves: failovers {}, handovers {}, split brains {}, fences {} ({} failed)",
        Count(c.failovers),
        Count(c.handovers),
        Count(c.split_brains),
        Count(c.fence_attempts),
        Count(c.fence_failures)
    )
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

// ---- Prometheus ---------------------------------------------------------------------------

/// Writes the snapshot in the Prometheus text exposition format (version 0.0.4): each
/// family's `# HELP` and `# TYPE` lines, then its samples.
pub fn render_prometheus<W: Write + ?Sized>(s: &Snapshot, w: &mut W) -> fmt::Result {
    family(w, "hapair_state", "gauge", "1 for this node's group state")?;
    for st in ALL_STATES {
        let v = u8::from(s.state == st);
        prom_sample(w, "hapair_state", &[("node", &s.node), ("state", state_name(st))], v)?;
    }
    family(w, "hapair_role_since_seconds", "gauge", "Seconds in the current state")?;
    let since = Secs(s.role_since_ms);
    writeln!(w, "hapair_role_since_seconds {since}")?;
    family(w, "hapair_peer_alive", "gauge", "1 when the peer is alive")?;
    prom_sample(w, "hapair_peer_alive", &[("peer", &s.peer.name)], u8::from(s.peer.alive))?;
    prom_links(w, &s.peer.links)?;
    prom_resources(w, &s.resources)?;
    prom_health(w, &s.health)?;
    let c = &s.counters;
    let counters = [
        ("hapair_auth_failures_total", "Frames whose HMAC did not verify", c.auth_failures),
        (
            "hapair_replays_total",
            "Frames repeated, out of order, or from before a restart",
            c.replays,
        ),
        (
            "hapair_unconfirmed_total",
            "Frames sent before the peer heard our challenge",
            c.unconfirmed,
        ),
        ("hapair_peer_restarts_total", "Restarts of the peer seen", c.peer_restarts),
        (
            "hapair_incarnation_resyncs_total",
            "Peer restarts with its incarnation back",
            c.incarnation_resyncs,
        ),
        ("hapair_malformed_total", "Frames that did not parse", c.malformed),
        ("hapair_crc_errors_total", "Serial frames with a bad CRC", c.crc_errors),
        (
            "hapair_kernel_dropped_total",
            "Datagrams the kernel dropped before hapair read them",
            c.kernel_dropped,
        ),
        ("hapair_late_heartbeats_total", "Heartbeats later than warntime", c.late_heartbeats),
        ("hapair_failovers_total", "Takeovers after the peer died", c.failovers),
        ("hapair_handovers_total", "Planned moves of the group", c.handovers),
        ("hapair_split_brains_total", "Times both nodes ran the group", c.split_brains),
        ("hapair_fence_attempts_total", "Fence commands started", c.fence_attempts),
        ("hapair_fence_failures_total", "Fence commands that failed", c.fence_failures),
    ];
    for (name, help, value) in counters {
        family(w, name, "counter", help)?;
        writeln!(w, "{name} {value}")?;
    }
    Ok(())
}

const ALL_STATES: [GroupState; 6] = [
    GroupState::Standby,
    GroupState::Starting,
    GroupState::Active,
    GroupState::Stopping,
    GroupState::Failed,
    GroupState::Maintenance,
];

fn prom_links<W: Write + ?Sized>(w: &mut W, links: &[Link]) -> fmt::Result {
    family(w, "hapair_link_up", "gauge", "1 when the heartbeat link is up")?;
    for l in links {
        prom_sample(w, "hapair_link_up", &[("medium", &l.medium)], u8::from(l.up))?;
    }
    family(w, "hapair_link_last_heard_seconds", "gauge", "Seconds since the last frame")?;
    for l in links.iter().filter(|l| l.last_heard_ms.is_some()) {
        let age = Secs(l.last_heard_ms.unwrap_or(0));
        prom_sample(w, "hapair_link_last_heard_seconds", &[("medium", &l.medium)], age)?;
    }
    family(w, "hapair_link_frames_received_total", "counter", "Valid frames received")?;
    for l in links {
        let name = "hapair_link_frames_received_total";
        prom_sample(w, name, &[("medium", &l.medium)], l.frames_rx)?;
    }
    family(w, "hapair_link_frames_lost_total", "counter", "Frames missing by sequence")?;
    for l in links {
        prom_sample(w, "hapair_link_frames_lost_total", &[("medium", &l.medium)], l.frames_lost)?;
    }
    let name = "hapair_link_kernel_dropped_total";
    family(w, name, "counter", "Datagrams dropped by the kernel: not frames, or no room")?;
    for l in links {
        prom_sample(w, name, &[("medium", &l.medium)], l.kernel_dropped)?;
    }
    Ok(())
}

fn prom_resources<W: Write + ?Sized>(w: &mut W, resources: &[Resource]) -> fmt::Result {
    family(w, "hapair_resource_running", "gauge", "1 when the resource runs here")?;
    for r in resources {
        let labels = [("resource", r.name.as_str()), ("kind", &r.kind), ("state", r.state.name())];
        let running = u8::from(r.state == ResourceState::Running);
        prom_sample(w, "hapair_resource_running", &labels, running)?;
    }
    family(w, "hapair_resource_failures", "gauge", "Failures since the last cleanup")?;
    for r in resources {
        prom_sample(w, "hapair_resource_failures", &[("resource", &r.name)], r.failures)?;
    }
    Ok(())
}

fn prom_health<W: Write + ?Sized>(w: &mut W, h: &HealthStatus) -> fmt::Result {
    family(w, "hapair_health_ok", "gauge", "1 when this node is healthy")?;
    writeln!(w, "hapair_health_ok {}", u8::from(h.ok))?;
    family(w, "hapair_sensor_value", "gauge", "Sensor reading (C, V or RPM)")?;
    for s in h.sensors.iter().filter(|s| s.value.is_finite()) {
        prom_sample(w, "hapair_sensor_value", &[("sensor", &s.name)], s.value)?;
    }
    family(w, "hapair_sensor_ok", "gauge", "1 when the sensor is within its limits")?;
    for s in &h.sensors {
        prom_sample(w, "hapair_sensor_ok", &[("sensor", &s.name)], u8::from(s.ok))?;
    }
    family(w, "hapair_raid_ok", "gauge", "1 when the md array is neither degraded nor failed")?;
    for r in &h.raid {
        prom_sample(w, "hapair_raid_ok", &[("array", &r.name)], u8::from(r.ok))?;
    }
    family(w, "hapair_ping_reachable", "gauge", "1 when the ping node answers")?;
    for p in &h.ping {
        let mut addr = String::<46>::new();
        // INVARIANT: an IPv6 address prints in at most 45 characters.
        let _ = write!(addr, "{}", p.address);
        prom_sample(w, "hapair_ping_reachable", &[("address", &addr)], u8::from(p.reachable))?;
    }
    family(w, "hapair_watchdog_armed", "gauge", "1 when the hardware watchdog is petted")?;
    writeln!(w, "hapair_watchdog_armed {}", u8::from(h.watchdog.armed))
}

fn family<W: Write + ?Sized>(w: &mut W, name: &str, kind: &str, help: &str) -> fmt::Result {
    writeln!(w, "# HELP {name} {help}")?;
    writeln!(w, "# TYPE {name} {kind}")
}

fn prom_sample<W, V>(w: &mut W, name: &str, labels: &[(&str, &str)], value: V) -> fmt::Result
where
    W: Write + ?Sized,
    V: fmt::Display,
{
    w.write_str(name)?;
    for (i, (key, val)) in labels.iter().enumerate() {
        w.write_str(if i == 0 { "{" } else { "," })?;
        write!(w, "{key}=\"")?;
        for c in val.chars() {
            match c {
                '\\' => w.write_str("\\\\")?,
                '"' => w.write_str("\\\"")?,
                '\n' => w.write_str("\\n")?,
                c => w.write_char(c)?,
            }
        }
        w.write_str("\"")?;
    }
    if !labels.is_empty() {
        w.write_str("}")?;
    }
    writeln!(w, " {value}")
}

/// Milliseconds printed as seconds with three decimals.
struct Secs(u64);

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}", self.0 / 1000, self.0 % 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(v: impl fmt::Display) -> std::string::String {
        v.to_string()
    }

    #[test]
    fn json_strings_escape_what_json_requires() {
        let mut out = std::string::String::new();
        json_str(&mut out, "a\"b\\c\nd\u{1}e\u{7f}ü").unwrap();
        assert_eq!(out, r#""a\"b\\c\nd\u0001e\u007fü""#);
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

    #[test]
    fn set_text_cuts_at_a_character_boundary() {
        let mut name = Name::new();
        set_text(&mut name, &"é".repeat(40));
        assert_eq!(name.chars().count(), NAME_LEN_MAX / 2);
    }
}
