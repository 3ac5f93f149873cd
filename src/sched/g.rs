//! G: a goroutine. Its saved context, its stack (from first run to death),
//! its task, and what `gopark` needs.
//!
//! # G status (who owns what in each state)
//! ```text
//!        spawn, or bind          execute             gopark (unlockf true)
//!   Idle ───────────▶ Runnable ───────────▶ Running ─────────────────────▶ Waiting
//!    ▲                  ▲  ▲                 │  │ │                          │
//!    │                  │  └── yield_now ────┘  │ └── blocking(f) ─▶ Syscall │
//!    │                  └──────────── goready ──┼──────────────────────────┘
//!    └──── recycled by g0 ◀── Dead ◀── returns ─┘
//! ```
//! - `Idle`: on a free list; no task. Owned by the list. On the free list
//!   of the P it died on it keeps a stack of the runtime's default spec
//!   (not on the shared list, nor once taken for a spawn).
//! - `Idle → Runnable`: a spawn that needs its G at once (named, its own
//!   stack size, from a thread without a P) takes one from a free list; a
//!   plain spawn queues its task alone, and the M that takes it from the
//!   queue binds it to a G of its own P just before running it
//!   (runnable.rs).
//! - `Runnable`: on a run queue or in a `runnext` slot; its stack (if it has
//!   run before) is not in use. Owned by the queue; whoever takes it owns it.
//! - `Running`: executing on an M; only that M (and the G itself) touch it.
//! - `Syscall`: running inside `blocking(f)`; its P may be retaken by sysmon.
//! - `Waiting`: parked by `gopark`. Owned by whatever its unlock callback
//!   published it to (a channel's wait queue, a join slot...); the only legal
//!   way out is `goready`, called once by that owner.
//! - `Dead`: finished; g0 returns its stack and puts it on a free list.
//!
//! Transitions out of `Waiting` are checked (a load and a store on an M,
//! which owns the transition; a CAS from a thread without a P), and a wrong
//! state aborts (`runtime: goready of a G that is not waiting`): a double
//! wake-up is a bug that must not go unnoticed. The one exception is the
//! runtime's teardown, which takes `Waiting` and `Runnable` Gs by CAS to
//! unwind them: a plain thread's wake-up that loses that race is dropped.

use std::{
    cell::UnsafeCell,
    fmt,
    ptr::NonNull,
    sync::{
        Arc,
        atomic::{AtomicU8, AtomicU64, Ordering},
    },
};

use super::{M, Sched, task::TaskRef};
use crate::{
    arch::StackPointer,
    stack::{Stack, StackSpec},
};

/// The status of a G; see the module comment for ownership in each state.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GStatus {
    /// On a free list.
    Idle = 0,
    /// On a run queue.
    Runnable = 1,
    /// Executing on an M.
    Running = 2,
    /// Parked by `gopark`, until `goready`.
    Waiting = 3,
    /// Inside `blocking(f)`.
    Syscall = 4,
    /// Finished, not yet recycled.
    Dead = 5,
}

impl GStatus {
    fn from_u8(v: u8) -> GStatus {
        match v {
            0 => GStatus::Idle,
            1 => GStatus::Runnable,
            2 => GStatus::Running,
            3 => GStatus::Waiting,
            4 => GStatus::Syscall,
            _ => GStatus::Dead,
        }
    }
}

/// Why a G is parked, for debugging output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WaitReason {
    /// Waiting for another coroutine to finish (`JoinHandle::join`).
    Join,
    /// Waiting on a channel operation.
    Chan,
    /// Waiting on a `select`.
    Select,
    /// Waiting for a lock or semaphore.
    Sync,
    /// Sleeping on a timer.
    Sleep,
    /// Waiting for a timer's tick.
    Timer,
    /// Waiting for network I/O.
    Io,
    /// Waiting to lock a `gort::sync::Mutex` (Go's sync.Mutex.Lock).
    MutexLock,
    /// Waiting to read-lock a `gort::sync::RwLock`.
    RwLockRead,
    /// Waiting to write-lock a `gort::sync::RwLock`.
    RwLockWrite,
    /// Waiting on a `gort::sync::Cond` (Go's sync.Cond.Wait).
    CondWait,
    /// Waiting on a `gort::sync::WaitGroup`.
    WaitGroupWait,
    /// Waiting for units of a `gort::sync::Semaphore`.
    Semaphore,
    /// A primitive built outside gort.
    Other,
}

