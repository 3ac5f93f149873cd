//! Tests of the raw switch on plain heap stacks (no guard pages, no pool):
//! the contract of `arch/mod.rs`, one property at a time.

use core::cell::Cell;

use super::*;

/// A 16-byte aligned heap buffer standing in for a stack.
struct TestStack(Box<[u128]>);

impl TestStack {
    fn new() -> Self {
        TestStack(vec![0u128; 64 * 1024 / 16].into_boxed_slice())
    }

    fn top(&mut self) -> *mut u8 {
        self.0.as_mut_ptr_range().end.cast()
    }

    fn contains(&self, p: *const u8) -> bool {
        let r = self.0.as_ptr_range();
        (r.start.cast::<u8>()..r.end.cast::<u8>()).contains(&p)
    }
}

fn sp(p: *mut u8) -> StackPointer {
    StackPointer::new(p).expect("null stack pointer where a live context was expected")
}

const STOP: usize = usize::MAX;

/// Answers every word `n` with `n + 1`; exits with 0xdead on `STOP`.
unsafe extern "C" fn increment_entry(arg: usize, from: *mut u8, ctx: *mut u8) -> ! {
    // SAFETY: the tests pass a `Cell<usize>` that outlives the context.
    let entered = unsafe { &*ctx.cast::<Cell<usize>>() };
    entered.set(entered.get() + 1);
    let (mut n, mut parent) = (arg, sp(from));
    loop {
        // SAFETY: `parent` is the context that resumed us last.
        let t = unsafe { switch_to_parent(parent, n + 1) };
        parent = sp(t.from);
        if t.arg == STOP {
            // SAFETY: nothing on this stack needs dropping.
            unsafe { exit_to_parent(parent, 0xdead) }
        }
        n = t.arg;
    }
}

#[test]
fn entry_gets_arg_from_and_ctx_and_words_cross_both_ways() {
    let mut stack = TestStack::new();
    let entered = Cell::new(0usize);
    // SAFETY: the stack is 16-aligned, 64 KiB, and outlives the context.
    let mut child = unsafe {
        init_stack(
            stack.top(),
            increment_entry,
            (&raw const entered).cast_mut().cast(),
        )
    };
    for i in 0..100_000usize {
        // SAFETY: `child` is suspended and only this loop resumes it.
        let t = unsafe { switch_to_child(child, i) };
        assert_eq!(t.arg, i + 1);
        assert!(stack.contains(t.from), "from is not the child's stack");
        child = sp(t.from);
    }
    assert_eq!(entered.get(), 1);
    // SAFETY: as above.
    let t = unsafe { switch_to_child(child, STOP) };
    assert_eq!(t.arg, 0xdead);
    assert!(t.from.is_null(), "an exited child must deliver a null from");
}

/// State shared by the main context and two jump-family contexts A and B
/// that pass control A → B directly (the G→G switch).
struct Siblings {
    main: Cell<*mut u8>,
    a: Cell<*mut u8>,
    b: Cell<*mut u8>,
    trail: Cell<usize>,
}

unsafe extern "C" fn sibling_a(arg: usize, from: *mut u8, ctx: *mut u8) -> ! {
    // SAFETY: the test passes a `Siblings` that outlives both children.
    let s = unsafe { &*ctx.cast::<Siblings>() };
    let (mut arg, mut from) = (arg, from);
    loop {
        s.main.set(from);
        s.trail.set(s.trail.get() * 10 + 1);
        // SAFETY: B is suspended; it returns to main, which resumes us.
        let t = unsafe { jump(sp(s.b.get()), arg * 2) };
        (arg, from) = (t.arg, t.from);
    }
}

unsafe extern "C" fn sibling_b(arg: usize, from: *mut u8, ctx: *mut u8) -> ! {
    // SAFETY: as in `sibling_a`.
    let s = unsafe { &*ctx.cast::<Siblings>() };
    let (mut arg, mut from) = (arg, from);
    loop {
        // We were entered from A, not from main: `from` is A.
        s.a.set(from);
        s.trail.set(s.trail.get() * 10 + 2);
        // SAFETY: main is suspended in its jump to A.
        let t = unsafe { jump(sp(s.main.get()), arg + 3) };
        (arg, from) = (t.arg, t.from);
    }
}

