//! gort::sync::Semaphore: weights, FIFO (a small request does not
//! overtake a queued large one), timeouts (and a timed-out head letting
//! the waiters behind it in), concurrency limit, threads mixed.

mod support;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use gort::sync::{Mutex, Semaphore};
use support::{rt, with_timeout};

/// Number of queued waiters (from the Debug output).
fn queued(s: &Semaphore) -> usize {
    let d = format!("{s:?}");
    let w = d.split("waiters: ").nth(1).unwrap();
    w.trim_end_matches(" }").parse().unwrap()
}

#[test]
fn weights_add_up() {
    let s = Semaphore::new(10);
    s.acquire(7);
    assert_eq!(s.available(), 3);
    assert!(!s.try_acquire(4));
    assert!(s.try_acquire(3));
    assert!(!s.try_acquire(1));
    s.release(10);
    assert!(s.try_acquire(10));
    s.release(10);
    assert!(s.try_acquire(0));
    let r = std::panic::catch_unwind(|| s.release(1));
    assert_eq!(
        *r.unwrap_err().downcast_ref::<&str>().unwrap(),
        "semaphore: released more than held"
    );
}

#[test]
fn grants_are_fifo_a_small_request_waits_behind_a_large_one() {
    with_timeout(60, || {
        rt(2).block_on(|| {
            let s = Arc::new(Semaphore::new(10));
            let order = Arc::new(Mutex::new(Vec::new()));
            s.acquire(8); // 2 left
            let spawn_waiter = |n: usize| {
                let (s, o) = (s.clone(), order.clone());
                gort::spawn(move || {
                    s.acquire(n);
                    o.lock().push(n);
                })
            };
            let large = spawn_waiter(5);
            while queued(&s) < 1 {
                gort::yield_now();
            }
            let small = spawn_waiter(1);
            while queued(&s) < 2 {
                gort::yield_now();
            }
            // 2 units are free, enough for the small one, but it queued
            // behind the large one: nobody is granted, try_acquire fails.
            assert_eq!(s.available(), 2);
            assert!(!s.try_acquire(1));
            s.release(2); // 4 free: still not enough for 5
            assert_eq!(queued(&s), 2);
            assert_eq!(s.available(), 4);
            s.release(1); // 5 free: the large one only
            large.join().unwrap();
            assert_eq!(queued(&s), 1);
            assert_eq!(s.available(), 0);
            s.release(1); // then the small one
            small.join().unwrap();
            assert_eq!(*order.lock(), [5, 1]);
            assert_eq!(s.available(), 0);
            s.release(10);
        })
    });
}

#[test]
fn a_timed_out_head_lets_the_waiters_behind_it_in() {
    with_timeout(60, || {
        rt(2).block_on(|| {
            let s = Arc::new(Semaphore::new(10));
            s.acquire(8); // 2 left
            let s2 = s.clone();
            let large = gort::spawn(move || s2.acquire_timeout(5, Duration::from_millis(30)));
            while queued(&s) < 1 {
                gort::yield_now();
            }
            let s2 = s.clone();
            let small = gort::spawn(move || {
                s2.acquire(2);
                true
            });
            assert!(!large.join().unwrap(), "the large request timed out");
            // No release happened: the small one got in when the head left.
            assert!(small.join().unwrap());
            assert_eq!(s.available(), 0);
            assert_eq!(queued(&s), 0);
            // A request that is granted in time.
            let s2 = s.clone();
            let ok = gort::spawn(move || s2.acquire_timeout(3, Duration::from_secs(60)));
            while queued(&s) < 1 {
                gort::yield_now();
            }
            s.release(3);
            assert!(ok.join().unwrap());
            assert!(
                !s.acquire_timeout(11, Duration::from_secs(60)),
                "more than the size"
            );
            assert!(!s.acquire_timeout(1, Duration::ZERO));
        })
    });
}

/// A semaphore of 3 limits 200 coroutines and 2 threads to 3 at a time.
#[test]
fn limits_concurrency() {
    let s = Arc::new(Semaphore::new(3));
    let inside = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let body = {
        let (s, inside, max) = (s.clone(), inside.clone(), max.clone());
        move |yield_: fn()| {
            for _ in 0..20 {
                s.acquire(1);
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(now, Ordering::SeqCst);
                yield_();
                inside.fetch_sub(1, Ordering::SeqCst);
                s.release(1);
            }
        }
    };
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let b = body.clone();
            std::thread::spawn(move || b(std::thread::yield_now))
        })
        .collect();
    with_timeout(120, move || {
        rt(2).block_on(move || {
            let hs: Vec<_> = (0..200)
                .map(|_| {
                    let b = body.clone();
                    gort::spawn(move || b(gort::yield_now))
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
        })
    });
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(max.load(Ordering::SeqCst), 3);
    assert_eq!(s.available(), 3);
}
