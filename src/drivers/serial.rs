//! Serial heartbeat link: a tty opened raw 8N1 without flow control and made non-blocking so
//! the event loop can poll it, plus the pacing rule that keeps a slow line from backing up.
//!
//! This driver moves bytes only: it does not frame, check or parse them (that is `wire`), it
//! does not decide when to send (the event loop asks `min_interval_for`), and it never blocks:
//! when the line cannot take a whole frame now, the frame is dropped and counted.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::termios::{FlushArg, tcflush};
use nix::unistd::{read, write};
use serialport::{DataBits, FlowControl, Parity, StopBits, TTYPort};

use crate::core::time::Duration;

nix::ioctl_read_bad!(tiocoutq, libc::TIOCOUTQ, libc::c_int);

/// Bits on the wire per byte in 8N1: start, eight data bits, stop.
const BITS_PER_BYTE: u64 = 10;
/// Share of the line's raw capacity that heartbeats may use, in percent. The rest is headroom
/// for retransmitted noise, the peer's traffic on a shared adapter and clock slack.
const LINE_SHARE_PERCENT: u64 = 50;

/// A serial port that failed to open, with the device it was meant to be.
#[derive(Debug)]
pub struct OpenError {
    /// The device path as configured.
    pub device: String,
    /// What the kernel or the serialport crate said.
    pub reason: String,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: cannot open serial port: {}", self.device, self.reason)
    }
}

impl std::error::Error for OpenError {}

/// What became of one frame handed to `write_frame`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The whole frame is in the tty's output queue.
    Sent,
    /// The line had not drained the previous frame yet; this one was dropped and counted.
    Dropped,
    /// Only the first `n` bytes fit; the receiver resynchronises on the next delimiter.
    Truncated(usize),
}

/// Counters of one serial port, for status and the SIGUSR1 dump.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SerialStats {
    /// Bytes read from the line.
    pub bytes_rx: u64,
    /// Bytes handed to the tty.
    pub bytes_tx: u64,
    /// Frames dropped because the output queue was still busy.
    pub frames_dropped: u64,
    /// Frames cut short because the output queue filled up mid-frame.
    pub frames_truncated: u64,
}

/// One open serial port. Dropping it closes the tty.
pub struct SerialPort {
    port: TTYPort,
    stats: SerialStats,
}

impl SerialPort {
    /// Opens `device` raw 8N1 at `baud`, no flow control, non-blocking.
    pub fn open(device: &str, baud: u32) -> Result<SerialPort, OpenError> {
        let err = |reason: String| OpenError { device: device.to_string(), reason };
        let port = serialport::new(device, baud)
            .data_bits(DataBits::Eight)
            .parity(Parity::None)
            .stop_bits(StopBits::One)
            .flow_control(FlowControl::None)
            .timeout(std::time::Duration::ZERO)
            .open_native()
            .map_err(|e| err(e.to_string()))?;
        let port = SerialPort { port, stats: SerialStats::default() };
        let fd = port.as_fd();
        let flags = fcntl(fd, FcntlArg::F_GETFL).map_err(|e| err(e.desc().to_string()))?;
        let flags = OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK;
        fcntl(fd, FcntlArg::F_SETFL(flags)).map_err(|e| err(e.desc().to_string()))?;
        // Bytes that waited in the input queue from before we opened (a line reopened after
        // a restart or a hang-up) are stale heartbeats: read first, they would show the peer
        // as it was, not as it is.
        tcflush(fd, FlushArg::TCIFLUSH).map_err(|e| err(e.desc().to_string()))?;
        Ok(port)
    }

