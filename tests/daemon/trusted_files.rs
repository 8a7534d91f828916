//! SPEC §7.3, fifth bullet, on the real binary: the configuration file, the statedir and the
//! authkey's directory (each itself, not its parents) must be owned by root and not writable
//! by group or others, or `check` and `run` exit 1 with one line naming the path; the client
//! commands do not judge them. State files are neither read nor written through a symbolic
//! link: a daemon started with links planted in its statedir leaves their targets unchanged
//! and replaces the links with files. Tests run as root (they chown to uid 65534); the daemon
//! runs in a network namespace of its own, started and ended by PID.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, chown, symlink};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::common;
use crate::common::TempDir;
use crate::common::bin::{KEY, s, stderr};
use crate::common::{Netns, assert_soon, wait_until};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Generous: the machine is shared and noisy.
const SOON: Duration = Duration::from_secs(20);

/// A valid setup for node alpha: `keys/authkey` (0600 in a 0700 directory), a 0644
/// configuration, a kernel command line naming the control socket and a statedir that does
/// not exist yet.
struct Files {
    dir: TempDir,
    /// Where `run` runs, refused or not.
    ns: Netns,
    conf: PathBuf,
    cmdline: PathBuf,
    keydir: PathBuf,
    statedir: PathBuf,
}

impl Files {
    fn new(tag: &str) -> Files {
        let dir = TempDir::new(tag);
        let keydir = dir.join("keys");
        fs::create_dir(&keydir).unwrap();
        chmod(&keydir, 0o700);
        let key = keydir.join("authkey");
        fs::write(&key, KEY).unwrap();
        chmod(&key, 0o600);
        let statedir = dir.join("state");
        let conf = dir.write(
            "hapair.conf",
            &format!(
                "node alpha\nnode beta\nkeepalive 100ms\ndeadtime 500ms\ninitdead 1s\n\
                 authkey {}\nucast lo 192.0.2.1 192.0.2.2\n",
                s(&key)
            ),
        );
        chmod(&conf, 0o644);
        let cmdline = dir.write(
            "cmdline",
            &format!(
                "hapair.node=alpha hapair.control={} hapair.statedir={}\n",
                s(&dir.join("sock")),
                s(&statedir)
            ),
        );
        Files { dir, ns: Netns::new(), conf, cmdline, keydir, statedir }
    }

    /// `hapair ARGS -c CONF --cmdline CMDLINE`.
    fn hapair(&self, args: &[&str]) -> Output {
        self.hapair_with(&self.conf, args)
    }

    fn hapair_with(&self, conf: &Path, args: &[&str]) -> Output {
        let mut full = args.to_vec();
        full.extend(["-c", s(conf), "--cmdline", s(&self.cmdline)]);
        crate::common::bin::hapair(&full)
    }

    /// `hapair run` in the namespace; should it start after all, it is killed after a while
    /// (by `timeout`, the test's own child), and has no exit code.
    fn run(&self) -> Output {
        Command::new("ip")
            .args(["netns", "exec", self.ns.name(), "timeout", "-s", "KILL", "20"])
            .args([common::daemon::HAPAIR, "run", "-c", s(&self.conf), "--cmdline"])
            .arg(&self.cmdline)
            .output()
            .unwrap()
    }

