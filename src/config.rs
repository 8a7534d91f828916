//! The configuration (SPEC §2): parsed once, before the loop, into typed and range-checked
//! values ("parse, don't validate"). Nothing here runs in the steady state; nothing here
//! touches the network, devices or the daemon. The only files read are the configuration,
//! the kernel command line, the authkey and the group database for `control_group`; for
//! `check` and `run` the owner and mode of the configuration file, the statedir and the
//! authkey's directory are judged too (`owner`).
//!
//! # Syntax
//!
//! One directive per line: a name, then arguments separated by spaces or tabs. `#` at the
//! start of a word (outside quotes) starts a comment that runs to the end of the line.
//! Optional arguments are `keyword value` pairs after the positional ones, in any order
//! (`mcast eth1 239.0.0.94 ttl 1`). Agent parameters and exec actions are `key=value` words.
//!
//! # Quoting
//!
//! A word may contain double-quoted parts; quotes group spaces and `#` into the word and are
//! removed (`start="systemctl start web"` is the word `start=systemctl start web`). Inside
//! quotes, `\"` stands for `"` and `\\` for `\`; any other backslash escape is an error, as
//! is an unterminated quote. Outside quotes a backslash is an ordinary character. The kernel
//! command line uses the same rules.
//!
//! # Groups
//!
//! A `group` line starts a resource group (SPEC §7.1): the resources after it, up to the next
//! `group` line, are its; `home` and `auto_failback` before the first one are the defaults of
//! every group. Without `group` lines all resources are the one group `main`, which prints and
//! digests as the file did before groups existed ([`Config::groups`]).
//!
//! # Kernel command line
//!
//! `hapair.KEY=VALUE` replaces the file's `KEY` directive. For a directive of one argument
//! (a duration, a path, a port, a name, on/off) VALUE is that argument, spaces and all
//! (`hapair.control="/run/my dir/x.sock"`); for the others it is split at spaces into the
//! arguments (`hapair.restart_limit="3 in 10m"`, `hapair.watchdog="/dev/watchdog timeout 5s"`).
//! Allowed for every directive that appears at most once, plus `serial` and `ping`, whose
//! override replaces all of the file's lines of that kind. `hapair.node=NAME`,
//! `hapair.standby=1` and `hapair.disable=1` are boot flags. Any other `hapair.` word is an
//! error; other kernel words are ignored.
//!
//! The submodules: `lex` (words and quoting), `value` (durations, addresses, names), `parse`
//! (the directive table and the directives), `validate` (cross-checks, building the parts),
//! `render` (canonical text, digest, what a reload leaves for a restart), `cmdline`
//! (kernel flags), `authkey` (the key file), `owner` (who may change the configuration
//! file, the statedir and the authkey's directory), `load` (reading files, node identity),
//! `group` (the `control_group` lookup) and, in fuzz and test builds only, `fuzz` (the
//! property checks of the file and kernel-flag decoders).

pub mod agents;
mod authkey;
mod cmdline;
#[cfg(any(fuzzing, feature = "sim"))]
pub mod fuzz;
mod group;
mod lex;
mod load;
mod owner;
mod parse;
mod render;
mod validate;
mod value;

use std::fmt;
use std::net::IpAddr;
use std::ops::Range;
use std::path::PathBuf;

use crate::core::time::Duration;
use crate::limits::{
    AGENT_PARAMS_MAX, CHECKS_MAX, ERROR_SOURCES_MAX, GROUPS_MAX, HWMON_CHIPS_MAX, LINKS_MAX,
    PING_NODES_MAX, RESOURCES_MAX, SENSORS_MAX,
};

pub use authkey::{AuthKey, keygen};
pub use cmdline::Cmdline;
pub use group::control_gid;
/// Also how `migrate` writes the words of the configuration it produces.
pub(crate) use lex::quote;
pub use load::{
    Boot, LoadOptions, Loaded, check_trusted, identify, load, load_config, parse_bytes, parse_str,
    read_cmdline,
};
pub use owner::Trusted;
pub use parse::Restart;

/// Words after `fence` (the fence command and its arguments).
pub const FENCE_ARGS_MAX: usize = 16;

