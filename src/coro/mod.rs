//! `Coroutine`: a stackful coroutine resumed and suspended on one thread.
//!
//! The lowest user-facing layer: the arch switch and an mmap'd stack, with
//! values passed both ways, panics carried out to the caller of
//! [`Coroutine::resume`], and the stack unwound when an unfinished coroutine
//! is dropped. The scheduler builds its G on the same pieces.
//!
//! ```
//! use gort::coro::{Coroutine, CoroutineResult};
//!
//! let mut co = Coroutine::new(|y, mut n: u32| {
//!     for _ in 0..3 {
//!         n = y.suspend(n * 2); // hand n * 2 out, wait for the next input
//!     }
//!     "done"
//! })?;
//! assert_eq!(co.resume(1), CoroutineResult::Yield(2));
//! assert_eq!(co.resume(5), CoroutineResult::Yield(10));
//! assert_eq!(co.resume(7), CoroutineResult::Yield(14));
//! assert_eq!(co.resume(0), CoroutineResult::Return("done"));
//! assert!(co.is_finished());
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # States
//! ```text
//!   Fresh ──resume──▶ Running ──suspend──▶ Suspended ──resume──▶ Running
//!                        │                    │
//!                        └─return / panic─────┴──▶ Finished (stack pooled)
//!   Fresh / Suspended ──drop──▶ unwound on its own stack ──▶ stack pooled
//! ```
//! `Running` is never observable from outside: `resume` holds `&mut self`
//! until the coroutine suspends or finishes. Each resumption passes a
//! pointer to the input (in a `ManuallyDrop` on the caller's stack), or 0
//! to make the coroutine unwind (from `Drop`). The coroutine answers with
//! a pointer into its own stack, which the caller moves out at once: to the
//! yielded `Y` when it suspends (the switch's `from` is its saved context),
//! or to an `Exit` when it finishes (`from` is null).

use std::{
    any::Any,
    cell::Cell,
    fmt, io,
    marker::PhantomData,
    mem::{self, ManuallyDrop},
    panic::{self, AssertUnwindSafe},
    ptr::{self, NonNull},
    sync::atomic::{AtomicU64, Ordering},
};

use crate::{
    arch::{self, StackPointer},
    stack::{self, CANARY_BYTES, Stack, StackSpec},
};

/// What [`Coroutine::resume`] returns: the coroutine suspended with a value,
/// or finished with its return value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CoroutineResult<Y, R> {
    /// The coroutine called [`Yielder::suspend`] with this value.
    Yield(Y),
    /// The coroutine's function returned this value.
    Return(R),
}

impl<Y, R> CoroutineResult<Y, R> {
    /// The yielded value, if any.
    pub fn as_yield(self) -> Option<Y> {
        match self {
            CoroutineResult::Yield(y) => Some(y),
            CoroutineResult::Return(_) => None,
        }
    }

    /// The returned value, if any.
    pub fn as_return(self) -> Option<R> {
        match self {
            CoroutineResult::Yield(_) => None,
            CoroutineResult::Return(r) => Some(r),
        }
    }
}

/// The coroutine's last message, sent with a null `from`.
enum Exit<R> {
    Return(R),
    Panic(Box<dyn Any + Send>),
    /// Finished because `Drop` asked it to unwind.
    Unwound,
}

/// What the caller of `resume` got back, decoded.
enum Outcome<Y, R> {
    Yield(Y),
    Exit(Exit<R>),
}

/// The payload that unwinds a dropped coroutine's stack.
struct ForcedUnwind;

/// Marker type: `!Send`/`!Sync` (raw pointer) and covariant in nothing that
/// would let a coroutine outlive its types.
type NotSendSig<A, B> = (*mut (), fn(A) -> B);

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Gives out coroutine ids: unique in the process, never 0.
pub(crate) fn next_id() -> u64 {
    next_ids(1)
}

/// Reserves `n` consecutive ids; returns the first.
pub(crate) fn next_ids(n: u64) -> u64 {
    NEXT_ID.fetch_add(n, Ordering::Relaxed)
}

/// Configures a [`Coroutine`] before it is created.
#[derive(Clone, Debug)]
pub struct Builder {
    stack_size: usize,
    stack_guard: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// Default settings: [`stack::DEFAULT_STACK_SIZE`], guard page on.
    pub fn new() -> Self {
        Builder {
            stack_size: stack::DEFAULT_STACK_SIZE,
            stack_guard: true,
        }
    }

