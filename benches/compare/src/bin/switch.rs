//! `switch`: the cost of one resume + suspend round trip.
//!
//! Both coroutine sides run the same body, `loop { n = y.suspend(n + 1) }`,
//! on a `Coroutine<usize, usize, ()>`, and the driving loop passes the last
//! yielded value back in, so each round trip moves one `usize` each way and
//! does one add. The samples alternate gort, corosensei, gort, ... so that
//! frequency drift and noisy neighbours hit both sides alike; the median of
//! each side is reported.
//!
//! For scale, an OS-thread switch: two threads pinned to one CPU hand a
//! token back and forth through a futex (FUTEX_WAIT / FUTEX_WAKE), so every
//! hand-off is a kernel context switch.
//!
//! Usage:
//! - `switch`: all measurements, printing the `compare switch_roundtrip`
//!   lines on stdout.
//! - `switch --coroutines`: only the gort / corosensei line (for quick A/B
//!   runs while changing gort).
//! - `switch --count gort|gort-unguarded|corosensei N`: exactly N round
//!   trips of one side and nothing else, for counting instructions under
//!   callgrind (`benches/callgrind_switch.sh`). `gort-unguarded` runs on an
//!   unguarded stack, to count what its canary check adds.

use std::{
    hint::black_box,
    ptr,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    thread,
};

use gort_compare::{median, ns_per, spread};

/// Round trips per coroutine sample.
const ROUND_TRIPS: usize = 2_000_000;
/// Samples per coroutine side (alternating).
const SAMPLES: usize = 41;
/// Round trips per OS-thread sample.
const OS_ROUND_TRIPS: usize = 100_000;
/// OS-thread samples.
const OS_SAMPLES: usize = 11;

type GortCo = gort::coro::Coroutine<usize, usize, ()>;
type CoroCo = corosensei::Coroutine<usize, usize, ()>;

/// A gort coroutine on a guarded stack (the default), or on an unguarded
/// one, whose canary is checked at every switch.
fn gort_coroutine(guard: bool) -> GortCo {
    gort::coro::Builder::new()
        .stack_guard(guard)
        .build(|y: &gort::coro::Yielder<usize, usize>, mut n: usize| {
            loop {
                n = y.suspend(n + 1);
            }
        })
        .expect("create a gort coroutine")
}

fn corosensei_coroutine() -> CoroCo {
    corosensei::Coroutine::new(|y: &corosensei::Yielder<usize, usize>, mut n: usize| {
        loop {
            n = y.suspend(n + 1);
        }
    })
}

/// `rounds` gort round trips. Not inlined, so that the loop is one
/// function to find in the disassembly; the value threads through every
/// round trip, so none can be skipped.
#[inline(never)]
fn gort_rounds(co: &mut GortCo, rounds: usize, mut n: usize) -> usize {
    for _ in 0..rounds {
        n = match co.resume(n) {
            gort::coro::CoroutineResult::Yield(v) => v,
            gort::coro::CoroutineResult::Return(()) => unreachable!(),
        };
    }
    n
}

/// `rounds` corosensei round trips; the same loop as [`gort_rounds`].
#[inline(never)]
fn corosensei_rounds(co: &mut CoroCo, rounds: usize, mut n: usize) -> usize {
    for _ in 0..rounds {
        n = match co.resume(n) {
            corosensei::CoroutineResult::Yield(v) => v,
            corosensei::CoroutineResult::Return(()) => unreachable!(),
        };
    }
    n
}

/// Nanoseconds per round trip of one sample. `black_box` hides the round
/// count and the starting value from the optimiser and keeps the result
/// alive; inside the loop nothing is added.
fn sample(f: impl FnOnce(usize, usize) -> usize) -> f64 {
    ns_per(ROUND_TRIPS, || {
        black_box(f(black_box(ROUND_TRIPS), black_box(0)));
    })
}

