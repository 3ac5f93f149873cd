//! Stack overflow and mapping exhaustion, each in a child process because
//! they end the process or change its limits.

mod support;

use gort::coro::{Builder, Coroutine, Yielder};
use support::{MPROTECT_GUARDS, is_child, killed_by, run_in_child, run_in_child_with};

#[inline(never)]
fn recurse_forever(n: u64) -> u64 {
    let frame = std::hint::black_box([n; 64]);
    if std::hint::black_box(n) == u64::MAX {
        return frame[0];
    }
    recurse_forever(n + 1) + frame[1]
}

fn expect_abort_with(name: &str, needle: &str) {
    let out = run_in_child(name);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        killed_by(&out),
        Some(libc::SIGABRT),
        "status {:?}, stderr:\n{stderr}",
        out.status
    );
    assert!(
        stderr.contains(needle),
        "stderr lacks {needle:?}:\n{stderr}"
    );
}

#[test]
fn guard_page_overflow_is_reported_and_aborts() {
    const NAME: &str = "guard_page_overflow_is_reported_and_aborts";
    if !is_child(NAME) {
        // Both guard mechanisms: kernel guard regions (where the kernel has
        // them) and a mapping of its own with an mprotected page.
        for env in [&[][..], &[MPROTECT_GUARDS]] {
            // The id printed is the coroutine's: the child prints it first.
            let out = run_in_child_with(NAME, env);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                killed_by(&out),
                Some(libc::SIGABRT),
                "{env:?} stderr:\n{stderr}"
            );
            let id = stderr
                .lines()
                .find_map(|l| l.strip_prefix("child coroutine id "))
                .expect("child printed its coroutine id");
            let want = format!("coroutine {id} has overflowed its stack (stack size 65536 bytes)");
            assert!(
                stderr.contains(&want),
                "{env:?} stderr lacks {want:?}:\n{stderr}"
            );
        }
        return;
    }
    // A neighbour below in the same slab (guard regions): the overflow
    // must still hit this stack's own guard, not run into the neighbour.
    let _below = Coroutine::<(), (), u64>::with_stack_size(64 * 1024, |_, ()| 0).unwrap();
    let mut co =
        Coroutine::<(), (), u64>::with_stack_size(64 * 1024, |_, ()| recurse_forever(0)).unwrap();
    eprintln!("child coroutine id {}", co.id());
    co.resume(());
    unreachable!("the overflow must abort");
}

#[test]
fn overflow_in_a_coroutine_on_another_thread_is_reported() {
    const NAME: &str = "overflow_in_a_coroutine_on_another_thread_is_reported";
    if !is_child(NAME) {
        return expect_abort_with(NAME, "has overflowed its stack (stack size 65536 bytes)");
    }
    std::thread::spawn(|| {
        let mut co =
            Coroutine::<(), (), u64>::with_stack_size(64 * 1024, |_, ()| recurse_forever(0))
                .unwrap();
        co.resume(());
    })
    .join()
    .unwrap();
}

#[test]
fn a_fault_outside_any_coroutine_stack_is_left_to_the_previous_handler() {
    const NAME: &str = "a_fault_outside_any_coroutine_stack_is_left_to_the_previous_handler";
    if !is_child(NAME) {
        let out = run_in_child(NAME);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(killed_by(&out), Some(libc::SIGSEGV), "stderr:\n{stderr}");
        assert!(!stderr.contains("overflowed"), "{stderr}");
        return;
    }
    // Install gort's handler, then fault on an unmapped address.
    let mut co = Coroutine::<(), (), ()>::new(|_, ()| ()).unwrap();
    co.resume(());
    // SAFETY: deliberately invalid; the test expects the process to die.
    unsafe { std::ptr::null_mut::<u64>().add(16).write_volatile(1) };
}

