//! Sudogs and their queues: Go's `sudog` and `waitq` for one channel.
//!
//! A sudog lives on the stack of the coroutine (or thread) that waits on a
//! channel; the channel's queue links it in place, so parking needs no
//! allocation. Every field but `slot` is read and written only under the
//! lock of the channel whose queue it is in; `slot` is written by the one
//! waker that won the sudog's [`Waiter`] claim, before it wakes the owner,
//! and read by the owner after it is woken.

use std::{
    cell::{Cell, UnsafeCell},
    ptr,
};

use crate::waiter::Waiter;

/// One waiting send or receive on one channel.
pub(crate) struct Sudog<T> {
    /// The waiter (shared by the sudogs of one select).
    pub(crate) waiter: *const Waiter,
    /// The select case this sudog stands for (0 outside select).
    pub(crate) case: usize,
    /// A receiver's landing slot, or a sender's value.
    pub(crate) slot: UnsafeCell<Option<T>>,
    /// True when the operation completed; false when woken by close.
    pub(crate) success: Cell<bool>,
    prev: Cell<*const Sudog<T>>,
    next: Cell<*const Sudog<T>>,
    queued: Cell<bool>,
}

impl<T> Sudog<T> {
    pub(crate) fn new(waiter: *const Waiter, case: usize, slot: Option<T>) -> Sudog<T> {
        Sudog {
            waiter,
            case,
            slot: UnsafeCell::new(slot),
            success: Cell::new(false),
            prev: Cell::new(ptr::null()),
            next: Cell::new(ptr::null()),
            queued: Cell::new(false),
        }
    }

    /// The sudog's waiter.
    pub(crate) fn waiter(&self) -> &Waiter {
        // SAFETY: the waiter outlives every sudog that points to it (both
        // live on the waiting frame, or the waiter in an Arc it holds).
        unsafe { &*self.waiter }
    }
}

/// A FIFO of sudogs, linked through the sudogs themselves.
pub(crate) struct WaitQ<T> {
    head: *const Sudog<T>,
    tail: *const Sudog<T>,
}

impl<T> Default for WaitQ<T> {
    fn default() -> Self {
        WaitQ {
            head: ptr::null(),
            tail: ptr::null(),
        }
    }
}

impl<T> WaitQ<T> {
    /// Links `sg` at the tail.
    ///
    /// # Safety
    /// `sg` stays at its address until it is unlinked (by `dequeue` or
    /// `remove`), and is in no queue now.
    pub(crate) unsafe fn enqueue(&mut self, sg: &Sudog<T>) {
        debug_assert!(!sg.queued.get());
        sg.next.set(ptr::null());
        sg.prev.set(self.tail);
        if self.tail.is_null() {
            self.head = sg;
        } else {
            // SAFETY: a linked sudog is alive (enqueue's contract).
            unsafe { &*self.tail }.next.set(sg);
        }
        self.tail = sg;
        sg.queued.set(true);
    }

    /// Unlinks `sg` if this queue links it.
    pub(crate) fn remove(&mut self, sg: &Sudog<T>) {
        if !sg.queued.get() {
            return;
        }
        let (prev, next) = (sg.prev.get(), sg.next.get());
        if prev.is_null() {
            self.head = next;
        } else {
            // SAFETY: linked sudogs are alive.
            unsafe { &*prev }.next.set(next);
        }
        if next.is_null() {
            self.tail = prev;
        } else {
            // SAFETY: as above.
            unsafe { &*next }.prev.set(prev);
        }
        sg.prev.set(ptr::null());
        sg.next.set(ptr::null());
        sg.queued.set(false);
    }

    /// Unlinks and returns the first sudog whose waiter this call could
    /// claim; sudogs whose select already completed elsewhere are unlinked
    /// and skipped (Go's dequeue and its `selectDone` check).
    /// The pointer stays valid until the caller wakes the sudog's waiter.
    pub(crate) fn dequeue(&mut self) -> Option<*const Sudog<T>> {
        while !self.head.is_null() {
            // SAFETY: linked sudogs are alive until unlinked; the caller
            // holds the channel lock, so none leaves while we look, and a
            // claimed one stays until its owner is woken.
            let sg = unsafe { &*self.head };
            // Unlink the head (`remove`, knowing it has no predecessor).
            let next = sg.next.get();
            self.head = next;
            if next.is_null() {
                self.tail = ptr::null();
            } else {
                // SAFETY: linked sudogs are alive.
                unsafe { &*next }.prev.set(ptr::null());
            }
            sg.next.set(ptr::null());
            sg.queued.set(false);
            if sg.waiter().try_claim(sg.case) {
                return Some(sg);
            }
        }
        None
    }

    /// Whether a sudog of a waiter other than `except` is queued and still
    /// claimable (a peek under the lock: `dequeue` would find one unless
    /// its waiter is claimed through another channel meanwhile).
    pub(crate) fn has_live(&self, except: *const Waiter) -> bool {
        let mut p = self.head;
        while !p.is_null() {
            // SAFETY: linked sudogs are alive; the caller holds the lock.
            let sg = unsafe { &*p };
            if !std::ptr::eq(sg.waiter, except) && sg.waiter().claimed().is_none() {
                return true;
            }
            p = sg.next.get();
        }
        false
    }
}
