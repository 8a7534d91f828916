//! The configured resources against the agents installed on this machine: the agent
//! description of each resource (`agent_spec`), where agents live (`agent_paths`), and the
//! `check` of OCF parameters against each agent's meta-data, with FILE:LINE of the resource.
//!
//! Not here: running agents for the group (event_loop/group.rs), and the syntax of `resource`
//! lines (parse.rs). Reading meta-data runs the agent once, blocking: for `check` and start-up
//! only, never in the loop.

use std::path::PathBuf;

use super::load;
use super::parse::Loc;
use super::{ConfigError, LoadOptions, Resource};
use crate::drivers::agents::{self, AgentKind, AgentPaths, AgentSpec, CheckMode, Severity};

/// One problem with a resource's agent, located at the resource's line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentIssue {
    /// Error (refuse) or warning (report and go on).
    pub severity: Severity,
    /// Where and what.
    pub error: ConfigError,
}

/// Where agents live; `HAPAIR_OCF_ROOT` and `HAPAIR_INITD` move them (tests, odd installs).
/// Every agent also gets `HAPAIR_NODE=node` in its environment, so a command shared by both
/// nodes' configuration can tell where it runs (the nodes may share a filesystem, as in the
/// namespace lab, or be configured from one image).
pub fn agent_paths(node: &str) -> AgentPaths {
    let mut paths = AgentPaths::default();
    paths.extra_env.push(("HAPAIR_NODE".into(), node.into()));
    if let Some(root) = std::env::var_os("HAPAIR_OCF_ROOT") {
        paths.ocf_root = PathBuf::from(root);
    }
    if let Some(dir) = std::env::var_os("HAPAIR_INITD") {
        paths.initd_dir = PathBuf::from(dir);
    }
    paths
}

/// The agent description of a configured resource; `None` for `ip`.
pub fn agent_spec(resource: &Resource) -> Option<AgentSpec> {
    let (kind, timeout) = match resource {
        Resource::Ip(_) => return None,
        Resource::Exec(e) => (
            AgentKind::Exec {
                start: e.start.clone(),
                stop: e.stop.clone(),
                monitor: e.monitor.clone(),
            },
            Some(e.timeout),
        ),
        Resource::Lsb { name } => (AgentKind::Lsb { name: name.clone() }, None),
        Resource::Drbd { name } => (AgentKind::Drbd { res: name.clone() }, None),
        Resource::Ocf(o) => (
            AgentKind::Ocf {
                provider: o.provider.clone(),
                type_: o.agent.clone(),
                params: o.params.iter().cloned().collect(),
            },
            None,
        ),
    };
    Some(AgentSpec { name: resource.name().to_string(), kind, timeout })
}

/// Checks every agent resource of `config` (as loaded with `opts`): the agent is installed
/// and executable (a missing one only warns under `CheckMode::CheckOffline`), and an OCF
/// agent's meta-data knows every parameter given and gets every required one.
pub fn check_agents(
    opts: &LoadOptions,
    config: &super::Config,
    node: &str,
    mode: CheckMode,
) -> Vec<AgentIssue> {
    let paths = agent_paths(node);
    let locs = resource_locations(opts);
    let mut issues = Vec::new();
    for (i, resource) in config.resources.iter().enumerate() {
        let Some(spec) = agent_spec(resource) else { continue };
        let at = |severity: Severity, msg: String| {
            let (file, line) = match locs.get(i) {
                Some(l) if l.cmdline => (opts.cmdline.clone(), l.line),
                Some(l) => (opts.config.clone(), l.line),
                None => (opts.config.clone(), 0),
            };
            let error = ConfigError::new(file, line, format!("resource {}: {msg}", spec.name));
            AgentIssue { severity, error }
        };
        if let Err(e) = agents::locate(&spec, &paths) {
            issues.push(at(e.severity(mode), e.to_string()));
            continue;
        }
        match agents::fetch_meta_data(&spec, &paths) {
            Ok(Some(meta)) => {
                if let Err(errors) = agents::validate(&spec, &meta) {
                    issues.extend(errors.iter().map(|e| at(Severity::Error, e.to_string())));
                }
            }
            Ok(None) => {}
            Err(e) => issues.push(at(e.severity(mode), e.to_string())),
        }
    }
    issues
}

/// The lines of the `resource` directives, or nothing when the files cannot be read again
/// (the errors then point at the whole file).
fn resource_locations(opts: &LoadOptions) -> Vec<Loc> {
    let Ok(cmdline) = super::read_cmdline(opts) else { return Vec::new() };
    let Ok(text) = std::fs::read(&opts.config) else { return Vec::new() };
    load::resource_locations(&text, &opts.config, &cmdline).unwrap_or_default()
}
