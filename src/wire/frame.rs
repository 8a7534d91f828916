//! The frame byte layout: a `Frame<T>` view over a buffer with named offset ranges, and the
//! conversions between it and `Repr` (smoltcp style). The layout and the version rule are
//! documented in the parent module. This file checks structure only: it neither computes nor
//! verifies the tag (see `auth.rs`) and keeps no replay state.

use super::authentic::Repr;
use super::error::RxError;
use super::payload::{GroupState, Health, Intent, Kind, Payload};
use super::session::Session;
use crate::limits::{FRAME_LEN_MAX, LINKS_MAX};

/// The layout version this code emits.
pub const VERSION: u8 = 2;
/// The older version this code still reads and, to a peer that speaks only it, writes.
pub const VERSION_LEGACY: u8 = 1;
/// Length of the HMAC-SHA256 tag that ends every frame.
pub const TAG_LEN: usize = 32;
/// Length of a version 1 frame, tag included.
pub const FRAME_LEN_V1: usize = field::BODY_END_V1 + TAG_LEN;
/// Length of a version 2 frame, tag included.
pub const FRAME_LEN_V2: usize = field::BODY_END_V2 + TAG_LEN;

const _: () = assert!(FRAME_LEN_V1 <= FRAME_LEN_MAX && FRAME_LEN_V2 <= FRAME_LEN_MAX);

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
}

/// Where the tag starts in a frame of `version`, for the versions this code knows.
pub const fn body_end(version: u8) -> usize {
    if version <= VERSION_LEGACY { field::BODY_END_V1 } else { field::BODY_END_V2 }
}

/// True when a receiver of version `own` accepts frames of version `theirs`: the same or an
/// adjacent version, and never the reserved version 0.
pub const fn version_compatible(own: u8, theirs: u8) -> bool {
    theirs != 0 && theirs.abs_diff(own) <= 1
}

/// The body lengths (bytes before the tag) a receiver of this code's version accepts in a
/// frame of `version`, as (shortest, longest); `None` for a version it drops. One rule for
/// `Frame::check` and for the UDP socket filter (`drivers::udp`), which applies it in the
/// kernel, before a datagram can wake the loop: the receiver's own and older versions have
/// exactly their body length; a newer one may append fields, never be shorter than ours.
pub const fn body_len_range(version: u8) -> Option<(usize, usize)> {
    if !version_compatible(VERSION, version) {
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
        if self.version() <= VERSION_LEGACY {
            return Session::NONE;
        }
        Session {
            run: u32::from_be_bytes(self.array(field::RUN)),
            challenge: u32::from_be_bytes(self.array(field::CHALLENGE)),
            echo: u32::from_be_bytes(self.array(field::ECHO)),
            flags: self.buffer.as_ref()[field::SESSION_FLAGS],
        }
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
        };
        Ok(Repr {
            version: frame.version(),
            sender,
            incarnation: frame.incarnation(),
            seq: frame.seq(),
            link,
            session: frame.session(),
            payload,
        })
    }

    /// Length of the frame `emit` writes, tag included: by `self.version`, which must be
    /// `VERSION` or `VERSION_LEGACY` (a newer version's frame is read, never written).
    pub const fn buffer_len(&self) -> usize {
        body_end(self.version) + TAG_LEN
    }

    /// Writes every field before the tag (version, body length and the fields of `self`) into
    /// a buffer of at least `buffer_len()` bytes. The tag is left for `Key::sign`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut Frame<T>) {
        let legacy = self.version <= VERSION_LEGACY;
        frame.set_version(if legacy { VERSION_LEGACY } else { VERSION });
        // INVARIANT: both body ends are below 128, so they fit the u8.
        frame.set_body_len(body_end(self.version) as u8);
        frame.set_sender(self.sender);
        frame.set_link(self.link);
        frame.set_incarnation(self.incarnation);
        frame.set_seq(self.seq);
        frame.set_payload(&self.payload);
        if !legacy {
            frame.set_session(&self.session);
        }
    }
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
            },
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

    #[test]
    fn parse_byte_literal() {
        let frame = Frame::new_checked(&BYTES[..]).unwrap();
        assert_eq!(Repr::parse(&frame), Ok(repr()));
        let frame = Frame::new_checked(&BYTES_V2[..]).unwrap();
        assert_eq!(Repr::parse(&frame), Ok(repr_v2()));
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
    fn version_rule() {
        assert!(version_compatible(5, 4));
        assert!(version_compatible(5, 5));
        assert!(version_compatible(5, 6));
        assert!(!version_compatible(5, 3));
        assert!(!version_compatible(5, 7));
        assert!(!version_compatible(1, 0));
        assert!(version_compatible(255, 254));
    }

    #[test]
    fn lengths_are_checked() {
        assert_eq!(Frame::new_checked(&BYTES[..73]).err(), Some(RxError::Malformed));
        assert_eq!(Frame::new_checked(&BYTES_V2[..86]).err(), Some(RxError::Malformed));
        let mut long = [0u8; FRAME_LEN_V2 + 1];
        long[..FRAME_LEN_V2].copy_from_slice(&BYTES_V2);
        assert_eq!(Frame::new_checked(&long[..]).err(), Some(RxError::Malformed));
        // A newer version may carry one extra byte before the tag.
        long[0] = 3;
        long[1] = 56;
        assert!(Frame::new_checked(&long[..]).is_ok());
        // But not a shorter body than ours.
        let mut short = BYTES_V2;
        short[0] = 3;
        short[1] = 54;
        assert_eq!(Frame::new_checked(&short[..86]).err(), Some(RxError::Malformed));
        // A v1 body length in a v2 frame, and the other way round, are malformed.
        let mut mixed = BYTES;
        mixed[0] = 2;
        assert_eq!(Frame::new_checked(&mixed[..]).err(), Some(RxError::Malformed));
        assert_eq!(Frame::new_checked(&[][..]).err(), Some(RxError::Malformed));
    }
}
