//! DRBD (SPEC §7.5): what hapair judges about a replicated disk, as pure code fed with what
//! the kernel and `drbdadm` printed. Three judgements live here:
//!
//! - **The state of a resource** ([`State`]): role, connection and disk state of both ends,
//!   and the resync's progress, read from `/proc/drbd` (DRBD 8.4, the Debian kernel's
//!   in-tree module; [`parse_proc`]) by the loop every second, and from `drbdadm role` and
//!   `drbdadm dstate` by the agent ([`parse_pair`]).
//! - **Who may promote** ([`may_promote`]): the local disk UpToDate, the peer not Primary. A
//!   node whose disk is not UpToDate is also barred from every group with a `drbd` resource
//!   ([`health_reason`], `Health::DRBD`), so it never takes the group only to fail its start.
//! - **Outdating the peer over the heartbeat links** ([`outdate::Exchange`]): DRBD's
//!   fence-peer handler (`hapair drbd-fence-peer`) asks the local daemon, which asks the
//!   peer in every frame until it answers; the peer outdates its disk only while it is
//!   Secondary (heartbeat's dopd did the same over its links).
//!
//! Nothing here does I/O: `drivers/drbd.rs` runs `drbdadm` (in the agent's process) and reads
//! `/proc/drbd`, `event_loop/drbd.rs` carries the exchange.
#![forbid(unsafe_code)]

pub mod outdate;

use core::fmt;

/// A node's role in a resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Promoted: the device is writable here.
    Primary,
    /// Not promoted.
    Secondary,
    /// Not known (the peer while disconnected, or a resource not up).
    Unknown,
}

impl Role {
    fn parse(word: &str) -> Role {
        match word {
            "Primary" => Role::Primary,
            "Secondary" => Role::Secondary,
            _ => Role::Unknown,
        }
    }

    /// The name DRBD prints.
    pub const fn name(self) -> &'static str {
        match self {
            Role::Primary => "Primary",
            Role::Secondary => "Secondary",
            Role::Unknown => "Unknown",
        }
    }
}

/// A disk state, as DRBD names them (the peer's is `DUnknown` while disconnected).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disk {
    /// No backing disk attached.
    Diskless,
    /// Being attached.
    Attaching,
    /// An I/O error detached it.
    Failed,
    /// Attaching while connecting.
    Negotiating,
    /// Being synchronised, or never synchronised: not usable data.
    Inconsistent,
    /// Consistent but known to be older than the peer's: stale data.
    Outdated,
    /// The peer's disk, unknown while disconnected.
    DUnknown,
    /// Consistent, whether current is not known yet.
    Consistent,
    /// The current data.
    UpToDate,
    /// A name this code does not know, or no resource.
    Unknown,
}

impl Disk {
    fn parse(word: &str) -> Disk {
        match word {
            "Diskless" => Disk::Diskless,
            "Attaching" => Disk::Attaching,
            "Failed" => Disk::Failed,
            "Negotiating" => Disk::Negotiating,
            "Inconsistent" => Disk::Inconsistent,
            "Outdated" => Disk::Outdated,
            "DUnknown" => Disk::DUnknown,
            "Consistent" => Disk::Consistent,
            "UpToDate" => Disk::UpToDate,
            _ => Disk::Unknown,
        }
    }

    /// The name DRBD prints.
    pub const fn name(self) -> &'static str {
        match self {
            Disk::Diskless => "Diskless",
            Disk::Attaching => "Attaching",
            Disk::Failed => "Failed",
            Disk::Negotiating => "Negotiating",
            Disk::Inconsistent => "Inconsistent",
            Disk::Outdated => "Outdated",
            Disk::DUnknown => "DUnknown",
            Disk::Consistent => "Consistent",
            Disk::UpToDate => "UpToDate",
            Disk::Unknown => "Unknown",
        }
    }

    /// Data that may not serve: a node with it must not be promoted.
    pub const fn is_stale(self) -> bool {
        !matches!(self, Disk::UpToDate | Disk::Consistent)
    }
}

/// The connection states DRBD 8.4 prints (`cs:`), and `Unconfigured` for a minor that is not
/// up. Kept as DRBD's own name: `status` shows it as it is.
const CONNECTIONS: [&str; 25] = [
    "StandAlone",
    "Disconnecting",
    "Unconnected",
    "Timeout",
    "BrokenPipe",
    "NetworkFailure",
    "ProtocolError",
    "TearDown",
    "WFConnection",
    "WFReportParams",
    "Connected",
    "StartingSyncS",
    "StartingSyncT",
    "WFBitMapS",
    "WFBitMapT",
    "WFSyncUUID",
    "SyncSource",
    "SyncTarget",
    "PausedSyncS",
    "PausedSyncT",
    "VerifyS",
    "VerifyT",
    "Ahead",
    "Behind",
    "Unconfigured",
];

