//! Making a dead peer safe before a takeover (SPEC §3, §7.4): `Fencing` runs the fence
//! command with backoff, or waits the fence-watchdog margin (see "The fence-watchdog margin"
//! in the core docs), and a holder that may be taken over fences itself by no longer petting
//! its watchdog. It decides when the peer is safe, not what follows: that is `decide.rs`.

use log::{debug, info};

use super::node::Node;
use super::role::{Phase, Reason, Role};
use super::time::{Duration, Instant};
use super::timer::Timer;
use super::{Detail, Event, FenceMode, Output};
use crate::wire::Health;

impl Node {
    /// Fence watchdog: a node that holds resources in any role (failed and maintenance too)
    /// and learns that the peer is taking over, or that it is isolated from the peer and every
    /// ping node, stops petting its watchdog until it holds nothing. Maintenance does not
    /// suspend this: the peer cannot know about it.
    pub(super) fn decide_self_fence(&mut self) {
        let isolated = !self.peer.alive
            && self.health.has(Health::PING)
            && !self.mutated(super::Mutation::NoSelfFence);
        let threatened = isolated || self.peer_taking_over();
        if self.fence_mode() == FenceMode::Watchdog && self.holds() && threatened {
            if !self.self_fencing {
                info!("self-fencing in {:?} (isolated: {isolated})", self.role());
            }
            self.self_fencing = true;
        }
    }

    pub(super) fn decide_fencing(&mut self, now: Instant) {
        if self.fence_running() {
            return;
        }
        if self.peer.left && self.me_can_run() {
            self.take_over(now, Reason::PeerLeft);
        } else if self.peer.alive {
            self.transition(now, Role::Standby, Reason::PeerAlive);
        } else if !self.me_can_run() {
            self.transition(now, Role::Standby, Reason::CannotRun);
        } else if self.peer_unfenceable() && !self.skip_fence_wait() {
            self.transition(now, Role::Standby, Reason::PeerUnfenceable);
        }
    }

    pub(super) fn enter_fencing(&mut self, now: Instant) {
        if self.skip_fence_wait() {
            self.timers.set(Timer::FenceWait, now);
            return;
        }
        match self.fence_mode() {
            FenceMode::None => self.timers.set(Timer::FenceWait, now),
            // `decide_fencing` leaves `Fencing` at once when no wait can fence the peer.
            FenceMode::Watchdog => {
                if let Some(due) = self.fence_wait_due() {
                    self.timers.set(Timer::FenceWait, due);
                }
            }
            FenceMode::External => self.run_fence(),
        }
    }

    fn skip_fence_wait(&self) -> bool {
        self.mutated(super::Mutation::SkipFenceWait)
    }

    /// True while a fence command runs (`Output::Fence` not yet answered).
    pub(super) fn fence_running(&self) -> bool {
        matches!(self.phase, Phase::Fencing { fence_running: true, .. })
    }

    pub(super) fn run_fence(&mut self) {
        let Phase::Fencing { fence_running, fence_attempts, .. } = &mut self.phase else {
            panic!("a fence command runs only in Fencing, not {:?}", self.phase);
        };
        assert!(!*fence_running, "one fence command at a time");
        info!("fencing the peer (attempt {})", *fence_attempts + 1);
        *fence_attempts += 1;
        *fence_running = true;
        self.push(Output::Fence);
    }

    pub(super) fn handle_fence_result(&mut self, now: Instant, ok: bool) {
        let attempts = match &mut self.phase {
            Phase::Fencing { fence_running, fence_attempts, .. } if *fence_running => {
                *fence_running = false;
                *fence_attempts
            }
            _ => {
                debug!("ignored a fence result nobody waits for");
                return;
            }
        };
        if !ok {
            self.counters.fence_failures += 1;
            self.notify(Event::FenceFailed, Detail::None);
            let backoff = self.params.keepalive.saturating_mul(1 << attempts.min(16));
            let backoff = backoff.min(self.params.deadtime.saturating_mul(8));
            self.timers.set(Timer::FenceRetry, now + backoff);
            return;
        }
        info!("peer fenced (incarnation {:?})", self.peer.incarnation);
        self.notify(Event::Fenced, Detail::None);
        // Whatever the fenced incarnation still has in flight was sent before it died.
        self.peer.fenced = self.peer.incarnation.map(|i| (i, self.peer.run));
        self.peer.last = None;
        self.update_liveness(now);
        if self.role() == Role::Fencing && self.me_can_run() {
            self.take_over(now, Reason::Fenced);
        }
    }

