//! The context switch: the only place in gort that knows the machine.
//!
//! # The contract every architecture file implements
//!
//! A *context* is a stack with the callee-saved registers of a suspended
//! computation stored at its top. It is named by its saved stack pointer, a
//! [`StackPointer`]. Every switch stores the current context (so it can be
//! resumed later), loads the target context, and hands the target two words
//! in registers, returned to it as a [`Transfer`]:
//!
//! - `arg`: one machine word chosen by the side that switched (by convention
//!   a pointer to a message on that side's stack);
//! - `from`: the stack pointer of the context that just switched away, or
//!   null if it exited and can never be resumed.
//!
//! Because the resumed side learns `from` only after the switch, the context
//! that left is unreachable until the resumed side stores `from` somewhere.
//! That is what makes Go's `mcall` sound: the scheduler on g0 runs a G's
//! unlock callback after the G is off its stack, and nobody can resume the G
//! before the callback publishes it.
//!
//! # Two families of switch
//! **Paired** (`Coroutine`): contexts come in two roles so that x86_64 can
//! pair every `call` with a `ret` and keep the CPU's return-address
//! predictor right when the suspend is inlined into the coroutine's loop
//! (see `asm-notes/x86_64-sysv.md`). A *parent* context (a thread running a
//! coroutine) resumed a child and is only resumed by it, with
//! [`switch_to_parent`] or [`exit_to_parent`]; a *child* context (the
//! coroutine) is resumed by its parent with [`switch_to_child`].
//!
//! **Jump** (the scheduler): one symmetric [`jump`] for every switch, g0→G,
//! G→g0 and the direct G→G, that never executes `call` or `ret`, so it
//! neither pushes nor pops return-predictor entries. A G resumes deep inside
//! non-inlined frames (`yield_now`, `gopark`), and returning out of them
//! after a `call`-based resume mispredicts every time; measured, the jump
//! family halves the cost of a yield. [`jump_exit`] leaves for good.
//!
//! A context of one family is only ever resumed by the same family; a fresh
//! stack is prepared for the family that will run it ([`init_stack`] or
//! [`init_jump_stack`]). Its first resumption calls `entry(arg, from, ctx)`
//! through an `extern "C"` trampoline at the bottom of the stack, which is
//! never returned through (`entry` returns `!`) and whose unwind information
//! marks the end of the stack, so backtraces and debuggers stop there.
//!
//! | function            | family | x86_64 transfer          | aarch64       |
//! |---------------------|--------|--------------------------|---------------|
//! | [`switch_to_child`] | paired | `call` into the child    | `gort_switch` |
//! | [`switch_to_parent`]| paired | `ret` into the parent    | `gort_switch` |
//! | [`exit_to_parent`]  | paired | `ret`, `from` null       | `gort_exit`   |
//! | [`jump`]            | jump   | `jmp`                    | `gort_switch` |
//! | [`jump_exit`]       | jump   | `jmp`, `from` null       | `gort_exit`   |
//!
//! # What is saved
//! Exactly the state the C ABI calls callee-saved, because every switch looks
//! like an ordinary function call to the code around it. x86_64: rbx, rbp,
//! r12–r15, rsp and the resume address (r12–r15 are declared as clobbers of
//! the inline `asm!`, so the compiler saves only those that are live);
//! aarch64: x19–x29, lr, sp and d8–d15. The MXCSR and x87 control words are
//! *not* switched; `asm-notes/x86_64-sysv.md` says why.

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
use self::x86_64 as imp;

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "aarch64")]
use self::aarch64 as imp;

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("gort has a context switch only for x86_64 and aarch64");

use core::ptr::NonNull;

/// Required alignment of a stack's top.
pub(crate) const STACK_ALIGNMENT: usize = 16;

/// Bytes that [`init_stack`] uses at the top of a fresh stack.
pub(crate) const INIT_FRAME_SIZE: usize = imp::INIT_FRAME_SIZE;

/// The saved stack pointer of a suspended context.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StackPointer(NonNull<u8>);

impl StackPointer {
    /// Wraps a raw stack pointer, `None` if it is null.
    #[inline(always)]
    pub(crate) fn new(p: *mut u8) -> Option<Self> {
        NonNull::new(p).map(StackPointer)
    }

    /// Wraps a raw stack pointer known to be non-null.
    ///
    /// # Safety
    /// `p` is not null.
    #[inline(always)]
    pub(crate) unsafe fn new_unchecked(p: *mut u8) -> Self {
        // SAFETY: forwarded from this function's contract.
        StackPointer(unsafe { NonNull::new_unchecked(p) })
    }

