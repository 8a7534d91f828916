//! The one poll loop of the daemon (`hapair run`), and the only place that reads the clock.
//!
//! Each wake: read CLOCK_MONOTONIC once; take what the fds have (at most
//! `FRAMES_PER_WAKE_MAX` frames per link, so one flooded link cannot starve the others);
//! feed every event to the core, each through `Daemon::feed`, which carries out the core's
//! outputs before the next (a result of what they start comes back on a later pass); then
//! `poll(2)` until the earliest deadline of the core, the children, the links, health and the
//! watchdog.
//! Every fd is non-blocking and children are reaped with WNOHANG, so nothing in the loop
//! waits on a peer, a line or a script. After start-up, a heartbeat allocates nothing: the
//! buffers, tables and the status snapshot are fixed-size and made before the loop
//! (tests/alloc/alloc_daemon.rs runs two whole daemons for 10 s under a counting allocator).
//! That includes child processes: an `exec`/LSB/OCF monitor every `monitor_interval`, a
//! `check`, a notify are fork and execve with their strings in stack buffers
//! (`drivers::children`). Only a failure allocates (its message for status and the log).
//!
//! What this file does not do: decide anything (that is `core`), parse bytes (`wire`), or
//! know a device's details (`drivers`).

mod drbd;
mod gate;
mod group;
mod health_io;
mod links;
mod notify;
mod reload;
mod report;
#[cfg(test)]
mod s2_window;

use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use log::{debug, error, info, trace, warn};

use crate::config::{self, AuthKey, Boot, Config, LoadOptions};
use crate::control::{ControlServer, Format, Interest, Request};
use crate::core::time::{Duration, Instant};
use crate::core::{self as hcore, Admin, FenceMode, Groups, Input, Output, Params};
use crate::drivers::adminstate::{self, AdminState};
use crate::drivers::children::{Children, Class, Exited, Program, Spec};
use crate::drivers::sdnotify::SdNotify;
use crate::drivers::signals::{Signal, Signals};
use crate::drivers::statefile;
use crate::drivers::watchdog::{Watchdog, WatchdogError};
use crate::drivers::{entropy, realtime};
use crate::health::pet::{self, PetGate};
use crate::limits::{GROUPS_MAX, LINKS_MAX};
use crate::status::{CounterWords, Snapshot};

use gate::CoreGate;
use group::{Group, Tag};
use health_io::HealthIo;
use links::{Link, Links, WireEnds};

/// Grace between SIGTERM and SIGKILL for a child past its timeout.
const KILL_GRACE: Duration = Duration::from_secs(5);
/// How long a notify command may run.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one fence attempt may run.
const FENCE_TIMEOUT: Duration = Duration::from_secs(60);
/// A control client that does not finish its request in this time is dropped.
const CONTROL_CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// Fds polled at most: signals, ping (an ICMP and an ICMPv6 socket), the IPMI device, links,
/// control clients and listener, child pipes, and the netlink sockets of the running `ip`
/// actions (one per group).
const POLL_FDS_MAX: usize = 4
    + LINKS_MAX
    + crate::limits::CONTROL_CLIENTS_MAX
    + 1
    + crate::limits::CHILDREN_MAX
    + GROUPS_MAX;

/// What DRBD's fence-peer exit code says (for `hapair drbd-fence-peer`).
pub use drbd::meaning as drbd_meaning;

/// Runs the daemon until shutdown; returns the process exit code. `opts` says where the
/// configuration came from, for SIGHUP reloads.
pub fn run(config: &Config, boot: &Boot, authkey: &AuthKey, opts: &LoadOptions) -> i32 {
    static NEVER: AtomicBool = AtomicBool::new(false);
    run_until(config, boot, authkey, opts, &NEVER)
}

/// `run`, which also shuts down gracefully (as on SIGTERM) once `stop` is set. `stop` is read
/// once per wake, so it takes effect within one keepalive. This is for tests that run two
/// daemons as threads of one process (each thread in its own network namespace); the product
/// runs one daemon per process and calls `run`.
pub fn run_until(
    config: &Config,
    boot: &Boot,
    authkey: &AuthKey,
    opts: &LoadOptions,
    stop: &AtomicBool,
) -> i32 {
    let mut daemon = match Daemon::start(config, boot, authkey, opts) {
        Ok(d) => d,
        Err(e) => {
            error!("{e}");
            eprintln!("hapair: {e}");
            return 1;
        }
    };
    daemon.run(stop)
}

/// Makes the statedir when it is missing (mode 0700) and, for `run`, judges it as `check`
/// does (SPEC §7.3: root's, not writable by group or others).
fn make_statedir(config: &Config, opts: &LoadOptions) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = &config.local.statedir;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    if opts.check_ownership {
        config::check_trusted(dir, config::Trusted::Statedir).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The monotonic clock, read only here (STYLE.md "Time").
struct Clock {
    origin_ms: u64,
    last: Instant,
}

impl Clock {
    fn new() -> Clock {
        Clock { origin_ms: monotonic_ms(), last: Instant::ZERO }
    }

    fn now(&mut self) -> Instant {
        let now = Instant::from_millis(monotonic_ms().saturating_sub(self.origin_ms));
        assert!(now >= self.last, "CLOCK_MONOTONIC went backwards");
        self.last = now;
        now
    }
}

fn monotonic_ms() -> u64 {
    // INVARIANT: CLOCK_MONOTONIC always exists on Linux; clock_gettime cannot fail for it.
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is readable");
    let secs = u64::try_from(ts.tv_sec()).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec()).unwrap_or(0);
    secs * 1000 + nanos / 1_000_000
}

/// The `Daemon::parked` bit of the ping socket (links use bits 0..LINKS_MAX).
const PARK_PING: u16 = 1 << 15;

/// Which part of the daemon a polled fd belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FdOwner {
    Signals,
    Ping,
    Link(u8),
    Control,
    ChildOutput,
    /// The netlink socket of the running `ip` action (`Group::poll` reads it).
    Group,
    /// The BMC's IPMI device.
    Ipmi,
}

