//! The hardware watchdog (Linux watchdog API, Documentation/watchdog/watchdog-api.rst): open
//! the device, set and read back the timeout, learn whether the last reset was the
//! watchdog's, pet it from the loop, and disarm it with the magic close on a graceful exit.
//!
//! - `open` uses O_WRONLY|O_NONBLOCK|O_CLOEXEC. Opening starts the timer. Where the device
//!   answers the ioctls it sends WDIOC_SETTIMEOUT then WDIOC_GETTIMEOUT (the driver may round
//!   the timeout; the value read back is the one used and sent to the peer), WDIOC_GETSUPPORT
//!   (identity and options) and WDIOC_GETBOOTSTATUS (WDIOF_CARDRESET: "last reset was a
//!   watchdog reset", logged at warn and shown in status). A FIFO or plain file answers
//!   ENOTTY: the driver then only writes, and says so.
//! - `pet(now)` writes one byte (never 'V') when `pet_due(now)`, i.e. at most every
//!   timeout/3; the loop sleeps no longer than `next_deadline()`. Whether the loop may pet at
//!   all is `PetGate::may_pet` (the loop is keeping time and the core allows it): a hung or
//!   lagging daemon stops petting and the hardware resets the node. A due pet that the loop
//!   asked about (`pet_due`) but then withheld moves `next_deadline` to `WITHHELD_RETRY`
//!   later instead of leaving it in the past: a loop that may not pet sleeps between
//!   attempts instead of spinning, and measures its lag against a deadline it can meet (so
//!   that petting resumes once the loop keeps time again, e.g. after SIGSTOP/SIGCONT).
//! - `disarm()` writes the magic 'V' and closes: with a driver that supports magic close the
//!   timer stops. With CONFIG_WATCHDOG_NOWAYOUT (or the `nowayout` module parameter) nothing
//!   can stop the timer once opened: after a graceful exit the node reboots one timeout later
//!   unless a new daemon opens the device and pets it in time. A restart of hapair must
//!   therefore take less than the timeout on such machines.
//! - Dropping a `Watchdog` without `disarm` closes the device without the magic byte, which
//!   leaves the timer running (the kernel logs "unexpected close"): the safe outcome when the
//!   daemon dies.
//!
//! It does not decide when the core allows petting; that is the core's `FeedWatchdog`.

use crate::core::time::{Duration, Instant};
use core::fmt;
use nix::errno::Errno;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
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
/// How long after a withheld pet the loop is woken to try again.
pub const WITHHELD_RETRY: Duration = Duration::from_millis(100);

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
    /// A pet or the magic close could not be written.
    Write(Errno),
    /// The device was already disarmed.
    Closed,
}

impl fmt::Display for WatchdogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WatchdogError::Open(e) => write!(f, "watchdog: cannot open: {}", e.desc()),
            WatchdogError::Write(e) => write!(f, "watchdog: write failed: {}", e.desc()),
            WatchdogError::Closed => write!(f, "watchdog: already disarmed"),
        }
    }
}

fn errno_of(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// Whether the loop may pet now: the pure half of the decision.
///
/// The loop measures its lag (how late it woke past the deadline it asked `poll` for, or how
/// long its last iteration took, whichever is larger). Petting is allowed only while that lag
/// stays under `lag_max` (default timeout/2: a loop that late could not pet in time anyway,
/// and something in it is stuck) and the core allows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PetGate {
    /// The largest loop lag at which petting is still allowed.
    pub lag_max: Duration,
}

impl PetGate {
    /// The default gate for a watchdog `timeout`: lag under timeout/2.
    pub const fn for_timeout(timeout: Duration) -> PetGate {
        PetGate { lag_max: Duration::from_millis(timeout.total_millis() / 2) }
    }

    /// True when the loop may pet: lag under the bound and the core allows it.
    pub const fn may_pet(&self, loop_lag: Duration, core_allows: bool) -> bool {
        core_allows && loop_lag.total_millis() < self.lag_max.total_millis()
    }
}

/// An open watchdog device (or a FIFO/file standing in for one).
#[derive(Debug)]
pub struct Watchdog {
    file: Option<File>,
    timeout: Duration,
    last_pet: Option<Instant>,
    /// When `pet_due` last answered yes (the loop's last attempt).
    last_asked: Option<Instant>,
    ioctls: bool,
    identity: heapless::String<32>,
    options: u32,
    boot_status: u32,
    pets: u64,
}

