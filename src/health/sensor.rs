//! Judging hwmon readings: limits, debounce, hysteresis and trend prediction, for one input
//! at a time. Pure: values and instants come in, a `Verdict` comes out.
//!
//! It does not read sysfs (that is `drivers::hwmon`) and does not format status; it writes
//! the health reason of a verdict (`reason`), in user units (`Reading`).
//!
//! Units are the kernel's throughout (SPEC §2 `sensor` lines are converted on the way in):
//! millivolts for `in*`, millidegrees Celsius for `temp*`, RPM for `fan*`.
//!
//! Rules, per input:
//! - A sample is *out* when it is above `crit` or `max`, below `min`, or the chip's own alarm
//!   bit for it is set. `out` for `debounce_reads` consecutive reads makes the input bad.
//! - A bad input is good again after `debounce_reads` consecutive reads that are back inside
//!   every limit by the hysteresis margin with the alarm bit clear. The margin is 2 °C for
//!   temperatures (or the chip's own `temp*_max_hyst` when it gives one for `max`), and 2% of
//!   the limit for voltages and fans. A read error resets the streak but keeps the state.
//! - Limits are the chip's (`_min`, `_max`, `_crit`, `temp*_max_hyst`), each replaced by what
//!   a `sensor` line gives (`Limits::overridden`); a new `max` drops the chip's `max_hyst`,
//!   which was its return threshold for the old one. The chip's alarm bit for an input counts
//!   only while no `sensor` line overrides that input (`alarm_counts`): the chip compares
//!   against its own registers, which the line has replaced.
//! - Trend: the last `TREND_WINDOW` samples are fitted by least squares; when the line
//!   crosses `crit` (or `max` when there is no `crit`) upwards, or `min` downwards, within
//!   `horizon`, the input is "degraded (predicted)" — debounced like the limits, so one noisy
//!   window does not flap. The fit needs `TREND_SAMPLES_MIN` samples.

use super::Reasons;
use crate::core::time::{Duration, Instant};
use core::fmt;
use heapless::HistoryBuf;

/// Samples kept for the trend fit.
pub const TREND_WINDOW: usize = 16;
/// Samples the trend fit needs before it predicts anything.
pub const TREND_SAMPLES_MIN: usize = 6;
/// Hysteresis for temperatures, in millidegrees (2 °C).
pub const TEMP_HYSTERESIS_MILLI_C: i64 = 2000;
/// Hysteresis for voltages and fans, in percent of the limit.
pub const HYSTERESIS_PERCENT: i64 = 2;

/// Which kind of hwmon input a sensor is; sets its unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SensorKind {
    /// `in*`: a voltage in millivolts.
    Voltage,
    /// `temp*`: a temperature in millidegrees Celsius.
    Temperature,
    /// `fan*`: a fan speed in RPM.
    Fan,
}

impl SensorKind {
    /// The attribute prefix in sysfs (`in`, `temp`, `fan`).
    pub const fn prefix(self) -> &'static str {
        match self {
            SensorKind::Voltage => "in",
            SensorKind::Temperature => "temp",
            SensorKind::Fan => "fan",
        }
    }

    /// Converts a value in user units times 1000 (V, °C, RPM as written in `sensor` lines,
    /// see `parse_user_milli`) to kernel units.
    pub const fn kernel_from_user_milli(self, milli: i64) -> i64 {
        match self {
            SensorKind::Voltage | SensorKind::Temperature => milli,
            SensorKind::Fan => milli / 1000,
        }
    }
}

/// The limits of one input, in kernel units. `None` means "no such limit".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Below this the input is out of limits.
    pub min: Option<i64>,
    /// Above this the input is out of limits.
    pub max: Option<i64>,
    /// Above this the input is out of limits (critical).
    pub crit: Option<i64>,
    /// The chip's own return threshold for `max` (`temp*_max_hyst`), used instead of the
    /// default margin when present.
    pub max_hyst: Option<i64>,
}

/// The limits of a `sensor CHIP/INPUT [min X] [max X] [crit X]` line, in thousandths of the
/// user unit (V, °C, RPM) as `parse_user_milli` gives them: `max 70` is `70_000`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserLimits {
    /// New `min`.
    pub min_milli: Option<i64>,
    /// New `max`.
    pub max_milli: Option<i64>,
    /// New `crit`.
    pub crit_milli: Option<i64>,
}

