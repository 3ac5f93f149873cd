//! gdb's `bt` inside a coroutine walks the coroutine's frames and stops at
//! its bottom frame. Skipped (with the reason printed) when gdb is absent,
//! except under CI=true, where `.ci/run` installs it.

mod support;

use std::process::Command;

use gort::coro::Coroutine;

/// The breakpoint target: a real, unmangled function so gdb can find it.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn gort_gdb_probe(x: u64) -> u64 {
    std::hint::black_box(x) + 1
}

#[inline(never)]
fn inside_coroutine_a(n: u64) -> u64 {
    gort_gdb_probe(n) + 1
}

#[test]
fn gdb_backtrace_inside_a_coroutine() {
    const NAME: &str = "gdb_backtrace_inside_a_coroutine";
    if support::is_child(NAME) {
        let mut co = Coroutine::<u64, (), u64>::new(|_, n| inside_coroutine_a(n)).unwrap();
        assert_eq!(co.resume(40).as_return(), Some(42));
        return;
    }
    if Command::new("gdb").arg("--version").output().is_err() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "gdb is missing on CI"
        );
        eprintln!("skipped: gdb is not installed (apt-get install gdb)");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("gdb")
        .args([
            "-nx",
            "-batch",
            "-ex",
            "break gort_gdb_probe",
            "-ex",
            "run",
            "-ex",
            "bt",
            "-ex",
            "kill",
            "--args",
        ])
        .arg(&exe)
        .args([NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(support::CHILD_ENV, NAME)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let bt: Vec<&str> = text.lines().filter(|l| l.starts_with('#')).collect();
    assert!(
        // In release builds gdb shows the inlined `black_box` above it.
        bt.iter().take(2).any(|l| l.contains("gort_gdb_probe")),
        "stopped in the probe:\n{text}"
    );
    assert!(
        bt.iter().any(|l| l.contains("inside_coroutine_a")),
        "caller frame listed:\n{text}"
    );
    assert!(
        bt.iter().any(|l| l.contains("coroutine_entry")),
        "entry frame listed:\n{text}"
    );
    assert!(
        bt.last().is_some_and(|l| l.contains("gort_trampoline")),
        "ends at the trampoline:\n{text}"
    );
    assert!(
        !text.contains("Backtrace stopped"),
        "gdb gave up walking:\n{text}"
    );
    assert!(!text.contains("corrupt stack"), "{text}");
}
