//! `Groups`: one node's resource groups (SPEC §7.1, active/active), each run by its own
//! failover state machine (`Node`), behind the same call protocol as one `Node`
//! (`handle_input(now, input)`, then `poll_output(now)` until `Output::Timeout`).
//!
//! # What is per group and what is per node
//!
//! Each group has its own `Node`: its role, owner, epoch, start and stop order, restarts and
//! `restart_limit`, handovers, failback (`home`, `auto_failback`) and its admin intent
//! (`move`, `takeover GROUP`). Every `Node` is fed every input that concerns the node (frames,
//! timeouts, health, `standby`/`online`, maintenance, shutdown), so they all judge the peer
//! alike: their liveness, stall detector and unclean-start wait see the same inputs at the same
//! instants. What is the node's, not a group's, is decided here:
//!
//! - **Frames.** One frame carries every group (`wire::Groups`, layout in `wire`): the frame's
//!   main fields are the first group's, each further group's state, kind, intent, holding and
//!   taking-over bits, restart exhaustion and epoch follow. A received frame is shown to group
//!   `k` as the peer's frame about group `k` (`Authentic::group`). The first group's `Node`
//!   paces the heartbeats; a further group's own `Transmit` goes out only when what it says
//!   about its group differs from what the last frame on that link said (a `Release`, a new
//!   state), so the frame rate is one group's, whatever the number of groups. Once the first
//!   group has exited (a shutdown), the others pace their own frames until they exit too.
//! - **Fencing.** A dead peer is fenced once. Every group that needs the peer made safe asks
//!   (`Output::Fence`); the first ask runs the fence command, later ones wait for its result,
//!   and a group that asks after a success, while nothing of a newer run of the peer was
//!   heard, is told at once that the peer is safe. Frames of the run a success made safe are
//!   shown to no group (what it had in flight was sent before it died). The order of a fence
//!   race (`fence_delay` slots, core docs "Fence races and loops") is the first group's for
//!   every group (`Node::follow_fence_order`): of two nodes that each run a group, both may
//!   need the other fenced, and only one group's view gives them different slots. So the node
//!   that holds the first group, or held it lately, fences later, as a one-group node that
//!   held its group does. Each group takes over when the result reaches it, in file order.
//! - **The watchdog** may be petted only while every group allows it; the node self-fences
//!   when any group does.
//! - **Notifications** about the node or its peer (`Event::node_wide`) are sent once; the
//!   others name their group.
//! - **Admin answers**: one per command. A command that any group it goes to refuses is
//!   refused as a whole (the first group's refusal) and no group takes it: a refused command
//!   changes nothing.
//! - **`move GROUP`** is that group's own `standby` while the peer it went to is heard: it
//!   does not come back by failback, and `online` or `takeover GROUP` end it. When that peer
//!   is lost the move ends, so the group is taken over like every group of a dead peer
//!   (unlike Pacemaker's `move`, which bans the node until cleared: a pair of two has no
//!   third node to run a banned group). It is refused while the peer cannot take the group.
//! - **Exit** once every group has exited.
//!
//! A node that takes over its dead peer's groups does not touch the ones it runs: each group's
//! `Node` drives only its own resources, and they run one action at a time each.

use heapless::{Deque, Vec};
use log::info;

use super::node::{Counters, Node};
use super::time::Instant;
use super::{Admin, Detail, Event, Input, LinkSel, Output, Params, Refusal, Role};
use crate::limits::{GROUPS_MAX, LINKS_MAX};
use crate::wire::{
    GROUP_FLAGS, GroupPart, GroupState, Groups as WireGroups, Health, Intent, Kind, Payload, Repr,
};

/// A run of the peer: (incarnation, run number).
type Run = (u64, u32);

/// The fence command, one for the node.
#[derive(Debug, Default)]
struct Fence {
    /// Groups waiting for the result of the command under way (bit per group); none: idle.
    waiters: u8,
    /// The peer's run heard last when the command started.
    target: Option<Run>,
    /// A success made this run safe, and nothing of another run was heard since.
    safe: Option<Option<Run>>,
    /// Groups to tell that the peer is safe, once their outputs are drained.
    tell_safe: u8,
    /// Fence commands that failed.
    failures: u64,
    /// A fence command is under way.
    running: bool,
}

/// One admin command on its way through the groups it went to.
#[derive(Debug)]
struct AdminFold {
    /// Answers still to come.
    left: u8,
    /// The first refusal, else done.
    answer: Result<(), Refusal>,
}

