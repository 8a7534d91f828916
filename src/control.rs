//! The control socket protocol between `hapair <command>` and the running daemon.
//!
//! A Unix stream socket, mode 0600 (root only), or 0660 with the group of `control_group`
//! (`ControlServer::admit_group`). The client connects, writes one request line, shuts down
//! its write half and reads the reply until EOF. Requests: `status`, `status json`,
//! `status prometheus`, `standby`, `online`, `takeover`, `takeover force`, `maintenance on`,
//! `maintenance off`,
//! `cleanup [RESOURCE]`. A reply's first line is `ok` or `error MESSAGE`; the rest is the body.
//!
//! Who may ask what (SPEC §7.3): the server reads each client's uid from the kernel
//! (SO_PEERCRED) when it accepts it. Every request but `status` changes state and needs uid 0;
//! anyone else gets `error permission denied: ...` and the request never reaches the loop.
//! A user who may not connect at all (mode 0600, or not in the group) gets EACCES from
//! connect(2): the client reports `permission denied` too (`ControlError::PermissionDenied`).
//!
//! Clients cannot hold the loop. A request line is at most `REQUEST_LEN_MAX` bytes (longer is
//! answered `error ... too long`); a reply at most `REPLY_LEN_MAX`. Each client has
//! `client_timeout` from its connect to the last byte of its reply, or it is dropped (a slow
//! writer, or one that never reads a reply the socket cannot take). After the request, at
//! most `DRAIN_LEN_MAX` more bytes are read and thrown away before the connection is closed,
//! so a client that writes without end is cut off. At most `limits::CONTROL_CLIENTS_MAX`
//! clients are served at once: when every slot is taken, root takes the slot of the oldest
//! non-root client (members cannot lock root out), and anyone else is answered
//! `error busy: ...` and closed at once; the client tries again for a while.
//!
//! This file holds both sides: the client `request` (used by the CLI, blocking, with a
//! timeout) and the `ControlServer` the event loop polls. The server never blocks and has no
//! thread: a fixed number of client slots, each with a fixed request buffer and a reply buffer
//! allocated once at `bind`, and a bounded amount of work per wake (`poll_io`: at most
//! `CONTROL_CLIENTS_MAX` accepts, one bounded read per client). It does not act on requests:
//! it hands permitted, parsed `Request`s to the loop and writes back what the loop replies.
//! In fuzz and test builds only, `fuzz` holds the property checks of the request decoder.

#[cfg(any(fuzzing, feature = "sim"))]
pub mod fuzz;

use std::fmt;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long the client waits for the daemon to take its request and to answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often, and how long apart, the client tries again when the daemon is busy (every slot
/// taken): up to 10 s in all, twice the daemon's own per-client timeout.
const BUSY_RETRIES: u32 = 100;
const BUSY_RETRY_INTERVAL: Duration = Duration::from_millis(100);

/// Why a control request did not get an answer.
#[derive(Debug)]
pub enum ControlError {
    /// Nothing listens on the socket: the daemon is not running (exit code 3 for `status`).
    NotRunning(PathBuf),
    /// This user may not connect to the socket (it is root's, or its group's).
    PermissionDenied(PathBuf),
    /// The daemon answered with an error line (`permission denied: ...`, `busy: ...`, ...).
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
            ControlError::PermissionDenied(p) => write!(
                f,
                "permission denied: cannot connect to {} (root may; with control_group, the \
                 group's members may ask for status)",
                p.display()
            ),
            ControlError::Refused(msg) => write!(f, "the daemon refused the request: {msg}"),
            ControlError::Io(p, e) => write!(f, "{}: control socket: {e}", p.display()),
        }
    }
}

/// Sends one request line to the daemon and returns the body of an `ok` reply. While the
/// daemon answers `busy`, tries again (for up to about 10 s).
pub fn request(socket: &Path, line: &str) -> Result<String, ControlError> {
    let mut retries = 0;
    loop {
        match exchange(socket, line) {
            Err(ControlError::Refused(msg)) if msg.starts_with(BUSY) && retries < BUSY_RETRIES => {
                retries += 1;
                std::thread::sleep(BUSY_RETRY_INTERVAL);
            }
            other => return other,
        }
    }
}

/// Like `request`, for a request the daemon answers only when something else happened (the
/// peer's answer to `outdate-peer`): waits up to `timeout` for the reply.
pub fn request_waiting(
    socket: &Path,
    line: &str,
    timeout: Duration,
) -> Result<String, ControlError> {
    exchange_within(socket, line, timeout)
}

