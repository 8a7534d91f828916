//! The frame byte layout: a `Frame<T>` view over a buffer with named offset ranges, and the
//! conversions between it and `Repr` (smoltcp style). The layout and the version rule are
//! documented in the parent module. This file checks structure only: it neither computes nor
//! verifies the tag (see `auth.rs`) and keeps no replay state.

use super::authentic::Repr;
use super::error::RxError;
use super::payload::{
    GROUP_FLAGS, GroupPart, GroupState, Groups, Health, Intent, Kind, Outdate, Payload,
};
use super::session::Session;
use crate::limits::{FRAME_LEN_MAX, GROUPS_MAX, LINKS_MAX};

/// The layout version this code emits.
pub const VERSION: u8 = 4;
/// The old version this code still reads and, to a peer that speaks only it, writes, under
/// the legacy key (see the parent module): not adjacent to `VERSION`, admitted by name.
pub const VERSION_LEGACY: u8 = 1;
/// The first version with the session fields (`run` to `session_flags`).
pub const VERSION_SESSION: u8 = 2;
/// The first version with the group fields (`groups` to the parts).
pub const VERSION_GROUPS: u8 = 3;
/// The first version with the outdate fields (DRBD's fence-peer over the links, SPEC §7.5).
pub const VERSION_OUTDATE: u8 = 4;
/// Length of the HMAC-SHA256 tag that ends every frame.
pub const TAG_LEN: usize = 32;
/// Length of a version 1 frame, tag included.
pub const FRAME_LEN_V1: usize = field::BODY_END_V1 + TAG_LEN;
/// Length of a version 2 frame, tag included (`Repr::emit` writes one; this code no longer
/// reads it).
pub const FRAME_LEN_V2: usize = field::BODY_END_V2 + TAG_LEN;
/// Length of a version 3 frame, tag included.
pub const FRAME_LEN_V3: usize = field::BODY_END_V3 + TAG_LEN;
/// Length of a version 4 frame, tag included: the frame this code sends.
pub const FRAME_LEN_V4: usize = field::BODY_END_V4 + TAG_LEN;

const _: () = assert!(FRAME_LEN_V1 <= FRAME_LEN_MAX && FRAME_LEN_V2 <= FRAME_LEN_MAX);
// SPEC §7.1: a frame still fits in 128 bytes with every group.
const _: () = assert!(FRAME_LEN_V3 <= FRAME_LEN_MAX && FRAME_LEN_V4 <= FRAME_LEN_MAX);
// Every group but group 0 has a part, and the intents field has two bits for each.
const _: () = assert!(field::GROUP_PARTS == GROUPS_MAX - 1 && 2 * field::GROUP_PARTS <= 16);
// A part's byte holds every state and kind code in three bits, the intents field every intent
// code in two.
const _: () = assert!(GroupState::Maintenance as u8 <= 7 && Kind::Ack as u8 <= 7);
const _: () = assert!(Intent::Maintenance as u8 <= 3);

/// Byte offsets of the fields (see the table in the module docs).
pub mod field {
    /// A run of bytes within the frame.
    pub type Field = core::ops::Range<usize>;

    /// Layout version.
    pub const VERSION: usize = 0;
    /// Bytes before the tag.
    pub const BODY_LEN: usize = 1;
    /// Sender's node index.
    pub const SENDER: usize = 2;
    /// Link index the frame was sent on.
    pub const LINK: usize = 3;
    /// Sender's boot counter.
    pub const INCARNATION: Field = 4..12;
    /// Per-link sequence number.
    pub const SEQ: Field = 12..20;
    /// `Kind` code.
    pub const KIND: usize = 20;
    /// `GroupState` code.
    pub const STATE: usize = 21;
    /// `Intent` code.
    pub const INTENT: usize = 22;
    /// Core-defined flags.
    pub const FLAGS: usize = 23;
    /// `Health` bits.
    pub const HEALTH: Field = 24..26;
    /// Ownership epoch.
    pub const EPOCH: Field = 26..30;
    /// Watchdog timeout in milliseconds.
    pub const WATCHDOG_TIMEOUT_MS: Field = 30..34;
    /// Configuration digest.
    pub const CONFIG_DIGEST: Field = 34..42;
    /// End of the version 1 body: where a v1 tag starts.
    pub const BODY_END_V1: usize = 42;
    /// The sender's run: random, drawn at its start, never changes while it runs (v2).
    pub const RUN: Field = 42..46;
    /// The sender's current challenge, for the receiver to echo (v2).
    pub const CHALLENGE: Field = 46..50;
    /// The receiver's challenge as the sender last heard it, 0 for none (v2).
    pub const ECHO: Field = 50..54;
    /// Session flags (v2), see `wire::session`.
    pub const SESSION_FLAGS: usize = 54;
    /// End of the version 2 body: where a v2 tag starts.
    pub const BODY_END_V2: usize = 55;
    /// How many groups the frame describes, 1 to `GROUPS_MAX` (v3).
    pub const GROUPS: usize = 55;
    /// The intents of groups 1 to 7, two bits each, group k at bits 2(k-1) and up (v3).
    pub const INTENTS: Field = 56..58;
    /// Where the parts of groups 1 to 7 start, each `GROUP_PART_LEN` bytes (v3).
    pub const GROUP_PART_START: usize = 58;
    /// Length of one group's part: state, kind and flags in one byte, then the epoch.
    pub const GROUP_PART_LEN: usize = 5;
    /// Parts in a frame: one for each group but group 0.
    pub const GROUP_PARTS: usize = 7;
    /// Restart exhaustion of groups 1 to 7: bit k for group k (v3; bit 0 is zero, ignored:
    /// group 0's is `Health::RESTARTS` in `health`).
    pub const RESTARTS: usize = GROUP_PART_START + GROUP_PARTS * GROUP_PART_LEN;
    /// End of the version 3 body: where a v3 tag starts.
    pub const BODY_END_V3: usize = RESTARTS + 1;
    /// The sender's outdate request: bits 0-3 its number (0: none), bits 4-7 the DRBD
    /// resource (v4, `wire::Outdate`).
    pub const OUTDATE_REQUEST: usize = BODY_END_V3;
    /// The sender's answer to the receiver's request: bits 0-3 the request's number (0:
    /// none), bits 4-7 the result, DRBD's fence-peer exit code (v4).
    pub const OUTDATE_ANSWER: usize = BODY_END_V3 + 1;
    /// End of the version 4 body: where a v4 tag starts.
    pub const BODY_END_V4: usize = OUTDATE_ANSWER + 1;

