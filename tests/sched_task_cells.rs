//! Task cells (the one block a spawn allocates): reused through the P
//! caches, freed exactly once with what they hold, whatever their size,
//! alignment, and the thread that lets go of them last.
//!
//! This binary counts the allocations of the cell size classes with a
//! global allocator, so it runs its tests one at a time (a mutex).

use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

/// Counts allocations of 64- and 128-byte blocks aligned to 16 (the task
/// cell classes), from every thread.
struct Counting;

static CLASS_ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if (l.size() == 64 || l.size() == 128) && l.align() == 16 {
            CLASS_ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: forwarded.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// One test at a time: the allocation count is process-wide.
static SERIAL: Mutex<()> = Mutex::new(());

fn rt(procs: usize) -> gort::Runtime {
    gort::Runtime::builder()
        .procs(procs)
        .build()
        .expect("build a runtime")
}

#[test]
fn finished_coroutines_cells_serve_the_next_spawns() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Batches of 100 spawned and joined, 200 times: once the first batches
    // have freed their cells into the P's cache, later spawns take them
    // from there instead of the allocator.
    let allocs = rt(1).block_on(|| {
        let before = CLASS_ALLOCS.load(Ordering::Relaxed);
        for round in 0..200u64 {
            let hs: Vec<_> = (0..100u64).map(|i| gort::go!(move || round * i)).collect();
            for (i, h) in hs.into_iter().enumerate() {
                assert_eq!(h.join().unwrap(), round * i as u64);
            }
        }
        CLASS_ALLOCS.load(Ordering::Relaxed) - before
    });
    // 20,000 spawns. Without reuse each is one class-sized allocation
    // (20,000 measured with the cache bypassed; about 100 with it).
    assert!(
        allocs < 2_000,
        "{allocs} cell-sized allocations for 20,000 spawns: cells are not reused"
    );
}

#[test]
fn cells_freed_on_another_processor_come_back_through_the_pool() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Two Ps: coroutines mostly finish on the P that did not spawn them,
    // with their handles dropped at once (Go's fire-and-forget `go`), so
    // their cells are freed far from the spawner and must travel back.
    let allocs = rt(2).block_on(|| {
        let done = Arc::new(AtomicUsize::new(0));
        let before = CLASS_ALLOCS.load(Ordering::Relaxed);
        for round in 1..=100usize {
            for _ in 0..1_000 {
                let done = done.clone();
                drop(gort::go!(move || {
                    done.fetch_add(1, Ordering::Relaxed);
                }));
            }
            while done.load(Ordering::Relaxed) < round * 1_000 {
                gort::yield_now();
            }
        }
        CLASS_ALLOCS.load(Ordering::Relaxed) - before
    });
    // 100,000 with the cache bypassed; about 1,200 with it.
    assert!(
        allocs < 20_000,
        "{allocs} cell-sized allocations for 100,000 detached spawns on 2 Ps"
    );
}

#[test]
fn what_a_cell_holds_is_dropped_once_whoever_lets_go_last() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let rt = rt(2);
    // Results never joined (the handle dropped before or after the end),
    // results joined on a plain thread, closures never run (the runtime
    // dropped first): each value is dropped exactly once.
    let d = drops.clone();
    let plain = rt.block_on(move || {
        let mut kept = Vec::new();
        for i in 0..300 {
            let d2 = d.clone();
            let h = gort::go!(move || Counted(d2));
            match i % 3 {
                0 => drop(h),
                1 => kept.push(h),
                _ => {
                    let v = h.join().unwrap();
                    drop(v);
                }
            }
        }
        kept
    });
    // Joined on this plain thread, after the coroutines ran.
    for h in plain {
        drop(h.join().unwrap());
    }
    // Spawned from a plain thread; some never run before the drop.
    let mut late = Vec::new();
    for _ in 0..100 {
        let d2 = drops.clone();
        let captured = Counted(drops.clone());
        late.push(rt.spawn(move || {
            let _keep = &captured;
            Counted(d2)
        }));
    }
    drop(rt);
    let mut ran = 0;
    for h in late {
        if let Ok(v) = h.join() {
            ran += 1;
            drop(v);
        }
    }
    // 300 results + per late spawn: its captured value, plus its result if
    // it ran.
    assert_eq!(drops.load(Ordering::SeqCst), 300 + 100 + ran);
}

#[test]
fn large_and_over_aligned_closures_and_results() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    #[repr(align(64))]
    #[derive(Clone, Copy, PartialEq, Debug)]
    struct Aligned([u8; 64]);
    let out = rt(2).block_on(|| {
        let big = [7u64; 64]; // 512 bytes captured: beyond every class
        let al = Aligned([3; 64]); // alignment 64: beyond the classes'
        let h1 = gort::go!(move || big.iter().sum::<u64>());
        let h2 = gort::go!(move || {
            assert_eq!(&al as *const Aligned as usize % 64, 0, "misaligned");
            al
        });
        let h3 = gort::go!(move || [1u8; 1000]);
        (h1.join().unwrap(), h2.join().unwrap(), h3.join().unwrap())
    });
    assert_eq!(out.0, 7 * 64);
    assert_eq!(out.1, Aligned([3; 64]));
    assert_eq!(out.2, [1u8; 1000]);
}