#[test]
fn jump_family_switches_g_to_g_directly() {
    let (mut sa, mut sb) = (TestStack::new(), TestStack::new());
    let shared = Siblings {
        main: Cell::new(core::ptr::null_mut()),
        a: Cell::new(core::ptr::null_mut()),
        b: Cell::new(core::ptr::null_mut()),
        trail: Cell::new(0),
    };
    let ctx = (&raw const shared).cast_mut().cast();
    // SAFETY: both stacks are aligned and outlive their contexts.
    unsafe {
        shared
            .a
            .set(init_jump_stack(sa.top(), sibling_a, ctx).as_ptr());
        shared
            .b
            .set(init_jump_stack(sb.top(), sibling_b, ctx).as_ptr());
    }
    for i in 1..1000usize {
        shared.trail.set(0);
        // SAFETY: A is suspended and is only resumed here.
        let t = unsafe { jump(sp(shared.a.get()), i) };
        assert_eq!(t.arg, i * 2 + 3, "the word went main → A → B → main");
        assert_eq!(
            shared.trail.get(),
            12,
            "A ran, then B, and main did not run between"
        );
        assert!(sb.contains(t.from), "main was resumed by B");
        assert!(sa.contains(shared.a.get()), "B saw A as its switcher");
        shared.b.set(t.from);
    }
    // The children loop forever and own nothing: dropping their stacks is fine.
}

/// A callback that a child asks its parent to run on the parent's stack:
/// the shape of Go's `mcall(fn)`.
struct McallRequest {
    f: fn(child: StackPointer, data: usize) -> usize,
    data: usize,
}

unsafe extern "C" fn mcall_child(_arg: usize, from: *mut u8, _ctx: *mut u8) -> ! {
    let mut parent = sp(from);
    for round in 0usize.. {
        let req = McallRequest {
            f: |child, data| {
                // On the parent's stack: our frame is far from the child's sp.
                let here = 0u8;
                let distance = (child.as_ptr() as usize).abs_diff(&raw const here as usize);
                assert!(distance > 64 * 1024, "callback ran on the child's stack");
                data * 3
            },
            data: round,
        };
        // SAFETY: the parent is suspended; `req` lives until we are resumed.
        let t = unsafe { switch_to_parent(parent, &raw const req as usize) };
        assert_eq!(
            t.arg,
            round * 3,
            "the parent handed back the callback's result"
        );
        parent = sp(t.from);
    }
    unreachable!()
}

#[test]
fn mcall_runs_a_callback_after_the_child_left_its_stack() {
    let mut stack = TestStack::new();
    // SAFETY: aligned stack that outlives the context.
    let mut child = unsafe { init_stack(stack.top(), mcall_child, core::ptr::null_mut()) };
    let mut answer = 0;
    for _ in 0..100 {
        // SAFETY: the child is suspended; only this loop resumes it.
        let t = unsafe { switch_to_child(child, answer) };
        child = sp(t.from);
        // SAFETY: the child sent a pointer to a live request on its stack,
        // which stays intact while the child is suspended.
        let req = unsafe { &*(t.arg as *const McallRequest) };
        answer = (req.f)(child, req.data);
    }
}

#[test]
fn floats_and_vectors_survive_switches() {
    // Many values live across each switch on both sides: the compiler must
    // keep them in memory or in callee-saved registers around the asm.
    unsafe extern "C" fn child(arg: usize, from: *mut u8, _ctx: *mut u8) -> ! {
        let mut parent = sp(from);
        let mut acc = [0.5f64; 8];
        let mut v = core::hint::black_box([1.25f32; 16]);
        let mut a = arg;
        loop {
            for (k, x) in acc.iter_mut().enumerate() {
                *x += k as f64 * 0.25;
            }
            v.iter_mut().for_each(|x| *x *= 1.0);
            // SAFETY: parent is suspended.
            let t = unsafe { switch_to_parent(parent, a + acc.iter().sum::<f64>() as usize) };
            parent = sp(t.from);
            a = t.arg;
            assert!(v.iter().all(|&x| x == 1.25));
        }
    }
    let mut stack = TestStack::new();
    // SAFETY: aligned stack that outlives the context.
    let mut c = unsafe { init_stack(stack.top(), child, core::ptr::null_mut()) };
    let mut mine = core::hint::black_box([3.5f64; 4]);
    for i in 1..=1000usize {
        // SAFETY: suspended child, resumed only here.
        let t = unsafe { switch_to_child(c, i) };
        c = sp(t.from);
        // acc[k] = 0.5 + i*k*0.25; sum over k of 0.5 + i*0.25*28 = 4 + 7i
        assert_eq!(t.arg, i + 4 + 7 * i);
        mine.iter_mut().for_each(|x| *x += 0.0);
        assert_eq!(mine, [3.5; 4]);
    }
}

#[cfg(target_arch = "x86_64")]
mod callee_saved {
    //! Each side holds distinct patterns in rbx, rbp and r12–r15 across a
    //! switch and checks them afterwards, so a register the switch failed to
    //! restore would show the other side's pattern.
    use super::*;

