//! The GMP scheduler: Gs (coroutines) run by Ms (worker threads) holding
//! Ps (the right to run Gs, with a local run queue each).
//!
//! # The shape (Go's proc.go, restated)
//! - Each M runs [`Sched::schedule`] on its own thread stack, its **g0**.
//!   `execute` switches from g0 into a G with `arch::jump` (the switch
//!   family that never uses `call`/`ret`); the G jumps back to g0 carrying
//!   a [`park::Req`]
//!   that says why (park, yield, exit, no P after a blocking call). That is
//!   Go's `mcall`: the request is handled on g0, after the G is off its stack.
//! - `gopark(unlockf)`: g0 marks the G `Waiting`, then calls `unlockf(g)`;
//!   the callback publishes the G (stores it where a waker will find it)
//!   with no window in which another M could resume a G still on its stack.
//!   If the callback returns false, g0 switches straight back into the G.
//! - `goready(g)`: `Waiting → Runnable`, into the current P's `runnext`
//!   (or the global queue from a thread with no P), then `wakep`.
//! - **Direct hand-off** (not in Go): when a G parks and its P's `runnext`
//!   holds a G that has run before, within the shared time slice, the
//!   parking G switches straight to it (`handoff_next`) instead of through
//!   g0, leaving its park request on its own stack; the G it resumes runs
//!   the unlock callback first thing (`finish_handoff`), once the parker is
//!   off its stack - the same guarantee as g0's, one switch instead of two
//!   and none of `find_runnable`. Every [`RUNNEXT_STREAK`]th hand-off, and
//!   any G that is fresh or wired to an M, still goes through g0. A yield
//!   on a lone P does the same with the G waiting alone in the tail slot
//!   (`yield_next`, see p.rs): the G it switches to puts the yielder in
//!   the slot (`finish_yield`); with a timer set, or anything else
//!   waiting, the yield goes through g0 (`yield_swap`, `find_runnable`).
//!
//! # Finding work (`find_runnable`, in proc.go's order)
//! 1. every 61st schedule: one G from the global queue (fairness);
//! 2. `runnext` (inheriting the time slice, at most [`RUNNEXT_STREAK`] times
//!    in a row; past that, a new slice if the local queue is empty, so
//!    `schedtick` moves and step 1 comes round), then the local queue;
//! 3. the global queue, a batch;
//! 0. run this P's due timers (one atomic load when none is due);
//! 3. (then) `netpoll(0)` if Gs wait on the network and no M is blocked
//!    in the poller: take one G, inject the rest;
//! 4. spinning (only while spinning Ms < busy Ps / 2): steal half of
//!    another P's queue, visiting Ps in random order, `runnext` and due
//!    timers on the last round;
//! 5. give the P back, re-check every queue (no lost wake-ups); then, if
//!    Gs wait on the network or timers are armed and no other M does it,
//!    block in `netpoll` until the earliest timer of all Ps (the Ms are the
//!    event loop; there is no I/O thread); else park the M.
//!
//! # Spinning Ms and wake-ups (no lost wake-up, no thundering herd)
//! Whoever adds work calls `wakep`, which wakes an idle M only if there is
//! an idle P and no M is spinning (a spinning M will find the work). A
//! spinning M that finds work stops spinning and, if it was the last
//! spinner, calls `wakep` itself so the next piece of work also has a
//! spinner. An M about to park first puts its P on the idle list and stops
//! spinning, then re-checks every queue: an enqueuer either sees the idle P
//! (and wakes someone) or its work is seen by the re-check. The counters
//! and the queue checks are separated by SeqCst fences on both sides (the
//! StoreLoad pairs of proc.go).
//!
//! # Small netpoll batches stay on the M that polled (not in Go)
//! Go's `injectglist` starts an M for every idle P a batch of Gs readied by
//! the poller can fill. With the load generator on the same two cores,
//! that woke the second M for a batch of one or two echo requests: a futex
//! wake per batch, the client robbed of its core, and requests stranded on
//! an M the kernel had descheduled (p99 ~4 ms). A batch of fewer than
//! [`SPREAD_MIN`] Gs now goes to the local queue of the M that polled,
//! which runs them itself (alternating runs, old vs new: echo at 50
//! connections +9-15% requests/s, p99 0.37-0.43x; at 1,000 +5%, p99
//! 0.78-0.81x; kv GET at 50 +17%; http hello at 50 +21%). The price is when
//! one of them runs long without yielding: the others wait behind it. sysmon
//! bounds that: a P that has work queued and has not switched since sysmon's
//! previous round (at most 10 ms ago) gets `wakep`, so an idle P steals it.
//!
//! # Time slices without preemption
//! gort cannot preempt Rust code. Two Gs readying each other through
//! `runnext` would otherwise run forever while the queue starves; so a run
//! of hand-offs through `runnext` shares one slice, and after
//! [`RUNNEXT_STREAK`] hand-offs the next G comes from the queue instead.
//! `yield_now` puts the G at the back of its P's local queue (Go uses the
//! global queue; the local one is cheaper, and idle Ms steal from it) -
//! unless nothing else is local and the global queue has work, when it goes
//! behind the global queue, so a yield loop cannot starve it.
//!
//! # Inlining across the crate boundary
//! A channel operation is generic, so it is compiled in the user's crate;
//! what it calls here (waking, parking, the direct hand-off) is not, and a
//! non-generic function without `#[inline]` is never inlined into another
//! crate without LTO, and is called through the GOT (rustc emits
//! `R_X86_64_GOTPCREL`, which the linker cannot relax into a direct call).
//! So the park/wake path is marked `#[inline]`, and `#[inline(always)]`
//! where the inliner, seeing the sum, still declined (`gopark`,
//! `handoff_next`, `resumed`, `Waiter::wake`, `ready_taken`, `ready_on`,
//! `finish_handoff`, `Chan::block`): a 1-P ping-pong went from 26 calls
//! and 912 instructions per round trip to 9 and 640, 84 -> 67 ns pinned
//! to one CPU (benches/README.md, 2026-11-24 session 10). The cold halves
//! stay out of line (`Waiter::wake_claimed`, `ready_outside`).
//!
//! # The switch in the caller's frame
//! A G that parks inside a function resumes there and then returns from
//! it; the CPU predicts that return from its return stack, whose top is
//! the call the *other* G made last. Two Gs that block in the same
//! out-of-line `Sender::send`, called from different places, so pay a
//! mispredicted return on every switch. The blocking channel operations
//! (`Sender::send`, `Receiver::recv`, the receiving iterators, down to
//! `Chan::send`/`Chan::recv` and `try_send_locked`/`try_recv_locked`) are
//! therefore `#[inline(always)]`: the switch then happens in the user's
//! own function, which goes on without a return. A 1-P ping-pong: 640 ->
//! 544 instructions per round trip and 0.67x the time (0.70-0.72x
//! pinned), the 1 -> 8 -> 1 pipeline 0.78x (benches/README.md, 2026-11-24
//! session 11).
//! The price is code: about 2.2 KB per call site (base: 14 bytes, plus
//! 5.4 KB once per value type), of which the path a completed or parked
//! operation runs is about 600 bytes; the rest is cold (errors, the thread
//! and g0 paths, unwinding). Outlining the wake-up (583 instructions) or the
//! park's preparation (590) saved little code and much of the gain.
//!
//! # Rejected
//! - A global run queue only (simple, but a lock or a contended CAS on every
//!   spawn/ready): Go abandoned it in 1.1 for the same reason.
//! - A dedicated scheduler thread handing Gs to workers: every switch would
//!   cross threads.
//! - Running scheduler code on the G's stack (as many coroutine libraries
//!   do): a G could then be resumed by another M while this one is still
//!   using its stack; g0 removes that window by construction.

pub(crate) mod blocks;
pub(crate) mod g;
pub(crate) mod m;
pub(crate) mod p;
pub(crate) mod park;
pub(crate) mod runnable;
pub(crate) mod spawn;
pub(crate) mod sysmon;
pub(crate) mod task;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering, fence},
    },
    thread::JoinHandle as ThreadHandle,
    time::Instant,
};

use crossbeam_deque::{Injector, Steal};

use self::{
    g::{GRef, GStatus, getg, getmg},
    m::{M, setm},
    p::{GFREE_MAX, GLOBAL_BATCH_MAX, LOCAL_QUEUE_MAX, P, PStatus, STACK_CACHE_MAX},
    park::{ParkReq, Req},
    runnable::{Kind, Runnable},
};
use crate::{
    arch::{self, StackPointer},
    netpoll::NetPoll,
    stack::{self, Stack, StackSpec},
};

