//! Property checks of the core against arbitrary input sequences, for the fuzz target
//! `core_inputs` (tests/fuzz/, `cfg(fuzzing)`), the replay of its corpus in the test build
//! (`tests/pure/fuzz_corpus.rs`, `sim` feature) and the random-sequence unit test below; never part
//! of the shipped binary. It plays the event loop: feeds a `Node` the inputs the bytes say,
//! at a time that only moves forward, drains `poll_output` after each as the call protocol
//! asks, and answers its actions only when the bytes say so. It checks what the core promises
//! its caller, beside the asserts the core runs itself (`Node::assert_invariants`, run here
//! after every drain too):
//! - no panic, whatever the inputs (peer frames with any fields, stale or repeated results,
//!   admin commands and reloads at any moment);
//! - an action names a resource of the group in force (the new one after `ApplyResources`),
//!   one action and one fence at a time, and `ApplyResources` only after a reload and with no
//!   action in flight;
//! - frames go out on configured links only; `Leaving` and `Release` only from a node that
//!   holds nothing;
//! - one `AdminAnswer` per admin command and none otherwise; the watchdog is allowed or
//!   forbidden only when that changes; `Exit` once, and `Exited` is final;
//! - the role's start is never later than the time fed, which only moves forward;
//! - a shutdown, with every action then succeeding, ends in `Exited`, except on a node that
//!   holds resources after a failed stop under `fence watchdog`, which stays and stops petting.
//!
//! The bytes: a two-byte header, then steps of four bytes `[dt, kind, a, b]`.
//! - `header[0]`: bit 0 this node's index; bits 1-2 the fence (0 none, 1 watchdog, else
//!   command); bits 3-4 the number of resources (0 to 3); bit 5 one local restart allowed
//!   (else none); bit 6 `auto_failback`; bit 7 boot into standby.
//! - `header[1]`: bits 0-1 the number of links (0 is 1; the third is a slow serial link); bit 2
//!   an armed watchdog (2 s); bits 3-4 the peer's stored watchdog timeout (none, 0, 1.5 s,
//!   3 s); bit 5 start self-fencing, and after an unclean stop (`start_unclean`); bit 6 ping
//!   nodes configured; bit 7 node 1 is home. `fence_delay` is deadtime.
//! - `dt` moves time on before the step: `dt` ms below 128, else `(dt - 128) x 50` ms.
//! - `kind & 15` (the high bits are the frame's, see `frame`): 0 a peer frame and 9 an
//!   unfresh one; 1 and 11 to 15 a timeout at the last deadline given (at most 60 s on); 2
//!   the answer to the action in flight (`a % 3`: ok, not
//!   running, failed), or a stale one when none is; 3 any resource result (index `b % 5`,
//!   action `a % 3`, outcome `a / 4 % 3`); 4 a fence result (`a` odd: ok); 5 health (`a` bits
//!   0-5); 6 an admin command (`a % 8`, cleanup of resource `b % 5`); 7 shutdown; 8 a handshake;
//!   10 a reload (see `plan`).

use super::node::Node;
use super::resources::ResourcePlan;
use super::role::Role;
use super::time::{Duration, Instant};
use super::{
    Action, Admin, FLAG_HOLDING, FenceMode, Input, LinkParams, LinkSel, Outcome, Output, Params,
    RestartLimit,
};
use crate::wire::{
    Authentic, GroupState, Groups, Health, Intent, Kind, Payload, Repr, Session, VERSION,
};

/// Answers to the actions still in flight after the final shutdown, at most.
const SHUTDOWN_STEPS_MAX: usize = 64;

/// Runs the sequence `data` describes against a new node and checks the core's promises after
/// every step (see the module docs). True when the node ran the group (`Active`) at some point.
pub fn inputs(data: &[u8]) -> bool {
    let Some((header, steps)) = data.split_first_chunk::<2>() else {
        return false;
    };
    let mut run = Run::new(*header);
    for step in steps.chunks_exact(4) {
        run.step(step[0], step[1], step[2], step[3]);
    }
    run.shut_down();
    run.ran_the_group
}

