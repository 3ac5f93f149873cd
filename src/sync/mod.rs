//! Go's `sync` package for coroutines: [`Mutex`], [`RwLock`],
//! [`WaitGroup`], [`Once`], [`Cond`], a weighted [`Semaphore`] and the lazy
//! cells [`OnceCell`] and [`Lazy`].
//!
//! Every primitive here parks the waiting *coroutine*, not its worker
//! thread (which runs other coroutines meanwhile): holding a
//! `std::sync::Mutex` guard while waiting would block a whole worker. They
//! work from plain threads too (the thread blocks), mixed freely with
//! coroutines on the same object, and none of them holds a lock while a
//! waiter is parked.
//!
//! They are built on one wait queue (`sema`: an intrusive FIFO of waiters
//! under a small lock, and Go's runtime semaphore on top of it), on
//! `gopark`/`goready` through the runtime's park/wake handshake, and on
//! timers for the timed waits.
//!
//! None of them poisons: a panic while holding a guard releases it.
//!
//! If a runtime is dropped while coroutines are parked here, they are
//! unwound; each gives back what it was granted (or leaves the queue), so
//! plain threads still using the primitive are not stranded.

mod cond;
mod mutex;
mod once;
mod rwlock;
pub(crate) mod sema;
mod semaphore;
mod waitgroup;

pub use self::{
    cond::Cond,
    mutex::{Mutex, MutexGuard},
    once::{Lazy, Once, OnceCell},
    rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard},
    semaphore::Semaphore,
    waitgroup::WaitGroup,
};
