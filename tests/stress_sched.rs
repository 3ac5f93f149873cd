//! A mixed workload on 2 Ps: spawn, join, yield, park/ready, blocking
//! calls and wired coroutines, all at once, with a watchdog. Every
//! coroutine must finish and every hand-off must arrive: a lost wake-up
//! hangs (and fails), a double one aborts the process.

mod support;

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU64, Ordering},
};

use gort::rt::{self, Gp, WaitReason};
use support::{rt, with_timeout};

/// A counting semaphore on gopark/goready: `acquire` parks while the count
/// is 0.
#[derive(Default)]
struct Sema {
    state: Mutex<(u64, Vec<Gp>)>,
}

impl Sema {
    fn acquire(&self) {
        let mut st = self.state.lock().unwrap();
        if st.0 > 0 {
            st.0 -= 1;
            return;
        }
        // SAFETY: the callback owns the guard; it publishes us last.
        unsafe {
            rt::gopark(
                move |g| {
                    st.1.push(g);
                    drop(st);
                    true
                },
                WaitReason::Sync,
            )
        };
    }

    fn release(&self) {
        let mut st = self.state.lock().unwrap();
        match st.1.pop() {
            Some(g) => {
                drop(st);
                // SAFETY: published by `acquire`; popped, so readied once.
                unsafe { rt::goready(g) };
            }
            None => st.0 += 1,
        }
    }
}

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

#[test]
fn mixed_operations_on_two_ps_all_complete() {
    for round in 0..5 {
        mixed_round(round);
    }
}

fn mixed_round(round: u64) {
    with_timeout(240, move || {
        rt(2).block_on(move || {
            const WORKERS: u64 = 300;
            const STEPS: u64 = 400;
            let sema = Arc::new(Sema::default());
            let done = Arc::new(AtomicU64::new(0));
            let spawned_children = Arc::new(AtomicU64::new(0));
            let workers: Vec<_> = (0..WORKERS)
                .map(|w| {
                    let (sema, done, kids) = (sema.clone(), done.clone(), spawned_children.clone());
                    gort::spawn(move || {
                        let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (w + 1) ^ (round << 32);
                        if w % 50 == 0 {
                            gort::lock_os_thread();
                        }
                        let mut acquired = 0u64;
                        for _ in 0..STEPS {
                            match xorshift(&mut rng) % 6 {
                                0 => gort::yield_now(),
                                1 => {
                                    // Hand a token to whoever waits, then
                                    // take one (maybe parking for it).
                                    sema.release();
                                    sema.acquire();
                                    acquired += 1;
                                }
                                2 => {
                                    let h = gort::spawn(move || w * 2);
                                    assert_eq!(h.join().unwrap(), w * 2);
                                    kids.fetch_add(1, Ordering::Relaxed);
                                }
                                3 => gort::blocking(|| {
                                    std::thread::sleep(std::time::Duration::from_micros(50))
                                }),
                                4 => {
                                    let h = gort::spawn(gort::yield_now);
                                    drop(h); // detached
                                    kids.fetch_add(1, Ordering::Relaxed);
                                }
                                _ => {
                                    std::hint::black_box(w);
                                }
                            }
                        }
                        done.fetch_add(1, Ordering::Relaxed);
                        acquired
                    })
                })
                .collect();
            let total: u64 = workers.into_iter().map(|h| h.join().unwrap()).sum();
            assert_eq!(done.load(Ordering::Relaxed), WORKERS);
            assert!(total > 0 && spawned_children.load(Ordering::Relaxed) > 0);
            // Every release was matched by an acquire: nothing left parked.
            assert!(sema.state.lock().unwrap().1.is_empty());
        })
    });
}