/// Gs allocated at once when the free lists are empty: the first block;
/// each next one doubles, up to `G_CHUNK_MAX` (2 MiB of Gs).
const G_CHUNK: usize = 32;
const G_CHUNK_MAX: usize = 2 * 1024 * 1024 / std::mem::size_of::<g::G>();

/// Sleeps ~3 µs (Go's runqgrab `usleep(3)`), then returns what `victim`'s
/// runnext holds if it is still `next` (null otherwise: leave it). The
/// sleep, not a spin: the M stays counted as spinning meanwhile, so the
/// hand-off pair it watches does not wake another M on every ready, and
/// it does not poll the pair's cache line. (The kernel's timer slack makes
/// the sleep tens of µs, as it does for Go.)
#[cold]
fn wait_for_runnext(victim: &P, next: *mut u8) -> *mut u8 {
    std::thread::sleep(std::time::Duration::from_micros(3));
    let now = victim.runnext.load(Ordering::Acquire);
    if now == next {
        now
    } else {
        std::ptr::null_mut()
    }
}

/// What an M does after `netpoll_block`.
enum Polled {
    /// Run this G (the M holds a P again).
    Run(GRef),
    /// It holds a P again: look for work.
    Again,
    /// Nothing to do: park the M.
    Park,
    /// The runtime is shutting down.
    Shutdown,
}

/// Gs readied together by the poller below which `injectglist` starts no
/// M: the polling M runs them itself (see "Small netpoll batches" above).
pub(crate) const SPREAD_MIN: usize = 8;

/// Hand-offs through `runnext` that share one time slice.
pub(crate) const RUNNEXT_STREAK: u32 = 64;

/// Debug switches from `GORT_DEBUG` (comma separated).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Debug {
    /// `schedtrace=MS`: print scheduler state every MS milliseconds.
    pub(crate) schedtrace_ms: u64,
    /// `longrun`: report Gs that run over 10 ms without yielding.
    pub(crate) longrun: bool,
}

/// The idle lists, under one lock (taken only on the slow paths: an M
/// going idle or being woken).
struct Idle {
    ps: Vec<usize>,
    ms: Vec<Arc<M>>,
}

/// An M and its thread (taken when joined).
type MThread = (Arc<M>, Option<ThreadHandle<()>>);

/// One runtime's scheduler state.
pub(crate) struct Sched {
    pub(crate) ps: Box<[P]>,
    /// The global run queue.
    global: Injector<Runnable>,
    idle: Mutex<Idle>,
    /// Ps on the idle list. SeqCst: see "Spinning Ms" above.
    npidle: AtomicUsize,
    /// Spinning Ms. SeqCst: see "Spinning Ms" above.
    nmspinning: AtomicUsize,
    /// Every M ever started, with its thread (joined at shutdown).
    allm: Mutex<Vec<MThread>>,
    /// Ms currently parked in `stopm` (for schedtrace).
    nmidle: AtomicUsize,
    /// Every G ever allocated, and the blocks they live in (Gs are reused,
    /// never freed before the runtime is dropped).
    pub(crate) allgs: Mutex<(Vec<GRef>, Vec<g::GChunk>)>,
    /// Free Gs shared by all Ps.
    pub(crate) gfree: Mutex<Vec<GRef>>,
    /// The default stack for spawned Gs.
    pub(crate) spec: StackSpec,
    /// Set when the runtime is being dropped; Ms exit their loops.
    pub(crate) shutdown: AtomicBool,
    /// When the runtime started: the origin of its nanosecond clock.
    pub(crate) start: Instant,
    /// `start` on [`mono_ns`]'s clock (read right after it: the two agree
    /// to within a clock read, far below any timer's resolution).
    start_ns: u64,
    /// `GORT_DEBUG` settings.
    pub(crate) debug: Debug,
    /// Spawns and exits counted without a P (from plain threads, teardown);
    /// the per-P counters hold the rest. Only for schedtrace.
    pub(crate) spawned_outside: AtomicUsize,
    pub(crate) exited_outside: AtomicUsize,
    /// The sysmon thread, for waking it early.
    pub(crate) sysmon_thread: std::sync::OnceLock<std::thread::Thread>,
    /// Whether sysmon sleeps longer than a tick (written by sysmon only;
    /// `blocking` wakes it then).
    pub(crate) sysmon_backed_off: AtomicBool,
    /// This runtime's network poller and pollcache.
    pub(crate) netpoll: NetPoll,
    /// Wake-ups in flight from threads that are not Ms (`outside_wake`).
    outside_wakes: AtomicUsize,
}

/// An outside wake-up in flight; see [`Sched::outside_wake`].
pub(crate) struct OutsideWake<'a>(&'a Sched);

impl Drop for OutsideWake<'_> {
    fn drop(&mut self) {
        self.0.outside_wakes.fetch_sub(1, Ordering::SeqCst);
    }
}

// SAFETY: all shared state is atomic or behind locks; P and M guard their
// owner-only parts by protocol.
unsafe impl Sync for Sched {}
// SAFETY: as above.
unsafe impl Send for Sched {}

impl Sched {
    pub(crate) fn new(procs: usize, spec: StackSpec, debug: Debug) -> std::io::Result<Sched> {
        Ok(Sched {
            ps: (0..procs).map(|i| P::new(i, procs == 1)).collect(),
            global: Injector::new(),
            idle: Mutex::new(Idle {
                ps: (0..procs).rev().collect(),
                ms: Vec::new(),
            }),
            npidle: AtomicUsize::new(procs),
            nmspinning: AtomicUsize::new(0),
            allm: Mutex::new(Vec::new()),
            nmidle: AtomicUsize::new(0),
            allgs: Mutex::new((Vec::new(), Vec::new())),
            gfree: Mutex::new(Vec::new()),
            spec,
            shutdown: AtomicBool::new(false),
            start: Instant::now(),
            start_ns: mono_ns().unwrap_or(0),
            debug,
            spawned_outside: AtomicUsize::new(0),
            exited_outside: AtomicUsize::new(0),
            outside_wakes: AtomicUsize::new(0),
            sysmon_thread: std::sync::OnceLock::new(),
            sysmon_backed_off: AtomicBool::new(false),
            netpoll: NetPoll::new()?,
        })
    }

    /// Nanoseconds since the runtime started (Go's nanotime), the clock of
    /// timers and deadlines.
    #[inline]
    pub(crate) fn nanotime(&self) -> u64 {
        mono_ns().map_or_else(
            || self.start.elapsed().as_nanos() as u64,
            |now| now.saturating_sub(self.start_ns),
        )
    }

    /// `t` on the runtime's nanosecond clock, taken relative to now as
    /// Go's deadlines are (`nanotime() + t.Sub(time.Now())`): `Instant`
    /// and `nanotime` read one clock, and reading `Instant` first makes
    /// the result at most a few ns late, never early - a timer for `t`
    /// never fires before `t`, and an instant already past maps to a time
    /// already past. (From the two origins taken at start-up it was off by
    /// the gap between their reads, one way or the other.) Far deadlines
    /// saturate at `u64::MAX / 2`.
    pub(crate) fn instant_nanos(&self, t: Instant) -> u64 {
        let now_instant = Instant::now();
        let now = self.nanotime();
        match t.checked_duration_since(now_instant) {
            Some(ahead) => {
                let ahead = u64::try_from(ahead.as_nanos()).unwrap_or(u64::MAX);
                now.saturating_add(ahead).min(u64::MAX / 2)
            }
            None => {
                now.saturating_sub(u64::try_from((now_instant - t).as_nanos()).unwrap_or(u64::MAX))
            }
        }
    }

    /// Whether the runtime is being dropped.
    #[inline]
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    /// A counted reference to this runtime's state.
    pub(crate) fn arc(&self) -> Arc<Sched> {
        let ptr = self as *const Sched;
        // SAFETY: every Sched is created inside an Arc (Runtime::build) and
        // `self` borrows it, so the count is at least one.
        unsafe {
            Arc::increment_strong_count(ptr);
            Arc::from_raw(ptr)
        }
    }

    /// Makes sure a timer at `when` is run on time (Go's wakeNetPoller): an
    /// M asleep in `netpoll` past `when` is woken; with none asleep there,
    /// an idle M is woken to go and wait for it.
    pub(crate) fn wake_netpoller(&self, when: u64) {
        // SeqCst: the timer's `when0` store before these loads, against the
        // blocking M's `blocked` swap before its `when0` loads.
        if self.netpoll.blocked.load(Ordering::SeqCst) {
            if when < self.netpoll.poll_until.load(Ordering::SeqCst) {
                self.netpoll.wake();
            }
        } else {
            self.wakep();
        }
    }

