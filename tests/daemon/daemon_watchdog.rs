//! The watchdog under `fence watchdog` on real `hapair run` processes (SPEC §7.3, issue 18).
//!
//! - A node whose watchdog does not open (missing, a FIFO nobody reads) or cannot promise a
//!   timeout (a plain file answers no watchdog ioctl) refuses to start: exit 1, one line on
//!   stderr naming the device and why, and nothing touched: no statedir, no resource action
//!   (not even a start-up probe), no control socket left behind. The plain file shows the
//!   magic 'V': what was opened was disarmed again.
//! - The same node with a FIFO that a reader holds (the lab's stand-in for /dev/watchdog)
//!   starts and, alone, takes the group: the refusals above are the watchdog's doing, not
//!   the test's setup.
//! - A `watchdog` line without `fence watchdog` (only the hung-kernel reset) keeps today's
//!   behaviour: the daemon runs, unhealthy, with a reason naming the device.
//! - A node whose statedir remembers that its peer advertised no armed watchdog never takes
//!   the group from it alone, since no wait can fence such a peer; `status` says why.
//!
//! One node alone in a namespace of its own (a veth pair, 192.0.2.1/24 on one end; its peer never
//! answers), started and ended by PID; its files in a scratch directory removed on drop. Not here:
//! a watchdog that fails later and what a pair records (tests/daemon/e2e_watchdog.rs), and the
//! driver (tests/drivers/health_watchdog.rs).

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common;
use crate::common::{Netns, assert_soon};

const HAPAIR: &str = env!("CARGO_BIN_EXE_hapair");
/// Generous: the machine is shared; nothing here measures time.
const PATIENCE: Duration = Duration::from_secs(60);

/// One node (alpha) of a pair whose peer never answers, in its own namespace.
struct Node {
    dir: PathBuf,
    conf: PathBuf,
    cmdline: PathBuf,
    ns: Netns,
    child: Option<Child>,
}

impl Node {
    /// Files for alpha, without a watchdog yet (`append` adds it).
    fn new(tag: &str) -> Node {
        let ns = Netns::new();
        // A veth pair with both ends here: an interface to bind to, and no way out.
        ns.ip(&["link", "add", "d0", "type", "veth", "peer", "name", "d1"]);
        ns.ip(&["addr", "add", "192.0.2.1/24", "dev", "d0"]);
        ns.ip(&["link", "set", "d0", "up"]);
        ns.ip(&["link", "set", "d1", "up"]);
        // Short: a health reason keeps 64 bytes, and it names the device path.
        let dir = PathBuf::from(format!("/tmp/hwd-{tag}-{}", ns.name()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let key = dir.join("authkey");
        fs::write(&key, "0123456789abcdef0123456789abcdef\n").expect("authkey");
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).expect("chmod");
        let d = dir.display();
        let conf = dir.join("hapair.conf");
        // Slow timings: a loaded machine's scheduling gaps stay under the stall detector
        // (keepalive + interval), which would restart the fence-watchdog wait.
        let text = format!(
            "node alpha\nnode beta\nauthkey {d}/authkey\nucast d0 192.0.2.1 192.0.2.2\n\
             keepalive 300ms\ndeadtime 1500ms\ninitdead 2s\n\
             resource exec web start=\"echo start >> {d}/actions; touch {d}/running\" \
             stop=\"echo stop >> {d}/actions; rm -f {d}/running\" \
             monitor=\"echo monitor >> {d}/actions; test -f {d}/running\"\n"
        );
        fs::write(&conf, text).expect("config");
        let cmdline = dir.join("cmdline");
        let flags =
            format!("hapair.node=alpha hapair.control={d}/sock hapair.statedir={d}/state\n");
        fs::write(&cmdline, flags).expect("cmdline");
        Node { dir, conf, cmdline, ns, child: None }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// Appends `lines` to the configuration.
    fn append(&self, lines: &str) {
        let text = fs::read_to_string(&self.conf).expect("config");
        fs::write(&self.conf, format!("{text}{lines}\n")).expect("config");
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.ns.name(), HAPAIR]).args(args);
        cmd.arg("-c").arg(&self.conf).arg("--cmdline").arg(&self.cmdline);
        cmd
    }

    /// `hapair run` to its end: (exit code, stderr); `None` when it still ran after
    /// `PATIENCE` (it is then killed by PID).
    fn run_to_end(&self) -> (Option<i32>, String) {
        let log = File::create(self.path("run.log")).expect("log");
        let mut child =
            self.command(&["run"]).stdin(Stdio::null()).stderr(log).spawn().expect("hapair run");
        let mut status = None;
        common::wait_until(PATIENCE, || {
            status = child.try_wait().ok().flatten();
            status.is_some()
        });
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let stderr = fs::read_to_string(self.path("run.log")).unwrap_or_default();
        (status.and_then(|s| s.code()), stderr)
    }

    /// `hapair run` in the background (`ip netns exec` execs it: the PID is the daemon's).
    fn start(&mut self) {
        let log = File::create(self.path("daemon.log")).expect("log");
        let child = self.command(&["run"]).stdin(Stdio::null()).stderr(log).spawn();
        self.child = Some(child.expect("hapair run"));
    }

    fn status(&self) -> Option<serde_json::Value> {
        let out = self.command(&["status", "--json"]).output().ok()?;
        out.status.success().then(|| serde_json::from_slice(&out.stdout).ok()).flatten()
    }

    fn actions(&self) -> String {
        fs::read_to_string(self.path("actions")).unwrap_or_default()
    }

