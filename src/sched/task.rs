//! The task cell: the one block a spawn allocates. It holds the closure
//! until the coroutine runs it and the result until the `JoinHandle`
//! takes it, with the join state (`spawn.rs` describes that state
//! machine) and a reference count. Freed blocks of the common small sizes
//! are kept per P for the next spawns.
//!
//! # Layout
//! ```text
//!   #[repr(C)] Cell<T, F> { header: Header, slot: union Slot { f: F, ok: T, err: Panic } }
//! ```
//! The closure and the result never live at once (the closure is moved
//! out before it runs; the result is written after), so they share one
//! slot, and a panic's payload is boxed once more so that its pointer is
//! thin: a closure capturing nothing that returns `()` makes a 32-byte
//! cell (with `Option<F>` and `Option<thread::Result<T>>` side by side it
//! was 48, allocated as 64). Which member is live is the join state's to
//! say: the closure while it is `RUNNING` (until the G takes it), `ok` or
//! `err` once `OK` or `ERR`, none once `TAKEN`. The handle knows `T` but
//! not `F`, so it finds the slot at the offset the vtable records; what
//! needs `F` (run, fail, free) goes through the vtable.
//!
//! # References and id (`Header::refs_id`)
//! ```text
//!   2 at spawn (the G's TaskRef, the JoinHandle) ──each drop──▶ 1 ──▶ 0: freed
//! ```
//! The count sits in the low [`REF_BITS`] bits of a word whose other bits
//! hold the coroutine's id, which never changes (a task queued before it
//! has a G carries its id there until it is bound: see `runnable.rs`; in
//! its own word the header would grow by 8 bytes, and closures of up to
//! 24 bytes would no longer fit the 64-byte class). Set by a plain store
//! when the cell is built (nobody else knows it yet); the last release
//! frees it (Release decrement, Acquire fence, as `Arc` does). The G's
//! reference goes when the coroutine ends (or is torn down); the
//! handle's when it is joined or dropped.
//!
//! # Blocks
//! Cells of the common small sizes take their blocks from a P's cache of
//! freed ones, in front of a process-wide pool (`blocks.rs`).

use std::{
    alloc::Layout,
    any::Any,
    cell::UnsafeCell,
    mem::ManuallyDrop,
    panic::{self, AssertUnwindSafe},
    ptr::NonNull,
    sync::atomic::{self, AtomicU64, AtomicUsize, Ordering},
};

use super::{p::P, park::ForcedUnwind};

/// Bits of `Header::refs_id` that count references (at most 2).
const REF_BITS: u32 = 2;
const REF_MASK: u64 = (1 << REF_BITS) - 1;

/// A panic's payload as the slot holds it: a thin pointer.
pub(crate) type Panic = Box<Box<dyn Any + Send>>;

/// What every cell starts with.
pub(crate) struct Header {
    /// The reference count (low `REF_BITS`) and the coroutine's id.
    refs_id: AtomicU64,
    /// The join state (see `spawn.rs`); it says which member of the slot
    /// is live.
    pub(crate) state: AtomicUsize,
    vtable: &'static VTable,
}

/// The operations that need the closure's type.
struct VTable {
    /// Takes the closure, runs it, completes the join state.
    run: unsafe fn(NonNull<Header>),
    /// Drops the closure without running it; completes with `payload`.
    fail: unsafe fn(NonNull<Header>, Box<dyn Any + Send>),
    /// Drops what the cell still holds and frees it.
    free: unsafe fn(NonNull<Header>),
    /// Offset of the slot from the header.
    slot: usize,
}

impl Header {
    /// The id of the coroutine that runs (or ran) this task.
    pub(crate) fn id(&self) -> u64 {
        // The id bits never change.
        self.refs_id.load(Ordering::Relaxed) >> REF_BITS
    }

    /// The slot (see "Layout"): where the closure, then the result, live.
    pub(crate) fn slot(&self) -> *mut u8 {
        std::ptr::from_ref(self)
            .cast::<u8>()
            .cast_mut()
            .wrapping_add(self.vtable.slot)
    }
}

#[repr(C)]
union Slot<T, F> {
    f: ManuallyDrop<F>,
    ok: ManuallyDrop<T>,
    err: ManuallyDrop<Panic>,
}

#[repr(C)]
struct Cell<T, F> {
    header: Header,
    slot: UnsafeCell<Slot<T, F>>,
}

