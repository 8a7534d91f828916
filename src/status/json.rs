//! The JSON rendering of the status (`hapair status --json`, SPEC §5): one object, the
//! field names and types SPEC lists, written into a caller's `fmt::Write`. The top-level
//! `state` and `resources` are the first group's, `groups` lists every group with its own
//! (SPEC §7.1). The counters come from `COUNTERS`, in its order.

use core::fmt::{self, Write};

use super::{
    COUNTERS, Drbd, Fence, HealthStatus, IpmiStatus, Resource, Snapshot, intent_name,
    peer_state_name, state_name,
};

/// Writes the snapshot as one JSON object (SPEC §5), without a trailing newline.
pub fn render_json<W: Write + ?Sized>(s: &Snapshot, w: &mut W) -> fmt::Result {
    w.write_str("{\"node\":")?;
    json_str(w, &s.node)?;
    w.write_str(",\"state\":")?;
    json_str(w, state_name(s.state))?;
    write!(
        w,
        ",\"role_since_ms\":{},\"incarnation\":{},\"incarnation_went_back\":{}",
        s.role_since_ms, s.incarnation, s.incarnation_went_back
    )?;
    w.write_str(",\"waits_for_peer\":")?;
    match s.waits_for_peer {
        Some(why) => json_str(w, why)?,
        None => w.write_str("null")?,
    }
    w.write_str(",\"peer\":{\"name\":")?;
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
        write!(w, ",\"keepalive_ms\":{},\"deadtime_ms\":{}", l.keepalive_ms, l.deadtime_ms)?;
        write!(w, ",\"frames_rx\":{},\"frames_lost\":{}", l.frames_rx, l.frames_lost)?;
        write!(w, ",\"kernel_dropped\":{}", l.kernel_dropped)?;
        w.write_str(",\"error\":")?;
        json_str(w, &l.error)?;
        w.write_str(",\"nic_errors\":")?;
        json_opt_str(w, &l.nic_errors)?;
        w.write_str("}")?;
    }
    w.write_str("]},\"resources\":")?;
    json_resources(w, s.first_resources())?;
    w.write_str(",\"groups\":[")?;
    for (i, g) in s.groups.iter().enumerate() {
        w.write_str(if i == 0 { "{\"name\":" } else { ",{\"name\":" })?;
        json_str(w, &g.name)?;
        w.write_str(",\"home\":")?;
        json_str(w, &g.home)?;
        w.write_str(",\"owner\":")?;
        match g.owner {
            Some(o) => json_str(w, s.owner_name(o))?,
            None => w.write_str("null")?,
        }
        w.write_str(",\"state\":")?;
        json_str(w, state_name(g.state))?;
        write!(w, ",\"role_since_ms\":{},\"auto_failback\":{}", g.role_since_ms, g.auto_failback)?;
        write!(w, ",\"epoch\":{},\"intent\":", g.epoch)?;
        json_str(w, intent_name(g.intent))?;
        w.write_str(",\"resources\":")?;
        json_resources(w, s.group_resources(g))?;
        w.write_str("}")?;
    }
    w.write_str("],")?;
    json_fence(w, &s.fence)?;
    w.write_str(",")?;
    json_drbd(w, &s.drbd)?;
    w.write_str(",")?;
    json_health(w, &s.health)?;
    w.write_str(",\"counters\":{")?;
    for (i, c) in COUNTERS.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        write!(w, "{sep}\"{}\":{}", c.name, (c.value)(&s.counters))?;
    }
    w.write_str("}}")
}

/// `"drbd":[{"resource","connection","role","peer_role","disk","peer_disk","synced_percent"}]`
/// (`synced_percent` null unless a resync runs).
fn json_drbd<W: Write + ?Sized>(w: &mut W, drbd: &[Drbd]) -> fmt::Result {
    w.write_str("\"drbd\":[")?;
    for (i, d) in drbd.iter().enumerate() {
        w.write_str(if i == 0 { "{\"resource\":" } else { ",{\"resource\":" })?;
        json_str(w, &d.resource)?;
        let fields = [
            ("connection", d.connection),
            ("role", d.role),
            ("peer_role", d.peer_role),
            ("disk", d.disk),
            ("peer_disk", d.peer_disk),
        ];
        for (k, v) in fields {
            write!(w, ",\"{k}\":")?;
            json_str(w, v)?;
        }
        w.write_str(",\"synced_percent\":")?;
        match d.synced_permille {
            Some(p) => write!(w, "{}.{}", p / 10, p % 10)?,
            None => w.write_str("null")?,
        }
        w.write_str("}")?;
    }
    w.write_str("]")
}

