//! Judging what the BMC says (SPEC §7.6 `ipmi`): its threshold sensors against the thresholds
//! of their sensor records, the failure entries of its System Event Log, and whether it answers
//! at all. Pure and allocation-free: IPMI response bytes (exactly as the kernel's IPMI device
//! hands them over: completion code first) and instants come in, verdicts and reasons come out.
//!
//! It does not talk to the device nor decide what to ask next (that is `drivers::ipmi`), and
//! it does not format status.
//!
//! The bytes (IPMI v2.0 rev 1.1; offsets below are 0-based into the record or response):
//! - A Full Sensor Record (SDR type 0x01, table 43-1): [7] sensor number, [12] sensor type,
//!   [13] event/reading type (0x01: threshold), [18] readable threshold mask (bit 0 lower
//!   non-critical, 1 lower critical, 2 lower non-recoverable, 3 upper non-critical, 4 upper
//!   critical, 5 upper non-recoverable), [20] bits 7:6 the analog data format (unsigned, 1's
//!   complement, 2's complement, none), [21] the base unit, [23] the linearization, [24..28]
//!   M and B (10-bit signed each, the two high bits in [25] and [27] bits 7:6), [29] R (K2,
//!   bits 7:4) and B (K1, bits 3:0) exponents (4-bit signed), [36..42] the thresholds UNR,
//!   UC, UNC, LNR, LC, LNC (raw), [42] and [43] the positive- and negative-going hysteresis
//!   (raw), [47] the ID string's type and length (bits 4:0), [48..] its bytes. A raw value x
//!   reads `(M x + B 10^K1) 10^K2` in the unit (linear sensors only: the non-linear ones need
//!   their reading factors, are rare, and are skipped, as are non-threshold sensors and
//!   records of other types).
//! - Get Sensor Reading (netfn 0x04, cmd 0x2d): [0] completion code, [1] the raw reading,
//!   [2] bit 6 clear: scanning disabled, bit 5 set: reading unavailable, [3] the BMC's own
//!   threshold status (bits as the readable mask: "at or past" each threshold).
//! - Get SEL Info (netfn 0x0a, cmd 0x40): [0] cc, [1] version, [2..4] entries, [4..6] free
//!   bytes, [6..10] the most recent addition's timestamp, [10..14] the most recent erase's.
//! - Get SEL Entry (netfn 0x0a, cmd 0x43): [0] cc, [1..3] the next record's ID (0xffff: this
//!   was the last), [3..19] the 16-byte record: [0..2] its ID, [2] its type (0x02: a system
//!   event), [3..7] timestamp, [7..9] generator (bit 0 of [7] clear: [7] is the IPMB address
//!   of the controller that owns the sensor, [8] bits 1:0 its LUN), [10] sensor type, [11]
//!   sensor number, [12] bit 7 deassertion, bits 6:0 the event type (0x01 threshold, 0x6f
//!   sensor-specific), [13] bits 3:0 the offset, [14], [15] event data 2 and 3.
//!
//! Rules:
//! - Sensors: a reading at or past an upper or lower critical or non-recoverable threshold
//!   that the record makes readable, or the BMC's own status bit for one of those, is out;
//!   `DEBOUNCE_READS` consecutive out readings make the sensor bad, as `sensor`'s debounce
//!   does for hwmon. Back within: `DEBOUNCE_READS` consecutive readings inside every such
//!   threshold by the hysteresis margin, with the status bits clear: the record's own
//!   hysteresis when it gives one (negative-going for upper thresholds, positive-going for
//!   lower ones), else `sensor`'s (2 °C for temperatures, 2 % of the threshold otherwise).
//!   Non-critical thresholds are shown, not judged (SPEC §7.6: critical). A reading that
//!   fails or is unavailable restarts the streak and keeps the state.
//! - SEL: entries logged before a node's first run are history, not news (or they would keep
//!   a repaired node out of service forever); a later run goes on from where the earlier one
//!   acknowledged the log (`drivers::ipmi`). Of each new entry, an assertion (not a deassertion) of a failure type latches the node
//!   unhealthy until `hapair cleanup` (without a resource) or until the SEL is cleared (its
//!   erase timestamp moves): a failed DIMM or supply does not heal when the BMC stops
//!   logging, and an operator who has looked, or replaced the part, says so. Failure types,
//!   of SPEC §7.6's kinds (table 42-3): memory (0x0c) uncorrectable ECC, parity, scrub
//!   failed, device disabled, correctable-ECC logging limit reached, critical overtemperature;
//!   processor (0x07) IERR, thermal trip, FRB1/2/3, configuration error, uncorrectable
//!   CPU-complex error, disabled, uncorrectable machine check; power supply (0x08) failure,
//!   predictive failure, input lost or out of range, configuration error; temperature (0x01)
//!   and fan (0x04) threshold events at a critical or non-recoverable threshold. The
//!   threshold events of a sensor this judge reads live are left to its reading (counted
//!   and shown, never latched): it is unhealthy while out, healthy once back, and a latch
//!   would keep it out after the excursion ended. Correctable memory errors (memory offset 0)
//!   and correctable machine checks (processor offset 0x0c) count toward a rate as
//!   `errors edac` does, with SPEC §7.6's defaults (`CORRECTABLE_MAX` in `CORRECTABLE_WINDOW`);
//!   past it the node is unhealthy until the window has passed them. Other entries are
//!   counted only.
//! - The BMC: `SILENT_AFTER` requests in a row without an answer (no response within the
//!   driver's timeout, or the kernel's own "timeout" and "unspecified" completion codes 0xc3
//!   and 0xff) make it silent, a reason of its own; one answer, whatever its completion code,
//!   makes it reachable again. A device that cannot be opened is reported by the driver.

use super::Reasons;
use super::errors::{ErrorJudge, ErrorKind, Sample, Verdict as RateVerdict};
use super::sensor::{Debounce, HYSTERESIS_PERCENT, TEMP_HYSTERESIS_MILLI_C};
use crate::core::time::{Duration, Instant};
use core::fmt;

/// Network function of the sensor/event commands.
pub const NETFN_SENSOR: u8 = 0x04;
/// Network function of the storage commands (SDR repository, SEL).
pub const NETFN_STORAGE: u8 = 0x0a;
/// Get Sensor Reading (netfn 0x04).
pub const CMD_GET_SENSOR_READING: u8 = 0x2d;
/// Get SDR Repository Info (netfn 0x0a).
pub const CMD_GET_SDR_REPOSITORY_INFO: u8 = 0x20;
/// Reserve SDR Repository (netfn 0x0a).
pub const CMD_RESERVE_SDR_REPOSITORY: u8 = 0x22;
/// Get SDR (netfn 0x0a).
pub const CMD_GET_SDR: u8 = 0x23;
/// Get SEL Info (netfn 0x0a).
pub const CMD_GET_SEL_INFO: u8 = 0x40;
/// Get SEL Entry (netfn 0x0a).
pub const CMD_GET_SEL_ENTRY: u8 = 0x43;

/// Completion code: the reservation was cancelled (re-reserve and read again).
pub const CC_RESERVATION_CANCELLED: u8 = 0xc5;
/// Completion code: the record or sensor is not present.
pub const CC_NOT_PRESENT: u8 = 0xcb;
/// Completion code the kernel gives a request the BMC did not answer in time.
pub const CC_TIMEOUT: u8 = 0xc3;
/// Completion code the kernel gives a request it could not deliver (and "unspecified").
pub const CC_UNSPECIFIED: u8 = 0xff;

/// The SDR record type of a Full Sensor Record.
pub const SDR_FULL_SENSOR: u8 = 0x01;
/// The length of a record's header: ID (2), version, type, length of the rest.
pub const SDR_HEADER_LEN: usize = 5;
/// The longest Full Sensor Record: the header, 43 bytes, and a 16-byte ID string.
pub const SDR_FULL_LEN_MAX: usize = 64;
/// The length of a SEL record.
pub const SEL_RECORD_LEN: usize = 16;
/// Longest sensor name (the record's ID string) kept.
pub const SENSOR_NAME_LEN_MAX: usize = 16;

