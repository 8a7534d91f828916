//! The kernel's error counters (SPEC §7.6), read from sysfs exactly as the kernel lays them
//! out; the judging (window, resets, wraps) is `health::errors`.
//!
//! - `edac`: `ROOT/devices/system/edac/mc/mc<N>/ce_count` and `ue_count` (decimal, u32;
//!   drivers/edac/edac_mc_sysfs.c), summed over every controller found at open. `ce_count`
//!   already includes the corrected errors without location (`ce_noinfo_count`).
//! - `net IF`: `ROOT/class/net/IF/statistics/rx_errors` plus `tx_errors` (decimal, u64;
//!   net/core/net-sysfs.c). The detailed counters (`rx_crc_errors`, `rx_frame_errors`,
//!   `rx_length_errors`, `rx_over_errors`, `rx_fifo_errors`, `rx_missed_errors`,
//!   `tx_aborted_errors`, `tx_carrier_errors`, ...) are breakdowns that the drivers also add to
//!   `rx_errors`/`tx_errors` (include/uapi/linux/if_link.h), so summing them would count
//!   errors twice; they are not read.
//! - `disk DEV`: `ROOT/block/DEV/device/ioerr_cnt`, which the SCSI layer writes as `0x%x`
//!   (drivers/scsi/scsi_sysfs.c; an atomic_t, so 32 bits). Other block devices (NVMe,
//!   virtio-blk, md) keep no I/O error counter in sysfs (`stat` counts no errors): for them
//!   the source reads as unreadable ("counters unreadable"), which `status` shows and which
//!   makes the node unhealthy, so that a line that cannot work is not silently healthy.
//!
//! Paths are built once at open; each read opens, `pread`s into a stack buffer and closes
//! every file again (std opens short paths through a stack buffer), so a read allocates
//! nothing and a vanished device shows as ENOENT rather than as a stale descriptor. A missing
//! counter file under a device directory that is still there is "unreadable"; a missing
//! device directory is "gone".

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::config::Errors;
use crate::core::time::Instant;
use crate::health::errors::{ErrorJudge, ErrorKind, Sample, Verdict};

/// Memory controllers summed for `errors edac`; more are ignored.
pub const EDAC_MCS_MAX: usize = 16;

/// One `errors` line: its files and its judge.
pub struct ErrorSource {
    /// The line as configured.
    pub line: Errors,
    /// The judgement so far.
    pub judge: ErrorJudge,
    /// The directory whose absence means the device is gone.
    device_dir: PathBuf,
    /// Files whose values are summed into the count.
    count_files: Vec<PathBuf>,
    /// EDAC's `ue_count` files.
    ue_files: Vec<PathBuf>,
}

impl ErrorSource {
    /// Builds the paths of `line` (and, for EDAC, finds the controllers). Never fails: a
    /// source whose files are missing reads as gone or unreadable.
    pub fn open(line: &Errors) -> ErrorSource {
        let root = &line.root;
        let (device_dir, count_files, ue_files) = match line.kind {
            ErrorKind::Edac => {
                let dir = root.join("devices/system/edac/mc");
                let mcs = controllers(&dir);
                let ce = mcs.iter().map(|m| m.join("ce_count")).collect();
                let ue = mcs.iter().map(|m| m.join("ue_count")).collect();
                (dir, ce, ue)
            }
            ErrorKind::Net => {
                let dir = root.join("class/net").join(&line.name);
                let stats = dir.join("statistics");
                (dir, vec![stats.join("rx_errors"), stats.join("tx_errors")], Vec::new())
            }
            ErrorKind::Disk => {
                let dir = root.join("block").join(&line.name);
                let file = dir.join("device/ioerr_cnt");
                (dir, vec![file], Vec::new())
            }
        };
        ErrorSource {
            line: line.clone(),
            judge: ErrorJudge::new(line.kind, line.max, line.window),
            device_dir,
            count_files,
            ue_files,
        }
    }

    /// Reads the counters at `now` and feeds the judge. Allocation-free.
    pub fn read(&mut self, now: Instant) -> Verdict {
        let sample = self.sample();
        self.judge.handle_sample(now, sample)
    }

    fn sample(&self) -> Sample {
        if self.count_files.is_empty() {
            // EDAC without controllers: nothing to watch is as bad as nothing there.
            return if self.device_dir.is_dir() { Sample::Unreadable } else { Sample::Gone };
        }
        let hex = self.line.kind == ErrorKind::Disk;
        let count = sum(&self.count_files, hex);
        let uncorrected = sum(&self.ue_files, false);
        match (count, uncorrected) {
            (Ok(count), Ok(uncorrected)) => Sample::Read { count, uncorrected },
            (Err(e), _) | (_, Err(e)) if e.kind() == io::ErrorKind::NotFound => {
                if self.device_dir.is_dir() { Sample::Unreadable } else { Sample::Gone }
            }
            _ => Sample::Unreadable,
        }
    }
}

