//! From text to `Config`: the directives with their kernel flags (`parse`), then the
//! cross-checks (`validate`); and reading the files (configuration, kernel command line,
//! authkey) and deciding who this node is; for `check` and `run`, also judging who may change
//! the configuration file, the statedir and the authkey's directory (`owner`). With `authkey`
//! and `owner`, the only files of `config` that do I/O; it runs once, before the loop (and on
//! a reload). It creates nothing: `run` makes a missing statedir itself. The top of the
//! module's layers: `lex` and `value` below `parse`, below `cmdline`, `validate` and
//! `render`, below this file (scripts/import-cycles shows none going back up).

use std::io::Read;
use std::path::{Path, PathBuf};

use super::cmdline::Cmdline;
use super::owner::{self, Problem, Trusted};
use super::parse::{self, Loc};
use super::validate::validate;
use super::{AuthKey, Config, ConfigError, DEFAULT_CMDLINE_PATH, DEFAULT_CONFIG_PATH};

/// Where to read from: `-c`, `--cmdline` and `--node`; and whether to judge ownership.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadOptions {
    pub config: PathBuf,
    pub cmdline: PathBuf,
    pub node: Option<String>,
    /// SPEC §7.3: refuse a configuration file, statedir or authkey directory that is not
    /// root's or is writable by group or others (`owner`). `check` and `run` set it (and a
    /// reload keeps it); the client commands, which only read the file, leave it off.
    pub check_ownership: bool,
}

impl Default for LoadOptions {
    fn default() -> LoadOptions {
        LoadOptions {
            config: PathBuf::from(DEFAULT_CONFIG_PATH),
            cmdline: PathBuf::from(DEFAULT_CMDLINE_PATH),
            node: None,
            check_ownership: false,
        }
    }
}

/// Who this node is and how it was booted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Boot {
    /// This node's name, one of `Config::nodes`.
    pub node: String,
    /// Its index in `Config::nodes` (0 or 1); the peer is `1 - node_index`.
    pub node_index: usize,
    /// `hapair.standby=1`: start in standby.
    pub standby: bool,
    /// `hapair.disable=1`: `run` exits 0 at once.
    pub disable: bool,
}

/// Everything `run` needs from the files.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub config: Config,
    pub boot: Boot,
    pub authkey: AuthKey,
}

/// Parses a whole configuration, applies the kernel flags in `cmdline`, and cross-checks.
pub fn parse_bytes(text: &[u8], file: &Path, cmdline: &Cmdline) -> Result<Config, ConfigError> {
    parse_located(text, file, cmdline).map(|(c, _)| c)
}

/// Parses a configuration held in a string (no kernel flags).
pub fn parse_str(text: &str, file: &Path) -> Result<Config, ConfigError> {
    parse_bytes(text.as_bytes(), file, &Cmdline::empty())
}

/// As [`parse_bytes`], and also where the `authkey` directive was (for the key file's errors).
pub fn parse_located(
    text: &[u8],
    file: &Path,
    cmdline: &Cmdline,
) -> Result<(Config, Loc), ConfigError> {
    let draft = parse::draft(text, file, &cmdline.overrides, &cmdline.path)?;
    let authkey_at = draft.authkey.as_ref().map(|(_, l)| *l).unwrap_or_default();
    Ok((validate(draft, file, &cmdline.path)?, authkey_at))
}

/// Where each `resource` line is, in group order (file lines, then kernel flags).
pub fn resource_locations(
    text: &[u8],
    file: &Path,
    cmdline: &Cmdline,
) -> Result<Vec<Loc>, ConfigError> {
    let draft = parse::draft(text, file, &cmdline.overrides, &cmdline.path)?;
    Ok(draft.resources.iter().map(|(_, l)| *l).collect())
}

/// Where the `control_group` directive is (file line or kernel flag), for the error when the
/// group does not exist (`config::control_gid`).
pub fn control_group_location(
    text: &[u8],
    file: &Path,
    cmdline: &Cmdline,
) -> Result<Option<Loc>, ConfigError> {
    let draft = parse::draft(text, file, &cmdline.overrides, &cmdline.path)?;
    Ok(draft.control_group.map(|(_, l)| l))
}

/// Reads the kernel command line.
pub fn read_cmdline(opts: &LoadOptions) -> Result<Cmdline, ConfigError> {
    let text = std::fs::read(&opts.cmdline)
        .map_err(|e| ConfigError::new(&opts.cmdline, 0, format!("cannot read: {e}")))?;
    Cmdline::parse(&text, &opts.cmdline)
}

