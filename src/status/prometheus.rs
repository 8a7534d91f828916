//! The Prometheus rendering of the status (`hapair status --prometheus`): the text
//! exposition format, version 0.0.4, each family's `# HELP` and `# TYPE` lines then its
//! samples. One counter family per entry of `COUNTERS`, in its order. A series about a group
//! or one of its resources has a `group` label first (SPEC §7.1: `hapair_state{group="web",
//! ...}`, `hapair_resource_running{group="web",resource="...",...}`); the node's own series
//! (peer, links, fence, health, counters) have none.

use core::fmt::{self, Write};

use heapless::String;

use super::{
    COUNTERS, Fence, HealthStatus, IpmiStatus, Link, Owner, ResourceState, Snapshot, state_name,
};
use crate::limits::GROUPS_MAX;
use crate::wire::GroupState;

/// Writes the snapshot in the Prometheus text exposition format (version 0.0.4): each
/// family's `# HELP` and `# TYPE` lines, then its samples.
pub fn render_prometheus<W: Write + ?Sized>(s: &Snapshot, w: &mut W) -> fmt::Result {
    prom_groups(w, s)?;
    family(w, "hapair_peer_alive", "gauge", "1 when the peer is alive")?;
    prom_sample(w, "hapair_peer_alive", &[("peer", &s.peer.name)], u8::from(s.peer.alive))?;
    family(w, "hapair_waits_for_peer", "gauge", "1 while waiting for the peer (unclean stop)")?;
    writeln!(w, "hapair_waits_for_peer {}", u8::from(s.waits_for_peer.is_some()))?;
    prom_fence(w, &s.fence)?;
    prom_drbd(w, &s.drbd)?;
    prom_links(w, &s.peer.links)?;
    prom_resources(w, s)?;
    prom_health(w, &s.health)?;
    for c in COUNTERS {
        let name = Total(c.name);
        family(w, name, "counter", c.help)?;
        writeln!(w, "{name} {}", (c.value)(&s.counters))?;
    }
    Ok(())
}

/// The family name of a counter of `COUNTERS`: `hapair_NAME_total`.
#[derive(Clone, Copy)]
struct Total(&'static str);

impl fmt::Display for Total {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "hapair_{}_total", self.0)
    }
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
    let name = "hapair_link_keepalive_seconds";
    family(w, name, "gauge", "How often this node sends on the link")?;
    for l in links {
        prom_sample(w, name, &[("medium", &l.medium)], Secs(l.keepalive_ms))?;
    }
    let name = "hapair_link_deadtime_seconds";
    family(w, name, "gauge", "Silence after which the link is down")?;
    for l in links {
        prom_sample(w, name, &[("medium", &l.medium)], Secs(l.deadtime_ms))?;
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
    let name = "hapair_link_nic_errors_ok";
    let help = "0 while the link's interface has errors over the limit of its `errors net` line";
    family(w, name, "gauge", help)?;
    for l in links {
        prom_sample(w, name, &[("medium", &l.medium)], u8::from(l.nic_errors.is_empty()))?;
    }
    Ok(())
}

fn prom_drbd<W: Write + ?Sized>(w: &mut W, drbd: &[super::Drbd]) -> fmt::Result {
    if drbd.is_empty() {
        return Ok(());
    }
    type Series = (&'static str, &'static str, fn(&super::Drbd) -> bool);
    let series: [Series; 3] = [
        (
            "hapair_drbd_up_to_date",
            "1 when this node's disk of the DRBD resource is UpToDate",
            |d| d.disk == "UpToDate",
        ),
        ("hapair_drbd_primary", "1 when the DRBD resource is Primary here", |d| {
            d.role == "Primary"
        }),
        ("hapair_drbd_connected", "1 when the DRBD resource is connected to the peer", |d| {
            crate::drbd::connected_name(d.connection)
        }),
    ];
    for (name, help, value) in series {
        family(w, name, "gauge", help)?;
        for d in drbd {
            prom_sample(w, name, &[("resource", &d.resource)], u8::from(value(d)))?;
        }
    }
    let name = "hapair_drbd_synced_ratio";
    family(w, name, "gauge", "How much of a resync under way is done (0 to 1)")?;
    for d in drbd {
        if let Some(p) = d.synced_permille {
            let ratio = p as f64 / 1000.0;
            prom_sample(w, name, &[("resource", &d.resource)], ratio)?;
        }
    }
    Ok(())
}

