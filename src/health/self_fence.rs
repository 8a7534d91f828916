//! The S2 window of `fence watchdog` (SPEC §3): a holder cut off at once from its peer and
//! from every ping node must be safe (released, or reset by its watchdog) before the survivor
//! ends its wait and takes the group. This module weighs the two, from the configuration's
//! timings: the ping cadence and window (`health::reach`), the holder's deadtime and watchdog,
//! against the survivor's wait `W + M` (`core::Node::fence_wait`, see the core's docs, "The
//! fence-watchdog margin"). Pure arithmetic; the simulator asserts it for every world it
//! builds and a property test in `event_loop` for the configurations `check` accepts.
//!
//! Both sides are counted from the moment `t0` every medium and every ping node is lost.
//! - The holder learns it is isolated when both its peer is dead and its ping nodes are lost.
//!   Its peer: the last frame of the survivor arrives at most one one-way delay after `t0`,
//!   the peer is dead at most the longest link deadtime after it (`peer_deadtime`, SPEC
//!   §7.7: each link is judged at its own), and a loop stall shorter than the stall detector
//!   (which would otherwise restart that silence) may make it that much later. Its ping
//!   nodes: `reach::loss_known_within` after the last reply, itself before `t0`. It stops
//!   petting on that wake, so its watchdog resets it at most its timeout `W_h` later (a
//!   release that completes sooner only makes it safe sooner).
//! - The survivor heard the holder's last frame on each link no earlier than that link's send
//!   interval before `t0` (the holder sent on it then), enters `Fencing` once every link is
//!   down, each its own deadtime after its last frame: at the earliest the largest over the
//!   links of (deadtime − send interval) after `t0` (`survivor_silence`; `deadtime` minus the
//!   fastest link's interval when every link has the global timing), and takes over `W + M`
//!   after that (later after stalls of its own or frames that are not
//!   fresh, never earlier). `W` is at least `W_h`: the larger of the timeout the holder
//!   advertised and its own.
//!
//! Assumptions, as the core's argument makes them: the links carried frames until `t0`, a
//! one-way delay is under a keepalive, and neither loop stalls longer than its stall
//! detector (a longer stall restarts every silence it measures).

use super::reach;
use crate::core::time::Duration;

/// What the window depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// Heartbeat interval.
    pub keepalive: Duration,
    /// The deadtime the ping cadence follows: the longest link deadtime as configured (the
    /// global one when the links have none of their own; `config::PairWide::longest_deadtime`).
    pub deadtime: Duration,
    /// The longest link deadtime: the holder finds its peer dead at most this long after
    /// the last frame (`core::Node::peer_deadtime`).
    pub peer_deadtime: Duration,
    /// The shortest silence after `t0` before the survivor finds the holder dead: the
    /// largest over the links of (its deadtime − its send interval).
    pub survivor_silence: Duration,
    /// The core's stall threshold (`core::Node::stall_threshold`).
    pub stall_after: Duration,
    /// The longest one-way delay of a frame.
    pub delay_max: Duration,
    /// The holder's watchdog timeout.
    pub holder_watchdog: Duration,
    /// The survivor's whole wait once in `Fencing` (`core::Node::fence_wait`: `W + M`).
    pub fence_wait: Duration,
}

impl Timing {
    /// The daemon's ping cadence for these timings (`reach::ping_interval`, `ping_early`,
    /// `PING_WINDOW`): the longest from the last reply until the holder knows its ping
    /// nodes are lost.
    pub fn ping_loss_known_within(&self) -> Duration {
        let interval = reach::ping_interval(self.deadtime);
        let window = interval.saturating_mul(u64::from(reach::PING_WINDOW));
        let early = reach::ping_early(self.keepalive, interval);
        reach::loss_known_within(interval, window, early, self.stall_after)
    }
}

/// Both sides of the window, counted from `t0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// When the holder knows its peer is dead.
    pub peer_dead: Duration,
    /// When the holder knows it lost its ping nodes.
    pub ping_lost: Duration,
    /// When the holder is safe at the latest: it stops petting at the later of the two, and
    /// its watchdog fires its timeout after.
    pub holder_safe: Duration,
    /// When the survivor takes over at the earliest.
    pub survivor_takes_over: Duration,
}

impl Window {
    /// The window for `t`.
    pub fn of(t: &Timing) -> Window {
        let peer_dead = t.delay_max.saturating_add(t.peer_deadtime).saturating_add(t.stall_after);
        let ping_lost = t.ping_loss_known_within();
        let holder_safe = peer_dead.max(ping_lost).saturating_add(t.holder_watchdog);
        let survivor_takes_over = t.survivor_silence.saturating_add(t.fence_wait);
        Window { peer_dead, ping_lost, holder_safe, survivor_takes_over }
    }

