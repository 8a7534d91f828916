//! The serial driver on a real pty pair: the driver opens the slave by its /dev/pts path, the
//! test plays the far end on the master.

// Test deadlines are wall-clock time; the daemon itself reads the clock only in event_loop.rs.
#![allow(clippy::disallowed_methods)]

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use hapair::drivers::serial::{SerialPort, WriteOutcome, min_interval_for};
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

const DEADLINE: Duration = Duration::from_secs(10);

struct Pty {
    master: OwnedFd,
    _slave: OwnedFd,
    path: String,
}

fn pty() -> Pty {
    let pair = nix::pty::openpty(None, None).expect("openpty");
    let path = nix::unistd::ttyname(&pair.slave).expect("ttyname");
    let flags = OFlag::from_bits_retain(fcntl(&pair.master, FcntlArg::F_GETFL).unwrap());
    fcntl(&pair.master, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).unwrap();
    let path = path.to_str().expect("pts path is UTF-8").to_string();
    Pty { master: pair.master, _slave: pair.slave, path }
}

fn wait_readable(fd: impl AsFd, until: Instant) -> bool {
    let left = until.saturating_duration_since(Instant::now());
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    let ms = PollTimeout::try_from(left.as_millis().min(10_000) as i32).unwrap();
    poll(&mut fds, ms).unwrap_or(0) > 0
}

/// Reads from the master until `want` bytes arrived or the deadline passed.
fn read_master(pty: &Pty, want: usize) -> Vec<u8> {
    let until = Instant::now() + DEADLINE;
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while got.len() < want && Instant::now() < until {
        wait_readable(&pty.master, until);
        if let Ok(n) = nix::unistd::read(&pty.master, &mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
    }
    got
}

#[test]
fn frames_cross_both_ways_raw() {
    let pty = pty();
    let mut port = SerialPort::open(&pty.path, 115_200).expect("open pty slave");
    // Bytes a cooked tty would eat or translate: NUL, ^C, ^D, CR, LF, XON/XOFF, DEL, 0xff.
    let frame: Vec<u8> = [0u8, 3, 4, 13, 10, 0x11, 0x13, 0x7f, 0xff, 0x7e, 0x7d]
        .into_iter()
        .chain(0..=255u8)
        .collect();
    assert_eq!(port.write_frame(&frame).unwrap(), WriteOutcome::Sent);
    assert_eq!(read_master(&pty, frame.len()), frame);

    let written = nix::unistd::write(&pty.master, &frame).unwrap();
    assert_eq!(written, frame.len());
    let until = Instant::now() + DEADLINE;
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while got.len() < frame.len() && Instant::now() < until {
        wait_readable(fd_of(&port), until);
        let n = port.read_available(&mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, frame);
    assert_eq!(port.stats().bytes_rx, frame.len() as u64);
}

fn fd_of(port: &SerialPort) -> std::os::fd::BorrowedFd<'_> {
    // SAFETY: the fd belongs to `port`, which outlives the borrow.
    unsafe { std::os::fd::BorrowedFd::borrow_raw(port.as_raw_fd()) }
}

#[test]
fn nothing_waiting_reads_zero_without_blocking() {
    let pty = pty();
    let mut port = SerialPort::open(&pty.path, 9600).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(port.read_available(&mut buf).unwrap(), 0);
}

#[test]
fn a_line_nobody_drains_drops_frames_instead_of_blocking() {
    let pty = pty();
    let mut port = SerialPort::open(&pty.path, 9600).unwrap();
    let frame = [0x55u8; 128];
    let mut outcomes = (0, 0, 0);
    // Nobody reads the master: the pty fills up and the driver must start dropping.
    for _ in 0..10_000 {
        match port.write_frame(&frame).unwrap() {
            WriteOutcome::Sent => outcomes.0 += 1,
            WriteOutcome::Dropped => outcomes.1 += 1,
            WriteOutcome::Truncated(n) => {
                assert!(n > 0 && n < frame.len());
                outcomes.2 += 1;
            }
        }
    }
    assert!(outcomes.0 > 0, "{outcomes:?}");
    assert!(outcomes.1 > 0, "a full line must drop frames: {outcomes:?}");
    let stats = port.stats();
    assert_eq!(stats.frames_dropped, outcomes.1);
    assert_eq!(stats.frames_truncated, outcomes.2);
}

#[test]
fn open_errors_name_the_device() {
    let Err(err) = SerialPort::open("/dev/hapair-no-such-tty", 9600) else {
        panic!("opened a device that does not exist");
    };
    assert_eq!(err.device, "/dev/hapair-no-such-tty");
    assert!(err.to_string().contains("/dev/hapair-no-such-tty"), "{err}");
}

#[test]
fn a_9600_baud_line_carries_a_frame_every_keepalive_of_300ms() {
    let gap = min_interval_for(9600, hapair::limits::FRAME_LEN_MAX + 8);
    assert!(gap.total_millis() > 133 && gap.total_millis() <= 300, "{gap}");
}

#[test]
fn a_vanished_far_end_is_an_error_so_the_loop_reopens() {
    let pty = pty();
    let mut port = SerialPort::open(&pty.path, 9600).unwrap();
    let Pty { master, _slave, .. } = pty;
    drop(master);
    drop(_slave);
    let mut buf = [0u8; 16];
    let mut fds = [PollFd::new(fd_of(&port), PollFlags::POLLIN)];
    assert_eq!(poll(&mut fds, PollTimeout::from(10_000u16)), Ok(1));
    assert!(fds[0].revents().unwrap().contains(PollFlags::POLLHUP));
    assert!(port.read_available(&mut buf).is_err(), "hung up once the other side is gone");
    assert!(port.write_frame(b"x").is_err());
}
