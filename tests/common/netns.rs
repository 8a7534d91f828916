//! Network namespaces for integration tests: `Netns` (made on `new`, deleted on drop, also
//! when the test panics), veth pairs between namespaces, a bridged LAN in its own namespace,
//! and ways to act inside a namespace — `ip -n`, `ip netns exec`, and `Netns::run`, which runs
//! a closure on a thread that has entered the namespace (sockets made there stay in it).
//!
//! Names are `hpt<pid>x<n>`: unique per test process and at most 15 bytes, so they are valid
//! interface names too. The first `Netns::new` of a process deletes leftover `hpt*`
//! namespaces whose process is gone (a test killed before its drop ran). Interfaces are made
//! directly inside their namespaces, never in the host's, so parallel tests cannot collide.
//!
//! Not here: addresses outside the documentation ranges (callers pass 192.0.2.0/24,
//! 198.51.100.0/24, 203.0.113.0/24 or 2001:db8::/32 only), and daemons (callers own them).

use std::fs::File;
use std::process::{Command, Output};
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;

use nix::sched::{CloneFlags, setns};

/// The prefix of every namespace these helpers make.
pub const NETNS_PREFIX: &str = "hpt";

static COUNTER: AtomicU32 = AtomicU32::new(0);
static SWEEP: Once = Once::new();

/// A fresh name `hpt<pid>x<n>`, unique in this process, at most 15 bytes.
pub fn unique_name() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = format!("{NETNS_PREFIX}{}x{n}", std::process::id());
    assert!(name.len() <= 15, "name {name} too long for an interface");
    name
}

