//! The control socket protocol between `hapair <command>` and the running daemon.
//!
//! A Unix stream socket (mode 0600). The client connects, writes one request line, shuts down
//! its write half and reads the reply until EOF. Requests: `status`, `status json`,
//! `status prometheus`, `standby`, `online`, `takeover`, `maintenance on`, `maintenance off`,
//! `cleanup [RESOURCE]`. A reply's first line is `ok` or `error MESSAGE`; the rest is the body.
//!
//! This file holds the client side (used by the CLI); the server side lives with the event
//! loop, which must never block on a client.

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
