//! [`Mutex`]: Go's sync.Mutex (src/sync/mutex.go) with a Rust guard.
//!
//! # State word
//! ```text
//!   bit 0  LOCKED    someone holds the lock
//!   bit 1  WOKEN     a waiter has been woken (or a spinner is about to
//!                    take the lock): unlock need not wake another
//!   bit 2  STARVING  starvation mode: unlock hands the lock to the first
//!                    waiter; newcomers neither take it nor spin, they queue
//!   bits 3..         number of waiters (parked on `sema`, or on their way)
//! ```
//! **Normal mode.** `lock` is one CAS `0 → LOCKED`. Otherwise the caller
//! may spin briefly (only on a multicore machine with more than one P, at
//! most 4 rounds of 30 pauses, as Go's `sync_runtime_canSpin`), setting
//! WOKEN so the unlocker does not wake a waiter it would compete with;
//! then it adds itself to the waiter count and parks on the semaphore.
//! `unlock` clears LOCKED; if there are waiters and nobody is WOKEN, it
//! takes one off the count, sets WOKEN and releases the semaphore. The
//! woken waiter competes with newcomers (which are running already, so
//! they usually win: good for throughput) and, if it loses, re-queues at
//! the *front* of the queue.
//!
//! **Starvation mode.** A waiter that, once woken, has waited more than
//! 1 ms (`STARVATION_NS`) sets STARVING on its next attempt. From then on
//! `unlock` clears LOCKED and releases the semaphore with *handoff*: the
//! unit goes straight to the first waiter, which owns the lock as soon as
//! it runs (it sets LOCKED and drops itself from the count); the unlocker
//! yields to it. The mode ends when the owner is the last waiter or has
//! waited less than 1 ms.
//! ```text
//!            waiter waited > 1 ms
//!   Normal ─────────────────────────▶ Starving
//!     ▲                                   │ handed-off waiter is the last one,
//!     └───────────────────────────────────┘ or waited < 1 ms
//! ```
//! So no waiter waits much more than 1 ms behind newcomers.
//!
//! **Teardown.** A coroutine unwound while parked here (its runtime was
//! dropped) gives back what it was granted through the semaphore's guard
//! (see `sema`): a handed-off unit goes to the next waiter, a normal-mode
//! wake-up is passed on. Its place in the waiter count stays (Go's
//! counters tolerate that: it only costs one spare wake-up later), so the
//! lock stays usable by the threads and coroutines that remain.

use std::{
    cell::UnsafeCell,
    fmt,
    marker::PhantomData,
    ops::{Deref, DerefMut},
    sync::atomic::{AtomicU32, AtomicUsize, Ordering},
};

use super::sema::Sema;
use crate::sched::g::WaitReason;

const LOCKED: u32 = 1;
const WOKEN: u32 = 2;
const STARVING: u32 = 4;
const WAITER_SHIFT: u32 = 3;
const WAITER: u32 = 1 << WAITER_SHIFT;

/// Wait after which a waiter switches the mutex to starvation mode.
const STARVATION_NS: u128 = 1_000_000;
/// Spin rounds before parking (Go's active_spin) and pauses per round.
const SPIN_ROUNDS: u32 = 4;
const SPIN_PAUSES: u32 = 30;

/// A mutual exclusion lock that parks the calling coroutine (not its
/// worker thread) while it waits: Go's `sync.Mutex`, with its normal and
/// starvation modes, holding the data it protects like `std::sync::Mutex`.
///
/// Works from coroutines and plain threads alike, mixed on one mutex (a
/// thread blocks; a coroutine parks and its worker thread runs others).
/// No waiter waits more than about 1 ms behind newcomers: after that the
/// lock is handed over in FIFO order (starvation mode; see the source).
///
/// There is no poisoning: a panic while holding the lock unlocks it (like
/// `parking_lot`), so the data may be left half-updated.
///
/// ```
/// use std::sync::Arc;
/// use gort::sync::Mutex;
///
/// let total = gort::run(|| {
///     let m = Arc::new(Mutex::new(0u64));
///     let hs: Vec<_> = (0..100)
///         .map(|_| {
///             let m = m.clone();
///             gort::go!(move || {
///                 for _ in 0..100 {
///                     *m.lock() += 1;
///                 }
///             })
///         })
///         .collect();
///     for h in hs {
///         h.join().unwrap();
///     }
///     let v = *m.lock();
///     v
/// });
/// assert_eq!(total, 10_000);
/// ```
pub struct Mutex<T: ?Sized> {
    state: AtomicU32,
    sema: Sema,
    data: UnsafeCell<T>,
}

