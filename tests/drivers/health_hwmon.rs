//! hwmon driver on fake sysfs trees (tests/fixtures/hwmon): every sensor kind, alarms,
//! debounce, hysteresis, `sensor` overrides and trend prediction. Each test copies a fixture
//! into its own temporary directory and rewrites attribute files between reads, as the
//! kernel would change them; time is passed by hand.

use crate::common::TempDir;
use hapair::core::time::{Duration, Instant};
use hapair::drivers::hwmon::{Hwmon, HwmonError, SensorInput, SensorOverride};
use hapair::health::{Breach, Limits, Reasons, SensorKind, SensorPolicy, Verdict};
use std::fs;
use std::path::Path;

/// A copy of a fixture tree in a directory of its own, removed on drop (also when the test
/// fails).
struct Tree(TempDir);

impl Tree {
    fn copy(fixture: &str, test: &str) -> Tree {
        let dst = TempDir::new(&format!("hwmon-{test}"));
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hwmon").join(fixture);
        copy_dir(&src, dst.path());
        Tree(dst)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    fn set(&self, rel: &str, value: i64) {
        fs::write(self.0.join(rel), format!("{value}\n")).unwrap();
    }
}

fn copy_dir(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    for entry in fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            fs::copy(entry.path(), to).unwrap();
        }
    }
}

const POLICY: SensorPolicy = SensorPolicy { debounce_reads: 3, horizon: Duration::ZERO };

fn input<'a>(hw: &'a Hwmon, name: &str) -> &'a SensorInput {
    hw.inputs().iter().find(|i| i.input == name).unwrap()
}

fn reasons(hw: &Hwmon) -> Vec<String> {
    let mut r = Reasons::new();
    hw.reasons(&mut r);
    r.iter().map(str::to_owned).collect()
}

/// Reads `n` times, one second apart, starting after `*t`.
fn read_n(hw: &mut Hwmon, t: &mut u64, n: usize) {
    for _ in 0..n {
        *t += 1000;
        assert_eq!(hw.read(Instant::from_millis(*t)), 0, "read errors");
    }
}

#[test]
fn lm78_tree_is_found_by_name_with_every_input_and_limit() {
    let tree = Tree::copy("lm78-ok", "find");
    let mut hw = Hwmon::open(tree.path(), &["lm78"], &[], POLICY).unwrap();
    let names: Vec<&str> = hw.inputs().iter().map(|i| i.input.as_str()).collect();
    assert_eq!(
        names,
        ["in0", "in1", "in2", "in3", "in4", "in5", "in6", "temp1", "fan1", "fan2", "fan3"]
    );
    assert!(hw.chips()[0].dir.ends_with("hwmon0"), "not the acpitz chip");
    let in2 = input(&hw, "in2");
    assert_eq!(in2.kind, SensorKind::Voltage);
    assert_eq!(in2.limits, Limits { min: Some(3136), max: Some(3472), ..Limits::default() });
    let temp1 = input(&hw, "temp1");
    assert_eq!(temp1.limits.max, Some(60_000));
    assert_eq!(temp1.limits.max_hyst, Some(50_000));
    assert_eq!(temp1.limits.crit, None, "lm78 has no crit");
    assert_eq!(input(&hw, "fan1").fan_div, Some(2));
    assert_eq!(input(&hw, "fan1").limits.min, Some(1500));
    assert!(hw.inputs().iter().all(|i| i.label.is_none() && i.value.is_none()));
    let mut t = 0;
    read_n(&mut hw, &mut t, 3);
    assert_eq!(input(&hw, "temp1").value, Some(42_000));
    assert_eq!(input(&hw, "in2").value, Some(3312));
    assert_eq!(input(&hw, "fan3").value, Some(4115));
    assert_eq!(hw.chips()[0].alarms, Some(0));
    assert!(hw.is_healthy(), "{:?}", reasons(&hw));
}

