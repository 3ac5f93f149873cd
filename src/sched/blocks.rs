//! Blocks for task cells (`task.rs`): per-P caches in front of one
//! process-wide pool, and the chunks the pool carves new blocks from.
//!
//! # Classes
//! A cell of at most `CLASSES` bytes (aligned to at most `CLASS_ALIGN`) is
//! given a block of its class's size, so a freed block can serve any later
//! spawn of that class. Larger or over-aligned cells go to the allocator.
//!
//! # Where a block goes
//! ```text
//!   chunk ──carve a batch──▶ pool ◀──batch──▶ P's cache ──alloc──▶ cell
//!                             ▲                   ▲                  │
//!                             └─ freed off a P ───┴──── freed on a P ┘
//! ```
//! A spawn takes a block from its P's cache (owner only, no atomics);
//! an empty cache takes a batch from the pool, which carves new blocks
//! from its current chunk when it has none. A block freed on an M that
//! holds a P goes to that P's cache; past `CACHE_MAX`, half moves to the
//! pool. A block freed anywhere else (a plain thread, a dropped runtime)
//! goes to the pool, as do the caches of a dropped runtime's Ps.
//!
//! # Chunks, and why not the allocator
//! Chunks are anonymous mappings, from 64 KiB doubling to 2 MiB, so a
//! small program stays small and a spawn storm takes few mappings. They
//! are never unmapped: the pool keeps every block for reuse, for as long
//! as the process lives, so blocks stay valid for a `JoinHandle` that
//! outlives its runtime, and a block freed by any thread has a home. The
//! memory kept is the most cells ever alive at once (32 bytes each for a
//! closure that captures nothing), as Go keeps every goroutine's `g` it
//! ever allocated.
//!
//! With glibc's malloc, a thread's fresh memory comes from its arena's
//! heap, which grows one page per `mprotect` call: a million cells kept
//! alive (the handle-keeping spawn benchmark) made 11,712 `mprotect`
//! calls on the spawning M; from the chunks, none. Measured (2026-11-24,
//! old and new binaries alternating, 11 runs each): the handle-keeping
//! spawn 0.51x the time (141 -> 69 ns per coroutine), Go's program
//! (`gort-wg`) 0.77x.
//!
//! The chunks are not marked for transparent huge pages: on this VM a
//! huge page's first touch was sometimes far slower than 512 small ones
//! (the kernel zeroing 2 MiB at once took half the spawning M's samples),
//! and often so right after another program had used and freed much
//! memory: the handle-keeping spawn, each sample run just after tokio's,
//! 97.8 ns median with huge pages (55-148) against 69.1 ns without
//! (58-84), 11 runs each; alone, 50 against 59 ns, with the same slow
//! tail.

use std::{
    alloc::{self, Layout},
    ptr::NonNull,
};

use super::{m::this_m, p::P};
use crate::lock::Lock;

/// The size classes (bytes).
const CLASSES: [usize; 4] = [32, 48, 64, 128];
const CLASS_ALIGN: usize = 16;
/// Blocks a P keeps per class before giving half to the pool.
const CACHE_MAX: usize = 256;
/// Blocks an empty cache takes from the pool at once.
const BATCH: usize = CACHE_MAX / 2;
/// The first chunk's size; each next one doubles, up to `CHUNK_MAX`.
const CHUNK_MIN: usize = 64 << 10;
const CHUNK_MAX: usize = 2 << 20;

/// A P's free blocks, by class (owner only).
#[derive(Default)]
pub(crate) struct BlockCache {
    free: [Vec<Block>; CLASSES.len()],
}

/// A free block (plain memory owned by whoever holds it).
#[derive(Clone, Copy)]
struct Block(NonNull<u8>);

// SAFETY: a free block is plain memory in a chunk that is never unmapped;
// it moves between threads with its owner (a cache, the pool).
unsafe impl Send for Block {}

/// The pool's blocks by class, and the chunk it carves from.
struct Pool {
    free: [Vec<Block>; CLASSES.len()],
    /// The unused rest of the current chunk.
    next: usize,
    end: usize,
    /// Size of the next chunk to map.
    chunk: usize,
}

static POOL: Lock<Pool> = Lock::new(Pool {
    free: [const { Vec::new() }; CLASSES.len()],
    next: 0,
    end: 0,
    chunk: CHUNK_MIN,
});

/// The class of a layout, if its blocks are pooled.
fn class_of(layout: Layout) -> Option<usize> {
    if layout.align() > CLASS_ALIGN {
        return None;
    }
    CLASSES.iter().position(|&c| layout.size() <= c)
}

/// A block for `layout`: from `p`'s cache (`p`: the caller's own P, if it
/// has one), the pool, or the allocator (cells too large to pool).
pub(crate) fn alloc(p: Option<&P>, layout: Layout) -> NonNull<u8> {
    let Some(class) = class_of(layout) else {
        // SAFETY: a cell is never zero-sized (its header is not).
        let b = unsafe { alloc::alloc(layout) };
        return NonNull::new(b).unwrap_or_else(|| alloc::handle_alloc_error(layout));
    };
    let Some(p) = p else {
        let mut pool = POOL.lock();
        return match pool.free[class].pop() {
            Some(b) => b.0,
            None => carve(&mut pool, class).0,
        };
    };
    // SAFETY: the caller owns p.
    let cache = &mut unsafe { p.local() }.blocks.free[class];
    if let Some(b) = cache.pop() {
        return b.0;
    }
    refill(class, cache);
    cache.pop().expect("a refilled cache has blocks").0
}

