//! pollDesc: the two readiness semaphores of a descriptor, `rg` (read) and
//! `wg` (write), through which a G parks for I/O and the poller wakes it.
//!
//! # States of `rg` / `wg` (one word each; every transition is a CAS)
//! ```text
//!            wait: CAS NIL→WAIT           commit (on g0): CAS WAIT→G
//!   NIL ───────────────────────▶ WAIT ─────────────────────────────▶ G
//!    ▲ ▲                          │ unblock(ioready): WAIT→READY      │ unblock: G→READY/NIL,
//!    │ │                          │   (commit then fails, the G       │   G returned to be readied
//!    │ │                          │    does not park)                 │
//!    │ └── wait wakes: swap →NIL ─┴───────────────────────────────────┘
//!    │
//!    └── wait: CAS READY→NIL (readiness consumed, no park) ◀── READY ◀── unblock(ioready) on NIL
//! ```
//! - `NIL`: nothing pending, nobody waiting.
//! - `READY`: readiness arrived and was not consumed yet.
//! - `WAIT`: a G is about to park (set on the G, before gopark).
//! - a G pointer: that G is parked here; only `unblock` may take it.
//!
//! A G parked here that is unwound instead of woken (runtime teardown, when
//! no M polls any more) puts its slot back to `NIL` on the way out.
//!
//! # Deadlines and reuse
//! Each direction has a sequence number, bumped by every `set_deadline`
//! and when the descriptor goes back to the pollcache. A deadline timer
//! carries the sequence it was armed with and does nothing unless it still
//! matches (Go's `rseq`/`wseq`); deadline changes and firings serialise on
//! `lock`. `fdseq` is bumped on every reuse: the poller's token carries it,
//! so an event for an earlier owner of this descriptor is ignored.
//!
//! # Read side closed
//! `read_closed` is sticky until reuse: the poller sets it, before waking
//! the reader, when an event says the peer will send nothing more (it shut
//! down or reset, or an error is pending). After a short read a stream
//! reader parks before reading again (`PollFd::read_stream`): that is only
//! safe while no hang-up edge may have been consumed already, which is
//! what this flag tells it.
//!
//! `unblock(ioready = false)` (close, deadline) never creates `READY`: the
//! waiter wakes to `NIL` and then reads the error state. Errors (`closing`,
//! an expired deadline) are re-checked *after* the CAS to `WAIT`: the error
//! store and the unblock load, and our CAS and error load, are SeqCst pairs
//! (Go's "full memory barrier between store to closing and read of rg/wg"),
//! so either `unblock` sees our `WAIT` or we see its error.

use std::sync::{
    Mutex,
    atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
};

use crate::sched::{
    g::{GRef, WaitReason},
    park::gopark,
};

const PD_NIL: usize = 0;
const PD_READY: usize = 1;
const PD_WAIT: usize = 2;

/// Which semaphore.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Read,
    Write,
}

/// Why a wait ended without readiness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WaitError {
    /// The descriptor is being closed.
    Closing,
    /// The direction's deadline has passed.
    TimedOut,
}

/// The readiness state of one descriptor.
#[derive(Debug, Default)]
pub(crate) struct PollDesc {
    rg: AtomicUsize,
    wg: AtomicUsize,
    closing: AtomicBool,
    read_expired: AtomicBool,
    write_expired: AtomicBool,
    /// The peer sends nothing more (see the module comment).
    read_closed: AtomicBool,
    /// Deadline sequence numbers (see the module comment).
    rseq: AtomicU64,
    wseq: AtomicU64,
    /// Reuse counter, carried in the poller's token.
    pub(crate) fdseq: AtomicU64,
    /// Serialises deadline changes with deadline timers firing.
    lock: Mutex<()>,
}

impl PollDesc {
    fn slot(&self, mode: Mode) -> &AtomicUsize {
        match mode {
            Mode::Read => &self.rg,
            Mode::Write => &self.wg,
        }
    }