/// The node under test and what the checks remember of it, as the event loop would.
struct Run {
    node: Node,
    now: Instant,
    /// The last `Output::Timeout`.
    deadline: Instant,
    seq: u64,
    links: usize,
    /// Resources in force, and in the last reload not yet applied.
    group: usize,
    planned: Option<usize>,
    /// The resource action and the fence issued and not yet answered.
    in_flight: Option<(u8, Action)>,
    promises: Promises,
    ran_the_group: bool,
}

impl Run {
    fn new(header: [u8; 2]) -> Run {
        let params = params(header);
        let (links, group) = (params.links.len(), params.resources);
        let promises = Promises::new(params.fence, params.start_self_fencing);
        let node = Node::new(params, Instant::ZERO);
        let mut run = Run {
            node,
            now: Instant::ZERO,
            deadline: Instant::ZERO,
            seq: 0,
            links,
            group: usize::from(group),
            planned: None,
            in_flight: None,
            promises,
            ran_the_group: false,
        };
        run.drain(false);
        run
    }

    fn step(&mut self, dt: u8, kind: u8, a: u8, b: u8) {
        // The loop returns on `Output::Exit`: nothing more is fed.
        if self.promises.exited {
            return;
        }
        self.now += step_time(dt);
        match kind & 15 {
            0 => self.feed_frame(kind, a, b, true),
            1 | 11.. => {
                self.now = timeout_time(self.now, self.deadline);
                self.feed(Input::Timeout);
            }
            2 => {
                let outcome = [Outcome::Ok, Outcome::NotRunning, Outcome::Failed(1)];
                let (index, action) = self.in_flight.unwrap_or((b % 4, action_of(a >> 2)));
                self.result(index, action, outcome[usize::from(a % 3)]);
            }
            3 => self.result(b % 5, action_of(a), outcome_of(a / 4)),
            4 => {
                self.promises.fence_running = false;
                self.feed(Input::FenceResult { ok: a & 1 == 1 });
            }
            5 => self.feed(Input::Health(Health(u16::from(a & 0x3f)))),
            6 => {
                let admin = admin_of(a, b, 8, 5);
                self.node.handle_input(self.now, Input::Admin(admin));
                self.drain(true);
            }
            7 => self.feed(Input::Shutdown),
            8 => self.feed(Input::Handshake),
            9 => self.feed_frame(kind, a, b, false),
            10 => {
                let plan = plan(self.group, a, b);
                self.planned = Some(plan.len());
                self.feed(Input::Resources(&plan));
            }
        }
    }

    fn feed(&mut self, input: Input<'_>) {
        self.node.handle_input(self.now, input);
        self.drain(false);
    }

    fn result(&mut self, index: u8, action: Action, outcome: Outcome) {
        if self.in_flight == Some((index, action)) {
            self.in_flight = None;
        }
        let elapsed = Duration::ZERO;
        self.feed(Input::ResourceResult { index, action, outcome, elapsed });
    }

    fn feed_frame(&mut self, kind: u8, a: u8, b: u8, fresh: bool) {
        self.seq += 1;
        let repr = frame(self.node.params.peer, self.seq, kind, a, b);
        if fresh {
            let link = repr.link;
            self.feed(Input::Frame { link, frame: &Authentic::new(repr) });
        } else {
            self.feed(Input::Unfresh(repr));
        }
    }

