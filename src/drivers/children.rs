//! The child-process supervisor: resource actions, notify, fence and check commands run as
//! children in their own process groups, with a timeout (TERM to the group, then KILL after
//! a grace period), and are reaped with `waitpid(WNOHANG)` for our own pids only.
//!
//! The table has a fixed capacity (`limits::CHILDREN_MAX`); a full table refuses a spawn
//! cleanly. Spawning may allocate (it is an event, not the steady state); reaping, timeouts
//! and output draining do not. Nothing here blocks. This file does not decide what to run or
//! what an exit status means: the caller's `tag` comes back with the result.
//!
//! Call protocol for the event loop: `spawn` when the core says so; on SIGCHLD and on every
//! wake drain `poll_exited(now)` until `None`; call `poll_timeouts(now)` when
//! `next_deadline()` has passed; read output when an fd from `output_fds()` is readable
//! (`drain_output`), so that a chatty child never fills its pipe.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use heapless::Vec;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, pipe2};

use crate::core::time::{Duration, Instant};
use crate::limits::CHILDREN_MAX;

/// Bytes of a child's output (stdout and stderr together) kept for error messages: the tail.
pub const OUTPUT_TAIL_LEN: usize = 256;

/// A child's identity, unique for the life of the supervisor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChildId(pub u64);

/// What to run.
#[derive(Clone, Copy, Debug)]
pub enum Program<'a> {
    /// `/bin/sh -c CMD hapair ARGS...`: the arguments are `$1`, `$2`, ... of the command.
    Shell(&'a str),
    /// A program run directly (path, or name looked up in PATH) with the arguments.
    Exec(&'a str),
}

/// One child to start.
#[derive(Clone, Copy, Debug)]
pub struct Spec<'a, T> {
    /// The command.
    pub program: Program<'a>,
    /// Extra arguments.
    pub args: &'a [&'a str],
    /// Extra environment variables, on top of the daemon's own.
    pub env: &'a [(&'a str, &'a str)],
    /// Start from an empty environment: `env` is then the child's whole environment (resource
    /// agents get exactly the variables their standard defines).
    pub clear_env: bool,
    /// How long it may run before the group gets SIGTERM.
    pub timeout: Duration,
    /// The caller's label, handed back with the result.
    pub tag: T,
}

/// Why a child was not started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpawnError {
    /// `CHILDREN_MAX` children are running already.
    TableFull,
    /// The output pipe could not be made (errno).
    Pipe(i32),
    /// fork/exec failed (errno, 0 when unknown), e.g. the program does not exist.
    Spawn(i32),
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SpawnError::TableFull => write!(f, "too many child processes ({CHILDREN_MAX})"),
            SpawnError::Pipe(e) => write!(f, "pipe: {}", io::Error::from_raw_os_error(e)),
            SpawnError::Spawn(e) => write!(f, "spawn: {}", io::Error::from_raw_os_error(e)),
        }
    }
}

impl std::error::Error for SpawnError {}

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this code.
    Code(i32),
    /// A signal it did not ask for killed it (not our timeout).
    Signaled(i32),
    /// It outlived its timeout and we killed its group.
    TimedOut,
}

/// A finished child.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exited<T> {
    /// Its id from `spawn`.
    pub id: ChildId,
    /// The caller's tag from the spec.
    pub tag: T,
    /// How it ended.
    pub status: ExitStatus,
    /// From spawn to reap.
    pub elapsed: Duration,
    /// The last bytes it wrote to stdout or stderr.
    pub output_tail: Vec<u8, OUTPUT_TAIL_LEN>,
}

/// Supervisor counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChildStats {
    /// Children started.
    pub spawned: u64,
    /// Spawns refused because the table was full.
    pub refused_full: u64,
    /// Children that hit their timeout.
    pub timed_out: u64,
    /// Groups that needed SIGKILL after SIGTERM.
    pub killed: u64,
}

