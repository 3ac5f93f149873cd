//! TCP: [`TcpListener`] and [`TcpStream`] (Go's `TCPListener`/`TCPConn`).

use std::{
    fmt,
    io::{self, IoSlice, IoSliceMut, Read, Write},
    net::{Shutdown, SocketAddr, ToSocketAddrs},
    os::fd::AsRawFd,
    time::{Duration, Instant},
};

use super::{
    socket::{Socket, fd_conversions},
    sys::{self, RawAddr},
};
use crate::netpoll::pd::Mode;

/// A TCP socket listening for connections (Go's `net.TCPListener`, std's
/// `TcpListener`).
///
/// [`accept`](TcpListener::accept) parks the calling coroutine until a
/// connection arrives (on a plain thread, it blocks the thread).
///
/// ```
/// use std::io::{Read, Write};
/// use gort::net::{TcpListener, TcpStream};
///
/// gort::run(|| {
///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
///     let addr = listener.local_addr().unwrap();
///     let server = gort::go!(move || {
///         let (mut conn, _peer) = listener.accept().unwrap();
///         let mut buf = [0; 5];
///         conn.read_exact(&mut buf).unwrap();
///         conn.write_all(&buf).unwrap(); // echo
///     });
///     let mut client = TcpStream::connect(addr).unwrap();
///     client.write_all(b"hello").unwrap();
///     let mut echo = [0; 5];
///     client.read_exact(&mut echo).unwrap();
///     assert_eq!(&echo, b"hello");
///     server.join().unwrap();
/// });
/// ```
pub struct TcpListener {
    sock: Socket,
}

/// A TCP connection (Go's `net.TCPConn`, std's `TcpStream`).
///
/// Reads and writes park the calling coroutine until the socket is ready,
/// so code reads like blocking I/O. `Read` and `Write` are implemented for
/// `&TcpStream` too: one coroutine may read while another writes. Several
/// concurrent readers (or writers) of one stream take turns, as in Go.
///
/// Deadlines ([`set_read_deadline`](TcpStream::set_read_deadline), ...)
/// are Go's: absolute instants that fail calls with
/// [`io::ErrorKind::TimedOut`] once passed, including calls already
/// waiting; [`close`](TcpStream::close) wakes them with
/// [`io::ErrorKind::NotConnected`].
pub struct TcpStream {
    sock: Socket,
}

/// TCP keep-alive settings for [`TcpStream::set_keepalive`] (Go's
/// `net.KeepAliveConfig`).
///
/// The defaults are Go's: probes start after 15 s idle, every 15 s; the
/// probe count is the system's unless set. Durations are rounded up to
/// whole seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeepAlive {
    idle: Duration,
    interval: Duration,
    count: Option<u32>,
}

impl Default for KeepAlive {
    fn default() -> KeepAlive {
        KeepAlive {
            idle: Duration::from_secs(15),
            interval: Duration::from_secs(15),
            count: None,
        }
    }
}

impl KeepAlive {
    /// Go's defaults: 15 s idle, 15 s interval, the system's probe count.
    pub fn new() -> KeepAlive {
        KeepAlive::default()
    }

    /// How long the connection is idle before the first probe
    /// (`TCP_KEEPIDLE`).
    pub fn idle(self, idle: Duration) -> KeepAlive {
        KeepAlive { idle, ..self }
    }

    /// The time between probes (`TCP_KEEPINTVL`).
    pub fn interval(self, interval: Duration) -> KeepAlive {
        KeepAlive { interval, ..self }
    }

    /// Unanswered probes before the connection is dropped (`TCP_KEEPCNT`).
    pub fn count(self, count: u32) -> KeepAlive {
        KeepAlive {
            count: Some(count),
            ..self
        }
    }

    /// The idle time before the first probe.
    pub fn idle_time(&self) -> Duration {
        self.idle
    }

    /// The time between probes.
    pub fn interval_time(&self) -> Duration {
        self.interval
    }

    /// The probe count, if set.
    pub fn probe_count(&self) -> Option<u32> {
        self.count
    }
}

/// An iterator over a listener's connections, from
/// [`TcpListener::incoming`]; it never returns `None`.
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;

    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

