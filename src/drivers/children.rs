//! The child-process supervisor: resource actions, notify, fence and check commands run as
//! children in their own process groups, with a timeout (TERM to the group, then KILL after
//! a grace period), and are reaped with `waitpid(WNOHANG)` for our own pids only.
//!
//! The table has a fixed capacity (`limits::CHILDREN_MAX`); a full table refuses a spawn
//! cleanly. Its last `limits::CHILDREN_RESERVED` slots are kept for `Class::Essential`
//! children (resource actions, the fence): `Class::Ordinary` ones (notify, checks,
//! meta-data) are refused with `SpawnError::ShareFull` once `limits::CHILDREN_ORDINARY_MAX`
//! of them run, so however many notify scripts hang, a stop or a fence still starts.
//!
//! Nothing here allocates, spawning included (fork and execve with the strings in stack
//! buffers: monitors spawn in the steady state), nor do reaping, timeouts and output
//! draining. Nothing here blocks, and the parent touches no file system path to spawn: a
//! program name without a slash is looked up along `PATH` by the child itself (it tries
//! `execve` on each candidate, as `execvp` does), and an exec failure comes back through a
//! non-blocking close-on-exec pipe that is read when the child is reaped, as
//! `ExitStatus::ExecFailed`. A hung NFS mount in `PATH` or under an agent hangs that child
//! (until its timeout), never the loop. This file does not decide what to run or what an
//! exit status means: the caller's `tag` comes back with the result.
//!
//! Call protocol for the event loop: `spawn` when the core says so; on SIGCHLD and on every
//! wake drain `poll_exited(now)` until `None`; call `poll_timeouts(now)` when
//! `next_deadline()` has passed; read output when an fd from `output_fds()` is readable
//! (`drain_output`), so that a chatty child never fills its pipe.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use heapless::Vec;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, killpg, signal, sigprocmask};
use nix::sys::stat::Mode;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{
    ForkResult, Pid, dup2_stderr, dup2_stdin, dup2_stdout, fork, pipe2, setpgid, write,
};

use crate::core::time::{Duration, Instant};
use crate::limits::{CHILDREN_MAX, CHILDREN_ORDINARY_MAX};

/// Bytes of a child's output (stdout and stderr together) kept for error messages: the tail.
pub const OUTPUT_TAIL_LEN: usize = 256;
/// The most a child may be given on stdin (well under PIPE_BUF, so it never blocks).
pub const STDIN_LEN_MAX: usize = 512;

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

/// Which share of the table a child may use (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// A resource action or the fence: any free slot, the reserved ones included.
    Essential,
    /// A notify command, a check or a meta-data run: at most `CHILDREN_ORDINARY_MAX` at once.
    Ordinary,
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
    /// What the child reads on stdin (at most `STDIN_LEN_MAX` bytes, e.g. a fence agent's
    /// `action=reboot` lines); empty: /dev/null.
    pub stdin: &'a [u8],
    /// Where its stdout goes instead of the output pipe (a memfd that collects an agent's
    /// meta-data); `None`: stdout and stderr both go to the pipe whose tail is kept.
    pub stdout: Option<BorrowedFd<'a>>,
    /// How long it may run before the group gets SIGTERM.
    pub timeout: Duration,
    /// Which share of the table it may use.
    pub class: Class,
    /// The caller's label, handed back with the result.
    pub tag: T,
}

