//! `Bmc`: an IPMI BMC for one lab node, from OpenIPMI's `ipmi_sim`, whose chassis power
//! control switches that node's "machine" (the node's `hapair run`) off and on, for tests that
//! fence with the real `fence_ipmilan` (SPEC §7.4, issue 22).
//!
//! Wiring: each BMC lives in a namespace of its own (a BMC is powered apart from its PC), with
//! its management port `eth0` at 203.0.113.2/24. A veth cable joins it to `mgmt0`
//! (203.0.113.1/24) in the namespace that fences through it: the peer node's. So each node
//! reaches its peer's BMC at the same address, 203.0.113.2, over a path of its own, and the
//! pair can share one `fence` line (board/pc-pair/ipmi.conf wires two PCs the same way).
//!
//! Power: `ipmi_sim` runs `power.sh` as its `startcmd` when it starts (`startnow`) and at
//! every power on; a power off is SIGTERM to it. `power.sh` runs the machine's argv in the
//! node's namespace and writes its pid to `machine.pid` (so the test always knows the current
//! daemon's pid: a reset starts a new one); at power off it SIGKILLs everything in that
//! namespace (a power loss), runs the test's power-off lines, and appends `power-off STAMP`
//! to `power.log`, whose `power-on STAMP pid PID` lines record each start. STAMP is
//! CLOCK_BOOTTIME in ns (`stamp`, as tests/daemon/daemon_spec.rs stamps its marks; `uptime_ns`).
//! The configuration templates are in tests/fixtures/bmc/.
//!
//! Cleanup, on drop and also when the test panics: `ipmi_sim` (our child), then `power.sh`
//! and the machine by the pids they wrote (each checked against its command line first), then
//! the BMC's namespace with whatever is left in it. The node's namespace is the caller's.
//!
//! Not here: the lab (`lab::Lab`), the hapair configuration, any assertion on the daemons.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use super::netns::Netns;

/// The BMC's address on its management port, as the fencing node reaches it.
pub const ADDR: &str = "203.0.113.2";
/// The fencing node's end of the management cable.
pub const PORT_CIDR: &str = "203.0.113.1/24";
/// The name of that end in the fencing node's namespace.
pub const PORT_DEV: &str = "mgmt0";
/// The tools a BMC test needs: the simulator, the agent and the client it drives.
pub const TOOLS: [&str; 3] = ["/usr/bin/ipmi_sim", "/usr/sbin/fence_ipmilan", "/usr/bin/ipmitool"];

const LAN_CONF: &str = include_str!("../fixtures/bmc/lan.conf");
const EMU: &str = include_str!("../fixtures/bmc/bmc.emu");
const POWER_SH: &str = include_str!("../fixtures/bmc/power.sh");

/// `stamp`: prints CLOCK_BOOTTIME in nanoseconds (the system's python3: a version manager's
/// shim on PATH takes ten times longer to start).
pub const STAMP_SH: &str = r#"#!/bin/sh
py=/usr/bin/python3
[ -x "$py" ] || py=python3
exec "$py" -S -c 'import time; print(time.clock_gettime_ns(time.CLOCK_BOOTTIME))'
"#;

/// Whether every tool in `TOOLS` is installed. A missing one fails the test under `CI=true`
/// (scripts/test.sh installs them), and elsewhere is reported so the caller can skip.
pub fn tools_present() -> bool {
    let missing: Vec<&str> = TOOLS.iter().copied().filter(|t| !Path::new(t).exists()).collect();
    if missing.is_empty() {
        return true;
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let what = format!(
        "{} missing (apt-get install openipmi fence-agents ipmitool; scripts/test.sh does)",
        missing.join(", ")
    );
    assert!(!ci, "{what} under CI=true");
    eprintln!("skipped: {what}");
    false
}

pub use super::marks::uptime_ns;

/// What one BMC controls and who reaches it.
pub struct Spec<'a> {
    /// The node's name (`alpha`): the BMC is `NAME-bmc`, its files in `DIR/bmc-NAME/`.
    pub node: &'a str,
    /// The node's namespace: the machine runs there, and a power off empties it.
    pub node_ns: &'a str,
    /// The namespace that gets `mgmt0`, cabled to this BMC (the peer node's).
    pub reached_from: &'a str,
    /// The directory the BMC's own directory is made in.
    pub dir: &'a Path,
    /// The BMC's administrator and password.
    pub user: &'a str,
    pub password: &'a str,
    /// The machine: an argv run in `node_ns` while the power is on (output to `machine.log`).
    pub machine: &'a [&'a str],
    /// The environment added for `ipmi_sim`, which `power.sh` and the machine inherit
    /// (e.g. `RUST_LOG`).
    pub env: &'a [(&'a str, &'a str)],
    /// Shell lines `power.sh` runs after a power loss killed the machine (e.g. remove an
    /// address the daemon held: the kernel keeps it, a powered-off PC does not).
    pub power_off: &'a str,
}