/// One connection: the request, then the reply.
fn exchange(socket: &Path, line: &str) -> Result<String, ControlError> {
    exchange_within(socket, line, CLIENT_TIMEOUT)
}

fn exchange_within(socket: &Path, line: &str, timeout: Duration) -> Result<String, ControlError> {
    let io = |e| ControlError::Io(socket.to_path_buf(), e);
    let mut stream = match UnixStream::connect(socket) {
        Ok(s) => s,
        Err(e) => {
            use std::io::ErrorKind::*;
            return match e.kind() {
                NotFound | ConnectionRefused => Err(ControlError::NotRunning(socket.into())),
                PermissionDenied => Err(ControlError::PermissionDenied(socket.into())),
                _ => Err(io(e)),
            };
        }
    };
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT)).map_err(io)?;
    let mut request = Vec::with_capacity(line.len() + 1);
    request.extend_from_slice(line.as_bytes());
    request.push(b'\n');
    // The daemon may answer and close before it has read all of this (busy, too long): what
    // it said is still there to read, so a failed write is reported only without a reply.
    let written = stream.write_all(&request);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut reply = Vec::new();
    let read = read_reply(&mut stream, &mut reply);
    let complete = read.is_ok() || reply.starts_with(b"error ") && reply.contains(&b'\n');
    if !complete || reply.is_empty() {
        written.map_err(io)?;
        read.map_err(io)?;
        let e = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed without a reply");
        return Err(io(e));
    }
    let reply = String::from_utf8(reply).map_err(|_| {
        io(std::io::Error::new(std::io::ErrorKind::InvalidData, "the reply is not UTF-8"))
    })?;
    let (head, body) = reply.split_once('\n').unwrap_or((reply.as_str(), ""));
    if head == "ok" {
        Ok(body.to_string())
    } else {
        let msg = head.strip_prefix("error ").unwrap_or(head);
        Err(ControlError::Refused(msg.to_string()))
    }
}

/// Reads until EOF; what came before an error stays in `reply`.
fn read_reply(stream: &mut UnixStream, reply: &mut Vec<u8>) -> std::io::Result<()> {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
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
/// What is read and thrown away after a request before its connection is closed: more than a
/// polite client leaves (so it reads our reply, not a reset), too little to hold the loop
/// under a client that writes without end.
pub const DRAIN_LEN_MAX: usize = 4 * 1024;
/// The first word of the error that turns a client away when every slot is taken.
pub const BUSY: &str = "busy";
/// Connections accepted per `poll_io`; a connect flood costs a bounded amount per wake.
const ACCEPTS_PER_WAKE_MAX: usize = CONTROL_CLIENTS_MAX;
/// At most one warning about control clients in this time; the others are counted.
const WARN_INTERVAL: time::Duration = time::Duration::from_secs(10);

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
    /// `takeover force` (`hapair takeover --force`): `takeover`, and the operator vouches that
    /// the peer is down (core `Admin::TakeoverForce`).
    TakeoverForce,
    /// `takeover-group NAME` (`hapair takeover GROUP`): ask for one group.
    TakeoverGroup(Name),
    /// `move NAME`: hand one group to the peer.
    Move(Name),
    /// `maintenance on` (true) or `maintenance off` (false).
    Maintenance(bool),
    /// `cleanup [RESOURCE]`: forget failures of one resource, or all.
    Cleanup(Option<Name>),
    /// `outdate-peer RES` (`hapair drbd-fence-peer`, SPEC §7.5): have the peer outdate its
    /// disk of DRBD resource RES over the heartbeat links. Answered when the peer answers (or
    /// is found dead, or is silent too long): `ok` and DRBD's fence-peer exit code.
    OutdatePeer(Name),
}

impl Request {
    /// Only root (uid 0) may make this request: everything but `status` changes state
    /// (SPEC §7.3). A request added later is root's unless it is named here.
    pub fn needs_root(&self) -> bool {
        !matches!(self, Request::Status(_))
    }