fn prom_fence<W: Write + ?Sized>(w: &mut W, f: &Fence) -> fmt::Result {
    family(w, "hapair_fence_delay_seconds", "gauge", "fence_delay of the fence command")?;
    prom_sample(w, "hapair_fence_delay_seconds", &[("mode", f.mode)], Secs(f.delay_ms))?;
    let Some(l) = &f.last else { return Ok(()) };
    family(w, "hapair_fence_last_ok", "gauge", "1 when the last fence command succeeded")?;
    writeln!(w, "hapair_fence_last_ok {}", u8::from(l.ok))?;
    family(w, "hapair_fence_last_seconds", "gauge", "Seconds since the last fence command ended")?;
    writeln!(w, "hapair_fence_last_seconds {}", Secs(l.ago_ms))
}

/// `labels` when the series has a group (its `group` label first), else `labels[1..]`.
fn grouped<'l, T>(group: Option<&str>, labels: &'l [T]) -> &'l [T] {
    if group.is_some() { labels } else { &labels[1..] }
}

/// This node's state of each group, how long it has been in it, and who holds each group.
/// Without groups (a snapshot made by hand) the first two have no `group` label.
fn prom_groups<W: Write + ?Sized>(w: &mut W, s: &Snapshot) -> fmt::Result {
    let mut rows = heapless::Vec::<(GroupState, u64, Option<&str>), GROUPS_MAX>::new();
    if s.groups.is_empty() {
        let _ = rows.push((s.state, s.role_since_ms, None));
    }
    for g in &s.groups {
        // INVARIANT: `rows` has the groups' capacity.
        let _ = rows.push((g.state, g.role_since_ms, Some(g.name.as_str())));
    }
    family(w, "hapair_state", "gauge", "1 for this node's state of the group")?;
    for &(state, _, group) in &rows {
        for st in ALL_STATES {
            let labels = [
                ("group", group.unwrap_or_default()),
                ("node", s.node.as_str()),
                ("state", state_name(st)),
            ];
            prom_sample(w, "hapair_state", grouped(group, &labels), u8::from(state == st))?;
        }
    }
    family(w, "hapair_role_since_seconds", "gauge", "Seconds in the current state of the group")?;
    for &(_, ms, group) in &rows {
        let labels = [("group", group.unwrap_or_default())];
        prom_sample(w, "hapair_role_since_seconds", grouped(group, &labels), Secs(ms))?;
    }
    let help = "1 for the node that holds the group (0 for both: nobody)";
    family(w, "hapair_group_owner", "gauge", help)?;
    for g in &s.groups {
        for who in [Owner::This, Owner::Peer] {
            let labels = [("group", g.name.as_str()), ("node", s.owner_name(who))];
            prom_sample(w, "hapair_group_owner", &labels, u8::from(g.owner == Some(who)))?;
        }
    }
    Ok(())
}

