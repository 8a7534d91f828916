//! Table-driven: each invalid configuration (one per error class) run through the real
//! `hapair check` exits 1, and its stderr starts with the right `FILE:LINE:` and names the
//! problem. The base configuration is valid (tested first), so each case shows one error.

use std::os::unix::fs::chown;

use crate::common::TempDir;
use crate::common::bin::*;

/// Lines 1..=8; cases append from line 9 or replace a line.
const BASE: &str = "\
node alpha
node beta
keepalive 200ms
warntime 600ms
deadtime 1s
authkey {KEY}
bcast eth1
resource ip 192.0.2.100/24 dev eth0
";

/// What the authkey file is.
#[derive(Clone, Copy)]
enum Key {
    Good,
    Missing,
    Mode(u32),
    Short,
    Dir,
    NotRoot,
}

/// Which file the error must name.
#[derive(Clone, Copy, PartialEq)]
enum At {
    Conf(u32),
    ConfWhole,
    Cmdline(u32),
}

struct Case {
    name: &'static str,
    /// Replace line N of BASE (1-based) with the text, or append when N is 0.
    edits: &'static [(usize, &'static str)],
    cmdline: &'static str,
    key: Key,
    at: At,
    says: &'static str,
}

const fn case(
    name: &'static str,
    edits: &'static [(usize, &'static str)],
    at: At,
    says: &'static str,
) -> Case {
    Case { name, edits, cmdline: "", key: Key::Good, at, says }
}

const fn key_case(name: &'static str, key: Key, says: &'static str) -> Case {
    Case { name, edits: &[], cmdline: "", key, at: At::Conf(6), says }
}

const fn flag_case(name: &'static str, cmdline: &'static str, says: &'static str) -> Case {
    Case { name, edits: &[], cmdline, key: Key::Good, at: At::Cmdline(1), says }
}

use At::*;

