//! What hapair asks the BMC, and when: the sans-IO half of `drivers::ipmi`. It hands out one
//! request at a time (`poll_request`), takes each answer back (`handle_response`), gives up
//! on an answer that does not come (`handle_timeouts`), and feeds what the answers say to the
//! judges of `health::ipmi`. No device, no clock, no allocation: `now` comes in, request
//! bytes go out, unit tests feed it answers shaped exactly like the BMC's.
//!
//! The sequence:
//! 1. The sensor records, once (retried each round until read): Get SDR Repository Info,
//!    Reserve SDR Repository, then for each record from ID 0 on Get SDR of its 5-byte header
//!    and, for a Full Sensor Record, of its body in `SDR_CHUNK` pieces (the reservation is
//!    what makes partial reads of one record consistent; "reservation cancelled" reserves
//!    again and reads the record again, at most `RESERVE_RETRIES` times a round). Records of
//!    other types are skipped after their header. Threshold sensors of the BMC itself (owner
//!    `BMC_ADDRESS`) are kept, up to `IPMI_SENSORS_MAX`; those of satellite controllers would
//!    need IPMB bridging and are left out.
//! 2. Every `ROUND_INTERVAL`, a round: Get Sensor Reading of each kept sensor, then Get SEL
//!    Info. The first Get SEL Info of a node's first run is the baseline: Get SEL Entry of
//!    0xffff (the last record) says where the log ends, and what came before is history. A
//!    later run starts from the position the earlier one acknowledged (`SelMark`, kept in the
//!    statedir: the last record judged while nothing held the node, or acknowledged by
//!    `hapair cleanup`), so a failure logged before a restart, or before the crash that caused
//!    it, holds the node again; a log cleared in between is news from its start. Later, when
//!    the entry count or
//!    the addition timestamp moved, the last record seen is read again for the ID of the one
//!    after it, and each new one is read and judged, at most `SEL_ENTRIES_PER_ROUND` a round
//!    (the rest the next round); when the erase timestamp moved, the log was cleared: the latch
//!    is released and every entry in it is new. A last record seen that vanished without a
//!    clear (an overwriting log) makes a new baseline.
//! 3. A request unanswered within `REQUEST_TIMEOUT` (the kernel's own time-outs answer first,
//!    with 0xc3 or 0xff) counts against the BMC (`health::ipmi::BmcReach`) and ends the round;
//!    an answer to an abandoned request (its `msgid` is not the one awaited) is dropped.

use crate::core::time::{Duration, Instant};
use crate::health::Reasons;
use crate::health::ipmi::{
    self, BmcReach, CC_NOT_PRESENT, CC_RESERVATION_CANCELLED, CMD_GET_SDR,
    CMD_GET_SDR_REPOSITORY_INFO, CMD_GET_SEL_ENTRY, CMD_GET_SEL_INFO, CMD_GET_SENSOR_READING,
    CMD_RESERVE_SDR_REPOSITORY, NETFN_SENSOR, NETFN_STORAGE, ResponseError, SDR_FULL_LEN_MAX,
    SDR_FULL_SENSOR, SDR_HEADER_LEN, SelInfo, SelJudge, SensorJudge, SensorRecord,
};
use crate::limits::IPMI_SENSORS_MAX;

/// How often the sensors and the SEL are read (as the other health sources).
pub const ROUND_INTERVAL: Duration = Duration::from_secs(2);
/// How long an answer may take before the request counts as unanswered: more than the
/// kernel's own KCS/BT time-out (5 s), which answers first with 0xc3.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(6);
/// Bytes of a record read per Get SDR (every interface carries 16 plus the answer's header).
pub const SDR_CHUNK: u8 = 16;
/// Reservations taken again in one round after "reservation cancelled".
pub const RESERVE_RETRIES: u8 = 3;
/// New SEL entries read per round; more wait for the next.
pub const SEL_ENTRIES_PER_ROUND: u16 = 16;
/// Rounds in a row that fail to read the sensor records before that is a reason.
pub const SDR_FAILURES_MAX: u8 = 3;
/// The BMC's own IPMB address: the owner of the sensors read.
pub const BMC_ADDRESS: u8 = 0x20;
/// The record ID that means "the first record".
const FIRST: u16 = 0x0000;
/// The record ID that means "the last record" (asked) and "no more" (answered).
const LAST: u16 = 0xffff;

/// One request: its network function, command, data and the LUN it goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// The network function.
    pub netfn: u8,
    /// The command.
    pub cmd: u8,
    /// The LUN of the BMC it is for.
    pub lun: u8,
    data: [u8; 6],
    len: u8,
}

impl Request {
    fn new(netfn: u8, cmd: u8, data: &[u8]) -> Request {
        let mut r = Request { netfn, cmd, lun: 0, data: [0; 6], len: data.len() as u8 };
        r.data[..data.len()].copy_from_slice(data);
        r
    }

    /// Get SDR (reservation, record, offset, count) or Get SEL Entry (the same fields).
    fn get_record(cmd: u8, reservation: u16, id: u16, offset: u8, count: u8) -> Request {
        let ([r0, r1], [i0, i1]) = (reservation.to_le_bytes(), id.to_le_bytes());
        Request::new(NETFN_STORAGE, cmd, &[r0, r1, i0, i1, offset, count])
    }

    /// The request's data bytes.
    pub fn data(&self) -> &[u8] {
        &self.data[..usize::from(self.len)]
    }
}

