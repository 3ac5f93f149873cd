//! `Socket`: a [`PollFd`] with the read and write locks of Go's `poll.FD`,
//! and the I/O calls every socket type shares.

use std::{
    io::{self, IoSlice, IoSliceMut},
    os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd},
    time::Instant,
};

use super::{
    lock::IoLock,
    sys::{self, RawAddr, cvt, cvt_size},
};
use crate::netpoll::{
    fd::{PollFd, closed_error},
    pd::Mode,
};

/// Most buffers one readv/writev/sendmsg takes (Linux's `IOV_MAX`).
const IOV_MAX: usize = 1024;

/// A socket of any family and type, tied to the poller.
#[derive(Debug)]
pub(crate) struct Socket {
    pfd: PollFd,
    rlock: IoLock,
    wlock: IoLock,
}

impl Socket {
    /// Wraps `fd`: makes it non-blocking and, inside a coroutine, registers
    /// it with the coroutine's runtime.
    pub(crate) fn new(fd: OwnedFd) -> io::Result<Socket> {
        Ok(Socket::wrap(PollFd::new(fd)?))
    }

    /// As [`Socket::new`] for a descriptor gort created non-blocking
    /// (`SOCK_NONBLOCK`, accept4, socketpair, or a dup of one).
    pub(crate) fn from_nonblocking(fd: OwnedFd) -> io::Result<Socket> {
        Ok(Socket::wrap(PollFd::from_nonblocking(fd)?))
    }

    fn wrap(pfd: PollFd) -> Socket {
        Socket {
            pfd,
            rlock: IoLock::default(),
            wlock: IoLock::default(),
        }
    }

    /// Runs `f` under the read lock until it does not block (see
    /// [`PollFd::io`]).
    pub(crate) fn read_io<R>(&self, f: impl FnMut(RawFd) -> io::Result<R>) -> io::Result<R> {
        let _g = self.rlock.lock();
        self.pfd.io(Mode::Read, f)
    }

    /// As [`Socket::read_io`], for writing.
    pub(crate) fn write_io<R>(&self, f: impl FnMut(RawFd) -> io::Result<R>) -> io::Result<R> {
        let _g = self.wlock.lock();
        self.pfd.io(Mode::Write, f)
    }

    /// Reports any failure of a call that raced with [`Socket::close`] as
    /// the closed error (Go's ErrNetClosing), for `connect`, which waits
    /// outside [`PollFd::io`] (which does the same itself).
    fn closed_err<R>(&self, r: io::Result<R>) -> io::Result<R> {
        match r {
            Err(_) if self.pfd.is_closed() => Err(closed_error()),
            r => r,
        }
    }

    /// For reads: a read of 0 bytes into a
    /// non-empty buffer of a closed socket is the closed error, not EOF.
    fn closed_eof(&self, n: usize, len: usize) -> io::Result<usize> {
        if n == 0 && len > 0 && self.pfd.is_closed() {
            return Err(closed_error());
        }
        Ok(n)
    }

