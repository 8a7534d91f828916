//! The child supervisor with real processes: exit codes, timeouts (TERM, then KILL of the
//! whole group), environment and arguments, a full table, the slots kept for resource actions
//! and the fence (SPEC §7.3), exec failures as results (never a wait in `spawn`), PATH
//! lookup in the child, no zombies and no fd leaks.

// Test deadlines are wall-clock time; the daemon itself reads the clock only in event_loop.rs.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration as StdDuration, Instant as StdInstant};

use crate::common::{self, TempDir};
use hapair::core::time::{Duration, Instant};
use hapair::drivers::children::{
    ChildId, Children, Class, ExitStatus, Exited, Program, SpawnError, Spec,
};
use hapair::limits::{CHILDREN_MAX, CHILDREN_ORDINARY_MAX, CHILDREN_RESERVED};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
use std::sync::{Mutex, MutexGuard};

const DEADLINE: StdDuration = StdDuration::from_secs(30);

/// Test time: real milliseconds since the test started, as the event loop would pass them.
struct Clock(StdInstant);

impl Clock {
    fn new() -> Clock {
        Clock(StdInstant::now())
    }
    fn now(&self) -> Instant {
        Instant::from_millis(self.0.elapsed().as_millis() as u64)
    }
}

fn shell<'a>(cmd: &'a str, timeout_ms: u64, tag: u32) -> Spec<'a, u32> {
    Spec {
        program: Program::Shell(cmd),
        args: &[],
        env: &[],
        clear_env: false,
        stdin: &[],
        stdout: None,
        timeout: Duration::from_millis(timeout_ms),
        class: Class::Essential,
        tag,
    }
}

/// Drives the supervisor as the event loop would until `n` children have been reaped.
fn run_until(children: &mut Children<u32>, clock: &Clock, n: usize) -> Vec<Exited<u32>> {
    let until = StdInstant::now() + DEADLINE;
    let mut done = Vec::new();
    while done.len() < n {
        assert!(StdInstant::now() < until, "only {} of {n} children ended", done.len());
        children.drain_output();
        children.poll_timeouts(clock.now());
        while let Some(e) = children.poll_exited(clock.now()) {
            done.push(e);
        }
        std::thread::yield_now();
        std::thread::sleep(StdDuration::from_millis(2)); // a poll(2) timeout stand-in
    }
    done
}

