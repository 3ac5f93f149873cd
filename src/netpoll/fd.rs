//! `PollFd`: a non-blocking descriptor tied to the poller (the `pd` half of
//! Go's `poll.FD`). Every gort socket is one.
//!
//! An I/O call is Go's loop: check for close and a passed deadline, try
//! the system call, and on `EAGAIN` wait for readiness, then try again.
//! How it waits depends on who calls:
//! - a coroutine of the runtime the descriptor is registered with parks on
//!   its `PollDesc` (registration happens at creation inside a coroutine,
//!   else at the first wait from one);
//! - a coroutine of another runtime runs `poll(2)` inside `blocking`, so
//!   its P is handed on;
//! - a plain thread (or any caller once the descriptor's runtime is gone)
//!   runs `poll(2)` in slices of at most [`THREAD_POLL_SLICE`], re-reading
//!   the deadline and the closed flag between slices, so moving a deadline
//!   or closing from elsewhere takes effect within a slice.
//!
//! # Reading a stream after a short read
//! A read of a stream socket that returns less than asked drained the
//! receive queue at that moment, so with edge-triggered readiness anything
//! that arrives later raises a new edge. The next read of a coroutine
//! therefore parks first and reads once woken (or at once if readiness is
//! pending), instead of trying a read that would fail with `EAGAIN`: one
//! system call less per request in a request/response loop (tokio clears
//! its readiness on a short read for the same reason). The hint (`drained`)
//! is dropped whenever readiness is consumed without a read that drains
//! (any wait for reading), and it is not used once the poller has reported
//! a hang-up (`PollDesc::read_closed`): the edge that announced the end of
//! the stream may be the one that woke the short read, and no other comes.

use std::{
    io,
    os::fd::{AsRawFd, OwnedFd, RawFd},
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use super::pd::{Mode, PollDesc, WaitError};
use crate::sched::{self, Sched};
use crate::util::cvt;

/// The longest a plain thread sleeps in poll(2) before re-checking the
/// deadline and the closed flag.
pub(crate) const THREAD_POLL_SLICE: Duration = Duration::from_millis(50);

/// The error of an operation on a closed descriptor (Go's ErrNetClosing).
pub(crate) fn closed_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "use of closed network connection",
    )
}

/// The error of an operation whose deadline passed (Go's ErrDeadlineExceeded).
pub(crate) fn timeout_error() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "i/o timeout")
}

/// The registration of a descriptor with one runtime's poller.
struct Reg {
    sched: Arc<Sched>,
    /// Lives in `sched.netpoll`'s pollcache as long as `sched` does.
    pd: *const PollDesc,
}

// SAFETY: `pd` points into the pollcache of the NetPoll that `sched` keeps
// alive; PollDesc is Sync.
unsafe impl Send for Reg {}
// SAFETY: as above.
unsafe impl Sync for Reg {}

impl Reg {
    fn pd(&self) -> &PollDesc {
        // SAFETY: see the type's Send impl.
        unsafe { &*self.pd }
    }
}

/// A non-blocking descriptor with its readiness state.
pub(crate) struct PollFd {
    fd: OwnedFd,
    reg: OnceLock<Reg>,
    closed: AtomicBool,
    /// The last stream read was short (see the module comment). Touched
    /// only under the socket's read lock.
    drained: AtomicBool,
    /// Read and write deadlines, as set (for waits that do not park).
    deadlines: Mutex<[Option<Instant>; 2]>,
}

impl std::fmt::Debug for PollFd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PollFd")
            .field("fd", &self.fd.as_raw_fd())
            .field("registered", &self.reg.get().is_some())
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish()
    }
}

/// Sets or clears `O_NONBLOCK`.
pub(crate) fn set_nonblocking(fd: RawFd, on: bool) -> io::Result<()> {
    let mut v = libc::c_int::from(on);
    // SAFETY: FIONBIO reads one c_int from a valid pointer.
    cvt(unsafe { libc::ioctl(fd, libc::FIONBIO, &mut v) })?;
    Ok(())
}

fn index(mode: Mode) -> usize {
    match mode {
        Mode::Read => 0,
        Mode::Write => 1,
    }
}

impl PollFd {
    /// Takes `fd`, makes it non-blocking and, inside a coroutine,
    /// registers it with the coroutine's runtime.
    pub(crate) fn new(fd: OwnedFd) -> io::Result<PollFd> {
        set_nonblocking(fd.as_raw_fd(), true)?;
        PollFd::from_nonblocking(fd)
    }

