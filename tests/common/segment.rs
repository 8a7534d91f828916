//! `Segment`: real `hapair run` daemons of one or more pairs on one bridged LAN segment, each
//! node in a network namespace of its own with one interface, `lan0` (`netns::Lan`), for
//! what the lab's fixed topology cannot hold: two pairs on one LAN, or a pair with a third
//! host beside it that records or replays their frames.
//!
//! Every file (authkeys, configurations, kernel command lines, statedirs, control sockets,
//! logs) lives in one fresh directory per segment. As in `pair::Pair`, the nodes of a pair
//! share one configuration file and everything per node comes from its kernel command line
//! (`hapair.node=`, `hapair.control=`, `hapair.statedir=`). Daemons are `daemon::Daemon`s:
//! started in their namespace by `ip netns exec` (which execs, so the child's pid is the
//! daemon's), asked, signalled and reaped by that pid. On drop every daemon still running is
//! killed and reaped, the tails of their logs are printed when the test failed, the directory
//! is removed, and then the namespaces are deleted.
//!
//! Not here: what a test asserts, and any timing.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::daemon::{Daemon, HAPAIR, log_tail};
use super::netns::{Lan, Netns};

/// The interface of every host on the segment.
pub const DEV: &str = "lan0";
/// Lines of each daemon's log printed when a test fails (debug and trace lines left out: at
/// debug level every monitor run and timer fills them).
const LOG_TAIL_LINES: usize = 60;

/// One host on the segment: its namespace, address, switch port, and daemon if it runs one.
pub struct Host {
    /// Its namespace, with `lan0` up and addressed.
    pub ns: Netns,
    /// Its address on `lan0`, without the prefix length.
    pub addr: String,
    /// Its port on the switch (in the LAN's namespace): setting it down pulls the cable.
    pub port: String,
    /// Its daemon, with the configuration it reads (`None`: no daemon on this host).
    daemon: Option<Daemon>,
}

/// The hosts of one LAN segment and their files.
pub struct Segment {
    /// The directory of every file of the segment (mode 0700).
    pub dir: PathBuf,
    /// Dropped before the LAN: the hosts' daemons are gone before their namespaces go.
    hosts: Vec<Host>,
    /// The switch.
    pub lan: Lan,
}

impl Segment {
    /// A LAN with no host yet, and a fresh directory named after it.
    pub fn new() -> Segment {
        let lan = Lan::new();
        let dir = PathBuf::from(format!("/tmp/hapair-segment-{}", lan.ns.name()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", dir.display()));
        Segment { dir, hosts: Vec::new(), lan }
    }

    /// A new random key (`hapair keygen`) in `DIR/file`, mode 0600; its path.
    pub fn keygen(&self, file: &str) -> PathBuf {
        let key = Command::new(HAPAIR).arg("keygen").output().expect("hapair keygen");
        assert!(key.status.success(), "hapair keygen failed");
        let path = self.write(file, &String::from_utf8_lossy(&key.stdout));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
        path
    }

    /// Writes `text` to `DIR/file`; its path.
    pub fn write(&self, file: &str, text: &str) -> PathBuf {
        let path = self.dir.join(file);
        fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        path
    }

    /// Plugs a new namespace into the LAN with `cidr` (e.g. `192.0.2.10/24`) on `lan0`; its
    /// index.
    pub fn add_host(&mut self, cidr: &str) -> usize {
        let ns = Netns::new();
        let port = self.lan.attach(&ns, DEV);
        ns.add_addr(DEV, cidr);
        let addr = cidr.split('/').next().unwrap_or(cidr).to_owned();
        self.hosts.push(Host { ns, addr, port, daemon: None });
        self.hosts.len() - 1
    }

    /// `add_host`, with a daemon for node `name` that reads `conf` (not started yet). Its
    /// kernel command line names the node, its control socket `DIR/<name>.sock` and its
    /// statedir `DIR/<name>`; its log is `DIR/<name>.log`.
    pub fn add_node(&mut self, name: &'static str, cidr: &str, conf: &Path) -> usize {
        let i = self.add_host(cidr);
        let d = self.dir.display();
        let cmdline = self.write(
            &format!("{name}.cmdline"),
            &format!(
                "ro quiet hapair.node={name} hapair.control={d}/{name}.sock \
                 hapair.statedir={d}/{name}\n"
            ),
        );
        let log = self.dir.join(format!("{name}.log"));
        let host = &mut self.hosts[i];
        host.daemon = Some(Daemon::new(name, host.ns.name(), conf.to_owned(), cmdline, log));
        i
    }

    /// Host `i`.
    pub fn host(&self, i: usize) -> &Host {
        &self.hosts[i]
    }

    /// Host `i`'s namespace.
    pub fn ns(&self, i: usize) -> &Netns {
        &self.hosts[i].ns
    }

    /// The node name of host `i`'s daemon.
    pub fn name(&self, i: usize) -> &'static str {
        self.daemon(i).name
    }

    fn daemon(&self, i: usize) -> &Daemon {
        self.hosts[i].daemon.as_ref().unwrap_or_else(|| panic!("host {i} runs no daemon"))
    }

    fn daemon_mut(&mut self, i: usize) -> &mut Daemon {
        self.hosts[i].daemon.as_mut().unwrap_or_else(|| panic!("host {i} runs no daemon"))
    }

    /// Starts (or starts again) host `i`'s daemon.
    pub fn start(&mut self, i: usize) {
        self.daemon_mut(i).start();
    }

    /// The pid of host `i`'s daemon last started.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.daemon(i).pid()
    }

