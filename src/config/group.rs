//! `control_group NAME`: the one name in the configuration that is looked up in the system, in
//! the group database (`getgrnam_r`, through NSS). Looked up by `check` and when `run` starts,
//! never in the loop: a SIGHUP reload does not look it up (a changed group needs a restart, and
//! the database may be a network service that could block).
//!
//! A group that does not exist is a configuration error naming the directive's line; to find
//! that line the configuration and the kernel command line are read again (only on that error
//! path). Nothing here touches the socket: `control::ControlServer::admit_group` does.

use super::load::control_group_location;
use super::{Config, ConfigError, LoadOptions, read_cmdline};

/// The gid of `control_group`, `None` without one.
pub fn control_gid(opts: &LoadOptions, config: &Config) -> Result<Option<u32>, ConfigError> {
    let Some(name) = &config.local.control_group else { return Ok(None) };
    let message = match nix::unistd::Group::from_name(name) {
        Ok(Some(group)) => return Ok(Some(group.gid.as_raw())),
        Ok(None) => format!("control_group {name}: no such group (getent group {name} finds none)"),
        Err(e) => format!("control_group {name}: cannot read the group database: {e}"),
    };
    Err(located(opts, message))
}

/// `message` at the line of the `control_group` directive (or kernel flag) that set it.
fn located(opts: &LoadOptions, message: String) -> ConfigError {
    let whole = |message| ConfigError::new(&opts.config, 0, message);
    let Ok(cmdline) = read_cmdline(opts) else { return whole(message) };
    let Ok(text) = std::fs::read(&opts.config) else { return whole(message) };
    match control_group_location(&text, &opts.config, &cmdline) {
        Ok(Some(loc)) if loc.cmdline => ConfigError::new(&opts.cmdline, loc.line, message),
        Ok(Some(loc)) => ConfigError::new(&opts.config, loc.line, message),
        _ => whole(message),
    }
}
