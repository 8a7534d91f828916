//! Heartbeat frames (SPEC §4): the byte layout, its authentication and replay protection, and
//! the serial line framing around it. Nothing here does I/O or reads a clock: drivers hand in
//! bytes and take bytes out; the incarnation counter is persisted by `drivers::statefile`.
//!
//! # Frame layout (version 4)
//!
//! All integers are big-endian. Offsets are in bytes from the start of the frame.
//!
//! | offset | len | field                 | meaning                                             |
//! |-------:|----:|-----------------------|-----------------------------------------------------|
//! |      0 |   1 | `version`             | layout version, [`VERSION`] (= 4) for this code     |
//! |      1 |   1 | `body_len`            | bytes before the tag (96 in v4, 94 in v3, 42 in v1) |
//! |      2 |   1 | `sender`              | sender's index in the `node` lines: 0 or 1          |
//! |      3 |   1 | `link`                | link index the frame was sent on (< `LINKS_MAX`)    |
//! |      4 |   8 | `incarnation`         | sender's start counter (persisted in its statedir)  |
//! |     12 |   8 | `seq`                 | per-link sequence, strictly increasing per run      |
//! |     20 |   1 | `kind`                | [`Kind`] code (group 0)                             |
//! |     21 |   1 | `state`               | [`GroupState`] code (group 0)                       |
//! |     22 |   1 | `intent`              | [`Intent`] code (group 0)                           |
//! |     23 |   1 | `flags`               | core-defined bits, unknown bits ignored             |
//! |     24 |   2 | `health`              | [`Health`] bits, zero = healthy                     |
//! |     26 |   4 | `epoch`               | sender's ownership epoch of group 0                 |
//! |     30 |   4 | `watchdog_timeout_ms` | sender's hardware watchdog timeout, 0 = none        |
//! |     34 |   8 | `config_digest`       | first 8 bytes of SHA-256 of the effective config    |
//! |     42 |   4 | `run`                 | v2: random per daemon start, never 0                |
//! |     46 |   4 | `challenge`           | v2: the sender's current challenge, never 0         |
//! |     50 |   4 | `echo`                | v2: the receiver's challenge as last heard, 0: none |
//! |     54 |   1 | `session_flags`       | v2: bit 0 "your incarnation went back"              |
//! |     55 |   1 | `groups`              | v3: groups described, 1..=8 (group 0 included)      |
//! |     56 |   2 | `intents`             | v3: [`Intent`] codes of groups 1..=7, 2 bits each   |
//! |     58 |  35 | `parts`               | v3: groups 1..=7, 5 bytes each (below)              |
//! |     93 |   1 | `restarts`            | v3: bit k: group k's restarts exhausted (k 1..=7)   |
//! |     94 |   1 | `outdate_request`     | v4: bits 0-3 request 1..=15 (0: none), 4-7 resource |
//! |     95 |   1 | `outdate_answer`      | v4: bits 0-3 request answered (0: none), 4-7 result |
//! |     96 |  32 | `tag`                 | HMAC-SHA256 under the frame key over bytes 0..96    |
//!
//! A v4 frame is 128 bytes, exactly `limits::FRAME_LEN_MAX`, with every group a pair may have
//! (SPEC §7.1); a v3 frame (bytes 0..94, then the tag) 126, a v1 frame (bytes 0..42, then the
//! tag) 74. The frame length is the whole datagram (UDP) or the whole deframed record
//! (serial, see [`serial`]): it must equal `body_len + 32` exactly, so trailing bytes and
//! short frames are malformed. (A v2 frame, bytes 0..55 and the tag, 87 bytes, is no longer
//! read: see the versions below.)
//!
//! # Groups (v3)
//!
//! A pair runs up to `limits::GROUPS_MAX` (8) resource groups (SPEC §7.1). The fields from
//! `kind` to `epoch` describe group 0, as in every version; `health`, `watchdog_timeout_ms`,
//! `config_digest` and the flag bits other than [`GROUP_FLAGS`] are the node's and hold for
//! every group. Group k (1..=7) has:
//! - its intent in bits 2(k-1) and 2(k-1)+1 of `intents` (bits 14 and 15 are zero, ignored);
//! - its part at offset 58 + 5(k-1): byte 0 is the [`GroupState`] code in bits 0-2, the
//!   [`Kind`] code in bits 3-5, the group's flag bit 0 (holding) in bit 6 and flag bit 1
//!   (taking over) in bit 7; bytes 1-4 are the group's epoch;
//! - its restart exhaustion in bit k of `restarts` (group 0's is `Health::RESTARTS` in
//!   `health`: restarts are a group's own, the other health bits the node's).
//!
//! `groups` of 0 or above 8, or an unknown state or kind code in the part of a group below
//! `groups`, make the frame malformed (all four 2-bit intent values are codes). The parts and
//! intents of groups at or past `groups` are sent as zero and ignored on receipt, though the
//! tag covers them. [`Payload::groups`] holds the parts; [`Payload::group`],
//! [`Repr::group`] and [`Authentic::group`] give the view of one group as a frame of that
//! group alone would read. A group a frame does not describe (past `groups`, or any group
//! but 0 in a v1 or v2 frame) reads as [`GroupPart::IDLE`]: a heartbeat in standby, not
//! holding, epoch 0.
//!
//! # The outdate exchange (v4)
//!
//! DRBD's fence-peer asks the peer to outdate its disk over the links (SPEC §7.5): an
//! [`Outdate`] the event loop sets ([`Sender::set_outdate`]) and reads ([`Repr::outdate`]).
//! Frames get lost, so a request (number 1..=15, resource) is repeated in every frame on every
//! link until the peer's answer names its number; the answer (that number, fence-peer's exit
//! code 3..=6) is repeated while the request it names comes. Number 0: none (v1, v3: none).
//!
//! # The frame key
//!
//! The tag is HMAC-SHA256 under a *frame key* derived from the authkey and the pair's
//! identity: HMAC-SHA256(authkey, "hapair frame key v2\0" || len || name || len || name ||
//! udpport), the two node names in byte order, each after its length (u16), the port as a u16
//! ([`Key::for_pair`]). Two pairs that share an authkey (a copied configuration, an appliance
//! image) on one LAN but differ in a node name or the port therefore sign with different keys:
//! each drops the other's frames as `auth_failures` before any replay window sees them. Two
//! pairs with the same names and port as well are, to hapair, the same pair: give each pair
//! its own key (`hapair keygen`) or its own port.
//!
//! # The freshness handshake (v2)
//!
//! A node acts on a frame only when the frame echoes the node's current challenge: so only
//! on frames its peer sent after it heard this node in its current run. Frames recorded
//! before this node restarted echo an older challenge and are dropped as `replays`; frames of
//! an earlier run of the peer, once a newer run was accepted, echo a challenge that has moved
//! on. Runs are told apart by (incarnation, run), so a peer whose statedir was lost or
//! restored (a lower incarnation) is resynchronised to, not refused, and told so (session
//! flag bit 0, shown by its `status`). The handshake takes one frame each way: a node that
//! hears a new challenge answers at once (at most once a keepalive). The rules and what they
//! do not stop are in [`session`].
//!
//! # Versions and the upgrade of a pair
//!
//! A receiver of version `v` accepts frames of versions `v - 1`, `v` and `v + 1` and drops
//! any other version (counted as `bad_version`; version 0 is reserved and never valid), but
//! for the legacy version 1 below. The
//! rule that makes this work: a new version may only *append* fields between the old fields
//! and the tag, never move, remove or re-purpose one, and it announces where the tag starts
//! in `body_len`. So an older receiver reads the fields it knows, skips the extra bytes (which
//! the tag still covers) and checks the tag at `body_len`; a newer receiver treats the fields
//! an older sender does not have as absent. A frame of this receiver's own version or older
//! must have exactly the body length of that version; a newer one may be longer, never shorter
//! than ours. Within the fields a version knows, an unknown `kind`, `state` or `intent` code,
//! a `sender` other than 0/1 or a `link` out of range makes the frame malformed.
//!
//! So this code (v4) reads v3, v4 and v5 frames and sends v4. A v3 frame reads with its
//! groups and no outdate exchange ([`Outdate::NONE`]); a v5 frame is read for its v4 fields,
//! though it cannot append any: a v4 frame already fills `FRAME_LEN_MAX`, so a v5 with new
//! fields needs a longer limit, which this code refuses as malformed. A v3 node reads a v4
//! frame's v3 fields (every group, the session) and skips the outdate bytes by `body_len`: a
//! pair upgrades one node at a time and uses the outdate exchange once both run v4. A v2
//! frame is two versions back: a `bad_version`, and a v2 node drops our v4 frames likewise.
//! So a v2 pair upgrades to v3 first, both nodes, one at a time, and only then to v4.
//!
//! Version 2 also changed the key, which a v1 node cannot know. So this code keeps the raw
//! authkey as a *legacy key* while its peer may still run v1: it checks a v1 frame's tag
//! under it (with v1's rule: strictly increasing (incarnation, seq), no handshake) and, while
//! its peer's last frame was v1, writes v1 frames under it (group 0 only, no session, no
//! outdate exchange). Version 1 is not adjacent to 4; it is read by this exception alone,
//! [`VERSION_LEGACY`]. The first frame of v3 or later (v2 is not read) that authenticates from
//! the peer retires the legacy key for good: it is recorded in `statedir/peer-version`, and
//! from then on a v1 frame is a `bad_version`, so nobody can talk a finished pair down to v1.
//! Upgrading a v1 pair one node at a time:
//! upgrade the standby node and restart it (it hears v1, answers in v1; the pair works as
//! before), move the group to it if wanted, upgrade and restart the other node (both now
//! speak v4 and record it). During the upgrade the pair has v1's protection only; the frame
//! key and the handshake apply once both run v3 or later.
//!
//! # Checks, in order
//!
//! [`Receiver::accept`] drops and counts a frame that is: malformed or of an incompatible
//! version; has a bad tag (checked in constant time, before any field is acted on); names
//! another link than the one it arrived on; is our own looped-back frame; does not strictly
//! increase the sequence of its run on its link (`replays`); or does not echo this node's
//! current challenge (`unconfirmed` during the handshake, `replays` when it echoes a challenge
//! of an earlier run of this node). Only then does the core see it, as an [`Authentic`],
//! which nothing outside this module can build from bytes.
//!
//! Decoding never panics on any input. The property checks in `fuzz.rs` are built for cargo
//! fuzz (`cfg(fuzzing)`) and for the test build (the `sim` feature, which replays the
//! committed corpus); only under `cfg(fuzzing)` do the tag and CRC checks pass, so that the
//! fuzzer reaches the parsers.
#![forbid(unsafe_code)]

pub mod auth;
pub mod authentic;
pub mod error;
pub mod frame;
#[cfg(any(fuzzing, feature = "sim"))]
pub mod fuzz;
pub mod payload;
pub mod serial;
pub mod session;

pub use auth::{Key, LinkStats, Outgoing, Receiver, RxStats, Sender};
pub use authentic::{Authentic, Repr};
pub use error::RxError;
pub use frame::{
    FRAME_LEN_V1, FRAME_LEN_V2, FRAME_LEN_V3, FRAME_LEN_V4, Frame, TAG_LEN, VERSION,
    VERSION_GROUPS, VERSION_LEGACY, VERSION_OUTDATE, VERSION_SESSION,
};
pub use payload::{
    GROUP_FLAGS, GroupPart, GroupState, Groups, Health, Intent, Kind, Outdate, Payload,
};
pub use session::Session;
