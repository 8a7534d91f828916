//! The hardware watchdog (Linux watchdog API, Documentation/watchdog/watchdog-api.rst): open
//! the device, set and read back the timeout, learn whether the last reset was the
//! watchdog's, pet it from the loop, and disarm it with the magic close on a graceful exit.
//!
//! - `open` uses O_WRONLY|O_NONBLOCK|O_CLOEXEC. Opening starts the timer. Where the device
//!   answers the ioctls it sends WDIOC_SETTIMEOUT then WDIOC_GETTIMEOUT (the driver may round
//!   the timeout; the value read back is the one used and sent to the peer), WDIOC_GETSUPPORT
//!   (identity and options) and WDIOC_GETBOOTSTATUS (WDIOF_CARDRESET: "last reset was a
//!   watchdog reset", logged at warn and shown in status). A FIFO or plain file answers
//!   ENOTTY: the driver then only writes, and says so. `open` is lenient (a `watchdog` line
//!   without `fence watchdog`: the hung-kernel reset): what the device refused is logged.
//! - `open_promised` is what `fence watchdog` needs: the timeout the peer will wait for must
//!   be the one in force. It refuses (and disarms what it opened) unless `judge_promise`
//!   accepts: a device that took WDIOC_SETTIMEOUT and reads the same whole seconds back with
//!   WDIOC_GETTIMEOUT, or a FIFO (a userspace stand-in, the namespace lab's: its reader is the
//!   watchdog and the configured timeout its promise). A plain file or another device without
//!   the ioctls (ENOTTY) cannot promise anything; nor can a device that rounds the timeout to
//!   another value (the message names the value to configure), because a peer that never
//!   heard this node assumes the configured timeout (see `core` docs, "The fence-watchdog
//!   margin").
//! - `pet(now)` writes one byte (never 'V') when `pet_due(now)`; the loop sleeps no longer
//!   than `next_deadline()`. When a pet is due, and when one withheld or failed is tried
//!   again, is `health::pet::PetSchedule`; whether the loop may pet at all is
//!   `health::pet::PetGate` (the loop is keeping time and the core allows it): a hung or
//!   lagging daemon stops petting and the hardware resets the node. `failing()` says why the
//!   last attempt failed (the loop makes the node unhealthy meanwhile).
//! - `disarm()` writes the magic 'V' and closes: with a driver that supports magic close the
//!   timer stops. With CONFIG_WATCHDOG_NOWAYOUT (or the `nowayout` module parameter) nothing
//!   can stop the timer once opened: after a graceful exit the node reboots one timeout later
//!   unless a new daemon opens the device and pets it in time. A restart of hapair must
//!   therefore take less than the timeout on such machines.
//! - Dropping a `Watchdog` without `disarm` closes the device without the magic byte, which
//!   leaves the timer running (the kernel logs "unexpected close"): the safe outcome when the
//!   daemon dies.
//!
//! It does not decide when the core allows petting (that is the core's `FeedWatchdog`), nor
//! what a failing watchdog means for the node (the loop reports it to `health`).

use crate::core::time::{Duration, Instant};
use crate::health::pet::PetSchedule;
use core::fmt;
use nix::errno::Errno;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// The default device.
pub const WATCHDOG_PATH: &str = "/dev/watchdog";
/// WDIOF_CARDRESET: the last reboot was caused by the watchdog.
pub const WDIOF_CARDRESET: u32 = 0x0020;
/// WDIOF_SETTIMEOUT: the timeout can be set.
pub const WDIOF_SETTIMEOUT: u32 = 0x0080;
/// WDIOF_MAGICCLOSE: writing 'V' before close stops the timer.
pub const WDIOF_MAGICCLOSE: u32 = 0x0100;

/// The byte written to pet (anything but the magic 'V').
const PET_BYTE: u8 = b'.';
/// The magic close byte.
const MAGIC_BYTE: u8 = b'V';

/// `struct watchdog_info` from linux/watchdog.h.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct WatchdogInfo {
    options: u32,
    firmware_version: u32,
    identity: [u8; 32],
}

nix::ioctl_read!(wdioc_getsupport, b'W', 0, WatchdogInfo);
nix::ioctl_read!(wdioc_getbootstatus, b'W', 2, libc::c_int);
nix::ioctl_readwrite!(wdioc_settimeout, b'W', 6, libc::c_int);
nix::ioctl_read!(wdioc_gettimeout, b'W', 7, libc::c_int);

