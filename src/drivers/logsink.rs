//! Where the log goes: the daemon's stderr, written so that the loop never waits on it.
//!
//! The init script pipes the daemon's stderr into `logger` (scripts/hapair.init), and systemd
//! hands it a stream socket to the journal. A syslog that stalls would fill that pipe or
//! socket, and a plain write(2) would then stop the loop, and the heartbeats with it, until
//! syslog recovers: the peer would take over from a healthy node (heartbeat runs a separate
//! logging daemon, ha_logd, against the same failure). So a record never waits:
//! - to a socket it goes with `sendmsg(MSG_DONTWAIT)`;
//! - to a pipe, a terminal or any other device it goes through a second, non-blocking open
//!   of the same file (`/proc/self/fd/N` with `O_NONBLOCK`; the shared descriptor keeps its
//!   own flags, so whoever else writes to it is not affected);
//! - a regular file is written plainly (the page cache takes a line; a log on a disk that
//!   stalls is the operator's choice, and nothing non-blocking exists for it on every
//!   kernel).
//!
//! Each record goes out in one call, so on a pipe a record of up to PIPE_BUF bytes is written
//! whole or not at all. A record that finds no room is dropped and counted, one cut short
//! (a nearly full socket, a record over PIPE_BUF) is counted too and its line ended; the first
//! record that gets through afterwards is preceded, in the same call, by a line that says
//! how many were lost.

use std::fmt::Write as _;
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::socket::{MsgFlags, sendmsg};
use nix::sys::stat::Mode;

/// Records dropped or cut short by every sink of this process (SIGUSR1 stats print it).
static DROPPED_TOTAL: AtomicU64 = AtomicU64::new(0);

/// Log records dropped or cut short so far because the log output had no room.
pub fn dropped_total() -> u64 {
    DROPPED_TOTAL.load(Ordering::Relaxed)
}

/// How records reach the output `F`.
#[derive(Debug)]
enum Out<F> {
    /// A regular file, or a descriptor that could not be reopened: write(2), which may wait.
    Plain(F),
    /// A non-blocking open of the same pipe or device.
    Reopened(OwnedFd),
    /// A socket: sendmsg with MSG_DONTWAIT.
    Socket(F),
}

/// An `io::Write` for env_logger's `Target::Pipe` that writes to a file descriptor: the
/// process's stderr (`stderr`), or any other (`new`).
#[derive(Debug)]
pub struct LogSink<F: AsFd = io::Stderr> {
    out: Out<F>,
    /// Records dropped or cut short since the last one that got through.
    dropped: u64,
    /// The output ends inside a line (a record was cut short): the next one starts a new line.
    mid_line: bool,
}

impl LogSink {
    /// The process's stderr.
    pub fn stderr() -> Self {
        Self::new(io::stderr())
    }
}

impl<F: AsFd> LogSink<F> {
    /// Writes to `fd`. A pipe or a device is written through a second open of it, and `fd`
    /// itself is then dropped (closed if `F` owns it).
    pub fn new(fd: F) -> Self {
        let out = match file_kind(fd.as_fd()) {
            Some(libc::S_IFREG) | None => Out::Plain(fd),
            Some(libc::S_IFSOCK) => Out::Socket(fd),
            Some(_) => reopen_nonblocking(fd.as_fd()).map_or(Out::Plain(fd), Out::Reopened),
        };
        Self { out, dropped: 0, mid_line: false }
    }

    /// Whether records may be dropped rather than waited for.
    pub fn nonblocking(&self) -> bool {
        !matches!(self.out, Out::Plain(_))
    }

    /// Records dropped or cut short since the last one that got through.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn lost_one(&mut self) {
        self.dropped += 1;
        DROPPED_TOTAL.fetch_add(1, Ordering::Relaxed);
    }
}

