//! Steady-state health work does not allocate: after setup, hwmon reads, /proc/mdstat reads
//! and parses, sensor judging, check scheduling and health reports are counted by a global
//! allocator that tallies this thread's allocations (`common/alloc.rs`, slot 0).

use hapair::core::time::{Duration, Instant};
use hapair::drivers::hwmon::Hwmon;
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
