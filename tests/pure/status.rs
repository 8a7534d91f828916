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
        keepalive_ms: 100,
        deadtime_ms: 500,
        frames_rx: 123_456,
        frames_lost: 7,
        kernel_dropped: 0,
        error: text(error),
        nic_errors: text(""),
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

/// SPEC §7.7: an IPv6 multicast link and IPv6 ping nodes show like the others; a link label
/// past its column (a long interface name and group) gets a line of its own, whole, and the
/// link's line keeps its columns.
#[test]
fn ipv6_links_and_ping_nodes_show_whole() {
    let mut s = typical();
    s.peer.links.clear();
    s.peer.links.push(link("mcast lan0 ff02::1:694", true, Some(95), "")).unwrap();
    s.peer.links.push(link("mcast enp3s0f1 ff02::1:ff00:694", true, Some(95), "")).unwrap();
    s.health.ping.clear();
    for (addr, reachable) in [("192.0.2.254", true), ("2001:db8::fe", false)] {
        s.health.ping.push(Ping { address: addr.parse::<IpAddr>().unwrap(), reachable }).unwrap();
    }
    let out = human(&s);
    let lines: Vec<&str> = out.lines().collect();
    let at = |needle: &str| lines.iter().position(|l| l.contains(needle)).expect(needle);
    let short = lines[at("mcast lan0 ff02::1:694")];
    assert!(short.starts_with("  mcast lan0 ff02::1:694     up   heard"), "{out}");
    let long = at("mcast enp3s0f1 ff02::1:ff00:694");
    assert_eq!(lines[long], "  mcast enp3s0f1 ff02::1:ff00:694", "{out}");
    let columns = |l: &str| l.find("up   heard");
    assert_eq!(columns(lines[long + 1]), columns(short), "{out}");
    assert!(lines[long + 1].trim_start().starts_with("up   heard"), "{out}");
    assert!(out.contains("\n  ping 2001:db8::fe"), "{out}");
    assert!(lines[at("ping 2001:db8::fe")].ends_with("UNREACHABLE"), "{out}");
    let v = json(&s);
    assert_eq!(v["peer"]["links"][1]["medium"], "mcast enp3s0f1 ff02::1:ff00:694");
    assert_eq!(v["health"]["ping"][1]["address"], "2001:db8::fe");
    let mut prom = String::new();
    render_prometheus(&s, &mut prom).unwrap();
    assert!(prom.contains("hapair_link_up{medium=\"mcast lan0 ff02::1:694\"} 1\n"), "{prom}");
    assert!(prom.contains("hapair_ping_reachable{address=\"2001:db8::fe\"} 0\n"), "{prom}");
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

/// Three groups (SPEC §7.1): `web` held here, `db` held by the peer, `mail` by nobody (its
/// resource failed here).
fn groups() -> Snapshot {
    let mut s = typical();
    s.resources.push(resource("lsb", "postfix", ResourceState::Failed, 4)).unwrap();
    let mut web = GroupStatus::new("web", "alpha");
    (web.owner, web.state, web.role_since_ms) = (Some(Owner::This), GroupState::Active, 3_725_000);
    (web.epoch, web.intent, web.resources) = (7, hapair::wire::Intent::Takeover, 0..2);
    let mut db = GroupStatus::new("db", "beta");
    (db.owner, db.auto_failback, db.epoch, db.resources) = (Some(Owner::Peer), true, 3, 2..3);
    db.role_since_ms = 42_000;
    let mut mail = GroupStatus::new("mail", "beta");
    (mail.state, mail.resources) = (GroupState::Failed, 3..4);
    s.groups.extend([web, db, mail]);
    s
}

#[test]
fn json_has_each_group_and_the_first_at_the_top() {
    let v = json(&groups());
    let fields: &[(&str, &[&str])] = &[
        ("groups", &["array"]),
        ("groups.0.name", &["string"]),
        ("groups.0.home", &["string"]),
        ("groups.0.owner", &["string"]),
        ("groups.2.owner", &["null"]),
        ("groups.0.state", &["string"]),
        ("groups.0.resources", &["array"]),
        ("groups.0.resources.0.name", &["string"]),
        ("groups.0.resources.0.kind", &["string"]),
        ("groups.0.resources.0.state", &["string"]),
        ("groups.0.resources.0.failures", &["number"]),
        ("groups.0.role_since_ms", &["number"]),
        ("groups.0.auto_failback", &["bool"]),
        ("groups.0.epoch", &["number"]),
        ("groups.0.intent", &["string"]),
    ];
    for (path, want) in fields {
        expect(&v, path, want);
    }
    let g = v["groups"].as_array().unwrap();
    let names: Vec<&str> = g.iter().map(|g| g["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["web", "db", "mail"]);
    assert_eq!((&g[0]["home"], &g[1]["home"]), (&Value::from("alpha"), &Value::from("beta")));
    assert_eq!((&g[0]["owner"], &g[1]["owner"]), (&Value::from("alpha"), &Value::from("beta")));
    assert_eq!(
        (&g[0]["state"], &g[1]["state"], &g[2]["state"]),
        (&Value::from("active"), &Value::from("standby"), &Value::from("failed"))
    );
    assert_eq!(
        (&g[0]["intent"], &g[1]["intent"]),
        (&Value::from("takeover"), &Value::from("none"))
    );
    assert_eq!((&g[0]["epoch"], &g[1]["auto_failback"]), (&Value::from(7), &Value::Bool(true)));
    let rnames = |list: &Value| -> Vec<String> {
        list.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(rnames(&g[0]["resources"]), ["192.0.2.100/24", "heartbeat:Filesystem"]);
    assert_eq!(rnames(&g[1]["resources"]), ["web"]);
    assert_eq!(rnames(&g[2]["resources"]), ["postfix"]);
    assert_eq!(g[2]["resources"][0]["state"], "failed");
    assert_eq!(g[2]["resources"][0]["failures"], 4);
    // The top level is the first group: its state and its resources, the same objects.
    assert_eq!(v["state"], g[0]["state"]);
    assert_eq!(v["resources"], g[0]["resources"]);
    // A snapshot without groups (made by hand) lists every resource at the top.
    let v = json(&typical());
    assert_eq!(v["groups"], Value::Array(vec![]));
    assert_eq!(v["resources"].as_array().unwrap().len(), 3);
}

#[test]
fn prometheus_labels_group_series_and_leaves_node_series_alone() {
    let mut out = String::new();
    render_prometheus(&groups(), &mut out).unwrap();
    for line in out.lines() {
        check_prometheus_line(line);
    }
    for needle in [
        "hapair_state{group=\"web\",node=\"alpha\",state=\"active\"} 1\n",
        "hapair_state{group=\"db\",node=\"alpha\",state=\"standby\"} 1\n",
        "hapair_state{group=\"mail\",node=\"alpha\",state=\"failed\"} 1\n",
        "hapair_role_since_seconds{group=\"db\"} 42.000\n",
        "hapair_group_owner{group=\"web\",node=\"alpha\"} 1\n",
        "hapair_group_owner{group=\"web\",node=\"beta\"} 0\n",
        "hapair_group_owner{group=\"db\",node=\"beta\"} 1\n",
        "hapair_group_owner{group=\"mail\",node=\"alpha\"} 0\n",
        "hapair_group_owner{group=\"mail\",node=\"beta\"} 0\n",
        "hapair_resource_running{group=\"web\",resource=\"192.0.2.100/24\",kind=\"ip\",\
         state=\"running\"} 1\n",
        "hapair_resource_failures{group=\"mail\",resource=\"postfix\"} 4\n",
        "hapair_resource_failures{group=\"db\",resource=\"web\"} 2\n",
        // The node's own series: no group label.
        "hapair_peer_alive{peer=\"beta\"} 1\n",
        "hapair_link_up{medium=\"bcast eth1\"} 1\n",
        "hapair_health_ok 0\n",
        "hapair_handovers_total 7\n",
    ] {
        assert!(out.contains(needle), "{needle}:\n{out}");
    }
    // Every state and resource series names its group.
    for line in out.lines().filter(|l| !l.starts_with('#')) {
        if line.starts_with("hapair_state") || line.starts_with("hapair_resource_") {
            assert!(line.contains("{group=\""), "{line}");
        }
    }
}

#[test]
fn the_human_form_has_a_section_per_group() {
    let out = human(&groups());
    println!("{out}");
    for line in out.lines() {
        assert!(line.chars().count() <= 80, "too wide: {line:?}");
    }
    assert!(out.contains("node alpha: holds 1 of 3 groups\n"), "{out}");
    assert!(out.contains("peer beta: alive, holds 1 of 3 groups\n"), "{out}");
    for needle in [
        "group web: active for 1h02m, owner alpha, home alpha, takeover asked\n",
        "group db: standby for 42.0s, owner beta, home beta\n",
        "group mail: failed for 0ms, owner none, home beta\n",
    ] {
        assert!(out.contains(needle), "{needle}:\n{out}");
    }
    assert!(!out.contains("resources:"), "the groups list them:\n{out}");
    // Each group's resources follow its heading.
    let at = |needle: &str| out.find(needle).unwrap_or_else(|| panic!("{needle}:\n{out}"));
    assert!(
        at("group web:") < at("192.0.2.100/24") && at("heartbeat:Filesystem") < at("group db:")
    );
    assert!(at("group db:") < at(" web ") && at(" web ") < at("group mail:"));
    assert!(at("group mail:") < at("postfix") && at("postfix") < at("health:"));
}

/// One group (a file without `group` lines: `main`): the human screen is the one it always
/// was, and the other forms show the group.
#[test]
fn one_group_reads_as_before() {
    let bare = typical();
    let mut one = typical();
    let mut main = GroupStatus::new("main", "alpha");
    (main.owner, main.state, main.resources) = (Some(Owner::This), GroupState::Active, 0..3);
    one.groups.push(main).unwrap();
    assert_eq!(human(&one), human(&bare));
    let v = json(&one);
    assert_eq!(v["resources"], json(&bare)["resources"]);
    assert_eq!(v["groups"][0]["name"], "main");
    assert_eq!(v["groups"][0]["owner"], "alpha");
    assert_eq!(v["groups"][0]["resources"], v["resources"]);
    let mut out = String::new();
    render_prometheus(&one, &mut out).unwrap();
    assert!(out.contains("hapair_state{group=\"main\",node=\"alpha\",state=\"active\"} 1\n"));
}

/// The most groups and resources, with the longest and oddest names: the JSON still fits the
/// control socket's reply and parses, the screen stays within 80 columns, Prometheus within
/// its grammar; with one group holding every resource too (the top level repeats them all).
#[test]
fn groups_at_their_worst_fit_every_rendering() {
    let mut eight = worst();
    let long = eight.node.clone();
    let per = eight.resources.len() / hapair::limits::GROUPS_MAX;
    for k in 0..hapair::limits::GROUPS_MAX {
        let mut g = GroupStatus::new(&long, &long);
        g.owner = Some(if k % 2 == 0 { Owner::This } else { Owner::Peer });
        (g.role_since_ms, g.epoch, g.resources) = (u64::MAX, u32::MAX, k * per..(k + 1) * per);
        eight.groups.push(g).unwrap();
    }
    let mut one = worst();
    let mut g = GroupStatus::new(&long, &long);
    g.resources = 0..one.resources.len();
    one.groups.push(g).unwrap();
    for s in [eight, one] {
        let mut out = String::new();
        render_json(&s, &mut out).unwrap();
        assert!(out.len() < hapair::control::REPLY_LEN_MAX, "{} bytes", out.len());
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["groups"][0]["name"].as_str(), Some(long.as_str()));
        for line in human(&s).lines() {
            assert!(line.chars().count() <= 80, "too wide: {line:?}");
        }
        let mut out = String::new();
        render_prometheus(&s, &mut out).unwrap();
        out.lines().for_each(|l| drop(check_prometheus_line(l)));
    }
}

/// SPEC §7.7: each link's timing shows in every form. The same for every link: once, on the
/// heading; links at their own pace: a line under each. JSON and Prometheus carry it per
/// link.
#[test]
fn each_link_shows_its_keepalive_and_deadtime() {
    let mut s = typical();
    assert!(human(&s).contains("links: keepalive 100ms, deadtime 500ms\n"), "{}", human(&s));
    s.peer.links[1].keepalive_ms = 10;
    s.peer.links[1].deadtime_ms = 50;
    s.peer.links[2].keepalive_ms = 200;
    s.peer.links[2].deadtime_ms = 2000;
    let out = human(&s);
    println!("{out}");
    assert!(out.contains("links:\n"), "{out}");
    assert!(out.contains("    keepalive 10ms, deadtime 50ms\n"), "{out}");
    assert!(out.contains("    keepalive 200ms, deadtime 2.0s\n"), "{out}");
    assert_eq!(out.matches("    keepalive ").count(), s.peer.links.len(), "{out}");
    for line in out.lines() {
        assert!(line.chars().count() <= 80, "too wide: {line:?}");
    }

    let mut json = String::new();
    render_json(&s, &mut json).unwrap();
    let v: Value = serde_json::from_str(&json).unwrap();
    let links = v["peer"]["links"].as_array().unwrap();
    assert_eq!(links[1]["keepalive_ms"].as_u64(), Some(10));
    assert_eq!(links[1]["deadtime_ms"].as_u64(), Some(50));
    assert_eq!(links[2]["deadtime_ms"].as_u64(), Some(2000));

    let mut prom = String::new();
    render_prometheus(&s, &mut prom).unwrap();
    assert!(
        prom.contains("hapair_link_keepalive_seconds{medium=\"bcast eth1\"} 0.010\n"),
        "{prom}"
    );
    assert!(
        prom.contains("hapair_link_deadtime_seconds{medium=\"mcast eth1 239.0.0.94\"} 2.000\n")
    );
}
