//! The heartbeat links as the loop drives them: each configured medium with its driver
//! (serial port or UDP socket), opened at start and reopened after a failure, never blocking;
//! and the only place where frames are sealed and opened.
//!
//! `Links` holds the media and the pair's two wire ends, `wire::Sender` and `wire::Receiver`,
//! made at start from the pair's key and what the statedir says of the peer (`WireEnds`).
//! The loop hands it the core's payloads (`seal`: number, sign and encode a frame per link,
//! then send it, delimited and CRC'd on a serial line) and takes back what a link delivered
//! as inputs for the core (`open`: read, deframe, authenticate, check the sequence and the
//! freshness handshake; `Opened::inputs`). Nothing here decides anything.
//!
//! A link that cannot be opened is reported (its error shows in status) and retried every
//! `REOPEN_INTERVAL`; it never stops the daemon. A UDP link's socket admits only what can be a
//! frame (`udp::filter_program`); what its kernel drops is counted here across reopenings, and
//! a growing count is logged at most every `DROPS_LOG_INTERVAL`.

use std::os::fd::{AsRawFd, RawFd};

use log::{info, warn};

use crate::config::{AuthKey, Config, Medium};
use crate::core::time::{Duration, Instant};
use crate::core::{Input, LinkParams, LinkSel};
use crate::drivers::serial::{self as serial_drv, SerialPort};
use crate::drivers::statefile;
use crate::drivers::udp::{self, UdpLink, UdpMedium};
use crate::limits::{FRAME_LEN_MAX, FRAMES_PER_WAKE_MAX, LINKS_MAX};
use crate::status::{Label, Text, set_text};
use crate::wire::serial::{Deframer, ENCODED_LEN_MAX, encode};
use crate::wire::{Authentic, Key, Outgoing, Payload, Receiver, Repr, Sender};

/// How long a link that failed waits before it is opened again.
pub const REOPEN_INTERVAL: Duration = Duration::from_secs(1);
/// A flood is logged once when the kernel starts dropping, then at most this often.
pub const DROPS_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Frames accepted from one link in one wake.
type Accepted = heapless::Vec<Authentic, FRAMES_PER_WAKE_MAX>;

/// Every heartbeat medium, and the pair's wire ends that seal and open the frames on them.
pub struct Links {
    sender: Sender,
    receiver: Receiver,
    links: heapless::Vec<Link, LINKS_MAX>,
}

/// What one link delivered in one wake, for the core.
pub struct Opened {
    link: u8,
    /// Authentic, fresh frames, in the order they arrived.
    frames: Accepted,
    /// The last authentic frame that was not fresh (`Receiver::take_unfresh`).
    unfresh: Option<Repr>,
    /// The session fields of our next frame changed (a new challenge to echo, or a new one of
    /// ours): the peer should hear them now.
    handshake: bool,
}

impl Links {
    /// The links of `media` (not yet open), sealing and opening with `ends`.
    pub fn new(media: &[Medium], udpport: u16, ends: WireEnds) -> Links {
        let links = media.iter().map(|m| Link::new(m, udpport)).collect();
        Links { sender: ends.sender, receiver: ends.receiver, links }
    }

    /// Seals `payload` into a frame for each link `sel` names (its own sequence number, the
    /// session fields, the tag) and sends it; never blocks.
    /// The DRBD outdate exchange every frame carries from now on (`event_loop/drbd.rs`).
    pub fn set_outdate(&mut self, outdate: crate::wire::Outdate) {
        self.sender.set_outdate(outdate);
    }

    pub fn seal(&mut self, sel: LinkSel, payload: &Payload) {
        let out = self.receiver.outgoing();
        for (i, link) in self.links.iter_mut().enumerate() {
            // INVARIANT: at most LINKS_MAX (8) links, so the index fits a u8.
            let index = i as u8;
            if sel == LinkSel::All || sel == LinkSel::One(index) {
                link.seal(index, &mut self.sender, &out, payload);
            }
        }
    }

    /// Opens what arrived on link `index` (at most `FRAMES_PER_WAKE_MAX` frames). `hangup`
    /// says poll(2) reported POLLHUP/POLLERR: the driver is closed and reopened.
    /// `peer_alive` and `peer_recent` are the core's view of the peer, which the handshake
    /// needs before it judges frames (`wire::session::Handshake::set_peer_alive`).
    pub fn open(
        &mut self,
        now: Instant,
        index: u8,
        hangup: bool,
        peer_alive: bool,
        peer_recent: bool,
    ) -> Opened {
        let session = self.receiver.outgoing();
        self.receiver.set_peer_alive(peer_alive, peer_recent);
        let mut frames = Accepted::new();
        if let Some(link) = self.links.get_mut(usize::from(index)) {
            link.receive(now, index, &mut self.receiver, hangup, &mut frames);
        }
        Opened::new(&mut self.receiver, index, session, frames)
    }

