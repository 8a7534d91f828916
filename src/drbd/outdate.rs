//! Outdating the peer's disk over the heartbeat links (SPEC §7.5; heartbeat's dopd): the two
//! halves of one exchange, as pure code.
//!
//! **Asking.** DRBD runs its fence-peer handler (`hapair drbd-fence-peer`) when a Primary
//! loses its connection, or when a disconnected Secondary is promoted. The handler asks the
//! local daemon; the daemon puts a request (a number 1 to 15 and the resource) into every
//! frame it sends, on every link, until a frame of the peer answers that number. The answer
//! is DRBD's exit code: 3 the peer's disk is already Outdated or Inconsistent, 4 the peer
//! outdated it now, 6 the peer is Primary and refused. Without an answer: 7 once the core
//! holds the peer dead and made safe (fenced, its watchdog waited out, or it left), 5 when it
//! is dead and not made safe, or when a live peer did not answer within [`ASK_TIMEOUT`].
//!
//! **Answering.** A node that reads a request it has not answered yet judges its own copy
//! ([`decide`]): Primary refuses (6); an Outdated or Inconsistent disk is answered at once
//! (3); any other runs `drbdadm outdate RES` (once at a time, again [`RETRY`] after a failure:
//! DRBD refuses to outdate a disk that is still connected, which a Secondary is for a moment
//! after the Primary lost it) and answers 4 once the disk reads Outdated after a run that
//! exited 0 (the exit status alone is not trusted). The answer is repeated in
//! every frame while the request is; a request gone, or a new number, starts over.
//!
//! Numbers are per daemon run and wrap from 15 to 1; a stale answer (another number) is
//! ignored, so a frame delayed on one link never answers a newer request.

use super::{Disk, Role, State};
use crate::core::time::{Duration, Instant};
use crate::wire::Outdate;

/// The peer's disk was already Outdated or Inconsistent (DRBD's fence-peer exit code).
pub const PEER_INCONSISTENT: u8 = 3;
/// The peer outdated its disk.
pub const PEER_OUTDATED: u8 = 4;
/// The peer could not be reached (and was not made safe).
pub const PEER_UNREACHABLE: u8 = 5;
/// The peer is Primary and refused.
pub const PEER_PRIMARY: u8 = 6;
/// The peer was fenced (made safe by the pair's fence, its watchdog, or its leaving).
pub const PEER_FENCED: u8 = 7;

/// How long a live peer may take to answer before the handler is told it is unreachable.
pub const ASK_TIMEOUT: Duration = Duration::from_secs(30);
/// How soon a failed `drbdadm outdate` is tried again while the request stands.
pub const RETRY: Duration = Duration::from_secs(1);

/// What the core says of the peer, for a request without an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// Heard within its deadtime: wait for its answer.
    Alive,
    /// Dead; `safe` when fenced, its watchdog waited out, or it left cleanly.
    Dead {
        /// Made safe since it was last heard.
        safe: bool,
    },
}

/// What the loop must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The request about `resource` is over: tell the waiting handlers `code`.
    Answered {
        /// The resource (index among the `drbd` resources).
        resource: u8,
        /// DRBD's fence-peer exit code.
        code: u8,
    },
    /// Run `drbdadm outdate` on `resource` here, and report its exit.
    RunOutdate {
        /// The resource (index among the `drbd` resources).
        resource: u8,
    },
}

/// What to answer to a request about a resource in `state` (`None`: not known here).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Answer this code now.
    Answer(u8),
    /// Run `drbdadm outdate`, then answer 4.
    Outdate,
}