    /// Drains the outputs of one input, checking each (see the module docs).
    fn drain(&mut self, admin: bool) {
        let mut answers = 0;
        loop {
            match self.node.poll_output(self.now) {
                Output::Timeout(deadline) => {
                    self.deadline = deadline;
                    break;
                }
                Output::ResourceAction { index, action } => {
                    assert!(
                        self.in_flight.is_none(),
                        "{action:?} {index} beside {:?}",
                        self.in_flight
                    );
                    assert!(usize::from(index) < self.group, "resource {index} of {}", self.group);
                    self.in_flight = Some((index, action));
                }
                Output::ApplyResources { .. } => {
                    assert!(
                        self.in_flight.is_none(),
                        "switched with {:?} in flight",
                        self.in_flight
                    );
                    self.group = self.planned.take().expect("ApplyResources without a reload");
                }
                ref o @ (Output::Fence | Output::Watchdog { .. }) => {
                    self.promises.check(o);
                }
                Output::Transmit { link, payload } => {
                    let configured = |l: u8| usize::from(l) < self.links;
                    assert!(
                        matches!(link, LinkSel::All)
                            || matches!(link, LinkSel::One(l) if configured(l))
                    );
                    let leaves = matches!(payload.kind, Kind::Leaving | Kind::Release);
                    assert!(!leaves || payload.flags & FLAG_HOLDING == 0, "{payload:?}");
                }
                Output::AdminAnswer(_) => answers += 1,
                Output::Exit => {
                    self.promises.check(&Output::Exit);
                    assert_eq!(self.node.role(), Role::Exited);
                }
                Output::Notify { .. } => {}
            }
        }
        assert_eq!(answers, usize::from(admin), "one answer per admin command");
        assert_eq!(self.promises.petting, self.node.petting_allowed());
        let role = self.node.role();
        assert!(!self.promises.exited || role == Role::Exited, "{role:?} after Exited");
        assert!(self.node.role_since() <= self.now, "a role from the future");
        self.node.assert_invariants();
        self.ran_the_group |= role == Role::Active;
    }

    /// A shutdown, then every action answered as done: the node exits, or it stays holding
    /// after a failed stop under fence watchdog, with the watchdog unpetted.
    fn shut_down(&mut self) {
        self.now += Duration::from_millis(1);
        self.feed(Input::Shutdown);
        for _ in 0..SHUTDOWN_STEPS_MAX {
            let Some((index, action)) = self.in_flight else { break };
            self.now += Duration::from_millis(1);
            self.result(index, action, Outcome::Ok);
        }
        let role = self.node.role();
        let self_fenced = role == Role::Failed { holding: true }
            && self.promises.fence == FenceMode::Watchdog
            && !self.promises.petting;
        assert!(self.promises.exited || self_fenced, "a shutdown left the node {role:?}");
    }
}

/// What both runs check of the node as a whole: one fence at a time, and only under `fence
/// CMD`; the watchdog told only what changed, never a self-fence that pets; `Exit` once.
struct Promises {
    fence: FenceMode,
    fence_running: bool,
    petting: bool,
    self_fence: bool,
    exited: bool,
}

impl Promises {
    fn new(fence: FenceMode, start_self_fencing: bool) -> Promises {
        let petting = !start_self_fencing;
        Promises { fence, fence_running: false, petting, self_fence: !petting, exited: false }
    }

    /// Checks `output` when it is one of the node's; false when it is not (the run checks it).
    fn check(&mut self, output: &Output) -> bool {
        match *output {
            Output::Fence => {
                assert!(!self.fence_running, "a second fence while one runs");
                assert_eq!(self.fence, FenceMode::External, "a fence command without one");
                self.fence_running = true;
            }
            Output::Watchdog { allow_petting, self_fence } => {
                let told = (allow_petting, self_fence) != (self.petting, self.self_fence);
                assert!(told, "the watchdog told what it knows");
                assert!(!self_fence || !allow_petting, "a self-fence that pets");
                (self.petting, self.self_fence) = (allow_petting, self_fence);
            }
            Output::Exit => {
                assert!(!self.exited, "a second Exit");
                self.exited = true;
            }
            _ => return false,
        }
        true
    }
}

/// The admin command of step kind 6: `a % choices` of the table (8 for one group; 10 with
/// `move` and `takeover GROUP` of group `b % 5`), cleanup of resource `b % resources`.
fn admin_of(a: u8, b: u8, choices: u8, resources: u8) -> Admin {
    [
        Admin::Standby,
        Admin::Online,
        Admin::Takeover,
        Admin::MaintenanceOn,
        Admin::MaintenanceOff,
        Admin::Cleanup(None),
        Admin::Cleanup(Some(b % resources)),
        Admin::TakeoverForce,
        Admin::Move(b % 5),
        Admin::TakeoverGroup(b % 5),
    ][usize::from(a % choices)]
}

