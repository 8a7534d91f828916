//! Where the log goes: the daemon's stderr, written so that the loop never waits on it.
//!
//! The init script pipes the daemon's stderr into `logger` (scripts/hapair.init). A syslog
//! that stalls would fill that pipe, and a plain write(2) would then stop the loop, and the
//! heartbeats with it, until syslog recovers: the peer would take over from a healthy node
//! (heartbeat runs a separate logging daemon, ha_logd, against the same failure). So when
//! stderr is a pipe or a socket, each log record goes out in one `pwritev2(RWF_NOWAIT)`: on
//! a pipe a record of up to PIPE_BUF bytes is written whole or not at all. A record that
//! finds no room is dropped and counted, and the first record that gets through afterwards
//! is preceded by a line that says how many were lost. A regular file, a terminal or
//! /dev/null is written plainly: RWF_NOWAIT on a buffered file write fails on filesystems
//! that cannot do it, or whenever the page is not cached, which would lose lines for
//! nothing.

use std::fmt::Write as _;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};

/// Records dropped by every sink of this process (SIGUSR1 stats print it).
static DROPPED_TOTAL: AtomicU64 = AtomicU64::new(0);

/// Log records dropped so far because the log output had no room.
pub fn dropped_total() -> u64 {
    DROPPED_TOTAL.load(Ordering::Relaxed)
}

/// An `io::Write` for env_logger's `Target::Pipe` that writes to a file descriptor.
#[derive(Debug)]
pub struct LogSink {
    fd: RawFd,
    nowait: bool,
    /// Records dropped since the last one that got through.
    dropped: u64,
}

impl LogSink {
    /// The process's stderr.
    pub fn stderr() -> Self {
        Self::new(libc::STDERR_FILENO)
    }

    /// Writes to `fd`, which must stay open as long as the sink lives (it is not closed).
    pub fn new(fd: RawFd) -> Self {
        Self { fd, nowait: is_pipe_or_socket(fd), dropped: 0 }
    }

    /// Whether records may be dropped rather than waited for (stderr is a pipe or socket).
    pub fn nonblocking(&self) -> bool {
        self.nowait
    }

    /// Records dropped since the last one that got through.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn drop_record(&mut self) {
        self.dropped += 1;
        DROPPED_TOTAL.fetch_add(1, Ordering::Relaxed);
    }
}

impl io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.nowait {
            return write_plain(self.fd, buf);
        }
        if self.dropped > 0 {
            let mut notice = heapless::String::<96>::new();
            // INVARIANT: the text is at most 80 bytes, well within the 96 reserved.
            let _ = writeln!(
                notice,
                "[WARN  hapair] {} log records dropped: the log output had no room",
                self.dropped
            );
            match write_nowait(self.fd, notice.as_bytes()) {
                Ok(n) if n == notice.len() => self.dropped = 0,
                Ok(_) => self.dropped = 0, // a socket took part of it: the rest is lost
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.drop_record();
                    return Ok(buf.len());
                }
                Err(e) => return self.fallback(e, buf),
            }
        }
        match write_nowait(self.fd, buf) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // Claimed written: env_logger's write_all must not retry (and wait).
                self.drop_record();
                Ok(buf.len())
            }
            Err(e) => self.fallback(e, buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl LogSink {
    /// RWF_NOWAIT refused (an old kernel, or a descriptor without it): plain writes from now.
    fn fallback(&mut self, e: io::Error, buf: &[u8]) -> io::Result<usize> {
        if e.raw_os_error() == Some(libc::EOPNOTSUPP) || e.raw_os_error() == Some(libc::ENOSYS) {
            self.nowait = false;
            return write_plain(self.fd, buf);
        }
        Err(e)
    }
}

fn is_pipe_or_socket(fd: RawFd) -> bool {
    match nix::sys::stat::fstat(fd_ref(fd)) {
        Ok(st) => {
            let kind = st.st_mode & libc::S_IFMT;
            kind == libc::S_IFIFO || kind == libc::S_IFSOCK
        }
        Err(_) => false,
    }
}

fn fd_ref(fd: RawFd) -> std::os::fd::BorrowedFd<'static> {
    // SAFETY: the sink's contract (`LogSink::new`) keeps `fd` open while it is used; fstat
    // only reads it.
    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
}

