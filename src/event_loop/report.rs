//! Fills the status snapshot (SPEC §5) from the core, the links and their receiver, the resources
//! and the health sources, in place and without allocating, and names events for `notify`.

use core::fmt::Write;

use crate::config::{self, Config};
use crate::core::time::{Duration, Instant};
use crate::core::{
    Detail, Event, FLAG_HOLDING, Groups, LinkHealth, PeerStatus, ResourceState as CoreRes, Role,
};
use crate::drivers::children::{ExitStatus, Exited};
use crate::drivers::ipmi::SdrState;
use crate::drivers::watchdog::Watchdog;
use crate::health::ipmi::SensorVerdict;
use crate::health::sensor::SensorKind;
use crate::status::{self, Owner, ResourceState, Snapshot, set_text};
use crate::wire::{GroupState, Payload};

use super::group::Group;
use super::health_io::HealthIo;
use super::links::Links;

/// Sets the parts that never change: the links' names and timings, and the groups' and
/// resources'.
pub fn init(s: &mut Snapshot, config: &Config, links: &Links, group: &Group) {
    for (link, (i, m)) in links.iter().zip(config.pair.media.iter().enumerate()) {
        let mut l = status::Link::default();
        l.medium.clone_from(&link.label);
        // What the core paces and judges the link by (SPEC §7.7).
        let params = super::link_params(config, i, m);
        l.keepalive_ms = params.send_interval.total_millis();
        l.deadtime_ms = params.dead_after.total_millis();
        // INVARIANT: as many links as LINKS_MAX at most, the snapshot's capacity.
        let _ = s.peer.links.push(l);
    }
    init_resources(s, config, group);
}

/// Sets the groups' names, homes and resource ranges (`config.groups`), and the resources'
/// names (again, after a reload).
pub fn init_resources(s: &mut Snapshot, config: &Config, group: &Group) {
    s.resources.clear();
    for m in group.members() {
        let r = status::Resource {
            name: m.name.clone(),
            kind: m.kind.clone(),
            state: ResourceState::Stopped,
            failures: 0,
            last_exit_code: None,
            last_error: status::Text::new(),
        };
        let _ = s.resources.push(r);
    }
    s.groups.clear();
    for g in &config.groups {
        let mut status = status::GroupStatus::new(&g.name, &g.home);
        status.auto_failback = g.auto_failback;
        status.resources = g.resources.clone();
        // INVARIANT: at most GROUPS_MAX groups (the configuration's and the snapshot's).
        let _ = s.groups.push(status);
    }
}

/// Who holds a group (`status` `groups[].owner`), from its `Node`'s role and view of the peer:
/// - this node when its role holds the group (`Role::holds`: starting, active, stopping,
///   failed after a failed stop, maintenance over a group that ran here). Not `Init` while it
///   probes or keeps what its probes found (`Node::holds` counts it, for safety): it has not
///   taken the group, and its state reads `standby`;
/// - else the peer, when it is alive and its last frame about the group shows it holding
///   (`FLAG_HOLDING` in a state other than `standby`: what the core calls holding, which
///   leaves out a peer in its own `Init`);
/// - else nobody (a dead peer's last word is not ownership; the survivor shows `null` until
///   it starts the group).
///
/// This node comes first: in a split brain both hold, and it knows its own role for sure.
pub fn owner(role: Role, peer: &PeerStatus) -> Option<Owner> {
    if role.holds() {
        return Some(Owner::This);
    }
    let holding = |p: &Payload| p.flags & FLAG_HOLDING != 0 && p.state != GroupState::Standby;
    (peer.alive && peer.last.as_ref().is_some_and(holding)).then_some(Owner::Peer)
}

