//! `Pair`: two real `hapair run` daemons in a `Lab`, each with a UDP responder in its
//! namespace, a prober in the client's namespace that asks the VIP who it is every 5 ms (each
//! answer stamped), and the marker resource: tests/fixtures/marker.sh, an `exec` resource put
//! first in each node's group, logs "NODE start NS" before the group starts and "NODE stop NS"
//! after it stopped (CLOCK_MONOTONIC, `mono_ns`) to `<lab dir>/markers`. `overlaps` computes
//! from that log every interval in which the group ran on both nodes at once, however short
//! (no sampling: a double run of a millisecond shows). For the end-to-end tests
//! (tests/e2e_*.rs, tests/faults.rs, tests/daemon_agents.rs).
//!
//! Everything stops on drop (daemons by pid, threads by flag), then the lab goes down; when
//! the test panicked, the daemons' logs and the markers are printed first.
//!
//! Not here: what a test asserts (it reads `answers`, `overlaps`, `runs`, `status`), and
//! timing figures (scripts/bench-failover measures those).

use std::fs::OpenOptions;
use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::lab::{Lab, Node};
use super::{exec_in, spawn_in};

/// The UDP port the responders answer on.
pub const PROBE_PORT: u16 = 7007;
/// How often the prober asks.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(5);
/// A fixed test key (the authkey file is made 0600 by `Pair::start`).
const AUTHKEY: &str = "6e2e6661696c6f7665722d746573742d6b65792d6f662d7468652d6c61622121";

/// Per-node additions for `Pair::start_with`.
#[derive(Clone, Debug, Default)]
pub struct NodeExtra {
    /// More words for the node's kernel command line (`hapair.raid=/tmp/x/mdstat`).
    pub cmdline: String,
    /// Lines appended to the node's own copy of the config, `<lab dir>/<node>.conf` (for
    /// directives the command line cannot set, like `hwmon`); empty: the shared config.
    pub conf: String,
}

/// The two daemons of a lab pair, and the client's view of the VIP.
pub struct Pair {
    /// Declared first: dropped last, after the daemons and threads are gone.
    stop: Arc<AtomicBool>,
    daemons: [Option<Child>; 2],
    threads: Vec<JoinHandle<()>>,
    /// Who answered the prober, and when (`mono_ns`).
    answers: Arc<Mutex<Vec<(String, u64)>>>,
    /// Overlaps that ended before this `mono_ns` are forgotten (`clear_overlaps`).
    overlaps_since: AtomicU64,
    conf: PathBuf,
    vip: String,
    extras: [NodeExtra; 2],
    /// Each node's own configuration: the given one plus its extra lines and the marker
    /// resource (`with_marker`).
    node_confs: [PathBuf; 2],
    /// More environment for each node's daemon (`set_env`).
    envs: [Vec<(String, String)>; 2],
    lab: Lab,
}

/// The two daemon nodes, in config order.
pub const NODES: [Node; 2] = [Node::Alpha, Node::Beta];

fn index(node: Node) -> usize {
    match node {
        Node::Alpha => 0,
        Node::Beta => 1,
        other => panic!("{other:?} runs no daemon"),
    }
}

impl Pair {
    /// Brings a lab up (`tag` as in `Lab::up`), writes the authkey and both nodes' cmdlines,
    /// starts the responders, the prober towards `vip` and both daemons with board/lab/`conf`
    /// (a copy in the lab's directory, root's and 0644: `run` refuses a configuration that is
    /// not root's or that others may write, and a checkout may be a user's), the marker
    /// resource first in the group.
    pub fn start(tag: char, conf: &str, vip: &str) -> Pair {
        Pair::start_with(tag, conf, vip, Default::default())
    }