/// Where the conversation is: the request awaited or to be sent next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    SdrInfo,
    SdrReserve,
    SdrHeader {
        id: u16,
    },
    SdrBody {
        id: u16,
        next: u16,
        offset: u8,
    },
    Reading {
        index: usize,
    },
    SelInfo,
    SelLast,
    /// `fresh`: a new entry to judge; otherwise the last one seen, read again for its next.
    SelEntry {
        id: u16,
        fresh: bool,
        left: u16,
    },
}

/// Where the sensor records stand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SdrState {
    /// Not read yet (being read, or to be read again next round).
    Reading,
    /// The last read failed with this answer (retried next round).
    Failed(ResponseError),
    /// Read: `records` records, of which the sensors kept are `sensors()`.
    Read {
        /// Records in the repository.
        records: u16,
        /// Threshold sensors of the BMC beyond `IPMI_SENSORS_MAX`, left out.
        dropped: u16,
    },
}

/// A position in the event log: the log's erase timestamp (a clear makes every position
/// before it meaningless) and the last record ID up to which it was judged with nothing held,
/// or acknowledged by `hapair cleanup` (`None`: none, the log was empty).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SelMark {
    /// The log's erase timestamp then.
    pub erased: u32,
    /// The last record acknowledged.
    pub last: Option<u16>,
}

/// One BMC sensor: its record and its judgement.
#[derive(Clone, Debug)]
pub struct Sensor {
    /// What its record says.
    pub record: SensorRecord,
    /// The judgement of its readings.
    pub judge: SensorJudge,
}

/// The conversation with one BMC.
///
/// Call protocol, per wake: `handle_response` for each answer read, `handle_timeouts(now)`,
/// then `poll_request(now)` until `None`, sending each (a send that fails is
/// `handle_send_failed`); sleep until `next_deadline`.
#[derive(Clone, Debug)]
pub struct Conversation {
    sensors: heapless::Vec<Sensor, IPMI_SENSORS_MAX>,
    sdr: SdrState,
    records: u16,
    dropped: u16,
    reservation: u16,
    /// The record to read after the next reservation.
    resume: u16,
    retries: u8,
    /// Rounds in a row whose reading of the records failed.
    sdr_failures: u8,
    record: [u8; SDR_FULL_LEN_MAX],
    sel: SelJudge,
    sel_info: Option<SelInfo>,
    /// The ID of the last SEL record seen; `None` for an empty log (or none seen yet).
    sel_last: Option<u16>,
    /// Entries are left to read from `sel_last` on (a walk cut at its round's bound).
    sel_walk: bool,
    sel_unsupported: Option<ResponseError>,
    /// Where an earlier run acknowledged the log, until the first Get SEL Info.
    sel_resume: Option<SelMark>,
    /// Where this run acknowledged it, and whether that is yet to be kept.
    acked: Option<SelMark>,
    mark_due: bool,
    reach: BmcReach,
    /// The step whose request is to be sent next; `None` between rounds.
    step: Option<Step>,
    /// The request awaited: its id, its step and when it is given up.
    awaited: Option<(i64, Step, Instant)>,
    next_msgid: i64,
    next_round: Instant,
}

impl Conversation {
    /// A conversation whose first round is due at `now`; `resume` is where an earlier run
    /// acknowledged the event log (`poll_mark`), `None` for a first run.
    pub fn new(now: Instant, resume: Option<SelMark>) -> Conversation {
        Conversation {
            sensors: heapless::Vec::new(),
            sdr: SdrState::Reading,
            records: 0,
            dropped: 0,
            reservation: 0,
            resume: FIRST,
            retries: 0,
            sdr_failures: 0,
            record: [0; SDR_FULL_LEN_MAX],
            sel: SelJudge::new(now),
            sel_info: None,
            sel_last: None,
            sel_walk: false,
            sel_unsupported: None,
            sel_resume: resume,
            acked: None,
            mark_due: false,
            reach: BmcReach::default(),
            step: None,
            awaited: None,
            next_msgid: 1,
            next_round: now,
        }
    }

    /// The next request to send, with its id, when one is due and none is awaited.
    pub fn poll_request(&mut self, now: Instant) -> Option<(i64, Request)> {
        if self.awaited.is_some() {
            return None;
        }
        if self.step.is_none() && now >= self.next_round {
            self.next_round = now + ROUND_INTERVAL;
            self.retries = 0;
            self.sel.handle_wake(now);
            self.step = Some(self.round_start());
        }
        let step = self.step?;
        let request = self.request(step);
        let msgid = self.next_msgid;
        self.next_msgid = self.next_msgid.wrapping_add(1).max(1);
        self.awaited = Some((msgid, step, now + REQUEST_TIMEOUT));
        Some((msgid, request))
    }

    /// A round starts with the sensor records until they are read, then the readings.
    fn round_start(&self) -> Step {
        match self.sdr {
            SdrState::Read { .. } if self.sensors.is_empty() => Step::SelInfo,
            SdrState::Read { .. } => Step::Reading { index: 0 },
            SdrState::Reading | SdrState::Failed(_) => Step::SdrInfo,
        }
    }

