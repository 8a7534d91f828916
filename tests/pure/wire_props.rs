//! Property and scenario tests of the wire layer through its public API: frame round trips
//! (with 1 to 8 groups), bit flips and truncations, the receiver's drop rules and counters,
//! the version rule, and the serial deframer's resynchronisation. Does not test the fuzz entry
//! points (tests/fuzz/).

use hapair::limits::{FRAME_LEN_MAX, GROUPS_MAX, LINKS_MAX};
use hapair::wire::serial::{self, Deframer, ENCODED_LEN_MAX};
use hapair::wire::*;
use proptest::prelude::*;

const SECRET: &[u8] = b"correct horse battery staple";

fn payload() -> Payload {
    Payload {
        kind: Kind::Heartbeat,
        state: GroupState::Active,
        health: Health::OK,
        intent: Intent::None,
        flags: 0,
        epoch: 3,
        watchdog_timeout_ms: 10_000,
        config_digest: [9; 8],
        groups: Groups::ONE,
    }
}

/// The receivers' first challenge in these tests.
const CHALLENGE: u32 = 4242;

fn receiver(me: u8) -> Receiver {
    Receiver::new(Key::new(SECRET), me, 1 - me, 99, CHALLENGE)
}

/// Node 0 sending to node 1.
fn pair(incarnation: u64) -> (Sender, Receiver) {
    (Sender::new(Key::new(SECRET), 0, incarnation), receiver(1))
}

/// What a sender that heard the receiver's first challenge writes.
fn heard(run: u32) -> Outgoing {
    Outgoing { version: VERSION, session: Session { run, challenge: 7, echo: CHALLENGE, flags: 0 } }
}

fn emit(sender: &mut Sender, link: u8) -> Vec<u8> {
    emit_with(sender, link, &heard(5))
}

fn emit_with(sender: &mut Sender, link: u8, out: &Outgoing) -> Vec<u8> {
    let mut buf = [0u8; FRAME_LEN_MAX];
    let len = sender.emit(link, &payload(), out, &mut buf);
    buf[..len].to_vec()
}

/// A frame of run `run` that echoes `rx`'s current challenge (its peer heard it).
fn emit_to(sender: &mut Sender, link: u8, run: u32, rx: &Receiver) -> Vec<u8> {
    let challenge = rx.outgoing().session.challenge;
    let out = Outgoing { session: Session { echo: challenge, ..heard(run).session }, ..heard(run) };
    emit_with(sender, link, &out)
}

const KINDS: [Kind; 5] = [Kind::Heartbeat, Kind::Release, Kind::Request, Kind::Leaving, Kind::Ack];
const STATES: [GroupState; 6] = [
    GroupState::Standby,
    GroupState::Starting,
    GroupState::Active,
    GroupState::Stopping,
    GroupState::Failed,
    GroupState::Maintenance,
];
const INTENTS: [Intent; 4] = [Intent::None, Intent::Standby, Intent::Takeover, Intent::Maintenance];

fn arb_part() -> impl Strategy<Value = GroupPart> {
    (
        proptest::sample::select(KINDS.to_vec()),
        proptest::sample::select(STATES.to_vec()),
        proptest::sample::select(INTENTS.to_vec()),
        any::<u8>(),
        any::<u32>(),
        any::<bool>(),
    )
        .prop_map(|(kind, state, intent, flags, epoch, restarts)| GroupPart {
            kind,
            state,
            intent,
            flags,
            epoch,
            restarts,
        })
}

/// 1 to 8 groups, the parts of all but group 0 arbitrary (`Groups::set` keeps only the
/// group flag bits).
fn arb_groups() -> impl Strategy<Value = Groups> {
    (1..=GROUPS_MAX as u8, proptest::collection::vec(arb_part(), GROUPS_MAX - 1)).prop_map(
        |(count, parts)| {
            let mut groups = Groups::new(count).unwrap();
            for group in 1..count {
                groups.set(group, parts[usize::from(group) - 1]);
            }
            groups
        },
    )
}

fn arb_payload() -> impl Strategy<Value = Payload> {
    (
        proptest::sample::select(KINDS.to_vec()),
        proptest::sample::select(STATES.to_vec()),
        any::<u16>(),
        proptest::sample::select(INTENTS.to_vec()),
        any::<u8>(),
        any::<u32>(),
        any::<u32>(),
        any::<[u8; 8]>(),
        arb_groups(),
    )
        .prop_map(|(kind, state, health, intent, flags, epoch, wd, digest, groups)| Payload {
            kind,
            state,
            health: Health(health),
            intent,
            flags,
            epoch,
            watchdog_timeout_ms: wd,
            config_digest: digest,
            groups,
        })
}

