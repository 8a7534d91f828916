//! Steady-state health work does not allocate: after setup, hwmon reads, /proc/mdstat reads
//! and parses, sensor judging, check scheduling, the BMC's rounds (`ipmi`) and health reports
//! are counted by a global allocator that tallies this thread's allocations
//! (`common/alloc.rs`, slot 0).

use hapair::core::time::{Duration, Instant};
use hapair::drivers::hwmon::Hwmon;
use hapair::drivers::ipmi::{Conversation, IpmiSource, Request};
use hapair::drivers::mdstat::MdStatReader;
use hapair::health::{
    CheckExit, CheckSchedule, CheckSpec, HealthMonitor, Reasons, SensorPolicy, Source,
};
use std::path::Path;

use crate::common::alloc;

#[test]
fn steady_state_health_work_allocates_nothing() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let policy = SensorPolicy { debounce_reads: 3, horizon: Duration::from_secs(60) };
    let mut hw = Hwmon::open(&root.join("hwmon/lm78-ok"), &["lm78"], &[], policy).unwrap();
    let mut md = MdStatReader::open(&root.join("mdstat/raid5-failed")).unwrap();
    let mut checks = CheckSchedule::new(&[CheckSpec::default()], Instant::ZERO).unwrap();
    let mut monitor = HealthMonitor::new();
    let mut reasons = Reasons::new();

    let _counters = alloc::exclusive();
    alloc::count_this_thread(Some(0));
    for i in 0..100u64 {
        let now = Instant::from_millis(i * 1000);
        assert_eq!(hw.read(now), 0);
        reasons.clear();
        hw.reasons(&mut reasons);
        monitor.handle_report(Source::Sensor, &reasons);
        reasons.clear();
        md.read().unwrap().reasons(&mut reasons);
        monitor.handle_report(Source::Raid, &reasons);
        if let Some(c) = checks.poll_start(now) {
            checks.handle_exit(c, CheckExit::Exited(1));
        }
        reasons.clear();
        for (_, exit) in checks.failing() {
            hapair::health::check_reason(&mut reasons, "db", exit);
        }
        monitor.handle_report(Source::Check, &reasons);
        let _ = monitor.poll_change();
    }
    alloc::count_this_thread(None);
    let used = alloc::calls(0);
    assert!(monitor.health().has(hapair::wire::Health::RAID));
    assert!(monitor.health().has(hapair::wire::Health::CHECK));
    assert_eq!(used, 0, "allocations in 100 steady-state rounds");
}

/// A BMC answering from fixed buffers, as ipmi_sim answers (the records of
/// board/qemu-pair/bmc.sdrs as `sdrcomp -r` compiles them, the fixture; a SEL of at most 32
/// entries): nothing it does allocates, so the count is the conversation's.
struct FixedBmc {
    records: [(usize, usize); 2],
    sdr: Vec<u8>,
    temp: u8,
    sel: [[u8; 16]; 32],
    sel_len: usize,
    out: [u8; 64],
}

impl FixedBmc {
    fn add_sel(&mut self, sensor_type: u8, data1: u8) {
        let id = self.sel_len as u16 + 1;
        let [lo, hi] = id.to_le_bytes();
        self.sel[self.sel_len] =
            [lo, hi, 0x02, 0, 0, 0, 0, 0x01, 0, 0x04, sensor_type, 9, 0x6f, data1, 0xff, 0x03];
        self.sel_len += 1;
    }

