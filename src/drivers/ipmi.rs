//! The BMC through the kernel's IPMI device (SPEC §7.6 `ipmi`): `/dev/ipmi0` of `ipmi_si`
//! (the KCS, SMIC, BT or SSIF system interface) and `ipmi_devintf` (the character device).
//! What to ask and when is `conversation` (sans-IO, unit-tested); what the answers mean is
//! `health::ipmi`. This file opens the device, sends and receives, nothing else.
//!
//! The device (include/uapi/linux/ipmi.h, drivers/char/ipmi/ipmi_devintf.c): a request is
//! `IPMICTL_SEND_COMMAND` (`_IOR('i', 13, struct ipmi_req)`) with a system interface address
//! (`addr_type` `IPMI_SYSTEM_INTERFACE_ADDR_TYPE` 0x0c, `channel` `IPMI_BMC_CHANNEL` 0xf, the
//! LUN), a `msgid` of ours, the network function, the command and its data. It returns at
//! once; the answer is queued on the file, which polls readable (POLLIN), and is taken with
//! `IPMICTL_RECEIVE_MSG_TRUNC` (`_IOWR('i', 11, struct ipmi_recv)`), which on a file opened
//! `O_NONBLOCK` fails with EAGAIN when nothing is queued. The answer carries our `msgid`
//! back and its data starts with the completion code. A BMC that does not answer is answered
//! by the kernel itself (completion code 0xc3 after its retries), so nothing here ever waits.
//!
//! Why no start-up phase before the loop: the sensor records are read on the polled device
//! like everything else (the conversation's first rounds), so a BMC that is slow, busy or
//! dead at boot costs the loop nothing, and records are read again round after round until
//! they are. Nothing is allocated for it either: records go into fixed capacities.
//!
//! Buffers are the struct's own (the answer's 272 bytes, `IPMI_MAX_MSG_LENGTH`) or on the
//! stack: a read allocates nothing. A device that cannot be opened is a reason of its own and
//! is opened again every `ROUND_INTERVAL`; one whose ioctls fail with anything but EAGAIN
//! (the interface went away: ENODEV, EIO) is closed and opened again.

mod conversation;

pub use conversation::{
    BMC_ADDRESS, Conversation, REQUEST_TIMEOUT, ROUND_INTERVAL, Request, SdrState, SelMark, Sensor,
};

use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use log::{info, warn};
use nix::errno::Errno;

use crate::core::time::Instant;
use crate::drivers::statefile;
use crate::health::Reasons;

/// `IPMI_SYSTEM_INTERFACE_ADDR_TYPE`.
const SYSTEM_INTERFACE_ADDR_TYPE: libc::c_int = 0x0c;
/// `IPMI_BMC_CHANNEL`.
const BMC_CHANNEL: libc::c_short = 0x0f;
/// `IPMI_RESPONSE_RECV_TYPE`: the answer to a request of ours.
const RESPONSE_RECV_TYPE: libc::c_int = 1;
/// `IPMI_MAX_MSG_LENGTH`: the longest message the kernel passes.
pub const MSG_LEN_MAX: usize = 272;
/// `IPMI_MAX_ADDR_SIZE`.
const ADDR_SIZE_MAX: usize = 32;
/// Answers taken per wake; more wait for the next (one request is awaited at a time, so
/// anything past one is a stray answer to an abandoned request).
pub const RECEIVES_PER_WAKE_MAX: usize = 4;

/// `struct ipmi_system_interface_addr`.
#[repr(C)]
struct SystemInterfaceAddr {
    addr_type: libc::c_int,
    channel: libc::c_short,
    lun: libc::c_uchar,
}

/// `struct ipmi_addr`: room for any address the kernel reports an answer from.
#[repr(C)]
struct AnyAddr {
    addr_type: libc::c_int,
    channel: libc::c_short,
    data: [libc::c_char; ADDR_SIZE_MAX],
}

/// `struct ipmi_msg`.
#[repr(C)]
struct Msg {
    netfn: libc::c_uchar,
    cmd: libc::c_uchar,
    data_len: libc::c_ushort,
    data: *mut libc::c_uchar,
}

/// `struct ipmi_req`.
#[repr(C)]
pub struct IpmiReq {
    addr: *mut libc::c_uchar,
    addr_len: libc::c_uint,
    msgid: libc::c_long,
    msg: Msg,
}

