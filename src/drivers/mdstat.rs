//! md RAID: reads /proc/mdstat and parses every form the md driver prints (drivers/md/md.c
//! `md_seq_show`, `status_resync` and the personalities' status functions):
//!
//! ```text
//! Personalities : [raid1] [raid6] [raid5] [raid4] [raid0] [raid10] [linear]
//! md1 : active raid5 sdd1[3] sdc1[1] sdb1[0] sde1[4](S) sdf1[5](F)
//!       3906764800 blocks super 1.2 level 5, 512k chunk, algorithm 2 [3/2] [UU_]
//!       [==>..................]  recovery = 12.6% (24623/195338) finish=1.6min speed=182826K/sec
//!       bitmap: 2/15 pages [8KB], 65536KB chunk
//!
//! md0 : active (auto-read-only) raid1 sdb1[1](W) sda1[0]
//!       1953382400 blocks super 1.2 [2/2] [UU]
//!           resync=PENDING
//!
//! md127 : inactive sdg1[0](S)
//!       976630488 blocks super 1.2
//!
//! unused devices: <none>
//! ```
//!
//! An array header is `NAME : [in]active [(read-only)|(auto-read-only)] [PERSONALITY]
//! MEMBER[N][(W)][(F)|(S)][(R)]...`; the next indented line has the size, superblock and the
//! personality's status (`[raid_disks/up] [U_...]` for raid1/4/5/6/10, `level, chunk,
//! algorithm` for raid4/5/6, `K chunks` and `near-copies` for raid0/raid10, `rounding` for
//! linear); then an optional progress line (`resync`, `recovery`, `check` or `reshape`, or
//! `resync=DELAYED`/`resync=PENDING`) and an optional `bitmap:` line.
//!
//! What an array's members mean for the node (clean, degraded, failed, inactive, and which
//! of those are unhealthy) is `health::md`; this file reads and parses, and hands each
//! array's facts there.
//!
//! The parser is pure and never panics: unknown lines and tokens are skipped, numbers that do
//! not parse are left out. Reading the file is the only I/O here; it reuses one fd and one
//! buffer, so it does not allocate after `open`.

use crate::health::Reasons;
use crate::health::md::{self, Facts};
pub use crate::health::md::{ArrayState, Level};
use crate::limits::RAID_ARRAYS_MAX;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The default path.
pub const MDSTAT_PATH: &str = "/proc/mdstat";
/// Bytes of /proc/mdstat read; the rest is ignored (16 arrays take about 5 KiB).
pub const MDSTAT_LEN_MAX: usize = 16 * 1024;

/// The personality a word of the header names, `None` for a word that names none.
fn parse_level(word: &str) -> Option<Level> {
    Some(match word {
        "linear" => Level::Linear,
        "raid0" => Level::Raid0,
        "raid1" => Level::Raid1,
        "raid4" => Level::Raid4,
        "raid5" => Level::Raid5,
        "raid6" => Level::Raid6,
        "raid10" => Level::Raid10,
        "multipath" => Level::Multipath,
        "faulty" => Level::Other,
        _ => return None,
    })
}

/// Which background operation a progress line reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProgressKind {
    /// Initial or unclean-shutdown resync.
    Resync,
    /// Rebuilding onto a new member.
    Recovery,
    /// Scrub (`check` or `repair` through sync_action).
    Check,
    /// Changing level, layout or member count.
    Reshape,
}

impl ProgressKind {
    /// The word md prints.
    pub const fn name(self) -> &'static str {
        match self {
            ProgressKind::Resync => "resync",
            ProgressKind::Recovery => "recovery",
            ProgressKind::Check => "check",
            ProgressKind::Reshape => "reshape",
        }
    }
}

/// A background operation on an array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sync {
    /// Running: kind, done in tenths of a percent, estimated minutes left in tenths, speed.
    Running {
        /// What is running.
        kind: ProgressKind,
        /// Done, in tenths of a percent (0..=1000).
        permille: u16,
        /// `finish=` in tenths of a minute.
        finish_tenth_min: Option<u32>,
        /// `speed=` in KiB/s.
        speed_kib_s: Option<u32>,
    },
    /// `resync=DELAYED`: waiting for another array on the same disks.
    Delayed,
    /// `resync=PENDING`: waiting for the array to be written (auto-read-only).
    Pending,
}

