//! Resource agents run for real: the invocations of `drivers::agents` executed as processes
//! (synchronously, through `run_blocking`) against the fixtures in tests/fixtures/agents and
//! the real `ocf:heartbeat:Dummy` and `IPaddr2` of the resource-agents package
//! (scripts/test.sh installs it). IPaddr2 only ever runs inside a network namespace of the
//! test's own (its `network_namespace` parameter), on a veth pair, with 203.0.113.0/24.

use crate::common::TempDir;
use hapair::core::time::Duration;
use hapair::drivers::agents::{
    Action, AgentError, AgentKind, AgentPaths, AgentSpec, CheckMode, Exit, MetaData, OcfError,
    Outcome, PreparedAgent, Severity, ValidationError, fetch_meta_data, locate, run_blocking,
    timeout_for, validate,
};
use std::ffi::OsString;
use std::path::Path;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/agents");
const REAL_OCF_ROOT: &str = "/usr/lib/ocf";
/// Generous: only a broken agent comes near it.
const TIMEOUT: Duration = Duration::from_secs(30);

fn fixture_paths() -> AgentPaths {
    AgentPaths {
        ocf_root: Path::new(FIXTURES).join("ocf"),
        initd_dir: Path::new(FIXTURES).join("init.d"),
        ..AgentPaths::default()
    }
}

fn real_paths() -> AgentPaths {
    AgentPaths { ocf_root: REAL_OCF_ROOT.into(), ..AgentPaths::default() }
}

fn ocf(name: &str, provider: &str, type_: &str, params: &[(&str, &str)]) -> AgentSpec {
    let params = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let kind = AgentKind::Ocf { provider: provider.into(), type_: type_.into(), params };
    AgentSpec { name: name.into(), kind, timeout: None }
}

/// Runs the prepared `action` of `agent` and interprets its exit.
fn run(agent: &PreparedAgent, action: Action) -> Outcome {
    let prepared = agent.action(action).unwrap();
    let done = run_blocking(&prepared.invocation, prepared.timeout).unwrap();
    agent.interpret(action, done.exit)
}

#[test]
fn real_dummy_start_monitor_stop() {
    let dir = TempDir::new("agents-dummy");
    let state = dir.join("dummy.state");
    let spec = ocf("dummy1", "heartbeat", "Dummy", &[("state", state.to_str().unwrap())]);
    let paths = real_paths();
    locate(&spec, &paths).unwrap();
    let meta = fetch_meta_data(&spec, &paths).unwrap().unwrap();
    validate(&spec, &meta).unwrap();
    let agent = PreparedAgent::prepare(&spec, &paths, Some(&meta)).unwrap();

    assert_eq!(run(&agent, Action::Monitor), Outcome::NotRunning);
    assert_eq!(run(&agent, Action::Start), Outcome::Ok);
    assert!(state.exists(), "Dummy start creates its state file");
    assert_eq!(run(&agent, Action::Monitor), Outcome::Ok);
    assert_eq!(run(&agent, Action::Stop), Outcome::Ok);
    assert!(!state.exists(), "Dummy stop removes its state file");
    assert_eq!(run(&agent, Action::Monitor), Outcome::NotRunning);
    assert_eq!(run(&agent, Action::Stop), Outcome::Ok, "stopping a stopped Dummy succeeds");
}

#[test]
fn real_dummy_meta_data() {
    let spec = ocf("d", "heartbeat", "Dummy", &[]);
    let meta = fetch_meta_data(&spec, &real_paths()).unwrap().unwrap();
    assert_eq!(meta.agent, "Dummy");
    let state = meta.parameter("state").unwrap();
    assert!(state.unique && !state.required);
    assert!(meta.parameter("fake").is_some());
    assert!(meta.parameters.iter().all(|p| !p.required));
    let monitor = meta.action(Action::Monitor).unwrap();
    assert_eq!(monitor.timeout, Some(Duration::from_secs(20)));
    assert_eq!(monitor.interval, Some(Duration::from_secs(10)));
    assert_eq!(meta.action(Action::MetaData).unwrap().timeout, Some(Duration::from_secs(5)));
    assert_eq!(validate(&spec, &meta), Ok(()));
}

