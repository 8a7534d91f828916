//! `Node`: the failover core's state and its public API (inputs in, commands out, status).
//! This file routes inputs and timers, tracks the peer and the links, builds heartbeats and
//! queues outputs. The role changes in `transition.rs`; the decisions are in `decide.rs`
//! (per role), `fencing.rs` (a dead peer made safe) and `drive.rs` (resource actions), each
//! an `impl Node` block that this file does not import. It does no I/O.

use heapless::{Deque, Vec};
use log::{debug, trace};

use super::liveness::{Link, LinkStatus};
use super::resources::{InFlight, ResourcePlan, ResourceStatus, RestartWindow};
use super::role::{Phase, Reason, Role};
use super::time::{Duration, Instant};
use super::timer::{Timer, Timers};
use super::{
    Admin, Detail, Event, FLAG_HOLDING, FLAG_PEER_ALIVE, FLAG_TAKING_OVER, FenceMode, Input,
    LinkSel, Output, Params, Refusal,
};
use crate::limits::{CORE_OUTPUTS_MAX, LINKS_MAX, RESOURCES_MAX};
use crate::wire::{GroupState, Groups, Health, Intent, Kind, Payload, Repr};

/// What this node knows about its peer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerStatus {
    /// A valid frame arrived on some link within that link's deadtime (and the peer did not
    /// leave).
    pub alive: bool,
    /// The incarnation of the peer's run that `wire` accepted (the last one heard).
    pub incarnation: Option<u64>,
    /// That run's random number: with the incarnation, it names one start of the peer.
    pub run: u32,
    /// When its last valid frame arrived.
    pub last_heard: Option<Instant>,
    /// What its last frame said (forgotten when it restarts or is fenced).
    pub last: Option<Payload>,
    /// It said `Leaving`: it holds nothing and is gone.
    pub left: bool,
    /// The run (incarnation, run number) we fenced: its frames are ignored (they were sent
    /// before it died).
    pub fenced: Option<(u64, u32)>,
    /// When the last authentic frame that was not fresh arrived (`Input::Unfresh`).
    pub unfresh_at: Option<Instant>,
    /// ... and the last such frame that said the peer takes the group (`FLAG_TAKING_OVER`)
    /// or runs it (starting or active).
    pub unfresh_claims: Option<Instant>,
    /// The most cautious watchdog timeout such frames advertised since the last fresh one
    /// (0, no armed watchdog, outweighs any other; else the longest): they may be replays,
    /// but they only ever lengthen or forbid a takeover by waiting (SIM seed 973712: a node
    /// that lost its statedir never heard its unarmed peer fresh and took it over).
    pub unfresh_watchdog_ms: Option<u32>,
    /// Since when the peer is alive (`None` while it is not).
    pub alive_since: Option<Instant>,
    /// When it last became dead (`None`: never, in this run).
    pub lost_at: Option<Instant>,
    /// Its last frame carried another configuration digest than ours: the two nodes do not
    /// agree on nodes, timings, media, resources or fencing (README "Configuration digest").
    pub config_differs: bool,
}

/// Bytes as lowercase hex, for log lines (no allocation).
struct Hex<'a>(&'a [u8]);

impl core::fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Event counters shown by `status`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Peer frames that arrived later than the longest link `warn_after` (`warntime` when
    /// every link has the global timing) after the one before.
    pub late_heartbeats: u64,
    /// Takeovers from a dead or departed peer.
    pub failovers: u64,
    /// Planned handovers of the group to the peer.
    pub handovers: u64,
    /// Split brains seen (both nodes ran the group).
    pub split_brains: u64,
    /// Frames ignored: from ourselves, an unknown link, an older or fenced incarnation.
    pub stale_frames: u64,
    /// Fence commands that failed.
    pub fence_failures: u64,
}

