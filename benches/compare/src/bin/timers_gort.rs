//! `timers_gort`: the gort side of `compare.sh timers`.
//!
//! On a runtime with 2 Ps (`Runtime::builder().procs(2)`), the main
//! coroutine spawns 10,000 coroutines (`gort::spawn`) that each call
//! `gort::time::sleep(1 ms)` 100 times, then joins every handle. Ideal
//! wall time: 100 ms. Prints `wall_ms=<x> cpu_ms=<y>`: the wall time from
//! the first spawn to the last join, and the process's CPU time (user +
//! sys, all threads, `getrusage`) over the same span.
//!
//! Usage: `timers_gort [COROUTINES [SLEEPS]]`.

use gort_compare::timers::{Clock, TICK, shape};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (n, sleeps) = shape(&args);
    let rt = gort::Runtime::builder()
        .procs(2)
        .build()
        .expect("build a gort runtime");
    rt.block_on(move || {
        let clock = Clock::start();
        let hs: Vec<_> = (0..n)
            .map(|_| {
                gort::spawn(move || {
                    for _ in 0..sleeps {
                        gort::time::sleep(TICK);
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().expect("a sleeping coroutine panicked");
        }
        clock.report();
    });
}
