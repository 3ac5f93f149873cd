//! P: the right to run Gs. Holds a local run queue, a `runnext` slot and
//! caches of free Gs and stacks.
//!
//! # P status
//! ```text
//!   Idle ──acquirep──▶ Running ──entersyscall──▶ Syscall
//!    ▲                   │  ▲                       │
//!    └────releasep───────┘  └──exitsyscall (CAS)────┤
//!    └──────────── sysmon retake (CAS) ─────────────┘
//! ```
//! - `Idle`: on the idle list (`Sched::pidle`); nobody runs it.
//! - `Running`: owned by exactly one M, which alone touches `local`.
//! - `Syscall`: its M is inside `blocking(f)`; the M still owns it, but
//!   sysmon may take it with a CAS to `Idle` and hand it to another M. The
//!   M takes it back with the opposite CAS; whoever wins the CAS owns it.
//!
//! Other Ms only ever touch a P through `stealer`, `runnext` (a CAS steal)
//! and the atomic counters.
//!
//! # A lone P
//! A runtime with one P has no thieves. Its owner therefore moves Gs in
//! and out of `runnext` with plain loads and stores instead of the swap
//! and compare-and-swap that race with thieves elsewhere (the swap's
//! ordering before wakep's loads is moot: there is no other P to wake).
//! Ownership still moves between Ms (sysmon's retake, a wired G's
//! hand-off) only through the P's status and idle list, whose atomics
//! order those accesses.
//!
//! Nor does a G that yields on a lone P go through the stealable queue (a
//! locked instruction to take it out again): it waits in `runtail`, a
//! slot that stands for the end of the local queue, and a yield that finds
//! only the slot's G waiting swaps places with it (`Sched::yield_swap` on
//! g0, or `Sched::yield_next` straight from G to G).
//! The owner only loads and stores the slot; other threads only read it
//! to see that the P has work. The order stays FIFO: a G pushed to the
//! queue while the slot is full first moves the slot's G in, and the slot
//! is taken only once the queue is empty. With more than one P the slot
//! is never used, so every queued G stays stealable.

use std::{
    cell::UnsafeCell,
    ptr,
    sync::atomic::{AtomicPtr, AtomicU8, AtomicU32, AtomicU64, Ordering},
};

use crossbeam_deque::{Stealer, Worker};
use crossbeam_utils::CachePadded;

use super::{
    g::{G, GRef},
    runnable::Runnable,
};
use crate::stack::Stack;

/// P status; see the module comment.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PStatus {
    Idle = 0,
    Running = 1,
    Syscall = 2,
}

/// Local run queue length above which half of it moves to the global queue
/// (Go's runqputslow): a backstop against a runaway burst, not a working
/// bound. Go spills at 256 because that is the size of its fixed ring;
/// crossbeam's deque grows, and idle Ms steal from it anyway. Each spilled
/// G costs an owner pop (a locked instruction) and an `Injector` push, and
/// the `Injector`'s blocks are allocated by the spilling thread and freed
/// by the one that takes them: in a spawning loop whose coroutines run on
/// the other P that was the spawn path's largest cost, glibc's arena lock
/// taken from both sides (2,099 context switches per million spawns in
/// `perf stat`; `strace -f -k` of 300,000: 1,308 of the 1,334 futex waits
/// outside sysmon were on that lock). 256 -> 4,096 (2026-11-23): timers
/// 0.90x wall, 0.88x CPU, spawn 0.80x. 4,096 -> 2^20 (2026-11-24): Go's
/// spawn program (`spawn --side gort-wg`) 0.67x, 152 context switches,
/// one P spawning a million 0.70x, timers 1.01x wall, 0.92x CPU.
pub(crate) const LOCAL_QUEUE_MAX: usize = 1 << 20;

/// Most Gs one take from the global queue moves into a local queue (Go:
/// half its ring, 128).
pub(crate) const GLOBAL_BATCH_MAX: usize = 2048;

/// Free Gs a P keeps for itself before giving them to the global list
/// (each may keep a default stack, see `Sched::gdead`: with the stack
/// cache, a P holds at most `GFREE_MAX + STACK_CACHE_MAX` free stacks).
pub(crate) const GFREE_MAX: usize = 64;
/// Free stacks a P keeps before returning them to the global pool.
pub(crate) const STACK_CACHE_MAX: usize = 32;

