//! The control socket of real `hapair run` daemons in the namespace lab (SPEC §7.3, third
//! bullet): who may connect (`control_group`, else root only), who may change state (uid 0,
//! from the peer's credentials), and clients that must not hold the loop (one that writes
//! without end, one that never reads its reply).
//!
//! Other users are the test's own `hapair` children run with `uid`/`gid` 65534 (nobody, and the
//! group of gid 65534, `nogroup` on Debian): no user or group is added to the system. Each test has
//! its own lab (`Lab::up`: tag letter, pid and count), its files in the lab's directory, removed on
//! drop, also on failure (then the daemons' logs are printed). Every bound is generous; nothing
//! here measures time.
#![allow(clippy::unwrap_used)]
#![allow(clippy::disallowed_methods)] // tests wait on the wall clock

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::common::TempDir;
use crate::common::bin::KEY;
use crate::common::daemon::HAPAIR;
use crate::common::pair::{Pair, STEP, Setup};

const ALPHA: usize = 0;
const BETA: usize = 1;
/// nobody, and the group whose gid is 65534 (the members' group in these tests).
const NOBODY: u32 = 65534;
/// A gid that is not the control group's: a user outside it.
const OTHER_GID: u32 = 64999;

/// The name of the group of gid 65534 (`nogroup` on Debian, `nobody` elsewhere).
fn members_group() -> String {
    let group = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(NOBODY));
    group.unwrap().expect("a group with gid 65534 (nogroup)").name
}

/// A pair started with `flags` added to each node's kernel command line: alpha active, beta
/// standby, each hearing the other.
fn running_pair(tag: char, setup: &Setup, flags: [&str; 2]) -> Pair {
    let mut pair = Pair::new(tag, setup);
    for (i, flags) in flags.into_iter().enumerate() {
        pair.add_cmdline(i, flags);
    }
    pair.start_both();
    pair.settle();
    pair
}

/// Makes the pair's directory (the lab's, and the labs' state root above it), configuration
/// and command lines readable by anyone whatever the umask, and copies the binary there (a
/// checkout under /root is out of nobody's reach). The authkey stays 0600: a member's
/// `status` must not need it.
fn open_to_others(pair: &Pair) -> PathBuf {
    let mode = |p: &Path, m| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));
    mode(pair.dir.parent().expect("the labs' state root"), 0o755).unwrap();
    mode(&pair.dir, 0o755).unwrap();
    mode(&pair.conf, 0o644).unwrap();
    for node in &pair.nodes {
        mode(&node.cmdline, 0o644).unwrap();
    }
    let bin = pair.dir.join("hapair");
    std::fs::copy(HAPAIR, &bin).unwrap();
    mode(&bin, 0o755).unwrap();
    bin
}

/// `hapair ARGS` for node `i`, run as `uid`:`gid` (no supplementary groups), with the copy of
/// the binary `open_to_others` made.
fn as_user(pair: &Pair, i: usize, uid: u32, gid: u32, args: &[&str]) -> Output {
    // The copy of the binary may be briefly "busy" (ETXTBSY): another test thread that forked
    // while the copy's write descriptor was open holds it until its child execs. Try again.
    for attempt in 0.. {
        let result = Command::new(pair.dir.join("hapair"))
            .args(args)
            .arg("-c")
            .arg(&pair.conf)
            .arg("--cmdline")
            .arg(&pair.nodes[i].cmdline)
            .uid(uid)
            .gid(gid)
            .stdin(Stdio::null())
            .output();
        match result {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && attempt < 50 => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other.unwrap(),
        }
    }
    unreachable!("the loop returns")
}

fn socket(pair: &Pair, i: usize) -> PathBuf {
    pair.dir.join(format!("{}.sock", pair.nodes[i].name))
}

/// Asserts exit 1 with `permission denied` on stderr.
fn assert_denied(out: &Output, what: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{what}: exit {:?}, stderr {err}", out.status);
    assert!(err.contains("permission denied"), "{what}: stderr {err}");
    assert!(!err.contains("panicked"), "{what}: {err}");
}

