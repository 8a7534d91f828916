//! `hapair import-heartbeat` on the heartbeat v1 fixtures (tests/fixtures/heartbeat/*, written
//! in the style of heartbeat's annotated samples): the real binary converts each, the real
//! `hapair check` accepts the result with the key import-heartbeat generated, what cannot be
//! converted is listed in the output and on stderr, and no old secret survives.

use crate::common::TempDir;
use crate::common::bin::*;

/// A fixture: its directory, a node to check as, what must be listed as not converted and
/// the old secret that must not appear.
struct Fixture {
    dir: &'static str,
    node: &'static str,
    not_converted: &'static [&'static str],
    secret: Option<&'static str>,
    method: &'static str,
}

const FIXTURES: &[Fixture] = &[
    Fixture {
        dir: "serial-bcast-sha1",
        node: "pollux",
        not_converted: &[],
        secret: Some("OldHeartbeatSecretOne"),
        method: "method sha1 (id 1)",
    },
    Fixture {
        dir: "mcast-ucast-md5",
        node: "gw-a.example.net",
        not_converted: &[
            "ha.cf:2: logfacility local0",
            "ha.cf:3: logfile /var/log/ha-log",
            "ha.cf:19: stonith_host (arguments not shown",
            "ha.cf:20: respawn hacluster",
            "ha.cf:21: apiauth ipfail",
            "haresources:2: MailTo::postmaster@example.net::gateway",
        ],
        secret: Some("OldHeartbeatSecretThree"),
        method: "method md5 (id 3)",
    },
    Fixture {
        dir: "ucast-single-crc",
        node: "lab1",
        not_converted: &["ha.cf:10: ucast eth2 203.0.113.2: hapair lists both nodes' addresses"],
        secret: None,
        method: "method crc (id 1), which authenticated nothing",
    },
    Fixture {
        dir: "active-active",
        node: "selene",
        not_converted: &[],
        secret: Some("OldHeartbeatSecretTwo"),
        method: "method sha1 (id 2)",
    },
];

fn fixture_dir(name: &str) -> String {
    format!("{}/tests/fixtures/heartbeat/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The key from import-heartbeat's `(umask 077; echo KEY > PATH)` line on stderr.
fn new_key(stderr: &str) -> String {
    let line = stderr.lines().find(|l| l.contains("(umask 077; echo ")).expect("a key line");
    let key = line.split("echo ").nth(1).unwrap().split(' ').next().unwrap();
    assert_eq!(key.len(), 64, "{line}");
    key.to_string()
}

#[test]
fn every_fixture_converts_to_a_configuration_check_accepts() {
    for f in FIXTURES {
        let out = hapair(&["import-heartbeat", &fixture_dir(f.dir)]);
        let (conf_text, err) = (stdout(&out), stderr(&out));
        assert_eq!(out.status.code(), Some(0), "{}: {err}", f.dir);
        let dir = TempDir::new(&format!("import-{}", f.dir));
        let conf = dir.write("hapair.conf", &conf_text);
        let key = dir.write_mode("authkey", &format!("{}\n", new_key(&err)), 0o600);
        let cmdline = dir.write("cmdline", &format!("hapair.authkey={}\n", s(&key)));
        // Offline: the converted init scripts (apache2, ...) live on the heartbeat cluster,
        // not on the test machine; a missing agent is then a warning.
        let args =
            ["check", "--offline", "-c", s(&conf), "--cmdline", s(&cmdline), "--node", f.node];
        let check = hapair(&args);
        assert_eq!(check.status.code(), Some(0), "{}: {}\n{conf_text}", f.dir, stderr(&check));
        assert!(!conf_text.contains("# NOTE: hapair check"), "{}: {conf_text}", f.dir);
        assert!(conf_text.contains(&format!("heartbeat's {}", f.method)), "{conf_text}");
        assert!(err.contains(&format!("heartbeat's {} is not reused", f.method)), "{err}");
        if let Some(secret) = f.secret {
            assert!(!conf_text.contains(secret) && !err.contains(secret), "{}", f.dir);
        }
    }
}

#[test]
fn unconvertible_items_are_listed_in_the_output_and_on_stderr() {
    for f in FIXTURES {
        let out = hapair(&["import-heartbeat", &fixture_dir(f.dir)]);
        let (conf_text, err) = (stdout(&out), stderr(&out));
        let listed = conf_text.lines().filter(|l| l.starts_with("# NOT CONVERTED: ")).count();
        assert_eq!(listed, f.not_converted.len(), "{}: {conf_text}", f.dir);
        for item in f.not_converted {
            assert!(conf_text.contains(&format!("# NOT CONVERTED: {item}")), "{item}\n{conf_text}");
            assert!(err.contains(&format!("NOT CONVERTED: {item}")), "{item}\n{err}");
        }
    }
    // The password on the stonith line is named nowhere.
    let out = hapair(&["import-heartbeat", &fixture_dir("mcast-ucast-md5")]);
    assert!(!stdout(&out).contains("TopSecretPowerPw") && !stderr(&out).contains("TopSecret"));
}

/// SPEC §7.1: every haresources line becomes a group at home on its line's node; a file of
/// one line keeps the form without `group` lines.
#[test]
fn every_haresources_line_becomes_a_group() {
    let out = hapair(&["import-heartbeat", &fixture_dir("active-active")]);
    let text = stdout(&out);
    let (_, groups) = text.split_once("\nauto_failback on\n").unwrap();
    let (groups, _) = groups.split_once("\n\n").unwrap();
    assert_eq!(
        groups,
        "group 192.0.2.100 home helios\nresource ip 192.0.2.100/24 dev eth0\n\
         resource lsb apache2\ngroup 192.0.2.101 home selene\n\
         resource ip 192.0.2.101/24 dev eth0\nresource ocf heartbeat:Filesystem \
         device=/dev/sdb1 directory=/var/lib/postgresql fstype=ext4\nresource lsb postgresql"
    );
    let c = hapair::config::parse_str(&text, std::path::Path::new("hapair.conf")).unwrap();
    let homes: Vec<(&str, &str)> =
        c.groups.iter().map(|g| (g.name.as_str(), g.home.as_str())).collect();
    assert_eq!(homes, [("192.0.2.100", "helios"), ("192.0.2.101", "selene")]);
    // Two groups in the mail gateway's file too; one in the file-server pair's.
    let out = hapair(&["import-heartbeat", &fixture_dir("mcast-ucast-md5")]);
    let text = stdout(&out);
    assert!(text.contains("\ngroup 192.0.2.26 home gw-b.example.net\n"), "{text}");
    let out = hapair(&["import-heartbeat", &fixture_dir("serial-bcast-sha1")]);
    let text = stdout(&out);
    assert!(!text.contains("\ngroup ") && text.contains("\nhome castor\n"), "{text}");
}

#[test]
fn a_missing_file_is_named_and_exits_1() {
    let dir = TempDir::new("import-missing");
    let src = fixture_dir("serial-bcast-sha1");
    for name in ["ha.cf", "haresources"] {
        std::fs::copy(format!("{src}/{name}"), dir.join(name)).unwrap();
    }
    let out = hapair(&["import-heartbeat", s(dir.path())]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).is_empty());
    let want = format!("hapair: import-heartbeat: {}: cannot read", s(&dir.join("authkeys")));
    assert!(stderr(&out).starts_with(&want), "{}", stderr(&out));
    let out = hapair(&["import-heartbeat", "/nonexistent-hapair-dir"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("/nonexistent-hapair-dir/ha.cf: cannot read"));
}
