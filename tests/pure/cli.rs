//! The real `hapair` binary's command line: usage errors exit 2, `--help` works for every
//! command, the admin commands exit 3 when no daemon answers, `keygen` makes a valid key,
//! and `run` honours `hapair.disable=1` and refuses a bad configuration.

use crate::common::TempDir;
use crate::common::bin::*;

const COMMANDS: &[&str] = &[
    "run",
    "check",
    "status",
    "standby",
    "online",
    "takeover",
    "maintenance",
    "cleanup",
    "keygen",
    "import-heartbeat",
    "export-pacemaker",
];

#[test]
fn help_for_every_command_exits_0() {
    for c in COMMANDS {
        for flag in ["--help", "-h"] {
            let out = hapair(&[c, flag]);
            assert_eq!(out.status.code(), Some(0), "{c} {flag}: {}", stderr(&out));
            assert!(stdout(&out).contains(&format!("hapair {c}")), "{c}: {}", stdout(&out));
        }
        let out = hapair(&["help", c]);
        assert_eq!(out.status.code(), Some(0));
    }
    let out = hapair(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    for c in COMMANDS {
        assert!(stdout(&out).contains(c), "overall help lists {c}");
    }
}

#[test]
fn usage_errors_exit_2() {
    let cases: &[&[&str]] = &[
        &[],
        &["frobnicate"],
        &["check", "--bogus"],
        &["check", "extra"],
        &["status", "--json", "--prometheus"],
        &["standby", "--print"],
        &["maintenance"],
        &["maintenance", "sometimes"],
        &["cleanup", "a", "b"],
        &["import-heartbeat"],
        &["keygen", "-c"],
        &["check", "--node"],
    ];
    for args in cases {
        let out = hapair(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).starts_with("hapair: "), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains("panicked"));
    }
}

/// A valid configuration whose control socket is a path nothing listens on.
fn idle_setup(dir: &TempDir) -> (String, String) {
    idle_setup_with_key(dir, KEY)
}

/// `idle_setup` with `key` as the authkey file's content.
fn idle_setup_with_key(dir: &TempDir, key: &str) -> (String, String) {
    let key = dir.write_mode("authkey", key, 0o600);
    let conf = dir
        .write("hapair.conf", &format!("node alpha\nnode beta\nauthkey {}\nbcast eth1\n", s(&key)));
    let sock = dir.join("hapair.sock");
    let cmdline = dir.write("cmdline", &format!("hapair.control={}\n", s(&sock)));
    (s(&conf).to_string(), s(&cmdline).to_string())
}

