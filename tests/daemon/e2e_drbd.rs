//! DRBD (SPEC §7.5), end to end in the namespace lab: two real `hapair run` daemons whose
//! group holds `resource drbd r0` (promoted first, demoted last) and an `exec` resource
//! `svc`, and what the daemons decide from the disk's state: a node whose disk is not
//! UpToDate never takes the group, the agent promotes on start, demotes on stop and refuses a
//! start on a stale disk, and `hapair drbd-fence-peer` gets DRBD's exit codes from the peer
//! over the heartbeat links. Needs root (CI is root).
//!
//! **A stand-in for DRBD.** No kernel module here: each daemon runs in a mount namespace of
//! its own where `/usr/local/sbin` (first on the agents' fixed `PATH` and on the daemon's) is
//! a directory of the lab holding a two-line `drbdadm` that runs tests/fixtures/drbd/drbdadm.sh
//! for that node (a `PATH` of the daemon's own would not do: every agent gets the fixed
//! `DEFAULT_PATH` of src/drivers/agents.rs, and the drbd agent finds `drbdadm` there). The
//! script (sh, util-linux's flock) keeps both nodes' role and disk and the replication link in
//! files, answers `sh-minor`, `role`, `dstate`, `primary`, `secondary` and `outdate` as DRBD
//! 8.4's drbdadm does (its output, its refusals), and rewrites each node's `/proc/drbd` text
//! (8.4's format), which that node's daemon reads through `HAPAIR_PROC_DRBD`. It logs every
//! call, and `svc` logs its starts and stops to the same file (`drbd/calls`), so that the
//! test reads their order. This tests hapair's side of the protocol; the real DRBD module and
//! drbd-utils are exercised by the QEMU pair.
//!
//! Not here: parsing `resource drbd` (tests/pure/config_drbd.rs), the judgements and the
//! exchange in detail (src/drbd.rs and src/drbd/outdate.rs unit tests), and timing figures.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::common::daemon::HAPAIR;
use crate::common::lab::Node;
use crate::common::pair::{NODES, Pair, Which};
use crate::common::{assert_soon, wait_until};

/// Generous: the machine may be busy building; how long a wait may take, not a bound.
const PATIENCE: Duration = Duration::from_secs(30);
/// How long a node is watched not doing something it must not do.
const QUIET: Duration = Duration::from_secs(3);
/// The daemons' `PATH`: the agents' own (src/drivers/agents.rs `DEFAULT_PATH`), so that the
/// daemon's `drbdadm sh-minor` and `drbdadm outdate` find the stand-in as the agent does.
const DAEMON_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A pair whose `drbdadm` is the stand-in, its state in `<lab dir>/drbd`.
struct DrbdPair {
    pair: Pair,
    /// `<lab dir>/drbd`: the stand-in's script, state, `/proc/drbd` texts and call log.
    drbd: PathBuf,
}

impl DrbdPair {
    /// A pair with `fence` (a `fence` line or nothing) whose r0 starts as `states` (alpha's,
    /// beta's: "ROLE DISK") on a replication link `link`; both daemons started, alpha first.
    fn start(tag: char, fence: &str, link: &str, states: [&str; 2]) -> DrbdPair {
        let pair = Pair::with_conf(tag, |lab| {
            let dir = lab.dir();
            let conf = PathBuf::from(&dir).join("hapair.conf");
            fs::write(&conf, conf_text(&dir, fence)).expect("config");
            conf
        });
        let drbd = pair.dir.join("drbd");
        fs::create_dir(&drbd).expect("drbd dir");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/drbd/drbdadm.sh");
        fs::copy(&script, drbd.join("drbdadm.sh")).expect("the stand-in");
        for (node, state) in NODES.into_iter().zip(states) {
            fs::write(drbd.join(format!("{}.state", node.as_str())), format!("{state}\n"))
                .expect("state");
        }
        fs::write(drbd.join("link"), format!("{link}\n")).expect("link");
        let mut this = DrbdPair { pair, drbd };
        // Writes both /proc/drbd texts.
        this.fake(Node::Alpha, &["_link", link]);
        for node in NODES {
            this.start_node(node);
        }
        this
    }

