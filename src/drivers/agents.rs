//! Resource agents: how one action (start, stop, monitor, meta-data, validate-all) of one
//! resource is invoked, and what its exit status means. Three classes, the way operators
//! already have their services:
//!
//! - `exec`: shell commands from the configuration, run as `/bin/sh -c CMD`.
//! - `lsb`: an init script, `$INITD/NAME start|stop|status` (INITD default `/etc/init.d`).
//! - `ocf`: an OCF resource agent, `$OCF_ROOT/resource.d/PROVIDER/TYPE ACTION` with its
//!   parameters as `OCF_RESKEY_k=v` in the environment (OCF_ROOT default `/usr/lib/ocf`).
//!
//! Start-up builds a [`PreparedAgent`] per resource: the start, stop and monitor
//! [`Invocation`]s with their timeouts and ready-made `execve` arguments ([`ExecImage`]), so
//! that the steady state (a monitor every few seconds) spawns without building anything. The
//! child-process supervisor runs them, kills the process group on timeout and hands the exit
//! back as an [`Exit`]; [`interpret`] turns that into an [`Outcome`].
//!
//! **The environment is complete**: an invocation's `env` is the child's whole environment
//! (the supervisor clears its own): `PATH` and [`AgentPaths::extra_env`] always, and for OCF
//! agents `OCF_ROOT`, `OCF_RA_VERSION_MAJOR=1`, `OCF_RA_VERSION_MINOR=0`, `OCF_RESOURCE_INSTANCE` (the resource
//! name), `OCF_RESOURCE_PROVIDER`, `OCF_RESOURCE_TYPE`, `OCF_RESKEY_CRM_meta_timeout` (the
//! action's timeout in milliseconds, which many agents read) and `OCF_RESKEY_k=v` per
//! parameter. The working directory is `/`. Each action runs in its own process group.
//!
//! **Exec resources without a `monitor` command** have no monitor invocation
//! ([`PreparedAgent::action`] returns `None` for it). Such a resource is never probed: the
//! loop believes what it did last (running after a successful start, not running after a stop
//! and at daemon start). So a daemon restart runs its start command again on the active node:
//! its start must be idempotent. Assuming "always running" instead would let the adoption
//! probe adopt a service that was never started.
//!
//! **Exec monitor commands answer yes or no**: 0 is running, any other exit code is not
//! running (`pidof x`, `curl -fs URL`); only a signal or a timeout is a failed monitor.
//!
//! Meta-data ([`MetaData`]) is read by running the agent synchronously
//! ([`fetch_meta_data`], [`run_blocking`]) at start-up and in `hapair check` only, never from
//! the loop; a reload runs `meta-data` as a supervised child instead
//! (`event_loop/reload.rs`). [`validate`] checks an OCF resource's parameters against it and [`timeout_for`]
//! picks each action's timeout (the resource's own, else the agent's advice, else 20 s).
//!
//! This module does not spawn, reap or kill anything in the steady state (the supervisor
//! does), does not decide what to do after a failure (the core does), and does not parse the
//! configuration (the config parser builds the [`AgentSpec`]s).

mod blocking;
mod invocation;
mod metadata;
mod outcome;

pub use blocking::{Finished, fetch_meta_data, run_blocking};
pub use invocation::{ExecImage, Invocation, PreparedAction, PreparedAgent, command_for};
pub use metadata::{ActionMeta, MetaData, MetaDataError, ParameterMeta, parse_duration};
pub use outcome::{Exit, OcfError, Outcome, interpret};

use crate::core::time::Duration;
use core::fmt;
use std::path::{Path, PathBuf};

/// Where OCF agents live unless the configuration says otherwise.
pub const DEFAULT_OCF_ROOT: &str = "/usr/lib/ocf";
/// Where LSB init scripts live unless the configuration says otherwise.
pub const DEFAULT_INITD_DIR: &str = "/etc/init.d";
/// `PATH` given to every agent.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The program of a `drbd` resource's agent: the running binary itself.
pub const SELF_EXE: &str = "/proc/self/exe";
/// An action's timeout when neither the resource nor the agent's meta-data gives one.
pub const DEFAULT_ACTION_TIMEOUT: Duration = Duration::from_secs(20);

