//! Stack overflow and mapping exhaustion, each in a child process because
//! they end the process or change its limits.

mod support;

use gort::coro::{Builder, Coroutine, Yielder};
use support::{is_child, killed_by, run_in_child};

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
        // The id printed is the coroutine's: the child prints it first.
        let out = run_in_child(NAME);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(killed_by(&out), Some(libc::SIGABRT), "stderr:\n{stderr}");
        let id = stderr
            .lines()
            .find_map(|l| l.strip_prefix("child coroutine id "))
            .expect("child printed its coroutine id");
        let want = format!("coroutine {id} has overflowed its stack (stack size 65536 bytes)");
        assert!(stderr.contains(&want), "stderr lacks {want:?}:\n{stderr}");
        return;
    }
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
            let here = 0u8;
            let bottom = (&raw const here as usize & !(64 * 1024 - 1)) as *mut u64;
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
        msg.contains("vm.max_map_count") && msg.contains("sysctl"),
        "{msg}"
    );
    assert!(msg.contains("stack_guard(false)"), "{msg}");
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
        return support::assert_child_succeeds(NAME);
    }
    // Really exhaust vm.max_map_count with guarded stacks (two mappings each).
    let limit: usize = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    if limit > 300_000 {
        eprintln!("skipped: vm.max_map_count is {limit}; exhausting it would take too long");
        return;
    }
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
