//! The core's timers: one optional deadline per named purpose, in a fixed array (the
//! quinn-proto `timer.rs` shape). Link send and liveness deadlines live in `liveness.rs`; this
//! file only holds the node-wide ones. It does not decide anything: `Node` arms, stops and
//! reacts to them.

use super::time::Instant;

/// A node-wide timer. Each variant names what happens when it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    /// `initdead` ran out without hearing the peer: decide alone.
    InitDead = 0,
    /// `fence watchdog`: the peer's watchdog has surely reset it; take over.
    FenceWait = 1,
    /// An external fence failed; run it again.
    FenceRetry = 2,
    /// Time to monitor the running resources again.
    Monitor = 3,
    /// `fence_delay` passed and the peer is still unheard: run the fence command.
    FenceDelay = 4,
}

const TIMER_COUNT: usize = 5;

impl Timer {
    /// Every timer, in the order `Timers::take_expired` fires those due at once.
    pub const ALL: [Timer; TIMER_COUNT] =
        [Timer::InitDead, Timer::FenceWait, Timer::FenceRetry, Timer::Monitor, Timer::FenceDelay];
}

/// The deadlines of all node-wide timers.
#[derive(Clone, Copy, Debug, Default)]
pub struct Timers {
    deadlines: [Option<Instant>; TIMER_COUNT],
}

impl Timers {
    /// Arms `timer` to fire at `at`, replacing any earlier deadline.
    pub fn set(&mut self, timer: Timer, at: Instant) {
        log::debug!("timer {timer:?} armed for {at}");
        self.deadlines[timer as usize] = Some(at);
    }

    /// Disarms `timer`.
    pub fn stop(&mut self, timer: Timer) {
        self.deadlines[timer as usize] = None;
    }

    /// True when `timer` is armed.
    pub fn is_set(&self, timer: Timer) -> bool {
        self.deadlines[timer as usize].is_some()
    }

    /// Disarms and returns the first timer whose deadline is at or before `now`.
    pub fn take_expired(&mut self, now: Instant) -> Option<Timer> {
        let timer = Timer::ALL
            .into_iter()
            .find(|t| self.deadlines[*t as usize].is_some_and(|d| d <= now))?;
        log::debug!("timer {timer:?} fired at {now}");
        self.deadlines[timer as usize] = None;
        Some(timer)
    }

    /// When `timer` fires, if armed.
    pub fn deadline(&self, timer: Timer) -> Option<Instant> {
        self.deadlines[timer as usize]
    }

    /// The earliest armed deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_timers_fire_once_in_order() {
        let mut timers = Timers::default();
        timers.set(Timer::Monitor, Instant::from_millis(50));
        timers.set(Timer::InitDead, Instant::from_millis(100));
        assert_eq!(timers.next_deadline(), Some(Instant::from_millis(50)));
        assert_eq!(timers.take_expired(Instant::from_millis(49)), None);
        assert_eq!(timers.take_expired(Instant::from_millis(100)), Some(Timer::InitDead));
        assert_eq!(timers.take_expired(Instant::from_millis(100)), Some(Timer::Monitor));
        assert_eq!(timers.take_expired(Instant::from_millis(100)), None);
        assert_eq!(timers.next_deadline(), None);
    }
}