/// A P sits on cache lines of its own, and its owner-only part on lines
/// of their own within it: the Ps are allocated side by side, and with
/// `Sched::ps` packed, one P's owner-only free lists shared a 64-byte
/// line with the previous P's `status`, which every spawn on that P
/// reads, so two Ms took the line from each other on every spawn and
/// every exit (perf: 55% of `gdead`'s samples on the push to its free
/// list). 128 bytes (`CachePadded`): the adjacent-line prefetcher
/// moves lines in pairs.
/// (Moving the owner-written counters off the lines other Ms read, too,
/// measured nothing: 1.03x, 11 runs.)
#[repr(align(128))]
pub(crate) struct P {
    pub(crate) id: usize,
    /// The runtime's only P: nobody steals from it (see "A lone P").
    pub(crate) lone: bool,
    pub(crate) status: AtomicU8,
    /// Owner-only state.
    local: CachePadded<UnsafeCell<PLocal>>,
    /// Steal handle of `PLocal::runq`, used by other Ms.
    pub(crate) stealer: Stealer<Runnable>,
    /// The yielded G behind the local queue when this is the only P (see
    /// the module comment); null otherwise. Written only by the owner.
    pub(crate) runtail: AtomicPtr<G>,
    /// A G (or task, see runnable.rs) to run next, ahead of the queue: a
    /// `Runnable`'s word. Written by the owner (swap) and by thieves (CAS
    /// to null); AcqRel on both sides hands it over. On a lone P only the
    /// owner touches it, with plain loads and stores.
    pub(crate) runnext: AtomicPtr<u8>,
    /// Counts schedules that did not inherit a time slice; sysmon reads it.
    pub(crate) schedtick: AtomicU32,
    /// Counts `blocking` calls; sysmon reads it to see a call is the same.
    pub(crate) syscalltick: AtomicU32,
    /// When the current G started running (ns since runtime start), for
    /// sysmon's long-running report.
    pub(crate) run_since: AtomicU64,
    /// Gs spawned and finished on this P (owner-written, read by schedtrace).
    pub(crate) spawned: AtomicU64,
    pub(crate) exited: AtomicU64,
    /// Gs this P has switched to (context switches), owner-written.
    pub(crate) switches: AtomicU64,
    /// This P's timer heap (locked; other Ms run its due timers too).
    pub(crate) timers: crate::time::Timers,
}

/// Adds one to a counter that only its owner writes: a plain load and
/// store, no locked instruction (readers may see a slightly old value).
#[inline(always)]
pub(crate) fn bump(c: &AtomicU64) {
    c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

/// [`bump`] for a 32-bit counter (wrapping).
#[inline(always)]
pub(crate) fn bump32(c: &AtomicU32) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
}

/// The part of a P that only its owner touches.
pub(crate) struct PLocal {
    pub(crate) runq: Worker<Runnable>,
    pub(crate) gfree: Vec<GRef>,
    pub(crate) stacks: Vec<Stack>,
    /// Freed task cells, for this P's next spawns.
    pub(crate) blocks: super::blocks::BlockCache,
    /// Consecutive schedules taken from `runnext` (inheriting the slice).
    pub(crate) runnext_streak: u32,
    /// Random state for the steal order.
    pub(crate) rand: u64,
    /// Coroutine ids reserved for this P: `next_id..id_end`.
    pub(crate) next_id: u64,
    pub(crate) id_end: u64,
}

// SAFETY: `local` is only touched by the P's owner (see the module
// comment); everything else is atomic or Sync.
unsafe impl Sync for P {}
// SAFETY: as above.
unsafe impl Send for P {}

impl P {
    pub(crate) fn new(id: usize, lone: bool) -> P {
        let runq = Worker::new_fifo();
        P {
            id,
            lone,
            status: AtomicU8::new(PStatus::Idle as u8),
            stealer: runq.stealer(),
            local: CachePadded::new(UnsafeCell::new(PLocal {
                runq,
                gfree: Vec::new(),
                stacks: Vec::new(),
                blocks: Default::default(),
                runnext_streak: 0,
                next_id: 0,
                id_end: 0,
                rand: 0x9e37_79b9_7f4a_7c15 ^ (id as u64 + 1).wrapping_mul(0xbf58_476d_1ce4_e5b9),
            })),
            runnext: AtomicPtr::new(ptr::null_mut()),
            runtail: AtomicPtr::new(ptr::null_mut()),
            schedtick: AtomicU32::new(0),
            syscalltick: AtomicU32::new(0),
            run_since: AtomicU64::new(0),
            spawned: AtomicU64::new(0),
            exited: AtomicU64::new(0),
            switches: AtomicU64::new(0),
            timers: crate::time::Timers::default(),
        }
    }

