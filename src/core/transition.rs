//! The one place a role changes (`Node::transition`): it logs, notifies, re-sends the
//! heartbeat, stops the timers of the role left and runs the entry actions of the role entered.
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
        info!("role {from:?} -> {to:?}: {reason:?}");
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
    }
}
