//! Channels: Go's semantics (unbuffered rendezvous, buffered FIFO, close
//! then drain, closed-channel errors), timeouts, disconnection, plain
//! threads and coroutines on one channel, and teardown with parked Gs.

mod support;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use gort::chan::{
    self, RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
use support::{Counted, with_timeout};

fn rt(procs: usize) -> gort::Runtime {
    gort::Runtime::builder().procs(procs).build().unwrap()
}

#[test]
fn unbuffered_send_waits_for_a_receiver() {
    with_timeout(30, || {
        rt(1).block_on(|| {
            let (tx, rx) = chan::bounded::<u32>(0);
            let stage = Arc::new(AtomicUsize::new(0));
            let s = stage.clone();
            let h = gort::go!(move || {
                tx.send(7).unwrap();
                s.store(1, Ordering::SeqCst);
                tx.send(8).unwrap();
                s.store(2, Ordering::SeqCst);
            });
            for _ in 0..10 {
                gort::yield_now();
            }
            // No receiver yet: the sender is parked inside its first send.
            assert_eq!(stage.load(Ordering::SeqCst), 0);
            assert_eq!(rx.len(), 0, "an unbuffered channel buffers nothing");
            assert_eq!(rx.recv(), Ok(7));
            for _ in 0..10 {
                gort::yield_now();
            }
            assert_eq!(stage.load(Ordering::SeqCst), 1, "second send must wait too");
            assert_eq!(rx.recv(), Ok(8));
            h.join().unwrap();
            assert_eq!(stage.load(Ordering::SeqCst), 2);
        });
    });
}

#[test]
fn unbuffered_rendezvous_with_a_plain_thread() {
    with_timeout(30, || {
        let r = rt(2);
        let (tx, rx) = chan::bounded::<u64>(0);
        let sum = r.spawn(move || rx.iter().sum::<u64>());
        let t = std::thread::spawn(move || {
            for i in 1..=1000 {
                tx.send(i).unwrap();
            }
        });
        t.join().unwrap();
        assert_eq!(sum.join().unwrap(), 500_500);
    });
}

#[test]
fn buffered_channel_is_fifo_and_blocks_when_full() {
    with_timeout(30, || {
        rt(2).block_on(|| {
            let (tx, rx) = chan::bounded::<u32>(3);
            assert_eq!(tx.capacity(), Some(3));
            for i in 0..3 {
                tx.try_send(i).unwrap();
            }
            assert_eq!(tx.try_send(99), Err(TrySendError::Full(99)));
            assert_eq!(tx.len(), 3);
            let h = gort::go!(move || {
                for i in 3..1000 {
                    tx.send(i).unwrap();
                }
            });
            let got: Vec<u32> = rx.iter().collect();
            assert_eq!(got, (0..1000).collect::<Vec<_>>());
            h.join().unwrap();
        });
    });
}

#[test]
fn close_then_drain_then_closed_error() {
    rt(1).block_on(|| {
        let (tx, rx) = chan::bounded::<String>(4);
        tx.send("a".into()).unwrap();
        tx.send("b".into()).unwrap();
        assert!(tx.close());
        assert!(!tx.close(), "closing twice reports it");
        assert!(rx.is_closed());
        assert_eq!(tx.send("c".into()), Err(SendError("c".to_string())));
        assert_eq!(
            tx.try_send("d".into()),
            Err(TrySendError::Closed("d".to_string()))
        );
        assert_eq!(rx.recv().as_deref(), Ok("a"));
        assert_eq!(rx.try_recv().as_deref(), Ok("b"));
        assert_eq!(rx.recv(), Err(RecvError));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5)),
            Err(RecvTimeoutError::Closed)
        );
    });
}

