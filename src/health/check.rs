//! When each `check NAME CMD [interval][timeout]` runs and what its result means. Pure: the
//! children supervisor spawns and kills the processes and reports back here.
//!
//! Protocol for the event loop: `poll_start(now)` hands out the index of a check to spawn
//! (marking it running); a running check past its timeout comes out of `poll_timeout(now)`
//! once, for the supervisor to kill; the exit is reported with `handle_exit`. The next run
//! is due one interval after the previous *start*, never while one is still running (a
//! check that takes longer than its interval simply runs back to back). The first run of
//! every check is due at `new(.., now)`. Exit 0 is ok; any other exit, a signal, a timeout
//! or a failure to spawn makes the check failing until a later run exits 0. A run that found
//! no free child slot is `skip`ped: no verdict, the last result stands.

use crate::core::time::{Duration, Instant};
use crate::limits::CHECKS_MAX;

/// How one check is scheduled (from its `check` line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckSpec {
    /// Time from one start to the next (default 10 s).
    pub interval: Duration,
    /// How long one run may take before it is killed and counted failed (default 5 s).
    pub timeout: Duration,
}

impl Default for CheckSpec {
    fn default() -> CheckSpec {
        CheckSpec { interval: Duration::from_secs(10), timeout: Duration::from_secs(5) }
    }
}

/// How one run ended, as the supervisor saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckExit {
    /// The command exited with this status.
    Exited(i32),
    /// The command was killed by this signal (not by us for a timeout).
    Signaled(i32),
    /// The command ran past its timeout and was killed.
    TimedOut,
    /// The command could not be started.
    SpawnFailed,
}

impl CheckExit {
    /// True only for a clean `exit 0`.
    pub const fn is_ok(self) -> bool {
        matches!(self, CheckExit::Exited(0))
    }
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    spec: CheckSpec,
    next_start: Instant,
    running_since: Option<Instant>,
    timeout_reported: bool,
    last: Option<CheckExit>,
}

/// The schedule and last result of every check.
#[derive(Clone, Debug, Default)]
pub struct CheckSchedule {
    slots: heapless::Vec<Slot, CHECKS_MAX>,
}

impl CheckSchedule {
    /// Every check in `specs` (at most `CHECKS_MAX`, the rest are handed back as an error
    /// count), each first due at `now`.
    pub fn new(specs: &[CheckSpec], now: Instant) -> Result<CheckSchedule, usize> {
        let mut slots = heapless::Vec::new();
        for spec in specs {
            let slot = Slot {
                spec: *spec,
                next_start: now,
                running_since: None,
                timeout_reported: false,
                last: None,
            };
            if slots.push(slot).is_err() {
                return Err(specs.len() - CHECKS_MAX);
            }
        }
        Ok(CheckSchedule { slots })
    }

    /// Number of checks.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when there are no checks.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The next check to spawn now, marked running; `None` when none is due.
    pub fn poll_start(&mut self, now: Instant) -> Option<usize> {
        let (i, slot) = self
            .slots
            .iter_mut()
            .enumerate()
            .find(|(_, s)| s.running_since.is_none() && s.next_start <= now)?;
        slot.running_since = Some(now);
        slot.timeout_reported = false;
        slot.next_start = now + slot.spec.interval;
        Some(i)
    }

    /// A running check past its timeout, reported once per run, for the supervisor to kill
    /// (it then reports `CheckExit::TimedOut`).
    pub fn poll_timeout(&mut self, now: Instant) -> Option<usize> {
        let (i, slot) = self.slots.iter_mut().enumerate().find(|(_, s)| {
            !s.timeout_reported && s.running_since.is_some_and(|t| now >= t + s.spec.timeout)
        })?;
        slot.timeout_reported = true;
        Some(i)
    }

    /// The run of check `index` ended. Unknown indexes and checks not running are ignored
    /// and return false.
    pub fn handle_exit(&mut self, index: usize, exit: CheckExit) -> bool {
        match self.slots.get_mut(index) {
            Some(slot) if slot.running_since.is_some() => {
                slot.running_since = None;
                slot.last = Some(exit);
                true
            }
            _ => false,
        }
    }

    /// Check `index`, handed out by `poll_start`, could not be started for want of a child
    /// slot: it is no longer running, its last result stands, and the next run is due one
    /// interval after this one was. Unknown indexes and checks not running are ignored.
    pub fn skip(&mut self, index: usize) {
        if let Some(slot) = self.slots.get_mut(index) {
            slot.running_since = None;
        }
    }

