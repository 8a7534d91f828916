//! Micro-benchmark of the wire layer, run by scripts/bench-wire (ignored in the default
//! suite, and it asserts no timing): ns per frame for sign+encode and for verify+decode,
//! as min/median/p90/max over repeated batches.

use std::hint::black_box;
use std::time::Instant;

use hapair::limits::FRAME_LEN_MAX;
use hapair::wire::*;

const BATCHES: usize = 50;
const FRAMES_PER_BATCH: u64 = 2_000;

fn payload() -> Payload {
    Payload {
        kind: Kind::Heartbeat,
        state: GroupState::Active,
        health: Health::OK,
        intent: Intent::None,
        flags: 0,
        epoch: 1,
        watchdog_timeout_ms: 10_000,
        config_digest: [7; 8],
        groups: Groups::ONE,
    }
}

fn report(what: &str, mut ns_per_frame: Vec<f64>) {
    ns_per_frame.sort_by(f64::total_cmp);
    let at = |q: f64| ns_per_frame[((ns_per_frame.len() - 1) as f64 * q).round() as usize];
    println!(
        "{what:<16} ns/frame  min {:>7.0}  median {:>7.0}  p90 {:>7.0}  max {:>7.0}",
        at(0.0),
        at(0.5),
        at(0.9),
        at(1.0)
    );
}

#[test]
#[ignore]
#[allow(clippy::disallowed_methods)] // A benchmark measures time.
fn wire_bench() {
    let key = Key::new(b"benchmark key of some thirty-two b");
    let mut tx = Sender::new(key.clone(), 0, 1);
    let mut rx = Receiver::new(key, 1, 0, 1, 1);
    let out =
        Outgoing { version: VERSION, session: Session { run: 2, challenge: 2, echo: 1, flags: 0 } };
    let mut buf = [0u8; FRAME_LEN_MAX];
    let mut frames = vec![[0u8; FRAME_LEN_V3]; FRAMES_PER_BATCH as usize];
    let (mut sign, mut verify) = (Vec::new(), Vec::new());
    for _ in 0..BATCHES {
        let start = Instant::now();
        for frame in frames.iter_mut() {
            let len = tx.emit(0, black_box(&payload()), &out, &mut buf);
            frame.copy_from_slice(&buf[..len]);
        }
        sign.push(start.elapsed().as_nanos() as f64 / FRAMES_PER_BATCH as f64);
        let start = Instant::now();
        for frame in &frames {
            assert!(black_box(rx.accept(0, frame)).is_ok());
        }
        verify.push(start.elapsed().as_nanos() as f64 / FRAMES_PER_BATCH as f64);
    }
    println!("{BATCHES} batches of {FRAMES_PER_BATCH} frames of {FRAME_LEN_V3} bytes");
    report("sign+encode", sign);
    report("verify+decode", verify);
}