/// One resource as DRBD reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct State {
    /// The connection state (`cs:`), DRBD's name; `Unknown` for one this code does not know.
    pub connection: &'static str,
    /// This node's role.
    pub role: Role,
    /// The peer's role as this node knows it.
    pub peer_role: Role,
    /// This node's disk.
    pub disk: Disk,
    /// The peer's disk as this node knows it.
    pub peer_disk: Disk,
    /// A resync under way: per mille done (`sync'ed: 23.4%` is 234).
    pub synced_permille: Option<u16>,
}

impl State {
    /// A resource that is not up here (no line for its minor, or `cs:Unconfigured`).
    pub const DOWN: State = State {
        connection: "Unconfigured",
        role: Role::Unknown,
        peer_role: Role::Unknown,
        disk: Disk::Unknown,
        peer_disk: Disk::Unknown,
        synced_permille: None,
    };

    /// True while connected to the peer (a resync and a verify included).
    pub fn connected(&self) -> bool {
        connected_name(self.connection)
    }
}

/// True for a connection state (DRBD's name) in which the two nodes are connected.
pub fn connected_name(connection: &str) -> bool {
    !matches!(
        connection,
        "StandAlone"
            | "Disconnecting"
            | "Unconnected"
            | "Timeout"
            | "BrokenPipe"
            | "NetworkFailure"
            | "ProtocolError"
            | "TearDown"
            | "WFConnection"
            | "Unconfigured"
            | "Unknown"
    )
}

fn connection_name(word: &str) -> &'static str {
    CONNECTIONS.iter().find(|c| **c == word).copied().unwrap_or("Unknown")
}

/// The state of `minor` in the text of `/proc/drbd` (DRBD 8.4): the line ` N: cs:C ro:A/B
/// ds:D/E ...`, and the `sync'ed: P%` line after it during a resync. [`State::DOWN`] when the
/// minor has no line or is `Unconfigured`; `None` when the text is not DRBD 8.4's (no
/// `version: 8.` line: DRBD 9 keeps its state out of `/proc/drbd`).
pub fn parse_proc(text: &str, minor: u32) -> Option<State> {
    if !text.lines().any(|l| l.starts_with("version: 8.")) {
        return None;
    }
    let mut lines = text.lines();
    let mut state = State::DOWN;
    let Some(line) = lines.by_ref().find(|l| minor_of(l) == Some(minor)) else {
        return Some(state);
    };
    for word in line.split_whitespace().skip(1) {
        if let Some(c) = word.strip_prefix("cs:") {
            state.connection = connection_name(c);
        } else if let Some(r) = word.strip_prefix("ro:") {
            (state.role, state.peer_role) = split_pair(r, Role::parse, Role::Unknown);
        } else if let Some(d) = word.strip_prefix("ds:") {
            (state.disk, state.peer_disk) = split_pair(d, Disk::parse, Disk::Unknown);
        }
    }
    for line in lines.take_while(|l| minor_of(l).is_none()) {
        if let Some(rest) = line.split("sync'ed:").nth(1) {
            state.synced_permille = rest.split_whitespace().next().and_then(permille);
        }
    }
    Some(state)
}

/// The minor of a ` N: cs:...` line.
fn minor_of(line: &str) -> Option<u32> {
    let (head, rest) = line.trim_start().split_once(':')?;
    if !rest.trim_start().starts_with("cs:") {
        return None;
    }
    head.parse().ok()
}

/// `23.4%` as 234.
fn permille(word: &str) -> Option<u16> {
    let number = word.strip_suffix('%')?;
    let (whole, frac) = number.split_once('.').unwrap_or((number, "0"));
    let whole: u16 = whole.parse().ok()?;
    let tenth: u16 = frac.get(..1).unwrap_or("0").parse().ok()?;
    (whole <= 100 && tenth <= 9).then(|| (whole * 10 + tenth).min(1000))
}

fn split_pair<T: Copy>(text: &str, parse: fn(&str) -> T, unknown: T) -> (T, T) {
    match text.split_once('/') {
        Some((mine, peer)) => (parse(mine), parse(peer)),
        None => (parse(text), unknown),
    }
}

/// The output of `drbdadm role RES` and `drbdadm dstate RES` (`Secondary/Primary` and
/// `UpToDate/DUnknown` with DRBD 8.4; DRBD 9 prints this node's alone): role, peer role, disk
/// and peer disk. Unknown words read as unknown; nothing here fails.
pub fn parse_pair(role: &str, dstate: &str) -> (Role, Role, Disk, Disk) {
    fn last(text: &str) -> &str {
        text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim()
    }
    let (role, peer_role) = split_pair(last(role), Role::parse, Role::Unknown);
    let (disk, peer_disk) = split_pair(last(dstate), Disk::parse, Disk::Unknown);
    (role, peer_role, disk, peer_disk)
}

/// Why a promotion is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The local disk is not UpToDate: its data may be stale or unusable.
    Disk(Disk),
    /// The peer is Primary: two primaries would be a split brain of the data.
    PeerPrimary,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Disk(d) => write!(f, "the local disk is {}, not UpToDate", d.name()),
            Refusal::PeerPrimary => f.write_str("the peer is Primary"),
        }
    }
}