    /// SIGKILL to host `i`'s daemon, by the pid this segment started it with, and reaps it.
    pub fn kill(&mut self, i: usize) {
        self.daemon_mut(i).kill();
    }

    /// Pulls host `i`'s cable: its switch port goes down and `lan0` loses carrier.
    pub fn cut(&self, i: usize) {
        self.lan.ns.ip(&["link", "set", &self.hosts[i].port, "down"]);
    }

    /// Removes `addr` (no prefix; e.g. a VIP a killed daemon left behind) from host `i`'s
    /// `lan0`, when it is there.
    pub fn remove_addr(&self, i: usize, addr: &str) {
        let ns = &self.hosts[i].ns;
        let out = ns.ip(&["-j", "addr", "show", "dev", DEV]);
        let json: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        let infos = json[0]["addr_info"].as_array().cloned().unwrap_or_default();
        for info in infos.iter().filter(|i| i["local"].as_str() == Some(addr)) {
            let prefix = info["prefixlen"].as_u64().unwrap_or(32);
            ns.ip(&["addr", "del", &format!("{addr}/{prefix}"), "dev", DEV]);
        }
    }

    /// Whether `addr` is on host `i`'s `lan0`.
    pub fn has_addr(&self, i: usize, addr: &str) -> bool {
        self.hosts[i].ns.has_addr(DEV, addr)
    }

    /// `hapair ARGS -c CONF --cmdline CMDLINE` for host `i`'s node, from the root namespace.
    pub fn admin(&self, i: usize, args: &[&str]) -> Output {
        self.daemon(i).admin(args)
    }

    /// `hapair status --json` of host `i`'s node, parsed; `None` when it does not exit 0.
    pub fn status(&self, i: usize) -> Option<serde_json::Value> {
        self.daemon(i).status()
    }

    /// Host `i`'s group state from status, "" when its daemon does not answer.
    pub fn state(&self, i: usize) -> String {
        self.daemon(i).state()
    }

    /// Host `i`'s daemon's log so far.
    pub fn log(&self, i: usize) -> String {
        self.daemon(i).log_text()
    }
}

impl Default for Segment {
    fn default() -> Segment {
        Segment::new()
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        for host in &mut self.hosts {
            // Only our own children, by pid.
            if let Some(daemon) = host.daemon.as_mut() {
                daemon.kill();
            }
        }
        if std::thread::panicking() {
            for daemon in self.hosts.iter().filter_map(|h| h.daemon.as_ref()) {
                let log = daemon.log_text();
                let tail = log_tail(&log, LOG_TAIL_LINES);
                eprintln!("---- {} log (last {} lines, info and up) ----", daemon.name, tail.len());
                for line in tail {
                    eprintln!("{line}");
                }
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}