    /// The earliest instant at which `poll_start` or `poll_timeout` has something.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.slots
            .iter()
            .filter_map(|s| match s.running_since {
                Some(t) if !s.timeout_reported => Some(t + s.spec.timeout),
                Some(_) => None,
                None => Some(s.next_start),
            })
            .min()
    }

    /// The last result of check `index`, `None` before its first run ended.
    pub fn last_exit(&self, index: usize) -> Option<CheckExit> {
        self.slots.get(index).and_then(|s| s.last)
    }

    /// True when check `index` is running.
    pub fn is_running(&self, index: usize) -> bool {
        self.slots.get(index).is_some_and(|s| s.running_since.is_some())
    }

    /// True when the last run of check `index` failed.
    pub fn is_failing(&self, index: usize) -> bool {
        self.last_exit(index).is_some_and(|e| !e.is_ok())
    }

    /// Indexes of the failing checks with their last result.
    pub fn failing(&self) -> impl Iterator<Item = (usize, CheckExit)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.last.filter(|e| !e.is_ok()).map(|e| (i, e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn spec(interval_ms: u64, timeout_ms: u64) -> CheckSpec {
        CheckSpec {
            interval: Duration::from_millis(interval_ms),
            timeout: Duration::from_millis(timeout_ms),
        }
    }

    #[test]
    fn first_run_due_at_start_then_every_interval() {
        let mut s = CheckSchedule::new(&[spec(10_000, 5_000)], at(0)).unwrap();
        assert_eq!(s.poll_start(at(0)), Some(0));
        assert_eq!(s.poll_start(at(0)), None, "running");
        assert_eq!(s.next_deadline(), Some(at(5_000)));
        assert!(s.handle_exit(0, CheckExit::Exited(0)));
        assert_eq!(s.next_deadline(), Some(at(10_000)));
        assert_eq!(s.poll_start(at(9_999)), None);
        assert_eq!(s.poll_start(at(10_000)), Some(0));
        assert!(!s.is_failing(0));
    }

    #[test]
    fn results_map_to_failing() {
        let mut s = CheckSchedule::new(&[spec(1000, 500)], at(0)).unwrap();
        for (exit, failing) in [
            (CheckExit::Exited(1), true),
            (CheckExit::Exited(0), false),
            (CheckExit::Signaled(9), true),
            (CheckExit::SpawnFailed, true),
        ] {
            let now = s.next_deadline().unwrap();
            assert_eq!(s.poll_start(now), Some(0));
            s.handle_exit(0, exit);
            assert_eq!(s.is_failing(0), failing, "{exit:?}");
        }
        assert_eq!(s.failing().collect::<Vec<_>>(), vec![(0, CheckExit::SpawnFailed)]);
    }

    #[test]
    fn timeout_reported_once_and_fails() {
        let mut s = CheckSchedule::new(&[spec(1000, 500), spec(700, 100)], at(0)).unwrap();
        assert_eq!(s.poll_start(at(0)), Some(0));
        assert_eq!(s.poll_start(at(0)), Some(1));
        s.handle_exit(1, CheckExit::Exited(0));
        assert_eq!(s.poll_timeout(at(499)), None);
        assert_eq!(s.poll_timeout(at(500)), Some(0));
        assert_eq!(s.poll_timeout(at(600)), None);
        assert_eq!(s.next_deadline(), Some(at(700)));
        s.handle_exit(0, CheckExit::TimedOut);
        assert!(s.is_failing(0) && !s.is_failing(1));
    }

    #[test]
    fn a_skipped_round_keeps_the_last_result() {
        let mut s = CheckSchedule::new(&[spec(1000, 500)], at(0)).unwrap();
        assert_eq!(s.poll_start(at(0)), Some(0));
        s.handle_exit(0, CheckExit::Exited(0));
        assert_eq!(s.poll_start(at(1000)), Some(0));
        s.skip(0);
        assert!(!s.is_running(0) && !s.is_failing(0), "a skipped run is no failure");
        assert_eq!(s.last_exit(0), Some(CheckExit::Exited(0)));
        assert_eq!(s.next_deadline(), Some(at(2000)), "the next round, one interval on");
        assert_eq!(s.poll_timeout(at(1500)), None, "nothing to kill");
        assert_eq!(s.poll_start(at(2000)), Some(0));
    }

    #[test]
    fn stray_exits_and_overflow_are_refused() {
        let mut s = CheckSchedule::new(&[spec(1000, 500)], at(0)).unwrap();
        assert!(!s.handle_exit(0, CheckExit::Exited(0)), "not running");
        assert!(!s.handle_exit(7, CheckExit::Exited(0)));
        let many = [CheckSpec::default(); CHECKS_MAX + 2];
        assert_eq!(CheckSchedule::new(&many, at(0)).unwrap_err(), 2);
    }
}
