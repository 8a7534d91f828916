//! The deterministic simulator's world: two `hapair::core::Node`s, three heartbeat links,
//! resources, fencing, watchdogs, a virtual clock, and the checks of SPEC §3 (S1, S2, L1, L2,
//! and "no action contradicts the state") evaluated at every step. One u64 seed fixes
//! everything. It is test code: it allocates and formats freely, but only formats the trace
//! when asked to. It does not decide anything for the cores.
#![allow(dead_code)]

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fmt::Write as _;

use hapair::core::time::{Duration, Instant};
use hapair::core::{
    Action, Admin, Event, FenceMode, Input, LinkParams, LinkSel, Node, Outcome, Output, Params,
    Reason, RestartLimit, Role,
};
use hapair::wire::{
    Health, Key, Outgoing, Payload, Receiver, Repr, RxError, Sender, Session, VERSION,
};

/// The pair's authkey in the simulated world, and the node names its frame key binds.
const SECRET: &[u8] = b"the simulated pair's authkey";
const NAMES: [&str; 2] = ["alpha", "beta"];
const UDPPORT: u16 = 694;
/// How many of each node's sent frames the recorder keeps for replays.
const RECORDED_MAX: usize = 400;

/// splitmix64: tiny, fast and good enough to drive schedules.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[(self.next_u64() % items.len() as u64) as usize]
    }
}

pub const LINK_NAMES: [&str; 3] = ["serial", "crossover", "lan"];

/// The shape of one simulated run.
#[derive(Clone, Debug)]
pub struct Config {
    pub seed: u64,
    pub duration: Duration,
    pub keepalive: Duration,
    pub fence: FenceMode,
    pub watchdog: Option<Duration>,
    pub auto_failback: bool,
    pub resources: u8,
    pub restart_limit: RestartLimit,
    /// Random faults on (false: only the script happens).
    pub chaos: bool,
    /// One-way delay is `delay_ms` plus up to `jitter_ms`.
    pub delay_ms: u64,
    pub jitter_ms: u64,
    /// Resource action durations (min, max) and fence duration (min, max).
    pub action_ms: (u64, u64),
    pub fence_ms: (u64, u64),
    /// The second node boots this much later (`Duration::MAX`: never).
    pub second_boot: Duration,
    /// Test-only knob: take over without fencing.
    pub skip_fence: bool,
    /// How long a start-up probe takes (`None`: like any action).
    pub probe_ms: Option<u64>,
    /// The adversary of SPEC §7.2 acts: it replays recorded frames, another pair with the
    /// same authkey talks on the LAN, and statedirs are lost or restored at reboots.
    pub adversary: bool,
    /// Test-only knob: the other pair signs with this pair's frame key (a key not bound to
    /// the pair's identity, as before frame version 2).
    pub foreign_same_key: bool,
    /// Test-only knob: receivers take every frame as fresh (no freshness handshake).
    pub skip_freshness: bool,
    /// Under fence watchdog, this node runs without an armed watchdog (a broken peer, or one
    /// of an older version): it advertises timeout 0 and no watchdog ever resets it.
    pub unarmed: Option<usize>,
}

impl Config {
    /// A quiet, exact world for scenario tests.
    pub fn scripted(fence: FenceMode) -> Config {
        Config {
            seed: 0,
            duration: Duration::from_secs(30),
            keepalive: Duration::from_millis(100),
            fence,
            watchdog: (fence == FenceMode::Watchdog).then(|| Duration::from_secs(2)),
            auto_failback: false,
            resources: 2,
            restart_limit: RestartLimit { count: 2, window: Duration::from_secs(60) },
            chaos: false,
            delay_ms: 5,
            jitter_ms: 0,
            action_ms: (100, 100),
            fence_ms: (500, 500),
            second_boot: Duration::ZERO,
            skip_fence: false,
            // Instant probes keep the scenario timelines about the failover decisions.
            probe_ms: Some(0),
            adversary: false,
            foreign_same_key: false,
            skip_freshness: false,
            unarmed: None,
        }
    }

    /// A hostile world drawn from `seed`.
    pub fn random(seed: u64) -> Config {
        let mut rng = Rng::new(seed.wrapping_mul(31).wrapping_add(7));
        let fence = rng.pick(&[FenceMode::External, FenceMode::Watchdog, FenceMode::None]);
        let keepalive = Duration::from_millis(rng.pick(&[200, 300, 500]));
        let watchdog = if fence == FenceMode::Watchdog || rng.chance(30) {
            Some(Duration::from_millis(rng.range(1000, 4000)))
        } else {
            None
        };
        let mut cfg = Config {
            seed,
            duration: Duration::from_secs(60),
            keepalive,
            fence,
            watchdog,
            auto_failback: rng.chance(50),
            resources: rng.range(1, 4) as u8,
            restart_limit: RestartLimit {
                count: rng.range(0, 3) as u32,
                window: Duration::from_secs(rng.range(5, 60)),
            },
            chaos: true,
            delay_ms: rng.range(1, 20),
            jitter_ms: rng.range(0, keepalive.total_millis() / 4),
            action_ms: (rng.range(5, 50), rng.range(60, 400)),
            fence_ms: (rng.range(50, 300), rng.range(300, 1500)),
            second_boot: Duration::from_millis(rng.range(0, 15_000)),
            skip_fence: false,
            probe_ms: None,
            adversary: true,
            foreign_same_key: false,
            skip_freshness: false,
            unarmed: None,
        };
        // Drawn last, so that every other choice of a seed stays what it was.
        if fence == FenceMode::Watchdog && rng.chance(25) {
            cfg.unarmed = Some(rng.range(0, 1) as usize);
        }
        cfg
    }

    /// Node `n`'s armed watchdog timeout, if any.
    pub fn watchdog_of(&self, n: usize) -> Option<Duration> {
        if self.unarmed == Some(n) { None } else { self.watchdog }
    }

    pub fn deadtime(&self) -> Duration {
        self.keepalive.saturating_mul(5)
    }

    fn link_params(&self, link: usize) -> LinkParams {
        // The serial cable is slower than the Ethernet links.
        let send_interval =
            if link == 0 { self.keepalive.saturating_mul(2) } else { self.keepalive };
        LinkParams {
            send_interval,
            warn_after: self.keepalive.saturating_mul(3).max(send_interval.saturating_mul(2)),
            dead_after: self.deadtime(),
        }
    }

    pub fn max_link_interval(&self) -> Duration {
        self.keepalive.saturating_mul(2)
    }

    pub fn max_delay(&self) -> Duration {
        Duration::from_millis(self.delay_ms + self.jitter_ms)
    }

    /// The longest the whole group takes to stop (or start).
    pub fn group_action_time(&self) -> Duration {
        Duration::from_millis(self.action_ms.1 * u64::from(self.resources))
    }

