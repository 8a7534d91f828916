//! Authentication and replay protection: the `Key` (HMAC-SHA256 under the authkey), the
//! `Sender` that numbers and signs frames, and the `Receiver` that verifies them and keeps the
//! per-link (incarnation, seq) state and the drop counters. No I/O and no allocation: frames
//! are written into and read from caller buffers. Loading the key file is the config's job.

use core::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::authentic::{Authentic, Repr};
use super::frame::Frame;
use super::payload::Payload;
use crate::limits::LINKS_MAX;

type HmacSha256 = Hmac<Sha256>;

/// The shared secret, kept as a keyed HMAC state so that each frame costs only its own
/// blocks. Its `Debug` output never shows the secret.
#[derive(Clone)]
pub struct Key {
    mac: HmacSha256,
}

impl Key {
    /// Keys HMAC-SHA256 with the authkey bytes (any length; the config rejects empty keys).
    pub fn new(secret: &[u8]) -> Key {
        // INVARIANT: HMAC accepts keys of every length (long ones are hashed first), so
        // `new_from_slice` cannot fail whatever the file holds.
        let mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
        Key { mac }
    }

    /// Writes the tag over the frame's body. The body length must already be set.
    pub fn sign<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut Frame<T>) {
        let (body, tag) = frame.body_and_tag_mut();
        let mut mac = self.mac.clone();
        mac.update(body);
        tag.copy_from_slice(&mac.finalize().into_bytes());
    }

    /// True when the frame's tag is right, compared in constant time. The frame must have
    /// passed `Frame::check`. Under `cfg(fuzzing)` every tag passes, so that the fuzzer
    /// reaches the decoder behind it.
    pub fn verify<T: AsRef<[u8]>>(&self, frame: &Frame<T>) -> bool {
        let mut mac = self.mac.clone();
        mac.update(frame.body());
        let ok = mac.verify_slice(frame.tag()).is_ok();
        cfg!(fuzzing) || ok
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<secret>)")
    }
}

/// Why a received frame was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RxError {
    /// The bytes do not form a frame: wrong length, unknown code, index out of range.
    Malformed,
    /// The frame's layout version is neither ours nor adjacent to it.
    Version,
    /// The tag does not match: wrong key, corrupted or forged.
    BadTag,
    /// The frame names another link than the one it arrived on (replayed across links).
    WrongLink,
    /// Our own frame, looped back (bridged media, broadcast echo).
    OwnFrame,
    /// The frame repeats or goes back in sequence on its link.
    Replay,
    /// The frame is from an older incarnation of the peer than one already seen.
    Stale,
}

impl fmt::Display for RxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RxError::Malformed => "malformed frame",
            RxError::Version => "incompatible frame version",
            RxError::BadTag => "bad authentication tag",
            RxError::WrongLink => "frame sent on another link",
            RxError::OwnFrame => "own frame looped back",
            RxError::Replay => "replayed or reordered frame",
            RxError::Stale => "frame from an older incarnation",
        })
    }
}

/// Numbers and signs outgoing frames.
#[derive(Debug)]
pub struct Sender {
    key: Key,
    node: u8,
    incarnation: u64,
    seq_next: [u64; LINKS_MAX],
}

impl Sender {
    /// A sender for node `node` (0 or 1) in boot `incarnation` (from `bump_incarnation`).
    pub fn new(key: Key, node: u8, incarnation: u64) -> Sender {
        assert!(node <= 1, "node index {node} out of range");
        Sender { key, node, incarnation, seq_next: [1; LINKS_MAX] }
    }

    /// This boot's incarnation.
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// Writes the next frame for `link` into `buf` and returns its length. `buf` must hold
    /// `limits::FRAME_LEN_MAX` bytes and `link` be below `LINKS_MAX` (caller invariants).
    pub fn emit(&mut self, link: u8, payload: &Payload, buf: &mut [u8]) -> usize {
        let slot = &mut self.seq_next[usize::from(link)];
        let seq = *slot;
        // INVARIANT: a u64 counted up once per frame does not wrap in any device's lifetime.
        *slot = seq.checked_add(1).expect("sequence number exhausted");
        let repr =
            Repr { sender: self.node, incarnation: self.incarnation, seq, link, payload: *payload };
        let len = repr.buffer_len();
        let mut frame = Frame::new_unchecked(&mut buf[..len]);
        repr.emit(&mut frame);
        self.key.sign(&mut frame);
        len
    }
}

/// Counters of one link, as seen by the receiver.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Frames accepted on this link.
    pub frames_rx: u64,
    /// Frames the peer sent on this link that never arrived (gaps in seq, per incarnation).
    pub frames_lost: u64,
    /// Frames dropped on this link, for any reason.
    pub frames_dropped: u64,
}

/// Receiver counters; every dropped frame bumps exactly one of the first seven.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxStats {
    /// Frames that did not parse.
    pub malformed: u64,
    /// Frames of an incompatible layout version.
    pub bad_version: u64,
    /// Frames whose tag did not match.
    pub auth_failures: u64,
    /// Authentic frames that named another link than the one they arrived on.
    pub wrong_link: u64,
    /// Our own frames, looped back.
    pub own_frames: u64,
    /// Authentic frames that repeated or went back in (incarnation, seq).
    pub replays: u64,
    /// Of `replays`, those from an older incarnation.
    pub stale_incarnation: u64,
    /// Times the peer's incarnation went up (it restarted).
    pub peer_restarts: u64,
    /// Per-link counters, by link index.
    pub links: [LinkStats; LINKS_MAX],
}