    fn request(&self, step: Step) -> Request {
        let res = self.reservation;
        match step {
            Step::SdrInfo => Request::new(NETFN_STORAGE, CMD_GET_SDR_REPOSITORY_INFO, &[]),
            Step::SdrReserve => Request::new(NETFN_STORAGE, CMD_RESERVE_SDR_REPOSITORY, &[]),
            Step::SdrHeader { id } => {
                Request::get_record(CMD_GET_SDR, res, id, 0, SDR_HEADER_LEN as u8)
            }
            Step::SdrBody { id, offset, .. } => {
                let count = (self.record_len() - usize::from(offset)).min(usize::from(SDR_CHUNK));
                Request::get_record(CMD_GET_SDR, res, id, offset, count as u8)
            }
            Step::Reading { index } => {
                let r = &self.sensors[index].record;
                let mut req = Request::new(NETFN_SENSOR, CMD_GET_SENSOR_READING, &[r.number]);
                req.lun = r.lun;
                req
            }
            Step::SelInfo => Request::new(NETFN_STORAGE, CMD_GET_SEL_INFO, &[]),
            Step::SelLast => Request::get_record(CMD_GET_SEL_ENTRY, 0, LAST, 0, 0xff),
            Step::SelEntry { id, .. } => Request::get_record(CMD_GET_SEL_ENTRY, 0, id, 0, 0xff),
        }
    }

    /// The length of the Full Sensor Record being read, from its header in `record`.
    fn record_len(&self) -> usize {
        (SDR_HEADER_LEN + usize::from(self.record[4])).min(SDR_FULL_LEN_MAX)
    }

    /// An answer arrived: `data` is the response, completion code first. An answer to
    /// anything but the request awaited is dropped.
    pub fn handle_response(&mut self, now: Instant, msgid: i64, data: &[u8]) {
        let Some((awaited, step, _)) = self.awaited else { return };
        if awaited != msgid {
            return;
        }
        self.awaited = None;
        let cc = data.first().copied().unwrap_or(ipmi::CC_UNSPECIFIED);
        self.reach.handle_completion(cc);
        if matches!(cc, ipmi::CC_TIMEOUT | ipmi::CC_UNSPECIFIED) {
            // The kernel's own "no answer": the round ends as at a time-out, nothing judged.
            self.step = None;
            return;
        }
        self.step = match step {
            Step::SdrInfo | Step::SdrReserve => self.handle_sdr_start(step, data),
            Step::SdrHeader { id } => self.handle_sdr_header(id, data),
            Step::SdrBody { id, next, offset } => self.handle_sdr_body(id, next, offset, data),
            Step::Reading { index } => {
                let s = &mut self.sensors[index];
                s.judge.handle_reading(&s.record, data);
                let next = index + 1;
                Some(if next < self.sensors.len() {
                    Step::Reading { index: next }
                } else {
                    Step::SelInfo
                })
            }
            Step::SelInfo => self.handle_sel_info(data),
            Step::SelLast => {
                self.sel_last = match ipmi::parse_sel_entry(data) {
                    Ok((_, r)) => Some(u16::from_le_bytes([r[0], r[1]])),
                    Err(_) => None,
                };
                self.acknowledge();
                None
            }
            Step::SelEntry { fresh, left, .. } => self.handle_sel_entry(now, fresh, left, data),
        };
    }

    fn handle_sdr_start(&mut self, step: Step, data: &[u8]) -> Option<Step> {
        if step == Step::SdrInfo {
            match ipmi::parse_sdr_info(data) {
                Ok(n) => self.records = n,
                Err(e) => return self.sdr_failed(e),
            }
        } else {
            // A BMC without reservations takes 0 for reads of whole records and, mostly,
            // of parts; it says otherwise when it does not.
            self.reservation = ipmi::parse_reservation(data).unwrap_or(0);
        }
        if step == Step::SdrInfo {
            self.sensors.clear();
            self.dropped = 0;
            self.resume = FIRST;
            return Some(Step::SdrReserve);
        }
        Some(Step::SdrHeader { id: self.resume })
    }

    fn sdr_failed(&mut self, e: ResponseError) -> Option<Step> {
        self.sdr = SdrState::Failed(e);
        self.sdr_failures = self.sdr_failures.saturating_add(1);
        None
    }

    /// "Reservation cancelled": reserve again and read `id` again, a few times a round.
    fn reserve_again(&mut self, id: u16) -> Option<Step> {
        self.retries += 1;
        if self.retries > RESERVE_RETRIES {
            return self.sdr_failed(ResponseError::Completion(CC_RESERVATION_CANCELLED));
        }
        self.resume = id;
        Some(Step::SdrReserve)
    }

    fn handle_sdr_header(&mut self, id: u16, data: &[u8]) -> Option<Step> {
        let (next, bytes) = match ipmi::parse_get_sdr(data) {
            Ok(v) => v,
            Err(ResponseError::Completion(CC_RESERVATION_CANCELLED)) => {
                return self.reserve_again(id);
            }
            // An empty repository answers "not present" for its first record.
            Err(ResponseError::Completion(CC_NOT_PRESENT)) if id == FIRST => {
                return self.sdr_done();
            }
            Err(e) => return self.sdr_failed(e),
        };
        let (kind, len) = match ipmi::parse_sdr_header(bytes) {
            Ok((_, kind, len)) => (kind, len),
            Err(e) => return self.sdr_failed(e),
        };
        if kind == SDR_FULL_SENSOR && SDR_HEADER_LEN + usize::from(len) <= SDR_FULL_LEN_MAX {
            self.record[..SDR_HEADER_LEN].copy_from_slice(&bytes[..SDR_HEADER_LEN]);
            return Some(Step::SdrBody { id, next, offset: SDR_HEADER_LEN as u8 });
        }
        self.sdr_next(next)
    }

