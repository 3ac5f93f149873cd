//! The stack pool: reuse, its bound, and release of deep pages. The
//! sections run in order in one process, because the counters are global:
//! a child process per guard mechanism (kernel guard regions in shared
//! slabs, and a mapping per stack with an mprotected guard page).

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

const NAME: &str = "pool_reuses_bounds_and_releases";

#[test]
fn pool_reuses_bounds_and_releases() {
    if !support::is_child(NAME) {
        support::assert_child_succeeds(NAME);
        support::assert_child_succeeds_with(NAME, &[support::MPROTECT_GUARDS]);
        return;
    }
    let regions = stack::guard_regions();
    if std::env::var("GORT_DEBUG").is_ok() {
        assert!(!regions, "GORT_DEBUG=guardpages=mprotect is obeyed");
    }
    eprintln!("guard regions: {regions}");
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

    // 2. Beyond POOL_LIMIT, freed stacks are released: a stack of its own
    // is unmapped, a slab stack goes back to its slab.
    let maps = stack::stats().maps;
    let many: Vec<_> = (0..POOL_LIMIT + 200)
        .map(|_| Coroutine::<(), (), ()>::new(|_, ()| ()).unwrap())
        .collect();
    let mapped = stack::stats().guarded_mapped;
    assert!(mapped >= POOL_LIMIT + 200);
    if regions {
        // Slabs double up to 252 stacks of 256 KiB: ~70 mappings, not 33,000.
        let made = stack::stats().maps - maps;
        assert!(
            made < 100,
            "{} guarded stacks took {made} mappings",
            many.len()
        );
    }
    let before = support::mapping_count();
    drop(many);
    let s = stack::stats();
    assert_eq!(s.pooled, POOL_LIMIT);
    assert_eq!(
        s.guarded_mapped, POOL_LIMIT,
        "the 200 beyond the bound were released"
    );
    let after = support::mapping_count();
    if regions {
        // Released to their slab: the next 200 reuse them, no new mapping.
        let maps = stack::stats().maps;
        let again: Vec<_> = (0..POOL_LIMIT + 200)
            .map(|_| Coroutine::<(), (), ()>::new(|_, ()| ()).unwrap())
            .collect();
        assert_eq!(
            stack::stats().maps,
            maps,
            "released slab stacks were reused"
        );
        drop(again);
    } else {
        assert!(
            before - after >= 2 * 200 - 10,
            "mappings went from {before} to {after}"
        );
    }

    // 2b. trim_pool gives back what lies beyond `keep`.
    let before = support::mapping_count();
    let released = stack::trim_pool(POOL_KEEP, usize::MAX);
    assert_eq!(released, POOL_LIMIT - POOL_KEEP);
    let s = stack::stats();
    assert_eq!(s.pooled, POOL_KEEP);
    assert_eq!(s.guarded_mapped, POOL_KEEP);
    let after = support::mapping_count();
    if !regions {
        assert!(
            before - after >= 2 * released - 10,
            "mappings went from {before} to {after}"
        );
    }
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

    // 4. Unguarded stacks come many to a mapping (slabs of 8, 16, 32...
    // stacks: 2,000 take at most 9, whatever the previous sections left).
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
        stack::stats().maps - maps <= 9,
        "2000 unguarded stacks took {} mappings",
        stack::stats().maps - maps
    );
    drop(ung);
}