/// What went wrong with the watchdog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchdogError {
    /// The device could not be opened.
    Open(Errno),
    /// It answers no watchdog ioctls and is not a FIFO: it cannot promise a timeout.
    NotAWatchdog,
    /// WDIOC_SETTIMEOUT failed for this many seconds.
    SetTimeout {
        /// The timeout asked for, in whole seconds.
        secs: u32,
        /// Why.
        errno: Errno,
    },
    /// WDIOC_GETTIMEOUT failed.
    GetTimeout(Errno),
    /// The device keeps another timeout than the one asked for (0: it reads back none).
    TimeoutMismatch {
        /// The timeout asked for, in whole seconds.
        asked_secs: u32,
        /// What WDIOC_GETTIMEOUT read back.
        got_secs: u32,
    },
    /// A pet or the magic close could not be written.
    Write(Errno),
    /// The device was already disarmed.
    Closed,
}

impl fmt::Display for WatchdogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            WatchdogError::Open(Errno::EBUSY) => write!(
                f,
                "cannot open: busy (EBUSY): another program holds it (systemd's \
                 RuntimeWatchdogSec, a watchdog daemon?)"
            ),
            WatchdogError::Open(e) => write!(f, "cannot open: {} ({e:?})", e.desc()),
            WatchdogError::NotAWatchdog => {
                write!(f, "not a watchdog device (no watchdog ioctls): it cannot promise a timeout")
            }
            WatchdogError::SetTimeout { secs, errno } => {
                write!(f, "cannot set a {secs}s timeout: {} ({errno:?})", errno.desc())
            }
            WatchdogError::GetTimeout(e) => {
                write!(f, "cannot read the timeout back: {} ({e:?})", e.desc())
            }
            WatchdogError::TimeoutMismatch { asked_secs, got_secs: 0 } => {
                write!(f, "asked for a {asked_secs}s timeout, the device reads back none")
            }
            WatchdogError::TimeoutMismatch { asked_secs, got_secs } => write!(
                f,
                "asked for a {asked_secs}s timeout, the device keeps {got_secs}s: configure \
                 `timeout {got_secs}s`"
            ),
            WatchdogError::Write(e) => write!(f, "pet failed: {} ({e:?})", e.desc()),
            WatchdogError::Closed => write!(f, "already disarmed"),
        }
    }
}

/// What stands behind the configured watchdog path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backing {
    /// A watchdog device: it answered WDIOC_GETSUPPORT.
    Device,
    /// A FIFO: a userspace stand-in whose reader is the watchdog (the namespace lab's).
    Fifo,
    /// Anything else that answers no watchdog ioctl (a plain file, /dev/null, /dev/full).
    Other,
}

/// Whether a watchdog promises the timeout the peer will wait for (`fence watchdog`): a
/// device that took `asked_secs` (`set`) and reads the same back (`get`), or a FIFO (the
/// configured timeout, `configured`, is its reader's promise). Anything else cannot promise.
pub fn judge_promise(
    backing: Backing,
    asked_secs: u32,
    set: Result<(), Errno>,
    get: Result<u32, Errno>,
    configured: Duration,
) -> Result<Duration, WatchdogError> {
    match backing {
        Backing::Other => Err(WatchdogError::NotAWatchdog),
        Backing::Fifo => Ok(configured),
        Backing::Device => {
            set.map_err(|errno| WatchdogError::SetTimeout { secs: asked_secs, errno })?;
            let got_secs = get.map_err(WatchdogError::GetTimeout)?;
            if got_secs != asked_secs {
                return Err(WatchdogError::TimeoutMismatch { asked_secs, got_secs });
            }
            Ok(Duration::from_secs(got_secs.into()))
        }
    }
}

