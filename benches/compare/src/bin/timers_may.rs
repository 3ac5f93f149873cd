//! `timers_may`: the may side of `compare.sh timers`.
//!
//! With 2 workers (`may::config().set_workers(2)`), a main `may::go!`
//! coroutine spawns 10,000 coroutines that each call
//! `may::coroutine::sleep(1 ms)` 100 times, then joins every handle. Ideal
//! wall time: 100 ms. Prints `wall_ms=<x> cpu_ms=<y>` as `timers_gort`
//! does.
//!
//! Usage: `timers_may [COROUTINES [SLEEPS]]`.

use gort_compare::timers::{Clock, TICK, shape};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (n, sleeps) = shape(&args);
    may::config().set_workers(2);
    let main = may::go!(move || {
        let clock = Clock::start();
        let hs: Vec<_> = (0..n)
            .map(|_| {
                may::go!(move || {
                    for _ in 0..sleeps {
                        may::coroutine::sleep(TICK);
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().expect("a sleeping coroutine panicked");
        }
        clock.report();
    });
    main.join().expect("may's main coroutine panicked");
}
