//! `pingpong`: one round trip between two coroutines over channels, on one
//! and on two processors.
//!
//! Every side runs the same pair: a pinger sends a number on `ping` and
//! waits for the reply on `pong`; a ponger receives on `ping` and sends
//! the number plus one on `pong`. One round trip is one send and one
//! receive on each side. Both are spawned (neither is the main coroutine or
//! thread); the pinger times `N` round trips, from its first send to its
//! last receive, and checks the number it ends with. Each sample starts
//! with an untimed warm-up pair of `N / 10` round trips.
//!
//! - gort: `Runtime::builder().procs(1 | 2)`, `gort::chan::bounded(0)`
//!   (Go's unbuffered rendezvous), two `gort::spawn`ed coroutines.
//! - Go (`benches/go/pingpong`): `GOMAXPROCS=1 | 2`, `make(chan int)`.
//! - may: `may::config().set_workers(1 | 2)`, `may::sync::mpsc::channel`
//!   (may has no bounded or rendezvous channel; with one value in flight
//!   the queue never holds more than one), two `may::go!` coroutines.
//! - tokio: `current_thread` (the 1-processor group) and `multi_thread` with
//!   2 workers (the 2-processor group), `tokio::sync::mpsc::channel(1)`,
//!   two `tokio::spawn`ed tasks.
//! - std threads: two `std::thread`s, `std::sync::mpsc::sync_channel(0)`
//!   (a rendezvous); in the 1-processor group both threads are pinned to
//!   CPU 0 (every hand-off is a context switch on one CPU), in the
//!   2-processor group they are not pinned. They run `N / 20` round trips
//!   (a round trip costs microseconds).
//!
//! Every sample is its own child process (this binary re-run with
//! `--side NAME N`, or the Go binary), and all ten sides alternate in
//! every round; the medians are reported as `compare pingpong_1p ...` and
//! `compare pingpong_2p ...`, gort against each peer.
//!
//! Usage:
//! - `pingpong [--go PATH] [--rounds R] [--n N]`: the comparison (without
//!   `--go`, no Go lines).
//! - `pingpong --side gort1|gort2|may1|may2|tokio_ct|tokio_mt|std_1cpu|std N`:
//!   one sample of one side; prints `ns=<ns per round trip> hwm_kib=<peak RSS>`.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use gort_compare::{Entry, Sample, elapsed_ns, run_grouped};

/// Round trips per sample (std threads: `N / STD_DIV`).
const N: usize = 200_000;
/// Divisor of `N` for the std-thread sides.
const STD_DIV: usize = 20;
/// Samples per side.
const ROUNDS: usize = 11;
/// A sample that takes longer than this has hung.
const LIMIT: Duration = Duration::from_secs(30);

/// The warm-up, then the timed run: ns per round trip of `pair(n)`, which
/// runs one pair for `n` round trips and returns the pinger's time.
fn measure(n: usize, mut pair: impl FnMut(usize) -> Duration) -> f64 {
    pair(n / 10 + 1);
    elapsed_ns(pair(n)) / n as f64
}

fn gort_side(procs: usize, n: usize) -> f64 {
    let rt = gort::Runtime::builder()
        .procs(procs)
        .build()
        .expect("build a gort runtime");
    rt.block_on(move || {
        measure(n, |n| {
            let (ping_tx, ping_rx) = gort::chan::bounded::<u64>(0);
            let (pong_tx, pong_rx) = gort::chan::bounded::<u64>(0);
            let ponger = gort::spawn(move || {
                for v in ping_rx {
                    if pong_tx.send(v + 1).is_err() {
                        break;
                    }
                }
            });
            let pinger = gort::spawn(move || {
                let mut v = 0;
                let t = Instant::now();
                for _ in 0..n {
                    ping_tx.send(v).expect("the ponger is gone");
                    v = pong_rx.recv().expect("the ponger is gone");
                }
                let d = t.elapsed();
                assert_eq!(v, n as u64, "wrong value after {n} round trips");
                d
            });
            let d = pinger.join().expect("the pinger panicked");
            ponger.join().expect("the ponger panicked");
            d
        })
    })
}

fn may_side(workers: usize, n: usize) -> f64 {
    may::config().set_workers(workers);
    measure(n, |n| {
        let (ping_tx, ping_rx) = may::sync::mpsc::channel::<u64>();
        let (pong_tx, pong_rx) = may::sync::mpsc::channel::<u64>();
        let ponger = may::go!(move || {
            for v in ping_rx {
                if pong_tx.send(v + 1).is_err() {
                    break;
                }
            }
        });
        let pinger = may::go!(move || {
            let mut v = 0;
            let t = Instant::now();
            for _ in 0..n {
                ping_tx.send(v).expect("the ponger is gone");
                v = pong_rx.recv().expect("the ponger is gone");
            }
            let d = t.elapsed();
            assert_eq!(v, n as u64, "wrong value after {n} round trips");
            d
        });
        let d = pinger.join().expect("the pinger panicked");
        ponger.join().expect("the ponger panicked");
        d
    })
}

