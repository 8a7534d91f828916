//! The loop's DRBD work (SPEC §7.5): each `drbd` resource's state from `/proc/drbd` once a
//! second (its health reason when the local disk is not UpToDate, `Health::DRBD`), and the
//! outdate exchange with the peer (`drbd::outdate`): the requests of `hapair
//! drbd-fence-peer` parked until answered, the bytes every frame carries, and `drbdadm
//! outdate` run here as a child when the peer asks. No allocation after start: names and
//! minors are read once, the text goes through a fixed buffer.

use super::group::Tag;
use crate::config::{Config, Resource};
use crate::control::{ClientId, ControlServer};
use crate::core::time::{Duration, Instant};
use crate::drbd::outdate::{Event, Exchange, Peer};
use crate::drbd::{self, State};
use crate::drivers::children::{Children, Class, Program, Spec};
use crate::drivers::drbd as driver;
use crate::health::{HealthMonitor as Monitor, Reasons, Source};
use crate::wire::Outdate;
use log::{info, warn};

/// How often `/proc/drbd` is read.
const READ_INTERVAL: Duration = Duration::from_secs(1);
/// How long `drbdadm outdate` may take.
const OUTDATE_TIMEOUT: Duration = Duration::from_secs(20);
/// `hapair drbd-fence-peer` handlers waiting at once (DRBD runs one per resource).
const WAITING_MAX: usize = 8;

/// One `drbd` resource.
struct Res {
    name: String,
    /// Its minor (`drbdadm sh-minor`), `None` when it could not be found at start.
    minor: Option<u32>,
    /// What `/proc/drbd` said last.
    state: State,
}

/// The DRBD resources of the configuration and the exchange with the peer.
pub struct DrbdIo {
    resources: Vec<Res>,
    proc_path: String,
    buf: Box<[u8; driver::PROC_LEN_MAX]>,
    next_read: Instant,
    exchange: Exchange,
    /// Handlers waiting for an answer: their client and resource.
    waiting: heapless::Vec<(ClientId, u8), WAITING_MAX>,
    reasons: Reasons,
    /// `/proc/drbd` could not be read as DRBD 8.4's (warned once).
    warned_unreadable: bool,
}

impl DrbdIo {
    /// `None` without `drbd` resources. Asks `drbdadm` for each resource's minor (start-up
    /// only; a failure is logged and the resource counts as not up). `HAPAIR_PROC_DRBD`
    /// replaces `/proc/drbd` (tests).
    pub fn new(config: &Config, now: Instant) -> Option<DrbdIo> {
        let resources: Vec<Res> = config
            .resources
            .iter()
            .filter_map(|r| match r {
                Resource::Drbd { name } => Some(Res {
                    name: name.clone(),
                    minor: driver::minor_of(name)
                        .map_err(|e| warn!("drbd {name}: {e}; its state is unknown"))
                        .ok(),
                    state: State::DOWN,
                }),
                _ => None,
            })
            .collect();
        if resources.is_empty() {
            return None;
        }
        let proc_path = std::env::var("HAPAIR_PROC_DRBD").unwrap_or(driver::PROC_DRBD.into());
        Some(DrbdIo {
            resources,
            proc_path,
            buf: Box::new([0; driver::PROC_LEN_MAX]),
            next_read: now,
            exchange: Exchange::new(),
            waiting: heapless::Vec::new(),
            reasons: Reasons::default(),
            warned_unreadable: false,
        })
    }

    /// Each resource's name and state, for `status`.
    pub fn states(&self) -> impl Iterator<Item = (&str, &State)> {
        self.resources.iter().map(|r| (r.name.as_str(), &r.state))
    }

    /// Reads `/proc/drbd` at the next pass (a resource action just ended).
    pub fn read_soon(&mut self, now: Instant) {
        self.next_read = now;
    }

    /// What every frame carries now.
    pub fn frame(&self) -> Outdate {
        self.exchange.frame()
    }

    /// When `poll` has work.
    pub fn next_deadline(&self) -> Instant {
        self.exchange.next_deadline().map_or(self.next_read, |d| d.min(self.next_read))
    }

    /// Reads `/proc/drbd` when due (the health reasons follow), and works the exchange.
    pub fn poll(
        &mut self,
        now: Instant,
        peer: Peer,
        monitor: &mut Monitor,
        children: &mut Children<Tag>,
        control: &mut ControlServer,
    ) {
        if now >= self.next_read {
            self.next_read = now + READ_INTERVAL;
            self.read(monitor);
        }
        let resources = &self.resources;
        let event =
            self.exchange.poll(now, peer, |i| resources.get(usize::from(i)).map(|r| r.state));
        if let Some(event) = event {
            self.act(now, event, children, control);
        }
    }