    fn log(&self) -> String {
        fs::read_to_string(self.path("daemon.log")).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGTERM by PID: the daemon stops its resource and disarms its watchdog.
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let ended = common::wait_until(PATIENCE, || child.try_wait().ok().flatten().is_some());
            if !ended {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if std::thread::panicking() {
            eprintln!("daemon log:\n{}\nactions:\n{}", self.log(), self.actions());
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A FIFO in `dir` standing in for /dev/watchdog, and (when `read`) its read end.
fn fifo(dir: &Path, read: bool) -> (PathBuf, Option<File>) {
    let path = dir.join("watchdog");
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .unwrap_or_else(|e| panic!("mkfifo: {e}"));
    let reader = read.then(|| {
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .unwrap_or_else(|e| panic!("fifo reader: {e}"))
    });
    (path, reader)
}

/// `run` exits 1 at once with one line naming `device` and `why`, having touched nothing.
fn refuses(node: &Node, device: &Path, why: &str) {
    let (code, stderr) = node.run_to_end();
    assert_eq!(code, Some(1), "exit code; stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("hapair: ")).collect();
    assert_eq!(lines.len(), 1, "one error line on stderr: {stderr}");
    let line = lines[0];
    assert!(line.contains(&format!("watchdog {}", device.display())), "names the device: {line}");
    assert!(line.contains(why), "says why ({why}): {line}");
    assert!(line.contains("fence watchdog"), "says what needs it: {line}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(node.actions(), "", "no resource action ran, not even a probe");
    assert!(!node.path("state").exists(), "the statedir was not touched");
    assert!(!node.path("sock").exists(), "no control socket left behind");
}

/// The lines for `fence watchdog` with `device` and a 3 s timeout.
fn fence_watchdog(device: &Path) -> String {
    format!("watchdog {} timeout 3s\nfence watchdog", device.display())
}

#[test]
fn fence_watchdog_refuses_to_start_without_a_watchdog_that_opens() {
    let node = Node::new("missing");
    let missing = node.path("nowd");
    node.append(&fence_watchdog(&missing));
    refuses(&node, &missing, "cannot open: No such file or directory (ENOENT)");
}

#[test]
fn fence_watchdog_refuses_a_fifo_nobody_reads() {
    let node = Node::new("noreader");
    let (path, _) = fifo(&node.dir, false);
    node.append(&fence_watchdog(&path));
    refuses(&node, &path, "cannot open: No such device or address (ENXIO)");
}

#[test]
fn fence_watchdog_refuses_a_plain_file_and_disarms_it() {
    let node = Node::new("file");
    let path = node.path("watchdog");
    fs::write(&path, b"").expect("file");
    node.append(&fence_watchdog(&path));
    refuses(&node, &path, "not a watchdog device");
    // It was opened (which starts a real timer) and closed with the magic 'V', no pet.
    assert_eq!(fs::read(&path).expect("file"), b"V");
}

#[test]
fn fence_watchdog_with_a_fifo_that_is_read_starts_and_takes_the_group() {
    let mut node = Node::new("fifo");
    let (path, reader) = fifo(&node.dir, true);
    node.append(&fence_watchdog(&path));
    node.start();
    // Alone: initdead, then the fence-watchdog wait on its own timeout, then the start.
    assert_soon(PATIENCE, "alpha active with its watchdog armed", || {
        node.status().is_some_and(|s| {
            s["state"] == "active"
                && s["health"]["watchdog"]["armed"] == true
                && s["health"]["watchdog"]["timeout_ms"] == 3000
        })
    });
    assert!(node.actions().contains("start"), "actions: {}", node.actions());
    drop(reader);
}

#[test]
fn a_watchdog_line_without_fence_watchdog_runs_on_unhealthy() {
    let mut node = Node::new("plain");
    let missing = node.path("nowd");
    node.append(&format!("watchdog {} timeout 3s", missing.display()));
    node.start();
    let why = format!("watchdog {}: cannot open", missing.display());
    assert_soon(PATIENCE, "alpha running, unhealthy, naming the watchdog", || {
        node.status().is_some_and(|s| {
            s["health"]["ok"] == false
                && s["health"]["watchdog"]["armed"] == false
                && s["health"]["reasons"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|r| r.as_str().is_some_and(|r| r.contains(&why))))
        })
    });
}

#[test]
fn a_peer_remembered_without_an_armed_watchdog_is_not_taken_over_alone() {
    let mut node = Node::new("unarmed");
    let (path, _reader) = fifo(&node.dir, true);
    node.append(&fence_watchdog(&path));
    // An earlier run heard the peer advertise no armed watchdog (an older version, or one
    // whose watchdog did not open), and kept it in the statedir.
    let state = node.path("state");
    fs::create_dir_all(&state).expect("statedir");
    fs::set_permissions(&state, fs::Permissions::from_mode(0o700)).expect("chmod");
    fs::write(state.join("peer-watchdog"), "0\n").expect("peer-watchdog");
    node.start();
    assert_soon(PATIENCE, "alpha answers", || node.status().is_some());
    // The same node with a peer it may wait for takes the group within initdead + W + M
    // (2 + 3 + 2.7 s; `fence_watchdog_with_a_fifo_that_is_read_starts_and_takes_the_group`).
    let taken = common::wait_until(Duration::from_secs(12), || {
        node.status().is_some_and(|s| s["state"] != "standby")
    });
    assert!(!taken, "took the group from a peer that no wait can fence");
    assert_eq!(node.actions().matches("start").count(), 0, "actions: {}", node.actions());
    let status = node.status().unwrap_or_default();
    assert_eq!(status["peer"]["unfenceable"], true, "status says why: {status}");
    assert!(node.log().contains("advertised no armed watchdog when last heard"), "{}", node.log());
}
