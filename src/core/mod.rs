//! The failover core: a pure, sans-IO state machine implementing SPEC §3. It reads no clock,
//! does no I/O, starts no thread and allocates nothing; the event loop (or the simulator)
//! feeds it inputs and carries out the commands it emits.
//!
//! # Call protocol (the quinn-proto `Connection` style)
//!
//! 1. `Node::new(params, now)` once, at start. It queues the first start-up probe.
//! 2. Whenever something happens, `node.handle_input(now, input)` with the current time: an
//!    authenticated frame, the completion of a resource action, a fence result, a health
//!    change, an admin command (answered by `Output::AdminAnswer` in the drain that follows),
//!    new resource definitions, a shutdown request, or `Input::Timeout` when the last
//!    deadline passed.
//! 3. After every `handle_input`, drain `node.poll_output(now)` until it returns
//!    `Output::Timeout(deadline)`, and carry out each command in order. `Timeout` says when to
//!    call `handle_input(.., Input::Timeout)` next if nothing else happens first.
//!
//! Time must never go backwards between calls. The output queue (`limits::CORE_OUTPUTS_MAX`)
//! cannot fill within one step when it is drained after each input; heartbeats are not queued
//! at all but built at `poll_output` time, so they always carry the current state.
//! Every resource action (`ResourceAction`) and `Fence` must eventually be answered with its
//! result input; the core issues at most one resource action at a time.
//!
//! # Several groups (SPEC §7.1)
//!
//! Everything below is about one resource group: one `Node` per group. The event loop holds
//! `groups::Groups`, which runs one `Node` per group behind this same call protocol and
//! decides what is the node's, not a group's: one frame for every group, one fence for every
//! group that needs the peer made safe (in the first group's fence order), the watchdog, the
//! node-wide notifications and admin answers, and `move` (see `groups.rs`). A configuration
//! without `group` lines is one group, and its `Groups` behaves as its one `Node`.
//!
//! # The group's states (see `role::Role`)
//!
//! `Init` (waiting `initdead`), `Standby`, `Fencing` (making a dead peer safe), `Starting`,
//! `Active`, `Stopping`, `Failed`, `Maintenance`, `Exited`. On the wire `Init` and `Fencing`
//! read as `standby`. Transitions happen in one place, `Node::transition`, which logs
//! (`info!` from, to, reason), notifies and counts.
//!
//! # Role-scoped state
//!
//! What only one role uses lives in that role's data, so no transition can leave it stale:
//! `Node` keeps a private `role::Phase`, the role with its own state, and `Node::role` shows
//! its plain `Role`. A transition enters a fresh phase (`Phase::entered`).
//! - `Init { probe_next, initdead_over }`: the next resource to probe, and whether
//!   `initdead` ran out (it is acted on once the probes are in).
//! - `Fencing { fence_running, target, fence_attempts, stalled }`: the fence command under
//!   way and the peer's run it was started against, the attempts that set its retry backoff,
//!   and our stalls since `Fencing` began (the fence-watchdog wait moves on by them).
//! - `Active { monitor_next }`: the monitor round under way. A monitor result that comes
//!   after `Active` ended continues nothing.
//!
//! The state is in a private enum beside `Role`, not inside `Role`'s variants. `Role` is
//! public: `status`, the event loop, the simulator and the scenario tables compare and print
//! it (`Role::Active`, `ROLE Active (Started)` in traces), and a monitor index or fence
//! attempt count inside it would make every such comparison a pattern. The pairing cannot
//! drift because `Role` is computed from the phase, never stored beside it.
//!
//! Each node-wide timer belongs to one role (`Role::may_arm`): `InitDead` to `Init`,
//! `FenceWait`, `FenceDelay` and `FenceRetry` to `Fencing`, `Monitor` to `Active`. A
//! transition stops those of the role it leaves. State that outlives a role stays on `Node`,
//! each for a reason:
//! - `pending`, the one resource action in flight: a role may end while its action runs,
//!   and the result is still awaited. Whether that action is a start-up probe goes with the
//!   action (`resources::InFlight`), not with `Init`: a shutdown while probing leaves `Init`
//!   with the probe out, and its result still says what to stop.
//! - `releasing`, a granted epoch repeated until the peer shows it: a node that granted in
//!   `Standby` may enter maintenance or fail meanwhile, and goes on granting. It exists only
//!   in roles that hold nothing. When the peer falls silent first, the grant lapses into
//!   `lapsed_grant`: a peer that only hung may act on it when it wakes, so the home node,
//!   hearing it again, grants the group anew rather than elect itself.
//! - `split_brain_seen`: one split brain lasts while the peer holds the group, whichever
//!   roles this node passes through, and is counted and notified once.
//! - `self_fencing` (until nothing is held), `shutting_down`, `restarts_exhausted`, `reconfig`
//!   (a reload's plan waits for a role that may switch).
//! - `held_at`, `unclean_wait`, `peer_vouched_down`, `peer_still_fenced`: what the fence race
//!   and the fence loop need to know across roles (see "Fence races and loops").
//!
//! # Ownership: who may start the group
//!
//! The group is a token with an `epoch` (in every frame). A node starts the group only:
//! - when the peer grants it: a `Release` frame naming an epoch newer than any it has seen
//!   (the peer stopped the group first, or holds nothing and chose us);
//! - as the *arbiter*, when both nodes are alive and neither holds the group: the `home` node
//!   is the arbiter and either starts itself or grants the peer with a `Release`; the
//!   non-home node never starts on its own while it hears the home node; the home node
//!   arbitrates only when the peer's frames say they hear it (`FLAG_PEER_ALIVE`);
//! - when the peer is dead (no valid frame on any link for `deadtime`), after fencing: fence
//!   `External` needs a successful fence result (retried with backoff, a keepalive doubling up
//!   to 8 x deadtime); fence `Watchdog` waits the watchdog margin (below), and never
//!   takes over a peer that advertised no armed watchdog; fence `None` takes over at once
//!   (no S2 guarantee);
//! - when the peer said `Leaving` (it stopped everything and exits): at once, no fencing.
//!
//! Every takeover uses the highest epoch seen plus one. A granting node repeats `Release` in
//! every frame until a peer frame shows the new epoch (an implicit acknowledgement: a lost
//! `Release` is harmless), or the peer dies. `Kind::Ack` is not used: acknowledgement is by
//! epoch. `Kind::Request` is sent by a node whose admin intent is `Takeover` while the peer
//! holds the group; the holder acts on the intent field, which every frame carries.
//! A node with `Health::PING` (no ping node answers) or with its restarts exhausted, or whose
//! intent is `standby` or `maintenance`, never takes the group.
//!
//! # Flag bits (`Payload::flags`)
//!
//! - `FLAG_HOLDING` (bit 0): resources may be running on the sender (starting, active,
//!   stopping, failed after a failed stop, maintenance while holding).
//! - `FLAG_TAKING_OVER` (bit 1): "no frame of yours reaches me, and I am fencing you to take
//!   the group". A holder that receives it (so its own frames are lost one way) releases the
//!   group at once, and with `fence watchdog` also stops petting the watchdog until it holds
//!   nothing.
//! - `FLAG_PEER_ALIVE` (bit 2): "I hear you". The home node arbitrates (starts the group
//!   itself or grants it) only when the peer's last frame carries it: only over a two-way
//!   connection, so a peer that cannot hear us (and may take over because we said `Leaving`
//!   or went silent) never finds the group started behind its back.
//!
//! Other bits are reserved and ignored.
//!
//! # The fence-watchdog margin
//!
//! With `fence watchdog`, a survivor enters `Fencing` only after `deadtime` of silence, from
//! then on advertises `FLAG_TAKING_OVER`, and takes over `W + M` after it entered `Fencing`,
//! moved on by the length of every stall of its own since (its frames did not go out). `W` is the larger of the peer's
//! advertised watchdog timeout and our own; the margin is
//! `M = deadtime + 2 x the longest link send interval + 2 x keepalive`, where `deadtime` is
//! the longest link deadtime (see "Per-link timing").
//! Why: a peer that is still up and holding learns that we take over either from our flag,
//! within one send interval plus one-way delay when any link still carries our frames, or,
//! when nothing of ours reaches it and it reaches no ping node, from its own deadtime, which
//! starts at most one send interval plus delay after we entered `Fencing` (a later frame of
//! ours would carry the flag). Either way it stops petting within `deadtime + interval +
//! delay` of our entering `Fencing`, and its watchdog resets it within `W` after that. The
//! second interval and keepalive cover a stall of the peer's loop shorter than the stall
//! detector (`keepalive + interval`) and one-way delay, assumed under one keepalive.
//! A node that stalls longer restarts its own wait on waking: the peer's silence only counts
//! while we listen. A holder that stalls longer does not pet again before it hears its peer
//! (`stall_unheard`), unless the peer has been silent for longer than its deadtime and wait:
//! its own deadtime and the ping nodes' silence count again from the wake, so only the
//! watchdog, last petted before the stall, keeps it inside the peer's wait. A node that reaches a ping node and hears nothing from us keeps the
//! group: that is the residual case of SPEC §3 S2.
//!
//! Authentic frames that are not fresh restart the wait too (`Input::Unfresh`). Since frame
//! version 2 a node acts only on frames that echo its challenge, so a node that (re)started
//! while its frames cannot reach the peer, but the peer's reach it, cannot tell the live
//! peer's frames from a recording. Taking them as proof would let recordings keep a dead
//! peer alive; ignoring them would let it start while the peer, which hears nothing, keeps
//! the group it holds (it still reaches its ping nodes) or takes it after its own wait: a
//! split brain over a link that works one way. So under `fence watchdog` they count for the
//! one thing waiting must be sure of: a node takes over by waiting only `W + M` after the
//! last such frame, and of two nodes that hear each other only one way, the one that hears
//! nothing takes the group. For the same reason a holder that hears its peer only that way,
//! with `FLAG_TAKING_OVER`, obeys the flag as if the frame were fresh: it releases and stops
//! petting until it holds nothing (only while no fresh frame of the peer arrives). It does so
//! in every role that holds (`Node::unfresh_takeover`), `Init` with what its probes found
//! too: a daemon restarted while its resources run and its frames are cut one way hears its
//! peer only so, and `initdead` is no part of `M` (SIM seeds 828136, 904579). (A
//! recording replayed at a node whose peer died delays its takeover while the recording
//! lasts: a denial of service, never a double start. With `fence CMD` the fence makes the
//! peer safe whatever its frames say; they change nothing.)
//!
//! A peer that advertises no armed watchdog (`watchdog_timeout_ms` 0: an older version, or
//! one whose watchdog did not open) is never taken as fenced by waiting (SPEC §7.3): no
//! wait makes it safe. When it dies the survivor stays `Standby`. It does not even enter
//! `Fencing`, whose `FLAG_TAKING_OVER` would make a holder that still hears us (a one-way
//! cut) release the group to nobody. It logs a warning, notifies `PeerDead` with the reason
//! `PeerUnfenceable`, shows it in `status` (`Node::peer_unfenceable`), and takes the group
//! only when the peer says `Leaving`, or is heard again and grants it. L1 does not hold for
//! such a peer: §7.3 wins. What the peer advertised outlives this node's restarts
//! (`Params::peer_watchdog_timeout_ms`, kept in the statedir by the loop), so a restart
//! that does not hear the peer does not forget it. A peer never heard at all (a first start
//! alone, or a lost statedir) is assumed to run this configuration: `W` is our own timeout.
//! That holds for every current peer, since `run` refuses `fence watchdog` unless the device
//! keeps exactly the configured timeout (`drivers::watchdog::judge_promise`); the residual
//! is an older peer without an armed watchdog that this node has never heard. Refusing to
//! wait for a peer never heard would instead leave a pair whose other node is gone without
//! the group for good.
//!
//! # Per-link timing (SPEC §7.7)
//!
//! Each link has its own `LinkParams` (`send_interval`, `warn_after`, `dead_after`): from its
//! medium line's `keepalive` and `deadtime` (the global ones when the line sets none), longer
//! for a serial line too slow for its keepalive. Each link beats at its own interval and is
//! down once silent for its own `dead_after` of this node's listening (`Link::down_at`). The
//! peer is dead when every link is down (`Node::peer_dead_at`): a working slow link is proof
//! of life, and the peer is found dead exactly when the slowest still-working link's deadtime
//! runs out after its last frame. A fast link going down alone never makes the peer dead.
//! With every link at the global timing all this is the single `deadtime` of before.
//! Where the rest of the core used `deadtime`, each use was weighed:
//! - the peer's liveness, `peer_surely_dead` and the deadline the loop wakes for: per link;
//! - the windows that must cover "the other node has not found us dead yet" take the
//!   effective deadtime, the longest link deadtime (`Node::peer_deadtime`): the margin `M` of
//!   the fence-watchdog wait, the stall's may-wait window (`stall_unheard`), the wait after
//!   unfresh claims, the held-recently window of the fence order;
//! - the stall detector stays under two thirds of the shortest link deadtime (a stall must
//!   not make a live peer look dead on any link);
//! - a peer frame is counted late by the longest link `warn_after`;
//! - the fence retry cap (8 x `deadtime`), `initdead` and `fence_delay` keep the global
//!   values (no liveness judgement; `check` keeps `initdead` at least every link deadtime).
//!   No window of the peer's covers `initdead`: `check`'s default, twice the longest link
//!   deadtime, exceeds `M` whenever that deadtime exceeds 2 x the longest interval plus
//!   2 x keepalive (with every link at the global timing too), so a node in `Init` holding
//!   what its probes found never waits for it once the peer says it takes over, fresh or
//!   not (SIM seeds 828136, 904579);
//! - outside the core, the ping cadence follows the longest link deadtime
//!   (`event_loop::health_io::ping_interval`): the holder must know it lost its ping nodes
//!   within about the deadtime the survivor's wait follows (`health::self_fence`).
//!
//! # Fence races and loops (SPEC §7.4)
//!
//! Under `fence CMD` a full partition of two live nodes that both hold nothing would end with
//! each fencing the other (a fence race: nobody survives), and a fenced node that reboots into
//! the partition would fence the survivor back (a fence loop). Three rules prevent them.
//!
//! *The run being fenced.* A fence is started against the peer's run heard last
//! (`Phase::Fencing::target`); its success makes that run safe (`PeerStatus::fenced`: its
//! frames in flight are ignored). A later run heard meanwhile is the peer's next life: an
//! agent that reboots (`fence_ipmilan`'s default) may return after the peer's new daemon was
//! heard, and taking that run for the fenced one would ignore the peer for good. After the
//! success, until anything of the peer is heard fresh, the peer stays safe
//! (`peer_still_fenced`): its next run waits for us (below), so the group may be taken again
//! (after a `standby`, say) without a second fence.
//!
//! *`fence_delay` (`Params::fence_delay`, default deadtime).* A node entering `Fencing` runs
//! the fence command after a wait, in slots of `fence_delay` (`fence_delay_on_entry`):
//! 0 for the home node when neither node holds the group; 1 for a node whose peer held the
//! group when last heard, and for the non-home node when neither did; 2 (home) or 3 for a node
//! that held the group itself within deadtime plus `fence_delay` before it lost the peer;
//! three more for a node that enters `Fencing` well after it lost the peer (it could not run
//! the group then: ill, in standby or maintenance), so a peer that lost it at the same moment
//! fences first, and two nodes that become able together are still ordered.
//! Holding means what the frames show: `FLAG_HOLDING` in a state other than `standby` (a node
//! in `Init` that probes or found something shows `standby`; both sides ignore it alike).
//! After the wait the fence runs only if the peer is still unheard (`decide_fencing` leaves
//! `Fencing` when it is heard). Why the slots: the two nodes judge "who owns the group" from
//! what each heard last, which a partition cuts at different moments. A node that held the
//! group lately may still look like the owner to its peer, whatever it thinks of the peer:
//! its peer then waits one slot (it heard it holding), so it takes two or three. Going
//! through the cases, whenever the frames each node heard last were sent within deadtime
//! plus `fence_delay` of the partition, the two nodes land in different slots; so, when
//! `fence_delay` exceeds the time a fence takes to reset the peer plus the skew between the
//! moments the two notice the partition (about a link interval), one fence resets its peer
//! before the other starts: one fence per partition, never a mutual kill. The owner of the
//! group does not fence at all while it holds it; the other fences after `fence_delay`, so a
//! partition that heals within it fences nobody. The residual (README "Fence races and
//! loops"): a node that starts (cleanly) into a partition, or is put online in one, cannot
//! know when its peer began to fence, so two fences of independent timelines may still cross.
//!
//! *No fence and no takeover after an unclean stop before the peer is heard.* When the
//! statedir shows no clean exit of the previous run (`Params::start_unclean`: a crash, reset,
//! power loss or kill of the daemon), this node does not enter `Fencing` (nor take the group)
//! until a fresh frame of its peer arrives (`unclean_wait`, in `status`). A node fenced by its
//! peer therefore never fences the survivor back when it reboots into the partition, and
//! rejoins as standby when the links come back. `Admin::TakeoverForce` (`hapair takeover
//! --force`) is the operator vouching that the peer is down: it ends the wait, and while the
//! peer is not heard the group is taken once without fencing it (a manual fence confirmation,
//! for a peer that is off with its fence device); anything heard of the peer cancels it.
//!
//! # Adoption: probes at start
//!
//! A new `Node` first probes every resource (a `Monitor` action each, in order, one at a
//! time) and decides nothing until every probe is in: `Init` is left neither when the peer is
//! heard nor when `initdead` runs out, and a `Release` is refused meanwhile (the granter
//! repeats it). A probe that says `Ok` marks the resource running, `NotRunning` stopped, and a
//! failure marks it failed (it may hold something, so it is stopped before it runs anywhere);
//! probes count no failures. While probing, and afterwards while it found anything, a node in
//! `Init` advertises `FLAG_HOLDING` (its state still reads `standby`): the home node never
//! arbitrates and no peer starts the group over it. Once the probes are in:
//! - nothing found: as before (`standby` when the peer is heard or `initdead` ran out);
//! - found, and the live peer holds the group (any holding state but `Init`), or this node may
//!   not run it (ping, intent): stop what was found, then `standby` (reason `Probed`);
//! - found, and the live peer holds nothing and hears us (`FLAG_PEER_ALIVE`): adopt it with a
//!   new epoch (reason `Adopted`): `active` at once when every resource runs (no start action
//!   is run again: a daemon restart does not interrupt the service), else the resources from
//!   the first one not running are stopped and started again, like a restart in place;
//! - found on both nodes, both still in `Init`: the home node adopts, the other waits and then
//!   stops its own (the peer now holds the group);
//! - found, and `initdead` runs out without a word from the peer: stop what was found, then
//!   the dead-peer path (fencing first) decides. The peer may run the group; we cannot know.
//! - found, under `fence watchdog`, and frames of the peer that are not fresh say it takes or
//!   runs the group: stop what was found at once (reason `PeerTakingOver`), and stop petting
//!   until it is stopped (see "The fence-watchdog margin"): the peer's wait does not cover
//!   `initdead`.
//! - a shutdown while probing stops what was found and what was not probed yet.
//!
//! A peer that reads `standby` with `FLAG_HOLDING` (in `Init`, probing or holding what it
//! found) is not handed the group, and with `fence watchdog` a node that is probing counts as
//! holding for the self-fence (what it has not probed may run).
//!
//! # Reload: new resource definitions (SPEC §1)
//!
//! `Input::Resources` brings a `ResourcePlan`: which new resources keep an old one (defined
//! exactly alike: it runs on untouched), which are new or changed (started with the new
//! definition), which old ones are retired (changed or removed: stopped with the old
//! definition). The core keeps the plan until it may switch, then emits
//! `Output::ApplyResources` and takes the new group: kept resources keep their state and
//! failure counts, the others start `Stopped`. When it may switch:
//! - holding nothing (`Init` done probing and holding nothing, `Standby`, `Fencing`, `Failed`
//!   or `Maintenance` without the group), with no action in flight: at once;
//! - `Starting` or `Active`: it first stops each retired resource that may run, last first,
//!   staying in its role (the group keeps running: no handover, no `stopping` state), then
//!   switches, then starts each resource that does not run, in the new order. `Active`
//!   starts them in place too; a start that fails follows the ordinary failure rules
//!   (restart in place with `restart_limit`, then the handover);
//! - `Stopping`, `Failed` or `Maintenance` holding the group, or `Init` while probing or
//!   holding what it found: later, when the role allows (what is then stopped anyway is not
//!   stopped twice).
//!
//! Only the retired resources are stopped: those after one in the start order keep running
//! (SPEC §1 forbids touching them). The group's order is no dependency model the reload
//! honours; a resource that others depend on (a filesystem under a database) is best changed
//! by a handover (README "Reload").
//!
//! # Rules decided here
//!
//! - Restarts: a monitor failure or a failed start counts one failure, in a window of
//!   `restart_limit.window` that the first failure opens and that ends that long after it
//!   (the next failure then opens a new one: systemd's start-limit window, O(1) for any count,
//!   `resources::RestartWindow`); while the window holds at most `restart_limit.count`
//!   failures, the failed resource and those after it are stopped (reverse order) and started
//!   again in place. Past the limit the node sets `Health::RESTARTS`, stops the group, and
//!   releases it to a peer that can run it, or stays `failed` when there is none. `cleanup`
//!   clears the counts and the bit.
//! - A failed stop leaves this node `failed` and holding (`FLAG_HOLDING`): the peer never
//!   starts the group without fencing it first. With `fence watchdog` the failed node also stops
//!   petting its watchdog, so the reset makes it safe. `cleanup` retries the stop.
//! - `Leaving` is only ever sent by a node that holds nothing.
//! - Split brain (both starting/active while they hear each other): the non-home node stops
//!   the group at once (no `Release`); both notify `SplitBrain`. The home node stops it too
//!   when the peer's frames, two link intervals and two keepalives after it became alive,
//!   still lack `FLAG_PEER_ALIVE`: the peer does not hear us (a link that works one way) and
//!   cannot resolve it. Under `fence watchdog` a holder whose peer it cannot hear fresh, but
//!   whose unfresh frames say the peer takes or runs the group, releases and self-fences.
//! - `takeover` is a standing intent until `online` or `standby`; it also blocks
//!   `auto_failback` from moving the group away from a node that asked for it.
//! - Only fresh frames arrive here: `wire::session` passes a frame only once the peer echoed
//!   this node's current challenge, and only of the one run of the peer it accepted. So
//!   nothing sent before this node started, and nothing of an earlier run of the peer, counts
//!   as liveness, `Release`, `Leaving` or the peer-alive flag. A frame of another run
//!   (incarnation, run number) than the last one means the peer restarted, whichever way its
//!   incarnation went: everything known about it is forgotten and `PeerRestarted` is
//!   notified. Frames of a run this node fenced are ignored.
//! - Maintenance is entered from a stable state (standby, active, failed); asked for during a
//!   start or stop, it begins when that finishes. Leaving it over a whole group goes back to
//!   `active` and monitors everything again; over part of one (maintenance began after a failed
//!   stop) it goes back to `failed`. Maintenance does not suspend the fence-watchdog
//!   self-fence: the peer cannot know about it.
//! - Health wins over an admin request: a `takeover` intent does not move the group from a
//!   healthy node to an unhealthy one. So a `takeover` asked on a node that is unhealthy
//!   while its live peer is healthy, or whose health forbids it to take the group at all (no
//!   ping node answers, restarts exhausted), is refused (`Output::AdminAnswer` with a
//!   `Refusal`; `hapair takeover` exits 1 saying why) and changes nothing: no intent is kept.
//!   Other commands are always done.
//! - Frames overtake each other across links. A frame whose epoch is older than the last one
//!   seen from the peer still proves the peer alive but does not replace what we believe of
//!   its state.
//! - Stalls: a gap between two inputs longer than `keepalive` plus the slowest link's send
//!   interval means this node itself stalled (the loop wakes at least that often). The stall
//!   is taken out of the peer's silence and added to the fence-watchdog wait: we did not
//!   listen, nor send, meanwhile. Only the stall: restarting the silence at every stall would
//!   keep a dead peer alive on a machine that stalls more often than once a deadtime. A stall
//!   keeps a live peer alive, but never revives a dead one.
//! - Fence `None`: the takeover happens as soon as the peer is dead; the reason is still
//!   called `FenceWaitOver`.
//! - Time must not go backwards between calls (asserted: the event loop guarantees it).
#![forbid(unsafe_code)]