    /// As [`PollFd::new`] for a descriptor already in non-blocking mode
    /// (created with `SOCK_NONBLOCK`, or a dup of one): saves a syscall.
    pub(crate) fn from_nonblocking(fd: OwnedFd) -> io::Result<PollFd> {
        debug_assert!(
            // SAFETY: F_GETFL only reads the descriptor's flags.
            unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) } & libc::O_NONBLOCK != 0,
            "from_nonblocking with a blocking descriptor"
        );
        let pfd = PollFd {
            fd,
            reg: OnceLock::new(),
            closed: AtomicBool::new(false),
            drained: AtomicBool::new(false),
            deadlines: Mutex::new([None, None]),
        };
        if let Some((_, sched)) = sched::current() {
            pfd.register(sched)?;
        }
        Ok(pfd)
    }

    pub(crate) fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The descriptor, taken out of the poller and made blocking again (for
    /// conversion to a std type).
    /// The descriptor itself moves out: no dup, so no EMFILE here.
    pub(crate) fn into_blocking(mut self) -> io::Result<OwnedFd> {
        self.deregister();
        set_nonblocking(self.fd.as_raw_fd(), false)?;
        let mut this = std::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again: the descriptor is
        // moved out once and the other fields are dropped in place once
        // (`reg` is empty after deregister; the rest own no descriptor).
        unsafe {
            let fd = std::ptr::read(&this.fd);
            std::ptr::drop_in_place(&mut this.reg);
            std::ptr::drop_in_place(&mut this.deadlines);
            Ok(fd)
        }
    }

    fn register(&self, sched: &'static Sched) -> io::Result<()> {
        if self.reg.get().is_some() {
            return Ok(());
        }
        let pd = sched.netpoll.open(self.fd.as_raw_fd())?;
        let reg = Reg {
            sched: sched.arc(),
            pd,
        };
        if let Err(reg) = self.reg.set(reg) {
            // Another coroutine registered it first: undo ours.
            reg.sched.netpoll.close(self.fd.as_raw_fd(), reg.pd());
            return Ok(());
        }
        // Carry over deadlines set before registration.
        let dl = *self.deadlines.lock().unwrap_or_else(|e| e.into_inner());
        for mode in [Mode::Read, Mode::Write] {
            if let Some(d) = dl[index(mode)] {
                self.arm(mode, Some(d));
            }
        }
        Ok(())
    }

    fn deregister(&mut self) {
        if let Some(reg) = self.reg.take() {
            reg.sched.netpoll.close(self.fd.as_raw_fd(), reg.pd());
        }
    }

    /// Sets (or with `None` clears) the deadline of one direction, with
    /// Go's SetReadDeadline/SetWriteDeadline semantics: a blocked call
    /// sees the new deadline; one already past fails calls at once.
    pub(crate) fn set_deadline(&self, mode: Mode, deadline: Option<Instant>) {
        self.deadlines.lock().unwrap_or_else(|e| e.into_inner())[index(mode)] = deadline;
        if self.reg.get().is_some() {
            self.arm(mode, deadline);
        }
    }

    /// Hands a deadline to the registered runtime's pollDesc and timers.
    fn arm(&self, mode: Mode, deadline: Option<Instant>) {
        let reg = self.reg.get().expect("armed after registration");
        let sched = &*reg.sched;
        let when = deadline.map(|d| sched.instant_nanos(d));
        let mut timer = None;
        sched.ready_taken(true, || {
            let (g, t) = reg.pd().set_deadline(mode, when, sched.nanotime());
            timer = t;
            g
        });
        if let Some((when, seq)) = timer {
            crate::time::add_deadline_timer(sched, reg.pd, mode, when, seq);
        }
    }

    /// Go's Close: marks the descriptor closed, wakes every waiter (they
    /// fail with a closed error) and shuts the socket down so plain threads
    /// in poll(2) wake as well. The descriptor itself is closed on drop.
    pub(crate) fn close(&self) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Some(reg) = self.reg.get() {
            reg.sched.ready_taken(true, || {
                let (r, w) = reg.pd().close();
                [r, w].into_iter().flatten()
            });
        }
        // SAFETY: shutdown on our open descriptor; ENOTCONN/ENOTSOCK are
        // harmless and ignored (the flag above already fails later calls).
        unsafe { libc::shutdown(self.fd.as_raw_fd(), libc::SHUT_RDWR) };
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Go's prepareRead/prepareWrite: fails at once if closed or if the
    /// direction's deadline has passed.
    fn prepare(&self, mode: Mode) -> io::Result<()> {
        if self.is_closed() {
            return Err(closed_error());
        }
        if let Some(reg) = self.reg.get() {
            return reg.pd().check_error(mode).map_err(wait_error);
        }
        match self.deadline(mode) {
            Some(d) if d <= Instant::now() => Err(timeout_error()),
            _ => Ok(()),
        }
    }

    fn deadline(&self, mode: Mode) -> Option<Instant> {
        self.deadlines.lock().unwrap_or_else(|e| e.into_inner())[index(mode)]
    }

    /// Runs `f` (a non-blocking system call on the descriptor) until it
    /// does not report `WouldBlock`, waiting for `mode` readiness between
    /// tries. `EINTR` is retried.
    pub(crate) fn io<R>(
        &self,
        mode: Mode,
        mut f: impl FnMut(RawFd) -> io::Result<R>,
    ) -> io::Result<R> {
        self.prepare(mode)?;
        loop {
            match f(self.fd.as_raw_fd()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.wait(mode)?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // `close` shuts the socket down, which the poller reports as
                // readiness: a waiter it woke retries on a dead socket and
                // gets EINVAL (accept), EPIPE (send) and the like. Any
                // failure once closed is the closed error (Go's
                // ErrNetClosing).
                Err(_) if self.is_closed() => return Err(closed_error()),
                r => return r,
            }
        }
    }

    /// Reads from a stream socket with `f`, which asks for `len` bytes: as
    /// [`PollFd::io`], except that after a short read the next one waits
    /// for readiness first (see the module comment). Callers hold the
    /// socket's read lock.
    pub(crate) fn read_stream(
        &self,
        len: usize,
        f: impl FnMut(RawFd) -> io::Result<usize>,
    ) -> io::Result<usize> {
        if self.drained.swap(false, Ordering::Relaxed)
            && let Some(pd) = self.park_here()
            && !pd.read_closed()
        {
            // The pollDesc's wait checks for close and an expired deadline
            // first (Go's prepareRead), so no separate `prepare` here.
            self.wait(Mode::Read)?;
        }
        let n = self.io(Mode::Read, f)?;
        if n > 0 && n < len {
            self.drained.store(true, Ordering::Relaxed);
        }
        Ok(n)
    }

    /// The pollDesc the calling coroutine would park on, if it is a
    /// coroutine of the runtime this descriptor is registered with.
    fn park_here(&self) -> Option<&PollDesc> {
        let reg = self.reg.get()?;
        let (_, sched) = sched::current()?;
        std::ptr::eq(&*reg.sched, sched).then(|| reg.pd())
    }

    /// Waits until `mode` may be ready (Go's pollDesc.wait).
    pub(crate) fn wait(&self, mode: Mode) -> io::Result<()> {
        if mode == Mode::Read {
            // Readiness is consumed here without a read that drains.
            self.drained.store(false, Ordering::Relaxed);
        }
        // A G being unwound by teardown cannot park; every other G of a
        // runtime parks, even while it shuts down (its M then stops, and
        // teardown unwinds it): blocking its thread in poll(2) instead would
        // leave `stop_all_ms` joining that thread forever.
        if let Some((g, sched)) = sched::current()
            // SAFETY: the running G owns its own fields.
            && !unsafe { g.own() }.unwinding
        {
            if self.reg.get().is_none() {
                self.register(sched)?;
            }
            let reg = self.reg.get().expect("registered above");
            if std::ptr::eq(&*reg.sched, sched) {
                return reg
                    .pd()
                    .wait(mode, &sched.netpoll.waiters)
                    .map_err(wait_error);
            }
            // Registered with another runtime: hand our P on while we wait.
            return crate::blocking(|| self.thread_wait(mode));
        }
        self.thread_wait(mode)
    }

    /// Waits with poll(2), for callers that cannot park on the pollDesc.
    fn thread_wait(&self, mode: Mode) -> io::Result<()> {
        let events = match mode {
            #[cfg(target_os = "linux")]
            Mode::Read => libc::POLLIN | libc::POLLRDHUP,
            #[cfg(not(target_os = "linux"))]
            Mode::Read => libc::POLLIN,
            Mode::Write => libc::POLLOUT,
        };
        loop {
            if self.is_closed() {
                return Err(closed_error());
            }
            let mut slice = THREAD_POLL_SLICE;
            if let Some(d) = self.deadline(mode) {
                let now = Instant::now();
                if d <= now {
                    return Err(timeout_error());
                }
                slice = slice.min(d - now);
            }
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events,
                revents: 0,
            };
            let ms = slice.as_nanos().div_ceil(1_000_000) as libc::c_int;
            // SAFETY: one valid pollfd.
            let n = unsafe { libc::poll(&mut pfd, 1, ms) };
            if n > 0 {
                return Ok(());
            }
            if n < 0 {
                let e = crate::util::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

fn wait_error(e: WaitError) -> io::Error {
    match e {
        WaitError::Closing => closed_error(),
        WaitError::TimedOut => timeout_error(),
    }
}

impl Drop for PollFd {
    fn drop(&mut self) {
        self.deregister();
    }
}

impl AsRawFd for PollFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
