//! Authentication and replay protection: the `Key` (HMAC-SHA256 under the pair's frame key,
//! derived from the authkey and the pair's identity), the `Sender` that numbers and signs
//! frames, and the `Receiver` that verifies them, runs the freshness handshake
//! (`session::Handshake`) and keeps the drop counters. No I/O and no allocation: frames are
//! written into and read from caller buffers. Loading the key file is the config's job.

use core::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::authentic::{Authentic, Repr};
use super::error::RxError;
use super::frame::{Frame, VERSION, VERSION_LEGACY, VERSION_SESSION};
use super::payload::{Outdate, Payload};
use super::session::{Handshake, Session};
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

    /// The frame key of one pair (SPEC §7.2): HMAC-SHA256 under the authkey over a label, both
    /// node names in byte order and the UDP port. Two pairs that share an authkey (a copied
    /// configuration, an appliance image) but differ in a node name or the port sign with
    /// different keys, so each drops the other's frames as forged before any replay window
    /// sees them. Each name is preceded by its length, so no two pairs of names collide.
    pub fn for_pair(authkey: &[u8], names: [&str; 2], udpport: u16) -> Key {
        let [a, b] = names;
        let (first, second) = if a.as_bytes() <= b.as_bytes() { (a, b) } else { (b, a) };
        // INVARIANT: as in `new`, HMAC takes keys of any length.
        let mut mac = HmacSha256::new_from_slice(authkey).expect("HMAC takes keys of any length");
        mac.update(b"hapair frame key v2\0");
        for name in [first, second] {
            // INVARIANT: node names are short words (the configuration limits them).
            let len = u16::try_from(name.len()).unwrap_or(u16::MAX);
            mac.update(&len.to_be_bytes());
            mac.update(name.as_bytes());
        }
        mac.update(&udpport.to_be_bytes());
        Key::new(&mac.finalize().into_bytes())
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

/// How this node writes its next frame: the layout version its peer reads, and the session
/// fields. `Receiver::outgoing` gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// `VERSION`, or `VERSION_LEGACY` while the peer speaks only that.
    pub version: u8,
    /// The handshake fields (ignored in a legacy frame).
    pub session: Session,
}

/// Numbers and signs outgoing frames.
#[derive(Debug)]
pub struct Sender {
    key: Key,
    /// The raw authkey, for legacy frames to a peer that speaks only version 1.
    legacy_key: Option<Key>,
    node: u8,
    incarnation: u64,
    seq_next: [u64; LINKS_MAX],
    /// What every frame from now on carries of the DRBD outdate exchange (v4).
    outdate: Outdate,
}

impl Sender {
    /// A sender for node `node` (0 or 1) in boot `incarnation` (from `bump_incarnation`),
    /// signing with the pair's frame key.
    pub fn new(key: Key, node: u8, incarnation: u64) -> Sender {
        assert!(node <= 1, "node index {node} out of range");
        Sender {
            key,
            legacy_key: None,
            node,
            incarnation,
            seq_next: [1; LINKS_MAX],
            outdate: Outdate::NONE,
        }
    }

    /// Also able to write legacy (v1) frames, signed with the raw authkey `key`.
    pub fn with_legacy(mut self, key: Key) -> Sender {
        self.legacy_key = Some(key);
        self
    }

    /// The DRBD outdate exchange every frame carries from now on (`drbd::outdate`).
    pub fn set_outdate(&mut self, outdate: Outdate) {
        self.outdate = outdate;
    }

    /// This boot's incarnation.
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// Writes the next frame for `link` into `buf` and returns its length. `buf` must hold
    /// `limits::FRAME_LEN_MAX` bytes and `link` be below `LINKS_MAX` (caller invariants).
    /// A legacy frame goes out only when this sender has the legacy key; otherwise the
    /// current version.
    pub fn emit(&mut self, link: u8, payload: &Payload, out: &Outgoing, buf: &mut [u8]) -> usize {
        let slot = &mut self.seq_next[usize::from(link)];
        let seq = *slot;
        // INVARIANT: a u64 counted up once per frame does not wrap in any device's lifetime.
        *slot = seq.checked_add(1).expect("sequence number exhausted");
        let (version, key) = match &self.legacy_key {
            Some(legacy) if out.version == VERSION_LEGACY => (VERSION_LEGACY, legacy),
            _ => (VERSION, &self.key),
        };
        let repr = Repr {
            version,
            sender: self.node,
            incarnation: self.incarnation,
            seq,
            link,
            session: out.session,
            payload: *payload,
            outdate: self.outdate,
        };
        let len = repr.buffer_len();
        let mut frame = Frame::new_unchecked(&mut buf[..len]);
        repr.emit(&mut frame);
        key.sign(&mut frame);
        len
    }
}

