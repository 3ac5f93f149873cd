//! Coroutine-local storage: a value per coroutine that follows it across
//! worker threads, separate per coroutine, per thread outside coroutines,
//! fresh for a recycled G, dropped when the coroutine ends.

mod support;

use std::{
    cell::{Cell, RefCell},
    collections::HashSet,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use gort::sync::{Cond, Mutex};
use support::{rt, with_timeout};

gort::local! {
    static ID: Cell<u64> = Cell::new(0);
    static LOG: RefCell<Vec<u64>> = RefCell::new(Vec::new());
}

/// Each coroutine stores its own id, then alternately yields and parks
/// (on a Cond that a plain thread notifies, so it is readied from outside
/// and resumes on whichever worker takes it) until it has run on both
/// worker threads of 2 Ps, checking its value after every resumption.
#[test]
fn a_value_follows_its_coroutine_across_worker_threads() {
    const CO: u64 = 8;
    let tokens = Arc::new((Mutex::new((0u64, false)), Cond::new()));
    let t = tokens.clone();
    let feeder = std::thread::spawn(move || {
        let (m, c) = &*t;
        loop {
            let fed = {
                let mut g = m.lock();
                if g.1 {
                    return;
                }
                // Only when the tokens are gone, so the coroutines do park
                // and are woken from here.
                let empty = g.0 == 0;
                if empty {
                    g.0 += CO;
                }
                empty
            };
            if fed {
                c.notify_all();
            }
            std::thread::yield_now();
        }
    });
    let t = tokens.clone();
    let moved = with_timeout(120, move || {
        rt(2).block_on(move || {
            let hs: Vec<_> = (1..=CO)
                .map(|id| {
                    let t = t.clone();
                    gort::spawn(move || {
                        let (m, c) = &*t;
                        ID.set(id);
                        LOG.with_borrow_mut(|l| l.push(id));
                        let mut threads = HashSet::new();
                        threads.insert(std::thread::current().id());
                        let mut n = 0u64;
                        // Until it has run on two threads, and at least
                        // 1,000 resumptions.
                        while threads.len() < 2 || n < 1000 {
                            if n.is_multiple_of(2) {
                                gort::yield_now();
                            } else {
                                let mut g = c.wait_while(m.lock(), |t| t.0 == 0);
                                g.0 -= 1;
                            }
                            n += 1;
                            assert_eq!(ID.get(), id, "the value stayed with the coroutine");
                            threads.insert(std::thread::current().id());
                            assert!(n < 10_000_000, "never moved to another thread");
                        }
                        LOG.with_borrow(|l| assert_eq!(l, &[id]));
                        threads.len()
                    })
                })
                .collect();
            hs.into_iter()
                .map(|h| h.join().unwrap())
                .collect::<Vec<_>>()
        })
    });
    tokens.0.lock().1 = true;
    feeder.join().unwrap();
    assert!(moved.iter().all(|&t| t >= 2));
}

#[test]
fn each_coroutine_and_thread_has_its_own_value_starting_fresh() {
    rt(2).block_on(|| {
        ID.set(99);
        // 1,000 short coroutines: Gs are recycled, yet each starts fresh.
        let hs: Vec<_> = (0..1000)
            .map(|_| {
                gort::spawn(|| {
                    let fresh = ID.get();
                    ID.set(7);
                    fresh
                })
            })
            .collect();
        for h in hs {
            assert_eq!(h.join().unwrap(), 0);
        }
        assert_eq!(ID.get(), 99);
    });
    // A plain thread has its own.
    assert_eq!(ID.get(), 0);
    ID.set(5);
    assert_eq!(std::thread::spawn(|| ID.get()).join().unwrap(), 0);
    assert_eq!(ID.get(), 5);
}

static DROPS: AtomicUsize = AtomicUsize::new(0);

struct Counted(u32);

impl Drop for Counted {
    fn drop(&mut self) {
        DROPS.fetch_add(1, Ordering::SeqCst);
    }
}

gort::local! {
    static COUNTED: Counted = Counted(1);
    static NESTED: u32 = COUNTED.with(|c| c.0) + 1;
}

#[test]
fn values_are_dropped_when_their_coroutine_ends() {
    let before = DROPS.load(Ordering::SeqCst);
    let sum = rt(2).block_on(|| {
        let hs: Vec<_> = (0..100)
            .map(|_| gort::spawn(|| NESTED.with(|n| *n) + COUNTED.with(|c| c.0)))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum::<u32>()
    });
    assert_eq!(sum, 300);
    // The runtime is gone: every coroutine's table was dropped (a
    // coroutine's values go when its G is recycled, at the latest when
    // the runtime is dropped).
    assert_eq!(DROPS.load(Ordering::SeqCst) - before, 100);
}

/// A value set before a park is there after it, while another coroutine
/// ran on the same worker in between with its own value.
#[test]
fn values_survive_parking_and_do_not_leak_between_coroutines() {
    let counter = Arc::new(AtomicUsize::new(0));
    with_timeout(60, move || {
        rt(1).block_on(move || {
            let wg = gort::sync::WaitGroup::new();
            wg.add(1);
            let (w, c) = (wg.clone(), counter.clone());
            let parked = gort::spawn(move || {
                ID.set(1);
                w.wait(); // parks; the other coroutine runs on this worker
                c.fetch_add(1, Ordering::SeqCst);
                ID.get()
            });
            gort::yield_now();
            let other = gort::spawn(|| {
                let fresh = ID.get();
                ID.set(2);
                fresh
            });
            assert_eq!(other.join().unwrap(), 0);
            wg.done();
            assert_eq!(parked.join().unwrap(), 1);
        })
    });
}