/// The name of the one group of a file without `group` lines (SPEC §7.1).
pub const MAIN_GROUP: &str = "main";
/// The longest group name, in bytes.
pub const GROUP_NAME_MAX: usize = 15;

/// The default configuration file.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/hapair/hapair.conf";
/// The default kernel command line.
pub const DEFAULT_CMDLINE_PATH: &str = "/proc/cmdline";

/// The whole, validated configuration, in five parts. Built only by [`parse_str`] (and
/// [`load`]), so every value in it has passed its range and cross-checks.
///
/// Which directive fills which part is a column of the one directive table (`parse`), and
/// so are what a reload does with a changed directive and whether the digest sees it: the
/// digest covers the pair-wide part, the groups and the resources (README "Configuration
/// digest"). One exception of storage: a `serial` line is node-local (its device is each
/// node's own), but it sits in [`PairWide::media`] with the other media, because a medium's
/// place in that list is its link number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// What both nodes must agree on: the pair, its timings, media and policies.
    pub pair: PairWide,
    /// Each node's own business: files, devices, scheduling.
    pub local: NodeLocal,
    /// The health sources: what makes this node unhealthy.
    pub health: HealthSources,
    /// The resource groups, in file order (SPEC §7.1): never empty, a file without `group`
    /// lines has the one group [`MAIN_GROUP`] with the pair's `home` and `auto_failback`.
    /// Their ranges tile `0..resources.len()` in order: the first starts at 0, each starts
    /// where the one before ends, and none is empty (but `main` when there is no resource).
    pub groups: heapless::Vec<Group, GROUPS_MAX>,
    /// The resources of every group, in file order: each group's, in its start order, are
    /// the slice its [`Group::resources`] range picks.
    pub resources: heapless::Vec<Resource, RESOURCES_MAX>,
}

/// One resource group (SPEC §7.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// Its name: from its `group` line, or [`MAIN_GROUP`].
    pub name: String,
    /// Its preferred owner, one of the nodes (the `home` line's when its line names none).
    pub home: String,
    /// Move it back to `home` when that returns healthy (the `auto_failback` line's when its
    /// line says nothing).
    pub auto_failback: bool,
    /// Its resources: indices into [`Config::resources`], in start order.
    pub resources: Range<usize>,
}

/// The directives both nodes must agree on (in the digest, except `serial` lines).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairWide {
    /// The two node names, in file order.
    pub nodes: [String; 2],
    /// Heartbeat interval.
    pub keepalive: Duration,
    /// A heartbeat later than this is logged and counted.
    pub warntime: Duration,
    /// The peer is dead when no valid frame arrived on any link for this long.
    pub deadtime: Duration,
    /// At start, how long to wait for the peer before taking the group.
    pub initdead: Duration,
    /// UDP port of the bcast, mcast and ucast media.
    pub udpport: u16,
    /// Heartbeat media, in file order (a medium's place is its link number).
    pub media: heapless::Vec<Medium, LINKS_MAX>,
    /// Each medium's own `keepalive` and `deadtime` (SPEC §7.7), in the order of `media`:
    /// pair-wide even on a `serial` line (both ends must agree), so digested.
    pub link_timing: heapless::Vec<LinkTiming, LINKS_MAX>,
    /// The preferred owner of every group whose line names none (defaults to the first node).
    pub home: String,
    /// Move a group back to `home` when it returns healthy: for every group whose line says
    /// nothing.
    pub auto_failback: bool,
    /// How often running resources are monitored.
    pub monitor_interval: Duration,
    /// Local restarts allowed before the group fails over.
    pub restart_limit: RestartLimit,
    /// How a dead peer is made safe before takeover.
    pub fence: Option<Fence>,
    /// Under `fence CMD`, how long a node that does not win a fence race waits before it
    /// fences (default: deadtime; core "Fence races and loops").
    pub fence_delay: Duration,
}

/// `keepalive DUR` and `deadtime DUR` on a medium line (SPEC §7.7): `None` takes the global
/// value. The link beats at its keepalive and is down once silent for its deadtime; the peer
/// is dead when every link is down.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkTiming {
    /// The link's own heartbeat interval.
    pub keepalive: Option<Duration>,
    /// The link's own deadtime.
    pub deadtime: Option<Duration>,
}

