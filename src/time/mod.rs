//! Timers: a 4-ary timer heap per P (`heap.rs`), run by the scheduler, and
//! the user-facing `sleep`, `sleep_until`, `after`, `after_func`, `Timer`
//! and `Ticker` (Go's time.Sleep, time.After, time.AfterFunc, time.Timer,
//! time.Ticker).
//!
//! # Where timers run
//! Each P has a heap and `when0`, the earliest entry's time (`u64::MAX`:
//! none), readable without the lock. An M runs its P's due timers at the
//! top of every `find_runnable` (one atomic load when nothing is due);
//! spinning Ms also run the due timers of the Ps they steal from, so a
//! timer fires on time while its own P's M is busy; the one M that blocks
//! in `netpoll` sleeps only until the earliest `when0` of all Ps; adding a
//! timer earlier than that wakes it (netpollBreak), and adding one while no
//! M sleeps in `netpoll` calls `wakep`, so an idle M comes to wait for it.
//! Timers fire on g0: firing only readies Gs, try-sends on a one-slot channel or
//! spawns a coroutine (`after_func`); it never parks.
//!
//! # Timer states (user timers: `Timer`, `Ticker`, `after`, `after_func`)
//! ```text
//!            reset / new: seq += 1, push (when, seq)
//!   Idle ─────────────────────────────────────────▶ Pending(seq)
//!    ▲  ◀── stop: seq += 1 (the entry goes stale) ──┤
//!    │                                               │ fires (entry.seq == seq)
//!    └────────────── one-shot ◀──────────────────────┤
//!                                Pending(seq) ◀──────┘ ticker: push (when + period, seq)
//! ```
//! The state (`seq`, `pending`, `when`, `period`, which P's heap holds the
//! live entry) is under the timer's own lock; `seq` is also atomic, so the
//! heap can tell a stale entry without the lock. A stopped or moved timer's
//! old entry is not searched for: it is skipped when it reaches the top,
//! and the heap is rebuilt once stale entries are half of it. The same
//! sequence scheme guards socket deadlines (a `PollDesc`'s `rseq`/`wseq`)
//! and sleeps need none (a sleeping G's entry is never cancelled).
//!
//! Lock order: a timer's lock, then a heap's lock. A heap's lock is never
//! held while a timer fires.

pub(crate) mod heap;

use std::{
    mem::MaybeUninit,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use self::heap::{Entry, TimerHeap};
use crate::{
    chan,
    netpoll::pd::{Mode, PollDesc},
    sched::{self, Sched, g::GRef, g::WaitReason, p::P, park::gopark},
};

/// What an entry does when it fires.
pub(crate) enum Fire {
    /// Wake a G parked in `sleep`.
    Wake(GRef),
    /// A user timer (live while its `seq` matches).
    User(Arc<TimerCore>),
    /// A socket deadline (live while the pollDesc's sequence matches).
    Deadline(*const PollDesc, Mode),
    /// The timeout of a channel, select or sync wait (live while the
    /// waiter is unclaimed).
    Waiter(Arc<crate::waiter::Waiter>),
}

// SAFETY: the pollDesc pointer points into a pollcache that lives as long
// as the runtime whose heap holds the entry; GRef and TimerCore are Send.
unsafe impl Send for Fire {}

impl Fire {
    fn is_live(e: &Entry<Fire>) -> bool {
        match &e.item {
            Fire::Wake(_) => true,
            Fire::User(t) => t.seq.load(Ordering::Acquire) == e.seq,
            // SAFETY: see the Send impl.
            Fire::Deadline(pd, mode) => unsafe { &**pd }.deadline_seq(*mode) == e.seq,
            Fire::Waiter(w) => crate::waiter::timeout_is_live(w),
        }
    }
}

/// A P's timers.
pub(crate) struct Timers {
    heap: Mutex<TimerHeap<Fire>>,
    /// The earliest entry's time, `u64::MAX` if none (SeqCst: see
    /// `Sched::wake_netpoller`).
    when0: AtomicU64,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            heap: Mutex::new(TimerHeap::default()),
            when0: AtomicU64::new(u64::MAX),
        }
    }
}

