//! gort::sync::Cond: notify_one wakes exactly one waiter (the oldest),
//! notify_all wakes all, waiters re-lock the mutex, timeouts, coroutines
//! and threads mixed.

mod support;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use gort::sync::{Cond, Mutex};
use support::{rt, with_timeout};

/// Number of waiters queued on `c` (from its Debug output).
fn queued(c: &Cond) -> usize {
    let s = format!("{c:?}");
    s.trim_start_matches("Cond { waiters: ")
        .trim_end_matches(" }")
        .parse()
        .unwrap()
}

struct State {
    /// Waiters that called `wait` (counted under the mutex).
    waiting: usize,
    /// Order in which waiters returned from `wait`.
    woken: Vec<usize>,
}

#[test]
fn notify_one_wakes_one_oldest_first_and_notify_all_wakes_the_rest() {
    const CO: usize = 6;
    let pair = Arc::new((
        Mutex::new(State {
            waiting: 0,
            woken: Vec::new(),
        }),
        Cond::new(),
    ));
    let rt = rt(2);
    let p = pair.clone();
    let order = with_timeout(60, move || {
        // Waiters queue in a known order: each starts after the previous
        // one is counted (and so queued: it counts itself under the mutex
        // and `wait` queues it before unlocking).
        let mut hs = Vec::new();
        for i in 0..CO {
            let p2 = p.clone();
            hs.push(rt.spawn(move || {
                let (m, c) = &*p2;
                let mut g = m.lock();
                g.waiting += 1;
                let mut g = c.wait(g);
                g.woken.push(i);
            }));
            while p.0.lock().waiting <= i {
                std::thread::yield_now();
            }
        }
        // One plain-thread waiter, queued last.
        let p2 = p.clone();
        let thread = std::thread::spawn(move || {
            let (m, c) = &*p2;
            let mut g = m.lock();
            g.waiting += 1;
            let mut g = c.wait(g);
            g.woken.push(CO);
        });
        while p.0.lock().waiting <= CO {
            std::thread::yield_now();
        }
        let (m, c) = &*p;
        assert_eq!(queued(c), CO + 1);
        c.notify_one();
        assert_eq!(queued(c), CO, "notify_one took exactly one waiter");
        while m.lock().woken.is_empty() {
            std::thread::yield_now();
        }
        assert_eq!(m.lock().woken, [0], "the oldest waiter was woken");
        c.notify_one();
        assert_eq!(queued(c), CO - 1);
        while m.lock().woken.len() < 2 {
            std::thread::yield_now();
        }
        assert_eq!(m.lock().woken, [0, 1], "then the next oldest");
        c.notify_all();
        assert_eq!(queued(c), 0);
        for h in hs {
            h.join().unwrap();
        }
        thread.join().unwrap();
        std::mem::take(&mut m.lock().woken)
    });
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..=CO).collect::<Vec<_>>());
    // Nothing is left to notify.
    pair.1.notify_one();
    pair.1.notify_all();
}

/// A producer/consumer queue on Mutex + Cond, coroutines and threads on
/// both sides: every item is consumed exactly once.
#[test]
fn a_bounded_queue_on_mutex_and_cond() {
    const ITEMS: usize = 20_000;
    struct Q {
        items: Vec<usize>,
        closed: bool,
    }
    let shared = Arc::new((
        Mutex::new(Q {
            items: Vec::new(),
            closed: false,
        }),
        Cond::new(), // not empty (or closed)
        Cond::new(), // not full
    ));
    let consumed = Arc::new(AtomicUsize::new(0));
    let sum = Arc::new(AtomicUsize::new(0));
    let consumer = {
        let (s, n, sum) = (shared.clone(), consumed.clone(), sum.clone());
        move || {
            let (m, not_empty, not_full) = &*s;
            loop {
                let mut g = not_empty.wait_while(m.lock(), |q| q.items.is_empty() && !q.closed);
                let Some(v) = g.items.pop() else { return };
                drop(g);
                not_full.notify_one();
                n.fetch_add(1, Ordering::SeqCst);
                sum.fetch_add(v, Ordering::SeqCst);
            }
        }
    };
    let producer = {
        let s = shared.clone();
        move |range: std::ops::Range<usize>| {
            let (m, not_empty, not_full) = &*s;
            for v in range {
                let mut g = not_full.wait_while(m.lock(), |q| q.items.len() >= 16);
                g.items.push(v);
                drop(g);
                not_empty.notify_one();
            }
        }
    };
    let t_cons = {
        let c = consumer.clone();
        std::thread::spawn(c)
    };
    let t_prod = {
        let p = producer.clone();
        std::thread::spawn(move || p(0..ITEMS / 4))
    };
    let s = shared.clone();
    with_timeout(300, move || {
        rt(2).block_on(move || {
            let cons: Vec<_> = (0..8).map(|_| gort::spawn(consumer.clone())).collect();
            let prods: Vec<_> = (0..3)
                .map(|k| {
                    let p = producer.clone();
                    let per = ITEMS / 4;
                    gort::spawn(move || p(per * (k + 1)..per * (k + 2)))
                })
                .collect();
            for h in prods {
                h.join().unwrap();
            }
            t_prod.join().unwrap();
            s.0.lock().closed = true;
            s.1.notify_all();
            for h in cons {
                h.join().unwrap();
            }
        })
    });
    t_cons.join().unwrap();
    assert_eq!(consumed.load(Ordering::SeqCst), ITEMS);
    assert_eq!(sum.load(Ordering::SeqCst), ITEMS * (ITEMS - 1) / 2);
}

#[test]
fn wait_timeout_reports_the_timeout_and_relocks() {
    with_timeout(60, || {
        rt(1).block_on(|| {
            let m = Mutex::new(0);
            let c = Cond::new();
            let (g, timed_out) = c.wait_timeout(m.lock(), Duration::from_millis(10));
            assert!(timed_out);
            assert_eq!(*g, 0);
            assert!(m.try_lock().is_none(), "re-locked");
            drop(g);
            assert_eq!(queued(&c), 0, "the timed-out waiter left the queue");
        });
        let m = Arc::new(Mutex::new(false));
        let c = Arc::new(Cond::new());
        let (m2, c2) = (m.clone(), c.clone());
        let t = std::thread::spawn(move || {
            let mut g = m2.lock();
            let mut timed_out = false;
            while !*g && !timed_out {
                (g, timed_out) = c2.wait_timeout(g, Duration::from_secs(60));
            }
            timed_out
        });
        while queued(&c) == 0 {
            std::thread::yield_now();
        }
        *m.lock() = true;
        c.notify_all();
        assert!(!t.join().unwrap(), "woken, not timed out");
    });
}