    pub fn params(&self, me: u8) -> Params {
        let mut links = heapless::Vec::new();
        for i in 0..3 {
            let _ = links.push(self.link_params(i));
        }
        Params {
            me,
            peer: 1 - me,
            home: 0,
            keepalive: self.keepalive,
            warntime: self.keepalive.saturating_mul(3),
            deadtime: self.deadtime(),
            initdead: self.deadtime().saturating_mul(2),
            auto_failback: self.auto_failback,
            fence: self.fence,
            watchdog_timeout: self.watchdog_of(usize::from(me)),
            peer_watchdog_timeout_ms: None,
            resources: self.resources,
            monitor_interval: Duration::from_secs(1),
            restart_limit: self.restart_limit,
            links,
            ping_configured: true,
            start_standby: false,
            config_digest: [7; 8],
            sim_skip_fence_wait: self.skip_fence,
        }
    }
}

/// A scripted happening (scenario tests) or a random one (chaos).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Happening {
    /// Boot a node that is down.
    Boot(usize),
    /// Power loss: resources gone at once, back after `Duration`.
    Crash(usize, Duration),
    /// The daemon stops processing for `Duration` (its resources stay up).
    Hang(usize, Duration),
    /// SIGTERM.
    Shutdown(usize),
    /// SIGKILL of the daemon, started again at once: what it ran keeps running.
    Restart(usize),
    Admin(usize, Admin),
    Health(usize, Health),
    /// Cut (`true`) or heal the direction `from` → other on a link.
    Cut {
        link: usize,
        from: usize,
        cut: bool,
    },
    /// Set a link's loss percentage.
    Loss {
        link: usize,
        percent: u64,
    },
    /// A running resource breaks (its monitor will fail).
    Break(usize, u8),
    /// Make the next start of every resource on a node fail (`true`) or succeed.
    StartsFail(usize, bool),
    /// Make the next stop on a node fail.
    StopFails(usize),
    /// Make fences fail (`true`) or succeed.
    FencesFail(bool),
    /// The adversary plays back up to `count` frames it recorded of the other node's at node
    /// `to`, in order and at their original pace, each on the link it was recorded on: from
    /// the oldest it kept, or from a random one.
    Replay {
        to: usize,
        count: usize,
        oldest: bool,
    },
    /// Another pair with the same authkey (nodes gamma and delta) talks on the LAN for two
    /// seconds: its node with `to`'s peer's index claims the group, as strongly as it can.
    Foreign {
        to: usize,
    },
    /// The node's statedir is lost (a tmpfs, a machine without RTC): at its next start its
    /// incarnation goes back below every one it used.
    LoseStatedir(usize),
}

#[derive(Clone, Copy, Debug)]
enum Ev {
    Deliver {
        to: usize,
        link: usize,
        repr: Repr,
    },
    /// A frame of the other pair, as bytes: it goes through the real tag check.
    DeliverBytes {
        to: usize,
        link: usize,
        bytes: [u8; 128],
        len: usize,
    },
    ActionDone {
        node: usize,
        inc: u64,
        index: u8,
        action: Action,
    },
    FenceDone {
        node: usize,
        inc: u64,
    },
    Happen(Happening),
    Chaos,
    WatchdogFire {
        node: usize,
        inc: u64,
    },
    /// A hung node's hang is over (checked in `wake_hung`).
    Wake,
    /// The machine of an exited daemon reboots: what it held is freed, the daemon starts.
    Reboot(usize, u64),
    /// A machine that went off (crash, fence, watchdog) boots again, unless it already did.
    PowerOn(usize, u64),
}

/// A result that reached a hung daemon: delivered when it wakes.
#[derive(Clone, Copy, Debug)]
enum Deferred {
    Action(u8, Action, Outcome),
    Fence(bool),
}

struct Scheduled {
    at: Instant,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// What a resource really is on a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Truth {
    Stopped,
    Running,
    /// Held but not working (a failed start, or broken while running).
    Broken,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Power {
    Up,
    /// Not processing anything until the instant (or its watchdog fires).
    Hung(Instant),
    /// Off (crashed, fenced, or exited) until the instant.
    Down(Instant),
}

pub struct SimNode {
    pub core: Option<Node>,
    pub incarnation: u64,
    pub power: Power,
    pub deadline: Instant,
    pub truth: Vec<Truth>,
    pub in_flight: Option<(u8, Action)>,
    pub fence_in_flight: bool,
    pub health: Health,
    pub petting: bool,
    /// When the hardware watchdog resets this node (not petted since then minus its timeout).
    pub watchdog_fires: Option<Instant>,
    pub tx_seq: u64,
    /// The incarnation in this node's frames (the statedir's counter; `incarnation` above
    /// counts boots for the world's own bookkeeping).
    pub wire_inc: u64,
    /// The node's `wire::Receiver` (replay windows and the freshness handshake), new at
    /// every daemon start, as in the real daemon.
    pub rx: Option<Receiver>,
    /// The statedir is lost before the next start.
    pub statedir_lost: bool,
    /// The peer's advertised watchdog timeout as the statedir keeps it across starts.
    pub peer_watchdog_stored: Option<u32>,
    /// Frames this node sent, as the adversary recorded them (when, link, frame).
    pub sent: std::collections::VecDeque<(Instant, usize, Repr)>,
    /// Inputs that arrived while hung (action and fence results), delivered on waking.
    deferred: Vec<Deferred>,
    pub starts_fail: bool,
    pub stop_fails: bool,
    pub last_role: Role,
    pub last_runs_at: Option<Instant>,
    pub last_fencing_at: Option<Instant>,
    pub resource_failures: u64,
    pub shutdown_requested: bool,
}

#[derive(Clone, Copy, Debug)]
pub struct SimLink {
    /// cut[d]: direction d → other is cut.
    pub cut: [bool; 2],
    pub loss: u64,
}

/// A role change, for scenario timelines.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Change {
    pub at_ms: u64,
    pub node: usize,
    pub role: Role,
    pub reason: Reason,
}

/// Counts of interesting things a run went through.
#[derive(Clone, Copy, Debug, Default)]
pub struct Coverage {
    pub failovers: u64,
    pub handovers: u64,
    pub split_brains: u64,
    pub fences: u64,
    pub l1_checked: u64,
    pub s2_excused: u64,
    /// Groups found running at a daemon start and kept whole (`active`, reason `Adopted`).
    pub adoptions: u64,
    /// Replayed or recorded frames the receivers dropped (`Replay`, `OldRun`).
    pub replays_dropped: u64,
    /// Frames of the other pair the receivers dropped at the tag.
    pub foreign_dropped: u64,
    /// Runs of a peer accepted although their incarnation did not go up (lost statedir).
    pub resyncs: u64,
    /// Peers that died having advertised no armed watchdog (fence watchdog): not fenced.
    pub unfenceable_deaths: u64,
}

