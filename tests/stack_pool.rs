//! The stack pool: reuse, its bound, and release of deep pages. One test
//! per process section, run in order, because the counters are global.

mod support;

use gort::{
    coro::{Builder, Coroutine, Yielder},
    stack::{self, POOL_KEEP, POOL_LIMIT},
};

/// Recurses until `bytes` of stack below `start` have been written.
#[inline(never)]
fn touch_deep(start: usize, bytes: usize) -> u8 {
    let frame = std::hint::black_box([1u8; 4096]);
    if start - (&raw const frame as usize) >= bytes {
        return frame[3];
    }
    touch_deep(start, bytes) ^ frame[7]
}

#[test]
fn pool_reuses_bounds_and_releases() {
    // 1. A freed stack is reused: no new mapping for the next coroutine.
    let mut co = Coroutine::<(), (), ()>::new(|_, ()| ()).unwrap();
    co.resume(());
    let maps = stack::stats().maps;
    for _ in 0..100 {
        let mut co = Coroutine::<(), (), ()>::new(|_, ()| ()).unwrap();
        co.resume(());
    }
    assert_eq!(
        stack::stats().maps,
        maps,
        "finished coroutines' stacks were reused"
    );

    // 2. Beyond POOL_LIMIT, freed stacks are unmapped.
    let many: Vec<_> = (0..POOL_LIMIT + 200)
        .map(|_| Coroutine::<(), (), ()>::new(|_, ()| ()).unwrap())
        .collect();
    let mapped = stack::stats().guarded_mapped;
    assert!(mapped >= POOL_LIMIT + 200);
    let before = support::mapping_count();
    drop(many);
    let s = stack::stats();
    assert_eq!(s.pooled, POOL_LIMIT);
    assert_eq!(
        s.guarded_mapped, POOL_LIMIT,
        "the 200 beyond the bound were unmapped"
    );
    let after = support::mapping_count();
    assert!(
        before - after >= 2 * 200 - 10,
        "mappings went from {before} to {after}"
    );

    // 2b. trim_pool gives back what lies beyond `keep`, unmapping it.
    let before = support::mapping_count();
    let released = stack::trim_pool(POOL_KEEP, usize::MAX);
    assert_eq!(released, POOL_LIMIT - POOL_KEEP);
    let s = stack::stats();
    assert_eq!(s.pooled, POOL_KEEP);
    assert_eq!(s.guarded_mapped, POOL_KEEP);
    let after = support::mapping_count();
    assert!(
        before - after >= 2 * released - 10,
        "mappings went from {before} to {after}"
    );
    assert_eq!(
        stack::trim_pool(POOL_KEEP, usize::MAX),
        0,
        "nothing left to trim"
    );

    // 3. A stack used deeply gives its deep pages back when it is pooled.
    let rss0 = support::rss_bytes();
    let deep: Vec<_> = (0..64)
        .map(|_| {
            let mut c = Coroutine::<(), (), u8>::with_stack_size(1024 * 1024, |y, ()| {
                let m = 0u8;
                let r = touch_deep(&raw const m as usize, 900 * 1024);
                y.suspend(()); // stay alive (and deep-touched) until dropped
                r
            })
            .unwrap();
            c.resume(());
            c
        })
        .collect();
    let rss1 = support::rss_bytes();
    assert!(
        rss1 > rss0 + 64 * 800 * 1024,
        "deep use did not show in RSS: {rss0} -> {rss1}"
    );
    drop(deep);
    let rss2 = support::rss_bytes();
    assert!(
        rss2 < rss0 + 64 * 64 * 1024,
        "deep pages stayed resident: {rss0} -> {rss1} -> {rss2}"
    );

    // 4. Unguarded stacks come many to a mapping.
    let maps = stack::stats().maps;
    let ung: Vec<_> = (0..2000)
        .map(|_| {
            Builder::new()
                .stack_size(64 * 1024)
                .stack_guard(false)
                .build(|y: &Yielder<(), ()>, ()| y.suspend(()))
                .unwrap()
        })
        .collect();
    assert!(
        stack::stats().maps - maps <= 3,
        "2000 unguarded stacks took {} mappings",
        stack::stats().maps - maps
    );
    drop(ung);
}
