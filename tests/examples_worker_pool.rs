//! The worker_pool example: fast jobs all deliver, stragglers are
//! cancelled by the deadline and reported as such, jobs never taken are
//! reported as not started, and every coroutine the pool started has ended
//! when it returns (its WaitGroup is at zero, the runtime's coroutine
//! count is back where it was).

mod support;

#[path = "../examples/worker_pool.rs"]
#[allow(dead_code)]
mod worker_pool;

use std::time::{Duration, Instant};

use worker_pool::{Job, Outcome, Report, run_pool};

fn job(id: u32, ms: u64) -> Job {
    Job {
        id,
        work: Duration::from_millis(ms),
    }
}

fn id_of(o: &Outcome) -> u32 {
    match *o {
        Outcome::Done { id, .. } | Outcome::Cancelled { id, .. } => id,
    }
}

fn sorted_ids(v: &[Outcome]) -> Vec<u32> {
    let mut ids: Vec<u32> = v.iter().map(id_of).collect();
    ids.sort_unstable();
    ids
}

/// Every job is in exactly one of the report's lists; results are right.
fn check_accounting(jobs: &[Job], r: &Report, workers: usize) {
    let mut all: Vec<u32> = r.done.iter().chain(&r.cancelled).map(id_of).collect();
    all.extend(&r.not_started);
    all.sort_unstable();
    let mut want: Vec<u32> = jobs.iter().map(|j| j.id).collect();
    want.sort_unstable();
    assert_eq!(all, want, "each job reported exactly once: {r:?}");
    for o in &r.done {
        let Outcome::Done {
            id, value, worker, ..
        } = *o
        else {
            panic!("{o:?} in done")
        };
        assert_eq!(value, u64::from(id) * 2);
        assert!((1..=workers).contains(&worker));
    }
    assert!(
        r.cancelled
            .iter()
            .all(|o| matches!(o, Outcome::Cancelled { .. }))
    );
    assert_eq!(r.workers_left, 0);
}

/// Runs the pool in a fresh 2-P runtime; also checks that the coroutine
/// count comes back to what it was (bounded retry: a coroutine that has
/// done its last act may take a moment to be counted out).
fn run(jobs: Vec<Job>, workers: usize, deadline: Duration) -> (Report, Duration) {
    support::with_timeout(60, move || {
        support::rt(2).block_on(move || {
            let before = gort::stats().unwrap().coroutines;
            let mut seen = Vec::new();
            let start = Instant::now();
            let report = run_pool(&jobs, workers, deadline, |o| seen.push(*o));
            let took = start.elapsed();
            // on_result saw what the report holds, in arrival order.
            let mut reported: Vec<Outcome> = report
                .done
                .iter()
                .chain(&report.cancelled)
                .copied()
                .collect();
            reported.sort_by_key(id_of);
            seen.sort_by_key(id_of);
            assert_eq!(seen, reported);
            let limit = Instant::now() + Duration::from_secs(10);
            while gort::stats().unwrap().coroutines != before {
                assert!(Instant::now() < limit, "coroutines leaked");
                gort::time::sleep(Duration::from_millis(1));
            }
            check_accounting(&jobs, &report, workers);
            (report, took)
        })
    })
}

#[test]
fn fast_jobs_all_deliver() {
    let jobs: Vec<Job> = (1..=40).map(|i| job(i, u64::from(i % 5))).collect();
    let (r, took) = run(jobs, 4, Duration::from_secs(30));
    assert_eq!(r.done.len(), 40);
    assert!(r.cancelled.is_empty() && r.not_started.is_empty());
    assert!(!r.timed_out);
    // It returned when the work was done, not at the deadline.
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

#[test]
fn stragglers_are_cancelled_at_the_deadline() {
    // Two jobs that would take a minute among quick ones; four workers:
    // the two others get through the quick ones long before the deadline.
    let mut jobs: Vec<Job> = (1..=10).map(|i| job(i, 1)).collect();
    jobs.insert(2, job(100, 60_000));
    jobs.insert(6, job(101, 60_000));
    let deadline = Duration::from_millis(1000);
    let (r, took) = run(jobs, 4, deadline);
    assert!(r.timed_out);
    assert_eq!(sorted_ids(&r.done), (1..=10).collect::<Vec<_>>());
    assert_eq!(sorted_ids(&r.cancelled), [100, 101]);
    assert!(r.not_started.is_empty());
    for o in &r.cancelled {
        let Outcome::Cancelled { at, .. } = *o else {
            unreachable!()
        };
        assert!(at >= deadline, "cancelled before the deadline: {at:?}");
    }
    // The pool did not wait for the stragglers' minute.
    assert!(
        took >= deadline && took < Duration::from_secs(20),
        "took {took:?}"
    );
}

#[test]
fn jobs_never_taken_are_reported() {
    // One worker, stuck on the first job: the others never start.
    let jobs = vec![job(1, 60_000), job(2, 1), job(3, 1)];
    let (r, _) = run(jobs, 1, Duration::from_millis(100));
    assert!(r.timed_out);
    assert!(r.done.is_empty());
    assert_eq!(sorted_ids(&r.cancelled), [1]);
    assert_eq!(r.not_started, [2, 3]);
}

#[test]
fn no_jobs_and_repeated_runs() {
    let (r, _) = run(Vec::new(), 3, Duration::from_secs(5));
    assert_eq!(r, Report::default());
    // One runtime, several pools in a row: nothing piles up.
    support::with_timeout(60, || {
        support::rt(2).block_on(|| {
            let before = gort::stats().unwrap().coroutines;
            for round in 0..5u32 {
                let jobs: Vec<Job> = (0..20).map(|i| job(round * 100 + i, 0)).collect();
                let r = run_pool(&jobs, 8, Duration::from_secs(30), |_| {});
                assert_eq!(r.done.len(), 20);
                assert_eq!(r.workers_left, 0);
            }
            let limit = Instant::now() + Duration::from_secs(10);
            while gort::stats().unwrap().coroutines != before {
                assert!(Instant::now() < limit, "coroutines leaked");
                gort::time::sleep(Duration::from_millis(1));
            }
        });
    });
}
