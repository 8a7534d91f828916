//! The watchdog driver against a FIFO standing in for /dev/watchdog: the test holds the read
//! end and sees every byte, and closes it to make the device fail (the writer then gets
//! EPIPE). Time is simulated: a loop of 100 ms steps passes `now` by hand, so the cadence is
//! checked against the simulated clock, never wall time.

use crate::common::TempDir;
use hapair::core::time::{Duration, Instant};
use hapair::drivers::watchdog::{Backing, Watchdog, WatchdogError};
use hapair::health::pet::{PetGate, WITHHELD_RETRY};
use nix::errno::Errno;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

const STEP_MS: u64 = 100;
const TIMEOUT: Duration = Duration::from_secs(3);

/// A temporary directory with a FIFO in it, removed on drop.
struct Fifo {
    dir: TempDir,
    path: PathBuf,
}

impl Fifo {
    fn new(test: &str) -> Fifo {
        let dir = TempDir::new(&format!("wd-{test}"));
        let path = dir.join("watchdog");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        Fifo { dir, path }
    }

    /// The read end, non-blocking (opening it first lets the writer open without a wait).
    fn reader(&self) -> File {
        OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(&self.path).unwrap()
    }
}

/// Bytes waiting in the FIFO; empty when none (EAGAIN) or the writer closed (EOF).
fn drain(reader: &mut File) -> Vec<u8> {
    let mut buf = [0u8; 64];
    match reader.read(&mut buf) {
        Ok(n) => buf[..n].to_vec(),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Vec::new(),
        Err(e) => panic!("fifo read: {e}"),
    }
}

/// Runs the simulated loop from `from_ms` to `to_ms`; `lag_ms(now)` is the loop's measured
/// lag and `allow(now)` the core's permission. Returns the instants at which bytes arrived.
fn run(
    wd: &mut Watchdog,
    reader: &mut File,
    (from_ms, to_ms): (u64, u64),
    lag_ms: impl Fn(u64) -> u64,
    allow: impl Fn(u64) -> bool,
) -> Vec<u64> {
    let gate = PetGate::for_timeout(wd.timeout());
    let mut arrivals = Vec::new();
    let mut now = from_ms;
    while now < to_ms {
        let t = Instant::from_millis(now);
        if gate.may_pet(Duration::from_millis(lag_ms(now)), allow(now)) {
            wd.pet(t).unwrap();
        }
        for byte in drain(reader) {
            assert_eq!(byte, b'.', "a pet is never the magic byte");
            arrivals.push(now);
        }
        now += STEP_MS;
    }
    arrivals
}

#[test]
fn pets_arrive_every_third_of_the_timeout_while_healthy() {
    let fifo = Fifo::new("cadence");
    let mut reader = fifo.reader();
    let mut wd = Watchdog::open(&fifo.path, TIMEOUT).unwrap();
    assert!(!wd.has_ioctls(), "a FIFO answers ENOTTY: writes only");
    assert_eq!(wd.timeout(), TIMEOUT);
    let arrivals = run(&mut wd, &mut reader, (0, 10_000), |_| 0, |_| true);
    let expected: Vec<u64> = (0..10).map(|i| i * 1000).collect();
    assert_eq!(arrivals, expected);
    assert_eq!(wd.pets(), 10);
    assert_eq!(wd.next_deadline(), Some(Instant::from_millis(10_000)));
}

#[test]
fn pets_stop_while_the_core_forbids_and_resume_after() {
    let fifo = Fifo::new("core");
    let mut reader = fifo.reader();
    let mut wd = Watchdog::open(&fifo.path, TIMEOUT).unwrap();
    let forbidden = |now: u64| (3_000..8_000).contains(&now);
    let arrivals = run(&mut wd, &mut reader, (0, 12_000), |_| 0, |now| !forbidden(now));
    assert_eq!(arrivals, [0, 1000, 2000, 8000, 9000, 10_000, 11_000]);
}

