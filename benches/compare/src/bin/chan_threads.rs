//! `chan_threads`: a gort channel contended by plain threads (no runtime):
//! `T` sender threads each send `PER` values, `T` receiver threads drain
//! them, on channels of capacity 0 (rendezvous) and 1024.
//!
//! More threads than cores means a lock holder is often preempted; this is
//! where the channel lock's choice shows (benches/README.md: a spin lock
//! whose unlock is a plain store halved throughput at 8 + 8 threads on
//! capacity 1024 against std's futex mutex, so the futex mutex stayed).
//!
//! Prints `chan_threads threads=<T> cap=<C> ns_per_value=<median>` per
//! configuration, the median of `--rounds R` samples (default 5).

use std::time::Instant;

use gort_compare::{elapsed_ns, median};

/// Values each sender sends.
const PER: usize = 200_000;
/// (threads per side, capacity) pairs.
const CONFIGS: [(usize, usize); 4] = [(2, 0), (8, 0), (4, 1024), (8, 1024)];

/// One sample: ns per value moved through the channel.
fn sample(threads: usize, cap: usize) -> f64 {
    let (tx, rx) = gort::chan::bounded::<u64>(cap);
    let t = Instant::now();
    let senders: Vec<_> = (0..threads)
        .map(|_| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for i in 0..PER {
                    tx.send(i as u64).expect("receivers are alive");
                }
            })
        })
        .collect();
    drop(tx);
    let receivers: Vec<_> = (0..threads)
        .map(|_| {
            let rx = rx.clone();
            std::thread::spawn(move || rx.iter().count())
        })
        .collect();
    senders
        .into_iter()
        .for_each(|h| h.join().expect("a sender panicked"));
    let total: usize = receivers
        .into_iter()
        .map(|h| h.join().expect("a receiver panicked"))
        .sum();
    assert_eq!(total, threads * PER, "values lost or duplicated");
    elapsed_ns(t.elapsed()) / total as f64
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rounds = match args.as_slice() {
        [] => 5,
        [flag, r] if flag == "--rounds" => r.parse().expect("--rounds takes a number"),
        _ => {
            eprintln!("usage: chan_threads [--rounds R]");
            std::process::exit(2);
        }
    };
    for (threads, cap) in CONFIGS {
        let mut ns: Vec<f64> = (0..rounds).map(|_| sample(threads, cap)).collect();
        println!(
            "chan_threads threads={threads} cap={cap} ns_per_value={:.0}",
            median(&mut ns)
        );
    }
}
