//! SPEC §7.4 with the real fence agent (issue 22): each node has an IPMI BMC (OpenIPMI's
//! `ipmi_sim`, `common::bmc`) whose chassis power control kills and restarts that node's
//! `hapair run`, and the pair fences through the real, unchanged `/usr/sbin/fence_ipmilan`
//! named in hapair's `fence` line, its password read by `--password-script` (never on a command
//! line of ours):
//!
//! 1. the active node hangs (SIGSTOP): the survivor fences it through its BMC (its power log
//!    shows the power off and on), then takes over; the group never ran on both nodes, and
//!    the fenced node boots again (a new daemon) into standby, and the two hear each other
//!    again (the survivor once took the rebooted node's new run for the fenced one);
//! 2. a full partition with both nodes alive (every heartbeat medium cut, the management
//!    cables to the BMCs intact): the node that does not own the group waits `fence_delay`,
//!    then fences: exactly one fence, one node holding the group;
//! 3. after 2, the fenced node comes back still partitioned: it waits for its peer (`status`
//!    says so) and fences nobody; the links restored, it rejoins as standby (or, the survivor
//!    powered off for good, `hapair takeover --force` makes it take the group, no fence);
//! 4. both nodes powered on (first starts) into a partition: the home node fences, the other
//!    waits `fence_delay` and is powered off first: one fence at most, one owner;
//! 5. a fence that fails (the agent has a wrong password): `status` shows the fence's last
//!    result and the agent's words, and the daemon's log carries them;
//! 6. board/pc-pair/ipmi.conf, the same wiring on two PCs, passes `check` on both nodes and
//!    exports to Pacemaker as a stonith device per node (no BMC needed).
//!
//! Wiring (`common::bmc`): each node's `mgmt0` is cabled to its peer's BMC, which answers at
//! 203.0.113.2 on every cable, so both nodes share one `fence` line, as on the PC pair
//! (board/pc-pair/ipmi.conf). `ipmi_sim` offers no cipher suite list, so the agent is given
//! `--cipher=3` (without it ipmitool waits 10 s for that list before every command).
//!
//! Evidence is stamped, as in tests/daemon/daemon_spec.rs: `res.sh` appends `NODE start|stop NAME
//! STAMP` to `marks` (a start before anything starts, a stop after all stopped), a power off
//! appends `NODE stop * STAMP power-off` (a power loss ends every run of the node), the fence
//! line's `fence-stamp` appends `NODE fence PEER STAMP` as it execs the real agent, the notify
//! script appends `NODE EVENT STAMP DETAIL` to `notify.log`, and the BMCs their `power.log`;
//! STAMP is CLOCK_BOOTTIME in ns for all of them and the test. Each test prints its timeline
//! (`--nocapture`). Needs root, ipmi_sim, fence_ipmilan and ipmitool (scripts/test.sh
//! installs them; missing under `CI=true` is a failure, elsewhere a skip).
//!
//! `fence_delay 3s`: more than the agent takes to have `ipmi_sim` power a node off (up to
//! 1.7 s here: the agent's start, then the simulator's one-second tick) plus a keepalive, as
//! README asks. Not here: the QEMU pair (`ipmi-bmc-extern`), fencing by scripts of our own
//! (tests/daemon/daemon_spec.rs).

mod common;

use common::lab::{THREE_MEDIA, VIP};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::bmc::{self, Bmc};
use common::daemon::{HAPAIR, admin_command};
use common::lab::{Lab, Node};
use common::marks::{self, Mark, ms, overlaps, uptime_ns};

const ALPHA: usize = 0;
const BETA: usize = 1;
const NAMES: [&str; 2] = ["alpha", "beta"];
/// Start-up: the lab, both BMCs, initdead and the first start, on a loaded 2-core machine.
const START: Duration = Duration::from_secs(30);
/// A fence and a takeover: deadtime, the agent's power off, wait, power on and wait (about
/// 5 s with its defaults), the start of the group; with room to spare.
const FAILOVER: Duration = Duration::from_secs(30);
/// How often the daemons are asked (tests/daemon/daemon_spec.rs `POLL`: faster asking makes a
/// daemon see stalls of its own).
const POLL: Duration = Duration::from_millis(100);
const TIMINGS: &str = "keepalive 100ms\ndeadtime 1s\ninitdead 3s\nfence_delay 3s";
/// The BMCs' administrator.
const BMC_USER: &str = "admin";
/// The BMCs' password.
const BMC_PASSWORD: &str = "s3cret-of-the-bmc";

