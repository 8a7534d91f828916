//! The command line (SPEC §1): parses the arguments with lexopt, loads what each command
//! needs, and maps every outcome to an exit code. It never runs the daemon's logic itself:
//! `run` hands over to `event_loop::run`, the admin commands send one request line over the
//! control socket (`control`), and all checking of the files is `config`'s.
//!
//! Exit codes: 0 success; 1 the request failed or the configuration is invalid; 2 usage
//! error; 3 the daemon is not running (every command that talks to the daemon: `status`,
//! `standby`, `online`, `takeover`, `maintenance`, `cleanup`). A user the control socket does
//! not admit, or who asks a member's socket for more than `status`, gets 1 and `permission
//! denied`: the daemon may well be running. Those commands read the configuration file only
//! (to find the socket), never the authkey, so a `control_group` member can run `status`.
//!
//! `check` and `run` also refuse the example configuration that the Debian package installs
//! (scripts/deb/hapair.conf) until it has been edited: it carries the line `EXAMPLE_MARKER`,
//! and the message says what to edit. The marker is a word the parser does not know, so every
//! other reader of the file (the client commands, a reload) refuses it too, if less politely.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::{self, Config, ConfigError, LoadOptions};
use crate::control::{self, ControlError};
use crate::drivers::agents::{CheckMode, Severity};
use crate::migrate;

/// Success.
pub const EXIT_OK: i32 = 0;
/// The request failed or the configuration is invalid.
pub const EXIT_FAILED: i32 = 1;
/// The command line is wrong.
pub const EXIT_USAGE: i32 = 2;
/// The daemon is not running.
pub const EXIT_NOT_RUNNING: i32 = 3;

/// The line of the packaged example configuration (scripts/deb/hapair.conf) that an operator
/// deletes once the file describes the pair: `check` and `run` refuse a file that has it.
pub const EXAMPLE_MARKER: &str = "edit_me_then_delete_this_line";

/// What `check` and `run` say about a file that still has `EXAMPLE_MARKER`.
pub const EXAMPLE_MESSAGE: &str = "this is the example configuration of the hapair package, \
     not yet edited for this pair: set the two node names, the authkey (make it with \
     `hapair keygen`), the heartbeat media, the resources, health and fencing \
     (hapair.conf(5)), then delete this line";

/// Runs the command line of this process; returns the exit code.
pub fn main() -> i32 {
    // The daemon's log never makes the loop wait (drivers::logsink).
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .target(env_logger::Target::Pipe(Box::new(crate::drivers::logsink::LogSink::stderr())))
        .init();
    run_args(std::env::args_os().skip(1))
}

/// Runs the command given by `args` (without the program name); returns the exit code.
pub fn run_args(args: impl IntoIterator<Item = OsString>) -> i32 {
    match parse(args) {
        Ok(Parsed::Help(text)) => {
            print!("{text}");
            EXIT_OK
        }
        Ok(Parsed::Version) => {
            print!("{}", version());
            EXIT_OK
        }
        Ok(Parsed::Command(cmd, opts)) => execute(cmd, &opts),
        Err(msg) => {
            eprintln!("hapair: {msg}\nTry 'hapair --help'.");
            EXIT_USAGE
        }
    }
}

/// One command of SPEC §1 with its own arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Run,
    Check {
        print: bool,
        offline: bool,
    },
    Status {
        format: StatusFormat,
    },
    Standby,
    Online,
    Takeover {
        force: bool,
        group: Option<String>,
    },
    Move {
        group: String,
    },
    Maintenance {
        on: bool,
    },
    Cleanup {
        resource: Option<String>,
    },
    Keygen,
    ImportHeartbeat {
        dir: PathBuf,
    },
    ExportPacemaker,
    Version,
    /// DRBD's fence-peer handler (SPEC §7.5); the resource from `DRBD_RESOURCE` when absent.
    DrbdFencePeer {
        resource: Option<String>,
    },
    /// The `drbd` resource's agent, run by the daemon as its child.
    DrbdAgent {
        action: String,
        resource: String,
    },
}

/// How `status` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusFormat {
    Human,
    Json,
    Prometheus,
}

