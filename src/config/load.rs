//! Reading the files (configuration, kernel command line, authkey) and deciding who this node
//! is. This is the only file of `config` that does I/O; it runs once, before the loop.

use std::path::{Path, PathBuf};

use super::cmdline::Cmdline;
use super::parse::parse_located;
use super::{AuthKey, Config, ConfigError, DEFAULT_CMDLINE_PATH, DEFAULT_CONFIG_PATH};

/// Where to read from: `-c`, `--cmdline` and `--node`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadOptions {
    pub config: PathBuf,
    pub cmdline: PathBuf,
    pub node: Option<String>,
}

impl Default for LoadOptions {
    fn default() -> LoadOptions {
        LoadOptions {
            config: PathBuf::from(DEFAULT_CONFIG_PATH),
            cmdline: PathBuf::from(DEFAULT_CMDLINE_PATH),
            node: None,
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

fn read_config(
    opts: &LoadOptions,
    cmdline: &Cmdline,
) -> Result<(Config, super::parse::Loc), ConfigError> {
    let text = std::fs::read(&opts.config)
        .map_err(|e| ConfigError::new(&opts.config, 0, format!("cannot read: {e}")))?;
    parse_located(&text, &opts.config, cmdline)
}

/// Reads and checks everything: configuration, kernel flags, the authkey and this node's name.
pub fn load(opts: &LoadOptions) -> Result<Loaded, ConfigError> {
    let cmdline = read_cmdline(opts)?;
    let (config, authkey_at) = read_config(opts, &cmdline)?;
    let boot = identify(opts, &cmdline, &config)?;
    let authkey = AuthKey::load(&config.authkey).map_err(|m| {
        let file = if authkey_at.cmdline { &opts.cmdline } else { &opts.config };
        ConfigError::new(file, authkey_at.line, m)
    })?;
    Ok(Loaded { config, boot, authkey })
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
        let nodes = config.nodes.join(" and ");
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
