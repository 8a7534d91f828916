//! Appliance operations on a real daemon (issue "appliance operations"): the systemd notify
//! protocol, `realtime on`, persistent admin state across restarts, and the boot-time
//! `hapair.standby=1` flag. One node runs alone (its peer never answers), so after `initdead`
//! it takes the (empty) group unless told otherwise. Every daemon is started and ended by PID.
#![allow(clippy::disallowed_methods)] // tests wait on the wall clock

use std::fs;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use crate::common::TempDir;
use crate::common::bin::KEY;

const HAPAIR: &str = env!("CARGO_BIN_EXE_hapair");
const DEADLINE: Duration = Duration::from_secs(20);

static NEXT: AtomicU16 = AtomicU16::new(0);

/// A temporary directory with a config, a key and a kernel command line for node alpha.
struct Node {
    dir: TempDir,
    conf: PathBuf,
    cmdline: PathBuf,
    child: Option<Child>,
}

impl Node {
    fn new(tag: &str, extra_conf: &str, extra_flags: &str) -> Node {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = TempDir::new(&format!("ops-{tag}"));
        let key = dir.write_mode("authkey", KEY, 0o600);
        // A port of our own, so parallel tests do not hear each other.
        let port = 20000 + (std::process::id() % 20000) as u16 + n * 7;
        let conf = dir.join("hapair.conf");
        fs::write(
            &conf,
            format!(
                "node alpha\nnode beta\nauthkey {}\nudpport {port}\nucast lo 127.0.0.1 127.0.0.2\n\
                 keepalive 100ms\ndeadtime 500ms\ninitdead 1s\n{extra_conf}",
                key.display()
            ),
        )
        .unwrap();
        let cmdline = dir.join("cmdline");
        fs::write(
            &cmdline,
            format!(
                "hapair.node=alpha hapair.control={} hapair.statedir={} {extra_flags}\n",
                dir.join("sock").display(),
                dir.join("state").display()
            ),
        )
        .unwrap();
        Node { dir, conf, cmdline, child: None }
    }

