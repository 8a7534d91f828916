//! Helpers shared by the in-crate unit tests (compiled only for `cargo test`) and by the
//! integration tests, which include this file as `common::testutil` (tests/common/mod.rs):
//! one `TempDir` for both. Each side uses a part of it.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A fresh directory under the system temp dir, named by `tag`, the process id and a count,
/// removed on drop (also when the test fails).
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates (after removing any leftover of the same name) `hapair-TAG-PID-N`: the tests
    /// of one process run in parallel threads, and a count keeps their directories apart
    /// whatever tags they pick.
    pub fn new(tag: &str) -> TempDir {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("hapair-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        TempDir(path)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The path of `name` inside it.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Writes `name` with `content`; its path.
    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        let path = self.join(name);
        fs::write(&path, content).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        path
    }

    /// Writes `name` with `content` and `mode` (a key file, a script); its path.
    pub fn write_mode(&self, name: &str, content: &str, mode: u32) -> PathBuf {
        let path = self.write(name, content);
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
