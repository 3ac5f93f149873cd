//! Unix domain sockets: [`UnixListener`], [`UnixStream`] and
//! [`UnixDatagram`] (Go's `UnixListener`/`UnixConn`).
//!
//! Addresses are std's [`std::os::unix::net::SocketAddr`]: paths, Linux
//! abstract names, or unnamed.

use std::{
    fmt,
    io::{self, IoSlice, IoSliceMut, Read, Write},
    net::Shutdown,
    os::fd::AsRawFd,
    path::Path,
    time::Instant,
};

use super::{
    socket::{Socket, fd_conversions},
    sys::{self, RawAddr},
};
use crate::netpoll::pd::Mode;

pub use std::os::unix::net::SocketAddr;

/// A Unix stream socket listening for connections (std's
/// `UnixListener`).
///
/// ```
/// use std::io::{Read, Write};
/// use gort::net::{UnixListener, UnixStream};
///
/// let dir = std::env::temp_dir().join(format!("gort-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("echo.sock");
/// let _ = std::fs::remove_file(&path);
/// gort::run(move || {
///     let listener = UnixListener::bind(&path).unwrap();
///     let server = gort::go!(move || {
///         let (mut conn, _) = listener.accept().unwrap();
///         let mut buf = [0; 2];
///         conn.read_exact(&mut buf).unwrap();
///         conn.write_all(&buf).unwrap();
///     });
///     let mut c = UnixStream::connect(&path).unwrap();
///     c.write_all(b"hi").unwrap();
///     let mut buf = [0; 2];
///     c.read_exact(&mut buf).unwrap();
///     assert_eq!(&buf, b"hi");
///     server.join().unwrap();
///     std::fs::remove_file(&path).unwrap();
/// });
/// ```
pub struct UnixListener {
    sock: Socket,
}

/// A Unix stream connection (std's `UnixStream`); see
/// [`TcpStream`](super::TcpStream) for how reads, writes, deadlines and
/// [`close`](UnixStream::close) behave.
pub struct UnixStream {
    sock: Socket,
}

/// A Unix datagram socket (std's `UnixDatagram`).
pub struct UnixDatagram {
    sock: Socket,
}

/// An endless iterator over a [`UnixListener`]'s connections.
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a UnixListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<UnixStream>;

    fn next(&mut self) -> Option<io::Result<UnixStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

fn local_addr(sock: &Socket) -> io::Result<SocketAddr> {
    sys::to_unix_addr(&sys::local_raw(sock.as_raw_fd())?)
}

fn peer_addr(sock: &Socket) -> io::Result<SocketAddr> {
    sys::to_unix_addr(&sys::peer_raw(sock.as_raw_fd())?)
}

/// A blocking Unix socket connected to `addr`, made non-blocking after.
///
/// A non-blocking connect to a Unix listener whose backlog is full fails
/// with `EAGAIN` and gives no readiness event to wait for, so the connect
/// (normally immediate) is done blocking, inside [`crate::blocking`].
fn connect_blocking(ty: libc::c_int, addr: &RawAddr) -> io::Result<Socket> {
    let fd = sys::socket_flags(libc::AF_UNIX, ty)?;
    crate::blocking(|| {
        loop {
            // SAFETY: `addr` holds `addr.len` bytes of a sockaddr_un.
            match sys::cvt(unsafe { libc::connect(fd.as_raw_fd(), addr.as_ptr(), addr.len) }) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    })?;
    Socket::new(fd)
}

impl UnixListener {
    /// Creates a listener bound to the path `path` (which must not exist).
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        UnixListener::bind_raw(&sys::unix_path(path.as_ref())?)
    }

    /// Creates a listener bound to `addr` (a path or an abstract name).
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixListener> {
        UnixListener::bind_raw(&sys::unix_from_std(addr)?)
    }

    fn bind_raw(addr: &RawAddr) -> io::Result<UnixListener> {
        let sock = Socket::from_nonblocking(sys::socket(libc::AF_UNIX, libc::SOCK_STREAM)?)?;
        sys::bind(sock.as_raw_fd(), addr)?;
        sys::listen(sock.as_raw_fd())?;
        Ok(UnixListener { sock })
    }

    /// Waits for a connection (see [`TcpListener::accept`](super::TcpListener::accept)).
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (sock, addr) = self.sock.accept()?;
        Ok((UnixStream { sock }, sys::to_unix_addr(&addr)?))
    }

    /// An endless iterator of accepted connections.
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        local_addr(&self.sock)
    }

    /// Sets (or clears) the deadline of [`accept`](UnixListener::accept).
    pub fn set_deadline(&self, deadline: Option<Instant>) {
        self.sock.set_deadline(Mode::Read, deadline);
    }

    /// Stops the listener (Go's `Close`); the socket file is not removed.
    pub fn close(&self) {
        self.sock.close();
    }

    /// A second handle to the same socket (`dup`).
    pub fn try_clone(&self) -> io::Result<UnixListener> {
        Ok(UnixListener {
            sock: self.sock.try_clone()?,
        })
    }

    /// The pending socket error (`SO_ERROR`), cleared by reading it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.take_error()
    }
}

