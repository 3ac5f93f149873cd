//! The x86_64 System V context switch, written as inline `asm!`.
//!
//! Why inline asm and not a called function: the asm blocks declare r12–r15
//! and every caller-saved register as clobbered, so the compiler saves only
//! the registers that are live across the switch, and saves them once per
//! enclosing function rather than once per switch. rbx and rbp cannot be
//! declared as clobbers (LLVM reserves them), so the asm pushes them itself.
//! The long version, with the measured instruction counts, is in
//! `asm-notes/x86_64-sysv.md`.
//!
//! # Register contract of every switch
//! - `rdx`: the target's saved stack pointer (input);
//! - `rdi`: the word passed across (input, and output on the resumed side);
//! - `rsi`: on the resumed side, the stack pointer of the context that
//!   switched away (`from`), or 0 after [`exit_to_parent`].
//!
//! # A suspended context (parent or child: the layouts are the same)
//! ```text
//!  high  +----------------+
//!        |      ...       |  the suspended code's own frames
//!        +----------------+
//!        | saved rbp      |
//!        +----------------+
//!        | saved rbx      |
//!        +----------------+
//!        | resume address |  <- saved stack pointer (≡ 8 mod 16)
//!  low   +----------------+
//! ```
//! A *parent*'s resume address was pushed by `call` in [`switch_to_child`]
//! and is reached by `ret`, so the return-address predictor sees a matched
//! call/ret pair on every resume+suspend round trip. A *child*'s resume
//! address is the label `2:` in [`switch_to_parent`], pushed with
//! `lea`+`push` and reached by `call [rdx]`; the code there finds its own
//! stack in `rdx`.
//!
//! # A fresh context (made by [`init_stack`])
//! ```text
//!  top   +----------------+  <- stack top, 16-byte aligned
//!        | 0              |  overwritten by the return address of `call entry`
//!        +----------------+
//!        | ctx            |
//!        +----------------+
//!        | entry          |
//!        +----------------+
//!        | gort_trampoline|  <- saved stack pointer
//!        +----------------+
//! ```
//! The first `call [rdx]`/`jmp [rdx]` lands in `gort_trampoline`, which moves
//! to this stack, sets `rsp` to the aligned top and calls
//! `entry(arg = rdi, from = rsi, ctx)`. Its CFI marks the return address as
//! undefined, which is how DWARF says "outermost frame": backtraces and gdb
//! stop there.

use core::arch::{asm, global_asm};

use super::{EntryFn, StackPointer, Transfer};

/// Bytes of the fresh frame that [`init_stack`] writes below the top.
pub(super) const INIT_FRAME_SIZE: usize = 32;

global_asm!(
    ".pushsection .text.gort_trampoline,\"ax\",@progbits",
    ".p2align 4",
    ".globl gort_trampoline",
    ".hidden gort_trampoline",
    ".type gort_trampoline,@function",
    ".globl gort_jump_trampoline",
    ".hidden gort_jump_trampoline",
    "gort_trampoline:",
    ".cfi_startproc",
    // Outermost frame: there is no caller to unwind into.
    ".cfi_undefined rip",
    // Entered by the paired family (`call [rdx]`) like a child's resume
    // label: rsp is the switcher's stack, rdx our saved stack pointer, rdi
    // the word passed.
    "mov rsi, rsp", //        from = the switcher's saved stack pointer
    // Entered by the jump family (`jmp [rdx]`): rsi is already `from` (and
    // rsp already on our stack, which the next lines set anyway).
    "gort_jump_trampoline:",
    "mov rax, [rdx + 8]",  //  entry
    "lea rsp, [rdx + 32]", // move to the aligned top of our stack
    "mov rdx, [rdx + 16]", // third argument: ctx
    "xor ebp, ebp",        //        end of the frame-pointer chain
    "call rax",            //            entry(arg, from, ctx), never returns
    "ud2",
    ".cfi_endproc",
    ".size gort_trampoline, . - gort_trampoline",
    ".popsection",
);

unsafe extern "C" {
    // Not a real function: entered only through a fresh frame. Declared so
    // that Rust can take its address.
    fn gort_trampoline();
}

/// # Safety
/// See [`super::init_stack`].
#[inline]
pub(super) unsafe fn init_stack(top: *mut u8, entry: EntryFn, ctx: *mut u8) -> StackPointer {
    let words = top.cast::<usize>();
    // SAFETY: the caller guarantees INIT_FRAME_SIZE writable, aligned bytes
    // below `top`; the four writes stay inside them.
    unsafe {
        words.sub(1).write(0);
        words.sub(2).write(ctx as usize);
        words.sub(3).write(entry as *const () as usize);
        words.sub(4).write(gort_trampoline as *const () as usize);
        StackPointer::new_unchecked(words.sub(4).cast())
    }
}

/// # Safety
/// See [`super::switch_to_child`].
#[inline(always)]
pub(super) unsafe fn switch_to_child(to: StackPointer, arg: usize) -> Transfer {
    let (ret, from): (usize, *mut u8);
    // SAFETY: `to` is a suspended child (caller's contract), whose resume
    // code expects exactly this register state; every register the child
    // may change is saved here (rbx, rbp) or declared clobbered.
    unsafe {
        asm!(
            "push rbp",
            "push rbx",
            // Push our resume address and enter the child's resume code.
            "call [rdx]",
            // A child's `ret` lands here, rsp just above our resume address.
            "pop rbx",
            "pop rbp",
            in("rdx") to.as_ptr(),
            inlateout("rdi") arg => ret,
            lateout("rsi") from,
            lateout("r12") _, lateout("r13") _, lateout("r14") _, lateout("r15") _,
            clobber_abi("sysv64"),
        );
    }
    Transfer { arg: ret, from }
}

