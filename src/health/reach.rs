//! Ping reachability: when the ping nodes count as reachable (SPEC §3: a node that reaches no
//! ping node may not take over; under `fence watchdog` a holder that reaches neither its peer
//! nor a ping node releases the group and stops petting). Pure: the driver
//! (`drivers::ping`) sends the echoes this module says are due and hands it the replies that
//! carry our cookie; the simulator drives the same code with a world of its own.
//!
//! Rules:
//! - Cadence: one echo to every node each `interval` (`ping_interval`: a third of `deadtime`,
//!   10 ms to 1 s). An echo due within `early` goes out on the wake at hand (`ping_early`:
//!   half a keepalive when the interval is at least one), and the loop wakes for echoes only
//!   once they are `2 x early` overdue (`Reach::wake_at`): pings ride on heartbeat wakes.
//! - Window: a node is reachable when it answered within `window` (`PING_WINDOW` intervals).
//!   "Not yet known" counts as reachable: a node is lost only once a whole window has passed
//!   since the first echo (or its last reply) without a reply. Reachability is re-evaluated
//!   at each echo round, before the echoes go out; a reply makes its node reachable at once.
//!   A reply whose send time is in the future or older than the window counts as nothing.
//! - The set is reachable when at least one node is (or there are none). The first echo goes
//!   out no earlier than `Reach::new`, so no loss is judged within one window of it: a daemon
//!   that has just started is not briefly unhealthy before the first answer returns.
//! - Stalls: a gap between two wakes of the loop longer than the core's stall threshold, or
//!   than two intervals (`stall_gap`), means this node itself stalled: the silence of the
//!   nodes still reachable then counts from the end of the stall (`resume_after_stall`), as
//!   for the peer's heartbeats, so a busy machine does not lose every ping node at once. A
//!   node already lost stays lost: a stall never makes an isolated node look connected.
//!
//! `loss_known_within` is the worst case of these rules: how long after the last reply the
//! set is judged lost, which `health::self_fence` weighs against the survivor's wait.
//!
//! No I/O, no clock, no allocation: `now` comes in, verdicts and deadlines go out.

use crate::core::time::{Duration, Instant};
use crate::limits::PING_NODES_MAX;
use std::net::IpAddr;

/// The longest echo interval.
pub const PING_INTERVAL_MAX: Duration = Duration::from_secs(1);
/// The shortest echo interval.
pub const PING_INTERVAL_MIN: Duration = Duration::from_millis(10);
/// Echo intervals without an answer after which a node is unreachable.
pub const PING_WINDOW: u32 = 3;

/// How often each ping node gets an echo: a third of `deadtime` (10 ms to 1 s), so that a node
/// cut off from every ping node knows it within about one `deadtime`, well inside the margin
/// the peer waits under `fence watchdog` before it takes over (see `core` docs and
/// `health::self_fence`): the isolated node must stop holding and stop petting before then.
pub fn ping_interval(deadtime: Duration) -> Duration {
    let third = Duration::from_millis(deadtime.total_millis() / 3);
    third.clamp(PING_INTERVAL_MIN, PING_INTERVAL_MAX)
}

/// How early echoes may go out to ride on a heartbeat wake: half a keepalive, when the ping
/// `interval` is at least a keepalive (then an echo is at most half a keepalive early and the
/// window of `PING_WINDOW` intervals still covers the reply); otherwise never.
pub fn ping_early(keepalive: Duration, interval: Duration) -> Duration {
    if keepalive <= interval {
        Duration::from_millis(keepalive.total_millis() / 2)
    } else {
        Duration::ZERO
    }
}

/// The longest gap between two wakes of the loop that is not a stall of this node: the core's
/// `stall_after`, or two echo intervals (the loop wakes for every echo), whichever is shorter.
pub fn stall_gap(stall_after: Duration, interval: Duration) -> Duration {
    stall_after.min(interval.saturating_mul(2))
}

/// The worst case of the rules: the longest from the last reply of every node (or from the
/// first echo, for nodes that never answered) until the set is judged lost, for a loop that
/// does not stall beyond `stall_gap`. The last evaluation inside the window is followed by
/// the next one at most an interval plus the lateness of its wake later: `2 x early` on a
/// loop that keeps time (`Reach::wake_at`), or an unnoticed stall; that one is past the
/// window by at least a millisecond.
pub fn loss_known_within(
    interval: Duration,
    window: Duration,
    early: Duration,
    stall_after: Duration,
) -> Duration {
    let late = early.saturating_mul(2).max(stall_gap(stall_after, interval));
    window.saturating_add(interval).saturating_add(late).saturating_add(Duration::from_millis(1))
}

