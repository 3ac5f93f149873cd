//! Small helpers shared by every layer: system-call results and errno,
//! fatal errors, async-signal-safe output and a cache prefetch hint.

/// The calling thread's last OS error (`errno`), read afresh on every call.
/// Every system call wrapper of the runtime reads errno through this, never
/// through `io::Error::last_os_error()` inline.
///
/// std declares `__errno_location` as a constant function (`ffi_const`), so
/// once std's `errno()` is inlined into a loop LLVM computes errno's address
/// once, before the loop, and reads through it on every pass. A coroutine's
/// I/O loop (`read` → `EAGAIN` → park → retry) may resume on another thread:
/// the retry's error was then read from the *first* thread's errno. It
/// happened: a read that failed with `ECONNRESET` on the second thread was
/// seen as `EAGAIN` (the first thread's last error), and the coroutine
/// parked again for an edge the poller had already delivered - a hang in
/// about a third of the runs of `net_tcp::peer_reset_is_connection_reset_on_read`
/// in release builds (found in the disassembly: one `__errno_location` call
/// hoisted above the loop). Out of line, the address is taken again on
/// every call, after whatever switch came before it.
#[inline(never)]
pub(crate) fn last_os_error() -> std::io::Error {
    std::io::Error::last_os_error()
}

/// Fails with the last OS error if `r` is negative (a libc call's -1).
pub(crate) fn cvt(r: libc::c_int) -> std::io::Result<libc::c_int> {
    if r < 0 { Err(last_os_error()) } else { Ok(r) }
}

/// As [`cvt`], for calls returning a byte count.
pub(crate) fn cvt_size(r: libc::ssize_t) -> std::io::Result<usize> {
    if r < 0 {
        Err(last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// Writes `msg` to stderr and aborts. For broken runtime invariants, where
/// unwinding would run user code on a state that no longer holds; the
/// message starts with `runtime:` so it can be grepped.
#[cold]
pub(crate) fn fatal(msg: &str) -> ! {
    let mut w = StackWriter::<256>::new();
    w.push_str("fatal error: ");
    w.push_str(msg);
    w.push_str("\n");
    w.write_to_stderr();
    // SAFETY: abort has no preconditions.
    unsafe { libc::abort() }
}

/// The value of the `name=VALUE` item of `GORT_DEBUG` (comma separated),
/// if there is one. For settings outside a runtime (the stack layer);
/// `Runtime::build` validates the whole variable.
pub(crate) fn debug_setting(name: &str) -> Option<String> {
    let v = std::env::var("GORT_DEBUG").ok()?;
    v.split(',')
        .filter_map(|item| item.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// Prints a one-line warning from the runtime to stderr.
#[cold]
pub(crate) fn warn(msg: &str) {
    eprintln!("gort: {msg}");
}

/// A fixed buffer that formats text without allocating, then writes it with
/// one `write(2)`: usable from a signal handler. Text that does not fit is
/// cut off.
pub(crate) struct StackWriter<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> StackWriter<N> {
    pub(crate) fn new() -> Self {
        StackWriter {
            buf: [0; N],
            len: 0,
        }
    }

    pub(crate) fn push_str(&mut self, s: &str) {
        let n = s.len().min(N - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
    }

    pub(crate) fn push_u64(&mut self, mut v: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        for &d in &digits[i..] {
            if self.len < N {
                self.buf[self.len] = d;
                self.len += 1;
            }
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    pub(crate) fn write_to_stderr(&self) {
        let mut rest = self.as_bytes();
        while !rest.is_empty() {
            // SAFETY: writes initialised bytes of our own buffer.
            let n = unsafe { libc::write(libc::STDERR_FILENO, rest.as_ptr().cast(), rest.len()) };
            if n <= 0 {
                break;
            }
            rest = &rest[n as usize..];
        }
    }
}

/// Asks the CPU to bring the `len` bytes at `p` into this core's cache,
/// for writing (a hint: no effect on other targets).
#[inline(always)]
pub(crate) fn prefetch_for_write(p: *const u8, len: usize) {
    #[cfg(target_arch = "x86_64")]
    for off in (0..len).step_by(64) {
        // SAFETY: a prefetch never faults, whatever the address.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_ET0 }>(
                p.wrapping_add(off).cast(),
            );
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, len);
}

#[cfg(test)]
mod tests {
    use super::StackWriter;

    #[test]
    fn stack_writer_formats_and_truncates() {
        let mut w = StackWriter::<64>::new();
        w.push_str("coroutine ");
        w.push_u64(0);
        w.push_str(" / ");
        w.push_u64(18_446_744_073_709_551_615);
        assert_eq!(w.as_bytes(), b"coroutine 0 / 18446744073709551615");
        let mut w = StackWriter::<4>::new();
        w.push_str("abcdef");
        w.push_u64(99);
        assert_eq!(w.as_bytes(), b"abcd");
    }
}
