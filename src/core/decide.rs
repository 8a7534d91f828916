//! The decisions of each role (SPEC §3): after every input `decide_all` asks the role what
//! follows from what this node now knows (the peer, health, intent, the probes) and calls
//! `Node::transition` until nothing changes. Also who may run the group, who arbitrates and
//! grants it, the split-brain and handover policies, and shutdown. Fencing a dead peer is in
//! `fencing.rs`, driving the resource actions in `drive.rs`; nothing here does I/O.

use log::{debug, info};

use super::node::{GroupLabel, Node};
use super::resources::ResourceState;
use super::role::{AfterStop, Phase, Reason, Role};
use super::time::Instant;
use super::{
    Detail, Event, FLAG_HOLDING, FLAG_PEER_ALIVE, FLAG_TAKING_OVER, FenceMode, LinkSel, Output,
};
use crate::wire::{GroupState, Health, Intent, Kind};

/// Which node should run the group, as the arbiter sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Choice {
    Me,
    Peer,
}

/// The most decision rounds one input may take. A round that changes something is a role
/// change or a grant, and no chain of them after one input is longer than a few (maintenance
/// left, a grant acknowledged, fencing begun): more is a loop between decisions, a bug.
const DECISION_ROUNDS_MAX: usize = 8;

impl Node {
    /// Runs the decisions until none changes the role or the grant; asserts that they settle
    /// within `DECISION_ROUNDS_MAX` rounds.
    pub(super) fn decide_all(&mut self, now: Instant) {
        for _ in 0..DECISION_ROUNDS_MAX {
            let before = (self.role(), self.releasing);
            self.decide(now);
            if (self.role(), self.releasing) == before {
                return;
            }
        }
        panic!("decisions did not settle in {DECISION_ROUNDS_MAX} rounds (now {:?})", self.role());
    }

    fn decide(&mut self, now: Instant) {
        self.decide_self_fence(now);
        if self.decide_maintenance(now) {
            return;
        }
        match self.role() {
            Role::Init => self.decide_init(now),
            Role::Standby => self.decide_standby(now),
            Role::Fencing => self.decide_fencing(now),
            Role::Starting | Role::Active => self.decide_holder(now),
            Role::Failed { holding: false } | Role::Maintenance { holding: false } => {
                if self.peer.alive && self.is_home() && self.releasing.is_none() {
                    self.arbitrate(now);
                }
                self.check_release_done();
            }
            _ => {}
        }
    }

    /// Enters or leaves maintenance when the intent asks for it and the role is stable.
    fn decide_maintenance(&mut self, now: Instant) -> bool {
        let want = self.intent == Intent::Maintenance;
        let to = match self.role() {
            Role::Init if want && !self.probing() => Role::Maintenance { holding: self.found() },
            Role::Standby if want => Role::Maintenance { holding: false },
            Role::Fencing if want && !self.fence_running() => Role::Maintenance { holding: false },
            Role::Active if want && self.pending.is_none() => Role::Maintenance { holding: true },
            Role::Failed { holding } if want => Role::Maintenance { holding },
            // Leaving maintenance over a whole group: manage (monitor) it again. Over part of
            // one (it began after a failed stop): back to failed, `cleanup` stops it.
            Role::Maintenance { holding: true } if !want => {
                let whole = self.resources.iter().all(|r| r.may_run());
                for r in self.resources.iter_mut().filter(|r| r.may_run()) {
                    r.state = if whole { ResourceState::Running } else { ResourceState::Failed };
                }
                if whole { Role::Active } else { Role::Failed { holding: true } }
            }
            Role::Maintenance { holding: false } if !want => Role::Standby,
            _ => return false,
        };
        self.transition(now, to, Reason::Maintenance);
        true
    }