struct Slot<T> {
    id: ChildId,
    pid: Pid,
    tag: T,
    started: Instant,
    deadline: Instant,
    /// When SIGTERM went to the group; KILL follows at this plus the grace period.
    term_sent: Option<Instant>,
    output: Option<OwnedFd>,
    tail: Vec<u8, OUTPUT_TAIL_LEN>,
}

/// The table of running children.
pub struct Children<T> {
    slots: [Option<Slot<T>>; CHILDREN_MAX],
    next_id: u64,
    kill_grace: Duration,
    stats: ChildStats,
}

impl<T: Copy> Children<T> {
    /// An empty table; a timed-out group gets SIGKILL `kill_grace` after SIGTERM.
    pub fn new(kill_grace: Duration) -> Children<T> {
        Children {
            slots: core::array::from_fn(|_| None),
            next_id: 1,
            kill_grace,
            stats: ChildStats::default(),
        }
    }

    /// Starts a child in its own process group, stdin from /dev/null, stdout and stderr into
    /// a non-blocking pipe whose tail is kept.
    pub fn spawn(&mut self, now: Instant, spec: &Spec<'_, T>) -> Result<ChildId, SpawnError> {
        let Some(index) = self.slots.iter().position(Option::is_none) else {
            self.stats.refused_full += 1;
            return Err(SpawnError::TableFull);
        };
        let (read, write) =
            pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).map_err(|e| SpawnError::Pipe(e as i32))?;
        let write_err = write.try_clone().map_err(|e| SpawnError::Pipe(errno_of(&e)))?;
        let mut cmd = match spec.program {
            Program::Shell(line) => {
                let mut c = Command::new("/bin/sh");
                c.arg("-c").arg(line).arg("hapair");
                c
            }
            Program::Exec(path) => Command::new(path),
        };
        if spec.clear_env {
            cmd.env_clear();
        }
        cmd.args(spec.args)
            .envs(spec.env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::from(write))
            .stderr(Stdio::from(write_err))
            .process_group(0);
        let child = cmd.spawn().map_err(|e| SpawnError::Spawn(errno_of(&e)))?;
        // INVARIANT: Linux pids fit in i32.
        let pid = Pid::from_raw(child.id() as i32);
        // The Child handle is dropped without waiting: this table reaps the pid itself.
        drop(child);
        drop(cmd); // closes our copies of the pipe's write end
        let id = ChildId(self.next_id);
        self.next_id += 1;
        self.stats.spawned += 1;
        self.slots[index] = Some(Slot {
            id,
            pid,
            tag: spec.tag,
            started: now,
            deadline: now + spec.timeout,
            term_sent: None,
            output: Some(read),
            tail: Vec::new(),
        });
        Ok(id)
    }

    /// The next child that has ended, reaped; `None` when no known child has ended.
    pub fn poll_exited(&mut self, now: Instant) -> Option<Exited<T>> {
        for entry in self.slots.iter_mut() {
            let Some(slot) = entry.as_mut() else { continue };
            let status = match waitpid(slot.pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(_, code)) => ExitStatus::Code(code),
                Ok(WaitStatus::Signaled(_, sig, _)) => ExitStatus::Signaled(sig as i32),
                Ok(_) => continue,
                Err(Errno::EINTR) => continue,
                // ECHILD: someone else reaped it (cannot happen unless SIGCHLD is ignored).
                Err(_) => ExitStatus::Signaled(0),
            };
            drain(slot);
            let status = if slot.term_sent.is_some() {
                // Whatever is left of the group (a grandchild that ignored TERM) goes too.
                // The group id cannot be reused while any member lives.
                let _ = killpg(slot.pid, Signal::SIGKILL);
                ExitStatus::TimedOut
            } else {
                status
            };
            let exited = Exited {
                id: slot.id,
                tag: slot.tag,
                status,
                elapsed: now.saturating_since(slot.started),
                output_tail: slot.tail.clone(),
            };
            *entry = None;
            return Some(exited);
        }
        None
    }

    /// Sends SIGTERM to the groups of children past their timeout, and SIGKILL to those still
    /// there `kill_grace` after that.
    pub fn poll_timeouts(&mut self, now: Instant) {
        for slot in self.slots.iter_mut().flatten() {
            match slot.term_sent {
                None if now >= slot.deadline => {
                    log::warn!("child {} (pid {}) timed out: SIGTERM", slot.id.0, slot.pid);
                    let _ = killpg(slot.pid, Signal::SIGTERM);
                    slot.term_sent = Some(now);
                    self.stats.timed_out += 1;
                }
                Some(sent) if now >= sent + self.kill_grace => {
                    log::warn!("child {} (pid {}) ignored SIGTERM: SIGKILL", slot.id.0, slot.pid);
                    let _ = killpg(slot.pid, Signal::SIGKILL);
                    // Once is enough: push the next KILL far out, the reap comes next.
                    slot.term_sent = Some(Instant::from_millis(u64::MAX) - self.kill_grace);
                    self.stats.killed += 1;
                }
                _ => {}
            }
        }
    }

    /// When `poll_timeouts` next has work, `None` with no child running.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.slots
            .iter()
            .flatten()
            .map(|s| match s.term_sent {
                None => s.deadline,
                Some(sent) => sent + self.kill_grace,
            })
            .min()
    }

    /// The read ends of the children's output pipes, to poll for readability.
    pub fn output_fds(&self) -> impl Iterator<Item = RawFd> + '_ {
        self.slots.iter().flatten().filter_map(|s| s.output.as_ref().map(|fd| fd.as_raw_fd()))
    }

    /// Reads what every child has written so far, keeping the tails; closes pipes at EOF.
    pub fn drain_output(&mut self) {
        for slot in self.slots.iter_mut().flatten() {
            drain(slot);
        }
    }

    /// The process id of a running child.
    pub fn pid(&self, id: ChildId) -> Option<i32> {
        self.slots.iter().flatten().find(|s| s.id == id).map(|s| s.pid.as_raw())
    }

    /// Children running (not yet reaped).
    pub fn len(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    /// No child is running.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The counters so far.
    pub fn stats(&self) -> ChildStats {
        self.stats
    }
}