    /// The answer to `r` (completion code first).
    fn answer(&mut self, r: &Request) -> &[u8] {
        let d = r.data();
        let o = &mut self.out;
        let n = match (r.netfn, r.cmd) {
            (0x0a, 0x20) => {
                o[..4].copy_from_slice(&[0, 0x51, 2, 0]);
                15
            }
            (0x0a, 0x22) => {
                o[..3].copy_from_slice(&[0, 1, 0]);
                3
            }
            (0x0a, 0x23) => {
                let id = u16::from_le_bytes([d[2], d[3]]);
                let at = if id == 0 { 0 } else { usize::from(id) - 1 };
                let (start, len) = self.records[at];
                let next: u16 = if at + 1 < self.records.len() { at as u16 + 2 } else { 0xffff };
                let (off, count) = (usize::from(d[4]), usize::from(d[5]));
                let end = (off + count).min(len);
                o[0] = 0;
                o[1..3].copy_from_slice(&next.to_le_bytes());
                o[3..3 + end - off].copy_from_slice(&self.sdr[start + off..start + end]);
                3 + end - off
            }
            (0x04, 0x2d) => {
                let raw = if d[0] == 1 { self.temp } else { 200 };
                o[..5].copy_from_slice(&[0, raw, 0xc0, 0, 0]);
                5
            }
            (0x0a, 0x40) => {
                let n = self.sel_len as u8;
                o[..15].copy_from_slice(&[0, 0x51, n, 0, 0, 0, n, 0, 0, 0, 0, 0, 0, 0, 0x0a]);
                15
            }
            (0x0a, 0x43) => {
                let id = u16::from_le_bytes([d[2], d[3]]);
                let at = match id {
                    _ if self.sel_len == 0 => usize::MAX,
                    0 => 0,
                    0xffff => self.sel_len - 1,
                    id => usize::from(id) - 1,
                };
                if at >= self.sel_len {
                    o[0] = 0xcb;
                    return &self.out[..1];
                }
                let next: u16 = if at + 1 < self.sel_len { at as u16 + 2 } else { 0xffff };
                o[0] = 0;
                o[1..3].copy_from_slice(&next.to_le_bytes());
                o[3..19].copy_from_slice(&self.sel[at]);
                19
            }
            _ => {
                o[0] = 0xc1;
                1
            }
        };
        &self.out[..n]
    }
}

/// Runs what is due of the conversation at `now` against `bmc`.
fn converse(c: &mut Conversation, bmc: &mut FixedBmc, now: Instant) {
    while let Some((msgid, request)) = c.poll_request(now) {
        c.handle_response(now, msgid, bmc.answer(&request));
    }
}

/// The BMC source's steady state allocates nothing: rounds of sensor readings and SEL polls,
/// new SEL entries judged (a failure latched and cleaned up, correctable errors counted),
/// reasons and their report. The kernel's IPMI device cannot be faked, so everything an answer
/// goes through (the conversation and the judges) is fed answers from fixed buffers; the
/// device's own paths (its open, the send and receive ioctls on fixed buffers) run against
/// /dev/null, which refuses the ioctls (ENOTTY) and is closed and opened again.
#[test]
fn ipmi_rounds_allocate_nothing() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let sdr = std::fs::read(root.join("ipmi/qemu-bmc.bsdr")).unwrap();
    let first = 5 + usize::from(sdr[4]);
    let second = 5 + usize::from(sdr[first + 4]);
    let mut bmc = FixedBmc {
        records: [(0, first), (first, second)],
        sdr,
        temp: 45,
        sel: [[0; 16]; 32],
        sel_len: 0,
        out: [0; 64],
    };
    let mut c = Conversation::new(Instant::ZERO, None);
    converse(&mut c, &mut bmc, Instant::ZERO);
    assert_eq!(c.sensors().len(), 2, "the records read at setup");
    let mut device = IpmiSource::open(Path::new("/dev/null"), None, Instant::ZERO);
    // Its first failures are warned about (a logger, when another test installed one,
    // allocates), and so is the silence they make after two rounds; the same failures
    // again are not.
    for at in [0, 2000] {
        device.poll(Instant::from_millis(at));
        device.handle_readable(Instant::from_millis(at));
    }
    assert!(device.conversation().reach().is_silent());
    let mut monitor = HealthMonitor::new();
    let mut reasons = Reasons::new();

    let _counters = alloc::exclusive();
    alloc::count_this_thread(Some(0));
    for round in 1..=100u64 {
        let now = Instant::from_millis(round * 2000);
        bmc.temp = if round % 20 < 10 { 45 } else { 85 };
        if round % 10 == 0 && bmc.sel_len < 31 {
            bmc.add_sel(0x0c, 0x00);
            bmc.add_sel(0x0c, if round == 50 { 0x01 } else { 0x00 });
        }
        converse(&mut c, &mut bmc, now);
        if round == 60 {
            c.handle_cleanup();
        }
        reasons.clear();
        c.reasons(&mut reasons, &"/dev/ipmi0");
        monitor.handle_report(Source::Ipmi, &reasons);
        let _ = monitor.poll_change();
        device.poll(now);
        device.handle_readable(now);
        reasons.clear();
        device.reasons(&mut reasons);
    }
    alloc::count_this_thread(None);
    let used = alloc::calls(0);
    assert_eq!(c.sel().entries(), 20);
    assert_eq!((c.sel().failures(), c.sel().correctable()), (1, 19));
    assert!(c.sel().latched().is_none(), "cleaned up at round 60");
    assert_eq!(used, 0, "allocations in 100 rounds of the BMC source");
}
