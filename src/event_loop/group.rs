//! The group's resources as the loop runs them: agent resources (exec, LSB, OCF) become child
//! processes, `ip` resources are driven in-process over a non-blocking netlink socket (polled
//! with the loop's other fds, `fd()`) and AF_PACKET. The core says which action to run; this
//! file runs it and hands back the outcome, nothing else. Outcomes never reach the core from
//! inside `run` (the loop is draining the core then): a child's comes when it is reaped, an
//! `ip` action's when the kernel's answers were read (`poll`), and one known at once waits
//! in a queue for the loop's next pass (`poll_done`). At a reload, `Group::prepare_reload`
//! prepares the new and changed members (with the meta-data that `reload.rs` read without
//! blocking) and `Group::switch` puts them in place when the core switches, moving the kept
//! members over as they are.
//!
//! Probes (the core's start-up monitors, see "Adoption" in core): an agent's monitor answers
//! them (OCF 7 and LSB status 3 read as not running); an `ip` resource reads as running when
//! its address is on its interface (`IpAction::Monitor`); an exec resource without a monitor
//! command cannot be asked and reads as not running unless this daemon started it. An adopted
//! `ip` resource is not announced again (only `start` announces). Timeouts: an exec
//! resource's own `timeout`, else the OCF agent's meta-data advice, else the default
//! (`PreparedAgent`). Status keeps each resource's last error and exit code until `cleanup`.
//!
//! hapair is no child subreaper (`PR_SET_CHILD_SUBREAPER`): a service that an agent
//! daemonizes belongs to init, as under any service manager that runs init scripts, and hapair
//! reaps exactly the agent processes it started (by pid, in `drivers::children`).

use std::os::fd::RawFd;

use log::{info, warn};

use crate::config::{self, Resource};
use crate::core::time::{Duration, Instant};
use crate::core::{self as hcore, Action};
use crate::drivers::agents::{
    self, AgentKind, AgentPaths, AgentSpec, Exit, MetaData, Outcome, PreparedAgent,
};
use crate::drivers::children::{Children, Class, ExitStatus, Program, Spec};
use crate::drivers::ipaddr::{IpAction, IpError, IpOutcome, IpResource};
use crate::drivers::netlink::IfName;
use crate::limits::{GROUPS_MAX, RESOURCES_MAX};
use crate::status::{Name, Text, set_text};

/// What a child process is running, handed back when it exits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tag {
    /// Action `action` of resource `index`.
    Resource {
        /// The resource.
        index: u8,
        /// The action.
        action: Action,
    },
    /// A notify command.
    Notify,
    /// The fence command.
    Fence,
    /// Health check `index`.
    Check(u8),
    /// An OCF agent's `meta-data`, read for a reload (`reload::MetaDataRuns`).
    MetaData,
    /// `drbdadm outdate` of the `drbd` resource of this index, at the peer's request.
    Outdate(u8),
}

enum Driver {
    Agent(Box<PreparedAgent>),
    Ip(Box<IpResource>),
}

/// One resource: its driver and what status shows about its last action.
pub struct Member {
    driver: Driver,
    /// Its name.
    pub name: Name,
    /// Its kind (`ip`, `exec`, `lsb`, `ocf`).
    pub kind: Name,
    /// The exit code of its last failed action (`None` for a timeout or a signal), kept
    /// until `cleanup`.
    pub last_exit_code: Option<i32>,
    /// What went wrong last, kept until `cleanup` (a restart in place does not hide it).
    pub last_error: Text,
    /// It runs as far as this daemon knows (its last start or monitor succeeded, no stop
    /// followed): a monitor that then says "not running" is a failure shown in status (a probe
    /// that finds nothing is not), and a probe of an exec resource without a monitor command
    /// reports it (running after our own start, else not running).
    started: bool,
}

/// A finished action, for the core.
#[derive(Clone, Copy, Debug)]
pub struct Done {
    /// The resource.
    pub index: u8,
    /// The action.
    pub action: Action,
    /// How it ended, in the core's terms.
    pub outcome: hcore::Outcome,
    /// How long it took.
    pub elapsed: Duration,
}

