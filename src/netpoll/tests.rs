//! The epoll backend on its own: readiness, edge triggering, wake-ups.

use std::{
    io::{Read, Write},
    os::{fd::AsRawFd, unix::net::UnixStream},
    sync::Arc,
    time::{Duration, Instant},
};

use super::{Event, Poller};

fn pair() -> (UnixStream, UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    (a, b)
}

fn poll_now(p: &Poller) -> Vec<Event> {
    let mut v = Vec::new();
    p.poll(Some(Duration::ZERO), &mut v).unwrap();
    v
}

#[test]
fn readiness_is_reported_with_the_token_edge_triggered() {
    let p = Poller::new().unwrap();
    let (mut a, mut b) = pair();
    p.open(a.as_raw_fd(), 42).unwrap();
    // Registration reports the current state once: writable, not readable.
    let ev = poll_now(&p);
    assert_eq!(
        ev,
        vec![Event {
            token: 42,
            readable: false,
            writable: true,
            error: false,
            hangup: false,
        }]
    );
    assert!(
        poll_now(&p).is_empty(),
        "edge-triggered: nothing new, nothing reported"
    );
    b.write_all(b"hi").unwrap();
    let ev = poll_now(&p);
    assert_eq!(ev.len(), 1);
    assert!(ev[0].readable && ev[0].token == 42);
    assert!(
        poll_now(&p).is_empty(),
        "the same data is not reported twice"
    );
    let mut buf = [0u8; 8];
    assert_eq!(a.read(&mut buf).unwrap(), 2);
    b.write_all(b"again").unwrap();
    let ev = poll_now(&p);
    assert!(ev.iter().any(|e| e.readable), "new data is a new edge");
    assert!(!ev.iter().any(|e| e.hangup), "data alone is no hang-up");
    drop(b);
    let ev = poll_now(&p);
    assert!(
        ev.iter().any(|e| e.readable && e.hangup),
        "the peer hanging up reads as readable, and as a hang-up: {ev:?}"
    );
}

#[test]
fn a_closed_registration_reports_nothing() {
    let p = Poller::new().unwrap();
    let (a, mut b) = pair();
    p.open(a.as_raw_fd(), 7).unwrap();
    poll_now(&p);
    p.close(a.as_raw_fd()).unwrap();
    b.write_all(b"x").unwrap();
    assert!(poll_now(&p).is_empty());
    assert!(
        p.close(a.as_raw_fd()).is_err(),
        "closing twice is an error, not a crash"
    );
    assert!(
        p.open(a.as_raw_fd(), u64::MAX).is_err(),
        "the wake-up token is reserved"
    );
}

#[test]
fn wake_interrupts_a_blocked_poll_from_another_thread() {
    let p = Arc::new(Poller::new().unwrap());
    let p2 = p.clone();
    let waker = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        p2.wake();
    });
    let mut v = Vec::new();
    // Without the wake-up this would block forever (the test would hang).
    assert_eq!(p.poll(None, &mut v).unwrap(), 0);
    waker.join().unwrap();
}

#[test]
fn wakes_coalesce_and_are_consumed_by_a_blocking_poll_only() {
    let p = Poller::new().unwrap();
    p.wake();
    p.wake();
    p.wake();
    // A non-blocking look does not consume the pending wake-up...
    assert!(poll_now(&p).is_empty());
    // ...so a blocking poll returns at once...
    let mut v = Vec::new();
    let t = Instant::now();
    p.poll(Some(Duration::from_secs(30)), &mut v).unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "the pending wake-up was lost"
    );
    // ...and consumes it: three wakes made one wake-up, so the next poll
    // waits for its timeout.
    let t = Instant::now();
    p.poll(Some(Duration::from_millis(50)), &mut v).unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(45),
        "a second wake-up was left pending"
    );
    assert!(v.is_empty());
    // A wake after that works again.
    p.wake();
    p.poll(Some(Duration::from_secs(30)), &mut v).unwrap();
}