/// One action of a resource agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Start the resource; success means it runs.
    Start,
    /// Stop the resource; success means it no longer runs (also when it was not running).
    Stop,
    /// Is it running? (LSB `status`.)
    Monitor,
    /// Print the agent's XML description (OCF only).
    MetaData,
    /// Check the parameters without touching the resource (OCF only).
    ValidateAll,
}

impl Action {
    /// The argument an OCF agent gets for this action.
    pub const fn ocf_name(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Monitor => "monitor",
            Action::MetaData => "meta-data",
            Action::ValidateAll => "validate-all",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.ocf_name())
    }
}

/// What kind of agent a resource has, with what the configuration gave for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentKind {
    /// Shell commands, each run as `/bin/sh -c CMD`.
    Exec {
        /// The start command.
        start: String,
        /// The stop command.
        stop: String,
        /// The monitor command; `None`: never probed (see the module doc).
        monitor: Option<String>,
    },
    /// An init script `$INITD/NAME`.
    Lsb {
        /// The script's file name.
        name: String,
    },
    /// An OCF agent `$OCF_ROOT/resource.d/PROVIDER/TYPE`.
    Ocf {
        /// The provider directory, e.g. `heartbeat`.
        provider: String,
        /// The agent's file name, e.g. `IPaddr2`.
        type_: String,
        /// `key=value` parameters, in configuration order.
        params: Vec<(String, String)>,
    },
    /// A DRBD resource: this program's own agent, `hapair drbd-agent ACTION RES` (run as
    /// `/proc/self/exe` from the daemon's child, so always the binary that runs), OCF codes.
    Drbd {
        /// The DRBD resource.
        res: String,
    },
}

impl AgentKind {
    /// The class, a small `Copy` value the loop keeps to interpret exits.
    pub const fn class(&self) -> AgentClass {
        match self {
            AgentKind::Exec { .. } => AgentClass::Exec,
            AgentKind::Lsb { .. } => AgentClass::Lsb,
            AgentKind::Ocf { .. } | AgentKind::Drbd { .. } => AgentClass::Ocf,
        }
    }
}

/// The three agent classes, which differ in how exit codes read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AgentClass {
    /// Shell commands from the configuration.
    Exec,
    /// An LSB init script.
    Lsb,
    /// An OCF resource agent.
    Ocf,
}

/// One resource's agent, as the loop maps it from the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentSpec {
    /// The resource name (`OCF_RESOURCE_INSTANCE`).
    pub name: String,
    /// How its actions are run.
    pub kind: AgentKind,
    /// The resource's own `timeout`, which wins over the agent's advice for every action.
    pub timeout: Option<Duration>,
}

/// Where agents are found; tests point these at fixtures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentPaths {
    /// `OCF_ROOT`: agents are under `resource.d/PROVIDER/TYPE`.
    pub ocf_root: PathBuf,
    /// The directory of LSB init scripts.
    pub initd_dir: PathBuf,
    /// `PATH` in every agent's environment.
    pub path_env: String,
    /// More variables for every agent (after `PATH`, before the OCF ones); they may not set
    /// `PATH` or `OCF_*`.
    pub extra_env: Vec<(String, String)>,
}

impl Default for AgentPaths {
    fn default() -> AgentPaths {
        AgentPaths {
            ocf_root: PathBuf::from(DEFAULT_OCF_ROOT),
            initd_dir: PathBuf::from(DEFAULT_INITD_DIR),
            path_env: String::from(DEFAULT_PATH),
            extra_env: Vec::new(),
        }
    }
}

/// How a problem found at start-up is to be reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// Refuse: `run` does not start, `check` exits 1.
    Error,
    /// Report and go on.
    Warning,
}

/// Which command looks at the agents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckMode {
    /// `hapair run`: the agents must be there.
    Run,
    /// `hapair check`.
    Check,
    /// `hapair check --offline`: the configuration may be checked on another machine.
    CheckOffline,
}

