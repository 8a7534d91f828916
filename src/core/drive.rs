//! Driving the resources: the one resource action in flight at a time that the role needs
//! (start-up probes in `Init`, starts in order, stops in reverse, monitor rounds while
//! `Active`), their results, restarts in place under `restart_limit`, and a reload's switch to
//! new resource definitions (see "Reload" in the core docs). What the role is comes from
//! `decide.rs`; what a resource is believed to be, from `resources.rs`.

use log::{debug, info};

use super::node::{GroupLabel, Node};
use super::resources::{InFlight, ResourcePlan, ResourceState, ResourceStatus};
use super::role::{AfterStop, Phase, Reason, Role};
use super::time::Instant;
use super::timer::Timer;
use super::{Action, Detail, Event, FenceMode, Outcome, Output};
use crate::limits::RESOURCES_MAX;

impl Node {
    pub(super) fn handle_resources(&mut self, now: Instant, plan: &ResourcePlan) {
        let retired = (0..self.resources.len()).filter(|&i| plan.retires(i)).count();
        let started = (0..plan.len()).filter(|&i| plan.starts(i)).count();
        log::info!(
            "new resource definitions: {} resources; {retired} retired (stopped first where \
             they may run), {started} new or changed, the rest kept untouched ({:?})",
            plan.len(),
            self.role()
        );
        if self.reconfig.is_some() {
            log::info!("they replace the definitions of an earlier reload, not yet in force");
        }
        self.reconfig = Some(plan.clone());
        // A monitor round under way ends here: the switch renumbers the resources, and the
        // next round (re-armed at the switch) monitors the new group.
        if let Phase::Active { monitor_next } = &mut self.phase {
            *monitor_next = None;
        }
        self.drive_resources(now);
    }

    /// `Timer::Monitor` fired in `Active`: a new monitor round begins at the first resource.
    pub(super) fn start_monitor_round(&mut self, now: Instant) {
        let Phase::Active { monitor_next } = &mut self.phase else {
            panic!("a monitor round begins only in Active, not {:?}", self.phase);
        };
        *monitor_next = Some(0);
        self.drive_resources(now);
    }

    /// Issues the next resource action the role needs, when none is in flight.
    pub(super) fn drive_resources(&mut self, now: Instant) {
        if self.pending.is_some() {
            return;
        }
        if self.reconfig.is_some() && self.advance_reconfig(now) {
            return;
        }
        match self.role() {
            Role::Init => {
                if let Some(i) = self.take_probe() {
                    self.issue_probe(i);
                }
            }
            Role::Starting => {
                match self.resources.iter().position(|r| r.state != ResourceState::Running) {
                    Some(i) => self.issue(i, Action::Start),
                    None => self.transition(now, Role::Active, Reason::Started),
                }
            }
            Role::Stopping { floor, then } => {
                let floor = usize::from(floor);
                let next =
                    (floor..self.resources.len()).rev().find(|i| self.resources[*i].may_run());
                match next {
                    Some(i) => self.issue(i, Action::Stop),
                    None => self.finish_stop(now, then),
                }
            }
            Role::Active => {
                // Only a reload's switch leaves a resource stopped in `Active` (any failure
                // leaves the role): it starts in place.
                let stopped = self.resources.iter().position(|r| r.state == ResourceState::Stopped);
                if let Some(i) = stopped {
                    self.issue(i, Action::Start);
                } else if let Phase::Active { monitor_next: Some(i) } = self.phase {
                    self.issue(usize::from(i), Action::Monitor);
                }
            }
            _ => {}
        }
    }

    /// Moves a reload's new resource definitions on (see "Reload" in the module docs): in
    /// `Starting` or `Active`, stops the last retired resource that may run (true: that stop
    /// is in flight); then, where the role allows and nothing retired may run, switches.
    fn advance_reconfig(&mut self, now: Instant) -> bool {
        let Some(plan) = &self.reconfig else { return false };
        let retired_running = (0..self.resources.len())
            .rev()
            .find(|&i| plan.retires(i) && self.resources[i].may_run());
        let may_switch = match self.role() {
            Role::Starting | Role::Active => {
                if let Some(i) = retired_running {
                    info!(
                        "{}resource {i}: stopping its old definition (reload)",
                        GroupLabel(self.log_group)
                    );
                    self.issue(i, Action::Stop);
                    return true;
                }
                true
            }
            Role::Init => !self.holds(),
            Role::Standby
            | Role::Fencing
            | Role::Failed { holding: false }
            | Role::Maintenance { holding: false } => true,
            Role::Stopping { .. }
            | Role::Failed { holding: true }
            | Role::Maintenance { holding: true }
            | Role::Exited => false,
        };
        if may_switch && retired_running.is_none() && !self.shutting_down {
            self.switch_resources(now);
        }
        false
    }