impl Timers {
    /// The earliest entry's time (`u64::MAX`: none); no lock.
    #[inline]
    pub(crate) fn when0(&self) -> u64 {
        self.when0.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TimerHeap<Fire>> {
        self.heap.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Entries in the heap, stale ones included (for schedtrace).
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Drops every entry (runtime teardown, when no M runs).
    pub(crate) fn clear(&self) {
        let old = std::mem::take(&mut *self.lock());
        self.when0.store(u64::MAX, Ordering::SeqCst);
        drop(old);
    }
}

/// Adds an entry to `p`'s heap and makes sure someone will run it on time.
fn add(sched: &Sched, p: &P, e: Entry<Fire>) {
    let when = e.when;
    {
        let mut h = p.timers.lock();
        h.push(e);
        p.timers
            .when0
            .store(h.peek_when().unwrap_or(u64::MAX), Ordering::SeqCst);
    }
    sched.wake_netpoller(when);
}

/// The P whose heap a new timer goes to: the caller's, else the first.
fn home_p(sched: &Sched) -> &P {
    sched.current_p().unwrap_or(&sched.ps[0])
}

/// Runs the due timers of `p` (any P: the heap is locked); returns how
/// many fired. Gs they ready go to the caller's P (or the global queue).
pub(crate) fn run_timers(sched: &Sched, p: &P, now: u64) -> usize {
    const BATCH: usize = 64;
    let mut fired = 0;
    loop {
        // Uninitialised: this runs on every schedule that finds a timer
        // due, and an array of Options cost a 4 KiB memset and a 64-slot
        // drop loop each time (a quarter of the timer benchmark's work).
        let mut due: [MaybeUninit<Entry<Fire>>; BATCH] = [const { MaybeUninit::uninit() }; BATCH];
        let mut n = 0;
        {
            let Ok(mut h) = p.timers.heap.try_lock() else {
                return fired; // someone else is running them
            };
            h.run_due(now, BATCH, Fire::is_live, |e| {
                due[n].write(e);
                n += 1;
            });
            p.timers
                .when0
                .store(h.peek_when().unwrap_or(u64::MAX), Ordering::SeqCst);
        }
        for e in &due[..n] {
            // SAFETY: the first n slots were written above and each is
            // read once (fire does not panic; if it did, the rest would
            // leak, not be used).
            fire(sched, p, unsafe { e.assume_init_read() }, now);
        }
        fired += n;
        if n < BATCH {
            break;
        }
    }
    fired
}

fn fire(sched: &Sched, p: &P, e: Entry<Fire>, now: u64) {
    match e.item {
        Fire::Wake(g) => sched.ready(g, false),
        Fire::Deadline(pd, mode) => {
            // SAFETY: see Fire's Send impl.
            if let Some(g) = unsafe { &*pd }.deadline_fired(mode, e.seq) {
                sched.ready(g, false);
            }
        }
        Fire::User(t) => t.fire(sched, p, e.seq, now),
        Fire::Waiter(w) => crate::waiter::fire_timeout(&w),
    }
}

/// Arms the timeout of a waiter (for [`crate::waiter`]).
pub(crate) fn add_waiter_timer(sched: &Sched, w: Arc<crate::waiter::Waiter>, when: u64) {
    add(
        sched,
        home_p(sched),
        Entry {
            when,
            seq: 0,
            item: Fire::Waiter(w),
        },
    );
}

/// Arms a socket deadline timer (for `netpoll::fd`).
pub(crate) fn add_deadline_timer(
    sched: &Sched,
    pd: *const PollDesc,
    mode: Mode,
    when: u64,
    seq: u64,
) {
    add(
        sched,
        home_p(sched),
        Entry {
            when,
            seq,
            item: Fire::Deadline(pd, mode),
        },
    );
}

/// The earliest timer of all Ps (`u64::MAX`: none).
pub(crate) fn earliest(sched: &Sched) -> u64 {
    sched
        .ps
        .iter()
        .map(|p| p.timers.when0())
        .min()
        .unwrap_or(u64::MAX)
}

// ---------------------------------------------------------------------
// sleep

/// Puts the calling coroutine to sleep for at least `d` (Go's time.Sleep).
/// Outside a coroutine, sleeps the thread.
///
/// ```
/// use std::time::{Duration, Instant};
/// gort::run(|| {
///     let t = Instant::now();
///     gort::time::sleep(Duration::from_millis(5));
///     assert!(t.elapsed() >= Duration::from_millis(5));
/// });
/// ```
pub fn sleep(d: Duration) {
    let Some((_, sched)) = sched::current() else {
        std::thread::sleep(d);
        return;
    };
    if d.is_zero() {
        return;
    }
    let now = sched.nanotime();
    let d = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX / 4);
    park_until(sched, now.saturating_add(d).min(u64::MAX / 2));
}

/// An instant far enough ahead to stand for "never".
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}