/// `res.sh start|stop|monitor NAME`: the exec resource; it runs while `DIR/NODE.NAME.running`
/// exists.
const RES_SH: &str = r#"#!/bin/sh
d=@DIR@
run="$d/$HAPAIR_NODE.$2.running"
case "$1" in
start) echo "$HAPAIR_NODE start $2 $("$d/stamp")" >> "$d/marks"; touch "$run" ;;
stop) rm -f "$run"; echo "$HAPAIR_NODE stop $2 $("$d/stamp")" >> "$d/marks" ;;
monitor) test -e "$run" ;;
*) exit 2 ;;
esac
"#;

/// `notify.sh EVENT NODE DETAIL`: appends `NODE EVENT STAMP DETAIL` to `DIR/notify.log`.
const NOTIFY_SH: &str = r#"#!/bin/sh
echo "$2 $1 $(@DIR@/stamp) $3" >> @DIR@/notify.log
"#;

/// `fence-stamp AGENT ARGS...`: stamps `FENCER fence PEER STAMP` into `marks`, then execs the
/// agent with its arguments and stdin: the fence line runs the real agent, unchanged.
const FENCE_STAMP_SH: &str = r#"#!/bin/sh
me=alpha
[ "$HAPAIR_PEER" = alpha ] && me=beta
echo "$me fence $HAPAIR_PEER $(@DIR@/stamp)" >> @DIR@/marks
exec "$@"
"#;

/// What a power loss leaves behind on node @NODE@ and takes away: the VIP (the kernel keeps
/// an address of a dead process) and the resource's run.
const POWER_OFF: &str = r#"    ip -n @NS@ addr del 192.0.2.100/24 dev lan0 2> /dev/null
    rm -f @DIR@/@NODE@.*.running
    echo "@NODE@ stop * $(@DIR@/stamp) power-off" >> @DIR@/marks"#;

/// The pair's configuration: `media`, the client as ping node, home alpha, the VIP and one
/// exec resource, and the fence agent against the peer's BMC.
fn conf(media: &str) -> String {
    format!(
        "node alpha\nnode beta\n{TIMINGS}\nauthkey /etc/hapair/authkey\n{media}\n\
         ping 192.0.2.10\nnotify @DIR@/notify.sh\nhome alpha\nmonitor_interval 1s\n\
         realtime on priority 10\nfence @DIR@/fence-stamp {}\n\
         resource ip {VIP}/24 dev lan0 garp 1\n\
         resource exec r1 start=\"@DIR@/res.sh start r1\" stop=\"@DIR@/res.sh stop r1\" \
         monitor=\"@DIR@/res.sh monitor r1\" timeout 10s\n",
        fence_argv().join(" ")
    )
}

/// The fence command: the agent against the peer's BMC, the password from a script.
fn fence_argv() -> Vec<String> {
    let mut argv = vec![
        "/usr/sbin/fence_ipmilan".to_owned(),
        format!("--ip={}", bmc::ADDR),
        format!("--username={BMC_USER}"),
    ];
    argv.extend(
        ["--password-script=@DIR@/bmc-password", "--lanplus", "--cipher=3"].map(String::from),
    );
    argv
}

/// A lab whose two nodes are powered by their BMCs.
struct Rig {
    /// Dropped first: the simulators, then the machines (the daemons).
    bmcs: Vec<Bmc>,
    dir: PathBuf,
    conf: PathBuf,
    cmdlines: [PathBuf; 2],
    /// Dropped last.
    lab: Lab,
}

impl Rig {
    /// Brings up lab `tag`, writes the files (`password` in the agent's password file), and
    /// powers both nodes on through their BMCs; `None` when the tools are missing (outside
    /// CI).
    fn new(tag: char, media: &str, password: &str) -> Option<Rig> {
        Rig::new_after(tag, media, password, |_| {})
    }

