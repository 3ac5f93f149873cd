//! `select!`: wait on several channel operations, run the first that can
//! complete (Go's selectgo).
//!
//! # Algorithm
//! 1. **Poll**: visit the cases in a random order and complete the first
//!    that can go now; with a `default` arm, stop there. The random order
//!    makes every ready case equally likely (Go).
//! 2. **Register**: one [`Waiter`] for the whole select; visit the cases
//!    again, each under its channel's lock: a case that can complete now
//!    claims the waiter for itself (then completes, and the select ends);
//!    otherwise its sudog is queued on the channel. Registration is one
//!    channel at a time, so a counterpart may claim the waiter for an
//!    already-queued case meanwhile: the claim is the single decision
//!    (Go's `selectDone`), whoever makes it.
//! 3. **Wait** until a counterpart claimed a case and completed it through
//!    that case's sudog (or the `after` deadline claimed the waiter).
//! 4. **Withdraw**: unlink the sudogs of every other case, each under its
//!    channel's lock. A counterpart that met one of them before that found
//!    the waiter claimed and skipped it, so no value is delivered twice and
//!    none is lost.
//!
//! One race is retried rather than resolved: a case that looked ready
//! under its lock (a queued counterpart whose waiter was unclaimed) may
//! find that counterpart claimed elsewhere once it has claimed its own
//! waiter. Nothing has moved then, so the select withdraws everything and
//! starts over at step 1.

use std::{
    cell::Cell,
    sync::Arc,
    time::{Duration, Instant},
};

use super::{Attempt, Receiver, RecvError, SendError, Sender, waitq::Sudog, wake};
use crate::{
    sched::g::WaitReason,
    waiter::{TIMEOUT, Waiter},
};

/// The waiter of a blocked select, as its cases see it (opaque).
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct SelectWaiter(*const Waiter);

/// What registering a case came to.
#[doc(hidden)]
#[derive(Debug, PartialEq, Eq)]
pub enum Registered {
    /// Its sudog is queued.
    Queued,
    /// It claimed the waiter and completed.
    Completed,
    /// The waiter was already claimed (by a counterpart of another case).
    Lost,
    /// It claimed the waiter but its counterpart vanished: start over.
    Retry,
}

/// One case of a select. Implemented by [`RecvCase`] and [`SendCase`];
/// the `select!` macro builds them.
#[doc(hidden)]
pub trait Case {
    /// Completes the operation if it can go now (poll pass).
    fn poll(&mut self) -> bool;
    /// Registers on the channel, or completes (see [`Registered`]).
    fn register(&mut self, w: SelectWaiter, case: usize) -> Registered;
    /// Unlinks the sudog if queued (withdrawal, timeout, unwind).
    fn withdraw(&mut self);
    /// Takes the result a counterpart left in the sudog (the waiter was
    /// claimed for this case).
    fn finish(&mut self);
}

/// Which arm of a select ran.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectResult {
    /// The case with this index completed.
    Case(usize),
    /// No case was ready and the select has a default arm.
    Default,
    /// The `after` deadline passed first.
    Timeout,
}

/// A receive case: `recv(rx) -> v`.
#[doc(hidden)]
pub struct RecvCase<'a, T> {
    rx: &'a Receiver<T>,
    sg: Option<Sudog<T>>,
    result: Option<Result<T, RecvError>>,
}

impl<T> std::fmt::Debug for RecvCase<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvCase").finish_non_exhaustive()
    }
}

impl<'a, T> RecvCase<'a, T> {
    /// A receive on `rx`.
    pub fn new(rx: &'a Receiver<T>) -> Self {
        RecvCase {
            rx,
            sg: None,
            result: None,
        }
    }

    /// The outcome, once this case was selected.
    pub fn take(&mut self) -> Result<T, RecvError> {
        self.result.take().expect("the selected case has a result")
    }

