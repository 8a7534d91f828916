//! The deterministic simulator's world: two nodes, each a `hapair::core::Groups` of 1 to 8
//! resource groups (SPEC §7.1), three heartbeat links, resources, fencing, watchdogs, a virtual
//! clock, and the checks of SPEC §3 (S1, S2, L1, L2 per group, the fence checks per node, and
//! "no action contradicts the state") evaluated at every step. One u64 seed fixes
//! everything. It is test code: it allocates and formats freely, but only formats the trace
//! when asked to. It does not decide anything for the cores.
#![allow(dead_code)]

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fmt::Write as _;

use hapair::core::time::{Duration, Instant};
use hapair::core::{
    Action, Admin, Event, FenceMode, Groups as Core, Input, LinkParams, LinkSel, Mutation, Node,
    Outcome, Output, Params, Reason, RestartLimit, Role,
};
use hapair::health::pet::{PetGate, PetSchedule, loop_lag};
use hapair::health::reach::{self, PING_WINDOW, Reach};
use hapair::health::self_fence::{Timing, Window};
use hapair::wire::Intent;
use hapair::wire::{
    GroupPart, Groups, Health, Key, Outgoing, Payload, Receiver, Repr, RxError, Sender, Session,
    VERSION,
};

/// The pair's authkey in the simulated world, and the node names its frame key binds.
const SECRET: &[u8] = b"the simulated pair's authkey";
const NAMES: [&str; 2] = ["alpha", "beta"];
const UDPPORT: u16 = 694;
/// How many of each node's sent frames the recorder keeps for replays.
const RECORDED_MAX: usize = 400;
/// The ping node both nodes are configured with.
const PING_NODE: std::net::Ipv4Addr = std::net::Ipv4Addr::new(192, 0, 2, 254);

// splitmix64, the one generator of the tests (tests/common/splitmix.rs). tests/pure, which
// runs this world beside `common`, loads the file twice: two identical types, never mixed.
#[allow(clippy::duplicate_mod)]
#[path = "../common/splitmix.rs"]
mod splitmix;
pub use splitmix::Rng;

pub const LINK_NAMES: [&str; 3] = ["serial", "crossover", "lan"];

/// One resource group of the pair (SPEC §7.1): its home, its failback, its resources (the
/// configuration's flat resource indices run on from the group before).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupCfg {
    pub home: u8,
    pub auto_failback: bool,
    pub resources: u8,
}

