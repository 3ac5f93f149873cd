//! `Coroutine` behaviour: values both ways, panics, drops, nesting, depth.

mod support;

use std::{
    cell::{Cell, RefCell},
    io,
    rc::Rc,
};

use gort::coro::{Builder, Coroutine, CoroutineResult, Yielder};

#[test]
fn values_pass_both_ways_and_the_return_value_arrives() {
    let mut co = Coroutine::new(|y: &Yielder<String, usize>, first: String| {
        let mut seen = vec![first];
        for i in 0..5 {
            let next = y.suspend(i * 10);
            seen.push(next);
        }
        seen.join(",")
    })
    .unwrap();
    assert!(!co.started());
    assert_eq!(co.resume("a".into()), CoroutineResult::Yield(0));
    for (i, s) in ["b", "c", "d", "e"].iter().enumerate() {
        assert_eq!(
            co.resume(s.to_string()),
            CoroutineResult::Yield((i + 1) * 10)
        );
    }
    assert_eq!(
        co.resume("f".into()),
        CoroutineResult::Return("a,b,c,d,e,f".to_string())
    );
    assert!(co.is_finished());
}

#[test]
fn floats_and_simd_values_survive_suspends() {
    #[cfg(target_arch = "x86_64")]
    use std::arch::x86_64::{__m128d, _mm_add_pd, _mm_set_pd, _mm_storeu_pd};

    let mut co = Coroutine::new(|y: &Yielder<f64, f64>, mut x: f64| {
        let mut acc = 0.0f64;
        // SAFETY: SSE2 is part of the x86_64 baseline.
        #[cfg(target_arch = "x86_64")]
        let mut v: __m128d = unsafe { _mm_set_pd(1.5, -2.25) };
        for _ in 0..1000 {
            acc += x;
            x = y.suspend(acc * 0.5);
            // SAFETY: SSE2 is part of the x86_64 baseline.
            #[cfg(target_arch = "x86_64")]
            unsafe {
                v = _mm_add_pd(v, _mm_set_pd(0.5, 0.25));
            }
        }
        #[cfg(target_arch = "x86_64")]
        {
            let mut out = [0.0f64; 2];
            // SAFETY: storing two doubles into a two-double array.
            unsafe { _mm_storeu_pd(out.as_mut_ptr(), v) };
            assert_eq!(out, [-2.25 + 250.0, 1.5 + 500.0]);
        }
        acc
    })
    .unwrap();
    let mut expected = 0.0f64;
    let mine = std::hint::black_box([0.1f64, 0.2, 0.3, 0.4]);
    let mut input = 0.75f64;
    for _ in 0..1000 {
        expected += input;
        match co.resume(input) {
            CoroutineResult::Yield(v) => assert_eq!(v, expected * 0.5),
            CoroutineResult::Return(_) => panic!("returned early"),
        }
        input *= 1.0001;
        assert_eq!(mine, [0.1, 0.2, 0.3, 0.4]);
    }
    assert_eq!(co.resume(0.0), CoroutineResult::Return(expected));
}

/// Recurses until `stop` bytes of stack below `start` are used; returns the
/// depth reached.
#[inline(never)]
fn recurse_until(start: usize, stop: usize, depth: usize) -> usize {
    let frame = std::hint::black_box([depth as u8; 512]);
    let here = &raw const frame as usize;
    if start - here >= stop {
        return depth + usize::from(frame[0] == u8::MAX);
    }
    recurse_until(start, stop, depth + 1) + std::hint::black_box(0)
}

#[test]
fn recursion_to_most_of_the_stack_works() {
    for size in [64 * 1024, 256 * 1024, 1024 * 1024] {
        let mut co = Coroutine::<(), (), usize>::with_stack_size(size, move |_, ()| {
            let marker = 0u8;
            let start = &raw const marker as usize;
            recurse_until(start, size * 3 / 4, 0)
        })
        .unwrap();
        let depth = co.resume(()).as_return().unwrap();
        assert!(depth > 10, "stack of {size} bytes: only {depth} frames");
    }
}

#[test]
fn a_panic_reaches_the_caller_of_resume_and_finishes_the_coroutine() {
    let mut co = Coroutine::<(), (), ()>::new(|y, ()| {
        y.suspend(());
        panic!("boom in coroutine");
    })
    .unwrap();
    assert_eq!(co.resume(()), CoroutineResult::Yield(()));
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| co.resume(()))).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"boom in coroutine"));
    assert!(co.is_finished());
    let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| co.resume(())));
    assert!(again.is_err(), "resuming a finished coroutine must panic");
}

