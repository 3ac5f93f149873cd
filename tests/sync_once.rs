//! gort::sync::Once, OnceCell and Lazy: racing initialisers (coroutines
//! on 2 Ps and threads) run the initialiser once and park the others; a
//! panicking or failing initialiser leaves them uninitialised.

mod support;

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use gort::sync::{Lazy, Once, OnceCell};
use support::{rt, with_timeout};

#[test]
fn once_runs_once_among_racing_coroutines_and_threads() {
    let once = Arc::new(Once::new());
    let runs = Arc::new(AtomicUsize::new(0));
    let value = Arc::new(AtomicUsize::new(0));
    let racer = {
        let (once, runs, value) = (once.clone(), runs.clone(), value.clone());
        move || {
            once.call_once(|| {
                runs.fetch_add(1, Ordering::SeqCst);
                // Take a while, so the others arrive and wait.
                for _ in 0..100 {
                    gort::yield_now();
                }
                value.store(42, Ordering::Relaxed);
            });
            // Whoever returns sees the initialiser's effects.
            value.load(Ordering::Relaxed)
        }
    };
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let r = racer.clone();
            std::thread::spawn(r)
        })
        .collect();
    let r = racer.clone();
    let seen = with_timeout(60, move || {
        rt(2).block_on(move || {
            let hs: Vec<_> = (0..200).map(|_| gort::spawn(r.clone())).collect();
            hs.into_iter()
                .map(|h| h.join().unwrap())
                .collect::<Vec<_>>()
        })
    });
    assert!(seen.iter().all(|&v| v == 42));
    for t in threads {
        assert_eq!(t.join().unwrap(), 42);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(once.is_completed());
}

#[test]
fn a_panicking_closure_leaves_once_uncalled() {
    let once = Once::new();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        once.call_once(|| panic!("first try fails"))
    }));
    assert!(r.is_err());
    assert!(!once.is_completed());
    let mut ran = false;
    once.call_once(|| ran = true);
    assert!(ran);
    assert!(once.is_completed());
}

#[test]
fn once_cell_racing_initialisers_agree_on_one_value() {
    let cell: Arc<OnceCell<usize>> = Arc::new(OnceCell::new());
    let inits = Arc::new(AtomicUsize::new(0));
    let (c, i) = (cell.clone(), inits.clone());
    let got = with_timeout(60, move || {
        rt(2).block_on(move || {
            let hs: Vec<_> = (0..1000)
                .map(|k| {
                    let (c, i) = (c.clone(), i.clone());
                    gort::spawn(move || {
                        *c.get_or_init(|| {
                            i.fetch_add(1, Ordering::SeqCst);
                            for _ in 0..10 {
                                gort::yield_now();
                            }
                            k
                        })
                    })
                })
                .collect();
            hs.into_iter()
                .map(|h| h.join().unwrap())
                .collect::<Vec<_>>()
        })
    });
    assert_eq!(inits.load(Ordering::SeqCst), 1);
    let v = *cell.get().unwrap();
    assert!(got.iter().all(|&g| g == v));
    assert_eq!(cell.set(7), Err(7));
}

#[test]
fn once_cell_set_get_and_failing_initialisers() {
    let cell = OnceCell::new();
    assert_eq!(cell.get(), None);
    assert_eq!(cell.get_or_try_init(|| Err::<u8, _>("no")), Err("no"));
    assert_eq!(cell.get(), None);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        cell.get_or_init(|| panic!("boom"));
    }));
    assert!(r.is_err());
    assert_eq!(cell.get(), None);
    assert_eq!(cell.set(3), Ok(()));
    assert_eq!(cell.set(4), Err(4));
    assert_eq!(cell.get_or_init(|| 5), &3);
    let mut cell = cell;
    assert_eq!(cell.take(), Some(3));
    assert_eq!(cell.get(), None);
    assert_eq!(OnceCell::from(9).into_inner(), Some(9));
}

static COUNTED: AtomicUsize = AtomicUsize::new(0);
static LAZY: Lazy<Vec<usize>> = Lazy::new(|| {
    COUNTED.fetch_add(1, Ordering::SeqCst);
    for _ in 0..10 {
        gort::yield_now();
    }
    (0..100).collect()
});

#[test]
fn lazy_is_computed_once_by_racing_coroutines() {
    let sums = rt(2).block_on(|| {
        let hs: Vec<_> = (0..100)
            .map(|_| gort::spawn(|| LAZY.iter().sum::<usize>()))
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    assert!(sums.iter().all(|&s| s == 4950));
    assert_eq!(COUNTED.load(Ordering::SeqCst), 1);
    assert_eq!(Lazy::get(&LAZY).map(Vec::len), Some(100));
}
