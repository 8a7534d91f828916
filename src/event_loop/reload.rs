//! A reload's new resources (SPEC §1: applied without touching what did not change; §7.3: a reload
//! never blocks the loop): the meta-data runs, the new group handed to the core, and the switch. A
//! reloaded configuration whose new or changed resources include OCF agents needs their meta-data
//! (to check the parameters and pick the timeouts) before the new definitions can take effect. Each
//! agent's `meta-data` runs as an ordinary supervised child whose stdout goes into a memfd (in
//! memory: writing it never blocks the agent, reading it never blocks us); when the child is
//! reaped, the memfd is read and parsed. The loop meanwhile goes on beating, serving status and
//! running the group as before. Once every run is in, `finish` hands back the meta-data, or the
//! reason (per resource) why the reload of the resources is refused: a run that timed out (the
//! resource's or the default 20 s action timeout), failed, could not be executed or printed no
//! meta-data.
//!
//! This is stricter than start-up, which takes an agent without meta-data with the default
//! timeouts (the daemon must come up); at a reload the running definitions stay instead.
//!
//! Then the new group is prepared (`Group::prepare_reload`) and the core gets the plan
//! (`core::ResourcePlan`: which resources are kept, which retired, which started anew); the
//! core stops the retired ones and switches when it may (`Output::ApplyResources`, core
//! "Reload"), and the drivers switch with it (`Daemon::switch_resources`). The new group
//! waits in `Daemon::next_group` meanwhile; a later reload replaces it.
//!
//! Not here: what else changed and whether it may be applied (`Daemon::reload`), when the
//! core switches (`core`), and parsing the XML (`agents::MetaData`). Allocates (a reload is no
//! steady state).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::AsFd;
use std::path::PathBuf;

use log::{debug, error, info, warn};
use nix::sys::memfd::{MFdFlags, memfd_create};

use crate::config::{Config, Resource, agents::agent_paths, agents::agent_spec};
use crate::core::time::Instant;
use crate::core::{Input, ResourcePlan};
use crate::drivers::agents::{
    self, Action, AgentError, AgentKind, AgentSpec, Exit, MetaData, Outcome, command_for,
};
use crate::drivers::children::{ChildId, Children, Class, ExitStatus, Exited, Program, Spec};
use crate::limits::RESOURCES_MAX;

use super::Daemon;
use super::group::{Reloaded, Tag};
use super::report;

/// The most of an agent's meta-data that is read (as `agents::run_blocking` keeps).
const META_DATA_LEN_MAX: u64 = 1 << 20;

/// The meta-data runs of one reload, and the configuration waiting for them.
pub struct MetaDataRuns {
    config: Config,
    runs: Vec<Run>,
}

/// One agent's `meta-data` run.
struct Run {
    /// The resource's index in the new configuration.
    index: usize,
    spec: AgentSpec,
    /// The agent, for errors.
    path: PathBuf,
    /// Its stdout.
    out: File,
    child: Option<ChildId>,
    result: Option<Result<MetaData, String>>,
}

impl MetaDataRuns {
    /// The resources of `new` whose meta-data must be read before it applies: the OCF ones
    /// that `plan` starts anew (changed or added; a kept one is prepared already).
    pub fn needed(plan: &ResourcePlan, new: &Config) -> Vec<usize> {
        new.resources
            .iter()
            .enumerate()
            .filter(|(i, _)| plan.starts(*i))
            .filter(|(_, r)| agent_spec(r).is_some_and(|s| matches!(s.kind, AgentKind::Ocf { .. })))
            .map(|(i, _)| i)
            .collect()
    }

