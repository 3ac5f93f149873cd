//! The park/wake handshake shared by every blocking primitive built on
//! `gopark`/`goready` (channels, `select!`, `sync`): the part of Go's sudog
//! that says *who* waits and *which* of its cases won (`selectDone`), for a
//! coroutine or a plain thread alike.
//!
//! # States
//! ```text
//! claim:  OPEN ──try_claim(case) by a waker, or TIMEOUT by the timer──▶ CLAIMED(case)
//!         (exactly one claim succeeds; the waiter itself claims TIMEOUT or,
//!          in select, the case it completes on its own)
//!
//! park:   EMPTY ──gopark callback (G) / first park (thread)──▶ PARKED
//!           │                                                   │ wake
//!           └──────────── wake before the park ──────────────▶ WOKEN
//! ```
//! A waker first wins `claim` (while holding the lock of the queue it found
//! the waiter in), moves its value through the waiter's slot, then calls
//! [`Waiter::wake`] once. `wait` returns only once `park` is WOKEN, so the
//! slot is never read before the waker has written it. A G parks through
//! `gopark` whose callback CASes EMPTY → PARKED: if the wake came first the
//! CAS fails and the G does not park at all.
//!
//! After `wake` the waker must not touch the waiter again: the waiting G or
//! thread may already have returned and freed it. For threads the waker
//! therefore clones the `Thread` handle before publishing WOKEN.
//!
//! # Runtime teardown
//! Dropping a runtime resumes its parked coroutines with a forced unwind,
//! without a waker's claim, while a plain thread may be waking one of them
//! (it claimed the waiter under the queue lock, then released the lock to
//! call `wake`). Two rules make that race harmless: the unwinding G, after
//! unlinking itself, waits in [`Waiter::quiesce`] until a waker that
//! claimed it has set `done` (its last access to the waiter, which lives on
//! the G's stack); and the waker's `ready` of a G the teardown took first
//! is dropped (`Sched::ready_outside`), counted so the teardown frees no G
//! before every such wake-up has finished.
//!
//! # Parking under the queue lock (Go's `chanparkcommit`)
//! A coroutine that waits on one queue with no deadline ([`Waiter::new_locked`],
//! [`Waiter::wait_locked`]) keeps the queue's lock until it is off its stack:
//! gopark's callback releases it. A waker can only find the waiter under
//! that lock, so it always finds the G parked: `park` is not used (wake
//! readies the G at once) and `claim` has one kind of claimant, all under
//! the same lock (a load and a store, not a CAS). Three locked
//! instructions fewer per wait and wake; select, timed waits and threads
//! keep the protocol above.

use std::{
    cell::UnsafeCell,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering},
    },
    thread::Thread,
    time::Instant,
};

use crate::sched::{
    self, Sched,
    g::{GRef, WaitReason, getmg},
    m::M,
    park::{gopark, gopark_on},
};

const OPEN: usize = 0;
/// The claim a timeout makes.
pub(crate) const TIMEOUT: usize = usize::MAX - 1;

const EMPTY: u8 = 0;
const PARKED: u8 = 1;
const WOKEN: u8 = 2;

/// One blocked coroutine or thread; see the module comment.
pub(crate) struct Waiter {
    /// OPEN, or the winning case + 1.
    claim: AtomicUsize,
    park: AtomicU8,
    /// The parked G, written by the gopark callback before PARKED.
    g: UnsafeCell<Option<GRef>>,
    /// Set at creation when the waiter is a plain thread.
    thread: Option<Thread>,
    /// The runtime, for a coroutine (to arm timeouts).
    sched: Option<&'static Sched>,
    /// A coroutine parked under its queue's lock (see the module comment):
    /// `g` is set from the start, claims and wakes skip the atomics.
    direct: bool,
    /// For a `direct` waiter, the M its G ran on when it made the waiter
    /// and still runs on in `wait_locked` (it does not park in between);
    /// null otherwise.
    m: *const M,
    /// Set by a waker of a parked coroutine as its last access to the
    /// waiter (see "Runtime teardown" in the module comment).
    done: AtomicBool,
}

// SAFETY: `g` is written once by the parking G before PARKED (Release) and
// read by the one waker that swapped PARKED → WOKEN (Acquire); the other
// fields are atomics or immutable after creation.
unsafe impl Sync for Waiter {}
// SAFETY: as above; a GRef is a handle meant to cross threads.
unsafe impl Send for Waiter {}