/// Puts the calling coroutine to sleep until `deadline`; returns at once
/// if it has passed. Outside a coroutine, sleeps the thread.
pub fn sleep_until(deadline: Instant) {
    let Some((_, sched)) = sched::current() else {
        let now = Instant::now();
        if deadline > now {
            std::thread::sleep(deadline - now);
        }
        return;
    };
    let when = sched.instant_nanos(deadline);
    if when <= sched.nanotime() {
        return;
    }
    park_until(sched, when);
}

/// Parks the calling G until the runtime clock reads `when`.
fn park_until(sched: &'static Sched, when: u64) {
    // The entry is pushed from the unlock callback, once this G is off its
    // stack, so the timer cannot wake it before it has parked.
    // SAFETY: the callback owns its captures (a number and a 'static
    // reference) and pushes the entry without parking.
    unsafe {
        gopark(
            move |g| {
                add(
                    sched,
                    home_p(sched),
                    Entry {
                        when,
                        seq: 0,
                        item: Fire::Wake(g),
                    },
                );
                true
            },
            WaitReason::Sleep,
        );
    }
}

// ---------------------------------------------------------------------
// User timers

/// What a user timer does when it fires.
enum Action {
    /// Send the time on a one-slot channel (Timer, Ticker, after); a tick
    /// that finds the slot full is dropped, as Go's sendTime does.
    Send(chan::Sender<Instant>),
    /// Run a function in a new coroutine (after_func).
    Spawn(Arc<dyn Fn() + Send + Sync>),
}

struct TimerState {
    pending: bool,
    when: u64,
    /// Ticker period in ns (0: one-shot).
    period: u64,
    /// The P whose heap holds the live entry.
    p: usize,
}

/// A user timer; see the module comment for its states.
pub(crate) struct TimerCore {
    /// The live entry's sequence (also under `st`'s lock when changed).
    seq: AtomicU64,
    st: Mutex<TimerState>,
    action: Action,
    sched: Arc<Sched>,
}