    /// The receiver: its counters, and what it learnt of the peer.
    pub fn receiver(&self) -> &Receiver {
        &self.receiver
    }

    /// The links, by index.
    pub fn iter(&self) -> core::slice::Iter<'_, Link> {
        self.links.iter()
    }

    /// The links, by index, for what changes as status reads them (kernel drop counts).
    pub fn iter_mut(&mut self) -> core::slice::IterMut<'_, Link> {
        self.links.iter_mut()
    }

    /// Opens each closed link whose retry time has come.
    pub fn poll_open(&mut self, now: Instant) {
        for link in &mut self.links {
            link.poll_open(now);
        }
    }

    /// When a closed link is next opened.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.links.iter().filter_map(Link::next_deadline).min()
    }
}

impl Opened {
    /// What `frames`, accepted on link `link` by `rx`, give the core; `session` is what
    /// `rx.outgoing()` said before they were read.
    fn new(rx: &mut Receiver, link: u8, session: Outgoing, frames: Accepted) -> Opened {
        let unfresh = rx.take_unfresh();
        let handshake = rx.outgoing() != session;
        Opened { link, frames, unfresh, handshake }
    }

    /// True when at least one authentic, fresh frame came.
    pub fn delivered(&self) -> bool {
        !self.frames.is_empty()
    }

    /// The inputs for the core, in order: each fresh frame, then the last unfresh one, then
    /// `Handshake` when the session changed.
    pub fn inputs(&self) -> impl Iterator<Item = Input<'_>> {
        let link = self.link;
        let frames = self.frames.iter().map(move |frame| Input::Frame { link, frame });
        frames
            .chain(self.unfresh.map(Input::Unfresh))
            .chain(self.handshake.then_some(Input::Handshake))
    }
}

/// The pair's two wire ends for this run, and what the statedir says of the peer's frames.
pub struct WireEnds {
    sender: Sender,
    receiver: Receiver,
    /// The peer's frame version as recorded (`statefile::load_peer_version`; 0: not known).
    pub peer_version: u8,
    /// The highest incarnation of the peer recorded.
    pub peer_incarnation: Option<u64>,
}

