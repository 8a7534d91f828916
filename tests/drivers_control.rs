//! The control server, polled on the test thread, against the real client
//! (`control::request`) on another thread, and against raw sockets for the odd cases.

// Test deadlines are wall-clock time; the daemon itself reads the clock only in event_loop.rs.
#![allow(clippy::disallowed_methods)]

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use hapair::control::{
    BindError, ClientId, ControlError, ControlServer, Format, REPLY_LEN_MAX, Request, request,
};
use hapair::core::time::{Duration, Instant};
use hapair::limits::CONTROL_CLIENTS_MAX;

const TIMEOUT: Duration = Duration::from_secs(5);

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        TempDir(std::env::temp_dir().join(format!("hapair-control-{}-{n}", std::process::id())))
    }
    fn socket(&self) -> PathBuf {
        self.0.join("run/hapair/hapair.sock")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn client(path: &Path, line: &'static str) -> JoinHandle<Result<String, ControlError>> {
    let path = path.to_path_buf();
    std::thread::spawn(move || request(&path, line))
}

/// Polls the server until a request arrives.
fn next_request(server: &mut ControlServer, now: Instant) -> (ClientId, Request) {
    let until = StdInstant::now() + StdDuration::from_secs(10);
    loop {
        if let Some(r) = server.poll_requests(now) {
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
        assert!(server.poll_requests(now).is_none(), "unexpected request");
        assert!(StdInstant::now() < until, "the client never finished");
        std::thread::sleep(StdDuration::from_millis(1));
    }
    client.join().expect("client thread")
}

#[test]
fn requests_and_replies_round_trip_with_the_real_client() {
    let dir = TempDir::new();
    let path = dir.socket();
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
    let dir = TempDir::new();
    let path = dir.socket();
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
    let dir = TempDir::new();
    let path = dir.socket();
    let mut server = ControlServer::bind(&path, TIMEOUT).unwrap();
    let c = client(&path, "status");
    let (id, _) = next_request(&mut server, Instant::ZERO);
    server.reply(id, true, &vec![b'x'; REPLY_LEN_MAX]);
    assert!(matches!(finish(&mut server, Instant::ZERO, c), Err(ControlError::Refused(_))));
}

#[test]
fn a_stale_socket_is_replaced_and_a_live_daemon_is_refused() {
    let dir = TempDir::new();
    let path = dir.socket();
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

    let file = dir.0.join("not-a-socket");
    std::fs::write(&file, b"keep me").unwrap();
    assert!(matches!(ControlServer::bind(&file, TIMEOUT), Err(BindError::NotASocket(_))));
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
}

#[test]
fn a_silent_client_is_dropped_after_the_timeout() {
    let dir = TempDir::new();
    let path = dir.socket();
    let mut server = ControlServer::bind(&path, TIMEOUT).unwrap();
    let mut silent = UnixStream::connect(&path).unwrap();
    let t0 = Instant::from_millis(500);
    let until = StdInstant::now() + StdDuration::from_secs(10);
    while server.client_count() == 0 {
        assert!(server.poll_requests(t0).is_none());
        assert!(StdInstant::now() < until, "never accepted");
    }
    assert_eq!(server.next_deadline(), Some(t0 + TIMEOUT));
    assert!(server.poll_requests(t0 + TIMEOUT - Duration::from_millis(1)).is_none());
    assert_eq!(server.client_count(), 1);
    assert!(server.poll_requests(t0 + TIMEOUT).is_none());
    assert_eq!(server.client_count(), 0);
    let mut buf = [0u8; 8];
    assert_eq!(silent.read(&mut buf).unwrap(), 0, "closed by the server");
}

#[test]
fn clients_beyond_the_table_wait_their_turn() {
    let dir = TempDir::new();
    let path = dir.socket();
    let mut server = ControlServer::bind(&path, TIMEOUT).unwrap();
    let now = Instant::ZERO;
    let clients: Vec<_> = (0..CONTROL_CLIENTS_MAX + 2).map(|_| client(&path, "standby")).collect();
    let mut pending = Vec::new();
    while pending.len() < CONTROL_CLIENTS_MAX {
        pending.push(next_request(&mut server, now).0);
    }
    assert_eq!(server.client_count(), CONTROL_CLIENTS_MAX);
    assert!(server.poll_requests(now).is_none(), "the table is full");
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