/// Whether a node is reachable at `now`: it answered within `window` (or this node resumed
/// from a stall of its own within it: `last_reply` is then the end of the stall), or pinging
/// it `started` less than a whole `window` ago, or has not started. Unreachable only once a
/// whole window has passed with no reply in it.
pub fn reachable_at(
    last_reply: Option<Instant>,
    started: Option<Instant>,
    now: Instant,
    window: Duration,
) -> bool {
    match last_reply.or(started) {
        Some(t) => now.saturating_since(t) <= window,
        None => true,
    }
}

/// One ping node and what we know of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PingNode {
    /// Its address, IPv4 or IPv6.
    pub addr: IpAddr,
    /// When it last answered.
    pub last_reply: Option<Instant>,
    /// The round trip of its last answer.
    pub last_rtt: Option<Duration>,
    /// Answered within the window, or not pinged for a whole window yet, as of the last
    /// evaluation.
    pub reachable: bool,
    /// When this node last resumed from a stall of its own while this ping node was still
    /// reachable: its silence counts from then (`Reach::resume_after_stall`).
    pub silent_since: Option<Instant>,
    /// Echo rounds that included it (including echoes the kernel refused).
    pub sent: u64,
    /// Matching replies received.
    pub received: u64,
}

/// More ping nodes than `limits::PING_NODES_MAX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooMany;

/// The reachability of a set of ping nodes.
///
/// Call protocol: `new` once; on every wake of the loop `handle_wake(now, stall_after)`, then
/// `poll_send(now, early)` and, when it says so, one echo to every node; each reply that
/// carries our cookie goes to `handle_reply`. `reachable()` is the verdict for `health`; the
/// loop need not wake before `wake_at(early)` for this module. `now` never goes backwards.
#[derive(Clone, Debug)]
pub struct Reach {
    interval: Duration,
    window: Duration,
    next_send: Instant,
    /// When the first echoes went out (`None` before): the start of the first window.
    started: Option<Instant>,
    /// The previous wake, to tell a stall of this node from silence of the ping nodes.
    last_wake: Instant,
    nodes: heapless::Vec<PingNode, PING_NODES_MAX>,
}

impl Reach {
    /// The nodes `addrs` (of either family, in any mix), one echo every `interval`, reachable
    /// while they answered within `window_intervals` intervals (at least 1). The first echoes
    /// are due at `now`.
    pub fn new<A: Copy + Into<IpAddr>>(
        addrs: &[A],
        interval: Duration,
        window_intervals: u32,
        now: Instant,
    ) -> Result<Reach, TooMany> {
        let mut nodes = heapless::Vec::new();
        for &addr in addrs {
            let node = PingNode {
                addr: addr.into(),
                last_reply: None,
                last_rtt: None,
                reachable: true,
                silent_since: None,
                sent: 0,
                received: 0,
            };
            nodes.push(node).map_err(|_| TooMany)?;
        }
        let window = interval.saturating_mul(u64::from(window_intervals.max(1)));
        Ok(Reach { interval, window, next_send: now, started: None, last_wake: now, nodes })
    }

    /// The loop woke at `now`: a gap since the last wake longer than `stall_gap` means this
    /// node stalled, and the silence of the nodes still reachable counts from now.
    pub fn handle_wake(&mut self, now: Instant, stall_after: Duration) -> bool {
        assert!(now >= self.last_wake, "time went backwards: {now} < {}", self.last_wake);
        let stalled = now.saturating_since(self.last_wake) > stall_gap(stall_after, self.interval);
        self.last_wake = now;
        if stalled {
            self.resume_after_stall(now);
        }
        stalled
    }

    /// This node itself stalled until `now` (its loop did not run): what a reachable ping
    /// node did not answer meanwhile is not held against it, its silence counts from now, as
    /// for the peer's heartbeats. Otherwise a stall of two thirds of `deadtime` could lose
    /// every ping node at once and hand the group over from a node whose network is fine.
    /// A node already lost stays lost: a stall never makes an isolated node look connected.
    pub fn resume_after_stall(&mut self, now: Instant) {
        for node in self.nodes.iter_mut().filter(|n| n.reachable) {
            node.silent_since = Some(now);
        }
    }