    /// `new`, with `before_power` done to the lab before the BMCs power the nodes on.
    fn new_after(
        tag: char,
        media: &str,
        password: &str,
        before_power: impl FnOnce(&Lab),
    ) -> Option<Rig> {
        if !bmc::tools_present() {
            return None;
        }
        let lab = Lab::up(tag);
        before_power(&lab);
        let dir = PathBuf::from(lab.dir());
        let d = dir.display().to_string();
        let write = |file: &str, text: &str, mode: u32| {
            let path = dir.join(file);
            fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            fs::set_permissions(&path, fs::Permissions::from_mode(mode))
                .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
            path
        };
        let key = Command::new(HAPAIR).arg("keygen").output().expect("hapair keygen");
        assert!(key.status.success(), "hapair keygen failed");
        write("authkey", &String::from_utf8_lossy(&key.stdout), 0o600);
        write("stamp", bmc::STAMP_SH, 0o755);
        write("res.sh", &RES_SH.replace("@DIR@", &d), 0o755);
        write("notify.sh", &NOTIFY_SH.replace("@DIR@", &d), 0o755);
        write("fence-stamp", &FENCE_STAMP_SH.replace("@DIR@", &d), 0o755);
        // The agent runs this through a shell and reads the password from its stdout; both
        // BMCs have the same one, so the shared file serves both nodes.
        write("bmc-password", "#!/bin/sh\ncat \"$(dirname \"$0\")/bmc-password.txt\"\n", 0o700);
        write("bmc-password.txt", &format!("{password}\n"), 0o600);
        let conf = write("hapair.conf", &conf(media).replace("@DIR@", &d), 0o644);
        let cmdlines = [ALPHA, BETA].map(|i| {
            let (name, serial) = (NAMES[i], lab.tty(lab_node(i)));
            let line = format!(
                "ro quiet hapair.node={name} hapair.serial={serial} \
                 hapair.control={d}/{name}.sock hapair.statedir={d}/{name} \
                 hapair.authkey={d}/authkey\n"
            );
            write(&format!("{name}.cmdline"), &line, 0o644)
        });
        let mut rig = Rig { bmcs: Vec::new(), dir, conf, cmdlines, lab };
        for i in [ALPHA, BETA] {
            let bmc = rig.start_bmc(i);
            rig.bmcs.push(bmc);
        }
        Some(rig)
    }

    /// Node `i`'s BMC, cabled to its peer, with `hapair run` as its machine; powers it on.
    fn start_bmc(&self, i: usize) -> Bmc {
        let (d, name) = (self.dir.display().to_string(), NAMES[i]);
        let ns = self.lab.ns(lab_node(i));
        let conf = self.conf.display().to_string();
        let cmdline = self.cmdlines[i].display().to_string();
        let power_off = POWER_OFF.replace("@NS@", ns).replace("@DIR@", &d).replace("@NODE@", name);
        // The BMC's own password: what the test gave, not what the agent will read (a test
        // may make those differ).
        Bmc::start(&bmc::Spec {
            node: name,
            node_ns: ns,
            reached_from: self.lab.ns(lab_node(1 - i)),
            dir: &self.dir,
            user: BMC_USER,
            password: BMC_PASSWORD,
            machine: &[HAPAIR, "run", "-c", &conf, "--cmdline", &cmdline],
            env: &[("RUST_LOG", "debug")],
            power_off: &power_off,
        })
    }