/// Read-only flags of a running array.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadOnly {
    /// Read-write.
    #[default]
    No,
    /// `(read-only)`.
    ReadOnly,
    /// `(auto-read-only)`: read-write on first write.
    AutoReadOnly,
}

/// One md array.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MdArray {
    /// `md0`, `md127`, `md_d0` (cut at 16 bytes).
    pub name: heapless::String<16>,
    /// The personality; `None` for an inactive array.
    pub level: Option<Level>,
    /// The state derived from the rest (`health::md::judge`).
    pub state: Option<ArrayState>,
    /// `(read-only)` or `(auto-read-only)`.
    pub read_only: ReadOnly,
    /// Members listed on the header line.
    pub listed: u8,
    /// Members marked `(F)`.
    pub failed: u8,
    /// Members marked `(S)`.
    pub spares: u8,
    /// Members marked `(W)`.
    pub write_mostly: u8,
    /// Members marked `(R)`.
    pub replacements: u8,
    /// `[n/m]`: raid disks the array should have.
    pub raid_disks: Option<u8>,
    /// `[n/m]`: raid disks in sync.
    pub up: Option<u8>,
    /// `[UU_]`, without the brackets (cut at 32).
    pub map: heapless::String<32>,
    /// Size in KiB blocks.
    pub blocks: Option<u64>,
    /// Chunk size in KiB (`512k chunk` or `512K chunks`).
    pub chunk_kib: Option<u32>,
    /// raid10 copies (`2 near-copies`, `far-copies`, `offset-copies`).
    pub copies: Option<u8>,
    /// `super external:imsm` without a `/`: a metadata container, never running.
    pub container: bool,
    /// A running resync/recovery/check/reshape, or a delayed/pending one.
    pub sync: Option<Sync>,
    /// `bitmap: used/total pages`.
    pub bitmap_pages: Option<(u32, u32)>,
}

impl MdArray {
    /// The state of the array (`Clean` while it was not computed).
    pub fn state(&self) -> ArrayState {
        self.state.unwrap_or(ArrayState::Clean)
    }

    /// True when this array makes the node unhealthy (`health::md::is_unhealthy`).
    pub fn is_unhealthy(&self) -> bool {
        md::is_unhealthy(self.state(), self.container)
    }

    /// What the verdict needs to know of the array.
    pub fn facts(&self) -> Facts {
        Facts {
            level: self.level,
            disks: self.raid_disks.zip(self.up),
            failed: self.failed,
            copies: self.copies,
            container: self.container,
        }
    }
}

/// Everything /proc/mdstat said.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MdStat {
    /// The arrays, in file order.
    pub arrays: heapless::Vec<MdArray, RAID_ARRAYS_MAX>,
    /// Arrays past `RAID_ARRAYS_MAX`, not kept.
    pub dropped: u16,
    /// A `Personalities :` line was seen (a real mdstat always has one).
    pub has_personalities: bool,
}

impl MdStat {
    /// Parses the text of /proc/mdstat. Never fails: what it does not understand it skips.
    pub fn parse(text: &str) -> MdStat {
        let mut out = MdStat::default();
        let mut current: Option<MdArray> = None;
        for line in text.lines() {
            if line.starts_with(char::is_whitespace) {
                if let Some(a) = current.as_mut() {
                    parse_detail(a, line.trim());
                }
                continue;
            }
            out.finish(current.take());
            if line.starts_with("Personalities") {
                out.has_personalities = true;
            } else if let Some((name, rest)) = line.split_once(" : ") {
                current = parse_header(name.trim(), rest);
            }
        }
        out.finish(current);
        out
    }

    /// Parses raw bytes, stopping at the first byte that is not UTF-8.
    pub fn parse_bytes(bytes: &[u8]) -> MdStat {
        let text = match core::str::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => core::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or(""),
        };
        MdStat::parse(text)
    }

    fn finish(&mut self, array: Option<MdArray>) {
        if let Some(mut a) = array {
            a.state = Some(md::judge(&a.facts()));
            if self.arrays.push(a).is_err() {
                self.dropped = self.dropped.saturating_add(1);
            }
        }
    }

    /// True when no array makes the node unhealthy.
    pub fn is_healthy(&self) -> bool {
        !self.arrays.iter().any(MdArray::is_unhealthy)
    }

    /// Appends one reason per unhealthy array: `md0 degraded [U_]`, `md2 failed (raid0)`,
    /// `md127 inactive`. Progress is not part of the reason (status shows it).
    pub fn reasons(&self, reasons: &mut Reasons) {
        for a in self.arrays.iter().filter(|a| a.is_unhealthy()) {
            md::reason(reasons, &a.name, a.state(), &a.map, a.level);
        }
    }
}

