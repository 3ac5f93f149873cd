//! Channels: Go's `chan T`, with a Rust-shaped API (crossbeam-channel's).
//!
//! ```
//! use gort::chan;
//!
//! gort::run(|| {
//!     let (tx, rx) = chan::bounded::<u32>(0); // unbuffered, like make(chan uint32)
//!     let producer = gort::go!(move || {
//!         for i in 0..5 {
//!             tx.send(i).unwrap();
//!         }
//!         // dropping the last Sender closes the channel
//!     });
//!     let got: Vec<u32> = rx.iter().collect(); // for v := range ch
//!     assert_eq!(got, [0, 1, 2, 3, 4]);
//!     producer.join().unwrap();
//! });
//! ```
//!
//! # How it works (Go's hchan)
//! A channel is a buffer (`cap` values; none for a rendezvous channel,
//! unlimited for [`unbounded`]), a queue of blocked receivers and one of
//! blocked senders (sudogs, see `waitq.rs`), and a closed flag, under one
//! lock. A send first hands its value straight to a blocked receiver, else
//! buffers it, else blocks; a receive first takes from a blocked sender
//! (for a buffered channel: the buffer's head, and the sender's value goes
//! to the tail), else from the buffer, else blocks. A blocked operation is
//! completed by its counterpart, which moves the value through the sudog
//! and wakes the owner after releasing the lock: no lock is held while
//! anyone is parked, and a coroutine woken by a coroutine runs next on the
//! waker's P (`goready`), so a ping-pong pair stays on one P.
//!
//! # Channel states
//! ```text
//!   open ──Sender::close / last Sender dropped──▶ closed: sends fail (value
//!    │                                            returned), receives drain
//!    │                                            the buffer, then fail
//!    └──last Receiver dropped──▶ disconnected: sends fail (value returned),
//!                                buffered values are dropped
//! ```
//! Closing wakes every blocked receiver (they fail) and every blocked
//! sender (they get their value back).
//!
//! Channels work from coroutines (the coroutine parks) and plain threads
//! (the thread blocks), mixed freely on one channel.
//!
//! # Code size
//! [`Sender::send`], [`Receiver::recv`] and the receiving iterators are
//! inlined whole into their caller (about 2 KB of code per call site, a
//! quarter of it on the path that runs): a coroutine that parks then
//! switches in the caller's own function and resumes without a return the
//! CPU would mispredict, which made a ping-pong ~1.4x slower (see "The
//! switch in the caller's frame" in the scheduler's module comment). The
//! other operations (`try_*`, the timed ones, `select!`) are not.

mod select;
mod waitq;

use std::{
    collections::VecDeque,
    fmt,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

#[doc(hidden)]
pub use self::select::{
    Case, RecvCase, Registered, SelectResult, SelectWaiter, SendCase,
    deadline_after as __deadline_after, select_cases,
};
use self::waitq::{Sudog, WaitQ};
use crate::{
    lock::{Lock, LockGuard},
    sched::g::WaitReason,
    time::deadline_after,
    waiter::{TIMEOUT, Waiter},
};

// ---------------------------------------------------------------------
// Errors

/// A send failed because the channel is closed (or every receiver is
/// gone); the value comes back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub struct SendError<T>(pub T);

/// Why [`Sender::try_send`] failed; the value comes back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum TrySendError<T> {
    /// The buffer is full and no receiver is waiting.
    Full(T),
    /// The channel is closed, or every receiver is gone.
    Closed(T),
}

/// Why [`Sender::send_timeout`] failed; the value comes back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum SendTimeoutError<T> {
    /// The deadline passed first.
    Timeout(T),
    /// The channel is closed, or every receiver is gone.
    Closed(T),
}

/// A receive failed because the channel is closed and empty.
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub struct RecvError;

/// Why [`Receiver::try_recv`] failed.
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub enum TryRecvError {
    /// Nothing to receive now.
    Empty,
    /// The channel is closed and empty.
    Closed,
}

/// Why [`Receiver::recv_timeout`] failed.
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub enum RecvTimeoutError {
    /// The deadline passed first.
    Timeout,
    /// The channel is closed and empty.
    Closed,
}

impl<T> SendError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> TrySendError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(v) | TrySendError::Closed(v) => v,
        }
    }
}