/// The group's resources, in start order.
pub struct Group {
    members: heapless::Vec<Member, RESOURCES_MAX>,
    /// The `ip` actions waiting for the kernel's answers: one per group at most (each group
    /// runs one action at a time, `core::groups`), each on its resource's own netlink socket.
    ip_running: heapless::Vec<IpRunning, GROUPS_MAX>,
    /// Finished actions waiting for the loop's next pass (`poll_done`).
    done: heapless::Deque<Done, RESOURCES_MAX>,
}

/// The members of a reloaded group, prepared (`Group::prepare_reload`) and waiting for the
/// core's switch (`Group::switch`).
pub struct Reloaded {
    /// One per resource of the new group, in its start order.
    slots: Vec<Slot>,
}

/// A member of a reloaded group.
enum Slot {
    /// This group's member at this index: it runs on untouched.
    Kept(u8),
    /// A new or changed resource, prepared.
    New(Box<Member>),
}

/// An `ip` action under way.
#[derive(Clone, Copy, Debug)]
struct IpRunning {
    index: u8,
    action: Action,
    started: Instant,
}

pub use crate::config::agents::{agent_paths, agent_spec};

impl Group {
    /// Prepares every resource of `config`: agents are located and their invocations built
    /// (with their meta-data timeouts for OCF agents), `ip` resources set up. A missing agent
    /// is an error: `run` refuses to start rather than fail at the first takeover.
    /// `node` is this node's name, for the agents' `HAPAIR_NODE`.
    pub fn new(config: &config::Config, node: &str) -> Result<Group, String> {
        let paths = agent_paths(node);
        let mut members = heapless::Vec::new();
        for resource in &config.resources {
            let driver = match agent_spec(resource) {
                None => ip_driver(resource)?,
                Some(spec) => Driver::Agent(Box::new(prepare(&spec, &paths)?)),
            };
            // INVARIANT: the config holds at most RESOURCES_MAX resources.
            if members.push(member(resource, driver)).is_err() {
                return Err("too many resources".into());
            }
        }
        Ok(Group { members, ip_running: heapless::Vec::new(), done: heapless::Deque::new() })
    }

    /// Prepares the members of `new`, a reloaded configuration, as `plan` maps it onto this
    /// group: a kept resource will be this group's member, moved over at the switch with its
    /// driver and what status shows of it (a running `ip` resource keeps its announcements);
    /// a new or changed one is prepared now, an OCF agent with `metas[i]`, its meta-data as
    /// read without blocking (`reload::MetaDataRuns`), which must be there for every new or
    /// changed OCF resource. Runs nothing and reads no agent; a changed LSB script is only
    /// looked for (one `stat`, as at start). Nothing changes here until `switch`.
    pub fn prepare_reload(
        &self,
        new: &config::Config,
        plan: &hcore::ResourcePlan,
        node: &str,
        metas: &[Option<MetaData>],
    ) -> Result<Reloaded, String> {
        assert_eq!(plan.len(), new.resources.len(), "a plan of another configuration");
        let paths = agent_paths(node);
        let mut slots = Vec::with_capacity(new.resources.len());
        for (i, (resource, kept)) in new.resources.iter().zip(plan.kept_from()).enumerate() {
            let slot = match (kept, agent_spec(resource)) {
                (Some(j), _) if usize::from(*j) < self.members.len() => Slot::Kept(*j),
                (Some(_), _) => return Err(format!("resource {}: not in force", resource.name())),
                (None, None) => Slot::New(Box::new(member(resource, ip_driver(resource)?))),
                (None, Some(spec)) => {
                    let prepared = match spec.kind {
                        AgentKind::Ocf { .. } => {
                            let meta = metas.get(i).and_then(Option::as_ref);
                            let meta = meta.ok_or_else(|| {
                                format!("resource {}: no meta-data was read", spec.name)
                            })?;
                            prepare_with(&spec, &paths, Some(meta))?
                        }
                        _ => prepare(&spec, &paths)?,
                    };
                    Slot::New(Box::new(member(resource, Driver::Agent(Box::new(prepared)))))
                }
            };
            slots.push(slot);
        }
        Ok(Reloaded { slots })
    }