const CASES: &[Case] = &[
    case("unknown directive", &[(0, "frobnicate 1")], Conf(9), "unknown directive \"frobnicate\""),
    case("missing argument", &[(3, "keepalive")], Conf(3), "missing duration for keepalive"),
    case("bad duration", &[(3, "keepalive 5x")], Conf(3), "bad duration \"5x\" for keepalive"),
    case("bad address", &[(0, "ping 192.0.2.300")], Conf(9), "bad address \"192.0.2.300\""),
    case(
        "bad prefix",
        &[(8, "resource ip 192.0.2.100/33 dev eth0")],
        Conf(8),
        "bad prefix \"/33\"",
    ),
    case("missing prefix", &[(8, "resource ip 192.0.2.100 dev eth0")], Conf(8), "missing /PREFIX"),
    case("bad port", &[(0, "udpport 70000")], Conf(9), "udpport 70000 is out of range"),
    case(
        "keepalive >= deadtime",
        &[(3, "keepalive 1s")],
        Conf(3),
        "keepalive 1s must be shorter than deadtime 1s",
    ),
    case(
        "warntime > deadtime",
        &[(4, "warntime 2s")],
        Conf(4),
        "warntime 2s must not be longer than deadtime 1s",
    ),
    case(
        "deadtime < 2 x keepalive",
        &[(3, "keepalive 400ms"), (5, "deadtime 700ms")],
        Conf(5),
        "deadtime 700ms must be at least 2 x keepalive",
    ),
    case(
        "initdead < deadtime",
        &[(0, "initdead 500ms")],
        Conf(9),
        "initdead 500ms must not be shorter than deadtime",
    ),
    case(
        "link deadtime < 2 x its keepalive",
        &[(7, "bcast eth1 keepalive 100ms deadtime 150ms")],
        Conf(7),
        "bcast eth1: deadtime 150ms must be at least 2 x its keepalive 100ms",
    ),
    case(
        "link keepalive over half the global deadtime",
        &[(7, "bcast eth1 keepalive 600ms")],
        Conf(7),
        "bcast eth1: deadtime 1s must be at least 2 x its keepalive 600ms",
    ),
    case(
        "link keepalive out of range",
        &[(7, "bcast eth1 keepalive 5ms")],
        Conf(7),
        "keepalive 5ms is out of range",
    ),
    case(
        "link deadtime 0",
        &[(7, "bcast eth1 deadtime 0s")],
        Conf(7),
        "deadtime must be longer than 0",
    ),
    case(
        "two ucast lines of one link disagree",
        &[(0, "ucast eth2 192.0.2.1 keepalive 100ms"), (0, "ucast eth2 192.0.2.2 keepalive 200ms")],
        Conf(10),
        "ucast eth2: keepalive 200ms differs from the 100ms of an earlier line",
    ),
    case(
        "initdead < a link's deadtime",
        &[(7, "bcast eth1 deadtime 3s"), (0, "initdead 2s")],
        Conf(9),
        "initdead 2s must not be shorter than the deadtime 3s of bcast eth1",
    ),
    case(
        "unknown medium option",
        &[(7, "bcast eth1 keeplive 100ms")],
        Conf(7),
        "unknown option \"keeplive\" for bcast (expected keepalive, deadtime)",
    ),
    case("one node", &[(2, "# beta is gone")], Conf(1), "only one node (alpha)"),
    case("three nodes", &[(0, "node gamma")], Conf(9), "third node gamma"),
    case("duplicate node", &[(2, "node alpha")], Conf(2), "duplicate node alpha"),
    case("bad node name", &[(2, "node be/ta")], Conf(2), "bad node name \"be/ta\""),
    case("home not a node", &[(0, "home gamma")], Conf(9), "home gamma is not a node"),
    key_case("authkey missing", Key::Missing, "cannot open"),
    key_case(
        "authkey world-readable",
        Key::Mode(0o604),
        "mode 0604: readable or writable by others",
    ),
    key_case(
        "authkey group-readable",
        Key::Mode(0o640),
        "mode 0640: readable or writable by its group",
    ),
    key_case("authkey too short", Key::Short, "holds 5 bytes of key; at least 16"),
    key_case("authkey not a regular file", Key::Dir, "is not a regular file"),
    key_case("authkey not owned by root", Key::NotRoot, "owned by uid 65534, not root"),
    case("no authkey line", &[(6, "# no key")], ConfWhole, "no authkey line"),
    case(
        "unterminated quote",
        &[(0, "check web \"curl -f http://x")],
        Conf(9),
        "unterminated quote",
    ),
    case("bad escape", &[(0, r#"check web "a\q""#)], Conf(9), r"bad escape \q"),
    case(
        "bad restart_limit",
        &[(0, "restart_limit 3 within 10m")],
        Conf(9),
        "expected \"in\" after restart_limit 3, found \"within\"",
    ),
    case(
        "bad watchdog timeout",
        &[(0, "watchdog /dev/watchdog timeout 1500ms")],
        Conf(9),
        "bad watchdog timeout \"1500ms\"",
    ),
    case(
        "watchdog timeout too short",
        &[(3, "keepalive 400ms"), (0, "watchdog /dev/watchdog timeout 1s")],
        Conf(9),
        "watchdog timeout 1s does not fit",
    ),
    case(
        "fence watchdog without watchdog",
        &[(0, "fence watchdog")],
        Conf(9),
        "fence watchdog needs a watchdog line",
    ),
    case("no medium", &[(7, "# no medium")], ConfWhole, "no heartbeat medium"),
    case("duplicate medium", &[(0, "bcast eth1")], Conf(9), "duplicate medium bcast eth1"),
    case(
        "duplicate resource address",
        &[(0, "resource ip 192.0.2.100/24 dev eth0 name vip2")],
        Conf(9),
        "duplicate resource address 192.0.2.100",
    ),
    case(
        "duplicate resource name",
        &[(0, "resource lsb apache2"), (0, "resource lsb apache2")],
        Conf(10),
        "duplicate resource apache2",
    ),
    case(
        "unknown resource kind",
        &[(0, "resource docker web")],
        Conf(9),
        "unknown resource kind \"docker\"",
    ),
    case(
        "exec without stop",
        &[(0, "resource exec web start=\"web start\"")],
        Conf(9),
        "needs start=\"CMD\" and stop=\"CMD\"",
    ),
    case(
        "ucast missing the pair",
        &[(0, "ucast eth2 198.51.100.1")],
        Conf(9),
        "ucast eth2 lists only 198.51.100.1",
    ),
    case(
        "ucast three addresses",
        &[(0, "ucast eth2 198.51.100.1 198.51.100.2"), (0, "ucast eth2 198.51.100.3")],
        Conf(9),
        "lists 3 addresses",
    ),
    case("bad interface name", &[(7, "bcast eth1:0")], Conf(7), "bad interface name \"eth1:0\""),
    case(
        "interface name too long",
        &[(7, "bcast abcdefghijklmnop")],
        Conf(7),
        "bad interface name",
    ),
    case(
        "bad mcast group",
        &[(0, "mcast eth1 192.0.2.1")],
        Conf(9),
        "mcast group 192.0.2.1 is not a multicast address",
    ),
    case(
        "IPv6 mcast group not multicast",
        &[(0, "mcast eth1 2001:db8::1")],
        Conf(9),
        "mcast group 2001:db8::1 is not a multicast address",
    ),
    case(
        "IPv6 mcast group of interface-local scope",
        &[(0, "mcast eth1 ff01::1:694")],
        Conf(9),
        "mcast group ff01::1:694 is interface-local",
    ),
    case(
        "IPv6 mcast group of reserved scope",
        &[(0, "mcast eth1 ff00::1:694")],
        Conf(9),
        "mcast group ff00::1:694 has a reserved scope",
    ),
    case(
        "IPv6 mcast group with a zone",
        &[(0, "mcast eth1 ff02::1:694%eth1")],
        Conf(9),
        "bad address \"ff02::1:694%eth1\" for mcast group",
    ),
    case(
        "IPv6 mcast hop limit out of range",
        &[(0, "mcast eth1 ff02::1:694 ttl 256")],
        Conf(9),
        "mcast ttl 256 is out of range",
    ),
    case(
        "link-local ping node",
        &[(0, "ping 2001:db8::fe fe80::1")],
        Conf(9),
        "ping node fe80::1 is link-local",
    ),
    case(
        "IPv4-mapped ping node",
        &[(0, "ping ::ffff:192.0.2.254")],
        Conf(9),
        "ping node ::ffff:192.0.2.254 is IPv4-mapped",
    ),
    case("bad baud rate", &[(0, "serial /dev/ttyS0 baud 1234")], Conf(9), "bad baud rate \"1234\""),
    case(
        "relative path",
        &[(0, "statedir var/lib/hapair")],
        Conf(9),
        "path \"var/lib/hapair\" for statedir must be absolute",
    ),
    case(
        "duplicate directive",
        &[(0, "keepalive 100ms")],
        Conf(9),
        "duplicate keepalive (first on line 3)",
    ),
    case(
        "unknown option",
        &[(0, "mcast eth1 239.0.0.94 hops 2")],
        Conf(9),
        "unknown option \"hops\" for mcast",
    ),
    case("trailing argument", &[(0, "home alpha beta")], Conf(9), "unexpected \"beta\" after home"),
    case(
        "sensor limits out of order",
        &[(0, "sensor lm78/temp1 max 80 crit 70")],
        Conf(9),
        "limits are out of order",
    ),
    case(
        "realtime priority out of range",
        &[(0, "realtime on priority 100")],
        Conf(9),
        "realtime priority 100 is out of range",
    ),
    case(
        "duplicate ping node",
        &[(0, "ping 192.0.2.254"), (0, "ping 192.0.2.254")],
        Conf(10),
        "duplicate ping node 192.0.2.254",
    ),
    case(
        "duplicate sensor",
        &[(0, "sensor lm78/temp1 max 70"), (0, "sensor lm78/temp1 crit 80")],
        Conf(10),
        "duplicate sensor lm78/temp1",
    ),
    case(
        "too many media",
        &[
            (0, "serial /dev/ttyS1"),
            (0, "serial /dev/ttyS2"),
            (0, "serial /dev/ttyS3"),
            (0, "serial /dev/ttyS4"),
            (0, "serial /dev/ttyS5"),
            (0, "serial /dev/ttyS6"),
            (0, "serial /dev/ttyS7"),
            (0, "serial /dev/ttyS8"),
        ],
        Conf(16),
        "too many heartbeat media (at most 8)",
    ),
    case(
        "unknown control_group",
        &[(0, "control_group hapair-no-such-group")],
        Conf(9),
        "control_group hapair-no-such-group: no such group",
    ),
    case("bad control_group name", &[(0, "control_group a:b")], Conf(9), "bad group name \"a:b\""),
    case(
        "group without resource",
        &[(8, "group web"), (0, "resource ip 192.0.2.100/24 dev eth0"), (0, "group db")],
        Conf(10),
        "group db has no resource",
    ),
    case(
        "duplicate group",
        &[
            (8, "group web"),
            (0, "resource ip 192.0.2.100/24 dev eth0"),
            (0, "group web"),
            (0, "resource lsb apache2"),
        ],
        Conf(10),
        "duplicate group web (first on line 8)",
    ),
    case(
        "resource before the first group",
        &[(0, "group web"), (0, "resource lsb apache2")],
        Conf(8),
        "resource 192.0.2.100 before the first group line",
    ),
    case(
        "too many groups",
        &[
            (8, "group g1"),
            (0, "resource ip 192.0.2.100/24 dev eth0"),
            (0, "group g2"),
            (0, "resource lsb r2"),
            (0, "group g3"),
            (0, "resource lsb r3"),
            (0, "group g4"),
            (0, "resource lsb r4"),
            (0, "group g5"),
            (0, "resource lsb r5"),
            (0, "group g6"),
            (0, "resource lsb r6"),
            (0, "group g7"),
            (0, "resource lsb r7"),
            (0, "group g8"),
            (0, "resource lsb r8"),
            (0, "group g9"),
            (0, "resource lsb r9"),
        ],
        Conf(24),
        "too many groups (at most 8)",
    ),
    case(
        "group home not a node",
        &[(8, "group web home gamma"), (0, "resource ip 192.0.2.100/24 dev eth0")],
        Conf(8),
        "group web: home gamma is not a node",
    ),
    case(
        "bad group name",
        &[(8, "group web/db"), (0, "resource ip 192.0.2.100/24 dev eth0")],
        Conf(8),
        "bad group name \"web/db\" (letters, digits, '-', '_' and '.', at most 15 bytes)",
    ),
    case(
        "group name too long",
        &[(8, "group web-and-database"), (0, "resource ip 192.0.2.100/24 dev eth0")],
        Conf(8),
        "bad group name \"web-and-database\"",
    ),
    case(
        "home after a group line",
        &[(8, "group web"), (0, "resource ip 192.0.2.100/24 dev eth0"), (0, "home beta")],
        Conf(10),
        "home after a group line",
    ),
    flag_case("unknown kernel flag", "ro quiet hapair.bogus=1", "unknown kernel flag hapair.bogus"),
    flag_case(
        "unknown control_group on the kernel command line",
        "hapair.node=alpha hapair.control_group=hapair-no-such-group",
        "control_group hapair-no-such-group: no such group",
    ),
    flag_case(
        "node identity not in the config",
        "hapair.node=gamma",
        "this node is \"gamma\" (from hapair.node), which is not a node",
    ),
    flag_case(
        "bad kernel override",
        "hapair.node=alpha hapair.deadtime=5x",
        "bad duration \"5x\" for deadtime",
    ),
    flag_case(
        "kernel flag for a list directive",
        "hapair.resource=x",
        "hapair.resource cannot be set",
    ),
    flag_case(
        "kernel flag for a group",
        "hapair.node=alpha hapair.group=web",
        "hapair.group cannot be set",
    ),
    flag_case("bad boot flag", "hapair.standby=yes", "bad value \"yes\" for hapair.standby"),
    flag_case(
        "kernel override breaks a cross-check",
        "hapair.node=alpha hapair.keepalive=2s",
        "keepalive 2s must be shorter than deadtime 1s",
    ),
];

fn make_key(dir: &TempDir, key: Key) -> String {
    let p = match key {
        Key::Good => dir.write_mode("authkey", KEY, 0o600),
        Key::Missing => dir.join("no-such-key"),
        Key::Mode(m) => dir.write_mode("authkey", KEY, m),
        Key::Short => dir.write_mode("authkey", "short\n", 0o600),
        Key::Dir => {
            let d = dir.join("keydir");
            std::fs::create_dir(&d).unwrap();
            d
        }
        Key::NotRoot => {
            let p = dir.write_mode("authkey", KEY, 0o600);
            chown(&p, Some(65534), Some(65534)).unwrap();
            p
        }
    };
    s(&p).to_string()
}

fn config_text(edits: &[(usize, &str)], key: &str) -> String {
    let mut lines: Vec<String> = BASE.lines().map(str::to_string).collect();
    for &(n, text) in edits {
        if n == 0 { lines.push(text.to_string()) } else { lines[n - 1] = text.to_string() }
    }
    lines.join("\n").replace("{KEY}", key) + "\n"
}

/// Runs one case; returns a description of what went wrong, if anything.
fn run_case(c: &Case) -> Option<String> {
    let dir = TempDir::new("invalid");
    let key = make_key(&dir, c.key);
    let conf = dir.write("hapair.conf", &config_text(c.edits, &key));
    let flags = if c.cmdline.is_empty() { "hapair.node=alpha" } else { c.cmdline };
    let cmdline = dir.write("cmdline", &format!("BOOT_IMAGE=/vmlinuz ro {flags}\n"));
    let out = hapair(&["check", "-c", s(&conf), "--cmdline", s(&cmdline)]);
    let err = stderr(&out);
    let prefix = match c.at {
        Conf(n) => format!("{}:{n}: ", s(&conf)),
        ConfWhole => format!("{}: ", s(&conf)),
        Cmdline(n) => format!("{}:{n}: ", s(&cmdline)),
    };
    let ok = out.status.code() == Some(1)
        && err.starts_with(&prefix)
        && err.contains(c.says)
        && !err.contains("panicked");
    (!ok).then(|| {
        format!(
            "{}: exit {:?}, want prefix {prefix:?} and {:?}, got {err:?}",
            c.name,
            out.status.code(),
            c.says
        )
    })
}

#[test]
fn base_configuration_is_valid() {
    let dir = TempDir::new("invalid-base");
    let key = make_key(&dir, Key::Good);
    let conf = dir.write("hapair.conf", &config_text(&[], &key));
    let cmdline = dir.write("cmdline", "hapair.node=alpha\n");
    let out = hapair(&["check", "-c", s(&conf), "--cmdline", s(&cmdline)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn every_invalid_configuration_is_refused_with_file_and_line() {
    let mut names: Vec<&str> = CASES.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), CASES.len(), "case names must be distinct");
    assert!(CASES.len() >= 30);
    let failures: Vec<String> = CASES.iter().filter_map(run_case).collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn unreadable_files_are_named() {
    let dir = TempDir::new("invalid-files");
    let cmdline = dir.write("cmdline", "hapair.node=alpha\n");
    let missing = dir.join("missing.conf");
    let out = hapair(&["check", "-c", s(&missing), "--cmdline", s(&cmdline)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with(&format!("{}: cannot read", s(&missing))), "{}", stderr(&out));
    let conf = dir.write("hapair.conf", "node alpha\n");
    let no_cmdline = dir.join("missing.cmdline");
    let out = hapair(&["check", "-c", s(&conf), "--cmdline", s(&no_cmdline)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with(&format!("{}: cannot read", s(&no_cmdline))));
}

#[test]
fn invalid_utf8_names_the_line() {
    let dir = TempDir::new("invalid-utf8");
    let conf = dir.join("hapair.conf");
    std::fs::write(&conf, b"node alpha\nnode \xff\n").unwrap();
    let cmdline = dir.write("cmdline", "hapair.node=alpha\n");
    let out = hapair(&["check", "-c", s(&conf), "--cmdline", s(&cmdline)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with(&format!("{}:2: not valid UTF-8", s(&conf))));
}
