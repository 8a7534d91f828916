//! /proc/mdstat parsing on fixtures reconstructed from the md driver's output format
//! (tests/fixtures/mdstat), the reader on a real file and on the kernel's own (or, where md
//! is absent, on a fixture, never passing without a check), and a property test that no
//! input makes the parser panic.

use crate::common::TempDir;
use hapair::drivers::mdstat::{
    ArrayState, Level, MdArray, MdStat, MdStatReader, ProgressKind, ReadOnly, Sync,
};
use hapair::health::Reasons;
use hapair::limits::RAID_ARRAYS_MAX;
use proptest::prelude::*;
use std::path::{Path, PathBuf};

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mdstat").join(name)
}

fn fixture(name: &str) -> MdStat {
    let text = std::fs::read_to_string(fixture_path(name)).unwrap();
    let stat = MdStat::parse(&text);
    assert!(stat.has_personalities, "{name}");
    stat
}

fn array<'a>(stat: &'a MdStat, name: &str) -> &'a MdArray {
    stat.arrays.iter().find(|a| a.name == name).unwrap()
}

fn reasons(stat: &MdStat) -> Vec<String> {
    let mut r = Reasons::new();
    stat.reasons(&mut r);
    r.iter().map(str::to_owned).collect()
}

fn running(kind: ProgressKind, permille: u16, finish: u32, speed: u32) -> Option<Sync> {
    Some(Sync::Running { kind, permille, finish_tenth_min: Some(finish), speed_kib_s: Some(speed) })
}

#[test]
fn raid1_clean_with_bitmap_and_old_superblock() {
    let s = fixture("raid1-clean");
    assert_eq!(s.arrays.len(), 2);
    let md0 = array(&s, "md0");
    assert_eq!(md0.level, Some(Level::Raid1));
    assert_eq!(md0.state(), ArrayState::Clean);
    assert_eq!((md0.raid_disks, md0.up, md0.map.as_str()), (Some(2), Some(2), "UU"));
    assert_eq!((md0.listed, md0.failed, md0.spares), (2, 0, 0));
    assert_eq!(md0.blocks, Some(1_953_382_400));
    assert_eq!(md0.bitmap_pages, Some((1, 15)));
    assert_eq!(md0.sync, None);
    assert_eq!(array(&s, "md1").blocks, Some(104_320), "0.90: no super word");
    assert!(s.is_healthy());
    assert!(reasons(&s).is_empty());
}

#[test]
fn raid1_with_failed_member_is_degraded() {
    let s = fixture("raid1-failed-member");
    let md0 = array(&s, "md0");
    assert_eq!((md0.failed, md0.up, md0.state()), (1, Some(1), ArrayState::Degraded));
    assert!(!s.is_healthy());
    assert_eq!(reasons(&s), ["md0 degraded [U_]"]);
}

#[test]
fn raid1_recovery_progress_is_shown() {
    let s = fixture("raid1-recovery");
    let md0 = array(&s, "md0");
    assert_eq!(md0.state(), ArrayState::Degraded);
    assert_eq!(md0.sync, running(ProgressKind::Recovery, 126, 1556, 182_826));
    assert_eq!(md0.bitmap_pages, Some((15, 15)));
    assert_eq!(reasons(&s), ["md0 degraded [U_]"], "progress is not in the reason");
}

#[test]
fn raid5_resync_with_level_chunk_algorithm() {
    let s = fixture("raid5-resync");
    let md2 = array(&s, "md2");
    assert_eq!(md2.level, Some(Level::Raid5));
    assert_eq!(md2.chunk_kib, Some(512));
    assert_eq!((md2.raid_disks, md2.map.as_str()), (Some(3), "UUU"));
    assert_eq!(md2.sync, running(ProgressKind::Resync, 31, 1873, 168_347));
    assert!(s.is_healthy(), "a resync of a complete array is not a problem");
}

#[test]
fn raid5_missing_two_is_failed() {
    let s = fixture("raid5-failed");
    let md2 = array(&s, "md2");
    assert_eq!((md2.failed, md2.up, md2.state()), (2, Some(2), ArrayState::Failed));
    assert_eq!(reasons(&s), ["md2 failed [U__U]"]);
}

#[test]
fn raid6_check_with_a_spare() {
    let s = fixture("raid6-check-spare");
    let md3 = array(&s, "md3");
    assert_eq!(md3.level, Some(Level::Raid6));
    assert_eq!((md3.listed, md3.spares, md3.up), (7, 1, Some(6)));
    assert_eq!(md3.sync, running(ProgressKind::Check, 450, 987, 181_339));
    assert_eq!(md3.bitmap_pages, Some((0, 15)));
    assert!(s.is_healthy());
}

#[test]
fn raid10_near_and_far_copies_and_write_mostly() {
    let s = fixture("raid10-write-mostly");
    let md4 = array(&s, "md4");
    assert_eq!((md4.level, md4.copies, md4.chunk_kib), (Some(Level::Raid10), Some(2), Some(512)));
    assert_eq!(md4.state(), ArrayState::Degraded);
    let md5 = array(&s, "md5");
    assert_eq!((md5.write_mostly, md5.state()), (1, ArrayState::Clean));
    assert_eq!(array(&s, "md6").state(), ArrayState::Degraded, "2 of 4 with 2 copies");
    assert_eq!(reasons(&s), ["md4 degraded [UU_U]", "md6 degraded [_U_U]"]);
}