/// A node's groups, each with its own failover state machine (see the module docs).
#[derive(Debug)]
pub struct Groups {
    nodes: Vec<Node, GROUPS_MAX>,
    /// The first resource index of each group (in the configuration's flat order), then the
    /// number of resources.
    first: [u8; GROUPS_MAX + 1],
    outputs: Deque<Output, 8>,
    fence: Fence,
    /// What the last frame on each link said about each group after the first.
    sent: [[Option<GroupPart>; GROUPS_MAX]; LINKS_MAX],
    admin: Option<AdminFold>,
    /// The watchdog state last reported: (allow petting, self-fence).
    watchdog: (bool, bool),
    exited: bool,
    /// The peer's run heard last (fresh frames only).
    heard: Option<Run>,
    /// Frames of a fenced run shown to no group.
    stale_frames: u64,
    /// Groups moved to the peer (`move`, bit per group): their own standby lasts while the
    /// peer is heard, so a dead peer's groups are all taken over (see `handle_admin`).
    moved: u8,
    /// Admin answers of groups to swallow (a moved group's standby lifted by this code).
    silent_answers: u8,
    /// `PeerAlive` was told last (not `PeerDead`): each is told once for the node.
    peer_told: bool,
}

impl Groups {
    /// The groups of a node that has just started, one `Params` each, in the configuration's
    /// order (at least one, at most `GROUPS_MAX`; `Params::resources` is each group's count).
    pub fn new(params: &[Params], now: Instant) -> Groups {
        assert!(!params.is_empty() && params.len() <= GROUPS_MAX, "{} groups", params.len());
        let mut first = [0u8; GROUPS_MAX + 1];
        let mut nodes = Vec::new();
        let mut next = 0u8;
        for (k, p) in params.iter().enumerate() {
            first[k] = next;
            next = next.checked_add(p.resources).expect("resource count fits u8");
            let mut node = Node::new(p.clone(), now);
            if params.len() > 1 {
                node.set_log_group(k as u8);
            }
            // Cannot fail: at most GROUPS_MAX groups (asserted).
            let _ = nodes.push(node);
        }
        first[params.len()..].iter_mut().for_each(|f| *f = next);
        let allow = nodes.iter().all(Node::petting_allowed);
        let self_fence = nodes.iter().any(Node::self_fencing);
        Groups {
            nodes,
            first,
            outputs: Deque::new(),
            fence: Fence::default(),
            sent: [[None; GROUPS_MAX]; LINKS_MAX],
            admin: None,
            watchdog: (allow, self_fence),
            exited: false,
            heard: None,
            stale_frames: 0,
            moved: 0,
            silent_answers: 0,
            peer_told: false,
        }
    }

    /// Feeds one input at `now`. Drain `poll_output` afterwards.
    pub fn handle_input(&mut self, now: Instant, input: Input<'_>) {
        if self.exited {
            return;
        }
        match input {
            Input::Frame { link, frame } => {
                let run = run_of(frame.repr());
                if self.fence.safe == Some(Some(run)) {
                    self.stale_frames += 1;
                    return;
                }
                if self.fence.safe.is_some() {
                    self.fence.safe = None;
                }
                self.heard = Some(run);
                for k in 0..self.nodes.len() {
                    let frame = frame.group(k as u8);
                    self.feed(now, k, Input::Frame { link, frame: &frame });
                }
            }
            Input::Unfresh(repr) => {
                for k in 0..self.nodes.len() {
                    self.feed(now, k, Input::Unfresh(repr.group(k as u8)));
                }
            }
            Input::ResourceResult { index, action, outcome, elapsed } => {
                let (k, local) = self.locate(index);
                self.feed(now, k, Input::ResourceResult { index: local, action, outcome, elapsed });
            }
            Input::FenceResult { ok } => self.handle_fence_result(now, ok),
            Input::Admin(admin) => self.handle_admin(now, admin),
            Input::Resources(_) => {
                // One group: its plan. Several: `handle_resources` names the group.
                self.feed(now, 0, input);
            }
            Input::Timeout | Input::Health(_) | Input::Shutdown | Input::Handshake => {
                self.feed_all(now, input)
            }
        }
    }

    /// A reload's new resource definitions for group `group` (see "Reload" in the core docs);
    /// it answers with `Output::ApplyResources` naming the group.
    pub fn handle_resources(&mut self, now: Instant, group: u8, plan: &super::ResourcePlan) {
        if !self.exited {
            self.feed(now, usize::from(group), Input::Resources(plan));
        }
    }

    fn feed_all(&mut self, now: Instant, input: Input<'_>) {
        for k in 0..self.nodes.len() {
            self.feed(now, k, input);
        }
    }

    /// Feeds group `k`; a group after the first follows the first group's fence order, as it
    /// stands after the first group took the same input.
    fn feed(&mut self, now: Instant, k: usize, input: Input<'_>) {
        if k > 0 && !self.nodes[0].mutated(super::Mutation::OwnFenceOrder) {
            let order = self.nodes[0].fence_order(now);
            self.nodes[k].follow_fence_order(order);
        }
        self.nodes[k].handle_input(now, input);
    }