/// Consecutive readings a sensor needs to go bad, and to come back (as `sensor`'s default).
pub const DEBOUNCE_READS: u8 = 3;
/// Requests in a row without an answer after which the BMC is silent.
pub const SILENT_AFTER: u32 = 2;
/// Correctable errors in the SEL allowed within `CORRECTABLE_WINDOW` (SPEC §7.6 defaults).
pub const CORRECTABLE_MAX: u32 = 10;
/// The window of `CORRECTABLE_MAX`.
pub const CORRECTABLE_WINDOW: Duration = Duration::from_secs(3600);

/// Sensor types of SPEC §7.6's failure kinds (table 42-3).
mod sensor_type {
    pub const TEMPERATURE: u8 = 0x01;
    pub const VOLTAGE: u8 = 0x02;
    pub const CURRENT: u8 = 0x03;
    pub const FAN: u8 = 0x04;
    pub const PROCESSOR: u8 = 0x07;
    pub const POWER_SUPPLY: u8 = 0x08;
    pub const MEMORY: u8 = 0x0c;
}

/// The event/reading type of a threshold sensor and of a threshold event.
const EVENT_THRESHOLD: u8 = 0x01;
/// The event/reading type of a sensor-specific event.
const EVENT_SENSOR_SPECIFIC: u8 = 0x6f;

/// Why a response could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseError {
    /// The BMC answered with this completion code (not 0).
    Completion(u8),
    /// Shorter than its command's answer.
    Short,
    /// A record that contradicts itself (a length past its bytes).
    Malformed,
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseError::Completion(cc) => write!(f, "completion code {cc:#04x}"),
            ResponseError::Short => f.write_str("response too short"),
            ResponseError::Malformed => f.write_str("malformed record"),
        }
    }
}

/// The completion code of `data` and the rest, or why not.
fn completed(data: &[u8], len_min: usize) -> Result<&[u8], ResponseError> {
    match data.first() {
        None => Err(ResponseError::Short),
        Some(&0) if data.len() >= len_min => Ok(data),
        Some(&0) => Err(ResponseError::Short),
        Some(&cc) => Err(ResponseError::Completion(cc)),
    }
}

/// The unit of a sensor (its record's base unit, table 43-15), as status shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Degrees Celsius (code 1).
    Celsius,
    /// Volts (code 4).
    Volts,
    /// Amperes (code 5).
    Amps,
    /// Watts (code 6).
    Watts,
    /// Revolutions per minute (code 18).
    Rpm,
    /// Any other code, shown bare.
    Other(u8),
}

impl Unit {
    /// The unit of base unit code `code`.
    pub const fn from_code(code: u8) -> Unit {
        match code {
            1 => Unit::Celsius,
            4 => Unit::Volts,
            5 => Unit::Amps,
            6 => Unit::Watts,
            18 => Unit::Rpm,
            c => Unit::Other(c),
        }
    }

    /// The unit's symbol in status (`C`, `V`, `A`, `W`, `RPM`; empty for others).
    pub const fn symbol(self) -> &'static str {
        match self {
            Unit::Celsius => "C",
            Unit::Volts => "V",
            Unit::Amps => "A",
            Unit::Watts => "W",
            Unit::Rpm => "RPM",
            Unit::Other(_) => "",
        }
    }
}

/// How the raw byte of a reading is signed (the record's analog data format).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// 0..255.
    Unsigned,
    /// -127..127 (one's complement; 0xff is -0).
    OnesComplement,
    /// -128..127.
    TwosComplement,
}

/// The linear conversion of a record: `(M x + B 10^K1) 10^K2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conversion {
    /// How the raw byte is signed.
    pub format: Format,
    /// M, 10-bit signed.
    pub m: i16,
    /// B, 10-bit signed.
    pub b: i16,
    /// K1, B's exponent, 4-bit signed.
    pub b_exp: i8,
    /// K2, the result's exponent, 4-bit signed.
    pub r_exp: i8,
}

impl Conversion {
    /// The raw byte as the signed number x.
    pub const fn signed(&self, raw: u8) -> i64 {
        match self.format {
            Format::Unsigned => raw as i64,
            Format::TwosComplement => raw as i8 as i64,
            Format::OnesComplement if raw & 0x80 != 0 => -((!raw & 0x7f) as i64),
            Format::OnesComplement => raw as i64,
        }
    }

    /// The real value of raw byte `raw`, in thousandths of the unit, rounded.
    pub fn milli(&self, raw: u8) -> i64 {
        let x = i128::from(self.signed(raw));
        let mx = scale(i128::from(self.m) * x, i32::from(self.r_exp) + 3);
        let b = scale(i128::from(self.b), i32::from(self.b_exp) + i32::from(self.r_exp) + 3);
        clamp(mx + b)
    }

    /// A difference of `raw` counts (a hysteresis), in thousandths of the unit: `|M| raw 10^K2`.
    pub fn milli_delta(&self, raw: u8) -> i64 {
        let m = i128::from(self.m).abs();
        clamp(scale(m * i128::from(raw), i32::from(self.r_exp) + 3))
    }
}

/// `v * 10^exp`, rounded half away from zero when `exp` is negative. |exp| stays within 18:
/// the exponents are 4-bit.
fn scale(v: i128, exp: i32) -> i128 {
    let p = 10i128.pow(exp.unsigned_abs());
    if exp >= 0 {
        v * p
    } else {
        let half = p / 2;
        if v >= 0 { (v + half) / p } else { (v - half) / p }
    }
}

fn clamp(v: i128) -> i64 {
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// A sign-extended field of `bits` bits.
const fn sign_extend(v: u16, bits: u32) -> i16 {
    let shift = 16 - bits;
    ((v << shift) as i16) >> shift
}

/// The thresholds of a sensor that its record makes readable, in thousandths of its unit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Thresholds {
    /// Lower non-recoverable.
    pub lower_nr: Option<i64>,
    /// Lower critical.
    pub lower_crit: Option<i64>,
    /// Lower non-critical (shown, not judged).
    pub lower_noncrit: Option<i64>,
    /// Upper non-critical (shown, not judged).
    pub upper_noncrit: Option<i64>,
    /// Upper critical.
    pub upper_crit: Option<i64>,
    /// Upper non-recoverable.
    pub upper_nr: Option<i64>,
}

/// Threshold status bits (the readable mask, the reading's status byte).
mod bit {
    pub const LOWER_NONCRIT: u8 = 1 << 0;
    pub const LOWER_CRIT: u8 = 1 << 1;
    pub const LOWER_NR: u8 = 1 << 2;
    pub const UPPER_NONCRIT: u8 = 1 << 3;
    pub const UPPER_CRIT: u8 = 1 << 4;
    pub const UPPER_NR: u8 = 1 << 5;
    /// The bits that make a sensor out.
    pub const JUDGED: u8 = LOWER_CRIT | LOWER_NR | UPPER_CRIT | UPPER_NR;
}

/// A threshold sensor as its Full Sensor Record describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SensorRecord {
    /// The IPMB address of the controller that owns it (0x20: the BMC).
    pub owner: u8,
    /// Its LUN on that controller.
    pub lun: u8,
    /// Its number (what Get Sensor Reading asks for).
    pub number: u8,
    /// Its sensor type (0x01 temperature, 0x02 voltage, 0x04 fan, ...).
    pub sensor_type: u8,
    /// Its unit.
    pub unit: Unit,
    /// Its ID string (ASCII; other bytes become `?`).
    pub name: heapless::String<SENSOR_NAME_LEN_MAX>,
    /// How a raw reading converts.
    pub conversion: Conversion,
    /// Its readable thresholds.
    pub thresholds: Thresholds,
    /// The margin a reading must be back inside an upper threshold by, in thousandths.
    pub upper_margin: i64,
    /// The margin a reading must be back inside a lower threshold by, in thousandths.
    pub lower_margin: i64,
}

