//! What an agent's exit means: the OCF and LSB exit-code tables, and their names and meanings
//! for status and logs ("OCF_ERR_INSTALLED (5): not installed").
//!
//! LSB init-script actions other than `status` use the same codes 1-7 as OCF (OCF took them
//! from LSB), so they share one table; LSB `status` has its own (0 running, 1 dead with a pid
//! file, 2 dead with a lock file, 3 not running, 4 unknown). This file only reads codes; it
//! neither runs nor kills anything.

use super::{Action, AgentClass};
use core::fmt;

/// How an action's process ended, as the supervisor saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// A signal killed it (other than our own timeout kill).
    Signal(i32),
    /// It ran past its timeout and its process group was killed.
    TimedOut,
    /// The program could not be executed (errno of `execve`): the agent never ran.
    ExecFailed(i32),
}

impl From<std::process::ExitStatus> for Exit {
    fn from(status: std::process::ExitStatus) -> Exit {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => Exit::Code(code),
            (None, Some(sig)) => Exit::Signal(sig),
            // Neither: a stopped or continued status, which `wait` does not report.
            (None, None) => Exit::Code(-1),
        }
    }
}

/// What an action's exit means for the resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The action succeeded; after a monitor: the resource runs.
    Ok,
    /// A monitor found the resource cleanly stopped.
    NotRunning,
    /// The action failed; after a monitor: the resource is in a failed state.
    Failed(OcfError),
}

/// Why an action failed. `Display` gives the code's name and meaning for status and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OcfError {
    /// 1: generic error.
    Generic,
    /// 2: invalid or excess argument.
    Args,
    /// 3: unimplemented feature.
    Unimplemented,
    /// 4: insufficient privileges.
    Perm,
    /// 5: not installed (a needed program or file is missing).
    Installed,
    /// 6: not configured (the parameters cannot work).
    Configured,
    /// 7 from an action other than monitor, which must not return it.
    NotRunning,
    /// 8 from an action other than monitor.
    RunningMaster,
    /// 9: failed master (promoted instance in a failed state).
    FailedMaster,
    /// LSB status 1: dead, but its pid file exists.
    LsbDeadPidFile,
    /// LSB status 2: dead, but its lock file exists.
    LsbDeadLockFile,
    /// LSB status 4 (or 5-149 from status): the state is unknown.
    LsbStatusUnknown(i32),
    /// An exit code outside the tables (or any non-zero code from an exec command).
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
    /// Ran past its timeout; its process group was killed.
    TimedOut,
    /// The agent could not be executed (errno of `execve`): it never ran.
    NotExecuted(i32),
}

impl OcfError {
    /// The exit code behind this error, for "last exit code" in status; `None` for a signal
    /// or a timeout.
    pub const fn exit_code(self) -> Option<i32> {
        Some(match self {
            OcfError::Generic => 1,
            OcfError::Args => 2,
            OcfError::Unimplemented => 3,
            OcfError::Perm => 4,
            OcfError::Installed => 5,
            OcfError::Configured => 6,
            OcfError::NotRunning => 7,
            OcfError::RunningMaster => 8,
            OcfError::FailedMaster => 9,
            OcfError::LsbDeadPidFile => 1,
            OcfError::LsbDeadLockFile => 2,
            OcfError::LsbStatusUnknown(c) | OcfError::Code(c) => c,
            OcfError::Signal(_) | OcfError::TimedOut | OcfError::NotExecuted(_) => return None,
        })
    }

    /// The OCF table: codes 1-9 by name, others as they are.
    pub const fn from_ocf_code(code: i32) -> OcfError {
        match code {
            1 => OcfError::Generic,
            2 => OcfError::Args,
            3 => OcfError::Unimplemented,
            4 => OcfError::Perm,
            5 => OcfError::Installed,
            6 => OcfError::Configured,
            7 => OcfError::NotRunning,
            8 => OcfError::RunningMaster,
            9 => OcfError::FailedMaster,
            c => OcfError::Code(c),
        }
    }
}

impl fmt::Display for OcfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, code, meaning) = match *self {
            OcfError::Generic => ("OCF_ERR_GENERIC", 1, "generic error"),
            OcfError::Args => ("OCF_ERR_ARGS", 2, "invalid argument"),
            OcfError::Unimplemented => ("OCF_ERR_UNIMPLEMENTED", 3, "unimplemented feature"),
            OcfError::Perm => ("OCF_ERR_PERM", 4, "insufficient privileges"),
            OcfError::Installed => ("OCF_ERR_INSTALLED", 5, "not installed"),
            OcfError::Configured => ("OCF_ERR_CONFIGURED", 6, "not configured"),
            OcfError::NotRunning => ("OCF_NOT_RUNNING", 7, "not running"),
            OcfError::RunningMaster => ("OCF_RUNNING_MASTER", 8, "running as master"),
            OcfError::FailedMaster => ("OCF_FAILED_MASTER", 9, "failed master"),
            OcfError::LsbDeadPidFile => return f.write_str("LSB status 1: dead, pid file exists"),
            OcfError::LsbDeadLockFile => {
                return f.write_str("LSB status 2: dead, lock file exists");
            }
            OcfError::LsbStatusUnknown(c) => return write!(f, "LSB status {c}: status unknown"),
            OcfError::Code(c) => return write!(f, "exit code {c}: {}", exit_meaning(c)),
            OcfError::Signal(sig) => return write!(f, "killed by {}", signal_name(sig)),
            OcfError::TimedOut => return f.write_str("timed out (process group killed)"),
            OcfError::NotExecuted(e) => {
                let e = std::io::Error::from_raw_os_error(e);
                return write!(f, "could not be executed: {e}");
            }
        };
        write!(f, "{name} ({code}): {meaning}")
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Ok => f.write_str("ok"),
            Outcome::NotRunning => f.write_str("not running"),
            Outcome::Failed(e) => write!(f, "failed: {e}"),
        }
    }
}

