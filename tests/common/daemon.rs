//! `Daemon`: one real `hapair run` process for the end-to-end tests. It starts in a network
//! namespace by `ip netns exec` (which execs, so the child's pid is the daemon's) with a
//! configuration file and a kernel command line, its output appended to a log file; it is
//! asked `hapair ARGS -c CONF --cmdline CMDLINE` from the root namespace, as an operator
//! types it (`admin`, `status`, `state`); and it is signalled, waited for and killed by that
//! pid, never by name. `pair::Pair` (two on a lab) and `segment::Segment` (any number on one
//! LAN) are made of them.
//!
//! Not here: the files a daemon reads (its owner writes them), and any timing assertion.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// The daemon binary under test.
pub const HAPAIR: &str = env!("CARGO_BIN_EXE_hapair");

/// Wall-clock nanoseconds since the epoch, as `date +%s%N` prints them.
pub fn wall_ns() -> u128 {
    // Tests may read the real clock; the ban in clippy.toml is for the daemon.
    #[allow(clippy::disallowed_methods)]
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

/// One node's daemon: what it runs with, and its process once started.
pub struct Daemon {
    /// The node's name (`alpha`, `beta`, ...).
    pub name: &'static str,
    /// Its network namespace.
    pub ns: String,
    /// The configuration it starts with and its admin commands name.
    pub conf: PathBuf,
    /// Its kernel command line file.
    pub cmdline: PathBuf,
    /// `RUST_LOG` of its next starts (`debug` unless set).
    pub rust_log: &'static str,
    /// More environment for its next starts.
    pub env: Vec<(String, String)>,
    log: PathBuf,
    /// The process last started, kept after it exited (its pid and exit status stay known).
    child: Option<Child>,
}

impl Daemon {
    /// A daemon not started yet: node `name` in namespace `ns`, with configuration `conf` and
    /// kernel command line `cmdline` (the caller writes both), its output appended to `log`.
    pub fn new(
        name: &'static str,
        ns: &str,
        conf: PathBuf,
        cmdline: PathBuf,
        log: PathBuf,
    ) -> Self {
        let ns = ns.to_owned();
        Daemon { name, ns, conf, cmdline, rust_log: "debug", env: Vec::new(), log, child: None }
    }

    /// Starts (or, once the last one exited, starts again) the daemon with its configuration.
    pub fn start(&mut self) {
        let conf = self.conf.clone();
        self.start_with_conf(&conf);
    }

    /// Starts the daemon with another configuration file than its own (its admin commands
    /// still name its own).
    pub fn start_with_conf(&mut self, conf: &Path) {
        let log = self.open_log();
        self.spawn(&[], conf, Stdio::from(log), self.rust_log);
    }

    /// Starts the daemon with its stderr (the log) on `stderr` and `RUST_LOG=rust_log`.
    pub fn start_with_stderr(&mut self, stderr: Stdio, rust_log: &str) {
        let conf = self.conf.clone();
        self.spawn(&[], &conf, stderr, rust_log);
    }

    /// Starts the daemon as `start_with_conf` does, but through `wrapper`: a command that
    /// prepares the process and then execs its arguments (`ip netns exec ...`), e.g.
    /// `["unshare", "--uts", "sh", "-c", "echo beta > /proc/sys/kernel/hostname && exec \"$@\"",
    /// "sh"]` (a host name of its own). The wrapper must exec, never fork, so that the child's
    /// pid stays the daemon's. `HAPAIR_NODE` is removed from its environment: only the wrapper
    /// and the files name the node.
    pub fn start_via(&mut self, conf: &Path, wrapper: &[&str]) {
        let log = self.open_log();
        self.spawn(wrapper, conf, Stdio::from(log), self.rust_log);
    }

    fn open_log(&self) -> fs::File {
        let log = fs::OpenOptions::new().create(true).append(true).open(&self.log);
        log.unwrap_or_else(|e| panic!("{}: {e}", self.log.display()))
    }

    fn spawn(&mut self, wrapper: &[&str], conf: &Path, stderr: Stdio, rust_log: &str) {
        if let Some(child) = self.child.as_mut() {
            let running = matches!(child.try_wait(), Ok(None));
            assert!(!running, "{} already started", self.name);
        }
        let (program, wrapper_args) = match wrapper.split_first() {
            Some((program, args)) => (*program, args),
            None => ("ip", &[][..]),
        };
        let mut cmd = Command::new(program);
        cmd.args(wrapper_args);
        if !wrapper.is_empty() {
            cmd.arg("ip").env_remove("HAPAIR_NODE");
        }
        // `ip netns exec` enters the namespace and execs: the child's pid is the daemon's.
        let child = cmd
            .args(["netns", "exec", &self.ns, HAPAIR, "run", "-c"])
            .arg(conf)
            .arg("--cmdline")
            .arg(&self.cmdline)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", rust_log)
            .stdin(Stdio::null())
            .stdout(self.open_log())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.name));
        self.child = Some(child);
    }

    /// The pid of the daemon last started, whether it still runs or not.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends `signal` to the daemon by pid.
    pub fn signal(&self, signal: Signal) {
        let pid = self.pid().unwrap_or_else(|| panic!("{} was never started", self.name));
        // Our own child, unreaped until `exited`/`wait_exit`/`kill`: the pid is still its.
        nix::sys::signal::kill(Pid::from_raw(pid as i32), signal)
            .unwrap_or_else(|e| panic!("kill -{signal} {pid}: {e}"));
    }

    /// Whether the daemon has exited (reaping it): `Some(exit code)` once it has (`None` for a
    /// signal), `None` while it runs or before it started.
    pub fn exited(&mut self) -> Option<Option<i32>> {
        match self.child.as_mut()?.try_wait() {
            Ok(Some(status)) => Some(status.code()),
            _ => None,
        }
    }

    /// Waits up to `timeout` for the daemon to exit; its exit code (-1 for a signal).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let mut code = None;
        super::wait_until(timeout, || {
            code = self.exited().map(|c| c.unwrap_or(-1));
            code.is_some()
        });
        code
    }

    /// SIGKILL and reap, when it still runs.
    pub fn kill(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Its log so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `hapair ARGS -c CONF --cmdline CMDLINE` for this node, from the root namespace.
    pub fn admin(&self, args: &[&str]) -> Output {
        admin_command(&self.conf, &self.cmdline, args)
    }

    /// Like `admin`, and asserts exit 0.
    pub fn admin_ok(&self, args: &[&str]) {
        let out = self.admin(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "hapair {args:?} on {}: {err}", self.name);
    }

    /// `hapair status --json`, parsed; `None` while the daemon does not answer (exit not 0).
    pub fn status(&self) -> Option<serde_json::Value> {
        let out = self.admin(&["status", "--json"]);
        if !out.status.success() {
            return None;
        }
        Some(serde_json::from_slice(&out.stdout).expect("status --json is JSON"))
    }

    /// Its group state (`active`, `standby`, ...), or "" while it does not answer.
    pub fn state(&self) -> String {
        self.status().and_then(|s| s["state"].as_str().map(str::to_owned)).unwrap_or_default()
    }
}

impl Drop for Daemon {
    /// Only our own child, by pid.
    fn drop(&mut self) {
        self.kill();
    }
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

/// A debug or trace record of a daemon's log (at debug level every monitor run and timer
/// fills a log with them).
pub fn is_chatter(line: &str) -> bool {
    line.starts_with("[DEBUG") || line.starts_with("[TRACE")
}

/// The last `n` lines of `log` at info and up.
pub fn log_tail(log: &str, n: usize) -> Vec<&str> {
    let lines: Vec<&str> = log.lines().filter(|l| !is_chatter(l)).collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}