/// The failover state machine of one node (SPEC §3).
///
/// Call protocol: `new` once; then for every event `handle_input(now, input)` followed by
/// `poll_output(now)` until it returns `Output::Timeout(deadline)`; call
/// `handle_input(deadline, Input::Timeout)` when that deadline passes. See the module docs.
#[derive(Debug)]
pub struct Node {
    pub(super) params: Params,
    pub(super) created: Instant,
    /// The last `handle_input`: a longer gap than `stall_threshold` means this node stalled.
    pub(super) last_input: Instant,
    /// Where the peer's silence counts from, at the earliest: each stall of this node moves it
    /// on by the stall's length (a stalled node did not hear what the peer sent meanwhile),
    /// so the silence counts only the time this node listened.
    pub(super) listening_since: Instant,
    /// The role, with the state that only it uses (see "Role-scoped state" in the core docs).
    pub(super) phase: Phase,
    pub(super) role_since: Instant,
    pub(super) reason: Reason,
    /// The highest ownership epoch seen.
    pub(super) epoch: u32,
    /// A granted epoch we repeat in `Release` frames until the peer's frames show it. Not
    /// role-scoped: the grant outlives the role that made it (a node that granted in `standby`
    /// may enter maintenance meanwhile and must go on repeating it); it only ever exists in
    /// roles that hold nothing (asserted).
    pub(super) releasing: Option<u32>,
    /// A grant that lapsed because the peer fell silent before its frames showed it: a peer
    /// that only hung still holds it in its sockets and may act on it when it wakes, so once
    /// it is heard again and may run, the group is granted to it again, never elected here
    /// (SIM seed 909225: the home node elected itself while the woken peer started on the
    /// old grant).
    pub(super) lapsed_grant: Option<u32>,
    pub(super) intent: Intent,
    /// Health as the event loop reports it.
    pub(super) health: Health,
    pub(super) restarts_exhausted: bool,
    pub(super) restarts: RestartWindow,
    pub(super) peer: PeerStatus,
    pub(super) links: Vec<Link, LINKS_MAX>,
    pub(super) resources: Vec<ResourceStatus, RESOURCES_MAX>,
    /// The one resource action in flight. Not role-scoped: a role may end while its action
    /// runs (a split brain stops the group while a monitor is out), and the result is awaited.
    pub(super) pending: Option<InFlight>,
    /// New resource definitions not yet switched to (see "Reload" in the module docs).
    pub(super) reconfig: Option<ResourcePlan>,
    pub(super) timers: Timers,
    pub(super) outputs: Deque<Output, CORE_OUTPUTS_MAX>,
    /// Send the current heartbeat on every link at the next `poll_output`.
    pub(super) tx_all: bool,
    /// When the last two `Input::Handshake`s were answered (the older first).
    pub(super) handshake_answered: [Option<Instant>; 2],
    pub(super) counters: Counters,
    pub(super) petting_allowed: bool,
    /// Petting is forbidden until this node holds nothing (fence watchdog self-fence): not
    /// role-scoped, it lasts through every role until nothing is held.
    pub(super) self_fencing: bool,
    /// Petting waits for a frame of the peer: under `fence watchdog` this node stalled longer
    /// than the stall threshold while it held the group, and its peer, heard within its
    /// deadtime and fence wait before the wake, may be waiting to take over. Its frames did
    /// not go out meanwhile, so the peer may have begun its fence wait, whose margin covers
    /// only our stalls under the threshold, while our own deadtime and the ping nodes'
    /// silence count again from the wake (SIM seed 122811: a holder cut off, then hung for
    /// most of its watchdog timeout, petted on for a deadtime after waking and outlived its
    /// peer's wait). Cleared by a frame of the peer, or when nothing is held.
    pub(super) stall_unheard: bool,
    /// The last `self_fence` of `Output::Watchdog` (the statedir's, at start).
    pub(super) self_fence_reported: bool,
    pub(super) shutting_down: bool,
    /// The split brain under way was notified and counted. Not role-scoped: one split brain
    /// lasts while the peer holds the group (or until it restarts), whichever roles this node
    /// goes through meanwhile, and is counted once.
    pub(super) split_brain_seen: bool,
    /// The last moment this node held the group past `Init` (its frames said holding, in a
    /// state other than `standby`): who may look like the owner to the peer in a fence race
    /// (`fencing.rs`). Not role-scoped: it is about the roles left.
    pub(super) held_at: Option<Instant>,
    /// Under `fence CMD`, after an unclean stop: no fence and no takeover before the peer is
    /// heard (or the operator vouches it is down). Lasts through every role until then.
    pub(super) unclean_wait: bool,
    /// `hapair takeover --force` while the peer was not heard: the operator vouches that it is
    /// down, so the group is taken without fencing it, once. Ends with that takeover, or when
    /// anything of the peer arrives (an unconfirmed frame too).
    pub(super) peer_vouched_down: bool,
    /// Under `fence CMD`: the fence made the peer safe and nothing of it was heard fresh since
    /// (its next run, back from that unclean stop, waits to hear this node before it fences
    /// or takes anything): a dead peer is not fenced again to take the group again.
    pub(super) peer_still_fenced: bool,
    /// The fence order this node follows instead of its own (a group after the first follows
    /// the first group's, `core::groups`: a node fences once, whatever group needs it, so the
    /// two nodes' fence slots must come from one group's view). `None`: its own.
    pub(super) fence_order: Option<FenceOrder>,
    /// This node's group among several (`core::groups`), for log lines: what is about the
    /// group names it, what is about the node is logged at info by the first group only.
    pub(super) log_group: Option<u8>,
}

/// `group N: ` before a log line of one group among several, nothing for a lone group.
pub(super) struct GroupLabel(pub(super) Option<u8>);

impl core::fmt::Display for GroupLabel {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(k) => write!(f, "group {k}: "),
            None => Ok(()),
        }
    }
}

/// A log line about the node, not a group: at info from a lone group or the first of
/// several, at debug from the others (each group's `Node` sees the same inputs).
macro_rules! node_info {
    ($node:expr, $($arg:tt)*) => {
        if $node.log_group.unwrap_or(0) == 0 {
            log::info!($($arg)*)
        } else {
            log::debug!($($arg)*)
        }
    };
}

/// What orders the two nodes of a fence race (`fence_delay_on_entry`): whether this node held
/// the group lately, whether the peer held it when last heard, and whether this node is home.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FenceOrder {
    /// This node held the group within deadtime plus `fence_delay` before the peer was lost.
    pub held_recently: bool,
    /// The peer's last frame showed it holding the group.
    pub peer_held: bool,
    /// This node is the group's home.
    pub home: bool,
}

impl Node {
    /// A node that has just started: it holds nothing and waits `initdead` for its peer.
    pub fn new(params: Params, now: Instant) -> Node {
        // INVARIANT: `params` come from a validated configuration (two nodes, one of them
        // home, at most RESOURCES_MAX resources).
        assert!(params.me <= 1 && params.peer == 1 - params.me && params.home <= 1);
        assert!(usize::from(params.resources) <= RESOURCES_MAX, "{} resources", params.resources);
        let mut links = Vec::new();
        for link in &params.links {
            // Cannot fail: `params.links` has the same capacity.
            let _ = links.push(Link::new(*link, now));
        }
        let mut resources = Vec::new();
        for _ in 0..params.resources {
            let _ = resources.push(ResourceStatus::STOPPED);
        }
        let mut timers = Timers::default();
        timers.set(Timer::InitDead, now + params.initdead);
        let intent = if params.start_standby { Intent::Standby } else { Intent::None };
        let self_fencing = params.start_self_fencing;
        let unclean_wait = params.start_unclean && params.fence == FenceMode::External;
        if unclean_wait {
            log::warn!(
                "the last run did not stop cleanly (a crash, reset or power loss): this node \
                 neither fences nor takes the group before it has heard its peer \
                 (`hapair takeover --force` if the peer is down)"
            );
        }
        let phase = Phase::first(resources.len());
        let mut node = Node {
            params,
            created: now,
            last_input: now,
            listening_since: now,
            phase,
            role_since: now,
            reason: Reason::Boot,
            epoch: 0,
            releasing: None,
            lapsed_grant: None,
            intent,
            health: Health::OK,
            restarts_exhausted: false,
            restarts: RestartWindow::default(),
            peer: PeerStatus::default(),
            links,
            resources,
            pending: None,
            reconfig: None,
            timers,
            outputs: Deque::new(),
            tx_all: true,
            handshake_answered: [None; 2],
            counters: Counters::default(),
            petting_allowed: !self_fencing,
            self_fencing,
            stall_unheard: false,
            self_fence_reported: self_fencing,
            shutting_down: false,
            split_brain_seen: false,
            held_at: None,
            unclean_wait,
            peer_vouched_down: false,
            peer_still_fenced: false,
            fence_order: None,
            log_group: None,
        };
        // Probe every resource before deciding anything (see "Adoption" in the module docs).
        if !node.resources.is_empty() {
            node.drive_resources(now);
        }
        node.assert_invariants();
        node
    }

