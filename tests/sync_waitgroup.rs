//! gort::sync::WaitGroup: 100,000 members, many waiters (coroutines and
//! threads), reuse, negative counter, timeout, `go`.

mod support;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use gort::sync::WaitGroup;
use support::with_timeout;

#[test]
fn a_hundred_thousand_members() {
    const N: usize = 100_000;
    // Members run and finish as they are spawned: their stacks are reused,
    // so the default stack size is fine.
    let rt = gort::Runtime::builder().procs(2).build().unwrap();
    let finished = Arc::new(AtomicUsize::new(0));
    let wg = WaitGroup::new();
    // Waiters on a plain thread and in coroutines, all released together.
    wg.add(N as i64);
    let thread_waiter = {
        let (wg, f) = (wg.clone(), finished.clone());
        std::thread::spawn(move || {
            wg.wait();
            f.load(Ordering::SeqCst)
        })
    };
    let f = finished.clone();
    let seen = with_timeout(300, move || {
        rt.block_on(move || {
            let waiters: Vec<_> = (0..100)
                .map(|_| {
                    let (wg, f) = (wg.clone(), f.clone());
                    gort::spawn(move || {
                        wg.wait();
                        f.load(Ordering::SeqCst)
                    })
                })
                .collect();
            for _ in 0..N {
                let (wg, f) = (wg.clone(), f.clone());
                drop(gort::spawn(move || {
                    f.fetch_add(1, Ordering::SeqCst);
                    wg.done();
                }));
            }
            wg.wait();
            assert_eq!(wg.count(), 0);
            waiters
                .into_iter()
                .map(|h| h.join().unwrap())
                .chain([f.load(Ordering::SeqCst)])
                .collect::<Vec<_>>()
        })
    });
    assert!(seen.iter().all(|&n| n == N), "a waiter returned early");
    assert_eq!(thread_waiter.join().unwrap(), N);
}

#[test]
fn a_wait_group_can_be_reused() {
    gort::run(|| {
        let wg = WaitGroup::new();
        for round in 1..=5 {
            let done = Arc::new(AtomicUsize::new(0));
            for _ in 0..round * 10 {
                let d = done.clone();
                wg.go(move || {
                    gort::yield_now();
                    d.fetch_add(1, Ordering::SeqCst);
                });
            }
            wg.wait();
            assert_eq!(done.load(Ordering::SeqCst), round * 10);
        }
    });
}

#[test]
fn go_calls_done_even_if_the_member_panics() {
    gort::run(|| {
        let wg = WaitGroup::new();
        wg.go(|| panic!("member fails"));
        wg.go(|| {});
        wg.wait();
        assert_eq!(wg.count(), 0);
    });
}

#[test]
fn a_negative_counter_panics_and_leaves_the_counter_alone() {
    let wg = WaitGroup::new();
    wg.add(1);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| wg.add(-2)));
    let msg = r.unwrap_err();
    assert_eq!(
        *msg.downcast_ref::<&str>().unwrap(),
        "sync: negative WaitGroup counter"
    );
    assert_eq!(wg.count(), 1);
    wg.done();
    wg.wait();
}

#[test]
fn wait_timeout_times_out_and_then_succeeds() {
    with_timeout(60, || {
        gort::run(|| {
            let wg = WaitGroup::new();
            wg.add(1);
            assert!(!wg.wait_timeout(Duration::from_millis(20)));
            let w = wg.clone();
            let h = gort::spawn(move || w.wait_timeout(Duration::from_secs(60)));
            gort::yield_now();
            wg.done();
            assert!(h.join().unwrap());
            assert!(wg.wait_timeout(Duration::ZERO));
        });
        // And on a plain thread.
        let wg = WaitGroup::new();
        wg.add(1);
        assert!(!wg.wait_timeout(Duration::from_millis(10)));
        let w = wg.clone();
        let t = std::thread::spawn(move || w.done());
        wg.wait();
        t.join().unwrap();
    });
}
