//! The runtime's own blocking primitives, for building new ones: Go's
//! `gopark` and `goready`. Channels, locks and timers are built only on
//! these.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use gort::rt::{self, Gp, WaitReason};
//!
//! /// A one-shot event: `wait` parks until `set`.
//! #[derive(Default)]
//! struct Event { state: Mutex<(bool, Option<Gp>)> }
//!
//! impl Event {
//!     fn wait(&self) {
//!         let mut st = self.state.lock().unwrap();
//!         if st.0 { return; }
//!         // The guard moves into the callback, which runs after this
//!         // coroutine is off its stack: it publishes the coroutine, then
//!         // unlocks. `set` cannot see it before it is parked.
//!         // SAFETY: the callback touches only the guard it owns.
//!         unsafe {
//!             rt::gopark(move |g| { st.1 = Some(g); drop(st); true }, WaitReason::Other);
//!         }
//!     }
//!     fn set(&self) {
//!         let mut st = self.state.lock().unwrap();
//!         st.0 = true;
//!         if let Some(g) = st.1.take() {
//!             drop(st);
//!             // SAFETY: `g` was published by `wait`'s callback; readied once.
//!             unsafe { rt::goready(g) };
//!         }
//!     }
//! }
//!
//! gort::run(|| {
//!     let ev = Arc::new(Event::default());
//!     let e = ev.clone();
//!     let waiter = gort::spawn(move || e.wait());
//!     gort::yield_now();
//!     ev.set();
//!     waiter.join().unwrap();
//! });
//! ```

pub use crate::sched::g::WaitReason;
use crate::sched::{g::GRef, park};

/// A parked coroutine, handed to `gopark`'s callback and given back to
/// [`goready`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Gp(GRef);

impl std::fmt::Debug for Gp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gp({})", self.0.id())
    }
}

impl Gp {
    /// The coroutine's id.
    pub fn id(&self) -> u64 {
        self.0.id()
    }
}

/// Parks the calling coroutine until [`goready`] is called on it.
///
/// Runs `unlockf(gp)` *after* this coroutine has left its own stack: on
/// the scheduler's stack (g0), or first thing in the coroutine this thread
/// switches to directly when one is waiting to run next. If it returns
/// `true` the coroutine stays parked; the callback must have published `gp`
/// somewhere a waker will find it. If it returns `false` the coroutine is
/// runnable again at once (the condition it waited for already holds): it
/// resumes straight away, or next on this processor. Because publication
/// happens off-stack, a waker can never resume a coroutine that is still
/// running.
///
/// `unlockf` is moved off this stack before it runs, so the values it
/// owns (a lock guard, an `Arc`) stay valid for its whole run.
///
/// # Safety
/// - Once `unlockf` has published `gp`, the coroutine may already be
///   running on another thread: from then on the callback must not touch
///   anything on the coroutine's stack (data it merely *borrows* from the
///   caller's frame), only what it owns or what lives elsewhere.
/// - `unlockf` must not park, and must not panic (it runs on the scheduler
///   or inside another coroutine's switch).
///
/// # Panics
/// Outside a coroutine.
pub unsafe fn gopark<F: FnOnce(Gp) -> bool>(unlockf: F, reason: WaitReason) {
    // SAFETY: forwarded from this function's contract.
    unsafe { park::gopark(move |g| unlockf(Gp(g)), reason) }
}

/// Makes a coroutine parked by [`gopark`] runnable again: it will run
/// soon, preferably next on the current processor.
///
/// # Safety
/// `gp` came from a `gopark` callback that returned `true`, and this is the
/// one `goready` for that park (a second one, made after the first, aborts
/// the process while the runtime lives; two racing calls or one after the
/// runtime is dropped are undefined behaviour).
pub unsafe fn goready(gp: Gp) {
    park::goready(gp.0);
}
