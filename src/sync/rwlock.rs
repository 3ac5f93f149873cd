//! [`RwLock`]: a reader-writer lock with Go's `sync.RWMutex` semantics
//! (readers share; a waiting writer keeps new readers out) that parks
//! coroutines.
//!
//! # State word and queue
//! ```text
//!   bit 0   WRITER   a writer holds the lock
//!   bit 1   QUEUED   the wait queue is not empty: fast paths are closed,
//!                    every acquisition and release goes through the queue
//!                    lock
//!   bits 2.. READERS number of readers holding the lock
//! ```
//! Fast paths (no queue lock): `read` CASes `READERS+1` while neither
//! WRITER nor QUEUED is set; `write` CASes `0 → WRITER`; a reader's unlock
//! subtracts one and is done unless that leaves exactly `QUEUED` (last
//! reader out, someone waiting); a writer's unlock CASes `WRITER → 0`.
//!
//! Slow paths run under the queue lock, which also owns QUEUED (set and
//! cleared only there). A caller that cannot take the lock sets QUEUED
//! (closing the fast paths), re-checks, and links a node saying whether it
//! reads or writes; it parks with no lock held. Whoever releases while
//! QUEUED is set runs `grant` under the queue lock:
//! ```text
//!   first waiter is a writer: granted (WRITER set for it) if no writer and
//!                             no reader holds the lock; then stop
//!   first waiter is a reader: granted (READERS+1 for it) unless a writer
//!                             holds the lock; continue with the next
//!   queue empty: clear QUEUED
//! ```
//! A waiter is woken already holding what it asked for (direct hand-off),
//! so nobody can slip in between. A reader that arrives while a writer
//! waits queues behind it (writer preference: Go's "a blocked Lock call
//! excludes new readers"); the readers queued behind a writer all enter
//! together when it leaves, up to the next writer in line.
//!
//! A coroutine unwound while parked here (runtime teardown) unlinks its
//! node, or releases what it was granted, and re-runs `grant`: no other
//! waiter is stranded.

use std::{
    cell::UnsafeCell,
    fmt,
    marker::PhantomData,
    ops::{Deref, DerefMut},
    sync::atomic::{AtomicUsize, Ordering},
};

use super::sema::{Node, Slot, WaitList, Wakes, block};
use crate::{lock::Lock, sched::g::WaitReason};

const WRITER: usize = 1;
const QUEUED: usize = 2;
const READER: usize = 4;

/// What a queued node waits for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
}

/// A reader-writer lock that parks coroutines, with Go's `sync.RWMutex`
/// semantics: any number of readers at once, or one writer; once a writer
/// waits, new readers wait behind it (so writers are not starved).
///
/// Usable from coroutines and plain threads, mixed. No poisoning: a panic
/// while holding a guard releases it.
///
/// ```
/// use std::sync::Arc;
/// use gort::sync::RwLock;
///
/// gort::run(|| {
///     let lock = Arc::new(RwLock::new(vec![1, 2, 3]));
///     let l = lock.clone();
///     gort::go!(move || l.write().push(4)).join().unwrap();
///     let r1 = lock.read();
///     let r2 = lock.read(); // readers share the lock
///     assert_eq!(r1.len() + r2.len(), 8);
/// });
/// ```
pub struct RwLock<T: ?Sized> {
    state: AtomicUsize,
    q: Lock<WaitList<Kind>>,
    data: UnsafeCell<T>,
}

// SAFETY: a writer gets `&mut T` (on any thread): T: Send.
unsafe impl<T: ?Sized + Send> Send for RwLock<T> {}
// SAFETY: readers on several threads share `&T` (T: Sync); a writer gets
// `&mut T` (T: Send).
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}

/// Shared access to an [`RwLock`]'s data; released when dropped.
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    _marker: PhantomData<*const ()>,
}

/// Exclusive access to an [`RwLock`]'s data; released when dropped.
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    _marker: PhantomData<*const ()>,
}

// SAFETY: a read guard gives `&T` wherever it goes (T: Sync).
unsafe impl<T: ?Sized + Sync> Send for RwLockReadGuard<'_, T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Sync> Sync for RwLockReadGuard<'_, T> {}
// SAFETY: a write guard gives `&mut T` on the thread that holds it.
unsafe impl<T: ?Sized + Send + Sync> Send for RwLockWriteGuard<'_, T> {}
// SAFETY: a shared write guard gives `&T` only.
unsafe impl<T: ?Sized + Sync> Sync for RwLockWriteGuard<'_, T> {}

impl<T> RwLock<T> {
    /// A new, unlocked lock holding `value`.
    pub const fn new(value: T) -> RwLock<T> {
        RwLock {
            state: AtomicUsize::new(0),
            q: Lock::new(WaitList::new()),
            data: UnsafeCell::new(value),
        }
    }

