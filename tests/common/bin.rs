//! The real binary as a command, for the tests of its offline commands (config, CLI,
//! migrations, agents, the init script, trusted files): running `hapair ARGS`, its output as
//! text, a valid key, and a temporary directory removed on drop with authkey files of chosen
//! modes.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// A directory under the system temp dir, unique per process and call, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("hapair-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Writes `name` with `content` and returns its path.
    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    /// Writes a key file with `mode` (tests run as root, so it is owned by root).
    pub fn key(&self, name: &str, content: &str, mode: u32) -> PathBuf {
        let p = self.write(name, content);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

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