#[test]
fn real_ipaddr2_meta_data_and_validation() {
    let paths = real_paths();
    let bare = ocf("vip", "heartbeat", "IPaddr2", &[]);
    let meta = fetch_meta_data(&bare, &paths).unwrap().unwrap();
    assert_eq!(meta.agent, "IPaddr2");
    let required: Vec<_> =
        meta.parameters.iter().filter(|p| p.required).map(|p| p.name.as_str()).collect();
    assert_eq!(required, ["ip"]);
    assert!(meta.parameter("ip").unwrap().unique);
    assert!(meta.parameter("cidr_netmask").is_some() && meta.parameter("nic").is_some());
    for action in [Action::Start, Action::Stop, Action::Monitor] {
        assert_eq!(timeout_for(&bare, Some(&meta), action), Duration::from_secs(20));
    }
    assert_eq!(meta.action(Action::Monitor).unwrap().interval, Some(Duration::from_secs(10)));

    let errors = validate(&bare, &meta).unwrap_err();
    assert_eq!(errors, [ValidationError::MissingParameter("ip".into())]);
    let typo = ocf("vip", "heartbeat", "IPaddr2", &[("ip", "192.0.2.10"), ("netmask", "24")]);
    let errors = validate(&typo, &meta).unwrap_err();
    assert_eq!(errors, [ValidationError::UnknownParameter("netmask".into())]);
    let good = ocf("vip", "heartbeat", "IPaddr2", &[("ip", "192.0.2.10"), ("cidr_netmask", "24")]);
    assert_eq!(validate(&good, &meta), Ok(()));

    // The agent agrees: validate-all without an address is OCF_ERR_CONFIGURED.
    let inv = hapair::drivers::agents::command_for(&bare, Action::ValidateAll, &paths, TIMEOUT)
        .unwrap()
        .unwrap();
    let done = run_blocking(&inv, TIMEOUT).unwrap();
    let outcome = hapair::drivers::agents::interpret(
        hapair::drivers::agents::AgentClass::Ocf,
        Action::ValidateAll,
        done.exit,
    );
    assert_eq!(outcome, Outcome::Failed(OcfError::Configured));
    assert_eq!(OcfError::Configured.to_string(), "OCF_ERR_CONFIGURED (6): not configured");
}

#[test]
fn fixture_meta_data_gives_timeouts_below_the_resource_own() {
    let dir = TempDir::new("agents-stateful");
    let state = dir.join("s");
    let mut spec = ocf("s", "hapair-test", "Stateful", &[("state", state.to_str().unwrap())]);
    let meta = fetch_meta_data(&spec, &fixture_paths()).unwrap().unwrap();
    let file = std::fs::read(Path::new(FIXTURES).join("metadata/minimal.xml")).unwrap();
    assert_eq!(meta, MetaData::parse_bytes(&file).unwrap());
    let t = |spec: &AgentSpec, a| timeout_for(spec, Some(&meta), a);
    assert_eq!(t(&spec, Action::Start), Duration::from_secs(7));
    assert_eq!(t(&spec, Action::Stop), Duration::from_secs(9));
    assert_eq!(t(&spec, Action::Monitor), Duration::from_secs(3));
    assert_eq!(timeout_for(&spec, None, Action::Monitor), Duration::from_secs(20));
    spec.timeout = Some(Duration::from_millis(1500));
    assert_eq!(t(&spec, Action::Stop), Duration::from_millis(1500));

    let agent = PreparedAgent::prepare(&spec, &fixture_paths(), Some(&meta)).unwrap();
    assert_eq!(agent.action(Action::Start).unwrap().timeout, Duration::from_millis(1500));
    let env = &agent.action(Action::Start).unwrap().invocation.env;
    let crm = env.iter().find(|(k, _)| k == "OCF_RESKEY_CRM_meta_timeout").unwrap();
    assert_eq!(crm.1, OsString::from("1500"));
    assert_eq!(run(&agent, Action::Start), Outcome::Ok);
    assert_eq!(run(&agent, Action::Monitor), Outcome::Ok);
    assert_eq!(run(&agent, Action::Stop), Outcome::Ok);
    assert_eq!(run(&agent, Action::Monitor), Outcome::NotRunning);
}

