//! Test helpers shared by the core's unit tests (`mod tests` of each core file): a `Params`
//! for one link and one resource, peer frames, and ways to feed a node and drain its outputs
//! as the event loop does. Only built for tests.

pub(super) use super::node::Node;
pub(super) use super::resources::{ResourcePlan, ResourceState};
pub(super) use super::role::{AfterStop, Reason, Role};
pub(super) use super::time::{Duration, Instant};
pub(super) use super::timer::Timer;
pub(super) use super::{
    Action, Admin, Detail, Event, FLAG_HOLDING, FLAG_PEER_ALIVE, FLAG_TAKING_OVER, FenceMode,
    Input, LinkParams, Outcome, Output, Params, Refusal, RestartLimit,
};
pub(super) use crate::wire::{Authentic, GroupState, Groups, Health, Intent, Kind, Payload, Repr};

pub(super) fn ms(n: u64) -> Instant {
    Instant::from_millis(n)
}

pub(super) fn params(me: u8, fence: FenceMode) -> Params {
    let link = LinkParams {
        send_interval: Duration::from_millis(100),
        warn_after: Duration::from_millis(300),
        dead_after: Duration::from_millis(500),
    };
    Params {
        me,
        peer: 1 - me,
        home: 0,
        keepalive: Duration::from_millis(100),
        warntime: Duration::from_millis(300),
        deadtime: Duration::from_millis(500),
        initdead: Duration::from_millis(1000),
        auto_failback: false,
        fence,
        fence_delay: Duration::from_millis(500),
        start_unclean: false,
        watchdog_timeout: Some(Duration::from_secs(2)),
        peer_watchdog_timeout_ms: None,
        resources: 1,
        drbd: false,
        monitor_interval: Duration::from_secs(1),
        restart_limit: RestartLimit { count: 1, window: Duration::from_secs(60) },
        links: heapless::Vec::from_slice(&[link]).unwrap(), // one link fits LINKS_MAX
        ping_configured: true,
        start_standby: false,
        start_self_fencing: false,
        config_digest: [0; 8],
        #[cfg(feature = "sim")]
        sim_mutation: crate::core::Mutation::None,
    }
}

pub(super) fn peer_says(kind: Kind, state: GroupState, flags: u8, epoch: u32) -> Payload {
    Payload {
        kind,
        state,
        health: Health::OK,
        intent: Intent::None,
        flags,
        epoch,
        watchdog_timeout_ms: 2000,
        config_digest: [0; 8],
        groups: Groups::ONE,
    }
}

/// Delivers one peer frame (incarnation 1) and returns the outputs.
pub(super) fn frame(
    node: &mut Node,
    now: Instant,
    seq: u64,
    payload: Payload,
) -> std::vec::Vec<Output> {
    frame_of_run(node, now, (1, 1), seq, payload)
}

/// Delivers one peer frame (incarnation 1) on link `link` and returns the outputs.
pub(super) fn frame_on(
    node: &mut Node,
    now: Instant,
    link: u8,
    seq: u64,
    payload: Payload,
) -> std::vec::Vec<Output> {
    deliver(node, now, link, (1, 1), seq, payload)
}

/// `params` with two links of their own timing (SPEC §7.7): link 0 fast (10 ms, judged at
/// 50 ms), link 1 slow (200 ms, judged at 2 s); the global timing stays 100/300/500 ms.
pub(super) fn params_fast_and_slow(me: u8, fence: FenceMode) -> Params {
    let mut p = params(me, fence);
    p.links.clear();
    let fast = LinkParams {
        send_interval: Duration::from_millis(10),
        warn_after: Duration::from_millis(30),
        dead_after: Duration::from_millis(50),
    };
    let slow = LinkParams {
        send_interval: Duration::from_millis(200),
        warn_after: Duration::from_millis(1200),
        dead_after: Duration::from_millis(2000),
    };
    // Two links fit LINKS_MAX.
    let _ = p.links.push(fast);
    let _ = p.links.push(slow);
    p
}

/// Delivers one frame of the peer's run `(incarnation, run number)` and returns the outputs.
pub(super) fn frame_of_run(
    node: &mut Node,
    now: Instant,
    (incarnation, run): (u64, u32),
    seq: u64,
    payload: Payload,
) -> std::vec::Vec<Output> {
    deliver(node, now, 0, (incarnation, run), seq, payload)
}

/// One fresh frame of the peer's run `(incarnation, run number)` on `link`, and the outputs.
fn deliver(
    node: &mut Node,
    now: Instant,
    link: u8,
    run: (u64, u32),
    seq: u64,
    payload: Payload,
) -> std::vec::Vec<Output> {
    let authentic = Authentic::new(peer_repr(node, link, run, seq, payload, 1));
    node.handle_input(now, Input::Frame { link, frame: &authentic });
    drain(node, now)
}

/// Hands in one authentic frame of the peer (incarnation 1) that is not fresh
/// (`Input::Unfresh`: it echoes no challenge of ours) and returns the outputs.
pub(super) fn unfresh(
    node: &mut Node,
    now: Instant,
    seq: u64,
    payload: Payload,
) -> std::vec::Vec<Output> {
    node.handle_input(now, Input::Unfresh(peer_repr(node, 0, (1, 1), seq, payload, 9)));
    drain(node, now)
}

/// A frame of the peer's run `(incarnation, run number)` on `link`, echoing `echo` (1: our
/// challenge).
fn peer_repr(
    node: &Node,
    link: u8,
    (incarnation, run): (u64, u32),
    seq: u64,
    payload: Payload,
    echo: u32,
) -> Repr {
    Repr {
        version: crate::wire::VERSION,
        sender: 1 - node.params.me,
        incarnation,
        seq,
        link,
        session: crate::wire::Session { run, challenge: 1, echo, flags: 0 },
        payload,
        outdate: Default::default(),
    }
}