    /// Node `i`'s `status --json`, or `None` while it does not answer.
    fn status(&self, i: usize) -> Option<serde_json::Value> {
        let out = admin_command(&self.conf, &self.cmdlines[i], &["status", "--json"]);
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// Node `i`'s group state, or "" while it does not answer.
    fn state(&self, i: usize) -> String {
        self.status(i).and_then(|s| s["state"].as_str().map(str::to_owned)).unwrap_or_default()
    }

    /// Waits until node `i` reports `state`; fails naming what it saw and what its log says
    /// about fencing.
    fn wait_state(&self, i: usize, state: &str, timeout: Duration) {
        let mut last = String::new();
        let ok = poll_until(timeout, || {
            last = self.state(i);
            last == state
        });
        if !ok {
            let log = self.bmcs[i].machine_log();
            let fence: Vec<&str> = log.lines().filter(|l| l.contains("fenc")).collect();
            let tail = &fence[fence.len().saturating_sub(8)..];
            panic!(
                "{} not {state} within {timeout:?}: last {last:?}; its fence log lines:\n{}\n\
                 the agent's `--action=status` from {} says: {}",
                NAMES[i],
                tail.join("\n"),
                NAMES[i],
                self.agent_status(i)
            );
        }
    }

    /// What the fence agent of node `i` says about the peer's BMC (`--action=status`), for
    /// failure messages: hapair logs a failed fence's exit code, not the agent's words.
    fn agent_status(&self, i: usize) -> String {
        let d = self.dir.display().to_string();
        let mut argv: Vec<String> = fence_argv().iter().map(|w| w.replace("@DIR@", &d)).collect();
        argv.push("--action=status".into());
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let out = common::exec_in(self.lab.ns(lab_node(i)), &argv);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let keep: Vec<&str> =
            text.lines().filter(|l| !l.trim().is_empty() && !l.contains("pipes")).collect();
        format!("{} ({})", keep.join(" / "), out.status)
    }

    /// Alpha (home) active, beta standby, each hearing the other.
    fn settle(&self) {
        self.wait_state(ALPHA, "active", START);
        self.wait_state(BETA, "standby", START);
        let both = poll_until(START, || {
            [ALPHA, BETA]
                .iter()
                .all(|&i| self.status(i).is_some_and(|s| s["peer"]["alive"] == true))
        });
        assert!(both, "the nodes do not hear each other");
    }

    /// Every line of the marks file, in the order written.
    fn marks(&self) -> Vec<Mark> {
        marks::read(&self.dir.join("marks"))
    }

    /// Stamps of node `i`'s notify events called `event`.
    fn notified(&self, i: usize, event: &str) -> Vec<u64> {
        marks::notified(&self.dir.join("notify.log"), NAMES[i], event)
    }

    /// Whether the VIP is on node `i`'s lan0.
    fn has_vip(&self, i: usize) -> bool {
        let ns = self.lab.ns(lab_node(i));
        let out = common::exec_in(ns, &["ip", "-br", "addr", "show", "dev", "lan0"]);
        String::from_utf8_lossy(&out.stdout).contains(&format!("{VIP}/"))
    }

    /// Node `i`'s BMC power events at or after `since`.
    fn power_since(&self, i: usize, since: u64) -> Vec<bmc::PowerEvent> {
        self.bmcs[i].power_events().into_iter().filter(|e| e.at_ns >= since).collect()
    }

    /// The timeline from `t0`: every mark, notify line and power event at or after it.
    fn timeline(&self, t0: u64, title: &str) -> String {
        let mut rows: Vec<(u64, String)> = Vec::new();
        for m in self.marks().into_iter().filter(|m| m.at_ns >= t0) {
            let what = if m.name == "*" {
                "power lost: every run ended".to_owned()
            } else if m.event == "fence" {
                format!("fence command starts (fence_ipmilan against {}'s BMC)", m.name)
            } else {
                format!("{} {}", m.event, m.name)
            };
            rows.push((m.at_ns, format!("{}: {what}", m.node)));
        }
        let notify = fs::read_to_string(self.dir.join("notify.log")).unwrap_or_default();
        for l in notify.lines() {
            let w: Vec<&str> = l.split_whitespace().collect();
            let Some(at) = w.get(2).and_then(|t| t.parse::<u64>().ok()) else { continue };
            if at >= t0 && w.len() >= 2 {
                rows.push((at, format!("{}: notify {} {}", w[0], w[1], w[3..].join(" "))));
            }
        }
        for i in [ALPHA, BETA] {
            for e in self.power_since(i, t0) {
                let what = if e.on { "power on" } else { "power off" };
                rows.push((e.at_ns, format!("{}: {what}", self.bmcs[i].name())));
            }
        }
        rows.sort_by_key(|r| r.0);
        let mut out = format!("{title}\n  {:>8}  {}\n", "ms", "event");
        out.push_str(&format!("  {:>8}  fault\n", 0));
        for (at, what) in rows {
            out.push_str(&format!("  {:>8}  {what}\n", (at - t0) / 1_000_000));
        }
        out
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for (i, b) in self.bmcs.iter().enumerate() {
                let log = b.machine_log();
                let keep: Vec<&str> = log
                    .lines()
                    .filter(|l| !l.starts_with("[DEBUG") && !l.starts_with("[TRACE"))
                    .collect();
                let tail = &keep[keep.len().saturating_sub(60)..];
                eprintln!("---- {} log (info and up, last {}) ----", NAMES[i], tail.len());
                eprintln!("{}", tail.join("\n"));
            }
            for f in ["marks", "notify.log"] {
                let text = fs::read_to_string(self.dir.join(f)).unwrap_or_default();
                eprintln!("---- {f} ----\n{text}");
            }
        }
    }
}

fn lab_node(i: usize) -> Node {
    if i == ALPHA { Node::Alpha } else { Node::Beta }
}

/// Polls `cond` every `POLL` until it holds (true) or `timeout` has passed (false).
fn poll_until(timeout: Duration, cond: impl FnMut() -> bool) -> bool {
    common::wait_every(POLL, timeout, cond)
}

// --- 1. the active node hangs ----------------------------------------------------------------

/// What scenario 1 measured, in CLOCK_BOOTTIME ns.
struct Hang {
    /// The SIGSTOP.
    t0: u64,
    /// The hung daemon's pid.
    hung: i32,
    /// Beta's fence command started (after deadtime and `fence_delay`).
    fence_start: u64,
    /// Alpha's BMC powered it off, then on.
    off: u64,
    on: u64,
    /// Beta's `fenced` notify, and its first start after the fault.
    fenced: u64,
    first_start: u64,
}