impl TimerCore {
    fn new(action: Action, period: u64) -> Arc<TimerCore> {
        let Some((_, sched)) = sched::current() else {
            panic!("gort: timers need a runtime; create them inside a coroutine");
        };
        Arc::new(TimerCore {
            seq: AtomicU64::new(0),
            st: Mutex::new(TimerState {
                pending: false,
                when: 0,
                period,
                p: 0,
            }),
            action,
            sched: sched.arc(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TimerState> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Arms the timer at `deadline` (and, for a ticker, every `period`
    /// after); true if it was pending before.
    fn reset(self: &Arc<Self>, deadline: Instant, period: Option<u64>) -> bool {
        let sched = &*self.sched;
        let when = sched.instant_nanos(deadline).max(1);
        let mut st = self.lock();
        let was = st.pending;
        if let Some(period) = period {
            st.period = period;
        }
        let seq = self.seq.load(Ordering::Relaxed) + 1;
        self.seq.store(seq, Ordering::Release);
        if was {
            sched.ps[st.p].timers.lock().note_stale(Fire::is_live);
        }
        let p = home_p(sched);
        st.pending = true;
        st.when = when;
        st.p = p.id;
        add(
            sched,
            p,
            Entry {
                when,
                seq,
                item: Fire::User(self.clone()),
            },
        );
        was
    }

    /// Disarms the timer; true if it was pending.
    fn stop(&self) -> bool {
        let mut st = self.lock();
        let was = st.pending;
        if was {
            st.pending = false;
            self.seq.fetch_add(1, Ordering::Release);
            self.sched.ps[st.p].timers.lock().note_stale(Fire::is_live);
        }
        was
    }

    /// The entry armed with `seq` is due (on g0, no heap lock held).
    fn fire(self: Arc<Self>, sched: &Sched, p: &P, seq: u64, now: u64) {
        {
            let mut st = self.lock();
            if !st.pending || self.seq.load(Ordering::Relaxed) != seq {
                return;
            }
            if let Some(missed) = now.saturating_sub(st.when).checked_div(st.period) {
                // A ticker: next tick after now, skipping the ones missed
                // (Go's runOneTimer), in the heap it came from.
                st.when += st.period * (missed + 1);
                add(
                    sched,
                    p,
                    Entry {
                        when: st.when,
                        seq,
                        item: Fire::User(self.clone()),
                    },
                );
            } else {
                st.pending = false;
            }
        }
        match &self.action {
            Action::Send(tx) => {
                // Full: the receiver has not taken the last tick (dropped);
                // closed: nobody can receive any more. Either way, no tick.
                let _ = tx.try_send(Instant::now());
            }
            Action::Spawn(f) => {
                let f = f.clone();
                if let Err(e) = crate::sched::spawn::Builder::new().spawn_on(sched, move || f()) {
                    crate::util::warn(&format!("after_func: cannot spawn: {e}"));
                }
            }
        }
    }
}

/// A timer that sends the time once on its channel, [`Timer::c`], when it
/// fires (Go's `time.Timer`). Dropping it stops it.
///
/// ```
/// use std::time::Duration;
/// gort::run(|| {
///     let t = gort::time::Timer::new(Duration::from_millis(1));
///     t.c().recv().unwrap();
///     assert!(!t.stop(), "already fired");
///     assert!(!t.reset(Duration::from_millis(1)), "was not pending");
///     t.c().recv().unwrap();
/// });
/// ```
pub struct Timer {
    core: Arc<TimerCore>,
    rx: chan::Receiver<Instant>,
}

impl std::fmt::Debug for Timer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timer")
            .field("pending", &self.core.lock().pending)
            .finish()
    }
}

impl Timer {
    /// A timer firing after `d` (Go's time.NewTimer).
    ///
    /// # Panics
    /// Outside a coroutine (timers belong to a runtime).
    pub fn new(d: Duration) -> Timer {
        let (tx, rx) = chan::bounded(1);
        let core = TimerCore::new(Action::Send(tx), 0);
        core.reset(deadline_after(d), None);
        Timer { core, rx }
    }

    /// Where the tick arrives (Go's `t.C`): a one-slot channel.
    pub fn c(&self) -> &chan::Receiver<Instant> {
        &self.rx
    }

    /// Stops the timer; true if that prevented it from firing. A tick
    /// already delivered stays in the receiver (as in Go).
    pub fn stop(&self) -> bool {
        self.core.stop()
    }

    /// Re-arms the timer to fire after `d`; true if it was still pending.
    pub fn reset(&self, d: Duration) -> bool {
        self.core.reset(deadline_after(d), None)
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.core.stop();
    }
}

/// `now + d`, saturating far in the future (timers, channel timeouts,
/// `select!`'s `after`).
pub(crate) fn deadline_after(d: Duration) -> Instant {
    Instant::now().checked_add(d).unwrap_or_else(far_future)
}

/// A channel that receives the time once, after `d` (Go's time.After).
/// Once the tick is taken, the channel is closed (its timer is gone), so a
/// second `recv` fails instead of blocking forever.
///
/// ```
/// use std::time::{Duration, Instant};
/// gort::run(|| {
///     let start = Instant::now();
///     let at = gort::time::after(Duration::from_millis(2)).recv().unwrap();
///     assert!(at >= start + Duration::from_millis(2));
/// });
/// ```
///
/// # Panics
/// Outside a coroutine.
pub fn after(d: Duration) -> chan::Receiver<Instant> {
    let (tx, rx) = chan::bounded(1);
    let core = TimerCore::new(Action::Send(tx), 0);
    core.reset(deadline_after(d), None);
    rx
}

/// Runs `f` in a new coroutine after `d` (Go's time.AfterFunc); the
/// returned timer can stop or re-arm it.
///
/// # Panics
/// Outside a coroutine.
pub fn after_func<F: Fn() + Send + Sync + 'static>(d: Duration, f: F) -> FuncTimer {
    let core = TimerCore::new(Action::Spawn(Arc::new(f)), 0);
    core.reset(deadline_after(d), None);
    FuncTimer { core }
}

/// The handle of [`after_func`]. Unlike [`Timer`], dropping it does not
/// stop it (Go's AfterFunc timers run unless stopped).
pub struct FuncTimer {
    core: Arc<TimerCore>,
}

impl std::fmt::Debug for FuncTimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FuncTimer").finish_non_exhaustive()
    }
}

