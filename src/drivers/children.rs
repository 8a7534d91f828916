//! The child-process supervisor: resource actions, notify, fence and check commands run as
//! children in their own process groups, with a timeout (TERM to the group, then KILL after
//! a grace period), and are reaped with `waitpid(WNOHANG)` for our own pids only.
//!
//! The table has a fixed capacity (`limits::CHILDREN_MAX`); a full table refuses a spawn
//! cleanly. Nothing here allocates, spawning included (fork and execve with the strings in
//! stack buffers: monitors spawn in the steady state), nor do reaping, timeouts and output
//! draining. Nothing here blocks. This file does not decide what to run or
//! what an exit status means: the caller's `tag` comes back with the result.
//!
//! Call protocol for the event loop: `spawn` when the core says so; on SIGCHLD and on every
//! wake drain `poll_exited(now)` until `None`; call `poll_timeouts(now)` when
//! `next_deadline()` has passed; read output when an fd from `output_fds()` is readable
//! (`drain_output`), so that a chatty child never fills its pipe.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use heapless::Vec;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{Signal, killpg};
use nix::sys::stat::Mode;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, pipe2};

use crate::core::time::{Duration, Instant};
use crate::limits::CHILDREN_MAX;

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
    /// Slots in use: with none (the steady state) every per-wake scan is skipped.
    live: usize,
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
            next_id: 1,
            kill_grace,
            stats: ChildStats::default(),
        }
    }

    /// Starts a child in its own process group, stdin from /dev/null, stdout and stderr into
    /// a non-blocking pipe whose tail is kept. Allocates nothing (see `launch`).
    pub fn spawn(&mut self, now: Instant, spec: &Spec<'_, T>) -> Result<ChildId, SpawnError> {
        let Some(index) = self.slots.iter().position(Option::is_none) else {
            self.stats.refused_full += 1;
            return Err(SpawnError::TableFull);
        };
        let (read, write) =
            pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).map_err(|e| SpawnError::Pipe(e as i32))?;
        let pid = launch(spec, &write)?;
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
            output: Some(read),
            tail: Vec::new(),
        });
        self.live += 1;
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

unsafe extern "C" {
    static environ: *const *const libc::c_char;
}

/// fork + execve with every string prepared in stack buffers, so that a spawn allocates
/// nothing (monitors spawn every `monitor_interval`, in the steady state). The child only
/// makes async-signal-safe calls: signal mask and SIGPIPE back to defaults, its own process
/// group, /dev/null and the pipe as stdio, execve. An exec failure comes back through a
/// close-on-exec pipe as the errno of `SpawnError::Spawn`, as `std::process` does; waiting
/// for it is as short as the exec.
fn launch<T>(spec: &Spec<'_, T>, output: &OwnedFd) -> Result<Pid, SpawnError> {
    let mut arena = Arena { buf: [0; ARENA_LEN], len: 0 };
    let mut argv: Vec<Str, VECTOR_MAX> = Vec::new();
    let mut envp: Vec<Str, VECTOR_MAX> = Vec::new();
    let program = prepare(spec, &mut arena, &mut argv, &mut envp)?;
    let base = arena.buf.as_ptr();
    let ptrs = |list: &Vec<Str, VECTOR_MAX>| {
        let mut out = [core::ptr::null::<libc::c_char>(); VECTOR_MAX + 1];
        for (slot, s) in out.iter_mut().zip(list.iter()) {
            *slot = match *s {
                // SAFETY: every offset was returned by `push`, so it lies inside `buf`.
                Str::Arena(off) => unsafe { base.add(off).cast() },
                Str::Raw(p) => p,
            };
        }
        out
    };
    let (argv, envp) = (ptrs(&argv), ptrs(&envp));
    // SAFETY: `program` is an offset returned by `push`.
    let program = unsafe { base.add(program).cast::<libc::c_char>() };
    let devnull = stdin_for(spec.stdin)?;
    let (err_read, err_write) = pipe2(OFlag::O_CLOEXEC).map_err(|e| SpawnError::Pipe(e as i32))?;
    // SAFETY: the child runs only async-signal-safe calls (`exec_child`) before execve or
    // _exit, so forking from a process that may have other threads (tests) is sound.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(SpawnError::Spawn(Errno::last() as i32));
    }
    if pid == 0 {
        // SAFETY: in the child; every pointer is valid (our copy of the parent's memory).
        unsafe {
            exec_child(&devnull, output, &err_write, program, &argv, &envp);
        }
    }
    drop(err_write);
    let pid = Pid::from_raw(pid);
    // Also here, so the group exists before any killpg of ours, whoever runs first.
    let _ = nix::unistd::setpgid(pid, pid);
    let mut errno = [0u8; 4];
    let n = loop {
        match nix::unistd::read(&err_read, &mut errno) {
            Err(Errno::EINTR) => continue,
            other => break other.unwrap_or(0),
        }
    };
    if n == errno.len() {
        // The exec failed and the child is exiting: reap it now.
        let _ = waitpid(pid, None);
        return Err(SpawnError::Spawn(i32::from_ne_bytes(errno)));
    }
    Ok(pid)
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

