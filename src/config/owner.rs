//! Who may change what the daemon trusts (SPEC §7.3): the configuration file (its commands
//! run as root), the statedir and the authkey's directory must each be owned by root and not
//! writable by group or others. `check` and `run` refuse them otherwise, naming the path;
//! the client commands (`status`, ...) only read the file and do not judge it.
//!
//! Each path is judged itself, not its parents: the object it names once its final symbolic
//! link is followed, as open(2) and stat(2) see it. A link's own mode is always 0777 and
//! protects nothing; what a writer would change is the file or directory behind it, so
//! `/etc/hapair/hapair.conf -> /srv/conf/hapair.conf` is fine when the target is root's and
//! not writable by others. (The authkey file itself has its stricter rule in `authkey`.)
//!
//! This file reads metadata only: it reads no contents and creates nothing.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// What a judged path is, for the message and the type check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trusted {
    /// The configuration file (`-c FILE`).
    ConfigFile,
    /// The `statedir` directory.
    Statedir,
    /// The directory that holds the authkey file.
    AuthkeyDir,
}

impl std::fmt::Display for Trusted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.what())
    }
}

impl Trusted {
    fn what(self) -> &'static str {
        match self {
            Trusted::ConfigFile => "configuration file",
            Trusted::Statedir => "statedir",
            Trusted::AuthkeyDir => "authkey directory",
        }
    }

    fn wants_dir(self) -> bool {
        self != Trusted::ConfigFile
    }
}

/// Why a path failed [`check`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// Nothing is there, or a parent is not a directory (the caller decides whether that is
    /// fine: `run` makes a missing statedir, and says so when it cannot).
    Missing,
    /// It is there and refused; one line for the user, without the path in front (the
    /// caller's `ConfigError` names it).
    Refused(String),
}

/// Stats `path` (following its final link) and judges it as `what`.
pub fn check(path: &Path, what: Trusted) -> Result<(), Problem> {
    let meta = std::fs::metadata(path).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOENT | libc::ENOTDIR) => Problem::Missing,
        _ => Problem::Refused(format!("{}: cannot stat: {e}", what.what())),
    })?;
    judge_metadata(path, &meta, what).map_err(Problem::Refused)
}

/// Judges metadata already at hand (from an open file's fstat, so what was judged is what is
/// read).
pub fn judge_metadata(path: &Path, meta: &Metadata, what: Trusted) -> Result<(), String> {
    if what.wants_dir() && !meta.is_dir() {
        return Err(format!("{} is not a directory", what.what()));
    }
    judge(path, meta.uid(), meta.mode(), what)
}

/// The rule itself: owned by uid 0, no group or other write bit. `mode` is `st_mode`.
pub fn judge(path: &Path, uid: u32, mode: u32, what: Trusted) -> Result<(), String> {
    let (p, w) = (path.display(), what.what());
    if uid != 0 {
        return Err(format!("{w} owned by uid {uid}, it must be owned by root (chown root {p})"));
    }
    let perm = mode & 0o7777;
    let by = match (perm & 0o020 != 0, perm & 0o002 != 0) {
        (false, false) => return Ok(()),
        (true, false) => "its group",
        (false, true) => "others",
        (true, true) => "its group and others",
    };
    Err(format!("{w} writable by {by} (mode {perm:04o}), it must not be (chmod go-w {p})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use crate::testutil::TempDir;

    const P: &str = "/etc/hapair/hapair.conf";

    fn refused(r: Result<(), Problem>) -> String {
        match r {
            Err(Problem::Refused(m)) => m,
            other => panic!("not refused: {other:?}"),
        }
    }

    fn j(uid: u32, mode: u32, what: Trusted) -> Result<(), String> {
        judge(Path::new(P), uid, mode, what)
    }

    #[test]
    fn root_owned_without_group_or_other_write_passes() {
        for mode in [0o100600, 0o100644, 0o100444, 0o100755, 0o040700, 0o040755, 0o041755] {
            assert_eq!(j(0, mode, Trusted::ConfigFile), Ok(()), "{mode:o}");
        }
    }

    #[test]
    fn another_owner_is_refused_naming_the_uid() {
        assert_eq!(
            j(1000, 0o100600, Trusted::ConfigFile),
            Err(format!(
                "configuration file owned by uid 1000, it must be owned by root (chown root {P})"
            ))
        );
        assert!(j(65534, 0o040700, Trusted::Statedir).unwrap_err().starts_with("statedir owned"));
    }

    #[test]
    fn group_or_other_write_is_refused_naming_the_mode() {
        assert_eq!(
            j(0, 0o100664, Trusted::ConfigFile),
            Err(format!(
                "configuration file writable by its group (mode 0664), it must not be \
                 (chmod go-w {P})"
            ))
        );
        let other = j(0, 0o040757, Trusted::AuthkeyDir).unwrap_err();
        assert!(other.starts_with("authkey directory writable by others (mode 0757)"), "{other}");
        let both = j(0, 0o041777, Trusted::Statedir).unwrap_err();
        assert!(
            both.starts_with("statedir writable by its group and others (mode 1777)"),
            "{both}"
        );
    }

    /// Tests run as root: chown and chmod real files and judge them through `check`.
    #[test]
    fn check_follows_the_final_link_and_judges_its_target() {
        let dir = TempDir::new("owner-check");
        let file = dir.path().join("hapair.conf");
        fs::write(&file, "node a\n").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        let link = dir.path().join("link.conf");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        check(&file, Trusted::ConfigFile).unwrap();
        check(&link, Trusted::ConfigFile).unwrap();

        nix::unistd::chown(&file, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
        for path in [&file, &link] {
            let e = refused(check(path, Trusted::ConfigFile));
            assert!(e.contains("owned by uid 65534"), "{e}");
        }
        nix::unistd::chown(&file, Some(nix::unistd::Uid::from_raw(0)), None).unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o666)).unwrap();
        let e = refused(check(&link, Trusted::ConfigFile));
        assert!(e.contains("(mode 0666)"), "{e}");
    }

    #[test]
    fn a_directory_is_judged_as_one() {
        let dir = TempDir::new("owner-dir");
        let sub = dir.path().join("state");
        fs::create_dir(&sub).unwrap();
        fs::set_permissions(&sub, fs::Permissions::from_mode(0o700)).unwrap();
        check(&sub, Trusted::Statedir).unwrap();
        fs::set_permissions(&sub, fs::Permissions::from_mode(0o777)).unwrap();
        let e = refused(check(&sub, Trusted::Statedir));
        assert!(e.contains("writable by its group and others (mode 0777)"), "{e}");
        let file = dir.path().join("file");
        fs::write(&file, "").unwrap();
        assert_eq!(refused(check(&file, Trusted::Statedir)), "statedir is not a directory");
        assert_eq!(check(&dir.path().join("none"), Trusted::Statedir), Err(Problem::Missing));
        assert_eq!(check(&file.join("sub"), Trusted::Statedir), Err(Problem::Missing));
        let looped = dir.path().join("loop");
        std::os::unix::fs::symlink(&looped, &looped).unwrap();
        let e = refused(check(&looped, Trusted::Statedir));
        assert!(e.starts_with("statedir: cannot stat: Too many levels of symbolic links"), "{e}");
    }
}