    fn seq(&self, mode: Mode) -> &AtomicU64 {
        match mode {
            Mode::Read => &self.rseq,
            Mode::Write => &self.wseq,
        }
    }

    fn expired(&self, mode: Mode) -> &AtomicBool {
        match mode {
            Mode::Read => &self.read_expired,
            Mode::Write => &self.write_expired,
        }
    }

    /// Go's netpollcheckerr.
    fn check(&self, mode: Mode) -> Result<(), WaitError> {
        // SeqCst: pairs with the SeqCst stores of `close`/`expire` (see the
        // module comment).
        if self.closing.load(Ordering::SeqCst) {
            return Err(WaitError::Closing);
        }
        if self.expired(mode).load(Ordering::SeqCst) {
            return Err(WaitError::TimedOut);
        }
        Ok(())
    }

    /// Parks the calling G until `mode` is ready (Go's pollWait loop around
    /// netpollblock); returns at once if readiness is pending. Must run on
    /// a coroutine. `waiters` counts Gs parked on any descriptor of the
    /// poller (Go's netpollWaiters).
    pub(crate) fn wait(&self, mode: Mode, waiters: &AtomicUsize) -> Result<(), WaitError> {
        self.check(mode)?;
        while !self.block(mode, waiters) {
            self.check(mode)?;
        }
        Ok(())
    }

    /// Whether `mode` is ready or failed without waiting (for callers that
    /// cannot park): consumes pending readiness.
    pub(crate) fn check_error(&self, mode: Mode) -> Result<(), WaitError> {
        self.check(mode)
    }