/// Fills an empty cache with a batch of `class`: from the pool, then
/// carved.
#[cold]
fn refill(class: usize, cache: &mut Vec<Block>) {
    let mut pool = POOL.lock();
    let free = &mut pool.free[class];
    let n = free.len().min(BATCH);
    cache.extend(free.drain(free.len() - n..));
    while cache.len() < BATCH {
        cache.push(carve(&mut pool, class));
    }
}

/// A new block of `class` from the pool's chunk (a new chunk when it is
/// used up).
fn carve(pool: &mut Pool, class: usize) -> Block {
    let size = CLASSES[class];
    if pool.next + size > pool.end {
        new_chunk(pool);
    }
    // SAFETY: next..end is unused memory of a live chunk, never null.
    let b = Block(unsafe { NonNull::new_unchecked(pool.next as *mut u8) });
    pool.next += size;
    b
}

/// Maps the pool's next chunk (the rest of the current one is dropped:
/// at most one block's worth).
fn new_chunk(pool: &mut Pool) {
    let bytes = pool.chunk;
    let map = memmap2::MmapOptions::new()
        .len(bytes)
        .map_anon()
        .unwrap_or_else(|e| {
            crate::util::fatal(&format!("runtime: cannot map memory for task cells: {e}"))
        });
    let start = map.as_ptr() as usize;
    // Never unmapped (see the module comment).
    std::mem::forget(map);
    // (A mapping is page-aligned: every class's alignment holds.)
    pool.next = start;
    pool.end = start + bytes;
    pool.chunk = (bytes * 2).min(CHUNK_MAX);
}

/// Gives back a block allocated by [`alloc`] for `layout`: into the cache
/// of the P this thread runs with, if it is an M holding one, else to the
/// pool.
///
/// # Safety
/// `b` came from `alloc(_, layout)`, its contents are dropped, and nobody
/// uses it any more.
pub(crate) unsafe fn free(b: NonNull<u8>, layout: Layout) {
    let Some(class) = class_of(layout) else {
        // SAFETY: allocated on its own with `layout`.
        unsafe { alloc::dealloc(b.as_ptr(), layout) };
        return;
    };
    // (A P in a blocking call may be retaken by sysmon meanwhile: p_of
    // gives only a running one, ours to touch.)
    if let Some(m) = this_m()
        && let Some(p) = m.sched().p_of(m)
    {
        // SAFETY: this M owns p.
        let cache = &mut unsafe { p.local() }.blocks.free[class];
        cache.push(Block(b));
        if cache.len() > CACHE_MAX {
            give_back(class, cache, CACHE_MAX / 2);
        }
        return;
    }
    POOL.lock().free[class].push(Block(b));
}

/// Moves `blocks` of `class` beyond the first `keep` to the pool.
#[cold]
fn give_back(class: usize, blocks: &mut Vec<Block>, keep: usize) {
    let mut pool = POOL.lock();
    pool.free[class].extend(blocks.drain(keep.min(blocks.len())..));
}

impl Drop for BlockCache {
    fn drop(&mut self) {
        for (class, blocks) in self.free.iter_mut().enumerate() {
            if !blocks.is_empty() {
                give_back(class, blocks, 0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_of_every_class_are_aligned_and_do_not_overlap() {
        for (class, &size) in CLASSES.iter().enumerate() {
            let layout = Layout::from_size_align(size - 8, 8).unwrap();
            assert_eq!(class_of(layout), Some(class));
            // More than a chunk's worth, across the pool and new chunks.
            let n = 3 * CHUNK_MIN / size;
            let bs: Vec<_> = (0..n).map(|_| alloc(None, layout)).collect();
            for (i, b) in bs.iter().enumerate() {
                assert_eq!(b.as_ptr() as usize % CLASS_ALIGN, 0);
                // SAFETY: a block of `size` bytes is ours until freed.
                unsafe { b.as_ptr().write_bytes(i as u8, size) };
            }
            for (i, b) in bs.iter().enumerate() {
                // SAFETY: as above.
                let got = unsafe { std::slice::from_raw_parts(b.as_ptr(), size) };
                assert!(
                    got.iter().all(|&x| x == i as u8),
                    "block {i} overlaps another"
                );
            }
            for b in bs {
                // SAFETY: allocated above for `layout`, no longer used.
                unsafe { free(b, layout) };
            }
        }
    }

    #[test]
    fn large_or_overaligned_cells_go_to_the_allocator() {
        assert_eq!(class_of(Layout::from_size_align(129, 8).unwrap()), None);
        assert_eq!(class_of(Layout::from_size_align(32, 32).unwrap()), None);
        let layout = Layout::from_size_align(4096, 64).unwrap();
        let b = alloc(None, layout);
        assert_eq!(b.as_ptr() as usize % 64, 0);
        // SAFETY: allocated above for `layout`.
        unsafe { free(b, layout) };
    }
}