    fn handle_fence_result(&mut self, now: Instant, ok: bool) {
        if !self.fence.running {
            log::debug!("ignored a fence result nobody waits for");
            return;
        }
        self.fence.running = false;
        let waiters = core::mem::take(&mut self.fence.waiters);
        if ok {
            info!("peer fenced (run {:?}), for groups {waiters:#04x}", self.fence.target);
            self.fence.safe = Some(self.fence.target);
            self.push(Output::Notify { event: Event::Fenced, detail: Detail::None, group: None });
        } else {
            self.fence.failures += 1;
            let event = Event::FenceFailed;
            self.push(Output::Notify { event, detail: Detail::None, group: None });
        }
        for k in 0..self.nodes.len() {
            if waiters & (1 << k) != 0 {
                self.feed(now, k, Input::FenceResult { ok });
            }
        }
    }

    fn handle_admin(&mut self, now: Instant, admin: Admin) {
        let n = self.nodes.len();
        let one = |g: u8| (usize::from(g) < n).then_some(usize::from(g));
        let targets: (usize, usize, Admin) = match admin {
            Admin::Move(g) | Admin::TakeoverGroup(g) => {
                let Some(k) = one(g) else {
                    self.push(Output::AdminAnswer(Err(Refusal::NoSuchGroup)));
                    return;
                };
                if matches!(admin, Admin::Move(_)) && !self.peer_can_take(k) {
                    log::warn!("admin command {admin:?} refused: the peer cannot take it");
                    self.push(Output::AdminAnswer(Err(Refusal::PeerCannotTake)));
                    return;
                }
                (k, k + 1, admin)
            }
            Admin::Cleanup(Some(index)) if usize::from(index) < usize::from(self.first[n]) => {
                let (k, local) = self.locate(index);
                (k, k + 1, Admin::Cleanup(Some(local)))
            }
            _ => (0, n, admin),
        };
        let (from, to, admin) = targets;
        // A command that some group it goes to refuses is refused as a whole, before any
        // group takes it: the operator is told that it failed, so it must change nothing
        // (`Refusal`). A group's restarts are its own, so a node-wide `takeover` may be
        // refused by one group (restarts exhausted) and not by another, which would otherwise
        // keep the standing intent and pull its group over (SIM seed 689).
        if let Some(refusal) = (from..to).find_map(|k| self.nodes[k].admin_refusal(admin)) {
            log::warn!("admin command {admin:?} refused: {refusal}");
            self.push(Output::AdminAnswer(Err(refusal)));
            return;
        }
        match admin {
            Admin::Move(_) => self.moved |= 1 << from,
            // Whatever the operator says of a group next replaces the move.
            Admin::Cleanup(_) | Admin::MaintenanceOn | Admin::MaintenanceOff => {}
            _ => (from..to).for_each(|k| self.moved &= !(1 << k)),
        }
        // An exited group answers nothing (a shutdown under way in the others).
        let live: heapless::Vec<usize, GROUPS_MAX> =
            (from..to).filter(|&k| self.nodes[k].role() != Role::Exited).collect();
        if live.is_empty() {
            self.push(Output::AdminAnswer(Ok(())));
            return;
        }
        self.admin = Some(AdminFold { left: live.len() as u8, answer: Ok(()) });
        for k in live {
            self.feed(now, k, Input::Admin(admin));
        }
    }

    /// The peer could take group `k` now: heard, neither in standby nor in maintenance for it,
    /// and healthy.
    fn peer_can_take(&self, k: usize) -> bool {
        let node = &self.nodes[k];
        let peer = node.peer();
        peer.alive
            && peer.last.is_some_and(|p| {
                node.judged(p.health).is_ok()
                    && !matches!(p.intent, Intent::Standby | Intent::Maintenance)
            })
    }

    /// Group and index within it of resource `index` (the configuration's flat order).
    fn locate(&self, index: u8) -> (usize, u8) {
        let n = self.nodes.len();
        let k = (0..n).rev().find(|&k| self.first[k] <= index).unwrap_or(0);
        (k, index - self.first[k])
    }

    fn push(&mut self, output: Output) {
        let pushed = self.outputs.push_back(output);
        assert!(pushed.is_ok(), "groups output queue overflow: drain poll_output after each input");
    }

    /// The next command, or `Output::Timeout` when there is nothing more to do now.
    pub fn poll_output(&mut self, now: Instant) -> Output {
        loop {
            if let Some(output) = self.outputs.pop_front() {
                return output;
            }
            let mut next = Instant::from_millis(u64::MAX);
            let mut routed = false;
            for k in 0..self.nodes.len() {
                match self.nodes[k].poll_output(now) {
                    Output::Timeout(t) => next = next.min(t),
                    output => {
                        self.route(k, output);
                        routed = true;
                        break;
                    }
                }
            }
            if routed {
                continue;
            }
            // Every group is drained: tell the groups that asked after a success.
            let tell = core::mem::take(&mut self.fence.tell_safe);
            if tell != 0 {
                for k in 0..self.nodes.len() {
                    if tell & (1 << k) != 0 {
                        self.feed(now, k, Input::FenceResult { ok: true });
                    }
                }
                continue;
            }
            // A moved group's peer is lost: the move ends, and the group is the survivor's to
            // take like any other (a `move` is no ban: the pair keeps the group running).
            let lost = (0..self.nodes.len())
                .find(|&k| self.moved & (1 << k) != 0 && !self.nodes[k].peer().alive);
            if let Some(k) = lost {
                self.moved &= !(1 << k);
                // An exited group answers nothing and needs nothing.
                if self.nodes[k].role() != Role::Exited {
                    info!("group {k}: the peer it was moved to is lost; it may run here again");
                    self.silent_answers += 1;
                    self.feed(now, k, Input::Admin(Admin::Online));
                }
                continue;
            }
            if self.settle() {
                continue;
            }
            return Output::Timeout(if self.exited {
                Instant::from_millis(u64::MAX)
            } else {
                next
            });
        }
    }