    /// Feeds one input at `now`. Drain `poll_output` afterwards.
    pub fn handle_input(&mut self, now: Instant, input: Input<'_>) {
        if self.role() == Role::Exited {
            return;
        }
        assert!(now >= self.last_input, "time went backwards: {now} < {}", self.last_input);
        let gap = now.saturating_since(self.last_input);
        if gap > self.stall_threshold() {
            log::warn!(
                "stalled from {} to {now}: the peer's silence does not count these {gap}",
                self.last_input
            );
            // Only the stall is taken out: a busy machine with many short stalls still finds
            // a dead peer dead (restarting the silence at every stall never would).
            self.listening_since = (self.silent_since() + gap).min(now);
            self.links.iter_mut().for_each(|l| l.handle_stall(gap, now));
            if let Phase::Fencing { stalled, .. } = &mut self.phase {
                *stalled = stalled.saturating_add(gap);
            }
            // The wait counted from the last unfresh frame moves on by the stall too.
            self.peer.unfresh_at = self.peer.unfresh_at.map(|t| (t + gap).min(now));
            // A peer heard within its deadtime and fence wait before now may be waiting;
            // one silent longer has ended any wait it began. Its deadtime: the longest of
            // the links', the latest it may have lost us (SPEC §7.7).
            let wait = self.watchdog_fence_wait().unwrap_or(Duration::ZERO);
            let deadtime = self.peer_deadtime();
            let may_wait = self.peer.alive
                || self.peer.last_heard.is_some_and(|t| now < t + deadtime.saturating_add(wait));
            if self.fence_mode() == FenceMode::Watchdog
                && self.holds()
                && may_wait
                && !self.mutated(super::Mutation::PetAfterStall)
            {
                debug!("stalled while holding: no pet until the peer is heard");
                self.stall_unheard = true;
            }
        }
        self.last_input = now;
        // It held the group until now (the roles are constant between inputs).
        self.note_holding(now);
        match input {
            Input::Frame { link, frame } => self.handle_frame(now, link, frame.repr()),
            Input::Timeout => self.handle_timeout(now),
            Input::ResourceResult { index, action, outcome, elapsed } => {
                debug!("resource {index} {action:?} -> {outcome:?} after {elapsed}");
                self.handle_resource_result(now, index, action, outcome);
            }
            Input::FenceResult { ok } => self.handle_fence_result(now, ok),
            Input::Health(health) => self.handle_health(health),
            Input::Admin(admin) => self.handle_admin(now, admin),
            Input::Shutdown => self.handle_shutdown(now),
            Input::Handshake => self.handle_handshake(now),
            Input::Unfresh(repr) => self.handle_unfresh(now, &repr),
            Input::Resources(plan) => self.handle_resources(now, plan),
        }
        self.update_liveness(now);
        self.decide_all(now);
        self.update_petting();
        self.note_holding(now);
        self.assert_invariants();
    }

    /// Notes that this node holds the group in a role past `Init`: what its frames show the
    /// peer as holding (state not `standby`), for the fence race (`fence_delay_on_entry`).
    fn note_holding(&mut self, now: Instant) {
        if self.role().holds() {
            self.held_at = Some(now);
        }
    }

    /// The next command, or `Output::Timeout` when there is nothing more to do now.
    pub fn poll_output(&mut self, now: Instant) -> Output {
        // The loop ran at `now`: a heartbeat sent without an input in between is no stall
        // (the stall detector in `handle_input` measures from here too).
        self.last_input = self.last_input.max(now);
        if let Some(output) = self.outputs.pop_front() {
            return output;
        }
        if self.role() == Role::Exited {
            return Output::Timeout(Instant::from_millis(u64::MAX));
        }
        if self.tx_all {
            self.tx_all = false;
            self.links.iter_mut().for_each(|l| l.sent_now(now));
            return Output::Transmit { link: LinkSel::All, payload: self.payload() };
        }
        if let Some(i) = self.links.iter_mut().position(|l| l.poll_send(now)) {
            // `i` < LINKS_MAX, so it fits a u8.
            return Output::Transmit { link: LinkSel::One(i as u8), payload: self.payload() };
        }
        Output::Timeout(self.next_deadline())
    }

    fn next_deadline(&self) -> Instant {
        let mut next = self.timers.next_deadline().unwrap_or(Instant::from_millis(u64::MAX));
        for link in &self.links {
            next = next.min(link.next_deadline());
        }
        if self.peer.alive {
            next = next.min(self.peer_dead_at());
        }
        let listening_dead_at = self.listening_dead_at();
        if listening_dead_at > self.last_input {
            next = next.min(listening_dead_at);
        }
        next
    }

    /// A gap between inputs longer than one keepalive plus the fastest link's send interval
    /// means the node itself stalled: the loop wakes at least once per send interval of every
    /// link, so a healthy loop never leaves a longer gap. It stays under two thirds of the
    /// shortest link deadtime (`deadtime` when every link has the global timing), so a stall
    /// that could make a live peer look dead on any link is always caught (a slow serial
    /// link's interval may exceed `deadtime` at keepalive 10 ms; with its own timing a fast
    /// link may be judged sooner than the global `deadtime`).
    pub fn stall_threshold(&self) -> Duration {
        let shortest = self.params.links.iter().map(|l| l.send_interval).min();
        let gap = self.params.keepalive.saturating_add(shortest.unwrap_or(self.params.keepalive));
        let dead = self.params.links.iter().map(|l| l.dead_after).min();
        let cap =
            Duration::from_millis(dead.unwrap_or(self.params.deadtime).total_millis() * 2 / 3);
        gap.min(cap)
    }