fn params(header: [u8; 2]) -> Params {
    let [node, more] = header;
    let ms = Duration::from_millis;
    let me = node & 1;
    let link = |send: u64| LinkParams {
        send_interval: ms(send),
        warn_after: ms(300),
        dead_after: ms(500),
    };
    let links = [link(100), link(100), link(1000)];
    let links_used = usize::from(more & 3).clamp(1, 3);
    Params {
        me,
        peer: 1 - me,
        home: more >> 7,
        keepalive: ms(100),
        warntime: ms(300),
        deadtime: ms(500),
        initdead: ms(1000),
        auto_failback: node & 0x40 != 0,
        fence: [FenceMode::None, FenceMode::Watchdog, FenceMode::External, FenceMode::External]
            [usize::from(node >> 1 & 3)],
        fence_delay: ms(500),
        start_unclean: more & 0x20 != 0,
        watchdog_timeout: (more & 4 != 0).then_some(ms(2000)),
        peer_watchdog_timeout_ms: [None, Some(0), Some(1500), Some(3000)]
            [usize::from(more >> 3 & 3)],
        resources: node >> 3 & 3,
        drbd: false,
        monitor_interval: ms(1000),
        restart_limit: RestartLimit { count: u32::from(node >> 5 & 1), window: ms(60_000) },
        // Cannot fail: at most 3 links.
        links: heapless::Vec::from_slice(&links[..links_used]).unwrap_or_default(),
        ping_configured: more & 0x40 != 0,
        start_standby: node & 0x80 != 0,
        start_self_fencing: more & 0x20 != 0,
        config_digest: [0; 8],
        #[cfg(feature = "sim")]
        sim_mutation: super::Mutation::None,
    }
}

/// A frame of `sender`'s peer (or, with `kind` bit 4, of ourselves: ignored). `a`: bits 0-1
/// the kind (heartbeat, release, request, leaving), bits 2-4 the state (standby, starting,
/// active, stopping, failed, maintenance), bits 5-7 the flags holding, taking over, peer
/// alive. `b`: bits 0-2 the epoch, bit 3 unhealthy (a check fails), bits 4-5 our link index
/// (3 may not exist), bit 6 a second run of the peer, bit 7 its intent is takeover. `kind`
/// bit 5: another configuration digest; bit 6: no armed watchdog; bit 7: a second
/// incarnation.
fn frame(peer: u8, seq: u64, kind: u8, a: u8, b: u8) -> Repr {
    let payload = Payload {
        kind: [Kind::Heartbeat, Kind::Release, Kind::Request, Kind::Leaving][usize::from(a & 3)],
        state: STATES[usize::from(a >> 2 & 7) % STATES.len()],
        health: if b & 8 != 0 { Health(Health::CHECK) } else { Health::OK },
        intent: if b & 0x80 != 0 { Intent::Takeover } else { Intent::None },
        // Holding, taking over, peer alive: bits 0 to 2 of the wire's flags.
        flags: a >> 5,
        epoch: u32::from(b & 7),
        watchdog_timeout_ms: if kind & 0x40 != 0 { 0 } else { 2000 },
        config_digest: [u8::from(kind & 0x20 != 0); 8],
        groups: Groups::ONE,
    };
    let sender = if kind & 0x10 != 0 { 1 - peer } else { peer };
    let session = Session { run: 1 + u32::from(b >> 6 & 1), challenge: 1, echo: 1, flags: 0 };
    let incarnation = 1 + u64::from(kind >> 7);
    let link = b >> 4 & 3;
    let outdate = Default::default();
    Repr { version: VERSION, sender, incarnation, seq, link, session, payload, outdate }
}

/// A reload of a group of `group` resources: old resource `i` is kept unless bit `i` of `a`
/// is set; bit 4 reverses the kept ones; bit 5 adds a new resource at `b % (kept + 1)`; bit 6
/// a second. At most 3 resources.
fn plan(group: usize, a: u8, b: u8) -> ResourcePlan {
    let old: heapless::Vec<u8, 16> = (0..group as u8).collect();
    let mut new: heapless::Vec<u8, 16> = old.iter().copied().filter(|i| a >> i & 1 == 0).collect();
    if a & 0x10 != 0 {
        new.reverse();
    }
    for (bit, name) in [(0x20, 100), (0x40, 101)] {
        if a & bit != 0 {
            let at = usize::from(b) % (new.len() + 1);
            // Cannot fail: at most 3 + 2 names in 16.
            let _ = new.insert(at, name);
        }
    }
    new.truncate(3);
    ResourcePlan::new(&old, &new)
}