mod decide;
mod drive;
mod fencing;
#[cfg(any(test, fuzzing, feature = "sim"))]
pub mod fuzz;
pub mod groups;
pub mod liveness;
pub mod node;
pub mod resources;
pub mod role;
#[cfg(test)]
mod testkit;
pub mod time;
pub mod timer;
mod transition;

pub use groups::Groups;
pub use liveness::{LinkHealth, LinkParams, LinkStatus};
pub use node::{Counters, FenceOrder, Node, PeerStatus};
pub use resources::{ResourcePlan, ResourceState, ResourceStatus};
pub use role::{AfterStop, Reason, Role};

use crate::limits::LINKS_MAX;
use crate::wire::Health;
use time::{Duration, Instant};

/// Resources may be running on the sender.
pub const FLAG_HOLDING: u8 = 1 << 0;
/// The sender hears nothing from the receiver and is fencing it to take the group.
pub const FLAG_TAKING_OVER: u8 = 1 << 1;
/// The sender hears the receiver (the receiver's current incarnation is alive to it).
pub const FLAG_PEER_ALIVE: u8 = 1 << 2;

/// How a dead peer is made safe before a takeover (`fence` in the configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FenceMode {
    /// No fencing: take over after deadtime (no S2 guarantee).
    None,
    /// `fence watchdog`: wait the peer's watchdog timeout plus a margin.
    Watchdog,
    /// `fence CMD`: run the command (`Output::Fence`) and wait for its success.
    External,
}