impl Coverage {
    pub fn add(&mut self, o: Coverage) {
        self.failovers += o.failovers;
        self.handovers += o.handovers;
        self.split_brains += o.split_brains;
        self.fences += o.fences;
        self.l1_checked += o.l1_checked;
        self.s2_excused += o.s2_excused;
        self.adoptions += o.adoptions;
        self.replays_dropped += o.replays_dropped;
        self.foreign_dropped += o.foreign_dropped;
        self.resyncs += o.resyncs;
        self.unfenceable_deaths += o.unfenceable_deaths;
    }
}

struct L1Watch {
    since: Instant,
    deadline: Instant,
    survivor: usize,
}

pub struct World {
    pub cfg: Config,
    pub now: Instant,
    rng: Rng,
    pub nodes: [SimNode; 2],
    pub links: [SimLink; 3],
    queue: BinaryHeap<Scheduled>,
    seq: u64,
    pub trace: Option<String>,
    pub changes: Vec<Change>,
    fences_fail: bool,
    overlap_since: Option<Instant>,
    overlap_excused: bool,
    runs_overlap_since: Option<Instant>,
    residual_at: Option<Instant>,
    connected_since: Option<Instant>,
    l1: Option<L1Watch>,
    /// Something disturbed the current L1 watch (then it is not checked).
    l1_disturbed: bool,
    pub steps: u64,
    pub notifies: u64,
    /// What the run exercised (so a test can insist that the simulator covers the ground).
    pub coverage: Coverage,
    outputs: Vec<Output>,
}

macro_rules! tr {
    ($w:expr, $($arg:tt)*) => {
        if let Some(t) = $w.trace.as_mut() {
            let _ = write!(t, "{:>9} ", $w.now.to_string());
            let _ = writeln!(t, $($arg)*);
        }
    };
}

impl World {
    pub fn new(cfg: Config, trace: bool) -> World {
        let rng = Rng::new(cfg.seed);
        let node = |_| SimNode {
            core: None,
            incarnation: 0,
            power: Power::Down(Instant::ZERO),
            deadline: Instant::ZERO,
            truth: vec![Truth::Stopped; usize::from(cfg.resources)],
            in_flight: None,
            fence_in_flight: false,
            health: Health::OK,
            petting: true,
            watchdog_fires: None,
            tx_seq: 0,
            wire_inc: 1000,
            rx: None,
            statedir_lost: false,
            peer_watchdog_stored: None,
            sent: std::collections::VecDeque::new(),
            deferred: Vec::new(),
            starts_fail: false,
            stop_fails: false,
            last_role: Role::Exited,
            last_runs_at: None,
            last_fencing_at: None,
            resource_failures: 0,
            shutdown_requested: false,
        };
        let mut w = World {
            now: Instant::ZERO,
            rng,
            nodes: [node(0), node(1)],
            links: [SimLink { cut: [false; 2], loss: 0 }; 3],
            queue: BinaryHeap::new(),
            seq: 0,
            trace: trace.then(String::new),
            changes: Vec::new(),
            fences_fail: false,
            overlap_since: None,
            overlap_excused: false,
            runs_overlap_since: None,
            residual_at: None,
            connected_since: Some(Instant::ZERO),
            l1: None,
            l1_disturbed: false,
            steps: 0,
            notifies: 0,
            coverage: Coverage::default(),
            outputs: Vec::with_capacity(64),
            cfg,
        };
        w.schedule(Instant::ZERO, Ev::Happen(Happening::Boot(0)));
        let second = Instant::ZERO + w.cfg.second_boot;
        w.schedule(second, Ev::Happen(Happening::Boot(1)));
        if w.cfg.chaos {
            w.schedule(Instant::from_millis(500), Ev::Chaos);
        }
        w
    }

    fn schedule(&mut self, at: Instant, ev: Ev) {
        self.seq += 1;
        self.queue.push(Scheduled { at, seq: self.seq, ev });
    }

    /// Schedules a scripted happening.
    pub fn at(&mut self, at_ms: u64, h: Happening) {
        self.schedule(Instant::from_millis(at_ms), Ev::Happen(h));
    }

    /// Runs to the end of the configured duration; `Err` names the first violated check.
    pub fn run(&mut self) -> Result<(), String> {
        let end = Instant::ZERO + self.cfg.duration;
        loop {
            let next_event = self.queue.peek().map(|s| s.at);
            let next_timeout = (0..2)
                .filter(|n| self.nodes[*n].power == Power::Up && self.nodes[*n].core.is_some())
                .map(|n| (self.nodes[n].deadline, n))
                .min();
            let take_timeout = match (next_event, next_timeout) {
                (Some(e), Some((t, _))) => t <= e,
                (None, Some(_)) => true,
                (Some(_), None) => false,
                (None, None) => return Ok(()),
            };
            let at = if take_timeout { next_timeout.map(|t| t.0) } else { next_event };
            let at = at.unwrap_or(end).max(self.now);
            if at > end {
                return self.finish_checks(end);
            }
            // Time-based checks run on the interval just passed (state is constant in it).
            self.check_durations(at)?;
            self.now = at;
            self.steps += 1;
            if take_timeout {
                let n = next_timeout.map(|t| t.1).unwrap_or(0);
                self.input(n, Input::Timeout)?;
            } else if let Some(s) = self.queue.pop() {
                self.handle_event(s.ev)?;
            }
            self.check_now()?;
        }
    }

    fn handle_event(&mut self, ev: Ev) -> Result<(), String> {
        match ev {
            Ev::Deliver { to, link, repr } => self.deliver(to, link, repr),
            Ev::DeliverBytes { to, link, bytes, len } => {
                self.deliver_bytes(to, link, &bytes[..len])
            }
            Ev::ActionDone { node, inc, index, action } => {
                if self.nodes[node].incarnation != inc || self.nodes[node].core.is_none() {
                    return Ok(());
                }
                self.finish_action(node, index, action)
            }
            Ev::FenceDone { node, inc } => {
                if self.nodes[node].incarnation != inc || self.nodes[node].core.is_none() {
                    return Ok(());
                }
                self.finish_fence(node)
            }
            Ev::Wake => Ok(()),
            Ev::Reboot(n, inc) | Ev::PowerOn(n, inc) => {
                if self.nodes[n].incarnation != inc || self.nodes[n].core.is_some() {
                    return Ok(());
                }
                self.nodes[n].truth.iter_mut().for_each(|t| *t = Truth::Stopped);
                self.boot(n)
            }
            Ev::Happen(h) => self.happen(h),
            Ev::Chaos => {
                self.chaos();
                let next = self.now + Duration::from_millis(self.rng.range(200, 3000));
                self.schedule(next, Ev::Chaos);
                Ok(())
            }
            Ev::WatchdogFire { node, inc } => {
                let n = &self.nodes[node];
                if n.incarnation == inc && n.watchdog_fires == Some(self.now) && n.core.is_some() {
                    tr!(self, "node {node}: WATCHDOG RESET");
                    let back = self.now + Duration::from_millis(2000);
                    self.power_off(node, back);
                }
                Ok(())
            }
        }
    }

