//! Spawning, joining, panics, names, errors.

mod support;

use std::sync::{
    Arc,
    atomic::{AtomicU64, AtomicUsize, Ordering},
};

use support::{rt, with_timeout};

#[test]
fn spawn_and_join_return_values() {
    for procs in [1, 2] {
        let sum = rt(procs).block_on(|| {
            let hs: Vec<_> = (0..1000u64).map(|i| gort::go!(move || i * 2)).collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
        });
        assert_eq!(sum, 999 * 1000);
    }
}

#[test]
fn go_accepts_a_closure_or_a_block() {
    rt(2).block_on(|| {
        let x = 20;
        let a = gort::go!(move || x + 1);
        let b = gort::go!({ x * 2 });
        assert_eq!(a.join().unwrap() + b.join().unwrap(), 61);
    });
}

#[test]
fn results_of_every_shape_arrive_and_unjoined_ones_are_dropped_once() {
    // The closure and the result share one slot in the task cell, at an
    // offset set by the larger alignment of the two: exercise closures
    // and results smaller, larger and more aligned than each other, and
    // results that nobody takes (the handle dropped before or after the
    // coroutine finished).
    #[repr(align(64))]
    #[derive(Clone, Copy, PartialEq, Debug)]
    struct Wide([u64; 8]);
    // (The array makes the result larger than the closure.)
    struct Counted(Arc<AtomicUsize>, #[allow(dead_code)] [u64; 3]);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    rt(2).block_on(move || {
        let big = [7u64; 40];
        let h = gort::spawn(move || big.iter().sum::<u64>());
        assert_eq!(h.join().unwrap(), 280);
        let h = gort::spawn(|| [9u8; 300]);
        assert_eq!(h.join().unwrap(), [9u8; 300]);
        let w = Wide([3; 8]);
        let h = gort::spawn(move || (w, 1u8));
        assert_eq!(h.join().unwrap(), (Wide([3; 8]), 1));
        let h = gort::spawn(move || Wide([w.0[0] + 1; 8]).0[7]);
        assert_eq!(h.join().unwrap(), 4);
        let h = gort::spawn(|| -> Wide { panic!("wide") });
        assert_eq!(
            *h.join().unwrap_err().downcast_ref::<&str>().unwrap(),
            "wide"
        );
        let ran = Arc::new(AtomicUsize::new(0));
        for i in 0..100u64 {
            let (d, ran) = (d.clone(), ran.clone());
            let h = gort::spawn(move || {
                ran.fetch_add(1, Ordering::SeqCst);
                Counted(d, [i; 3])
            });
            if i % 2 == 0 {
                drop(h); // (mostly) before it finished
            } else {
                while !h.is_finished() {
                    gort::yield_now();
                }
                drop(h); // after
            }
        }
        // Every detached one has run (and its result is dropped with its
        // cell, just after it returns).
        while ran.load(Ordering::SeqCst) < 100 {
            gort::yield_now();
        }
        let h = gort::spawn(move || Counted(d, [0; 3]));
        drop(h.join().unwrap());
    });
    assert_eq!(
        drops.load(Ordering::SeqCst),
        101,
        "each result dropped once"
    );
}

#[test]
fn join_from_a_plain_thread_blocks_the_thread() {
    let rt = rt(2);
    let h = rt.spawn(|| {
        for _ in 0..100 {
            gort::yield_now();
        }
        7
    });
    let t = std::thread::spawn(move || h.join().unwrap());
    assert_eq!(t.join().unwrap(), 7);
}

#[test]
fn a_panic_reaches_the_join_handle_and_the_runtime_goes_on() {
    let rt = rt(2);
    rt.block_on(|| {
        let h = gort::spawn(|| -> u32 { panic!("boom in a coroutine") });
        let err = h.join().unwrap_err();
        assert_eq!(err.downcast_ref::<&str>(), Some(&"boom in a coroutine"));
        // An un-joined panic: printed, and the runtime keeps running.
        drop(gort::spawn(|| panic!("nobody joins this one")));
        for _ in 0..10 {
            gort::yield_now();
        }
        assert_eq!(gort::spawn(|| 5).join().unwrap(), 5);
    });
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(|| panic!("main panics"))
    }));
    assert!(r.is_err(), "block_on passes the main coroutine's panic on");
    assert_eq!(rt.block_on(|| 1), 1, "and the runtime still works");
}

#[test]
fn builder_names_and_sizes_and_current_reports_them() {
    rt(1).block_on(|| {
        let h = gort::Builder::new()
            .name("worker-7")
            .stack_size(32 * 1024)
            .spawn(|| {
                let c = gort::current();
                (c.id(), c.name().map(str::to_owned))
            })
            .unwrap();
        let id = h.id();
        let (seen_id, name) = h.join().unwrap();
        assert_eq!(seen_id, id);
        assert_eq!(name.as_deref(), Some("worker-7"));
        let err = gort::Builder::new()
            .stack_size(100)
            .spawn(|| ())
            .unwrap_err();
        assert!(err.to_string().contains("below the minimum"), "{err}");
    });
    assert!(gort::try_current().is_none());
}

#[test]
fn a_coroutine_sees_the_id_of_its_handle_and_ids_are_unique() {
    // Plain spawns take their G only when they first run, mostly on the
    // other P: the id must still be the handle's.
    rt(2).block_on(|| {
        let me = gort::current().id();
        let hs: Vec<_> = (0..2000)
            .map(|_| {
                gort::spawn(|| {
                    let c = gort::current();
                    (c.id(), c.name().is_none())
                })
            })
            .collect();
        let mut ids = std::collections::HashSet::new();
        for h in hs {
            let id = h.id();
            let (seen, unnamed) = h.join().unwrap();
            assert_eq!(seen, id);
            assert!(unnamed);
            assert_ne!(id, me);
            assert!(ids.insert(id), "id {id} given twice");
        }
    });
}