fn parse_header(name: &str, rest: &str) -> Option<MdArray> {
    let mut words = rest.split_whitespace().peekable();
    let mut a = MdArray::default();
    for c in name.chars() {
        if a.name.push(c).is_err() {
            break;
        }
    }
    let active = match words.next()? {
        "active" => true,
        "inactive" => false,
        _ => return None,
    };
    while let Some(&w) = words.peek() {
        match w {
            "(read-only)" => a.read_only = ReadOnly::ReadOnly,
            "(auto-read-only)" => a.read_only = ReadOnly::AutoReadOnly,
            _ => break,
        }
        words.next();
    }
    if active {
        // A running array always names its personality; an unknown one is still running.
        a.level = Some(words.peek().and_then(|w| parse_level(w)).unwrap_or(Level::Other));
        if words.peek().is_some_and(|w| !w.contains('[')) {
            words.next();
        }
    }
    for member in words {
        parse_member(&mut a, member);
    }
    Some(a)
}

fn parse_member(a: &mut MdArray, token: &str) {
    let Some((_, flags)) = token.split_once('[') else { return };
    a.listed = a.listed.saturating_add(1);
    let bump = |n: &mut u8| *n = n.saturating_add(1);
    if flags.contains("(F)") {
        bump(&mut a.failed);
    }
    if flags.contains("(S)") {
        bump(&mut a.spares);
    }
    if flags.contains("(W)") {
        bump(&mut a.write_mostly);
    }
    if flags.contains("(R)") {
        bump(&mut a.replacements);
    }
}

fn parse_detail(a: &mut MdArray, line: &str) {
    if let Some(bitmap) = line.strip_prefix("bitmap:") {
        a.bitmap_pages = parse_bitmap(bitmap);
    } else if line.contains("resync=DELAYED") {
        a.sync = Some(Sync::Delayed);
    } else if line.contains("resync=PENDING") {
        a.sync = Some(Sync::Pending);
    } else if let Some(sync) = parse_progress(line) {
        a.sync = Some(sync);
    } else if line.contains(" blocks") {
        parse_status(a, line);
    }
}

fn parse_status(a: &mut MdArray, line: &str) {
    let words: heapless::Vec<&str, 32> = line.split_whitespace().take(32).collect();
    for (i, &w) in words.iter().enumerate() {
        let prev = i.checked_sub(1).and_then(|p| words.get(p)).copied().unwrap_or("");
        match w {
            "blocks" => a.blocks = prev.parse().ok(),
            "chunk" | "chunk," | "chunks" => a.chunk_kib = parse_kib(prev),
            "near-copies" | "far-copies" | "offset-copies" => a.copies = prev.parse().ok(),
            _ if w.starts_with("external:") => a.container = !w.contains('/'),
            _ if w.starts_with('[') && w.ends_with(']') && w.len() >= 2 => {
                bracket(a, &w[1..w.len() - 1]);
            }
            _ => {}
        }
    }
}

fn bracket(a: &mut MdArray, inner: &str) {
    if let Some((n, m)) = inner.split_once('/') {
        if let (Ok(n), Ok(m)) = (n.parse(), m.parse()) {
            a.raid_disks = Some(n);
            a.up = Some(m);
        }
    } else if !inner.is_empty() && inner.bytes().all(|b| b == b'U' || b == b'_') {
        a.map.clear();
        for c in inner.chars().take(a.map.capacity()) {
            // Cannot fail: at most `capacity` characters, all ASCII.
            let _ = a.map.push(c);
        }
    }
}

fn parse_kib(word: &str) -> Option<u32> {
    word.strip_suffix(['k', 'K']).and_then(|n| n.parse().ok())
}

