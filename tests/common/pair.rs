//! `Pair`: two real `hapair run` daemons (`daemon::Daemon`), alpha and beta, in a `Lab`, with
//! their files in the lab's directory (gone with the lab): one authkey (`hapair keygen`,
//! 0600), a kernel command line per node and a configuration. Both daemons share one
//! filesystem, so everything per node comes from its kernel command line (`hapair.node=`,
//! `hapair.serial=`, `hapair.control=`, `hapair.statedir=`, `hapair.authkey=`), and resources
//! tell the nodes apart by `$HAPAIR_NODE`, which the daemon puts in every agent's environment.
//!
//! Two ways to make one, which share everything else (starting, asking, signalling, logs):
//! - `Pair::new(tag, &Setup)`: a configuration written from a `Setup` (the lab's three media, a
//!   VIP, the client as ping node and, with `children`, an `exec` resource whose start and stop
//!   log `date +%s%N` stamps to `NODE.marks`, and a notify script logging to `notify-NODE`),
//!   for tests that order events across the nodes by those stamps (`marks`, `notified`);
//!   `Pair::with_conf` writes the test's own instead. The daemons log at debug level.
//! - `Pair::board(tag, conf, vip)` and `Pair::prepare`: board/lab/CONF (or the test's), with
//!   the VIP watched from the client: a UDP responder in each node's namespace and a prober in
//!   the client's that asks the VIP who it is every 5 ms (each answer stamped); and the marker
//!   resource: tests/fixtures/marker.sh, an `exec` resource put first in each node's own copy
//!   of the configuration, logs "NODE start NS" before the group starts and "NODE stop NS"
//!   after it stopped (CLOCK_MONOTONIC, `mono_ns`) to `<lab dir>/markers`. `overlaps` computes
//!   from that log every interval in which the group ran on both nodes at once, however short
//!   (no sampling: a double run of a millisecond shows). The daemons log at info level.
//!
//! A node is named by its index (0 alpha, 1 beta) or its `lab::Node` (`Which`). Everything
//! stops on drop (daemons by pid, threads by flag), then the lab goes down; when the test
//! panicked, the daemons' logs (info and up) and the marker files are printed first.
//!
//! Not here: what a test asserts (it reads `status`, `marks`, `answers`, `overlaps`, ...), and
//! timing figures (scripts/bench-failover measures those).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sys::signal::Signal;

use super::daemon::{Daemon, HAPAIR, log_tail};
use super::lab::{Lab, Node};
use super::{POLL_INTERVAL, exec_in, spawn_in, wait_every};

/// The UDP port the responders answer on.
pub const PROBE_PORT: u16 = 7007;
/// How often the prober asks.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(5);
/// Start-up of a pair: the lab, initdead and the first decisions, on a loaded 2-core machine.
pub const START: Duration = Duration::from_secs(30);
/// Any single step after that.
pub const STEP: Duration = Duration::from_secs(15);
/// Lines of each daemon's log (info and up) printed when a test fails.
const LOG_TAIL_LINES: usize = 80;
/// The files of the lab's directory printed when a test fails, those that exist.
const SHOWN_ON_FAILURE: [&str; 9] = [
    "markers",
    "alpha.marks",
    "beta.marks",
    "notify-alpha",
    "notify-beta",
    "marks",
    "notify.log",
    "fence.log",
    "monitors",
];

/// The two daemon nodes, in config order.
pub const NODES: [Node; 2] = [Node::Alpha, Node::Beta];

/// A node of a pair: its index (0 alpha, 1 beta) or its `lab::Node`.
pub trait Which: Copy {
    /// 0 for alpha, 1 for beta.
    fn index(self) -> usize;
}

impl Which for usize {
    fn index(self) -> usize {
        assert!(self < 2, "a pair has nodes 0 and 1, not {self}");
        self
    }
}

impl Which for Node {
    fn index(self) -> usize {
        match self {
            Node::Alpha => 0,
            Node::Beta => 1,
            other => panic!("{other:?} runs no daemon"),
        }
    }
}