    pub(super) fn longest_link(&self) -> Duration {
        self.params.links.iter().map(|l| l.send_interval).max().unwrap_or(self.params.keepalive)
    }

    /// The peer's effective deadtime: the longest link deadtime (`deadtime` when every link
    /// has the global timing). The latest the peer is found dead after its last frame, so
    /// every window that must cover "the peer (or this node) has not yet found the other
    /// dead" uses it: the fence-watchdog margin, the stall's may-wait window, unfresh claims,
    /// the fence order's held-recently window (core docs, "Per-link timing").
    pub fn peer_deadtime(&self) -> Duration {
        self.params.links.iter().map(|l| l.dead_after).max().unwrap_or(self.params.deadtime)
    }

    /// When the peer's silence began, as far as this node could observe it.
    pub(super) fn silent_since(&self) -> Instant {
        self.peer.last_heard.unwrap_or(self.created).max(self.listening_since)
    }

    /// When the peer is dead by every link's own deadtime (SPEC §7.7): the moment the last
    /// link goes down, each `dead_after` of our listening after its own last frame. A working
    /// slow link is proof of life; a fast link going down alone never makes the peer dead.
    /// With every link at one deadtime this is `silent_since() + deadtime`.
    pub(super) fn peer_dead_at(&self) -> Instant {
        if self.mutated(super::Mutation::FastestLinkDeadtime) {
            let fastest = self.params.links.iter().map(|l| l.dead_after).min();
            return self.silent_since() + fastest.unwrap_or(self.params.deadtime);
        }
        let latest = self.links.iter().map(Link::down_at).max();
        latest.unwrap_or(self.silent_since() + self.params.deadtime)
    }

    /// The latest link deadline counted from this node's last stall (or start): before it, a
    /// stall may have kept the peer from being judged on some link.
    fn listening_dead_at(&self) -> Instant {
        let latest = self.links.iter().map(Link::listening_down_at).max();
        latest.unwrap_or(self.listening_since + self.params.deadtime)
    }

    /// True when the peer has been silent on every link for that link's deadtime of our own
    /// listening.
    pub(super) fn peer_surely_dead(&self, now: Instant) -> bool {
        !self.peer.alive && now >= self.peer_dead_at()
    }

    /// A reload put other resources in force: heartbeats carry this digest from now on.
    pub fn set_config_digest(&mut self, digest: [u8; 8]) {
        self.params.config_digest = digest;
    }

    /// The heartbeat this node sends now.
    pub fn payload(&self) -> Payload {
        let holding = self.holds();
        let kind = if self.releasing.is_some() {
            Kind::Release
        } else if self.intent == Intent::Takeover && !holding && self.peer_holds() {
            Kind::Request
        } else {
            Kind::Heartbeat
        };
        let mut flags = 0;
        if holding {
            flags |= FLAG_HOLDING;
        }
        if self.role() == Role::Fencing {
            flags |= FLAG_TAKING_OVER;
        }
        if self.peer.alive {
            flags |= FLAG_PEER_ALIVE;
        }
        Payload {
            kind,
            state: self.role().group_state(),
            health: self.advertised_health(),
            intent: self.intent,
            flags,
            epoch: self.epoch,
            watchdog_timeout_ms: self
                .params
                .watchdog_timeout
                .map_or(0, |d| u32::try_from(d.total_millis()).unwrap_or(u32::MAX)),
            config_digest: self.params.config_digest,
            groups: Groups::ONE,
        }
    }

    fn handle_frame(&mut self, now: Instant, link: u8, repr: &Repr) {
        // `wire` lets through only fresh frames of the one run of the peer it accepted, so a
        // frame of another run than the last one means the peer restarted, whichever way its
        // incarnation went (a lost or restored statedir sends it back).
        let known = self.peer.incarnation.map(|i| (i, self.peer.run));
        let this = (repr.incarnation, repr.session.run);
        let unfenceable_before = self.peer_unfenceable();
        let stale = repr.sender != self.params.peer
            || usize::from(link) >= self.links.len()
            || self.peer.fenced == Some(this);
        if stale {
            self.counters.stale_frames += 1;
            trace!("ignored frame from {} inc {} on link {link}", repr.sender, repr.incarnation);
            return;
        }
        trace!(
            "frame on link {link}: inc {} seq {} {:?}",
            repr.incarnation, repr.seq, repr.payload
        );
        if known.is_some_and(|k| k != this) {
            let before = known.map_or(0, |k| k.0);
            if repr.incarnation > before {
                node_info!(self, "peer restarted: incarnation {before} -> {}", repr.incarnation);
            } else {
                log::warn!(
                    "peer restarted with incarnation {} after {before}: its statedir was lost \
                     or restored; resynchronised",
                    repr.incarnation
                );
            }
            self.notify(Event::PeerRestarted, Detail::None);
            self.peer.left = false;
            self.peer.last = None;
            self.split_brain_seen = false;
        }
        // Late by the slowest link's standard: a frame on time on the slow link that is left
        // is on time for the peer (the fast link counts its own late frames).
        let warn = self.params.links.iter().map(|l| l.warn_after).max();
        let warn = warn.unwrap_or(self.params.warntime);
        let gap_late = self.peer.last_heard.is_some_and(|t| now.saturating_since(t) > warn);
        if gap_late {
            self.counters.late_heartbeats += 1;
        }
        self.links[usize::from(link)].handle_frame(now);
        if core::mem::take(&mut self.unclean_wait) {
            node_info!(self, "the peer is heard: the wait after an unclean stop is over");
        }
        if core::mem::take(&mut self.peer_vouched_down) {
            log::warn!("the peer the operator vouched down is heard again");
        }
        self.peer_still_fenced = false;
        self.peer.incarnation = Some(repr.incarnation);
        self.peer.run = repr.session.run;
        self.peer.unfresh_at = None;
        self.peer.unfresh_claims = None;
        self.peer.last_heard = Some(now);
        self.stall_unheard = false;
        let payload = repr.payload;
        // Frames overtake each other across links. Within one incarnation a node's epoch only
        // grows, and within one epoch it goes from holding to not holding, never back (a new
        // start always takes a new epoch). So a frame with an older epoch than the last one is
        // stale and does not replace it; one with the same epoch that still shows the group
        // held is at worst conservative.
        let older = self.peer.last.is_some_and(|p| payload.epoch < p.epoch);
        if older {
            trace!("frame with older epoch {} kept out of the peer view", payload.epoch);
        } else {
            self.peer.last = Some(payload);
        }
        self.peer.unfresh_watchdog_ms = None;
        let differs = payload.config_digest != self.params.config_digest;
        if differs != self.peer.config_differs {
            self.peer.config_differs = differs;
            if differs {
                log::warn!(
                    "the peer runs another configuration (digest {} here, {} there): compare \
                     `hapair check --print` on both nodes",
                    Hex(&self.params.config_digest),
                    Hex(&payload.config_digest)
                );
            } else {
                node_info!(self, "the peer's configuration digest matches ours again");
            }
        }
        let unfenceable = self.peer_unfenceable();
        if unfenceable != unfenceable_before {
            if unfenceable {
                log::warn!(
                    "the peer advertises no armed watchdog (an older version, or its watchdog \
                     failed): under fence watchdog it is never taken over by waiting"
                );
            } else {
                node_info!(self, "the peer advertises an armed watchdog again");
            }
        }
        if payload.kind == Kind::Leaving && payload.flags & FLAG_HOLDING == 0 {
            self.peer.left = true;
        }
        if payload.kind == Kind::Release && payload.epoch > self.epoch {
            self.handle_release(now, payload.epoch);
        }
        self.epoch = self.epoch.max(payload.epoch);
    }

