//! Judging the kernel's error counters (SPEC §7.6): how many errors a source counted within a
//! sliding window, against its limit, and whether any uncorrected memory error is on record.
//! Pure and allocation-free: counter samples and instants come in, a `Verdict` comes out.
//!
//! It does not read sysfs (that is `drivers::errors`) and does not format status.
//!
//! Rules, per source:
//! - The first readable sample is the baseline: errors counted before it (since boot) are not
//!   in the window. Each later sample adds its increase to the window.
//! - The window is a ring of `BUCKETS` counts, each `window / BUCKETS` wide (1 ms at least),
//!   indexed by `now / width`. The count "within the window" is the sum of the ring: the
//!   errors of the current bucket and of the `BUCKETS - 1` before it. It therefore covers
//!   between `window - width` and `window` of history: an error is forgotten up to one
//!   bucket (1/64 of the window: about 56 s of `1h`) early, never late. No heap: the ring is
//!   an array.
//! - A counter lower than the last sample was reset (a driver reload, EDAC's
//!   `reset_counters`), unless it wrapped: it wrapped when the last sample was within
//!   `WRAP_MARGIN` of the top of its width (32 bits for EDAC and `ioerr_cnt`, 64 for the net
//!   statistics), and then the increase is what went past the top plus the new value. After a
//!   reset the new value counts as the increase (errors since the reset), never a negative.
//! - More than `max` errors within the window: `OverLimit`, until the window has passed them.
//! - EDAC only: an uncorrected error count above zero (`ue_count`, since boot or since the
//!   counters were reset) is `Uncorrected`, whatever the rate; resetting the counters clears it.
//! - A source whose files are gone (ENOENT) is `Gone`, a reason of its own; another read error
//!   is `Unreadable`. Either forgets the baseline: the next readable sample is a new baseline.

use super::Reasons;
use crate::core::time::{Duration, Instant};
use core::fmt;

/// Buckets in the sliding window: its precision is a 64th of the window.
pub const BUCKETS: usize = 64;
/// A counter that goes down from within this much of the top of its width wrapped.
pub const WRAP_MARGIN: u64 = 1 << 24;

/// What kind of counter a source is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// EDAC memory controllers: corrected (`ce_count`) and uncorrected (`ue_count`) errors.
    Edac,
    /// A network interface's receive and transmit errors.
    Net,
    /// A block device's I/O errors.
    Disk,
}

impl ErrorKind {
    /// The counter's width in bits, as the kernel writes it.
    pub const fn width_bits(self) -> u32 {
        match self {
            // `ce_count`/`ue_count` are u32 (`%u`); `ioerr_cnt` is an atomic_t (`0x%x`).
            ErrorKind::Edac | ErrorKind::Disk => 32,
            // rtnl_link_stats64 (`%llu`).
            ErrorKind::Net => 64,
        }
    }

    /// The keyword of the `errors` line.
    pub const fn name(self) -> &'static str {
        match self {
            ErrorKind::Edac => "edac",
            ErrorKind::Net => "net",
            ErrorKind::Disk => "disk",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One read of a source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sample {
    /// The counters: errors counted (for EDAC the corrected ones) and, for EDAC, the
    /// uncorrected ones (0 for the others).
    Read { count: u64, uncorrected: u64 },
    /// The source's files are gone (the device vanished).
    Gone,
    /// The files are there but could not be read or parsed.
    Unreadable,
}

/// The judgement on one source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Within its limit (or not read yet).
    Ok,
    /// More than `max` errors within the window.
    OverLimit,
    /// An uncorrected memory error is on record.
    Uncorrected,
    /// The device vanished.
    Gone,
    /// The counters cannot be read.
    Unreadable,
}

impl Verdict {
    /// True for anything but `Ok`.
    pub const fn is_unhealthy(self) -> bool {
        !matches!(self, Verdict::Ok)
    }

    /// The state as `status` names it.
    pub const fn name(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::OverLimit => "over-limit",
            Verdict::Uncorrected => "uncorrected",
            Verdict::Gone => "gone",
            Verdict::Unreadable => "unreadable",
        }
    }
}

/// The running judgement of one source. About 600 bytes, no heap.
#[derive(Clone, Debug)]
pub struct ErrorJudge {
    kind: ErrorKind,
    max: u64,
    width_ms: u64,
    ring: [u64; BUCKETS],
    /// The bucket number (`now / width_ms`) of the newest sample.
    head: u64,
    /// The last raw counter, `None` before the baseline or after a failed read.
    last: Option<u64>,
    /// Errors counted since the baseline (across resets and wraps).
    total: u64,
    uncorrected: u64,
    resets: u32,
    verdict: Verdict,
}

impl ErrorJudge {
    /// A judge of `kind` allowing `max` errors within `window`.
    pub fn new(kind: ErrorKind, max: u32, window: Duration) -> ErrorJudge {
        ErrorJudge {
            kind,
            max: u64::from(max),
            width_ms: (window.total_millis() / BUCKETS as u64).max(1),
            ring: [0; BUCKETS],
            head: 0,
            last: None,
            total: 0,
            uncorrected: 0,
            resets: 0,
            verdict: Verdict::Ok,
        }
    }