    /// `check` and `run` both exit 1 with one line that starts with `PATH: says`; `status`
    /// and `export-pacemaker` do not judge the files (exit 3: no daemon; exit 0); `run` made
    /// no statedir.
    fn assert_refused(&self, path: &Path, says: &str) {
        let statedir_before = self.statedir.exists();
        for cmd in ["check", "run"] {
            let out = if cmd == "run" { self.run() } else { self.hapair(&[cmd]) };
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(1), "{cmd}: {err}");
            let want = format!("{}: {says}", s(path));
            assert!(err.starts_with(&want), "{cmd}: want {want:?}, got {err:?}");
            assert_eq!(err.lines().count(), 1, "{cmd}: one line: {err:?}");
        }
        assert_eq!(self.statedir.exists(), statedir_before, "a refused run touched the statedir");
        let status = self.hapair(&["status"]);
        assert_eq!(status.status.code(), Some(3), "status judged the files: {}", stderr(&status));
        let export = self.hapair(&["export-pacemaker"]);
        assert_eq!(export.status.code(), Some(0), "export judged the files: {}", stderr(&export));
    }

    fn assert_accepted(&self) {
        let out = self.hapair(&["check"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn chown_to(path: &Path, uid: u32) {
    chown(path, Some(uid), None).unwrap();
}

#[test]
fn a_configuration_file_not_roots_or_writable_by_others_is_refused() {
    let f = Files::new("trust-conf");
    f.assert_accepted();
    chown_to(&f.conf, 65534);
    f.assert_refused(&f.conf, "configuration file owned by uid 65534, it must be owned by root");
    chown_to(&f.conf, 0);
    chmod(&f.conf, 0o664);
    f.assert_refused(&f.conf, "configuration file writable by its group (mode 0664)");
    chmod(&f.conf, 0o646);
    f.assert_refused(&f.conf, "configuration file writable by others (mode 0646)");
    chmod(&f.conf, 0o444);
    f.assert_accepted();
}

#[test]
fn a_symlinked_configuration_file_is_judged_by_its_target() {
    let f = Files::new("trust-link");
    let link = f.dir.join("linked.conf");
    symlink(&f.conf, &link).unwrap();
    let out = f.hapair_with(&link, &["check"]);
    assert_eq!(out.status.code(), Some(0), "a link to a good file: {}", stderr(&out));
    chmod(&f.conf, 0o666);
    let out = f.hapair_with(&link, &["check"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let want =
        format!("{}: configuration file writable by its group and others (mode 0666)", s(&link));
    assert!(err.starts_with(&want), "want {want:?}, got {err:?}");
}

#[test]
fn a_statedir_not_roots_or_writable_by_others_is_refused() {
    let f = Files::new("trust-state");
    // Missing is fine for check: run makes it (see the daemon test).
    f.assert_accepted();
    fs::create_dir(&f.statedir).unwrap();
    chmod(&f.statedir, 0o777);
    f.assert_refused(&f.statedir, "statedir writable by its group and others (mode 0777)");
    chmod(&f.statedir, 0o700);
    chown_to(&f.statedir, 65534);
    f.assert_refused(&f.statedir, "statedir owned by uid 65534, it must be owned by root");
    chown_to(&f.statedir, 0);
    chmod(&f.statedir, 0o755);
    f.assert_accepted();
    fs::remove_dir(&f.statedir).unwrap();
    // A link is judged by the directory it points at.
    let real = f.dir.join("real-state");
    fs::create_dir(&real).unwrap();
    chmod(&real, 0o777);
    symlink(&real, &f.statedir).unwrap();
    f.assert_refused(&f.statedir, "statedir writable by its group and others (mode 0777)");
    chmod(&real, 0o700);
    f.assert_accepted();
    fs::remove_file(&f.statedir).unwrap();
    fs::write(&f.statedir, "").unwrap();
    f.assert_refused(&f.statedir, "statedir is not a directory");
}

#[test]
fn an_authkey_directory_not_roots_or_writable_by_others_is_refused() {
    let f = Files::new("trust-keydir");
    chmod(&f.keydir, 0o770);
    f.assert_refused(&f.keydir, "authkey directory writable by its group (mode 0770)");
    chmod(&f.keydir, 0o700);
    chown_to(&f.keydir, 65534);
    f.assert_refused(&f.keydir, "authkey directory owned by uid 65534, it must be owned by root");
    chown_to(&f.keydir, 0);
    chmod(&f.keydir, 0o755);
    f.assert_accepted();
}

/// `hapair run` of `f` in `ns`, its stderr in `DIR/daemon.log`.
fn start(f: &Files, ns: &Netns) -> Child {
    let log = fs::OpenOptions::new().create(true).append(true).open(f.dir.join("daemon.log"));
    let child = Command::new("ip")
        .args(["netns", "exec", ns.name(), common::daemon::HAPAIR, "run", "-c"])
        .arg(&f.conf)
        .arg("--cmdline")
        .arg(&f.cmdline)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log.unwrap())
        .spawn()
        .unwrap();
    assert_soon(SOON, "the daemon answers status", || f.hapair(&["status"]).status.success());
    child
}

fn signal(child: &Child, sig: Signal) {
    // Our own unreaped child: its pid cannot have been reused.
    kill(Pid::from_raw(child.id() as i32), sig).unwrap();
}

fn stop(mut child: Child) {
    signal(&child, Signal::SIGTERM);
    let mut code = None;
    assert!(wait_until(SOON, || {
        code = child.try_wait().ok().flatten();
        code.is_some()
    }));
    assert_eq!(code.and_then(|c| c.code()), Some(0));
}

/// Kills the daemon (by PID) and prints its log when the test failed.
struct Running<'a>(Option<Child>, &'a Files);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            let log = fs::read_to_string(self.1.dir.join("daemon.log")).unwrap_or_default();
            eprintln!("---- daemon log ----\n{log}");
        }
    }
}