    core::arch::global_asm!(
        ".pushsection .text.gort_test_hold_patterns,\"ax\",@progbits",
        ".globl gort_test_hold_patterns",
        ".hidden gort_test_hold_patterns",
        "gort_test_hold_patterns:",
        // (rdi = f, rsi = ctx, rdx = seed) -> mismatch bitmask in rax
        "push rbx",
        "push rbp",
        "push r12",
        "push r13",
        "push r14",
        "push r15",
        "push rdx", // seed; rsp is now 16-aligned for the call
        "mov rax, rdi",
        "mov rdi, rsi",
        "mov rbx, rdx",
        "mov rbp, rdx",
        "mov r12, rdx",
        "mov r13, rdx",
        "mov r14, rdx",
        "mov r15, rdx",
        "add rbp, 1",
        "add r12, 2",
        "add r13, 3",
        "add r14, 4",
        "add r15, 5",
        "call rax",
        "pop r8", // seed
        "xor eax, eax",
        "cmp rbx, r8",
        "setne cl",
        "or al, cl",
        "lea r9, [r8 + 1]",
        "cmp rbp, r9",
        "setne cl",
        "shl cl, 1",
        "or al, cl",
        "lea r9, [r8 + 2]",
        "cmp r12, r9",
        "setne cl",
        "shl cl, 2",
        "or al, cl",
        "lea r9, [r8 + 3]",
        "cmp r13, r9",
        "setne cl",
        "shl cl, 3",
        "or al, cl",
        "lea r9, [r8 + 4]",
        "cmp r14, r9",
        "setne cl",
        "shl cl, 4",
        "or al, cl",
        "lea r9, [r8 + 5]",
        "cmp r15, r9",
        "setne cl",
        "shl cl, 5",
        "or al, cl",
        "pop r15",
        "pop r14",
        "pop r13",
        "pop r12",
        "pop rbp",
        "pop rbx",
        "ret",
        ".popsection",
    );

    unsafe extern "C" {
        fn gort_test_hold_patterns(f: extern "C" fn(*mut u8), ctx: *mut u8, seed: u64) -> u64;
    }

    struct Pair {
        child: Cell<*mut u8>,
        parent: Cell<*mut u8>,
        child_mismatch: Cell<u64>,
        /// Use the jump family instead of the paired one.
        jump: bool,
    }

    extern "C" fn resume_child(ctx: *mut u8) {
        // SAFETY: ctx is the test's `Pair`.
        let p = unsafe { &*ctx.cast::<Pair>() };
        // SAFETY: the child is suspended and only resumed here.
        let t = unsafe {
            if p.jump {
                jump(sp(p.child.get()), 0)
            } else {
                switch_to_child(sp(p.child.get()), 0)
            }
        };
        p.child.set(t.from);
    }

    extern "C" fn suspend_to_parent(ctx: *mut u8) {
        // SAFETY: ctx is the test's `Pair`.
        let p = unsafe { &*ctx.cast::<Pair>() };
        // SAFETY: the parent is suspended in `resume_child`.
        let t = unsafe {
            if p.jump {
                jump(sp(p.parent.get()), 0)
            } else {
                switch_to_parent(sp(p.parent.get()), 0)
            }
        };
        p.parent.set(t.from);
    }

    unsafe extern "C" fn child(_arg: usize, from: *mut u8, ctx: *mut u8) -> ! {
        // SAFETY: ctx is the test's `Pair`.
        let p = unsafe { &*ctx.cast::<Pair>() };
        p.parent.set(from);
        for round in 0u64.. {
            // SAFETY: hold_patterns preserves the ABI's callee-saved set.
            let m = unsafe {
                gort_test_hold_patterns(suspend_to_parent, ctx, 0xc0de_0000_0000 + round * 16)
            };
            p.child_mismatch.set(p.child_mismatch.get() | m);
        }
        unreachable!()
    }

    #[test]
    fn callee_saved_registers_are_preserved_both_ways() {
        check_callee_saved(false);
    }

    #[test]
    fn callee_saved_registers_are_preserved_by_the_jump_family() {
        check_callee_saved(true);
    }

    fn check_callee_saved(jump: bool) {
        let mut stack = TestStack::new();
        let pair = Pair {
            child: Cell::new(core::ptr::null_mut()),
            parent: Cell::new(core::ptr::null_mut()),
            child_mismatch: Cell::new(0),
            jump,
        };
        let ctx: *mut u8 = (&raw const pair).cast_mut().cast();
        // SAFETY: aligned stack that outlives the context.
        let fresh = unsafe {
            if jump {
                init_jump_stack(stack.top(), child, ctx)
            } else {
                init_stack(stack.top(), child, ctx)
            }
        };
        pair.child.set(fresh.as_ptr());
        // First resume: the child starts and parks inside hold_patterns.
        resume_child(ctx);
        for round in 0..10_000u64 {
            // SAFETY: hold_patterns preserves the ABI's callee-saved set.
            let m = unsafe {
                gort_test_hold_patterns(resume_child, ctx, 0xfeed_0000_0000 + round * 16)
            };
            assert_eq!(
                m, 0,
                "parent registers clobbered (bitmask rbx,rbp,r12..r15)"
            );
            assert_eq!(pair.child_mismatch.get(), 0, "child registers clobbered");
        }
    }
}