impl TcpListener {
    /// Creates a listener bound to `addr`, with `SO_REUSEADDR` and the
    /// system's largest backlog. Each address `addr` resolves to is tried
    /// in turn, as std does; port 0 picks a free port (see
    /// [`local_addr`](TcpListener::local_addr)). Name resolution runs
    /// inside [`crate::blocking`].
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        sys::each_addr(addr, |a| TcpListener::bind_one(a, false))
    }

    /// As [`bind`](TcpListener::bind), with `SO_REUSEPORT` too: several
    /// listeners (in this process or others) may bind the same address and
    /// the kernel spreads connections over them.
    pub fn bind_reuseport<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        sys::each_addr(addr, |a| TcpListener::bind_one(a, true))
    }

    fn bind_one(addr: &SocketAddr, reuseport: bool) -> io::Result<TcpListener> {
        let fd = sys::socket(sys::family(addr), libc::SOCK_STREAM)?;
        let sock = Socket::from_nonblocking(fd)?;
        sock.set_int(libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
        if reuseport {
            sock.set_int(libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
        }
        sys::bind(sock.as_raw_fd(), &RawAddr::from(addr))?;
        sys::listen(sock.as_raw_fd())?;
        Ok(TcpListener { sock })
    }

    /// Waits for a connection and returns it with the peer's address.
    ///
    /// Parks the coroutine until one arrives, the listener's deadline
    /// passes ([`io::ErrorKind::TimedOut`]) or it is
    /// [`close`](TcpListener::close)d ([`io::ErrorKind::NotConnected`]).
    /// A connection reset while queued (`ECONNABORTED`) is skipped. Running
    /// out of descriptors (`EMFILE`/`ENFILE`) is returned as an error; the
    /// connection stays queued and the listener keeps working, so accept
    /// again once descriptors are free (Go's HTTP server sleeps 5 ms to
    /// 1 s between such retries).
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (sock, addr) = self.sock.accept()?;
        Ok((TcpStream { sock }, sys::to_socket_addr(&addr)?))
    }

    /// An endless iterator of [`accept`](TcpListener::accept)ed
    /// connections.
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sys::to_socket_addr(&sys::local_raw(self.sock.as_raw_fd())?)
    }

    /// Sets (or with `None` clears) the deadline of
    /// [`accept`](TcpListener::accept), including a call already waiting
    /// (Go's `SetDeadline`).
    pub fn set_deadline(&self, deadline: Option<Instant>) {
        self.sock.set_deadline(Mode::Read, deadline);
    }

    /// Stops the listener (Go's `Close`): a waiting and every later
    /// [`accept`](TcpListener::accept) fail with
    /// [`io::ErrorKind::NotConnected`]. The descriptor itself is closed
    /// when the listener is dropped.
    pub fn close(&self) {
        self.sock.close();
    }

    /// A second handle to the same socket (`dup`), with its own deadline.
    /// [`close`](TcpListener::close) on either stops both.
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        Ok(TcpListener {
            sock: self.sock.try_clone()?,
        })
    }

    /// Sets `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.sock
            .set_int(libc::IPPROTO_IP, libc::IP_TTL, ttl as libc::c_int)
    }

    /// Reads `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        Ok(self.sock.get_int(libc::IPPROTO_IP, libc::IP_TTL)? as u32)
    }

    /// The pending socket error (`SO_ERROR`), cleared by reading it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.take_error()
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TcpListener");
        if let Ok(a) = self.local_addr() {
            d.field("addr", &a);
        }
        d.field("fd", &self.sock.as_raw_fd()).finish()
    }
}

fd_conversions!(TcpListener, std::net::TcpListener);