    /// Reports what the groups say together (the watchdog, the exit): true when it queued
    /// something.
    fn settle(&mut self) -> bool {
        let allow = self.nodes.iter().all(Node::petting_allowed);
        let self_fence = self.nodes.iter().any(Node::self_fencing);
        if (allow, self_fence) != self.watchdog {
            self.watchdog = (allow, self_fence);
            self.push(Output::Watchdog { allow_petting: allow, self_fence });
            return true;
        }
        if !self.exited && self.nodes.iter().all(|n| n.role() == Role::Exited) {
            self.exited = true;
            self.push(Output::Exit);
            return true;
        }
        false
    }

    fn route(&mut self, k: usize, output: Output) {
        match output {
            Output::Transmit { link, payload } => self.transmit(k, link, payload),
            Output::ResourceAction { index, action } => {
                let index = self.first[k] + index;
                self.push(Output::ResourceAction { index, action });
            }
            Output::Fence => self.ask_fence(k),
            Output::Notify { event, detail, .. } => {
                let group = if event.node_wide() {
                    // Once for the node; the fence's result is told by `handle_fence_result`.
                    // The peer is alive once a group hears it, dead once none does (a peer
                    // that shuts down leaves group by group).
                    let told = match event {
                        Event::Fenced | Event::FenceFailed => true,
                        Event::PeerAlive => core::mem::replace(&mut self.peer_told, true),
                        Event::PeerDead => {
                            self.nodes.iter().any(|n| n.peer().alive)
                                || !core::mem::replace(&mut self.peer_told, false)
                        }
                        _ => k > 0,
                    };
                    if told {
                        return;
                    }
                    None
                } else {
                    Some(k as u8)
                };
                let detail = match detail {
                    Detail::Resource(i) => Detail::Resource(self.first[k] + i),
                    other => other,
                };
                self.push(Output::Notify { event, detail, group });
            }
            Output::Watchdog { .. } | Output::Exit => {} // `settle` reports them for the node.
            Output::AdminAnswer(_) if self.silent_answers > 0 => self.silent_answers -= 1,
            Output::AdminAnswer(answer) => {
                let Some(fold) = &mut self.admin else {
                    panic!("an admin answer from group {k} without a command");
                };
                if fold.answer.is_ok() {
                    fold.answer = answer;
                }
                fold.left -= 1;
                if fold.left == 0 {
                    let answer = fold.answer;
                    self.admin = None;
                    self.push(Output::AdminAnswer(answer));
                }
            }
            Output::ApplyResources { .. } => {
                self.push(Output::ApplyResources { group: k as u8 });
            }
            Output::Timeout(_) => unreachable!("routed only outputs that are not Timeout"),
        }
    }

    fn ask_fence(&mut self, k: usize) {
        let bit = 1u8 << k;
        if self.fence.running {
            self.fence.waiters |= bit;
        } else if self.fence.safe == Some(self.heard) {
            // Safe only while the run heard last is the one the fence made safe, as a lone
            // `Node` holds it (`peer_still_fenced`): a run heard while the command ran (the
            // peer's next life, if the agent rebooted it) is not (SIM seeds 1434 and 2139 of
            // one group, beside a lone `Node`: a second takeover without a fence).
            self.fence.tell_safe |= bit;
        } else {
            self.fence.running = true;
            self.fence.waiters = bit;
            self.fence.target = self.heard;
            self.push(Output::Fence);
        }
    }

    /// One frame for every group: the first group's fields, then each further group's part.
    /// The first group still running paces the heartbeats: the first group, until it exits
    /// while the others still stop at a shutdown. Then the next one does, or the peer, which
    /// hears nothing while a group stops for longer than its deadtime, would fence a node
    /// that shuts down cleanly. Another group's own frame goes out only when its part changed
    /// on some link it goes to.
    fn transmit(&mut self, k: usize, link: LinkSel, payload: Payload) {
        let mut frame = if k == 0 { payload } else { self.payload_of(0) };
        let n = self.nodes.len();
        let mut groups = WireGroups::new(n as u8).expect("1 to GROUPS_MAX groups");
        for j in 1..n {
            let p = if j == k { payload } else { self.payload_of(j) };
            groups.set(j as u8, GroupPart::of(&p));
        }
        frame.groups = groups;
        let links = match link {
            LinkSel::All => 0..self.nodes[0].links().count(),
            LinkSel::One(i) => usize::from(i)..usize::from(i) + 1,
        };
        let pacer = self.nodes.iter().position(|n| n.role() != Role::Exited).unwrap_or(0);
        if k > 0 && k != pacer {
            let part = groups.part(k as u8);
            if links.clone().all(|l| self.sent[l][k] == part) {
                return;
            }
        }
        for l in links {
            for j in 1..n {
                self.sent[l][j] = groups.part(j as u8);
            }
        }
        self.push(Output::Transmit { link, payload: frame });
    }

