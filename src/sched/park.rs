//! gopark / goready / mcall: how a G leaves its stack and comes back.
//!
//! A G never runs scheduler code on its own stack. To park, yield or exit it
//! switches to its M's g0 with a [`Req`] on its stack (Go's `mcall`); g0
//! acts on the request after the switch, when the G's stack is no longer in
//! use. When g0 resumes a G it passes its M (so the G knows where it runs)
//! or [`UNWIND`] during runtime teardown.
//!
//! The direct hand-offs (see the sched module comment) keep that rule
//! without g0: a G that parks or yields straight into another leaves a
//! [`Handoff`] on its own stack, and the G it resumes acts on it first
//! thing (`resumed`), once the first is off its stack - g0's guarantee.

use std::{mem::ManuallyDrop, panic, ptr};

use super::{
    g::{GRef, GStatus, WaitReason, getmg},
    m::{M, getm},
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
#[derive(Clone, Copy)]
pub(crate) struct ParkReq {
    call: unsafe fn(*mut u8, GRef) -> bool,
    data: *mut u8,
}

impl ParkReq {
    /// Runs the callback.
    ///
    /// # Safety
    /// Once, on g0 or on the G a direct hand-off switched to, while the G
    /// that made the request is off its stack.
    #[inline(always)]
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

/// Tag bit of the word a G is resumed with when another G switched to it
/// directly: the rest is a pointer to a [`Handoff`]. (From g0 the word is
/// an M pointer, 8-aligned, or `UNWIND`.)
const HANDOFF: usize = 2;

/// What a parking or yielding G leaves, on its stack, for the G it
/// switches to directly; read once by that G before anything can reuse the
/// stack.
#[derive(Clone, Copy)]
struct Handoff {
    from: GRef,
    /// The park request's callback, or None for a yield.
    call: Option<unsafe fn(*mut u8, GRef) -> bool>,
    data: *mut u8,
    m: *const M,
}

impl Handoff {
    /// Copies the hand-off out of the parked G's stack one word at a time.
    /// The parking G wrote it word by word a few dozen instructions ago,
    /// so the stores are still in flight: a plain copy (two 16-byte loads,
    /// each spanning two 8-byte stores) cannot be store-forwarded and
    /// stalls until they retire (perf put a third of `gopark`'s samples
    /// there in a ping-pong on Zen 4). Word loads are forwarded.
    ///
    /// # Safety
    /// `h` points to a live Handoff.
    #[inline(always)]
    unsafe fn take(h: *const Handoff) -> Handoff {
        // SAFETY: forwarded; volatile keeps the loads word-sized.
        unsafe {
            Handoff {
                from: ptr::read_volatile(&raw const (*h).from),
                call: ptr::read_volatile(&raw const (*h).call),
                data: ptr::read_volatile(&raw const (*h).data),
                m: ptr::read_volatile(&raw const (*h).m),
            }
        }
    }
}

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
    resumed(g, t)
}

/// What a G does first when it is resumed (every G suspends in `mcall`
/// or in `gopark`'s direct hand-off, and resumes here): note the context
/// that resumed it, finish the park of a G that handed off to it, or
/// unwind at teardown. Returns the M it now runs on.
#[inline(always)]
fn resumed(g: GRef, t: arch::Transfer) -> *const M {
    if t.arg & HANDOFF != 0 {
        // SAFETY: the G that switched to us left a Handoff on its stack,
        // which stays untouched until its callback publishes it; we copy
        // it out before running the callback.
        let h = unsafe { Handoff::take((t.arg & !HANDOFF) as *const Handoff) };
        // SAFETY: the M we run on outlives this call; its runtime too.
        let m = unsafe { &*h.m };
        match h.call {
            Some(call) => {
                let park = ParkReq { call, data: h.data };
                // SAFETY: the parking G is off its stack (saved at
                // t.from); this is the one call of its callback.
                unsafe { m.sched().finish_handoff(m, h.from, t.from, &park) };
            }
            // SAFETY: the yielding G is off its stack, saved at t.from.
            None => unsafe { m.sched().finish_yield(m, h.from, t.from) },
        }
        return h.m;
    }
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
#[inline(always)]
pub(crate) unsafe fn gopark<F: FnOnce(GRef) -> bool>(unlockf: F, reason: WaitReason) {
    let (m, g) = getmg().expect("gopark called outside a coroutine");
    // SAFETY: m is this thread's M and g its running G (just read); the
    // rest is forwarded from this function's contract.
    unsafe { gopark_on(m, g, unlockf, reason) }
}

/// [`gopark`] for a caller that knows its M and G already (one thread-local
/// read fewer on the channel's hot path).
///
/// # Safety
/// As [`gopark`]; and `m` is the M this thread runs and `g` its running G,
/// the caller's own (read since it last parked or yielded: a G may resume
/// on another M).
#[inline(always)]
pub(crate) unsafe fn gopark_on<F: FnOnce(GRef) -> bool>(
    m: &M,
    g: GRef,
    unlockf: F,
    reason: WaitReason,
) {
    debug_assert!(std::ptr::eq(m, getm()), "gopark_on: not this thread's M");
    // SAFETY: the running G owns itself.
    let own = unsafe { g.own() };
    if own.unwinding {
        crate::util::fatal("runtime: a coroutine parked while its runtime was being dropped");
    }
    own.wait_reason = reason;
    let f = ManuallyDrop::new(unlockf);
    let park = ParkReq {
        call: call_unlock::<F>,
        data: ptr::from_ref(&f).cast_mut().cast(),
    };
    if let Some(next) = m.sched().handoff_next(m) {
        // Direct hand-off: switch straight to the next G, which runs our
        // callback once we are off this stack (`resumed`).
        let h = Handoff {
            from: g,
            call: Some(park.call),
            data: park.data,
            m,
        };
        // SAFETY: handoff_next made `next` ours and m's running G, with a
        // saved context.
        unsafe { switch_direct(g, next, &h) };
        return;
    }
    mcall(g, &Req::Park(park));
}

/// Switches from the running G `g` straight to `next` (skipping g0),
/// leaving `h` for it; returns when `g` is resumed.
///
/// # Safety
/// `g` is the running G; `next` was made the M's running G by
/// `handoff_next` or `yield_next`, and has a saved context. `h` lives on
/// this stack, so `next` reads it before anything can reuse the stack.
#[inline(always)]
unsafe fn switch_direct(g: GRef, next: GRef, h: &Handoff) {
    // SAFETY: forwarded from this function's contract: we own both Gs'
    // fields now; `next` returns to the same g0 we would have.
    let t = unsafe {
        let g0_sp = g.own().g0_sp;
        let nown = next.own();
        nown.g0_sp = g0_sp;
        let sp = nown.sp.take().expect("a handed-off G has a context");
        arch::jump(sp, ptr::from_ref(h) as usize | HANDOFF)
    };
    resumed(g, t);
}

/// Makes a parked G runnable; see [`crate::rt::goready`].
pub(crate) fn goready(g: GRef) {
    // SAFETY: a G's runtime outlives it.
    let sched = unsafe { &*g.g().sched };
    sched.ready(g, true);
}

/// Gosched: lets the other runnable Gs of this P run first.
pub(crate) fn yield_now() {
    let Some((m, g)) = getmg() else {
        std::thread::yield_now();
        return;
    };
    if let Some(next) = m.sched().yield_next(m) {
        // Direct hand-off: the G that runs next puts us in the tail slot
        // once we are off this stack (`resumed`).
        let h = Handoff {
            from: g,
            call: None,
            data: ptr::null_mut(),
            m,
        };
        // SAFETY: yield_next made `next` ours and m's running G, with a
        // saved context.
        unsafe { switch_direct(g, next, &h) };
        return;
    }
    mcall(g, &Req::Yield);
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
