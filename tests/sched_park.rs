//! gopark/goready, fairness, blocking hand-off, teardown.

mod support;

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
};

use gort::rt::{self, Gp, WaitReason};
use support::{Counted, rt, with_timeout};

/// A one-slot hand-off built only on gopark/goready: `wait` parks until
/// `signal`; a signal before the wait is remembered.
#[derive(Default)]
struct Signal {
    state: Mutex<(bool, Option<Gp>)>,
}

impl Signal {
    fn wait(&self) {
        let mut st = self.state.lock().unwrap();
        if std::mem::take(&mut st.0) {
            return;
        }
        // SAFETY: the callback owns the guard and touches nothing on the
        // coroutine's stack after publishing it.
        unsafe {
            rt::gopark(
                move |g| {
                    st.1 = Some(g);
                    drop(st);
                    true
                },
                WaitReason::Other,
            )
        };
    }

    fn signal(&self) {
        let mut st = self.state.lock().unwrap();
        match st.1.take() {
            Some(g) => {
                drop(st);
                // SAFETY: published by `wait`'s callback; readied once.
                unsafe { rt::goready(g) };
            }
            None => st.0 = true,
        }
    }
}

#[test]
fn gopark_with_a_declining_callback_resumes_at_once() {
    rt(1).block_on(|| {
        let other_ran = Arc::new(AtomicBool::new(false));
        let o = other_ran.clone();
        let h = gort::spawn(move || o.store(true, Ordering::SeqCst));
        let mut called = false;
        // SAFETY: the callback only writes a flag it borrows... before
        // returning false, so the coroutine was never published.
        unsafe {
            rt::gopark(
                |_| {
                    called = true;
                    false
                },
                WaitReason::Other,
            )
        };
        assert!(called);
        assert!(
            !other_ran.load(Ordering::SeqCst),
            "no other coroutine ran: we resumed at once"
        );
        h.join().unwrap();
        assert!(other_ran.load(Ordering::SeqCst));
    });
}

#[test]
fn park_and_ready_racing_lose_no_wake_up() {
    // Two coroutines hand a token back and forth many times on 2 Ps; each
    // hand-off races a goready against a gopark. A lost wake-up hangs,
    // which the watchdog turns into a failure.
    with_timeout(120, || {
        rt(2).block_on(|| {
            let (a, b) = (Arc::new(Signal::default()), Arc::new(Signal::default()));
            let (a2, b2) = (a.clone(), b.clone());
            const ROUNDS: u32 = 200_000;
            let pong = gort::spawn(move || {
                for _ in 0..ROUNDS {
                    a2.wait();
                    b2.signal();
                }
            });
            for _ in 0..ROUNDS {
                a.signal();
                b.wait();
            }
            pong.join().unwrap();
        })
    });
}

#[test]
fn many_waiters_many_wakers_on_two_ps() {
    with_timeout(120, || {
        rt(2).block_on(|| {
            let signals: Arc<Vec<Signal>> =
                Arc::new((0..1000).map(|_| Signal::default()).collect());
            let woken = Arc::new(AtomicUsize::new(0));
            let waiters: Vec<_> = (0..1000)
                .map(|i| {
                    let (s, w) = (signals.clone(), woken.clone());
                    gort::spawn(move || {
                        s[i].wait();
                        w.fetch_add(1, Ordering::SeqCst);
                    })
                })
                .collect();
            let wakers: Vec<_> = (0..4)
                .map(|k| {
                    let s = signals.clone();
                    gort::spawn(move || {
                        for i in (k..1000).step_by(4) {
                            s[i].signal();
                        }
                    })
                })
                .collect();
            for h in wakers.into_iter().chain(waiters) {
                h.join().unwrap();
            }
            assert_eq!(woken.load(Ordering::SeqCst), 1000);
        })
    });
}

#[test]
fn a_yield_loop_cannot_starve_a_new_coroutine() {
    with_timeout(60, || {
        rt(1).block_on(|| {
            let flag = Arc::new(AtomicBool::new(false));
            let f = flag.clone();
            let spinner = gort::spawn(move || {
                let mut n = 0u64;
                while !f.load(Ordering::SeqCst) {
                    gort::yield_now();
                    n += 1;
                }
                n
            });
            gort::yield_now(); // let the spinner start
            let f = flag.clone();
            gort::spawn(move || f.store(true, Ordering::SeqCst))
                .join()
                .unwrap();
            assert!(spinner.join().unwrap() >= 1);
        })
    });
}

