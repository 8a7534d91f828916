//! What a node says about itself in every frame: the part of a heartbeat the core reads and
//! writes. The byte layout lives in the parent module's docs; this file only names the values.
//!
//! Every enum has a fixed numeric code that goes on the wire. Decoding an unknown code is an
//! error in `wire` (the frame is malformed), so the core only ever sees these variants.
//!
//! A frame describes up to `limits::GROUPS_MAX` resource groups (SPEC §7.1): group 0 in the
//! payload's main fields, groups 1 and up in its [`Groups`] (version 3 and later; a frame of
//! an older version describes group 0 only). [`Payload::group`] gives the view of one group.

use crate::limits::GROUPS_MAX;

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
    /// The local disk of a DRBD resource this node's groups use is not UpToDate (SPEC §7.5):
    /// a node with it may not take a group that has a `drbd` resource (like `PING`, a bar
    /// rather than a preference), but others.
    pub const DRBD: u16 = 1 << 8;
    /// The BMC reports a problem (SPEC §7.6 `ipmi`): a sensor past a critical threshold, a
    /// failure in its event log, or it does not answer. Added to frames v3 without a layout
    /// change: a peer of any version reads a nonzero mask as unhealthy.
    pub const IPMI: u16 = 1 << 7;

    /// True when no problem bit is set.
    pub const fn is_ok(self) -> bool {
        self.0 == 0
    }

    /// True when `bit` is set.
    pub const fn has(self, bit: u16) -> bool {
        self.0 & bit != 0
    }
}

/// DRBD's fence-peer over the heartbeat links (SPEC §7.5, frame v4): what one node asks of its
/// peer and what it answers to the peer's request. Node-wide, outside the core: the core never
/// reads or writes it (`drbd::outdate` does). A request is repeated in every frame until the
/// answer naming its number comes back; an answer is repeated while the request it names is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Outdate {
    /// Bits 0-3: the request's number, 1 to 15 (0: no request); bits 4-7: which DRBD resource
    /// (its index among the configuration's `resource drbd` lines).
    pub request: u8,
    /// Bits 0-3: the number of the peer's request answered (0: none); bits 4-7: the result,
    /// DRBD's fence-peer exit code (3, 4, 5 or 6).
    pub answer: u8,
}

impl Outdate {
    /// Nothing asked, nothing answered.
    pub const NONE: Outdate = Outdate { request: 0, answer: 0 };

    /// A request `number` (1 to 15) about DRBD resource `resource` (0 to 15).
    pub const fn request(number: u8, resource: u8) -> u8 {
        (resource & 0x0f) << 4 | (number & 0x0f)
    }

    /// An answer to request `number` with `code`.
    pub const fn answer(number: u8, code: u8) -> u8 {
        (code & 0x0f) << 4 | (number & 0x0f)
    }

    /// The number and the resource of the request, `None` when there is none.
    pub const fn requested(self) -> Option<(u8, u8)> {
        match self.request & 0x0f {
            0 => None,
            n => Some((n, self.request >> 4)),
        }
    }