    /// Takes the new group of the reload's plan: kept resources keep their state and
    /// failures, the others start `Stopped`; the loop switches its drivers on the output.
    fn switch_resources(&mut self, now: Instant) {
        let Some(plan) = self.reconfig.take() else { return };
        assert!(self.pending.is_none(), "resources switched with an action in flight");
        let mut resources: heapless::Vec<ResourceStatus, RESOURCES_MAX> = heapless::Vec::new();
        for kept in plan.kept_from() {
            let old = kept.and_then(|j| self.resources.get(usize::from(j)).copied());
            // Cannot fail: a plan has at most RESOURCES_MAX resources.
            let _ = resources.push(old.unwrap_or(ResourceStatus::STOPPED));
        }
        info!("the new resource definitions are in force ({} resources)", resources.len());
        self.resources = resources;
        // The plan holds at most RESOURCES_MAX (16) resources, so the count fits a u8.
        self.params.resources = plan.len() as u8;
        self.push(Output::ApplyResources { group: 0 });
        // The renumbered group is monitored from its start, a monitor interval from now.
        if let Phase::Active { monitor_next } = &mut self.phase {
            *monitor_next = None;
            self.timers.set(Timer::Monitor, now + self.params.monitor_interval);
        }
    }

    /// In `Init`: the next resource to probe, if any is left (and moves on past it).
    fn take_probe(&mut self) -> Option<usize> {
        let len = self.resources.len();
        let Phase::Init { probe_next, .. } = &mut self.phase else { return None };
        let i = usize::from((*probe_next)?);
        // `i + 1` <= RESOURCES_MAX, so it fits a u8.
        *probe_next = (i + 1 < len).then_some((i + 1) as u8);
        Some(i)
    }

    fn issue(&mut self, index: usize, action: Action) {
        self.issue_as(index, action, false);
    }

    /// A start-up probe of `index`: a `Monitor` whose result says what runs.
    fn issue_probe(&mut self, index: usize) {
        self.issue_as(index, Action::Monitor, true);
    }

    fn issue_as(&mut self, index: usize, action: Action, probe: bool) {
        assert!(self.pending.is_none(), "one resource action at a time: {:?}", self.pending);
        let r = &mut self.resources[index];
        r.state = match action {
            Action::Start => ResourceState::Starting,
            Action::Stop => ResourceState::Stopping,
            Action::Monitor => r.state,
        };
        // `index` < RESOURCES_MAX, so it fits a u8.
        let index = index as u8;
        debug!("resource {index}: {action:?}");
        self.pending = Some(InFlight { index, action, probe });
        self.push(Output::ResourceAction { index, action });
    }

    fn finish_stop(&mut self, now: Instant, then: AfterStop) {
        match then {
            AfterStop::Standby => self.transition(now, Role::Standby, Reason::Stopped),
            AfterStop::Restart => self.transition(now, Role::Starting, Reason::Restart),
            AfterStop::Exit => self.transition(now, Role::Exited, Reason::Shutdown),
            AfterStop::HandOver | AfterStop::GiveUp => {
                let healthy = self.peer_payload().is_some_and(|p| self.judged(p.health).is_ok());
                let can = self.peer_can_run() && (then == AfterStop::HandOver || healthy);
                if can {
                    self.counters.handovers += 1;
                    self.notify(Event::Handover, Detail::None);
                    self.grant(Reason::Stopped);
                    self.transition(now, Role::Standby, Reason::Stopped);
                } else if then == AfterStop::GiveUp && self.restarts_exhausted {
                    // (A `cleanup` during the stop cleared the exhaustion: standby below.)
                    self.transition(
                        now,
                        Role::Failed { holding: false },
                        Reason::RestartsExhausted,
                    );
                } else {
                    self.transition(now, Role::Standby, Reason::Stopped);
                }
            }
        }
    }