#[test]
fn fixture_validation_errors() {
    let paths = fixture_paths();
    let spec = ocf("s", "hapair-test", "Stateful", &[("colour", "red")]);
    let meta = fetch_meta_data(&spec, &paths).unwrap().unwrap();
    let errors = validate(&spec, &meta).unwrap_err();
    assert_eq!(
        errors,
        [
            ValidationError::UnknownParameter("colour".into()),
            ValidationError::MissingParameter("state".into()),
        ]
    );
    assert_eq!(errors[1].to_string(), "missing required parameter \"state\"");
}

#[test]
fn each_ocf_exit_code_is_mapped() {
    let paths = fixture_paths();
    let expected = [
        (0, Outcome::Ok, Outcome::Ok),
        (1, Outcome::Failed(OcfError::Generic), Outcome::Failed(OcfError::Generic)),
        (2, Outcome::Failed(OcfError::Args), Outcome::Failed(OcfError::Args)),
        (3, Outcome::Failed(OcfError::Unimplemented), Outcome::Failed(OcfError::Unimplemented)),
        (4, Outcome::Failed(OcfError::Perm), Outcome::Failed(OcfError::Perm)),
        (5, Outcome::Failed(OcfError::Installed), Outcome::Failed(OcfError::Installed)),
        (6, Outcome::Failed(OcfError::Configured), Outcome::Failed(OcfError::Configured)),
        (7, Outcome::NotRunning, Outcome::Failed(OcfError::NotRunning)),
        (8, Outcome::Ok, Outcome::Failed(OcfError::RunningMaster)),
        (9, Outcome::Failed(OcfError::FailedMaster), Outcome::Failed(OcfError::FailedMaster)),
        (42, Outcome::Failed(OcfError::Code(42)), Outcome::Failed(OcfError::Code(42))),
    ];
    for (code, monitor, start) in expected {
        let spec = ocf("e", "hapair-test", "ExitCode", &[("code", &code.to_string())]);
        let agent = PreparedAgent::prepare(&spec, &paths, None).unwrap();
        assert_eq!(run(&agent, Action::Monitor), monitor, "monitor exit {code}");
        assert_eq!(run(&agent, Action::Start), start, "start exit {code}");
        if let Outcome::Failed(e) = start {
            assert_eq!(e.exit_code(), Some(code));
        }
    }
}

#[test]
fn failing_agent_and_its_meta_data() {
    let paths = fixture_paths();
    let spec = ocf("f", "hapair-test", "Fail", &[]);
    assert_eq!(fetch_meta_data(&spec, &paths), Err(AgentError::MetaDataFailed(OcfError::Generic)));
    let agent = PreparedAgent::prepare(&spec, &paths, None).unwrap();
    let start = agent.action(Action::Start).unwrap();
    let done = run_blocking(&start.invocation, start.timeout).unwrap();
    assert_eq!(done.exit, Exit::Code(1));
    assert_eq!(done.stderr, b"Fail: start failed on purpose\n");
    assert_eq!(agent.interpret(Action::Start, done.exit), Outcome::Failed(OcfError::Generic));
}

#[test]
fn hanging_start_times_out_and_its_process_group_dies() {
    let dir = TempDir::new("agents-hang");
    let pidfile = dir.join("pid");
    let mut spec = ocf("h", "hapair-test", "Hang", &[("pidfile", pidfile.to_str().unwrap())]);
    spec.timeout = Some(Duration::from_millis(300));
    let agent = PreparedAgent::prepare(&spec, &fixture_paths(), None).unwrap();
    assert_eq!(run(&agent, Action::Start), Outcome::Failed(OcfError::TimedOut));
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    // The agent led its own process group; every member (the shell and its sleep) must die.
    // Zombies count as dead: orphans wait for init to reap them.
    let gone = poll_until(|| live_group_members(pid) == 0);
    assert!(gone, "process group {pid} still alive after the timeout kill");
}

