//! A worker pool with a deadline: Go by Example's "Worker Pools" (jobs fanned
//! out to N workers over a channel, results gathered on another) and
//! "WaitGroups", with the cancellation of its "Context" and "Timeouts"
//! examples: a `select` with a deadline closes a `done` channel, which
//! every worker watches, so the stragglers give up and say so.
//!
//! ```text
//! cargo run --release --example worker_pool                # 3 workers, 800 ms deadline
//! cargo run --release --example worker_pool -- 5 2000      # 5 workers, 2 s
//! ```
//!
//! | Go                                              | here                                               |
//! |-------------------------------------------------|----------------------------------------------------|
//! | `jobs := make(chan Job, len(all))`              | `chan::bounded::<Job>(jobs.len())`                 |
//! | `results := make(chan Outcome, len(all))`      | `chan::bounded::<Outcome>(jobs.len())`             |
//! | `done := make(chan struct{})`; `close(done)`    | `chan::bounded::<()>(0)`; `cancel_tx.close()`      |
//! | `wg.Add(1); go func() { defer wg.Done(); worker(...) }()` | `wg.go(move \|\| worker(...))` (Go 1.25's `wg.Go`) |
//! | `select { case <-done: return; default: }`     | `gort::select! { recv(cancel) -> _ => return, default => {} }` |
//! | `for j := range jobs` ... `select { case <-done: return; case j, ok := <-jobs: }` | `gort::select! { recv(cancel) -> _ => return, recv(jobs) -> j => ... }` |
//! | `time.Sleep(j.work)`, cut short by `<-done`    | `gort::select! { recv(cancel) -> _ => ..., after(job.work) => ... }` |
//! | `go func() { wg.Wait(); close(results) }()`     | `gort::go!(move \|\| { wg.wait(); results_tx.close(); })` |
//! | `case r := <-results:` / `case <-time.After(d):` | `gort::select! { recv(results) -> r => ..., after(left) => ... }` |
//! | `ctx.Err() == context.DeadlineExceeded`         | [`Outcome::Cancelled`]                             |
//!
//! # Shutdown, in order
//! 1. The gatherer collects results until all have come in, or until the
//!    deadline; then it closes `cancel` (Go: `close(done)`, or the
//!    `cancel()` of `context.WithTimeout`). Closing wakes every coroutine
//!    blocked receiving on it, at once: a broadcast.
//! 2. A worker in the middle of a job sees `cancel` closed, reports the job
//!    as [`Outcome::Cancelled`] and returns; an idle worker returns.
//! 3. When the last worker has returned, the WaitGroup reaches zero and
//!    the closer coroutine closes `results`; the gatherer drains what is
//!    left and stops.
//! 4. Jobs no worker had taken are still in the job channel: they are
//!    reported as not started.
//!
//! [`run_pool`] returns only after every coroutine it started has ended,
//! so it leaks nothing and can run again in a long-lived runtime. The work
//! here is a timer (Go by Example sleeps too); a real job would look at
//! `cancel` between steps, as Go code checks `ctx.Err()`.

use std::time::{Duration, Instant};

use gort::{
    chan::{self, Receiver, Sender},
    sync::WaitGroup,
};

/// A job: an id and how long its work takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Job {
    /// The job's number.
    pub id: u32,
    /// How long it works before producing its result.
    pub work: Duration,
}

/// What became of a job a worker took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Finished: the result is `id * 2` (as in Go by Example).
    Done {
        /// The job.
        id: u32,
        /// The worker that ran it (1-based).
        worker: usize,
        /// Its result.
        value: u64,
        /// When it finished, from the pool's start.
        at: Duration,
    },
    /// Given up when the deadline passed.
    Cancelled {
        /// The job.
        id: u32,
        /// The worker that had it.
        worker: usize,
        /// When it gave up, from the pool's start.
        at: Duration,
    },
}

/// Everything a pool run came to: every job is in exactly one list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Finished jobs, in the order their results arrived.
    pub done: Vec<Outcome>,
    /// Jobs cut short by the deadline.
    pub cancelled: Vec<Outcome>,
    /// Jobs no worker had taken when the deadline passed.
    pub not_started: Vec<u32>,
    /// Whether the deadline passed before every job finished.
    pub timed_out: bool,
    /// Workers still running when `run_pool` returned (always 0: the
    /// WaitGroup's counter).
    pub workers_left: i64,
}

