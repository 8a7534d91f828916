//! Why a received frame was dropped: the one error type of the receive path, shared by the
//! layout checks (`frame`), the handshake (`session`) and the verifier (`auth`). It imports
//! nothing of theirs, so the dependencies among them run one way: `auth` uses `frame` and
//! `session`, and neither of those uses `auth`.

use core::fmt;

/// Why a received frame was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RxError {
    /// The bytes do not form a frame: wrong length, unknown code, index out of range.
    Malformed,
    /// The frame's layout version is neither ours nor adjacent to it, or it is the legacy
    /// version from a peer known to speak ours.
    Version,
    /// The tag does not match: wrong key (another pair's), corrupted or forged.
    BadTag,
    /// The frame names another link than the one it arrived on (replayed across links).
    WrongLink,
    /// Our own frame, looped back (bridged media, broadcast echo).
    OwnFrame,
    /// The frame repeats or goes back in sequence on its link.
    Replay,
    /// A legacy (v1) frame from an older incarnation of the peer than one already seen.
    Stale,
    /// The peer has not yet echoed this node's current challenge: the handshake is not
    /// complete (see `session`).
    Unconfirmed,
    /// The frame echoes a challenge of an earlier run of this node: sent before this node
    /// restarted (recorded and replayed, or in flight across the restart).
    OldRun,
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
            RxError::Unconfirmed => "frame sent before the peer heard our challenge",
            RxError::OldRun => "frame addressed to an earlier run of this node",
        })
    }
}
