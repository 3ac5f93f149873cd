//! `IoLock`: serialises the readers (or the writers) of one socket, as the
//! read and write halves of Go's `fdMutex` do.
//!
//! A descriptor's `PollDesc` has one waiter slot per direction: two
//! coroutines waiting to read the same socket at once would be a "double
//! wait", which is fatal. Go's `poll.FD` takes `readLock`/`writeLock` around
//! every call for that reason (and so that concurrent `Write`s do not
//! interleave their bytes); `gort::net` takes an `IoLock` per direction.
//!
//! Uncontended, `lock` and `unlock` are one compare-and-swap each. A
//! contended lock queues its waiters in FIFO order and hands the lock
//! directly to the first one on unlock; a waiter parks its coroutine
//! (`gopark`), or its thread when it is not a coroutine, so plain threads
//! and coroutines of any runtime can share a socket.
//!
//! ```text
//!  UNLOCKED ──lock (CAS)──▶ LOCKED ──lock finds it held (CAS, under the
//!     ▲                      │  ▲      queue mutex)──▶ CONTENDED
//!     └──unlock (CAS)────────┘  └──unlock hands off the last waiter──┘
//!                                   (CONTENDED stays while more wait)
//! ```
//! `UNLOCKED` implies an empty queue: an unlock in `CONTENDED` always hands
//! the lock to a queued waiter, never releases it.

use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicU8, Ordering},
    },
    thread::Thread,
};

use crate::{
    rt::{self, Gp, WaitReason},
    sched::Sched,
};

const UNLOCKED: u8 = 0;
const LOCKED: u8 = 1;
const CONTENDED: u8 = 2;

/// One direction's lock of a socket.
#[derive(Debug, Default)]
pub(crate) struct IoLock {
    state: AtomicU8,
    queue: Mutex<VecDeque<Waiter>>,
}

/// A queued waiter.
enum Waiter {
    /// A parked coroutine and its runtime, which outlives the entry: a
    /// runtime's teardown unwinds its parked coroutines, and an unwound
    /// waiter takes itself out of the queue.
    G(Gp, &'static Sched),
    Thread(Arc<ThreadWaiter>),
}

impl std::fmt::Debug for Waiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Waiter::G(gp, _) => f.debug_tuple("G").field(gp).finish(),
            Waiter::Thread(t) => f.debug_tuple("Thread").field(&t.thread.id()).finish(),
        }
    }
}

#[derive(Debug)]
struct ThreadWaiter {
    handed: AtomicBool,
    thread: Thread,
}

/// Holds an [`IoLock`]; unlocks on drop.
#[derive(Debug)]
pub(crate) struct IoGuard<'a>(&'a IoLock);

impl Drop for IoGuard<'_> {
    fn drop(&mut self) {
        self.0.unlock();
    }
}

