//! `realtime on [priority N]`: SCHED_FIFO at priority N and all memory locked
//! (mlockall(MCL_CURRENT | MCL_FUTURE)), so that neither a busy machine nor paging delays a
//! heartbeat. Where the kernel refuses (no CAP_SYS_NICE, RLIMIT_MEMLOCK, a container) the
//! daemon runs on with a clear warning: timing is then best effort.
//!
//! Children must not inherit the realtime class: SCHED_RESET_ON_FORK is set with the policy,
//! so resource scripts run at normal priority.

use std::io;
use std::ptr::NonNull;

use nix::sys::mman::{MlockAllFlags, MmapAdvise, madvise, mlockall};
use nix::unistd::{SysconfVar, sysconf};

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
    // Raw libc: nix has no sched_setscheduler.
    // SAFETY: plain syscall on our own pid (0) with a valid sched_param.
    let rc = unsafe {
        libc::sched_setscheduler(0, libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK, &param)
    };
    let sched_err = (rc != 0).then(io::Error::last_os_error);
    let lock_err = mlockall(MlockAllFlags::MCL_CURRENT | MlockAllFlags::MCL_FUTURE).err();
    let lock_err = lock_err.map(io::Error::from);
    let applied = Applied { fifo: sched_err.is_none(), locked: lock_err.is_none() };
    (applied, sched_err, lock_err)
}

/// Stack kept resident below the caller's frame by `trim_resident`: far more than the loop
/// ever goes deeper (its buffers are a few kB per call).
const STACK_KEEP: usize = 64 * 1024;

/// Pages `trim_resident` handed back, in kB: of executable file mappings and of the stack.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Trimmed {
    /// Text pages of the binary and its libraries.
    pub text_kb: usize,
    /// Stack pages below the caller's frame.
    pub stack_kb: usize,
}

/// Gives back the pages start-up touched and the steady state does not use: it unmaps (from
/// this process's page tables only) the executable file mappings, the binary's and the
/// libraries' code, which the kernel maps back page by page as the loop runs, and the stack
/// below the caller's frame (less `STACK_KEEP`), which the parser and the start-up sequence
/// used. Code pages are clean copies of the file, never written (no text relocations), so
/// dropping them loses nothing; the stack below the caller holds nothing live. Called once,
/// before the loop, and not when memory is locked (`realtime on` wants everything resident).
/// Returns what it dropped; a failure only means nothing (more) was trimmed.
pub fn trim_resident() -> io::Result<Trimmed> {
    let marker = 0u8;
    let here = core::ptr::addr_of!(marker) as usize;
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    let mut trimmed = Trimmed::default();
    for line in maps.lines() {
        let Some((start, end, perms, path)) = parse_maps_line(line) else { continue };
        if perms == "r-xp" && path.starts_with('/') {
            if dont_need(start, end).is_ok() {
                trimmed.text_kb += (end - start) / 1024;
            }
        } else if path == "[stack]" && start <= here && here < end {
            let keep_from = (here & !(page_size() - 1)).saturating_sub(STACK_KEEP);
            if keep_from > start && dont_need(start, keep_from).is_ok() {
                trimmed.stack_kb += (keep_from - start) / 1024;
            }
        }
    }
    Ok(trimmed)
}

/// `start-end perms offset dev inode [path]` of one /proc/PID/maps line.
fn parse_maps_line(line: &str) -> Option<(usize, usize, &str, &str)> {
    let mut fields = line.split_whitespace();
    let (start, end) = fields.next()?.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    let perms = fields.next()?;
    let path = fields.nth(3).unwrap_or("");
    (start < end).then_some((start, end, perms, path))
}

fn dont_need(start: usize, end: usize) -> io::Result<()> {
    let Some(addr) = NonNull::new(start as *mut libc::c_void) else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    // SAFETY: the range is page-aligned (a whole mapping, or the stack cut at a page
    // boundary) and holds no live data: clean file pages of code, which the kernel maps back
    // from the file on the next touch, or stack below every live frame, which reads back as
    // zeros.
    unsafe { madvise(addr, end - start, MmapAdvise::MADV_DONTNEED) }.map_err(io::Error::from)
}

fn page_size() -> usize {
    let n = sysconf(SysconfVar::PAGE_SIZE).ok().flatten().unwrap_or(4096);
    usize::try_from(n).unwrap_or(4096).max(4096)
}

/// The scheduling policy of the calling thread (for status and tests).
pub fn current_policy() -> i32 {
    // Raw libc: nix has no sched_getscheduler.
    // SAFETY: plain query on our own pid.
    unsafe { libc::sched_getscheduler(0) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::wait::{WaitStatus, waitpid};
    use nix::unistd::ForkResult;

    /// Runs in a child process so the test harness's own threads keep their policy.
    #[test]
    fn fifo_with_reset_on_fork_and_locked_memory() {
        // SAFETY: fork in a test; the child only makes syscalls and exits.
        let fork = unsafe { nix::unistd::fork() }.expect("fork");
        let ForkResult::Parent { child } = fork else {
            let (applied, e1, e2) = apply(10);
            let policy = current_policy();
            let ok = applied.fifo
                && applied.locked
                && e1.is_none()
                && e2.is_none()
                && policy & !libc::SCHED_RESET_ON_FORK == libc::SCHED_FIFO;
            // SAFETY: leave the forked child without running the harness's atexit handlers
            // (nix has no _exit).
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        };
        match waitpid(child, None).expect("waitpid") {
            WaitStatus::Exited(_, 0) => {}
            WaitStatus::Exited(..) => panic!("SCHED_FIFO or mlockall failed (run as root)"),
            other => panic!("child did not exit: {other:?}"),
        }
    }

    #[test]
    fn maps_lines_parse() {
        let line = "7f31-7f32 r-xp 00026000 fe:01 1234   /usr/lib/x86_64-linux-gnu/libc.so.6";
        assert_eq!(
            parse_maps_line(line),
            Some((0x7f31, 0x7f32, "r-xp", "/usr/lib/x86_64-linux-gnu/libc.so.6"))
        );
        assert_eq!(
            parse_maps_line("7ffe-7fff rw-p 00000000 00:00 0  [stack]").unwrap().3,
            "[stack]"
        );
        assert_eq!(parse_maps_line("7f-80 rw-p 00000000 00:00 0").unwrap().3, "");
        assert_eq!(parse_maps_line("zz-80 rw-p 0 0 0"), None);
        assert_eq!(parse_maps_line("80-7f rw-p 0 0 0"), None);
        assert_eq!(parse_maps_line(""), None);
    }

    #[test]
    fn trimming_keeps_the_process_running() {
        let before = resident_kb();
        let trimmed = trim_resident().expect("/proc/self/maps is readable");
        let after = resident_kb();
        assert!(trimmed.text_kb > 0, "the test binary's code is an executable mapping");
        // The code pages went: far more than the few that reading the figure maps back.
        assert!(after < before, "VmRSS {before} kB before, {after} kB after");
        // Code runs on after its pages were dropped, and the heap still works.
        let v: Vec<u64> = (0..1000).collect();
        assert_eq!(v.iter().sum::<u64>(), 499_500);
    }

    fn resident_kb() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
            .unwrap_or(0)
    }
}