    /// Switches to the reloaded members (the core's `Output::ApplyResources`): kept ones move
    /// to their new places, retired ones are dropped (the core stopped them), new ones come
    /// in. From here on a resource index means the new group.
    pub fn switch(&mut self, reloaded: Reloaded) {
        // INVARIANT: the core switches only with no action in flight, and an `ip` action
        // under way or a result not yet fed is one the core waits for.
        assert!(!self.is_busy(), "resources switched while an action is under way");
        let mut old: Vec<Option<Member>> =
            core::mem::take(&mut self.members).into_iter().map(Some).collect();
        for slot in reloaded.slots {
            let member = match slot {
                // INVARIANT: a plan keeps each resource in force at most once, and
                // `prepare_reload` checked that it exists.
                Slot::Kept(j) => old[usize::from(j)].take().expect("a kept member, once"),
                Slot::New(m) => *m,
            };
            // INVARIANT: a configuration holds at most RESOURCES_MAX resources.
            if self.members.push(member).is_err() {
                panic!("more than RESOURCES_MAX resources after a reload");
            }
        }
    }

    /// The resources, in start order.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// The index of the resource called `name`.
    pub fn index_of(&self, name: &str) -> Option<u8> {
        let i = self.members.iter().position(|m| m.name.as_str() == name)?;
        u8::try_from(i).ok()
    }

    /// `hapair cleanup [RESOURCE]`: forgets the last exit code and error of one resource, or
    /// of all (the core forgets the failure counts).
    pub fn cleanup(&mut self, index: Option<u8>) {
        for (i, m) in self.members.iter_mut().enumerate() {
            if index.is_none_or(|x| usize::from(x) == i) {
                m.last_exit_code = None;
                m.last_error.clear();
            }
        }
    }

    /// Runs `action` of resource `index`: an agent action becomes a child process (its result
    /// comes later through `handle_exit`); an `ip` action sends its first netlink request
    /// (its result comes later through `poll`, once the kernel answered). Whatever ends at
    /// once (an exec resource without a monitor command, an action that cannot start) is
    /// queued for `poll_done`: no result reaches the core while it is being drained (the
    /// core's call protocol), only on the loop's next pass.
    pub fn run(&mut self, now: Instant, index: u8, action: Action, children: &mut Children<Tag>) {
        let Some(member) = self.members.get_mut(usize::from(index)) else {
            warn!("core asked for {action:?} of resource {index}, which does not exist");
            self.queue(Done { index, action, outcome: failed(1), elapsed: Duration::ZERO });
            return;
        };
        let outcome = match &mut member.driver {
            Driver::Ip(ip) => {
                let ip_action = match action {
                    Action::Start => IpAction::Start,
                    Action::Stop => IpAction::Stop,
                    Action::Monitor => IpAction::Monitor,
                };
                match ip.begin(now, ip_action) {
                    None => {
                        // INVARIANT: one action per group in flight, at most GROUPS_MAX.
                        let running = IpRunning { index, action, started: now };
                        let pushed = self.ip_running.push(running);
                        debug_assert!(pushed.is_ok(), "more ip actions than groups");
                        return;
                    }
                    Some(result) => ip_outcome(member, action, result),
                }
            }
            Driver::Agent(agent) => {
                let Some(prepared) = agent.action(to_agent(action)) else {
                    // An exec resource without a monitor command: believe what it last did.
                    let outcome = if member.started {
                        hcore::Outcome::Ok
                    } else {
                        hcore::Outcome::NotRunning
                    };
                    self.queue(Done { index, action, outcome, elapsed: Duration::ZERO });
                    return;
                };
                match spawn(now, index, action, prepared, children) {
                    Ok(()) => return,
                    Err(msg) => {
                        warn!("resource {}: {action:?}: {msg}", member.name);
                        set_text(&mut member.last_error, &msg);
                        failed(1)
                    }
                }
            }
        };
        self.queue(Done { index, action, outcome, elapsed: Duration::ZERO });
    }

    /// An `ip` action waits for the kernel, or a result for the core: the group must not be
    /// switched (a reload) before the core has it.
    pub fn is_busy(&self) -> bool {
        !self.ip_running.is_empty() || !self.done.is_empty()
    }

    /// A finished action for the core, one per call; `None` when none waits.
    pub fn poll_done(&mut self) -> Option<Done> {
        self.done.pop_front()
    }