/// Timings and extras of a configuration written by `Pair::new`.
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

/// Per-node additions for `Pair::prepare_with` and `Pair::board_with`.
#[derive(Clone, Debug, Default)]
pub struct NodeExtra {
    /// More words for the node's kernel command line (`hapair.raid=/tmp/x/mdstat`).
    pub cmdline: String,
    /// Lines appended to the node's own copy of the config, `<lab dir>/<node>.conf` (for
    /// directives the command line cannot set, like `hwmon`).
    pub conf: String,
}

/// Two daemons on a lab, their files in its directory.
pub struct Pair {
    /// The lab's directory: authkey, configurations, cmdlines, logs, statedirs, sockets.
    pub dir: PathBuf,
    /// The configuration the test gave (each node runs `nodes[i].conf`: this one, or its own
    /// copy with the marker resource and its extras).
    pub conf: PathBuf,
    /// alpha, then beta.
    pub nodes: [Daemon; 2],
    /// How often `wait_state` and `settle` ask the daemons (`POLL_INTERVAL` unless set).
    pub poll: Duration,
    /// The VIP the prober asks, when there is one.
    vip: Option<String>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// Who answered the prober, and when (`mono_ns`).
    answers: Arc<Mutex<Vec<(String, u64)>>>,
    /// Overlaps that ended before this `mono_ns` are forgotten (`clear_overlaps`).
    overlaps_since: AtomicU64,
    /// Declared last, so dropped last: `lab.sh down` after the daemons and threads are gone.
    lab: Lab,
}

impl Pair {
    /// Brings lab `tag` up (as `Lab::up`) and writes into its directory a new authkey, each
    /// node's kernel command line and the configuration `conf` writes, called once the lab is
    /// up (so that it can name the lab's directory); it returns the file's path. Starts
    /// nothing.
    pub fn with_conf(tag: char, conf: impl FnOnce(&Lab) -> PathBuf) -> Pair {
        Pair::with_conf_on(Lab::up(tag), conf)
    }

