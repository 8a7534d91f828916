//! When the loop pets the hardware watchdog: the cadence and the lag gate. Pure: the driver
//! (`drivers::watchdog`) writes the byte when this module says so; the loop measures its lag
//! with `loop_lag` and the core says whether petting is allowed at all (`FeedWatchdog`); the
//! simulator runs the same gate on the wakes of its hung nodes.
//!
//! Rules:
//! - Cadence: a pet is due when none was written yet or `timeout/3` after the last one
//!   (`PetSchedule`). A due pet that was asked about (`poll_due`) but not written (the gate
//!   withheld it, or the write failed) is tried again `WITHHELD_RETRY` after that attempt,
//!   not at once: a loop that may not pet sleeps between attempts instead of spinning, and
//!   measures its lag against a deadline it can meet, so that petting resumes once the loop
//!   keeps time again (e.g. after SIGSTOP/SIGCONT).
//! - Gate: petting is allowed only while the loop's lag (how late it woke past the deadline
//!   it asked `poll(2)` for, `loop_lag`) stays under `lag_max`, by default half the timeout
//!   (a loop that late could not pet in time anyway, and something in it is stuck), and the
//!   core allows it (`PetGate::may_pet`). After a stall of half the timeout or more, the wake
//!   that ends it does not pet; the next one does, if the core still allows it.
//!
//! No I/O, no clock: instants come in, verdicts and deadlines go out.

use crate::core::time::{Duration, Instant};

/// How long after a withheld (or failed) pet the loop is woken to try again.
pub const WITHHELD_RETRY: Duration = Duration::from_millis(100);

/// How late the loop woke: past the `deadline` it asked `poll(2)` for when it `polled`; a
/// deadline already past when it polled is not lag of this wake.
pub fn loop_lag(now: Instant, deadline: Instant, polled: Instant) -> Duration {
    now.saturating_since(deadline.max(polled))
}

/// Whether the loop may pet now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PetGate {
    /// The largest loop lag at which petting is still allowed (exclusive).
    pub lag_max: Duration,
}

impl PetGate {
    /// The default gate for a watchdog `timeout`: lag under timeout/2.
    pub const fn for_timeout(timeout: Duration) -> PetGate {
        PetGate { lag_max: Duration::from_millis(timeout.total_millis() / 2) }
    }

    /// True when the loop may pet: lag under the bound and the core allows it.
    pub const fn may_pet(&self, loop_lag: Duration, core_allows: bool) -> bool {
        core_allows && loop_lag.total_millis() < self.lag_max.total_millis()
    }
}

/// When pets are due: every `timeout/3`, and `WITHHELD_RETRY` after an attempt that wrote
/// nothing.
///
/// Call protocol: `poll_due(now)` when the loop considers petting (a yes is taken as an
/// attempt); `handle_petted(now)` when the byte was written; sleep no longer than
/// `next_deadline()`. `now` never goes backwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PetSchedule {
    interval: Duration,
    last_pet: Option<Instant>,
    /// When `poll_due` last answered yes (the loop's last attempt).
    last_asked: Option<Instant>,
}

impl PetSchedule {
    /// The cadence for a watchdog `timeout`: a pet every third of it, the first at once.
    pub const fn for_timeout(timeout: Duration) -> PetSchedule {
        let interval = Duration::from_millis(timeout.total_millis() / 3);
        PetSchedule { interval, last_pet: None, last_asked: None }
    }

    /// The time between pets.
    pub const fn interval(&self) -> Duration {
        self.interval
    }

    /// True when a pet is due at `now` (never petted, or an interval since the last one). A
    /// yes is taken as the loop's attempt: if no `handle_petted` follows, `next_deadline` is
    /// `WITHHELD_RETRY` after `now`.
    pub fn poll_due(&mut self, now: Instant) -> bool {
        assert!(self.last_asked.is_none_or(|t| now >= t), "time went backwards: {now}");
        let due = self.last_pet.is_none_or(|t| now >= t + self.interval);
        if due {
            self.last_asked = Some(now);
        }
        due
    }

    /// The byte was written at `now`.
    pub fn handle_petted(&mut self, now: Instant) {
        assert!(self.last_pet.is_none_or(|t| now >= t), "time went backwards: {now}");
        self.last_pet = Some(now);
    }

    /// When the next pet is due: `Instant::ZERO` (at once) before the first; after an attempt
    /// that wrote nothing, `WITHHELD_RETRY` after it.
    pub fn next_deadline(&self) -> Instant {
        let due = self.last_pet.map_or(Instant::ZERO, |t| t + self.interval);
        match self.last_asked {
            Some(asked) if asked >= due => due.max(asked + WITHHELD_RETRY),
            _ => due,
        }
    }

