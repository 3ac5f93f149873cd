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