    /// `Timer::FenceWait` fired in `Fencing`: the wait is over unless a stall of ours moved it
    /// on; then the peer is safe and the group is taken (or no wait can fence the peer, and
    /// `decide_fencing` leaves `Fencing`).
    pub(super) fn handle_fence_wait(&mut self, now: Instant) {
        self.update_liveness(now);
        let watchdog = self.fence_mode() == FenceMode::Watchdog && !self.skip_fence_wait();
        match self.fence_wait_due() {
            // No wait can fence the peer: `decide_fencing` leaves `Fencing`.
            None if watchdog => {}
            // We stalled meanwhile: the wait moved on by the stall.
            Some(due) if watchdog && now < due => self.timers.set(Timer::FenceWait, due),
            _ if !self.peer.alive && self.me_can_run() => {
                self.take_over(now, Reason::FenceWaitOver)
            }
            _ => {}
        }
    }

    /// When a fence-watchdog wait ends: `W + M` after we began to advertise
    /// `FLAG_TAKING_OVER` (entered `Fencing`) moved on by our stalls since, or after we last
    /// received an authentic frame of the peer that was not fresh, whichever is later. `None` when
    /// waiting cannot fence the peer (`watchdog_fence_wait`).
    pub(super) fn fence_wait_due(&self) -> Option<Instant> {
        let Phase::Fencing { stalled, .. } = self.phase else {
            panic!("a fence wait is due only in Fencing, not {:?}", self.phase);
        };
        let unfresh = self.peer.unfresh_at.unwrap_or(Instant::ZERO);
        let since = (self.role_since + stalled).max(unfresh);
        Some(since + self.watchdog_fence_wait()?)
    }

    /// The fence-watchdog wait `W + M` (see the module docs): `W` is the larger of the
    /// timeout the peer advertised last (in this run, else as an earlier run stored it) and
    /// our own, or our own for a peer never heard (the pair shares one configuration). `None`
    /// when no wait can fence the peer: it advertised no armed watchdog, or it was never
    /// heard and we have no timeout to assume.
    pub(super) fn watchdog_fence_wait(&self) -> Option<Duration> {
        let own_wd = self.params.watchdog_timeout.map(|d| d.total_millis());
        let advertised = self.peer.last.map(|p| p.watchdog_timeout_ms);
        let advertised = advertised.or(self.params.peer_watchdog_timeout_ms);
        let advertised = super::node::cautious_watchdog(advertised, self.peer.unfresh_watchdog_ms);
        let w = match advertised.map(u64::from) {
            Some(0) => return None,
            Some(peer_wd) => peer_wd.max(own_wd.unwrap_or(0)),
            None => own_wd?,
        };
        let margin = self
            .params
            .deadtime
            .saturating_add(self.longest_link().saturating_mul(2))
            .saturating_add(self.params.keepalive.saturating_mul(2));
        Some(Duration::from_millis(w).saturating_add(margin))
    }

    /// Under `fence watchdog`: waiting can never fence the peer, because its last frame
    /// advertised no armed watchdog (`watchdog_timeout_ms` 0: a broken or older peer). Such
    /// a peer is never taken over by waiting (SPEC §7.3), only when it says `Leaving` or,
    /// heard again, hands the group over.
    pub fn peer_unfenceable(&self) -> bool {
        self.params.fence == FenceMode::Watchdog && self.watchdog_fence_wait().is_none()
    }

    /// The longest a takeover may wait for fencing (for tests and status): the watchdog wait,
    /// or `None` when no wait can fence the peer (`peer_unfenceable`).
    pub fn fence_wait(&self) -> Option<Duration> {
        self.watchdog_fence_wait()
    }
}

#[cfg(test)]
mod tests {
    use crate::core::testkit::*;

    /// Frames that are not fresh (the peer does not hear us, or a replay) may only make a
    /// takeover by waiting more cautious: one that says "no armed watchdog" makes the peer
    /// unfenceable until a fresh frame says otherwise (SIM seed 973712).
    #[test]
    fn unfresh_frames_only_make_the_watchdog_wait_more_cautious() {
        let mut node = booted(0, FenceMode::Watchdog, Outcome::NotRunning);
        let ours = node.fence_wait();
        assert!(ours.is_some(), "a peer never heard is taken to have our timeout");
        let unfresh = |node: &mut Node, t: u64, wd: u32| {
            let mut payload = peer_says(Kind::Heartbeat, GroupState::Active, FLAG_HOLDING, 1);
            payload.watchdog_timeout_ms = wd;
            let repr = Repr {
                version: crate::wire::VERSION,
                sender: 1,
                incarnation: 1,
                seq: t,
                link: 0,
                session: crate::wire::Session { run: 1, challenge: 1, echo: 9, flags: 0 },
                payload,
            };
            node.handle_input(ms(t), Input::Unfresh(repr));
            drain(node, ms(t));
        };
        unfresh(&mut node, 10, 9000);
        assert!(node.fence_wait() > ours, "a longer timeout heard unfresh lengthens the wait");
        unfresh(&mut node, 20, 0);
        assert_eq!(node.fence_wait(), None, "no armed watchdog: never taken over by waiting");
        unfresh(&mut node, 30, 2000);
        assert_eq!(node.fence_wait(), None, "0 outweighs what follows until a fresh frame");
        let mut fresh = peer_says(Kind::Heartbeat, GroupState::Standby, FLAG_PEER_ALIVE, 1);
        fresh.watchdog_timeout_ms = 2000;
        frame(&mut node, ms(40), 1, fresh);
        assert!(node.fence_wait().is_some(), "the fresh frame is the peer's word");
    }

