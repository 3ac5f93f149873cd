//! [`WaitGroup`]: Go's sync.WaitGroup.
//!
//! # State
//! `count` (an atomic) is the number of outstanding members; waiters queue
//! under the queue lock. A waiter links itself only after re-reading
//! `count` under that lock; whoever brings `count` to zero takes the lock,
//! re-reads `count`, and if it is still zero wakes every queued waiter.
//! ```text
//!   wait: count == 0 ──────────────────────────────────────────▶ return
//!         else lock; count == 0 ? return : link, unlock, park ──▶ woken: return
//!   add:  count += delta; < 0 → panic; == 0 → lock; count == 0 → wake all
//! ```
//! Either the waiter reads `count` after the decrement to zero (and does
//! not park) or the decrementer takes the lock after the waiter linked
//! itself (and wakes it): no lost wake-up. An `add` that raises `count`
//! again before the waker takes the lock keeps the waiters parked until
//! the next zero.

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::{Duration, Instant},
};

use super::sema::{Node, Slot, WaitList, Wakes, block};
use crate::{lock::Lock, sched::g::WaitReason};

struct Inner {
    count: AtomicI64,
    q: Lock<WaitList<()>>,
}

/// Waits for a collection of coroutines (or threads) to finish: Go's
/// `sync.WaitGroup`. A cheap handle: clones share one counter.
///
/// `add(n)` before starting members, `done()` as each finishes, `wait()`
/// to park until the counter is zero. Works from coroutines and plain
/// threads alike.
///
/// ```
/// use std::sync::{Arc, atomic::{AtomicUsize, Ordering}};
/// use gort::sync::WaitGroup;
///
/// gort::run(|| {
///     let wg = WaitGroup::new();
///     let hits = Arc::new(AtomicUsize::new(0));
///     for _ in 0..10 {
///         wg.add(1);
///         let (wg, hits) = (wg.clone(), hits.clone());
///         gort::go!(move || {
///             hits.fetch_add(1, Ordering::Relaxed);
///             wg.done();
///         });
///     }
///     wg.wait();
///     assert_eq!(hits.load(Ordering::Relaxed), 10);
/// });
/// ```
#[derive(Clone)]
pub struct WaitGroup {
    inner: Arc<Inner>,
}

impl WaitGroup {
    /// A wait group with a zero counter.
    pub fn new() -> WaitGroup {
        WaitGroup {
            inner: Arc::new(Inner {
                count: AtomicI64::new(0),
                q: Lock::new(WaitList::new()),
            }),
        }
    }

    /// Adds `delta` (which may be negative) to the counter; when it
    /// reaches zero, every waiter is released.
    ///
    /// As in Go, calls with a positive delta that start from zero must
    /// happen before `wait`.
    ///
    /// # Panics
    /// If the counter would go negative (`"sync: negative WaitGroup
    /// counter"`); the counter is left unchanged then.
    pub fn add(&self, delta: i64) {
        let v = self.inner.count.fetch_add(delta, Ordering::SeqCst) + delta;
        if v < 0 {
            self.inner.count.fetch_sub(delta, Ordering::SeqCst);
            panic!("sync: negative WaitGroup counter");
        }
        if v == 0 && delta != 0 {
            self.release();
        }
    }

    /// Decrements the counter by one (`add(-1)`).
    ///
    /// # Panics
    /// If the counter is already zero.
    pub fn done(&self) {
        self.add(-1);
    }

    /// The current counter (a snapshot).
    pub fn count(&self) -> i64 {
        self.inner.count.load(Ordering::SeqCst)
    }

    /// Adds one, runs `f` in a new coroutine, and calls `done` when it
    /// returns or panics (Go 1.25's `WaitGroup.Go`).
    ///
    /// # Panics
    /// Outside a gort runtime, as [`crate::spawn`].
    pub fn go<F>(&self, f: F)
    where
        F: FnOnce() + Send + 'static,
    {
        struct Done(WaitGroup);
        impl Drop for Done {
            fn drop(&mut self) {
                self.0.done();
            }
        }
        self.add(1);
        let d = Done(self.clone());
        drop(crate::spawn(move || {
            let _d = d;
            f();
        }));
    }

    /// Parks until the counter is zero.
    pub fn wait(&self) {
        self.wait_inner(None);
    }

    /// Parks until the counter is zero or `timeout` passes; true if it
    /// reached zero.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_inner(Some(Instant::now() + timeout))
    }

    fn wait_inner(&self, deadline: Option<Instant>) -> bool {
        let inner = &*self.inner;
        if inner.count.load(Ordering::SeqCst) == 0 {
            return true;
        }
        let slot = Slot::new(deadline.is_some());
        let mut node = Node::new(slot.waiter(), ());
        let np = &raw mut node;
        {
            let mut q = inner.q.lock();
            if inner.count.load(Ordering::SeqCst) == 0 {
                return true;
            }
            // SAFETY: `node` lives on this frame until `block` returns (or
            // unlinks it when unwinding) and is not moved.
            unsafe { q.push(np, false) };
        }
        // SAFETY: as above; `node` points to `slot`'s waiter.
        let woken = unsafe {
            block(
                &inner.q,
                &slot,
                np,
                deadline,
                WaitReason::WaitGroupWait,
                |q, np, _, _| {
                    q.remove_if_linked(np);
                },
            )
        };
        if !woken {
            // SAFETY: our node: linked here or already unlinked.
            unsafe { inner.q.lock().remove_if_linked(np) };
        }
        woken
    }

    #[cold]
    fn release(&self) {
        let mut wakes = Wakes::new();
        {
            let mut q = self.inner.q.lock();
            if self.inner.count.load(Ordering::SeqCst) != 0 {
                return; // raised again: the waiters wait for the next zero
            }
            q.claim_all(&mut wakes);
        }
        wakes.wake_all();
    }
}

impl Default for WaitGroup {
    fn default() -> WaitGroup {
        WaitGroup::new()
    }
}

impl fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitGroup")
            .field("count", &self.count())
            .finish()
    }
}