impl<T> SendTimeoutError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            SendTimeoutError::Timeout(v) | SendTimeoutError::Closed(v) => v,
        }
    }
}

macro_rules! error_impls {
    ($ty:ident $(<$g:ident>)?, $($pat:pat => $msg:literal),+) => {
        impl$(<$g>)? fmt::Display for $ty$(<$g>)? {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                #[allow(unused_variables)]
                let m = match self { $($pat => $msg),+ };
                f.write_str(m)
            }
        }
        impl$(<$g: Send>)? std::error::Error for $ty$(<$g>)? {}
    };
}

error_impls!(SendError<T>, SendError(_) => "sending on a closed channel");
error_impls!(TrySendError<T>,
    TrySendError::Full(_) => "sending on a full channel",
    TrySendError::Closed(_) => "sending on a closed channel");
error_impls!(SendTimeoutError<T>,
    SendTimeoutError::Timeout(_) => "timed out sending on a channel",
    SendTimeoutError::Closed(_) => "sending on a closed channel");
error_impls!(RecvError, RecvError => "receiving on a closed and empty channel");
error_impls!(TryRecvError,
    TryRecvError::Empty => "receiving on an empty channel",
    TryRecvError::Closed => "receiving on a closed and empty channel");
error_impls!(RecvTimeoutError,
    RecvTimeoutError::Timeout => "timed out receiving on a channel",
    RecvTimeoutError::Closed => "receiving on a closed and empty channel");

// The Debug of the value-carrying errors does not require T: Debug (the
// value is usually not what the reader wants), as std's and crossbeam's.
impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}
impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}
impl<T> fmt::Debug for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str("Timeout(..)"),
            SendTimeoutError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

// ---------------------------------------------------------------------
// The channel

pub(crate) struct State<T> {
    buf: VecDeque<T>,
    /// Closed by a sender: receivers drain, then fail.
    closed: bool,
    /// Every receiver is gone: sends fail.
    disconnected: bool,
    recvq: WaitQ<T>,
    sendq: WaitQ<T>,
}

// SAFETY: the queues hold pointers to sudogs of waiting coroutines and
// threads, which are only dereferenced under the lock this state lives in;
// the values are T: Send.
unsafe impl<T: Send> Send for State<T> {}

pub(crate) struct Chan<T> {
    state: Lock<State<T>>,
    /// Buffer capacity; `usize::MAX` for unbounded.
    cap: usize,
    senders: AtomicUsize,
    receivers: AtomicUsize,
}

/// What an attempt under the lock came to.
pub(crate) enum Attempt<R, V> {
    /// Done: the result, and the counterpart to wake after unlocking.
    Done(R, Option<*const Waiter>),
    /// Closed (a send gets its value back).
    Closed(V),
    /// Must wait (a send keeps its value).
    Blocked(V),
}

/// Wakes the counterpart an operation completed, after the lock is gone.
#[inline]
fn wake(w: Option<*const Waiter>) {
    if let Some(w) = w {
        // SAFETY: the attempt claimed this waiter; it cannot go away before
        // this wake, which is the one wake for that claim.
        unsafe { (*w).wake(true) };
    }
}

impl<T> Chan<T> {
    fn new(cap: usize) -> Chan<T> {
        Chan {
            state: Lock::new(State {
                buf: VecDeque::with_capacity(if cap == usize::MAX { 0 } else { cap.min(1024) }),
                closed: false,
                disconnected: false,
                recvq: WaitQ::default(),
                sendq: WaitQ::default(),
            }),
            cap,
            senders: AtomicUsize::new(1),
            receivers: AtomicUsize::new(1),
        }
    }