/// Scenario 1 up to the takeover: SIGSTOP to the active node's daemon; the survivor fences it
/// through its BMC (power off, then on), then takes the group, which never ran on both.
fn hang_and_fence(rig: &Rig) -> Hang {
    rig.settle();
    let hung = rig.bmcs[ALPHA].machine_pid().expect("alpha's daemon runs");
    let t0 = uptime_ns();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(hung), nix::sys::signal::Signal::SIGSTOP)
        .expect("SIGSTOP alpha's daemon");

    rig.wait_state(BETA, "active", FAILOVER);
    // The BMC's power log: the hung node was powered off, then on, after the fault.
    let power = rig.power_since(ALPHA, t0);
    let on_off: Vec<bool> = power.iter().map(|e| e.on).collect();
    assert!(on_off.starts_with(&[false, true]), "alpha's BMC: off, then on: {power:?}");
    let (off, on) = (power[0].at_ns, power[1].at_ns);
    assert!(!std::path::Path::new(&format!("/proc/{hung}")).exists(), "the hung daemon is gone");
    // The fence preceded the takeover: the survivor's first start after the fault came after
    // the power off, and its `fenced` after the power on (the agent checks the power came back).
    let marks = rig.marks();
    let first = marks.iter().find(|m| m.node == "beta" && m.event == "start" && m.at_ns > t0);
    let first = first.unwrap_or_else(|| panic!("beta started nothing: {marks:?}"));
    assert!(first.at_ns > off, "beta started r1 before alpha's power off: {marks:?}");
    let fenced = rig.notified(BETA, "fenced").into_iter().find(|&t| t > t0);
    let fenced = fenced.unwrap_or_else(|| panic!("no `fenced` from beta"));
    assert!(fenced > on, "beta's fence returned before the power came back");
    let bad = overlaps(&marks);
    assert!(bad.is_empty(), "the group ran on both nodes at once: {bad:?}");
    assert!(rig.has_vip(BETA) && !rig.has_vip(ALPHA), "the VIP on beta only");
    let s = rig.status(BETA).expect("beta answers");
    assert_eq!(s["counters"]["fence_attempts"], 1, "one fence, no retry: {s}");
    let fence = marks.iter().find(|m| m.event == "fence" && m.at_ns > t0);
    let fence_start = fence.unwrap_or_else(|| panic!("no fence command: {marks:?}")).at_ns;
    // Beta does not own the group: it waited fence_delay (3 s) after deadtime (1 s).
    assert!(fence_start >= t0 + 3_900_000_000, "fence started too early: {marks:?}");
    assert!(fence_start < off, "the fence preceded the power off");
    Hang { t0, hung, fence_start, off, on, fenced, first_start: first.at_ns }
}

#[test]
fn a_hung_active_node_is_fenced_through_its_bmc_then_the_peer_takes_over() {
    let Some(rig) = Rig::new('i', THREE_MEDIA, BMC_PASSWORD) else { return };
    let h = hang_and_fence(&rig);
    // The fenced node booted again (a new daemon) and stays standby: it holds nothing.
    rig.wait_state(ALPHA, "standby", START);
    let back = rig.bmcs[ALPHA].machine_pid().expect("alpha's new daemon");
    assert_ne!(back, h.hung, "a new daemon after the power cycle");
    assert!(overlaps(&rig.marks()).is_empty(), "the group ran twice: {:?}", rig.marks());
    assert_eq!(rig.state(BETA), "active");
    // `status` shows the fence's result: the agent's own words.
    let s = rig.status(BETA).expect("beta answers");
    let last = &s["fence"]["last"];
    assert_eq!((&last["ok"], &last["status"]), (&true.into(), &"exit code 0".into()), "{s}");
    assert_eq!(s["fence"]["delay_ms"], 3000, "{s}");
    eprintln!("{}", rig.timeline(h.t0, "scenario 1: SIGSTOP of the active node (alpha)"));
    eprintln!(
        "scenario 1: fault -> fence start {} ms, power off {} ms, power on {} ms, beta fenced \
         {} ms, beta's first start {} ms; the agent said {}",
        ms(h.fence_start - h.t0),
        ms(h.off - h.t0),
        ms(h.on - h.t0),
        ms(h.fenced - h.t0),
        ms(h.first_start - h.t0),
        last["output"]
    );
}

/// After scenario 1 the pair is whole again: the agent's reboot powers the node on before it
/// returns, the survivor hears the new daemon meanwhile, and the fence's success makes safe
/// the run it was started against, not that new one (it once took the new run for the fenced
/// one and ignored it for good).
#[test]
fn a_node_fenced_by_a_reboot_is_heard_again_by_the_survivor() {
    let Some(rig) = Rig::new('k', THREE_MEDIA, BMC_PASSWORD) else { return };
    hang_and_fence(&rig);
    rig.wait_state(ALPHA, "standby", START);
    let rejoined = poll_until(START, || {
        [ALPHA, BETA].iter().all(|&i| rig.status(i).is_some_and(|s| s["peer"]["alive"] == true))
    });
    let peers = [ALPHA, BETA].map(|i| rig.status(i).map(|s| s["peer"].clone()));
    assert!(rejoined, "alpha, booted again, and beta do not hear each other: {peers:?}");
    let s = rig.status(ALPHA).expect("alpha answers");
    assert!(s["waits_for_peer"].is_null(), "alpha heard beta: no more waiting: {s}");
}

