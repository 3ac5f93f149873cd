// gort context switch for aarch64 (AAPCS64), Linux ELF.
//
// This file is plain assembly, read by two assemblers:
//   - LLVM's integrated assembler, through `global_asm!(include_str!("aarch64.S"),
//     options(raw))` in src/arch/aarch64.rs;
//   - GNU as, through aarch64-linux-gnu-gcc, by the standalone harness
//     tests/aarch64/harness.c (run under qemu-aarch64 by
//     tests/arch_aarch64_qemu.rs).
// Hence: no C preprocessor, no braces, `//` comments only. The directives are
// Linux ELF ones (`.type`, `.size`, `%progbits`); macOS (Mach-O) would need
// `_`-prefixed symbol names and no `.type`/`.size`/note section (untested).
// Why each register is (or is not) saved: asm-notes/aarch64-aapcs64.md.
//
// Frame layout (one frame, 160 bytes, 16-byte aligned, the same for a
// suspended context and a fresh one). S is the saved stack pointer, the value
// gort passes around as a `StackPointer`.
//
//   Suspended context                      Fresh context (gort_init_stack)
//
//   higher addresses                       top (16-aligned, exclusive end)
//   +----------------+ S+160 = sp of the   +----------------+ top = S+160
//   | x30 (lr)       | S+152   suspended   | gort_trampoline| S+152  x30
//   | x29 (fp)       | S+144   code        | 0              | S+144  x29: ends fp chain
//   | x28            | S+136               | 0              | S+136
//   | x27            | S+128               | 0              | S+128
//   | x26            | S+120               | 0              | S+120
//   | x25            | S+112               | 0              | S+112
//   | x24            | S+104               | 0              | S+104
//   | x23            | S+96                | 0              | S+96
//   | x22            | S+88                | 0              | S+88
//   | x21            | S+80                | 0              | S+80
//   | x20            | S+72                | ctx            | S+72   x20
//   | x19            | S+64                | entry          | S+64   x19
//   | d15            | S+56                | 0              | S+56
//   | d14            | S+48                | 0              | S+48
//   | d13            | S+40                | 0              | S+40
//   | d12            | S+32                | 0              | S+32
//   | d11            | S+24                | 0              | S+24
//   | d10            | S+16                | 0              | S+16
//   | d9             | S+8                 | 0              | S+8
//   | d8             | S+0  <- S           | 0              | S+0  <- S = top - 160
//   +----------------+                     +----------------+
//   lower addresses
//
// In a suspended context, x30 is the return address of the `bl gort_switch`
// that suspended it and S+160 is the sp it had at that call. Restoring the
// frame and popping it therefore looks, to the suspended code, exactly like
// gort_switch returning.
//
// Everything stays at or above sp at all times (allocation is the first
// store, release the last load), so a signal delivered in the middle of a
// switch cannot clobber a frame (AAPCS64 Linux has no red zone anyway).

    .text

// Marks the stack non-executable for the GNU toolchain; LLVM adds the same
// note itself. Only switches section inside push/pop, so `.text` stays current.
    .pushsection .note.GNU-stack,"",%progbits
    .popsection

// CFI for "a 160-byte frame of the layout above sits at sp, CFA = S+160".
// Used by gort_switch and gort_exit at every point where that is true, so
// that gdb and unwinders can walk out of a switch caught mid-way (the frame
// describes whichever context sp currently points into). DWARF numbers:
// x19..x30 are 19..30, d8..d15 are v8..v15 = 72..79.
    .macro gort_cfi_frame
    .cfi_def_cfa_offset 160
    .cfi_offset d8, -160
    .cfi_offset d9, -152
    .cfi_offset d10, -144
    .cfi_offset d11, -136
    .cfi_offset d12, -128
    .cfi_offset d13, -120
    .cfi_offset d14, -112
    .cfi_offset d15, -104
    .cfi_offset x19, -96
    .cfi_offset x20, -88
    .cfi_offset x21, -80
    .cfi_offset x22, -72
    .cfi_offset x23, -64
    .cfi_offset x24, -56
    .cfi_offset x25, -48
    .cfi_offset x26, -40
    .cfi_offset x27, -32
    .cfi_offset x28, -24
    .cfi_offset x29, -16
    .cfi_offset x30, -8
    .endm