fn errno_of(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// An open watchdog device (or a FIFO/file standing in for one).
#[derive(Debug)]
pub struct Watchdog {
    file: Option<File>,
    timeout: Duration,
    /// The timeout configured (what a FIFO promises).
    configured: Duration,
    /// When pets are due (for the timeout in force).
    schedule: PetSchedule,
    backing: Backing,
    /// The whole seconds asked for with WDIOC_SETTIMEOUT.
    asked_secs: u32,
    /// What WDIOC_SETTIMEOUT said (`Ok` without ioctls: nothing was asked).
    set: Result<(), Errno>,
    /// What WDIOC_GETTIMEOUT read back (`Ok(0)` without ioctls).
    get: Result<u32, Errno>,
    identity: heapless::String<32>,
    options: u32,
    boot_status: u32,
    pets: u64,
    /// Why the last pet attempt failed (`None` once one succeeds).
    failing: Option<WatchdogError>,
}

impl Watchdog {
    /// Opens `path` (which starts the hardware timer) and asks for `timeout` (whole seconds,
    /// rounded up, at least 1 s, where the device answers ioctls). Lenient: a timeout the
    /// device refuses is logged, and the one it reads back (else the configured one) is used.
    pub fn open(path: &Path, timeout: Duration) -> Result<Watchdog, WatchdogError> {
        let file = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| WatchdogError::Open(errno_of(&e)))?;
        let asked_secs = u32::try_from(timeout.total_millis().div_ceil(1000).max(1))
            .unwrap_or(u32::MAX)
            .min(libc::c_int::MAX.unsigned_abs());
        let mut wd = Watchdog {
            file: None,
            timeout,
            configured: timeout,
            schedule: PetSchedule::for_timeout(timeout),
            backing: Backing::Other,
            asked_secs,
            set: Ok(()),
            get: Ok(0),
            identity: heapless::String::new(),
            options: 0,
            boot_status: 0,
            pets: 0,
            failing: None,
        };
        wd.query(&file, path);
        wd.schedule = PetSchedule::for_timeout(wd.timeout);
        if wd.backing == Backing::Device {
            log::info!(
                "watchdog {}: {:?}, timeout {}, options {:#x}",
                path.display(),
                wd.identity.as_str(),
                wd.timeout,
                wd.options
            );
            if wd.last_reset_by_watchdog() {
                log::warn!("watchdog {}: last reset was a watchdog reset", path.display());
            }
        } else {
            log::info!(
                "watchdog {}: no watchdog ioctls ({}): writes only",
                path.display(),
                if wd.backing == Backing::Fifo { "a FIFO" } else { "not a device" }
            );
        }
        wd.file = Some(file);
        Ok(wd)
    }

    /// `open` for `fence watchdog`: the device must promise its timeout (`judge_promise`).
    /// When it does not, what was opened is disarmed (magic close: a refused start must not
    /// leave a running timer behind) and the reason returned.
    pub fn open_promised(path: &Path, timeout: Duration) -> Result<Watchdog, WatchdogError> {
        let mut wd = Watchdog::open(path, timeout)?;
        match wd.promise() {
            Ok(_) => Ok(wd),
            Err(e) => {
                if let Err(close) = wd.disarm() {
                    log::warn!("watchdog {}: magic close failed: {close}", path.display());
                }
                Err(e)
            }
        }
    }

    /// The timeout this watchdog promises (`judge_promise` on what the device said at open).
    pub fn promise(&self) -> Result<Duration, WatchdogError> {
        judge_promise(self.backing, self.asked_secs, self.set, self.get, self.configured)
    }

    fn query(&mut self, file: &File, path: &Path) {
        let fd = file.as_raw_fd();
        let mut info = WatchdogInfo::default();
        // SAFETY: `fd` is open for the call; `info` is a valid `watchdog_info` to fill.
        match unsafe { wdioc_getsupport(fd, &mut info) } {
            Err(Errno::ENOTTY) | Err(Errno::EINVAL) => {
                let fifo = file.metadata().is_ok_and(|m| m.file_type().is_fifo());
                self.backing = if fifo { Backing::Fifo } else { Backing::Other };
                return;
            }
            Err(e) => log::warn!("watchdog {}: WDIOC_GETSUPPORT: {}", path.display(), e.desc()),
            Ok(_) => {
                self.options = info.options;
                let end = info.identity.iter().position(|&b| b == 0).unwrap_or(32);
                let text = core::str::from_utf8(&info.identity[..end]).unwrap_or("?");
                for c in text.chars() {
                    if self.identity.push(c).is_err() {
                        break;
                    }
                }
            }
        }
        self.backing = Backing::Device;
        // INVARIANT: `asked_secs` was capped at c_int::MAX in `open`.
        let mut secs = libc::c_int::try_from(self.asked_secs).unwrap_or(libc::c_int::MAX);
        // SAFETY: `fd` is open; `secs` is a valid int the driver reads and may rewrite.
        self.set = unsafe { wdioc_settimeout(fd, &mut secs) }.map(drop);
        if let Err(e) = self.set {
            log::warn!("watchdog {}: WDIOC_SETTIMEOUT {secs}s: {}", path.display(), e.desc());
        }
        let mut actual: libc::c_int = 0;
        // SAFETY: as above, the driver writes one int.
        self.get = unsafe { wdioc_gettimeout(fd, &mut actual) }.map(|_| actual.unsigned_abs());
        match self.get {
            Ok(got) if got > 0 => self.timeout = Duration::from_secs(got.into()),
            Ok(_) => log::warn!("watchdog {}: WDIOC_GETTIMEOUT reads 0", path.display()),
            Err(e) => log::warn!("watchdog {}: WDIOC_GETTIMEOUT: {}", path.display(), e.desc()),
        }
        let mut status: libc::c_int = 0;
        // SAFETY: as above, the driver writes one int.
        if unsafe { wdioc_getbootstatus(fd, &mut status) }.is_ok() {
            self.boot_status = status as u32;
        }
    }

    /// The timeout in force (read back from the device where it answers ioctls).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The time between pets: timeout/3.
    pub fn pet_interval(&self) -> Duration {
        self.schedule.interval()
    }

    /// True when a pet is due at `now` (`PetSchedule::poll_due`: a yes is taken as the loop's
    /// attempt); never once disarmed.
    pub fn pet_due(&mut self, now: Instant) -> bool {
        self.file.is_some() && self.schedule.poll_due(now)
    }

    /// When the next pet is due (`PetSchedule::next_deadline`); `None` once disarmed.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.file.as_ref()?;
        Some(self.schedule.next_deadline())
    }

    /// Pets when due; returns whether a byte was written. The caller has checked
    /// `health::pet::PetGate::may_pet`.
    pub fn pet(&mut self, now: Instant) -> Result<bool, WatchdogError> {
        if !self.pet_due(now) {
            return Ok(false);
        }
        let file = self.file.as_mut().ok_or(WatchdogError::Closed)?;
        let written = file.write_all(&[PET_BYTE]).map_err(|e| WatchdogError::Write(errno_of(&e)));
        self.failing = written.err();
        written?;
        self.schedule.handle_petted(now);
        self.pets = self.pets.saturating_add(1);
        Ok(true)
    }

    /// Why the last pet attempt failed, until one succeeds.
    pub fn failing(&self) -> Option<WatchdogError> {
        self.failing
    }

    /// Magic close: writes 'V' and closes. See the module doc for `nowayout`.
    pub fn disarm(&mut self) -> Result<(), WatchdogError> {
        let mut file = self.file.take().ok_or(WatchdogError::Closed)?;
        file.write_all(&[MAGIC_BYTE]).map_err(|e| WatchdogError::Write(errno_of(&e)))?;
        if self.backing == Backing::Device && self.options & WDIOF_MAGICCLOSE == 0 {
            log::warn!("watchdog: no magic close support: the timer keeps running");
        }
        Ok(())
    }

    /// True while open (not disarmed).
    pub fn is_armed(&self) -> bool {
        self.file.is_some()
    }

    /// True when the device answered the watchdog ioctls (false for a FIFO or file).
    pub fn has_ioctls(&self) -> bool {
        self.backing == Backing::Device
    }

    /// What stands behind the path.
    pub fn backing(&self) -> Backing {
        self.backing
    }

    /// The driver's identity string (empty without ioctls).
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// WDIOF_* options the driver supports.
    pub fn options(&self) -> u32 {
        self.options
    }

    /// True when WDIOC_GETBOOTSTATUS says the last reset was the watchdog's.
    pub fn last_reset_by_watchdog(&self) -> bool {
        self.boot_status & WDIOF_CARDRESET != 0
    }

    /// Pets written since open.
    pub fn pets(&self) -> u64 {
        self.pets
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::pet::WITHHELD_RETRY;

    #[test]
    fn plain_file_is_writes_only_and_cadence_is_a_third() {
        let path = std::env::temp_dir().join(format!("hapair-wd-unit-{}", std::process::id()));
        std::fs::write(&path, b"").unwrap();
        let mut wd = Watchdog::open(&path, Duration::from_secs(9)).unwrap();
        assert!(!wd.has_ioctls());
        assert_eq!(wd.timeout(), Duration::from_secs(9));
        assert_eq!(wd.next_deadline(), Some(Instant::ZERO));
        assert_eq!(wd.pet(Instant::from_millis(100)), Ok(true));
        assert_eq!(wd.pet(Instant::from_millis(3099)), Ok(false));
        assert_eq!(wd.next_deadline(), Some(Instant::from_millis(3100)));
        assert_eq!(wd.pet(Instant::from_millis(3100)), Ok(true));
        wd.disarm().unwrap();
        assert_eq!(wd.disarm(), Err(WatchdogError::Closed));
        assert!(!wd.pet_due(Instant::from_millis(1_000_000)));
        assert_eq!(std::fs::read(&path).unwrap(), b"..V");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn only_a_device_that_keeps_the_timeout_or_a_fifo_promises_one() {
        let ten = Duration::from_secs(10);
        let judge = |backing, set, get| judge_promise(backing, 10, set, get, ten);
        assert_eq!(judge(Backing::Device, Ok(()), Ok(10)), Ok(ten));
        assert_eq!(judge(Backing::Fifo, Ok(()), Ok(0)), Ok(ten), "its reader's promise");
        assert_eq!(judge(Backing::Other, Ok(()), Ok(0)), Err(WatchdogError::NotAWatchdog));
        let set_failed = WatchdogError::SetTimeout { secs: 10, errno: Errno::EINVAL };
        assert_eq!(judge(Backing::Device, Err(Errno::EINVAL), Ok(10)), Err(set_failed));
        let get_failed = WatchdogError::GetTimeout(Errno::ENOTTY);
        assert_eq!(judge(Backing::Device, Ok(()), Err(Errno::ENOTTY)), Err(get_failed));
        let rounded = WatchdogError::TimeoutMismatch { asked_secs: 10, got_secs: 12 };
        assert_eq!(judge(Backing::Device, Ok(()), Ok(12)), Err(rounded));
        let none = WatchdogError::TimeoutMismatch { asked_secs: 10, got_secs: 0 };
        assert_eq!(judge(Backing::Device, Ok(()), Ok(0)), Err(none));
        // Each refusal reads as one line a user can act on.
        assert_eq!(
            rounded.to_string(),
            "asked for a 10s timeout, the device keeps 12s: configure `timeout 12s`"
        );
        assert!(WatchdogError::Open(Errno::EBUSY).to_string().contains("RuntimeWatchdogSec"));
    }

    #[test]
    fn a_plain_file_or_a_null_device_is_refused_and_a_fifo_promised() {
        let dir = std::env::temp_dir().join(format!("hapair-wd-promise-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("file");
        std::fs::write(&file, b"").unwrap();
        let t = Duration::from_secs(3);
        assert_eq!(Watchdog::open_promised(&file, t).unwrap_err(), WatchdogError::NotAWatchdog);
        // The refusal disarmed what it opened: the magic byte went out.
        assert_eq!(std::fs::read(&file).unwrap(), b"V");
        let null = Path::new("/dev/null");
        assert_eq!(Watchdog::open_promised(null, t).unwrap_err(), WatchdogError::NotAWatchdog);
        assert_eq!(Watchdog::open(null, t).map(|w| w.backing()), Ok(Backing::Other));
        let fifo = dir.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let _reader =
            OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(&fifo).unwrap();
        let wd = Watchdog::open_promised(&fifo, t).unwrap();
        assert_eq!((wd.backing(), wd.promise()), (Backing::Fifo, Ok(t)));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_pet_that_cannot_be_written_fails_and_is_retried_later() {
        // /dev/full takes the open and refuses every write (ENOSPC), like a device that broke.
        let mut wd = Watchdog::open(Path::new("/dev/full"), Duration::from_secs(3)).unwrap();
        assert_eq!(wd.failing(), None);
        let failed = wd.pet(Instant::from_millis(0));
        assert_eq!(failed, Err(WatchdogError::Write(Errno::ENOSPC)));
        assert_eq!((wd.failing(), wd.pets()), (Some(WatchdogError::Write(Errno::ENOSPC)), 0));
        assert_eq!(failed.unwrap_err().to_string(), "pet failed: No space left on device (ENOSPC)");
        // Retried after WITHHELD_RETRY, not on every wake, and not counted as a pet.
        assert_eq!(wd.next_deadline(), Some(Instant::ZERO + WITHHELD_RETRY));
        assert_eq!(wd.pet(Instant::from_millis(100)), Err(WatchdogError::Write(Errno::ENOSPC)));
        assert!(wd.failing().is_some());
    }

    #[test]
    fn a_withheld_pet_is_retried_later_not_at_once() {
        let path = std::env::temp_dir().join(format!("hapair-wd-retry-{}", std::process::id()));
        std::fs::write(&path, b"").unwrap();
        let mut wd = Watchdog::open(&path, Duration::from_secs(3)).unwrap();
        assert_eq!(wd.pet(Instant::from_millis(0)), Ok(true));
        assert_eq!(wd.next_deadline(), Some(Instant::from_millis(1000)));
        // Due at 1 s; the loop asks at 4 s (it was stopped) and withholds the pet.
        assert!(wd.pet_due(Instant::from_millis(4000)));
        assert_eq!(wd.next_deadline(), Some(Instant::from_millis(4000) + WITHHELD_RETRY));
        // The next attempt pets, and the cadence starts again from there.
        assert!(wd.pet_due(Instant::from_millis(4100)));
        assert_eq!(wd.pet(Instant::from_millis(4100)), Ok(true));
        assert_eq!(wd.next_deadline(), Some(Instant::from_millis(5100)));
        assert_eq!(std::fs::read(&path).unwrap(), b"..");
        std::fs::remove_file(&path).unwrap();
    }
}