    fn queue(&mut self, done: Done) {
        // INVARIANT: the core runs one resource action at a time, so at most one result
        // waits; RESOURCES_MAX leaves room for any number the core could ask for.
        if self.done.push_back(done).is_err() {
            warn!("resource {}: {:?} result dropped: queue full", done.index, done.action);
        }
    }

    /// The result of a resource child that exited.
    pub fn handle_exit(
        &mut self,
        index: u8,
        action: Action,
        status: ExitStatus,
        elapsed: Duration,
        output: &[u8],
    ) -> Option<Done> {
        let member = self.members.get_mut(usize::from(index))?;
        let Driver::Agent(agent) = &member.driver else { return None };
        let exit = match status {
            ExitStatus::Code(c) => Exit::Code(c),
            ExitStatus::Signaled(s) => Exit::Signal(s),
            ExitStatus::TimedOut => Exit::TimedOut,
            ExitStatus::ExecFailed(e) => Exit::ExecFailed(e),
        };
        let outcome = match agent.interpret(to_agent(action), exit) {
            Outcome::Ok => {
                member.started = action != Action::Stop;
                hcore::Outcome::Ok
            }
            Outcome::NotRunning => {
                // Not running after it ran (not a probe that found nothing): a failure to show.
                if std::mem::take(&mut member.started) && action == Action::Monitor {
                    let code = match exit {
                        Exit::Code(c) => c,
                        _ => 7,
                    };
                    warn!("resource {}: monitor: not running ({code})", member.name);
                    member.last_exit_code = Some(code);
                    set_text(&mut member.last_error, &format!("Monitor: not running ({code})"));
                }
                hcore::Outcome::NotRunning
            }
            Outcome::Failed(e) => {
                let code = e.exit_code();
                member.last_exit_code = code;
                let tail = String::from_utf8_lossy(output);
                let tail = tail.trim().lines().last().unwrap_or("");
                let msg =
                    format!("{action:?}: {e}{}{tail}", if tail.is_empty() { "" } else { ": " });
                if action == Action::Monitor {
                    warn!("resource {}: monitor: {e}", member.name);
                } else {
                    warn!("resource {}: {msg}", member.name);
                }
                set_text(&mut member.last_error, &msg);
                failed(code.unwrap_or(1))
            }
        };
        Some(Done { index, action, outcome, elapsed })
    }

    /// Sends the due address announcements of active `ip` resources, and takes the kernel's
    /// answers to the running `ip` action (queued for `poll_done` once it is over). Never
    /// waits: the netlink socket is read only for what is there.
    pub fn poll(&mut self, now: Instant) {
        for m in &mut self.members {
            let Driver::Ip(ip) = &mut m.driver else { continue };
            if let Err(e) = ip.poll(now) {
                warn!("resource {}: announcement: {e}", m.name);
            }
        }
        let mut i = 0;
        while i < self.ip_running.len() {
            let running = self.ip_running[i];
            let result = match self.members.get_mut(usize::from(running.index)) {
                Some(Member { driver: Driver::Ip(ip), .. }) => ip.poll_action(now),
                _ => None,
            };
            let Some(result) = result else {
                i += 1;
                continue;
            };
            self.ip_running.swap_remove(i);
            let Some(member) = self.members.get_mut(usize::from(running.index)) else { continue };
            let outcome = ip_outcome(member, running.action, result);
            let elapsed = now.saturating_since(running.started);
            self.queue(Done { index: running.index, action: running.action, outcome, elapsed });
        }
    }

    /// The netlink sockets of the running `ip` actions, to poll for their answers.
    pub fn fds(&self) -> impl Iterator<Item = RawFd> + '_ {
        self.ip_running.iter().filter_map(|running| {
            match &self.members.get(usize::from(running.index))?.driver {
                Driver::Ip(ip) => ip.fd(),
                Driver::Agent(_) => None,
            }
        })
    }

    /// The next announcement due or running `ip` request to give up; at once while a result
    /// waits for `poll_done`.
    pub fn next_deadline(&self) -> Option<Instant> {
        if !self.done.is_empty() {
            return Some(Instant::ZERO);
        }
        self.members
            .iter()
            .filter_map(|m| match &m.driver {
                Driver::Ip(ip) => ip.next_deadline(),
                Driver::Agent(_) => None,
            })
            .min()
    }
}