/// One `power.log` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PowerEvent {
    /// On (the machine started) or off (it was killed).
    pub on: bool,
    /// Its stamp, CLOCK_BOOTTIME ns.
    pub at_ns: u64,
}

/// A running BMC; powered off and removed on drop.
pub struct Bmc {
    node: String,
    dir: PathBuf,
    reached_from: String,
    user: String,
    /// The machine's program (`argv[0]`), to tell its pid from a reused one.
    machine: String,
    sim: Option<Child>,
    /// Dropped last: deleting it kills what is left inside.
    ns: Netns,
}

impl Bmc {
    /// Writes the BMC's files, cables its port to `spec.reached_from`, starts `ipmi_sim`
    /// (which powers the machine on) and waits until the BMC answers over the LAN that the
    /// power is on.
    pub fn start(spec: &Spec) -> Bmc {
        assert!(!spec.machine.is_empty(), "{}: no machine to power", spec.node);
        let dir = spec.dir.join(format!("bmc-{}", spec.node));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("state")).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let ns = Netns::new();
        let mut bmc = Bmc {
            node: spec.node.to_owned(),
            dir,
            reached_from: spec.reached_from.to_owned(),
            user: spec.user.to_owned(),
            machine: spec.machine[0].to_owned(),
            sim: None,
            ns,
        };
        bmc.write_files(spec);
        bmc.cable();
        bmc.spawn_sim(spec.env);
        let powered = super::wait_until(Duration::from_secs(10), || bmc.machine_pid().is_some());
        assert!(powered, "{}: the machine did not power on:\n{}", bmc.name(), bmc.log());
        let answers =
            super::wait_until(Duration::from_secs(10), || bmc.power_status() == Some(true));
        assert!(answers, "{}: no `power is on` over the LAN:\n{}", bmc.name(), bmc.log());
        bmc
    }

    /// `NODE-bmc`.
    pub fn name(&self) -> String {
        format!("{}-bmc", self.node)
    }

    /// The BMC's directory (lan.conf, power.sh, power.log, machine.log, sim.log, ...).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The pid of the machine (the node's daemon) while the power is on and it runs.
    pub fn machine_pid(&self) -> Option<i32> {
        let pid: i32 =
            fs::read_to_string(self.dir.join("machine.pid")).ok()?.trim().parse().ok()?;
        alive(pid).then_some(pid)
    }

    /// Every power on and off so far, in order.
    pub fn power_events(&self) -> Vec<PowerEvent> {
        let text = fs::read_to_string(self.dir.join("power.log")).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                let on = match w.next()? {
                    "power-on" => true,
                    "power-off" => false,
                    _ => return None,
                };
                Some(PowerEvent { on, at_ns: w.next()?.parse().ok()? })
            })
            .collect()
    }

    /// The machine's output (the daemon's log) across all its power-ons.
    pub fn machine_log(&self) -> String {
        fs::read_to_string(self.dir.join("machine.log")).unwrap_or_default()
    }

    /// The BMC's log: its power log and what `ipmi_sim` printed.
    pub fn log(&self) -> String {
        let read = |f: &str| fs::read_to_string(self.dir.join(f)).unwrap_or_default();
        format!("power.log:\n{}ipmi_sim:\n{}", read("power.log"), read("sim.log"))
    }

    /// `ipmitool ... chassis power status` from `reached_from`: `Some(on)`, or `None` when the
    /// BMC does not answer.
    pub fn power_status(&self) -> Option<bool> {
        let out = self.ipmitool(&["chassis", "power", "status"]);
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return None;
        }
        Some(text.contains("is on"))
    }

    /// Runs `ipmitool -I lanplus` against this BMC from `reached_from`, the password read
    /// from a file (`-f`), never from the command line.
    pub fn ipmitool(&self, args: &[&str]) -> Output {
        let password = self.dir.join("password");
        Command::new("ip")
            .args(["netns", "exec", &self.reached_from, "ipmitool", "-I", "lanplus", "-C", "3"])
            .args(["-H", ADDR, "-U", &self.user, "-N", "1", "-R", "2", "-f"])
            .arg(&password)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("ipmitool: {e}"))
    }

    fn write_files(&self, spec: &Spec) {
        let d = self.dir.display().to_string();
        let write = |file: &str, text: &str, mode: u32| {
            let path = self.dir.join(file);
            fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            fs::set_permissions(&path, fs::Permissions::from_mode(mode))
                .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
        };
        // A GUID of 32 hex digits, different for each node.
        let guid: String = format!("{:0<32}", hex(spec.node.as_bytes())).chars().take(32).collect();
        let lan = LAN_CONF
            .replace("@NAME@", &self.name())
            .replace("@ADDR@", ADDR)
            .replace("@GUID@", &guid)
            .replace("@POWER@", &format!("{d}/power.sh"))
            .replace("@USER@", spec.user)
            .replace("@PASSWORD@", spec.password);
        write("lan.conf", &lan, 0o600);
        write("bmc.emu", EMU, 0o644);
        write("password", &format!("{}\n", spec.password), 0o600);
        write("stamp", STAMP_SH, 0o755);
        let machine: Vec<String> = spec.machine.iter().map(|w| quote(w)).collect();
        let power = POWER_SH
            .replace("@DIR@", &quote(&d))
            .replace("@NS@", &quote(spec.node_ns))
            .replace("@MACHINE@", &machine.join(" "))
            .replace("@POWER_OFF@", spec.power_off);
        write("power.sh", &power, 0o755);
    }

    /// The management cable: `eth0` here, `mgmt0` in `reached_from`.
    fn cable(&self) {
        let far = self.reached_from.as_str();
        self.ns
            .ip(&["link", "add", "eth0", "type", "veth", "peer", "name", PORT_DEV, "netns", far]);
        self.ns.ip(&["addr", "add", &format!("{ADDR}/24"), "dev", "eth0"]);
        self.ns.ip(&["link", "set", "eth0", "up"]);
        super::cmd(&["ip", "-n", far, "addr", "add", PORT_CIDR, "dev", PORT_DEV]);
        super::cmd(&["ip", "-n", far, "link", "set", PORT_DEV, "up"]);
    }

    fn spawn_sim(&mut self, env: &[(&str, &str)]) {
        let log = fs::File::create(self.dir.join("sim.log")).expect("sim.log");
        let err = log.try_clone().expect("sim.log");
        // `ip netns exec` enters the namespace and execs: the child's pid is ipmi_sim's.
        // `-n`: no console on stdin and stdout; setup errors still go to stderr.
        let child = Command::new("ip")
            .args(["netns", "exec", self.ns.name(), "ipmi_sim", "-n", "-c", "lan.conf"])
            .args(["-f", "bmc.emu", "-s", "state"])
            .current_dir(&self.dir)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("start ipmi_sim: {e}"));
        self.sim = Some(child);
    }

    /// SIGKILL to the pid in `file` when its command line holds `expect` (the pid was not
    /// reused).
    fn kill_recorded(&self, file: &str, expect: &str) {
        let Ok(text) = fs::read_to_string(self.dir.join(file)) else { return };
        let Ok(pid) = text.trim().parse::<i32>() else { return };
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(expect) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

impl Drop for Bmc {
    fn drop(&mut self) {
        // First the simulator, so that nothing powers the machine on again.
        if let Some(mut sim) = self.sim.take() {
            let _ = sim.kill();
            let _ = sim.wait();
        }
        let power = self.dir.join("power.sh").display().to_string();
        self.kill_recorded("power.pid", &power);
        let machine = self.machine.clone();
        self.kill_recorded("machine.pid", &machine);
        if std::thread::panicking() {
            eprintln!("---- {} ----\n{}", self.name(), self.log());
        }
    }
}

/// Whether `pid` exists and is not a zombie.
fn alive(pid: i32) -> bool {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state follows the command name in parentheses, which may hold spaces.
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next());
    state.is_some_and(|s| s != "Z")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `word` in single quotes for `sh` (a single quote inside becomes `'\''`).
fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}
