//! The Debian package (SPEC §7.8, scripts/build-deb), the way an operator meets it: built,
//! judged by lintian, then installed with dpkg into a fresh Debian root, never into this
//! machine's own `/`. The root is a `debootstrap --variant=minbase` of this machine's own
//! release from its own apt mirror, with systemd and procps, made once and cached as a
//! tarball by scripts/deb-test-root (which scripts/test.sh runs while it installs what the
//! tests need), and unpacked afresh under target/ for every run. Every command in the root
//! runs under `chroot` in its own mount and pid namespace, with its own /proc: nothing it
//! mounts or starts outlives it.
//!
//! In the root: `hapair version`; `hapair check` and the init script refuse the example
//! configuration with the "edit me" message; nothing is enabled; the man pages render with
//! `man -l` and no warning; `systemd-analyze verify` accepts the unit; the completion
//! completes; an upgrade keeps an edited configuration; `remove` keeps the configuration
//! and the state; `purge` leaves nothing: the root's file list (path, type, mode, owner)
//! after the purge is the list from before the install, even after the operator enabled
//! the service.
//!
//! Needs root, and dpkg-deb, lintian, debootstrap, man-db and systemd on the host
//! (scripts/test.sh installs them); without them it is skipped, except under `CI=true`,
//! where that fails. About 10 s with the root cached and the static binary built; making
//! the root takes one to two minutes more, once.
// The test reports how long its steps take, from the wall clock (not the daemon's rule).
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeSet;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use crate::common::TempDir;
use hapair::cli::{EXAMPLE_MARKER, EXAMPLE_MESSAGE};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn package_builds_passes_lintian_installs_refuses_the_example_and_purges_clean() {
    if !can_run() {
        return;
    }
    let t0 = Instant::now();
    let deb = build_deb();
    eprintln!("[{:5.1}s] built {}", t0.elapsed().as_secs_f64(), deb.display());
    lintian(&deb);
    eprintln!("[{:5.1}s] lintian: no errors, no warnings", t0.elapsed().as_secs_f64());
    let root = Root::fresh();
    eprintln!("[{:5.1}s] fresh root {}", t0.elapsed().as_secs_f64(), root.dir.display());
    let before = file_list(&root.dir);

    install(&root, &deb);
    eprintln!("[{:5.1}s] installed", t0.elapsed().as_secs_f64());
    installed_as_promised(&root);
    example_is_refused(&root);
    nothing_enabled_or_started(&root);
    man_pages_render(&root);
    unit_verifies(&root);
    completion_completes(&root);
    eprintln!("[{:5.1}s] checked in the root", t0.elapsed().as_secs_f64());
    upgrade_keeps_the_edit_and_the_operator_enables(&root, &deb);
    eprintln!(
        "[{:5.1}s] upgraded over an edited configuration, enabled",
        t0.elapsed().as_secs_f64()
    );

    remove_keeps_configuration_and_state(&root);
    let purge = root.run(&["dpkg", "--purge", "hapair"]);
    ok(&purge, "dpkg --purge hapair");
    eprintln!("dpkg --purge:\n{}", both(&purge).trim_end());
    let after = file_list(&root.dir);
    let left: Vec<_> = after.difference(&before).collect();
    let gone: Vec<_> = before.difference(&after).collect();
    let nothing = left.is_empty() && gone.is_empty();
    eprintln!("what remains after purge: {}", if nothing { "nothing" } else { "(+ new, - gone)" });
    for l in &left {
        eprintln!("  + {l}");
    }
    for g in &gone {
        eprintln!("  - {g}");
    }
    assert!(left.is_empty() && gone.is_empty(), "purge left the root changed (+ new, - gone)");
    eprintln!("[{:5.1}s] removed and purged: nothing remains", t0.elapsed().as_secs_f64());
}

