//! Persistent admin state: the operator's standby and maintenance intents, kept in
//! `statedir/admin` so that they survive a daemon restart and a reboot. This file reads and
//! writes that one small file; it does not decide what the intents mean (the core does) and
//! it does not log (the caller logs the [`Warning`]). It blocks and allocates: call it at
//! start-up and on an admin command, never per heartbeat.
//!
//! # Format
//!
//! Two `key=value` lines, both always written, values `0` or `1`:
//!
//! ```text
//! standby=1
//! maintenance=0
//! ```
//!
//! Written with [`write_atomic`], so after a crash the file holds the old or the new state,
//! never a mix; read with [`read_state`]; neither follows a link at the file's name. Reading is strict: an unknown key, a key twice, a missing key or a value other
//! than `0`/`1` makes the whole file corrupt rather than half-applied.
//!
//! # The safe default
//!
//! A missing file is the default state, silently (first start, or no admin command yet). A
//! corrupt or unreadable file gives a [`Warning`] and the same default: `standby=0`,
//! `maintenance=0`. Why not fall back to standby: neither intent is what keeps the pair safe.
//! Two nodes never both run the group because of the heartbeat protocol, fencing and the
//! watchdog, whatever the intents say; an intent only says whether this node *volunteers*.
//! So the cost of a wrong guess is availability, and the guess that keeps the service up is
//! the online one: a node that wrongly boots into standby leaves the service down when its
//! peer is dead, with nobody watching, and a node that wrongly boots into maintenance stops
//! monitoring and restarting resources. A node that wrongly boots online does what a fresh
//! install does, and a planned standby can be made certain at boot with `hapair.standby=1`.
//! Corruption itself is not expected (writes are atomic); it means a damaged disk or a hand
//! edit, which the warning names.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use super::statefile::{StateError, read_state, write_atomic};

/// Name of the admin state file inside `statedir`.
pub const ADMIN_FILE: &str = "admin";

/// The operator's intents that outlive the process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AdminState {
    /// `hapair standby`: hand the group to the peer and do not take it back.
    pub standby: bool,
    /// `hapair maintenance on`: do not start, stop or monitor resources.
    pub maintenance: bool,
}

/// Why the stored state was not used (the default was used instead).
#[derive(Debug)]
pub enum Warning {
    /// The file exists but could not be read.
    Unreadable(PathBuf, io::Error),
    /// The file does not hold a valid state; the string says what is wrong.
    Corrupt(PathBuf, String),
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (path, why) = match self {
            Warning::Unreadable(path, error) => (path, format!("unreadable ({error})")),
            Warning::Corrupt(path, what) => (path, format!("corrupt ({what})")),
        };
        write!(
            f,
            "{}: {why}; admin state reset to standby=0 maintenance=0 (online, managing \
             resources): repeat any standby or maintenance command",
            path.display()
        )
    }
}

impl AdminState {
    /// The file's text: `standby=B\nmaintenance=B\n`.
    pub fn render(&self) -> String {
        format!("standby={}\nmaintenance={}\n", u8::from(self.standby), u8::from(self.maintenance))
    }

    /// Parses the file's text strictly (module docs); the error says what is wrong.
    pub fn parse(text: &[u8]) -> Result<AdminState, String> {
        let text = std::str::from_utf8(text).map_err(|_| "not UTF-8 text".to_string())?;
        let (mut standby, mut maintenance) = (None, None);
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let Some((key, value)) = line.trim().split_once('=') else {
                return Err(format!("line {n}: expected key=value"));
            };
            let value = match value {
                "0" => false,
                "1" => true,
                _ => return Err(format!("line {n}: {key} must be 0 or 1")),
            };
            let slot = match key {
                "standby" => &mut standby,
                "maintenance" => &mut maintenance,
                _ => return Err(format!("line {n}: unknown key {key:?}")),
            };
            if slot.replace(value).is_some() {
                return Err(format!("line {n}: {key} given twice"));
            }
        }
        match (standby, maintenance) {
            (Some(standby), Some(maintenance)) => Ok(AdminState { standby, maintenance }),
            (None, _) => Err("no standby line".into()),
            (_, None) => Err("no maintenance line".into()),
        }
    }
}

/// Reads `statedir/admin`: the stored state, or the default with a warning when the file
/// is unreadable or corrupt (module docs: the safe default). A missing file is the default
/// without a warning. A symbolic link in its place is not followed: it is unreadable, and
/// the next `store` replaces it (`statefile` module docs).
pub fn load(statedir: &Path) -> (AdminState, Option<Warning>) {
    let path = statedir.join(ADMIN_FILE);
    match read_state(&path) {
        Ok(text) => match AdminState::parse(&text) {
            Ok(state) => (state, None),
            Err(what) => (AdminState::default(), Some(Warning::Corrupt(path, what))),
        },
        Err(error) if error.kind() == io::ErrorKind::NotFound => (AdminState::default(), None),
        Err(error) => (AdminState::default(), Some(Warning::Unreadable(path, error))),
    }
}