    /// Hands a frame to node `to`'s real receiver (after the tag, which the simulator
    /// skips for its own pair's frames), and what passes to its core.
    fn deliver(&mut self, to: usize, link: usize, repr: Repr) -> Result<(), String> {
        let n = &mut self.nodes[to];
        if n.power != Power::Up || n.core.is_none() {
            return Ok(());
        }
        let Some(rx) = n.rx.as_mut() else { return Ok(()) };
        let before = (rx.outgoing(), rx.stats().incarnation_resyncs);
        let result = rx.accept_for_simulation(repr);
        let changed = rx.outgoing() != before.0;
        self.coverage.resyncs += rx.stats().incarnation_resyncs - before.1;
        if matches!(result, Err(RxError::Replay | RxError::OldRun)) {
            self.coverage.replays_dropped += 1;
        }
        match result {
            Ok(frame) => {
                tr!(self, "node {to}: rx link {} {:?}", LINK_NAMES[link], short(&repr.payload));
                self.input(to, Input::Frame { link: link as u8, frame: &frame })?;
            }
            Err(e) => tr!(self, "node {to}: dropped on link {}: {e}", LINK_NAMES[link]),
        }
        // As the event loop does: a new challenge to echo (or of ours) goes out at once.
        if changed { self.input(to, Input::Handshake) } else { Ok(()) }
    }

    /// Hands bytes to node `to`'s real receiver, tag check included.
    fn deliver_bytes(&mut self, to: usize, link: usize, bytes: &[u8]) -> Result<(), String> {
        let n = &mut self.nodes[to];
        if n.power != Power::Up || n.core.is_none() {
            return Ok(());
        }
        let Some(rx) = n.rx.as_mut() else { return Ok(()) };
        let frame = match rx.accept(link as u8, bytes) {
            Ok(frame) => frame,
            Err(e) => {
                self.coverage.foreign_dropped += u64::from(e == RxError::BadTag);
                tr!(self, "node {to}: other pair's frame dropped: {e}");
                return Ok(());
            }
        };
        tr!(self, "node {to}: ACCEPTED a frame of the other pair {:?}", frame.repr().payload);
        self.input(to, Input::Frame { link: link as u8, frame: &frame })
    }

    fn finish_action(&mut self, node: usize, index: u8, action: Action) -> Result<(), String> {
        let i = usize::from(index);
        let outcome = {
            let n = &mut self.nodes[node];
            n.in_flight = None;
            match action {
                Action::Start if n.starts_fail => {
                    n.truth[i] = Truth::Broken;
                    Outcome::Failed(1)
                }
                Action::Start => {
                    n.truth[i] = Truth::Running;
                    Outcome::Ok
                }
                Action::Stop if n.stop_fails => {
                    n.stop_fails = false;
                    Outcome::Failed(1)
                }
                Action::Stop => {
                    n.truth[i] = Truth::Stopped;
                    Outcome::Ok
                }
                Action::Monitor if n.truth[i] == Truth::Running => Outcome::Ok,
                Action::Monitor if n.truth[i] == Truth::Stopped => Outcome::NotRunning,
                Action::Monitor => Outcome::Failed(7),
            }
        };
        if outcome != Outcome::Ok {
            self.nodes[node].resource_failures += 1;
            self.disturb_l1(node);
        }
        tr!(self, "node {node}: resource {index} {action:?} -> {outcome:?}");
        if matches!(self.nodes[node].power, Power::Hung(_)) {
            self.nodes[node].deferred.push(Deferred::Action(index, action, outcome));
            return Ok(());
        }
        self.deliver_action(node, index, action, outcome)
    }

    fn deliver_action(
        &mut self,
        node: usize,
        index: u8,
        action: Action,
        outcome: Outcome,
    ) -> Result<(), String> {
        let elapsed = Duration::from_millis(self.cfg.action_ms.0);
        self.input(node, Input::ResourceResult { index, action, outcome, elapsed })
    }

    fn finish_fence(&mut self, node: usize) -> Result<(), String> {
        let ok = !self.fences_fail;
        let peer = 1 - node;
        if ok {
            // The fence device resets the peer's machine, whatever its daemon is doing.
            tr!(self, "node {node}: fence resets node {peer}");
            let back = self.now + Duration::from_millis(3000);
            self.power_off(peer, back);
        }
        if !ok {
            self.disturb_l1(node);
        }
        if matches!(self.nodes[node].power, Power::Hung(_)) {
            // The fence device acted; the daemon learns it when it wakes.
            self.nodes[node].deferred.push(Deferred::Fence(ok));
            return Ok(());
        }
        self.deliver_fence(node, ok)
    }

    fn deliver_fence(&mut self, node: usize, ok: bool) -> Result<(), String> {
        self.nodes[node].fence_in_flight = false;
        tr!(self, "node {node}: fence result ok={ok}");
        self.input(node, Input::FenceResult { ok })
    }

    fn happen(&mut self, h: Happening) -> Result<(), String> {
        tr!(self, "HAPPENS {h:?}");
        match h {
            // The first boot only: later ones follow a power-off (`Ev::PowerOn`, `Ev::Reboot`).
            Happening::Boot(n) if self.nodes[n].incarnation == 0 => self.boot(n),
            Happening::Boot(_) => Ok(()),
            Happening::Crash(n, d) => {
                self.note_death(n);
                self.power_off(n, self.now + d);
                Ok(())
            }
            Happening::Hang(n, d) => {
                if self.nodes[n].power == Power::Up && self.nodes[n].core.is_some() {
                    self.note_death(n);
                    self.hang(n, d);
                }
                Ok(())
            }
            Happening::Restart(n) => {
                if self.nodes[n].power == Power::Up && self.nodes[n].core.is_some() {
                    self.disturb_l1(n);
                    self.nodes[n].core = None;
                    return self.boot(n);
                }
                Ok(())
            }
            Happening::Shutdown(n) => {
                if self.nodes[n].power == Power::Up && self.nodes[n].core.is_some() {
                    self.note_death(n);
                    self.nodes[n].shutdown_requested = true;
                    return self.input(n, Input::Shutdown);
                }
                Ok(())
            }
            Happening::Admin(n, cmd) => {
                self.disturb_l1(0);
                self.disturb_l1(1);
                self.input_if_up(n, Input::Admin(cmd))
            }
            Happening::Health(n, h) => {
                self.nodes[n].health = h;
                self.disturb_l1(n);
                self.input_if_up(n, Input::Health(h))
            }
            Happening::Cut { link, from, cut } => {
                self.links[link].cut[from] = cut;
                Ok(())
            }
            Happening::Loss { link, percent } => {
                self.links[link].loss = percent;
                Ok(())
            }
            Happening::Break(n, i) => {
                let t = &mut self.nodes[n].truth[usize::from(i)];
                if *t == Truth::Running {
                    *t = Truth::Broken;
                    self.disturb_l1(n);
                }
                Ok(())
            }
            Happening::StartsFail(n, fail) => {
                self.nodes[n].starts_fail = fail;
                Ok(())
            }
            Happening::StopFails(n) => {
                self.nodes[n].stop_fails = true;
                Ok(())
            }
            Happening::FencesFail(fail) => {
                self.fences_fail = fail;
                Ok(())
            }
            Happening::Replay { to, count, oldest } => {
                self.replay(to, count, oldest);
                Ok(())
            }
            Happening::Foreign { to } => {
                self.foreign(to);
                Ok(())
            }
            Happening::LoseStatedir(n) => {
                self.nodes[n].statedir_lost = true;
                Ok(())
            }
        }
    }

