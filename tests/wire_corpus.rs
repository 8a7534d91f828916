//! Replays the committed fuzz corpus (tests/fuzz/corpus/) through the frame decoder, the
//! receiver and the serial deframer in the default suite, so that an input that once found a
//! bug keeps being tested without cargo fuzz. Also holds the (ignored) generator of the
//! hand-made seeds. It does not fuzz.

use std::fs;
use std::path::{Path, PathBuf};

use hapair::limits::{FRAME_LEN_MAX, LINKS_MAX};
use hapair::wire::serial::{self, Deframer, ENCODED_LEN_MAX};
use hapair::wire::*;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus").join(target);
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    files.into_iter().map(|path| (path.clone(), fs::read(&path).unwrap())).collect()
}

fn decode(bytes: &[u8]) -> usize {
    let _ = Repr::parse(&Frame::new_unchecked(bytes));
    let key = || Key::new(b"fuzzing key");
    let mut rx = Receiver::new(key(), 0, 1, 1, 1).with_legacy(key());
    (0..LINKS_MAX as u8).filter(|&link| rx.accept(link, bytes).is_ok()).count()
}

#[test]
fn frame_decode_corpus_never_panics() {
    let files = corpus("frame_decode");
    assert!(!files.is_empty(), "the corpus must not be empty");
    let accepted: usize = files.iter().map(|(_, bytes)| decode(bytes)).sum();
    // The hand-made seeds include valid frames signed with the fuzzing key.
    assert!(accepted > 0, "no corpus frame was accepted");
}

#[test]
fn serial_deframer_corpus_never_panics() {
    let files = corpus("serial_deframer");
    assert!(!files.is_empty(), "the corpus must not be empty");
    let mut frames = 0;
    for (_, bytes) in &files {
        // The fuzz target takes the first byte as the read size; replay it the same way.
        let Some((&split, stream)) = bytes.split_first() else { continue };
        let mut deframer = Deframer::new();
        for chunk in stream.chunks(usize::from(split % 64) + 1) {
            deframer.push(chunk, |frame| {
                assert!(frame.len() <= FRAME_LEN_MAX);
                decode(frame);
                frames += 1;
            });
        }
    }
    assert!(frames > 0, "no corpus stream held a frame");
}

fn frames_payload() -> Payload {
    Payload {
        kind: Kind::Heartbeat,
        state: GroupState::Standby,
        health: Health::OK,
        intent: Intent::None,
        flags: 0,
        epoch: 1,
        watchdog_timeout_ms: 0,
        config_digest: [1; 8],
    }
}

/// Writes the hand-made seeds: valid frames of several kinds, an adjacent-version frame, and
/// serial streams of them with noise. Run once with `--ignored`; the output is committed.
#[test]
#[ignore]
fn write_seed_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus");
    let key = Key::new(b"fuzzing key");
    let mut frames = Vec::new();
    for (i, kind) in [Kind::Heartbeat, Kind::Release, Kind::Request, Kind::Leaving, Kind::Ack]
        .into_iter()
        .enumerate()
    {
        let payload = Payload {
            kind,
            state: GroupState::Active,
            health: Health(i as u16),
            intent: Intent::Takeover,
            flags: 1,
            epoch: 2,
            watchdog_timeout_ms: 10_000,
            config_digest: [i as u8; 8],
        };
        let mut tx = Sender::new(key.clone(), 1, 1_700_000_000_000 + i as u64);
        let mut buf = [0u8; FRAME_LEN_MAX];
        let session = Session { run: 3, challenge: 3, echo: 1, flags: 0 };
        let len = tx.emit(i as u8, &payload, &Outgoing { version: VERSION, session }, &mut buf);
        frames.push(buf[..len].to_vec());
    }
    // A legacy (v1) frame, signed with the raw key, as a peer mid-upgrade sends it.
    let mut old = Sender::new(key.clone(), 1, 1_600_000_000_000).with_legacy(key.clone());
    let mut buf = [0u8; FRAME_LEN_MAX];
    let v1 = Outgoing { version: VERSION_LEGACY, session: Session::NONE };
    let len = old.emit(0, &frames_payload(), &v1, &mut buf);
    let legacy = buf[..len].to_vec();
    let mut newer = frames[0].clone();
    newer.splice(55..55, [0xAB; 6]);
    let mut frame = Frame::new_unchecked(&mut newer[..]);
    frame.set_version(VERSION + 1);
    frame.set_body_len(61);
    key.sign(&mut frame);
    frames.push(newer);
    frames.push(legacy);

    let dir = root.join("frame_decode");
    fs::create_dir_all(&dir).unwrap();
    for (i, frame) in frames.iter().enumerate() {
        fs::write(dir.join(format!("seed-{i}")), frame).unwrap();
    }
    let dir = root.join("serial_deframer");
    fs::create_dir_all(&dir).unwrap();
    for (i, frame) in frames.iter().enumerate() {
        let mut stream = vec![(i * 13) as u8, 0x55, 0x00, 0x13, 0x37];
        let mut out = [0u8; ENCODED_LEN_MAX];
        let len = serial::encode(frame, &mut out);
        stream.extend_from_slice(&out[..len]);
        stream.extend_from_slice(&out[..len / 2]);
        stream.extend_from_slice(&out[..len]);
        fs::write(dir.join(format!("seed-{i}")), stream).unwrap();
    }
}