impl<T, F> Cell<T, F>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    const VTABLE: VTable = VTable {
        run: Self::run,
        fail: Self::fail,
        free: Self::free,
        slot: std::mem::offset_of!(Self, slot),
    };

    /// # Safety
    /// `h` is the header of a live `Cell<T, F>`, still `RUNNING` with its
    /// closure; called once, by the G.
    unsafe fn run(h: NonNull<Header>) {
        // SAFETY: forwarded: the cell is a Cell<T, F>.
        let cell = unsafe { h.cast::<Self>().as_ref() };
        // SAFETY: only the G running the task takes the closure, once;
        // the slot holds it until then.
        let f = unsafe { ManuallyDrop::take(&mut (*cell.slot.get()).f) };
        let r = panic::catch_unwind(AssertUnwindSafe(f));
        let r = match r {
            Err(p) if p.is::<ForcedUnwind>() => Err(Box::new(
                "gort: the runtime was dropped before the coroutine finished",
            ) as Box<dyn Any + Send>),
            r => r,
        };
        // SAFETY: the closure is gone: the slot is ours to fill.
        unsafe { super::spawn::complete(&cell.header, r) };
    }

    /// # Safety
    /// As `run`: the task never ran and never will.
    unsafe fn fail(h: NonNull<Header>, payload: Box<dyn Any + Send>) {
        // SAFETY: forwarded.
        let cell = unsafe { h.cast::<Self>().as_ref() };
        // SAFETY: the task never ran: we own the closure, dropped once.
        unsafe { ManuallyDrop::drop(&mut (*cell.slot.get()).f) };
        // SAFETY: as in `run`.
        unsafe { super::spawn::complete::<T>(&cell.header, Err(payload)) };
    }

    /// # Safety
    /// `h` is a `Cell<T, F>` whose last reference was just released.
    unsafe fn free(h: NonNull<Header>) {
        let p = h.cast::<Self>();
        // SAFETY: no reference is left: we own the cell, drop the live
        // member of its slot (the join state says which) once, then give
        // the block back.
        unsafe {
            let slot = &mut *(*p.as_ptr()).slot.get();
            match (*p.as_ptr()).header.state.load(Ordering::Relaxed) {
                super::spawn::OK => ManuallyDrop::drop(&mut slot.ok),
                super::spawn::ERR => ManuallyDrop::drop(&mut slot.err),
                super::spawn::TAKEN => {}
                // Never run nor failed (a TaskRef is consumed by either,
                // and a waiter holds the handle's reference).
                _ => ManuallyDrop::drop(&mut slot.f),
            }
            super::blocks::free(p.cast(), Layout::new::<Self>());
        }
    }
}

/// Builds the cell for coroutine `id` running `f`, with its two
/// references (the G's, the handle's). `p`: the spawner's own P, if it
/// has one.
pub(crate) fn new_task<F, T>(p: Option<&P>, id: u64, f: F) -> (TaskRef, NonNull<Header>)
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let layout = Layout::new::<Cell<T, F>>();
    let block = super::blocks::alloc(p, layout).cast::<Cell<T, F>>();
    // SAFETY: a fresh block of the cell's layout (or larger, same
    // alignment), written whole before anyone sees it.
    unsafe {
        block.as_ptr().write(Cell {
            header: Header {
                refs_id: AtomicU64::new(id << REF_BITS | 2),
                state: AtomicUsize::new(super::spawn::RUNNING),
                vtable: &Cell::<T, F>::VTABLE,
            },
            slot: UnsafeCell::new(Slot {
                f: ManuallyDrop::new(f),
            }),
        });
    }
    (TaskRef(block.cast()), block.cast())
}

/// Drops one reference to the cell of `h`; the last frees it.
///
/// # Safety
/// The caller owns one of the cell's references and gives it up.
pub(crate) unsafe fn release(h: NonNull<Header>) {
    // SAFETY: the caller's reference keeps the cell alive until here.
    let header = unsafe { h.as_ref() };
    if header.refs_id.fetch_sub(1, Ordering::Release) & REF_MASK == 1 {
        atomic::fence(Ordering::Acquire);
        // SAFETY: that was the last reference.
        unsafe { (header.vtable.free)(h) };
    }
}

/// The G's reference to its task: run once or failed, which gives it up.
/// Dropped unused, it fails the task first (its joiner must not wait for
/// a coroutine that will never run).
pub(crate) struct TaskRef(NonNull<Header>);

// SAFETY: the closure is Send and runs on whichever thread runs the G; the
// reference count is atomic.
unsafe impl Send for TaskRef {}

impl TaskRef {
    /// The id of the coroutine that runs this task.
    pub(crate) fn id(&self) -> u64 {
        // SAFETY: our reference keeps the cell alive.
        unsafe { self.0.as_ref() }.id()
    }

    /// Runs the closure, completes the join state, and gives up the
    /// reference.
    pub(crate) fn run(self) {
        let h = self.into_raw();
        // SAFETY: the G runs its task once (this consumes the reference);
        // the cell lives until our release.
        unsafe {
            (h.as_ref().vtable.run)(h);
            release(h);
        }
    }

    /// Completes the join state with `payload` without running the
    /// closure (which is dropped), and gives up the reference.
    pub(crate) fn fail(self, payload: Box<dyn Any + Send>) {
        let h = self.into_raw();
        // SAFETY: as in `run`; the task has not run and will not.
        unsafe {
            (h.as_ref().vtable.fail)(h, payload);
            release(h);
        }
    }

    /// The reference as a word-aligned pointer (kept, not released).
    pub(crate) fn into_raw(self) -> NonNull<Header> {
        std::mem::ManuallyDrop::new(self).0
    }

    /// Takes back a reference given away by [`TaskRef::into_raw`].
    ///
    /// # Safety
    /// `h` came from `into_raw`, and is taken back once.
    pub(crate) unsafe fn from_raw(h: NonNull<Header>) -> TaskRef {
        TaskRef(h)
    }
}

impl Drop for TaskRef {
    fn drop(&mut self) {
        let h = self.0;
        // SAFETY: not run nor failed (both consume the TaskRef): the
        // closure is still in the cell; this is the G's reference, given
        // up once.
        unsafe {
            (h.as_ref().vtable.fail)(
                h,
                Box::new("gort: the coroutine was dropped before it started"),
            );
            release(h);
        }
    }
}
