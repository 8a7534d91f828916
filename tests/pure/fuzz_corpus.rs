//! Replays the committed fuzz corpus (tests/fuzz/corpus/TARGET/) of every fuzz target in the
//! default suite, through the very property checks the targets run (`hapair::*::fuzz`, built
//! for tests by the `sim` feature), without cargo fuzz: an input that once found a bug keeps
//! being tested, and a check that rots fails here rather than in a fuzz run months later.
//! Each target's corpus must reach its deepest check (a round trip, an accepted frame) at
//! least once, and every target of tests/fuzz/Cargo.toml must be replayed here. Also holds
//! the (ignored) generator of the hand-made seeds. It does not fuzz: README "Fuzzing".

use std::collections::BTreeSet;
use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::{Path, PathBuf};

use hapair::drivers::fuzz::{
    NETLINK_INDEX, NETLINK_SEQ, PING_COOKIE, PING_IDENT, nl_error, nlmsg, rtattr,
};
use hapair::drivers::ping::{ECHO_LEN, Icmp, encode_echo, field};
use hapair::limits::FRAME_LEN_MAX;
use hapair::wire::serial::{self, ENCODED_LEN_MAX};
use hapair::wire::*;

/// A property check: true when the input reached its deepest path.
type Check = fn(&[u8]) -> bool;

/// Every fuzz target and its check, as in tests/fuzz/fuzz_targets/.
const TARGETS: &[(&str, Check)] = &[
    ("frame_decode", hapair::wire::fuzz::decode),
    ("serial_deframer", hapair::wire::fuzz::deframe),
    ("control_request", hapair::control::fuzz::request),
    ("config", hapair::config::fuzz::config),
    ("cmdline", hapair::config::fuzz::cmdline),
    ("ping_reply", hapair::drivers::fuzz::ping_reply),
    ("netlink_reply", hapair::drivers::fuzz::netlink_reply),
    ("mdstat", hapair::drivers::fuzz::mdstat),
    ("hwmon_value", hapair::drivers::fuzz::hwmon_value),
    ("ocf_metadata", hapair::drivers::fuzz::ocf_metadata),
    ("heartbeat_import", hapair::migrate::fuzz::heartbeat_import),
    ("core_inputs", hapair::core::fuzz::inputs),
    ("groups_inputs", hapair::core::fuzz::groups_inputs),
];

/// A committed input stays small: the corpus is for regressions and seeds, not for a fuzzer's
/// whole state.
const SEED_LEN_MAX: usize = 16 * 1024;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz")
}

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = fuzz_dir().join("corpus").join(target);
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    files.into_iter().map(|path| (path.clone(), fs::read(&path).unwrap())).collect()
}

/// Runs `check` over the corpus of `target`; a failing input is named. Returns how many inputs
/// reached the deepest path.
fn replay(target: &str, check: Check) -> usize {
    let files = corpus(target);
    assert!(!files.is_empty(), "the corpus of {target} is empty");
    let mut reached = 0;
    for (path, bytes) in &files {
        assert!(bytes.len() <= SEED_LEN_MAX, "{}: too big for a seed", path.display());
        match catch_unwind(AssertUnwindSafe(|| check(bytes))) {
            Ok(deep) => reached += usize::from(deep),
            Err(panic) => {
                eprintln!("fuzz_corpus: {target}: {} fails its check", path.display());
                resume_unwind(panic);
            }
        }
    }
    eprintln!("fuzz_corpus: {target}: {reached} of {} inputs reach the deepest check", files.len());
    reached
}

macro_rules! replays {
    ($($target:ident),* $(,)?) => {$(
        #[test]
        fn $target() {
            let name = stringify!($target);
            let (_, check) = TARGETS.iter().find(|(n, _)| *n == name).expect("a target");
            let reached = replay(name, *check);
            assert!(reached > 0, "no input of the {name} corpus reaches its deepest check");
        }
    )*};
}

replays!(
    frame_decode,
    serial_deframer,
    control_request,
    config,
    cmdline,
    ping_reply,
    netlink_reply,
    mdstat,
    hwmon_value,
    ocf_metadata,
    heartbeat_import,
    core_inputs,
    groups_inputs,
);

