//! `pipeline`: a 1 → 8 → 1 channel pipeline on two processors.
//!
//! Every side runs, on two processors: a producer that sends the numbers
//! `0..M` (`M` = 1,000,000) on a bounded channel `in` (capacity `CAP` =
//! 64) and closes it; `W` = 8 workers that each receive from `in` until it
//! is closed and empty and send `2v + 1` on a bounded channel `out`
//! (capacity 64); and a collector (the main coroutine) that receives from
//! `out` until every worker is done, counting and summing. The count must
//! be `M` and the sum `M²`. The time from starting the producer to the
//! collector's last receive, divided by `M`, is the ns per item (each item
//! crosses two channels). Each sample starts with an untimed warm-up run
//! of `M / 10` items.
//!
//! - gort: `Runtime::builder().procs(2)`, `gort::chan::bounded(64)`, the
//!   workers share clones of `in`'s `Receiver` and of `out`'s `Sender`;
//!   `out` closes when the last worker drops its `Sender`.
//! - Go (`benches/go/pipeline`): `GOMAXPROCS=2`, `make(chan uint64, 64)`,
//!   `close(in)` by the producer, a goroutine closes `out` after a
//!   WaitGroup of the workers.
//! - may (for scale): `set_workers(2)`, `may::sync::mpmc::channel`, which
//!   is **unbounded** (may has no bounded channel): the producer can run
//!   ahead of the workers, so may does less waiting than the others.
//! - tokio (for scale): `multi_thread`, 2 workers,
//!   `tokio::sync::mpsc::channel(64)` for both; tokio's mpsc has a single
//!   consumer, so the 8 workers share `in`'s receiver behind an
//!   `Arc<tokio::sync::Mutex<_>>` (the usual tokio worker-pool idiom; an
//!   extra lock per item that the other sides do not have).
//!
//! Every sample is its own child process; gort, go, may, tokio alternate
//! in every round; the medians are compared (`compare pipeline ...`).
//!
//! Usage:
//! - `pipeline [--go PATH] [--rounds R] [--m M]`: the comparison.
//! - `pipeline --side gort|may|tokio M`: one sample; prints
//!   `ns=<ns per item> hwm_kib=<peak RSS>`.

use std::{
    process::Command,
    sync::Arc,
    time::{Duration, Instant},
};

use gort_compare::{Entry, Sample, elapsed_ns, run_grouped};

/// Items per sample.
const M: usize = 1_000_000;
/// Workers.
const W: usize = 8;
/// Capacity of both bounded channels.
const CAP: usize = 64;
/// Samples per side.
const ROUNDS: usize = 7;
/// A sample that takes longer than this has hung.
const LIMIT: Duration = Duration::from_secs(60);

/// Checks what the collector got from `m` items.
fn check(count: u64, sum: u64, m: usize) {
    let m = m as u64;
    assert_eq!((count, sum), (m, m * m), "the collector got wrong items");
}

fn gort_side(m: usize) -> f64 {
    let rt = gort::Runtime::builder()
        .procs(2)
        .build()
        .expect("build a gort runtime");
    rt.block_on(move || {
        let run = |m: usize| {
            let (in_tx, in_rx) = gort::chan::bounded::<u64>(CAP);
            let (out_tx, out_rx) = gort::chan::bounded::<u64>(CAP);
            let t = Instant::now();
            let producer = gort::spawn(move || {
                for i in 0..m as u64 {
                    in_tx.send(i).expect("the workers are gone");
                }
            });
            let workers: Vec<_> = (0..W)
                .map(|_| {
                    let (rx, tx) = (in_rx.clone(), out_tx.clone());
                    gort::spawn(move || {
                        for v in rx {
                            tx.send(2 * v + 1).expect("the collector is gone");
                        }
                    })
                })
                .collect();
            drop((in_rx, out_tx));
            let (mut count, mut sum) = (0u64, 0u64);
            for v in out_rx {
                count += 1;
                sum += v;
            }
            let d = t.elapsed();
            producer.join().expect("the producer panicked");
            for h in workers {
                h.join().expect("a worker panicked");
            }
            check(count, sum, m);
            d
        };
        run(m / 10 + 1);
        elapsed_ns(run(m)) / m as f64
    })
}