    /// Starts `node`'s daemon in a mount namespace of its own whose `/usr/local/sbin` holds
    /// the node's `drbdadm`.
    fn start_node(&mut self, node: Node) {
        let name = node.as_str();
        let sbin = self.drbd.join(format!("sbin-{name}"));
        if !sbin.exists() {
            fs::create_dir(&sbin).expect("sbin");
            let d = self.drbd.display();
            let drbdadm = sbin.join("drbdadm");
            fs::write(
                &drbdadm,
                format!("#!/bin/sh\nexec /bin/sh {d}/drbdadm.sh {d} {name} \"$@\"\n"),
            )
            .expect("drbdadm");
            fs::set_permissions(&drbdadm, fs::Permissions::from_mode(0o755)).expect("chmod");
            let proc = self.drbd.join(format!("proc-{name}"));
            let daemon = &mut self.pair.nodes[node.index()];
            daemon.env.push(("HAPAIR_PROC_DRBD".into(), proc.display().to_string()));
            daemon.env.push(("PATH".into(), DAEMON_PATH.into()));
            daemon.rust_log = "info";
        }
        // unshare(1) makes the new mount namespace private: the bind mount stays in it. The
        // shell execs `ip netns exec`, which execs the daemon: the pid is the daemon's.
        let mount = format!("mount --bind {} /usr/local/sbin && exec \"$@\"", sbin.display());
        let wrapper = ["unshare", "--mount", "sh", "-c", mount.as_str(), "sh"];
        let conf = self.pair.conf.clone();
        self.pair.nodes[node.index()].start_via(&conf, &wrapper);
    }

