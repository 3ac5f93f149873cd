//! Coroutine stacks: mmap'd, fixed size, reused through a bounded pool.
//!
//! # Two kinds of stack, never mixed silently
//! - **Guarded** (the default): the lowest page of the stack faults when
//!   touched. Running off the end faults there; the handler in `guard.rs`
//!   recognises the page, prints
//!   `coroutine <id> has overflowed its stack (stack size N bytes)` and
//!   aborts. Where the kernel has guard regions (Linux 6.13+,
//!   `MADV_GUARD_INSTALL`) the guard is a page-table marker and guarded
//!   stacks share large mappings ("slabs", `slab.rs`) like unguarded ones:
//!   no limit from `vm.max_map_count`, and a fresh stack costs one
//!   `madvise` instead of an `mmap` and an `mprotect` that both take the
//!   address-space lock for writing (with 10,000 coroutines starting at
//!   once, that lock was half the timer benchmark's time). Elsewhere (older
//!   kernels, other systems, or `GORT_DEBUG=guardpages=mprotect`) each stack
//!   is its own mapping with its lowest page made `PROT_NONE`; the
//!   `mprotect` splits the mapping in two, and Linux allows
//!   `vm.max_map_count` mappings per process (65530 by default), so at most
//!   ~32,000 such stacks exist at once.
//! - **Unguarded** (opt-in, `stack_guard(false)`): carved out of slabs too,
//!   with no guard page: the lowest [`CANARY_BYTES`] of each stack must stay
//!   zero, and they are checked every time the coroutine switches away. A
//!   non-zero byte there aborts with the coroutine's id. This is weaker than
//!   a guard page: an overflow has already written into the neighbouring
//!   stack by the time it is seen, and a frame that skips the canary
//!   without writing it is not seen at all.
//!
//! # Layout
//! ```text
//!  guarded:    | guard page | usable size ........................ | <- top
//!  unguarded:  | canary (zero) | usable ........................... | <- top
//!              ^ (in a slab) the previous stack of the slab ends here
//! ```
//!
//! # Reuse
//! Freed stacks go to a pool (bounded by [`POOL_LIMIT`] per size and kind);
//! beyond the bound a stack of its own mapping is unmapped and a slab
//! stack has its pages released and returns to its slab's free list. The
//! bound is high because releasing is dear (an munmap is a TLB shoot-down on
//! every core the process runs on: a third of the timer benchmark's time
//! when 10,000 coroutines ended with a bound of 1,024); a runtime's sysmon
//! trims the pool back to [`POOL_KEEP`] once nobody has taken a stack from
//! it for a second ([`trim_pool`] does it on demand). Before a stack
//! is pooled, a probe word [`KEEP_BYTES`] below its top tells whether it was
//! used deeper than that; if so its deep pages are released with
//! `MADV_DONTNEED`, so a burst of deep recursion does not pin RSS forever.

mod guard;
mod pool;
mod slab;

use std::{
    io,
    ptr::NonNull,
    sync::{
        OnceLock,
        atomic::{AtomicUsize, Ordering},
    },
};

use self::guard::GuardSlot;
pub(crate) use self::guard::ensure_altstack;
pub(crate) use self::pool::{put, take, takes};

/// Default usable size of a coroutine stack: 256 KiB of address space.
///
/// Go starts goroutines at a few KiB and grows them; gort's stacks cannot
/// grow, so the reservation has to cover deep Rust code (formatting,
/// unwinding and backtrace symbolisation alone take tens of KiB). Only
/// touched pages count towards memory, so a large reservation costs address
/// space, not RSS.
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;

/// Smallest usable stack size accepted; smaller requests are an error.
pub const MIN_STACK_SIZE: usize = 16 * 1024;

/// Largest usable stack size accepted (1 GiB); larger requests are an error.
pub const MAX_STACK_SIZE: usize = 1 << 30;

/// Most stacks of one size and kind kept for reuse.
pub const POOL_LIMIT: usize = 16 * 1024;

/// What an unused pool is trimmed back to, per size and kind.
pub const POOL_KEEP: usize = 1024;

/// Releases pooled stacks beyond `keep` per size and kind, at most `max`
/// of them; returns how many were released. Sysmon calls it on a pool
/// nobody has used for a second; call it to give memory and mappings back
/// at once (after a burst of coroutines, say).
pub fn trim_pool(keep: usize, max: usize) -> usize {
    pool::trim(keep, max)
}

