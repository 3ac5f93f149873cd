//! `spawn`: the cost of spawning and finishing a trivial coroutine, on two
//! processors, and the peak memory of doing it `N` times at once.
//!
//! Every side has a main coroutine (or task, or goroutine) running on one of
//! the two processors start `N` = 1,000,000 coroutines that each add 1 to a
//! shared atomic counter, then wait for all of them; the time from the
//! first spawn to the end of the wait, divided by `N`, is the ns per
//! coroutine. The counter is checked to be `N` afterwards. Each sample is
//! the first and only run of a fresh process (cold: no warm-up), and the
//! peak resident set of that process (`VmHWM`) is reported as well, so the
//! sides' peaks never mix.
//!
//! - gort: `Runtime::builder().procs(2)`; the main coroutine (`block_on`)
//!   keeps the `JoinHandle`s in a `Vec` and joins them in order, as the
//!   may and tokio sides do.
//! - gort-wg: Go's program exactly, a `gort::sync::WaitGroup` and the
//!   handles dropped at once; compared with Go on its own line
//!   (`spawn_wg_ns`).
//! - floor: no runtime; the harness's own memory work (see `floor_side`),
//!   compared with gort's handle side and with Go.
//! - Go (`benches/go/spawn`): `GOMAXPROCS=2`; `wg.Add(1)` before each `go`,
//!   `wg.Done()` in the goroutine, `wg.Wait()` in the main goroutine.
//! - may: `may::config().set_workers(2)`; a main `may::go!` coroutine
//!   spawns with `may::go!`, keeps the handles and joins them.
//! - tokio: a `multi_thread` runtime with 2 workers; a main task (spawned,
//!   so that it runs on a worker like the other sides' main coroutines)
//!   `tokio::spawn`s, keeps the handles and awaits them.
//!
//! may gives each coroutine its own mapped stack up front; spawning 1M of
//! them exhausts the kernel's mapping limit (`vm.max_map_count`). A side
//! that fails is reported as `failed(<why>)` and not run again. gort and
//! may are also compared at the smaller counts of `SMALL`. The samples
//! alternate gort, go, may, tokio, floor, gort-wg (at N), then gort, may
//! at each smaller count, for `ROUNDS` rounds; the medians are reported.
//!
//! Usage:
//! - `spawn [--go PATH] [--rounds R]`: the comparison (without `--go`, no
//!   Go lines).
//! - `spawn --side gort|gort-wg|floor|may|tokio N`: one sample; prints
//!   `ns=<ns per coroutine> hwm_kib=<peak RSS>`.
//! - `spawn --side gort-1p|gort-detached|gort-detached-1p N`: diagnostic
//!   variants of the gort side, for analysis only: on 1 P, and/or with
//!   the handles dropped at spawn and the main coroutine yielding until
//!   the counter reaches N.

