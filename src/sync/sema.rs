//! The wait queue every `sync` primitive parks on, and Go's runtime
//! semaphore (src/runtime/sema.go) built on it for [`super::Mutex`].
//!
//! # Wait queue
//! A [`WaitList`] is an intrusive FIFO of [`Node`]s under a small lock
//! (a `std::sync::Mutex`, held only for a few pointer writes, never while
//! anyone is parked). A node lives on the waiting frame's stack and points
//! to the [`Waiter`] of that coroutine or thread (Go's sudog, on the stack
//! instead of a cache). Each node is in one of these states:
//! ```text
//!            push (under the lock)          claim + unlink + grant (waker, under the lock)
//!   (frame) ───────────────────────▶ LINKED ──────────────────────────────────────────▶ CLAIMED
//!                                      │  │                                               │
//!                                      │  └─ timer claims TIMEOUT ─▶ LINKED+TIMEOUT        │ wake (after
//!                                      │        │ (the waiter, or a waker that fails       │  the unlock)
//!                                      │        │  its claim, unlinks it under the lock)   ▼
//!                                      │        └─────────────────────────────────────▶ frame returns
//!                                      └─ forced unwind (teardown): the frame's guard unlinks it
//! ```
//! A waker only ever claims a node (`Waiter::try_claim(0)`) and unlinks it
//! while holding the lock, writes what it grants into `data`, and calls
//! `Waiter::wake` after releasing the lock ([`Wakes`] collects them). The
//! waiting frame cannot return before that wake, so its node stays valid.
//!
//! # Forced unwinding
//! When a runtime is dropped, a coroutine parked here is resumed with a
//! forced unwind out of `Waiter::wait` instead of being woken. [`block`]
//! holds a guard for that case: under the lock it unlinks the node if it is
//! still linked, and otherwise (a waker granted it something) lets the
//! primitive give the grant back, so no count, ownership or wake-up is
//! lost for the coroutines and threads still using the primitive.
//!
//! # Semaphore ([`Sema`], Go's semacquire/semrelease)
//! `count` is the number of available units, `nwait` the number of waiters
//! in the queue (an atomic hint read without the lock).
//! ```text
//! acquire: CAS count n→n-1 (n > 0) ─────────────────────────────▶ done
//!          else lock; nwait+=1; retry the CAS (success: nwait-=1, done);
//!          else link (FIFO, or LIFO for a re-queued waiter), unlock, park;
//!          woken: done if the waker handed us a unit (ticket), else retry.
//! release: count+=1; nwait == 0 → done (no lock);
//!          else lock; pop the first waiter, nwait-=1, unlock;
//!          handoff: take the unit for it (ticket) so no newcomer can;
//!          wake it (and, with a ticket, yield so it runs at once).
//! ```
//! `count` and `nwait` are SeqCst: release stores `count` then loads
//! `nwait`, acquire stores `nwait` then loads `count` (a Dekker pair), so
//! either the releaser sees the waiter or the waiter sees the unit.

use std::{
    ptr,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Instant,
};

use crate::{
    lock::Lock,
    sched::g::WaitReason,
    waiter::{TIMEOUT, Waiter},
};

/// One waiting coroutine or thread in a [`WaitList`]; see the module
/// comment. Only touched through a raw pointer, under the list's lock or
/// by its owner after it was claimed.
pub(crate) struct Node<T> {
    waiter: *const Waiter,
    prev: *mut Node<T>,
    next: *mut Node<T>,
    linked: bool,
    /// What the waiter asks for (a weight, reader or writer) or what the
    /// waker granted (a ticket).
    pub(crate) data: T,
}

impl<T> Node<T> {
    pub(crate) fn new(waiter: &Waiter, data: T) -> Node<T> {
        Node {
            waiter,
            prev: ptr::null_mut(),
            next: ptr::null_mut(),
            linked: false,
            data,
        }
    }
}

/// An intrusive doubly linked FIFO of [`Node`]s; see the module comment.
pub(crate) struct WaitList<T> {
    head: *mut Node<T>,
    tail: *mut Node<T>,
    len: usize,
}

// SAFETY: the list is only reached through the lock that owns it; the
// nodes it points to are kept alive by their waiting frames until they are
// unlinked (see the module comment), and their data is Send.
unsafe impl<T: Send> Send for WaitList<T> {}