    /// Starts `meta-data` of each resource in `needed` (from `needed`) as a child; a run
    /// that cannot start is in at once, failed. `node` is this node's name.
    pub fn start(
        now: Instant,
        new: Config,
        needed: &[usize],
        node: &str,
        children: &mut Children<Tag>,
    ) -> MetaDataRuns {
        let paths = agent_paths(node);
        let mut runs = Vec::with_capacity(needed.len());
        for &index in needed {
            let Some(spec) = new.resources.get(index).and_then(agent_spec) else { continue };
            let out = match memfd_create(c"hapair-meta-data", MFdFlags::MFD_CLOEXEC) {
                Ok(fd) => File::from(fd),
                Err(e) => {
                    warn!("reload: resource {}: cannot make a memfd: {e}", spec.name);
                    continue;
                }
            };
            let path = agents::agent_path(&spec, &paths).ok().flatten().unwrap_or_default();
            let mut run = Run { index, spec, path, out, child: None, result: None };
            match spawn(now, &run, &paths, children) {
                Ok(id) => run.child = Some(id),
                Err(e) => run.result = Some(Err(format!("resource {}: {e}", run.spec.name))),
            }
            runs.push(run);
        }
        MetaDataRuns { config: new, runs }
    }

    /// The names of the resources whose meta-data is awaited, for the log.
    pub fn names(&self) -> String {
        let names: Vec<&str> = self.runs.iter().map(|r| r.spec.name.as_str()).collect();
        names.join(", ")
    }

    /// Takes the result of a meta-data child that was reaped; false when it is not one of
    /// ours (a run of an earlier reload).
    pub fn handle_exit(&mut self, exited: &Exited<Tag>) -> bool {
        let Some(run) = self.runs.iter_mut().find(|r| r.child == Some(exited.id)) else {
            return false;
        };
        run.child = None;
        let result =
            read(run, exited.status).map_err(|e| format!("resource {}: {e}", run.spec.name));
        match &result {
            Ok(meta) => {
                debug!("reload: resource {}: meta-data of {} in", run.spec.name, meta.agent)
            }
            Err(e) => warn!("reload: {e}"),
        }
        run.result = Some(result);
        true
    }

    /// Every run is in.
    pub fn is_complete(&self) -> bool {
        self.runs.iter().all(|r| r.result.is_some())
    }

    /// The new configuration, and the meta-data of each of its resources (`None` where
    /// none was needed), or every reason why the reload of the resources is refused.
    pub fn finish(self) -> (Config, Result<Vec<Option<MetaData>>, String>) {
        let mut metas: Vec<Option<MetaData>> = vec![None; self.config.resources.len()];
        let mut errors = Vec::new();
        for run in self.runs {
            match run.result {
                Some(Ok(meta)) => {
                    if let Some(slot) = metas.get_mut(run.index) {
                        *slot = Some(meta);
                    }
                }
                Some(Err(e)) => errors.push(e),
                None => errors.push(format!("resource {}: meta-data still running", run.spec.name)),
            }
        }
        let result = if errors.is_empty() { Ok(metas) } else { Err(errors.join("; ")) };
        (self.config, result)
    }
}

/// A reload's new group, prepared and handed to the core, waiting for the core's switch
/// (`Output::ApplyResources`).
pub struct NextGroup {
    /// The new resource definitions, for the configuration in force after the switch.
    resources: heapless::Vec<Resource, RESOURCES_MAX>,
    /// The new group ranges over them (one group: its range grows or shrinks with them).
    groups: heapless::Vec<crate::config::Group, { crate::limits::GROUPS_MAX }>,
    members: Reloaded,
}

impl NextGroup {
    /// The new resource definitions.
    pub fn resources(&self) -> &heapless::Vec<Resource, RESOURCES_MAX> {
        &self.resources
    }
}

impl Daemon {
    /// New resource definitions, whether this node holds the group or not (SPEC §1): once the
    /// meta-data of the new and changed OCF agents is in, the new group is prepared and the
    /// core is given the plan (`offer_resources`); the core stops what is retired and then
    /// switches (`Output::ApplyResources`, `switch_resources`).
    pub(super) fn reload_resources(&mut self, now: Instant, new: &Config) {
        if self.config.groups.len() > 1 {
            // Each group switches on its own (`Groups::handle_resources`), which the drivers'
            // one reloaded group cannot follow yet: README "Reload".
            error!(
                "reload: the resources of a configuration with several groups change only at                  a restart; the running ones stay"
            );
            return;
        }
        let plan = ResourcePlan::new(&self.config.resources, &new.resources);
        let needed = MetaDataRuns::needed(&plan, new);
        if needed.is_empty() {
            self.offer_resources(now, new, &[]);
            return;
        }
        let node = self.config.pair.nodes[usize::from(self.me)].clone();
        let runs = MetaDataRuns::start(now, new.clone(), &needed, &node, &mut self.children);
        info!(
            "reload: the new resource definitions wait for the meta-data of {}; the running \
             ones stay until then",
            runs.names()
        );
        if runs.is_complete() {
            self.finish_meta_data(now, runs);
        } else {
            self.meta_data = Some(runs);
        }
    }

