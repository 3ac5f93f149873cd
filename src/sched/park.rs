//! gopark / goready / mcall: how a G leaves its stack and comes back.
//!
//! A G never runs scheduler code on its own stack. To park, yield or exit it
//! switches to its M's g0 with a [`Req`] on its stack (Go's `mcall`); g0
//! acts on the request after the switch, when the G's stack is no longer in
//! use. When g0 resumes a G it passes its M (so the G knows where it runs)
//! or [`UNWIND`] during runtime teardown.

use std::{mem::ManuallyDrop, panic, ptr};

use super::{
    g::{GRef, GStatus, WaitReason, getg},
    m::M,
};
use crate::arch::{self, StackPointer};

/// What a G asks of g0 when it switches there.
pub(crate) enum Req {
    /// Park: mark Waiting, then run the unlock callback.
    Park(ParkReq),
    /// Go to the back of the local run queue.
    Yield,
    /// Back from `blocking` without a P: queue globally, stop the M.
    NoP,
}

/// A type-erased `FnOnce(GRef) -> bool` living on the parking G's stack.
pub(crate) struct ParkReq {
    call: unsafe fn(*mut u8, GRef) -> bool,
    data: *mut u8,
}

impl ParkReq {
    /// Runs the callback.
    ///
    /// # Safety
    /// Once, on g0, while the G that made the request is off its stack.
    pub(crate) unsafe fn call(&self, g: GRef) -> bool {
        // SAFETY: forwarded from this function's contract.
        unsafe { (self.call)(self.data, g) }
    }
}

/// Moves the callback off the G's stack onto g0's, then runs it, so what
/// it captured by value stays valid after it publishes the G.
unsafe fn call_unlock<F: FnOnce(GRef) -> bool>(data: *mut u8, g: GRef) -> bool {
    // SAFETY: `data` points to a ManuallyDrop<F> that gopark never touches
    // again; this is its only read.
    let f = unsafe { ptr::read(data.cast::<F>()) };
    f(g)
}

/// The word g0 passes to resume a G that must unwind (runtime teardown).
pub(crate) const UNWIND: usize = 1;

/// The payload of a forced unwind.
pub(crate) struct ForcedUnwind;

/// Switches from the running G `g` to its g0 with `req`; returns when the G
/// is resumed, on whichever M resumed it.
#[inline]
pub(crate) fn mcall(g: GRef, req: &Req) -> *const M {
    // SAFETY: `g` is the running G (our own): its owner is us.
    let g0 = unsafe { g.own() }.g0_sp.expect("a running G knows its g0");
    // SAFETY: g0 is the suspended context that resumed us; it reads `req`
    // before anything can overwrite it, and resumes us with its M or UNWIND.
    let t = unsafe { arch::jump(g0, ptr::from_ref(req) as usize) };
    // SAFETY: resumed, we are running again and own our fields.
    unsafe { g.own() }.g0_sp = StackPointer::new(t.from);
    if t.arg == UNWIND {
        panic::resume_unwind(Box::new(ForcedUnwind));
    }
    t.arg as *const M
}

/// Parks the current G: see [`crate::rt::gopark`].
///
/// # Safety
/// See [`crate::rt::gopark`].
pub(crate) unsafe fn gopark<F: FnOnce(GRef) -> bool>(unlockf: F, reason: WaitReason) {
    let g = getg().expect("gopark called outside a coroutine");
    // SAFETY: the running G owns itself.
    let own = unsafe { g.own() };
    if own.unwinding {
        crate::util::fatal("runtime: a coroutine parked while its runtime was being dropped");
    }
    own.wait_reason = reason;
    let f = ManuallyDrop::new(unlockf);
    let req = Req::Park(ParkReq {
        call: call_unlock::<F>,
        data: ptr::from_ref(&f).cast_mut().cast(),
    });
    mcall(g, &req);
}

/// Makes a parked G runnable; see [`crate::rt::goready`].
pub(crate) fn goready(g: GRef) {
    // SAFETY: a G's runtime outlives it.
    let sched = unsafe { &*g.g().sched };
    sched.ready(g, true);
}

/// Gosched: lets the other runnable Gs of this P run first.
pub(crate) fn yield_now() {
    match getg() {
        Some(g) => {
            mcall(g, &Req::Yield);
        }
        None => std::thread::yield_now(),
    }
}

/// The first Rust frame of every G.
pub(crate) unsafe extern "C" fn g_entry(arg: usize, from: *mut u8, ctx: *mut u8) -> ! {
    // SAFETY: execute passes the G as ctx.
    let g = unsafe { GRef::from_ptr(ctx.cast()) };
    // SAFETY: we are the running G.
    let own = unsafe { g.own() };
    own.g0_sp = StackPointer::new(from);
    debug_assert_ne!(arg, UNWIND, "fresh Gs are never unwound, only dropped");
    let task = own.task.take().expect("a fresh G has a task");
    task.run();
    drop(task);
    // Coroutine-local values are dropped here, on the coroutine's own
    // stack, so their destructors may use the runtime (gdead's clear only
    // catches what a destructor re-created).
    // SAFETY: still the running G.
    unsafe { g.own() }.locals.clear();
    // SAFETY: still the running G.
    let g0 = unsafe { g.own() }.g0_sp.expect("a running G knows its g0");
    debug_assert_eq!(g.status(), GStatus::Running);
    // SAFETY: nothing on this stack needs dropping; g0 recycles it.
    unsafe { arch::jump_exit(g0, 0) }
}