    /// Go's injectglist: makes the Gs in `list` (just woken by the poller,
    /// still `Waiting`) runnable. With idle Ps, that many go to the global
    /// queue and Ms are started for them; the rest go to `p`'s queue (`p`:
    /// the caller's P, if it has one). A batch smaller than [`SPREAD_MIN`]
    /// goes to `p`'s queue whole, waking nobody.
    pub(crate) fn injectglist(&self, p: Option<&P>, list: &mut Vec<GRef>) {
        if list.is_empty() {
            return;
        }
        for g in list.iter() {
            netpoll_readied(*g);
        }
        if let Some(p) = p
            && list.len() < SPREAD_MIN
        {
            // A small batch is ours to run (see SPREAD_MIN).
            for g in list.drain(..) {
                self.runqput(p, g.into(), false);
            }
            return;
        }
        let n = if p.is_some() {
            self.npidle.load(Ordering::SeqCst).min(list.len())
        } else {
            list.len()
        };
        let to_local = list.len() - n;
        for g in list.drain(to_local..) {
            self.global.push(g.into());
        }
        for _ in 0..n {
            match self.pidleget() {
                Some(idle) => self.startm(idle, false),
                None => break,
            }
        }
        if let Some(p) = p {
            for g in list.drain(..) {
                self.runqput(p, g.into(), false);
            }
            self.wakep();
        }
    }

    /// Polls the network without blocking if Gs wait on it and no M is
    /// blocked in the poller; returns one ready G and injects the rest.
    fn netpoll_now(&self, ml: &mut m::MLocal) -> Option<GRef> {
        if !self.netpoll.has_waiters() || self.netpoll.blocked.load(Ordering::Relaxed) {
            return None;
        }
        let mut list = std::mem::take(&mut ml.glist);
        self.netpoll
            .netpoll(Some(std::time::Duration::ZERO), |g| list.push(g));
        self.netpoll
            .last_poll
            .store(self.nanotime(), Ordering::Relaxed);
        let first = list.pop();
        if let Some(g) = first {
            netpoll_readied(g);
            self.injectglist(ml.p, &mut list);
        }
        ml.glist = list;
        first
    }

    /// Runs `p`'s due timers, if any (for its owner or a thief: the Gs they
    /// ready go to the caller's P); returns how many fired.
    #[inline]
    fn check_timers(&self, p: &P) -> usize {
        let w = p.timers.when0();
        if w == u64::MAX {
            return 0;
        }
        let now = self.nanotime();
        if w > now {
            return 0;
        }
        crate::time::run_timers(self, p, now)
    }

