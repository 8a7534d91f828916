//! The allocation tests: the steady state of two whole daemons (`alloc_daemon`), their census
//! per heartbeat, status request and handover (`alloc_census`), the drivers' and the health
//! work's per-wake paths (`drivers_alloc`, `health_alloc`). `cargo test --test alloc MODULE::`
//! runs one. Needs root (labs and namespaces).
//!
//! The whole binary runs under one counting global allocator (`common::alloc`), which counts
//! only the threads a test marks, never the harness's other test threads; each test holds
//! `alloc::exclusive()` while it counts, so the tests count one at a time, each from zero.
//! A binary of their own: the allocator of the other test binaries stays the system's.

#[path = "../common/mod.rs"]
mod common;

mod alloc_census;
mod alloc_daemon;
mod drivers_alloc;
mod health_alloc;

#[global_allocator]
static GLOBAL: common::alloc::Counting = common::alloc::Counting;