    /// `Init`: nothing is decided until every probe is in. Then, with nothing found, wait for
    /// the peer or `initdead` as before. With something found (see "Adoption" in the module
    /// docs): keep it when the live peer holds nothing and hears us (a peer still in `Init`
    /// holding something too: the home node keeps it, the other waits); stop it when the peer
    /// holds the group, when this node may not run it, or when `initdead` ran out without a
    /// word from the peer (the dead-peer path, with fencing, decides afterwards).
    fn decide_init(&mut self, now: Instant) {
        if self.probing() {
            return;
        }
        let initdead_over = matches!(self.phase, Phase::Init { initdead_over: true, .. });
        // The operator vouched that the peer is down: no need to wait for it any longer.
        let vouched = self.peer_vouched_down;
        if !self.found() {
            if self.peer.alive {
                self.transition(now, Role::Standby, Reason::PeerHeard);
            } else if initdead_over {
                self.transition(now, Role::Standby, Reason::InitDeadExpired);
            } else if vouched {
                self.transition(now, Role::Standby, Reason::Forced);
            }
            return;
        }
        let give_up = Role::stopping(AfterStop::Standby);
        if !self.peer.alive {
            if self.unfresh_takeover(now) && !self.mutated(super::Mutation::NoUnfreshSelfFence) {
                // It self-fenced (`decide_self_fence`): what it found is stopped at once, not
                // after `initdead`, which the peer's wait does not cover (SIM seeds 828136,
                // 904579: a daemon restarted holding, its frames cut one way).
                self.transition(now, give_up, Reason::PeerTakingOver);
            } else if initdead_over || vouched {
                self.transition(now, give_up, Reason::Probed);
            }
            return;
        }
        let peer = self.peer_payload();
        let peer_in_init = peer.is_some_and(|p| p.state == GroupState::Standby);
        let hears_us = peer.is_some_and(|p| p.flags & FLAG_PEER_ALIVE != 0);
        if !self.me_can_run() || (self.peer_holds() && !peer_in_init) {
            self.transition(now, give_up, Reason::Probed);
        } else if self.peer_holds() && !self.is_home() {
            // Both in `Init` and holding: the home node keeps the group; wait for it.
        } else if hears_us && !self.peer_taking_over() {
            self.adopt(now);
        }
    }

    /// Keeps what the probes found: a new epoch; resources from the first one not running
    /// are stopped (when they may hold anything) and started again, like a restart in place.
    fn adopt(&mut self, now: Instant) {
        self.epoch = self.epoch.saturating_add(1);
        info!(
            "{}adopting the group found running here (epoch {})",
            GroupLabel(self.log_group),
            self.epoch
        );
        let first = self.resources.iter().position(|r| r.state != ResourceState::Running);
        match first {
            None => self.transition(now, Role::Active, Reason::Adopted),
            Some(i) => {
                // `i` < RESOURCES_MAX, so it fits a u8.
                let role = Role::Stopping { floor: i as u8, then: AfterStop::Restart };
                self.transition(now, role, Reason::Adopted);
            }
        }
    }

    fn decide_standby(&mut self, now: Instant) {
        if self.releasing.is_some() {
            self.check_release_done();
            return;
        }
        if self.peer.alive {
            if self.is_home() {
                self.arbitrate(now);
            }
        } else if self.me_can_run() && self.peer.left {
            self.take_over(now, Reason::PeerLeft);
        } else if self.me_can_run() && self.peer_vouched_down {
            self.take_over(now, Reason::Forced);
        } else if self.me_can_run() && self.peer_still_fenced && !self.peer.alive {
            // Fenced, and not heard since: its next run waits to hear us (it stopped
            // uncleanly) and holds nothing. No second fence to take the group again.
            self.take_over(now, Reason::Fenced);
        } else if self.me_can_run()
            && self.peer_surely_dead(now)
            && !self.peer_unfenceable()
            && !self.unclean_wait()
        {
            // A peer that waiting cannot fence is not fenced at all: no `Fencing`, whose
            // `FLAG_TAKING_OVER` would make a holder that still hears us release the group
            // to nobody. After an unclean stop the peer must be heard first (the fenced node
            // that reboots into a partition never fences the survivor back).
            self.transition(now, Role::Fencing, Reason::PeerDead);
        }
    }

    /// Ends the release phase once the peer's frames show the granted epoch, or it died.
    fn check_release_done(&mut self) {
        if let Some(granted) = self.releasing {
            let acked = self.peer_payload().is_some_and(|p| p.epoch >= granted);
            if acked || !self.peer.alive {
                debug!("release of epoch {granted} done (acknowledged: {acked})");
                self.releasing = None;
                self.lapsed_grant = (!acked).then_some(granted);
                self.tx_all = true;
            }
        }
    }