    /// `recv(2)` with `flags` (`MSG_PEEK`), waiting for data.
    pub(crate) fn recv(&self, buf: &mut [u8], flags: libc::c_int) -> io::Result<usize> {
        let len = buf.len();
        let n = self.read_io(|fd| {
            // SAFETY: `buf` is valid for writes of its length.
            cvt_size(unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), flags) })
        })?;
        self.closed_eof(n, len)
    }

    /// `read(2)` of a stream socket, waiting for data (see
    /// [`PollFd::read_stream`] for how it waits after a short read).
    pub(crate) fn read_stream(&self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len();
        let _g = self.rlock.lock();
        let n = self.pfd.read_stream(len, |fd| {
            // SAFETY: `buf` is valid for writes of its length.
            cvt_size(unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) })
        })?;
        self.closed_eof(n, len)
    }

    /// `readv(2)` of a stream socket, waiting for data (as
    /// [`Socket::read_stream`]).
    pub(crate) fn read_stream_vectored(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        let cnt = bufs.len().min(IOV_MAX);
        let len = bufs[..cnt].iter().map(|b| b.len()).sum();
        let _g = self.rlock.lock();
        let n = self.pfd.read_stream(len, |fd| {
            // SAFETY: IoSliceMut is ABI-compatible with iovec on Unix, and
            // each one is valid for writes of its length.
            cvt_size(unsafe { libc::readv(fd, bufs.as_mut_ptr().cast(), cnt as libc::c_int) })
        })?;
        self.closed_eof(n, len)
    }

    /// `recvfrom(2)` with `flags`, waiting for a datagram.
    pub(crate) fn recv_from(
        &self,
        buf: &mut [u8],
        flags: libc::c_int,
    ) -> io::Result<(usize, RawAddr)> {
        let len = buf.len();
        let (n, addr) = self.read_io(|fd| {
            let mut addr = RawAddr::zeroed();
            // SAFETY: `buf` is valid for writes of its length; `addr` has
            // room for `addr.len` bytes.
            let n = cvt_size(unsafe {
                libc::recvfrom(
                    fd,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    flags,
                    addr.as_mut_ptr(),
                    &mut addr.len,
                )
            })?;
            Ok((n, addr))
        })?;
        Ok((self.closed_eof(n, len)?, addr))
    }

    /// `send(2)` with `MSG_NOSIGNAL` (a gone peer is an error, never a
    /// SIGPIPE), waiting for room.
    pub(crate) fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.write_io(|fd| {
            // SAFETY: `buf` is valid for reads of its length.
            cvt_size(unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) })
        })
    }

    /// `sendmsg(2)` of several buffers with `MSG_NOSIGNAL`.
    pub(crate) fn send_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.write_io(|fd| {
            // SAFETY: msghdr is plain data; all zeroes is a valid empty one.
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            // IoSlice is ABI-compatible with iovec on Unix; sendmsg only
            // reads through the pointer.
            msg.msg_iov = bufs.as_ptr().cast_mut().cast();
            msg.msg_iovlen = bufs.len().min(IOV_MAX) as _;
            // SAFETY: `msg` points at `msg_iovlen` valid iovecs.
            cvt_size(unsafe { libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL) })
        })
    }

    /// `sendto(2)` with `MSG_NOSIGNAL`.
    pub(crate) fn send_to(&self, buf: &[u8], addr: &RawAddr) -> io::Result<usize> {
        self.write_io(|fd| {
            // SAFETY: `buf` is valid for reads of its length; `addr` holds
            // `addr.len` bytes of a sockaddr.
            cvt_size(unsafe {
                libc::sendto(
                    fd,
                    buf.as_ptr().cast(),
                    buf.len(),
                    libc::MSG_NOSIGNAL,
                    addr.as_ptr(),
                    addr.len,
                )
            })
        })
    }

    /// Accepts a connection (non-blocking, close-on-exec), waiting for one.
    pub(crate) fn accept(&self) -> io::Result<(Socket, RawAddr)> {
        let (fd, addr) = self.read_io(sys::accept)?;
        Ok((Socket::from_nonblocking(fd)?, addr))
    }

    /// Connects, waiting for the handshake (Go's netFD.connect): the write
    /// deadline bounds the wait.
    pub(crate) fn connect(&self, addr: &RawAddr) -> io::Result<()> {
        let fd = self.as_raw_fd();
        if sys::connect_start(fd, addr)? {
            return Ok(());
        }
        let _g = self.wlock.lock();
        loop {
            let done = self
                .pfd
                .wait(Mode::Write)
                .and_then(|()| sys::connect_done(fd));
            if self.closed_err(done)? {
                return Ok(());
            }
        }
    }

    /// `shutdown(2)`.
    pub(crate) fn shutdown(&self, how: std::net::Shutdown) -> io::Result<()> {
        let how = match how {
            std::net::Shutdown::Read => libc::SHUT_RD,
            std::net::Shutdown::Write => libc::SHUT_WR,
            std::net::Shutdown::Both => libc::SHUT_RDWR,
        };
        // SAFETY: shutdown(2) takes no pointers.
        cvt(unsafe { libc::shutdown(self.as_raw_fd(), how) })?;
        Ok(())
    }

    /// Sets one direction's deadline.
    pub(crate) fn set_deadline(&self, mode: Mode, deadline: Option<Instant>) {
        self.pfd.set_deadline(mode, deadline);
    }

    /// Sets both deadlines.
    pub(crate) fn set_deadlines(&self, deadline: Option<Instant>) {
        self.pfd.set_deadline(Mode::Read, deadline);
        self.pfd.set_deadline(Mode::Write, deadline);
    }

    /// Go's Close (see [`PollFd::close`]).
    pub(crate) fn close(&self) {
        self.pfd.close();
    }

    /// A second socket on the same open file (`dup`), with its own poll
    /// state and deadlines.
    pub(crate) fn try_clone(&self) -> io::Result<Socket> {
        Socket::from_nonblocking(sys::dup(self)?)
    }

    /// The descriptor, taken out of the poller and made blocking again.
    pub(crate) fn into_blocking(self) -> io::Result<OwnedFd> {
        self.pfd.into_blocking()
    }

    /// The pending socket error, cleared by reading it.
    pub(crate) fn take_error(&self) -> io::Result<Option<io::Error>> {
        sys::socket_error(self.as_raw_fd())
    }

    /// Sets an int (or boolean) socket option.
    pub(crate) fn set_int(
        &self,
        level: libc::c_int,
        name: libc::c_int,
        v: libc::c_int,
    ) -> io::Result<()> {
        sys::set_int(self.as_raw_fd(), level, name, v)
    }

    /// Reads an int (or boolean) socket option.
    pub(crate) fn get_int(&self, level: libc::c_int, name: libc::c_int) -> io::Result<libc::c_int> {
        sys::get_int(self.as_raw_fd(), level, name)
    }

    /// The descriptor, borrowed.
    pub(crate) fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the PollFd owns the descriptor and keeps it open until
        // it is dropped, which the borrow of `self` prevents.
        unsafe { BorrowedFd::borrow_raw(self.pfd.as_raw_fd()) }
    }
}