/// Runs `jobs` on `workers` worker coroutines, giving them until
/// `deadline` (from now): results arriving in time are kept, jobs still
/// running then are cancelled, jobs not started are reported. `on_result`
/// sees each outcome as it arrives. Returns once every coroutine it
/// started has ended. Runs inside a gort runtime.
pub fn run_pool(
    jobs: &[Job],
    workers: usize,
    deadline: Duration,
    mut on_result: impl FnMut(&Outcome),
) -> Report {
    let start = Instant::now();
    let deadline = start + deadline;
    let (jobs_tx, jobs_rx) = chan::bounded::<Job>(jobs.len());
    let (results_tx, results) = chan::bounded::<Outcome>(jobs.len());
    let (cancel_tx, cancel) = chan::bounded::<()>(0);

    // Start the workers; the WaitGroup counts them.
    let wg = WaitGroup::new();
    for id in 1..=workers.max(1) {
        let (jobs, results, cancel) = (jobs_rx.clone(), results_tx.clone(), cancel.clone());
        wg.go(move || worker(id, start, &jobs, &results, &cancel));
    }
    // Close `results` once every worker has returned.
    let closer = {
        let wg = wg.clone();
        gort::go!(move || {
            wg.wait();
            results_tx.close();
        })
    };

    // Hand out the jobs (the buffer holds them all: this never blocks),
    // then close the channel: workers stop when it is drained.
    for &job in jobs {
        jobs_tx.send(job).expect("the pool holds a receiver");
    }
    jobs_tx.close();

    // Gather until every result is in or the deadline passes.
    let mut report = Report::default();
    let mut record = |o: Outcome, report: &mut Report| {
        on_result(&o);
        match o {
            Outcome::Done { .. } => report.done.push(o),
            Outcome::Cancelled { .. } => report.cancelled.push(o),
        }
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        gort::select! {
            recv(results) -> r => match r {
                Ok(o) => record(o, &mut report),
                Err(_) => break, // closed: every worker has returned
            },
            after(left) => {
                // Broadcast the cancellation, then take the stragglers'
                // reports until the closer closes `results`.
                report.timed_out = true;
                cancel_tx.close();
                for o in &results {
                    record(o, &mut report);
                }
                break;
            }
        }
    }
    // The workers are gone: what is left in the job channel never ran.
    report.not_started = jobs_rx.try_iter().map(|j| j.id).collect();
    wg.wait();
    closer.join().expect("the closer coroutine");
    report.workers_left = wg.count();
    report
}

/// Takes jobs until there are no more or `cancel` is closed; each job's
/// work is cut short if `cancel` closes meanwhile.
fn worker(
    id: usize,
    start: Instant,
    jobs: &Receiver<Job>,
    results: &Sender<Outcome>,
    cancel: &Receiver<()>,
) {
    loop {
        // Cancelled? Checked first: when both are ready, the select below
        // picks at random (as Go's does), and a job taken after the
        // cancellation would be given up at once.
        gort::select! {
            recv(cancel) -> _ => return,
            default => {}
        }
        let job = gort::select! {
            recv(cancel) -> _ => return,
            recv(jobs) -> j => match j {
                Ok(j) => j,
                Err(_) => return, // no more jobs
            },
        };
        let outcome = gort::select! {
            recv(cancel) -> _ => Outcome::Cancelled {
                id: job.id,
                worker: id,
                at: start.elapsed(),
            },
            after(job.work) => Outcome::Done {
                id: job.id,
                worker: id,
                value: u64::from(job.id) * 2,
                at: start.elapsed(),
            },
        };
        // The buffer has room for every job's outcome: this never blocks.
        if results.send(outcome).is_err() {
            return;
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let workers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let deadline_ms: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(800);
    // Jobs of 100-300 ms, and two stragglers of 5 s.
    let jobs: Vec<Job> = [200, 300, 5000, 100, 200, 5000, 150, 250, 100]
        .iter()
        .zip(1..)
        .map(|(&ms, id)| Job {
            id,
            work: Duration::from_millis(ms),
        })
        .collect();
    println!(
        "{} jobs, {workers} workers, deadline {deadline_ms} ms",
        jobs.len()
    );
    let report = gort::run(move || {
        run_pool(
            &jobs,
            workers,
            Duration::from_millis(deadline_ms),
            |o| match *o {
                Outcome::Done {
                    id,
                    worker,
                    value,
                    at,
                } => println!(
                    "{:5} ms  worker {worker} finished job {id}: result {value}",
                    at.as_millis()
                ),
                Outcome::Cancelled { id, worker, at } => println!(
                    "{:5} ms  worker {worker} gave up job {id}: deadline exceeded",
                    at.as_millis()
                ),
            },
        )
    });
    let ids = |v: &[Outcome]| -> Vec<u32> {
        v.iter()
            .map(|o| match *o {
                Outcome::Done { id, .. } | Outcome::Cancelled { id, .. } => id,
            })
            .collect()
    };
    println!(
        "done {:?}, cancelled {:?}, never started {:?}; workers left running: {}",
        ids(&report.done),
        ids(&report.cancelled),
        report.not_started,
        report.workers_left
    );
}
