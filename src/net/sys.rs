//! The system calls under `gort::net`: socket creation, address
//! conversions, socket options, `accept4` and non-blocking `connect`.
//!
//! Everything here is a thin, non-blocking wrapper; waiting for readiness
//! is [`Socket`](super::socket::Socket)'s job.

use std::{
    ffi::OsStr,
    io, mem,
    net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, ToSocketAddrs},
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
        linux::net::SocketAddrExt,
        unix::{ffi::OsStrExt, net::SocketAddr as UnixSocketAddr},
    },
    path::Path,
    sync::OnceLock,
};

pub(crate) use crate::util::{cvt, cvt_size};

/// A new socket, non-blocking and close-on-exec from the start.
pub(crate) fn socket(family: libc::c_int, ty: libc::c_int) -> io::Result<OwnedFd> {
    socket_flags(family, ty | libc::SOCK_NONBLOCK)
}

/// A new close-on-exec socket with extra `ty` flags (for blocking ones).
pub(crate) fn socket_flags(family: libc::c_int, ty: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: socket(2) takes no pointers.
    let fd = cvt(unsafe { libc::socket(family, ty | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `fd` was just returned by socket(2) and is owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A connected pair of Unix sockets of type `ty`, non-blocking.
pub(crate) fn socketpair(ty: libc::c_int) -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors socketpair(2) writes.
    cvt(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    // SAFETY: both descriptors were just created and are owned by no one else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A `sockaddr_storage` with the length of the address in it.
#[derive(Clone, Copy)]
pub(crate) struct RawAddr {
    pub(crate) storage: libc::sockaddr_storage,
    pub(crate) len: libc::socklen_t,
}

impl RawAddr {
    /// An empty one, for the kernel to fill in.
    pub(crate) fn zeroed() -> RawAddr {
        RawAddr {
            // SAFETY: sockaddr_storage is plain data; all zeroes is valid.
            storage: unsafe { mem::zeroed() },
            len: mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t,
        }
    }

    pub(crate) fn as_ptr(&self) -> *const libc::sockaddr {
        (&raw const self.storage).cast()
    }

    pub(crate) fn as_mut_ptr(&mut self) -> *mut libc::sockaddr {
        (&raw mut self.storage).cast()
    }

    pub(crate) fn family(&self) -> libc::c_int {
        libc::c_int::from(self.storage.ss_family)
    }
}

impl From<&SocketAddr> for RawAddr {
    fn from(addr: &SocketAddr) -> RawAddr {
        let mut raw = RawAddr::zeroed();
        match addr {
            SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(a.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and aligned for
                // every sockaddr type.
                unsafe { raw.as_mut_ptr().cast::<libc::sockaddr_in>().write(sin) };
                raw.len = mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            }
            SocketAddr::V6(a) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: a.scope_id(),
                };
                // SAFETY: as above.
                unsafe { raw.as_mut_ptr().cast::<libc::sockaddr_in6>().write(sin6) };
                raw.len = mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            }
        }
        raw
    }
}

/// The inet address in `raw`.
pub(crate) fn to_socket_addr(raw: &RawAddr) -> io::Result<SocketAddr> {
    let len = raw.len as usize;
    match raw.family() {
        libc::AF_INET if len >= mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family and length say a sockaddr_in is there;
            // sockaddr_storage is aligned for it.
            let sin = unsafe { &*raw.as_ptr().cast::<libc::sockaddr_in>() };
            Ok(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes()),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len >= mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &*raw.as_ptr().cast::<libc::sockaddr_in6>() };
            Ok(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not an IPv4 or IPv6 socket address",
        )),
    }
}

/// The offset of `sun_path` in `sockaddr_un`.
fn sun_path_offset() -> usize {
    mem::offset_of!(libc::sockaddr_un, sun_path)
}

/// A `sockaddr_un` for a path, or for an abstract name when `abstract_`.
pub(crate) fn unix_raw(name: &[u8], abstract_: bool) -> io::Result<RawAddr> {
    let mut raw = RawAddr::zeroed();
    // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_un.
    let sun = unsafe { &mut *raw.as_mut_ptr().cast::<libc::sockaddr_un>() };
    sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let start = usize::from(abstract_);
    // Paths need room for their terminating NUL; abstract names do not.
    let room = sun.sun_path.len() - usize::from(!abstract_);
    if !abstract_ && name.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "paths must not contain interior null bytes",
        ));
    }
    if start + name.len() > room {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "path must be shorter than SUN_LEN",
        ));
    }
    for (dst, &src) in sun.sun_path[start..].iter_mut().zip(name) {
        *dst = src as libc::c_char;
    }
    let mut len = sun_path_offset() + start + name.len();
    if !abstract_ && !name.is_empty() {
        len += 1; // the NUL
    }
    raw.len = len as libc::socklen_t;
    Ok(raw)
}