enum Parsed {
    Help(&'static str),
    Version,
    Command(Command, LoadOptions),
}

/// Flags seen anywhere on the line; which are allowed depends on the command.
#[derive(Default)]
struct Flags {
    help: bool,
    version: bool,
    print: bool,
    offline: bool,
    json: bool,
    prometheus: bool,
    force: bool,
}

fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Parsed, String> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args);
    let mut opts = LoadOptions::default();
    let mut flags = Flags::default();
    let mut positional: Vec<String> = Vec::new();
    let e = |e: lexopt::Error| e.to_string();
    while let Some(arg) = p.next().map_err(e)? {
        match arg {
            Short('c') | Long("config") => opts.config = p.value().map_err(e)?.into(),
            Long("cmdline") => opts.cmdline = p.value().map_err(e)?.into(),
            Long("node") => opts.node = Some(p.value().map_err(e)?.string().map_err(e)?),
            Short('h') | Long("help") => flags.help = true,
            Short('V') | Long("version") => flags.version = true,
            Long("print") => flags.print = true,
            Long("offline") => flags.offline = true,
            Long("json") => flags.json = true,
            Long("prometheus") => flags.prometheus = true,
            Long("force") => flags.force = true,
            Value(v) => positional.push(v.string().map_err(e)?),
            _ => return Err(arg.unexpected().to_string()),
        }
    }
    // Like --help, --version wins over whatever else the line says.
    if flags.version && !flags.help {
        return Ok(Parsed::Version);
    }
    let Some((name, rest)) = positional.split_first() else {
        return if flags.help { Ok(Parsed::Help(USAGE)) } else { Err("no command given".into()) };
    };
    if name == "help" {
        return match rest {
            [] => Ok(Parsed::Help(USAGE)),
            [c] => help_for(c).map(Parsed::Help).ok_or_else(|| format!("unknown command {c}")),
            _ => Err("help takes at most one command".into()),
        };
    }
    let help = help_for(name).ok_or_else(|| format!("unknown command \"{name}\""))?;
    if flags.help {
        return Ok(Parsed::Help(help));
    }
    Ok(Parsed::Command(command(name, rest, &flags)?, opts))
}

fn command(name: &str, rest: &[String], flags: &Flags) -> Result<Command, String> {
    if (flags.print || flags.offline) && name != "check" {
        return Err(format!("--print and --offline are options of check, not of {name}"));
    }
    if (flags.json || flags.prometheus) && name != "status" {
        return Err(format!("--json and --prometheus are options of status, not of {name}"));
    }
    if flags.force && name != "takeover" {
        return Err(format!("--force is an option of takeover, not of {name}"));
    }
    let none = |c: Command| match rest {
        [] => Ok(c),
        [x, ..] => Err(format!("unexpected argument \"{x}\" for {name}")),
    };
    match name {
        "run" => none(Command::Run),
        "check" => none(Command::Check { print: flags.print, offline: flags.offline }),
        "status" => none(Command::Status { format: status_format(flags)? }),
        "standby" => none(Command::Standby),
        "online" => none(Command::Online),
        "takeover" => match rest {
            [] => Ok(Command::Takeover { force: flags.force, group: None }),
            [g] if !flags.force => Ok(Command::Takeover { force: false, group: Some(g.clone()) }),
            [_] => Err("takeover --force takes every group, not one".into()),
            _ => Err("takeover takes at most one group".into()),
        },
        "move" => match rest {
            [g] => Ok(Command::Move { group: g.clone() }),
            _ => Err("move takes one group".into()),
        },
        "keygen" => none(Command::Keygen),
        "export-pacemaker" => none(Command::ExportPacemaker),
        "version" => none(Command::Version),
        "maintenance" => match rest {
            [w] if w == "on" || w == "off" => Ok(Command::Maintenance { on: w == "on" }),
            _ => Err("maintenance takes on or off".into()),
        },
        "cleanup" => match rest {
            [] => Ok(Command::Cleanup { resource: None }),
            [r] => Ok(Command::Cleanup { resource: Some(r.clone()) }),
            _ => Err("cleanup takes at most one resource".into()),
        },
        "drbd-fence-peer" => match rest {
            [] => Ok(Command::DrbdFencePeer { resource: None }),
            [r] => Ok(Command::DrbdFencePeer { resource: Some(r.clone()) }),
            _ => Err("drbd-fence-peer takes at most one resource".into()),
        },
        "drbd-agent" => match rest {
            [a, r] => Ok(Command::DrbdAgent { action: a.clone(), resource: r.clone() }),
            _ => Err("drbd-agent takes an action and a resource".into()),
        },
        "import-heartbeat" => match rest {
            [d] => Ok(Command::ImportHeartbeat { dir: PathBuf::from(d) }),
            _ => Err("import-heartbeat takes one directory".into()),
        },
        _ => Err(format!("unknown command \"{name}\"")),
    }
}

