//! Real `hapair run` processes for the end-to-end tests: a `Pair` writes one configuration,
//! a 0600 authkey, a kernel command line per node and a notify script into a fresh directory,
//! starts each node's daemon in its lab namespace (by PID, stderr captured to a log file),
//! asks `hapair status --json` from the root namespace, signals by PID, and on drop kills what
//! still runs and removes the directory (printing the logs when the test failed). A `Daemon`
//! may also start through a wrapper that execs it (`start_via`: a UTS namespace of its own).
//!
//! Per-node files: both daemons share one filesystem, so everything per node comes from its
//! kernel command line (`hapair.serial=`, `hapair.control=`, `hapair.statedir=`), and the
//! `exec` resource's commands tell the nodes apart by `$HAPAIR_NODE`, which the daemon puts
//! in every agent's environment. Each start, stop and notify line carries `date +%s%N`, so a
//! test can order events across the two nodes by wall clock.
//!
//! Not here: the lab itself (`lab::Lab`), and any timing assertion.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::lab::{Lab, Node};

/// The daemon binary under test.
pub const HAPAIR: &str = env!("CARGO_BIN_EXE_hapair");

/// Timings and extras of one pair's configuration.
pub struct Setup {
    /// `keepalive`, `deadtime` and `initdead` directives, as written in the file.
    pub timings: &'static str,
    /// Extra directives appended to the file.
    pub extra: &'static str,
    /// The `exec` resource and the notify script; without them the daemons spawn no child.
    pub children: bool,
}

impl Default for Setup {
    fn default() -> Setup {
        Setup { timings: "keepalive 100ms\ndeadtime 500ms\ninitdead 2s", extra: "", children: true }
    }
}