    /// The command's name, for messages.
    pub fn verb(&self) -> &'static str {
        match self {
            Request::Status(_) => "status",
            Request::Standby => "standby",
            Request::Online => "online",
            Request::Takeover | Request::TakeoverForce | Request::TakeoverGroup(_) => "takeover",
            Request::Move(_) => "move",
            Request::Maintenance(_) => "maintenance",
            Request::Cleanup(_) => "cleanup",
            Request::OutdatePeer(_) => "outdate-peer",
        }
    }
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
        ("takeover", Some("force")) => Request::TakeoverForce,
        ("takeover-group", Some(name)) => {
            Request::TakeoverGroup(Name::try_from(name).map_err(|_| "group name too long")?)
        }
        ("move", Some(name)) => {
            Request::Move(Name::try_from(name).map_err(|_| "group name too long")?)
        }
        ("maintenance", Some("on")) => Request::Maintenance(true),
        ("maintenance", Some("off")) => Request::Maintenance(false),
        ("cleanup", None) => Request::Cleanup(None),
        ("cleanup", Some(name)) => {
            Request::Cleanup(Some(Name::try_from(name).map_err(|_| "resource name too long")?))
        }
        ("outdate-peer", Some(name)) => {
            Request::OutdatePeer(Name::try_from(name).map_err(|_| "resource name too long")?)
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

#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    /// Reading the request line.
    Reading,
    /// A permitted request, read by `poll_io`, for `poll_request` to hand out.
    Ready(Request),
    /// The request went to the loop; waiting for its reply.
    Awaiting,
    /// Writing the reply; closed when it is all out.
    Writing,
}

struct Client {
    stream: UnixStream,
    generation: u64,
    /// The client's uid as the kernel gave it at accept (SO_PEERCRED); `None` when it did
    /// not, which counts as not root.
    uid: Option<u32>,
    phase: Phase,
    request: [u8; REQUEST_LEN_MAX],
    request_len: usize,
    written: usize,
    /// Dropped at this time while `Reading` or `Writing`: `client_timeout` after connect.
    deadline: Instant,
}

impl Client {
    /// Waiting on the client (not on the loop), so its deadline counts.
    fn on_the_clock(&self) -> bool {
        matches!(self.phase, Phase::Reading | Phase::Writing)
    }

    fn id(&self, slot: usize) -> ClientId {
        ClientId { slot, generation: self.generation }
    }
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
    /// The last warning about a client, and how many were not logged since.
    warned_at: Option<Instant>,
    unwarned: u32,
}