    pub(super) fn handle_resource_result(
        &mut self,
        now: Instant,
        index: u8,
        action: Action,
        outcome: Outcome,
    ) {
        let answers = |p: &InFlight| p.index == index && p.action == action;
        let Some(flight) = self.pending.take_if(|p| answers(p)) else {
            debug!("ignored a stale result: resource {index} {action:?}");
            return;
        };
        let i = usize::from(index);
        if flight.probe {
            self.resources[i].state = match outcome {
                Outcome::Ok => ResourceState::Running,
                Outcome::NotRunning => ResourceState::Stopped,
                // It may hold something: it must be stopped before it runs anywhere.
                Outcome::Failed(_) => ResourceState::Failed,
            };
            info!("{}resource {index}: probe: {outcome:?}", GroupLabel(self.log_group));
            self.drive_resources(now);
            return;
        }
        match (action, outcome) {
            (Action::Start, Outcome::Ok) => self.resources[i].state = ResourceState::Running,
            (Action::Stop, Outcome::Ok | Outcome::NotRunning) => {
                self.resources[i].state = ResourceState::Stopped
            }
            (Action::Monitor, Outcome::Ok) => self.monitored(now, index),
            (Action::Stop, Outcome::Failed(_)) => {
                self.resource_failed(i, ResourceState::Failed);
                self.transition(now, Role::Failed { holding: true }, Reason::StopFailed);
                self.self_fencing = self.fence_mode() == FenceMode::Watchdog;
                if self.shutting_down && self.fence_mode() != FenceMode::Watchdog {
                    self.transition(now, Role::Exited, Reason::Shutdown);
                }
                return;
            }
            (_, outcome) => {
                let state = if action == Action::Monitor && outcome == Outcome::NotRunning {
                    ResourceState::Stopped
                } else {
                    ResourceState::Failed
                };
                self.resource_failed(i, state);
                self.restart_or_give_up(now, index);
            }
        }
        self.drive_resources(now);
    }

    /// A monitor found resource `index` well: the round goes on with the next one, or ends
    /// and the next round is armed. A round ends with `Active`: a result that comes after the
    /// role ended (a split brain or a handover stopped the group while the monitor ran)
    /// continues nothing.
    fn monitored(&mut self, now: Instant, index: u8) {
        let len = self.resources.len();
        let Phase::Active { monitor_next } = &mut self.phase else {
            debug!("resource {index}: monitored after Active ended: no round goes on");
            return;
        };
        let next = index + 1;
        if usize::from(next) < len {
            *monitor_next = Some(next);
        } else {
            *monitor_next = None;
            self.timers.set(Timer::Monitor, now + self.params.monitor_interval);
        }
    }

    fn resource_failed(&mut self, i: usize, state: ResourceState) {
        self.resources[i].state = state;
        self.resources[i].failures = self.resources[i].failures.saturating_add(1);
        // `i` < RESOURCES_MAX, so it fits a u8.
        self.notify(Event::ResourceFailed, Detail::Resource(i as u8));
    }