/// A `sockaddr_un` for `path`.
pub(crate) fn unix_path(path: &Path) -> io::Result<RawAddr> {
    unix_raw(path.as_os_str().as_bytes(), false)
}

/// A `sockaddr_un` for a std Unix socket address (path or abstract name).
pub(crate) fn unix_from_std(addr: &UnixSocketAddr) -> io::Result<RawAddr> {
    if let Some(p) = addr.as_pathname() {
        unix_path(p)
    } else if let Some(name) = addr.as_abstract_name() {
        unix_raw(name, true)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot use an unnamed Unix socket address",
        ))
    }
}

/// The address of an unnamed Unix socket (std offers no constructor for
/// it, so one is taken once from an unbound socket).
fn unnamed_unix_addr() -> io::Result<UnixSocketAddr> {
    static UNNAMED: OnceLock<UnixSocketAddr> = OnceLock::new();
    if let Some(a) = UNNAMED.get() {
        return Ok(a.clone());
    }
    let a = std::os::unix::net::UnixDatagram::unbound()?.local_addr()?;
    Ok(UNNAMED.get_or_init(|| a).clone())
}

/// The Unix socket address in `raw`, as std's type.
pub(crate) fn to_unix_addr(raw: &RawAddr) -> io::Result<UnixSocketAddr> {
    let len = raw.len as usize;
    let off = sun_path_offset();
    if len <= off {
        // Linux reports an unnamed socket with just the family (or with
        // length 0 from accept on some paths).
        return unnamed_unix_addr();
    }
    if raw.family() != libc::AF_UNIX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a Unix socket address",
        ));
    }
    // SAFETY: the family says a sockaddr_un is there; sockaddr_storage is
    // larger than and aligned for it.
    let sun = unsafe { &*raw.as_ptr().cast::<libc::sockaddr_un>() };
    let n = (len - off).min(sun.sun_path.len());
    let bytes: Vec<u8> = sun.sun_path[..n].iter().map(|&c| c as u8).collect();
    if bytes[0] == 0 {
        UnixSocketAddr::from_abstract_name(&bytes[1..])
    } else {
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        UnixSocketAddr::from_pathname(Path::new(OsStr::from_bytes(&bytes[..end])))
    }
}

/// Binds `fd` to `addr`.
pub(crate) fn bind(fd: RawFd, addr: &RawAddr) -> io::Result<()> {
    // SAFETY: `addr` holds `addr.len` valid bytes of a sockaddr.
    cvt(unsafe { libc::bind(fd, addr.as_ptr(), addr.len) })?;
    Ok(())
}

/// Starts listening with the largest backlog the system allows (the
/// kernel caps it at `net.core.somaxconn`, as Go's listeners get).
pub(crate) fn listen(fd: RawFd) -> io::Result<()> {
    // SAFETY: listen(2) takes no pointers.
    cvt(unsafe { libc::listen(fd, libc::c_int::MAX) })?;
    Ok(())
}

/// One `accept4(2)` try: the new descriptor is non-blocking and
/// close-on-exec; `ECONNABORTED` (a connection reset while queued) is
/// skipped, as Go's accept does.
pub(crate) fn accept(fd: RawFd) -> io::Result<(OwnedFd, RawAddr)> {
    loop {
        let mut addr = RawAddr::zeroed();
        // SAFETY: `addr` has room for `addr.len` bytes, which the kernel
        // updates to the address's length.
        let r = unsafe {
            libc::accept4(
                fd,
                addr.as_mut_ptr(),
                &mut addr.len,
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            )
        };
        match cvt(r) {
            // SAFETY: accept4 returned a new descriptor owned by no one else.
            Ok(nfd) => return Ok((unsafe { OwnedFd::from_raw_fd(nfd) }, addr)),
            Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => {}
            Err(e) => return Err(e),
        }
    }
}

/// One `connect(2)` try on a non-blocking socket: `Ok(true)` if connected,
/// `Ok(false)` if in progress (wait for writability, then check
/// [`connect_done`]).
pub(crate) fn connect_start(fd: RawFd, addr: &RawAddr) -> io::Result<bool> {
    loop {
        // SAFETY: `addr` holds `addr.len` valid bytes of a sockaddr.
        let r = unsafe { libc::connect(fd, addr.as_ptr(), addr.len) };
        match cvt(r) {
            Ok(_) => return Ok(true),
            Err(e) => match e.raw_os_error() {
                Some(libc::EINTR) => {}
                Some(libc::EINPROGRESS | libc::EALREADY) => return Ok(false),
                Some(libc::EISCONN) => return Ok(true),
                _ => return Err(e),
            },
        }
    }
}

