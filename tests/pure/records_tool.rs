//! `hapair-records`, the DRBD pair's record service and client (board/qemu-pair): on loopback,
//! the client's acknowledged records are all found, and `verify` fails, naming them, when the
//! service's file has lost some: the check the QEMU pair's table rests on can fail.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hapair-records");

/// A free loopback port (bound, then released for the service).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[allow(clippy::disallowed_methods)] // tests may read the real clock
fn serve(file: &Path, port: u16) -> Service {
    let child = Command::new(BIN)
        .args(["serve", file.to_str().unwrap(), &port.to_string()])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the service never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    Service(child)
}

fn verify(port: u16, log: &Path) -> (bool, String) {
    let out = Command::new(BIN)
        .args(["verify", "127.0.0.1", &port.to_string(), log.to_str().unwrap()])
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn acknowledged_records_are_found_and_a_lost_one_is_named() {
    let dir = std::env::temp_dir().join(format!("hapair-records-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (file, log) = (dir.join("records"), dir.join("client.log"));
    let port = free_port();
    let _service = serve(&file, port);
    let run = |secs: &str| {
        let status = Command::new(BIN)
            .args(["client", "127.0.0.1", &port.to_string(), log.to_str().unwrap(), secs])
            .status()
            .unwrap();
        assert!(status.success());
    };
    run("1");
    let (ok, out) = verify(port, &log);
    assert!(ok, "{out}");
    let acked: usize = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(acked > 10, "{out}");
    assert!(out.contains(" lost 0 "), "{out}");
    // A second run goes on numbering where the log ends: no number is acknowledged twice.
    run("1");
    let numbers: Vec<u64> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "numbers go on: {:?}", &numbers[..5]);
    // The service's disk loses the first three records: verify names them and fails.
    let text = std::fs::read_to_string(&file).unwrap();
    let kept: Vec<&str> = text.lines().filter(|l| !matches!(*l, "1" | "2" | "3")).collect();
    std::fs::write(&file, kept.join("\n") + "\n").unwrap();
    let (ok, out) = verify(port, &log);
    assert!(!ok, "{out}");
    assert!(out.contains(" lost 3 ") && out.contains("lost records: 1 2 3"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
