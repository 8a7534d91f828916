//! The real binary as a command, for the tests of its offline commands (config, CLI,
//! migrations, agents, the init script, trusted files): running `hapair ARGS`, its output as
//! text, and a valid key (written with `TempDir::write_mode`).

use std::path::Path;
use std::process::{Command, Output};

/// A valid 0600 key.
pub const KEY: &str = "0123456789abcdef0123456789abcdef\n";

/// Runs the real `hapair` binary with `args`.
pub fn hapair(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hapair")).args(args).env("RUST_LOG", "info").output().unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}
