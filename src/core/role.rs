//! The group's states on this node (`Role`), why a role changed (`Reason`) and what follows a
//! stop (`AfterStop`): the plain values that `status`, the wire, the simulator and the tests
//! see. Beside them `Phase`, the role with the state that only that role uses, which `Node`
//! keeps instead of a `Role` (see "Role-scoped state" in the core docs), and which timers
//! each role may arm. It holds no `Node` and changes nothing: the one transition function is
//! in `transition.rs`, the decisions that call it in `decide.rs`, `fencing.rs` and `drive.rs`.

use super::Event;
use super::time::Duration;
use super::timer::Timer;
use crate::wire::GroupState;

/// The group's state on this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Just started: holds nothing, waits up to `initdead` to hear the peer.
    Init,
    /// Holds nothing and is ready to take the group (when allowed).
    Standby,
    /// Holds nothing; the peer is dead and this node makes it safe (fence command or watchdog
    /// wait) before it starts the group. Advertises `FLAG_TAKING_OVER`.
    Fencing,
    /// Owns the group and starts its resources in order, one action at a time.
    Starting,
    /// Owns the group; every resource started; monitors them every `monitor_interval`.
    Active,
    /// Stops resources in reverse order down to index `floor`, then does `then`. Resources
    /// below `floor` keep running (a restart in place).
    Stopping {
        /// The lowest resource to stop.
        floor: u8,
        /// What follows once they are all stopped.
        then: AfterStop,
    },
    /// The group cannot run here until `cleanup`. `holding`: a stop failed, so resources may
    /// still run (the peer must fence this node before it starts them).
    Failed {
        /// Resources may still run here.
        holding: bool,
    },
    /// Resources are not managed (nothing started, stopped or monitored). `holding`: the
    /// group was running here when maintenance began.
    Maintenance {
        /// The group was running here.
        holding: bool,
    },
    /// Shutdown finished; the node does nothing more.
    Exited,
}

/// What a `Stopping` role does once its resources are stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterStop {
    /// Become standby.
    Standby,
    /// Grant the group to the peer when it can run it, else become standby.
    HandOver,
    /// Grant the group to a healthy peer, else become failed (restarts exhausted).
    GiveUp,
    /// Start the stopped resources again (restart in place).
    Restart,
    /// Tell the peer `Leaving` and exit.
    Exit,
}

/// Why a role changed (logged, notified, and kept for `status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The node just started.
    Boot,
    /// The peer was heard during `initdead`.
    PeerHeard,
    /// `initdead` passed without a word from the peer.
    InitDeadExpired,
    /// The peer is dead.
    PeerDead,
    /// The peer is heard again.
    PeerAlive,
    /// This node may not take the group (ping, restarts, intent).
    CannotRun,
    /// The home node chose this node to run the group.
    Elected,
    /// The peer granted the group (`Release`).
    Granted,
    /// The peer left (`Leaving`).
    PeerLeft,
    /// The fence command succeeded.
    Fenced,
    /// The fence-watchdog wait passed.
    FenceWaitOver,
    /// `hapair takeover --force`: the operator vouched that the peer is down.
    Forced,
    /// All resources started.
    Started,
    /// All resources stopped.
    Stopped,
    /// `hapair standby` here.
    AdminStandby,
    /// The peer asked for the group (`hapair takeover` there).
    PeerRequested,
    /// `auto_failback`: the home node is back and healthy.
    Failback,
    /// This node is unhealthy and the peer is healthy.
    Health,
    /// A resource failed; restart in place.
    Restart,
    /// `restart_limit` exhausted.
    RestartsExhausted,
    /// A stop failed.
    StopFailed,
    /// Both nodes ran the group; the non-home one releases.
    SplitBrain,
    /// The peer hears nothing from us and is taking over.
    PeerTakingOver,
    /// Fence watchdog: no peer and no ping node: release (self-fence).
    Isolated,
    /// Fence watchdog: the dead peer advertised no armed watchdog, so no wait can fence it
    /// (it is not taken over; also the detail of its `PeerDead` notification).
    PeerUnfenceable,
    /// Graceful shutdown.
    Shutdown,
    /// The start-up probes found resources running here that this node may not keep.
    Probed,
    /// The start-up probes found the group running here and this node keeps it.
    Adopted,
    /// Maintenance mode on or off.
    Maintenance,
    /// `hapair cleanup`.
    Cleanup,
}

impl Role {
    /// True while resources may run here.
    pub fn holds(self) -> bool {
        match self {
            Role::Starting | Role::Active | Role::Stopping { .. } => true,
            Role::Failed { holding } | Role::Maintenance { holding } => holding,
            Role::Init | Role::Standby | Role::Fencing | Role::Exited => false,
        }
    }

