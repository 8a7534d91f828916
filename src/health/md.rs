//! The md RAID verdict: what an array's members mean for the node (SPEC §2 `raid`: degraded or
//! failed md arrays make the node unhealthy). Pure: `drivers::mdstat` reads and parses
//! /proc/mdstat and hands each array's facts here.
//!
//! Rules:
//! - `inactive` when the array is not running (no personality printed). External-metadata
//!   containers (`super external:imsm`) are always inactive and are not a problem.
//! - With a `[raid_disks/up]` count: `clean` when every disk is up; `failed` when fewer are up
//!   than the level needs (raid1 and multipath: 1, raid4/5: n-1, raid6: n-2, raid10:
//!   n/copies rounded up, copies 2 when not printed; raid0, linear and others: all);
//!   `degraded` when some but not too many are missing.
//! - Without one (raid0, linear and others print none): a member marked `(F)` fails raid0,
//!   linear and unknown personalities and degrades the rest; none marked leaves it `clean`.
//! - Degraded, failed and inactive (not a container) arrays make the node unhealthy. The
//!   reason names the array and its state, not live progress (status shows that):
//!   `md0 degraded [U_]`, `md2 failed (raid0)`, `md127 inactive`.
//!
//! No I/O, no allocation.

use super::Reasons;

/// A RAID level (the md personality).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Level {
    /// `linear`: concatenation.
    Linear,
    /// `raid0`: striping.
    Raid0,
    /// `raid1`: mirroring.
    Raid1,
    /// `raid4`: dedicated parity.
    Raid4,
    /// `raid5`: distributed parity.
    Raid5,
    /// `raid6`: double parity.
    Raid6,
    /// `raid10`: striped mirrors.
    Raid10,
    /// `multipath`: one device, several paths.
    Multipath,
    /// Another personality (`faulty`, ...), or none printed (inactive arrays).
    Other,
}

impl Level {
    /// The personality name as md prints it (`other` for anything else).
    pub const fn name(self) -> &'static str {
        match self {
            Level::Linear => "linear",
            Level::Raid0 => "raid0",
            Level::Raid1 => "raid1",
            Level::Raid4 => "raid4",
            Level::Raid5 => "raid5",
            Level::Raid6 => "raid6",
            Level::Raid10 => "raid10",
            Level::Multipath => "multipath",
            Level::Other => "other",
        }
    }

    /// How many of `total` raid disks must be up for the array to run; `copies` is raid10's
    /// (2 when not printed, at least 1).
    pub fn members_needed(self, total: u8, copies: Option<u8>) -> u8 {
        match self {
            Level::Raid1 | Level::Multipath => 1,
            Level::Raid4 | Level::Raid5 => total.saturating_sub(1),
            Level::Raid6 => total.saturating_sub(2),
            Level::Raid10 => total.div_ceil(copies.unwrap_or(2).max(1)),
            Level::Linear | Level::Raid0 | Level::Other => total,
        }
    }
}

/// What an array's state means for the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArrayState {
    /// Every member up.
    Clean,
    /// Running without full redundancy.
    Degraded,
    /// Fewer members than the level needs: data is lost or unreachable.
    Failed,
    /// Assembled but not running.
    Inactive,
}

impl ArrayState {
    /// `clean`, `degraded`, `failed`, `inactive`.
    pub const fn name(self) -> &'static str {
        match self {
            ArrayState::Clean => "clean",
            ArrayState::Degraded => "degraded",
            ArrayState::Failed => "failed",
            ArrayState::Inactive => "inactive",
        }
    }
}

/// What /proc/mdstat says of one array, as far as the verdict needs it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// The personality; `None` when the array is not running.
    pub level: Option<Level>,
    /// `[n/m]`: raid disks the array should have and raid disks in sync.
    pub disks: Option<(u8, u8)>,
    /// Members marked `(F)`.
    pub failed: u8,
    /// raid10 copies, when printed.
    pub copies: Option<u8>,
    /// A metadata container (never running, never a problem).
    pub container: bool,
}

/// The state of an array (see the module doc).
pub fn judge(f: &Facts) -> ArrayState {
    let Some(level) = f.level else { return ArrayState::Inactive };
    match f.disks {
        Some((total, up)) if up >= total => ArrayState::Clean,
        Some((total, up)) if up < level.members_needed(total, f.copies) => ArrayState::Failed,
        Some(_) => ArrayState::Degraded,
        None if f.failed == 0 => ArrayState::Clean,
        None => match level {
            Level::Raid0 | Level::Linear | Level::Other => ArrayState::Failed,
            _ => ArrayState::Degraded,
        },
    }
}

