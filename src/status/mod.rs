//! The status of the pair as this node sees it (SPEC §5): a plain-data `Snapshot` that the
//! event loop fills in place, and three renderers, one file each, that write into a caller's
//! `fmt::Write` without allocating: `json` (`render_json`), `human` (`render_human`, one
//! screen of text) and `prometheus` (`render_prometheus`, the text exposition format).
//!
//! Several groups (SPEC §7.1): `groups` describes each (name, home, owner, this node's state,
//! its range of the one `resources` list, which holds every group's resources in the
//! configuration's order); every rendering shows the first group's state and resources at
//! the top level, as one group had them.
//!
//! The counters are one table (`counters!`): the `Counters` struct and `COUNTERS`, which
//! every rendering walks, name for name, in the same order (the JSON keys, the Prometheus
//! families, the SIGUSR1 stats line: `CounterWords`); the human screen only arranges them
//! in lines (`human::COUNTER_LINES`, checked against the table).
//!
//! Capacities come from `limits`; names and messages are fixed-length strings that truncate
//! (`set_text`) instead of growing. These files gather and print; they decide nothing, and
//! they read no clock: every age in them is computed by the loop.

use core::fmt;
use core::ops::Range;
use std::net::IpAddr;

use heapless::{String, Vec};

use crate::limits::{
    ERROR_SOURCES_MAX, GROUPS_MAX, IPMI_SENSORS_MAX, LINKS_MAX, PING_NODES_MAX, RAID_ARRAYS_MAX,
    RESOURCES_MAX, SENSORS_MAX,
};
use crate::wire::{GroupState, Intent};

mod human;
mod json;
mod prometheus;

pub use human::render_human;
pub use json::render_json;
pub use prometheus::render_prometheus;

/// Longest node, resource, sensor or array name kept.
pub const NAME_LEN_MAX: usize = 32;
/// Longest link label (`serial /dev/ttyS0`, `ucast eth1 2001:db8::2`) or device path kept.
pub const LABEL_LEN_MAX: usize = 64;
/// Longest reason or error message kept.
pub const TEXT_LEN_MAX: usize = 96;
/// Health reasons listed at once.
pub const REASONS_MAX: usize = 8;

/// A node, resource, sensor or array name.
pub type Name = String<NAME_LEN_MAX>;
/// A link label or a device path.
pub type Label = String<LABEL_LEN_MAX>;
/// A reason or an error message.
pub type Text = String<TEXT_LEN_MAX>;

/// Everything `hapair status` shows.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// This node's name.
    pub node: Name,
    /// This node's state of the first group (SPEC §7.1: the top-level `state` describes it).
    pub state: GroupState,
    /// Milliseconds this node has been in `state`.
    pub role_since_ms: u64,
    /// This start's incarnation (the statedir's counter).
    pub incarnation: u64,
    /// The peer says this node's incarnation went backwards (its statedir was lost or
    /// restored) and it resynchronised (SPEC §7.2).
    pub incarnation_went_back: bool,
    /// Why this node waits for its peer before it fences or takes the group (SPEC §7.4: its
    /// previous run stopped uncleanly); `None` when it does not wait.
    pub waits_for_peer: Option<&'static str>,
    /// The other node.
    pub peer: Peer,
    /// Every group's resources, in the configuration's order (each group's in its start
    /// order): `Snapshot::group_resources` picks a group's, `first_resources` the first
    /// group's, which the top-level `resources` of every rendering lists (SPEC §7.1).
    pub resources: Vec<Resource, RESOURCES_MAX>,
    /// The resource groups, in the configuration's order (SPEC §7.1): at least one in the
    /// daemon's snapshot (a file without `group` lines has the one group `main`). Empty only
    /// in a snapshot made by hand: every rendering then shows `resources` as the one group's,
    /// without a `groups` section (JSON: `"groups":[]`) nor `group` labels.
    pub groups: Vec<GroupStatus, GROUPS_MAX>,
    /// The fence device (SPEC §7.4).
    pub fence: Fence,
    /// The `drbd` resources as this node's kernel shows them (SPEC §7.5).
    pub drbd: Vec<Drbd, RESOURCES_MAX>,
    /// This node's health.
    pub health: HealthStatus,
    /// Anomaly and event counters.
    pub counters: Counters,
}