fn write_nowait(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    let iov = libc::iovec { iov_base: buf.as_ptr().cast_mut().cast(), iov_len: buf.len() };
    loop {
        // SAFETY: one iovec over `buf`, which outlives the call; offset -1 = the file position
        // (required for pipes and sockets).
        let n = unsafe { libc::pwritev2(fd, &iov, 1, -1, libc::RWF_NOWAIT) };
        if n >= 0 {
            // INVARIANT: n <= buf.len(), non-negative.
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn write_plain(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    loop {
        match nix::unistd::write(fd_ref(fd), buf) {
            Ok(n) => return Ok(n),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(io::Error::from(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    use std::sync::mpsc;
    use std::time::Duration;

    /// Fills the pipe behind `w` until a non-blocking write finds no room.
    fn fill(w: RawFd) -> usize {
        let chunk = [b'x'; 4096];
        let mut total = 0;
        while let Ok(n) = write_nowait(w, &chunk) {
            total += n;
        }
        total
    }

    #[test]
    fn a_full_pipe_drops_the_record_at_once_and_the_next_one_says_so() {
        let (r, w) = nix::unistd::pipe().expect("pipe");
        let mut sink = LogSink::new(w.as_raw_fd());
        assert!(sink.nonblocking());
        sink.write_all(b"first\n").expect("write");
        let filled = fill(w.as_raw_fd()) + 6;

        // Would block for ever with a plain write: run it on a thread and give it 10 s.
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::spawn(move || {
            let r = sink.write_all(b"lost\n");
            let _ = tx.send(());
            (sink, r)
        });
        rx.recv_timeout(Duration::from_secs(10)).expect("the write returned without waiting");
        let (mut sink, result) = handle.join().expect("writer thread");
        result.expect("a dropped record is not an error");
        assert_eq!(sink.dropped(), 1);
        assert!(dropped_total() >= 1);

        let mut reader = std::fs::File::from(r);
        let mut drained = vec![0; filled];
        reader.read_exact(&mut drained).expect("drain");
        assert!(drained.starts_with(b"first\n"));
        sink.write_all(b"after\n").expect("write");
        drop(w);
        let mut rest = String::new();
        reader.read_to_string(&mut rest).expect("read");
        assert_eq!(
            rest,
            "[WARN  hapair] 1 log records dropped: the log output had no room\nafter\n"
        );
        assert_eq!(sink.dropped(), 0);
    }

    #[test]
    fn a_full_stream_socket_drops_too() {
        // systemd hands the daemon a stream socket to the journal as stderr.
        use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
        let (ours, _journal) =
            socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::empty())
                .expect("socketpair");
        let mut sink = LogSink::new(ours.as_raw_fd());
        assert!(sink.nonblocking());
        fill(ours.as_raw_fd());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let r = sink.write_all(b"lost\n").map(|()| sink.dropped());
            let _ = tx.send(r);
        });
        let r = rx.recv_timeout(Duration::from_secs(10)).expect("the write returned at once");
        assert_eq!(r.expect("not an error"), 1);
    }

    #[test]
    fn a_regular_file_is_written_plainly() {
        let dir = crate::testutil::TempDir::new("logsink");
        let path = dir.path().join("log");
        let file = std::fs::File::create(&path).expect("create");
        let mut sink = LogSink::new(file.as_raw_fd());
        assert!(!sink.nonblocking());
        sink.write_all(b"one\ntwo\n").expect("write");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "one\ntwo\n");
    }

    #[test]
    fn a_closed_reader_is_an_error_not_a_drop() {
        let (r, w) = nix::unistd::pipe().expect("pipe");
        drop(r);
        let mut sink = LogSink::new(w.as_raw_fd());
        // Rust ignores SIGPIPE: the write fails with EPIPE.
        assert!(sink.write_all(b"x\n").is_err());
        assert_eq!(sink.dropped(), 0);
    }
}