struct Daemon {
    config: Config,
    /// SHA-256 of the authkey in force: a reload that reads another key says it needs a
    /// restart (the frame key is derived once, at start).
    authkey_hash: [u8; 32],
    opts: LoadOptions,
    me: u8,
    clock: Clock,
    /// The core, fed only through `feed`.
    core: CoreGate,
    /// The peer's frame version as recorded in the statedir (`statefile::load_peer_version`).
    peer_version_stored: u8,
    /// The highest incarnation of the peer recorded in the statedir.
    peer_incarnation_stored: Option<u64>,
    /// The peer's advertised watchdog timeout as recorded in the statedir.
    peer_watchdog_stored: Option<u32>,
    /// Whether the statedir says this node self-fences (`statedir/self-fence`).
    self_fence_stored: bool,
    links: Links,
    children: Children<Tag>,
    group: Group,
    health: HealthIo,
    control: ControlServer,
    signals: Signals,
    watchdog: Option<Watchdog>,
    pet_gate: Option<PetGate>,
    core_deadline: Instant,
    /// How late the loop woke past the deadline it asked for, last time.
    loop_lag: Duration,
    snapshot: Snapshot,
    fds: heapless::Vec<libc::pollfd, POLL_FDS_MAX>,
    owners: heapless::Vec<FdOwner, POLL_FDS_MAX>,
    exit_code: Option<i32>,
    /// A control fd was ready at the last poll.
    control_ready: bool,
    /// `realtime on` locked all memory: nothing is trimmed.
    memory_locked: bool,
    /// Inputs left out of the poll set until the next timer wake (see `park`): bit `i` for
    /// link `i`, `PARK_PING` for the ping socket.
    parked: u16,
    /// When they were parked.
    parked_at: Instant,
    /// Bit `i` for each link that sends every keepalive of its own (not a slower serial line).
    fast_links: u16,
    /// Parked inputs are read again this long after they were parked at the latest: the
    /// shortest keepalive, global or of a link (SPEC §7.7), so a fast link is never parked
    /// for a slower link's cadence.
    park_max: Duration,
    /// poll(2) calls so far (SIGUSR1 prints it): what a heartbeat costs in syscalls.
    polls: u64,
    /// systemd's notify socket (a no-op when not started by systemd).
    systemd: SdNotify,
    /// `READY=1` was sent: the start-up decision is made.
    ready_sent: bool,
    /// The group state last reported to systemd.
    systemd_state: Option<crate::wire::GroupState>,
    /// The persistent admin intents (statedir/admin).
    admin: AdminState,
    /// The notify commands' share of the child table, and the notifies dropped past it.
    notify_gate: notify::NotifyGate,
    /// A reload waiting for the meta-data of its changed OCF resources.
    meta_data: Option<reload::MetaDataRuns>,
    /// A SIGHUP came while one waited: reload again once it is done.
    reload_again: bool,
    /// A reload's new group, waiting for the core's switch (`Output::ApplyResources`).
    next_group: Option<reload::NextGroup>,
    /// The core's answer to the admin command just fed (`Output::AdminAnswer`).
    admin_answer: Option<Result<(), hcore::Refusal>>,
    /// The fence the core asked for could not start: its failure waits for the next pass
    /// (`handle_due`), as every result does, never entering the core in the drain that asked.
    fence_refused: bool,
    /// How the last fence command ended, for `status` (`fence.last`).
    fence_last: Option<report::FenceLast>,
    /// The `drbd` resources' states and the outdate exchange (SPEC §7.5); `None` without.
    drbd: Option<Box<drbd::DrbdIo>>,
}

impl Daemon {
    /// Sets everything up in order, before the loop: signals, control socket (which also
    /// refuses a second daemon), the watchdog (under `fence watchdog` a start without one
    /// that promises its timeout is refused here, before anything else is touched), state
    /// dir and incarnation, resources, links, health, and the core.
    // Never inlined: its frame (with every part of the daemon built in place before the
    // move to the heap) stays below the loop's, where `trim_resident` can give it back.
    #[inline(never)]
    fn start(
        config: &Config,
        boot: &Boot,
        authkey: &AuthKey,
        opts: &LoadOptions,
    ) -> Result<Box<Daemon>, String> {
        let mut clock = Clock::new();
        // INVARIANT: boot.node_index is 0 or 1 (checked by config::load).
        let me = boot.node_index as u8;
        let peer = 1 - me;
        // Signals first: blocked before anything else could spawn a thread or a child.
        let signals = Signals::new().map_err(|e| format!("signalfd: {e}"))?;
        let control_gid = config::control_gid(opts, config).map_err(|e| e.to_string())?;
        let mut control = ControlServer::bind(&config.local.control, CONTROL_CLIENT_TIMEOUT)
            .map_err(|e| format!("control socket: {e}"))?;
        if let Some(gid) = control_gid {
            control.admit_group(gid).map_err(|e| format!("control socket: {e}"))?;
        }
        let (run, challenge) =
            entropy::two_u32().map_err(|e| format!("random numbers from the kernel: {e}"))?;
        // INVARIANT: under `fence watchdog` the watchdog is armed with a promised timeout
        // before anything is written, probed, opened or started (SPEC §7.3); a start that
        // fails after this point disarms it again.
        let (mut watchdog, watchdog_error) = open_watchdog(config)?;
        let (incarnation, group, unclean) = match prepare_state(config, boot, opts) {
            Ok(prepared) => prepared,
            Err(e) => {
                disarm_after_failed_start(watchdog.as_mut());
                return Err(e);
            }
        };
        let now = clock.now();
        let ends = WireEnds::new(config, authkey, me, incarnation, (run, challenge));
        let (peer_version, peer_incarnation) = (ends.peer_version, ends.peer_incarnation);
        let mut links = Links::new(&config.pair.media, config.pair.udpport, ends);
        // Open now, so that the core's first frames (due at once) go out on the first wake,
        // not a keepalive later.
        links.poll_open(now);
        let mut health = HealthIo::open(config, now);
        if let (Some(c), Some(e)) = (&config.local.watchdog, watchdog_error) {
            health.report_watchdog(&c.device, Some(&e));
        }
        let pet_gate = watchdog.as_ref().map(|w| PetGate::for_timeout(w.timeout()));
        let (admin, admin_warning) = adminstate::load(&config.local.statedir);
        if let Some(w) = admin_warning {
            warn!("{w}");
        }
        let mut params = core_params(config, boot, me, peer, watchdog.as_ref());
        params.start_unclean = unclean;
        params.start_standby |= admin.standby;
        let self_fencing = statefile::load_self_fence(&config.local.statedir);
        params.start_self_fencing = self_fencing;
        if params.start_self_fencing {
            warn!(
                "the previous run was self-fencing (statedir/self-fence): the watchdog stays \
                 unpetted until nothing is held here"
            );
        }
        let peer_watchdog = statefile::load_peer_watchdog(&config.local.statedir);
        params.peer_watchdog_timeout_ms = peer_watchdog;
        if peer_watchdog == Some(0) && config.pair.fence == Some(config::Fence::Watchdog) {
            warn!(
                "the peer advertised no armed watchdog when last heard ({}): it is not taken \
                 over by waiting until it is heard again",
                config.local.statedir.join(statefile::PEER_WATCHDOG_FILE).display()
            );
        }
        let core = CoreGate::new(Groups::new(&group_params(config, &params), now));
        let systemd = SdNotify::from_env().unwrap_or_else(|e| {
            warn!("NOTIFY_SOCKET: {e}; not reporting to systemd");
            SdNotify::disabled()
        });
        let memory_locked = config.local.realtime.is_some_and(|rt| apply_realtime(rt.priority));
        let mut snapshot = Snapshot::new(&boot.node, &config.pair.nodes[usize::from(peer)]);
        report::init(&mut snapshot, config, &links, &group);
        report::init_fence(&mut snapshot, config);
        snapshot.incarnation = incarnation;
        info!(
            "hapair {} starting as {} (incarnation {incarnation}), peer {}",
            env!("CARGO_PKG_VERSION"),
            boot.node,
            config.pair.nodes[usize::from(peer)]
        );
        // On the heap: start-up's own frames (and the copies a struct this size leaves in
        // them) lie below the loop's, where `trim_resident` gives them back.
        Ok(Box::new(Daemon {
            config: config.clone(),
            authkey_hash: authkey_hash(authkey),
            opts: opts.clone(),
            me,
            clock,
            core,
            peer_version_stored: peer_version,
            peer_incarnation_stored: peer_incarnation,
            peer_watchdog_stored: peer_watchdog,
            self_fence_stored: self_fencing,
            links,
            children: Children::new(KILL_GRACE),
            group,
            health,
            control,
            signals,
            watchdog,
            pet_gate,
            core_deadline: now,
            loop_lag: Duration::ZERO,
            snapshot,
            fds: heapless::Vec::new(),
            owners: heapless::Vec::new(),
            exit_code: None,
            control_ready: false,
            memory_locked,
            parked: 0,
            fast_links: fast_links(config),
            park_max: (0..config.pair.media.len())
                .map(|i| config.pair.link_keepalive(i))
                .fold(config.pair.keepalive, Duration::min),
            polls: 0,
            parked_at: Instant::ZERO,
            systemd,
            ready_sent: false,
            systemd_state: None,
            admin,
            notify_gate: notify::NotifyGate::new(config.groups.len()),
            meta_data: None,
            reload_again: false,
            next_group: None,
            admin_answer: None,
            fence_refused: false,
            fence_last: None,
            drbd: drbd::DrbdIo::new(config, now).map(Box::new),
        }))
    }