    /// A daemon restarted while its previous run was self-fencing keeps the watchdog unpetted
    /// and does not adopt what it finds running: it stops it, and pets again once it holds
    /// nothing. (A restart that petted at once undid the reset the peer waited for: SIM seed
    /// 154569.)
    #[test]
    fn a_restart_while_self_fencing_keeps_the_watchdog_unpetted_until_nothing_is_held() {
        let mut p = params(0, FenceMode::Watchdog);
        p.start_self_fencing = true;
        let mut node = Node::new(p, ms(0));
        assert!(!node.petting_allowed());
        drain(&mut node, ms(0));
        let probe =
            |o: &Output| matches!(o, Output::ResourceAction { action: Action::Monitor, .. });
        let monitor = Input::ResourceResult {
            index: 0,
            action: Action::Monitor,
            outcome: Outcome::Ok,
            elapsed: Duration::ZERO,
        };
        node.handle_input(ms(5), monitor);
        drain(&mut node, ms(5));
        // The live peer holds nothing and hears us: a normal start would adopt the group.
        let out =
            frame(&mut node, ms(10), 1, peer_says(Kind::Heartbeat, GroupState::Standby, 4, 0));
        assert!(!out.iter().any(probe));
        assert!(
            out.iter().any(|o| matches!(o, Output::ResourceAction { action: Action::Stop, .. })),
            "what was found is stopped, not adopted: {out:?}"
        );
        assert!(!node.petting_allowed());
        let stopped = Input::ResourceResult {
            index: 0,
            action: Action::Stop,
            outcome: Outcome::Ok,
            elapsed: Duration::ZERO,
        };
        node.handle_input(ms(20), stopped);
        let out = drain(&mut node, ms(20));
        assert!(node.petting_allowed(), "nothing is held: petting again");
        assert!(out.contains(&Output::Watchdog { allow_petting: true }));
    }

    #[test]
    fn external_fence_failure_is_retried_with_backoff() {
        let mut node = booted(0, FenceMode::External, Outcome::NotRunning);
        assert!(!run_until(&mut node, ms(999)).contains(&Output::Fence));
        assert!(run_until(&mut node, ms(1000)).contains(&Output::Fence));
        assert_eq!(node.role(), Role::Fencing);
        node.handle_input(ms(1100), Input::FenceResult { ok: false });
        assert!(!drain(&mut node, ms(1100)).contains(&Output::Fence));
        // The first retry comes after one keepalive doubled.
        assert!(!run_until(&mut node, ms(1299)).contains(&Output::Fence));
        assert!(run_until(&mut node, ms(1300)).contains(&Output::Fence));
        node.handle_input(ms(1400), Input::FenceResult { ok: true });
        assert_eq!(node.role(), Role::Starting);
        assert_eq!(node.counters().fence_failures, 1);
    }

    #[test]
    fn a_peer_with_a_watchdog_is_taken_over_after_its_timeout_plus_the_margin() {
        let mut node = standby_beside_an_active_peer(3000);
        let out = run_until(&mut node, ms(510));
        assert_eq!((node.role(), node.role_since()), (Role::Fencing, ms(510)));
        assert_eq!(became(&out, Event::PeerDead), Some(Detail::None));
        assert!(!node.peer_unfenceable());
        // W = max(3 s advertised, 2 s own), M = deadtime + 2 x interval + 2 x keepalive.
        assert_eq!(node.fence_wait(), Some(Duration::from_millis(3000 + 500 + 200 + 200)));
        run_until(&mut node, ms(510 + 3899));
        assert_eq!(node.role(), Role::Fencing);
        run_until(&mut node, ms(510 + 3900));
        assert_eq!((node.role(), node.reason()), (Role::Starting, Reason::FenceWaitOver));
    }

    #[test]
    fn a_peer_never_heard_is_waited_for_with_our_own_timeout() {
        let mut node = booted(0, FenceMode::Watchdog, Outcome::NotRunning);
        run_until(&mut node, ms(1000));
        assert_eq!(node.role(), Role::Fencing, "initdead ran out");
        assert_eq!(node.fence_wait(), Some(Duration::from_millis(2000 + 900)));
        run_until(&mut node, ms(1000 + 2900));
        assert_eq!((node.role(), node.reason()), (Role::Starting, Reason::FenceWaitOver));
    }

