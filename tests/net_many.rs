//! 10,000 concurrent TCP connections on 2 Ps, both ends in this process:
//! every connection open at once, 100 echo round trips each, every byte
//! checked. Runs in a child process, which raises its RLIMIT_NOFILE (both
//! ends need a descriptor: > 20,000 in all).

mod support;

use std::{
    io::{Read, Write},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use gort::net::{TcpListener, TcpStream};

const WANT_CONNS: usize = 10_000;
const MESSAGES: u64 = 100;
const MSG_LEN: usize = 64;
/// Descriptors kept free beyond those open at the start (the runtime's
/// poller opens two more, plus the listener).
const SPARE_FDS: u64 = 16;

/// Descriptors open now.
fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").unwrap().count() as u64
}

/// Raises RLIMIT_NOFILE to `want` (soft and, if needed and allowed, hard);
/// returns the soft limit in force.
fn raise_nofile(want: u64) -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit with a valid rlimit.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) }, 0);
    if r.rlim_max < want {
        let raised = libc::rlimit {
            rlim_cur: want,
            rlim_max: want,
        };
        // SAFETY: setrlimit with a valid rlimit; raising the hard limit
        // needs CAP_SYS_RESOURCE and may fail, which is handled.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return want;
        }
    }
    r.rlim_cur = r.rlim_max.min(want);
    // SAFETY: as above; a soft limit up to the hard one is always allowed.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) }, 0);
    r.rlim_cur
}

/// `MSG_LEN` bytes, different for every (connection, message).
fn message(conn: usize, m: u64) -> [u8; MSG_LEN] {
    let mut x = ((conn as u64) << 32 | m).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    std::array::from_fn(|_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u8
    })
}

#[test]
fn ten_thousand_concurrent_echo_connections() {
    const NAME: &str = "ten_thousand_concurrent_echo_connections";
    if !support::is_child(NAME) {
        let out = support::run_in_child(NAME);
        print!("{}", String::from_utf8_lossy(&out.stdout));
        assert!(
            out.status.success(),
            "child failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    let spare = open_fds() + SPARE_FDS;
    let limit = raise_nofile(2 * WANT_CONNS as u64 + spare);
    let want = std::env::var("GORT_NET_MANY_CONNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(WANT_CONNS);
    let conns = want.min((limit.saturating_sub(spare) / 2) as usize);
    println!("net_many: {conns} connections (RLIMIT_NOFILE {limit})");
    assert!(
        conns >= want.min(1000),
        "RLIMIT_NOFILE {limit} is too low for this test"
    );

    let took = support::with_timeout(60, move || {
        support::rt(2).block_on(move || {
            let t0 = Instant::now();
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            let accepted = Arc::new(AtomicUsize::new(0));
            let live = Arc::new(AtomicUsize::new(0));
            let (acc, lv) = (accepted.clone(), live.clone());
            // Go's `for { c := l.Accept(); go serve(c) }`.
            gort::go!(move || {
                loop {
                    let (mut conn, _) = match l.accept() {
                        Ok(c) => c,
                        Err(e) => panic!("accept: {e}"),
                    };
                    acc.fetch_add(1, Ordering::SeqCst);
                    lv.fetch_add(1, Ordering::SeqCst);
                    let lv = lv.clone();
                    gort::go!(move || {
                        let mut buf = [0u8; 4096];
                        loop {
                            match conn.read(&mut buf) {
                                Ok(0) => break,
                                Ok(n) => conn.write_all(&buf[..n]).unwrap(),
                                Err(e) => panic!("server read: {e}"),
                            }
                        }
                        lv.fetch_sub(1, Ordering::SeqCst);
                    });
                }
            });

            // Open every connection; the accept loop keeps up (its backlog
            // is net.core.somaxconn): never more than 1000 un-accepted.
            let mut streams = Vec::with_capacity(conns);
            for i in 0..conns {
                streams.push(TcpStream::connect(addr).unwrap());
                if i % 1000 == 999 {
                    while accepted.load(Ordering::SeqCst) + 1000 < streams.len() {
                        gort::yield_now();
                    }
                }
            }
            while accepted.load(Ordering::SeqCst) < conns {
                gort::yield_now();
            }
            assert_eq!(live.load(Ordering::SeqCst), conns, "all open at once");
            let t1 = Instant::now();

            // Every connection talks at once.
            let clients: Vec<_> = streams
                .into_iter()
                .enumerate()
                .map(|(c, mut s)| {
                    gort::go!(move || {
                        let mut got = [0u8; MSG_LEN];
                        for m in 0..MESSAGES {
                            let msg = message(c, m);
                            s.write_all(&msg).unwrap();
                            s.read_exact(&mut got).unwrap();
                            assert!(got == msg, "conn {c} message {m} differs");
                        }
                    })
                })
                .collect();
            for c in clients {
                c.join().unwrap();
            }
            let t2 = Instant::now();
            while live.load(Ordering::SeqCst) > 0 {
                gort::yield_now();
            }
            (t1 - t0, t2 - t1)
        })
    });
    let rts = conns as f64 * MESSAGES as f64;
    println!(
        "net_many: connect {:?}, {} round trips in {:?} ({:.0}/s)",
        took.0,
        rts,
        took.1,
        rts / took.1.as_secs_f64()
    );
    assert!(took.0 + took.1 < Duration::from_secs(60));
}