impl AsRawFd for Socket {
    fn as_raw_fd(&self) -> RawFd {
        self.pfd.as_raw_fd()
    }
}

/// The conversions every socket type has: raw and owned descriptors, and
/// the std type it mirrors. `$t` must have a `sock: Socket` field.
macro_rules! fd_conversions {
    ($t:ident, $std:ty) => {
        impl $t {
            /// Converts a std socket into a gort one: makes it non-blocking
            /// and, inside a coroutine, registers it with the runtime.
            pub fn from_std(s: $std) -> ::std::io::Result<$t> {
                Ok($t {
                    sock: $crate::net::socket::Socket::new(::std::os::fd::OwnedFd::from(s))?,
                })
            }

            /// Converts into the std socket: takes the descriptor out of
            /// the poller and makes it blocking again. Deadlines do not
            /// carry over.
            pub fn into_std(self) -> ::std::io::Result<$std> {
                Ok(<$std>::from(self.sock.into_blocking()?))
            }
        }

        impl ::std::os::fd::AsRawFd for $t {
            fn as_raw_fd(&self) -> ::std::os::fd::RawFd {
                ::std::os::fd::AsRawFd::as_raw_fd(&self.sock)
            }
        }

        impl ::std::os::fd::AsFd for $t {
            fn as_fd(&self) -> ::std::os::fd::BorrowedFd<'_> {
                self.sock.as_fd()
            }
        }

        /// The descriptor is taken out of the poller and made blocking
        /// again.
        ///
        /// # Panics
        /// If that fails (see [`into_std`](Self::into_std)).
        impl ::std::os::fd::IntoRawFd for $t {
            fn into_raw_fd(self) -> ::std::os::fd::RawFd {
                ::std::os::fd::IntoRawFd::into_raw_fd(
                    self.sock
                        .into_blocking()
                        .expect("taking a descriptor out of the poller"),
                )
            }
        }

        /// The descriptor is made non-blocking.
        ///
        /// # Panics
        /// If it cannot be made non-blocking or registered with the poller
        /// (use [`from_std`](Self::from_std) to get the error instead).
        impl ::std::os::fd::FromRawFd for $t {
            unsafe fn from_raw_fd(fd: ::std::os::fd::RawFd) -> $t {
                // SAFETY: forwarded from this function's contract: `fd` is
                // an open socket the caller hands over.
                let fd = unsafe {
                    <::std::os::fd::OwnedFd as ::std::os::fd::FromRawFd>::from_raw_fd(fd)
                };
                <$t>::from(fd)
            }
        }

        /// The descriptor is made non-blocking.
        ///
        /// # Panics
        /// If it cannot be made non-blocking or registered with the poller.
        impl From<::std::os::fd::OwnedFd> for $t {
            fn from(fd: ::std::os::fd::OwnedFd) -> $t {
                $t {
                    sock: $crate::net::socket::Socket::new(fd)
                        .expect("registering a socket with the poller"),
                }
            }
        }

        /// The descriptor is taken out of the poller and made blocking.
        ///
        /// # Panics
        #[doc = concat!("If that fails (see [`into_std`](", stringify!($t), "::into_std)).")]
        impl From<$t> for ::std::os::fd::OwnedFd {
            fn from(s: $t) -> ::std::os::fd::OwnedFd {
                s.sock
                    .into_blocking()
                    .expect("taking a descriptor out of the poller")
            }
        }

        #[doc = concat!("See [`from_std`](", stringify!($t), "::from_std).")]
        ///
        /// # Panics
        /// If the socket cannot be made non-blocking or registered with the
        /// poller (`from_std` returns that error instead).
        impl From<$std> for $t {
            fn from(s: $std) -> $t {
                <$t>::from_std(s).expect("registering a socket with the poller")
            }
        }

        #[doc = concat!("See [`into_std`](", stringify!($t), "::into_std).")]
        ///
        /// # Panics
        /// If the descriptor cannot be taken out of the poller (`into_std`
        /// returns that error instead).
        impl From<$t> for $std {
            fn from(s: $t) -> $std {
                s.into_std().expect("taking a descriptor out of the poller")
            }
        }
    };
}
pub(crate) use fd_conversions;