/// Moves what waits in the slot's pipe into its tail, dropping the oldest bytes beyond
/// `OUTPUT_TAIL_LEN`. Closes the pipe at EOF or on an error.
fn drain<T>(slot: &mut Slot<T>) {
    let Some(fd) = slot.output.as_ref() else { return };
    let mut buf = [0u8; 512];
    loop {
        match nix::unistd::read(fd, &mut buf) {
            Ok(0) => break slot.output = None,
            Ok(n) => push_tail(&mut slot.tail, &buf[..n]),
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => break,
            Err(_) => break slot.output = None,
        }
    }
}

fn push_tail(tail: &mut Vec<u8, OUTPUT_TAIL_LEN>, bytes: &[u8]) {
    let bytes = &bytes[bytes.len().saturating_sub(OUTPUT_TAIL_LEN)..];
    let excess = (tail.len() + bytes.len()).saturating_sub(OUTPUT_TAIL_LEN);
    if excess > 0 {
        let keep = tail.len() - excess;
        tail.copy_within(excess.., 0);
        tail.truncate(keep);
    }
    // INVARIANT: room for `bytes` was made above.
    tail.extend_from_slice(bytes).expect("tail has room");
}

fn errno_of(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_bytes() {
        let mut tail = Vec::<u8, OUTPUT_TAIL_LEN>::new();
        push_tail(&mut tail, b"hello ");
        assert_eq!(&tail[..], b"hello ");
        let long = [b'x'; OUTPUT_TAIL_LEN];
        push_tail(&mut tail, &long[..OUTPUT_TAIL_LEN - 3]);
        push_tail(&mut tail, b"end");
        assert_eq!(tail.len(), OUTPUT_TAIL_LEN);
        assert!(tail.ends_with(b"xxend"));
        let mut big = [b'a'; 1000];
        big[999] = b'z';
        push_tail(&mut tail, &big);
        assert_eq!(tail.len(), OUTPUT_TAIL_LEN);
        assert_eq!(tail.last(), Some(&b'z'));
    }
}
