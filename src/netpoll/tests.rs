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
            error: false
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
    assert!(
        poll_now(&p).iter().any(|e| e.readable),
        "new data is a new edge"
    );
    drop(b);
    assert!(
        poll_now(&p).iter().any(|e| e.readable),
        "the peer hanging up reads as readable"
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