/// `struct ipmi_recv`.
#[repr(C)]
pub struct IpmiRecv {
    recv_type: libc::c_int,
    addr: *mut libc::c_uchar,
    addr_len: libc::c_uint,
    msgid: libc::c_long,
    msg: Msg,
}

nix::ioctl_read!(ipmictl_send_command, b'i', 13, IpmiReq);
nix::ioctl_readwrite!(ipmictl_receive_msg_trunc, b'i', 11, IpmiRecv);

/// The `ipmi` health source: the device and the conversation with its BMC.
pub struct IpmiSource {
    /// The device, as configured.
    pub device: PathBuf,
    /// Where the event log's acknowledged position is kept (`statefile::IPMI_SEL_FILE`);
    /// `None`: nowhere (tests).
    statedir: Option<PathBuf>,
    file: Option<File>,
    open_error: Option<Errno>,
    /// The last failure of the device's ioctls warned about: the same one is not warned
    /// again until an answer comes (a device that fails every round logs once).
    warned: Option<Errno>,
    conversation: Conversation,
    next_open: Instant,
    answer: [u8; MSG_LEN_MAX],
}

impl IpmiSource {
    /// Opens `device` (a failure is a reason, and it is tried again every round); the event
    /// log is judged from where the last run left it in `statedir` (read here, at start-up).
    pub fn open(device: &Path, statedir: Option<&Path>, now: Instant) -> IpmiSource {
        let resume = statedir.and_then(statefile::load_ipmi_sel);
        let resume = resume.map(|(erased, last)| SelMark { erased, last });
        if let Some(m) = resume {
            info!("ipmi {}: judging the event log from {m:?} on", device.display());
        }
        let mut source = IpmiSource {
            device: device.to_path_buf(),
            statedir: statedir.map(Path::to_path_buf),
            file: None,
            open_error: None,
            warned: None,
            conversation: Conversation::new(now, resume),
            next_open: now,
            answer: [0; MSG_LEN_MAX],
        };
        source.try_open(now);
        source
    }

