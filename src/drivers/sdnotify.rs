//! systemd's readiness protocol (`Type=notify`, `WatchdogSec=`): datagrams such as `READY=1`,
//! `STATUS=...` and `WATCHDOG=1` sent to the Unix socket named by `$NOTIFY_SOCKET`. A path
//! starting with `@` names an abstract socket. Without `$NOTIFY_SOCKET` (not started by
//! systemd) every call does nothing. Sends never block: a full socket drops the datagram.
//!
//! `WATCHDOG_USEC` (set by systemd with `WatchdogSec=`) gives the interval within which
//! `WATCHDOG=1` must arrive; the loop sends it at half that, and only while it is healthy, so a
//! hung loop is restarted by systemd.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};

use crate::core::time::{Duration, Instant};

/// The connection to systemd's notify socket, if there is one.
#[derive(Debug)]
pub struct SdNotify {
    socket: Option<(UnixDatagram, SocketAddr)>,
    watchdog_interval: Option<Duration>,
    last_watchdog: Option<Instant>,
}

impl SdNotify {
    /// Reads `$NOTIFY_SOCKET` and `$WATCHDOG_USEC` (and `$WATCHDOG_PID`, which must be ours
    /// when set). Call once at start.
    pub fn from_env() -> io::Result<SdNotify> {
        let path = std::env::var_os("NOTIFY_SOCKET");
        let usec = std::env::var("WATCHDOG_USEC").ok().and_then(|v| v.parse::<u64>().ok());
        let pid_ok = std::env::var("WATCHDOG_PID")
            .ok()
            .and_then(|v| v.parse::<u32>().ok())
            .is_none_or(|p| p == std::process::id());
        SdNotify::new(path.as_ref().map(|p| p.as_encoded_bytes()), usec.filter(|_| pid_ok))
    }

    /// A notifier for the socket `path` (`@name` for an abstract one) with systemd's
    /// watchdog interval `watchdog_usec`; `from_env` with the values given.
    pub fn new(path: Option<&[u8]>, watchdog_usec: Option<u64>) -> io::Result<SdNotify> {
        let watchdog_interval =
            watchdog_usec.filter(|&u| u > 0).map(|u| Duration::from_millis(u / 2000));
        let socket = match path {
            None => None,
            Some(p) => Some(connect(p)?),
        };
        Ok(SdNotify { socket, watchdog_interval, last_watchdog: None })
    }

    /// A notifier that does nothing (not started by systemd).
    pub fn disabled() -> SdNotify {
        SdNotify { socket: None, watchdog_interval: None, last_watchdog: None }
    }

    /// True when systemd listens.
    pub fn is_enabled(&self) -> bool {
        self.socket.is_some()
    }

    /// Sends one notification (`READY=1`, `STATUS=...`, `STOPPING=1`, ...). Errors are
    /// returned for the caller to log; nothing blocks.
    pub fn send(&self, state: &str) -> io::Result<()> {
        let Some((sock, addr)) = &self.socket else { return Ok(()) };
        sock.send_to_addr(state.as_bytes(), addr).map(|_| ())
    }

    /// When `WATCHDOG=1` is next due, `None` without `WatchdogSec`.
    pub fn next_deadline(&self) -> Option<Instant> {
        let interval = self.watchdog_interval?;
        self.socket.as_ref()?;
        Some(self.last_watchdog.map_or(Instant::ZERO, |t| t + interval))
    }

    /// Sends `WATCHDOG=1` when due; the caller only calls this while the loop is healthy.
    pub fn poll_watchdog(&mut self, now: Instant) -> io::Result<bool> {
        match self.next_deadline() {
            Some(due) if now >= due => {
                self.last_watchdog = Some(now);
                self.send("WATCHDOG=1").map(|()| true)
            }
            _ => Ok(false),
        }
    }
}

fn connect(path: &[u8]) -> io::Result<(UnixDatagram, SocketAddr)> {
    use std::os::linux::net::SocketAddrExt;
    let addr = match path.strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name)?,
        None => {
            use std::os::unix::ffi::OsStrExt;
            SocketAddr::from_pathname(std::ffi::OsStr::from_bytes(path))?
        }
    };
    let sock = UnixDatagram::unbound()?;
    sock.set_nonblocking(true)?;
    Ok((sock, addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_does_nothing() {
        let n = SdNotify::disabled();
        assert!(!n.is_enabled());
        assert!(n.send("READY=1").is_ok());
        assert_eq!(n.next_deadline(), None);
    }

    #[test]
    fn ready_status_and_watchdog_arrive() {
        let dir = std::env::temp_dir().join(format!("hapair-sdnotify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let _ = std::fs::remove_file(&path);
        let systemd = UnixDatagram::bind(&path).unwrap();
        systemd.set_nonblocking(true).unwrap();
        use std::os::unix::ffi::OsStrExt;
        // WatchdogSec=2s: WATCHDOG=1 every second.
        let mut n = SdNotify::new(Some(path.as_os_str().as_bytes()), Some(2_000_000)).unwrap();
        n.send("READY=1").unwrap();
        n.send("STATUS=active").unwrap();
        let t0 = Instant::from_millis(5);
        assert!(n.poll_watchdog(t0).unwrap());
        assert!(!n.poll_watchdog(t0 + Duration::from_millis(999)).unwrap());
        assert!(n.poll_watchdog(t0 + Duration::from_millis(1000)).unwrap());
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        while let Ok(len) = systemd.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..len]).into_owned());
        }
        assert_eq!(got, ["READY=1", "STATUS=active", "WATCHDOG=1", "WATCHDOG=1"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn abstract_socket_names_work() {
        let name = format!("hapair-test-{}", std::process::id());
        use std::os::linux::net::SocketAddrExt;
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let systemd = UnixDatagram::bind_addr(&addr).unwrap();
        let n = SdNotify::new(Some(format!("@{name}").as_bytes()), None).unwrap();
        n.send("READY=1").unwrap();
        let mut buf = [0u8; 16];
        let len = systemd.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1");
        assert_eq!(n.next_deadline(), None);
    }
}