/// The judgement of the node asked: Primary refuses, a disk already stale says so, anything
/// else (UpToDate, Consistent, a resource not up, whose metadata may still say UpToDate) is
/// outdated. A resource this node does not have cannot be outdated here: unreachable.
pub fn decide(state: Option<&State>) -> Decision {
    match state {
        None => Decision::Answer(PEER_UNREACHABLE),
        Some(s) if s.role == Role::Primary => Decision::Answer(PEER_PRIMARY),
        Some(s) if matches!(s.disk, Disk::Outdated | Disk::Inconsistent) => {
            Decision::Answer(PEER_INCONSISTENT)
        }
        Some(_) => Decision::Outdate,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Asked {
    number: u8,
    resource: u8,
    since: Instant,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Work {
    /// `drbdadm outdate` runs.
    Running,
    /// It exited 0: the answer waits for the disk to read Outdated (its exit status alone is
    /// not trusted: the QEMU pair saw it exit 0 with the disk still UpToDate, racing DRBD's
    /// own view of the lost link).
    Check,
    /// It failed: run it again at this instant.
    RetryAt(Instant),
    /// The answer.
    Done(u8),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Answering {
    number: u8,
    resource: u8,
    work: Work,
}

/// Both halves of the exchange of one node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Exchange {
    last_number: u8,
    asked: Option<Asked>,
    answering: Option<Answering>,
}

impl Exchange {
    /// Nothing asked, nothing to answer.
    pub const fn new() -> Exchange {
        Exchange { last_number: 0, asked: None, answering: None }
    }

    /// Asks the peer to outdate `resource`. A request about the same resource already
    /// under way is joined (its answer serves both); one about another resource makes this
    /// one wait: false, ask again when it is answered.
    pub fn ask(&mut self, now: Instant, resource: u8) -> bool {
        match self.asked {
            Some(a) => a.resource == resource,
            None => {
                self.last_number = self.last_number % 15 + 1;
                self.asked = Some(Asked { number: self.last_number, resource, since: now });
                true
            }
        }
    }

    /// The resource a request is under way for.
    pub fn asking(&self) -> Option<u8> {
        self.asked.map(|a| a.resource)
    }

    /// What every frame carries now.
    pub fn frame(&self) -> Outdate {
        let request = self.asked.map_or(0, |a| Outdate::request(a.number, a.resource));
        let answer = match self.answering {
            Some(Answering { number, work: Work::Done(code), .. }) => Outdate::answer(number, code),
            _ => 0,
        };
        Outdate { request, answer }
    }

    /// What a frame of the peer carried. `state` gives this node's view of a resource (by
    /// index). Returns what the loop must do: at most an answer to our request and the start
    /// of an outdate here.
    pub fn handle_peer(
        &mut self,
        peer: Outdate,
        state: impl Fn(u8) -> Option<State>,
    ) -> [Option<Event>; 2] {
        let mut events = [None, None];
        if let (Some(a), Some((number, code))) = (self.asked, peer.answered())
            && number == a.number
        {
            self.asked = None;
            events[0] = Some(Event::Answered { resource: a.resource, code });
        }
        match peer.requested() {
            None => self.answering = None,
            Some((number, _)) if self.answering.is_some_and(|a| a.number == number) => {}
            Some((number, resource)) => {
                let work = match decide(state(resource).as_ref()) {
                    Decision::Answer(code) => Work::Done(code),
                    Decision::Outdate => {
                        events[1] = Some(Event::RunOutdate { resource });
                        Work::Running
                    }
                };
                self.answering = Some(Answering { number, resource, work });
            }
        }
        events
    }

    /// `drbdadm outdate` of `resource` exited (`ok`: status 0).
    pub fn handle_outdate_exit(&mut self, now: Instant, resource: u8, ok: bool) {
        if let Some(a) = &mut self.answering
            && a.resource == resource
            && a.work == Work::Running
        {
            a.work = if ok { Work::Check } else { Work::RetryAt(now + RETRY) };
        }
    }

    /// What time brings: a retry of the outdate here, or the end of our request when the
    /// peer is dead or silent too long. `state` as in `handle_peer`.
    pub fn poll(
        &mut self,
        now: Instant,
        peer: Peer,
        state: impl Fn(u8) -> Option<State>,
    ) -> Option<Event> {
        if let Some(a) = self.asked {
            let code = match peer {
                Peer::Dead { safe: true } => Some(PEER_FENCED),
                Peer::Dead { safe: false } => Some(PEER_UNREACHABLE),
                Peer::Alive if now >= a.since + ASK_TIMEOUT => Some(PEER_UNREACHABLE),
                Peer::Alive => None,
            };
            if let Some(code) = code {
                self.asked = None;
                return Some(Event::Answered { resource: a.resource, code });
            }
        }
        if let Some(a) = &mut self.answering
            && a.work == Work::Check
        {
            // The disk as read after the run: Outdated (or worse) answers 4, anything else
            // is outdated again a little later.
            let stale = state(a.resource)
                .is_some_and(|s| matches!(s.disk, Disk::Outdated | Disk::Inconsistent));
            a.work = if stale { Work::Done(PEER_OUTDATED) } else { Work::RetryAt(now + RETRY) };
        }
        if let Some(a) = &mut self.answering
            && let Work::RetryAt(at) = a.work
            && now >= at
        {
            a.work = match decide(state(a.resource).as_ref()) {
                Decision::Answer(code) => Work::Done(code),
                Decision::Outdate => Work::Running,
            };
            if a.work == Work::Running {
                return Some(Event::RunOutdate { resource: a.resource });
            }
        }
        None
    }

    /// When `poll` has something to do next, `None` when only a frame can change anything.
    pub fn next_deadline(&self) -> Option<Instant> {
        let ask = self.asked.map(|a| a.since + ASK_TIMEOUT);
        let retry = match self.answering {
            Some(Answering { work: Work::RetryAt(at), .. }) => Some(at),
            _ => None,
        };
        match (ask, retry) {
            (Some(a), Some(r)) => Some(a.min(r)),
            (a, r) => a.or(r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn state(role: Role, disk: Disk) -> State {
        State { role, disk, connection: "StandAlone", ..State::DOWN }
    }

    /// Two exchanges joined by their frames, as the two daemons of a pair.
    fn carry(from: &Exchange, to: &mut Exchange, s: State) -> [Option<Event>; 2] {
        to.handle_peer(from.frame(), |_| Some(s))
    }

    #[test]
    fn a_secondary_outdates_its_disk_and_the_asker_hears_4() {
        let (mut alpha, mut beta) = (Exchange::new(), Exchange::new());
        let secondary = state(Role::Secondary, Disk::UpToDate);
        assert!(alpha.ask(at(0), 0));
        assert_eq!(alpha.frame().requested(), Some((1, 0)));
        // Beta runs `drbdadm outdate`; nothing is answered while it runs.
        assert_eq!(
            carry(&alpha, &mut beta, secondary),
            [None, Some(Event::RunOutdate { resource: 0 })]
        );
        assert_eq!(carry(&alpha, &mut beta, secondary), [None, None], "one run per request");
        assert_eq!(beta.frame().answered(), None);
        // It fails at first (still connected), then works.
        beta.handle_outdate_exit(at(100), 0, false);
        assert_eq!(beta.poll(at(500), Peer::Alive, |_| Some(secondary)), None);
        assert_eq!(beta.next_deadline(), Some(at(1100)));
        let retry = beta.poll(at(1100), Peer::Alive, |_| Some(secondary));
        assert_eq!(retry, Some(Event::RunOutdate { resource: 0 }));
        beta.handle_outdate_exit(at(1200), 0, true);
        assert_eq!(beta.frame().answered(), None, "not before the disk reads Outdated");
        // It exited 0 but the disk still reads UpToDate: not answered, run again later.
        assert_eq!(beta.poll(at(1250), Peer::Alive, |_| Some(secondary)), None);
        assert_eq!(beta.frame().answered(), None);
        let again = beta.poll(at(2250), Peer::Alive, |_| Some(secondary));
        assert_eq!(again, Some(Event::RunOutdate { resource: 0 }));
        beta.handle_outdate_exit(at(2300), 0, true);
        let outdated = state(Role::Secondary, Disk::Outdated);
        assert_eq!(beta.poll(at(2350), Peer::Alive, |_| Some(outdated)), None);
        assert_eq!(beta.frame().answered(), Some((1, PEER_OUTDATED)));
        let heard = carry(&beta, &mut alpha, state(Role::Primary, Disk::UpToDate));
        assert_eq!(heard[0], Some(Event::Answered { resource: 0, code: PEER_OUTDATED }));
        assert_eq!(alpha.frame(), Outdate::NONE);
        // Alpha's request is gone: beta stops answering.
        carry(&alpha, &mut beta, secondary);
        assert_eq!(beta.frame(), Outdate::NONE);
    }

    #[test]
    fn a_primary_refuses_and_a_stale_disk_is_answered_at_once() {
        assert_eq!(decide(Some(&state(Role::Primary, Disk::UpToDate))), Decision::Answer(6));
        assert_eq!(decide(Some(&state(Role::Secondary, Disk::Outdated))), Decision::Answer(3));
        assert_eq!(decide(Some(&state(Role::Secondary, Disk::Inconsistent))), Decision::Answer(3));
        assert_eq!(decide(Some(&State::DOWN)), Decision::Outdate, "a disk not up is outdated");
        assert_eq!(decide(None), Decision::Answer(5));
        let (mut alpha, mut beta) = (Exchange::new(), Exchange::new());
        alpha.ask(at(0), 0);
        assert_eq!(carry(&alpha, &mut beta, state(Role::Primary, Disk::UpToDate)), [None, None]);
        assert_eq!(beta.frame().answered(), Some((1, PEER_PRIMARY)));
        let heard = carry(&beta, &mut alpha, State::DOWN);
        assert_eq!(heard[0], Some(Event::Answered { resource: 0, code: PEER_PRIMARY }));
    }

    #[test]
    fn a_stale_answer_never_answers_a_newer_request() {
        let (mut alpha, mut beta) = (Exchange::new(), Exchange::new());
        let outdated = state(Role::Secondary, Disk::Outdated);
        alpha.ask(at(0), 0);
        carry(&alpha, &mut beta, outdated);
        let old_answer = beta.frame();
        assert_eq!(old_answer.answered(), Some((1, PEER_INCONSISTENT)));
        // Request 1 ends by the timeout; request 2 is asked; the old answer arrives late.
        assert!(alpha.poll(at(30_000), Peer::Alive, |_| None).is_some());
        alpha.ask(at(30_001), 0);
        assert_eq!(alpha.handle_peer(old_answer, |_| None), [None, None]);
        assert_eq!(alpha.frame().requested(), Some((2, 0)));
    }

    #[test]
    fn without_an_answer_a_dead_peer_is_fenced_or_unreachable() {
        let mut alpha = Exchange::new();
        alpha.ask(at(0), 1);
        assert_eq!(alpha.poll(at(10), Peer::Alive, |_| None), None);
        let safe = alpha.poll(at(20), Peer::Dead { safe: true }, |_| None);
        assert_eq!(safe, Some(Event::Answered { resource: 1, code: PEER_FENCED }));
        alpha.ask(at(30), 1);
        let unsafe_ = alpha.poll(at(40), Peer::Dead { safe: false }, |_| None);
        assert_eq!(unsafe_, Some(Event::Answered { resource: 1, code: PEER_UNREACHABLE }));
        alpha.ask(at(50), 1);
        assert_eq!(alpha.next_deadline(), Some(at(30_050)));
        let silent = alpha.poll(at(30_050), Peer::Alive, |_| None);
        assert_eq!(silent, Some(Event::Answered { resource: 1, code: PEER_UNREACHABLE }));
    }

    #[test]
    fn one_request_at_a_time_and_numbers_wrap_past_zero() {
        let mut alpha = Exchange::new();
        assert!(alpha.ask(at(0), 0));
        assert!(alpha.ask(at(1), 0), "the same resource joins");
        assert!(!alpha.ask(at(2), 1), "another waits");
        let mut seen = [false; 16];
        for i in 0..40 {
            alpha.poll(at(100_000 * (i + 1)), Peer::Dead { safe: false }, |_| None);
            alpha.ask(at(100_000 * (i + 1) + 1), 0);
            let (n, _) = alpha.frame().requested().unwrap();
            seen[usize::from(n)] = true;
        }
        assert!(!seen[0] && seen[1..].iter().all(|s| *s));
    }
}
