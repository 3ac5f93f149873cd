//! [`Once`], [`OnceCell`] and [`Lazy`]: one-time initialisation whose
//! racers park (they wait on a gort [`Mutex`], like Go's `sync.Once`,
//! which is a `done` flag plus a mutex).
//!
//! # State
//! `done` goes false → true once, with Release, after the initialiser
//! returned (and, for the cells, after the value was written); a reader
//! that sees it with Acquire sees the value. The slow path takes the
//! mutex and re-checks `done`, so exactly one caller runs the initialiser
//! at a time and the others park on the mutex until it finishes. A panic
//! in the initialiser unlocks the mutex with `done` still false: the next
//! caller runs its own initialiser.

use std::{
    cell::UnsafeCell,
    convert::Infallible,
    fmt,
    ops::Deref,
    sync::atomic::{AtomicBool, Ordering},
};

use super::Mutex;

/// Runs a closure once (Go's `sync.Once`); concurrent callers park until
/// it has finished.
///
/// If the closure panics, the `Once` stays uncalled and the panic goes to
/// the caller; a later `call_once` runs its closure (std's `Once` poisons
/// instead; Go's marks it done). Calling `call_once` from inside its own
/// closure deadlocks.
///
/// ```
/// use gort::sync::Once;
/// static INIT: Once = Once::new();
/// let mut runs = 0;
/// INIT.call_once(|| runs += 1);
/// INIT.call_once(|| runs += 1);
/// assert_eq!(runs, 1);
/// assert!(INIT.is_completed());
/// ```
pub struct Once {
    done: AtomicBool,
    m: Mutex<()>,
}

impl Once {
    /// A `Once` that has not run.
    pub const fn new() -> Once {
        Once {
            done: AtomicBool::new(false),
            m: Mutex::new(()),
        }
    }

    /// Runs `f` if no call has completed yet; returns once some call's
    /// closure has completed (parking while another caller runs it).
    #[inline]
    pub fn call_once<F: FnOnce()>(&self, f: F) {
        if !self.done.load(Ordering::Acquire) {
            self.call_slow(f);
        }
    }

    #[cold]
    fn call_slow<F: FnOnce()>(&self, f: F) {
        let _g = self.m.lock();
        if !self.done.load(Ordering::Relaxed) {
            f();
            self.done.store(true, Ordering::Release);
        }
    }

    /// Whether a call has completed.
    pub fn is_completed(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }
}

impl Default for Once {
    fn default() -> Once {
        Once::new()
    }
}

impl fmt::Debug for Once {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Once")
            .field("done", &self.is_completed())
            .finish_non_exhaustive()
    }
}

/// A cell written once, whose racing initialisers park instead of
/// blocking their threads (like `std::sync::OnceLock`).
///
/// ```
/// use std::sync::Arc;
/// use gort::sync::OnceCell;
///
/// gort::run(|| {
///     let cell = Arc::new(OnceCell::new());
///     let hs: Vec<_> = (0..8)
///         .map(|i| {
///             let cell = cell.clone();
///             gort::go!(move || *cell.get_or_init(|| i))
///         })
///         .collect();
///     let seen: Vec<i32> = hs.into_iter().map(|h| h.join().unwrap()).collect();
///     let won = *cell.get().unwrap();
///     assert!(seen.iter().all(|&v| v == won)); // one initialiser won
/// });
/// ```
pub struct OnceCell<T> {
    done: AtomicBool,
    m: Mutex<()>,
    value: UnsafeCell<Option<T>>,
}

// SAFETY: the value is written once under the mutex before `done`
// (Release) and only read after `done` (Acquire); it may be written on one
// thread and read or dropped on another: T: Send + Sync.
unsafe impl<T: Send + Sync> Sync for OnceCell<T> {}
// SAFETY: owning the cell owns the value.
unsafe impl<T: Send> Send for OnceCell<T> {}

impl<T> OnceCell<T> {
    /// An empty cell.
    pub const fn new() -> OnceCell<T> {
        OnceCell {
            done: AtomicBool::new(false),
            m: Mutex::new(()),
            value: UnsafeCell::new(None),
        }
    }

    /// The value, if the cell is initialised.
    #[inline]
    pub fn get(&self) -> Option<&T> {
        if self.done.load(Ordering::Acquire) {
            // SAFETY: `done` is set after the value was written, and it is
            // never written again while shared.
            unsafe { (*self.value.get()).as_ref() }
        } else {
            None
        }
    }

    /// The value, through a unique borrow.
    pub fn get_mut(&mut self) -> Option<&mut T> {
        self.value.get_mut().as_mut()
    }

    /// Stores `value` if the cell is empty; otherwise gives it back. Parks
    /// while another caller is initialising the cell.
    pub fn set(&self, value: T) -> Result<(), T> {
        let mut value = Some(value);
        self.get_or_init(|| value.take().expect("taken once"));
        match value {
            None => Ok(()),
            Some(v) => Err(v),
        }
    }

