//! `stack`: what a coroutine's stack costs to get and to keep.
//!
//! (a) Creation time on a fresh stack versus a pooled one. A *fresh*
//!     stack is carved from a slab (a new slab when the last is used up,
//!     8, 16, 32... stacks up to 64 MiB; otherwise a stack given back to
//!     the slab with its pages released), its top page faulted in when the
//!     closure and the first frame are written; a guarded one also gets a
//!     kernel guard region (`madvise`) the first time its cell is used and
//!     a slot in the guard registry. Without guard regions (the
//!     `guarded-mprotect` mode: `GORT_DEBUG=guardpages=mprotect`, as on
//!     kernels before 6.13) a fresh guarded stack is a new mapping (`mmap`,
//!     `mprotect` of the guard page, the registry slot). A *pooled* stack
//!     comes off the stack pool with its top pages still resident.
//!
//!     One round: drain the pool (create and hold as many coroutines as it
//!     has stacks, untimed), create `BATCH` coroutines and keep them (all
//!     fresh; timed), drop them (into the pool, which holds up to 1024),
//!     create `BATCH` again (all pooled; timed), then drop everything
//!     (untimed). The first round is a warm-up; the medians of the others
//!     are reported.
//!
//! (b) RSS per idle coroutine: create `IDLE` coroutines, resume each once
//!     so it is suspended inside its function, and divide the growth of the
//!     resident set (`/proc/self/statm`) by `IDLE`. The growth includes
//!     everything a coroutine costs: its touched stack pages, its handle in
//!     the `Vec` holding it and the stack layer's bookkeeping.
//!
//! Every measurement runs in its own child process (this binary re-run
//! with `--create MODE` or `--rss MODE`), so the pool, the slabs and the
//! resident pages of one never leak into another.

use std::{
    hint::black_box,
    process::{Command, Stdio},
    time::Instant,
};

use gort::coro::{Builder, Coroutine, CoroutineResult, Yielder};
use gort_compare::{elapsed_ns, median, page_size, rss_bytes, spread};

/// Coroutines created per timed batch (below the pool's 1024 bound, so a
/// whole batch fits in the pool).
const BATCH: usize = 1000;
/// Timed rounds after the warm-up round.
const ROUNDS: usize = 41;
/// Coroutines held for the RSS measurement. Guarded stacks without guard
/// regions take two kernel mappings each; 20,000 of them stay well below
/// vm.max_map_count (65530).
const IDLE: usize = 20_000;

type Co = Coroutine<usize, usize, ()>;

/// A coroutine that, once resumed, sits suspended in its loop.
fn make(guard: bool) -> Co {
    Builder::new()
        .stack_guard(guard)
        .build(|y: &Yielder<usize, usize>, mut n: usize| {
            loop {
                n = y.suspend(n);
            }
        })
        .expect("create a coroutine")
}

fn pooled() -> usize {
    gort::stack::stats().pooled
}

/// Creates `BATCH` coroutines into `out` and returns the ns per creation.
fn timed_batch(guard: bool, out: &mut Vec<Co>) -> f64 {
    out.reserve(BATCH);
    let t = Instant::now();
    for _ in 0..BATCH {
        out.push(make(black_box(guard)));
    }
    elapsed_ns(t.elapsed()) / BATCH as f64
}

/// Child process: the fresh-versus-pooled rounds for one kind of stack.
/// Prints `fresh=<ns> pooled=<ns>`.
fn create(guard: bool) {
    let (mut fresh, mut pool) = (Vec::new(), Vec::new());
    for round in 0..=ROUNDS {
        // Empty the pool so that the next batch is all fresh.
        let hold: Vec<Co> = (0..pooled()).map(|_| make(guard)).collect();
        assert_eq!(pooled(), 0, "the pool should be empty");
        let maps = gort::stack::stats().maps;

        let mut batch = Vec::new();
        let f = timed_batch(guard, &mut batch);
        let made = gort::stack::stats().maps - maps;
        if guard && !gort::stack::guard_regions() {
            assert_eq!(made, BATCH, "every guarded stack is a new mapping");
        } else {
            // Slabs double from 8 stacks: at most 8 mappings for the first
            // 1,000, fewer later.
            assert!(made <= 8, "slab stacks took {made} mappings for {BATCH}");
        }
        // A dropped, never-resumed coroutine gives its stack to the pool.
        drop(batch);
        assert_eq!(pooled(), BATCH, "the batch should be pooled");

        let mut batch = Vec::new();
        let p = timed_batch(guard, &mut batch);
        assert_eq!(pooled(), 0, "the batch should come from the pool");

        drop(hold);
        drop(batch);
        if round > 0 {
            fresh.push(f);
            pool.push(p);
        }
    }
    let mode = if guard { "guarded" } else { "unguarded" };
    eprintln!("stack_create {mode:9} fresh  ns: {}", spread(&fresh));
    eprintln!("stack_create {mode:9} pooled ns: {}", spread(&pool));
    println!(
        "fresh={:.2} pooled={:.2}",
        median(&mut fresh),
        median(&mut pool)
    );
}