impl LinkTiming {
    /// The line sets neither: the link has the global timing.
    pub fn is_global(&self) -> bool {
        self.keepalive.is_none() && self.deadtime.is_none()
    }
}

impl PairWide {
    /// Link `i`'s timing (the global values for a link without its own).
    fn timing_of(&self, i: usize) -> LinkTiming {
        self.link_timing.get(i).copied().unwrap_or_default()
    }

    /// Link `i`'s keepalive: its own, else the global one.
    pub fn link_keepalive(&self, i: usize) -> Duration {
        self.timing_of(i).keepalive.unwrap_or(self.keepalive)
    }

    /// Link `i`'s deadtime: its own, else the global one.
    pub fn link_deadtime(&self, i: usize) -> Duration {
        self.timing_of(i).deadtime.unwrap_or(self.deadtime)
    }

    /// Link `i`'s warntime (it has no directive of its own): the global `warntime` for a link
    /// with the global timing, else the same fraction of its deadtime as `warntime` is of
    /// `deadtime`, kept above its keepalive and within its deadtime (README "Heartbeat
    /// media").
    pub fn link_warntime(&self, i: usize) -> Duration {
        if self.timing_of(i).is_global() {
            return self.warntime;
        }
        let (k, d) = (self.link_keepalive(i), self.link_deadtime(i));
        let scaled = u128::from(d.total_millis()) * u128::from(self.warntime.total_millis())
            / u128::from(self.deadtime.total_millis().max(1));
        let scaled = Duration::from_millis(u64::try_from(scaled).unwrap_or(u64::MAX));
        scaled.max(k + Duration::from_millis(1)).min(d)
    }

    /// The longest link deadtime: how long after its last frame the peer is found dead at
    /// the latest.
    pub fn longest_deadtime(&self) -> Duration {
        (0..self.media.len()).map(|i| self.link_deadtime(i)).max().unwrap_or(self.deadtime)
    }
}

/// The directives that are each node's own (not in the digest).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeLocal {
    /// The shared key file.
    pub authkey: PathBuf,
    /// The admin socket.
    pub control: PathBuf,
    /// `control_group NAME`: the socket is mode 0660 with this group, whose members may ask
    /// for `status` (state changes stay root's). `None`: mode 0600, root only.
    pub control_group: Option<String>,
    /// Persistent state (the incarnation counter).
    pub statedir: PathBuf,
    /// The hardware watchdog, if any.
    pub watchdog: Option<Watchdog>,
    /// Program run on every state change.
    pub notify: Option<PathBuf>,
    /// SCHED_FIFO priority and locked memory, when on.
    pub realtime: Option<Realtime>,
}

/// The health sources (node-local, not in the digest; a reload applies them in place).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthSources {
    /// hwmon chips watched against their own limits.
    pub hwmon: heapless::Vec<Hwmon, HWMON_CHIPS_MAX>,
    /// Sensor limits that override or add to a chip's own.
    pub sensors: heapless::Vec<Sensor, SENSORS_MAX>,
    /// The md status file, if RAID is watched.
    pub raid: Option<PathBuf>,
    /// Ping nodes.
    pub ping: heapless::Vec<IpAddr, PING_NODES_MAX>,
    /// Extra health checks.
    pub checks: heapless::Vec<Check, CHECKS_MAX>,
    /// Error counters watched for their rate (SPEC §7.6).
    pub errors: heapless::Vec<Errors, ERROR_SOURCES_MAX>,
    /// The BMC's sensors and event log (SPEC §7.6 `ipmi`).
    pub ipmi: Option<Ipmi>,
}

/// One heartbeat medium.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Medium {
    /// A null-modem serial line.
    Serial { device: PathBuf, baud: u32 },
    /// UDP broadcast on an interface.
    Bcast { iface: String },
    /// UDP multicast on an interface.
    Mcast { iface: String, group: IpAddr, ttl: u8 },
    /// UDP unicast on an interface: both nodes' addresses (a node skips its own at run time).
    Ucast { iface: String, addrs: [IpAddr; 2] },
}