/// A goroutine. Allocated once and reused through free lists; never freed
/// while its runtime lives, so a `GRef` stays valid as long as the runtime.
pub(crate) struct G {
    /// Unique id of the current incarnation (0 while idle).
    pub(crate) id: AtomicU64,
    status: AtomicU8,
    /// The runtime this G belongs to (set at allocation).
    pub(crate) sched: *const Sched,
    /// Owner-only fields: touched only by whoever owns the G in its current
    /// state (see the module comment).
    pub(crate) own: UnsafeCell<GOwned>,
}

/// The fields of a G that only its current owner touches.
pub(crate) struct GOwned {
    /// Saved context while not running; `None` before the first run.
    pub(crate) sp: Option<StackPointer>,
    /// The g0 context that resumed this G last; the G returns there.
    pub(crate) g0_sp: Option<StackPointer>,
    /// The stack, from first run to death.
    pub(crate) stack: Option<Stack>,
    /// Stack to take at first run.
    pub(crate) spec: StackSpec,
    /// What to run; taken at first run.
    pub(crate) task: Option<TaskRef>,
    /// Name given by `Builder::name`.
    pub(crate) name: Option<Arc<str>>,
    /// The M this G is wired to by `lock_os_thread` (null: none). Written
    /// by the G itself while running; read by the M that dequeues it.
    pub(crate) locked_m: *const M,
    /// Nesting depth of `lock_os_thread` calls.
    pub(crate) lock_depth: u32,
    /// Why it is parked.
    pub(crate) wait_reason: WaitReason,
    /// Canary of an unguarded stack, checked when the G switches away.
    pub(crate) canary: Option<NonNull<[u64; crate::stack::CANARY_BYTES / 8]>>,
    /// Set while the runtime is tearing down and unwinding this G.
    pub(crate) unwinding: bool,
    /// Coroutine-local values (`gort::local!`), dropped when the G ends.
    pub(crate) locals: crate::local::Locals,
}

/// A block of Gs, owned by the runtime and freed when it is dropped.
pub(crate) struct GChunk {
    map: memmap2::MmapMut,
    first: *mut G,
    n: usize,
}

// SAFETY: the block is only freed by its owner, the Sched, at teardown.
unsafe impl Send for GChunk {}

impl Drop for GChunk {
    fn drop(&mut self) {
        // SAFETY: the n Gs from `first` were written by `alloc_chunk` and
        // are dropped once, here, at teardown, when no GRef is used any
        // more; the mapping is unmapped after.
        unsafe { std::ptr::slice_from_raw_parts_mut(self.first, self.n).drop_in_place() };
        let _ = &self.map;
    }
}

impl GOwned {
    /// Forgets a finished G's run (its stack stays: the caller decides);
    /// returns whether it was wired to its M.
    pub(crate) fn clear(&mut self) -> bool {
        self.locals.clear();
        self.sp = None;
        self.canary = None;
        self.name = None;
        self.task = None;
        let wired = !self.locked_m.is_null();
        self.locked_m = std::ptr::null();
        self.lock_depth = 0;
        wired
    }
}

/// A pointer to a G. Whoever holds one owns the G in its current state.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct GRef(NonNull<G>);

// SAFETY: a GRef is a handle passed between threads along with ownership of
// the G (through run queues and park/ready, whose atomics order the
// hand-over); the G outlives every GRef because Gs are freed only when the
// runtime is dropped, after all Ms have stopped.
unsafe impl Send for GRef {}
// SAFETY: as above; shared GRefs are only compared or used for atomic fields.
unsafe impl Sync for GRef {}

// SAFETY: see GRef; the UnsafeCell is only accessed by the owner.
unsafe impl Sync for G {}
// SAFETY: as above.
unsafe impl Send for G {}

impl fmt::Debug for GRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "G({})", self.g().id.load(Ordering::Relaxed))
    }
}

