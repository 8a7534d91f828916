//! `hapair-records`: the small service of the DRBD pair (SPEC §7.5, board/qemu-pair) and its
//! client, to show that a failover loses no acknowledged write.
//!
//! - `hapair-records serve FILE [PORT]`: listens on PORT (default 7000) of every address;
//!   `append N` appends the line `N` to FILE, then `fdatasync`, and only then answers `ok N`;
//!   `dump` sends every line of FILE, then `end`. A thread per connection.
//! - `hapair-records client ADDR PORT LOG [SECONDS]`: writes numbered records without pause
//!   through ADDR:PORT (the VIP), reconnecting whenever the connection fails, and appends
//!   `N MS` to LOG for every acknowledgement (MS: milliseconds since the Unix epoch); numbers
//!   go on from the last one LOG holds, so one LOG serves several runs; runs SECONDS
//!   (default: until SIGTERM or until LOG's `.stop` sibling exists).
//! - `hapair-records verify ADDR PORT LOG [SINCE_MS]`: dumps the records the service holds
//!   now and checks that every record LOG shows acknowledged is among them; prints `acked A
//!   before B found F lost L longest_gap_ms G`: B the records acknowledged before SINCE_MS
//!   (a fault), G the longest time without an acknowledgement from SINCE_MS on (the whole
//!   log without it). Exits 0 when none is lost, 1 otherwise.
//!
//! A record may be written and not acknowledged (the node died between the fsync and the
//! answer): the client sends it again, so the file may hold it twice. What must never happen
//! is an acknowledged record missing after a failover.

// A tool beside the daemon: it reads the clock where it measures, which the daemon leaves
// to its event loop alone.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: hapair-records serve FILE [PORT]
       hapair-records client ADDR PORT LOG [SECONDS]
       hapair-records verify ADDR PORT LOG [SINCE_MS]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["serve", file] => serve(Path::new(file), 7000),
        ["serve", file, port] => port_of(port).and_then(|p| serve(Path::new(file), p)),
        ["client", addr, port, log] => client(addr, port, Path::new(log), None),
        ["client", addr, port, log, secs] => match secs.parse::<u64>() {
            Ok(s) => client(addr, port, Path::new(log), Some(Duration::from_secs(s))),
            Err(_) => Err(format!("bad SECONDS {secs:?}")),
        },
        ["verify", addr, port, log] => verify(addr, port, Path::new(log), 0),
        ["verify", addr, port, log, since] => match since.parse::<u64>() {
            Ok(s) => verify(addr, port, Path::new(log), s),
            Err(_) => Err(format!("bad SINCE_MS {since:?}")),
        },
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("hapair-records: {e}");
            ExitCode::from(2)
        }
    }
}

fn port_of(port: &str) -> Result<u16, String> {
    port.parse().map_err(|_| format!("bad PORT {port:?}"))
}

/// The service: never returns but on a listening error.
fn serve(file: &Path, port: u16) -> Result<bool, String> {
    let listener =
        TcpListener::bind(("0.0.0.0", port)).map_err(|e| format!("bind :{port}: {e}"))?;
    eprintln!("hapair-records: serving {} on :{port}", file.display());
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        // A thread per connection: the writing client and a `dump` at once. (A test
        // service beside the daemon, which itself runs no thread.)
        let file = file.to_path_buf();
        std::thread::spawn(move || {
            if let Err(e) = serve_one(&file, stream) {
                eprintln!("hapair-records: {e}");
            }
        });
    }
    Ok(true)
}

fn serve_one(file: &Path, stream: TcpStream) -> Result<(), String> {
    let io = |what: &str, e: std::io::Error| format!("{}: {what}: {e}", file.display());
    stream.set_read_timeout(Some(Duration::from_secs(60))).map_err(|e| io("timeout", e))?;
    let mut out = stream.try_clone().map_err(|e| io("clone", e))?;
    let reader = BufReader::new(stream);
    for line in reader.lines() {
        let line = line.map_err(|e| io("read", e))?;
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("append"), Some(n)) if n.parse::<u64>().is_ok() => {
                let mut f = OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(file)
                    .map_err(|e| io("open", e))?;
                f.write_all(format!("{n}\n").as_bytes()).map_err(|e| io("write", e))?;
                // Acknowledged only once it is on the disk (and, under DRBD protocol C, on
                // the peer's disk too).
                f.sync_data().map_err(|e| io("fdatasync", e))?;
                out.write_all(format!("ok {n}\n").as_bytes()).map_err(|e| io("answer", e))?;
            }
            (Some("dump"), None) => {
                let text = std::fs::read_to_string(file).unwrap_or_default();
                out.write_all(text.as_bytes()).map_err(|e| io("dump", e))?;
                out.write_all(b"end\n").map_err(|e| io("dump", e))?;
            }
            _ => out.write_all(b"error\n").map_err(|e| io("answer", e))?,
        }
    }
    Ok(())
}