impl ControlServer {
    /// Binds the socket at `path` (mode 0600), creating its directory (mode 0755, whatever
    /// the umask) when it is missing. A socket file left by a dead daemon is removed; one that
    /// answers means another daemon runs, and nothing is touched. A client that is not served
    /// within `client_timeout` of its connect is dropped.
    pub fn bind(path: &Path, client_timeout: time::Duration) -> Result<ControlServer, BindError> {
        let io = |step| move |e| BindError::Io(path.to_path_buf(), step, e);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let created = !dir.exists();
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(dir)
                .map_err(io("create directory"))?;
            if created {
                // The umask must not keep `control_group` members from reaching the socket.
                fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
                    .map_err(io("chmod directory"))?;
            }
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
            warned_at: None,
            unwarned: 0,
        })
    }

    /// `control_group`: the socket becomes mode 0660 with group `gid`, so that the group's
    /// members can connect and ask for `status` (everything else stays root's, per request).
    /// Logs a warning when a directory on the way to the socket does not let them search it.
    pub fn admit_group(&mut self, gid: u32) -> Result<(), BindError> {
        let path = self.path.as_path();
        let io = |step| move |e| BindError::Io(path.to_path_buf(), step, e);
        let group = Some(nix::unistd::Gid::from_raw(gid));
        let flags = nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW;
        nix::unistd::fchownat(nix::fcntl::AT_FDCWD, path, None, group, flags)
            .map_err(|e| io("chown")(e.into()))?;
        fs::set_permissions(path, fs::Permissions::from_mode(0o660)).map_err(io("chmod"))?;
        if let Some((dir, mode)) = closed_ancestor(path, gid) {
            log::warn!(
                "control_group (gid {gid}) cannot reach {}: {} is mode {mode:04o} (its \
                 members need search permission on every directory on the way)",
                path.display(),
                dir.display()
            );
        }
        Ok(())
    }

    /// The fds to poll and what for: the listener always (a client beyond the table is
    /// turned away at once, not left waiting in the backlog), each client while it is being
    /// read or written.
    pub fn fds(&self) -> impl Iterator<Item = (RawFd, Interest)> + '_ {
        let listener = (self.listener.as_raw_fd(), Interest::Read);
        let clients = self.clients.iter().flatten().filter_map(|c| match c.phase {
            Phase::Reading => Some((c.stream.as_raw_fd(), Interest::Read)),
            Phase::Writing => Some((c.stream.as_raw_fd(), Interest::Write)),
            Phase::Ready(_) | Phase::Awaiting => None,
        });
        core::iter::once(listener).chain(clients)
    }

    /// When a client next times out, `None` with none waiting on us.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.clients.iter().flatten().filter(|c| c.on_the_clock()).map(|c| c.deadline).min()
    }

    /// Does the socket work that can be done now, a bounded amount, once per wake: drops
    /// clients past their deadline, writes pending replies, accepts at most
    /// `CONTROL_CLIENTS_MAX` connections (turning away those that find no slot), and reads
    /// what each client sent, at most a request line. Then `poll_request` hands out what
    /// was read. Bad and forbidden requests are answered with an error here.
    pub fn poll_io(&mut self, now: Instant) {
        for slot in 0..CONTROL_CLIENTS_MAX {
            let expired =
                self.clients[slot].as_ref().is_some_and(|c| c.on_the_clock() && now >= c.deadline);
            if expired {
                self.clients[slot] = None;
                self.warn(now, format_args!("control client timed out; dropped"));
            }
            self.write_out(slot);
        }
        self.accept(now);
        for slot in 0..CONTROL_CLIENTS_MAX {
            self.read_request(slot, now);
        }
    }

    /// The next request `poll_io` read, for the loop to act on and `reply` to; `None` when
    /// there is none left (until the next `poll_io`).
    pub fn poll_request(&mut self) -> Option<(ClientId, Request)> {
        for (slot, c) in self.clients.iter_mut().enumerate() {
            let Some(c) = c.as_mut().filter(|c| matches!(c.phase, Phase::Ready(_))) else {
                continue;
            };
            if let Phase::Ready(request) = core::mem::replace(&mut c.phase, Phase::Awaiting) {
                return Some((c.id(slot), request));
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
        for _ in 0..ACCEPTS_PER_WAKE_MAX {
            let stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => return self.warn(now, format_args!("control socket accept: {e}")),
            };
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            let uid = peer_uid(&stream);
            let Some(slot) = self.slot_for(uid, now) else {
                self.turn_away(now, stream, uid);
                continue;
            };
            self.clients[slot] = Some(Client {
                stream,
                generation: self.next_generation,
                uid,
                phase: Phase::Reading,
                request: [0; REQUEST_LEN_MAX],
                request_len: 0,
                written: 0,
                deadline: now + self.client_timeout,
            });
            self.next_generation += 1;
        }
    }

    /// A free slot. When every slot is taken and the newcomer is root, the slot of the
    /// non-root client that connected first, dropped: members cannot lock root out.
    fn slot_for(&mut self, uid: Option<u32>, now: Instant) -> Option<usize> {
        if let Some(free) = self.clients.iter().position(Option::is_none) {
            return Some(free);
        }
        if uid != Some(0) {
            return None;
        }
        let (slot, _) = self
            .clients
            .iter()
            .enumerate()
            .filter_map(|(slot, c)| Some((slot, c.as_ref()?)))
            .filter(|(_, c)| c.uid != Some(0) && c.on_the_clock())
            .min_by_key(|(_, c)| c.generation)?;
        self.clients[slot] = None;
        self.warn(
            now,
            format_args!("control: every slot taken; a non-root client dropped for root"),
        );
        Some(slot)
    }

    /// Answers `error busy` on a connection that found no slot and closes it. Its buffer is
    /// empty, so the short write cannot fail for want of room.
    fn turn_away(&mut self, now: Instant, stream: UnixStream, uid: Option<u32>) {
        let _ = (&stream).write(b"error busy: every control slot is taken; try again\n");
        drain(&stream);
        self.warn(now, format_args!("control: every slot taken; turned away uid {uid:?}"));
    }

    /// Reads what slot's client sent, at most a request line. A complete, permitted request
    /// becomes `Ready`; a bad or forbidden one is answered with an error.
    fn read_request(&mut self, slot: usize, now: Instant) {
        let Some(c) = self.clients[slot].as_mut().filter(|c| c.phase == Phase::Reading) else {
            return;
        };
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
                    return;
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
                return;
            }
            None if eof => filled,
            None if c.request_len == REQUEST_LEN_MAX => {
                self.warn(now, format_args!("control request too long; refused"));
                return self.refuse(slot, "request too long");
            }
            None => return,
        };
        match parse_request(line) {
            Ok(request) if request.needs_root() && c.uid != Some(0) => {
                let (verb, uid) = (request.verb(), c.uid);
                c.phase = Phase::Awaiting;
                let id = c.id(slot);
                self.reply_with(id, false, |w| match uid {
                    Some(uid) => write!(
                        w,
                        "permission denied: {verb} needs root (uid 0); uid {uid} may ask for \
                         status only"
                    ),
                    None => write!(w, "permission denied: {verb} needs root (uid 0)"),
                });
                self.warn(now, format_args!("control: {verb} from uid {uid:?}: permission denied"));
            }
            Ok(request) => c.phase = Phase::Ready(request),
            Err(msg) => self.refuse(slot, msg),
        }
    }

    fn refuse(&mut self, slot: usize, msg: &str) {
        if let Some(c) = self.clients[slot].as_mut() {
            c.phase = Phase::Awaiting;
            let id = c.id(slot);
            self.reply(id, false, msg.as_bytes());
        }
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
                Ok(0) => break,
                Ok(n) => c.written += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => break,
            }
        }
        drain(&c.stream);
        self.clients[slot] = None;
    }

    /// Logs a warning about a client, at most one per `WARN_INTERVAL` (a local user can
    /// cause them at will); the others are counted into the next one.
    fn warn(&mut self, now: Instant, what: fmt::Arguments<'_>) {
        if self.warned_at.is_some_and(|at| now < at + WARN_INTERVAL) {
            self.unwarned = self.unwarned.saturating_add(1);
            return;
        }
        match self.unwarned {
            0 => log::warn!("{what}"),
            n => log::warn!("{what} (and {n} more control client warnings not logged)"),
        }
        self.warned_at = Some(now);
        self.unwarned = 0;
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

/// The uid of the process at the other end, as the kernel recorded it at connect.
fn peer_uid(stream: &UnixStream) -> Option<u32> {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    getsockopt(stream, PeerCredentials).ok().map(|c| c.uid())
}

/// Reads and throws away what a client sent after its request, at most `DRAIN_LEN_MAX`
/// bytes, so that closing does not reset the connection under a polite client that is still
/// reading our reply; a client that writes without end is cut off there.
fn drain(stream: &UnixStream) {
    let mut sink = [0u8; 512];
    let mut left = DRAIN_LEN_MAX;
    while left > 0 {
        let want = left.min(sink.len());
        match (&*stream).read(&mut sink[..want]) {
            Ok(0) => return,
            Ok(n) => left -= n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// The first directory on the way to `path` that members of group `gid` (not its owner, who
/// is root) cannot search, with its mode. ACLs are not looked at.
fn closed_ancestor(path: &Path, gid: u32) -> Option<(PathBuf, u32)> {
    path.ancestors().skip(1).filter(|d| !d.as_os_str().is_empty()).find_map(|dir| {
        let meta = fs::metadata(dir).ok()?;
        let mode = meta.mode() & 0o7777;
        let open = mode & 0o001 != 0 || (meta.gid() == gid && mode & 0o010 != 0);
        (!open).then(|| (dir.to_path_buf(), mode))
    })
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
        assert_eq!(parse_request(b"takeover force\n"), Ok(Request::TakeoverForce));
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

    #[test]
    fn only_status_is_open_to_others_than_root() {
        for line in ["status", "status json", "status prometheus"] {
            assert!(!parse_request(line.as_bytes()).unwrap().needs_root(), "{line}");
        }
        let changes = [
            "standby",
            "online",
            "takeover",
            "takeover force",
            "maintenance on",
            "maintenance off",
            "cleanup",
            "cleanup x",
        ];
        for line in changes {
            assert!(parse_request(line.as_bytes()).unwrap().needs_root(), "{line}");
        }
    }

    #[test]
    fn drain_reads_at_most_its_bound() {
        let (mut client, server) = UnixStream::pair().unwrap();
        client.write_all(&[b'x'; 3 * DRAIN_LEN_MAX]).unwrap();
        server.set_nonblocking(true).unwrap(); // as the server's streams are
        drain(&server);
        let mut rest = Vec::new();
        let _ = (&server).read_to_end(&mut rest); // ends in WouldBlock
        assert_eq!(rest.len(), 2 * DRAIN_LEN_MAX, "drain took more or less than its bound");
    }

    #[test]
    fn closed_ancestor_names_the_first_directory_members_cannot_search() {
        let base = std::env::temp_dir().join(format!("hapair-ancestor-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let group = base.join("group");
        let shut = group.join("shut");
        fs::create_dir_all(&shut).unwrap();
        let mode = |p: &Path, m| fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
        mode(&base, 0o755);
        mode(&group, 0o750);
        nix::unistd::chown(&group, None, Some(nix::unistd::Gid::from_raw(4242))).unwrap();
        mode(&shut, 0o700);
        let found = closed_ancestor(&group.join("sock"), 4242);
        let for_others = closed_ancestor(&group.join("sock"), 4243);
        let below = closed_ancestor(&shut.join("sock"), 4242);
        let _ = fs::remove_dir_all(&base);
        assert_eq!(found, None, "group x on group/, o+x above");
        assert_eq!(for_others, Some((group.clone(), 0o750)));
        assert_eq!(below, Some((shut, 0o700)));
    }
}