    /// A reaped `meta-data` child: its run is in; with the last one the reload goes on.
    pub(super) fn handle_meta_data_exit(&mut self, now: Instant, exited: &Exited<Tag>) {
        let Some(runs) = &mut self.meta_data else {
            debug!("meta-data child {} of an earlier reload ended", exited.id.0);
            return;
        };
        if !runs.handle_exit(exited) || !runs.is_complete() {
            return;
        }
        if let Some(runs) = self.meta_data.take() {
            self.finish_meta_data(now, runs);
        }
    }

    /// Offers the resources of a reload whose meta-data is all in to the core, or refuses
    /// them; then runs the reload that waited, if any.
    fn finish_meta_data(&mut self, now: Instant, runs: MetaDataRuns) {
        let (new, metas) = runs.finish();
        match metas {
            Err(e) => error!("reload: resources refused, the old ones stay: {e}"),
            Ok(metas) => self.offer_resources(now, &new, &metas),
        }
        if core::mem::take(&mut self.reload_again) {
            self.reload(now);
        }
    }

    /// Prepares the group `new` defines and hands the core the plan from the resources in
    /// force (a switch may have happened while meta-data was read); it replaces a new group
    /// that still waits for its switch. A group that cannot be made is refused (logged) and
    /// the resources in force stay, untouched.
    fn offer_resources(&mut self, now: Instant, new: &Config, metas: &[Option<MetaData>]) {
        let plan = ResourcePlan::new(&self.config.resources, &new.resources);
        let node = self.config.pair.nodes[usize::from(self.me)].clone();
        let members = match self.group.prepare_reload(new, &plan, &node, metas) {
            Ok(members) => members,
            Err(e) => {
                error!("reload: resources refused, the old ones stay: {e}");
                return;
            }
        };
        info!("reload: resources: {}", describe(&self.config.resources, &new.resources, &plan));
        if self.next_group.is_some() {
            info!("reload: these replace the resources of an earlier reload, not yet in force");
        }
        self.next_group = Some(NextGroup {
            resources: new.resources.clone(),
            groups: new.groups.clone(),
            members,
        });
        // A node that holds nothing switches at once, in this drain: done before anything
        // else looks at the resources in force (a reload that waited runs next).
        self.feed(now, Input::Resources(&plan));
    }

    /// The core switched to the new resource definitions (`Output::ApplyResources`): so do
    /// the drivers, the configuration in force, its digest in the heartbeats and the status.
    pub(super) fn switch_resources(&mut self) {
        // INVARIANT: the core switches only after `Input::Resources`, which `offer_resources`
        // gives with the new group it prepared.
        let next = self.next_group.take().expect("a prepared group for the core's switch");
        self.group.switch(next.members);
        self.config.resources = next.resources;
        self.config.groups = next.groups;
        report::init_resources(&mut self.snapshot, &self.config, &self.group);
        // The resources are in the digest: the peer must see that they changed.
        let digest = self.config.digest();
        self.core.set_config_digest(digest);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        info!("reload: applied resources (configuration digest now {hex})");
    }
}

/// What a reload does to the resources, for the log: `r3 changed; web added; old removed;
/// r1, r2 kept untouched`.
fn describe(old: &[Resource], new: &[Resource], plan: &ResourcePlan) -> String {
    let has = |list: &[Resource], name: &str| list.iter().any(|r| r.name() == name);
    let list = |names: Vec<&str>| names.join(", ");
    let started = (0..new.len()).filter(|&i| plan.starts(i)).map(|i| new[i].name());
    let (changed, added): (Vec<&str>, Vec<&str>) = started.partition(|n| has(old, n));
    let retired = (0..old.len()).filter(|&j| plan.retires(j)).map(|j| old[j].name());
    let removed: Vec<&str> = retired.filter(|n| !has(new, n)).collect();
    let kept: Vec<&str> =
        (0..new.len()).filter(|&i| !plan.starts(i)).map(|i| new[i].name()).collect();
    let mut parts = Vec::new();
    for (names, what) in [
        (changed, "changed (stopped with the old definition, started with the new one)"),
        (added, "added (started)"),
        (removed, "removed (stopped)"),
        (kept, "kept untouched"),
    ] {
        if !names.is_empty() {
            parts.push(format!("{} {what}", list(names)));
        }
    }
    if parts.is_empty() { "none".into() } else { parts.join("; ") }
}