/// Parses one SDR record (header included). `Ok(None)` for records this judge does not read:
/// other types, non-threshold sensors, sensors without an analog reading, non-linear ones.
pub fn parse_sdr(record: &[u8]) -> Result<Option<SensorRecord>, ResponseError> {
    if record.len() < SDR_HEADER_LEN {
        return Err(ResponseError::Short);
    }
    let len = SDR_HEADER_LEN + usize::from(record[4]);
    if record[3] != SDR_FULL_SENSOR {
        return Ok(None);
    }
    // Up to the ID string's type/length byte; a record may end before its string's bytes.
    if record.len() < 48 || len < 48 || len > record.len() {
        return Err(ResponseError::Malformed);
    }
    let r = &record[..len];
    let format = match r[20] >> 6 {
        0 => Format::Unsigned,
        1 => Format::OnesComplement,
        2 => Format::TwosComplement,
        _ => return Ok(None),
    };
    if r[13] != EVENT_THRESHOLD || r[23] & 0x7f != 0 {
        return Ok(None);
    }
    let conversion = Conversion {
        format,
        m: sign_extend(u16::from(r[24]) | u16::from(r[25] >> 6) << 8, 10),
        b: sign_extend(u16::from(r[26]) | u16::from(r[27] >> 6) << 8, 10),
        b_exp: sign_extend(u16::from(r[29] & 0x0f), 4) as i8,
        r_exp: sign_extend(u16::from(r[29] >> 4), 4) as i8,
    };
    let readable = r[18];
    let at = |b: u8, i: usize| (readable & b != 0).then(|| conversion.milli(r[i]));
    let thresholds = Thresholds {
        upper_nr: at(bit::UPPER_NR, 36),
        upper_crit: at(bit::UPPER_CRIT, 37),
        upper_noncrit: at(bit::UPPER_NONCRIT, 38),
        lower_nr: at(bit::LOWER_NR, 39),
        lower_crit: at(bit::LOWER_CRIT, 40),
        lower_noncrit: at(bit::LOWER_NONCRIT, 41),
    };
    let unit = Unit::from_code(r[21]);
    let margin = |hyst: u8, t: Option<i64>| match (hyst, unit) {
        (1.., _) => conversion.milli_delta(hyst),
        (0, Unit::Celsius) => TEMP_HYSTERESIS_MILLI_C,
        (0, _) => t.map_or(0, |t| t.saturating_abs().saturating_mul(HYSTERESIS_PERCENT) / 100),
    };
    let upper = thresholds.upper_crit.or(thresholds.upper_nr);
    let lower = thresholds.lower_crit.or(thresholds.lower_nr);
    let name = id_string(r[47], r.get(48..).unwrap_or_default());
    Ok(Some(SensorRecord {
        owner: r[5],
        lun: r[6] & 0x03,
        number: r[7],
        sensor_type: r[12],
        unit,
        name,
        conversion,
        thresholds,
        // Negative-going hysteresis brings a reading back under an upper threshold,
        // positive-going back over a lower one.
        upper_margin: margin(r[43], upper),
        lower_margin: margin(r[42], lower),
    }))
}

/// Decodes an SDR ID string: `code` is its type/length byte (bits 7:6 the type, 4:0 the
/// length in bytes), `bytes` what follows it in the record. 8-bit ASCII (and Unicode, taken
/// byte by byte), 6-bit packed ASCII (four characters in three bytes, least significant bits
/// first, each plus 0x20) and BCD plus; bytes that are not printable ASCII become `?`,
/// trailing spaces (the padding of packed strings) go, and what passes the capacity is cut.
pub fn id_string(code: u8, bytes: &[u8]) -> heapless::String<SENSOR_NAME_LEN_MAX> {
    let bytes = &bytes[..usize::from(code & 0x1f).min(bytes.len())];
    let mut name = heapless::String::<SENSOR_NAME_LEN_MAX>::new();
    let mut put = |c: u8| {
        let c = if c.is_ascii_graphic() || c == b' ' { char::from(c) } else { '?' };
        // Past the capacity the name is cut.
        let _ = name.push(c);
    };
    match code >> 6 {
        0b10 => {
            let bits = bytes.len() * 8;
            for i in 0..bits / 6 {
                let (at, shift) = ((i * 6) / 8, (i * 6) % 8);
                let word =
                    u16::from(bytes[at]) | bytes.get(at + 1).map_or(0, |&b| u16::from(b) << 8);
                put(((word >> shift) & 0x3f) as u8 + 0x20);
            }
        }
        0b01 => {
            const BCD: &[u8; 16] = b"0123456789 -.:,_";
            for &b in bytes {
                put(BCD[usize::from(b & 0x0f)]);
                put(BCD[usize::from(b >> 4)]);
            }
        }
        _ => bytes.iter().for_each(|&b| put(b)),
    }
    while name.ends_with(' ') {
        name.pop();
    }
    name
}

/// The header of an SDR record: its ID, its type and the length of its body.
pub fn parse_sdr_header(bytes: &[u8]) -> Result<(u16, u8, u8), ResponseError> {
    match bytes {
        [lo, hi, _, kind, len, ..] => Ok((u16::from_le_bytes([*lo, *hi]), *kind, *len)),
        _ => Err(ResponseError::Short),
    }
}

/// A Get SDR answer: the next record's ID and the bytes read.
pub fn parse_get_sdr(data: &[u8]) -> Result<(u16, &[u8]), ResponseError> {
    let d = completed(data, 3)?;
    Ok((u16::from_le_bytes([d[1], d[2]]), &d[3..]))
}

/// A Reserve SDR Repository answer: the reservation ID.
pub fn parse_reservation(data: &[u8]) -> Result<u16, ResponseError> {
    let d = completed(data, 3)?;
    Ok(u16::from_le_bytes([d[1], d[2]]))
}

/// A Get SDR Repository Info answer: how many records the repository holds.
pub fn parse_sdr_info(data: &[u8]) -> Result<u16, ResponseError> {
    let d = completed(data, 4)?;
    Ok(u16::from_le_bytes([d[2], d[3]]))
}

/// One Get Sensor Reading answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reading {
    /// A reading: the raw byte and the BMC's threshold status bits.
    Value {
        /// The raw reading.
        raw: u8,
        /// The threshold status (bit 0 lower non-critical ... bit 5 upper non-recoverable).
        status: u8,
    },
    /// Scanning is disabled or the reading is unavailable.
    Unavailable,
}

/// Parses a Get Sensor Reading answer.
pub fn parse_reading(data: &[u8]) -> Result<Reading, ResponseError> {
    let d = completed(data, 3)?;
    if d[2] & 0x40 == 0 || d[2] & 0x20 != 0 {
        return Ok(Reading::Unavailable);
    }
    Ok(Reading::Value { raw: d[1], status: d.get(3).copied().unwrap_or(0) & 0x3f })
}

/// Which threshold a bad sensor is past.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Breach {
    /// At or above the upper critical threshold (thousandths).
    UpperCrit(i64),
    /// At or above the upper non-recoverable threshold.
    UpperNr(i64),
    /// At or below the lower critical threshold.
    LowerCrit(i64),
    /// At or below the lower non-recoverable threshold.
    LowerNr(i64),
    /// The BMC's status says critical or non-recoverable while the value is inside the
    /// thresholds of the record (the BMC's live thresholds differ from its record's).
    Status(u8),
}

/// Which threshold `value` (thousandths) is at or past, the most severe first; the BMC's
/// status bits for critical and non-recoverable count too.
pub fn breach_of(t: &Thresholds, value: i64, status: u8) -> Option<Breach> {
    if let Some(l) = t.upper_nr.filter(|&l| value >= l) {
        return Some(Breach::UpperNr(l));
    }
    if let Some(l) = t.lower_nr.filter(|&l| value <= l) {
        return Some(Breach::LowerNr(l));
    }
    if let Some(l) = t.upper_crit.filter(|&l| value >= l) {
        return Some(Breach::UpperCrit(l));
    }
    if let Some(l) = t.lower_crit.filter(|&l| value <= l) {
        return Some(Breach::LowerCrit(l));
    }
    (status & bit::JUDGED != 0).then_some(Breach::Status(status & bit::JUDGED))
}

