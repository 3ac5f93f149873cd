//! Stack-overflow detection for guarded stacks: a SIGSEGV/SIGBUS handler,
//! running on a per-thread alternate signal stack, that recognises a fault
//! in a coroutine's guard page, reports it and aborts, exactly as Rust does
//! for a thread's own guard page. Every other fault goes to the handler that
//! was installed before ours (usually std's), untouched.
//!
//! # How the handler knows a fault is ours
//! Every guarded stack owns a slot in a global registry: the address of its
//! guard page, its usable size, and the id of the coroutine that currently
//! owns it. The slots live in chunks that are allocated on demand and never
//! freed, so the handler can scan them with plain atomic loads: no lock, no
//! allocation, nothing that is not async-signal-safe. A scan is linear, which
//! is fine on a path that ends the process.
//!
//! Slot states (one word, `guard`): `0` free → guard address (registered,
//! by the thread that mapped the stack) → `0` (unregistered, by the thread
//! that unmaps it, before the unmap). A stale read by the handler during an
//! unmap can at worst blame a fault on a stack that is being unmapped; a
//! fault there was a use-after-free anyway.
//!
//! # Keep this file async-signal-safe
//! `handle_fault` and everything it calls may only load atomics, call
//! `write(2)`, `sigaction(2)` and `abort(3)`. No allocation, no locks, no
//! formatting machinery, no panics.

use std::{
    cell::Cell,
    io,
    mem::MaybeUninit,
    ptr,
    sync::{
        Mutex, Once,
        atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering},
    },
};

use super::page_size;

const CHUNK_SLOTS: usize = 1024;
const MAX_CHUNKS: usize = 1024;

/// One registered guarded stack.
struct Slot {
    /// Start of the guard page; 0 when the slot is free. Written with
    /// Release after `size`/`owner`, read with Acquire by the handler.
    guard: AtomicUsize,
    /// Usable bytes above the guard page.
    size: AtomicUsize,
    /// Id of the coroutine now running on this stack (0: none).
    owner: AtomicU64,
}

type Chunk = [Slot; CHUNK_SLOTS];

/// Chunk pointers; a null entry ends the list. Published with Release after
/// the chunk is initialised; read with Acquire.
static CHUNKS: [AtomicPtr<Chunk>; MAX_CHUNKS] =
    [const { AtomicPtr::new(ptr::null_mut()) }; MAX_CHUNKS];

/// Slot allocation; only ever touched by threads mapping or unmapping
/// stacks, never by the signal handler.
static FREE: Mutex<FreeSlots> = Mutex::new(FreeSlots {
    free: Vec::new(),
    next: 0,
});

struct FreeSlots {
    free: Vec<u32>,
    next: u32,
}

/// A registered guarded stack's place in the registry.
#[derive(Debug)]
pub(crate) struct GuardSlot(u32);

fn slot(index: u32) -> &'static Slot {
    let chunk = CHUNKS[index as usize / CHUNK_SLOTS].load(Ordering::Acquire);
    // SAFETY: an index is handed out only after its chunk was published, and
    // chunks are never freed.
    unsafe { &(*chunk)[index as usize % CHUNK_SLOTS] }
}

/// Registers a guard page; installs the signal handler on first use.
pub(crate) fn register(guard: usize, size: usize) -> io::Result<GuardSlot> {
    install_handler();
    let index = {
        let mut f = FREE.lock().unwrap_or_else(|e| e.into_inner());
        match f.free.pop() {
            Some(i) => i,
            None => {
                let i = f.next;
                let chunk = i as usize / CHUNK_SLOTS;
                if chunk >= MAX_CHUNKS {
                    return Err(io::Error::other(format!(
                        "more than {} guarded coroutine stacks at once; use unguarded stacks beyond that",
                        CHUNK_SLOTS * MAX_CHUNKS
                    )));
                }
                if (i as usize).is_multiple_of(CHUNK_SLOTS) {
                    let fresh: Box<Chunk> = Box::new(
                        [const {
                            Slot {
                                guard: AtomicUsize::new(0),
                                size: AtomicUsize::new(0),
                                owner: AtomicU64::new(0),
                            }
                        }; CHUNK_SLOTS],
                    );
                    // Pairs with the Acquire loads in `slot` and the handler.
                    CHUNKS[chunk].store(Box::into_raw(fresh), Ordering::Release);
                }
                f.next += 1;
                i
            }
        }
    };
    let s = slot(index);
    s.size.store(size, Ordering::Relaxed);
    s.owner.store(0, Ordering::Relaxed);
    // Pairs with the handler's Acquire load: size and owner are visible.
    s.guard.store(guard, Ordering::Release);
    Ok(GuardSlot(index))
}

/// Removes a registration, before the stack is unmapped.
pub(crate) fn unregister(g: GuardSlot) {
    slot(g.0).guard.store(0, Ordering::Release);
    FREE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .free
        .push(g.0);
}

/// Records which coroutine now runs on the stack, for the overflow report.
pub(crate) fn set_owner(g: &GuardSlot, id: u64) {
    slot(g.0).owner.store(id, Ordering::Relaxed);
}

