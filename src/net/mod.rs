//! Networking on the netpoller: TCP, UDP and Unix sockets whose blocking
//! calls park the calling coroutine, not its thread (Go's `net` package,
//! with std's `std::net` API where std has the same thing).
//!
//! ```
//! use std::io::{Read, Write};
//! use gort::net::{TcpListener, TcpStream};
//!
//! gort::run(|| {
//!     let l = TcpListener::bind("127.0.0.1:0").unwrap();
//!     let addr = l.local_addr().unwrap();
//!     // for { conn, _ := l.Accept(); go serve(conn) }
//!     gort::go!(move || {
//!         for conn in l.incoming() {
//!             let mut conn = conn.unwrap();
//!             gort::go!(move || {
//!                 let mut buf = [0; 4096];
//!                 loop {
//!                     match conn.read(&mut buf) {
//!                         Ok(0) | Err(_) => return,
//!                         Ok(n) => conn.write_all(&buf[..n]).unwrap(),
//!                     }
//!                 }
//!             });
//!         }
//!     });
//!     let mut c = TcpStream::connect(addr).unwrap();
//!     c.write_all(b"ping").unwrap();
//!     let mut buf = [0; 4];
//!     c.read_exact(&mut buf).unwrap();
//!     assert_eq!(&buf, b"ping");
//! });
//! ```
//!
//! # Go's `net` in gort
//!
//! | Go | gort |
//! |---|---|
//! | `net.Listen("tcp", addr)` | [`TcpListener::bind`] (`SO_REUSEADDR`, backlog `net.core.somaxconn`) |
//! | `ListenConfig` with `SO_REUSEPORT` | [`TcpListener::bind_reuseport`] |
//! | `l.Accept()` | [`TcpListener::accept`], [`TcpListener::incoming`] |
//! | `net.Dial("tcp", addr)` | [`TcpStream::connect`] |
//! | `net.DialTimeout` | [`TcpStream::connect_timeout`] |
//! | `conn.Read` / `conn.Write` | [`std::io::Read`] / [`std::io::Write`] (also on `&TcpStream`) |
//! | `net.Buffers.WriteTo` (writev) | [`Write::write_vectored`](std::io::Write::write_vectored) (`sendmsg`) |
//! | `SetDeadline` / `SetReadDeadline` / `SetWriteDeadline` | [`TcpStream::set_deadline`], [`TcpStream::set_read_deadline`], [`TcpStream::set_write_deadline`] (`Option<Instant>`; `None` is Go's zero `time.Time`) |
//! | `Close` | [`TcpStream::close`] (wakes blocked calls) or drop |
//! | `CloseWrite` / `CloseRead` | [`TcpStream::shutdown`] |
//! | `SetNoDelay` | [`TcpStream::set_nodelay`] (gort, like std, leaves it off by default) |
//! | `SetKeepAliveConfig` | [`TcpStream::set_keepalive`] with [`KeepAlive`] |
//! | `SetLinger` | [`TcpStream::set_linger`] |
//! | `os.ErrDeadlineExceeded` | [`io::ErrorKind::TimedOut`](std::io::ErrorKind::TimedOut) |
//! | `net.ErrClosed` | [`io::ErrorKind::NotConnected`](std::io::ErrorKind::NotConnected), "use of closed network connection" |
//! | `net.ListenPacket("udp", addr)` | [`UdpSocket::bind`] |
//! | `ReadFrom` / `WriteTo` | [`UdpSocket::recv_from`] / [`UdpSocket::send_to`] |
//! | `net.Listen("unix", path)` / `net.Dial("unix", path)` | [`UnixListener::bind`] / [`UnixStream::connect`] |
//! | `net.ListenUnixgram` | [`UnixDatagram::bind`] |
//! | `File()` / `FileConn` | `into_std`/`from_std`, `From` both ways, `IntoRawFd`/`FromRawFd` |
//!
//! Name resolution ([`ToSocketAddrs`]) runs
//! inside [`crate::blocking`], so a slow DNS lookup hands this coroutine's
//! processor to another thread instead of stalling the other coroutines.
//!
//! # How a call waits
//! Every socket is non-blocking and, when created inside a coroutine,
//! registered (edge-triggered) with that runtime's poller. A call tries
//! the system call first; on `EAGAIN` it parks the coroutine until the
//! poller reports readiness, a deadline passes or the socket is closed,
//! then tries again (Go's `poll.FD` loop). A socket also works:
//! - on a plain thread (outside any runtime): the call blocks the thread in
//!   `poll(2)`, honouring deadlines and `close`;
//! - from a coroutine of another runtime than the one it is registered
//!   with: it waits in `poll(2)` inside [`crate::blocking`].
//!
//! Concurrent readers of one socket (or writers) take turns, as Go's
//! `fdMutex` makes them: two coroutines may share a `&TcpStream`, one
//! reading, one writing, and several may `recv_from` one `UdpSocket`.
//!
//! Writes use `MSG_NOSIGNAL`: writing to a connection the peer has closed
//! returns [`io::ErrorKind::BrokenPipe`](std::io::ErrorKind::BrokenPipe) or
//! `ConnectionReset`, and never raises `SIGPIPE`.
//!
//! `close()` is Go's `Close`: it fails every waiting and later call and
//! shuts the socket down, but the descriptor is only closed when the value
//! is dropped, so a descriptor number is never reused while another
//! coroutine still holds the socket.
//!
//! # Zero-copy sends: left out, on purpose
//! Linux's `MSG_ZEROCOPY` (with `SO_ZEROCOPY`) is not offered, for these
//! reasons:
//! - The kernel keeps referring to the caller's pages after `send`
//!   returns, until a completion arrives on the socket's error queue
//!   (`MSG_ERRQUEUE`), which for TCP is after the peer ACKs the data. A
//!   `write(&[u8])` API lets the caller reuse the buffer as soon as the
//!   call returns, so it would either have to wait for the completion
//!   (a round trip per write, far slower than copying) or copy (no gain).
//!   Doing it right needs an owned-buffer API (`Vec<u8>`/`Bytes` handed
//!   over and returned on completion), a different shape from `Write`.
//! - It pays off only for large writes (the kernel's own guidance is
//!   above ~10 KB); page pinning and the completion notifications cost
//!   more than a copy below that, and echo-style traffic is small.
//! - On loopback, and whenever the device cannot do scatter-gather and
//!   checksum offload, the kernel silently falls back to copying (and
//!   reports it as `SO_EE_CODE_ZEROCOPY_COPIED`), so the benchmarks here
//!   would see only the overhead.
//!
//! Go's `net` does not use `MSG_ZEROCOPY` either; its zero-copy paths are
//! `sendfile`/`splice` in `io.Copy`, which may come later as
//! `TcpStream::send_file`.

mod lock;
pub(crate) mod socket;
pub(crate) mod sys;
mod tcp;
mod udp;
pub mod unix;

pub use self::{
    tcp::{Incoming, KeepAlive, TcpListener, TcpStream},
    udp::UdpSocket,
    unix::{UnixDatagram, UnixListener, UnixStream},
};
pub use std::net::{
    AddrParseError, IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, SocketAddrV4, SocketAddrV6,
    ToSocketAddrs,
};