    fn handle_sdr_body(&mut self, id: u16, next: u16, offset: u8, data: &[u8]) -> Option<Step> {
        let bytes = match ipmi::parse_get_sdr(data) {
            Ok((_, bytes)) => bytes,
            Err(ResponseError::Completion(CC_RESERVATION_CANCELLED)) => {
                return self.reserve_again(id);
            }
            Err(e) => return self.sdr_failed(e),
        };
        let (from, len) = (usize::from(offset), self.record_len());
        let n = bytes.len().min(len - from);
        if n == 0 {
            return self.sdr_failed(ResponseError::Short);
        }
        self.record[from..from + n].copy_from_slice(&bytes[..n]);
        if from + n < len {
            return Some(Step::SdrBody { id, next, offset: (from + n) as u8 });
        }
        // A record that does not parse is skipped: the others still count.
        if let Ok(Some(record)) = ipmi::parse_sdr(&self.record[..len])
            && record.owner == BMC_ADDRESS
        {
            let sensor = Sensor { record, judge: SensorJudge::default() };
            if self.sensors.push(sensor).is_err() {
                self.dropped = self.dropped.saturating_add(1);
            }
        }
        self.sdr_next(next)
    }

    fn sdr_next(&mut self, next: u16) -> Option<Step> {
        if next == LAST { self.sdr_done() } else { Some(Step::SdrHeader { id: next }) }
    }

    /// Every record read: the round goes on with the readings.
    fn sdr_done(&mut self) -> Option<Step> {
        self.sdr = SdrState::Read { records: self.records, dropped: self.dropped };
        self.sdr_failures = 0;
        Some(self.round_start())
    }

    fn handle_sel_info(&mut self, data: &[u8]) -> Option<Step> {
        let info = match ipmi::parse_sel_info(data) {
            Ok(info) => info,
            Err(e) => {
                self.sel_unsupported = Some(e);
                return None;
            }
        };
        self.sel_unsupported = None;
        let left = SEL_ENTRIES_PER_ROUND;
        let Some(before) = self.sel_info.replace(info) else {
            return match self.sel_resume.take() {
                // The first look of the first run: what is there is history.
                None => Some(Step::SelLast),
                // An earlier run acknowledged the log up to a record: from there on, what is
                // in the log is news (a failure logged before a crash holds again).
                Some(m) if m.erased == info.erased => {
                    self.sel_last = m.last;
                    Some(match m.last {
                        Some(id) => Step::SelEntry { id, fresh: false, left },
                        None => Step::SelEntry { id: FIRST, fresh: true, left },
                    })
                }
                // Cleared since: everything in it is news.
                Some(_) => self.sel_cleared(),
            };
        };
        if info.erased != before.erased {
            self.sel.handle_cleanup();
            return self.sel_cleared();
        }
        if info == before && !self.sel_walk {
            return None;
        }
        Some(match self.sel_last {
            Some(id) => Step::SelEntry { id, fresh: false, left },
            None => Step::SelEntry { id: FIRST, fresh: true, left },
        })
    }

    /// The log was cleared: every entry in it is new, and what was acknowledged is gone.
    fn sel_cleared(&mut self) -> Option<Step> {
        self.sel_last = None;
        self.acknowledge();
        Some(Step::SelEntry { id: FIRST, fresh: true, left: SEL_ENTRIES_PER_ROUND })
    }

    /// Moves the acknowledged position to the last record read, when nothing holds the node
    /// (a failure held keeps the position before it, so that a restart judges it again).
    fn acknowledge(&mut self) {
        let Some(info) = self.sel_info else { return };
        if self.sel.latched().is_some() {
            return;
        }
        let mark = SelMark { erased: info.erased, last: self.sel_last };
        if self.acked != Some(mark) {
            self.acked = Some(mark);
            self.mark_due = true;
        }
    }

    fn handle_sel_entry(
        &mut self,
        now: Instant,
        fresh: bool,
        left: u16,
        data: &[u8],
    ) -> Option<Step> {
        let (next, record) = match ipmi::parse_sel_entry(data) {
            Ok(v) => v,
            // The last record seen is gone without a clear (an overwriting log): new baseline.
            Err(ResponseError::Completion(CC_NOT_PRESENT)) if !fresh => {
                self.sel_walk = false;
                return Some(Step::SelLast);
            }
            Err(_) => {
                self.sel_walk = false;
                return None;
            }
        };
        if fresh {
            let sensors = &self.sensors;
            let watched = |owner: u8, lun: u8, number: u8| {
                sensors.iter().any(|s| {
                    let r = &s.record;
                    (r.owner, r.lun, r.number) == (owner, lun, number)
                })
            };
            self.sel.handle_entry(now, &record, watched);
            self.sel_last = Some(u16::from_le_bytes([record[0], record[1]]));
            self.acknowledge();
        }
        let left = if fresh { left.saturating_sub(1) } else { left };
        self.sel_walk = next != LAST && left == 0;
        if next == LAST || left == 0 {
            return None;
        }
        Some(Step::SelEntry { id: next, fresh: true, left })
    }

    /// Gives up on an answer awaited past its time-out: the BMC did not answer, and the
    /// round ends.
    pub fn handle_timeouts(&mut self, now: Instant) {
        if let Some((_, _, deadline)) = self.awaited
            && now >= deadline
        {
            self.handle_send_failed();
        }
    }

    /// The request just handed out could not be sent (or was given up): it counts as
    /// unanswered and the round ends.
    pub fn handle_send_failed(&mut self) {
        self.awaited = None;
        self.step = None;
        self.reach.handle_no_answer();
    }

    /// The device is gone or closed: whatever was awaited will never come.
    pub fn handle_closed(&mut self) {
        self.awaited = None;
        self.step = None;
    }

