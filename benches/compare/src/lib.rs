//! Helpers shared by the comparison binaries in `src/bin/`.
//!
//! Every binary prints its results as single parseable lines on stdout
//! (`compare <metric> <side>=<value> ... ratio=<x>`); anything meant for a
//! human only goes to stderr.

use std::time::{Duration, Instant};

/// The median of `samples` (sorted in place); the mean of the middle two
/// for an even count.
pub fn median(samples: &mut [f64]) -> f64 {
    assert!(!samples.is_empty(), "median of no samples");
    samples.sort_by(f64::total_cmp);
    let n = samples.len();
    if n % 2 == 1 {
        samples[n / 2]
    } else {
        (samples[n / 2 - 1] + samples[n / 2]) / 2.0
    }
}

/// Smallest and largest of `samples`.
pub fn min_max(samples: &[f64]) -> (f64, f64) {
    samples
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

/// Runs `f` once and returns its wall-clock time in nanoseconds per
/// `per` operations.
pub fn ns_per(per: usize, f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    elapsed_ns(t.elapsed()) / per as f64
}

/// A duration in nanoseconds, as a float.
pub fn elapsed_ns(d: Duration) -> f64 {
    d.as_secs_f64() * 1e9
}

/// Resident set size of this process in bytes: resident pages (the second
/// field of `/proc/self/statm`) times the page size.
pub fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let resident: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .expect("/proc/self/statm has a resident field");
    resident * page_size()
}

/// The system page size.
pub fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as usize } else { 4096 }
}

/// Describes a sample set for stderr: `median (min..max, n samples)`.
pub fn spread(samples: &[f64]) -> String {
    let mut s = samples.to_vec();
    let (lo, hi) = min_max(&s);
    let m = median(&mut s);
    format!("{m:.2} (min {lo:.2}, max {hi:.2}, {} samples)", s.len())
}

/// Peak resident set size of this process (`VmHWM` in `/proc/self/status`),
/// in KiB.
pub fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("/proc/self/status has a VmHWM line")
}

/// A field of `/proc/self/status` given in kB (`VmRSS`, `VmPTE`, ...),
/// in KiB.
pub fn proc_status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("/proc/self/status has no {field} line"))
}

/// Resident set size of this process (`VmRSS` in `/proc/self/status`), in
/// KiB.
pub fn vm_rss_kib() -> u64 {
    proc_status_kib("VmRSS")
}

/// What one child process measured: the line it prints on stdout,
/// `ns=<ns per operation> hwm_kib=<peak RSS>` (the Go programs in
/// `benches/go/` print the same line).
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Nanoseconds per operation.
    pub ns: f64,
    /// Peak resident set (`VmHWM`) of the whole process, in KiB.
    pub hwm_kib: u64,
}

impl Sample {
    /// This process's result line: `ns` per operation and its `VmHWM`.
    pub fn print(ns: f64) {
        println!("ns={ns:.2} hwm_kib={}", vm_hwm_kib());
    }

    /// Parses a `ns=<x> hwm_kib=<n>` line.
    pub fn parse(line: &str) -> Option<Sample> {
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        };
        Some(Sample {
            ns: field("ns")?.parse().ok()?,
            hwm_kib: field("hwm_kib")?.parse().ok()?,
        })
    }

    /// Peak RSS in MiB.
    pub fn hwm_mib(&self) -> f64 {
        self.hwm_kib as f64 / 1024.0
    }
}

/// Why a child process gave no sample: a short token for the `compare`
/// line (`failed(<token>)`, no spaces) and the full story for stderr.
#[derive(Debug, Clone)]
pub struct Failure {
    /// `timeout`, `exit=<code>`, `signal=<name>` or `no-result`, then
    /// `,ENOMEM` if the child's stderr says it ran out of memory.
    pub token: String,
    /// The exit status and the last lines of the child's stderr.
    pub detail: String,
}

