//! What a node says about itself in every frame: the part of a heartbeat the core reads and
//! writes. The byte layout lives in the parent module's docs; this file only names the values.
//!
//! Every enum has a fixed numeric code that goes on the wire. Decoding an unknown code is an
//! error in `wire` (the frame is malformed), so the core only ever sees these variants.

/// A node's group state (SPEC §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum GroupState {
    /// Not running the group, ready to take it.
    Standby = 0,
    /// Starting the group's resources in order.
    Starting = 1,
    /// Running the whole group.
    Active = 2,
    /// Stopping the group's resources in reverse order.
    Stopping = 3,
    /// The group could not be started, stopped or kept running here; needs `cleanup`.
    Failed = 4,
    /// Resources are not managed: nothing is started, stopped or monitored.
    Maintenance = 5,
}

/// Why a frame was sent. Most frames are plain heartbeats; the others carry the handover and
/// fencing handshakes of the core.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    /// The periodic "I am alive, this is my state" frame.
    Heartbeat = 0,
    /// "I have stopped the group for you: start it now" (planned handover).
    Release = 1,
    /// "Please hand the group over to me" (`takeover`, failback, or a healthier peer).
    Request = 2,
    /// "I am shutting down; the group is stopped": the peer takes over at once.
    Leaving = 3,
    /// "I saw your `Release`/`Request`": closes a handshake.
    Ack = 4,
}

/// What the operator asked of the sending node (persistent admin intent).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Intent {
    /// No standing request.
    None = 0,
    /// `hapair standby`: the node must not hold the group.
    Standby = 1,
    /// `hapair takeover`: the node asks for the group.
    Takeover = 2,
    /// `hapair maintenance on`: resources are left alone.
    Maintenance = 3,
}

/// A node's health summary: zero bits set means healthy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Health(pub u16);

impl Health {
    /// Healthy.
    pub const OK: Health = Health(0);
    /// A hwmon sensor is out of its limits (or predicted to cross crit soon).
    pub const SENSOR: u16 = 1 << 0;
    /// An md array is degraded or failed.
    pub const RAID: u16 = 1 << 1;
    /// No ping node answers.
    pub const PING: u16 = 1 << 2;
    /// A `check` command fails.
    pub const CHECK: u16 = 1 << 3;
    /// A resource exhausted its `restart_limit` here.
    pub const RESTARTS: u16 = 1 << 4;
    /// The watchdog could not be opened or petted.
    pub const WATCHDOG: u16 = 1 << 5;
    /// An error counter is over its rate limit, or an uncorrected memory error is on record
    /// (SPEC §7.6). A peer that predates this bit still reads a nonzero mask as unhealthy.
    pub const ERRORS: u16 = 1 << 6;

    /// True when no problem bit is set.
    pub const fn is_ok(self) -> bool {
        self.0 == 0
    }

    /// True when `bit` is set.
    pub const fn has(self, bit: u16) -> bool {
        self.0 & bit != 0
    }
}

/// The part of every frame that the core fills in and reads back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Payload {
    /// Why this frame was sent.
    pub kind: Kind,
    /// The sender's group state.
    pub state: GroupState,
    /// The sender's health summary.
    pub health: Health,
    /// The sender's standing admin intent.
    pub intent: Intent,
    /// Core-defined flag bits (documented in `core`); unknown bits are ignored by the receiver.
    pub flags: u8,
    /// The sender's view of the group's ownership epoch, bumped at every takeover; handshakes
    /// name the epoch they refer to.
    pub epoch: u32,
    /// The sender's hardware watchdog timeout in milliseconds, 0 when it has none
    /// (`fence watchdog` waits this long plus a margin).
    pub watchdog_timeout_ms: u32,
    /// The first 8 bytes of SHA-256 over the sender's effective configuration.
    pub config_digest: [u8; 8],
}