    /// Feeds one read taken at `now` and returns the verdict after it.
    pub fn handle_sample(&mut self, now: Instant, sample: Sample) -> Verdict {
        self.advance(now);
        let (count, uncorrected) = match sample {
            Sample::Read { count, uncorrected } => (count, uncorrected),
            Sample::Gone | Sample::Unreadable => {
                self.last = None;
                self.verdict =
                    if sample == Sample::Gone { Verdict::Gone } else { Verdict::Unreadable };
                return self.verdict;
            }
        };
        if let Some(last) = self.last {
            let delta = self.increase(last, count);
            let slot = &mut self.ring[(self.head % BUCKETS as u64) as usize];
            *slot = slot.saturating_add(delta);
            self.total = self.total.saturating_add(delta);
        }
        self.last = Some(count);
        self.uncorrected = uncorrected;
        self.verdict = if self.kind == ErrorKind::Edac && uncorrected > 0 {
            Verdict::Uncorrected
        } else if self.in_window() > self.max {
            Verdict::OverLimit
        } else {
            Verdict::Ok
        };
        self.verdict
    }

    /// Moves the ring to `now`'s bucket, emptying the buckets it passes.
    fn advance(&mut self, now: Instant) {
        let bucket = now.total_millis() / self.width_ms;
        assert!(bucket >= self.head || self.head == 0, "time went backwards");
        let steps = bucket.saturating_sub(self.head).min(BUCKETS as u64);
        for i in 1..=steps {
            self.ring[((self.head + i) % BUCKETS as u64) as usize] = 0;
        }
        self.head = self.head.max(bucket);
    }

    /// The increase from `last` to `now` of a counter of this kind: a wrap past the top of
    /// its width, a reset (the new value), or the difference.
    fn increase(&mut self, last: u64, now: u64) -> u64 {
        if now >= last {
            return now - last;
        }
        let top = match self.kind.width_bits() {
            32 => u64::from(u32::MAX),
            _ => u64::MAX,
        };
        if last <= top && top - last < WRAP_MARGIN && now < WRAP_MARGIN {
            (top - last) + now + 1
        } else {
            self.resets = self.resets.saturating_add(1);
            now
        }
    }

    /// Errors within the window (see the module doc for its precision).
    pub fn in_window(&self) -> u64 {
        self.ring.iter().fold(0u64, |a, &b| a.saturating_add(b))
    }

    /// The latest verdict.
    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// The raw counter at the last read (`None` before the first or after a failed read).
    pub fn count(&self) -> Option<u64> {
        self.last
    }

    /// Errors counted since the first read, across resets and wraps.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The uncorrected count at the last read (EDAC).
    pub fn uncorrected(&self) -> u64 {
        self.uncorrected
    }

    /// Times the counter went down without wrapping.
    pub fn resets(&self) -> u32 {
        self.resets
    }

    /// The limit.
    pub fn max(&self) -> u64 {
        self.max
    }
}

