//! 1,000 producers and 1,000 consumers on 2 Ps pass 10 million values
//! through one channel; every value is received exactly once. Then the
//! same with plain threads among the producers and consumers.

mod support;

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use gort::chan;
use support::with_timeout;

/// One bit per value; receiving a value twice fails at once.
struct Seen(Vec<AtomicU64>);

impl Seen {
    fn new(n: u64) -> Seen {
        Seen((0..n.div_ceil(64)).map(|_| AtomicU64::new(0)).collect())
    }
    fn mark(&self, v: u64) {
        let bit = 1u64 << (v % 64);
        let old = self.0[(v / 64) as usize].fetch_or(bit, Ordering::Relaxed);
        assert_eq!(old & bit, 0, "value {v} received twice");
    }
    fn assert_all(&self, n: u64) {
        for (i, w) in self.0.iter().enumerate() {
            let want = if (i as u64 + 1) * 64 <= n {
                u64::MAX
            } else {
                (1u64 << (n % 64)) - 1
            };
            assert_eq!(
                w.load(Ordering::Relaxed),
                want,
                "word {i}: a value was lost"
            );
        }
    }
}

/// `producers` × `per` values through a channel of capacity `cap` to
/// `consumers`; every `thread_every`-th producer and consumer is a plain
/// thread (0: none).
fn pass(producers: u64, consumers: u64, per: u64, cap: usize, thread_every: u64) {
    let r = gort::Runtime::builder()
        .procs(2)
        .stack_size(64 * 1024)
        .build()
        .unwrap();
    let n = producers * per;
    let seen = Arc::new(Seen::new(n));
    let (tx, rx) = chan::bounded::<u64>(cap);
    let (done_tx, done_rx) = chan::unbounded::<u64>();
    let is_thread = |i: u64| thread_every != 0 && i % thread_every == thread_every - 1;
    let mut threads = Vec::new();
    for p in 0..producers {
        let tx = tx.clone();
        let produce = move || {
            for i in 0..per {
                tx.send(p * per + i).unwrap();
            }
        };
        if is_thread(p) {
            threads.push(std::thread::spawn(produce));
        } else {
            r.spawn(produce);
        }
    }
    drop(tx);
    for c in 0..consumers {
        let (rx, done, seen) = (rx.clone(), done_tx.clone(), seen.clone());
        let consume = move || {
            let mut count = 0;
            for v in &rx {
                seen.mark(v);
                count += 1;
            }
            done.send(count).unwrap();
        };
        if is_thread(c) {
            threads.push(std::thread::spawn(consume));
        } else {
            r.spawn(consume);
        }
    }
    drop((rx, done_tx));
    let total: u64 = done_rx.iter().sum();
    assert_eq!(total, n);
    seen.assert_all(n);
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn a_thousand_producers_and_consumers_pass_ten_million_values() {
    with_timeout(600, || pass(1000, 1000, 10_000, 64, 0));
}

#[test]
fn the_same_with_plain_threads_mixed_in() {
    with_timeout(600, || pass(1000, 1000, 10_000, 16, 100));
}

#[test]
fn unbuffered_many_to_many() {
    with_timeout(600, || pass(200, 200, 1_000, 0, 50));
}
