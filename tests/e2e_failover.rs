//! End to end, in the namespace lab (scripts/lab.sh): two real `hapair run` daemons, a client
//! that asks the VIP who it is every 5 ms (a UDP responder runs in each node's namespace), and
//! a sampler that checks the VIP is never served by both nodes at once. For IPv4 and IPv6,
//! after each fault — node death (SIGKILL and every cable pulled), a planned `standby`
//! handover, SIGTERM — the client's neighbour entry for the VIP must hold the survivor's MAC
//! and the survivor must answer. Needs root (CI is root).
//!
//! Not here: how fast (scripts/bench-failover measures it; tests assert no timing), and the
//! core's decisions in detail (tests/sim.rs).

mod common;

use std::time::Duration;

use common::assert_soon;
use common::lab::Node;
use common::pair::Pair;
use nix::sys::signal::Signal;

/// Generous: the machine may be busy building; nothing here measures time.
const PATIENCE: Duration = Duration::from_secs(20);

const V4: (&str, &str) = ("hapair.conf", "192.0.2.100");
const V6: (&str, &str) = ("v6.conf", "2001:db8::100");

/// What happens to the active node.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// SIGKILL, then its LAN and crossover cables pulled and the serial line cut.
    Death,
    /// `hapair standby` on it.
    Standby,
    /// SIGTERM to its daemon.
    Term,
}

/// Starts a pair and waits until one node is active, the other standby, and the client is
/// answered by the active one at the VIP. Returns the pair and the active node: usually alpha
/// (home), but a node whose first ping has not answered yet is unhealthy and leaves the group
/// to its peer.
fn settled(tag: char, (conf, vip): (&str, &str)) -> (Pair, Node, Node) {
    let pair = Pair::start(tag, conf, vip);
    let mut active = Node::Alpha;
    assert_soon(PATIENCE, "one node active, the other standby", || {
        let (a, b) = (pair.state(Node::Alpha), pair.state(Node::Beta));
        active = if a == "active" { Node::Alpha } else { Node::Beta };
        (a == "active" && b == "standby") || (a == "standby" && b == "active")
    });
    let survivor = if active == Node::Alpha { Node::Beta } else { Node::Alpha };
    assert_soon(PATIENCE, "the client answered by the active node at the VIP", || {
        pair.last_answer().as_deref() == Some(active.as_str())
    });
    assert_eq!(pair.client_neigh(), Some(pair.mac(active)), "client's entry for the VIP");
    assert_soon(PATIENCE, "overlap samples before the fault", || pair.samples() >= 4);
    (pair, active, survivor)
}

/// The fault on the active node, then: the survivor active, the client's entry holding the
/// survivor's MAC, the survivor answering; and at no moment both nodes serving the VIP.
fn fails_over(tag: char, family: (&str, &str), fault: Fault) {
    let (mut pair, victim, survivor) = settled(tag, family);
    pair.clear_answers();
    match fault {
        Fault::Death => pair.kill_and_cut(victim),
        Fault::Standby => {
            let out = pair.hapair(victim, &["standby"]);
            assert!(out.status.success(), "standby: {}", String::from_utf8_lossy(&out.stderr));
        }
        Fault::Term => pair.signal(victim, Signal::SIGTERM),
    }
    assert_soon(PATIENCE, "the survivor active", || pair.state(survivor) == "active");
    let mac = pair.mac(survivor);
    assert_soon(PATIENCE, "the client's entry for the VIP at the survivor's MAC", || {
        pair.client_neigh().as_deref() == Some(mac.as_str())
    });
    assert_soon(PATIENCE, "the survivor answering the client", || {
        pair.last_answer().as_deref() == Some(survivor.as_str())
    });
    // Once the survivor answers, the victim never does again.
    let answers = pair.answers();
    let first = answers.iter().position(|a| a == survivor.as_str()).unwrap_or(answers.len());
    assert!(answers[first..].iter().all(|a| a == survivor.as_str()), "after: {answers:?}");
    match fault {
        Fault::Death => {}
        Fault::Standby => assert_eq!(pair.state(victim), "standby"),
        Fault::Term => assert_soon(PATIENCE, "the victim's daemon exits 0", || {
            pair.exited(victim) == Some(Some(0))
        }),
    }
    // The sampler ran before the fault and through the takeover, and never saw both.
    let before = pair.samples();
    assert_soon(PATIENCE, "more overlap samples", || pair.samples() >= before + 4);
    assert_eq!(pair.overlaps(), Vec::<String>::new(), "VIP on both nodes");
}

#[test]
fn v4_node_death_moves_the_vip_to_the_survivor() {
    fails_over('d', V4, Fault::Death);
}

#[test]
fn v4_standby_hands_the_vip_to_the_survivor() {
    fails_over('s', V4, Fault::Standby);
}

#[test]
fn v4_sigterm_hands_the_vip_to_the_survivor() {
    fails_over('t', V4, Fault::Term);
}

#[test]
fn v6_node_death_moves_the_vip_to_the_survivor() {
    fails_over('e', V6, Fault::Death);
}

#[test]
fn v6_standby_hands_the_vip_to_the_survivor() {
    fails_over('f', V6, Fault::Standby);
}

#[test]
fn v6_sigterm_hands_the_vip_to_the_survivor() {
    fails_over('u', V6, Fault::Term);
}

/// The overlap sampler can fail: the VIP added by hand on the standby node is seen on both.
#[test]
fn the_sampler_sees_a_vip_on_both_nodes() {
    let (pair, _active, standby) = settled('o', V4);
    let ns = pair.lab().ns(standby).to_owned();
    common::cmd(&["ip", "-n", &ns, "addr", "add", "192.0.2.100/24", "dev", "lan0"]);
    assert_soon(PATIENCE, "an overlap reported", || !pair.overlaps().is_empty());
}