/// The completion offers every command of `hapair --help`, and only those (no root needed).
#[test]
fn completion_knows_every_command_of_the_help() {
    let help = Command::new(env!("CARGO_BIN_EXE_hapair")).arg("--help").output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let commands: BTreeSet<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        // A command's line is indented by two; its continuation lines by more.
        .filter_map(|l| l.strip_prefix("  ").filter(|l| !l.starts_with(' ')))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(commands.contains("version") && commands.contains("run"), "{commands:?}");
    let completion = std::fs::read_to_string(Path::new(REPO).join(COMPLETION)).unwrap();
    let listed = completion.split("local commands=\"").nth(1).unwrap().split('"').next().unwrap();
    let listed: BTreeSet<&str> = listed.split_whitespace().collect();
    assert_eq!(listed, commands, "{COMPLETION} and `hapair --help` name other commands");
}

/// The example configuration is refused only for its marker: with the marker deleted and an
/// authkey made, it passes `check` (so "edit me" leads somewhere).
#[test]
fn example_passes_check_once_the_marker_line_is_gone() {
    if !is_root() {
        eprintln!("skipped: needs root (the configuration must be root's)");
        return;
    }
    let dir = TempDir::new("deb-example");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let key = dir.join("authkey");
    std::fs::write(&key, "0123456789abcdef0123456789abcdef\n").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let example = std::fs::read_to_string(Path::new(REPO).join(EXAMPLE)).unwrap();
    assert_eq!(example.lines().filter(|l| l.trim() == EXAMPLE_MARKER).count(), 1);
    let edited: String = example
        .lines()
        .filter(|l| l.trim() != EXAMPLE_MARKER)
        .map(|l| {
            if l.starts_with("authkey ") {
                format!("authkey {}\n", key.display())
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let conf = dir.join("hapair.conf");
    std::fs::write(&conf, edited).unwrap();
    let cmdline = dir.join("cmdline");
    std::fs::write(&cmdline, "").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hapair"))
        .args(["check", "--node", "alpha", "-c"])
        .arg(&conf)
        .arg("--cmdline")
        .arg(&cmdline)
        .output()
        .unwrap();
    ok(&out, "hapair check on the edited example");
}

const EXAMPLE: &str = "scripts/deb/hapair.conf";
const COMPLETION: &str = "scripts/deb/hapair.bash-completion";

/// The tools the test needs; a missing one skips it, or fails it under CI=true.
fn can_run() -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let mut missing = Vec::new();
    if !is_root() {
        missing.push("root".to_string());
    }
    for tool in [
        "dpkg-deb",
        "lintian",
        "debootstrap",
        "man",
        "systemd-analyze",
        "unshare",
        "chroot",
        "python3",
        "strip",
    ] {
        let found = Command::new("sh").args(["-c", &format!("command -v {tool}")]).output();
        if !found.is_ok_and(|o| o.status.success()) {
            missing.push(tool.to_string());
        }
    }
    if missing.is_empty() {
        return true;
    }
    let msg = format!("missing {} (scripts/test.sh installs them)", missing.join(", "));
    assert!(!ci, "{msg}");
    eprintln!("skipped: {msg}");
    false
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn build_deb() -> PathBuf {
    let out = Command::new(Path::new(REPO).join("scripts/build-deb")).output().unwrap();
    ok(&out, "scripts/build-deb");
    let path = String::from_utf8(out.stdout).unwrap();
    PathBuf::from(path.lines().last().expect("build-deb prints the package's path"))
}

/// lintian with every tag it has (pedantic and experimental shown too); errors and warnings
/// fail. The package's overrides (scripts/build-deb says why) apply.
fn lintian(deb: &Path) {
    let out = Command::new("lintian")
        .args(["--info", "--display-level", ">=pedantic", "--display-experimental"])
        .args(["--fail-on", "error,warning"])
        .arg(deb)
        .output()
        .unwrap();
    let text = both(&out);
    // Tags are "E: ", "W: ", "I: ", "P: " (pedantic), "X: " (experimental), "O: " (overridden);
    // "N: " lines explain them.
    let tags: Vec<&str> = text
        .lines()
        .filter(|l| l.len() > 3 && l.as_bytes()[1] == b':' && !l.starts_with("N:"))
        .collect();
    eprintln!("lintian: {}", if tags.is_empty() { "nothing to say" } else { "" });
    for t in &tags {
        eprintln!("  {t}");
    }
    assert!(out.status.success(), "lintian failed:\n{text}");
    assert!(!tags.iter().any(|t| t.starts_with("E:") || t.starts_with("W:")), "{text}");
}

fn install(root: &Root, deb: &Path) {
    let inside = root.dir.join("tmp/hapair.deb");
    std::fs::copy(deb, &inside).unwrap();
    let out = root.run(&["dpkg", "--install", "/tmp/hapair.deb"]);
    std::fs::remove_file(&inside).unwrap();
    ok(&out, "dpkg --install");
    let text = both(&out);
    eprintln!("dpkg --install:\n{}", text.trim_end());
    assert!(text.contains("hapair: not started: edit /etc/hapair/hapair.conf"), "{text}");
}

fn installed_as_promised(root: &Root) {
    for (path, mode) in [
        ("usr/sbin/hapair", 0o755),
        ("etc/init.d/hapair", 0o755),
        ("lib/systemd/system/hapair.service", 0o644),
        ("etc/default/hapair", 0o644),
        ("etc/hapair/hapair.conf", 0o644),
        ("usr/share/man/man8/hapair.8.gz", 0o644),
        ("usr/share/man/man5/hapair.conf.5.gz", 0o644),
        ("usr/share/bash-completion/completions/hapair", 0o644),
        ("usr/share/doc/hapair/copyright", 0o644),
        ("usr/share/doc/hapair/changelog.Debian.gz", 0o644),
    ] {
        let m = std::fs::metadata(root.dir.join(path)).unwrap_or_else(|e| panic!("/{path}: {e}"));
        assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (mode, 0, 0), "/{path}");
    }
    let state = std::fs::symlink_metadata(root.dir.join("var/lib/hapair")).unwrap();
    assert!(state.is_dir());
    assert_eq!((state.mode() & 0o7777, state.uid()), (0o700, 0), "/var/lib/hapair");
    let conffiles = root.run(&["dpkg-query", "--showformat=${Conffiles}", "--show", "hapair"]);
    ok(&conffiles, "dpkg-query");
    for c in ["/etc/hapair/hapair.conf", "/etc/default/hapair", "/etc/init.d/hapair"] {
        assert!(stdout(&conffiles).contains(&format!(" {c} ")), "{c} not a conffile");
    }
    let v = root.run(&["hapair", "version"]);
    ok(&v, "hapair version");
    let want =
        format!("hapair {} (frame version {}", env!("CARGO_PKG_VERSION"), hapair::wire::VERSION);
    assert!(stdout(&v).starts_with(&want), "hapair version: {}", stdout(&v));
    eprintln!("in the root: {}", stdout(&v).trim());
    assert_eq!(stdout(&root.run(&["hapair", "--version"])), stdout(&v));
}

/// `hapair check` refuses the untouched example with the line of the marker and what to
/// edit; so does the init script's start (LSB 6, "not configured").
fn example_is_refused(root: &Root) {
    let marker_line = std::fs::read_to_string(root.dir.join("etc/hapair/hapair.conf"))
        .unwrap()
        .lines()
        .position(|l| l.trim() == EXAMPLE_MARKER)
        .expect("the installed example has the marker")
        + 1;
    let out = root.run(&["hapair", "check"]);
    eprintln!("hapair check: exit {:?}: {}", out.status.code(), stderr(&out).trim());
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let want = format!("/etc/hapair/hapair.conf:{marker_line}: {EXAMPLE_MESSAGE}\n");
    assert_eq!(stderr(&out), want);
    let start = root.run(&["/etc/init.d/hapair", "start"]);
    assert_eq!(start.status.code(), Some(6), "{}", both(&start));
    assert!(both(&start).contains(EXAMPLE_MESSAGE), "{}", both(&start));
}

/// No start link in any runlevel, no unit enabled, no daemon or pid file.
fn nothing_enabled_or_started(root: &Root) {
    for rl in 0..=6 {
        let Ok(dir) = std::fs::read_dir(root.dir.join(format!("etc/rc{rl}.d"))) else { continue };
        for e in dir {
            let name = e.unwrap().file_name().into_string().unwrap();
            assert!(!(name.starts_with('S') && name.ends_with("hapair")), "rc{rl}.d/{name}");
        }
    }
    let wants = root.run(&["sh", "-c", "ls /etc/systemd/system/*.wants/ 2>/dev/null"]);
    assert!(!stdout(&wants).contains("hapair"), "enabled: {}", stdout(&wants));
    assert!(!root.dir.join("run/hapair.pid").exists());
    assert!(!root.dir.join("run/hapair").exists());
}

/// Both pages render with the host's `man -l` from the installed files, without a warning,
/// and carry their README sections.
fn man_pages_render(root: &Root) {
    for (page, title, wants) in [
        ("usr/share/man/man8/hapair.8.gz", "HAPAIR(8)", ["COMMANDS", "hapair version"]),
        ("usr/share/man/man5/hapair.conf.5.gz", "HAPAIR.CONF(5)", ["EXAMPLE", "keepalive DUR"]),
    ] {
        let out = Command::new("man")
            .args(["--warnings", "-l"])
            .arg(root.dir.join(page))
            .env("MANWIDTH", "80")
            .env("LC_ALL", "C.UTF-8")
            .env("MAN_KEEP_FORMATTING", "")
            .output()
            .unwrap();
        ok(&out, &format!("man -l /{page}"));
        let text = stdout(&out);
        assert!(stderr(&out).trim().is_empty(), "man -l /{page}: {}", stderr(&out));
        assert!(text.starts_with(title), "/{page} renders as: {}", &text[..text.len().min(200)]);
        for w in wants {
            assert!(text.contains(w), "/{page} lacks {w:?}");
        }
        eprintln!("man -l /{page}: {} lines", text.lines().count());
    }
}

/// systemd's own check of the installed unit, in the root (its targets, the binary, the
/// man pages of Documentation=, which it looks up with the host's `man`, pointed at the
/// root's pages): any complaint fails.
fn unit_verifies(root: &Root) {
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", root.dir.display()))
        .arg("/lib/systemd/system/hapair.service")
        .env("MANPATH", root.dir.join("usr/share/man"))
        .output()
        .unwrap();
    ok(&out, "systemd-analyze verify");
    assert!(both(&out).trim().is_empty(), "systemd-analyze verify: {}", both(&out));
}

fn completion_completes(root: &Root) {
    let script = "source /usr/share/bash-completion/completions/hapair; \
                  COMP_WORDS=(hapair ver); COMP_CWORD=1; _hapair; echo \"${COMPREPLY[*]}\"; \
                  COMP_WORDS=(hapair status --j); COMP_CWORD=2; _hapair; echo \"${COMPREPLY[*]}\"";
    let out = root.run(&["bash", "-c", script]);
    ok(&out, "completion");
    assert_eq!(stdout(&out), "version\n--json\n");
}

/// The operator edits the configuration, the package is installed again (dpkg's upgrade
/// path: postinst with the old version), and the edit stays; then the operator enables the
/// service (init links and unit), so that the purge has those to take away too.
fn upgrade_keeps_the_edit_and_the_operator_enables(root: &Root, deb: &Path) {
    let conf = root.dir.join("etc/hapair/hapair.conf");
    let edited = std::fs::read_to_string(&conf).unwrap().replace(EXAMPLE_MARKER, "# edited");
    std::fs::write(&conf, &edited).unwrap();
    let inside = root.dir.join("tmp/hapair.deb");
    std::fs::copy(deb, &inside).unwrap();
    let out = root.run(&["dpkg", "--install", "/tmp/hapair.deb"]);
    std::fs::remove_file(&inside).unwrap();
    ok(&out, "dpkg --install over the installed package");
    assert!(!both(&out).contains("not started"), "{}", both(&out));
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), edited, "the upgrade lost the edit");
    nothing_enabled_or_started(root);
    ok(&root.run(&["update-rc.d", "hapair", "enable"]), "update-rc.d hapair enable");
    assert!(root.dir.join("etc/rc2.d/S01hapair").exists(), "no start link after enable");
    let wants = root.dir.join("etc/systemd/system/multi-user.target.wants/hapair.service");
    assert!(wants.symlink_metadata().is_ok(), "the unit is not enabled");
}