    /// The home node, holding nothing, with a live peer that holds nothing: choose who runs.
    fn arbitrate(&mut self, now: Instant) {
        let hears_us = self.peer_payload().is_some_and(|p| p.flags & FLAG_PEER_ALIVE != 0);
        if self.peer_holds() || self.peer_taking_over() || !hears_us {
            return;
        }
        if let Some(granted) = self.lapsed_grant.take() {
            let shown = self.peer_payload().is_some_and(|p| p.epoch >= granted);
            if !shown && self.peer_can_run() {
                return self.grant(Reason::Elected);
            }
        }
        match self.preferred() {
            Some(Choice::Me) => self.take_over(now, Reason::Elected),
            Some(Choice::Peer) => self.grant(Reason::Elected),
            None => {}
        }
    }

    /// Preference: a standing `takeover` intent (unless it would pass over a healthy node for
    /// an unhealthy one: health wins, as in `handover_reason`), then a healthy node (home
    /// first), then any node that may run the group (home first).
    fn preferred(&self) -> Option<Choice> {
        let me = self.me_can_run();
        let peer = self.peer_can_run();
        let peer_health = self.peer_payload().map_or(Health::OK, |p| self.judged(p.health));
        let peer_intent = self.peer_payload().map_or(Intent::None, |p| p.intent);
        let me_healthy = me && self.judged(self.advertised_health()).is_ok();
        let peer_healthy = peer && peer_health.is_ok();
        if me && self.intent == Intent::Takeover && (me_healthy || !peer_healthy) {
            Some(Choice::Me)
        } else if peer && peer_intent == Intent::Takeover && (peer_healthy || !me_healthy) {
            Some(Choice::Peer)
        } else if me_healthy {
            Some(Choice::Me)
        } else if peer_healthy {
            Some(Choice::Peer)
        } else if me {
            Some(Choice::Me)
        } else if peer {
            Some(Choice::Peer)
        } else {
            None
        }
    }

    /// The peer is safe (fenced, or its watchdog surely fired, or it left): take the group.
    pub(super) fn take_over(&mut self, now: Instant, reason: Reason) {
        let after_fence = matches!(reason, Reason::FenceWaitOver | Reason::Fenced);
        if after_fence && self.mutated(super::Mutation::NeverTakeOver) {
            return;
        }
        // The operator's word that the peer is down allows one takeover, this one.
        self.peer_vouched_down = false;
        self.epoch = self.epoch.saturating_add(1);
        self.lapsed_grant = None;
        if !matches!(reason, Reason::Elected | Reason::Granted) {
            self.counters.failovers += 1;
            self.notify(Event::Failover, Detail::Reason(reason));
        }
        self.intent = if self.intent == Intent::Takeover { Intent::Takeover } else { self.intent };
        self.transition(now, Role::Starting, reason);
    }

    /// Grants the group to the peer: a new epoch, repeated in `Release` frames until acked.
    pub(super) fn grant(&mut self, reason: Reason) {
        self.epoch = self.epoch.saturating_add(1);
        info!(
            "{}granting the group to the peer (epoch {}): {reason:?}",
            GroupLabel(self.log_group),
            self.epoch
        );
        self.releasing = Some(self.epoch);
        self.tx_all = true;
    }

    /// A `Release` naming an epoch newer than ours arrived.
    pub(super) fn handle_release(&mut self, now: Instant, epoch: u32) {
        let free = self.role() == Role::Standby
            || (self.role() == Role::Init && !self.holds())
            || (self.role() == Role::Fencing && !self.fence_running());
        if free && self.releasing.is_none() && self.me_can_run() {
            self.epoch = epoch;
            self.transition(now, Role::Starting, Reason::Granted);
        } else {
            debug!("refused a release of epoch {epoch} in {:?}", self.role());
        }
    }