impl Limits {
    /// These (the chip's) limits of an input of `kind` with a `sensor` line applied: each
    /// limit the line gives replaces the chip's, and a new `max` drops the chip's
    /// `max_hyst` (its return threshold for the old `max`).
    pub fn overridden(self, kind: SensorKind, line: &UserLimits) -> Limits {
        let kernel = |v: Option<i64>| v.map(|v| kind.kernel_from_user_milli(v));
        Limits {
            min: kernel(line.min_milli).or(self.min),
            max: kernel(line.max_milli).or(self.max),
            crit: kernel(line.crit_milli).or(self.crit),
            max_hyst: if line.max_milli.is_some() { None } else { self.max_hyst },
        }
    }
}

/// Whether the chip's alarm bit for an input counts as out of limits: only while no `sensor`
/// line `overridden` that input's limits (the chip compares against its own registers).
pub const fn alarm_counts(alarm: bool, overridden: bool) -> bool {
    alarm && !overridden
}

/// Which limit a bad or predicted verdict is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Breach {
    /// Below `min`.
    Min(i64),
    /// Above `max`.
    Max(i64),
    /// Above `crit`.
    Crit(i64),
    /// The chip's alarm bit is set while the value is inside the limits we know.
    Alarm,
}

/// The judgement on one input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Inside its limits and not heading out.
    Ok,
    /// Inside its limits, but the trend crosses a limit within the horizon.
    Predicted(Breach),
    /// Out of its limits (debounced).
    Bad(Breach),
}

impl Verdict {
    /// True for anything but `Ok`: the node is unhealthy because of this input.
    pub const fn is_unhealthy(self) -> bool {
        !matches!(self, Verdict::Ok)
    }
}

/// Tunables shared by every input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SensorPolicy {
    /// Consecutive reads needed to go bad, and to come back (default 3).
    pub debounce_reads: u8,
    /// How far ahead the trend may predict a crossing; zero turns prediction off.
    pub horizon: Duration,
}

impl Default for SensorPolicy {
    fn default() -> SensorPolicy {
        SensorPolicy { debounce_reads: 3, horizon: Duration::from_secs(300) }
    }
}

/// A debounced flag: it sets after `n` consecutive `set` reads and clears after `n`
/// consecutive `clear` reads; anything else resets the streak.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Debounce {
    on: bool,
    streak: u8,
}

impl Debounce {
    /// Feeds one read and returns the (possibly new) state.
    pub fn feed(&mut self, n: u8, set: bool, clear: bool) -> bool {
        let toward = if self.on { clear } else { set };
        if toward {
            self.streak = self.streak.saturating_add(1);
            if self.streak >= n.max(1) {
                self.on = !self.on;
                self.streak = 0;
            }
        } else {
            self.streak = 0;
        }
        self.on
    }

    /// The current state.
    pub const fn is_on(self) -> bool {
        self.on
    }

    /// Forgets the current streak (a read failed) but keeps the state.
    pub fn reset_streak(&mut self) {
        self.streak = 0;
    }
}

/// The running judgement of one input. Allocation-free; about 300 bytes.
#[derive(Clone, Debug)]
pub struct SensorJudge {
    kind: SensorKind,
    bad: Debounce,
    predicted: Debounce,
    breach: Option<Breach>,
    predicted_breach: Option<Breach>,
    history: HistoryBuf<(u64, i64), TREND_WINDOW>,
}

impl SensorJudge {
    /// A judge for an input of `kind`, good until proven otherwise.
    pub const fn new(kind: SensorKind) -> SensorJudge {
        SensorJudge {
            kind,
            bad: Debounce { on: false, streak: 0 },
            predicted: Debounce { on: false, streak: 0 },
            breach: None,
            predicted_breach: None,
            history: HistoryBuf::new(),
        }
    }