    /// Tries the receive with the lock held: `Some(counterpart to wake)`
    /// once it completed (a value, or closed), `None` if it must wait.
    fn attempt(&mut self, st: &mut super::State<T>) -> Option<Option<*const Waiter>> {
        match self.rx.chan.try_recv_locked(st) {
            Attempt::Done(v, w) => {
                self.result = Some(Ok(v));
                Some(w)
            }
            Attempt::Closed(()) => {
                self.result = Some(Err(RecvError));
                Some(None)
            }
            Attempt::Blocked(()) => None,
        }
    }
}

impl<T> Case for RecvCase<'_, T> {
    fn poll(&mut self) -> bool {
        let chan = self.rx.chan.clone();
        let mut st = chan.lock();
        match self.attempt(&mut st) {
            Some(w) => {
                drop(st);
                wake(w);
                true
            }
            None => false,
        }
    }

    fn register(&mut self, w: SelectWaiter, case: usize) -> Registered {
        let chan = self.rx.chan.clone();
        let mut st = chan.lock();
        // SAFETY: the select's waiter outlives its cases' registrations.
        let waiter = unsafe { &*w.0 };
        let ready = !st.buf.is_empty() || st.closed || st.sendq.has_live(w.0);
        if ready {
            if !waiter.try_claim(case) {
                return Registered::Lost;
            }
            return match self.attempt(&mut st) {
                Some(wk) => {
                    drop(st);
                    wake(wk);
                    Registered::Completed
                }
                None => Registered::Retry,
            };
        }
        let sg = self.sg.insert(Sudog::new(w.0, case, None));
        // SAFETY: the sudog lives in this case, which the select borrows
        // mutably (so it cannot move) until it has withdrawn every case.
        unsafe { chan.enqueue(&mut st, sg, false) };
        Registered::Queued
    }

    fn withdraw(&mut self) {
        if let Some(sg) = &self.sg {
            self.rx.chan.unlink(sg, false);
        }
        self.sg = None;
    }

    fn finish(&mut self) {
        let sg = self
            .sg
            .take()
            .expect("a case completed by a counterpart was queued");
        self.result = Some(if sg.success.get() {
            Ok(sg
                .slot
                .into_inner()
                .expect("a completed receive has its value"))
        } else {
            Err(RecvError)
        });
    }
}

/// A send case: `send(tx, value) -> r`.
#[doc(hidden)]
pub struct SendCase<'a, T> {
    tx: &'a Sender<T>,
    value: Option<T>,
    sg: Option<Sudog<T>>,
    result: Option<Result<(), SendError<T>>>,
}

impl<T> std::fmt::Debug for SendCase<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendCase").finish_non_exhaustive()
    }
}

impl<'a, T> SendCase<'a, T> {
    /// A send of `value` on `tx` (the value is dropped if another case
    /// is selected, as Go evaluates and discards it).
    pub fn new(tx: &'a Sender<T>, value: T) -> Self {
        SendCase {
            tx,
            value: Some(value),
            sg: None,
            result: None,
        }
    }

    /// The outcome, once this case was selected.
    pub fn take(&mut self) -> Result<(), SendError<T>> {
        self.result.take().expect("the selected case has a result")
    }

    fn attempt(&mut self, st: &mut super::State<T>) -> Option<Option<*const Waiter>> {
        let v = self
            .value
            .take()
            .expect("a send case holds its value until it runs");
        match self.tx.chan.try_send_locked(st, v) {
            Attempt::Done((), w) => {
                self.result = Some(Ok(()));
                Some(w)
            }
            Attempt::Closed(v) => {
                self.result = Some(Err(SendError(v)));
                Some(None)
            }
            Attempt::Blocked(v) => {
                self.value = Some(v);
                None
            }
        }
    }
}

