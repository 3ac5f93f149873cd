//! gort::net deadlines (Go's SetDeadline semantics): they fire on time,
//! move and clear while a call waits, and fail calls at once once past.
//! Kept in their own binary, away from CPU-heavy tests, so the timing
//! bounds can be tight.

mod support;

use std::{
    io::{ErrorKind, Read, Write},
    sync::Arc,
    time::{Duration, Instant},
};

use gort::net::{TcpListener, TcpStream};

/// How late a deadline may fire.
const SLACK: Duration = Duration::from_millis(20);

fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    support::with_timeout(20, move || support::rt(2).block_on(f))
}

/// A connected pair: (client, server side).
fn pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    (c, s)
}

/// Runs `measure` (which returns how long a deadline of `d` took to fire,
/// and `d`) until one firing is within [`SLACK`] of on time, at most 3
/// times: a machine busy with other work may delay one firing, but a
/// deadline that is systematically late fails every try. Firing early
/// fails at once.
fn on_time(mut measure: impl FnMut() -> (Duration, Duration)) {
    let mut seen = Vec::new();
    for _ in 0..3 {
        let (elapsed, d) = measure();
        assert!(elapsed >= d, "fired early: after {elapsed:?} of {d:?}");
        if elapsed <= d + SLACK {
            return;
        }
        seen.push((elapsed, d));
    }
    panic!("late every time (fired after, expected): {seen:?}; slack {SLACK:?}");
}

#[test]
fn read_deadline_fires_on_time() {
    run(|| {
        let (mut c, _s) = pair();
        for ms in [5u64, 20, 50, 120] {
            on_time(|| {
                let d = Duration::from_millis(ms);
                let t = Instant::now();
                c.set_read_deadline(Some(t + d));
                let e = c.read(&mut [0u8; 8]).unwrap_err();
                assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
                (t.elapsed(), d)
            });
        }
    });
}

#[test]
fn many_concurrent_read_deadlines_fire_on_time() {
    run(|| {
        on_time(|| {
            let d = Duration::from_millis(50);
            let start = Instant::now();
            let hs: Vec<_> = (0..100)
                .map(|i| {
                    gort::go!(move || {
                        let (mut c, s) = pair();
                        let dl = start + d + Duration::from_millis(i % 10);
                        c.set_read_deadline(Some(dl));
                        let e = c.read(&mut [0u8; 8]).unwrap_err();
                        let now = Instant::now();
                        drop(s);
                        assert_eq!(e.kind(), ErrorKind::TimedOut);
                        assert!(now >= dl, "fired early");
                        now - dl
                    })
                })
                .collect();
            // The latest firing, against its own deadline.
            let late = hs.into_iter().map(|h| h.join().unwrap()).max().unwrap();
            (d + late, d)
        });
    });
}

#[test]
fn moving_the_deadline_extends_a_blocked_read() {
    run(|| {
        let (c, _s) = pair();
        let c = Arc::new(c);
        on_time(|| {
            let t = Instant::now();
            c.set_read_deadline(Some(t + Duration::from_millis(100)));
            let c2 = c.clone();
            let mover = gort::go!(move || {
                gort::time::sleep(Duration::from_millis(10));
                // The reader is parked by now; move its deadline out.
                c2.set_read_deadline(Some(t + Duration::from_millis(200)));
            });
            let e = (&*c).read(&mut [0u8; 8]).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::TimedOut);
            mover.join().unwrap();
            (t.elapsed(), Duration::from_millis(200))
        });
    });
}

#[test]
fn moving_the_deadline_earlier_cuts_a_blocked_read_short() {
    run(|| {
        let (c, _s) = pair();
        let c = Arc::new(c);
        on_time(|| {
            let t = Instant::now();
            c.set_read_deadline(Some(t + Duration::from_secs(10)));
            let c2 = c.clone();
            gort::go!(move || {
                gort::time::sleep(Duration::from_millis(10));
                c2.set_read_deadline(Some(t + Duration::from_millis(60)));
            });
            let e = (&*c).read(&mut [0u8; 8]).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::TimedOut);
            (t.elapsed(), Duration::from_millis(60))
        });
    });
}

