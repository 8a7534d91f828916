//! When a service address is announced (SPEC §2 `resource ip ... [garp N] [garp_interval DUR]
//! [garp_refresh DUR]`): the schedule of gratuitous ARP (IPv4) and unsolicited neighbour
//! advertisement (IPv6) rounds of one `ip` resource. Pure: `drivers::ipaddr` sends a round
//! when this says one is due (`drivers::arp` builds the frames); nothing here touches a
//! socket or reads a clock.
//!
//! Rules: a start (`handle_started`) makes the first round due at once; `count` rounds go
//! out `interval` apart, each counted from when the one before went out; then one every
//! `refresh` while the address is held (never when `refresh` is zero). With neither rounds
//! nor refresh nothing is ever due. A stop (`handle_stopped`) ends the schedule; a round
//! that could not be sent still counts (the schedule moves on, so a dead link does not make
//! the loop spin).

use crate::core::time::{Duration, Instant};

/// Announcement rounds sent on start (SPEC §2 default).
pub const GARP_COUNT_DEFAULT: u32 = 5;
/// Time between the first rounds (SPEC §2 default).
pub const GARP_INTERVAL_DEFAULT: Duration = Duration::from_millis(200);
/// Time between later rounds while active; zero means none (SPEC §2 default).
pub const GARP_REFRESH_DEFAULT: Duration = Duration::ZERO;

/// The announcement schedule of one `ip` resource.
///
/// Call protocol: `handle_started(now)` once the address is on its interface,
/// `handle_stopped()` when it is taken away; whenever `next_deadline()` has passed,
/// `poll_due(now)` and, when it says so, send one round. `now` never goes backwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Announcements {
    count: u32,
    interval: Duration,
    refresh: Duration,
    active: bool,
    rounds_done: u32,
    next_round: Option<Instant>,
}

impl Announcements {
    /// `count` rounds `interval` apart after a start, then one every `refresh` (zero: none).
    pub const fn new(count: u32, interval: Duration, refresh: Duration) -> Announcements {
        Announcements { count, interval, refresh, active: false, rounds_done: 0, next_round: None }
    }

    /// The address is held from `now`: the first round is due at once (if any is ever due).
    pub fn handle_started(&mut self, now: Instant) {
        self.active = true;
        self.rounds_done = 0;
        let any = self.count > 0 || self.refresh > Duration::ZERO;
        self.next_round = any.then_some(now);
    }

    /// The address is no longer held: nothing more is due.
    pub fn handle_stopped(&mut self) {
        self.active = false;
        self.next_round = None;
    }

    /// True when a round is due at `now`: it is counted as sent and the next one scheduled;
    /// the caller sends it.
    pub fn poll_due(&mut self, now: Instant) -> bool {
        match self.next_round {
            Some(due) if self.active && due <= now => {}
            _ => return false,
        }
        self.rounds_done = self.rounds_done.saturating_add(1);
        self.next_round = if self.rounds_done < self.count {
            Some(now + self.interval)
        } else if self.refresh > Duration::ZERO {
            Some(now + self.refresh)
        } else {
            None
        };
        true
    }

    /// When the next round is due; `None` when none is (stopped, or all sent and no refresh).
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.active { self.next_round } else { None }
    }

    /// Whether the address is held (started and not stopped since).
    pub const fn is_active(&self) -> bool {
        self.active
    }

    /// Rounds sent (or tried) since the last start.
    pub const fn rounds_done(&self) -> u32 {
        self.rounds_done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// The instants at which rounds go out when `poll_due` is asked every millisecond.
    fn rounds(a: &mut Announcements, from: u64, to: u64) -> Vec<u64> {
        (from..to).filter(|&t| a.poll_due(at(t))).collect()
    }

    #[test]
    fn count_rounds_at_interval_then_nothing() {
        let mut a = Announcements::new(3, ms(200), Duration::ZERO);
        assert_eq!((a.next_deadline(), a.poll_due(at(0))), (None, false), "not started");
        a.handle_started(at(1000));
        assert_eq!(a.next_deadline(), Some(at(1000)));
        assert_eq!(rounds(&mut a, 1000, 5000), [1000, 1200, 1400]);
        assert_eq!((a.next_deadline(), a.rounds_done()), (None, 3));
    }

    #[test]
    fn each_round_counts_from_when_the_last_went_out() {
        let mut a = Announcements::new(3, ms(200), Duration::ZERO);
        a.handle_started(at(0));
        assert!(a.poll_due(at(0)));
        assert!(!a.poll_due(at(199)));
        assert!(a.poll_due(at(250)), "a late wake");
        assert_eq!(a.next_deadline(), Some(at(450)));
    }

    #[test]
    fn refresh_keeps_announcing_while_active() {
        let mut a = Announcements::new(2, ms(100), ms(5000));
        a.handle_started(at(0));
        assert_eq!(rounds(&mut a, 0, 10_101), [0, 100, 5100, 10_100]);
        a.handle_stopped();
        assert!(!a.is_active());
        assert_eq!((a.next_deadline(), rounds(&mut a, 10_101, 20_000)), (None, vec![]));
        // A start again begins the rounds anew.
        a.handle_started(at(30_000));
        assert_eq!(rounds(&mut a, 30_000, 30_200), [30_000, 30_100]);
    }

    #[test]
    fn refresh_only_or_nothing_at_all() {
        let mut a = Announcements::new(0, ms(100), ms(1000));
        a.handle_started(at(0));
        assert_eq!(rounds(&mut a, 0, 2001), [0, 1000, 2000]);
        let mut none = Announcements::new(0, ms(100), Duration::ZERO);
        none.handle_started(at(0));
        assert!(none.is_active());
        assert_eq!((none.next_deadline(), rounds(&mut none, 0, 1000)), (None, vec![]));
    }

    #[test]
    fn the_defaults_send_five_rounds_in_800_ms() {
        let mut a =
            Announcements::new(GARP_COUNT_DEFAULT, GARP_INTERVAL_DEFAULT, GARP_REFRESH_DEFAULT);
        a.handle_started(at(0));
        assert_eq!(rounds(&mut a, 0, 10_000), [0, 200, 400, 600, 800]);
    }
}
