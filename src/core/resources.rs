//! What the core believes about each resource of the group, and the restart accounting of
//! `restart_limit`. It does not decide what to start or stop next: `Node` does, from the role.

use super::time::{Duration, Instant};

/// Failures remembered for `restart_limit` (a larger configured count is clamped to this).
pub const RESTARTS_TRACKED_MAX: usize = 16;

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

/// The failures of the group within the sliding `restart_limit` window.
#[derive(Clone, Debug, Default)]
pub struct RestartWindow {
    failures: heapless::Deque<Instant, RESTARTS_TRACKED_MAX>,
}

impl RestartWindow {
    /// Records a failure at `now`. Returns true when a restart in place is still allowed:
    /// at most `count` failures within `window`.
    pub fn record(&mut self, now: Instant, count: u32, window: Duration) -> bool {
        while self.failures.front().is_some_and(|t| now.saturating_since(*t) >= window) {
            self.failures.pop_front();
        }
        if self.failures.is_full() {
            self.failures.pop_front();
        }
        // Cannot fail: one slot was just freed when the deque was full.
        let _ = self.failures.push_back(now);
        let allowed = count.min(RESTARTS_TRACKED_MAX as u32 - 1) as usize;
        self.failures.len() <= allowed
    }

    /// Forgets every failure (`cleanup`).
    pub fn clear(&mut self) {
        self.failures.clear();
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
        // The first two fall out of the window.
        assert!(w.record(t(11_500), 2, window));
        w.clear();
        assert!(w.record(t(11_600), 1, window));
        assert!(!w.record(t(11_700), 1, window));
    }
}