impl UnixStream {
    /// Connects to the listener at `path`.
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        let addr = sys::unix_path(path.as_ref())?;
        Ok(UnixStream {
            sock: connect_blocking(libc::SOCK_STREAM, &addr)?,
        })
    }

    /// Connects to `addr` (a path or an abstract name).
    pub fn connect_addr(addr: &SocketAddr) -> io::Result<UnixStream> {
        let addr = sys::unix_from_std(addr)?;
        Ok(UnixStream {
            sock: connect_blocking(libc::SOCK_STREAM, &addr)?,
        })
    }

    /// Two connected, unnamed streams (`socketpair(2)`).
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = sys::socketpair(libc::SOCK_STREAM)?;
        Ok((
            UnixStream {
                sock: Socket::from_nonblocking(a)?,
            },
            UnixStream {
                sock: Socket::from_nonblocking(b)?,
            },
        ))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        local_addr(&self.sock)
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        peer_addr(&self.sock)
    }

    /// Shuts down the read half, the write half or both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.sock.shutdown(how)
    }

    /// Sets both deadlines; `None` clears them.
    pub fn set_deadline(&self, deadline: Option<Instant>) {
        self.sock.set_deadlines(deadline);
    }

    /// Sets (or clears) the read deadline (Go's `SetReadDeadline`).
    pub fn set_read_deadline(&self, deadline: Option<Instant>) {
        self.sock.set_deadline(Mode::Read, deadline);
    }

    /// Sets (or clears) the write deadline (Go's `SetWriteDeadline`).
    pub fn set_write_deadline(&self, deadline: Option<Instant>) {
        self.sock.set_deadline(Mode::Write, deadline);
    }

    /// Go's `Close`: wakes waiting readers and writers, which fail with
    /// [`io::ErrorKind::NotConnected`]; the descriptor closes on drop.
    pub fn close(&self) {
        self.sock.close();
    }

    /// A second handle to the same connection (`dup`).
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        Ok(UnixStream {
            sock: self.sock.try_clone()?,
        })
    }

    /// Reads without consuming (`MSG_PEEK`).
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.recv(buf, libc::MSG_PEEK)
    }

    /// The pending socket error (`SO_ERROR`), cleared by reading it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.take_error()
    }
}

impl Read for &UnixStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.read_stream(buf)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.sock.read_stream_vectored(bufs)
    }
}

impl Write for &UnixStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sock.send(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.sock.send_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for UnixStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        (&*self).read_vectored(bufs)
    }
}