fn parse_progress(line: &str) -> Option<Sync> {
    // The bar (`[==>....]`) comes first and is made of '=': skip it before looking for ours.
    let rest = if line.starts_with('[') { line.split_once(']')?.1 } else { line };
    let rest = rest.trim_start();
    let word_len = rest.find(|c: char| c.is_whitespace() || c == '=')?;
    let kind = match &rest[..word_len] {
        "resync" => ProgressKind::Resync,
        "recovery" => ProgressKind::Recovery,
        "check" => ProgressKind::Check,
        "reshape" => ProgressKind::Reshape,
        _ => return None,
    };
    let after = rest[word_len..].trim_start().strip_prefix('=')?;
    let percent = after.split_whitespace().next()?.strip_suffix('%')?;
    let (whole, tenth) = percent.split_once('.').unwrap_or((percent, "0"));
    let permille = whole.parse::<u16>().ok()?.checked_mul(10)?.checked_add(tenth.parse().ok()?)?;
    let mut finish_tenth_min = None;
    let mut speed_kib_s = None;
    for w in line.split_whitespace() {
        if let Some(f) = w.strip_prefix("finish=").and_then(|f| f.strip_suffix("min")) {
            let (m, t) = f.split_once('.').unwrap_or((f, "0"));
            finish_tenth_min = m
                .parse::<u32>()
                .ok()
                .zip(t.parse::<u32>().ok())
                .map(|(m, t)| m.saturating_mul(10).saturating_add(t));
        } else if let Some(s) = w.strip_prefix("speed=").and_then(|s| s.strip_suffix("K/sec")) {
            speed_kib_s = s.parse().ok();
        }
    }
    Some(Sync::Running { kind, permille: permille.min(1000), finish_tenth_min, speed_kib_s })
}

fn parse_bitmap(text: &str) -> Option<(u32, u32)> {
    let first = text.split_whitespace().next()?;
    let (used, total) = first.split_once('/')?;
    Some((used.parse().ok()?, total.parse().ok()?))
}

/// The open /proc/mdstat, re-read from offset 0 at each `read`.
pub struct MdStatReader {
    file: File,
    buf: Box<[u8; MDSTAT_LEN_MAX]>,
    last: MdStat,
}

impl MdStatReader {
    /// Opens the file (normally `MDSTAT_PATH`) and allocates the read buffer.
    pub fn open(path: &Path) -> io::Result<MdStatReader> {
        let file = File::open(path)?;
        Ok(MdStatReader { file, buf: Box::new([0; MDSTAT_LEN_MAX]), last: MdStat::default() })
    }

    /// Reads and parses the file again; the result stays available as `last`.
    pub fn read(&mut self) -> io::Result<&MdStat> {
        let mut len = 0;
        while len < self.buf.len() {
            match self.file.read_at(&mut self.buf[len..], len as u64) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.last = MdStat::parse_bytes(&self.buf[..len]);
        Ok(&self.last)
    }

    /// The result of the last successful `read`.
    pub fn last(&self) -> &MdStat {
        &self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_with_flags_and_read_only() {
        let s = MdStat::parse(
            "Personalities : [raid1]\nmd0 : active (read-only) raid1 sdc1[2](W)(R) sdb1[1](F) \
             sda1[0]\n      100 blocks [2/1] [U_]\n",
        );
        let a = &s.arrays[0];
        assert!(s.has_personalities);
        assert_eq!((a.listed, a.failed, a.write_mostly, a.replacements), (3, 1, 1, 1));
        assert_eq!(a.read_only, ReadOnly::ReadOnly);
        assert_eq!(a.state(), ArrayState::Degraded);
    }

    #[test]
    fn progress_parses_percent_finish_speed() {
        let line = "[=>...................]  check =  5.4% (1/2) finish=155.6min speed=1826K/sec";
        assert_eq!(
            parse_progress(line),
            Some(Sync::Running {
                kind: ProgressKind::Check,
                permille: 54,
                finish_tenth_min: Some(1556),
                speed_kib_s: Some(1826),
            })
        );
        assert_eq!(parse_progress("[>..]  bogus = 1.0%"), None);
        assert!(parse_progress("recovery =100.0% (2/2)").is_some());
    }

    #[test]
    fn garbage_is_skipped() {
        let s = MdStat::parse("md0 : \n : active\nmdX : active raid1 a[\n  [9999/1] [x]\n");
        assert_eq!(s.arrays.len(), 1);
        assert_eq!(s.arrays[0].raid_disks, None);
    }
}
