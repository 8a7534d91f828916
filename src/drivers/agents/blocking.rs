//! Running an agent action synchronously, with a timeout: for start-up (reading meta-data
//! before the loop) and `hapair check`, and for tests. Never from the loop: it blocks until
//! the action ends, and it allocates.
//!
//! The timeout is a timerfd armed once, so this file reads no clock. The action runs in its own
//! process group; on timeout the whole group gets SIGKILL and is reaped. The end of the action
//! is its exit, not the end of its output: a daemon it started may keep the pipes open.

use super::{
    Action, AgentError, AgentKind, AgentPaths, AgentSpec, Exit, Invocation, MetaData, Outcome,
    command_for, interpret, locate, timeout_for,
};
use crate::core::time::Duration;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, killpg};
use nix::sys::time::{TimeSpec, TimeValLike};
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use nix::unistd::Pid;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::process::{Child, Stdio};

/// Output kept per stream; the rest is read and dropped.
const OUTPUT_MAX: usize = 1 << 20;
/// How often the child's exit is checked while its output is quiet.
const EXIT_POLL_MS: u16 = 20;

/// A finished synchronous action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    /// How it ended.
    pub exit: Exit,
    /// Its standard output (at most 1 MiB).
    pub stdout: Vec<u8>,
    /// Its standard error (at most 1 MiB).
    pub stderr: Vec<u8>,
}

/// Runs `inv` to its end or `timeout`, whichever comes first, and collects its output.
/// On timeout the process group is killed and reaped and the exit is [`Exit::TimedOut`].
pub fn run_blocking(inv: &Invocation, timeout: Duration) -> io::Result<Finished> {
    let timer = TimerFd::new(ClockId::CLOCK_MONOTONIC, TimerFlags::TFD_CLOEXEC)?;
    let ms = i64::try_from(timeout.total_millis()).unwrap_or(i64::MAX).max(1);
    timer.set(Expiration::OneShot(TimeSpec::milliseconds(ms)), TimerSetTimeFlags::empty())?;
    let mut child = inv.to_command().stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let result = collect(&mut child, &timer);
    if !matches!(result, Ok(Finished { exit: Exit::Code(_) | Exit::Signal(_), .. })) {
        // Timed out or broke: kill the whole group and reap the leader, so nothing leaks.
        let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
        let _ = child.wait();
    }
    result
}

/// Reads the agent's meta-data: locates it, runs `meta-data` (with the resource's timeout or
/// the default) and parses what it prints. `Ok(None)` for exec and LSB resources.
pub fn fetch_meta_data(
    spec: &AgentSpec,
    paths: &AgentPaths,
) -> Result<Option<MetaData>, AgentError> {
    if !matches!(spec.kind, AgentKind::Ocf { .. }) {
        return Ok(None);
    }
    locate(spec, paths)?;
    let timeout = timeout_for(spec, None, Action::MetaData);
    let Some(inv) = command_for(spec, Action::MetaData, paths, timeout)? else {
        return Ok(None);
    };
    let done = run_blocking(&inv, timeout).map_err(|e| AgentError::Spawn(e.kind()))?;
    match interpret(spec.kind.class(), Action::MetaData, done.exit) {
        Outcome::Ok => {}
        Outcome::Failed(e) => return Err(AgentError::MetaDataFailed(e)),
        // INVARIANT: `interpret` answers `NotRunning` for monitor only.
        Outcome::NotRunning => unreachable!("only monitor reads as not running"),
    }
    MetaData::parse_bytes(&done.stdout).map(Some).map_err(AgentError::MetaDataInvalid)
}

/// Drains the child's stdout and stderr until it exits or the timer fires. A timeout returns
/// `Exit::TimedOut` with the child still to be killed by the caller.
fn collect(child: &mut Child, timer: &TimerFd) -> io::Result<Finished> {
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let fds = [out.as_ref().map(|o| o.as_fd()), err.as_ref().map(|e| e.as_fd())];
    for fd in fds.into_iter().flatten() {
        fcntl(fd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    }
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    loop {
        if let Some(status) = child.try_wait()? {
            drain(&mut out, &mut stdout)?;
            drain(&mut err, &mut stderr)?;
            return Ok(Finished { exit: status.into(), stdout, stderr });
        }
        let mut fds = vec![PollFd::new(timer.as_fd(), PollFlags::POLLIN)];
        fds.extend(out.as_ref().map(|o| PollFd::new(o.as_fd(), PollFlags::POLLIN)));
        fds.extend(err.as_ref().map(|e| PollFd::new(e.as_fd(), PollFlags::POLLIN)));
        match poll(&mut fds, PollTimeout::from(EXIT_POLL_MS)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        let fired = fds[0].revents().is_some_and(|r| !r.is_empty());
        drop(fds);
        if fired {
            return Ok(Finished { exit: Exit::TimedOut, stdout, stderr });
        }
        drain(&mut out, &mut stdout)?;
        drain(&mut err, &mut stderr)?;
    }
}

/// Reads what is available from a non-blocking pipe; closes it (sets `None`) at end of file.
fn drain<R: Read>(pipe: &mut Option<R>, buf: &mut Vec<u8>) -> io::Result<()> {
    let Some(r) = pipe else { return Ok(()) };
    let mut chunk = [0u8; 4096];
    loop {
        match r.read(&mut chunk) {
            Ok(0) => {
                *pipe = None;
                return Ok(());
            }
            Ok(n) => {
                let room = OUTPUT_MAX.saturating_sub(buf.len());
                buf.extend_from_slice(&chunk[..n.min(room)]);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