fn arb_repr() -> impl Strategy<Value = Repr> {
    (
        (0u8..2, any::<u64>(), any::<u64>(), 0..LINKS_MAX as u8),
        arb_payload(),
        any::<(u32, u32, u8)>(),
        any::<(u8, u8)>(),
    )
        .prop_map(
            |((sender, incarnation, seq, link), payload, (run, challenge, flags), (rq, an))| Repr {
                version: VERSION,
                sender,
                incarnation,
                seq,
                link,
                session: Session { run, challenge, echo: CHALLENGE, flags },
                payload,
                outdate: Outdate { request: rq, answer: an },
            },
        )
}

/// Signs `repr` into a fresh buffer.
fn signed(repr: &Repr) -> Vec<u8> {
    let mut buf = vec![0u8; repr.buffer_len()];
    let mut frame = Frame::new_unchecked(&mut buf[..]);
    repr.emit(&mut frame);
    Key::new(SECRET).sign(&mut frame);
    buf
}

/// A valid signed frame from node 0 on link 0 that a fresh receiver accepts.
fn valid_frame() -> Vec<u8> {
    emit(&mut pair(7).0, 0)
}

proptest! {
    #[test]
    fn round_trip_any_fields(repr in arb_repr()) {
        let bytes = signed(&repr);
        prop_assert_eq!(bytes.len(), FRAME_LEN_V4);
        let frame = Frame::new_checked(&bytes[..]).unwrap();
        prop_assert!(Key::new(SECRET).verify(&frame));
        prop_assert_eq!(Repr::parse(&frame), Ok(repr));
        // And through a receiver for the other node.
        let mut rx = receiver(1 - repr.sender);
        let authentic = rx.accept(repr.link, &bytes).unwrap();
        prop_assert_eq!(*authentic.repr(), repr);
    }

    #[test]
    fn any_bit_flip_or_truncation_of_any_frame_is_rejected(
        repr in arb_repr(),
        bit in 0..FRAME_LEN_V4 * 8,
        len in 0..FRAME_LEN_V4,
    ) {
        let frame = signed(&repr);
        let mut rx = receiver(1 - repr.sender);
        prop_assert_eq!(rx.accept(repr.link, &frame[..len]), Err(RxError::Malformed));
        let mut flipped = frame.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(rx.accept(repr.link, &flipped).is_err());
        prop_assert!(rx.accept(repr.link, &frame).is_ok());
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut rx = receiver(1);
        prop_assert!(rx.accept(0, &bytes).is_err());
        let _ = Repr::parse(&Frame::new_unchecked(&bytes[..]));
        let mut deframer = Deframer::new();
        deframer.push(&bytes, |frame| {
            assert!(rx.accept(0, frame).is_err());
        });
    }

    /// What a v3 node sends: the same fields, no outdate exchange. Accepted with its groups,
    /// read with no outdate request or answer.
    #[test]
    fn a_v3_frame_is_accepted_with_its_groups_and_no_outdate(repr in arb_repr()) {
        let v3 = Repr { version: 3, ..repr };
        let bytes = signed(&v3);
        prop_assert_eq!(bytes.len(), FRAME_LEN_V3);
        let mut rx = receiver(1 - repr.sender);
        let authentic = rx.accept(repr.link, &bytes).unwrap();
        prop_assert_eq!(*authentic.repr(), Repr { outdate: Outdate::NONE, ..v3 });
        prop_assert_eq!(authentic.repr().payload.groups, repr.payload.groups);
        prop_assert_eq!(rx.peer_version(), 3);
    }

    /// What a v2 node sends: two versions back, refused whatever it says, though signed
    /// with the frame key.
    #[test]
    fn a_v2_frame_is_a_bad_version(repr in arb_repr()) {
        let bytes = signed(&Repr { version: 2, ..repr });
        prop_assert_eq!(bytes.len(), FRAME_LEN_V2);
        let mut rx = receiver(1 - repr.sender);
        prop_assert_eq!(rx.accept(repr.link, &bytes), Err(RxError::Version));
        prop_assert_eq!(rx.stats().bad_version, 1);
    }

    #[test]
    fn deframer_recovers_after_garbage_and_any_split(
        garbage in proptest::collection::vec(any::<u8>(), 0..400),
        splits in proptest::collection::vec(1usize..40, 1..40),
        repr in arb_repr(),
    ) {
        let frame = signed(&repr);
        let mut line = garbage.clone();
        let mut out = [0u8; ENCODED_LEN_MAX];
        let len = serial::encode(&frame, &mut out);
        line.extend_from_slice(&out[..len]);
        let mut deframer = Deframer::new();
        let mut got: Vec<Vec<u8>> = Vec::new();
        let mut rest = &line[..];
        for step in splits.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (chunk, tail) = rest.split_at((*step).min(rest.len()));
            deframer.push(chunk, |f| got.push(f.to_vec()));
            rest = tail;
        }
        prop_assert_eq!(got.last(), Some(&frame));
    }
}

