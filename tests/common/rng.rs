//! `Rng`: the simulator's splitmix64 (`splitmix.rs`), plus `from_clock`, which makes each run
//! differ.

#[path = "splitmix.rs"]
mod splitmix;

pub use splitmix::Rng;

impl Rng {
    /// Seeded from CLOCK_MONOTONIC: another stream each run.
    pub fn from_clock() -> Rng {
        Rng::new(super::pair::mono_ns())
    }
}