fn status_format(flags: &Flags) -> Result<StatusFormat, String> {
    match (flags.json, flags.prometheus) {
        (true, true) => Err("status takes --json or --prometheus, not both".into()),
        (true, false) => Ok(StatusFormat::Json),
        (false, true) => Ok(StatusFormat::Prometheus),
        (false, false) => Ok(StatusFormat::Human),
    }
}

fn execute(cmd: Command, opts: &LoadOptions) -> i32 {
    // SPEC §7.3: `check` and `run` judge who may change the files; the other commands only
    // read the configuration (a non-root `status` must work).
    let trusting = || LoadOptions { check_ownership: true, ..opts.clone() };
    match cmd {
        Command::Run => run(&trusting()),
        Command::Check { print, offline } => check(&trusting(), print, offline),
        Command::Keygen => keygen(),
        Command::ImportHeartbeat { dir } => import_heartbeat(&dir),
        Command::ExportPacemaker => export_pacemaker(opts),
        Command::Version => {
            print!("{}", version());
            EXIT_OK
        }
        Command::Status { format } => {
            let line = match format {
                StatusFormat::Human => "status",
                StatusFormat::Json => "status json",
                StatusFormat::Prometheus => "status prometheus",
            };
            talk(opts, line)
        }
        Command::Standby => talk(opts, "standby"),
        Command::Online => talk(opts, "online"),
        Command::Takeover { force, group: None } => {
            talk(opts, if force { "takeover force" } else { "takeover" })
        }
        Command::Takeover { group: Some(g), .. } => talk(opts, &format!("takeover-group {g}")),
        Command::Move { group } => talk(opts, &format!("move {group}")),
        Command::Maintenance { on } => {
            talk(opts, if on { "maintenance on" } else { "maintenance off" })
        }
        Command::DrbdFencePeer { resource } => drbd_fence_peer(opts, resource),
        Command::DrbdAgent { action, resource } => {
            crate::drivers::drbd::agent_main(&action, &resource)
        }
        Command::Cleanup { resource: None } => talk(opts, "cleanup"),
        Command::Cleanup { resource: Some(r) } => talk(opts, &format!("cleanup {r}")),
    }
}

fn config_failed(e: &ConfigError) -> i32 {
    eprintln!("{e}");
    EXIT_FAILED
}

/// `hapair version`: the package version (Cargo.toml) and the heartbeat frame versions this
/// binary speaks (`wire`), which decide whether two nodes can be upgraded one at a time.
pub fn version() -> String {
    format!(
        "hapair {} (frame version {}; also {} with a peer that speaks only that)\n",
        env!("CARGO_PKG_VERSION"),
        crate::wire::VERSION,
        crate::wire::VERSION_LEGACY,
    )
}

/// The example configuration's marker line in `path`, as an error at that line; `None` for a
/// file without it, or one that cannot be read (the loader reports that).
fn unedited_example(path: &Path) -> Option<ConfigError> {
    let text = std::fs::read(path).ok()?;
    let index = text.split(|&b| b == b'\n').position(|l| {
        l.split(u8::is_ascii_whitespace).find(|w| !w.is_empty()) == Some(EXAMPLE_MARKER.as_bytes())
    })?;
    let line = u32::try_from(index + 1).unwrap_or(u32::MAX);
    Some(ConfigError::new(path, line, EXAMPLE_MESSAGE))
}

fn run(opts: &LoadOptions) -> i32 {
    // A disabled node exits before it reads anything else, so a broken file cannot stop it.
    match config::read_cmdline(opts) {
        Ok(c) if c.disable => {
            log::info!("hapair.disable=1 on {}: not starting", opts.cmdline.display());
            return EXIT_OK;
        }
        Ok(_) => {}
        Err(e) => return config_failed(&e),
    }
    if let Some(e) = unedited_example(&opts.config) {
        return config_failed(&e);
    }
    match config::load(opts) {
        Ok(l) => {
            // Named here as a configuration error; the loop looks the group up again to use it.
            if let Err(e) = config::control_gid(opts, &l.config) {
                return config_failed(&e);
            }
            if let Some(w) = l.authkey.warning(&l.config.local.authkey) {
                log::warn!("{w}");
            }
            crate::event_loop::run(&l.config, &l.boot, &l.authkey, opts)
        }
        Err(e) => config_failed(&e),
    }
}

