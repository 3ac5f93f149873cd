//! `Runtime`: builds a scheduler, runs a main coroutine, tears down.
//!
//! # Teardown (dropping a `Runtime`)
//! 1. sysmon stops; every M finishes the G it is running (gort cannot
//!    preempt: a G that never parks or yields keeps its M, and the drop
//!    waits for it) and exits its loop; the M threads are joined.
//! 2. On the dropping thread, every G still alive is finished: a G that
//!    never ran has its closure dropped (its `JoinHandle` reports the
//!    runtime was dropped); a G that is parked or runnable is resumed with
//!    a forced unwind, so its stack's destructors run, then its stack is
//!    freed. Repeated until no G is left (a destructor may ready others).
//! 3. The Gs and the per-P caches are freed. No thread, mapping or G
//!    outlives the `Runtime`.

use std::{
    io,
    num::NonZeroUsize,
    sync::{Arc, atomic::Ordering},
};

use crate::{
    arch::{self, StackPointer},
    sched::{
        Debug, Sched,
        g::GStatus,
        m::{M, setm},
        park::{Req, UNWIND},
        spawn::{Builder as SpawnBuilder, JoinHandle},
        sysmon::Sysmon,
    },
    stack::{self, DEFAULT_STACK_SIZE, StackSpec},
};

/// Most Ps accepted: more is almost certainly a mistake.
pub const MAX_PROCS: usize = 1024;

/// Configures a [`Runtime`].
#[derive(Debug, Clone)]
pub struct Builder {
    procs: Option<usize>,
    stack_size: usize,
    stack_guard: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            procs: None,
            stack_size: DEFAULT_STACK_SIZE,
            stack_guard: true,
        }
    }
}

impl Builder {
    /// Number of Ps (Go's GOMAXPROCS): coroutines running at once.
    /// Default: `GORT_PROCS` if set, else the available parallelism.
    pub fn procs(mut self, n: usize) -> Builder {
        self.procs = Some(n);
        self
    }

    /// Default stack size of spawned coroutines, in bytes.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = bytes;
        self
    }

    /// Whether coroutine stacks have guard pages (default true); see
    /// `coro::Builder::stack_guard` for the unguarded mode and its limits.
    pub fn stack_guard(mut self, guard: bool) -> Builder {
        self.stack_guard = guard;
        self
    }

    /// Creates the runtime. Its worker threads start on demand.
    ///
    /// # Errors
    /// `InvalidInput` for 0 or more than [`MAX_PROCS`] Ps, a bad
    /// `GORT_PROCS` or `GORT_DEBUG`, or a stack size out of range; an OS
    /// error if the sysmon thread cannot start.
    pub fn build(self) -> io::Result<Runtime> {
        let procs = match self.procs {
            Some(n) => n,
            None => procs_from_env()?,
        };
        if procs == 0 || procs > MAX_PROCS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("gort: procs must be between 1 and {MAX_PROCS}, got {procs}"),
            ));
        }
        let spec = StackSpec::new(self.stack_size, self.stack_guard)?;
        let debug = debug_from_env()?;
        stack::ensure_altstack()?;
        let sched = Arc::new(Sched::new(procs, spec, debug)?);
        let sysmon = Sysmon::start(sched.clone())?;
        Ok(Runtime { sched, sysmon })
    }
}

/// The default number of Ps: `GORT_PROCS`, else available parallelism.
fn procs_from_env() -> io::Result<usize> {
    match std::env::var("GORT_PROCS") {
        Ok(v) => v.trim().parse::<usize>().map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("gort: GORT_PROCS={v:?} is not a number of processors"),
            )
        }),
        Err(std::env::VarError::NotPresent) => {
            Ok(std::thread::available_parallelism().map_or(1, NonZeroUsize::get))
        }
        Err(e) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("gort: GORT_PROCS: {e}"),
        )),
    }
}