/// Medians of the alternating gort / corosensei samples.
fn coroutine_switch() -> (f64, f64) {
    let mut g = gort_coroutine(true);
    let mut c = corosensei_coroutine();
    // Warm up: first resume (runs the entry code, faults in the stack
    // tops), caches, branch predictors and the CPU's clock.
    for _ in 0..3 {
        sample(|r, n| gort_rounds(&mut g, r, n));
        sample(|r, n| corosensei_rounds(&mut c, r, n));
    }
    let (mut gs, mut cs) = (Vec::with_capacity(SAMPLES), Vec::with_capacity(SAMPLES));
    for _ in 0..SAMPLES {
        gs.push(sample(|r, n| gort_rounds(&mut g, r, n)));
        cs.push(sample(|r, n| corosensei_rounds(&mut c, r, n)));
    }
    eprintln!("switch_roundtrip gort       ns: {}", spread(&gs));
    eprintln!("switch_roundtrip corosensei ns: {}", spread(&cs));
    (median(&mut gs), median(&mut cs))
}

fn futex_wait(word: &AtomicU32, expected: u32) {
    // SAFETY: FUTEX_WAIT reads the u32 at a valid, aligned address and
    // sleeps while it equals `expected`; a null timeout means no timeout.
    // EAGAIN (the word changed) and EINTR are fine: callers re-check.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            ptr::null::<libc::timespec>(),
        );
    }
}

fn futex_wake(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE only uses the address as a key.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1,
        );
    }
}

/// Pins the calling thread to `cpu`.
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

/// Whose turn it is in the OS-thread ping-pong.
const MAIN: u32 = 0;
const PARTNER: u32 = 1;

/// Median ns per OS-thread round trip (main → partner → main), both
/// threads on one CPU so each hand-off is a real context switch rather
/// than a cross-CPU wake-up of a thread that may be spinning in the idle
/// loop.
fn os_thread_switch() -> f64 {
    let turn = Arc::new(AtomicU32::new(MAIN));
    let warmup = OS_ROUND_TRIPS / 10;
    let total = warmup + OS_SAMPLES * OS_ROUND_TRIPS;
    let cpu = 0;
    let partner = {
        let turn = Arc::clone(&turn);
        thread::spawn(move || {
            pin_to(cpu);
            for _ in 0..total {
                while turn.load(Ordering::Acquire) != PARTNER {
                    futex_wait(&turn, MAIN);
                }
                turn.store(MAIN, Ordering::Release);
                futex_wake(&turn);
            }
        })
    };
    pin_to(cpu);
    let round_trip = || {
        turn.store(PARTNER, Ordering::Release);
        futex_wake(&turn);
        while turn.load(Ordering::Acquire) != MAIN {
            futex_wait(&turn, PARTNER);
        }
    };
    for _ in 0..warmup {
        round_trip();
    }
    let mut samples: Vec<f64> = (0..OS_SAMPLES)
        .map(|_| {
            ns_per(OS_ROUND_TRIPS, || {
                for _ in 0..OS_ROUND_TRIPS {
                    round_trip();
                }
            })
        })
        .collect();
    partner.join().expect("partner thread");
    eprintln!("switch_roundtrip os_thread  ns: {}", spread(&samples));
    median(&mut samples)
}

/// `--count SIDE N`: exactly N round trips of one side, for callgrind.
fn count(side: &str, rounds: usize) {
    let n = match side {
        "gort" => gort_rounds(&mut gort_coroutine(true), black_box(rounds), black_box(0)),
        "gort-unguarded" => {
            gort_rounds(&mut gort_coroutine(false), black_box(rounds), black_box(0))
        }
        "corosensei" => {
            corosensei_rounds(&mut corosensei_coroutine(), black_box(rounds), black_box(0))
        }
        _ => usage(),
    };
    assert_eq!(n, rounds);
}

fn usage() -> ! {
    eprintln!("usage: switch [--coroutines | --count gort|gort-unguarded|corosensei N]");
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut os_thread = true;
    match args.as_slice() {
        [] => {}
        [flag] if flag == "--coroutines" => os_thread = false,
        [flag, side, n] if flag == "--count" => {
            count(side, n.parse().unwrap_or_else(|_| usage()));
            return;
        }
        _ => usage(),
    }
    let (g, c) = coroutine_switch();
    println!(
        "compare switch_roundtrip gort={g:.2} corosensei={c:.2} ratio={:.3}",
        g / c
    );
    if !os_thread {
        return;
    }
    let os = os_thread_switch();
    println!(
        "compare switch_roundtrip gort={g:.2} os_thread={os:.2} ratio={:.3}",
        g / os
    );
}