    fn handle_handshake(&mut self, now: Instant) {
        // Bounded, so that frames replayed to make us answer cannot make us flood the links:
        // two answers a keepalive. Two, because a handshake after the peer restarted takes
        // two at once: the first teaches the new run our challenge, whose acceptance moves the
        // peer's challenge on, which we must echo too; with one a keepalive the second waited
        // up to a keepalive while both ran the group (SIM seed 157795, S1).
        let [older, newer] = self.handshake_answered;
        let due = older.is_none_or(|t| now >= t + self.params.keepalive);
        if due {
            self.handshake_answered = [newer, Some(now)];
            self.tx_all = true;
        }
    }

    fn handle_unfresh(&mut self, now: Instant, repr: &Repr) {
        let payload = repr.payload;
        // Whatever the operator said, the peer sends: it is not down.
        if core::mem::take(&mut self.peer_vouched_down) {
            log::warn!("the peer the operator vouched down sends frames: no takeover on that word");
        }
        if self.peer.unfresh_at.is_none() && self.fence_mode() == FenceMode::Watchdog {
            log::warn!(
                "frames of the peer arrive without our challenge (it does not hear us, or they \
                 are replayed; it says {:?}): no takeover by waiting while they do",
                payload.state
            );
        }
        self.peer.unfresh_at = Some(now);
        let heard = Some(payload.watchdog_timeout_ms);
        self.peer.unfresh_watchdog_ms = cautious_watchdog(self.peer.unfresh_watchdog_ms, heard);
        let runs = matches!(payload.state, GroupState::Starting | GroupState::Active);
        if payload.flags & FLAG_TAKING_OVER != 0 || runs {
            self.peer.unfresh_claims = Some(now);
        }
        // A peer that said `Leaving` and is heard again in another run (unconfirmed: it does
        // not hear us) has restarted and may take or hold the group: no takeover on its word.
        let other_run =
            self.peer.incarnation != Some(repr.incarnation) || self.peer.run != repr.session.run;
        if self.peer.left && other_run {
            log::info!(
                "the peer that left runs again (not yet confirmed): its leave no longer counts"
            );
            self.peer.left = false;
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.take_expired(now) {
            self.handle_timer(now, timer);
        }
    }

    fn handle_timer(&mut self, now: Instant, timer: Timer) {
        match (timer, &mut self.phase) {
            // `decide_init` acts on it once the probes are in.
            (Timer::InitDead, Phase::Init { initdead_over, .. }) => *initdead_over = true,
            (Timer::FenceWait, Phase::Fencing { .. }) => self.handle_fence_wait(now),
            (
                Timer::FenceRetry | Timer::FenceDelay,
                Phase::Fencing { fence_running: false, .. },
            ) => self.run_fence(),
            // An empty group has nothing to monitor.
            (Timer::Monitor, Phase::Active { .. }) if !self.resources.is_empty() => {
                self.start_monitor_round(now)
            }
            _ => {}
        }
    }

    fn handle_health(&mut self, health: Health) {
        if health != self.health {
            node_info!(self, "health {:#06x} -> {:#06x}", self.health.0, health.0);
            self.health = health;
            self.notify(Event::Health, Detail::Health(self.advertised_health()));
            self.tx_all = true;
        }
    }

    fn handle_admin(&mut self, now: Instant, admin: Admin) {
        if let Some(refusal) = self.admin_refusal(admin) {
            log::warn!("admin command {admin:?} refused: {refusal}");
            self.push(Output::AdminAnswer(Err(refusal)));
            return;
        }
        log::info!("{}admin command {admin:?}", GroupLabel(self.log_group));
        self.push(Output::AdminAnswer(Ok(())));
        match admin {
            Admin::Standby | Admin::Move(_) => self.intent = Intent::Standby,
            Admin::Takeover | Admin::TakeoverGroup(_) => self.intent = Intent::Takeover,
            Admin::TakeoverForce => {
                self.intent = Intent::Takeover;
                self.vouch_peer_down();
            }
            Admin::Online if self.intent != Intent::Maintenance => self.intent = Intent::None,
            Admin::Online => {}
            Admin::MaintenanceOn => self.intent = Intent::Maintenance,
            Admin::MaintenanceOff if self.intent == Intent::Maintenance => {
                self.intent = Intent::None
            }
            Admin::MaintenanceOff => {}
            Admin::Cleanup(index) => self.handle_cleanup(now, index),
        }
        self.tx_all = true;
    }

    /// Why `admin` cannot be done here, if it cannot (see "Rules decided here" in the module
    /// docs): a `takeover` that health forbids. The same judgement as the policies that would
    /// not move the group (`preferred`, `handover_reason`, `me_can_run`).
    pub(super) fn admin_refusal(&self, admin: Admin) -> Option<Refusal> {
        let health = self.judged(self.advertised_health());
        let takeover =
            matches!(admin, Admin::Takeover | Admin::TakeoverGroup(_) | Admin::TakeoverForce);
        if !takeover || health.is_ok() {
            return None;
        }
        let drbd = self.drbd_bars(self.health);
        if self.health.has(Health::PING) || drbd || self.restarts_exhausted {
            return Some(Refusal::MayNotRun(health));
        }
        let peer_healthy = self.peer_payload().is_some_and(|p| self.judged(p.health).is_ok());
        peer_healthy.then_some(Refusal::UnhealthyBesideHealthyPeer(health))
    }

    pub(super) fn update_liveness(&mut self, now: Instant) {
        for (i, link) in self.links.iter_mut().enumerate() {
            if let Some(colour) = link.update(now) {
                debug!("link {i} is now {colour:?}");
            }
        }
        // Silence counts only while we listen: after a stall of our own the peer keeps its
        // last known state for each link's deadtime (see `listening_since`).
        // A stall of ours keeps a live peer alive (the stall does not count as silence), but
        // never revives a dead one: only a frame heard since can.
        let heard_since = self.peer.last_heard.is_some_and(|t| t >= self.listening_since);
        let alive = !self.peer.left
            && self.peer.last.is_some()
            && (self.peer.alive || heard_since)
            && now < self.peer_dead_at();
        if alive != self.peer.alive {
            self.peer.alive = alive;
            self.peer.alive_since = alive.then_some(now);
            if !alive {
                self.peer.lost_at = Some(now);
            }
            node_info!(self, "peer is now {}", if alive { "alive" } else { "dead" });
            let event = if alive { Event::PeerAlive } else { Event::PeerDead };
            let unfenceable = !alive && !self.peer.left && self.peer_unfenceable();
            if unfenceable {
                log::warn!(
                    "the dead peer advertised no armed watchdog: waiting cannot fence it, so \
                     this node does not take the group over until the peer is heard again or \
                     says it leaves"
                );
            }
            let detail =
                if unfenceable { Detail::Reason(Reason::PeerUnfenceable) } else { Detail::None };
            self.notify(event, detail);
            self.tx_all = true;
        }
    }

    fn update_petting(&mut self) {
        if !self.holds() {
            self.self_fencing = false;
            self.stall_unheard = false;
        }
        let allow = !self.self_fencing && !self.stall_unheard;
        let self_fence = self.self_fencing;
        if allow != self.petting_allowed || self_fence != self.self_fence_reported {
            if self_fence != self.self_fence_reported {
                log::info!("watchdog petting {}", if allow { "allowed" } else { "forbidden" });
            } else {
                debug!("watchdog petting {}", if allow { "resumed" } else { "paused" });
            }
            self.petting_allowed = allow;
            self.self_fence_reported = self_fence;
            self.push(Output::Watchdog { allow_petting: allow, self_fence });
        }
    }

    /// Queues a command. The queue is drained after every input and one input queues only a
    /// handful of commands, so a full queue is a broken invariant, never an input.
    pub(super) fn push(&mut self, output: Output) {
        let pushed = self.outputs.push_back(output);
        assert!(pushed.is_ok(), "core output queue overflow: drain poll_output after each input");
    }

    pub(super) fn notify(&mut self, event: Event, detail: Detail) {
        self.push(Output::Notify { event, detail, group: None });
    }

    /// Health as advertised: the event loop's bits plus our own restart exhaustion.
    /// `health` as this group judges it: `Health::DRBD` counts only in a group with a `drbd`
    /// resource (a node whose DRBD disk is stale may still run the others).
    pub(super) fn judged(&self, health: Health) -> Health {
        if self.params.drbd { health } else { Health(health.0 & !Health::DRBD) }
    }

    /// `health` bars the node from this group: a stale DRBD disk, in a group with a `drbd`
    /// resource.
    pub(super) fn drbd_bars(&self, health: Health) -> bool {
        self.params.drbd && health.has(Health::DRBD)
    }

    pub fn advertised_health(&self) -> Health {
        let restarts = if self.restarts_exhausted { Health::RESTARTS } else { 0 };
        Health(self.health.0 | restarts)
    }

    pub(super) fn peer_payload(&self) -> Option<Payload> {
        if self.peer.alive { self.peer.last } else { None }
    }

    pub(super) fn peer_holds(&self) -> bool {
        self.peer_payload().is_some_and(|p| p.flags & FLAG_HOLDING != 0)
    }

    pub(super) fn is_home(&self) -> bool {
        self.params.me == self.params.home
    }

    pub(super) fn fence_mode(&self) -> FenceMode {
        self.params.fence
    }

    /// True when the simulator seeded bug `m` (never in the daemon: see `Mutation`).
    #[cfg(feature = "sim")]
    pub(super) fn mutated(&self, m: super::Mutation) -> bool {
        self.params.sim_mutation == m
    }

    #[cfg(not(feature = "sim"))]
    pub(super) fn mutated(&self, _m: super::Mutation) -> bool {
        false
    }

    pub(super) fn peer_taking_over(&self) -> bool {
        self.peer_payload().is_some_and(|p| p.flags & FLAG_TAKING_OVER != 0)
    }

    // ----- status accessors -----

    /// This node's role now.
    pub fn role(&self) -> Role {
        self.phase.role()
    }

    /// This node's group state as the wire and `status` name it.
    pub fn state(&self) -> GroupState {
        self.role().group_state()
    }

    /// Since when the role holds.
    pub fn role_since(&self) -> Instant {
        self.role_since
    }

    /// Why the last role change happened.
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// The peer's last fresh frame came within its send interval plus a keepalive: its run
    /// is running now (`wire::Receiver::set_peer_alive`).
    pub fn peer_heard_recently(&self, now: Instant) -> bool {
        let window = self.longest_link().saturating_add(self.params.keepalive);
        self.peer.last_heard.is_some_and(|t| now.saturating_since(t) <= window)
    }

    /// What we know of the peer.
    pub fn peer(&self) -> PeerStatus {
        self.peer
    }

    /// Each link's liveness, in configuration order.
    pub fn links(&self) -> impl Iterator<Item = LinkStatus> + '_ {
        self.links.iter().map(|l| l.status())
    }