fn action_of(x: u8) -> Action {
    [Action::Start, Action::Stop, Action::Monitor][usize::from(x % 3)]
}

fn outcome_of(x: u8) -> Outcome {
    [Outcome::Ok, Outcome::NotRunning, Outcome::Failed(1)][usize::from(x % 3)]
}

/// Runs the sequence `data` describes against a new node with several groups (`Groups`) and
/// checks what `Groups` promises its caller, per group and for the node (see `groups.rs`):
/// - at most one resource action in flight per group, each naming a resource of its group;
/// - one fence command at a time, and only under `fence CMD`;
/// - frames describe every group; `Leaving` and `Release` only for a group not held;
/// - one `AdminAnswer` per admin command (`move` and `takeover GROUP` of any group index,
///   existing or not, included); the watchdog told only when that changes; `Exit` once, when
///   every group has exited;
/// - each group's `Node` keeps its invariants; a shutdown with every action then succeeding
///   ends in `Exit` (or a group held after a failed stop under `fence watchdog`).
///
/// The bytes: a three-byte header, then the steps of `inputs`. `header[0..2]` as in `inputs`
/// (every group gets those params); `header[2]`: bits 0-1 the number of groups less one (1
/// to 4), bits 2-5 each group's home (bit 2 + k set: node 1), bit 6 two resources per group
/// (else one). Step kinds as in `inputs`, except: 2 answers the action in flight of group
/// `b % groups` (a stale one when it has none); 6 also has `move` and `takeover GROUP` of
/// group `b % 5`; 10 (a reload) is a timeout with more than one group; a frame's further
/// groups say what the first says with the state moved on by the group's index.
pub fn groups_inputs(data: &[u8]) -> bool {
    let Some((header, steps)) = data.split_first_chunk::<3>() else {
        return false;
    };
    let mut run = GroupsRun::new(*header);
    for step in steps.chunks_exact(4) {
        run.step(step[0], step[1], step[2], step[3]);
    }
    run.shut_down();
    run.ran_a_group
}

/// `Run` for `Groups`.
struct GroupsRun {
    groups: super::Groups,
    count: usize,
    per_group: u8,
    now: Instant,
    deadline: Instant,
    seq: u64,
    peer: u8,
    in_flight: [Option<(u8, Action)>; 4],
    promises: Promises,
    ran_a_group: bool,
}

impl GroupsRun {
    fn new(header: [u8; 3]) -> GroupsRun {
        let base = params([header[0], header[1]]);
        let count = usize::from(header[2] & 3) + 1;
        let per_group = 1 + (header[2] >> 6 & 1);
        let mut all: heapless::Vec<Params, 4> = heapless::Vec::new();
        for k in 0..count {
            let mut p = base.clone();
            p.home = header[2] >> (2 + k) & 1;
            p.resources = per_group;
            // Cannot fail: at most 4 groups.
            let _ = all.push(p);
        }
        let promises = Promises::new(base.fence, base.start_self_fencing);
        let mut run = GroupsRun {
            groups: super::Groups::new(&all, Instant::ZERO),
            count,
            per_group,
            now: Instant::ZERO,
            deadline: Instant::ZERO,
            seq: 0,
            peer: base.peer,
            in_flight: [None; 4],
            promises,
            ran_a_group: false,
        };
        run.drain(false);
        run
    }