/// After a wake-up for writability during a connect: `Ok(true)` if the
/// connection is made, `Ok(false)` if it is still in progress (the wake-up
/// was spurious), or its error (Go's connect loop: `SO_ERROR`, then
/// `getpeername` to rule out spurious wake-ups).
pub(crate) fn connect_done(fd: RawFd) -> io::Result<bool> {
    match socket_error(fd)? {
        None => {}
        Some(e) => {
            return match e.raw_os_error() {
                Some(libc::EINPROGRESS | libc::EALREADY | libc::EINTR) => Ok(false),
                Some(libc::EISCONN) => Ok(true),
                _ => Err(e),
            };
        }
    }
    let mut addr = RawAddr::zeroed();
    // SAFETY: `addr` has room for `addr.len` bytes.
    match cvt(unsafe { libc::getpeername(fd, addr.as_mut_ptr(), &mut addr.len) }) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The pending error of a socket (`SO_ERROR`), cleared by reading it.
pub(crate) fn socket_error(fd: RawFd) -> io::Result<Option<io::Error>> {
    let e: libc::c_int = getsockopt(fd, libc::SOL_SOCKET, libc::SO_ERROR)?;
    Ok((e != 0).then(|| io::Error::from_raw_os_error(e)))
}

/// `getsockname(2)`.
pub(crate) fn local_raw(fd: RawFd) -> io::Result<RawAddr> {
    let mut addr = RawAddr::zeroed();
    // SAFETY: `addr` has room for `addr.len` bytes.
    cvt(unsafe { libc::getsockname(fd, addr.as_mut_ptr(), &mut addr.len) })?;
    Ok(addr)
}

/// `getpeername(2)`.
pub(crate) fn peer_raw(fd: RawFd) -> io::Result<RawAddr> {
    let mut addr = RawAddr::zeroed();
    // SAFETY: `addr` has room for `addr.len` bytes.
    cvt(unsafe { libc::getpeername(fd, addr.as_mut_ptr(), &mut addr.len) })?;
    Ok(addr)
}

/// Sets a socket option of type `T` (a C int, `linger`, ...).
pub(crate) fn setsockopt<T: Copy>(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: T,
) -> io::Result<()> {
    // SAFETY: `value` is a live `T` of the size passed.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&raw const value).cast(),
            mem::size_of::<T>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// Reads a socket option of type `T`; `T` must be plain data (every bit
/// pattern valid): C ints and C structs of them.
pub(crate) fn getsockopt<T: Copy>(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
) -> io::Result<T> {
    // SAFETY: callers only use plain-data option types (c_int, linger),
    // for which all zeroes is a valid value.
    let mut value: T = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` has room for `len` bytes.
    cvt(unsafe { libc::getsockopt(fd, level, name, (&raw mut value).cast(), &mut len) })?;
    Ok(value)
}

/// Sets an int (or boolean) socket option.
pub(crate) fn set_int(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    v: libc::c_int,
) -> io::Result<()> {
    setsockopt(fd, level, name, v)
}

/// Reads an int (or boolean) socket option.
pub(crate) fn get_int(fd: RawFd, level: libc::c_int, name: libc::c_int) -> io::Result<libc::c_int> {
    getsockopt(fd, level, name)
}

/// Resolves `addr` inside [`crate::blocking`], so a slow resolver (DNS)
/// hands this coroutine's processor on instead of stalling it. For
/// addresses that need no lookup this costs a few nanoseconds.
pub(crate) fn resolve<A: ToSocketAddrs>(addr: A) -> io::Result<Vec<SocketAddr>> {
    crate::blocking(|| addr.to_socket_addrs().map(Iterator::collect))
}

/// Tries `f` on each address `addr` resolves to, as std does: the first
/// success, or the last error.
pub(crate) fn each_addr<A: ToSocketAddrs, T>(
    addr: A,
    mut f: impl FnMut(&SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for a in resolve(addr)? {
        match f(&a) {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        )
    }))
}

/// The first address `addr` resolves to (for `send_to`, like std).
pub(crate) fn first_addr<A: ToSocketAddrs>(addr: A) -> io::Result<SocketAddr> {
    resolve(addr)?
        .into_iter()
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no addresses to send data to"))
}

/// The socket family for `addr`.
pub(crate) fn family(addr: &SocketAddr) -> libc::c_int {
    match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    }
}

/// `dup` with close-on-exec.
pub(crate) fn dup(fd: &impl AsRawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC takes an int argument.
    let nfd = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) })?;
    // SAFETY: a new descriptor owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(nfd) })
}

/// Seconds for a keep-alive option: rounded up, at least 1, at most
/// `i32::MAX` (Go rounds the same way).
pub(crate) fn secs_up(d: std::time::Duration) -> libc::c_int {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    s.clamp(1, i32::MAX as u64) as libc::c_int
}