#[test]
fn environment_is_complete_and_clean() {
    let spec = ocf("inst", "hapair-test", "Env", &[("k", "v w")]);
    let paths = fixture_paths();
    let agent = PreparedAgent::prepare(&spec, &paths, None).unwrap();
    let monitor = agent.action(Action::Monitor).unwrap();
    let done = run_blocking(&monitor.invocation, monitor.timeout).unwrap();
    let out = String::from_utf8(done.stdout).unwrap();
    let root = format!("OCF_ROOT={}", paths.ocf_root.display());
    for line in ["args=monitor", "cwd=/", "OCF_RESKEY_k=v w", "OCF_RESOURCE_INSTANCE=inst"] {
        assert!(out.lines().any(|l| l == line), "{line:?} missing from:\n{out}");
    }
    for line in [root.as_str(), "OCF_RA_VERSION_MAJOR=1", "OCF_RA_VERSION_MINOR=0"] {
        assert!(out.lines().any(|l| l == line), "{line:?} missing from:\n{out}");
    }
    assert!(out.lines().any(|l| l == "OCF_RESKEY_CRM_meta_timeout=20000"), "{out}");
    assert!(!out.contains("CARGO"), "the test's environment leaked into the agent:\n{out}");
    let err = fetch_meta_data(&spec, &paths).unwrap_err();
    assert!(matches!(err, AgentError::MetaDataInvalid(_)), "{err:?}");
}

#[test]
fn missing_agent_is_an_error_except_offline() {
    let spec = ocf("x", "hapair-test", "NoSuchAgent", &[]);
    let err = locate(&spec, &fixture_paths()).unwrap_err();
    assert!(matches!(err, AgentError::Missing(_)), "{err:?}");
    assert_eq!(err.severity(CheckMode::Run), Severity::Error);
    assert_eq!(err.severity(CheckMode::CheckOffline), Severity::Warning);
    assert_eq!(fetch_meta_data(&spec, &fixture_paths()), Err(err));
    // A file that is there but not executable.
    let paths = AgentPaths { initd_dir: Path::new(FIXTURES).join("metadata"), ..fixture_paths() };
    let kind = AgentKind::Lsb { name: "minimal.xml".into() };
    let err = locate(&AgentSpec { kind, ..spec }, &paths).unwrap_err();
    assert!(matches!(err, AgentError::NotExecutable(_)), "{err:?}");
}

/// The LSB fixture with its state directory, stopped on drop so no `sleep` outlives a failure.
struct LsbFixture {
    agent: PreparedAgent,
    dir: TempDir,
}

impl LsbFixture {
    fn new() -> LsbFixture {
        let dir = TempDir::new("agents-lsb");
        let spec = AgentSpec {
            name: "svc".into(),
            kind: AgentKind::Lsb { name: "hapair-lsb".into() },
            timeout: Some(TIMEOUT),
        };
        // The fixture finds its state directory in its environment.
        let state = dir.path().to_str().unwrap().to_owned();
        let paths =
            AgentPaths { extra_env: vec![("HAPAIR_LSB_STATE".into(), state)], ..fixture_paths() };
        locate(&spec, &paths).unwrap();
        let agent = PreparedAgent::prepare(&spec, &paths, None).unwrap();
        LsbFixture { agent, dir }
    }

    fn run(&self, action: Action) -> Outcome {
        run(&self.agent, action)
    }
}

impl Drop for LsbFixture {
    fn drop(&mut self) {
        let _ = self.run(Action::Stop);
    }
}

#[test]
fn lsb_fixture_start_status_stop_status() {
    let lsb = LsbFixture::new();
    assert_eq!(lsb.run(Action::Monitor), Outcome::NotRunning);
    assert_eq!(lsb.run(Action::Start), Outcome::Ok);
    assert_eq!(lsb.run(Action::Monitor), Outcome::Ok);
    assert_eq!(lsb.run(Action::Start), Outcome::Ok, "starting a running service succeeds");
    assert_eq!(lsb.run(Action::Stop), Outcome::Ok);
    assert_eq!(lsb.run(Action::Monitor), Outcome::NotRunning);
    assert_eq!(lsb.run(Action::Stop), Outcome::Ok, "stopping a stopped service succeeds");
}