    /// Each resource's state and failure count, in group order.
    pub fn resources(&self) -> &[ResourceStatus] {
        &self.resources
    }

    /// Event counters.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// The standing admin intent.
    pub fn intent(&self) -> Intent {
        self.intent
    }

    /// The ownership epoch this node knows.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// Names this node's group in its log lines (`core::groups`, with several groups).
    pub fn set_log_group(&mut self, group: u8) {
        self.log_group = Some(group);
    }

    /// Petting is forbidden until this node holds nothing (the `fence watchdog` self-fence).
    pub fn self_fencing(&self) -> bool {
        self.self_fencing
    }

    /// This node's fence order now (see `fence_delay_on_entry`): what a group that follows
    /// this one's order takes as its own.
    pub fn fence_order(&self, now: Instant) -> FenceOrder {
        let lost = self.peer.lost_at.unwrap_or(now);
        let window = self.peer_deadtime().saturating_add(self.params.fence_delay);
        FenceOrder {
            held_recently: self.held_at.is_some_and(|t| t + window >= lost),
            peer_held: self
                .peer
                .last
                .is_some_and(|p| p.flags & FLAG_HOLDING != 0 && p.state != GroupState::Standby),
            home: self.is_home(),
        }
    }

    /// Follow `order` when this node enters `Fencing`, instead of its own (set before every
    /// input by `core::groups` for each group after the first).
    pub fn follow_fence_order(&mut self, order: FenceOrder) {
        self.fence_order = Some(order);
    }