    /// Reads what the line has now into `buf`; 0 when nothing is waiting. `Err` when the line
    /// is gone (hang-up, EIO): the loop closes and reopens the port.
    pub fn read_available(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        match read(self.as_fd(), buf) {
            // Raw mode (cfmakeraw: VMIN 1, VTIME 0) and O_NONBLOCK: no data is EAGAIN, so a
            // zero-length read is end of file, a hung-up line (POLLHUP).
            Ok(0) => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "serial line hung up")),
            Ok(n) => {
                self.stats.bytes_rx += n as u64;
                Ok(n)
            }
            Err(Errno::EAGAIN | Errno::EINTR) => Ok(0),
            Err(e) => Err(io::Error::from(e)),
        }
    }

    /// Queues one frame on the line without ever blocking. At most one frame waits in the
    /// tty's output queue: if the previous one has not drained, this one is dropped.
    /// `Err` is a line error (EIO after a hang-up): the loop closes and reopens the port.
    pub fn write_frame(&mut self, bytes: &[u8]) -> io::Result<WriteOutcome> {
        if self.output_queued()? > 0 {
            self.stats.frames_dropped += 1;
            return Ok(WriteOutcome::Dropped);
        }
        let n = match write(self.as_fd(), bytes) {
            Ok(n) => n,
            Err(Errno::EAGAIN | Errno::EINTR) => {
                self.stats.frames_dropped += 1;
                return Ok(WriteOutcome::Dropped);
            }
            Err(e) => return Err(io::Error::from(e)),
        };
        self.stats.bytes_tx += n as u64;
        if n == bytes.len() {
            Ok(WriteOutcome::Sent)
        } else if n == 0 {
            self.stats.frames_dropped += 1;
            Ok(WriteOutcome::Dropped)
        } else {
            self.stats.frames_truncated += 1;
            Ok(WriteOutcome::Truncated(n))
        }
    }

    /// Bytes written but not yet sent by the tty (TIOCOUTQ).
    pub fn output_queued(&self) -> io::Result<usize> {
        let mut queued: libc::c_int = 0;
        // SAFETY: the fd is open (`self.port`), and TIOCOUTQ writes one c_int through the
        // pointer, which is valid for that.
        unsafe { tiocoutq(self.port.as_raw_fd(), &mut queued) }?;
        Ok(usize::try_from(queued).unwrap_or(0))
    }

    /// The counters so far.
    pub fn stats(&self) -> SerialStats {
        self.stats
    }
}

impl AsRawFd for SerialPort {
    fn as_raw_fd(&self) -> RawFd {
        self.port.as_raw_fd()
    }
}

/// serialport's `TTYPort` offers only `AsRawFd`.
impl AsFd for SerialPort {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the descriptor belongs to `self.port`, which keeps it open (it closes it
        // only when dropped) for as long as `self` is borrowed.
        unsafe { BorrowedFd::borrow_raw(self.port.as_raw_fd()) }
    }
}

/// The shortest interval between two frames of `frame_len` bytes on a `baud` line that keeps
/// heartbeats within `LINE_SHARE_PERCENT` of its capacity. Rounded up to whole milliseconds;
/// a baud rate of 0 (unknown) gives `Duration::MAX`.
pub fn min_interval_for(baud: u32, frame_len: usize) -> Duration {
    if baud == 0 {
        return Duration::MAX;
    }
    let bits = (frame_len as u64).saturating_mul(BITS_PER_BYTE);
    // bits / (baud * share) seconds, in ms, rounded up.
    let numerator = bits.saturating_mul(1000).saturating_mul(100);
    let denominator = u64::from(baud) * LINE_SHARE_PERCENT;
    Duration::from_millis(numerator.div_ceil(denominator))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacing_leaves_half_the_line() {
        // 128 bytes at 9600 baud: 1280 bits = 133.3 ms raw, so 267 ms at 50 %.
        assert_eq!(min_interval_for(9600, 128), Duration::from_millis(267));
        assert_eq!(min_interval_for(115_200, 100), Duration::from_millis(18));
        assert_eq!(min_interval_for(0, 100), Duration::MAX);
        assert_eq!(min_interval_for(9600, 0), Duration::ZERO);
    }
}
