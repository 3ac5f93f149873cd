//! The bounded pool of free stacks, one list per (size, kind).
//!
//! One global lock for now; the scheduler adds per-P caches in front of it
//! (Go's stackcache) so the common spawn/exit path does not take it.

use std::sync::{
    Mutex,
    atomic::{AtomicUsize, Ordering},
};

use super::{POOL_LIMIT, Stack, StackSpec};

static POOL: Mutex<Vec<(StackSpec, Vec<Stack>)>> = Mutex::new(Vec::new());
static POOLED: AtomicUsize = AtomicUsize::new(0);
/// Calls of `take` ever (hits and misses): whether the pool is in use.
static TAKES: AtomicUsize = AtomicUsize::new(0);

/// How many times a stack was asked of the pool; sysmon trims a pool
/// whose count stands still.
pub(crate) fn takes() -> usize {
    TAKES.load(Ordering::Relaxed)
}

pub(super) fn pooled() -> usize {
    POOLED.load(Ordering::Relaxed)
}

/// A pooled stack of exactly `spec`, if there is one.
pub(crate) fn take(spec: StackSpec) -> Option<Stack> {
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    // Written only under the pool lock: a plain increment, no locked op.
    TAKES.store(TAKES.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    let s = pool.iter_mut().find(|(k, _)| *k == spec)?.1.pop()?;
    POOLED.fetch_sub(1, Ordering::Relaxed);
    Some(s)
}

/// Gives a stack back for reuse; beyond [`POOL_LIMIT`] it is released.
pub(crate) fn put(stack: Stack) {
    stack.release_deep_pages();
    let spec = stack.spec();
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    let list = match pool.iter().position(|(k, _)| *k == spec) {
        Some(i) => &mut pool[i].1,
        None => {
            pool.push((spec, Vec::new()));
            &mut pool.last_mut().expect("just pushed").1
        }
    };
    if list.len() < POOL_LIMIT {
        list.push(stack);
        POOLED.fetch_add(1, Ordering::Relaxed);
    } else {
        drop(pool);
        drop(stack);
    }
}

/// Releases pooled stacks beyond `keep` per spec, at most `max`; the
/// releases happen after the lock is dropped.
pub(super) fn trim(keep: usize, max: usize) -> usize {
    let stacks: Vec<Stack> = {
        let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        for (_, list) in pool.iter_mut() {
            let n = list.len().saturating_sub(keep).min(max - out.len());
            out.extend(list.drain(list.len() - n..));
        }
        out
    };
    POOLED.fetch_sub(stacks.len(), Ordering::Relaxed);
    stacks.len()
}

/// Releases every pooled stack; returns how many. Called when a new
/// mapping fails, so idle stacks do not hold mappings a live one needs.
pub(super) fn drain() -> usize {
    trim(0, usize::MAX)
}