    /// When something is next due: the awaited answer's time-out, or the next round.
    pub fn next_deadline(&self) -> Instant {
        match self.awaited {
            Some((_, _, deadline)) => deadline,
            None if self.step.is_some() => Instant::ZERO,
            None => self.next_round,
        }
    }

    /// The operator has looked (`hapair cleanup`): a latched SEL failure is released, and
    /// the log is acknowledged up to the last record read.
    pub fn handle_cleanup(&mut self) {
        self.sel.handle_cleanup();
        self.acknowledge();
    }

    /// The acknowledged position of the log, once after each change, to keep in the statedir
    /// for the next run (`new`'s `resume`).
    pub fn poll_mark(&mut self) -> Option<SelMark> {
        core::mem::take(&mut self.mark_due).then_some(self.acked).flatten()
    }

    /// Appends every reason the BMC gives to be unhealthy.
    pub fn reasons(&self, reasons: &mut Reasons, device: &dyn core::fmt::Display) {
        if self.reach.is_silent() {
            reasons.push(format_args!("ipmi {device}: BMC not answering"));
            // Old readings and what the records say are not news: silence is the reason.
            return;
        }
        // A failure to read them is a reason once it lasted `SDR_FAILURES_MAX` rounds: one
        // lost answer at start is no reason to give the group up.
        if let SdrState::Failed(e) = self.sdr
            && self.sdr_failures >= SDR_FAILURES_MAX
        {
            reasons.push(format_args!("ipmi {device}: sensor records unreadable: {e}"));
        }
        for s in &self.sensors {
            ipmi::sensor_reason(reasons, &s.record, s.judge.verdict());
        }
        self.sel.reasons(reasons);
    }

    /// The BMC's threshold sensors kept, in record order.
    pub fn sensors(&self) -> &[Sensor] {
        &self.sensors
    }

    /// Where the sensor records stand.
    pub fn sdr(&self) -> SdrState {
        self.sdr
    }

    /// The SEL's judgement.
    pub fn sel(&self) -> &SelJudge {
        &self.sel
    }

    /// Why the SEL cannot be read (`Get SEL Info` failed at the last round), if so.
    pub fn sel_unsupported(&self) -> Option<ResponseError> {
        self.sel_unsupported
    }