fn tokio_side(multi_thread: bool, n: usize) -> f64 {
    let rt = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread().build()
    }
    .expect("build a tokio runtime");
    rt.block_on(async move {
        let pair = async |n: usize| {
            let (ping_tx, mut ping_rx) = tokio::sync::mpsc::channel::<u64>(1);
            let (pong_tx, mut pong_rx) = tokio::sync::mpsc::channel::<u64>(1);
            let ponger = tokio::spawn(async move {
                while let Some(v) = ping_rx.recv().await {
                    if pong_tx.send(v + 1).await.is_err() {
                        break;
                    }
                }
            });
            let pinger = tokio::spawn(async move {
                let mut v = 0;
                let t = Instant::now();
                for _ in 0..n {
                    ping_tx.send(v).await.expect("the ponger is gone");
                    v = pong_rx.recv().await.expect("the ponger is gone");
                }
                let d = t.elapsed();
                assert_eq!(v, n as u64, "wrong value after {n} round trips");
                d
            });
            let d = pinger.await.expect("the pinger panicked");
            ponger.await.expect("the ponger panicked");
            d
        };
        pair(n / 10 + 1).await;
        elapsed_ns(pair(n).await) / n as f64
    })
}

/// Pins the calling thread to CPU `cpu`.
fn pin_to(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and
    // sched_setaffinity only read/write it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) != 0 {
            eprintln!(
                "warning: cannot pin to CPU {cpu}: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

fn std_side(pin: bool, n: usize) -> f64 {
    measure(n, |n| {
        let (ping_tx, ping_rx) = std::sync::mpsc::sync_channel::<u64>(0);
        let (pong_tx, pong_rx) = std::sync::mpsc::sync_channel::<u64>(0);
        let ponger = std::thread::spawn(move || {
            if pin {
                pin_to(0);
            }
            for v in ping_rx {
                if pong_tx.send(v + 1).is_err() {
                    break;
                }
            }
        });
        let pinger = std::thread::spawn(move || {
            if pin {
                pin_to(0);
            }
            let mut v = 0;
            let t = Instant::now();
            for _ in 0..n {
                ping_tx.send(v).expect("the ponger is gone");
                v = pong_rx.recv().expect("the ponger is gone");
            }
            let d = t.elapsed();
            assert_eq!(v, n as u64, "wrong value after {n} round trips");
            d
        });
        let d = pinger.join().expect("the pinger panicked");
        ponger.join().expect("the ponger panicked");
        d
    })
}

fn usage() -> ! {
    eprintln!(
        "usage: pingpong [--go PATH] [--rounds R] [--n N] | pingpong --side gort1|gort2|may1|may2|tokio_ct|tokio_mt|std_1cpu|std N"
    );
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
                    "gort1" => gort_side(1, n),
                    "gort2" => gort_side(2, n),
                    "may1" => may_side(1, n),
                    "may2" => may_side(2, n),
                    "tokio_ct" => tokio_side(false, n),
                    "tokio_mt" => tokio_side(true, n),
                    "std_1cpu" => std_side(true, n),
                    "std" => std_side(false, n),
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
    let own = |metric: &str, label: &str, side: &'static str, n: usize| {
        let exe = exe.clone();
        Entry::new(metric, label, side, move || {
            let mut c = Command::new(&exe);
            c.env("RUST_BACKTRACE", "0")
                .args(["--side", side, &n.to_string()]);
            c
        })
    };
    let std_n = (n / STD_DIV).max(1);
    let mut entries = Vec::new();
    for procs in [1, 2] {
        let metric = format!("pingpong_{procs}p");
        entries.push(own(&metric, "gort", ["gort1", "gort2"][procs - 1], n));
        if let Some(go) = &go {
            let go = go.clone();
            entries.push(Entry::new(
                &metric,
                "go",
                &format!("go{procs}"),
                move || {
                    let mut c = Command::new(&go);
                    c.env("GOMAXPROCS", procs.to_string()).arg(n.to_string());
                    c
                },
            ));
        }
        entries.push(own(&metric, "may", ["may1", "may2"][procs - 1], n));
        if procs == 1 {
            entries.push(own(&metric, "tokio_ct", "tokio_ct", n));
            entries.push(own(&metric, "std_thread_1cpu", "std_1cpu", std_n));
        } else {
            entries.push(own(&metric, "tokio_mt", "tokio_mt", n));
            entries.push(own(&metric, "std_thread", "std", std_n));
        }
    }
    eprintln!("# pingpong: {n} round trips per sample ({std_n} for std threads), {rounds} rounds");
    run_grouped("pingpong", entries, rounds, LIMIT, "ns per round trip");
}