    /// A start or monitor failed: restart in place while `restart_limit` allows, else give up.
    fn restart_or_give_up(&mut self, now: Instant, index: u8) {
        if !matches!(self.role(), Role::Starting | Role::Active) {
            return;
        }
        let limit = self.params.restart_limit;
        if self.restarts.record(now, limit.count, limit.window) {
            self.transition(
                now,
                Role::Stopping { floor: index, then: AfterStop::Restart },
                Reason::Restart,
            );
        } else {
            self.restarts_exhausted = true;
            self.notify(Event::Health, Detail::Health(self.advertised_health()));
            self.transition(now, Role::stopping(AfterStop::GiveUp), Reason::RestartsExhausted);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::core::testkit::*;

    #[test]
    fn an_empty_group_runs_alone_without_monitoring() {
        // No `resource` lines: the node still takes the (empty) group and stays active
        // through many monitor intervals without asking for any resource action.
        let mut p = params(0, FenceMode::None);
        p.resources = 0;
        let mut node = Node::new(p, ms(0));
        let out = run_until(&mut node, ms(10_000));
        assert_eq!(node.role(), Role::Active);
        assert_eq!(action(&out), None);
    }

    /// SPEC §1 on an active node: the changed resource (the third) is stopped with its old
    /// definition, the core switches, and it is started with its new one; the others are not
    /// touched, the node stays `active` all along, and monitoring goes on over the new group.
    #[test]
    fn a_reload_while_active_restarts_only_the_changed_resource() {
        let mut node = active_with(3);
        let plan = ResourcePlan::new(&["r1", "r2", "r3 v1"], &["r1", "r2", "r3 v2"]);
        node.handle_input(ms(30), Input::Resources(&plan));
        let out = drain(&mut node, ms(30));
        assert_eq!(actions(&out), [(2, Action::Stop)], "the old r3 is stopped");
        assert!(!switched(&out), "not before the old r3 stopped");
        assert_eq!(node.role(), Role::Active);
        let out = ok(&mut node, ms(40), 2, Action::Stop);
        assert!(switched(&out));
        // The switch comes before the start: the start means the new r3.
        let at = |o: Output| out.iter().position(|x| *x == o);
        let start = Output::ResourceAction { index: 2, action: Action::Start };
        assert!(at(Output::ApplyResources { group: 0 }) < at(start) && at(start).is_some());
        assert_eq!(node.role(), Role::Active);
        assert_eq!(node.state(), GroupState::Active);
        let out = ok(&mut node, ms(50), 2, Action::Start);
        assert!(actions(&out).is_empty() && node.role() == Role::Active);
        assert!(node.resources().iter().all(|r| r.state == ResourceState::Running));
        // Next round: every resource is monitored, none stopped or started.
        let mut seen = std::vec::Vec::new();
        for _ in 0..3 {
            let out = run_until(&mut node, ms(1100));
            let a = action(&out).or(pending(&node)).expect("a monitor");
            seen.push(a);
            ok(&mut node, ms(1100), a.0, a.1);
        }
        assert_eq!(seen, [(0, Action::Monitor), (1, Action::Monitor), (2, Action::Monitor)]);
    }

    /// A standby node holds nothing: it switches at once, with no action.
    #[test]
    fn a_reload_on_a_standby_node_switches_at_once() {
        let mut node = standby_beside_an_active_peer(2000);
        let plan = ResourcePlan::new(&["r1"], &["r1 v2", "r2"]);
        node.handle_input(ms(20), Input::Resources(&plan));
        let out = drain(&mut node, ms(20));
        assert!(switched(&out) && actions(&out).is_empty());
        assert_eq!(node.resources().len(), 2);
        assert_eq!(node.role(), Role::Standby);
    }

    /// Added and removed resources while active: the removed one is stopped, the added one
    /// started in its place in the order; the others are not touched.
    #[test]
    fn a_reload_while_active_stops_removed_and_starts_added_resources() {
        let mut node = active_with(3);
        let plan = ResourcePlan::new(&["a", "b", "c"], &["a", "c", "d", "e"]);
        node.handle_input(ms(30), Input::Resources(&plan));
        assert_eq!(actions(&drain(&mut node, ms(30))), [(1, Action::Stop)]);
        let out = ok(&mut node, ms(40), 1, Action::Stop);
        assert!(switched(&out));
        assert_eq!(actions(&out), [(2, Action::Start)], "d, after a and c");
        assert_eq!(actions(&ok(&mut node, ms(50), 2, Action::Start)), [(3, Action::Start)]);
        assert!(actions(&ok(&mut node, ms(60), 3, Action::Start)).is_empty());
        assert_eq!(node.resources().len(), 4);
        assert!(node.resources().iter().all(|r| r.state == ResourceState::Running));
        assert_eq!(node.role(), Role::Active);
    }

    /// A new definition that fails to start follows the ordinary rules: a restart in place
    /// (here the failed resource is the last one), counted against `restart_limit`.
    #[test]
    fn a_failed_start_of_a_new_definition_is_restarted_in_place() {
        let mut node = active_with(2);
        let plan = ResourcePlan::new(&["a", "b"], &["a", "b v2"]);
        node.handle_input(ms(30), Input::Resources(&plan));
        drain(&mut node, ms(30));
        ok(&mut node, ms(40), 1, Action::Stop);
        let failed = Outcome::Failed(1);
        let elapsed = Duration::from_millis(1);
        let result =
            Input::ResourceResult { index: 1, action: Action::Start, outcome: failed, elapsed };
        node.handle_input(ms(50), result);
        let out = drain(&mut node, ms(50));
        assert_eq!(node.role(), Role::Stopping { floor: 1, then: AfterStop::Restart });
        assert_eq!(actions(&out), [(1, Action::Stop)]);
        ok(&mut node, ms(60), 1, Action::Stop);
        assert_eq!(node.role(), Role::Starting);
        assert_eq!(pending(&node), Some((1, Action::Start)));
        assert_eq!(node.resources()[0].state, ResourceState::Running, "a is not touched");
    }

    /// A monitor result that comes after `Active` ended (an admin standby stopped the group
    /// while the monitor ran) continues no round: it arms no monitor timer outside `Active`,
    /// and the next `Active` does not begin by monitoring where the old round stopped.
    #[test]
    fn a_monitor_result_after_active_ended_continues_no_round() {
        let mut node = active_with(2);
        run_until(&mut node, ms(1030));
        assert_eq!(pending(&node), Some((0, Action::Monitor)));
        node.handle_input(ms(1040), Input::Admin(Admin::Standby));
        drain(&mut node, ms(1040));
        assert_eq!(node.role(), Role::stopping(AfterStop::HandOver));
        let out = ok(&mut node, ms(1050), 0, Action::Monitor);
        assert_eq!(actions(&out), [(1, Action::Stop)], "the stop goes on");
        ok(&mut node, ms(1060), 1, Action::Stop);
        ok(&mut node, ms(1070), 0, Action::Stop);
        assert_eq!(node.role(), Role::Standby);
        assert!(!node.timers.is_set(Timer::Monitor), "no monitor timer outside Active");
        // Online again, the peer long dead: fenced (fence none) and taken over at once.
        node.handle_input(ms(1080), Input::Admin(Admin::Online));
        drain(&mut node, ms(1080));
        run_until(&mut node, ms(1080));
        assert_eq!(node.role(), Role::Starting);
        ok(&mut node, ms(1090), 0, Action::Start);
        let out = ok(&mut node, ms(1100), 1, Action::Start);
        assert_eq!(node.role(), Role::Active);
        assert_eq!(actions(&out), [], "the first round comes a monitor interval later");
        let out = run_until(&mut node, ms(2100));
        assert_eq!(actions(&out), [(0, Action::Monitor)]);
    }

    /// A monitor in flight is waited for; maintenance over the group holds the switch back
    /// (nothing is stopped or started there) until it ends.
    #[test]
    fn a_reload_waits_for_the_action_in_flight_and_for_maintenance() {
        let mut node = active_with(2);
        run_until(&mut node, ms(1030));
        assert_eq!(pending(&node), Some((0, Action::Monitor)));
        let plan = ResourcePlan::new(&["a", "b"], &["a", "b v2"]);
        node.handle_input(ms(1040), Input::Resources(&plan));
        assert!(drain(&mut node, ms(1040)).is_empty(), "the monitor first");
        let out = ok(&mut node, ms(1050), 0, Action::Monitor);
        assert_eq!(actions(&out), [(1, Action::Stop)], "no more monitors of the old group");
        ok(&mut node, ms(1060), 1, Action::Stop);
        ok(&mut node, ms(1070), 1, Action::Start);

        node.handle_input(ms(2000), Input::Admin(Admin::MaintenanceOn));
        drain(&mut node, ms(2000));
        assert_eq!(node.role(), Role::Maintenance { holding: true });
        let plan = ResourcePlan::new(&["a", "b v2"], &["a v2", "b v2"]);
        node.handle_input(ms(2010), Input::Resources(&plan));
        let out = drain(&mut node, ms(2010));
        assert!(actions(&out).is_empty() && !switched(&out));
        node.handle_input(ms(2020), Input::Admin(Admin::MaintenanceOff));
        let out = drain(&mut node, ms(2020));
        assert_eq!(node.role(), Role::Active);
        assert_eq!(actions(&out), [(0, Action::Stop)]);
        let out = ok(&mut node, ms(2030), 0, Action::Stop);
        assert!(switched(&out));
        assert_eq!(actions(&out), [(0, Action::Start)]);
    }
}