#[test]
fn lsb_fixture_dead_with_pid_file() {
    let lsb = LsbFixture::new();
    assert_eq!(lsb.run(Action::Start), Outcome::Ok);
    let pidfile = lsb.dir.join("hapair-lsb.pid");
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    // The service is a process this test started (through the script): end it by its pid.
    let service = nix::unistd::Pid::from_raw(pid);
    nix::sys::signal::kill(service, nix::sys::signal::Signal::SIGKILL).unwrap();
    let dead = poll_until(|| lsb.run(Action::Monitor) != Outcome::Ok);
    assert!(dead, "status still reports the killed service running");
    assert_eq!(lsb.run(Action::Monitor), Outcome::Failed(OcfError::LsbDeadPidFile));
    assert_eq!(lsb.run(Action::Stop), Outcome::Ok);
    assert_eq!(lsb.run(Action::Monitor), Outcome::NotRunning);
}

/// Processes in process group `pgid` that are not zombies, from /proc.
fn live_group_members(pgid: i32) -> usize {
    let mut live = 0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // Fields after the command (which may hold spaces): state ppid pgrp ...
        let Some((_, rest)) = stat.rsplit_once(") ") else { continue };
        let fields: Vec<&str> = rest.split(' ').collect();
        if fields.get(2) == Some(&pgid.to_string().as_str()) && !matches!(fields[0], "Z" | "X") {
            live += 1;
        }
    }
    live
}

/// Polls `done` every 10 ms for up to 10 s.
fn poll_until(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..1000 {
        if done() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    false
}

/// A network namespace of our own with a veth pair `hp0`/`hp1` (both inside it), `hp0`
/// holding 203.0.113.1/24; deleted on drop, also when the test fails.
struct LabNamespace(String);

impl LabNamespace {
    fn new(tag: &str) -> LabNamespace {
        let ns = LabNamespace(format!("hapair-ag-{tag}-{}", std::process::id()));
        let _ = std::process::Command::new("ip").args(["netns", "del", &ns.0]).status();
        ip(&["netns", "add", &ns.0]);
        ip(&["-n", &ns.0, "link", "add", "hp0", "type", "veth", "peer", "name", "hp1"]);
        ip(&["-n", &ns.0, "link", "set", "hp1", "up"]);
        ip(&["-n", &ns.0, "link", "set", "hp0", "up"]);
        ip(&["-n", &ns.0, "addr", "add", "203.0.113.1/24", "dev", "hp0"]);
        ns
    }

    fn addresses(&self) -> String {
        let out = std::process::Command::new("ip")
            .args(["-n", &self.0, "-4", "-o", "addr", "show", "dev", "hp0"])
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for LabNamespace {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn ip(args: &[&str]) {
    let status = std::process::Command::new("ip").args(args).status().unwrap();
    assert!(status.success(), "ip {args:?} failed");
}

#[test]
fn real_ipaddr2_in_a_lab_namespace() {
    let lab = LabNamespace::new("ip2");
    // An address of our own per run, so parallel runs do not share send_arp's pid file.
    let vip = format!("203.0.113.{}", 20 + std::process::id() % 200);
    let params = [
        ("ip", vip.as_str()),
        ("cidr_netmask", "24"),
        ("nic", "hp0"),
        ("network_namespace", lab.0.as_str()),
        ("arp_count", "1"),
    ];
    let spec = ocf("vip", "heartbeat", "IPaddr2", &params);
    let paths = real_paths();
    let meta = fetch_meta_data(&spec, &paths).unwrap().unwrap();
    validate(&spec, &meta).unwrap();
    let agent = PreparedAgent::prepare(&spec, &paths, Some(&meta)).unwrap();
    let has_vip = || lab.addresses().contains(&format!("inet {vip}/24"));

    assert_eq!(run(&agent, Action::Monitor), Outcome::NotRunning);
    assert_eq!(run(&agent, Action::Start), Outcome::Ok);
    assert!(has_vip(), "{vip} not on hp0: {}", lab.addresses());
    assert_eq!(run(&agent, Action::Monitor), Outcome::Ok);
    assert_eq!(run(&agent, Action::Stop), Outcome::Ok);
    assert!(!has_vip(), "{vip} still on hp0: {}", lab.addresses());
    assert_eq!(run(&agent, Action::Monitor), Outcome::NotRunning);
}
