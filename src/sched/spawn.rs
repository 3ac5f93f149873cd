//! newproc: spawning a G, and `JoinHandle`.
//!
//! A spawn makes one allocation: the task cell (`task.rs`) holding the
//! closure until it runs and the result until it is joined, a block from
//! the P's cache (`blocks.rs`). The G holds it as a `TaskRef`, the handle
//! as a pointer to its header (the handle knows the result's type). A
//! plain spawn queues the cell without a G, which it gets when it first
//! runs (runnable.rs).
//!
//! # Join state (`Header::state`, one word)
//! ```text
//!   RUNNING ──complete──▶ OK | ERR ──join takes the result──▶ TAKEN
//!      │                     ▲
//!      └──join parks──▶ &Waiter ──complete: copy the waker, then OK | ERR
//! ```
//! - `RUNNING` (0): not finished, nobody waiting. The cell's slot holds
//!   the closure until the G takes it (task.rs, "Layout").
//! - `&Waiter`: a joiner is blocked; the `Waiter` lives on its stack and
//!   stays valid until the state becomes `OK` or `ERR` (the joiner cannot
//!   return before that). The completer copies the waker out *before*
//!   storing the result's state, then wakes it.
//! - `OK` (1) / `ERR` (2): the slot holds the value / the panic's payload
//!   (written before the Release store); the joiner reads it after an
//!   Acquire load.
//! - `TAKEN` (3): the joiner moved the result out; the slot is empty.
//!   Written by the joiner alone, before it releases its reference (the
//!   release orders it before the cell is freed, which reads the state to
//!   know what to drop).

use std::{
    fmt, io,
    marker::PhantomData,
    ptr::NonNull,
    sync::{Arc, atomic::Ordering},
    thread::{self, Thread},
};

use super::{
    Sched,
    g::{GRef, GStatus, WaitReason, getg},
    p::P,
    park::{gopark, goready},
    runnable::Runnable,
    task::{self, Header, Panic, TaskRef},
};
use crate::stack::StackSpec;

pub(crate) const RUNNING: usize = 0;
pub(crate) const OK: usize = 1;
pub(crate) const ERR: usize = 2;
pub(crate) const TAKEN: usize = 3;

/// Who waits for a task to finish.
enum Waiter {
    G(GRef),
    Thread(Thread),
}

/// Writes the task's result into its cell's slot and publishes it (`OK`
/// or `ERR`), waking a joiner that waits.
///
/// # Safety
/// `h` is the header of a cell whose result type is `T`, whose closure
/// has been taken or dropped (the slot is free), completed once.
pub(crate) unsafe fn complete<T>(h: &Header, r: thread::Result<T>) {
    let slot = h.slot();
    // SAFETY: the slot is free and aligned for T and Panic (a union of
    // them); only the completer writes it, before publishing.
    let done = unsafe {
        match r {
            Ok(v) => {
                slot.cast::<T>().write(v);
                OK
            }
            Err(p) => {
                slot.cast::<Panic>().write(Box::new(p));
                ERR
            }
        }
    };
    let mut s = h.state.load(Ordering::Acquire);
    loop {
        if s == RUNNING {
            // Release: the result is visible to whoever sees OK or ERR.
            match h
                .state
                .compare_exchange(RUNNING, done, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(now) => s = now,
            }
            continue;
        }
        // A waiter: copy its waker while the joiner still waits (it
        // cannot leave before OK or ERR), then release it.
        // SAFETY: any state other than RUNNING before completion is a
        // live &Waiter.
        let wake = match unsafe { &*(s as *const Waiter) } {
            Waiter::G(g) => Waiter::G(*g),
            Waiter::Thread(t) => Waiter::Thread(t.clone()),
        };
        h.state.store(done, Ordering::Release);
        match wake {
            Waiter::G(g) => goready(g),
            Waiter::Thread(t) => t.unpark(),
        }
        return;
    }
}

fn is_done(h: &Header) -> bool {
    matches!(h.state.load(Ordering::Acquire), OK | ERR)
}

/// Blocks until the task of `h` finishes (parking the G, or the thread)
/// and takes its result.
///
/// # Safety
/// `h` is the header of a live cell whose result type is `T`, and the
/// caller is its one joiner (it takes the result once).
unsafe fn wait<T>(h: &Header) -> thread::Result<T> {
    if !is_done(h) {
        match getg() {
            Some(g) => {
                let waiter = Waiter::G(g);
                let state = &h.state;
                let w = &waiter as *const Waiter as usize;
                // SAFETY: the callback only CASes the state word (not on
                // the G's stack) and publishes `waiter`, which lives in
                // this frame until we are woken.
                unsafe {
                    gopark(
                        move |_| {
                            state
                                .compare_exchange(RUNNING, w, Ordering::AcqRel, Ordering::Acquire)
                                .is_ok()
                        },
                        WaitReason::Join,
                    );
                }
            }
            None => {
                let waiter = Waiter::Thread(thread::current());
                let w = &waiter as *const Waiter as usize;
                if h.state
                    .compare_exchange(RUNNING, w, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    while !is_done(h) {
                        thread::park();
                    }
                }
            }
        }
    }
    let slot = h.slot();
    // SAFETY: OK or ERR was observed with Acquire: the slot holds that
    // member, which only the joiner (us, once) moves out.
    let r = unsafe {
        match h.state.load(Ordering::Acquire) {
            OK => Ok(slot.cast::<T>().read()),
            ERR => Err(*slot.cast::<Panic>().read()),
            s => unreachable!("join woken in state {s}"),
        }
    };
    h.state.store(TAKEN, Ordering::Relaxed);
    r
}