/// One resource of the group.
// Built once before the loop and never moved in it: the fixed-capacity variant size is fine.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resource {
    /// A virtual IP address.
    Ip(IpResource),
    /// Shell commands.
    Exec(ExecResource),
    /// An LSB init script in /etc/init.d.
    Lsb { name: String },
    /// An OCF resource agent.
    Ocf(OcfResource),
    /// A DRBD resource (SPEC §7.5): promoted on start, demoted on stop.
    Drbd {
        /// The resource's name in the DRBD configuration (and in `status`).
        name: String,
    },
}

/// `resource ip ADDR/PREFIX dev IF [garp N] [garp_interval DUR] [garp_refresh DUR] [name N]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpResource {
    pub name: String,
    pub addr: IpAddr,
    pub prefix: u8,
    pub dev: String,
    /// Gratuitous ARPs (or unsolicited neighbour advertisements) sent on takeover.
    pub garp: u32,
    pub garp_interval: Duration,
    /// Repeat the gratuitous ARP this often while active; zero means never.
    pub garp_refresh: Duration,
}

/// `resource exec NAME start="CMD" stop="CMD" [monitor="CMD"] [timeout DUR]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecResource {
    pub name: String,
    pub start: String,
    pub stop: String,
    pub monitor: Option<String>,
    pub timeout: Duration,
}

/// `resource ocf PROVIDER:AGENT [name N] KEY=VALUE...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OcfResource {
    pub name: String,
    pub provider: String,
    pub agent: String,
    pub params: heapless::Vec<(String, String), AGENT_PARAMS_MAX>,
}

/// `restart_limit N in DUR`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestartLimit {
    pub count: u32,
    pub window: Duration,
}

/// `watchdog DEVICE [timeout DUR]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watchdog {
    pub device: PathBuf,
    /// Whole seconds (the kernel's unit).
    pub timeout: Duration,
}

/// `hwmon CHIP [root PATH]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hwmon {
    pub chip: String,
    pub root: PathBuf,
}

/// `sensor CHIP/INPUT [min X] [max X] [crit X]`. Limits are in thousandths of the unit the
/// file writes (°C, V, RPM): `max 70` is stored as 70000.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sensor {
    pub chip: String,
    pub input: String,
    pub min_milli: Option<i64>,
    pub max_milli: Option<i64>,
    pub crit_milli: Option<i64>,
}

/// `check NAME "CMD" [interval DUR] [timeout DUR]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub command: String,
    pub interval: Duration,
    pub timeout: Duration,
}

/// Where an `errors net` source over its limit is reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorReport {
    /// The node is unhealthy (a planned handover to a healthy peer).
    Node,
    /// The heartbeat links on the interface show it (`status`); the node stays healthy:
    /// a failing crossover is both nodes' link, which moving the group does not mend.
    Link,
}

impl ErrorReport {
    /// The keyword of the `report` option.
    pub const fn name(self) -> &'static str {
        match self {
            ErrorReport::Node => "node",
            ErrorReport::Link => "link",
        }
    }
}

impl Errors {
    /// It reports to the links on its interface, not to the node's health.
    pub fn on_link(&self) -> bool {
        self.report == Some(ErrorReport::Link)
    }
}

/// `ipmi [device PATH]`: the BMC, through the kernel's IPMI device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ipmi {
    /// The device (`/dev/ipmi0`).
    pub device: PathBuf,
}

/// `errors edac|net IF|disk DEV [max N in DUR] [root PATH] [report link|node]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Errors {
    pub kind: crate::health::errors::ErrorKind,
    /// The interface or block device; empty for `edac`.
    pub name: String,
    /// More than this many errors within `window` make the node unhealthy.
    pub max: u32,
    pub window: Duration,
    /// Where sysfs is (`/sys`; tests point it at a fake tree).
    pub root: PathBuf,
    /// `errors net` only: what a source over its limit makes unhealthy, the node or the
    /// heartbeat links on its interface. `None` before validation, which resolves it
    /// (`validate`: `Link` on an interface that carries a heartbeat medium and no `ip`
    /// resource, the crossover; `Node` otherwise); a hand-built `None` reports to the node.
    pub report: Option<ErrorReport>,
}

