//! gort::sync::Mutex: exact totals under contention on 2 Ps (coroutines,
//! and coroutines mixed with plain threads), starvation mode, try_lock,
//! parking the coroutine rather than its thread, no poisoning. (The
//! starvation test is in sync_mutex_starvation.rs, alone in its binary.)

mod support;

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use gort::sync::Mutex;
use support::{rt, with_timeout};

#[test]
fn thousand_coroutines_times_thousand_increments_on_two_ps() {
    let total = with_timeout(300, || {
        rt(2).block_on(|| {
            let m = Arc::new(Mutex::new(0u64));
            let hs: Vec<_> = (0..1000)
                .map(|_| {
                    let m = m.clone();
                    gort::spawn(move || {
                        for _ in 0..1000 {
                            *m.lock() += 1;
                        }
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
            let v = *m.lock();
            assert!(!m.is_locked());
            v
        })
    });
    assert_eq!(total, 1_000_000);
}

#[test]
fn coroutines_and_plain_threads_mixed_on_one_mutex() {
    let m = Arc::new(Mutex::new(0u64));
    let rt = rt(2);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let m = m.clone();
            std::thread::spawn(move || {
                for _ in 0..50_000 {
                    *m.lock() += 1;
                }
            })
        })
        .collect();
    let m2 = m.clone();
    with_timeout(300, move || {
        rt.block_on(move || {
            let hs: Vec<_> = (0..1000)
                .map(|_| {
                    let m = m2.clone();
                    gort::spawn(move || {
                        for _ in 0..1000 {
                            *m.lock() += 1;
                        }
                    })
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
    assert_eq!(*m.lock(), 1_000_000 + 4 * 50_000);
}

#[test]
fn try_lock_fails_while_held_and_succeeds_after() {
    rt(2).block_on(|| {
        let m = Arc::new(Mutex::new(5));
        let g = m.lock();
        let m2 = m.clone();
        let other = gort::spawn(move || m2.try_lock().map(|g| *g))
            .join()
            .unwrap();
        assert_eq!(other, None, "try_lock from another coroutine while held");
        assert!(m.try_lock().is_none(), "try_lock while held by ourselves");
        drop(g);
        let m2 = m.clone();
        let other = gort::spawn(move || m2.try_lock().map(|g| *g))
            .join()
            .unwrap();
        assert_eq!(other, Some(5));
        *m.try_lock().unwrap() += 1;
        assert_eq!(*m.lock(), 6);
    });
}

/// On one P, a coroutine waiting for the lock must park, not block the
/// worker thread: otherwise the holder never runs again to unlock it.
#[test]
fn a_waiting_coroutine_parks_and_frees_its_only_worker() {
    with_timeout(60, || {
        rt(1).block_on(|| {
            let m = Arc::new(Mutex::new(0));
            let waiting = Arc::new(AtomicUsize::new(0));
            let g = m.lock();
            let hs: Vec<_> = (0..10)
                .map(|_| {
                    let (m, w) = (m.clone(), waiting.clone());
                    gort::spawn(move || {
                        w.fetch_add(1, Ordering::SeqCst);
                        *m.lock() += 1;
                    })
                })
                .collect();
            while waiting.load(Ordering::SeqCst) < 10 {
                gort::yield_now();
            }
            drop(g);
            for h in hs {
                h.join().unwrap();
            }
            assert_eq!(*m.lock(), 10);
        })
    });
}

#[test]
fn a_panic_while_holding_the_lock_unlocks_it() {
    rt(2).block_on(|| {
        let m = Arc::new(Mutex::new(0));
        let m2 = m.clone();
        let r = gort::spawn(move || {
            let mut g = m2.lock();
            *g = 7;
            panic!("boom");
        })
        .join();
        assert!(r.is_err());
        assert_eq!(*m.lock(), 7, "not poisoned; the write stayed");
    });
}

#[test]
fn into_inner_get_mut_and_debug() {
    let mut m = Mutex::new(vec![1]);
    m.get_mut().push(2);
    assert_eq!(format!("{m:?}"), "Mutex { data: [1, 2], .. }");
    let g = m.lock();
    assert_eq!(format!("{:?}", Mutex::new(0)), "Mutex { data: 0, .. }");
    drop(g);
    assert_eq!(m.into_inner(), vec![1, 2]);
}
