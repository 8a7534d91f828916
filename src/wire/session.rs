//! The freshness handshake of version 2 frames (SPEC §7.2): a node acts only on frames that
//! its peer sent after it heard this node's current challenge, so nothing recorded before a
//! restart, and nothing of an earlier run of the peer, is ever taken as proof that the peer
//! lives or as a reason to act. Pure state, fed by `auth::Receiver` after the tag checked; no
//! I/O, no clock, no randomness of its own (the loop draws the run and the first challenge).
//!
//! # The fields
//!
//! Every v2 frame carries, beside the sender's persisted `incarnation`:
//! - `run`: random, drawn when the sender's daemon starts, never 0, fixed while it runs. A
//!   peer's run is identified by (incarnation, run), so a statedir that was lost or restored
//!   (an incarnation seen before, or lower) still names a run of its own.
//! - `challenge`: the sender's current challenge, never 0. It starts random and moves on
//!   (an odd step, so it never repeats within a run) each time this node accepts a new run of
//!   its peer in place of one it had accepted: frames of the replaced run, which could only
//!   echo the older challenge, then count as nothing.
//! - `echo`: the receiver's challenge as the sender last heard it (0: nothing heard yet).
//! - `flags`: bit 0, "your incarnation went backwards and I resynchronised": the sender's
//!   accepted run of the receiver replaced one with a higher (or equal) incarnation.
//!
//! # The rule
//!
//! A frame is *fresh* when its `echo` equals this node's current challenge. Only fresh frames
//! reach the core: liveness, `Release`, `Leaving`, the peer-alive flag and everything else
//! count only then. Frames of every run pass a per-link sequence window of that run (the
//! *accepted* run's, or one *candidate* run's: the newest other run heard). The accepted
//! run's frames teach this node the challenge to echo when they answer a challenge of this
//! run (the current one, or the one before: the rest of the burst that moved it on), or are
//! newer than such a frame received on their link; a candidate's teach it only
//! when it can be a restart of the peer: an incarnation above every one accepted, or no
//! accepted run, or one the core holds dead (a peer back after a lost statedir is heard once
//! its old run is silent for `deadtime`, so a reboot resynchronises at once). Never a run this
//! node accepted once and saw replaced (a peer runs one run at a time), and, while the core
//! holds the accepted run dead, never a run no newer than it whose frames echo a challenge of
//! an earlier run of this node (a restart after a lost statedir began later). A fresh frame of
//! the candidate makes it the accepted run (a restart of the peer, or a resync when its
//! incarnation did not go up). A candidate that taught is refuted, and forgotten, when the
//! accepted run sends two fresh frames on one link after it appeared: the old run answers on,
//! so the candidate was a recording.
//!
//! The handshake therefore completes within one frame each way: a node that starts learns its
//! peer's challenge from the first frame it hears, echoes it in its next frame, and the peer
//! does the same. Until then the frames dropped are counted as `unconfirmed` (echo 0 or this
//! node's previous challenge). A frame that echoes any other value was addressed to an earlier
//! run of this node, sent before it restarted: a recording replayed, or one in flight across
//! the restart. It is dropped and counted with the replays.
//!
//! # What it does not stop
//!
//! A frame delayed (not replayed) by someone on the path still proves what it proved when
//! it was sent. A run is taken for a restart of the peer (its challenge learnt while the
//! accepted run lives) only above the highest incarnation ever accepted, so recordings of runs
//! replaced after a resync teach nothing either; the price is that after a resync a quick
//! restart of the peer is heard only once the core holds its old run dead (`deadtime`).

use super::error::RxError;
use crate::limits::LINKS_MAX;

/// Session flag: "your incarnation went backwards and I resynchronised to your new run".
pub const FLAG_YOUR_INCARNATION_WENT_BACK: u8 = 1 << 0;

/// The odd step between two challenges of one run (2^32 steps before one repeats).
const CHALLENGE_STEP: u32 = 0x9E37_79B9;

/// The session fields of one frame (all zero in a v1 frame).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Session {
    /// The sender's run, random per daemon start, never 0 in v2.
    pub run: u32,
    /// The sender's current challenge, never 0 in v2.
    pub challenge: u32,
    /// The receiver's challenge as the sender last heard it, 0 when it heard none.
    pub echo: u32,
    /// `FLAG_*` bits; unknown bits are ignored.
    pub flags: u8,
}

