//! Serial line framing: how frames travel over a null-modem cable that may drop, corrupt or
//! insert bytes. This file neither opens the port nor authenticates anything: the driver hands
//! raw reads to a [`Deframer`] and each record it yields goes to `Receiver::accept`.
//!
//! # On the line
//!
//! ```text
//! 0x00 | COBS( frame | CRC-32C(frame) as 4 bytes little-endian ) | 0x00
//! ```
//!
//! COBS (consistent overhead byte stuffing) removes every zero byte from the record at a cost
//! of one byte per 254, so 0x00 only ever appears as a delimiter. The record is sent between
//! two delimiters: the leading one ends any noise the line picked up since the last frame, so
//! that noise cannot glue itself onto the front of the next frame. The CRC-32C (Castagnoli,
//! `CRC_32_ISCSI`) catches line errors before the much dearer HMAC runs; it is no security
//! measure, the tag is. A 128-byte v4 frame becomes 135 bytes on the line: about 7 frames a
//! second at 9600 baud (a 74-byte v1 frame 81 bytes, about 12).
//!
//! # Receiving
//!
//! The deframer collects bytes up to the next delimiter into a fixed buffer sized for the
//! largest record (`limits::FRAME_LEN_MAX` plus CRC plus COBS overhead). It takes reads of
//! any size, split anywhere. At each delimiter it decodes what it collected: empty records
//! (two delimiters in a row) are skipped silently; a COBS structure error or a record too
//! short to hold a CRC is a framing error; a wrong CRC a CRC error. A record that outgrows
//! the buffer is discarded up to the next delimiter and counted as oversize. Whatever
//! happens, the deframer is resynchronised at the next delimiter, so after any noise the
//! next clean frame comes through. Under `cfg(fuzzing)` every CRC passes.

use crc::{CRC_32_ISCSI, Crc};

use crate::limits::FRAME_LEN_MAX;

const CRC32C: Crc<u32> = Crc::<u32>::new(&CRC_32_ISCSI);
const CRC_LEN: usize = 4;
/// Longest decoded record: a frame plus its CRC.
const RECORD_LEN_MAX: usize = FRAME_LEN_MAX + CRC_LEN;
/// Longest COBS-encoded record (one code byte per started 254-byte block).
const STUFFED_LEN_MAX: usize = RECORD_LEN_MAX + RECORD_LEN_MAX.div_ceil(254);
/// Longest encoding of a frame on the line, both delimiters included.
pub const ENCODED_LEN_MAX: usize = STUFFED_LEN_MAX + 2;

/// Writes `frame` as it goes on the line into `out` and returns the length. The frame must
/// be at most `FRAME_LEN_MAX` bytes and `out` hold `ENCODED_LEN_MAX` (caller invariants).
pub fn encode(frame: &[u8], out: &mut [u8]) -> usize {
    assert!(frame.len() <= FRAME_LEN_MAX, "frame of {} bytes", frame.len());
    assert!(out.len() >= ENCODED_LEN_MAX, "serial buffer of {} bytes", out.len());
    let crc = CRC32C.checksum(frame).to_le_bytes();
    out[0] = 0;
    let mut code_at = 1;
    let mut code = 1u8;
    let mut pos = 2;
    for &byte in frame.iter().chain(crc.iter()) {
        if byte != 0 {
            out[pos] = byte;
            pos += 1;
            code += 1;
        }
        if byte == 0 || code == 0xFF {
            out[code_at] = code;
            code_at = pos;
            pos += 1;
            code = 1;
        }
    }
    out[code_at] = code;
    out[pos] = 0;
    pos + 1
}

/// Deframer counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SerialStats {
    /// Records that passed COBS and CRC and were handed on.
    pub frames: u64,
    /// Records whose CRC did not match.
    pub crc_errors: u64,
    /// Records longer than the largest frame, discarded up to the next delimiter.
    pub oversize: u64,
    /// Records that were not valid COBS or too short to hold a CRC.
    pub framing_errors: u64,
}

/// Turns a byte stream from a serial port into frames. Fixed size, no allocation.
#[derive(Debug)]
pub struct Deframer {
    buf: [u8; STUFFED_LEN_MAX],
    len: usize,
    /// Dropping bytes until the next delimiter, after an oversize record.
    discarding: bool,
    stats: SerialStats,
}

impl Default for Deframer {
    fn default() -> Self {
        Deframer::new()
    }
}

impl Deframer {
    /// An empty deframer, waiting for a delimiter-ended record.
    pub const fn new() -> Deframer {
        Deframer {
            buf: [0; STUFFED_LEN_MAX],
            len: 0,
            discarding: false,
            stats: SerialStats { frames: 0, crc_errors: 0, oversize: 0, framing_errors: 0 },
        }
    }

    /// The counters.
    pub fn stats(&self) -> &SerialStats {
        &self.stats
    }