/// Counts drops into a shared cell.
struct DropCounter(Rc<Cell<usize>>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn dropping_a_suspended_coroutine_unwinds_its_stack() {
    let drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    let after_suspend = Rc::new(Cell::new(false));
    let a = after_suspend.clone();
    let mut co = Coroutine::<(), u32, ()>::new(move |y, ()| {
        let _outer = DropCounter(d.clone());
        let nested = || {
            let _inner = DropCounter(d.clone());
            let _boxed = Box::new(DropCounter(d.clone()));
            y.suspend(7);
            a.set(true); // never reached: the coroutine is dropped while suspended
        };
        nested();
    })
    .unwrap();
    assert_eq!(co.resume(()), CoroutineResult::Yield(7));
    assert_eq!(drops.get(), 0);
    drop(co);
    assert_eq!(
        drops.get(),
        3,
        "all three locals were dropped by the unwind"
    );
    assert!(!after_suspend.get());
}

#[test]
fn dropping_a_fresh_coroutine_drops_its_closure_without_running_it() {
    let drops = Rc::new(Cell::new(0));
    let ran = Rc::new(Cell::new(false));
    let (d, r) = (DropCounter(drops.clone()), ran.clone());
    let co = Coroutine::<(), (), ()>::new(move |_, ()| {
        let _keep = &d;
        r.set(true);
    })
    .unwrap();
    drop(co);
    assert_eq!(drops.get(), 1);
    assert!(!ran.get());
}

#[test]
fn dropping_a_finished_coroutine_is_a_no_op() {
    let mut co = Coroutine::<(), (), u8>::new(|_, ()| 3).unwrap();
    assert_eq!(co.resume(()), CoroutineResult::Return(3));
    drop(co);
}

#[test]
fn a_coroutine_that_swallows_its_forced_unwind_is_leaked_not_freed() {
    let mut co = Coroutine::<(), (), ()>::new(|y, ()| {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| y.suspend(())));
        assert!(r.is_err(), "the drop's unwind arrives as a panic payload");
        y.suspend(()); // misbehaves: suspends again instead of finishing
    })
    .unwrap();
    co.resume(());
    drop(co); // must neither hang nor free live frames
}

#[test]
fn many_coroutines_interleave() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let mut cos: Vec<Coroutine<(), (), ()>> = (0..100)
        .map(|i| {
            let log = log.clone();
            Coroutine::new(move |y: &Yielder<(), ()>, ()| {
                for step in 0..10 {
                    log.borrow_mut().push((i, step));
                    y.suspend(());
                }
            })
            .unwrap()
        })
        .collect();
    for step in 0..=10 {
        for co in cos.iter_mut() {
            let r = co.resume(());
            assert_eq!(r.as_return().is_some(), step == 10);
        }
    }
    let log = log.borrow();
    assert_eq!(log.len(), 1000);
    for (k, &(i, step)) in log.iter().enumerate() {
        assert_eq!((i, step), (k % 100, k / 100), "round-robin order");
    }
}

#[test]
fn a_coroutine_can_resume_another_from_inside() {
    let mut outer = Coroutine::<u32, u32, u32>::new(|y, first| {
        let mut inner = Coroutine::<u32, u32, u32>::new(|iy, mut v| {
            for _ in 0..3 {
                v = iy.suspend(v + 100);
            }
            v
        })
        .unwrap();
        let mut x = first;
        for _ in 0..3 {
            let from_inner = inner.resume(x).as_yield().unwrap();
            x = y.suspend(from_inner);
        }
        inner.resume(x).as_return().unwrap() + 1
    })
    .unwrap();
    assert_eq!(outer.resume(1), CoroutineResult::Yield(101));
    assert_eq!(outer.resume(2), CoroutineResult::Yield(102));
    assert_eq!(outer.resume(3), CoroutineResult::Yield(103));
    assert_eq!(outer.resume(4), CoroutineResult::Return(5));
}

#[test]
fn ten_million_round_trips_neither_leak_nor_crash() {
    // RSS is per process: measure in a child where no other test runs.
    const NAME: &str = "ten_million_round_trips_neither_leak_nor_crash";
    if !support::is_child(NAME) {
        return support::assert_child_succeeds(NAME);
    }
    let mut co = Coroutine::<u64, u64, ()>::new(|y, mut n| {
        loop {
            n = y.suspend(n ^ 0x5a5a);
        }
    })
    .unwrap();
    for i in 0..1_000_000u64 {
        assert_eq!(co.resume(i), CoroutineResult::Yield(i ^ 0x5a5a));
    }
    let before = support::rss_bytes();
    for i in 0..10_000_000u64 {
        let r = co.resume(i);
        debug_assert_eq!(r, CoroutineResult::Yield(i ^ 0x5a5a));
        std::hint::black_box(r);
    }
    let after = support::rss_bytes();
    assert!(
        after <= before + 1024 * 1024,
        "RSS grew from {before} to {after} bytes"
    );
}

#[test]
fn bad_stack_sizes_are_clear_errors() {
    let err = Coroutine::<(), (), ()>::with_stack_size(1000, |_, ()| ()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("below the minimum"), "{err}");
    let err = Coroutine::<(), (), ()>::with_stack_size(usize::MAX / 2, |_, ()| ()).unwrap_err();
    assert!(err.to_string().contains("above the maximum"), "{err}");
}

#[test]
fn a_closure_too_big_for_its_stack_is_an_error() {
    let big = [7u8; 40 * 1024];
    let err = Builder::new()
        .stack_size(64 * 1024)
        .build(move |_: &Yielder<(), ()>, ()| big[0])
        .unwrap_err();
    assert!(err.to_string().contains("closure"), "{err}");
}

#[test]
fn unguarded_coroutines_work_like_guarded_ones() {
    let mut cos: Vec<Coroutine<u32, u32, u32>> = (0..1000)
        .map(|i| {
            Builder::new()
                .stack_size(32 * 1024)
                .stack_guard(false)
                .build(move |y: &Yielder<u32, u32>, a| y.suspend(a + i) * 2)
                .unwrap()
        })
        .collect();
    for (i, co) in cos.iter_mut().enumerate() {
        assert_eq!(co.resume(1), CoroutineResult::Yield(1 + i as u32));
    }
    for co in cos.iter_mut() {
        assert_eq!(co.resume(21), CoroutineResult::Return(42));
    }
}
