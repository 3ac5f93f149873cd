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
//! Contexts come in two roles, which exist so that x86_64 can pair every
//! `call` with a `ret` and keep the CPU's return-address predictor right
//! (see `asm-notes/x86_64-sysv.md`):
//!
//! - a **parent** context is one that resumed a child (a thread running a
//!   coroutine, an M's g0 running a G). It is only ever resumed by its child,
//!   with [`switch_to_parent`] or [`exit_to_parent`].
//! - a **child** context is a coroutine / G. It is resumed by a parent with
//!   [`switch_to_child`] or by another child with [`switch_to_sibling`] (the
//!   direct G→G switch that skips g0).
//!
//! A fresh stack prepared by [`init_stack`] is a child context whose first
//! resumption calls the entry function `entry(arg, from, ctx)` through an
//! `extern "C"` trampoline at the bottom of the stack. The trampoline is never
//! returned through (`entry` returns `!`), and its unwind information marks
//! the end of the stack, so backtraces and debuggers stop there cleanly.
//!
//! | function              | from role | to role | x86_64 transfer    | aarch64   |
//! |-----------------------|-----------|---------|--------------------|-----------|
//! | [`switch_to_child`]   | parent    | child   | `call` into child  | `gort_switch` |
//! | [`switch_to_parent`]  | child     | parent  | `ret` into parent  | `gort_switch` |
//! | [`switch_to_sibling`] | child     | child   | `jmp` into child   | `gort_switch` |
//! | [`exit_to_parent`]    | child     | parent  | `ret`, `from` null | `gort_exit`   |
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
/// [`switch_to_parent`]/[`switch_to_sibling`]) that nothing else will resume;
/// the child must eventually come back with [`switch_to_parent`] or
/// [`exit_to_parent`] naming this parent.
#[inline(always)]
pub(crate) unsafe fn switch_to_child(to: StackPointer, arg: usize) -> Transfer {
    // SAFETY: forwarded from this function's contract.
    unsafe { imp::switch_to_child(to, arg) }
}

/// Child → parent: suspends the current context as a child and resumes the
/// parent `to`. Returns when a parent or sibling resumes this child.
///
/// # Safety
/// The current context is a child; `to` is the parent context that last
/// resumed it (or another suspended parent), saved by [`switch_to_child`].
#[inline(always)]
pub(crate) unsafe fn switch_to_parent(to: StackPointer, arg: usize) -> Transfer {
    // SAFETY: forwarded from this function's contract.
    unsafe { imp::switch_to_parent(to, arg) }
}

/// Child → child: the direct G→G switch. Suspends the current child and
/// resumes the child `to` without passing through the parent; `to` later
/// returns to the parent the current child would have returned to.
///
/// # Safety
/// The current context is a child and `to` a suspended child context that
/// nothing else will resume.
#[inline(always)]
#[allow(
    dead_code,
    reason = "the scheduler's direct G→G hand-off is its first user"
)]
pub(crate) unsafe fn switch_to_sibling(to: StackPointer, arg: usize) -> Transfer {
    // SAFETY: forwarded from this function's contract.
    unsafe { imp::switch_to_sibling(to, arg) }
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

#[cfg(test)]
mod tests;