impl IoLock {
    /// Takes the lock, waiting (parked) while another caller holds it.
    #[inline]
    pub(crate) fn lock(&self) -> IoGuard<'_> {
        if self
            .state
            .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_slow();
        }
        IoGuard(self)
    }

    fn queue(&self) -> MutexGuard<'_, VecDeque<Waiter>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cold]
    fn lock_slow(&self) {
        let q = self.queue();
        loop {
            match self.state.load(Ordering::Relaxed) {
                UNLOCKED => {
                    if self
                        .state
                        .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                    {
                        return;
                    }
                }
                LOCKED => {
                    if self
                        .state
                        .compare_exchange(LOCKED, CONTENDED, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                    {
                        break;
                    }
                }
                _ => break,
            }
        }
        // Queued from here: an unlock hands the lock to us under `queue`.
        // A coroutine parks even while its runtime shuts down: parked, it
        // lets its M stop, and the teardown unwinds it (see `park_g`); a
        // thread park there would block the M, and the runtime's drop
        // that joins it, forever.
        match crate::sched::current() {
            Some((g, sched)) => self.park_g(q, g.id(), sched),
            None => self.park_thread(q),
        }
    }

    /// Parks the calling coroutine until the lock is handed to it.
    fn park_g(&self, q: MutexGuard<'_, VecDeque<Waiter>>, id: u64, sched: &'static Sched) {
        /// Leaves the queue (or passes the lock on) if the coroutine is
        /// unwound while parked (runtime teardown).
        struct Unwound<'a> {
            lock: &'a IoLock,
            id: u64,
        }
        impl Drop for Unwound<'_> {
            fn drop(&mut self) {
                let mut q = self.lock.queue();
                match q
                    .iter()
                    .position(|w| matches!(w, Waiter::G(g, _) if g.id() == self.id))
                {
                    Some(i) => {
                        q.remove(i);
                        if q.is_empty() {
                            self.lock.state.store(LOCKED, Ordering::Relaxed);
                        }
                    }
                    None => {
                        // Handed to us already: pass it on.
                        drop(q);
                        self.lock.unlock();
                    }
                }
            }
        }
        let guard = Unwound { lock: self, id };
        // SAFETY: the callback owns the queue guard: it publishes this
        // coroutine in the queue, which lives in the lock (not on our
        // stack), then unlocks the queue and touches nothing after. The
        // lock outlives the wait: our caller borrows it.
        unsafe {
            rt::gopark(
                move |gp| {
                    let mut q = q;
                    q.push_back(Waiter::G(gp, sched));
                    drop(q);
                    true
                },
                WaitReason::Sync,
            );
        }
        std::mem::forget(guard);
        // The unlocker handed the lock over (state is LOCKED or CONTENDED).
    }

    /// Parks the calling thread until the lock is handed to it.
    fn park_thread(&self, mut q: MutexGuard<'_, VecDeque<Waiter>>) {
        let w = Arc::new(ThreadWaiter {
            handed: AtomicBool::new(false),
            thread: std::thread::current(),
        });
        q.push_back(Waiter::Thread(w.clone()));
        drop(q);
        while !w.handed.load(Ordering::Acquire) {
            std::thread::park();
        }
    }

    #[inline]
    fn unlock(&self) {
        if self
            .state
            .compare_exchange(LOCKED, UNLOCKED, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            self.unlock_slow();
        }
    }

    /// Hands the lock to the first waiter.
    #[cold]
    fn unlock_slow(&self) {
        let mut q = self.queue();
        let Some(w) = q.pop_front() else {
            // CONTENDED is only set with a waiter queued; be robust anyway.
            self.state.store(UNLOCKED, Ordering::Release);
            return;
        };
        if q.is_empty() {
            self.state.store(LOCKED, Ordering::Relaxed);
        }
        drop(q);
        match w {
            // The lock is now the coroutine's, but its runtime is being
            // dropped: it will be unwound where it parked, not resumed, and
            // its `Unwound` guard, finding itself out of the queue, passes
            // the lock on. Readying it now could start a new M in the
            // middle of the teardown.
            Waiter::G(_, sched) if sched.is_shutting_down() => {}
            // SAFETY: `gp` was published by its gopark callback in
            // `park_g` and is popped (so readied) exactly once.
            Waiter::G(gp, _) => unsafe { rt::goready(gp) },
            Waiter::Thread(t) => {
                t.handed.store(true, Ordering::Release);
                t.thread.unpark();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Coroutines on 2 Ps and plain threads contend for one lock; the
    /// critical section checks it is alone.
    #[test]
    fn mutual_exclusion_across_coroutines_and_threads() {
        let rt = crate::Runtime::builder().procs(2).build().unwrap();
        let lock = Arc::new(IoLock::default());
        let inside = Arc::new(AtomicUsize::new(0));
        let total = Arc::new(AtomicUsize::new(0));
        let work = |lock: Arc<IoLock>, inside: Arc<AtomicUsize>, total: Arc<AtomicUsize>| {
            move || {
                for i in 0..2000 {
                    let _g = lock.lock();
                    assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
                    if i % 7 == 0 {
                        crate::yield_now();
                    }
                    inside.fetch_sub(1, Ordering::SeqCst);
                    total.fetch_add(1, Ordering::Relaxed);
                }
            }
        };
        let threads: Vec<_> = (0..2)
            .map(|_| std::thread::spawn(work(lock.clone(), inside.clone(), total.clone())))
            .collect();
        let gs: Vec<_> = (0..8)
            .map(|_| rt.spawn(work(lock.clone(), inside.clone(), total.clone())))
            .collect();
        for g in gs {
            g.join().unwrap();
        }
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(total.load(Ordering::Relaxed), 10 * 2000);
        assert_eq!(lock.state.load(Ordering::Relaxed), UNLOCKED);
    }
}