    /// Feeds one reading taken at `now` and returns the verdict after it.
    pub fn handle_sample(
        &mut self,
        policy: &SensorPolicy,
        limits: &Limits,
        now: Instant,
        value: i64,
        alarm: bool,
    ) -> Verdict {
        let out = breach_of(limits, value, alarm);
        let back = out.is_none() && self.inside_with_margin(limits, value);
        if let Some(b) = out {
            self.breach = Some(b);
        }
        let n = policy.debounce_reads;
        self.bad.feed(n, out.is_some(), back);
        self.history.write((now.total_millis(), value));
        let forecast = forecast(&self.history, limits, now, policy.horizon);
        if let Some(b) = forecast {
            self.predicted_breach = Some(b);
        }
        let cleared = forecast.is_none();
        self.predicted.feed(n, forecast.is_some() && out.is_none(), cleared);
        self.verdict()
    }

    /// A read of this input failed: the streaks start over, the state stays.
    pub fn handle_read_error(&mut self) {
        self.bad.reset_streak();
        self.predicted.reset_streak();
    }

    /// The current verdict.
    pub fn verdict(&self) -> Verdict {
        if self.bad.is_on() {
            Verdict::Bad(self.breach.unwrap_or(Breach::Alarm))
        } else if self.predicted.is_on() {
            Verdict::Predicted(self.predicted_breach.unwrap_or(Breach::Alarm))
        } else {
            Verdict::Ok
        }
    }

    /// The kind this judge was made for.
    pub const fn kind(&self) -> SensorKind {
        self.kind
    }

    fn inside_with_margin(&self, limits: &Limits, value: i64) -> bool {
        let margin = |limit: i64| match self.kind {
            SensorKind::Temperature => TEMP_HYSTERESIS_MILLI_C,
            // Saturating: the limits are whatever sysfs says, i64::MIN and i64::MAX included.
            SensorKind::Voltage | SensorKind::Fan => {
                limit.saturating_abs().saturating_mul(HYSTERESIS_PERCENT) / 100
            }
        };
        let max_back = match (limits.max, limits.max_hyst) {
            (Some(max), Some(hyst)) if hyst < max => value <= hyst,
            (Some(max), _) => value <= max.saturating_sub(margin(max)),
            (None, _) => true,
        };
        let crit_back = limits.crit.is_none_or(|c| value <= c.saturating_sub(margin(c)));
        let min_back = limits.min.is_none_or(|m| value >= m.saturating_add(margin(m)));
        max_back && crit_back && min_back
    }
}

/// Which limit `value` breaks, the most severe first; the alarm bit counts as a breach.
pub fn breach_of(limits: &Limits, value: i64, alarm: bool) -> Option<Breach> {
    if let Some(c) = limits.crit.filter(|&c| value > c) {
        return Some(Breach::Crit(c));
    }
    if let Some(m) = limits.max.filter(|&m| value > m) {
        return Some(Breach::Max(m));
    }
    if let Some(m) = limits.min.filter(|&m| value < m) {
        return Some(Breach::Min(m));
    }
    alarm.then_some(Breach::Alarm)
}

/// Least-squares line through the history; the limit it crosses within `horizon` of `now`.
pub fn forecast(
    history: &HistoryBuf<(u64, i64), TREND_WINDOW>,
    limits: &Limits,
    now: Instant,
    horizon: Duration,
) -> Option<Breach> {
    let n = history.len();
    if n < TREND_SAMPLES_MIN || horizon == Duration::ZERO {
        return None;
    }
    let t0 = history.oldest().map_or(0, |&(t, _)| t);
    let (mut st, mut sv) = (0.0f64, 0.0f64);
    for &(t, v) in history.oldest_ordered() {
        st += t.saturating_sub(t0) as f64;
        sv += v as f64;
    }
    let (mt, mv) = (st / n as f64, sv / n as f64);
    let (mut stt, mut stv) = (0.0f64, 0.0f64);
    for &(t, v) in history.oldest_ordered() {
        let dt = t.saturating_sub(t0) as f64 - mt;
        stt += dt * dt;
        stv += dt * (v as f64 - mv);
    }
    if stt <= 0.0 {
        return None;
    }
    let slope = stv / stt;
    let at = (now.total_millis().saturating_sub(t0) + horizon.total_millis()) as f64;
    let predicted = mv + slope * (at - mt);
    let upper = limits.crit.map(Breach::Crit).or(limits.max.map(Breach::Max));
    match upper {
        Some(Breach::Crit(l) | Breach::Max(l)) if slope > 0.0 && predicted > l as f64 => {
            return upper;
        }
        _ => {}
    }
    match limits.min {
        Some(m) if slope < 0.0 && predicted < m as f64 => Some(Breach::Min(m)),
        _ => None,
    }
}

