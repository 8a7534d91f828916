//! The heartbeat links as the loop drives them: each configured medium with its driver
//! (serial port or UDP socket), opened at start and reopened after a failure, never blocking.
//!
//! A link that cannot be opened is reported (its error shows in status) and retried every
//! `REOPEN_INTERVAL`; it never stops the daemon. What arrives is turned into `Authentic`
//! frames by the `wire::Receiver`; nothing here decides anything. A UDP link's socket admits
//! only what can be a frame (`udp::filter_program`); what its kernel drops is counted here
//! across reopenings, and a growing count is logged at most every `DROPS_LOG_INTERVAL`.

use std::os::fd::{AsRawFd, RawFd};

use log::{info, warn};

use crate::config::Medium;
use crate::core::LinkParams;
use crate::core::time::{Duration, Instant};
use crate::drivers::serial::{self as serial_drv, SerialPort};
use crate::drivers::udp::{self, UdpLink, UdpMedium};
use crate::limits::FRAMES_PER_WAKE_MAX;
use crate::status::{Label, Text, set_text};
use crate::wire::serial::{Deframer, ENCODED_LEN_MAX, encode};
use crate::wire::{Authentic, Receiver};

/// How long a link that failed waits before it is opened again.
pub const REOPEN_INTERVAL: Duration = Duration::from_secs(1);
/// A flood is logged once when the kernel starts dropping, then at most this often.
pub const DROPS_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Frames accepted from one link in one wake.
pub type Accepted = heapless::Vec<Authentic, FRAMES_PER_WAKE_MAX>;

enum Io {
    Serial { port: Option<SerialPort>, deframer: Deframer },
    Udp { sock: Option<UdpLink> },
}

/// One heartbeat medium and its driver.
pub struct Link {
    medium: Medium,
    udpport: u16,
    io: Io,
    retry_at: Instant,
    /// Datagrams the kernel dropped on UDP sockets of this link that were closed since.
    dropped_before: u64,
    /// The kernel's drops as last logged, and when.
    drops_logged: u64,
    drops_logged_at: Option<Instant>,
    /// How the medium is named in status (`serial /dev/ttyS0`, `bcast eth1`, ...).
    pub label: Label,
    /// Why the link is not open, empty when it is.
    pub error: Text,
    /// Frames sent (or handed to the kernel).
    pub frames_tx: u64,
    /// Frames that could not be sent (line busy, socket error).
    pub frames_dropped: u64,
}

impl Link {
    /// A link for `medium`, not yet open.
    pub fn new(medium: &Medium, udpport: u16) -> Link {
        let io = match medium {
            Medium::Serial { .. } => Io::Serial { port: None, deframer: Deframer::default() },
            _ => Io::Udp { sock: None },
        };
        let mut label = Label::new();
        match medium {
            // `serial ttyS0`: the directory is noise in status (and long for a pty symlink).
            Medium::Serial { device, .. } => {
                let name = device.file_name().unwrap_or(device.as_os_str());
                set_text(&mut label, &format!("serial {}", name.to_string_lossy()));
            }
            _ => set_text(&mut label, &medium.label()),
        }
        Link {
            medium: medium.clone(),
            udpport,
            io,
            retry_at: Instant::ZERO,
            dropped_before: 0,
            drops_logged: 0,
            drops_logged_at: None,
            label,
            error: Text::new(),
            frames_tx: 0,
            frames_dropped: 0,
        }
    }

    /// The core's pacing and judgement of this link: a serial line slower than one frame per
    /// keepalive sends less often, and is judged on its own cadence.
    pub fn params(
        medium: &Medium,
        keepalive: Duration,
        warntime: Duration,
        deadtime: Duration,
    ) -> LinkParams {
        let interval = match medium {
            Medium::Serial { baud, .. } => {
                keepalive.max(serial_drv::min_interval_for(*baud, ENCODED_LEN_MAX))
            }
            _ => keepalive,
        };
        // How many keepalives one send interval spans, rounded up.
        let ratio = interval.total_millis().div_ceil(keepalive.total_millis().max(1)).max(1);
        LinkParams {
            send_interval: interval,
            warn_after: warntime.saturating_mul(ratio),
            dead_after: deadtime.saturating_mul(ratio),
        }
    }