#[test]
fn yielders_on_one_p_take_turns_in_order() {
    // Gosched puts the G at the back of the queue: three yielders on one P
    // run round-robin, whether the last one to yield waits in the queue or
    // (on a lone P) in the tail slot outside it; a spawn in between (which
    // goes to runnext) does not disturb the order.
    with_timeout(60, || {
        rt(1).block_on(|| {
            let log = Arc::new(Mutex::new(Vec::new()));
            let hs: Vec<_> = (0..3u32)
                .map(|i| {
                    let log = log.clone();
                    gort::spawn(move || {
                        for round in 0..4u32 {
                            log.lock().unwrap().push(i * 10 + round);
                            if i == 0 && round == 1 {
                                for n in [98, 99] {
                                    let log = log.clone();
                                    gort::spawn(move || log.lock().unwrap().push(n));
                                }
                            }
                            gort::yield_now();
                        }
                    })
                })
                .collect();
            hs.into_iter().for_each(|h| h.join().unwrap());
            // A spawned G runs next (runnext, as in Go): 2 first, then the
            // queue 0, 1. 0's round 1 spawns 98 then 99: 99 takes runnext
            // and runs at once; 98, pushed out of runnext into the queue,
            // waits behind 1 and 2, which yielded before it was queued.
            assert_eq!(
                *log.lock().unwrap(),
                [20, 0, 10, 21, 1, 99, 11, 22, 98, 2, 12, 23, 3, 13]
            );
        })
    });
}

#[test]
fn two_yielders_on_one_p_alternate_strictly() {
    // Two coroutines alone on a lone P: each yield switches straight to the
    // other (without g0), which puts the yielder in the tail slot. Every
    // turn must still go to the other one, each resumed with its own
    // stack intact, and a third coroutine spawned midway must get its
    // turns too (it goes to runnext, so the next yield runs it).
    with_timeout(60, || {
        rt(1).block_on(|| {
            const TURNS: u64 = 10_000;
            let last = Arc::new(AtomicU64::new(u64::MAX));
            let third_ran = Arc::new(AtomicU64::new(0));
            let hs: Vec<_> = (0..2u64)
                .map(|me| {
                    let last = last.clone();
                    let third_ran = third_ran.clone();
                    gort::spawn(move || {
                        let mut local = [me; 8]; // lives across every switch
                        let mut repeats = 0u64;
                        for turn in 0..TURNS {
                            if last.swap(me, Ordering::SeqCst) == me {
                                repeats += 1;
                            }
                            if me == 0 && turn == TURNS / 2 {
                                let t = third_ran.clone();
                                gort::spawn(move || {
                                    t.fetch_add(1, Ordering::SeqCst);
                                    gort::yield_now();
                                    t.fetch_add(1, Ordering::SeqCst);
                                });
                            }
                            gort::yield_now();
                            local.iter_mut().for_each(|v| *v = v.wrapping_add(1));
                        }
                        assert!(local.iter().all(|&v| v == me + TURNS));
                        repeats
                    })
                })
                .collect();
            let repeats: Vec<u64> = hs.into_iter().map(|h| h.join().unwrap()).collect();
            // The first turn of each may follow the main coroutine's spawn
            // of the other, and the third coroutine's turns interleave
            // once each: a handful of repeats at most, never a run.
            assert!(repeats.iter().all(|&r| r <= 3), "repeats {repeats:?}");
            assert_eq!(third_ran.load(Ordering::SeqCst), 2);
        })
    });
}