/// Runs `meta-data` of `run`'s agent as an ordinary child writing to `run.out`.
fn spawn(
    now: Instant,
    run: &Run,
    paths: &agents::AgentPaths,
    children: &mut Children<Tag>,
) -> Result<ChildId, String> {
    let timeout = agents::timeout_for(&run.spec, None, Action::MetaData);
    let inv = command_for(&run.spec, Action::MetaData, paths, timeout)
        .map_err(|e| e.to_string())?
        .ok_or("no meta-data action")?;
    let program = inv.program.to_str().ok_or("agent path is not UTF-8")?;
    let args: Vec<&str> = inv.args.iter().filter_map(|a| a.to_str()).collect();
    let env: Vec<(&str, &str)> =
        inv.env.iter().filter_map(|(k, v)| Some((k.to_str()?, v.to_str()?))).collect();
    if args.len() != inv.args.len() || env.len() != inv.env.len() {
        return Err("an argument or environment variable is not UTF-8".into());
    }
    let spec = Spec {
        program: Program::Exec(program),
        args: &args,
        env: &env,
        clear_env: true,
        stdin: &[],
        stdout: Some(run.out.as_fd()),
        timeout,
        class: Class::Ordinary,
        tag: Tag::MetaData,
    };
    children.spawn(now, &spec).map_err(|e| format!("meta-data cannot start: {e}"))
}