/// Counters of one link, as seen by the receiver.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Frames accepted on this link.
    pub frames_rx: u64,
    /// Frames the peer sent on this link that never arrived (gaps in seq, per run).
    pub frames_lost: u64,
    /// Frames dropped on this link, for any reason.
    pub frames_dropped: u64,
}

/// Receiver counters; every dropped frame bumps exactly one of `malformed`, `bad_version`,
/// `auth_failures`, `wrong_link`, `own_frames`, `replays` and `unconfirmed`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxStats {
    /// Frames that did not parse.
    pub malformed: u64,
    /// Frames of an incompatible layout version (or legacy ones once the peer spoke ours).
    pub bad_version: u64,
    /// Frames whose tag did not match (forged, corrupted, or of another pair).
    pub auth_failures: u64,
    /// Authentic frames that named another link than the one they arrived on.
    pub wrong_link: u64,
    /// Our own frames, looped back.
    pub own_frames: u64,
    /// Authentic frames that repeated or went back in sequence, or were addressed to an
    /// earlier run of this node (sent before it restarted).
    pub replays: u64,
    /// Of `replays`, legacy frames from an older incarnation.
    pub stale_incarnation: u64,
    /// Of `replays`, frames addressed to an earlier run of this node.
    pub old_run: u64,
    /// Authentic frames sent before the peer heard this node's current challenge (the
    /// handshake after either node starts, one frame or two per link).
    pub unconfirmed: u64,
    /// Times a new run of the peer was accepted in place of another (it restarted).
    pub peer_restarts: u64,
    /// Of `peer_restarts`, those whose incarnation did not go up (its statedir was lost or
    /// restored): resynchronised, never refused.
    pub incarnation_resyncs: u64,
    /// Per-link counters, by link index.
    pub links: [LinkStats; LINKS_MAX],
}

/// The replay window of a legacy (v1) peer, which has no session: strictly increasing
/// (incarnation, seq) per link, as version 1 did.
#[derive(Clone, Copy, Debug, Default)]
struct LegacyWindow {
    incarnation: Option<u64>,
    seq_last: [Option<u64>; LINKS_MAX],
}

/// Verifies incoming frames from the peer, runs the freshness handshake and enforces the
/// per-link sequence windows. Call `accept` with each datagram or deframed serial record and
/// the index of the link it arrived on; only `Ok` frames may reach the core. `outgoing` says
/// how to write this node's next frame.
#[derive(Debug)]
pub struct Receiver {
    key: Key,
    /// The raw authkey, while a peer that speaks only version 1 is still admitted.
    legacy_key: Option<Key>,
    me: u8,
    peer: u8,
    handshake: Handshake,
    legacy: LegacyWindow,
    /// The layout version of the peer's last authentic frame (0: none yet).
    peer_version: u8,
    /// The last authentic frame that was not fresh (`take_unfresh`).
    unfresh: Option<Repr>,
    stats: RxStats,
}

impl Receiver {
    /// A receiver for node `me` that accepts frames from node `peer` (0 and 1, different),
    /// for a daemon run `run` with first challenge `challenge` (both random).
    pub fn new(key: Key, me: u8, peer: u8, run: u32, challenge: u32) -> Receiver {
        assert!(me <= 1 && peer <= 1 && me != peer, "bad node indices {me}, {peer}");
        Receiver {
            key,
            legacy_key: None,
            me,
            peer,
            handshake: Handshake::new(run, challenge),
            legacy: LegacyWindow::default(),
            peer_version: 0,
            unfresh: None,
            stats: RxStats::default(),
        }
    }

    /// Also admits legacy (v1) frames signed with the raw authkey `key`: for the upgrade of a
    /// pair one node at a time, until the peer is known to speak the current version.
    pub fn with_legacy(mut self, key: Key) -> Receiver {
        self.legacy_key = Some(key);
        self
    }

