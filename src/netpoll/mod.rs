//! The network poller: platform-independent part.
//!
//! # The backend contract (Go's netpoll.go, restated)
//! A backend (`epoll.rs` on Linux; kqueue on macOS/BSD to come) provides a
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
//! The scheduler's side (pollDesc with its rg/wg states, netpollblock,
//! deadlines, injectglist) is built on this by the netpoll issue.

#![cfg_attr(
    not(test),
    allow(
        dead_code,
        unused_imports,
        reason = "wired into the scheduler by the netpoll issue"
    )
)]

#[cfg(target_os = "linux")]
mod epoll;
pub(crate) mod pd;
#[cfg(target_os = "linux")]
pub(crate) use self::epoll::Poller;

#[cfg(not(target_os = "linux"))]
compile_error!("gort has a network poller only for Linux (epoll) so far");

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
}

#[cfg(test)]
mod tests;