// SAFETY: the lock hands `&mut T` to one holder at a time, possibly on
// another thread: T must be Send.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}
// SAFETY: as above; sharing the mutex shares no `&T` without the lock.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

/// Holds a [`Mutex`] locked; unlocks it when dropped. Gives `&T` / `&mut T`.
///
/// Unlike std's guard it may be sent to (and dropped on) another thread,
/// as a coroutine holding it may resume on another worker thread, and as
/// Go lets another goroutine unlock a mutex.
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct MutexGuard<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
    // Not Send/Sync by default (raw pointer); see the impls below.
    _marker: PhantomData<*const ()>,
}

// SAFETY: the guard gives `&mut T` on whichever thread holds it; the
// mutex itself is not tied to a thread.
unsafe impl<T: ?Sized + Send> Send for MutexGuard<'_, T> {}
// SAFETY: a shared guard gives `&T` only.
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}

impl<T> Mutex<T> {
    /// A new, unlocked mutex holding `value`.
    pub const fn new(value: T) -> Mutex<T> {
        Mutex {
            state: AtomicU32::new(0),
            sema: Sema::new(0),
            data: UnsafeCell::new(value),
        }
    }

    /// Consumes the mutex, returning its data.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks the mutex, parking the coroutine (or blocking the thread)
    /// until it is available.
    ///
    /// Locking a mutex the caller already holds deadlocks it.
    #[inline]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        if self
            .state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_slow();
        }
        MutexGuard {
            mutex: self,
            _marker: PhantomData,
        }
    }

    /// Locks the mutex if it is free (and not being handed to a waiter);
    /// never parks.
    ///
    /// ```
    /// let m = gort::sync::Mutex::new(1);
    /// let g = m.lock();
    /// assert!(m.try_lock().is_none());
    /// drop(g);
    /// assert_eq!(*m.try_lock().unwrap(), 1);
    /// ```
    #[inline]
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        let mut old = self.state.load(Ordering::Relaxed);
        loop {
            if old & (LOCKED | STARVING) != 0 {
                return None;
            }
            match self.state.compare_exchange_weak(
                old,
                old | LOCKED,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    return Some(MutexGuard {
                        mutex: self,
                        _marker: PhantomData,
                    });
                }
                Err(now) => old = now,
            }
        }
    }

    /// Whether someone holds the lock right now (a hint: it may change at
    /// once).
    pub fn is_locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) & LOCKED != 0
    }

    /// The data, through a unique borrow: no locking needed.
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    /// Go's lockSlow; see the module comment.
    #[cold]
    fn lock_slow(&self) {
        let mut wait_start: Option<std::time::Instant> = None;
        let mut starving = false;
        let mut awoke = false;
        let mut iter = 0;
        let mut old = self.state.load(Ordering::Relaxed);
        loop {
            // Spin only in normal mode while the lock is held: in
            // starvation mode it goes to the waiters anyway.
            if old & (LOCKED | STARVING) == LOCKED && can_spin(iter) {
                // Set WOKEN so unlock does not wake a waiter while we spin.
                if !awoke
                    && old & WOKEN == 0
                    && old >> WAITER_SHIFT != 0
                    && self
                        .state
                        .compare_exchange(old, old | WOKEN, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                {
                    awoke = true;
                }
                for _ in 0..SPIN_PAUSES {
                    std::hint::spin_loop();
                }
                iter += 1;
                old = self.state.load(Ordering::Relaxed);
                continue;
            }
            let mut new = old;
            // Do not take a starving mutex: it belongs to the waiters.
            if old & STARVING == 0 {
                new |= LOCKED;
            }
            if old & (LOCKED | STARVING) != 0 {
                new += WAITER;
            }
            // Switch to starvation mode, unless the lock is free (then
            // unlock expects waiters in starvation mode, and there may be
            // none).
            if starving && old & LOCKED != 0 {
                new |= STARVING;
            }
            if awoke {
                // We were woken (or spun with WOKEN set): clear it, it is
                // ours. (Go throws if it is not set; a coroutine unwound at
                // teardown may leave it cleared or set, so be lenient.)
                new &= !WOKEN;
            }
            if self
                .state
                .compare_exchange_weak(old, new, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                old = self.state.load(Ordering::Relaxed);
                continue;
            }
            if old & (LOCKED | STARVING) == 0 {
                return; // locked it with the CAS
            }
            // Queued: a waiter that has waited before goes to the front.
            let lifo = wait_start.is_some();
            let start = *wait_start.get_or_insert_with(std::time::Instant::now);
            self.sema.acquire(lifo, WaitReason::MutexLock);
            starving = starving || start.elapsed().as_nanos() > STARVATION_NS;
            old = self.state.load(Ordering::Relaxed);
            if old & STARVING != 0 {
                // Handed off to us: the lock is unlocked and ours; take it
                // and leave the waiter count.
                let mut delta = LOCKED.wrapping_sub(WAITER);
                if !starving || old >> WAITER_SHIFT == 1 {
                    // Exit starvation mode: do it here, before the last
                    // waiter is gone (Go's comment: starvation mode is so
                    // inefficient that two goroutines can go lock-step
                    // forever once it is on).
                    delta = delta.wrapping_sub(STARVING);
                }
                self.state.fetch_add(delta, Ordering::Acquire);
                return;
            }
            awoke = true;
            iter = 0;
        }
    }

    /// Go's Unlock.
    #[inline]
    fn unlock(&self) {
        let new = self.state.fetch_sub(LOCKED, Ordering::Release) - LOCKED;
        if new != 0 {
            self.unlock_slow(new);
        }
    }

    #[cold]
    fn unlock_slow(&self, new: u32) {
        if new & STARVING == 0 {
            let mut old = new;
            loop {
                // Nobody to wake, or someone is already woken / spinning /
                // has taken the lock: nothing to do.
                if old >> WAITER_SHIFT == 0 || old & (LOCKED | WOKEN | STARVING) != 0 {
                    return;
                }
                let new = (old - WAITER) | WOKEN;
                match self.state.compare_exchange_weak(
                    old,
                    new,
                    Ordering::Release,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        self.sema.release(false);
                        return;
                    }
                    Err(now) => old = now,
                }
            }
        } else {
            // Starvation mode: hand the lock to the first waiter. LOCKED
            // stays clear until it takes it, but STARVING keeps newcomers
            // off.
            self.sema.release(true);
        }
    }
}