    /// Schedules recorded frames of `1 - to` for delivery at `to`, as they were sent.
    fn replay(&mut self, to: usize, count: usize, oldest: bool) {
        let recorded = self.nodes[1 - to].sent.len();
        if recorded == 0 {
            return;
        }
        let start = if oldest { 0 } else { self.rng.range(0, recorded as u64 - 1) as usize };
        let first = self.nodes[1 - to].sent[start].0;
        for i in 0..count.min(recorded - start) {
            let (sent_at, link, repr) = self.nodes[1 - to].sent[start + i];
            let at = self.now + sent_at.saturating_since(first);
            self.schedule(at, Ev::Deliver { to, link, repr });
        }
    }

    /// Frames of another pair that shares the authkey, signed with its own frame key (or,
    /// with the `foreign_same_key` knob, with ours), for two seconds on the LAN. Its node
    /// claims the group with a high epoch and echoes `to`'s current challenge: as much as a
    /// node of another pair could learn by listening.
    fn foreign(&mut self, to: usize) {
        let key = if self.cfg.foreign_same_key {
            Key::for_pair(SECRET, NAMES, UDPPORT)
        } else {
            Key::for_pair(SECRET, ["gamma", "delta"], UDPPORT)
        };
        let peer = (1 - to) as u8;
        let mut sender = Sender::new(key, peer, 1 << 50);
        let epoch = self.nodes.iter().filter_map(|n| n.core.as_ref()).map(|c| c.epoch()).max();
        let run = self.rng.next_u64() as u32 | 1;
        let frames = (2000 / self.cfg.keepalive.total_millis().max(1)) as usize;
        for i in 0..frames {
            let Some(echo) = self.nodes[to].rx.as_ref().map(|rx| rx.outgoing().session.challenge)
            else {
                return;
            };
            let kind = if i % 2 == 0 {
                hapair::wire::Kind::Release
            } else {
                hapair::wire::Kind::Heartbeat
            };
            let payload = Payload {
                kind,
                state: hapair::wire::GroupState::Active,
                health: Health::OK,
                intent: hapair::wire::Intent::None,
                flags: hapair::core::FLAG_HOLDING | hapair::core::FLAG_PEER_ALIVE,
                epoch: epoch.unwrap_or(0).saturating_add(1 + i as u32),
                watchdog_timeout_ms: 0,
                config_digest: [7; 8],
            };
            let out = Outgoing {
                version: VERSION,
                session: Session { run, challenge: run ^ 0x55, echo, flags: 0 },
            };
            let mut bytes = [0u8; 128];
            let len = sender.emit(2, &payload, &out, &mut bytes);
            let at = self.now + self.cfg.keepalive.saturating_mul(i as u64);
            self.schedule(at, Ev::DeliverBytes { to, link: 2, bytes, len });
        }
    }

    fn input_if_up(&mut self, n: usize, input: Input<'_>) -> Result<(), String> {
        if self.nodes[n].power == Power::Up && self.nodes[n].core.is_some() {
            self.input(n, input)
        } else {
            Ok(())
        }
    }

    fn boot(&mut self, n: usize) -> Result<(), String> {
        if self.nodes[n].core.is_some() {
            return Ok(());
        }
        // L1 is about a node that stays dead; one that comes back changes the question.
        self.disturb_l1(n);
        let node = &mut self.nodes[n];
        node.incarnation += 1;
        node.power = Power::Up;
        node.petting = true;
        node.watchdog_fires = None;
        node.in_flight = None;
        node.fence_in_flight = false;
        node.deferred.clear();
        node.shutdown_requested = false;
        node.tx_seq = 0;
        // The statedir's counter goes up at every start, unless the adversary lost or
        // restored the statedir (a machine without an RTC): then it goes back.
        let chaos = self.cfg.adversary && self.cfg.chaos && node.incarnation > 1;
        let lost = std::mem::take(&mut node.statedir_lost) || (chaos && self.rng.chance(10));
        node.wire_inc = if lost { self.rng.range(1, node.wire_inc) } else { node.wire_inc + 1 };
        let mut rx = Receiver::new(
            Key::for_pair(SECRET, NAMES, UDPPORT),
            n as u8,
            1 - n as u8,
            self.rng.next_u64() as u32,
            self.rng.next_u64() as u32,
        );
        if self.cfg.skip_freshness {
            rx.sim_skip_freshness();
        }
        let node = &mut self.nodes[n];
        node.rx = Some(rx);
        if lost {
            tr!(self, "node {n}: statedir lost or restored: incarnation back to {}", node.wire_inc);
        }
        let node = &mut self.nodes[n];
        if lost {
            node.peer_watchdog_stored = None;
        }
        let mut params = self.cfg.params(n as u8);
        params.peer_watchdog_timeout_ms = node.peer_watchdog_stored;
        let core = Node::new(params, self.now);
        node.core = Some(core);
        node.last_role = Role::Init;
        tr!(self, "node {n}: boots, incarnation {}", self.nodes[n].incarnation);
        let health = self.nodes[n].health;
        if health != Health::OK {
            self.input(n, Input::Health(health))?;
        }
        self.drain(n)
    }

    /// The machine goes off: everything it ran is gone. It boots again at `back`.
    fn power_off(&mut self, n: usize, back: Instant) {
        let node = &mut self.nodes[n];
        node.core = None;
        node.power = Power::Down(back);
        node.truth.iter_mut().for_each(|t| *t = Truth::Stopped);
        node.in_flight = None;
        node.watchdog_fires = None;
        node.deferred.clear();
        let inc = self.nodes[n].incarnation;
        self.schedule(back, Ev::PowerOn(n, inc));
    }