impl std::fmt::Debug for Waiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiter")
            .field("claim", &self.claimed())
            .field("thread", &self.thread.is_some())
            .finish()
    }
}

impl Waiter {
    /// A waiter for the calling coroutine, or the calling thread.
    pub(crate) fn new() -> Waiter {
        let (thread, sched) = match sched::current() {
            Some((_, s)) => (None, Some(s)),
            None => (Some(std::thread::current()), None),
        };
        Waiter {
            claim: AtomicUsize::new(OPEN),
            park: AtomicU8::new(EMPTY),
            g: UnsafeCell::new(None),
            thread,
            sched,
            direct: false,
            m: std::ptr::null(),
            done: AtomicBool::new(false),
        }
    }

    /// A waiter that will wait with [`Waiter::wait_locked`]: one queue, no
    /// deadline, every claimant holding that queue's lock. The caller must
    /// not park or yield before that `wait_locked`.
    #[inline]
    pub(crate) fn new_locked() -> Waiter {
        match getmg() {
            Some((m, g)) => Waiter {
                claim: AtomicUsize::new(OPEN),
                park: AtomicU8::new(EMPTY),
                g: UnsafeCell::new(Some(g)),
                thread: None,
                // A G runs only on its runtime's Ms. (Read from m, not g:
                // one dependent load fewer.)
                sched: Some(m.sched()),
                direct: true,
                m,
                done: AtomicBool::new(false),
            },
            None => Waiter::new(),
        }
    }