/// `restart_limit COUNT in WINDOW`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestartLimit {
    /// Local restarts allowed within one window (0 to 1000, as the configuration allows).
    pub count: u32,
    /// How long a window lasts from the failure that opened it (`resources::RestartWindow`).
    pub window: Duration,
}

/// Everything the core needs from the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    /// This node's index in the `node` lines (0 or 1).
    pub me: u8,
    /// The peer's index.
    pub peer: u8,
    /// The index of the `home` node.
    pub home: u8,
    /// Heartbeat interval.
    pub keepalive: Duration,
    /// Lateness after which a heartbeat is counted late.
    pub warntime: Duration,
    /// Silence on every link after which the peer is dead.
    pub deadtime: Duration,
    /// How long to wait for the peer at start.
    pub initdead: Duration,
    /// Move the group back to `home` when it returns healthy.
    pub auto_failback: bool,
    /// How a dead peer is made safe.
    pub fence: FenceMode,
    /// `fence_delay`: under `fence CMD`, how long a node that is not the winner of a fence
    /// race waits before it fences (see "Fence races and loops").
    pub fence_delay: Duration,
    /// The statedir shows no clean exit of the previous run (a crash, reset or power loss):
    /// under `fence CMD` this run neither fences nor takes the group before it has heard its
    /// peer (see "Fence races and loops"). False on a first start.
    pub start_unclean: bool,
    /// This node's hardware watchdog timeout (advertised in every frame).
    pub watchdog_timeout: Option<Duration>,
    /// The watchdog timeout the peer advertised last, as an earlier run of this node stored
    /// it (0: none armed; `None`: never heard). Until the peer is heard in this run, the
    /// fence-watchdog wait takes it from here (see "The fence-watchdog margin").
    pub peer_watchdog_timeout_ms: Option<u32>,
    /// Resources in the group (at most `limits::RESOURCES_MAX`).
    pub resources: u8,
    /// The group has a `drbd` resource (SPEC §7.5): `Health::DRBD` (a local disk not
    /// UpToDate) bars a node from it, as `Health::PING` does; a group without one ignores it.
    pub drbd: bool,
    /// How often running resources are monitored.
    pub monitor_interval: Duration,
    /// Local restarts before the group fails over.
    pub restart_limit: RestartLimit,
    /// The heartbeat links, in the order of the configuration.
    pub links: heapless::Vec<LinkParams, LINKS_MAX>,
    /// Whether `ping` nodes are configured (otherwise `Health::PING` is never expected).
    pub ping_configured: bool,
    /// Boot into standby (`hapair.standby=1`): start with admin intent `standby`.
    pub start_standby: bool,
    /// The previous run of this daemon was self-fencing (it had stopped petting the watchdog
    /// to be reset while it may hold the group; `statedir/self-fence`): this run keeps the
    /// watchdog unpetted, and takes nothing, until it holds nothing. A daemon restarted before
    /// the watchdog fired must not undo the reset the peer is waiting for.
    pub start_self_fencing: bool,
    /// The first 8 bytes of SHA-256 over the effective configuration.
    pub config_digest: [u8; 8],
    /// Test only: a seeded bug. The simulator uses each to prove that its oracle catches the
    /// guarantee it breaks (a checker is trusted once it has been seen to fail).
    #[cfg(feature = "sim")]
    pub sim_mutation: Mutation,
}