impl<T> WaitList<T> {
    pub(crate) const fn new() -> WaitList<T> {
        WaitList {
            head: ptr::null_mut(),
            tail: ptr::null_mut(),
            len: 0,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_null()
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The first node, or null.
    pub(crate) fn front(&self) -> *mut Node<T> {
        self.head
    }

    /// Links `n` at the back (or the front with `lifo`).
    ///
    /// # Safety
    /// `n` is a valid, unlinked node that stays valid (and does not move)
    /// until it is unlinked again.
    pub(crate) unsafe fn push(&mut self, n: *mut Node<T>, lifo: bool) {
        // SAFETY: `n` is valid (caller); head/tail are linked, valid nodes.
        unsafe {
            (*n).linked = true;
            if self.head.is_null() {
                (*n).prev = ptr::null_mut();
                (*n).next = ptr::null_mut();
                self.head = n;
                self.tail = n;
            } else if lifo {
                (*n).prev = ptr::null_mut();
                (*n).next = self.head;
                (*self.head).prev = n;
                self.head = n;
            } else {
                (*n).next = ptr::null_mut();
                (*n).prev = self.tail;
                (*self.tail).next = n;
                self.tail = n;
            }
        }
        self.len += 1;
    }

    /// Unlinks `n`.
    ///
    /// # Safety
    /// `n` is linked in this list.
    pub(crate) unsafe fn remove(&mut self, n: *mut Node<T>) {
        // SAFETY: `n` and its neighbours are linked, valid nodes (caller).
        unsafe {
            debug_assert!((*n).linked);
            let (p, q) = ((*n).prev, (*n).next);
            if p.is_null() {
                self.head = q;
            } else {
                (*p).next = q;
            }
            if q.is_null() {
                self.tail = p;
            } else {
                (*q).prev = p;
            }
            (*n).prev = ptr::null_mut();
            (*n).next = ptr::null_mut();
            (*n).linked = false;
        }
        self.len -= 1;
    }

    /// Unlinks `n` if it is still linked; `Some(was_first)` if it was.
    ///
    /// # Safety
    /// `n` is a valid node that is either unlinked or linked in this list.
    pub(crate) unsafe fn remove_if_linked(&mut self, n: *mut Node<T>) -> Option<bool> {
        // SAFETY: `n` is valid (caller).
        if !unsafe { (*n).linked } {
            return None;
        }
        let first = self.head == n;
        // SAFETY: linked, hence in this list (caller).
        unsafe { self.remove(n) };
        Some(first)
    }

    /// Unlinks `n` and claims it for a waker: if the claim is won, its
    /// waiter goes to `wakes` and true is returned. A node whose waiter
    /// timed out cannot be claimed: it is only unlinked (its waiter finds
    /// it so) and false is returned.
    ///
    /// # Safety
    /// `n` is linked in this list.
    pub(crate) unsafe fn claim(&mut self, n: *mut Node<T>, wakes: &mut Wakes) -> bool {
        // SAFETY: a linked node's waiter is alive (its frame waits).
        let w = unsafe { (*n).waiter };
        // SAFETY: as above.
        let won = unsafe { &*w }.try_claim(0);
        // SAFETY: linked in this list (caller).
        unsafe { self.remove(n) };
        if won {
            wakes.push(w);
        }
        won
    }

    /// Unlinks and claims the first claimable node (unlinking timed-out
    /// ones on the way); its waiter goes to `wakes`.
    pub(crate) fn claim_front(&mut self, wakes: &mut Wakes) -> Option<*mut Node<T>> {
        while !self.head.is_null() {
            let n = self.head;
            // SAFETY: the head is linked in this list.
            if unsafe { self.claim(n, wakes) } {
                return Some(n);
            }
        }
        None
    }

    /// Claims every node (waking them all); returns how many.
    pub(crate) fn claim_all(&mut self, wakes: &mut Wakes) -> usize {
        let mut k = 0;
        while self.claim_front(wakes).is_some() {
            k += 1;
        }
        k
    }
}

/// Waiters claimed under a lock, woken after it is released.
pub(crate) struct Wakes {
    inline: [*const Waiter; 4],
    n: usize,
    more: Vec<*const Waiter>,
}

impl Wakes {
    pub(crate) const fn new() -> Wakes {
        Wakes {
            inline: [ptr::null(); 4],
            n: 0,
            more: Vec::new(),
        }
    }

    fn push(&mut self, w: *const Waiter) {
        if self.n < self.inline.len() {
            self.inline[self.n] = w;
            self.n += 1;
        } else {
            self.more.push(w);
        }
    }

    /// Wakes every collected waiter (call with no queue lock held).
    pub(crate) fn wake_all(self) {
        for &w in self.inline[..self.n].iter().chain(self.more.iter()) {
            // SAFETY: we claimed `w` under its queue's lock, so its frame
            // waits for this one wake and keeps it alive until then; we do
            // not touch it afterwards.
            unsafe { (*w).wake(true) };
        }
    }
}

/// The waiter of a blocking call: inline on the stack, or shared with a
/// timer for a timed wait (`Waiter::wait_deadline` needs an `Arc`).
pub(crate) enum Slot {
    Inline(Waiter),
    Shared(Arc<Waiter>),
}

impl Slot {
    /// A waiter for the calling coroutine or thread.
    pub(crate) fn new(timed: bool) -> Slot {
        if timed {
            Slot::Shared(Arc::new(Waiter::new()))
        } else {
            Slot::Inline(Waiter::new())
        }
    }

    pub(crate) fn waiter(&self) -> &Waiter {
        match self {
            Slot::Inline(w) => w,
            Slot::Shared(w) => w,
        }
    }
}

/// Parks the caller until a waker claims `node` (true) or `deadline`
/// passes (false; the node may still be linked: the caller unlinks it
/// under the lock with [`WaitList::remove_if_linked`]).
///
/// The caller has linked `node` (whose waiter is `slot`'s) into a list
/// behind `lock` and released the lock. If the caller is unwound instead
/// (runtime teardown), `abandon(state, node, granted, wakes)` runs under
/// the lock: `granted` is true if a waker claimed the node (the primitive
/// must give back what it was granted), else the node is still linked (or
/// was unlinked with a timeout) and `abandon` must unlink it.
///
/// # Safety
/// `node` is valid and linked behind `lock` (or claimed), points to
/// `slot`'s waiter, and neither moves nor is freed before this returns.
pub(crate) unsafe fn block<S, T, A>(
    lock: &Lock<S>,
    slot: &Slot,
    node: *mut Node<T>,
    deadline: Option<Instant>,
    reason: WaitReason,
    abandon: A,
) -> bool
where
    A: FnOnce(&mut S, *mut Node<T>, bool, &mut Wakes),
{
    struct Guard<'a, S, T, A: FnOnce(&mut S, *mut Node<T>, bool, &mut Wakes)> {
        lock: &'a Lock<S>,
        slot: &'a Slot,
        node: *mut Node<T>,
        abandon: Option<A>,
    }
    impl<S, T, A: FnOnce(&mut S, *mut Node<T>, bool, &mut Wakes)> Drop for Guard<'_, S, T, A> {
        fn drop(&mut self) {
            let Some(abandon) = self.abandon.take() else {
                return;
            };
            // Unwinding out of the park (runtime teardown).
            let mut wakes = Wakes::new();
            {
                let mut s = self.lock.lock();
                let granted = self.slot.waiter().claimed() == Some(0);
                abandon(&mut s, self.node, granted, &mut wakes);
            }
            // A waker that claimed us may still be inside its wake.
            self.slot.waiter().quiesce();
            wakes.wake_all();
        }
    }

