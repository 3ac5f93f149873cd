//! [`Cond`]: Go's sync.Cond, over gort's [`Mutex`].
//!
//! # Protocol
//! `wait` links its node in the condition's queue *before* unlocking the
//! mutex, so a `notify` made after the unlock (or by the unlocker itself)
//! finds it: no lost wake-up. Notifying claims and unlinks the first
//! waiter (`notify_one`) or all of them (`notify_all`) under the queue
//! lock and wakes them after it; a woken waiter re-locks the mutex before
//! `wait` returns. A timed-out waiter unlinks itself. A coroutine unwound
//! while waiting (runtime teardown) unlinks itself, or passes on a
//! notification it had received.

use std::{
    fmt,
    time::{Duration, Instant},
};

use super::{
    MutexGuard,
    sema::{Node, Slot, WaitList, Wakes, block},
};
use crate::{lock::Lock, sched::g::WaitReason};

/// A condition variable (Go's `sync.Cond`): coroutines or threads wait
/// for a condition on data protected by a [`super::Mutex`], and are woken
/// by [`notify_one`](Cond::notify_one) / [`notify_all`](Cond::notify_all)
/// (Go's `Signal` / `Broadcast`).
///
/// Waiters are woken in FIFO order. As with every condition variable,
/// re-check the condition in a loop ([`wait_while`](Cond::wait_while)
/// does it).
///
/// ```
/// use std::sync::Arc;
/// use gort::sync::{Cond, Mutex};
///
/// gort::run(|| {
///     let pair = Arc::new((Mutex::new(false), Cond::new()));
///     let p = pair.clone();
///     gort::go!(move || {
///         *p.0.lock() = true;
///         p.1.notify_one();
///     });
///     let (m, c) = &*pair;
///     let ready = c.wait_while(m.lock(), |ready| !*ready);
///     assert!(*ready);
/// });
/// ```
pub struct Cond {
    q: Lock<WaitList<()>>,
}

impl Cond {
    /// A condition variable with no waiters.
    pub const fn new() -> Cond {
        Cond {
            q: Lock::new(WaitList::new()),
        }
    }

    /// Unlocks `guard`'s mutex, parks until notified, re-locks the mutex
    /// and returns its guard.
    pub fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.wait_inner(guard, None).0
    }

    /// Waits (as [`wait`](Self::wait)) while `condition` holds on the
    /// protected data.
    pub fn wait_while<'a, T: ?Sized, F>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: F,
    ) -> MutexGuard<'a, T>
    where
        F: FnMut(&mut T) -> bool,
    {
        while condition(&mut *guard) {
            guard = self.wait(guard);
        }
        guard
    }

    /// As [`wait`](Self::wait), for at most `timeout`; the bool is true if
    /// it timed out (the mutex is re-locked either way).
    pub fn wait_timeout<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: Duration,
    ) -> (MutexGuard<'a, T>, bool) {
        self.wait_inner(guard, Some(Instant::now() + timeout))
    }

    fn wait_inner<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Option<Instant>,
    ) -> (MutexGuard<'a, T>, bool) {
        let mutex = guard.mutex();
        let slot = Slot::new(deadline.is_some());
        let mut node = Node::new(slot.waiter(), ());
        let np = &raw mut node;
        // SAFETY: `node` lives on this frame until `block` returns (or
        // unlinks it when unwinding) and is not moved.
        unsafe { self.q.lock().push(np, false) };
        drop(guard);
        // SAFETY: as above; `node` points to `slot`'s waiter.
        let woken = unsafe {
            block(
                &self.q,
                &slot,
                np,
                deadline,
                WaitReason::CondWait,
                |q, np, granted, wakes| {
                    if q.remove_if_linked(np).is_none() && granted {
                        q.claim_front(wakes); // pass the notification on
                    }
                },
            )
        };
        if !woken {
            // SAFETY: our node: linked here or already unlinked.
            unsafe { self.q.lock().remove_if_linked(np) };
        }
        (mutex.lock(), !woken)
    }

    /// Wakes the longest-waiting waiter, if any (Go's `Signal`).
    pub fn notify_one(&self) {
        let mut wakes = Wakes::new();
        self.q.lock().claim_front(&mut wakes);
        wakes.wake_all();
    }

    /// Wakes every waiter (Go's `Broadcast`).
    pub fn notify_all(&self) {
        let mut wakes = Wakes::new();
        self.q.lock().claim_all(&mut wakes);
        wakes.wake_all();
    }
}

impl Default for Cond {
    fn default() -> Cond {
        Cond::new()
    }
}

impl fmt::Debug for Cond {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cond")
            .field("waiters", &self.q.lock().len())
            .finish()
    }
}