impl Session {
    /// The fields of a v1 frame, which has none.
    pub const NONE: Session = Session { run: 0, challenge: 0, echo: 0, flags: 0 };
}

/// One run of the peer and the replay window of each link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    incarnation: u64,
    run: u32,
    seq_last: [Option<u64>; LINKS_MAX],
    /// A frame of this run that answered a challenge of this node's current run (the current
    /// one or the one before) came on the link: a later frame there is no recording.
    answered: [bool; LINKS_MAX],
}

impl Run {
    fn new(incarnation: u64, run: u32) -> Run {
        Run { incarnation, run, seq_last: [None; LINKS_MAX], answered: [false; LINKS_MAX] }
    }

    fn is(&self, incarnation: u64, run: u32) -> bool {
        self.incarnation == incarnation && self.run == run
    }
}

/// What a fresh frame changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Admitted {
    /// Frames of this run that never arrived on this link before this one.
    pub lost: u64,
    /// The frame made a new run of the peer the accepted one, in place of another.
    pub restarted: bool,
    /// ... and the new run's incarnation is not above the replaced one's.
    pub resynced: bool,
}

/// This node's side of the handshake with its peer.
/// How many replaced runs of the peer a handshake remembers (`Handshake::retired`).
const RETIRED_MAX: usize = 4;

#[derive(Clone, Debug)]
pub struct Handshake {
    run: u32,
    challenge: u32,
    challenge_prev: u32,
    accepted: Option<Run>,
    /// The highest incarnation of any run of the peer this node accepted: a run above it is
    /// a restart; one below it may be a recording of a run replaced after a resync.
    accepted_max: Option<u64>,
    /// The highest incarnation of any authentic frame of the peer (`heard_max`).
    heard_max: Option<u64>,
    candidate: Option<Run>,
    /// Runs of the peer this node accepted and then saw replaced (the newest first): a peer
    /// runs one run at a time, so none of them runs again, and their frames are recordings.
    retired: [Option<(u64, u32)>; RETIRED_MAX],
    /// Fresh frames of the accepted run per link since the candidate appeared: two on one
    /// link refute the candidate (see `admit`).
    refuting: [u8; LINKS_MAX],
    /// The peer's challenge to echo.
    echo: u32,
    /// The accepted run came by a resync: say so in our frames.
    resynced: bool,
    /// The peer's last fresh frame said our incarnation went backwards.
    own_went_back: bool,
    /// The core holds the accepted run alive (fed by the loop before each frame): while it
    /// is, frames of another run that is not newer teach nothing (see `admit`).
    peer_alive: bool,
    /// The accepted run sent a fresh frame within about one send interval: it is running,
    /// so no other run of the peer can be a live one (a peer runs one run at a time).
    peer_recent: bool,
    /// Test only: take every frame as fresh, as version 1 did. The simulator uses it to show
    /// that its replaying adversary catches a receiver without the freshness rule.
    #[cfg(feature = "sim")]
    pub(super) sim_skip_freshness: bool,
}

impl Handshake {
    /// This node's side for a daemon run `run` whose first challenge is `challenge` (both
    /// random; a 0 is replaced by 1, since 0 means "none").
    pub fn new(run: u32, challenge: u32) -> Handshake {
        Handshake {
            run: run.max(1),
            challenge: challenge.max(1),
            challenge_prev: 0,
            accepted: None,
            accepted_max: None,
            heard_max: None,
            candidate: None,
            retired: [None; RETIRED_MAX],
            refuting: [0; LINKS_MAX],
            echo: 0,
            resynced: false,
            own_went_back: false,
            peer_alive: false,
            peer_recent: false,
            #[cfg(feature = "sim")]
            sim_skip_freshness: false,
        }
    }

    /// The session fields of this node's next frame.
    pub fn outgoing(&self) -> Session {
        let flags = if self.resynced { FLAG_YOUR_INCARNATION_WENT_BACK } else { 0 };
        Session { run: self.run, challenge: self.challenge, echo: self.echo, flags }
    }