/// `VmPTE` of this process in bytes: page-table memory, which the kernel
/// does not count in RSS.
fn page_tables_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmPTE:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Child process: RSS growth per idle coroutine for one kind of stack.
/// Prints `bytes=<n>`.
fn rss(guard: bool) {
    let (rss0, pte0) = (rss_bytes(), page_tables_bytes());
    let mut all: Vec<Co> = Vec::with_capacity(IDLE);
    for i in 0..IDLE {
        let mut co = make(guard);
        assert_eq!(co.resume(i), CoroutineResult::Yield(i));
        all.push(co);
    }
    let (rss1, pte1) = (rss_bytes(), page_tables_bytes());
    let per = (rss1 - rss0) as f64 / IDLE as f64;
    let mode = if guard { "guarded" } else { "unguarded" };
    eprintln!(
        "rss {mode:9}: {IDLE} idle coroutines, RSS +{} KiB ({per:.0} B each, {:.2} pages of {} B); \
         page tables (not in RSS) +{} KiB ({:.0} B each); handle {} B",
        (rss1 - rss0) / 1024,
        per / page_size() as f64,
        page_size(),
        (pte1 - pte0) / 1024,
        (pte1 - pte0) as f64 / IDLE as f64,
        size_of::<Co>(),
    );
    println!("bytes={per:.0}");
    black_box(&all);
}

/// Runs this binary with `args` and returns its stdout, one line.
fn child(args: &[&str], env: &[(&str, &str)]) -> String {
    let exe = std::env::current_exe().expect("current_exe");
    let out = Command::new(exe)
        .args(args)
        .envs(env.iter().copied())
        .stderr(Stdio::inherit())
        .output()
        .expect("run a child benchmark process");
    assert!(
        out.status.success(),
        "child {args:?} failed: {}",
        out.status
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

/// The value of `key=` in a child's `k=v k=v` line.
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
}

fn num(line: &str, key: &str) -> f64 {
    field(line, key).parse().expect("a number")
}

fn usage() -> ! {
    eprintln!("usage: stack [--create guarded|unguarded | --rss guarded|unguarded]");
    eprintln!("  (GORT_DEBUG=guardpages=mprotect: guarded stacks without guard regions)");
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = |m: &str| match m {
        "guarded" => true,
        "unguarded" => false,
        _ => usage(),
    };
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => {}
        ["--create", m] => return create(mode(m)),
        ["--rss", m] => return rss(mode(m)),
        _ => usage(),
    }
    let mprotect = [("GORT_DEBUG", "guardpages=mprotect")];
    for (mode, env, metric) in [
        ("guarded", &[][..], "stack_create_fresh_vs_pooled"),
        (
            "guarded",
            &mprotect[..],
            "stack_create_fresh_vs_pooled_guarded_mprotect",
        ),
        (
            "unguarded",
            &[][..],
            "stack_create_fresh_vs_pooled_unguarded",
        ),
    ] {
        let line = child(&["--create", mode], env);
        let (f, p) = (num(&line, "fresh"), num(&line, "pooled"));
        println!(
            "compare {metric} gort_fresh={f:.2} gort_pooled={p:.2} ratio={:.3}",
            f / p
        );
    }
    let g = num(&child(&["--rss", "guarded"], &[]), "bytes");
    let m = num(&child(&["--rss", "guarded"], &mprotect), "bytes");
    let u = num(&child(&["--rss", "unguarded"], &[]), "bytes");
    println!("rss_per_idle_coroutine guarded={g:.0} guarded_mprotect={m:.0} unguarded={u:.0}");
}
