//! The control socket protocol between `hapair <command>` and the running daemon.
//!
//! A Unix stream socket (mode 0600). The client connects, writes one request line, shuts down
//! its write half and reads the reply until EOF. Requests: `status`, `status json`,
//! `status prometheus`, `standby`, `online`, `takeover`, `maintenance on`, `maintenance off`,
//! `cleanup [RESOURCE]`. A reply's first line is `ok` or `error MESSAGE`; the rest is the body.
//!
//! A request line is at most `REQUEST_LEN_MAX` bytes; a reply at most `REPLY_LEN_MAX`.
//!
//! This file holds both sides: the client `request` (used by the CLI, blocking, with a
//! timeout) and the `ControlServer` the event loop polls. The server never blocks and has no
//! thread: a fixed number of client slots (`limits::CONTROL_CLIENTS_MAX`), each with a fixed
//! request buffer and a reply buffer allocated once at `bind`. It does not act on requests:
//! it hands parsed `Request`s to the loop and writes back what the loop replies.

use std::fmt;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a control request did not get an answer.
#[derive(Debug)]
pub enum ControlError {
    /// Nothing listens on the socket: the daemon is not running (exit code 3 for `status`).
    NotRunning(PathBuf),
    /// The daemon answered with an error line.
    Refused(String),
    /// The socket failed in the middle of the exchange.
    Io(PathBuf, std::io::Error),
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlError::NotRunning(p) => {
                write!(f, "hapair is not running (nothing answers on {})", p.display())
            }
            ControlError::Refused(msg) => write!(f, "the daemon refused the request: {msg}"),
            ControlError::Io(p, e) => write!(f, "{}: control socket: {e}", p.display()),
        }
    }
}

/// Sends one request line to the daemon and returns the body of an `ok` reply.
pub fn request(socket: &Path, line: &str) -> Result<String, ControlError> {
    let io = |e| ControlError::Io(socket.to_path_buf(), e);
    let mut stream = match UnixStream::connect(socket) {
        Ok(s) => s,
        Err(e) => {
            use std::io::ErrorKind::*;
            return match e.kind() {
                NotFound | ConnectionRefused => Err(ControlError::NotRunning(socket.into())),
                _ => Err(io(e)),
            };
        }
    };
    stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(io)?;
    stream.set_write_timeout(Some(Duration::from_secs(10))).map_err(io)?;
    stream.write_all(line.as_bytes()).map_err(io)?;
    stream.write_all(b"\n").map_err(io)?;
    stream.shutdown(std::net::Shutdown::Write).map_err(io)?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).map_err(io)?;
    let (head, body) = reply.split_once('\n').unwrap_or((reply.as_str(), ""));
    if head == "ok" {
        Ok(body.to_string())
    } else {
        let msg = head.strip_prefix("error ").unwrap_or(head);
        Err(ControlError::Refused(msg.to_string()))
    }
}

// ---- Server side -------------------------------------------------------------------------

use std::fs;
use std::io::ErrorKind;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;

use crate::core::time::{self, Instant};
use crate::limits::CONTROL_CLIENTS_MAX;
use crate::status::Name;

/// The longest request line, newline included.
pub const REQUEST_LEN_MAX: usize = 128;
/// The longest reply, status line included: room for a status JSON with every table full
/// of the longest, most escaped names (about 37 KiB).
pub const REPLY_LEN_MAX: usize = 64 * 1024;

/// How `status` is to be printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One screen for a person.
    Human,
    /// One JSON object (SPEC §5).
    Json,
    /// Prometheus text exposition.
    Prometheus,
}

/// One parsed control request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// `status`, `status json`, `status prometheus`.
    Status(Format),
    /// `standby`: hand the group to the peer and stay standby.
    Standby,
    /// `online`: leave standby.
    Online,
    /// `takeover`: ask the peer to hand the group over.
    Takeover,
    /// `maintenance on` (true) or `maintenance off` (false).
    Maintenance(bool),
    /// `cleanup [RESOURCE]`: forget failures of one resource, or all.
    Cleanup(Option<Name>),
}