    /// What group `j` says in the node's frames: its heartbeat, except for a group that has
    /// exited while the node runs on for its other groups (a shutdown stops them side by
    /// side). Its heartbeat would read `standby`, holding nothing, but:
    /// - a group that exited holding nothing said `Leaving` once, in a frame that a later one
    ///   may overtake (every frame goes out on every link, and a receiver drops an older frame
    ///   after a newer one): lost, the peer would take the group only when the node is gone
    ///   and silent for deadtime (SIM seed 79742). It keeps saying `Leaving`, as the frame a
    ///   lone node exits with is its last;
    /// - a group that exited while what it ran may still run (a stop failed and a shutdown
    ///   came, under `fence CMD`: a lone node then exits without `Leaving` and lets its peer
    ///   fence it) would let the peer start the group beside what still runs (SIM seed 1254).
    ///   It says `failed` and holding: the peer takes it only after the node has exited and
    ///   been fenced, as it takes a lone node's.
    fn payload_of(&self, j: usize) -> Payload {
        let node = &self.nodes[j];
        let mut payload = node.payload();
        if node.role() == Role::Exited {
            if node.exited_clean() {
                payload.kind = Kind::Leaving;
                payload.flags &= !GROUP_FLAGS;
            } else {
                payload.state = GroupState::Failed;
                payload.flags |= super::FLAG_HOLDING;
            }
        }
        payload
    }

    /// A reload put other resources in force: heartbeats carry this digest from now on.
    pub fn set_config_digest(&mut self, digest: [u8; 8]) {
        self.nodes.iter_mut().for_each(|n| n.set_config_digest(digest));
    }

    // ----- status: the node's view and each group's -----

    /// The groups, in the configuration's order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The first group's state machine: the node's view of its peer and links is the same in
    /// every group.
    pub fn first(&self) -> &Node {
        &self.nodes[0]
    }

    /// The range of resource indices (the configuration's flat order) of group `k`.
    pub fn resource_range(&self, k: usize) -> core::ops::Range<usize> {
        usize::from(self.first[k])..usize::from(self.first[k + 1])
    }

    /// Event counters of the node: takeovers, handovers and split brains of every group.
    pub fn counters(&self) -> Counters {
        let mut c = self.nodes[0].counters();
        for node in &self.nodes[1..] {
            let g = node.counters();
            c.failovers += g.failovers;
            c.handovers += g.handovers;
            c.split_brains += g.split_brains;
        }
        c.fence_failures = self.fence.failures;
        c.stale_frames += self.stale_frames;
        c
    }

    /// Whether the watchdog may be petted now (every group allows it).
    pub fn petting_allowed(&self) -> bool {
        self.watchdog.0
    }

    /// The node exited leaving nothing that may run in any group.
    pub fn exited_clean(&self) -> bool {
        self.nodes.iter().all(Node::exited_clean)
    }

    /// True while some group may hold resources.
    pub fn holds(&self) -> bool {
        self.nodes.iter().any(Node::holds)
    }

    /// The shortest wait left before some group fences (`fence_delay`), if one waits.
    pub fn fence_delay_left(&self, now: Instant) -> Option<super::time::Duration> {
        self.nodes.iter().filter_map(|n| n.fence_delay_left(now)).min()
    }

    /// After an unclean stop, no group fences or takes anything before the peer is heard
    /// (every group judges it alike: they see the same inputs).
    pub fn waits_for_peer(&self) -> bool {
        self.nodes.iter().any(Node::waits_for_peer)
    }

    /// `takeover --force` vouched that the peer is down, and it has not been heard since.
    pub fn peer_vouched_down(&self) -> bool {
        self.nodes.iter().any(Node::peer_vouched_down)
    }

    /// The node's view of its peer: the first group's, unless another group still hears it
    /// (a peer shutting down says `Leaving` group by group, and is alive until its last one
    /// has left).
    pub fn peer(&self) -> super::PeerStatus {
        let alive = self.nodes.iter().find(|n| n.peer().alive);
        alive.unwrap_or(&self.nodes[0]).peer()
    }

    /// A fence command is under way.
    pub fn fence_running(&self) -> bool {
        self.fence.running
    }

    /// Health as the first group advertises it (a group's restart exhaustion is its own).
    pub fn advertised_health(&self) -> Health {
        self.nodes[0].advertised_health()
    }
}