    #[inline]
    pub(crate) fn lock(&self) -> LockGuard<'_, State<T>> {
        self.state.lock()
    }

    /// Tries to send `v` with the lock held.
    #[inline(always)]
    pub(crate) fn try_send_locked(&self, st: &mut State<T>, v: T) -> Attempt<(), T> {
        if st.closed || st.disconnected {
            return Attempt::Closed(v);
        }
        if let Some(sg) = st.recvq.dequeue() {
            // SAFETY: dequeue claimed the sudog: its owner waits for our
            // wake and nobody else writes its slot.
            let sg = unsafe { &*sg };
            // SAFETY: as above.
            unsafe { *sg.slot.get() = Some(v) };
            sg.success.set(true);
            return Attempt::Done((), Some(sg.waiter));
        }
        if st.buf.len() < self.cap {
            st.buf.push_back(v);
            return Attempt::Done((), None);
        }
        Attempt::Blocked(v)
    }

    /// Tries to receive with the lock held.
    #[inline(always)]
    pub(crate) fn try_recv_locked(&self, st: &mut State<T>) -> Attempt<T, ()> {
        if let Some(sg) = st.sendq.dequeue() {
            // SAFETY: claimed by dequeue, as in try_send_locked.
            let sg = unsafe { &*sg };
            // SAFETY: as above: the sender's value is ours to take.
            let sent = unsafe { (*sg.slot.get()).take() }.expect("a blocked sender holds a value");
            sg.success.set(true);
            // A blocked sender on a buffered channel means the buffer is
            // full: take its head, and the sender's value goes to the tail.
            let v = match st.buf.pop_front() {
                Some(head) => {
                    st.buf.push_back(sent);
                    head
                }
                None => sent,
            };
            return Attempt::Done(v, Some(sg.waiter));
        }
        if let Some(v) = st.buf.pop_front() {
            return Attempt::Done(v, None);
        }
        if st.closed {
            return Attempt::Closed(());
        }
        Attempt::Blocked(())
    }

    /// Queues `sg` as a blocked receiver (`send == false`) or sender.
    ///
    /// # Safety
    /// `sg` stays put until it is unlinked: its owner waits for the wake or
    /// calls [`Chan::unlink`] before it leaves.
    pub(crate) unsafe fn enqueue(&self, st: &mut State<T>, sg: &Sudog<T>, send: bool) {
        let q = if send { &mut st.sendq } else { &mut st.recvq };
        // SAFETY: forwarded from this function's contract.
        unsafe { q.enqueue(sg) };
    }

    /// Unlinks `sg` if still queued (after a timeout, a lost select case,
    /// or an unwind).
    pub(crate) fn unlink(&self, sg: &Sudog<T>, send: bool) {
        let mut st = self.lock();
        if send {
            st.sendq.remove(sg);
        } else {
            st.recvq.remove(sg);
        }
    }

    /// Closes for senders (Go's close); false if it was closed already.
    fn close(&self) -> bool {
        let mut st = self.lock();
        if st.closed {
            return false;
        }
        st.closed = true;
        let woken = fail_waiters(&mut st);
        drop(st);
        woken.into_iter().for_each(|w| wake(Some(w)));
        true
    }

    /// The last receiver left: fail the senders, drop the buffer.
    fn disconnect(&self) {
        let mut st = self.lock();
        st.disconnected = true;
        let woken = fail_waiters(&mut st);
        let buf = std::mem::take(&mut st.buf);
        drop(st);
        woken.into_iter().for_each(|w| wake(Some(w)));
        drop(buf);
    }

    /// A blocking send, until `deadline` if given.
    #[inline(always)]
    fn send(&self, v: T, deadline: Option<Instant>) -> Result<(), SendTimeoutError<T>> {
        let mut st = self.lock();
        let v = match self.try_send_locked(&mut st, v) {
            Attempt::Done((), w) => {
                drop(st);
                wake(w);
                return Ok(());
            }
            Attempt::Closed(v) => return Err(SendTimeoutError::Closed(v)),
            Attempt::Blocked(v) => v,
        };
        if deadline.is_some_and(|d| d <= Instant::now()) {
            return Err(SendTimeoutError::Timeout(v));
        }
        let (timed_out, success, v) = self.block(st, Some(v), true, deadline);
        match (timed_out, success) {
            (true, _) => Err(SendTimeoutError::Timeout(v.expect("an unsent value stays"))),
            (false, true) => Ok(()),
            (false, false) => Err(SendTimeoutError::Closed(v.expect("an unsent value stays"))),
        }
    }

    /// A blocking receive, until `deadline` if given.
    #[inline(always)]
    fn recv(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let mut st = self.lock();
        match self.try_recv_locked(&mut st) {
            Attempt::Done(v, w) => {
                drop(st);
                wake(w);
                return Ok(v);
            }
            Attempt::Closed(()) => return Err(RecvTimeoutError::Closed),
            Attempt::Blocked(()) => {}
        }
        if deadline.is_some_and(|d| d <= Instant::now()) {
            return Err(RecvTimeoutError::Timeout);
        }
        let (timed_out, success, v) = self.block(st, None, false, deadline);
        match (timed_out, success) {
            (true, _) => Err(RecvTimeoutError::Timeout),
            (false, true) => Ok(v.expect("a completed receive has its value")),
            (false, false) => Err(RecvTimeoutError::Closed),
        }
    }

    /// Queues a sudog holding `slot`, unlocks and waits until a
    /// counterpart completes it, close wakes it, or `deadline` passes.
    /// Returns (timed out, completed, what the slot holds then).
    #[inline(always)]
    fn block(
        &self,
        mut st: LockGuard<'_, State<T>>,
        slot: Option<T>,
        send: bool,
        deadline: Option<Instant>,
    ) -> (bool, bool, Option<T>) {
        match deadline {
            None => {
                let w = Waiter::new_locked();
                let sg = Sudog::new(&w, 0, slot);
                // SAFETY: `sg` stays in this frame until the guard below has
                // made sure it is unlinked.
                unsafe { self.enqueue(&mut st, &sg, send) };
                let guard = Unlinker {
                    chan: self,
                    sg: &sg,
                    send,
                };
                // The lock goes with the park (Go's chanparkcommit).
                w.wait_locked(st, WaitReason::Chan);
                std::mem::forget(guard); // a waker claimed and unlinked it
                let success = sg.success.get();
                // A completed send's slot is empty (the receiver took the
                // value a moment ago, on this core): not reading it back
                // saves a load that spans the receiver's fresh, narrower
                // store, which cannot be store-forwarded (a quarter of
                // `block`'s samples in a 1-P ping-pong, perf).
                let slot = if send && success {
                    None
                } else {
                    sg.slot.into_inner()
                };
                (false, success, slot)
            }
            Some(d) => {
                let w = Arc::new(Waiter::new());
                let sg = Sudog::new(Arc::as_ptr(&w), 0, slot);
                // SAFETY: as above.
                unsafe { self.enqueue(&mut st, &sg, send) };
                drop(st);
                let guard = Unlinker {
                    chan: self,
                    sg: &sg,
                    send,
                };
                let claim = Waiter::wait_deadline(&w, d, WaitReason::Chan);
                drop(guard); // unlinks after a timeout; a no-op otherwise
                (claim == TIMEOUT, sg.success.get(), sg.slot.into_inner())
            }
        }
    }
}

