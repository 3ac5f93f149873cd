//! gort::sync::RwLock: readers hold it together, writers exclude
//! everyone, a waiting writer keeps new readers out (writer preference),
//! try_read/try_write, coroutines and threads mixed.

mod support;

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use gort::sync::{Mutex, RwLock};
use support::{rt, with_timeout};

/// N readers (coroutines on 2 Ps, and plain threads) each take the read
/// lock and then wait, still holding it, until all N hold it: only
/// possible if readers share the lock.
#[test]
fn readers_hold_the_lock_together() {
    const CO: usize = 16;
    const TH: usize = 2;
    let lock = Arc::new(RwLock::new(0u32));
    let inside = Arc::new(AtomicUsize::new(0));
    let rt = rt(2);
    let threads: Vec<_> = (0..TH)
        .map(|_| {
            let (lock, inside) = (lock.clone(), inside.clone());
            std::thread::spawn(move || {
                let g = lock.read();
                inside.fetch_add(1, Ordering::SeqCst);
                while inside.load(Ordering::SeqCst) < CO + TH {
                    std::thread::yield_now();
                }
                *g
            })
        })
        .collect();
    let (l, i) = (lock.clone(), inside.clone());
    with_timeout(120, move || {
        rt.block_on(move || {
            let hs: Vec<_> = (0..CO)
                .map(|_| {
                    let (lock, inside) = (l.clone(), i.clone());
                    gort::spawn(move || {
                        let g = lock.read();
                        inside.fetch_add(1, Ordering::SeqCst);
                        while inside.load(Ordering::SeqCst) < CO + TH {
                            gort::yield_now();
                        }
                        *g
                    })
                })
                .collect();
            for h in hs {
                assert_eq!(h.join().unwrap(), 0);
            }
        })
    });
    for t in threads {
        assert_eq!(t.join().unwrap(), 0);
    }
    assert_eq!(inside.load(Ordering::SeqCst), CO + TH);
    *lock.write() += 1;
    assert_eq!(*lock.read(), 1);
}

/// Writers update two fields non-atomically (yielding in between); readers
/// must never see them differ, and the final total is exact.
#[test]
fn writers_exclude_readers_and_each_other() {
    let lock = Arc::new(RwLock::new((0u64, 0u64)));
    let rt = rt(2);
    let l = lock.clone();
    let thread_writer = std::thread::spawn(move || {
        for _ in 0..2000 {
            let mut g = l.write();
            g.0 += 1;
            std::thread::yield_now();
            g.1 += 1;
        }
    });
    let l = lock.clone();
    with_timeout(300, move || {
        rt.block_on(move || {
            let mut hs = Vec::new();
            for _ in 0..50 {
                let l = l.clone();
                hs.push(gort::spawn(move || {
                    for _ in 0..200 {
                        let mut g = l.write();
                        let a = g.0;
                        gort::yield_now();
                        g.0 = a + 1;
                        g.1 += 1;
                    }
                }));
            }
            for _ in 0..50 {
                let l = l.clone();
                hs.push(gort::spawn(move || {
                    for _ in 0..200 {
                        let g = l.read();
                        let a = g.0;
                        gort::yield_now();
                        assert_eq!(a, g.1, "a reader saw a half-done write");
                    }
                }));
            }
            for h in hs {
                h.join().unwrap();
            }
        })
    });
    thread_writer.join().unwrap();
    assert_eq!(*lock.read(), (50 * 200 + 2000, 50 * 200 + 2000));
}

/// A reader holds the lock; a writer queues; from then on new readers
/// (try_read, and a blocking read) wait until the writer has had its turn.
#[test]
fn a_waiting_writer_keeps_new_readers_out() {
    with_timeout(60, || {
        rt(2).block_on(|| {
            let lock = Arc::new(RwLock::new(()));
            let order = Arc::new(Mutex::new(Vec::new()));
            let first = lock.read();
            let (l, o) = (lock.clone(), order.clone());
            let writer = gort::spawn(move || {
                let _w = l.write();
                o.lock().push("writer");
            });
            // Wait until the writer is queued: new readers are then refused.
            loop {
                match lock.try_read() {
                    Some(g) => drop(g),
                    None => break,
                }
                gort::yield_now();
            }
            assert!(lock.try_write().is_none());
            let (l, o) = (lock.clone(), order.clone());
            let late_reader = gort::spawn(move || {
                let _r = l.read();
                o.lock().push("late reader");
            });
            for _ in 0..100 {
                gort::yield_now();
            }
            assert!(
                order.lock().is_empty(),
                "nobody got in while the first reader holds it"
            );
            drop(first);
            writer.join().unwrap();
            late_reader.join().unwrap();
            assert_eq!(*order.lock(), ["writer", "late reader"]);
        })
    });
}

/// Readers queued behind a writer all enter together when it leaves.
#[test]
fn readers_queued_behind_a_writer_enter_together() {
    with_timeout(60, || {
        rt(2).block_on(|| {
            const N: usize = 8;
            let lock = Arc::new(RwLock::new(0));
            let inside = Arc::new(AtomicUsize::new(0));
            let w = lock.write();
            let hs: Vec<_> = (0..N)
                .map(|_| {
                    let (l, i) = (lock.clone(), inside.clone());
                    gort::spawn(move || {
                        let g = l.read();
                        i.fetch_add(1, Ordering::SeqCst);
                        while i.load(Ordering::SeqCst) < N {
                            gort::yield_now();
                        }
                        *g
                    })
                })
                .collect();
            for _ in 0..100 {
                gort::yield_now();
            }
            assert_eq!(inside.load(Ordering::SeqCst), 0);
            drop(w);
            for h in hs {
                assert_eq!(h.join().unwrap(), 0);
            }
        })
    });
}

#[test]
fn try_read_and_try_write() {
    let l = RwLock::new(1);
    {
        let r1 = l.try_read().unwrap();
        let r2 = l.try_read().unwrap();
        assert_eq!(*r1 + *r2, 2);
        assert!(l.try_write().is_none());
    }
    {
        let mut w = l.try_write().unwrap();
        *w = 5;
        assert!(l.try_read().is_none());
        assert!(l.try_write().is_none());
    }
    assert_eq!(*l.read(), 5);
    assert_eq!(format!("{l:?}"), "RwLock { data: 5, .. }");
    let mut l = l;
    *l.get_mut() += 1;
    assert_eq!(l.into_inner(), 6);
}