// --- 2. and 3. a full partition of two live nodes --------------------------------------------

/// No heartbeat on the LAN: cutting the serial line and the crossover cuts every link between
/// the nodes, while both still reach the client (their ping node) and, over their management
/// cables, each other's BMC.
const PARTITIONABLE: &str = "serial /dev/ttyS0\nucast xover0 198.51.100.1 198.51.100.2";

/// Cuts every heartbeat medium between the nodes; returns when.
fn partition(rig: &Rig) -> u64 {
    let t0 = uptime_ns();
    rig.lab.cut("serial", Node::Alpha);
    rig.lab.cut("xover", Node::Alpha);
    t0
}

/// Power offs of node `i`'s machine since `t0`.
fn offs(rig: &Rig, i: usize, t0: u64) -> usize {
    rig.power_since(i, t0).iter().filter(|e| !e.on).count()
}

/// The nodes holding the group now.
fn holders(rig: &Rig) -> Vec<usize> {
    [ALPHA, BETA]
        .into_iter()
        .filter(|&i| matches!(rig.state(i).as_str(), "active" | "starting"))
        .collect()
}

/// Scenario 2 up to the fenced node's return: alpha (home) runs the group, beta is standby;
/// every medium fails. Beta, which does not own the group, waits `fence_delay` and fences
/// alpha (alpha, holding the group, fences nobody); beta takes over. Alpha's machine powers on
/// again into the partition, after an unclean stop: its daemon waits for its peer, and says
/// so. Returns the partition's stamp.
fn partition_and_fence(rig: &Rig) -> u64 {
    rig.settle();
    let t0 = partition(rig);
    rig.wait_state(BETA, "active", FAILOVER);
    let back =
        poll_until(START, || rig.status(ALPHA).is_some_and(|s| s["waits_for_peer"].is_string()));
    let s = rig.status(ALPHA);
    assert!(back, "alpha back in the partition, waiting for its peer: {s:?}");
    t0
}

#[test]
fn a_partition_of_two_live_nodes_ends_in_one_fence_and_one_owner() {
    let Some(rig) = Rig::new('j', PARTITIONABLE, BMC_PASSWORD) else { return };
    let t0 = partition_and_fence(&rig);
    // Long enough for a fenced node to wait initdead and fence_delay and fence back, twice.
    let window = Duration::from_secs(20);
    std::thread::sleep(window);
    let timeline = rig.timeline(t0, "scenario 2: partition (serial and crossover cut)");
    eprintln!("{timeline}");
    assert_eq!(
        (offs(&rig, ALPHA, t0), offs(&rig, BETA, t0)),
        (1, 0),
        "one fence (of alpha, by beta) in {window:?} after the partition:\n{timeline}"
    );
    assert_eq!(holders(&rig), [BETA], "beta alone holds the group:\n{timeline}");
    let bad = overlaps(&rig.marks());
    assert!(bad.is_empty(), "the group ran on both nodes at once: {bad:?}");
    let fences: Vec<Mark> = rig.marks().into_iter().filter(|m| m.event == "fence").collect();
    assert_eq!(fences.len(), 1, "one fence command ran: {fences:?}");
    let s = rig.status(ALPHA).expect("alpha answers");
    assert_eq!(s["state"], "standby", "{s}");
    assert_eq!(s["counters"]["fence_attempts"], 0, "alpha fenced nobody: {s}");
}