/// # Safety
/// See [`super::switch_to_parent`].
#[inline(always)]
pub(super) unsafe fn switch_to_parent(to: StackPointer, arg: usize) -> Transfer {
    let (ret, from): (usize, *mut u8);
    // SAFETY: `to` is a suspended parent (caller's contract): its stack top
    // is the return address pushed by its `call`, as `ret` expects.
    unsafe {
        asm!(
            "push rbp",
            "push rbx",
            "lea rax, [rip + 2f]",
            "push rax", //            our resume address
            "mov rsi, rsp", //        from = our saved stack pointer
            "mov rsp, rdx", //        onto the parent's stack
            "ret", //                 back to just after the parent's `call`
            // Resumed by `call [rdx]` or `jmp [rdx]`: rsp is the switcher's
            // stack, rdx our own saved stack pointer.
            "2:",
            "mov rsi, rsp", //        from = the switcher's saved stack pointer
            "lea rsp, [rdx + 8]", //  our stack, past our resume address
            "pop rbx",
            "pop rbp",
            in("rdx") to.as_ptr(),
            inlateout("rdi") arg => ret,
            lateout("rsi") from,
            lateout("r12") _, lateout("r13") _, lateout("r14") _, lateout("r15") _,
            clobber_abi("sysv64"),
        );
    }
    Transfer { arg: ret, from }
}

/// # Safety
/// See [`super::exit_to_parent`].
#[inline(always)]
pub(super) unsafe fn exit_to_parent(to: StackPointer, arg: usize) -> ! {
    // SAFETY: as in `switch_to_parent`; nothing of this context is saved
    // because it will never run again.
    unsafe {
        asm!(
            "mov rsp, rdx",
            "xor esi, esi", // from = null: the child is gone
            "ret",
            in("rdx") to.as_ptr(),
            in("rdi") arg,
            options(noreturn),
        );
    }
}

// ---------------------------------------------------------------------
// The jump family (the scheduler's switch): no `call`, no `ret`.
//
// Every jump pushes rbp, rbx and its resume address (the same layout as a
// suspended paired context), passes its saved stack pointer in rsi, moves
// rsp onto the target's stack just past the target's resume address, and
// `jmp`s to that address. The resumed side finds rsp already on its own
// stack and `from` already in rsi, pops rbx and rbp, and goes on. No
// return-predictor entry is pushed or popped, so a G that returns through
// several frames between two switches never finds the predictor out of
// step.

unsafe extern "C" {
    // The second entry of `gort_trampoline`, for the jump family.
    fn gort_jump_trampoline();
}

/// # Safety
/// See [`super::init_jump_stack`].
#[inline]
pub(super) unsafe fn init_jump_stack(top: *mut u8, entry: EntryFn, ctx: *mut u8) -> StackPointer {
    // The same frame as the paired family's, with its own trampoline.
    // SAFETY: forwarded from this function's contract.
    let sp = unsafe { init_stack(top, entry, ctx) };
    // SAFETY: the frame's lowest word is the resume address just written.
    unsafe {
        sp.as_ptr()
            .cast::<usize>()
            .write(gort_jump_trampoline as *const () as usize)
    };
    sp
}

/// # Safety
/// See [`super::jump`].
#[inline(always)]
pub(super) unsafe fn jump(to: StackPointer, arg: usize) -> Transfer {
    let (ret, from): (usize, *mut u8);
    // SAFETY: `to` is a suspended jump-family context (caller's contract),
    // whose resume code expects rsp just past its resume address, rsi =
    // from and rdi = the word; everything it may change is saved here
    // (rbx, rbp) or declared clobbered.
    unsafe {
        asm!(
            "push rbp",
            "push rbx",
            "lea rax, [rip + 2f]",
            "push rax", //            our resume address
            "mov rsi, rsp", //        from = our saved stack pointer
            "lea rsp, [rdx + 8]", //  onto the target's stack, past its address
            "jmp [rdx]", //           into the target's resume code
            "2:", //                  resumed here by a jump: rsp is ours again
            "pop rbx",
            "pop rbp",
            in("rdx") to.as_ptr(),
            inlateout("rdi") arg => ret,
            lateout("rsi") from,
            lateout("r12") _, lateout("r13") _, lateout("r14") _, lateout("r15") _,
            clobber_abi("sysv64"),
        );
    }
    Transfer { arg: ret, from }
}

/// # Safety
/// See [`super::jump_exit`].
#[inline(always)]
pub(super) unsafe fn jump_exit(to: StackPointer, arg: usize) -> ! {
    // SAFETY: as in `jump`; nothing of this context is saved.
    unsafe {
        asm!(
            "xor esi, esi", //        from = null: this context is gone
            "lea rsp, [rdx + 8]",
            "jmp [rdx]",
            in("rdx") to.as_ptr(),
            in("rdi") arg,
            options(noreturn),
        );
    }
}
