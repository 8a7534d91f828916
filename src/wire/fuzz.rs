//! Property checks of the wire decoders, for the fuzz targets (tests/fuzz/, `cfg(fuzzing)`)
//! and for the replay of their committed corpus in the test build (`tests/pure/fuzz_corpus.rs`,
//! `sim` feature). Only under `cfg(fuzzing)` do `Key::verify` and the serial CRC check always
//! pass, so that the fuzzer's mutations reach the field decoder and the replay logic instead
//! of dying at the tag; never ship such a build. In the test build the checks are the real
//! ones, so only frames signed with the fuzzing key get past the receiver. This file asserts
//! the properties and holds no state between runs; it is never part of the shipped binary.

use super::auth::{Key, Receiver};
use super::authentic::Repr;
use super::frame::{Frame, VERSION};
use super::serial::Deframer;
use crate::limits::FRAME_LEN_MAX;

const KEY: &[u8] = b"fuzzing key";

/// A receiver for node 0 whose first challenge is 1 (the corpus' frames, sent by node 1, echo
/// it), that also takes legacy frames.
fn receiver() -> Receiver {
    Receiver::new(Key::new(KEY), 0, 1, 1, 1).with_legacy(Key::new(KEY))
}

/// Decodes `data` as a frame; when it decodes, emits it again and checks that the second
/// decode gives the same fields (decode -> emit -> decode round trip). Also runs it through a
/// receiver on every link. True when it decoded and a receiver took it (the deepest path).
pub fn decode(data: &[u8]) -> bool {
    let decoded = Repr::parse(&Frame::new_unchecked(data));
    if let Ok(repr) = decoded {
        let mut buf = [0u8; FRAME_LEN_MAX];
        let len = repr.buffer_len();
        let mut frame = Frame::new_unchecked(&mut buf[..len]);
        repr.emit(&mut frame);
        Key::new(KEY).sign(&mut frame);
        let again = Frame::new_checked(&buf[..len]).and_then(|f| Repr::parse(&f));
        // A newer version's frame is written back as ours, without the fields it added.
        let expected = Repr { version: repr.version.min(VERSION), ..repr };
        assert_eq!(again, Ok(expected), "decode -> emit -> decode changed the frame");
    }
    let mut receiver = receiver();
    let mut accepted = false;
    for link in 0..crate::limits::LINKS_MAX as u8 {
        accepted |= receiver.accept(link, data).is_ok();
    }
    accepted && decoded.is_ok()
}

/// Feeds `data` to a deframer in pieces whose sizes come from the data itself (its first
/// byte), and checks every record that comes out as [`decode`] does. True when a record came
/// out.
pub fn deframe(data: &[u8]) -> bool {
    let Some((&split, stream)) = data.split_first() else {
        return false;
    };
    let step = usize::from(split % 64) + 1;
    let mut deframer = Deframer::new();
    for chunk in stream.chunks(step) {
        deframer.push(chunk, |frame| {
            assert!(frame.len() <= FRAME_LEN_MAX);
            decode(frame);
        });
    }
    let stats = deframer.stats();
    assert!(stats.frames + stats.crc_errors + stats.framing_errors <= data.len() as u64);
    stats.frames > 0
}