/// Top of a stack never released when it is pooled.
pub const KEEP_BYTES: usize = 32 * 1024;

/// Bytes at the bottom of an unguarded stack that must remain zero.
pub const CANARY_BYTES: usize = 32;

pub(crate) fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if p > 0 { p as usize } else { 4096 }
    })
}

/// A validated request for a stack: usable size in whole pages, and kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StackSpec {
    size: usize,
    guard: bool,
}

impl StackSpec {
    /// Checks a requested size (rounded up to whole pages).
    pub(crate) fn new(size: usize, guard: bool) -> io::Result<Self> {
        if size < MIN_STACK_SIZE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "coroutine stack size {size} bytes is below the minimum of {MIN_STACK_SIZE} bytes"
                ),
            ));
        }
        if size > MAX_STACK_SIZE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "coroutine stack size {size} bytes is above the maximum of {MAX_STACK_SIZE} bytes"
                ),
            ));
        }
        let page = page_size();
        Ok(StackSpec {
            size: size.div_ceil(page) * page,
            guard,
        })
    }

    /// Usable bytes.
    pub(crate) fn size(self) -> usize {
        self.size
    }

    /// Whether the stack has a guard page.
    pub(crate) fn guarded(self) -> bool {
        self.guard
    }
}

impl Default for StackSpec {
    fn default() -> Self {
        StackSpec {
            size: DEFAULT_STACK_SIZE,
            guard: true,
        }
    }
}

/// Counters of the stack layer, for tests and benchmarks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StackStats {
    /// Guarded stacks currently allocated (in use or pooled).
    pub guarded_mapped: usize,
    /// Stacks of either kind sitting in the pool.
    pub pooled: usize,
    /// Stack cells ever made in slabs, of either kind (slabs are kept).
    pub slab_stacks: usize,
    /// Fresh mappings made since start (stacks of their own plus slabs).
    pub maps: usize,
}

/// Whether guarded stacks get their guard page as a kernel guard region
/// (Linux 6.13+ `MADV_GUARD_INSTALL`, probed once), so that many share one
/// mapping. False on other systems, on older kernels, and when
/// `GORT_DEBUG` contains `guardpages=mprotect` (each guarded stack is then
/// a mapping of its own with an `mprotect`ed guard page, as before 6.13).
pub fn guard_regions() -> bool {
    static REGIONS: OnceLock<bool> = OnceLock::new();
    *REGIONS.get_or_init(|| {
        crate::util::debug_setting("guardpages").as_deref() != Some("mprotect")
            && probe_guard_regions()
    })
}

/// `MADV_GUARD_INSTALL` (not in every libc crate yet; Linux's value).
#[cfg(target_os = "linux")]
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// Tries a guard region on a scratch mapping.
#[cfg(target_os = "linux")]
fn probe_guard_regions() -> bool {
    let page = page_size();
    let Ok(map) = memmap2::MmapOptions::new().len(2 * page).map_anon() else {
        return false;
    };
    // SAFETY: the first page lies inside the mapping we own; nothing reads
    // or writes it (the mapping is dropped right after).
    unsafe { libc::madvise(map.as_ptr().cast_mut().cast(), page, MADV_GUARD_INSTALL) == 0 }
}

#[cfg(not(target_os = "linux"))]
fn probe_guard_regions() -> bool {
    false
}

/// Makes the page at `low` a guard region (see [`guard_regions`]).
#[cfg(target_os = "linux")]
fn install_guard_region(low: usize) -> io::Result<()> {
    // SAFETY: `low` is the first page of a slab cell that no stack uses
    // yet; installing a guard there only makes accesses to it fault.
    if unsafe { libc::madvise(low as *mut libc::c_void, page_size(), MADV_GUARD_INSTALL) } != 0 {
        return Err(crate::util::last_os_error());
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn install_guard_region(_low: usize) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "no guard regions on this system",
    ))
}

/// Guarded stacks alive (counted where each kind is made and dropped).
static GUARDED_MAPPED: AtomicUsize = AtomicUsize::new(0);
static MAPS: AtomicUsize = AtomicUsize::new(0);

/// Current counters of the stack layer.
pub fn stats() -> StackStats {
    StackStats {
        guarded_mapped: GUARDED_MAPPED.load(Ordering::Relaxed),
        pooled: pool::pooled(),
        slab_stacks: slab::carved(),
        maps: MAPS.load(Ordering::Relaxed),
    }
}