/// A seeded bug for the simulator's mutation tests, one per guarantee (SPEC §3). Only the
/// `sim` feature has the `Params` field that selects one; without it `Node::mutated` is
/// always false and the daemon has none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mutation {
    /// The real code.
    #[default]
    None,
    /// S2: take over from a dead peer without fencing or waiting (any fence mode).
    SkipFenceWait,
    /// S1: the non-home node keeps the group when both run it (no split-brain release).
    KeepSplitBrain,
    /// L1: a survivor never takes the group from a dead peer after fencing.
    NeverTakeOver,
    /// L2: an active node hands the group to any peer that can run it, without a policy.
    HandOverAtWill,
    /// S2 under fence watchdog: a holder cut off from its peer and every ping node keeps the
    /// group and its watchdog petted (no self-fence).
    NoSelfFence,
    /// No mutual kill: every node fences at once, whoever owns the group (no `fence_delay`).
    NoFenceDelay,
    /// No fence loop: a node back from an unclean stop fences without having heard its peer.
    FenceAfterUncleanBoot,
    /// A fenced node is heard again: a fence's success marks the run heard last as fenced,
    /// not the run that was being fenced when the fence started (the bug of issue 22).
    FenceTheRunHeardLast,
    /// S2 under fence watchdog: a holder that stalled past the stall threshold pets again on
    /// waking, before it hears its peer.
    PetAfterStall,
    /// No mutual kill: a node that enters `Fencing` well after it lost its peer takes the
    /// slots of one that lost it just now (no three more).
    NoLateFenceSlots,
    /// No mutual kill with several groups: each group fences in its own order
    /// (`core::groups` does not make the groups after the first follow the first one's).
    OwnFenceOrder,
    /// S2 under fence watchdog: a holder outside `starting` and `active` (in `Init` with what
    /// its probes found, stopping, in maintenance) ignores frames of its peer that are not
    /// fresh and say it takes the group: it pets on, and in `Init` keeps what it found until
    /// `initdead` runs out.
    NoUnfreshSelfFence,
    /// SPEC §7.7 per-link timing: the peer is judged by the fastest link's deadtime (dead
    /// once the fastest link is silent that long), so a working slow link is no proof of
    /// life.
    FastestLinkDeadtime,
}