#[test]
fn every_single_bit_flip_is_rejected() {
    let frame = valid_frame();
    for bit in 0..frame.len() * 8 {
        let mut bad = frame.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        let mut rx = pair(7).1;
        assert!(rx.accept(0, &bad).is_err(), "bit {bit} flipped was accepted");
        let stats = rx.stats();
        let dropped = stats.malformed + stats.bad_version + stats.auth_failures;
        assert_eq!(dropped, 1, "bit {bit}: {stats:?}");
    }
    assert!(pair(7).1.accept(0, &frame).is_ok(), "the unflipped frame is valid");
}

#[test]
fn every_truncation_and_extension_is_rejected() {
    let frame = valid_frame();
    let mut rx = pair(7).1;
    for len in 0..frame.len() {
        assert_eq!(rx.accept(0, &frame[..len]), Err(RxError::Malformed), "length {len}");
    }
    let mut long = frame.clone();
    long.push(0);
    assert_eq!(rx.accept(0, &long), Err(RxError::Malformed));
    assert_eq!(rx.stats().malformed, frame.len() as u64 + 1);
    assert!(rx.accept(0, &frame).is_ok());
}

#[test]
fn frame_signed_with_another_key_is_rejected_and_counted() {
    let mut tx = Sender::new(Key::new(b"another key"), 0, 7);
    let mut rx = pair(7).1;
    let frame = emit(&mut tx, 0);
    assert_eq!(rx.accept(0, &frame), Err(RxError::BadTag));
    assert_eq!(rx.stats().auth_failures, 1);
    assert_eq!(rx.stats().links[0].frames_rx, 0);
}

#[test]
fn replay_of_any_earlier_frame_is_rejected_and_counted() {
    let (mut tx, mut rx) = pair(7);
    let frames: Vec<Vec<u8>> = (0..5).map(|_| emit(&mut tx, 1)).collect();
    for frame in &frames {
        assert!(rx.accept(1, frame).is_ok());
    }
    for frame in &frames {
        assert_eq!(rx.accept(1, frame), Err(RxError::Replay));
    }
    assert_eq!(rx.stats().replays, 5);
    assert_eq!(rx.stats().links[1].frames_rx, 5);
    assert_eq!(rx.stats().links[1].frames_lost, 0);
}

#[test]
fn frames_of_a_replaced_run_are_never_accepted_again() {
    let (mut old, mut rx) = pair(100);
    let old_frames = [emit(&mut old, 0), emit(&mut old, 2)];
    assert!(rx.accept(1, &emit(&mut old, 1)).is_ok());
    let mut new = Sender::new(Key::new(SECRET), 0, 101);
    assert!(rx.accept(0, &emit_to(&mut new, 0, 6, &rx)).is_ok());
    assert_eq!(rx.stats().peer_restarts, 1);
    for (frame, link) in old_frames.iter().zip([0, 2]) {
        assert!(rx.accept(link, frame).is_err(), "a frame of the replaced run");
    }
    // The restarted peer's seq 1 on link 2 is fresh in its new run, once it echoes the
    // receiver's new challenge.
    assert!(rx.accept(2, &emit_to(&mut new, 2, 6, &rx)).is_ok());
}

