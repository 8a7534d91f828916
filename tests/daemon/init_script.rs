//! scripts/hapair.init, run as init would run it: start, status, stop, restart, reload,
//! force-reload (each one's own SIGHUP seen by the daemon), the refusal of an invalid
//! configuration (exit 6, with `hapair check`'s own message), a dead daemon with its pid file
//! (status 1), SIGKILL after the stop timeout, and the LSB exit codes for usage and a missing
//! binary; and the systemd unit, checked by `systemd-analyze verify`.
//!
//! The daemon is the real `hapair run` (`DAEMON`), except where a test needs one that
//! misbehaves: the fake, a shell script that acts like one (stays up, answers `status` while
//! alive, records SIGHUP and SIGTERM, ignores SIGTERM on request) and hands `check` to the
//! real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::common::TempDir;
use crate::common::bin::*;

/// Which daemon the init script starts. `Daemon::Real` runs the real `hapair run`.
const DAEMON: Daemon = Daemon::Real;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Daemon {
    /// The shell script `FAKE`: what the real daemon never does on purpose.
    Fake,
    Real,
}

/// Something the daemon must have seen.
enum Event {
    Reload,
    Term,
}

/// A generous bound for anything the tests wait for.
const DEADLINE: Duration = Duration::from_secs(30);

const FAKE: &str = r#"#!/bin/sh
# Fake hapair for tests/daemon/init_script.rs: `check` is the real binary; `run` acts like the
# daemon.
real=@REAL@
fake=@DIR@
cmd=$1
case $cmd in
check) exec "$real" "$@" ;;
status)
    pid=$(cat "$fake/answering" 2>/dev/null) || exit 3
    state=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -c1)
    [ -n "$state" ] && [ "$state" != Z ] || exit 3
    echo "fake: active"
    ;;
run)
    echo "$*" >"$fake/run.args"
    child=
    on_term() {
        echo term >>"$fake/events"
        rm -f "$fake/answering"
        [ -n "$child" ] && kill "$child" 2>/dev/null
        exit 0
    }
    # Ignoring SIGTERM, it still notes each one, so that a test sees it came and was survived.
    if [ -n "$HAPAIR_FAKE_IGNORE_TERM" ]; then
        trap 'echo term-ignored >>"$fake/events"' TERM
    else
        trap on_term TERM
    fi
    trap 'echo hup >>"$fake/events"' HUP
    echo $$ >"$fake/answering"
    while :; do
        sleep 1 &
        child=$!
        wait "$child"
    done
    ;;
*) echo "fake hapair: unknown command $cmd" >&2; exit 2 ;;
esac
"#;

/// A temporary directory with a valid configuration, a key, a kernel command line, the
/// daemon binary and the pid file; kills the daemon it started when dropped.
struct Rig {
    dir: TempDir,
    daemon: Daemon,
    bin: PathBuf,
    conf: PathBuf,
    pidfile: PathBuf,
    env: Vec<(String, String)>,
}

impl Rig {
    fn new(tag: &str) -> Rig {
        Rig::with(tag, DAEMON)
    }

