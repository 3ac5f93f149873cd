//! `yield`: the cost of one yield between two coroutines on one processor.
//!
//! Every side runs two coroutines that each yield `N` times in a loop, on
//! one processor, while the main coroutine (or thread) waits for both; the
//! time from starting them to both having finished, divided by the `2N`
//! yields, is the ns per yield. Each sample starts with an untimed warm-up
//! of `N / 10` yields per coroutine.
//!
//! - gort: `Runtime::builder().procs(1)`, two `gort::spawn`ed loops of
//!   `gort::yield_now()`, joined by the main coroutine (`block_on`).
//! - Go (`benches/go/yield`): `GOMAXPROCS=1`, two goroutines looping
//!   `runtime.Gosched()`, a `sync.WaitGroup`.
//! - may: `may::config().set_workers(1)`, two `may::go!` loops of
//!   `may::coroutine::yield_now()`, joined from the main thread.
//! - tokio: a `current_thread` runtime, two `tokio::spawn`ed loops of
//!   `tokio::task::yield_now().await`, awaited by the `block_on` future.
//!
//! Every sample is its own child process (this binary re-run with
//! `--side NAME N`, or the Go binary), and the samples alternate gort, go,
//! may, tokio, gort, ... The medians are reported.
//!
//! Usage:
//! - `yield [--go PATH] [--rounds R] [--n N]`: the comparison (without
//!   `--go`, no Go line).
//! - `yield --side gort|may|tokio N`: one sample of one side; prints
//!   `ns=<ns per yield> hwm_kib=<peak RSS>`.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use gort_compare::{Sample, Side, alternate, compare_line, medians, spread};

/// Yields per coroutine in a sample (two coroutines: 2N yields).
const N: usize = 1_000_000;
/// Samples per side.
const ROUNDS: usize = 11;
/// A sample that takes longer than this has hung.
const LIMIT: Duration = Duration::from_secs(30);

fn gort_side(n: usize) -> f64 {
    let rt = gort::Runtime::builder()
        .procs(1)
        .build()
        .expect("build a gort runtime");
    rt.block_on(move || {
        let rounds = |n: usize| {
            let t = Instant::now();
            let hs: Vec<_> = (0..2)
                .map(|_| {
                    gort::spawn(move || {
                        for _ in 0..n {
                            gort::yield_now();
                        }
                    })
                })
                .collect();
            for h in hs {
                h.join().expect("a yielding coroutine panicked");
            }
            t.elapsed()
        };
        rounds(n / 10);
        gort_compare::elapsed_ns(rounds(n)) / (2 * n) as f64
    })
}

fn may_side(n: usize) -> f64 {
    may::config().set_workers(1);
    let rounds = |n: usize| {
        let t = Instant::now();
        let hs: Vec<_> = (0..2)
            .map(|_| {
                may::go!(move || {
                    for _ in 0..n {
                        may::coroutine::yield_now();
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().expect("a yielding coroutine panicked");
        }
        t.elapsed()
    };
    rounds(n / 10);
    gort_compare::elapsed_ns(rounds(n)) / (2 * n) as f64
}

fn tokio_side(n: usize) -> f64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("build a tokio runtime");
    rt.block_on(async move {
        let rounds = async |n: usize| {
            let t = Instant::now();
            let hs: Vec<_> = (0..2)
                .map(|_| {
                    tokio::spawn(async move {
                        for _ in 0..n {
                            tokio::task::yield_now().await;
                        }
                    })
                })
                .collect();
            for h in hs {
                h.await.expect("a yielding task panicked");
            }
            t.elapsed()
        };
        rounds(n / 10).await;
        gort_compare::elapsed_ns(rounds(n).await) / (2 * n) as f64
    })
}

fn usage() -> ! {
    eprintln!("usage: yield [--go PATH] [--rounds R] [--n N] | yield --side gort|may|tokio N");
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut go, mut rounds, mut n) = (None, ROUNDS, N);
    let mut it = args.iter().map(String::as_str);
    while let Some(a) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage());
        let num = |s: &str| s.parse::<usize>().ok().filter(|&x| x > 0);
        match a {
            "--side" => {
                let side = val().to_owned();
                let n = num(val()).unwrap_or_else(|| usage());
                let ns = match side.as_str() {
                    "gort" => gort_side(n),
                    "may" => may_side(n),
                    "tokio" => tokio_side(n),
                    _ => usage(),
                };
                return Sample::print(ns);
            }
            "--go" => go = Some(val().to_owned()),
            "--rounds" => rounds = num(val()).unwrap_or_else(|| usage()),
            "--n" => n = num(val()).unwrap_or_else(|| usage()),
            _ => usage(),
        }
    }

    let exe = std::env::current_exe().expect("current_exe");
    let own = |side: &'static str| {
        let exe = exe.clone();
        Side::new(side, move || {
            let mut c = Command::new(&exe);
            c.env("RUST_BACKTRACE", "0")
                .args(["--side", side, &n.to_string()]);
            c
        })
    };
    let mut sides = vec![own("gort")];
    if let Some(go) = go {
        sides.push(Side::new("go", move || {
            let mut c = Command::new(&go);
            c.env("GOMAXPROCS", "1").arg(n.to_string());
            c
        }));
    }
    sides.push(own("may"));
    sides.push(own("tokio"));

    let results = alternate("yield", &sides, rounds, LIMIT);
    let figures: Vec<_> = results
        .iter()
        .map(|r| r.as_ref().map(|s| medians(s).0))
        .collect();
    for (side, r) in sides.iter().zip(&results) {
        if let Ok(s) = r {
            let ns: Vec<f64> = s.iter().map(|s| s.ns).collect();
            eprintln!("yield {:5} ns per yield: {}", side.name, spread(&ns));
        }
    }
    for (side, f) in sides.iter().zip(&figures).skip(1) {
        println!(
            "{}",
            compare_line("yield", ("gort", figures[0]), (&side.name, *f))
        );
    }
}
