//! gort: Go's runtime, rebuilt as a Rust library.
//!
//! Stackful coroutines on mmap'd, guard-paged stacks, switched by
//! hand-written assembly ([`coro`]), scheduled M:N by worker threads that
//! each hold a processor with a local run queue, as Go's runtime does.
//!
//! ```
//! use std::sync::{Arc, atomic::{AtomicU64, Ordering}};
//!
//! let total = gort::run(|| {
//!     let sum = Arc::new(AtomicU64::new(0));
//!     let handles: Vec<_> = (1..=100u64)
//!         .map(|i| {
//!             let sum = sum.clone();
//!             gort::go!(move || sum.fetch_add(i, Ordering::Relaxed))
//!         })
//!         .collect();
//!     for h in handles {
//!         h.join().unwrap();
//!     }
//!     sum.load(Ordering::Relaxed)
//! });
//! assert_eq!(total, 5050);
//! ```

//!
//! # From Go
//! | Go | gort |
//! |---|---|
//! | `go f()` | [`go!`]`(move \|\| f())`, [`spawn`] |
//! | `make(chan T, n)`, `<-ch`, `close(ch)` | [`chan::bounded`]`(n)` (0: unbuffered), `rx.recv()`, `tx.close()` |
//! | `select` | [`select!`] (`recv`, `send`, `after`, `default` arms) |
//! | `sync.Mutex`, `sync.WaitGroup`, ... | [`sync::Mutex`], [`sync::WaitGroup`], [`sync::RwLock`], [`sync::Once`], [`sync::Cond`] |
//! | `time.Sleep`, `time.After` | [`time::sleep`], [`time::after`] |
//! | `net.Listen`, `l.Accept()`, `c.SetDeadline(t)` | [`net::TcpListener::bind`], `l.accept()`, `c.set_deadline(Some(t))` |
//! | `runtime.Gosched()`, `GOMAXPROCS` | [`yield_now`], `GORT_PROCS` |
//! | `GODEBUG=schedtrace=1000` | `GORT_DEBUG=schedtrace=1000` |
//!
//! Not the same: gort's stacks are fixed-size (Go's grow), scheduling is
//! cooperative (Go preempts loops), and `thread_local!` is per worker
//! thread: use [`local!`] for a value per coroutine.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod arch;
mod netpoll;
pub mod time;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub mod chan;
pub mod coro;
pub mod local;
mod lock;
pub mod net;
pub mod rt;
pub mod runtime;
mod sched;
pub mod stack;
pub mod sync;
mod util;
mod waiter;

pub use crate::{
    runtime::{Runtime, Stats, run, stats},
    sched::spawn::{Builder, JoinHandle},
};

/// Spawns a coroutine on the current runtime (Go's `go f()`).
///
/// `f` runs concurrently with the caller, on any worker thread; the
/// returned [`JoinHandle`] waits for its result.
///
/// # Panics
/// Outside a gort runtime (a plain thread): use [`Runtime::spawn`] there.
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Builder::new()
        .spawn(f)
        .expect("the runtime's default stack size is valid")
}

/// `go!(move || ...)` or `go!({ ... })`: spawns a coroutine, like Go's `go`
/// statement, and returns its [`JoinHandle`].
///
/// ```
/// gort::run(|| {
///     let a = gort::go!(move || 40);
///     let b = gort::go!({ 2 });
///     assert_eq!(a.join().unwrap() + b.join().unwrap(), 42);
/// });
/// ```
#[macro_export]
macro_rules! go {
    ($body:block) => {
        $crate::spawn(move || $body)
    };
    ($f:expr) => {
        $crate::spawn($f)
    };
}

/// Lets the other runnable coroutines run first (Go's `runtime.Gosched`);
/// on a plain thread, `std::thread::yield_now`.
pub fn yield_now() {
    sched::park::yield_now();
}

/// Runs `f`, which may block its thread (file I/O, DNS, a C library),
/// without stalling the other coroutines: if `f` takes longer than a
/// sysmon tick (20 µs), this coroutine's processor is handed to another
/// worker thread meanwhile (Go's entersyscall/exitsyscall). Outside a
/// coroutine it just calls `f`.
pub fn blocking<R>(f: impl FnOnce() -> R) -> R {
    sched::sysmon::blocking(f)
}

/// Wires the calling coroutine to its worker thread (Go's
/// `runtime.LockOSThread`): until the matching [`unlock_os_thread`], it
/// always resumes on this thread, and this thread runs no other coroutine
/// (while the coroutine is parked, the thread sleeps and its processor
/// serves the others). Thread-locals, `errno` and thread-affine C
/// libraries are then safe to use across parks. Calls nest. A parked wired
/// coroutine costs two thread hand-offs per park/ready. No-op on a plain
/// thread.
pub fn lock_os_thread() {
    sched::lock_os_thread();
}

/// Undoes one [`lock_os_thread`]; after the last, the coroutine may migrate
/// again.
pub fn unlock_os_thread() {
    sched::unlock_os_thread();
}

/// Number of processors (Ps) of the current runtime; outside a runtime,
/// the number a default runtime would get (`GORT_PROCS` or the available
/// parallelism).
pub fn procs() -> usize {
    match sched::spawn::current_sched() {
        Some(s) => s.ps.len(),
        None => std::env::var("GORT_PROCS")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
}

/// The running coroutine, as [`current`] describes it.
#[derive(Debug, Clone)]
pub struct Current {
    id: u64,
    name: Option<std::sync::Arc<str>>,
}

impl Current {
    /// The coroutine's id: unique in the process.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Its name, if it was spawned with [`Builder::name`].
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

/// The running coroutine, or `None` on a plain thread.
pub fn try_current() -> Option<Current> {
    let (g, _) = sched::current()?;
    // SAFETY: the running G reads its own fields.
    let name = unsafe { g.own() }.name.clone();
    Some(Current { id: g.id(), name })
}

/// The running coroutine (Go has no equivalent; like `std::thread::current`).
///
/// # Panics
/// On a plain thread, outside any coroutine.
pub fn current() -> Current {
    try_current().expect("gort::current called outside a coroutine")
}
