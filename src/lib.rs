//! hapair: a two-node high-availability daemon for pairs of Linux PCs.
//!
//! The crate is split by responsibility (see ARCHITECTURE.md): `core` is the pure failover
//! state machine, `wire` the heartbeat frames, `health` and `announce` the other judgements
//! as pure code fed with `now`, `drivers` the thin I/O around them, `event_loop` the one
//! poll loop, `config` and `cli` the contract with the operator.

// Every `unsafe` block says why it is sound (STYLE.md "Errors").
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod announce;
pub mod cli;
pub mod config;
pub mod control;
pub mod core;
pub mod drbd;
pub mod drivers;
pub mod event_loop;
pub mod health;
pub mod limits;
pub mod migrate;
pub mod status;
#[cfg(test)]
mod testutil;
pub mod wire;
