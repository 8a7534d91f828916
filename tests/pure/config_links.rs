//! SPEC §7.7: a medium line's own `keepalive` and `deadtime`: parsed on every medium, printed
//! by `check --print` (and parsed back), in the digest (a serial line's too, though the line
//! is local), the warning for a link slower than the global deadtime, the per-link warntime,
//! and `initdead`'s default.

use std::path::Path;

use hapair::config::{Config, LinkTiming, parse_str};
use hapair::core::time::Duration;

use crate::common::TempDir;
use crate::common::bin::*;

const GLOBAL: &str = "node alpha\nnode beta\nkeepalive 100ms\nwarntime 300ms\ndeadtime 500ms\n\
    authkey /etc/hapair/authkey\n";

fn parse(media: &str) -> Config {
    let text = format!("{GLOBAL}{media}");
    parse_str(&text, Path::new("t.conf")).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn every_medium_takes_its_own_keepalive_and_deadtime() {
    let c = parse(
        "serial /dev/ttyS0 baud 9600 keepalive 200ms deadtime 2s\n\
         bcast eth1 deadtime 1s\n\
         mcast eth2 239.0.0.94 keepalive 10ms ttl 2 deadtime 50ms\n\
         mcast eth2 ff02::1:694 keepalive 20ms\n\
         ucast eth3 192.0.2.1 keepalive 10ms deadtime 30ms\n\
         ucast eth3 192.0.2.2\n\
         ucast eth4 2001:db8::1 2001:db8::2\n",
    );
    let t =
        |k: Option<u64>, d: Option<u64>| LinkTiming { keepalive: k.map(ms), deadtime: d.map(ms) };
    assert_eq!(
        c.pair.link_timing.as_slice(),
        &[
            t(Some(200), Some(2000)),
            t(None, Some(1000)),
            t(Some(10), Some(50)),
            t(Some(20), None),
            t(Some(10), Some(30)),
            t(None, None),
        ]
    );
    let p = &c.pair;
    let got: Vec<_> = (0..6).map(|i| (p.link_keepalive(i), p.link_deadtime(i))).collect();
    let want = [(200, 2000), (100, 1000), (10, 50), (20, 500), (10, 30), (100, 500)];
    assert_eq!(got, want.map(|(k, d)| (ms(k), ms(d))));
    // Warntime: the global one for a link of the global timing, else the same fraction of its
    // deadtime (3/5 here), above its keepalive.
    let warn: Vec<_> = (0..6).map(|i| p.link_warntime(i)).collect();
    assert_eq!(warn, [1200, 600, 30, 300, 18, 300].map(ms));
    assert_eq!(p.longest_deadtime(), ms(2000));
    // initdead defaults to twice the longest deadtime, link or global.
    assert_eq!(p.initdead, ms(4000));
    assert_eq!(parse("bcast eth1\n").pair.initdead, ms(1000), "twice the global one");
}

#[test]
fn check_print_renders_them_and_parses_back() {
    let c = parse(
        "serial /dev/ttyS0 keepalive 200ms deadtime 2s\nbcast eth1\n\
         ucast eth3 192.0.2.1 192.0.2.2 deadtime 1s\n",
    );
    let printed = c.to_string();
    assert!(
        printed.contains("serial /dev/ttyS0 baud 115200 keepalive 200ms deadtime 2s\n"),
        "{printed}"
    );
    assert!(printed.contains("bcast eth1\n"), "a link of the global timing prints as before");
    assert!(printed.contains("ucast eth3 192.0.2.1 192.0.2.2 deadtime 1s\n"), "{printed}");
    let again = parse_str(&printed, Path::new("printed.conf")).expect("parses back");
    assert_eq!(again, c);
}

#[test]
fn the_digest_covers_every_link_timing_even_a_serial_lines() {
    let digest = |media: &str| parse(media).digest();
    let base = digest("serial /dev/ttyS0\nbcast eth1\n");
    // Without per-link timing the digest is what it was before it existed.
    assert_eq!(digest("serial /dev/ttyS1\nbcast eth1\n"), base, "the serial device is local");
    let others = [
        "serial /dev/ttyS0\nbcast eth1 keepalive 50ms\n",
        "serial /dev/ttyS0\nbcast eth1 deadtime 1s\n",
        "serial /dev/ttyS0 keepalive 200ms\nbcast eth1\n",
        "serial /dev/ttyS0 deadtime 2s\nbcast eth1\n",
        "serial /dev/ttyS0 deadtime 3s\nbcast eth1\n",
    ];
    let mut seen = vec![base];
    for media in others {
        let d = digest(media);
        assert!(!seen.contains(&d), "{media:?} digests like another");
        seen.push(d);
    }
    // Still local: the serial device, with its timing.
    assert_eq!(
        digest("serial /dev/ttyS1 deadtime 2s\nbcast eth1\n"),
        digest("serial /dev/ttyS0 deadtime 2s\nbcast eth1\n")
    );
}

#[test]
fn a_link_slower_than_the_global_deadtime_is_warned_about() {
    let c = parse(
        "bcast eth1 keepalive 200ms deadtime 2s\nucast eth2 192.0.2.1 192.0.2.2 deadtime 400ms\n",
    );
    let w = c.warnings();
    let slow: Vec<_> = w.iter().filter(|w| w.contains("failover then waits for it")).collect();
    assert_eq!(slow.len(), 1, "{w:?}");
    assert!(
        slow[0].starts_with("bcast eth1: deadtime 2s is longer than the global deadtime 500ms")
    );
    assert!(
        parse("bcast eth1\nbcast eth2 deadtime 500ms\n")
            .warnings()
            .iter()
            .all(|w| !w.contains("waits"))
    );
}

/// The real `hapair check`: the warning on stderr, and it still passes.
#[test]
fn check_warns_about_a_slow_link_and_passes() {
    let dir = TempDir::new("cli-slow-link");
    let key = dir.write_mode("authkey", "0123456789abcdef0123456789abcdef", 0o600);
    let conf = dir.write(
        "hapair.conf",
        &format!(
            "node alpha\nnode beta\nauthkey {}\nbcast eth1 keepalive 10ms deadtime 50ms\n\
             ucast eth2 192.0.2.1 192.0.2.2 keepalive 200ms deadtime 10s\n",
            s(&key)
        ),
    );
    let cmdline = dir.write("cmdline", "");
    let out = hapair(&["check", "-c", s(&conf), "--cmdline", s(&cmdline), "--node", "alpha"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("warning: ucast eth2: deadtime 10s is longer than the global deadtime 5s: failover then waits for it"),
        "{err}"
    );
    assert!(!err.contains("bcast eth1: deadtime"), "{err}");
}
