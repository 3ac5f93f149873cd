//! Unwind information across the switch: a backtrace captured inside a
//! coroutine lists the coroutine's own frames and ends at its entry.

use std::backtrace::Backtrace;

use gort::coro::Coroutine;

#[inline(never)]
fn deep_inside_the_coroutine(n: u32) -> String {
    if n > 0 {
        return deep_inside_the_coroutine(n - 1) + "";
    }
    Backtrace::force_capture().to_string()
}

#[inline(never)]
fn the_test_frame_outside() -> String {
    let mut co = Coroutine::<(), (), String>::new(|_, ()| deep_inside_the_coroutine(3)).unwrap();
    co.resume(()).as_return().unwrap()
}

/// The numbered frame lines of a printed backtrace ("  3: name").
fn frame_lines(bt: &str) -> Vec<&str> {
    bt.lines()
        .filter(|l| {
            l.trim_start()
                .split(':')
                .next()
                .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .collect()
}

#[test]
fn backtrace_inside_a_coroutine_lists_its_frames_and_ends_cleanly() {
    let bt = the_test_frame_outside();
    let frames = frame_lines(&bt);
    assert!(
        frames
            .iter()
            .filter(|f| f.contains("deep_inside_the_coroutine"))
            .count()
            >= 4,
        "the recursion's frames are listed:\n{bt}"
    );
    let last = frames.last().expect("some frames");
    assert!(
        last.contains("coroutine_entry") || last.contains("gort_trampoline"),
        "the walk ends at the coroutine's bottom frame, not in garbage:\n{bt}"
    );
    assert!(
        !frames
            .iter()
            .any(|f| f.trim_end().ends_with("the_test_frame_outside")
                || f.contains("lists_its_frames")),
        "the walk stays on the coroutine's stack:\n{bt}"
    );
    assert!(frames.len() < 40, "a clean end, not a runaway walk:\n{bt}");
}

#[test]
fn backtrace_inside_a_scheduled_coroutine_ends_at_its_entry() {
    let bt = gort::Runtime::builder()
        .procs(1)
        .build()
        .unwrap()
        .block_on(|| gort::spawn(|| deep_inside_the_coroutine(2)).join().unwrap());
    let frames = frame_lines(&bt);
    assert!(
        frames
            .iter()
            .filter(|f| f.contains("deep_inside_the_coroutine"))
            .count()
            >= 3,
        "{bt}"
    );
    let last = frames.last().expect("some frames");
    assert!(
        last.contains("g_entry") || last.contains("trampoline"),
        "ends at the G's bottom frame:\n{bt}"
    );
    assert!(
        !bt.contains("Sched::schedule") && !bt.contains("mstart"),
        "the walk stays on the G's stack, off the scheduler's:\n{bt}"
    );
    assert!(frames.len() < 40, "{bt}");
}