fn gone(pid: i32) -> bool {
    // Gone, or a zombie of init's (not ours to reap): either way not running.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

fn wait_gone(pid: i32) -> bool {
    let until = StdInstant::now() + DEADLINE;
    while StdInstant::now() < until {
        if gone(pid) {
            return true;
        }
        std::thread::sleep(StdDuration::from_millis(5));
    }
    false
}

#[test]
fn exit_codes_output_and_tags_come_back() {
    let _serial = serial();
    let clock = Clock::new();
    let mut children = Children::new(Duration::from_secs(1));
    let a = children.spawn(clock.now(), &shell("exit 0", 10_000, 1)).unwrap();
    let b = children.spawn(clock.now(), &shell("echo oops >&2; exit 7", 10_000, 2)).unwrap();
    let c = children.spawn(clock.now(), &shell("kill -USR2 $$", 10_000, 3)).unwrap();
    let pids: Vec<i32> = [a, b, c].iter().map(|id| children.pid(*id).unwrap()).collect();
    let mut done = run_until(&mut children, &clock, 3);
    done.sort_by_key(|e| e.tag);
    assert_eq!((done[0].id, done[0].status), (a, ExitStatus::Code(0)));
    assert_eq!((done[1].id, done[1].status), (b, ExitStatus::Code(7)));
    assert_eq!(&done[1].output_tail[..], b"oops\n");
    assert_eq!(done[2].status, ExitStatus::Signaled(nix::libc::SIGUSR2));
    assert!(children.is_empty());
    for pid in pids {
        assert!(std::fs::metadata(format!("/proc/{pid}")).is_err(), "pid {pid} left behind");
    }
}

#[test]
fn environment_and_arguments_reach_the_child() {
    let _serial = serial();
    let clock = Clock::new();
    let mut children = Children::new(Duration::from_secs(1));
    let env = [("OCF_RESKEY_ip", "192.0.2.100"), ("HAPAIR_EVENT", "odd \"value\" $x")];
    let spec = Spec {
        program: Program::Shell(
            "printf '%s|%s|%s|%s' \"$OCF_RESKEY_ip\" \"$HAPAIR_EVENT\" \"$1\" \"$2\"",
        ),
        args: &["start", "two words"],
        env: &env,
        clear_env: false,
        stdin: &[],
        stdout: None,
        timeout: Duration::from_secs(10),
        class: Class::Ordinary,
        tag: 0,
    };
    children.spawn(clock.now(), &spec).unwrap();
    let exec = Spec { program: Program::Exec("/bin/echo"), args: &["-n", "direct"], ..spec };
    children.spawn(clock.now(), &Spec { tag: 1, ..exec }).unwrap();
    let mut done = run_until(&mut children, &clock, 2);
    done.sort_by_key(|e| e.tag);
    let text = core::str::from_utf8(&done[0].output_tail).unwrap();
    assert_eq!(text, "192.0.2.100|odd \"value\" $x|start|two words");
    assert_eq!(&done[1].output_tail[..], b"direct");
}

#[test]
fn a_program_that_cannot_be_executed_ends_as_a_result_not_a_spawn_error() {
    let _serial = serial();
    let clock = Clock::new();
    let mut children: Children<u32> = Children::new(Duration::from_secs(1));
    let dir = TempDir::new("children-exec");
    let plain = dir.join("not-executable");
    std::fs::write(&plain, "#!/bin/sh\nexit 0\n").unwrap();
    let plain = plain.to_str().unwrap();
    let cases: [(&str, i32); 3] = [
        ("/nonexistent/hapair-agent", nix::libc::ENOENT),
        (plain, nix::libc::EACCES),
        ("hapair-no-such-command", nix::libc::ENOENT),
    ];
    // `spawn` does not wait for the exec: each comes back as a child, then as its result.
    for (tag, (program, _)) in cases.iter().enumerate() {
        let spec = Spec { program: Program::Exec(program), ..shell("", 10_000, tag as u32) };
        children.spawn(clock.now(), &spec).unwrap_or_else(|e| panic!("{program}: {e}"));
    }
    let mut done = run_until(&mut children, &clock, cases.len());
    done.sort_by_key(|e| e.tag);
    for (e, (program, errno)) in done.iter().zip(cases) {
        assert_eq!(e.status, ExitStatus::ExecFailed(errno), "{program}");
    }
    assert!(done[0].status.to_string().contains("No such file or directory"), "{}", done[0].status);
    assert!(children.is_empty());
}

#[test]
fn a_name_is_looked_up_along_path_by_the_child() {
    let _serial = serial();
    let clock = Clock::new();
    let mut children: Children<u32> = Children::new(Duration::from_secs(1));
    let dir = TempDir::new("children-path");
    for sub in ["a", "b", "c"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    // a: missing; b: there but not executable (skipped, as execvp does); c: the one.
    std::fs::write(dir.join("b/hapair-tool"), "#!/bin/sh\necho wrong\n").unwrap();
    let tool = dir.join("c/hapair-tool");
    std::fs::write(&tool, "#!/bin/sh\necho found \"$1\"\n").unwrap();
    std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{0}/a:{0}/b:{0}/c", dir.path().display());
    let env = [("PATH", path.as_str())];
    let spec = Spec {
        program: Program::Exec("hapair-tool"),
        args: &["it"],
        env: &env,
        clear_env: true,
        ..shell("", 10_000, 1)
    };
    children.spawn(clock.now(), &spec).unwrap();
    let done = run_until(&mut children, &clock, 1);
    assert_eq!(done[0].status, ExitStatus::Code(0));
    assert_eq!(&done[0].output_tail[..], b"found it\n");
    // Only b: found but not executable is EACCES, not "not found".
    let only_b = format!("{0}/a:{0}/b", dir.path().display());
    let env = [("PATH", only_b.as_str())];
    children.spawn(clock.now(), &Spec { env: &env, ..spec }).unwrap();
    let done = run_until(&mut children, &clock, 1);
    assert_eq!(done[0].status, ExitStatus::ExecFailed(nix::libc::EACCES));
}

#[test]
fn a_hanging_child_is_terminated_at_its_timeout() {
    let _serial = serial();
    // The daemon blocks TERM for its signalfd; children must not inherit that mask.
    let mut term = SigSet::empty();
    term.add(Signal::SIGTERM);
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&term), None).unwrap();
    let clock = Clock::new();
    let mut children = Children::new(Duration::from_secs(20));
    let t0 = clock.now();
    let id = children.spawn(t0, &shell("sleep 1000", 200, 9)).unwrap();
    let pid = children.pid(id).unwrap();
    assert_eq!(children.next_deadline(), Some(t0 + Duration::from_millis(200)));
    let done = run_until(&mut children, &clock, 1);
    pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&term), None).unwrap();
    assert_eq!((done[0].id, done[0].tag, done[0].status), (id, 9, ExitStatus::TimedOut));
    assert!(done[0].elapsed >= Duration::from_millis(200));
    assert_eq!(children.stats().timed_out, 1);
    assert_eq!(children.stats().killed, 0, "TERM was enough");
    assert_eq!(children.next_deadline(), None);
    assert!(wait_gone(pid));
}

