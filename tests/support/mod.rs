//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::process::{Command, Output};

/// Environment variable naming the test a child process must run for real.
pub const CHILD_ENV: &str = "GORT_TEST_CHILD";

/// True inside the child process started by [`run_in_child`] for `name`.
pub fn is_child(name: &str) -> bool {
    std::env::var(CHILD_ENV).is_ok_and(|v| v == name)
}

/// Re-runs this test binary with only the test `name`, marked as the child,
/// and returns what it did. Used for behaviour that ends the process
/// (stack overflow) or changes process-wide limits (RLIMIT_AS).
pub fn run_in_child(name: &str) -> Output {
    run_in_child_with(name, &[])
}

/// [`run_in_child`] with extra environment variables.
pub fn run_in_child_with(name: &str, env: &[(&str, &str)]) -> Output {
    Command::new(std::env::current_exe().expect("current_exe"))
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, name)
        .env("RUST_BACKTRACE", "0")
        .envs(env.iter().copied())
        .output()
        .expect("spawning the test binary as a child")
}

/// Runs the test `name` in a child (see [`run_in_child`]) and fails unless
/// it succeeded, showing the child's stderr.
pub fn assert_child_succeeds(name: &str) {
    assert_child_succeeds_with(name, &[]);
}

/// [`assert_child_succeeds`] with extra environment variables.
pub fn assert_child_succeeds_with(name: &str, env: &[(&str, &str)]) {
    let out = run_in_child_with(name, env);
    assert!(
        out.status.success(),
        "child {name} ({env:?}) failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The environment that makes gort give each guarded stack a mapping of
/// its own with an `mprotect`ed guard page (the mechanism of kernels
/// without guard regions), for tests that cover both.
pub const MPROTECT_GUARDS: (&str, &str) = ("GORT_DEBUG", "guardpages=mprotect");

/// The signal that killed a child, if one did.
pub fn killed_by(out: &Output) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    out.status.signal()
}

/// Resident set size of this process in bytes.
pub fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// Number of mappings of this process.
pub fn mapping_count() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .expect("/proc/self/maps")
        .lines()
        .count()
}

/// Runs `f` on its own thread and fails the test if it takes longer than
/// `secs` seconds, so a lost wake-up shows as a failure, not a hung run.
/// The limit is far above the expected time: a watchdog, not a timing.
pub fn with_timeout<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let _ = tx.send(r);
    });
    match rx.recv_timeout(std::time::Duration::from_secs(secs)) {
        Ok(Ok(v)) => v,
        Ok(Err(p)) => std::panic::resume_unwind(p),
        Err(_) => panic!("did not finish within {secs} s: a hang (lost wake-up or starvation)"),
    }
}

/// Threads of this process.
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .count()
}

/// A runtime with `procs` Ps.
pub fn rt(procs: usize) -> gort::Runtime {
    gort::Runtime::builder()
        .procs(procs)
        .build()
        .expect("runtime")
}

/// How long a client of an example server waits on a read or write before
/// the test calls it a stall.
pub const WATCHDOG: std::time::Duration = std::time::Duration::from_secs(20);

/// An example's `serve` loop in a 2-P runtime, listening on a free
/// loopback port (the TCP tests of the example servers).
pub struct ExampleServer {
    pub rt: gort::Runtime,
    pub addr: std::net::SocketAddr,
    listener: std::sync::Arc<gort::net::TcpListener>,
    serving: Option<gort::JoinHandle<std::io::Result<()>>>,
}

impl ExampleServer {
    /// Binds, then runs `serve` on the listener in a coroutine.
    pub fn start(
        serve: impl FnOnce(&gort::net::TcpListener) -> std::io::Result<()> + Send + 'static,
    ) -> ExampleServer {
        let rt = rt(2);
        let listener = std::sync::Arc::new(
            rt.block_on(|| gort::net::TcpListener::bind("127.0.0.1:0").unwrap()),
        );
        let addr = listener.local_addr().unwrap();
        let l = listener.clone();
        let serving = Some(rt.spawn(move || serve(&l)));
        ExampleServer {
            rt,
            addr,
            listener,
            serving,
        }
    }

    /// A plain std client connection with the watchdog timeouts.
    pub fn connect_std(&self) -> std::net::TcpStream {
        let s = std::net::TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(WATCHDOG)).unwrap();
        s.set_write_timeout(Some(WATCHDOG)).unwrap();
        s
    }

    /// Closes the listener; `serve` must return Ok, then the runtime goes.
    pub fn stop(mut self) {
        self.listener.close();
        let r = self.serving.take().unwrap().join().unwrap();
        assert!(r.is_ok(), "serve returned {r:?}");
    }
}

/// A value that counts its drops into its counter.
pub struct Counted(pub std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}