/// Runs a command, returning its stdout, or its stderr as the error.
pub fn try_cmd(argv: &[&str]) -> Result<String, String> {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .map_err(|e| format!("{}: {e}", argv.join(" ")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("{}: {}", argv.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Runs a command and panics with its stderr when it fails.
pub fn cmd(argv: &[&str]) -> String {
    try_cmd(argv).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `f` on a new thread inside the named namespace (any `ip netns` name, e.g. one of the
/// lab's) and returns its result; a panic in `f` is resumed here.
pub fn run_in<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    match spawn_in(ns, f).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Like `run_in`, but returns at once with the thread's handle.
pub fn spawn_in<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> JoinHandle<T> {
    let path = format!("/run/netns/{ns}");
    let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
    std::thread::spawn(move || {
        setns(&file, CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("setns: {e}"));
        f()
    })
}

/// `ip netns exec NS CMD...` on any named namespace, whatever its exit status.
pub fn exec_in(ns: &str, argv: &[&str]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", ns])
        .args(argv)
        .output()
        .unwrap_or_else(|e| panic!("ip netns exec {ns} {argv:?}: {e}"))
}

/// One ping from namespace `ns` to `addr` with a one-second wait; whether a reply came.
pub fn ping_from(ns: &str, addr: &str) -> bool {
    exec_in(ns, &["ping", "-n", "-q", "-c", "1", "-W", "1", addr]).status.success()
}

/// A network namespace owned by the test, deleted (with every process still in it killed) on
/// drop.
pub struct Netns {
    name: String,
}

impl Netns {
    /// Makes a namespace with a unique name and its loopback up.
    pub fn new() -> Netns {
        SWEEP.call_once(sweep_leftovers);
        let name = unique_name();
        cmd(&["ip", "netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// Its name (as `ip netns` knows it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NAME ARGS...`, panicking on failure; returns stdout.
    pub fn ip(&self, args: &[&str]) -> String {
        self.try_ip(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `ip -n NAME ARGS...`; stdout, or stderr as the error.
    pub fn try_ip(&self, args: &[&str]) -> Result<String, String> {
        let mut argv = vec!["ip", "-n", self.name.as_str()];
        argv.extend_from_slice(args);
        try_cmd(&argv)
    }

    /// `ip netns exec NAME CMD...`, whatever its exit status.
    pub fn exec(&self, argv: &[&str]) -> Output {
        exec_in(&self.name, argv)
    }

    /// Runs `f` on a new thread inside this namespace and returns its result; a panic in `f`
    /// is resumed here. Sockets `f` makes stay in this namespace after it returns.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        run_in(&self.name, f)
    }

    /// Like `run`, but returns at once with the thread's handle.
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> JoinHandle<T> {
        spawn_in(&self.name, f)
    }

    /// The MAC address of interface `dev`, as `ip` prints it (`02:..:..`).
    pub fn mac(&self, dev: &str) -> String {
        let out = self.ip(&["-j", "link", "show", "dev", dev]);
        let json: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        json[0]["address"].as_str().unwrap_or_else(|| panic!("no MAC on {dev}: {out}")).to_owned()
    }

    /// Adds `cidr` (e.g. `192.0.2.10/24`, or IPv6 with `nodad` added) to `dev`.
    pub fn add_addr(&self, dev: &str, cidr: &str) {
        if cidr.contains(':') {
            self.ip(&["addr", "add", cidr, "dev", dev, "nodad"]);
        } else {
            self.ip(&["addr", "add", cidr, "dev", dev]);
        }
    }

    /// Whether `addr` (no prefix) is on `dev`.
    pub fn has_addr(&self, dev: &str, addr: &str) -> bool {
        let out = self.ip(&["-j", "addr", "show", "dev", dev]);
        let json: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        let infos = json[0]["addr_info"].as_array().cloned().unwrap_or_default();
        infos.iter().any(|i| i["local"].as_str() == Some(addr))
    }

    /// The neighbour entry for `ip` on `dev`: `(lladdr, states)`, or `None` when there is
    /// none (or it has no link-layer address, e.g. INCOMPLETE/FAILED).
    pub fn neigh(&self, dev: &str, ip: &str) -> Option<(String, Vec<String>)> {
        let out = self.ip(&["-j", "neigh", "show", "to", ip, "dev", dev]);
        let json: serde_json::Value = serde_json::from_str(&out).ok()?;
        let entry = json.as_array()?.iter().find(|e| e["dst"].as_str() == Some(ip))?;
        let lladdr = entry["lladdr"].as_str()?.to_owned();
        let states = entry["state"].as_array().cloned().unwrap_or_default();
        let states = states.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect();
        Some((lladdr, states))
    }

    /// Sets the neighbour entry for `ip` on `dev` to `mac`, state STALE: a client that last
    /// saw the address at another machine.
    pub fn set_neigh_stale(&self, dev: &str, ip: &str, mac: &str) {
        self.ip(&["neigh", "replace", ip, "lladdr", mac, "dev", dev, "nud", "stale"]);
    }

    /// One ping to `ip` with a one-second wait; whether a reply came.
    pub fn ping_once(&self, ip: &str) -> bool {
        ping_from(&self.name, ip)
    }

    /// The PIDs of processes inside this namespace.
    pub fn pids(&self) -> Vec<i32> {
        let out = try_cmd(&["ip", "netns", "pids", &self.name]).unwrap_or_default();
        out.split_whitespace().filter_map(|p| p.parse().ok()).collect()
    }
}

impl Default for Netns {
    fn default() -> Netns {
        Netns::new()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Only processes in our own, uniquely named namespace: the test started them.
        for pid in self.pids() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        if let Err(e) = try_cmd(&["ip", "netns", "del", &self.name]) {
            eprintln!("cleanup: {e}");
        }
    }
}

/// A veth pair: `a_dev` in `a`, `b_dev` in `b`, both up.
pub fn veth(a: &Netns, a_dev: &str, b: &Netns, b_dev: &str) {
    a.ip(&["link", "add", a_dev, "type", "veth", "peer", "name", b_dev, "netns", b.name()]);
    a.ip(&["link", "set", a_dev, "up"]);
    b.ip(&["link", "set", b_dev, "up"]);
}

/// A bridged LAN: bridge `br0` in a namespace of its own; `attach` plugs a namespace in.
pub struct Lan {
    /// The namespace holding the bridge and the bridge-side veth ends (`p0`, `p1`, ...).
    pub ns: Netns,
    ports: u32,
}

impl Lan {
    /// The name of the bridge inside `ns`.
    pub const BRIDGE: &'static str = "br0";

    /// Makes the namespace and the bridge, up.
    pub fn new() -> Lan {
        let ns = Netns::new();
        ns.ip(&["link", "add", Lan::BRIDGE, "type", "bridge"]);
        // No STP listening delay, and no IPv6 on the bridge itself: it only forwards.
        ns.ip(&["link", "set", Lan::BRIDGE, "type", "bridge", "forward_delay", "0"]);
        ns.ip(&["link", "set", Lan::BRIDGE, "up"]);
        Lan { ns, ports: 0 }
    }

    /// Plugs `node` into the LAN through a veth whose end in `node` is called `dev` (up).
    /// Returns the name of the bridge-side end (`pN`), e.g. to cut it.
    pub fn attach(&mut self, node: &Netns, dev: &str) -> String {
        let port = format!("p{}", self.ports);
        self.ports += 1;
        veth(node, dev, &self.ns, &port);
        self.ns.ip(&["link", "set", &port, "master", Lan::BRIDGE]);
        port
    }
}

impl Default for Lan {
    fn default() -> Lan {
        Lan::new()
    }
}

/// Deletes `hpt<pid>x*` namespaces whose process no longer exists.
fn sweep_leftovers() {
    let Ok(list) = try_cmd(&["ip", "netns", "list"]) else { return };
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(rest) = name.strip_prefix(NETNS_PREFIX) else { continue };
        let Some((pid, _)) = rest.split_once('x') else { continue };
        let Ok(pid) = pid.parse::<u32>() else { continue };
        if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = try_cmd(&["ip", "netns", "del", name]);
        }
    }
}