    /// One netpollblock: true if readiness was consumed, false if woken by
    /// an error (or to re-check one).
    fn block(&self, mode: Mode, waiters: &AtomicUsize) -> bool {
        let gpp = self.slot(mode);
        loop {
            // SeqCst: the CAS to WAIT pairs with the error stores (above).
            match gpp.load(Ordering::SeqCst) {
                PD_READY => {
                    if gpp
                        .compare_exchange(PD_READY, PD_NIL, Ordering::SeqCst, Ordering::SeqCst)
                        .is_ok()
                    {
                        return true;
                    }
                }
                PD_NIL => {
                    if gpp
                        .compare_exchange(PD_NIL, PD_WAIT, Ordering::SeqCst, Ordering::SeqCst)
                        .is_ok()
                    {
                        break;
                    }
                }
                _ => crate::util::fatal("runtime: double wait on a poll descriptor"),
            }
        }
        if self.check(mode).is_ok() {
            /// Puts the slot back if the G is unwound while parked.
            struct Unpark<'a>(&'a AtomicUsize);
            impl Drop for Unpark<'_> {
                fn drop(&mut self) {
                    self.0.store(PD_NIL, Ordering::SeqCst);
                }
            }
            let guard = Unpark(gpp);
            waiters.fetch_add(1, Ordering::SeqCst);
            // netpollblockcommit: publish this G unless readiness (or an
            // error) arrived since the CAS to WAIT.
            // SAFETY: the callback only CASes the slot, which lives in the
            // PollDesc (not on our stack), and touches nothing after.
            unsafe {
                gopark(
                    |g: GRef| {
                        gpp.compare_exchange(
                            PD_WAIT,
                            g.as_ptr() as usize,
                            Ordering::SeqCst,
                            Ordering::SeqCst,
                        )
                        .is_ok()
                    },
                    WaitReason::Io,
                )
            };
            waiters.fetch_sub(1, Ordering::SeqCst);
            std::mem::forget(guard);
        }
        let old = gpp.swap(PD_NIL, Ordering::SeqCst);
        if old > PD_WAIT {
            crate::util::fatal("runtime: corrupted poll descriptor");
        }
        old == PD_READY
    }

    /// Go's netpollunblock: records readiness (`ioready`) or wakes a waiter
    /// for an error; returns the parked G, if any, for the caller to ready.
    #[must_use]
    pub(crate) fn unblock(&self, mode: Mode, ioready: bool) -> Option<GRef> {
        let gpp = self.slot(mode);
        loop {
            let old = gpp.load(Ordering::SeqCst);
            if old == PD_READY || (old == PD_NIL && !ioready) {
                return None;
            }
            let new = if ioready { PD_READY } else { PD_NIL };
            if gpp
                .compare_exchange(old, new, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                if old == PD_WAIT || old == PD_NIL {
                    return None;
                }
                // SAFETY: a value above PD_WAIT is the pointer of the G that
                // committed its park here; our CAS took it, so we own it.
                return Some(unsafe { GRef::from_ptr(old as *mut _) });
            }
        }
    }

    /// Marks the descriptor closing and wakes both waiters (Go's
    /// pollUnblock); returns the Gs to ready.
    pub(crate) fn close(&self) -> (Option<GRef>, Option<GRef>) {
        self.closing.store(true, Ordering::SeqCst);
        (
            self.unblock(Mode::Read, false),
            self.unblock(Mode::Write, false),
        )
    }

    /// Records a hang-up event (see the module comment); called by the
    /// poller before it unblocks the reader.
    pub(crate) fn set_read_closed(&self) {
        // SeqCst: a reader that does not see it yet is woken by the unblock
        // that follows (its CAS to WAIT and our CAS are in one order).
        self.read_closed.store(true, Ordering::SeqCst);
    }

    /// Whether a hang-up event was seen since the descriptor was opened.
    pub(crate) fn read_closed(&self) -> bool {
        self.read_closed.load(Ordering::SeqCst)
    }

    /// Marks a direction's deadline as passed and wakes its waiter.
    pub(crate) fn expire(&self, mode: Mode) -> Option<GRef> {
        self.expired(mode).store(true, Ordering::SeqCst);
        self.unblock(mode, false)
    }

    /// Go's pollSetDeadline for one direction. `when` and `now` are in the
    /// runtime's nanoseconds; `None` clears. Returns the waiter to wake (a
    /// deadline already past) and the timer to arm, as `(when, seq)`.
    pub(crate) fn set_deadline(
        &self,
        mode: Mode,
        when: Option<u64>,
        now: u64,
    ) -> (Option<GRef>, Option<(u64, u64)>) {
        let _l = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let seq = self.seq(mode).fetch_add(1, Ordering::SeqCst) + 1;
        self.expired(mode).store(false, Ordering::SeqCst);
        match when {
            None => (None, None),
            Some(w) if w <= now => (self.expire(mode), None),
            Some(w) => (None, Some((w, seq))),
        }
    }

    /// The sequence a deadline timer of `mode` must carry to be current.
    pub(crate) fn deadline_seq(&self, mode: Mode) -> u64 {
        self.seq(mode).load(Ordering::Acquire)
    }

    /// A deadline timer armed with `seq` fired: expires the direction if
    /// the deadline was not moved since. Returns the waiter to wake.
    pub(crate) fn deadline_fired(&self, mode: Mode, seq: u64) -> Option<GRef> {
        let _l = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if self.seq(mode).load(Ordering::SeqCst) != seq {
            return None;
        }
        self.expire(mode)
    }

    /// Makes a descriptor from the pollcache fresh for its next owner;
    /// earlier events and deadline timers no longer match it.
    pub(crate) fn reset(&self) {
        let _l = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.fdseq.fetch_add(1, Ordering::SeqCst);
        self.rseq.fetch_add(1, Ordering::SeqCst);
        self.wseq.fetch_add(1, Ordering::SeqCst);
        self.closing.store(false, Ordering::SeqCst);
        self.read_expired.store(false, Ordering::SeqCst);
        self.write_expired.store(false, Ordering::SeqCst);
        self.read_closed.store(false, Ordering::SeqCst);
        self.rg.store(PD_NIL, Ordering::SeqCst);
        self.wg.store(PD_NIL, Ordering::SeqCst);
    }
}