    /// Usable stack size in bytes (rounded up to whole pages); at least
    /// [`stack::MIN_STACK_SIZE`], else `build` fails.
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = bytes;
        self
    }

    /// `true` (default): a guard page below the stack catches overflow
    /// (a kernel guard region in a shared mapping where the kernel has them,
    /// Linux 6.13+, else a mapping of its own; see
    /// [`stack::guard_regions`]).
    /// `false`: the stack comes from a shared mapping and overflow is caught
    /// by a zero canary at its low end, checked at every switch away, which
    /// is weaker (see the `stack` module) but never needs a mapping of its
    /// own, whatever the kernel.
    pub fn stack_guard(mut self, guard: bool) -> Self {
        self.stack_guard = guard;
        self
    }

    /// Creates the coroutine; it runs `f` on its first [`Coroutine::resume`].
    ///
    /// Fails, with an error saying why, on a bad stack size or when the
    /// stack cannot be mapped (e.g. `vm.max_map_count` reached).
    pub fn build<I, Y, R, F>(self, f: F) -> io::Result<Coroutine<I, Y, R>>
    where
        F: FnOnce(&Yielder<I, Y>, I) -> R + 'static,
    {
        let spec = StackSpec::new(self.stack_size, self.stack_guard)?;
        if spec.guarded() {
            stack::ensure_altstack()?;
        }
        let stack = Stack::new(spec)?;
        Coroutine::on_stack(stack, f)
    }
}

/// A stackful coroutine: `I` is what each resume passes in, `Y` what each
/// suspend passes out, `R` what the function returns.
///
/// It runs on the thread that resumes it and cannot move between threads
/// (its stack may hold references to thread-local data).
pub struct Coroutine<I, Y, R> {
    /// Saved stack pointer while fresh or suspended; `None` once finished.
    sp: Option<StackPointer>,
    /// The stack while the coroutine can still run.
    stack: Option<Stack>,
    id: u64,
    /// The saved stack pointer of the fresh context: `sp` equals it until the first resume.
    fresh_sp: StackPointer,
    _marker: PhantomData<NotSendSig<I, (Y, R)>>,
}