/// What a finished run gave: the parsed meta-data, or why there is none.
fn read(run: &mut Run, status: ExitStatus) -> Result<MetaData, AgentError> {
    let path = || run.path.clone();
    let exit = match status {
        ExitStatus::Code(c) => Exit::Code(c),
        ExitStatus::Signaled(s) => Exit::Signal(s),
        ExitStatus::TimedOut => Exit::TimedOut,
        ExitStatus::ExecFailed(libc::ENOENT) => return Err(AgentError::Missing(path())),
        ExitStatus::ExecFailed(libc::EACCES) => return Err(AgentError::NotExecutable(path())),
        ExitStatus::ExecFailed(e) => Exit::ExecFailed(e),
    };
    match agents::interpret(run.spec.kind.class(), Action::MetaData, exit) {
        Outcome::Ok => {}
        Outcome::Failed(e) => return Err(AgentError::MetaDataFailed(e)),
        // INVARIANT: `interpret` answers `NotRunning` for monitor only.
        Outcome::NotRunning => return Err(AgentError::MetaDataFailed(agents::OcfError::Code(7))),
    }
    let mut xml = Vec::new();
    let read = run
        .out
        .seek(SeekFrom::Start(0))
        .and_then(|_| (&mut run.out).take(META_DATA_LEN_MAX).read_to_end(&mut xml));
    read.map_err(|e| AgentError::Spawn(e.kind()))?;
    MetaData::parse_bytes(&xml).map_err(AgentError::MetaDataInvalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::path::Path;

    fn config(resources: &str) -> Config {
        let text = format!("node a\nnode b\nauthkey /k\nbcast eth0\n{resources}");
        crate::config::parse_str(&text, Path::new("t.conf")).unwrap()
    }

    const GROUP: &str = "resource ip 192.0.2.100/24 dev eth0\n\
                         resource exec web start=\"a\" stop=\"b\"\n\
                         resource ocf p:One x=1\n\
                         resource ocf p:Two y=1\n";

    fn needed(old: &Config, new: &Config) -> Vec<usize> {
        MetaDataRuns::needed(&ResourcePlan::new(&old.resources, &new.resources), new)
    }

    #[test]
    fn only_changed_ocf_resources_need_meta_data() {
        let old = config(GROUP);
        assert!(needed(&old, &old).is_empty());
        let new = config(&GROUP.replace("start=\"a\"", "start=\"c\"").replace("y=1", "y=2"));
        assert_eq!(needed(&old, &new), [3], "exec needs none, One is the same");
        let new = config(&GROUP.replace("192.0.2.100", "192.0.2.101").replace("x=1", "x=2"));
        assert_eq!(needed(&old, &new), [2]);
        // An added OCF resource needs its meta-data; a kept one that moved does not.
        let new = config(&format!("resource ocf p:Three z=1\n{GROUP}"));
        assert_eq!(needed(&old, &new), [0]);
    }

    #[test]
    fn the_log_names_what_a_reload_does_to_each_resource() {
        let old = config(GROUP);
        let text = GROUP.replace("start=\"a\"", "start=\"c\"");
        let new =
            config(&(text.replace("resource ocf p:Two y=1\n", "") + "resource lsb apache2\n"));
        let plan = ResourcePlan::new(&old.resources, &new.resources);
        assert_eq!(
            describe(&old.resources, &new.resources, &plan),
            "web changed (stopped with the old definition, started with the new one); apache2 \
             added (started); Two removed (stopped); 192.0.2.100, One kept untouched"
        );
    }

    fn run(output: &[u8]) -> Run {
        let fd = memfd_create(c"test", MFdFlags::MFD_CLOEXEC).unwrap();
        let mut out = File::from(fd);
        // As the child does: the shared offset ends up after what it wrote.
        out.write_all(output).unwrap();
        let resource = &config("resource ocf p:One x=1\n").resources[0];
        let spec = agent_spec(resource).unwrap();
        Run { index: 0, spec, path: "/ocf/p/One".into(), out, child: None, result: None }
    }

    const XML: &[u8] = b"<resource-agent name=\"One\"><parameters><parameter name=\"x\"/>\
                         </parameters></resource-agent>";

    #[test]
    fn a_run_reads_what_the_agent_printed_or_says_why_not() {
        assert_eq!(read(&mut run(XML), ExitStatus::Code(0)).map(|m| m.agent), Ok("One".into()));
        let timed_out = read(&mut run(b""), ExitStatus::TimedOut);
        assert_eq!(timed_out, Err(AgentError::MetaDataFailed(agents::OcfError::TimedOut)));
        assert!(timed_out.unwrap_err().to_string().contains("timed out"));
        let failed = read(&mut run(XML), ExitStatus::Code(1));
        assert_eq!(failed, Err(AgentError::MetaDataFailed(agents::OcfError::Generic)));
        let missing = read(&mut run(b""), ExitStatus::ExecFailed(libc::ENOENT));
        assert_eq!(missing, Err(AgentError::Missing("/ocf/p/One".into())));
        let denied = read(&mut run(b""), ExitStatus::ExecFailed(libc::EACCES));
        assert_eq!(denied, Err(AgentError::NotExecutable("/ocf/p/One".into())));
        let garbage = read(&mut run(b"usage: One {start|stop}"), ExitStatus::Code(0));
        assert!(matches!(garbage, Err(AgentError::MetaDataInvalid(_))), "{garbage:?}");
    }

    #[test]
    fn finish_gives_every_meta_data_or_every_reason() {
        let new = config(GROUP);
        let mut ok = run(XML);
        ok.index = 2;
        ok.result = Some(read(&mut run(XML), ExitStatus::Code(0)).map_err(|e| e.to_string()));
        let runs = MetaDataRuns { config: new.clone(), runs: vec![ok] };
        assert!(runs.is_complete());
        let (config, metas) = runs.finish();
        assert_eq!(config, new);
        let metas = metas.unwrap();
        assert_eq!(metas.len(), 4);
        assert!(metas[2].is_some() && metas[3].is_none());

        let mut bad = run(XML);
        bad.result = Some(Err("resource One: meta-data failed: timed out".into()));
        let mut waiting = run(XML);
        waiting.spec.name = "Two".into();
        let runs = MetaDataRuns { config: new, runs: vec![bad, waiting] };
        assert!(!runs.is_complete());
        let err = runs.finish().1.unwrap_err();
        assert!(err.contains("One: meta-data failed: timed out"), "{err}");
        assert!(err.contains("Two: meta-data still running"), "{err}");
    }
}