    fn p_static(&self, i: usize) -> &'static P {
        // SAFETY: Ps live as long as the Sched, which outlives every M that
        // holds a reference (see M::sched).
        unsafe { &*(&self.ps[i] as *const P) }
    }

    // ---------------------------------------------------------------
    // Run queues

    /// Puts `r` on `p`'s queue; in `runnext` if `next` (the old occupant
    /// goes to the queue's tail). For the owner of `p`.
    #[inline]
    pub(crate) fn runqput(&self, p: &P, r: Runnable, next: bool) {
        if next {
            // SAFETY: runnext holds only words of Runnables.
            if let Some(old) = unsafe { Runnable::from_ptr(p.put_runnext(r)) } {
                self.runqput_kicked(p, old);
            }
            return;
        }
        // SAFETY: the caller owns `p`.
        let local = unsafe { p.local() };
        // What is queued goes behind a yielded G in the tail slot.
        if let Some(t) = p.take_runtail() {
            local.runq.push(t.into());
        }
        local.runq.push(r);
        if local.runq.len() > LOCAL_QUEUE_MAX {
            // Go's runqputslow: share half with the global queue.
            for _ in 0..LOCAL_QUEUE_MAX / 2 {
                match local.runq.pop() {
                    Some(g) => self.global.push(g),
                    None => break,
                }
            }
        }
    }

    /// The G a `runqput` into `runnext` displaced goes to the queue: out
    /// of line, so that a wake-up inlined into a channel operation (see
    /// "Inlining across the crate boundary") carries only the slot store.
    #[inline(never)]
    fn runqput_kicked(&self, p: &P, r: Runnable) {
        self.runqput(p, r, false);
    }

    /// Next G (or task) from `p`'s own queues, and whether it inherits
    /// the slice.
    fn runqget(&self, p: &P) -> Option<(Runnable, bool)> {
        // SAFETY: the caller owns `p`.
        let local = unsafe { p.local() };
        let inherit = local.runnext_streak < RUNNEXT_STREAK;
        // Past the streak, runnext waits behind what is queued, the tail
        // slot included.
        let queued = || !local.runq.is_empty() || !p.runtail.load(Ordering::Relaxed).is_null();
        if (inherit || !queued()) && !p.runnext.load(Ordering::Relaxed).is_null() {
            // A thief may have taken it meanwhile: `next` is then null.
            // SAFETY: runnext holds only words of Runnables.
            if let Some(next) = unsafe { Runnable::from_ptr(p.take_runnext()) } {
                // Past the streak with nothing queued: the pair goes on,
                // but in a new slice (schedtick moves, so the global queue
                // still gets its every-61st turn).
                local.runnext_streak = if inherit { local.runnext_streak + 1 } else { 0 };
                return Some((next, inherit));
            }
        }
        local.runnext_streak = 0;
        local
            .runq
            .pop()
            .or_else(|| p.take_runtail().map(Runnable::from))
            .map(|r| (r, false))
    }

    /// A batch from the global queue into `p`'s queue; returns one G.
    fn globrunqget(&self, p: &P) -> Option<Runnable> {
        // SAFETY: the caller owns `p`.
        let local = unsafe { p.local() };
        let n = self.global.len() / self.ps.len() + 1;
        loop {
            match self
                .global
                .steal_batch_with_limit_and_pop(&local.runq, n.min(GLOBAL_BATCH_MAX))
            {
                Steal::Success(g) => return Some(g),
                Steal::Empty => return None,
                Steal::Retry => continue,
            }
        }
    }

    /// Steals half of `victim`'s queue into `p`'s; `runnext` only if
    /// `take_next` and the queue was empty.
    fn runqsteal(&self, p: &P, victim: &P, take_next: bool) -> Option<Runnable> {
        // SAFETY: the caller owns `p`.
        let local = unsafe { p.local() };
        loop {
            let half = victim.stealer.len().div_ceil(2).max(1);
            match victim
                .stealer
                .steal_batch_with_limit_and_pop(&local.runq, half)
            {
                Steal::Success(g) => return Some(g),
                Steal::Retry => continue,
                Steal::Empty => break,
            }
        }
        if take_next {
            let mut next = victim.runnext.load(Ordering::Acquire);
            if !next.is_null() && victim.status() == PStatus::Running {
                // A running P is usually about to run its runnext itself (a
                // G just readied it and is parking): give it a moment, as
                // Go's runqgrab does (usleep(3)), so a hand-off pair is not
                // split across Ps by a thief.
                next = wait_for_runnext(victim, next);
            }
            if !next.is_null()
                && victim
                    .runnext
                    .compare_exchange(
                        next,
                        std::ptr::null_mut(),
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    )
                    .is_ok()
            {
                // SAFETY: we won the CAS, so we own what the word names.
                return unsafe { Runnable::from_ptr(next) };
            }
        }
        None
    }

    /// Puts `g` on the global queue and wakes an M if one is needed.
    pub(crate) fn global_put(&self, r: Runnable) {
        self.global.push(r);
        self.wakep();
    }

    pub(crate) fn global_len(&self) -> usize {
        self.global.len()
    }

    /// Teardown only (every M stopped): takes the tasks still queued
    /// without a G (see runnable.rs) out of every run queue, for the
    /// caller to fail. The Gs queued with them stay (the teardown finds
    /// those by their status).
    pub(crate) fn take_queued_tasks(&self) -> Vec<task::TaskRef> {
        let mut tasks = Vec::new();
        let mut sort = |r: Runnable, gs: &mut Vec<GRef>| match r.kind() {
            Kind::G(g) => gs.push(g),
            Kind::Task(t) => tasks.push(t),
        };
        let mut gs = Vec::new();
        for p in self.ps.iter() {
            // SAFETY: no M runs: the caller owns every P.
            let local = unsafe { p.local() };
            while let Some(r) = local.runq.pop() {
                sort(r, &mut gs);
            }
            for g in gs.drain(..) {
                local.runq.push(g.into());
            }
            // SAFETY: runnext holds only words of Runnables.
            if let Some(r) = unsafe { Runnable::from_ptr(p.take_runnext()) } {
                match r.g() {
                    Some(_) => {
                        p.put_runnext(r);
                    }
                    None => sort(r, &mut gs),
                }
            }
        }
        loop {
            match self.global.steal() {
                Steal::Success(r) => sort(r, &mut gs),
                Steal::Empty => break,
                Steal::Retry => {}
            }
        }
        for g in gs {
            self.global.push(g.into());
        }
        tasks
    }

    // ---------------------------------------------------------------
    // Idle Ps and Ms

    fn pidleget(&self) -> Option<&'static P> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let i = idle.ps.pop()?;
        self.npidle.fetch_sub(1, Ordering::SeqCst);
        Some(self.p_static(i))
    }

    fn pidleput(&self, p: &P) {
        p.status.store(PStatus::Idle as u8, Ordering::Release);
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.ps.push(p.id);
        self.npidle.fetch_add(1, Ordering::SeqCst);
    }

    /// Wakes (or starts) an M to run an idle P, if there is an idle P and
    /// no M is spinning already.
    #[inline]
    pub(crate) fn wakep(&self) {
        // SeqCst pairs with the fence before the parking M's re-check.
        fence(Ordering::SeqCst);
        self.wakep_after_runnext();
    }

    /// `wakep` right after `runqput(.., next = true)`: the SeqCst swap of
    /// `runnext` already orders the new work before our loads, against the
    /// parking M's SeqCst fence, so the fence is not needed (the StoreLoad
    /// pair of the module comment, with the RMW as the store side).
    #[inline]
    pub(crate) fn wakep_after_runnext(&self) {
        if self.npidle.load(Ordering::SeqCst) == 0 || self.nmspinning.load(Ordering::SeqCst) != 0 {
            return;
        }
        self.wakep_slow();
    }

    #[cold]
    fn wakep_slow(&self) {
        if self
            .nmspinning
            .compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return;
        }
        match self.pidleget() {
            Some(p) => self.startm(p, true),
            None => {
                self.nmspinning.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// Runs `p` on an idle M, or a new one.
    pub(crate) fn startm(&self, p: &'static P, spinning: bool) {
        p.status.store(PStatus::Running as u8, Ordering::Release);
        let idle_m = self.idle.lock().unwrap_or_else(|e| e.into_inner()).ms.pop();
        match idle_m {
            Some(m) => {
                self.nmidle.fetch_sub(1, Ordering::Relaxed);
                m.next_spinning.store(spinning, Ordering::Relaxed);
                m.nextp.store(p as *const P as *mut P, Ordering::Release);
                m.unpark();
            }
            None => {
                if let Err(e) = self.newm(p, spinning) {
                    // No thread: give the P back; the work stays queued for
                    // the running Ms. Say so rather than losing it (unless
                    // the runtime is going away, which is why newm refused).
                    if !self.is_shutting_down() {
                        crate::util::warn(&format!("cannot start a worker thread: {e}"));
                    }
                    if spinning {
                        self.nmspinning.fetch_sub(1, Ordering::SeqCst);
                    }
                    self.pidleput(p);
                }
            }
        }
    }

    /// Starts a new M thread that begins with `p`.
    fn newm(&self, p: &'static P, spinning: bool) -> std::io::Result<()> {
        let mut allm = self.allm.lock().unwrap_or_else(|e| e.into_inner());
        // Checked under `allm`'s lock, which `stop_all_ms` takes after
        // setting the flag: an M started before that is in `allm` and gets
        // joined; one started after would never be, and would run on the
        // Sched after it is freed. (A plain thread's wake-up during a
        // runtime's drop did exactly that: `wakep` started an M once
        // `stop_all_ms` had joined the others; under load, 1 run in ~15 of
        // sync_teardown's plain-thread test then failed on the next
        // runtime - an `nmspinning` underflow, a garbage G pointer.)
        if self.is_shutting_down() {
            return Err(std::io::Error::other("the runtime is shutting down"));
        }
        let m = Arc::new(M::new(allm.len(), self as *const Sched));
        m.next_spinning.store(spinning, Ordering::Relaxed);
        m.nextp.store(p as *const P as *mut P, Ordering::Release);
        let m2 = m.clone();
        let handle = std::thread::Builder::new()
            .name(format!("gort-m{}", m.id))
            .spawn(move || mstart(m2))?;
        allm.push((m, Some(handle)));
        Ok(())
    }

    /// Parks the calling M until `startm` hands it a P, which it installs;
    /// false at shutdown.
    fn stopm(&self, m: &Arc<M>) -> bool {
        {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            if self.shutdown.load(Ordering::Acquire) {
                return false;
            }
            idle.ms.push(m.clone());
            self.nmidle.fetch_add(1, Ordering::Relaxed);
        }
        self.park_for_nextp(m)
    }

    /// Sleeps until a P is handed over in `nextp` and installs it; false at
    /// shutdown.
    fn park_for_nextp(&self, m: &Arc<M>) -> bool {
        loop {
            if take_nextp(m) {
                return true;
            }
            if self.shutdown.load(Ordering::Acquire) {
                return false;
            }
            m.park();
        }
    }

    // ---------------------------------------------------------------
    // The schedule loop

    /// Finds a G to run for `m`, which holds a P. Parks the M when there is
    /// nothing; returns `None` at shutdown.
    fn find_runnable(&self, m: &Arc<M>) -> Option<(Runnable, bool)> {
        'top: loop {
            if self.shutdown.load(Ordering::Acquire) {
                return None;
            }
            // SAFETY: we are on m's thread.
            let ml = unsafe { m.local() };
            let p = ml.p.expect("find_runnable without a P");
            // 0. Due timers (they may ready Gs into our queue).
            self.check_timers(p);
            // 1. Fairness: every 61st schedule, the global queue first, a
            // batch (Go takes one G; with a local queue that keeps being
            // refilled, e.g. by timers, one G per 61 leaves a long global
            // queue waiting for hundreds of thousands of schedules).
            if p.schedtick.load(Ordering::Relaxed) % 61 == 0
                && !self.global.is_empty()
                && let Some(g) = self.globrunqget(p)
            {
                return Some((g, false));
            }
            // 2. Local.
            if let Some(r) = self.runqget(p) {
                return Some(r);
            }
            // 3. Global, a batch.
            if let Some(g) = self.globrunqget(p) {
                return Some((g, false));
            }
            // 3½. The network, without blocking.
            if let Some(g) = self.netpoll_now(ml) {
                return Some((g.into(), false));
            }
            // 4. Steal, while spinning Ms are fewer than busy Ps / 2.
            let busy = self.ps.len() - self.npidle.load(Ordering::SeqCst);
            if ml.spinning || 2 * self.nmspinning.load(Ordering::SeqCst) < busy {
                if !ml.spinning {
                    ml.spinning = true;
                    self.nmspinning.fetch_add(1, Ordering::SeqCst);
                }
                if let Some(g) = self.steal_work(p) {
                    return Some((g, false));
                }
            }
            // 5. Give up the P, stop spinning, re-check, park.
            self.pidleput(p);
            ml.p = None;
            let was_spinning = ml.spinning;
            if was_spinning {
                ml.spinning = false;
                self.nmspinning.fetch_sub(1, Ordering::SeqCst);
            }
            // SeqCst: pairs with wakep's fence (StoreLoad: our npidle and
            // nmspinning stores before the queue loads below; the enqueuer's
            // queue store before its npidle/nmspinning loads).
            fence(Ordering::SeqCst);
            if (!self.global.is_empty() || self.ps.iter().any(P::has_work))
                && let Some(p) = self.pidleget_running()
            {
                ml.p = Some(p);
                if was_spinning {
                    ml.spinning = true;
                    self.nmspinning.fetch_add(1, Ordering::SeqCst);
                }
                continue 'top;
            }
            // Block in the poller until the earliest timer, if there is
            // anything to wait for and no other M does it.
            match self.netpoll_block(ml) {
                Polled::Run(g) => return Some((g.into(), false)),
                Polled::Again => continue 'top,
                Polled::Park => {}
                Polled::Shutdown => return None,
            }
            // Park until startm hands us a P (and maybe the spinning role,
            // already counted by wakep).
            if !self.stopm(m) {
                return None;
            }
        }
    }

    /// For an M without a P that found nothing to do: if Gs wait on the
    /// network or timers are armed and no other M is blocked in the
    /// poller, blocks in `netpoll` until the earliest timer, then takes an
    /// idle P if there is one (installed in `ml`). With a P it keeps one
    /// ready G to run itself, as Go's findrunnable does, and injects the
    /// rest (a single ready G must not go to the global queue with another
    /// M woken for it while this one, holding a P, finds nothing); without
    /// one it injects them all.
    fn netpoll_block(&self, ml: &mut m::MLocal) -> Polled {
        let np = &self.netpoll;
        if !np.has_waiters() && crate::time::earliest(self) == u64::MAX {
            return Polled::Park;
        }
        // SeqCst: pairs with wake_netpoller (see there).
        if np.blocked.swap(true, Ordering::SeqCst) {
            return Polled::Park; // another M is the poller
        }
        if self.shutdown.load(Ordering::Acquire) {
            np.blocked.store(false, Ordering::SeqCst);
            return Polled::Shutdown;
        }
        let until = crate::time::earliest(self);
        np.poll_until.store(until, Ordering::SeqCst);
        let delay = (until != u64::MAX)
            .then(|| std::time::Duration::from_nanos(until.saturating_sub(self.nanotime())));
        let mut list = std::mem::take(&mut ml.glist);
        np.netpoll(delay, |g| list.push(g));
        np.poll_until.store(u64::MAX, Ordering::SeqCst);
        np.last_poll.store(self.nanotime(), Ordering::Relaxed);
        np.blocked.store(false, Ordering::SeqCst);
        let got_p = match self.pidleget_running() {
            Some(p) => {
                ml.p = Some(p);
                true
            }
            None => false,
        };
        let mine = if got_p { list.pop() } else { None };
        // With a P, the rest go to its queue (and idle Ps); without, all
        // go to the global queue with Ms started for idle Ps.
        self.injectglist(ml.p, &mut list);
        ml.glist = list;
        if let Some(g) = mine {
            netpoll_readied(g);
            if !self.shutdown.load(Ordering::Acquire) {
                return Polled::Run(g);
            }
            // Shutting down: queued like the rest, for the teardown.
            let p = ml.p.expect("mine implies a P");
            self.runqput(p, g.into(), false);
        }
        if self.shutdown.load(Ordering::Acquire) {
            return Polled::Shutdown;
        }
        if got_p { Polled::Again } else { Polled::Park }
    }

    /// Steals from the other Ps, in random order, `runnext` and due timers
    /// on the last of four rounds.
    fn steal_work(&self, p: &P) -> Option<Runnable> {
        let n = self.ps.len();
        if n == 1 {
            return None;
        }
        for round in 0..4 {
            // SAFETY: the caller owns `p`.
            let start = unsafe { p.local() }.next_rand() as usize % n;
            let step = coprime_step(n, start);
            for k in 0..n {
                let victim = &self.ps[(start + k * step) % n];
                if victim.id == p.id {
                    continue;
                }
                if round == 3
                    && self.check_timers(victim) > 0
                    && let Some((g, _)) = self.runqget(p)
                {
                    return Some(g);
                }
                if victim.status() == PStatus::Idle && !victim.has_work() {
                    continue;
                }
                if let Some(g) = self.runqsteal(p, victim, round == 3) {
                    return Some(g);
                }
            }
        }
        None
    }

    /// Stops spinning after finding work; wakes another spinner if this was
    /// the last one (Go's resetspinning).
    fn reset_spinning(&self, ml: &mut m::MLocal) {
        if ml.spinning {
            ml.spinning = false;
            if self.nmspinning.fetch_sub(1, Ordering::SeqCst) == 1 {
                self.wakep();
            }
        }
    }

    /// Makes `g` runnable; for a G parked by gopark.
    pub(crate) fn ready(&self, g: GRef, next: bool) {
        self.ready_on(self.current_p(), g, next);
    }

    /// `ready` for a caller that looked up `current_p` already.
    #[inline(always)]
    pub(crate) fn ready_on(&self, p: Option<&'static P>, g: GRef, next: bool) {
        match p {
            Some(p) => {
                g.move_status(
                    GStatus::Waiting,
                    GStatus::Runnable,
                    "runtime: goready of a G that is not waiting",
                );
                self.runqput(p, g.into(), next);
                if next {
                    self.wakep_after_runnext();
                } else {
                    self.wakep();
                }
            }
            None => self.ready_outside(g),
        }
    }

    /// Readies (with `next`, as [`Sched::ready_on`]) the Gs that `take`
    /// takes out of wherever they wait. The caller may be a plain thread
    /// racing the runtime's teardown, which unwinds parked Gs and then
    /// frees them: such a wake-up is counted ([`Sched::outside_wake`])
    /// *before* `take` runs, so a teardown that has not yet waited for
    /// outside wake-ups waits for this one, and one that already has
    /// unwound the G first (`take` then finds it gone).
    #[inline(always)]
    pub(crate) fn ready_taken<I: IntoIterator<Item = GRef>>(
        &self,
        next: bool,
        take: impl FnOnce() -> I,
    ) {
        let p = self.current_p();
        let _in = p.is_none().then(|| self.outside_wake());
        for g in take() {
            self.ready_on(p, g, next);
        }
    }

    /// `ready` from a thread without a P (a plain thread, or the teardown).
    /// While the runtime is being dropped, the teardown takes parked Gs
    /// without a waker's claim, so the status moves by compare-and-swap
    /// and a wake-up that loses to the teardown is dropped (the G is being
    /// unwound) instead of aborting.
    #[cold]
    fn ready_outside(&self, g: GRef) {
        let _in = self.outside_wake();
        if g.try_move_status(GStatus::Waiting, GStatus::Runnable) {
            self.global_put(g.into());
        } else if !self.is_shutting_down() {
            crate::util::fatal("runtime: goready of a G that is not waiting");
        }
    }

    /// Counts a wake-up by a thread that is not an M of this runtime while
    /// it runs: the teardown waits for none to be in flight before it
    /// frees the Gs (see `runtime::teardown`).
    pub(crate) fn outside_wake(&self) -> OutsideWake<'_> {
        self.outside_wakes.fetch_add(1, Ordering::SeqCst);
        OutsideWake(self)
    }

    /// Waits until no outside wake-up is in flight (teardown only).
    pub(crate) fn quiesce_outside_wakes(&self) {
        while self.outside_wakes.load(Ordering::SeqCst) != 0 {
            std::thread::yield_now();
        }
    }

    /// The P the calling thread owns in this runtime: its M's P, if the
    /// thread is an M of this runtime and the P is not in a blocking call
    /// (sysmon may have handed it to another M then).
    #[inline]
    pub(crate) fn current_p(&self) -> Option<&'static P> {
        let m = m::this_m()?;
        if !std::ptr::eq(m.sched, self) {
            return None;
        }
        self.p_of(m)
    }

    /// [`Sched::current_p`] for this thread's M `m`, known to be one of
    /// ours.
    #[inline]
    pub(crate) fn p_of(&self, m: &M) -> Option<&'static P> {
        debug_assert!(std::ptr::eq(m.sched, self) && std::ptr::eq(m, m::getm()));
        // SAFETY: we are on m's thread.
        let p = unsafe { m.local() }.p?;
        (p.status() == PStatus::Running).then_some(p)
    }
}

