//! One counting global allocator for the allocation tests: each test binary installs it with
//! `#[global_allocator] static GLOBAL: Counting = Counting;` and marks the threads it wants
//! counted with `count_this_thread(Some(slot))`. Calls and bytes are kept per slot; after
//! `arm_trap`, the first counted allocation records its backtrace for the failure message.
//!
//! Only marked threads count, so the harness's other test threads never add to a slot; but
//! the slots are the whole process's, so a test that counts holds `exclusive()` from before
//! it marks a thread until it has read its figures: one counting test at a time, each
//! starting from zero.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Slots (e.g. one per daemon thread).
pub const SLOTS: usize = 2;

static CALLS: [AtomicU64; SLOTS] = [AtomicU64::new(0), AtomicU64::new(0)];
static BYTES: [AtomicU64; SLOTS] = [AtomicU64::new(0), AtomicU64::new(0)];
static TRAP: AtomicBool = AtomicBool::new(false);
static FIRST: Mutex<Option<String>> = Mutex::new(None);

thread_local! {
    static SLOT: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The counters for the calling test alone: waits until no other test of this process holds
/// them, then zeroes every slot and disarms the trap. Keep the guard until the figures are read.
pub fn exclusive() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    // A test that failed while holding the counters leaves them to the next one all the same.
    let guard = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    for counter in CALLS.iter().chain(&BYTES) {
        counter.store(0, Ordering::SeqCst);
    }
    TRAP.store(false, Ordering::SeqCst);
    if let Ok(mut first) = FIRST.lock() {
        *first = None;
    }
    guard
}

/// Counts this thread's allocations in `slot` (`None`: stop counting them).
pub fn count_this_thread(slot: Option<usize>) {
    SLOT.with(|s| s.set(slot));
}

/// Allocation calls counted in `slot` so far.
pub fn calls(slot: usize) -> u64 {
    CALLS[slot].load(Ordering::SeqCst)
}

/// Bytes asked for in `slot` so far.
pub fn bytes(slot: usize) -> u64 {
    BYTES[slot].load(Ordering::SeqCst)
}

/// Allocation calls counted in every slot.
pub fn total_calls() -> u64 {
    (0..SLOTS).map(calls).sum()
}

/// The next counted allocation records its backtrace (see `first_trace`).
pub fn arm_trap() {
    TRAP.store(true, Ordering::SeqCst);
}

/// The backtrace of the first allocation counted after `arm_trap`, if any.
pub fn first_trace() -> Option<String> {
    FIRST.lock().ok().and_then(|f| f.clone())
}

fn count(size: usize) {
    let Some(slot) = SLOT.try_with(Cell::get).ok().flatten() else { return };
    CALLS[slot].fetch_add(1, Ordering::SeqCst);
    BYTES[slot].fetch_add(size as u64, Ordering::SeqCst);
    if TRAP.swap(false, Ordering::SeqCst) {
        // Not counted: the backtrace allocates too.
        SLOT.with(|s| s.set(None));
        let trace = std::backtrace::Backtrace::force_capture().to_string();
        if let Ok(mut first) = FIRST.lock() {
            *first = Some(trace);
        }
        SLOT.with(|s| s.set(Some(slot)));
    }
}

/// The counting allocator: forwards everything to the system allocator.
pub struct Counting;

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: forwarded with the caller's pointer and layouts.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}