/// A coroutine stack. Dropping it releases it for good (unmaps a stack of
/// its own, returns a slab stack to its slab); [`put`] pools it instead.
#[derive(Debug)]
pub(crate) struct Stack {
    /// Exclusive high end; 16-byte aligned (page aligned, in fact).
    top: NonNull<u8>,
    spec: StackSpec,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// Owns its mapping: guard page first, then `spec.size` usable bytes.
    Guarded {
        _map: memmap2::MmapMut,
        slot: Option<GuardSlot>,
    },
    /// Carved from a slab that lives as long as the process; a guarded one
    /// has its guard registered.
    Slab { slot: Option<GuardSlot> },
}

// SAFETY: a Stack is plain memory owned by whoever holds the value; moving it
// to another thread moves that ownership.
unsafe impl Send for Stack {}

impl Stack {
    /// A stack for `spec`, from the pool if one is there, else fresh.
    pub(crate) fn new(spec: StackSpec) -> io::Result<Stack> {
        match take(spec) {
            Some(s) => Ok(s),
            None if spec.guard && !guard_regions() => Stack::map_guarded(spec),
            None => slab::carve(spec),
        }
    }

    fn map_guarded(spec: StackSpec) -> io::Result<Stack> {
        let page = page_size();
        let len = spec.size + page;
        // Mapping, then splitting off the guard page: each needs a kernel
        // mapping, so each may hit vm.max_map_count.
        let map_and_protect = || -> io::Result<memmap2::MmapMut> {
            let map = map_stack_memory(len).map_err(|e| {
                mapping_error(e, format!("map a coroutine stack of {len} bytes"), true)
            })?;
            // SAFETY: the first page lies inside the mapping we own.
            if unsafe { libc::mprotect(map.as_ptr().cast_mut().cast(), page, libc::PROT_NONE) } != 0
            {
                let e = crate::util::last_os_error();
                return Err(mapping_error(
                    e,
                    format!("protect the guard page of a coroutine stack of {len} bytes"),
                    true,
                ));
            }
            Ok(map)
        };
        let map = map_and_protect().or_else(|e| {
            if pool::drain() > 0 {
                map_and_protect()
            } else {
                Err(e)
            }
        })?;
        let low = map.as_ptr().cast_mut();
        MAPS.fetch_add(1, Ordering::Relaxed);
        GUARDED_MAPPED.fetch_add(1, Ordering::Relaxed);
        // SAFETY: `len` bytes are mapped from `low`.
        let top = unsafe { NonNull::new_unchecked(low.add(len)) };
        let mut stack = Stack {
            top,
            spec,
            kind: Kind::Guarded {
                _map: map,
                slot: None,
            },
        };
        let slot = guard::register(low as usize, spec.size)?;
        if let Kind::Guarded { slot: s, .. } = &mut stack.kind {
            *s = Some(slot);
        }
        Ok(stack)
    }

    /// Exclusive high end of the stack.
    pub(crate) fn top(&self) -> *mut u8 {
        self.top.as_ptr()
    }

    /// Lowest usable address (above the guard page or the canary).
    pub(crate) fn bottom(&self) -> *mut u8 {
        let canary = if self.spec.guard { 0 } else { CANARY_BYTES };
        self.top
            .as_ptr()
            .wrapping_sub(self.spec.size)
            .wrapping_add(canary)
    }

    pub(crate) fn spec(&self) -> StackSpec {
        self.spec
    }

    /// Records the coroutine now running on this stack, for the overflow
    /// report of a guarded stack.
    pub(crate) fn set_owner(&self, id: u64) {
        if let Kind::Guarded { slot: Some(s), .. } | Kind::Slab { slot: Some(s) } = &self.kind {
            guard::set_owner(s, id);
        }
    }

    /// The canary of an unguarded stack, `None` for a guarded one. Checked
    /// with [`canary_intact`] at every switch away from its coroutine.
    pub(crate) fn canary(&self) -> Option<NonNull<[u64; CANARY_BYTES / 8]>> {
        if self.spec.guard {
            return None;
        }
        NonNull::new(self.top.as_ptr().wrapping_sub(self.spec.size).cast())
    }

    /// Releases the pages of a stack that was used deeper than
    /// [`KEEP_BYTES`]; returns whether it did.
    fn release_deep_pages(&self) -> bool {
        let low = self.top.as_ptr().wrapping_sub(self.spec.size);
        let keep = KEEP_BYTES.min(self.spec.size);
        let release = self.spec.size - keep;
        if release == 0 {
            return false;
        }
        // SAFETY: the probe lies inside the usable part of our own stack,
        // which no coroutine is using now (the stack is being pooled).
        let probe = unsafe { low.add(release).cast::<u64>().sub(1).read_volatile() };
        if probe == 0 {
            return false;
        }
        release_pages(low, release);
        true
    }
}

