//! `Lock<T>`: the runtime's own mutex for short critical sections that
//! never park a coroutine while held (Go's `runtime.mutex`,
//! lock_futex.go). It blocks the *thread* on contention, like
//! `std::sync::Mutex`, but has no poisoning: nothing user-supplied runs
//! under it but moves of values, so a panic cannot leave the data half
//! updated, and the poison bookkeeping (a panic-count check on every lock
//! and unlock, a flag, a `Result` to unwrap) was a tenth of the
//! instructions of a ping-pong round trip over a channel (1,038 -> 930,
//! callgrind).
//!
//! # States (Linux: the futex word)
//! ```text
//!   UNLOCKED ──lock (CAS)──▶ LOCKED ──a contender gives up spinning
//!      ▲                       │       (swap)──▶ CONTENDED
//!      └──unlock (swap) ◀──────┴──────────────────────┘
//!          (from CONTENDED, the unlock also wakes one sleeper)
//! ```
//! A contender first spins while the state is LOCKED, then swaps in
//! CONTENDED and sleeps in `futex_wait` while it stays CONTENDED; whoever
//! takes the lock through that swap keeps CONTENDED, so the next unlock
//! wakes the next sleeper (Drepper's "Futexes are tricky", mutex 2, as std
//! does). Uncontended: one compare-and-swap to lock, one swap to unlock.
//!
//! Elsewhere (no futex here to test against) the lock is a
//! `std::sync::Mutex<()>` with its poison ignored.

use std::{
    cell::UnsafeCell,
    ops::{Deref, DerefMut},
};

/// A mutex for the runtime's own short critical sections; see the module
/// comment.
pub(crate) struct Lock<T> {
    raw: imp::RawLock,
    data: UnsafeCell<T>,
}

// SAFETY: the data is reached only through a guard, and one guard exists
// at a time (the raw lock's exclusion); T: Send is what moving the access
// between threads needs, as for std's Mutex.
unsafe impl<T: Send> Send for Lock<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Lock<T> {}

// Unwind safety, as std's Mutex declares it (there through poisoning):
// no user code runs while a Lock is held, only moves of values, so an
// unwind can never observe its data half updated. Without these, every
// public type holding one (channel handles, WaitGroup, Semaphore...) would
// stop being usable inside `catch_unwind`.
impl<T> std::panic::UnwindSafe for Lock<T> {}
impl<T> std::panic::RefUnwindSafe for Lock<T> {}

/// Access to a [`Lock`]'s data; unlocks when dropped.
pub(crate) struct LockGuard<'a, T> {
    lock: &'a Lock<T>,
    _held: imp::Held<'a>,
}

impl<T> Lock<T> {
    pub(crate) const fn new(data: T) -> Lock<T> {
        Lock {
            raw: imp::RawLock::new(),
            data: UnsafeCell::new(data),
        }
    }

    /// Locks, blocking the thread while another holds the lock.
    #[inline]
    pub(crate) fn lock(&self) -> LockGuard<'_, T> {
        LockGuard {
            _held: self.raw.lock(),
            lock: self,
        }
    }
}

impl<T> Deref for LockGuard<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for LockGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the lock, and `&mut self` is unique.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: Default> Default for Lock<T> {
    fn default() -> Self {
        Lock::new(T::default())
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use std::sync::atomic::{AtomicU32, Ordering};

    const UNLOCKED: u32 = 0;
    const LOCKED: u32 = 1;
    const CONTENDED: u32 = 2;

    /// Spins before sleeping: a holder's critical section is a few dozen
    /// instructions, much shorter than a futex round trip.
    const SPINS: u32 = 100;

    pub(super) struct RawLock {
        state: AtomicU32,
    }

    /// Proof of holding a `RawLock`; unlocks when dropped.
    pub(super) struct Held<'a>(&'a RawLock);

    impl RawLock {
        pub(super) const fn new() -> RawLock {
            RawLock {
                state: AtomicU32::new(UNLOCKED),
            }
        }