    fn run(&mut self, stop: &AtomicBool) -> i32 {
        if !self.memory_locked {
            match realtime::trim_resident() {
                Ok(t) => debug!(
                    "start-up pages given back: {} kB code, {} kB stack",
                    t.text_kb, t.stack_kb
                ),
                Err(e) => debug!("start-up pages kept: {e}"),
            }
        }
        let mut now = self.clock.now();
        // Maintenance first, as before the restart: the notifications keep their order.
        if self.admin.maintenance {
            info!("maintenance mode persists from before the restart");
            self.feed(now, Input::Admin(Admin::MaintenanceOn));
        }
        let health = self.health.monitor.health();
        self.feed(now, Input::Health(health));
        let mut stopping = false;
        loop {
            if let Some(code) = self.exit_code {
                self.finish();
                return code;
            }
            debug_assert!(self.core.is_settled(), "the core's outputs were left undrained");
            let deadline = self.next_deadline();
            let before = now;
            self.build_poll_set();
            let timeout_ms = deadline.saturating_since(now).total_millis();
            let timeout = i32::try_from(timeout_ms).unwrap_or(i32::MAX);
            // Raw poll(2): nix's `PollFd` borrows each fd for its lifetime, and this set is
            // kept in `self` across the wake (its owners are `self`'s own fields, given as raw
            // fds), which a borrow cannot do short of a `BorrowedFd::borrow_raw` per fd.
            // SAFETY: `fds` is a valid array of `len` pollfd structs that outlives the call.
            let n = unsafe {
                libc::poll(self.fds.as_mut_ptr(), self.fds.len() as libc::nfds_t, timeout)
            };
            self.polls += 1;
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EINTR) {
                    warn!("poll: {e}");
                }
            }
            now = self.clock.now();
            let unparked = self.parked != 0 && (n == 0 || now >= self.parked_at + self.park_max);
            if unparked {
                // What the parked inputs hold is read before anything is judged due: the
                // core must not miss a frame that waits in a parked socket.
                self.parked = 0;
                self.build_poll_set();
                // SAFETY: as above; a zero timeout only asks what is ready now.
                unsafe { libc::poll(self.fds.as_mut_ptr(), self.fds.len() as libc::nfds_t, 0) };
                self.polls += 1;
            }
            self.loop_lag = pet::loop_lag(now, deadline, before);
            self.poll_systemd(now);
            // What waited in parked sockets is not a fresh burst: it parks nothing.
            self.handle_ready(now, !unparked);
            self.handle_due(now);
            if !stopping && stop.load(Ordering::Relaxed) {
                stopping = true;
                info!("stop requested: graceful shutdown");
                self.feed(now, Input::Shutdown);
            }
        }
    }

    /// The one way an input reaches the core: it is fed, then every output it caused is
    /// carried out, so none is left for later and none is fed while outputs are carried out
    /// (the core's call protocol; `CoreGate` asserts it). What an output starts (a resource
    /// action, the fence) comes back through here as a result on a later pass.
    fn feed(&mut self, now: Instant, input: Input<'_>) {
        self.core.handle_input(now, input);
        self.drain_core(now);
    }

    /// Carries out the core's outputs until it has nothing more for now. Only right after an
    /// input, in `feed`.
    fn drain_core(&mut self, now: Instant) {
        loop {
            match self.core.poll_output(now) {
                Output::Timeout(deadline) => {
                    self.core_deadline = deadline;
                    return;
                }
                Output::Transmit { link, payload } => self.links.seal(link, &payload),
                // Its result comes back as an input on a later pass (`handle_due`), never
                // inside this drain.
                Output::ResourceAction { index, action } => {
                    self.group.run(now, index, action, &mut self.children);
                }
                // Its result too: when the command exits, or (it could not start) at once.
                Output::Fence => self.spawn_fence(now),
                Output::Notify { event, detail, group } => {
                    self.spawn_notify(now, event, detail, group)
                }
                // The core logs the change; the pet gate asks `petting_allowed` each time.
                Output::Watchdog { allow_petting, self_fence } => {
                    debug!(
                        "watchdog petting {}",
                        if allow_petting { "allowed" } else { "stopped" }
                    );
                    // A restart before the reset must not pet it away (`start_self_fencing`);
                    // a pause after a stall is not kept (no write in the loop per stall).
                    if self_fence != self.self_fence_stored {
                        self.self_fence_stored = self_fence;
                        if let Err(e) =
                            statefile::store_self_fence(&self.config.local.statedir, self_fence)
                        {
                            warn!("{e}");
                        }
                    }
                }
                Output::AdminAnswer(answer) => self.admin_answer = Some(answer),
                // Before any action that follows: those already mean the new group.
                Output::ApplyResources { .. } => self.switch_resources(),
                Output::Exit => self.exit_code = Some(0),
            }
        }
    }

    /// Feeds a finished resource action to the core.
    fn feed_done(&mut self, now: Instant, done: group::Done) {
        self.feed(
            now,
            Input::ResourceResult {
                index: done.index,
                action: done.action,
                outcome: done.outcome,
                elapsed: done.elapsed,
            },
        );
    }

    /// Runs the fence command against the peer, in the conventions of the fence-agents
    /// package: the options on stdin (`action=reboot`, `port=PEER`, `plug=PEER`,
    /// `nodename=PEER`), the configured arguments on the command line (e.g. `-o reboot` or an
    /// address), and `HAPAIR_PEER` / `HAPAIR_ACTION` in the environment for plain scripts.
    /// A fence that cannot start is a failed one, fed on the next pass (`fence_refused`).
    fn spawn_fence(&mut self, now: Instant) {
        let Some(config::Fence::Command(argv)) = &self.config.pair.fence else {
            // The core only asks for a fence command when one is configured.
            warn!("core asked to fence without a fence command; reporting failure");
            self.fence_refused = true;
            return;
        };
        let peer = &self.config.pair.nodes[usize::from(1 - self.me)];
        let args: heapless::Vec<&str, { config::FENCE_ARGS_MAX }> =
            argv.iter().skip(1).map(String::as_str).collect();
        let env = [("HAPAIR_PEER", peer.as_str()), ("HAPAIR_ACTION", "reboot")];
        let mut stdin = heapless::String::<256>::new();
        let _ = core::fmt::Write::write_fmt(
            &mut stdin,
            format_args!("action=reboot\nport={peer}\nplug={peer}\nnodename={peer}\n"),
        );
        let spec = Spec {
            program: Program::Exec(argv[0].as_str()),
            args: &args,
            env: &env,
            clear_env: false,
            stdin: stdin.as_bytes(),
            stdout: None,
            timeout: FENCE_TIMEOUT,
            class: Class::Essential,
            tag: Tag::Fence,
        };
        self.snapshot.counters.fence_attempts += 1;
        info!(
            "fencing {peer} (attempt {}): {}",
            self.snapshot.counters.fence_attempts,
            argv.join(" ")
        );
        if let Err(e) = self.children.spawn(now, &spec) {
            warn!("fence command cannot start: {e}");
            self.fence_refused = true;
        }
    }

    fn spawn_notify(
        &mut self,
        now: Instant,
        event: hcore::Event,
        detail: hcore::Detail,
        group: Option<u8>,
    ) {
        let event_name = report::event_name(event);
        let mut detail_text = heapless::String::<64>::new();
        report::write_detail(&mut detail_text, detail, &self.group);
        // The group an event is about, by name: the fourth argument (SPEC §7.1).
        // Only with `group` lines: a notify script of a file without them gets the three
        // arguments it always got.
        let group_name = group
            .filter(|_| self.config.has_group_lines())
            .and_then(|g| self.config.groups.get(usize::from(g)))
            .map_or("", |g| g.name.as_str());
        info!(
            "event {event_name} {detail_text}{}{group_name}",
            if group_name.is_empty() { "" } else { " group " }
        );
        let Some(path) = &self.config.local.notify else { return };
        let Some(program) = path.to_str() else { return };
        let node = &self.config.pair.nodes[usize::from(self.me)];
        let all = [event_name, node.as_str(), detail_text.as_str(), group_name];
        let args = if group_name.is_empty() { &all[..3] } else { &all[..] };
        let running = self.children.count_where(|t| *t == Tag::Notify);
        if !self.notify_gate.admit(now, running, event_name) {
            return;
        }
        let spec = Spec {
            program: Program::Exec(program),
            args,
            env: &[],
            clear_env: false,
            stdin: &[],
            stdout: None,
            timeout: NOTIFY_TIMEOUT,
            class: Class::Ordinary,
            tag: Tag::Notify,
        };
        if let Err(e) = self.children.spawn(now, &spec) {
            self.notify_gate.refuse(now, event_name, &e);
        }
    }

    fn next_deadline(&self) -> Instant {
        let mut next = self.core_deadline.min(self.health.next_deadline());
        let others = [
            // A result waits: at once.
            self.fence_refused.then_some(Instant::ZERO),
            self.children.next_deadline(),
            self.group.next_deadline(),
            self.control.next_deadline(),
            self.watchdog.as_ref().and_then(Watchdog::next_deadline),
            self.drbd.as_ref().map(|d| d.next_deadline()),
        ];
        for d in others.into_iter().flatten() {
            next = next.min(d);
        }
        if let Some(d) = self.links.next_deadline() {
            next = next.min(d);
        }
        next
    }

    fn build_poll_set(&mut self) {
        self.fds.clear();
        self.owners.clear();
        let add = |fds: &mut heapless::Vec<libc::pollfd, POLL_FDS_MAX>,
                   owners: &mut heapless::Vec<FdOwner, POLL_FDS_MAX>,
                   fd: RawFd,
                   events: i16,
                   owner: FdOwner| {
            // INVARIANT: POLL_FDS_MAX counts every fd source at its maximum.
            let ok = fds.push(libc::pollfd { fd, events, revents: 0 }).is_ok()
                && owners.push(owner).is_ok();
            debug_assert!(ok, "poll set overflow");
        };
        let (fds, owners) = (&mut self.fds, &mut self.owners);
        add(fds, owners, self.signals.as_raw_fd(), libc::POLLIN, FdOwner::Signals);
        if self.parked & PARK_PING == 0 {
            for fd in self.health.ping_fds() {
                add(fds, owners, fd, libc::POLLIN, FdOwner::Ping);
            }
        }
        if let Some(fd) = self.health.ipmi_fd() {
            add(fds, owners, fd, libc::POLLIN, FdOwner::Ipmi);
        }
        for (i, link) in self.links.iter().enumerate() {
            if self.parked & (1 << i) != 0 {
                continue;
            }
            if let Some(fd) = link.fd() {
                add(fds, owners, fd, libc::POLLIN, FdOwner::Link(i as u8));
            }
        }
        for (fd, interest) in self.control.fds() {
            let events = match interest {
                Interest::Read => libc::POLLIN,
                Interest::Write => libc::POLLOUT,
            };
            add(fds, owners, fd, events, FdOwner::Control);
        }
        for fd in self.children.output_fds() {
            add(fds, owners, fd, libc::POLLIN, FdOwner::ChildOutput);
        }
        for fd in self.group.fds() {
            add(fds, owners, fd, libc::POLLIN, FdOwner::Group);
        }
    }

    /// Handles every fd poll(2) marked ready.
    fn handle_ready(&mut self, now: Instant, may_park: bool) {
        let mut signals = false;
        let mut ping = false;
        let mut child_output = false;
        let mut delivered = 0u16;
        for i in 0..self.fds.len() {
            let revents = self.fds[i].revents;
            if revents == 0 {
                continue;
            }
            match self.owners[i] {
                FdOwner::Signals => signals = true,
                // One read of both ping sockets (ICMP, ICMPv6), however many are ready.
                FdOwner::Ping if !ping => {
                    ping = true;
                    self.health.handle_ping_readable(now);
                }
                FdOwner::Ping => {}
                FdOwner::Ipmi => self.health.handle_ipmi_readable(now),
                FdOwner::Link(l) => {
                    let hangup = revents & (libc::POLLHUP | libc::POLLERR) != 0;
                    if self.receive(now, l, hangup) {
                        delivered |= 1 << l;
                    }
                }
                FdOwner::Control => self.control_ready = true,
                FdOwner::ChildOutput => child_output = true,
                // Read in `handle_due` (`Group::poll`), which also gives up a late answer.
                FdOwner::Group => {}
            }
        }
        // Only a link at the keepalive cadence parks the others: a slower serial line's
        // frame comes at its own pace and must not make the fast links wait.
        if delivered & self.fast_links != 0 {
            // After reading what waited, the fast links stay polled for the peer's next
            // burst; a slower serial line and the ping socket, whose input a working fast
            // link makes redundant, wait for the next timer wake.
            self.park(now, if may_park { !delivered } else { !self.fast_links });
        }
        if child_output {
            self.children.drain_output();
        }
        if signals {
            self.handle_signals(now);
        }
    }

    /// Takes what link `index` delivered to the core; true when a peer frame was accepted.
    fn receive(&mut self, now: Instant, index: u8, hangup: bool) -> bool {
        let (alive, recent) = (self.core.peer().alive, self.core.peer_heard_recently(now));
        let opened = self.links.open(now, index, hangup, alive, recent);
        for input in opened.inputs() {
            if let (Some(d), Input::Frame { frame, .. }) = (&mut self.drbd, &input) {
                d.handle_frame(now, frame.repr().outdate, &mut self.children, &mut self.control);
            }
            self.feed(now, input);
        }
        if let Some(d) = &self.drbd {
            self.links.set_outdate(d.frame());
        }
        if opened.delivered() {
            self.note_peer_version();
            self.note_peer_watchdog();
            self.note_peer_incarnation();
        }
        opened.delivered()
    }

    /// Records in the statedir that the peer speaks the current frame version, once: from
    /// then on legacy frames are refused, also after a restart.
    /// Records in the statedir the highest incarnation of the peer accepted, when it grew
    /// (once per restart of the peer).
    fn note_peer_incarnation(&mut self) {
        let max = self.links.receiver().peer_incarnation_max();
        if max > self.peer_incarnation_stored
            && let Some(max) = max
        {
            self.peer_incarnation_stored = Some(max);
            if let Err(e) = statefile::store_peer_incarnation(&self.config.local.statedir, max) {
                warn!("{e}");
            }
        }
    }

    fn note_peer_version(&mut self) {
        let version = self.links.receiver().peer_version();
        if version >= crate::wire::VERSION_SESSION && self.peer_version_stored < version {
            self.peer_version_stored = version;
            info!("the peer speaks frame version {version}: legacy frames are refused from now on");
            if let Err(e) = statefile::store_peer_version(&self.config.local.statedir, version) {
                warn!("{e}");
            }
        }
    }

    /// Records in the statedir the watchdog timeout the peer advertises, when it changes:
    /// after a restart that does not hear the peer, `fence watchdog` still knows whether
    /// waiting can fence it. One attempt per change (a failed write is not retried per frame).
    fn note_peer_watchdog(&mut self) {
        let advertised = self.core.peer().last.map(|p| p.watchdog_timeout_ms);
        if let Some(ms) = advertised
            && advertised != self.peer_watchdog_stored
        {
            self.peer_watchdog_stored = advertised;
            if let Err(e) = statefile::store_peer_watchdog(&self.config.local.statedir, ms) {
                warn!("{e}");
            }
        }
    }

    /// The peer sends every frame on every link at once, so once one link has delivered,
    /// the copies on the others carry nothing the core needs now: those links (and the ping
    /// socket, whose replies can wait as well) leave the poll set until the next timer wake,
    /// at the latest a keepalive later, when what they hold is read in one go. A wake per
    /// peer burst instead of one per link and reply. The links that delivered stay polled,
    /// so a frame on a working link is still handled the moment it arrives; a parked link
    /// is judged up to one keepalive later than it could be, well inside its deadtime.
    /// `inputs` are the bits to leave out; `handle_ready` picks them, and parks only after a
    /// delivery on a link at the keepalive cadence.
    fn park(&mut self, now: Instant, inputs: u16) {
        self.parked = inputs;
        self.parked_at = now;
    }

    fn handle_signals(&mut self, now: Instant) {
        while let Some(sig) = self.signals.read() {
            match sig {
                Signal::Term | Signal::Int => {
                    info!("{sig:?}: graceful shutdown");
                    let _ = self.systemd.send("STOPPING=1");
                    self.feed(now, Input::Shutdown);
                }
                Signal::Hup => self.reload(now),
                Signal::Chld => {}
                Signal::Usr1 => self.dump_stats(now),
            }
        }
    }

    /// Everything whose time has come: reaped children, control requests, link reopening,
    /// health sampling, announcements, the watchdog, and the core's own deadline.
    fn handle_due(&mut self, now: Instant) {
        self.children.poll_timeouts(now);
        while let Some(exited) = self.children.poll_exited(now) {
            self.handle_exit(now, exited);
        }
        // The control socket is only worked when one of its fds is ready or a client timed
        // out: no accept(2) or read(2) on every heartbeat wake.
        let control_due = self.control.next_deadline().is_some_and(|d| now >= d);
        if core::mem::take(&mut self.control_ready) || control_due {
            self.serve_control(now);
        }
        self.links.poll_open(now);
        // Before the health change is fed: a pet that fails reaches the core on this wake.
        self.pet_watchdog(now);
        self.health.poll(now, self.core.stall_threshold(), &mut self.children);
        if let Some(d) = &mut self.drbd {
            let peer = drbd_peer(&self.core);
            d.poll(now, peer, &mut self.health.monitor, &mut self.children, &mut self.control);
            self.links.set_outdate(d.frame());
        }
        if let Some(health) = self.health.monitor.poll_change() {
            self.feed(now, Input::Health(health));
        }
        // Results of actions begun in an earlier drain, one input at a time.
        self.group.poll(now);
        while let Some(done) = self.group.poll_done() {
            self.feed_done(now, done);
        }
        if core::mem::take(&mut self.fence_refused) {
            self.feed(now, Input::FenceResult { ok: false });
        }
        if now >= self.core_deadline {
            self.feed(now, Input::Timeout);
        }
    }

    /// One bounded round of socket work, then the requests it read (at most one per slot).
    fn serve_control(&mut self, now: Instant) {
        self.control.poll_io(now);
        while let Some((client, request)) = self.control.poll_request() {
            self.handle_request(now, client, request);
        }
    }

    fn handle_exit(&mut self, now: Instant, exited: Exited<Tag>) {
        match exited.tag {
            Tag::Resource { index, action } => {
                // A promotion or demotion shows in `status` at once, not up to a second later.
                if let Some(d) = &mut self.drbd {
                    d.read_soon(now);
                }
                let done = self.group.handle_exit(
                    index,
                    action,
                    exited.status,
                    exited.elapsed,
                    &exited.output_tail,
                );
                if let Some(done) = done {
                    self.feed_done(now, done);
                }
            }
            Tag::Fence => {
                let ok = exited.status == crate::drivers::children::ExitStatus::Code(0);
                let output = report::Tail(&exited.output_tail);
                if ok {
                    info!("fence command succeeded after {}: {output}", exited.elapsed);
                } else {
                    warn!(
                        "fence command failed: {} after {}: {output}",
                        exited.status, exited.elapsed
                    );
                }
                self.fence_last = Some(report::FenceLast::new(now, ok, &exited));
                self.feed(now, Input::FenceResult { ok });
            }
            Tag::Notify => {
                if exited.status != crate::drivers::children::ExitStatus::Code(0) {
                    warn!("notify command: {}", exited.status);
                }
            }
            Tag::Check(i) => self.health.handle_check_exit_status(usize::from(i), exited.status),
            Tag::MetaData => self.handle_meta_data_exit(now, &exited),
            Tag::Outdate(index) => {
                let ok = exited.status == crate::drivers::children::ExitStatus::Code(0);
                let output = format!("{}", report::Tail(&exited.output_tail));
                if let Some(d) = &mut self.drbd {
                    d.handle_outdate_exit(now, index, ok, &output);
                    self.links.set_outdate(d.frame());
                }
            }
        }
    }

    fn handle_request(&mut self, now: Instant, client: crate::control::ClientId, req: Request) {
        let admin = match req {
            Request::Status(format) => {
                report::fill(&mut self.snapshot, now, &self.core, &mut self.links);
                report::fill_local(&mut self.snapshot, &self.core, &self.group, &self.health);
                report::fill_nic_errors(&mut self.snapshot, &self.config, &self.health);
                report::fill_watchdog(&mut self.snapshot, &self.config, self.watchdog.as_ref());
                report::fill_fence(&mut self.snapshot, now, &self.core, self.fence_last.as_ref());
                report::fill_drbd(&mut self.snapshot, self.drbd.as_deref());
                let snap = &self.snapshot;
                self.control.reply_with(client, true, |w| match format {
                    Format::Human => crate::status::render_human(snap, w),
                    Format::Json => crate::status::render_json(snap, w),
                    Format::Prometheus => crate::status::render_prometheus(snap, w),
                });
                return;
            }
            Request::Standby => Admin::Standby,
            Request::Online => Admin::Online,
            Request::Takeover => Admin::Takeover,
            Request::TakeoverForce => Admin::TakeoverForce,
            Request::TakeoverGroup(ref name) | Request::Move(ref name) => {
                let Some(g) = self.config.groups.iter().position(|g| g.name == name.as_str())
                else {
                    self.control.reply(client, false, b"no such group");
                    return;
                };
                // INVARIANT: at most GROUPS_MAX (8) groups.
                let g = g as u8;
                if matches!(req, Request::Move(_)) {
                    Admin::Move(g)
                } else {
                    Admin::TakeoverGroup(g)
                }
            }
            Request::Maintenance(true) => Admin::MaintenanceOn,
            Request::Maintenance(false) => Admin::MaintenanceOff,
            Request::Cleanup(None) => Admin::Cleanup(None),
            Request::OutdatePeer(name) => {
                match &mut self.drbd {
                    Some(d) => d.handle_request(now, client, &name, &mut self.control),
                    None => self.control.reply(client, false, b"no drbd resource configured"),
                }
                if let Some(d) = &self.drbd {
                    self.links.set_outdate(d.frame());
                }
                return;
            }
            Request::Cleanup(Some(name)) => match self.group.index_of(&name) {
                Some(i) => Admin::Cleanup(Some(i)),
                None => {
                    self.control.reply(client, false, b"no such resource");
                    return;
                }
            },
        };
        // The core logs the command at info (a refusal at warn) and answers it in this drain.
        if let Admin::Cleanup(index) = admin {
            self.group.cleanup(index);
            if index.is_none() {
                self.health.handle_cleanup();
            }
        }
        self.admin_answer = None;
        self.feed(now, Input::Admin(admin));
        match self.admin_answer.take() {
            Some(Err(refusal)) => {
                self.control.reply_with(client, false, |w| write!(w, "{refusal}"));
            }
            Some(Ok(())) | None => {
                self.persist_admin(admin);
                self.control.reply(client, true, b"");
            }
        }
    }

    /// Keeps `standby` and `maintenance` across restarts (statedir/admin, written atomically).
    fn persist_admin(&mut self, admin: Admin) {
        let mut next = self.admin;
        match admin {
            Admin::Standby => next.standby = true,
            Admin::Online | Admin::Takeover | Admin::TakeoverForce => next.standby = false,
            // A group's own intent is not kept: it lasts until `online` or a restart.
            Admin::Move(_) | Admin::TakeoverGroup(_) => {}
            Admin::MaintenanceOn => next.maintenance = true,
            Admin::MaintenanceOff => next.maintenance = false,
            Admin::Cleanup(_) => {}
        }
        if next == self.admin {
            return;
        }
        match adminstate::store(&self.config.local.statedir, next) {
            Ok(()) => self.admin = next,
            Err(e) => warn!("admin state not saved (it will not survive a restart): {e}"),
        }
    }

    /// Tells systemd: `READY=1` once the start-up decision is made (the node left its initial
    /// wait), `STATUS=` on every state change, `WATCHDOG=1` while the loop is healthy.
    fn poll_systemd(&mut self, now: Instant) {
        if !self.systemd.is_enabled() {
            return;
        }
        let state = self.core.state();
        let decided = self.core.role() != hcore::Role::Init;
        if decided && self.systemd_state != Some(state) {
            self.systemd_state = Some(state);
            let mut msg = heapless::String::<48>::new();
            let name = crate::status::state_name(state);
            let _ = core::fmt::Write::write_fmt(&mut msg, format_args!("STATUS=group {name}"));
            if !self.ready_sent {
                let _ = core::fmt::Write::write_str(&mut msg, "\nREADY=1");
                self.ready_sent = true;
            }
            if let Err(e) = self.systemd.send(&msg) {
                warn!("systemd notify: {e}");
            }
        }
        let healthy = self.pet_gate.is_none_or(|g| g.may_pet(self.loop_lag, true));
        if healthy && let Err(e) = self.systemd.poll_watchdog(now) {
            warn!("systemd watchdog: {e}");
        }
    }

    fn pet_watchdog(&mut self, now: Instant) {
        let (Some(wd), Some(gate)) = (&mut self.watchdog, self.pet_gate) else { return };
        if !wd.pet_due(now) {
            return;
        }
        if !gate.may_pet(self.loop_lag, self.core.petting_allowed()) {
            return;
        }
        let Some(device) = self.config.local.watchdog.as_ref().map(|c| c.device.as_path()) else {
            return;
        };
        let was_failing = wd.failing().is_some();
        match wd.pet(now) {
            // A failing device makes the node unhealthy: the core hands the group to a
            // healthy peer while the reset is still to come. Retried every WITHHELD_RETRY;
            // logged once per failure, not per attempt.
            Err(e) => {
                if was_failing {
                    trace!("watchdog {}: {e}", device.display());
                } else {
                    warn!("watchdog {}: {e}: the node is unhealthy", device.display());
                }
                self.health.report_watchdog(device, Some(&e));
            }
            Ok(true) if was_failing => {
                info!("watchdog {}: petted again", device.display());
                self.health.report_watchdog(device, None);
            }
            Ok(_) => {}
        }
    }

    /// SIGHUP: a valid new configuration replaces the old one where that can be done in
    /// place; an invalid one is refused and the old one stays.
    fn reload(&mut self, now: Instant) {
        if self.meta_data.is_some() {
            info!("reload: the last one still waits for meta-data; this one follows it");
            self.reload_again = true;
            return;
        }
        let loaded = match config::load(&self.opts) {
            Ok(l) => l,
            Err(e) => {
                error!("reload refused, the running configuration stays: {e}");
                return;
            }
        };
        let new = loaded.config;
        let key_changed = authkey_hash(&loaded.authkey) != self.authkey_hash;
        if key_changed {
            warn!(
                "reload: the authkey {} holds another key; a new key needs a restart of hapair \
                 on both nodes (the running key stays in force)",
                new.local.authkey.display()
            );
        }
        // The resources to compare with: those of a new group that waits for its switch (what
        // the file asked for last), else those in force. The file may even be back to those
        // in force while a new group waits: the plan then keeps them all.
        let target = self.next_group.as_ref().map_or(&self.config.resources, |n| n.resources());
        let resources_changed = new.resources != *target;
        let old = &self.config;
        let rest_same = new.pair == old.pair && new.local == old.local && new.health == old.health;
        if rest_same && !resources_changed {
            info!("reload: configuration unchanged");
            return;
        }
        // What the core and the peer depend on cannot change under them: the directive
        // table says which changes wait for a restart (`Config::restarts_needed`).
        let needs_restart = old.restarts_needed(&new);
        let notify_changed = new.local.notify != old.local.notify;
        let health_changed = new.health != old.health;
        let mut applied: heapless::Vec<&str, 2> = heapless::Vec::new();
        if notify_changed {
            self.config.local.notify.clone_from(&new.local.notify);
            let _ = applied.push("notify");
        }
        if health_changed {
            let mut fresh = HealthIo::open(&new, now);
            fresh.keep_judges_from(&mut self.health);
            self.health = fresh;
            // The watchdog is no source the new monitor opens: report it again.
            if let Some(c) = &self.config.local.watchdog {
                match self.watchdog.as_ref().map(Watchdog::failing) {
                    None => self.health.report_watchdog(&c.device, Some(&"not open")),
                    Some(Some(e)) => self.health.report_watchdog(&c.device, Some(&e)),
                    Some(None) => {}
                }
            }
            // A fresh monitor reports no change for what it starts with: tell the core.
            let health = self.health.monitor.health();
            self.feed(now, Input::Health(health));
            self.config.health.clone_from(&new.health);
            let _ = applied.push("health");
        }
        if resources_changed {
            self.reload_resources(now, &new);
        }
        if !applied.is_empty() {
            info!("reload: applied {}", applied.join(", "));
        }
        if !needs_restart.is_empty() {
            let what: Vec<&str> = needs_restart.iter().map(|r| r.what()).collect();
            warn!(
                "reload: valid, but changes to {} need a restart of hapair; running resources \
                 were not touched",
                what.join(", ")
            );
        }
    }

    fn dump_stats(&mut self, now: Instant) {
        report::fill(&mut self.snapshot, now, &self.core, &mut self.links);
        info!(
            "stats: state {} {} polls {} log_dropped {} notify_dropped {}",
            crate::status::state_name(self.snapshot.state),
            CounterWords(&self.snapshot.counters),
            self.polls,
            crate::drivers::logsink::dropped_total(),
            self.notify_gate.dropped()
        );
    }

    /// After the core said `Exit`: the clean-exit marker when nothing is left running (the
    /// next start is not one after a crash, `statefile`), magic close of the watchdog; the
    /// control socket goes with `self`.
    fn finish(&mut self) {
        if self.core.exited_clean() {
            match statefile::store_clean_exit(&self.config.local.statedir) {
                Ok(()) => debug!("clean exit recorded in the statedir"),
                Err(e) => warn!("{e}: the next start will wait for the peer as after a crash"),
            }
        }
        if let Some(wd) = &mut self.watchdog {
            match wd.disarm() {
                Ok(()) => info!("watchdog disarmed (magic close)"),
                Err(e) => warn!("watchdog: magic close failed: {e}"),
            }
        }
        info!("hapair exits");
    }
}