/// A value in kernel units printed in user units (`3.300 V`, `71.5 C`, `2500 RPM`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reading(pub SensorKind, pub i64);

impl fmt::Display for Reading {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (sign, abs) = (if self.1 < 0 { "-" } else { "" }, self.1.unsigned_abs());
        match self.0 {
            SensorKind::Voltage => write!(f, "{sign}{}.{:03} V", abs / 1000, abs % 1000),
            SensorKind::Temperature => write!(f, "{sign}{}.{} C", abs / 1000, abs % 1000 / 100),
            SensorKind::Fan => write!(f, "{} RPM", self.1),
        }
    }
}

/// Appends the reason for input `chip/input` of `kind` when `verdict` makes the node
/// unhealthy: `lm78/temp1 above max 70.0 C`, `lm78/temp1 predicted above crit 80.0 C`,
/// `lm78/fan1 below min 3000 RPM`, `lm78/in0 alarm`.
pub fn reason(reasons: &mut Reasons, chip: &str, input: &str, kind: SensorKind, verdict: Verdict) {
    let (pre, breach) = match verdict {
        Verdict::Ok => return,
        Verdict::Bad(b) => ("", b),
        Verdict::Predicted(b) => ("predicted ", b),
    };
    match breach {
        Breach::Min(l) => {
            reasons.push(format_args!("{chip}/{input} {pre}below min {}", Reading(kind, l)))
        }
        Breach::Max(l) => {
            reasons.push(format_args!("{chip}/{input} {pre}above max {}", Reading(kind, l)))
        }
        Breach::Crit(l) => {
            reasons.push(format_args!("{chip}/{input} {pre}above crit {}", Reading(kind, l)))
        }
        Breach::Alarm => reasons.push(format_args!("{chip}/{input} {pre}alarm")),
    }
}