/// The core's and the links' view: state, peer, links, counters. The links' kernel drop
/// counts are read from their sockets now (a getsockopt per UDP link).
pub fn fill(s: &mut Snapshot, now: Instant, core: &Groups, links: &mut Links) {
    // The first group's (SPEC §7.1: the top-level state describes it).
    s.state = core.state();
    s.role_since_ms = now.saturating_since(core.role_since()).total_millis();
    for (g, node) in s.groups.iter_mut().zip(core.nodes()) {
        g.state = node.state();
        g.role_since_ms = now.saturating_since(node.role_since()).total_millis();
        g.owner = owner(node.role(), &node.peer());
        g.epoch = node.epoch();
        g.intent = node.intent();
    }
    let peer = core.peer();
    s.peer.alive = peer.alive;
    s.peer.state = peer.last.map(|p| p.state);
    s.peer.config_differs = peer.config_differs;
    s.peer.watchdog_timeout_ms = peer.last.map(|p| u64::from(p.watchdog_timeout_ms));
    s.peer.unfenceable = core.peer_unfenceable();
    s.peer.incarnation = peer.incarnation;
    let rx = links.receiver();
    s.incarnation_went_back = rx.own_incarnation_went_back();
    // A copy: the links' own counters below are read through `&mut`.
    let stats = *rx.stats();
    let (mut crc, mut kernel_dropped) = (0, 0);
    for ((slot, status), (i, link)) in
        s.peer.links.iter_mut().zip(core.links()).zip(links.iter_mut().enumerate())
    {
        slot.up = matches!(status.health, LinkHealth::Green | LinkHealth::Yellow);
        slot.last_heard_ms = status.last_heard.map(|t| now.saturating_since(t).total_millis());
        slot.frames_rx = stats.links[i].frames_rx;
        slot.frames_lost = stats.links[i].frames_lost;
        slot.error.clone_from(&link.error);
        slot.kernel_dropped = link.kernel_dropped();
        crc += link.crc_errors();
        kernel_dropped += slot.kernel_dropped;
    }
    let c = core.counters();
    s.counters = status::Counters {
        auth_failures: stats.auth_failures,
        replays: stats.replays,
        unconfirmed: stats.unconfirmed,
        peer_restarts: stats.peer_restarts,
        incarnation_resyncs: stats.incarnation_resyncs,
        malformed: stats.malformed + stats.bad_version + stats.wrong_link,
        crc_errors: crc,
        kernel_dropped,
        late_heartbeats: c.late_heartbeats,
        failovers: c.failovers,
        handovers: c.handovers,
        split_brains: c.split_brains,
        // Counted by the loop, which runs the fence command (kept across fills).
        fence_attempts: s.counters.fence_attempts,
        fence_failures: c.fence_failures,
    };
}

/// Resources and health.
pub fn fill_local(s: &mut Snapshot, core: &Groups, group: &Group, health: &HealthIo) {
    for ((slot, st), m) in s
        .resources
        .iter_mut()
        .zip(core.nodes().iter().flat_map(|n| n.resources()))
        .zip(group.members())
    {
        slot.state = match st.state {
            CoreRes::Stopped => ResourceState::Stopped,
            CoreRes::Starting => ResourceState::Starting,
            CoreRes::Running => ResourceState::Running,
            CoreRes::Stopping => ResourceState::Stopping,
            CoreRes::Failed => ResourceState::Failed,
            CoreRes::Unmanaged => ResourceState::Unknown,
        };
        slot.failures = st.failures;
        slot.last_exit_code = m.last_exit_code;
        slot.last_error.clone_from(&m.last_error);
    }
    let h = &mut s.health;
    h.ok = core.advertised_health().is_ok();
    h.reasons.clear();
    for (_, reason) in health.monitor.reasons() {
        let mut t = status::Text::new();
        set_text(&mut t, reason);
        let _ = h.reasons.push(t);
    }
    if core.advertised_health().has(crate::wire::Health::RESTARTS) {
        let mut t = status::Text::new();
        set_text(&mut t, "restart limit exhausted");
        let _ = h.reasons.push(t);
    }
    fill_sensors(h, health);
    fill_raid(h, health);
    fill_errors(h, health);
    fill_ipmi(h, health);
    h.ping.clear();
    if let Some(p) = &health.ping {
        for n in p.nodes() {
            let node = status::Ping { address: n.addr, reachable: n.reachable };
            let _ = h.ping.push(node);
        }
    }
}