/// Claims every waiter of both queues and marks it failed; returns the
/// waiters to wake once the lock is released.
fn fail_waiters<T>(st: &mut State<T>) -> Vec<*const Waiter> {
    let mut woken = Vec::new();
    for q in [&mut st.recvq, &mut st.sendq] {
        while let Some(sg) = q.dequeue() {
            // SAFETY: claimed by dequeue; success is read by its owner
            // after the wake.
            let sg = unsafe { &*sg };
            sg.success.set(false);
            woken.push(sg.waiter);
        }
    }
    woken
}

/// Unlinks a sudog when its wait ends without a waker having unlinked it:
/// a timeout, or a forced unwind at runtime teardown.
pub(crate) struct Unlinker<'a, T> {
    pub(crate) chan: &'a Chan<T>,
    pub(crate) sg: &'a Sudog<T>,
    pub(crate) send: bool,
}

impl<T> Drop for Unlinker<'_, T> {
    fn drop(&mut self) {
        let unwinding = std::thread::panicking();
        if unwinding {
            self.sg.waiter().abandon();
        }
        self.chan.unlink(self.sg, self.send);
        if unwinding {
            self.sg.waiter().quiesce();
        }
    }
}

// ---------------------------------------------------------------------
// The handles

/// Creates a channel holding up to `cap` values; `cap == 0` is Go's
/// unbuffered channel, where a send completes only when a receiver has
/// taken the value.
pub fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan::new(cap.min(usize::MAX - 1)));
    (Sender { chan: chan.clone() }, Receiver { chan })
}

/// Creates a channel with an unlimited buffer: sends never block.
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan::new(usize::MAX));
    (Sender { chan: chan.clone() }, Receiver { chan })
}

/// The sending half of a channel. Clone it for more producers; the
/// channel closes when [`close`](Sender::close) is called or the last
/// sender is dropped.
pub struct Sender<T> {
    pub(crate) chan: Arc<Chan<T>>,
}

