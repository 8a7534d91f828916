//! What the core believes about each resource of the group, and the restart accounting of
//! `restart_limit`. It does not decide what to start or stop next: `Node` does, from the role.

use super::time::{Duration, Instant};

/// What the core believes about one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceState {
    /// Not running (or never started).
    Stopped,
    /// A start action is running.
    Starting,
    /// Started and, as far as the last monitor knows, well.
    Running,
    /// A stop action is running.
    Stopping,
    /// A start or monitor failed: it may still hold something, so it must be stopped.
    Failed,
    /// Not managed (maintenance): it may or may not run.
    Unmanaged,
}

/// What `status` shows about one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResourceStatus {
    /// Its state.
    pub state: ResourceState,
    /// Failures since start or the last `cleanup`.
    pub failures: u32,
}

impl ResourceStatus {
    /// A stopped resource with no failures.
    pub const STOPPED: ResourceStatus =
        ResourceStatus { state: ResourceState::Stopped, failures: 0 };

    /// True when the resource may hold anything (must be stopped before the group moves).
    pub fn may_run(self) -> bool {
        self.state != ResourceState::Stopped
    }
}

/// The failures of the group counted against `restart_limit COUNT in WINDOW`, in O(1) space
/// whatever COUNT (0 to 1000): a rate window as systemd's `StartLimitIntervalSec=` and
/// `StartLimitBurst=` keep it. The first failure opens a window of WINDOW; every failure
/// before the window ends counts in it; a failure at or after its end opens a new window, in
/// which it is the first. A restart in place is allowed while the window holds at most COUNT
/// failures: the (COUNT + 1)th failure within one window exhausts the restarts.
///
/// Unlike a sliding window (the last WINDOW before each failure), a fixed window forgets
/// everything at once when it ends: failures that straddle its end may see up to 2 x COUNT
/// restarts within one WINDOW. It never gives up earlier than a sliding window would (the
/// failures of a window all lie within WINDOW before the last of them).
#[derive(Clone, Debug, Default)]
pub struct RestartWindow {
    /// When the current window opened (its first failure); `None` before any failure.
    opened: Option<Instant>,
    /// Failures in the current window.
    failures: u32,
}

impl RestartWindow {
    /// Records a failure at `now`. Returns true when a restart in place is still allowed:
    /// at most `count` failures in the window, which lasts `window` from its first failure.
    pub fn record(&mut self, now: Instant, count: u32, window: Duration) -> bool {
        let expired = self.opened.is_none_or(|t| now.saturating_since(t) >= window);
        if expired {
            self.opened = Some(now);
            self.failures = 0;
        }
        self.failures = self.failures.saturating_add(1);
        self.failures <= count
    }

    /// Forgets every failure (`cleanup`).
    pub fn clear(&mut self) {
        *self = RestartWindow::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_window_allows_count_failures_per_window() {
        let mut w = RestartWindow::default();
        let window = Duration::from_secs(10);
        let t = Instant::from_millis;
        assert!(w.record(t(0), 2, window));
        assert!(w.record(t(1000), 2, window));
        assert!(!w.record(t(2000), 2, window));
        // The window opened at 0 has ended: a new one opens with this failure.
        assert!(w.record(t(11_500), 2, window));
        w.clear();
        assert!(w.record(t(11_600), 1, window));
        assert!(!w.record(t(11_700), 1, window));
    }

    /// No failure is restarted with `restart_limit 0`.
    #[test]
    fn a_count_of_zero_restarts_nothing() {
        let mut w = RestartWindow::default();
        assert!(!w.record(Instant::from_millis(5), 0, Duration::from_secs(60)));
    }

    /// Any count up to the configuration's 1000 is kept, in the same few bytes (the count
    /// used to be capped at 15 by a 16-entry history).
    #[test]
    fn a_count_above_fifteen_is_kept() {
        for count in [15, 16, 20, 1000] {
            let mut w = RestartWindow::default();
            let window = Duration::from_secs(600);
            for i in 0..u64::from(count) {
                assert!(w.record(Instant::from_millis(i * 100), count, window), "{i} of {count}");
            }
            let last = Instant::from_millis(u64::from(count) * 100);
            assert!(!w.record(last, count, window), "failure {} of {count}", count + 1);
        }
        assert!(std::mem::size_of::<RestartWindow>() <= 24);
    }

    /// The window opens at its first failure and ends WINDOW later, whatever came between
    /// (a fixed window, not a sliding one): the failure at its end opens the next.
    #[test]
    fn the_window_opens_at_the_first_failure_and_ends_window_after_it() {
        let mut w = RestartWindow::default();
        let window = Duration::from_secs(10);
        let t = Instant::from_millis;
        assert!(w.record(t(1000), 2, window));
        assert!(w.record(t(9000), 2, window));
        // 10 999 ms is still in the window opened at 1000: the third failure in it.
        assert!(!w.record(t(10_999), 2, window));
        let mut w = RestartWindow::default();
        assert!(w.record(t(1000), 2, window));
        assert!(w.record(t(9000), 2, window));
        // At 11 000 the window has ended: the failure at 9000 is forgotten with it.
        assert!(w.record(t(11_000), 2, window));
        assert!(w.record(t(12_000), 2, window));
        assert!(!w.record(t(13_000), 2, window));
    }
}
