//! Bindings to kqueue (macOS, FreeBSD): the same `Poller` contract as
//! `epoll.rs` (see the module comment of `netpoll`).
//!
//! UNTESTED: this file cannot be built on the Linux CI machine. It was
//! reviewed line by line against Go 1.19's runtime/netpoll_kqueue.go:
//! - registration: EVFILT_READ and EVFILT_WRITE, both `EV_ADD | EV_CLEAR`
//!   (edge-triggered), for the descriptor's whole life, the token in
//!   `udata` (netpollopen);
//! - close: nothing to do, closing the descriptor removes its kevents
//!   (netpollclose);
//! - wake-up: a non-blocking pipe whose read end is registered for
//!   EVFILT_READ; only a blocking poll drains it (netpollBreak, netpoll);
//! - timeouts above 10^6 s are clamped (Darwin returns EINVAL);
//! - EVFILT_READ with EV_EOF also wakes the writer (a pipe whose reader
//!   went away may report only that).

use std::{
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use super::Event;
use crate::util::cvt;

/// Events read per kevent call.
const BATCH: usize = 64;

/// A kqueue with its wake-up pipe.
#[derive(Debug)]
pub(crate) struct Poller {
    kq: OwnedFd,
    wake_rd: OwnedFd,
    wake_wr: OwnedFd,
    /// As in `epoll.rs`: set by the `wake` that wrote, cleared by the
    /// blocking poll that drained the pipe.
    wake_pending: AtomicBool,
}

fn kevent_for(ident: RawFd, filter: i16, flags: u16, udata: u64) -> libc::kevent {
    // SAFETY: kevent is plain data; all-zero is a valid value (and zeroes
    // the platform-specific extension fields).
    let mut ev: libc::kevent = unsafe { std::mem::zeroed() };
    ev.ident = ident as _;
    ev.filter = filter as _;
    ev.flags = flags as _;
    ev.udata = udata as usize as _;
    ev
}

fn set_cloexec_nonblock(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own, with integer arguments.
    unsafe {
        cvt(libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC))?;
        let fl = cvt(libc::fcntl(fd, libc::F_GETFL))?;
        cvt(libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK))?;
    }
    Ok(())
}

impl Poller {
    pub(crate) fn new() -> io::Result<Poller> {
        // SAFETY: kqueue has no memory preconditions; we own the result.
        let kq = unsafe { OwnedFd::from_raw_fd(cvt(libc::kqueue())?) };
        // SAFETY: as above (fcntl on our own descriptor).
        cvt(unsafe { libc::fcntl(kq.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) })?;
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: pipe writes two descriptors into `fds`, which we then own.
        cvt(unsafe { libc::pipe(fds.as_mut_ptr()) })?;
        // SAFETY: pipe succeeded: both descriptors are ours.
        let (wake_rd, wake_wr) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        set_cloexec_nonblock(wake_rd.as_raw_fd())?;
        set_cloexec_nonblock(wake_wr.as_raw_fd())?;
        let ev = kevent_for(
            wake_rd.as_raw_fd(),
            libc::EVFILT_READ as i16,
            libc::EV_ADD as u16,
            0,
        );
        // SAFETY: one valid change, no event list.
        cvt(unsafe {
            libc::kevent(
                kq.as_raw_fd(),
                &ev,
                1,
                std::ptr::null_mut(),
                0,
                std::ptr::null(),
            )
        })?;
        Ok(Poller {
            kq,
            wake_rd,
            wake_wr,
            wake_pending: AtomicBool::new(false),
        })
    }

    /// Registers `fd` for read and write, edge-triggered (EV_CLEAR).
    pub(crate) fn open(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let flags = (libc::EV_ADD | libc::EV_CLEAR) as u16;
        let evs = [
            kevent_for(fd, libc::EVFILT_READ as i16, flags, token),
            kevent_for(fd, libc::EVFILT_WRITE as i16, flags, token),
        ];
        // SAFETY: two valid changes, no event list.
        cvt(unsafe {
            libc::kevent(
                self.kq.as_raw_fd(),
                evs.as_ptr(),
                2,
                std::ptr::null_mut(),
                0,
                std::ptr::null(),
            )
        })?;
        Ok(())
    }

    /// Nothing to do: closing `fd` removes its kevents.
    pub(crate) fn close(&self, _fd: RawFd) -> io::Result<()> {
        Ok(())
    }

    #[cfg(test)]
    pub(crate) fn poll(
        &self,
        timeout: Option<Duration>,
        out: &mut Vec<Event>,
    ) -> io::Result<usize> {
        self.poll_with(timeout, |e| out.push(e))
    }

    /// Waits up to `timeout` (`None`: without limit) and hands each ready
    /// descriptor to `f`; returns how many.
    pub(crate) fn poll_with(
        &self,
        timeout: Option<Duration>,
        mut f: impl FnMut(Event),
    ) -> io::Result<usize> {
        let ts;
        let tp = match timeout {
            None => std::ptr::null(),
            Some(d) => {
                ts = libc::timespec {
                    tv_sec: d.as_secs().min(1_000_000) as libc::time_t,
                    tv_nsec: d.subsec_nanos() as libc::c_long,
                };
                &ts as *const libc::timespec
            }
        };
        let blocking = timeout.is_none_or(|d| !d.is_zero());
        // SAFETY: kevent is plain data; zeroed entries are valid.
        let mut events: [libc::kevent; BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: no changes; room for BATCH events; `tp` is null or valid.
        let n = unsafe {
            libc::kevent(
                self.kq.as_raw_fd(),
                std::ptr::null(),
                0,
                events.as_mut_ptr(),
                BATCH as libc::c_int,
                tp,
            )
        };
        if n < 0 {
            let e = crate::util::last_os_error();
            // Interrupted: return, the caller recomputes its timeout.
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(0)
            } else {
                Err(e)
            };
        }
        let mut count = 0;
        for ev in &events[..n as usize] {
            if ev.ident as RawFd == self.wake_rd.as_raw_fd() {
                if blocking {
                    let mut buf = [0u8; 16];
                    // SAFETY: reads at most 16 bytes into `buf` from our pipe.
                    let _ = unsafe {
                        libc::read(self.wake_rd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len())
                    };
                    self.wake_pending.store(false, Ordering::Release);
                }
                continue;
            }
            let eof = ev.flags as u16 & libc::EV_EOF as u16 != 0;
            let (readable, writable) = if ev.filter as i16 == libc::EVFILT_READ as i16 {
                (true, eof)
            } else if ev.filter as i16 == libc::EVFILT_WRITE as i16 {
                (false, true)
            } else {
                (false, false)
            };
            if readable || writable {
                count += 1;
                f(Event {
                    token: ev.udata as usize as u64,
                    readable,
                    writable,
                    error: ev.flags as u16 == libc::EV_ERROR as u16,
                    hangup: readable && (eof || ev.flags as u16 & libc::EV_ERROR as u16 != 0),
                });
            }
        }
        Ok(count)
    }

    /// Interrupts a blocked `poll` (from any thread).
    pub(crate) fn wake(&self) {
        if self.wake_pending.swap(true, Ordering::AcqRel) {
            return;
        }
        loop {
            let b = 0u8;
            // SAFETY: writes one byte from `b` to our pipe.
            let n = unsafe { libc::write(self.wake_wr.as_raw_fd(), (&raw const b).cast(), 1) };
            if n == 1 {
                return;
            }
            match crate::util::last_os_error().kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => return, // full: a wake-up is pending
                _ => crate::util::fatal("runtime: netpoll wake-up write failed"),
            }
        }
    }
}