impl Write for UnixStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl UnixDatagram {
    /// Creates a datagram socket bound to `path`.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixDatagram> {
        UnixDatagram::bind_raw(&sys::unix_path(path.as_ref())?)
    }

    /// Creates a datagram socket bound to `addr` (a path or an abstract
    /// name).
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixDatagram> {
        UnixDatagram::bind_raw(&sys::unix_from_std(addr)?)
    }

    fn bind_raw(addr: &RawAddr) -> io::Result<UnixDatagram> {
        let d = UnixDatagram::unbound()?;
        sys::bind(d.sock.as_raw_fd(), addr)?;
        Ok(d)
    }

    /// A datagram socket bound to no address.
    pub fn unbound() -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            sock: Socket::from_nonblocking(sys::socket(libc::AF_UNIX, libc::SOCK_DGRAM)?)?,
        })
    }

    /// Two connected, unnamed datagram sockets.
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = sys::socketpair(libc::SOCK_DGRAM)?;
        Ok((
            UnixDatagram {
                sock: Socket::from_nonblocking(a)?,
            },
            UnixDatagram {
                sock: Socket::from_nonblocking(b)?,
            },
        ))
    }

    /// Sets the default peer to the socket at `path`.
    pub fn connect<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
        let addr = sys::unix_path(path.as_ref())?;
        // SAFETY: `addr` holds `addr.len` bytes of a sockaddr_un.
        sys::cvt(unsafe { libc::connect(self.sock.as_raw_fd(), addr.as_ptr(), addr.len) })?;
        Ok(())
    }

    /// Sends one datagram to the socket at `path`, waiting while the
    /// receiver's queue is full.
    pub fn send_to<P: AsRef<Path>>(&self, buf: &[u8], path: P) -> io::Result<usize> {
        self.sock.send_to(buf, &sys::unix_path(path.as_ref())?)
    }

    /// Sends one datagram to `addr`.
    pub fn send_to_addr(&self, buf: &[u8], addr: &SocketAddr) -> io::Result<usize> {
        self.sock.send_to(buf, &sys::unix_from_std(addr)?)
    }

    /// Receives one datagram and its sender's address.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let (n, addr) = self.sock.recv_from(buf, 0)?;
        Ok((n, sys::to_unix_addr(&addr)?))
    }

    /// Sends one datagram to the connected peer.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.sock.send(buf)
    }

    /// Receives one datagram.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.recv(buf, 0)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        local_addr(&self.sock)
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        peer_addr(&self.sock)
    }

    /// Shuts down the read half, the write half or both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.sock.shutdown(how)
    }

    /// Sets both deadlines; `None` clears them.
    pub fn set_deadline(&self, deadline: Option<Instant>) {
        self.sock.set_deadlines(deadline);
    }

    /// Sets (or clears) the receive deadline.
    pub fn set_read_deadline(&self, deadline: Option<Instant>) {
        self.sock.set_deadline(Mode::Read, deadline);
    }

    /// Sets (or clears) the send deadline.
    pub fn set_write_deadline(&self, deadline: Option<Instant>) {
        self.sock.set_deadline(Mode::Write, deadline);
    }

    /// Go's `Close`: waiting and later calls fail with
    /// [`io::ErrorKind::NotConnected`]; the descriptor closes on drop.
    pub fn close(&self) {
        self.sock.close();
    }

    /// A second handle to the same socket (`dup`).
    pub fn try_clone(&self) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            sock: self.sock.try_clone()?,
        })
    }

    /// The pending socket error (`SO_ERROR`), cleared by reading it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.take_error()
    }
}

macro_rules! unix_debug {
    ($t:ident, $peer:expr) => {
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut d = f.debug_struct(stringify!($t));
                if let Ok(a) = local_addr(&self.sock) {
                    d.field("local", &a);
                }
                if $peer && let Ok(a) = peer_addr(&self.sock) {
                    d.field("peer", &a);
                }
                d.field("fd", &self.sock.as_raw_fd()).finish()
            }
        }
    };
}

unix_debug!(UnixListener, false);
unix_debug!(UnixStream, true);
unix_debug!(UnixDatagram, true);

fd_conversions!(UnixListener, std::os::unix::net::UnixListener);
fd_conversions!(UnixStream, std::os::unix::net::UnixStream);
fd_conversions!(UnixDatagram, std::os::unix::net::UnixDatagram);