impl<T> Case for SendCase<'_, T> {
    fn poll(&mut self) -> bool {
        let chan = self.tx.chan.clone();
        let mut st = chan.lock();
        match self.attempt(&mut st) {
            Some(w) => {
                drop(st);
                wake(w);
                true
            }
            None => false,
        }
    }

    fn register(&mut self, w: SelectWaiter, case: usize) -> Registered {
        let chan = self.tx.chan.clone();
        let mut st = chan.lock();
        // SAFETY: the select's waiter outlives its cases' registrations.
        let waiter = unsafe { &*w.0 };
        let ready =
            st.closed || st.disconnected || st.buf.len() < chan.cap || st.recvq.has_live(w.0);
        if ready {
            if !waiter.try_claim(case) {
                return Registered::Lost;
            }
            return match self.attempt(&mut st) {
                Some(wk) => {
                    drop(st);
                    wake(wk);
                    Registered::Completed
                }
                None => Registered::Retry,
            };
        }
        let sg = self.sg.insert(Sudog::new(w.0, case, self.value.take()));
        // SAFETY: as in RecvCase::register.
        unsafe { chan.enqueue(&mut st, sg, true) };
        Registered::Queued
    }

    fn withdraw(&mut self) {
        // Unlink in place first: until the channel lock says otherwise a
        // counterpart may read the sudog, so it must not move (`take`
        // would overwrite it while still linked).
        if let Some(sg) = &self.sg {
            self.tx.chan.unlink(sg, true);
        }
        if let Some(sg) = self.sg.take() {
            // Not sent: the value goes back for a retry.
            self.value = sg.slot.into_inner();
        }
    }

    fn finish(&mut self) {
        let sg = self
            .sg
            .take()
            .expect("a case completed by a counterpart was queued");
        let v = sg.slot.into_inner();
        self.result = Some(if sg.success.get() {
            Ok(())
        } else {
            Err(SendError(v.expect("an unsent value stays")))
        });
    }
}

/// Withdraws every case on drop: the end of a select, normal or unwound.
struct Withdraw<'c, 'a> {
    cases: &'c mut [&'a mut dyn Case],
    waiter: Option<*const Waiter>,
}

impl Drop for Withdraw<'_, '_> {
    fn drop(&mut self) {
        let unwinding = std::thread::panicking().then_some(self.waiter).flatten();
        if let Some(w) = unwinding {
            // SAFETY: the waiter is alive while the select runs.
            unsafe { &*w }.abandon();
        }
        for c in self.cases.iter_mut() {
            c.withdraw();
        }
        if let Some(w) = unwinding {
            // SAFETY: as above.
            unsafe { &*w }.quiesce();
        }
    }
}

/// Runs a select over `cases` (the `select!` macro's engine). With
/// `default`, never blocks; with `deadline`, returns `Timeout` once it
/// passes.
#[doc(hidden)]
pub fn select_cases(
    cases: &mut [&mut dyn Case],
    default: bool,
    deadline: Option<Instant>,
) -> SelectResult {
    let n = cases.len();
    let mut order_buf = [0usize; 32];
    let mut order_vec = Vec::new();
    let order: &mut [usize] = if n <= order_buf.len() {
        &mut order_buf[..n]
    } else {
        order_vec.resize(n, 0);
        &mut order_vec
    };
    loop {
        shuffle(order);
        // 1. poll
        for &i in order.iter() {
            if cases[i].poll() {
                return SelectResult::Case(i);
            }
        }
        if default {
            return SelectResult::Default;
        }
        if n == 0 && deadline.is_none() {
            // Go's empty select blocks forever; a coroutine parks for good.
            block_forever();
        }
        if deadline.is_some_and(|d| d <= Instant::now()) {
            return SelectResult::Timeout;
        }
        // 2. register (a timed select's waiter goes in an Arc its timer
        // shares; an untimed one stays on this stack)
        let shared = deadline.map(|_| Arc::new(Waiter::new()));
        let local = shared.is_none().then(Waiter::new);
        let waiter: &Waiter = match (&shared, &local) {
            (Some(w), _) => w,
            (None, Some(w)) => w,
            (None, None) => unreachable!("one of the two is set"),
        };
        let wp = SelectWaiter(waiter);
        let guard = Withdraw {
            cases: &mut *cases,
            waiter: Some(wp.0),
        };
        let mut retry = false;
        for &i in order.iter() {
            match guard.cases[i].register(wp, i) {
                Registered::Queued => continue,
                // The guard withdraws the other cases.
                Registered::Completed => return SelectResult::Case(i),
                Registered::Lost => {}
                Registered::Retry => retry = true,
            }
            break;
        }
        if retry {
            drop(guard);
            continue;
        }
        // 3. wait
        let claim = match (&shared, deadline) {
            (Some(w), Some(d)) => Waiter::wait_deadline(w, d, WaitReason::Select),
            _ => {
                waiter.wait(WaitReason::Select);
                waiter.claimed().expect("a woken select was claimed")
            }
        };
        // 4. withdraw (the guard, on return)
        if claim == TIMEOUT {
            return SelectResult::Timeout;
        }
        guard.cases[claim].finish();
        return SelectResult::Case(claim);
    }
}

