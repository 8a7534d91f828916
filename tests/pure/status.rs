//! The status renderers: JSON that parses and carries every SPEC §5 field with the right
//! type, escaping of odd names, a human screen within 80 columns, well-formed Prometheus
//! text.

use std::net::IpAddr;

use hapair::status::*;
use hapair::wire::GroupState;
use serde_json::Value;

fn text<const N: usize>(s: &str) -> heapless::String<N> {
    let mut t = heapless::String::new();
    set_text(&mut t, s);
    t
}

fn link(medium: &str, up: bool, heard: Option<u64>, error: &str) -> Link {
    Link {
        medium: text(medium),
        up,
        last_heard_ms: heard,
        frames_rx: 123_456,
        frames_lost: 7,
        kernel_dropped: 0,
        error: text(error),
    }
}

fn resource(kind: &str, name: &str, state: ResourceState, failures: u32) -> Resource {
    Resource {
        name: text(name),
        kind: text(kind),
        state,
        failures,
        last_exit_code: (failures > 0).then_some(1),
        last_error: text(if failures > 0 { "monitor: curl: (7) Failed to connect" } else { "" }),
    }
}

fn typical() -> Snapshot {
    let mut s = Snapshot::new("alpha", "beta");
    s.state = GroupState::Active;
    s.role_since_ms = 3_725_000;
    s.peer.alive = true;
    s.peer.state = Some(GroupState::Standby);
    let links = [
        link("serial /dev/ttyS0", true, Some(80), ""),
        link("bcast eth1", true, Some(95), ""),
        link("mcast eth1 239.0.0.94", false, Some(12_500), ""),
        link(
            "ucast eth2 192.0.2.2",
            false,
            None,
            "eth2: cannot set up UDP link (bind): No such device",
        ),
    ];
    s.peer.links.extend(links);
    // A flood on the LAN.
    s.peer.links[1].kernel_dropped = 1_234_567;
    let resources = [
        resource("ip", "192.0.2.100/24", ResourceState::Running, 0),
        resource("ocf", "heartbeat:Filesystem", ResourceState::Running, 0),
        resource("exec", "web", ResourceState::Starting, 2),
    ];
    s.resources.extend(resources);
    let h = &mut s.health;
    h.ok = false;
    h.reasons.push(text("sensor lm78/temp1 72.0 above max 70")).unwrap();
    for (i, value) in [45.5, 72.0, 1.25, 3300.0].into_iter().enumerate() {
        let sensor = Sensor {
            name: text(&format!("lm78/in{i}")),
            value,
            max: Some(70.0),
            crit: (i == 1).then_some(80.0),
            ok: i != 1,
        };
        h.sensors.push(sensor).unwrap();
    }
    h.raid.push(Raid { name: text("md0"), state: text("[UU]"), ok: true }).unwrap();
    for (addr, reachable) in [("192.0.2.254", true), ("192.0.2.253", false)] {
        h.ping.push(Ping { address: addr.parse::<IpAddr>().unwrap(), reachable }).unwrap();
    }
    h.watchdog = Watchdog { device: text("/dev/watchdog"), armed: true, timeout_ms: 10_000 };
    s.counters = Counters {
        auth_failures: 1,
        replays: 2,
        unconfirmed: 11,
        peer_restarts: 12,
        incarnation_resyncs: 13,
        malformed: 3,
        crc_errors: 4,
        kernel_dropped: 1_234_567,
        late_heartbeats: 5,
        failovers: 6,
        handovers: 7,
        split_brains: 8,
        fence_attempts: 9,
        fence_failures: 10,
    };
    s
}

