//! The node's health: what every health source found, folded into the `wire::Health`
//! bitmask the core reads and a bounded list of human reasons for `status` and `notify`.
//!
//! Pure and allocation-free. The drivers (`drivers::{errors, hwmon, ipmi, mdstat, ping,
//! watchdog}`) and
//! the children supervisor (for `check`) measure; they describe what is wrong as `Reasons`;
//! `HealthMonitor::handle_report` takes one source's reasons at a time (a source with no
//! reason is healthy). The event loop then drains `poll_change`, which yields the new
//! bitmask once after every change of a bit or of a reason, for `Input::Health` and notify.
//! Reasons should therefore name the problem, not carry live readings (those are shown by
//! `status` from the drivers), so that a rising temperature does not re-notify every read.
//!
//! Submodules, each a judgement fed with `now` and what the drivers observed: `errors` (the
//! kernel's error counters: rate over a sliding window, resets, wraps), `ipmi` (the BMC's
//! sensor records, readings against their thresholds, its event log's failures), `reach` (when
//! the ping nodes count as reachable: cadence, window, stalls), `pet` (when the loop pets
//! the watchdog: cadence and lag gate), `md` (what an md array's members mean), `sensor` (debounce,
//! hysteresis, trend for hwmon inputs) and `check` (when each `check` runs and what its exit
//! means); and `self_fence`, the S2 window of `fence watchdog` that the ping cadence must
//! keep. This module does no I/O and reads no clock.

pub mod check;
pub mod errors;
pub mod ipmi;
pub mod md;
pub mod pet;
pub mod reach;
pub mod self_fence;
pub mod sensor;

pub use check::{CheckExit, CheckSchedule, CheckSpec};
pub use sensor::{Breach, Limits, SensorJudge, SensorKind, SensorPolicy, Verdict};

use crate::wire::Health;
use core::fmt::{self, Write};

/// Longest reason kept, in bytes; longer ones are cut.
pub const REASON_LEN_MAX: usize = 64;
/// Reasons kept per source; more are counted and dropped.
pub const REASONS_PER_SOURCE_MAX: usize = 8;

/// One human-readable reason, e.g. `md0 degraded [U_]`.
pub type Reason = heapless::String<REASON_LEN_MAX>;

/// Where a health problem comes from; each has its `wire::Health` bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// hwmon sensors (`Health::SENSOR`).
    Sensor = 0,
    /// md arrays (`Health::RAID`).
    Raid = 1,
    /// ping nodes (`Health::PING`).
    Ping = 2,
    /// `check` commands (`Health::CHECK`).
    Check = 3,
    /// the hardware watchdog (`Health::WATCHDOG`).
    Watchdog = 4,
    /// kernel error counters (`Health::ERRORS`).
    Errors = 5,
    /// the BMC (`Health::IPMI`).
    Ipmi = 6,
    /// DRBD disks that are not UpToDate (`Health::DRBD`, SPEC §7.5).
    Drbd = 7,
}

impl Source {
    /// Every source, in bit order.
    pub const ALL: [Source; 8] = [
        Source::Sensor,
        Source::Raid,
        Source::Ping,
        Source::Check,
        Source::Watchdog,
        Source::Errors,
        Source::Ipmi,
        Source::Drbd,
    ];

    /// The `wire::Health` bit of this source.
    pub const fn bit(self) -> u16 {
        match self {
            Source::Sensor => Health::SENSOR,
            Source::Raid => Health::RAID,
            Source::Ping => Health::PING,
            Source::Check => Health::CHECK,
            Source::Watchdog => Health::WATCHDOG,
            Source::Errors => Health::ERRORS,
            Source::Ipmi => Health::IPMI,
            Source::Drbd => Health::DRBD,
        }
    }

    /// The name used in status (`sensor`, `raid`, `ping`, `check`, `watchdog`, `errors`,
    /// `ipmi`, `drbd`).
    pub const fn name(self) -> &'static str {
        match self {
            Source::Sensor => "sensor",
            Source::Raid => "raid",
            Source::Ping => "ping",
            Source::Check => "check",
            Source::Watchdog => "watchdog",
            Source::Errors => "errors",
            Source::Ipmi => "ipmi",
            Source::Drbd => "drbd",
        }
    }
}

/// A bounded list of reasons from one source. Pushing past the capacity counts and drops.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reasons {
    items: heapless::Vec<Reason, REASONS_PER_SOURCE_MAX>,
    dropped: u16,
}

impl Reasons {
    /// No reason: healthy.
    pub const fn new() -> Reasons {
        Reasons { items: heapless::Vec::new(), dropped: 0 }
    }

    /// Forgets every reason.
    pub fn clear(&mut self) {
        self.items.clear();
        self.dropped = 0;
    }

    /// Adds a reason, formatted in place (`reasons.push(format_args!("md{} degraded", 0))`);
    /// text past `REASON_LEN_MAX` bytes is cut at a character boundary.
    pub fn push(&mut self, args: fmt::Arguments<'_>) {
        let mut reason = Reason::new();
        // Truncated writes are the point: the error only says the text was cut.
        let _ = Truncating(&mut reason).write_fmt(args);
        if self.items.push(reason).is_err() {
            self.dropped = self.dropped.saturating_add(1);
        }
    }

    /// The reasons, in the order pushed.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        self.items.iter().map(|r| r.as_str())
    }

    /// Number of reasons kept.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when healthy.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty() && self.dropped == 0
    }

    /// Reasons that did not fit.
    pub fn dropped(&self) -> u16 {
        self.dropped
    }
}