/// A resource agent that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentError {
    /// A provider, type or script name that is empty, contains `/` or starts with `.`.
    BadName(String),
    /// No agent file at this path.
    Missing(PathBuf),
    /// The agent file is there but is not an executable regular file.
    NotExecutable(PathBuf),
    /// A command, name or value contains a NUL byte, which `execve` cannot pass.
    NulByte,
    /// The agent could not be spawned.
    Spawn(std::io::ErrorKind),
    /// `meta-data` did not exit 0.
    MetaDataFailed(OcfError),
    /// `meta-data` printed something that is not an OCF description.
    MetaDataInvalid(MetaDataError),
}

impl AgentError {
    /// How this problem is reported by `mode`: a missing agent only warns under
    /// `check --offline` (the configuration may be meant for another machine); everything
    /// else is an error.
    pub const fn severity(&self, mode: CheckMode) -> Severity {
        match (self, mode) {
            (AgentError::Missing(_), CheckMode::CheckOffline) => Severity::Warning,
            _ => Severity::Error,
        }
    }
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentError::BadName(n) => write!(f, "bad agent name {n:?}"),
            AgentError::Missing(p) => write!(f, "agent {} is not installed", p.display()),
            AgentError::NotExecutable(p) => write!(f, "agent {} is not executable", p.display()),
            AgentError::NulByte => f.write_str("a command or parameter contains a NUL byte"),
            AgentError::Spawn(k) => write!(f, "cannot run the agent: {k}"),
            AgentError::MetaDataFailed(e) => write!(f, "meta-data failed: {e}"),
            AgentError::MetaDataInvalid(e) => write!(f, "meta-data unreadable: {e}"),
        }
    }
}

/// A parameter problem found by [`validate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValidationError {
    /// The agent's meta-data does not list this parameter.
    UnknownParameter(String),
    /// The agent marks this parameter required and the resource does not set it.
    MissingParameter(String),
    /// The resource sets this parameter more than once.
    DuplicateParameter(String),
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValidationError::UnknownParameter(n) => {
                write!(f, "unknown parameter {n:?} (not in the agent's meta-data)")
            }
            ValidationError::MissingParameter(n) => write!(f, "missing required parameter {n:?}"),
            ValidationError::DuplicateParameter(n) => write!(f, "parameter {n:?} set twice"),
        }
    }
}

/// The agent file of `spec` (`None` for exec resources, which have none).
pub fn agent_path(spec: &AgentSpec, paths: &AgentPaths) -> Result<Option<PathBuf>, AgentError> {
    match &spec.kind {
        AgentKind::Exec { .. } => Ok(None),
        AgentKind::Lsb { name } => Ok(Some(paths.initd_dir.join(checked_name(name)?))),
        AgentKind::Drbd { .. } => Ok(Some(PathBuf::from(SELF_EXE))),
        AgentKind::Ocf { provider, type_, .. } => {
            let dir = paths.ocf_root.join("resource.d").join(checked_name(provider)?);
            Ok(Some(dir.join(checked_name(type_)?)))
        }
    }
}

/// Checks that the agent of `spec` is installed and executable; exec resources always pass.
pub fn locate(spec: &AgentSpec, paths: &AgentPaths) -> Result<(), AgentError> {
    match agent_path(spec, paths)? {
        None => Ok(()),
        Some(path) => check_executable(&path),
    }
}