    /// `start`, with `extras` (alpha's, beta's) added to each node's command line and config.
    pub fn start_with(tag: char, conf: &str, vip: &str, extras: [NodeExtra; 2]) -> Pair {
        let board = Path::new(env!("CARGO_MANIFEST_DIR")).join("board/lab").join(conf);
        let copy = |lab: &Lab| {
            let to = Path::new(&lab.dir()).join(format!("board-{conf}"));
            std::fs::copy(&board, &to).unwrap_or_else(|e| panic!("{}: {e}", board.display()));
            let mode = std::os::unix::fs::PermissionsExt::from_mode(0o644);
            std::fs::set_permissions(&to, mode).unwrap_or_else(|e| panic!("chmod: {e}"));
            to
        };
        let mut pair = Pair::prepare_with(tag, copy, vip, extras);
        for node in NODES {
            pair.start_daemon(node);
        }
        pair
    }

    /// Like `start`, but starts no daemon (the caller calls `start_daemon`), and the
    /// configuration's path comes from `conf`, called once the lab is up (so that a test can
    /// write a configuration into the lab's directory). The marker resource is put before the
    /// first `resource` line unless the configuration already runs `<lab dir>/marker.sh`.
    pub fn prepare(tag: char, conf: impl FnOnce(&Lab) -> PathBuf, vip: &str) -> Pair {
        Pair::prepare_with(tag, conf, vip, Default::default())
    }

    /// `prepare` with `extras` (alpha's, beta's) added to each node's command line and config.
    pub fn prepare_with(
        tag: char,
        conf: impl FnOnce(&Lab) -> PathBuf,
        vip: &str,
        extras: [NodeExtra; 2],
    ) -> Pair {
        let lab = Lab::up(tag);
        let marker = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/marker.sh");
        let to = format!("{}/marker.sh", lab.dir());
        std::fs::copy(&marker, &to).unwrap_or_else(|e| panic!("{}: {e}", marker.display()));
        let conf = conf(&lab);
        let node_confs = NODES.map(|n| PathBuf::from(format!("{}/{}.conf", lab.dir(), n.as_str())));
        let mut pair = Pair {
            stop: Arc::new(AtomicBool::new(false)),
            daemons: [None, None],
            threads: Vec::new(),
            answers: Arc::new(Mutex::new(Vec::new())),
            overlaps_since: AtomicU64::new(0),
            conf,
            vip: vip.to_owned(),
            extras,
            node_confs,
            envs: Default::default(),
            lab,
        };
        pair.write_files();
        for node in NODES {
            pair.spawn_responder(node);
        }
        pair.spawn_prober();
        pair
    }

    /// Appends `words` (kernel flags such as `hapair.fence=watchdog`) to `node`'s cmdline
    /// file; takes effect at the daemon's next start.
    pub fn add_cmdline(&self, node: Node, words: &str) {
        let path = self.path(&format!("{}.cmdline", node.as_str()));
        let old = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cmdline: {e}"));
        let line = format!("{} {words}\n", old.trim_end());
        std::fs::write(&path, line).unwrap_or_else(|e| panic!("cmdline: {e}"));
    }

    /// Sets `key=value` in the environment of `node`'s daemon from its next start on (e.g.
    /// `HAPAIR_OCF_ROOT`).
    pub fn set_env(&mut self, node: Node, key: &str, value: &str) {
        self.envs[index(node)].push((key.to_owned(), value.to_owned()));
    }

    /// The pid of `node`'s daemon (the last one started), whether it still runs or not.
    pub fn daemon_pid(&self, node: Node) -> Option<u32> {
        self.daemons[index(node)].as_ref().map(Child::id)
    }

    /// Forgets the overlaps that ended by now (a test that provokes a split brain on purpose
    /// checks the time after it resolved); one that still lasts is kept.
    pub fn clear_overlaps(&self) {
        self.overlaps_since.store(mono_ns(), Ordering::Relaxed);
    }

    /// The lab the pair runs in.
    pub fn lab(&self) -> &Lab {
        &self.lab
    }

    fn path(&self, file: &str) -> String {
        format!("{}/{file}", self.lab.dir())
    }

    /// The config file `node` reads: its own copy (`<lab dir>/<node>.conf`).
    pub fn conf_of(&self, node: Node) -> &Path {
        &self.node_confs[index(node)]
    }