/// A snapshot with every table full, every name as long and odd as it gets.
fn worst() -> Snapshot {
    let odd = "q\"uo\\te\n\t\u{1}\u{7f} ünï 名前 </script> {\"x\"}";
    let long = odd.repeat(8);
    let mut s = Snapshot::new(&long, &long);
    s.role_since_ms = u64::MAX;
    s.incarnation = u64::MAX;
    s.incarnation_went_back = true;
    s.peer.incarnation = Some(u64::MAX);
    s.peer.state = None;
    s.peer.config_differs = true;
    s.peer.watchdog_timeout_ms = Some(u64::MAX);
    s.peer.unfenceable = true;
    while s.peer.links.push(link(&long, false, Some(u64::MAX), &long)).is_ok() {}
    for l in s.peer.links.iter_mut() {
        (l.frames_rx, l.frames_lost, l.kernel_dropped) = (u64::MAX, u64::MAX, u64::MAX);
    }
    while s.resources.push(resource(&long, &long, ResourceState::Failed, u32::MAX)).is_ok() {}
    let h = &mut s.health;
    while h.reasons.push(text(&long)).is_ok() {}
    let sensor =
        Sensor { name: text(&long), value: f64::NAN, max: Some(-1e300), crit: None, ok: false };
    while h.sensors.push(sensor.clone()).is_ok() {}
    while h.raid.push(Raid { name: text(&long), state: text(&long), ok: false }).is_ok() {}
    let v6: IpAddr = "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap();
    while h.ping.push(Ping { address: v6, reachable: false }).is_ok() {}
    h.watchdog = Watchdog { device: text(&long), armed: false, timeout_ms: u64::MAX };
    s.counters.auth_failures = u64::MAX;
    s.counters.incarnation_resyncs = u64::MAX;
    s.counters.unconfirmed = u64::MAX;
    s.counters.kernel_dropped = u64::MAX;
    s
}