    fn hang(&mut self, n: usize, d: Duration) {
        let until = self.now + d;
        self.nodes[n].power = Power::Hung(until);
        if let Some(wd) = self.cfg.watchdog_of(n) {
            let fires = self.now + wd;
            let node = &mut self.nodes[n];
            let at = node.watchdog_fires.map_or(fires, |f| f.min(fires));
            node.watchdog_fires = Some(at);
            let inc = node.incarnation;
            self.schedule(at, Ev::WatchdogFire { node: n, inc });
        }
        self.schedule(until, Ev::Wake);
    }

    /// One input to a node, then drain and apply its outputs.
    fn input(&mut self, n: usize, input: Input<'_>) -> Result<(), String> {
        let Some(core) = self.nodes[n].core.as_mut() else { return Ok(()) };
        core.handle_input(self.now, input);
        // As the event loop does: the peer's advertised watchdog goes to the statedir.
        if let Some(p) = core.peer().last {
            self.nodes[n].peer_watchdog_stored = Some(p.watchdog_timeout_ms);
        }
        self.drain(n)
    }

    fn drain(&mut self, n: usize) -> Result<(), String> {
        let mut outputs = std::mem::take(&mut self.outputs);
        outputs.clear();
        if let Some(core) = self.nodes[n].core.as_mut() {
            for _ in 0..1000 {
                match core.poll_output(self.now) {
                    Output::Timeout(at) => {
                        self.nodes[n].deadline = at;
                        break;
                    }
                    o => outputs.push(o),
                }
            }
        }
        let mut result = Ok(());
        for o in outputs.iter().copied() {
            result = self.apply(n, o);
            if result.is_err() {
                break;
            }
        }
        self.outputs = outputs;
        self.note_role(n);
        result
    }

    fn apply(&mut self, n: usize, o: Output) -> Result<(), String> {
        match o {
            Output::Transmit { link, payload } => {
                match link {
                    LinkSel::All => (0..3).for_each(|l| self.transmit(n, l, payload)),
                    LinkSel::One(l) => self.transmit(n, usize::from(l), payload),
                }
                Ok(())
            }
            Output::ResourceAction { index, action } => self.resource_action(n, index, action),
            Output::Fence => {
                if self.nodes[n].fence_in_flight {
                    return Err(format!("node {n} runs a second fence while one is running"));
                }
                self.nodes[n].fence_in_flight = true;
                let d = self.rng.range(self.cfg.fence_ms.0, self.cfg.fence_ms.1);
                let inc = self.nodes[n].incarnation;
                tr!(self, "node {n}: FENCE the peer ({d} ms)");
                self.schedule(self.now + Duration::from_millis(d), Ev::FenceDone { node: n, inc });
                Ok(())
            }
            Output::Notify { event, detail } => {
                self.notifies += 1;
                tr!(self, "node {n}: notify {event:?} {detail:?}");
                match event {
                    Event::Stopping => self.check_l2(n, detail)?,
                    Event::Failover => self.coverage.failovers += 1,
                    Event::Handover => self.coverage.handovers += 1,
                    Event::SplitBrain => self.coverage.split_brains += 1,
                    Event::Fenced => self.coverage.fences += 1,
                    Event::Active if detail == hapair::core::Detail::Reason(Reason::Adopted) => {
                        self.coverage.adoptions += 1
                    }
                    Event::PeerDead
                        if detail == hapair::core::Detail::Reason(Reason::PeerUnfenceable) =>
                    {
                        self.coverage.unfenceable_deaths += 1
                    }
                    _ => {}
                }
                Ok(())
            }
            Output::Watchdog { allow_petting } => {
                tr!(self, "node {n}: watchdog petting {allow_petting}");
                self.set_petting(n, allow_petting);
                Ok(())
            }
            Output::Exit => {
                tr!(self, "node {n}: EXIT");
                let back = self.now + Duration::from_millis(2000);
                // A clean exit; the machine reboots (what it held, if anything, is freed
                // only then: until `back` it still counts as held).
                let node = &mut self.nodes[n];
                node.core = None;
                node.power = Power::Down(back);
                node.watchdog_fires = None;
                let inc = node.incarnation;
                self.schedule(back, Ev::Reboot(n, inc));
                Ok(())
            }
            Output::Timeout(_) => Ok(()),
        }
    }

    fn set_petting(&mut self, n: usize, allow: bool) {
        self.nodes[n].petting = allow;
        if allow {
            self.nodes[n].watchdog_fires = None;
        } else if let Some(wd) = self.cfg.watchdog_of(n) {
            let at = self.now + wd;
            let node = &mut self.nodes[n];
            if node.watchdog_fires.is_none_or(|f| f > at) {
                node.watchdog_fires = Some(at);
                let inc = node.incarnation;
                self.schedule(at, Ev::WatchdogFire { node: n, inc });
            }
        }
    }

    fn transmit(&mut self, n: usize, link: usize, payload: Payload) {
        let node = &mut self.nodes[n];
        node.tx_seq += 1;
        let session = node.rx.as_ref().map_or(Session::NONE, |rx| rx.outgoing().session);
        let repr = Repr {
            version: VERSION,
            sender: n as u8,
            incarnation: node.wire_inc,
            seq: node.tx_seq,
            link: link as u8,
            session,
            payload,
        };
        if self.cfg.adversary {
            if node.sent.len() == RECORDED_MAX {
                node.sent.pop_front();
            }
            node.sent.push_back((self.now, link, repr));
        }
        let l = self.links[link];
        if l.cut[n] || (l.loss > 0 && self.rng.chance(l.loss)) {
            return;
        }
        let copies = if self.cfg.chaos && self.rng.chance(2) { 2 } else { 1 };
        for _ in 0..copies {
            let jitter =
                if self.cfg.jitter_ms > 0 { self.rng.range(0, self.cfg.jitter_ms) } else { 0 };
            let at = self.now + Duration::from_millis(self.cfg.delay_ms + jitter);
            self.schedule(at, Ev::Deliver { to: 1 - n, link, repr });
        }
    }

    fn resource_action(&mut self, n: usize, index: u8, action: Action) -> Result<(), String> {
        let node = &mut self.nodes[n];
        let i = usize::from(index);
        if let Some(busy) = node.in_flight {
            return Err(format!("node {n}: {action:?} {index} while {busy:?} is in flight"));
        }
        let Some(truth) = node.truth.get(i).copied() else {
            return Err(format!("node {n}: action on resource {index} that does not exist"));
        };
        let probe = node.core.as_ref().is_some_and(Node::probing);
        let contradiction = match action {
            Action::Start => truth != Truth::Stopped,
            // A shutdown while probing stops what was not probed yet: it may find nothing.
            Action::Stop => truth == Truth::Stopped && !node.shutdown_requested,
            Action::Monitor => truth == Truth::Stopped && !probe,
        };
        if contradiction {
            return Err(format!("node {n}: {action:?} resource {index} while it is {truth:?}"));
        }
        node.in_flight = Some((index, action));
        let d = match self.cfg.probe_ms {
            Some(ms) if probe => ms,
            _ => self.rng.range(self.cfg.action_ms.0, self.cfg.action_ms.1),
        };
        let inc = node.incarnation;
        tr!(self, "node {n}: resource {index} {action:?} ({d} ms)");
        let at = self.now + Duration::from_millis(d);
        self.schedule(at, Ev::ActionDone { node: n, inc, index, action });
        Ok(())
    }