/// Finds the registered stack whose guard page holds `addr`.
fn lookup(addr: usize) -> Option<(u64, usize)> {
    let page = page_size();
    for chunk in &CHUNKS {
        let c = chunk.load(Ordering::Acquire);
        if c.is_null() {
            break;
        }
        // SAFETY: published chunks are initialised and never freed.
        for s in unsafe { &*c } {
            let g = s.guard.load(Ordering::Acquire);
            if g != 0 && addr >= g && addr < g + page {
                return Some((
                    s.owner.load(Ordering::Relaxed),
                    s.size.load(Ordering::Relaxed),
                ));
            }
        }
    }
    None
}

/// The actions that were installed for SIGSEGV and SIGBUS before ours.
static mut PREV_SEGV: MaybeUninit<libc::sigaction> = MaybeUninit::uninit();
static mut PREV_BUS: MaybeUninit<libc::sigaction> = MaybeUninit::uninit();

fn install_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for (sig, prev) in [
            (libc::SIGSEGV, &raw mut PREV_SEGV),
            (libc::SIGBUS, &raw mut PREV_BUS),
        ] {
            // SAFETY: a zeroed sigaction is a valid value; `prev` is written
            // here once, before the handler that reads it is installed.
            unsafe {
                let mut act: libc::sigaction = std::mem::zeroed();
                act.sa_sigaction = handle_fault as *const () as usize;
                act.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
                libc::sigemptyset(&mut act.sa_mask);
                if libc::sigaction(sig, &act, (*prev).as_mut_ptr()) != 0 {
                    crate::util::fatal("runtime: cannot install the stack-overflow handler");
                }
            }
        }
    });
}

extern "C" fn handle_fault(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo_t for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    if let Some((owner, size)) = lookup(addr) {
        super::overflowed(owner, size, "");
    }
    // Not ours: hand the fault to whoever was there before us.
    let prev = if sig == libc::SIGBUS {
        &raw const PREV_BUS
    } else {
        &raw const PREV_SEGV
    };
    // SAFETY: `prev` was initialised before this handler was installed.
    let prev = unsafe { (*prev).assume_init_ref() };
    match prev.sa_sigaction {
        libc::SIG_DFL | libc::SIG_IGN => {
            // Restore it and return: the faulting instruction runs again and
            // the default action (a core dump) happens with the right state.
            // SAFETY: restoring a previously valid action.
            unsafe { libc::sigaction(sig, prev, ptr::null_mut()) };
        }
        f if prev.sa_flags & libc::SA_SIGINFO != 0 => {
            // SAFETY: the previous handler was installed with SA_SIGINFO, so
            // this is its three-argument signature.
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                unsafe { std::mem::transmute(f) };
            f(sig, info, ctx);
        }
        f => {
            // SAFETY: a handler without SA_SIGINFO takes only the signal.
            let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(f) };
            f(sig);
        }
    }
}

/// Size of the alternate signal stacks gort installs.
fn altstack_size() -> usize {
    // SAFETY: getauxval has no preconditions; AT_MINSIGSTKSZ is the
    // kernel's minimum for this CPU's signal frame (0 if unknown).
    let min = unsafe { libc::getauxval(libc::AT_MINSIGSTKSZ) } as usize;
    (min * 4).max(libc::SIGSTKSZ).max(64 * 1024)
}

thread_local! {
    /// Whether this thread is known to have an alternate signal stack.
    static ALTSTACK_READY: Cell<bool> = const { Cell::new(false) };
    /// The alternate stack gort installed on this thread, if it had none.
    static OWNED_ALTSTACK: Cell<Option<AltStack>> = const { Cell::new(None) };
}

/// An alternate signal stack that gort installed on this thread; disabled
/// and unmapped when the thread exits.
struct AltStack {
    _map: memmap2::MmapMut,
}

impl Drop for AltStack {
    fn drop(&mut self) {
        let ss = libc::stack_t {
            ss_sp: ptr::null_mut(),
            ss_flags: libc::SS_DISABLE,
            ss_size: 0,
        };
        // SAFETY: disables this thread's alternate stack before `_map` is
        // unmapped; runs on the thread that installed it.
        unsafe { libc::sigaltstack(&ss, ptr::null_mut()) };
    }
}

/// Makes sure this thread has an alternate signal stack, so the overflow
/// handler can run when the faulting stack is exhausted. std gives one to
/// the main thread and to threads it spawns; other threads get one here.
pub(crate) fn ensure_altstack() -> io::Result<()> {
    if ALTSTACK_READY.get() {
        return Ok(());
    }
    let mut old = MaybeUninit::<libc::stack_t>::uninit();
    // SAFETY: queries the current alternate stack into valid memory.
    if unsafe { libc::sigaltstack(ptr::null(), old.as_mut_ptr()) } != 0 {
        return Err(crate::util::last_os_error());
    }
    // SAFETY: sigaltstack succeeded, so `old` is initialised.
    let old = unsafe { old.assume_init() };
    if old.ss_flags & libc::SS_DISABLE != 0 {
        let size = altstack_size();
        let map = memmap2::MmapOptions::new().len(size).stack().map_anon()?;
        let ss = libc::stack_t {
            ss_sp: map.as_ptr().cast_mut().cast(),
            ss_flags: 0,
            ss_size: size,
        };
        // SAFETY: `map` stays mapped until AltStack::drop disables the stack.
        if unsafe { libc::sigaltstack(&ss, ptr::null_mut()) } != 0 {
            return Err(crate::util::last_os_error());
        }
        OWNED_ALTSTACK.set(Some(AltStack { _map: map }));
    }
    ALTSTACK_READY.set(true);
    Ok(())
}