#[test]
fn raid0_and_linear_have_no_member_map() {
    let s = fixture("raid0-linear");
    let md7 = array(&s, "md7");
    assert_eq!((md7.level, md7.chunk_kib, md7.raid_disks), (Some(Level::Raid0), Some(512), None));
    assert_eq!(md7.state(), ArrayState::Clean);
    let md8 = array(&s, "md8");
    assert_eq!((md8.level, md8.state()), (Some(Level::Linear), ArrayState::Clean));
    let md9 = array(&s, "md9");
    assert_eq!((md9.failed, md9.state()), (1, ArrayState::Failed));
    assert_eq!(reasons(&s), ["md9 failed (raid0)"]);
}

#[test]
fn inactive_arrays_but_not_containers_are_unhealthy() {
    let s = fixture("inactive");
    let md126 = array(&s, "md126");
    assert_eq!((md126.level, md126.state()), (None, ArrayState::Inactive));
    assert!(md126.container && !md126.is_unhealthy());
    let md127 = array(&s, "md127");
    assert_eq!((md127.spares, md127.container), (1, false));
    assert_eq!(md127.blocks, Some(976_630_488));
    assert_eq!(reasons(&s), ["md127 inactive"]);
}

#[test]
fn read_only_pending_and_delayed_resyncs() {
    let s = fixture("resync-pending-delayed");
    let md0 = array(&s, "md0");
    assert_eq!((md0.read_only, md0.level), (ReadOnly::AutoReadOnly, Some(Level::Raid1)));
    assert_eq!(md0.sync, Some(Sync::Pending));
    assert_eq!(array(&s, "md1").sync, Some(Sync::Delayed));
    assert_eq!(array(&s, "md2").sync, running(ProgressKind::Resync, 88, 1711, 173_455));
    assert_eq!(array(&s, "md3").read_only, ReadOnly::ReadOnly);
    assert!(s.is_healthy());
}

#[test]
fn reshape_and_replacement() {
    let s = fixture("reshape-replacement");
    assert_eq!(array(&s, "md2").sync, running(ProgressKind::Reshape, 12, 6123, 52_530));
    let md3 = array(&s, "md3");
    assert_eq!((md3.replacements, md3.listed, md3.state()), (1, 3, ArrayState::Clean));
    assert_eq!(md3.sync, running(ProgressKind::Recovery, 172, 804, 167_592));
    assert!(s.is_healthy());
}

#[test]
fn no_arrays() {
    let s = fixture("empty");
    assert!(s.arrays.is_empty() && s.is_healthy());
}

#[test]
fn reader_rereads_the_file_and_caps_the_array_count() {
    let dir = TempDir::new("mdstat");
    let path = dir.join("mdstat");
    std::fs::copy(fixture_path("raid1-clean"), &path).unwrap();
    let mut reader = MdStatReader::open(&path).unwrap();
    assert!(reader.read().unwrap().is_healthy());
    std::fs::copy(fixture_path("raid1-failed-member"), &path).unwrap();
    assert!(!reader.read().unwrap().is_healthy());
    let mut many = String::from("Personalities : [raid1] \n");
    for i in 0..RAID_ARRAYS_MAX + 3 {
        many.push_str(&format!("md{i} : active raid1 sdb{i}[1] sda{i}[0]\n"));
        many.push_str("      1024 blocks super 1.2 [2/2] [UU]\n      \n");
    }
    std::fs::write(&path, many).unwrap();
    let s = reader.read().unwrap();
    assert_eq!((s.arrays.len(), s.dropped), (RAID_ARRAYS_MAX, 3));
    assert_eq!(reader.last().arrays.len(), RAID_ARRAYS_MAX);
}

/// The reader on the kernel's own /proc/mdstat. Where md is loaded, the kernel's text must
/// parse, with the Personalities line it always writes first. Where it is not (the lab's and
/// CI's kernels have no md, and cannot load it), the test still checks something: opening
/// fails with NotFound and nothing else (a permission or I/O error would be a finding), md is
/// indeed absent, and the same reader, opened the same way, reads a kernel-format fixture.
#[test]
fn the_reader_on_proc_mdstat_parses_it_or_finds_it_absent() {
    match MdStatReader::open(Path::new("/proc/mdstat")) {
        Ok(mut reader) => {
            let s = reader.read().unwrap();
            assert!(s.has_personalities, "/proc/mdstat without its Personalities line");
            eprintln!("/proc/mdstat: {} arrays", s.arrays.len());
        }
        Err(e) => {
            assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "/proc/mdstat: {e}");
            let md = Path::new("/sys/module/md_mod");
            assert!(!md.exists(), "md is loaded, yet /proc/mdstat is not there");
            let mut reader = MdStatReader::open(&fixture_path("raid1-clean")).unwrap();
            let s = reader.read().unwrap();
            assert!(s.has_personalities && s.is_healthy(), "{s:?}");
            let names: Vec<&str> = s.arrays.iter().map(|a| a.name.as_str()).collect();
            assert_eq!(names, ["md0", "md1"], "{s:?}");
        }
    }
}

fn all_fixtures() -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(fixture_path("")).unwrap() {
        text.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    text
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let s = MdStat::parse_bytes(&bytes);
        prop_assert!(s.arrays.len() <= RAID_ARRAYS_MAX);
    }

    #[test]
    fn mangled_fixtures_never_panic(
        cut in 0usize..4096,
        edits in proptest::collection::vec((0usize..4096, any::<char>()), 0..16),
    ) {
        let mut chars: Vec<char> = all_fixtures().chars().collect();
        for (at, c) in edits {
            let at = at % chars.len().max(1);
            if at < chars.len() {
                chars[at] = c;
            }
        }
        chars.truncate(cut.max(1) * 2);
        let text: String = chars.into_iter().collect();
        let s = MdStat::parse(&text);
        for a in &s.arrays {
            if let Some(Sync::Running { permille, .. }) = a.sync {
                prop_assert!(permille <= 1000);
            }
            let mut r = Reasons::new();
            s.reasons(&mut r);
        }
    }
}