/// Go's sync_runtime_canSpin, simplified: a few rounds, only on a
/// multicore machine, and for a coroutine only with more than one P (with
/// one P the holder cannot run while we spin).
fn can_spin(iter: u32) -> bool {
    static NCPU: AtomicUsize = AtomicUsize::new(0);
    if iter >= SPIN_ROUNDS {
        return false;
    }
    let mut ncpu = NCPU.load(Ordering::Relaxed);
    if ncpu == 0 {
        ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
        NCPU.store(ncpu, Ordering::Relaxed);
    }
    if ncpu <= 1 {
        return false;
    }
    match crate::sched::current() {
        Some((_, sched)) => sched.ps.len() > 1,
        None => true,
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.mutex.unlock();
    }
}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// The mutex this guard holds (for `Cond`).
    pub(crate) fn mutex(&self) -> &'a Mutex<T> {
        self.mutex
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock: no one else accesses the data.
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the lock: no one else accesses the data.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Some(g) => d.field("data", &&*g),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish_non_exhaustive()
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Mutex<T> {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(value: T) -> Mutex<T> {
        Mutex::new(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_only() {
        let m = std::sync::Arc::new(Mutex::new(0u32));
        let ts: Vec<_> = (0..4)
            .map(|_| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        *m.lock() += 1;
                    }
                })
            })
            .collect();
        for t in ts {
            t.join().unwrap();
        }
        assert_eq!(*m.lock(), 40_000);
        assert_eq!(m.state.load(Ordering::Relaxed), 0);
    }
}