/// Reports whether an unguarded stack's canary is still all zero.
///
/// # Safety
/// `canary` came from [`Stack::canary`] of a stack that is still allocated.
#[inline(always)]
pub(crate) unsafe fn canary_intact(canary: NonNull<[u64; CANARY_BYTES / 8]>) -> bool {
    // SAFETY: forwarded from this function's contract.
    let words = unsafe { canary.as_ptr().read_volatile() };
    words.iter().fold(0, |a, w| a | w) == 0
}

/// Reports a stack overflow of coroutine `id` and aborts, as Rust does for
/// a thread's overflow. Async-signal-safe (the guard-page handler calls it).
#[cold]
pub(crate) fn overflowed(id: u64, size: usize, how: &str) -> ! {
    let mut w = crate::util::StackWriter::<192>::new();
    w.push_str("\ncoroutine ");
    w.push_u64(id);
    w.push_str(" has overflowed its stack (stack size ");
    w.push_u64(size as u64);
    w.push_str(" bytes");
    w.push_str(how);
    w.push_str(")\nfatal runtime error: stack overflow, aborting\n");
    w.write_to_stderr();
    // SAFETY: abort has no preconditions and is async-signal-safe.
    unsafe { libc::abort() }
}

/// What [`overflowed`] adds for an unguarded stack.
pub(crate) const CANARY_OVERWRITTEN: &str = ", unguarded: canary overwritten";

/// Tells the kernel it may drop `len` bytes of pages at `low` (they read
/// back as zeros).
fn release_pages(low: *mut u8, len: usize) {
    // SAFETY: callers pass a page-aligned range of a stack they own and that
    // is not in use; MADV_DONTNEED on private anonymous memory only zeroes.
    let r = unsafe { libc::madvise(low.cast(), len, libc::MADV_DONTNEED) };
    debug_assert_eq!(r, 0, "madvise(MADV_DONTNEED) failed on a stack");
}

impl Drop for Stack {
    fn drop(&mut self) {
        match &mut self.kind {
            Kind::Guarded { slot, .. } => {
                if let Some(s) = slot.take() {
                    guard::unregister(s);
                }
                GUARDED_MAPPED.fetch_sub(1, Ordering::Relaxed);
                // The mapping itself is unmapped by MmapMut's drop.
            }
            Kind::Slab { slot } => {
                if let Some(s) = slot.take() {
                    guard::unregister(s);
                }
                if self.spec.guard {
                    GUARDED_MAPPED.fetch_sub(1, Ordering::Relaxed);
                }
                release_pages(
                    self.top.as_ptr().wrapping_sub(self.spec.size),
                    self.spec.size,
                );
                slab::give_back(self.spec, self.top);
            }
        }
    }
}

/// Maps `len` bytes of stack memory (no swap reserved). If the kernel says
/// no, the pooled stacks are released and the mapping is tried once more.
fn map_stack_memory(len: usize) -> io::Result<memmap2::MmapMut> {
    let map = || {
        memmap2::MmapOptions::new()
            .len(len)
            .stack()
            .no_reserve_swap()
            .map_anon()
    };
    map().or_else(|e| if pool::drain() > 0 { map() } else { Err(e) })
}

/// The error returned when a stack cannot be mapped: names the cause and
/// what to do about it.
/// `own`: the mapping was one guarded stack's own (not a slab).
fn mapping_error(e: io::Error, what: String, own: bool) -> io::Error {
    let limit = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into());
    let advice = if own {
        format!(
            "vm.max_map_count ({limit} mappings; each guarded stack takes 2 on this system) or \
             its address-space limit (ulimit -v). Raise the first with \
             `sysctl -w vm.max_map_count=N`, or use unguarded stacks (stack_guard(false)), which \
             share mappings"
        )
    } else {
        format!(
            "vm.max_map_count ({limit} mappings; stacks share them here, many to a slab, so most \
             are held by something else) or its address-space limit (ulimit -v). Raise the first \
             with `sysctl -w vm.max_map_count=N`, the second with `ulimit -v`, or use smaller \
             stacks"
        )
    };
    io::Error::new(
        e.kind(),
        format!("cannot {what}: {e}. The process may have reached {advice}"),
    )
}
