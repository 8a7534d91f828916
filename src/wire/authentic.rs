//! `Authentic`: a decoded frame whose tag, CRC and replay checks have all passed. Only `wire`
//! can build one from bytes, so the core cannot act on anything else (the rustls idea of types
//! that only a verifier can build). The simulator, with the `sim` feature, may build one
//! directly to skip the cryptography when it runs millions of schedules.

use super::payload::{Outdate, Payload};
use super::session::Session;

/// The fields of a frame that the receiver acts on, after decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Repr {
    /// The layout version: `VERSION`, or `VERSION_LEGACY` to or from a peer that speaks
    /// only that. A received frame of another version this code reads (the one before ours
    /// or the one after) parses with its own number; `emit` writes the versions this code
    /// knows as they are and a newer one as `VERSION`.
    pub version: u8,
    /// The sender's index in the configuration's `node` lines (0 or 1).
    pub sender: u8,
    /// The sender's boot counter (persisted in its statedir).
    pub incarnation: u64,
    /// Per-link sequence number, strictly increasing within an incarnation.
    pub seq: u64,
    /// The sender's index of the link the frame was sent on.
    pub link: u8,
    /// The freshness handshake (all zero in a v1 frame): see `wire::session`.
    pub session: Session,
    /// What the sender says about itself.
    pub payload: Payload,
    /// The DRBD outdate exchange (v4 and later; [`Outdate::NONE`] in a v1 or v3 frame): the
    /// event loop's, not the core's.
    pub outdate: Outdate,
}

impl Repr {
    /// The same frame as it would read if it described group `group` (below
    /// `limits::GROUPS_MAX`) alone: every field kept, the payload projected by
    /// [`Payload::group`].
    pub fn group(&self, group: u8) -> Repr {
        Repr { payload: self.payload.group(group), ..*self }
    }
}

/// A frame that passed every check. Built only by `wire` (or the simulator).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Authentic {
    repr: Repr,
}

impl Authentic {
    /// Wraps a verified frame. Only the verifying code in `wire` calls this.
    pub(crate) fn new(repr: Repr) -> Authentic {
        Authentic { repr }
    }

    /// Lets the deterministic simulator deliver frames without encoding them.
    #[cfg(feature = "sim")]
    pub fn for_simulation(repr: Repr) -> Authentic {
        Authentic { repr }
    }

    /// The verified fields.
    pub fn repr(&self) -> &Repr {
        &self.repr
    }

    /// The view of group `group` (below `limits::GROUPS_MAX`): the same verified frame, its
    /// payload projected by [`Payload::group`]. A projection of a verified frame is verified
    /// too: it says nothing the frame did not.
    pub fn group(&self, group: u8) -> Authentic {
        Authentic { repr: self.repr.group(group) }
    }
}