    /// The raw address.
    #[inline(always)]
    pub(crate) fn as_ptr(self) -> *mut u8 {
        self.0.as_ptr()
    }
}

/// What a switch hands to the context it resumes.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Transfer {
    /// The word passed by the side that switched.
    pub(crate) arg: usize,
    /// Stack pointer of the context that switched away, or null if it exited.
    pub(crate) from: *mut u8,
}

/// The function a fresh context starts in: `entry(arg, from, ctx)`, where
/// `arg` and `from` are the [`Transfer`] of its first resumption and `ctx` is
/// the pointer given to [`init_stack`]. It must never return.
pub(crate) type EntryFn = unsafe extern "C" fn(arg: usize, from: *mut u8, ctx: *mut u8) -> !;

/// Lays out a fresh child context at the top of a stack.
///
/// # Safety
/// `top` is the (exclusive) high end of writable stack memory with at least
/// [`INIT_FRAME_SIZE`] bytes below it, aligned to [`STACK_ALIGNMENT`]. The
/// returned pointer may be resumed at most once before that resumption
/// switches away again.
#[inline]
pub(crate) unsafe fn init_stack(top: *mut u8, entry: EntryFn, ctx: *mut u8) -> StackPointer {
    debug_assert_eq!(top as usize % STACK_ALIGNMENT, 0);
    // SAFETY: forwarded from this function's contract.
    unsafe { imp::init_stack(top, entry, ctx) }
}

/// Parent → child: suspends the current context as a parent and resumes the
/// child `to`. Returns when a child switches back to this parent.
///
/// # Safety
/// `to` is a suspended child context (fresh from [`init_stack`], or saved by
/// [`switch_to_parent`]) that nothing else will resume;
/// the child must eventually come back with [`switch_to_parent`] or
/// [`exit_to_parent`] naming this parent.
#[inline(always)]
pub(crate) unsafe fn switch_to_child(to: StackPointer, arg: usize) -> Transfer {
    // SAFETY: forwarded from this function's contract.
    unsafe { imp::switch_to_child(to, arg) }
}

/// Child → parent: suspends the current context as a child and resumes the
/// parent `to`. Returns when the parent resumes this child again.
///
/// # Safety
/// The current context is a child; `to` is the parent context that last
/// resumed it (or another suspended parent), saved by [`switch_to_child`].
#[inline(always)]
pub(crate) unsafe fn switch_to_parent(to: StackPointer, arg: usize) -> Transfer {
    // SAFETY: forwarded from this function's contract.
    unsafe { imp::switch_to_parent(to, arg) }
}

/// Child → parent for the last time: resumes `to` with `from` null. The
/// current context is abandoned; its stack may be reused once the parent has
/// read whatever `arg` points to.
///
/// # Safety
/// As for [`switch_to_parent`]; in addition nothing on the current stack may
/// need dropping.
#[inline(always)]
pub(crate) unsafe fn exit_to_parent(to: StackPointer, arg: usize) -> ! {
    // SAFETY: forwarded from this function's contract.
    unsafe { imp::exit_to_parent(to, arg) }
}

/// Lays out a fresh context for the jump family at the top of a stack.
///
/// # Safety
/// As for [`init_stack`]; the context must be resumed with [`jump`].
#[inline]
pub(crate) unsafe fn init_jump_stack(top: *mut u8, entry: EntryFn, ctx: *mut u8) -> StackPointer {
    debug_assert_eq!(top as usize % STACK_ALIGNMENT, 0);
    // SAFETY: forwarded from this function's contract.
    unsafe { imp::init_jump_stack(top, entry, ctx) }
}

/// Suspends the current context and resumes `to`, both of the jump family
/// (g0 ↔ G, and the direct G → G). Returns when something jumps back.
///
/// # Safety
/// The current context is a jump-family context (or a thread's own stack
/// acting as g0); `to` is a suspended jump-family context (fresh from
/// [`init_jump_stack`] or saved by `jump`) that nothing else will resume.
#[inline(always)]
pub(crate) unsafe fn jump(to: StackPointer, arg: usize) -> Transfer {
    // SAFETY: forwarded from this function's contract.
    unsafe { imp::jump(to, arg) }
}

/// Jumps to `to` for the last time, delivering a null `from`.
///
/// # Safety
/// As for [`jump`]; nothing on the current stack may need dropping.
#[inline(always)]
pub(crate) unsafe fn jump_exit(to: StackPointer, arg: usize) -> ! {
    // SAFETY: forwarded from this function's contract.
    unsafe { imp::jump_exit(to, arg) }
}

#[cfg(test)]
mod tests;