/// Scenario 3: the fenced node comes back still partitioned and waits (fencing nobody, for
/// longer than initdead and fence_delay); when the links are restored it hears its peer and
/// rejoins as standby, and the survivor keeps the group.
#[test]
fn a_fenced_node_back_in_the_partition_waits_then_rejoins_as_standby() {
    let Some(rig) = Rig::new('m', PARTITIONABLE, BMC_PASSWORD) else { return };
    let t0 = partition_and_fence(&rig);
    std::thread::sleep(Duration::from_secs(10));
    let s = rig.status(ALPHA).expect("alpha answers");
    assert_eq!((&s["state"], &s["peer"]["alive"]), (&"standby".into(), &false.into()), "{s}");
    let why = s["waits_for_peer"].as_str().unwrap_or_default().to_owned();
    assert!(why.contains("takeover --force"), "{why}");
    assert_eq!(offs(&rig, BETA, t0), 0, "alpha fenced beta back");
    let restored = uptime_ns();
    rig.lab.restore("serial", Node::Alpha);
    rig.lab.restore("xover", Node::Alpha);
    let rejoined = poll_until(START, || {
        [ALPHA, BETA].iter().all(|&i| rig.status(i).is_some_and(|s| s["peer"]["alive"] == true))
    });
    let timeline = rig.timeline(t0, "scenario 3: partition, alpha fenced and back, links restored");
    eprintln!("{timeline}");
    assert!(rejoined, "the two hear each other again:\n{timeline}");
    let s = rig.status(ALPHA).expect("alpha answers");
    assert_eq!((&s["state"], &s["waits_for_peer"]), (&"standby".into(), &().into()), "{s}");
    assert_eq!(holders(&rig), [BETA], "beta keeps the group:\n{timeline}");
    assert_eq!((offs(&rig, ALPHA, t0), offs(&rig, BETA, t0)), (1, 0), "{timeline}");
    assert!(overlaps(&rig.marks()).is_empty(), "the group ran twice: {:?}", rig.marks());
    eprintln!("scenario 3: links restored at {} ms", ms(restored - t0));
}

/// After scenario 2 the survivor (beta) is powered off for good through its BMC while alpha,
/// back in the partition, waits for it. `hapair takeover --force` on alpha, the operator
/// vouching that beta is down, ends the wait: alpha takes the group without a fence.
#[test]
fn takeover_force_on_a_waiting_node_whose_peer_is_off_takes_the_group_without_a_fence() {
    let Some(rig) = Rig::new('r', PARTITIONABLE, BMC_PASSWORD) else { return };
    let t0 = partition_and_fence(&rig);
    let off = rig.bmcs[BETA].ipmitool(&["chassis", "power", "off"]);
    assert!(off.status.success(), "power beta off: {}", String::from_utf8_lossy(&off.stderr));
    assert!(poll_until(START, || rig.bmcs[BETA].machine_pid().is_none()), "beta is off");
    let s = rig.status(ALPHA).expect("alpha answers");
    assert!(s["waits_for_peer"].is_string(), "alpha still waits: {s}");
    let vouched = uptime_ns();
    let out = admin_command(&rig.conf, &rig.cmdlines[ALPHA], &["takeover", "--force"]);
    assert!(out.status.success(), "takeover --force: {}", String::from_utf8_lossy(&out.stderr));
    rig.wait_state(ALPHA, "active", FAILOVER);
    let timeline =
        rig.timeline(t0, "scenario 2, then beta off for good, takeover --force on alpha");
    eprintln!("{timeline}");
    let s = rig.status(ALPHA).expect("alpha answers");
    assert_eq!(s["counters"]["fence_attempts"], 0, "no fence: {s}");
    assert!(s["waits_for_peer"].is_null(), "{s}");
    assert!(overlaps(&rig.marks()).is_empty(), "the group ran twice: {:?}", rig.marks());
    let started = rig
        .marks()
        .into_iter()
        .find(|m| m.node == "alpha" && m.event == "start" && m.at_ns > vouched);
    let started = started.unwrap_or_else(|| panic!("alpha started nothing: {timeline}"));
    eprintln!("takeover --force: alpha's first start {} ms after it", ms(started.at_ns - vouched));
}

// --- 4. a cold start in a partition ---------------------------------------------------------

/// Scenario 4: both machines powered on (first starts, so no wait for the peer) with every
/// heartbeat medium already cut. After initdead alpha, the home node, fences at once; beta
/// would wait `fence_delay` and is powered off first. Beta comes back after an unclean stop
/// and waits: one fence, one owner.
#[test]
fn a_cold_start_in_a_partition_fences_at_most_once_and_one_node_owns_the_group() {
    let t0 = uptime_ns();
    let cut = |lab: &Lab| {
        lab.cut("serial", Node::Alpha);
        lab.cut("xover", Node::Alpha);
    };
    let Some(rig) = Rig::new_after('n', PARTITIONABLE, BMC_PASSWORD, cut) else { return };
    let owned = poll_until(START, || holders(&rig).len() == 1);
    assert!(owned, "a node takes the group");
    let window = Duration::from_secs(15);
    std::thread::sleep(window);
    let timeline = rig.timeline(t0, "scenario 4: both powered on into a partition");
    eprintln!("{timeline}");
    let fences = offs(&rig, ALPHA, t0 + 1) + offs(&rig, BETA, t0 + 1);
    assert!(fences <= 1, "at most one fence:\n{timeline}");
    assert_eq!(holders(&rig), [ALPHA], "one owner, the home node:\n{timeline}");
    assert!(overlaps(&rig.marks()).is_empty(), "the group ran twice: {:?}", rig.marks());
    let s = rig.status(BETA).expect("beta answers");
    assert_eq!(s["state"], "standby", "{s}");
}

