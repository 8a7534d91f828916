//! The one poll loop of the daemon (`hapair run`). Stub: the event-loop issue replaces the
//! body; the signature is the contract `cli` calls once the configuration, the node identity
//! and the key are loaded and checked.

use crate::config::{AuthKey, Boot, Config};

/// Runs the daemon until shutdown; returns the process exit code.
pub fn run(config: &Config, boot: &Boot, authkey: &AuthKey) -> i32 {
    let _ = (config, authkey);
    log::error!("hapair run on node {}: the event loop is not implemented yet", boot.node);
    1
}
