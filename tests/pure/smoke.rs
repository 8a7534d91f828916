//! The test build enables the simulator hooks (the `sim` feature).
use hapair::wire::*;

#[test]
fn simulator_can_build_authentic_frames() {
    let payload = Payload {
        kind: Kind::Heartbeat,
        state: GroupState::Standby,
        health: Health::OK,
        intent: Intent::None,
        flags: 0,
        epoch: 0,
        watchdog_timeout_ms: 0,
        config_digest: [0; 8],
        groups: Groups::ONE,
    };
    let session = Session::NONE;
    let repr = Repr {
        version: VERSION,
        sender: 1,
        incarnation: 1,
        seq: 1,
        link: 0,
        session,
        payload,
        outdate: Default::default(),
    };
    assert_eq!(Authentic::for_simulation(repr).repr().sender, 1);
}