    /// Starting or active: split brain, one-way isolation, and the handover policies.
    fn decide_holder(&mut self, now: Instant) {
        let peer = self.peer_payload();
        let peer_running =
            peer.is_some_and(|p| matches!(p.state, GroupState::Starting | GroupState::Active));
        let peer_runs = peer_running && peer.is_some_and(|p| p.epoch >= self.epoch);
        // The peer does not hear us: it became alive to us two link intervals and two
        // keepalives ago, time for our frames to reach it and its answer to come back, and
        // its frames still lack `FLAG_PEER_ALIVE` (a link that works one way).
        let settled = self.peer.alive_since.is_some_and(|t| {
            now >= t
                + self.longest_link().saturating_mul(2)
                + self.params.keepalive.saturating_mul(2)
        });
        let deaf = settled && peer.is_some_and(|p| p.flags & FLAG_PEER_ALIVE == 0);
        if peer_runs || (peer_running && deaf) {
            if !self.split_brain_seen {
                self.split_brain_seen = true;
                self.counters.split_brains += 1;
                self.notify(Event::SplitBrain, Detail::None);
            }
            // The non-home node releases; so does a node whose peer runs the group and cannot
            // hear it, whatever the epochs and the home: only this node can resolve it.
            if (!self.is_home() || deaf) && !self.mutated(super::Mutation::KeepSplitBrain) {
                return self.transition(
                    now,
                    Role::stopping(AfterStop::Standby),
                    Reason::SplitBrain,
                );
            }
        } else if !self.peer_holds() {
            self.split_brain_seen = false;
        }
        let watchdog = self.fence_mode() == FenceMode::Watchdog;
        if self.peer_taking_over() || self.unfresh_takeover(now) {
            self.self_fencing = watchdog;
            return self.transition(
                now,
                Role::stopping(AfterStop::Standby),
                Reason::PeerTakingOver,
            );
        }
        let isolated = !self.peer.alive && self.health.has(Health::PING);
        if watchdog && isolated && !self.mutated(super::Mutation::NoSelfFence) {
            self.self_fencing = true;
            return self.transition(now, Role::stopping(AfterStop::Standby), Reason::Isolated);
        }
        if self.role() == Role::Active
            && let Some(reason) = self.handover_reason()
        {
            self.transition(now, Role::stopping(AfterStop::HandOver), reason);
        }
    }

    /// The policy reasons (SPEC §3) for an active node to hand the group over.
    fn handover_reason(&self) -> Option<Reason> {
        if self.intent == Intent::Standby {
            return Some(Reason::AdminStandby);
        }
        let peer = self.peer_payload()?;
        if !self.peer_can_run() {
            return None;
        }
        if self.mutated(super::Mutation::HandOverAtWill) {
            return Some(Reason::Failback);
        }
        let peer_is_home = self.params.peer == self.params.home;
        let me_healthy = self.judged(self.advertised_health()).is_ok();
        let peer_healthy = self.judged(peer.health).is_ok();
        // A request moves the group unless it would go from a healthy node to an unhealthy one
        // (which would hand it straight back: health wins over an admin request).
        if peer.intent == Intent::Takeover
            && self.intent != Intent::Takeover
            && (peer_healthy || !me_healthy)
        {
            Some(Reason::PeerRequested)
        } else if self.params.auto_failback
            && peer_is_home
            && peer_healthy
            && self.intent != Intent::Takeover
        {
            Some(Reason::Failback)
        } else if !me_healthy && peer_healthy {
            Some(Reason::Health)
        } else {
            None
        }
    }

    /// May this node take the group now (SPEC §3 gates: ping, restarts, admin intent)?
    pub(super) fn me_can_run(&self) -> bool {
        matches!(self.role(), Role::Init | Role::Standby | Role::Fencing)
            && !self.shutting_down
            && !self.health.has(Health::PING)
            && !self.drbd_bars(self.health)
            && !self.restarts_exhausted
            && !self.self_fencing
            && !matches!(self.intent, Intent::Standby | Intent::Maintenance)
    }

    /// May the live peer take the group, as its last frame tells? (A peer in `Init` that is
    /// still probing, or found something, reads `standby` with `FLAG_HOLDING`: not yet.)
    pub(super) fn peer_can_run(&self) -> bool {
        self.peer_payload().is_some_and(|p| {
            p.state == GroupState::Standby
                && p.flags & (FLAG_TAKING_OVER | FLAG_HOLDING) == 0
                && !p.health.has(Health::PING)
                && !self.drbd_bars(p.health)
                && !p.health.has(Health::RESTARTS)
                && !matches!(p.intent, Intent::Standby | Intent::Maintenance)
                && p.kind != Kind::Leaving
        })
    }