    /// The highest incarnation of the peer an earlier run of this node heard (from the
    /// statedir): recordings of runs at or below it are not taken for a restart of the peer.
    pub fn with_peer_incarnation_floor(mut self, incarnation: u64) -> Receiver {
        self.handshake.set_accepted_floor(incarnation);
        self
    }

    /// The highest incarnation of the peer heard so far in any authentic frame (to keep as
    /// the next run's floor).
    pub fn peer_incarnation_max(&self) -> Option<u64> {
        self.handshake.heard_max()
    }

    /// The counters.
    pub fn stats(&self) -> &RxStats {
        &self.stats
    }

    /// The layout version of the peer's last authentic frame (0: none yet).
    pub fn peer_version(&self) -> u8 {
        self.peer_version
    }

    /// What the last authentic, in-sequence frame that was not fresh (`Unconfirmed` or
    /// `OldRun`) said, once. It proves nothing: it may be a recording. But a peer whose frames
    /// reach us while ours do not reach it sends exactly such frames, and the core must not
    /// take the group by waiting while they say the peer holds it (see `core` docs, "The
    /// fence-watchdog margin").
    pub fn take_unfresh(&mut self) -> Option<Repr> {
        self.unfresh.take()
    }

    /// Whether the core holds the peer alive: set before handing in frames (see
    /// `session::Handshake::set_peer_alive`).
    pub fn set_peer_alive(&mut self, alive: bool, recent: bool) {
        self.handshake.set_peer_alive(alive, recent);
    }

    /// True while the peer says this node's incarnation went backwards (a lost or restored
    /// statedir) and it resynchronised.
    pub fn own_incarnation_went_back(&self) -> bool {
        self.handshake.own_incarnation_went_back()
    }

    /// How this node writes its next frame: legacy while the peer speaks only version 1.
    pub fn outgoing(&self) -> Outgoing {
        let legacy = self.legacy_key.is_some() && self.peer_version == VERSION_LEGACY;
        let version = if legacy { VERSION_LEGACY } else { VERSION };
        Outgoing { version, session: self.handshake.outgoing() }
    }

    /// Checks one frame that arrived on `link` (below `LINKS_MAX`, a caller invariant).
    pub fn accept(&mut self, link: u8, bytes: &[u8]) -> Result<Authentic, RxError> {
        let result = self.check(link, bytes);
        self.count(link, result.as_ref().err().copied());
        result
    }

    /// What `accept` does after the tag checked, for the deterministic simulator, which
    /// delivers decoded frames to skip the cryptography of millions of schedules.
    #[cfg(feature = "sim")]
    pub fn accept_for_simulation(&mut self, repr: Repr) -> Result<Authentic, RxError> {
        let result = self.admit(repr.link, repr);
        self.count(repr.link, result.as_ref().err().copied());
        result
    }

    /// Test only: take every frame as fresh (see `Handshake::sim_skip_freshness`).
    #[cfg(feature = "sim")]
    pub fn sim_skip_freshness(&mut self) {
        self.handshake.sim_skip_freshness = true;
    }

