//! The network poller: platform-independent part.
//!
//! # The backend contract (Go's netpoll.go, restated)
//! A backend (`epoll.rs` on Linux; `kqueue.rs` on macOS and FreeBSD, which
//! cannot be built here and is untested) provides a
//! [`Poller`] with:
//! - `Poller::new()`: the poller descriptor, plus a wake-up descriptor
//!   registered in it, so that [`Poller::wake`] can interrupt a blocked
//!   [`Poller::poll`] (Go's netpollinit).
//! - `open(fd, token)`: registers `fd` once, edge-triggered for read and
//!   write (and peer hang-up); every later event for `fd` carries `token`
//!   (Go's netpollopen; the token will be a tagged pollDesc pointer).
//! - `close(fd)`: deregisters it (Go's netpollclose).
//! - `poll(timeout, events)`: waits at most `timeout` (`None`: forever,
//!   zero: just look) and appends the ready [`Event`]s; a wake-up ends the
//!   wait early and is not reported as an event (Go's netpoll(delay)).
//! - `wake()`: interrupts a blocked `poll` from any thread; calls while a
//!   wake-up is already pending are dropped (Go's netpollBreak with
//!   netpollWakeSig).
//!
//! # The scheduler's side (`NetPoll`, one per runtime)
//! - the pollcache: `PollDesc`s in blocks that are never freed while the
//!   runtime's `NetPoll` lives, recycled through a free list; a
//!   descriptor's token is its address with its `fdseq` in the top 16 bits,
//!   so an event for an earlier owner is recognised and dropped;
//! - `netpoll(delay)`: polls and hands back the Gs made ready
//!   (netpollready), for the scheduler to inject;
//! - `waiters` (netpollWaiters), `blocked`/`poll_until` (is an M asleep in
//!   `poll`, and until when) and `last_poll` (for sysmon), read by the
//!   scheduler to decide who polls.
//!
//! One `NetPoll` per runtime, not per process: a runtime's Gs are woken
//! only by its own Ms, and dropping a runtime cannot race another runtime's
//! poller over its Gs. A descriptor registered with one runtime and used
//! elsewhere (a plain thread, another runtime, after its runtime is gone)
//! is waited for with poll(2) instead (see `fd.rs`).

#[cfg(target_os = "linux")]
mod epoll;
pub(crate) mod fd;
#[cfg(any(target_os = "macos", target_os = "freebsd"))]
mod kqueue;
pub(crate) mod pd;