#[test]
fn a_group_ignoring_term_is_killed_grandchild_and_all() {
    let _serial = serial();
    let clock = Clock::new();
    let mut children = Children::new(Duration::from_millis(300));
    let cmd = "trap '' TERM; sleep 1000 & echo $!; wait";
    let t0 = clock.now();
    let id = children.spawn(t0, &shell(cmd, 200, 4)).unwrap();
    let pid = children.pid(id).unwrap();
    let done = run_until(&mut children, &clock, 1);
    assert_eq!(done[0].status, ExitStatus::TimedOut);
    assert_eq!(children.stats().killed, 1, "KILL after the grace period");
    let text = core::str::from_utf8(&done[0].output_tail).unwrap();
    let grandchild: i32 = text.trim().parse().expect("the grandchild's pid");
    assert!(wait_gone(pid), "child {pid} still there");
    assert!(wait_gone(grandchild), "grandchild {grandchild} still there");
}

#[test]
fn a_full_table_refuses_cleanly_and_every_child_is_reaped() {
    let _serial = serial();
    let clock = Clock::new();
    let mut children = Children::new(Duration::from_secs(5));
    let mut pids = Vec::new();
    for i in 0..CHILDREN_MAX {
        let id = children.spawn(clock.now(), &shell("sleep 1000", 300, i as u32)).unwrap();
        pids.push(children.pid(id).unwrap());
    }
    assert_eq!(children.len(), CHILDREN_MAX);
    let refused = children.spawn(clock.now(), &shell("exit 0", 300, 99));
    assert_eq!(refused, Err(SpawnError::TableFull));
    assert_eq!(children.stats().refused_full, 1);
    let done = run_until(&mut children, &clock, CHILDREN_MAX);
    assert!(done.iter().all(|e| e.status == ExitStatus::TimedOut));
    let mut tags: Vec<u32> = done.iter().map(|e| e.tag).collect();
    tags.sort_unstable();
    assert_eq!(tags, (0..CHILDREN_MAX as u32).collect::<Vec<_>>());
    for pid in pids {
        assert!(wait_gone(pid), "pid {pid} left behind");
    }
    // A slot is free again.
    let id: ChildId = children.spawn(clock.now(), &shell("exit 3", 1000, 7)).unwrap();
    assert_eq!(run_until(&mut children, &clock, 1)[0].id, id);
}

