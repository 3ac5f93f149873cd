//! M: an OS worker thread. Its own thread stack is its g0: scheduler code
//! runs only there, never on a G's stack.

use std::{
    cell::{Cell, UnsafeCell},
    sync::atomic::{AtomicBool, AtomicPtr, Ordering},
    thread::Thread,
};

use super::{Sched, g::GRef, p::P};

pub(crate) struct M {
    pub(crate) id: usize,
    pub(crate) sched: *const Sched,
    /// A P handed to this M by `startm` before waking it (Release by the
    /// waker, Acquire by this M).
    pub(crate) nextp: AtomicPtr<P>,
    /// Set by `startm` when the M should start out spinning.
    pub(crate) next_spinning: AtomicBool,
    /// Wake-up flag for `park`/`unpark` (no lost wake-ups).
    notified: AtomicBool,
    /// This M's thread, for unpark; set once when the thread starts.
    pub(crate) thread: std::sync::OnceLock<Thread>,
    /// Owner-only state: touched only by this M's own thread.
    local: UnsafeCell<MLocal>,
}

pub(crate) struct MLocal {
    /// The P this M holds, if any.
    pub(crate) p: Option<&'static P>,
    /// The G running on this M, if any.
    pub(crate) curg: Option<GRef>,
    /// Whether this M is spinning (counted in `Sched::nmspinning`).
    pub(crate) spinning: bool,
    /// The G wired to this M by `lock_os_thread`: the M runs nothing else.
    pub(crate) lockedg: Option<GRef>,
    /// Scratch list for Gs the poller readies (kept to reuse its buffer).
    pub(crate) glist: Vec<GRef>,
}

// SAFETY: `local` is only touched by the M's own thread; the rest is atomic.
unsafe impl Sync for M {}
// SAFETY: as above.
unsafe impl Send for M {}

impl M {
    pub(crate) fn new(id: usize, sched: *const Sched) -> M {
        M {
            id,
            sched,
            nextp: AtomicPtr::new(std::ptr::null_mut()),
            next_spinning: AtomicBool::new(false),
            notified: AtomicBool::new(false),
            thread: std::sync::OnceLock::new(),
            local: UnsafeCell::new(MLocal {
                p: None,
                curg: None,
                spinning: false,
                lockedg: None,
                glist: Vec::new(),
            }),
        }
    }

    /// The owner-only state.
    ///
    /// # Safety
    /// Called on this M's own thread, with no other reference to it alive.
    #[inline(always)]
    #[allow(
        clippy::mut_from_ref,
        reason = "ownership is by protocol, documented above"
    )]
    pub(crate) unsafe fn local(&self) -> &mut MLocal {
        // SAFETY: forwarded from this function's contract.
        unsafe { &mut *self.local.get() }
    }

    #[inline]
    pub(crate) fn sched(&self) -> &'static Sched {
        // SAFETY: the Sched outlives its Ms: Runtime::drop joins every M
        // thread before the Sched is freed.
        unsafe { &*self.sched }
    }

    /// Blocks this thread until `unpark` (returns at once if an unpark
    /// came first).
    pub(crate) fn park(&self) {
        // Acquire pairs with unpark's Release: what the waker wrote before
        // waking (nextp) is visible.
        while !self.notified.swap(false, Ordering::Acquire) {
            std::thread::park();
        }
    }

    /// Wakes this M from `park`.
    pub(crate) fn unpark(&self) {
        self.notified.store(true, Ordering::Release);
        if let Some(t) = self.thread.get() {
            t.unpark();
        }
    }
}

thread_local! {
    static CURRENT_M: Cell<*const M> = const { Cell::new(std::ptr::null()) };
}

/// The M of this thread (null on a thread that is not an M). Not inlined,
/// like every runtime thread-local accessor.
#[inline(never)]
pub(crate) fn getm() -> *const M {
    CURRENT_M.get()
}

/// This thread's M, if it is one: [`getm`] as a reference.
#[inline]
pub(crate) fn this_m() -> Option<&'static M> {
    let m = getm();
    // SAFETY: a non-null M pointer of this thread is its live M: Ms live as
    // long as their runtime, which outlives every thread it runs on.
    (!m.is_null()).then(|| unsafe { &*m })
}

#[inline(never)]
pub(crate) fn setm(m: *const M) {
    CURRENT_M.set(m);
}
