//! `blocking(f)` (Go's entersyscall/exitsyscall) and sysmon, the thread
//! that retakes Ps from Ms stuck in blocking calls.
//!
//! # The hand-off
//! `blocking` marks the M's P `Syscall` and runs `f` on the G's stack, on
//! this M. sysmon wakes every 20 µs while there is work to watch (backing
//! off to 10 ms when idle, and woken by `blocking` when it has backed off);
//! a P that sysmon sees in the same `Syscall` (same `syscalltick`) a whole
//! tick after it first saw it is taken with a CAS
//! `Syscall → Idle` and handed to another M if there is work for it. When
//! `f` returns, the M CASes `Syscall → Running`: if it wins it goes on with
//! its old P; if not, it takes an idle P if there is one, else it queues
//! the G globally and parks (via g0, `Req::NoP`).
//!
//! sysmon also polls the network when no M has for 10 ms (every M busy
//! running Gs), wakes an M when a timer is overdue and none is asleep in
//! the poller to fire it, and calls `wakep` when a P has Gs queued but has
//! not switched since its previous round (they wait behind a G that runs
//! long; `injectglist` leaves small batches to the M that polled, without
//! waking another).

use std::{
    panic::{self, AssertUnwindSafe},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle as ThreadHandle,
    time::Duration,
};

use super::{
    Sched,
    g::GStatus,
    p::{self, P, PStatus},
    park::{Req, mcall},
};

/// Runs `f`, which may block its thread, without stalling the other
/// coroutines: see [`crate::blocking`].
pub(crate) fn blocking<R>(f: impl FnOnce() -> R) -> R {
    let Some((m, g)) = super::g::getmg() else {
        return f();
    };
    // A G runs only on its runtime's Ms.
    let sched = m.sched();
    // SAFETY: we run on M `m` (a running G's thread is its M).
    let ml = unsafe { m.local() };
    let Some(p) = ml.p else {
        return f();
    };
    // entersyscall. No clock read here: sysmon notes when it first sees
    // this call (the tick identifies it), as Go's sysmon does.
    p::bump32(&p.syscalltick);
    g.set_status(GStatus::Syscall);
    // Release: from here on sysmon may take `p` (and its queue, whose state
    // our earlier pushes made visible).
    p.status.store(PStatus::Syscall as u8, Ordering::Release);
    if sched.sysmon_backed_off.load(Ordering::Relaxed) {
        // It may sleep up to 10 ms: have it look now. (A race with it
        // backing off only delays the hand-off by one of its sleeps.)
        sched.sysmon_wake();
    }
    let r = panic::catch_unwind(AssertUnwindSafe(f));
    // exitsyscall.
    g.set_status(GStatus::Running);
    let kept = p
        .status
        .compare_exchange(
            PStatus::Syscall as u8,
            PStatus::Running as u8,
            Ordering::AcqRel,
            Ordering::Acquire,
        )
        .is_ok();
    if !kept {
        // SAFETY: still on M `m`; no switch happened.
        let ml = unsafe { (*m).local() };
        ml.p = None;
        match sched.pidleget_running() {
            Some(p2) => ml.p = Some(p2),
            None => {
                // No P anywhere: queue ourselves and let the M park.
                mcall(g, &Req::NoP);
            }
        }
    }
    match r {
        Ok(v) => v,
        Err(p) => panic::resume_unwind(p),
    }
}

/// The sysmon thread's handle.
pub(crate) struct Sysmon {
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<ThreadHandle<()>>>,
}