fn check(opts: &LoadOptions, print: bool, offline: bool) -> i32 {
    if let Some(e) = unedited_example(&opts.config) {
        return config_failed(&e);
    }
    let loaded = match config::load(opts) {
        Ok(l) => l,
        Err(e) => return config_failed(&e),
    };
    if let Err(e) = config::control_gid(opts, &loaded.config) {
        return config_failed(&e);
    }
    let key_warning = loaded.authkey.warning(&loaded.config.local.authkey);
    for w in loaded.config.warnings().into_iter().chain(key_warning) {
        eprintln!("{}: warning: {w}", opts.config.display());
    }
    let mode = if offline { CheckMode::CheckOffline } else { CheckMode::Check };
    let mut agents_ok = true;
    for issue in config::agents::check_agents(opts, &loaded.config, &loaded.boot.node, mode) {
        let error = issue.severity == Severity::Error;
        agents_ok &= !error;
        let ConfigError { file, line, message } = issue.error;
        let kind = if error { "" } else { "warning: " };
        eprintln!("{}", ConfigError::new(file, line, format!("{kind}{message}")));
    }
    if !agents_ok {
        return EXIT_FAILED;
    }
    let (c, b) = (&loaded.config, &loaded.boot);
    let digest: String = c.digest().iter().map(|x| format!("{x:02x}")).collect();
    let mut out = std::io::stdout().lock();
    let res = if print {
        write!(
            out,
            "# effective configuration of {} for node {} (standby={}, disable={}), \
             digest {digest}\n{c}",
            opts.config.display(),
            b.node,
            u8::from(b.standby),
            u8::from(b.disable),
        )
    } else {
        writeln!(out, "{}: ok (node {}, digest {digest})", opts.config.display(), b.node)
    };
    if res.is_err() { EXIT_FAILED } else { EXIT_OK }
}

fn keygen() -> i32 {
    match config::keygen() {
        Ok(k) => {
            print!("{k}");
            EXIT_OK
        }
        Err(e) => {
            eprintln!("hapair: keygen: cannot read /dev/urandom: {e}");
            EXIT_FAILED
        }
    }
}

/// Prints the converted configuration on stdout; what it left out, and the new key, on
/// stderr. The key never goes to stdout, which is meant to become a configuration file.
fn import_heartbeat(dir: &std::path::Path) -> i32 {
    const P: &str = "hapair: import-heartbeat";
    let files = match migrate::read_heartbeat(dir) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{P}: {e}");
            return EXIT_FAILED;
        }
    };
    let import = migrate::convert_heartbeat(&files);
    if std::io::stdout().lock().write_all(import.config.as_bytes()).is_err() {
        return EXIT_FAILED;
    }
    for n in &import.findings.notes {
        eprintln!("{P}: note: {n}");
    }
    for n in &import.findings.not_converted {
        eprintln!("{P}: NOT CONVERTED: {n}");
    }
    eprintln!("{P}: authkeys: {}", import.authkeys);
    let path = migrate::NEW_AUTHKEY_PATH;
    match config::keygen() {
        Ok(key) => eprintln!(
            "{P}: write the new key to {path} on both nodes (mode 0600, owned by root):\n  \
             (umask 077; echo {} > {path})",
            key.trim()
        ),
        Err(e) => eprintln!(
            "{P}: cannot make a new key ({e}); make one with: (umask 077; hapair keygen > {path})"
        ),
    }
    EXIT_OK
}

/// Prints the pcs commands on stdout and what they leave out on stderr.
fn export_pacemaker(opts: &LoadOptions) -> i32 {
    let config = match config::load_config(opts) {
        Ok((c, _)) => c,
        Err(e) => return config_failed(&e),
    };
    let export = migrate::export_pacemaker(&config, &opts.config);
    if std::io::stdout().lock().write_all(export.commands.as_bytes()).is_err() {
        return EXIT_FAILED;
    }
    for n in &export.findings.not_converted {
        eprintln!("hapair: export-pacemaker: NOT CONVERTED: {n}");
    }
    EXIT_OK
}

