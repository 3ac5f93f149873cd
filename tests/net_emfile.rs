//! Running out of descriptors: `accept` returns EMFILE (no hang, no
//! crash), the listener stays usable, and an accept loop that backs off
//! serves the queued connection once descriptors are freed. Runs in a
//! child process, which lowers its own RLIMIT_NOFILE.

mod support;

use std::{
    fs::File,
    io::{Read, Write},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use gort::net::{TcpListener, TcpStream};

/// Opens files until the process has no descriptor left.
fn exhaust(hold: &mut Vec<File>) {
    loop {
        match File::open("/dev/null") {
            Ok(f) => hold.push(f),
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{e}");
                return;
            }
        }
    }
}

fn set_nofile(soft: u64) {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid rlimit.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut r), 0);
        r.rlim_cur = soft.min(r.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &r), 0);
    }
}

#[test]
fn accept_survives_emfile() {
    const NAME: &str = "accept_survives_emfile";
    if !support::is_child(NAME) {
        support::assert_child_succeeds(NAME);
        return;
    }
    set_nofile(128);
    support::with_timeout(20, || {
        support::rt(2).block_on(|| {
            let l = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
            let addr = l.local_addr().unwrap();
            let mut hold = Vec::new();

            // 1. A direct accept with no descriptor left fails with EMFILE
            //    at once, again and again, and works once one is freed.
            exhaust(&mut hold);
            hold.pop();
            let mut c = TcpStream::connect(addr).unwrap(); // took the freed one
            for _ in 0..3 {
                let t = Instant::now();
                let e = l.accept().unwrap_err();
                assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{e}");
                assert!(t.elapsed() < Duration::from_secs(1));
            }
            hold.truncate(hold.len() - 2);
            let (mut s, _) = l.accept().unwrap();
            c.write_all(b"one").unwrap();
            let mut buf = [0u8; 3];
            s.read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"one");

            // 2. An accept loop that backs off on EMFILE (as Go's HTTP
            //    server does) serves the connection once files are closed.
            let emfiles = Arc::new(AtomicUsize::new(0));
            let (l2, em) = (l.clone(), emfiles.clone());
            gort::go!(move || {
                let mut backoff = Duration::from_millis(1);
                loop {
                    match l2.accept() {
                        Ok((mut conn, _)) => {
                            backoff = Duration::from_millis(1);
                            gort::go!(move || {
                                let mut buf = [0u8; 64];
                                while let Ok(n @ 1..) = conn.read(&mut buf) {
                                    conn.write_all(&buf[..n]).unwrap();
                                }
                            });
                        }
                        Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                            em.fetch_add(1, Ordering::SeqCst);
                            gort::time::sleep(backoff);
                            backoff = (backoff * 2).min(Duration::from_millis(20));
                        }
                        Err(_) => return,
                    }
                }
            });
            exhaust(&mut hold);
            hold.pop();
            let mut c2 = TcpStream::connect(addr).unwrap();
            let t = Instant::now();
            while emfiles.load(Ordering::SeqCst) < 2 {
                assert!(
                    t.elapsed() < Duration::from_secs(5),
                    "accept loop saw no EMFILE"
                );
                gort::time::sleep(Duration::from_millis(1));
            }
            hold.truncate(hold.len() - 10);
            c2.write_all(b"ping").unwrap();
            let mut buf = [0u8; 4];
            c2.read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"ping");
            println!(
                "accept loop saw EMFILE {} times",
                emfiles.load(Ordering::SeqCst)
            );
            l.close();
        })
    });
}