/// May this node promote the resource? Only with an UpToDate disk while the peer is not
/// Primary. An already Primary node may (the start is idempotent).
pub fn may_promote(role: Role, peer_role: Role, disk: Disk) -> Result<(), Refusal> {
    if role == Role::Primary {
        return Ok(());
    }
    if disk != Disk::UpToDate {
        return Err(Refusal::Disk(disk));
    }
    if peer_role == Role::Primary {
        return Err(Refusal::PeerPrimary);
    }
    Ok(())
}

/// The health reason of a resource, `None` when its disk may serve: the local disk UpToDate.
/// A node with a reason may not take a group with a `drbd` resource (`Health::DRBD`).
pub fn health_reason(state: &State) -> Option<Disk> {
    (state.disk != Disk::UpToDate).then_some(state.disk)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROC: &str = "version: 8.4.11 (api:1/proto:86-101)
srcversion: 211FB288A383ED945B83420
 0: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----
    ns:1024 nr:0 dw:1024 dr:2048 al:1 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:0
 1: cs:SyncTarget ro:Secondary/Primary ds:Inconsistent/UpToDate C r-----
    ns:0 nr:2048 dw:2048 dr:0 al:0 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:30000
\t[==>.................] sync'ed: 12.5% (30000/32768)K
\tfinish: 0:00:10 speed: 2,048 (2,048) want: 4,096 K/sec
 2: cs:Unconfigured
 3: cs:WFConnection ro:Secondary/Unknown ds:Outdated/DUnknown C r-----
";

    #[test]
    fn proc_drbd_lines_are_read_per_minor() {
        let s = parse_proc(PROC, 0).unwrap();
        assert_eq!(
            (s.connection, s.role, s.peer_role),
            ("Connected", Role::Primary, Role::Secondary)
        );
        assert_eq!(
            (s.disk, s.peer_disk, s.synced_permille),
            (Disk::UpToDate, Disk::UpToDate, None)
        );
        assert!(s.connected());
        let s = parse_proc(PROC, 1).unwrap();
        assert_eq!(
            (s.connection, s.disk, s.synced_permille),
            ("SyncTarget", Disk::Inconsistent, Some(125))
        );
        assert_eq!(parse_proc(PROC, 2), Some(State::DOWN));
        let s = parse_proc(PROC, 3).unwrap();
        assert_eq!(
            (s.peer_role, s.disk, s.peer_disk),
            (Role::Unknown, Disk::Outdated, Disk::DUnknown)
        );
        assert!(!s.connected());
        assert_eq!(parse_proc(PROC, 9), Some(State::DOWN));
        // DRBD 9 writes only its version: no state to read there.
        assert_eq!(parse_proc("version: 9.2.4 (api:2/proto:86-122)\n", 0), None);
        assert_eq!(parse_proc("", 0), None);
    }

    #[test]
    fn odd_proc_text_never_panics() {
        for text in [
            "version: 8.4\n 0:",
            "version: 8.4\n0: cs:",
            "version: 8.4\n x: cs:A\n",
            "version: 8.4\n 0: cs:Connected ro: ds:/\n\tsync'ed: 999.9%\n\tsync'ed: %\n",
        ] {
            for minor in 0..2 {
                let _ = parse_proc(text, minor);
            }
        }
        assert_eq!(permille("100.0%"), Some(1000));
        assert_eq!(permille("0.05%"), Some(0));
        assert_eq!(permille("101%"), None);
    }

    #[test]
    fn drbdadm_output_of_both_versions() {
        let p = parse_pair("Secondary/Primary\n", "UpToDate/UpToDate\n");
        assert_eq!(p, (Role::Secondary, Role::Primary, Disk::UpToDate, Disk::UpToDate));
        let p = parse_pair("Primary", "Outdated");
        assert_eq!(p, (Role::Primary, Role::Unknown, Disk::Outdated, Disk::Unknown));
        assert_eq!(parse_pair("", "").0, Role::Unknown);
    }

    #[test]
    fn promotion_needs_an_up_to_date_disk_and_no_primary_peer() {
        use Disk::*;
        assert_eq!(may_promote(Role::Secondary, Role::Secondary, UpToDate), Ok(()));
        assert_eq!(may_promote(Role::Secondary, Role::Unknown, UpToDate), Ok(()));
        for d in [Outdated, Inconsistent, Diskless, Consistent, DUnknown, Unknown, Failed] {
            assert_eq!(may_promote(Role::Secondary, Role::Unknown, d), Err(Refusal::Disk(d)));
        }
        assert_eq!(
            may_promote(Role::Secondary, Role::Primary, UpToDate),
            Err(Refusal::PeerPrimary)
        );
        assert_eq!(may_promote(Role::Primary, Role::Secondary, UpToDate), Ok(()));
    }

    #[test]
    fn only_an_up_to_date_disk_is_healthy() {
        let mut s = parse_proc(PROC, 0).unwrap();
        assert_eq!(health_reason(&s), None);
        s.disk = Disk::Outdated;
        assert_eq!(health_reason(&s), Some(Disk::Outdated));
        assert_eq!(health_reason(&State::DOWN), Some(Disk::Unknown));
    }
}