    /// The highest incarnation of the peer an earlier run of this node accepted (kept in the
    /// statedir): a run at or below it is not taken for a restart while the peer lives.
    pub fn set_accepted_floor(&mut self, incarnation: u64) {
        self.accepted_max = Some(self.accepted_max.map_or(incarnation, |m| m.max(incarnation)));
    }

    /// The highest incarnation of the peer heard in any authentic frame, accepted or not (to
    /// keep in the statedir as the next run's floor: a run heard once is no restart later).
    pub fn heard_max(&self) -> Option<u64> {
        self.heard_max.max(self.accepted_max)
    }

    /// The accepted run's incarnation.
    pub fn peer_incarnation(&self) -> Option<u64> {
        self.accepted.map(|r| r.incarnation)
    }

    /// Whether the core holds the peer alive now. The loop (or the simulator) sets it before
    /// it hands in frames.
    pub fn set_peer_alive(&mut self, alive: bool, recent: bool) {
        self.peer_alive = alive;
        self.peer_recent = alive && recent;
    }

    /// True while the peer's last fresh frame says our incarnation went backwards.
    pub fn own_incarnation_went_back(&self) -> bool {
        self.own_went_back
    }

    /// Judges an authentic frame of version 2 or later from the peer, received on `link`
    /// (below `LINKS_MAX`, a caller invariant): `Ok` when it is fresh and may reach the core.
    pub fn admit(
        &mut self,
        link: u8,
        incarnation: u64,
        seq: u64,
        session: &Session,
    ) -> Result<Admitted, RxError> {
        let accepted = self.accepted.is_some_and(|r| r.is(incarnation, session.run));
        if !accepted && !self.candidate.is_some_and(|r| r.is(incarnation, session.run)) {
            self.candidate = Some(Run::new(incarnation, session.run));
            self.refuting = [0; LINKS_MAX];
        }
        let fresh = session.echo == self.challenge || self.skip_freshness();
        // Sent after the peer heard a challenge of this run of ours: fresh, or the answer to
        // the challenge before (the rest of the burst whose fresh frame moved it on).
        let answers = fresh || (self.challenge_prev != 0 && session.echo == self.challenge_prev);
        let run = if accepted { self.accepted.as_mut() } else { self.candidate.as_mut() };
        // INVARIANT: the accepted run matched, or the candidate was set just above.
        let run = run.expect("the frame's run is the accepted one or the candidate");
        let slot = &mut run.seq_last[usize::from(link)];
        let lost = match *slot {
            Some(last) if seq <= last => return Err(RxError::Replay),
            Some(last) => seq - last - 1,
            None => 0,
        };
        *slot = Some(seq);
        // Newer than a frame on this link that answered a challenge of this run of ours, so
        // no recording: a frame newer only than another that answered none proves nothing
        // (both may be replayed from before our restart, on a link that delivered nothing of
        // this run since: SIM seed 8008 of issue 22).
        let known_link = run.answered[usize::from(link)];
        run.answered[usize::from(link)] |= answers;
        self.heard_max = self.heard_max.max(Some(incarnation));
        // Whose challenge to echo: the accepted run's, from a frame that answers a challenge
        // of this run of ours (sent after the peer heard it) or from one that is newer than
        // such a frame on its link (so no older than that one: it cannot bring back a
        // challenge the peer has left behind, while frames of that run recorded by an earlier
        // run of ours and replayed on a link whose window here is still empty could; and the
        // two nodes must be able to learn each other's challenge when both moved on at once). Another
        // run's only when it can be a restart of the peer: an incarnation above every one
        // accepted, or no run accepted, or the core holds the accepted one dead (a restart
        // after a lost statedir). Otherwise frames replayed while the peer lives would make
        // us echo a stale challenge and the live peer stop hearing us.
        // A candidate is refuted by the accepted run answering on: two fresh frames of the
        // accepted run on one link since the candidate appeared were both sent after the peer
        // heard our current challenge, and a real restart is taught only once the old run has
        // been quiet for a send interval (`peer_recent`), so no old run's frame in flight can
        // do that. Forgotten, it no longer stops the accepted run from teaching: a recording
        // of a run with a higher incarnation (an old run from before the peer's statedir was
        // lost) that taught us while our peer seemed quiet (we hung) cannot keep us echoing
        // its challenge and the live peer deaf to us (SIM seed 645244). Its next frame is a
        // new candidate, which teaches nothing while the accepted run is recent.
        if accepted && fresh && self.candidate.is_some() {
            let count = &mut self.refuting[usize::from(link)];
            *count = count.saturating_add(1);
            if *count >= 2 {
                self.candidate = None;
            }
        }
        let newer =
            self.accepted.is_none() || self.accepted_max.is_none_or(|max| incarnation > max);
        // While a newer run of the peer is heard (it restarted and its old run's last frames
        // are still in flight), the old run teaches nothing: echoing it back would hide our
        // frames from the new run.
        // (Only read for a frame of the accepted run, which is never the candidate.)
        let restarting =
            self.candidate.is_some_and(|c| c.incarnation > self.accepted_max.unwrap_or(0));
        // A newer run while the accepted one still sends fresh frames is a recording: a peer
        // runs one run at a time (a real restart is learnt one send interval after the old
        // run's last frame).
        let teach = if accepted {
            (answers || known_link) && !restarting
        } else {
            // A frame that echoes a challenge of an earlier run of ours (neither none, nor
            // this run's current or last) was sent before we restarted. A run that is not
            // newer than the accepted one and heard an earlier run of ours is a recording,
            // even while the core holds the accepted run dead: a restart of the peer after a
            // lost statedir began after that run, so it never heard our earlier runs (SIM
            // seed 337837: frames of the peer's run before last, replayed, taught their old
            // challenge once its run was held dead, and the live peer stopped hearing us).
            let earlier_echo = session.echo != 0 && !answers;
            // Nor does a run we accepted once and saw replaced (SIM seed 841592: replays of
            // the peer's run before its restart, which had answered our previous challenge,
            // taught it once the restarted run was held dead).
            let retired = self.retired.contains(&Some((incarnation, session.run)));
            !retired && ((newer && !self.peer_recent) || (!self.peer_alive && !earlier_echo))
        };
        if teach && session.challenge != 0 {
            self.echo = session.challenge;
        }
        if !fresh {
            let handshake = session.echo == 0 || session.echo == self.challenge_prev;
            return Err(if handshake { RxError::Unconfirmed } else { RxError::OldRun });
        }
        self.own_went_back = session.flags & FLAG_YOUR_INCARNATION_WENT_BACK != 0;
        if accepted {
            return Ok(Admitted { lost, ..Admitted::default() });
        }
        // INVARIANT: not the accepted run, so the candidate holds it (set above).
        let new = self.candidate.take().expect("the candidate holds the frame's run");
        self.accepted_max = Some(self.accepted_max.map_or(incarnation, |m| m.max(incarnation)));
        let mut admitted = Admitted::default();
        match self.accepted.replace(new) {
            Some(old) => {
                self.retired.rotate_right(1);
                self.retired[0] = Some((old.incarnation, old.run));
                admitted.restarted = true;
                admitted.resynced = new.incarnation <= old.incarnation;
                self.resynced = admitted.resynced;
                self.rechallenge();
            }
            None => self.resynced = false,
        }
        Ok(admitted)
    }