/// CLOCK_MONOTONIC in nanoseconds, the clock `Instant` reads on Linux,
/// without `Instant`'s checked arithmetic (`nanotime` runs on every
/// schedule that has timers). `None` elsewhere: `Instant` is used then.
#[inline]
fn mono_ns() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid timespec to write; CLOCK_MONOTONIC always
        // exists on Linux (vDSO, no system call).
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// `Waiting → Runnable` for a G the poller returned.
#[inline]
fn netpoll_readied(g: GRef) {
    g.move_status(
        GStatus::Waiting,
        GStatus::Runnable,
        "runtime: netpoll readied a G that is not waiting",
    );
}

/// Marks `g` (off its stack) `Waiting` and runs its park callback; true
/// if it stays parked. If the callback declines, `g` moves to `declined`
/// (Running to resume it now, Runnable to queue it) and false is returned.
///
/// # Safety
/// As [`ParkReq::call`].
#[inline]
unsafe fn park_commit(g: GRef, park: &ParkReq, declined: GStatus) -> bool {
    g.set_status(GStatus::Waiting);
    // SAFETY: forwarded from this function's contract.
    if unsafe { park.call(g) } {
        return true;
    }
    g.move_status(
        GStatus::Waiting,
        declined,
        "runtime: parked G changed state",
    );
    false
}

/// First thing on the G that `from` switched to directly (a park or a
/// yield without g0): checks `from`'s canary and records its context,
/// saved at `sp`, as g0 does for a G that switched to it.
///
/// # Safety
/// `from` is off its stack, and nobody else knows it yet (we own it).
#[inline(always)]
unsafe fn save_switched(from: GRef, sp: *mut u8) {
    // SAFETY: forwarded from this function's contract.
    let own = unsafe { from.own() };
    check_canary(from, own);
    own.sp = StackPointer::new(sp);
    debug_assert!(own.sp.is_some(), "a G that switched away has a context");
}

/// Aborts with a clear message if `g` overran an unguarded stack (checked
/// each time it switches away).
#[inline]
fn check_canary(g: GRef, own: &g::GOwned) {
    if let Some(c) = own.canary {
        // SAFETY: the canary belongs to g's stack, still allocated.
        if !unsafe { stack::canary_intact(c) } {
            stack::overflowed(g.id(), own.spec.size(), stack::CANARY_OVERWRITTEN);
        }
    }
}