    /// The number answered and the code, `None` when nothing is answered.
    pub const fn answered(self) -> Option<(u8, u8)> {
        match self.answer & 0x0f {
            0 => None,
            n => Some((n, self.answer >> 4)),
        }
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
    /// The groups the sender describes: how many, and groups 1 and up (the fields above are
    /// group 0's). A node with one group, and every frame older than version 3, has
    /// [`Groups::ONE`].
    pub groups: Groups,
}

impl Payload {
    /// The view of group `group` (below `GROUPS_MAX`, a caller invariant), as one frame of a
    /// single group would carry it: group 0 is this payload with [`Groups::ONE`]; group k takes
    /// its kind, state, intent and epoch from part k, and its flags from the per-group bits of
    /// part k ([`GROUP_FLAGS`]) and the node-wide bits of this payload. Health, watchdog
    /// timeout and configuration digest are the node's and stay. A group the sender does not
    /// describe (a peer with fewer groups, or one older than version 3) reads as
    /// [`GroupPart::IDLE`].
    pub fn group(&self, group: u8) -> Payload {
        assert!(usize::from(group) < GROUPS_MAX, "group {group} out of range");
        let one = Payload { groups: Groups::ONE, ..*self };
        if group == 0 {
            return one;
        }
        let part = self.groups.part(group).unwrap_or(GroupPart::IDLE);
        Payload {
            kind: part.kind,
            state: part.state,
            intent: part.intent,
            flags: (self.flags & !GROUP_FLAGS) | (part.flags & GROUP_FLAGS),
            epoch: part.epoch,
            health: Health(
                self.health.0 & !Health::RESTARTS
                    | if part.restarts { Health::RESTARTS } else { 0 },
            ),
            ..one
        }
    }
}

/// The bits of `Payload::flags` that belong to one group (`core`'s `FLAG_HOLDING`, bit 0, and
/// `FLAG_TAKING_OVER`, bit 1); the others are the node's and hold for every group.
pub const GROUP_FLAGS: u8 = 0b11;

/// One further group's part of a frame (groups 1 and up; group 0 is the frame's main fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GroupPart {
    /// Why this frame was sent, for this group.
    pub kind: Kind,
    /// The sender's state of this group.
    pub state: GroupState,
    /// The sender's standing admin intent for this group.
    pub intent: Intent,
    /// Only the per-group flag bits ([`GROUP_FLAGS`]): bit 0 holding, bit 1 taking over.
    /// `Groups::set` drops any other bit.
    pub flags: u8,
    /// The sender's view of this group's ownership epoch.
    pub epoch: u32,
    /// The sender's restarts of this group are exhausted (`Health::RESTARTS`, which is a
    /// group's own: the frame's `health` carries group 0's).
    pub restarts: bool,
}

impl GroupPart {
    /// A group the sender does not describe: a heartbeat in standby, no intent, not holding,
    /// epoch 0. On the wire it is all zero.
    pub const IDLE: GroupPart = GroupPart {
        kind: Kind::Heartbeat,
        state: GroupState::Standby,
        intent: Intent::None,
        flags: 0,
        epoch: 0,
        restarts: false,
    };

    /// The part of a payload that describes its (one) group.
    pub fn of(payload: &Payload) -> GroupPart {
        GroupPart {
            kind: payload.kind,
            state: payload.state,
            intent: payload.intent,
            flags: payload.flags & GROUP_FLAGS,
            epoch: payload.epoch,
            restarts: payload.health.has(Health::RESTARTS),
        }
    }
}

/// The groups a frame describes: `count` (1 to `GROUPS_MAX`; 1 for a frame without group
/// parts) and the parts of groups 1 to `count - 1`. The parts past `count` are always
/// [`GroupPart::IDLE`], so two values that describe the same groups are equal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Groups {
    count: u8,
    parts: [GroupPart; GROUPS_MAX - 1],
}

impl Groups {
    /// One group: the payload's main fields, and no parts.
    pub const ONE: Groups = Groups { count: 1, parts: [GroupPart::IDLE; GROUPS_MAX - 1] };

    /// `count` groups, the parts of groups 1 and up idle; `None` for 0 or more than
    /// `GROUPS_MAX`.
    pub const fn new(count: u8) -> Option<Groups> {
        if count == 0 || count as usize > GROUPS_MAX {
            return None;
        }
        Some(Groups { count, ..Groups::ONE })
    }

    /// How many groups (1 to `GROUPS_MAX`), group 0 included.
    pub const fn count(&self) -> u8 {
        self.count
    }

    /// The part of group `group` (1 to `count - 1`); `None` for group 0 (the payload's main
    /// fields) and for a group past `count`.
    pub fn part(&self, group: u8) -> Option<GroupPart> {
        if group == 0 || group >= self.count {
            return None;
        }
        Some(self.parts[usize::from(group) - 1])
    }