    let mut guard = Guard {
        lock,
        slot,
        node,
        abandon: Some(abandon),
    };
    debug_assert!(
        deadline.is_none() || matches!(slot, Slot::Shared(_)),
        "a timed wait needs a shared waiter"
    );
    let claim = match (deadline, slot) {
        (Some(d), Slot::Shared(w)) => Waiter::wait_deadline(w, d, reason),
        _ => {
            slot.waiter().wait(reason);
            0
        }
    };
    guard.abandon = None;
    claim != TIMEOUT
}

/// Go's runtime semaphore; see the module comment.
pub(crate) struct Sema {
    count: AtomicU32,
    nwait: AtomicU32,
    /// Waiters; a node's data is its ticket (a unit handed to it).
    q: Lock<WaitList<bool>>,
}

impl Sema {
    pub(crate) const fn new(count: u32) -> Sema {
        Sema {
            count: AtomicU32::new(count),
            nwait: AtomicU32::new(0),
            q: Lock::new(WaitList::new()),
        }
    }

    /// Takes a unit if one is available (Go's cansemacquire).
    #[inline]
    pub(crate) fn try_acquire(&self) -> bool {
        let mut v = self.count.load(Ordering::SeqCst);
        loop {
            if v == 0 {
                return false;
            }
            match self
                .count
                .compare_exchange_weak(v, v - 1, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return true,
                Err(now) => v = now,
            }
        }
    }