/// Why a child was not started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpawnError {
    /// `CHILDREN_MAX` children are running already.
    TableFull,
    /// `CHILDREN_ORDINARY_MAX` ordinary children are running already (the rest of the table
    /// is kept for resource actions and the fence).
    ShareFull,
    /// The output pipe could not be made (errno).
    Pipe(i32),
    /// fork/exec failed (errno, 0 when unknown), e.g. the program does not exist.
    Spawn(i32),
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SpawnError::TableFull => write!(f, "too many child processes ({CHILDREN_MAX})"),
            SpawnError::ShareFull => write!(
                f,
                "too many notify, check and meta-data processes ({CHILDREN_ORDINARY_MAX}; the \
                 other slots are kept for resource actions and fencing)"
            ),
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
    /// The program could not be executed (errno of the last `execve`, e.g. `ENOENT`,
    /// `EACCES`): it never ran.
    ExecFailed(i32),
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ExitStatus::Code(c) => write!(f, "exit code {c}"),
            ExitStatus::Signaled(s) => write!(f, "killed by signal {s}"),
            ExitStatus::TimedOut => f.write_str("timed out (process group killed)"),
            ExitStatus::ExecFailed(e) => {
                write!(f, "could not be executed: {}", io::Error::from_raw_os_error(e))
            }
        }
    }
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
    /// Ordinary spawns refused because their share was in use.
    pub refused_share: u64,
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
    class: Class,
    output: Option<OwnedFd>,
    /// The read end of the exec-error pipe (non-blocking), read once the child is reaped.
    exec_error: OwnedFd,
    tail: Vec<u8, OUTPUT_TAIL_LEN>,
}

/// The table of running children.
pub struct Children<T> {
    slots: [Option<Slot<T>>; CHILDREN_MAX],
    /// Slots in use: with none (the steady state) every per-wake scan is skipped.
    live: usize,
    /// Slots in use by `Class::Ordinary` children.
    live_ordinary: usize,
    next_id: u64,
    kill_grace: Duration,
    stats: ChildStats,
}

impl<T: Copy> Children<T> {
    /// An empty table; a timed-out group gets SIGKILL `kill_grace` after SIGTERM.
    pub fn new(kill_grace: Duration) -> Children<T> {
        Children {
            slots: core::array::from_fn(|_| None),
            live: 0,
            live_ordinary: 0,
            next_id: 1,
            kill_grace,
            stats: ChildStats::default(),
        }
    }