/// Parses `GORT_DEBUG`: comma-separated `schedtrace=MS`, `longrun`, and
/// `guardpages=mprotect|regions` (read by the stack layer itself, see
/// `stack::guard_regions`; checked here).
fn debug_from_env() -> io::Result<Debug> {
    let mut d = Debug::default();
    let Ok(v) = std::env::var("GORT_DEBUG") else {
        return Ok(d);
    };
    for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match item.split_once('=') {
            Some(("schedtrace", ms)) => {
                d.schedtrace_ms = ms.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("gort: GORT_DEBUG: bad schedtrace period {ms:?}"),
                    )
                })?;
            }
            None if item == "longrun" => d.longrun = true,
            Some(("guardpages", "mprotect" | "regions")) => {}
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "gort: GORT_DEBUG: unknown setting {item:?} (known: schedtrace=MS, longrun, guardpages=mprotect|regions)"
                    ),
                ));
            }
        }
    }
    Ok(d)
}

/// A gort runtime: Ps, worker threads (Ms) and sysmon.
///
/// ```
/// let rt = gort::Runtime::builder().procs(2).build()?;
/// let sum = rt.block_on(|| {
///     let hs: Vec<_> = (0..10u64).map(|i| gort::spawn(move || i * i)).collect();
///     hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
/// });
/// assert_eq!(sum, 285);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Runtime {
    sched: Arc<Sched>,
    sysmon: Sysmon,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("procs", &self.sched.ps.len())
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// A [`Builder`] with default settings.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Number of Ps.
    pub fn procs(&self) -> usize {
        self.sched.ps.len()
    }

    /// Spawns a coroutine on this runtime from any thread.
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        SpawnBuilder::new()
            .spawn_on(&self.sched, f)
            .expect("the runtime's default stack size is valid")
    }

    /// Runs `f` as a coroutine on this runtime and blocks the calling
    /// thread until it returns; a panic in `f` continues here.
    ///
    /// # Panics
    /// If called from inside a coroutine (it would block a worker thread).
    pub fn block_on<F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        assert!(
            crate::sched::current().is_none(),
            "Runtime::block_on called from inside a coroutine; spawn and join instead"
        );
        match self.spawn(f).join() {
            Ok(v) => v,
            Err(p) => std::panic::resume_unwind(p),
        }
    }

    /// One line of scheduler state, as `GORT_DEBUG=schedtrace` prints.
    pub fn schedtrace(&self) -> String {
        self.sched.schedtrace_line(self.sched.nanotime())
    }

    /// Counters of this runtime, read without stopping it (each is exact
    /// on its own; together they are a near-instant snapshot).
    pub fn stats(&self) -> Stats {
        Stats::of(&self.sched)
    }
}

/// Counters of a runtime: see [`Runtime::stats`] and [`stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Processors (Ps).
    pub procs: usize,
    /// Processors with nothing to run.
    pub idle_procs: usize,
    /// Worker threads (Ms) started, including idle ones.
    pub threads: usize,
    /// Coroutines spawned and not finished (running, runnable or parked).
    pub coroutines: usize,
    /// Coroutines spawned since the runtime started.
    pub spawned: u64,
    /// Context switches into coroutines since the runtime started.
    pub switches: u64,
    /// Coroutines parked on the network poller.
    pub netpoll_waiters: usize,
}

impl Stats {
    fn of(s: &Sched) -> Stats {
        Stats {
            procs: s.ps.len(),
            idle_procs: s.npidle(),
            threads: s.mcount(),
            coroutines: s.live(),
            spawned: s.spawned(),
            switches: s.switches(),
            netpoll_waiters: s.netpoll.waiters.load(Ordering::Relaxed),
        }
    }
}

/// The counters of the runtime the calling coroutine runs on; `None` on a
/// plain thread.
///
/// ```
/// gort::run(|| {
///     let s = gort::stats().unwrap();
///     assert!(s.coroutines >= 1 && s.switches >= 1);
/// });
/// assert!(gort::stats().is_none());
/// ```
pub fn stats() -> Option<Stats> {
    crate::sched::current().map(|(_, s)| Stats::of(s))
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.sysmon.stop();
        self.sched.stop_all_ms();
        teardown(&self.sched);
    }
}

/// What `join` reports for a coroutine that never started.
const NEVER_STARTED: &str = "gort: the runtime was dropped before the coroutine started";

