//! UDP: [`UdpSocket`] (Go's `UDPConn`).

use std::{
    fmt, io,
    net::{SocketAddr, ToSocketAddrs},
    os::fd::AsRawFd,
    time::Instant,
};

use super::{
    socket::{Socket, fd_conversions},
    sys::{self, RawAddr},
};
use crate::netpoll::pd::Mode;

/// A UDP socket (Go's `net.UDPConn`, std's `UdpSocket`).
///
/// Receives park the calling coroutine until a datagram arrives; sends park
/// only while the socket buffer is full. Several coroutines may share one
/// socket (through an `Arc`): concurrent receivers take turns, each gets
/// whole datagrams.
///
/// ```
/// use gort::net::UdpSocket;
///
/// gort::run(|| {
///     let a = UdpSocket::bind("127.0.0.1:0").unwrap();
///     let b = UdpSocket::bind("127.0.0.1:0").unwrap();
///     a.send_to(b"ping", b.local_addr().unwrap()).unwrap();
///     let mut buf = [0; 16];
///     let (n, from) = b.recv_from(&mut buf).unwrap();
///     assert_eq!(&buf[..n], b"ping");
///     assert_eq!(from, a.local_addr().unwrap());
/// });
/// ```
pub struct UdpSocket {
    sock: Socket,
}

impl UdpSocket {
    /// Creates a socket bound to `addr` (each address it resolves to is
    /// tried in turn, as std does; resolution runs inside
    /// [`crate::blocking`]).
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        sys::each_addr(addr, |a| {
            let sock = Socket::from_nonblocking(sys::socket(sys::family(a), libc::SOCK_DGRAM)?)?;
            sys::bind(sock.as_raw_fd(), &RawAddr::from(a))?;
            Ok(UdpSocket { sock })
        })
    }

    /// Receives one datagram and its sender's address, waiting for one.
    /// Bytes beyond `buf`'s length are discarded.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let (n, addr) = self.sock.recv_from(buf, 0)?;
        Ok((n, sys::to_socket_addr(&addr)?))
    }

    /// As [`recv_from`](UdpSocket::recv_from), but leaves the datagram
    /// queued (`MSG_PEEK`).
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let (n, addr) = self.sock.recv_from(buf, libc::MSG_PEEK)?;
        Ok((n, sys::to_socket_addr(&addr)?))
    }

    /// Sends `buf` as one datagram to the first address `addr` resolves
    /// to (as std does).
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        let a = sys::first_addr(addr)?;
        self.sock.send_to(buf, &RawAddr::from(&a))
    }

    /// Sets the default peer: [`send`](UdpSocket::send) goes there and
    /// only its datagrams are received. Each address `addr` resolves to is
    /// tried in turn.
    pub fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        sys::each_addr(addr, |a| {
            if sys::connect_start(self.sock.as_raw_fd(), &RawAddr::from(a))? {
                Ok(())
            } else {
                Err(io::Error::other("UDP connect in progress"))
            }
        })
    }

    /// Sends `buf` to the connected peer.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.sock.send(buf)
    }

    /// Receives one datagram from the connected peer.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.recv(buf, 0)
    }

    /// As [`recv`](UdpSocket::recv), but leaves the datagram queued.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.recv(buf, libc::MSG_PEEK)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sys::to_socket_addr(&sys::local_raw(self.sock.as_raw_fd())?)
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        sys::to_socket_addr(&sys::peer_raw(self.sock.as_raw_fd())?)
    }

    /// Sets `SO_BROADCAST`.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.sock
            .set_int(libc::SOL_SOCKET, libc::SO_BROADCAST, libc::c_int::from(on))
    }

    /// Reads `SO_BROADCAST`.
    pub fn broadcast(&self) -> io::Result<bool> {
        Ok(self.sock.get_int(libc::SOL_SOCKET, libc::SO_BROADCAST)? != 0)
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

    /// Sets both deadlines (Go's `SetDeadline`); `None` clears them.
    pub fn set_deadline(&self, deadline: Option<Instant>) {
        self.sock.set_deadlines(deadline);
    }

    /// Sets (or clears) the receive deadline (Go's `SetReadDeadline`):
    /// receives, including one already waiting, fail with
    /// [`io::ErrorKind::TimedOut`] once it passes.
    pub fn set_read_deadline(&self, deadline: Option<Instant>) {
        self.sock.set_deadline(Mode::Read, deadline);
    }

    /// Sets (or clears) the send deadline (Go's `SetWriteDeadline`).
    pub fn set_write_deadline(&self, deadline: Option<Instant>) {
        self.sock.set_deadline(Mode::Write, deadline);
    }

    /// Go's `Close`: waiting and later calls fail with
    /// [`io::ErrorKind::NotConnected`]. The descriptor is closed on drop.
    pub fn close(&self) {
        self.sock.close();
    }

    /// A second handle to the same socket (`dup`), with its own deadlines.
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            sock: self.sock.try_clone()?,
        })
    }

    /// The pending socket error (`SO_ERROR`), cleared by reading it; e.g.
    /// `ECONNREFUSED` after sending to a closed port.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.take_error()
    }
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("UdpSocket");
        if let Ok(a) = self.local_addr() {
            d.field("addr", &a);
        }
        d.field("fd", &self.sock.as_raw_fd()).finish()
    }
}

fd_conversions!(UdpSocket, std::net::UdpSocket);
