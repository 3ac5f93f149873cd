//! What a run queue holds: a G, or a task that has no G yet.
//!
//! # A G at first run, not at spawn
//! A spawn with the runtime's defaults (no name, the default stack) on an
//! M that holds a P queues its task cell alone; the M that takes it from a
//! queue binds it to a G from its own P's free list just before running it
//! (`Sched::bind`). Every other spawn (named, with its own stack size, or
//! from a thread without a P) takes its G at once, as before, and queues
//! the G.
//!
//! Why: coroutines mostly run, and die, on another P than the one that
//! spawned them. A G taken at spawn was one the spawner's P got back from
//! the runner's (through the shared free list), written by the spawner and
//! then read and rewritten by the runner: its three cache lines crossed
//! the two cores twice per coroutine, and a backlog of queued coroutines
//! held a G each (160 bytes beside the 64-byte cell). Bound at first run,
//! the G comes from the free list of the P that runs it, still in that
//! core's cache, and only the cell crosses. A G on its P's free list also
//! keeps its stack (`Sched::gdead`), so binding a task reuses a G and a
//! stack that were in use a moment ago, in place.
//!
//! Measured (2026-11-24, old and new binaries alternating): Go's spawn
//! program (`spawn --side gort-wg`, 2 Ps) 0.92x the time pairwise over 15
//! runs, peak RSS 73 -> 33 MB; one P spawning a million and joining them
//! (`gort-1p`) 0.63x, 276 -> 106 MB; the handle-keeping side on 2 Ps
//! unchanged (1.00x). Instructions per coroutine (callgrind, 2 Ps, the
//! spawning loop yielding every 256 spawns so that the queues stay short)
//! 829 -> 725. The price: the tag test in `handoff_next`, 2 instructions
//! per switch (ping-pong 544.6 -> 548.6 per round trip).
//!
//! # The word
//! A `Runnable` is one word, so `runnext` stays an atomic pointer and a
//! deque slot one word: the G's address, or the cell's with bit 0 set
//! (both are at least 8-aligned). Whoever takes a `Runnable` out of a
//! queue owns what it names: a G in its current state, or the G's
//! reference to the task cell (`TaskRef`). A `Runnable` does not drop
//! what it names: a task that is never bound must be failed and released
//! (the runtime's teardown does, with `Sched::take_queued_tasks`).

use std::ptr::NonNull;

use super::{
    g::{G, GRef},
    task::{Header, TaskRef},
};

/// Bit 0 of the word: set for a task, clear for a G.
const TASK: usize = 1;

/// A queued G or task; see the module comment.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Runnable(NonNull<u8>);

// SAFETY: as GRef and TaskRef: the word moves between threads with the
// ownership of what it names, ordered by the queues' atomics.
unsafe impl Send for Runnable {}
// SAFETY: as above; shared Runnables are only compared.
unsafe impl Sync for Runnable {}

/// What a `Runnable` names, taken out of it.
pub(crate) enum Kind {
    G(GRef),
    Task(TaskRef),
}

impl Runnable {
    /// A task to be bound to a G when it first runs: takes over `t`'s
    /// reference to the cell.
    #[inline]
    pub(crate) fn task(t: TaskRef) -> Runnable {
        let h = t.into_raw();
        Runnable(h.cast::<u8>().map_addr(|a| a | TASK))
    }

    /// The word, for an atomic slot (`runnext`).
    #[inline]
    pub(crate) fn as_ptr(self) -> *mut u8 {
        self.0.as_ptr()
    }

    /// The `Runnable` of a word taken out of an atomic slot; `None` for
    /// null.
    ///
    /// # Safety
    /// A non-null `p` came from [`Runnable::as_ptr`].
    #[inline]
    pub(crate) unsafe fn from_ptr(p: *mut u8) -> Option<Runnable> {
        NonNull::new(p).map(Runnable)
    }

    /// Whether a word from [`Runnable::as_ptr`] names a task.
    #[inline]
    pub(crate) fn ptr_is_task(p: *mut u8) -> bool {
        p.addr() & TASK != 0
    }

    /// The G, if this names one.
    #[inline]
    pub(crate) fn g(self) -> Option<GRef> {
        if Self::ptr_is_task(self.as_ptr()) {
            return None;
        }
        // SAFETY: an untagged word is a G's address (From<GRef>).
        Some(unsafe { GRef::from_ptr(self.as_ptr().cast::<G>()) })
    }

    /// What this names; the caller takes ownership of it (once).
    #[inline]
    pub(crate) fn kind(self) -> Kind {
        if let Some(g) = self.g() {
            return Kind::G(g);
        }
        let h = self.0.map_addr(|a| {
            // SAFETY: a cell's address is non-zero without its tag bit.
            unsafe { std::num::NonZeroUsize::new_unchecked(a.get() & !TASK) }
        });
        // SAFETY: a tagged word came from `Runnable::task`, whose
        // reference the caller now takes back, once.
        Kind::Task(unsafe { TaskRef::from_raw(h.cast::<Header>()) })
    }
}

impl From<GRef> for Runnable {
    #[inline]
    fn from(g: GRef) -> Runnable {
        let p = g.as_ptr().cast::<u8>();
        debug_assert_eq!(p.addr() & TASK, 0, "a G is at least 2-aligned");
        // SAFETY: a GRef is never null.
        Runnable(unsafe { NonNull::new_unchecked(p) })
    }
}
