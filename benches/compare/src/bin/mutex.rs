//! `mutex`: a contended mutex, 1,000 coroutines on two processors.
//!
//! Every side starts `G` = 1,000 coroutines (tasks, goroutines) from its
//! main coroutine; each does `N` = 2,000 times: lock one shared mutex,
//! add 1 to the counter it guards, unlock. The main coroutine waits for all
//! of them and checks the count (`G × N`). The time from the first spawn
//! to the end of the wait, divided by `G × N`, is the ns per lock. Each
//! sample starts with an untimed warm-up run of `N / 10` locks each.
//!
//! - gort: `Runtime::builder().procs(2)`, `gort::sync::Mutex<u64>` in an
//!   `Arc`, the main coroutine (`block_on`) joins the `JoinHandle`s.
//! - Go (`benches/go/mutex`): `GOMAXPROCS=2`, `sync.Mutex` and an `int`,
//!   `sync.WaitGroup`.
//! - may (for scale): `set_workers(2)`, `may::sync::Mutex<u64>`, a main
//!   `may::go!` coroutine joins the handles.
//! - tokio (for scale): `multi_thread` with 2 workers, `tokio::sync::Mutex`
//!   (`lock().await`), a main task awaits the handles.
//!
//! Every sample is its own child process; gort, go, may, tokio alternate
//! in every round; the medians are compared (`compare mutex ...`).
//!
//! Usage:
//! - `mutex [--go PATH] [--rounds R] [--g G] [--n N]`: the comparison.
//! - `mutex --side gort|may|tokio G N`: one sample; prints
//!   `ns=<ns per lock> hwm_kib=<peak RSS>`.

use std::{
    process::Command,
    sync::Arc,
    time::{Duration, Instant},
};

use gort_compare::{Entry, Sample, elapsed_ns, run_grouped};

/// Coroutines per sample.
const G: usize = 1_000;
/// Locks per coroutine.
const N: usize = 2_000;
/// Samples per side.
const ROUNDS: usize = 9;
/// A sample that takes longer than this has hung.
const LIMIT: Duration = Duration::from_secs(60);

fn check(count: u64, g: usize, n: usize) {
    assert_eq!(count, (g * n) as u64, "lost increments");
}

fn gort_side(g: usize, n: usize) -> f64 {
    let rt = gort::Runtime::builder()
        .procs(2)
        .build()
        .expect("build a gort runtime");
    rt.block_on(move || {
        let run = |n: usize| {
            let m = Arc::new(gort::sync::Mutex::new(0u64));
            let t = Instant::now();
            let hs: Vec<_> = (0..g)
                .map(|_| {
                    let m = m.clone();
                    gort::spawn(move || {
                        for _ in 0..n {
                            *m.lock() += 1;
                        }
                    })
                })
                .collect();
            for h in hs {
                h.join().expect("a locking coroutine panicked");
            }
            let d = t.elapsed();
            check(*m.lock(), g, n);
            d
        };
        run(n / 10 + 1);
        elapsed_ns(run(n)) / (g * n) as f64
    })
}

fn may_side(g: usize, n: usize) -> f64 {
    may::config().set_workers(2);
    let main = may::go!(move || {
        let run = |n: usize| {
            let m = Arc::new(may::sync::Mutex::new(0u64));
            let t = Instant::now();
            let hs: Vec<_> = (0..g)
                .map(|_| {
                    let m = m.clone();
                    may::go!(move || {
                        for _ in 0..n {
                            *m.lock().expect("poisoned") += 1;
                        }
                    })
                })
                .collect();
            for h in hs {
                h.join().expect("a locking coroutine panicked");
            }
            let d = t.elapsed();
            check(*m.lock().expect("poisoned"), g, n);
            d
        };
        run(n / 10 + 1);
        elapsed_ns(run(n)) / (g * n) as f64
    });
    main.join().expect("may's main coroutine panicked")
}

fn tokio_side(g: usize, n: usize) -> f64 {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("build a tokio runtime");
    rt.block_on(async move {
        tokio::spawn(async move {
            let run = async |n: usize| {
                let m = Arc::new(tokio::sync::Mutex::new(0u64));
                let t = Instant::now();
                let hs: Vec<_> = (0..g)
                    .map(|_| {
                        let m = m.clone();
                        tokio::spawn(async move {
                            for _ in 0..n {
                                *m.lock().await += 1;
                            }
                        })
                    })
                    .collect();
                for h in hs {
                    h.await.expect("a locking task panicked");
                }
                let d = t.elapsed();
                check(*m.lock().await, g, n);
                d
            };
            run(n / 10 + 1).await;
            elapsed_ns(run(n).await) / (g * n) as f64
        })
        .await
        .expect("tokio's main task panicked")
    })
}

fn usage() -> ! {
    eprintln!(
        "usage: mutex [--go PATH] [--rounds R] [--g G] [--n N] | mutex --side gort|may|tokio G N"
    );
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut go, mut rounds, mut g, mut n) = (None, ROUNDS, G, N);
    let mut it = args.iter().map(String::as_str);
    while let Some(a) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage());
        let num = |s: &str| s.parse::<usize>().ok().filter(|&x| x > 0);
        match a {
            "--side" => {
                let side = val().to_owned();
                let g = num(val()).unwrap_or_else(|| usage());
                let n = num(val()).unwrap_or_else(|| usage());
                let ns = match side.as_str() {
                    "gort" => gort_side(g, n),
                    "may" => may_side(g, n),
                    "tokio" => tokio_side(g, n),
                    _ => usage(),
                };
                return Sample::print(ns);
            }
            "--go" => go = Some(val().to_owned()),
            "--rounds" => rounds = num(val()).unwrap_or_else(|| usage()),
            "--g" => g = num(val()).unwrap_or_else(|| usage()),
            "--n" => n = num(val()).unwrap_or_else(|| usage()),
            _ => usage(),
        }
    }

    let exe = std::env::current_exe().expect("current_exe");
    let own = |side: &'static str| {
        let exe = exe.clone();
        Entry::new("mutex", side, side, move || {
            let mut c = Command::new(&exe);
            c.env("RUST_BACKTRACE", "0")
                .args(["--side", side, &g.to_string(), &n.to_string()]);
            c
        })
    };
    let mut entries = vec![own("gort")];
    if let Some(go) = go {
        entries.push(Entry::new("mutex", "go", "go", move || {
            let mut c = Command::new(&go);
            c.env("GOMAXPROCS", "2")
                .args([g.to_string(), n.to_string()]);
            c
        }));
    }
    entries.push(own("may"));
    entries.push(own("tokio"));
    eprintln!("# mutex: {g} coroutines x {n} locks per sample on 2 processors, {rounds} rounds");
    run_grouped("mutex", entries, rounds, LIMIT, "ns per lock");
}