fn json(s: &Snapshot) -> Value {
    let mut out = String::new();
    render_json(s, &mut out).unwrap();
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn expect(v: &Value, path: &str, want: &[&str]) {
    let mut cur = v;
    for key in path.split('.') {
        cur = match key.parse::<usize>() {
            Ok(i) => &cur[i],
            Err(_) => cur.get(key).unwrap_or_else(|| panic!("missing {path}")),
        };
    }
    assert!(want.contains(&kind(cur)), "{path}: {} is not {want:?}", kind(cur));
}

#[test]
fn json_has_every_spec_field_with_its_type() {
    let v = json(&typical());
    let fields: &[(&str, &[&str])] = &[
        ("node", &["string"]),
        ("state", &["string"]),
        ("role_since_ms", &["number"]),
        ("peer", &["object"]),
        ("peer.name", &["string"]),
        ("peer.alive", &["bool"]),
        ("peer.state", &["string"]),
        ("peer.links", &["array"]),
        ("peer.links.0.medium", &["string"]),
        ("peer.links.0.up", &["bool"]),
        ("peer.links.0.last_heard_ms", &["number"]),
        ("peer.links.3.last_heard_ms", &["null"]),
        ("peer.links.0.frames_rx", &["number"]),
        ("peer.links.0.frames_lost", &["number"]),
        ("resources", &["array"]),
        ("resources.0.name", &["string"]),
        ("resources.0.kind", &["string"]),
        ("resources.0.state", &["string"]),
        ("resources.0.failures", &["number"]),
        ("resources.2.last_exit_code", &["number"]),
        ("resources.2.last_error", &["string"]),
        ("health", &["object"]),
        ("health.ok", &["bool"]),
        ("health.reasons", &["array"]),
        ("health.reasons.0", &["string"]),
        ("health.sensors", &["array"]),
        ("health.sensors.0.value", &["number"]),
        ("health.raid", &["array"]),
        ("health.ping", &["array"]),
        ("health.ping.0.address", &["string"]),
        ("health.watchdog", &["object"]),
        ("counters", &["object"]),
        ("counters.auth_failures", &["number"]),
        ("counters.replays", &["number"]),
        ("counters.malformed", &["number"]),
        ("counters.crc_errors", &["number"]),
        ("counters.late_heartbeats", &["number"]),
        ("counters.failovers", &["number"]),
        ("counters.handovers", &["number"]),
        ("incarnation", &["number"]),
        ("incarnation_went_back", &["bool"]),
        ("peer.incarnation", &["number", "null"]),
        ("counters.unconfirmed", &["number"]),
        ("counters.peer_restarts", &["number"]),
        ("counters.incarnation_resyncs", &["number"]),
        ("peer.watchdog_timeout_ms", &["number", "null"]),
        ("peer.unfenceable", &["bool"]),
        ("counters.kernel_dropped", &["number"]),
        ("peer.links.1.kernel_dropped", &["number"]),
    ];
    for (path, want) in fields {
        expect(&v, path, want);
    }
    assert_eq!(v["node"], "alpha");
    assert_eq!(v["state"], "active");
    assert_eq!(v["peer"]["state"], "standby");
    assert_eq!(v["peer"]["config_match"], true);
    assert_eq!(
        (&v["peer"]["watchdog_timeout_ms"], &v["peer"]["unfenceable"]),
        (&Value::Null, &Value::Bool(false))
    );
    let worst = json(&worst());
    assert_eq!(worst["peer"]["unfenceable"], true);
    assert_eq!(worst["peer"]["watchdog_timeout_ms"], u64::MAX);
    assert_eq!(v["peer"]["links"].as_array().unwrap().len(), 4);
    assert_eq!(v["resources"][2]["state"], "starting");
    assert_eq!(v["health"]["sensors"][1]["ok"], false);
    assert_eq!(v["counters"]["handovers"], 7);
    assert_eq!(v["counters"]["auth_failures"], 1);
    assert_eq!(v["counters"]["kernel_dropped"], 1_234_567);
    assert_eq!(v["peer"]["links"][1]["kernel_dropped"], 1_234_567);
    assert_eq!(v["peer"]["links"][0]["kernel_dropped"], 0);
}

#[test]
fn odd_names_are_escaped_and_survive_the_round_trip() {
    let s = worst();
    let v = json(&s);
    assert_eq!(v["node"].as_str().unwrap(), s.node.as_str());
    assert_eq!(v["peer"]["links"][0]["medium"].as_str().unwrap(), s.peer.links[0].medium.as_str());
    assert_eq!(v["peer"]["state"], "unknown");
    assert_eq!(v["peer"]["config_match"], false);
    assert_eq!(v["health"]["sensors"][0]["value"], Value::Null, "NaN is not JSON");
    assert_eq!(v["counters"]["auth_failures"].as_u64(), Some(u64::MAX));
    // Fits the control socket's reply buffer, even at its worst.
    let mut out = String::new();
    render_json(&s, &mut out).unwrap();
    assert!(out.len() < hapair::control::REPLY_LEN_MAX, "{} bytes", out.len());
}

#[test]
fn renderers_write_into_fixed_buffers() {
    let s = typical();
    let mut buf = heapless::String::<8192>::new();
    render_json(&s, &mut buf).unwrap();
    assert!(serde_json::from_str::<Value>(&buf).is_ok());
    let mut small = heapless::String::<64>::new();
    assert!(render_json(&s, &mut small).is_err(), "a full buffer is an error, not a panic");
    assert!(render_human(&s, &mut small).is_err());
    assert!(render_prometheus(&s, &mut small).is_err());
}

fn human(s: &Snapshot) -> String {
    let mut out = String::new();
    render_human(s, &mut out).unwrap();
    out
}

#[test]
fn the_human_form_is_one_screen_of_80_columns() {
    let out = human(&typical());
    println!("{out}");
    for line in out.lines() {
        assert!(line.chars().count() <= 80, "too wide: {line:?}");
    }
    assert!(out.lines().count() <= 25, "more than one screen:\n{out}");
    for needle in ["alpha", "active", "beta", "serial /dev/ttyS0", "DOWN", "never", "web"] {
        assert!(out.contains(needle), "{needle} missing:\n{out}");
    }
    assert!(out.contains("UNHEALTHY") && out.contains("lm78/in1"), "{out}");
    assert!(out.contains("1h02m"), "role age:\n{out}");
    // A flood shows in the counters (per link in JSON and Prometheus: one screen has no
    // line to spare).
    assert!(out.contains(", kernel dropped 1234k\n"), "in the counters:\n{out}");
}

#[test]
fn the_human_form_stays_within_80_columns_at_its_worst() {
    let out = human(&worst());
    assert!(out.contains("DEAD, was unknown, OTHER CONFIG"), "{out}");
    assert!(out.contains("NO ARMED WATCHDOG: never taken over by waiting"), "{out}");
    for line in out.lines() {
        assert!(line.chars().count() <= 80, "too wide: {line:?}");
    }
}

/// Checks one exposition line; returns the metric name of a sample line.
fn check_prometheus_line(line: &str) -> Option<String> {
    let is_name = |n: &str| {
        n.starts_with("hapair_") && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if let Some(rest) = line.strip_prefix("# HELP ") {
        let (name, help) = rest.split_once(' ').expect("HELP has text");
        assert!(is_name(name) && !help.is_empty(), "{line}");
        return None;
    }
    if let Some(rest) = line.strip_prefix("# TYPE ") {
        let (name, kind) = rest.split_once(' ').expect("TYPE has a kind");
        assert!(is_name(name) && ["gauge", "counter"].contains(&kind), "{line}");
        return None;
    }
    let name_end = line.find(['{', ' ']).expect("sample has a value");
    let name = &line[..name_end];
    assert!(is_name(name), "{line}");
    let mut rest = &line[name_end..];
    if let Some(labels) = rest.strip_prefix('{') {
        rest = parse_labels(labels, line);
    }
    let value = rest.strip_prefix(' ').expect("one space before the value");
    assert!(value.parse::<f64>().is_ok(), "value {value:?} in {line}");
    Some(name.to_string())
}

/// Walks `k="v",...}` with escapes; returns what follows the closing brace.
fn parse_labels<'a>(mut s: &'a str, line: &str) -> &'a str {
    loop {
        let (key, after) = s.split_once("=\"").expect("label=\"value\"");
        assert!(key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{line}");
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().expect("closing quote") {
                (_, '\\') => {
                    let (_, e) = chars.next().expect("escaped char");
                    assert!(['\\', '"', 'n'].contains(&e), "bad escape in {line}");
                }
                (i, '"') => break i,
                (_, c) => assert!(c != '\n', "{line}"),
            }
        };
        s = &after[end + 1..];
        if let Some(rest) = s.strip_prefix('}') {
            return rest;
        }
        s = s.strip_prefix(',').expect("comma between labels");
    }
}