fn may_side(m: usize) -> f64 {
    may::config().set_workers(2);
    let main = may::go!(move || {
        let run = |m: usize| {
            let (in_tx, in_rx) = may::sync::mpmc::channel::<u64>();
            let (out_tx, out_rx) = may::sync::mpmc::channel::<u64>();
            let t = Instant::now();
            let producer = may::go!(move || {
                for i in 0..m as u64 {
                    in_tx.send(i).expect("the workers are gone");
                }
            });
            let workers: Vec<_> = (0..W)
                .map(|_| {
                    let (rx, tx) = (in_rx.clone(), out_tx.clone());
                    may::go!(move || {
                        for v in rx {
                            tx.send(2 * v + 1).expect("the collector is gone");
                        }
                    })
                })
                .collect();
            drop((in_rx, out_tx));
            let (mut count, mut sum) = (0u64, 0u64);
            for v in out_rx {
                count += 1;
                sum += v;
            }
            let d = t.elapsed();
            producer.join().expect("the producer panicked");
            for h in workers {
                h.join().expect("a worker panicked");
            }
            check(count, sum, m);
            d
        };
        run(m / 10 + 1);
        elapsed_ns(run(m)) / m as f64
    });
    main.join().expect("may's main coroutine panicked")
}

fn tokio_side(m: usize) -> f64 {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("build a tokio runtime");
    rt.block_on(async move {
        tokio::spawn(async move {
            let run = async |m: usize| {
                let (in_tx, in_rx) = tokio::sync::mpsc::channel::<u64>(CAP);
                let (out_tx, mut out_rx) = tokio::sync::mpsc::channel::<u64>(CAP);
                let in_rx = Arc::new(tokio::sync::Mutex::new(in_rx));
                let t = Instant::now();
                let producer = tokio::spawn(async move {
                    for i in 0..m as u64 {
                        in_tx.send(i).await.expect("the workers are gone");
                    }
                });
                let workers: Vec<_> = (0..W)
                    .map(|_| {
                        let (rx, tx) = (in_rx.clone(), out_tx.clone());
                        tokio::spawn(async move {
                            loop {
                                let v = rx.lock().await.recv().await;
                                let Some(v) = v else { break };
                                tx.send(2 * v + 1).await.expect("the collector is gone");
                            }
                        })
                    })
                    .collect();
                drop(out_tx);
                let (mut count, mut sum) = (0u64, 0u64);
                while let Some(v) = out_rx.recv().await {
                    count += 1;
                    sum += v;
                }
                let d = t.elapsed();
                producer.await.expect("the producer panicked");
                for h in workers {
                    h.await.expect("a worker panicked");
                }
                check(count, sum, m);
                d
            };
            run(m / 10 + 1).await;
            elapsed_ns(run(m).await) / m as f64
        })
        .await
        .expect("tokio's main task panicked")
    })
}

fn usage() -> ! {
    eprintln!(
        "usage: pipeline [--go PATH] [--rounds R] [--m M] | pipeline --side gort|may|tokio M"
    );
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut go, mut rounds, mut m) = (None, ROUNDS, M);
    let mut it = args.iter().map(String::as_str);
    while let Some(a) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage());
        let num = |s: &str| s.parse::<usize>().ok().filter(|&x| x > 0);
        match a {
            "--side" => {
                let side = val().to_owned();
                let m = num(val()).unwrap_or_else(|| usage());
                let ns = match side.as_str() {
                    "gort" => gort_side(m),
                    "may" => may_side(m),
                    "tokio" => tokio_side(m),
                    _ => usage(),
                };
                return Sample::print(ns);
            }
            "--go" => go = Some(val().to_owned()),
            "--rounds" => rounds = num(val()).unwrap_or_else(|| usage()),
            "--m" => m = num(val()).unwrap_or_else(|| usage()),
            _ => usage(),
        }
    }

    let exe = std::env::current_exe().expect("current_exe");
    let own = |side: &'static str| {
        let exe = exe.clone();
        Entry::new("pipeline", side, side, move || {
            let mut c = Command::new(&exe);
            c.env("RUST_BACKTRACE", "0")
                .args(["--side", side, &m.to_string()]);
            c
        })
    };
    let mut entries = vec![own("gort")];
    if let Some(go) = go {
        entries.push(Entry::new("pipeline", "go", "go", move || {
            let mut c = Command::new(&go);
            c.env("GOMAXPROCS", "2")
                .args([m.to_string(), W.to_string(), CAP.to_string()]);
            c
        }));
    }
    entries.push(own("may"));
    entries.push(own("tokio"));
    eprintln!(
        "# pipeline: 1 -> {W} -> 1, {m} items per sample, channel capacity {CAP}, 2 processors, {rounds} rounds"
    );
    run_grouped("pipeline", entries, rounds, LIMIT, "ns per item");
}