/// Which links a frame goes out on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkSel {
    /// Every link.
    All,
    /// One link, by index.
    One(u8),
}

/// What the core asks of a resource agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Start the resource.
    Start,
    /// Stop the resource.
    Stop,
    /// Check the running resource.
    Monitor,
}

/// How a resource action ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It did what was asked (monitor: running well).
    Ok,
    /// It failed, with the agent's reason code (exit status or a driver code).
    Failed(u8),
    /// The resource is not running (LSB/OCF "not running"): a stop that finds nothing to stop
    /// succeeded; a start or monitor that finds it is a failure.
    NotRunning,
}

/// An operator command from the control socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admin {
    /// Hand the group to the peer and stay standby.
    Standby,
    /// Clear a standing `standby` or `takeover` intent.
    Online,
    /// Ask for the group (a standing intent until `online` or `standby`).
    Takeover,
    /// `takeover --force`: `Takeover`, and the operator vouches that the peer is down: the
    /// wait after an unclean stop ends, and while the peer is not heard the group is taken
    /// without fencing it (a manual fence confirmation; see "Fence races and loops").
    TakeoverForce,
    /// Stop managing resources.
    MaintenanceOn,
    /// Manage resources again.
    MaintenanceOff,
    /// Forget failure counts (of one resource, or all) and the failed state.
    Cleanup(Option<u8>),
    /// `hapair move GROUP`: hand this group (by index) to the peer; it stays there until
    /// `online` (the group's own `standby`). `core::groups` gives it to that group only; a
    /// lone `Node` takes it as `Standby`.
    Move(u8),
    /// `hapair takeover GROUP`: ask for this group only (a standing intent until `online` or
    /// `standby`). A lone `Node` takes it as `Takeover`.
    TakeoverGroup(u8),
}