    /// `node`'s keepalive, deadtime and initdead, from the configuration it runs (for the
    /// bounds the tests derive from them).
    pub fn timings(&self, node: Node) -> Timings {
        let path = self.conf_of(node);
        let text =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let c = hapair::config::parse_str(&text, path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let ms = |d: hapair::core::time::Duration| Duration::from_millis(d.total_millis());
        Timings {
            keepalive: ms(c.pair.keepalive),
            deadtime: ms(c.pair.deadtime),
            initdead: ms(c.pair.initdead),
        }
    }

    fn write_files(&mut self) {
        let mut key = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(self.path("authkey"))
            .unwrap_or_else(|e| panic!("authkey: {e}"));
        writeln!(key, "{AUTHKEY}").unwrap_or_else(|e| panic!("authkey: {e}"));
        for node in NODES {
            let name = node.as_str();
            let line = format!(
                "hapair.node={name} hapair.serial={} hapair.control={} hapair.statedir={} \
                 hapair.authkey={} hapair.ping=192.0.2.10 {}\n",
                self.lab.tty(node),
                self.path(&format!("{name}.sock")),
                self.path(name),
                self.path("authkey"),
                self.extras[index(node)].cmdline,
            );
            std::fs::write(self.path(&format!("{name}.cmdline")), line)
                .unwrap_or_else(|e| panic!("cmdline: {e}"));
            let extra = &self.extras[index(node)].conf;
            let base = std::fs::read_to_string(&self.conf)
                .unwrap_or_else(|e| panic!("{}: {e}", self.conf.display()));
            let own = &self.node_confs[index(node)];
            let text = with_marker(&format!("{base}\n{extra}\n"), &self.lab.dir());
            std::fs::write(own, text).unwrap_or_else(|e| panic!("{}: {e}", own.display()));
        }
    }

    /// Starts (or starts again) `node`'s daemon; its log goes to `<lab dir>/<node>.log`.
    pub fn start_daemon(&mut self, node: Node) {
        let name = node.as_str();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(&format!("{name}.log")))
            .unwrap_or_else(|e| panic!("log: {e}"));
        let child = Command::new("ip")
            .args(["netns", "exec", self.lab.ns(node), env!("CARGO_BIN_EXE_hapair"), "run"])
            .arg("-c")
            .arg(self.conf_of(node))
            .args(["--cmdline", &self.path(&format!("{name}.cmdline"))])
            .envs(self.envs[index(node)].iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        self.daemons[index(node)] = Some(child);
    }

    /// Sends `signal` to `node`'s daemon (`ip netns exec` execs, so the child is hapair).
    pub fn signal(&self, node: Node, signal: nix::sys::signal::Signal) {
        let child = self.daemons[index(node)].as_ref().expect("daemon was started");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, signal).unwrap_or_else(|e| panic!("kill: {e}"));
    }

