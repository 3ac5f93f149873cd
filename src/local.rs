//! Coroutine-local storage: [`local!`](crate::local!) declares a
//! [`LocalKey`], a value per coroutine that follows the coroutine from one
//! worker thread to the next.
//!
//! Under gort, `std::thread_local!` is per *worker thread*: a coroutine
//! that parks or yields may resume on another worker thread and see that
//! thread's value, and the coroutines that share a worker share its value.
//! Use `gort::local!` for state that belongs to one coroutine.
//!
//! ```
//! use std::cell::Cell;
//!
//! gort::local! {
//!     /// Requests handled by this coroutine.
//!     static HANDLED: Cell<u32> = Cell::new(0);
//! }
//!
//! gort::run(|| {
//!     let hs: Vec<_> = (1..=3)
//!         .map(|n| {
//!             gort::go!(move || {
//!                 for _ in 0..n {
//!                     HANDLED.set(HANDLED.get() + 1);
//!                     gort::yield_now(); // may move to another thread
//!                 }
//!                 HANDLED.get()
//!             })
//!         })
//!         .collect();
//!     let counts: Vec<u32> = hs.into_iter().map(|h| h.join().unwrap()).collect();
//!     assert_eq!(counts, [1, 2, 3]); // one counter per coroutine
//! });
//! ```
//!
//! # Storage
//! Each G has a small table (a boxed vector of `(key address, boxed
//! value)`), created on its first `with` and dropped when the coroutine
//! ends, before the G is recycled. Outside a coroutine (a plain thread, or
//! a worker thread's scheduler code) the same table lives in a thread-local
//! instead, so a `LocalKey` works everywhere. Values are initialised
//! lazily, on a coroutine's first access, and boxed, so a reference to one
//! stays valid while other keys are initialised.
//!
//! The values of a finished coroutine are dropped on its worker thread's
//! scheduler stack: their destructors must not block or park (a
//! destructor that panics is reported and otherwise ignored).

use std::{
    any::Any,
    cell::{Cell, RefCell, UnsafeCell},
    fmt,
};

type Table = Vec<(usize, Box<dyn Any + Send>)>;

/// The coroutine-local values of one G (or thread).
pub(crate) struct Locals(Option<Box<Table>>);

impl Locals {
    pub(crate) const fn new() -> Locals {
        Locals(None)
    }

    /// Drops every value (the coroutine ended: called on its own stack
    /// right after its function returns, and again when the G is recycled
    /// for anything a destructor re-created). A panicking destructor is
    /// reported, not propagated.
    #[inline]
    pub(crate) fn clear(&mut self) {
        if self.0.is_some() {
            self.clear_slow();
        }
    }

    #[cold]
    fn clear_slow(&mut self) {
        let Some(table) = self.0.take() else { return };
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(table)));
        if r.is_err() {
            crate::util::warn("the destructor of a coroutine-local value panicked");
        }
    }
}

impl fmt::Debug for Locals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Locals({})", self.0.as_ref().map_or(0, |t| t.len()))
    }
}

/// A key for coroutine-local values of type `T`; declared with
/// [`local!`](crate::local!), read with [`with`](LocalKey::with).
///
/// Each coroutine (and each plain thread) has its own value, initialised
/// on its first access. `T` must be `Send`: the value moves between worker
/// threads with its coroutine.
pub struct LocalKey<T: Send + 'static> {
    init: fn() -> T,
}

impl<T: Send + 'static> LocalKey<T> {
    #[doc(hidden)]
    pub const fn new(init: fn() -> T) -> LocalKey<T> {
        LocalKey { init }
    }

    /// Calls `f` with this coroutine's value (initialising it first if
    /// this is the coroutine's first access). On a plain thread, that
    /// thread's value.
    ///
    /// `f` may park or yield: the value stays the coroutine's.
    ///
    /// # Panics
    /// On a plain thread that is exiting (its thread-local table is gone).
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        let p = self.value_ptr();
        // SAFETY: the value is boxed in the table of the running coroutine
        // (or thread), which is dropped only when that coroutine ends (or
        // thread exits) - not while `f` runs on it; it is only handed out
        // as `&T`.
        f(unsafe { &*p })
    }

    /// Finds or creates this key's value for the running coroutine.
    fn value_ptr(&'static self) -> *const T {
        let key = self as *const LocalKey<T> as usize;
        let table: *mut Locals = match crate::sched::g::getg() {
            // SAFETY: the running G owns its fields; we keep only a raw
            // pointer, so a nested `with` (in `init`) is not aliased.
            Some(g) => unsafe { &raw mut g.own().locals },
            None => thread_table(),
        };
        // SAFETY: `table` is the running coroutine's (or thread's) table,
        // valid while it runs; no reference to it is live across `init`.
        if let Some(p) = unsafe { find::<T>(table, key) } {
            return p;
        }
        let value = (self.init)();
        // SAFETY: as above. A nested `with` of this key inside `init` may
        // have inserted a value meanwhile: keep that one.
        unsafe {
            if let Some(p) = find::<T>(table, key) {
                return p;
            }
            let t = (*table).0.get_or_insert_with(Default::default);
            t.push((key, Box::new(value)));
            let b = &t.last().expect("just pushed").1;
            (&**b as &dyn Any)
                .downcast_ref::<T>()
                .expect("a key's value has its type")
        }
    }
}