#[test]
fn pets_stop_when_the_loop_stalls() {
    let fifo = Fifo::new("stall");
    let mut reader = fifo.reader();
    let mut wd = Watchdog::open(&fifo.path, TIMEOUT).unwrap();
    // The loop reports 1.5 s of lag (timeout/2) from 4 s to 9 s: too late to be trusted;
    // elsewhere it lags just under the bound, which still pets.
    let lag = |now: u64| if (4_000..9_000).contains(&now) { 1_500 } else { 1_499.min(now) };
    let arrivals = run(&mut wd, &mut reader, (0, 12_000), lag, |_| true);
    assert_eq!(arrivals, [0, 1000, 2000, 3000, 9000, 10_000, 11_000]);
}

#[test]
fn disarm_writes_the_magic_byte_and_closes() {
    let fifo = Fifo::new("disarm");
    let mut reader = fifo.reader();
    let mut wd = Watchdog::open(&fifo.path, TIMEOUT).unwrap();
    assert_eq!(run(&mut wd, &mut reader, (0, 500), |_| 0, |_| true), [0]);
    wd.disarm().unwrap();
    assert!(!wd.is_armed() && wd.next_deadline().is_none());
    assert_eq!(drain(&mut reader), b"V");
    assert!(drain(&mut reader).is_empty(), "EOF: the writer closed");
    assert_eq!(wd.pet(Instant::from_millis(10_000)), Ok(false));
    assert_eq!(wd.disarm(), Err(WatchdogError::Closed));
}

#[test]
fn a_device_nobody_reads_cannot_be_opened() {
    let fifo = Fifo::new("noreader");
    // A FIFO without a reader refuses a non-blocking writer: the error the loop reports as
    // Health::WATCHDOG.
    let err = Watchdog::open(&fifo.path, TIMEOUT).unwrap_err();
    assert_eq!(err, WatchdogError::Open(Errno::ENXIO));
    let missing = fifo.dir.join("missing");
    assert_eq!(Watchdog::open(&missing, TIMEOUT).unwrap_err(), WatchdogError::Open(Errno::ENOENT));
}

#[test]
fn a_fifo_with_a_reader_promises_its_timeout_one_without_cannot_be_opened() {
    let fifo = Fifo::new("promise");
    // No reader: `fence watchdog` refuses it like any device that does not open.
    assert_eq!(
        Watchdog::open_promised(&fifo.path, TIMEOUT).unwrap_err(),
        WatchdogError::Open(Errno::ENXIO)
    );
    let _reader = fifo.reader();
    let wd = Watchdog::open_promised(&fifo.path, TIMEOUT).unwrap();
    assert_eq!(wd.backing(), Backing::Fifo);
    assert_eq!(wd.promise(), Ok(TIMEOUT), "the configured timeout is the reader's promise");
}

#[test]
fn a_device_that_fails_later_fails_its_pets_until_it_works_again() {
    let fifo = Fifo::new("fails");
    let mut reader = fifo.reader();
    let mut wd = Watchdog::open(&fifo.path, TIMEOUT).unwrap();
    assert_eq!(run(&mut wd, &mut reader, (0, 1000), |_| 0, |_| true), [0]);
    // The reader goes away: every write now fails with EPIPE (SIGPIPE is ignored, as in the
    // daemon), and the failing pet is retried every WITHHELD_RETRY, never counted.
    drop(reader);
    assert_eq!(wd.pet(Instant::from_millis(1000)), Err(WatchdogError::Write(Errno::EPIPE)));
    assert_eq!(wd.failing(), Some(WatchdogError::Write(Errno::EPIPE)));
    assert_eq!(wd.next_deadline(), Some(Instant::from_millis(1000) + WITHHELD_RETRY));
    assert_eq!(wd.pet(Instant::from_millis(1100)), Err(WatchdogError::Write(Errno::EPIPE)));
    assert_eq!(wd.pets(), 1);
    // A reader again: the next attempt pets, and the device is no longer failing.
    let mut reader = fifo.reader();
    assert_eq!(wd.pet(Instant::from_millis(1200)), Ok(true));
    assert_eq!(wd.failing(), None);
    assert_eq!(drain(&mut reader), b".");
    assert_eq!(wd.next_deadline(), Some(Instant::from_millis(2200)));
}
