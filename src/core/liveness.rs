//! Per-link liveness (the TigerBeetle fault-detector idea): each heartbeat link is green
//! while frames arrive, yellow once it has been silent longer than its `warn_after`, red once
//! silent longer than its `dead_after`. It also paces each link's own sending. Each link
//! is judged at its own pace (SPEC §7.7: `keepalive` and `deadtime` on a medium line): it is
//! down once it has been silent for its own `dead_after` of this node's listening
//! (`Link::down_at`), and the peer is dead when every link is down (`Node::peer_dead_at`).
//! This file does not decide anything about the group.

use super::time::{Duration, Instant};

/// How one heartbeat link is paced and judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkParams {
    /// Send a heartbeat on this link this often (a slow serial link may use a longer cadence
    /// than `keepalive`).
    pub send_interval: Duration,
    /// Silence after which the link is yellow and a frame is counted late (usually `warntime`).
    pub warn_after: Duration,
    /// Silence after which the link is red (down): the link's own deadtime (the global one
    /// when its line sets none), longer for a serial line paced slower than its keepalive.
    pub dead_after: Duration,
}

/// The colour of a link as the receiver sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkHealth {
    /// Nothing heard on this link since start.
    Unknown,
    /// Frames arrive on time.
    Green,
    /// Silent for longer than `warn_after`, not yet `dead_after`.
    Yellow,
    /// Silent for longer than `dead_after`: down.
    Red,
}

/// What `status` shows about one link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkStatus {
    /// Its colour now.
    pub health: LinkHealth,
    /// When the last valid frame arrived on it.
    pub last_heard: Option<Instant>,
    /// Valid frames received on it.
    pub frames_rx: u64,
    /// Frames that arrived later than `warn_after` after the one before.
    pub late_count: u64,
}

/// The liveness detector and send pacer of one link.
#[derive(Clone, Copy, Debug)]
pub struct Link {
    params: LinkParams,
    status: LinkStatus,
    next_send: Instant,
    /// Where this link's silence counts from, at the earliest: its creation, moved on by each
    /// stall of this node (`handle_stall`), as `Node::listening_since` is for the peer.
    listening_since: Instant,
}

impl Link {
    /// A link that has heard nothing yet and sends its first heartbeat at `now`.
    pub fn new(params: LinkParams, now: Instant) -> Link {
        let status = LinkStatus {
            health: LinkHealth::Unknown,
            last_heard: None,
            frames_rx: 0,
            late_count: 0,
        };
        Link { params, status, next_send: now, listening_since: now }
    }

    /// How this link is paced and judged.
    pub fn params(&self) -> LinkParams {
        self.params
    }

    /// This node stalled for `gap` until `now`: the stall is taken out of the link's silence
    /// (nothing was heard meanwhile), but only the stall, so that many short stalls still let
    /// a silent link go down.
    pub fn handle_stall(&mut self, gap: Duration, now: Instant) {
        self.listening_since = (self.silent_since() + gap).min(now);
    }

    /// When this link's silence began, as far as this node could observe it.
    fn silent_since(&self) -> Instant {
        self.status.last_heard.map_or(self.listening_since, |t| t.max(self.listening_since))
    }

    /// When this link is down by its own deadtime: `dead_after` of this node's listening
    /// after its last frame (or its creation). The peer is dead once every link is.
    pub fn down_at(&self) -> Instant {
        self.silent_since() + self.params.dead_after
    }

    /// `dead_after` after the last stall of this node (or its creation): until then a peer
    /// silent on this link is not known to be dead, whatever it last sent.
    pub fn listening_down_at(&self) -> Instant {
        self.listening_since + self.params.dead_after
    }

    /// Records a valid frame at `now`. Returns true when it came late.
    pub fn handle_frame(&mut self, now: Instant) -> bool {
        let late = self
            .status
            .last_heard
            .is_some_and(|t| now.saturating_since(t) > self.params.warn_after);
        if late {
            self.status.late_count += 1;
        }
        self.status.last_heard = Some(now);
        self.status.frames_rx += 1;
        self.status.health = LinkHealth::Green;
        late
    }