    fn try_open(&mut self, now: Instant) {
        self.next_open = now + ROUND_INTERVAL;
        let opened = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&self.device);
        match opened {
            Ok(f) => {
                if self.open_error.is_some() {
                    info!("ipmi {}: open", self.device.display());
                }
                self.file = Some(f);
                self.open_error = None;
            }
            Err(e) => {
                let errno = Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
                if self.open_error != Some(errno) {
                    warn!("ipmi {}: cannot open: {}", self.device.display(), errno.desc());
                }
                self.open_error = Some(errno);
            }
        }
    }

    /// The device's ioctls fail with `why`: closed, opened again at the next round.
    fn close(&mut self, now: Instant, why: Errno) {
        self.warn_once("closed, to be opened again", why);
        self.file = None;
        self.next_open = now + ROUND_INTERVAL;
        self.conversation.handle_closed();
    }

    fn warn_once(&mut self, what: &str, e: Errno) {
        if self.warned != Some(e) {
            warn!("ipmi {}: {} ({e:?}): {what}", self.device.display(), e.desc());
            self.warned = Some(e);
        }
    }

    /// The device, to poll for answers.
    pub fn fd(&self) -> Option<RawFd> {
        self.file.as_ref().map(AsRawFd::as_raw_fd)
    }

    /// The device is readable: takes the answers queued (at most `RECEIVES_PER_WAKE_MAX`)
    /// and sends what they let follow.
    pub fn handle_readable(&mut self, now: Instant) {
        for _ in 0..RECEIVES_PER_WAKE_MAX {
            let Some(file) = &self.file else { return };
            match receive(file.as_raw_fd(), &mut self.answer) {
                Ok(None) => break,
                Ok(Some((msgid, len))) => {
                    self.warned = None;
                    let (sdr, silent) = (self.conversation.sdr(), self.conversation.reach());
                    self.conversation.handle_response(now, msgid, &self.answer[..len]);
                    self.log_changes(sdr, silent.is_silent());
                }
                Err(e) => {
                    self.close(now, e);
                    return;
                }
            }
        }
        self.poll(now);
    }

    /// Keeps the event log's acknowledged position when it moved: rare (a new entry, a
    /// cleanup, a clear), never per reading; the write is the one allocation of this source
    /// after start-up (`statefile::store_ipmi_sel`: a path and a few bytes).
    fn store_mark(&mut self) {
        let Some(mark) = self.conversation.poll_mark() else { return };
        let Some(dir) = &self.statedir else { return };
        if let Err(e) = statefile::store_ipmi_sel(dir, mark.erased, mark.last) {
            warn!(
                "ipmi {}: {e}: the next start judges the log from further back",
                self.device.display()
            );
        }
    }

    /// Does what is due: opens the device again, gives up late answers, sends requests.
    pub fn poll(&mut self, now: Instant) {
        if self.file.is_none() && now >= self.next_open {
            self.try_open(now);
        }
        let silent = self.conversation.reach().is_silent();
        self.conversation.handle_timeouts(now);
        let Some(file) = &self.file else { return };
        let fd = file.as_raw_fd();
        let mut failed = None;
        while let Some((msgid, request)) = self.conversation.poll_request(now) {
            if let Err(e) = send(fd, msgid, &request) {
                self.conversation.handle_send_failed();
                failed = Some(e);
                break;
            }
        }
        self.log_changes(self.conversation.sdr(), silent);
        self.store_mark();
        match failed {
            Some(e @ (Errno::ENODEV | Errno::EIO | Errno::EBADF)) => self.close(now, e),
            Some(e) => self.warn_once("cannot send", e),
            None => {}
        }
    }

    /// Logs what changed in a step: the records read, the BMC silent or back.
    fn log_changes(&self, sdr_before: SdrState, silent_before: bool) {
        let c = &self.conversation;
        let device = self.device.display();
        match c.sdr() {
            SdrState::Read { records, dropped } if c.sdr() != sdr_before => info!(
                "ipmi {device}: {} threshold sensors in {records} records{}",
                c.sensors().len(),
                if dropped > 0 { " (more left out)" } else { "" }
            ),
            SdrState::Failed(e) if c.sdr() != sdr_before => {
                warn!("ipmi {device}: cannot read the sensor records: {e}")
            }
            _ => {}
        }
        match (silent_before, c.reach().is_silent()) {
            (false, true) => warn!("ipmi {device}: the BMC does not answer"),
            (true, false) => info!("ipmi {device}: the BMC answers again"),
            _ => {}
        }
    }

    /// When something is next due.
    pub fn next_deadline(&self) -> Instant {
        if self.file.is_none() { self.next_open } else { self.conversation.next_deadline() }
    }

    /// Appends why the BMC makes the node unhealthy.
    pub fn reasons(&self, reasons: &mut Reasons) {
        let device = self.device.display();
        if let Some(e) = self.open_error {
            reasons.push(format_args!("ipmi {device}: cannot open: {}", e.desc()));
            return;
        }
        self.conversation.reasons(reasons, &device);
    }

    /// `hapair cleanup`: a latched SEL failure is released.
    pub fn handle_cleanup(&mut self) {
        self.conversation.handle_cleanup();
        self.store_mark();
    }

    /// The conversation: sensors, SEL, reachability, for status.
    pub fn conversation(&self) -> &Conversation {
        &self.conversation
    }

    /// Why the device is not open, if it is not.
    pub fn open_error(&self) -> Option<Errno> {
        self.open_error
    }
}

/// Sends `request` as `msgid` to the BMC.
fn send(fd: RawFd, msgid: i64, request: &Request) -> Result<(), Errno> {
    let mut addr = SystemInterfaceAddr {
        addr_type: SYSTEM_INTERFACE_ADDR_TYPE,
        channel: BMC_CHANNEL,
        lun: request.lun,
    };
    let mut data = [0u8; 8];
    let bytes = request.data();
    data[..bytes.len()].copy_from_slice(bytes);
    let mut req = IpmiReq {
        addr: (&raw mut addr).cast(),
        addr_len: size_of::<SystemInterfaceAddr>() as libc::c_uint,
        msgid: msgid as libc::c_long,
        msg: Msg {
            netfn: request.netfn,
            cmd: request.cmd,
            data_len: bytes.len() as libc::c_ushort,
            data: data.as_mut_ptr(),
        },
    };
    // SAFETY: `req` is a valid `struct ipmi_req` whose `addr` points at `addr` (of
    // `addr_len` bytes) and whose `msg.data` at `data` (at least `data_len` bytes); the
    // kernel copies both during the call, and all three outlive it.
    unsafe { ipmictl_send_command(fd, &raw mut req) }.map(drop)
}