    fn count(&mut self, link: u8, error: Option<RxError>) {
        let stats = &mut self.stats;
        let link_stats = &mut stats.links[usize::from(link)];
        let Some(error) = error else {
            link_stats.frames_rx += 1;
            return;
        };
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
            RxError::OldRun => {
                stats.old_run += 1;
                &mut stats.replays
            }
            RxError::Unconfirmed => &mut stats.unconfirmed,
        };
        *counter += 1;
    }

    fn check(&mut self, link: u8, bytes: &[u8]) -> Result<Authentic, RxError> {
        let frame = Frame::new_checked(bytes)?;
        let key = if frame.version() == VERSION_LEGACY {
            self.legacy_key.as_ref().ok_or(RxError::Version)?
        } else {
            &self.key
        };
        if !key.verify(&frame) {
            return Err(RxError::BadTag);
        }
        if frame.version() >= VERSION_SESSION {
            // The peer speaks a version past the legacy one (v3 or later: `Frame::check`
            // refuses v2), under the frame key: a legacy frame from now on is a downgrade.
            self.legacy_key = None;
        }
        let repr = Repr::parse(&frame)?;
        self.admit(link, repr)
    }

    /// Everything after the tag: link, sender, then the handshake (or the legacy window).
    fn admit(&mut self, link: u8, repr: Repr) -> Result<Authentic, RxError> {
        if repr.link != link {
            return Err(RxError::WrongLink);
        }
        if repr.sender == self.me {
            return Err(RxError::OwnFrame);
        }
        debug_assert_eq!(repr.sender, self.peer, "parse admits only node 0 and 1");
        if repr.version == VERSION_LEGACY {
            if self.legacy_key.is_none() {
                return Err(RxError::Version);
            }
            self.advance_legacy(link, repr.incarnation, repr.seq)?;
        } else {
            let result = self.handshake.admit(link, repr.incarnation, repr.seq, &repr.session);
            if let Err(RxError::Unconfirmed | RxError::OldRun) = result {
                self.unfresh = Some(repr);
            }
            let admitted = result?;
            let stats = &mut self.stats;
            stats.links[usize::from(link)].frames_lost += admitted.lost;
            stats.peer_restarts += u64::from(admitted.restarted);
            stats.incarnation_resyncs += u64::from(admitted.resynced);
        }
        self.peer_version = repr.version;
        Ok(Authentic::new(repr))
    }

    /// Moves the legacy window of `link` to (incarnation, seq), or refuses to go back.
    fn advance_legacy(&mut self, link: u8, incarnation: u64, seq: u64) -> Result<(), RxError> {
        let window = &mut self.legacy;
        match window.incarnation {
            Some(current) if incarnation < current => return Err(RxError::Stale),
            Some(current) if incarnation == current => {}
            previous => {
                if previous.is_some() {
                    self.stats.peer_restarts += 1;
                }
                // A new boot numbers every link afresh.
                window.incarnation = Some(incarnation);
                window.seq_last = [None; LINKS_MAX];
            }
        }
        let slot = &mut window.seq_last[usize::from(link)];
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
    use crate::wire::payload::{GroupState, Groups, Health, Intent, Kind};

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
            groups: Groups::ONE,
        }
    }

    /// Node 0's sender and node 1's receiver, with the handshake done (node 0 echoes node 1's
    /// first challenge).
    fn pair(key: &Key) -> (Sender, Outgoing, Receiver) {
        let tx = Sender::new(key.clone(), 0, 5);
        let rx = Receiver::new(key.clone(), 1, 0, 77, 1234);
        let out = Outgoing { version: VERSION, session: Session { echo: 1234, ..session(9) } };
        (tx, out, rx)
    }

    fn session(run: u32) -> Session {
        Session { run, challenge: 4321, echo: 0, flags: 0 }
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
        let (mut tx, out, mut rx) = pair(&key);
        let mut buf = [0u8; 128];
        for i in 0..10 {
            let len = tx.emit(2, &payload(), &out, &mut buf);
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
    fn another_pair_with_the_same_authkey_fails_the_tag() {
        let ours = Key::for_pair(b"shared", ["alpha", "beta"], 694);
        let theirs = Key::for_pair(b"shared", ["gamma", "delta"], 694);
        let other_port = Key::for_pair(b"shared", ["beta", "alpha"], 695);
        let (_, out, mut rx) = pair(&ours);
        let mut buf = [0u8; 128];
        for key in [theirs, other_port] {
            let mut tx = Sender::new(key, 0, 5);
            let len = tx.emit(0, &payload(), &out, &mut buf);
            assert_eq!(rx.accept(0, &buf[..len]).err(), Some(RxError::BadTag));
        }
        assert_eq!(rx.stats().auth_failures, 2);
        // The names' order in the file does not matter; both nodes derive the same key.
        let mut tx = Sender::new(Key::for_pair(b"shared", ["beta", "alpha"], 694), 0, 5);
        let len = tx.emit(0, &payload(), &out, &mut buf);
        assert!(rx.accept(0, &buf[..len]).is_ok());
    }

    #[test]
    fn names_are_length_prefixed() {
        let mut buf = [0u8; 128];
        let a = Key::for_pair(b"k", ["ab", "c"], 1);
        let b = Key::for_pair(b"k", ["a", "bc"], 1);
        let (_, out, mut rx) = pair(&a);
        let len = Sender::new(b, 0, 5).emit(0, &payload(), &out, &mut buf);
        assert_eq!(rx.accept(0, &buf[..len]).err(), Some(RxError::BadTag));
    }

    #[test]
    fn unconfirmed_and_old_run_frames_are_dropped_and_counted() {
        let key = Key::new(b"k");
        let (mut tx, out, mut rx) = pair(&key);
        let mut buf = [0u8; 128];
        let before = Outgoing { session: session(9), ..out };
        let len = tx.emit(0, &payload(), &before, &mut buf);
        assert_eq!(rx.accept(0, &buf[..len]).err(), Some(RxError::Unconfirmed));
        let earlier = Outgoing { session: Session { echo: 999, ..session(9) }, ..out };
        let len = tx.emit(0, &payload(), &earlier, &mut buf);
        assert_eq!(rx.accept(0, &buf[..len]).err(), Some(RxError::OldRun));
        let len = tx.emit(0, &payload(), &out, &mut buf);
        assert!(rx.accept(0, &buf[..len]).is_ok());
        let stats = rx.stats();
        assert_eq!((stats.unconfirmed, stats.replays, stats.old_run), (1, 1, 1));
        // The receiver learnt the peer's challenge to echo.
        assert_eq!(rx.outgoing().session.echo, 4321);
    }

    #[test]
    fn legacy_frames_only_with_the_legacy_key_and_until_the_peer_speaks_ours() {
        let legacy = Key::new(b"authkey");
        let pair_key = Key::for_pair(b"authkey", ["a", "b"], 694);
        let mut buf = [0u8; 128];
        let v1 = Outgoing { version: VERSION_LEGACY, session: Session::NONE };
        let mut old = Sender::new(pair_key.clone(), 0, 5).with_legacy(legacy.clone());
        // Without the legacy key a v1 frame is an incompatible version.
        let mut strict = Receiver::new(pair_key.clone(), 1, 0, 7, 1234);
        let len = old.emit(0, &payload(), &v1, &mut buf);
        assert_eq!(len, crate::wire::FRAME_LEN_V1);
        assert_eq!(strict.accept(0, &buf[..len]).err(), Some(RxError::Version));
        // With it, accepted, and this node answers in v1.
        let mut rx = Receiver::new(pair_key.clone(), 1, 0, 7, 1234).with_legacy(legacy.clone());
        assert_eq!(rx.outgoing().version, VERSION);
        let len = old.emit(0, &payload(), &v1, &mut buf);
        assert!(rx.accept(0, &buf[..len]).is_ok());
        assert_eq!(rx.outgoing().version, VERSION_LEGACY);
        // Once a frame of ours authenticates, v1 is refused: no downgrade.
        let (_, out, _) = pair(&pair_key);
        let len = old.emit(0, &payload(), &out, &mut buf);
        assert!(rx.accept(0, &buf[..len]).is_ok());
        assert_eq!(rx.outgoing().version, VERSION);
        let len = old.emit(0, &payload(), &v1, &mut buf);
        assert_eq!(rx.accept(0, &buf[..len]).err(), Some(RxError::Version));
    }

    /// `repr` as bytes signed with `key`, in the layout of its version.
    fn signed(repr: &Repr, key: &Key, buf: &mut [u8; 128]) -> usize {
        let len = repr.buffer_len();
        let mut frame = Frame::new_unchecked(&mut buf[..len]);
        repr.emit(&mut frame);
        key.sign(&mut frame);
        len
    }

    /// A peer that still runs version 3, the one before ours, signs with the frame key too:
    /// its first frame retires the legacy key as one of ours would, and reads without an
    /// outdate exchange. A v2 frame, though signed with the frame key, is refused before its
    /// tag is looked at and retires nothing: a v2 peer must be upgraded to v3 first.
    #[test]
    fn a_v3_frame_is_accepted_and_retires_the_legacy_key_and_a_v2_frame_does_not() {
        let legacy = Key::new(b"authkey");
        let pair_key = Key::for_pair(b"authkey", ["a", "b"], 694);
        let mut rx = Receiver::new(pair_key.clone(), 1, 0, 7, 1234).with_legacy(legacy.clone());
        let (_, out, _) = pair(&pair_key);
        let v3 = Repr {
            version: 3,
            sender: 0,
            incarnation: 5,
            seq: 1,
            link: 0,
            session: out.session,
            payload: payload(),
            outdate: Outdate { request: Outdate::request(1, 0), answer: 0 },
        };
        let mut buf = [0u8; 128];
        let v1 = Outgoing { version: VERSION_LEGACY, session: Session::NONE };
        let mut old = Sender::new(pair_key.clone(), 0, 5).with_legacy(legacy);
        // The v2 frame: a bad version, and the legacy key stays.
        let len = signed(&Repr { version: 2, ..v3 }, &pair_key, &mut buf);
        assert_eq!(len, crate::wire::FRAME_LEN_V2);
        assert_eq!(rx.accept(0, &buf[..len]).err(), Some(RxError::Version));
        assert_eq!((rx.stats().bad_version, rx.peer_version()), (1, 0));
        let len = old.emit(0, &payload(), &v1, &mut buf);
        assert!(rx.accept(0, &buf[..len]).is_ok());
        assert_eq!((rx.peer_version(), rx.outgoing().version), (VERSION_LEGACY, VERSION_LEGACY));
        // The v3 frame: accepted, no outdate read (v3 has no such bytes), the key retired.
        let len = signed(&v3, &pair_key, &mut buf);
        assert_eq!(len, crate::wire::FRAME_LEN_V3);
        let authentic = rx.accept(0, &buf[..len]).unwrap();
        assert_eq!(*authentic.repr(), Repr { outdate: Outdate::NONE, ..v3 });
        assert_eq!((rx.peer_version(), rx.outgoing().version), (3, VERSION));
        let len = old.emit(0, &payload(), &v1, &mut buf);
        assert_eq!(rx.accept(0, &buf[..len]).err(), Some(RxError::Version));
        assert_eq!(rx.stats().bad_version, 2);
    }

    /// What `Sender::set_outdate` says goes out in every frame on every link until changed,
    /// and comes out of the peer's receiver as it went in: node 0 asks (request 3 about
    /// resource 1), node 1 answers (request 3, code 4), node 0 withdraws its request.
    #[test]
    fn an_outdate_exchange_round_trips_through_emit_sign_and_accept() {
        let key = Key::for_pair(b"authkey", ["a", "b"], 694);
        let (mut tx0, out0, mut rx1) = pair(&key);
        // Node 1's sender and node 0's receiver, handshake done the other way round.
        let mut tx1 = Sender::new(key.clone(), 1, 8);
        let mut rx0 = Receiver::new(key.clone(), 0, 1, 78, 4321);
        let out1 = Outgoing { version: VERSION, session: Session { echo: 4321, ..session(10) } };
        let mut buf = [0u8; 128];
        let ask = Outdate { request: Outdate::request(3, 1), answer: 0 };
        tx0.set_outdate(ask);
        for link in [0, 1, 0] {
            let len = tx0.emit(link, &payload(), &out0, &mut buf);
            assert_eq!(len, crate::wire::FRAME_LEN_V4);
            assert_eq!((buf[94], buf[95]), (0x13, 0));
            let authentic = rx1.accept(link, &buf[..len]).unwrap();
            assert_eq!(authentic.repr().outdate, ask);
            assert_eq!(authentic.repr().outdate.requested(), Some((3, 1)));
        }
        let reply = Outdate { request: 0, answer: Outdate::answer(3, 4) };
        tx1.set_outdate(reply);
        let len = tx1.emit(2, &payload(), &out1, &mut buf);
        let authentic = rx0.accept(2, &buf[..len]).unwrap();
        assert_eq!(authentic.repr().outdate.answered(), Some((3, 4)));
        tx0.set_outdate(Outdate::NONE);
        let len = tx0.emit(0, &payload(), &out0, &mut buf);
        assert_eq!(rx1.accept(0, &buf[..len]).unwrap().repr().outdate, Outdate::NONE);
        // A legacy (v1) frame has no room for it: the peer reads none.
        let mut legacy_rx = Receiver::new(key.clone(), 1, 0, 7, 1).with_legacy(key.clone());
        let mut old = Sender::new(key.clone(), 0, 5).with_legacy(key);
        old.set_outdate(ask);
        let v1 = Outgoing { version: VERSION_LEGACY, session: Session::NONE };
        let len = old.emit(0, &payload(), &v1, &mut buf);
        assert_eq!(legacy_rx.accept(0, &buf[..len]).unwrap().repr().outdate, Outdate::NONE);
    }

    #[test]
    fn display_names_the_error() {
        assert_eq!(RxError::BadTag.to_string(), "bad authentication tag");
    }
}