/// True when an array in `state` makes the node unhealthy (`container`: a metadata
/// container, inactive by nature).
pub const fn is_unhealthy(state: ArrayState, container: bool) -> bool {
    match state {
        ArrayState::Clean => false,
        ArrayState::Inactive => !container,
        ArrayState::Degraded | ArrayState::Failed => true,
    }
}

/// Appends the reason for an unhealthy array `name` in `state`: with its member `map`
/// (`[U_]`) when it has one, else its level.
pub fn reason(
    reasons: &mut Reasons,
    name: &str,
    state: ArrayState,
    map: &str,
    level: Option<Level>,
) {
    let state = state.name();
    if !map.is_empty() {
        reasons.push(format_args!("{name} {state} [{map}]"));
    } else if let Some(level) = level {
        reasons.push(format_args!("{name} {state} ({})", level.name()));
    } else {
        reasons.push(format_args!("{name} {state}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(level: Level, disks: Option<(u8, u8)>, failed: u8) -> Facts {
        Facts { level: Some(level), disks, failed, copies: None, container: false }
    }

    #[test]
    fn each_level_fails_below_what_it_needs() {
        use ArrayState::*;
        let cases = [
            (Level::Raid1, (2, 2), Clean),
            (Level::Raid1, (2, 1), Degraded),
            (Level::Raid1, (3, 1), Degraded),
            (Level::Raid1, (2, 0), Failed),
            (Level::Raid5, (3, 2), Degraded),
            (Level::Raid5, (3, 1), Failed),
            (Level::Raid4, (4, 3), Degraded),
            (Level::Raid6, (4, 2), Degraded),
            (Level::Raid6, (4, 1), Failed),
            (Level::Raid10, (4, 2), Degraded),
            (Level::Raid10, (4, 1), Failed),
            (Level::Raid10, (5, 3), Degraded),
            (Level::Raid10, (5, 2), Failed),
            (Level::Raid0, (2, 1), Failed),
            (Level::Linear, (2, 1), Failed),
            (Level::Multipath, (2, 1), Degraded),
            (Level::Other, (2, 1), Failed),
            // More up than listed (md counts a replacement twice while it syncs): clean.
            (Level::Raid1, (2, 3), Clean),
        ];
        for (level, disks, want) in cases {
            assert_eq!(judge(&facts(level, Some(disks), 0)), want, "{level:?} {disks:?}");
        }
        // raid10 with 3 copies needs a third of its disks.
        let three = Facts { copies: Some(3), ..facts(Level::Raid10, Some((6, 2)), 0) };
        assert_eq!(judge(&three), ArrayState::Degraded);
        let zero = Facts { copies: Some(0), ..facts(Level::Raid10, Some((4, 3)), 0) };
        assert_eq!(judge(&zero), ArrayState::Failed, "copies 0 is taken as 1: all needed");
    }

    #[test]
    fn without_a_count_a_failed_member_decides() {
        assert_eq!(judge(&facts(Level::Raid0, None, 0)), ArrayState::Clean);
        assert_eq!(judge(&facts(Level::Raid0, None, 1)), ArrayState::Failed);
        assert_eq!(judge(&facts(Level::Linear, None, 1)), ArrayState::Failed);
        assert_eq!(judge(&facts(Level::Raid1, None, 1)), ArrayState::Degraded);
        assert_eq!(judge(&Facts::default()), ArrayState::Inactive, "no personality");
    }

    #[test]
    fn only_clean_arrays_and_containers_are_healthy() {
        assert!(!is_unhealthy(ArrayState::Clean, false));
        assert!(is_unhealthy(ArrayState::Degraded, false));
        assert!(is_unhealthy(ArrayState::Failed, true));
        assert!(is_unhealthy(ArrayState::Inactive, false));
        assert!(!is_unhealthy(ArrayState::Inactive, true), "a container");
    }

    #[test]
    fn reasons_name_the_array_its_state_and_its_map_or_level() {
        let mut r = Reasons::new();
        reason(&mut r, "md0", ArrayState::Degraded, "U_", Some(Level::Raid1));
        reason(&mut r, "md2", ArrayState::Failed, "", Some(Level::Raid0));
        reason(&mut r, "md127", ArrayState::Inactive, "", None);
        let got: Vec<&str> = r.iter().collect();
        assert_eq!(got, ["md0 degraded [U_]", "md2 failed (raid0)", "md127 inactive"]);
    }
}