#[test]
fn a_sub_millisecond_timeout_still_waits() {
    let p = Poller::new().unwrap();
    let mut v = Vec::new();
    let t = Instant::now();
    p.poll(Some(Duration::from_micros(100)), &mut v).unwrap();
    assert!(t.elapsed() >= Duration::from_micros(100));
}

mod pd {
    //! The rg/wg state machine on the scheduler, woken by coroutines the
    //! way the poller will wake them.

    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    use super::super::pd::{Mode, PollDesc, WaitError};
    use crate::{Runtime, sched::park::goready};

    /// The waiter count these tests' descriptors report to.
    static WAITERS: AtomicUsize = AtomicUsize::new(0);

    fn rt(procs: usize) -> Runtime {
        Runtime::builder().procs(procs).build().unwrap()
    }

    fn wake(g: Option<crate::sched::g::GRef>) {
        if let Some(g) = g {
            goready(g);
        }
    }

    #[test]
    fn readiness_before_the_wait_is_consumed_without_parking() {
        rt(1).block_on(|| {
            let pd = PollDesc::default();
            assert!(pd.unblock(Mode::Read, true).is_none(), "nobody waits yet");
            assert!(
                pd.unblock(Mode::Read, true).is_none(),
                "readiness is idempotent"
            );
            assert_eq!(pd.wait(Mode::Read, &WAITERS), Ok(()));
            // Consumed: a second wait would park; the write side is separate.
            assert!(pd.unblock(Mode::Write, true).is_none());
            assert_eq!(pd.wait(Mode::Write, &WAITERS), Ok(()));
        });
    }

    #[test]
    fn a_parked_waiter_is_woken_by_readiness_or_by_close_and_deadline() {
        rt(2).block_on(|| {
            for (how, expect) in [
                (0, Ok(())),
                (1, Err(WaitError::Closing)),
                (2, Err(WaitError::TimedOut)),
            ] {
                let pd = Arc::new(PollDesc::default());
                let pd2 = pd.clone();
                let waiter = crate::spawn(move || pd2.wait(Mode::Read, &WAITERS));
                // One call must deliver whatever the waiter is doing: not
                // started yet (READY or the error is then seen by its wait),
                // between WAIT and the commit (the commit fails), or parked
                // (we get it back to ready).
                if how == 1 {
                    crate::yield_now(); // sometimes let it park first
                }
                wake(match how {
                    0 => pd.unblock(Mode::Read, true),
                    1 => pd.close().0,
                    _ => pd.expire(Mode::Read),
                });
                assert_eq!(waiter.join().unwrap(), expect, "case {how}");
            }
        });
    }

    #[test]
    fn readiness_racing_the_park_loses_no_wake_up() {
        // A reader waits for each of ROUNDS readiness events delivered by a
        // writer on the other P, with no other synchronisation: every event
        // arrives at some point of the reader's park (before WAIT, between
        // WAIT and the commit, or after), and none may be lost.
        const ROUNDS: usize = 100_000;
        rt(2).block_on(|| {
            let pd = Arc::new(PollDesc::default());
            let consumed = Arc::new(AtomicUsize::new(0));
            let (pd2, c2) = (pd.clone(), consumed.clone());
            let reader = crate::spawn(move || {
                for _ in 0..ROUNDS {
                    pd2.wait(Mode::Read, &WAITERS).unwrap();
                    c2.fetch_add(1, Ordering::SeqCst);
                }
            });
            let start = std::time::Instant::now();
            for i in 0..ROUNDS {
                // Deliver one readiness event, then let it be consumed
                // before the next (READY is a flag, not a counter).
                wake(pd.unblock(Mode::Read, true));
                while consumed.load(Ordering::SeqCst) <= i {
                    assert!(
                        start.elapsed().as_secs() < 60,
                        "round {i}: a readiness event was lost"
                    );
                    crate::yield_now();
                }
            }
            reader.join().unwrap();
        });
    }
}