    fn note_role(&mut self, n: usize) {
        let Some(core) = self.nodes[n].core.as_ref() else { return };
        let role = core.role();
        if role != self.nodes[n].last_role {
            self.nodes[n].last_role = role;
            let reason = core.reason();
            tr!(self, "node {n}: ROLE {role:?} ({reason:?})");
            self.changes.push(Change { at_ms: self.now.total_millis(), node: n, role, reason });
        }
    }

    fn chaos(&mut self) {
        let n = self.rng.range(0, 1) as usize;
        let link = self.rng.range(0, 2) as usize;
        let roll = self.rng.range(0, 99);
        let h = match roll {
            0..=29 => Happening::Cut { link, from: n, cut: self.rng.chance(45) },
            30..=37 => Happening::Loss { link, percent: self.rng.pick(&[0, 0, 5, 30]) },
            38..=43 => Happening::Crash(n, Duration::from_millis(self.rng.range(500, 5000))),
            44..=49 => Happening::Hang(n, Duration::from_millis(self.rng.range(300, 6000))),
            50..=52 => Happening::Shutdown(n),
            53..=62 => {
                let bits = self.rng.pick(&[0, 0, Health::PING, Health::SENSOR, Health::RAID]);
                Happening::Health(n, Health(bits))
            }
            63..=74 => {
                let cmd = self.rng.pick(&[
                    Admin::Standby,
                    Admin::Online,
                    Admin::Online,
                    Admin::Takeover,
                    Admin::MaintenanceOn,
                    Admin::MaintenanceOff,
                    Admin::MaintenanceOff,
                    Admin::Cleanup(None),
                    Admin::Cleanup(None),
                ]);
                Happening::Admin(n, cmd)
            }
            75..=84 => {
                Happening::Break(n, self.rng.range(0, u64::from(self.cfg.resources) - 1) as u8)
            }
            85..=89 => Happening::StartsFail(n, self.rng.chance(30)),
            90..=92 => Happening::StopFails(n),
            93..=95 => Happening::Restart(n),
            96 if self.cfg.adversary => {
                let count = self.rng.range(1, 100) as usize;
                Happening::Replay { to: n, count, oldest: self.rng.chance(30) }
            }
            97 if self.cfg.adversary => Happening::Foreign { to: n },
            _ => Happening::FencesFail(self.rng.chance(30)),
        };
        self.schedule(self.now, Ev::Happen(h));
    }

    // ----- checks -----

    /// A node holds the group when any resource is not stopped (hung or exited nodes too).
    fn holds(&self, n: usize) -> bool {
        self.nodes[n].truth.iter().any(|t| *t != Truth::Stopped)
    }

    fn runs(&self, n: usize) -> bool {
        self.nodes[n].power == Power::Up
            && self.nodes[n]
                .core
                .as_ref()
                .is_some_and(|c| matches!(c.role(), Role::Starting | Role::Active))
    }

    /// A link works when it carries every frame both ways and both ends process them.
    fn link_works(&self, l: usize) -> bool {
        let link = self.links[l];
        !link.cut[0] && !link.cut[1] && link.loss == 0
    }

    fn both_up(&self) -> bool {
        (0..2).all(|n| self.nodes[n].power == Power::Up && self.nodes[n].core.is_some())
    }

    /// The bound of S1 after the pair can talk again: the slowest link's send interval plus
    /// one-way delay (the first frame that shows the overlap), plus an action in flight, plus
    /// the group's stop time.
    fn s1_bound(&self) -> Duration {
        self.cfg
            .max_link_interval()
            .saturating_add(self.cfg.max_delay())
            .saturating_add(Duration::from_millis(self.cfg.action_ms.1))
            .saturating_add(self.cfg.group_action_time())
            .saturating_add(Duration::from_millis(1))
    }

    /// Checks that span time, for the interval from `self.now` to `until`.
    fn check_durations(&mut self, until: Instant) -> Result<(), String> {
        // S1: while any link works both ways (and both nodes run their daemon), never both in
        // starting/active for longer than the S1 bound, counted from when both the overlap and
        // the connection began.
        if let (Some(since), Some(conn)) = (self.runs_overlap_since, self.connected_since) {
            let from = since.max(conn);
            if until.saturating_since(from) > self.s1_bound() {
                return Err(format!(
                    "S1: both nodes starting/active since {since} while connected since {conn}"
                ));
            }
        }
        // L1: after the active node died, a healthy survivor is active within the bound.
        if let Some(w) = self.l1.as_ref()
            && until > w.deadline
        {
            {
                let ok = self.l1_disturbed
                    || (0..2).any(|n| {
                        self.runs(n)
                            && self.nodes[n].core.as_ref().is_some_and(|c| c.role() == Role::Active)
                    });
                if !self.l1_disturbed {
                    self.coverage.l1_checked += 1;
                }
                if !ok {
                    return Err(format!(
                        "L1: the active node died at {}, node {} is not active by {}",
                        w.since, w.survivor, w.deadline
                    ));
                }
                self.l1 = None;
            }
        }
        Ok(())
    }

    /// Checks of the state right after a step.
    fn check_now(&mut self) -> Result<(), String> {
        self.wake_hung()?;
        for n in 0..2 {
            // For L2 a hung node's frozen role counts too: it says so when it wakes.
            let runs = self.nodes[n]
                .core
                .as_ref()
                .is_some_and(|c| matches!(c.role(), Role::Starting | Role::Active));
            let fencing = self.nodes[n].core.as_ref().is_some_and(|c| c.role() == Role::Fencing);
            if runs {
                self.nodes[n].last_runs_at = Some(self.now);
            }
            if fencing {
                self.nodes[n].last_fencing_at = Some(self.now);
            }
        }
        // Connectivity for S1 and L2.
        let connected = self.both_up() && (0..3).any(|l| self.link_works(l));
        if connected && self.connected_since.is_none() {
            self.connected_since = Some(self.now);
        } else if !connected {
            self.connected_since = None;
        }
        let both_run = self.runs(0) && self.runs(1);
        if both_run && self.runs_overlap_since.is_none() {
            self.runs_overlap_since = Some(self.now);
        } else if !both_run {
            self.runs_overlap_since = None;
        }
        // The residual case of fence watchdog: every medium failed (at least one way) while
        // both nodes reach a ping node.
        let all_media_failed = (0..3).all(|l| self.links[l].cut[0] || self.links[l].cut[1]);
        let both_ping = (0..2).all(|n| !self.nodes[n].health.has(Health::PING));
        if all_media_failed && both_ping {
            self.residual_at = Some(self.now);
        }
        self.check_s2()
    }

