//! `Pair`: two real `hapair run` daemons in a `Lab`, each with a UDP responder in its
//! namespace, a prober in the client's namespace that asks the VIP who it is every 5 ms, and a
//! sampler that watches whether the VIP is configured on both nodes at once. For the
//! end-to-end tests (tests/e2e_failover.rs).
//!
//! Everything stops on drop (daemons by pid, threads by flag), then the lab goes down; when
//! the test panicked, the daemons' logs are printed first.
//!
//! Not here: what a test asserts (it reads `answers`, `overlaps`, `status`), and timing
//! figures (scripts/bench-failover measures those).

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
    answers: Arc<Mutex<Vec<String>>>,
    samples: Arc<AtomicU64>,
    overlaps: Arc<Mutex<Vec<String>>>,
    conf: PathBuf,
    vip: String,
    extras: [NodeExtra; 2],
    node_confs: [Option<PathBuf>; 2],
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
    /// starts the responders, the prober towards `vip`, the overlap sampler and both daemons
    /// with board/lab/`conf` (a copy in the lab's directory, root's and 0644: `run` refuses a
    /// configuration that is not root's or that others may write, and a checkout may be a
    /// user's).
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
    /// write a configuration into the lab's directory).
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
        let conf = conf(&lab);
        let mut pair = Pair {
            stop: Arc::new(AtomicBool::new(false)),
            daemons: [None, None],
            threads: Vec::new(),
            answers: Arc::new(Mutex::new(Vec::new())),
            samples: Arc::new(AtomicU64::new(0)),
            overlaps: Arc::new(Mutex::new(Vec::new())),
            conf,
            vip: vip.to_owned(),
            extras,
            node_confs: [None, None],
            envs: Default::default(),
            lab,
        };
        pair.write_files();
        for node in NODES {
            pair.spawn_responder(node);
        }
        pair.spawn_prober();
        pair.spawn_sampler();
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

    /// Forgets the overlaps seen so far (a test that provokes a split brain on purpose
    /// checks the time after it resolved).
    pub fn clear_overlaps(&self) {
        if let Ok(mut o) = self.overlaps.lock() {
            o.clear();
        }
    }

    /// The lab the pair runs in.
    pub fn lab(&self) -> &Lab {
        &self.lab
    }

    fn path(&self, file: &str) -> String {
        format!("{}/{file}", self.lab.dir())
    }

    /// The config file `node` reads: its own copy when it has extra lines, else the shared.
    pub fn conf_of(&self, node: Node) -> &Path {
        self.node_confs[index(node)].as_deref().unwrap_or(&self.conf)
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
            if !extra.is_empty() {
                let base = std::fs::read_to_string(&self.conf)
                    .unwrap_or_else(|e| panic!("{}: {e}", self.conf.display()));
                let own = PathBuf::from(self.path(&format!("{name}.conf")));
                std::fs::write(&own, format!("{base}\n{extra}\n"))
                    .unwrap_or_else(|e| panic!("{}: {e}", own.display()));
                self.node_confs[index(node)] = Some(own);
            }
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

    /// Node death: SIGKILL to its daemon, then its LAN and crossover cables pulled and the
    /// serial relay stopped.
    pub fn kill_and_cut(&self, node: Node) {
        self.signal(node, nix::sys::signal::Signal::SIGKILL);
        self.lab.cut("lan", node);
        self.lab.cut("xover", node);
        self.lab.cut("serial", node);
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
    pub fn state(&self, node: Node) -> String {
        self.status(node).and_then(|s| s["state"].as_str().map(str::to_owned)).unwrap_or_default()
    }

    /// The nodes that answered the prober so far, in order, one entry per answer.
    pub fn answers(&self) -> Vec<String> {
        self.answers.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// The node that answered last, if any.
    pub fn last_answer(&self) -> Option<String> {
        self.answers.lock().ok()?.last().cloned()
    }

    /// Forgets the answers so far (so that the next ones are after an event).
    pub fn clear_answers(&self) {
        if let Ok(mut a) = self.answers.lock() {
            a.clear();
        }
    }

    /// How many overlap checks the sampler has made.
    pub fn samples(&self) -> u64 {
        self.samples.load(Ordering::Relaxed)
    }

    /// Every moment the sampler saw the VIP on both nodes (with carrier on both), described.
    pub fn overlaps(&self) -> Vec<String> {
        self.overlaps.lock().map(|o| o.clone()).unwrap_or_default()
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
                    let node = String::from_utf8_lossy(&buf[..n]).into_owned();
                    if let Ok(mut a) = answers.lock() {
                        a.push(node);
                    }
                }
            }
        });
        self.threads.push(handle);
    }

    fn spawn_sampler(&mut self) {
        let (stop, samples, overlaps) =
            (self.stop.clone(), self.samples.clone(), self.overlaps.clone());
        let ns = [self.lab.ns(Node::Alpha).to_owned(), self.lab.ns(Node::Beta).to_owned()];
        let vip = self.vip.clone();
        let handle = std::thread::spawn(move || {
            // Samples alternate A, B, A, B...: B holding it at a sample while A held it at the
            // samples just before and after means both held it at that moment.
            let mut seen: Vec<bool> = Vec::new();
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                seen.push(serves_vip(&ns[i % 2], &vip));
                let n = seen.len();
                if n >= 3 && seen[n - 1] && seen[n - 2] && seen[n - 3] {
                    let holder = if i.is_multiple_of(2) { "alpha" } else { "beta" };
                    let mut o = overlaps.lock().unwrap_or_else(|p| p.into_inner());
                    o.push(format!("sample {n}: {holder} kept the VIP while the other had it"));
                }
                samples.fetch_add(1, Ordering::Relaxed);
                i += 1;
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
    }
}

/// Whether the VIP is on `ns`'s lan0 and lan0 has carrier (a node whose cable is pulled
/// serves no one, whatever it has configured).
fn serves_vip(ns: &str, vip: &str) -> bool {
    let out = exec_in(ns, &["ip", "-j", "addr", "show", "dev", "lan0"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let dev = &json[0];
    let carrier =
        dev["flags"].as_array().is_some_and(|f| f.iter().any(|x| x.as_str() == Some("LOWER_UP")));
    let infos = dev["addr_info"].as_array().cloned().unwrap_or_default();
    carrier && infos.iter().any(|i| i["local"].as_str() == Some(vip))
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