    /// True when an echo round is due at `now` (or within `early`): reachability is then
    /// re-evaluated and every node counted as sent to; the caller sends one echo to each.
    pub fn poll_send(&mut self, now: Instant, early: Duration) -> bool {
        if now + early < self.next_send {
            return false;
        }
        self.started.get_or_insert(now);
        self.evaluate(now);
        self.next_send = now + self.interval;
        for node in self.nodes.iter_mut() {
            node.sent = node.sent.saturating_add(1);
        }
        true
    }

    /// A reply from `from` to our echo sent at `sent_at` arrived at `now`. Counts (and makes
    /// its node reachable) only when `from` is a ping node and the echo was sent within the
    /// window, not after `now`.
    pub fn handle_reply(
        &mut self,
        now: Instant,
        from: impl Into<IpAddr>,
        sent_at: Instant,
    ) -> bool {
        let from = from.into();
        if sent_at > now || now.saturating_since(sent_at) > self.window {
            return false;
        }
        let Some(node) = self.nodes.iter_mut().find(|n| n.addr == from) else { return false };
        node.last_reply = Some(now);
        node.last_rtt = Some(now.saturating_since(sent_at));
        node.received = node.received.saturating_add(1);
        node.reachable = true;
        true
    }

    fn evaluate(&mut self, now: Instant) {
        for node in self.nodes.iter_mut() {
            let heard = node.last_reply.max(node.silent_since);
            node.reachable = reachable_at(heard, self.started, now, self.window);
        }
    }

    /// True when at least one node answered within the window, or is not yet known to be
    /// lost (or there are no nodes).
    pub fn reachable(&self) -> bool {
        self.nodes.is_empty() || self.nodes.iter().any(|n| n.reachable)
    }

    /// When the next echo round is due.
    pub fn next_deadline(&self) -> Instant {
        self.next_send
    }

    /// When the loop must wake for the next echo round if nothing else wakes it first.
    pub fn wake_at(&self, early: Duration) -> Instant {
        self.next_send + early.saturating_mul(2)
    }