    /// A rig whose script starts `daemon`.
    fn with(tag: &str, daemon: Daemon) -> Rig {
        let dir = TempDir::new(&format!("init-{tag}"));
        let key = dir.write_mode("authkey", KEY, 0o600);
        let conf = dir.write(
            "hapair.conf",
            "node alpha\nnode beta\nauthkey /etc/hapair/authkey\nucast lo 127.0.0.1 127.0.0.2\n",
        );
        let cmdline = dir.write(
            "cmdline",
            &format!(
                "hapair.authkey={} hapair.control={} hapair.statedir={}\n",
                s(&key),
                s(&dir.join("hapair.sock")),
                s(dir.path()),
            ),
        );
        let real = PathBuf::from(env!("CARGO_BIN_EXE_hapair"));
        let bin = match daemon {
            Daemon::Real => real,
            Daemon::Fake => {
                let text = FAKE.replace("@REAL@", s(&real)).replace("@DIR@", s(dir.path()));
                dir.write_mode("fake-hapair", &text, 0o755)
            }
        };
        let pidfile = dir.join("hapair.pid");
        let env = [
            ("HAPAIR_DEFAULTS", dir.join("defaults")),
            ("HAPAIR_BIN", bin.clone()),
            ("HAPAIR_CONF", conf.clone()),
            ("HAPAIR_PIDFILE", pidfile.clone()),
            ("HAPAIR_LOG", dir.join("daemon.log")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), s(&v).to_string()))
        .chain([
            ("HAPAIR_ARGS".into(), format!("--node alpha --cmdline {}", s(&cmdline))),
            ("HAPAIR_STOP_TIMEOUT".into(), "30".into()),
            ("RUST_LOG".into(), "info".into()),
        ])
        .collect();
        Rig { dir, daemon, bin, conf, pidfile, env }
    }

    /// Runs `scripts/hapair.init ARGS` with the rig's settings.
    fn init(&self, args: &[&str]) -> Output {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/hapair.init");
        let mut cmd = Command::new(script);
        cmd.args(args).env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.output().expect("run scripts/hapair.init")
    }

    /// Sets one more variable for the script.
    fn set(&mut self, key: &str, value: &str) {
        self.env.push((key.into(), value.into()));
    }

    /// The pid in the pid file.
    fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(&self.pidfile).ok()?.trim().parse().ok()
    }

    /// Whether the daemon saw `event`.
    fn saw(&self, event: Event) -> bool {
        self.seen(event) > 0
    }

    /// How many lines of the daemon's log (the fake's event file) record `event`: one per
    /// SIGHUP for `Reload` (the real daemon logs one `reload` line per SIGHUP with an
    /// unchanged configuration), one per SIGTERM for `Term`.
    fn seen(&self, event: Event) -> usize {
        let (file, word) = match (self.daemon, event) {
            (Daemon::Fake, Event::Reload) => ("events", "hup"),
            (Daemon::Fake, Event::Term) => ("events", "term"),
            (Daemon::Real, Event::Reload) => ("daemon.log", "reload"),
            (Daemon::Real, Event::Term) => ("daemon.log", "shut"),
        };
        let text = std::fs::read_to_string(self.dir.join(file)).unwrap_or_default();
        text.lines().filter(|l| l.to_lowercase().contains(word)).count()
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        // Only the daemon this rig's script started, by its pid.
        if let Some(pid) = self.pid().filter(|p| alive(*p)) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// Whether `pid` is a live process (a zombie is dead: nothing may reap it here).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// Polls `cond` until it holds or the deadline passes.
#[allow(clippy::disallowed_methods)] // A test's deadline, not the daemon's clock.
fn eventually(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn code(o: &Output) -> Option<i32> {
    o.status.code()
}

fn both(o: &Output) -> String {
    format!("{}{}", stdout(o), stderr(o))
}

#[test]
fn start_status_reload_stop() {
    let rig = Rig::new("cycle");
    let out = rig.init(&["start"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let pid = rig.pid().expect("a pid file");
    assert!(alive(pid));
    if rig.daemon == Daemon::Fake {
        let args = std::fs::read_to_string(rig.dir.join("run.args")).unwrap();
        assert!(args.starts_with(&format!("run -c {} --node alpha --cmdline", s(&rig.conf))));
    }

    let out = rig.init(&["status"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(stdout(&out).contains(&format!("hapair is running (pid {pid})")), "{}", both(&out));

    let out = rig.init(&["start"]);
    assert_eq!(code(&out), Some(0));
    assert!(stdout(&out).contains("already running"), "{}", both(&out));
    assert_eq!(rig.pid(), Some(pid));

    // Each action's own SIGHUP: the reload lines logged after it was issued, not any
    // earlier one.
    for action in ["reload", "force-reload"] {
        let before = rig.seen(Event::Reload);
        let out = rig.init(&[action]);
        assert_eq!(code(&out), Some(0), "{action}: {}", both(&out));
        eventually(&format!("the daemon to see {action}'s SIGHUP"), || {
            rig.seen(Event::Reload) > before
        });
    }
    assert!(alive(pid));

    let out = rig.init(&["stop"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(!alive(pid), "stop returns once the daemon is gone");
    assert!(rig.saw(Event::Term));
    assert!(!rig.pidfile.exists());

    let out = rig.init(&["status"]);
    assert_eq!(code(&out), Some(3), "{}", both(&out));
    assert_eq!(code(&rig.init(&["stop"])), Some(0), "stopping a stopped service succeeds");
    assert_eq!(code(&rig.init(&["reload"])), Some(7), "reload needs a running daemon");
}

#[test]
fn restart_replaces_the_daemon() {
    let rig = Rig::new("restart");
    assert_eq!(code(&rig.init(&["start"])), Some(0));
    let old = rig.pid().unwrap();
    let out = rig.init(&["restart"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let new = rig.pid().unwrap();
    assert_ne!(old, new);
    assert!(!alive(old) && alive(new));
    let out = rig.init(&["try-restart"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(alive(rig.pid().unwrap()));
    assert_eq!(code(&rig.init(&["stop"])), Some(0));
    assert_eq!(code(&rig.init(&["try-restart"])), Some(0));
    assert!(rig.pid().is_none(), "try-restart does not start a stopped service");
}

#[test]
fn an_invalid_configuration_is_refused_with_checks_message() {
    let rig = Rig::new("invalid");
    assert_eq!(code(&rig.init(&["start"])), Some(0));
    let pid = rig.pid().unwrap();
    std::fs::write(&rig.conf, "node alpha\nnode beta\nkeepalive 5x\n").unwrap();
    let want = format!("{}:3: bad duration \"5x\"", s(&rig.conf));
    for action in ["restart", "reload"] {
        let out = rig.init(&[action]);
        assert_eq!(code(&out), Some(6), "{action}: {}", both(&out));
        assert!(stderr(&out).contains(&want), "{action}: {}", both(&out));
        assert_eq!(rig.pid(), Some(pid), "{action} left the running daemon alone");
        assert!(alive(pid));
    }
    assert!(!rig.saw(Event::Reload), "an invalid configuration is not sent to the daemon");
    assert_eq!(code(&rig.init(&["stop"])), Some(0));
    let out = rig.init(&["start"]);
    assert_eq!(code(&out), Some(6), "{}", both(&out));
    assert!(stderr(&out).contains(&want), "{}", both(&out));
    assert!(stdout(&out).contains("invalid configuration"), "{}", both(&out));
    assert!(rig.pid().is_none());
}

#[test]
fn a_dead_daemon_with_its_pid_file_is_status_1() {
    let rig = Rig::new("dead");
    assert_eq!(code(&rig.init(&["start"])), Some(0));
    let pid = rig.pid().unwrap();
    // The daemon this test started, by its pid.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL)
        .unwrap();
    eventually("the daemon to die", || !alive(pid));
    let out = rig.init(&["status"]);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    assert!(stdout(&out).contains("dead but the pid file"), "{}", both(&out));
    let out = rig.init(&["start"]);
    assert_eq!(code(&out), Some(0), "a stale pid file does not stop a start: {}", both(&out));
    assert_ne!(rig.pid(), Some(pid));
    assert_eq!(code(&rig.init(&["stop"])), Some(0));
}

/// The script's last resort: a daemon that survives SIGTERM past HAPAIR_STOP_TIMEOUT gets
/// SIGKILL. The real daemon honours SIGTERM, so the fake stands in, ignoring every SIGTERM
/// (and noting each): only the SIGKILL can end it.
#[test]
#[allow(clippy::disallowed_methods)] // A test's clock, not the daemon's.
fn stop_kills_a_daemon_that_ignores_sigterm() {
    let mut rig = Rig::with("kill", Daemon::Fake);
    rig.set("HAPAIR_FAKE_IGNORE_TERM", "1");
    rig.set("HAPAIR_STOP_TIMEOUT", "1");
    let out = rig.init(&["start"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let pid = rig.pid().expect("a pid file");
    assert!(alive(pid), "the fake daemon runs");
    let t0 = Instant::now();
    let out = rig.init(&["stop"]);
    let took = t0.elapsed();
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(
        stdout(&out)
            .contains(&format!("pid {pid} did not stop within 1s of SIGTERM: sending SIGKILL")),
        "{}",
        both(&out)
    );
    // It got the SIGTERM and lived through it: the grace was waited out, then it was killed.
    assert!(rig.seen(Event::Term) >= 1, "the fake never got SIGTERM: {}", both(&out));
    assert!(took >= Duration::from_secs(1), "stop returned after {took:?}, before its grace");
    assert!(!alive(pid), "pid {pid} still runs after stop");
    assert!(!rig.pidfile.exists());
}

#[test]
fn settings_usage_and_missing_binary() {
    let mut rig = Rig::new("settings");
    // The defaults file is read, and a setting there wins.
    let other = rig.dir.join("other.pid");
    rig.dir.write("defaults", &format!("HAPAIR_PIDFILE={}\n", s(&other)));
    assert_eq!(code(&rig.init(&["start"])), Some(0));
    assert!(other.exists() && !rig.pidfile.exists());
    assert_eq!(code(&rig.init(&["stop"])), Some(0));
    assert!(!other.exists());

    let out = rig.init(&["frobnicate"]);
    assert_eq!(code(&out), Some(2));
    assert!(stderr(&out).contains("Usage:"));
    assert_eq!(code(&rig.init(&[])), Some(2));

    rig.set("HAPAIR_BIN", &format!("{}-missing", s(&rig.bin)));
    assert_eq!(code(&rig.init(&["start"])), Some(5));
    assert_eq!(code(&rig.init(&["status"])), Some(4));
}

#[test]
fn systemd_unit_has_the_contract_and_verifies() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/hapair.service");
    let unit = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = unit.lines().map(str::trim).collect();
    for want in [
        "Type=notify",
        "NotifyAccess=main",
        "ExecStartPre=/usr/sbin/hapair check -c ${HAPAIR_CONF} $HAPAIR_ARGS",
        "ExecStart=/usr/sbin/hapair run -c ${HAPAIR_CONF} $HAPAIR_ARGS",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "WatchdogSec=10s",
        "Restart=on-failure",
        "KillMode=mixed",
        "TimeoutStopSec=5min",
    ] {
        assert!(lines.contains(&want), "{want} missing from {}", path.display());
    }
    // systemd's own parser, with the binary where the unit expects it (any complaint fails).
    // Under CI (scripts/test.sh installs systemd) a missing one fails instead of passing.
    let which = Command::new("sh").args(["-c", "command -v systemd-analyze"]).output();
    if !which.is_ok_and(|w| w.status.success()) {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(!ci, "systemd-analyze missing under CI=true (scripts/test.sh installs systemd)");
        eprintln!("systemd-analyze not installed: only the keys were checked");
        return;
    }
    let dir = TempDir::new("unit");
    let unit = dir
        .write("hapair.service", &unit.replace("/usr/sbin/hapair", env!("CARGO_BIN_EXE_hapair")));
    // Documentation= names the man pages, which only the package installs: there
    // (tests/daemon/deb_package.rs) the unit is verified with them, here without.
    let out =
        Command::new("systemd-analyze").args(["verify", "--man=no"]).arg(&unit).output().unwrap();
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(both(&out).trim().is_empty(), "systemd-analyze verify: {}", both(&out));
}