// --- 5. a fence that fails ------------------------------------------------------------------

/// The agent's password is wrong: the fence of a hung active node fails and is retried, the
/// group is not taken, and `status` shows the last result with the agent's own words (the log
/// too).
#[test]
fn a_failed_fence_shows_its_result_and_the_agents_words() {
    let Some(rig) = Rig::new('q', THREE_MEDIA, "not-the-bmcs-password") else { return };
    rig.settle();
    let hung = rig.bmcs[ALPHA].machine_pid().expect("alpha's daemon runs");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(hung), nix::sys::signal::Signal::SIGSTOP)
        .expect("SIGSTOP alpha's daemon");
    let failed = poll_until(FAILOVER, || {
        rig.status(BETA).is_some_and(|s| s["fence"]["last"]["ok"] == false)
    });
    let s = rig.status(BETA).expect("beta answers");
    assert!(failed, "no failed fence in beta's status: {s}");
    let last = &s["fence"]["last"];
    assert_ne!(last["status"], "exit code 0", "{s}");
    assert!(!last["output"].as_str().unwrap_or_default().is_empty(), "the agent's words: {s}");
    assert_eq!(s["state"], "standby", "no takeover without a fence: {s}");
    let log = rig.bmcs[BETA].machine_log();
    let line = log.lines().find(|l| l.contains("fence command failed"));
    assert!(line.is_some_and(|l| l.contains(": ")), "the log names the failure: {line:?}");
    eprintln!(
        "a failed fence: status {} / {}; log: {}",
        last["status"],
        last["output"],
        line.unwrap_or("")
    );
}

// --- the board example ------------------------------------------------------------------------

/// board/pc-pair/ipmi.conf passes `hapair check` on both nodes with one digest (its one fence
/// line serves both), and its Pacemaker export is a stonith device per node without the
/// password.
#[test]
fn the_board_ipmi_example_passes_check_and_exports_a_stonith_device_per_node() {
    let dir = std::env::temp_dir().join(format!("hapair-ipmi-board-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("temp dir");
    let run = |args: &[&str], cmdline: &std::path::Path| {
        let conf = dir.join("ipmi.conf");
        let out = admin_command(&conf, cmdline, args);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "hapair {args:?}: {err}");
        (text, err)
    };
    // A copy, root's and 0644: `check` refuses a file others may write (SPEC §7.3).
    fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/board/pc-pair/ipmi.conf"),
        dir.join("ipmi.conf"),
    )
    .expect("copy ipmi.conf");
    fs::set_permissions(dir.join("ipmi.conf"), fs::Permissions::from_mode(0o644)).expect("chmod");
    let key = Command::new(HAPAIR).arg("keygen").output().expect("hapair keygen");
    fs::write(dir.join("authkey"), &key.stdout).expect("authkey");
    fs::set_permissions(dir.join("authkey"), fs::Permissions::from_mode(0o600)).expect("chmod");
    let mut digests = Vec::new();
    for node in NAMES {
        let board = fs::read_to_string(format!(
            "{}/board/pc-pair/{node}.cmdline",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("board cmdline");
        let cmdline = dir.join(format!("{node}.cmdline"));
        let line = format!("{} hapair.authkey={}\n", board.trim(), dir.join("authkey").display());
        fs::write(&cmdline, line).expect("cmdline");
        let (print, _) = run(&["check", "--print", "--offline"], &cmdline);
        assert!(print.contains("\nfence /usr/sbin/fence_ipmilan --ip=203.0.113.2 "), "{print}");
        digests
            .push(print.lines().next().unwrap_or_default().rsplit(' ').next().map(str::to_owned));
        if node == "alpha" {
            let (pcs, err) = run(&["export-pacemaker"], &cmdline);
            let stonith: Vec<&str> = pcs.lines().filter(|l| l.starts_with("pcs stonith")).collect();
            assert_eq!(stonith.len(), 2, "{pcs}");
            assert!(
                stonith[0].starts_with("pcs stonith create fence-alpha fence_ipmilan "),
                "{pcs}"
            );
            assert!(stonith[0].contains(" password_script=/etc/hapair/bmc-password "), "{pcs}");
            assert!(!err.contains("fence"), "the fence line converted: {err}");
        }
    }
    assert_eq!(digests[0], digests[1], "both nodes run the same pair-wide configuration");
    let _ = fs::remove_dir_all(&dir);
}
