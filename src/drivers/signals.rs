//! The daemon's signals as a pollable file descriptor: TERM, INT, HUP, CHLD and USR1 are
//! blocked for the process and read from a non-blocking signalfd by the event loop.
//!
//! This file only turns signals into values; what each one means (shutdown, reload, reap,
//! stats dump) is the event loop's business. It installs no handlers. Block the signals
//! before any thread is spawned, so that every thread inherits the mask.

use std::os::fd::{AsRawFd, RawFd};

use nix::sys::signal::{SigSet, SigmaskHow, Signal as NixSignal, pthread_sigmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// A signal the daemon reacts to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM: graceful shutdown.
    Term,
    /// SIGINT: graceful shutdown (Ctrl-C in the foreground).
    Int,
    /// SIGHUP: reload the configuration.
    Hup,
    /// SIGCHLD: a child process changed state; reap.
    Chld,
    /// SIGUSR1: dump counters to the log.
    Usr1,
}

impl Signal {
    const ALL: [(NixSignal, Signal); 5] = [
        (NixSignal::SIGTERM, Signal::Term),
        (NixSignal::SIGINT, Signal::Int),
        (NixSignal::SIGHUP, Signal::Hup),
        (NixSignal::SIGCHLD, Signal::Chld),
        (NixSignal::SIGUSR1, Signal::Usr1),
    ];

    fn from_number(signo: u32) -> Option<Signal> {
        let signo = i32::try_from(signo).ok()?;
        Signal::ALL.iter().find(|(s, _)| *s as i32 == signo).map(|(_, ours)| *ours)
    }
}

/// The non-blocking signalfd. Dropping it closes the fd; the signals stay blocked.
pub struct Signals {
    fd: SignalFd,
}

impl Signals {
    /// Blocks the five signals in the calling thread and opens a signalfd for them.
    /// Call it from the main thread before spawning any other thread.
    pub fn new() -> nix::Result<Signals> {
        let mut mask = SigSet::empty();
        for (s, _) in Signal::ALL {
            mask.add(s);
        }
        pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)?;
        let fd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
        Ok(Signals { fd })
    }

    /// The next pending signal, `None` when there is none. Several SIGCHLD may coalesce into
    /// one: the loop reaps every known child on each.
    pub fn read(&mut self) -> Option<Signal> {
        loop {
            match self.fd.read_signal() {
                Ok(Some(info)) => match Signal::from_number(info.ssi_signo) {
                    Some(s) => return Some(s),
                    // Not one of ours (cannot happen with our mask): skip it.
                    None => continue,
                },
                Ok(None) => return None,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    log::warn!("signalfd read failed: {e}");
                    return None;
                }
            }
        }
    }
}

impl AsRawFd for Signals {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