impl TcpStream {
    /// Connects to `addr`, trying each address it resolves to in turn (as
    /// std does; name resolution runs inside [`crate::blocking`]). The
    /// coroutine parks while the handshake is in flight.
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        sys::each_addr(addr, |a| TcpStream::connect_one(a, None))
    }

    /// Connects to `addr`, failing with [`io::ErrorKind::TimedOut`] if the
    /// handshake takes longer than `timeout` (which must not be zero).
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        TcpStream::connect_one(addr, Instant::now().checked_add(timeout))
    }

    fn connect_one(addr: &SocketAddr, deadline: Option<Instant>) -> io::Result<TcpStream> {
        let sock = Socket::from_nonblocking(sys::socket(sys::family(addr), libc::SOCK_STREAM)?)?;
        if deadline.is_some() {
            sock.set_deadline(Mode::Write, deadline);
        }
        sock.connect(&RawAddr::from(addr))?;
        if deadline.is_some() {
            sock.set_deadline(Mode::Write, None);
        }
        Ok(TcpStream { sock })
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        sys::to_socket_addr(&sys::peer_raw(self.sock.as_raw_fd())?)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sys::to_socket_addr(&sys::local_raw(self.sock.as_raw_fd())?)
    }

    /// Shuts down the read half, the write half or both (`shutdown(2)`).
    /// After `Shutdown::Write` the peer reads EOF but may still send
    /// (Go's `CloseWrite`).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.sock.shutdown(how)
    }

    /// A second handle to the same connection (`dup`), with its own
    /// deadlines and poll state, e.g. to read in one coroutine and write in
    /// another. [`close`](TcpStream::close) on either shuts both down.
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream {
            sock: self.sock.try_clone()?,
        })
    }

    /// Reads without removing the data from the queue (`MSG_PEEK`),
    /// waiting for data like [`read`](Read::read).
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.recv(buf, libc::MSG_PEEK)
    }

    /// Sets both deadlines (Go's `SetDeadline`); `None` clears them.
    pub fn set_deadline(&self, deadline: Option<Instant>) {
        self.sock.set_deadlines(deadline);
    }

    /// Sets (or with `None` clears) the read deadline (Go's
    /// `SetReadDeadline`): reads, including one already waiting, fail with
    /// [`io::ErrorKind::TimedOut`] once it passes; one already past fails
    /// reads at once, even with data available. Unlike std's per-call
    /// `set_read_timeout`, it is an instant: for a per-call timeout, set
    /// `Some(Instant::now() + d)` before each call.
    pub fn set_read_deadline(&self, deadline: Option<Instant>) {
        self.sock.set_deadline(Mode::Read, deadline);
    }

    /// Sets (or with `None` clears) the write deadline (Go's
    /// `SetWriteDeadline`); see
    /// [`set_read_deadline`](TcpStream::set_read_deadline). A write that
    /// times out may have sent part of its buffer.
    pub fn set_write_deadline(&self, deadline: Option<Instant>) {
        self.sock.set_deadline(Mode::Write, deadline);
    }

    /// Go's `Close`: wakes waiting readers and writers, which fail with
    /// [`io::ErrorKind::NotConnected`] ("use of closed network
    /// connection") as do later calls, and shuts the connection down (the
    /// peer reads EOF). The descriptor itself is closed when the stream is
    /// dropped; dropping without `close` is enough when no one else uses
    /// the stream.
    pub fn close(&self) {
        self.sock.close();
    }

    /// Sets `TCP_NODELAY` (off: Nagle's algorithm batches small writes).
    /// Go turns it on for every connection; std and gort leave the
    /// system's default (off).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.sock.set_int(
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            libc::c_int::from(nodelay),
        )
    }

    /// Reads `TCP_NODELAY`.
    pub fn nodelay(&self) -> io::Result<bool> {
        Ok(self.sock.get_int(libc::IPPROTO_TCP, libc::TCP_NODELAY)? != 0)
    }

    /// Turns keep-alive probes on with `ka`'s timing, or off with `None`
    /// (Go's `SetKeepAliveConfig`).
    pub fn set_keepalive(&self, ka: Option<KeepAlive>) -> io::Result<()> {
        let Some(ka) = ka else {
            return self.sock.set_int(libc::SOL_SOCKET, libc::SO_KEEPALIVE, 0);
        };
        self.sock
            .set_int(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, sys::secs_up(ka.idle))?;
        self.sock.set_int(
            libc::IPPROTO_TCP,
            libc::TCP_KEEPINTVL,
            sys::secs_up(ka.interval),
        )?;
        if let Some(n) = ka.count {
            let n = n.clamp(1, i32::MAX as u32) as libc::c_int;
            self.sock.set_int(libc::IPPROTO_TCP, libc::TCP_KEEPCNT, n)?;
        }
        self.sock.set_int(libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)
    }

    /// The keep-alive settings, or `None` if keep-alive is off.
    pub fn keepalive(&self) -> io::Result<Option<KeepAlive>> {
        if self.sock.get_int(libc::SOL_SOCKET, libc::SO_KEEPALIVE)? == 0 {
            return Ok(None);
        }
        let secs = |name| -> io::Result<Duration> {
            Ok(Duration::from_secs(
                self.sock.get_int(libc::IPPROTO_TCP, name)?.max(0) as u64,
            ))
        };
        Ok(Some(KeepAlive {
            idle: secs(libc::TCP_KEEPIDLE)?,
            interval: secs(libc::TCP_KEEPINTVL)?,
            count: Some(
                self.sock
                    .get_int(libc::IPPROTO_TCP, libc::TCP_KEEPCNT)?
                    .max(0) as u32,
            ),
        }))
    }

    /// Sets `SO_LINGER`. `Some(Duration::ZERO)` makes dropping the stream
    /// reset the connection (the peer's reads fail with
    /// [`io::ErrorKind::ConnectionReset`]) instead of closing it
    /// gracefully; `None` restores the default. Durations are rounded up
    /// to whole seconds.
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        let l = libc::linger {
            l_onoff: libc::c_int::from(linger.is_some()),
            l_linger: linger.map_or(0, |d| if d.is_zero() { 0 } else { sys::secs_up(d) }),
        };
        sys::setsockopt(self.sock.as_raw_fd(), libc::SOL_SOCKET, libc::SO_LINGER, l)
    }

    /// Reads `SO_LINGER`.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        let l: libc::linger =
            sys::getsockopt(self.sock.as_raw_fd(), libc::SOL_SOCKET, libc::SO_LINGER)?;
        Ok((l.l_onoff != 0).then(|| Duration::from_secs(l.l_linger.max(0) as u64)))
    }

    /// Sets `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.sock
            .set_int(libc::IPPROTO_IP, libc::IP_TTL, ttl as libc::c_int)
    }

    /// Reads `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        Ok(self.sock.get_int(libc::IPPROTO_IP, libc::IP_TTL)? as u32)
    }

    /// The pending socket error (`SO_ERROR`), cleared by reading it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.take_error()
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.read_stream(buf)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.sock.read_stream_vectored(bufs)
    }
}

impl Write for &TcpStream {
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

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        (&*self).read_vectored(bufs)
    }
}

impl Write for TcpStream {
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

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TcpStream");
        if let Ok(a) = self.local_addr() {
            d.field("addr", &a);
        }
        if let Ok(a) = self.peer_addr() {
            d.field("peer", &a);
        }
        d.field("fd", &self.sock.as_raw_fd()).finish()
    }
}

fd_conversions!(TcpStream, std::net::TcpStream);