/// Runs `cmd` to completion (killing it after `limit`) and parses the
/// sample on its stdout. Its stderr is kept for the failure report only.
pub fn run_sample(cmd: &mut std::process::Command, limit: Duration) -> Result<Sample, Failure> {
    use std::{io::Read, os::unix::process::ExitStatusExt, process::Stdio};

    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    // Drain both pipes on threads so that a chatty child cannot block.
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let err = drain(Box::new(child.stderr.take().expect("piped stderr")));
    let deadline = Instant::now() + limit;
    let (status, timed_out) = loop {
        if let Some(s) = child.try_wait().expect("wait for a child") {
            break (s, false);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            break (child.wait().expect("wait for a killed child"), true);
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    if status.success()
        && !timed_out
        && let Some(s) = out.lines().find_map(Sample::parse)
    {
        return Ok(s);
    }
    let mut token = if timed_out {
        "timeout".to_owned()
    } else if let Some(sig) = status.signal() {
        format!("signal={}", signal_name(sig))
    } else if let Some(code) = status.code().filter(|&c| c != 0) {
        format!("exit={code}")
    } else {
        "no-result".to_owned()
    };
    if err.contains("Cannot allocate memory") || err.contains("memory allocation of") {
        token += ",ENOMEM";
    }
    let tail: Vec<&str> = err.lines().rev().take(6).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(Failure {
        token,
        detail: format!(
            "{status}{}; stderr: {}",
            if timed_out { " (killed: timeout)" } else { "" },
            tail.join(" | ")
        ),
    })
}

/// The name of a fatal signal, for failure tokens.
fn signal_name(sig: i32) -> String {
    match sig {
        libc::SIGABRT => "SIGABRT".into(),
        libc::SIGSEGV => "SIGSEGV".into(),
        libc::SIGBUS => "SIGBUS".into(),
        libc::SIGKILL => "SIGKILL".into(),
        libc::SIGILL => "SIGILL".into(),
        n => n.to_string(),
    }
}

/// Formats `a/b` for a `ratio=` field.
pub fn ratio(a: f64, b: f64) -> String {
    format!("{:.3}", a / b)
}

/// One side of an alternating comparison: its name and a way to build the
/// command of a child process that measures it once.
pub struct Side {
    /// The name printed in the `compare` lines (`gort`, `go`, ...).
    pub name: String,
    /// Builds the command for one sample.
    pub cmd: Box<dyn Fn() -> std::process::Command>,
}

impl Side {
    /// A side named `name` measured by the command `cmd` builds.
    pub fn new(name: &str, cmd: impl Fn() -> std::process::Command + 'static) -> Side {
        Side {
            name: name.to_owned(),
            cmd: Box::new(cmd),
        }
    }
}

/// Runs `rounds` rounds, each starting one child per side in the order
/// given (gort, go, may, tokio, gort, go, ...), so that frequency drift
/// and noisy neighbours hit every side alike. Returns each side's samples,
/// or its failure: a side whose child fails (or outlives `limit`) is not
/// run again. Every sample is also reported on stderr as it arrives.
pub fn alternate(
    metric: &str,
    sides: &[Side],
    rounds: usize,
    limit: Duration,
) -> Vec<Result<Vec<Sample>, Failure>> {
    let mut results: Vec<Result<Vec<Sample>, Failure>> =
        sides.iter().map(|_| Ok(Vec::new())).collect();
    for round in 1..=rounds {
        let mut line = format!("{metric} round {round}/{rounds}:");
        for (side, result) in sides.iter().zip(results.iter_mut()) {
            let Ok(samples) = result else { continue };
            match run_sample(&mut (side.cmd)(), limit) {
                Ok(s) => {
                    line += &format!(" {}={:.2}ns/{:.1}MiB", side.name, s.ns, s.hwm_mib());
                    samples.push(s);
                }
                Err(f) => {
                    line += &format!(" {}=failed({})", side.name, f.token);
                    eprintln!("{metric}: {} failed: {}", side.name, f.detail);
                    *result = Err(f);
                }
            }
        }
        eprintln!("{line}");
    }
    results
}

/// The median ns and median peak RSS (MiB) of a side's samples.
pub fn medians(samples: &[Sample]) -> (f64, f64) {
    let mut ns: Vec<f64> = samples.iter().map(|s| s.ns).collect();
    let mut mib: Vec<f64> = samples.iter().map(Sample::hwm_mib).collect();
    (median(&mut ns), median(&mut mib))
}

/// One side's figure for a `compare` line: a value, or how it failed.
pub type Figure<'a> = Result<f64, &'a Failure>;

/// `compare <metric> <a>=<value> <b>=<value> ratio=<a/b>`; a failed side
/// shows as `failed(<token>)` and the ratio as `na`.
pub fn compare_line(metric: &str, a: (&str, Figure<'_>), b: (&str, Figure<'_>)) -> String {
    let show = |v: &Figure<'_>| match v {
        Ok(x) => format!("{x:.2}"),
        Err(f) => format!("failed({})", f.token),
    };
    let r = match (&a.1, &b.1) {
        (Ok(x), Ok(y)) => ratio(*x, *y),
        _ => "na".to_owned(),
    };
    format!(
        "compare {metric} {}={} {}={} ratio={r}",
        a.0,
        show(&a.1),
        b.0,
        show(&b.1)
    )
}

/// CPU time of the whole process so far (user + system, all threads),
/// from `getrusage(RUSAGE_SELF)`.
pub fn cpu_time() -> Duration {
    // SAFETY: an all-zero `rusage` is a valid value of the plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable `rusage`; RUSAGE_SELF needs nothing else.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    assert_eq!(rc, 0, "getrusage: {}", std::io::Error::last_os_error());
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// The shape of the `timers` metric, shared by its Rust sides
/// (`timers_gort`, `timers_tokio`, `timers_may`; the Go side,
/// `benches/go/timers`, does the same): `coroutines` coroutines that each
/// sleep `TICK` `sleeps` times in a row, started together and waited for
/// together.
pub mod timers {
    use std::time::{Duration, Instant};

    /// Coroutines per run.
    pub const COROUTINES: usize = 10_000;
    /// Sleeps per coroutine.
    pub const SLEEPS: usize = 100;
    /// One sleep.
    pub const TICK: Duration = Duration::from_millis(1);

    /// `[COROUTINES [SLEEPS]]` from `args` (the command line after any
    /// side-specific argument), defaulting to the constants above; exits 2
    /// on anything else.
    pub fn shape(args: &[String]) -> (usize, usize) {
        let num = |i: usize, default: usize| match args.get(i) {
            None => default,
            Some(s) => s.parse().ok().filter(|&n| n > 0).unwrap_or_else(|| {
                eprintln!("timers: '{s}' is not a positive number");
                std::process::exit(2)
            }),
        };
        if args.len() > 2 {
            eprintln!("timers: usage: ... [COROUTINES [SLEEPS]]");
            std::process::exit(2);
        }
        (num(0, COROUTINES), num(1, SLEEPS))
    }

    /// Wall-clock and CPU time from a starting point.
    #[derive(Debug, Clone, Copy)]
    pub struct Clock {
        wall: Instant,
        cpu: Duration,
    }

    impl Clock {
        /// Starts measuring (wall and process CPU time).
        pub fn start() -> Clock {
            Clock {
                cpu: super::cpu_time(),
                wall: Instant::now(),
            }
        }

        /// Prints this process's result line, `wall_ms=<x> cpu_ms=<y>`:
        /// the wall-clock time since `start` and the CPU time (user + sys,
        /// all threads) spent since then.
        pub fn report(self) {
            let wall = self.wall.elapsed();
            let cpu = super::cpu_time().saturating_sub(self.cpu);
            println!(
                "wall_ms={:.2} cpu_ms={:.2}",
                wall.as_secs_f64() * 1e3,
                cpu.as_secs_f64() * 1e3
            );
        }
    }
}

/// One side of a grouped comparison (`pingpong`, `mutex`, `pipeline`):
/// the `compare` line it belongs to (`metric`), its name in that line
/// (`label`), and the side itself (whose `name` must be unique across all
/// groups: it names the side in the per-round lines on stderr).
pub struct Entry {
    /// The metric of the `compare` lines this side appears in.
    pub metric: String,
    /// The side's name in those lines (`gort`, `go`, ...).
    pub label: String,
    /// The side: a unique name and its command.
    pub side: Side,
}

impl Entry {
    /// A side labelled `label` in the `metric` lines; `name` (unique)
    /// names it on stderr.
    pub fn new(
        metric: &str,
        label: &str,
        name: &str,
        cmd: impl Fn() -> std::process::Command + 'static,
    ) -> Entry {
        Entry {
            metric: metric.to_owned(),
            label: label.to_owned(),
            side: Side::new(name, cmd),
        }
    }
}

/// Runs every entry's side in one alternating sequence (`alternate`, all
/// groups interleaved in every round), prints each side's spread of ns on
/// stderr (`<bench> <name> <unit>: median (min, max, n)`), then for each
/// metric, in order of first appearance, one `compare` line of its first
/// entry (gort) against each other entry of that metric, on medians.
pub fn run_grouped(bench: &str, entries: Vec<Entry>, rounds: usize, limit: Duration, unit: &str) {
    let (labels, sides): (Vec<(String, String)>, Vec<Side>) = entries
        .into_iter()
        .map(|e| ((e.metric, e.label), e.side))
        .unzip();
    let results = alternate(bench, &sides, rounds, limit);
    let figures: Vec<Figure<'_>> = results
        .iter()
        .map(|r| r.as_ref().map(|s| medians(s).0))
        .collect();
    for (side, r) in sides.iter().zip(&results) {
        if let Ok(s) = r {
            let ns: Vec<f64> = s.iter().map(|s| s.ns).collect();
            eprintln!("{bench} {:16} {unit}: {}", side.name, spread(&ns));
        }
    }
    let mut metrics: Vec<&str> = Vec::new();
    for (m, _) in &labels {
        if !metrics.contains(&m.as_str()) {
            metrics.push(m);
        }
    }
    for m in metrics {
        let group: Vec<usize> = (0..labels.len()).filter(|&i| labels[i].0 == m).collect();
        let base = group[0];
        for &i in &group[1..] {
            println!(
                "{}",
                compare_line(
                    m,
                    (&labels[base].1, figures[base]),
                    (&labels[i].1, figures[i])
                )
            );
        }
    }
}