/// Sends one request to the daemon and prints the answer.
fn talk(opts: &LoadOptions, line: &str) -> i32 {
    let config: Config = match config::load_config(opts) {
        Ok((c, _)) => c,
        Err(e) => return config_failed(&e),
    };
    match control::request(&config.local.control, line) {
        Ok(body) => {
            print!("{body}");
            if !body.is_empty() && !body.ends_with('\n') {
                println!();
            }
            EXIT_OK
        }
        Err(e @ ControlError::NotRunning(_)) => {
            eprintln!("hapair: {e}");
            EXIT_NOT_RUNNING
        }
        Err(e) => {
            eprintln!("hapair: {e}");
            EXIT_FAILED
        }
    }
}

/// DRBD's exit code for "peer unreachable": also what the handler says when it cannot ask.
const DRBD_UNREACHABLE: i32 = 5;
/// How long the handler waits for the daemon's answer (the daemon gives up on a silent
/// peer after `drbd::outdate::ASK_TIMEOUT`, 30 s).
const FENCE_PEER_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// `hapair drbd-fence-peer [RES]`: DRBD's fence-peer handler. Asks the local daemon to have
/// the peer outdate RES (default `$DRBD_RESOURCE`, which DRBD sets) and exits with the code
/// the daemon gives (3, 4, 5, 6 or 7: see SPEC §7.5); 5 when the daemon cannot be asked.
fn drbd_fence_peer(opts: &LoadOptions, resource: Option<String>) -> i32 {
    let Some(resource) = resource.or_else(|| std::env::var("DRBD_RESOURCE").ok()) else {
        eprintln!("hapair drbd-fence-peer: no resource given and DRBD_RESOURCE is not set");
        return EXIT_USAGE;
    };
    let config: Config = match config::load_config(opts) {
        Ok((c, _)) => c,
        Err(e) => {
            eprintln!("{e}");
            return DRBD_UNREACHABLE;
        }
    };
    let line = format!("outdate-peer {resource}");
    match control::request_waiting(&config.local.control, &line, FENCE_PEER_WAIT) {
        Ok(body) => match body.trim().parse::<i32>() {
            Ok(code @ 3..=7) => {
                eprintln!(
                    "hapair drbd-fence-peer {resource}: {code}: {}",
                    crate::event_loop::drbd_meaning(code as u8)
                );
                code
            }
            _ => {
                eprintln!("hapair drbd-fence-peer {resource}: unexpected answer {body:?}");
                DRBD_UNREACHABLE
            }
        },
        Err(e) => {
            eprintln!("hapair drbd-fence-peer {resource}: {e}");
            DRBD_UNREACHABLE
        }
    }
}

fn help_for(name: &str) -> Option<&'static str> {
    Some(match name {
        "run" => HELP_RUN,
        "check" => HELP_CHECK,
        "status" => HELP_STATUS,
        "standby" => HELP_STANDBY,
        "online" => HELP_ONLINE,
        "takeover" => HELP_TAKEOVER,
        "move" => HELP_MOVE,
        "maintenance" => HELP_MAINTENANCE,
        "cleanup" => HELP_CLEANUP,
        "drbd-fence-peer" => HELP_DRBD_FENCE_PEER,
        "drbd-agent" => HELP_DRBD_AGENT,
        "keygen" => HELP_KEYGEN,
        "import-heartbeat" => HELP_IMPORT,
        "export-pacemaker" => HELP_EXPORT,
        "version" => HELP_VERSION,
        _ => return None,
    })
}

macro_rules! help {
    ($name:ident, $text:literal) => {
        const $name: &str = concat!($text, "\n", "Options of every command:
  -c, --config FILE   configuration file (default /etc/hapair/hapair.conf)
  --node NAME         this node's name (default: hapair.node= on the kernel command line,
                      else the host name)
  --cmdline FILE      kernel command line to read hapair.* flags from (default /proc/cmdline)
  -h, --help          this help
");
    };
}

help!(
    HELP_RUN,
    "Usage: hapair run [OPTIONS]
Run the daemon in the foreground. Exits 0 at once with hapair.disable=1; exits 1 if the
configuration, the authkey or the node identity is invalid.
"
);
help!(
    HELP_CHECK,
    "Usage: hapair check [OPTIONS] [--print] [--offline]
Validate the configuration, the kernel flags, the authkey and this node's name.
Warnings go to stderr and do not change the exit code (0 valid, 1 invalid).
  --print   print the effective configuration (kernel flags applied, defaults shown)
  --offline a resource agent that is not installed here is a warning, not an error
OCF resources are checked against their agent's meta-data (unknown or missing required
parameters are errors).
"
);
help!(
    HELP_STATUS,
    "Usage: hapair status [OPTIONS] [--json|--prometheus]
Show the pair as this node sees it. Exit 3 when the daemon is not running; exit 1 with
\"permission denied\" for a user the control socket does not admit (root, and the members of
control_group when it is set, may ask).
  --json         one JSON object
  --prometheus   Prometheus text exposition format