    /// The part of group `group` (1 to `GROUP_PARTS`).
    pub const fn group_part(group: u8) -> Field {
        let start = GROUP_PART_START + (group as usize - 1) * GROUP_PART_LEN;
        start..start + GROUP_PART_LEN
    }
}

/// A group part's first byte: the `GroupState` code in bits 0 to 2, the `Kind` code in bits 3
/// to 5, and the group's flags (`payload::GROUP_FLAGS`) in bits 6 and 7.
mod part_bits {
    /// Where the state code starts.
    pub const STATE_SHIFT: u32 = 0;
    /// Where the kind code starts.
    pub const KIND_SHIFT: u32 = 3;
    /// Where the flags start.
    pub const FLAGS_SHIFT: u32 = 6;
    /// The width of the state and kind codes.
    pub const CODE_MASK: u8 = 0b111;
}

/// Where the tag starts in a frame of `version`, for the versions this code knows (a newer
/// one has at least our fields).
pub const fn body_end(version: u8) -> usize {
    match version {
        0..=VERSION_LEGACY => field::BODY_END_V1,
        VERSION_SESSION => field::BODY_END_V2,
        VERSION_GROUPS => field::BODY_END_V3,
        _ => field::BODY_END_V4,
    }
}

/// True when a receiver of version `own` accepts frames of version `theirs`: the same or an
/// adjacent version, and never the reserved version 0.
pub const fn version_compatible(own: u8, theirs: u8) -> bool {
    theirs != 0 && theirs.abs_diff(own) <= 1
}

/// True when this code reads frames of `version`: an adjacent one, or the legacy version
/// (whose frames `auth::Receiver` then admits only under the legacy key). Not v2, between
/// the two: a v2 pair upgrades to v3 before v4.
pub const fn version_readable(version: u8) -> bool {
    version == VERSION_LEGACY || version_compatible(VERSION, version)
}

/// The body lengths (bytes before the tag) a receiver of this code's version accepts in a
/// frame of `version`, as (shortest, longest); `None` for a version it drops. One rule for
/// `Frame::check` and for the UDP socket filter (`drivers::udp`), which applies it in the
/// kernel, before a datagram can wake the loop: the receiver's own and older versions have
/// exactly their body length; a newer one may append fields, never be shorter than ours. A
/// v4 body already ends at `FRAME_LEN_MAX - TAG_LEN`, so v5 gets (96, 96): no room to append.
pub const fn body_len_range(version: u8) -> Option<(usize, usize)> {
    if !version_readable(version) {
        return None;
    }
    if version > VERSION {
        Some((body_end(VERSION), FRAME_LEN_MAX - TAG_LEN))
    } else {
        Some((body_end(version), body_end(version)))
    }
}