/// Why the core refused an operator command (`Output::AdminAnswer`): the request failed and
/// changed nothing (SPEC §1: exit 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `takeover` on a node that is unhealthy (these bits) while its live peer is healthy:
    /// health wins over an admin request (SPEC §3), so the group would not move.
    UnhealthyBesideHealthyPeer(Health),
    /// `takeover` on a node whose health forbids it to take the group at all (these bits):
    /// no ping node answers (SPEC §2 `ping`), or its restarts are exhausted.
    MayNotRun(Health),
    /// `move` while the peer is not heard, or cannot take the group (its own `standby`,
    /// maintenance, or health): the group would stop and run nowhere.
    PeerCannotTake,
    /// `move` or `takeover` of a group this configuration does not have.
    NoSuchGroup,
}

impl core::fmt::Display for Refusal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Refusal::UnhealthyBesideHealthyPeer(h) => write!(
                f,
                "this node is unhealthy ({}) and its peer is healthy: health wins over a \
                 takeover, the group stays where it is",
                HealthNames(h)
            ),
            Refusal::MayNotRun(h) => write!(
                f,
                "this node may not take the group, its health forbids it ({}){}",
                HealthNames(h),
                if h.has(Health::RESTARTS) {
                    "; `hapair cleanup` forgets the restarts"
                } else {
                    ""
                }
            ),
            Refusal::PeerCannotTake => f.write_str(
                "the peer cannot take the group (it is not heard, in standby or maintenance, \
                 or unhealthy): it stays here",
            ),
            Refusal::NoSuchGroup => f.write_str("no such group"),
        }
    }
}

