//! `hapair check` and `hapair run` against the installed agents (issue 7): OCF parameters are
//! checked against the agent's meta-data (unknown or missing required ones are errors, with
//! FILE:LINE of the resource), a missing agent is an error for `check` and `run` and a warning
//! for `check --offline`. The agents are the fixtures of tests/fixtures/agents
//! (`HAPAIR_OCF_ROOT`, `HAPAIR_INITD`) and the real `ocf:heartbeat:Dummy`.
//!
//! Not here: the validation rules themselves (`drivers::agents::validate`,
//! tests/drivers/agents_run.rs).

use std::process::{Command, Output};

use crate::common::TempDir;
use crate::common::bin::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/agents");

/// A configuration whose lines 5.. are `resources`; returns (config, cmdline) paths.
fn setup(dir: &TempDir, resources: &str) -> (String, String) {
    let key = dir.write_mode("authkey", KEY, 0o600);
    let text = format!("node alpha\nnode beta\nauthkey {}\nbcast eth1\n{resources}", s(&key));
    let conf = dir.write("hapair.conf", &text);
    let sock = dir.join("hapair.sock");
    let state = dir.join("state");
    let cmdline = dir
        .write("cmdline", &format!("hapair.control={} hapair.statedir={}\n", s(&sock), s(&state)));
    (s(&conf).to_string(), s(&cmdline).to_string())
}

/// `hapair ARGS -c CONF --cmdline CMDLINE --node alpha` with the fixture agents.
fn hapair_with_agents(args: &[&str], (conf, cmdline): &(String, String)) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hapair"))
        .args(args)
        .args(["-c", conf, "--cmdline", cmdline, "--node", "alpha"])
        .env("HAPAIR_OCF_ROOT", format!("{FIXTURES}/ocf"))
        .env("HAPAIR_INITD", format!("{FIXTURES}/init.d"))
        .env("RUST_LOG", "info")
        .output()
        .unwrap()
}

#[test]
fn valid_agent_resources_pass_check() {
    let dir = TempDir::new("agents-check-ok");
    let files = setup(
        &dir,
        "resource ocf hapair-test:Stateful state=/run/x fake=1\n\
         resource lsb hapair-lsb\n\
         resource ocf hapair-test:Logged state=/run/y log=/run/z\n",
    );
    let out = hapair_with_agents(&["check"], &files);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out).matches(": resource ").count(), 0, "{}", stderr(&out));
}

#[test]
fn unknown_and_missing_parameters_are_errors_at_their_line() {
    let dir = TempDir::new("agents-check-params");
    let files = setup(
        &dir,
        "resource ocf hapair-test:Stateful state=/run/x bogus=1\n\
         resource ocf hapair-test:Logged state=/run/y\n",
    );
    for args in [&["check"][..], &["check", "--offline"]] {
        let out = hapair_with_agents(args, &files);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        let conf = &files.0;
        assert!(
            err.contains(&format!("{conf}:5: resource Stateful: unknown parameter \"bogus\"")),
            "{err}"
        );
        assert!(
            err.contains(&format!("{conf}:6: resource Logged: missing required parameter \"log\"")),
            "{err}"
        );
    }
}

#[test]
fn a_missing_agent_fails_check_and_run_but_only_warns_offline() {
    let dir = TempDir::new("agents-check-missing");
    let files = setup(
        &dir,
        "resource ocf hapair-test:Stateful state=/run/x\n\
         resource ocf hapair-test:NotInstalled\n\
         resource lsb no-such-script\n",
    );
    let conf = &files.0;
    let out = hapair_with_agents(&["check"], &files);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("{conf}:6: resource NotInstalled: agent ")), "{err}");
    assert!(err.contains(&format!("{conf}:7: resource no-such-script: agent ")), "{err}");
    assert!(err.contains("is not installed"), "{err}");

    let out = hapair_with_agents(&["check", "--offline"], &files);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains(&format!("{conf}:6: warning: resource NotInstalled: agent ")), "{err}");
    assert!(err.contains(&format!("{conf}:7: warning: resource no-such-script")), "{err}");

    let out = hapair_with_agents(&["run"], &files);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("NotInstalled") && err.contains("is not installed"), "{err}");
}

#[test]
fn run_refuses_parameters_the_meta_data_rejects() {
    let dir = TempDir::new("agents-run-params");
    let files = setup(&dir, "resource ocf hapair-test:Stateful state=/run/x bogus=1\n");
    let out = hapair_with_agents(&["run"], &files);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("unknown parameter \"bogus\""), "{err}");
}

#[test]
fn the_real_dummy_agent_is_checked_against_its_meta_data() {
    if !std::path::Path::new("/usr/lib/ocf/resource.d/heartbeat/Dummy").exists() {
        panic!("resource-agents is not installed (scripts/test.sh installs it)");
    }
    let dir = TempDir::new("agents-check-dummy");
    let files = setup(&dir, "resource ocf heartbeat:Dummy state=/run/x no_such_param=2\n");
    let out = Command::new(env!("CARGO_BIN_EXE_hapair"))
        .args(["check", "-c", &files.0, "--cmdline", &files.1, "--node", "alpha"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(":5: resource Dummy: unknown parameter \"no_such_param\""), "{err}");
}
