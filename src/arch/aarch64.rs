//! The aarch64 (AAPCS64) context switch.
//!
//! The switch itself is the plain assembly file `aarch64.S`, assembled here by
//! LLVM through `global_asm!` and, unchanged, by GNU as in the standalone
//! harness `tests/aarch64/harness.c`, which `tests/arch_aarch64_qemu.rs` runs
//! under `qemu-aarch64`. That file draws the frame layout and states each
//! function's register contract; `asm-notes/aarch64-aapcs64.md` explains the
//! choices.
//!
//! Unlike `x86_64`, every switch is an ordinary call to `gort_switch`, which
//! saves and restores the whole callee-saved set (x19–x29, lr, d8–d15: one
//! 160-byte frame) whatever the caller has live. The call looks like any
//! `extern "C"` call to the compiler, so it already treats every
//! caller-saved register as clobbered. All four switch flavours of the
//! contract in `super` are therefore the same instruction sequence:
//! - [`switch_to_child`], [`switch_to_parent`] and the jump family's
//!   [`jump`] →
//!   `gort_switch(to, arg)`;
//! - [`exit_to_parent`] and [`jump_exit`] → `gort_exit(to, arg)`, which saves nothing and hands
//!   the target a null `from`.

use super::{EntryFn, StackPointer, Transfer};

core::arch::global_asm!(include_str!("aarch64.S"), options(raw));

/// Bytes of the frame `gort_init_stack` writes below the stack top: x19–x30
/// and d8–d15, 20 words, a multiple of 16.
pub(super) const INIT_FRAME_SIZE: usize = 160;

unsafe extern "C" {
    /// Saves the current context in a frame on its stack, resumes the
    /// context saved at `to`, and returns there `(arg, from)` where `from`
    /// is the saved stack pointer of the context that left.
    fn gort_switch(to: *mut u8, arg: usize) -> Transfer;

    /// Resumes the context saved at `to` with `(arg, null)`, saving nothing.
    fn gort_exit(to: *mut u8, arg: usize) -> !;

    /// Writes a fresh frame in `[top - INIT_FRAME_SIZE, top)` whose first
    /// resumption calls `entry(arg, from, ctx)` through `gort_trampoline`;
    /// returns its saved stack pointer, `top - INIT_FRAME_SIZE`.
    fn gort_init_stack(top: *mut u8, entry: EntryFn, ctx: *mut u8) -> *mut u8;
}

/// Lays out a fresh child context below `top`.
///
/// # Safety
/// `top` is 16-byte aligned and the exclusive end of writable memory with at
/// least [`INIT_FRAME_SIZE`] bytes below it, which nothing else uses while
/// the context lives.
#[inline]
pub(super) unsafe fn init_stack(top: *mut u8, entry: EntryFn, ctx: *mut u8) -> StackPointer {
    // SAFETY: the caller guarantees INIT_FRAME_SIZE writable bytes below the
    // 16-aligned `top`; gort_init_stack writes only those and returns
    // `top - INIT_FRAME_SIZE`, the lowest of them, so not null.
    unsafe { StackPointer::new_unchecked(gort_init_stack(top, entry, ctx)) }
}

/// Parent → child: `gort_switch`.
///
/// # Safety
/// `to` is a suspended context (saved by a switch or made by [`init_stack`])
/// that nothing else resumes, on a live stack; see `super::switch_to_child`.
#[inline(always)]
pub(super) unsafe fn switch_to_child(to: StackPointer, arg: usize) -> Transfer {
    // SAFETY: `to` is a suspended context nothing else resumes (caller's
    // contract), so its frame holds a valid register set to restore.
    unsafe { gort_switch(to.as_ptr(), arg) }
}

/// Child → parent: `gort_switch`.
///
/// # Safety
/// `to` is the suspended parent context, as for [`switch_to_child`]; see
/// `super::switch_to_parent`.
#[inline(always)]
pub(super) unsafe fn switch_to_parent(to: StackPointer, arg: usize) -> Transfer {
    // SAFETY: `to` is a suspended context nothing else resumes (caller's
    // contract), so its frame holds a valid register set to restore.
    unsafe { gort_switch(to.as_ptr(), arg) }
}
/// Child → parent for the last time: `gort_exit`, which hands the parent a
/// null `from`.
///
/// # Safety
/// As for [`switch_to_parent`]; the current context is never resumed, so
/// nothing on its stack may need dropping; see `super::exit_to_parent`.
#[inline(always)]
pub(super) unsafe fn exit_to_parent(to: StackPointer, arg: usize) -> ! {
    // SAFETY: `to` is a suspended parent nothing else resumes (caller's
    // contract); abandoning the current stack is allowed by the same contract.
    unsafe { gort_exit(to.as_ptr(), arg) }
}

/// The jump family needs no separate code on aarch64: `gort_switch` is
/// already symmetric (the call/ret pairing is an x86_64 optimisation), so a
/// fresh jump-family frame is a fresh frame.
///
/// # Safety
/// As [`init_stack`].
#[inline]
pub(super) unsafe fn init_jump_stack(top: *mut u8, entry: EntryFn, ctx: *mut u8) -> StackPointer {
    // SAFETY: forwarded from this function's contract.
    unsafe { init_stack(top, entry, ctx) }
}

/// Any context → any context: `gort_switch`.
///
/// # Safety
/// See `super::jump`.
#[inline(always)]
pub(super) unsafe fn jump(to: StackPointer, arg: usize) -> Transfer {
    // SAFETY: `to` is a suspended context (caller's contract);
    // gort_switch saves and restores the whole callee-saved set.
    unsafe { gort_switch(to.as_ptr(), arg) }
}

/// The last jump: `gort_exit`.
///
/// # Safety
/// See `super::jump_exit`.
#[inline(always)]
pub(super) unsafe fn jump_exit(to: StackPointer, arg: usize) -> ! {
    // SAFETY: as in `jump`; nothing of this context is saved.
    unsafe { gort_exit(to.as_ptr(), arg) }
}