/// The core's outcome of an `ip` action of `member`, with what status shows of it.
fn ip_outcome(
    member: &mut Member,
    action: Action,
    result: Result<IpOutcome, IpError>,
) -> hcore::Outcome {
    match result {
        Ok(IpOutcome::Ok) => {
            // Running after a start, or found running (an adopted address).
            member.started = action != Action::Stop;
            hcore::Outcome::Ok
        }
        Ok(IpOutcome::NotRunning) => {
            // Gone after it ran: a failure to show; a start-up probe that finds nothing (the
            // address not here yet) is none.
            if std::mem::take(&mut member.started) {
                set_text(&mut member.last_error, "Monitor: address not configured");
            }
            hcore::Outcome::NotRunning
        }
        Err(e) => {
            warn!("resource {}: {action:?}: {e}", member.name);
            set_text(&mut member.last_error, &e.to_string());
            failed(1)
        }
    }
}

/// A member with `driver` for `resource`, nothing known of it yet.
fn member(resource: &Resource, driver: Driver) -> Member {
    let mut member = Member {
        driver,
        name: Name::new(),
        kind: Name::new(),
        last_exit_code: None,
        last_error: Text::new(),
        started: false,
    };
    set_text(&mut member.name, resource.name());
    set_text(&mut member.kind, resource.kind());
    member
}

/// The driver of an `ip` resource.
fn ip_driver(resource: &Resource) -> Result<Driver, String> {
    let Resource::Ip(ip) = resource else {
        // INVARIANT: only `ip` has no agent spec, and callers ask for those only.
        return Err(format!("resource {}: not an ip resource", resource.name()));
    };
    let dev =
        IfName::new(&ip.dev).ok_or_else(|| format!("resource {}: bad interface name", ip.name))?;
    Ok(Driver::Ip(Box::new(IpResource::new(
        ip.addr,
        ip.prefix,
        dev,
        ip.garp,
        ip.garp_interval,
        ip.garp_refresh,
    ))))
}

/// Start-up: locates the agent and reads an OCF agent's meta-data, blocking (before the
/// loop only), then prepares it. Meta-data that cannot be read gives the default timeouts.
fn prepare(spec: &AgentSpec, paths: &AgentPaths) -> Result<PreparedAgent, String> {
    agents::locate(spec, paths).map_err(|e| format!("resource {}: {e}", spec.name))?;
    let meta = match spec.kind {
        AgentKind::Ocf { .. } => agents::fetch_meta_data(spec, paths).unwrap_or_else(|e| {
            warn!("resource {}: no meta-data ({e}); default timeouts", spec.name);
            None
        }),
        _ => None,
    };
    prepare_with(spec, paths, meta.as_ref())
}

/// Checks an OCF agent's parameters against `meta` and builds its invocations.
fn prepare_with(
    spec: &AgentSpec,
    paths: &AgentPaths,
    meta: Option<&MetaData>,
) -> Result<PreparedAgent, String> {
    if let Some(Err(errors)) = meta.map(|m| agents::validate(spec, m)) {
        let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
        return Err(format!("resource {}: {}", spec.name, list.join("; ")));
    }
    let prepared = PreparedAgent::prepare(spec, paths, meta)
        .map_err(|e| format!("resource {}: {e}", spec.name))?;
    info!("resource {}: {:?} agent ready", spec.name, spec.kind.class());
    Ok(prepared)
}

fn spawn(
    now: Instant,
    index: u8,
    action: Action,
    prepared: &agents::PreparedAction,
    children: &mut Children<Tag>,
) -> Result<(), String> {
    let inv = &prepared.invocation;
    let program = inv.program.to_str().ok_or("agent path is not UTF-8")?;
    let mut args: heapless::Vec<&str, 8> = heapless::Vec::new();
    for a in &inv.args {
        args.push(a.to_str().ok_or("argument is not UTF-8")?).map_err(|_| "too many args")?;
    }
    let mut env: heapless::Vec<(&str, &str), 48> = heapless::Vec::new();
    for (k, v) in &inv.env {
        let pair = (k.to_str().ok_or("env is not UTF-8")?, v.to_str().ok_or("env is not UTF-8")?);
        env.push(pair).map_err(|_| "too many environment variables")?;
    }
    let spec = Spec {
        program: Program::Exec(program),
        args: &args,
        env: &env,
        clear_env: true,
        stdin: &[],
        stdout: None,
        timeout: prepared.timeout,
        class: Class::Essential,
        tag: Tag::Resource { index, action },
    };
    children.spawn(now, &spec).map(|_| ()).map_err(|e| format!("cannot start: {e:?}"))
}