#[test]
fn prometheus_lines_are_well_formed() {
    for s in [typical(), worst()] {
        let mut out = String::new();
        render_prometheus(&s, &mut out).unwrap();
        assert!(out.ends_with('\n'));
        let mut typed = Vec::new();
        for line in out.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap().to_string();
                assert!(!typed.contains(&name), "family {name} declared twice");
                typed.push(name);
            }
            if let Some(name) = check_prometheus_line(line) {
                assert_eq!(typed.last(), Some(&name), "sample outside its family: {line}");
            }
        }
        for needle in ["hapair_peer_alive", "hapair_link_up", "hapair_failovers_total"] {
            assert!(typed.iter().any(|t| t == needle), "{needle}");
        }
    }
    let mut out = String::new();
    render_prometheus(&typical(), &mut out).unwrap();
    assert!(out.contains("hapair_state{node=\"alpha\",state=\"active\"} 1\n"), "{out}");
    assert!(out.contains("hapair_link_up{medium=\"bcast eth1\"} 1\n"), "{out}");
    assert!(out.contains("hapair_handovers_total 7\n"), "{out}");
    assert!(out.contains("hapair_kernel_dropped_total 1234567\n"), "{out}");
    let link = "hapair_link_kernel_dropped_total{medium=\"bcast eth1\"} 1234567\n";
    assert!(out.contains(link), "{out}");
    let serial = "hapair_link_kernel_dropped_total{medium=\"serial /dev/ttyS0\"} 0\n";
    assert!(out.contains(serial), "{out}");
}