#[test]
fn spawn_outside_a_runtime_panics_with_a_message() {
    let err = std::panic::catch_unwind(|| gort::spawn(|| ())).unwrap_err();
    let msg = err
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()));
    assert!(msg.unwrap().contains("outside a gort runtime"));
}

#[test]
fn bad_configurations_are_clear_errors() {
    let e = gort::Runtime::builder().procs(0).build().unwrap_err();
    assert!(e.to_string().contains("procs must be between 1 and"), "{e}");
    let e = gort::Runtime::builder()
        .procs(1_000_000)
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("procs must be between 1 and"), "{e}");
    let e = gort::Runtime::builder().stack_size(1).build().unwrap_err();
    assert!(e.to_string().contains("below the minimum"), "{e}");
}

#[test]
fn gort_procs_is_read_and_checked() {
    const NAME: &str = "gort_procs_is_read_and_checked";
    if support::is_child(NAME) {
        match std::env::var("GORT_PROCS").as_deref() {
            Ok("3") => assert_eq!(gort::run(gort::procs), 3),
            Ok(_) => {
                let e = gort::Runtime::builder().build().unwrap_err();
                assert!(e.to_string().contains("GORT_PROCS"), "{e}");
            }
            Err(_) => unreachable!(),
        }
        return;
    }
    for v in ["3", "lots", "-1"] {
        support::assert_child_succeeds_with(NAME, &[("GORT_PROCS", v)]);
    }
}

#[test]
fn a_million_coroutines_complete_with_bounded_memory() {
    // Each coroutine takes a stack only while it runs; a million of them
    // cost a million small Gs, never a million stacks.
    for procs in [1, 2] {
        let done = with_timeout(120, move || {
            let maps = gort::stack::stats().maps;
            let count = Arc::new(AtomicU64::new(0));
            let c = count.clone();
            rt(procs).block_on(move || {
                for _ in 0..10 {
                    let hs: Vec<_> = (0..100_000)
                        .map(|_| {
                            let c = c.clone();
                            gort::spawn(move || c.fetch_add(1, Ordering::Relaxed))
                        })
                        .collect();
                    for h in hs {
                        h.join().unwrap();
                    }
                }
            });
            (
                count.load(Ordering::Relaxed),
                gort::stack::stats().maps - maps,
            )
        });
        assert_eq!(done.0, 1_000_000, "procs={procs}");
        assert!(
            done.1 < 200,
            "procs={procs}: {} new stack mappings for a million coroutines",
            done.1
        );
    }
}

#[test]
fn cpu_bound_coroutines_run_on_both_ms_at_once() {
    with_timeout(60, || {
        rt(2).block_on(|| {
            let arrived = Arc::new(AtomicUsize::new(0));
            let hs: Vec<_> = (0..2)
                .map(|_| {
                    let arrived = arrived.clone();
                    gort::spawn(move || {
                        // Neither yields: both can only pass if they run in
                        // parallel on two threads.
                        arrived.fetch_add(1, Ordering::SeqCst);
                        while arrived.load(Ordering::SeqCst) < 2 {
                            std::hint::spin_loop();
                        }
                        std::thread::current().id()
                    })
                })
                .collect();
            let ids: Vec<_> = hs.into_iter().map(|h| h.join().unwrap()).collect();
            assert_ne!(ids[0], ids[1]);
        })
    });
}

#[test]
fn gort_debug_schedtrace_and_longrun_report() {
    const NAME: &str = "gort_debug_schedtrace_and_longrun_report";
    if support::is_child(NAME) {
        if let Ok(bad @ ("bogus" | "guardpages=bogus")) = std::env::var("GORT_DEBUG").as_deref() {
            let e = gort::Runtime::builder().procs(1).build().unwrap_err();
            assert!(
                e.to_string().contains("GORT_DEBUG") && e.to_string().contains(bad),
                "{e}"
            );
            return;
        }
        let rt = rt(2);
        rt.block_on(|| {
            // A coroutine that runs 60 ms without yielding, then a busy
            // stretch long enough for several schedtrace lines.
            gort::spawn(|| std::thread::sleep(std::time::Duration::from_millis(60)))
                .join()
                .unwrap();
            let t = std::time::Instant::now();
            while t.elapsed() < std::time::Duration::from_millis(60) {
                gort::yield_now();
            }
        });
        assert!(rt.schedtrace().starts_with("SCHED "));
        return;
    }
    let out = support::run_in_child_with(
        NAME,
        &[("GORT_DEBUG", "schedtrace=10,longrun,guardpages=mprotect")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("SCHED ")).collect();
    assert!(
        lines.len() >= 3,
        "schedtrace printed {} lines:\n{stderr}",
        lines.len()
    );
    assert!(
        lines[0].contains("gomaxprocs=2") && lines[0].contains("runqueue="),
        "{}",
        lines[0]
    );
    assert!(
        stderr.contains("without yielding"),
        "longrun reported nothing:\n{stderr}"
    );
    // A bad setting, or a bad value of a known one, is an error naming it.
    for bad in ["bogus", "guardpages=bogus"] {
        support::assert_child_succeeds_with(NAME, &[("GORT_DEBUG", bad)]);
    }
}
