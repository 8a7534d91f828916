//! The stamped logs of the lab tests that run an exec resource and a notify script
//! (tests/daemon/daemon_spec.rs, tests/fence_ipmi.rs): `res.sh` appends
//! `NODE start|stop NAME STAMP [TAG]` to `DIR/marks` (a stop named `*` is a power off, which
//! ends every run of its node), `notify.sh` appends `NODE EVENT STAMP DETAIL` to
//! `DIR/notify.log`. Stamps are CLOCK_BOOTTIME in ns (`uptime_ns`), so the lines of both
//! nodes and of the test itself share one clock. Which runs overlap in time shows whether the
//! group ever ran on both nodes at once.

use std::path::Path;

/// CLOCK_BOOTTIME in nanoseconds: the clock of the scripts' stamps.
pub fn uptime_ns() -> u64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
        .unwrap_or_else(|e| panic!("clock_gettime: {e}"));
    let (s, ns) = (u64::try_from(t.tv_sec()), u64::try_from(t.tv_nsec()));
    s.unwrap_or(0) * 1_000_000_000 + ns.unwrap_or(0)
}

/// One line of the marks file.
#[derive(Clone, Debug)]
pub struct Mark {
    pub node: String,
    pub event: String,
    pub name: String,
    pub at_ns: u64,
}

/// Every line of the marks file `path`, in the order written (none while it does not exist).
pub fn read(path: &Path) -> Vec<Mark> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            Some(Mark {
                node: (*w.first()?).to_owned(),
                event: (*w.get(1)?).to_owned(),
                name: (*w.get(2)?).to_owned(),
                at_ns: w.get(3)?.parse().ok()?,
            })
        })
        .collect()
}

/// Stamps of `node`'s notify events called `event` in the notify log `path`.
pub fn notified(path: &Path, node: &str, event: &str) -> Vec<u64> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let hit = *w.first()? == node && *w.get(1)? == event;
            if hit { w.get(2)?.parse().ok() } else { None }
        })
        .collect()
}

/// The runs in `marks`: per node and resource, [start, stop) in ns; a stop named `*` (a power
/// off, the fence's) ends every open run of its node; a run never stopped lasts until
/// `u64::MAX`.
pub fn runs(marks: &[Mark]) -> Vec<(String, String, u64, u64)> {
    let mut out: Vec<(String, String, u64, u64)> = Vec::new();
    for m in marks {
        match m.event.as_str() {
            "start" => out.push((m.node.clone(), m.name.clone(), m.at_ns, u64::MAX)),
            "stop" => {
                for r in out.iter_mut().filter(|r| r.0 == m.node && r.3 == u64::MAX) {
                    if m.name == "*" || r.1 == m.name {
                        r.3 = m.at_ns;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// Every two runs of different nodes that overlap in time.
pub fn overlaps(marks: &[Mark]) -> Vec<String> {
    let runs = runs(marks);
    let mut bad = Vec::new();
    for (i, a) in runs.iter().enumerate() {
        for b in &runs[i + 1..] {
            if a.0 != b.0 && a.2 < b.3 && b.2 < a.3 {
                bad.push(format!("{a:?} and {b:?}"));
            }
        }
    }
    bad
}

/// Nanoseconds in whole milliseconds, for bounds and messages.
pub fn ms(ns: u64) -> u64 {
    ns / 1_000_000
}
