//! Bindings to epoll (Linux): one epoll descriptor per poller, an eventfd
//! registered in it for `wake`, edge-triggered registrations.

use std::{
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use super::Event;
use crate::util::cvt;

/// The token of the wake-up eventfd; `open` refuses it.
const WAKE_TOKEN: u64 = u64::MAX;
/// Events read per `epoll_wait` call.
const BATCH: usize = 128;

/// An epoll instance with its wake-up eventfd.
#[derive(Debug)]
pub(crate) struct Poller {
    epfd: OwnedFd,
    /// Written by `wake`, read (to reset it) by a blocking `poll`.
    eventfd: OwnedFd,
    /// Set by the `wake` that wrote the eventfd, cleared by the `poll` that
    /// consumed it: further wakes meanwhile are dropped (a pending wake-up
    /// already guarantees the poller will return). AcqRel on both sides.
    wake_pending: AtomicBool,
    /// Whether the kernel has epoll_pwait2 (Linux 5.11+), which takes a
    /// nanosecond timeout; without it timeouts round up to milliseconds.
    pwait2: AtomicBool,
}

impl Poller {
    pub(crate) fn new() -> io::Result<Poller> {
        // SAFETY: epoll_create1 has no memory preconditions; on success we
        // own the returned descriptor.
        let epfd = unsafe { OwnedFd::from_raw_fd(cvt(libc::epoll_create1(libc::EPOLL_CLOEXEC))?) };
        // SAFETY: as above, for eventfd.
        let eventfd = unsafe {
            OwnedFd::from_raw_fd(cvt(libc::eventfd(
                0,
                libc::EFD_CLOEXEC | libc::EFD_NONBLOCK,
            ))?)
        };
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: WAKE_TOKEN,
        };
        // SAFETY: both descriptors are open and `ev` is a valid event.
        cvt(unsafe {
            libc::epoll_ctl(
                epfd.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                eventfd.as_raw_fd(),
                &mut ev,
            )
        })?;
        Ok(Poller {
            epfd,
            eventfd,
            wake_pending: AtomicBool::new(false),
            pwait2: AtomicBool::new(true),
        })
    }

    /// Registers `fd`, edge-triggered for read, write and peer hang-up.
    pub(crate) fn open(&self, fd: RawFd, token: u64) -> io::Result<()> {
        if token == WAKE_TOKEN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "netpoll: reserved token",
            ));
        }
        let events = libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET;
        let mut ev = libc::epoll_event {
            events: events as u32,
            u64: token,
        };
        // SAFETY: `ev` is a valid event; a bad `fd` is reported as EBADF.
        cvt(unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) })?;
        Ok(())
    }

    /// Deregisters `fd` (before it is closed).
    pub(crate) fn close(&self, fd: RawFd) -> io::Result<()> {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: as in `open` (the event is ignored by EPOLL_CTL_DEL but
        // must be non-null on old kernels).
        cvt(unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, &mut ev) })?;
        Ok(())
    }

    /// Waits up to `timeout` (`None`: without limit) and appends what became
    /// ready to `out`; returns how many it appended. Returns early, with
    /// whatever it has (possibly nothing), on `wake` or a signal.
    #[cfg(test)]
    pub(crate) fn poll(
        &self,
        timeout: Option<Duration>,
        out: &mut Vec<Event>,
    ) -> io::Result<usize> {
        self.poll_with(timeout, |e| out.push(e))
    }

    /// [`Poller::poll`], handing each event to `f`; returns how many.
    pub(crate) fn poll_with(
        &self,
        timeout: Option<Duration>,
        mut f: impl FnMut(Event),
    ) -> io::Result<usize> {
        let ms: libc::c_int = match timeout {
            None => -1,
            Some(d) if d.is_zero() => 0,
            // Round up: a sub-millisecond wait must still wait.
            Some(d) => d.as_nanos().div_ceil(1_000_000).min(1_000_000_000) as libc::c_int,
        };
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; BATCH];
        let mut n = -1;
        let mut done = false;
        if let Some(d) = timeout.filter(|d| !d.is_zero())
            && self.pwait2.load(Ordering::Relaxed)
        {
            let ts = libc::timespec {
                tv_sec: d.as_secs().min(1 << 31) as libc::time_t,
                tv_nsec: libc::c_long::from(d.subsec_nanos() as i32),
            };
            // SAFETY: `events` has room for BATCH entries, `ts` is a valid
            // timespec, no signal mask (null), as epoll_pwait2(2) documents.
            n = unsafe {
                libc::syscall(
                    libc::SYS_epoll_pwait2,
                    self.epfd.as_raw_fd(),
                    events.as_mut_ptr(),
                    BATCH as libc::c_int,
                    &ts as *const libc::timespec,
                    std::ptr::null::<libc::sigset_t>(),
                    0usize,
                )
            } as libc::c_int;
            if n < 0 && crate::util::last_os_error().raw_os_error() == Some(libc::ENOSYS) {
                self.pwait2.store(false, Ordering::Relaxed);
            } else {
                done = true;
            }
        }
        if !done {
            // SAFETY: `events` has room for BATCH entries.
            n = unsafe {
                libc::epoll_wait(
                    self.epfd.as_raw_fd(),
                    events.as_mut_ptr(),
                    BATCH as libc::c_int,
                    ms,
                )
            };
        }
        if n < 0 {
            let e = crate::util::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(0)
            } else {
                Err(e)
            };
        }
        let mut count = 0;
        for ev in &events[..n as usize] {
            let (bits, token) = (ev.events as libc::c_int, ev.u64);
            if token == WAKE_TOKEN {
                if ms != 0 {
                    // Only a blocking poll consumes the wake-up: a
                    // non-blocking one may run while another M blocks.
                    let mut buf = 0u64;
                    // SAFETY: reads 8 bytes into `buf` from our eventfd.
                    let _ =
                        unsafe { libc::read(self.eventfd.as_raw_fd(), (&raw mut buf).cast(), 8) };
                    // Release: pairs with wake's AcqRel swap.
                    self.wake_pending.store(false, Ordering::Release);
                }
                continue;
            }
            let readable =
                bits & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) != 0;
            let writable = bits & (libc::EPOLLOUT | libc::EPOLLHUP | libc::EPOLLERR) != 0;
            if readable || writable {
                count += 1;
                f(Event {
                    token,
                    readable,
                    writable,
                    error: bits == libc::EPOLLERR,
                    hangup: bits & (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) != 0,
                });
            }
        }
        Ok(count)
    }

    /// Interrupts a blocked `poll` (from any thread).
    pub(crate) fn wake(&self) {
        // AcqRel: only the caller that flips the flag writes the eventfd.
        if self.wake_pending.swap(true, Ordering::AcqRel) {
            return;
        }
        let one = 1u64;
        loop {
            // SAFETY: writes 8 bytes from `one` to our eventfd.
            let n = unsafe { libc::write(self.eventfd.as_raw_fd(), (&raw const one).cast(), 8) };
            if n == 8 {
                return;
            }
            let e = crate::util::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => continue,
                // The counter is saturated: a wake-up is pending anyway.
                io::ErrorKind::WouldBlock => return,
                _ => crate::util::fatal("runtime: netpoll wake-up write failed"),
            }
        }
    }
}
