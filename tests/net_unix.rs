//! gort::net Unix sockets: stream echo over a path, pairs, half-close,
//! deadlines, addresses, abstract names and datagrams.

mod support;

use std::{
    io::{ErrorKind, Read, Write},
    net::Shutdown,
    os::linux::net::SocketAddrExt,
    path::PathBuf,
    time::{Duration, Instant},
};

use gort::net::{UnixDatagram, UnixListener, UnixStream, unix::SocketAddr};

fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    support::with_timeout(20, move || support::rt(2).block_on(f))
}

/// A fresh socket path under the temporary directory.
fn sock_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gort-net-unix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    let _ = std::fs::remove_file(&p);
    p
}

#[test]
fn stream_echo_over_a_path() {
    let path = sock_path("echo.sock");
    run(move || {
        let l = UnixListener::bind(&path).unwrap();
        assert_eq!(l.local_addr().unwrap().as_pathname(), Some(path.as_path()));
        gort::go!(move || {
            for conn in l.incoming() {
                let Ok(mut conn) = conn else { return };
                gort::go!(move || {
                    let mut buf = [0u8; 4096];
                    loop {
                        match conn.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => conn.write_all(&buf[..n]).unwrap(),
                        }
                    }
                });
            }
        });
        let clients: Vec<_> = (0..50u8)
            .map(|i| {
                let path = path.clone();
                gort::go!(move || {
                    let mut c = UnixStream::connect(&path).unwrap();
                    assert_eq!(c.peer_addr().unwrap().as_pathname(), Some(path.as_path()));
                    assert!(c.local_addr().unwrap().is_unnamed());
                    for m in 0..50u8 {
                        let msg = [i ^ m; 100];
                        c.write_all(&msg).unwrap();
                        let mut got = [0u8; 100];
                        c.read_exact(&mut got).unwrap();
                        assert_eq!(got, msg);
                    }
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
        std::fs::remove_file(&path).unwrap();
    });
}

#[test]
fn accept_reports_an_unnamed_peer() {
    let path = sock_path("peer.sock");
    run(move || {
        let l = UnixListener::bind(&path).unwrap();
        let _c = UnixStream::connect(&path).unwrap();
        let (s, peer) = l.accept().unwrap();
        assert!(peer.is_unnamed());
        assert_eq!(s.local_addr().unwrap().as_pathname(), Some(path.as_path()));
        std::fs::remove_file(&path).unwrap();
    });
}

#[test]
fn pair_half_close_and_deadlines() {
    run(|| {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let peer = gort::go!(move || {
            let mut req = Vec::new();
            b.read_to_end(&mut req).unwrap();
            b.write_all(&req).unwrap();
            b.write_all(b"!").unwrap();
        });
        a.write_all(b"half").unwrap();
        a.shutdown(Shutdown::Write).unwrap();
        let mut resp = Vec::new();
        a.read_to_end(&mut resp).unwrap();
        assert_eq!(resp, b"half!");
        peer.join().unwrap();

        let (mut a, _b) = UnixStream::pair().unwrap();
        let d = Duration::from_millis(30);
        let t = Instant::now();
        a.set_read_deadline(Some(t + d));
        assert_eq!(
            a.read(&mut [0u8; 1]).unwrap_err().kind(),
            ErrorKind::TimedOut
        );
        let el = t.elapsed();
        // Fired, and not early; how close to on time is net_deadline's
        // check (this binary runs heavier tests alongside).
        assert!(el >= d && el < d + Duration::from_millis(500), "{el:?}");
    });
}

#[test]
fn close_wakes_a_blocked_reader() {
    run(|| {
        let (a, _b) = UnixStream::pair().unwrap();
        let a = std::sync::Arc::new(a);
        let a2 = a.clone();
        let r = gort::go!(move || (&*a2).read(&mut [0u8; 1]).map(|_| ()));
        gort::yield_now();
        a.close();
        assert_eq!(
            r.join().unwrap().unwrap_err().kind(),
            ErrorKind::NotConnected
        );
    });
}

#[test]
fn abstract_names() {
    run(|| {
        let name = format!("gort-net-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let l = UnixListener::bind_addr(&addr).unwrap();
        assert_eq!(
            l.local_addr().unwrap().as_abstract_name(),
            Some(name.as_bytes())
        );
        let mut c = UnixStream::connect_addr(&addr).unwrap();
        let (mut s, _) = l.accept().unwrap();
        c.write_all(b"abs").unwrap();
        let mut buf = [0u8; 3];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"abs");
    });
}

#[test]
fn datagrams() {
    let (pa, pb) = (sock_path("a.dgram"), sock_path("b.dgram"));
    run(move || {
        let a = UnixDatagram::bind(&pa).unwrap();
        let b = UnixDatagram::bind(&pb).unwrap();
        let r = gort::go!(move || {
            let mut buf = [0u8; 16];
            let (n, from) = b.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"dgram");
            b.send_to_addr(b"reply", &from).unwrap();
        });
        gort::yield_now();
        a.send_to(b"dgram", &pb).unwrap();
        let mut buf = [0u8; 16];
        let n = a.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"reply");
        r.join().unwrap();

        let (x, y) = UnixDatagram::pair().unwrap();
        x.send(b"p").unwrap();
        assert_eq!(y.recv(&mut buf).unwrap(), 1);
        y.set_read_deadline(Some(Instant::now() + Duration::from_millis(10)));
        assert_eq!(y.recv(&mut buf).unwrap_err().kind(), ErrorKind::TimedOut);
        let u = UnixDatagram::unbound().unwrap();
        u.connect(&pa).unwrap();
        u.send(b"u").unwrap();
        assert_eq!(a.recv_from(&mut buf).unwrap().0, 1);
        std::fs::remove_file(&pa).unwrap();
        std::fs::remove_file(&pb).unwrap();
    });
}

#[test]
fn conversions_with_std() {
    let path = sock_path("conv.sock");
    run(move || {
        let std_l = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let l = UnixListener::from(std_l);
        let std_c = std::os::unix::net::UnixStream::connect(&path).unwrap();
        let mut c = UnixStream::from(std_c);
        let (s, _) = l.accept().unwrap();
        let mut std_s = s.into_std().unwrap();
        c.write_all(b"x").unwrap();
        let mut b = [0u8; 1];
        gort::blocking(|| std_s.read_exact(&mut b)).unwrap();
        assert_eq!(&b, b"x");
        std::fs::remove_file(&path).unwrap();
    });
}

/// Plain threads moving deadlines under, and closing, sockets on which
/// coroutines are parked, while the runtime is dropped: the wake-ups race
/// the teardown that unwinds those coroutines and frees them; no crash, no
/// hang (100 rounds).
#[test]
fn plain_threads_waking_socket_waiters_while_the_runtime_is_dropped() {
    use std::sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    };
    support::with_timeout(120, || {
        for round in 0..100 {
            let rt = support::rt(2);
            let woken = Arc::new(AtomicUsize::new(0));
            let mut socks = Vec::new();
            let mut peers = Vec::new();
            for _ in 0..16 {
                let (a, b) = rt.block_on(|| UnixStream::pair().unwrap());
                let a = Arc::new(a);
                let (s, woken) = (a.clone(), woken.clone());
                drop(rt.spawn(move || {
                    let mut buf = [0u8; 1];
                    loop {
                        match (&*s).read(&mut buf) {
                            Err(e) if e.kind() == ErrorKind::TimedOut => {
                                woken.fetch_add(1, Ordering::Relaxed);
                                gort::yield_now();
                            }
                            _ => return,
                        }
                    }
                }));
                socks.push(a);
                peers.push(b);
            }
            let stop = Arc::new(AtomicBool::new(false));
            let threads: Vec<_> = (0..2)
                .map(|t| {
                    let (socks, stop) = (socks.clone(), stop.clone());
                    std::thread::spawn(move || {
                        let mut i = t;
                        while !stop.load(Ordering::Relaxed) {
                            let s = &socks[i % socks.len()];
                            s.set_read_deadline(Some(Instant::now() - Duration::from_millis(1)));
                            s.set_read_deadline(None);
                            i += 1;
                        }
                        for s in &socks {
                            s.close();
                        }
                    })
                })
                .collect();
            while woken.load(Ordering::Relaxed) < 50 {
                std::thread::yield_now();
            }
            drop(rt);
            stop.store(true, Ordering::Relaxed);
            for t in threads {
                t.join().unwrap();
            }
            assert!(woken.load(Ordering::Relaxed) >= 50, "round {round}");
            drop(peers);
        }
    });
}