    fn step(&mut self, dt: u8, kind: u8, a: u8, b: u8) {
        if self.promises.exited {
            return;
        }
        self.now += step_time(dt);
        match kind & 15 {
            0 | 9 => {
                self.seq += 1;
                let mut repr = frame(self.peer, self.seq, kind, a, b);
                let n = self.count as u8;
                let mut groups = Groups::new(n).unwrap_or(Groups::ONE);
                for k in 1..n {
                    let mut p = repr.payload;
                    p.state = STATES[(p.state as usize + usize::from(k)) % STATES.len()];
                    groups.set(k, crate::wire::GroupPart::of(&p));
                }
                repr.payload.groups = groups;
                if kind & 15 == 0 {
                    let link = repr.link;
                    self.feed(Input::Frame { link, frame: &Authentic::new(repr) });
                } else {
                    self.feed(Input::Unfresh(repr));
                }
            }
            2 => {
                let outcome = [Outcome::Ok, Outcome::NotRunning, Outcome::Failed(1)];
                let k = usize::from(b) % self.count;
                let (index, action) = self.in_flight[k].unwrap_or((b % 9, action_of(a >> 2)));
                self.result(index, action, outcome[usize::from(a % 3)]);
            }
            3 => self.result(b % 9, action_of(a), outcome_of(a / 4)),
            4 => {
                self.promises.fence_running = false;
                self.feed(Input::FenceResult { ok: a & 1 == 1 });
            }
            5 => self.feed(Input::Health(Health(u16::from(a & 0x3f)))),
            6 => {
                let admin = admin_of(a, b, 10, 9);
                self.groups.handle_input(self.now, Input::Admin(admin));
                self.drain(true);
            }
            7 => self.feed(Input::Shutdown),
            8 => self.feed(Input::Handshake),
            1 | 10.. => {
                self.now = timeout_time(self.now, self.deadline);
                self.feed(Input::Timeout);
            }
        }
    }

    fn feed(&mut self, input: Input<'_>) {
        self.groups.handle_input(self.now, input);
        self.drain(false);
    }

    fn result(&mut self, index: u8, action: Action, outcome: Outcome) {
        for slot in &mut self.in_flight {
            if *slot == Some((index, action)) {
                *slot = None;
            }
        }
        let elapsed = Duration::ZERO;
        self.feed(Input::ResourceResult { index, action, outcome, elapsed });
    }

    fn drain(&mut self, admin: bool) {
        let mut answers = 0;
        loop {
            match self.groups.poll_output(self.now) {
                Output::Timeout(deadline) => {
                    self.deadline = deadline;
                    break;
                }
                Output::ResourceAction { index, action } => {
                    let k = usize::from(index / self.per_group);
                    assert!(k < self.count, "resource {index} of no group");
                    assert_eq!(self.groups.resource_range(k), {
                        let first = k * usize::from(self.per_group);
                        first..first + usize::from(self.per_group)
                    });
                    assert!(
                        self.in_flight[k].is_none(),
                        "{action:?} {index} beside {:?} in group {k}",
                        self.in_flight[k]
                    );
                    self.in_flight[k] = Some((index, action));
                }
                Output::ApplyResources { group } => {
                    assert_eq!((group, self.count), (0, 1), "a switch without a reload");
                }
                ref o @ (Output::Fence | Output::Watchdog { .. }) => {
                    self.promises.check(o);
                }
                Output::Transmit { payload, .. } => {
                    assert_eq!(usize::from(payload.groups.count()), self.count);
                    for k in 0..self.count as u8 {
                        let p = payload.group(k);
                        let leaves = matches!(p.kind, Kind::Leaving | Kind::Release);
                        assert!(!leaves || p.flags & FLAG_HOLDING == 0, "group {k}: {p:?}");
                    }
                }
                Output::AdminAnswer(_) => answers += 1,
                Output::Exit => {
                    self.promises.check(&Output::Exit);
                    let nodes = self.groups.nodes();
                    assert!(nodes.iter().all(|n| n.role() == Role::Exited), "Exit early");
                }
                Output::Notify { event, group, .. } => {
                    assert_eq!(event.node_wide(), group.is_none(), "{event:?} {group:?}");
                    assert!(group.is_none_or(|g| usize::from(g) < self.count));
                }
            }
        }
        assert_eq!(answers, usize::from(admin), "one answer per admin command");
        assert_eq!(self.promises.petting, self.groups.petting_allowed());
        for node in self.groups.nodes() {
            node.assert_invariants();
            assert!(node.role_since() <= self.now, "a role from the future");
            self.ran_a_group |= node.role() == Role::Active;
        }
    }