    pub(super) fn handle_shutdown(&mut self, now: Instant) {
        info!("{}shutdown requested in {:?}", GroupLabel(self.log_group), self.role());
        self.shutting_down = true;
        match self.role() {
            Role::Starting | Role::Active | Role::Stopping { .. } => {
                self.transition(now, Role::stopping(AfterStop::Exit), Reason::Shutdown)
            }
            Role::Init if self.holds() => {
                // What was not probed yet may run: stop it too (a stop of nothing succeeds).
                if let Phase::Init { probe_next: Some(next), .. } = self.phase {
                    for r in &mut self.resources[usize::from(next)..] {
                        r.state = ResourceState::Failed;
                    }
                }
                self.transition(now, Role::stopping(AfterStop::Exit), Reason::Shutdown)
            }
            // A stop failed: with fence watchdog the reset makes us safe, so stay and let it
            // come; otherwise exit and let the peer fence us. Never say `Leaving` here.
            Role::Failed { holding: true } if self.fence_mode() == FenceMode::Watchdog => {
                self.self_fencing = true;
            }
            _ => self.transition(now, Role::Exited, Reason::Shutdown),
        }
    }

    /// Exited: say `Leaving` when nothing is held, then `Exit`.
    pub(super) fn finish_exit(&mut self) {
        let held = self.resources.iter().any(|r| r.may_run());
        if !held {
            let mut payload = self.payload();
            payload.kind = Kind::Leaving;
            payload.flags = 0;
            self.push(Output::Transmit { link: LinkSel::All, payload });
        }
        self.notify(Event::Exit, Detail::None);
        self.push(Output::Exit);
    }