/// The run a frame belongs to.
fn run_of(repr: &Repr) -> Run {
    (repr.incarnation, repr.session.run)
}

impl core::ops::Deref for Groups {
    type Target = Node;

    /// The first group: what is the node's (peer, links, stall threshold, the unclean wait) is
    /// the same in every group.
    fn deref(&self) -> &Node {
        &self.nodes[0]
    }
}

#[cfg(test)]
mod tests {
    //! Two nodes with two groups each, wired together by a perfect link that can be cut, with
    //! resources that do what they are told at once: the node-wide rules of `Groups`.
    use super::*;
    use crate::core::testkit::{Action, FenceMode, Outcome, Role, ms, params};
    use crate::core::time::Duration;
    use crate::wire::{Authentic, Session, VERSION};

    /// A pair: `g[n]` is node `n`; `up[n]` its machine runs; `cut` no frame passes.
    struct Pair {
        g: [Groups; 2],
        up: [bool; 2],
        cut: bool,
        now: Instant,
        seq: u64,
        /// Resources running on each node, by flat index (a resource action's truth).
        running: [[bool; 2]; 2],
        /// Fence commands each node ran.
        fences: [u32; 2],
        /// Each node's fence under way, and when it resets the peer.
        fence_due: [Option<Instant>; 2],
        /// Stops of each node's resources, by flat index.
        stops: [[u32; 2]; 2],
        deadlines: [Instant; 2],
        /// The last admin answer of each node.
        answers: [Option<Result<(), Refusal>>; 2],
        /// Each node's node-wide notifications, in order.
        node_events: [std::vec::Vec<Event>; 2],
    }

    /// Node `me`'s groups: group 0 homed on node 0, group 1 on node 1, one resource each.
    fn groups_of(me: u8, fence: FenceMode, failback: bool) -> Groups {
        let mut all = std::vec::Vec::new();
        for home in 0..2 {
            let mut p = params(me, fence);
            p.home = home;
            p.auto_failback = failback;
            all.push(p);
        }
        Groups::new(&all, ms(0))
    }

    impl Pair {
        fn new(fence: FenceMode, failback: bool) -> Pair {
            Pair {
                g: [groups_of(0, fence, failback), groups_of(1, fence, failback)],
                up: [true; 2],
                cut: false,
                now: ms(0),
                seq: 0,
                running: [[false; 2]; 2],
                fences: [0; 2],
                fence_due: [None; 2],
                stops: [[0; 2]; 2],
                deadlines: [ms(0); 2],
                answers: [None; 2],
                node_events: [std::vec::Vec::new(), std::vec::Vec::new()],
            }
        }

        /// Drains node `n`, carrying out its outputs (frames to the peer, actions at once).
        fn drain(&mut self, n: usize) {
            let mut results = std::vec::Vec::new();
            loop {
                match self.g[n].poll_output(self.now) {
                    Output::Timeout(t) => {
                        self.deadlines[n] = t;
                        break;
                    }
                    Output::Transmit { payload, .. } if !self.cut && self.up[1 - n] => {
                        self.seq += 1;
                        let repr = Repr {
                            version: VERSION,
                            sender: n as u8,
                            incarnation: 1,
                            seq: self.seq,
                            link: 0,
                            session: Session { run: 1, challenge: 1, echo: 1, flags: 0 },
                            payload,
                            outdate: Default::default(),
                        };
                        let frame = Authentic::new(repr);
                        let now = self.now;
                        self.g[1 - n].handle_input(now, Input::Frame { link: 0, frame: &frame });
                        self.drain(1 - n);
                    }
                    Output::Transmit { .. } => {}
                    Output::ResourceAction { index, action } => {
                        let i = usize::from(index);
                        let outcome = match action {
                            Action::Start => {
                                self.running[n][i] = true;
                                Outcome::Ok
                            }
                            Action::Stop => {
                                self.running[n][i] = false;
                                self.stops[n][i] += 1;
                                Outcome::Ok
                            }
                            Action::Monitor if self.running[n][i] => Outcome::Ok,
                            Action::Monitor => Outcome::NotRunning,
                        };
                        let elapsed = Duration::from_millis(1);
                        results.push(Input::ResourceResult { index, action, outcome, elapsed });
                    }
                    Output::AdminAnswer(answer) => self.answers[n] = Some(answer),
                    Output::Notify { event, group: None, .. } => self.node_events[n].push(event),
                    Output::Fence => {
                        self.fences[n] += 1;
                        self.fence_due[n] = Some(self.now + Duration::from_millis(50));
                    }
                    _ => {}
                }
            }
            for input in results {
                let now = self.now;
                self.g[n].handle_input(now, input);
                self.drain(n);
            }
        }