    /// The echo interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// How long a reply keeps its node reachable.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Every node's state.
    pub fn nodes(&self) -> &[PingNode] {
        &self.nodes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn not_yet_known_is_reachable_until_a_whole_window_passes() {
        let w = Duration::from_secs(3);
        // Before the first echo: not known, so reachable.
        assert!(reachable_at(None, None, at(0), w));
        assert!(reachable_at(None, None, at(1_000_000), w));
        // Pinging since 10 s with no reply: reachable for one whole window, then lost.
        let started = Some(at(10_000));
        assert!(reachable_at(None, started, at(10_000), w));
        assert!(reachable_at(None, started, at(13_000), w));
        assert!(!reachable_at(None, started, at(13_001), w));
        assert!(!reachable_at(None, started, at(60_000), w));
    }

    #[test]
    fn a_reply_counts_for_one_window() {
        let w = Duration::from_secs(3);
        let started = Some(at(0));
        let reply = Some(at(20_000));
        assert!(reachable_at(reply, started, at(20_000), w));
        assert!(reachable_at(reply, started, at(23_000), w));
        assert!(!reachable_at(reply, started, at(23_001), w), "silent for a whole window");
        // A reply long after the start renews the window (the start no longer matters).
        assert!(reachable_at(Some(at(50_000)), started, at(52_000), w));
    }

    #[test]
    fn cadence_follows_deadtime_within_its_bounds() {
        assert_eq!(ping_interval(ms(1500)), ms(500));
        assert_eq!(ping_interval(ms(20)), PING_INTERVAL_MIN, "never faster than 10 ms");
        assert_eq!(ping_interval(Duration::from_secs(60)), PING_INTERVAL_MAX);
        assert_eq!(ping_interval(Duration::ZERO), PING_INTERVAL_MIN);
        // Early only when an echo interval spans a keepalive.
        assert_eq!(ping_early(ms(100), ms(166)), ms(50));
        assert_eq!(ping_early(ms(166), ms(166)), ms(83));
        assert_eq!(ping_early(ms(200), ms(166)), Duration::ZERO);
        assert_eq!(stall_gap(ms(200), ms(166)), ms(200));
        assert_eq!(stall_gap(ms(400), ms(166)), ms(332));
    }

    #[test]
    fn rounds_are_due_each_interval_and_may_go_out_early() {
        let mut r = Reach::new(&[A], ms(100), 3, at(0)).unwrap();
        assert_eq!((r.next_deadline(), r.wake_at(ms(20))), (at(0), at(40)));
        assert!(r.poll_send(at(0), Duration::ZERO));
        assert!(!r.poll_send(at(79), ms(20)), "21 ms early is too early");
        assert!(r.poll_send(at(80), ms(20)));
        assert_eq!(r.next_deadline(), at(180), "the next interval counts from the send");
        assert_eq!(r.nodes()[0].sent, 2);
    }

    #[test]
    fn a_silent_set_is_lost_a_window_after_the_first_echo_never_sooner() {
        // Created at 0, first echo at 50 (a late first wake): the window counts from 50.
        let mut r = Reach::new(&[A], ms(10), 3, at(0)).unwrap();
        assert!(r.reachable(), "nothing known yet");
        assert!(r.poll_send(at(50), Duration::ZERO));
        assert!(r.reachable());
        assert!(r.poll_send(at(80), Duration::ZERO));
        assert!(r.reachable(), "a whole window, not more: still reachable");
        assert!(r.poll_send(at(90), Duration::ZERO));
        assert!(!r.reachable());
        // However early the rounds go out, nothing is lost within one window of `new`.
        let mut r = Reach::new(&[A], ms(10), 3, at(0)).unwrap();
        for t in 0..=30 {
            r.poll_send(at(t), ms(10));
            assert!(r.reachable(), "at {t}");
        }
        r.poll_send(at(31), ms(10));
        assert!(!r.reachable());
    }

    #[test]
    fn replies_count_only_from_a_node_within_the_window() {
        let mut r = Reach::new(&[A, B], ms(100), 3, at(0)).unwrap();
        r.poll_send(at(0), Duration::ZERO);
        assert!(r.handle_reply(at(3), A, at(0)));
        assert_eq!(r.nodes()[0].last_rtt, Some(ms(3)));
        assert!(!r.handle_reply(at(3), Ipv4Addr::new(198, 51, 100, 7), at(0)), "not ours");
        assert!(!r.handle_reply(at(3), B, at(4)), "sent in the future");
        assert!(!r.handle_reply(at(301), B, at(0)), "older than the window");
        assert!(r.handle_reply(at(300), B, at(0)), "exactly the window old");
        assert_eq!((r.nodes()[0].received, r.nodes()[1].received), (1, 1));
        // One node enough: B goes silent, A answers.
        for t in (100..=1000).step_by(100) {
            r.poll_send(at(t), Duration::ZERO);
            r.handle_reply(at(t), A, at(t));
        }
        assert!(r.reachable() && !r.nodes()[1].reachable);
        // A reply makes its node reachable at once, before the next evaluation.
        assert!(r.handle_reply(at(1001), B, at(1000)));
        assert!(r.nodes()[1].reachable);
    }

    /// IPv4 and IPv6 nodes in one set are judged alike, each by its own replies; an address
    /// of the other family that names the same host (IPv4-mapped) is another node.
    #[test]
    fn nodes_of_both_families_are_judged_alike() {
        let v6: Ipv6Addr = "2001:db8::fe".parse().unwrap();
        let mut r = Reach::new(&[IpAddr::from(A), IpAddr::from(v6)], ms(100), 3, at(0)).unwrap();
        assert_eq!(r.nodes()[1].addr, IpAddr::from(v6));
        r.poll_send(at(0), Duration::ZERO);
        assert!(r.handle_reply(at(2), v6, at(0)));
        assert!(!r.handle_reply(at(2), A.to_ipv6_mapped(), at(0)), "not the IPv4 node");
        assert_eq!((r.nodes()[0].received, r.nodes()[1].received), (0, 1));
        // Only the IPv6 node answers: it alone keeps the set reachable.
        for t in (100..=1000).step_by(100) {
            r.poll_send(at(t), Duration::ZERO);
            r.handle_reply(at(t), v6, at(t));
        }
        assert!(r.reachable() && !r.nodes()[0].reachable && r.nodes()[1].reachable);
        // Then it falls silent too: lost a whole window after its last reply.
        r.poll_send(at(1300), Duration::ZERO);
        assert!(r.reachable());
        r.poll_send(at(1400), Duration::ZERO);
        assert!(!r.reachable());
    }

    #[test]
    fn no_nodes_is_reachable() {
        let mut r = Reach::new::<IpAddr>(&[], ms(10), 3, at(0)).unwrap();
        for t in 0..10 {
            r.poll_send(at(t * 10), Duration::ZERO);
        }
        assert!(r.reachable());
        assert_eq!(Reach::new(&[A; PING_NODES_MAX + 1], ms(10), 3, at(0)).map(drop), Err(TooMany));
        // A zero window is taken as one interval.
        assert_eq!(Reach::new(&[A], ms(10), 0, at(0)).unwrap().window(), ms(10));
    }

    #[test]
    fn resuming_restarts_the_window_of_reachable_nodes_only() {
        let mut r = Reach::new(&[A, B], ms(10), 3, at(0)).unwrap();
        r.poll_send(at(0), Duration::ZERO);
        // A answered at 5; B never did and is lost at 31.
        r.handle_reply(at(5), A, at(0));
        r.poll_send(at(31), Duration::ZERO);
        assert!(r.nodes()[0].reachable && !r.nodes()[1].reachable);
        // Frozen from 31 to 100: 95 ms of silence from A, all but 26 our own.
        for t in [10, 20, 31] {
            assert!(!r.handle_wake(at(t), ms(200)), "no more than two intervals apart");
        }
        assert!(r.handle_wake(at(100), ms(200)), "69 ms > two intervals: a stall");
        r.poll_send(at(100), Duration::ZERO);
        assert!(r.nodes()[0].reachable, "its silence counts from the end of the stall");
        assert!(!r.nodes()[1].reachable, "a lost node stays lost");
        assert!(r.reachable());
        r.handle_wake(at(115), ms(200));
        r.poll_send(at(131), Duration::ZERO);
        assert!(!r.nodes()[0].reachable, "a whole window after the stall with no reply");
        assert!(!r.reachable());
        // Without the stall rule A would have been lost at 100 already.
        assert!(!reachable_at(Some(at(5)), Some(at(0)), at(100), ms(30)));
    }

    #[test]
    fn a_gap_up_to_the_stall_gap_is_no_stall() {
        let mut r = Reach::new(&[A], ms(100), 3, at(0)).unwrap();
        assert!(!r.handle_wake(at(150), ms(150)), "exactly the core's threshold");
        assert!(r.handle_wake(at(301), ms(150)));
        assert!(!r.handle_wake(at(501), ms(400)), "two intervals");
        assert!(r.handle_wake(at(702), ms(400)));
    }

    #[test]
    fn a_stall_before_the_first_echo_changes_nothing() {
        let mut r = Reach::new(&[A], ms(10), 3, at(0)).unwrap();
        r.handle_wake(at(50), ms(200));
        r.poll_send(at(50), Duration::ZERO);
        assert!(r.reachable());
        r.poll_send(at(81), Duration::ZERO);
        assert!(!r.reachable(), "one window after the first echo and the stall");
    }

    #[test]
    #[should_panic(expected = "time went backwards")]
    fn time_never_goes_backwards() {
        let mut r = Reach::new(&[A], ms(10), 3, at(100)).unwrap();
        r.handle_wake(at(99), ms(200));
    }

    /// `loss_known_within` is the worst case: a reply at the last moment before each round,
    /// rounds as late as a loop that keeps time sends them, and the loss is known no later.
    #[test]
    fn loss_is_known_within_the_worst_case() {
        for (interval, keepalive) in [(10, 10), (166, 100), (333, 200), (1000, 500), (10, 60)] {
            let (interval, keepalive) = (ms(interval), ms(keepalive));
            let early = ping_early(keepalive, interval);
            let stall_after = keepalive.saturating_mul(2);
            let bound = loss_known_within(interval, interval.saturating_mul(3), early, stall_after);
            // Rounds each as late as allowed: an interval plus twice `early` apart.
            let step = interval + early.saturating_mul(2).max(stall_gap(stall_after, interval));
            for offset in 0..step.total_millis() {
                let mut r = Reach::new(&[A], interval, PING_WINDOW, at(0)).unwrap();
                r.poll_send(at(0), Duration::ZERO);
                let last = at(offset);
                r.handle_reply(last, A, at(0));
                let mut t = at(0);
                while r.reachable() {
                    t += step;
                    r.poll_send(t, Duration::ZERO);
                }
                let took = t.saturating_since(last);
                assert!(took <= bound, "{interval}/{keepalive}: {took} > {bound}");
            }
        }
    }
}
