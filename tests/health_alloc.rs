//! Steady-state health work does not allocate: after setup, hwmon reads, /proc/mdstat reads
//! and parses, sensor judging, check scheduling and health reports are counted by a global
//! allocator that tallies this thread's allocations. One test per binary, so no other test
//! thread runs while it counts.

use hapair::core::time::{Duration, Instant};
use hapair::drivers::hwmon::Hwmon;
use hapair::drivers::mdstat::MdStatReader;
use hapair::health::{
    CheckExit, CheckSchedule, CheckSpec, HealthMonitor, Reasons, SensorPolicy, Source,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: defers to the system allocator; the counter is a const-initialized thread-local
// without destructor, so touching it never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn steady_state_health_work_allocates_nothing() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let policy = SensorPolicy { debounce_reads: 3, horizon: Duration::from_secs(60) };
    let mut hw = Hwmon::open(&root.join("hwmon/lm78-ok"), &["lm78"], &[], policy).unwrap();
    let mut md = MdStatReader::open(&root.join("mdstat/raid5-failed")).unwrap();
    let mut checks = CheckSchedule::new(&[CheckSpec::default()], Instant::ZERO).unwrap();
    let mut monitor = HealthMonitor::new();
    let mut reasons = Reasons::new();

    let before = allocations();
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
    let used = allocations() - before;
    assert!(monitor.health().has(hapair::wire::Health::RAID));
    assert!(monitor.health().has(hapair::wire::Health::CHECK));
    assert_eq!(used, 0, "allocations in 100 steady-state rounds");
}