    /// The state as the wire and `status` name it.
    pub fn group_state(self) -> GroupState {
        match self {
            Role::Init | Role::Standby | Role::Fencing | Role::Exited => GroupState::Standby,
            Role::Starting => GroupState::Starting,
            Role::Active => GroupState::Active,
            Role::Stopping { .. } => GroupState::Stopping,
            Role::Failed { .. } => GroupState::Failed,
            Role::Maintenance { .. } => GroupState::Maintenance,
        }
    }

    /// Whether a node in this role may have `timer` armed: each node-wide timer belongs to
    /// one role, and a transition stops those the new role may not have.
    pub(super) fn may_arm(self, timer: Timer) -> bool {
        match timer {
            Timer::InitDead => self == Role::Init,
            Timer::FenceWait | Timer::FenceDelay | Timer::FenceRetry => self == Role::Fencing,
            Timer::Monitor => self == Role::Active,
        }
    }

    /// Stopping the whole group, then `then`.
    pub fn stopping(then: AfterStop) -> Role {
        Role::Stopping { floor: 0, then }
    }

    /// The notification that announces this role.
    pub(super) fn event(self) -> Event {
        match self {
            Role::Init | Role::Standby | Role::Exited => Event::Standby,
            Role::Fencing => Event::Fencing,
            Role::Starting => Event::Starting,
            Role::Active => Event::Active,
            Role::Stopping { .. } => Event::Stopping,
            Role::Failed { .. } => Event::Failed,
            Role::Maintenance { .. } => Event::Maintenance,
        }
    }
}

/// This node's role together with the state that only that role uses: `Node` keeps this, and
/// `Phase::role` is the plain `Role` it shows. A transition enters a fresh phase
/// (`Phase::entered`), so nothing a role kept can outlive it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// `Role::Init`, with the start-up probes.
    Init {
        /// The next resource to probe (`None`: every probe was issued).
        probe_next: Option<u8>,
        /// `initdead` ran out (`decide_init` acts on it once the probes are in).
        initdead_over: bool,
    },
    /// `Role::Standby`.
    Standby,
    /// `Role::Fencing`, with the fence run or wait under way.
    Fencing {
        /// `Output::Fence` was issued and its `Input::FenceResult` has not come.
        fence_running: bool,
        /// The peer's run (incarnation, run number) that the fence under way was started
        /// against: the run its success makes safe, whatever run is heard meanwhile (a fence
        /// that reboots the peer may return after its next run was heard).
        target: Option<(u64, u32)>,
        /// Fence commands issued since `Fencing` began (the retry backoff doubles with each).
        fence_attempts: u32,
        /// How long this node stalled since `Fencing` began: the fence-watchdog wait moves on
        /// by it (our frames did not go out meanwhile).
        stalled: Duration,
    },
    /// `Role::Starting`.
    Starting,
    /// `Role::Active`, with its monitor round.
    Active {
        /// The next resource to monitor in the round under way (`None`: between rounds).
        monitor_next: Option<u8>,
    },
    /// `Role::Stopping`.
    Stopping {
        /// The lowest resource to stop.
        floor: u8,
        /// What follows once they are all stopped.
        then: AfterStop,
    },
    /// `Role::Failed`.
    Failed {
        /// Resources may still run here.
        holding: bool,
    },
    /// `Role::Maintenance`.
    Maintenance {
        /// The group was running here.
        holding: bool,
    },
    /// `Role::Exited`.
    Exited,
}

impl Phase {
    /// The first phase of a node: `Init`, probing the first of `resources` resources (if any).
    pub(super) fn first(resources: usize) -> Phase {
        Phase::Init { probe_next: (resources > 0).then_some(0), initdead_over: false }
    }

    /// `to` as a transition enters it: with its own state fresh.
    pub(super) fn entered(to: Role) -> Phase {
        match to {
            Role::Init => panic!("no transition enters Init: it is only a node's first role"),
            Role::Standby => Phase::Standby,
            Role::Fencing => Phase::Fencing {
                fence_running: false,
                target: None,
                fence_attempts: 0,
                stalled: Duration::ZERO,
            },
            Role::Starting => Phase::Starting,
            Role::Active => Phase::Active { monitor_next: None },
            Role::Stopping { floor, then } => Phase::Stopping { floor, then },
            Role::Failed { holding } => Phase::Failed { holding },
            Role::Maintenance { holding } => Phase::Maintenance { holding },
            Role::Exited => Phase::Exited,
        }
    }

    /// The role this phase is.
    pub(super) fn role(self) -> Role {
        match self {
            Phase::Init { .. } => Role::Init,
            Phase::Standby => Role::Standby,
            Phase::Fencing { .. } => Role::Fencing,
            Phase::Starting => Role::Starting,
            Phase::Active { .. } => Role::Active,
            Phase::Stopping { floor, then } => Role::Stopping { floor, then },
            Phase::Failed { holding } => Role::Failed { holding },
            Phase::Maintenance { holding } => Role::Maintenance { holding },
            Phase::Exited => Role::Exited,
        }
    }
}