/// A read/write view of a frame in a buffer.
#[derive(Debug, Clone)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps a buffer without checking it; accessors may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Frame<T> {
        Frame { buffer }
    }

    /// Wraps a buffer after [`Frame::check`]: every accessor is then in bounds.
    pub fn new_checked(buffer: T) -> Result<Frame<T>, RxError> {
        let frame = Frame::new_unchecked(buffer);
        frame.check()?;
        Ok(frame)
    }

    /// Checks the version and that the length is exactly `body_len + TAG_LEN` for a body
    /// that holds at least the fields this version knows.
    pub fn check(&self) -> Result<(), RxError> {
        let data = self.buffer.as_ref();
        if data.len() <= field::BODY_LEN || data.len() > FRAME_LEN_MAX {
            return Err(RxError::Malformed);
        }
        let Some((shortest, longest)) = body_len_range(data[field::VERSION]) else {
            return Err(RxError::Version);
        };
        let body_len = usize::from(data[field::BODY_LEN]);
        let body_ok = (shortest..=longest).contains(&body_len);
        if !body_ok || body_len + TAG_LEN != data.len() {
            return Err(RxError::Malformed);
        }
        Ok(())
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Layout version.
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION]
    }

    /// Bytes before the tag.
    pub fn body_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::BODY_LEN])
    }

    /// Sender's node index.
    pub fn sender(&self) -> u8 {
        self.buffer.as_ref()[field::SENDER]
    }

    /// Link index the frame was sent on.
    pub fn link(&self) -> u8 {
        self.buffer.as_ref()[field::LINK]
    }

    /// Sender's boot counter.
    pub fn incarnation(&self) -> u64 {
        u64::from_be_bytes(self.array(field::INCARNATION))
    }

    /// Per-link sequence number.
    pub fn seq(&self) -> u64 {
        u64::from_be_bytes(self.array(field::SEQ))
    }

    /// Raw `Kind` code.
    pub fn kind_code(&self) -> u8 {
        self.buffer.as_ref()[field::KIND]
    }

    /// Raw `GroupState` code.
    pub fn state_code(&self) -> u8 {
        self.buffer.as_ref()[field::STATE]
    }

    /// Raw `Intent` code.
    pub fn intent_code(&self) -> u8 {
        self.buffer.as_ref()[field::INTENT]
    }

    /// Core-defined flags.
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// Health bits.
    pub fn health(&self) -> u16 {
        u16::from_be_bytes(self.array(field::HEALTH))
    }

    /// Ownership epoch.
    pub fn epoch(&self) -> u32 {
        u32::from_be_bytes(self.array(field::EPOCH))
    }

    /// Watchdog timeout in milliseconds.
    pub fn watchdog_timeout_ms(&self) -> u32 {
        u32::from_be_bytes(self.array(field::WATCHDOG_TIMEOUT_MS))
    }

    /// Configuration digest.
    pub fn config_digest(&self) -> [u8; 8] {
        self.array(field::CONFIG_DIGEST)
    }

    /// The session fields (v2 and later; all zero in a v1 frame).
    pub fn session(&self) -> Session {
        if self.version() < VERSION_SESSION {
            return Session::NONE;
        }
        Session {
            run: u32::from_be_bytes(self.array(field::RUN)),
            challenge: u32::from_be_bytes(self.array(field::CHALLENGE)),
            echo: u32::from_be_bytes(self.array(field::ECHO)),
            flags: self.buffer.as_ref()[field::SESSION_FLAGS],
        }
    }

    /// How many groups the frame describes (v3 and later; 1 in an older frame). Not checked
    /// here: 0 or more than `GROUPS_MAX` makes the frame malformed in `Repr::parse`.
    pub fn group_count(&self) -> u8 {
        if self.version() < VERSION_GROUPS {
            return 1;
        }
        self.buffer.as_ref()[field::GROUPS]
    }

    /// The intent codes of groups 1 to 7, two bits each (v3 and later, 0 in an older frame).
    pub fn group_intents(&self) -> u16 {
        if self.version() < VERSION_GROUPS {
            return 0;
        }
        u16::from_be_bytes(self.array(field::INTENTS))
    }

    /// Restart exhaustion of groups 1 to 7, bit k for group k (v3 and later, 0 in an older
    /// frame).
    pub fn group_restarts(&self) -> u8 {
        if self.version() < VERSION_GROUPS {
            return 0;
        }
        self.buffer.as_ref()[field::RESTARTS]
    }

    /// The outdate exchange (v4 and later; none in an older frame).
    pub fn outdate(&self) -> Outdate {
        if self.version() < VERSION_OUTDATE {
            return Outdate::NONE;
        }
        let data = self.buffer.as_ref();
        Outdate { request: data[field::OUTDATE_REQUEST], answer: data[field::OUTDATE_ANSWER] }
    }

    /// Raw intent code of group `group` (1 to 7).
    pub fn group_intent_code(&self, group: u8) -> u8 {
        (self.group_intents() >> (2 * (u32::from(group) - 1)) & 0b11) as u8
    }

    /// Raw first byte of group `group`'s part (1 to 7; v3 and later): state, kind and flags.
    pub fn group_part_byte(&self, group: u8) -> u8 {
        self.buffer.as_ref()[field::group_part(group).start]
    }

    /// Ownership epoch of group `group` (1 to 7; v3 and later).
    pub fn group_epoch(&self, group: u8) -> u32 {
        let part = field::group_part(group);
        u32::from_be_bytes(self.array(part.start + 1..part.end))
    }

    /// Everything the tag covers.
    pub fn body(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.body_len()]
    }

    /// The tag.
    pub fn tag(&self) -> &[u8] {
        let start = self.body_len();
        &self.buffer.as_ref()[start..start + TAG_LEN]
    }

    fn array<const N: usize>(&self, range: field::Field) -> [u8; N] {
        let mut out = [0; N];
        out.copy_from_slice(&self.buffer.as_ref()[range]);
        out
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// Sets the layout version.
    pub fn set_version(&mut self, value: u8) {
        self.buffer.as_mut()[field::VERSION] = value;
    }

    /// Sets the body length (where the tag starts).
    pub fn set_body_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::BODY_LEN] = value;
    }

    /// Sets the sender's node index.
    pub fn set_sender(&mut self, value: u8) {
        self.buffer.as_mut()[field::SENDER] = value;
    }

    /// Sets the link index.
    pub fn set_link(&mut self, value: u8) {
        self.buffer.as_mut()[field::LINK] = value;
    }

    /// Sets the incarnation.
    pub fn set_incarnation(&mut self, value: u64) {
        self.buffer.as_mut()[field::INCARNATION].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the sequence number.
    pub fn set_seq(&mut self, value: u64) {
        self.buffer.as_mut()[field::SEQ].copy_from_slice(&value.to_be_bytes());
    }

    /// Writes every payload field.
    pub fn set_payload(&mut self, payload: &Payload) {
        let data = self.buffer.as_mut();
        data[field::KIND] = payload.kind as u8;
        data[field::STATE] = payload.state as u8;
        data[field::INTENT] = payload.intent as u8;
        data[field::FLAGS] = payload.flags;
        data[field::HEALTH].copy_from_slice(&payload.health.0.to_be_bytes());
        data[field::EPOCH].copy_from_slice(&payload.epoch.to_be_bytes());
        let timeout = payload.watchdog_timeout_ms.to_be_bytes();
        data[field::WATCHDOG_TIMEOUT_MS].copy_from_slice(&timeout);
        data[field::CONFIG_DIGEST].copy_from_slice(&payload.config_digest);
    }

    /// Writes the session fields (v2 and later only).
    pub fn set_session(&mut self, session: &Session) {
        let data = self.buffer.as_mut();
        data[field::RUN].copy_from_slice(&session.run.to_be_bytes());
        data[field::CHALLENGE].copy_from_slice(&session.challenge.to_be_bytes());
        data[field::ECHO].copy_from_slice(&session.echo.to_be_bytes());
        data[field::SESSION_FLAGS] = session.flags;
    }

    /// Writes the group count, the intents and every group part (v3 and later only). The
    /// parts past the count are written as zero (idle).
    pub fn set_groups(&mut self, groups: &Groups) {
        let data = self.buffer.as_mut();
        data[field::GROUPS] = groups.count();
        let mut intents = 0u16;
        let mut restarts = 0u8;
        for group in 1..=field::GROUP_PARTS as u8 {
            let part = groups.part(group).unwrap_or(GroupPart::IDLE);
            intents |= u16::from(part.intent as u8) << (2 * (group - 1));
            restarts |= u8::from(part.restarts) << group;
            let byte = (part.state as u8) << part_bits::STATE_SHIFT
                | (part.kind as u8) << part_bits::KIND_SHIFT
                | (part.flags & GROUP_FLAGS) << part_bits::FLAGS_SHIFT;
            let range = field::group_part(group);
            data[range.start] = byte;
            data[range.start + 1..range.end].copy_from_slice(&part.epoch.to_be_bytes());
        }
        data[field::INTENTS].copy_from_slice(&intents.to_be_bytes());
        data[field::RESTARTS] = restarts;
    }

    /// Writes the outdate exchange (v4 and later only).
    pub fn set_outdate(&mut self, outdate: Outdate) {
        let data = self.buffer.as_mut();
        data[field::OUTDATE_REQUEST] = outdate.request;
        data[field::OUTDATE_ANSWER] = outdate.answer;
    }

    /// The body and the tag, split, for signing in place.
    pub fn body_and_tag_mut(&mut self) -> (&[u8], &mut [u8]) {
        let start = self.body_len();
        let (body, rest) = self.buffer.as_mut().split_at_mut(start);
        (body, &mut rest[..TAG_LEN])
    }
}