/// Verifies incoming frames from the peer and enforces strictly increasing (incarnation, seq)
/// per link. Call `accept` with each datagram or deframed serial record and the index of the
/// link it arrived on; only `Ok` frames may reach the core.
#[derive(Debug)]
pub struct Receiver {
    key: Key,
    me: u8,
    peer: u8,
    /// Highest peer incarnation seen; the per-link seqs below belong to it.
    incarnation: Option<u64>,
    seq_last: [Option<u64>; LINKS_MAX],
    stats: RxStats,
}

impl Receiver {
    /// A receiver for node `me` that accepts frames from node `peer` (0 and 1, different).
    pub fn new(key: Key, me: u8, peer: u8) -> Receiver {
        assert!(me <= 1 && peer <= 1 && me != peer, "bad node indices {me}, {peer}");
        let stats = RxStats::default();
        Receiver { key, me, peer, incarnation: None, seq_last: [None; LINKS_MAX], stats }
    }

    /// The counters.
    pub fn stats(&self) -> &RxStats {
        &self.stats
    }

    /// Checks one frame that arrived on `link` (below `LINKS_MAX`, a caller invariant).
    pub fn accept(&mut self, link: u8, bytes: &[u8]) -> Result<Authentic, RxError> {
        let result = self.check(link, bytes);
        let stats = &mut self.stats;
        let link_stats = &mut stats.links[usize::from(link)];
        match result {
            Ok(_) => link_stats.frames_rx += 1,
            Err(error) => {
                link_stats.frames_dropped += 1;
                let counter = match error {
                    RxError::Malformed => &mut stats.malformed,
                    RxError::Version => &mut stats.bad_version,
                    RxError::BadTag => &mut stats.auth_failures,
                    RxError::WrongLink => &mut stats.wrong_link,
                    RxError::OwnFrame => &mut stats.own_frames,
                    RxError::Replay => &mut stats.replays,
                    RxError::Stale => {
                        stats.stale_incarnation += 1;
                        &mut stats.replays
                    }
                };
                *counter += 1;
            }
        }
        result
    }

    fn check(&mut self, link: u8, bytes: &[u8]) -> Result<Authentic, RxError> {
        let frame = Frame::new_checked(bytes)?;
        if !self.key.verify(&frame) {
            return Err(RxError::BadTag);
        }
        let repr = Repr::parse(&frame)?;
        if repr.link != link {
            return Err(RxError::WrongLink);
        }
        if repr.sender == self.me {
            return Err(RxError::OwnFrame);
        }
        debug_assert_eq!(repr.sender, self.peer, "parse admits only node 0 and 1");
        self.advance(link, repr.incarnation, repr.seq)?;
        Ok(Authentic::new(repr))
    }

    /// Moves the replay window of `link` to (incarnation, seq), or refuses to go back.
    fn advance(&mut self, link: u8, incarnation: u64, seq: u64) -> Result<(), RxError> {
        match self.incarnation {
            Some(current) if incarnation < current => return Err(RxError::Stale),
            Some(current) if incarnation == current => {}
            previous => {
                if previous.is_some() {
                    self.stats.peer_restarts += 1;
                }
                // A new boot numbers every link afresh.
                self.incarnation = Some(incarnation);
                self.seq_last = [None; LINKS_MAX];
            }
        }
        let slot = &mut self.seq_last[usize::from(link)];
        if let Some(last) = *slot {
            if seq <= last {
                return Err(RxError::Replay);
            }
            self.stats.links[usize::from(link)].frames_lost += seq - last - 1;
        }
        *slot = Some(seq);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::payload::{GroupState, Health, Intent, Kind};

    fn payload() -> Payload {
        Payload {
            kind: Kind::Heartbeat,
            state: GroupState::Active,
            health: Health::OK,
            intent: Intent::None,
            flags: 0,
            epoch: 1,
            watchdog_timeout_ms: 0,
            config_digest: [0; 8],
        }
    }

    #[test]
    fn key_debug_hides_secret() {
        let text = format!("{:?}", Key::new(b"hunter2"));
        assert!(!text.contains("hunter2"));
        assert_eq!(text, "Key(<secret>)");
    }

    #[test]
    fn lost_frames_are_counted_from_gaps() {
        let key = Key::new(b"k");
        let mut tx = Sender::new(key.clone(), 0, 5);
        let mut rx = Receiver::new(key, 1, 0);
        let mut buf = [0u8; 128];
        for i in 0..10 {
            let len = tx.emit(2, &payload(), &mut buf);
            if i % 3 == 0 {
                assert!(rx.accept(2, &buf[..len]).is_ok());
            }
        }
        // Accepted seqs 1, 4, 7, 10: two lost in each gap.
        assert_eq!(
            rx.stats().links[2],
            LinkStats { frames_rx: 4, frames_lost: 6, frames_dropped: 0 }
        );
    }

    #[test]
    fn display_names_the_error() {
        assert_eq!(RxError::BadTag.to_string(), "bad authentication tag");
    }
}