/// One resource group as this node sees it (SPEC §7.1 `groups`).
#[derive(Clone, Debug, PartialEq)]
pub struct GroupStatus {
    /// Its name (`main` without `group` lines).
    pub name: Name,
    /// Its preferred node.
    pub home: Name,
    /// Who holds it (`report::owner` in the event loop has the rule); `None`: nobody, as far
    /// as this node knows.
    pub owner: Option<Owner>,
    /// This node's state of the group (the words of the top-level `state`).
    pub state: GroupState,
    /// Milliseconds this node has been in `state` for this group.
    pub role_since_ms: u64,
    /// It moves back to `home` when that returns healthy.
    pub auto_failback: bool,
    /// The ownership epoch this node knows for the group.
    pub epoch: u32,
    /// This node's standing admin intent for the group (`hapair standby`, `takeover`, ...).
    pub intent: Intent,
    /// Its resources: indices into `Snapshot::resources`.
    pub resources: Range<usize>,
}

impl GroupStatus {
    /// A group called `name` at home on `home`: standby, held by nobody, no resource.
    pub fn new(name: &str, home: &str) -> GroupStatus {
        let mut g = GroupStatus {
            name: Name::new(),
            home: Name::new(),
            owner: None,
            state: GroupState::Standby,
            role_since_ms: 0,
            auto_failback: false,
            epoch: 0,
            intent: Intent::None,
            resources: 0..0,
        };
        set_text(&mut g.name, name);
        set_text(&mut g.home, home);
        g
    }
}

/// Which node holds a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// This node (`Snapshot::node`).
    This,
    /// The peer (`Peer::name`).
    Peer,
}

/// The reason `status` gives for `Snapshot::waits_for_peer` after an unclean stop.
pub const WAIT_UNCLEAN_STOP: &str = "the last run did not exit cleanly (crash, reset or power \
    loss): no fence and no takeover before the peer is heard; `hapair takeover --force` if \
    the peer is down";

/// One DRBD resource here: DRBD's own names for its connection, roles and disk states.
#[derive(Clone, Debug, PartialEq)]
pub struct Drbd {
    /// The DRBD resource.
    pub resource: Name,
    /// The connection state (`Connected`, `SyncTarget`, `WFConnection`, ...).
    pub connection: &'static str,
    /// This node's role and the peer's as this node knows it.
    pub role: &'static str,
    /// The peer's role.
    pub peer_role: &'static str,
    /// This node's disk state: `UpToDate` may serve, any other bars the node from its group.
    pub disk: &'static str,
    /// The peer's disk state as this node knows it.
    pub peer_disk: &'static str,
    /// A resync under way: per mille done.
    pub synced_permille: Option<u16>,
}

/// How this node makes a dead peer safe, and how that went last.
#[derive(Clone, Debug, PartialEq)]
pub struct Fence {
    /// `none`, `watchdog` or `command`.
    pub mode: &'static str,
    /// `fence_delay`, in milliseconds (it applies to a fence command only).
    pub delay_ms: u64,
    /// A fence command waits its delay: it runs in this many milliseconds unless the peer
    /// is heard first.
    pub delay_left_ms: Option<u64>,
    /// `hapair takeover --force` vouched that the peer is down (not heard since).
    pub peer_vouched_down: bool,
    /// How the last fence command ended; `None` before the first.
    pub last: Option<FenceRun>,
}

/// One finished run of the fence command.
#[derive(Clone, Debug, PartialEq)]
pub struct FenceRun {
    /// Milliseconds since it ended.
    pub ago_ms: u64,
    /// It succeeded (exit 0): the peer is safe.
    pub ok: bool,
    /// How it ended: `exit code 0`, `killed by signal 9`, `timed out ...`.
    pub status: Text,
    /// How long it ran, in milliseconds.
    pub took_ms: u64,
    /// The last line it wrote (stdout or stderr), e.g. `Success: Rebooted`.
    pub output: Text,
}

/// The peer as this node sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Peer {
    /// Its name.
    pub name: Name,
    /// A valid frame arrived on some link within deadtime.
    pub alive: bool,
    /// Its state of the first group from its last frame; `None` before the first.
    pub state: Option<GroupState>,
    /// The incarnation of its run that this node accepted; `None` before the handshake.
    pub incarnation: Option<u64>,
    /// Its last frame carried another configuration digest than ours.
    pub config_differs: bool,
    /// The watchdog timeout its last frame advertised (0: none armed); `None` before one.
    pub watchdog_timeout_ms: Option<u64>,
    /// Under `fence watchdog` it advertised no armed watchdog: waiting cannot fence it, so
    /// it is never taken over by waiting (SPEC §7.3).
    pub unfenceable: bool,
    /// One entry per heartbeat medium.
    pub links: Vec<Link, LINKS_MAX>,
}