    /// Starts a child in its own process group, stdin from /dev/null, stdout and stderr into
    /// a non-blocking pipe whose tail is kept. Allocates nothing and waits for nothing (see
    /// `launch`): a program that cannot be executed is a child that ends with
    /// `ExitStatus::ExecFailed`.
    pub fn spawn(&mut self, now: Instant, spec: &Spec<'_, T>) -> Result<ChildId, SpawnError> {
        if spec.class == Class::Ordinary && self.live_ordinary >= CHILDREN_ORDINARY_MAX {
            self.stats.refused_share += 1;
            return Err(SpawnError::ShareFull);
        }
        let Some(index) = self.slots.iter().position(Option::is_none) else {
            self.stats.refused_full += 1;
            return Err(SpawnError::TableFull);
        };
        let (read, write) =
            pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).map_err(|e| SpawnError::Pipe(e as i32))?;
        let (pid, exec_error) = launch(spec, &write)?;
        drop(write); // our copy of the write end: the pipe ends when the child's do
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
            class: spec.class,
            output: Some(read),
            exec_error,
            tail: Vec::new(),
        });
        self.live += 1;
        if spec.class == Class::Ordinary {
            self.live_ordinary += 1;
        }
        Ok(id)
    }

    /// The next child that has ended, reaped; `None` when no known child has ended.
    pub fn poll_exited(&mut self, now: Instant) -> Option<Exited<T>> {
        if self.live == 0 {
            return None;
        }
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
            } else if let Some(errno) = exec_errno(&slot.exec_error) {
                ExitStatus::ExecFailed(errno)
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
            if slot.class == Class::Ordinary {
                self.live_ordinary -= 1;
            }
            *entry = None;
            self.live -= 1;
            return Some(exited);
        }
        None
    }

    /// Sends SIGTERM to the groups of children past their timeout, and SIGKILL to those still
    /// there `kill_grace` after that.
    pub fn poll_timeouts(&mut self, now: Instant) {
        if self.live == 0 {
            return;
        }
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
        if self.live == 0 {
            return None;
        }
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
        let slots = if self.live == 0 { &self.slots[..0] } else { &self.slots[..] };
        slots.iter().flatten().filter_map(|s| s.output.as_ref().map(|fd| fd.as_raw_fd()))
    }

    /// Reads what every child has written so far, keeping the tails; closes pipes at EOF.
    pub fn drain_output(&mut self) {
        for slot in self.slots.iter_mut().flatten() {
            drain(slot);
        }
    }

    /// Running children whose tag satisfies `pred` (e.g. the notify commands).
    pub fn count_where(&self, mut pred: impl FnMut(&T) -> bool) -> usize {
        if self.live == 0 {
            return 0;
        }
        self.slots.iter().flatten().filter(|s| pred(&s.tag)).count()
    }

    /// The process id of a running child.
    pub fn pid(&self, id: ChildId) -> Option<i32> {
        self.slots.iter().flatten().find(|s| s.id == id).map(|s| s.pid.as_raw())
    }

    /// Children running (not yet reaped).
    pub fn len(&self) -> usize {
        debug_assert_eq!(self.live, self.slots.iter().flatten().count());
        self.live
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

/// The errno the child wrote to its exec-error pipe, if its exec failed. Called once the
/// child has been reaped, so whatever it wrote is there: the read cannot block (the pipe is
/// non-blocking anyway) and finds either the four bytes or nothing.
fn exec_errno(pipe: &OwnedFd) -> Option<i32> {
    let mut errno = [0u8; 4];
    loop {
        match nix::unistd::read(pipe, &mut errno) {
            Err(Errno::EINTR) => continue,
            Ok(n) if n == errno.len() => return Some(i32::from_ne_bytes(errno)),
            _ => return None,
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

/// Bytes of argument and environment strings one spawn may use (on the stack).
const ARENA_LEN: usize = 16 * 1024;
/// Entries of argv or envp, the terminating null included.
const VECTOR_MAX: usize = 192;
/// The program `Program::Shell` runs.
const SHELL: &[u8] = b"/bin/sh";
/// `PATH` directories searched for a program name without a slash.
const CANDIDATES_MAX: usize = 16;

/// NUL-terminated strings written one after another into a fixed buffer; a string is known
/// by its offset, and pointers are made only once every string is written.
struct Arena {
    buf: [u8; ARENA_LEN],
    len: usize,
}

impl Arena {
    /// Appends the concatenation of `parts` and a NUL; returns its offset. `E2BIG` when the
    /// buffer is full, `EINVAL` for a NUL inside.
    fn push(&mut self, parts: &[&[u8]]) -> Result<usize, SpawnError> {
        let start = self.len;
        for part in parts {
            if part.contains(&0) {
                return Err(SpawnError::Spawn(libc::EINVAL));
            }
            let end = self.len + part.len();
            if end >= ARENA_LEN {
                return Err(SpawnError::Spawn(libc::E2BIG));
            }
            self.buf[self.len..end].copy_from_slice(part);
            self.len = end;
        }
        if self.len >= ARENA_LEN {
            return Err(SpawnError::Spawn(libc::E2BIG));
        }
        self.buf[self.len] = 0;
        self.len += 1;
        Ok(start)
    }
}

/// A string for argv or envp: in the arena, or one of our own `environ` entries.
#[derive(Clone, Copy)]
enum Str {
    Arena(usize),
    Raw(*const libc::c_char),
}

// Our environment as execve wants it, read in place: `std::env::vars_os` and nix's
// `env` would copy it into allocated strings on every spawn.
unsafe extern "C" {
    static environ: *const *const libc::c_char;
}

/// fork + execve with every string prepared in stack buffers, so that a spawn allocates
/// nothing (monitors spawn every `monitor_interval`, in the steady state). The child only
/// makes async-signal-safe calls: signal mask and SIGPIPE back to defaults, its own process
/// group, /dev/null and the pipe as stdio, execve on each candidate path in turn. An exec
/// failure goes into a close-on-exec, non-blocking pipe as an errno, which the parent reads
/// when it reaps the child (`exec_errno`): the parent never waits for the exec, which may
/// take as long as a hung file system makes it. Returns the pid and that pipe's read end.
fn launch<T>(spec: &Spec<'_, T>, output: &OwnedFd) -> Result<(Pid, OwnedFd), SpawnError> {
    let mut arena = Arena { buf: [0; ARENA_LEN], len: 0 };
    let mut argv: Vec<Str, VECTOR_MAX> = Vec::new();
    let mut envp: Vec<Str, VECTOR_MAX> = Vec::new();
    let mut paths: Vec<usize, CANDIDATES_MAX> = Vec::new();
    prepare(spec, &mut arena, &mut argv, &mut envp, &mut paths)?;
    // Every offset was returned by `push`, so it lies inside `buf`, at a NUL-terminated string.
    let at = |off: usize| arena.buf[off..].as_ptr().cast::<libc::c_char>();
    let ptrs = |list: &Vec<Str, VECTOR_MAX>| {
        let mut out = [core::ptr::null::<libc::c_char>(); VECTOR_MAX + 1];
        for (slot, s) in out.iter_mut().zip(list.iter()) {
            *slot = match *s {
                Str::Arena(off) => at(off),
                Str::Raw(p) => p,
            };
        }
        out
    };
    let (argv, envp) = (ptrs(&argv), ptrs(&envp));
    let mut programs = [core::ptr::null::<libc::c_char>(); CANDIDATES_MAX];
    for (slot, off) in programs.iter_mut().zip(paths.iter()) {
        *slot = at(*off);
    }
    let programs = &programs[..paths.len()];
    let devnull = stdin_for(spec.stdin)?;
    let (err_read, err_write) =
        pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).map_err(|e| SpawnError::Pipe(e as i32))?;
    let fds = ChildFds {
        stdin: devnull.as_fd(),
        stdout: spec.stdout.unwrap_or(output.as_fd()),
        stderr: output.as_fd(),
        exec_error: err_write.as_fd(),
    };
    // SAFETY: the child runs only async-signal-safe calls (`exec_child`) before execve or
    // _exit, so forking from a process that may have other threads (tests) is sound.
    let pid = match unsafe { fork() } {
        Ok(ForkResult::Parent { child }) => child,
        // SAFETY: in the freshly forked child; every pointer is valid (our copy of the
        // parent's memory): `programs` point at NUL-terminated strings of the arena, `argv`
        // and `envp` (`ptrs`) at those or at our `environ`, each list ended by a null.
        Ok(ForkResult::Child) => unsafe { exec_child(fds, programs, &argv, &envp) },
        Err(e) => return Err(SpawnError::Spawn(e as i32)),
    };
    drop(err_write); // the child's copy closes at its exec (or exit)
    // Also here, so the group exists before any killpg of ours, whoever runs first.
    let _ = setpgid(pid, pid);
    Ok((pid, err_read))
}

/// The descriptors the child makes its stdin, stdout and stderr, and where it writes the
/// errno of a failed exec.
#[derive(Clone, Copy)]
struct ChildFds<'a> {
    stdin: BorrowedFd<'a>,
    stdout: BorrowedFd<'a>,
    stderr: BorrowedFd<'a>,
    exec_error: BorrowedFd<'a>,
}

/// Stdin for the child: /dev/null, or a pipe already holding `data` (which fits the pipe's
/// buffer, so the write cannot block) with its write end closed.
fn stdin_for(data: &[u8]) -> Result<OwnedFd, SpawnError> {
    if data.is_empty() {
        return nix::fcntl::open("/dev/null", OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|e| SpawnError::Spawn(e as i32));
    }
    if data.len() > STDIN_LEN_MAX {
        return Err(SpawnError::Spawn(libc::E2BIG));
    }
    let (read, write) =
        pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).map_err(|e| SpawnError::Pipe(e as i32))?;
    let n = nix::unistd::write(&write, data).map_err(|e| SpawnError::Pipe(e as i32))?;
    if n != data.len() {
        return Err(SpawnError::Pipe(libc::EAGAIN));
    }
    // The child's reads must block like on any stdin: clear O_NONBLOCK on the read end.
    nix::fcntl::fcntl(&read, nix::fcntl::FcntlArg::F_SETFL(OFlag::empty()))
        .map_err(|e| SpawnError::Pipe(e as i32))?;
    Ok(read)
}

/// Writes the candidate program paths, argv and envp of `spec` into `arena`; the offsets of
/// the candidates (one, or one per `PATH` directory) go into `paths`.
fn prepare<T>(
    spec: &Spec<'_, T>,
    arena: &mut Arena,
    argv: &mut Vec<Str, VECTOR_MAX>,
    envp: &mut Vec<Str, VECTOR_MAX>,
    paths: &mut Vec<usize, CANDIDATES_MAX>,
) -> Result<(), SpawnError> {
    match spec.program {
        Program::Shell(line) => {
            argv.push(Str::Arena(arena.push(&[SHELL])?)).map_err(too_many)?;
            argv.push(Str::Arena(arena.push(&[b"-c"])?)).map_err(too_many)?;
            argv.push(Str::Arena(arena.push(&[line.as_bytes()])?)).map_err(too_many)?;
            argv.push(Str::Arena(arena.push(&[b"hapair"])?)).map_err(too_many)?;
            paths.push(arena.push(&[SHELL])?).map_err(too_many)?;
        }
        Program::Exec(path) => {
            argv.push(Str::Arena(arena.push(&[path.as_bytes()])?)).map_err(too_many)?;
            let path_env = spec.env.iter().find(|(k, _)| *k == "PATH").map(|(_, v)| *v);
            candidates(arena, path, path_env, spec.clear_env, paths)?;
        }
    }
    for a in spec.args {
        argv.push(Str::Arena(arena.push(&[a.as_bytes()])?)).map_err(too_many)?;
    }
    if !spec.clear_env {
        inherit_environment(envp, spec.env)?;
    }
    for (k, v) in spec.env {
        let kv = arena.push(&[k.as_bytes(), b"=", v.as_bytes()])?;
        envp.push(Str::Arena(kv)).map_err(too_many)?;
    }
    Ok(())
}

/// The child's side of `launch`; never returns. Tries `execve` on each candidate path in
/// order, like `execvp`: a candidate that does not exist (or is not a directory entry one
/// can reach) is skipped, one that may not be executed is remembered (`EACCES` is reported
/// when nothing else ran), any other error ends the search. Then the errno goes to
/// `fds.exec_error`. Every call here is async-signal-safe: nix's wrappers are the bare
/// syscalls; execve and _exit are libc's own because nix's `execve` allocates (it builds its
/// vectors) and nix has no `_exit`.
///
/// # Safety
/// Call only in a freshly forked child, with `programs` pointing at NUL-terminated strings
/// and `argv` and `envp` null-ended vectors of such pointers.
unsafe fn exec_child(
    fds: ChildFds<'_>,
    programs: &[*const libc::c_char],
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> ! {
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    // SAFETY: the default disposition runs no code of ours.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
    let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
    let stdio = dup2_stdin(fds.stdin)
        .and_then(|()| dup2_stdout(fds.stdout))
        .and_then(|()| dup2_stderr(fds.stderr));
    let mut errno = libc::ENOENT;
    let mut denied = false;
    match stdio {
        Ok(()) => {
            for &program in programs {
                // SAFETY: the caller's contract: NUL-terminated strings, null-ended vectors.
                unsafe { libc::execve(program, argv.as_ptr(), envp.as_ptr()) };
                errno = Errno::last_raw();
                match errno {
                    libc::EACCES => denied = true,
                    libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV => {}
                    libc::ETIMEDOUT => {}
                    _ => {
                        denied = false;
                        break;
                    }
                }
            }
            if denied {
                errno = libc::EACCES;
            }
        }
        Err(e) => errno = e as i32,
    }
    let _ = write(fds.exec_error, &errno.to_ne_bytes());
    // SAFETY: ends this child at once, without the parent's atexit handlers or buffers.
    unsafe { libc::_exit(127) }
}

/// The paths to try for `path`: itself when it has a slash, else `DIR/path` for each
/// directory of `PATH` (the child's when the spec sets one, else ours; the first
/// `CANDIDATES_MAX`), tried by the child in order. Nothing here touches the file system.
fn candidates(
    arena: &mut Arena,
    path: &str,
    path_env: Option<&str>,
    clear_env: bool,
    out: &mut Vec<usize, CANDIDATES_MAX>,
) -> Result<(), SpawnError> {
    if path.is_empty() {
        return Err(SpawnError::Spawn(libc::ENOENT));
    }
    if path.contains('/') {
        return out.push(arena.push(&[path.as_bytes()])?).map_err(too_many);
    }
    let search: &[u8] = match path_env {
        Some(p) => p.as_bytes(),
        // Read in place (`std::env::var_os` would copy it into a new string).
        // SAFETY: getenv returns null or a NUL-terminated string of our environment, read
        // before any other change to it (the daemon has one thread).
        None if !clear_env => unsafe {
            let p = libc::getenv(c"PATH".as_ptr());
            if p.is_null() { b"/usr/bin:/bin" } else { core::ffi::CStr::from_ptr(p).to_bytes() }
        },
        None => b"/usr/bin:/bin",
    };
    for dir in search.split(|&b| b == b':').filter(|d| !d.is_empty()).take(CANDIDATES_MAX) {
        out.push(arena.push(&[dir, b"/", path.as_bytes()])?).map_err(too_many)?;
    }
    if out.is_empty() {
        return Err(SpawnError::Spawn(libc::ENOENT));
    }
    Ok(())
}

/// What a full `Vec` of argv, envp or candidates hands back becomes: the list is too long.
fn too_many<X>(_: X) -> SpawnError {
    SpawnError::Spawn(libc::E2BIG)
}

/// Our own environment minus the names `env` sets, as pointers into it.
fn inherit_environment(
    envp: &mut Vec<Str, VECTOR_MAX>,
    env: &[(&str, &str)],
) -> Result<(), SpawnError> {
    // SAFETY: `environ` is a null-terminated array of NUL-terminated strings; the daemon has
    // one thread, so nothing changes it while we read.
    unsafe {
        let mut p = environ;
        while !p.is_null() && !(*p).is_null() {
            let entry = core::ffi::CStr::from_ptr(*p).to_bytes();
            let name = entry.split(|&b| b == b'=').next().unwrap_or(entry);
            if !env.iter().any(|(k, _)| k.as_bytes() == name) {
                envp.push(Str::Raw(*p)).map_err(|_| SpawnError::Spawn(libc::E2BIG))?;
            }
            p = p.add(1);
        }
    }
    Ok(())
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

    fn names(arena: &Arena, offsets: &[usize]) -> std::vec::Vec<std::string::String> {
        let text = |off: usize| {
            let end = arena.buf[off..].iter().position(|&b| b == 0).unwrap_or(0);
            std::string::String::from_utf8_lossy(&arena.buf[off..off + end]).into_owned()
        };
        offsets.iter().map(|&o| text(o)).collect()
    }

    /// The parent only writes strings: the child tries them (no `access` in the loop).
    #[test]
    fn candidates_are_written_not_looked_up() {
        let mut arena = Arena { buf: [0; ARENA_LEN], len: 0 };
        let mut out = Vec::<usize, CANDIDATES_MAX>::new();
        candidates(&mut arena, "tool", Some("/a::/b/c:"), true, &mut out).unwrap();
        assert_eq!(names(&arena, &out), ["/a/tool", "/b/c/tool"]);
        out.clear();
        candidates(&mut arena, "./rel/tool", Some("/a"), true, &mut out).unwrap();
        assert_eq!(names(&arena, &out), ["./rel/tool"]);
        out.clear();
        candidates(&mut arena, "tool", None, true, &mut out).unwrap();
        assert_eq!(names(&arena, &out), ["/usr/bin/tool", "/bin/tool"]);
        out.clear();
        let long: std::string::String = (0..40).map(|i| format!("/d{i}:")).collect();
        candidates(&mut arena, "t", Some(&long), true, &mut out).unwrap();
        assert_eq!(out.len(), CANDIDATES_MAX, "the first directories only");
        out.clear();
        let none = candidates(&mut arena, "tool", Some("::"), true, &mut out);
        assert_eq!(none, Err(SpawnError::Spawn(libc::ENOENT)));
        assert_eq!(candidates(&mut arena, "", None, true, &mut out), Err(SpawnError::Spawn(2)));
    }
}
