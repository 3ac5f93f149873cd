//! select!: uniform choice among ready cases, default never blocks,
//! after arms fire, send cases, closed channels, and no lost or doubled
//! delivery when selects on 2 Ps race each other and plain operations.

mod support;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use gort::chan::{self, RecvError, SendError};
use support::with_timeout;

fn rt(procs: usize) -> gort::Runtime {
    gort::Runtime::builder().procs(procs).build().unwrap()
}

#[test]
fn select_picks_ready_cases_uniformly() {
    rt(1).block_on(|| {
        let chans: Vec<_> = (0..4).map(|_| chan::bounded::<u8>(1)).collect();
        for (tx, _) in &chans {
            tx.send(0).unwrap();
        }
        let (r0, r1, r2, r3) = (&chans[0].1, &chans[1].1, &chans[2].1, &chans[3].1);
        let mut hits = [0u32; 4];
        const N: u32 = 10_000;
        for _ in 0..N {
            let i = gort::select! {
                recv(r0) -> _ => 0,
                recv(r1) -> _ => 1,
                recv(r2) -> _ => 2,
                recv(r3) -> _ => 3,
            };
            hits[i] += 1;
            chans[i].0.send(0).unwrap(); // ready again
        }
        for (i, &h) in hits.iter().enumerate() {
            let share = f64::from(h) / f64::from(N);
            assert!(
                (0.20..=0.30).contains(&share),
                "case {i} ran {share:.3} of the time ({hits:?}); want 25% ± 5%"
            );
        }
    });
}

#[test]
fn default_never_blocks_and_after_fires() {
    with_timeout(30, || {
        rt(1).block_on(|| {
            let (tx, rx) = chan::bounded::<u32>(0);
            let mut defaults = 0;
            for _ in 0..1000 {
                gort::select! {
                    recv(rx) -> _ => panic!("nothing was sent"),
                    send(tx, 1) -> _ => panic!("nobody receives"),
                    default => defaults += 1,
                }
            }
            assert_eq!(defaults, 1000);

            for ms in [1u64, 10, 30] {
                let t = Instant::now();
                let r = gort::select! {
                    recv(rx) -> _ => "recv",
                    after(Duration::from_millis(ms)) => "timeout",
                };
                assert_eq!(r, "timeout");
                assert!(t.elapsed() >= Duration::from_millis(ms));
            }
            // The timed-out select left no ghost receiver behind.
            assert!(tx.try_send(1).is_err());
            // An empty select with an after arm is a sleep.
            let t = Instant::now();
            gort::select! { after(Duration::from_millis(5)) => {} }
            assert!(t.elapsed() >= Duration::from_millis(5));
        });
    });
}

#[test]
fn send_cases_and_closed_channels() {
    with_timeout(30, || {
        rt(2).block_on(|| {
            let (tx, rx) = chan::bounded::<String>(0);
            let h = gort::go!(move || rx.recv().unwrap());
            let (_never_tx, never) = chan::bounded::<u32>(0);
            let r = gort::select! {
                send(tx, "hi".to_string()) -> r => r,
                recv(never) -> _ => unreachable!(),
            };
            assert_eq!(r, Ok(()));
            assert_eq!(h.join().unwrap(), "hi");

            // A send to a channel whose receivers are gone completes at once
            // with the value back; a receive on a closed channel with Err.
            drop(never);
            let (ctx, crx) = chan::bounded::<u32>(0);
            ctx.close();
            let r = gort::select! {
                recv(crx) -> v => v,
            };
            assert_eq!(r, Err(RecvError));
            let r = gort::select! {
                send(tx, "x".to_string()) -> r => r,
            };
            assert_eq!(r, Err(SendError("x".to_string())));
        });
    });
}

#[test]
fn a_blocked_select_is_completed_by_either_side() {
    with_timeout(30, || {
        rt(2).block_on(|| {
            for round in 0..200u32 {
                let (atx, arx) = chan::bounded::<u32>(0);
                let (btx, brx) = chan::bounded::<u32>(0);
                let (ctx, crx) = chan::bounded::<u32>(0);
                let sel = gort::go!(move || {
                    gort::select! {
                        recv(arx) -> v => ('a', v.unwrap()),
                        recv(brx) -> v => ('b', v.unwrap()),
                        send(ctx, 42) -> r => { r.unwrap(); ('c', 0) },
                    }
                });
                // Race the three counterparts; exactly one wins.
                let a = gort::go!(move || atx.send_timeout(1, Duration::from_millis(50)).is_ok());
                let b = gort::go!(move || btx.send_timeout(2, Duration::from_millis(50)).is_ok());
                let c = gort::go!(move || crx.recv_timeout(Duration::from_millis(50)).ok());
                let got = sel.join().unwrap();
                let (a, b, c) = (a.join().unwrap(), b.join().unwrap(), c.join().unwrap());
                let winners = usize::from(a) + usize::from(b) + usize::from(c.is_some());
                assert_eq!(
                    winners, 1,
                    "round {round}: exactly one counterpart completes"
                );
                match got {
                    ('a', 1) => assert!(a),
                    ('b', 2) => assert!(b),
                    ('c', 0) => assert_eq!(c, Some(42)),
                    other => panic!("round {round}: unexpected {other:?}"),
                }
            }
        });
    });
}