fn prom_resources<W: Write + ?Sized>(w: &mut W, s: &Snapshot) -> fmt::Result {
    family(w, "hapair_resource_running", "gauge", "1 when the resource runs here")?;
    for (i, r) in s.resources.iter().enumerate() {
        let group = s.group_of(i).map(|g| g.name.as_str());
        let labels = [
            ("group", group.unwrap_or_default()),
            ("resource", r.name.as_str()),
            ("kind", &r.kind),
            ("state", r.state.name()),
        ];
        let running = u8::from(r.state == ResourceState::Running);
        prom_sample(w, "hapair_resource_running", grouped(group, &labels), running)?;
    }
    family(w, "hapair_resource_failures", "gauge", "Failures since the last cleanup")?;
    for (i, r) in s.resources.iter().enumerate() {
        let group = s.group_of(i).map(|g| g.name.as_str());
        let labels = [("group", group.unwrap_or_default()), ("resource", r.name.as_str())];
        prom_sample(w, "hapair_resource_failures", grouped(group, &labels), r.failures)?;
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
    prom_errors(w, h)?;
    if let Some(i) = &h.ipmi {
        prom_ipmi(w, i)?;
    }
    family(w, "hapair_watchdog_armed", "gauge", "1 when the hardware watchdog is petted")?;
    writeln!(w, "hapair_watchdog_armed {}", u8::from(h.watchdog.armed))
}

fn prom_ipmi<W: Write + ?Sized>(w: &mut W, i: &IpmiStatus) -> fmt::Result {
    let help = "1 when the BMC's device is open and the BMC answers";
    family(w, "hapair_ipmi_bmc_reachable", "gauge", help)?;
    writeln!(w, "hapair_ipmi_bmc_reachable {}", u8::from(i.reachable))?;
    family(w, "hapair_ipmi_sensor_value", "gauge", "BMC sensor reading, in its unit")?;
    for s in &i.sensors {
        if let Some(v) = s.value.filter(|v| v.is_finite()) {
            let l = [("sensor", s.name.as_str()), ("unit", s.unit)];
            prom_sample(w, "hapair_ipmi_sensor_value", &l, v)?;
        }
    }
    let help = "BMC sensor threshold from its sensor record, in its unit";
    family(w, "hapair_ipmi_sensor_threshold", "gauge", help)?;
    for s in &i.sensors {
        for (name, v) in s.thresholds() {
            if let Some(v) = v {
                let l = [("sensor", s.name.as_str()), ("unit", s.unit), ("threshold", name)];
                prom_sample(w, "hapair_ipmi_sensor_threshold", &l, v)?;
            }
        }
    }
    let help = "1 when the BMC sensor is inside its critical thresholds";
    family(w, "hapair_ipmi_sensor_ok", "gauge", help)?;
    for s in &i.sensors {
        prom_sample(w, "hapair_ipmi_sensor_ok", &[("sensor", s.name.as_str())], u8::from(s.ok))?;
    }
    for (name, kind, help, v) in [
        ("hapair_ipmi_sel_entries_total", "counter", "New SEL entries read", i.sel_entries),
        ("hapair_ipmi_sel_failures_total", "counter", "SEL failure entries", i.sel_failures),
        ("hapair_ipmi_sel_correctable_total", "counter", "SEL corrected errors", i.sel_correctable),
        (
            "hapair_ipmi_sel_latched",
            "gauge",
            "1 while a SEL failure awaits cleanup",
            u64::from(i.sel_latched),
        ),
    ] {
        family(w, name, kind, help)?;
        writeln!(w, "{name} {v}")?;
    }
    Ok(())
}

fn prom_errors<W: Write + ?Sized>(w: &mut W, h: &HealthStatus) -> fmt::Result {
    let help = "Errors the kernel counted since hapair started (across counter resets)";
    family(w, "hapair_errors_total", "counter", help)?;
    for e in &h.errors {
        let l = [("kind", e.kind.as_str()), ("name", e.name.as_str())];
        prom_sample(w, "hapair_errors_total", &l, e.total)?;
    }
    family(w, "hapair_errors_in_window", "gauge", "Errors within the source's window")?;
    for e in &h.errors {
        let l = [("kind", e.kind.as_str()), ("name", e.name.as_str())];
        prom_sample(w, "hapair_errors_in_window", &l, e.rate)?;
    }
    family(
        w,
        "hapair_errors_limit",
        "gauge",
        "More errors than this within the window is unhealthy",
    )?;
    for e in &h.errors {
        let l = [("kind", e.kind.as_str()), ("name", e.name.as_str())];
        prom_sample(w, "hapair_errors_limit", &l, e.limit)?;
    }
    family(w, "hapair_errors_uncorrected", "gauge", "EDAC uncorrected memory errors (ue_count)")?;
    for e in h.errors.iter().filter(|e| e.kind == "edac") {
        prom_sample(
            w,
            "hapair_errors_uncorrected",
            &[("kind", "edac"), ("name", "")],
            e.uncorrected,
        )?;
    }
    family(w, "hapair_errors_ok", "gauge", "1 when the error source is within its limit")?;
    for e in &h.errors {
        let l = [("kind", e.kind.as_str()), ("name", e.name.as_str())];
        prom_sample(w, "hapair_errors_ok", &l, u8::from(e.state == "ok"))?;
    }
    Ok(())
}

fn family<W, N>(w: &mut W, name: N, kind: &str, help: &str) -> fmt::Result
where
    W: Write + ?Sized,
    N: fmt::Display,
{
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