    /// Whether the BMC answers.
    pub fn reach(&self) -> BmcReach {
        self.reach
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::ipmi::tests::{CPU_TEMP_SDR, RAIL_SDR, sel};
    use proptest::prop_assert;

    /// The MC device locator of the BMC (SDR type 0x12) as `sdrcomp -r` compiles it.
    const LOCATOR_SDR: [u8; 26] = [
        0x01, 0x00, 0x51, 0x12, 0x15, 0x20, 0x00, 0x00, 0x8f, 0x00, 0x00, 0x00, 0x07, 0x01, 0x00,
        0xca, b'h', b'a', b'p', b'a', b'i', b'r', b' ', b'B', b'M', b'C',
    ];

    /// A BMC that answers as OpenIPMI's ipmi_sim does (lanserv/bmc_storage.c,
    /// bmc_sensor.c): its records in order (IDs 0x10, 0x11, ...), one reading per sensor
    /// number, a SEL with the addition and erase timestamps.
    struct FakeBmc {
        sdrs: Vec<Vec<u8>>,
        reservation: u16,
        /// Answer the next partial record read with "reservation cancelled".
        cancel_once: bool,
        readings: [(u8, u8); 4],
        sel: Vec<[u8; 16]>,
        next_sel_id: u16,
        added: u32,
        erased: u32,
        requests: Vec<(u8, u8)>,
    }

    impl FakeBmc {
        fn new() -> FakeBmc {
            let mut sdrs = vec![LOCATOR_SDR.to_vec(), CPU_TEMP_SDR.to_vec(), RAIL_SDR.to_vec()];
            for (i, r) in sdrs.iter_mut().enumerate() {
                r[0] = 0x10 + i as u8;
            }
            FakeBmc {
                sdrs,
                reservation: 0,
                cancel_once: false,
                readings: [(0, 0), (45, 0), (200, 0), (0, 0)],
                sel: Vec::new(),
                next_sel_id: 1,
                added: 0,
                erased: 0,
                requests: Vec::new(),
            }
        }

        fn add_sel(&mut self, mut record: [u8; 16]) {
            record[..2].copy_from_slice(&self.next_sel_id.to_le_bytes());
            self.next_sel_id += 1;
            self.added += 1;
            self.sel.push(record);
        }

        fn clear_sel(&mut self) {
            self.sel.clear();
            self.erased += 1;
        }

        fn answer(&mut self, r: &Request) -> Vec<u8> {
            self.requests.push((r.netfn, r.cmd));
            let d = r.data();
            match (r.netfn, r.cmd) {
                (NETFN_STORAGE, CMD_GET_SDR_REPOSITORY_INFO) => {
                    vec![0, 0x51, self.sdrs.len() as u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02]
                }
                (NETFN_STORAGE, CMD_RESERVE_SDR_REPOSITORY) => {
                    self.reservation += 1;
                    let [a, b] = self.reservation.to_le_bytes();
                    vec![0, a, b]
                }
                (NETFN_STORAGE, CMD_GET_SDR) => self.get_sdr(d),
                (NETFN_SENSOR, CMD_GET_SENSOR_READING) => {
                    match self.readings.get(usize::from(d[0])) {
                        Some(&(raw, status)) => vec![0, raw, 0xc0, status, 0],
                        None => vec![CC_NOT_PRESENT],
                    }
                }
                (NETFN_STORAGE, CMD_GET_SEL_INFO) => {
                    let (a, e) = (self.added.to_le_bytes(), self.erased.to_le_bytes());
                    let n = self.sel.len() as u8;
                    let mut v = vec![0, 0x51, n, 0, 0, 0];
                    v.extend_from_slice(&a);
                    v.extend_from_slice(&e);
                    v.push(0x0a);
                    v
                }
                (NETFN_STORAGE, CMD_GET_SEL_ENTRY) => self.get_sel_entry(d),
                _ => vec![0xc1],
            }
        }

        fn get_sdr(&mut self, d: &[u8]) -> Vec<u8> {
            let reservation = u16::from_le_bytes([d[0], d[1]]);
            if reservation != 0 && reservation != self.reservation {
                return vec![CC_RESERVATION_CANCELLED];
            }
            if self.cancel_once && d[4] > 0 {
                self.cancel_once = false;
                self.reservation += 1;
                return vec![CC_RESERVATION_CANCELLED];
            }
            let id = u16::from_le_bytes([d[2], d[3]]);
            let at = match id {
                0 if !self.sdrs.is_empty() => 0,
                _ => match self.sdrs.iter().position(|r| u16::from_le_bytes([r[0], r[1]]) == id) {
                    Some(i) => i,
                    None => return vec![CC_NOT_PRESENT],
                },
            };
            let r = &self.sdrs[at];
            let next = self.sdrs.get(at + 1).map_or(LAST, |n| u16::from_le_bytes([n[0], n[1]]));
            let (offset, count) = (usize::from(d[4]), usize::from(d[5]));
            if offset >= r.len() {
                return vec![0xc9];
            }
            let end = (offset + count).min(r.len());
            let mut v = vec![0];
            v.extend_from_slice(&next.to_le_bytes());
            v.extend_from_slice(&r[offset..end]);
            v
        }

        fn get_sel_entry(&self, d: &[u8]) -> Vec<u8> {
            let id = u16::from_le_bytes([d[2], d[3]]);
            let at = match id {
                FIRST if !self.sel.is_empty() => 0,
                LAST if !self.sel.is_empty() => self.sel.len() - 1,
                _ => match self.sel.iter().position(|r| u16::from_le_bytes([r[0], r[1]]) == id) {
                    Some(i) => i,
                    None => return vec![CC_NOT_PRESENT],
                },
            };
            let next = self.sel.get(at + 1).map_or(LAST, |n| u16::from_le_bytes([n[0], n[1]]));
            let mut v = vec![0];
            v.extend_from_slice(&next.to_le_bytes());
            v.extend_from_slice(&self.sel[at]);
            v
        }
    }

    fn secs(s: u64) -> Instant {
        Instant::from_millis(s * 1000)
    }

    /// Runs the conversation against `bmc` at `now` until nothing more is due; returns the
    /// number of requests.
    fn converse(c: &mut Conversation, bmc: &mut FakeBmc, now: Instant) -> usize {
        let mut n = 0;
        while let Some((msgid, request)) = c.poll_request(now) {
            let answer = bmc.answer(&request);
            c.handle_response(now, msgid, &answer);
            n += 1;
            assert!(n < 1000, "a conversation that does not end");
        }
        n
    }

    fn reasons(c: &Conversation) -> Vec<String> {
        let mut r = Reasons::new();
        c.reasons(&mut r, &"/dev/ipmi0");
        r.iter().map(str::to_string).collect()
    }

    fn names(c: &Conversation) -> Vec<&str> {
        c.sensors().iter().map(|s| s.record.name.as_str()).collect()
    }

    #[test]
    fn the_first_round_reads_the_records_then_the_sensors_and_the_sel() {
        let (mut c, mut bmc) = (Conversation::new(secs(0), None), FakeBmc::new());
        assert_eq!(c.next_deadline(), secs(0));
        let n = converse(&mut c, &mut bmc, secs(0));
        assert_eq!(c.sdr(), SdrState::Read { records: 3, dropped: 0 });
        assert_eq!(names(&c), ["CPU Temp", "12V"]);
        // Info, reserve; the locator's header only; the temperature's header and 51 bytes in
        // 16-byte pieces (4), the rail's header and 46 bytes (3); two readings; SEL info and
        // its last entry (empty: not present).
        assert_eq!(n, 2 + 1 + (1 + 4) + (1 + 3) + 2 + 2);
        let values: Vec<_> = c.sensors().iter().map(|s| s.judge.value()).collect();
        assert_eq!(values, [Some(45_000), Some(12_000)]);
        assert_eq!(reasons(&c), Vec::<String>::new());
        // Nothing until the next round, which reads the sensors and the SEL only.
        assert_eq!(c.next_deadline(), secs(0) + ROUND_INTERVAL);
        assert_eq!(converse(&mut c, &mut bmc, secs(1)), 0);
        assert_eq!(converse(&mut c, &mut bmc, secs(2)), 3);
    }

    #[test]
    fn a_cancelled_reservation_reserves_again_and_reads_the_record_again() {
        let (mut c, mut bmc) = (Conversation::new(secs(0), None), FakeBmc::new());
        bmc.cancel_once = true;
        converse(&mut c, &mut bmc, secs(0));
        assert_eq!(names(&c), ["CPU Temp", "12V"]);
        let reserves = bmc.requests.iter().filter(|r| r.1 == CMD_RESERVE_SDR_REPOSITORY);
        assert_eq!(reserves.count(), 2);
    }

    #[test]
    fn an_empty_or_unreadable_repository() {
        let (mut c, mut bmc) = (Conversation::new(secs(0), None), FakeBmc::new());
        bmc.sdrs.clear();
        converse(&mut c, &mut bmc, secs(0));
        assert_eq!(c.sdr(), SdrState::Read { records: 0, dropped: 0 });
        assert!(c.sensors().is_empty());
        // A BMC without a repository answers "invalid command": a reason once it lasted.
        let mut d = Conversation::new(secs(0), None);
        for round in 0..SDR_FAILURES_MAX {
            let got = reasons(&d);
            assert!(got.is_empty(), "round {round}: {got:?}");
            let at = secs(2 * u64::from(round));
            while let Some((msgid, _)) = d.poll_request(at) {
                d.handle_response(at, msgid, &[0xc1]);
            }
        }
        assert_eq!(d.sdr(), SdrState::Failed(ResponseError::Completion(0xc1)));
        let want = "ipmi /dev/ipmi0: sensor records unreadable: completion code 0xc1";
        assert_eq!(reasons(&d), [want]);
    }

    #[test]
    fn a_sensor_past_critical_makes_a_reason_until_it_is_back() {
        let (mut c, mut bmc) = (Conversation::new(secs(0), None), FakeBmc::new());
        converse(&mut c, &mut bmc, secs(0));
        bmc.readings[1] = (85, 0x18);
        for round in 1..=3 {
            converse(&mut c, &mut bmc, secs(2 * round));
        }
        assert_eq!(reasons(&c), ["ipmi CPU Temp: above upper critical 80.0 C"]);
        bmc.readings[1] = (60, 0);
        for round in 4..=6 {
            converse(&mut c, &mut bmc, secs(2 * round));
        }
        assert_eq!(reasons(&c), Vec::<String>::new());
    }

    #[test]
    fn sel_entries_from_before_the_start_are_history_and_new_ones_are_judged() {
        let (mut c, mut bmc) = (Conversation::new(secs(0), None), FakeBmc::new());
        bmc.add_sel(sel(0, 0x01, 0x0c, 9, 0x6f, 0xa1));
        bmc.add_sel(sel(0, 0x01, 0x0c, 9, 0x6f, 0xa0));
        converse(&mut c, &mut bmc, secs(0));
        assert_eq!((c.sel().entries(), reasons(&c).len()), (0, 0));
        // The CPU's own threshold event (watched live) and a correctable error: no latch.
        bmc.add_sel(sel(0, 0x20, 0x01, 1, 0x01, 0x59));
        bmc.add_sel(sel(0, 0x01, 0x0c, 9, 0x6f, 0xa0));
        converse(&mut c, &mut bmc, secs(2));
        assert_eq!((c.sel().entries(), c.sel().correctable()), (2, 1));
        assert_eq!(reasons(&c), Vec::<String>::new());
        // Nothing new: one Get SEL Info and no entry read.
        let before = bmc.requests.len();
        converse(&mut c, &mut bmc, secs(4));
        assert_eq!(bmc.requests.len() - before, 3, "two readings and the SEL info");
        // An uncorrectable ECC error: latched, across rounds, until cleanup.
        bmc.add_sel(sel(0, 0x01, 0x0c, 9, 0x6f, 0xa1));
        converse(&mut c, &mut bmc, secs(6));
        assert_eq!(reasons(&c), ["ipmi SEL: memory #9: uncorrectable ECC"]);
        converse(&mut c, &mut bmc, secs(8));
        assert_eq!(reasons(&c).len(), 1);
        c.handle_cleanup();
        assert_eq!(reasons(&c), Vec::<String>::new());
        // A cleared log: the latch goes, and what is logged after the clear is new.
        bmc.add_sel(sel(0, 0x20, 0x08, 3, 0x6f, 0x01));
        converse(&mut c, &mut bmc, secs(10));
        assert_eq!(reasons(&c), ["ipmi SEL: power supply #3: failure detected"]);
        bmc.clear_sel();
        bmc.add_sel(sel(0, 0x01, 0x07, 2, 0x6f, 0x00));
        converse(&mut c, &mut bmc, secs(12));
        assert_eq!(reasons(&c), ["ipmi SEL: processor #2: IERR"]);
        assert_eq!(c.sel().entries(), 5);
    }

    #[test]
    fn a_long_walk_is_cut_and_resumed_and_a_vanished_last_entry_is_a_new_baseline() {
        let (mut c, mut bmc) = (Conversation::new(secs(0), None), FakeBmc::new());
        bmc.add_sel(sel(0, 0x01, 0x12, 1, 0x6f, 0x01));
        converse(&mut c, &mut bmc, secs(0));
        for _ in 0..20 {
            bmc.add_sel(sel(0, 0x01, 0x12, 1, 0x6f, 0x01));
        }
        converse(&mut c, &mut bmc, secs(2));
        assert_eq!(c.sel().entries(), u64::from(SEL_ENTRIES_PER_ROUND));
        converse(&mut c, &mut bmc, secs(4));
        assert_eq!(c.sel().entries(), 20, "the rest the next round, though the info is the same");
        // An overwriting log drops the oldest, and the last seen, without a clear.
        bmc.sel.clear();
        bmc.add_sel(sel(0, 0x01, 0x0c, 9, 0x6f, 0xa1));
        converse(&mut c, &mut bmc, secs(6));
        assert_eq!((c.sel().entries(), reasons(&c).len()), (20, 0), "a baseline, not news");
    }

    #[test]
    fn a_silent_bmc_is_a_reason_and_late_answers_are_dropped() {
        let (mut c, mut bmc) = (Conversation::new(secs(0), None), FakeBmc::new());
        converse(&mut c, &mut bmc, secs(0));
        // Round 1: the first reading is never answered.
        let (lost, _) = c.poll_request(secs(2)).unwrap();
        assert_eq!(c.poll_request(secs(2)), None, "one request at a time");
        assert_eq!(c.next_deadline(), secs(2) + REQUEST_TIMEOUT);
        c.handle_timeouts(secs(7));
        assert_eq!(reasons(&c), Vec::<String>::new(), "still within the time-out");
        c.handle_timeouts(secs(8));
        assert_eq!(reasons(&c), Vec::<String>::new(), "one miss");
        // Round 2: the kernel answers "timeout" itself.
        let (msgid, _) = c.poll_request(secs(8)).unwrap();
        c.handle_response(secs(9), msgid, &[ipmi::CC_TIMEOUT]);
        assert_eq!(reasons(&c), ["ipmi /dev/ipmi0: BMC not answering"]);
        // The answer to the abandoned request, late: dropped.
        let r = FakeBmc::new().answer(&c.request(Step::Reading { index: 0 }));
        c.handle_response(secs(10), lost, &r);
        assert!(c.reach().is_silent());
        // The BMC is back: one answer.
        converse(&mut c, &mut bmc, secs(10));
        assert_eq!(reasons(&c), Vec::<String>::new());
    }

    /// A failure logged before a restart (a crash it may have caused) holds the next run too:
    /// the position kept is before it until `hapair cleanup`; a log cleared meanwhile is news
    /// from its start.
    #[test]
    fn the_acknowledged_position_carries_a_failure_over_a_restart() {
        let (mut a, mut bmc) = (Conversation::new(secs(0), None), FakeBmc::new());
        bmc.add_sel(sel(0, 0x01, 0x12, 1, 0x6f, 0x01));
        converse(&mut a, &mut bmc, secs(0));
        let history = SelMark { erased: 0, last: Some(1) };
        assert_eq!(a.poll_mark(), Some(history), "the first run's baseline");
        assert_eq!(a.poll_mark(), None, "once");
        bmc.add_sel(sel(0, 0x01, 0x12, 1, 0x6f, 0x01));
        converse(&mut a, &mut bmc, secs(2));
        assert_eq!(a.poll_mark(), Some(SelMark { erased: 0, last: Some(2) }), "harmless: on");
        bmc.add_sel(sel(0, 0x01, 0x0c, 9, 0x6f, 0xa1));
        bmc.add_sel(sel(0, 0x01, 0x12, 1, 0x6f, 0x01));
        converse(&mut a, &mut bmc, secs(4));
        assert_eq!(a.poll_mark(), None, "held: the position stays before the failure");
        // The node crashes and its next run starts from the position kept.
        let kept = SelMark { erased: 0, last: Some(2) };
        let mut b = Conversation::new(secs(100), Some(kept));
        converse(&mut b, &mut bmc, secs(100));
        assert_eq!(reasons(&b), ["ipmi SEL: memory #9: uncorrectable ECC"]);
        assert_eq!(b.poll_mark(), None);
        b.handle_cleanup();
        assert_eq!(b.poll_mark(), Some(SelMark { erased: 0, last: Some(4) }));
        let mut c = Conversation::new(secs(200), Some(SelMark { erased: 0, last: Some(4) }));
        converse(&mut c, &mut bmc, secs(200));
        assert_eq!((reasons(&c).len(), c.sel().entries()), (0, 0));
        // Cleared while no run looked: what is in it is news.
        bmc.clear_sel();
        bmc.add_sel(sel(0, 0x20, 0x08, 3, 0x6f, 0x01));
        let mut d = Conversation::new(secs(300), Some(SelMark { erased: 0, last: Some(4) }));
        converse(&mut d, &mut bmc, secs(300));
        assert_eq!(reasons(&d), ["ipmi SEL: power supply #3: failure detected"]);
        assert_eq!(d.poll_mark(), Some(SelMark { erased: 1, last: None }));
    }

    proptest::proptest! {
        /// A BMC's answers are outside input: answers mangled any way (cut short, a byte
        /// changed, another completion code) never panic the conversation or its judges, and
        /// one request at a time stays the rule.
        #[test]
        fn mangled_answers_never_panic(
            edits in proptest::collection::vec((0u8..4, 0usize..64, proptest::num::u8::ANY), 1..300),
        ) {
            let (mut c, mut bmc) = (Conversation::new(secs(0), None), FakeBmc::new());
            bmc.add_sel(sel(0, 0x01, 0x0c, 9, 0x6f, 0xa1));
            let mut t = 0u64;
            for (kind, at, value) in edits {
                let now = Instant::from_millis(t);
                match c.poll_request(now) {
                    Some((msgid, request)) => {
                        prop_assert!(c.poll_request(now).is_none());
                        let mut a = bmc.answer(&request);
                        match kind {
                            0 => {}
                            1 => a.truncate(at % (a.len() + 1)),
                            2 if !a.is_empty() => {
                                let i = at % a.len();
                                a[i] = value;
                            }
                            _ => a[0] = value,
                        }
                        c.handle_response(now, msgid, &a);
                    }
                    None => t += 700,
                }
                if value % 7 == 0 {
                    bmc.add_sel(sel(0, value, value % 16, 9, 0x6f, value));
                }
                c.handle_timeouts(now);
                let mut r = Reasons::new();
                c.reasons(&mut r, &"/dev/ipmi0");
            }
        }
    }
}