/// `[{"name","kind","state","failures","last_exit_code","last_error"}, ...]`.
fn json_resources<W: Write + ?Sized>(w: &mut W, resources: &[Resource]) -> fmt::Result {
    w.write_str("[")?;
    for (i, r) in resources.iter().enumerate() {
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
    w.write_str("]")
}

/// `"fence":{"mode","delay_ms","delay_left_ms","peer_vouched_down","last"}`, `last` null
/// or `{"ago_ms","ok","status","took_ms","output"}`.
fn json_fence<W: Write + ?Sized>(w: &mut W, f: &Fence) -> fmt::Result {
    w.write_str("\"fence\":{\"mode\":")?;
    json_str(w, f.mode)?;
    write!(w, ",\"delay_ms\":{},\"delay_left_ms\":", f.delay_ms)?;
    json_opt(w, f.delay_left_ms)?;
    write!(w, ",\"peer_vouched_down\":{},\"last\":", f.peer_vouched_down)?;
    let Some(l) = &f.last else { return w.write_str("null}") };
    write!(w, "{{\"ago_ms\":{},\"ok\":{},\"status\":", l.ago_ms, l.ok)?;
    json_str(w, &l.status)?;
    write!(w, ",\"took_ms\":{},\"output\":", l.took_ms)?;
    json_str(w, &l.output)?;
    w.write_str("}}")
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
    w.write_str("],\"errors\":[")?;
    for (i, e) in h.errors.iter().enumerate() {
        w.write_str(if i == 0 { "{\"kind\":" } else { ",{\"kind\":" })?;
        json_str(w, &e.kind)?;
        w.write_str(",\"name\":")?;
        json_str(w, &e.name)?;
        match e.count {
            Some(c) => write!(w, ",\"count\":{c}")?,
            None => w.write_str(",\"count\":null")?,
        }
        write!(
            w,
            ",\"total\":{},\"rate\":{},\"limit\":{},\"window_ms\":{},\"uncorrected\":{},\"state\":",
            e.total, e.rate, e.limit, e.window_ms, e.uncorrected
        )?;
        json_str(w, &e.state)?;
        w.write_str(",\"report\":")?;
        json_str(w, e.report)?;
        w.write_char('}')?;
    }
    w.write_str("],\"ipmi\":")?;
    match &h.ipmi {
        None => w.write_str("null")?,
        Some(i) => json_ipmi(w, i)?,
    }
    w.write_str(",\"watchdog\":{\"device\":")?;
    json_str(w, &h.watchdog.device)?;
    write!(w, ",\"armed\":{},\"timeout_ms\":{}}}}}", h.watchdog.armed, h.watchdog.timeout_ms)
}

fn json_ipmi<W: Write + ?Sized>(w: &mut W, i: &IpmiStatus) -> fmt::Result {
    w.write_str("{\"device\":")?;
    json_str(w, &i.device)?;
    write!(w, ",\"reachable\":{},\"error\":", i.reachable)?;
    json_opt_str(w, &i.error)?;
    match i.records {
        Some(n) => write!(w, ",\"records\":{n}")?,
        None => w.write_str(",\"records\":null")?,
    }
    w.write_str(",\"sensors\":[")?;
    for (k, s) in i.sensors.iter().enumerate() {
        w.write_str(if k == 0 { "{\"name\":" } else { ",{\"name\":" })?;
        json_str(w, &s.name)?;
        w.write_str(",\"unit\":")?;
        json_str(w, s.unit)?;
        w.write_str(",\"value\":")?;
        json_num(w, s.value)?;
        for (name, v) in s.thresholds() {
            write!(w, ",\"{name}\":")?;
            json_num(w, v)?;
        }
        write!(w, ",\"ok\":{}}}", s.ok)?;
    }
    write!(
        w,
        "],\"sel\":{{\"entries\":{},\"failures\":{},\"correctable\":{},\
         \"correctable_in_window\":{},\"latched\":{},\"last_failure\":",
        i.sel_entries,
        i.sel_failures,
        i.sel_correctable,
        i.sel_correctable_in_window,
        i.sel_latched
    )?;
    json_opt_str(w, &i.last_failure)?;
    w.write_str("}}")
}

/// A JSON string, or `null` for an empty one.
fn json_opt_str<W: Write + ?Sized>(w: &mut W, s: &str) -> fmt::Result {
    if s.is_empty() { w.write_str("null") } else { json_str(w, s) }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_escape_what_json_requires() {
        let mut out = std::string::String::new();
        json_str(&mut out, "a\"b\\c\nd\u{1}e\u{7f}ü").unwrap();
        assert_eq!(out, r#""a\"b\\c\nd\u0001e\u007fü""#);
    }
}