/// `remove` keeps the conffiles and the statedir; the state the daemon would have written
/// is put there first, with the init script's log, so that the purge has something to take.
fn remove_keeps_configuration_and_state(root: &Root) {
    std::fs::write(root.dir.join("var/lib/hapair/incarnation"), "7\n").unwrap();
    std::fs::write(root.dir.join("var/log/hapair.log"), "a line\n").unwrap();
    let remove = root.run(&["dpkg", "--remove", "hapair"]);
    ok(&remove, "dpkg --remove hapair");
    eprintln!("dpkg --remove:\n{}", both(&remove).trim_end());
    assert!(!root.dir.join("usr/sbin/hapair").exists());
    assert!(root.dir.join("etc/hapair/hapair.conf").exists(), "remove took the conffile");
    assert!(root.dir.join("var/lib/hapair/incarnation").exists(), "remove took the state");
    let unit = root.dir.join("etc/systemd/system/hapair.service");
    let mask = std::fs::read_link(&unit).map(|p| p.display().to_string()).ok();
    assert_eq!(mask.as_deref(), Some("/dev/null"), "the removed unit is not masked");
}

/// A fresh Debian root under target/, unpacked from the cached debootstrap.
struct Root {
    dir: PathBuf,
}

impl Root {
    fn fresh() -> Root {
        let tarball = cached_debootstrap();
        let dir = Path::new(REPO).join(format!("target/deb-test/root-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new("tar")
            .args(["--extract", "--numeric-owner", "--same-permissions", "--file"])
            .arg(&tarball)
            .arg("--directory")
            .arg(&dir)
            .output()
            .unwrap();
        ok(&out, "tar --extract");
        Root { dir }
    }

    /// Runs `args` chrooted into the root, in a new mount and pid namespace with its own
    /// /proc, with a clean environment.
    fn run(&self, args: &[&str]) -> Output {
        Command::new("unshare")
            .args(["--mount", "--pid", "--fork", "--kill-child"])
            .arg(format!("--mount-proc={}", self.dir.join("proc").display()))
            .arg("chroot")
            .arg(&self.dir)
            .args(args)
            .env_clear()
            .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .env("LC_ALL", "C")
            .env("HOME", "/root")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .unwrap()
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        // Only when nothing is mounted in it (the namespaces make that so): a /proc left
        // mounted would be on another device.
        let dev = |p: &Path| std::fs::symlink_metadata(p).map(|m| m.dev()).ok();
        if dev(&self.dir) == dev(&self.dir.join("proc")) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The tarball of the fresh root (scripts/deb-test-root, which makes it on its first call).
fn cached_debootstrap() -> PathBuf {
    let out = Command::new(Path::new(REPO).join("scripts/deb-test-root")).output().unwrap();
    ok(&out, "scripts/deb-test-root");
    let path = String::from_utf8(out.stdout).unwrap();
    PathBuf::from(path.lines().last().expect("deb-test-root prints the tarball's path"))
}

/// Every entry under `dir` as "path type mode uid gid" (not /proc's, whatever is mounted).
fn file_list(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            let m = std::fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(dir).unwrap().display().to_string();
            let kind = if m.is_dir() {
                "d"
            } else if m.file_type().is_symlink() {
                "l"
            } else {
                "f"
            };
            out.insert(format!("/{rel} {kind} {:o} {}:{}", m.mode() & 0o7777, m.uid(), m.gid()));
            if m.is_dir() && rel != "proc" {
                stack.push(path);
            }
        }
    }
    out
}

fn ok(out: &Output, what: &str) {
    assert!(out.status.success(), "{what}: {:?}\n{}", out.status, both(out));
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn both(o: &Output) -> String {
    format!("{}{}", stdout(o), stderr(o))
}