/// An owned permission to join a coroutine: `join` waits for it to finish
/// and returns its result, or the panic it ended with.
///
/// Dropping the handle detaches the coroutine; it keeps running.
pub struct JoinHandle<T> {
    /// The task cell, of which the handle holds one reference.
    cell: NonNull<Header>,
    _result: PhantomData<fn() -> T>,
    _not_sync: PhantomData<*const ()>,
}

// SAFETY: the handle only moves the right to take a `T` (which is Send);
// its reference to the cell is released atomically.
unsafe impl<T: Send> Send for JoinHandle<T> {}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        // SAFETY: the handle's reference, given up once.
        unsafe { task::release(self.cell) }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.id())
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl<T> JoinHandle<T> {
    /// Waits for the coroutine to finish. Inside a coroutine this parks the
    /// coroutine (its M runs others meanwhile); on a plain thread it blocks
    /// the thread. `Err` carries the panic payload, as `std::thread` does.
    pub fn join(self) -> thread::Result<T> {
        // SAFETY: the cell's result type is T; the handle is its only
        // joiner, consumed here.
        unsafe { wait(self.header()) }
        // (dropping `self` here releases the cell)
    }

    /// Whether the coroutine has finished.
    pub fn is_finished(&self) -> bool {
        is_done(self.header())
    }

    fn header(&self) -> &Header {
        // SAFETY: the handle's reference keeps the cell alive.
        unsafe { self.cell.as_ref() }
    }

    /// The coroutine's id (as `gort::current().id()` reports inside it).
    pub fn id(&self) -> u64 {
        self.header().id()
    }
}

/// Configures a coroutine before spawning it: a name and a stack size.
///
/// ```
/// let answer = gort::run(|| {
///     let h = gort::Builder::new().name("worker").stack_size(64 * 1024)
///         .spawn(|| gort::current().name().map(str::to_owned))?;
///     Ok::<_, std::io::Error>(h.join().unwrap())
/// })
/// .unwrap();
/// assert_eq!(answer.as_deref(), Some("worker"));
/// ```
#[derive(Debug, Default, Clone)]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
}

impl Builder {
    /// Default settings: no name, the runtime's stack size.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the coroutine (`gort::current().name()` inside it).
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Usable stack size in bytes; see [`crate::stack::MIN_STACK_SIZE`].
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Spawns on the runtime of the calling coroutine or worker thread.
    ///
    /// # Errors
    /// A stack size out of range. (A stack that cannot be mapped when the
    /// coroutine first runs finishes it with an error, seen by `join`.)
    ///
    /// # Panics
    /// Outside a gort runtime (use `Runtime::spawn` there).
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        // One read of this thread's M for the runtime and the P.
        let m = super::m::this_m().expect(
            "gort::spawn called outside a gort runtime: call it from a coroutine, or use Runtime::spawn / gort::run",
        );
        let sched = m.sched();
        let spec = self.spec(sched)?;
        Ok(newproc(sched, sched.p_of(m), spec, self.name, f))
    }

    /// Spawns on `sched` from any thread.
    pub(crate) fn spawn_on<F, T>(self, sched: &Sched, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let spec = self.spec(sched)?;
        Ok(newproc(sched, sched.current_p(), spec, self.name, f))
    }

    fn spec(&self, sched: &Sched) -> io::Result<StackSpec> {
        match self.stack_size {
            Some(n) => StackSpec::new(n, sched.spec.guarded()),
            None => Ok(sched.spec),
        }
    }
}

/// The runtime of the calling thread, if it is one of its Ms (a G runs
/// only on its own runtime's Ms).
pub(crate) fn current_sched() -> Option<&'static Sched> {
    super::m::this_m().map(|m| m.sched())
}

/// Queues `f` to run as a new coroutine (Go's newproc): with the
/// runtime's defaults, on an M with a P (`p`: the caller's, in `sched`), as
/// a task that takes its G when it first runs (see runnable.rs); otherwise
/// in a G taken now.
pub(crate) fn newproc<F, T>(
    sched: &Sched,
    p: Option<&'static P>,
    spec: StackSpec,
    name: Option<String>,
    f: F,
) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let id = match p {
        // SAFETY: we own the current P.
        Some(p) => unsafe { p.local() }.take_id(),
        None => crate::coro::next_id(),
    };
    let (task, cell) = task::new_task(p, id, f);
    let r = if p.is_some() && name.is_none() && spec == sched.spec {
        Runnable::task(task)
    } else {
        let g = sched.galloc(p);
        init_g(g, task, name, spec);
        g.into()
    };
    match p {
        Some(p) => {
            super::p::bump(&p.spawned);
            sched.runqput(p, r, true);
            sched.wakep_after_runnext();
        }
        None => {
            sched.spawned_outside.fetch_add(1, Ordering::Relaxed);
            sched.global_put(r);
        }
    }
    JoinHandle {
        cell,
        _result: PhantomData,
        _not_sync: PhantomData,
    }
}

/// Makes the free G `g` (ours) the coroutine of `task`: `Idle` to
/// `Runnable`, with no context yet (its stack comes at first run).
#[inline]
pub(crate) fn init_g(g: GRef, task: TaskRef, name: Option<String>, spec: StackSpec) {
    // SAFETY: a G from a free list is owned by whoever took it.
    let own = unsafe { g.own() };
    g.g().id.store(task.id(), Ordering::Relaxed);
    own.task = Some(task);
    own.name = name.map(Arc::from);
    own.spec = spec;
    own.sp = None;
    g.set_status(GStatus::Runnable);
}