/// A step through `0..n` that visits every index once (coprime with `n`).
fn coprime_step(n: usize, seed: usize) -> usize {
    fn gcd(a: usize, b: usize) -> usize {
        if b == 0 { a } else { gcd(b, a % b) }
    }
    let mut step = seed % n + 1;
    while gcd(step, n) != 1 {
        step = step % n + 1;
    }
    step
}

/// Keeps a free stack in a P's cache (`stacks`), or gives it to the
/// global pool when the cache is full.
fn cache_stack(stacks: &mut Vec<Stack>, s: Stack) {
    if stacks.len() < STACK_CACHE_MAX {
        stacks.push(s);
    } else {
        stack::put(s);
    }
}

/// The body of every M thread.
fn mstart(m: Arc<M>) {
    let _ = m.thread.set(std::thread::current());
    setm(Arc::as_ptr(&m));
    if let Err(e) = stack::ensure_altstack() {
        crate::util::warn(&format!(
            "worker thread without an alternate signal stack: {e}"
        ));
    }
    take_nextp(&m);
    m.sched().schedule(&m);
    setm(std::ptr::null());
}

/// Installs the P (and spinning role) handed to `m` by `newm`, `startm`
/// or `startlockedm`, if there is one. On m's own thread.
fn take_nextp(m: &M) -> bool {
    // Acquire: pairs with the hander's Release store.
    let p = m.nextp.swap(std::ptr::null_mut(), Ordering::Acquire);
    if p.is_null() {
        return false;
    }
    // SAFETY: on m's thread.
    let ml = unsafe { m.local() };
    // SAFETY: only pointers to this Sched's Ps are handed over.
    ml.p = Some(unsafe { &*p });
    ml.spinning = m.next_spinning.swap(false, Ordering::Relaxed);
    true
}

impl Sched {
    /// The g0 loop of an M: find a G, run it, repeat; returns at shutdown.
    fn schedule(&self, m: &Arc<M>) {
        loop {
            // SAFETY: on m's thread.
            if let Some(lg) = unsafe { m.local() }.lockedg {
                // Wired to a G (lock_os_thread): run nothing else. Give the
                // P away and sleep until the G is ready and a P comes back.
                if !self.stoplockedm(m) {
                    break;
                }
                self.execute(m, lg);
                continue;
            }
            // SAFETY: on m's thread.
            if unsafe { m.local() }.p.is_none() && !self.stopm(m) {
                // We had lost our P (after a blocking call) and shutdown
                // came while we waited for one.
                break;
            }
            let Some((r, inherit)) = self.find_runnable(m) else {
                break;
            };
            // SAFETY: on m's thread.
            let ml = unsafe { m.local() };
            self.reset_spinning(ml);
            let p = ml.p.expect("a P after find_runnable");
            let g = match r.kind() {
                Kind::G(g) => g,
                Kind::Task(t) => self.bind(p, t),
            };
            if !inherit {
                p::bump32(&p.schedtick);
            }
            p::bump(&p.switches);
            // SAFETY: we own g, just taken from a queue.
            let locked = unsafe { g.own() }.locked_m;
            if !locked.is_null() && !std::ptr::eq(locked, Arc::as_ptr(m)) {
                self.startlockedm(m, locked);
                continue;
            }
            self.execute(m, g);
        }
        // Shutdown: leave the P for the teardown.
        // SAFETY: on m's thread.
        let ml = unsafe { m.local() };
        if ml.spinning {
            ml.spinning = false;
            self.nmspinning.fetch_sub(1, Ordering::SeqCst);
        }
        ml.p = None;
    }

    /// Hands our P to the M a runnable G is wired to, wakes it (it runs
    /// the G, which it finds as its `lockedg`), and leaves us without a P.
    fn startlockedm(&self, m: &Arc<M>, locked: *const M) {
        // SAFETY: on m's thread.
        let ml = unsafe { m.local() };
        let p = ml.p.take().expect("startlockedm with a P");
        // SAFETY: a wired G's M lives as long as the runtime (it is in allm).
        let lm = unsafe { &*locked };
        // Release: the wired M sees the P's queue state and the G's.
        lm.nextp.store(p as *const P as *mut P, Ordering::Release);
        lm.unpark();
    }

    /// For an M wired to a G that just parked or yielded: hands the P on and
    /// sleeps until `startlockedm` gives a P back. False at shutdown.
    fn stoplockedm(&self, m: &Arc<M>) -> bool {
        // SAFETY: on m's thread.
        let ml = unsafe { m.local() };
        if let Some(p) = ml.p.take() {
            self.handoffp(p);
        }
        self.park_for_nextp(m)
    }

    /// Runs `g` on this M until it parks, yields or exits, and handles what
    /// it asked for on g0.
    fn execute(&self, m: &Arc<M>, mut g: GRef) {
        g.set_status(GStatus::Running);
        loop {
            // SAFETY: on m's thread; we own g (taken from a queue).
            let ml = unsafe { m.local() };
            ml.curg = Some(g);
            // SAFETY: we own g while it is Running on this M.
            let own = unsafe { g.own() };
            let sp = match own.sp {
                Some(sp) => sp,
                None => match self.first_run(m, g) {
                    Some(sp) => sp,
                    None => return, // no stack: the G was finished with an error
                },
            };
            if self.debug.longrun
                && let Some(p) = ml.p
            {
                self.note_run_start(p);
            }
            // SAFETY: `sp` is g's saved context; g returns to this g0 with a
            // Req (or exits); we pass our M so it knows where it runs.
            let t = unsafe { arch::jump(sp, Arc::as_ptr(m) as usize) };
            // Back on g0. The G is off its stack. It may not be the G we
            // jumped into: Gs that parked with a direct hand-off passed
            // the M on (`handoff_next`); the one that came back is curg.
            // SAFETY: on m's thread.
            let ml = unsafe { m.local() };
            g = ml.curg.take().expect("a G came back to g0");
            // SAFETY: we still own g: it switched to us and nobody else
            // knows it until we publish it below.
            let own = unsafe { g.own() };
            check_canary(g, own);
            let Some(sp) = StackPointer::new(t.from) else {
                self.gdead(m, g);
                return;
            };
            own.sp = Some(sp);
            // SAFETY: a G switches to g0 with a pointer to a live Req on its
            // stack, which stays intact until the G is resumed.
            let req = unsafe { &*(t.arg as *const Req) };
            match req {
                Req::Park(park) => {
                    // SAFETY: called once, on g0, with the G off its stack.
                    // If the callback declines, resume the G at once.
                    if unsafe { park_commit(g, park, GStatus::Running) } {
                        return;
                    }
                }
                Req::Yield => {
                    g.set_status(GStatus::Runnable);
                    let p = ml.p.expect("yield without a P");
                    if let Some(next) = self.yield_swap(m, p, g) {
                        g = next;
                        continue;
                    }
                    // SAFETY: we own p.
                    let local = unsafe { p.local() };
                    let runtail = p.runtail.load(Ordering::Relaxed);
                    if local.runq.is_empty()
                        && p.runnext.load(Ordering::Relaxed).is_null()
                        && runtail.is_null()
                        && !self.global.is_empty()
                    {
                        // Nothing local would run before us, but the global
                        // queue waits: go behind it, as Go's Gosched does,
                        // or a yield loop would leave it 1/61 of the turns.
                        self.global.push(g.into());
                    } else if p.lone {
                        // A lone P: the tail slot (see p.rs), whose former
                        // occupant goes into the queue ahead of us.
                        if let Some(t) = p.replace_runtail(g) {
                            local.runq.push(t.into());
                        }
                    } else {
                        local.runq.push(g.into());
                    }
                    return;
                }
                Req::NoP => {
                    // The G came back from `blocking` and found no P.
                    g.set_status(GStatus::Runnable);
                    self.global_put(g.into());
                    return;
                }
            }
        }
    }

    /// For `g`, which just yielded on a lone P (see p.rs): if the only G
    /// waiting is the one in the tail slot, swaps them - `g` takes the slot
    /// and the other is returned to run now, with the bookkeeping
    /// `schedule` would do - as `schedule` would have ended up doing via
    /// the queue, minus a push and a pop (a locked instruction). `None`
    /// when anything else could come first: a G wired to an M, shutdown,
    /// the global queue, a due timer, anything queued.
    fn yield_swap(&self, m: &Arc<M>, p: &P, g: GRef) -> Option<GRef> {
        // SAFETY: on m's thread.
        let ml = unsafe { m.local() };
        let next = self.lone_tail(ml, p)?;
        // Timers first, as find_runnable would; what they ready comes
        // first. None fired: nothing changed since lone_tail looked.
        if self.check_timers(p) != 0 {
            return None;
        }
        // `next` leaves the slot, `g` takes it.
        p.runtail.store(g.as_ptr(), Ordering::Release);
        self.took_tail(p, next);
        Some(next)
    }

