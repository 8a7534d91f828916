//! The meta-data runs of a reload (SPEC §7.3: a reload never blocks the loop). A reloaded
//! configuration whose changed resources include OCF agents needs their meta-data (to check
//! the parameters and pick the timeouts) before the new definitions can take effect. Each
//! agent's `meta-data` runs as an ordinary supervised child whose stdout goes into a memfd
//! (in memory: writing it never blocks the agent, reading it never blocks us); when the child
//! is reaped, the memfd is read and parsed. The loop meanwhile goes on beating, serving
//! status and running the group as before. Once every run is in, `finish` hands back the
//! meta-data, or the reason (per resource) why the reload of the resources is refused: a run
//! that timed out (the resource's or the default 20 s action timeout), failed, could not be
//! executed or printed no meta-data.
//!
//! This is stricter than start-up, which takes an agent without meta-data with the default
//! timeouts (the daemon must come up); at a reload the running definitions stay instead.
//!
//! Not here: what changed and whether it may be applied (`Daemon::reload`), building the
//! group from the meta-data (`Group::reloaded`), and parsing the XML (`agents::MetaData`).
//! Allocates (a reload is no steady state).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::AsFd;
use std::path::PathBuf;

use log::{debug, error, info, warn};
use nix::sys::memfd::{MFdFlags, memfd_create};

use crate::config::{Config, agents::agent_paths, agents::agent_spec};
use crate::core::time::Instant;
use crate::drivers::agents::{
    self, Action, AgentError, AgentKind, AgentSpec, Exit, MetaData, Outcome, command_for,
};
use crate::drivers::children::{ChildId, Children, Class, ExitStatus, Exited, Program, Spec};

use super::Daemon;
use super::group::Tag;
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
    /// whose definition differs from `old`'s at the same place.
    pub fn needed(old: &Config, new: &Config) -> Vec<usize> {
        let changed =
            |(i, r): &(usize, &crate::config::Resource)| old.resources.get(*i) != Some(*r);
        new.resources
            .iter()
            .enumerate()
            .filter(changed)
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

impl Daemon {
    /// New resource definitions take effect while this node holds nothing (nothing runs that
    /// could be touched), once the meta-data of the changed OCF agents is in; while it holds
    /// the group, or for a different number of resources, they wait for a restart.
    pub(super) fn reload_resources(
        &mut self,
        now: Instant,
        new: &Config,
        applied: &mut heapless::Vec<&str, 4>,
        needs_restart: &mut heapless::Vec<&str, 8>,
    ) {
        let same_count = new.resources.len() == self.config.resources.len();
        if !same_count || self.core.holds() || self.group.is_busy() {
            let _ = needs_restart.push("resources (while holding, or a different count)");
            return;
        }
        let needed = MetaDataRuns::needed(&self.config, new);
        if needed.is_empty() {
            if self.apply_resources(new, &[]) {
                let _ = applied.push("resources");
            }
            return;
        }
        let node = self.config.nodes[usize::from(self.me)].clone();
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

    /// Applies the resources of a reload whose meta-data is all in, or refuses them; then
    /// runs the reload that waited, if any.
    fn finish_meta_data(&mut self, now: Instant, runs: MetaDataRuns) {
        let (new, metas) = runs.finish();
        match metas {
            Err(e) => error!("reload: resources refused, the old ones stay: {e}"),
            Ok(_) if self.core.holds() || self.group.is_busy() => warn!(
                "reload: the group was taken while the meta-data was read; changes to \
                 resources need a restart of hapair, running resources were not touched"
            ),
            Ok(metas) => {
                if self.apply_resources(&new, &metas) {
                    info!("reload: applied resources");
                }
            }
        }
        if core::mem::take(&mut self.reload_again) {
            self.reload(now);
        }
    }

    /// Replaces the group with the one `new` defines; false (logged) when it cannot be made.
    fn apply_resources(&mut self, new: &Config, metas: &[Option<MetaData>]) -> bool {
        let node = self.config.nodes[usize::from(self.me)].clone();
        match self.group.reloaded(&self.config, new, &node, metas) {
            Ok(group) => {
                self.group = group;
                self.config.resources.clone_from(&new.resources);
                report::init_resources(&mut self.snapshot, &self.group);
                true
            }
            Err(e) => {
                error!("reload: resources refused, the old ones stay: {e}");
                false
            }
        }
    }
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

    #[test]
    fn only_changed_ocf_resources_need_meta_data() {
        let old = config(GROUP);
        assert!(MetaDataRuns::needed(&old, &old).is_empty());
        let new = config(&GROUP.replace("start=\"a\"", "start=\"c\"").replace("y=1", "y=2"));
        assert_eq!(MetaDataRuns::needed(&old, &new), [3], "exec needs none, One is the same");
        let new = config(&GROUP.replace("192.0.2.100", "192.0.2.101").replace("x=1", "x=2"));
        assert_eq!(MetaDataRuns::needed(&old, &new), [2]);
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