impl Sysmon {
    pub(crate) fn start(sched: Arc<Sched>) -> std::io::Result<Sysmon> {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name("gort-sysmon".into())
            .spawn(move || sysmon(&sched, &s))?;
        Ok(Sysmon {
            stop,
            thread: Mutex::new(Some(thread)),
        })
    }

    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

const TICK: Duration = Duration::from_micros(20);
const MAX_DELAY: Duration = Duration::from_millis(10);
/// A G running this long without switching is reported under
/// `GORT_DEBUG=longrun`.
const LONG_RUN_NS: u64 = 10_000_000;
/// sysmon polls the network itself when no M has for this long.
const NETPOLL_AFTER_NS: u64 = 10_000_000;
/// The stack pool is trimmed once nobody has asked it for a stack for this
/// long (Go's scavenger, for stacks), [`TRIM_BATCH`] stacks per round.
const POOL_IDLE_NS: u64 = 1_000_000_000;
const TRIM_BATCH: usize = 256;

fn sysmon(sched: &Sched, stop: &AtomicBool) {
    // SAFETY: prctl with PR_SET_TIMERSLACK only changes this thread's timer
    // slack, so its 20 µs sleeps are not stretched to 70 µs.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1000, 0, 0, 0) };
    sched.sysmon_thread.get_or_init(std::thread::current);
    let mut delay = TICK;
    let mut idle_rounds = 0u32;
    // Per P: the blocking call seen in Syscall (its tick) and when it was
    // first seen, if the P is in one.
    let mut seen: Vec<Option<(u32, u64)>> = vec![None; sched.ps.len()];
    let mut last_long: Vec<u32> = vec![u32::MAX; sched.ps.len()];
    // Per P: its switch count at the previous round.
    let mut last_switches: Vec<u64> = vec![u64::MAX; sched.ps.len()];
    let mut next_trace = sched.debug.schedtrace_ms.saturating_mul(1_000_000);
    let (mut takes, mut takes_since) = (crate::stack::takes(), sched.nanotime());
    while !stop.load(Ordering::Acquire) {
        std::thread::park_timeout(delay);
        let mut busy = false;
        let now = sched.nanotime();
        // A stack pool nobody uses gives back what it holds beyond
        // POOL_KEEP, a batch per round (munmaps here, off the Gs' path).
        let t = crate::stack::takes();
        if t != takes {
            (takes, takes_since) = (t, now);
        } else if now.saturating_sub(takes_since) >= POOL_IDLE_NS {
            crate::stack::trim_pool(crate::stack::POOL_KEEP, TRIM_BATCH);
        }
        for (p, seen) in sched.ps.iter().zip(seen.iter_mut()) {
            let tick = p.syscalltick.load(Ordering::Relaxed);
            if p.status() == PStatus::Syscall {
                busy = true;
                match *seen {
                    // The same call, seen a whole tick ago: take the P.
                    Some((t, since)) if t == tick => {
                        if now.saturating_sub(since) >= TICK.as_nanos() as u64 {
                            retake(sched, p);
                            *seen = None;
                        }
                    }
                    _ => *seen = Some((tick, now)),
                }
            } else {
                *seen = None;
            }
        }
        // The network, if no M has polled it for a while (Go's sysmon
        // netpoll), and timers overdue while every M sleeps.
        let np = &sched.netpoll;
        if np.has_waiters()
            && !np.blocked.load(Ordering::Relaxed)
            && now.saturating_sub(np.last_poll.load(Ordering::Relaxed)) > NETPOLL_AFTER_NS
        {
            let mut list = Vec::new();
            np.netpoll(Some(Duration::ZERO), |g| list.push(g));
            np.last_poll.store(now, Ordering::Relaxed);
            sched.injectglist(None, &mut list);
        }
        if crate::time::earliest(sched) < now && !np.blocked.load(Ordering::Relaxed) {
            sched.wakep();
        }
        // Gs stranded behind a long-running G while a P may be idle.
        let mut stranded = false;
        for (p, last) in sched.ps.iter().zip(last_switches.iter_mut()) {
            let switches = p.switches.load(Ordering::Relaxed);
            stranded |= switches == *last && p.status() == PStatus::Running && p.has_work();
            *last = switches;
        }
        if stranded {
            sched.wakep();
        }
        if sched.debug.longrun {
            for (p, last) in sched.ps.iter().zip(last_long.iter_mut()) {
                let since = p.run_since.load(Ordering::Relaxed);
                let tick = p.schedtick.load(Ordering::Relaxed);
                if p.status() == PStatus::Running
                    && since != 0
                    && now.saturating_sub(since) > LONG_RUN_NS
                {
                    if *last != tick {
                        *last = tick;
                        eprintln!(
                            "gort: a coroutine on P{} has run {} ms without yielding",
                            p.id,
                            now.saturating_sub(since) / 1_000_000
                        );
                    }
                    busy = true;
                }
            }
        }
        if sched.debug.schedtrace_ms > 0 && now >= next_trace {
            next_trace = now + sched.debug.schedtrace_ms * 1_000_000;
            eprintln!("{}", sched.schedtrace_line(now));
        }
        if busy {
            idle_rounds = 0;
            delay = TICK;
        } else {
            idle_rounds += 1;
            if idle_rounds > 50 {
                delay = (delay * 2).min(MAX_DELAY);
            }
        }
        if sched.debug.schedtrace_ms > 0 {
            delay = delay.min(Duration::from_millis(sched.debug.schedtrace_ms));
        }
        sched
            .sysmon_backed_off
            .store(delay > TICK, Ordering::Relaxed);
    }
}

/// Takes `p` from an M that sits in a blocking call and hands it on.
fn retake(sched: &Sched, p: &P) {
    if p.status
        .compare_exchange(
            PStatus::Syscall as u8,
            PStatus::Idle as u8,
            Ordering::AcqRel,
            Ordering::Acquire,
        )
        .is_err()
    {
        return; // the call returned meanwhile
    }
    sched.handoffp(p);
}

impl Sched {
    /// Gives a P whose M is gone to an M if there is work for it, else to
    /// the idle list (Go's handoffp).
    pub(crate) fn handoffp(&self, p: &P) {
        let p = self.p_static(p.id);
        if p.has_work() || !self.global.is_empty() {
            self.startm(p, false);
        } else {
            self.pidleput(p);
            // Work may have arrived between the check and the put.
            self.wakep();
        }
    }

    /// An idle P, marked Running for the caller.
    pub(crate) fn pidleget_running(&self) -> Option<&'static P> {
        let p = self.pidleget()?;
        p.status.store(PStatus::Running as u8, Ordering::Release);
        Some(p)
    }

    /// Makes sysmon look now (it may be backing off).
    pub(crate) fn sysmon_wake(&self) {
        if let Some(t) = self.sysmon_thread.get() {
            t.unpark();
        }
    }

    /// One line of `GORT_DEBUG=schedtrace=MS`, like Go's schedtrace.
    pub(crate) fn schedtrace_line(&self, now: u64) -> String {
        let queues: Vec<String> = self.ps.iter().map(|p| p.queued().to_string()).collect();
        format!(
            "SCHED {}ms: gomaxprocs={} idleprocs={} threads={} spinningthreads={} idlethreads={} runqueue={} live={} timers={} netpollwaiters={} [{}]",
            now / 1_000_000,
            self.ps.len(),
            self.npidle(),
            self.mcount(),
            self.nmspinning(),
            self.nmidle(),
            self.global_len(),
            self.live(),
            self.ps.iter().map(|p| p.timers.len()).sum::<usize>(),
            self.netpoll.waiters.load(Ordering::Relaxed),
            queues.join(" ")
        )
    }
}