    /// The owner-only state.
    ///
    /// # Safety
    /// The caller's M owns this P and holds no other reference to it.
    #[inline(always)]
    #[allow(
        clippy::mut_from_ref,
        reason = "ownership is by protocol, documented above"
    )]
    pub(crate) unsafe fn local(&self) -> &mut PLocal {
        // SAFETY: forwarded from this function's contract.
        unsafe { &mut *self.local.get() }
    }

    #[inline]
    pub(crate) fn status(&self) -> PStatus {
        match self.status.load(Ordering::Acquire) {
            0 => PStatus::Idle,
            1 => PStatus::Running,
            _ => PStatus::Syscall,
        }
    }

    /// Whether this P has any G queued (local queue, runnext or runtail).
    pub(crate) fn has_work(&self) -> bool {
        !self.stealer.is_empty()
            || !self.runnext.load(Ordering::Acquire).is_null()
            || !self.runtail.load(Ordering::Acquire).is_null()
    }

    /// Queue length as seen from outside (for schedtrace).
    pub(crate) fn queued(&self) -> usize {
        self.stealer.len()
            + usize::from(!self.runnext.load(Ordering::Relaxed).is_null())
            + usize::from(!self.runtail.load(Ordering::Relaxed).is_null())
    }

    /// Puts `r` in `runnext` (owner only); returns the word it displaced,
    /// or null. SeqCst elsewhere: Release hands `g` to whoever takes it,
    /// Acquire takes the old occupant, and being SeqCst it orders this
    /// store before wakep's loads (see `Sched::wakep_after_runnext`). A
    /// lone P has no thief to race and no other P to wake: a plain load and
    /// store.
    #[inline]
    pub(crate) fn put_runnext(&self, r: Runnable) -> *mut u8 {
        if self.lone {
            let old = self.runnext.load(Ordering::Relaxed);
            self.runnext.store(r.as_ptr(), Ordering::Release);
            return old;
        }
        self.runnext.swap(r.as_ptr(), Ordering::SeqCst)
    }

    /// Takes the word in `runnext` (owner only): null if it was empty or a
    /// thief took it first (thieves only ever clear it, so a non-null
    /// result is the one that was there).
    #[inline]
    pub(crate) fn take_runnext(&self) -> *mut u8 {
        if self.lone {
            let g = self.runnext.load(Ordering::Relaxed);
            self.runnext.store(ptr::null_mut(), Ordering::Relaxed);
            return g;
        }
        self.runnext.swap(ptr::null_mut(), Ordering::AcqRel)
    }

    /// Takes the G in `runtail`, if any (owner only).
    #[inline]
    pub(crate) fn take_runtail(&self) -> Option<GRef> {
        let g = self.runtail.load(Ordering::Relaxed);
        if g.is_null() {
            return None;
        }
        self.runtail.store(ptr::null_mut(), Ordering::Relaxed);
        // SAFETY: runtail holds only pointers of live Gs, and only the
        // owner takes them.
        Some(unsafe { GRef::from_ptr(g) })
    }

    /// Puts `g` in `runtail` (owner of a lone P only); returns the G it
    /// displaced, which the caller queues ahead of it.
    #[inline]
    pub(crate) fn replace_runtail(&self, g: GRef) -> Option<GRef> {
        debug_assert!(self.lone, "the tail slot is for a lone P");
        let old = self.take_runtail();
        self.runtail.store(g.as_ptr(), Ordering::Release);
        old
    }
}

impl PLocal {
    /// A coroutine id, from a batch reserved for this P (Go's goidcache),
    /// so spawning does not touch the global counter every time.
    pub(crate) fn take_id(&mut self) -> u64 {
        if self.next_id == self.id_end {
            const BATCH: u64 = 1024;
            self.next_id = crate::coro::next_ids(BATCH);
            self.id_end = self.next_id + BATCH;
        }
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// xorshift64*: the steal order's randomness.
    pub(crate) fn next_rand(&mut self) -> u64 {
        let mut x = self.rand;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rand = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}