impl WireEnds {
    /// Node `me` in boot `incarnation`, for the daemon run and first challenge `session`.
    pub fn new(
        config: &Config,
        authkey: &AuthKey,
        me: u8,
        incarnation: u64,
        session: (u32, u32),
    ) -> WireEnds {
        // The frame key binds the pair's identity (SPEC §7.2); the raw authkey signs legacy
        // frames only while the peer may still speak version 1 (a pair mid-upgrade).
        let names = [config.pair.nodes[0].as_str(), config.pair.nodes[1].as_str()];
        let key = Key::for_pair(authkey.bytes(), names, config.pair.udpport);
        let peer_version =
            statefile::load_peer_version(&config.local.statedir).unwrap_or_else(|e| {
                warn!("{e}; the peer's frame version is taken as not yet known");
                0
            });
        // Any version from 2 on is signed with the frame key: a peer heard in one of them
        // never needs the legacy key again.
        let legacy =
            (peer_version < crate::wire::VERSION_SESSION).then(|| Key::new(authkey.bytes()));
        let mut sender = Sender::new(key.clone(), me, incarnation);
        let peer_incarnation = statefile::load_peer_incarnation(&config.local.statedir);
        let mut receiver = Receiver::new(key, me, 1 - me, session.0, session.1);
        if let Some(floor) = peer_incarnation {
            receiver = receiver.with_peer_incarnation_floor(floor);
        }
        if let Some(legacy) = legacy {
            sender = sender.with_legacy(legacy.clone());
            receiver = receiver.with_legacy(legacy);
        }
        WireEnds { sender, receiver, peer_version, peer_incarnation }
    }
}

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
    fn new(medium: &Medium, udpport: u16) -> Link {
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

    /// The core's pacing and judgement of this link, from its own `keepalive`, `warntime` and
    /// `deadtime` (SPEC §7.7: `config::PairWide::link_keepalive` and the others): a serial
    /// line slower than one frame per keepalive sends less often, and is judged on its own
    /// cadence.
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
    fn is_open(&self) -> bool {
        match &self.io {
            Io::Serial { port, .. } => port.is_some(),
            Io::Udp { sock } => sock.is_some(),
        }
    }

    /// Opens the driver when it is closed and its retry time has come.
    fn poll_open(&mut self, now: Instant) {
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
    fn next_deadline(&self) -> Option<Instant> {
        (!self.is_open()).then_some(self.retry_at)
    }

    /// The fd to poll for input.
    pub fn fd(&self) -> Option<RawFd> {
        match &self.io {
            Io::Serial { port, .. } => port.as_ref().map(|p| p.as_raw_fd()),
            Io::Udp { sock } => sock.as_ref().map(|s| s.as_raw_fd()),
        }
    }

    /// Seals `payload` into this link's next frame (sequence number, session fields `out`,
    /// tag) and sends it.
    fn seal(&mut self, index: u8, sender: &mut Sender, out: &Outgoing, payload: &Payload) {
        let mut buf = [0u8; FRAME_LEN_MAX];
        let n = sender.emit(index, payload, out, &mut buf);
        self.send(&buf[..n]);
    }

    /// Sends one encoded frame; never blocks. A serial frame is delimited and CRC'd first.
    fn send(&mut self, frame: &[u8]) {
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

    /// Takes what arrived (at most `FRAMES_PER_WAKE_MAX` frames) through the receiver into
    /// `out`. `hangup`: see `Links::open`.
    fn receive(
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
                            deframer.push(&buf[..n], |frame| admit(rx, index, frame, out));
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
                        admit(rx, index, datagram, out);
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

/// Authenticates one frame that arrived on link `index` and keeps it when it may reach the
/// core; the receiver counts what it drops.
fn admit(rx: &mut Receiver, index: u8, bytes: &[u8], out: &mut Accepted) {
    if let Ok(frame) = rx.accept(index, bytes) {
        // A full batch drops the rest; the peer repeats every beat.
        let _ = out.push(frame);
    }
}

fn open_udp(medium: &Medium, port: u16) -> Result<UdpLink, String> {
    let opened = match medium {
        Medium::Bcast { iface } => UdpLink::open(&UdpMedium::Bcast { ifname: iface }, port),
        Medium::Mcast { iface, group, ttl } => {
            UdpLink::open(&UdpMedium::Mcast { ifname: iface, group: *group, ttl: *ttl }, port)
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
    use crate::wire::{GroupState, Groups, Health, Intent, Key, Kind, Session, VERSION};

    fn payload() -> Payload {
        Payload {
            kind: Kind::Heartbeat,
            state: GroupState::Standby,
            health: Health::OK,
            intent: Intent::None,
            flags: 0,
            epoch: 1,
            watchdog_timeout_ms: 0,
            config_digest: [0; 8],
            groups: Groups::ONE,
        }
    }

    /// What one read gives the core, in the order the core takes it: the fresh frames, then
    /// the last authentic one that was not fresh, then the handshake its new challenge asks
    /// for. Node 0 seals; node 1 (challenge 1234) opens a frame that does not echo its
    /// challenge yet, one that does, and a forgery.
    #[test]
    fn opened_frames_reach_the_core_fresh_first_then_unfresh_then_the_handshake() {
        let key = Key::new(b"secret");
        let mut tx = Sender::new(key.clone(), 0, 5);
        let mut rx = Receiver::new(key, 1, 0, 77, 1234);
        let session = |echo| Session { run: 9, challenge: 4321, echo, flags: 0 };
        let mut buf = [0u8; FRAME_LEN_MAX];
        let before = rx.outgoing();
        let mut frames = Accepted::new();
        let mut n = 0;
        for echo in [0, 1234] {
            let out = Outgoing { version: VERSION, session: session(echo) };
            n = tx.emit(2, &payload(), &out, &mut buf);
            admit(&mut rx, 2, &buf[..n], &mut frames);
        }
        buf[n / 2] ^= 1;
        admit(&mut rx, 2, &buf[..n], &mut frames);
        let opened = Opened::new(&mut rx, 2, before, frames);
        assert!(opened.delivered());
        let inputs: Vec<Input<'_>> = opened.inputs().collect();
        assert!(matches!(inputs[0], Input::Frame { link: 2, .. }), "the fresh frame first");
        assert!(matches!(inputs[1], Input::Unfresh(r) if r.seq == 1), "then the unfresh one");
        assert!(matches!(inputs[2], Input::Handshake), "then the echo of 4321, at once");
        assert_eq!(inputs.len(), 3, "the forgery reaches nothing");
        let stats = rx.stats();
        assert_eq!((stats.unconfirmed, stats.links[2].frames_rx), (1, 1));
        assert_eq!(stats.auth_failures + stats.malformed, 1);
        let unchanged = rx.outgoing();
        let nothing = Opened::new(&mut rx, 2, unchanged, Accepted::new());
        assert!(!nothing.delivered() && nothing.inputs().next().is_none());
    }

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