        /// Runs both nodes until `until`.
        fn run(&mut self, until: Instant) {
            for n in 0..2 {
                self.drain(n);
            }
            for _ in 0..100_000 {
                let fence = self.fence_due.iter().flatten().min().copied();
                let live = (0..2).filter(|&n| self.up[n]).map(|n| self.deadlines[n]).min();
                let next = [fence, live].into_iter().flatten().min().unwrap_or(until);
                if next > until || self.up == [false; 2] {
                    self.now = until;
                    return;
                }
                self.now = next.max(self.now);
                for n in 0..2 {
                    if self.fence_due[n].is_some_and(|t| t <= self.now) {
                        self.fence_due[n] = None;
                        // The fence resets the peer: its machine is off from now on.
                        self.up[1 - n] = false;
                        self.running[1 - n] = [false; 2];
                        let now = self.now;
                        if self.up[n] {
                            self.g[n].handle_input(now, Input::FenceResult { ok: true });
                            self.drain(n);
                        }
                    }
                }
                for n in 0..2 {
                    if self.up[n] && self.deadlines[n] <= self.now {
                        let now = self.now;
                        self.g[n].handle_input(now, Input::Timeout);
                        self.drain(n);
                    }
                }
            }
            panic!(
                "the pair did not settle by {until}: at {} deadlines {:?} up {:?} fence {:?} roles {:?}",
                self.now,
                self.deadlines,
                self.up,
                self.fence_due,
                [0, 1].map(|n| [0, 1].map(|k| self.role(n, k)))
            );
        }

        fn admin(&mut self, n: usize, admin: Admin) -> Result<(), Refusal> {
            let now = self.now;
            self.answers[n] = None;
            self.g[n].handle_input(now, Input::Admin(admin));
            self.drain(n);
            self.answers[n].take().expect("one admin answer")
        }

        fn role(&self, n: usize, k: usize) -> Role {
            self.g[n].nodes()[k].role()
        }
    }

    fn started() -> Pair {
        let mut pair = Pair::new(FenceMode::External, false);
        pair.run(ms(3000));
        pair
    }

    #[test]
    fn each_group_starts_on_its_home() {
        let pair = started();
        assert_eq!((pair.role(0, 0), pair.role(0, 1)), (Role::Active, Role::Standby));
        assert_eq!((pair.role(1, 0), pair.role(1, 1)), (Role::Standby, Role::Active));
        assert_eq!(pair.running, [[true, false], [false, true]]);
        assert_eq!(pair.fences, [0, 0]);
    }

    /// The survivor fences once and takes the dead node's group; its own is never stopped.
    #[test]
    fn a_dead_peer_is_fenced_once_and_its_group_taken_without_touching_ours() {
        let mut pair = started();
        pair.up[1] = false;
        pair.run(ms(10_000));
        assert_eq!(pair.fences, [1, 0]);
        assert_eq!((pair.role(0, 0), pair.role(0, 1)), (Role::Active, Role::Active));
        assert_eq!(pair.running[0], [true, true]);
        assert_eq!(pair.stops[0], [0, 0], "the survivor's own group untouched");
    }

    /// Both groups without an owner need the peer fenced: one fence command serves them.
    #[test]
    fn two_groups_that_need_the_peer_fenced_share_one_fence() {
        let mut pair = started();
        // Both groups on beta, then alpha loses it.
        pair.admin(0, Admin::Move(0)).unwrap();
        pair.run(ms(5000));
        assert_eq!(pair.running, [[false, false], [true, true]]);
        pair.up[1] = false;
        pair.run(ms(12_000));
        assert_eq!(pair.fences, [1, 0], "one fence for two groups");
        assert_eq!((pair.role(0, 0), pair.role(0, 1)), (Role::Active, Role::Active));
    }

    /// A full partition with one group on each node: each needs the other's group, and the
    /// first group's order decides: beta (it does not hold the first group) fences first,
    /// and only one fence runs.
    #[test]
    fn a_partition_of_two_active_nodes_ends_with_one_fence() {
        let mut pair = started();
        pair.cut = true;
        pair.run(ms(12_000));
        assert_eq!(pair.fences, [0, 1], "beta fenced alpha, alpha never fenced");
        assert!(!pair.up[0]);
        assert_eq!((pair.role(1, 0), pair.role(1, 1)), (Role::Active, Role::Active));
        assert_eq!(pair.stops[1], [0, 0]);
    }

    /// `move` hands over one group; the other stays; `online` lets it come back by policy.
    #[test]
    fn move_hands_over_one_group_only() {
        let mut pair = started();
        assert_eq!(pair.admin(0, Admin::Move(0)), Ok(()));
        pair.run(ms(5000));
        assert_eq!(pair.running, [[false, false], [true, true]]);
        assert_eq!(pair.stops[1], [0, 0], "beta's own group untouched");
        assert_eq!(pair.admin(0, Admin::Move(5)), Err(Refusal::NoSuchGroup));
        assert_eq!(pair.admin(0, Admin::TakeoverGroup(0)), Ok(()));
        pair.run(ms(8000));
        assert_eq!(pair.running, [[true, false], [false, true]]);
    }

