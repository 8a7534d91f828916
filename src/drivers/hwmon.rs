//! hwmon sensors: finds chips by the `name` file under a root (default /sys/class/hwmon),
//! opens every `in*`, `temp*` and `fan*` input once, and re-reads them with `pread` from
//! offset 0 (how sysfs attributes are re-read) into a stack buffer: no allocation and no
//! path lookup after `open`.
//!
//! Units are the kernel's (Documentation/hwmon/sysfs-interface.rst): mV for `in*_input`,
//! millidegrees Celsius for `temp*_input`, RPM for `fan*_input` (the driver has already
//! applied `fan*_div`, which is read once and shown). Limits come from the chip's `_min`,
//! `_max`, `_crit` and `temp*_max_hyst` files, read once at `open` (they are registers that
//! only the administrator changes), and are overridden or added by `sensor` lines
//! (`SensorOverride`, in user units; how is `health::sensor`, as is whether the per-input
//! `_alarm` file still counts). The chip-wide `alarms` bitmask (lm78 and other old drivers)
//! is read and shown, not judged: the per-input files say the same thing by name.
//! Alarm bits may also be one-shot (the lm78 raises its temperature alarm once when `max` is
//! crossed and clears it on read), so the comparison of values with limits carries the
//! judgement and the alarm only adds to it.
//!
//! The chip's attributes live in `hwmonN/` or, for old drivers, in `hwmonN/device/`; both are
//! searched. When two chips have the same name, the lowest `hwmonN` wins.
//!
//! The judging (limits, debounce, hysteresis, trend, the reason) is `health::sensor`; this
//! file only reads and feeds it.

use crate::core::time::Instant;
use crate::health::Reasons;
pub use crate::health::sensor::Reading;
use crate::health::sensor::{
    self, Limits, SensorJudge, SensorKind, SensorPolicy, UserLimits, Verdict,
};
use crate::limits::{HWMON_CHIPS_MAX, SENSORS_MAX};
use core::fmt;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The default root.
pub const HWMON_ROOT: &str = "/sys/class/hwmon";

/// A short name (chip or input), cut to fit.
pub type Name = heapless::String<32>;

/// One `sensor CHIP/INPUT [min X] [max X] [crit X]` line. Values are thousandths of the user
/// unit (V, °C, RPM) as `health::sensor::parse_user_milli` gives them: `max 70` is `70_000`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SensorOverride {
    /// Chip name as in its `name` file (`lm78`).
    pub chip: Name,
    /// Input name (`temp1`, `in0`, `fan2`).
    pub input: Name,
    /// New `min`, user units × 1000.
    pub min_milli: Option<i64>,
    /// New `max`, user units × 1000.
    pub max_milli: Option<i64>,
    /// New `crit`, user units × 1000.
    pub crit_milli: Option<i64>,
}

/// Why `Hwmon::open` failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HwmonError {
    /// No chip under the root has this name.
    ChipNotFound(Name),
    /// A `sensor` line names an input the chip does not have (`chip/input`).
    UnknownInput(Name),
    /// More chips or inputs than `limits` allows.
    TooMany,
    /// The root or an attribute could not be read.
    Io(io::ErrorKind),
}

impl fmt::Display for HwmonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HwmonError::ChipNotFound(n) => write!(f, "no hwmon chip named {n}"),
            HwmonError::UnknownInput(n) => write!(f, "no hwmon input {n}"),
            HwmonError::TooMany => write!(f, "too many hwmon chips or inputs"),
            HwmonError::Io(k) => write!(f, "hwmon: {k}"),
        }
    }
}

impl From<io::Error> for HwmonError {
    fn from(e: io::Error) -> HwmonError {
        HwmonError::Io(e.kind())
    }
}

/// One watched input and its latest reading.
#[derive(Debug)]
pub struct SensorInput {
    /// The chip's name (`lm78`).
    pub chip: Name,
    /// The input (`temp1`).
    pub input: Name,
    /// Which kind of input.
    pub kind: SensorKind,
    /// The `_label` file, when the chip has one.
    pub label: Option<Name>,
    /// The limits judged against: the chip's, with `sensor` lines applied.
    pub limits: Limits,
    /// `fan*_div`, shown only.
    pub fan_div: Option<u32>,
    /// The latest value, kernel units; `None` before the first good read.
    pub value: Option<i64>,
    /// The latest `_alarm` bit (false when the chip has none).
    pub alarm: bool,
    /// Reads that failed or did not parse.
    pub read_errors: u32,
    /// A `sensor` line replaced the chip's limits.
    overridden: bool,
    judge: SensorJudge,
    value_file: File,
    alarm_file: Option<File>,
}