use std::{
    process::Command,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use gort_compare::{Failure, Sample, Side, alternate, compare_line, elapsed_ns, medians, spread};

/// Coroutines per sample.
const N: usize = 1_000_000;
/// Smaller counts at which gort and may are also compared: may cannot
/// spawn 100,000 here, so the largest count at which its stacks (a mapping
/// and a guard page each) fit under the default `vm.max_map_count` of
/// 65,530 even if all are alive at once, 30,000, is also run.
const SMALL: [usize; 2] = [100_000, 30_000];
/// Samples per side.
const ROUNDS: usize = 9;
/// A sample that takes longer than this has hung.
const LIMIT: Duration = Duration::from_secs(20);

/// What every spawned coroutine does: count itself.
static COUNT: AtomicU64 = AtomicU64::new(0);

fn check(n: usize) {
    let got = COUNT.load(Ordering::Relaxed);
    assert_eq!(got, n as u64, "{got} of {n} coroutines ran");
}

fn gort_side(n: usize) -> f64 {
    gort_variant(n, 2, false)
}

/// Diagnostic variant of the gort side (not in the default comparison):
/// `procs` Ps, and with `detached` the handles are dropped at once and the
/// main coroutine waits by yielding until the counter reaches `n` (what a
/// WaitGroup would give: no per-coroutine handle, no join).
fn gort_variant(n: usize, procs: usize, detached: bool) -> f64 {
    let rt = gort::Runtime::builder()
        .procs(procs)
        .build()
        .expect("build a gort runtime");
    let ns = rt.block_on(move || {
        let t = Instant::now();
        if detached {
            for _ in 0..n {
                drop(gort::spawn(|| {
                    COUNT.fetch_add(1, Ordering::Relaxed);
                }));
            }
            while COUNT.load(Ordering::Relaxed) < n as u64 {
                gort::yield_now();
            }
        } else {
            let mut hs = Vec::with_capacity(n);
            for _ in 0..n {
                hs.push(gort::spawn(|| {
                    COUNT.fetch_add(1, Ordering::Relaxed);
                }));
            }
            for h in hs {
                h.join().expect("a spawned coroutine panicked");
            }
        }
        elapsed_ns(t.elapsed()) / n as f64
    });
    check(n);
    ns
}

/// The gort side written as Go's program is: a `WaitGroup` (`add(1)`
/// before each spawn, `done()` in the coroutine, `wait()` at the end), the
/// handles dropped at once. The group is a static, as Go's closures
/// capture `&wg` (no reference count per coroutine).
fn gort_wg_side(n: usize) -> f64 {
    static WG: std::sync::LazyLock<gort::sync::WaitGroup> =
        std::sync::LazyLock::new(gort::sync::WaitGroup::new);
    let rt = gort::Runtime::builder()
        .procs(2)
        .build()
        .expect("build a gort runtime");
    let ns = rt.block_on(move || {
        let t = Instant::now();
        for _ in 0..n {
            WG.add(1);
            drop(gort::spawn(|| {
                COUNT.fetch_add(1, Ordering::Relaxed);
                WG.done();
            }));
        }
        WG.wait();
        elapsed_ns(t.elapsed()) / n as f64
    });
    check(n);
    ns
}

/// The handle-keeping harness's own memory work, with no runtime at all:
/// on a fresh thread (as a spawning M is), `n` result cells shaped like
/// the gort side's (a state word and an 8-byte slot behind an `Arc`'s two
/// counts: 32 bytes, as gort's task cell is for this closure) each kept
/// in a presized `Vec` as one pointer (8 bytes, like a `JoinHandle`),
/// then all dropped in order (the joins' frees), through the system
/// allocator. A runtime that returns a handle per spawn, lets the caller
/// keep a million of them and takes its cells from malloc pays at least
/// this: fresh heap pages for the cells and the vector, first touched by
/// the spawning thread (benches/README.md, "Spawn: the harness alone
/// costs more than 0.3x Go"). gort no longer does (its cells come from
/// chunks of their own, src/sched/blocks.rs), so it can beat this line.
fn floor_side(n: usize) -> f64 {
    use std::{cell::UnsafeCell, sync::Arc};
    struct Cell {
        state: AtomicU64,
        _slot: UnsafeCell<u64>,
    }
    // SAFETY: never shared mutably; the cell only has to be built, kept
    // and freed.
    unsafe impl Sync for Cell {}
    // SAFETY: as above.
    unsafe impl Send for Cell {}
    std::thread::spawn(move || {
        let t = Instant::now();
        let mut hs: Vec<Arc<Cell>> = Vec::with_capacity(n);
        for _ in 0..n {
            let c = Arc::new(Cell {
                state: AtomicU64::new(0),
                _slot: UnsafeCell::new(0),
            });
            hs.push(std::hint::black_box(c));
        }
        for c in hs {
            COUNT.fetch_add(1 + c.state.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        elapsed_ns(t.elapsed()) / n as f64
    })
    .join()
    .expect("the floor thread panicked")
}

fn may_side(n: usize) -> f64 {
    may::config().set_workers(2);
    let main = may::go!(move || {
        let t = Instant::now();
        let mut hs = Vec::with_capacity(n);
        for _ in 0..n {
            hs.push(may::go!(|| {
                COUNT.fetch_add(1, Ordering::Relaxed);
            }));
        }
        for h in hs {
            h.join().expect("a spawned coroutine panicked");
        }
        elapsed_ns(t.elapsed()) / n as f64
    });
    let ns = main.join().expect("may's main coroutine panicked");
    check(n);
    ns
}

fn tokio_side(n: usize) -> f64 {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("build a tokio runtime");
    let ns = rt.block_on(async move {
        tokio::spawn(async move {
            let t = Instant::now();
            let mut hs = Vec::with_capacity(n);
            for _ in 0..n {
                hs.push(tokio::spawn(async {
                    COUNT.fetch_add(1, Ordering::Relaxed);
                }));
            }
            for h in hs {
                h.await.expect("a spawned task panicked");
            }
            elapsed_ns(t.elapsed()) / n as f64
        })
        .await
        .expect("tokio's main task panicked")
    });
    check(n);
    ns
}

fn usage() -> ! {
    eprintln!(
        "usage: spawn [--go PATH] [--rounds R] | spawn --side gort|gort-wg|floor|may|tokio|gort-1p|gort-detached|gort-detached-1p N"
    );
    std::process::exit(2)
}

/// Prints the `compare` lines of `gort` (the first side) against each
/// other side, for ns per coroutine (`<metric>`) and for peak RSS in MiB
/// (`<metric>` with `spawn_ns` replaced by `spawn_peak_rss`).
fn report(metric: &str, names: &[&str], results: &[&Result<Vec<Sample>, Failure>]) {
    let pick = |f: fn((f64, f64)) -> f64| -> Vec<Result<f64, &Failure>> {
        results
            .iter()
            .map(|r| r.as_ref().map(|s| f(medians(s))))
            .collect()
    };
    // spawn_ns -> spawn_peak_rss, spawn_wg_ns -> spawn_wg_peak_rss, ...
    for (name, vals) in [
        (metric.to_owned(), pick(|m| m.0)),
        (metric.replacen("ns", "peak_rss", 1), pick(|m| m.1)),
    ] {
        for (side, v) in names.iter().zip(&vals).skip(1) {
            println!("{}", compare_line(&name, (names[0], vals[0]), (side, *v)));
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut go, mut rounds) = (None, ROUNDS);
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
                    "gort-wg" => gort_wg_side(n),
                    "floor" => floor_side(n),
                    "gort-1p" => gort_variant(n, 1, false),
                    "gort-detached" => gort_variant(n, 2, true),
                    "gort-detached-1p" => gort_variant(n, 1, true),
                    "may" => may_side(n),
                    "tokio" => tokio_side(n),
                    _ => usage(),
                };
                return Sample::print(ns);
            }
            "--go" => go = Some(val().to_owned()),
            "--rounds" => rounds = num(val()).unwrap_or_else(|| usage()),
            _ => usage(),
        }
    }

    let exe = std::env::current_exe().expect("current_exe");
    let own = |side: &'static str, n: usize| {
        let exe = exe.clone();
        Side::new(side, move || {
            let mut c = Command::new(&exe);
            c.env("RUST_BACKTRACE", "0")
                .args(["--side", side, &n.to_string()]);
            c
        })
    };
    // All sides alternate in one sequence: gort, go, may, tokio at N, then
    // gort and may at each smaller count. `groups` names each comparison
    // (gort first, then its peers) and the range of `sides` it covers.
    let mut sides: Vec<(Side, usize)> = vec![(own("gort", N), N)];
    let mut go_at = None;
    if let Some(go) = go {
        let go = Side::new("go", move || {
            let mut c = Command::new(&go);
            c.env("GOMAXPROCS", "2").arg(N.to_string());
            c
        });
        go_at = Some(sides.len());
        sides.push((go, N));
    }
    sides.push((own("may", N), N));
    sides.push((own("tokio", N), N));
    let mut groups = vec![("spawn_ns".to_owned(), (0..sides.len()).collect::<Vec<_>>())];
    // The harness's floor (no runtime: the cells and handles alone) and
    // Go's own program in gort (a WaitGroup, no handles), against gort's
    // handle side and Go's side respectively.
    let floor_at = sides.len();
    sides.push((own("floor", N), N));
    groups.push(("spawn_ns".to_owned(), vec![0, floor_at]));
    let wg_at = sides.len();
    sides.push((own("gort-wg", N), N));
    if let Some(go_at) = go_at {
        groups.push(("spawn_wg_ns".to_owned(), vec![wg_at, go_at]));
        groups.push(("spawn_floor_ns".to_owned(), vec![floor_at, go_at]));
    }
    for n in SMALL {
        let at = sides.len();
        sides.push((own("gort", n), n));
        sides.push((own("may", n), n));
        groups.push((
            format!("spawn_ns_{}k", n / 1000),
            (at..sides.len()).collect(),
        ));
    }
    let (sides, counts): (Vec<Side>, Vec<usize>) = sides.into_iter().unzip();

    let results = alternate("spawn", &sides, rounds, LIMIT);
    for ((side, r), n) in sides.iter().zip(&results).zip(&counts) {
        if let Ok(s) = r {
            let ns: Vec<f64> = s.iter().map(|s| s.ns).collect();
            let mib: Vec<f64> = s.iter().map(Sample::hwm_mib).collect();
            eprintln!(
                "spawn {:5} n={n:7}: ns per coroutine {}; peak RSS MiB {}",
                side.name,
                spread(&ns),
                spread(&mib)
            );
        }
    }
    for (metric, at) in groups {
        let names: Vec<&str> = at.iter().map(|&i| sides[i].name.as_str()).collect();
        let picked: Vec<_> = at.iter().map(|&i| &results[i]).collect();
        report(&metric, &names, &picked);
    }
}