#[test]
fn every_kind_goes_bad_after_debounce_and_says_why() {
    let tree = Tree::copy("lm78-ok", "kinds");
    let mut hw = Hwmon::open(tree.path(), &["lm78"], &[], POLICY).unwrap();
    let mut t = 0;
    read_n(&mut hw, &mut t, 1);
    tree.set("hwmon0/in2_input", 3600); // +3.3V too high
    tree.set("hwmon0/temp1_input", 61_000);
    tree.set("hwmon0/fan1_input", 900); // stalling
    read_n(&mut hw, &mut t, 2);
    assert!(hw.is_healthy(), "two reads are not enough");
    read_n(&mut hw, &mut t, 1);
    assert_eq!(input(&hw, "in2").verdict(), Verdict::Bad(Breach::Max(3472)));
    assert_eq!(input(&hw, "temp1").verdict(), Verdict::Bad(Breach::Max(60_000)));
    assert_eq!(input(&hw, "fan1").verdict(), Verdict::Bad(Breach::Min(1500)));
    assert_eq!(
        reasons(&hw),
        [
            "lm78/in2 above max 3.472 V",
            "lm78/temp1 above max 60.0 C",
            "lm78/fan1 below min 1500 RPM"
        ]
    );
}

#[test]
fn alarm_files_count_as_out_of_limits() {
    let tree = Tree::copy("lm78-ok", "alarm");
    let mut hw = Hwmon::open(tree.path(), &["lm78"], &[], POLICY).unwrap();
    let mut t = 0;
    tree.set("hwmon0/in5_alarm", 1);
    tree.set("hwmon0/alarms", 1 << 5);
    read_n(&mut hw, &mut t, 3);
    assert!(input(&hw, "in5").alarm);
    assert_eq!(hw.chips()[0].alarms, Some(32));
    assert_eq!(input(&hw, "in5").verdict(), Verdict::Bad(Breach::Alarm));
    assert_eq!(reasons(&hw), ["lm78/in5 alarm"]);
    tree.set("hwmon0/in5_alarm", 0);
    read_n(&mut hw, &mut t, 3);
    assert!(hw.is_healthy());
}

#[test]
fn temperature_returns_only_below_the_chips_max_hyst() {
    let tree = Tree::copy("lm78-ok", "hyst");
    let mut hw = Hwmon::open(tree.path(), &["lm78"], &[], POLICY).unwrap();
    let mut t = 0;
    tree.set("hwmon0/temp1_input", 65_000);
    read_n(&mut hw, &mut t, 3);
    assert!(!hw.is_healthy());
    tree.set("hwmon0/temp1_input", 55_000); // under max, above max_hyst
    read_n(&mut hw, &mut t, 10);
    assert!(!hw.is_healthy(), "hysteresis holds");
    tree.set("hwmon0/temp1_input", 50_000);
    read_n(&mut hw, &mut t, 2);
    assert!(!hw.is_healthy(), "debounced on the way back too");
    read_n(&mut hw, &mut t, 1);
    assert!(hw.is_healthy());
}

#[test]
fn voltage_returns_after_two_percent_margin() {
    let tree = Tree::copy("lm78-ok", "vmargin");
    let mut hw = Hwmon::open(tree.path(), &["lm78"], &[], POLICY).unwrap();
    let mut t = 0;
    tree.set("hwmon0/in0_input", 1350);
    read_n(&mut hw, &mut t, 3);
    assert_eq!(input(&hw, "in0").verdict(), Verdict::Bad(Breach::Min(1400)));
    tree.set("hwmon0/in0_input", 1420); // inside, under 1400 + 2% = 1428
    read_n(&mut hw, &mut t, 5);
    assert!(!hw.is_healthy());
    tree.set("hwmon0/in0_input", 1428);
    read_n(&mut hw, &mut t, 3);
    assert!(hw.is_healthy());
}

#[test]
fn sensor_lines_override_and_add_limits_and_mute_the_chip_alarm() {
    let tree = Tree::copy("lm78-ok", "override");
    let overrides = [
        SensorOverride {
            chip: "lm78".try_into().unwrap(),
            input: "temp1".try_into().unwrap(),
            max_milli: Some(45_000), // 45 °C
            crit_milli: Some(50_000),
            ..SensorOverride::default()
        },
        SensorOverride {
            chip: "lm78".try_into().unwrap(),
            input: "fan2".try_into().unwrap(),
            min_milli: Some(500_000), // 500 RPM, added: the chip's min is 0
            ..SensorOverride::default()
        },
    ];
    let mut hw = Hwmon::open(tree.path(), &["lm78"], &overrides, POLICY).unwrap();
    let temp1 = input(&hw, "temp1");
    assert_eq!(temp1.limits.max, Some(45_000));
    assert_eq!(temp1.limits.crit, Some(50_000));
    assert_eq!(temp1.limits.max_hyst, None, "the chip's hyst was for its own max");
    let mut t = 0;
    tree.set("hwmon0/temp1_alarm", 1); // against the chip's 60 °C: ignored now
    tree.set("hwmon0/temp1_input", 44_000);
    read_n(&mut hw, &mut t, 3);
    assert_eq!(input(&hw, "temp1").verdict(), Verdict::Ok);
    assert_eq!(input(&hw, "fan2").verdict(), Verdict::Bad(Breach::Min(500)));
    tree.set("hwmon0/temp1_input", 51_000);
    read_n(&mut hw, &mut t, 3);
    assert_eq!(input(&hw, "temp1").verdict(), Verdict::Bad(Breach::Crit(50_000)));
}