    /// Consumes the lock, returning its data.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Takes the lock for reading, parking while a writer holds it or
    /// waits for it.
    ///
    /// Taking a read lock again while holding one can deadlock if a writer
    /// arrives in between (as in Go).
    #[inline]
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        if !self.try_read_fast() {
            self.lock_slow(Kind::Read);
        }
        RwLockReadGuard {
            lock: self,
            _marker: PhantomData,
        }
    }

    /// Takes the lock for reading if no writer holds it or waits for it.
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        // `then`, not `then_some`: a guard built eagerly would unlock on drop.
        self.try_read_fast().then(|| RwLockReadGuard {
            lock: self,
            _marker: PhantomData,
        })
    }

    /// Takes the lock for writing, parking until no reader or writer holds
    /// it.
    #[inline]
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        if self
            .state
            .compare_exchange(0, WRITER, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_slow(Kind::Write);
        }
        RwLockWriteGuard {
            lock: self,
            _marker: PhantomData,
        }
    }

    /// Takes the lock for writing if it is free and nobody waits.
    ///
    /// ```
    /// let l = gort::sync::RwLock::new(0);
    /// let r = l.read();
    /// assert!(l.try_write().is_none());
    /// drop(r);
    /// *l.try_write().unwrap() += 1;
    /// assert_eq!(*l.read(), 1);
    /// ```
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        self.state
            .compare_exchange(0, WRITER, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
            .then(|| RwLockWriteGuard {
                lock: self,
                _marker: PhantomData,
            })
    }

    /// The data, through a unique borrow: no locking needed.
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    #[inline]
    fn try_read_fast(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & (WRITER | QUEUED) != 0 {
                return false;
            }
            match self.state.compare_exchange_weak(
                s,
                s + READER,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
    }

    /// Queues (or takes the lock, if it became free) under the queue lock;
    /// see the module comment.
    #[cold]
    fn lock_slow(&self, kind: Kind) {
        let slot = Slot::new(false);
        let mut node = Node::new(slot.waiter(), kind);
        let np = &raw mut node;
        {
            let mut q = self.q.lock();
            // Close the fast paths; from here READERS can only go down and
            // WRITER only be cleared, until we release the queue lock.
            let s = self.state.fetch_or(QUEUED, Ordering::Acquire) | QUEUED;
            let free = match kind {
                Kind::Read => s & WRITER == 0,
                Kind::Write => s & WRITER == 0 && s < READER,
            };
            if free && q.is_empty() {
                let add = if kind == Kind::Read { READER } else { WRITER };
                // QUEUED goes again (the queue is empty): one atomic step.
                self.state
                    .fetch_add(add.wrapping_sub(QUEUED), Ordering::Acquire);
                return;
            }
            // SAFETY: `node` lives on this frame until `block` returns (or
            // unlinks it when unwinding) and is not moved.
            unsafe { q.push(np, false) };
        }
        let reason = match kind {
            Kind::Read => WaitReason::RwLockRead,
            Kind::Write => WaitReason::RwLockWrite,
        };
        // SAFETY: as above; `node` points to `slot`'s waiter.
        unsafe {
            block(&self.q, &slot, np, None, reason, |q, np, granted, wakes| {
                if q.remove_if_linked(np).is_none() && granted {
                    // We hold what we were granted: give it back.
                    match kind {
                        Kind::Read => self.state.fetch_sub(READER, Ordering::Release),
                        Kind::Write => self.state.fetch_and(!WRITER, Ordering::Release),
                    };
                }
                self.grant(q, wakes);
            });
        }
        // Woken: the waker granted us the lock (WRITER set, or READERS
        // counted for us) before waking us; the wake hand-over orders the
        // previous holder's writes before our reads.
    }

    /// Grants the lock to waiters at the front of the queue (under the
    /// queue lock); see the module comment.
    fn grant(&self, q: &mut WaitList<Kind>, wakes: &mut Wakes) {
        loop {
            let n = q.front();
            if n.is_null() {
                break;
            }
            let s = self.state.load(Ordering::Acquire);
            // SAFETY: a linked node is valid (its frame waits).
            let kind = unsafe { (*n).data };
            let add = match kind {
                Kind::Write if s & WRITER == 0 && s < READER => WRITER,
                Kind::Read if s & WRITER == 0 => READER,
                _ => break,
            };
            // Claim first: a node that cannot be claimed (timed out) gets
            // nothing.
            // SAFETY: `n` is linked in `q`.
            if unsafe { q.claim(n, wakes) } {
                self.state.fetch_add(add, Ordering::AcqRel);
                if kind == Kind::Write {
                    break;
                }
            }
        }
        if q.is_empty() {
            self.state.fetch_and(!QUEUED, Ordering::Release);
        }
    }

    /// Releases a read lock.
    #[inline]
    fn read_unlock(&self) {
        let s = self.state.fetch_sub(READER, Ordering::Release) - READER;
        if s == QUEUED {
            self.unlock_slow();
        }
    }

    /// Releases the write lock.
    #[inline]
    fn write_unlock(&self) {
        if self
            .state
            .compare_exchange(WRITER, 0, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            // QUEUED is set; it is only cleared under the queue lock.
            let mut wakes = Wakes::new();
            {
                let mut q = self.q.lock();
                self.state.fetch_and(!WRITER, Ordering::Release);
                self.grant(&mut q, &mut wakes);
            }
            wakes.wake_all();
        }
    }

    #[cold]
    fn unlock_slow(&self) {
        let mut wakes = Wakes::new();
        {
            let mut q = self.q.lock();
            self.grant(&mut q, &mut wakes);
        }
        wakes.wake_all();
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.lock.read_unlock();
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.lock.write_unlock();
    }
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a read lock is held: nobody writes.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the write lock is held: nobody else accesses the data.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the write lock is held: nobody else accesses the data.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.try_read() {
            Some(g) => d.field("data", &&*g),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish_non_exhaustive()
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> RwLock<T> {
        RwLock::new(T::default())
    }
}

impl<T> From<T> for RwLock<T> {
    fn from(value: T) -> RwLock<T> {
        RwLock::new(value)
    }
}