/// Reads and validates the configuration with the kernel flags applied; no authkey, no
/// identity (what the commands that only talk to the daemon need).
pub fn load_config(opts: &LoadOptions) -> Result<(Config, Cmdline), ConfigError> {
    let cmdline = read_cmdline(opts)?;
    let (config, _) = read_config(opts, &cmdline)?;
    Ok((config, cmdline))
}

fn read_config(opts: &LoadOptions, cmdline: &Cmdline) -> Result<(Config, Loc), ConfigError> {
    let path = &opts.config;
    let cannot_read = |e: std::io::Error| ConfigError::new(path, 0, format!("cannot read: {e}"));
    let mut file = std::fs::File::open(path).map_err(cannot_read)?;
    if opts.check_ownership {
        // Judged on the open file: what was judged is what is read.
        let meta = file.metadata().map_err(cannot_read)?;
        owner::judge_metadata(path, &meta, Trusted::ConfigFile)
            .map_err(|m| ConfigError::new(path, 0, m))?;
    }
    let mut text = Vec::new();
    file.read_to_end(&mut text).map_err(cannot_read)?;
    parse_located(&text, path, cmdline)
}

/// Reads and checks everything: configuration, kernel flags, the authkey and this node's name.
pub fn load(opts: &LoadOptions) -> Result<Loaded, ConfigError> {
    let cmdline = read_cmdline(opts)?;
    let (config, authkey_at) = read_config(opts, &cmdline)?;
    let boot = identify(opts, &cmdline, &config)?;
    let authkey = AuthKey::load(&config.local.authkey).map_err(|m| {
        let file = if authkey_at.cmdline { &opts.cmdline } else { &opts.config };
        ConfigError::new(file, authkey_at.line, m)
    })?;
    if opts.check_ownership {
        check_trusted_dirs(&config)?;
    }
    Ok(Loaded { config, boot, authkey })
}

/// The authkey's directory and the statedir (SPEC §7.3, module `owner`); a statedir that
/// does not exist yet is fine (`run` makes it, mode 0700, and judges it then).
fn check_trusted_dirs(config: &Config) -> Result<(), ConfigError> {
    // Paths are absolute (`value::path`) and the key file just opened, so it has a parent.
    let key_dir = config.local.authkey.parent().unwrap_or(Path::new("/"));
    check_trusted(key_dir, Trusted::AuthkeyDir)?;
    match owner::check(&config.local.statedir, Trusted::Statedir) {
        Ok(()) | Err(Problem::Missing) => Ok(()),
        Err(Problem::Refused(m)) => Err(ConfigError::new(&config.local.statedir, 0, m)),
    }
}

/// Judges `path` as `what` (module `owner`); the error names the path. A missing path is an
/// error here.
pub fn check_trusted(path: &Path, what: Trusted) -> Result<(), ConfigError> {
    owner::check(path, what).map_err(|p| {
        let m = match p {
            Problem::Missing => format!("{what} does not exist"),
            Problem::Refused(m) => m,
        };
        ConfigError::new(path, 0, m)
    })
}

/// This node's name: `--node`, else `hapair.node=`, else the host name.
pub fn identify(
    opts: &LoadOptions,
    cmdline: &Cmdline,
    config: &Config,
) -> Result<Boot, ConfigError> {
    let (node, file, line, source): (String, &Path, u32, &str) = match (&opts.node, &cmdline.node) {
        (Some(n), _) => (n.clone(), &opts.config, 0, "--node"),
        (None, Some((n, line))) => (n.clone(), &opts.cmdline, *line, "hapair.node"),
        (None, None) => (hostname(), &opts.config, 0, "the host name"),
    };
    let Some(node_index) = config.node_index(&node) else {
        let nodes = config.pair.nodes.join(" and ");
        let m = format!("this node is \"{node}\" (from {source}), which is not a node ({nodes})");
        return Err(ConfigError::new(file, line, m));
    };
    Ok(Boot { node, node_index, standby: cmdline.standby, disable: cmdline.disable })
}

fn hostname() -> String {
    match nix::sys::utsname::uname() {
        Ok(u) => u.nodename().to_string_lossy().into_owned(),
        Err(_) => String::new(),
    }
}
