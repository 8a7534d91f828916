//! Persistent state in `statedir`: an atomic file writer and a reader that follow no links,
//! the incarnation counter that names each start in every frame, the highest frame version
//! the peer spoke and the watchdog timeout it advertised last, and the clean-exit marker.
//! Runs at start-up (it allocates and blocks); the poll loop calls only `store_peer_version`,
//! once, `store_peer_watchdog` when the peer's advertised timeout changes, `store_ipmi_sel`
//! when the BMC's event log was read further or cleaned up, and `store_clean_exit` as the
//! daemon exits. It does not decide what a warning means: the
//! caller logs it, and it does not judge the statedir itself (`config::owner` does).
//!
//! # The clean-exit marker
//!
//! `statedir/clean-exit` exists only between a graceful exit that left nothing running
//! (`store_clean_exit`, written durably as the daemon exits) and the next start, which reads
//! and removes it (`take_clean_exit`, durably too, before the loop runs): a start that finds
//! a previous run (an incarnation file) but no marker follows a crash, a reset or a power
//! loss (SPEC §7.4, core "Fence races and loops"). Read without following a link, like every
//! state file.
//!
//! # No links
//!
//! A state file is never read or written through a symbolic link (SPEC §7.3): a link planted
//! at `statedir/incarnation`, `statedir/admin` or `statedir/peer-version` could otherwise make
//! the daemon (root) overwrite any file it points at, or read its state from one. Reading
//! opens with `O_NOFOLLOW`, so a link is an unreadable file (the caller warns and uses its
//! default); writing makes a fresh temporary file with `O_CREAT | O_EXCL | O_NOFOLLOW` (a link
//! or file left at the temporary name is removed first, never opened) and renames it over the
//! target, which replaces a link there instead of following it. So the next write of a file
//! with a link planted in its place removes the link and leaves what it pointed at unchanged.
//!
//! # The incarnation
//!
//! Every frame carries the sender's incarnation, and a start must never reuse one, so that
//! the peer can tell this start from every earlier one. [`bump_incarnation`] reads the stored
//! value and takes `max(stored + 1, wall clock in ms since the Unix epoch)`, writes it back
//! atomically and only then returns it, so a value is never sent before it is on disk.
//!
//! Why a lost or corrupt file is still safe: every value ever issued is either a wall-clock
//! reading taken at that start or one more than the value before it, and starts are far more
//! than a millisecond apart. So each issued value is at most the wall clock at its start plus
//! the few starts that found the clock behind the stored value. Without the file the wall
//! clock alone is the floor, and it has moved on since the last start: the new value is still
//! larger. The one case this cannot cover is a lost (or restored) file *and* a clock set back
//! before the last start (a dead RTC battery with no NTP): the incarnation goes backwards.
//! Since frame version 2 that costs nothing but a line in `status`: each start also draws a
//! random run number, the peer tells runs apart by both, and a fresh frame of a run with a
//! lower incarnation is resynchronised to (`wire::session`), never refused. So a missing,
//! unreadable or corrupt file is a [`Warning`] for the operator, not fatal.
//! Failing to *write* the new value is an error, since the next start could then repeat it.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Name of the incarnation file inside `statedir`.
pub const INCARNATION_FILE: &str = "incarnation";
/// Name of the file that records the highest frame version the peer was heard speaking.
pub const PEER_VERSION_FILE: &str = "peer-version";
/// The most a state file is read of: each holds one short line or two.
const STATE_FILE_LEN_MAX: u64 = 4096;
/// Name of the file that records the highest incarnation of the peer ever heard.
pub const PEER_INCARNATION_FILE: &str = "peer-incarnation";
/// Name of the file that records the watchdog timeout the peer advertised last.
pub const PEER_WATCHDOG_FILE: &str = "peer-watchdog";

/// A state file could not be written (or a directory not synced). Names the file.
#[derive(Debug)]
pub struct StateError {
    /// The file or directory concerned.
    pub path: PathBuf,
    /// What was being done.
    pub action: &'static str,
    /// Why it failed.
    pub source: io::Error,
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.path.display(), self.action, self.source)
    }
}

