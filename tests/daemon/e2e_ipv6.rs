//! SPEC §7.7 end to end, in the namespace lab (scripts/lab.sh): a pair of real `hapair run`
//! daemons whose only medium is IPv6 multicast on the LAN (`mcast lan0 ff02::1:694`, from
//! board/lab/v6.conf without its serial and crossover lines, and without `hapair.serial=` on
//! the kernel command lines), with an IPv4 and an IPv6 ping node (the client's two addresses).
//! The pair settles, `status` shows the one link and both ping nodes, the IPv6 ping node is
//! lost alone when the client stops answering ICMPv6 echoes (the IPv4 one keeps the node
//! healthy), a `standby` hands the IPv6 VIP over and a node death fails it over, each time
//! with the client answered by the survivor and the group never on both nodes (the marker
//! resource, tests/common/pair.rs). Needs root (CI is root).
//!
//! Not here: each driver on its own (tests/drivers/drivers_udp.rs, health_ping.rs), timing
//! figures (scripts/bench-failover).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::assert_soon;
use crate::common::lab::{Lab, Node};
use crate::common::pair::{NODES, Pair};

/// Generous: the machine may be busy building; how long a wait may take, not a bound.
const PATIENCE: Duration = Duration::from_secs(20);
/// The one medium, as `status` labels it.
const LINK: &str = "mcast lan0 ff02::1:694";
/// The client's addresses: the ping nodes.
const PING4: &str = "192.0.2.10";
const PING6: &str = "2001:db8::10";

/// board/lab/v6.conf without its serial and ucast lines, in the lab's directory.
fn mcast6_only(lab: &Lab) -> PathBuf {
    let board = Path::new(env!("CARGO_MANIFEST_DIR")).join("board/lab/v6.conf");
    let text = std::fs::read_to_string(&board).unwrap_or_else(|e| panic!("v6.conf: {e}"));
    let kept: Vec<&str> =
        text.lines().filter(|l| !l.starts_with("serial ") && !l.starts_with("ucast ")).collect();
    assert_eq!(kept.iter().filter(|l| l.starts_with("mcast ")).count(), 1, "{text}");
    let to = Path::new(&lab.dir()).join("mcast6-only.conf");
    std::fs::write(&to, kept.join("\n") + "\n").unwrap_or_else(|e| panic!("{e}"));
    let mode = std::os::unix::fs::PermissionsExt::from_mode(0o644);
    std::fs::set_permissions(&to, mode).unwrap_or_else(|e| panic!("chmod: {e}"));
    to
}

/// Whether node `which` reports the ping node `addr` reachable (`None`: not listed).
fn ping_reachable(pair: &Pair, which: Node, addr: &str) -> Option<bool> {
    let status = pair.status(which)?;
    let nodes = status["health"]["ping"].as_array()?;
    let node = nodes.iter().find(|n| n["address"] == addr)?;
    node["reachable"].as_bool()
}

#[test]
fn an_ipv6_multicast_link_alone_carries_the_pair_through_handover_and_failover() {
    let mut pair = Pair::prepare('6', mcast6_only, "2001:db8::100");
    for node in NODES {
        // No serial line: the command line names none.
        let words =
            format!("hapair.node={} hapair.ping={PING4} hapair.ping={PING6}", node.as_str());
        pair.write_cmdline(node, &words);
    }
    pair.start_both();
    let (active, standby) = pair.settled(PATIENCE);

    // The one link, up, labelled as configured; both ping nodes answer.
    for node in NODES {
        let status = pair.status(node).expect("status");
        let links = status["peer"]["links"].as_array().expect("links");
        let media: Vec<&str> = links.iter().filter_map(|l| l["medium"].as_str()).collect();
        assert_eq!(media, [LINK], "{node:?}: {status}");
        assert_eq!(links[0]["up"], true, "{node:?}: {status}");
        assert!(links[0]["frames_rx"].as_u64() > Some(0), "{node:?}: {status}");
        assert_soon(PATIENCE, "both ping nodes answer", || {
            ping_reachable(&pair, node, PING4) == Some(true)
                && ping_reachable(&pair, node, PING6) == Some(true)
        });
        let human = pair.admin(node, &["status"]);
        let text = String::from_utf8_lossy(&human.stdout);
        assert!(text.contains(&format!("\n  {LINK}")), "{node:?}: {text}");
        assert!(text.contains(&format!("\n  ping {PING6}")), "{node:?}: {text}");
    }

    // The client stops answering ICMPv6 echoes: the IPv6 ping node is lost alone, and the
    // IPv4 one keeps both nodes healthy (one reachable ping node is enough).
    let client = pair.lab().ns(Node::Client).to_owned();
    let sysctl = |value: &str| {
        let key = format!("net.ipv6.icmp.echo_ignore_all={value}");
        let out = crate::common::exec_in(&client, &["sysctl", "-q", "-w", &key]);
        assert!(out.status.success(), "sysctl {key}");
    };
    sysctl("1");
    assert_soon(PATIENCE, "the IPv6 ping node unreachable", || {
        NODES.iter().all(|&n| ping_reachable(&pair, n, PING6) == Some(false))
    });
    for node in NODES {
        assert_eq!(ping_reachable(&pair, node, PING4), Some(true), "{node:?}");
        assert_eq!(pair.health(node).0, Some(true), "{node:?}: {:?}", pair.health(node));
    }
    sysctl("0");
    assert_soon(PATIENCE, "the IPv6 ping node back", || {
        NODES.iter().all(|&n| ping_reachable(&pair, n, PING6) == Some(true))
    });
    assert_eq!((pair.state(active), pair.state(standby)), ("active".into(), "standby".into()));

    // A planned handover over the one IPv6 multicast link.
    pair.admin_ok(active, &["standby"]);
    assert_soon(PATIENCE, "handed over", || {
        pair.state(standby) == "active" && pair.state(active) == "standby"
    });
    assert_soon(PATIENCE, "the client answered by the new active node", || {
        pair.last_answer().as_deref() == Some(standby.as_str())
    });
    pair.assert_moved(active, standby);
    pair.admin_ok(active, &["online"]);

    // The new active node dies: the other, hearing nothing on the link, takes over.
    let (victim, survivor) = (standby, active);
    pair.kill_and_cut(victim);
    assert_soon(PATIENCE, "the survivor active", || pair.state(survivor) == "active");
    assert_soon(PATIENCE, "the client answered by the survivor", || {
        pair.last_answer().as_deref() == Some(survivor.as_str())
    });
    let status = pair.status(survivor).expect("status");
    assert_eq!(status["peer"]["alive"], false, "{status}");
    assert_eq!(status["peer"]["links"][0]["up"], false, "{status}");
    pair.assert_moved(victim, survivor);
}
