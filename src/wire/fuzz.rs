//! Fuzz entry points, built only under `cfg(fuzzing)` (cargo fuzz sets it). In such a build
//! `Key::verify` and the serial CRC check always pass, so the fuzzer's mutations reach the
//! field decoder and the replay logic instead of dying at the tag; never ship such a build.
//! The targets themselves live in tests/fuzz/. This file asserts the properties; it holds no
//! state between runs.

use super::auth::{Key, Receiver};
use super::authentic::Repr;
use super::frame::{Frame, VERSION};
use super::serial::Deframer;
use crate::limits::FRAME_LEN_MAX;

const KEY: &[u8] = b"fuzzing key";

/// A receiver for node `me` whose first challenge is 1 (the corpus' frames echo it), that
/// also takes legacy frames.
fn receiver(me: u8) -> Receiver {
    Receiver::new(Key::new(KEY), me, 1 - me, 1, 1).with_legacy(Key::new(KEY))
}

/// Decodes `data` as a frame; when it decodes, emits it again and checks that the second
/// decode gives the same fields (decode -> emit -> decode round trip). Also runs it through a
/// receiver on every link.
pub fn decode(data: &[u8]) {
    if let Ok(repr) = Repr::parse(&Frame::new_unchecked(data)) {
        let mut buf = [0u8; FRAME_LEN_MAX];
        let len = repr.buffer_len();
        let mut frame = Frame::new_unchecked(&mut buf[..len]);
        repr.emit(&mut frame);
        Key::new(KEY).sign(&mut frame);
        let again = Repr::parse(&Frame::new_checked(&buf[..len]).expect("own frame checks"));
        // A newer version's frame is written back as ours, without the fields it added.
        let expected = Repr { version: repr.version.min(VERSION), ..repr };
        assert_eq!(again, Ok(expected), "decode -> emit -> decode changed the frame");
    }
    let mut receiver = receiver(0);
    for link in 0..crate::limits::LINKS_MAX as u8 {
        let _ = receiver.accept(link, data);
    }
}

/// Feeds `data` to a deframer in pieces whose sizes come from the data itself, and decodes
/// every record that comes out.
pub fn deframe(data: &[u8]) {
    let Some((&split, stream)) = data.split_first() else {
        return;
    };
    let step = usize::from(split % 64) + 1;
    let mut deframer = Deframer::new();
    let mut receiver = receiver(1);
    for chunk in stream.chunks(step) {
        deframer.push(chunk, |frame| {
            assert!(frame.len() <= FRAME_LEN_MAX);
            let _ = receiver.accept(0, frame);
        });
    }
    let stats = deframer.stats();
    assert!(stats.frames + stats.crc_errors + stats.framing_errors <= data.len() as u64);
}