/// One heartbeat link.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Link {
    /// The medium as configured: `serial /dev/ttyS0`, `bcast eth1`, ...
    pub medium: Label,
    /// The link carries the peer's frames at its own cadence.
    pub up: bool,
    /// Milliseconds since the last valid frame on this link; `None`: never.
    pub last_heard_ms: Option<u64>,
    /// How often this node sends on the link: its keepalive (SPEC §7.7: its own, else the
    /// global one), longer for a serial line too slow for it.
    pub keepalive_ms: u64,
    /// How long the link may be silent before it is down: its deadtime, scaled like its
    /// keepalive for a slow serial line. The peer is dead when every link is down.
    pub deadtime_ms: u64,
    /// Valid frames received.
    pub frames_rx: u64,
    /// Frames missing by sequence number.
    pub frames_lost: u64,
    /// Datagrams the kernel dropped on this link's socket before hapair read them: not a
    /// frame of this pair on this link (the socket filter), or no room in the buffer. What
    /// a flood looks like (0 for serial).
    pub kernel_dropped: u64,
    /// Why the link is not open (open error), empty when it is.
    pub error: Text,
    /// The error counters of the link's interface over their limit, reported here and not
    /// to the node (`errors net IF report link`, the crossover's default): `errors net eth1:
    /// over 10 in 60m`; empty when none is.
    pub nic_errors: Text,
}

/// What a resource is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceState {
    /// Not running here.
    Stopped,
    /// Its start action runs.
    Starting,
    /// Started and its monitor passes.
    Running,
    /// Its stop action runs.
    Stopping,
    /// Failed past `restart_limit`, or its stop failed.
    Failed,
    /// Not monitored (maintenance) or not known yet.
    Unknown,
}

/// One resource of the group.
#[derive(Clone, Debug, PartialEq)]
pub struct Resource {
    /// Its name (`web`, `192.0.2.100/24`, `apache2`).
    pub name: Name,
    /// Its kind: `ip`, `exec`, `lsb`, `ocf`.
    pub kind: Name,
    /// What it is doing.
    pub state: ResourceState,
    /// Monitor or start failures since the last cleanup.
    pub failures: u32,
    /// The exit code of its last failed action, if any.
    pub last_exit_code: Option<i32>,
    /// The last error (output tail or reason), empty when none.
    pub last_error: Text,
}

/// This node's health (SPEC §5 `health`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HealthStatus {
    /// Healthy: may hold or take the group.
    pub ok: bool,
    /// Why not, one line each.
    pub reasons: Vec<Text, REASONS_MAX>,
    /// Sensor readings.
    pub sensors: Vec<Sensor, SENSORS_MAX>,
    /// md arrays.
    pub raid: Vec<Raid, RAID_ARRAYS_MAX>,
    /// Ping nodes.
    pub ping: Vec<Ping, PING_NODES_MAX>,
    /// The hardware watchdog.
    pub watchdog: Watchdog,
    /// The kernel's error counters (SPEC §7.6).
    pub errors: Vec<ErrorCounter, ERROR_SOURCES_MAX>,
    /// The BMC (SPEC §7.6 `ipmi`), when configured.
    pub ipmi: Option<IpmiStatus>,
}

/// The BMC as the `ipmi` source sees it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IpmiStatus {
    /// The device.
    pub device: Label,
    /// The device is open and the BMC answers.
    pub reachable: bool,
    /// Why not (the device cannot be opened, the BMC does not answer, its records cannot be
    /// read), empty when all is well.
    pub error: Text,
    /// Records in its sensor data repository; `None` until they are read.
    pub records: Option<u16>,
    /// Its threshold sensors.
    pub sensors: Vec<IpmiSensor, IPMI_SENSORS_MAX>,
    /// New SEL entries read since start.
    pub sel_entries: u64,
    /// Of those, failures.
    pub sel_failures: u64,
    /// Of those, correctable errors.
    pub sel_correctable: u64,
    /// Correctable errors within the hour.
    pub sel_correctable_in_window: u64,
    /// A failure holds the node unhealthy until `hapair cleanup`.
    pub sel_latched: bool,
    /// The last failure read (`memory #9: uncorrectable ECC`), empty when none.
    pub last_failure: Text,
}