/// The core's pacing and judgement of link `i`, at its own timing (SPEC §7.7).
fn link_params(config: &Config, i: usize, m: &config::Medium) -> hcore::LinkParams {
    let p = &config.pair;
    Link::params(m, p.link_keepalive(i), p.link_warntime(i), p.link_deadtime(i))
}

/// Bit `i` for each link whose send interval is its keepalive itself (not a slower serial
/// line).
fn fast_links(config: &Config) -> u16 {
    let mut mask = 0u16;
    for (i, m) in config.pair.media.iter().enumerate() {
        if link_params(config, i, m).send_interval == config.pair.link_keepalive(i) {
            mask |= 1 << i;
        }
    }
    mask
}

/// `realtime on`: SCHED_FIFO and locked memory, or a clear warning where not permitted.
/// True when memory is locked.
fn apply_realtime(priority: u8) -> bool {
    let (applied, sched_err, lock_err) = realtime::apply(priority);
    if let Some(e) = sched_err {
        warn!("realtime: SCHED_FIFO priority {priority} not permitted ({e}); normal scheduling");
    }
    if let Some(e) = lock_err {
        warn!("realtime: mlockall not permitted ({e}); memory may be paged out");
    }
    if applied.fifo && applied.locked {
        info!("realtime: SCHED_FIFO priority {priority}, memory locked");
    }
    applied.locked
}

