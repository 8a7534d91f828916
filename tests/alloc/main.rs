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

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use common::pair::Pair;
use hapair::config::{self, LoadOptions};

/// The two nodes of a `Pair` as event loops in this process (`event_loop::run_until`), each
/// on a thread inside its node's namespace, loaded as `hapair run` loads its configuration
/// (ownership judged too), each counting its allocations in its slot (alpha 0, beta 1). Two
/// daemon threads in one process are a test device; the product runs one per process.
/// Stopped by `stop`; on drop too (a test that failed leaves no loop running in the process).
struct Loops {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<i32>>,
}

impl Loops {
    fn start(pair: &Pair) -> Loops {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for (slot, node) in pair.nodes.iter().enumerate() {
            let opts = LoadOptions {
                config: pair.conf.clone(),
                cmdline: node.cmdline.clone(),
                check_ownership: true,
                ..LoadOptions::default()
            };
            let loaded = config::load(&opts).unwrap_or_else(|e| panic!("config: {e}"));
            let stop = stop.clone();
            threads.push(common::spawn_in(&node.ns, move || {
                common::alloc::count_this_thread(Some(slot));
                let code = hapair::event_loop::run_until(
                    &loaded.config,
                    &loaded.boot,
                    &loaded.authkey,
                    &opts,
                    &stop,
                );
                common::alloc::count_this_thread(None);
                code
            }));
        }
        Loops { stop, threads }
    }

    /// Stops both loops; fails unless each ended with 0.
    fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let code = t.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            assert_eq!(code, 0, "a daemon thread ended with {code}");
        }
    }
}

impl Drop for Loops {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The fewest frames node `i` has received on any of its links (from its control socket;
/// 0 while it does not answer).
fn frames_rx(pair: &Pair, i: usize) -> u64 {
    let Some(s) = pair.socket_status(i) else { return 0 };
    let links = s["peer"]["links"].as_array().cloned().unwrap_or_default();
    links.iter().filter_map(|l| l["frames_rx"].as_u64()).min().unwrap_or(0)
}