/// One threshold sensor of the BMC, in its unit.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IpmiSensor {
    /// Its ID string.
    pub name: Name,
    /// Its unit (`C`, `V`, `A`, `W`, `RPM`, empty for others).
    pub unit: &'static str,
    /// The last reading; `None` before one or when it failed.
    pub value: Option<f64>,
    /// Lower non-recoverable threshold.
    pub lower_nr: Option<f64>,
    /// Lower critical threshold.
    pub lower_crit: Option<f64>,
    /// Lower non-critical threshold.
    pub lower_noncrit: Option<f64>,
    /// Upper non-critical threshold.
    pub upper_noncrit: Option<f64>,
    /// Upper critical threshold.
    pub upper_crit: Option<f64>,
    /// Upper non-recoverable threshold.
    pub upper_nr: Option<f64>,
    /// Inside its critical thresholds.
    pub ok: bool,
}

impl IpmiSensor {
    /// Its thresholds by name, lowest first, as JSON and Prometheus name them.
    pub fn thresholds(&self) -> [(&'static str, Option<f64>); 6] {
        [
            ("lower_nr", self.lower_nr),
            ("lower_crit", self.lower_crit),
            ("lower_noncrit", self.lower_noncrit),
            ("upper_noncrit", self.upper_noncrit),
            ("upper_crit", self.upper_crit),
            ("upper_nr", self.upper_nr),
        ]
    }
}

/// One `errors` source: its counter against its limit.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ErrorCounter {
    /// `edac`, `net` or `disk`.
    pub kind: Name,
    /// The interface or device (empty for `edac`).
    pub name: Name,
    /// The kernel's counter at the last read (summed), `None` when unread.
    pub count: Option<u64>,
    /// Errors counted since the daemon started (across resets and wraps).
    pub total: u64,
    /// Errors within the window: the rate, per `window_ms`.
    pub rate: u64,
    /// More than this within the window is unhealthy.
    pub limit: u32,
    /// The window, in milliseconds.
    pub window_ms: u64,
    /// EDAC's uncorrected errors at the last read.
    pub uncorrected: u64,
    /// `ok`, `over-limit`, `uncorrected`, `gone` or `unreadable`.
    pub state: Name,
    /// What a state other than `ok` makes unhealthy: `node`, or `link` (the heartbeat links
    /// on the interface, `Link::nic_errors`; the node stays healthy).
    pub report: &'static str,
}

/// One sensor reading against its limits.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sensor {
    /// `chip/input`, e.g. `lm78/temp1`.
    pub name: Name,
    /// The reading (°C, V or RPM).
    pub value: f64,
    /// The warning limit, if any.
    pub max: Option<f64>,
    /// The critical limit, if any.
    pub crit: Option<f64>,
    /// Within limits.
    pub ok: bool,
}

/// One md array.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Raid {
    /// `md0`.
    pub name: Name,
    /// The member map as /proc/mdstat shows it: `[UU_]`.
    pub state: Name,
    /// Neither degraded nor failed.
    pub ok: bool,
}

/// One ping node.
#[derive(Clone, Debug, PartialEq)]
pub struct Ping {
    /// Its address.
    pub address: IpAddr,
    /// It answered recently.
    pub reachable: bool,
}

/// The hardware watchdog.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Watchdog {
    /// The device, empty when none is configured.
    pub device: Label,
    /// Open and being petted.
    pub armed: bool,
    /// Its timeout.
    pub timeout_ms: u64,
}

/// One counter of `Counters`, as every rendering shows it.
#[derive(Clone, Copy, Debug)]
pub struct Counter {
    /// Its name: the JSON key under `counters`, its word in the SIGUSR1 stats line, and
    /// the Prometheus family `hapair_NAME_total`.
    pub name: &'static str,
    /// What the human screen calls it.
    pub label: &'static str,
    /// The Prometheus `# HELP` text.
    pub help: &'static str,
    /// Its value in a `Counters`.
    pub value: fn(&Counters) -> u64,
}