    /// True when the driver is open.
    pub fn is_open(&self) -> bool {
        match &self.io {
            Io::Serial { port, .. } => port.is_some(),
            Io::Udp { sock } => sock.is_some(),
        }
    }

    /// Opens the driver when it is closed and its retry time has come.
    pub fn poll_open(&mut self, now: Instant) {
        if self.is_open() || now < self.retry_at {
            return;
        }
        let result = self.open();
        match result {
            Ok(()) => {
                info!("link {} open", self.label);
                self.error.clear();
            }
            Err(msg) => {
                if self.error.as_str() != msg.as_str() {
                    warn!("link {}: {msg}; retrying every {REOPEN_INTERVAL}", self.label);
                }
                set_text(&mut self.error, &msg);
                self.retry_at = now + REOPEN_INTERVAL;
            }
        }
    }

    fn open(&mut self) -> Result<(), String> {
        match (&self.medium, &mut self.io) {
            (Medium::Serial { device, baud }, Io::Serial { port, deframer }) => {
                let path = device.to_str().ok_or("device path is not UTF-8")?;
                // The label names the device already; the reason says the rest.
                *port = Some(SerialPort::open(path, *baud).map_err(|e| e.reason)?);
                *deframer = Deframer::default();
                Ok(())
            }
            (medium, Io::Udp { sock }) => {
                *sock = Some(open_udp(medium, self.udpport)?);
                Ok(())
            }
            _ => Err("medium and driver disagree".into()),
        }
    }

    /// When a closed link is next opened.
    pub fn next_deadline(&self) -> Option<Instant> {
        (!self.is_open()).then_some(self.retry_at)
    }

    /// The fd to poll for input.
    pub fn fd(&self) -> Option<RawFd> {
        match &self.io {
            Io::Serial { port, .. } => port.as_ref().map(|p| p.as_raw_fd()),
            Io::Udp { sock } => sock.as_ref().map(|s| s.as_raw_fd()),
        }
    }

    /// Sends one encoded frame; never blocks. A serial frame is delimited and CRC'd first.
    pub fn send(&mut self, frame: &[u8]) {
        let sent = match &mut self.io {
            Io::Serial { port: Some(port), .. } => {
                let mut line = [0u8; ENCODED_LEN_MAX];
                let n = encode(frame, &mut line);
                match port.write_frame(&line[..n]) {
                    Ok(serial_drv::WriteOutcome::Sent) => true,
                    Ok(_) => false,
                    Err(e) => {
                        self.fail(&format!("write: {e}"));
                        false
                    }
                }
            }
            Io::Udp { sock: Some(sock) } => matches!(sock.send(frame), udp::SendOutcome::Sent),
            _ => false,
        };
        if sent {
            self.frames_tx += 1;
        } else {
            self.frames_dropped += 1;
        }
    }

