//! The one place a role changes (`Node::transition`): it logs, notifies, re-sends the
//! heartbeat, stops the timers of the role left and runs the entry actions of the role entered.
//! And what every role change and every input must leave true (`Node::assert_invariants`).
//! It decides nothing: the decisions that call it are in `decide.rs`, `fencing.rs` and
//! `drive.rs`.

use log::info;

use super::Detail;
use super::node::Node;
use super::resources::ResourceState;
use super::role::{Phase, Reason, Role};
use super::time::Instant;
use super::timer::Timer;

impl Node {
    /// The one place a role changes: logs, notifies, re-sends the heartbeat, enters the new
    /// role's phase with its state fresh, stops the timers of the role left, and runs the new
    /// role's entry actions.
    pub(super) fn transition(&mut self, now: Instant, to: Role, reason: Reason) {
        let from = self.role();
        if from == to {
            return;
        }
        assert!(from != Role::Exited, "no role follows Exited ({to:?}: {reason:?})");
        info!("{}role {from:?} -> {to:?}: {reason:?}", super::node::GroupLabel(self.log_group));
        self.phase = Phase::entered(to);
        self.role_since = now;
        self.reason = reason;
        self.tx_all = true;
        self.notify(to.event(), Detail::Reason(reason));
        // Each timer belongs to one role: those of the role left stop here.
        for timer in Timer::ALL.into_iter().filter(|t| !to.may_arm(*t)) {
            self.timers.stop(timer);
        }
        match to {
            Role::Active => self.timers.set(Timer::Monitor, now + self.params.monitor_interval),
            Role::Fencing => self.enter_fencing(now),
            Role::Maintenance { .. } => {
                for r in self.resources.iter_mut().filter(|r| r.may_run()) {
                    r.state = ResourceState::Unmanaged;
                }
            }
            Role::Exited => self.finish_exit(),
            _ => {}
        }
        self.drive_resources(now);
        self.assert_invariants();
    }

    /// Asserts what every role change and every input leave true; a broken one is a bug here,
    /// never something an input may cause. Each armed timer belongs to the role
    /// (`Role::may_arm`), and a fence retry waits only between fence runs. A grant is
    /// repeated only while nothing is held. An action is in flight only in a role that issues
    /// actions, names a resource of the group in force, and is a probe only in `Init` or in
    /// the shutdown that ended it. The group in force has the size the core believes.
    pub(super) fn assert_invariants(&self) {
        let role = self.role();
        for timer in Timer::ALL {
            let armed = self.timers.is_set(timer);
            assert!(!armed || role.may_arm(timer), "timer {timer:?} armed in {role:?}");
        }
        let retry = self.timers.is_set(Timer::FenceRetry) || self.timers.is_set(Timer::FenceDelay);
        assert!(!(retry && self.fence_running()), "a fence retry armed while the fence runs");
        let idle = matches!(
            role,
            Role::Standby
                | Role::Failed { holding: false }
                | Role::Maintenance { holding: false }
                | Role::Exited
        );
        assert!(self.releasing.is_none() || idle, "granting the group in {role:?}");
        if let Some(flight) = self.pending {
            let acting =
                matches!(role, Role::Init | Role::Starting | Role::Active | Role::Stopping { .. });
            assert!(acting, "{flight:?} in flight in {role:?}");
            assert!(
                usize::from(flight.index) < self.resources.len(),
                "{flight:?}: no such resource"
            );
            let probing = role == Role::Init || self.shutting_down;
            assert!(!flight.probe || probing, "a probe in flight in {role:?}");
        }
        assert_eq!(self.resources.len(), usize::from(self.params.resources));
    }
}