/// The `mc<N>` directories under `dir`, in order (at most `EDAC_MCS_MAX`).
fn controllers(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut mcs: Vec<(u32, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name();
            let n = name.to_str()?.strip_prefix("mc")?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    mcs.sort_unstable();
    mcs.truncate(EDAC_MCS_MAX);
    mcs.into_iter().map(|(_, p)| p).collect()
}

/// The sum of the counters in `files`.
fn sum(files: &[PathBuf], hex: bool) -> io::Result<u64> {
    let mut total = 0u64;
    for f in files {
        total = total.wrapping_add(read_counter(f, hex)?);
    }
    Ok(total)
}

/// Reads one counter file: decimal, or `0x`-prefixed hex when `hex`.
fn read_counter(path: &Path, hex: bool) -> io::Result<u64> {
    let file = File::open(path)?;
    let mut buf = [0u8; 32];
    let n = file.read_at(&mut buf, 0)?;
    parse_counter(&buf[..n], hex).ok_or_else(|| io::Error::from(io::ErrorKind::InvalidData))
}

/// Parses `123\n`, or `0x1f\n` when `hex`, without allocating.
pub fn parse_counter(bytes: &[u8], hex: bool) -> Option<u64> {
    let text = core::str::from_utf8(bytes).ok()?.trim();
    if hex {
        let digits = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X"))?;
        u64::from_str_radix(digits, 16).ok()
    } else {
        text.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::time::Duration;
    use crate::testutil::TempDir;

    fn line(kind: ErrorKind, name: &str, root: &Path) -> Errors {
        Errors {
            kind,
            name: name.into(),
            max: 2,
            window: Duration::from_secs(64),
            root: root.into(),
            report: None,
        }
    }

    fn put(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn counters_parse_as_the_kernel_writes_them() {
        assert_eq!(parse_counter(b"42\n", false), Some(42));
        assert_eq!(parse_counter(b"0x1f\n", true), Some(31));
        assert_eq!(parse_counter(b"1f\n", true), None);
        assert_eq!(parse_counter(b"-1\n", false), None);
        assert_eq!(parse_counter(b"18446744073709551615\n", false), Some(u64::MAX));
    }

    #[test]
    fn edac_sums_controllers_and_a_vanished_tree_is_gone() {
        let dir = TempDir::new("errors");
        let mc = dir.path().join("devices/system/edac/mc");
        for (m, ce) in [("mc0", "3\n"), ("mc1", "4\n")] {
            put(&mc.join(m).join("ce_count"), ce);
            put(&mc.join(m).join("ue_count"), "0\n");
        }
        put(&mc.join("power/control"), "auto\n");
        let mut s = ErrorSource::open(&line(ErrorKind::Edac, "", dir.path()));
        assert_eq!(s.read(Instant::from_millis(1000)), Verdict::Ok);
        assert_eq!(s.judge.count(), Some(7));
        put(&mc.join("mc1/ce_count"), "7\n");
        assert_eq!(s.read(Instant::from_millis(3000)), Verdict::OverLimit);
        put(&mc.join("mc0/ue_count"), "1\n");
        assert_eq!(s.read(Instant::from_millis(5000)), Verdict::Uncorrected);
        std::fs::remove_dir_all(&mc).unwrap();
        assert_eq!(s.read(Instant::from_millis(7000)), Verdict::Gone);
    }

    #[test]
    fn net_sums_rx_and_tx_errors_and_disk_reads_hex() {
        let dir = TempDir::new("errors");
        let stats = dir.path().join("class/net/eth1/statistics");
        put(&stats.join("rx_errors"), "5\n");
        put(&stats.join("tx_errors"), "1\n");
        put(&stats.join("rx_crc_errors"), "5\n");
        let mut n = ErrorSource::open(&line(ErrorKind::Net, "eth1", dir.path()));
        n.read(Instant::from_millis(1000));
        assert_eq!(n.judge.count(), Some(6), "rx_crc_errors is part of rx_errors");
        let dev = dir.path().join("block/sda");
        put(&dev.join("device/ioerr_cnt"), "0x10\n");
        let mut d = ErrorSource::open(&line(ErrorKind::Disk, "sda", dir.path()));
        d.read(Instant::from_millis(1000));
        assert_eq!(d.judge.count(), Some(16));
        // No ioerr_cnt under a device that is there (not SCSI): unreadable, not gone.
        std::fs::remove_file(dev.join("device/ioerr_cnt")).unwrap();
        assert_eq!(d.read(Instant::from_millis(2000)), Verdict::Unreadable);
        let mut gone = ErrorSource::open(&line(ErrorKind::Disk, "sdz", dir.path()));
        assert_eq!(gone.read(Instant::from_millis(1000)), Verdict::Gone);
    }
}