/// Opens the configured watchdog. Under `fence watchdog` it must promise its timeout (the
/// peer waits for it, SPEC §7.3): otherwise the start is refused, naming the device and why.
/// A `watchdog` line alone (the hung-kernel reset) is lenient: a device that does not open
/// is returned as the error for health to report, and the daemon runs on.
fn open_watchdog(config: &Config) -> Result<(Option<Watchdog>, Option<WatchdogError>), String> {
    let Some(wd) = &config.local.watchdog else { return Ok((None, None)) };
    let fence = config.pair.fence == Some(config::Fence::Watchdog);
    let opened = if fence {
        Watchdog::open_promised(&wd.device, wd.timeout)
    } else {
        Watchdog::open(&wd.device, wd.timeout)
    };
    match opened {
        Ok(w) => {
            info!(
                "watchdog {} open, timeout {} ({})",
                wd.device.display(),
                w.timeout(),
                if w.has_ioctls() { w.identity() } else { "no ioctls: plain writes" }
            );
            Ok((Some(w), None))
        }
        Err(e) if fence => Err(format!(
            "watchdog {}: {e}; `fence watchdog` needs it armed with a timeout the peer can wait \
             for: not starting",
            wd.device.display()
        )),
        Err(e) => {
            error!("watchdog {}: {e}", wd.device.display());
            Ok((None, Some(e)))
        }
    }
}