/// SPEC §7.3: notify and checks (ordinary children) cannot use up the table: with their
/// whole share taken by children that hang, a resource action and a fence still start, and
/// the ordinary share refuses the next one until a slot frees.
#[test]
fn ordinary_children_leave_the_reserved_slots_to_actions_and_the_fence() {
    let _serial = serial();
    let clock = Clock::new();
    let mut children = Children::new(Duration::from_secs(5));
    let hang = |tag| Spec { class: Class::Ordinary, ..shell("sleep 1000", 300, tag) };
    let mut groups = KillOnDrop(Vec::new());
    for i in 0..CHILDREN_ORDINARY_MAX {
        let id = children.spawn(clock.now(), &hang(i as u32)).unwrap();
        groups.0.push(children.pid(id).unwrap());
    }
    let refused = children.spawn(clock.now(), &hang(98));
    assert_eq!(refused, Err(SpawnError::ShareFull));
    assert!(refused.unwrap_err().to_string().contains("kept for resource actions and fencing"));
    assert_eq!(children.stats().refused_share, 1);
    assert_eq!(children.count_where(|t| *t < 1000), CHILDREN_ORDINARY_MAX);
    // The reserved slots: a resource action of each group at once (SPEC §7.1) and a fence.
    let mut reserved: Vec<ChildId> = (0..CHILDREN_RESERVED as u32)
        .map(|i| children.spawn(clock.now(), &shell("exit 0", 10_000, 1000 + i)).unwrap())
        .collect();
    assert_eq!(children.len(), CHILDREN_ORDINARY_MAX + CHILDREN_RESERVED);
    assert_eq!(children.len(), CHILDREN_MAX);
    let done = run_until(&mut children, &clock, CHILDREN_RESERVED);
    let mut ids: Vec<ChildId> = done.iter().map(|e| e.id).collect();
    ids.sort_unstable();
    reserved.sort_unstable();
    assert_eq!(ids, reserved);
    assert!(done.iter().all(|e| e.status == ExitStatus::Code(0)));
    // Still no room for an ordinary child while the hung ones run; room once one is reaped.
    assert_eq!(children.spawn(clock.now(), &hang(99)), Err(SpawnError::ShareFull));
    let rest = run_until(&mut children, &clock, CHILDREN_ORDINARY_MAX);
    assert!(rest.iter().all(|e| e.status == ExitStatus::TimedOut));
    children
        .spawn(clock.now(), &Spec { class: Class::Ordinary, ..shell("exit 0", 1000, 7) })
        .unwrap();
    assert_eq!(run_until(&mut children, &clock, 1)[0].status, ExitStatus::Code(0));
}

#[test]
fn a_thousand_spawns_leak_no_fd_and_no_zombie() {
    // It counts the descriptors of the whole process: no other test may open or close any.
    if !common::own_process() {
        return;
    }
    let _serial = serial();
    let clock = Clock::new();
    let mut children = Children::new(Duration::from_secs(1));
    let fds_before = open_fds();
    let mut reaped = 0;
    let mut last_pid = 0;
    while reaped < 1000 {
        while reaped + children.len() < 1000 {
            match children.spawn(clock.now(), &shell("exit 0", 10_000, 0)) {
                Ok(id) => last_pid = children.pid(id).unwrap(),
                Err(SpawnError::TableFull) => break,
                Err(e) => panic!("spawn: {e}"),
            }
        }
        let n = children.len().min(4);
        for e in run_until(&mut children, &clock, n) {
            assert_eq!(e.status, ExitStatus::Code(0));
            reaped += 1;
        }
    }
    assert_eq!(children.poll_exited(clock.now()), None, "reaped more than spawned");
    assert!(children.is_empty());
    assert_eq!(open_fds(), fds_before, "fds leaked");
    assert!(std::fs::metadata(format!("/proc/{last_pid}")).is_err(), "zombie {last_pid}");
}

/// Process groups of children a test started, killed when the test fails (so a failed
/// assertion leaves no `sleep 1000` behind). Not after a pass: the supervisor reaped them, and
/// their ids may belong to someone else by then.
struct KillOnDrop(Vec<i32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for &pid in &self.0 {
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// The tests of this file run one at a time: each spawns up to a table of children, and
/// `a_thousand_spawns_leak_no_fd_and_no_zombie` counts the process's fds (in a process of its
/// own, `common::own_process`, as other test files share the process too).
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