impl Repr {
    /// Decodes the fields of a checked frame. Does not verify the tag.
    pub fn parse<T: AsRef<[u8]>>(frame: &Frame<T>) -> Result<Repr, RxError> {
        frame.check()?;
        let sender = frame.sender();
        let link = frame.link();
        if sender > 1 || usize::from(link) >= LINKS_MAX {
            return Err(RxError::Malformed);
        }
        let payload = Payload {
            kind: kind_from_code(frame.kind_code()).ok_or(RxError::Malformed)?,
            state: state_from_code(frame.state_code()).ok_or(RxError::Malformed)?,
            health: Health(frame.health()),
            intent: intent_from_code(frame.intent_code()).ok_or(RxError::Malformed)?,
            flags: frame.flags(),
            epoch: frame.epoch(),
            watchdog_timeout_ms: frame.watchdog_timeout_ms(),
            config_digest: frame.config_digest(),
            groups: parse_groups(frame)?,
        };
        Ok(Repr {
            version: frame.version(),
            sender,
            incarnation: frame.incarnation(),
            seq: frame.seq(),
            link,
            session: frame.session(),
            payload,
            outdate: frame.outdate(),
        })
    }

    /// The version `emit` writes: `self.version` for the versions this code knows (1 to
    /// `VERSION`), a newer one as `VERSION` (its frames are read, never written).
    pub const fn emitted_version(&self) -> u8 {
        if self.version <= VERSION_LEGACY {
            VERSION_LEGACY
        } else if self.version >= VERSION {
            VERSION
        } else {
            self.version
        }
    }

    /// Length of the frame `emit` writes, tag included.
    pub const fn buffer_len(&self) -> usize {
        body_end(self.emitted_version()) + TAG_LEN
    }

    /// Writes every field before the tag (version, body length and the fields of `self`) into
    /// a buffer of at least `buffer_len()` bytes, in the layout of `emitted_version()`: a
    /// version without session or group fields leaves out `self`'s. The tag is left for
    /// `Key::sign`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut Frame<T>) {
        let version = self.emitted_version();
        frame.set_version(version);
        // INVARIANT: every body end is below 128, so it fits the u8.
        frame.set_body_len(body_end(version) as u8);
        frame.set_sender(self.sender);
        frame.set_link(self.link);
        frame.set_incarnation(self.incarnation);
        frame.set_seq(self.seq);
        frame.set_payload(&self.payload);
        if version >= VERSION_SESSION {
            frame.set_session(&self.session);
        }
        if version >= VERSION_GROUPS {
            frame.set_groups(&self.payload.groups);
        }
        if version >= VERSION_OUTDATE {
            frame.set_outdate(self.outdate);
        }
    }
}

