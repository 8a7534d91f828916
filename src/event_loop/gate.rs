//! The core as the loop holds it: `CoreGate` owns the `core::Node` and keeps the core's call
//! protocol (core/mod.rs): an input is fed only once every output of the last one has been
//! drained, and never while an output is being carried out, so a result of I/O comes back on
//! a later pass instead of re-entering the core in the middle of a drain. Reading the core
//! (`Deref`) is free; feeding (`handle_input`) and draining (`poll_output`) go through here,
//! and debug builds assert the order. What it does not do: carry out an output. That is the
//! loop's `Daemon::drain_core`, which `Daemon::feed`, the one way in, runs after each input.

use core::ops::Deref;

use crate::core::time::Instant;
use crate::core::{Groups, Input, Output};

/// Where the loop stands in the core's call protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Every output so far was drained, up to `Output::Timeout`: an input may come.
    Settled,
    /// An input was fed and its outputs are not drained yet.
    Fed,
    /// An output was handed out and is being carried out: no input until the drain ends.
    Draining,
}

/// The core, fed and drained in the order its call protocol asks.
pub struct CoreGate {
    node: Groups,
    phase: Phase,
}

impl CoreGate {
    /// The gate of a new node's groups. What `Node::new` queued (the first probe) is drained with the
    /// outputs of the first input.
    pub fn new(node: Groups) -> CoreGate {
        CoreGate { node, phase: Phase::Settled }
    }

    /// Feeds one input. Debug builds assert that the outputs of the last one were drained and
    /// that none is being carried out now.
    pub fn handle_input(&mut self, now: Instant, input: Input<'_>) {
        debug_assert!(
            self.phase != Phase::Draining,
            "a core input fed while its outputs are carried out (it must wait for the next \
             pass): {input:?}"
        );
        debug_assert!(
            self.phase != Phase::Fed,
            "a core input fed before the outputs of the last one were drained: {input:?}"
        );
        self.phase = Phase::Fed;
        self.node.handle_input(now, input);
    }

    /// The core's next output; until it is `Output::Timeout`, the caller is draining.
    pub fn poll_output(&mut self, now: Instant) -> Output {
        let output = self.node.poll_output(now);
        self.phase = match output {
            Output::Timeout(_) => Phase::Settled,
            _ => Phase::Draining,
        };
        output
    }

    /// The configuration digest the core's heartbeats carry, after a reload switched the
    /// resources (no input: it changes what the next frame says, not a decision).
    pub fn set_config_digest(&mut self, digest: [u8; 8]) {
        self.node.set_config_digest(digest);
    }

    /// True when every input so far has had its outputs drained.
    pub fn is_settled(&self) -> bool {
        self.phase == Phase::Settled
    }
}

impl Deref for CoreGate {
    type Target = Groups;

    fn deref(&self) -> &Groups {
        &self.node
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{self, Boot};
    use crate::wire::Health;

    /// A gate over node `a` of a pair with one resource, whose probe `Node::new` queues.
    fn gate() -> CoreGate {
        let text = "node a\nnode b\nauthkey /k\nbcast eth0\nresource exec web start=\"x\" \
                    stop=\"y\"\n";
        let config = config::parse_str(text, std::path::Path::new("t.conf")).unwrap();
        let boot = Boot { node: "a".into(), node_index: 0, standby: false, disable: false };
        let params = super::super::core_params(&config, &boot, 0, 1, None);
        CoreGate::new(crate::core::Groups::new(&[params], Instant::ZERO))
    }

    fn drain(gate: &mut CoreGate, now: Instant) -> usize {
        let mut outputs = 0;
        while !matches!(gate.poll_output(now), Output::Timeout(_)) {
            assert!(!gate.is_settled(), "an output is being carried out");
            outputs += 1;
        }
        outputs
    }

    #[test]
    fn inputs_each_drained_to_the_timeout_pass() {
        let mut gate = gate();
        assert!(gate.is_settled());
        gate.handle_input(Instant::ZERO, Input::Health(Health::OK));
        assert!(!gate.is_settled(), "fed, not drained");
        assert!(drain(&mut gate, Instant::ZERO) >= 1, "the probe, at least");
        assert!(gate.is_settled());
        let later = Instant::from_millis(10);
        gate.handle_input(later, Input::Timeout);
        drain(&mut gate, later);
        assert!(gate.is_settled());
        assert_eq!(gate.role(), crate::core::Role::Init, "read through Deref");
    }

    /// The guard itself, seen to fire: a result fed in the middle of a drain.
    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "fed while its outputs are carried out")]
    fn an_input_inside_a_drain_is_caught() {
        let mut gate = gate();
        gate.handle_input(Instant::ZERO, Input::Health(Health::OK));
        assert!(!matches!(gate.poll_output(Instant::ZERO), Output::Timeout(_)));
        gate.handle_input(Instant::ZERO, Input::FenceResult { ok: false });
    }

    /// ... and two inputs with no drain between them.
    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "before the outputs of the last one were drained")]
    fn an_input_before_the_last_one_is_drained_is_caught() {
        let mut gate = gate();
        gate.handle_input(Instant::ZERO, Input::Health(Health::OK));
        gate.handle_input(Instant::ZERO, Input::Timeout);
    }
}