/// Every target of the fuzz crate is replayed above, has its entry file and a corpus; and
/// every corpus belongs to a target.
#[test]
fn every_fuzz_target_is_replayed() {
    let manifest = fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    let bins: BTreeSet<&str> = manifest
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .filter(|name| *name != "hapair-fuzz")
        .collect();
    let replayed: BTreeSet<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(bins, replayed, "tests/fuzz/Cargo.toml and TARGETS differ");
    let corpora: BTreeSet<String> = fs::read_dir(fuzz_dir().join("corpus"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let names: BTreeSet<String> = replayed.iter().map(|n| n.to_string()).collect();
    assert_eq!(corpora, names, "corpus directories and targets differ");
    for name in &replayed {
        let entry = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        let text = fs::read_to_string(&entry).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(text.contains("fuzz_target!"), "{}", entry.display());
    }
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
        groups: Groups::ONE,
    }
}

/// Writes the hand-made seeds of the wire targets: valid v4 frames of several kinds with 1 to
/// 8 groups, the last four with an outdate request or answer (`seed-0` to `seed-4`), a
/// newer-version frame (`seed-5`), a legacy one (`seed-6`), the frames a v3 node sends
/// (`seed-v3-0` to `seed-v3-4`), the frames a v2 node sends (`seed-v2-0` to `seed-v2-4`,
/// byte for byte the seeds of before version 3, now a bad version) and a v3 frame of a v2
/// receiver's "newer" length, malformed (`seed-v2-5`); and serial streams of them with
/// noise. Run once with `--ignored`; the output is committed.
#[test]
#[ignore]
fn write_frame_seeds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus");
    let key = Key::new(b"fuzzing key");
    let mut frames = Vec::new();
    let mut frames_v3 = Vec::new();
    let mut frames_v2 = Vec::new();
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
            groups: Groups::ONE,
        };
        let incarnation = 1_700_000_000_000 + i as u64;
        let session = Session { run: 3, challenge: 3, echo: 1, flags: 0 };
        let mut tx = Sender::new(key.clone(), 1, incarnation);
        // Requests 1 to 4 about resources 0 to 3, answers to the peer's request 9 with each
        // of fence-peer's codes 3 to 6.
        let n = i as u8;
        let (request, answer) = match i {
            0 => (0, 0),
            1 | 3 => (Outdate::request(n, n - 1), 0),
            _ => (Outdate::request(n, n - 1), Outdate::answer(9, n + 1)),
        };
        tx.set_outdate(Outdate { request, answer });
        let mut buf = [0u8; FRAME_LEN_MAX];
        let with_groups = Payload { groups: seed_groups([1, 2, 3, 5, 8][i]), ..payload };
        let out = Outgoing { version: VERSION, session };
        let len = tx.emit(i as u8, &with_groups, &out, &mut buf);
        frames.push(buf[..len].to_vec());
        // The same frame as a v3 node sends it (its first on the link), then as a v2 node.
        let v3 = Repr {
            version: 3,
            sender: 1,
            incarnation,
            seq: 1,
            link: i as u8,
            session,
            payload: with_groups,
            outdate: Outdate::NONE,
        };
        frames_v3.push(signed(&key, &v3));
        frames_v2.push(signed(&key, &Repr { version: 2, payload, ..v3 }));
    }
    // A legacy (v1) frame, signed with the raw key, as a peer mid-upgrade sends it.
    let mut old = Sender::new(key.clone(), 1, 1_600_000_000_000).with_legacy(key.clone());
    let mut buf = [0u8; FRAME_LEN_MAX];
    let v1 = Outgoing { version: VERSION_LEGACY, session: Session::NONE };
    let len = old.emit(0, &frames_payload(), &v1, &mut buf);
    let legacy = buf[..len].to_vec();
    // A newer version's frame: nothing appended, a v4 frame already fills 128 bytes.
    assert_eq!(frames[4].len(), FRAME_LEN_MAX);
    frames.push(appended(&key, &frames[4], VERSION + 1, 0));
    frames.push(legacy);
    // What a v2 receiver took for a newer version: 6 bytes after the v2 fields.
    frames_v2.push(appended(&key, &frames_v2[0], 3, 6));
    write_frames(&root, "", &frames);
    write_frames(&root, "v3-", &frames_v3);
    write_frames(&root, "v2-", &frames_v2);
}

/// `repr` in the layout of its version, signed with `key`.
fn signed(key: &Key, repr: &Repr) -> Vec<u8> {
    let mut bytes = vec![0u8; repr.buffer_len()];
    let mut frame = Frame::new_unchecked(&mut bytes[..]);
    repr.emit(&mut frame);
    key.sign(&mut frame);
    bytes
}