    /// Whether `node`'s daemon has exited (and reaps it); its exit code if it has.
    pub fn exited(&mut self, node: Node) -> Option<Option<i32>> {
        let child = self.daemons[index(node)].as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => Some(status.code()),
            _ => None,
        }
    }

    /// Node death: SIGKILL to its daemon, then its LAN cable pulled (from then on it serves
    /// no one, whatever it has configured: its run ends, marked `dead`), then its crossover
    /// cable and the serial relay.
    pub fn kill_and_cut(&self, node: Node) {
        self.signal(node, nix::sys::signal::Signal::SIGKILL);
        self.lab.cut("lan", node);
        self.mark(node, "dead", mono_ns());
        self.lab.cut("xover", node);
        self.lab.cut("serial", node);
    }

    /// Appends "NODE KIND NS" to the markers: the test's own events (`dead`, or `reset` where
    /// a real watchdog would have reset the node), which end the node's run as a stop does.
    pub fn mark(&self, node: Node, kind: &str, at_ns: u64) {
        let path = self.markers_path();
        let mut m = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        writeln!(m, "{} {kind} {at_ns}", node.as_str()).unwrap_or_else(|e| panic!("{path}: {e}"));
    }

    /// `<lab dir>/markers`, where marker.sh and `mark` log.
    pub fn markers_path(&self) -> String {
        self.path("markers")
    }

    /// The marker log so far.
    pub fn markers(&self) -> String {
        std::fs::read_to_string(self.markers_path()).unwrap_or_default()
    }

    /// The group's runs so far, from the markers (`runs_in`).
    pub fn runs(&self) -> Vec<Run> {
        runs_in(&self.markers())
    }

    /// `hapair ARGS... -c CONF --cmdline <node's>` from the root namespace.
    pub fn hapair(&self, node: Node, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_hapair"))
            .args(args)
            .arg("-c")
            .arg(self.conf_of(node))
            .args(["--cmdline", &self.path(&format!("{}.cmdline", node.as_str()))])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("hapair {args:?}: {e}"))
    }

    /// `status --json` of `node`, or `None` while its daemon does not answer.
    pub fn status(&self, node: Node) -> Option<serde_json::Value> {
        let out = self.hapair(node, &["status", "--json"]);
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// The group state `node` reports (`active`, `standby`, ...), or "" when it does not
    /// answer.
    /// `node`'s `health.ok` (None while it does not answer) and its reasons.
    pub fn health(&self, node: Node) -> (Option<bool>, Vec<String>) {
        let Some(status) = self.status(node) else { return (None, Vec::new()) };
        let h = &status["health"];
        let reasons = h["reasons"]
            .as_array()
            .map(|a| a.iter().filter_map(|r| r.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        (h["ok"].as_bool(), reasons)
    }

    pub fn state(&self, node: Node) -> String {
        self.status(node).and_then(|s| s["state"].as_str().map(str::to_owned)).unwrap_or_default()
    }

    /// The nodes that answered the prober so far, in order, one entry per answer.
    pub fn answers(&self) -> Vec<String> {
        let answers = self.answers.lock().map(|a| a.clone()).unwrap_or_default();
        answers.into_iter().map(|(node, _)| node).collect()
    }

    /// The node that answered last, if any.
    pub fn last_answer(&self) -> Option<String> {
        self.answers.lock().ok()?.last().map(|(node, _)| node.clone())
    }

    /// When (`mono_ns`) `node` first answered the prober at or after `since_ns`, if it has.
    pub fn first_answer_from(&self, node: Node, since_ns: u64) -> Option<u64> {
        let answers = self.answers.lock().ok()?;
        answers.iter().find(|(n, at)| n == node.as_str() && *at >= since_ns).map(|(_, at)| *at)
    }

    /// Forgets the answers so far (so that the next ones are after an event).
    pub fn clear_answers(&self) {
        if let Ok(mut a) = self.answers.lock() {
            a.clear();
        }
    }

    /// Every interval in which the markers show the group running on both nodes at once,
    /// described (`overlaps_in`); those that ended before the last `clear_overlaps` are left
    /// out. A log without a single run fails the test: markers that never started could show
    /// no double run either.
    pub fn overlaps(&self) -> Vec<String> {
        let text = self.markers();
        assert!(!runs_in(&text).is_empty(), "no run in {}: {text:?}", self.markers_path());
        overlaps_in(&text, self.overlaps_since.load(Ordering::Relaxed))
    }

    /// Fails the test unless the markers show the group moved from `from` to `to`: `from`'s
    /// last run ended, `to`'s last one still runs, and never both at once.
    pub fn assert_moved(&self, from: Node, to: Node) {
        let runs = self.runs();
        let last = |n: Node| runs.iter().rev().find(|r| r.node == n.as_str());
        let moved =
            last(from).is_some_and(|r| r.to.is_some()) && last(to).is_some_and(|r| r.to.is_none());
        assert!(moved, "not moved from {from:?} to {to:?}: {runs:?}\n{}", self.markers());
        assert_eq!(self.overlaps(), Vec::<String>::new(), "the group ran on both nodes");
    }

    /// The client's neighbour entry for the VIP on lan0: its link-layer address, if any.
    pub fn client_neigh(&self) -> Option<String> {
        let out = exec_in(
            self.lab.ns(Node::Client),
            &["ip", "-j", "neigh", "show", "to", &self.vip, "dev", "lan0"],
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let entry = json.as_array()?.iter().find(|e| e["dst"].as_str() == Some(&self.vip))?;
        entry["lladdr"].as_str().map(str::to_owned)
    }

    /// `node`'s lan0 MAC address.
    pub fn mac(&self, node: Node) -> String {
        match node {
            Node::Alpha => self.lab.var("LAB_MAC_ALPHA").to_owned(),
            Node::Beta => self.lab.var("LAB_MAC_BETA").to_owned(),
            other => panic!("{other:?} is no daemon node"),
        }
    }

    fn spawn_responder(&mut self, node: Node) {
        let stop = self.stop.clone();
        let name = node.as_str();
        let handle = spawn_in(self.lab.ns(node), move || {
            let sock = UdpSocket::bind(("::", PROBE_PORT))
                .unwrap_or_else(|e| panic!("responder bind: {e}"));
            sock.set_read_timeout(Some(Duration::from_millis(50)))
                .unwrap_or_else(|e| panic!("responder timeout: {e}"));
            let mut buf = [0u8; 64];
            while !stop.load(Ordering::Relaxed) {
                if let Ok((_, from)) = sock.recv_from(&mut buf) {
                    let _ = sock.send_to(name.as_bytes(), from);
                }
            }
        });
        self.threads.push(handle);
    }

    fn spawn_prober(&mut self) {
        let (stop, answers) = (self.stop.clone(), self.answers.clone());
        let vip: SocketAddr = SocketAddr::new(
            self.vip.parse().unwrap_or_else(|e| panic!("vip {}: {e}", self.vip)),
            PROBE_PORT,
        );
        let handle = spawn_in(self.lab.ns(Node::Client), move || {
            let local = if vip.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" };
            let sock = UdpSocket::bind(local).unwrap_or_else(|e| panic!("prober bind: {e}"));
            let mut buf = [0u8; 64];
            #[allow(clippy::disallowed_methods)] // tests may read the real clock
            let mut next = std::time::Instant::now();
            while !stop.load(Ordering::Relaxed) {
                #[allow(clippy::disallowed_methods)]
                let now = std::time::Instant::now();
                if now >= next {
                    // No neighbour yet, or an ICMP error from an earlier probe: ask again.
                    let _ = sock.send_to(b"who", vip);
                    next = now + PROBE_INTERVAL;
                }
                // Paces the loop: read answers until the next probe is due.
                let wait = next.saturating_duration_since(now).max(Duration::from_millis(1));
                let _ = sock.set_read_timeout(Some(wait));
                if let Ok(n) = sock.recv(&mut buf) {
                    let at = mono_ns();
                    let node = String::from_utf8_lossy(&buf[..n]).into_owned();
                    if let Ok(mut a) = answers.lock() {
                        a.push((node, at));
                    }
                }
            }
        });
        self.threads.push(handle);
    }

    fn print_logs(&self) {
        for node in NODES {
            let path = self.path(&format!("{}.log", node.as_str()));
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            eprintln!("---- {path} (last {} lines)", tail.len());
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
        eprintln!("---- {} ----\n{}", self.markers_path(), self.markers());
    }
}

/// Keepalive, deadtime and initdead of a node's configuration (`Pair::timings`).
#[derive(Clone, Copy, Debug)]
pub struct Timings {
    pub keepalive: Duration,
    pub deadtime: Duration,
    pub initdead: Duration,
}

/// CLOCK_MONOTONIC in nanoseconds: the clock of the markers (marker.sh reads the same one)
/// and of the prober's answers.
pub fn mono_ns() -> u64 {
    // INVARIANT: CLOCK_MONOTONIC always exists on Linux; clock_gettime cannot fail for it.
    let ts =
        nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).expect("CLOCK_MONOTONIC");
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}

/// `text` with the marker resource (`<dir>/marker.sh`) before its first `resource` line (or
/// at its end when it has none), so that the marker's run encloses the whole group's;
/// unchanged when it already runs the marker.
fn with_marker(text: &str, dir: &str) -> String {
    let m = format!("{dir}/marker.sh");
    if text.contains(&m) {
        return text.to_owned();
    }
    let line = format!(
        "resource exec marker start=\"{m} start\" stop=\"{m} stop\" monitor=\"{m} monitor\" \
         timeout 5s\n"
    );
    let mut out = String::new();
    let mut placed = false;
    for l in text.lines() {
        if !placed && l.trim_start().starts_with("resource ") {
            out.push_str(&line);
            placed = true;
        }
        out.push_str(l);
        out.push('\n');
    }
    if !placed {
        out.push_str(&line);
    }
    out
}

/// One run of the group on one node, from the markers: [from, to) in `mono_ns`; `to` is
/// `None` while it may still run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    pub node: String,
    pub from: u64,
    pub to: Option<u64>,
}

/// The runs in a marker log ("NODE KIND NS" lines), in time order. `start` opens a run on
/// NODE; `stop`, `start-failed`, `dead` and `reset` close it; `stop-failed` leaves it open (the
/// group still runs there). A line of any other shape fails the test: a marker script that
/// lost its clock must not read as "never ran".
pub fn runs_in(text: &str) -> Vec<Run> {
    let mut events: Vec<(u64, &str, &str)> = text
        .lines()
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let ns = w.get(2).and_then(|t| t.parse().ok());
            match (w.len(), ns) {
                (3, Some(ns)) => (ns, w[1], w[0]),
                _ => panic!("malformed marker line {l:?} in:\n{text}"),
            }
        })
        .collect();
    events.sort();
    let mut runs: Vec<Run> = Vec::new();
    for (at, kind, node) in events {
        let open = runs.iter_mut().find(|r| r.node == node && r.to.is_none());
        match (kind, open) {
            ("start", None) => runs.push(Run { node: node.to_owned(), from: at, to: None }),
            ("start", Some(_)) => panic!("{node} started at {at} while it ran:\n{text}"),
            ("stop" | "start-failed" | "dead" | "reset", Some(run)) => run.to = Some(at),
            ("stop" | "start-failed" | "dead" | "reset" | "stop-failed", _) => {}
            _ => panic!("unknown marker {kind:?} in:\n{text}"),
        }
    }
    runs
}