    /// Takes what arrived (at most `FRAMES_PER_WAKE_MAX` frames) through the receiver.
    /// `hangup` says poll(2) reported POLLHUP/POLLERR: the driver is closed and reopened.
    pub fn receive(
        &mut self,
        now: Instant,
        index: u8,
        rx: &mut Receiver,
        hangup: bool,
        out: &mut Accepted,
    ) {
        match &mut self.io {
            Io::Serial { port: Some(port), deframer } => {
                let mut buf = [0u8; 2048];
                for _ in 0..FRAMES_PER_WAKE_MAX {
                    match port.read_available(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            deframer.push(&buf[..n], |frame| {
                                if let Ok(a) = rx.accept(index, frame) {
                                    // A full batch drops the rest; the peer repeats every beat.
                                    let _ = out.push(a);
                                }
                            });
                            // A raw tty returns what it holds: less than asked is all of it.
                            if n < buf.len() {
                                break;
                            }
                        }
                        Err(e) => {
                            self.fail(&format!("read: {e}"));
                            return;
                        }
                    }
                }
                if hangup {
                    self.fail("line hung up");
                }
            }
            Io::Udp { sock: Some(sock) } => {
                let mut batch = udp::Batch::default();
                for _ in 0..FRAMES_PER_WAKE_MAX.div_ceil(udp::BATCH) {
                    sock.recv_batch(&mut batch);
                    for datagram in batch.datagrams() {
                        if let Ok(a) = rx.accept(index, datagram) {
                            let _ = out.push(a);
                        }
                    }
                    // A batch with room left emptied the queue: no call just to hear EAGAIN.
                    if !batch.is_full() {
                        break;
                    }
                }
                let dropped = self.dropped_before + sock.stats().kernel_dropped;
                self.log_drops(now, dropped);
            }
            _ => {}
        }
    }

    /// Datagrams the kernel dropped on this link's UDP sockets before they were read: not a
    /// frame (the socket filter), or no room in the buffer; on a closed socket as well. Read
    /// from the kernel now (0 for serial).
    pub fn kernel_dropped(&mut self) -> u64 {
        match &mut self.io {
            Io::Udp { sock: Some(sock) } => self.dropped_before + sock.refresh_kernel_dropped(),
            _ => self.dropped_before,
        }
    }

    /// A warning when the kernel has dropped more since the last one, at most one per
    /// `DROPS_LOG_INTERVAL`: a flood shows in the log without filling it.
    fn log_drops(&mut self, now: Instant, dropped: u64) {
        if dropped == self.drops_logged
            || self.drops_logged_at.is_some_and(|at| now < at + DROPS_LOG_INTERVAL)
        {
            return;
        }
        warn!(
            "link {}: the kernel dropped {} datagrams (not frames, or no room to queue them): \
             {} in all",
            self.label,
            dropped - self.drops_logged,
            dropped
        );
        self.drops_logged = dropped;
        self.drops_logged_at = Some(now);
    }

    /// CRC errors, oversize and framing errors seen on a serial line (0 for UDP).
    pub fn crc_errors(&self) -> u64 {
        match &self.io {
            Io::Serial { deframer, .. } => deframer.stats().crc_errors,
            Io::Udp { .. } => 0,
        }
    }

    fn fail(&mut self, msg: &str) {
        warn!("link {}: {msg}; reopening", self.label);
        set_text(&mut self.error, msg);
        match &mut self.io {
            Io::Serial { port, .. } => *port = None,
            Io::Udp { sock } => {
                if let Some(mut s) = sock.take() {
                    self.dropped_before += s.refresh_kernel_dropped();
                }
            }
        }
        // Reopen at the next wake: a pty relay comes back quickly, a dead one is retried.
        self.retry_at = Instant::ZERO;
    }
}

fn open_udp(medium: &Medium, port: u16) -> Result<UdpLink, String> {
    let opened = match medium {
        Medium::Bcast { iface } => UdpLink::open(&UdpMedium::Bcast { ifname: iface }, port),
        Medium::Mcast { iface, group, ttl } => {
            let std::net::IpAddr::V4(group) = *group else {
                return Err("multicast is IPv4 only".into());
            };
            UdpLink::open(&UdpMedium::Mcast { ifname: iface, group, ttl: *ttl }, port)
        }
        Medium::Ucast { iface, addrs } => {
            let peer = udp::pick_peer(*addrs)
                .map_err(|e| format!("listing local addresses: {e}"))?
                .ok_or("neither ucast address is on this node (or both are)")?;
            let own = if addrs[0] == peer { addrs[1] } else { addrs[0] };
            UdpLink::open(&UdpMedium::Ucast { ifname: iface, own, peer }, port)
        }
        Medium::Serial { .. } => return Err("not a UDP medium".into()),
    };
    opened.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A growing drop count is logged at once, then at most once per `DROPS_LOG_INTERVAL`
    /// (and only when it grew), each time with what was dropped since the last warning.
    #[test]
    fn a_flood_is_logged_once_per_interval_and_only_while_it_grows() {
        let mut link = Link::new(&Medium::Bcast { iface: "eth1".into() }, 694);
        let at = |ms| Instant::from_millis(ms);
        link.log_drops(at(1_000), 0);
        assert_eq!(link.drops_logged_at, None, "nothing dropped, nothing logged");
        link.log_drops(at(2_000), 5);
        assert_eq!((link.drops_logged, link.drops_logged_at), (5, Some(at(2_000))));
        link.log_drops(at(3_000), 900);
        assert_eq!(link.drops_logged, 5, "not again within the interval");
        let later = 2_000 + DROPS_LOG_INTERVAL.total_millis();
        link.log_drops(at(later), 900);
        assert_eq!((link.drops_logged, link.drops_logged_at), (900, Some(at(later))));
        link.log_drops(at(later * 3), 900);
        assert_eq!(link.drops_logged_at, Some(at(later)), "no growth, no warning");
    }
}