impl std::error::Error for StateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Something wrong with the stored incarnation that the wall clock made up for.
#[derive(Debug)]
pub enum Warning {
    /// No stored value (first start, or the file was lost).
    Missing(PathBuf),
    /// The file could not be read.
    Unreadable(PathBuf, io::Error),
    /// The file does not hold a number, or holds the largest one.
    Corrupt(PathBuf),
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::Missing(path) => {
                write!(f, "{}: no stored incarnation, using the wall clock", path.display())
            }
            Warning::Unreadable(path, error) => {
                write!(f, "{}: unreadable ({error}), using the wall clock", path.display())
            }
            Warning::Corrupt(path) => {
                write!(f, "{}: corrupt, using the wall clock", path.display())
            }
        }
    }
}

/// Replaces `dir/name` with `bytes` atomically: a temporary file in the same directory is
/// written and fsynced, renamed over the target, and the directory fsynced, so after a crash
/// the file holds either the old or the new contents, never a mix. Mode 0600. No link is
/// followed (module docs): a link at the target is replaced, one at the temporary name removed.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StateError> {
    replace(dir, name, bytes, true)
}

/// Writes `dir/.NAME.tmp` afresh (never through a link) and renames it over `dir/NAME`;
/// with `durable`, the file and the directory are fsynced too.
fn replace(dir: &Path, name: &str, bytes: &[u8], durable: bool) -> Result<(), StateError> {
    let target = dir.join(name);
    let temp = dir.join(format!(".{name}.tmp"));
    // A leftover of a crashed write, or something planted: removed (a link is removed itself,
    // not what it points at), so that O_EXCL below makes a new file of our own.
    match fs::remove_file(&temp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(failed(&temp, "remove the old temporary file")(e));
        }
        _ => {}
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&temp)
        .map_err(failed(&temp, "create"))?;
    file.write_all(bytes).map_err(failed(&temp, "write"))?;
    if durable {
        file.sync_all().map_err(failed(&temp, "fsync"))?;
    }
    drop(file);
    // rename(2) replaces a link at the target itself; it never writes through it.
    fs::rename(&temp, &target).map_err(failed(&target, "rename"))?;
    if durable {
        File::open(dir).and_then(|d| d.sync_all()).map_err(failed(dir, "fsync directory"))?;
    }
    Ok(())
}

/// Reads a state file without following a link at its name (module docs). `NotFound` when it
/// is missing; a link, a FIFO, a device or a directory in its place is an error that says so,
/// and nothing is read from it. At most `STATE_FILE_LEN_MAX` bytes are read.
pub fn read_state(path: &Path) -> io::Result<Vec<u8>> {
    // O_NONBLOCK: a FIFO in its place must not hang us; it is refused below.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => {
                io::Error::other("a symbolic link, not followed; the next write replaces it")
            }
            _ => e,
        })?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    let mut bytes = Vec::new();
    file.take(STATE_FILE_LEN_MAX).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The highest frame layout version the peer was ever heard speaking: 0 when none is
/// recorded (no file), and 0 with an error when the file cannot be read (a link in its place)
/// or holds no version. Once it is the current version, legacy (v1) frames are refused: a pair
/// that finished its upgrade cannot be talked down to the version without the pair-bound key.
pub fn load_peer_version(statedir: &Path) -> Result<u8, StateError> {
    let path = statedir.join(PEER_VERSION_FILE);
    let bytes = match read_state(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(failed(&path, "read")(e)),
    };
    let text = std::str::from_utf8(&bytes).unwrap_or_default();
    text.trim().parse().map_err(|_| {
        let e = io::Error::new(io::ErrorKind::InvalidData, "not a version number");
        failed(&path, "read")(e)
    })
}

/// Records `version` as the highest the peer spoke. Called from the loop once in the life of
/// a pair (the first time the peer is heard at a new version): a few bytes into the page
/// cache without fsync, so it does not wait for the disk; a crash before writeback only means
/// it is written again next time. No link is followed (module docs).
pub fn store_peer_version(statedir: &Path, version: u8) -> Result<(), StateError> {
    replace(statedir, PEER_VERSION_FILE, format!("{version}\n").as_bytes(), false)
}