/// Parses one request line (without or with its newline). The error is the message for the
/// `error` reply.
pub fn parse_request(line: &[u8]) -> Result<Request, &'static str> {
    let line = core::str::from_utf8(line).map_err(|_| "request is not UTF-8")?;
    let mut words = line.split_ascii_whitespace();
    let verb = words.next().ok_or("empty request")?;
    let arg = words.next();
    if words.next().is_some() {
        return Err("too many words in request");
    }
    let request = match (verb, arg) {
        ("status", None) => Request::Status(Format::Human),
        ("status", Some("json")) => Request::Status(Format::Json),
        ("status", Some("prometheus")) => Request::Status(Format::Prometheus),
        ("standby", None) => Request::Standby,
        ("online", None) => Request::Online,
        ("takeover", None) => Request::Takeover,
        ("maintenance", Some("on")) => Request::Maintenance(true),
        ("maintenance", Some("off")) => Request::Maintenance(false),
        ("cleanup", None) => Request::Cleanup(None),
        ("cleanup", Some(name)) => {
            Request::Cleanup(Some(Name::try_from(name).map_err(|_| "resource name too long")?))
        }
        _ => return Err("unknown request"),
    };
    Ok(request)
}

/// Why the control socket could not be set up.
#[derive(Debug)]
pub enum BindError {
    /// Another daemon answers on the socket.
    AlreadyRunning(PathBuf),
    /// Something that is not a socket sits at the path; it is left alone.
    NotASocket(PathBuf),
    /// A system call failed.
    Io(PathBuf, &'static str, std::io::Error),
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindError::AlreadyRunning(p) => {
                write!(f, "{}: another hapair daemon answers on this socket", p.display())
            }
            BindError::NotASocket(p) => {
                write!(f, "{}: exists and is not a socket; not touching it", p.display())
            }
            BindError::Io(p, step, e) => write!(f, "{}: control socket {step}: {e}", p.display()),
        }
    }
}

impl std::error::Error for BindError {}

/// A connected client: its slot and the slot's generation, so that a reply meant for a client
/// that went away never reaches the next one in the same slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientId {
    slot: usize,
    generation: u64,
}

/// What the loop should poll a control fd for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interest {
    /// POLLIN.
    Read,
    /// POLLOUT.
    Write,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Reading the request line.
    Reading,
    /// The request went to the loop; waiting for its reply.
    Awaiting,
    /// Writing the reply; closed when it is all out.
    Writing,
}

struct Client {
    stream: UnixStream,
    generation: u64,
    phase: Phase,
    request: [u8; REQUEST_LEN_MAX],
    request_len: usize,
    written: usize,
    /// Dropped at this time unless `Awaiting`.
    deadline: Instant,
}

/// The daemon's end of the control socket. See the module doc for the protocol.
pub struct ControlServer {
    listener: UnixListener,
    path: PathBuf,
    inode: (u64, u64),
    clients: [Option<Client>; CONTROL_CLIENTS_MAX],
    /// One reply buffer per slot, allocated at bind with `REPLY_LEN_MAX` capacity.
    replies: [Vec<u8>; CONTROL_CLIENTS_MAX],
    next_generation: u64,
    client_timeout: time::Duration,
}