    /// S2: with a fence configured, never both nodes hold resources at once (a hung node, or
    /// one that exited holding, still holds them). With fence watchdog, an overlap that began
    /// within the fence-watchdog horizon of a residual moment is excused.
    fn check_s2(&mut self) -> Result<(), String> {
        if self.cfg.fence == FenceMode::None {
            return Ok(());
        }
        let both = self.holds(0) && self.holds(1);
        if !both {
            self.overlap_since = None;
            self.overlap_excused = false;
            return Ok(());
        }
        if self.overlap_since.is_none() {
            self.overlap_since = Some(self.now);
            let horizon = self.cfg.watchdog.unwrap_or(Duration::ZERO)
                + self.cfg.deadtime().saturating_mul(4)
                + self.cfg.max_link_interval().saturating_mul(2)
                + self.cfg.group_action_time().saturating_mul(2);
            self.overlap_excused = self.cfg.fence == FenceMode::Watchdog
                && self.residual_at.is_some_and(|r| self.now.saturating_since(r) <= horizon);
            self.coverage.s2_excused += u64::from(self.overlap_excused);
        }
        if self.overlap_excused {
            return Ok(());
        }
        Err(format!("S2: both nodes hold resources (fence {:?})", self.cfg.fence))
    }

    /// L2: an active node stops the group only for a policy reason that the world confirms.
    fn check_l2(&mut self, n: usize, detail: hapair::core::Detail) -> Result<(), String> {
        let hapair::core::Detail::Reason(reason) = detail else {
            return Err(format!("L2: node {n} stops without a reason"));
        };
        let peer = 1 - n;
        let window = self.cfg.deadtime() + self.cfg.max_link_interval() + self.cfg.max_delay();
        let recent = |t: Option<Instant>| t.is_some_and(|t| self.now.saturating_since(t) <= window);
        let my = self.nodes[n].core.as_ref();
        let peer_core = self.nodes[peer].core.as_ref();
        let confirmed = match reason {
            Reason::SplitBrain => recent(self.nodes[peer].last_runs_at),
            Reason::PeerTakingOver => recent(self.nodes[peer].last_fencing_at),
            Reason::Isolated => self.nodes[n].health.has(Health::PING),
            Reason::AdminStandby => my.is_some_and(|c| c.intent() == hapair::wire::Intent::Standby),
            Reason::PeerRequested => true, // the peer's intent, possibly since changed
            Reason::Failback => self.cfg.auto_failback && peer == 0,
            Reason::Health => {
                !self.nodes[n].health.is_ok()
                    || (self.nodes[n].resource_failures > 0
                        && my.is_some_and(|c| c.advertised_health().has(Health::RESTARTS)))
            }
            Reason::Restart | Reason::RestartsExhausted => self.nodes[n].resource_failures > 0,
            Reason::Shutdown => self.nodes[n].shutdown_requested,
            Reason::Cleanup => true,
            // The node found the group running at start while the peer holds it, or it may
            // not run it: stopping it is the rule, not a policy choice of an active node.
            Reason::Probed => true,
            // Adopting a group found partly running restarts it from the first resource not
            // running.
            Reason::Adopted => self.nodes[n].truth.iter().any(|t| *t != Truth::Running),
            _ => false,
        };
        let _ = peer_core;
        if confirmed {
            Ok(())
        } else {
            Err(format!("L2: node {n} stops the group for {reason:?}, which the world denies"))
        }
    }

    /// Starts an L1 watch when node `n` dies while active.
    fn note_death(&mut self, n: usize) {
        let was_active = self.nodes[n].core.as_ref().is_some_and(|c| c.role() == Role::Active)
            && self.nodes[n].power == Power::Up;
        let survivor = 1 - n;
        let quiet_survivor = self.nodes[survivor].power == Power::Up
            && self.nodes[survivor].core.as_ref().is_some_and(|c| {
                matches!(c.role(), Role::Standby | Role::Fencing)
                    && c.intent() == hapair::wire::Intent::None
                    && c.advertised_health().is_ok()
            });
        if self.l1.is_some() {
            self.l1_disturbed = true;
        }
        if was_active && quiet_survivor && self.l1.is_none() {
            let fence = match self.cfg.fence {
                FenceMode::None => Duration::ZERO,
                FenceMode::External => Duration::from_millis(self.cfg.fence_ms.1),
                // A peer that advertised no armed watchdog is never taken over by waiting
                // (SPEC §7.3): L1 does not apply to it.
                FenceMode::Watchdog => {
                    match self.nodes[survivor].core.as_ref().and_then(|c| c.fence_wait()) {
                        Some(wait) => wait,
                        None => return,
                    }
                }
            };
            let deadline = self.now
                + self.cfg.deadtime()
                + fence
                + self.cfg.group_action_time()
                + self.cfg.keepalive
                + self.cfg.max_link_interval()
                + self.cfg.max_delay();
            self.l1 = Some(L1Watch { since: self.now, deadline, survivor });
            self.l1_disturbed = false;
        }
    }

    fn disturb_l1(&mut self, _n: usize) {
        if self.l1.is_some() {
            self.l1_disturbed = true;
        }
    }

    /// Wakes hung nodes whose hang is over.
    fn wake_hung(&mut self) -> Result<(), String> {
        for n in 0..2 {
            if let Power::Hung(until) = self.nodes[n].power
                && until <= self.now
                && self.nodes[n].core.is_some()
            {
                {
                    self.nodes[n].power = Power::Up;
                    self.disturb_l1(n);
                    tr!(self, "node {n}: wakes up");
                    if self.nodes[n].petting {
                        self.nodes[n].watchdog_fires = None;
                    }
                    // Health changed while it slept: the sensors are read again on waking.
                    let health = self.nodes[n].health;
                    self.input(n, Input::Health(health))?;
                    let deferred = std::mem::take(&mut self.nodes[n].deferred);
                    for d in deferred {
                        match d {
                            Deferred::Action(i, a, o) => self.deliver_action(n, i, a, o)?,
                            Deferred::Fence(ok) => self.deliver_fence(n, ok)?,
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn finish_checks(&mut self, end: Instant) -> Result<(), String> {
        self.check_durations(end)?;
        self.now = end;
        Ok(())
    }
}

fn short(p: &Payload) -> String {
    format!(
        "{:?} {:?} h{:#x} {:?} f{} e{}",
        p.kind, p.state, p.health.0, p.intent, p.flags, p.epoch
    )
}

/// Runs one seed; `Err` carries the violation (and the trace when `trace`).
pub fn run_seed(cfg: Config, trace: bool) -> (Result<(), String>, World) {
    let mut world = World::new(cfg, trace);
    let result = world.run();
    (result, world)
}