pub(super) fn drain(node: &mut Node, now: Instant) -> std::vec::Vec<Output> {
    let mut out = std::vec::Vec::new();
    loop {
        match node.poll_output(now) {
            Output::Timeout(_) => return out,
            o => out.push(o),
        }
    }
}

/// Feeds `Timeout` at every deadline up to `until`, as the event loop does; returns all
/// outputs.
pub(super) fn run_until(node: &mut Node, until: Instant) -> std::vec::Vec<Output> {
    let mut out = std::vec::Vec::new();
    let mut now = node.last_input;
    loop {
        let deadline = loop {
            match node.poll_output(now) {
                Output::Timeout(at) => break at,
                o => out.push(o),
            }
        };
        if deadline > until {
            return out;
        }
        now = deadline.max(now);
        node.handle_input(now, Input::Timeout);
    }
}

pub(super) fn action(out: &[Output]) -> Option<(u8, Action)> {
    out.iter().find_map(|o| match o {
        Output::ResourceAction { index, action } => Some((*index, *action)),
        _ => None,
    })
}

pub(super) fn ok(
    node: &mut Node,
    now: Instant,
    index: u8,
    action: Action,
) -> std::vec::Vec<Output> {
    let elapsed = Duration::from_millis(1);
    node.handle_input(now, Input::ResourceResult { index, action, outcome: Outcome::Ok, elapsed });
    drain(node, now)
}

pub(super) fn probed(node: &mut Node, now: Instant, outcome: Outcome) -> std::vec::Vec<Output> {
    let (index, action) = pending(node).expect("a probe is in flight");
    assert_eq!(action, Action::Monitor);
    let elapsed = Duration::from_millis(1);
    node.handle_input(now, Input::ResourceResult { index, action, outcome, elapsed });
    drain(node, now)
}

/// A new node whose start-up probe (one resource) says `outcome`.
pub(super) fn booted(me: u8, fence: FenceMode, outcome: Outcome) -> Node {
    let mut node = Node::new(params(me, fence), ms(0));
    assert_eq!(action(&drain(&mut node, ms(0))), Some((0, Action::Monitor)));
    probed(&mut node, ms(1), outcome);
    node
}

/// Node 0 (home) with a live standby peer becomes active at `t` + 1 ms.
pub(super) fn active_home(fence: FenceMode) -> Node {
    let mut node = booted(0, fence, Outcome::NotRunning);
    // The peer hears us: the home node may arbitrate.
    let hears_us = peer_says(Kind::Heartbeat, GroupState::Standby, FLAG_PEER_ALIVE, 0);
    let out = frame(&mut node, ms(10), 1, hears_us);
    assert_eq!(node.role(), Role::Starting);
    assert_eq!(action(&out), Some((0, Action::Start)));
    ok(&mut node, ms(11), 0, Action::Start);
    assert_eq!(node.role(), Role::Active);
    node
}

/// A standby node 1 (fence watchdog) that heard its peer run the group with
/// `watchdog_timeout_ms` = `peer_wd`; the peer's last frame is at 10 ms (dead at 510 ms).
pub(super) fn standby_beside_an_active_peer(peer_wd: u32) -> Node {
    let mut node = booted(1, FenceMode::Watchdog, Outcome::NotRunning);
    let mut active = peer_says(Kind::Heartbeat, GroupState::Active, FLAG_HOLDING, 1);
    active.watchdog_timeout_ms = peer_wd;
    frame(&mut node, ms(10), 1, active);
    assert_eq!(node.role(), Role::Standby);
    node
}

pub(super) fn became(out: &[Output], event: Event) -> Option<Detail> {
    out.iter().find_map(|o| match o {
        Output::Notify { event: e, detail, .. } if *e == event => Some(*detail),
        _ => None,
    })
}

/// The admin answer among `out`, if any.
pub(super) fn answer(out: &[Output]) -> Option<Result<(), Refusal>> {
    out.iter().find_map(|o| match o {
        Output::AdminAnswer(a) => Some(*a),
        _ => None,
    })
}

/// Node 0 (home), `n` resources, found stopped, started in order beside a live standby
/// peer: active at 20 ms.
pub(super) fn active_with(n: u8) -> Node {
    let mut p = params(0, FenceMode::None);
    p.resources = n;
    let mut node = Node::new(p, ms(0));
    drain(&mut node, ms(0));
    for _ in 0..n {
        probed(&mut node, ms(1), Outcome::NotRunning);
    }
    let hears_us = peer_says(Kind::Heartbeat, GroupState::Standby, FLAG_PEER_ALIVE, 0);
    frame(&mut node, ms(10), 1, hears_us);
    for i in 0..n {
        assert_eq!(pending(&node), Some((i, Action::Start)));
        ok(&mut node, ms(20), i, Action::Start);
    }
    assert_eq!(node.role(), Role::Active);
    node
}

pub(super) fn actions(out: &[Output]) -> std::vec::Vec<(u8, Action)> {
    out.iter()
        .filter_map(|o| match o {
            Output::ResourceAction { index, action } => Some((*index, *action)),
            _ => None,
        })
        .collect()
}

pub(super) fn switched(out: &[Output]) -> bool {
    out.contains(&Output::ApplyResources { group: 0 })
}

/// The resource action in flight, if any.
pub(super) fn pending(node: &Node) -> Option<(u8, Action)> {
    node.pending.map(|p| (p.index, p.action))
}