fn fill_sensors(h: &mut status::HealthStatus, health: &HealthIo) {
    h.sensors.clear();
    let Some(hw) = &health.hwmon else { return };
    for input in hw.inputs() {
        // Kernel units to user units: mV -> V, m°C -> °C, RPM stays.
        let scale = match input.kind {
            SensorKind::Fan => 1.0,
            SensorKind::Voltage | SensorKind::Temperature => 1000.0,
        };
        let mut name = status::Name::new();
        let _ = write!(name, "{}/{}", input.chip, input.input);
        let sensor = status::Sensor {
            name,
            value: input.value.map_or(f64::NAN, |v| v as f64 / scale),
            max: input.limits.max.map(|v| v as f64 / scale),
            crit: input.limits.crit.map(|v| v as f64 / scale),
            ok: !input.verdict().is_unhealthy(),
        };
        let _ = h.sensors.push(sensor);
    }
}

fn fill_raid(h: &mut status::HealthStatus, health: &HealthIo) {
    h.raid.clear();
    let Some(md) = &health.mdstat else { return };
    for a in &md.last().arrays {
        let mut r = status::Raid::default();
        set_text(&mut r.name, &a.name);
        let _ = write!(r.state, "[{}]", a.map);
        r.ok = !a.is_unhealthy();
        let _ = h.raid.push(r);
    }
}

fn fill_errors(h: &mut status::HealthStatus, health: &HealthIo) {
    h.errors.clear();
    for e in &health.errors {
        let j = &e.judge;
        let mut c = status::ErrorCounter {
            count: j.count(),
            total: j.total(),
            rate: j.in_window(),
            limit: e.line.max,
            window_ms: e.line.window.total_millis(),
            uncorrected: j.uncorrected(),
            ..status::ErrorCounter::default()
        };
        set_text(&mut c.kind, e.line.kind.name());
        set_text(&mut c.name, &e.line.name);
        set_text(&mut c.state, j.verdict().name());
        c.report = if e.line.on_link() { "link" } else { "node" };
        let _ = h.errors.push(c);
    }
}

fn fill_ipmi(h: &mut status::HealthStatus, health: &HealthIo) {
    let Some(source) = &health.ipmi else {
        h.ipmi = None;
        return;
    };
    let i = h.ipmi.get_or_insert_with(status::IpmiStatus::default);
    let c = source.conversation();
    i.device.clear();
    let _ = write!(i.device, "{}", source.device.display());
    i.reachable = source.open_error().is_none() && !c.reach().is_silent();
    i.error.clear();
    if let Some(e) = source.open_error() {
        let _ = write!(i.error, "cannot open: {}", e.desc());
    } else if c.reach().is_silent() {
        let _ = write!(i.error, "the BMC does not answer");
    } else if let SdrState::Failed(e) = c.sdr() {
        let _ = write!(i.error, "sensor records unreadable: {e}");
    } else if let Some(e) = c.sel_unsupported() {
        let _ = write!(i.error, "event log unreadable: {e}");
    }
    i.records = match c.sdr() {
        SdrState::Read { records, .. } => Some(records),
        SdrState::Reading | SdrState::Failed(_) => None,
    };
    i.sensors.clear();
    let real = |v: Option<i64>| v.map(|v| v as f64 / 1000.0);
    for s in c.sensors() {
        let (r, t) = (&s.record, &s.record.thresholds);
        let mut sensor = status::IpmiSensor {
            unit: r.unit.symbol(),
            value: real(s.judge.value()),
            lower_nr: real(t.lower_nr),
            lower_crit: real(t.lower_crit),
            lower_noncrit: real(t.lower_noncrit),
            upper_noncrit: real(t.upper_noncrit),
            upper_crit: real(t.upper_crit),
            upper_nr: real(t.upper_nr),
            ok: s.judge.verdict() == SensorVerdict::Ok,
            ..status::IpmiSensor::default()
        };
        set_text(&mut sensor.name, &r.name);
        // INVARIANT: at most IPMI_SENSORS_MAX sensors, the capacity of both.
        let _ = i.sensors.push(sensor);
    }
    let sel = c.sel();
    i.sel_entries = sel.entries();
    i.sel_failures = sel.failures();
    i.sel_correctable = sel.correctable();
    i.sel_correctable_in_window = sel.correctable_in_window();
    i.sel_latched = sel.latched().is_some();
    i.last_failure.clear();
    if let Some(e) = sel.latched().or(sel.last_failure()) {
        let _ = write!(i.last_failure, "{e}");
    }
}