#[test]
fn unknown_chips_and_inputs_are_refused() {
    let tree = Tree::copy("lm78-ok", "unknown");
    let err = Hwmon::open(tree.path(), &["it87"], &[], POLICY).unwrap_err();
    assert_eq!(err, HwmonError::ChipNotFound("it87".try_into().unwrap()));
    let bad = SensorOverride {
        chip: "lm78".try_into().unwrap(),
        input: "temp2".try_into().unwrap(),
        max_milli: Some(1),
        ..SensorOverride::default()
    };
    let err = Hwmon::open(tree.path(), &["lm78"], &[bad], POLICY).unwrap_err();
    assert_eq!(err.to_string(), "no hwmon input lm78/temp2");
    let missing = tree.0.join("nowhere");
    assert!(matches!(Hwmon::open(&missing, &["lm78"], &[], POLICY), Err(HwmonError::Io(_))));
}

#[test]
fn crit_labels_and_device_subdirectory() {
    let tree = Tree::copy("crit", "crit");
    let mut hw = Hwmon::open(tree.path(), &["nct6775", "w83627hf", "acpitz"], &[], POLICY).unwrap();
    assert_eq!(hw.chips().len(), 3);
    assert!(hw.chips()[1].dir.ends_with("hwmon1/device"));
    let temp2 = &hw.inputs()[2];
    assert_eq!((temp2.chip.as_str(), temp2.input.as_str()), ("nct6775", "temp2"));
    assert_eq!(temp2.label.as_deref(), Some("CPUTIN"));
    assert_eq!(temp2.limits.crit, Some(100_000));
    assert_eq!(hw.inputs()[0].label.as_deref(), Some("Vcore"));
    let mut t = 0;
    read_n(&mut hw, &mut t, 3);
    assert!(hw.is_healthy(), "{:?}", reasons(&hw));
    tree.set("hwmon2/temp2_input", 101_000);
    tree.set("hwmon0/temp1_input", 106_000);
    read_n(&mut hw, &mut t, 3);
    assert_eq!(
        reasons(&hw),
        ["nct6775/temp2 above crit 100.0 C", "acpitz/temp1 above crit 105.0 C"]
    );
}

#[test]
fn rising_temperature_is_predicted_before_the_limit() {
    let tree = Tree::copy("lm78-ok", "trend");
    let policy = SensorPolicy { debounce_reads: 3, horizon: Duration::from_secs(60) };
    let mut hw = Hwmon::open(tree.path(), &["lm78"], &[], policy).unwrap();
    let mut t = 0;
    // +0.25 °C per 1 s read from 42 °C: max (60 °C) at 72 s; a 60 s horizon sees it early.
    let mut predicted_at = None;
    for step in 0..100 {
        let temp = 42_000 + step * 250;
        tree.set("hwmon0/temp1_input", temp);
        read_n(&mut hw, &mut t, 1);
        match input(&hw, "temp1").verdict() {
            Verdict::Predicted(b) => {
                assert_eq!(b, Breach::Max(60_000));
                predicted_at.get_or_insert(temp);
            }
            Verdict::Bad(_) => break,
            Verdict::Ok => {}
        }
    }
    let at = predicted_at.expect("predicted before going bad");
    assert!(at < 60_000, "predicted at {at}");
    assert!(!hw.is_healthy());
}

#[test]
fn a_read_error_is_counted_and_keeps_the_state() {
    let tree = Tree::copy("lm78-ok", "readerr");
    let mut hw = Hwmon::open(tree.path(), &["lm78"], &[], POLICY).unwrap();
    fs::write(tree.0.join("hwmon0/temp1_input"), "garbage\n").unwrap();
    assert_eq!(hw.read(Instant::from_millis(1)), 1);
    assert_eq!(input(&hw, "temp1").read_errors, 1);
    assert_eq!(input(&hw, "temp1").value, None);
    assert!(hw.is_healthy());
}