/// The judgement on one sensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SensorVerdict {
    /// Inside its critical thresholds (or not read yet).
    Ok,
    /// Past one (debounced).
    Bad(Breach),
}

/// The running judgement of one BMC sensor.
#[derive(Clone, Debug, Default)]
pub struct SensorJudge {
    bad: Debounce,
    breach: Option<Breach>,
    value: Option<i64>,
    status: u8,
}

impl SensorJudge {
    /// Feeds one Get Sensor Reading answer (completion code first) for `record`.
    pub fn handle_reading(&mut self, record: &SensorRecord, data: &[u8]) -> SensorVerdict {
        let (raw, status) = match parse_reading(data) {
            Ok(Reading::Value { raw, status }) => (raw, status),
            Ok(Reading::Unavailable) | Err(_) => {
                self.handle_read_error();
                return self.verdict();
            }
        };
        let value = record.conversion.milli(raw);
        self.value = Some(value);
        self.status = status;
        let out = breach_of(&record.thresholds, value, status);
        if let Some(b) = out {
            self.breach = Some(b);
        }
        let back = out.is_none() && inside_with_margin(record, value);
        self.bad.feed(DEBOUNCE_READS, out.is_some(), back);
        self.verdict()
    }

    /// A reading failed or is unavailable: the streak starts over, the state stays, the
    /// value is unknown.
    pub fn handle_read_error(&mut self) {
        self.bad.reset_streak();
        self.value = None;
    }

    /// The current verdict.
    pub fn verdict(&self) -> SensorVerdict {
        if self.bad.is_on() {
            SensorVerdict::Bad(self.breach.unwrap_or(Breach::Status(0)))
        } else {
            SensorVerdict::Ok
        }
    }

    /// The last reading in thousandths of the unit; `None` before one or after a failure.
    pub fn value(&self) -> Option<i64> {
        self.value
    }

    /// The BMC's threshold status bits of the last reading.
    pub fn status(&self) -> u8 {
        self.status
    }
}

/// Whether `value` is inside every judged threshold by the record's margins.
fn inside_with_margin(record: &SensorRecord, value: i64) -> bool {
    let t = &record.thresholds;
    let under = |l: Option<i64>| l.is_none_or(|l| value < l.saturating_sub(record.upper_margin));
    let over = |l: Option<i64>| l.is_none_or(|l| value > l.saturating_add(record.lower_margin));
    under(t.upper_crit) && under(t.upper_nr) && over(t.lower_crit) && over(t.lower_nr)
}

/// A value in thousandths of `unit`, printed in the unit (`80.0 C`, `3.300 V`, `2500 RPM`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Value(pub Unit, pub i64);

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (sign, abs) = (if self.1 < 0 { "-" } else { "" }, self.1.unsigned_abs());
        let (whole, frac) = (abs / 1000, abs % 1000);
        match self.0 {
            Unit::Rpm => write!(f, "{sign}{whole} RPM"),
            Unit::Celsius => write!(f, "{sign}{whole}.{} C", frac / 100),
            u if frac == 0 => write!(f, "{sign}{whole} {}", u.symbol()),
            u => write!(f, "{sign}{whole}.{frac:03} {}", u.symbol()),
        }
    }
}

/// Appends the reason of a bad sensor: `ipmi CPU Temp: above upper critical 80.0 C`.
pub fn sensor_reason(reasons: &mut Reasons, record: &SensorRecord, verdict: SensorVerdict) {
    let SensorVerdict::Bad(breach) = verdict else { return };
    let (name, u) = (record.name.as_str(), record.unit);
    match breach {
        Breach::UpperCrit(l) => {
            reasons.push(format_args!("ipmi {name}: above upper critical {}", Value(u, l)))
        }
        Breach::UpperNr(l) => {
            reasons.push(format_args!("ipmi {name}: above upper non-recoverable {}", Value(u, l)))
        }
        Breach::LowerCrit(l) => {
            reasons.push(format_args!("ipmi {name}: below lower critical {}", Value(u, l)))
        }
        Breach::LowerNr(l) => {
            reasons.push(format_args!("ipmi {name}: below lower non-recoverable {}", Value(u, l)))
        }
        Breach::Status(_) => reasons.push(format_args!("ipmi {name}: critical (BMC status)")),
    }
}

/// A Get SEL Info answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SelInfo {
    /// Entries in the log.
    pub entries: u16,
    /// The most recent addition's timestamp.
    pub added: u32,
    /// The most recent erase's timestamp.
    pub erased: u32,
}

/// Parses a Get SEL Info answer.
pub fn parse_sel_info(data: &[u8]) -> Result<SelInfo, ResponseError> {
    let d = completed(data, 14)?;
    let u32_at = |i: usize| u32::from_le_bytes([d[i], d[i + 1], d[i + 2], d[i + 3]]);
    Ok(SelInfo { entries: u16::from_le_bytes([d[2], d[3]]), added: u32_at(6), erased: u32_at(10) })
}

/// Parses a Get SEL Entry answer: the next record's ID and the record.
pub fn parse_sel_entry(data: &[u8]) -> Result<(u16, [u8; SEL_RECORD_LEN]), ResponseError> {
    let d = completed(data, 3 + SEL_RECORD_LEN)?;
    let mut record = [0; SEL_RECORD_LEN];
    record.copy_from_slice(&d[3..3 + SEL_RECORD_LEN]);
    Ok((u16::from_le_bytes([d[1], d[2]]), record))
}

/// What a SEL entry means to the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelClass {
    /// The assertion of a failure: latches the node unhealthy.
    Failure,
    /// A corrected error: counts toward the rate.
    Correctable,
    /// Anything else: counted only.
    Other,
}

/// A SEL system event record, decoded as far as the judge needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SelEvent {
    /// The record's ID.
    pub id: u16,
    /// The BMC's timestamp (seconds, its clock).
    pub timestamp: u32,
    /// The generator's IPMB address (bit 0 of the field clear), or `None` for software.
    pub owner: Option<u8>,
    /// The generator's LUN.
    pub lun: u8,
    /// The sensor type.
    pub sensor_type: u8,
    /// The sensor number.
    pub sensor_number: u8,
    /// The event type (0x01 threshold, 0x6f sensor-specific, ...).
    pub event_type: u8,
    /// A deassertion (the condition ended).
    pub deassertion: bool,
    /// The offset: which state or threshold.
    pub offset: u8,
}

impl SelEvent {
    /// Decodes a 16-byte SEL record; `None` for records that are not system events (OEM).
    pub fn parse(r: &[u8; SEL_RECORD_LEN]) -> Option<SelEvent> {
        if r[2] != 0x02 {
            return None;
        }
        Some(SelEvent {
            id: u16::from_le_bytes([r[0], r[1]]),
            timestamp: u32::from_le_bytes([r[3], r[4], r[5], r[6]]),
            owner: (r[7] & 1 == 0).then_some(r[7]),
            lun: r[8] & 0x03,
            sensor_type: r[10],
            sensor_number: r[11],
            event_type: r[12] & 0x7f,
            deassertion: r[12] & 0x80 != 0,
            offset: r[13] & 0x0f,
        })
    }

    /// What it means (before the live-sensor rule: `SelJudge::handle_entry`).
    pub fn class(&self) -> SelClass {
        if self.deassertion {
            return SelClass::Other;
        }
        if self.is_threshold_failure() || self.failure_name().is_some() {
            return SelClass::Failure;
        }
        use sensor_type::{MEMORY, PROCESSOR};
        match (self.event_type, self.sensor_type, self.offset) {
            (EVENT_SENSOR_SPECIFIC, MEMORY, 0x00) | (EVENT_SENSOR_SPECIFIC, PROCESSOR, 0x0c) => {
                SelClass::Correctable
            }
            _ => SelClass::Other,
        }
    }