    pub(super) fn handle_cleanup(&mut self, now: Instant, index: Option<u8>) {
        for (i, r) in self.resources.iter_mut().enumerate() {
            if index.is_none_or(|x| usize::from(x) == i) {
                r.failures = 0;
            }
        }
        self.restarts.clear();
        self.restarts_exhausted = false;
        // A shutdown whose stop failed stays asked for: once cleaned up, the node exits (a
        // standby that may never run again would only look like a backup).
        let (idle, then) = if self.shutting_down {
            (Role::Exited, AfterStop::Exit)
        } else {
            (Role::Standby, AfterStop::Standby)
        };
        match self.role() {
            Role::Failed { holding: false } => self.transition(now, idle, Reason::Cleanup),
            Role::Failed { holding: true } => {
                self.transition(now, Role::stopping(then), Reason::Cleanup)
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::core::testkit::*;

    #[test]
    fn a_lost_release_is_repeated_until_the_peer_shows_the_epoch() {
        let mut node = active_home(FenceMode::External);
        node.handle_input(ms(20), Input::Admin(Admin::Standby));
        assert_eq!(action(&drain(&mut node, ms(20))), Some((0, Action::Stop)));
        ok(&mut node, ms(30), 0, Action::Stop);
        assert_eq!(node.role(), Role::Standby);
        let granted = node.epoch();
        // Every heartbeat repeats the Release while the peer's frames show an older epoch.
        for (i, t) in [130u64, 230, 330].into_iter().enumerate() {
            node.handle_input(ms(t), Input::Timeout);
            let out = drain(&mut node, ms(t));
            assert!(out.iter().any(|o| matches!(o,
                Output::Transmit { payload, .. } if payload.kind == Kind::Release
                    && payload.epoch == granted)));
            let stale = peer_says(Kind::Heartbeat, GroupState::Standby, 0, granted - 1);
            frame(&mut node, ms(t + 1), 2 + i as u64, stale);
        }
        let acked = peer_says(Kind::Heartbeat, GroupState::Starting, FLAG_HOLDING, granted);
        frame(&mut node, ms(340), 10, acked);
        let out = drain(&mut node, ms(430));
        node.handle_input(ms(430), Input::Timeout);
        let out2 = drain(&mut node, ms(430));
        let kinds: std::vec::Vec<_> = out
            .iter()
            .chain(out2.iter())
            .filter_map(|o| match o {
                Output::Transmit { payload, .. } => Some(payload.kind),
                _ => None,
            })
            .collect();
        assert!(kinds.iter().all(|k| *k == Kind::Heartbeat), "{kinds:?}");
        assert_eq!(node.role(), Role::Standby);
    }

    /// The home node grants the group to a peer that asks for it; the peer falls silent
    /// (hung, the grant still in its sockets) and the grant lapses. Heard again, the peer is
    /// granted the group anew: the home node never elects itself while the woken peer may
    /// still act on the old grant (SIM seed 909225, S2).
    #[test]
    fn a_grant_that_lapsed_with_a_silent_peer_is_renewed_when_it_is_heard_again() {
        let mut node = booted(0, FenceMode::Watchdog, Outcome::NotRunning);
        let mut asks = peer_says(Kind::Heartbeat, GroupState::Standby, FLAG_PEER_ALIVE, 0);
        asks.intent = Intent::Takeover;
        frame(&mut node, ms(10), 1, asks);
        assert_eq!(node.role(), Role::Standby);
        let granted = node.epoch();
        assert!(granted > 0, "the group is granted to the peer");
        // Silence: the peer is dead, the grant lapses, the watchdog wait begins.
        run_until(&mut node, ms(1500));
        assert_eq!(node.role(), Role::Fencing);
        // It woke before its watchdog fired; its first frame predates the grant it now reads.
        let stale = peer_says(Kind::Heartbeat, GroupState::Standby, FLAG_PEER_ALIVE, 0);
        let out = frame(&mut node, ms(1510), 2, stale);
        assert_eq!(node.role(), Role::Standby, "not elected here");
        assert!(
            out.iter().any(|o| matches!(o,
                Output::Transmit { payload, .. } if payload.kind == Kind::Release
                    && payload.epoch > granted)),
            "granted anew: {out:?}"
        );
    }

    #[test]
    fn home_arbitrates_only_when_the_peer_hears_it() {
        let mut node = booted(0, FenceMode::External, Outcome::NotRunning);
        frame(&mut node, ms(5), 1, peer_says(Kind::Heartbeat, GroupState::Standby, 0, 0));
        assert_eq!(node.role(), Role::Standby, "one-way: the peer may not hear us");
        let hears_us = peer_says(Kind::Heartbeat, GroupState::Standby, FLAG_PEER_ALIVE, 0);
        frame(&mut node, ms(10), 2, hears_us);
        assert_eq!((node.role(), node.reason()), (Role::Starting, Reason::Elected));
    }

    #[test]
    fn leaving_peer_is_replaced_at_once_without_fencing() {
        let mut node = booted(1, FenceMode::External, Outcome::NotRunning);
        frame(&mut node, ms(5), 1, peer_says(Kind::Heartbeat, GroupState::Active, FLAG_HOLDING, 1));
        assert_eq!(node.role(), Role::Standby);
        let out = frame(&mut node, ms(50), 2, peer_says(Kind::Leaving, GroupState::Standby, 0, 1));
        assert_eq!(node.role(), Role::Starting);
        assert!(!out.contains(&Output::Fence));
        assert_eq!(node.reason(), Reason::PeerLeft);
    }

    #[test]
    fn nothing_is_decided_before_the_probes_are_in() {
        let mut node = Node::new(params(0, FenceMode::External), ms(0));
        let out = drain(&mut node, ms(0));
        assert_eq!(action(&out), Some((0, Action::Monitor)));
        // While probing the node says it may hold something: the peer must not start.
        assert!(out.iter().any(|o| matches!(o,
            Output::Transmit { payload, .. } if payload.flags & FLAG_HOLDING != 0)));
        let hears_us = peer_says(Kind::Heartbeat, GroupState::Standby, FLAG_PEER_ALIVE, 0);
        for (seq, t) in (10..2000).step_by(100).enumerate() {
            run_until(&mut node, ms(t));
            frame(&mut node, ms(t), seq as u64 + 1, hears_us);
        }
        assert_eq!(node.role(), Role::Init, "initdead ran out, still probing");
        // The probe finds nothing: the home node elects itself and starts.
        let out = probed(&mut node, ms(2001), Outcome::NotRunning);
        assert_eq!((node.role(), action(&out)), (Role::Starting, Some((0, Action::Start))));
    }

    #[test]
    fn found_running_with_a_standby_peer_is_adopted_without_a_start() {
        for me in [0, 1] {
            let mut node = booted(me, FenceMode::External, Outcome::Ok);
            assert_eq!(node.role(), Role::Init);
            assert!(node.payload().flags & FLAG_HOLDING != 0);
            let hears_us = peer_says(Kind::Heartbeat, GroupState::Standby, FLAG_PEER_ALIVE, 3);
            let out = frame(&mut node, ms(10), 1, hears_us);
            assert_eq!((node.role(), node.reason()), (Role::Active, Reason::Adopted), "{me}");
            assert_eq!(action(&out), None, "no start");
            assert_eq!(node.epoch(), 4);
            assert_eq!(node.counters().failovers, 0);
        }
    }

    #[test]
    fn found_running_while_the_peer_holds_the_group_is_stopped() {
        let mut node = booted(0, FenceMode::External, Outcome::Ok);
        let active = peer_says(Kind::Heartbeat, GroupState::Active, FLAG_HOLDING, 2);
        let out = frame(&mut node, ms(10), 1, active);
        assert_eq!(node.reason(), Reason::Probed);
        assert_eq!(action(&out), Some((0, Action::Stop)));
        ok(&mut node, ms(20), 0, Action::Stop);
        assert_eq!(node.role(), Role::Standby);
    }

    #[test]
    fn found_running_with_a_silent_peer_is_stopped_after_initdead() {
        let mut node = booted(0, FenceMode::External, Outcome::Ok);
        let out = run_until(&mut node, ms(1000));
        assert_eq!(
            (node.role(), node.reason()),
            (Role::stopping(AfterStop::Standby), Reason::Probed)
        );
        assert_eq!(action(&out), Some((0, Action::Stop)));
    }

    /// Fence watchdog (SPEC §3 S2): a daemon restarted while its resources run, whose frames
    /// do not reach its peer, hears the peer only in frames that are not fresh. When they
    /// say the peer takes the group, it stops petting and stops what it found at once: the
    /// peer's wait `W + M` does not cover `initdead` (SIM seeds 828136, 904579: `initdead`
    /// twice the longest link deadtime of 6 s, `M` 9 s: it would have petted on 0.4 s past
    /// the peer's takeover).
    #[test]
    fn found_running_in_init_obeys_an_unfresh_takeover_at_once() {
        let mut node = booted(0, FenceMode::Watchdog, Outcome::Ok);
        assert!(node.holds() && node.petting_allowed());
        let standby = peer_says(Kind::Heartbeat, GroupState::Standby, 0, 1);
        let out = unfresh(&mut node, ms(50), 1, standby);
        assert!(out.is_empty() && node.role() == Role::Init, "no claim: it waits for initdead");
        let fencing = peer_says(Kind::Heartbeat, GroupState::Standby, FLAG_TAKING_OVER, 1);
        let out = unfresh(&mut node, ms(60), 2, fencing);
        assert_eq!(
            (node.role(), node.reason()),
            (Role::stopping(AfterStop::Standby), Reason::PeerTakingOver)
        );
        assert_eq!(action(&out), Some((0, Action::Stop)));
        assert!(out.contains(&Output::Watchdog { allow_petting: false, self_fence: true }));
        // It pets again once it holds nothing.
        let out = ok(&mut node, ms(70), 0, Action::Stop);
        assert!(out.contains(&Output::Watchdog { allow_petting: true, self_fence: false }));
        assert_eq!(node.role(), Role::Standby);
    }

    #[test]
    fn two_nodes_in_init_holding_the_home_one_keeps_it() {
        let both =
            peer_says(Kind::Heartbeat, GroupState::Standby, FLAG_HOLDING | FLAG_PEER_ALIVE, 0);
        let mut other = booted(1, FenceMode::External, Outcome::Ok);
        frame(&mut other, ms(10), 1, both);
        assert_eq!(other.role(), Role::Init, "the non-home node waits");
        let mut home = booted(0, FenceMode::External, Outcome::Ok);
        frame(&mut home, ms(10), 1, both);
        assert_eq!(home.role(), Role::Active);
    }

    #[test]
    fn a_failed_probe_is_stopped_and_started_again_when_adopted() {
        let mut node = booted(0, FenceMode::External, Outcome::Failed(1));
        let hears_us = peer_says(Kind::Heartbeat, GroupState::Standby, FLAG_PEER_ALIVE, 0);
        let out = frame(&mut node, ms(10), 1, hears_us);
        assert_eq!(action(&out), Some((0, Action::Stop)));
        let out = ok(&mut node, ms(20), 0, Action::Stop);
        assert_eq!(action(&out), Some((0, Action::Start)));
    }

    #[test]
    fn shutdown_while_probing_stops_what_was_not_probed() {
        let mut node = Node::new(params(0, FenceMode::External), ms(0));
        drain(&mut node, ms(0));
        node.handle_input(ms(5), Input::Shutdown);
        drain(&mut node, ms(5));
        let out = probed(&mut node, ms(6), Outcome::NotRunning);
        assert_eq!(node.role(), Role::Exited);
        assert!(out.contains(&Output::Exit));
    }
}
