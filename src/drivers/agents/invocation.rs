//! How to run one action: program, arguments and complete environment ([`Invocation`]), the
//! same as ready `execve` arguments ([`ExecImage`]), and the per-resource set built once at
//! start-up ([`PreparedAgent`]). Building allocates; using a prepared agent does not.
//!
//! This file does not spawn in the steady state; [`Invocation::to_command`] is for start-up
//! helpers and tests, the supervisor execs an [`ExecImage`].

use super::{
    Action, AgentClass, AgentError, AgentKind, AgentPaths, AgentSpec, Exit, MetaData, Outcome,
    agent_path, interpret, timeout_for,
};
use crate::core::time::Duration;
use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The shell that runs exec commands.
const SHELL: &str = "/bin/sh";

/// One way to run one action: `program args...` with exactly `env` as its environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    /// The file to execute.
    pub program: PathBuf,
    /// Arguments after argv\[0\] (argv\[0\] is the program).
    pub args: Vec<OsString>,
    /// The child's whole environment.
    pub env: Vec<(OsString, OsString)>,
}

impl Invocation {
    /// A `Command` for this invocation: cleared environment, working directory `/`, stdin from
    /// /dev/null, its own process group. For start-up helpers and tests.
    pub fn to_command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir("/")
            .stdin(Stdio::null())
            .process_group(0);
        cmd
    }

    /// The same as `execve` arguments, built now so that spawning later builds nothing.
    pub fn exec_image(&self) -> Result<ExecImage, AgentError> {
        let c = |s: &OsStr| CString::new(s.as_bytes()).map_err(|_| AgentError::NulByte);
        let path = c(self.program.as_os_str())?;
        let mut argv = Vec::with_capacity(self.args.len() + 1);
        argv.push(path.clone());
        for a in &self.args {
            argv.push(c(a)?);
        }
        let mut envp = Vec::with_capacity(self.env.len());
        for (k, v) in &self.env {
            if k.as_bytes().contains(&b'=') {
                return Err(AgentError::BadName(k.to_string_lossy().into_owned()));
            }
            let mut kv = k.clone().into_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            envp.push(CString::new(kv).map_err(|_| AgentError::NulByte)?);
        }
        Ok(ExecImage { path, argv, envp })
    }
}

/// `execve(path, argv, envp)` arguments, ready before the loop starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecImage {
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
}

impl ExecImage {
    /// The program to execute.
    pub fn path(&self) -> &CString {
        &self.path
    }

    /// argv, argv\[0\] included.
    pub fn argv(&self) -> &[CString] {
        &self.argv
    }

    /// The environment as `KEY=VALUE` strings.
    pub fn envp(&self) -> &[CString] {
        &self.envp
    }
}

/// One prepared action: how to run it and how long it may take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreparedAction {
    /// How to run it.
    pub invocation: Invocation,
    /// The same, as `execve` arguments.
    pub image: ExecImage,
    /// Kill its process group after this long.
    pub timeout: Duration,
}

/// A resource's start, stop and monitor actions, built once at start-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreparedAgent {
    /// The agent class, to interpret exits.
    pub class: AgentClass,
    start: PreparedAction,
    stop: PreparedAction,
    monitor: Option<PreparedAction>,
}

impl PreparedAgent {
    /// Builds the three actions of `spec`, with timeouts from [`timeout_for`] (pass the
    /// agent's meta-data when it was read). Does not check that the agent is installed:
    /// call [`super::locate`] for that.
    pub fn prepare(
        spec: &AgentSpec,
        paths: &AgentPaths,
        meta: Option<&MetaData>,
    ) -> Result<PreparedAgent, AgentError> {
        let one = |action| -> Result<Option<PreparedAction>, AgentError> {
            let timeout = timeout_for(spec, meta, action);
            let Some(invocation) = command_for(spec, action, paths, timeout)? else {
                return Ok(None);
            };
            let image = invocation.exec_image()?;
            Ok(Some(PreparedAction { invocation, image, timeout }))
        };
        // INVARIANT: every class has a start and a stop invocation (see `command_for`).
        let (Some(start), Some(stop)) = (one(Action::Start)?, one(Action::Stop)?) else {
            unreachable!("start and stop exist for every agent class");
        };
        Ok(PreparedAgent { class: spec.kind.class(), start, stop, monitor: one(Action::Monitor)? })
    }