/// 1 to 8 groups whose parts differ in every field.
fn seed_groups(count: u8) -> Groups {
    let kinds = [Kind::Heartbeat, Kind::Release, Kind::Request, Kind::Leaving, Kind::Ack];
    let states =
        [GroupState::Standby, GroupState::Active, GroupState::Stopping, GroupState::Failed];
    let intents = [Intent::None, Intent::Standby, Intent::Takeover, Intent::Maintenance];
    let mut groups = Groups::new(count).unwrap();
    for group in 1..count {
        let g = usize::from(group);
        let part = GroupPart {
            kind: kinds[g % kinds.len()],
            state: states[g % states.len()],
            intent: intents[g % intents.len()],
            flags: group & GROUP_FLAGS,
            epoch: 100 + u32::from(group),
            restarts: group == 2,
        };
        groups.set(group, part);
    }
    groups
}

/// `frame` as version `version` with `extra` bytes of 0xAB between its fields and the tag,
/// signed again.
fn appended(key: &Key, frame: &[u8], version: u8, extra: usize) -> Vec<u8> {
    let body_end = frame.len() - TAG_LEN;
    let mut newer = frame.to_vec();
    newer.splice(body_end..body_end, vec![0xAB; extra]);
    let mut frame = Frame::new_unchecked(&mut newer[..]);
    frame.set_version(version);
    frame.set_body_len((body_end + extra) as u8);
    key.sign(&mut frame);
    newer
}

/// Writes `frames` as `seed-PREFIXi` of frame_decode, and serial streams of them as those of
/// serial_deframer.
fn write_frames(root: &Path, prefix: &str, frames: &[Vec<u8>]) {
    let dir = root.join("frame_decode");
    fs::create_dir_all(&dir).unwrap();
    for (i, frame) in frames.iter().enumerate() {
        fs::write(dir.join(format!("seed-{prefix}{i}")), frame).unwrap();
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
        fs::write(dir.join(format!("seed-{prefix}{i}")), stream).unwrap();
    }
}

/// Writes `seeds` as the hand-made corpus of `target` (`seed-NAME` files).
fn write_seeds(target: &str, seeds: &[(&str, Vec<u8>)]) {
    let dir = fuzz_dir().join("corpus").join(target);
    fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in seeds {
        fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
    }
}