#[test]
fn close_wakes_blocked_receivers_and_senders() {
    with_timeout(30, || {
        rt(2).block_on(|| {
            let (tx, rx) = chan::bounded::<u32>(0);
            let receivers: Vec<_> = (0..10)
                .map(|_| {
                    let rx = rx.clone();
                    gort::go!(move || rx.recv())
                })
                .collect();
            // A plain thread blocks too.
            let rx2 = rx.clone();
            let thread = std::thread::spawn(move || rx2.recv());
            // Let them all block: the channel is empty and open.
            for _ in 0..50 {
                gort::yield_now();
            }
            tx.close();
            for h in receivers {
                assert_eq!(h.join().unwrap(), Err(RecvError));
            }
            assert_eq!(thread.join().unwrap(), Err(RecvError));

            let (tx, rx) = chan::bounded::<Vec<u8>>(0);
            let senders: Vec<_> = (0..10u8)
                .map(|i| {
                    let tx = tx.clone();
                    gort::go!(move || tx.send(vec![i]))
                })
                .collect();
            for _ in 0..50 {
                gort::yield_now();
            }
            tx.close();
            let mut back: Vec<u8> = senders
                .into_iter()
                .map(|h| h.join().unwrap().unwrap_err().into_inner()[0])
                .collect();
            back.sort();
            assert_eq!(back, (0..10).collect::<Vec<_>>(), "every value comes back");
            drop(rx);
        });
    });
}

#[test]
fn dropping_every_sender_closes_and_every_receiver_disconnects() {
    with_timeout(30, || {
        rt(2).block_on(|| {
            let (tx, rx) = chan::bounded::<u32>(8);
            let tx2 = tx.clone();
            tx.send(1).unwrap();
            drop(tx);
            assert!(!rx.is_closed(), "one sender is left");
            tx2.send(2).unwrap();
            let h = gort::go!(move || rx.iter().collect::<Vec<_>>());
            drop(tx2);
            assert_eq!(h.join().unwrap(), [1, 2]);

            // A sender blocked on a full channel fails once the last
            // receiver goes, and gets its value back.
            let (tx, rx) = chan::bounded::<u32>(1);
            tx.send(1).unwrap();
            let blocked = gort::go!(move || tx.send(2));
            for _ in 0..20 {
                gort::yield_now();
            }
            drop(rx);
            assert_eq!(blocked.join().unwrap(), Err(SendError(2)));
        });
    });
}

#[test]
fn unbounded_never_blocks() {
    rt(1).block_on(|| {
        let (tx, rx) = chan::unbounded::<usize>();
        assert_eq!(tx.capacity(), None);
        for i in 0..100_000 {
            tx.send(i).unwrap();
        }
        assert_eq!(rx.len(), 100_000);
        drop(tx);
        assert!(rx.into_iter().eq(0..100_000));
    });
}

#[test]
fn timeouts_fire_and_return_the_value() {
    with_timeout(30, || {
        for procs in [1, 2] {
            rt(procs).block_on(|| {
                let (tx, rx) = chan::bounded::<u32>(0);
                let t = Instant::now();
                assert_eq!(
                    rx.recv_timeout(Duration::from_millis(20)),
                    Err(RecvTimeoutError::Timeout)
                );
                assert!(t.elapsed() >= Duration::from_millis(20));
                let t = Instant::now();
                assert_eq!(
                    tx.send_timeout(5, Duration::from_millis(20)),
                    Err(SendTimeoutError::Timeout(5))
                );
                assert!(t.elapsed() >= Duration::from_millis(20));
                // A deadline in the past fails at once, without blocking.
                assert_eq!(
                    rx.recv_deadline(Instant::now() - Duration::from_millis(1)),
                    Err(RecvTimeoutError::Timeout)
                );
                // A value arriving before the deadline wins.
                let h = gort::go!(move || {
                    gort::time::sleep(Duration::from_millis(5));
                    tx.send(9).unwrap();
                    tx
                });
                assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(9));
                let tx = h.join().unwrap();
                // The timed-out waits left nothing queued: a plain send
                // now blocks for a real receiver, not a ghost one.
                assert_eq!(tx.try_send(1), Err(TrySendError::Full(1)));
            });
        }
        // The same from a plain thread.
        let (tx, rx) = chan::bounded::<u32>(0);
        let t = Instant::now();
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(20)),
            Err(RecvTimeoutError::Timeout)
        );
        assert!(t.elapsed() >= Duration::from_millis(20));
        assert_eq!(tx.try_send(1), Err(TrySendError::Full(1)));
    });
}

