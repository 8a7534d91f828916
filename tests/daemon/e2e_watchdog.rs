//! End to end, in the namespace lab (scripts/lab.sh): a watchdog that fails after start-up
//! (SPEC §7.3). Both daemons run `fence watchdog`, each with a FIFO the test reads standing
//! in for /dev/watchdog. When the active node's FIFO loses its reader, its pets fail (EPIPE):
//! it turns unhealthy, its status names the device, and it hands the group to its healthy
//! peer, which the client then follows at the VIP (never on both nodes at once). A reader
//! again: the node pets again and is healthy. Each node also keeps the watchdog timeout its
//! peer advertises in its statedir (`peer-watchdog`), so a restart does not forget it.
//!
//! Needs root (CI is root). Not here: the refusal to start (tests/daemon/daemon_watchdog.rs), the
//! driver (tests/drivers/health_watchdog.rs), and timing figures: every wait polls a condition with
//! a generous deadline.

use crate::common::lab::VIP;
use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::lab::Node;
use crate::common::pair::{NODES, NodeExtra, Pair};
use crate::common::{assert_soon, wait_until};

/// Generous: the machine may be busy building; nothing here measures time.
const PATIENCE: Duration = Duration::from_secs(40);
const CONF: &str = "hapair.conf";

/// A scratch directory (short: a health reason keeps 64 bytes and names the device path),
/// removed on drop, also when the test fails.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir = PathBuf::from(format!("/tmp/hwe-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A FIFO standing in for a node's /dev/watchdog, and its read end while the test holds it.
struct Fifo {
    path: PathBuf,
    reader: Option<File>,
}

impl Fifo {
    fn new(dir: &Path, node: Node) -> Fifo {
        let path = dir.join(format!("{}.wd", node.as_str()));
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .unwrap_or_else(|e| panic!("mkfifo: {e}"));
        let mut fifo = Fifo { path, reader: None };
        fifo.open_reader();
        fifo
    }

    /// Opens the read end (first, and non-blocking: the daemon's open then succeeds).
    fn open_reader(&mut self) {
        let reader = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&self.path)
            .unwrap_or_else(|e| panic!("fifo reader: {e}"));
        self.reader = Some(reader);
    }

    /// Bytes waiting; empty when none, or no writer, or no reader held.
    fn drain(&mut self) -> Vec<u8> {
        let Some(reader) = self.reader.as_mut() else { return Vec::new() };
        let mut buf = [0u8; 256];
        match reader.read(&mut buf) {
            Ok(n) => buf[..n].to_vec(),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Vec::new(),
            Err(e) => panic!("fifo read: {e}"),
        }
    }
}

#[test]
fn a_watchdog_that_fails_later_hands_the_group_to_the_healthy_peer() {
    let scratch = Scratch::new("fails");
    let mut fifos = NODES.map(|node| Fifo::new(&scratch.0, node));
    let extras: [NodeExtra; 2] = [0, 1].map(|i| NodeExtra {
        cmdline: format!(
            "hapair.fence=watchdog hapair.watchdog=\"{} timeout 3s\"",
            fifos[i].path.display()
        ),
        conf: String::new(),
    });
    let pair = Pair::board_with('g', CONF, VIP, extras);
    assert_soon(PATIENCE, "alpha (home) active, beta standby, both healthy", || {
        pair.state(Node::Alpha) == "active"
            && pair.state(Node::Beta) == "standby"
            && NODES.iter().all(|n| pair.health(*n).0 == Some(true))
    });
    assert_soon(PATIENCE, "the client answered by alpha at the VIP", || {
        pair.last_answer().as_deref() == Some("alpha")
    });
    // Each remembers what its peer advertised (3 s), for its next start.
    for node in NODES {
        let file = PathBuf::from(pair.lab().dir()).join(node.as_str()).join("peer-watchdog");
        assert_soon(PATIENCE, &format!("{} records its peer's watchdog", node.as_str()), || {
            fs::read_to_string(&file).is_ok_and(|t| t.trim() == "3000")
        });
        let status = pair.status(node).unwrap_or_default();
        assert_eq!(status["peer"]["watchdog_timeout_ms"], 3000, "{status}");
        assert_eq!(status["peer"]["unfenceable"], false, "{status}");
    }
    // Both are petted.
    assert_soon(PATIENCE, "pets on both FIFOs", || {
        fifos.iter_mut().all(|f| f.drain().contains(&b'.'))
    });
    // Alpha's device fails: nobody reads its FIFO any more, so its pets fail (EPIPE).
    fifos[0].reader = None;
    let why = format!("watchdog {}: pet failed", fifos[0].path.display());
    assert_soon(PATIENCE, "beta active, alpha standby", || {
        pair.state(Node::Beta) == "active" && pair.state(Node::Alpha) == "standby"
    });
    let (ok, reasons) = pair.health(Node::Alpha);
    assert_eq!(ok, Some(false), "alpha's health; reasons {reasons:?}");
    assert!(reasons.iter().any(|r| r.contains(&why)), "alpha's reasons {reasons:?}");
    assert_eq!(pair.health(Node::Beta).0, Some(true), "the new active is healthy");
    assert_soon(PATIENCE, "the client answered by beta", || {
        pair.last_answer().as_deref() == Some("beta")
    });
    pair.assert_moved(Node::Alpha, Node::Beta);
    // The device works again: alpha pets it and is healthy; the group stays with beta.
    fifos[0].open_reader();
    assert_soon(PATIENCE, "alpha healthy again", || pair.health(Node::Alpha).0 == Some(true));
    assert_soon(PATIENCE, "pets on alpha's FIFO again", || fifos[0].drain().contains(&b'.'));
    let moved = wait_until(Duration::from_secs(2), || pair.state(Node::Beta) != "active");
    assert!(!moved, "the group left beta when alpha recovered (auto_failback is off)");
}