/// Defines `Counters` and `COUNTERS` from one list: per counter its field doc, its name
/// (the field), its human label and its Prometheus help, in the order every rendering
/// lists them.
macro_rules! counters {
    ($($(#[doc = $doc:literal])+ $name:ident, $label:literal, $help:literal;)+) => {
        /// Counters since start (SPEC §5 `counters`).
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct Counters {
            $($(#[doc = $doc])+ pub $name: u64,)+
        }

        /// Every counter of `Counters`, in the order of the JSON object and the Prometheus
        /// families.
        pub const COUNTERS: &[Counter] = &[$(Counter {
            name: stringify!($name),
            label: $label,
            help: $help,
            value: |c| c.$name,
        }),+];
    };
}

counters! {
    /// Frames whose HMAC did not verify.
    auth_failures, "auth failures", "Frames whose HMAC did not verify";
    /// Frames that repeated or went back in sequence, or were sent before this node's
    /// restart (recorded and replayed).
    replays, "replays", "Frames repeated, out of order, or from before a restart";
    /// Frames sent before the peer heard this node's challenge (the handshake at a start).
    unconfirmed, "unconfirmed", "Frames sent before the peer heard our challenge";
    /// Restarts of the peer seen (a new run accepted in place of another).
    peer_restarts, "peer restarts", "Restarts of the peer seen";
    /// Of those, restarts whose incarnation did not go up (its statedir lost or restored).
    incarnation_resyncs, "incarnation back", "Peer restarts with its incarnation back";
    /// Frames that did not parse.
    malformed, "malformed", "Frames that did not parse";
    /// Serial frames with a bad CRC.
    crc_errors, "crc errors", "Serial frames with a bad CRC";
    /// Datagrams the kernel dropped before hapair read them, all links together (see
    /// `Link::kernel_dropped`).
    kernel_dropped, "kernel dropped", "Datagrams the kernel dropped before hapair read them";
    /// Heartbeats later than warntime.
    late_heartbeats, "late heartbeats", "Heartbeats later than warntime";
    /// Takeovers after the peer died.
    failovers, "failovers", "Takeovers after the peer died";
    /// Planned moves of the group.
    handovers, "handovers", "Planned moves of the group";
    /// Split brains seen (both nodes ran the group).
    split_brains, "split brains", "Times both nodes ran the group";
    /// Fence commands started.
    fence_attempts, "fences", "Fence commands started";
    /// Fence commands that failed.
    fence_failures, "failed", "Fence commands that failed";
}

/// The counters as `name value` words, space-separated, in `COUNTERS` order (the SIGUSR1
/// stats line).
pub struct CounterWords<'a>(pub &'a Counters);

impl fmt::Display for CounterWords<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in COUNTERS.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            write!(f, "{sep}{} {}", c.name, (c.value)(self.0))?;
        }
        Ok(())
    }
}

impl Snapshot {
    /// An empty snapshot for `node` and `peer`, standby, nothing known yet.
    pub fn new(node: &str, peer: &str) -> Snapshot {
        let mut s = Snapshot {
            node: Name::new(),
            state: GroupState::Standby,
            role_since_ms: 0,
            incarnation: 0,
            incarnation_went_back: false,
            waits_for_peer: None,
            peer: Peer {
                name: Name::new(),
                alive: false,
                state: None,
                incarnation: None,
                config_differs: false,
                watchdog_timeout_ms: None,
                unfenceable: false,
                links: Vec::new(),
            },
            resources: Vec::new(),
            groups: Vec::new(),
            fence: Fence {
                mode: "none",
                delay_ms: 0,
                delay_left_ms: None,
                peer_vouched_down: false,
                last: None,
            },
            drbd: Vec::new(),
            health: HealthStatus::default(),
            counters: Counters::default(),
        };
        set_text(&mut s.node, node);
        set_text(&mut s.peer.name, peer);
        s
    }

    /// The resources of `group`, in its start order (none for a range out of bounds).
    pub fn group_resources(&self, group: &GroupStatus) -> &[Resource] {
        self.resources.get(group.resources.clone()).unwrap_or_default()
    }

    /// The first group's resources: what the top-level `resources` lists (every resource in a
    /// snapshot without groups).
    pub fn first_resources(&self) -> &[Resource] {
        match self.groups.first() {
            Some(g) => self.group_resources(g),
            None => &self.resources,
        }
    }

    /// The name of the node that `owner` names.
    pub fn owner_name(&self, owner: Owner) -> &str {
        match owner {
            Owner::This => &self.node,
            Owner::Peer => &self.peer.name,
        }
    }

