//! `realtime on [priority N]`: SCHED_FIFO at priority N and all memory locked
//! (mlockall(MCL_CURRENT | MCL_FUTURE)), so that neither a busy machine nor paging delays a
//! heartbeat. Where the kernel refuses (no CAP_SYS_NICE, RLIMIT_MEMLOCK, a container) the
//! daemon runs on with a clear warning: timing is then best effort.
//!
//! Children must not inherit the realtime class: SCHED_RESET_ON_FORK is set with the policy,
//! so resource scripts run at normal priority.

use std::io;

/// What `apply` managed to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Applied {
    /// SCHED_FIFO is in force.
    pub fifo: bool,
    /// Memory is locked.
    pub locked: bool,
}

/// Switches the calling (only) thread to SCHED_FIFO `priority` with SCHED_RESET_ON_FORK and
/// locks all memory. Each step that fails is returned with its error, the other still tried.
pub fn apply(priority: u8) -> (Applied, Option<io::Error>, Option<io::Error>) {
    let param = libc::sched_param { sched_priority: i32::from(priority) };
    // SAFETY: plain syscall on our own pid (0) with a valid sched_param.
    let rc = unsafe {
        libc::sched_setscheduler(0, libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK, &param)
    };
    let sched_err = (rc != 0).then(io::Error::last_os_error);
    // SAFETY: mlockall takes only flags.
    let rc = unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) };
    let lock_err = (rc != 0).then(io::Error::last_os_error);
    let applied = Applied { fifo: sched_err.is_none(), locked: lock_err.is_none() };
    (applied, sched_err, lock_err)
}

/// The scheduling policy of the calling thread (for status and tests).
pub fn current_policy() -> i32 {
    // SAFETY: plain query on our own pid.
    unsafe { libc::sched_getscheduler(0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs in a child process so the test harness's own threads keep their policy.
    #[test]
    fn fifo_with_reset_on_fork_and_locked_memory() {
        // SAFETY: fork in a test; the child only makes syscalls and exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let (applied, e1, e2) = apply(10);
            let policy = current_policy();
            let ok = applied.fifo
                && applied.locked
                && e1.is_none()
                && e2.is_none()
                && policy & !libc::SCHED_RESET_ON_FORK == libc::SCHED_FIFO;
            // SAFETY: leave the forked child without running the harness's atexit handlers.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(libc::WIFEXITED(status), "child did not exit");
        assert_eq!(libc::WEXITSTATUS(status), 0, "SCHED_FIFO or mlockall failed (run as root)");
    }
}