    /// The value, initialising it with `f` if the cell is empty. Exactly
    /// one racing caller runs its `f`; the others park until it is done.
    /// If `f` panics, the cell stays empty.
    #[inline]
    pub fn get_or_init<F: FnOnce() -> T>(&self, f: F) -> &T {
        match self.get_or_try_init(|| Ok::<T, Infallible>(f())) {
            Ok(v) => v,
            Err(e) => match e {},
        }
    }

    /// As [`get_or_init`](Self::get_or_init), with an initialiser that may
    /// fail: the error is returned and the cell stays empty.
    pub fn get_or_try_init<E, F: FnOnce() -> Result<T, E>>(&self, f: F) -> Result<&T, E> {
        if let Some(v) = self.get() {
            return Ok(v);
        }
        self.init_slow(f)
    }

    #[cold]
    fn init_slow<E, F: FnOnce() -> Result<T, E>>(&self, f: F) -> Result<&T, E> {
        let _g = self.m.lock();
        if !self.done.load(Ordering::Relaxed) {
            let v = f()?;
            // SAFETY: we hold the mutex and `done` is false: nobody reads
            // or writes the value.
            unsafe { *self.value.get() = Some(v) };
            self.done.store(true, Ordering::Release);
        }
        // SAFETY: done: written, never written again while shared.
        Ok(unsafe { (*self.value.get()).as_ref() }.expect("an initialised cell has a value"))
    }

    /// Takes the value out, leaving the cell empty.
    pub fn take(&mut self) -> Option<T> {
        *self.done.get_mut() = false;
        self.value.get_mut().take()
    }

    /// Consumes the cell, returning its value.
    pub fn into_inner(self) -> Option<T> {
        self.value.into_inner()
    }
}

impl<T> Default for OnceCell<T> {
    fn default() -> OnceCell<T> {
        OnceCell::new()
    }
}

impl<T> From<T> for OnceCell<T> {
    fn from(value: T) -> OnceCell<T> {
        OnceCell {
            done: AtomicBool::new(true),
            m: Mutex::new(()),
            value: UnsafeCell::new(Some(value)),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for OnceCell<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("OnceCell").field(&self.get()).finish()
    }
}

/// A value computed on first access by `F`; racing first accesses park
/// while one of them computes it (like `std::sync::LazyLock`).
///
/// If `F` panics, the panic goes to that caller and every later access
/// panics too (the function is gone).
///
/// ```
/// use gort::sync::Lazy;
/// static TABLE: Lazy<Vec<u32>> = Lazy::new(|| (0..10).map(|i| i * i).collect());
/// assert_eq!(TABLE[3], 9);
/// ```
pub struct Lazy<T, F = fn() -> T> {
    cell: OnceCell<T>,
    init: UnsafeCell<Option<F>>,
}

// SAFETY: `init` is only taken under the cell's mutex (inside
// get_or_init's closure), once, and may run on any thread: F: Send; the
// value is shared as in OnceCell.
unsafe impl<T: Send + Sync, F: Send> Sync for Lazy<T, F> {}
// SAFETY: owning the Lazy owns both.
unsafe impl<T: Send, F: Send> Send for Lazy<T, F> {}

impl<T, F: FnOnce() -> T> Lazy<T, F> {
    /// A lazy value computed by `f` on first access.
    pub const fn new(f: F) -> Lazy<T, F> {
        Lazy {
            cell: OnceCell::new(),
            init: UnsafeCell::new(Some(f)),
        }
    }

    /// Computes the value if needed and returns it.
    pub fn force(this: &Lazy<T, F>) -> &T {
        this.cell.get_or_init(|| {
            // SAFETY: this closure runs under the cell's mutex, with the
            // cell still empty: the only access to `init`.
            let f = unsafe { (*this.init.get()).take() };
            match f {
                Some(f) => f(),
                None => panic!("gort::sync::Lazy: the initialiser panicked earlier"),
            }
        })
    }

    /// The value, if it has been computed.
    pub fn get(this: &Lazy<T, F>) -> Option<&T> {
        this.cell.get()
    }
}

impl<T, F: FnOnce() -> T> Deref for Lazy<T, F> {
    type Target = T;
    fn deref(&self) -> &T {
        Lazy::force(self)
    }
}

impl<T: Default> Default for Lazy<T> {
    fn default() -> Lazy<T> {
        Lazy::new(T::default)
    }
}

impl<T: fmt::Debug, F> fmt::Debug for Lazy<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cell.get() {
            Some(v) => f.debug_tuple("Lazy").field(v).finish(),
            None => f.write_str("Lazy(<uninit>)"),
        }
    }
}
