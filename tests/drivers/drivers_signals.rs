//! The signalfd driver: signals raised to this thread come out of `read` as values.
//! `raise` is thread-directed, so the harness's other threads (which do not block these
//! signals) never see them. But a signalfd also reads what is pending for the whole process,
//! such as the SIGCHLD of another test's child that exited while its parent thread blocked
//! SIGCHLD (as `posix_spawn` does for a moment), so the test has a process of its own.

use std::os::fd::{AsRawFd, BorrowedFd};

use crate::common;
use hapair::drivers::signals::{Signal, Signals};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal as Nix, raise};

#[test]
fn raised_signals_are_read_in_order_and_never_block() {
    if !common::own_process() {
        return;
    }
    let mut signals = Signals::new().expect("signalfd");
    assert_eq!(signals.read(), None, "nothing pending yet");
    let cases = [
        (Nix::SIGTERM, Signal::Term),
        (Nix::SIGINT, Signal::Int),
        (Nix::SIGHUP, Signal::Hup),
        (Nix::SIGCHLD, Signal::Chld),
        (Nix::SIGUSR1, Signal::Usr1),
    ];
    for (raw, ours) in cases {
        raise(raw).expect("raise");
        // SAFETY: the fd belongs to `signals`, alive for the whole test.
        let fd = unsafe { BorrowedFd::borrow_raw(signals.as_raw_fd()) };
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        let ready = poll(&mut fds, PollTimeout::from(10_000u16)).expect("poll");
        assert_eq!(ready, 1, "signalfd readable after {raw}");
        assert_eq!(signals.read(), Some(ours));
        assert_eq!(signals.read(), None);
    }
}