/// The value of `key` in `table`, if any.
///
/// # Safety
/// `table` is valid and not otherwise borrowed during the call.
unsafe fn find<T: 'static>(table: *mut Locals, key: usize) -> Option<*const T> {
    // SAFETY: forwarded from the caller.
    let t = unsafe { (*table).0.as_ref() }?;
    t.iter().find(|(k, _)| *k == key).map(|(_, b)| {
        (&**b as &dyn Any)
            .downcast_ref::<T>()
            .expect("a key's value has its type") as *const T
    })
}

/// The calling thread's table (outside any coroutine). Not inlined: see
/// the design's rule on thread-locals.
#[inline(never)]
fn thread_table() -> *mut Locals {
    thread_local! {
        static TABLE: UnsafeCell<Locals> = const { UnsafeCell::new(Locals::new()) };
    }
    TABLE
        .try_with(|t| t.get())
        .expect("gort::local: a coroutine-local was used while its thread was exiting")
}

impl<T: Send + 'static> fmt::Debug for LocalKey<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKey").finish_non_exhaustive()
    }
}

impl<T: Copy + Send + 'static> LocalKey<Cell<T>> {
    /// A copy of this coroutine's value.
    pub fn get(&'static self) -> T {
        self.with(Cell::get)
    }

    /// Sets this coroutine's value.
    pub fn set(&'static self, value: T) {
        self.with(|c| c.set(value));
    }

    /// Replaces this coroutine's value, returning the old one.
    pub fn replace(&'static self, value: T) -> T {
        self.with(|c| c.replace(value))
    }
}

impl<T: Send + 'static> LocalKey<RefCell<T>> {
    /// Calls `f` with a shared borrow of this coroutine's value.
    ///
    /// # Panics
    /// If the value is mutably borrowed (by an enclosing `with_borrow_mut`).
    pub fn with_borrow<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        self.with(|c| f(&c.borrow()))
    }

    /// Calls `f` with a mutable borrow of this coroutine's value.
    ///
    /// # Panics
    /// If the value is already borrowed (by an enclosing `with_borrow*`).
    pub fn with_borrow_mut<R>(&'static self, f: impl FnOnce(&mut T) -> R) -> R {
        self.with(|c| f(&mut c.borrow_mut()))
    }

    /// Replaces this coroutine's value, returning the old one.
    pub fn replace(&'static self, value: T) -> T {
        self.with(|c| c.replace(value))
    }

    /// Takes this coroutine's value, leaving `T::default()`.
    pub fn take(&'static self) -> T
    where
        T: Default,
    {
        self.with(|c| c.take())
    }
}

/// Declares coroutine-local statics (gort's `thread_local!`): each
/// coroutine, and each plain thread, gets its own value, initialised on
/// its first access and dropped when the coroutine ends. See
/// [`LocalKey`] and the [`local`](mod@crate::local) module.
///
/// ```
/// use std::cell::RefCell;
///
/// gort::local! {
///     static TRACE: RefCell<Vec<&'static str>> = RefCell::new(Vec::new());
///     pub(crate) static DEPTH: std::cell::Cell<u8> = std::cell::Cell::new(0);
/// }
///
/// gort::run(|| {
///     TRACE.with_borrow_mut(|t| t.push("main"));
///     let other = gort::go!(|| TRACE.with_borrow(|t| t.len())).join().unwrap();
///     assert_eq!(other, 0); // a fresh coroutine starts with a fresh value
///     assert_eq!(TRACE.with_borrow(|t| t.len()), 1);
///     assert_eq!(DEPTH.get(), 0);
/// });
/// ```
#[macro_export]
macro_rules! local {
    () => {};
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr; $($rest:tt)*) => {
        $(#[$attr])*
        $vis static $name: $crate::local::LocalKey<$t> = {
            fn __gort_local_init() -> $t {
                $init
            }
            $crate::local::LocalKey::new(__gort_local_init)
        };
        $crate::local!($($rest)*);
    };
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr) => {
        $crate::local!($(#[$attr])* $vis static $name: $t = $init;);
    };
}