    /// The resource group of resource `index` (of `Snapshot::resources`), if any.
    pub fn group_of(&self, index: usize) -> Option<&GroupStatus> {
        self.groups.iter().find(|g| g.resources.contains(&index))
    }
}

/// Replaces `dst` with as much of `src` as fits, cut at a character boundary.
pub fn set_text<const N: usize>(dst: &mut String<N>, src: &str) {
    dst.clear();
    for c in src.chars() {
        if dst.push(c).is_err() {
            break;
        }
    }
}

/// The name SPEC §3 gives a group state.
pub fn state_name(state: GroupState) -> &'static str {
    match state {
        GroupState::Standby => "standby",
        GroupState::Starting => "starting",
        GroupState::Active => "active",
        GroupState::Stopping => "stopping",
        GroupState::Failed => "failed",
        GroupState::Maintenance => "maintenance",
    }
}

fn peer_state_name(state: Option<GroupState>) -> &'static str {
    state.map_or("unknown", state_name)
}

/// The name of an admin intent: `none`, `standby`, `takeover`, `maintenance`.
pub fn intent_name(intent: Intent) -> &'static str {
    match intent {
        Intent::None => "none",
        Intent::Standby => "standby",
        Intent::Takeover => "takeover",
        Intent::Maintenance => "maintenance",
    }
}

impl ResourceState {
    /// The lower-case name used in every output.
    pub fn name(self) -> &'static str {
        match self {
            ResourceState::Stopped => "stopped",
            ResourceState::Starting => "starting",
            ResourceState::Running => "running",
            ResourceState::Stopping => "stopping",
            ResourceState::Failed => "failed",
            ResourceState::Unknown => "unknown",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_text_cuts_at_a_character_boundary() {
        let mut name = Name::new();
        set_text(&mut name, &"é".repeat(40));
        assert_eq!(name.chars().count(), NAME_LEN_MAX / 2);
    }

    /// The fence part of the status at its longest: every rendering stays in its bounds (80
    /// columns, valid JSON, one Prometheus sample per family).
    #[test]
    fn the_fence_status_at_its_worst_fits_every_rendering() {
        let mut s = Snapshot::new("alpha", "beta");
        let long = "é\n\"x\"".repeat(40);
        let mut text = Text::new();
        set_text(&mut text, &long);
        s.waits_for_peer = Some(WAIT_UNCLEAN_STOP);
        s.fence = Fence {
            mode: "command",
            delay_ms: u64::MAX,
            delay_left_ms: Some(u64::MAX),
            peer_vouched_down: true,
            last: Some(FenceRun {
                ago_ms: u64::MAX,
                ok: false,
                status: text.clone(),
                took_ms: u64::MAX,
                output: text,
            }),
        };
        let mut human = std::string::String::new();
        render_human(&s, &mut human).unwrap();
        assert!(human.contains("WAITS FOR ITS PEER") && human.contains("last FAILED"), "{human}");
        for line in human.lines() {
            assert!(line.chars().count() <= 80, "too wide: {line:?}");
        }
        let mut json = std::string::String::new();
        render_json(&s, &mut json).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["waits_for_peer"], WAIT_UNCLEAN_STOP);
        assert_eq!(v["fence"]["last"]["ok"], false);
        assert_eq!(v["fence"]["delay_left_ms"], u64::MAX);
        let mut prom = std::string::String::new();
        render_prometheus(&s, &mut prom).unwrap();
        for family in ["hapair_waits_for_peer 1", "hapair_fence_last_ok 0"] {
            assert!(prom.contains(family), "{family}:\n{prom}");
        }
        // Before the first run: `last` is null, and Prometheus has no last-run families.
        s.fence.last = None;
        json.clear();
        render_json(&s, &mut json).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert!(v["fence"]["last"].is_null());
    }