fn is_link(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

#[test]
fn run_makes_the_statedir_0700_and_reads_and_writes_through_no_link() {
    let f = Files::new("trust-daemon");
    let ns = &f.ns;
    ns.add_addr("lo", "192.0.2.1/32");
    let log = || fs::read_to_string(f.dir.join("daemon.log")).unwrap_or_default();

    let mut run = Running(Some(start(&f, ns)), &f);
    let meta = fs::metadata(&f.statedir).unwrap();
    assert!(meta.is_dir());
    assert_eq!((meta.mode() & 0o777, meta.uid()), (0o700, 0), "statedir made by run");
    stop(run.0.take().unwrap());

    // Links planted in the statedir, pointing outside it. Read through them, the daemon
    // would start in maintenance with an incarnation of 10^16 and take the peer for v2.
    let outside = f.dir.join("outside");
    fs::create_dir(&outside).unwrap();
    let plant = |name: &str, content: &str| {
        let victim = outside.join(name);
        fs::write(&victim, content).unwrap();
        fs::remove_file(f.statedir.join(name)).ok();
        symlink(&victim, f.statedir.join(name)).unwrap();
        victim
    };
    let incarnation = plant("incarnation", "10000000000000000\n");
    let admin = plant("admin", "standby=1\nmaintenance=1\n");
    let peer_version = plant("peer-version", "2\n");
    let dangling = outside.join("made-through-the-temporary-name");
    symlink(&dangling, f.statedir.join(".incarnation.tmp")).unwrap();

    run.0 = Some(start(&f, ns));
    let status = f.hapair(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert!(status["incarnation"].as_u64().unwrap() < 10_000_000_000_000_000, "{status}");
    assert_ne!(status["state"], "maintenance", "admin state read through a link: {status}");
    for what in [
        "incarnation: unreadable (a symbolic link, not followed",
        "admin: unreadable (a symbolic link, not followed",
        "peer-version: read: a symbolic link, not followed",
    ] {
        assert!(log().contains(what), "no warning {what:?}");
    }
    assert!(!is_link(&f.statedir.join("incarnation")), "the start replaced the link");
    assert!(!dangling.exists(), "created through a link at the temporary name");
    // The admin file is written on the next admin command: the link is replaced, not followed.
    let out = f.hapair(&["standby"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_soon(SOON, "admin written", || {
        fs::read_to_string(f.statedir.join("admin")).is_ok_and(|t| t.contains("standby=1"))
            && !is_link(&f.statedir.join("admin"))
    });
    assert_eq!(fs::read_to_string(&incarnation).unwrap(), "10000000000000000\n");
    assert_eq!(fs::read_to_string(&admin).unwrap(), "standby=1\nmaintenance=1\n");
    assert_eq!(fs::read_to_string(&peer_version).unwrap(), "2\n");

    // A reload judges the file as a start does: refused, and the daemon runs on.
    chmod(&f.conf, 0o666);
    signal(run.0.as_ref().unwrap(), Signal::SIGHUP);
    let refused = format!(
        "reload refused, the running configuration stays: {}: configuration \
                           file writable by its group and others (mode 0666)",
        s(&f.conf)
    );
    assert_soon(SOON, "the reload is refused", || log().contains(&refused));
    chmod(&f.conf, 0o644);
    assert!(f.hapair(&["status"]).status.success());
    stop(run.0.take().unwrap());
}