/// Appends the health reason of `verdict` for source `kind` `name` (empty for EDAC) with
/// limit `max` in `window`. Reasons name the problem, not the live count, so that a climbing
/// counter does not re-notify at every read.
pub fn reason(
    reasons: &mut Reasons,
    kind: ErrorKind,
    name: &str,
    verdict: Verdict,
    max: u32,
    window: Duration,
) {
    let sep = if name.is_empty() { "" } else { " " };
    match verdict {
        Verdict::Ok => {}
        Verdict::OverLimit => {
            reasons.push(format_args!("errors {kind}{sep}{name}: over {max} in {window}"))
        }
        Verdict::Uncorrected => {
            reasons.push(format_args!("errors {kind}{sep}{name}: uncorrected memory error"))
        }
        Verdict::Gone => reasons.push(format_args!("errors {kind}{sep}{name}: device gone")),
        Verdict::Unreadable => {
            reasons.push(format_args!("errors {kind}{sep}{name}: counters unreadable"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> Instant {
        Instant::from_millis(secs * 1000)
    }

    fn read(count: u64) -> Sample {
        Sample::Read { count, uncorrected: 0 }
    }

    /// `max 10 in 64s`: buckets of one second.
    fn judge(kind: ErrorKind) -> ErrorJudge {
        ErrorJudge::new(kind, 10, Duration::from_secs(64))
    }

    #[test]
    fn the_first_read_is_a_baseline() {
        let mut j = judge(ErrorKind::Edac);
        assert_eq!(j.handle_sample(at(1), read(5000)), Verdict::Ok);
        assert_eq!(j.in_window(), 0);
        assert_eq!(j.handle_sample(at(2), read(5003)), Verdict::Ok);
        assert_eq!((j.in_window(), j.total(), j.count()), (3, 3, Some(5003)));
    }

    #[test]
    fn over_the_limit_until_the_window_passes() {
        let mut j = judge(ErrorKind::Edac);
        j.handle_sample(at(10), read(0));
        assert_eq!(j.handle_sample(at(12), read(10)), Verdict::Ok, "10 is not more than 10");
        assert_eq!(j.handle_sample(at(14), read(11)), Verdict::OverLimit);
        // The errors of second 12 leave the window at 12 + 64 at the latest, never before
        // 12 + 63: the precision of one bucket.
        assert_eq!(j.handle_sample(at(74), read(11)), Verdict::OverLimit);
        assert_eq!(j.handle_sample(at(76), read(11)), Verdict::Ok);
        assert_eq!(j.in_window(), 1, "the error of second 14 is still in");
        assert_eq!(j.handle_sample(at(78), read(11)), Verdict::Ok);
        assert_eq!(j.in_window(), 0);
        assert_eq!(j.total(), 11);
    }

    #[test]
    fn a_long_gap_empties_the_window() {
        let mut j = judge(ErrorKind::Net);
        j.handle_sample(at(1), read(0));
        assert_eq!(j.handle_sample(at(2), read(50)), Verdict::OverLimit);
        assert_eq!(j.handle_sample(at(10_000), read(50)), Verdict::Ok);
        assert_eq!(j.in_window(), 0);
    }

    #[test]
    fn a_reset_is_no_false_alarm() {
        let mut j = judge(ErrorKind::Edac);
        j.handle_sample(at(1), read(1_000_000));
        assert_eq!(j.handle_sample(at(3), read(0)), Verdict::Ok);
        assert_eq!((j.in_window(), j.resets()), (0, 1));
        assert_eq!(j.handle_sample(at(5), read(2)), Verdict::Ok);
        assert_eq!(j.in_window(), 2);
        // A reset after which errors were already counted: those count, nothing more.
        j.handle_sample(at(7), read(4));
        assert_eq!(j.handle_sample(at(9), read(3)), Verdict::Ok);
        assert_eq!((j.in_window(), j.resets()), (7, 2));
    }

    #[test]
    fn a_wrap_counts_what_went_past_the_top() {
        let mut j = judge(ErrorKind::Disk);
        j.handle_sample(at(1), read(u64::from(u32::MAX) - 2));
        assert_eq!(j.handle_sample(at(2), read(4)), Verdict::Ok, "3 to the top, 1 to 0, then 4");
        assert_eq!((j.in_window(), j.resets()), (7, 0));
        let mut n = judge(ErrorKind::Net);
        n.handle_sample(at(1), read(u64::MAX - 1));
        assert_eq!(n.handle_sample(at(2), read(1)), Verdict::Ok);
        assert_eq!(n.in_window(), 3);
        // A net counter at the 32-bit top did not wrap: 64 bits wide, it was reset.
        let mut r = judge(ErrorKind::Net);
        r.handle_sample(at(1), read(u64::from(u32::MAX) - 2));
        r.handle_sample(at(2), read(4));
        assert_eq!((r.in_window(), r.resets()), (4, 1));
    }

    #[test]
    fn any_uncorrected_error_is_unhealthy_until_reset() {
        let mut j = judge(ErrorKind::Edac);
        assert_eq!(j.handle_sample(at(1), read(0)), Verdict::Ok);
        let ue = Sample::Read { count: 0, uncorrected: 1 };
        assert_eq!(j.handle_sample(at(2), ue), Verdict::Uncorrected);
        assert_eq!(j.handle_sample(at(500), ue), Verdict::Uncorrected, "no window for these");
        assert_eq!(j.handle_sample(at(502), read(0)), Verdict::Ok, "reset_counters clears");
        // One found at start-up (since boot) counts too.
        let mut k = judge(ErrorKind::Edac);
        assert_eq!(k.handle_sample(at(1), ue), Verdict::Uncorrected);
    }

    #[test]
    fn a_vanished_device_is_its_own_reason_and_comes_back_as_a_baseline() {
        let mut j = judge(ErrorKind::Net);
        j.handle_sample(at(1), read(7));
        assert_eq!(j.handle_sample(at(2), Sample::Gone), Verdict::Gone);
        assert_eq!(j.count(), None);
        assert_eq!(j.handle_sample(at(3), Sample::Unreadable), Verdict::Unreadable);
        // Back, with a counter restarted from zero by the new device: a baseline.
        assert_eq!(j.handle_sample(at(4), read(100)), Verdict::Ok);
        assert_eq!((j.in_window(), j.resets()), (0, 0));
        let mut r = Reasons::new();
        reason(&mut r, ErrorKind::Net, "eth1", Verdict::Gone, 10, Duration::from_secs(3600));
        reason(&mut r, ErrorKind::Edac, "", Verdict::OverLimit, 10, Duration::from_secs(3600));
        reason(&mut r, ErrorKind::Edac, "", Verdict::Ok, 10, Duration::from_secs(3600));
        let got: Vec<&str> = r.iter().collect();
        assert_eq!(got, ["errors net eth1: device gone", "errors edac: over 10 in 60m"]);
    }

    #[test]
    fn max_zero_means_any_error() {
        let mut j = ErrorJudge::new(ErrorKind::Disk, 0, Duration::from_secs(3600));
        j.handle_sample(at(1), read(0));
        assert_eq!(j.handle_sample(at(3), read(1)), Verdict::OverLimit);
    }
}
