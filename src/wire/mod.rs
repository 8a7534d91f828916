//! Heartbeat frames (SPEC §4): the byte layout, its authentication and replay protection, and
//! the serial line framing around it. Nothing here does I/O or reads a clock: drivers hand in
//! bytes and take bytes out; the incarnation counter is persisted by `drivers::statefile`.
//!
//! # Frame layout (version 1)
//!
//! All integers are big-endian. Offsets are in bytes from the start of the frame.
//!
//! | offset | len | field                 | meaning                                             |
//! |-------:|----:|-----------------------|-----------------------------------------------------|
//! |      0 |   1 | `version`             | layout version, [`VERSION`] (= 1) for this code      |
//! |      1 |   1 | `body_len`            | bytes before the tag (42 in v1); the tag follows    |
//! |      2 |   1 | `sender`              | sender's index in the `node` lines: 0 or 1          |
//! |      3 |   1 | `link`                | link index the frame was sent on (< `LINKS_MAX`)    |
//! |      4 |   8 | `incarnation`         | sender's boot counter (persisted in its statedir)   |
//! |     12 |   8 | `seq`                 | per-link sequence, strictly increasing per boot     |
//! |     20 |   1 | `kind`                | [`Kind`] code                                       |
//! |     21 |   1 | `state`               | [`GroupState`] code                                 |
//! |     22 |   1 | `intent`              | [`Intent`] code                                     |
//! |     23 |   1 | `flags`               | core-defined bits, unknown bits ignored             |
//! |     24 |   2 | `health`              | [`Health`] bits, zero = healthy                     |
//! |     26 |   4 | `epoch`               | sender's group ownership epoch                      |
//! |     30 |   4 | `watchdog_timeout_ms` | sender's hardware watchdog timeout, 0 = none        |
//! |     34 |   8 | `config_digest`       | first 8 bytes of SHA-256 of the effective config    |
//! |     42 |  32 | `tag`                 | HMAC-SHA256 under the authkey over bytes 0..42      |
//!
//! A v1 frame is 74 bytes, well under `limits::FRAME_LEN_MAX` (128). The frame length is the
//! whole datagram (UDP) or the whole deframed record (serial, see [`serial`]): it must equal
//! `body_len + 32` exactly, so trailing bytes and short frames are malformed.
//!
//! # Versions
//!
//! A receiver of version `v` accepts frames of versions `v - 1`, `v` and `v + 1` and drops
//! any other version (counted as `bad_version`; version 0 is reserved and never valid). The
//! rule that makes this work: a new version may only *append* fields between the old fields
//! and the tag, never move, remove or re-purpose one, and it announces where the tag starts
//! in `body_len`. So an older receiver reads the fields it knows, skips the extra bytes (which
//! the tag still covers) and checks the tag at `body_len`; a newer receiver treats the fields
//! an older sender does not have as absent. A frame of this receiver's own version or older
//! must have exactly the body length of that version; a newer one may be longer, never shorter
//! than ours. Within the fields a version knows, an unknown `kind`, `state` or `intent` code,
//! a `sender` other than 0/1 or a `link` out of range makes the frame malformed. Bumping the
//! version therefore lets a pair upgrade one node at a time.
//!
//! # Checks, in order
//!
//! [`Receiver::accept`] drops and counts a frame that is: malformed or of an incompatible
//! version; has a bad tag (checked in constant time, before any field is acted on); names
//! another link than the one it arrived on; is our own looped-back frame; or does not
//! strictly increase (incarnation, seq) on its link. Only then does the core see it, as an
//! [`Authentic`], which nothing outside this module can build from bytes.
//!
//! Decoding never panics on any input; the fuzz entry points in `fuzz.rs` (built only under
//! `cfg(fuzzing)`) make the tag and CRC checks pass so the fuzzer reaches the parsers.
#![forbid(unsafe_code)]

pub mod auth;
pub mod authentic;
pub mod frame;
#[cfg(fuzzing)]
pub mod fuzz;
pub mod payload;
pub mod serial;
pub mod session;

pub use auth::{Key, LinkStats, Outgoing, Receiver, RxError, RxStats, Sender};
pub use authentic::{Authentic, Repr};
pub use frame::{FRAME_LEN_V1, FRAME_LEN_V2, Frame, TAG_LEN, VERSION, VERSION_LEGACY};
pub use payload::{GroupState, Health, Intent, Kind, Payload};
pub use session::Session;