/// The statedir with this start's incarnation, the resource group, and whether the previous
/// run stopped uncleanly: it ran (an incarnation was stored) and left no clean-exit marker,
/// which is taken away now (a crash of this run must not look clean).
fn prepare_state(
    config: &Config,
    boot: &Boot,
    opts: &LoadOptions,
) -> Result<(u64, Group, bool), String> {
    make_statedir(config, opts)?;
    let (incarnation, warning) =
        statefile::bump_incarnation(&config.local.statedir).map_err(|e| e.to_string())?;
    let first_start = matches!(warning, Some(statefile::Warning::Missing(_)));
    if let Some(w) = warning {
        warn!("{w}");
    }
    let group = Group::new(config, &boot.node)?;
    let clean = statefile::take_clean_exit(&config.local.statedir).map_err(|e| e.to_string())?;
    let unclean = !first_start && !clean;
    if unclean {
        info!("the previous run did not exit cleanly (no clean-exit marker in the statedir)");
    }
    Ok((incarnation, group, unclean))
}

/// A start that fails after the watchdog opened stops its timer (magic close): a daemon that
/// never ran holds nothing, and the machine must not reset for it.
fn disarm_after_failed_start(watchdog: Option<&mut Watchdog>) {
    if let Some(Err(e)) = watchdog.map(Watchdog::disarm) {
        warn!("watchdog: magic close failed: {e}");
    }
}