#[test]
fn unguarded_overflow_is_caught_by_the_canary() {
    const NAME: &str = "unguarded_overflow_is_caught_by_the_canary";
    if !is_child(NAME) {
        return expect_abort_with(
            NAME,
            "has overflowed its stack (stack size 65536 bytes, unguarded",
        );
    }
    // Two stacks of one slab: overflowing the upper one writes into the
    // lower one's canary... and its top. Write only just past the bottom,
    // as a frame that crosses the boundary would, then switch away.
    let mut co = Builder::new()
        .stack_size(64 * 1024)
        .stack_guard(false)
        .build(|y: &Yielder<(), ()>, ()| {
            // The top is page aligned and this frame lies within its
            // first page; the canary is 64 KiB below the top.
            let here = 0u8;
            let top = (&raw const here as usize).next_multiple_of(4096);
            let bottom = (top - 64 * 1024) as *mut u64;
            // SAFETY: deliberately clobbers our own canary (the lowest bytes
            // of this stack), simulating an overflow that reached it.
            unsafe { bottom.write_volatile(0xdead_beef) };
            y.suspend(());
        })
        .unwrap();
    co.resume(());
    unreachable!("the canary check must abort");
}

/// Sets RLIMIT_AS so that any further large mapping fails.
fn limit_address_space(extra: u64) {
    let vm: u64 = std::fs::read_to_string("/proc/self/statm")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let lim = libc::rlimit {
        rlim_cur: vm * 4096 + extra,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit with a valid struct.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) }, 0);
}

#[test]
fn mmap_failure_is_an_error_naming_the_cause() {
    const NAME: &str = "mmap_failure_is_an_error_naming_the_cause";
    if !is_child(NAME) {
        return support::assert_child_succeeds(NAME);
    }
    limit_address_space(16 * 1024 * 1024);
    let mut made = Vec::new();
    let err = loop {
        match Coroutine::<(), (), ()>::with_stack_size(1024 * 1024, |_, ()| ()) {
            Ok(c) => made.push(c),
            Err(e) => break e,
        }
        assert!(made.len() < 1000, "RLIMIT_AS did not stop the mappings");
    };
    let msg = err.to_string();
    assert_eq!(err.kind(), std::io::ErrorKind::OutOfMemory, "{msg}");
    assert!(
        msg.contains("vm.max_map_count") && msg.contains("sysctl") && msg.contains("ulimit -v"),
        "{msg}"
    );
    if !gort::stack::guard_regions() {
        // A stack per mapping: unguarded stacks, which share, are the way out.
        assert!(msg.contains("stack_guard(false)"), "{msg}");
    }
    // Nothing leaked: freeing what we made lets us make them again.
    let n = made.len();
    drop(made);
    let again: Vec<_> = (0..n)
        .map(|_| Coroutine::<(), (), ()>::with_stack_size(1024 * 1024, |_, ()| ()).unwrap())
        .collect();
    assert_eq!(again.len(), n);
}

#[test]
fn the_mapping_limit_is_an_error_and_recoverable() {
    const NAME: &str = "the_mapping_limit_is_an_error_and_recoverable";
    if !is_child(NAME) {
        // Guarded stacks of their own mapping (the mechanism without kernel
        // guard regions), which are what the mapping limit bounds.
        return support::assert_child_succeeds_with(NAME, &[MPROTECT_GUARDS]);
    }
    assert!(!gort::stack::guard_regions());
    // Really exhaust vm.max_map_count with guarded stacks (two mappings each).
    let Some(limit) = map_count_limit() else {
        return;
    };
    let mut made = Vec::new();
    let err = loop {
        match Coroutine::<(), (), ()>::with_stack_size(16 * 1024, |_, ()| ()) {
            Ok(c) => made.push(c),
            Err(e) => break e,
        }
        assert!(made.len() < 1_000_000, "no mapping limit reached");
    };
    let msg = err.to_string();
    assert!(msg.contains("vm.max_map_count"), "{msg}");
    assert!(
        made.len() > limit / 2 - 1000 && made.len() <= limit / 2,
        "made {} with limit {limit}",
        made.len()
    );
    // Unguarded stacks share mappings... but even they need one new mapping
    // per slab, so free some guarded ones first.
    made.truncate(made.len() - 100);
    let mut unguarded = Vec::new();
    for _ in 0..10_000 {
        unguarded.push(
            Builder::new()
                .stack_size(16 * 1024)
                .stack_guard(false)
                .build(|y: &Yielder<(), ()>, ()| y.suspend(()))
                .unwrap(),
        );
    }
    for c in unguarded.iter_mut() {
        c.resume(());
    }
    drop(unguarded);
    drop(made);
    // Everything was released: the full count fits again.
    let again: Vec<_> = (0..limit / 2 - 1000)
        .map(|_| Coroutine::<(), (), ()>::with_stack_size(16 * 1024, |_, ()| ()).unwrap())
        .collect();
    drop(again);
}