impl SensorInput {
    /// The current judgement.
    pub fn verdict(&self) -> Verdict {
        self.judge.verdict()
    }
}

/// One watched chip.
#[derive(Debug)]
pub struct Chip {
    /// The chip's name.
    pub name: Name,
    /// The directory holding its attributes.
    pub dir: PathBuf,
    /// The chip-wide `alarms` bitmask, when the chip has one (latest read).
    pub alarms: Option<u64>,
    alarms_file: Option<File>,
}

/// Every watched chip and input.
#[derive(Debug)]
pub struct Hwmon {
    chips: heapless::Vec<Chip, HWMON_CHIPS_MAX>,
    inputs: heapless::Vec<SensorInput, SENSORS_MAX>,
    policy: SensorPolicy,
}

impl Hwmon {
    /// Finds each chip of `chip_names` under `root`, opens its inputs and applies the
    /// `sensor` lines. Allocates; call before the loop.
    pub fn open(
        root: &Path,
        chip_names: &[&str],
        overrides: &[SensorOverride],
        policy: SensorPolicy,
    ) -> Result<Hwmon, HwmonError> {
        let mut hw = Hwmon { chips: heapless::Vec::new(), inputs: heapless::Vec::new(), policy };
        for &name in chip_names {
            let dir = find_chip(root, name)?.ok_or_else(|| HwmonError::ChipNotFound(cut(name)))?;
            let alarms_file = File::open(dir.join("alarms")).ok();
            open_inputs(&dir, name, &mut hw.inputs)?;
            let chip = Chip { name: cut(name), dir, alarms: None, alarms_file };
            hw.chips.push(chip).map_err(|_| HwmonError::TooMany)?;
        }
        for o in overrides {
            let input = hw
                .inputs
                .iter_mut()
                .find(|i| i.chip == o.chip && i.input == o.input)
                .ok_or_else(|| HwmonError::UnknownInput(cut2(&o.chip, &o.input)))?;
            apply_override(input, o);
        }
        Ok(hw)
    }

    /// Reads every input and the chips' `alarms`, and judges the inputs. Returns the number
    /// of reads that failed (a failed input keeps its last verdict). Allocation-free.
    pub fn read(&mut self, now: Instant) -> usize {
        let mut errors = 0;
        for chip in self.chips.iter_mut() {
            if let Some(f) = &chip.alarms_file {
                chip.alarms = read_int(f).ok().and_then(|v| u64::try_from(v).ok());
            }
        }
        for input in self.inputs.iter_mut() {
            let alarm = input.alarm_file.as_ref().map(read_int).transpose();
            match (read_int(&input.value_file), alarm) {
                (Ok(value), Ok(alarm)) => {
                    input.value = Some(value);
                    input.alarm = alarm.is_some_and(|a| a != 0);
                    let judged_alarm = sensor::alarm_counts(input.alarm, input.overridden);
                    let (p, l) = (&self.policy, &input.limits);
                    input.judge.handle_sample(p, l, now, value, judged_alarm);
                }
                _ => {
                    errors += 1;
                    input.read_errors = input.read_errors.saturating_add(1);
                    input.judge.handle_read_error();
                }
            }
        }
        errors
    }

    /// The watched inputs, chip by chip, each chip's in sorted order (in, temp, fan).
    pub fn inputs(&self) -> &[SensorInput] {
        &self.inputs
    }

    /// The watched chips.
    pub fn chips(&self) -> &[Chip] {
        &self.chips
    }

    /// True when no input is bad or predicted to go bad.
    pub fn is_healthy(&self) -> bool {
        !self.inputs.iter().any(|i| i.verdict().is_unhealthy())
    }

    /// One reason per unhealthy input: `lm78/temp1 above max 70.0 C`,
    /// `lm78/temp1 predicted above crit 80.0 C`, `lm78/fan1 below min 3000 RPM`,
    /// `lm78/in0 alarm`.
    pub fn reasons(&self, reasons: &mut Reasons) {
        for i in self.inputs.iter() {
            sensor::reason(reasons, &i.chip, &i.input, i.kind, i.verdict());
        }
    }
}

fn cut(s: &str) -> Name {
    let mut n = Name::new();
    for c in s.chars() {
        if n.push(c).is_err() {
            break;
        }
    }
    n
}

fn cut2(a: &str, b: &str) -> Name {
    let mut n = cut(a);
    let _ = n.push('/');
    for c in b.chars() {
        if n.push(c).is_err() {
            break;
        }
    }
    n
}