#[test]
fn members_may_read_status_and_only_root_changes_state() {
    let group = members_group();
    // Beta lets the group in; alpha has no control_group and stays root's.
    let flags = ["", &format!("hapair.control_group={group}")];
    let setup = Setup { children: false, ..Setup::default() };
    let pair = running_pair('g', &setup, flags);
    open_to_others(&pair);

    let beta_sock = std::fs::metadata(socket(&pair, BETA)).unwrap();
    assert_eq!(beta_sock.mode() & 0o777, 0o660, "beta's socket with control_group");
    assert_eq!(beta_sock.gid(), NOBODY, "beta's socket group");
    let alpha_sock = std::fs::metadata(socket(&pair, ALPHA)).unwrap();
    assert_eq!(alpha_sock.mode() & 0o777, 0o600, "alpha's socket without control_group");

    // A member reads status in every form.
    let out = as_user(&pair, BETA, NOBODY, NOBODY, &["status", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status --json");
    assert_eq!(s["node"], "beta");
    assert_eq!(s["state"], "standby");
    for form in [&["status"][..], &["status", "--prometheus"]] {
        let out = as_user(&pair, BETA, NOBODY, NOBODY, form);
        assert_eq!(out.status.code(), Some(0), "member {form:?}");
        assert!(!out.stdout.is_empty(), "member {form:?} printed nothing");
    }

    // ... and changes nothing: each command is refused, and the node does not move.
    let commands: [&[&str]; 6] = [
        &["takeover"],
        &["standby"],
        &["maintenance", "on"],
        &["online"],
        &["cleanup"],
        &["cleanup", "192.0.2.100"],
    ];
    for args in commands {
        assert_denied(&as_user(&pair, BETA, NOBODY, NOBODY, args), &format!("member {args:?}"));
    }
    // Nothing was persisted (a standby or maintenance would be in statedir/admin), and after
    // a few keepalives the group is still where it was.
    assert!(!pair.dir.join("beta/admin").exists(), "a refused request was saved");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(pair.state(BETA), "standby", "beta moved");
    assert_eq!(pair.state(ALPHA), "active", "alpha moved");

    // Outside the group: no connection at all, on beta (0660) nor on alpha (0600).
    let out = as_user(&pair, BETA, NOBODY, OTHER_GID, &["status"]);
    assert_denied(&out, "non-member status on beta");
    assert_denied(&as_user(&pair, ALPHA, NOBODY, NOBODY, &["status"]), "nobody status on alpha");
    assert_denied(&as_user(&pair, ALPHA, NOBODY, NOBODY, &["standby"]), "nobody standby on alpha");

    // Root still may.
    pair.admin_ok(BETA, &["takeover"]);
    pair.wait_state(BETA, "active", STEP);
    pair.wait_state(ALPHA, "standby", STEP);
}

/// Connects to `path` and writes without end (no newline ever) until the daemon cuts it off;
/// again and again until `stop`. Counts the connections the daemon closed. The socket buffer
/// is 16 MiB (root may force it), so that a reader that takes whatever is there, a little at
/// a time, finds it never empty.
fn endless_writer(path: PathBuf, stop: Arc<AtomicBool>, cut: Arc<AtomicU32>) {
    use nix::sys::socket::{setsockopt, sockopt::SndBufForce};
    let chunk = vec![b'x'; 64 * 1024];
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut s) = UnixStream::connect(&path) else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        setsockopt(&s, SndBufForce, &(16 << 20)).unwrap();
        s.set_write_timeout(Some(Duration::from_millis(500))).unwrap();
        loop {
            match s.write(&chunk) {
                Ok(_) if !stop.load(Ordering::Relaxed) => {}
                Ok(_) => return,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {} // the timeout
                Err(_) => break,
            }
        }
        cut.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn clients_that_write_without_end_or_never_read_do_not_hold_the_loop() {
    // Deadtime 2 s: a loop held that long fails the pair over.
    let setup = Setup {
        timings: "keepalive 200ms\ndeadtime 2s\ninitdead 4s",
        children: false,
        ..Setup::default()
    };
    let pair = running_pair('w', &setup, ["", ""]);
    let path = socket(&pair, ALPHA);

    // Two clients that send `status` and never read the reply, nor shut their side down.
    let mut silent: Vec<UnixStream> = ["status json\n", "status\n"]
        .iter()
        .map(|line| {
            let mut s = UnixStream::connect(&path).unwrap();
            s.write_all(line.as_bytes()).unwrap();
            s
        })
        .collect();
    // Two that write without end, reconnecting whenever they are cut off.
    let stop = Arc::new(AtomicBool::new(false));
    let cut: Vec<Arc<AtomicU32>> = (0..2).map(|_| Arc::new(AtomicU32::new(0))).collect();
    let writers: Vec<_> = cut
        .iter()
        .map(|c| {
            let (p, s, c) = (path.clone(), stop.clone(), c.clone());
            std::thread::spawn(move || endless_writer(p, s, c))
        })
        .collect();

    // Meanwhile `status` answers on both nodes, over and over, and nothing moves.
    let until = Instant::now() + Duration::from_secs(6);
    let mut rounds = 0;
    let mut slowest = Duration::ZERO;
    while Instant::now() < until {
        for i in [ALPHA, BETA] {
            let t = Instant::now();
            let s =
                pair.status(i).unwrap_or_else(|| panic!("{} did not answer", pair.nodes[i].name));
            slowest = slowest.max(t.elapsed());
            assert_eq!(s["peer"]["alive"], true, "{} lost its peer: {s}", pair.nodes[i].name);
        }
        rounds += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    eprintln!("{rounds} status rounds during the abuse, slowest {slowest:?}");
    for (i, c) in cut.iter().enumerate() {
        let n = c.load(Ordering::Relaxed);
        assert!(n >= 1, "endless writer {i} was never cut off");
        eprintln!("endless writer {i}: cut off {n} times");
    }
    // The silent clients got their replies without reading, and were closed: the daemon
    // waited for neither.
    for (i, s) in silent.iter_mut().enumerate() {
        s.set_read_timeout(Some(STEP)).unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap_or_else(|e| panic!("silent client {i}: {e}"));
        assert!(reply.starts_with("ok\n"), "silent client {i}: {reply:?}");
    }
    assert_eq!(pair.state(ALPHA), "active");
    assert_eq!(pair.state(BETA), "standby");
    for i in [ALPHA, BETA] {
        let s = pair.status(i).unwrap();
        assert_eq!(s["counters"]["failovers"], 0, "{}: {s}", pair.nodes[i].name);
        assert_eq!(s["counters"]["handovers"], 0, "{}: {s}", pair.nodes[i].name);
    }
}

#[test]
fn an_unknown_control_group_stops_check_and_run_naming_the_line() {
    let dir = TempDir::new("ctlgroup");
    let key = dir.write_mode("authkey", KEY, 0o600);
    let conf = dir.join("hapair.conf");
    let sock = dir.join("run/hapair.sock");
    std::fs::write(
        &conf,
        format!(
            "node alpha\nnode beta\nauthkey {}\nucast lo 192.0.2.1 192.0.2.2\ncontrol {}\n\
             control_group hapair-no-such-group\nstatedir {}\n",
            key.display(),
            sock.display(),
            dir.join("state").display()
        ),
    )
    .unwrap();
    let cmdline = dir.join("cmdline");
    std::fs::write(&cmdline, "hapair.node=alpha\n").unwrap();
    let run = |cmd: &str| {
        Command::new(HAPAIR)
            .args([cmd, "-c"])
            .arg(&conf)
            .arg("--cmdline")
            .arg(&cmdline)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let want = format!("{}:6: control_group hapair-no-such-group: no such group", conf.display());
    for cmd in ["check", "run"] {
        let out = run(cmd);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{cmd}: {err}");
        assert!(err.contains(&want), "{cmd}: {err}");
    }
    assert!(!sock.exists(), "run bound the socket before refusing");
    assert!(!dir.join("state").exists(), "run touched the statedir before refusing");
}
