//! Sysmon trims the stack pool: after a burst of coroutines ends, the
//! stacks pooled beyond `POOL_KEEP` are released once the pool has gone
//! unused for a second. Alone in its binary: the pool is process-wide.

mod support;

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use gort::stack::{self, POOL_KEEP};
use support::{rt, with_timeout};

#[test]
fn an_unused_pool_is_trimmed_back() {
    with_timeout(60, || {
        let r = rt(2);
        let n = POOL_KEEP + 2_000;
        r.block_on(move || {
            // n coroutines parked at once, each on its own stack.
            let (tx, rx) = gort::chan::bounded::<()>(0);
            let parked = Arc::new(AtomicUsize::new(0));
            let hs: Vec<_> = (0..n)
                .map(|_| {
                    let (rx, parked) = (rx.clone(), parked.clone());
                    gort::spawn(move || {
                        parked.fetch_add(1, Ordering::SeqCst);
                        let _ = rx.recv();
                    })
                })
                .collect();
            while parked.load(Ordering::SeqCst) < n {
                gort::yield_now();
            }
            drop(tx); // closing releases them all
            for h in hs {
                h.join().unwrap();
            }
        });
        // Their stacks went to the Ps' caches and the pool.
        let pooled = stack::stats().pooled;
        assert!(
            pooled > POOL_KEEP,
            "the burst filled the pool: {pooled} pooled"
        );
        // Within a few seconds sysmon gives back what lies beyond POOL_KEEP.
        let start = std::time::Instant::now();
        while stack::stats().pooled > POOL_KEEP {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(20),
                "the pool still holds {} stacks",
                stack::stats().pooled
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert_eq!(stack::stats().pooled, POOL_KEEP);
        drop(r);
    });
}