    /// A temperature or fan threshold event at a critical or non-recoverable threshold.
    pub fn is_threshold_failure(&self) -> bool {
        use sensor_type::{FAN, TEMPERATURE};
        self.event_type == EVENT_THRESHOLD
            && matches!(self.sensor_type, TEMPERATURE | FAN)
            && matches!(self.offset, 0x02..=0x05 | 0x08..=0x0b)
    }

    /// The name of a sensor-specific failure offset (table 42-3), `None` for the others.
    pub fn failure_name(&self) -> Option<&'static str> {
        use sensor_type::{MEMORY, POWER_SUPPLY, PROCESSOR};
        if self.event_type != EVENT_SENSOR_SPECIFIC {
            return None;
        }
        Some(match (self.sensor_type, self.offset) {
            (MEMORY, 0x01) => "uncorrectable ECC",
            (MEMORY, 0x02) => "parity error",
            (MEMORY, 0x03) => "memory scrub failed",
            (MEMORY, 0x04) => "memory device disabled",
            (MEMORY, 0x05) => "correctable ECC logging limit reached",
            (MEMORY, 0x0a) => "critical overtemperature",
            (PROCESSOR, 0x00) => "IERR",
            (PROCESSOR, 0x01) => "thermal trip",
            (PROCESSOR, 0x02) => "FRB1/BIST failure",
            (PROCESSOR, 0x03) => "FRB2 hang in POST",
            (PROCESSOR, 0x04) => "FRB3 startup failure",
            (PROCESSOR, 0x05) => "configuration error",
            (PROCESSOR, 0x06) => "uncorrectable CPU-complex error",
            (PROCESSOR, 0x08) => "processor disabled",
            (PROCESSOR, 0x0b) => "uncorrectable machine check",
            (POWER_SUPPLY, 0x01) => "failure detected",
            (POWER_SUPPLY, 0x02) => "predictive failure",
            (POWER_SUPPLY, 0x03) => "input lost",
            (POWER_SUPPLY, 0x04) => "input lost or out of range",
            (POWER_SUPPLY, 0x05) => "input out of range",
            (POWER_SUPPLY, 0x06) => "configuration error",
            _ => return None,
        })
    }
}

/// The names of the sensor types judged.
fn type_name(t: u8) -> &'static str {
    match t {
        sensor_type::TEMPERATURE => "temperature",
        sensor_type::VOLTAGE => "voltage",
        sensor_type::CURRENT => "current",
        sensor_type::FAN => "fan",
        sensor_type::PROCESSOR => "processor",
        sensor_type::POWER_SUPPLY => "power supply",
        sensor_type::MEMORY => "memory",
        _ => "sensor",
    }
}

/// The names of the threshold event offsets (table 42-2).
const THRESHOLD_EVENTS: [&str; 12] = [
    "lower non-critical going low",
    "lower non-critical going high",
    "lower critical going low",
    "lower critical going high",
    "lower non-recoverable going low",
    "lower non-recoverable going high",
    "upper non-critical going low",
    "upper non-critical going high",
    "upper critical going low",
    "upper critical going high",
    "upper non-recoverable going low",
    "upper non-recoverable going high",
];

impl fmt::Display for SelEvent {
    /// `memory #9: uncorrectable ECC`, `temperature #1: upper critical going high`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} #{}: ", type_name(self.sensor_type), self.sensor_number)?;
        if let Some(name) = self.failure_name() {
            f.write_str(name)?;
        } else if self.event_type == EVENT_THRESHOLD
            && let Some(name) = THRESHOLD_EVENTS.get(usize::from(self.offset))
        {
            f.write_str(name)?;
        } else {
            write!(f, "event type {:#04x} offset {}", self.event_type, self.offset)?;
        }
        if self.deassertion {
            f.write_str(" (deasserted)")?;
        }
        Ok(())
    }
}

/// The running judgement of the System Event Log.
#[derive(Clone, Debug)]
pub struct SelJudge {
    /// The first failure since the last cleanup: the node is unhealthy while it stands.
    latched: Option<SelEvent>,
    /// The most recent failure (latched or left to a live sensor).
    last_failure: Option<SelEvent>,
    entries: u64,
    failures: u64,
    correctable: u64,
    rate: ErrorJudge,
}

impl SelJudge {
    /// Nothing seen yet; `now` starts the correctable-error window.
    pub fn new(now: Instant) -> SelJudge {
        let mut rate = ErrorJudge::new(ErrorKind::Edac, CORRECTABLE_MAX, CORRECTABLE_WINDOW);
        rate.handle_sample(now, Sample::Read { count: 0, uncorrected: 0 });
        SelJudge {
            latched: None,
            last_failure: None,
            entries: 0,
            failures: 0,
            correctable: 0,
            rate,
        }
    }

    /// Feeds one new SEL record read at `now`. `watched(owner, lun, number)` says whether
    /// this judge reads that sensor live (its threshold events are then left to its reading).
    /// Returns what it counted as.
    pub fn handle_entry(
        &mut self,
        now: Instant,
        record: &[u8; SEL_RECORD_LEN],
        watched: impl Fn(u8, u8, u8) -> bool,
    ) -> SelClass {
        self.entries = self.entries.saturating_add(1);
        let Some(event) = SelEvent::parse(record) else { return SelClass::Other };
        // A threshold event of a sensor read live: its reading judges it.
        let live = event.is_threshold_failure()
            && event.owner.is_some_and(|o| watched(o, event.lun, event.sensor_number));
        match event.class() {
            SelClass::Failure => {
                self.failures = self.failures.saturating_add(1);
                self.last_failure = Some(event);
                if live {
                    return SelClass::Other;
                }
                self.latched.get_or_insert(event);
                SelClass::Failure
            }
            SelClass::Correctable => {
                self.correctable = self.correctable.saturating_add(1);
                self.handle_wake(now);
                SelClass::Correctable
            }
            SelClass::Other => SelClass::Other,
        }
    }

    /// Moves the correctable-error window to `now`.
    pub fn handle_wake(&mut self, now: Instant) {
        let sample = Sample::Read { count: self.correctable, uncorrected: 0 };
        self.rate.handle_sample(now, sample);
    }

    /// The operator has looked (`hapair cleanup`), or the SEL was cleared: the latch is
    /// released. The correctable-error window stays: it passes on its own.
    pub fn handle_cleanup(&mut self) {
        self.latched = None;
    }

    /// The failure that holds the node unhealthy, if any.
    pub fn latched(&self) -> Option<&SelEvent> {
        self.latched.as_ref()
    }

    /// The most recent failure entry seen.
    pub fn last_failure(&self) -> Option<&SelEvent> {
        self.last_failure.as_ref()
    }

    /// New entries read since start.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Failure entries read since start.
    pub fn failures(&self) -> u64 {
        self.failures
    }

    /// Correctable-error entries read since start.
    pub fn correctable(&self) -> u64 {
        self.correctable
    }

    /// Correctable-error entries within the window.
    pub fn correctable_in_window(&self) -> u64 {
        self.rate.in_window()
    }

    /// True when the SEL makes the node unhealthy.
    pub fn is_unhealthy(&self) -> bool {
        self.latched.is_some() || self.rate.verdict() == RateVerdict::OverLimit
    }

    /// Appends the SEL's reasons: `ipmi SEL: memory #9: uncorrectable ECC`.
    pub fn reasons(&self, reasons: &mut Reasons) {
        if let Some(e) = &self.latched {
            reasons.push(format_args!("ipmi SEL: {e}"));
        }
        if self.rate.verdict() == RateVerdict::OverLimit {
            reasons.push(format_args!(
                "ipmi SEL: correctable errors over {CORRECTABLE_MAX} in {CORRECTABLE_WINDOW}"
            ));
        }
    }
}

/// Whether the BMC answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BmcReach {
    unanswered: u32,
    answered_once: bool,
}

impl BmcReach {
    /// A response came (any completion code but the kernel's timeout and unspecified).
    pub fn handle_answer(&mut self) {
        self.unanswered = 0;
        self.answered_once = true;
    }