impl Watchdog {
    /// Opens `path` (which starts the hardware timer) and asks for `timeout` (whole seconds,
    /// rounded up, at least 1 s, where the device answers ioctls).
    pub fn open(path: &Path, timeout: Duration) -> Result<Watchdog, WatchdogError> {
        let file = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| WatchdogError::Open(errno_of(&e)))?;
        let mut wd = Watchdog {
            file: None,
            timeout,
            last_pet: None,
            last_asked: None,
            ioctls: false,
            identity: heapless::String::new(),
            options: 0,
            boot_status: 0,
            pets: 0,
        };
        wd.query(&file, timeout);
        if wd.ioctls {
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
                "watchdog {}: no watchdog ioctls (not a device): writes only",
                path.display()
            );
        }
        wd.file = Some(file);
        Ok(wd)
    }

    fn query(&mut self, file: &File, timeout: Duration) {
        let fd = file.as_raw_fd();
        let mut info = WatchdogInfo::default();
        // SAFETY: `fd` is open for the call; `info` is a valid `watchdog_info` to fill.
        match unsafe { wdioc_getsupport(fd, &mut info) } {
            Err(Errno::ENOTTY) | Err(Errno::EINVAL) => return,
            Err(e) => log::warn!("watchdog: WDIOC_GETSUPPORT: {}", e.desc()),
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
        self.ioctls = true;
        let mut secs = libc::c_int::try_from(timeout.total_millis().div_ceil(1000).max(1))
            .unwrap_or(libc::c_int::MAX);
        // SAFETY: `fd` is open; `secs` is a valid int the driver reads and may rewrite.
        if let Err(e) = unsafe { wdioc_settimeout(fd, &mut secs) } {
            log::warn!("watchdog: WDIOC_SETTIMEOUT {secs}s: {}", e.desc());
        }
        let mut actual: libc::c_int = 0;
        // SAFETY: as above, the driver writes one int.
        if unsafe { wdioc_gettimeout(fd, &mut actual) }.is_ok() && actual > 0 {
            self.timeout = Duration::from_secs(actual.unsigned_abs().into());
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
        Duration::from_millis(self.timeout.total_millis() / 3)
    }

    /// True when a pet is due at `now` (never petted, or timeout/3 since the last one). A yes
    /// is taken as the loop's attempt: if no `pet` follows (the gate withheld it),
    /// `next_deadline` is `WITHHELD_RETRY` after `now`.
    pub fn pet_due(&mut self, now: Instant) -> bool {
        let due =
            self.file.is_some() && self.last_pet.is_none_or(|t| now >= t + self.pet_interval());
        if due {
            self.last_asked = Some(now);
        }
        due
    }

    /// When the next pet is due; `None` once disarmed. Before the first pet it is
    /// `Instant::ZERO` (due at once); after a withheld pet, `WITHHELD_RETRY` after that attempt.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.file.as_ref()?;
        let due = self.last_pet.map_or(Instant::ZERO, |t| t + self.pet_interval());
        Some(match self.last_asked {
            Some(asked) if asked >= due => due.max(asked + WITHHELD_RETRY),
            _ => due,
        })
    }

    /// Pets when due; returns whether a byte was written. The caller has checked
    /// `PetGate::may_pet`.
    pub fn pet(&mut self, now: Instant) -> Result<bool, WatchdogError> {
        if !self.pet_due(now) {
            return Ok(false);
        }
        let file = self.file.as_mut().ok_or(WatchdogError::Closed)?;
        file.write_all(&[PET_BYTE]).map_err(|e| WatchdogError::Write(errno_of(&e)))?;
        self.last_pet = Some(now);
        self.pets = self.pets.saturating_add(1);
        Ok(true)
    }

    /// Magic close: writes 'V' and closes. See the module doc for `nowayout`.
    pub fn disarm(&mut self) -> Result<(), WatchdogError> {
        let mut file = self.file.take().ok_or(WatchdogError::Closed)?;
        file.write_all(&[MAGIC_BYTE]).map_err(|e| WatchdogError::Write(errno_of(&e)))?;
        if self.ioctls && self.options & WDIOF_MAGICCLOSE == 0 {
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
        self.ioctls
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

    #[test]
    fn gate_needs_core_and_small_lag() {
        let gate = PetGate::for_timeout(Duration::from_secs(10));
        assert_eq!(gate.lag_max, Duration::from_secs(5));
        assert!(gate.may_pet(Duration::ZERO, true));
        assert!(gate.may_pet(Duration::from_millis(4999), true));
        assert!(!gate.may_pet(Duration::from_secs(5), true));
        assert!(!gate.may_pet(Duration::ZERO, false));
    }

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