/// The highest incarnation of the peer an earlier run heard (`None`: not recorded or
/// unreadable). A run of the peer at or below it, heard while the peer lives, is not taken for
/// a restart (`wire::session`): a recording of a run the peer left behind when its statedir
/// went back cannot make this node echo a dead run's challenge after its own restart.
pub fn load_peer_incarnation(statedir: &Path) -> Option<u64> {
    let bytes = read_state(&statedir.join(PEER_INCARNATION_FILE)).ok()?;
    std::str::from_utf8(&bytes).ok()?.trim().parse().ok()
}

/// Records the highest incarnation of the peer heard, when it grows (at a restart of the
/// peer). Like `store_peer_version`, no fsync: a crash before writeback only loses the floor.
pub fn store_peer_incarnation(statedir: &Path, incarnation: u64) -> Result<(), StateError> {
    replace(statedir, PEER_INCARNATION_FILE, format!("{incarnation}\n").as_bytes(), false)
}

/// Name of the file whose presence says the previous run exited cleanly.
pub const CLEAN_EXIT_FILE: &str = "clean-exit";

/// Name of the file with the BMC event log's position judged and acknowledged (`ipmi`).
pub const IPMI_SEL_FILE: &str = "ipmi-sel";

/// Where the BMC's event log was judged up to with nothing held, or acknowledged by
/// `hapair cleanup` (`drivers::ipmi::Conversation`): `None` when the file is missing or
/// unreadable (the next start takes the log as history), else the erase timestamp of the log
/// and the ID of the last record acknowledged (`None`: none, the log was empty).
pub fn load_ipmi_sel(statedir: &Path) -> Option<(u32, Option<u16>)> {
    let bytes = read_state(&statedir.join(IPMI_SEL_FILE)).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    let (erased, last) = text.trim().split_once(' ')?;
    let last = if last == "-" { None } else { Some(last.parse().ok()?) };
    Some((erased.parse().ok()?, last))
}

/// Records the event log's acknowledged position. Without fsync, like `store_peer_version`:
/// a crash before writeback leaves the older position, from which the next run judges the
/// same entries again (a failure among them held again), never fewer.
pub fn store_ipmi_sel(statedir: &Path, erased: u32, last: Option<u16>) -> Result<(), StateError> {
    let text = match last {
        Some(id) => format!("{erased} {id}\n"),
        None => format!("{erased} -\n"),
    };
    replace(statedir, IPMI_SEL_FILE, text.as_bytes(), false)
}

/// Whether the previous run exited cleanly (the marker is there, a regular file), removing
/// the marker so that this run, should it crash, is not taken for a clean one. The removal
/// is made durable (the directory is fsynced): a failure is an error, since a marker left
/// behind would hide the next crash.
pub fn take_clean_exit(statedir: &Path) -> Result<bool, StateError> {
    let path = statedir.join(CLEAN_EXIT_FILE);
    let clean = read_state(&path).is_ok();
    match fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(clean),
        Err(e) => return Err(failed(&path, "remove")(e)),
    }
    File::open(statedir).and_then(|d| d.sync_all()).map_err(failed(statedir, "fsync directory"))?;
    Ok(clean)
}

/// Records that this run exits cleanly, durably (the file and the directory are fsynced):
/// the next start may act as after a planned stop. Called once, as the daemon exits.
pub fn store_clean_exit(statedir: &Path) -> Result<(), StateError> {
    write_atomic(statedir, CLEAN_EXIT_FILE, b"1\n")
}

/// Name of the file whose presence says the last run was self-fencing.
pub const SELF_FENCE_FILE: &str = "self-fence";

/// True when the previous run stopped petting the watchdog to be reset and had not started
/// petting again (`core::Params::start_self_fencing`).
pub fn load_self_fence(statedir: &Path) -> bool {
    read_state(&statedir.join(SELF_FENCE_FILE)).is_ok()
}

/// Records whether this run is self-fencing: the file exists exactly while it is. Written from
/// the loop when petting stops or resumes (rare), without fsync, like `store_peer_version`.
pub fn store_self_fence(statedir: &Path, on: bool) -> Result<(), StateError> {
    if on {
        replace(statedir, SELF_FENCE_FILE, b"1\n", false)
    } else {
        match fs::remove_file(statedir.join(SELF_FENCE_FILE)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(failed(&statedir.join(SELF_FENCE_FILE), "remove")(e))
            }
            _ => Ok(()),
        }
    }
}