/// Each link's `nic_errors`: the `errors net` sources that report to the links of their
/// interface (`report link`) and are not ok, on every link whose medium uses that interface.
pub fn fill_nic_errors(s: &mut Snapshot, config: &Config, health: &HealthIo) {
    for (slot, medium) in s.peer.links.iter_mut().zip(&config.pair.media) {
        slot.nic_errors.clear();
        let iface = match medium {
            config::Medium::Serial { .. } => continue,
            config::Medium::Bcast { iface }
            | config::Medium::Mcast { iface, .. }
            | config::Medium::Ucast { iface, .. } => iface,
        };
        let bad = health.errors.iter().find(|e| {
            e.line.on_link() && e.line.name == *iface && e.judge.verdict().is_unhealthy()
        });
        if let Some(e) = bad {
            let mut reasons = crate::health::Reasons::new();
            let l = &e.line;
            let verdict = e.judge.verdict();
            crate::health::errors::reason(&mut reasons, l.kind, &l.name, verdict, l.max, l.window);
            set_text(&mut slot.nic_errors, reasons.iter().next().unwrap_or("errors"));
        }
    }
}

/// The watchdog line of status.
pub fn fill_watchdog(s: &mut Snapshot, config: &Config, wd: Option<&Watchdog>) {
    let w = &mut s.health.watchdog;
    w.device.clear();
    if let Some(c) = &config.local.watchdog {
        let _ = write!(w.device, "{}", c.device.display());
    }
    w.armed = wd.is_some_and(Watchdog::is_armed);
    w.timeout_ms = wd.map_or(0, |w| w.timeout().total_millis());
}

/// How the last fence command ended (`status` `fence.last`), kept by the loop.
#[derive(Clone, Debug)]
pub struct FenceLast {
    at: Instant,
    ok: bool,
    status: ExitStatus,
    took: Duration,
    output: status::Text,
}

impl FenceLast {
    /// The fence command `exited` at `now`.
    pub fn new<T>(now: Instant, ok: bool, exited: &Exited<T>) -> FenceLast {
        let mut output = status::Text::new();
        let _ = write!(output, "{}", LastLine(&exited.output_tail));
        FenceLast { at: now, ok, status: exited.status, took: exited.elapsed, output }
    }
}

/// The fence part of the status, and whether the node waits for its peer.
pub fn fill_fence(s: &mut Snapshot, now: Instant, core: &Groups, last: Option<&FenceLast>) {
    s.waits_for_peer = core.waits_for_peer().then_some(status::WAIT_UNCLEAN_STOP);
    let f = &mut s.fence;
    f.delay_left_ms = core.fence_delay_left(now).map(Duration::total_millis);
    f.peer_vouched_down = core.peer_vouched_down();
    f.last = last.map(|l| {
        let mut text = status::Text::new();
        let _ = write!(text, "{}", l.status);
        status::FenceRun {
            ago_ms: now.saturating_since(l.at).total_millis(),
            ok: l.ok,
            status: text,
            took_ms: l.took.total_millis(),
            output: l.output.clone(),
        }
    });
}