#[test]
fn daemon_commands_exit_3_when_not_running() {
    let dir = TempDir::new("cli-idle");
    let (conf, cmdline) = idle_setup(&dir);
    let cases: &[&[&str]] = &[
        &["status"],
        &["status", "--json"],
        &["status", "--prometheus"],
        &["standby"],
        &["online"],
        &["takeover"],
        &["maintenance", "on"],
        &["maintenance", "off"],
        &["cleanup"],
        &["cleanup", "web"],
    ];
    for args in cases {
        let mut full = args.to_vec();
        full.extend(["-c", &conf, "--cmdline", &cmdline]);
        let out = hapair(&full);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("not running"), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn daemon_commands_exit_1_on_a_bad_configuration() {
    let dir = TempDir::new("cli-bad");
    let conf = dir.write("hapair.conf", "node alpha\n");
    let cmdline = dir.write("cmdline", "");
    let out = hapair(&["status", "-c", s(&conf), "--cmdline", s(&cmdline)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with(&format!("{}:1: only one node", s(&conf))));
}

#[test]
fn keygen_output_is_accepted_as_an_authkey() {
    let out = hapair(&["keygen"]);
    assert_eq!(out.status.code(), Some(0));
    let key = stdout(&out);
    assert_eq!(key.len(), 65);
    assert!(key.ends_with('\n'));
    assert!(key[..64].bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')), "{key}");
    assert_ne!(stdout(&hapair(&["keygen"])), key, "two keys are different");

    let dir = TempDir::new("cli-keygen");
    let path = dir.write_mode("authkey", &key, 0o600);
    let conf = dir.write(
        "hapair.conf",
        &format!("node alpha\nnode beta\nauthkey {}\nbcast eth1\n", s(&path)),
    );
    let out = hapair(&["check", "-c", s(&conf), "--node", "beta", "--cmdline", "/dev/null"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("ok (node beta"));
}

#[test]
fn node_option_beats_the_kernel_flag() {
    let dir = TempDir::new("cli-node");
    let (conf, _) = idle_setup(&dir);
    let cmdline = dir.write("node.cmdline", "hapair.node=alpha\n");
    let out = hapair(&["check", "-c", &conf, "--cmdline", s(&cmdline), "--node", "beta"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("node beta"));
    let out = hapair(&["check", "-c", &conf, "--cmdline", s(&cmdline), "--node", "gamma"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("\"gamma\" (from --node), which is not a node"));
}

#[test]
fn run_exits_0_when_disabled_and_1_on_a_bad_configuration() {
    let dir = TempDir::new("cli-run");
    let conf = dir.write("hapair.conf", "this is not a configuration\n");
    let disabled = dir.write("disabled.cmdline", "ro hapair.disable=1\n");
    let out = hapair(&["run", "-c", s(&conf), "--cmdline", s(&disabled)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("hapair.disable=1"), "{}", stderr(&out));

    let enabled = dir.write("enabled.cmdline", "ro hapair.node=alpha\n");
    let out = hapair(&["run", "-c", s(&conf), "--cmdline", s(&enabled)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with(&format!("{}:1: unknown directive \"this\"", s(&conf))));
}

#[test]
fn check_warns_but_passes() {
    let dir = TempDir::new("cli-warn");
    let (conf, cmdline) = idle_setup(&dir);
    let out = hapair(&["check", "-c", &conf, "--cmdline", &cmdline, "--node", "alpha"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("warning: only one heartbeat medium (bcast eth1)"), "{err}");
    assert!(err.contains("warning: no fence configured"), "{err}");
}

/// SPEC §7.2: `check` warns about a key under 32 bytes, naming the file, and still passes;
/// `run` logs the same warning. `KEY` has 32 bytes and no warning.
#[test]
fn a_short_authkey_is_warned_about_by_check_and_run() {
    let short = "0123456789abcdef\n";
    for (key, warned) in [(short, true), (KEY, false)] {
        let dir = TempDir::new("cli-short-key");
        let (conf, cmdline) = idle_setup_with_key(&dir, key);
        let message = format!(
            "authkey {} holds 16 bytes of key; 32 or more are recommended \
             (make a new one with hapair keygen)",
            s(&dir.join("authkey"))
        );
        let out = hapair(&["check", "-c", &conf, "--cmdline", &cmdline, "--node", "alpha"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(stdout(&out).contains("ok (node alpha"), "{}", stdout(&out));
        let err = stderr(&out);
        assert_eq!(err.contains(&format!("{conf}: warning: {message}\n")), warned, "{err}");
        assert_eq!(err.contains("authkey"), warned, "{key:?}: {err}");

        // `run` logs it before it starts (here it then fails on its state directory).
        let blocker = dir.write("not-a-dir", "");
        let flags = format!(
            "{} hapair.statedir={}/state\n",
            std::fs::read_to_string(&cmdline).unwrap().trim(),
            s(&blocker)
        );
        let cmdline = dir.write("run.cmdline", &flags);
        let out = hapair(&["run", "-c", &conf, "--cmdline", s(&cmdline), "--node", "alpha"]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let err = stderr(&out);
        let logged = |what: &str| err.lines().any(|l| l.contains("WARN") && l.contains(what));
        assert_eq!(logged("authkey"), warned, "{key:?}: {err}");
        assert_eq!(logged(&message), warned, "{key:?}: {err}");
    }
}

#[test]
fn run_reports_a_start_up_failure_in_one_line() {
    let dir = TempDir::new("cli-run-bad-statedir");
    let (conf, cmdline) = idle_setup(&dir);
    // The state directory's parent is a regular file: the daemon cannot start, says why, and
    // exits 1 before it touches anything else.
    let blocker = dir.write("not-a-dir", "");
    let statedir = format!("{}/state", s(&blocker));
    let cmdline_text = std::fs::read_to_string(&cmdline).unwrap();
    let cmdline2 =
        dir.write("cmdline2", &format!("{} hapair.statedir={statedir}\n", cmdline_text.trim()));
    let out = hapair(&["run", "-c", &conf, "--cmdline", s(&cmdline2), "--node", "alpha"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains(&statedir), "{}", stderr(&out));
}

/// Serves one control request on `sock` with `reply`; returns the request line it got.
fn fake_daemon(sock: &std::path::Path, reply: &'static str) -> std::thread::JoinHandle<String> {
    use std::io::{Read, Write};
    let listener = std::os::unix::net::UnixListener::bind(sock).unwrap();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = String::new();
        stream.read_to_string(&mut request).unwrap();
        let _ = stream.write_all(reply.as_bytes());
        request
    })
}

#[test]
fn daemon_commands_send_their_request_and_print_the_answer() {
    let cases: &[(&[&str], &str, &str, i32, &str)] = &[
        (
            &["status", "--json"],
            "status json\n",
            "ok\n{\"node\":\"alpha\"}\n",
            0,
            "{\"node\":\"alpha\"}\n",
        ),
        (&["cleanup", "web"], "cleanup web\n", "ok\ncleaned\n", 0, "cleaned\n"),
        // An answer without a body prints nothing; a refusal prints on stderr only.
        (&["maintenance", "off"], "maintenance off\n", "ok\n", 0, ""),
        (&["takeover"], "takeover\n", "error peer is not healthy\n", 1, ""),
    ];
    for (args, want_request, reply, code, want_out) in cases {
        let dir = TempDir::new("cli-talk");
        let (conf, cmdline) = idle_setup(&dir);
        let daemon = fake_daemon(&dir.join("hapair.sock"), reply);
        let mut full = args.to_vec();
        full.extend(["-c", &conf, "--cmdline", &cmdline]);
        let out = hapair(&full);
        // Should hapair not have connected, this connection ends the fake daemon's wait.
        drop(std::os::unix::net::UnixStream::connect(dir.join("hapair.sock")));
        let request = daemon.join().unwrap_or_default();
        assert_eq!(request, *want_request, "{args:?}: {}", stderr(&out));
        assert_eq!(out.status.code(), Some(*code), "{args:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), *want_out, "{args:?}: stdout");
        if *code == 1 {
            assert!(stderr(&out).contains("peer is not healthy"), "{}", stderr(&out));
        }
    }
}