fn resolve(addr: &str, port: &str) -> Result<SocketAddr, String> {
    let port = port_of(port)?;
    (addr, port)
        .to_socket_addrs()
        .map_err(|e| format!("{addr}: {e}"))?
        .next()
        .ok_or(format!("{addr}: no address"))
}

/// One connection with short time-outs: a failover shows as a failed connect or read.
fn connect(to: SocketAddr) -> Option<(TcpStream, BufReader<TcpStream>)> {
    let stream = TcpStream::connect_timeout(&to, Duration::from_millis(300)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream.set_write_timeout(Some(Duration::from_secs(2))).ok()?;
    stream.set_nodelay(true).ok()?;
    let reader = BufReader::new(stream.try_clone().ok()?);
    Some((stream, reader))
}

fn client(addr: &str, port: &str, log: &Path, run_for: Option<Duration>) -> Result<bool, String> {
    let to = resolve(addr, port)?;
    let mut out = OpenOptions::new()
        .append(true)
        .create(true)
        .open(log)
        .map_err(|e| format!("{}: {e}", log.display()))?;
    let stop = log.with_extension("stop");
    let start = Instant::now();
    let mut conn = None;
    let mut next = std::fs::read_to_string(log)
        .ok()
        .and_then(|t| {
            t.lines().filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok()).max()
        })
        .map_or(1, |n| n + 1);
    let mut line = String::new();
    loop {
        if run_for.is_some_and(|d| start.elapsed() >= d) || stop.exists() {
            return Ok(true);
        }
        let Some((stream, reader)) = conn.as_mut() else {
            conn = connect(to);
            if conn.is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
            continue;
        };
        line.clear();
        let sent = stream.write_all(format!("append {next}\n").as_bytes());
        let read = sent.and_then(|()| reader.read_line(&mut line));
        if matches!(read, Ok(n) if n > 0) && line.trim() == format!("ok {next}") {
            let ms = epoch_ms();
            writeln!(out, "{next} {ms}").map_err(|e| format!("{}: {e}", log.display()))?;
            next += 1;
        } else {
            // Sent again on the next connection: it may be there twice, never lost.
            conn = None;
        }
    }
}

/// Milliseconds since the Unix epoch: the test script's clock too.
fn epoch_ms() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

fn verify(addr: &str, port: &str, log: &Path, since: u64) -> Result<bool, String> {
    let text = std::fs::read_to_string(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut acked = Vec::new();
    let mut before = 0usize;
    let mut gap = 0u64;
    let mut last_ms: Option<u64> = None;
    for l in text.lines() {
        let mut w = l.split_whitespace();
        let (Some(Ok(n)), Some(Ok(ms))) =
            (w.next().map(str::parse::<u64>), w.next().map(str::parse::<u64>))
        else {
            continue;
        };
        acked.push(n);
        if ms < since {
            before += 1;
        } else if let Some(prev) = last_ms {
            // The gap that spans SINCE counts: the fault fell in it.
            gap = gap.max(ms.saturating_sub(prev));
        }
        last_ms = Some(ms);
    }
    let to = resolve(addr, port)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let found = loop {
        match dump(to) {
            Ok(found) => break found,
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    let lost: Vec<u64> = acked.iter().copied().filter(|n| !found.contains(n)).collect();
    let (a, f, l) = (acked.len(), found.len(), lost.len());
    println!("acked {a} before {before} found {f} lost {l} longest_gap_ms {gap}");
    if !lost.is_empty() {
        let shown: Vec<String> = lost.iter().take(20).map(u64::to_string).collect();
        println!("lost records: {}", shown.join(" "));
    }
    Ok(lost.is_empty())
}

fn dump(to: SocketAddr) -> Result<BTreeSet<u64>, String> {
    let (mut stream, mut reader) = connect(to).ok_or(format!("{to}: cannot connect"))?;
    stream.write_all(b"dump\n").map_err(|e| format!("{to}: {e}"))?;
    let mut found = BTreeSet::new();
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return Err(format!("{to}: dump ended early")),
            Ok(_) if line.trim() == "end" => return Ok(found),
            Ok(_) => {
                if let Ok(n) = line.trim().parse() {
                    found.insert(n);
                }
            }
        }
    }
}