"
);
help!(
    HELP_STANDBY,
    "Usage: hapair standby [OPTIONS]
Hand the resources to the peer and stay standby. Root only. Exit 3 when the daemon is not
running.
"
);
help!(
    HELP_ONLINE,
    "Usage: hapair online [OPTIONS]
Leave standby. Root only. Exit 3 when the daemon is not running.
"
);
help!(
    HELP_TAKEOVER,
    "Usage: hapair takeover [OPTIONS] [--force] [GROUP]
Ask the peer to hand the resources over to this node: every group, or only GROUP. A standing
request until `online` or `standby`. Root only. Exit 3 when the daemon is not running; exit
1, saying why, when health forbids it (this node unhealthy and its peer healthy, or no ping
node answers, or restarts exhausted) or there is no such group.

  --force        you vouch that the peer is down (powered off, with its fence device):
                 a node waiting for its peer after an unclean stop stops waiting, and while
                 the peer is not heard this node takes the resources WITHOUT fencing it.
                 Wrong about the peer, you run the resources twice.
"
);
help!(
    HELP_MOVE,
    "Usage: hapair move [OPTIONS] GROUP
Hand one group to the peer (a planned handover); the others stay where they run. The group
stays on the peer until `hapair online` here (or `hapair takeover GROUP`), or until that peer
is lost: then it is taken over here like any group of a dead peer. Root only. Exit 3
when the daemon is not running; exit 1, saying why, when the peer cannot take the group (not
heard, in standby or maintenance, unhealthy) or there is no such group.
"
);
help!(
    HELP_MAINTENANCE,
    "Usage: hapair maintenance on|off [OPTIONS]
Stop (on) or resume (off) managing resources; heartbeats go on. Root only. Exit 3 when the
daemon is not running.
"
);
help!(
    HELP_CLEANUP,
    "Usage: hapair cleanup [OPTIONS] [RESOURCE]
Forget failure counts and the failed state (of one resource, or of all). Root only. Exit 3
when the daemon is not running.
"
);
help!(
    HELP_DRBD_FENCE_PEER,
    "Usage: hapair drbd-fence-peer [OPTIONS] [RESOURCE]
DRBD's fence-peer handler (handlers { fence-peer \"/usr/sbin/hapair drbd-fence-peer\"; }):
has the peer outdate its disk of RESOURCE (default $DRBD_RESOURCE) over the heartbeat links.
Exit 3 the peer's disk was already Outdated or Inconsistent, 4 the peer outdated it, 5 the
peer (or the local daemon) is unreachable, 6 the peer is Primary and refused, 7 the peer was
fenced.
"
);
help!(
    HELP_DRBD_AGENT,
    "Usage: hapair drbd-agent start|stop|monitor RESOURCE
The agent of a `resource drbd` line, which the daemon runs: start promotes RESOURCE when the
local disk is UpToDate and the peer is not Primary, stop demotes it, monitor exits 0 when it
is Primary here and 7 when not (OCF exit codes).
"
);
help!(
    HELP_KEYGEN,
    "Usage: hapair keygen
Print a new random key (64 hex characters) for the authkey file:
  (umask 077; hapair keygen > /etc/hapair/authkey)
"
);
help!(
    HELP_IMPORT,
    "Usage: hapair import-heartbeat DIR
Print a hapair.conf converted from a heartbeat v1 ha.cf/haresources/authkeys in DIR.
What cannot be converted is listed as \"# NOT CONVERTED:\" comments and on stderr. heartbeat's
key is never reused: a new key is printed on stderr, with where to write it.
Exit 0 when a configuration was printed, 1 when a file cannot be read.
"
);
help!(
    HELP_EXPORT,
    "Usage: hapair export-pacemaker [OPTIONS]
Print the pcs commands that recreate the group on a Pacemaker cluster. What has no Pacemaker
counterpart (exec resources, fencing) is listed as \"# NOT CONVERTED:\" comments and on stderr.
"
);
help!(
    HELP_VERSION,
    "Usage: hapair version   (or hapair --version)
Print the version of hapair and the heartbeat frame versions it speaks.
"
);