/// Replaces `statedir/admin` with `state`, atomically and durably (fsynced file and
/// directory). An error names the file; the intent then lasts only until the next restart.
pub fn store(statedir: &Path, state: AdminState) -> Result<(), StateError> {
    write_atomic(statedir, ADMIN_FILE, state.render().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::fs;

    use crate::testutil::TempDir;

    #[test]
    fn round_trip_of_every_state() {
        let dir = TempDir::new("admin-round");
        for standby in [false, true] {
            for maintenance in [false, true] {
                let state = AdminState { standby, maintenance };
                store(dir.path(), state).unwrap();
                let (back, warning) = load(dir.path());
                assert_eq!(back, state);
                assert!(warning.is_none(), "{warning:?}");
            }
        }
        store(dir.path(), AdminState { standby: true, maintenance: false }).unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join(ADMIN_FILE)).unwrap(),
            "standby=1\nmaintenance=0\n"
        );
        assert!(!dir.path().join(".admin.tmp").exists());
    }

    #[test]
    fn missing_file_is_the_default_without_warning() {
        let dir = TempDir::new("admin-missing");
        let (state, warning) = load(dir.path());
        assert_eq!(state, AdminState { standby: false, maintenance: false });
        assert!(warning.is_none());
    }

    #[test]
    fn corrupt_file_warns_and_gives_the_default() {
        let dir = TempDir::new("admin-corrupt");
        let cases: &[(&[u8], &str)] = &[
            (b"", "no standby line"),
            (b"standby=1\n", "no maintenance line"),
            (b"standby=1\nmaintenance=2\n", "line 2: maintenance must be 0 or 1"),
            (b"standby=1\nstandby=0\nmaintenance=0\n", "line 2: standby given twice"),
            (b"standby=1\nmaintenance=0\nextra=1\n", "line 3: unknown key \"extra\""),
            (b"standby\n", "line 1: expected key=value"),
            (b"\xff\xfe", "not UTF-8"),
        ];
        for (text, what) in cases {
            fs::write(dir.path().join(ADMIN_FILE), text).unwrap();
            let (state, warning) = load(dir.path());
            assert_eq!(state, AdminState::default());
            let shown = warning.expect("a corrupt file warns").to_string();
            assert!(shown.contains("admin: corrupt"), "{shown}");
            assert!(shown.contains(what), "{shown} should contain {what}");
            assert!(shown.contains("standby=0 maintenance=0"), "{shown}");
        }
    }

    #[test]
    fn unreadable_file_warns_and_gives_the_default() {
        let dir = TempDir::new("admin-unreadable");
        // Root ignores permission bits: a directory in the file's place cannot be read.
        fs::create_dir(dir.path().join(ADMIN_FILE)).unwrap();
        let (state, warning) = load(dir.path());
        assert_eq!(state, AdminState::default());
        assert!(matches!(warning, Some(Warning::Unreadable(..))), "{warning:?}");
    }

    #[test]
    fn a_link_in_place_of_the_file_is_not_followed_and_is_replaced() {
        let dir = TempDir::new("admin-link");
        let victim = dir.path().join("elsewhere");
        fs::write(&victim, "standby=1\nmaintenance=1\n").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join(ADMIN_FILE)).unwrap();
        let (state, warning) = load(dir.path());
        assert_eq!(state, AdminState::default(), "not read through the link");
        let shown = warning.expect("a link warns").to_string();
        assert!(shown.contains("admin: unreadable (a symbolic link, not followed"), "{shown}");
        store(dir.path(), AdminState { standby: true, maintenance: false }).unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "standby=1\nmaintenance=1\n");
        let meta = fs::symlink_metadata(dir.path().join(ADMIN_FILE)).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(load(dir.path()).0, AdminState { standby: true, maintenance: false });
    }

    #[test]
    fn unwritable_dir_is_an_error_naming_the_file() {
        let dir = TempDir::new("admin-unwritable");
        // Root ignores permission bits, so use a path whose parent is a regular file.
        let not_a_dir = dir.path().join("plain-file");
        fs::write(&not_a_dir, b"x").unwrap();
        let error = store(&not_a_dir, AdminState { standby: true, maintenance: true });
        let text = error.unwrap_err().to_string();
        assert!(text.contains("plain-file/.admin.tmp: remove the old temporary file: "), "{text}");
    }
}