/// Wall-clock nanoseconds since the epoch, as `date +%s%N` prints them.
pub fn wall_ns() -> u128 {
    // Tests may read the real clock; the ban in clippy.toml is for the daemon.
    #[allow(clippy::disallowed_methods)]
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

/// One node of the pair.
pub struct Daemon {
    /// `alpha` or `beta`.
    pub name: &'static str,
    /// Its network namespace (the lab's).
    pub ns: String,
    /// Its kernel command line file.
    pub cmdline: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

/// Two daemons on a lab, their files in one directory.
pub struct Pair {
    /// The working directory (config, authkey, cmdlines, logs, markers).
    pub dir: PathBuf,
    /// The configuration file both nodes use.
    pub conf: PathBuf,
    /// alpha, then beta.
    pub nodes: [Daemon; 2],
}

impl Pair {
    /// Writes the files for `lab` with `setup`; starts nothing.
    pub fn new(lab: &Lab, setup: &Setup) -> Pair {
        let dir = PathBuf::from(format!("/tmp/hapair-daemon-{}", lab.name()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("test directory");
        let d = dir.display();
        let key = Command::new(HAPAIR).arg("keygen").output().expect("hapair keygen");
        assert!(key.status.success(), "hapair keygen failed");
        let authkey = dir.join("authkey");
        fs::write(&authkey, &key.stdout).expect("authkey");
        fs::set_permissions(&authkey, fs::Permissions::from_mode(0o600)).expect("chmod");
        let notify = dir.join("notify");
        fs::write(&notify, format!("#!/bin/sh\necho \"$(date +%s%N) $1 $3\" >> {d}/notify-$2\n"))
            .expect("notify script");
        fs::set_permissions(&notify, fs::Permissions::from_mode(0o755)).expect("chmod");
        let conf = dir.join("hapair.conf");
        fs::write(&conf, config_text(&dir, setup)).expect("config");
        let node = |name: &'static str, lab_node: Node| {
            let cmdline = dir.join(format!("{name}.cmdline"));
            let line = format!(
                "ro quiet hapair.node={name} hapair.serial={} hapair.control={d}/{name}.sock \
                 hapair.statedir={d}/{name} hapair.authkey={d}/authkey\n",
                lab.tty(lab_node)
            );
            fs::write(&cmdline, line).expect("cmdline");
            Daemon {
                name,
                ns: lab.ns(lab_node).to_owned(),
                cmdline,
                log: dir.join(format!("{name}.log")),
                child: None,
            }
        };
        let nodes = [node("alpha", Node::Alpha), node("beta", Node::Beta)];
        Pair { dir, conf, nodes }
    }

    /// Starts both daemons, alpha first.
    pub fn start_both(&mut self) {
        for i in 0..2 {
            self.start(i);
        }
    }

    /// Starts node `i` (0 alpha, 1 beta) in its namespace.
    pub fn start(&mut self, i: usize) {
        let conf = self.conf.clone();
        self.nodes[i].start(&conf);
    }

    /// Starts node `i` with another configuration file than the pair's.
    pub fn start_with_conf(&mut self, i: usize, conf: &Path) {
        self.nodes[i].start(conf);
    }

    /// Starts node `i` with its stderr (the log) on `stderr` and `RUST_LOG=rust_log`,
    /// instead of the log file.
    pub fn start_with_stderr(&mut self, i: usize, stderr: Stdio, rust_log: &str) {
        let conf = self.conf.clone();
        self.nodes[i].spawn(&conf, stderr, rust_log);
    }

    /// `hapair status --json` of node `i`, parsed; `None` when it does not exit 0.
    pub fn status(&self, i: usize) -> Option<serde_json::Value> {
        let out = self.admin(i, &["status", "--json"]);
        if !out.status.success() {
            return None;
        }
        Some(serde_json::from_slice(&out.stdout).expect("status --json is JSON"))
    }

    /// Status JSON of node `i` straight from its control socket, without the CLI (which reads
    /// the configuration file first, so it fails while a test has made that file invalid).
    pub fn socket_status(&self, i: usize) -> Option<serde_json::Value> {
        let socket = self.dir.join(format!("{}.sock", self.nodes[i].name));
        let body = hapair::control::request(&socket, "status json").ok()?;
        Some(serde_json::from_str(&body).expect("status json is JSON"))
    }

    /// Node `i`'s group state from status, `None` when the daemon does not answer.
    pub fn state(&self, i: usize) -> Option<String> {
        Some(self.status(i)?["state"].as_str()?.to_owned())
    }

    /// Runs `hapair ARGS -c CONF --cmdline NODE.cmdline` from the root namespace.
    pub fn admin(&self, i: usize, args: &[&str]) -> std::process::Output {
        admin_command(&self.conf, &self.nodes[i].cmdline, args)
    }

    /// Like `admin`, and asserts exit 0.
    pub fn admin_ok(&self, i: usize, args: &[&str]) {
        let out = self.admin(i, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "hapair {args:?} on {}: {err}", self.nodes[i].name);
    }

    /// Waits until node `i` reports `state`; fails naming what it saw.
    pub fn wait_state(&self, i: usize, state: &str, timeout: Duration) {
        let mut last = None;
        let ok = super::wait_until(timeout, || {
            last = self.state(i);
            last.as_deref() == Some(state)
        });
        assert!(ok, "{} not {state} within {timeout:?}: last {last:?}", self.nodes[i].name);
    }

    /// Lines of `DIR/NAME`, empty when the file does not exist.
    pub fn lines(&self, name: &str) -> Vec<String> {
        fs::read_to_string(self.dir.join(name))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Timestamps (ns) of the `event` lines (`start`, `stop`) of node `i`'s marker log.
    pub fn marks(&self, i: usize, event: &str) -> Vec<u128> {
        stamped(&self.lines(&format!("{}.marks", self.nodes[i].name)), event)
    }

    /// Timestamps (ns) of node `i`'s notify events called `event`.
    pub fn notified(&self, i: usize, event: &str) -> Vec<u128> {
        stamped(&self.lines(&format!("notify-{}", self.nodes[i].name)), event)
    }

    /// Node `i`'s captured log so far.
    pub fn log(&self, i: usize) -> String {
        fs::read_to_string(&self.nodes[i].log).unwrap_or_default()
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.kill();
        }
        if std::thread::panicking() {
            for n in &self.nodes {
                let log = fs::read_to_string(&n.log).unwrap_or_default();
                eprintln!("---- {} log ----\n{log}", n.name);
            }
            for f in ["alpha.marks", "beta.marks", "notify-alpha", "notify-beta"] {
                let text = fs::read_to_string(self.dir.join(f)).unwrap_or_default();
                eprintln!("---- {f} ----\n{text}");
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Daemon {
    /// A daemon not started yet, for tests that build their own topology instead of the lab
    /// (`segment::Segment`): node `name` in namespace `ns`, its kernel command line in
    /// `cmdline` (the caller writes it), its output appended to `log`.
    pub fn new(name: &'static str, ns: &str, cmdline: PathBuf, log: PathBuf) -> Daemon {
        Daemon { name, ns: ns.to_owned(), cmdline, log, child: None }
    }

    /// Starts (or, after `kill`, starts again) the daemon with configuration `conf`, as
    /// `Pair::start` does: `RUST_LOG=debug`, its output appended to its log.
    pub fn start_with_conf(&mut self, conf: &Path) {
        self.start(conf);
    }

    /// Its log so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Starts the daemon as `start_with_conf` does, but through `wrapper`: a command that
    /// prepares the process and then execs its arguments (`ip netns exec ...`), e.g.
    /// `["unshare", "--uts", "sh", "-c", "echo beta > /proc/sys/kernel/hostname && exec \"$@\"",
    /// "sh"]` (a host name of its own). The wrapper must exec, never fork, so that the child's
    /// pid stays the daemon's. `HAPAIR_NODE` is removed from its environment: only the wrapper
    /// and the files name the node.
    pub fn start_via(&mut self, conf: &Path, wrapper: &[&str]) {
        assert!(self.child.is_none(), "{} already started", self.name);
        let open = || fs::OpenOptions::new().create(true).append(true).open(&self.log);
        let (out, err) = (open().expect("log"), open().expect("log"));
        let child = Command::new(wrapper[0])
            .args(&wrapper[1..])
            .args(["ip", "netns", "exec", &self.ns, HAPAIR, "run", "-c"])
            .arg(conf)
            .arg("--cmdline")
            .arg(&self.cmdline)
            .env("RUST_LOG", "debug")
            .env_remove("HAPAIR_NODE")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start hapair run");
        self.child = Some(child);
    }

    fn start(&mut self, conf: &Path) {
        let log = fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("log");
        self.spawn(conf, Stdio::from(log), "debug");
    }

    fn spawn(&mut self, conf: &Path, stderr: Stdio, rust_log: &str) {
        assert!(self.child.is_none(), "{} already started", self.name);
        let log = fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("log");
        // `ip netns exec` enters the namespace and execs: the child's pid is the daemon's.
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns, HAPAIR, "run", "-c"])
            .arg(conf)
            .arg("--cmdline")
            .arg(&self.cmdline)
            .env("RUST_LOG", rust_log)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .spawn()
            .expect("start hapair run");
        self.child = Some(child);
    }

    /// The daemon's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends `sig` to the daemon by pid.
    pub fn signal(&self, sig: libc::c_int) {
        let pid = self.pid().expect("daemon started");
        // SAFETY: kill(2) on the pid of our own unreaped child, which cannot be reused.
        let r = unsafe { libc::kill(pid as libc::pid_t, sig) };
        assert_eq!(r, 0, "kill {pid}");
    }

    /// Waits up to `timeout` for the daemon to exit; returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let child = self.child.as_mut()?;
        let mut code = None;
        let exited = super::wait_until(timeout, || match child.try_wait() {
            Ok(Some(status)) => {
                code = Some(status.code().unwrap_or(-1));
                true
            }
            _ => false,
        });
        if exited {
            self.child = None;
        }
        code
    }

    /// SIGKILL and reap, when it still runs.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The pair's configuration: the lab's three media, a VIP, the lab client as ping node, and
/// (with `children`) one `exec` resource whose start and stop log to `DIR/$HAPAIR_NODE.marks`
/// (and each passing monitor to `.monitors`) and a notify script.
fn config_text(dir: &Path, setup: &Setup) -> String {
    let d = dir.display();
    let m = format!("{d}/$HAPAIR_NODE");
    let children = if setup.children {
        format!(
            "resource exec web start=\"echo start $(date +%s%N) >> {m}.marks; touch {m}.running\" \
             stop=\"echo stop $(date +%s%N) >> {m}.marks; rm -f {m}.running\" \
             monitor=\"test -e {m}.running && date +%s%N >> {m}.monitors\" timeout 10s\n\
             notify {d}/notify\n"
        )
    } else {
        String::new()
    };
    format!(
        "node alpha\nnode beta\n{timings}\nauthkey /etc/hapair/authkey\nudpport 694\n\
         serial /dev/ttyS0 baud 115200\nucast xover0 198.51.100.1 198.51.100.2\nbcast lan0\n\
         home alpha\nauto_failback off\n\
         resource ip 192.0.2.100/24 dev lan0 garp 2 garp_interval 100ms\n{children}\
         monitor_interval 1s\nrestart_limit 2 in 1m\nping 192.0.2.10\n{extra}\n",
        timings = setup.timings,
        extra = setup.extra,
    )
}

/// The timestamps of the `WORD NS ...` lines whose word is `event` (`start 123`), or of the
/// `NS WORD ...` lines of notify logs (`123 active`).
fn stamped(lines: &[String], event: &str) -> Vec<u128> {
    lines
        .iter()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let (a, b) = (w.next()?, w.next()?);
            if a == event {
                b.parse().ok()
            } else if b == event {
                a.parse().ok()
            } else {
                None
            }
        })
        .collect()
}

/// Runs `hapair ARGS -c CONF --cmdline CMDLINE` from the root namespace (a node's admin
/// command, as an operator types it).
pub fn admin_command(
    conf: &std::path::Path,
    cmdline: &std::path::Path,
    args: &[&str],
) -> std::process::Output {
    Command::new(HAPAIR)
        .args(args)
        .arg("-c")
        .arg(conf)
        .arg("--cmdline")
        .arg(cmdline)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("hapair {args:?}: {e}"))
}