    #[test]
    fn the_bmc_shows_in_every_rendering() {
        let mut s = Snapshot::new("alpha", "beta");
        let mut hot = IpmiSensor {
            unit: "C",
            value: Some(85.0),
            upper_noncrit: Some(70.0),
            upper_crit: Some(80.0),
            upper_nr: Some(90.0),
            ..IpmiSensor::default()
        };
        set_text(&mut hot.name, "CPU Temp \"0\"");
        let mut rail = IpmiSensor {
            unit: "V",
            lower_crit: Some(10.8),
            upper_crit: Some(13.2),
            ok: true,
            ..IpmiSensor::default()
        };
        set_text(&mut rail.name, "12V");
        let mut i = IpmiStatus {
            reachable: true,
            records: Some(3),
            sel_entries: 4,
            sel_failures: 1,
            sel_correctable: 2,
            sel_correctable_in_window: 2,
            sel_latched: true,
            ..IpmiStatus::default()
        };
        set_text(&mut i.device, "/dev/ipmi0");
        set_text(&mut i.last_failure, "memory #9: uncorrectable ECC");
        let _ = i.sensors.push(hot);
        let _ = i.sensors.push(rail);
        s.health.ipmi = Some(i);
        let mut human = std::string::String::new();
        render_human(&s, &mut human).unwrap();
        for want in [
            "  ipmi /dev/ipmi0: 2 sensors (1 OUT)",
            "    SEL: 4 new, 1 failures, 2 correctable in 1h",
            "    OUT CPU Temp \"0\"          85.0 C    crit 80.0  nr 90.0",
            "    SEL memory #9: uncorrectable ECC (until cleanup)",
        ] {
            assert!(human.lines().any(|l| l == want), "{want:?} in\n{human}");
        }
        for line in human.lines() {
            assert!(line.chars().count() <= 80, "too wide: {line:?}");
        }
        let mut json = std::string::String::new();
        render_json(&s, &mut json).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let i = &v["health"]["ipmi"];
        assert_eq!(
            (&i["device"], &i["reachable"], &i["records"]),
            (&"/dev/ipmi0".into(), &true.into(), &3.into())
        );
        assert!(i["error"].is_null());
        let t = &i["sensors"][0];
        assert_eq!(
            (&t["name"], &t["unit"], &t["ok"]),
            (&"CPU Temp \"0\"".into(), &"C".into(), &false.into())
        );
        let num = |v: &serde_json::Value| v.as_f64();
        assert_eq!(
            (num(&t["value"]), num(&t["upper_crit"]), num(&t["upper_nr"])),
            (Some(85.0), Some(80.0), Some(90.0))
        );
        assert!(t["lower_crit"].is_null() && i["sensors"][1]["value"].is_null());
        let sel = &i["sel"];
        assert_eq!(
            (&sel["entries"], &sel["failures"], &sel["latched"]),
            (&4.into(), &1.into(), &true.into())
        );
        assert_eq!(sel["last_failure"], "memory #9: uncorrectable ECC");
        let mut prom = std::string::String::new();
        render_prometheus(&s, &mut prom).unwrap();
        for want in [
            "hapair_ipmi_bmc_reachable 1",
            "hapair_ipmi_sensor_value{sensor=\"CPU Temp \\\"0\\\"\",unit=\"C\"} 85",
            "hapair_ipmi_sensor_threshold{sensor=\"12V\",unit=\"V\",threshold=\"lower_crit\"} 10.8",
            "hapair_ipmi_sensor_ok{sensor=\"12V\"} 1",
            "hapair_ipmi_sel_failures_total 1",
            "hapair_ipmi_sel_latched 1",
        ] {
            assert!(prom.lines().any(|l| l == want), "{want:?} in\n{prom}");
        }
        // Not configured: JSON null, no family.
        s.health.ipmi = None;
        json.clear();
        render_json(&s, &mut json).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert!(v["health"]["ipmi"].is_null());
        // Not answering: the human line says why.
        let mut silent = IpmiStatus::default();
        set_text(&mut silent.error, "the BMC does not answer");
        s.health.ipmi = Some(silent);
        human.clear();
        render_human(&s, &mut human).unwrap();
        assert!(human.contains("NOT ANSWERING: the BMC does not answer"), "{human}");
    }

    /// Each counter's accessor reads its own field, and the names are the fields'.
    #[test]
    fn the_table_reads_each_field_by_its_name() {
        let c = Counters { auth_failures: 1, fence_failures: 14, ..Counters::default() };
        let read = |name: &str| COUNTERS.iter().find(|k| k.name == name).map(|k| (k.value)(&c));
        assert_eq!((read("auth_failures"), read("fence_failures")), (Some(1), Some(14)));
        assert_eq!(COUNTERS.iter().map(|k| (k.value)(&c)).sum::<u64>(), 15);
        let words = CounterWords(&c).to_string();
        assert!(words.starts_with("auth_failures 1 replays 0 "), "{words}");
        assert!(words.ends_with(" fence_attempts 0 fence_failures 14"), "{words}");
    }
}
