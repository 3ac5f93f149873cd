//! Stacks carved out of large shared mappings ("slabs"), guarded or not.
//!
//! A slab is one `MAP_NORESERVE` mapping holding many stacks of one size and
//! kind back to back, so it costs one kernel mapping however many stacks
//! it holds. A guarded stack's lowest page is a kernel guard region
//! (`MADV_GUARD_INSTALL`, Linux 6.13+): a marker in the page table, not a
//! mapping of its own, which faults like a `PROT_NONE` page. An unguarded
//! stack has its canary there instead.
//!
//! ```text
//!  guarded cell:    | guard region (1 page) | usable size ......... | <- top
//!  unguarded cell:  | canary | usable ............................. | <- top
//! ```
//!
//! Slabs are never unmapped: a stack given back returns to its class's free
//! list with its pages released, so it keeps address space but no memory
//! (and a guarded cell keeps its guard). Cells are handed out from the free
//! list first, then fresh from the newest slab, whose guard is installed at
//! that first hand-out, so a slab costs only for the cells used. Each new
//! slab of a class holds twice as many cells as the one before (8 at
//! first), up to [`SLAB_BYTES`].

use std::{
    io,
    ptr::NonNull,
    sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use super::{
    GUARDED_MAPPED, Kind, MAPS, Stack, StackSpec, guard, map_stack_memory, mapping_error, page_size,
};

/// Most address space one slab takes (rounded down to whole cells, at least
/// one cell).
const SLAB_BYTES: usize = 64 * 1024 * 1024;
/// Cells of a class's first slab.
const FIRST_CELLS: usize = 8;

/// The stacks of one size and kind.
struct Class {
    spec: StackSpec,
    /// Tops of stacks given back (guard installed, pages released).
    free: Vec<NonNull<u8>>,
    /// Never-used parts of slabs, `(next, end)` cell lows; the last is cut
    /// first. Usually one; two threads that both mapped a slab leave two.
    fresh: Vec<(usize, usize)>,
    /// Cells of the newest slab (the next one has twice as many).
    cells: usize,
}

impl Class {
    /// A cell's low end, and whether it is fresh (never handed out).
    fn take(&mut self, cell: usize) -> Option<(usize, bool)> {
        if let Some(top) = self.free.pop() {
            return Some((top.as_ptr() as usize - cell, false));
        }
        let (next, end) = self.fresh.last_mut()?;
        let low = *next;
        *next += cell;
        if *next == *end {
            self.fresh.pop();
        }
        Some((low, true))
    }
}

struct Classes(Vec<Class>);

// SAFETY: the pointers are addresses of slab memory that is never unmapped;
// whoever pops one owns that stack.
unsafe impl Send for Classes {}

static CLASSES: Mutex<Classes> = Mutex::new(Classes(Vec::new()));
static CARVED: AtomicUsize = AtomicUsize::new(0);

/// Stacks ever carved out of slabs, of either kind.
pub(super) fn carved() -> usize {
    CARVED.load(Ordering::Relaxed)
}

/// Bytes of one cell: the usable size plus, for a guarded stack, its guard.
fn cell_bytes(spec: StackSpec) -> usize {
    spec.size() + if spec.guarded() { page_size() } else { 0 }
}

/// Runs `f` on the class of `spec` (made if new), under the lock.
fn with_class<R>(spec: StackSpec, f: impl FnOnce(&mut Class) -> R) -> R {
    let mut classes = CLASSES.lock().unwrap_or_else(|e| e.into_inner());
    let i = match classes.0.iter().position(|c| c.spec == spec) {
        Some(i) => i,
        None => {
            classes.0.push(Class {
                spec,
                free: Vec::new(),
                fresh: Vec::new(),
                cells: 0,
            });
            classes.0.len() - 1
        }
    };
    f(&mut classes.0[i])
}

/// A stack of `spec` from the free list or a fresh cell. A guarded `spec`
/// requires [`super::guard_regions`].
pub(super) fn carve(spec: StackSpec) -> io::Result<Stack> {
    let cell = cell_bytes(spec);
    let (low, fresh) = loop {
        let (taken, cells) = with_class(spec, |c| (c.take(cell), c.cells));
        if let Some(t) = taken {
            break t;
        }
        // A new slab, mapped without the lock: a failed mapping drains the
        // pool, whose stacks come back here.
        let count = (cells * 2).max(FIRST_CELLS).min((SLAB_BYTES / cell).max(1));
        let len = count * cell;
        let map = map_stack_memory(len).map_err(|e| {
            mapping_error(
                e,
                format!("map a {len}-byte slab of coroutine stacks"),
                false,
            )
        })?;
        MAPS.fetch_add(1, Ordering::Relaxed);
        CARVED.fetch_add(count, Ordering::Relaxed);
        let next = map.as_ptr() as usize;
        // Slabs live as long as the process: stacks point into them.
        std::mem::forget(map);
        with_class(spec, |c| {
            c.fresh.push((next, next + len));
            c.cells = c.cells.max(count);
        });
    };
    let top = (low + cell) as *mut u8;
    // SAFETY: a cell's top lies inside (or just past the end of) its slab,
    // which is never unmapped; it is not null.
    let top = unsafe { NonNull::new_unchecked(top) };
    if !spec.guarded() {
        return Ok(Stack {
            top,
            spec,
            kind: Kind::Slab { slot: None },
        });
    }
    if fresh && let Err(e) = super::install_guard_region(low) {
        // The cell keeps its address space but is never handed out: a free
        // list holds only guarded cells. Rare (the kernel is out of memory
        // for page tables), and it costs no memory.
        return Err(io::Error::new(
            e.kind(),
            format!("cannot install the guard page of a coroutine stack: {e}"),
        ));
    }
    match guard::register(low, spec.size()) {
        Ok(slot) => {
            GUARDED_MAPPED.fetch_add(1, Ordering::Relaxed); // Drop counts it off
            Ok(Stack {
                top,
                spec,
                kind: Kind::Slab { slot: Some(slot) },
            })
        }
        Err(e) => {
            give_back(spec, top); // guarded, pages untouched
            Err(e)
        }
    }
}

/// Returns a slab stack's cell to its class's free list.
pub(super) fn give_back(spec: StackSpec, top: NonNull<u8>) {
    with_class(spec, |c| c.free.push(top));
}