/// The fence's configuration in the status (set once at start: a change needs a restart).
pub fn init_fence(s: &mut Snapshot, config: &Config) {
    s.fence.mode = match config.pair.fence {
        None => "none",
        Some(config::Fence::Watchdog) => "watchdog",
        Some(config::Fence::Command(_)) => "command",
    };
    s.fence.delay_ms = config.pair.fence_delay.total_millis();
}

/// A child's output tail for a log line: its non-empty lines, trimmed and joined with ` | `,
/// control characters as `?`, invalid UTF-8 as U+FFFD. Writes without allocating.
pub struct Tail<'a>(pub &'a [u8]);

impl core::fmt::Display for Tail<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut first = true;
        for line in self.0.split(|&b| b == b'\n').map(<[u8]>::trim_ascii) {
            if line.is_empty() {
                continue;
            }
            f.write_str(if first { "" } else { " | " })?;
            first = false;
            write_clean(f, line)?;
        }
        if first { f.write_str("(no output)") } else { Ok(()) }
    }
}

/// The last non-empty line of a child's output tail, cleaned as `Tail` does.
struct LastLine<'a>(&'a [u8]);

impl core::fmt::Display for LastLine<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let last = self.0.split(|&b| b == b'\n').map(<[u8]>::trim_ascii).rfind(|l| !l.is_empty());
        write_clean(f, last.unwrap_or_default())
    }
}

fn write_clean(f: &mut core::fmt::Formatter<'_>, bytes: &[u8]) -> core::fmt::Result {
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            f.write_char(if c.is_control() { '?' } else { c })?;
        }
        if !chunk.invalid().is_empty() {
            f.write_char(char::REPLACEMENT_CHARACTER)?;
        }
    }
    Ok(())
}

/// The event's name as `notify` gets it (first argument).
pub fn event_name(event: Event) -> &'static str {
    match event {
        Event::Starting => "starting",
        Event::Active => "active",
        Event::Stopping => "stopping",
        Event::Standby => "standby",
        Event::Fencing => "fencing",
        Event::Failover => "failover",
        Event::Handover => "handover",
        Event::SplitBrain => "split-brain",
        Event::PeerDead => "peer-dead",
        Event::PeerAlive => "peer-alive",
        Event::PeerRestarted => "peer-restarted",
        Event::Fenced => "fenced",
        Event::FenceFailed => "fence-failed",
        Event::ResourceFailed => "resource-failed",
        Event::Failed => "failed",
        Event::Maintenance => "maintenance",
        Event::Health => "health",
        Event::Exit => "exit",
    }
}

/// `unhealthy:0x0040:errors`: the bits, then the name of each source whose bit is set.
fn write_unhealthy(out: &mut impl Write, h: crate::wire::Health) -> core::fmt::Result {
    use crate::wire::Health;
    write!(out, "unhealthy:{:#06x}", h.0)?;
    let mut sep = ':';
    let restarts = (Health::RESTARTS, "restarts");
    let named = crate::health::Source::ALL.into_iter().map(|s| (s.bit(), s.name()));
    for (_, name) in named.chain(core::iter::once(restarts)).filter(|(b, _)| h.has(*b)) {
        write!(out, "{sep}{name}")?;
        sep = ',';
    }
    Ok(())
}

/// The event's detail as `notify` gets it (third argument).
pub fn write_detail<const N: usize>(out: &mut heapless::String<N>, detail: Detail, group: &Group) {
    out.clear();
    let _ = match detail {
        Detail::None => Ok(()),
        Detail::Reason(r) => write!(out, "{r:?}"),
        Detail::Resource(i) => match group.members().get(usize::from(i)) {
            Some(m) => write!(out, "{}", m.name),
            None => write!(out, "{i}"),
        },
        Detail::Health(h) => {
            if h.is_ok() {
                write!(out, "ok")
            } else {
                write_unhealthy(out, h)
            }
        }
    };
}