    #[cfg(feature = "sim")]
    fn skip_freshness(&self) -> bool {
        self.sim_skip_freshness
    }

    #[cfg(not(feature = "sim"))]
    fn skip_freshness(&self) -> bool {
        false
    }

    /// Moves to the next challenge: what the peer sent before it hears it no longer counts.
    fn rechallenge(&mut self) {
        self.challenge_prev = self.challenge;
        self.challenge = self.challenge.wrapping_add(CHALLENGE_STEP).max(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer side: its handshake and its next seq.
    struct Side {
        hs: Handshake,
        inc: u64,
        seq: u64,
    }

    impl Side {
        fn new(inc: u64, run: u32, challenge: u32) -> Side {
            Side { hs: Handshake::new(run, challenge), inc, seq: 0 }
        }

        /// The next frame this side sends: (incarnation, seq, session).
        fn frame(&mut self) -> (u64, u64, Session) {
            self.seq += 1;
            (self.inc, self.seq, self.hs.outgoing())
        }
    }

    fn deliver(to: &mut Side, f: (u64, u64, Session)) -> Result<Admitted, RxError> {
        to.hs.admit(0, f.0, f.1, &f.2)
    }

    /// Runs frames both ways until both accept each other; returns the frames it took.
    fn handshake(a: &mut Side, b: &mut Side) -> usize {
        for round in 1..10 {
            let (fa, fb) = (a.frame(), b.frame());
            let ok_b = deliver(b, fa).is_ok();
            let ok_a = deliver(a, fb).is_ok();
            if ok_a && ok_b {
                return round;
            }
        }
        panic!("no handshake in 10 rounds");
    }

    #[test]
    fn two_fresh_nodes_agree_within_two_frames_each() {
        let (mut a, mut b) = (Side::new(10, 111, 1000), Side::new(20, 222, 2000));
        assert!(handshake(&mut a, &mut b) <= 2);
        assert_eq!(a.hs.peer_incarnation(), Some(20));
        assert_eq!(b.hs.peer_incarnation(), Some(10));
    }

    #[test]
    fn frames_recorded_before_a_restart_count_as_nothing() {
        let (mut a, mut b) = (Side::new(10, 111, 1000), Side::new(20, 222, 2000));
        handshake(&mut a, &mut b);
        let recorded: Vec<_> = (0..5).map(|_| a.frame()).collect();
        // b restarts (new run, new challenge); a is dead: only the recording arrives.
        let mut b = Side::new(21, 333, 3000);
        for f in recorded {
            assert_eq!(deliver(&mut b, f), Err(RxError::OldRun));
        }
        assert_eq!(b.hs.peer_incarnation(), None);
    }

    #[test]
    fn a_replayed_frame_of_the_current_run_is_a_replay() {
        let (mut a, mut b) = (Side::new(10, 111, 1000), Side::new(20, 222, 2000));
        handshake(&mut a, &mut b);
        let f = a.frame();
        assert!(deliver(&mut b, f).is_ok());
        assert_eq!(deliver(&mut b, f), Err(RxError::Replay));
    }

    #[test]
    fn a_peer_restart_is_accepted_and_its_old_run_is_then_refused() {
        let (mut a, mut b) = (Side::new(10, 111, 1000), Side::new(20, 222, 2000));
        handshake(&mut a, &mut b);
        let old: Vec<_> = (0..3).map(|_| a.frame()).collect();
        let mut a2 = Side::new(11, 444, 4000);
        handshake(&mut a2, &mut b);
        assert_eq!(b.hs.peer_incarnation(), Some(11));
        // The frames of the replaced run echo b's previous challenge: never accepted again.
        for f in old {
            assert!(deliver(&mut b, f).is_err());
        }
        assert_eq!(b.hs.peer_incarnation(), Some(11));
    }

    #[test]
    fn an_incarnation_that_went_back_is_resynchronised_and_told() {
        let (mut a, mut b) = (Side::new(500, 111, 1000), Side::new(20, 222, 2000));
        handshake(&mut a, &mut b);
        // a's statedir is lost: its incarnation starts again lower.
        let mut a2 = Side::new(3, 555, 5000);
        let mut resynced = false;
        for _ in 0..5 {
            let f = a2.frame();
            if let Ok(admitted) = deliver(&mut b, f) {
                resynced |= admitted.resynced;
            }
            let f = b.frame();
            let _ = deliver(&mut a2, f);
        }
        assert!(resynced);
        assert_eq!(b.hs.peer_incarnation(), Some(3));
        assert!(a2.hs.own_incarnation_went_back(), "b tells a2 its incarnation went back");
        assert!(!b.hs.own_incarnation_went_back());
    }

    /// Frames of the accepted run recorded before this node restarted, replayed on a link
    /// that has carried nothing of that run since: the window there is empty, so they pass
    /// it, but only a frame that answered a challenge of this run makes a link known. Two of them in order once taught the
    /// old challenge, which b then echoed: a, alive and heard both ways, stopped hearing b
    /// (SIM seed 8008, issue 22; under `fence CMD` a then fenced its healthy peer).
    #[test]
    fn replayed_frames_on_a_link_without_a_fresh_one_teach_nothing() {
        let (mut a, mut b) = (Side::new(10, 111, 1000), Side::new(20, 222, 2000));
        handshake(&mut a, &mut b);
        let recorded: Vec<_> = (0..3).map(|_| a.frame()).collect();
        // b restarts; a answers its new challenge on link 0 (and moves its own on, which b
        // learns from a's next frame).
        let mut b = Side::new(21, 333, 3000);
        handshake(&mut a, &mut b);
        let f = a.frame();
        assert!(deliver(&mut b, f).is_ok());
        let echo = b.hs.outgoing().echo;
        assert_eq!(echo, a.hs.outgoing().challenge);
        for f in recorded {
            assert_eq!(b.hs.admit(1, f.0, f.1, &f.2), Err(RxError::OldRun));
            assert_eq!(b.hs.outgoing().echo, echo, "a recording taught its challenge");
        }
        let f = a.frame();
        assert!(deliver(&mut b, f).is_ok(), "a still hears b");
    }

    /// Frames of the peer's run 10, recorded while they answered b, then the peer's next run
    /// (11) accepted by b (which restarted meanwhile when `b_restarts`) and held dead by b's
    /// core. Returns b, the recording, and what b echoes (run 11's challenge).
    fn replay_after_the_next_run_died(b_restarts: bool) -> (Side, Vec<(u64, u64, Session)>, u32) {
        let (mut a, mut b) = (Side::new(10, 111, 1000), Side::new(20, 222, 2000));
        handshake(&mut a, &mut b);
        let recorded: Vec<_> = (0..3).map(|_| a.frame()).collect();
        if b_restarts {
            b = Side::new(21, 333, 3000);
        }
        let mut a = Side::new(11, 444, 4000);
        handshake(&mut a, &mut b);
        let echo = b.hs.outgoing().echo;
        assert_eq!(echo, a.hs.outgoing().challenge);
        b.hs.set_peer_alive(false, false);
        (b, recorded, echo)
    }

    /// Run 10's frames echo a challenge of an earlier run of b: a recording, which teaches
    /// nothing (SIM seed 337837: b echoed the old challenge, the live peer stopped hearing it,
    /// and both fenced each other).
    #[test]
    fn an_older_run_that_heard_an_earlier_run_of_ours_teaches_nothing_when_ours_is_dead() {
        let (mut b, recorded, echo) = replay_after_the_next_run_died(true);
        for f in recorded {
            assert_eq!(b.hs.admit(1, f.0, f.1, &f.2), Err(RxError::OldRun));
            assert_eq!(b.hs.outgoing().echo, echo, "a recording taught its challenge");
        }
        // A restart of the peer after a lost statedir (10 again, a new run) still teaches.
        let mut again = Side::new(10, 555, 5000);
        assert!(deliver(&mut b, again.frame()).is_err());
        assert_eq!(b.hs.outgoing().echo, 5000, "a new run of the dead peer is heard");
    }

    /// Run 10's frames answered b's previous challenge, but b accepted run 10 once and saw it
    /// replaced: a peer runs one run at a time, so they teach nothing (SIM seed 841592).
    #[test]
    fn a_replaced_run_teaches_nothing_when_the_new_one_is_dead() {
        let (mut b, recorded, echo) = replay_after_the_next_run_died(false);
        for f in recorded {
            assert!(b.hs.admit(1, f.0, f.1, &f.2).is_err());
            assert_eq!(b.hs.outgoing().echo, echo, "the replaced run taught its challenge");
        }
    }

    /// A recording of an old run with a higher incarnation (before the peer's statedir was
    /// lost) arrives while the live run seems quiet (we hung) and teaches its challenge; the
    /// live run then answers fresh on: two such frames on one link refute the recording and
    /// we echo the live run again (SIM seed 645244: the live peer stayed deaf to us).
    #[test]
    fn a_recording_of_a_higher_run_is_refuted_by_the_live_run_answering() {
        let (mut a, mut b) = (Side::new(3, 111, 1000), Side::new(20, 222, 2000));
        handshake(&mut a, &mut b);
        let mut old = Side::new(1001, 999, 9000);
        b.hs.set_peer_alive(true, false);
        assert!(deliver(&mut b, old.frame()).is_err());
        assert_eq!(b.hs.outgoing().echo, 9000, "quiet live run: the recording may be a restart");
        b.hs.set_peer_alive(true, true);
        assert!(deliver(&mut b, a.frame()).is_ok(), "a still echoes b's challenge: fresh");
        assert_eq!(b.hs.outgoing().echo, 9000, "one frame might be in flight from before");
        assert!(deliver(&mut b, a.frame()).is_ok());
        assert_eq!(b.hs.outgoing().echo, 1000, "the live run answered twice: refuted");
        // The recording goes on; while the live run is recent it teaches nothing.
        assert!(deliver(&mut b, old.frame()).is_err());
        assert_eq!(b.hs.outgoing().echo, 1000);
        assert_eq!(b.hs.peer_incarnation(), Some(3));
    }

    #[test]
    fn old_runs_replayed_while_the_peer_lives_teach_nothing() {
        let (mut a, mut b) = (Side::new(10, 111, 1000), Side::new(20, 222, 2000));
        handshake(&mut a, &mut b);
        let echo = b.hs.outgoing().echo;
        // A recording of an older run of a (lower incarnation) arrives while a lives.
        let mut old = Side::new(9, 999, 9000);
        b.hs.set_peer_alive(true, true);
        assert!(deliver(&mut b, old.frame()).is_err());
        assert_eq!(b.hs.outgoing().echo, echo, "b still echoes a's live run");
        // Once the core holds a dead, the other run may be a restart after a lost statedir.
        b.hs.set_peer_alive(false, false);
        assert!(deliver(&mut b, old.frame()).is_err());
        assert_eq!(b.hs.outgoing().echo, 9000);
        // A newer incarnation teaches once the accepted run went quiet: a plain restart (a
        // peer runs one run at a time; while the old one still sends, it is a recording).
        b.hs.set_peer_alive(true, true);
        let mut newer = Side::new(11, 444, 4000);
        assert!(deliver(&mut b, newer.frame()).is_err());
        assert_eq!(b.hs.outgoing().echo, 9000, "the old run still sends: no restart");
        b.hs.set_peer_alive(true, false);
        assert!(deliver(&mut b, newer.frame()).is_err());
        assert_eq!(b.hs.outgoing().echo, 4000);
    }

    #[test]
    fn an_old_frame_of_the_accepted_run_on_a_quiet_link_teaches_nothing() {
        let (mut a, mut b) = (Side::new(10, 111, 1000), Side::new(20, 222, 2000));
        // A frame of a's run on link 3 that b never received (a cut link), recorded early.
        let early = a.frame();
        handshake(&mut a, &mut b);
        let echo = b.hs.outgoing().echo;
        // a's challenge moves on (it accepted a new run of b's); b learns it from a fresh frame.
        a.hs.rechallenge();
        let f = a.frame();
        assert!(deliver(&mut b, f).is_ok());
        assert_ne!(b.hs.outgoing().echo, echo);
        let current = b.hs.outgoing().echo;
        // The early frame, replayed on the link whose window is empty, passes the window but
        // is not fresh: it must not bring back the old challenge.
        assert!(b.hs.admit(3, early.0, early.1, &early.2).is_err());
        assert_eq!(b.hs.outgoing().echo, current);
    }

    #[test]
    fn two_nodes_whose_challenges_moved_on_at_once_learn_them_again() {
        let (mut a, mut b) = (Side::new(10, 111, 1000), Side::new(20, 222, 2000));
        handshake(&mut a, &mut b);
        a.hs.rechallenge();
        b.hs.rechallenge();
        // Each one's frames now echo the other's previous challenge: not fresh, but newer
        // than what came before on their link, so they teach; the next ones are fresh.
        assert!(handshake(&mut a, &mut b) <= 3);
    }

    #[test]
    fn challenges_never_repeat_within_a_run() {
        let mut hs = Handshake::new(1, 1);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            assert!(seen.insert(hs.challenge));
            assert_ne!(hs.challenge, 0);
            hs.rechallenge();
        }
    }

    #[test]
    fn zero_run_and_challenge_are_never_used() {
        let hs = Handshake::new(0, 0);
        assert_eq!(hs.outgoing(), Session { run: 1, challenge: 1, echo: 0, flags: 0 });
    }
}