    /// The G in `p`'s tail slot if a yield on the M of `ml` may swap with
    /// it: it is the only G waiting (nothing queued, in `runnext` or in the
    /// global queue), neither it nor the yielder is wired to an M, and the
    /// runtime is not shutting down. Timers are the caller's to check.
    #[inline(always)]
    fn lone_tail(&self, ml: &m::MLocal, p: &P) -> Option<GRef> {
        let tail = p.runtail.load(Ordering::Relaxed);
        if tail.is_null() || ml.lockedg.is_some() || self.is_shutting_down() {
            return None;
        }
        // SAFETY: the caller owns p.
        let local = unsafe { p.local() };
        if !local.runq.is_empty()
            || !p.runnext.load(Ordering::Relaxed).is_null()
            || !self.global.is_empty()
        {
            return None;
        }
        // SAFETY: runtail holds only live Gs; we own p, so it is ours.
        let next = unsafe { GRef::from_ptr(tail) };
        // SAFETY: as above.
        if !unsafe { next.own() }.locked_m.is_null() {
            return None;
        }
        Some(next)
    }

    /// The bookkeeping of `schedule` for `next`, taken from `p`'s tail slot
    /// by a yield: a new time slice.
    #[inline(always)]
    fn took_tail(&self, p: &P, next: GRef) {
        // SAFETY: the caller owns p.
        unsafe { p.local() }.runnext_streak = 0;
        p::bump32(&p.schedtick);
        p::bump(&p.switches);
        next.set_status(GStatus::Running);
    }

    /// For a G about to yield on `m` (its running G): `yield_swap`'s swap
    /// done without g0. When the only other runnable G waits in the tail
    /// slot of a lone P (see p.rs) and no timer is set (g0 checks those
    /// first; no clock read here), takes it and makes it `m`'s running G;
    /// the yielding G switches to it directly and [`Sched::finish_yield`]
    /// puts the yielder in the slot. `None`: yield through g0.
    #[inline(always)]
    pub(crate) fn yield_next(&self, m: &M) -> Option<GRef> {
        // SAFETY: on m's thread (the yielding G runs on it).
        let ml = unsafe { m.local() };
        let p = ml.p?;
        if !p.lone || p.timers.when0() != u64::MAX {
            return None;
        }
        let next = self.lone_tail(ml, p)?;
        // A G never run has no context: g0 starts it.
        // SAFETY: a G in the tail slot is ours (lone_tail).
        unsafe { next.own() }.sp?;
        p.runtail.store(std::ptr::null_mut(), Ordering::Relaxed);
        self.took_tail(p, next);
        if self.debug.longrun {
            self.note_run_start(p);
        }
        ml.curg = Some(next);
        Some(next)
    }

    /// Runs on the G that `from` switched to directly when it yielded
    /// (`yield_next`), first thing after the switch: `from` is off its
    /// stack, saved at `sp`, and takes the tail slot, as on g0.
    ///
    /// # Safety
    /// Once, with `from` off its stack and unknown to anyone else.
    #[inline]
    pub(crate) unsafe fn finish_yield(&self, m: &M, from: GRef, sp: *mut u8) {
        // SAFETY: forwarded from this function's contract.
        unsafe { save_switched(from, sp) };
        from.set_status(GStatus::Runnable);
        // SAFETY: on m's thread.
        let p = unsafe { m.local() }
            .p
            .expect("a direct hand-off keeps its P");
        debug_assert!(p.runtail.load(Ordering::Relaxed).is_null());
        p.runtail.store(from.as_ptr(), Ordering::Release);
    }

    /// For a G about to park on `m` (its running G): takes the G in the
    /// P's `runnext` if it can run straight away on this M - it has run
    /// before (it has a context), is not wired to an M, and the hand-off
    /// stays within the shared time slice - and makes it `m`'s running G.
    /// The parking G then switches to it directly, skipping g0 (see the
    /// module comment); `None`: park through g0.
    #[inline(always)]
    pub(crate) fn handoff_next(&self, m: &M) -> Option<GRef> {
        // SAFETY: on m's thread (the parking G runs on it).
        let ml = unsafe { m.local() };
        if ml.lockedg.is_some() {
            return None;
        }
        let p = ml.p?;
        // SAFETY: we own p.
        let local = unsafe { p.local() };
        let next = p.runnext.load(Ordering::Relaxed);
        if next.is_null() || local.runnext_streak >= RUNNEXT_STREAK || self.is_shutting_down() {
            return None;
        }
        // A task has no G yet: g0 binds and starts it.
        if Runnable::ptr_is_task(next) {
            return None;
        }
        // Take it before looking at it: a thief may be starting it (then
        // the slot is empty and we get null).
        if p.take_runnext() != next {
            return None;
        }
        // SAFETY: an untagged runnext word is a live G; we took it, so we
        // own it.
        let g = unsafe { GRef::from_ptr(next.cast()) };
        // SAFETY: as above.
        let own = unsafe { g.own() };
        if own.sp.is_none() || !own.locked_m.is_null() {
            // g0 must start it or hand it to its M: put it back (only the
            // owner of p stores into runnext, so the slot is still empty).
            p.runnext.store(next, Ordering::Release);
            return None;
        }
        local.runnext_streak += 1;
        p::bump(&p.switches);
        if self.debug.longrun {
            self.note_run_start(p);
        }
        g.set_status(GStatus::Running);
        ml.curg = Some(g);
        Some(g)
    }

    /// Stamps the start of a G's run on `p`, for sysmon's long-run report
    /// (`GORT_DEBUG=longrun`). Out of line: the clock call would make every
    /// switch save registers it otherwise does not need.
    #[cold]
    #[inline(never)]
    fn note_run_start(&self, p: &P) {
        p.run_since.store(self.nanotime(), Ordering::Relaxed);
    }

    /// Runs on the G that `from` switched to directly (`handoff_next`),
    /// first thing after the switch: `from` is off its stack, saved at
    /// `sp`; marks it `Waiting` and runs its park callback, as g0 would.
    /// If the callback declines, `from` goes into `runnext` to run next.
    ///
    /// # Safety
    /// As [`park::ParkReq::call`]: once, with `from` off its stack.
    #[inline(always)]
    pub(crate) unsafe fn finish_handoff(&self, m: &M, from: GRef, sp: *mut u8, park: &ParkReq) {
        // SAFETY: `from` switched away and nobody knows it until the
        // callback publishes it.
        unsafe { save_switched(from, sp) };
        // SAFETY: forwarded from this function's contract.
        if unsafe { park_commit(from, park, GStatus::Runnable) } {
            return;
        }
        // SAFETY: on m's thread.
        let p = unsafe { m.local() }
            .p
            .expect("a direct hand-off keeps its P");
        self.runqput(p, from.into(), true);
        self.wakep_after_runnext();
    }

    /// Gives `g` a stack and a fresh context at its first run. On failure
    /// the G is finished with the error and `None` is returned.
    fn first_run(&self, m: &Arc<M>, g: GRef) -> Option<StackPointer> {
        // SAFETY: we own g (it is about to run on this M).
        let own = unsafe { g.own() };
        // A G bound from its P's free list may still hold the stack it
        // died with (gdead), of the runtime's default spec: used in place.
        if !own.stack.as_ref().is_some_and(|s| s.spec() == own.spec) {
            self.give_stack(m, g)?;
        }
        let stack = own.stack.as_ref().expect("a G about to run has a stack");
        stack.set_owner(g.id());
        own.canary = stack.canary();
        let top = stack.top();
        // SAFETY: `top` is the aligned top of the stack g now owns.
        Some(unsafe { arch::init_jump_stack(top, park::g_entry, g.as_ptr().cast()) })
    }

    /// Gives `g` (ours, about to run) a stack of its spec: from the P's
    /// cache, or new. On failure the G is finished with the error.
    #[cold]
    fn give_stack(&self, m: &Arc<M>, g: GRef) -> Option<()> {
        // SAFETY: we own g.
        let own = unsafe { g.own() };
        // SAFETY: on m's thread.
        let ml = unsafe { m.local() };
        if let Some(p) = ml.p
            && let Some(s) = own.stack.take()
        {
            // SAFETY: we own p.
            cache_stack(&mut unsafe { p.local() }.stacks, s); // not of this G's spec
        }
        let cached = ml.p.and_then(|p| {
            // SAFETY: we own p.
            let stacks = &mut unsafe { p.local() }.stacks;
            let i = stacks.iter().rposition(|s| s.spec() == own.spec)?;
            Some(stacks.swap_remove(i))
        });
        match cached.map_or_else(|| Stack::new(own.spec), Ok) {
            Ok(s) => {
                own.stack = Some(s);
                Some(())
            }
            Err(e) => {
                let task = own.task.take().expect("a fresh G has a task");
                task.fail(Box::new(format!(
                    "gort: cannot start coroutine {}: {e}",
                    g.id()
                )));
                self.gdead(m, g);
                None
            }
        }
    }