        #[inline]
        pub(super) fn lock(&self) -> Held<'_> {
            if self
                .state
                .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                self.lock_contended();
            }
            Held(self)
        }

        #[cold]
        fn lock_contended(&self) {
            let mut state = self.spin();
            if state == UNLOCKED {
                match self.state.compare_exchange(
                    UNLOCKED,
                    LOCKED,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return,
                    Err(s) => state = s,
                }
            }
            loop {
                // Taking the lock through this swap leaves CONTENDED: other
                // sleepers may remain, and our unlock must wake one.
                if state != CONTENDED && self.state.swap(CONTENDED, Ordering::Acquire) == UNLOCKED {
                    return;
                }
                futex_wait(&self.state, CONTENDED);
                state = self.spin();
            }
        }

        /// Spins while the lock is held without sleepers; returns the state
        /// seen last.
        fn spin(&self) -> u32 {
            let mut spins = SPINS;
            loop {
                let state = self.state.load(Ordering::Relaxed);
                if state != LOCKED || spins == 0 {
                    return state;
                }
                std::hint::spin_loop();
                spins -= 1;
            }
        }

        #[inline]
        fn unlock(&self) {
            if self.state.swap(UNLOCKED, Ordering::Release) == CONTENDED {
                futex_wake_one(&self.state);
            }
        }
    }

    impl Drop for Held<'_> {
        #[inline]
        fn drop(&mut self) {
            self.0.unlock();
        }
    }

    /// Sleeps while `*word == expected` (or until a spurious wake-up or a
    /// signal: the caller re-checks).
    fn futex_wait(word: &AtomicU32, expected: u32) {
        // SAFETY: FUTEX_WAIT reads the aligned u32 `word` points to, which
        // lives as long as the lock; a null timeout waits without limit.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                expected,
                std::ptr::null::<libc::timespec>(),
            );
        }
    }

    /// Wakes one thread sleeping in `futex_wait` on `word`.
    fn futex_wake_one(word: &AtomicU32) {
        // SAFETY: FUTEX_WAKE only uses the address as a key.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
                1u32,
            );
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    pub(super) struct RawLock(std::sync::Mutex<()>);

    pub(super) struct Held<'a>(#[allow(dead_code)] std::sync::MutexGuard<'a, ()>);

    impl RawLock {
        pub(super) const fn new() -> RawLock {
            RawLock(std::sync::Mutex::new(()))
        }

        #[inline]
        pub(super) fn lock(&self) -> Held<'_> {
            Held(self.0.lock().unwrap_or_else(|e| e.into_inner()))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{
            Arc, Barrier,
            atomic::{AtomicBool, Ordering},
        },
        thread,
        time::Duration,
    };

    use super::Lock;

    #[test]
    fn threads_hammering_one_lock_lose_no_update() {
        const THREADS: usize = 8;
        const ROUNDS: u64 = 50_000;
        let lock = Arc::new(Lock::new((0u64, 0u64)));
        let barrier = Arc::new(Barrier::new(THREADS));
        let hs: Vec<_> = (0..THREADS)
            .map(|_| {
                let (lock, barrier) = (lock.clone(), barrier.clone());
                thread::spawn(move || {
                    barrier.wait();
                    for _ in 0..ROUNDS {
                        let mut g = lock.lock();
                        // Two fields updated apart: a second holder would
                        // see them differ.
                        assert_eq!(g.0, g.1, "two holders at once");
                        g.0 += 1;
                        std::hint::black_box(&mut *g);
                        g.1 += 1;
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        let g = lock.lock();
        assert_eq!(*g, (THREADS as u64 * ROUNDS, THREADS as u64 * ROUNDS));
    }

    #[test]
    fn a_sleeping_contender_is_woken_by_the_unlock() {
        // The holder keeps the lock far longer than any spin, so the
        // contenders go to sleep in the kernel; each must get the lock
        // after the unlock (a lost wake-up fails the timeout below).
        let lock = Arc::new(Lock::new(0u32));
        let held = lock.lock();
        let (tx, rx) = std::sync::mpsc::channel();
        let started = Arc::new(AtomicBool::new(false));
        for _ in 0..4 {
            let (lock, started, tx) = (lock.clone(), started.clone(), tx.clone());
            thread::spawn(move || {
                started.store(true, Ordering::Relaxed);
                *lock.lock() += 1;
                tx.send(()).unwrap();
            });
        }
        while !started.load(Ordering::Relaxed) {
            thread::yield_now();
        }
        // Not a correctness wait: it only gives the contenders time to
        // exhaust their spins and sleep.
        thread::sleep(Duration::from_millis(50));
        drop(held);
        for i in 0..4 {
            rx.recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("contender {i} never got the lock"));
        }
        assert_eq!(*lock.lock(), 4);
    }

    #[test]
    fn a_panic_under_the_lock_does_not_poison_it() {
        let lock = Arc::new(Lock::new(7u32));
        let l2 = lock.clone();
        let r = thread::spawn(move || {
            let _g = l2.lock();
            panic!("a panic while holding the lock");
        })
        .join();
        assert!(r.is_err());
        assert_eq!(*lock.lock(), 7, "the lock is free and its data intact");
    }
}
