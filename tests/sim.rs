//! The deterministic simulator (issue 4): two failover cores (`hapair::core::Groups`, 1 to 8
//! resource groups each, SPEC §7.1) on three hostile links, checked against SPEC §3's
//! guarantees, per group, on every step of thousands of seeded schedules.
//!
//! `cargo test --test sim` runs `SIM_SEEDS` seeds (default 2000) of 60 simulated seconds from
//! `SIM_FIRST_SEED` (default 0); `SIM_SEED=S cargo test --test sim -- --nocapture` replays
//! one seed with its event trace. `SIM_KEEP_GOING=1` runs every seed and lists the ones that
//! break a check at the end (a long run that should name all it finds).

#[path = "sim/world.rs"]
mod world;

use std::time::Instant as WallClock;

use hapair::core::{FenceMode, Mutation};
use world::{Config, run_seed};

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// Replays one seed with its trace; panics with the trace when it fails.
fn replay(seed: u64) {
    let (result, world) = run_seed(Config::random(seed), true);
    println!("{:?}", world.cfg);
    println!("{}", world.trace.as_deref().unwrap_or(""));
    if let Err(violation) = result {
        panic!("seed {seed}: {violation}");
    }
    println!("seed {seed}: all checks hold ({} steps)", world.steps);
}

