//! The control server, polled on the test thread, against the real client
//! (`control::request`) on another thread, against raw sockets for the odd cases, and against
//! clients of another user: small python3 programs run as nobody (uid and gid 65534, no
//! supplementary groups), ended by pid.

// Test deadlines are wall-clock time; the daemon itself reads the clock only in event_loop.rs.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::thread::JoinHandle;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use crate::common::TempDir;
use hapair::control::{
    BindError, ClientId, ControlError, ControlServer, DRAIN_LEN_MAX, Format, REPLY_LEN_MAX,
    REQUEST_LEN_MAX, Request, request,
};
use hapair::core::time::{Duration, Instant};
use hapair::limits::CONTROL_CLIENTS_MAX;

const TIMEOUT: Duration = Duration::from_secs(5);

/// A fresh directory with the path of a control socket in it, `run/hapair/hapair.sock`. The
/// directories above the socket's own are searchable by nobody whatever the umask (the
/// socket's own directory is made 0755 by `bind`; those above it are the test's).
fn socket_dir() -> (TempDir, PathBuf) {
    let dir = TempDir::new("control");
    for d in [dir.path().to_path_buf(), dir.join("run")] {
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let socket = dir.join("run/hapair/hapair.sock");
    (dir, socket)
}

fn client(path: &Path, line: &'static str) -> JoinHandle<Result<String, ControlError>> {
    let path = path.to_path_buf();
    std::thread::spawn(move || request(&path, line))
}

/// One round of socket work, then the first request it read.
fn poll(server: &mut ControlServer, now: Instant) -> Option<(ClientId, Request)> {
    server.poll_io(now);
    server.poll_request()
}

/// Polls the server until a request arrives.
fn next_request(server: &mut ControlServer, now: Instant) -> (ClientId, Request) {
    let until = StdInstant::now() + StdDuration::from_secs(10);
    loop {
        if let Some(r) = poll(server, now) {
            return r;
        }
        assert!(StdInstant::now() < until, "no request arrived");
        std::thread::sleep(StdDuration::from_millis(1));
    }
}

/// Polls the server (writing replies) until the client thread is done.
fn finish<T>(server: &mut ControlServer, now: Instant, client: JoinHandle<T>) -> T {
    let until = StdInstant::now() + StdDuration::from_secs(10);
    while !client.is_finished() {
        assert!(poll(server, now).is_none(), "unexpected request");
        assert!(StdInstant::now() < until, "the client never finished");
        std::thread::sleep(StdDuration::from_millis(1));
    }
    client.join().expect("client thread")
}

#[test]
fn requests_and_replies_round_trip_with_the_real_client() {
    let (_dir, path) = socket_dir();
    let mut server = ControlServer::bind(&path, TIMEOUT).expect("bind");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let now = Instant::from_millis(1000);
    let cases: [(&'static str, Request); 4] = [
        ("status json", Request::Status(Format::Json)),
        ("status", Request::Status(Format::Human)),
        ("maintenance on", Request::Maintenance(true)),
        ("cleanup web", Request::Cleanup(Some("web".try_into().unwrap()))),
    ];
    for (line, want) in cases {
        let c = client(&path, line);
        let (id, got) = next_request(&mut server, now);
        assert_eq!(got, want);
        server.reply_with(id, true, |w| write!(w, "body of {line}\nsecond line\n"));
        let body = finish(&mut server, now, c).expect("ok reply");
        assert_eq!(body, format!("body of {line}\nsecond line\n"));
    }
    let c = client(&path, "takeover");
    let (id, got) = next_request(&mut server, now);
    assert_eq!(got, Request::Takeover);
    server.reply(id, false, b"the peer is unhealthy");
    match finish(&mut server, now, c) {
        Err(ControlError::Refused(msg)) => assert_eq!(msg, "the peer is unhealthy"),
        other => panic!("{other:?}"),
    }
    assert_eq!(server.client_count(), 0);
}

#[test]
fn bad_and_too_long_requests_get_error_replies() {
    let (_dir, path) = socket_dir();
    let mut server = ControlServer::bind(&path, TIMEOUT).unwrap();
    let now = Instant::ZERO;
    match finish(&mut server, now, client(&path, "reboot")) {
        Err(ControlError::Refused(msg)) => assert_eq!(msg, "unknown request"),
        other => panic!("{other:?}"),
    }
    let raw = std::thread::spawn({
        let path = path.clone();
        move || {
            let mut s = UnixStream::connect(&path).unwrap();
            s.write_all(&[b'x'; 300]).unwrap();
            let mut reply = String::new();
            s.read_to_string(&mut reply).unwrap();
            reply
        }
    });
    let reply = finish(&mut server, now, raw);
    assert!(reply.starts_with("error ") && reply.contains("too long"), "{reply:?}");
}

#[test]
fn a_reply_too_big_for_the_buffer_becomes_an_error() {
    let (_dir, path) = socket_dir();
    let mut server = ControlServer::bind(&path, TIMEOUT).unwrap();
    let c = client(&path, "status");
    let (id, _) = next_request(&mut server, Instant::ZERO);
    server.reply(id, true, &vec![b'x'; REPLY_LEN_MAX]);
    assert!(matches!(finish(&mut server, Instant::ZERO, c), Err(ControlError::Refused(_))));
}

#[test]
fn a_stale_socket_is_replaced_and_a_live_daemon_is_refused() {
    let (dir, path) = socket_dir();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    drop(UnixListener::bind(&path).unwrap()); // a dead daemon's leftover
    assert!(path.exists());
    let mut server = ControlServer::bind(&path, TIMEOUT).expect("stale socket replaced");
    match ControlServer::bind(&path, TIMEOUT) {
        Err(BindError::AlreadyRunning(p)) => assert_eq!(p, path),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("two servers on one socket"),
    }
    // The first server still serves (and shrugs off the second one's probe).
    let c = client(&path, "online");
    let (id, got) = next_request(&mut server, Instant::ZERO);
    assert_eq!(got, Request::Online);
    server.reply(id, true, b"");
    assert_eq!(finish(&mut server, Instant::ZERO, c).unwrap(), "");
    drop(server);
    assert!(!path.exists(), "the socket file goes with the server");

    let file = dir.join("not-a-socket");
    std::fs::write(&file, b"keep me").unwrap();
    assert!(matches!(ControlServer::bind(&file, TIMEOUT), Err(BindError::NotASocket(_))));
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
}

#[test]
fn a_silent_client_is_dropped_after_the_timeout() {
    let (_dir, path) = socket_dir();
    let mut server = ControlServer::bind(&path, TIMEOUT).unwrap();
    let mut silent = UnixStream::connect(&path).unwrap();
    let t0 = Instant::from_millis(500);
    let until = StdInstant::now() + StdDuration::from_secs(10);
    while server.client_count() == 0 {
        assert!(poll(&mut server, t0).is_none());
        assert!(StdInstant::now() < until, "never accepted");
    }
    assert_eq!(server.next_deadline(), Some(t0 + TIMEOUT));
    assert!(poll(&mut server, t0 + TIMEOUT - Duration::from_millis(1)).is_none());
    assert_eq!(server.client_count(), 1);
    assert!(poll(&mut server, t0 + TIMEOUT).is_none());
    assert_eq!(server.client_count(), 0);
    let mut buf = [0u8; 8];
    assert_eq!(silent.read(&mut buf).unwrap(), 0, "closed by the server");
}

#[test]
fn clients_beyond_the_table_are_turned_away_busy_and_try_again() {
    let (_dir, path) = socket_dir();
    let mut server = ControlServer::bind(&path, TIMEOUT).unwrap();
    let now = Instant::ZERO;
    let clients: Vec<_> = (0..CONTROL_CLIENTS_MAX + 2).map(|_| client(&path, "standby")).collect();
    let mut pending = Vec::new();
    while pending.len() < CONTROL_CLIENTS_MAX {
        pending.push(next_request(&mut server, now).0);
    }
    assert_eq!(server.client_count(), CONTROL_CLIENTS_MAX);
    assert!(poll(&mut server, now).is_none(), "the table is full");
    let stale = pending[0];
    for id in pending {
        server.reply(id, true, b"done\n");
    }
    server.reply(stale, true, b"a reply to a client that is gone is ignored");
    for _ in 0..2 {
        let (id, _) = next_request(&mut server, now);
        server.reply(id, true, b"done\n");
    }
    for c in clients {
        assert_eq!(finish(&mut server, now, c).unwrap(), "done\n");
    }
}

/// nobody: uid and gid 65534.
const NOBODY: u32 = 65534;

/// A python3 client run as nobody: connects to the socket, sends `line` (when not empty) and
/// prints `connected`, then the first thing the server says (its lines joined by `|`), or
/// `closed` at EOF. Killed and reaped on drop.
struct Stranger {
    child: Child,
    lines: Receiver<String>,
}

const STRANGER: &str = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
if sys.argv[2]:
    try:
        s.sendall(sys.argv[2].encode() + b"\n")
    except OSError:
        pass
print("connected", flush=True)
try:
    data = s.recv(4096)
except OSError:
    data = b""
print(data.decode().strip().replace("\n", "|") if data else "closed", flush=True)
"#;

impl Stranger {
    fn new(path: &Path, line: &str) -> Stranger {
        let mut child = Command::new("python3")
            .args(["-c", STRANGER])
            .arg(path)
            .arg(line)
            .uid(NOBODY)
            .gid(NOBODY)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 (scripts/test.sh installs it)");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Stranger { child, lines }
    }

    /// Its next line, polling `server` meanwhile; panics after 10 s.
    fn line(&self, server: &mut ControlServer, now: Instant) -> String {
        let until = StdInstant::now() + StdDuration::from_secs(10);
        loop {
            if let Ok(line) = self.lines.try_recv() {
                return line;
            }
            assert!(poll(server, now).is_none(), "a stranger's request reached the loop");
            assert!(StdInstant::now() < until, "the stranger said nothing");
            std::thread::sleep(StdDuration::from_millis(2));
        }
    }

    /// Whether it has printed a line since (without waiting).
    fn said(&self) -> Option<String> {
        self.lines.try_recv().ok()
    }
}

impl Drop for Stranger {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_group_may_connect_and_ask_for_status_but_changes_need_root() {
    let (_dir, path) = socket_dir();
    let mut server = ControlServer::bind(&path, TIMEOUT).unwrap();
    server.admit_group(NOBODY).expect("admit the group");
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!((meta.mode() & 0o777, meta.gid()), (0o660, NOBODY), "socket mode and group");
    let now = Instant::ZERO;
    for line in ["standby", "takeover", "maintenance on", "online", "cleanup"] {
        let stranger = Stranger::new(&path, line);
        assert_eq!(stranger.line(&mut server, now), "connected");
        let reply = stranger.line(&mut server, now);
        assert!(
            reply.starts_with("error permission denied: ") && reply.contains("uid 65534"),
            "{line}: {reply}"
        );
    }
    let stranger = Stranger::new(&path, "status json");
    let (id, got) = next_request(&mut server, now);
    assert_eq!(got, Request::Status(Format::Json));
    server.reply(id, true, b"{}\n");
    assert_eq!(stranger.line(&mut server, now), "connected");
    assert_eq!(stranger.line(&mut server, now), "ok|{}");
    assert_eq!(server.client_count(), 0);
}

#[test]
fn without_the_group_others_cannot_connect() {
    let (_dir, path) = socket_dir();
    let _server = ControlServer::bind(&path, TIMEOUT).unwrap();
    let out = Command::new("python3")
        .args(["-c", STRANGER])
        .arg(&path)
        .arg("status")
        .uid(NOBODY)
        .gid(NOBODY)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("PermissionError"), "{err}");
}

#[test]
fn root_takes_a_members_slot_and_members_beyond_the_table_are_turned_away() {
    let (_dir, path) = socket_dir();
    let mut server = ControlServer::bind(&path, TIMEOUT).unwrap();
    server.admit_group(NOBODY).unwrap();
    let now = Instant::ZERO;
    // Members that connect and say nothing hold every slot.
    let idle: Vec<Stranger> = (0..CONTROL_CLIENTS_MAX).map(|_| Stranger::new(&path, "")).collect();
    for s in &idle {
        assert_eq!(s.line(&mut server, now), "connected");
    }
    let until = StdInstant::now() + StdDuration::from_secs(10);
    while server.client_count() < CONTROL_CLIENTS_MAX {
        assert!(poll(&mut server, now).is_none());
        assert!(StdInstant::now() < until, "the idle members were never accepted");
    }
    // One more member is turned away at once: members do not push each other out.
    let late = Stranger::new(&path, "");
    assert_eq!(late.line(&mut server, now), "connected");
    let busy = late.line(&mut server, now);
    assert!(busy.starts_with("error busy"), "{busy}");
    assert!(idle.iter().all(|s| s.said().is_none()), "a member was dropped for a member");
    // Root is served: the member that connected first makes room.
    let root = client(&path, "status");
    let (id, got) = next_request(&mut server, now);
    assert_eq!(got, Request::Status(Format::Human));
    server.reply(id, true, b"for root\n");
    assert_eq!(finish(&mut server, now, root).unwrap(), "for root\n");
    // Exactly one member made room (the one accepted first).
    let mut closed = 0;
    let until = StdInstant::now() + StdDuration::from_secs(10);
    while closed == 0 {
        for s in &idle {
            if let Some(line) = s.said() {
                assert_eq!(line, "closed");
                closed += 1;
            }
        }
        assert!(poll(&mut server, now).is_none());
        assert!(StdInstant::now() < until, "no member made room");
    }
    std::thread::sleep(StdDuration::from_millis(200));
    closed += idle.iter().filter(|s| s.said().is_some()).count();
    assert_eq!(closed, 1, "members dropped for one root client");
    assert_eq!(server.client_count(), CONTROL_CLIENTS_MAX - 1);
}

#[test]
fn a_client_that_writes_without_end_is_cut_off_within_one_poll() {
    use nix::sys::socket::{setsockopt, sockopt::SndBufForce};
    let (_dir, path) = socket_dir();
    let mut server = ControlServer::bind(&path, TIMEOUT).unwrap();
    // A 64 MiB socket buffer (the kernel doubles it), full before the server first looks and
    // kept full for up to 20 s: a reader that took whatever is there would read for the whole
    // 20 s, since the writer tops the buffer up long before it runs dry.
    let mut s = UnixStream::connect(&path).unwrap();
    setsockopt(&s, SndBufForce, &(64 << 20)).unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    s.set_nonblocking(true).unwrap();
    let mut queued = 0;
    while let Ok(n) = s.write(&chunk) {
        queued += n;
    }
    s.set_nonblocking(false).unwrap();
    s.set_write_timeout(Some(StdDuration::from_millis(100))).unwrap();
    let cut = Arc::new(AtomicBool::new(false));
    let writer = std::thread::spawn({
        let cut = cut.clone();
        move || {
            let until = StdInstant::now() + StdDuration::from_secs(20);
            while StdInstant::now() < until {
                match s.write(&chunk) {
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => return cut.store(true, Ordering::SeqCst),
                }
            }
        }
    });
    let mut slowest = StdDuration::ZERO;
    let until = StdInstant::now() + StdDuration::from_secs(10);
    while !cut.load(Ordering::SeqCst) {
        let t = StdInstant::now();
        assert!(poll(&mut server, Instant::ZERO).is_none());
        slowest = slowest.max(t.elapsed());
        assert!(StdInstant::now() < until, "the endless writer was never cut off");
        std::thread::sleep(StdDuration::from_millis(1));
    }
    writer.join().unwrap();
    eprintln!("{queued} bytes queued at first; slowest poll_io: {slowest:?}");
    assert!(slowest < StdDuration::from_secs(2), "one poll took {slowest:?}");
    assert_eq!(server.client_count(), 0);
}

#[test]
fn a_polite_client_with_leftovers_reads_the_error_not_a_reset() {
    // More than a request, less than the drain bound: the reply still arrives whole.
    let (_dir, path) = socket_dir();
    let mut server = ControlServer::bind(&path, TIMEOUT).unwrap();
    let raw = std::thread::spawn({
        let path = path.clone();
        move || {
            let mut s = UnixStream::connect(&path).unwrap();
            s.write_all(&vec![b'y'; REQUEST_LEN_MAX + DRAIN_LEN_MAX / 2]).unwrap();
            s.shutdown(std::net::Shutdown::Write).unwrap();
            let mut reply = String::new();
            s.read_to_string(&mut reply).map(|_| reply)
        }
    });
    let reply = finish(&mut server, Instant::ZERO, raw).expect("no reset");
    assert_eq!(reply, "error request too long\n");
}

#[test]
fn a_slow_writer_is_dropped_at_its_deadline_from_connect() {
    let (_dir, path) = socket_dir();
    let mut server = ControlServer::bind(&path, TIMEOUT).unwrap();
    let mut slow = UnixStream::connect(&path).unwrap();
    let t0 = Instant::from_millis(100);
    let until = StdInstant::now() + StdDuration::from_secs(10);
    while server.client_count() == 0 {
        assert!(poll(&mut server, t0).is_none());
        assert!(StdInstant::now() < until, "never accepted");
    }
    // A byte now and then, never a whole line: the deadline does not move.
    for (i, b) in b"stat".iter().enumerate() {
        slow.write_all(&[*b]).unwrap();
        let t = t0 + Duration::from_millis(1000 * (i as u64 + 1));
        assert!(poll(&mut server, t).is_none());
        assert_eq!(server.client_count(), 1);
    }
    assert_eq!(server.next_deadline(), Some(t0 + TIMEOUT));
    assert!(poll(&mut server, t0 + TIMEOUT).is_none());
    assert_eq!(server.client_count(), 0, "dropped at the deadline");
}

#[test]
fn one_poll_accepts_at_most_a_table_of_clients() {
    let (_dir, path) = socket_dir();
    let mut server = ControlServer::bind(&path, TIMEOUT).unwrap();
    // Twice the table waits in the backlog before the first poll.
    let waiting: Vec<UnixStream> =
        (0..2 * CONTROL_CLIENTS_MAX).map(|_| UnixStream::connect(&path).unwrap()).collect();
    let answered = |w: &[UnixStream]| {
        w.iter()
            .filter(|s| {
                s.set_nonblocking(true).unwrap();
                let mut b = [0u8; 64];
                !matches!((&**s).read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
            })
            .count()
    };
    assert!(poll(&mut server, Instant::ZERO).is_none());
    assert_eq!(server.client_count(), CONTROL_CLIENTS_MAX);
    assert_eq!(answered(&waiting), 0, "the rest wait for the next poll");
    assert!(poll(&mut server, Instant::ZERO).is_none());
    assert_eq!(answered(&waiting), CONTROL_CLIENTS_MAX, "then they are turned away busy");
}