    /// Re-colours the link for `now`. Returns the new colour when it changed.
    pub fn update(&mut self, now: Instant) -> Option<LinkHealth> {
        let heard = self.status.last_heard?;
        let silent = now.saturating_since(heard);
        let health = if silent > self.params.dead_after {
            LinkHealth::Red
        } else if silent > self.params.warn_after {
            LinkHealth::Yellow
        } else {
            LinkHealth::Green
        };
        let changed = health != self.status.health;
        self.status.health = health;
        changed.then_some(health)
    }

    /// True when a heartbeat is due on this link; re-arms the pacer when it is.
    pub fn poll_send(&mut self, now: Instant) -> bool {
        if now < self.next_send {
            return false;
        }
        self.next_send = now + self.params.send_interval;
        true
    }

    /// Records that a frame just went out on this link (an urgent one), resetting the pacer.
    pub fn sent_now(&mut self, now: Instant) {
        self.next_send = now + self.params.send_interval;
    }

    /// The next instant this link needs attention: a send, or a colour change.
    pub fn next_deadline(&self) -> Instant {
        let mut next = self.next_send;
        if let Some(heard) = self.status.last_heard {
            let colour_change = match self.status.health {
                LinkHealth::Green => {
                    Some(heard + self.params.warn_after + Duration::from_millis(1))
                }
                LinkHealth::Yellow => {
                    Some(heard + self.params.dead_after + Duration::from_millis(1))
                }
                LinkHealth::Red | LinkHealth::Unknown => None,
            };
            if let Some(at) = colour_change {
                next = next.min(at);
            }
        }
        next
    }

    /// When the last valid frame arrived.
    pub fn last_heard(&self) -> Option<Instant> {
        self.status.last_heard
    }

    /// What `status` shows.
    pub fn status(&self) -> LinkStatus {
        self.status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    #[test]
    fn link_goes_green_yellow_red_and_back() {
        let params = LinkParams {
            send_interval: Duration::from_millis(100),
            warn_after: Duration::from_millis(300),
            dead_after: Duration::from_millis(500),
        };
        let mut link = Link::new(params, ms(0));
        assert_eq!(link.status().health, LinkHealth::Unknown);
        assert!(!link.handle_frame(ms(10)));
        assert_eq!(link.next_deadline(), ms(0));
        assert!(link.poll_send(ms(0)));
        assert!(!link.poll_send(ms(99)));
        assert_eq!(link.next_deadline(), ms(100));
        assert_eq!(link.update(ms(310)), None);
        assert_eq!(link.update(ms(311)), Some(LinkHealth::Yellow));
        assert_eq!(link.update(ms(511)), Some(LinkHealth::Red));
        assert!(link.handle_frame(ms(600)));
        assert_eq!(link.status().late_count, 1);
        assert_eq!(link.status().health, LinkHealth::Green);
    }

    /// A link is down `dead_after` after its last frame, counting only this node's listening:
    /// a stall moves its silence on by the stall, and only by the stall.
    #[test]
    fn a_link_is_down_by_its_own_deadtime_less_the_stalls() {
        let params = LinkParams {
            send_interval: Duration::from_millis(200),
            warn_after: Duration::from_millis(600),
            dead_after: Duration::from_millis(2000),
        };
        let mut link = Link::new(params, ms(100));
        assert_eq!(link.down_at(), ms(2100), "silent since its creation");
        link.handle_frame(ms(500));
        assert_eq!(link.down_at(), ms(2500));
        // A stall of 300 ms ending at 1000: the silence counts from 800.
        link.handle_stall(Duration::from_millis(300), ms(1000));
        assert_eq!(link.down_at(), ms(2800));
        assert_eq!(link.listening_down_at(), ms(2800));
        // A stall never moves it past its own end.
        link.handle_stall(Duration::from_millis(5000), ms(1500));
        assert_eq!(link.down_at(), ms(3500));
        link.handle_frame(ms(3600));
        assert_eq!(link.down_at(), ms(5600));
        assert_eq!(link.params(), params);
    }
}
