//! Property and round-trip tests of the parser: no input makes it panic, and the canonical
//! text of any valid configuration parses back to the same `Config` (and the same digest).

use std::path::Path;

use hapair::config::{Cmdline, Config, parse_bytes, parse_str};
use proptest::prelude::*;

/// Every directive, with every option, IPv6, quoting, a two-line ucast and two groups.
const KITCHEN_SINK: &str = r#"
node alpha
node beta   # comment
keepalive 100ms
warntime 300ms
deadtime 500ms
initdead 10s
authkey /etc/hapair/authkey
udpport 6694
control "/run/hapair dir/hapair.sock"
statedir /var/lib/hapair
serial /dev/ttyS0 baud 9600
bcast eth1
mcast eth1 239.0.0.94 ttl 2
mcast eth2 ff02::94
ucast eth3 198.51.100.1
ucast eth3 198.51.100.2
ucast eth4 2001:db8::1 2001:db8::2
home beta
auto_failback on
group www
resource ip 192.0.2.100/24 dev eth0 garp 3 garp_interval 1s garp_refresh 1m
resource ip 2001:db8:1::100/64 dev eth0 name vip6
resource exec web start="systemctl start \"web\"" stop="systemctl stop web" timeout 30s
group data home alpha auto_failback off
resource exec db start=/bin/db-start stop=/bin/db-stop monitor="curl -fs http://192.0.2.100/"
resource exec backup start=/usr/bin/true stop=/usr/bin/true
resource lsb apache2
resource ocf heartbeat:Filesystem device=/dev/md0 directory="/srv/my data" fstype=ext4 name fs0
monitor_interval 2s
restart_limit 0 in 1m
watchdog /dev/watchdog timeout 5s
hwmon lm78 root /sys/class/hwmon
hwmon it87
sensor lm78/temp1 max 70 crit 80.5
sensor lm78/in0 min 3.135 max 3.465
sensor it87/fan1 min 1500
raid /proc/mdstat
ping 192.0.2.254 192.0.2.253
ping 2001:db8::fe
check disk "test -w /srv/ok" interval 30s timeout 2s
check dns "dig +short @192.0.2.53 example.org | grep -q ."
fence /usr/sbin/fence_ipmilan -a "192.0.2.30" -l admin
notify /etc/hapair/notify
realtime on priority 60
"#;

fn parse(text: &str) -> Config {
    match parse_str(text, Path::new("test.conf")) {
        Ok(c) => c,
        Err(e) => panic!("{e}\n{text}"),
    }
}

#[test]
fn kitchen_sink_round_trips() {
    let c = parse(KITCHEN_SINK);
    assert_eq!(c.pair.media.len(), 6);
    assert_eq!(c.resources.len(), 7);
    let groups: Vec<_> = c.groups.iter().map(|g| (g.name.as_str(), g.resources.clone())).collect();
    assert_eq!(groups, [("www", 0..3), ("data", 3..7)]);
    assert_eq!(c.health.ping.len(), 3);
    let printed = c.to_string();
    let again = parse(&printed);
    assert_eq!(again, c, "{printed}");
    assert_eq!(again.to_string(), printed);
    assert_eq!(again.digest(), c.digest());
}

#[test]
fn defaults_are_the_spec_defaults() {
    let c = parse("node a\nnode b\nauthkey /k\nbcast eth0\n");
    let ms = |d: hapair::core::time::Duration| d.total_millis();
    assert_eq!(ms(c.pair.keepalive), 1000);
    assert_eq!(ms(c.pair.warntime), 3000);
    assert_eq!(ms(c.pair.deadtime), 5000);
    assert_eq!(ms(c.pair.initdead), 10_000);
    assert_eq!(c.pair.udpport, 694);
    assert_eq!(c.local.control, Path::new("/run/hapair/hapair.sock"));
    assert_eq!(c.local.statedir, Path::new("/var/lib/hapair"));
    assert_eq!(c.pair.home, "a");
    assert!(!c.pair.auto_failback && c.pair.fence.is_none() && c.local.realtime.is_none());
    assert_eq!((c.pair.restart_limit.count, ms(c.pair.restart_limit.window)), (3, 600_000));
    assert_eq!(ms(c.pair.monitor_interval), 5000);
    assert_eq!(c.node_index("b"), Some(1));
    assert_eq!(c.node_index("c"), None);
    // Defaults derive from keepalive.
    let c = parse("node a\nnode b\nauthkey /k\nbcast eth0\nkeepalive 200ms\n");
    assert_eq!((ms(c.pair.warntime), ms(c.pair.deadtime), ms(c.pair.initdead)), (600, 1000, 2000));
}

#[test]
fn digest_ignores_node_local_directives_only() {
    let base = parse(KITCHEN_SINK);
    let local = parse(&KITCHEN_SINK.replace("statedir /var/lib/hapair", "statedir /srv/state"));
    assert_eq!(base.digest(), local.digest());
    let local = parse(&KITCHEN_SINK.replace("/dev/ttyS0", "/dev/ttyUSB0"));
    assert_eq!(base.digest(), local.digest());
    let shared = parse(&KITCHEN_SINK.replace("deadtime 500ms", "deadtime 400ms"));
    assert_ne!(base.digest(), shared.digest());
    let shared = parse(&KITCHEN_SINK.replace("home beta", "home alpha"));
    assert_ne!(base.digest(), shared.digest());
}

