//! Dropping a runtime while coroutines are parked on sync primitives
//! neither hangs nor crashes; the unwound coroutines give back what they
//! held or were granted, so the primitives stay usable afterwards (also by
//! a plain thread that was waiting alongside them).

mod support;

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use gort::sync::{Cond, Mutex, RwLock, Semaphore, WaitGroup};
use support::{Counted, rt, with_timeout};

struct Prims {
    mutex: Mutex<u32>,
    rw: RwLock<u32>,
    cond: Cond,
    wg: WaitGroup,
    never: WaitGroup,
    sem: Semaphore,
}

#[test]
fn dropping_a_runtime_with_coroutines_parked_on_sync_primitives() {
    let drops = Arc::new(AtomicUsize::new(0));
    let never = WaitGroup::new();
    never.add(1);
    let wg = WaitGroup::new();
    wg.add(1);
    let p = Arc::new(Prims {
        mutex: Mutex::new(0),
        rw: RwLock::new(0),
        cond: Cond::new(),
        wg,
        never,
        sem: Semaphore::new(4),
    });
    let rt = rt(2);
    let parked = Arc::new(AtomicUsize::new(0));
    let spawned = {
        let (p, d, parked) = (p.clone(), drops.clone(), parked.clone());
        rt.block_on(move || {
            let mut n = 0;
            // Spawns `f`; a waiter (`counted`) says so before it parks.
            let mut spawn = |counted: bool, f: Box<dyn FnOnce(&Prims) + Send>| {
                let (p, d, parked) = (p.clone(), d.clone(), parked.clone());
                n += 1;
                drop(gort::spawn(move || {
                    let _guard = Counted(d);
                    if counted {
                        parked.fetch_add(1, Ordering::SeqCst);
                    }
                    f(&p);
                }));
            };
            let mut go = |f: Box<dyn FnOnce(&Prims) + Send>| spawn(false, f);
            // Holders: each takes a lock or units, then parks forever.
            go(Box::new(|p| {
                let _g = p.mutex.lock();
                p.never.wait();
            }));
            go(Box::new(|p| {
                let _g = p.rw.write();
                p.never.wait();
            }));
            go(Box::new(|p| {
                struct Release<'a>(&'a Semaphore);
                impl Drop for Release<'_> {
                    fn drop(&mut self) {
                        self.0.release(3);
                    }
                }
                p.sem.acquire(3);
                let _r = Release(&p.sem);
                p.never.wait();
            }));
            // The holders hold before any waiter starts.
            while !(p.mutex.is_locked() && p.rw.try_read().is_none() && p.sem.available() == 1) {
                gort::yield_now();
            }
            let mut waiter = |f: Box<dyn FnOnce(&Prims) + Send>| spawn(true, f);
            for _ in 0..10 {
                waiter(Box::new(move |p| {
                    *p.mutex.lock() += 1;
                }));
                waiter(Box::new(move |p| {
                    let _r = p.rw.read();
                }));
                waiter(Box::new(move |p| {
                    let _w = p.rw.write();
                }));
                waiter(Box::new(move |p| {
                    let g = p.mutex.lock();
                    drop(p.cond.wait(g));
                }));
                waiter(Box::new(move |p| {
                    p.wg.wait();
                }));
                waiter(Box::new(move |p| {
                    p.sem.acquire(2);
                }));
            }
            while parked.load(Ordering::SeqCst) < 60 {
                gort::yield_now();
            }
            // Let them reach their parks.
            for _ in 0..1000 {
                gort::yield_now();
            }
            n
        })
    };
    // A plain thread waits for the mutex too, queued behind the coroutines.
    let p2 = p.clone();
    let thread = std::thread::spawn(move || {
        *p2.mutex.lock() += 100;
    });
    while !p.mutex.is_locked() {
        std::thread::yield_now();
    }
    with_timeout(60, move || drop(rt));
    assert_eq!(
        drops.load(Ordering::SeqCst),
        spawned,
        "every coroutine was unwound"
    );
    // The thread got the mutex once the holder was unwound.
    with_timeout(60, move || thread.join().unwrap());
    // Everything is usable again, and free.
    assert!(*p.mutex.try_lock().expect("the mutex is free") >= 100);
    drop(p.rw.try_write().expect("the rwlock is free"));
    assert_eq!(p.sem.available(), 4, "the units held or granted came back");
    assert_eq!(p.wg.count(), 1);
    p.wg.done();
    p.wg.wait();
    p.cond.notify_all();
    assert_eq!(format!("{:?}", p.cond), "Cond { waiters: 0 }");
}

/// Plain threads keep waking coroutines (sending to the channels they are
/// parked on) while the runtime is dropped: a wake-up that races with the
/// teardown unwinding the same coroutine must be absorbed, never abort the
/// process ("goready of a G that is not waiting") or resume a G twice.
#[test]
fn plain_threads_waking_coroutines_while_the_runtime_is_dropped() {
    with_timeout(120, || {
        for round in 0..100 {
            let rt = rt(2);
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let received = Arc::new(AtomicUsize::new(0));
            let mut senders = Vec::new();
            for _ in 0..32 {
                let (tx, rx) = gort::chan::bounded::<u64>(0);
                let received = received.clone();
                drop(rt.spawn(move || {
                    while rx.recv().is_ok() {
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                }));
                senders.push(tx);
            }
            let threads: Vec<_> = (0..2)
                .map(|t| {
                    let senders = senders.clone();
                    let stop = stop.clone();
                    std::thread::spawn(move || {
                        let mut i = t;
                        while !stop.load(Ordering::Relaxed) {
                            let _ = senders[i % senders.len()].try_send(i as u64);
                            i += 1;
                        }
                    })
                })
                .collect();
            // Let the senders get going, then drop the runtime under them.
            while received.load(Ordering::Relaxed) < 100 {
                std::thread::yield_now();
            }
            drop(rt);
            stop.store(true, Ordering::Relaxed);
            for t in threads {
                t.join().unwrap();
            }
            assert!(received.load(Ordering::Relaxed) >= 100, "round {round}");
        }
    });
}

/// The same race on a `Mutex`: plain threads unlocking hand the lock (and
/// a wake-up) to coroutines parked in `lock` while the runtime is dropped;
/// afterwards the mutex still works for the threads.
#[test]
fn plain_threads_unlocking_to_coroutines_while_the_runtime_is_dropped() {
    with_timeout(120, || {
        for round in 0..100 {
            let rt = rt(2);
            let m = Arc::new(Mutex::new(0u64));
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            for _ in 0..32 {
                let m = m.clone();
                drop(rt.spawn(move || {
                    loop {
                        *m.lock() += 1;
                        gort::yield_now();
                    }
                }));
            }
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    let (m, stop) = (m.clone(), stop.clone());
                    std::thread::spawn(move || {
                        while !stop.load(Ordering::Relaxed) {
                            *m.lock() += 1;
                        }
                    })
                })
                .collect();
            while *m.lock() < 1_000 {
                std::thread::yield_now();
            }
            drop(rt);
            let after = *m.lock();
            stop.store(true, Ordering::Relaxed);
            for t in threads {
                t.join().unwrap();
            }
            assert!(*m.lock() >= after, "round {round}");
        }
    });
}