// ---------------------------------------------------------------------------
// Transfer gort_switch(void *to /* x0 */, usize arg /* x1 */)
//
// Entry (by `bl`, from any context: parent, child or sibling):
//   x0  = to: the saved sp S of a suspended (or fresh) context
//   x1  = arg: the word to hand over
//   x30 = where the current context resumes; sp = its sp (16-aligned)
// Exit (by `ret` inside the context `to`):
//   x0  = arg, x1 = from: the saved sp of the context that just left
//   sp, x19-x30, d8-d15 = those saved in `to`'s frame; `to`'s frame popped
// Clobbers: x2 (besides the results). 25 instructions, no branch but `ret`.
// ---------------------------------------------------------------------------
    .p2align 4
    .globl gort_switch
    .hidden gort_switch
    .type gort_switch, %function
gort_switch:
    .cfi_startproc
    .cfi_remember_state                 // row at entry: CFA = sp, nothing saved
    // Save the current context: allocate the frame with the first store.
    stp d8, d9, [sp, #-160]!            // sp -= 160; d8, d9 at S+0
    gort_cfi_frame                      // (CFI: the frame is valid from here on)
    stp d10, d11, [sp, #16]             // d10, d11 at S+16
    stp d12, d13, [sp, #32]             // d12, d13 at S+32
    stp d14, d15, [sp, #48]             // d14, d15 at S+48
    stp x19, x20, [sp, #64]             // x19, x20 at S+64
    stp x21, x22, [sp, #80]             // x21, x22 at S+80
    stp x23, x24, [sp, #96]             // x23, x24 at S+96
    stp x25, x26, [sp, #112]            // x25, x26 at S+112
    stp x27, x28, [sp, #128]            // x27, x28 at S+128
    stp x29, x30, [sp, #144]            // fp, lr (resume address) at S+144
    // Swap stacks.
    mov x2, sp                          // x2 = from = our saved sp S
    mov sp, x0                          // sp = to: now on the target's frame
    // Restore the target context; lr first so that `ret` is not kept waiting.
    ldp x29, x30, [sp, #144]            // fp, lr (target's resume address)
    ldp x19, x20, [sp, #64]             // x19, x20
    ldp x21, x22, [sp, #80]             // x21, x22
    ldp x23, x24, [sp, #96]             // x23, x24
    ldp x25, x26, [sp, #112]            // x25, x26
    ldp x27, x28, [sp, #128]            // x27, x28
    ldp d10, d11, [sp, #16]             // d10, d11
    ldp d12, d13, [sp, #32]             // d12, d13
    ldp d14, d15, [sp, #48]             // d14, d15
    ldp d8, d9, [sp], #160              // d8, d9; pop the frame: sp = S_to + 160
    .cfi_restore_state                  // (CFI: back to CFA = sp, all in registers)
    // Deliver the Transfer.
    mov x0, x1                          // x0 = arg
    mov x1, x2                          // x1 = from
    ret                                 // resume the target at its x30
    .cfi_endproc
    .size gort_switch, . - gort_switch

// ---------------------------------------------------------------------------
// noreturn gort_exit(void *to /* x0 */, usize arg /* x1 */) -> !
//
// Like gort_switch, but the current context is abandoned: nothing is saved
// and the target receives from = 0 (null).
// Entry (by `bl`): x0 = to, x1 = arg.
// Exit (by `ret` inside `to`): x0 = arg, x1 = 0; sp, x19-x30, d8-d15 as saved
// in `to`'s frame, which is popped. 14 instructions.
// ---------------------------------------------------------------------------
    .p2align 4
    .globl gort_exit
    .hidden gort_exit
    .type gort_exit, %function
gort_exit:
    .cfi_startproc
    .cfi_remember_state                 // row at entry: CFA = sp, nothing saved
    mov sp, x0                          // sp = to: now on the target's frame
    gort_cfi_frame                      // (CFI: the target's frame is valid)
    ldp x29, x30, [sp, #144]            // fp, lr (target's resume address)
    ldp x19, x20, [sp, #64]             // x19, x20
    ldp x21, x22, [sp, #80]             // x21, x22
    ldp x23, x24, [sp, #96]             // x23, x24
    ldp x25, x26, [sp, #112]            // x25, x26
    ldp x27, x28, [sp, #128]            // x27, x28
    ldp d10, d11, [sp, #16]             // d10, d11
    ldp d12, d13, [sp, #32]             // d12, d13
    ldp d14, d15, [sp, #48]             // d14, d15
    ldp d8, d9, [sp], #160              // d8, d9; pop the frame
    .cfi_restore_state                  // (CFI: back to CFA = sp, all in registers)
    mov x0, x1                          // x0 = arg
    mov x1, xzr                         // x1 = from = null: we exited
    ret                                 // resume the target at its x30
    .cfi_endproc
    .size gort_exit, . - gort_exit

// ---------------------------------------------------------------------------
// void *gort_init_stack(void *top /* x0 */, EntryFn entry /* x1 */,
//                       void *ctx /* x2 */)
//
// Entry (ordinary call): x0 = top, 16-aligned, with >= 160 writable bytes
// below it; x1 = entry; x2 = ctx.
// Exit: x0 = S = top - 160, the saved sp of a fresh context (right-hand
// diagram above). The first gort_switch into S "returns" into gort_trampoline
// with x0 = arg, x1 = from, x19 = entry, x20 = ctx, x29 = 0, sp = top.
// Clobbers x3, x4. Touches only [top - 160, top).
// ---------------------------------------------------------------------------
    .p2align 4
    .globl gort_init_stack
    .hidden gort_init_stack
    .type gort_init_stack, %function
gort_init_stack:
    .cfi_startproc
    sub x3, x0, #160                    // x3 = S = top - 160
    stp xzr, xzr, [x3, #0]              // d8, d9 = 0
    stp xzr, xzr, [x3, #16]             // d10, d11 = 0
    stp xzr, xzr, [x3, #32]             // d12, d13 = 0
    stp xzr, xzr, [x3, #48]             // d14, d15 = 0
    stp x1, x2, [x3, #64]               // x19 = entry, x20 = ctx
    stp xzr, xzr, [x3, #80]             // x21, x22 = 0
    stp xzr, xzr, [x3, #96]             // x23, x24 = 0
    stp xzr, xzr, [x3, #112]            // x25, x26 = 0
    stp xzr, xzr, [x3, #128]            // x27, x28 = 0
    // A local label, not the global symbol: resolved by the assembler, so no
    // relocation against a (possibly preemptible) global in a shared object.
    adr x4, .Lgort_trampoline           // x4 = &gort_trampoline
    stp xzr, x4, [x3, #144]             // x29 = 0 (end of fp chain), x30 = trampoline
    mov x0, x3                          // return S
    ret
    .cfi_endproc
    .size gort_init_stack, . - gort_init_stack

// ---------------------------------------------------------------------------
// gort_trampoline: the bottom frame of every coroutine stack. Never called.
//
// Entry (by the `ret` of the first gort_switch into a fresh context):
//   x0 = arg, x1 = from (the Transfer), x19 = entry, x20 = ctx,
//   x29 = 0, sp = top (16-aligned).
// Calls entry(arg, from, ctx), which must never return.
//
// CFI: the FDE says the return address (x30) is undefined, which is how DWARF
// marks the outermost frame: gdb's `bt` and libgcc's _Unwind_Backtrace stop
// here (END_OF_STACK) instead of reading garbage above the stack top. The CFA
// is sp + 0 = top (the CIE default, restated for the reader): the true value,
// since nothing of ours lies above top.
//
// The FDE starts one `nop` *before* the symbol. Unwinders look up the FDE of a
// caller frame at (return address - 1); when a switch is caught at its `ret`
// into a fresh context, the return address is gort_trampoline itself, and
// without the nop that lookup would land in the padding after gort_init_stack.
// The nop is never executed. Return addresses from `blr x19` point at the
// `brk`, which is inside the FDE too.
// ---------------------------------------------------------------------------
    .p2align 4
    .globl gort_trampoline
    .hidden gort_trampoline
    .type gort_trampoline, %function
    .cfi_startproc
    .cfi_def_cfa sp, 0                  // CFA = sp = top of the stack
    .cfi_undefined x30                  // no caller: this is the outermost frame
    nop                                 // lookup slot for (gort_trampoline - 1)
gort_trampoline:
.Lgort_trampoline:
    mov x2, x20                         // x2 = ctx (x0 = arg, x1 = from already)
    blr x19                             // entry(arg, from, ctx); never returns
    brk #1                              // entry returned: trap
    .cfi_endproc
    .size gort_trampoline, . - gort_trampoline