/// The shape of one simulated run.
#[derive(Clone, Debug)]
pub struct Config {
    pub seed: u64,
    pub duration: Duration,
    pub keepalive: Duration,
    pub fence: FenceMode,
    pub watchdog: Option<Duration>,
    /// The resource groups, in the configuration's order (1 to `GROUPS_MAX`, at most
    /// `RESOURCES_MAX` resources in all).
    pub groups: Vec<GroupCfg>,
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
    /// Test-only knob: a bug seeded in the cores (`hapair::core::Mutation`).
    pub mutation: Mutation,
    /// How long a machine takes from a reset (watchdog, fence) to its daemon's start: its
    /// POST and boot, (min, max) ms.
    pub reboot_ms: (u64, u64),
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
    /// `fence_delay`: how long a node that does not win a fence race waits before it fences.
    /// README asks for more than the fence takes to reset the peer plus a keepalive: the
    /// random worlds keep to that (at least deadtime, the resets within 0.3 deadtime).
    pub fence_delay: Duration,
    /// A fence command reaches the peer's fence device this long after it starts (min, max
    /// ms), if its node still runs: from then on the reset comes whatever becomes of the
    /// fencer (two fences under way at once can reset both nodes) ...
    pub fence_commit_ms: (u64, u64),
    /// ... and the device resets the peer this much later (min, max ms). The command's
    /// result comes after the reset, `fence_ms` after its start at the earliest.
    pub fence_act_ms: (u64, u64),
    /// The world starts with every medium cut both ways, until this long after 0 (`None`:
    /// connected): a start-up in a partition.
    pub start_partitioned: Option<Duration>,
    /// Each link's own keepalive and deadtime (SPEC §7.7), `None` for the global ones: the
    /// link sends every keepalive (the serial cable every two) and is down after its
    /// deadtime of silence.
    pub link_timing: [Option<(Duration, Duration)>; 3],
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
            groups: vec![GroupCfg { home: 0, auto_failback: false, resources: 2 }],
            restart_limit: RestartLimit { count: 2, window: Duration::from_secs(60) },
            chaos: false,
            delay_ms: 5,
            jitter_ms: 0,
            action_ms: (100, 100),
            fence_ms: (500, 500),
            second_boot: Duration::ZERO,
            mutation: Mutation::None,
            reboot_ms: (2000, 2000),
            // Instant probes keep the scenario timelines about the failover decisions.
            probe_ms: Some(0),
            adversary: false,
            foreign_same_key: false,
            skip_freshness: false,
            unarmed: None,
            // The tables of tests/core_scenarios.rs predate `fence_delay`: no delay, and the
            // fence resets the peer as it returns (tests/sim.rs sets its own).
            fence_delay: Duration::ZERO,
            fence_commit_ms: (500, 500),
            fence_act_ms: (0, 0),
            start_partitioned: None,
            link_timing: [None; 3],
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
            groups: vec![GroupCfg {
                home: 0,
                auto_failback: rng.chance(50),
                resources: rng.range(1, 4) as u8,
            }],
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
            mutation: Mutation::None,
            reboot_ms: (2000, 12_000),
            probe_ms: None,
            adversary: true,
            foreign_same_key: false,
            skip_freshness: false,
            unarmed: None,
            fence_delay: Duration::ZERO,
            fence_commit_ms: (0, 0),
            fence_act_ms: (0, 0),
            start_partitioned: None,
            link_timing: [None; 3],
        };
        // Drawn last, so that every other choice of a seed stays what it was.
        if fence == FenceMode::Watchdog && rng.chance(25) {
            cfg.unarmed = Some(rng.range(0, 1) as usize);
        }
        let dt = cfg.deadtime().total_millis();
        cfg.fence_delay = if rng.chance(80) {
            cfg.deadtime()
        } else {
            Duration::from_millis(rng.range(dt, 2 * dt))
        };
        cfg.fence_commit_ms = (rng.range(5, 50), rng.range(50, dt * 15 / 100));
        cfg.fence_act_ms = (0, rng.range(0, dt * 15 / 100));
        // Machines that boot in moments (VMs, the namespace lab): a fence's reboot brings the
        // peer's next run before the agent returns.
        if rng.chance(30) {
            cfg.reboot_ms = (300, 3000);
        }
        if rng.chance(10) {
            cfg.start_partitioned = Some(Duration::from_millis(rng.range(2000, 60_000)));
            if rng.chance(50) {
                cfg.second_boot = Duration::from_millis(rng.range(0, 100));
            }
        }
        cfg.groups = Config::random_groups(seed, cfg.groups[0]);
        cfg.link_timing = Config::random_link_timing(seed, keepalive);
        cfg
    }

    /// Each link's own timing for seed `seed` (SPEC §7.7), from a generator of its own so
    /// that every other choice of a seed stays what it was: the global timing everywhere in
    /// three seeds of four; else each link has its own with even odds: a keepalive of half,
    /// once or one and a half times the global one, and a deadtime of 3 to 6 send intervals
    /// (a fast link judged well before the global deadtime, a slow one well after).
    fn random_link_timing(seed: u64, keepalive: Duration) -> [Option<(Duration, Duration)>; 3] {
        let mut rng = Rng::new(seed.wrapping_mul(0xd6e8_feb8_6659_fd93).wrapping_add(0x6c69_6e6b));
        let mut timing = [None; 3];
        if !rng.chance(25) {
            return timing;
        }
        for (link, t) in timing.iter_mut().enumerate() {
            if rng.chance(50) {
                let k = keepalive.total_millis() * rng.pick(&[1, 2, 3]) / 2;
                let interval = if link == 0 { 2 * k } else { k };
                let dead = interval * rng.pick(&[3, 4, 5, 6]);
                *t = Some((Duration::from_millis(k), Duration::from_millis(dead)));
            }
        }
        timing
    }

    /// The groups of seed `seed` (SPEC §7.1), from a generator of their own so that every
    /// other choice of a seed stays what it was: one group in half the seeds (the first
    /// group's failback and resources drawn as before there were groups), else 2 to 8, each
    /// with a random home and failback and 1 to 4 resources (at most 32 in all).
    fn random_groups(seed: u64, first: GroupCfg) -> Vec<GroupCfg> {
        let mut rng = Rng::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(0x6772_6f75));
        let count = if rng.chance(50) { 1 } else { rng.pick(&[2, 2, 2, 3, 3, 4, 5, 6, 7, 8]) };
        let mut groups = vec![GroupCfg { home: rng.range(0, 1) as u8, ..first }];
        for _ in 1..count {
            groups.push(GroupCfg {
                home: rng.range(0, 1) as u8,
                auto_failback: rng.chance(50),
                resources: rng.range(1, 4) as u8,
            });
        }
        groups
    }

    /// Resources in all groups.
    pub fn resources(&self) -> u8 {
        self.groups.iter().map(|g| g.resources).sum()
    }

    /// The flat resource indices of group `g`.
    pub fn group_range(&self, g: usize) -> std::ops::Range<usize> {
        let first: usize = self.groups[..g].iter().map(|c| usize::from(c.resources)).sum();
        first..first + usize::from(self.groups[g].resources)
    }

    /// The group of flat resource index `index`.
    pub fn group_of(&self, index: u8) -> usize {
        let mut end = 0u8;
        for (g, c) in self.groups.iter().enumerate() {
            end += c.resources;
            if index < end {
                return g;
            }
        }
        self.groups.len() - 1
    }

    /// The longest a fence command takes to reset the peer from its start.
    pub fn fence_kill_max(&self) -> Duration {
        Duration::from_millis(self.fence_commit_ms.1 + self.fence_act_ms.1)
    }

    /// The longest a fence command takes to return.
    pub fn fence_max(&self) -> Duration {
        Duration::from_millis(self.fence_ms.1.max(self.fence_commit_ms.1 + self.fence_act_ms.1))
    }

    /// How long a pair connected both ways takes at most to hear each other (a restart's
    /// handshake, an old run's frames to outlive): the bound of the oracle's hearing check.
    pub fn hearing_bound(&self) -> Duration {
        self.peer_deadtime().saturating_mul(2)
            + self.max_link_interval().saturating_mul(2)
            + self.max_delay().saturating_mul(4)
    }

    /// Node `n`'s armed watchdog timeout, if any.
    pub fn watchdog_of(&self, n: usize) -> Option<Duration> {
        if self.unarmed == Some(n) { None } else { self.watchdog }
    }

    /// The global deadtime.
    pub fn deadtime(&self) -> Duration {
        self.keepalive.saturating_mul(5)
    }

    /// The longest link deadtime (SPEC §7.7): a peer is found dead at the latest this long
    /// after its last frame. The global deadtime when no link has its own timing: every
    /// window of the oracle about noticing a death takes it.
    pub fn peer_deadtime(&self) -> Duration {
        (0..3).map(|i| self.link_params(i).dead_after).max().unwrap_or(self.deadtime())
    }

    /// The ping echo interval, as the daemon takes it (`health::reach::ping_interval`).
    pub fn ping_interval(&self) -> Duration {
        reach::ping_interval(self.peer_deadtime())
    }

    /// A ping node is lost after this long without a reply (`health::reach::PING_WINDOW`).
    pub fn ping_window(&self) -> Duration {
        self.ping_interval().saturating_mul(u64::from(PING_WINDOW))
    }

    /// The S2 window of fence watchdog (`health::self_fence`) with node `holder` isolated and
    /// the other surviving: the survivor's wait is its real core's (`Node::fence_wait`, the
    /// holder's advertised timeout heard), the holder's ping cadence the real one. `None`
    /// when no wait can fence the holder (it has no armed watchdog).
    pub fn s2_window(&self, holder: usize) -> Option<(Window, Timing)> {
        self.watchdog_of(holder)?;
        let t = self.s2_timing(holder);
        Some((Window::of(&t), t))
    }

    /// The timings of the S2 window with node `holder` isolated (zero for a watchdog it has
    /// not, or a wait that cannot fence it).
    pub fn s2_timing(&self, holder: usize) -> Timing {
        let holder_watchdog = self.watchdog_of(holder).unwrap_or(Duration::ZERO);
        let mut params = self.params(1 - holder as u8, 0);
        params.peer_watchdog_timeout_ms = Some(holder_watchdog.total_millis() as u32);
        let core = Node::new(params, Instant::ZERO);
        let links = (0..3).map(|i| self.link_params(i));
        Timing {
            keepalive: self.keepalive,
            deadtime: self.peer_deadtime(),
            peer_deadtime: self.peer_deadtime(),
            survivor_silence: links
                .map(|l| l.dead_after.saturating_sub(l.send_interval))
                .max()
                .unwrap_or_default(),
            stall_after: core.stall_threshold(),
            delay_max: self.max_delay(),
            holder_watchdog,
            fence_wait: core.fence_wait().unwrap_or(Duration::ZERO),
        }
    }

    /// SPEC §3 and the core's docs: under fence watchdog the survivor waits the peer's
    /// watchdog timeout W plus the margin M = deadtime + 2 x the longest link interval +
    /// 2 x keepalive, with the longest link deadtime. The oracle computes it from the
    /// configuration, not from the core.
    pub fn watchdog_wait(&self) -> Duration {
        self.watchdog
            .unwrap_or(Duration::ZERO)
            .saturating_add(self.peer_deadtime())
            .saturating_add(self.max_link_interval().saturating_mul(2))
            .saturating_add(self.keepalive.saturating_mul(2))
    }

    /// The longest a stop of the whole group `g` takes, its action in flight included (each
    /// group runs its own actions: the groups stop side by side).
    pub fn stop_time(&self, g: usize) -> Duration {
        Duration::from_millis(self.action_ms.1).saturating_add(self.group_action_time(g))
    }

    pub fn link_params(&self, link: usize) -> LinkParams {
        let (keepalive, deadtime) =
            self.link_timing[link].unwrap_or((self.keepalive, self.deadtime()));
        // The serial cable is slower than the Ethernet links.
        let send_interval = if link == 0 { keepalive.saturating_mul(2) } else { keepalive };
        LinkParams {
            send_interval,
            // Warned at the global fraction of the deadtime (3/5), as `check` scales it.
            warn_after: Duration::from_millis(deadtime.total_millis() * 3 / 5)
                .max(send_interval.saturating_mul(2)),
            dead_after: deadtime,
        }
    }

    /// The longest send interval of a link (the serial cable's).
    pub fn max_link_interval(&self) -> Duration {
        (0..3).map(|i| self.link_params(i).send_interval).max().unwrap_or(self.keepalive)
    }

    pub fn max_delay(&self) -> Duration {
        Duration::from_millis(self.delay_ms + self.jitter_ms)
    }

    /// The longest the whole group `g` takes to stop (or start).
    pub fn group_action_time(&self, g: usize) -> Duration {
        Duration::from_millis(self.action_ms.1 * u64::from(self.groups[g].resources))
    }

    /// Node `me`'s `Params` of every group.
    pub fn group_params(&self, me: u8) -> Vec<Params> {
        (0..self.groups.len()).map(|g| self.params(me, g)).collect()
    }

    /// Node `me`'s `Params` of group `g`: the world's, with the group's home, failback and
    /// resources.
    pub fn params(&self, me: u8, g: usize) -> Params {
        let group = self.groups[g];
        let mut links = heapless::Vec::new();
        for i in 0..3 {
            let _ = links.push(self.link_params(i));
        }
        Params {
            me,
            peer: 1 - me,
            home: group.home,
            keepalive: self.keepalive,
            warntime: self.keepalive.saturating_mul(3),
            deadtime: self.deadtime(),
            // Twice the longest deadtime, as `check` defaults it.
            initdead: self.peer_deadtime().saturating_mul(2),
            auto_failback: group.auto_failback,
            fence: self.fence,
            fence_delay: self.fence_delay,
            start_unclean: false,
            watchdog_timeout: self.watchdog_of(usize::from(me)),
            peer_watchdog_timeout_ms: None,
            resources: group.resources,
            drbd: false,
            monitor_interval: Duration::from_secs(1),
            restart_limit: self.restart_limit,
            links,
            ping_configured: true,
            start_standby: false,
            start_self_fencing: false,
            config_digest: [7; 8],
            sim_mutation: self.mutation,
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
    /// SIGKILL of the daemon, started again at once: what it ran keeps running (an unclean
    /// stop: no clean-exit marker).
    Restart(usize),
    /// A graceful stop of a daemon that holds nothing and a start at once (`systemctl restart`
    /// of a standby node): a clean exit.
    CleanRestart(usize),
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
    /// The node's port on the service LAN goes down (`false`) or up: the LAN link and every
    /// ping node are behind it.
    LanPort(usize, bool),
    /// The ping nodes themselves stop (`false`) or start answering.
    PingNodes(bool),
    /// Every medium between the nodes fails both ways, the LAN ports stay up: the residual
    /// case of SPEC §3 when both reach a ping node.
    Partition,
    /// Node `n` loses every cable: its LAN port and both directions of every other link.
    Isolate(usize),
    /// Every cut and port is mended.
    Reconnect,
}

#[derive(Clone, Copy, Debug)]
enum Ev {
    Deliver {
        to: usize,
        link: usize,
        repr: Repr,
    },
    /// A recorded frame the adversary plays back.
    Replayed {
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
    /// The fence command of `node` reaches the peer's fence device (if `node` still runs).
    FenceCommit {
        node: usize,
        inc: u64,
        started: Instant,
    },
    /// The fence device resets `target`, as `by` asked when its fence committed at `committed`.
    FenceAct {
        target: usize,
        by: usize,
        committed: Instant,
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
    /// The first loop iteration after a long stall: petting resumes if the core allows it.
    PetResume {
        node: usize,
        inc: u64,
    },
    /// A hung node's hang is over (checked in `wake_hung`).
    Wake,
    /// The machine of an exited daemon reboots: what it held is freed, the daemon starts.
    Reboot(usize, u64),
    /// A machine that went off (crash, fence, watchdog) boots again, unless it already did.
    PowerOn(usize, u64),
    /// The node's next ping echo round is due (`Reach::next_deadline`).
    PingSend {
        node: usize,
        inc: u64,
    },
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

/// What the world knows of one group on one node (SPEC §7.1: each group has its own owner,
/// restarts and handovers, and runs its own resource actions).
#[derive(Clone, Debug)]
pub struct SimGroup {
    /// The group's resource action in flight (flat index): one per group at a time.
    pub in_flight: Option<(u8, Action)>,
    /// The operator's standing intent for this group as the daemon keeps it: what the last
    /// node-wide command (`standby`, `online`, `takeover`, maintenance) or the group's own
    /// (`move`, `takeover GROUP`) left.
    pub intent: Intent,
    /// The last `takeover` (node-wide or of this group) asked of the node.
    pub takeover_at: Option<Instant>,
    /// The last resource failure of the group (a failed monitor or start).
    pub failure_at: Option<Instant>,
    /// The group's `restart_limit` window (README): when its first failure happened and how
    /// many failures it holds, since the last start or cleanup.
    pub fail_window: Option<(Instant, u32)>,
    /// More failures than `restart_limit` allows within its window happened: the node may
    /// not run this group until a cleanup or a restart (SPEC §3).
    pub exhausted: bool,
    /// A stop of the group failed: it is failed (holding) here until a cleanup or a restart.
    pub stop_failed: bool,
    /// The last `cleanup` of the group (of all, or of one of its resources).
    pub cleanup_at: Option<Instant>,
    /// The group's role as the world last saw it.
    pub last_role: Role,
    /// The last moment the group was starting or active here.
    pub last_runs_at: Option<Instant>,
    /// The last moment the group's resources were held here (the world's truth), or its role
    /// held it (what the frames show).
    pub held_at: Option<Instant>,
}

impl SimGroup {
    fn new() -> SimGroup {
        SimGroup {
            in_flight: None,
            intent: Intent::None,
            takeover_at: None,
            failure_at: None,
            fail_window: None,
            exhausted: false,
            stop_failed: false,
            cleanup_at: None,
            last_role: Role::Exited,
            last_runs_at: None,
            held_at: None,
        }
    }
}

pub struct SimNode {
    pub core: Option<Core>,
    pub incarnation: u64,
    pub power: Power,
    pub deadline: Instant,
    /// What each resource really is, by flat index (every group's).
    pub truth: Vec<Truth>,
    /// Each group's own state here.
    pub groups: Vec<SimGroup>,
    /// The fence command under way: one for the node, whatever groups need it.
    pub fence_in_flight: bool,
    /// The health this node's daemon reports to its core: `sensors` plus `Health::PING` while
    /// its ping driver judges the ping nodes lost.
    pub health: Health,
    /// Sensor, RAID and check bits of the machine (chaos sets them).
    pub sensors: Health,
    /// What its ping judge (`health::reach`) said last (true: some ping node answers).
    pub ping_judged: bool,
    /// Its ping judge, new at every daemon start, fed the echoes the world answers.
    pub reach: Option<Reach>,
    /// When its next echo round is scheduled (`Ev::PingSend`).
    pub ping_next: Option<Instant>,
    /// The standing node-wide admin intent as the operator left it (the world's own record;
    /// each group's, which `move` and `takeover GROUP` change too, is in `groups`).
    pub intent: Intent,
    /// When the daemon last started.
    pub booted_at: Instant,
    /// The last moment it was unhealthy (health reported, or ping lost in the world).
    pub unhealthy_at: Option<Instant>,
    /// The core refused the admin command just fed (`Output::AdminAnswer`).
    pub admin_refused: bool,
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
    /// The highest incarnation of the peer its statedir records (`peer-incarnation`).
    pub peer_inc_stored: Option<u64>,
    /// Its statedir says it was self-fencing (`self-fence`).
    pub self_fence_stored: bool,
    /// When its current (or last) hang began.
    pub hung_since: Instant,
    /// Frames this node sent, as the adversary recorded them (when, link, frame).
    pub sent: std::collections::VecDeque<(Instant, usize, Repr)>,
    /// Inputs that arrived while hung (action and fence results), delivered on waking.
    deferred: Vec<Deferred>,
    /// The next start of every resource here fails (until told otherwise).
    pub starts_fail: bool,
    /// The next stop here, of whatever group, fails.
    pub stop_fails: bool,
    /// The last moment some group of it was fencing its peer (its frames say it takes over).
    pub fencing_at: Option<Instant>,
    pub resource_failures: u64,
    pub shutdown_requested: bool,
    /// Its last run ended in a graceful exit that left nothing running: the statedir's
    /// clean-exit marker.
    pub exited_clean: bool,
    /// This boot may fence before it hears its peer: it followed a clean exit, or it is the
    /// first (its statedir is new, or was lost).
    pub boot_clean: bool,
    /// Since this boot, while both nodes ran: a link carried the peer's frames to it, and one
    /// carried its own to the peer (at the same moment or not): it may have heard the peer.
    pub carried_in: bool,
    pub carried_out: bool,
    /// Since this boot the pair was connected both ways for the hearing bound: it surely
    /// heard its peer (the hearing check holds the daemon to that).
    pub met: bool,
    /// The peer's frames reach it now (some link carries them, both nodes running).
    pub reached: bool,
    /// Since this boot, the operator vouched its peer down (`takeover --force`).
    pub vouched: bool,
    /// Since this boot, when the operator last let it take part again (`online` after
    /// `standby` or `move`, maintenance off): from then on it may fence, as after a start.
    pub rejoined_at: Option<Instant>,
    /// When a fence reset this machine last (it was up or hung).
    pub fenced_at: Option<Instant>,
    /// Its fence command that committed last: when, and, when that fence ran on a timeline of
    /// its own, since when (`World::own_timeline`).
    pub committed: Option<(Instant, Option<Instant>)>,
    /// Its daemon hung since this boot (its start-up no longer keeps time with its peer's).
    pub hung_since_boot: bool,
    /// When its daemon last woke from a hang, and whether the fence command under way (or
    /// last) was started at such a wake, or after one in the partition event under way
    /// (`check_mutual_kill`).
    pub woke_at: Option<Instant>,
    pub fence_after_hang: bool,
    /// The fence command under way committed and the device acted (its result is `ok`).
    pub fence_ok: bool,
}

impl SimNode {
    /// It may have heard its peer since its boot (`carried_in` and `carried_out`).
    pub fn could_hear(&self) -> bool {
        self.carried_in && self.carried_out
    }

    /// The daemon has run for at least `d` at `now`.
    pub fn now_booted_for(&self, now: Instant, d: Duration) -> bool {
        now >= self.booted_at + d
    }
}

#[derive(Clone, Copy, Debug)]
pub struct SimLink {
    /// cut[d]: direction d → other is cut.
    pub cut: [bool; 2],
    pub loss: u64,
}

/// A role change of one group, for scenario timelines.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Change {
    pub at_ms: u64,
    pub node: usize,
    pub group: usize,
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
    /// L1 watches (the active node died with a healthy, ready survivor) that something the
    /// world knows later excused: the survivor crashed, hung, restarted, fell ill, was told to
    /// stand by, its starts or fences failed, or the dead node came back first.
    pub l1_skipped: u64,
    /// Of those: the dead node came back first.
    pub l1_skipped_back: u64,
    /// Deaths of the active node that were no L1 case: the survivor was not healthy and
    /// ready (down, ill, told to stand by, its starts or fences failing).
    pub l1_not_applicable: u64,
    /// L2 stops judged (an active node with a healthy peer connected for a deadtime).
    pub l2_checked: u64,
    /// Stops of an active node that were no L2 case: the peer was not healthy or not
    /// connected for a whole deadtime.
    pub l2_not_applicable: u64,
    /// Peers that died having advertised no armed watchdog (fence watchdog): not fenced.
    pub unfenceable_deaths: u64,
    /// Operator commands the core refused (a `takeover` that health forbids).
    pub admin_refused: u64,
    /// Holders whose S2 window of fence watchdog was weighed (`check_s2_window`).
    pub s2_windows: u64,
    /// Nodes cut off from their peer and every ping node, judged on their release
    /// (`check_isolated_release`).
    pub isolations_judged: u64,
    /// Live machines reset by a fence (the fenced node reboots unclean).
    pub fence_kills: u64,
    /// Boots after an unclean stop under a fence command (the wait for the peer).
    pub unclean_boots: u64,
    /// Fence commands that waited `fence_delay` (or a multiple) before they ran.
    pub fence_delays: u64,
    /// Resets of both nodes by each other's fences that the documented residual excused:
    /// clean starts in a partition, apart in time, neither having heard the other.
    pub mutual_kills_excused: u64,
    /// Pairs connected both ways for the hearing bound after a fence reset one of them: the
    /// survivor heard the fenced node's next run.
    pub reheard_after_kill: u64,
    /// `takeover --force` on a node whose peer was down.
    pub forced_takeovers: u64,
    /// Resets of both nodes where one fencer hung in the partition (`check_mutual_kill`: a
    /// limitation of the core).
    pub mutual_kills_after_hang: u64,
    /// Seeds with several groups, and of those, seeds where both nodes were active at once,
    /// each for its own groups (active/active).
    pub multi_group_seeds: u64,
    pub active_active: u64,
    /// Seeds whose links have their own timing (SPEC §7.7), and deaths of a peer found
    /// there, each judged against every link's own deadtime (`check_peer_dead`).
    pub per_link_seeds: u64,
    pub per_link_deaths: u64,
    /// Deaths of a peer while the survivor ran some group (`check_keep` watches), and stops
    /// of such a group the check judged.
    pub keeps_watched: u64,
    pub keep_stops_judged: u64,
    /// `move` and `takeover GROUP` commands that reached a daemon, and of those, the refused.
    pub group_admin: u64,
    pub group_admin_refused: u64,
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
        self.l1_skipped += o.l1_skipped;
        self.l1_skipped_back += o.l1_skipped_back;
        self.l1_not_applicable += o.l1_not_applicable;
        self.l2_checked += o.l2_checked;
        self.l2_not_applicable += o.l2_not_applicable;
        self.unfenceable_deaths += o.unfenceable_deaths;
        self.admin_refused += o.admin_refused;
        self.s2_windows += o.s2_windows;
        self.isolations_judged += o.isolations_judged;
        self.fence_kills += o.fence_kills;
        self.unclean_boots += o.unclean_boots;
        self.fence_delays += o.fence_delays;
        self.mutual_kills_excused += o.mutual_kills_excused;
        self.reheard_after_kill += o.reheard_after_kill;
        self.forced_takeovers += o.forced_takeovers;
        self.mutual_kills_after_hang += o.mutual_kills_after_hang;
        self.multi_group_seeds += o.multi_group_seeds;
        self.per_link_seeds += o.per_link_seeds;
        self.per_link_deaths += o.per_link_deaths;
        self.active_active += o.active_active;
        self.keeps_watched += o.keeps_watched;
        self.keep_stops_judged += o.keep_stops_judged;
        self.group_admin += o.group_admin;
        self.group_admin_refused += o.group_admin_refused;
    }
}

/// A node cut off from its peer and every ping node (`check_isolated_release`).
#[derive(Clone, Copy, Debug)]
struct Isolation {
    since: Instant,
    /// Something the world did since excuses it from releasing in time ...
    excused: bool,
    /// ... or these groups of it (a bit each).
    groups_excused: u8,
    /// Its deadline passed un-excused (counted once).
    judged: bool,
}

/// L1 for one group: its active node died, the survivor must be active by the deadline.
struct L1Watch {
    since: Instant,
    deadline: Instant,
    /// The deadline if the survivor holds a group before it notices the death (a grant the
    /// dead node sent before it died arrives after: SIM seeds 780293, 808208), and until
    /// when that counts; `None` once the deadline counts the slots of a holder.
    held_deadline: Option<(Instant, Instant)>,
    survivor: usize,
    /// The survivor was `active` at some step since the death.
    met: bool,
    /// Something disturbed the watch (then it is not checked) ...
    disturbed: bool,
    /// ... and it was the dead node coming back.
    back: bool,
}

/// A survivor's groups that ran when its peer died (`check_keep`): the death must stop none
/// of them.
#[derive(Clone, Copy, Debug)]
struct KeepWatch {
    since: Instant,
    /// The groups that were active here, a bit each.
    groups: u8,
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
    /// Per group: since when both nodes hold it, and whether the residual case excuses it (S2).
    overlap_since: Vec<Option<Instant>>,
    overlap_excused: Vec<bool>,
    /// Per group: since when both nodes run it (starting or active: S1).
    runs_overlap_since: Vec<Option<Instant>>,
    /// The last moment of the residual case of SPEC §3: every medium fails both ways while
    /// both nodes reach a ping node.
    residual_at: Option<Instant>,
    /// Each node's port on the service LAN.
    pub lan_up: [bool; 2],
    /// The ping nodes answer.
    pub ping_up: bool,
    /// Until when the adversary replays recorded frames at each node.
    replaying_until: [Instant; 2],
    /// A replayed frame is being delivered (the recorder does not record it again).
    replaying: bool,
    /// Per group: it is in maintenance on a node (the operator answers for what it holds),
    /// and when its last maintenance ended.
    group_maintenance: Vec<bool>,
    maintenance_ended: Vec<Option<Instant>>,
    /// When a hung node last woke up.
    last_wake: Option<Instant>,
    /// Per node under fence watchdog: since when it is cut off from its peer and every ping
    /// node, and whether something the world did since excuses it from releasing in time
    /// (`check_isolated_release`).
    isolated_since: [Option<Isolation>; 2],
    connected_since: Option<Instant>,
    /// When the pair was last connected (the partition event under way began).
    disconnected_at: Option<Instant>,
    /// Per link: since when it works both ways with both daemons running (S1's deadline).
    link_works_since: [Option<Instant>; 3],
    /// Per group: the L1 watch under way.
    l1: Vec<Option<L1Watch>>,
    /// Per node as survivor: the groups it ran when its peer died (`check_keep`).
    keep: [Option<KeepWatch>; 2],
    /// Each group's flat resource indices (`Config::group_range`), and each resource's group.
    ranges: Vec<std::ops::Range<usize>>,
    group_of: Vec<u8>,
    pub steps: u64,
    pub notifies: u64,
    /// What the run exercised (so a test can insist that the simulator covers the ground).
    pub coverage: Coverage,
    outputs: Vec<Output>,
    /// The partition event under way (the pair not connected): live machines fenced in it,
    /// and how many it may take (one, and one more for each start that may fence at once or
    /// node that may have heard its peer again meanwhile).
    event_kills: u64,
    event_allowance: u64,
    /// A fence reset a live machine since the pair was last connected: the hearing check
    /// counts it as a re-hearing.
    killed_since_connected: bool,
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
            truth: vec![Truth::Stopped; usize::from(cfg.resources())],
            groups: vec![SimGroup::new(); cfg.groups.len()],
            fence_in_flight: false,
            health: Health::OK,
            sensors: Health::OK,
            ping_judged: true,
            reach: None,
            ping_next: None,
            intent: Intent::None,
            booted_at: Instant::ZERO,
            unhealthy_at: None,
            petting: true,
            watchdog_fires: None,
            tx_seq: 0,
            wire_inc: 1000,
            rx: None,
            statedir_lost: false,
            peer_watchdog_stored: None,
            peer_inc_stored: None,
            self_fence_stored: false,
            hung_since: Instant::ZERO,
            admin_refused: false,
            sent: std::collections::VecDeque::new(),
            deferred: Vec::new(),
            starts_fail: false,
            stop_fails: false,
            fencing_at: None,
            resource_failures: 0,
            shutdown_requested: false,
            exited_clean: false,
            boot_clean: true,
            carried_in: false,
            carried_out: false,
            met: false,
            reached: false,
            vouched: false,
            rejoined_at: None,
            fenced_at: None,
            committed: None,
            woke_at: None,
            fence_after_hang: false,
            hung_since_boot: false,
            fence_ok: false,
        };
        let groups = cfg.groups.len();
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
            overlap_since: vec![None; groups],
            overlap_excused: vec![false; groups],
            runs_overlap_since: vec![None; groups],
            residual_at: None,
            lan_up: [true; 2],
            ping_up: true,
            replaying_until: [Instant::ZERO; 2],
            replaying: false,
            group_maintenance: vec![false; groups],
            maintenance_ended: vec![None; groups],
            last_wake: None,
            isolated_since: [None; 2],
            connected_since: Some(Instant::ZERO),
            disconnected_at: None,
            link_works_since: [None; 3],
            l1: (0..groups).map(|_| None).collect(),
            keep: [None; 2],
            ranges: (0..groups).map(|g| cfg.group_range(g)).collect(),
            group_of: (0..cfg.resources()).map(|i| cfg.group_of(i) as u8).collect(),
            steps: 0,
            notifies: 0,
            coverage: Coverage::default(),
            outputs: Vec::with_capacity(64),
            event_kills: 0,
            event_allowance: 1,
            killed_since_connected: false,
            cfg,
        };
        w.coverage.multi_group_seeds = u64::from(groups > 1);
        w.coverage.per_link_seeds = u64::from(w.cfg.link_timing.iter().any(Option::is_some));
        if let Some(until) = w.cfg.start_partitioned {
            for link in &mut w.links {
                link.cut = [true; 2];
            }
            w.schedule(Instant::ZERO + until, Ev::Happen(Happening::Reconnect));
        }
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
        self.check_s2_window()?;
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
            Ev::Replayed { to, link, repr } => {
                self.replaying = true;
                let result = self.deliver(to, link, repr);
                self.replaying = false;
                result
            }
            Ev::DeliverBytes { to, link, bytes, len } => {
                self.deliver_bytes(to, link, &bytes[..len])
            }
            Ev::ActionDone { node, inc, index, action } => {
                if self.nodes[node].incarnation != inc || self.nodes[node].core.is_none() {
                    return Ok(());
                }
                self.finish_action(node, index, action)
            }
            Ev::FenceCommit { node, inc, started } => self.commit_fence(node, inc, started),
            Ev::FenceAct { target, by, committed } => self.fence_act(target, by, committed),
            Ev::FenceDone { node, inc } => {
                if self.nodes[node].incarnation != inc || self.nodes[node].core.is_none() {
                    return Ok(());
                }
                self.finish_fence(node)
            }
            Ev::Wake => Ok(()),
            Ev::PetResume { node, inc } => {
                // The loop keeps time again: its lag is nil, the gate asks the core.
                let gate = self.cfg.watchdog_of(node).map(PetGate::for_timeout);
                let n = &mut self.nodes[node];
                let lag = loop_lag(self.now, self.now, self.now);
                let pets = gate.is_some_and(|g| g.may_pet(lag, n.petting));
                if n.incarnation == inc && n.power == Power::Up && pets {
                    n.watchdog_fires = None;
                }
                Ok(())
            }
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
                    // A survivor reset by its own watchdog is no longer a healthy survivor.
                    self.disturb_l1(node);
                    let back = self.now + self.reboot_time();
                    self.power_off(node, back);
                }
                Ok(())
            }
            Ev::PingSend { node, inc } => {
                let n = &self.nodes[node];
                // A hung loop sends nothing: it catches up when it wakes (`wake_hung`).
                let current = n.incarnation == inc && n.ping_next == Some(self.now);
                if !current || n.core.is_none() || n.power != Power::Up {
                    return Ok(());
                }
                self.ping_step(node)
            }
        }
    }

    /// Whether node `to` runs and can receive; if so, tells its receiver what its core holds
    /// of the peer, as the event loop does before each read.
    fn receiver_ready(&mut self, to: usize) -> bool {
        let n = &mut self.nodes[to];
        if n.power != Power::Up || n.rx.is_none() {
            return false;
        }
        let Some(core) = n.core.as_ref() else { return false };
        let (alive, recent) = (core.peer().alive, core.peer_heard_recently(self.now));
        if let Some(rx) = n.rx.as_mut() {
            rx.set_peer_alive(alive, recent);
        }
        true
    }

    /// Hands a frame to node `to`'s real receiver (after the tag, which the simulator
    /// skips for its own pair's frames), and what passes to its core.
    fn deliver(&mut self, to: usize, link: usize, repr: Repr) -> Result<(), String> {
        if !self.receiver_ready(to) {
            return Ok(());
        }
        // The adversary records what the receiver got. (A frame it kept from the receiver and
        // delivered late would be a delay, not a replay: it proves what it proved when it was
        // sent, and no receiver can tell; see `wire::session`.)
        if self.cfg.adversary && !self.replaying {
            let sender = &mut self.nodes[1 - to].sent;
            if sender.len() == RECORDED_MAX {
                sender.pop_front();
            }
            sender.push_back((self.now, link, repr));
        }
        let n = &mut self.nodes[to];
        let Some(rx) = n.rx.as_mut() else { return Ok(()) };
        let before = (rx.outgoing(), rx.stats().incarnation_resyncs);
        let result = rx.accept_for_simulation(repr);
        let changed = rx.outgoing() != before.0;
        let unfresh = rx.take_unfresh();
        // As the event loop does: the highest incarnation accepted goes to the statedir.
        if rx.peer_incarnation_max() > n.peer_inc_stored {
            n.peer_inc_stored = rx.peer_incarnation_max();
        }
        self.coverage.resyncs += rx.stats().incarnation_resyncs - before.1;
        if matches!(result, Err(RxError::Replay | RxError::OldRun)) {
            self.coverage.replays_dropped += 1;
        }
        match result {
            Ok(frame) => {
                tr!(
                    self,
                    "node {to}: rx link {} {:?} (inc {} {:?})",
                    LINK_NAMES[link],
                    short(&repr.payload),
                    repr.incarnation,
                    repr.session
                );
                self.input(to, Input::Frame { link: link as u8, frame: &frame })?;
            }
            Err(e) => tr!(
                self,
                "node {to}: dropped on link {}: {e} (inc {} {:?})",
                LINK_NAMES[link],
                repr.incarnation,
                repr.session
            ),
        }
        if let Some(payload) = unfresh {
            self.input(to, Input::Unfresh(payload))?;
        }
        // As the event loop does: a new challenge to echo (or of ours) goes out at once.
        if changed { self.input(to, Input::Handshake) } else { Ok(()) }
    }

    /// Hands bytes to node `to`'s real receiver, tag check included.
    fn deliver_bytes(&mut self, to: usize, link: usize, bytes: &[u8]) -> Result<(), String> {
        if !self.receiver_ready(to) {
            return Ok(());
        }
        let Some(rx) = self.nodes[to].rx.as_mut() else { return Ok(()) };
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
        let g = self.cfg.group_of(index);
        let outcome = {
            let n = &mut self.nodes[node];
            n.groups[g].in_flight = None;
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
        let probing = self.nodes[node].core.as_ref().is_some_and(|c| c.nodes()[g].probing());
        let counted = match action {
            Action::Monitor => outcome != Outcome::Ok && !probing,
            Action::Start => outcome != Outcome::Ok,
            Action::Stop => false,
        };
        let stop_failed = action == Action::Stop && matches!(outcome, Outcome::Failed(_));
        // A group's failures, restarts and failed stops are its own (SPEC §7.1).
        if counted || stop_failed {
            self.nodes[node].resource_failures += 1;
            self.nodes[node].groups[g].failure_at = Some(self.now);
            self.disturb_l1_group(node, g);
        }
        if stop_failed {
            self.nodes[node].groups[g].stop_failed = true;
        }
        if counted {
            let (now, limit) = (self.now, self.cfg.restart_limit);
            let group = &mut self.nodes[node].groups[g];
            // The first failure opens a window of `limit.window`; a failure at or after its
            // end opens the next one.
            let (opened, count) = match group.fail_window {
                Some((t, c)) if now.saturating_since(t) < limit.window => (t, c + 1),
                _ => (now, 1),
            };
            group.fail_window = Some((opened, count));
            if count > limit.count {
                group.exhausted = true;
            }
        }
        tr!(self, "node {node} g{g}: resource {index} {action:?} -> {outcome:?}");
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

    /// The fence command of `node` reaches the peer's fence device, if the machine of `node`
    /// still runs (a hung daemon's agent runs on): unless fences fail, the device resets the
    /// peer a moment later whatever becomes of `node`, and the command returns after that.
    fn commit_fence(&mut self, node: usize, inc: u64, started: Instant) -> Result<(), String> {
        let n = &self.nodes[node];
        if n.incarnation != inc || n.core.is_none() {
            return Ok(());
        }
        let ok = !self.fences_fail;
        let blind = self.own_timeline(node);
        self.nodes[node].fence_ok = ok;
        let act =
            Duration::from_millis(self.rng.range(self.cfg.fence_act_ms.0, self.cfg.fence_act_ms.1));
        if ok {
            self.nodes[node].committed = Some((self.now, blind));
            tr!(self, "node {node}: fence reaches node {}'s device (resets in {act})", 1 - node);
            let committed = self.now;
            self.schedule(self.now + act, Ev::FenceAct { target: 1 - node, by: node, committed });
        } else {
            self.disturb_l1(node);
        }
        let done = (started
            + Duration::from_millis(self.rng.range(self.cfg.fence_ms.0, self.cfg.fence_ms.1)))
        .max(self.now + act);
        self.schedule(done, Ev::FenceDone { node, inc });
        Ok(())
    }

    /// The fence device resets `target`'s machine, whatever its daemon is doing; a machine
    /// that was up (or hung) reboots after an unclean stop. The oracle's fence checks: no
    /// two nodes reset by each other's fences (a mutual kill), and no more resets in a
    /// partition event than it may take.
    fn fence_act(&mut self, target: usize, by: usize, committed: Instant) -> Result<(), String> {
        let live = matches!(self.nodes[target].power, Power::Up | Power::Hung(_))
            && self.nodes[target].core.is_some();
        tr!(self, "node {by}'s fence resets node {target} (live: {live})");
        if live {
            self.coverage.fence_kills += 1;
            self.event_kills += 1;
            self.killed_since_connected = true;
            self.check_mutual_kill(target, by, committed)?;
            if self.event_kills > self.event_allowance {
                return Err(format!(
                    "fences: {} live machines reset in one partition event (it may take {}): \
                     node {by} reset node {target}",
                    self.event_kills, self.event_allowance
                ));
            }
            self.nodes[target].fenced_at = Some(self.now);
        }
        let back = self.now + self.reboot_time();
        self.power_off(target, back);
        Ok(())
    }

    /// Whether the fence `node` commits now runs on a timeline of its own, which `fence_delay`
    /// cannot order against its peer's, and since when:
    /// - a clean start that has not surely heard its peer (links that worked a moment since
    ///   its boot may not have completed the handshake: SIM seed 289158): since its boot, or
    ///   since the operator let it take part again (`online`, maintenance off), which counts as
    ///   a start (SIM seed 365508: a standby home node put online in a partition fenced at
    ///   once, just as its peer's delay ran out).
    fn own_timeline(&self, node: usize) -> Option<Instant> {
        let n = &self.nodes[node];
        (n.boot_clean && !n.met).then(|| n.booted_at.max(n.rejoined_at.unwrap_or(Instant::ZERO)))
    }

    /// `by`, whose fence committed at `committed`, resets `target`: a mutual kill when a fence
    /// of `target` reset `by` after that commit (both commands were under way at once). The
    /// documented residual (README "Fence races and loops"): one of the two fenced as a clean
    /// start (or one the operator put online) in a partition, not having heard its peer since its boot, so nothing ordered its
    /// fence against the peer's; except two such starts within a keepalive of each other
    /// whose daemons did not hang since (SIM seed 280358: a hang of 4.5 s during one's
    /// start-up), which `fence_delay` orders as it orders two nodes that lose each other at
    /// once.
    fn check_mutual_kill(
        &mut self,
        target: usize,
        by: usize,
        committed: Instant,
    ) -> Result<(), String> {
        let Some(at) = self.nodes[by].fenced_at.filter(|at| *at >= committed) else {
            return Ok(());
        };
        let own_by = self.nodes[by].committed.and_then(|(t, own)| own.filter(|_| t == committed));
        let own_target = self.nodes[target].committed.and_then(|(_, own)| own);
        let (blind_by, blind_target) = (own_by.is_some(), own_target.is_some());
        let (a, b) = (own_by.unwrap_or(Instant::ZERO), own_target.unwrap_or(Instant::ZERO));
        let apart = a.saturating_since(b).max(b.saturating_since(a));
        let steady = !self.nodes[by].hung_since_boot && !self.nodes[target].hung_since_boot;
        let together = blind_by && blind_target && apart < self.cfg.keepalive && steady;
        if (blind_by || blind_target) && !together {
            self.coverage.mutual_kills_excused += 1;
            tr!(
                self,
                "MUTUAL KILL excused: a fence on a timeline of its own (starts {apart} apart)"
            );
            return Ok(());
        }
        // NOT A GUARANTEE OF THE CORE (found by SIM seeds 24865 and 363577, one group or
        // several alike: `known_limitation_a_hang_through_the_fence_delay_fences_on_waking` in
        // tests/sim.rs): `fence_delay` orders the two nodes' fences in time, and a node whose
        // loop hangs in the partition falls off that schedule: it notices the partition late
        // (the stall is taken out of its peer's silence), or fences the moment it wakes when
        // its delay ran out meanwhile; a peer whose own delay ends then fences too. Counted
        // and traced, not failed, until the core decides what a stall in a fence race means.
        if self.nodes[by].fence_after_hang || self.nodes[target].fence_after_hang {
            self.coverage.mutual_kills_after_hang += 1;
            tr!(self, "MUTUAL KILL after a hang: a fence of a node that hung in the partition");
            return Ok(());
        }
        Err(format!(
            "fences: both nodes reset by each other's fences (node {by} at {at} by node \
             {target}'s fence, node {target} now by node {by}'s, committed at {committed})"
        ))
    }

    fn finish_fence(&mut self, node: usize) -> Result<(), String> {
        let ok = std::mem::take(&mut self.nodes[node].fence_ok);
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
            Happening::Restart(n) | Happening::CleanRestart(n) => {
                if self.nodes[n].power == Power::Up && self.nodes[n].core.is_some() {
                    self.disturb_l1(n);
                    let nothing_held = self.nodes[n].truth.iter().all(|t| *t == Truth::Stopped);
                    self.nodes[n].exited_clean =
                        matches!(h, Happening::CleanRestart(_)) && nothing_held;
                    self.nodes[n].core = None;
                    return self.boot(n);
                }
                Ok(())
            }
            Happening::Shutdown(n) => {
                if self.nodes[n].power == Power::Up && self.nodes[n].core.is_some() {
                    // A stop that will fail keeps the node up, failed and holding: it has not
                    // died (its watchdog, or the peer's fence, ends it later).
                    if self.nodes[n].stop_fails {
                        self.disturb_l1(n);
                        let active = (0..self.cfg.groups.len())
                            .filter(|&g| self.role(n, g) == Some(Role::Active))
                            .count();
                        self.coverage.l1_not_applicable += active as u64;
                    } else {
                        self.note_death(n);
                    }
                    self.nodes[n].shutdown_requested = true;
                    return self.input(n, Input::Shutdown);
                }
                Ok(())
            }
            Happening::Admin(n, cmd) => {
                // The operator vouches that the peer is down only when it is: off, and
                // running nothing (else it is an ordinary `takeover`).
                let peer = &self.nodes[1 - n];
                let down = matches!(peer.power, Power::Down(_)) && !self.holds(1 - n);
                let cmd = match cmd {
                    Admin::TakeoverForce if !down => Admin::Takeover,
                    cmd => cmd,
                };
                if cmd == Admin::TakeoverForce && self.nodes[n].core.is_some() {
                    self.nodes[n].vouched = true;
                    self.coverage.forced_takeovers += 1;
                }
                match cmd {
                    Admin::Online | Admin::Cleanup(_) => {}
                    Admin::Move(g) | Admin::TakeoverGroup(g) => {
                        self.disturb_l1_group(n, usize::from(g));
                    }
                    _ => self.disturb_l1(n),
                }
                // A command reaches a daemon that runs and is not hung (else it times out and
                // the operator sees it fail).
                // What the operator asked is noted first (a `standby` stops the group in this
                // very input); a refused command changed nothing, so its note is taken back.
                let before = self.intents(n);
                let up = self.nodes[n].core.is_some() && self.nodes[n].power == Power::Up;
                if up {
                    self.note_admin(n, cmd);
                }
                self.nodes[n].admin_refused = false;
                let result = self.input_if_up(n, Input::Admin(cmd));
                let refused = std::mem::take(&mut self.nodes[n].admin_refused);
                if refused {
                    self.coverage.admin_refused += 1;
                    self.set_intents(n, before);
                }
                if up && matches!(cmd, Admin::Move(_) | Admin::TakeoverGroup(_)) {
                    self.coverage.group_admin += 1;
                    self.coverage.group_admin_refused += u64::from(refused);
                }
                result
            }
            Happening::Health(n, h) => {
                if h != Health::OK {
                    self.disturb_l1(n);
                }
                self.nodes[n].sensors = h;
                self.report_health(n)
            }
            Happening::LanPort(n, up) => {
                self.lan_up[n] = up;
                self.ping_world_changed(n);
                Ok(())
            }
            Happening::PingNodes(up) => {
                self.ping_up = up;
                self.ping_world_changed(0);
                self.ping_world_changed(1);
                Ok(())
            }
            Happening::Partition | Happening::Isolate(_) | Happening::Reconnect => {
                let cut = h != Happening::Reconnect;
                for link in &mut self.links {
                    link.cut = [cut; 2];
                }
                if h == Happening::Partition {
                    // The LAN between the nodes fails, not their ports: the ping nodes stay
                    // reachable for both.
                } else {
                    for (n, up) in self.lan_up.iter_mut().enumerate() {
                        *up = h == Happening::Reconnect || h != Happening::Isolate(n);
                    }
                }
                self.ping_world_changed(0);
                self.ping_world_changed(1);
                Ok(())
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
                    self.disturb_l1_group(n, self.cfg.group_of(i));
                }
                Ok(())
            }
            Happening::StartsFail(n, fail) => {
                if fail {
                    self.disturb_l1(n);
                }
                self.nodes[n].starts_fail = fail;
                Ok(())
            }
            Happening::StopFails(n) => {
                // Under fence watchdog only its watchdog makes a node whose stop failed safe;
                // a node without an armed one is outside the contract (`run` refuses it, SPEC
                // §7.3), so its stops do not fail in the simulated world.
                let unarmed = self.cfg.fence == FenceMode::Watchdog && self.cfg.unarmed == Some(n);
                self.nodes[n].stop_fails = !unarmed;
                // A node still stopping for its shutdown whose stop now fails stays up, failed
                // and holding: it has not died after all.
                if self.nodes[n].core.is_some() {
                    for w in self.l1.iter_mut().flatten().filter(|w| w.survivor != n) {
                        w.disturbed = true;
                    }
                }
                Ok(())
            }
            Happening::FencesFail(fail) => {
                if fail && self.cfg.fence == FenceMode::External {
                    self.disturb_l1(0);
                    self.disturb_l1(1);
                }
                self.fences_fail = fail;
                Ok(())
            }
            Happening::Replay { to, count, oldest } => {
                // Under fence watchdog, frames that say the peer holds the group postpone a
                // takeover by waiting even unconfirmed (core docs): a replay may delay it.
                if self.cfg.fence == FenceMode::Watchdog {
                    self.disturb_l1(to);
                }
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

    /// The time a reset machine takes to boot its daemon again.
    fn reboot_time(&mut self) -> Duration {
        Duration::from_millis(self.rng.range(self.cfg.reboot_ms.0, self.cfg.reboot_ms.1))
    }

    /// Node `n` reaches a ping node: its LAN port is up and the ping nodes answer.
    pub fn reaches_ping(&self, n: usize) -> bool {
        self.lan_up[n] && self.ping_up
    }

    /// The world changed what node `n` can reach: its ping judge notices from the echoes
    /// (`ping_step`), as the real one does.
    fn ping_world_changed(&mut self, n: usize) {
        if !self.reaches_ping(n) {
            self.disturb_l1(n);
        }
    }

    /// The event loop tells the ping judge of every wake (`health_io::poll`), not only the
    /// echoes': its core's timer wakes (with links faster than the echoes, SPEC §7.7: a link's
    /// own keepalive, the stall threshold may be shorter than the echo interval, and a judge
    /// told only of the echoes' wakes would take each for a stall, SIM seed 321), and every
    /// other input too: a frame, a resource action's result, an admin command (`World::input`).
    /// A role change sends on every link at once and re-arms each link's next beat from
    /// there, so a run of resource results can leave the core's next timer wake further than
    /// the stall threshold from its last one while the real loop woke all along (SIM seed
    /// 817887: 668 ms between timer wakes, five results between them, against 666 ms; the
    /// judge restarted the ping silence and the isolated holder released 40 ms late).
    fn loop_wake(&mut self, n: usize) {
        let now = self.now;
        let node = &mut self.nodes[n];
        if node.power != Power::Up {
            return;
        }
        let (Some(core), Some(reach)) = (node.core.as_ref(), node.reach.as_mut()) else { return };
        if reach.handle_wake(now, core.stall_threshold()) {
            tr!(self, "node {n}: stalled: ping silence counts from now");
        }
    }

    /// What the event loop does for the ping nodes on a wake of node `n` (`health_io`): tell
    /// the judge of the wake (a stall restarts the silence), send the echoes due (answered at
    /// once by the ping node when the world lets node `n` reach it), and report the verdict.
    /// The loop's next wake for them is scheduled.
    fn ping_step(&mut self, n: usize) -> Result<(), String> {
        let (now, reaches) = (self.now, self.reaches_ping(n));
        let node = &mut self.nodes[n];
        let (Some(core), Some(reach)) = (node.core.as_ref(), node.reach.as_mut()) else {
            return Ok(());
        };
        if reach.handle_wake(now, core.stall_threshold()) {
            tr!(self, "node {n}: stalled: ping silence counts from now");
        }
        let node = &mut self.nodes[n];
        let Some(reach) = node.reach.as_mut() else { return Ok(()) };
        if reach.poll_send(now, Duration::ZERO) && reaches {
            reach.handle_reply(now, PING_NODE, now);
        }
        let (judged, next) = (reach.reachable(), reach.next_deadline());
        node.ping_next = Some(next);
        let inc = node.incarnation;
        self.schedule(next, Ev::PingSend { node: n, inc });
        if judged != self.nodes[n].ping_judged {
            self.nodes[n].ping_judged = judged;
            tr!(self, "node {n}: ping judge: the ping nodes reachable={judged}");
            return self.report_health(n);
        }
        Ok(())
    }

    /// Reports node `n`'s health (sensors plus its ping driver's judgement) to its core. A
    /// node that reaches its ping nodes again may take groups again: for the fence checks
    /// that counts as a start (`own_timeline`), as `online` does (SIM seeds 362499, 802094:
    /// clean starts into a partition, one of which could not run its group at `initdead` and
    /// could 1.5 s and 2.5 s later, and fenced at once, as its peer's one slot ran out).
    fn report_health(&mut self, n: usize) -> Result<(), String> {
        let now = self.now;
        let node = &mut self.nodes[n];
        let ping = if node.ping_judged { 0 } else { Health::PING };
        let health = Health(node.sensors.0 | ping);
        if health == node.health {
            return Ok(());
        }
        if node.health.has(Health::PING) && !health.has(Health::PING) {
            node.rejoined_at = Some(now);
        }
        node.health = health;
        if !matches!(node.power, Power::Up) {
            // A hung daemon reads its sensors again on waking (`wake_hung`).
            return Ok(());
        }
        self.input_if_up(n, Input::Health(health))
    }

    /// The operator's standing intents for node `n`, as the daemon keeps them (SPEC §1,
    /// §7.1): a node-wide command sets every group's as it sets the node's (`online` and
    /// maintenance off clear what they clear in each group); `move` and `takeover GROUP` set
    /// their group's only, and `cleanup RESOURCE` cleans its group.
    ///
    /// A group that may run again (out of standby or maintenance: `online`, maintenance off,
    /// and a `takeover`, which leaves both; its restarts cleaned up) counts as a start for the
    /// fence checks (`own_timeline`: SIM seed 44801, a `takeover` out of maintenance in a
    /// partition).
    fn note_admin(&mut self, n: usize, cmd: Admin) {
        let idle =
            |g: &SimGroup| g.exhausted || matches!(g.intent, Intent::Standby | Intent::Maintenance);
        let before: Vec<bool> = self.nodes[n].groups.iter().map(idle).collect();
        self.note_intents(n, cmd);
        let node = &mut self.nodes[n];
        if node.groups.iter().zip(before).any(|(g, was)| was && !idle(g)) {
            node.rejoined_at = Some(self.now);
        }
    }

    fn note_intents(&mut self, n: usize, cmd: Admin) {
        let now = self.now;
        let (count, total) = (self.cfg.groups.len(), self.cfg.resources());
        let cleaned = match cmd {
            Admin::Cleanup(Some(i)) if i < total => Some(self.cfg.group_of(i)),
            _ => None,
        };
        let node = &mut self.nodes[n];
        let takeover = |g: &mut SimGroup| {
            g.intent = Intent::Takeover;
            g.takeover_at = Some(now);
        };
        match cmd {
            Admin::Standby => {
                node.intent = Intent::Standby;
                node.groups.iter_mut().for_each(|g| g.intent = Intent::Standby);
            }
            Admin::Takeover | Admin::TakeoverForce => {
                node.intent = Intent::Takeover;
                node.groups.iter_mut().for_each(takeover);
            }
            Admin::Online => {
                if node.intent != Intent::Maintenance {
                    node.intent = Intent::None;
                }
                for g in node.groups.iter_mut().filter(|g| g.intent != Intent::Maintenance) {
                    g.intent = Intent::None;
                }
            }
            Admin::MaintenanceOn => {
                node.intent = Intent::Maintenance;
                node.groups.iter_mut().for_each(|g| g.intent = Intent::Maintenance);
            }
            Admin::MaintenanceOff => {
                if node.intent == Intent::Maintenance {
                    node.intent = Intent::None;
                }
                for g in node.groups.iter_mut().filter(|g| g.intent == Intent::Maintenance) {
                    g.intent = Intent::None;
                }
            }
            Admin::Cleanup(_) => {
                for (k, g) in node.groups.iter_mut().enumerate() {
                    if cleaned.is_none_or(|c| c == k) {
                        g.cleanup_at = Some(now);
                        g.exhausted = false;
                        g.stop_failed = false;
                        g.fail_window = None;
                    }
                }
            }
            Admin::Move(g) if usize::from(g) < count => {
                node.groups[usize::from(g)].intent = Intent::Standby;
            }
            Admin::TakeoverGroup(g) if usize::from(g) < count => {
                takeover(&mut node.groups[usize::from(g)]);
            }
            // No such group: refused.
            Admin::Move(_) | Admin::TakeoverGroup(_) => {}
        }
    }

    /// Node `n`'s standing intents (the node's, each group's and its last `takeover`), to put
    /// back when the core refuses a command.
    fn intents(&self, n: usize) -> (Intent, Vec<(Intent, Option<Instant>)>) {
        let node = &self.nodes[n];
        (node.intent, node.groups.iter().map(|g| (g.intent, g.takeover_at)).collect())
    }

    fn set_intents(
        &mut self,
        n: usize,
        (intent, groups): (Intent, Vec<(Intent, Option<Instant>)>),
    ) {
        let node = &mut self.nodes[n];
        node.intent = intent;
        for (g, (intent, takeover_at)) in node.groups.iter_mut().zip(groups) {
            (g.intent, g.takeover_at) = (intent, takeover_at);
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
            self.replaying_until[to] = self.replaying_until[to].max(at);
            self.schedule(at, Ev::Replayed { to, link, repr });
        }
    }

    /// Frames of another pair that shares the authkey, signed with its own frame key (or,
    /// with the `foreign_same_key` knob, with ours), for two seconds on the LAN. Its node
    /// claims every group with a high epoch and echoes `to`'s current challenge: as much as a
    /// node of another pair could learn by listening.
    fn foreign(&mut self, to: usize) {
        let key = if self.cfg.foreign_same_key {
            Key::for_pair(SECRET, NAMES, UDPPORT)
        } else {
            Key::for_pair(SECRET, ["gamma", "delta"], UDPPORT)
        };
        let peer = (1 - to) as u8;
        let mut sender = Sender::new(key, peer, 1 << 50);
        let epoch = self
            .nodes
            .iter()
            .filter_map(|n| n.core.as_ref())
            .flat_map(|c| c.nodes().iter().map(Node::epoch))
            .max();
        let count = self.cfg.groups.len() as u8;
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
            let epoch = epoch.unwrap_or(0).saturating_add(1 + i as u32);
            let mut groups = Groups::new(count).expect("1 to 8 groups");
            for k in 1..count {
                let part = GroupPart {
                    kind,
                    state: hapair::wire::GroupState::Active,
                    intent: hapair::wire::Intent::None,
                    flags: hapair::core::FLAG_HOLDING,
                    epoch,
                    restarts: false,
                };
                groups.set(k, part);
            }
            let payload = Payload {
                kind,
                state: hapair::wire::GroupState::Active,
                health: Health::OK,
                intent: hapair::wire::Intent::None,
                flags: hapair::core::FLAG_HOLDING | hapair::core::FLAG_PEER_ALIVE,
                epoch,
                watchdog_timeout_ms: 0,
                config_digest: [7; 8],
                groups,
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
        // L1 is about a node that stays dead; one that comes back changes the question. So
        // does it for the groups its peer kept running (`check_keep`).
        self.l1_node_back(n);
        self.keep = [None; 2];
        let node = &mut self.nodes[n];
        // A machine that boots, not only a daemon that restarts on a running machine.
        let machine_boot = node.power != Power::Up;
        node.incarnation += 1;
        node.power = Power::Up;
        node.petting = true;
        // A daemon restart leaves the hardware timer running (a power cycle cleared it).
        let timer = node.watchdog_fires.take();
        node.fence_in_flight = false;
        node.deferred.clear();
        node.shutdown_requested = false;
        node.tx_seq = 0;
        // The statedir's counter goes up at every start, unless the adversary lost or
        // restored the statedir (a tmpfs, a machine without an RTC, a restored snapshot):
        // then it goes back. Only a machine's boot loses it: a daemon restarting on a running
        // machine finds what its last run wrote (among it the self-fence that keeps it from
        // petting a watchdog about to reset it: SIM seed 11123, a statedir lost across a
        // daemon restart let it pet again while its peer waited the reset out, S2). A loss
        // asked for while the machine runs happens at its next boot.
        let chaos = self.cfg.adversary && self.cfg.chaos && node.incarnation > 1;
        let roll = chaos && self.rng.chance(10);
        let lost = machine_boot && (std::mem::take(&mut node.statedir_lost) || roll);
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
        if lost {
            self.nodes[n].peer_inc_stored = None;
        }
        if let Some(floor) = self.nodes[n].peer_inc_stored {
            rx = rx.with_peer_incarnation_floor(floor);
        }
        let node = &mut self.nodes[n];
        node.rx = Some(rx);
        node.booted_at = self.now;
        // Nothing in flight, no failures, no intents: the daemon does not keep admin intents
        // across a start in the simulator.
        for g in &mut node.groups {
            g.in_flight = None;
            g.exhausted = false;
            g.stop_failed = false;
            g.fail_window = None;
            g.intent = Intent::None;
            g.last_role = Role::Init;
        }
        node.intent = Intent::None;
        // "Not yet known counts as reachable" (health::reach): a new judge, its first echo
        // round due at once.
        node.ping_judged = true;
        let interval = self.cfg.ping_interval();
        node.reach = Some(Reach::new(&[PING_NODE], interval, PING_WINDOW, self.now).unwrap());
        if lost {
            tr!(self, "node {n}: statedir lost or restored: incarnation back to {}", node.wire_inc);
        }
        let node = &mut self.nodes[n];
        if lost {
            node.peer_watchdog_stored = None;
        }
        let mut params = self.cfg.group_params(n as u8);
        // The clean-exit marker: this start follows a graceful exit, or is a first start
        // (a new or lost statedir). It is taken away now: a crash of this run is unclean.
        let clean = node.incarnation == 1 || lost || node.exited_clean;
        for p in &mut params {
            p.peer_watchdog_timeout_ms = node.peer_watchdog_stored;
            p.start_unclean = !clean;
        }
        node.exited_clean = false;
        node.boot_clean = clean;
        node.carried_in = false;
        node.carried_out = false;
        node.met = false;
        node.hung_since_boot = false;
        node.vouched = false;
        node.rejoined_at = None;
        if !clean && self.cfg.fence == FenceMode::External {
            self.coverage.unclean_boots += 1;
        }
        // A start that may fence at once is a start-up sequence of its own: it may take one
        // fence more in the partition event under way.
        self.event_allowance += u64::from(clean);
        if lost {
            node.self_fence_stored = false;
        }
        let self_fencing = node.self_fence_stored;
        params.iter_mut().for_each(|p| p.start_self_fencing = self_fencing);
        node.core = Some(Core::new(&params, self.now));
        if self_fencing {
            // It does not pet: the timer runs on from the last pet, or starts now.
            node.petting = false;
            match timer {
                Some(at) => {
                    node.watchdog_fires = Some(at);
                    let inc = node.incarnation;
                    self.schedule(at, Ev::WatchdogFire { node: n, inc });
                }
                None => self.set_petting(n, false),
            }
        }
        tr!(self, "node {n}: boots, incarnation {}", self.nodes[n].incarnation);
        self.nodes[n].health = Health::OK;
        self.ping_world_changed(n);
        self.ping_step(n)?;
        self.report_health(n)?;
        self.drain(n)
    }

    /// The machine goes off: everything it ran is gone. It boots again at `back`.
    fn power_off(&mut self, n: usize, back: Instant) {
        let node = &mut self.nodes[n];
        node.core = None;
        node.power = Power::Down(back);
        node.truth.iter_mut().for_each(|t| *t = Truth::Stopped);
        node.groups.iter_mut().for_each(|g| g.in_flight = None);
        node.watchdog_fires = None;
        node.deferred.clear();
        let inc = self.nodes[n].incarnation;
        self.schedule(back, Ev::PowerOn(n, inc));
        // Its peer keeps what it runs (`check_keep`); this node keeps nothing.
        self.keep[n] = None;
        self.watch_keep(1 - n);
    }

    fn hang(&mut self, n: usize, d: Duration) {
        let until = self.now + d;
        // Its loop ran until now: the stall is measured from here.
        let (now, node) = (self.now, &mut self.nodes[n]);
        if let (Some(core), Some(reach)) = (node.core.as_ref(), node.reach.as_mut()) {
            reach.handle_wake(now, core.stall_threshold());
        }
        self.nodes[n].hung_since = self.now;
        self.nodes[n].hung_since_boot = true;
        self.nodes[n].power = Power::Hung(until);
        self.watch_keep(1 - n);
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
        // Every input is a wake of the node's loop.
        self.loop_wake(n);
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
                let node = &self.nodes[n];
                if !node.boot_clean && !node.could_hear() && !node.vouched {
                    return Err(format!(
                        "fence loop: node {n}, back from an unclean stop at {}, fences its peer \
                         before it could have heard it",
                        node.booted_at
                    ));
                }
                // Coverage only: the first fence of a `Fencing` that began earlier waited.
                let since = node
                    .core
                    .as_ref()
                    .and_then(|c| {
                        let fencing = c.nodes().iter().filter(|g| g.role() == Role::Fencing);
                        fencing.map(Node::role_since).min()
                    })
                    .unwrap_or(self.now);
                let first = node.committed.is_none_or(|(t, _)| t < since);
                self.coverage.fence_delays += u64::from(self.now > since && first);
                self.nodes[n].fence_in_flight = true;
                let woke = self.nodes[n].woke_at;
                let in_event = self.disconnected_at.is_some_and(|d| woke.is_some_and(|w| w >= d));
                self.nodes[n].fence_after_hang = woke == Some(self.now) || in_event;
                let c = self.rng.range(self.cfg.fence_commit_ms.0, self.cfg.fence_commit_ms.1);
                let inc = self.nodes[n].incarnation;
                tr!(self, "node {n}: FENCE the peer (reaches its device in {c} ms)");
                let started = self.now;
                let at = self.now + Duration::from_millis(c);
                self.schedule(at, Ev::FenceCommit { node: n, inc, started });
                Ok(())
            }
            Output::Notify { event, detail, group } => {
                self.notifies += 1;
                let g = group.map(usize::from);
                match g {
                    Some(g) => tr!(self, "node {n} g{g}: notify {event:?} {detail:?}"),
                    None => tr!(self, "node {n}: notify {event:?} {detail:?}"),
                }
                if event.node_wide() != g.is_none() || g.is_some_and(|g| g >= self.cfg.groups.len())
                {
                    return Err(format!("node {n}: notify {event:?} names group {group:?}"));
                }
                if event == Event::PeerDead {
                    self.check_peer_dead(n)?;
                }
                match event {
                    // `active` may be left again in the same step (a failback at once).
                    Event::Active => {
                        let g = g.unwrap_or(0);
                        if let Some(w) = self.l1[g].as_mut().filter(|w| w.survivor == n) {
                            w.met = true;
                        }
                        if detail == hapair::core::Detail::Reason(Reason::Adopted) {
                            self.coverage.adoptions += 1;
                        }
                    }
                    Event::Stopping => {
                        let g = g.unwrap_or(0);
                        self.check_l2(n, g, detail)?;
                        self.check_keep(n, g, detail)?;
                    }
                    Event::Failover => self.coverage.failovers += 1,
                    Event::Handover => self.coverage.handovers += 1,
                    Event::SplitBrain => self.coverage.split_brains += 1,
                    Event::Fenced => self.coverage.fences += 1,
                    Event::PeerDead
                        if detail == hapair::core::Detail::Reason(Reason::PeerUnfenceable) =>
                    {
                        self.coverage.unfenceable_deaths += 1
                    }
                    _ => {}
                }
                Ok(())
            }
            Output::Watchdog { allow_petting, self_fence } => {
                tr!(self, "node {n}: watchdog petting {allow_petting} self-fence {self_fence}");
                // As the event loop does: only the self-fence goes to the statedir.
                self.nodes[n].self_fence_stored = self_fence;
                self.set_petting(n, allow_petting);
                Ok(())
            }
            Output::Exit => {
                tr!(self, "node {n}: EXIT");
                // A clean exit; the machine reboots at once (a daemon that exits in maintenance
                // over a running group leaves it to the reboot: see the closing note of issue
                // 19 — not yet a guarantee of the daemon's own).
                let back = self.now + Duration::from_millis(2000);
                // A clean exit; the machine reboots (what it held, if anything, is freed
                // only then: until `back` it still counts as held).
                let node = &mut self.nodes[n];
                node.core = None;
                node.power = Power::Down(back);
                node.watchdog_fires = None;
                // The statedir's clean-exit marker: a graceful exit that left nothing running.
                node.exited_clean = node.truth.iter().all(|t| *t == Truth::Stopped);
                let inc = node.incarnation;
                self.schedule(back, Ev::Reboot(n, inc));
                Ok(())
            }
            Output::AdminAnswer(answer) => {
                tr!(self, "node {n}: admin answer {answer:?}");
                self.nodes[n].admin_refused = answer.is_err();
                Ok(())
            }
            // The simulator reloads nothing.
            Output::ApplyResources { group } => {
                Err(format!("node {n} switched the resources of group {group} without a reload"))
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
            outdate: Default::default(),
        };
        let l = self.links[link];
        if !self.carries(link, n) || (l.loss > 0 && self.rng.chance(l.loss)) {
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

    /// Runs a resource action: one per group at a time (each group's `Node` runs its own),
    /// never one that contradicts what the resource really is.
    fn resource_action(&mut self, n: usize, index: u8, action: Action) -> Result<(), String> {
        let g = self.cfg.group_of(index);
        let node = &mut self.nodes[n];
        let i = usize::from(index);
        let Some(truth) = node.truth.get(i).copied() else {
            return Err(format!("node {n}: action on resource {index} that does not exist"));
        };
        if let Some(busy) = node.groups[g].in_flight {
            return Err(format!(
                "node {n} g{g}: {action:?} {index} while {busy:?} of the group is in flight"
            ));
        }
        let probe = node.core.as_ref().is_some_and(|c| c.nodes()[g].probing());
        let contradiction = match action {
            Action::Start => truth != Truth::Stopped,
            // A shutdown while probing stops what was not probed yet: it may find nothing.
            Action::Stop => truth == Truth::Stopped && !node.shutdown_requested,
            Action::Monitor => truth == Truth::Stopped && !probe,
        };
        if contradiction {
            return Err(format!("node {n}: {action:?} resource {index} while it is {truth:?}"));
        }
        node.groups[g].in_flight = Some((index, action));
        let d = match self.cfg.probe_ms {
            Some(ms) if probe => ms,
            _ => self.rng.range(self.cfg.action_ms.0, self.cfg.action_ms.1),
        };
        let inc = node.incarnation;
        tr!(self, "node {n} g{g}: resource {index} {action:?} ({d} ms)");
        let at = self.now + Duration::from_millis(d);
        self.schedule(at, Ev::ActionDone { node: n, inc, index, action });
        Ok(())
    }

    fn note_role(&mut self, n: usize) {
        let SimNode { core, groups, .. } = &mut self.nodes[n];
        let Some(core) = core.as_ref() else { return };
        for (g, (group, seen)) in core.nodes().iter().zip(groups.iter_mut()).enumerate() {
            let role = group.role();
            if role != seen.last_role {
                seen.last_role = role;
                let reason = group.reason();
                tr!(self, "node {n} g{g}: ROLE {role:?} ({reason:?})");
                let at_ms = self.now.total_millis();
                self.changes.push(Change { at_ms, node: n, group: g, role, reason });
            }
        }
    }

    /// Group `g`'s role on node `n`, if its daemon runs (hung or not): as the last drain left
    /// it (`note_role`; a role changes only in an input).
    pub fn role(&self, n: usize, g: usize) -> Option<Role> {
        let node = &self.nodes[n];
        node.core.as_ref().map(|_| node.groups[g].last_role)
    }

    fn chaos(&mut self) {
        // While an L1 watch runs, most of the chaos falls on the dead node (where it changes
        // little) so that most watches of a healthy survivor are judged, not excused.
        let watched = self.l1.iter().flatten().find(|w| !w.disturbed).map(|w| w.survivor);
        let n = match watched {
            Some(survivor) if self.rng.chance(90) => 1 - survivor,
            _ => self.rng.range(0, 1) as usize,
        };
        let link = self.rng.range(0, 2) as usize;
        let roll = self.rng.range(0, 99);
        let h = match roll {
            0..=29 => Happening::Cut { link, from: n, cut: self.rng.chance(45) },
            30..=37 => Happening::Loss { link, percent: self.rng.pick(&[0, 0, 5, 30]) },
            38..=43 => Happening::Crash(n, Duration::from_millis(self.rng.range(500, 30_000))),
            44..=49 => Happening::Hang(n, Duration::from_millis(self.rng.range(300, 6000))),
            50..=52 => Happening::Shutdown(n),
            53..=57 => {
                let bits = self.rng.pick(&[0, 0, 0, Health::SENSOR, Health::RAID]);
                Happening::Health(n, Health(bits))
            }
            58..=60 => Happening::LanPort(n, self.rng.chance(65)),
            61..=62 => Happening::PingNodes(self.rng.chance(75)),
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
                    Admin::TakeoverForce,
                    Admin::Move(0),
                    Admin::Move(0),
                    Admin::TakeoverGroup(0),
                    Admin::Cleanup(Some(0)),
                ]);
                // The group commands name a random group (now and then one that does not
                // exist), a cleanup one random resource.
                let count = self.cfg.groups.len() as u64;
                let group = |rng: &mut Rng| {
                    if rng.chance(5) { count as u8 } else { rng.range(0, count - 1) as u8 }
                };
                let cmd = match cmd {
                    Admin::Move(_) => Admin::Move(group(&mut self.rng)),
                    Admin::TakeoverGroup(_) => Admin::TakeoverGroup(group(&mut self.rng)),
                    Admin::Cleanup(Some(_)) => {
                        let total = u64::from(self.cfg.resources());
                        Admin::Cleanup(Some(self.rng.range(0, total - 1) as u8))
                    }
                    cmd => cmd,
                };
                Happening::Admin(n, cmd)
            }
            // A resource of any group breaks.
            75..=84 => {
                Happening::Break(n, self.rng.range(0, u64::from(self.cfg.resources()) - 1) as u8)
            }
            85..=89 => Happening::StartsFail(n, self.rng.chance(30)),
            90..=92 => Happening::StopFails(n),
            93..=95 => Happening::Restart(n),
            96 if self.cfg.adversary => {
                let count = self.rng.range(1, 100) as usize;
                Happening::Replay { to: n, count, oldest: self.rng.chance(30) }
            }
            97 if self.cfg.adversary => Happening::Foreign { to: n },
            98 if self.rng.chance(50) => Happening::Partition,
            98 => Happening::Isolate(n),
            _ => Happening::FencesFail(self.rng.chance(30)),
        };
        self.schedule(self.now, Ev::Happen(h));
        // Most troubles mend after a while, as in the field: a sensor reading comes back, a
        // port is plugged in again, the operator says `online` after a `standby`.
        let heal = match h {
            Happening::Health(n, bits) if !bits.is_ok() => Some(Happening::Health(n, Health::OK)),
            Happening::LanPort(n, false) => Some(Happening::LanPort(n, true)),
            Happening::PingNodes(false) => Some(Happening::PingNodes(true)),
            Happening::StartsFail(n, true) => Some(Happening::StartsFail(n, false)),
            Happening::Partition | Happening::Isolate(_) => Some(Happening::Reconnect),
            Happening::Admin(n, Admin::Standby | Admin::Move(_)) => {
                Some(Happening::Admin(n, Admin::Online))
            }
            Happening::Admin(n, Admin::MaintenanceOn) => {
                Some(Happening::Admin(n, Admin::MaintenanceOff))
            }
            _ => None,
        };
        if let Some(heal) = heal.filter(|_| self.rng.chance(70)) {
            let at = self.now + Duration::from_millis(self.rng.range(1000, 8000));
            self.schedule(at, Ev::Happen(heal));
        }
    }

    // ----- checks -----
    //
    // The oracle judges from what the world knows (links, ports, ping nodes, power, health,
    // the operator's commands, what really runs), never from what a core says of itself.

    /// A node holds something when any resource is not stopped (hung or exited nodes too).
    fn holds(&self, n: usize) -> bool {
        self.nodes[n].truth.iter().any(|t| *t != Truth::Stopped)
    }

    /// A node holds group `g` when any of its resources is not stopped.
    fn holds_group(&self, n: usize, g: usize) -> bool {
        self.nodes[n].truth[self.ranges[g].clone()].iter().any(|t| *t != Truth::Stopped)
    }

    /// The groups node `n` holds, a bit each.
    fn held(&self, n: usize) -> u8 {
        let truth = &self.nodes[n].truth;
        let mut held = 0;
        for (i, t) in truth.iter().enumerate() {
            if *t != Truth::Stopped {
                held |= 1 << self.group_of[i];
            }
        }
        held
    }

    /// Group `g` is starting or active on node `n`, whose daemon runs and is not hung.
    fn runs(&self, n: usize, g: usize) -> bool {
        self.nodes[n].power == Power::Up
            && self.role(n, g).is_some_and(|r| matches!(r, Role::Starting | Role::Active))
    }

    /// Link `l` carries frames from node `from` to the other (perhaps with loss): its
    /// direction is not cut, and for the LAN both nodes' ports are up.
    fn carries(&self, l: usize, from: usize) -> bool {
        !self.links[l].cut[from] && (l != 2 || (self.lan_up[0] && self.lan_up[1]))
    }

    /// A link works when it carries every frame both ways and both ends process them.
    fn link_works(&self, l: usize) -> bool {
        self.carries(l, 0) && self.carries(l, 1) && self.links[l].loss == 0
    }

    /// Every medium between the nodes fails both ways: neither can hear the other at all.
    fn partitioned(&self) -> bool {
        (0..3).all(|l| !self.carries(l, 0) && !self.carries(l, 1))
    }

    fn both_up(&self) -> bool {
        (0..2).all(|n| self.nodes[n].power == Power::Up && self.nodes[n].core.is_some())
    }

    /// Healthy as the world knows it, for group `g`: up, its sensors fine, a ping node within
    /// reach (and its driver agrees), and the group's restarts not exhausted nor a stop of it
    /// failed (a group's restarts are its own: SPEC §7.1).
    fn world_healthy(&self, n: usize, g: usize) -> bool {
        let node = &self.nodes[n];
        node.power == Power::Up
            && node.core.is_some()
            && node.sensors.is_ok()
            && self.reaches_ping(n)
            && node.ping_judged
            && !node.groups[g].exhausted
            && !node.groups[g].stop_failed
    }

    /// SPEC §3 S1: one keepalive plus the stop time of the group. Written down for the
    /// simulated links: the send interval of the fastest link that works both ways (a
    /// slower serial line paces itself), plus three one-way delays (the frame that shows the
    /// overlap, and a handshake answer and its echo when a node restarted meanwhile), plus
    /// the stop time (the group's action in flight, then every resource of it).
    /// S1's deadline for an overlap of group `g` that began at `since`: the first frame a
    /// working link carries after both the overlap and that link's working began (a link
    /// that began to work later sends on its own cadence: SIM seed 914660, the slow serial
    /// link worked first, the fast crossover 300 ms later), its delays, and a stop.
    fn s1_deadline(&self, since: Instant, g: usize) -> Instant {
        let first = (0..3)
            .filter_map(|l| {
                let from = self.link_works_since[l]?.max(since);
                Some(from + self.cfg.link_params(l).send_interval)
            })
            .min()
            .unwrap_or(since + self.cfg.max_link_interval());
        first
            + self.cfg.max_delay().saturating_mul(3)
            + self.cfg.stop_time(g)
            + Duration::from_millis(1)
    }

    fn s1_bound(&self, g: usize) -> Duration {
        let fastest = (0..3)
            .filter(|&l| self.link_works(l))
            .map(|l| self.cfg.link_params(l).send_interval)
            .min()
            .unwrap_or(self.cfg.max_link_interval());
        fastest
            .saturating_add(self.cfg.max_delay().saturating_mul(3))
            .saturating_add(self.cfg.stop_time(g))
            .saturating_add(Duration::from_millis(1))
    }

    /// After the residual case ends, how long an overlap of group `g` it excused may last:
    /// the holder learns it must stop, either from its ping driver (a window and an interval,
    /// after a stall of its own at most) or, when a link came back one way, from the peer's
    /// frames that still show it unheard (two link intervals and two keepalives after it
    /// heard the peer), or the partition healed both ways and S1's bound applies; then it
    /// stops the group, and if that stop fails its watchdog resets it (W).
    fn residual_grace(&self, g: usize) -> Duration {
        let ping = self.cfg.ping_window() + self.cfg.ping_interval();
        let ping = ping + self.cfg.keepalive + self.cfg.max_link_interval();
        let deaf = self.cfg.max_link_interval().saturating_mul(2)
            + self.cfg.keepalive.saturating_mul(2)
            + self.cfg.max_delay().saturating_mul(2);
        let learn = ping.max(deaf).max(self.s1_bound(g));
        learn + self.cfg.stop_time(g) + self.cfg.watchdog.unwrap_or(Duration::ZERO)
    }

    /// S2 under fence watchdog, before anything happens: whichever node holds, cut off at
    /// once from its peer and every ping node, is safe (its ping judge and deadtime tell it,
    /// then its watchdog fires) before the other ends its wait (`health::self_fence`). The
    /// overlaps S2 excuses (`check_s2`) begin within that wait; this is why they may.
    fn check_s2_window(&mut self) -> Result<(), String> {
        if self.cfg.fence != FenceMode::Watchdog {
            return Ok(());
        }
        for holder in 0..2 {
            let Some((window, timing)) = self.cfg.s2_window(holder) else { continue };
            if !window.holds() {
                return Err(format!(
                    "S2 window: node {holder} isolated is safe only {} after, node {} takes \
                     over {} after ({window:?}, {timing:?})",
                    window.holder_safe,
                    1 - holder,
                    window.survivor_takes_over
                ));
            }
            self.coverage.s2_windows += 1;
        }
        Ok(())
    }

    /// Checks that span time, for the interval from `self.now` to `until`.
    fn check_durations(&mut self, until: Instant) -> Result<(), String> {
        // S1, per group: while any link works both ways (and both nodes run their daemon),
        // never both in starting/active for longer than the S1 bound, counted from when both
        // the overlap and the connection began.
        if let Some(conn) = self.connected_since {
            for g in 0..self.cfg.groups.len() {
                let Some(since) = self.runs_overlap_since[g] else { continue };
                let deadline = self.s1_deadline(since, g);
                if until > deadline {
                    return Err(format!(
                        "S1: both nodes starting/active for group {g} since {since} while \
                         connected since {conn} (deadline {deadline})"
                    ));
                }
            }
        }
        // Hearing: a pair connected both ways hears each other within the hearing bound
        // (`status` shows the peer alive on both): a fenced node's next run too.
        // A daemon's restart (which leaves the pair connected) starts the count again. A
        // daemon shutting down says `Leaving` for each group as it stops it, the first group's
        // (the node's view of its peer, `core::groups`) perhaps well before it exits, its
        // other groups still stopping (or failing to): its peer need not hear it then, nor it
        // its peer (its first group exited and listens no more: SIM seed 105704).
        let since = self
            .connected_since
            .map(|c| c.max(self.nodes[0].booted_at).max(self.nodes[1].booted_at));
        let leaving = self.nodes[0].shutdown_requested || self.nodes[1].shutdown_requested;
        if let Some(conn) = since
            && until.saturating_since(conn) > self.cfg.hearing_bound()
            && !leaving
        {
            for n in 0..2 {
                let alive = self.nodes[n].core.as_ref().is_some_and(|c| c.peer().alive);
                if !alive {
                    return Err(format!(
                        "hearing: node {n} does not hear its peer, connected since {conn}"
                    ));
                }
            }
            if std::mem::take(&mut self.killed_since_connected) {
                self.coverage.reheard_after_kill += 1;
            }
            self.nodes[0].met = true;
            self.nodes[1].met = true;
        }
        // L1, per group: after the group's active node died, a survivor healthy for it is
        // active within the bound.
        for g in 0..self.cfg.groups.len() {
            let Some(w) = self.l1[g].as_ref().filter(|w| until > w.deadline) else { continue };
            if w.disturbed {
                self.coverage.l1_skipped += 1;
                self.coverage.l1_skipped_back += u64::from(w.back);
            } else {
                self.coverage.l1_checked += 1;
                if !w.met {
                    return Err(format!(
                        "L1: the active node of group {g} died at {}, node {} is not active \
                         by {}",
                        w.since, w.survivor, w.deadline
                    ));
                }
            }
            self.l1[g] = None;
        }
        Ok(())
    }

    /// Checks of the state right after a step.
    /// SPEC §7.7, liveness: a node finds its peer dead only when every link is down, each by
    /// its own deadtime: never while some link delivered a frame (one its core took) within
    /// that link's deadtime, whatever the other links did. (A peer that said `Leaving`, or
    /// was forgotten by a fence, is not found dead by silence.)
    fn check_peer_dead(&mut self, n: usize) -> Result<(), String> {
        let Some(core) = self.nodes[n].core.as_ref() else { return Ok(()) };
        let peer = core.peer();
        if peer.left || peer.last.is_none() {
            return Ok(());
        }
        for (i, link) in core.links().enumerate() {
            let dead_after = self.cfg.link_params(i).dead_after;
            if let Some(t) = link.last_heard
                && self.now < t + dead_after
            {
                return Err(format!(
                    "liveness: node {n} found its peer dead at {} while the {} link delivered \
                     a frame at {t}, within its deadtime {dead_after}",
                    self.now, LINK_NAMES[i]
                ));
            }
        }
        self.coverage.per_link_deaths += self.coverage.per_link_seeds;
        Ok(())
    }

    fn check_now(&mut self) -> Result<(), String> {
        self.wake_hung()?;
        let count = self.cfg.groups.len();
        for n in 0..2 {
            // For L2 a hung node's frozen role counts too: it says so when it wakes.
            for g in 0..count {
                let role = self.role(n, g);
                if role.is_some_and(|r| matches!(r, Role::Starting | Role::Active)) {
                    self.nodes[n].groups[g].last_runs_at = Some(self.now);
                }
                if role == Some(Role::Fencing) {
                    self.nodes[n].fencing_at = Some(self.now);
                }
                // What its frames show it holding counts for the fence order (a group it
                // starts holds nothing yet in the world: SIM seed 25457).
                if role.is_some_and(Role::holds) {
                    self.nodes[n].groups[g].held_at = Some(self.now);
                }
            }
            let unhealthy = !self.nodes[n].sensors.is_ok()
                || !self.reaches_ping(n)
                || !self.nodes[n].ping_judged;
            if unhealthy {
                self.nodes[n].unhealthy_at = Some(self.now);
            }
        }
        for g in 0..count {
            let Some(survivor) = self.l1[g].as_ref().map(|w| w.survivor) else { continue };
            let active = self.nodes[survivor].power == Power::Up
                && self.role(survivor, g) == Some(Role::Active);
            let holds = (0..count).any(|h| self.role(survivor, h).is_some_and(Role::holds));
            let now = self.now;
            if let Some(w) = self.l1[g].as_mut() {
                w.met |= active;
                // It came to hold a group before it noticed the death: a holder's slots.
                if let Some((deadline, until)) = w.held_deadline.filter(|_| holds)
                    && now <= until
                {
                    w.deadline = deadline;
                    w.held_deadline = None;
                }
            }
        }
        // Connectivity for S1, L2 and the hearing check; the partition events of the fence
        // checks end when the pair is connected.
        let connected = self.both_up() && (0..3).any(|l| self.link_works(l));
        for l in 0..3 {
            let works = self.both_up() && self.link_works(l);
            match (works, self.link_works_since[l]) {
                (true, None) => self.link_works_since[l] = Some(self.now),
                (false, Some(_)) => self.link_works_since[l] = None,
                _ => {}
            }
        }
        if connected && self.connected_since.is_none() {
            self.connected_since = Some(self.now);
            (self.event_kills, self.event_allowance) = (0, 1);
        } else if !connected {
            if self.connected_since.is_some() {
                self.disconnected_at = Some(self.now);
            }
            self.connected_since = None;
        }
        let held = [self.held(0), self.held(1)];
        self.note_carried(held);
        // Active/active: both nodes run some group at once, each its own (coverage, once).
        if count > 1 && self.coverage.active_active == 0 {
            let active = |n: usize| (0..count).any(|g| self.role(n, g) == Some(Role::Active));
            self.coverage.active_active = u64::from(active(0) && active(1));
        }
        for g in 0..count {
            // A group in maintenance on either node is the operator's (SPEC §1).
            let both_run = self.runs(0, g) && self.runs(1, g) && !self.in_maintenance(g);
            if both_run && self.runs_overlap_since[g].is_none() {
                self.runs_overlap_since[g] = Some(self.now);
            } else if !both_run {
                self.runs_overlap_since[g] = None;
            }
        }
        // The residual case of fence watchdog (SPEC §3 S2): every medium between the nodes
        // fails while both still reach a ping node.
        if self.partitioned() && self.reaches_ping(0) && self.reaches_ping(1) {
            self.residual_at = Some(self.now);
        }
        // So is a node without an armed watchdog (outside the contract: `run` refuses it
        // under fence watchdog) that its peer has not heard since the peer's statedir began:
        // a peer never heard is taken to have our own timeout (README "The hardware
        // watchdog"), and no wait makes an unarmed node safe. It lasts until the two meet
        // (SIM seed 297369: a start into a partition, the unarmed node never heard).
        let unheard_unarmed = self.cfg.fence == FenceMode::Watchdog
            && self.cfg.unarmed.is_some_and(|u| self.nodes[1 - u].peer_watchdog_stored.is_none());
        if unheard_unarmed {
            self.residual_at = Some(self.now);
        }
        self.check_isolated_release()?;
        self.check_s2(held)
    }

    /// Group `g` is in maintenance on either node (the operator's standing intent): the
    /// operator answers for what runs of it.
    fn in_maintenance(&self, g: usize) -> bool {
        (0..2).any(|n| self.nodes[n].groups[g].intent == Intent::Maintenance)
    }

    /// What each node may have heard since its boot (`SimNode::could_hear`), and when it held
    /// each group last. A node whose peer's frames reach it again may hear it again, and
    /// fence once more after it loses it again, in the partition event under way (SIM seed
    /// 359720: a link that came back one way).
    fn note_carried(&mut self, held: [u8; 2]) {
        let both = self.both_up();
        for (n, held) in held.into_iter().enumerate() {
            let into = both && (0..3).any(|l| self.carries(l, 1 - n));
            let out = both && (0..3).any(|l| self.carries(l, n));
            let node = &mut self.nodes[n];
            node.carried_in |= into;
            node.carried_out |= out;
            if into && !node.reached {
                self.event_allowance += 1;
            }
            node.reached = into;
            for (g, group) in node.groups.iter_mut().enumerate() {
                if held & (1 << g) != 0 {
                    group.held_at = Some(self.now);
                }
            }
        }
    }

    /// SPEC §3, fence watchdog: a node that loses its peer and every ping node releases every
    /// group. Once every medium fails both ways and node `n` reaches no ping node, it holds
    /// no group after the holder's side of the S2 window (`health::self_fence`: it learns it
    /// from its ping judge and deadtime) plus the stop of the group (the groups stop side by
    /// side). Excused when its daemon hangs or restarts meanwhile, or for a group whose stop
    /// failed (its watchdog's job), in maintenance or still in its start-up wait (it manages
    /// nothing yet).
    fn check_isolated_release(&mut self) -> Result<(), String> {
        if self.cfg.fence != FenceMode::Watchdog {
            return Ok(());
        }
        for n in 0..2 {
            let node = &self.nodes[n];
            let up = node.power == Power::Up && node.core.is_some();
            if !up || !self.partitioned() || self.reaches_ping(n) {
                self.isolated_since[n] = None;
                continue;
            }
            let fresh =
                Isolation { since: self.now, excused: false, groups_excused: 0, judged: false };
            let Isolation { since, excused, mut groups_excused, judged } =
                *self.isolated_since[n].get_or_insert(fresh);
            let excused = excused || node.booted_at >= since || node.hung_since >= since;
            let window = Window::of(&self.cfg.s2_timing(n));
            let due_at = since + window.peer_dead.max(window.ping_lost);
            let mut due = false;
            for g in 0..self.cfg.groups.len() {
                let group = &node.groups[g];
                let role = self.role(n, g).unwrap_or(Role::Exited);
                let group_excused = group.stop_failed
                    || group.intent == Intent::Maintenance
                    || matches!(role, Role::Init | Role::Failed { .. } | Role::Maintenance { .. });
                groups_excused |= u8::from(group_excused) << g;
                let excused = excused || groups_excused & (1 << g) != 0;
                let bound = due_at.saturating_since(since) + self.cfg.stop_time(g);
                let late = !excused && self.now > since + bound;
                due |= late;
                if late && self.holds_group(n, g) {
                    return Err(format!(
                        "S2 window: node {n}, cut off from its peer and every ping node since \
                         {since}, still holds group {g} at {} (it must release within {bound})",
                        self.now
                    ));
                }
            }
            self.coverage.isolations_judged += u64::from(due && !judged);
            let judged = judged || due;
            self.isolated_since[n] = Some(Isolation { since, excused, groups_excused, judged });
        }
        Ok(())
    }

    /// S2, per group: with a fence configured, never both nodes hold a group at once (a hung
    /// node, or one that exited holding, still holds it). With fence watchdog, an overlap is
    /// excused only as SPEC §3 names it: it began at most W + M (the survivor's wait) after a
    /// moment of the residual case, and it lasts no longer than the residual case plus the
    /// grace in which the holder notices it lost its ping nodes or the healed pair resolves
    /// it.
    fn check_s2(&mut self, held: [u8; 2]) -> Result<(), String> {
        if self.cfg.fence == FenceMode::None {
            return Ok(());
        }
        for g in 0..self.cfg.groups.len() {
            // A group in maintenance on either node manages nothing (SPEC §1): the operator
            // answers for what it holds, so an overlap with it is not the daemon's to resolve.
            let maintenance = self.in_maintenance(g);
            if self.group_maintenance[g] && !maintenance {
                self.maintenance_ended[g] = Some(self.now);
            }
            self.group_maintenance[g] = maintenance;
            let both = held[0] & held[1] & (1 << g) != 0 && !maintenance;
            if !both {
                self.overlap_since[g] = None;
                self.overlap_excused[g] = false;
                continue;
            }
            self.check_s2_group(g)?;
        }
        Ok(())
    }

    fn check_s2_group(&mut self, g: usize) -> Result<(), String> {
        if self.overlap_since[g].is_none() {
            self.overlap_since[g] = Some(self.now);
            let horizon = self
                .cfg
                .watchdog_wait()
                .saturating_add(self.cfg.max_link_interval())
                .saturating_add(self.cfg.max_delay());
            // An overlap the operator's maintenance held up resumes when it ends, or begins
            // within the survivor's wait after it: a peer that started waiting while the
            // holder, in maintenance, ignored its claims, ends its wait before the holder's
            // self-fence (begun only when maintenance ended) can (SIM seed 661038). The
            // daemon then has the grace below to resolve it, as after the residual case.
            let resumed =
                self.maintenance_ended[g].is_some_and(|e| self.now.saturating_since(e) <= horizon);
            self.overlap_excused[g] = resumed
                || (self.cfg.fence == FenceMode::Watchdog
                    && self.residual_at.is_some_and(|r| self.now.saturating_since(r) <= horizon));
            self.coverage.s2_excused += u64::from(self.overlap_excused[g]);
        }
        let overlap_since = self.overlap_since[g];
        let grace = self.residual_grace(g);
        // A node that hangs during an excused overlap cannot resolve it: the grace counts
        // again from when it wakes (SIM seed 391870: the survivor, without a watchdog of its
        // own, hung for 5.5 s while both held). So does one that hangs after the residual
        // case ended, before the overlap: its ping judge counts the silence from its wake, and
        // its wait for the peer's watchdog moved on by the hang (SIM seed 162085: cut off from
        // the ping nodes, it hung, woke and took the group within its new ping window).
        let hung = (0..2).any(|n| matches!(self.nodes[n].power, Power::Hung(_)));
        let since_residual = |w: &Instant| self.residual_at.is_some_and(|r| *w >= r);
        let woke =
            self.last_wake.filter(|w| overlap_since.is_some_and(|o| *w >= o) || since_residual(w));
        // Nor can a daemon that restarts (kill -9 and start) during it before its start-up
        // wait and probes are over: SIM seed 676334, a restart 19 ms before the holder would
        // have released to a peer that could not hear it.
        let initdead = self.cfg.peer_deadtime().saturating_mul(2);
        let probes = Duration::from_millis(self.cfg.action_ms.1 * 8);
        let restarted = (0..2)
            .map(|n| self.nodes[n].booted_at)
            .filter(|b| overlap_since.is_some_and(|o| *b >= o))
            .max()
            .map(|b| b + initdead + probes);
        let last = self.residual_at.max(self.maintenance_ended[g]).max(woke).max(restarted);
        let within = hung || last.is_some_and(|r| self.now.saturating_since(r) <= grace);
        if self.overlap_excused[g] && within {
            return Ok(());
        }
        let since = overlap_since.unwrap_or(self.now);
        let excuse = if self.overlap_excused[g] {
            format!(" (outlasted the residual case, last at {:?}, grace {grace})", self.residual_at)
        } else {
            String::new()
        };
        Err(format!(
            "S2: both nodes hold group {g} since {since} (fence {:?}){excuse}",
            self.cfg.fence
        ))
    }

    /// The policies the world can name for node `n` to stop group `g` it runs (SPEC §3,
    /// §7.1: a group moves for its own reasons and the node's): the node's health or
    /// shutdown, the group's resources (failures, restarts, a failed stop, a cleanup), an
    /// operator's command (the node's or the group's own, here or at the peer),
    /// auto_failback to the group's home, or the peer running the group too. `window` is how
    /// long a past event still counts.
    fn group_policy(&self, n: usize, g: usize, window: Duration) -> bool {
        let recent =
            |t: Option<Instant>, w: Duration| t.is_some_and(|t| self.now.saturating_since(t) <= w);
        let peer = 1 - n;
        let me = &self.nodes[n];
        let mine = &me.groups[g];
        let theirs = &self.nodes[peer].groups[g];
        let restart_window = self.cfg.restart_limit.window + window;
        let group = self.cfg.groups[g];
        !self.world_healthy(n, g)
            || recent(me.unhealthy_at, window)
            || recent(mine.failure_at, restart_window)
            || mine.exhausted
            || mine.stop_failed
            || recent(mine.cleanup_at, window)
            || matches!(mine.intent, Intent::Standby | Intent::Maintenance)
            || theirs.intent == Intent::Takeover
            || recent(theirs.takeover_at, window)
            || (group.auto_failback && usize::from(group.home) == peer)
            || me.shutdown_requested
            || recent(theirs.last_runs_at, window)
            || self.holds_partly(n, g)
    }

    /// L2, per group: an active node with a peer connected for a whole deadtime and healthy
    /// for the group stops the group only for a policy the world can name
    /// (`group_policy`).
    fn check_l2(&mut self, n: usize, g: usize, detail: hapair::core::Detail) -> Result<(), String> {
        if self.nodes[n].groups[g].last_role != Role::Active {
            return Ok(());
        }
        let peer = 1 - n;
        let window = self.cfg.peer_deadtime() + self.cfg.max_link_interval() + self.cfg.max_delay();
        let recent =
            |t: Option<Instant>, w: Duration| t.is_some_and(|t| self.now.saturating_since(t) <= w);
        let connected =
            self.connected_since.is_some_and(|c| self.now.saturating_since(c) >= window);
        // A peer shutting down leaves group by group (SIM seed 25956: its first group's
        // `Leaving` while another's stop failed): no healthy peer for any.
        let healthy_peer = self.world_healthy(peer, g)
            && !self.nodes[peer].shutdown_requested
            && !recent(self.nodes[peer].unhealthy_at, window)
            && self.nodes[peer]
                .now_booted_for(self.now, self.cfg.peer_deadtime().saturating_mul(2));
        if !connected || !healthy_peer {
            self.coverage.l2_not_applicable += 1;
            return Ok(());
        }
        self.coverage.l2_checked += 1;
        if self.group_policy(n, g, window) {
            Ok(())
        } else {
            Err(format!(
                "L2: node {n} stops group {g} with a healthy peer connected since {:?} and no \
                 policy the world knows (the core says {detail:?})",
                self.connected_since
            ))
        }
    }

    /// Starts watching the groups node `s` runs as its peer dies (power off, hang, crash,
    /// shutdown): `check_keep`. A watch under way stays as it began.
    fn watch_keep(&mut self, s: usize) {
        if self.keep[s].is_some() || self.nodes[s].power != Power::Up {
            return;
        }
        let groups = (0..self.cfg.groups.len())
            .filter(|&g| self.role(s, g) == Some(Role::Active))
            .fold(0u8, |bits, g| bits | 1 << g);
        if groups != 0 {
            self.coverage.keeps_watched += 1;
            self.keep[s] = Some(KeepWatch { since: self.now, groups });
        }
    }

    /// A node that takes over its dead peer's groups never interrupts the ones it already
    /// runs (SPEC §7.1, `core::groups`): from the peer's death until it is back, a group
    /// that was active here stops only for a policy of its own (`group_policy`), for a
    /// replay of the peer's frames that claim it (fence watchdog, core docs), because the
    /// node lost its ping nodes too (isolated: fence watchdog releases), or because the peer
    /// was fencing it before it died (its last frames say it takes over: the holder
    /// releases, its fence may be on its way: SIM seed 15931).
    fn check_keep(
        &mut self,
        n: usize,
        g: usize,
        detail: hapair::core::Detail,
    ) -> Result<(), String> {
        let Some(w) = self.keep[n].filter(|w| w.groups & (1 << g) != 0) else { return Ok(()) };
        if self.nodes[n].groups[g].last_role != Role::Active {
            return Ok(());
        }
        self.coverage.keep_stops_judged += 1;
        let window = self.cfg.peer_deadtime() + self.cfg.max_link_interval() + self.cfg.max_delay();
        let replayed = self.replaying_until[n] + self.cfg.peer_deadtime() > self.now;
        let fenced =
            self.nodes[1 - n].fencing_at.is_some_and(|t| self.now.saturating_since(t) <= window);
        if self.group_policy(n, g, window) || replayed || fenced {
            return Ok(());
        }
        Err(format!(
            "keep: node {n} stops group {g}, which it ran when its peer died at {}, for no \
             policy of the group (the core says {detail:?})",
            w.since
        ))
    }

    /// Some resource of group `g` on node `n` is not running although it holds the group (it
    /// broke, or an adopted group was found partly running): restarting it is a resource
    /// policy.
    fn holds_partly(&self, n: usize, g: usize) -> bool {
        let truth = &self.nodes[n].truth[self.ranges[g].clone()];
        truth.iter().any(|t| *t != Truth::Running)
    }

    /// Starts an L1 watch for each group node `n` runs when it dies while active: a survivor
    /// healthy for that group must be active by deadtime, the fence (the longest fence
    /// command, or W + M under fence watchdog, from the configuration), its own start-up wait
    /// (`initdead` if it is still starting), and the group's start, plus the last frame's
    /// interval and delay. A death during a watch disturbs it.
    fn note_death(&mut self, n: usize) {
        self.watch_keep(1 - n);
        for w in self.l1.iter_mut().flatten() {
            w.disturbed = true;
        }
        if self.nodes[n].power != Power::Up {
            return;
        }
        for g in 0..self.cfg.groups.len() {
            if self.role(n, g) == Some(Role::Active) && self.l1[g].is_none() {
                self.l1[g] = self.l1_watch(n, g);
            }
        }
    }

    /// The L1 watch of group `g` when node `n`, which runs it, dies (`None`: no L1 case).
    fn l1_watch(&mut self, n: usize, g: usize) -> Option<L1Watch> {
        let survivor = 1 - n;
        let s = &self.nodes[survivor];
        // Under fence watchdog a replay at the survivor postpones its takeover (core docs).
        let replayed = self.cfg.fence == FenceMode::Watchdog
            && self.replaying_until[survivor] + self.cfg.peer_deadtime() > self.now;
        // A peer that advertised no armed watchdog is never taken over by waiting (SPEC
        // §7.3): L1 does not apply to it.
        // Nor to a survivor without one, which `run` refuses: it may know no timeout to wait.
        let unfenceable = self.cfg.fence == FenceMode::Watchdog && self.cfg.unarmed.is_some();
        // A survivor back from an unclean stop that has not surely heard its peer since may
        // wait for it (SPEC §7.4): no takeover of a peer it never heard.
        let waits = self.cfg.fence == FenceMode::External && !s.boot_clean && !s.met;
        // The survivor may run the group: healthy for it, no intent of the operator's, not
        // shutting down itself (its groups exit one by one: SIM seed 16432).
        let quiet = self.world_healthy(survivor, g)
            && !s.shutdown_requested
            && !replayed
            && !unfenceable
            && !waits
            && s.groups[g].intent == Intent::None
            && !s.starts_fail
            && (!self.fences_fail || self.cfg.fence != FenceMode::External);
        if !quiet {
            self.coverage.l1_not_applicable += 1;
            return None;
        }
        // `fence_delay` once (the survivor does not own the group), three times when it held
        // a group itself lately (it may still look like the owner to its peer: every group
        // fences in the first group's order, `core::groups`).
        let window = self.cfg.peer_deadtime().saturating_mul(2) + self.cfg.fence_delay;
        let held = s.groups.iter().any(|h| h.held_at.is_some_and(|t| t + window >= self.now));
        // A survivor that lost its peer before this death (a partition first) may enter
        // `Fencing` late, after it could not run the group: three slots more (SIM seed 97421).
        let lost_before = s.core.as_ref().is_some_and(|c| !c.peer().alive);
        let initdead = self.cfg.peer_deadtime().saturating_mul(2);
        let starting = s.booted_at + initdead + Duration::from_millis(self.cfg.action_ms.1 * 8);
        let wait = if self.now < starting { initdead } else { Duration::ZERO };
        let deadline = |held: bool| {
            let slots = if held { 3 } else { 1 } + if lost_before { 3 } else { 0 };
            let fence = match self.cfg.fence {
                FenceMode::None => Duration::ZERO,
                FenceMode::External => {
                    self.cfg.fence_delay.saturating_mul(slots) + self.cfg.fence_max()
                }
                FenceMode::Watchdog => self.cfg.watchdog_wait(),
            };
            self.now
                + self.cfg.peer_deadtime()
                + fence
                + wait
                + self.cfg.group_action_time(g)
                + self.cfg.keepalive
                + self.cfg.max_link_interval()
                + self.cfg.max_delay()
        };
        // The survivor notices the death a deadtime after the last frame, at the latest.
        let notices = self.now + self.cfg.peer_deadtime() + self.cfg.max_link_interval();
        let held_deadline = (!held).then(|| (deadline(true), notices));
        let since = self.now;
        let (met, disturbed, back) = (false, false, false);
        Some(L1Watch {
            since,
            deadline: deadline(held),
            held_deadline,
            survivor,
            met,
            disturbed,
            back,
        })
    }

    /// Something the world knows excuses the survivor of every L1 watch whose survivor is
    /// node `n` (crashed, hung, restarted, unhealthy, told to stand by, its starts or the
    /// fence fail).
    fn disturb_l1(&mut self, n: usize) {
        for w in self.l1.iter_mut().flatten().filter(|w| w.survivor == n) {
            w.disturbed = true;
        }
    }

    /// ... and of group `g`'s watch only (a failure of one of its resources, a command for
    /// it).
    fn disturb_l1_group(&mut self, n: usize, g: usize) {
        if let Some(w) = self.l1.get_mut(g).and_then(Option::as_mut).filter(|w| w.survivor == n) {
            w.disturbed = true;
        }
    }

    /// Node `n` starts or wakes: if it is the dead node, the question of L1 changed.
    fn l1_node_back(&mut self, n: usize) {
        for g in 0..self.cfg.groups.len() {
            let Some(survivor) = self.l1[g].as_ref().map(|w| w.survivor) else { continue };
            // The dead node back after the survivor started the group (it fenced it, or its
            // watchdog reset it) finds the group held and changes nothing.
            let taken =
                self.role(survivor, g).is_some_and(|r| matches!(r, Role::Starting | Role::Active));
            let Some(w) = self.l1[g].as_mut() else { continue };
            if n == w.survivor || (!taken && !w.disturbed) {
                w.back |= n != w.survivor && !w.disturbed;
                w.disturbed = true;
            }
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
                    self.nodes[n].woke_at = Some(self.now);
                    self.last_wake = Some(self.now);
                    // It wakes holding what it held: the question of L1 changed, and its peer's
                    // groups are no longer kept for a death (`check_keep`).
                    self.disturb_l1(n);
                    for w in self.l1.iter_mut().flatten().filter(|w| w.survivor != n) {
                        if !w.disturbed {
                            w.back = true;
                            w.disturbed = true;
                        }
                    }
                    self.keep[1 - n] = None;
                    tr!(self, "node {n}: wakes up");
                    self.pet_on_waking(n);
                    // Health changed while it slept: the sensors are read again on waking.
                    let health = self.nodes[n].health;
                    self.input(n, Input::Health(health))?;
                    self.ping_step(n)?;
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

    /// The loop's pet on the wake that ends a hang of node `n`, by the real cadence and lag
    /// gate (`health::pet`): the watchdog was last petted when the hang began (the world's
    /// petting is otherwise continuous); after a stall of half the timeout or more the wake
    /// does not pet, and the next attempt (`PetSchedule::next_deadline`, `WITHHELD_RETRY`
    /// later) does if the core still allows it (what waited in the sockets while it hung may
    /// have made it self-fence). A pet not yet due waits for its time.
    fn pet_on_waking(&mut self, n: usize) {
        let Some(timeout) = self.cfg.watchdog_of(n) else { return };
        let (gate, mut schedule) =
            (PetGate::for_timeout(timeout), PetSchedule::for_timeout(timeout));
        let hung_since = self.nodes[n].hung_since;
        schedule.handle_petted(hung_since);
        let lag = loop_lag(self.now, hung_since, hung_since);
        if schedule.poll_due(self.now) && gate.may_pet(lag, self.nodes[n].petting) {
            self.nodes[n].watchdog_fires = None;
            return;
        }
        let inc = self.nodes[n].incarnation;
        self.schedule(schedule.next_deadline(), Ev::PetResume { node: n, inc });
    }

    fn finish_checks(&mut self, end: Instant) -> Result<(), String> {
        self.check_durations(end)?;
        self.now = end;
        Ok(())
    }
}

/// A frame's payload for the trace: the first group's fields, then each further group's part
/// (`| g1 Heartbeat Active None f1 e3`, `r` when its restarts are exhausted).
fn short(p: &Payload) -> String {
    let mut s = format!(
        "{:?} {:?} h{:#x} {:?} f{} e{}",
        p.kind, p.state, p.health.0, p.intent, p.flags, p.epoch
    );
    for g in 1..p.groups.count() {
        if let Some(part) = p.groups.part(g) {
            let restarts = if part.restarts { " r" } else { "" };
            let _ = write!(
                s,
                " | g{g} {:?} {:?} {:?} f{} e{}{restarts}",
                part.kind, part.state, part.intent, part.flags, part.epoch
            );
        }
    }
    s
}

/// Runs one seed; `Err` carries the violation (and the trace when `trace`).
pub fn run_seed(cfg: Config, trace: bool) -> (Result<(), String>, World) {
    let mut world = World::new(cfg, trace);
    let result = world.run();
    (result, world)
}