/// Every interval of a marker log in which runs of two nodes overlap and that had not ended
/// by `since_ns`, described with times in ms from the log's first marker.
pub fn overlaps_in(text: &str, since_ns: u64) -> Vec<String> {
    let runs = runs_in(text);
    let t0 = runs.iter().map(|r| r.from).min().unwrap_or(0);
    let ms = |ns: u64| format!("{:.3}", (ns - t0) as f64 / 1e6);
    let show = |r: &Run| match r.to {
        Some(to) => format!("{} [{} ms, {} ms)", r.node, ms(r.from), ms(to)),
        None => format!("{} [{} ms, still running)", r.node, ms(r.from)),
    };
    let mut found = Vec::new();
    for (i, a) in runs.iter().enumerate() {
        for b in runs[i + 1..].iter().filter(|b| b.node != a.node) {
            let from = a.from.max(b.from);
            let to = a.to.unwrap_or(u64::MAX).min(b.to.unwrap_or(u64::MAX));
            if from < to && to > since_ns {
                found.push(format!("{} and {} overlap", show(a), show(b)));
            }
        }
    }
    found
}

impl Drop for Pair {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.print_logs();
        }
        for child in self.daemons.iter_mut().flatten() {
            // Only our own children, by pid.
            let _ = child.kill();
            let _ = child.wait();
        }
        self.stop.store(true, Ordering::Relaxed);
        for handle in self.threads.drain(..) {
            let _ = handle.join();
        }
    }
}