impl<F: AsFd> io::Write for LogSink<F> {
    /// Takes the whole record, always (`Ok(buf.len())`), so that env_logger's `write_all`
    /// never comes back to wait; the only error is the output's own (a closed reader).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Out::Plain(fd) = &self.out {
            return write_plain(fd.as_fd(), buf);
        }
        let mut prefix = heapless::String::<128>::new();
        if self.mid_line {
            let _ = prefix.push('\n');
        }
        if self.dropped > 0 {
            // INVARIANT: at most 1 + 90 bytes (u64::MAX has 20 digits) of the 128 reserved.
            let _ = writeln!(
                prefix,
                "[WARN  hapair] {} log records dropped or cut short: the log output had no room",
                self.dropped
            );
        }
        let parts = [prefix.as_bytes(), buf];
        let result = match &self.out {
            Out::Reopened(fd) => writev(fd.as_fd(), &parts),
            Out::Socket(fd) => send_dontwait(fd.as_fd(), &parts),
            Out::Plain(_) => unreachable!("handled above"),
        };
        match result {
            Ok(n) if n == prefix.len() + buf.len() => {
                self.dropped = 0;
                self.mid_line = buf.last().is_some_and(|&b| b != b'\n');
            }
            Ok(n) => {
                // Cut short: what got through stands, the rest of the record is lost.
                if n >= prefix.len() {
                    self.dropped = 0;
                }
                self.mid_line = true;
                self.lost_one();
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.lost_one(),
            Err(e) => return Err(e),
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The file type bits of `fd` (`S_IFREG`, `S_IFIFO`, ...), or `None` when fstat fails.
fn file_kind(fd: BorrowedFd<'_>) -> Option<libc::mode_t> {
    nix::sys::stat::fstat(fd).ok().map(|st| st.st_mode & libc::S_IFMT)
}

/// A second, non-blocking, close-on-exec open of what `fd` refers to.
fn reopen_nonblocking(fd: BorrowedFd<'_>) -> Option<OwnedFd> {
    let mut path = heapless::String::<32>::new();
    write!(path, "/proc/self/fd/{}", fd.as_raw_fd()).ok()?;
    let flags = OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOCTTY;
    nix::fcntl::open(path.as_str(), flags, Mode::empty()).ok()
}

/// One writev(2) of both parts; EINTR retried.
fn writev(fd: BorrowedFd<'_>, parts: &[&[u8]; 2]) -> io::Result<usize> {
    let iov = parts.map(IoSlice::new);
    retry(|| nix::sys::uio::writev(fd, &iov))
}

/// One sendmsg(2) of both parts without waiting (and without SIGPIPE); EINTR retried.
/// (nix's `sendmsg` allocates a buffer for control messages only: there are none here.)
fn send_dontwait(fd: BorrowedFd<'_>, parts: &[&[u8]; 2]) -> io::Result<usize> {
    let iov = parts.map(IoSlice::new);
    let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
    retry(|| sendmsg::<()>(fd.as_raw_fd(), &iov, &[], flags, None))
}

fn write_plain(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    retry(|| nix::unistd::write(fd, buf))
}

/// `call` until it is not interrupted (EINTR); its byte count or its error.
fn retry(mut call: impl FnMut() -> nix::Result<usize>) -> io::Result<usize> {
    loop {
        match call() {
            Err(Errno::EINTR) => {}
            result => return result.map_err(io::Error::from),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::fcntl::OFlag;
    use std::io::{Read, Write};
    use std::sync::mpsc;
    use std::time::Duration;

    const NOTICE_1: &str =
        "[WARN  hapair] 1 log records dropped or cut short: the log output had no room\n";

    /// Fills the pipe or socket behind `fd` until a non-blocking write finds no room.
    fn fill(fd: BorrowedFd<'_>) -> usize {
        let chunk = [b'x'; 4096];
        let mut total = 0;
        if file_kind(fd) == Some(libc::S_IFSOCK) {
            while let Ok(n) = send_dontwait(fd, &[&chunk, &[]]) {
                total += n;
            }
        } else {
            let own = reopen_nonblocking(fd).expect("reopen");
            while let Ok(n) = writev(own.as_fd(), &[&chunk, &[]]) {
                total += n;
            }
        }
        total
    }

    /// `sink.write_all(record)` on a thread, which must return within 10 s (a plain write to
    /// a full pipe would wait for ever); gives the sink back.
    fn write_without_waiting(
        mut sink: LogSink<OwnedFd>,
        record: &'static [u8],
    ) -> LogSink<OwnedFd> {
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::spawn(move || {
            let r = sink.write_all(record);
            let _ = tx.send(());
            (sink, r)
        });
        rx.recv_timeout(Duration::from_secs(10)).expect("the write returned without waiting");
        let (sink, result) = handle.join().expect("writer thread");
        result.expect("a dropped record is not an error");
        sink
    }

    /// Reads `n` bytes from the pipe, writes `record`, closes every writer and returns
    /// what follows those `n` bytes.
    fn drain_write_and_read_rest(
        reader: OwnedFd,
        n: usize,
        mut sink: LogSink<OwnedFd>,
        writer: OwnedFd,
        record: &[u8],
    ) -> (Vec<u8>, String) {
        let mut reader = std::fs::File::from(reader);
        let mut drained = vec![0; n];
        reader.read_exact(&mut drained).expect("drain");
        sink.write_all(record).expect("write");
        assert_eq!(sink.dropped(), 0, "the notice got through");
        drop((sink, writer));
        let mut rest = String::new();
        reader.read_to_string(&mut rest).expect("read");
        (drained, rest)
    }

    #[test]
    fn a_full_pipe_drops_the_record_at_once_and_the_next_one_says_so() {
        let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).expect("pipe");
        let mut sink = LogSink::new(w.try_clone().expect("dup"));
        assert!(sink.nonblocking());
        sink.write_all(b"first\n").expect("write");
        let filled = fill(w.as_fd()) + 6;
        let sink = write_without_waiting(sink, b"lost\n");
        assert_eq!(sink.dropped(), 1);
        assert!(dropped_total() >= 1);
        let (drained, rest) = drain_write_and_read_rest(r, filled, sink, w, b"after\n");
        assert!(drained.starts_with(b"first\n"));
        assert_eq!(rest, format!("{NOTICE_1}after\n"));
    }

    #[test]
    fn a_record_cut_short_ends_its_line_and_is_counted() {
        let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).expect("pipe");
        nix::fcntl::fcntl(&w, nix::fcntl::FcntlArg::F_SETPIPE_SZ(4096)).expect("pipe size");
        let mut sink = LogSink::new(w.try_clone().expect("dup"));
        // Over PIPE_BUF into a one-page pipe: the first page goes, the rest cannot.
        static LONG: [u8; 6000] = [b'y'; 6000];
        sink.write_all(&LONG).expect("write");
        assert_eq!(sink.dropped(), 1);
        let (page, rest) = drain_write_and_read_rest(r, 4096, sink, w, b"next\n");
        assert!(page.iter().all(|&b| b == b'y'));
        assert_eq!(rest, format!("\n{NOTICE_1}next\n"));
    }

    #[test]
    fn a_full_stream_socket_drops_too() {
        // systemd hands the daemon a stream socket to the journal as stderr.
        use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
        let (ours, _journal) =
            socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC)
                .expect("socketpair");
        let sink = LogSink::new(ours.try_clone().expect("dup"));
        assert!(sink.nonblocking());
        fill(ours.as_fd());
        let sink = write_without_waiting(sink, b"lost\n");
        assert_eq!(sink.dropped(), 1);
    }

    #[test]
    fn a_regular_file_is_written_plainly_and_dev_null_takes_everything() {
        let dir = crate::testutil::TempDir::new("logsink");
        let path = dir.path().join("log");
        let file = std::fs::File::create(&path).expect("create");
        let mut sink = LogSink::new(&file);
        assert!(!sink.nonblocking());
        sink.write_all(b"one\ntwo\n").expect("write");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "one\ntwo\n");

        let null = std::fs::OpenOptions::new().write(true).open("/dev/null").expect("null");
        let mut sink = LogSink::new(&null);
        assert!(sink.nonblocking(), "a device is reopened non-blocking");
        sink.write_all(b"gone\n").expect("write");
        assert_eq!(sink.dropped(), 0);
    }

    #[test]
    fn a_closed_reader_is_an_error_not_a_drop() {
        let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).expect("pipe");
        let mut sink = LogSink::new(w.try_clone().expect("dup"));
        drop(r);
        // Rust ignores SIGPIPE: the write fails with EPIPE.
        assert!(sink.write_all(b"x\n").is_err());
        assert_eq!(sink.dropped(), 0);
    }
}