impl GRef {
    /// Allocates `n` new Gs for `sched` in one anonymous mapping (Go
    /// allocates Gs in bulk too). A block of 2 MiB or more is aligned and
    /// marked for transparent huge pages: a burst of spawns then costs one
    /// page fault per 2 MiB of Gs instead of one per 4 KiB (page faults are
    /// most of a cold spawn's cost). Freed by [`GChunk`]'s drop, at teardown.
    pub(crate) fn alloc_chunk(
        sched: *const Sched,
        spec: StackSpec,
        n: usize,
    ) -> (GChunk, Vec<GRef>) {
        const HUGE: usize = 2 * 1024 * 1024;
        let bytes = n * std::mem::size_of::<G>();
        let huge = bytes >= HUGE;
        let len = if huge { bytes + HUGE } else { bytes };
        let map = memmap2::MmapOptions::new()
            .len(len)
            .map_anon()
            .unwrap_or_else(|e| {
                crate::util::fatal(&format!(
                    "runtime: cannot allocate coroutine structures: {e}"
                ))
            });
        let base = map.as_ptr() as usize;
        let start = if huge {
            base.next_multiple_of(HUGE)
        } else {
            base
        };
        if huge {
            // Best effort: without THP the block works, just with 4 KiB pages.
            let _ = map.advise_range(memmap2::Advice::HugePage, start - base, bytes);
        }
        let first = start as *mut G;
        let refs = (0..n)
            .map(|i| {
                // SAFETY: slot i lies inside the mapping (start + n * size
                // <= base + len) and is suitably aligned (page-aligned start,
                // whole Gs).
                unsafe {
                    let g = first.add(i);
                    g.write(G {
                        id: AtomicU64::new(0),
                        status: AtomicU8::new(GStatus::Idle as u8),
                        sched,
                        own: UnsafeCell::new(GOwned {
                            sp: None,
                            g0_sp: None,
                            stack: None,
                            spec,
                            task: None,
                            name: None,
                            locked_m: std::ptr::null(),
                            lock_depth: 0,
                            wait_reason: WaitReason::Other,
                            canary: None,
                            unwinding: false,
                            locals: crate::local::Locals::new(),
                        }),
                    });
                    GRef(NonNull::new_unchecked(g))
                }
            })
            .collect();
        (GChunk { map, first, n }, refs)
    }

    #[inline(always)]
    pub(crate) fn g(&self) -> &G {
        // SAFETY: Gs live as long as their runtime (see GRef's Send impl).
        unsafe { self.0.as_ref() }
    }

    /// The owner-only fields.
    ///
    /// # Safety
    /// The caller owns the G in its current state (see the module comment)
    /// and holds no other reference to these fields.
    #[inline(always)]
    #[allow(
        clippy::mut_from_ref,
        reason = "ownership is by protocol, documented above"
    )]
    pub(crate) unsafe fn own(&self) -> &mut GOwned {
        // SAFETY: forwarded from this function's contract.
        unsafe { &mut *self.g().own.get() }
    }

    pub(crate) fn as_ptr(self) -> *mut G {
        self.0.as_ptr()
    }

    /// # Safety
    /// `p` came from `as_ptr` of a live G.
    pub(crate) unsafe fn from_ptr(p: *mut G) -> GRef {
        // SAFETY: forwarded from this function's contract.
        GRef(unsafe { NonNull::new_unchecked(p) })
    }

    #[inline(always)]
    pub(crate) fn status(self) -> GStatus {
        GStatus::from_u8(self.g().status.load(Ordering::Acquire))
    }

    /// Sets the status without checking the old one; for the owner.
    #[inline(always)]
    pub(crate) fn set_status(self, s: GStatus) {
        self.g().status.store(s as u8, Ordering::Release);
    }

    /// Moves from `from` to `to`, aborting if the G was not in `from`.
    ///
    /// A load and a store, not a locked compare-and-swap: every transition
    /// made through here has one owner at a time (the waker that won the
    /// G's wait, or g0 for the G it just ran), so the check only catches a
    /// second `goready` that does not race the first - which a CAS would
    /// not make sound either, the G pointer being stale by then.
    #[inline(always)]
    pub(crate) fn move_status(self, from: GStatus, to: GStatus, what: &str) {
        // Acquire/Release: pairs with the other side of the hand-over
        // (gopark's publication, goready's wake-up).
        if self.g().status.load(Ordering::Acquire) != from as u8 {
            crate::util::fatal(what);
        }
        self.g().status.store(to as u8, Ordering::Release);
    }

    /// Moves from `from` to `to` with a compare-and-swap; false if the G
    /// was not in `from`. For the transitions two parties may race for:
    /// a plain thread's wake-up against the teardown taking parked Gs.
    pub(crate) fn try_move_status(self, from: GStatus, to: GStatus) -> bool {
        self.g()
            .status
            .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    pub(crate) fn id(self) -> u64 {
        self.g().id.load(Ordering::Relaxed)
    }
}

/// The G running on this thread, if any: the current M's `curg`. The M
/// comes from a non-inlined thread-local accessor, read afresh on every
/// call, because a G may resume on another thread.
#[inline]
pub(crate) fn getg() -> Option<GRef> {
    getmg().map(|(_, g)| g)
}

/// This thread's M and the G it runs, if any: [`getg`] for a caller that
/// needs the M too. The M stays this G's only until the G parks or yields.
#[inline]
pub(crate) fn getmg() -> Option<(&'static super::m::M, GRef)> {
    let m = super::m::this_m()?;
    // SAFETY: we are on m's thread (the running G or its g0).
    Some((m, unsafe { m.local() }.curg?))
}