/// One `Params` per group (SPEC §7.1): the pair's, with the group's home, failback and
/// resource count.
/// The peer as the DRBD outdate exchange needs it: alive, or dead and whether it was made
/// safe since it was last heard: it left, the fence command fenced the run heard last, or a
/// group was taken over after it was lost (the core takes a dead peer's group only once the
/// peer is safe: fenced, or its watchdog waited out).
fn drbd_peer(core: &CoreGate) -> crate::drbd::outdate::Peer {
    use crate::drbd::outdate::Peer;
    let peer = core.peer();
    if peer.alive {
        return Peer::Alive;
    }
    let fenced =
        peer.fenced.is_some_and(|(inc, run)| peer.incarnation == Some(inc) && peer.run == run);
    let taken = peer.lost_at.is_some_and(|lost| {
        core.nodes().iter().any(|n| {
            matches!(n.state(), crate::wire::GroupState::Starting | crate::wire::GroupState::Active)
                && n.role_since() >= lost
        })
    });
    Peer::Dead { safe: peer.left || fenced || taken }
}

fn group_params(config: &Config, base: &Params) -> heapless::Vec<Params, GROUPS_MAX> {
    let mut all = heapless::Vec::new();
    for g in &config.groups {
        let mut p = base.clone();
        // INVARIANT: home is one of the two nodes (checked by config).
        p.home = config.node_index(&g.home).unwrap_or(0) as u8;
        p.auto_failback = g.auto_failback;
        // INVARIANT: at most RESOURCES_MAX (32) resources.
        p.resources = g.resources.len() as u8;
        p.drbd = config.resources[g.resources.clone()]
            .iter()
            .any(|r| matches!(r, config::Resource::Drbd { .. }));
        // Cannot fail: config has at most GROUPS_MAX groups.
        let _ = all.push(p);
    }
    all
}