    /// Claims the waiter for `case`; false if it was claimed already.
    #[inline]
    pub(crate) fn try_claim(&self, case: usize) -> bool {
        if self.direct {
            // Every claimant holds the queue lock, which orders them.
            if self.claim.load(Ordering::Relaxed) != OPEN {
                return false;
            }
            self.claim.store(case + 1, Ordering::Relaxed);
            return true;
        }
        self.claim
            .compare_exchange(OPEN, case + 1, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// The winning case, `TIMEOUT`, or None while open.
    #[inline]
    pub(crate) fn claimed(&self) -> Option<usize> {
        match self.claim.load(Ordering::Acquire) {
            OPEN => None,
            c => Some(c - 1),
        }
    }

    /// Wakes the waiter. `next`: run the woken G next on this P (a direct
    /// hand-off, Go's goready); false from timers.
    ///
    /// # Safety
    /// The caller won `try_claim` on this waiter and calls this once; it
    /// must not touch the waiter afterwards.
    #[inline(always)]
    pub(crate) unsafe fn wake(&self, next: bool) {
        if self.direct {
            let sched = self.sched.expect("a coroutine waiter knows its runtime");
            // Without a P of the G's runtime (a plain thread, mostly) the
            // wake-up may race with the teardown: ready_taken keeps it
            // counted until we are past the G too. The G is readied once
            // we are past the waiter, which may be gone once `done` is seen.
            sched.ready_taken(next, || {
                // The G let go of the queue lock only once parked, and we
                // found it under that lock: it is parked. (WOKEN here means
                // it is being unwound at teardown: leave it.)
                let abandoned = self.park.load(Ordering::Acquire) == WOKEN;
                // SAFETY: `g` was set at creation and never changes.
                let g = unsafe { *self.g.get() }.expect("a direct waiter has its G");
                self.done.store(true, Ordering::Release);
                (!abandoned).then_some(g)
            });
            return;
        }
        // SAFETY: forwarded from this function's contract.
        unsafe { self.wake_claimed(next) }
    }

    /// [`Waiter::wake`] for a thread, or a coroutine that parks through
    /// the `park` handshake (select, timed waits).
    ///
    /// # Safety
    /// As [`Waiter::wake`].
    #[inline(never)]
    unsafe fn wake_claimed(&self, next: bool) {
        if let Some(t) = &self.thread {
            let t = t.clone();
            self.park.store(WOKEN, Ordering::Release);
            t.unpark();
            return;
        }
        let sched = self.sched.expect("a coroutine waiter knows its runtime");
        // ready_taken and `done`: as in `wake`.
        sched.ready_taken(next, || {
            match self.park.swap(WOKEN, Ordering::AcqRel) {
                // The G has not parked yet; its gopark callback sees WOKEN
                // and it does not park (nor can it be unwound here).
                EMPTY => None,
                PARKED => {
                    // SAFETY: PARKED was published after `g` was written,
                    // and only we saw PARKED: the G stays parked until we
                    // ready it.
                    let g = unsafe { *self.g.get() }.expect("a parked waiter has its G");
                    self.done.store(true, Ordering::Release);
                    Some(g)
                }
                // Abandoned by a G being unwound at teardown.
                _ => {
                    self.done.store(true, Ordering::Release);
                    None
                }
            }
        });
    }

    /// Blocks until woken (the caller has made the waiter findable).
    pub(crate) fn wait(&self, reason: WaitReason) {
        if self.thread.is_some() {
            while self.park.load(Ordering::Acquire) != WOKEN {
                std::thread::park();
            }
            return;
        }
        if self.park.load(Ordering::Acquire) == WOKEN {
            return;
        }
        let park = &self.park;
        let slot = self.g.get() as usize;
        // SAFETY: the callback touches the waiter (which outlives the park:
        // it is freed only after `wait` returns) and nothing else of this
        // stack; it neither parks nor panics.
        unsafe {
            gopark(
                move |g| {
                    // SAFETY: only this G writes `g`, before PARKED.
                    *(slot as *mut Option<GRef>) = Some(g);
                    park.compare_exchange(EMPTY, PARKED, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                },
                reason,
            );
        }
    }

    /// Releases `lock` (the guard of the one queue this waiter is linked
    /// in) and blocks until woken. A waiter from [`Waiter::new_locked`] on
    /// a coroutine releases it only once off its stack (gopark's callback).
    #[inline(always)]
    pub(crate) fn wait_locked<L>(&self, lock: L, reason: WaitReason) {
        if !self.direct {
            drop(lock);
            self.wait(reason);
            return;
        }
        // SAFETY: the callback owns the guard and touches nothing else; it
        // neither parks nor panics. It always parks: nobody can have
        // claimed the waiter while we held the lock. `m` and `g` were read
        // by new_locked on this G, which has not parked since (its
        // contract): they are still this thread's M and running G.
        unsafe {
            let g = (*self.g.get()).expect("a direct waiter has its G");
            gopark_on(
                &*self.m,
                g,
                move |_| {
                    drop(lock);
                    true
                },
                reason,
            );
        }
    }

    /// Blocks until woken or until `deadline`, whichever claims the waiter
    /// first; returns the claim (a case, or `TIMEOUT`). `this` must be the
    /// only handle the caller holds besides the queues it registered in.
    pub(crate) fn wait_deadline(
        this: &Arc<Waiter>,
        deadline: Instant,
        reason: WaitReason,
    ) -> usize {
        if this.thread.is_some() {
            loop {
                if this.park.load(Ordering::Acquire) == WOKEN {
                    break;
                }
                let now = Instant::now();
                if now >= deadline {
                    if this.try_claim(TIMEOUT) {
                        return TIMEOUT;
                    }
                    // A waker claimed us first: its wake is on its way.
                    this.wait(reason);
                    break;
                }
                std::thread::park_timeout(deadline - now);
            }
        } else {
            let sched = this.sched.expect("a coroutine waiter knows its runtime");
            let when = sched.instant_nanos(deadline);
            if when <= sched.nanotime() {
                if this.try_claim(TIMEOUT) {
                    return TIMEOUT;
                }
            } else {
                crate::time::add_waiter_timer(sched, this.clone(), when);
            }
            this.wait(reason);
        }
        this.claimed().expect("a woken waiter was claimed")
    }

    /// Called by a waiting G that is being unwound (runtime teardown)
    /// before it unlinks itself: a waker that claimed it meanwhile then
    /// finds it WOKEN and does not ready a G that is no longer parked.
    pub(crate) fn abandon(&self) {
        self.park.store(WOKEN, Ordering::Release);
    }

    /// Called by a waiting G that is being unwound, once it has unlinked
    /// itself (under its queue's lock, so a claim made before is visible):
    /// if a waker claimed it, waits until that waker is done with the
    /// waiter, which lives in the frame about to be unwound.
    pub(crate) fn quiesce(&self) {
        if self.thread.is_some() || self.claimed().is_none() {
            return;
        }
        while !self.done.load(Ordering::Acquire) {
            std::thread::yield_now();
        }
    }
}

/// The timer side of [`Waiter::wait_deadline`]: claims and wakes.
pub(crate) fn fire_timeout(w: &Waiter) {
    if w.try_claim(TIMEOUT) {
        // SAFETY: we won the claim; the Arc the timer holds keeps `w` alive.
        unsafe { w.wake(false) };
    }
}

/// Whether a timeout entry still matters (lazy deletion in the heap).
pub(crate) fn timeout_is_live(w: &Waiter) -> bool {
    w.claimed().is_none()
}
