//! What the core believes about each resource of the group, the one action in flight, the
//! restart accounting of `restart_limit`, and how a reloaded group maps onto the running one
//! (`ResourcePlan`). It does not decide what to start or stop next: `Node` does, from the role.

use super::Action;
use super::time::{Duration, Instant};
use crate::limits::RESOURCES_MAX;

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

/// The one resource action in flight (`Output::ResourceAction` not yet answered).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct InFlight {
    /// The resource.
    pub(super) index: u8,
    /// What it was asked.
    pub(super) action: Action,
    /// A start-up probe: a `Monitor` whose result says what runs here, not how well. It
    /// belongs to the action, not to `Init`: a shutdown while probing leaves `Init` with the
    /// probe in flight, and its result still says what to stop.
    pub(super) probe: bool,
}

/// How the resources of a reloaded configuration map onto those in force (SPEC §1: a reload
/// touches no running resource whose definition did not change). A new resource defined
/// exactly as an old one (same kind, name and every parameter) is *kept*: it is that resource,
/// whatever its place, and runs on untouched. Every other new resource (changed or added) is
/// started with its new definition; every old resource that no new one keeps (changed or
/// removed) is *retired*: stopped with its old definition. A changed resource is a retired
/// one and a new one of the same name; the plan needs no names to say so.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourcePlan {
    /// For each resource of the new group, in its start order: the index of the old resource
    /// it keeps, or `None` (changed or added).
    kept_from: heapless::Vec<Option<u8>, RESOURCES_MAX>,
}

impl ResourcePlan {
    /// Compares the definitions in force (`old`) with the reloaded ones (`new`), each in
    /// start order and at most `RESOURCES_MAX` (the configuration's capacity). An old
    /// resource is kept by at most one new one.
    pub fn new<R: PartialEq>(old: &[R], new: &[R]) -> ResourcePlan {
        assert!(old.len() <= RESOURCES_MAX && new.len() <= RESOURCES_MAX, "too many resources");
        let mut kept_from = heapless::Vec::new();
        for r in new {
            let taken = |j: usize| kept_from.contains(&Some(j as u8));
            // `j` < RESOURCES_MAX, so it fits a u8.
            let kept = (0..old.len()).find(|&j| old[j] == *r && !taken(j)).map(|j| j as u8);
            // Cannot fail: `new` has at most RESOURCES_MAX resources.
            let _ = kept_from.push(kept);
        }
        ResourcePlan { kept_from }
    }

    /// Resources in the new group.
    pub fn len(&self) -> usize {
        self.kept_from.len()
    }

    /// True for a plan of an empty new group.
    pub fn is_empty(&self) -> bool {
        self.kept_from.is_empty()
    }

    /// For each new resource in start order: the old resource it keeps, or `None`.
    pub fn kept_from(&self) -> &[Option<u8>] {
        &self.kept_from
    }

    /// True when the old resource `old` has no place in the new group: it is stopped.
    pub fn retires(&self, old: usize) -> bool {
        !self.kept_from.iter().any(|k| k.map(usize::from) == Some(old))
    }

    /// True when the new resource `new` is changed or added: it is started anew.
    pub fn starts(&self, new: usize) -> bool {
        self.kept_from.get(new).is_some_and(Option::is_none)
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

    /// One resource changed (the third of three): the first two are kept in place, the third
    /// is retired and started anew.
    #[test]
    fn a_changed_resource_is_retired_and_started_the_others_kept() {
        let plan = ResourcePlan::new(&["r1", "r2", "r3 v1"], &["r1", "r2", "r3 v2"]);
        assert_eq!(plan.kept_from(), [Some(0), Some(1), None]);
        assert!(!plan.retires(0) && !plan.retires(1) && plan.retires(2));
        assert!(!plan.starts(0) && !plan.starts(1) && plan.starts(2));
        let same = ResourcePlan::new(&["a", "b"], &["a", "b"]);
        assert_eq!(same.kept_from(), [Some(0), Some(1)]);
        assert!((0..2).all(|i| !same.retires(i) && !same.starts(i)));
    }

    /// Added and removed resources change the count; the kept ones are found wherever they
    /// moved, so an insertion does not make the ones after it look changed.
    #[test]
    fn added_removed_and_moved_resources_are_matched_by_definition() {
        let plan = ResourcePlan::new(&["ip", "fs", "db"], &["ip", "new", "fs", "db", "web"]);
        assert_eq!(plan.kept_from(), [Some(0), None, Some(1), Some(2), None]);
        assert!((0..3).all(|i| !plan.retires(i)));
        assert!(plan.starts(1) && plan.starts(4) && !plan.starts(2));
        let plan = ResourcePlan::new(&["ip", "fs", "db"], &["ip", "db"]);
        assert_eq!(plan.kept_from(), [Some(0), Some(2)]);
        assert!(plan.retires(1) && !plan.retires(0) && !plan.retires(2));
        // A new order keeps every resource: nothing is stopped or started.
        let plan = ResourcePlan::new(&["a", "b", "c"], &["c", "a", "b"]);
        assert_eq!(plan.kept_from(), [Some(2), Some(0), Some(1)]);
        assert!((0..3).all(|i| !plan.retires(i) && !plan.starts(i)));
        // Every resource removed, or every resource new.
        let plan = ResourcePlan::new(&["a", "b"], &[]);
        assert!(plan.is_empty() && plan.retires(0) && plan.retires(1));
        let plan = ResourcePlan::new(&[], &["a"]);
        assert_eq!((plan.len(), plan.starts(0)), (1, true));
    }

    /// An old resource is kept at most once (a configuration never has two alike, but the
    /// plan does not count on it).
    #[test]
    fn an_old_resource_is_kept_once() {
        let plan = ResourcePlan::new(&["a"], &["a", "a"]);
        assert_eq!(plan.kept_from(), [Some(0), None]);
    }

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