/// The watchdog timeout the peer advertised when last heard, in ms (0: none armed), as an
/// earlier run stored it; `None` when never recorded or unreadable. Under `fence watchdog`
/// a restarted node that does not hear its peer must not forget that waiting cannot fence
/// it (see `core` docs, "The fence-watchdog margin").
pub fn load_peer_watchdog(statedir: &Path) -> Option<u32> {
    let bytes = read_state(&statedir.join(PEER_WATCHDOG_FILE)).ok()?;
    std::str::from_utf8(&bytes).ok()?.trim().parse().ok()
}

/// Records the watchdog timeout the peer advertises, when it changes (rarely: a peer's
/// watchdog is set at its start). Like `store_peer_version`, no fsync: a crash before
/// writeback only loses the record, and a node without one assumes the configured timeout.
pub fn store_peer_watchdog(statedir: &Path, timeout_ms: u32) -> Result<(), StateError> {
    replace(statedir, PEER_WATCHDOG_FILE, format!("{timeout_ms}\n").as_bytes(), false)
}

/// Builds the `map_err` closure that names `path` and `action`.
fn failed(path: &Path, action: &'static str) -> impl FnOnce(io::Error) -> StateError {
    let path = path.to_path_buf();
    move |source| StateError { path, action, source }
}

/// Reads the stored incarnation in `statedir`, stores and returns the next one (see the
/// module docs), with a warning when the stored one was missing or bad.
pub fn bump_incarnation(statedir: &Path) -> Result<(u64, Option<Warning>), StateError> {
    bump_incarnation_at(statedir, wall_clock_ms())
}

/// `bump_incarnation` with the wall clock given, in ms since the Unix epoch (for tests).
pub fn bump_incarnation_at(
    statedir: &Path,
    wall_clock_ms: u64,
) -> Result<(u64, Option<Warning>), StateError> {
    let path = statedir.join(INCARNATION_FILE);
    let (stored, warning) = match read_state(&path) {
        Ok(bytes) => match std::str::from_utf8(&bytes).map(|t| t.trim().parse::<u64>()) {
            Ok(Ok(value)) if value < u64::MAX => (Some(value), None),
            _ => (None, Some(Warning::Corrupt(path.clone()))),
        },
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            (None, Some(Warning::Missing(path.clone())))
        }
        Err(error) => (None, Some(Warning::Unreadable(path.clone(), error))),
    };
    let next = stored.map_or(0, |value| value + 1).max(wall_clock_ms);
    write_atomic(statedir, INCARNATION_FILE, format!("{next}\n").as_bytes())?;
    Ok((next, warning))
}

