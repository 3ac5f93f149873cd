//! `idle_memory`: the resident memory of a coroutine parked on a channel
//! receive (one side of `compare.sh idle_memory`, which alternates the
//! sides and compares the medians).
//!
//! Every side, on two processors, reads its resident set (`VmRSS` in
//! `/proc/self/status`), starts `N` coroutines (tasks, goroutines) from its
//! main coroutine, each of which increments a counter and then blocks
//! receiving on one shared channel, waits until the counter reaches `N`,
//! sleeps 100 ms more so that the last ones are parked too, and reads
//! `VmRSS` again: (after − before) / N is the memory per parked coroutine,
//! everything included (stack pages, the coroutine's own structure, its
//! waiter entry in the channel, its closure). Then the channel is closed
//! and the main coroutine waits until every coroutine has seen the close.
//! No handles are kept (they are dropped at spawn; the Go side has none).
//!
//! - gort: `Runtime::builder().procs(2).stack_size(16 KiB)` (16 KiB is
//!   gort's minimum), guarded stacks (the default; with the kernel's guard
//!   regions they share slabs, so 100,000 fit under `vm.max_map_count`;
//!   they cost 4,375 B each here against 4,362 B unguarded, plus 8 B of
//!   page table), `gort::chan::bounded(0)`, each coroutine holds a
//!   `Receiver` clone.
//! - Go (`benches/go/idle_memory`): `GOMAXPROCS=2`, `make(chan int)`
//!   (goroutine stacks start at 2 KiB and grow by copying).
//! - may: `set_workers(2)`, `set_stack_size` of 16 KiB,
//!   `may::sync::mpmc::channel`. may maps every stack with a guard page
//!   (two mappings each), so it cannot hold 100,000 (it fails with
//!   ENOMEM); `compare.sh` compares it at 30,000 as well.
//! - tokio (for scale): `multi_thread` with 2 workers, a
//!   `tokio::sync::broadcast` channel (the tokio channel many tasks can
//!   wait on at once), each task awaiting its own subscription's `recv()`.
//!
//! Page tables (`VmPTE`) are not part of RSS; their growth per coroutine
//! is printed as well (`pte_per`), for the record.
//!
//! Usage: `idle_memory --side gort|may|tokio N`: one sample; prints
//! `bytes_per=<bytes per coroutine> rss_before_kib=<x> rss_after_kib=<y>
//! pte_per=<page-table bytes per coroutine>` (the Go program prints the
//! same line).

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use gort_compare::proc_status_kib;

/// Stack size of gort's and may's coroutines.
const STACK: usize = 16 * 1024;
/// How long to wait, after the last coroutine has counted itself, for it
/// to park.
const SETTLE: Duration = Duration::from_millis(100);
/// Polling interval while waiting for the counters.
const POLL: Duration = Duration::from_millis(1);

/// Coroutines that have started (and are about to block).
static READY: AtomicUsize = AtomicUsize::new(0);
/// Coroutines that have seen the channel close.
static DONE: AtomicUsize = AtomicUsize::new(0);

/// `VmRSS` and `VmPTE` (KiB) at one moment.
#[derive(Debug, Clone, Copy)]
struct Mem {
    rss: u64,
    pte: u64,
}

impl Mem {
    fn now() -> Mem {
        Mem {
            rss: proc_status_kib("VmRSS"),
            pte: proc_status_kib("VmPTE"),
        }
    }
}

/// The memory before spawning and once all are parked.
type Rss = (Mem, Mem);

fn wait_for(counter: &AtomicUsize, n: usize, mut sleep: impl FnMut(Duration)) {
    while counter.load(Ordering::Acquire) < n {
        sleep(POLL);
    }
}

fn gort_side(n: usize) -> Rss {
    let rt = gort::Runtime::builder()
        .procs(2)
        .stack_size(STACK)
        .build()
        .expect("build a gort runtime");
    rt.block_on(move || {
        let (tx, rx) = gort::chan::bounded::<u64>(0);
        let before = Mem::now();
        for _ in 0..n {
            let rx = rx.clone();
            drop(gort::spawn(move || {
                READY.fetch_add(1, Ordering::Release);
                assert!(rx.recv().is_err(), "received a value");
                DONE.fetch_add(1, Ordering::Release);
            }));
        }
        wait_for(&READY, n, gort::time::sleep);
        gort::time::sleep(SETTLE);
        let after = Mem::now();
        drop(tx);
        wait_for(&DONE, n, gort::time::sleep);
        (before, after)
    })
}

fn may_side(n: usize) -> Rss {
    may::config()
        .set_workers(2)
        .set_stack_size(STACK / size_of::<usize>());
    let main = may::go!(move || {
        let (tx, rx) = may::sync::mpmc::channel::<u64>();
        let before = Mem::now();
        for _ in 0..n {
            let rx = rx.clone();
            drop(may::go!(move || {
                READY.fetch_add(1, Ordering::Release);
                assert!(rx.recv().is_err(), "received a value");
                DONE.fetch_add(1, Ordering::Release);
            }));
        }
        wait_for(&READY, n, may::coroutine::sleep);
        may::coroutine::sleep(SETTLE);
        let after = Mem::now();
        drop(tx);
        wait_for(&DONE, n, may::coroutine::sleep);
        (before, after)
    });
    main.join().expect("may's main coroutine panicked")
}

fn tokio_side(n: usize) -> Rss {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("build a tokio runtime");
    rt.block_on(async move {
        tokio::spawn(async move {
            let (tx, _) = tokio::sync::broadcast::channel::<u64>(1);
            let before = Mem::now();
            for _ in 0..n {
                let mut rx = tx.subscribe();
                drop(tokio::spawn(async move {
                    READY.fetch_add(1, Ordering::Release);
                    assert!(rx.recv().await.is_err(), "received a value");
                    DONE.fetch_add(1, Ordering::Release);
                }));
            }
            while READY.load(Ordering::Acquire) < n {
                tokio::time::sleep(POLL).await;
            }
            tokio::time::sleep(SETTLE).await;
            let after = Mem::now();
            drop(tx);
            while DONE.load(Ordering::Acquire) < n {
                tokio::time::sleep(POLL).await;
            }
            (before, after)
        })
        .await
        .expect("tokio's main task panicked")
    })
}

fn usage() -> ! {
    eprintln!("usage: idle_memory --side gort|may|tokio N");
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [flag, side, n] = args.as_slice() else {
        usage()
    };
    let n: usize = match n.parse() {
        Ok(n) if n > 0 && flag == "--side" => n,
        _ => usage(),
    };
    let (before, after) = match side.as_str() {
        "gort" => gort_side(n),
        "may" => may_side(n),
        "tokio" => tokio_side(n),
        _ => usage(),
    };
    if side == "gort" || side == "may" {
        eprintln!("idle_memory: {side}: {} KiB stacks", STACK / 1024);
    }
    let per = |a: u64, b: u64| (b as f64 - a as f64) * 1024.0 / n as f64;
    println!(
        "bytes_per={:.2} rss_before_kib={} rss_after_kib={} pte_per={:.2}",
        per(before.rss, after.rss),
        before.rss,
        after.rss,
        per(before.pte, after.pte)
    );
}