/// `fence watchdog` or `fence CMD ARGS...`.
// Built once before the loop and never moved in it: the fixed-capacity variant size is fine.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fence {
    /// The peer's own watchdog makes it safe (SPEC §3).
    Watchdog,
    /// A command (argv) that makes the peer safe; exit 0 means done.
    Command(heapless::Vec<String, FENCE_ARGS_MAX>),
}

/// `realtime on [priority N]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Realtime {
    /// SCHED_FIFO priority, 1..=99.
    pub priority: u8,
}

impl Config {
    /// The index (0 or 1) of the node called `name`.
    pub fn node_index(&self, name: &str) -> Option<usize> {
        self.pair.nodes.iter().position(|n| n == name)
    }

    /// The resource's name as `cleanup` and `status` show it.
    pub fn resource_names(&self) -> impl Iterator<Item = &str> {
        self.resources.iter().map(Resource::name)
    }

    /// The index in [`Config::groups`] of the group that holds the resource at `resource`
    /// (an index into [`Config::resources`]).
    pub fn group_of(&self, resource: usize) -> usize {
        assert!(resource < self.resources.len(), "resource {resource} of {}", self.resources.len());
        // The ranges are contiguous from 0 (`Config::groups`): the last group that starts at
        // or before the resource holds it. The first starts at 0, so there is one.
        self.groups.iter().rposition(|g| g.resources.start <= resource).unwrap_or(0)
    }

    /// The index in [`Config::groups`] of the group called `name`.
    pub fn group_index(&self, name: &str) -> Option<usize> {
        self.groups.iter().position(|g| g.name == name)
    }

    /// The file has `group` lines, as far as its meaning goes: anything but the one group
    /// [`MAIN_GROUP`] with the pair's `home` and `auto_failback` (what a file without `group`
    /// lines means, and what a lone `group main` line without options means too). The
    /// canonical text writes `group` lines exactly then.
    pub(crate) fn has_group_lines(&self) -> bool {
        match self.groups.as_slice() {
            [g] => {
                g.name != MAIN_GROUP
                    || g.home != self.pair.home
                    || g.auto_failback != self.pair.auto_failback
            }
            _ => true,
        }
    }
}

impl Resource {
    /// The name `status` and `cleanup` use.
    pub fn name(&self) -> &str {
        match self {
            Resource::Ip(r) => &r.name,
            Resource::Exec(r) => &r.name,
            Resource::Lsb { name } => name,
            Resource::Ocf(r) => &r.name,
            Resource::Drbd { name } => name,
        }
    }

    /// The kind as written in the file: `ip`, `exec`, `lsb`, `ocf` or `drbd`.
    pub fn kind(&self) -> &'static str {
        match self {
            Resource::Ip(_) => "ip",
            Resource::Exec(_) => "exec",
            Resource::Lsb { .. } => "lsb",
            Resource::Ocf(_) => "ocf",
            Resource::Drbd { .. } => "drbd",
        }
    }
}

impl Medium {
    /// A short label for logs and status: `serial /dev/ttyS0`, `ucast eth1`, ...
    pub fn label(&self) -> String {
        match self {
            Medium::Serial { device, .. } => format!("serial {}", device.display()),
            Medium::Bcast { iface } => format!("bcast {iface}"),
            Medium::Mcast { iface, group, .. } => format!("mcast {iface} {group}"),
            Medium::Ucast { iface, .. } => format!("ucast {iface}"),
        }
    }
}

/// A configuration error: where (file and line, when there is one) and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file at fault (configuration, kernel command line or authkey).
    pub file: PathBuf,
    /// 1-based line, or 0 when the error is about the file as a whole.
    pub line: u32,
    /// What is wrong, naming the offending word.
    pub message: String,
}

impl ConfigError {
    /// An error about `line` of `file` (0 for the whole file).
    pub fn new(file: impl Into<PathBuf>, line: u32, message: impl Into<String>) -> ConfigError {
        ConfigError { file: file.into(), line, message: message.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}