    /// Runs the stand-in as `node` with `args` (its test commands: `_set ROLE DISK`, `_link
    /// STATE`, `_freeze`, `_thaw`); asserts success.
    fn fake(&self, node: Node, args: &[&str]) {
        let out = Command::new("/bin/sh")
            .arg(self.drbd.join("drbdadm.sh"))
            .arg(&self.drbd)
            .arg(node.as_str())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("drbdadm.sh");
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// `node`'s role and disk in the stand-in ("Primary", "UpToDate").
    fn fake_state(&self, node: Node) -> (String, String) {
        let text = fs::read_to_string(self.drbd.join(format!("{}.state", node.as_str())))
            .expect("state file");
        let mut w = text.split_whitespace().map(str::to_owned);
        (w.next().unwrap_or_default(), w.next().unwrap_or_default())
    }

    /// The calls so far, "NODE ARGS -> EXIT" and "NODE svc start|stop", in order.
    fn calls(&self) -> Vec<String> {
        let text = fs::read_to_string(self.drbd.join("calls")).unwrap_or_default();
        text.lines().map(str::to_owned).collect()
    }

    /// Index of the first call equal to `line`, if any.
    fn call_at(&self, line: &str) -> Option<usize> {
        self.calls().iter().position(|c| c == line)
    }

    /// The `drbd` entry of r0 in `node`'s `status --json`, `Null` while it does not answer.
    fn drbd_status(&self, node: Node) -> serde_json::Value {
        let Some(status) = self.pair.status(node) else { return serde_json::Value::Null };
        let all = status["drbd"].as_array().cloned().unwrap_or_default();
        all.into_iter().find(|d| d["resource"] == "r0").unwrap_or_default()
    }

    /// Whether `svc` runs on `node` (its flag file exists).
    fn running(&self, node: Node) -> bool {
        self.pair.dir.join(format!("{}.svc", node.as_str())).exists()
    }

    /// Waits until the group runs on `on` alone: `on` active with r0 Primary and svc running,
    /// its peer standby with r0 Secondary and svc stopped, and each daemon has read its role
    /// from its `/proc/drbd` (what it answers the peer's fence-peer with).
    fn wait_group_on(&self, on: Node) {
        let off = on.other();
        let mut seen = String::new();
        let placed = wait_until(PATIENCE, || {
            let (a, b) = (self.pair.state(on), self.pair.state(off));
            let (ra, rb) = (self.fake_state(on).0, self.fake_state(off).0);
            let (da, db) = (self.drbd_status(on), self.drbd_status(off));
            seen = format!("{on:?} {a} {ra} {da}, {off:?} {b} {rb} {db}");
            a == "active"
                && b == "standby"
                && ra == "Primary"
                && rb == "Secondary"
                && da["role"] == "Primary"
                && db["role"] == "Secondary"
                && self.running(on)
                && !self.running(off)
        });
        assert!(placed, "the group not on {on:?} alone: {seen}; calls {:?}", self.calls());
    }

    /// `hapair drbd-fence-peer ARGS` for `node` with `env` added (DRBD runs it with
    /// `DRBD_RESOURCE`): its exit code and stderr.
    fn fence_peer(&self, node: Node, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
        let daemon = &self.pair.nodes[node.index()];
        let out: Output = Command::new(HAPAIR)
            .arg("drbd-fence-peer")
            .args(args)
            .arg("-c")
            .arg(&daemon.conf)
            .arg("--cmdline")
            .arg(&daemon.cmdline)
            .env_remove("DRBD_RESOURCE")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .expect("hapair drbd-fence-peer");
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

impl Drop for DrbdPair {
    /// On failure, the stand-in's log and state beside the daemons' logs (which `Pair`
    /// prints when it drops, after this).
    fn drop(&mut self) {
        if std::thread::panicking() {
            let read = |f: &str| fs::read_to_string(self.drbd.join(f)).unwrap_or_default();
            eprintln!("---- drbd/calls ----\n{}", read("calls"));
            for f in ["alpha.state", "beta.state", "link", "proc-alpha", "proc-beta"] {
                eprintln!("---- drbd/{f} ----\n{}", read(f));
            }
        }
    }
}

/// The pair's configuration: the lab's three media, home alpha, and one group of `drbd r0`
/// and `svc`, whose start and stop log to the stand-in's call log.
fn conf_text(dir: &str, fence: &str) -> String {
    let m = format!("{dir}/$HAPAIR_NODE.svc");
    let calls = format!("{dir}/drbd/calls");
    format!(
        "node alpha\nnode beta\nkeepalive 100ms\ndeadtime 500ms\ninitdead 2s\n\
         authkey /etc/hapair/authkey\nudpport 694\nserial /dev/ttyS0 baud 115200\n\
         ucast xover0 198.51.100.1 198.51.100.2\nbcast lan0\nhome alpha\nauto_failback off\n\
         monitor_interval 1s\n{fence}\nresource drbd r0\n\
         resource exec svc start=\"echo $HAPAIR_NODE svc start >> {calls}; touch {m}\" \
         stop=\"echo $HAPAIR_NODE svc stop >> {calls}; rm -f {m}\" monitor=\"test -e {m}\" \
         timeout 10s\n"
    )
}

/// `node`'s health reasons.
fn reasons(p: &DrbdPair, node: Node) -> Vec<String> {
    p.pair.health(node).1
}

/// Both healthy but beta, whose disk is Outdated (disconnected: it missed writes): alpha runs
/// the group, beta shows why it may not, and when alpha dies (fenced: the fence command
/// succeeds) beta does not take the group until its disk is UpToDate again; then it does, and
/// DRBD's fence-peer on beta hears that alpha was fenced (7).
#[test]
fn an_outdated_disk_never_takes_the_group_until_up_to_date() {
    let p = DrbdPair::start(
        'd',
        "fence /bin/true",
        "WFConnection",
        ["Secondary UpToDate", "Secondary Outdated"],
    );
    p.wait_group_on(Node::Alpha);
    assert_soon(PATIENCE, "beta's health naming its Outdated disk", || {
        reasons(&p, Node::Beta).iter().any(|r| r == "drbd r0 disk Outdated")
    });
    let d = p.drbd_status(Node::Beta);
    assert_eq!(
        (&d["disk"], &d["role"], &d["connection"]),
        (&"Outdated".into(), &"Secondary".into(), &"WFConnection".into()),
        "{d}"
    );
    assert_eq!(
        p.pair.health(Node::Alpha).0,
        Some(true),
        "alpha healthy: {:?}",
        reasons(&p, Node::Alpha)
    );
    let out = p.pair.admin(Node::Beta, &["takeover"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("health forbids it"), "takeover: {err}");

    p.pair.signal(Node::Alpha, Signal::SIGKILL);
    assert_soon(PATIENCE, "beta holding alpha dead", || {
        p.pair.status(Node::Beta).is_some_and(|s| s["peer"]["alive"] == false)
    });
    let took = wait_until(QUIET, || {
        p.pair.state(Node::Beta) == "active"
            || p.running(Node::Beta)
            || p.calls().iter().any(|c| c.starts_with("beta primary"))
            || p.pair.log(Node::Beta).contains("not promoted")
    });
    assert!(!took, "beta took the group on an Outdated disk: {:?}", p.calls());
    assert!(reasons(&p, Node::Beta).iter().any(|r| r == "drbd r0 disk Outdated"));

    p.fake(Node::Beta, &["_set", "Secondary", "UpToDate"]);
    assert_soon(PATIENCE, "beta active, r0 Primary there, svc running", || {
        p.pair.state(Node::Beta) == "active"
            && p.fake_state(Node::Beta).0 == "Primary"
            && p.running(Node::Beta)
    });
    let promoted = p.call_at("beta primary r0 -> 0").expect("beta promoted");
    let started = p.call_at("beta svc start").expect("svc started on beta");
    assert!(promoted < started, "svc started before r0 was promoted: {:?}", p.calls());

    let (code, err) = p.fence_peer(Node::Beta, &["r0"], &[]);
    assert_eq!(code, Some(7), "alpha dead and fenced: {err}");
}

/// `hapair drbd-fence-peer` (no `fence`: a dead peer is not made safe), each exit code from
/// the peer's answer over the links: 6 from beta while alpha is Primary; 3 from alpha while
/// beta's disk is Outdated; 4 once beta's stand-in outdated its disk (refused while the link
/// is connected, as DRBD does, and tried again until it is not), after which beta's status
/// shows Outdated; 3 again through `DRBD_RESOURCE`; 5 with the reason for a resource the
/// daemon does not have; 5 once beta's killed daemon is declared dead (well before the
/// 30 s a live but silent peer gets); and 5 when the local daemon is not running.
#[test]
fn fence_peer_exits_with_the_peers_answer() {
    let mut p = DrbdPair::start('d', "", "Connected", ["Secondary UpToDate", "Secondary UpToDate"]);
    p.wait_group_on(Node::Alpha);

    // beta's fence-peer: alpha is Primary and refuses.
    let (code, err) = p.fence_peer(Node::Beta, &["r0"], &[]);
    assert_eq!(code, Some(6), "{err}");
    assert!(err.contains("the peer is Primary"), "{err}");
    assert_eq!(p.fake_state(Node::Alpha), ("Primary".into(), "UpToDate".into()));

    // beta's disk already Outdated: alpha's fence-peer is told so, nothing runs on beta.
    p.fake(Node::Beta, &["_set", "Secondary", "Outdated"]);
    assert_soon(PATIENCE, "beta's daemon reading its disk Outdated", || {
        p.drbd_status(Node::Beta)["disk"] == "Outdated"
    });
    let (code, err) = p.fence_peer(Node::Alpha, &["r0"], &[]);
    assert_eq!(code, Some(3), "{err}");
    assert!(!p.calls().iter().any(|c| c.starts_with("beta outdate")), "{:?}", p.calls());
    p.fake(Node::Beta, &["_set", "Secondary", "UpToDate"]);
    assert_soon(PATIENCE, "beta's daemon reading its disk UpToDate", || {
        p.drbd_status(Node::Beta)["disk"] == "UpToDate"
    });

    // beta Secondary UpToDate: it outdates its disk, once the link is down.
    let handler = {
        let (conf, cmdline) = (p.pair.nodes[0].conf.clone(), p.pair.nodes[0].cmdline.clone());
        std::thread::spawn(move || {
            let out = Command::new(HAPAIR)
                .args(["drbd-fence-peer", "r0", "-c"])
                .arg(conf)
                .arg("--cmdline")
                .arg(cmdline)
                .env_remove("DRBD_RESOURCE")
                .stdin(Stdio::null())
                .output()
                .expect("hapair drbd-fence-peer");
            (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
        })
    };
    let refused = "beta outdate r0 -> 17";
    assert_soon(PATIENCE, "beta's drbdadm outdate refused while connected", || {
        p.call_at(refused).is_some()
    });
    p.fake(Node::Alpha, &["_link", "WFConnection"]);
    let (code, err) = handler.join().expect("the handler's thread");
    assert_eq!(code, Some(4), "{err}");
    let done = p.call_at("beta outdate r0 -> 0").expect("beta outdated its disk");
    assert!(p.call_at(refused) < Some(done), "{:?}", p.calls());
    assert_eq!(p.fake_state(Node::Beta), ("Secondary".into(), "Outdated".into()));
    assert_soon(PATIENCE, "beta's status and health showing its disk Outdated", || {
        p.drbd_status(Node::Beta)["disk"] == "Outdated"
            && reasons(&p, Node::Beta).iter().any(|r| r == "drbd r0 disk Outdated")
    });
    assert_eq!(p.pair.state(Node::Alpha), "active", "the group stays where it runs");

    // DRBD names the resource in the environment.
    let (code, err) = p.fence_peer(Node::Alpha, &[], &[("DRBD_RESOURCE", "r0")]);
    assert_eq!(code, Some(3), "{err}");
    let (code, err) = p.fence_peer(Node::Alpha, &["r9"], &[]);
    assert_eq!(code, Some(5), "{err}");
    assert!(err.contains("r9") && err.contains("no such drbd resource"), "{err}");
    let (code, err) = p.fence_peer(Node::Alpha, &[], &[]);
    assert!(!(3..=7).contains(&code.unwrap_or(0)), "no resource at all: {code:?} {err}");
    assert!(err.contains("DRBD_RESOURCE"), "{err}");

    // beta's daemon dies (not fenced: no fence): unreachable once it is declared dead.
    p.pair.signal(Node::Beta, Signal::SIGKILL);
    #[allow(clippy::disallowed_methods)] // tests may read the real clock
    let asked = std::time::Instant::now();
    let (code, err) = p.fence_peer(Node::Alpha, &["r0"], &[]);
    assert_eq!(code, Some(5), "{err}");
    assert!(asked.elapsed() < Duration::from_secs(20), "answered by the 30 s timeout: {err}");
    assert!(p.pair.status(Node::Alpha).is_some_and(|s| s["peer"]["alive"] == false));

    // No daemon to ask.
    p.pair.signal(Node::Alpha, Signal::SIGKILL);
    assert!(p.pair.nodes[0].wait_exit(PATIENCE).is_some(), "alpha's daemon killed");
    let (code, err) = p.fence_peer(Node::Alpha, &["r0"], &[]);
    assert_eq!(code, Some(5), "{err}");
    assert!(err.contains("r0"), "{err}");
}

/// The group's start promotes r0 before svc starts, its stop demotes it after svc stopped
/// (`standby` hands the group over: alpha demoted before beta promoted, which the stand-in,
/// like DRBD, would refuse while alpha is Primary on a connected link). A start on a disk
/// that is not UpToDate is refused by the agent: here alpha's daemon still reads UpToDate
/// (its `/proc/drbd` text frozen: the second between two reads) while `drbdadm dstate` says
/// Outdated; the start fails, and r0 is never promoted nor svc started on alpha.
#[test]
fn the_group_promotes_on_start_demotes_on_stop_and_a_stale_start_fails() {
    let p = DrbdPair::start('d', "", "Connected", ["Secondary UpToDate", "Secondary UpToDate"]);
    p.wait_group_on(Node::Alpha);
    let promoted = p.call_at("alpha primary r0 -> 0").expect("alpha promoted");
    let started = p.call_at("alpha svc start").expect("svc started on alpha");
    assert!(promoted < started, "{:?}", p.calls());
    let d = p.drbd_status(Node::Alpha);
    assert_eq!((&d["role"], &d["peer_role"]), (&"Primary".into(), &"Secondary".into()), "{d}");

    p.pair.admin_ok(Node::Alpha, &["standby"]);
    p.wait_group_on(Node::Beta);
    let order =
        ["alpha svc stop", "alpha secondary r0 -> 0", "beta primary r0 -> 0", "beta svc start"];
    let at: Vec<Option<usize>> = order.iter().map(|c| p.call_at(c)).collect();
    assert!(at.iter().all(Option::is_some) && at.is_sorted(), "{order:?}: {:?}", p.calls());
    assert!(
        !p.calls().iter().any(|c| c.ends_with("-> 11")),
        "two primaries tried: {:?}",
        p.calls()
    );
    p.pair.admin_ok(Node::Alpha, &["online"]);

    // alpha's disk goes Outdated between two reads of its daemon; beta hands over.
    p.fake(Node::Alpha, &["_freeze"]);
    p.fake(Node::Alpha, &["_set", "Secondary", "Outdated"]);
    let before = p.calls().len();
    p.pair.admin_ok(Node::Beta, &["standby"]);
    assert_soon(PATIENCE, "alpha's agent refusing to promote", || {
        p.pair.log(Node::Alpha).contains("not promoted: the local disk is Outdated, not UpToDate")
    });
    let tried = wait_until(QUIET, || {
        p.pair.state(Node::Alpha) == "active"
            || p.running(Node::Alpha)
            || p.calls()[before..].iter().any(|c| c.starts_with("alpha primary"))
    });
    assert!(!tried, "the group ran on alpha's Outdated disk: {:?}", p.calls());
    assert_eq!(p.fake_state(Node::Alpha), ("Secondary".into(), "Outdated".into()));
}