/// Finishes every G still alive, on the calling thread (step 2 of the
/// module comment), then frees the Gs (step 3).
fn teardown(sched: &Sched) {
    // The dropping thread acts as an M without a P while it unwinds Gs, so
    // `getg` works in their destructors (and `goready` queues globally).
    // Timer entries go first: they would wake Gs about to be unwound, and
    // user timers in them hold the Sched.
    for p in sched.ps.iter() {
        p.timers.clear();
    }
    let pseudo = M::new(usize::MAX, sched as *const Sched);
    let outer = crate::sched::m::getm();
    setm(&pseudo);
    // Tasks queued without a G (never started) are failed first: no M
    // will bind them now, and their joiners must not wait forever.
    for task in sched.take_queued_tasks() {
        task.fail(Box::new(NEVER_STARTED));
    }
    loop {
        let gs: Vec<_> = sched
            .allgs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone();
        let mut finished_any = false;
        for g in gs {
            // Take the G by compare-and-swap: a plain thread may be waking
            // it right now (`Sched::ready_outside`); whoever moves the
            // status first owns it. (A G it readied is Runnable and taken
            // on a later pass.)
            let was = g.status();
            if !matches!(was, GStatus::Runnable | GStatus::Waiting) {
                continue;
            }
            finished_any = true; // (a lost race is retried on the next pass)
            if !g.try_move_status(was, GStatus::Running) {
                continue;
            }
            // SAFETY: every M is stopped: this thread owns every G.
            let own = unsafe { g.own() };
            let Some(sp) = own.sp else {
                // Never ran: drop the closure.
                let task = own.task.take().expect("a fresh G has a task");
                g.set_status(GStatus::Dead);
                task.fail(Box::new(NEVER_STARTED));
                recycle(sched, g);
                continue;
            };
            own.unwinding = true;
            // SAFETY: the pseudo M is this thread's and only it touches it.
            unsafe { pseudo.local() }.curg = Some(g);
            // SAFETY: `sp` is the G's saved context; resumed with UNWIND it
            // unwinds to its entry and exits back to us (a park during the
            // unwind is fatal, see gopark).
            let mut t = unsafe { arch::jump(sp, UNWIND) };
            while let Some(sp) = StackPointer::new(t.from) {
                // It yielded (e.g. from a destructor): keep unwinding it.
                // SAFETY: a G passes a pointer to a live Req.
                let req = unsafe { &*(t.arg as *const Req) };
                debug_assert!(
                    !matches!(req, Req::Park(_)),
                    "gopark is fatal during teardown"
                );
                // SAFETY: as above; resume where it yielded.
                t = unsafe { arch::jump(sp, 0) };
            }
            // SAFETY: as above.
            unsafe { pseudo.local() }.curg = None;
            recycle(sched, g);
        }
        if !finished_any {
            break;
        }
    }
    setm(outer);
    // A plain thread may still be inside a wake-up of a G unwound above
    // (past its waiter, not yet past the G): let it finish before the Gs go.
    sched.quiesce_outside_wakes();
    // Drain the queues (only finished Gs are left in them) and free.
    let (gs, chunks) = std::mem::take(&mut *sched.allgs.lock().unwrap_or_else(|e| e.into_inner()));
    for p in sched.ps.iter() {
        // SAFETY: no M runs: we own every P.
        let local = unsafe { p.local() };
        for s in local.stacks.drain(..) {
            stack::put(s);
        }
        local.gfree.clear();
        while local.runq.pop().is_some() {}
        p.take_runtail();
    }
    sched
        .gfree
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
    // Every M is stopped and every G finished: nothing refers to the Gs.
    drop(gs);
    drop(chunks);
}

/// Releases a finished G's stack and task (teardown only).
fn recycle(sched: &Sched, g: crate::sched::g::GRef) {
    // SAFETY: teardown owns every G.
    let own = unsafe { g.own() };
    own.clear();
    if let Some(s) = own.stack.take() {
        stack::put(s);
    }
    g.set_status(GStatus::Idle);
    sched.exited_outside.fetch_add(1, Ordering::Relaxed);
}

/// Starts a runtime with the default settings (`GORT_PROCS` Ps), runs `f`
/// as its main coroutine, drops the runtime, and returns `f`'s result.
///
/// # Panics
/// If the runtime cannot be built (a bad `GORT_PROCS` or `GORT_DEBUG`, no
/// threads), with the reason; or with `f`'s panic.
pub fn run<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let rt = Builder::default()
        .build()
        .unwrap_or_else(|e| panic!("gort::run: cannot start the runtime: {e}"));
    rt.block_on(f)
}