/// Wall-clock milliseconds since the Unix epoch, 0 when the clock is before it.
#[allow(clippy::disallowed_methods)] // Start-up only: a floor for the incarnation, not timing.
fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testutil::TempDir;

    fn stored(dir: &Path) -> String {
        fs::read_to_string(dir.join(INCARNATION_FILE)).unwrap()
    }

    #[test]
    fn the_ipmi_sel_position_round_trips() {
        let dir = TempDir::new("state");
        assert_eq!(load_ipmi_sel(dir.path()), None, "a first run");
        store_ipmi_sel(dir.path(), 1_700_000_000, Some(17)).unwrap();
        assert_eq!(load_ipmi_sel(dir.path()), Some((1_700_000_000, Some(17))));
        store_ipmi_sel(dir.path(), 0, None).unwrap();
        assert_eq!(fs::read_to_string(dir.path().join(IPMI_SEL_FILE)).unwrap(), "0 -\n");
        assert_eq!(load_ipmi_sel(dir.path()), Some((0, None)));
        fs::write(dir.path().join(IPMI_SEL_FILE), "garbage\n").unwrap();
        assert_eq!(load_ipmi_sel(dir.path()), None, "unreadable: the log is history");
    }

    #[test]
    fn fresh_dir_uses_wall_clock_and_warns() {
        let dir = TempDir::new("state-fresh");
        let (value, warning) = bump_incarnation_at(dir.path(), 1_000).unwrap();
        assert_eq!(value, 1_000);
        assert!(matches!(warning, Some(Warning::Missing(_))));
        assert_eq!(stored(dir.path()), "1000\n");
        // The real clock is far past 1000 ms.
        let (value, warning) = bump_incarnation(dir.path()).unwrap();
        assert!(value > 1_000 && warning.is_none());
    }

    #[test]
    fn existing_value_is_bumped_even_when_clock_is_behind() {
        let dir = TempDir::new("state-existing");
        write_atomic(dir.path(), INCARNATION_FILE, b"5000\n").unwrap();
        let (value, warning) = bump_incarnation_at(dir.path(), 10).unwrap();
        assert_eq!((value, warning.is_none()), (5001, true));
        let (value, _) = bump_incarnation_at(dir.path(), 9_000).unwrap();
        assert_eq!(value, 9_000);
        assert_eq!(stored(dir.path()), "9000\n");
    }

    #[test]
    fn the_peer_watchdog_is_remembered_and_a_bad_record_is_none() {
        let dir = TempDir::new("state-peer-watchdog");
        assert_eq!(load_peer_watchdog(dir.path()), None, "never heard");
        store_peer_watchdog(dir.path(), 0).unwrap();
        assert_eq!(load_peer_watchdog(dir.path()), Some(0), "heard, none armed");
        store_peer_watchdog(dir.path(), 10_000).unwrap();
        assert_eq!(load_peer_watchdog(dir.path()), Some(10_000));
        fs::write(dir.path().join(PEER_WATCHDOG_FILE), b"ten").unwrap();
        assert_eq!(load_peer_watchdog(dir.path()), None);
    }

    #[test]
    fn corrupt_file_falls_back_to_wall_clock() {
        let dir = TempDir::new("state-corrupt");
        for junk in [&b"12ab"[..], b"", b"18446744073709551615", b"\xff\xfe"] {
            fs::write(dir.path().join(INCARNATION_FILE), junk).unwrap();
            let (value, warning) = bump_incarnation_at(dir.path(), 777).unwrap();
            assert_eq!(value, 777);
            let warning = warning.unwrap();
            assert!(warning.to_string().contains("incarnation: corrupt"), "{warning}");
        }
    }

    #[test]
    fn unwritable_dir_is_an_error_naming_the_file() {
        let dir = TempDir::new("state-unwritable");
        // Root ignores permission bits, so use a path whose parent is a regular file.
        let not_a_dir = dir.path().join("plain-file");
        fs::write(&not_a_dir, b"x").unwrap();
        let error = bump_incarnation_at(&not_a_dir, 1).unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("plain-file/.incarnation.tmp: remove the old temporary file: "),
            "{text}"
        );
    }

    /// A file outside the statedir, and a link to it planted at `dir/name`.
    fn plant_link(dir: &TempDir, name: &str) -> PathBuf {
        let victim = dir.path().join("elsewhere");
        fs::create_dir_all(&victim).unwrap();
        let victim = victim.join(format!("victim-of-{name}"));
        fs::write(&victim, "precious\n").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join(name)).unwrap();
        victim
    }

    fn is_link(path: &Path) -> bool {
        fs::symlink_metadata(path).unwrap().file_type().is_symlink()
    }

    #[test]
    fn a_link_at_the_incarnation_is_neither_read_nor_written_through_but_replaced() {
        let dir = TempDir::new("state-link");
        let victim = plant_link(&dir, INCARNATION_FILE);
        fs::write(&victim, "99999999\n").unwrap();
        let (value, warning) = bump_incarnation_at(dir.path(), 1_000).unwrap();
        // Read through the link, the value would have been 100000000.
        assert_eq!(value, 1_000);
        let shown = warning.unwrap().to_string();
        assert!(
            shown.contains("incarnation: unreadable (a symbolic link, not followed"),
            "{shown}"
        );
        assert_eq!(fs::read_to_string(&victim).unwrap(), "99999999\n");
        let target = dir.path().join(INCARNATION_FILE);
        assert!(!is_link(&target));
        assert_eq!(stored(dir.path()), "1000\n");
    }

    #[test]
    fn a_link_or_file_at_the_temporary_name_is_removed_not_followed() {
        let dir = TempDir::new("state-temp-link");
        let victim = plant_link(&dir, ".x.tmp");
        write_atomic(dir.path(), "x", b"one").unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
        assert_eq!(fs::read(dir.path().join("x")).unwrap(), b"one");
        assert!(!dir.path().join(".x.tmp").exists());
        // A dangling link: following it would create a file where it points.
        let nowhere = dir.path().join("elsewhere/made-by-the-link");
        std::os::unix::fs::symlink(&nowhere, dir.path().join(".x.tmp")).unwrap();
        store_peer_version(dir.path(), 2).unwrap();
        write_atomic(dir.path(), "x", b"two").unwrap();
        assert!(!nowhere.exists());
        assert_eq!(fs::read(dir.path().join("x")).unwrap(), b"two");
    }

    #[test]
    fn the_peer_version_follows_no_link() {
        let dir = TempDir::new("state-peer-version");
        assert_eq!(load_peer_version(dir.path()).unwrap(), 0, "no file: none recorded");
        let victim = plant_link(&dir, PEER_VERSION_FILE);
        fs::write(&victim, "2\n").unwrap();
        let e = load_peer_version(dir.path()).unwrap_err().to_string();
        assert!(e.contains("peer-version: read: a symbolic link, not followed"), "{e}");
        // Written in the loop without fsync, and still not through the link.
        store_peer_version(dir.path(), 2).unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "2\n");
        fs::write(&victim, "7\n").unwrap();
        assert!(!is_link(&dir.path().join(PEER_VERSION_FILE)));
        assert_eq!(load_peer_version(dir.path()).unwrap(), 2);
        fs::write(dir.path().join(PEER_VERSION_FILE), "two").unwrap();
        let e = load_peer_version(dir.path()).unwrap_err().to_string();
        assert!(e.contains("not a version number"), "{e}");
    }

    #[test]
    fn read_state_refuses_what_is_not_a_regular_file_without_hanging() {
        let dir = TempDir::new("state-fifo");
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = read_state(&fifo).unwrap_err();
        assert_eq!(e.to_string(), "not a regular file");
        assert_eq!(read_state(dir.path()).unwrap_err().to_string(), "not a regular file");
        let missing = read_state(&dir.path().join("none")).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        let big = dir.path().join("big");
        fs::write(&big, vec![b'7'; 10_000]).unwrap();
        assert_eq!(read_state(&big).unwrap().len(), STATE_FILE_LEN_MAX as usize);
    }

    #[test]
    fn the_clean_exit_marker_is_taken_once_and_follows_no_link() {
        let dir = TempDir::new("state-clean-exit");
        assert!(!take_clean_exit(dir.path()).unwrap(), "none: not clean");
        store_clean_exit(dir.path()).unwrap();
        assert!(take_clean_exit(dir.path()).unwrap(), "a graceful exit");
        assert!(!dir.path().join(CLEAN_EXIT_FILE).exists(), "removed at start");
        assert!(!take_clean_exit(dir.path()).unwrap(), "a crash after that start: not clean");
        // A link planted at the marker is no marker, and is removed, not followed.
        let victim = plant_link(&dir, CLEAN_EXIT_FILE);
        assert!(!take_clean_exit(dir.path()).unwrap());
        assert!(victim.exists() && !dir.path().join(CLEAN_EXIT_FILE).exists());
        // Written through no link either.
        std::os::unix::fs::symlink(&victim, dir.path().join(CLEAN_EXIT_FILE)).unwrap();
        store_clean_exit(dir.path()).unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
        assert!(!is_link(&dir.path().join(CLEAN_EXIT_FILE)));
        assert!(take_clean_exit(dir.path()).unwrap());
    }

    #[test]
    fn write_atomic_replaces_and_leaves_no_temp_file() {
        let dir = TempDir::new("state-atomic");
        write_atomic(dir.path(), "x", b"one").unwrap();
        write_atomic(dir.path(), "x", b"two").unwrap();
        assert_eq!(fs::read(dir.path().join("x")).unwrap(), b"two");
        assert!(!dir.path().join(".x.tmp").exists());
    }
}