/// vm.max_map_count of this machine, or None (with a note) when it is too
/// high to exhaust in a test.
fn map_count_limit() -> Option<usize> {
    let limit: usize = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    if limit > 300_000 {
        eprintln!("skipped: vm.max_map_count is {limit}; exhausting it would take too long");
        return None;
    }
    Some(limit)
}

#[test]
fn guarded_stacks_with_guard_regions_are_not_bounded_by_the_mapping_limit() {
    const NAME: &str = "guarded_stacks_with_guard_regions_are_not_bounded_by_the_mapping_limit";
    if !is_child(NAME) {
        return support::assert_child_succeeds(NAME);
    }
    if !gort::stack::guard_regions() {
        eprintln!("skipped: this kernel has no guard regions (MADV_GUARD_INSTALL)");
        return;
    }
    let Some(limit) = map_count_limit() else {
        return;
    };
    // More guarded stacks alive at once than a mapping each would allow...
    let n = limit / 2 + 2_000;
    let maps = support::mapping_count();
    let mut made: Vec<_> = (0..n)
        .map(|_| {
            Builder::new()
                .stack_size(16 * 1024)
                .build(|y: &Yielder<(), ()>, ()| y.suspend(()))
                .unwrap()
        })
        .collect();
    for c in made.iter_mut() {
        c.resume(());
    }
    let grown = support::mapping_count() - maps;
    assert!(grown < 200, "{n} guarded stacks took {grown} mappings");
    assert!(gort::stack::stats().guarded_mapped >= n);
    drop(made);

    // ...and when something else has taken every mapping, a stack that
    // needs a new slab is a clear error, and works again once they are back.
    let page = 4096;
    let mut hogs = Vec::new();
    loop {
        // Alternating protections keep neighbours from merging.
        let prot = if hogs.len() % 2 == 0 {
            libc::PROT_READ
        } else {
            libc::PROT_READ | libc::PROT_WRITE
        };
        // SAFETY: a fresh private anonymous mapping; unmapped below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                page,
                prot,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            break;
        }
        hogs.push(p as usize);
        assert!(hogs.len() <= limit, "no mapping limit reached");
    }
    let mut alive = Vec::new();
    let err = loop {
        match Coroutine::<(), (), ()>::with_stack_size(32 * 1024, |_, ()| ()) {
            Ok(c) => alive.push(c),
            Err(e) => break e,
        }
        assert!(
            alive.len() < 1_000_000,
            "no error from a full mapping table"
        );
    };
    let msg = err.to_string();
    assert!(msg.contains("vm.max_map_count"), "{msg}");
    for p in hogs {
        // SAFETY: each was mapped above with this length.
        unsafe { libc::munmap(p as *mut libc::c_void, page) };
    }
    let again: Vec<_> = (0..1_000)
        .map(|_| Coroutine::<(), (), ()>::with_stack_size(32 * 1024, |_, ()| ()).unwrap())
        .collect();
    drop(again);
}

#[test]
fn a_reused_slab_stack_keeps_its_guard() {
    const NAME: &str = "a_reused_slab_stack_keeps_its_guard";
    if !is_child(NAME) {
        return expect_abort_with(NAME, "has overflowed its stack (stack size 65536 bytes)");
    }
    // A stack that ran, was pooled, then released back to its slab (its
    // pages dropped with MADV_DONTNEED), is handed out again: its guard
    // must still be there.
    let mut co = Coroutine::<(), (), u64>::with_stack_size(64 * 1024, |_, ()| 1).unwrap();
    co.resume(());
    drop(co);
    assert!(gort::stack::trim_pool(0, usize::MAX) >= 1);
    let carved = gort::stack::stats().slab_stacks;
    let mut co =
        Coroutine::<(), (), u64>::with_stack_size(64 * 1024, |_, ()| recurse_forever(0)).unwrap();
    if gort::stack::guard_regions() {
        assert_eq!(
            gort::stack::stats().slab_stacks,
            carved,
            "no new slab: a free cell was reused"
        );
    }
    co.resume(());
    unreachable!("the overflow must abort");
}