fn core_params(
    config: &Config,
    boot: &Boot,
    me: u8,
    peer: u8,
    watchdog: Option<&Watchdog>,
) -> Params {
    let links =
        config.pair.media.iter().enumerate().map(|(i, m)| link_params(config, i, m)).collect();
    let fence = match config.pair.fence {
        None => FenceMode::None,
        Some(config::Fence::Watchdog) => FenceMode::Watchdog,
        Some(config::Fence::Command(_)) => FenceMode::External,
    };
    // INVARIANT: home is one of the two nodes (checked by config).
    let home = config.node_index(&config.pair.home).unwrap_or(0) as u8;
    Params {
        me,
        peer,
        home,
        keepalive: config.pair.keepalive,
        warntime: config.pair.warntime,
        deadtime: config.pair.deadtime,
        initdead: config.pair.initdead,
        auto_failback: config.pair.auto_failback,
        fence,
        fence_delay: config.pair.fence_delay,
        start_unclean: false,
        watchdog_timeout: watchdog.map(Watchdog::timeout),
        peer_watchdog_timeout_ms: None,
        // INVARIANT: at most RESOURCES_MAX (16) resources.
        resources: config.resources.len() as u8,
        drbd: false,
        monitor_interval: config.pair.monitor_interval,
        restart_limit: hcore::RestartLimit {
            count: config.pair.restart_limit.count,
            window: config.pair.restart_limit.window,
        },
        links,
        ping_configured: !config.health.ping.is_empty(),
        start_standby: boot.standby,
        start_self_fencing: false,
        config_digest: config.digest(),
        #[cfg(feature = "sim")]
        sim_mutation: hcore::Mutation::None,
    }
}

/// SHA-256 of an authkey's bytes (kept instead of the key to compare on reload).
fn authkey_hash(key: &AuthKey) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(key.bytes()).into()
}