    /// True when the holder is safe before the survivor takes over: S2 holds.
    pub fn holds(&self) -> bool {
        self.holder_safe < self.survivor_takes_over
    }

    /// How much earlier the holder is safe than the survivor takes over (zero when it is not).
    pub fn slack(&self) -> Duration {
        self.survivor_takes_over.saturating_sub(self.holder_safe)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// The core's wait for one UDP link at `keepalive`: `W + deadtime + 2 x interval + 2 x
    /// keepalive`.
    fn timing(keepalive: u64, deadtime: u64, watchdog: u64) -> Timing {
        let (k, d, w) = (ms(keepalive), ms(deadtime), ms(watchdog));
        Timing {
            keepalive: k,
            deadtime: d,
            peer_deadtime: d,
            survivor_silence: d.saturating_sub(k),
            stall_after: k.saturating_mul(2).min(ms(deadtime * 2 / 3)),
            delay_max: k,
            holder_watchdog: w,
            fence_wait: w + d + k.saturating_mul(4),
        }
    }

    #[test]
    fn the_lab_pair_has_most_of_a_deadtime_to_spare() {
        // keepalive 100 ms, deadtime 500 ms, watchdog 3 s: pings every 166 ms.
        let w = Window::of(&timing(100, 500, 3000));
        assert_eq!(w.peer_dead, ms(100 + 500 + 200));
        assert_eq!(w.ping_lost, ms(498 + 166 + 200 + 1), "window, interval, late wake");
        assert_eq!(w.holder_safe, ms(865 + 3000));
        assert_eq!(w.survivor_takes_over, ms(500 + 3000 + 500 + 400 - 100));
        assert!(w.holds());
        assert_eq!(w.slack(), ms(435));
    }

    #[test]
    fn long_deadtimes_cap_the_ping_interval_and_gain_slack() {
        let w = Window::of(&timing(1000, 60_000, 10_000));
        assert_eq!(w.ping_lost, ms(3000 + 1000 + 2000 + 1), "1 s echoes, 3 s window");
        assert_eq!(w.holder_safe, w.peer_dead + ms(10_000), "the peer's deadtime decides");
        assert!(w.holds());
    }

    #[test]
    fn the_fastest_timings_check_accepts_still_hold() {
        // keepalive 10 ms, deadtime 20 ms: echoes every 10 ms (the floor), not 6.
        let t = timing(10, 20, 1000);
        let w = Window::of(&t);
        assert_eq!(w.ping_lost, ms(30 + 10 + 13 + 1), "an unnoticed stall of 13 ms");
        assert!(w.holds(), "{w:?}");
    }

    /// SPEC §7.7: a slow link (200 ms, judged at 2 s) beside a fast one (10 ms, 50 ms). The
    /// holder may find its peer dead only 2 s after the last frame, the survivor no sooner
    /// than 1.8 s after it; the core's margin, taken from the longest link deadtime, covers
    /// it. Taken from the global deadtime (500 ms) it would not.
    #[test]
    fn a_slow_link_is_covered_by_the_margin_of_the_longest_deadtime() {
        let (k, w, longest) = (ms(100), ms(3000), ms(200));
        let mut t = timing(100, 500, 3000);
        t.peer_deadtime = ms(2000);
        t.survivor_silence = ms(2000 - 200);
        t.stall_after = ms(33);
        t.fence_wait = w + ms(2000) + longest.saturating_mul(2) + k.saturating_mul(2);
        assert!(Window::of(&t).holds(), "{:?}", Window::of(&t));
        t.survivor_silence = ms(500 - 10);
        t.fence_wait = w + ms(500) + longest.saturating_mul(2) + k.saturating_mul(2);
        assert!(!Window::of(&t).holds(), "{:?}", Window::of(&t));
    }

    #[test]
    fn a_wait_without_its_margin_does_not_hold() {
        let mut t = timing(100, 500, 3000);
        t.fence_wait = t.holder_watchdog;
        assert!(!Window::of(&t).holds());
        assert_eq!(Window::of(&t).slack(), Duration::ZERO);
        // Nor one whose watchdog is shorter than the holder's.
        let mut t = timing(100, 500, 3000);
        t.fence_wait = t.fence_wait.saturating_sub(ms(1000));
        assert!(!Window::of(&t).holds());
        // Zero everywhere: nothing is safe before nothing.
        let zero = Timing {
            keepalive: Duration::ZERO,
            deadtime: Duration::ZERO,
            peer_deadtime: Duration::ZERO,
            survivor_silence: Duration::ZERO,
            stall_after: Duration::ZERO,
            delay_max: Duration::ZERO,
            holder_watchdog: Duration::ZERO,
            fence_wait: Duration::ZERO,
        };
        assert!(!Window::of(&zero).holds());
    }
}