#[test]
fn a_lower_incarnation_is_resynchronised_not_refused() {
    let (mut old, mut rx) = pair(1_000_000);
    assert!(rx.accept(0, &emit(&mut old, 0)).is_ok());
    // The peer's statedir was lost and its clock is wrong: a much lower incarnation.
    let mut new = Sender::new(Key::new(SECRET), 0, 3);
    assert!(rx.accept(0, &emit_to(&mut new, 0, 6, &rx)).is_ok());
    assert_eq!(rx.stats().incarnation_resyncs, 1);
    assert!(rx.outgoing().session.flags & session::FLAG_YOUR_INCARNATION_WENT_BACK != 0);
    assert!(rx.accept(0, &emit_to(&mut new, 0, 6, &rx)).is_ok());
}

#[test]
fn recorded_frames_after_a_receiver_restart_are_replays() {
    let (mut tx, _) = pair(7);
    let recorded: Vec<Vec<u8>> = (0..5).map(|_| emit(&mut tx, 1)).collect();
    // The receiver restarts: a new run with a new challenge.
    let mut rx = Receiver::new(Key::new(SECRET), 1, 0, 100, CHALLENGE + 1);
    for frame in &recorded {
        assert_eq!(rx.accept(1, frame), Err(RxError::OldRun));
    }
    assert_eq!(rx.stats().replays, 5);
    assert_eq!(rx.stats().old_run, 5);
    assert_eq!(rx.stats().links[1].frames_rx, 0);
}

#[test]
fn higher_incarnation_resets_sequence_tracking() {
    let (mut old, mut rx) = pair(100);
    for _ in 0..10 {
        assert!(rx.accept(0, &emit(&mut old, 0)).is_ok());
    }
    let mut new = Sender::new(Key::new(SECRET), 0, 200);
    assert!(rx.accept(0, &emit_to(&mut new, 0, 6, &rx)).is_ok(), "seq 1 after seq 10, new boot");
    assert_eq!(rx.stats().peer_restarts, 1);
    assert_eq!(rx.stats().incarnation_resyncs, 0);
    assert_eq!(rx.stats().links[0].frames_lost, 0);
}

#[test]
fn frame_replayed_on_another_link_is_rejected() {
    let (mut tx, mut rx) = pair(7);
    let frame = emit(&mut tx, 0);
    assert_eq!(rx.accept(1, &frame), Err(RxError::WrongLink));
    assert_eq!(rx.stats().wrong_link, 1);
    assert!(rx.accept(0, &frame).is_ok());
}

#[test]
fn own_frames_are_dropped_and_counted_separately() {
    let mut me = Sender::new(Key::new(SECRET), 1, 7);
    let mut rx = pair(7).1;
    assert_eq!(rx.accept(0, &emit(&mut me, 0)), Err(RxError::OwnFrame));
    assert_eq!(rx.stats().own_frames, 1);
    assert_eq!(rx.stats().auth_failures + rx.stats().replays, 0);
}

/// `payload()` with three groups, group 2 active and holding.
fn payload_of_three_groups() -> Payload {
    let mut groups = Groups::new(3).unwrap();
    let active = GroupPart {
        kind: Kind::Heartbeat,
        state: GroupState::Active,
        intent: Intent::None,
        flags: 1,
        epoch: 12,
        restarts: false,
    };
    groups.set(2, active);
    Payload { groups, ..payload() }
}

/// The outdate exchange of `frame_of_version`: request 2 about resource 0, answer to the
/// peer's request 7 with code 5.
const OUTDATE: Outdate = Outdate { request: 0x02, answer: 0x57 };

/// A frame of `version` with the v4 fields and `body_len` bytes before the tag (at least 96:
/// 0xEE after the fields), signed.
fn frame_of_version(version: u8, body_len: usize) -> Vec<u8> {
    let session = heard(5).session;
    let repr = Repr {
        version: VERSION,
        sender: 0,
        incarnation: 7,
        seq: 1,
        link: 0,
        session,
        payload: payload_of_three_groups(),
        outdate: OUTDATE,
    };
    let mut buf = vec![0xEE; body_len.max(FRAME_LEN_V4 - TAG_LEN) + TAG_LEN];
    let mut frame = Frame::new_unchecked(&mut buf[..]);
    repr.emit(&mut frame);
    frame.set_version(version);
    frame.set_body_len(body_len as u8);
    buf.truncate(body_len + TAG_LEN);
    let mut frame = Frame::new_unchecked(&mut buf[..]);
    Key::new(SECRET).sign(&mut frame);
    buf
}