    /// When the last pet was written.
    pub const fn last_pet(&self) -> Option<Instant> {
        self.last_pet
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn gate_needs_core_and_small_lag() {
        let gate = PetGate::for_timeout(Duration::from_secs(10));
        assert_eq!(gate.lag_max, Duration::from_secs(5));
        assert!(gate.may_pet(Duration::ZERO, true));
        assert!(gate.may_pet(Duration::from_millis(4999), true));
        assert!(!gate.may_pet(Duration::from_secs(5), true), "half the timeout: withheld");
        assert!(!gate.may_pet(Duration::ZERO, false));
        // A zero timeout (none configured) never pets; an odd one rounds the half down.
        assert!(!PetGate::for_timeout(Duration::ZERO).may_pet(Duration::ZERO, true));
        assert_eq!(PetGate::for_timeout(Duration::from_millis(3)).lag_max.total_millis(), 1);
    }

    #[test]
    fn lag_is_lateness_past_the_deadline_asked_for() {
        assert_eq!(loop_lag(at(150), at(100), at(50)), Duration::from_millis(50));
        assert_eq!(loop_lag(at(90), at(100), at(50)), Duration::ZERO, "woke early");
        // The deadline had passed when we polled (a busy pass): lag counts from the poll.
        assert_eq!(loop_lag(at(150), at(20), at(120)), Duration::from_millis(30));
    }

    #[test]
    fn pets_every_third_of_the_timeout() {
        let mut s = PetSchedule::for_timeout(Duration::from_secs(9));
        assert_eq!((s.interval(), s.next_deadline()), (Duration::from_secs(3), Instant::ZERO));
        assert!(s.poll_due(at(100)));
        s.handle_petted(at(100));
        assert!(!s.poll_due(at(3099)));
        assert_eq!(s.next_deadline(), at(3100));
        assert!(s.poll_due(at(3100)));
        s.handle_petted(at(3100));
        assert_eq!((s.last_pet(), s.next_deadline()), (Some(at(3100)), at(6100)));
    }

    #[test]
    fn a_withheld_pet_is_retried_later_not_at_once() {
        let mut s = PetSchedule::for_timeout(Duration::from_secs(3));
        assert!(s.poll_due(at(0)));
        s.handle_petted(at(0));
        assert_eq!(s.next_deadline(), at(1000));
        // Due at 1 s; the loop asks at 4 s (it was stopped) and writes nothing.
        assert!(s.poll_due(at(4000)));
        assert_eq!(s.next_deadline(), at(4000) + WITHHELD_RETRY);
        // A first attempt that wrote nothing (a failing device) is retried the same way.
        let mut first = PetSchedule::for_timeout(Duration::from_secs(3));
        assert!(first.poll_due(at(0)));
        assert_eq!(first.next_deadline(), at(0) + WITHHELD_RETRY);
        // The next attempt pets, and the cadence starts again from there.
        assert!(s.poll_due(at(4100)));
        s.handle_petted(at(4100));
        assert_eq!(s.next_deadline(), at(5100));
    }

    /// The lag gate after a stall, as the loop and the simulator run it: the wake that ends
    /// a stall of half the timeout does not pet; the next attempt, `WITHHELD_RETRY` later
    /// at most, does.
    #[test]
    fn the_wake_that_ends_a_long_stall_does_not_pet_the_next_one_does() {
        let timeout = Duration::from_secs(4);
        let (gate, mut s) = (PetGate::for_timeout(timeout), PetSchedule::for_timeout(timeout));
        assert!(s.poll_due(at(0)));
        s.handle_petted(at(0));
        for (stalled_ms, pets) in [(1999, true), (2000, false), (3000, false)] {
            let mut s = s;
            let woke = at(stalled_ms);
            let due = s.poll_due(woke);
            assert_eq!(due && gate.may_pet(loop_lag(woke, at(0), at(0)), true), pets);
            if !pets {
                let retry = s.next_deadline();
                assert_eq!(retry, woke + WITHHELD_RETRY);
                assert!(s.poll_due(retry) && gate.may_pet(loop_lag(retry, retry, woke), true));
            }
        }
    }

    #[test]
    #[should_panic(expected = "time went backwards")]
    fn time_never_goes_backwards() {
        let mut s = PetSchedule::for_timeout(Duration::from_secs(3));
        s.poll_due(at(10));
        s.poll_due(at(9));
    }
}