/// Checks an OCF resource's parameters against its agent's meta-data: unknown, missing
/// required and repeated parameters are errors. Other classes have nothing to check.
pub fn validate(spec: &AgentSpec, meta: &MetaData) -> Result<(), Vec<ValidationError>> {
    let AgentKind::Ocf { params, .. } = &spec.kind else {
        return Ok(());
    };
    let mut errors = Vec::new();
    for (i, (key, _)) in params.iter().enumerate() {
        if meta.parameter(key).is_none() {
            errors.push(ValidationError::UnknownParameter(key.clone()));
        }
        if params[..i].iter().any(|(k, _)| k == key) {
            errors.push(ValidationError::DuplicateParameter(key.clone()));
        }
    }
    for p in meta.parameters.iter().filter(|p| p.required) {
        if !params.iter().any(|(k, _)| *k == p.name) {
            errors.push(ValidationError::MissingParameter(p.name.clone()));
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// The timeout of `action`: the resource's own, else the agent's advice in its meta-data,
/// else [`DEFAULT_ACTION_TIMEOUT`].
pub fn timeout_for(spec: &AgentSpec, meta: Option<&MetaData>, action: Action) -> Duration {
    spec.timeout
        .or_else(|| meta.and_then(|m| m.action(action)).and_then(|a| a.timeout))
        .unwrap_or(DEFAULT_ACTION_TIMEOUT)
}

fn checked_name(name: &str) -> Result<&str, AgentError> {
    if name.is_empty() || name.starts_with('.') || name.contains(['/', '\0']) {
        return Err(AgentError::BadName(name.to_owned()));
    }
    Ok(name)
}

fn check_executable(path: &Path) -> Result<(), AgentError> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Err(_) => Err(AgentError::Missing(path.to_owned())),
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(()),
        Ok(_) => Err(AgentError::NotExecutable(path.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ocf(params: &[(&str, &str)], timeout: Option<Duration>) -> AgentSpec {
        let params = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        AgentSpec {
            name: "r".into(),
            kind: AgentKind::Ocf { provider: "p".into(), type_: "T".into(), params },
            timeout,
        }
    }

    const META: &str = r#"<resource-agent name="T"><parameters>
        <parameter name="ip" required="1" unique="1"/><parameter name="nic"/>
        </parameters><actions><action name="start" timeout="7s"/></actions>
        </resource-agent>"#;

    #[test]
    fn validate_reports_unknown_missing_and_duplicate() {
        let meta = MetaData::parse(META).unwrap();
        assert_eq!(validate(&ocf(&[("ip", "x")], None), &meta), Ok(()));
        let bad = ocf(&[("nic", "a"), ("nic", "b"), ("colour", "red")], None);
        assert_eq!(
            validate(&bad, &meta),
            Err(vec![
                ValidationError::DuplicateParameter("nic".into()),
                ValidationError::UnknownParameter("colour".into()),
                ValidationError::MissingParameter("ip".into()),
            ])
        );
    }

    #[test]
    fn timeout_precedence() {
        let meta = MetaData::parse(META).unwrap();
        let own = Some(Duration::from_secs(3));
        assert_eq!(timeout_for(&ocf(&[], own), Some(&meta), Action::Start), Duration::from_secs(3));
        let none = ocf(&[], None);
        assert_eq!(timeout_for(&none, Some(&meta), Action::Start), Duration::from_secs(7));
        assert_eq!(timeout_for(&none, Some(&meta), Action::Stop), DEFAULT_ACTION_TIMEOUT);
        assert_eq!(timeout_for(&none, None, Action::Start), DEFAULT_ACTION_TIMEOUT);
    }

    #[test]
    fn names_cannot_escape_their_directory() {
        let paths = AgentPaths::default();
        for bad in ["", "..", "../x", "a/b", ".hidden"] {
            let spec = AgentSpec {
                name: "r".into(),
                kind: AgentKind::Lsb { name: bad.into() },
                timeout: None,
            };
            assert_eq!(agent_path(&spec, &paths), Err(AgentError::BadName(bad.into())));
        }
    }

    #[test]
    fn missing_agent_warns_only_offline() {
        let e = AgentError::Missing(PathBuf::from("/nowhere"));
        assert_eq!(e.severity(CheckMode::Run), Severity::Error);
        assert_eq!(e.severity(CheckMode::Check), Severity::Error);
        assert_eq!(e.severity(CheckMode::CheckOffline), Severity::Warning);
        assert_eq!(AgentError::NulByte.severity(CheckMode::CheckOffline), Severity::Error);
    }
}