/// The receiving half of a channel. Clone it for more consumers; iterate it
/// to receive until the channel is closed and drained.
pub struct Receiver<T> {
    pub(crate) chan: Arc<Chan<T>>,
}

/// Length, capacity and state, shared by both halves.
macro_rules! common_methods {
    () => {
        /// Values buffered now.
        pub fn len(&self) -> usize {
            self.chan.lock().buf.len()
        }

        /// Whether no value is buffered now.
        pub fn is_empty(&self) -> bool {
            self.len() == 0
        }

        /// The buffer's capacity; `None` for an unbounded channel.
        pub fn capacity(&self) -> Option<usize> {
            (self.chan.cap != usize::MAX).then_some(self.chan.cap)
        }

        /// Whether the channel was closed by a sender.
        pub fn is_closed(&self) -> bool {
            self.chan.lock().closed
        }
    };
}

impl<T> Sender<T> {
    /// Sends `v`, blocking while the buffer is full (for an unbuffered
    /// channel: until a receiver takes it). Fails with the value if the
    /// channel is closed or every receiver is gone.
    #[inline(always)]
    pub fn send(&self, v: T) -> Result<(), SendError<T>> {
        self.chan
            .send(v, None)
            .map_err(|e| SendError(e.into_inner()))
    }

    /// Sends `v` if that can be done without blocking.
    pub fn try_send(&self, v: T) -> Result<(), TrySendError<T>> {
        let mut st = self.chan.lock();
        match self.chan.try_send_locked(&mut st, v) {
            Attempt::Done((), w) => {
                drop(st);
                wake(w);
                Ok(())
            }
            Attempt::Closed(v) => Err(TrySendError::Closed(v)),
            Attempt::Blocked(v) => Err(TrySendError::Full(v)),
        }
    }

    /// Sends `v`, blocking for at most `timeout`.
    pub fn send_timeout(&self, v: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.chan.send(v, Some(deadline_after(timeout)))
    }

    /// Sends `v`, blocking until `deadline` at most.
    pub fn send_deadline(&self, v: T, deadline: Instant) -> Result<(), SendTimeoutError<T>> {
        self.chan.send(v, Some(deadline))
    }

    /// Closes the channel (Go's `close(ch)`): receivers drain what is
    /// buffered, then fail; blocked and later sends fail with their value.
    /// Returns false if it was closed already (Go panics there).
    pub fn close(&self) -> bool {
        self.chan.close()
    }

    common_methods!();

    /// Whether both handles belong to the same channel.
    pub fn same_channel(&self, other: &Sender<T>) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }
}

impl<T> Receiver<T> {
    /// Receives a value, blocking until one is there; fails once the
    /// channel is closed and drained.
    #[inline(always)]
    pub fn recv(&self) -> Result<T, RecvError> {
        self.chan.recv(None).map_err(|_| RecvError)
    }

    /// Receives a value if one is there now.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut st = self.chan.lock();
        match self.chan.try_recv_locked(&mut st) {
            Attempt::Done(v, w) => {
                drop(st);
                wake(w);
                Ok(v)
            }
            Attempt::Closed(()) => Err(TryRecvError::Closed),
            Attempt::Blocked(()) => Err(TryRecvError::Empty),
        }
    }

    /// Receives a value, blocking for at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.chan.recv(Some(deadline_after(timeout)))
    }

    /// Receives a value, blocking until `deadline` at most.
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.chan.recv(Some(deadline))
    }

    /// A blocking iterator: yields values until the channel is closed and
    /// drained.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// A non-blocking iterator over the values there now.
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }

    common_methods!();

    /// Whether both handles belong to the same channel.
    pub fn same_channel(&self, other: &Receiver<T>) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.senders.fetch_add(1, Ordering::Relaxed);
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.chan.receivers.fetch_add(1, Ordering::Relaxed);
        Receiver {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.chan.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.chan.close();
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        if self.chan.receivers.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.chan.disconnect();
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .finish()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .finish()
    }
}

/// Blocking iterator of a [`Receiver`] (see [`Receiver::iter`]).
#[derive(Debug)]
pub struct Iter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    #[inline(always)]
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

/// Non-blocking iterator of a [`Receiver`] (see [`Receiver::try_iter`]).
#[derive(Debug)]
pub struct TryIter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

/// Owning blocking iterator (`for v in rx`).
#[derive(Debug)]
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;
    #[inline(always)]
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}
