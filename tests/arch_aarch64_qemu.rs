//! Runs the aarch64 context switch (`src/arch/aarch64.S`) on any host.
//!
//! The Rust crate can only assemble that file when it is built for aarch64,
//! so this test builds the C harness `tests/aarch64/harness.c` together with
//! the very same `.S` file using `aarch64-linux-gnu-gcc` (statically linked)
//! and runs it under `qemu-aarch64`. On an aarch64 Linux host it uses the
//! native `cc` and runs the harness directly.
//!
//! A missing tool skips the test with a message on stderr, except when the
//! environment variable `CI` is `true`: CI installs the tools
//! (`gcc-aarch64-linux-gnu`, `libc6-dev-arm64-cross`, `qemu-user`), so there
//! a missing tool is a failure.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use std::{env, fs, thread};

/// The line the harness prints when every check passed.
const PASS_LINE: &str = "aarch64 harness: PASS";

/// How long the harness may run (it takes well under a second under qemu).
const TIMEOUT: Duration = Duration::from_secs(300);

/// How the harness is built and run on this host.
struct Toolchain {
    cc: &'static str,
    /// `None`: run the binary directly.
    runner: Option<&'static str>,
}

fn toolchain() -> Toolchain {
    if cfg!(all(target_arch = "aarch64", target_os = "linux")) {
        Toolchain {
            cc: "cc",
            runner: None,
        }
    } else {
        Toolchain {
            cc: "aarch64-linux-gnu-gcc",
            runner: Some("qemu-aarch64"),
        }
    }
}

fn in_ci() -> bool {
    env::var("CI").is_ok_and(|v| v == "true")
}

/// Whether `tool --version` runs; `Err` says why not.
fn probe(tool: &str) -> Result<(), String> {
    match Command::new(tool).arg("--version").output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!("`{tool} --version` failed with {}", out.status)),
        Err(e) if e.kind() == ErrorKind::NotFound => Err(format!("`{tool}` is not on PATH")),
        Err(e) => Err(format!("cannot run `{tool}`: {e}")),
    }
}

fn show(out: &Output) -> String {
    format!(
        "status: {}\n--- stdout ---\n{}--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `cmd` with stdout/stderr in files under `dir`, killing it after
/// [`TIMEOUT`].
fn run_with_timeout(mut cmd: Command, dir: &Path) -> Output {
    let stdout_path = dir.join("harness.stdout");
    let stderr_path = dir.join("harness.stderr");
    cmd.stdout(fs::File::create(&stdout_path).expect("create stdout file"));
    cmd.stderr(fs::File::create(&stderr_path).expect("create stderr file"));
    let mut child = cmd.spawn().expect("spawn the harness");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the harness") {
            break status;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the aarch64 harness ran longer than {TIMEOUT:?}; stdout so far:\n{}",
                fs::read_to_string(&stdout_path).unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: fs::read(&stdout_path).expect("read stdout file"),
        stderr: fs::read(&stderr_path).expect("read stderr file"),
    }
}

#[test]
fn aarch64_switch_passes_the_harness() {
    let tools = toolchain();
    for tool in std::iter::once(tools.cc).chain(tools.runner) {
        if let Err(why) = probe(tool) {
            assert!(
                !in_ci(),
                "CI=true but the aarch64 harness cannot run: {why}; install \
                 gcc-aarch64-linux-gnu, libc6-dev-arm64-cross and qemu-user"
            );
            eprintln!(
                "skipping aarch64_switch_passes_the_harness: {why} (install \
                 gcc-aarch64-linux-gnu, libc6-dev-arm64-cross and qemu-user \
                 to run it; with CI=true this is a failure)"
            );
            return;
        }
    }

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let harness_c = root.join("tests/aarch64/harness.c");
    let switch_s = root.join("src/arch/aarch64.S");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("arch_aarch64_qemu");
    fs::create_dir_all(&dir).expect("create the temp dir");
    let exe = dir.join("harness");

    let build = Command::new(tools.cc)
        .args([
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-funwind-tables",
            "-static",
        ])
        .arg("-o")
        .arg(&exe)
        .arg(&harness_c)
        .arg(&switch_s)
        .output()
        .expect("run the C compiler");
    assert!(
        build.status.success(),
        "building the aarch64 harness failed:\n{}",
        show(&build)
    );

    let cmd = match tools.runner {
        Some(runner) => {
            let mut c = Command::new(runner);
            c.arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    let run = run_with_timeout(cmd, &dir);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success() && stdout.lines().any(|l| l.starts_with(PASS_LINE)),
        "the aarch64 harness failed:\n{}",
        show(&run)
    );
    print!("{stdout}");
}