impl ControlServer {
    /// Binds the socket at `path` (mode 0600), creating its directory. A socket file left by
    /// a dead daemon is removed; one that answers means another daemon runs, and nothing is
    /// touched. A client that is not served within `client_timeout` is dropped.
    pub fn bind(path: &Path, client_timeout: time::Duration) -> Result<ControlServer, BindError> {
        let io = |step| move |e| BindError::Io(path.to_path_buf(), step, e);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(dir)
                .map_err(io("create directory"))?;
        }
        remove_stale(path)?;
        let listener = listen_private(path).map_err(io("bind"))?;
        // Belt and braces: listen_private already created it 0600 (less the umask).
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(io("chmod"))?;
        let meta = fs::metadata(path).map_err(io("stat"))?;
        Ok(ControlServer {
            listener,
            path: path.to_path_buf(),
            inode: (meta.dev(), meta.ino()),
            clients: core::array::from_fn(|_| None),
            replies: core::array::from_fn(|_| Vec::with_capacity(REPLY_LEN_MAX)),
            next_generation: 1,
            client_timeout,
        })
    }

    /// The fds to poll and what for: the listener while a slot is free, each client while it
    /// is being read or written.
    pub fn fds(&self) -> impl Iterator<Item = (RawFd, Interest)> + '_ {
        let listener = self.clients.iter().any(Option::is_none).then_some(());
        let listener = listener.map(|()| (self.listener.as_raw_fd(), Interest::Read));
        let clients = self.clients.iter().flatten().filter_map(|c| match c.phase {
            Phase::Reading => Some((c.stream.as_raw_fd(), Interest::Read)),
            Phase::Writing => Some((c.stream.as_raw_fd(), Interest::Write)),
            Phase::Awaiting => None,
        });
        listener.into_iter().chain(clients)
    }

    /// When a client next times out, `None` with none waiting on us.
    pub fn next_deadline(&self) -> Option<Instant> {
        let waiting = self.clients.iter().flatten().filter(|c| c.phase != Phase::Awaiting);
        waiting.map(|c| c.deadline).min()
    }

    /// Does all the socket work that can be done now (drop timed-out clients, write pending
    /// replies, accept, read) and returns the next complete request. Call until `None`.
    /// Bad requests are answered with an error here and never returned.
    pub fn poll_requests(&mut self, now: Instant) -> Option<(ClientId, Request)> {
        for slot in 0..CONTROL_CLIENTS_MAX {
            let expired = self.clients[slot]
                .as_ref()
                .is_some_and(|c| c.phase != Phase::Awaiting && now >= c.deadline);
            if expired {
                log::warn!("control client timed out; dropped");
                self.clients[slot] = None;
            }
            self.write_out(slot);
        }
        self.accept(now);
        for slot in 0..CONTROL_CLIENTS_MAX {
            if let Some(request) = self.read_request(slot, now) {
                return Some(request);
            }
        }
        None
    }

    /// Answers `client`: `ok` and `body`, or `error BODY` (a one-line message). A reply that
    /// does not fit `REPLY_LEN_MAX` becomes an error. A stale `client` is ignored.
    pub fn reply(&mut self, client: ClientId, ok: bool, body: &[u8]) {
        self.reply_with(client, ok, |w| {
            let text = core::str::from_utf8(body).map_err(|_| fmt::Error)?;
            w.write_str(text)
        });
    }

    /// Like `reply`, with the body written by `render` straight into the client's buffer (no
    /// intermediate copy), e.g. a status renderer.
    pub fn reply_with<F>(&mut self, client: ClientId, ok: bool, render: F)
    where
        F: FnOnce(&mut dyn fmt::Write) -> fmt::Result,
    {
        let Some(c) = self.clients[client.slot].as_mut() else { return };
        if c.generation != client.generation || c.phase != Phase::Awaiting {
            return;
        }
        let buf = &mut self.replies[client.slot];
        buf.clear();
        let mut w = Bounded(buf);
        let head = if ok { "ok\n" } else { "error " };
        let mut result = fmt::Write::write_str(&mut w, head).and_then(|()| render(&mut w));
        if !ok {
            result = result.and_then(|()| fmt::Write::write_str(&mut w, "\n"));
        }
        if result.is_err() {
            buf.clear();
            buf.extend_from_slice(b"error reply too long or not text\n");
        }
        c.phase = Phase::Writing;
        c.written = 0;
        self.write_out(client.slot);
    }

    /// Clients connected now.
    pub fn client_count(&self) -> usize {
        self.clients.iter().flatten().count()
    }

    fn accept(&mut self, now: Instant) {
        while let Some(slot) = self.clients.iter().position(Option::is_none) {
            let stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => return log::warn!("control socket accept: {e}"),
            };
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            self.clients[slot] = Some(Client {
                stream,
                generation: self.next_generation,
                phase: Phase::Reading,
                request: [0; REQUEST_LEN_MAX],
                request_len: 0,
                written: 0,
                deadline: now + self.client_timeout,
            });
            self.next_generation += 1;
        }
    }

    /// Reads what slot's client sent; a complete line is parsed and returned, or answered
    /// with an error.
    fn read_request(&mut self, slot: usize, now: Instant) -> Option<(ClientId, Request)> {
        let c = self.clients[slot].as_mut().filter(|c| c.phase == Phase::Reading)?;
        let eof = loop {
            if c.request_len == REQUEST_LEN_MAX {
                break false;
            }
            match (&c.stream).read(&mut c.request[c.request_len..]) {
                Ok(0) => break true,
                Ok(n) => c.request_len += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
                Err(_) => {
                    self.clients[slot] = None;
                    return None;
                }
            }
            if c.request[..c.request_len].contains(&b'\n') {
                break false;
            }
        };
        let filled = &c.request[..c.request_len];
        let line = match filled.iter().position(|&b| b == b'\n') {
            Some(end) => &filled[..end],
            None if eof && filled.is_empty() => {
                self.clients[slot] = None; // a probe: connected and left
                return None;
            }
            None if eof => filled,
            None if c.request_len == REQUEST_LEN_MAX => return self.refuse(slot, now, "too long"),
            None => return None,
        };
        let id = ClientId { slot, generation: c.generation };
        match parse_request(line) {
            Ok(request) => {
                c.phase = Phase::Awaiting;
                Some((id, request))
            }
            Err(msg) => self.refuse(slot, now, msg),
        }
    }

    fn refuse(&mut self, slot: usize, now: Instant, msg: &str) -> Option<(ClientId, Request)> {
        if let Some(c) = self.clients[slot].as_mut() {
            let id = ClientId { slot, generation: c.generation };
            c.phase = Phase::Awaiting;
            c.deadline = now + self.client_timeout;
            self.reply(id, false, msg.as_bytes());
        }
        None
    }

    /// Writes what the slot's reply has left; closes the client when it is all out or the
    /// client is gone.
    fn write_out(&mut self, slot: usize) {
        let Some(c) = self.clients[slot].as_mut().filter(|c| c.phase == Phase::Writing) else {
            return;
        };
        let buf = &self.replies[slot];
        while c.written < buf.len() {
            match (&c.stream).write(&buf[c.written..]) {
                Ok(n) => c.written += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => break,
            }
        }
        // Swallow unread input so that closing does not reset the connection under a client
        // that is still reading our reply.
        let mut sink = [0u8; 64];
        while matches!((&c.stream).read(&mut sink), Ok(n) if n > 0) {}
        self.clients[slot] = None;
    }
}