/// Parses a `sensor` line value in user units (`70`, `1.25`, `-5.5`, `3000`) into thousandths
/// of that unit, so `1.25` V gives 1250 and `70` °C gives 70000. At most three decimals.
pub fn parse_user_milli(text: &str) -> Option<i64> {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty()
        || frac.len() > 3
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: i64 = int.parse().ok()?;
    let mut milli = whole.checked_mul(1000)?;
    let mut scale = 100;
    for b in frac.bytes() {
        milli = milli.checked_add(i64::from(b - b'0') * scale)?;
        scale /= 10;
    }
    Some(if neg { -milli } else { milli })
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: SensorPolicy = SensorPolicy { debounce_reads: 3, horizon: Duration::ZERO };

    fn temp_limits() -> Limits {
        Limits { max: Some(70_000), crit: Some(80_000), ..Limits::default() }
    }

    fn feed(j: &mut SensorJudge, p: &SensorPolicy, l: &Limits, t: &mut u64, v: i64) -> Verdict {
        *t += 1000;
        j.handle_sample(p, l, Instant::from_millis(*t), v, false)
    }

    #[test]
    fn debounce_needs_consecutive_reads() {
        let (mut j, l, mut t) = (SensorJudge::new(SensorKind::Temperature), temp_limits(), 0);
        assert_eq!(feed(&mut j, &POLICY, &l, &mut t, 71_000), Verdict::Ok);
        assert_eq!(feed(&mut j, &POLICY, &l, &mut t, 71_000), Verdict::Ok);
        assert_eq!(feed(&mut j, &POLICY, &l, &mut t, 60_000), Verdict::Ok, "streak broken");
        for _ in 0..2 {
            assert_eq!(feed(&mut j, &POLICY, &l, &mut t, 71_000), Verdict::Ok);
        }
        assert_eq!(feed(&mut j, &POLICY, &l, &mut t, 71_000), Verdict::Bad(Breach::Max(70_000)));
    }

    /// Limits are what a chip's files say, any i64: the margin is never an overflow (found
    /// through the hwmon fuzz target: tests/fuzz/corpus/hwmon_value/crash-voltage-limit-*).
    #[test]
    fn extreme_limits_are_judged_without_overflow() {
        let big = Limits { max: Some(i64::MAX), crit: Some(i64::MAX / 2 + 1), ..Limits::default() };
        let small = Limits { min: Some(i64::MIN), ..Limits::default() };
        for kind in [SensorKind::Voltage, SensorKind::Fan, SensorKind::Temperature] {
            // Inside every limit, so the way back (limit minus margin) is computed.
            for l in [big, small] {
                let (mut j, mut t) = (SensorJudge::new(kind), 0);
                for _ in 0..4 {
                    assert_eq!(feed(&mut j, &POLICY, &l, &mut t, 0), Verdict::Ok);
                }
            }
        }
    }

    #[test]
    fn hysteresis_holds_until_margin() {
        let (mut j, l, mut t) = (SensorJudge::new(SensorKind::Temperature), temp_limits(), 0);
        for _ in 0..3 {
            feed(&mut j, &POLICY, &l, &mut t, 81_000);
        }
        assert_eq!(j.verdict(), Verdict::Bad(Breach::Crit(80_000)));
        // 69 °C is inside max but not by 2 °C: stays bad however long.
        for _ in 0..10 {
            assert!(feed(&mut j, &POLICY, &l, &mut t, 69_000).is_unhealthy());
        }
        feed(&mut j, &POLICY, &l, &mut t, 67_000);
        feed(&mut j, &POLICY, &l, &mut t, 67_000);
        assert!(j.verdict().is_unhealthy());
        assert_eq!(feed(&mut j, &POLICY, &l, &mut t, 67_000), Verdict::Ok);
    }

    #[test]
    fn chip_max_hyst_is_the_return_threshold() {
        let l = Limits { max: Some(60_000), max_hyst: Some(50_000), ..Limits::default() };
        let (mut j, mut t) = (SensorJudge::new(SensorKind::Temperature), 0);
        for _ in 0..3 {
            feed(&mut j, &POLICY, &l, &mut t, 61_000);
        }
        for _ in 0..5 {
            assert!(feed(&mut j, &POLICY, &l, &mut t, 55_000).is_unhealthy());
        }
        for _ in 0..3 {
            feed(&mut j, &POLICY, &l, &mut t, 50_000);
        }
        assert_eq!(j.verdict(), Verdict::Ok);
    }

    #[test]
    fn fan_and_voltage_use_percent_margin_and_min() {
        let l = Limits { min: Some(3000), ..Limits::default() };
        let (mut j, mut t) = (SensorJudge::new(SensorKind::Fan), 0);
        for _ in 0..3 {
            feed(&mut j, &POLICY, &l, &mut t, 2000);
        }
        assert_eq!(j.verdict(), Verdict::Bad(Breach::Min(3000)));
        for _ in 0..5 {
            feed(&mut j, &POLICY, &l, &mut t, 3050); // inside, but under min + 2% (3060)
        }
        assert!(j.verdict().is_unhealthy());
        for _ in 0..3 {
            feed(&mut j, &POLICY, &l, &mut t, 3060);
        }
        assert_eq!(j.verdict(), Verdict::Ok);
    }

    #[test]
    fn alarm_bit_counts_as_out() {
        let (mut j, l) = (SensorJudge::new(SensorKind::Voltage), Limits::default());
        for i in 0..3 {
            j.handle_sample(&POLICY, &l, Instant::from_millis(i), 3300, true);
        }
        assert_eq!(j.verdict(), Verdict::Bad(Breach::Alarm));
    }

    #[test]
    fn read_error_resets_the_streak() {
        let (mut j, l, mut t) = (SensorJudge::new(SensorKind::Temperature), temp_limits(), 0);
        feed(&mut j, &POLICY, &l, &mut t, 90_000);
        feed(&mut j, &POLICY, &l, &mut t, 90_000);
        j.handle_read_error();
        assert_eq!(feed(&mut j, &POLICY, &l, &mut t, 90_000), Verdict::Ok);
    }

    #[test]
    fn trend_predicts_before_the_limit() {
        let p = SensorPolicy { debounce_reads: 3, horizon: Duration::from_secs(60) };
        let (mut j, l, mut t) = (SensorJudge::new(SensorKind::Temperature), temp_limits(), 0);
        // +0.5 °C per 1 s read from 40 °C: crit (80 °C) in 80 s, inside 60 s from 20 s on.
        let mut first_predicted = None;
        for i in 0..60 {
            let v = 40_000 + i * 500;
            let verdict = feed(&mut j, &p, &l, &mut t, v);
            if let Verdict::Predicted(b) = verdict {
                assert_eq!(b, Breach::Crit(80_000));
                first_predicted.get_or_insert(v);
            }
            if matches!(verdict, Verdict::Bad(_)) {
                break;
            }
        }
        let v = first_predicted.expect("a prediction before the limit");
        assert!(v < 70_000, "predicted at {v}, before max");
    }

    #[test]
    fn flat_or_falling_trend_predicts_nothing() {
        let p = SensorPolicy { debounce_reads: 1, horizon: Duration::from_secs(3600) };
        let (mut j, l, mut t) = (SensorJudge::new(SensorKind::Temperature), temp_limits(), 0);
        for i in 0..40 {
            assert_eq!(feed(&mut j, &p, &l, &mut t, 60_000 - i * 10), Verdict::Ok);
        }
    }

    #[test]
    fn a_sensor_line_replaces_what_it_gives_and_silences_the_alarm() {
        let chip = Limits { min: Some(1), max: Some(60_000), crit: None, max_hyst: Some(50_000) };
        let temp = SensorKind::Temperature;
        assert_eq!(chip.overridden(temp, &UserLimits::default()), chip, "a line with no limit");
        let crit = UserLimits { crit_milli: Some(80_000), ..UserLimits::default() };
        assert_eq!(chip.overridden(temp, &crit), Limits { crit: Some(80_000), ..chip });
        let max = UserLimits { max_milli: Some(70_000), ..UserLimits::default() };
        let want = Limits { max: Some(70_000), max_hyst: None, ..chip };
        assert_eq!(chip.overridden(temp, &max), want, "the chip's hysteresis was for its max");
        // Fans are written in RPM: thousandths of an RPM become RPM.
        let fan = UserLimits { min_milli: Some(3_000_000), ..UserLimits::default() };
        assert_eq!(Limits::default().overridden(SensorKind::Fan, &fan).min, Some(3000));
        assert!(alarm_counts(true, false));
        assert!(!alarm_counts(true, true), "the chip compares against replaced registers");
        assert!(!alarm_counts(false, false));
    }

    #[test]
    fn readings_and_reasons_are_in_user_units() {
        assert_eq!(Reading(SensorKind::Voltage, 3300).to_string(), "3.300 V");
        assert_eq!(Reading(SensorKind::Temperature, 71_560).to_string(), "71.5 C");
        assert_eq!(Reading(SensorKind::Temperature, -5_500).to_string(), "-5.5 C");
        assert_eq!(Reading(SensorKind::Fan, 2500).to_string(), "2500 RPM");
        let mut r = Reasons::new();
        let t = SensorKind::Temperature;
        reason(&mut r, "lm78", "temp1", t, Verdict::Ok);
        reason(&mut r, "lm78", "temp1", t, Verdict::Bad(Breach::Max(70_000)));
        reason(&mut r, "lm78", "temp1", t, Verdict::Predicted(Breach::Crit(80_000)));
        reason(&mut r, "lm78", "fan1", SensorKind::Fan, Verdict::Bad(Breach::Min(3000)));
        reason(&mut r, "lm78", "in0", SensorKind::Voltage, Verdict::Bad(Breach::Alarm));
        let got: Vec<&str> = r.iter().collect();
        assert_eq!(
            got,
            [
                "lm78/temp1 above max 70.0 C",
                "lm78/temp1 predicted above crit 80.0 C",
                "lm78/fan1 below min 3000 RPM",
                "lm78/in0 alarm"
            ]
        );
    }

    #[test]
    fn user_values_parse_to_thousandths() {
        assert_eq!(parse_user_milli("70"), Some(70_000));
        assert_eq!(parse_user_milli("1.25"), Some(1250));
        assert_eq!(parse_user_milli("-5.5"), Some(-5500));
        assert_eq!(parse_user_milli("1.2345"), None);
        assert_eq!(parse_user_milli("x"), None);
        assert_eq!(parse_user_milli(""), None);
        assert_eq!(parse_user_milli("."), None);
        assert_eq!(SensorKind::Fan.kernel_from_user_milli(3_000_000), 3000);
    }
}