    /// Whether the watchdog may be petted now.
    pub fn petting_allowed(&self) -> bool {
        self.petting_allowed
    }

    /// Under `fence CMD`, after an unclean stop of the previous run: this node neither fences
    /// nor takes the group until it hears its peer or `hapair takeover --force` (`status`).
    pub fn waits_for_peer(&self) -> bool {
        self.unclean_wait
    }

    /// `hapair takeover --force` vouched that the peer is down, and it has not been heard
    /// since.
    pub fn peer_vouched_down(&self) -> bool {
        self.peer_vouched_down
    }

    /// The node exited leaving nothing that may run (it said `Leaving`): what the statedir's
    /// clean-exit marker records.
    pub fn exited_clean(&self) -> bool {
        self.role() == Role::Exited && !self.found()
    }

    /// True while the node may hold resources (starting, active, stopping, failed after a
    /// failed stop, maintenance over a running group, and `Init` while probing or after the
    /// probes found something running).
    pub fn holds(&self) -> bool {
        let role = self.role();
        role.holds() || (role == Role::Init && (self.probing() || self.found()))
    }

    /// True while start-up probes are still to be issued or in flight.
    pub fn probing(&self) -> bool {
        let probes_left = matches!(self.phase, Phase::Init { probe_next: Some(_), .. });
        probes_left || self.pending.is_some_and(|p| p.probe)
    }

    /// True when some resource may run here (found by a probe, or started).
    pub(super) fn found(&self) -> bool {
        self.resources.iter().any(|r| r.may_run())
    }
}

/// The more cautious of two advertised watchdog timeouts: 0 (none armed) wins, else the longer.
pub(super) fn cautious_watchdog(a: Option<u32>, b: Option<u32>) -> Option<u32> {
    match (a, b) {
        (Some(0), _) | (_, Some(0)) => Some(0),
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    }
}

#[cfg(test)]
mod tests {
    use crate::core::testkit::*;

    /// A new challenge heard is answered at once on every link, twice a keepalive at most: a
    /// restart's handshake needs two answers in a row (SIM seed 157795), and replayed frames
    /// cannot make more.
    #[test]
    fn handshakes_are_answered_at_once_twice_a_keepalive_at_most() {
        let mut node = Node::new(params(0, FenceMode::None), ms(0));
        drain(&mut node, ms(0));
        let answers = |node: &mut Node, t: u64| {
            node.handle_input(ms(t), Input::Handshake);
            let out = drain(node, ms(t));
            out.iter().filter(|o| matches!(o, Output::Transmit { .. })).count()
        };
        assert!(answers(&mut node, 10) > 0, "the first is answered at once");
        assert!(answers(&mut node, 11) > 0, "so is the second");
        assert_eq!(answers(&mut node, 12), 0, "a third waits");
        // A keepalive (100 ms in `params`) after each of the two, one more is due.
        assert!(answers(&mut node, 110) > 0);
        assert!(answers(&mut node, 111) > 0);
        assert_eq!(answers(&mut node, 112), 0);
    }

    #[test]
    fn a_peer_with_another_configuration_digest_is_flagged_until_it_matches() {
        let mut node = Node::new(params(0, FenceMode::None), ms(0));
        drain(&mut node, ms(0));
        let mut other = peer_says(Kind::Heartbeat, GroupState::Standby, 0, 0);
        other.config_digest = [9; 8];
        frame(&mut node, ms(10), 1, other);
        assert!(node.peer().config_differs);
        frame(&mut node, ms(20), 2, peer_says(Kind::Heartbeat, GroupState::Standby, 0, 0));
        assert!(!node.peer().config_differs, "the same digest again clears it");
    }

    /// A machine that stalls 250 ms in every 300 (more often than once a deadtime) still
    /// finds a silent peer dead: only the stalls are taken out of the silence. (Restarting
    /// the silence at each stall kept a dead peer alive for good; found by the lab tests.)
    #[test]
    fn a_node_that_stalls_often_still_finds_a_silent_peer_dead() {
        let mut node = Node::new(params(0, FenceMode::None), ms(0));
        drain(&mut node, ms(0));
        frame(&mut node, ms(10), 1, peer_says(Kind::Heartbeat, GroupState::Standby, 4, 0));
        assert!(node.peer().alive);
        // The peer goes silent at 10 ms; inputs come 50 ms apart, then 250 ms apart.
        let mut now = 10;
        while now < 5_000 && node.peer().alive {
            now += if (now / 50) % 6 == 5 { 250 } else { 50 };
            node.handle_input(ms(now), Input::Timeout);
            drain(&mut node, ms(now));
        }
        assert!(!node.peer().alive, "still alive at {now} ms");
        // 500 ms of listening: about 1.7 s with the stalls taken out.
        assert!(now < 2_500, "dead only at {now} ms");
    }