impl<I, Y, R> fmt::Debug for Coroutine<I, Y, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Coroutine")
            .field("id", &self.id)
            .field("started", &self.started())
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl<I, Y, R> Coroutine<I, Y, R> {
    /// Creates a coroutine with the default stack; `f` runs on the first
    /// [`resume`](Self::resume). See [`Builder::build`] for the errors.
    pub fn new<F>(f: F) -> io::Result<Self>
    where
        F: FnOnce(&Yielder<I, Y>, I) -> R + 'static,
    {
        Builder::new().build(f)
    }

    /// Creates a coroutine with a guarded stack of `size` usable bytes.
    pub fn with_stack_size<F>(size: usize, f: F) -> io::Result<Self>
    where
        F: FnOnce(&Yielder<I, Y>, I) -> R + 'static,
    {
        Builder::new().stack_size(size).build(f)
    }

    fn on_stack<F>(stack: Stack, f: F) -> io::Result<Self>
    where
        F: FnOnce(&Yielder<I, Y>, I) -> R + 'static,
    {
        // The closure lives at the top of the coroutine's own stack, above
        // the trampoline's frame; the entry moves it out on first resume.
        let align = mem::align_of::<Start<F>>().max(arch::STACK_ALIGNMENT);
        let top = stack.top() as usize;
        let f_at = top
            .checked_sub(mem::size_of::<Start<F>>())
            .map(|a| a & !(align - 1));
        let room =
            f_at.and_then(|a| a.checked_sub(arch::INIT_FRAME_SIZE + stack.bottom() as usize));
        let (Some(f_at), Some(room)) = (f_at, room) else {
            stack::put(stack);
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the coroutine's closure ({} bytes) does not fit its stack",
                    mem::size_of::<F>()
                ),
            ));
        };
        if room < stack.spec().size() / 2 {
            stack::put(stack);
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the coroutine's closure ({} bytes) takes more than half of its stack; box it",
                    mem::size_of::<F>()
                ),
            ));
        }
        let id = next_id();
        stack.set_owner(id);
        let f_ptr = f_at as *mut Start<F>;
        // SAFETY: `f_at` is aligned for Start<F> and its bytes from
        // it lie in the stack below `top`; the fresh frame goes below
        // `f_at`, which is 16-aligned, with `room` to spare.
        let sp = unsafe {
            f_ptr.write(Start {
                canary: stack.canary(),
                id,
                size: stack.spec().size(),
                f,
            });
            arch::init_stack(f_ptr.cast(), coroutine_entry::<F, I, Y, R>, f_ptr.cast())
        };
        Ok(Coroutine {
            sp: Some(sp),
            stack: Some(stack),
            id,
            fresh_sp: sp,
            _marker: PhantomData,
        })
    }

    /// Runs the coroutine until it suspends or finishes.
    ///
    /// The first call passes `input` as the function's second argument;
    /// later calls make the pending [`Yielder::suspend`] return it. A panic
    /// inside the coroutine finishes it and continues in the caller.
    ///
    /// # Panics
    /// If the coroutine has already finished (or panicked).
    #[inline]
    pub fn resume(&mut self, input: I) -> CoroutineResult<Y, R> {
        let Some(sp) = self.sp else {
            panic!("resume called on a coroutine that has finished");
        };
        let input = ManuallyDrop::new(input);
        // SAFETY: `sp` is this coroutine's suspended context; only `&mut
        // self` can resume it, and it comes back with a pointer to an
        // Outcome on its stack, which we move out before anything else runs
        // there.
        let out = unsafe { self.switch_in(sp, ptr::from_ref(&input) as usize) };
        match out {
            Outcome::Yield(y) => CoroutineResult::Yield(y),
            Outcome::Exit(Exit::Return(r)) => CoroutineResult::Return(r),
            Outcome::Exit(Exit::Panic(p)) => panic::resume_unwind(p),
            Outcome::Exit(Exit::Unwound) => {
                unreachable!("a coroutine unwound without being dropped")
            }
        }
    }

    /// Switches into the coroutine with `msg` and takes its answer.
    ///
    /// # Safety
    /// `sp` is this coroutine's current saved context.
    #[inline(always)]
    unsafe fn switch_in(&mut self, sp: StackPointer, msg: usize) -> Outcome<Y, R> {
        // SAFETY: forwarded from this function's contract.
        let t = unsafe { arch::switch_to_child(sp, msg) };
        self.sp = StackPointer::new(t.from);
        if self.sp.is_some() {
            // SAFETY: a suspending coroutine passes a pointer to its value
            // in a ManuallyDrop it never touches again.
            Outcome::Yield(unsafe { ptr::read(t.arg as *const Y) })
        } else {
            // SAFETY: an exiting coroutine passes a pointer to its Exit in a
            // ManuallyDrop; its stack stays allocated until we release it
            // here, after the read.
            let exit = unsafe { ptr::read(t.arg as *const Exit<R>) };
            self.release_stack();
            Outcome::Exit(exit)
        }
    }

    fn release_stack(&mut self) {
        self.sp = None;
        if let Some(s) = self.stack.take() {
            stack::put(s);
        }
    }

    /// Whether the function has returned (or panicked).
    pub fn is_finished(&self) -> bool {
        self.sp.is_none()
    }

    /// Whether `resume` was ever called.
    pub fn started(&self) -> bool {
        self.sp != Some(self.fresh_sp)
    }

    /// The coroutine's id, as printed in a stack-overflow report.
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl<I, Y, R> Drop for Coroutine<I, Y, R> {
    fn drop(&mut self) {
        let Some(sp) = self.sp else { return };
        if self.started() && cfg!(panic = "abort") {
            // Unwinding is impossible: leak the stack (its frames' memory is
            // never reused, so nothing they point to is invalidated).
            mem::forget(self.stack.take());
            return;
        }
        // SAFETY: as in `resume`; a null word makes the coroutine unwind its
        // stack (or, if fresh, drop its closure) and exit.
        let out = unsafe { self.switch_in(sp, 0) };
        match out {
            Outcome::Exit(Exit::Unwound | Exit::Return(_)) => {}
            Outcome::Exit(Exit::Panic(p)) => {
                if !std::thread::panicking() {
                    panic::resume_unwind(p);
                }
            }
            Outcome::Yield(_) => {
                // The coroutine caught its forced unwind and suspended again.
                // Its frames are live: leak the stack rather than free them.
                crate::util::warn(
                    "a dropped coroutine caught its forced unwind; its stack is leaked",
                );
                self.sp = None;
                mem::forget(self.stack.take());
            }
        }
    }
}