impl FuncTimer {
    /// Stops it; true if that prevented the function from running.
    pub fn stop(&self) -> bool {
        self.core.stop()
    }

    /// Re-arms it to run after `d`; true if it was still pending.
    pub fn reset(&self, d: Duration) -> bool {
        self.core.reset(deadline_after(d), None)
    }
}

/// Sends the time every `period` to its receiver, dropping ticks a slow
/// receiver has not taken (Go's time.Ticker). Dropping it stops it.
///
/// ```
/// use std::time::Duration;
/// gort::run(|| {
///     let t = gort::time::Ticker::new(Duration::from_millis(1));
///     let a = t.c().recv().unwrap();
///     let b = t.c().recv().unwrap();
///     assert!(b > a);
///     t.stop();
/// });
/// ```
pub struct Ticker {
    core: Arc<TimerCore>,
    rx: chan::Receiver<Instant>,
}

impl std::fmt::Debug for Ticker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticker")
            .field("period_ns", &self.core.lock().period)
            .finish()
    }
}

fn period_nanos(period: Duration) -> u64 {
    assert!(
        !period.is_zero(),
        "gort: non-positive interval for Ticker (Go's NewTicker panics too)"
    );
    u64::try_from(period.as_nanos()).unwrap_or(u64::MAX / 4)
}

impl Ticker {
    /// A ticker with the given period (Go's time.NewTicker).
    ///
    /// # Panics
    /// If `period` is zero, or outside a coroutine.
    pub fn new(period: Duration) -> Ticker {
        let ns = period_nanos(period);
        let (tx, rx) = chan::bounded(1);
        let core = TimerCore::new(Action::Send(tx), ns);
        core.reset(deadline_after(period), Some(ns));
        Ticker { core, rx }
    }

    /// Where the ticks arrive (Go's `t.C`): a one-slot channel.
    pub fn c(&self) -> &chan::Receiver<Instant> {
        &self.rx
    }

    /// Stops the ticks (a tick already delivered stays).
    pub fn stop(&self) {
        self.core.stop();
    }

    /// Restarts the ticks with a new period, the next one `period` from now.
    ///
    /// # Panics
    /// If `period` is zero.
    pub fn reset(&self, period: Duration) {
        let ns = period_nanos(period);
        self.core.reset(deadline_after(period), Some(ns));
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.core.stop();
    }
}