/// Producers send numbered values into two channels; consumers select over
/// both (and over a third channel that nobody feeds). Every value is
/// received exactly once: none lost to a withdrawn case, none doubled.
#[test]
fn selects_on_two_ps_lose_and_double_nothing() {
    with_timeout(120, || {
        let r = rt(2);
        const PRODUCERS: u64 = 8;
        const PER: u64 = 20_000;
        let n = PRODUCERS * PER;
        let seen: Arc<Vec<AtomicU64>> =
            Arc::new((0..n.div_ceil(64)).map(|_| AtomicU64::new(0)).collect());
        let (atx, arx) = chan::bounded::<u64>(0);
        let (btx, brx) = chan::bounded::<u64>(4);
        let (_idle_tx, idle) = chan::bounded::<u64>(0);
        let mut hs = Vec::new();
        for p in 0..PRODUCERS {
            let tx = if p % 2 == 0 { atx.clone() } else { btx.clone() };
            hs.push(r.spawn(move || {
                for i in 0..PER {
                    tx.send(p * PER + i).unwrap();
                }
            }));
        }
        drop((atx, btx));
        let mut consumers = Vec::new();
        for c in 0..8 {
            let (arx, brx, idle, seen) = (arx.clone(), brx.clone(), idle.clone(), seen.clone());
            let consume = move || {
                let (mut a_open, mut b_open) = (true, true);
                let mut count = 0u64;
                while a_open || b_open {
                    let v = gort::select! {
                        recv(arx) -> v => v.map_err(|_| 'a'),
                        recv(brx) -> v => v.map_err(|_| 'b'),
                        recv(idle) -> _ => unreachable!("nobody sends on idle"),
                    };
                    match v {
                        Ok(v) => {
                            let bit = 1u64 << (v % 64);
                            let old = seen[(v / 64) as usize].fetch_or(bit, Ordering::Relaxed);
                            assert_eq!(old & bit, 0, "value {v} delivered twice");
                            count += 1;
                        }
                        // A closed channel is always ready: stop selecting
                        // on it by draining the other one directly.
                        Err('a') => {
                            a_open = false;
                            count += brx.iter().inspect(|&v| mark(&seen, v)).count() as u64;
                            b_open = false;
                        }
                        Err(_) => {
                            b_open = false;
                            count += arx.iter().inspect(|&v| mark(&seen, v)).count() as u64;
                            a_open = false;
                        }
                    }
                }
                count
            };
            if c == 7 {
                // One consumer is a plain thread.
                let (tx, rx) = chan::bounded(1);
                std::thread::spawn(move || tx.send(consume()).unwrap());
                consumers.push(r.spawn(move || rx.recv().unwrap()));
            } else {
                consumers.push(r.spawn(consume));
            }
        }
        drop((arx, brx));
        for h in hs {
            h.join().unwrap();
        }
        let total: u64 = consumers.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(total, n, "every value received once");
        for (i, w) in seen.iter().enumerate() {
            let want = if (i as u64 + 1) * 64 <= n {
                u64::MAX
            } else {
                (1u64 << (n % 64)) - 1
            };
            assert_eq!(
                w.load(Ordering::Relaxed),
                want,
                "word {i}: a value was lost"
            );
        }
    });
}

fn mark(seen: &[AtomicU64], v: u64) {
    let bit = 1u64 << (v % 64);
    let old = seen[(v / 64) as usize].fetch_or(bit, Ordering::Relaxed);
    assert_eq!(old & bit, 0, "value {v} delivered twice");
}

#[test]
fn dropping_a_runtime_with_coroutines_parked_in_select() {
    with_timeout(30, || {
        let (tx, rx) = chan::bounded::<u32>(0);
        let (tx2, rx2) = chan::bounded::<u32>(0);
        {
            let r = rt(2);
            for _ in 0..10 {
                let (rx, rx2) = (rx.clone(), rx2.clone());
                r.spawn(move || {
                    gort::select! {
                        recv(rx) -> _ => {},
                        recv(rx2) -> _ => {},
                        after(Duration::from_secs(3600)) => {},
                    }
                });
            }
            r.block_on(|| {
                for _ in 0..20 {
                    gort::yield_now();
                }
            });
        }
        // The unwound selects withdrew from both channels.
        assert!(tx.try_send(1).is_err());
        assert!(tx2.try_send(1).is_err());
    });
}
