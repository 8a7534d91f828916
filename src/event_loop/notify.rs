//! The notify commands' share of the child table: at most `limits::notify_children_max` of the
//! configuration's groups run at once; a state change past that is not notified. The notify is dropped (not queued: a queue
//! behind hung scripts would only deliver stale events late), counted, and warned about at
//! most once per `WARN_INTERVAL` with the count so far, so a flood of state changes cannot
//! flood the log either.
//!
//! Not here: running the command (the loop's `spawn_notify` and `drivers::children`), and
//! what the events are (`report::event_name`).

use log::warn;

use crate::core::time::{Duration, Instant};
use crate::limits::notify_children_max;

/// At most one warning about dropped notifies per this long.
pub const WARN_INTERVAL: Duration = Duration::from_secs(10);

/// Admits notify commands while fewer than `limit` run; counts the rest.
#[derive(Debug)]
pub struct NotifyGate {
    /// Notify commands at once (`limits::notify_children_max` of the groups).
    limit: usize,
    dropped: u64,
    /// Drops since the last warning.
    unreported: u64,
    warned_at: Option<Instant>,
}

impl Default for NotifyGate {
    /// The gate of one group.
    fn default() -> NotifyGate {
        NotifyGate::new(1)
    }
}

impl NotifyGate {
    /// The gate of a configuration of `groups` groups.
    pub fn new(groups: usize) -> NotifyGate {
        NotifyGate {
            limit: notify_children_max(groups),
            dropped: 0,
            unreported: 0,
            warned_at: None,
        }
    }

    /// Whether a notify for `event` may start now, with `running` notify commands running.
    /// A refusal is counted and warned about (rate-limited).
    pub fn admit(&mut self, now: Instant, running: usize, event: &str) -> bool {
        if running < self.limit {
            return true;
        }
        self.refuse(now, event, &"notify commands still running");
        false
    }

    /// Counts a notify for `event` that could not start for `why`, and warns unless it did
    /// within `WARN_INTERVAL`.
    pub fn refuse(&mut self, now: Instant, event: &str, why: &dyn core::fmt::Display) {
        self.dropped += 1;
        self.unreported += 1;
        if self.warned_at.is_some_and(|t| now < t + WARN_INTERVAL) {
            return;
        }
        warn!(
            "notify {event} dropped: {why} ({} at most; {} dropped since the \
             last warning, {} in all)",
            self.limit, self.unreported, self.dropped
        );
        self.warned_at = Some(now);
        self.unreported = 0;
    }

    /// Notifies dropped since start.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_below_the_share_and_counts_the_rest() {
        let mut gate = NotifyGate::default();
        let t = Instant::from_millis(1000);
        assert!(gate.admit(t, 8, "active"));
        assert!(!gate.admit(t, 9, "active"));
        assert!(!gate.admit(t, 12, "standby"));
        let two = NotifyGate::new(2);
        assert!(two.limit == 12, "6 and 3 per group");
        assert_eq!(gate.dropped(), 2);
    }

    #[test]
    fn warns_at_most_once_per_interval() {
        let mut gate = NotifyGate::default();
        let t = Instant::from_millis(1000);
        gate.refuse(t, "active", &"x");
        assert_eq!((gate.warned_at, gate.unreported), (Some(t), 0));
        gate.refuse(t + Duration::from_secs(9), "active", &"x");
        assert_eq!((gate.warned_at, gate.unreported), (Some(t), 1), "no second warning yet");
        let later = t + WARN_INTERVAL;
        gate.refuse(later, "active", &"x");
        assert_eq!((gate.warned_at, gate.unreported), (Some(later), 0));
        assert_eq!(gate.dropped(), 3);
    }
}