fn to_agent(action: Action) -> agents::Action {
    match action {
        Action::Start => agents::Action::Start,
        Action::Stop => agents::Action::Stop,
        Action::Monitor => agents::Action::Monitor,
    }
}

fn failed(code: i32) -> hcore::Outcome {
    hcore::Outcome::Failed(u8::try_from(code).unwrap_or(u8::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(resources: &str) -> config::Config {
        let text = format!("node a\nnode b\nauthkey /k\nbcast eth0\n{resources}");
        config::parse_str(&text, Path::new("t.conf")).unwrap()
    }

    const OLD: &str = "resource ip 192.0.2.100/24 dev eth0\n\
                       resource exec web start=\"a\" stop=\"b\"\n\
                       resource exec db start=\"c\" stop=\"d\"\n";

    fn agent(group: &Group, index: usize) -> &PreparedAgent {
        match &group.members[index].driver {
            Driver::Agent(a) => a,
            Driver::Ip(_) => panic!("resource {index} is an ip resource"),
        }
    }

    fn start_command(group: &Group, index: usize) -> String {
        let args = &agent(group, index).action(agents::Action::Start).unwrap().invocation.args;
        args[1].to_string_lossy().into_owned()
    }

    fn plan(old: &config::Config, new: &config::Config) -> hcore::ResourcePlan {
        hcore::ResourcePlan::new(&old.resources, &new.resources)
    }

    #[test]
    fn a_reload_keeps_what_did_not_change_and_prepares_the_rest() {
        let old = config(OLD);
        let mut group = Group::new(&old, "a").unwrap();
        set_text(&mut group.members[2].last_error, "Monitor: not running (7)");
        group.members[2].last_exit_code = Some(7);
        group.members[2].started = true;
        let new = config(&OLD.replace("start=\"a\"", "start=\"e\""));
        let reloaded = group.prepare_reload(&new, &plan(&old, &new), "a", &[]).unwrap();
        assert_eq!(start_command(&group, 1), "a", "nothing changes before the switch");
        group.switch(reloaded);
        assert_eq!(start_command(&group, 1), "e", "the changed resource is new");
        assert!(!group.members[1].started);
        assert_eq!(start_command(&group, 2), "c");
        assert_eq!(group.members[2].last_error.as_str(), "Monitor: not running (7)");
        assert_eq!(group.members[2].last_exit_code, Some(7), "kept for status");
        assert!(group.members[2].started, "a kept member is the same member");
        assert_eq!(group.members[0].name.as_str(), "192.0.2.100");
    }

    /// Added, removed and moved resources: the kept members move to their new places, a
    /// removed one is dropped, an added one comes in.
    #[test]
    fn a_reload_moves_kept_members_and_drops_removed_ones() {
        let old = config(OLD);
        let mut group = Group::new(&old, "a").unwrap();
        group.members[2].last_exit_code = Some(3);
        let new = config(
            "resource exec db start=\"c\" stop=\"d\"\n\
             resource exec new start=\"f\" stop=\"g\"\n\
             resource ip 192.0.2.100/24 dev eth0\n",
        );
        let reloaded = group.prepare_reload(&new, &plan(&old, &new), "a", &[]).unwrap();
        group.switch(reloaded);
        let names: Vec<&str> = group.members().iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["db", "new", "192.0.2.100"]);
        assert_eq!(group.members[0].last_exit_code, Some(3), "db moved with its status");
        assert_eq!(start_command(&group, 1), "f");
        assert_eq!(group.index_of("web"), None, "web was removed");
    }

    #[test]
    fn a_changed_ocf_resource_takes_the_meta_data_read_for_it() {
        let old = config(OLD);
        let group = Group::new(&old, "a").unwrap();
        let new = config(
            &OLD.replace("resource exec db start=\"c\" stop=\"d\"", "resource ocf p:Db x=1"),
        );
        let plan = plan(&old, &new);
        let err = group.prepare_reload(&new, &plan, "a", &[]).err().unwrap();
        assert!(err.contains("no meta-data was read"), "{err}");
        let xml = "<resource-agent name=\"Db\"><parameters><parameter name=\"x\"/></parameters>\
                   <actions><action name=\"start\" timeout=\"7s\"/></actions></resource-agent>";
        let metas = [None, None, Some(MetaData::parse(xml).unwrap())];
        let mut reloaded = group.prepare_reload(&new, &plan, "a", &metas).unwrap();
        let Slot::New(db) = &mut reloaded.slots[2] else { panic!("db is new") };
        let Driver::Agent(db) = &db.driver else { panic!("db is an agent") };
        let start = db.action(agents::Action::Start).unwrap();
        assert_eq!(start.timeout, Duration::from_secs(7), "the agent's advice");
        let unknown = MetaData::parse("<resource-agent name=\"Db\"/>").unwrap();
        let metas = [None, None, Some(unknown)];
        let err = group.prepare_reload(&new, &plan, "a", &metas).err().unwrap();
        assert!(err.contains("unknown parameter \"x\""), "{err}");
    }

    /// The core's call protocol: no result while it is drained. What ends at once waits in
    /// the queue, and the loop wakes at once to feed it.
    #[test]
    fn a_result_known_at_once_waits_for_the_next_pass() {
        let mut group = Group::new(&config(OLD), "a").unwrap();
        let mut children = Children::new(Duration::from_secs(1));
        assert_eq!(group.next_deadline(), None);
        group.run(Instant::ZERO, 1, Action::Monitor, &mut children);
        assert!(group.is_busy() && children.is_empty());
        assert_eq!(group.next_deadline(), Some(Instant::ZERO), "wake at once");
        let done = group.poll_done().unwrap();
        assert_eq!((done.index, done.action), (1, Action::Monitor));
        assert_eq!(done.outcome, hcore::Outcome::NotRunning, "never started: not running");
        assert!(group.poll_done().is_none() && !group.is_busy());
        group.run(Instant::ZERO, 9, Action::Stop, &mut children);
        assert!(matches!(
            group.poll_done(),
            Some(Done { index: 9, outcome: hcore::Outcome::Failed(1), .. })
        ));
    }

    /// An `ip` action's result comes from the kernel's answers, read by `poll` on a later
    /// pass, never from `run` (here: the probe of an address on an interface that does not
    /// exist, which is not running).
    #[test]
    fn an_ip_result_comes_from_a_later_poll() {
        let conf = config("resource ip 192.0.2.100/24 dev hapairnone0\n");
        let mut group = Group::new(&conf, "a").unwrap();
        let mut children = Children::new(Duration::from_secs(1));
        group.run(Instant::ZERO, 0, Action::Monitor, &mut children);
        assert!(group.poll_done().is_none(), "no answer read inside run");
        assert!(group.is_busy());
        let Some(fd) = group.fds().next() else {
            // No packet socket without CAP_NET_RAW: the failure still waits for a pass.
            let done = group.poll_done();
            assert!(matches!(done, Some(Done { outcome: hcore::Outcome::Failed(_), .. })));
            return;
        };
        let timeout = Duration::from_millis(crate::drivers::netlink::REPLY_TIMEOUT_MS as u64);
        assert_eq!(group.next_deadline(), Some(Instant::ZERO + timeout));
        let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd for the duration of the call.
        unsafe { libc::poll(&mut pfd, 1, 1000) };
        let mut done = None;
        for _ in 0..100 {
            group.poll(Instant::from_millis(1));
            done = group.poll_done();
            if done.is_some() {
                break;
            }
            // SAFETY: as above.
            unsafe { libc::poll(&mut pfd, 1, 10) };
        }
        let done = done.unwrap();
        assert_eq!((done.index, done.action), (0, Action::Monitor));
        assert_eq!(done.outcome, hcore::Outcome::NotRunning);
        assert_eq!(done.elapsed, Duration::from_millis(1));
        assert!(!group.is_busy() && group.fds().next().is_none());
        // A probe that finds nothing is no error to show (the address is not there yet).
        assert_eq!(group.members()[0].last_error.as_str(), "");
    }
}