use std::{
    io,
    os::fd::RawFd,
    sync::{
        Mutex,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

#[cfg(target_os = "linux")]
pub(crate) use self::epoll::Poller;
#[cfg(any(target_os = "macos", target_os = "freebsd"))]
pub(crate) use self::kqueue::Poller;
use self::pd::{Mode, PollDesc};
use crate::sched::g::GRef;

#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "freebsd")))]
compile_error!("gort has a network poller for Linux (epoll), macOS and FreeBSD (kqueue) only");

/// Descriptors allocated at once by the pollcache.
const PD_BLOCK: usize = 64;
/// Bits of a token that hold the descriptor's address.
const ADDR_BITS: u32 = 48;
const ADDR_MASK: u64 = (1 << ADDR_BITS) - 1;

/// A runtime's poller, pollcache and poll bookkeeping.
pub(crate) struct NetPoll {
    poller: Poller,
    cache: Mutex<PollCache>,
    /// Gs parked on a descriptor of this poller (Go's netpollWaiters).
    pub(crate) waiters: AtomicUsize,
    /// An M is blocked in `netpoll` (Go: `sched.lastpoll == 0`).
    pub(crate) blocked: AtomicBool,
    /// When that M wakes by itself, in runtime ns (`u64::MAX`: never).
    pub(crate) poll_until: AtomicU64,
    /// When the poller was last polled, in runtime ns (for sysmon).
    pub(crate) last_poll: AtomicU64,
}

/// Free and used descriptors. Blocks are boxed slices that never move.
#[derive(Default)]
struct PollCache {
    blocks: Vec<Box<[PollDesc]>>,
    free: Vec<*const PollDesc>,
}

// SAFETY: the raw pointers in the free list point into `blocks`, owned by
// the cache; PollDesc is Sync.
unsafe impl Send for PollCache {}

impl std::fmt::Debug for NetPoll {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetPoll")
            .field("waiters", &self.waiters.load(Ordering::Relaxed))
            .field("blocked", &self.blocked.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl NetPoll {
    pub(crate) fn new() -> io::Result<NetPoll> {
        Ok(NetPoll {
            poller: Poller::new()?,
            cache: Mutex::new(PollCache::default()),
            waiters: AtomicUsize::new(0),
            blocked: AtomicBool::new(false),
            poll_until: AtomicU64::new(u64::MAX),
            last_poll: AtomicU64::new(0),
        })
    }

    /// Takes a descriptor from the pollcache and registers `fd` with the
    /// poller under its token (Go's poll_runtime_pollOpen). The descriptor
    /// lives as long as this `NetPoll`.
    pub(crate) fn open(&self, fd: RawFd) -> io::Result<&PollDesc> {
        let pd = self.alloc();
        let token =
            pd as *const PollDesc as u64 | (pd.fdseq.load(Ordering::Relaxed) & 0xffff) << ADDR_BITS;
        if let Err(e) = self.poller.open(fd, token) {
            self.free(pd);
            return Err(e);
        }
        Ok(pd)
    }

    /// Deregisters `fd` and returns its descriptor to the pollcache (Go's
    /// poll_runtime_pollClose). Nobody may wait on `pd` any more.
    pub(crate) fn close(&self, fd: RawFd, pd: &PollDesc) {
        // An error means the descriptor is already gone from the epoll set
        // (closed elsewhere): nothing is left to undo.
        let _ = self.poller.close(fd);
        self.free(pd);
    }

    fn alloc(&self) -> &PollDesc {
        let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if c.free.is_empty() {
            let block: Box<[PollDesc]> = (0..PD_BLOCK).map(|_| PollDesc::default()).collect();
            let base = block.as_ptr();
            if base as u64 + (PD_BLOCK * std::mem::size_of::<PollDesc>()) as u64 > ADDR_MASK {
                crate::util::fatal("runtime: pollDesc above the 48-bit address space");
            }
            c.free
                .extend((0..PD_BLOCK).rev().map(|i| base.wrapping_add(i)));
            c.blocks.push(block);
        }
        let pd = c.free.pop().expect("refilled above");
        // SAFETY: free-list pointers point into blocks we own and never
        // free while `self` lives; the returned borrow is tied to `self`.
        unsafe { &*pd }
    }

    fn free(&self, pd: &PollDesc) {
        pd.reset();
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .free
            .push(pd);
    }

    /// Go's netpoll(delay): waits up to `delay` (`None`: until woken, zero:
    /// just look) and passes each G made runnable to `ready` (they are
    /// still `Waiting`; the caller makes them runnable).
    pub(crate) fn netpoll(&self, delay: Option<Duration>, mut ready: impl FnMut(GRef)) {
        let r = self.poller.poll_with(delay, |ev| {
            let addr = ev.token & ADDR_MASK;
            // SAFETY: tokens are addresses of descriptors in our pollcache,
            // which are never freed while `self` lives.
            let pd = unsafe { &*(addr as *const PollDesc) };
            if (pd.fdseq.load(Ordering::Acquire) & 0xffff) != ev.token >> ADDR_BITS {
                return; // stale: for an earlier owner of the descriptor
            }
            if ev.hangup {
                // Before the unblock, so a reader it wakes sees it.
                pd.set_read_closed();
            }
            if ev.readable
                && let Some(g) = pd.unblock(Mode::Read, true)
            {
                ready(g);
            }
            if ev.writable
                && let Some(g) = pd.unblock(Mode::Write, true)
            {
                ready(g);
            }
        });
        if let Err(e) = r {
            crate::util::fatal(&format!("runtime: netpoll failed: {e}"));
        }
    }

    /// Go's netpollBreak: interrupts an M blocked in `netpoll`.
    pub(crate) fn wake(&self) {
        self.poller.wake();
    }

    /// Whether any G waits on this poller.
    pub(crate) fn has_waiters(&self) -> bool {
        self.waiters.load(Ordering::SeqCst) > 0
    }
}

/// Readiness of one registered descriptor, as reported by `poll`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Event {
    /// The token given to `open`.
    pub(crate) token: u64,
    /// Readable, or the peer hung up, or an error is pending.
    pub(crate) readable: bool,
    /// Writable, or hung up, or an error is pending.
    pub(crate) writable: bool,
    /// Only an error was reported (Go's setEventErr).
    pub(crate) error: bool,
    /// The peer will send nothing more: it shut down its side or reset the
    /// connection, or an error is pending (EPOLLRDHUP/HUP/ERR, EV_EOF).
    pub(crate) hangup: bool,
}

#[cfg(test)]
mod tests;