#[test]
fn two_yield_loops_on_one_p_let_timers_and_the_global_queue_in() {
    // Two coroutines yielding to each other on a lone P swap places without
    // going through the scheduler's queue; a due timer and a G queued
    // globally (spawned from a plain thread) must still get their turn.
    with_timeout(60, || {
        let rt = Arc::new(rt(1));
        let stop = Arc::new(AtomicBool::new(false));
        let loops: Vec<_> = (0..2)
            .map(|_| {
                let stop = stop.clone();
                rt.spawn(move || {
                    let mut n = 0u64;
                    while !stop.load(Ordering::SeqCst) {
                        gort::yield_now();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        // A sleeper (its timer fires while the loops run), then a G from a
        // plain thread (the global queue) that ends the loops.
        let slept = rt.spawn(|| {
            gort::time::sleep(std::time::Duration::from_millis(5));
            true
        });
        assert!(slept.join().unwrap());
        let s = stop.clone();
        rt.spawn(move || s.store(true, Ordering::SeqCst))
            .join()
            .unwrap();
        for h in loops {
            assert!(h.join().unwrap() > 0);
        }
    });
}

#[test]
fn a_ping_pong_pair_cannot_starve_a_third() {
    // On one P, two coroutines readying each other through runnext would
    // run forever; the shared time slice lets the third one in.
    with_timeout(60, || {
        rt(1).block_on(|| {
            let stop = Arc::new(AtomicBool::new(false));
            let (a, b) = (Arc::new(Signal::default()), Arc::new(Signal::default()));
            let rounds = Arc::new(AtomicU64::new(0));
            let (a2, b2, s2, r2) = (a.clone(), b.clone(), stop.clone(), rounds.clone());
            let ping = gort::spawn(move || {
                while !s2.load(Ordering::SeqCst) {
                    a2.signal();
                    b2.wait();
                    r2.fetch_add(1, Ordering::Relaxed);
                }
                a2.signal(); // release pong for its last round
            });
            let (a3, b3, s3) = (a.clone(), b.clone(), stop.clone());
            let pong = gort::spawn(move || {
                while !s3.load(Ordering::SeqCst) {
                    a3.wait();
                    b3.signal();
                }
            });
            // We are the third: once the pair runs, we sit in the queue
            // behind it and must still get turns to see it progress.
            while rounds.load(Ordering::Relaxed) < 10_000 {
                gort::yield_now();
            }
            stop.store(true, Ordering::SeqCst);
            ping.join().unwrap();
            pong.join().unwrap();
            assert!(rounds.load(Ordering::Relaxed) >= 10_000);
        })
    });
}

#[test]
fn a_ping_pong_pair_cannot_starve_the_global_queue() {
    // A G readied by a plain thread goes to the global queue. On one P, a
    // pair handing off through runnext (directly, G to G) with nothing in
    // the local queue must still let it in: the shared slice ends and the
    // next one gives the global queue its turn.
    with_timeout(60, || {
        rt(1).block_on(|| {
            let stop = Arc::new(AtomicBool::new(false));
            let (atx, arx) = gort::chan::bounded::<u64>(0);
            let (btx, brx) = gort::chan::bounded::<u64>(0);
            let rounds = Arc::new(AtomicU64::new(0));
            let (s2, r2) = (stop.clone(), rounds.clone());
            let ping = gort::spawn(move || {
                while !s2.load(Ordering::SeqCst) {
                    atx.send(0).unwrap();
                    brx.recv().unwrap();
                    r2.fetch_add(1, Ordering::Relaxed);
                }
            });
            let pong = gort::spawn(move || {
                for v in &arx {
                    if btx.send(v + 1).is_err() {
                        break;
                    }
                }
            });
            let (wtx, wrx) = gort::chan::bounded::<()>(0);
            let s3 = stop.clone();
            let waiter = gort::spawn(move || {
                wrx.recv().unwrap();
                s3.store(true, Ordering::SeqCst);
            });
            while rounds.load(Ordering::Relaxed) < 1_000 {
                gort::yield_now();
            }
            // A plain thread readies the waiter (global queue) while the
            // pair runs; this coroutine leaves the P to them meanwhile.
            gort::blocking(move || {
                std::thread::spawn(move || wtx.send(()).unwrap())
                    .join()
                    .unwrap()
            });
            waiter.join().unwrap();
            ping.join().unwrap();
            pong.join().unwrap();
            assert!(rounds.load(Ordering::Relaxed) >= 1_000);
        })
    });
}

#[test]
fn a_blocking_call_hands_its_p_to_another_m() {
    with_timeout(60, || {
        rt(1).block_on(|| {
            let in_call = Arc::new(AtomicBool::new(false));
            let done = Arc::new(AtomicBool::new(false));
            let (i2, d2) = (in_call.clone(), done.clone());
            let sleeper = gort::spawn(move || {
                gort::blocking(|| {
                    i2.store(true, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_secs(1));
                });
                d2.store(true, Ordering::SeqCst);
            });
            let (i3, d3) = (in_call.clone(), done.clone());
            let counter = gort::spawn(move || {
                let mut during = 0u64;
                while !d3.load(Ordering::SeqCst) {
                    if i3.load(Ordering::SeqCst) {
                        during += 1;
                    }
                    gort::yield_now();
                }
                during
            });
            sleeper.join().unwrap();
            let during = counter.join().unwrap();
            // One P: without the hand-off nothing else could run while the
            // sleeper's M sat in its one-second call.
            assert!(
                during > 1000,
                "only {during} increments while the only P's M was blocked"
            );
        })
    });
}

#[test]
fn dropping_a_runtime_unwinds_parked_coroutines() {
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    let rt = rt(2);
    let parked = Arc::new(Signal::default());
    rt.block_on(move || {
        for _ in 0..100 {
            // Parked forever on a signal nobody sends.
            let (d, p) = (d.clone(), parked.clone());
            drop(gort::spawn(move || {
                let _guard = Counted(d);
                p.wait();
                unreachable!("never signalled");
            }));
        }
        for _ in 0..100 {
            // Runnable, yielding forever (never finishes on its own).
            let d = d.clone();
            drop(gort::spawn(move || {
                let _guard = Counted(d);
                loop {
                    gort::yield_now();
                    std::thread::sleep(std::time::Duration::from_micros(10));
                }
            }));
        }
        for _ in 0..10 {
            gort::yield_now();
        }
    });
    with_timeout(60, move || drop(rt));
    assert_eq!(drops.load(Ordering::SeqCst), 200);
}

#[test]
fn dropping_a_runtime_drops_closures_that_never_ran() {
    let drops = Arc::new(AtomicUsize::new(0));
    let rt = rt(1);
    // Occupy the only P's M (no park, no yield) so the spawns below stay
    // queued; the drop starts long before the hog ends, and Ms stop at the
    // next schedule, so the queued ones never run.
    let started = Arc::new(AtomicBool::new(false));
    let s = started.clone();
    let hog = rt.spawn(move || {
        s.store(true, Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_secs(1));
    });
    while !started.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    let never: Vec<_> = (0..10)
        .map(|_| {
            let g = Counted(drops.clone());
            rt.spawn(move || drop(g))
        })
        .collect();
    with_timeout(60, move || drop(rt));
    hog.join().unwrap();
    assert_never_started(&drops, never);
}

/// Every closure of `never` was dropped without running, and each handle
/// says the runtime was dropped first.
fn assert_never_started(drops: &AtomicUsize, never: Vec<gort::JoinHandle<()>>) {
    assert_eq!(
        drops.load(Ordering::SeqCst),
        never.len(),
        "every closure was dropped"
    );
    for h in never {
        assert!(h.is_finished());
        let err = h.join().unwrap_err();
        assert!(
            err.downcast_ref::<&str>()
                .unwrap()
                .contains("runtime was dropped before the coroutine started")
        );
    }
}

#[test]
fn dropping_a_runtime_fails_coroutines_spawned_inside_that_never_ran() {
    // Spawned from a coroutine, with the runtime's defaults, a coroutine is
    // queued without a G until it first runs: the teardown must find it in
    // the run queue (runnext, the local queue) and fail it.
    let drops = Arc::new(AtomicUsize::new(0));
    let rt = rt(1);
    let (tx, rx) = std::sync::mpsc::channel();
    let d = drops.clone();
    let hog = rt.spawn(move || {
        let never: Vec<_> = (0..10)
            .map(|_| {
                let g = Counted(d.clone());
                gort::spawn(move || drop(g))
            })
            .collect();
        tx.send(never).unwrap();
        // Hold the only M (no park, no yield) until the drop has begun.
        std::thread::sleep(std::time::Duration::from_secs(1));
    });
    let never = rx.recv().unwrap();
    with_timeout(60, move || drop(rt));
    hog.join().unwrap();
    assert_never_started(&drops, never);
}

#[test]
fn building_and_dropping_a_runtime_leaks_no_thread_or_mapping() {
    // Threads and mappings are counted per process: alone in a child, so
    // the other tests of this binary (running in parallel) do not count.
    const NAME: &str = "building_and_dropping_a_runtime_leaks_no_thread_or_mapping";
    if !support::is_child(NAME) {
        return support::assert_child_succeeds(NAME);
    }
    let run_once = || {
        let rt = rt(2);
        rt.block_on(|| {
            let hs: Vec<_> = (0..100).map(|i| gort::spawn(move || i)).collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum::<i32>()
        });
    };
    run_once();
    let (threads, maps) = (support::thread_count(), support::mapping_count());
    for _ in 0..100 {
        run_once();
    }
    assert_eq!(support::thread_count(), threads, "threads leaked");
    let after = support::mapping_count();
    assert!(after <= maps + 16, "mappings grew from {maps} to {after}");
}

/// Busy work that keeps an M occupied for a while without parking.
fn spin_for(us: u64) {
    let t = std::time::Instant::now();
    while t.elapsed() < std::time::Duration::from_micros(us) {
        std::hint::spin_loop();
    }
}

/// Eight coroutines spinning and yielding on 2 Ps; coroutine 0 also parks on
/// a signal fed from coroutines on both Ms, and makes blocking calls that
/// lose it its P. Returns the threads each coroutine ran on.
/// `wire` makes coroutine 0 call lock_os_thread.
fn migrating_workload(wire: bool) -> Vec<std::collections::HashSet<std::thread::ThreadId>> {
    with_timeout(120, move || {
        rt(2).block_on(move || {
            let sig = Arc::new(Signal::default());
            let stop = Arc::new(AtomicBool::new(false));
            // Feeders on both Ms wake coroutine 0 from wherever they run.
            let feeders: Vec<_> = (0..4)
                .map(|_| {
                    let (sig, stop) = (sig.clone(), stop.clone());
                    gort::spawn(move || {
                        while !stop.load(Ordering::SeqCst) {
                            sig.signal();
                            spin_for(20);
                            gort::yield_now();
                        }
                        sig.signal();
                    })
                })
                .collect();
            let hs: Vec<_> = (0..8)
                .map(|i| {
                    let sig = sig.clone();
                    gort::spawn(move || {
                        if wire && i == 0 {
                            gort::lock_os_thread();
                        }
                        let mut seen = std::collections::HashSet::new();
                        let rounds = if i == 0 { 2000 } else { 400 };
                        for k in 0..rounds {
                            seen.insert(std::thread::current().id());
                            spin_for(20);
                            if i == 0 && k % 50 == 0 {
                                // sysmon retakes the P during the call; an
                                // unwired G then resumes on any free M.
                                gort::blocking(|| {
                                    std::thread::sleep(std::time::Duration::from_millis(2))
                                });
                            } else if i == 0 && k % 4 == 0 {
                                sig.wait();
                            } else {
                                gort::yield_now();
                            }
                        }
                        seen.insert(std::thread::current().id());
                        seen
                    })
                })
                .collect();
            let sets: Vec<_> = hs.into_iter().map(|h| h.join().unwrap()).collect();
            stop.store(true, Ordering::SeqCst);
            for f in feeders {
                f.join().unwrap();
            }
            sets
        })
    })
}

#[test]
fn a_wired_coroutine_keeps_its_thread_across_parks() {
    let sets = migrating_workload(true);
    assert_eq!(
        sets[0].len(),
        1,
        "the wired coroutine ran on {} threads",
        sets[0].len()
    );
}

#[test]
fn unwired_coroutines_do_migrate() {
    // The control: the same workload, nobody wired, moves coroutine 0.
    let sets = migrating_workload(false);
    assert!(
        sets[0].len() >= 2,
        "coroutine 0 never changed threads: the test above proves nothing"
    );
}