/// The attribute directory of the first `hwmonN` (by N) whose `name` is `name`.
fn find_chip(root: &Path, name: &str) -> io::Result<Option<PathBuf>> {
    let mut found: Option<(u32, PathBuf)> = None;
    for entry in fs::read_dir(root)? {
        let entry = entry?;
        let file_name = entry.file_name();
        let Some(n) = file_name.to_str().and_then(|s| s.strip_prefix("hwmon")) else {
            continue;
        };
        let Ok(n) = n.parse::<u32>() else { continue };
        if found.as_ref().is_some_and(|(m, _)| *m < n) {
            continue;
        }
        let path = entry.path();
        for dir in [path.clone(), path.join("device")] {
            let chip_name = fs::read_to_string(dir.join("name")).unwrap_or_default();
            if chip_name.trim() == name {
                found = Some((n, dir));
                break;
            }
        }
    }
    Ok(found.map(|(_, d)| d))
}

/// `temp1_input` → (Temperature, 1).
pub(crate) fn parse_input_file(file: &str) -> Option<(SensorKind, u32)> {
    let stem = file.strip_suffix("_input")?;
    for kind in [SensorKind::Voltage, SensorKind::Temperature, SensorKind::Fan] {
        if let Some(n) = stem.strip_prefix(kind.prefix()) {
            return n.parse().ok().map(|n| (kind, n));
        }
    }
    None
}

fn open_inputs(
    dir: &Path,
    chip: &str,
    out: &mut heapless::Vec<SensorInput, SENSORS_MAX>,
) -> Result<(), HwmonError> {
    let mut found: Vec<(SensorKind, u32)> = Vec::new();
    for entry in fs::read_dir(dir)? {
        if let Some(k) = entry?.file_name().to_str().and_then(parse_input_file) {
            found.push(k);
        }
    }
    found.sort_by_key(|&(k, n)| (k as u8, n));
    for (kind, n) in found {
        let input = open_input(dir, chip, kind, n)?;
        out.push(input).map_err(|_| HwmonError::TooMany)?;
    }
    Ok(())
}

fn open_input(dir: &Path, chip: &str, kind: SensorKind, n: u32) -> Result<SensorInput, HwmonError> {
    let base = format!("{}{n}", kind.prefix());
    let attr = |suffix: &str| dir.join(format!("{base}_{suffix}"));
    let int = |suffix: &str| File::open(attr(suffix)).ok().and_then(|f| read_int(&f).ok());
    let label = fs::read_to_string(attr("label")).ok().map(|l| cut(l.trim()));
    let limits =
        Limits { min: int("min"), max: int("max"), crit: int("crit"), max_hyst: int("max_hyst") };
    let fan_div = int("div").and_then(|d| u32::try_from(d).ok());
    Ok(SensorInput {
        chip: cut(chip),
        input: cut(&base),
        kind,
        label,
        limits,
        fan_div,
        value: None,
        alarm: false,
        read_errors: 0,
        overridden: false,
        judge: SensorJudge::new(kind),
        value_file: File::open(attr("input"))?,
        alarm_file: File::open(attr("alarm")).ok(),
    })
}

fn apply_override(input: &mut SensorInput, o: &SensorOverride) {
    let line =
        UserLimits { min_milli: o.min_milli, max_milli: o.max_milli, crit_milli: o.crit_milli };
    input.limits = input.limits.overridden(input.kind, &line);
    input.overridden = true;
}

/// Reads a sysfs integer from offset 0 into a stack buffer.
fn read_int(file: &File) -> io::Result<i64> {
    let mut buf = [0u8; 32];
    let n = file.read_at(&mut buf, 0)?;
    parse_int(&buf[..n]).ok_or_else(|| io::Error::from(io::ErrorKind::InvalidData))
}

/// Parses `-1234\n` without allocating.
pub fn parse_int(bytes: &[u8]) -> Option<i64> {
    let text = core::str::from_utf8(bytes).ok()?.trim();
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_file_names() {
        assert_eq!(parse_input_file("temp1_input"), Some((SensorKind::Temperature, 1)));
        assert_eq!(parse_input_file("in0_input"), Some((SensorKind::Voltage, 0)));
        assert_eq!(parse_input_file("fan3_input"), Some((SensorKind::Fan, 3)));
        assert_eq!(parse_input_file("intrusion0_input"), None);
        assert_eq!(parse_input_file("temp1_max"), None);
        assert_eq!(parse_input_file("power1_input"), None);
    }

    #[test]
    fn sysfs_integers_parse() {
        assert_eq!(parse_int(b"-42\n"), Some(-42));
        assert_eq!(parse_int(b"x"), None);
    }
}