    /// The prepared `action`; `None` for a missing exec monitor and for meta-data and
    /// validate-all, which are never run from the loop.
    pub fn action(&self, action: Action) -> Option<&PreparedAction> {
        match action {
            Action::Start => Some(&self.start),
            Action::Stop => Some(&self.stop),
            Action::Monitor => self.monitor.as_ref(),
            Action::MetaData | Action::ValidateAll => None,
        }
    }

    /// What `exit` of `action` means for this agent.
    pub fn interpret(&self, action: Action, exit: Exit) -> Outcome {
        interpret(self.class, action, exit)
    }
}

/// How to run `action` of `spec` with `timeout` (passed to OCF agents); `Ok(None)` when the
/// class has no such action: an exec resource without a monitor command, and meta-data or
/// validate-all of exec and LSB resources.
pub fn command_for(
    spec: &AgentSpec,
    action: Action,
    paths: &AgentPaths,
    timeout: Duration,
) -> Result<Option<Invocation>, AgentError> {
    let mut base_env = vec![(OsString::from("PATH"), OsString::from(&paths.path_env))];
    for (k, v) in &paths.extra_env {
        if k.is_empty() || k == "PATH" || k.starts_with("OCF_") || k.contains(['=', '\0']) {
            return Err(AgentError::BadName(k.clone()));
        }
        base_env.push((k.into(), v.into()));
    }
    let program = agent_path(spec, paths)?;
    match (&spec.kind, program) {
        (AgentKind::Exec { start, stop, monitor }, _) => {
            let cmd = match action {
                Action::Start => start,
                Action::Stop => stop,
                Action::Monitor => match monitor {
                    Some(m) => m,
                    None => return Ok(None),
                },
                Action::MetaData | Action::ValidateAll => return Ok(None),
            };
            let args = vec![OsString::from("-c"), OsString::from(cmd)];
            Ok(Some(Invocation { program: SHELL.into(), args, env: base_env }))
        }
        (AgentKind::Lsb { .. }, Some(program)) => {
            let arg = match action {
                Action::Start => "start",
                Action::Stop => "stop",
                Action::Monitor => "status",
                Action::MetaData | Action::ValidateAll => return Ok(None),
            };
            Ok(Some(Invocation { program, args: vec![arg.into()], env: base_env }))
        }
        (AgentKind::Ocf { provider, type_, params }, Some(program)) => {
            let mut env = base_env;
            env.reserve(params.len() + 7);
            let mut set = |k: &str, v: &OsStr| env.push((OsString::from(k), v.to_owned()));
            set("OCF_ROOT", paths.ocf_root.as_os_str());
            set("OCF_RA_VERSION_MAJOR", "1".as_ref());
            set("OCF_RA_VERSION_MINOR", "0".as_ref());
            set("OCF_RESOURCE_INSTANCE", spec.name.as_ref());
            set("OCF_RESOURCE_PROVIDER", provider.as_ref());
            set("OCF_RESOURCE_TYPE", type_.as_ref());
            set("OCF_RESKEY_CRM_meta_timeout", timeout.total_millis().to_string().as_ref());
            for (k, v) in params {
                if k.is_empty() || k.contains(['=', '\0']) {
                    return Err(AgentError::BadName(k.clone()));
                }
                env.push((format!("OCF_RESKEY_{k}").into(), v.into()));
            }
            Ok(Some(Invocation { program, args: vec![action.ocf_name().into()], env }))
        }
        (AgentKind::Drbd { res }, Some(program)) => {
            let arg = match action {
                Action::Start => "start",
                Action::Stop => "stop",
                Action::Monitor => "monitor",
                Action::MetaData | Action::ValidateAll => return Ok(None),
            };
            let args = vec!["drbd-agent".into(), arg.into(), res.into()];
            Ok(Some(Invocation { program, args, env: base_env }))
        }
        // INVARIANT: `agent_path` returns a path for every class but exec.
        (AgentKind::Lsb { .. } | AgentKind::Ocf { .. } | AgentKind::Drbd { .. }, None) => {
            unreachable!("LSB and OCF agents always have a path")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: AgentKind) -> AgentSpec {
        AgentSpec { name: "web".into(), kind, timeout: None }
    }

    fn env_of<'a>(inv: &'a Invocation, key: &str) -> Option<&'a OsStr> {
        inv.env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_os_str())
    }

    #[test]
    fn ocf_invocation_has_the_agent_environment() {
        let s = spec(AgentKind::Ocf {
            provider: "heartbeat".into(),
            type_: "Dummy".into(),
            params: vec![("state".into(), "/tmp/x".into())],
        });
        let paths = AgentPaths::default();
        let t = Duration::from_secs(5);
        let inv = command_for(&s, Action::Monitor, &paths, t).unwrap().unwrap();
        assert_eq!(inv.program, PathBuf::from("/usr/lib/ocf/resource.d/heartbeat/Dummy"));
        assert_eq!(inv.args, [OsString::from("monitor")]);
        assert_eq!(env_of(&inv, "OCF_RESKEY_state"), Some("/tmp/x".as_ref()));
        assert_eq!(env_of(&inv, "OCF_RESOURCE_INSTANCE"), Some("web".as_ref()));
        assert_eq!(env_of(&inv, "OCF_RESKEY_CRM_meta_timeout"), Some("5000".as_ref()));
        assert_eq!(env_of(&inv, "OCF_ROOT"), Some("/usr/lib/ocf".as_ref()));
        let image = inv.exec_image().unwrap();
        assert_eq!(image.argv()[1].as_bytes(), b"monitor");
        assert!(image.envp().iter().any(|e| e.as_bytes() == b"OCF_RA_VERSION_MAJOR=1"));
    }

    #[test]
    fn exec_without_monitor_has_no_monitor() {
        let s = spec(AgentKind::Exec { start: "true".into(), stop: "true".into(), monitor: None });
        let agent = PreparedAgent::prepare(&s, &AgentPaths::default(), None).unwrap();
        assert!(agent.action(Action::Monitor).is_none());
        let start = agent.action(Action::Start).unwrap();
        assert_eq!(start.invocation.program, PathBuf::from("/bin/sh"));
        assert_eq!(start.invocation.args, [OsString::from("-c"), OsString::from("true")]);
    }

    #[test]
    fn lsb_monitor_is_status() {
        let s = spec(AgentKind::Lsb { name: "apache2".into() });
        let agent = PreparedAgent::prepare(&s, &AgentPaths::default(), None).unwrap();
        let status = agent.action(Action::Monitor).unwrap();
        assert_eq!(status.invocation.program, PathBuf::from("/etc/init.d/apache2"));
        assert_eq!(status.invocation.args, [OsString::from("status")]);
    }

    #[test]
    fn extra_env_cannot_override_path_or_ocf() {
        let s = spec(AgentKind::Lsb { name: "x".into() });
        for key in ["PATH", "OCF_ROOT", "A=B", ""] {
            let paths =
                AgentPaths { extra_env: vec![(key.into(), "v".into())], ..Default::default() };
            assert_eq!(
                PreparedAgent::prepare(&s, &paths, None),
                Err(AgentError::BadName(key.into()))
            );
        }
        let paths =
            AgentPaths { extra_env: vec![("LANG".into(), "C".into())], ..Default::default() };
        let agent = PreparedAgent::prepare(&s, &paths, None).unwrap();
        let env = &agent.action(Action::Stop).unwrap().invocation.env;
        assert_eq!(env[1], (OsString::from("LANG"), OsString::from("C")));
    }

    #[test]
    fn nul_bytes_are_refused() {
        let s = spec(AgentKind::Exec { start: "a\0b".into(), stop: "x".into(), monitor: None });
        let err = PreparedAgent::prepare(&s, &AgentPaths::default(), None);
        assert_eq!(err, Err(AgentError::NulByte));
    }
}