#[test]
#[allow(clippy::disallowed_methods)] // wall time for the seeds/s figure, not a core clock read
fn every_seed_keeps_the_guarantees() {
    if let Some(seed) = env_u64("SIM_SEED") {
        return replay(seed);
    }
    let seeds = env_u64("SIM_SEEDS").unwrap_or(2000);
    let first = env_u64("SIM_FIRST_SEED").unwrap_or(0);
    let started = WallClock::now();
    let mut steps = 0;
    let mut coverage = world::Coverage::default();
    let mut digest = Digest::from_env();
    let keep_going = std::env::var_os("SIM_KEEP_GOING").is_some();
    let mut broken = Vec::new();
    for seed in first..first + seeds {
        let traced = digest.as_ref().is_some_and(|d| seed < d.traced_below);
        let (result, world) = run_seed(Config::random(seed), traced);
        if let Some(d) = digest.as_mut() {
            d.add(seed, &world);
        }
        steps += world.steps;
        coverage.add(world.coverage);
        if let Err(violation) = result {
            if !keep_going {
                panic!(
                    "seed {seed}: {violation}\nreplay: SIM_SEED={seed} cargo test --test sim -- \
                     --nocapture every_seed"
                );
            }
            println!("seed {seed}: {violation}");
            broken.push(seed);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{seeds} seeds x 60 s simulated, {steps} steps, {secs:.1} s: {:.0} seeds/s",
        seeds as f64 / secs
    );
    println!("{coverage:?}");
    // The seeds must exercise what the checks are about, or passing them proves little.
    let l1_watches = coverage.l1_checked + coverage.l1_skipped;
    println!(
        "L1: {} deaths of the active node with a healthy survivor, {} judged, {} excused by \
         the world ({} the dead node back first), {} with no healthy survivor; L2: {} stops \
         judged, {} with no healthy connected peer",
        l1_watches,
        coverage.l1_checked,
        coverage.l1_skipped,
        coverage.l1_skipped_back,
        coverage.l1_not_applicable,
        coverage.l2_checked,
        coverage.l2_not_applicable
    );
    println!(
        "groups: {} seeds of several, {} of them active/active; {} survivors kept their groups \
         through a death, {} stops of those judged; {} move/takeover GROUP done, {} refused; \
         {} mutual kills after a hang (a core limitation)",
        coverage.multi_group_seeds,
        coverage.active_active,
        coverage.keeps_watched,
        coverage.keep_stops_judged,
        coverage.group_admin - coverage.group_admin_refused,
        coverage.group_admin_refused,
        coverage.mutual_kills_after_hang
    );
    println!(
        "per-link timing: {} seeds, {} deaths of a peer judged against every link's deadtime",
        coverage.per_link_seeds, coverage.per_link_deaths
    );
    assert!(broken.is_empty(), "{} seeds break a check: {broken:?}", broken.len());
    if seeds >= 1000 {
        assert!(coverage.failovers > 0 && coverage.handovers > 0 && coverage.fences > 0);
        assert!(coverage.split_brains > 0 && coverage.l2_checked > 0);
        assert!(coverage.adoptions > 0, "daemon restarts must exercise adoption");
        // Nearly half the L1 watches are judged, not excused: 45.5 % over seeds 0 to 100000
        // (65295 of 143366), 45.0 % over the first 2000 (1248 of 2775 since the ping judge
        // hears every wake of its loop, 1253 of 2780 before: a floor of 45 % had no room).
        assert!(
            coverage.l1_checked * 100 >= l1_watches * 44,
            "only {} of {l1_watches} L1 watches judged",
            coverage.l1_checked
        );
        // The adversary of SPEC §7.2 must have been at work, and refused.
        assert!(coverage.replays_dropped > 0 && coverage.foreign_dropped > 0);
        assert!(coverage.resyncs > 0, "lost statedirs must exercise the resync");
        // Peers without an armed watchdog under fence watchdog died, and were not fenced.
        assert!(coverage.unfenceable_deaths > 0, "unarmed peers must die in some seeds");
        // Nodes cut off from their peer and every ping node had to release (fence watchdog).
        assert!(coverage.s2_windows > 0 && coverage.isolations_judged > 0);
        // Fences reset live machines, which rebooted unclean and waited; fences waited their
        // delay; fenced nodes were heard again; operators vouched for dead peers.
        assert!(coverage.fence_kills > 0 && coverage.unclean_boots > 0);
        assert!(coverage.fence_delays > 0 && coverage.reheard_after_kill > 0);
        assert!(coverage.forced_takeovers > 0);
        // Several groups (SPEC §7.1): seeds that ran active/active, survivors that kept their
        // own groups through their peer's death and were judged at a stop, per-group admin
        // commands done and refused.
        assert!(coverage.multi_group_seeds * 3 >= seeds && coverage.active_active > 0);
        assert!(coverage.keeps_watched > 0 && coverage.keep_stops_judged > 0);
        assert!(coverage.group_admin > 0 && coverage.group_admin_refused > 0);
        // Links at their own pace (SPEC §7.7): a quarter of the seeds, peers found dead there.
        assert!(coverage.per_link_seeds * 6 >= seeds && coverage.per_link_deaths > 0);
    }
}

/// `SIM_DIGEST=FILE`: one line per seed (steps, notifications, role changes and a hash of
/// them, and for seeds below `SIM_DIGEST_TRACE` a hash of the whole trace), so that two
/// builds of the core can be shown to behave alike seed by seed (`diff` the files).
struct Digest {
    out: std::io::BufWriter<std::fs::File>,
    traced_below: u64,
}

impl Digest {
    fn from_env() -> Option<Digest> {
        let path = std::env::var("SIM_DIGEST").ok()?;
        let file = std::fs::File::create(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let traced_below = env_u64("SIM_DIGEST_TRACE").unwrap_or(0);
        Some(Digest { out: std::io::BufWriter::new(file), traced_below })
    }

    fn add(&mut self, seed: u64, world: &world::World) {
        use std::hash::{DefaultHasher, Hash, Hasher};
        use std::io::Write;
        // `DefaultHasher::new()` is SipHash with fixed keys: the same text hashes alike in
        // every run of one toolchain.
        let hash = |text: &str| {
            let mut h = DefaultHasher::new();
            text.hash(&mut h);
            h.finish()
        };
        let changes = hash(&format!("{:?}", world.changes));
        let trace = world.trace.as_deref().map_or(0, hash);
        let line = format!(
            "{seed} steps {} notifies {} changes {} {changes:016x} trace {trace:016x}",
            world.steps,
            world.notifies,
            world.changes.len()
        );
        writeln!(self.out, "{line}").expect("digest file");
    }
}

/// Finds the first seed below `seeds` whose run with `mutation` (and `fence`, when given)
/// breaks the guarantee `guarantee` names; prints it.
fn catches(mutation: Mutation, fence: Option<FenceMode>, guarantee: &str, seeds: u64) {
    let found = (0..seeds).find_map(|seed| {
        let mut cfg = Config::random(seed);
        cfg.mutation = mutation;
        if let Some(fence) = fence {
            cfg.fence = fence;
            if fence == FenceMode::Watchdog && cfg.watchdog.is_none() {
                cfg.watchdog = Some(hapair::core::time::Duration::from_secs(2));
            }
        }
        let (result, _) = run_seed(cfg, false);
        result.err().filter(|v| v.starts_with(guarantee)).map(|v| (seed, v))
    });
    let (seed, violation) = found.unwrap_or_else(|| {
        panic!("no seed below {seeds} shows {mutation:?} breaking {guarantee}: the oracle is blind")
    });
    println!("{mutation:?} ({fence:?}) caught: seed {seed}: {violation}");
}

/// Seeds that once broke a check, fixed since: each keeps every guarantee.
/// - 817887: the world told its ping judge only of its core's timer wakes, not of the
///   resource results between them (a false stall: the isolated holder released 40 ms late).
/// - 828136, 904579: a daemon restarted holding, its frames cut one way, petted on in `Init`
///   until `initdead` (twice the longest link deadtime) though its peer's frames, not fresh,
///   said it was taking over: the peer's wait ran out first.
const FIXED_SEEDS: [u64; 3] = [817_887, 828_136, 904_579];

#[test]
fn fixed_seeds_keep_the_guarantees() {
    for seed in FIXED_SEEDS {
        let (result, _) = run_seed(Config::random(seed), false);
        assert_eq!(result, Ok(()), "seed {seed}");
    }
}

/// S2 under fence watchdog: a holder in `Init` (what its probes found), deaf to its peer's
/// unfresh claims of a takeover, keeps petting past the peer's wait (SIM seeds 828136,
/// 904579, with the fix undone by the mutation).
#[test]
fn oracle_catches_an_init_holder_deaf_to_unfresh_takeovers() {
    for seed in [828_136, 904_579] {
        let mut cfg = Config::random(seed);
        cfg.mutation = Mutation::NoUnfreshSelfFence;
        let (result, _) = run_seed(cfg, false);
        let violation = result.expect_err("the mutation must break S2");
        assert!(violation.starts_with("S2"), "seed {seed}: {violation}");
    }
}

/// SPEC §7.7: a peer judged by its fastest link's deadtime is found dead while a slower link
/// still delivers (a working slow link is proof of life).
#[test]
fn oracle_catches_a_peer_judged_by_the_fastest_link() {
    catches(Mutation::FastestLinkDeadtime, None, "liveness", 3000);
}

/// S2 with a fence command: a takeover without fencing.
#[test]
fn oracle_catches_a_takeover_without_fencing() {
    catches(Mutation::SkipFenceWait, Some(FenceMode::External), "S2", 3000);
}

/// S2 with fence watchdog: a takeover without the wait for the peer's watchdog (the old
/// oracle excused every partition and let 50,000 such seeds pass).
#[test]
fn oracle_catches_a_takeover_without_the_watchdog_wait() {
    catches(Mutation::SkipFenceWait, Some(FenceMode::Watchdog), "S2", 3000);
}

/// S2 with fence watchdog, outside the residual case: an isolated holder that keeps the
/// group (no self-fence).
#[test]
fn oracle_catches_an_isolated_holder_that_keeps_the_group() {
    catches(Mutation::NoSelfFence, Some(FenceMode::Watchdog), "S2", 5000);
}

/// S1: the non-home node keeps the group when both run it over a working link.
#[test]
fn oracle_catches_a_split_brain_left_standing() {
    catches(Mutation::KeepSplitBrain, None, "S1", 3000);
}

/// L1: a survivor that never takes the group from its dead peer.
#[test]
fn oracle_catches_a_survivor_that_never_takes_over() {
    catches(Mutation::NeverTakeOver, None, "L1", 3000);
}

/// L2: an active node that hands the group to a healthy connected peer for no policy.
#[test]
fn oracle_catches_a_handover_without_a_policy() {
    catches(Mutation::HandOverAtWill, None, "L2", 3000);
}

/// No mutual kill (SPEC §7.4): every node fences the moment it enters `Fencing` (no
/// `fence_delay`), and a partition of two nodes that both hold nothing resets both.
#[test]
fn oracle_catches_a_fence_race_without_fence_delay() {
    catches(Mutation::NoFenceDelay, Some(FenceMode::External), "fences: both nodes", 5000);
}

/// No mutual kill with several groups (SPEC §7.1, §7.4): every group fences in its own order,
/// not the first group's (`core::groups`), and two nodes that each run a group both fence
/// after one slot of `fence_delay`.
#[test]
fn oracle_catches_groups_that_fence_in_their_own_order() {
    catches(Mutation::OwnFenceOrder, Some(FenceMode::External), "fences: both nodes", 5000);
}

/// No fence loop (SPEC §7.4): a node back from an unclean stop fences its peer before it
/// could have heard it.
#[test]
fn oracle_catches_a_fence_after_an_unclean_boot() {
    catches(Mutation::FenceAfterUncleanBoot, Some(FenceMode::External), "fence loop", 5000);
}

/// A fenced node is heard again: a fence's success taken for the run heard last (the next
/// run, when the reboot came back before the agent returned) leaves the survivor deaf to its
/// peer for good (issue 22's lab finding).
#[test]
fn oracle_catches_a_fenced_node_never_heard_again() {
    catches(Mutation::FenceTheRunHeardLast, Some(FenceMode::External), "hearing", 5000);
}

/// A quiet scripted world with fences that kill: `fence_delay` = deadtime (500 ms), a fence
/// reaches the peer's device 100 ms after it starts, which resets the peer 50 ms later, and
/// returns at 500 ms; a reset machine's daemon starts 2 s later. `knob` changes the rest.
fn fencing_world(secs: u64, knob: impl FnOnce(&mut Config)) -> world::World {
    use hapair::core::time::Duration;
    let mut cfg = Config::scripted(FenceMode::External);
    cfg.duration = Duration::from_secs(secs);
    cfg.fence_delay = Duration::from_millis(500);
    cfg.fence_commit_ms = (100, 100);
    cfg.fence_act_ms = (50, 50);
    knob(&mut cfg);
    world::World::new(cfg, true)
}

/// Runs `w`, prints its role changes as a timeline, and returns them as `(ms, node, role,
/// reason)` (of every group: `w.changes` names them), failing with the trace when a check
/// broke.
fn timeline(w: &mut world::World, title: &str) -> Vec<(u64, usize, String)> {
    let result = w.run();
    assert_eq!(result, Ok(()), "{}", w.trace.as_deref().unwrap_or(""));
    println!("{title}");
    for c in &w.changes {
        let (at, node, group) = (c.at_ms, c.node, c.group);
        println!("  {at:>6} ms  node {node} group {group}: {:?} ({:?})", c.role, c.reason);
    }
    w.changes.iter().map(|c| (c.at_ms, c.node, format!("{:?} ({:?})", c.role, c.reason))).collect()
}

/// Issue 22, scenario 2 (and 3), in the simulator: node 0 (home) runs the group; every medium
/// fails at 2 s while both nodes live. Node 1 does not own the group: it waits `fence_delay`,
/// fences node 0 (reset at 3.07 s) and takes over; node 0 holds on until it is reset and never
/// fences. Back at 5.07 s after an unclean stop, node 0 waits for its peer and fences nobody;
/// when the links come back at 12 s it hears node 1 and stays standby.
#[test]
fn a_partition_of_two_live_nodes_ends_in_one_fence_and_the_fenced_node_rejoins() {
    use hapair::core::{Reason, Role};
    use world::Happening as H;
    let mut w = fencing_world(16, |_| {});
    w.at(2000, H::Partition);
    w.at(12_000, H::Reconnect);
    let rows = timeline(&mut w, "partition of two live nodes, healed at 12 s");
    assert_eq!(w.coverage.fence_kills, 1, "one fence");
    let fencing: Vec<_> = w.changes.iter().filter(|c| c.role == Role::Fencing).collect();
    assert_eq!(fencing.len(), 1, "{rows:?}");
    assert_eq!((fencing[0].node, fencing[0].at_ms), (1, 2420));
    let taken = w.changes.iter().find(|c| c.node == 1 && c.role == Role::Starting);
    assert_eq!(taken.map(|c| (c.at_ms, c.reason)), Some((3420, Reason::Fenced)));
    let core = |n: usize| w.nodes[n].core.as_ref().expect("runs");
    assert_eq!((core(0).role(), core(1).role()), (Role::Standby, Role::Active));
    assert!(!core(0).waits_for_peer() && core(0).peer().alive && core(1).peer().alive);
    // While partitioned, node 0 (back at 5.07 s) waited and did not fence.
    assert!(w.changes.iter().all(|c| c.node == 1 || c.role != Role::Fencing));
}

/// The same partition, and node 0 comes back still partitioned: it waits for its peer for
/// good (no fence, no takeover) until the operator vouches that the peer is down.
#[test]
fn a_fenced_node_back_in_a_partition_waits_until_the_operator_vouches() {
    use hapair::core::{Admin, Reason, Role};
    use world::Happening as H;
    let mut w = fencing_world(40, |_| {});
    w.at(2000, H::Partition);
    let rows = timeline(&mut w, "partition of two live nodes, not healed");
    assert_eq!(w.coverage.fence_kills, 1);
    let node0 = w.nodes[0].core.as_ref().expect("node 0 runs");
    assert!(node0.waits_for_peer(), "{rows:?}");
    assert_eq!(node0.role(), Role::Standby);
    assert!(rows.iter().filter(|r| r.1 == 0).all(|r| !r.2.starts_with("Fencing")));
    // Node 1 crashes for good; the operator, who knows, vouches for it on node 0.
    let mut w = fencing_world(40, |_| {});
    w.at(2000, H::Partition);
    w.at(20_000, H::Crash(1, hapair::core::time::Duration::from_secs(3600)));
    w.at(25_000, H::Admin(0, Admin::TakeoverForce));
    timeline(&mut w, "... node 1 dies, takeover --force on node 0");
    let taken = w.changes.iter().find(|c| c.node == 0 && c.at_ms >= 25_000);
    assert_eq!(
        taken.map(|c| (c.at_ms, c.role, c.reason)),
        Some((25_000, Role::Starting, Reason::Forced))
    );
    assert_eq!(w.coverage.fence_kills, 1, "no fence for the vouched peer");
}

/// Issue 22, scenario 4, in the simulator: both nodes start in a partition (clean, first
/// starts), together or 300 ms apart: after initdead the home node fences at once, the
/// other waits `fence_delay` and is reset before it fences. One fence, one owner; the reset
/// node waits for its peer and rejoins when the partition heals.
#[test]
fn a_cold_start_in_a_partition_fences_once() {
    use hapair::core::time::Duration;
    use hapair::core::{Reason, Role};
    for apart in [0, 300] {
        let mut w = fencing_world(20, |c| {
            c.second_boot = Duration::from_millis(apart);
            c.start_partitioned = Some(Duration::from_secs(15));
        });
        let rows = timeline(&mut w, &format!("cold start in a partition, {apart} ms apart"));
        assert_eq!(w.coverage.fence_kills, 1, "{rows:?}");
        let owner = w.changes.iter().find(|c| c.role == Role::Starting);
        assert_eq!(owner.map(|c| (c.node, c.at_ms, c.reason)), Some((0, 1500, Reason::Fenced)));
        let core = |n: usize| w.nodes[n].core.as_ref().expect("runs");
        assert_eq!((core(0).role(), core(1).role()), (Role::Active, Role::Standby));
    }
    // Without the delay both fence at once: both reset (the oracle's mutual kill).
    let mut w = fencing_world(20, |c| {
        c.fence_delay = Duration::ZERO;
        c.start_partitioned = Some(Duration::from_secs(15));
    });
    let err = w.run().expect_err("two fences at once");
    assert!(err.starts_with("fences: both nodes reset"), "{err}");
}

/// Finds the first seed below `seeds` whose run, with `knob` applied, breaks a guarantee.
fn first_violation(seeds: u64, knob: impl Fn(&mut Config)) -> Option<(u64, String)> {
    (0..seeds).find_map(|seed| {
        let mut cfg = Config::random(seed);
        knob(&mut cfg);
        let (result, _) = run_seed(cfg, false);
        result.err().map(|v| (seed, v))
    })
}

/// The adversary's other pair bites when the frame key is not bound to the pair: with the
/// knob that signs its frames with this pair's key (frames before version 2), some seed
/// breaks a guarantee.
#[test]
fn simulator_catches_another_pair_without_a_pair_bound_key() {
    let found = first_violation(3000, |c| c.foreign_same_key = true);
    let (seed, violation) = found.expect("the other pair's frames must break a guarantee");
    println!("another pair's frames accepted: seed {seed}: {violation}");
}

/// The adversary's replays bite when receivers trust every frame (no freshness handshake).
#[test]
fn simulator_catches_replays_without_the_freshness_handshake() {
    let found = first_violation(3000, |c| c.skip_freshness = true);
    let (seed, violation) = found.expect("replayed frames must break a guarantee");
    println!("replays trusted: seed {seed}: {violation}");
}

/// A quiet scripted world with the adversary's recorder on.
fn adversary_world(fence: hapair::core::FenceMode, secs: u64) -> world::World {
    let mut cfg = Config::scripted(fence);
    cfg.adversary = true;
    cfg.duration = hapair::core::time::Duration::from_secs(secs);
    world::World::new(cfg, true)
}

/// Node 0 (home) runs the group; at 8 s it dies for good and node 1's daemon restarts (a
/// clean restart: a kill -9 would make it wait for its peer, SPEC §7.4); then the adversary
/// plays node 0's recorded frames (about 8 s of them) back at node 1. Node 1 must take over
/// within initdead (1 s) + fence (0.5 s) + two starts (0.2 s) of its restart, and count the
/// replays. With the knob that trusts every frame (as before frame version 2) the same script
/// leaves node 1 standby while the recording plays, believing a dead peer alive: the scenario
/// can fail.
#[test]
fn replayed_frames_after_a_restart_keep_no_dead_peer_alive() {
    use hapair::core::{FenceMode, Role};
    use world::Happening as H;
    for trust_all in [false, true] {
        let mut w = adversary_world(FenceMode::External, 20);
        w.cfg.skip_freshness = trust_all;
        let day = hapair::core::time::Duration::from_secs(3600);
        w.at(8000, H::Crash(0, day));
        w.at(8000, H::CleanRestart(1));
        w.at(8000, H::Replay { to: 1, count: 400, oldest: true });
        let result = w.run();
        assert_eq!(result, Ok(()), "{}", w.trace.as_deref().unwrap_or(""));
        let active = w.changes.iter().find(|c| c.node == 1 && c.role == Role::Active);
        let replays = w.nodes[1].rx.as_ref().map_or(0, |rx| rx.stats().replays);
        println!("trust all {trust_all}: node 1 active at {active:?}, replays dropped {replays}");
        if trust_all {
            assert!(active.is_none_or(|c| c.at_ms > 12_000), "the knob must show the attack");
        } else {
            let at = active.map(|c| c.at_ms);
            assert!(at.is_some_and(|t| t <= 8000 + 1000 + 500 + 200 + 50), "active at {at:?}");
            assert!(replays > 0, "the recorded frames are dropped and counted as replays");
        }
    }
}

/// Node 0 (home, active) crashes for 3 s and comes back with its statedir lost: a lower
/// incarnation. Node 1 fenced it and runs the group; it must hear the returning node 0
/// (resynchronised, shown in both nodes' counters) so that node 0 never fences it back.
#[test]
fn a_lost_statedir_is_resynchronised_never_a_fence_loop() {
    use hapair::core::{FenceMode, Role};
    use world::Happening as H;
    let mut w = adversary_world(FenceMode::External, 15);
    w.at(1900, H::LoseStatedir(0));
    w.at(2000, H::Crash(0, hapair::core::time::Duration::from_secs(3)));
    let result = w.run();
    assert_eq!(result, Ok(()), "{}", w.trace.as_deref().unwrap_or(""));
    let fencing: Vec<_> =
        w.changes.iter().filter(|c| c.role == Role::Fencing).map(|c| (c.at_ms, c.node)).collect();
    assert_eq!(fencing.len(), 1, "one fence, by node 1: {fencing:?}");
    assert_eq!(fencing[0].1, 1);
    let back = w.changes.iter().any(|c| c.node == 0 && c.role == Role::Standby && c.at_ms > 2500);
    assert!(back, "node 0 is back in standby: {:?}", w.changes);
    assert_eq!(w.nodes[1].core.as_ref().map(|c| c.role()), Some(Role::Active));
    let rx1 = w.nodes[1].rx.as_ref().expect("node 1 runs");
    let rx0 = w.nodes[0].rx.as_ref().expect("node 0 runs");
    assert_eq!(rx1.stats().incarnation_resyncs, 1);
    assert!(rx0.own_incarnation_went_back(), "node 0 learns its incarnation went back");
}

/// Another pair with the same authkey talks on the LAN at node 1 the whole time while node 0
/// (home, active) dies at 3 s: node 1 still takes over, and drops every frame of the other
/// pair at the tag. With the knob that signs them with this pair's key (a key not bound to
/// the pair, as before frame version 2) node 1 does not.
#[test]
fn another_pair_with_the_same_authkey_does_not_hide_a_dead_peer() {
    use hapair::core::{FenceMode, Role};
    use world::Happening as H;
    for same_key in [false, true] {
        let mut w = adversary_world(FenceMode::External, 12);
        w.cfg.foreign_same_key = same_key;
        for at in (1000..11_000).step_by(2000) {
            w.at(at, H::Foreign { to: 1 });
        }
        w.at(3000, H::Crash(0, hapair::core::time::Duration::from_secs(3600)));
        let result = w.run();
        let taken = w.changes.iter().any(|c| c.node == 1 && c.role == Role::Active);
        let forged = w.nodes[1].rx.as_ref().map_or(0, |rx| rx.stats().auth_failures);
        println!("same key {same_key}: node 1 took over {taken}, auth failures {forged}");
        if same_key {
            assert!(result.is_err() || !taken, "the knob must show the attack");
        } else {
            assert_eq!(result, Ok(()), "{}", w.trace.as_deref().unwrap_or(""));
            assert!(taken && forged > 0);
        }
    }
}

/// S2 under `fence watchdog` across a stall of the holder (SIM seed 122811): node 0 holds
/// the group, its stops fail from 2 s on (it cannot release), it loses every cable at 3 s,
/// and its daemon hangs at `hang_at` for most of its watchdog timeout, so it wakes after its
/// peer began the fence wait. On waking it must not pet before it hears its peer (it never
/// does here): its watchdog resets it before the peer's wait is over. Each hang start is one
/// world; `mutation` is the code under test.
fn holder_stalls_while_cut_off(hang_at: u64, mutation: Mutation) -> Result<(), String> {
    use hapair::core::time::Duration;
    use world::Happening as H;
    let mut cfg = Config::scripted(FenceMode::Watchdog);
    cfg.duration = Duration::from_secs(14);
    cfg.mutation = mutation;
    let mut w = world::World::new(cfg, false);
    w.at(2000, H::StopFails(0));
    w.at(3000, H::Isolate(0));
    w.at(hang_at, H::Hang(0, Duration::from_millis(1600)));
    w.run()
}

#[test]
fn a_holder_that_stalls_while_cut_off_pets_only_after_hearing_its_peer() {
    let starts = (3000..=3600).step_by(50);
    for at in starts.clone() {
        assert_eq!(holder_stalls_while_cut_off(at, Mutation::None), Ok(()), "hang at {at} ms");
    }
    let caught = starts
        .filter_map(|at| holder_stalls_while_cut_off(at, Mutation::PetAfterStall).err())
        .find(|v| v.starts_with("S2"));
    assert!(
        caught.is_some(),
        "PetAfterStall broke S2 in none of the hang starts: the check is blind"
    );
}

// ----- several groups (SPEC §7.1): scripted active/active scenarios -----

/// The two groups of the active/active scenarios: group 0 at home on node 0, group 1 on
/// node 1, two resources each, no failback.
fn two_homes(cfg: &mut Config) {
    let group = |home| world::GroupCfg { home, auto_failback: false, resources: 2 };
    cfg.groups = vec![group(0), group(1)];
}

/// `fencing_world` with the two groups of `two_homes`.
fn active_active(secs: u64, knob: impl FnOnce(&mut Config)) -> world::World {
    fencing_world(secs, |c| {
        two_homes(c);
        knob(c);
    })
}

/// Group `g`'s role on node `n` at the end of a run.
fn role_of(w: &world::World, n: usize, g: usize) -> hapair::core::Role {
    w.role(n, g).expect("the daemon runs")
}

/// The role changes of group `g` on node `n` from `from_ms` on.
fn changes_of(w: &world::World, n: usize, g: usize, from_ms: u64) -> Vec<world::Change> {
    w.changes
        .iter()
        .filter(|c| c.node == n && c.group == g && c.at_ms >= from_ms)
        .copied()
        .collect()
}

/// (a) Both nodes start together: each home node elects itself for its own group (one
/// keepalive's handshake, then 200 ms of starts), and the pair runs active/active.
#[test]
fn two_groups_start_each_on_its_home() {
    use hapair::core::{Reason, Role};
    let mut w = active_active(3, |_| {});
    timeline(&mut w, "two groups homed on different nodes, cold start");
    for g in 0..2 {
        let home = g;
        let started: Vec<_> =
            w.changes.iter().filter(|c| c.group == g && c.role == Role::Starting).collect();
        assert_eq!(started.len(), 1, "group {g} starts once");
        assert_eq!(
            (started[0].node, started[0].at_ms, started[0].reason),
            (home, 15, Reason::Elected)
        );
        assert_eq!(role_of(&w, home, g), Role::Active);
        assert_eq!(role_of(&w, 1 - home, g), Role::Standby);
    }
    // One frame carries both groups: a keepalive's heartbeats, not two.
    assert!(w.coverage.active_active > 0);
}

/// (b) Node 0 dies: node 1 fences it once (after `fence_delay`: it does not own group 0) and
/// takes group 0 over, and never stops group 1, which it ran all along (`check_keep`).
#[test]
fn a_dead_nodes_group_is_taken_over_without_touching_the_survivors() {
    use hapair::core::time::Duration;
    use hapair::core::{Reason, Role};
    use world::Happening as H;
    let mut w = active_active(12, |_| {});
    w.at(2000, H::Crash(0, Duration::from_secs(3600)));
    timeline(&mut w, "node 0 dies at 2 s");
    let taken = changes_of(&w, 1, 0, 2000);
    let roles: Vec<_> = taken.iter().map(|c| (c.role, c.reason)).collect();
    assert_eq!(
        roles,
        [
            (Role::Fencing, Reason::PeerDead),
            (Role::Starting, Reason::Fenced),
            (Role::Active, Reason::Started)
        ]
    );
    // Deadtime (500 ms) after the last frame heard, fence_delay (500 ms: node 1 does not
    // own group 0), the fence (500 ms), two starts.
    assert_eq!(taken.iter().map(|c| c.at_ms).collect::<Vec<_>>(), [2420, 3420, 3620]);
    assert!(changes_of(&w, 1, 1, 0).iter().all(|c| c.at_ms < 1000), "group 1 untouched");
    assert_eq!((role_of(&w, 1, 0), role_of(&w, 1, 1)), (Role::Active, Role::Active));
    assert!(w.coverage.keeps_watched > 0);
}

/// (c) `move 1` on node 1: group 1 goes to node 0 in a handover (no deadtime), group 0 stays
/// where it runs; it stays there after `online`. A `move` towards a peer in standby is
/// refused and changes nothing.
#[test]
fn move_hands_one_group_over_and_leaves_the_other() {
    use hapair::core::{Admin, Reason, Role};
    use world::Happening as H;
    let mut w = active_active(8, |_| {});
    w.at(2000, H::Admin(1, Admin::Move(1)));
    w.at(4000, H::Admin(1, Admin::Online));
    w.at(5000, H::Admin(1, Admin::Standby));
    w.at(6000, H::Admin(0, Admin::Move(0)));
    timeline(&mut w, "move group 1 at 2 s, online at 4 s; node 1 standby at 5 s, move 0 at 6 s");
    let moved: Vec<_> =
        changes_of(&w, 0, 1, 2000).iter().map(|c| (c.at_ms, c.role, c.reason)).collect();
    // Node 1 stops group 1 (200 ms) and grants it; node 0 starts it on the grant.
    assert_eq!(
        moved[..2],
        [(2205, Role::Starting, Reason::Granted), (2405, Role::Active, Reason::Started)]
    );
    assert!(changes_of(&w, 0, 0, 1000).is_empty(), "group 0 stays on node 0");
    assert_eq!((role_of(&w, 0, 0), role_of(&w, 0, 1)), (Role::Active, Role::Active));
    assert_eq!((role_of(&w, 1, 0), role_of(&w, 1, 1)), (Role::Standby, Role::Standby));
    assert_eq!(w.coverage.group_admin, 2);
    assert_eq!(w.coverage.group_admin_refused, 1, "node 1 in standby cannot take group 0");
}

/// (d) A node-wide `standby` on node 0: every group leaves it (here group 0, the one it
/// runs, in a handover); node 1 runs both, also after `online`.
#[test]
fn standby_hands_every_group_over() {
    use hapair::core::{Admin, Role};
    use world::Happening as H;
    let mut w = active_active(8, |_| {});
    w.at(2000, H::Admin(0, Admin::Takeover));
    w.at(3000, H::Admin(0, Admin::Standby));
    w.at(5000, H::Admin(0, Admin::Online));
    timeline(
        &mut w,
        "takeover on node 0 at 2 s (both groups there), standby at 3 s, online at 5 s",
    );
    assert!(changes_of(&w, 0, 1, 2000).iter().any(|c| c.role == Role::Active), "group 1 came");
    for g in 0..2 {
        let left = changes_of(&w, 0, g, 3000);
        assert!(left.first().is_some_and(|c| c.at_ms == 3000), "group {g} leaves at once");
        assert_eq!((role_of(&w, 0, g), role_of(&w, 1, g)), (Role::Standby, Role::Active));
    }
}

/// (e) Failback per group: group 0 (home node 0) fails back, group 1 (home node 1) does not.
/// Node 0 dies and comes back: group 0 returns to it. Node 1 dies and comes back: group 1
/// stays on node 0.
#[test]
fn failback_is_each_groups_own() {
    use hapair::core::time::Duration;
    use hapair::core::{Reason, Role};
    use world::Happening as H;
    let mut w = active_active(30, |c| c.groups[0].auto_failback = true);
    w.at(2000, H::Crash(0, Duration::from_secs(2)));
    w.at(14_000, H::Crash(1, Duration::from_secs(2)));
    timeline(&mut w, "failback for group 0 only: node 0 dies at 2 s, node 1 at 14 s");
    // Node 0 (back at 6 s: 2 s off and a 2 s boot, then initdead) gets group 0 back.
    let back = changes_of(&w, 0, 0, 2001);
    assert!(back.iter().any(|c| c.role == Role::Starting && c.reason == Reason::Granted));
    let failback = changes_of(&w, 1, 0, 2001);
    assert!(failback.iter().any(|c| c.reason == Reason::Failback), "{failback:?}");
    // Group 1 went to node 0 when node 1 died, and stays there.
    assert_eq!((role_of(&w, 0, 0), role_of(&w, 0, 1)), (Role::Active, Role::Active));
    assert_eq!((role_of(&w, 1, 0), role_of(&w, 1, 1)), (Role::Standby, Role::Standby));
    assert!(changes_of(&w, 1, 1, 14_001).iter().all(|c| c.role != Role::Starting));
}

/// (f) A partition under `fence none`: each node takes the other's group, both run both.
/// When it heals, each group's non-home node releases it (a split brain of each group,
/// resolved per group): group 0 returns to node 0, group 1 to node 1, and neither home node
/// stops its own group.
#[test]
fn a_healed_split_brain_is_resolved_per_group() {
    use hapair::core::time::Duration;
    use hapair::core::{FenceMode, Reason, Role};
    use world::Happening as H;
    let mut cfg = Config::scripted(FenceMode::None);
    cfg.duration = Duration::from_secs(8);
    two_homes(&mut cfg);
    let mut w = world::World::new(cfg, true);
    w.at(2000, H::Partition);
    w.at(5000, H::Reconnect);
    timeline(&mut w, "partition at 2 s (fence none), healed at 5 s");
    for g in 0..2 {
        let (home, other) = (g, 1 - g);
        let took = changes_of(&w, other, g, 2000);
        assert!(took.iter().any(|c| c.role == Role::Active && c.at_ms < 5000), "{took:?}");
        let released = took.iter().find(|c| c.at_ms >= 5000).expect("released");
        assert_eq!(released.reason, Reason::SplitBrain);
        assert!(changes_of(&w, home, g, 1000).is_empty(), "the home node keeps group {g}");
        assert_eq!((role_of(&w, home, g), role_of(&w, other, g)), (Role::Active, Role::Standby));
    }
    assert_eq!(w.coverage.split_brains, 2 + 2, "each group's split brain, seen by both nodes");
}

/// A full partition of two live nodes that each run a group (SPEC §7.4 with §7.1): each needs
/// the other fenced for the other's group. Every group fences in the first group's order
/// (`Node::follow_fence_order`): node 0, which holds group 0 at home, waits two slots of
/// `fence_delay`, node 1 one, so node 1 fences node 0 before node 0's turn comes: one fence,
/// and node 1 runs both groups. Each group in its own order (`Mutation::OwnFenceOrder`), both
/// nodes fence after one slot: both are reset (the oracle's mutual kill).
#[test]
fn a_partition_of_two_active_nodes_ends_in_one_fence() {
    use hapair::core::Role;
    use world::Happening as H;
    let mut w = active_active(12, |_| {});
    w.at(2000, H::Partition);
    timeline(&mut w, "active/active, full partition at 2 s");
    assert_eq!(w.coverage.fence_kills, 1, "one fence");
    let fencing: Vec<_> = w.changes.iter().filter(|c| c.role == Role::Fencing).collect();
    let fencers: Vec<_> = fencing.iter().map(|c| (c.node, c.group, c.at_ms)).collect();
    assert_eq!(fencers, [(0, 1, 2415), (1, 0, 2420)], "each fences for the other's group");
    assert_eq!((role_of(&w, 1, 0), role_of(&w, 1, 1)), (Role::Active, Role::Active));
    let mut w = active_active(12, |c| c.mutation = Mutation::OwnFenceOrder);
    w.at(2000, H::Partition);
    let err = w.run().expect_err("each group in its own order: two fences at once");
    println!("OwnFenceOrder: {err}");
    assert!(err.starts_with("fences: both nodes reset"), "{err}");
}

/// NOT A GUARANTEE: a limitation of the core, of one group as of several (found by SIM seed
/// 24865), pinned here so that the day it is fixed this test says so. Node 1 loses node 0
/// (every link cut one way at 2 s) and enters `Fencing` (one slot of `fence_delay`); node 0,
/// the holder, releases on its flag and, home and having held the group, takes two slots
/// when it loses node 1 in turn, because node 1's daemon hangs at 2.6 s. Node 1's delay runs out
/// during the hang and it fences the moment it wakes: a wake at the end of node 0's slots
/// makes the two fence at once, and both are reset. The oracle counts it
/// (`mutual_kills_after_hang`) rather than failing it (`World::check_mutual_kill`).
#[test]
fn known_limitation_a_hang_through_the_fence_delay_fences_on_waking() {
    use hapair::core::time::Duration;
    use world::Happening as H;
    let both_reset: Vec<u64> = (1000..2200)
        .step_by(50)
        .filter(|&hang| {
            let mut w = fencing_world(12, |_| {});
            for link in 0..3 {
                w.at(2000, H::Cut { link, from: 0, cut: true });
            }
            w.at(2600, H::Hang(1, Duration::from_millis(hang)));
            assert_eq!(w.run(), Ok(()), "hang of {hang} ms");
            w.coverage.mutual_kills_after_hang > 0
        })
        .collect();
    println!("both nodes reset after a hang of node 1 of {both_reset:?} ms");
    assert!(
        !both_reset.is_empty(),
        "no mutual kill after a hang: if the core now orders a fence delay a stall overran, \
         make `check_mutual_kill` fail it again and turn this test around"
    );
}

/// A `takeover` that one group refuses is refused as a whole and changes nothing (SIM seed
/// 689): group 0's restarts are exhausted on node 0 (its starts fail), so node 0 may not take
/// group 0, while group 1 could come. The operator is told the command failed; group 1 must
/// stay on node 1 (the oracle's L2 names a handover for an intent the world took back).
#[test]
fn a_takeover_that_one_group_refuses_changes_nothing() {
    use hapair::core::{Admin, Role};
    use world::Happening as H;
    let mut w = active_active(8, |_| {});
    w.at(1500, H::StartsFail(0, true));
    w.at(1500, H::Break(0, 0));
    w.at(3500, H::StartsFail(0, false));
    w.at(4000, H::Admin(0, Admin::Takeover));
    timeline(&mut w, "group 0's restarts exhausted on node 0, then takeover on node 0 at 4 s");
    assert_eq!(w.coverage.admin_refused, 1);
    assert!(changes_of(&w, 1, 1, 1000).is_empty(), "group 1 stays on node 1");
    assert_eq!((role_of(&w, 1, 0), role_of(&w, 1, 1)), (Role::Active, Role::Active));
}

/// A run of the peer heard while a fence command ran is not made safe by it (SIM seeds 1434
/// and 2139, one group: a lone `Node` fenced again there, `core::groups` did not). Node 1
/// fences node 0 (reset at 3.07 s), whose next run boots at 3.17 s, before the command
/// returns (a machine that boots in moments), and is heard. The fence made the old run safe,
/// not this one: when node 1 loses node 0 again (after it handed group 0 back to its home,
/// over a link that then failed), it must fence again before it takes the group; told "safe"
/// at once it would start the group beside node 0 (S2).
#[test]
fn a_run_heard_while_the_fence_ran_is_fenced_again() {
    use hapair::core::{Reason, Role};
    use world::Happening as H;
    let mut w = fencing_world(10, |c| {
        c.reboot_ms = (100, 100);
        c.groups[0].auto_failback = true;
    });
    w.at(2000, H::Partition);
    w.at(3100, H::Reconnect);
    for (at, from) in [(3421, 0), (3850, 1)] {
        for link in 0..3 {
            w.at(at, H::Cut { link, from, cut: true });
        }
    }
    timeline(&mut w, "node 0's next run heard during node 1's fence, then lost again");
    let starts: Vec<_> = changes_of(&w, 1, 0, 0)
        .into_iter()
        .filter(|c| c.role == Role::Starting)
        .map(|c| (c.at_ms, c.reason))
        .collect();
    assert_eq!(starts.len(), 2, "{starts:?}");
    assert!(starts.iter().all(|s| s.1 == Reason::Fenced), "{starts:?}");
    assert_eq!(w.coverage.fence_kills, 2, "node 0's next run was fenced too");
}

/// A group whose stop failed, at a shutdown that stops the node's other groups (SIM seed
/// 1254): under `fence CMD` it exits holding, without `Leaving`, as a lone node does to be
/// fenced by its peer. While the node runs on for its other group, its frames must not show
/// that group idle, or its home node starts it beside what still runs (S2): they show it
/// failed and holding, and the peer takes it only after the node exited, by fencing it.
#[test]
fn a_group_that_exits_holding_is_not_started_beside_it() {
    use hapair::core::{Admin, Reason, Role};
    use world::Happening as H;
    let mut w = active_active(8, |c| {
        c.groups[0].home = 1;
        c.groups[1].home = 0;
        c.groups[1].auto_failback = true;
    });
    w.at(1000, H::Admin(0, Admin::Move(1)));
    w.at(2000, H::StopFails(1));
    w.at(2100, H::Admin(0, Admin::Online));
    w.at(3000, H::Shutdown(1));
    timeline(&mut w, "group 1 moved to node 1, its failback stop fails, node 1 shuts down at 3 s");
    let failed = changes_of(&w, 1, 1, 2100);
    assert!(failed.iter().any(|c| c.role == Role::Failed { holding: true }), "{failed:?}");
    let taken = changes_of(&w, 0, 1, 3000);
    let start = taken.iter().find(|c| c.role == Role::Starting).expect("group 1 taken over");
    assert_eq!(start.reason, Reason::Fenced, "only by fencing node 1, after it exited");
    // Node 1 exits once group 0 is stopped (two resources, 100 ms each).
    assert!(start.at_ms > 3200, "{start:?}");
}

/// A node that shuts down keeps its heartbeats going while any of its groups still stops: the
/// first group paces them, and when it exits first (it ran nothing here), the next one that
/// still runs does. Node 1 runs group 1 (four resources of 500 ms) and shuts down at 3 s:
/// its group 0 exits at once, group 1 stops for 2 s, much longer than deadtime. Without
/// heartbeats in between node 0 would find node 1 dead and fence it in the middle of its
/// clean shutdown; with them it takes group 1 on its `Leaving`.
#[test]
fn a_node_shutting_down_beats_until_its_last_group_stopped() {
    use hapair::core::{Reason, Role};
    use world::Happening as H;
    let mut w = active_active(8, |c| {
        c.action_ms = (500, 500);
        c.groups[1].resources = 4;
    });
    w.at(3000, H::Shutdown(1));
    timeline(&mut w, "node 1 shuts down at 3 s, its group 1 stops for 2 s");
    assert_eq!(w.coverage.fence_kills, 0, "no fence of a node that shuts down cleanly");
    let taken = changes_of(&w, 0, 1, 3000);
    let start = taken.iter().find(|c| c.role == Role::Starting).expect("group 1 taken over");
    assert_eq!((start.at_ms, start.reason), (5005, Reason::PeerLeft), "{taken:?}");
}

/// A group's `Leaving` lost on the links while the node still stops its other groups (SIM
/// seed 79742: a later frame overtook it and the receiver dropped it as reordered). A lone
/// node's `Leaving` is its last frame; a group's is followed by the node's next ones, which
/// must keep saying that the group left, or the peer takes it only once the node has gone and
/// been silent for deadtime, and fenced. Node 1 runs groups 1 (one resource) and 2 (four)
/// and shuts down at 2 s; group 1's `Leaving` (at 2.1 s) is lost; the peer takes group 1 on
/// node 1's next frame, at once.
#[test]
fn a_groups_lost_leaving_is_said_again() {
    use hapair::core::{Reason, Role};
    use world::Happening as H;
    let mut w = active_active(8, |c| {
        let group = |home, resources| world::GroupCfg { home, auto_failback: false, resources };
        c.groups = vec![group(0, 2), group(1, 1), group(1, 4)];
    });
    w.at(2000, H::Shutdown(1));
    for (at, cut) in [(2100, true), (2101, false)] {
        for link in 0..3 {
            w.at(at, H::Cut { link, from: 1, cut });
        }
    }
    timeline(&mut w, "node 1 shuts down at 2 s, group 1's Leaving (2.1 s) is lost");
    let taken = changes_of(&w, 0, 1, 2000);
    let start = taken.iter().find(|c| c.role == Role::Starting).expect("group 1 taken over");
    assert_eq!(start.reason, Reason::PeerLeft, "{taken:?}");
    assert!(start.at_ms < 2400, "before node 1 exits: {start:?}");
}
