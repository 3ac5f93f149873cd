//! `timers_tokio`: the tokio sides of `compare.sh timers`.
//!
//! A main task spawns 10,000 tasks (`tokio::spawn`) that each await
//! `tokio::time::sleep(1 ms)` 100 times, then awaits every handle, on a
//! `current_thread` runtime or on a `multi_thread` runtime with 2 workers
//! (where the main task is itself spawned, so that it runs on a worker as
//! the other sides' main coroutines do). Ideal wall time: 100 ms. Prints
//! `wall_ms=<x> cpu_ms=<y>` as `timers_gort` does.
//!
//! Usage: `timers_tokio current_thread|multi_thread [COROUTINES [SLEEPS]]`.

use gort_compare::timers::{Clock, TICK, shape};

async fn sleep_all(n: usize, sleeps: usize) {
    let clock = Clock::start();
    let hs: Vec<_> = (0..n)
        .map(|_| {
            tokio::spawn(async move {
                for _ in 0..sleeps {
                    tokio::time::sleep(TICK).await;
                }
            })
        })
        .collect();
    for h in hs {
        h.await.expect("a sleeping task panicked");
    }
    clock.report();
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (flavor, rest) = args.split_first().unwrap_or_else(|| {
        eprintln!("usage: timers_tokio current_thread|multi_thread [COROUTINES [SLEEPS]]");
        std::process::exit(2)
    });
    let (n, sleeps) = shape(rest);
    match flavor.as_str() {
        "current_thread" => tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("build a tokio runtime")
            .block_on(sleep_all(n, sleeps)),
        "multi_thread" => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .expect("build a tokio runtime")
            .block_on(async move {
                tokio::spawn(sleep_all(n, sleeps))
                    .await
                    .expect("the main task panicked")
            }),
        other => {
            eprintln!("timers_tokio: unknown flavor '{other}' (current_thread or multi_thread)");
            std::process::exit(2)
        }
    }
}