    /// Recycles a finished G: to its P's free list, keeping a stack of the
    /// default spec (the next task bound there reuses both: see
    /// "A G at first run" in runnable.rs); other stacks to the P's cache.
    /// Gs shared with the other Ps (or freed without a P) go without.
    fn gdead(&self, m: &Arc<M>, g: GRef) {
        g.set_status(GStatus::Dead);
        // SAFETY: on m's thread.
        let ml = unsafe { m.local() };
        // SAFETY: we own the dead G.
        let own = unsafe { g.own() };
        if own.clear() {
            ml.lockedg = None; // a wired G ended: its M is free again
        }
        g.g().id.store(0, Ordering::Relaxed);
        g.set_status(GStatus::Idle);
        match ml.p {
            Some(p) => {
                p::bump(&p.exited);
                // SAFETY: we own p.
                let local = unsafe { p.local() };
                // The G keeps a default stack (looked at in place: a
                // Stack is six words).
                if own.stack.as_ref().is_some_and(|s| s.spec() != self.spec)
                    && let Some(s) = own.stack.take()
                {
                    cache_stack(&mut local.stacks, s);
                }
                local.gfree.push(g);
                if local.gfree.len() > GFREE_MAX {
                    // Share half with the other Ps, without their stacks.
                    let (gfree, stacks) = (&mut local.gfree, &mut local.stacks);
                    for g in &gfree[GFREE_MAX / 2..] {
                        // SAFETY: free Gs are owned by their list (ours).
                        if let Some(s) = unsafe { g.own() }.stack.take() {
                            cache_stack(stacks, s);
                        }
                    }
                    let mut global = self.gfree.lock().unwrap_or_else(|e| e.into_inner());
                    global.extend(gfree.drain(GFREE_MAX / 2..));
                }
            }
            None => {
                self.exited_outside.fetch_add(1, Ordering::Relaxed);
                if let Some(s) = own.stack.take() {
                    stack::put(s);
                }
                self.gfree.lock().unwrap_or_else(|e| e.into_inner()).push(g);
            }
        }
    }

    /// A G for a task queued without one (see runnable.rs), from `p`'s
    /// free list: `p` is about to run it.
    fn bind(&self, p: &P, task: task::TaskRef) -> GRef {
        let g = self.gfget(Some(p));
        spawn::init_g(g, task, None, self.spec);
        g
    }

    /// A G to spawn into now, without a stack (a stack it kept goes to
    /// `p`'s cache: a queued G must not hold one, or a million queued Gs
    /// could hold a million stacks).
    pub(crate) fn galloc(&self, p: Option<&P>) -> GRef {
        let g = self.gfget(p);
        // SAFETY: a G from a free list is ours.
        if let Some(s) = unsafe { g.own() }.stack.take() {
            match p {
                // SAFETY: the caller owns p.
                Some(p) => cache_stack(&mut unsafe { p.local() }.stacks, s),
                None => stack::put(s),
            }
        }
        g
    }

    /// A free G: from the P's free list, the global one, or new.
    fn gfget(&self, p: Option<&P>) -> GRef {
        if let Some(p) = p {
            // SAFETY: the caller owns p.
            let local = unsafe { p.local() };
            if let Some(g) = local.gfree.pop() {
                // The next spawn's G was most likely freed on another M
                // (Gs die where they run): start moving its lines here
                // now, so that spawn does not stall on them.
                if let Some(n) = local.gfree.last() {
                    crate::util::prefetch_for_write(n.as_ptr().cast(), std::mem::size_of::<g::G>());
                }
                return g;
            }
            let mut global = self.gfree.lock().unwrap_or_else(|e| e.into_inner());
            let n = global.len().min(GFREE_MAX / 2);
            let at = global.len() - n;
            local.gfree.extend(global.drain(at..));
            drop(global);
            if let Some(g) = local.gfree.pop() {
                return g;
            }
        } else if let Some(g) = self.gfree.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return g;
        }
        let mut all = self.allgs.lock().unwrap_or_else(|e| e.into_inner());
        // Blocks grow geometrically (32, 64, ... Gs) up to 2 MiB worth, so a
        // small runtime stays small and a spawn storm gets huge pages.
        let n = (G_CHUNK << all.1.len().min(16)).min(G_CHUNK_MAX);
        let (chunk, mut fresh) = GRef::alloc_chunk(self as *const Sched, self.spec, n);
        all.0.extend_from_slice(&fresh);
        all.1.push(chunk);
        drop(all);
        let g = fresh.pop().expect("a chunk has Gs");
        match p {
            // SAFETY: the caller owns p.
            Some(p) => unsafe { p.local() }.gfree.extend(fresh),
            None => self
                .gfree
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(fresh),
        }
        g
    }

    /// Number of Ms started so far.
    pub(crate) fn mcount(&self) -> usize {
        self.allm.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub(crate) fn nmspinning(&self) -> usize {
        self.nmspinning.load(Ordering::Relaxed)
    }

    pub(crate) fn npidle(&self) -> usize {
        self.npidle.load(Ordering::Relaxed)
    }

    /// Gs spawned and not finished (a snapshot; for schedtrace).
    /// Context switches into Gs so far, all Ps.
    pub(crate) fn switches(&self) -> u64 {
        self.ps
            .iter()
            .map(|p| p.switches.load(Ordering::Relaxed))
            .sum()
    }

    /// Gs spawned so far.
    pub(crate) fn spawned(&self) -> u64 {
        self.ps
            .iter()
            .map(|p| p.spawned.load(Ordering::Relaxed))
            .sum::<u64>()
            + self.spawned_outside.load(Ordering::Relaxed) as u64
    }

    pub(crate) fn live(&self) -> usize {
        let spawned: u64 = self
            .ps
            .iter()
            .map(|p| p.spawned.load(Ordering::Relaxed))
            .sum::<u64>()
            + self.spawned_outside.load(Ordering::Relaxed) as u64;
        let exited: u64 = self
            .ps
            .iter()
            .map(|p| p.exited.load(Ordering::Relaxed))
            .sum::<u64>()
            + self.exited_outside.load(Ordering::Relaxed) as u64;
        spawned.saturating_sub(exited) as usize
    }

    pub(crate) fn nmidle(&self) -> usize {
        self.nmidle.load(Ordering::Relaxed)
    }

    /// Stops every M and joins its thread (runtime teardown).
    pub(crate) fn stop_all_ms(&self) {
        {
            let _idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            self.shutdown.store(true, Ordering::Release);
        }
        // An M may be asleep in the poller rather than in stopm.
        self.netpoll.wake();
        loop {
            let ms: Vec<MThread> = {
                let mut allm = self.allm.lock().unwrap_or_else(|e| e.into_inner());
                allm.iter_mut()
                    .filter_map(|(m, h)| h.take().map(|h| (m.clone(), Some(h))))
                    .collect()
            };
            if ms.is_empty() {
                break;
            }
            for (m, h) in ms {
                m.unpark();
                if let Some(h) = h {
                    let _ = h.join();
                }
            }
        }
    }
}

/// The current G and its runtime, if this thread is running one.
#[inline]
pub(crate) fn current() -> Option<(GRef, &'static Sched)> {
    let g = getg()?;
    // SAFETY: a running G's sched pointer is its live runtime.
    Some((g, unsafe { &*g.g().sched }))
}

/// Wires the running G to its M (Go's LockOSThread); see
/// [`crate::lock_os_thread`]. Calls nest.
pub(crate) fn lock_os_thread() {
    let Some((m, g)) = getmg() else { return };
    // SAFETY: the running G owns itself; it runs on M `m`, whose thread this is.
    let (own, ml) = unsafe { (g.own(), m.local()) };
    own.lock_depth += 1;
    own.locked_m = m;
    ml.lockedg = Some(g);
}

/// Undoes one [`lock_os_thread`]; the last one unwires the G.
pub(crate) fn unlock_os_thread() {
    let Some((m, g)) = getmg() else { return };
    // SAFETY: as in lock_os_thread.
    let (own, ml) = unsafe { (g.own(), m.local()) };
    if own.lock_depth == 0 {
        return;
    }
    own.lock_depth -= 1;
    if own.lock_depth == 0 {
        own.locked_m = std::ptr::null();
        ml.lockedg = None;
    }
}