    /// A request went unanswered: no response within the driver's timeout, the kernel's
    /// timeout or unspecified completion code, or a send that failed.
    pub fn handle_no_answer(&mut self) {
        self.unanswered = self.unanswered.saturating_add(1);
    }

    /// Feeds a response's completion code: 0xc3 and 0xff are the kernel's "no answer".
    pub fn handle_completion(&mut self, cc: u8) {
        if matches!(cc, CC_TIMEOUT | CC_UNSPECIFIED) {
            self.handle_no_answer();
        } else {
            self.handle_answer();
        }
    }

    /// `SILENT_AFTER` requests in a row went unanswered.
    pub fn is_silent(&self) -> bool {
        self.unanswered >= SILENT_AFTER
    }

    /// It answered at least once since start.
    pub fn answered_once(&self) -> bool {
        self.answered_once
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The two Full Sensor Records of board/qemu-pair/bmc.sdrs as OpenIPMI's `sdrcomp -r`
    /// compiles them (and ipmi_sim serves them). `CPU Temp`: record 1, owner 0x20 LUN 0,
    /// sensor 1, processor 1, temperature, threshold, readable UNC/UC/UNR (mask 0x38),
    /// unsigned, degrees C, linear, M 1, B 0, accuracy 1, exponents 0; UNR 90, UC 80, UNC 70;
    /// no hysteresis; 8-bit ASCII ID.
    pub const CPU_TEMP_SDR: [u8; 56] = [
        0x01, 0x00, 0x51, 0x01, 0x33, 0x20, 0x00, 0x01, 0x03, 0x01, 0x77, 0x04, 0x01, 0x01, 0x00,
        0x00, 0x00, 0x00, 0x38, 0x00, 0x00, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x01, 0x01, 0x00,
        0x00, 0x00, 0x00, 0x00, 0xff, 0x00, 0x5a, 0x50, 0x46, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0xc8, b'C', b'P', b'U', b' ', b'T', b'e', b'm', b'p',
    ];

    /// `12V`: record 2, sensor 2, system board, voltage, readable LC/UC (0x12), M 6, R
    /// exponent -2 (0.06 V a count), LC 180 (10.8 V), UC 220 (13.2 V), hysteresis 2 counts
    /// each way; its ID in 6-bit packed ASCII (`sdrcomp` packs what has no lower case).
    pub const RAIL_SDR: [u8; 51] = [
        0x02, 0x00, 0x51, 0x01, 0x2e, 0x20, 0x00, 0x02, 0x07, 0x01, 0x45, 0x04, 0x02, 0x01, 0x00,
        0x00, 0x00, 0x00, 0x12, 0x00, 0x00, 0x04, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0xe0,
        0x00, 0x00, 0x00, 0x00, 0xff, 0x00, 0x00, 0xdc, 0x00, 0x00, 0xb4, 0x00, 0x02, 0x02, 0x00,
        0x00, 0x00, 0x83, 0x91, 0x64, 0x03,
    ];

    fn cpu_temp() -> SensorRecord {
        parse_sdr(&CPU_TEMP_SDR).unwrap().unwrap()
    }

    fn rail() -> SensorRecord {
        parse_sdr(&RAIL_SDR).unwrap().unwrap()
    }

    /// A Get Sensor Reading answer as ipmi_sim sends it: cc 0, the raw value, events and
    /// scanning enabled, the BMC's status bits, 0.
    fn reading(raw: u8, status: u8) -> [u8; 5] {
        [0x00, raw, 0xc0, status, 0x00]
    }

    #[test]
    fn a_full_sensor_record_parses_into_real_units() {
        let r = cpu_temp();
        assert_eq!((r.owner, r.lun, r.number, r.sensor_type), (0x20, 0, 1, 0x01));
        assert_eq!((r.unit, r.name.as_str()), (Unit::Celsius, "CPU Temp"));
        let t = r.thresholds;
        let upper = (t.upper_nr, t.upper_crit, t.upper_noncrit);
        assert_eq!(upper, (Some(90_000), Some(80_000), Some(70_000)));
        assert_eq!((t.lower_nr, t.lower_crit, t.lower_noncrit), (None, None, None));
        assert_eq!((r.upper_margin, r.lower_margin), (2000, 2000), "no hysteresis: 2 C");
        let v = rail();
        assert_eq!((v.unit, v.name.as_str(), v.number), (Unit::Volts, "12V", 2));
        assert_eq!(v.conversion.milli(200), 12_000, "200 counts of 0.06 V");
        let t = v.thresholds;
        assert_eq!(
            (t.lower_nr, t.lower_crit, t.upper_crit, t.upper_nr),
            (None, Some(10_800), Some(13_200), None)
        );
        assert_eq!((v.upper_margin, v.lower_margin), (120, 120), "2 counts of 60 mV");
    }

    #[test]
    fn id_strings_decode_in_every_encoding() {
        assert_eq!(id_string(0xc8, b"CPU Temp").as_str(), "CPU Temp");
        assert_eq!(id_string(0x83, &[0x91, 0x64, 0x03]).as_str(), "12V", "6-bit packed");
        // BCD plus: low nibble first.
        assert_eq!(id_string(0x42, &[0x21, 0xf3]).as_str(), "123_");
        assert_eq!(id_string(0xc3, &[b'a', 0x01, 0xe9]).as_str(), "a??");
        assert_eq!(id_string(0xdf, &[b'x'; 40]).len(), SENSOR_NAME_LEN_MAX, "cut");
        assert_eq!(id_string(0xc8, b"ab").as_str(), "ab", "a length past the bytes");
    }

    #[test]
    fn conversions_follow_the_formula() {
        let c = |format, m, b, b_exp, r_exp| Conversion { format, m, b, b_exp, r_exp };
        // A fan: 75 RPM a count.
        assert_eq!(c(Format::Unsigned, 75, 0, 0, 0).milli(40), 3_000_000);
        // A temperature with an offset: M 5, B -20, K1 1, K2 -1: (5 x - 200) / 10 C.
        let t = c(Format::Unsigned, 5, -20, 1, -1);
        assert_eq!(t.milli(0), -20_000);
        assert_eq!(t.milli(0xff), 107_500);
        // Signed raw bytes.
        assert_eq!(c(Format::TwosComplement, 1, 0, 0, 0).milli(0xf6), -10_000);
        assert_eq!(c(Format::OnesComplement, 1, 0, 0, 0).milli(0xf6), -9000);
        assert_eq!(c(Format::OnesComplement, 1, 0, 0, 0).milli(0xff), 0, "-0");
        // A negative M (a reversed sensor) and the widest exponents do not overflow.
        assert_eq!(c(Format::Unsigned, -1, 0, 0, 0).milli(10), -10_000);
        assert!(c(Format::Unsigned, 511, 511, 7, 7).milli(255) > 0);
        assert_eq!(c(Format::Unsigned, 1, 0, 0, -8).milli(255), 0, "rounded to nothing");
        // The 10-bit fields sign-extend: M 0x3ff is -1, B 0x200 is -512.
        let mut rec = RAIL_SDR;
        rec[24..28].copy_from_slice(&[0xff, 0xc0, 0x00, 0x80]);
        let v = parse_sdr(&rec).unwrap().unwrap();
        assert_eq!((v.conversion.m, v.conversion.b), (-1, -512));
    }

    #[test]
    fn records_not_judged_are_skipped_and_bad_ones_refused() {
        // A compact sensor record (type 2), a discrete full record, no analog reading, a
        // non-linear one.
        for (i, v) in [(3, 0x02), (13, 0x6f), (20, 0xc0), (23, 0x01)] {
            let mut r = CPU_TEMP_SDR;
            r[i] = v;
            assert_eq!(parse_sdr(&r), Ok(None), "byte {i} = {v:#x}");
        }
        assert_eq!(parse_sdr(&CPU_TEMP_SDR[..4]), Err(ResponseError::Short));
        assert_eq!(parse_sdr(&CPU_TEMP_SDR[..40]), Err(ResponseError::Malformed));
        let mut long = CPU_TEMP_SDR;
        long[4] = 0x40;
        assert_eq!(parse_sdr(&long), Err(ResponseError::Malformed), "length past the bytes");
        // Every prefix and every byte of a record with edge values: no panic.
        for n in 0..=CPU_TEMP_SDR.len() {
            let _ = parse_sdr(&CPU_TEMP_SDR[..n]);
        }
        for i in 0..CPU_TEMP_SDR.len() {
            for v in [0x00, 0x0f, 0x7f, 0x80, 0xc0, 0xff] {
                let mut r = CPU_TEMP_SDR;
                r[i] = v;
                if let Ok(Some(s)) = parse_sdr(&r) {
                    for x in 0..=255 {
                        let _ = s.conversion.milli(x);
                    }
                }
            }
        }
    }

    #[test]
    fn responses_parse_as_the_bmc_sends_them() {
        assert_eq!(parse_reading(&reading(0x40, 0)), Ok(Reading::Value { raw: 0x40, status: 0 }));
        // Some BMCs leave out the optional status bytes.
        assert_eq!(parse_reading(&[0, 0x55, 0xc0]), Ok(Reading::Value { raw: 0x55, status: 0 }));
        assert_eq!(parse_reading(&[0, 0x55, 0x80, 0x18]), Ok(Reading::Unavailable), "no scan");
        assert_eq!(parse_reading(&[0, 0x55, 0xe0, 0x00]), Ok(Reading::Unavailable));
        assert_eq!(parse_reading(&[0xce]), Err(ResponseError::Completion(0xce)));
        assert_eq!(parse_reading(&[0, 1]), Err(ResponseError::Short));
        assert_eq!(parse_reading(&[]), Err(ResponseError::Short));
        // Get SEL Info as ipmi_sim sends it: v0x51, 3 entries, free space, added, erased,
        // operation support.
        let info = [0, 0x51, 3, 0, 0x50, 0x3e, 0x10, 0x20, 0x30, 0x40, 0x01, 0, 0, 0, 0x0a];
        let want = SelInfo { entries: 3, added: 0x4030_2010, erased: 1 };
        assert_eq!(parse_sel_info(&info), Ok(want));
        assert_eq!(parse_sel_info(&info[..10]), Err(ResponseError::Short));
        let mut entry = [0u8; 19];
        entry[..3].copy_from_slice(&[0, 0xff, 0xff]);
        entry[3..5].copy_from_slice(&[0x07, 0x00]);
        assert_eq!(parse_sel_entry(&entry).map(|(n, r)| (n, r[0])), Ok((0xffff, 7)));
        assert_eq!(parse_sel_entry(&[0xcb]), Err(ResponseError::Completion(CC_NOT_PRESENT)));
        assert_eq!(parse_get_sdr(&[0, 0x03, 0x00, 0x02, 0x00]), Ok((3, &[0x02, 0x00][..])));
        assert_eq!(parse_reservation(&[0, 0x01, 0x00]), Ok(1));
        assert_eq!(parse_sdr_info(&[0, 0x51, 0x02, 0x00, 0, 0]), Ok(2));
        assert_eq!(parse_sdr_header(&CPU_TEMP_SDR[..5]), Ok((1, SDR_FULL_SENSOR, 0x33)));
    }

    #[test]
    fn a_sensor_past_critical_is_bad_after_the_debounce_and_back_with_hysteresis() {
        let (r, mut j) = (cpu_temp(), SensorJudge::default());
        // 80 C is the upper critical threshold: at it is out (IPMI: "at or above").
        assert_eq!(j.handle_reading(&r, &reading(79, 0x08)), SensorVerdict::Ok);
        assert_eq!(j.handle_reading(&r, &reading(80, 0x18)), SensorVerdict::Ok);
        assert_eq!(j.handle_reading(&r, &reading(80, 0x18)), SensorVerdict::Ok);
        let bad = SensorVerdict::Bad(Breach::UpperCrit(80_000));
        assert_eq!(j.handle_reading(&r, &reading(85, 0x18)), bad);
        assert_eq!(j.value(), Some(85_000));
        // Non-recoverable is the more severe breach.
        let nr = SensorVerdict::Bad(Breach::UpperNr(90_000));
        assert_eq!(j.handle_reading(&r, &reading(95, 0x38)), nr);
        // 79 C is inside, but not by 2 C: stays bad however long.
        for _ in 0..10 {
            assert!(matches!(j.handle_reading(&r, &reading(79, 0x08)), SensorVerdict::Bad(_)));
        }
        // 77 C is back by the margin, three times in a row.
        j.handle_reading(&r, &reading(77, 0x08));
        j.handle_reading(&r, &reading(77, 0x08));
        assert_eq!(j.handle_reading(&r, &reading(77, 0x08)), SensorVerdict::Ok);
        // Non-critical is shown, not judged.
        for _ in 0..5 {
            assert_eq!(j.handle_reading(&r, &reading(75, 0x08)), SensorVerdict::Ok);
        }
    }

    #[test]
    fn lower_thresholds_the_bmc_status_and_failed_readings() {
        let (r, mut j) = (rail(), SensorJudge::default());
        for _ in 0..3 {
            j.handle_reading(&r, &reading(180, 0x02));
        }
        assert_eq!(j.verdict(), SensorVerdict::Bad(Breach::LowerCrit(10_800)));
        // Back needs more than 10.8 V + 0.12 V: 182 (10.92 V) is not, 183 is.
        for _ in 0..5 {
            j.handle_reading(&r, &reading(182, 0));
        }
        assert!(matches!(j.verdict(), SensorVerdict::Bad(_)));
        for _ in 0..3 {
            j.handle_reading(&r, &reading(183, 0));
        }
        assert_eq!(j.verdict(), SensorVerdict::Ok);
        // The BMC's status says upper critical while the value is inside the record's: out.
        for _ in 0..3 {
            j.handle_reading(&r, &reading(200, 0x10));
        }
        assert_eq!(j.verdict(), SensorVerdict::Bad(Breach::Status(0x10)));
        // A failed or unavailable reading restarts the streak and forgets the value.
        let mut k = SensorJudge::default();
        k.handle_reading(&r, &reading(170, 0));
        k.handle_reading(&r, &reading(170, 0));
        assert_eq!(k.handle_reading(&r, &[0xcb]), SensorVerdict::Ok);
        assert_eq!(k.value(), None);
        k.handle_reading(&r, &reading(170, 0));
        k.handle_reading(&r, &[0, 170, 0xc0 | 0x20, 0]);
        assert_eq!(k.handle_reading(&r, &reading(170, 0)), SensorVerdict::Ok);
        let mut reasons = Reasons::new();
        sensor_reason(&mut reasons, &r, j.verdict());
        sensor_reason(&mut reasons, &cpu_temp(), SensorVerdict::Bad(Breach::UpperCrit(80_000)));
        sensor_reason(&mut reasons, &r, SensorVerdict::Bad(Breach::LowerNr(9840)));
        sensor_reason(&mut reasons, &r, SensorVerdict::Ok);
        let got: Vec<&str> = reasons.iter().collect();
        assert_eq!(
            got,
            [
                "ipmi 12V: critical (BMC status)",
                "ipmi CPU Temp: above upper critical 80.0 C",
                "ipmi 12V: below lower non-recoverable 9.840 V"
            ]
        );
    }

    /// A SEL record as a BMC logs it: ID, type 2, timestamp, generator (BIOS software ID
    /// 0x01, or the BMC's address 0x20), LUN 0, EvM rev 4, sensor type and number, direction
    /// and event type, event data 1 to 3.
    pub fn sel(id: u16, generator: u8, kind: u8, number: u8, dir_type: u8, data1: u8) -> [u8; 16] {
        let [lo, hi] = id.to_le_bytes();
        let (a, b, c, d) = (0x10, 0x20, 0x30, 0x40);
        [lo, hi, 0x02, a, b, c, d, generator, 0x00, 0x04, kind, number, dir_type, data1, 0xff, 0x03]
    }

    fn at(secs: u64) -> Instant {
        Instant::from_millis(secs * 1000)
    }

    #[test]
    fn sel_entries_are_classed_by_type_and_offset() {
        let class = |r: [u8; 16]| SelEvent::parse(&r).map(|e| e.class());
        // Memory: uncorrectable ECC (offset 1, data 3 is the DIMM), correctable ECC.
        assert_eq!(class(sel(1, 0x01, 0x0c, 9, 0x6f, 0xa1)), Some(SelClass::Failure));
        assert_eq!(class(sel(1, 0x01, 0x0c, 9, 0x6f, 0xa0)), Some(SelClass::Correctable));
        assert_eq!(class(sel(1, 0x01, 0x0c, 9, 0x6f, 0x06)), Some(SelClass::Other), "presence");
        // The same uncorrectable error deasserted is no news.
        assert_eq!(class(sel(1, 0x01, 0x0c, 9, 0xef, 0xa1)), Some(SelClass::Other));
        // Processor IERR, thermal trip, presence, correctable machine check; power supply
        // failure, presence.
        assert_eq!(class(sel(1, 0x20, 0x07, 2, 0x6f, 0x00)), Some(SelClass::Failure));
        assert_eq!(class(sel(1, 0x20, 0x07, 2, 0x6f, 0x01)), Some(SelClass::Failure));
        assert_eq!(class(sel(1, 0x20, 0x07, 2, 0x6f, 0x07)), Some(SelClass::Other));
        assert_eq!(class(sel(1, 0x20, 0x07, 2, 0x6f, 0x0c)), Some(SelClass::Correctable));
        assert_eq!(class(sel(1, 0x20, 0x08, 3, 0x6f, 0x01)), Some(SelClass::Failure));
        assert_eq!(class(sel(1, 0x20, 0x08, 3, 0x6f, 0x00)), Some(SelClass::Other));
        // Threshold events (ipmi_sim's data 1: 0x50 | offset): temperature upper critical
        // going high, fan lower critical going low are failures; non-critical ones and
        // voltage thresholds are not.
        assert_eq!(class(sel(1, 0x20, 0x01, 1, 0x01, 0x59)), Some(SelClass::Failure));
        assert_eq!(class(sel(1, 0x20, 0x04, 4, 0x01, 0x52)), Some(SelClass::Failure));
        assert_eq!(class(sel(1, 0x20, 0x01, 1, 0x01, 0x57)), Some(SelClass::Other));
        assert_eq!(class(sel(1, 0x20, 0x02, 5, 0x01, 0x59)), Some(SelClass::Other));
        // OEM records are not system events.
        let mut oem = sel(1, 0x20, 0x0c, 9, 0x6f, 0xa1);
        oem[2] = 0xc1;
        assert_eq!(class(oem), None);
        let e = SelEvent::parse(&sel(0x12, 0x01, 0x0c, 9, 0x6f, 0xa1)).unwrap();
        assert_eq!((e.id, e.timestamp, e.owner, e.offset), (0x12, 0x4030_2010, None, 1));
        assert_eq!(e.to_string(), "memory #9: uncorrectable ECC");
        let t = SelEvent::parse(&sel(3, 0x20, 0x01, 1, 0x81, 0x59)).unwrap();
        assert_eq!(t.owner, Some(0x20));
        assert_eq!(t.to_string(), "temperature #1: upper critical going high (deasserted)");
        let other = SelEvent::parse(&sel(3, 0x20, 0x23, 0, 0x6f, 0x01)).unwrap();
        assert_eq!(other.to_string(), "sensor #0: event type 0x6f offset 1");
    }

    #[test]
    fn a_failure_latches_until_cleanup_and_live_sensors_are_left_to_their_readings() {
        let mut j = SelJudge::new(at(0));
        let none = |_: u8, _: u8, _: u8| false;
        let cpu = |o: u8, l: u8, n: u8| (o, l, n) == (0x20, 0, 1);
        // CPU Temp's own upper critical event: its reading judges it; counted, not latched.
        let ev = sel(1, 0x20, 0x01, 1, 0x01, 0x59);
        assert_eq!(j.handle_entry(at(1), &ev, cpu), SelClass::Other);
        assert!(!j.is_unhealthy());
        assert_eq!((j.failures(), j.last_failure().map(|e| e.id)), (1, Some(1)));
        // The same event of a sensor not read live latches.
        assert_eq!(j.handle_entry(at(2), &ev, none), SelClass::Failure);
        assert!(j.is_unhealthy());
        j.handle_cleanup();
        assert!(!j.is_unhealthy());
        // An uncorrectable ECC error latches; the first failure stays the reason.
        let ue = sel(7, 0x01, 0x0c, 9, 0x6f, 0xa1);
        assert_eq!(j.handle_entry(at(3), &ue, cpu), SelClass::Failure);
        j.handle_entry(at(4), &sel(8, 0x20, 0x08, 3, 0x6f, 0x01), cpu);
        assert_eq!(j.latched().map(|e| e.id), Some(7));
        assert_eq!(j.last_failure().map(|e| e.id), Some(8));
        // Its deassertion changes nothing: the DIMM did not heal, nor does time heal it.
        j.handle_entry(at(5), &sel(9, 0x01, 0x0c, 9, 0xef, 0xa1), cpu);
        j.handle_wake(at(3600 * 5));
        assert!(j.is_unhealthy());
        let mut r = Reasons::new();
        j.reasons(&mut r);
        assert_eq!(r.iter().collect::<Vec<_>>(), ["ipmi SEL: memory #9: uncorrectable ECC"]);
        j.handle_cleanup();
        assert!(!j.is_unhealthy());
        assert_eq!((j.entries(), j.failures()), (5, 4));
    }

    #[test]
    fn correctable_errors_count_toward_a_rate() {
        let mut j = SelJudge::new(at(0));
        let none = |_: u8, _: u8, _: u8| false;
        for i in 0..CORRECTABLE_MAX as u16 {
            j.handle_entry(at(10), &sel(i + 1, 0x01, 0x0c, 9, 0x6f, 0xa0), none);
        }
        assert!(!j.is_unhealthy(), "10 is not more than 10");
        j.handle_entry(at(20), &sel(11, 0x01, 0x0c, 9, 0x6f, 0xa0), none);
        assert!(j.is_unhealthy());
        assert_eq!((j.correctable(), j.correctable_in_window()), (11, 11));
        let mut r = Reasons::new();
        j.reasons(&mut r);
        assert_eq!(r.iter().collect::<Vec<_>>(), ["ipmi SEL: correctable errors over 10 in 60m"]);
        // A cleanup does not empty the window: it passes on its own.
        j.handle_cleanup();
        assert!(j.is_unhealthy());
        j.handle_wake(at(3700));
        assert!(!j.is_unhealthy());
    }

    #[test]
    fn a_bmc_is_silent_after_unanswered_requests_and_back_at_an_answer() {
        let mut b = BmcReach::default();
        assert!(!b.is_silent() && !b.answered_once());
        b.handle_completion(0x00);
        b.handle_no_answer();
        assert!(!b.is_silent(), "one miss is no silence");
        b.handle_completion(CC_TIMEOUT);
        assert!(b.is_silent());
        b.handle_completion(CC_UNSPECIFIED);
        assert!(b.is_silent());
        // Any other completion code is an answer, an unhappy one.
        b.handle_completion(CC_NOT_PRESENT);
        assert!(!b.is_silent() && b.answered_once());
    }

    #[test]
    fn values_print_in_their_units() {
        assert_eq!(Value(Unit::Celsius, 80_000).to_string(), "80.0 C");
        assert_eq!(Value(Unit::Celsius, -5_500).to_string(), "-5.5 C");
        assert_eq!(Value(Unit::Volts, 12_060).to_string(), "12.060 V");
        assert_eq!(Value(Unit::Watts, 350_000).to_string(), "350 W");
        assert_eq!(Value(Unit::Rpm, 3_000_000).to_string(), "3000 RPM");
        assert_eq!(Value(Unit::Other(20), 1_500).to_string(), "1.500 ");
    }
}