    /// SPEC §7.7: a working slow link is proof of life. The fast link (judged at 50 ms)
    /// falls silent while the slow one (200 ms, judged at 2 s) keeps delivering: the peer
    /// stays alive, for far longer than the fast link's deadtime.
    #[test]
    fn a_working_slow_link_keeps_the_peer_alive_when_the_fast_one_is_down() {
        let mut node = Node::new(params_fast_and_slow(0, FenceMode::None), ms(0));
        drain(&mut node, ms(0));
        let standby = peer_says(Kind::Heartbeat, GroupState::Standby, FLAG_PEER_ALIVE, 0);
        frame_on(&mut node, ms(5), 0, 1, standby);
        frame_on(&mut node, ms(6), 1, 2, standby);
        assert!(node.peer().alive);
        for (seq, t) in (3..).zip((200..5_000).step_by(200)) {
            run_until(&mut node, ms(t - 1));
            assert!(node.peer().alive, "dead at {t} ms while the slow link works");
            frame_on(&mut node, ms(t), 1, seq, standby);
        }
        let links: std::vec::Vec<_> = node.links().collect();
        assert_eq!(links[0].health, crate::core::LinkHealth::Red, "the fast link is down");
        assert_eq!(node.counters().late_heartbeats, 0, "on time by the slow link");
    }

    /// SPEC §7.7: the peer is dead exactly when the slowest still-working link's deadtime
    /// runs out after its last frame, not at the fast link's, and the loop is woken then.
    #[test]
    fn the_peer_dies_when_the_slowest_link_deadtime_runs_out() {
        let mut node = Node::new(params_fast_and_slow(0, FenceMode::None), ms(0));
        drain(&mut node, ms(0));
        let standby = peer_says(Kind::Heartbeat, GroupState::Standby, FLAG_PEER_ALIVE, 0);
        frame_on(&mut node, ms(5), 1, 1, standby);
        run_until(&mut node, ms(299));
        frame_on(&mut node, ms(300), 0, 2, standby);
        // Down on the fast link at 350, on the slow one at 2005.
        run_until(&mut node, ms(2004));
        assert!(node.peer().alive, "dead before the slow link's deadtime");
        let out = run_until(&mut node, ms(2005));
        assert!(!node.peer().alive, "alive after every link is down");
        let dead = out.iter().any(|o| matches!(o, Output::Notify { event: Event::PeerDead, .. }));
        assert!(dead, "{out:?}");
        // The windows that must cover the peer's own judgement take the longest deadtime.
        assert_eq!(node.peer_deadtime(), Duration::from_millis(2000));
        // The stall detector stays under two thirds of the fast link's 50 ms.
        assert_eq!(node.stall_threshold(), Duration::from_millis(33));
    }

    #[test]
    fn a_frame_with_an_older_epoch_does_not_overwrite_the_peer_view() {
        let mut node = booted(1, FenceMode::External, Outcome::NotRunning);
        let release = peer_says(Kind::Release, GroupState::Standby, 0, 1);
        frame(&mut node, ms(5), 1, release);
        assert_eq!(node.role(), Role::Starting);
        // An Active frame from before the handover overtakes on another link: no split brain.
        let old = peer_says(Kind::Heartbeat, GroupState::Active, FLAG_HOLDING, 0);
        frame(&mut node, ms(6), 2, old);
        assert_eq!(node.role(), Role::Starting);
        assert_eq!(node.counters().split_brains, 0);
    }

    /// Health wins over an admin request: a `takeover` asked on an unhealthy node beside a
    /// healthy peer is refused and changes nothing (no standing intent, no `Request`); asked
    /// on a node that may not run the group (no ping node) it is refused whatever the peer.
    /// Any other command is answered done.
    #[test]
    fn a_takeover_that_health_forbids_is_refused_and_changes_nothing() {
        use crate::core::Refusal;
        let mut node = standby_beside_an_active_peer(2000);
        node.handle_input(ms(20), Input::Health(Health(Health::CHECK)));
        drain(&mut node, ms(20));
        node.handle_input(ms(30), Input::Admin(Admin::Takeover));
        let out = drain(&mut node, ms(30));
        let refused = Refusal::UnhealthyBesideHealthyPeer(Health(Health::CHECK));
        assert_eq!(answer(&out), Some(Err(refused)));
        assert!(refused.to_string().contains("health"), "{refused}");
        assert_eq!(node.intent(), Intent::None, "no standing intent");
        assert_eq!(node.payload().kind, Kind::Heartbeat, "no request to the peer");

        // The peer unhealthy too: health cannot choose, the request stands.
        let mut sick = peer_says(Kind::Heartbeat, GroupState::Active, FLAG_HOLDING, 1);
        sick.health = Health(Health::RAID);
        frame(&mut node, ms(40), 2, sick);
        node.handle_input(ms(50), Input::Admin(Admin::Takeover));
        assert_eq!(answer(&drain(&mut node, ms(50))), Some(Ok(())));
        assert_eq!(node.intent(), Intent::Takeover);
        assert_eq!(node.payload().kind, Kind::Request);

        // No ping node answers: this node may not take the group, whatever the peer.
        node.handle_input(ms(60), Input::Admin(Admin::Online));
        assert_eq!(answer(&drain(&mut node, ms(60))), Some(Ok(())));
        node.handle_input(ms(70), Input::Health(Health(Health::PING)));
        drain(&mut node, ms(70));
        node.handle_input(ms(80), Input::Admin(Admin::Takeover));
        let out = drain(&mut node, ms(80));
        assert_eq!(answer(&out), Some(Err(Refusal::MayNotRun(Health(Health::PING)))));
        assert_eq!(node.intent(), Intent::None);

        // Healthy again: done.
        node.handle_input(ms(90), Input::Health(Health::OK));
        node.handle_input(ms(90), Input::Admin(Admin::Takeover));
        assert_eq!(answer(&drain(&mut node, ms(90))), Some(Ok(())));
        assert_eq!(node.intent(), Intent::Takeover);
    }
}