/// Writes the program path, argv and envp of `spec` into `arena`; returns the program's
/// offset.
fn prepare<T>(
    spec: &Spec<'_, T>,
    arena: &mut Arena,
    argv: &mut Vec<Str, VECTOR_MAX>,
    envp: &mut Vec<Str, VECTOR_MAX>,
) -> Result<usize, SpawnError> {
    let too_many = |_| SpawnError::Spawn(libc::E2BIG);
    let program = match spec.program {
        Program::Shell(line) => {
            argv.push(Str::Arena(arena.push(&[SHELL])?)).map_err(too_many)?;
            argv.push(Str::Arena(arena.push(&[b"-c"])?)).map_err(too_many)?;
            argv.push(Str::Arena(arena.push(&[line.as_bytes()])?)).map_err(too_many)?;
            argv.push(Str::Arena(arena.push(&[b"hapair"])?)).map_err(too_many)?;
            arena.push(&[SHELL])?
        }
        Program::Exec(path) => {
            argv.push(Str::Arena(arena.push(&[path.as_bytes()])?)).map_err(too_many)?;
            let path_env = spec.env.iter().find(|(k, _)| *k == "PATH").map(|(_, v)| *v);
            resolve(arena, path, path_env, spec.clear_env)?
        }
    };
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
    Ok(program)
}

/// The child's side of `launch`; never returns.
///
/// # Safety
/// Call only in a freshly forked child, with NUL-terminated, null-ended vectors.
unsafe fn exec_child(
    devnull: &OwnedFd,
    output: &OwnedFd,
    err: &OwnedFd,
    program: *const libc::c_char,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> ! {
    // SAFETY: async-signal-safe calls on valid fds and pointers (see the caller).
    unsafe {
        let mut empty: libc::sigset_t = core::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, core::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::setpgid(0, 0);
        let ok = libc::dup2(devnull.as_raw_fd(), 0) >= 0
            && libc::dup2(output.as_raw_fd(), 1) >= 0
            && libc::dup2(output.as_raw_fd(), 2) >= 0;
        if ok {
            libc::execve(program, argv.as_ptr(), envp.as_ptr());
        }
        let errno = *libc::__errno_location();
        let bytes = errno.to_ne_bytes();
        libc::write(err.as_raw_fd(), bytes.as_ptr().cast(), bytes.len());
        libc::_exit(127)
    }
}

/// The program to execve: `path` itself when it has a slash, else the first executable
/// `DIR/path` along `PATH` (the child's when the spec sets one, else ours), like execvp.
fn resolve(
    arena: &mut Arena,
    path: &str,
    path_env: Option<&str>,
    clear_env: bool,
) -> Result<usize, SpawnError> {
    if path.contains('/') {
        return arena.push(&[path.as_bytes()]);
    }
    let search: &[u8] = match path_env {
        Some(p) => p.as_bytes(),
        // SAFETY: getenv returns null or a NUL-terminated string of our environment, read
        // before any other change to it (the daemon has one thread).
        None if !clear_env => unsafe {
            let p = libc::getenv(c"PATH".as_ptr());
            if p.is_null() { b"/usr/bin:/bin" } else { core::ffi::CStr::from_ptr(p).to_bytes() }
        },
        None => b"/usr/bin:/bin",
    };
    for dir in search.split(|&b| b == b':').filter(|d| !d.is_empty()) {
        let mark = arena.len;
        let candidate = arena.push(&[dir, b"/", path.as_bytes()])?;
        // SAFETY: `candidate` is a NUL-terminated string in the arena.
        let found =
            unsafe { libc::access(arena.buf.as_ptr().add(candidate).cast(), libc::X_OK) == 0 };
        if found {
            return Ok(candidate);
        }
        arena.len = mark;
    }
    Err(SpawnError::Spawn(libc::ENOENT))
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
}