/// An empty select (`select {}`): a coroutine parks forever; a thread
/// sleeps forever.
fn block_forever() -> ! {
    let w = Waiter::new();
    loop {
        w.wait(WaitReason::Select);
    }
}

/// Fisher–Yates over 0..n with a per-thread xorshift.
fn shuffle(order: &mut [usize]) {
    for (i, o) in order.iter_mut().enumerate() {
        *o = i;
    }
    for i in (1..order.len()).rev() {
        let j = (fastrand() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
}

/// A cheap per-thread random number (xorshift64*). Not inlined: a
/// coroutine may move between threads across calls, and the state is
/// per thread anyway.
#[inline(never)]
fn fastrand() -> u64 {
    thread_local! {
        static STATE: Cell<u64> = const { Cell::new(0) };
    }
    STATE.with(|s| {
        let mut x = s.get();
        if x == 0 {
            x = (std::ptr::from_ref(s) as u64) ^ 0x9E37_79B9_7F4A_7C15 ^ nanos_seed();
            x |= 1;
        }
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

fn nanos_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_nanos() as u64
}

/// `now + d`, saturating far in the future (for `after(d)` arms).
#[doc(hidden)]
pub fn deadline_after(d: Duration) -> Instant {
    crate::time::deadline_after(d)
}

/// Waits on several channel operations and runs the arm of the first that
/// completes (Go's `select`).
///
/// ```text
/// gort::select! {
///     recv(rx) -> v => ...,        // v: Result<T, RecvError>
///     send(tx, value) -> r => ..., // r: Result<(), SendError<T>>
///     after(duration) => ...,      // no case completed in time
///     default => ...,              // no case can complete now: never blocks
/// }
/// ```
/// Among cases that can complete at once, one is picked uniformly at
/// random. Without `default`, the select blocks (a coroutine parks; a
/// thread blocks) until a case completes or the `after` duration passes.
/// Channel and value expressions are evaluated once, up front, as in Go; a
/// send case's value is dropped if another case runs. A receive on a
/// closed channel completes at once with `Err(RecvError)`, a send with
/// `Err(SendError(value))`. At most one `default` and one `after`.
///
/// ```
/// use std::time::Duration;
/// use gort::chan;
///
/// gort::run(|| {
///     let (tx, rx) = chan::bounded::<&str>(1);
///     let (_quit_tx, quit) = chan::bounded::<()>(0);
///     tx.send("hello").unwrap();
///     let got = gort::select! {
///         recv(rx) -> v => v.unwrap(),
///         recv(quit) -> _ => "quit",
///         after(Duration::from_secs(1)) => "timeout",
///     };
///     assert_eq!(got, "hello");
///     let idle = gort::select! {
///         recv(rx) -> _ => false,
///         default => true,
///     };
///     assert!(idle);
/// });
/// ```
#[macro_export]
macro_rules! select {
    ($($arms:tt)*) => {
        $crate::__select_munch!(@cases [] @default [] @after [] @rest $($arms)*)
    };
}

/// Parses `select!` arms into a normal form (internal).
#[doc(hidden)]
#[macro_export]
macro_rules! __select_munch {
    // recv(rx) -> v => body
    (@cases [$($c:tt)*] @default $d:tt @after $a:tt
     @rest recv($rx:expr) -> $v:pat => $body:block, $($rest:tt)*) => {
        $crate::__select_munch!(@cases [$($c)* (recv ($rx) ($v) ($body))] @default $d @after $a @rest $($rest)*)
    };
    (@cases [$($c:tt)*] @default $d:tt @after $a:tt
     @rest recv($rx:expr) -> $v:pat => $body:block $($rest:tt)*) => {
        $crate::__select_munch!(@cases [$($c)* (recv ($rx) ($v) ($body))] @default $d @after $a @rest $($rest)*)
    };
    (@cases [$($c:tt)*] @default $d:tt @after $a:tt
     @rest recv($rx:expr) -> $v:pat => $body:expr, $($rest:tt)*) => {
        $crate::__select_munch!(@cases [$($c)* (recv ($rx) ($v) ($body))] @default $d @after $a @rest $($rest)*)
    };
    (@cases [$($c:tt)*] @default $d:tt @after $a:tt
     @rest recv($rx:expr) -> $v:pat => $body:expr) => {
        $crate::__select_munch!(@cases [$($c)* (recv ($rx) ($v) ($body))] @default $d @after $a @rest)
    };
    // send(tx, value) -> r => body
    (@cases [$($c:tt)*] @default $d:tt @after $a:tt
     @rest send($tx:expr, $val:expr) -> $r:pat => $body:block, $($rest:tt)*) => {
        $crate::__select_munch!(@cases [$($c)* (send ($tx, $val) ($r) ($body))] @default $d @after $a @rest $($rest)*)
    };
    (@cases [$($c:tt)*] @default $d:tt @after $a:tt
     @rest send($tx:expr, $val:expr) -> $r:pat => $body:block $($rest:tt)*) => {
        $crate::__select_munch!(@cases [$($c)* (send ($tx, $val) ($r) ($body))] @default $d @after $a @rest $($rest)*)
    };
    (@cases [$($c:tt)*] @default $d:tt @after $a:tt
     @rest send($tx:expr, $val:expr) -> $r:pat => $body:expr, $($rest:tt)*) => {
        $crate::__select_munch!(@cases [$($c)* (send ($tx, $val) ($r) ($body))] @default $d @after $a @rest $($rest)*)
    };
    (@cases [$($c:tt)*] @default $d:tt @after $a:tt
     @rest send($tx:expr, $val:expr) -> $r:pat => $body:expr) => {
        $crate::__select_munch!(@cases [$($c)* (send ($tx, $val) ($r) ($body))] @default $d @after $a @rest)
    };
    // default => body
    (@cases $c:tt @default [] @after $a:tt @rest default => $body:block, $($rest:tt)*) => {
        $crate::__select_munch!(@cases $c @default [($body)] @after $a @rest $($rest)*)
    };
    (@cases $c:tt @default [] @after $a:tt @rest default => $body:block $($rest:tt)*) => {
        $crate::__select_munch!(@cases $c @default [($body)] @after $a @rest $($rest)*)
    };
    (@cases $c:tt @default [] @after $a:tt @rest default => $body:expr, $($rest:tt)*) => {
        $crate::__select_munch!(@cases $c @default [($body)] @after $a @rest $($rest)*)
    };
    (@cases $c:tt @default [] @after $a:tt @rest default => $body:expr) => {
        $crate::__select_munch!(@cases $c @default [($body)] @after $a @rest)
    };
    // after(duration) => body
    (@cases $c:tt @default $d:tt @after [] @rest after($dur:expr) => $body:block, $($rest:tt)*) => {
        $crate::__select_munch!(@cases $c @default $d @after [($dur) ($body)] @rest $($rest)*)
    };
    (@cases $c:tt @default $d:tt @after [] @rest after($dur:expr) => $body:block $($rest:tt)*) => {
        $crate::__select_munch!(@cases $c @default $d @after [($dur) ($body)] @rest $($rest)*)
    };
    (@cases $c:tt @default $d:tt @after [] @rest after($dur:expr) => $body:expr, $($rest:tt)*) => {
        $crate::__select_munch!(@cases $c @default $d @after [($dur) ($body)] @rest $($rest)*)
    };
    (@cases $c:tt @default $d:tt @after [] @rest after($dur:expr) => $body:expr) => {
        $crate::__select_munch!(@cases $c @default $d @after [($dur) ($body)] @rest)
    };
    // done
    (@cases [$($c:tt)*] @default $d:tt @after $a:tt @rest) => {
        $crate::__select_build!(@decl [$($c)*] @done [] @n (0usize) @default $d @after $a)
    };
    (@cases $c:tt @default $d:tt @after $a:tt @rest $($rest:tt)*) => {
        ::core::compile_error!(concat!(
            "select!: cannot parse the arms starting at `", stringify!($($rest)*),
            "` (expected `recv(rx) -> v => ...`, `send(tx, value) -> r => ...`, ",
            "one `after(duration) => ...` and one `default => ...`, separated by commas)"
        ))
    };
}

/// Declares the cases and dispatches on the result (internal).
#[doc(hidden)]
#[macro_export]
macro_rules! __select_build {
    (@decl [(recv ($rx:expr) ($v:pat) ($body:expr)) $($c:tt)*] @done [$($done:tt)*] @n ($n:expr)
     @default $d:tt @after $a:tt) => {{
        let mut __case = $crate::chan::RecvCase::new(&$rx);
        $crate::__select_build!(@decl [$($c)*] @done [$($done)* (__case ($v) ($body) ($n))]
            @n ($n + 1usize) @default $d @after $a)
    }};
    (@decl [(send ($tx:expr, $val:expr) ($r:pat) ($body:expr)) $($c:tt)*] @done [$($done:tt)*] @n ($n:expr)
     @default $d:tt @after $a:tt) => {{
        let mut __case = $crate::chan::SendCase::new(&$tx, $val);
        $crate::__select_build!(@decl [$($c)*] @done [$($done)* (__case ($r) ($body) ($n))]
            @n ($n + 1usize) @default $d @after $a)
    }};
    (@decl [] @done [$(($case:ident ($v:pat) ($body:expr) ($n:expr)))*] @n $total:tt
     @default [$(($dbody:expr))?] @after [$(($dur:expr) ($abody:expr))?]) => {{
        let __deadline: ::core::option::Option<::std::time::Instant> =
            $crate::__select_or!([$(::core::option::Option::Some($crate::chan::__deadline_after($dur)))?]
                [::core::option::Option::None]);
        let __res = $crate::chan::select_cases(
            &mut [$(&mut $case as &mut dyn $crate::chan::Case),*],
            $crate::__select_or!([$({ let _ = stringify!($dbody); true })?] [false]),
            __deadline,
        );
        #[allow(unreachable_code, unused_variables, clippy::redundant_guards)]
        match __res {
            $($crate::chan::SelectResult::Case(__i) if __i == $n => {
                let $v = $case.take();
                $body
            })*
            $crate::chan::SelectResult::Default => {
                $crate::__select_or!([$($dbody)?] [::core::unreachable!("select!: no default arm")])
            }
            $crate::chan::SelectResult::Timeout => {
                $crate::__select_or!([$($abody)?] [::core::unreachable!("select!: no after arm")])
            }
            $crate::chan::SelectResult::Case(_) => ::core::unreachable!("select!: no such case"),
        }
    }};
}

/// The first bracket's tokens if any, else the second's (internal).
#[doc(hidden)]
#[macro_export]
macro_rules! __select_or {
    ([$($x:tt)+] [$($y:tt)*]) => { $($x)+ };
    ([] [$($y:tt)*]) => { $($y)* };
}