    /// Consumes bytes from the front of `input` until a record completes, and returns the
    /// frame in it (CRC checked and removed). Returns `None` when `input` is used up; call
    /// again with the next read, then. A typical loop:
    /// `while let Some(frame) = deframer.next_frame(&mut input) { receiver.accept(..) }`.
    pub fn next_frame(&mut self, input: &mut &[u8]) -> Option<&[u8]> {
        while let Some((&byte, rest)) = input.split_first() {
            *input = rest;
            if byte != 0 {
                self.collect(byte);
                continue;
            }
            let len = core::mem::take(&mut self.len);
            if core::mem::take(&mut self.discarding) || len == 0 {
                continue;
            }
            if let Some(frame_len) = self.finish(len) {
                return Some(&self.buf[..frame_len]);
            }
        }
        None
    }

    /// Feeds one read and calls `on_frame` for every frame that completes in it.
    pub fn push(&mut self, mut bytes: &[u8], mut on_frame: impl FnMut(&[u8])) {
        while let Some(frame) = self.next_frame(&mut bytes) {
            on_frame(frame);
        }
    }

    fn collect(&mut self, byte: u8) {
        if self.discarding {
            return;
        }
        if self.len == self.buf.len() {
            self.stats.oversize += 1;
            self.discarding = true;
            self.len = 0;
            return;
        }
        self.buf[self.len] = byte;
        self.len += 1;
    }

    /// Decodes the record in `buf[..len]` in place; returns the frame length when it is good.
    fn finish(&mut self, len: usize) -> Option<usize> {
        let Some(record_len) = cobs_decode_in_place(&mut self.buf[..len]) else {
            self.stats.framing_errors += 1;
            return None;
        };
        if record_len <= CRC_LEN {
            self.stats.framing_errors += 1;
            return None;
        }
        let frame_len = record_len - CRC_LEN;
        let mut crc = [0u8; CRC_LEN];
        crc.copy_from_slice(&self.buf[frame_len..record_len]);
        let crc_ok = CRC32C.checksum(&self.buf[..frame_len]) == u32::from_le_bytes(crc);
        if !(crc_ok || cfg!(fuzzing)) {
            self.stats.crc_errors += 1;
            return None;
        }
        self.stats.frames += 1;
        Some(frame_len)
    }
}

/// Decodes a COBS record (without delimiters, so without zero bytes) in place and returns the
/// decoded length, or `None` when a code byte points past the end. The write position never
/// passes the read position, so decoding in place is safe.
fn cobs_decode_in_place(buf: &mut [u8]) -> Option<usize> {
    let mut read = 0;
    let mut write = 0;
    while read < buf.len() {
        let code = usize::from(buf[read]);
        if code == 0 || read + code > buf.len() {
            return None;
        }
        buf.copy_within(read + 1..read + code, write);
        write += code - 1;
        read += code;
        if code < 0xFF && read < buf.len() {
            buf[write] = 0;
            write += 1;
        }
    }
    Some(write)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames_of(deframer: &mut Deframer, bytes: &[u8]) -> usize {
        let mut count = 0;
        deframer.push(bytes, |_| count += 1);
        count
    }

    #[test]
    fn encodes_byte_literal() {
        let mut out = [0u8; ENCODED_LEN_MAX];
        let len = encode(&[0x11, 0x00, 0x22], &mut out);
        let crc = CRC32C.checksum(&[0x11, 0x00, 0x22]).to_le_bytes();
        assert!(crc.iter().all(|&b| b != 0), "pick data whose CRC has no zero byte");
        let expected = [0, 2, 0x11, 6, 0x22, crc[0], crc[1], crc[2], crc[3], 0];
        assert_eq!(&out[..len], &expected);
    }

    #[test]
    fn round_trip_of_long_runs_without_zeros() {
        let frame = [0xAAu8; FRAME_LEN_MAX];
        let mut out = [0u8; ENCODED_LEN_MAX];
        let len = encode(&frame, &mut out);
        assert!(len <= ENCODED_LEN_MAX);
        assert!(!out[1..len - 1].contains(&0));
        let mut deframer = Deframer::new();
        let mut input = &out[..len];
        assert_eq!(deframer.next_frame(&mut input), Some(&frame[..]));
        assert!(input.is_empty());
    }

    #[test]
    fn counts_crc_framing_and_oversize() {
        let mut deframer = Deframer::new();
        let mut out = [0u8; ENCODED_LEN_MAX];
        let len = encode(&[1, 2, 3], &mut out);
        out[3] ^= 0x40;
        assert_eq!(frames_of(&mut deframer, &out[..len]), 0);
        assert_eq!(frames_of(&mut deframer, &[0, 9, 1, 0, 2, 1, 0]), 0);
        assert_eq!(frames_of(&mut deframer, &[0x55; 400]), 0);
        assert_eq!(frames_of(&mut deframer, &[0]), 0);
        let stats = SerialStats { frames: 0, crc_errors: 1, oversize: 1, framing_errors: 2 };
        assert_eq!(*deframer.stats(), stats);
        let len = encode(&[7], &mut out);
        assert_eq!(frames_of(&mut deframer, &out[..len]), 1);
    }
}