    fn read(&mut self, monitor: &mut Monitor) {
        let text = driver::read_proc(&self.proc_path, &mut self.buf);
        self.reasons.clear();
        for r in &mut self.resources {
            let state = match r.minor {
                Some(minor) => drbd::parse_proc(text, minor),
                None => Some(State::DOWN),
            };
            let state = state.unwrap_or_else(|| {
                if !self.warned_unreadable {
                    self.warned_unreadable = true;
                    warn!(
                        "{}: not DRBD 8.4's: the state of drbd resources is unknown",
                        self.proc_path
                    );
                }
                State::DOWN
            });
            if state.disk != r.state.disk
                || state.role != r.state.role
                || state.connection != r.state.connection
            {
                info!(
                    "drbd {}: {} {} disk {} (peer {} disk {})",
                    r.name,
                    state.connection,
                    state.role.name(),
                    state.disk.name(),
                    state.peer_role.name(),
                    state.peer_disk.name()
                );
            }
            r.state = state;
            if let Some(disk) = drbd::health_reason(&state) {
                self.reasons.push(format_args!("drbd {} disk {}", r.name, disk.name()));
            }
        }
        monitor.handle_report(Source::Drbd, &self.reasons);
    }

    /// The outdate exchange of a frame the peer sent.
    pub fn handle_frame(
        &mut self,
        now: Instant,
        outdate: Outdate,
        children: &mut Children<Tag>,
        control: &mut ControlServer,
    ) {
        let resources = &self.resources;
        let events =
            self.exchange.handle_peer(outdate, |i| resources.get(usize::from(i)).map(|r| r.state));
        for event in events.into_iter().flatten() {
            self.act(now, event, children, control);
        }
    }

    /// `outdate-peer RES` from `hapair drbd-fence-peer`: parked until the peer answers.
    pub fn handle_request(
        &mut self,
        now: Instant,
        client: ClientId,
        name: &str,
        control: &mut ControlServer,
    ) {
        let Some(index) = self.resources.iter().position(|r| r.name == name) else {
            return control.reply(client, false, b"no such drbd resource");
        };
        // INVARIANT: at most RESOURCES_MAX (32) resources.
        let index = index as u8;
        if self.waiting.push((client, index)).is_err() {
            return control.reply(client, false, b"busy: too many fence-peer requests");
        }
        info!("drbd {name}: asking the peer to outdate its disk (fence-peer)");
        // One request at a time: another resource's waits for the answer to the first.
        self.exchange.ask(now, index);
    }

    /// `drbdadm outdate` exited.
    pub fn handle_outdate_exit(&mut self, now: Instant, index: u8, ok: bool, output: &str) {
        let name = self.resources.get(usize::from(index)).map_or("?", |r| r.name.as_str());
        if ok {
            info!("drbd {name}: drbdadm outdate exited 0 (answered once the disk reads Outdated)");
        } else {
            warn!("drbd {name}: drbdadm outdate failed (tried again in 1 s): {output}");
        }
        self.exchange.handle_outdate_exit(now, index, ok);
        // The state shows Outdated at the next read; read it at once.
        self.next_read = now;
    }

    fn act(
        &mut self,
        now: Instant,
        event: Event,
        children: &mut Children<Tag>,
        control: &mut ControlServer,
    ) {
        match event {
            Event::Answered { resource, code } => {
                let name = self.state_name(resource);
                info!("drbd {name}: fence-peer answered {code} ({})", meaning(code));
                let mut body = heapless::String::<8>::new();
                let _ = core::fmt::Write::write_fmt(&mut body, format_args!("{code}"));
                self.waiting.retain(|&(client, r)| {
                    if r == resource {
                        control.reply(client, true, body.as_bytes());
                    }
                    r != resource
                });
                // A handler of another resource waits: its request goes out now.
                if let Some(&(_, next)) = self.waiting.first() {
                    self.exchange.ask(now, next);
                }
            }
            Event::RunOutdate { resource } => {
                let Some(r) = self.resources.get(usize::from(resource)) else { return };
                info!("drbd {}: the peer asks this node to outdate its disk", r.name);
                let args = ["outdate", r.name.as_str()];
                let spec = Spec {
                    program: Program::Exec("drbdadm"),
                    args: &args,
                    env: &[],
                    clear_env: false,
                    stdin: &[],
                    stdout: None,
                    timeout: OUTDATE_TIMEOUT,
                    class: Class::Essential,
                    tag: Tag::Outdate(resource),
                };
                if let Err(e) = children.spawn(now, &spec) {
                    warn!("drbd {}: drbdadm outdate cannot start: {e}", r.name);
                    self.exchange.handle_outdate_exit(now, resource, false);
                }
            }
        }
    }

    fn state_name(&self, index: u8) -> &str {
        self.resources.get(usize::from(index)).map_or("?", |r| r.name.as_str())
    }
}

/// What DRBD's fence-peer exit code says.
pub const fn meaning(code: u8) -> &'static str {
    match code {
        3 => "the peer's disk was already Outdated or Inconsistent",
        4 => "the peer outdated its disk",
        5 => "the peer is unreachable",
        6 => "the peer is Primary and refused",
        7 => "the peer was fenced",
        _ => "unknown",
    }
}
