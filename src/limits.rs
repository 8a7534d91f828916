//! Every capacity in hapair, in one place. Buffers and queues are sized from these at start-up
//! and never grow: a full queue hands the item back, which is counted and dropped.

/// Heartbeat media (serial ports, bcast, mcast and ucast sockets) one node may have.
pub const LINKS_MAX: usize = 8;
/// Resources of all groups together (SPEC §7.1).
pub const RESOURCES_MAX: usize = 32;
/// Resource groups (SPEC §7.1): `group` lines, or the one implicit group `main`.
pub const GROUPS_MAX: usize = 8;
/// `ping` nodes.
pub const PING_NODES_MAX: usize = 8;
/// `check` commands.
pub const CHECKS_MAX: usize = 8;
/// `sensor` lines and hwmon inputs watched.
pub const SENSORS_MAX: usize = 64;
/// `hwmon` chips watched.
pub const HWMON_CHIPS_MAX: usize = 4;
/// `errors` sources (EDAC, NICs, disks) watched.
pub const ERROR_SOURCES_MAX: usize = 8;
/// Threshold sensors of the BMC watched (`ipmi`); more are left out and counted.
pub const IPMI_SENSORS_MAX: usize = 64;
/// md arrays followed in /proc/mdstat.
pub const RAID_ARRAYS_MAX: usize = 16;
/// Agent parameters (`key=value`) on one `resource ocf` line.
pub const AGENT_PARAMS_MAX: usize = 16;
/// The largest encoded heartbeat frame, before serial framing (SPEC §4).
pub const FRAME_LEN_MAX: usize = 128;
/// Actions the core may queue between two drains by the event loop.
pub const CORE_OUTPUTS_MAX: usize = 32;
/// Child processes (resource actions, notify, fence, checks, meta-data) supervised at once.
pub const CHILDREN_MAX: usize = 80;
/// Child slots only resource actions and the fence command may use (SPEC §7.3: notify and
/// checks cannot use them up). The core runs at most one resource action at a time per group
/// (groups move independently, SPEC §7.1) and one fence attempt at a time, and a child's slot
/// is free before its result reaches the core, so one slot per group plus one for the fence
/// always suffice for them.
pub const CHILDREN_RESERVED: usize = GROUPS_MAX + 1;
/// Notify, check and meta-data children at once: the rest of the table.
pub const CHILDREN_ORDINARY_MAX: usize = CHILDREN_MAX - CHILDREN_RESERVED;
/// Notify commands running at once, at most: `notify_children_max` of the configuration's
/// groups. A state change past it is not notified: the notify is dropped, counted and warned
/// about (rate-limited), never queued, so that hung notify scripts cannot take the slots of
/// checks or of a reload's meta-data runs either. With the checks (one child each) and the
/// meta-data runs of one reload (one per resource) the ordinary share is never exceeded in
/// normal operation.
pub const NOTIFY_CHILDREN_MAX: usize = notify_children_max(GROUPS_MAX);

/// Notify commands running at once with `groups` groups: 6, and 3 per group, for a takeover
/// notifies failover, starting and active of each group at once (SPEC §7.1).
pub const fn notify_children_max(groups: usize) -> usize {
    6 + 3 * groups
}
const _: () = assert!(NOTIFY_CHILDREN_MAX + CHECKS_MAX + RESOURCES_MAX <= CHILDREN_ORDINARY_MAX);
/// Control-socket clients served at once.
pub const CONTROL_CLIENTS_MAX: usize = 4;
/// Frames taken from one file descriptor per wake of the loop, so that one flooded link
/// cannot starve the others.
pub const FRAMES_PER_WAKE_MAX: usize = 16;
/// The receive buffer asked for each UDP heartbeat socket (SO_RCVBUF; the kernel doubles it
/// for its bookkeeping and charges each datagram its buffer's true size, about 830 bytes for a
/// frame on a veth and up to 2.3 kB on a NIC with 2 kB receive buffers). So a socket holds
/// 1 800 to 5 000 frames. What the peer sends in a stall of this node (one frame per
/// keepalive per socket) is a handful of them; the rest is headroom for a flood of forged or
/// replayed frames that pass the socket filter: they wait to be read (`FRAMES_PER_WAKE_MAX` a
/// wake, about a microsecond each) while the scheduler has the daemon off the CPU, instead of
/// pushing the peer's frames out. scripts/bench-flood, 250 000 such datagrams a second at a
/// daemon without `realtime` on a loaded 2-vCPU machine: a quarter of this size lost 1 to 5 %
/// of the peer's frames and, in one minute of four, a deadtime's worth in a row (a false
/// failover); this size lost none. A full buffer delays the peer's next frame by the time
/// the loop takes to read it (a few ms). Kernel memory, used only while datagrams wait.
pub const UDP_RCVBUF_BYTES: usize = 2 * 1024 * 1024;