/// The groups of a checked frame: [`Groups::ONE`] before version 3. A count of 0 or above
/// `GROUPS_MAX`, or an unknown state or kind code in the part of a group within the count,
/// makes the frame malformed; the parts past the count are not read (the tag covers them).
fn parse_groups<T: AsRef<[u8]>>(frame: &Frame<T>) -> Result<Groups, RxError> {
    let count = frame.group_count();
    let mut groups = Groups::new(count).ok_or(RxError::Malformed)?;
    for group in 1..count {
        let byte = frame.group_part_byte(group);
        let code = |shift: u32| byte >> shift & part_bits::CODE_MASK;
        let part = GroupPart {
            kind: kind_from_code(code(part_bits::KIND_SHIFT)).ok_or(RxError::Malformed)?,
            state: state_from_code(code(part_bits::STATE_SHIFT)).ok_or(RxError::Malformed)?,
            // Never malformed: two bits hold only the four intent codes.
            intent: intent_from_code(frame.group_intent_code(group)).ok_or(RxError::Malformed)?,
            flags: byte >> part_bits::FLAGS_SHIFT,
            epoch: frame.group_epoch(group),
            restarts: frame.group_restarts() >> group & 1 != 0,
        };
        groups.set(group, part);
    }
    Ok(groups)
}

fn kind_from_code(code: u8) -> Option<Kind> {
    Some(match code {
        0 => Kind::Heartbeat,
        1 => Kind::Release,
        2 => Kind::Request,
        3 => Kind::Leaving,
        4 => Kind::Ack,
        _ => return None,
    })
}

fn state_from_code(code: u8) -> Option<GroupState> {
    Some(match code {
        0 => GroupState::Standby,
        1 => GroupState::Starting,
        2 => GroupState::Active,
        3 => GroupState::Stopping,
        4 => GroupState::Failed,
        5 => GroupState::Maintenance,
        _ => return None,
    })
}