    /// Sets the part of group `group`, which must be 1 to `count - 1` (a caller invariant).
    /// Flag bits outside [`GROUP_FLAGS`] are dropped: they are node-wide, in the payload's
    /// own flags.
    pub fn set(&mut self, group: u8, part: GroupPart) {
        assert!(group >= 1 && group < self.count, "group {group} of {}", self.count);
        let flags = part.flags & GROUP_FLAGS;
        self.parts[usize::from(group) - 1] = GroupPart { flags, ..part };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload() -> Payload {
        Payload {
            kind: Kind::Heartbeat,
            state: GroupState::Active,
            health: Health(Health::PING),
            intent: Intent::None,
            // Holding, and the node-wide bit 2 and an unknown bit 7.
            flags: 0b1000_0101,
            epoch: 4,
            watchdog_timeout_ms: 5000,
            config_digest: [3; 8],
            groups: Groups::ONE,
        }
    }

    const TAKING_OVER: GroupPart = GroupPart {
        kind: Kind::Request,
        state: GroupState::Standby,
        intent: Intent::Takeover,
        flags: 0b10,
        epoch: 77,
        restarts: false,
    };

    #[test]
    fn groups_count_from_1_to_8() {
        assert_eq!(Groups::new(0), None);
        assert_eq!(Groups::new(9), None);
        assert_eq!(Groups::new(1), Some(Groups::ONE));
        let eight = Groups::new(8).unwrap();
        assert_eq!(eight.count(), 8);
        assert_eq!(eight.part(0), None, "group 0 is the payload's main fields");
        assert_eq!(eight.part(7), Some(GroupPart::IDLE));
        assert_eq!(eight.part(8), None);
        assert_eq!(Groups::ONE.part(1), None);
    }

    #[test]
    fn set_keeps_only_the_group_flag_bits() {
        let mut groups = Groups::new(3).unwrap();
        groups.set(2, GroupPart { flags: 0xff, ..TAKING_OVER });
        assert_eq!(groups.part(2), Some(GroupPart { flags: 0b11, ..TAKING_OVER }));
        assert_eq!(groups.part(1), Some(GroupPart::IDLE));
    }

    #[test]
    #[should_panic(expected = "group 3 of 3")]
    fn set_past_the_count_is_a_bug() {
        Groups::new(3).unwrap().set(3, TAKING_OVER);
    }

    #[test]
    fn group_0_is_the_main_fields_and_others_merge_the_flags() {
        let mut groups = Groups::new(3).unwrap();
        groups.set(1, TAKING_OVER);
        let multi = Payload { groups, ..payload() };
        assert_eq!(multi.group(0), payload());
        // Group 1: its kind, state, intent and epoch; its own holding and taking-over bits
        // (not holding, taking over) beside the node's bits 2 and 7; the node's health,
        // watchdog and digest.
        let one = Payload {
            kind: Kind::Request,
            state: GroupState::Standby,
            intent: Intent::Takeover,
            flags: 0b1000_0110,
            epoch: 77,
            ..payload()
        };
        assert_eq!(multi.group(1), one);
        // Group 2 is described, idle; groups 3 to 7 are not: both read as idle.
        let idle = Payload {
            kind: Kind::Heartbeat,
            state: GroupState::Standby,
            intent: Intent::None,
            flags: 0b1000_0100,
            epoch: 0,
            ..payload()
        };
        for group in 2..8 {
            assert_eq!(multi.group(group), idle, "group {group}");
        }
        // A frame of one group (or of version 2) says nothing of group 1.
        assert_eq!(payload().group(1), idle);
    }

    /// The number in bits 0-3, the resource or the result in bits 4-7.
    #[test]
    fn outdate_requests_and_answers_pack_into_one_byte_each() {
        assert_eq!(Outdate::request(5, 2), 0x25);
        assert_eq!(Outdate::answer(9, 4), 0x49);
        assert_eq!(Outdate::request(15, 15), 0xff);
        for number in 1..=15 {
            for resource in 0..=15 {
                let outdate = Outdate { request: Outdate::request(number, resource), answer: 0 };
                assert_eq!(outdate.requested(), Some((number, resource)));
                assert_eq!(outdate.answered(), None);
            }
            for code in 3..=6 {
                let outdate = Outdate { request: 0, answer: Outdate::answer(number, code) };
                assert_eq!((outdate.requested(), outdate.answered()), (None, Some((number, code))));
            }
        }
    }

    /// Number 0 is "none", whatever the upper bits say: a resource without a request, a
    /// result without an answer.
    #[test]
    fn outdate_number_0_is_none() {
        assert_eq!(Outdate::default(), Outdate::NONE);
        assert_eq!((Outdate::NONE.requested(), Outdate::NONE.answered()), (None, None));
        let upper_only = Outdate { request: Outdate::request(0, 3), answer: Outdate::answer(0, 4) };
        assert_eq!((upper_only.request, upper_only.answer), (0x30, 0x40));
        assert_eq!((upper_only.requested(), upper_only.answered()), (None, None));
    }
}