#[test]
fn kernel_flags_replace_directives() {
    let cmdline = Cmdline::parse(
        b"ro hapair.serial=/dev/pts/3 hapair.ping=192.0.2.1 hapair.fence=watchdog \
          hapair.control=\"/run/x y.sock\" hapair.realtime=off hapair.restart_limit=\"2 in 5m\"",
        Path::new("cmdline"),
    )
    .unwrap();
    let c = parse_bytes(KITCHEN_SINK.as_bytes(), Path::new("k.conf"), &cmdline).unwrap();
    let serial: Vec<_> = c
        .pair
        .media
        .iter()
        .filter(|m| matches!(m, hapair::config::Medium::Serial { .. }))
        .collect();
    assert_eq!(serial.len(), 1);
    assert_eq!(serial[0].label(), "serial /dev/pts/3");
    assert_eq!(c.health.ping.len(), 1);
    assert_eq!(c.pair.fence, Some(hapair::config::Fence::Watchdog));
    // One-word directives take the whole value; the others split it at spaces.
    assert_eq!(c.local.control, Path::new("/run/x y.sock"));
    assert_eq!(c.local.realtime, None);
    assert_eq!(c.pair.restart_limit.count, 2);
    let e = Cmdline::parse(b"hapair.home=\"alpha beta\"", Path::new("cmdline")).unwrap();
    let e = parse_bytes(KITCHEN_SINK.as_bytes(), Path::new("k.conf"), &e).unwrap_err();
    assert_eq!(
        e.to_string(),
        "cmdline:1: bad node name \"alpha beta\" \
         (letters, digits, '-', '_' and '.', at most 64 bytes)"
    );
}

/// Words the token soup is made of: directive names, options and values good and bad.
const VOCABULARY: &[&str] = &[
    "node",
    "alpha",
    "beta",
    "keepalive",
    "warntime",
    "deadtime",
    "initdead",
    "100ms",
    "1s",
    "5x",
    "authkey",
    "/k",
    "udpport",
    "0",
    "65536",
    "serial",
    "/dev/ttyS0",
    "baud",
    "bcast",
    "mcast",
    "ucast",
    "eth1",
    "239.0.0.1",
    "192.0.2.1",
    "2001:db8::1",
    "ff02::1",
    "ttl",
    "resource",
    "ip",
    "exec",
    "lsb",
    "ocf",
    "192.0.2.100/24",
    "/129",
    "dev",
    "garp",
    "name",
    "start=\"a b\"",
    "stop=x",
    "a:b",
    "k=v",
    "restart_limit",
    "in",
    "watchdog",
    "timeout",
    "hwmon",
    "root",
    "sensor",
    "lm78/temp1",
    "max",
    "crit",
    "-1.5",
    "raid",
    "ping",
    "check",
    "\"cmd\"",
    "fence",
    "notify",
    "realtime",
    "on",
    "off",
    "priority",
    "home",
    "auto_failback",
    "monitor_interval",
    "group",
    "web",
    "#",
    "\"",
    "\\",
    "\"\\q\"",
    "18446744073709551616",
];

/// The kitchen sink without its node lines.
fn kitchen_sink_lines() -> Vec<&'static str> {
    KITCHEN_SINK.lines().skip(3).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn any_subset_of_valid_lines_round_trips(
        lines in proptest::sample::subsequence(kitchen_sink_lines(), 0..40),
    ) {
        let text = format!("node alpha\nnode beta\n{}\n", lines.join("\n"));
        if let Ok(c) = parse_str(&text, Path::new("subset.conf")) {
            let again = parse_str(&c.to_string(), Path::new("printed.conf"));
            prop_assert_eq!(again.as_ref(), Ok(&c));
            prop_assert_eq!(again.map(|a| a.digest()), Ok(c.digest()));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_bytes(&bytes, Path::new("fuzz.conf"), &Cmdline::empty());
        let _ = Cmdline::parse(&bytes, Path::new("fuzz.cmdline"));
    }

    #[test]
    fn token_soup_never_panics_and_valid_soup_round_trips(
        lines in proptest::collection::vec(
            proptest::collection::vec(proptest::sample::select(VOCABULARY), 0..7), 0..24),
        flags in proptest::collection::vec(proptest::sample::select(VOCABULARY), 0..4),
    ) {
        let text: String = lines.iter().map(|l| l.join(" ") + "\n").collect();
        let flag_text =
            flags.chunks(2).map(|p| format!("hapair.{}={} ", p[0], p.get(1).unwrap_or(&"")));
        let flag_text: String = flag_text.collect();
        let cmdline = Cmdline::parse(flag_text.as_bytes(), Path::new("c"))
            .unwrap_or_else(|_| Cmdline::empty());
        // The base makes a valid configuration possible; the soup may break it.
        let full = format!("node alpha\nnode beta\nauthkey /k\nbcast eth0\n{text}");
        if let Ok(c) = parse_bytes(full.as_bytes(), Path::new("soup.conf"), &cmdline) {
            let again = parse_str(&c.to_string(), Path::new("printed.conf"));
            prop_assert_eq!(again.as_ref(), Ok(&c));
        }
    }
}
