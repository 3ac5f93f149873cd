//! Unguarded stacks carved out of large shared mappings ("slabs").
//!
//! A slab is one `MAP_NORESERVE` mapping holding many stacks of one size
//! back to back, so it costs one kernel mapping however many stacks it
//! holds. Slabs are never unmapped: a stack given back returns to its size's
//! free list with its pages released, so it keeps address space but no
//! memory.

use std::{
    io,
    ptr::NonNull,
    sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use super::{Kind, MAPS, Stack, StackSpec, map_stack_memory, mapping_error};

/// Address space of one slab (rounded to whole stacks, at least one).
const SLAB_BYTES: usize = 64 * 1024 * 1024;

/// Free stack tops, by usable size.
struct FreeTops(Vec<(usize, Vec<NonNull<u8>>)>);

// SAFETY: the pointers are addresses of slab memory that is never unmapped;
// whoever pops one owns that stack.
unsafe impl Send for FreeTops {}

static FREE: Mutex<FreeTops> = Mutex::new(FreeTops(Vec::new()));
static CARVED: AtomicUsize = AtomicUsize::new(0);

/// Stacks ever carved out of slabs.
pub(super) fn carved() -> usize {
    CARVED.load(Ordering::Relaxed)
}

/// An unguarded stack of `spec`'s size from the free list or a new slab.
pub(super) fn carve(spec: StackSpec) -> io::Result<Stack> {
    let mut free = FREE.lock().unwrap_or_else(|e| e.into_inner());
    let idx = match free.0.iter().position(|(s, _)| *s == spec.size) {
        Some(i) => i,
        None => {
            free.0.push((spec.size, Vec::new()));
            free.0.len() - 1
        }
    };
    let list = &mut free.0[idx].1;
    if list.is_empty() {
        let count = (SLAB_BYTES / spec.size).max(1);
        let len = count * spec.size;
        let map = map_stack_memory(len).map_err(|e| {
            mapping_error(
                e,
                format!("map a {len}-byte slab of unguarded coroutine stacks"),
            )
        })?;
        MAPS.fetch_add(1, Ordering::Relaxed);
        CARVED.fetch_add(count, Ordering::Relaxed);
        let low = map.as_ptr().cast_mut();
        // Slabs live as long as the process: stacks point into them.
        std::mem::forget(map);
        // Highest stack last, so it is handed out first.
        list.extend((1..=count).rev().map(|i| {
            // SAFETY: i * size <= len, inside the mapping.
            unsafe { NonNull::new_unchecked(low.add(i * spec.size)) }
        }));
    }
    let top = list.pop().expect("a slab was just carved");
    Ok(Stack {
        top,
        spec,
        kind: Kind::Slab,
    })
}

/// Returns an unguarded stack's memory to the free list.
pub(super) fn give_back(spec: StackSpec, top: NonNull<u8>) {
    let mut free = FREE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, list)) = free.0.iter_mut().find(|(s, _)| *s == spec.size) {
        list.push(top);
    }
}
