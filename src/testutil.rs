//! Helpers shared by the in-crate unit tests (compiled only for `cargo test`).

use std::fs;
use std::path::{Path, PathBuf};

/// A fresh directory under the system temp dir, named by `tag` and the process id, removed
/// on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates (after removing any leftover of the same name) `hapair-TAG-PID`.
    pub fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("hapair-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