impl AsRawFd for ControlServer {
    /// The listening socket.
    fn as_raw_fd(&self) -> RawFd {
        self.listener.as_raw_fd()
    }
}

impl Drop for ControlServer {
    /// Removes the socket file, if it is still ours.
    fn drop(&mut self) {
        let ours = fs::metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.inode);
        if ours {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// A non-blocking listening socket at `path` whose file is born mode 0600: Linux gives the
/// socket file the mode of the socket's inode, so it is set before `bind` and no other user
/// can ever connect in between.
fn listen_private(path: &Path) -> std::io::Result<UnixListener> {
    use nix::sys::socket::{AddressFamily, Backlog, SockFlag, SockType, UnixAddr};
    let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
    let fd = nix::sys::socket::socket(AddressFamily::Unix, SockType::Stream, flags, None)?;
    nix::sys::stat::fchmod(&fd, nix::sys::stat::Mode::from_bits_truncate(0o600))?;
    nix::sys::socket::bind(fd.as_raw_fd(), &UnixAddr::new(path)?)?;
    let backlog = Backlog::new(CONTROL_CLIENTS_MAX as i32 * 2)?;
    nix::sys::socket::listen(&fd, backlog)?;
    Ok(UnixListener::from(fd))
}

/// Removes a socket file nobody answers on; refuses when someone does.
fn remove_stale(path: &Path) -> Result<(), BindError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(BindError::Io(path.to_path_buf(), "stat", e)),
    };
    if !meta.file_type().is_socket() {
        return Err(BindError::NotASocket(path.to_path_buf()));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(BindError::AlreadyRunning(path.to_path_buf())),
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => fs::remove_file(path)
            .map_err(|e| BindError::Io(path.to_path_buf(), "remove stale socket", e)),
        Err(e) => Err(BindError::Io(path.to_path_buf(), "probe", e)),
    }
}

/// A `fmt::Write` into a Vec that refuses to grow past its capacity.
struct Bounded<'a>(&'a mut Vec<u8>);

impl fmt::Write for Bounded<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.0.len() + s.len() > self.0.capacity() {
            return Err(fmt::Error);
        }
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_request() {
        assert_eq!(parse_request(b"status\n"), Ok(Request::Status(Format::Human)));
        assert_eq!(parse_request(b"status json"), Ok(Request::Status(Format::Json)));
        let prom = parse_request(b" status  prometheus \n");
        assert_eq!(prom, Ok(Request::Status(Format::Prometheus)));
        assert_eq!(parse_request(b"standby"), Ok(Request::Standby));
        assert_eq!(parse_request(b"online"), Ok(Request::Online));
        assert_eq!(parse_request(b"takeover"), Ok(Request::Takeover));
        assert_eq!(parse_request(b"maintenance on"), Ok(Request::Maintenance(true)));
        assert_eq!(parse_request(b"maintenance off"), Ok(Request::Maintenance(false)));
        assert_eq!(parse_request(b"cleanup"), Ok(Request::Cleanup(None)));
        let web = Name::try_from("web").unwrap();
        assert_eq!(parse_request(b"cleanup web\n"), Ok(Request::Cleanup(Some(web))));
    }

    #[test]
    fn refuses_bad_requests() {
        for bad in [&b""[..], b"\n", b"status xml", b"maintenance", b"standby now", b"\xff"] {
            assert!(parse_request(bad).is_err(), "{bad:?}");
        }
        let long = [b'x'; 100];
        let mut line = b"cleanup ".to_vec();
        line.extend_from_slice(&long);
        assert_eq!(parse_request(&line), Err("resource name too long"));
    }
}