#[test]
fn a_past_deadline_fails_at_once_even_with_data_available() {
    run(|| {
        let (mut c, mut s) = pair();
        s.write_all(b"data").unwrap();
        let mut buf = [0u8; 4];
        // Wait until the data is there.
        assert_eq!(c.peek(&mut buf).unwrap(), 4);
        c.set_read_deadline(Some(Instant::now() - Duration::from_millis(1)));
        let t = Instant::now();
        let e = c.read(&mut buf).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TimedOut);
        assert!(t.elapsed() < Duration::from_millis(5));
        // Writes have their own deadline, unset.
        c.write_all(b"w").unwrap();
        // A deadline of "now" has passed too.
        c.set_deadline(Some(Instant::now()));
        assert_eq!(c.write(b"w").unwrap_err().kind(), ErrorKind::TimedOut);
        assert_eq!(c.read(&mut buf).unwrap_err().kind(), ErrorKind::TimedOut);
        // Cleared: the data is still there.
        c.set_deadline(None);
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"data");
    });
}

#[test]
fn clearing_the_deadline_restores_blocking() {
    run(|| {
        let (c, s) = pair();
        let c = Arc::new(c);
        // An expired deadline, then cleared: reads block again.
        c.set_read_deadline(Some(Instant::now() + Duration::from_millis(10)));
        assert_eq!(
            (&*c).read(&mut [0u8; 1]).unwrap_err().kind(),
            ErrorKind::TimedOut
        );
        c.set_read_deadline(None);
        // A reader blocks under a 100 ms deadline; another coroutine clears
        // it after 10 ms; data arrives only at 200 ms, and the read gets it.
        let t = Instant::now();
        c.set_read_deadline(Some(t + Duration::from_millis(100)));
        let c2 = c.clone();
        let helper = gort::go!(move || {
            gort::time::sleep(Duration::from_millis(10));
            c2.set_read_deadline(None);
            gort::time::sleep_until(t + Duration::from_millis(200));
            (&s).write_all(b"late").unwrap();
            s
        });
        let mut buf = [0u8; 4];
        (&*c).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"late");
        assert!(t.elapsed() >= Duration::from_millis(200));
        drop(helper.join().unwrap());
    });
}

#[test]
fn write_deadline_with_a_peer_that_never_reads() {
    run(|| {
        let (mut c, _s) = pair();
        let chunk = vec![0x5A; 1 << 16];
        let mut sent = 0usize;
        on_time(|| {
            let d = Duration::from_millis(50);
            let t = Instant::now();
            c.set_write_deadline(Some(t + d));
            let e = loop {
                match c.write(&chunk) {
                    Ok(n) => sent += n,
                    Err(e) => break e,
                }
            };
            assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
            (t.elapsed(), d)
        });
        assert!(sent > 0, "the socket buffers took some bytes first");
        // Reads are not affected.
        c.set_read_deadline(Some(Instant::now() + Duration::from_millis(5)));
        assert_eq!(
            c.read(&mut [0u8; 1]).unwrap_err().kind(),
            ErrorKind::TimedOut
        );
    });
}

#[test]
fn deadline_set_before_registration_applies() {
    // Created on a plain thread (not registered with any runtime), with a
    // deadline already set, then used in a coroutine.
    support::with_timeout(20, || {
        let rt = support::rt(2);
        on_time(|| {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
            let (s, _) = l.accept().unwrap();
            let t = Instant::now();
            let d = Duration::from_millis(60);
            c.set_read_deadline(Some(t + d));
            let (e, el) = rt.block_on(move || {
                let mut c = c;
                let e = c.read(&mut [0u8; 1]).unwrap_err();
                (e, t.elapsed())
            });
            drop(s);
            assert_eq!(e.kind(), ErrorKind::TimedOut);
            (el, d)
        });
    });
}

#[test]
fn plain_thread_deadline_fires_on_time_and_moves() {
    support::with_timeout(20, || {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = Arc::new(TcpStream::connect(l.local_addr().unwrap()).unwrap());
        let (_s, _) = l.accept().unwrap();
        on_time(|| {
            let d = Duration::from_millis(30);
            let t = Instant::now();
            c.set_read_deadline(Some(t + d));
            let e = (&*c).read(&mut [0u8; 1]).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::TimedOut);
            (t.elapsed(), d)
        });
        // Moved by another thread while this one waits in poll(2): the
        // wait re-reads the deadline at least every 50 ms.
        on_time(|| {
            let t = Instant::now();
            c.set_read_deadline(Some(t + Duration::from_secs(10)));
            let c2 = c.clone();
            let mover = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(10));
                c2.set_read_deadline(Some(t + Duration::from_millis(80)));
            });
            let e = (&*c).read(&mut [0u8; 1]).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::TimedOut);
            mover.join().unwrap();
            (t.elapsed(), Duration::from_millis(80))
        });
    });
}