    /// `with_conf` on a lab the caller brought up (`Lab::up_with`, e.g. the routed lab).
    pub fn with_conf_on(lab: Lab, conf: impl FnOnce(&Lab) -> PathBuf) -> Pair {
        let dir = PathBuf::from(lab.dir());
        let key = Command::new(HAPAIR).arg("keygen").output().expect("hapair keygen");
        assert!(key.status.success(), "hapair keygen failed");
        let mut authkey = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dir.join("authkey"))
            .unwrap_or_else(|e| panic!("authkey: {e}"));
        authkey.write_all(&key.stdout).unwrap_or_else(|e| panic!("authkey: {e}"));
        let conf = conf(&lab);
        let nodes = NODES.map(|node| {
            let name = node.as_str();
            let cmdline = dir.join(format!("{name}.cmdline"));
            let log = dir.join(format!("{name}.log"));
            Daemon::new(name, lab.ns(node), conf.clone(), cmdline, log)
        });
        let pair = Pair {
            dir,
            conf,
            nodes,
            poll: POLL_INTERVAL,
            vip: None,
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
            answers: Arc::new(Mutex::new(Vec::new())),
            overlaps_since: AtomicU64::new(0),
            lab,
        };
        for node in NODES {
            let words =
                format!("hapair.node={} hapair.serial={}", node.as_str(), pair.lab.tty(node));
            pair.write_cmdline(node, &words);
        }
        pair
    }

    /// `with_conf` with the configuration `setup` describes, `<lab dir>/hapair.conf`, and its
    /// notify script. Starts nothing.
    pub fn new(tag: char, setup: &Setup) -> Pair {
        Pair::with_conf(tag, |lab| {
            let dir = PathBuf::from(lab.dir());
            let d = dir.display();
            let notify = dir.join("notify");
            fs::write(
                &notify,
                format!("#!/bin/sh\necho \"$(date +%s%N) $1 $3\" >> {d}/notify-$2\n"),
            )
            .expect("notify script");
            fs::set_permissions(&notify, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .expect("chmod");
            let conf = dir.join("hapair.conf");
            fs::write(&conf, config_text(&dir, setup)).expect("config");
            conf
        })
    }

    /// A pair running board/lab/`conf` (a copy in the lab's directory, root's and 0644: `run`
    /// refuses a configuration that is not root's or that others may write, and a checkout may
    /// be a user's), with the marker resource first in its group and the prober asking `vip`;
    /// both daemons started, alpha first.
    pub fn board(tag: char, conf: &str, vip: &str) -> Pair {
        Pair::board_with(tag, conf, vip, Default::default())
    }

    /// `board`, with `extras` (alpha's, beta's) added to each node's command line and config.
    pub fn board_with(tag: char, conf: &str, vip: &str, extras: [NodeExtra; 2]) -> Pair {
        let board = Path::new(env!("CARGO_MANIFEST_DIR")).join("board/lab").join(conf);
        let copy = |lab: &Lab| {
            let to = Path::new(&lab.dir()).join(format!("board-{conf}"));
            fs::copy(&board, &to).unwrap_or_else(|e| panic!("{}: {e}", board.display()));
            let mode = std::os::unix::fs::PermissionsExt::from_mode(0o644);
            fs::set_permissions(&to, mode).unwrap_or_else(|e| panic!("chmod: {e}"));
            to
        };
        let mut pair = Pair::prepare_with(tag, copy, vip, extras);
        pair.start_both();
        pair
    }

    /// Like `board`, but starts no daemon (the caller calls `start`), and the configuration's
    /// path comes from `conf`, called once the lab is up (so that a test can write a
    /// configuration into the lab's directory). The marker resource is put before the first
    /// `resource` line unless the configuration already runs `<lab dir>/marker.sh`.
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
        let mut pair = Pair::with_conf(tag, |lab| {
            let marker = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/marker.sh");
            let to = format!("{}/marker.sh", lab.dir());
            fs::copy(&marker, &to).unwrap_or_else(|e| panic!("{}: {e}", marker.display()));
            conf(lab)
        });
        let base = fs::read_to_string(&pair.conf)
            .unwrap_or_else(|e| panic!("{}: {e}", pair.conf.display()));
        for (node, extra) in NODES.into_iter().zip(extras) {
            let own = pair.dir.join(format!("{}.conf", node.as_str()));
            let text = with_marker(&format!("{base}\n{}\n", extra.conf), &pair.lab.dir());
            fs::write(&own, text).unwrap_or_else(|e| panic!("{}: {e}", own.display()));
            pair.add_cmdline(node, &format!("hapair.ping=192.0.2.10 {}", extra.cmdline));
            let daemon = &mut pair.nodes[node.index()];
            daemon.conf = own;
            daemon.rust_log = "info";
        }
        pair.vip = Some(vip.to_owned());
        for node in NODES {
            pair.spawn_responder(node);
        }
        pair.spawn_prober(vip);
        pair
    }

    /// The lab the pair runs in.
    pub fn lab(&self) -> &Lab {
        &self.lab
    }

    /// Writes node `which`'s kernel command line: `ro quiet`, `words`, then its control
    /// socket, statedir and authkey in the lab's directory. Takes effect at its next start.
    pub fn write_cmdline(&self, which: impl Which, words: &str) {
        let (d, name) = (self.dir.display(), self.nodes[which.index()].name);
        let line = format!(
            "ro quiet {words} hapair.control={d}/{name}.sock hapair.statedir={d}/{name} \
             hapair.authkey={d}/authkey\n"
        );
        fs::write(&self.nodes[which.index()].cmdline, line)
            .unwrap_or_else(|e| panic!("cmdline: {e}"));
    }

    /// Appends `words` (kernel flags such as `hapair.fence=watchdog`) to node `which`'s
    /// cmdline file; takes effect at the daemon's next start.
    pub fn add_cmdline(&self, which: impl Which, words: &str) {
        let path = &self.nodes[which.index()].cmdline;
        let old = fs::read_to_string(path).unwrap_or_else(|e| panic!("cmdline: {e}"));
        fs::write(path, format!("{} {words}\n", old.trim_end()))
            .unwrap_or_else(|e| panic!("cmdline: {e}"));
    }

    /// Sets `key=value` in the environment of node `which`'s daemon from its next start on
    /// (e.g. `HAPAIR_OCF_ROOT`).
    pub fn set_env(&mut self, which: impl Which, key: &str, value: &str) {
        self.nodes[which.index()].env.push((key.to_owned(), value.to_owned()));
    }

    /// The configuration node `which` runs.
    pub fn conf_of(&self, which: impl Which) -> &Path {
        &self.nodes[which.index()].conf
    }

    /// Node `which`'s keepalive, deadtime and initdead, from the configuration it runs (for
    /// the bounds the tests derive from them).
    pub fn timings(&self, which: impl Which) -> Timings {
        let path = self.conf_of(which);
        let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let c = hapair::config::parse_str(&text, path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let ms = |d: hapair::core::time::Duration| Duration::from_millis(d.total_millis());
        Timings {
            keepalive: ms(c.pair.keepalive),
            deadtime: ms(c.pair.deadtime),
            initdead: ms(c.pair.initdead),
        }
    }

    /// Starts (or, once the last one exited, starts again) node `which`'s daemon.
    pub fn start(&mut self, which: impl Which) {
        self.nodes[which.index()].start();
    }

    /// Starts both daemons, alpha first.
    pub fn start_both(&mut self) {
        for node in NODES {
            self.start(node);
        }
    }

    /// Starts node `which` with another configuration file than its own.
    pub fn start_with_conf(&mut self, which: impl Which, conf: &Path) {
        self.nodes[which.index()].start_with_conf(conf);
    }

    /// Starts node `which` with its stderr (the log) on `stderr` and `RUST_LOG=rust_log`.
    pub fn start_with_stderr(&mut self, which: impl Which, stderr: Stdio, rust_log: &str) {
        self.nodes[which.index()].start_with_stderr(stderr, rust_log);
    }

    /// The pid of node `which`'s daemon (the last one started), whether it still runs or not.
    pub fn pid(&self, which: impl Which) -> Option<u32> {
        self.nodes[which.index()].pid()
    }

    /// Sends `signal` to node `which`'s daemon, by pid.
    pub fn signal(&self, which: impl Which, signal: Signal) {
        self.nodes[which.index()].signal(signal);
    }

    /// Whether node `which`'s daemon has exited (and reaps it); its exit code if it has.
    pub fn exited(&mut self, which: impl Which) -> Option<Option<i32>> {
        self.nodes[which.index()].exited()
    }

    /// `hapair ARGS -c CONF --cmdline CMDLINE` for node `which`, from the root namespace.
    pub fn admin(&self, which: impl Which, args: &[&str]) -> Output {
        self.nodes[which.index()].admin(args)
    }

    /// Like `admin`, and asserts exit 0.
    pub fn admin_ok(&self, which: impl Which, args: &[&str]) {
        self.nodes[which.index()].admin_ok(args);
    }

    /// `status --json` of node `which`, or `None` while its daemon does not answer.
    pub fn status(&self, which: impl Which) -> Option<serde_json::Value> {
        self.nodes[which.index()].status()
    }

    /// Status JSON of node `which` straight from its control socket, without the CLI (which
    /// reads the configuration file first, so it fails while a test has made that invalid).
    pub fn socket_status(&self, which: impl Which) -> Option<serde_json::Value> {
        let socket = self.dir.join(format!("{}.sock", self.nodes[which.index()].name));
        let body = hapair::control::request(&socket, "status json").ok()?;
        Some(serde_json::from_str(&body).expect("status json is JSON"))
    }

    /// The group state node `which` reports (`active`, `standby`, ...), or "" while it does
    /// not answer.
    pub fn state(&self, which: impl Which) -> String {
        self.nodes[which.index()].state()
    }

    /// Node `which`'s `health.ok` (None while it does not answer) and its reasons.
    pub fn health(&self, which: impl Which) -> (Option<bool>, Vec<String>) {
        let Some(status) = self.status(which) else { return (None, Vec::new()) };
        let h = &status["health"];
        let reasons = h["reasons"]
            .as_array()
            .map(|a| a.iter().filter_map(|r| r.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        (h["ok"].as_bool(), reasons)
    }

    /// Waits until node `which` reports `state`, asking every `poll`; fails naming what it
    /// saw last.
    pub fn wait_state(&self, which: impl Which, state: &str, timeout: Duration) {
        let mut last = String::new();
        let ok = wait_every(self.poll, timeout, || {
            last = self.state(which);
            last == state
        });
        let name = self.nodes[which.index()].name;
        assert!(ok, "{name} not {state} within {timeout:?}: last {last:?}");
    }

    /// Waits until alpha (home) is active, beta standby, and each hears the other.
    pub fn settle(&self) {
        self.wait_state(0, "active", START);
        self.wait_state(1, "standby", STEP);
        let heard = wait_every(self.poll, STEP, || {
            (0..2).all(|i| self.status(i).is_some_and(|s| s["peer"]["alive"] == true))
        });
        assert!(heard, "timed out after {STEP:?} waiting for both to see the peer alive");
    }

    /// Waits until one node is active, the other standby, and the client is answered by the
    /// active one at the VIP; returns (active, standby). Usually alpha (home) is active, but a
    /// node whose first ping has not answered yet is unhealthy and leaves the group to its
    /// peer.
    pub fn settled(&self, patience: Duration) -> (Node, Node) {
        let mut active = Node::Alpha;
        super::assert_soon(patience, "one node active, the other standby", || {
            let (a, b) = (self.state(Node::Alpha), self.state(Node::Beta));
            active = if a == "active" { Node::Alpha } else { Node::Beta };
            (a == "active" && b == "standby") || (a == "standby" && b == "active")
        });
        super::assert_soon(patience, "the client answered by the active node at the VIP", || {
            self.last_answer().as_deref() == Some(active.as_str())
        });
        (active, active.other())
    }

    /// Node `which`'s log so far.
    pub fn log(&self, which: impl Which) -> String {
        self.nodes[which.index()].log_text()
    }

    /// Lines of `DIR/NAME`, empty when the file does not exist.
    pub fn lines(&self, name: &str) -> Vec<String> {
        fs::read_to_string(self.dir.join(name))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Timestamps (ns) of the `event` lines (`start`, `stop`) of node `which`'s marker log
    /// (`Setup`'s exec resource).
    pub fn marks(&self, which: impl Which, event: &str) -> Vec<u128> {
        stamped(&self.lines(&format!("{}.marks", self.nodes[which.index()].name)), event)
    }

    /// Timestamps (ns) of node `which`'s notify events called `event` (`Setup`'s script).
    pub fn notified(&self, which: impl Which, event: &str) -> Vec<u128> {
        stamped(&self.lines(&format!("notify-{}", self.nodes[which.index()].name)), event)
    }

    /// Node death: SIGKILL to its daemon, then its LAN cable pulled (from then on it serves
    /// no one, whatever it has configured: its run ends, marked `dead`), then its crossover
    /// cable and the serial relay.
    pub fn kill_and_cut(&self, which: impl Which) {
        let node = NODES[which.index()];
        self.signal(node, Signal::SIGKILL);
        self.lab.cut("lan", node);
        self.mark(node, "dead", mono_ns());
        self.lab.cut("xover", node);
        self.lab.cut("serial", node);
    }

    /// Appends "NODE KIND NS" to the markers: the test's own events (`dead`, or `reset` where
    /// a real watchdog would have reset the node), which end the node's run as a stop does.
    pub fn mark(&self, which: impl Which, kind: &str, at_ns: u64) {
        let path = self.markers_path();
        let mut m = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        let name = self.nodes[which.index()].name;
        writeln!(m, "{name} {kind} {at_ns}").unwrap_or_else(|e| panic!("{path}: {e}"));
    }

    /// `<lab dir>/markers`, where marker.sh and `mark` log.
    pub fn markers_path(&self) -> String {
        format!("{}/markers", self.lab.dir())
    }

    /// The marker log so far.
    pub fn markers(&self) -> String {
        fs::read_to_string(self.markers_path()).unwrap_or_default()
    }

    /// The group's runs so far, from the markers (`runs_in`).
    pub fn runs(&self) -> Vec<Run> {
        runs_in(&self.markers())
    }

    /// Forgets the overlaps that ended by now (a test that provokes a split brain on purpose
    /// checks the time after it resolved); one that still lasts is kept.
    pub fn clear_overlaps(&self) {
        self.overlaps_since.store(mono_ns(), Ordering::Relaxed);
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

    /// After a fault on the active `victim`: within `patience` the group is handed over to
    /// `survivor` and the client answered by it; the victim's health reasons name `why`, the
    /// survivor is healthy, and the group never ran on both (`assert_moved`).
    pub fn assert_handed_over(&self, victim: Node, survivor: Node, why: &str, patience: Duration) {
        super::assert_soon(patience, "the healthy peer active, the unhealthy node standby", || {
            self.state(survivor) == "active" && self.state(victim) == "standby"
        });
        super::assert_soon(patience, "the client answered by the new active node", || {
            self.last_answer().as_deref() == Some(survivor.as_str())
        });
        let (ok, reasons) = self.health(victim);
        assert_eq!(ok, Some(false), "old active's health.ok; reasons {reasons:?}");
        assert!(reasons.iter().any(|r| r.contains(why)), "old active's reasons {reasons:?}");
        assert_eq!(self.health(survivor).0, Some(true), "the new active is healthy");
        self.assert_moved(victim, survivor);
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

    /// The client's neighbour entry for the VIP on lan0: its link-layer address, if any.
    pub fn client_neigh(&self) -> Option<String> {
        let vip = self.vip.as_deref().expect("a pair with a probed VIP (`prepare`, `board`)");
        let out = exec_in(
            self.lab.ns(Node::Client),
            &["ip", "-j", "neigh", "show", "to", vip, "dev", "lan0"],
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let entry = json.as_array()?.iter().find(|e| e["dst"].as_str() == Some(vip))?;
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

    fn spawn_prober(&mut self, vip: &str) {
        let (stop, answers) = (self.stop.clone(), self.answers.clone());
        let vip: SocketAddr =
            SocketAddr::new(vip.parse().unwrap_or_else(|e| panic!("vip {vip}: {e}")), PROBE_PORT);
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
        for daemon in &self.nodes {
            let log = daemon.log_text();
            let tail = log_tail(&log, LOG_TAIL_LINES);
            eprintln!("---- {} log (info and up, last {} lines) ----", daemon.name, tail.len());
            for line in tail {
                eprintln!("{line}");
            }
        }
        for file in SHOWN_ON_FAILURE {
            if let Ok(text) = fs::read_to_string(self.dir.join(file)) {
                eprintln!("---- {file} ----\n{text}");
            }
        }
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for daemon in &mut self.nodes {
            // Only our own children, by pid.
            daemon.kill();
        }
        self.stop.store(true, Ordering::Relaxed);
        for handle in self.threads.drain(..) {
            let _ = handle.join();
        }
        if std::thread::panicking() {
            self.print_logs();
        }
    }
}

/// The configuration of `Pair::new`: the lab's three media, a VIP, the lab client as ping
/// node, and (with `children`) one `exec` resource whose start and stop log to
/// `DIR/$HAPAIR_NODE.marks` (and each passing monitor to `.monitors`) and a notify script.
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