/// The handle a coroutine's function uses to suspend itself.
pub struct Yielder<I, Y> {
    /// The context that resumed us last, which `suspend` returns to.
    parent: Cell<StackPointer>,
    /// Canary of an unguarded stack, checked before every switch away.
    canary: Option<NonNull<[u64; CANARY_BYTES / 8]>>,
    id: u64,
    size: usize,
    _marker: PhantomData<NotSendSig<Y, I>>,
}

impl<I, Y> fmt::Debug for Yielder<I, Y> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Yielder").finish_non_exhaustive()
    }
}

impl<I, Y> Yielder<I, Y> {
    #[inline(always)]
    fn check_canary(&self) {
        if let Some(c) = self.canary {
            // SAFETY: the canary belongs to our stack, which is allocated.
            if !unsafe { stack::canary_intact(c) } {
                stack::overflowed(self.id, self.size, stack::CANARY_OVERWRITTEN);
            }
        }
    }

    /// Suspends the coroutine, making the pending [`Coroutine::resume`]
    /// return `CoroutineResult::Yield(value)`; returns the input of the next
    /// `resume`.
    ///
    /// If the coroutine is dropped while suspended here, this unwinds
    /// instead of returning, so that the coroutine's locals are dropped.
    #[inline]
    pub fn suspend(&self, value: Y) -> I {
        let value = ManuallyDrop::new(value);
        self.check_canary();
        // SAFETY: `parent` is the suspended context that resumed us; it
        // moves the value out before this frame can run again.
        let t =
            unsafe { arch::switch_to_parent(self.parent.get(), ptr::from_ref(&value) as usize) };
        // SAFETY: every resumption comes from a parent, never null.
        self.parent
            .set(unsafe { StackPointer::new_unchecked(t.from) });
        if t.arg == 0 {
            panic::resume_unwind(Box::new(ForcedUnwind));
        }
        // SAFETY: a non-null word is a pointer to the input in a
        // ManuallyDrop in `resume`'s frame; this is its only read.
        unsafe { ptr::read(t.arg as *const I) }
    }
}

/// The first Rust frame on every coroutine stack.
unsafe extern "C" fn coroutine_entry<F, I, Y, R>(arg: usize, from: *mut u8, ctx: *mut u8) -> !
where
    F: FnOnce(&Yielder<I, Y>, I) -> R,
{
    // SAFETY: `on_stack` wrote a Start<F> at ctx; only this frame reads it.
    let Start {
        canary,
        id,
        size,
        f,
    } = unsafe { ptr::read(ctx.cast::<Start<F>>()) };
    let yielder = Yielder::<I, Y> {
        // SAFETY: the first resumption comes from a parent, never null.
        parent: Cell::new(unsafe { StackPointer::new_unchecked(from) }),
        canary,
        id,
        size,
        _marker: PhantomData,
    };
    let input = if arg == 0 {
        None // dropped before it started: drop the closure, run nothing
    } else {
        // SAFETY: a pointer to the input in a ManuallyDrop in `resume`.
        Some(unsafe { ptr::read(arg as *const I) })
    };
    let out = match panic::catch_unwind(AssertUnwindSafe(|| match input {
        Some(input) => Some(f(&yielder, input)),
        None => {
            drop(f);
            None
        }
    })) {
        Ok(Some(r)) => Exit::Return(r),
        Ok(None) => Exit::Unwound,
        Err(p) if p.is::<ForcedUnwind>() => Exit::Unwound,
        Err(p) => Exit::Panic(p),
    };
    let out = ManuallyDrop::new(out);
    yielder.check_canary();
    // SAFETY: nothing left on this stack needs dropping (the parent moves
    // `out` out, `yielder` has no destructor).
    unsafe { arch::exit_to_parent(yielder.parent.get(), ptr::from_ref(&out) as usize) }
}

/// What a fresh stack holds at its top, for the entry: the closure and
/// what the coroutine needs to check its own canary before each switch
/// away (checking there rather than in `resume` keeps the parent's side of
/// the round trip free of it).
struct Start<F> {
    canary: Option<NonNull<[u64; CANARY_BYTES / 8]>>,
    id: u64,
    size: usize,
    f: F,
}