/// The contents of a file of the repository.
fn repo_file(path: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Seeds as (name, bytes).
type Seeds = Vec<(&'static str, Vec<u8>)>;

fn text(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

/// Writes the hand-made seeds of the other targets: valid inputs from tests/fixtures and
/// board/ where there are some, plus edge cases. Run once with `--ignored`; the output is
/// committed.
#[test]
#[ignore]
fn write_decoder_seeds() {
    write_seeds("control_request", &control_seeds());
    write_seeds("config", &config_seeds());
    write_seeds("cmdline", &cmdline_seeds());
    write_seeds("ping_reply", &ping_seeds());
    write_seeds("netlink_reply", &netlink_seeds());
    write_seeds("mdstat", &mdstat_seeds());
    write_seeds("hwmon_value", &hwmon_seeds());
    write_seeds("ocf_metadata", &metadata_seeds());
    write_seeds("heartbeat_import", &heartbeat_seeds());
}

/// Writes the hand-made seeds of `core_inputs` (the layout is in `hapair::core::fuzz`): a
/// two-byte header, then steps `[dt, kind, a, b]`. Run once with `--ignored`; the output is
/// committed.
#[test]
#[ignore]
fn write_core_seeds() {
    write_seeds("core_inputs", &core_seeds());
}

/// Writes the hand-made seeds of `groups_inputs`: `core_inputs`'s seeds with a third header
/// byte (two groups homed apart, three and four groups, two resources each), and a shutdown
/// whose later group still stops while admin commands come. Run once with `--ignored`.
#[test]
#[ignore]
fn write_groups_seeds() {
    let mut seeds: Vec<(&'static str, Vec<u8>)> = Vec::new();
    for (name, bytes) in core_seeds() {
        if bytes.len() < 2 {
            continue;
        }
        for (tag, third) in
            [("two", 0x01 | 0x08), ("three-two-each", 0x02 | 0x40), ("four", 0x03 | 0x14)]
        {
            let mut b = bytes[..2].to_vec();
            b.push(third);
            b.extend_from_slice(&bytes[2..]);
            let name: &'static str = Box::leak(format!("{name}-{tag}").into_boxed_str());
            seeds.push((name, b));
        }
    }
    let mut shutdown = vec![CORE_HOME[0], CORE_HOME[1], 0x01 | 0x08];
    for step in core_elected() {
        shutdown.extend_from_slice(&step);
    }
    for step in [[10, SHUTDOWN, 0, 0], [0, ADMIN, 0, 0], [0, ADMIN, 8, 1], [0, ADMIN, 1, 1]] {
        shutdown.extend_from_slice(&step);
    }
    seeds.push(("shutdown-admin", shutdown));
    write_seeds("groups_inputs", &seeds);
}

/// Node 0 (home) with two resources, fence none, one restart, two links, an armed watchdog,
/// ping nodes.
const CORE_HOME: [u8; 2] = [0x30, 0x46];
/// Step kinds (`kind & 15`).
const FRAME: u8 = 0;
const TIMEOUT: u8 = 1;
const ANSWER: u8 = 2;
const FENCE_RESULT: u8 = 4;
const HEALTH: u8 = 5;
const ADMIN: u8 = 6;
const SHUTDOWN: u8 = 7;
const RELOAD: u8 = 10;
/// Answers (`a` of `ANSWER`).
const OK: u8 = 0;
const NOT_RUNNING: u8 = 1;
const FAILED: u8 = 2;
/// A peer frame's `a`: heartbeat in standby, the peer hears us; and active, holding.
const PEER_STANDBY: u8 = 0x80;
const PEER_ACTIVE: u8 = 0x80 | 0x20 | (2 << 2);

fn core_seed(header: [u8; 2], steps: &[&[[u8; 4]]]) -> Vec<u8> {
    let mut bytes = header.to_vec();
    steps.iter().flat_map(|part| part.iter()).for_each(|s| bytes.extend_from_slice(s));
    bytes
}

/// `n` timeouts, each at the deadline the node gave, as the loop wakes (a link's send
/// interval apart at most: a longer step would be a stall of this node).
fn timeouts(n: usize) -> Vec<[u8; 4]> {
    vec![[0, TIMEOUT, 0, 0]; n]
}

/// Probes that find nothing, then: the peer in standby hears the home node, which starts
/// its two resources, and a second later monitors them.
fn core_elected() -> Vec<[u8; 4]> {
    let start = [
        [0, ANSWER, NOT_RUNNING, 0],
        [0, ANSWER, NOT_RUNNING, 0],
        [10, FRAME, PEER_STANDBY, 0],
        [10, ANSWER, OK, 0],
        [10, ANSWER, OK, 0],
    ];
    [&start[..], &timeouts(14), &[[10, ANSWER, OK, 0], [10, ANSWER, OK, 0]]].concat()
}

/// Start-up, elections, fencing by command and by waiting, split brain, failures and
/// restarts, reloads, maintenance, shutdowns.
fn core_seeds() -> Seeds {
    let elected = core_elected();
    let ok = [10, ANSWER, OK, 0];
    let failed = [10, ANSWER, FAILED, 0];
    // Node 1 (not home), one resource, fence command, one link, ping nodes.
    let fence_cmd = [0x0d, 0x41];
    // Node 0, one resource, fence watchdog, one link, an armed watchdog, ping nodes.
    let fence_wd = [0x0a, 0x45];
    let probed = [[0, ANSWER, NOT_RUNNING, 0]];
    vec![
        ("empty", vec![]),
        ("header-only", CORE_HOME.to_vec()),
        ("elected", core_seed(CORE_HOME, &[&elected])),
        (
            // The second resource fails its monitor: restarted in place; fails again past
            // the restart limit: the group is stopped and given up.
            "monitor-fails",
            core_seed(
                CORE_HOME,
                &[
                    &elected,
                    &timeouts(11),
                    &[ok, failed, ok, ok],
                    &timeouts(11),
                    &[ok, failed, ok, ok],
                ],
            ),
        ),
        (
            // A reload drops the second resource and adds a new one after the first.
            "reload-active",
            core_seed(CORE_HOME, &[&elected, &[[10, RELOAD, 0x02 | 0x20, 1], ok, ok]]),
        ),
        (
            // Admin standby hands the group to the peer, which starts it; a takeover here
            // asks for it back, and the peer grants it.
            "standby-takeover",
            core_seed(
                CORE_HOME,
                &[
                    &elected,
                    &[[10, ADMIN, 0, 0], ok, ok],
                    &[[10, FRAME, 0x80 | 0x20 | (1 << 2), 1], [10, ADMIN, 2, 0]],
                    &[[10, FRAME, 1 | 0x80, 2], ok, ok],
                ],
            ),
        ),
        (
            // Maintenance over the running group, then back.
            "maintenance",
            core_seed(CORE_HOME, &[&elected, &[[10, ADMIN, 3, 0], [10, ADMIN, 4, 0]]]),
        ),
        (
            // The peer says it runs the group with a newer epoch: a split brain the home node
            // keeps; then the peer leaves.
            "split-brain",
            core_seed(CORE_HOME, &[&elected, &[[10, FRAME, PEER_ACTIVE, 7], [10, FRAME, 3, 7]]]),
        ),
        (
            // Nothing heard: initdead, the fence command fails, its retry succeeds, the group
            // starts.
            "fence-command",
            core_seed(
                fence_cmd,
                &[
                    &probed,
                    &timeouts(10),
                    &[[100, FENCE_RESULT, 0, 0]],
                    &timeouts(2),
                    &[[50, FENCE_RESULT, 1, 0], ok],
                ],
            ),
        ),
        (
            // Nothing heard: initdead, the watchdog wait (2.9 s), active; then no ping node
            // answers: isolated, it releases the group and stops petting until it is stopped.
            "fence-watchdog-isolated",
            core_seed(fence_wd, &[&probed, &timeouts(10 + 29), &[ok, [10, HEALTH, 0x04, 0], ok]]),
        ),
        (
            // The probe finds the resource running; the peer holds nothing and hears us: the
            // group is adopted without a start; then a shutdown stops it.
            "adopted-shutdown",
            core_seed(
                fence_wd,
                &[&[[0, ANSWER, OK, 0], [10, FRAME, PEER_STANDBY, 0], [10, SHUTDOWN, 0, 0], ok]],
            ),
        ),
        (
            // A shutdown while probing, and a stop that fails: under fence watchdog the node
            // stays, holding, and stops petting.
            "shutdown-probing",
            core_seed(fence_wd, &[&[[0, SHUTDOWN, 0, 0], ok, failed]]),
        ),
    ]
}

/// Every request `hapair` sends, and lines the server refuses.
fn control_seeds() -> Seeds {
    vec![
        ("status", text("status")),
        ("status-json", text("status json\n")),
        ("status-prometheus", text("status prometheus")),
        ("standby", text("standby\n")),
        ("takeover", text("takeover")),
        ("maintenance-on", text("maintenance on")),
        ("cleanup-web", text("cleanup web\n")),
        ("cleanup-too-long", text(&format!("cleanup {}", "r".repeat(40)))),
        ("too-many-words", text("status json extra")),
        ("not-utf8", vec![b's', 0xff, 0xfe]),
    ]
}

/// The boards' configurations, every directive, and files `check` refuses.
fn config_seeds() -> Seeds {
    vec![
        ("lab", repo_file("board/lab/hapair.conf")),
        ("pc-pair", repo_file("board/pc-pair/hapair.conf")),
        ("pc-pair-active-active", repo_file("board/pc-pair/active-active.conf")),
        ("every-directive", text(EVERY_DIRECTIVE)),
        ("crlf", text(&EVERY_DIRECTIVE.replace('\n', "\r\n"))),
        ("keepalive-not-below-deadtime", text(&format!("{MINIMAL}keepalive 2s\ndeadtime 1s\n"))),
        ("unterminated-quote", text(&format!("{MINIMAL}check x \"true\n"))),
        ("not-utf8", [MINIMAL.as_bytes(), b"node \xff\n"].concat()),
    ]
}

/// The boards' kernel command lines, quoting, several lines and lists, and refused flags.
fn cmdline_seeds() -> Seeds {
    vec![
        ("lab-alpha", repo_file("board/lab/alpha.cmdline")),
        ("pc-pair-beta", repo_file("board/pc-pair/beta.cmdline")),
        (
            "quoted",
            text(
                "ro hapair.control=\"/run/a \\\"b\\\".sock\" hapair.restart_limit=\"3 in 10m\" \
                 hapair.watchdog=\"/dev/watchdog timeout 5s\" foo=\"x y\"\n",
            ),
        ),
        (
            "lines-and-lists",
            text(
                "hapair.standby=1\nhapair.ping=192.0.2.1 hapair.ping=192.0.2.2\n\
                  hapair.serial=/dev/ttyS1 hapair.deadtime=3s hapair.disable=0\n",
            ),
        ),
        ("unknown-flag", text("quiet hapair.bogus=1")),
        ("not-overridable", text("hapair.resource=x")),
        ("empty-value", text("hapair.deadtime=")),
    ]
}

/// The md fixtures: every level, progress line and member flag.
fn mdstat_seeds() -> Seeds {
    [
        "raid1-clean",
        "raid1-recovery",
        "raid5-failed",
        "raid6-check-spare",
        "raid10-write-mostly",
        "reshape-replacement",
        "resync-pending-delayed",
        "inactive",
    ]
    .into_iter()
    .map(|name| (name, repo_file(&format!("tests/fixtures/mdstat/{name}"))))
    .collect()
}

/// Inputs of the lm78 fixture (tests/fixtures/hwmon/lm78-ok) going out of their limits.
fn hwmon_seeds() -> Seeds {
    let temp_readings = [
        "42000\n", "43000\n", "45000\n", "50000\n", "55000\n", "61000\n", "62000\n", "63000\n",
        "49000\n", "48000\n", "47000\n",
    ];
    vec![
        // temp1: max 60, max_hyst 50; it warms past max and cools down.
        (
            "temp-over-max",
            hwmon("temp1_input", ["", "60000\n", "", "50000\n", "0\n"], &temp_readings),
        ),
        // in0: 1.4 to 1.6 V, a read error, then below min.
        (
            "voltage-below-min",
            hwmon(
                "in0_input",
                ["1400\n", "1600\n", "", "", "0\n"],
                &["1504\n", "1505\n", "x\n", "1300\n", "1301\n", "1302\n", "1504\n"],
            ),
        ),
        // fan1: min 1500 RPM, alarm set, the fan stops.
        (
            "fan-alarm",
            hwmon(
                "fan1_input",
                ["1500\n", "", "", "", "1\n"],
                &["2657\n", "2657\n", "0\n", "0\n", "0\n", "-1\n"],
            ),
        ),
        ("not-an-input", hwmon("power1_input", ["", "", "", "", ""], &["7\n"])),
    ]
}

/// The fixture agent's meta-data, the scanner's edge cases, what is not meta-data, and the
/// real Dummy agent's when resource-agents is installed.
fn metadata_seeds() -> Seeds {
    let mut seeds = vec![
        ("fixture", repo_file("tests/fixtures/agents/metadata/minimal.xml")),
        ("entities-comments-cdata", text(METADATA_EDGES)),
        ("unterminated", text("<resource-agent name=\"x\"><parameters><parameter name=\"a")),
        ("not-meta-data", text("<html><body>no agent</body></html>")),
    ];
    let dummy = std::process::Command::new("/usr/lib/ocf/resource.d/heartbeat/Dummy")
        .arg("meta-data")
        .env("OCF_ROOT", "/usr/lib/ocf")
        .output();
    if let Some(out) = dummy.ok().filter(|o| o.status.success()) {
        seeds.push(("heartbeat-dummy", out.stdout));
    }
    seeds
}

/// The heartbeat fixtures (ha.cf, haresources and authkeys, NUL-separated) and one with what
/// cannot be converted, a stonith password and a secret.
fn heartbeat_seeds() -> Seeds {
    let heartbeat = |dir: &str| {
        let file = |name: &str| repo_file(&format!("{dir}/{name}"));
        [file("ha.cf"), vec![0], file("haresources"), vec![0], file("authkeys")].concat()
    };
    vec![
        ("lab", heartbeat("board/lab/heartbeat")),
        ("mcast-ucast-md5", heartbeat("tests/fixtures/heartbeat/mcast-ucast-md5")),
        ("serial-bcast-sha1", heartbeat("tests/fixtures/heartbeat/serial-bcast-sha1")),
        ("ucast-single-crc", heartbeat("tests/fixtures/heartbeat/ucast-single-crc")),
        ("active-active", heartbeat("tests/fixtures/heartbeat/active-active")),
        (
            "stonith-and-gaps",
            text(
                "node a\nnode b\nstonith_host * baytech 10.0.0.3 mylogin mysecretpassword\n\
                 keepalive 500ms\ndeadtime 0.1\nwatchdog /dev/watchdog\nrespawn x /bin/y\n\
                 \0a 192.0.2.9/24/eth0/192.0.2.255 Filesystem::/dev/md0::/srv::ext4 \\\n\
                 drbddisk::r0 apache2\nb other\n\0auth 2\n2 md5 not-a-real-secret\n3 rot13 x\n",
            ),
        ),
    ]
}

/// A configuration that uses every directive, with quoting, IPv6 and a two-line ucast.
const EVERY_DIRECTIVE: &str = r#"node alpha
node beta   # comment
keepalive 100ms
warntime 300ms
deadtime 500ms
initdead 10s
authkey /etc/hapair/authkey
udpport 6694
control "/run/hapair dir/hapair.sock"
control_group hapair
statedir /var/lib/hapair
serial /dev/ttyS0 baud 9600
bcast eth1
mcast eth1 239.0.0.94 ttl 2
mcast eth2 ff02::94
ucast eth3 198.51.100.1
ucast eth3 198.51.100.2
home beta
auto_failback on
resource ip 192.0.2.100/24 dev eth0 garp 3 garp_interval 1s garp_refresh 1m
resource ip 2001:db8:1::100/64 dev eth0 name vip6
resource exec web start="systemctl start \"web\"" stop="systemctl stop web" timeout 30s
resource lsb apache2
resource ocf heartbeat:Filesystem device=/dev/md0 directory="/srv/my data" fstype=ext4 name fs0
monitor_interval 2s
restart_limit 0 in 1m
watchdog /dev/watchdog timeout 5s
hwmon lm78 root /sys/class/hwmon
sensor lm78/temp1 max 70 crit 80.5
sensor lm78/in0 min 3.135 max 3.465
raid /proc/mdstat
ping 192.0.2.254 2001:db8::fe
check disk "test -w /srv/ok" interval 30s timeout 2s
fence /usr/sbin/fence_ipmilan -a "192.0.2.30" -l admin
notify /etc/hapair/notify
realtime on priority 60
"#;

/// The least a valid configuration needs.
const MINIMAL: &str = "node a\nnode b\nauthkey /etc/hapair/authkey\nbcast eth0\n";

/// Meta-data with what the scanner skips or decodes: comments, CDATA, a processing
/// instruction, entities, single quotes, nested elements and an empty `<parameters/>`.
const METADATA_EDGES: &str = r#"<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
<!-- <resource-agent name="commented-out"> -->
<resource-agent name='a&amp;b &lt;c&gt;' version="0.1">
<longdesc><![CDATA[ <parameter name="in-cdata"/> ]]></longdesc>
<parameters>
<parameter name="ip" unique='yes' required="true"><content type="string" default="&quot;x&quot;"/></parameter>
<parameter name="nic"/>
</parameters>
<parameters/>
<actions>
<action name="monitor" timeout="20s" interval="10" depth="0"/>
<action name="monitor" timeout="1min" interval="1h" depth="10"/>
<action name="start" timeout="90msec"/>
<action name="stop" timeout="soon"/>
</actions>
</resource-agent>
"#;

/// An hwmon input: its file name, its `_min`, `_max`, `_crit`, `_max_hyst` and `_alarm`
/// files, and its readings, NUL-separated (`hapair::drivers::fuzz::hwmon_value`).
fn hwmon(name: &str, files: [&str; 5], readings: &[&str]) -> Vec<u8> {
    let mut parts = vec![name];
    parts.extend(files);
    parts.extend(readings);
    parts.join("\0").into_bytes()
}

/// Echo replies: to a datagram socket, to a raw one (behind an IP header, also one with
/// options), ICMPv6 replies (no header on either kind of socket), and what must not count.
fn ping_seeds() -> Seeds {
    let reply = |icmp: Icmp, ident: u16, cookie: u64| {
        let mut echo = [0u8; ECHO_LEN];
        let sent = hapair::core::time::Instant::from_millis(1234);
        encode_echo(&mut echo, icmp, ident, 3, cookie, sent);
        echo[field::TYPE] = icmp.echo_reply();
        echo
    };
    let ip_header = |words: u8| {
        let mut h = vec![0u8; usize::from(words) * 4];
        h[0] = 0x40 | words; // version 4, header length in 32-bit words
        h[9] = 1; // ICMP
        h
    };
    let ours = reply(Icmp::V4, PING_IDENT, PING_COOKIE);
    let mut request = ours;
    request[field::TYPE] = Icmp::V4.echo_request();
    let ours6 = reply(Icmp::V6, PING_IDENT, PING_COOKIE);
    let mut request6 = ours6;
    request6[field::TYPE] = Icmp::V6.echo_request();
    let other = |icmp, ident| reply(icmp, ident, PING_COOKIE).to_vec();
    vec![
        ("datagram", ours.to_vec()),
        ("raw", [ip_header(5), ours.to_vec()].concat()),
        ("raw-with-options", [ip_header(6), ours.to_vec()].concat()),
        ("raw-other-id", [ip_header(5), other(Icmp::V4, PING_IDENT ^ 1)].concat()),
        ("other-cookie", reply(Icmp::V4, PING_IDENT, PING_COOKIE ^ (1 << 63)).to_vec()),
        ("request", request.to_vec()),
        ("truncated", ours[..ECHO_LEN - 1].to_vec()),
        ("v6", ours6.to_vec()),
        ("v6-other-id", other(Icmp::V6, PING_IDENT ^ 1)),
        ("v6-other-cookie", reply(Icmp::V6, PING_IDENT, PING_COOKIE ^ 1).to_vec()),
        ("v6-request", request6.to_vec()),
        ("v6-behind-a-header", [vec![0x60; 40], ours6.to_vec()].concat()),
    ]
}

/// Answers to each kind of request (the first byte picks the request,
/// `hapair::drivers::fuzz::netlink_request`).
fn netlink_seeds() -> Seeds {
    const RTM_NEWLINK: u16 = 16;
    const RTM_NEWADDR: u16 = 20;
    const NLMSG_DONE: u16 = 3;
    let seq = NETLINK_SEQ;
    let mut link = vec![0u8, 0, 1, 0]; // ifinfomsg: family, pad, type (ARPHRD_ETHER)
    link.extend_from_slice(&NETLINK_INDEX.to_ne_bytes());
    link.extend_from_slice(&0x1_0003u32.to_ne_bytes()); // IFF_UP | IFF_BROADCAST | IFF_LOWER_UP
    link.extend_from_slice(&0u32.to_ne_bytes()); // change mask
    link.extend(rtattr(3, b"lan9\0")); // IFLA_IFNAME
    link.extend(rtattr(16, &[6])); // IFLA_OPERSTATE: up
    link.extend(rtattr(1, &[2, 0, 0, 0, 0, 9])); // IFLA_ADDRESS
    let addr = |family: u8, prefix: u8, index: u32, attr: u16, octets: &[u8]| {
        let mut body = vec![family, prefix, 0, 0];
        body.extend_from_slice(&index.to_ne_bytes());
        body.extend(rtattr(attr, octets));
        nlmsg(RTM_NEWADDR, seq, &body)
    };
    let v4 = [192, 0, 2, 100];
    let v6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00];
    let pick = |n: u8, parts: Vec<Vec<u8>>| [vec![n], parts.concat()].concat();
    let done = nlmsg(NLMSG_DONE, seq, &0u32.to_ne_bytes());
    vec![
        ("link", pick(0, vec![nlmsg(RTM_NEWLINK, seq, &link), nl_error(seq, 0)])),
        ("link-missing", pick(0, vec![nl_error(seq, 19)])), // ENODEV
        ("add-v4-ack", pick(1, vec![nl_error(seq, 0)])),
        ("add-v6-exists", pick(2, vec![nl_error(seq, 17)])), // EEXIST
        ("del-v4-late-answer-first", pick(3, vec![nl_error(seq - 1, 0), nl_error(seq, 99)])),
        (
            "has-v4-dump",
            pick(
                5,
                vec![
                    addr(2, 24, NETLINK_INDEX + 1, 2, &v4), // another interface
                    addr(2, 24, NETLINK_INDEX, 2, &v4),     // IFA_LOCAL on lan9
                    done.clone(),
                ],
            ),
        ),
        ("has-v6-dump", pick(6, vec![addr(10, 64, NETLINK_INDEX, 1, &v6), done])),
        ("truncated", pick(4, vec![nl_error(seq, 0)[..19].to_vec()])),
        // A late answer whose length is not a multiple of 4: the next message starts after
        // its padding.
        (
            "unaligned-late-answer",
            pick(1, vec![nlmsg(RTM_NEWADDR, seq - 1, b"late!"), nl_error(seq, 0)]),
        ),
    ]
}
