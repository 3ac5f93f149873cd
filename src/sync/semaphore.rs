//! [`Semaphore`]: a weighted semaphore (golang.org/x/sync/semaphore).
//!
//! # State
//! Under one lock: `cur`, the weight held, and a FIFO of waiters with the
//! weight each asks for. `acquire(n)` takes `n` at once if it fits *and*
//! nobody waits (FIFO: a small request never overtakes a queued large
//! one); otherwise it queues and parks. `release(n)` gives `n` back and
//! then, from the front of the queue, grants every waiter that fits until
//! the first that does not (x/sync's notifyWaiters): a granted waiter is
//! woken owning its weight. A waiter that times out unlinks itself; if it
//! was at the front and there is room, the waiters behind it are granted
//! (they may fit where it did not). A coroutine unwound while waiting
//! (runtime teardown) does the same, or gives back a weight it had been
//! granted.

use std::{
    fmt,
    time::{Duration, Instant},
};

use super::sema::{Node, Slot, WaitList, Wakes, block};
use crate::{lock::Lock, sched::g::WaitReason};

struct State {
    cur: usize,
    waiters: WaitList<usize>,
}

/// A weighted semaphore (golang.org/x/sync/semaphore): `size` units,
/// acquired and released in any amounts, granted in FIFO order. Waiters
/// park (coroutines) or block (threads).
///
/// ```
/// use std::sync::Arc;
/// use gort::sync::Semaphore;
///
/// gort::run(|| {
///     let sem = Arc::new(Semaphore::new(3));
///     sem.acquire(2);
///     assert!(!sem.try_acquire(2)); // only 1 left
///     let s = sem.clone();
///     let h = gort::go!(move || {
///         s.acquire(2); // parks until the release below
///         s.release(2);
///     });
///     sem.release(2);
///     h.join().unwrap();
///     assert!(sem.try_acquire(3));
/// });
/// ```
pub struct Semaphore {
    size: usize,
    state: Lock<State>,
}

impl Semaphore {
    /// A semaphore with `size` units, all available.
    pub const fn new(size: usize) -> Semaphore {
        Semaphore {
            size,
            state: Lock::new(State {
                cur: 0,
                waiters: WaitList::new(),
            }),
        }
    }

    /// The number of units.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Units currently available (a snapshot).
    pub fn available(&self) -> usize {
        self.size - self.state.lock().cur
    }

    /// Acquires `n` units, parking until they are granted (in FIFO order
    /// with the other waiters).
    ///
    /// # Panics
    /// If `n` exceeds the size: it could never be granted.
    pub fn acquire(&self, n: usize) {
        assert!(
            n <= self.size,
            "gort::sync::Semaphore: acquire({n}) exceeds the size {} and would block forever",
            self.size
        );
        self.acquire_inner(n, None);
    }

    /// Acquires `n` units, waiting at most `timeout`; false if they were
    /// not granted in time (then nothing is held). A request for more than
    /// the size fails at once.
    pub fn acquire_timeout(&self, n: usize, timeout: Duration) -> bool {
        n <= self.size && self.acquire_inner(n, Some(Instant::now() + timeout))
    }

    /// Acquires `n` units if they are available and nobody waits; never
    /// parks.
    pub fn try_acquire(&self, n: usize) -> bool {
        let mut st = self.state.lock();
        if self.size - st.cur >= n && st.waiters.is_empty() {
            st.cur += n;
            true
        } else {
            false
        }
    }

    /// Releases `n` units and grants them to waiters.
    ///
    /// # Panics
    /// If more is released than is held (`"semaphore: released more than
    /// held"`).
    pub fn release(&self, n: usize) {
        let mut wakes = Wakes::new();
        {
            let mut st = self.state.lock();
            if st.cur < n {
                drop(st);
                panic!("semaphore: released more than held");
            }
            st.cur -= n;
            self.notify_waiters(&mut st, &mut wakes);
        }
        wakes.wake_all();
    }

    fn acquire_inner(&self, n: usize, deadline: Option<Instant>) -> bool {
        let slot;
        let mut node;
        let np;
        {
            let mut st = self.state.lock();
            if self.size - st.cur >= n && st.waiters.is_empty() {
                st.cur += n;
                return true;
            }
            if deadline.is_some_and(|d| d <= Instant::now()) {
                return false;
            }
            slot = Slot::new(deadline.is_some());
            node = Node::new(slot.waiter(), n);
            np = &raw mut node;
            // SAFETY: `node` lives on this frame until `block` returns (or
            // unlinks it when unwinding) and is not moved.
            unsafe { st.waiters.push(np, false) };
        }
        // SAFETY: as above; `node` points to `slot`'s waiter.
        let granted = unsafe {
            block(
                &self.state,
                &slot,
                np,
                deadline,
                WaitReason::Semaphore,
                |st, np, granted, wakes| {
                    if let Some(front) = st.waiters.remove_if_linked(np) {
                        if front && self.size > st.cur {
                            self.notify_waiters(st, wakes);
                        }
                    } else if granted {
                        st.cur -= n;
                        self.notify_waiters(st, wakes);
                    }
                },
            )
        };
        if !granted {
            let mut wakes = Wakes::new();
            {
                let mut st = self.state.lock();
                // SAFETY: our node: linked here or already unlinked.
                let front = unsafe { st.waiters.remove_if_linked(np) };
                if front == Some(true) && self.size > st.cur {
                    self.notify_waiters(&mut st, &mut wakes);
                }
            }
            wakes.wake_all();
        }
        granted
    }

    /// Grants waiters from the front while they fit (under the lock).
    fn notify_waiters(&self, st: &mut State, wakes: &mut Wakes) {
        loop {
            let n = st.waiters.front();
            if n.is_null() {
                break;
            }
            // SAFETY: a linked node is valid (its frame waits).
            let want = unsafe { (*n).data };
            if self.size - st.cur < want {
                // Not enough for the next waiter: FIFO, so stop (x/sync:
                // "Do not let smaller waiters ... starve a larger one").
                break;
            }
            // SAFETY: `n` is linked in the list.
            if unsafe { st.waiters.claim(n, wakes) } {
                st.cur += want;
            }
        }
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.state.lock();
        f.debug_struct("Semaphore")
            .field("size", &self.size)
            .field("cur", &st.cur)
            .field("waiters", &st.waiters.len())
            .finish()
    }
}