fn intent_from_code(code: u8) -> Option<Intent> {
    Some(match code {
        0 => Intent::None,
        1 => Intent::Standby,
        2 => Intent::Takeover,
        3 => Intent::Maintenance,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A v1 frame with every field set to a recognisable value and a zero tag.
    const BYTES: [u8; FRAME_LEN_V1] = {
        let mut b = [0u8; FRAME_LEN_V1];
        let head: [u8; 42] = [
            1, 42, 1, 3, // version, body_len, sender, link
            0, 0, 0, 0, 0, 0, 0x01, 0x02, // incarnation 258
            0, 0, 0, 0, 0, 0, 0, 7, // seq 7
            1, 2, 3, 0x81, // kind Release, state Active, intent Maintenance, flags
            0x00, 0x05, // health SENSOR|PING
            0, 0, 0, 9, // epoch 9
            0, 0, 0x27, 0x10, // watchdog 10000 ms
            1, 2, 3, 4, 5, 6, 7, 8, // config digest
        ];
        let mut i = 0;
        while i < head.len() {
            b[i] = head[i];
            i += 1;
        }
        b
    };

    fn repr() -> Repr {
        Repr {
            version: 1,
            sender: 1,
            incarnation: 258,
            seq: 7,
            link: 3,
            session: Session::NONE,
            payload: Payload {
                kind: Kind::Release,
                state: GroupState::Active,
                health: Health(Health::SENSOR | Health::PING),
                intent: Intent::Maintenance,
                flags: 0x81,
                epoch: 9,
                watchdog_timeout_ms: 10_000,
                config_digest: [1, 2, 3, 4, 5, 6, 7, 8],
                groups: Groups::ONE,
            },
            outdate: Default::default(),
        }
    }

    /// The same frame in version 2: the v1 fields, then run 0x0a0b0c0d, challenge 0x11223344,
    /// echo 0x55667788 and the session flags 1.
    const BYTES_V2: [u8; FRAME_LEN_V2] = {
        let mut b = [0u8; FRAME_LEN_V2];
        let mut i = 0;
        while i < field::BODY_END_V1 {
            b[i] = BYTES[i];
            i += 1;
        }
        b[0] = 2;
        b[1] = 55;
        let tail: [u8; 13] =
            [0x0a, 0x0b, 0x0c, 0x0d, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 1];
        let mut k = 0;
        while k < tail.len() {
            b[field::BODY_END_V1 + k] = tail[k];
            k += 1;
        }
        b
    };

    fn repr_v2() -> Repr {
        let session =
            Session { run: 0x0a0b_0c0d, challenge: 0x1122_3344, echo: 0x5566_7788, flags: 1 };
        Repr { version: 2, session, ..repr() }
    }

    /// The same frame in version 3 with three groups: the v2 fields, then the count 3, the
    /// intents (group 1 takeover = 2 in bits 0-1, group 2 standby = 1 in bits 2-3), group 1's
    /// part (state Active 2, kind Request 2 << 3, holding 1 << 6; epoch 0x01020304) and
    /// group 2's (state Stopping 3, kind Ack 4 << 3, taking over 1 << 7; epoch 0xfffffffe).
    /// The five parts past the count are zero; group 2's restarts are exhausted (bit 2 of
    /// `restarts`).
    const BYTES_V3: [u8; FRAME_LEN_V3] = {
        let mut b = [0u8; FRAME_LEN_V3];
        let mut i = 0;
        while i < field::BODY_END_V2 {
            b[i] = BYTES_V2[i];
            i += 1;
        }
        b[0] = 3;
        b[1] = 94;
        let tail: [u8; 13] =
            [3, 0x00, 0x06, 0x52, 0x01, 0x02, 0x03, 0x04, 0xa3, 0xff, 0xff, 0xff, 0xfe];
        let mut k = 0;
        while k < tail.len() {
            b[field::BODY_END_V2 + k] = tail[k];
            k += 1;
        }
        // Group 2's restarts are exhausted: bit 2 of `restarts`.
        b[field::RESTARTS] = 1 << 2;
        b
    };

    fn groups_v3() -> Groups {
        let mut groups = Groups::new(3).unwrap();
        let one = GroupPart {
            kind: Kind::Request,
            state: GroupState::Active,
            intent: Intent::Takeover,
            flags: 1,
            epoch: 0x0102_0304,
            restarts: false,
        };
        groups.set(1, one);
        let two = GroupPart {
            kind: Kind::Ack,
            state: GroupState::Stopping,
            intent: Intent::Standby,
            flags: 2,
            epoch: 0xffff_fffe,
            restarts: true,
        };
        groups.set(2, two);
        groups
    }

    fn repr_v3() -> Repr {
        let repr = repr_v2();
        Repr { version: 3, payload: Payload { groups: groups_v3(), ..repr.payload }, ..repr }
    }

    /// The outdate exchange of `BYTES_V4`: request 5 about DRBD resource 2, answer to the
    /// peer's request 9 with code 4 (fence-peer's "peer outdated").
    const OUTDATE: Outdate = Outdate { request: 0x25, answer: 0x49 };

    /// The same frame in version 4: the v3 fields, then the outdate request (byte 94) and
    /// answer (byte 95); the tag starts at 96.
    const BYTES_V4: [u8; FRAME_LEN_V4] = {
        let mut b = [0u8; FRAME_LEN_V4];
        let mut i = 0;
        while i < field::BODY_END_V3 {
            b[i] = BYTES_V3[i];
            i += 1;
        }
        b[0] = 4;
        b[1] = 96;
        b[94] = 0x25;
        b[95] = 0x49;
        b
    };

    fn repr_v4() -> Repr {
        Repr { version: 4, outdate: OUTDATE, ..repr_v3() }
    }

    fn parse(bytes: &[u8]) -> Result<Repr, RxError> {
        Repr::parse(&Frame::new_unchecked(bytes))
    }

    /// This code reads v1 (the legacy version), v3 (the one before ours) and v4; a v2 frame,
    /// two versions back, is an incompatible version however well formed.
    #[test]
    fn parse_byte_literal() {
        let frame = Frame::new_checked(&BYTES[..]).unwrap();
        assert_eq!(Repr::parse(&frame), Ok(repr()));
        assert_eq!(Frame::new_checked(&BYTES_V2[..]).err(), Some(RxError::Version));
        assert_eq!(parse(&BYTES_V2), Err(RxError::Version));
        let frame = Frame::new_checked(&BYTES_V3[..]).unwrap();
        assert_eq!(Repr::parse(&frame), Ok(repr_v3()));
        let frame = Frame::new_checked(&BYTES_V4[..]).unwrap();
        assert_eq!(Repr::parse(&frame), Ok(repr_v4()));
        assert_eq!(frame.outdate(), OUTDATE);
        assert_eq!((frame.body_len(), frame.tag().len()), (96, TAG_LEN));
    }

    #[test]
    fn emit_byte_literal() {
        let mut buf = [0u8; FRAME_LEN_V1];
        repr().emit(&mut Frame::new_unchecked(&mut buf[..]));
        assert_eq!(buf, BYTES);
        assert_eq!(repr().buffer_len(), 74);
        let mut buf = [0u8; FRAME_LEN_V2];
        repr_v2().emit(&mut Frame::new_unchecked(&mut buf[..]));
        assert_eq!(buf, BYTES_V2);
        assert_eq!(repr_v2().buffer_len(), 87);
        // Into a dirty buffer: every byte before the tag is written, the idle parts as zero.
        let mut buf = [0xeeu8; FRAME_LEN_V3];
        repr_v3().emit(&mut Frame::new_unchecked(&mut buf[..]));
        assert_eq!(buf[..field::BODY_END_V3], BYTES_V3[..field::BODY_END_V3]);
        assert_eq!(repr_v3().buffer_len(), 126);
        assert_eq!(FRAME_LEN_V3, 126);
        let mut buf = [0xeeu8; FRAME_LEN_V4];
        repr_v4().emit(&mut Frame::new_unchecked(&mut buf[..]));
        assert_eq!(buf[..field::BODY_END_V4], BYTES_V4[..field::BODY_END_V4]);
        assert_eq!((field::OUTDATE_REQUEST, field::OUTDATE_ANSWER), (94, 95));
        assert_eq!(repr_v4().buffer_len(), 128);
        assert_eq!(FRAME_LEN_V4, FRAME_LEN_MAX);
    }

    /// Each version writes its own fields only: a v3 frame leaves the outdate exchange out, a
    /// v2 frame the groups too (a v1 frame the session as well), and a newer version's fields
    /// are written as ours.
    #[test]
    fn emit_writes_the_layout_of_the_version() {
        let mut buf = [0u8; FRAME_LEN_V2];
        let v2 = Repr { version: 2, ..repr_v4() };
        assert_eq!(v2.buffer_len(), FRAME_LEN_V2);
        v2.emit(&mut Frame::new_unchecked(&mut buf[..]));
        assert_eq!(buf, BYTES_V2);
        let mut buf = [0u8; FRAME_LEN_V3];
        let v3 = Repr { version: 3, ..repr_v4() };
        assert_eq!(v3.buffer_len(), FRAME_LEN_V3);
        v3.emit(&mut Frame::new_unchecked(&mut buf[..]));
        assert_eq!(buf[..field::BODY_END_V3], BYTES_V3[..field::BODY_END_V3]);
        let mut buf = [0u8; FRAME_LEN_V4];
        let v5 = Repr { version: 5, ..repr_v4() };
        assert_eq!(v5.buffer_len(), FRAME_LEN_V4);
        v5.emit(&mut Frame::new_unchecked(&mut buf[..]));
        assert_eq!(buf[..field::BODY_END_V4], BYTES_V4[..field::BODY_END_V4]);
    }

    #[test]
    fn unknown_codes_and_indices_are_malformed() {
        for (offset, value) in [(20, 5), (21, 6), (22, 4), (2, 2), (3, LINKS_MAX as u8)] {
            let mut bytes = BYTES;
            bytes[offset] = value;
            let frame = Frame::new_unchecked(&bytes[..]);
            assert_eq!(Repr::parse(&frame), Err(RxError::Malformed), "offset {offset}");
        }
    }

    #[test]
    fn a_group_count_of_0_or_past_8_is_malformed() {
        for count in [0, 9, 0xff] {
            let mut bytes = BYTES_V3;
            bytes[field::GROUPS] = count;
            assert_eq!(parse(&bytes), Err(RxError::Malformed), "count {count}");
        }
        for count in 1..=8 {
            let mut bytes = BYTES_V3;
            bytes[field::GROUPS] = count;
            let groups = parse(&bytes).unwrap().payload.groups;
            assert_eq!(groups.count(), count);
        }
    }

    #[test]
    fn an_unknown_state_or_kind_in_a_used_part_is_malformed() {
        // Group 2's part: state 6 or 7, kind 5, 6 or 7, each with the other code valid.
        for byte in [0xa6, 0xa7, 0xab, 0x73, 0x33, 0x3b] {
            let mut bytes = BYTES_V3;
            bytes[field::group_part(2).start] = byte;
            assert_eq!(parse(&bytes), Err(RxError::Malformed), "byte {byte:#x}");
        }
        // Every valid state and kind, with any flags, parses.
        for (state, kind, flags) in [(0, 0, 0), (5, 4, 3), (4, 1, 1), (1, 3, 2)] {
            let mut bytes = BYTES_V3;
            bytes[field::group_part(2).start] = state | kind << 3 | flags << 6;
            let part = parse(&bytes).unwrap().payload.groups.part(2).unwrap();
            assert_eq!((part.state as u8, part.kind as u8, part.flags), (state, kind, flags));
        }
    }

    /// The parts and intents of groups past the count may hold anything, even unknown codes:
    /// they are not read (the tag covers them).
    #[test]
    fn parts_past_the_count_are_ignored() {
        let mut bytes = BYTES_V3;
        bytes[field::group_part(3).start..field::RESTARTS].fill(0xff);
        // The restarts of groups 3 to 7 and the spare bit 0.
        bytes[field::RESTARTS] |= 0xf9;
        // The intents of groups 3 to 7 and the two spare bits.
        bytes[field::INTENTS.start] = 0xff;
        bytes[field::INTENTS.start + 1] |= 0xf0;
        assert_eq!(parse(&bytes), Ok(repr_v3()));
        // With a count of one, no part is read at all.
        bytes[field::group_part(1).start..field::BODY_END_V3].fill(0xff);
        bytes[field::GROUPS] = 1;
        let one =
            Repr { payload: Payload { groups: Groups::ONE, ..repr_v3().payload }, ..repr_v3() };
        assert_eq!(parse(&bytes), Ok(one));
    }

    /// Every count from 1 to 8, every group's fields distinct: emitted and parsed back.
    #[test]
    fn round_trip_of_every_group_count() {
        let states = [GroupState::Starting, GroupState::Failed, GroupState::Maintenance];
        let kinds = [Kind::Leaving, Kind::Heartbeat, Kind::Release, Kind::Ack];
        let intents = [Intent::Maintenance, Intent::None, Intent::Takeover, Intent::Standby];
        for count in 1..=GROUPS_MAX as u8 {
            let mut groups = Groups::new(count).unwrap();
            for group in 1..count {
                let g = usize::from(group);
                let part = GroupPart {
                    kind: kinds[g % kinds.len()],
                    state: states[g % states.len()],
                    intent: intents[g % intents.len()],
                    flags: group & GROUP_FLAGS,
                    epoch: u32::from(group) << 24 | 0x00ab_cdef,
                    restarts: group % 3 == 1,
                };
                groups.set(group, part);
            }
            let repr = Repr { payload: Payload { groups, ..repr_v3().payload }, ..repr_v3() };
            let mut buf = [0xeeu8; FRAME_LEN_V3];
            repr.emit(&mut Frame::new_unchecked(&mut buf[..]));
            let frame = Frame::new_checked(&buf[..]).unwrap();
            assert_eq!(Repr::parse(&frame), Ok(repr), "{count} groups");
            // The parts past the count went out as zero.
            let idle = field::GROUP_PART_START + usize::from(count - 1) * field::GROUP_PART_LEN;
            assert!(buf[idle..field::RESTARTS].iter().all(|&b| b == 0), "{count} groups");
            assert_eq!(u16::from(buf[field::RESTARTS]) >> count, 0, "{count} groups");
        }
    }

    /// The frame before ours keeps its groups and has no outdate exchange, whatever the bytes
    /// at 94 and 95 (there the tag of a v3 frame starts).
    #[test]
    fn a_v3_frame_reads_its_groups_and_no_outdate() {
        let mut v3 = BYTES_V3;
        v3[field::OUTDATE_REQUEST] = 0x25;
        v3[field::OUTDATE_ANSWER] = 0x49;
        let frame = Frame::new_checked(&v3[..]).unwrap();
        assert_eq!(frame.outdate(), Outdate::NONE);
        let repr = Repr::parse(&frame).unwrap();
        assert_eq!((repr.outdate, repr.payload.groups), (Outdate::NONE, groups_v3()));
    }

    /// A v5 frame reads as v4. With the 128-byte limit it cannot append anything: its body
    /// is exactly ours.
    #[test]
    fn a_v5_frame_reads_as_v4() {
        let mut v5 = BYTES_V4;
        v5[0] = 5;
        assert_eq!(parse(&v5), Ok(Repr { version: 5, ..repr_v4() }));
    }

    /// Every request and answer byte goes out and comes back as it was: the receiver does not
    /// judge them (the event loop does).
    #[test]
    fn the_outdate_bytes_round_trip() {
        for (request, answer) in [(0, 0), (0x01, 0), (0, 0x3f), (0xf1, 0x6f), (0xff, 0xff)] {
            let repr = Repr { outdate: Outdate { request, answer }, ..repr_v4() };
            let mut buf = [0xeeu8; FRAME_LEN_V4];
            repr.emit(&mut Frame::new_unchecked(&mut buf[..]));
            assert_eq!((buf[94], buf[95]), (request, answer));
            assert_eq!(parse(&buf), Ok(repr), "{request:#x} {answer:#x}");
        }
    }

    #[test]
    fn version_rule() {
        assert!(version_compatible(5, 4));
        assert!(version_compatible(5, 5));
        assert!(version_compatible(5, 6));
        assert!(!version_compatible(5, 3));
        assert!(!version_compatible(5, 7));
        assert!(!version_compatible(1, 0));
        assert!(version_compatible(255, 254));
        // This code: the legacy version, and the adjacent ones; not v2, two back.
        let readable: Vec<u8> = (0..=255).filter(|&v| version_readable(v)).collect();
        assert_eq!(readable, [1, 3, 4, 5]);
        assert_eq!(body_len_range(1), Some((42, 42)));
        assert_eq!(body_len_range(2), None);
        assert_eq!(body_len_range(3), Some((94, 94)));
        assert_eq!(body_len_range(4), Some((96, 96)));
        // A newer version may append, but our body already ends where a 128-byte frame's tag
        // must start: v5 has room for nothing more.
        assert_eq!(body_len_range(5), Some((96, 96)));
        assert_eq!(FRAME_LEN_MAX - TAG_LEN, field::BODY_END_V4);
        assert_eq!(body_len_range(6), None);
        assert_eq!(body_len_range(0), None);
    }

    #[test]
    fn lengths_are_checked() {
        assert_eq!(Frame::new_checked(&BYTES[..73]).err(), Some(RxError::Malformed));
        assert_eq!(Frame::new_checked(&BYTES_V3[..125]).err(), Some(RxError::Malformed));
        assert_eq!(Frame::new_checked(&BYTES_V4[..127]).err(), Some(RxError::Malformed));
        // The frame before ours has exactly its length: not one byte more.
        let mut long = [0u8; FRAME_LEN_V3 + 1];
        long[..FRAME_LEN_V3].copy_from_slice(&BYTES_V3);
        long[1] = 95;
        assert_eq!(Frame::new_checked(&long[..]).err(), Some(RxError::Malformed));
        // Nor does ours, nor a newer one: nothing is longer than FRAME_LEN_MAX.
        let mut long = [0u8; FRAME_LEN_V4 + 1];
        long[..FRAME_LEN_V4].copy_from_slice(&BYTES_V4);
        long[1] = 97;
        assert_eq!(Frame::new_checked(&long[..]).err(), Some(RxError::Malformed));
        long[0] = 5;
        assert_eq!(Frame::new_checked(&long[..]).err(), Some(RxError::Malformed));
        // A newer version's body is never shorter than ours.
        let mut v5 = BYTES_V4;
        v5[0] = 5;
        assert!(Frame::new_checked(&v5[..]).is_ok());
        v5[1] = 95;
        assert_eq!(Frame::new_checked(&v5[..127]).err(), Some(RxError::Malformed));
        // A v3 body length in a v4 frame, a v4 one in a v3 frame, a v1 one in a v3 frame are
        // malformed; a v2 frame is a bad version whatever its length.
        let mut mixed = BYTES_V3;
        mixed[0] = 4;
        assert_eq!(Frame::new_checked(&mixed[..]).err(), Some(RxError::Malformed));
        let mut mixed = BYTES_V4;
        mixed[0] = 3;
        assert_eq!(Frame::new_checked(&mixed[..]).err(), Some(RxError::Malformed));
        let mut mixed = BYTES;
        mixed[0] = 3;
        assert_eq!(Frame::new_checked(&mixed[..]).err(), Some(RxError::Malformed));
        assert_eq!(Frame::new_checked(&BYTES_V2[..86]).err(), Some(RxError::Version));
        assert_eq!(Frame::new_checked(&[][..]).err(), Some(RxError::Malformed));
    }
}
