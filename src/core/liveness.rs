//! Per-link liveness (the TigerBeetle fault-detector idea): each heartbeat link is green
//! while frames arrive, yellow once it has been silent longer than its `warn_after`, red once
//! silent longer than its `dead_after`. It also paces each link's own sending. The peer's
//! liveness (deadtime over all links) is derived in `Node` from these; this file does not
//! decide anything about the group.

use super::time::{Duration, Instant};

/// How one heartbeat link is paced and judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkParams {
    /// Send a heartbeat on this link this often (a slow serial link may use a longer cadence
    /// than `keepalive`).
    pub send_interval: Duration,
    /// Silence after which the link is yellow and a frame is counted late (usually `warntime`).
    pub warn_after: Duration,
    /// Silence after which the link is red (down).
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
        Link { params, status, next_send: now }
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
}