/// The `drbd` resources as `/proc/drbd` showed them last (SPEC §7.5).
pub fn fill_drbd(s: &mut Snapshot, drbd: Option<&super::drbd::DrbdIo>) {
    s.drbd.clear();
    let Some(d) = drbd else { return };
    for (name, st) in d.states() {
        let mut resource = crate::status::Name::new();
        crate::status::set_text(&mut resource, name);
        // Cannot fail: at most RESOURCES_MAX resources, drbd ones among them.
        let _ = s.drbd.push(crate::status::Drbd {
            resource,
            connection: st.connection,
            role: st.role.name(),
            peer_role: st.peer_role.name(),
            disk: st.disk.name(),
            peer_disk: st.peer_disk.name(),
            synced_permille: st.synced_permille,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Health;

    /// The peer's last frame about a group: `state`, holding or not.
    fn peer(alive: bool, state: GroupState, holding: bool) -> PeerStatus {
        let payload = Payload {
            kind: crate::wire::Kind::Heartbeat,
            state,
            health: Health(0),
            intent: crate::wire::Intent::None,
            flags: if holding { FLAG_HOLDING } else { 0 },
            epoch: 1,
            watchdog_timeout_ms: 0,
            config_digest: [0; 8],
            groups: crate::wire::Groups::ONE,
        };
        PeerStatus { alive, last: Some(payload), ..PeerStatus::default() }
    }

    /// The owner rule (`owner`): this node while its role holds the group, else a live peer
    /// whose last frame shows it holding, else nobody.
    #[test]
    fn the_owner_is_who_holds_the_group() {
        use crate::core::{AfterStop, Role};
        let idle = peer(true, GroupState::Standby, false);
        let holding = [
            Role::Starting,
            Role::Active,
            Role::Stopping { floor: 0, then: AfterStop::HandOver },
            Role::Failed { holding: true },
            Role::Maintenance { holding: true },
        ];
        for role in holding {
            assert_eq!(owner(role, &idle), Some(Owner::This), "{role:?}");
            // First even when the peer holds it too (a split brain).
            let both = peer(true, GroupState::Active, true);
            assert_eq!(owner(role, &both), Some(Owner::This), "{role:?}");
        }
        let not_holding = [
            Role::Init,
            Role::Standby,
            Role::Fencing,
            Role::Failed { holding: false },
            Role::Maintenance { holding: false },
            Role::Exited,
        ];
        for role in not_holding {
            assert_eq!(owner(role, &idle), None, "{role:?}");
            assert_eq!(owner(role, &PeerStatus::default()), None, "{role:?}: never heard");
            for state in [GroupState::Starting, GroupState::Active, GroupState::Stopping] {
                assert_eq!(owner(role, &peer(true, state, true)), Some(Owner::Peer), "{state:?}");
                // A dead peer's last word is not ownership.
                assert_eq!(owner(role, &peer(false, state, true)), None, "{state:?}");
            }
            // Failed or in maintenance over a group that ran there: the peer holds it.
            for state in [GroupState::Failed, GroupState::Maintenance] {
                assert_eq!(owner(role, &peer(true, state, true)), Some(Owner::Peer));
                assert_eq!(owner(role, &peer(true, state, false)), None);
            }
            // A peer in its `Init` that probes or found something reads `standby` holding.
            assert_eq!(owner(role, &peer(true, GroupState::Standby, true)), None);
        }
    }

    #[test]
    fn an_unhealthy_detail_names_its_sources() {
        let mut out = heapless::String::<64>::new();
        write_unhealthy(&mut out, Health(Health::ERRORS | Health::PING | Health::RESTARTS))
            .unwrap();
        assert_eq!(out.as_str(), "unhealthy:0x0054:ping,errors,restarts");
        out.clear();
        write_unhealthy(&mut out, Health(Health::IPMI | Health::SENSOR)).unwrap();
        assert_eq!(out.as_str(), "unhealthy:0x0081:sensor,ipmi");
    }
}