/// Health bits by name, for messages: `check, ping`.
struct HealthNames(Health);

impl core::fmt::Display for HealthNames {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        const NAMES: [(u16, &str); 8] = [
            (Health::SENSOR, "sensor out of limits"),
            (Health::RAID, "raid degraded"),
            (Health::PING, "no ping node answers"),
            (Health::CHECK, "a check fails"),
            (Health::RESTARTS, "restarts exhausted"),
            (Health::WATCHDOG, "watchdog failing"),
            (Health::ERRORS, "kernel error counters over their limit"),
            (Health::IPMI, "the BMC reports a problem"),
        ];
        let mut first = true;
        for (_, name) in NAMES.iter().filter(|(bit, _)| self.0.has(*bit)) {
            f.write_str(if first { "" } else { ", " })?;
            f.write_str(name)?;
            first = false;
        }
        if first {
            write!(f, "health bits {:#06x}", self.0.0)?;
        }
        Ok(())
    }
}

/// Something that happened, for the core to act on.
#[derive(Clone, Copy, Debug)]
pub enum Input<'a> {
    /// An authenticated frame from the peer, received on link `link` (our index).
    Frame {
        /// Our index of the link it came in on.
        link: u8,
        /// The verified frame.
        frame: &'a crate::wire::Authentic,
    },
    /// The deadline given by the last `Output::Timeout` has passed.
    Timeout,
    /// A resource action finished.
    ResourceResult {
        /// The resource.
        index: u8,
        /// The action that finished.
        action: Action,
        /// How it ended.
        outcome: Outcome,
        /// How long it took.
        elapsed: Duration,
    },
    /// The fence command finished: true when the peer is now safe.
    FenceResult {
        /// True when the fence succeeded.
        ok: bool,
    },
    /// This node's health summary changed.
    Health(Health),
    /// An operator command.
    Admin(Admin),
    /// Graceful shutdown: stop the group, tell the peer, exit.
    Shutdown,
    /// `wire` heard a new challenge of the peer (a frame not yet fresh): answer on every
    /// link now, at most once a keepalive, so the freshness handshake completes within one
    /// round trip rather than a keepalive.
    Handshake,
    /// An authentic frame of the peer that is not fresh (`wire::Receiver::take_unfresh`):
    /// proof of nothing, but while such frames arrive the group is not taken by waiting (see
    /// "The fence-watchdog margin").
    Unfresh(crate::wire::Repr),
    /// A reload brought new resource definitions (see "Reload"): the plan maps them onto the
    /// resources in force. It replaces a plan not yet applied (both map from the resources in
    /// force). The core answers with `Output::ApplyResources` once it may switch.
    Resources(&'a ResourcePlan),
}