    fn shut_down(&mut self) {
        self.now += Duration::from_millis(1);
        self.feed(Input::Shutdown);
        for _ in 0..SHUTDOWN_STEPS_MAX {
            let Some((index, action)) = self.in_flight.iter().flatten().next().copied() else {
                break;
            };
            self.now += Duration::from_millis(1);
            self.result(index, action, Outcome::Ok);
        }
        let self_fenced = self.promises.fence == FenceMode::Watchdog
            && !self.promises.petting
            && self.groups.nodes().iter().any(|n| n.role() == Role::Failed { holding: true });
        assert!(self.promises.exited || self_fenced, "a shutdown left the groups running");
    }
}

/// How far a step moves time on: `dt` ms below 128, else `(dt - 128) x 50` ms.
fn step_time(dt: u8) -> Duration {
    Duration::from_millis(if dt < 0x80 { u64::from(dt) } else { u64::from(dt - 0x80) * 50 })
}

/// When a timeout step comes: at the last deadline given, at most 60 s on, never back.
fn timeout_time(now: Instant, deadline: Instant) -> Instant {
    now.max(deadline.min(now + Duration::from_secs(60)))
}

/// Group states by code.
const STATES: [GroupState; 6] = [
    GroupState::Standby,
    GroupState::Starting,
    GroupState::Active,
    GroupState::Stopping,
    GroupState::Failed,
    GroupState::Maintenance,
];

#[cfg(test)]
mod tests {
    use super::inputs;

    /// Random input sequences (the fuzz target's input, from a fixed xorshift stream) keep
    /// every promise the fuzz target checks: 300 sequences of up to 300 steps each.
    #[test]
    fn random_input_sequences_keep_the_core_invariants() {
        let mut seed = 0x1234_5678_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut ran = 0;
        for _ in 0..300 {
            let steps = 4 + next() % 300;
            let mut data = std::vec::Vec::new();
            data.extend_from_slice(&next().to_le_bytes()[..2]);
            for _ in 0..steps {
                // Mostly short steps, as the event loop wakes; mostly frames, timeouts and
                // answers, a shutdown rarely (it ends the sequence).
                let r = next().to_le_bytes();
                let dt = if r[0] & 3 == 0 { r[1] } else { r[1] & 0x7f };
                const KINDS: [u8; 16] = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 4, 5, 6, 8, 9];
                let kind = match r[5] {
                    0 => 7,
                    1..4 => 10,
                    _ => KINDS[usize::from(r[2] & 15)],
                };
                data.extend_from_slice(&[dt, kind | (r[2] & 0xf0), r[3], r[4]]);
            }
            ran += usize::from(inputs(&data));
        }
        assert!(ran > 30, "only {ran} of 300 sequences ran the group: the checks see little");
    }

    /// The same for several groups (`groups_inputs`): 300 sequences.
    #[test]
    fn random_input_sequences_keep_the_groups_promises() {
        let mut seed = 0x9e37_79b9_u64
            ^ std::env::var("GROUPS_FUZZ_SEED")
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        let sequences =
            std::env::var("GROUPS_FUZZ_SEQS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut ran = 0;
        for _ in 0..sequences {
            let steps = 4 + next() % 300;
            let mut data = std::vec::Vec::new();
            data.extend_from_slice(&next().to_le_bytes()[..3]);
            for _ in 0..steps {
                let r = next().to_le_bytes();
                let dt = if r[0] & 3 == 0 { r[1] } else { r[1] & 0x7f };
                const KINDS: [u8; 16] = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 3, 4, 5, 6, 8];
                let kind = if r[5] == 0 { 7 } else { KINDS[usize::from(r[2] & 15)] };
                data.extend_from_slice(&[dt, kind | (r[2] & 0xf0), r[3], r[4]]);
            }
            ran += usize::from(super::groups_inputs(&data));
        }
        assert!(ran > 30, "only {ran} of 300 sequences ran a group: the checks see little");
    }
}