/// What `exit` of `action` means for an agent of `class`.
pub const fn interpret(class: AgentClass, action: Action, exit: Exit) -> Outcome {
    let code = match exit {
        Exit::Code(code) => code,
        Exit::Signal(sig) => return Outcome::Failed(OcfError::Signal(sig)),
        Exit::TimedOut => return Outcome::Failed(OcfError::TimedOut),
        Exit::ExecFailed(e) => return Outcome::Failed(OcfError::NotExecuted(e)),
    };
    match (class, action, code) {
        (_, _, 0) => Outcome::Ok,
        (AgentClass::Exec, Action::Monitor, _) => Outcome::NotRunning,
        (AgentClass::Exec, _, c) => Outcome::Failed(OcfError::Code(c)),
        (AgentClass::Lsb, Action::Monitor, c) => lsb_status(c),
        (AgentClass::Ocf, Action::Monitor, 7) => Outcome::NotRunning,
        (AgentClass::Ocf, Action::Monitor, 8) => Outcome::Ok,
        (AgentClass::Lsb | AgentClass::Ocf, _, c) => Outcome::Failed(OcfError::from_ocf_code(c)),
    }
}

const fn lsb_status(code: i32) -> Outcome {
    match code {
        1 => Outcome::Failed(OcfError::LsbDeadPidFile),
        2 => Outcome::Failed(OcfError::LsbDeadLockFile),
        3 => Outcome::NotRunning,
        4..=149 => Outcome::Failed(OcfError::LsbStatusUnknown(code)),
        c => Outcome::Failed(OcfError::Code(c)),
    }
}

fn exit_meaning(code: i32) -> &'static str {
    match code {
        126 => "command not executable",
        127 => "command not found",
        _ => "failed",
    }
}

fn signal_name(sig: i32) -> &'static str {
    match nix::sys::signal::Signal::try_from(sig) {
        Ok(s) => s.as_str(),
        Err(_) => "an unknown signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ocf_monitor_codes() {
        let m = |c| interpret(AgentClass::Ocf, Action::Monitor, Exit::Code(c));
        assert_eq!(m(0), Outcome::Ok);
        assert_eq!(m(7), Outcome::NotRunning);
        assert_eq!(m(8), Outcome::Ok);
        assert_eq!(m(9), Outcome::Failed(OcfError::FailedMaster));
        assert_eq!(m(5), Outcome::Failed(OcfError::Installed));
        assert_eq!(m(42), Outcome::Failed(OcfError::Code(42)));
    }

    #[test]
    fn start_and_stop_succeed_only_on_zero() {
        for class in [AgentClass::Exec, AgentClass::Lsb, AgentClass::Ocf] {
            for action in [Action::Start, Action::Stop] {
                assert_eq!(interpret(class, action, Exit::Code(0)), Outcome::Ok);
                assert!(matches!(interpret(class, action, Exit::Code(7)), Outcome::Failed(_)));
            }
        }
        let stop = interpret(AgentClass::Ocf, Action::Stop, Exit::Code(7));
        assert_eq!(stop, Outcome::Failed(OcfError::NotRunning));
    }

    #[test]
    fn lsb_status_codes() {
        let s = |c| interpret(AgentClass::Lsb, Action::Monitor, Exit::Code(c));
        assert_eq!(s(0), Outcome::Ok);
        assert_eq!(s(1), Outcome::Failed(OcfError::LsbDeadPidFile));
        assert_eq!(s(2), Outcome::Failed(OcfError::LsbDeadLockFile));
        assert_eq!(s(3), Outcome::NotRunning);
        assert_eq!(s(4), Outcome::Failed(OcfError::LsbStatusUnknown(4)));
        assert_eq!(s(200), Outcome::Failed(OcfError::Code(200)));
    }

    #[test]
    fn exec_monitor_is_yes_or_no_but_signals_fail() {
        let m = |e| interpret(AgentClass::Exec, Action::Monitor, e);
        assert_eq!(m(Exit::Code(0)), Outcome::Ok);
        assert_eq!(m(Exit::Code(1)), Outcome::NotRunning);
        assert_eq!(m(Exit::Signal(9)), Outcome::Failed(OcfError::Signal(9)));
        assert_eq!(m(Exit::TimedOut), Outcome::Failed(OcfError::TimedOut));
    }

    #[test]
    fn an_agent_that_cannot_be_executed_fails_every_action() {
        for class in [AgentClass::Exec, AgentClass::Lsb, AgentClass::Ocf] {
            for action in [Action::Start, Action::Stop, Action::Monitor] {
                let out = interpret(class, action, Exit::ExecFailed(libc::ENOENT));
                assert_eq!(out, Outcome::Failed(OcfError::NotExecuted(libc::ENOENT)));
            }
        }
        let e = OcfError::NotExecuted(libc::EACCES);
        assert_eq!(e.to_string(), "could not be executed: Permission denied (os error 13)");
        assert_eq!(e.exit_code(), None, "it never ran, so it has no exit code");
    }

    #[test]
    fn display_names_code_and_meaning() {
        assert_eq!(OcfError::Installed.to_string(), "OCF_ERR_INSTALLED (5): not installed");
        assert_eq!(OcfError::LsbDeadPidFile.to_string(), "LSB status 1: dead, pid file exists");
        assert_eq!(OcfError::Signal(9).to_string(), "killed by SIGKILL");
        assert_eq!(OcfError::Code(127).to_string(), "exit code 127: command not found");
        assert_eq!(OcfError::TimedOut.exit_code(), None);
        assert_eq!(OcfError::Configured.exit_code(), Some(6));
    }
}