const USAGE: &str = "Usage: hapair COMMAND [OPTIONS]
hapair keeps one service address and the services behind it alive on a pair of Linux PCs.

Commands:
  run                    the daemon, in the foreground
  check [--print] [--offline]  validate the configuration; --print shows the effective one
  status [--json|--prometheus]  the pair as this node sees it
  standby                hand the resources to the peer and stay standby
  online                 leave standby
  takeover [--force] [GROUP]  ask the peer to hand the resources (or one group) over
                         to this node; --force: you vouch that the peer is down
  move GROUP             hand one group to the peer
  maintenance on|off     stop/resume managing resources; heartbeats go on
  cleanup [RESOURCE]     forget failure counts and the failed state
  keygen                 print a new random authentication key
  import-heartbeat DIR   convert a heartbeat v1 configuration
  export-pacemaker       print pcs commands for the group
  drbd-fence-peer [RES]  DRBD's fence-peer handler: the peer outdates its disk
  drbd-agent ACTION RES  the drbd resource's agent (run by the daemon)
  version                print the version (also --version)
  help [COMMAND]         this text, or a command's

Exit codes: 0 success, 1 request failed or configuration invalid, 2 usage error,
3 daemon not running.

Options of every command:
  -c, --config FILE   configuration file (default /etc/hapair/hapair.conf)
  --node NAME         this node's name (default: hapair.node= on the kernel command line,
                      else the host name)
  --cmdline FILE      kernel command line to read hapair.* flags from (default /proc/cmdline)
  -h, --help          this help
";

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Command, String> {
        match parse(args.iter().map(OsString::from))? {
            Parsed::Command(c, _) => Ok(c),
            Parsed::Help(_) => Err("help".into()),
            Parsed::Version => Err("version".into()),
        }
    }

    #[test]
    fn parses_commands_and_flags() {
        assert_eq!(
            p(&["check", "--print", "-c", "/x"]),
            Ok(Command::Check { print: true, offline: false })
        );
        assert_eq!(p(&["--json", "status"]), Ok(Command::Status { format: StatusFormat::Json }));
        assert_eq!(p(&["maintenance", "on"]), Ok(Command::Maintenance { on: true }));
        assert_eq!(p(&["cleanup", "web"]), Ok(Command::Cleanup { resource: Some("web".into()) }));
        assert!(p(&["status", "--json", "--prometheus"]).is_err());
        assert!(p(&["standby", "--print"]).is_err());
        assert!(p(&["maintenance", "maybe"]).is_err());
        assert_eq!(p(&["takeover"]), Ok(Command::Takeover { force: false, group: None }));
        assert_eq!(p(&["takeover", "--force"]), Ok(Command::Takeover { force: true, group: None }));
        assert!(p(&["standby", "--force"]).is_err());
        assert!(p(&["frobnicate"]).is_err());
        assert!(p(&[]).is_err());
        assert_eq!(p(&["run", "--help"]), Err("help".into()));
        assert_eq!(p(&["version"]), Ok(Command::Version));
        assert!(p(&["version", "extra"]).is_err());
    }

    #[test]
    fn version_names_the_package_and_frame_versions() {
        let v = version();
        assert!(v.starts_with(&format!("hapair {} (", env!("CARGO_PKG_VERSION"))), "{v}");
        assert!(v.contains(&format!("frame version {}", crate::wire::VERSION)), "{v}");
        assert!(matches!(parse(["--version"].map(OsString::from)), Ok(Parsed::Version)));
        assert!(matches!(parse(["status", "-V"].map(OsString::from)), Ok(Parsed::Version)));
    }

    #[test]
    fn the_example_marker_is_found_at_its_line() {
        let dir = std::env::temp_dir().join(format!("hapair-cli-marker-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("hapair.conf");
        std::fs::write(&file, format!("# {EXAMPLE_MARKER}\nnode a\n  {EXAMPLE_MARKER}  # x\n"))
            .unwrap();
        let e = unedited_example(&file).expect("marker found");
        assert_eq!(e.line, 3);
        std::fs::write(&file, "node a\n# edit_me_then_delete_this_line\n").unwrap();
        assert!(unedited_example(&file).is_none());
        assert!(unedited_example(&dir.join("missing")).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