/// What a notification is about (`notify EVENT NODE DETAIL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The group is now starting here.
    Starting,
    /// The group now runs here.
    Active,
    /// The group is being stopped here.
    Stopping,
    /// This node holds nothing and is ready.
    Standby,
    /// This node is fencing its dead peer.
    Fencing,
    /// This node took the group from a dead peer.
    Failover,
    /// This node handed the group to its peer.
    Handover,
    /// Both nodes ran the group; see the detail for who released.
    SplitBrain,
    /// No valid frame on any link for deadtime.
    PeerDead,
    /// The peer is heard again.
    PeerAlive,
    /// The peer restarted (new incarnation).
    PeerRestarted,
    /// The fence command succeeded.
    Fenced,
    /// The fence command failed (it will be retried).
    FenceFailed,
    /// A resource failed (detail: its index).
    ResourceFailed,
    /// The group is failed on this node.
    Failed,
    /// Resources are no longer managed.
    Maintenance,
    /// This node's health changed (detail: the new bits).
    Health,
    /// This node is exiting.
    Exit,
}

impl Event {
    /// What is about the node or its peer, not one group: a node with several groups notifies
    /// it once (`core::groups`).
    pub const fn node_wide(self) -> bool {
        matches!(
            self,
            Event::PeerDead
                | Event::PeerAlive
                | Event::PeerRestarted
                | Event::Fenced
                | Event::FenceFailed
                | Event::Health
                | Event::Exit
        )
    }
}

/// The small datum that goes with an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detail {
    /// Nothing more.
    None,
    /// Why (for state changes).
    Reason(Reason),
    /// Which resource.
    Resource(u8),
    /// Health bits.
    Health(Health),
}

/// A command for the event loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send this payload in a frame on these links (the loop adds sender, incarnation, seq).
    Transmit {
        /// Where.
        link: LinkSel,
        /// What.
        payload: crate::wire::Payload,
    },
    /// Run a resource action and report it with `Input::ResourceResult`.
    ResourceAction {
        /// The resource.
        index: u8,
        /// What to do.
        action: Action,
    },
    /// Run the fence command and report it with `Input::FenceResult`.
    Fence,
    /// Run the notify command.
    Notify {
        /// What happened.
        event: Event,
        /// Detail.
        detail: Detail,
        /// The group it is about (its index), `None` for what is about the node or its peer
        /// (`Event::node_wide`). A lone `Node` says `None`; `core::groups` names the group.
        group: Option<u8>,
    },
    /// Allow or forbid petting the hardware watchdog (forbidden: it resets the machine).
    Watchdog {
        /// True to keep petting.
        allow_petting: bool,
        /// It self-fences (`fence watchdog`: no pet until it holds nothing), which the loop
        /// keeps in the statedir so that a restart does not pet the reset away. A pause
        /// waiting for the peer after a stall (`allow_petting` false, this false) is not
        /// kept: it ends at the next frame of the peer, and comes often at fast heartbeats.
        self_fence: bool,
    },
    /// The answer to the last `Input::Admin`, one for each: done, or refused (the command
    /// changed nothing; the loop tells the operator why).
    AdminAnswer(Result<(), Refusal>),
    /// Switch to the resource definitions of the last `Input::Resources` now: from here on
    /// resource indices are those of the new group. Nothing retired may run and no action is
    /// in flight; what follows (`ResourceAction`s) already means the new group.
    ApplyResources {
        /// The group whose resources switch (its index; 0 from a lone `Node`).
        group: u8,
    },
    /// Shutdown finished: close the watchdog with the magic close and exit 0.
    Exit,
    /// Nothing more now: call `handle_input(.., Input::Timeout)` at this instant.
    Timeout(Instant),
}