    /// Takes a unit, parking until one is released (Go's semacquire1).
    /// `lifo`: queue at the front (a waiter that has waited before).
    pub(crate) fn acquire(&self, lifo: bool, reason: WaitReason) {
        if self.try_acquire() {
            return;
        }
        loop {
            let slot = Slot::new(false);
            let mut node = Node::new(slot.waiter(), false);
            let np = &raw mut node;
            {
                let mut q = self.q.lock();
                self.nwait.fetch_add(1, Ordering::SeqCst);
                if self.try_acquire() {
                    self.nwait.fetch_sub(1, Ordering::SeqCst);
                    return;
                }
                // SAFETY: `node` lives on this frame until `block` returns
                // (or unlinks it when unwinding) and is not moved.
                unsafe { q.push(np, lifo) };
            }
            // SAFETY: as above; `node` points to `slot`'s waiter.
            unsafe {
                block(&self.q, &slot, np, None, reason, |q, np, granted, wakes| {
                    self.abandon(q, np, granted, wakes)
                });
            }
            // SAFETY: claimed and woken: the waker is done with the node.
            if unsafe { (*np).data } || self.try_acquire() {
                return;
            }
        }
    }

    /// A waiter unwound instead of woken: unlink it, or give back the unit
    /// it was handed and pass its wake-up on.
    fn abandon(
        &self,
        q: &mut WaitList<bool>,
        np: *mut Node<bool>,
        granted: bool,
        wakes: &mut Wakes,
    ) {
        // SAFETY: `np` is the unwinding frame's node, linked here or claimed.
        if unsafe { q.remove_if_linked(np) }.is_some() {
            self.nwait.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        if !granted {
            return;
        }
        // SAFETY: claimed and woken: only this frame touches it now.
        if unsafe { (*np).data } {
            self.count.fetch_add(1, Ordering::SeqCst);
        }
        if self.count.load(Ordering::SeqCst) > 0 && q.claim_front(wakes).is_some() {
            self.nwait.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Adds a unit and wakes the first waiter (Go's semrelease1). With
    /// `handoff`, the unit goes to that waiter directly and the caller
    /// yields to it.
    pub(crate) fn release(&self, handoff: bool) {
        self.count.fetch_add(1, Ordering::SeqCst);
        if self.nwait.load(Ordering::SeqCst) == 0 {
            return;
        }
        let mut wakes = Wakes::new();
        let n = {
            let mut q = self.q.lock();
            if self.nwait.load(Ordering::SeqCst) == 0 {
                return;
            }
            let Some(n) = q.claim_front(&mut wakes) else {
                return;
            };
            self.nwait.fetch_sub(1, Ordering::SeqCst);
            n
        };
        let ticket = handoff && self.try_acquire();
        if ticket {
            // SAFETY: claimed by us and not yet woken: its frame waits and
            // nobody else touches the node.
            unsafe { (*n).data = true };
        }
        wakes.wake_all();
        if ticket {
            // Go: "handoff ownership ... and yield our time slice so that
            // the next waiter can start to run immediately" (it sits in
            // our runnext).
            crate::sched::park::yield_now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_links_fifo_and_lifo() {
        let w = Waiter::new();
        let mut a = Node::new(&w, 1);
        let mut b = Node::new(&w, 2);
        let mut c = Node::new(&w, 3);
        let (pa, pb, pc) = (&raw mut a, &raw mut b, &raw mut c);
        let mut l = WaitList::new();
        // SAFETY: the nodes outlive the list's use of them.
        unsafe {
            l.push(pa, false);
            l.push(pb, false);
            l.push(pc, true);
            assert_eq!(l.len(), 3);
            assert_eq!((*l.front()).data, 3);
            assert_eq!(l.remove_if_linked(pa), Some(false));
            assert_eq!(l.remove_if_linked(pa), None);
            assert_eq!(l.remove_if_linked(pc), Some(true));
            assert_eq!((*l.front()).data, 2);
            l.remove(pb);
        }
        assert!(l.is_empty());
    }

    #[test]
    fn sema_counts_on_threads() {
        let s = Arc::new(Sema::new(0));
        let t = {
            let s = s.clone();
            std::thread::spawn(move || {
                for _ in 0..1000 {
                    s.acquire(false, WaitReason::MutexLock);
                }
            })
        };
        for i in 0..1000 {
            s.release(i % 2 == 0);
        }
        t.join().unwrap();
        assert!(!s.try_acquire());
    }
}