#[test]
fn coroutines_and_threads_mixed_on_one_channel() {
    with_timeout(60, || {
        let r = rt(2);
        let (tx, rx) = chan::bounded::<u64>(16);
        let (done_tx, done_rx) = chan::unbounded::<u64>();
        const PER: u64 = 10_000;
        let mut producers = Vec::new();
        for p in 0..4u64 {
            let tx = tx.clone();
            let send = move || {
                for i in 0..PER {
                    tx.send(p * PER + i).unwrap();
                }
            };
            if p % 2 == 0 {
                producers.push(r.spawn(send));
            } else {
                std::thread::spawn(send);
            }
        }
        drop(tx);
        let mut consumers = Vec::new();
        for c in 0..4 {
            let rx = rx.clone();
            let done = done_tx.clone();
            let recv = move || done.send(rx.iter().sum::<u64>()).unwrap();
            if c % 2 == 0 {
                consumers.push(r.spawn(recv));
            } else {
                std::thread::spawn(recv);
            }
        }
        drop((rx, done_tx));
        let total: u64 = done_rx.iter().sum();
        let n = 4 * PER;
        assert_eq!(total, n * (n - 1) / 2);
    });
}

#[test]
fn dropping_a_runtime_with_coroutines_parked_on_channels() {
    with_timeout(30, || {
        let (tx, rx) = chan::bounded::<u32>(0);
        {
            let r = rt(2);
            for _ in 0..10 {
                let rx = rx.clone();
                r.spawn(move || rx.recv());
                let tx = tx.clone();
                r.spawn(move || tx.send(1));
            }
            // Some pair up, the rest park; then the runtime goes.
            r.block_on(|| {
                for _ in 0..20 {
                    gort::yield_now();
                }
            });
        }
        // Nothing the dropped coroutines queued is left behind.
        assert_eq!(tx.try_send(5), Err(TrySendError::Full(5)));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    });
}

/// Values in flight when the runtime goes are dropped exactly once: those
/// held by senders parked in `send` (inlined into the coroutine's own
/// function, so the forced unwind passes through it) and those a receiver
/// got before the end.
#[test]
fn values_of_coroutines_parked_in_send_are_dropped_once_at_teardown() {
    with_timeout(30, || {
        let drops = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = chan::bounded::<Counted>(0);
        let received = Arc::new(AtomicUsize::new(0));
        {
            // One P: a yield lets every queued coroutine run first.
            let r = rt(1);
            for _ in 0..16 {
                let (tx, v) = (tx.clone(), Counted(drops.clone()));
                r.spawn(move || tx.send(v).is_ok());
            }
            for _ in 0..4 {
                let (rx, got) = (rx.clone(), received.clone());
                r.spawn(move || {
                    if rx.recv().is_ok() {
                        got.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
            // The receivers take 4 values; the other senders park.
            let got = received.clone();
            r.block_on(move || {
                while got.load(Ordering::SeqCst) < 4 {
                    gort::yield_now();
                }
                gort::yield_now();
            });
            assert_eq!(received.load(Ordering::SeqCst), 4);
            assert_eq!(
                drops.load(Ordering::SeqCst),
                4,
                "only the received values are gone"
            );
        }
        // The 12 parked senders were unwound with their values.
        assert_eq!(drops.load(Ordering::SeqCst), 16);
        assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
    });
}

/// The channel handles and the sync primitives keep the auto traits users
/// rely on (they hold the runtime's own lock, which is not std's Mutex):
/// Send + Sync where T allows, and usable inside `catch_unwind` without
/// `AssertUnwindSafe`, as std's channels and Mutex are. A compile-time
/// check: this test fails to build if one is lost.
#[test]
fn handles_and_primitives_keep_their_auto_traits() {
    use std::panic::{RefUnwindSafe, UnwindSafe};
    fn check<T: Send + Sync + UnwindSafe + RefUnwindSafe>() {}
    fn check_send<T: Send + UnwindSafe + RefUnwindSafe>() {}
    check_send::<gort::chan::Sender<u32>>();
    check_send::<gort::chan::Receiver<u32>>();
    check::<gort::sync::WaitGroup>();
    check::<gort::sync::Semaphore>();
    check::<gort::sync::Cond>();
    // (gort::sync::Mutex and RwLock hold the user's data in an UnsafeCell
    // and do not poison, so they are not RefUnwindSafe; only Send + Sync.)
    fn check_sync<T: Send + Sync>() {}
    check_sync::<gort::sync::Mutex<u32>>();
    check_sync::<gort::sync::RwLock<u32>>();
}