    /// `move` to a peer that cannot take the group is refused and changes nothing.
    #[test]
    fn move_to_a_peer_in_standby_is_refused() {
        let mut pair = started();
        assert_eq!(pair.admin(1, Admin::Standby), Ok(()));
        pair.run(ms(5000));
        assert_eq!(pair.running, [[true, true], [false, false]]);
        assert_eq!(pair.admin(0, Admin::Move(1)), Err(Refusal::PeerCannotTake));
        pair.run(ms(6000));
        assert_eq!(pair.running[0], [true, true]);
    }

    /// Node-wide standby: every group leaves; online with failback: each comes home.
    #[test]
    fn standby_hands_over_every_group_and_failback_brings_each_home() {
        let mut pair = Pair::new(FenceMode::External, true);
        pair.run(ms(3000));
        assert_eq!(pair.admin(0, Admin::Standby), Ok(()));
        pair.run(ms(6000));
        assert_eq!(pair.running, [[false, false], [true, true]]);
        assert_eq!(pair.admin(0, Admin::Online), Ok(()));
        pair.run(ms(9000));
        assert_eq!(pair.running, [[true, false], [false, true]]);
        assert_eq!(pair.fences, [0, 0]);
    }

    /// One frame per send for every group: the further group's periodic frames add nothing.
    #[test]
    fn the_frame_rate_is_one_groups() {
        let mut one = Groups::new(&[params(0, FenceMode::None)], ms(0));
        let mut two = groups_of(0, FenceMode::None, false);
        let count = |g: &mut Groups| {
            let mut frames = 0;
            let mut now = ms(0);
            // Past the start (each group's state changes send frames of their own).
            while now < ms(4000) {
                loop {
                    match g.poll_output(now) {
                        Output::Transmit { .. } if now >= ms(2000) => frames += 1,
                        Output::Timeout(t) => {
                            now = t.max(now);
                            break;
                        }
                        Output::ResourceAction { index, action } => {
                            let outcome = Outcome::NotRunning;
                            let elapsed = Duration::ZERO;
                            let input = Input::ResourceResult { index, action, outcome, elapsed };
                            g.handle_input(now, input);
                        }
                        _ => {}
                    }
                }
                g.handle_input(now, Input::Timeout);
            }
            frames
        };
        assert_eq!(count(&mut one), count(&mut two));
    }

    /// A shutdown whose first group exits before another has stopped: the peer goes on
    /// hearing the node until the last group has left (else it would find it dead and fence).
    #[test]
    fn frames_go_on_while_a_later_group_still_stops() {
        let mut pair = started();
        // db's stop on beta takes long: its resource answers only when the test says.
        let now = pair.now;
        pair.g[1].handle_input(now, Input::Shutdown);
        // Drain beta by hand, holding back db's stop (flat index 1).
        let mut held = None;
        loop {
            match pair.g[1].poll_output(now) {
                Output::Timeout(t) => {
                    pair.deadlines[1] = t;
                    break;
                }
                Output::ResourceAction { index: 1, action: Action::Stop } => held = Some(()),
                Output::ResourceAction { index, action } => {
                    let elapsed = Duration::from_millis(1);
                    let outcome = Outcome::Ok;
                    let input = Input::ResourceResult { index, action, outcome, elapsed };
                    pair.g[1].handle_input(now, input);
                }
                _ => {}
            }
        }
        assert!(held.is_some(), "db's stop asked for");
        // Alpha hears beta for far longer than deadtime while db stops.
        pair.run(ms(6000));
        assert!(pair.g[0].first().peer().alive || pair.g[0].nodes()[1].peer().alive);
        assert!(pair.g[0].nodes()[1].peer().alive, "alpha's db still hears beta");
        assert_eq!(pair.fences, [0, 0]);
        // The node's view: the peer is alive while a group hears it, told once each way.
        assert!(pair.g[0].peer().alive, "the node's view of a peer that still stops a group");
        let told = |e: Event| pair.node_events[0].iter().filter(|&&x| x == e).count();
        assert_eq!((told(Event::PeerAlive), told(Event::PeerDead)), (1, 0));
    }

    /// An admin command while a shutdown has exited one group and another still stops: one
    /// answer, from the groups that still run (the fuzz target `groups_inputs` found it).
    #[test]
    fn admin_during_a_shutdown_is_answered_once() {
        let mut pair = started();
        let now = pair.now;
        pair.g[1].handle_input(now, Input::Shutdown);
        loop {
            // db's stop is never answered: beta's db stays stopping.
            if let Output::Timeout(_) = pair.g[1].poll_output(now) {
                break;
            }
        }
        assert_eq!(pair.role(1, 0), Role::Exited);
        for admin in [Admin::Standby, Admin::Move(0), Admin::Online] {
            pair.g[1].handle_input(now, Input::Admin(admin));
            let mut answers = 0;
            loop {
                match pair.g[1].poll_output(now) {
                    Output::AdminAnswer(_) => answers += 1,
                    Output::Timeout(_) => break,
                    _ => {}
                }
            }
            assert_eq!(answers, 1, "{admin:?}");
        }
    }
}
