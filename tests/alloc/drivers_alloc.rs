//! Steady state allocates nothing: every driver's per-wake work (serial and UDP frames both
//! ways, a signal, a status request on the control socket rendered as JSON, child polling,
//! status rendering) runs many times under a counting global allocator after a warm-up.
//! Only allocations of the test thread are counted; the control client runs on another.
//! UDP runs on the loopback of a network namespace the test thread makes for itself.

// Test deadlines are wall-clock time; the daemon itself reads the clock only in event_loop.rs.
#![allow(clippy::disallowed_methods)]

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use crate::common::TempDir;
use crate::common::alloc;
use hapair::control::{ControlServer, request};
use hapair::core::time::{Duration, Instant};
use hapair::drivers::children::{Children, Class, Program, Spec};
use hapair::drivers::serial::{SerialPort, WriteOutcome};
use hapair::drivers::signals::{Signal, Signals};
use hapair::drivers::udp::{Batch, SendOutcome, UdpLink, UdpMedium};
use hapair::status::{Snapshot, render_human, render_json, render_prometheus};

struct Rig {
    master: std::os::fd::OwnedFd,
    _slave: std::os::fd::OwnedFd,
    serial: SerialPort,
    udp: UdpLink,
    signals: Signals,
    control: ControlServer,
    children: Children<u8>,
    snapshot: Snapshot,
}

/// One wake of a would-be event loop; returns whether a control request was served.
fn step(rig: &mut Rig, now: Instant) -> bool {
    let frame = [0x42u8; 100];
    let mut buf = [0u8; 256];
    assert_eq!(rig.serial.write_frame(&frame).unwrap(), WriteOutcome::Sent);
    let n = read_all(&rig.master, &mut buf, frame.len());
    assert_eq!(nix::unistd::write(&rig.master, &buf[..n]).unwrap(), n);
    let mut got = 0;
    while got < n {
        got += rig.serial.read_available(&mut buf).unwrap();
    }
    // Shaped like a v4 frame, which the socket filter admits.
    let mut datagram = [0x42u8; hapair::wire::FRAME_LEN_V4];
    datagram[..4].copy_from_slice(&[4, 96, 1, 0]);
    assert_eq!(rig.udp.send(&datagram), SendOutcome::Sent);
    let mut batch = Batch::default();
    while batch.is_empty() {
        rig.udp.recv_batch(&mut batch);
    }
    nix::sys::signal::raise(nix::sys::signal::Signal::SIGUSR1).unwrap();
    assert_eq!(rig.signals.read(), Some(Signal::Usr1));
    rig.children.poll_timeouts(now);
    rig.children.drain_output();
    assert!(rig.children.poll_exited(now).is_none());
    assert!(rig.children.next_deadline().is_some());
    let mut text = heapless::String::<16384>::new();
    render_human(&rig.snapshot, &mut text).unwrap();
    text.clear();
    render_prometheus(&rig.snapshot, &mut text).unwrap();
    rig.control.poll_io(now);
    match rig.control.poll_request() {
        Some((id, _)) => {
            let snapshot = &rig.snapshot;
            rig.control.reply_with(id, true, |w| render_json(snapshot, w));
            true
        }
        None => false,
    }
}

fn read_all(fd: &std::os::fd::OwnedFd, buf: &mut [u8], want: usize) -> usize {
    let until = StdInstant::now() + StdDuration::from_secs(10);
    let mut got = 0;
    while got < want {
        assert!(StdInstant::now() < until, "the pty never delivered");
        if let Ok(n) = nix::unistd::read(fd, &mut buf[got..]) {
            got += n;
        }
    }
    got
}

#[test]
fn steady_state_allocates_nothing() {
    let _counters = alloc::exclusive();
    // A network namespace of this thread's own: its loopback is ours alone.
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare");
    let up = std::process::Command::new("ip").args(["link", "set", "lo", "up"]).status();
    assert!(up.expect("run ip").success());
    let signals = Signals::new().unwrap();
    let pair = nix::pty::openpty(None, None).unwrap();
    let path = nix::unistd::ttyname(&pair.slave).unwrap();
    let serial = SerialPort::open(path.to_str().unwrap(), 115_200).unwrap();
    let port = 6694;
    let local = Ipv4Addr::LOCALHOST.into();
    let lo = UdpMedium::Ucast { ifname: "lo", own: local, peer: local };
    let udp = UdpLink::open(&lo, port).unwrap();
    // The socket's directory does not exist yet: `bind` makes it, as the daemon's does.
    let dir = TempDir::new("alloc");
    let socket = dir.join("run/hapair.sock");
    let control = ControlServer::bind(&socket, Duration::from_secs(10)).unwrap();
    let mut children = Children::new(Duration::from_secs(1));
    let sleeper = Spec {
        program: Program::Shell("sleep 1000"),
        args: &[],
        env: &[],
        clear_env: false,
        stdin: &[],
        stdout: None,
        timeout: Duration::from_secs(1000),
        class: Class::Ordinary,
        tag: 1u8,
    };
    let sleeper = children.spawn(Instant::ZERO, &sleeper).unwrap();
    let sleeper = nix::unistd::Pid::from_raw(children.pid(sleeper).unwrap());
    let mut snapshot = Snapshot::new("alpha", "beta");
    snapshot.peer.links.push(Default::default()).unwrap();
    let mut rig = Rig {
        master: pair.master,
        _slave: pair.slave,
        serial,
        udp,
        signals,
        control,
        children,
        snapshot,
    };
    const REQUESTS: usize = 20;
    static GO: AtomicBool = AtomicBool::new(false);
    let client = std::thread::spawn(move || {
        let until = StdInstant::now() + StdDuration::from_secs(60);
        while !GO.load(Ordering::SeqCst) && StdInstant::now() < until {
            std::thread::yield_now();
        }
        for _ in 0..REQUESTS {
            request(&socket, "status json").expect("status reply");
        }
    });
    for i in 0..50 {
        step(&mut rig, Instant::from_millis(i)); // warm-up
    }
    alloc::count_this_thread(Some(0));
    GO.store(true, Ordering::SeqCst);
    let mut served = 0;
    let until = StdInstant::now() + StdDuration::from_secs(60);
    let mut i = 50;
    while served < REQUESTS - 2 || i < 1050 {
        assert!(StdInstant::now() < until, "served only {served} requests");
        served += usize::from(step(&mut rig, Instant::from_millis(i)));
        i += 1;
    }
    alloc::count_this_thread(None);
    let allocations = alloc::calls(0);
    while !client.is_finished() {
        step(&mut rig, Instant::from_millis(i));
    }
    client.join().unwrap();
    // Our own sleeper, by its process group (still unreaped, so the id is still its).
    let _ = nix::sys::signal::killpg(sleeper, nix::sys::signal::Signal::SIGKILL);
    assert_eq!(allocations, 0, "allocations in {} steady-state wakes", i - 50);
}