/// A `fmt::Write` into a fixed string that keeps what fits and drops the rest.
struct Truncating<'a>(&'a mut Reason);

impl Write for Truncating<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            self.0.push(c).map_err(|_| fmt::Error)?;
        }
        Ok(())
    }
}

/// Every source's latest reasons and the bitmask they make.
///
/// Call protocol: each source reports with `handle_report` whenever it has evaluated (a
/// report identical to the previous one changes nothing); the loop drains `poll_change`
/// after feeding, and reads `health`/`reasons` for status.
#[derive(Clone, Debug, Default)]
pub struct HealthMonitor {
    sources: [Reasons; Source::ALL.len()],
    health: Health,
    changed: bool,
}

impl HealthMonitor {
    /// Healthy, with no change pending.
    pub fn new() -> HealthMonitor {
        HealthMonitor::default()
    }

    /// The latest reasons of `source`; empty means healthy. Returns true when this changed
    /// the monitor (a bit or a reason).
    pub fn handle_report(&mut self, source: Source, reasons: &Reasons) -> bool {
        let slot = &mut self.sources[source as usize];
        if slot == reasons {
            return false;
        }
        slot.clone_from(reasons);
        let mut bits = 0;
        for s in Source::ALL {
            if !self.sources[s as usize].is_empty() {
                bits |= s.bit();
            }
        }
        self.health = Health(bits);
        self.changed = true;
        true
    }

    /// The bitmask once after any change since the last call, else `None`.
    pub fn poll_change(&mut self) -> Option<Health> {
        core::mem::take(&mut self.changed).then_some(self.health)
    }

    /// The current bitmask.
    pub fn health(&self) -> Health {
        self.health
    }

    /// Every current reason with its source, sources in bit order.
    pub fn reasons(&self) -> impl Iterator<Item = (Source, &str)> + '_ {
        Source::ALL
            .into_iter()
            .flat_map(move |s| self.sources[s as usize].iter().map(move |r| (s, r)))
    }

    /// The reasons of one source.
    pub fn reasons_of(&self, source: Source) -> &Reasons {
        &self.sources[source as usize]
    }
}

/// Appends the reason for a failing `check` named `name` (nothing when `exit` is ok).
pub fn check_reason(reasons: &mut Reasons, name: &str, exit: CheckExit) {
    match exit {
        CheckExit::Exited(0) => {}
        CheckExit::Exited(code) => reasons.push(format_args!("check {name} exit {code}")),
        CheckExit::Signaled(sig) => reasons.push(format_args!("check {name} killed by {sig}")),
        CheckExit::TimedOut => reasons.push(format_args!("check {name} timed out")),
        CheckExit::SpawnFailed => reasons.push(format_args!("check {name} cannot start")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Reasons {
        let mut r = Reasons::new();
        r.push(format_args!("{text}"));
        r
    }

    #[test]
    fn bits_follow_reasons_and_changes_are_reported_once() {
        let mut m = HealthMonitor::new();
        assert_eq!(m.poll_change(), None);
        assert!(m.handle_report(Source::Raid, &one("md0 degraded [U_]")));
        assert!(m.handle_report(Source::Ping, &one("no ping node answers")));
        assert_eq!(m.poll_change(), Some(Health(Health::RAID | Health::PING)));
        assert_eq!(m.poll_change(), None);
        assert!(!m.handle_report(Source::Raid, &one("md0 degraded [U_]")), "same report");
        assert_eq!(m.poll_change(), None);
        assert!(m.handle_report(Source::Raid, &one("md1 degraded [_U]")), "new reason");
        assert_eq!(m.poll_change(), Some(Health(Health::RAID | Health::PING)));
        m.handle_report(Source::Raid, &Reasons::new());
        m.handle_report(Source::Ping, &Reasons::new());
        assert_eq!(m.poll_change(), Some(Health::OK));
        assert!(m.health().is_ok());
    }

    #[test]
    fn every_source_has_its_bit() {
        let mut m = HealthMonitor::new();
        for s in Source::ALL {
            m.handle_report(s, &one(s.name()));
            assert!(m.health().has(s.bit()));
        }
        let listed: Vec<_> = m.reasons().collect();
        assert_eq!(listed.len(), Source::ALL.len());
        assert_eq!(listed[4], (Source::Watchdog, "watchdog"));
        assert_eq!(listed[5], (Source::Errors, "errors"));
        assert_eq!(listed[6], (Source::Ipmi, "ipmi"));
        assert_eq!(m.health().0.count_ones() as usize, Source::ALL.len());
    }

    #[test]
    fn reasons_are_bounded_and_cut() {
        let mut r = Reasons::new();
        for i in 0..REASONS_PER_SOURCE_MAX + 3 {
            r.push(format_args!("{i} {}", "é".repeat(100)));
        }
        assert_eq!(r.len(), REASONS_PER_SOURCE_MAX);
        assert_eq!(r.dropped(), 3);
        assert!(r.iter().all(|s| s.len() <= REASON_LEN_MAX && s.starts_with(char::is_numeric)));
    }

    #[test]
    fn check_reasons_name_the_failure() {
        let mut r = Reasons::new();
        check_reason(&mut r, "db", CheckExit::Exited(0));
        assert!(r.is_empty());
        check_reason(&mut r, "db", CheckExit::Exited(2));
        check_reason(&mut r, "web", CheckExit::TimedOut);
        assert_eq!(r.iter().collect::<Vec<_>>(), ["check db exit 2", "check web timed out"]);
    }
}