/// The next version is read for our fields, outdate exchange included. It may only append,
/// and a v4 frame already fills FRAME_LEN_MAX: so a v5 frame has exactly our length, and a
/// v5 that needs more room must raise the limit of a version this code does not read.
#[test]
fn the_next_version_is_accepted_at_our_length_and_no_longer() {
    let body = FRAME_LEN_V4 - TAG_LEN;
    assert_eq!(FRAME_LEN_V4, FRAME_LEN_MAX);
    let mut rx = pair(7).1;
    let authentic = rx.accept(0, &frame_of_version(VERSION + 1, body)).unwrap();
    assert_eq!(authentic.repr().version, VERSION + 1);
    assert_eq!(authentic.repr().payload, payload_of_three_groups());
    assert_eq!(authentic.repr().outdate, OUTDATE);
    assert_eq!(authentic.group(2).repr().payload.state, GroupState::Active);
    // Over the 128-byte limit, or shorter than ours: malformed, for v5 and for v4.
    for version in [VERSION, VERSION + 1] {
        let mut rx = pair(7).1;
        for len in [body + 1, body - 1] {
            let frame = frame_of_version(version, len);
            assert_eq!(rx.accept(0, &frame), Err(RxError::Malformed), "v{version} {len}");
        }
    }
    // The version before ours has exactly its own length: not ours.
    let mut rx = pair(7).1;
    let frame = frame_of_version(VERSION - 1, body);
    assert_eq!(rx.accept(0, &frame), Err(RxError::Malformed));
}

/// SPEC §7.1: a frame with every group a pair may have and the outdate exchange still fits
/// in 128 bytes, exactly.
#[test]
fn a_frame_of_eight_groups_and_an_outdate_exchange_is_128_bytes() {
    let (mut tx, mut rx) = pair(7);
    let mut groups = Groups::new(GROUPS_MAX as u8).unwrap();
    for group in 1..GROUPS_MAX as u8 {
        let part = GroupPart { epoch: u32::from(group), ..GroupPart::IDLE };
        groups.set(group, part);
    }
    let eight = Payload { groups, ..payload() };
    tx.set_outdate(OUTDATE);
    let mut buf = [0u8; FRAME_LEN_MAX];
    let len = tx.emit(0, &eight, &heard(5), &mut buf);
    assert_eq!((len, FRAME_LEN_V4), (128, 128));
    let authentic = rx.accept(0, &buf[..len]).unwrap();
    assert_eq!(authentic.repr().payload, eight);
    assert_eq!(authentic.repr().outdate, OUTDATE);
    assert_eq!(authentic.group(7).repr().payload.epoch, 7);
}

#[test]
fn version_two_away_and_zero_are_rejected() {
    let mut rx = pair(7).1;
    for version in [VERSION + 2, VERSION + 3, VERSION - 2, 0, 255] {
        let frame = frame_of_version(version, FRAME_LEN_V4 - TAG_LEN);
        assert_eq!(rx.accept(0, &frame), Err(RxError::Version), "v{version}");
    }
    // Two back is v2, whose frame has its own length: refused all the same.
    let v2 = Repr {
        version: 2,
        sender: 0,
        incarnation: 7,
        seq: 1,
        link: 0,
        session: heard(5).session,
        payload: payload(),
        outdate: Outdate::NONE,
    };
    assert_eq!(signed(&v2).len(), FRAME_LEN_V2);
    assert_eq!(rx.accept(0, &signed(&v2)), Err(RxError::Version));
    // A legacy (v1) frame too, to a receiver without the legacy key.
    let mut old = Sender::new(Key::new(SECRET), 0, 7).with_legacy(Key::new(SECRET));
    let v1 = Outgoing { version: VERSION_LEGACY, session: Session::NONE };
    assert_eq!(rx.accept(0, &emit_with(&mut old, 0, &v1)), Err(RxError::Version));
    assert_eq!(rx.stats().bad_version, 7);
}

#[test]
fn serial_stream_of_many_frames_in_one_read() {
    let (mut tx, mut rx) = pair(7);
    let mut line = Vec::new();
    for _ in 0..5 {
        let mut out = [0u8; ENCODED_LEN_MAX];
        let len = serial::encode(&emit(&mut tx, 3), &mut out);
        line.extend_from_slice(&out[..len]);
    }
    let mut deframer = Deframer::new();
    let mut ok = 0;
    let mut input = &line[..];
    while let Some(frame) = deframer.next_frame(&mut input) {
        ok += usize::from(rx.accept(3, frame).is_ok());
    }
    assert_eq!(ok, 5);
    assert_eq!(deframer.stats().frames, 5);
}