    #[test]
    fn a_peer_advertising_no_watchdog_is_never_taken_over_by_waiting() {
        let mut node = standby_beside_an_active_peer(0);
        assert!(node.peer_unfenceable(), "known as soon as it is heard");
        assert_eq!(node.fence_wait(), None);
        let out = run_until(&mut node, ms(600_000));
        assert!(!node.peer().alive);
        // Said once, when it died; never `Fencing`, never a start.
        assert_eq!(became(&out, Event::PeerDead), Some(Detail::Reason(Reason::PeerUnfenceable)));
        assert_eq!(node.role(), Role::Standby);
        assert_eq!(became(&out, Event::Fencing), None);
        assert!(action(&out).is_none());
        assert!(out.iter().all(|o| !matches!(o,
            Output::Transmit { payload, .. } if payload.flags & FLAG_TAKING_OVER != 0)));
        // Heard again, it hands the group over: taken then, as any grant.
        let release = peer_says(Kind::Release, GroupState::Standby, 0, 2);
        frame(&mut node, ms(600_010), 2, release);
        assert_eq!((node.role(), node.reason()), (Role::Starting, Reason::Granted));
    }

    #[test]
    fn what_the_peer_advertised_before_our_restart_still_counts_until_it_is_heard() {
        for (remembered, takes_over_at) in [(Some(0), None), (Some(3000), Some(1000 + 3900))] {
            let mut p = params(0, FenceMode::Watchdog);
            p.peer_watchdog_timeout_ms = remembered;
            let mut node = Node::new(p, ms(0));
            drain(&mut node, ms(0));
            probed(&mut node, ms(1), Outcome::NotRunning);
            assert_eq!(node.peer_unfenceable(), remembered == Some(0));
            let out = run_until(&mut node, ms(600_000));
            let started = node.role() == Role::Starting;
            assert_eq!(started.then(|| node.role_since()), takes_over_at.map(ms), "{remembered:?}");
            assert_eq!(became(&out, Event::Fencing).is_some(), started, "{remembered:?}");
        }
    }

    #[test]
    fn fencing_that_no_wait_can_complete_is_left_for_standby() {
        // Not reachable through frames today (a frame makes the peer alive first); the rule
        // keeps a node from advertising `FLAG_TAKING_OVER` for a takeover that cannot come.
        let mut node = booted(0, FenceMode::Watchdog, Outcome::NotRunning);
        run_until(&mut node, ms(1000));
        assert_eq!(node.role(), Role::Fencing);
        let mut silent = peer_says(Kind::Heartbeat, GroupState::Active, FLAG_HOLDING, 1);
        silent.watchdog_timeout_ms = 0;
        node.peer.last = Some(silent);
        node.handle_input(ms(1001), Input::Timeout);
        assert_eq!((node.role(), node.reason()), (Role::Standby, Reason::PeerUnfenceable));
        run_until(&mut node, ms(60_000));
        assert_eq!(node.role(), Role::Standby);
    }

    #[test]
    fn a_peer_advertising_no_watchdog_that_leaves_is_taken_over_at_once() {
        let mut node = standby_beside_an_active_peer(0);
        let mut leaving = peer_says(Kind::Leaving, GroupState::Standby, 0, 1);
        leaving.watchdog_timeout_ms = 0;
        frame(&mut node, ms(100), 2, leaving);
        assert_eq!((node.role(), node.reason()), (Role::Starting, Reason::PeerLeft));
    }

    #[test]
    fn with_another_fence_a_peer_without_a_watchdog_is_fenced_as_before() {
        let mut node = booted(1, FenceMode::External, Outcome::NotRunning);
        let mut active = peer_says(Kind::Heartbeat, GroupState::Active, FLAG_HOLDING, 1);
        active.watchdog_timeout_ms = 0;
        frame(&mut node, ms(10), 1, active);
        assert!(!node.peer_unfenceable());
        assert!(run_until(&mut node, ms(510)).contains(&Output::Fence));
    }

    #[test]
    fn isolated_holder_with_fence_watchdog_releases_and_stops_petting() {
        let mut node = active_home(FenceMode::Watchdog);
        // The peer's last frame was at 10 ms: dead at 510 ms. Alone but reaching a ping node,
        // the node keeps the group.
        run_until(&mut node, ms(600));
        assert!(!node.peer().alive);
        assert_eq!(node.role(), Role::Active);
        // Then no ping node answers either: isolated.
        node.handle_input(ms(600), Input::Health(Health(Health::PING)));
        let out = drain(&mut node, ms(600));
        assert!(out.contains(&Output::Watchdog { allow_petting: false }));
        assert_eq!(node.reason(), Reason::Isolated);
        ok(&mut node, ms(650), 0, Action::Stop);
        assert_eq!(node.role(), Role::Standby);
        assert!(node.petting_allowed());
    }
}