/// Takes one queued answer into `buf`: its `msgid` and length, `None` when nothing is queued.
/// Anything but the answer to a request (the kernel queues no events unless asked) is
/// skipped as `None`.
fn receive(fd: RawFd, buf: &mut [u8; MSG_LEN_MAX]) -> Result<Option<(i64, usize)>, Errno> {
    let mut addr = AnyAddr { addr_type: 0, channel: 0, data: [0; ADDR_SIZE_MAX] };
    let mut recv = IpmiRecv {
        recv_type: 0,
        addr: (&raw mut addr).cast(),
        addr_len: size_of::<AnyAddr>() as libc::c_uint,
        msgid: 0,
        msg: Msg {
            netfn: 0,
            cmd: 0,
            data_len: MSG_LEN_MAX as libc::c_ushort,
            data: buf.as_mut_ptr(),
        },
    };
    // SAFETY: `recv` is a valid `struct ipmi_recv`: `addr` points at `addr`, `addr_len` bytes,
    // and `msg.data` at `buf`, `data_len` bytes; the kernel writes at most that much into
    // each (TRUNC: a longer answer is cut, EMSGSIZE) and updates the lengths; all outlive
    // the call.
    let r = unsafe { ipmictl_receive_msg_trunc(fd, &raw mut recv) };
    match r {
        Ok(_) | Err(Errno::EMSGSIZE) => {}
        Err(Errno::EAGAIN) => return Ok(None),
        Err(e) => return Err(e),
    }
    if recv.recv_type != RESPONSE_RECV_TYPE {
        return Ok(None);
    }
    let len = usize::from(recv.msg.data_len).min(MSG_LEN_MAX);
    Ok(Some((recv.msgid, len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel's ioctl numbers (include/uapi/linux/ipmi.h, x86_64): the sizes of the
    /// structs are the C ones.
    #[test]
    fn the_structs_and_ioctl_numbers_are_the_kernels() {
        assert_eq!(size_of::<IpmiReq>(), 40);
        assert_eq!(size_of::<IpmiRecv>(), 48);
        assert_eq!(size_of::<SystemInterfaceAddr>(), 8);
        assert_eq!(size_of::<AnyAddr>(), 40);
        // _IOR('i', 13, 40 bytes) and _IOWR('i', 11, 48 bytes).
        let ior = nix::request_code_read!(b'i', 13, size_of::<IpmiReq>());
        let iowr = nix::request_code_readwrite!(b'i', 11, size_of::<IpmiRecv>());
        assert_eq!((ior as u64, iowr as u64), (0x8028_690d, 0xc030_690b));
    }

    #[test]
    fn a_missing_device_is_a_reason_and_is_tried_again() {
        let now = Instant::from_millis(1000);
        let mut s = IpmiSource::open(Path::new("/nonexistent/ipmi0"), None, now);
        assert_eq!((s.fd(), s.open_error()), (None, Some(Errno::ENOENT)));
        let mut r = Reasons::new();
        s.reasons(&mut r);
        let got: Vec<&str> = r.iter().collect();
        assert_eq!(got, ["ipmi /nonexistent/ipmi0: cannot open: No such file or directory"]);
        assert_eq!(s.next_deadline(), now + ROUND_INTERVAL);
        s.poll(now + ROUND_INTERVAL);
        assert_eq!(s.next_deadline(), now + ROUND_INTERVAL + ROUND_INTERVAL);
    }

    /// A file that is no IPMI device: its first send fails (ENOTTY), which counts as an
    /// unanswered request, and is logged, not fatal.
    #[test]
    fn a_device_that_is_no_bmc_does_not_answer() {
        let now = Instant::from_millis(0);
        let mut s = IpmiSource::open(Path::new("/dev/null"), None, now);
        assert!(s.fd().is_some());
        s.poll(now);
        s.poll(now + ROUND_INTERVAL);
        assert!(s.conversation().reach().is_silent());
        let mut r = Reasons::new();
        s.reasons(&mut r);
        assert_eq!(r.iter().collect::<Vec<_>>(), ["ipmi /dev/null: BMC not answering"]);
    }
}