    fn start(&mut self, env: &[(&str, &Path)], watchdog_usec: Option<&str>) {
        let mut cmd = Command::new(HAPAIR);
        cmd.args(["run", "-c"]).arg(&self.conf).arg("--cmdline").arg(&self.cmdline);
        for (k, v) in env {
            cmd.env(k, v);
        }
        if let Some(u) = watchdog_usec {
            cmd.env("WATCHDOG_USEC", u);
        }
        let log = fs::File::create(self.dir.join("daemon.log")).unwrap();
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
        self.child = Some(cmd.spawn().unwrap());
        let up = wait_until(|| self.status().is_some());
        assert!(up, "daemon never answered:\n{}", self.log());
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    fn hapair(&self, args: &[&str]) -> std::process::Output {
        Command::new(HAPAIR)
            .args(args)
            .arg("-c")
            .arg(&self.conf)
            .arg("--cmdline")
            .arg(&self.cmdline)
            .output()
            .unwrap()
    }

    fn status(&self) -> Option<serde_json::Value> {
        let out = self.hapair(&["status", "--json"]);
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    fn state(&self) -> String {
        self.status().map(|s| s["state"].as_str().unwrap_or("").to_string()).unwrap_or_default()
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + DEADLINE;
            while Instant::now() < deadline {
                if let Ok(Some(status)) = c.try_wait() {
                    assert!(status.success(), "daemon exit {status}:\n{}", self.log());
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
            panic!("daemon did not exit on SIGTERM:\n{}", self.log());
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!("daemon log:\n{}", self.log());
        }
    }
}

fn wait_until(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + DEADLINE;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn systemd_hears_ready_status_watchdog_and_stopping() {
    let mut node = Node::new("sd", "", "");
    let sock_path = node.dir.join("notify.sock");
    let systemd = UnixDatagram::bind(&sock_path).unwrap();
    systemd.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    node.start(&[("NOTIFY_SOCKET", &sock_path)], Some("400000"));
    let mut got: Vec<String> = Vec::new();
    let mut buf = [0u8; 256];
    let mut collect = |got: &mut Vec<String>| {
        if let Ok(n) = systemd.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    };
    let ready = wait_until(|| {
        collect(&mut got);
        got.iter().any(|m| m.contains("READY=1"))
            && got.iter().any(|m| m.contains("STATUS=group active"))
            && got.iter().filter(|m| m.as_str() == "WATCHDOG=1").count() >= 3
    });
    assert!(ready, "systemd got {got:?}");
    node.stop();
    while let Ok(n) = systemd.recv(&mut buf) {
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(got.iter().any(|m| m == "STOPPING=1"), "systemd got {got:?}");
    // READY=1 comes once, with the decision.
    assert_eq!(got.iter().filter(|m| m.contains("READY=1")).count(), 1, "{got:?}");
}

#[test]
fn realtime_on_gives_sched_fifo_and_locked_memory() {
    let mut node = Node::new("rt", "realtime on priority 10\n", "");
    node.start(&[], None);
    let stat = fs::read_to_string(format!("/proc/{}/stat", node.pid())).unwrap();
    // Fields after the command name (which is in parentheses): policy is field 41.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    let priority: i64 = fields[40 - 3].parse().unwrap();
    let policy: i64 = fields[41 - 3].parse().unwrap();
    assert_eq!(policy, 1, "SCHED_FIFO expected, /proc stat: {stat}");
    assert_eq!(priority, 10, "rt priority");
    let status = fs::read_to_string(format!("/proc/{}/status", node.pid())).unwrap();
    let locked = status.lines().find(|l| l.starts_with("VmLck:")).unwrap();
    let kb: u64 = locked.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(kb > 0, "memory not locked: {locked}");
    node.stop();
}

/// Whether `cond` holds at every look for `span` (a decision not to act is watched, not
/// waited for).
fn holds_for(span: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + span;
    while Instant::now() < until {
        if !cond() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}

/// Past initdead (1 s) a lone node takes the group unless told otherwise: watched this long.
const PAST_INITDEAD: Duration = Duration::from_secs(3);

/// `standby` alone (no maintenance to hide a lost one): after a restart the node is still in
/// standby past initdead, not active, until `online`.
#[test]
fn standby_survives_a_restart() {
    let mut node = Node::new("standby", "", "");
    node.start(&[], None);
    assert!(wait_until(|| node.state() == "active"), "alone, alpha takes the group");
    assert!(node.hapair(&["standby"]).status.success());
    assert!(wait_until(|| node.state() == "standby"));
    let saved = fs::read_to_string(node.dir.join("state/admin")).unwrap();
    assert_eq!(saved, "standby=1\nmaintenance=0\n");
    node.stop();

    node.start(&[], None);
    let kept = holds_for(PAST_INITDEAD, || node.state() == "standby");
    assert!(kept, "standby was forgotten: {}", node.status().unwrap_or_default());
    assert!(node.hapair(&["online"]).status.success());
    assert!(wait_until(|| node.state() == "active"), "online takes the group again");
    let saved = fs::read_to_string(node.dir.join("state/admin")).unwrap();
    assert_eq!(saved, "standby=0\nmaintenance=0\n");
    node.stop();
}

/// `maintenance on` alone: after a restart the node is still in maintenance past initdead
/// (it takes nothing), until `maintenance off`.
#[test]
fn maintenance_survives_a_restart() {
    let mut node = Node::new("maint", "", "");
    node.start(&[], None);
    assert!(wait_until(|| node.state() == "active"), "alone, alpha takes the group");
    assert!(node.hapair(&["maintenance", "on"]).status.success());
    assert!(wait_until(|| node.state() == "maintenance"));
    let saved = fs::read_to_string(node.dir.join("state/admin")).unwrap();
    assert_eq!(saved, "standby=0\nmaintenance=1\n");
    node.stop();

    node.start(&[], None);
    let kept = holds_for(PAST_INITDEAD, || node.state() == "maintenance");
    assert!(kept, "maintenance was forgotten: {}", node.status().unwrap_or_default());
    assert!(node.hapair(&["maintenance", "off"]).status.success());
    assert!(wait_until(|| node.state() == "active"), "managing again, it takes the group");
    let saved = fs::read_to_string(node.dir.join("state/admin")).unwrap();
    assert_eq!(saved, "standby=0\nmaintenance=0\n");
    node.stop();
}

#[test]
fn corrupt_admin_state_warns_and_runs() {
    let mut node = Node::new("corrupt", "", "");
    fs::create_dir_all(node.dir.join("state")).unwrap();
    fs::write(node.dir.join("state/admin"), b"\xff\xfegarbage").unwrap();
    node.start(&[], None);
    assert!(wait_until(|| node.state() == "active"));
    assert!(node.log().contains("admin"), "no warning about the admin file:\n{}", node.log());
    node.stop();
}

#[test]
fn boot_flag_standby_keeps_the_node_standby_until_online() {
    let mut node = Node::new("bootsb", "", "hapair.standby=1");
    node.start(&[], None);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(node.state(), "standby", "hapair.standby=1 was ignored");
    assert!(node.hapair(&["online"]).status.success());
    assert!(wait_until(|| node.state() == "active"));
    node.stop();
}

fn hup(node: &Node) {
    unsafe { libc::kill(node.pid() as i32, libc::SIGHUP) };
}

fn rewrite_conf(node: &Node, from: &str, to: &str) {
    let text = fs::read_to_string(&node.conf).unwrap();
    assert!(text.contains(from), "{from:?} not in the config");
    fs::write(&node.conf, text.replace(from, to)).unwrap();
}

#[test]
fn sighup_applies_health_and_resources_and_reports_the_rest() {
    let scratch = TempDir::new("ops-marks");
    let marks = scratch.join("marks");
    let m = marks.display();
    let extra = format!(
        "check probe \"true\" interval 200ms timeout 100ms\n\
         resource exec web start=\"echo old >> {m}\" stop=\"true\" monitor=\"true\"\n"
    );
    let mut node = Node::new("hup", &extra, "hapair.standby=1");
    node.start(&[], None);
    // The start-up probes and decision come first (the exec monitor says "running", so the
    // node stops it and settles in standby).
    assert!(wait_until(|| node.log().contains("event standby")), "{}", node.log());
    // Health: the check now fails, and the node says so.
    rewrite_conf(&node, "check probe \"true\"", "check probe \"false\"");
    hup(&node);
    let unhealthy = wait_until(|| node.status().is_some_and(|s| s["health"]["ok"] == false));
    assert!(unhealthy, "reloaded check not applied:\n{}", node.log());
    rewrite_conf(&node, "check probe \"false\"", "check probe \"true\"");
    hup(&node);
    assert!(wait_until(|| node.status().is_some_and(|s| s["health"]["ok"] == true)));
    // Resources: while standby, the new definition replaces the old one.
    rewrite_conf(&node, "echo old", "echo new");
    hup(&node);
    assert!(wait_until(|| node.log().contains("reload: applied resources")), "{}", node.log());
    assert!(node.hapair(&["online"]).status.success());
    assert!(wait_until(|| node.state() == "active"));
    let ran = fs::read_to_string(&marks).unwrap_or_default();
    assert_eq!(ran.trim(), "new", "the reloaded start command should have run");
    // Timings: valid, reported as needing a restart, nothing moves.
    rewrite_conf(&node, "keepalive 100ms", "keepalive 50ms");
    hup(&node);
    assert!(wait_until(|| node.log().contains("need a restart")), "{}", node.log());
    assert_eq!(node.state(), "active");
    // A new key in the authkey file: the frame key is derived at start, so it is reported
    // as needing a restart too, never silently dropped.
    fs::write(node.dir.join("authkey"), "fedcba9876543210fedcba9876543210\n").unwrap();
    hup(&node);
    let said = wait_until(|| node.log().contains("holds another key"));
    assert!(said, "a changed authkey went unreported:\n{}", node.log());
    assert_eq!(node.state(), "active");
    node.stop();
}
