//! gort::net TCP: echo, half-close, reset, close wake-ups, SIGPIPE,
//! options, conversions, and use from plain threads and other runtimes.

mod support;

use std::{
    io::{ErrorKind, IoSlice, IoSliceMut, Read, Write},
    net::{Shutdown, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use gort::net::{KeepAlive, TcpListener, TcpStream};

/// Runs `f` as the main coroutine of a fresh 2-P runtime, under a watchdog.
fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    support::with_timeout(20, move || support::rt(2).block_on(f))
}

/// Echoes every connection `l` accepts, one coroutine per connection (Go's
/// `for { c := l.Accept(); go serve(c) }`).
fn echo_server(l: TcpListener) -> gort::JoinHandle<()> {
    gort::go!(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { return };
            gort::go!(move || {
                let mut buf = [0u8; 4096];
                loop {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if conn.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    })
}

/// A listener on a free loopback port.
fn listen() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    (l, a)
}

/// `n` bytes of a pattern that differs per `seed`.
fn pattern(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// How many coroutines of `rt` are parked on the netpoller.
fn netpoll_waiters(rt: &gort::Runtime) -> usize {
    let line = rt.schedtrace();
    let tail = line
        .split("netpollwaiters=")
        .nth(1)
        .expect("schedtrace reports netpollwaiters");
    let digits: String = tail.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap()
}

/// Waits (on the calling plain thread) until `n` coroutines of `rt` are
/// parked on the netpoller: they are inside a blocked read or write.
fn wait_parked(rt: &gort::Runtime, n: usize) {
    let t = Instant::now();
    while netpoll_waiters(rt) < n {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "no coroutine parked on I/O"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn dropping_a_runtime_while_a_reader_times_out_in_a_loop_does_not_hang() {
    // A reader looping on short deadlines keeps waiting while the runtime
    // shuts down; it must park (and be unwound), not block its M in poll(2).
    support::with_timeout(60, || {
        for i in 0..200u64 {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
            let (_s, _) = l.accept().unwrap();
            let rt = gort::Runtime::builder().procs(1).build().unwrap();
            rt.spawn(move || {
                let mut c = TcpStream::from(c);
                loop {
                    c.set_read_deadline(Some(Instant::now() + Duration::from_micros(200)));
                    let _ = c.read(&mut [0u8; 1]);
                }
            });
            std::thread::sleep(Duration::from_micros(500 + (i % 7) * 100));
            drop(rt);
        }
    });
}

#[test]
fn echo_round_trip_of_many_sizes() {
    run(|| {
        let (l, addr) = listen();
        echo_server(l);
        let mut c = TcpStream::connect(addr).unwrap();
        for (i, n) in [1usize, 7, 100, 4096, 65_537, 1 << 20]
            .into_iter()
            .enumerate()
        {
            let msg = pattern(i as u64, n);
            // Write from another coroutine: a 1 MiB echo does not fit the
            // socket buffers, so one coroutine cannot write it all first.
            let w = c.try_clone().unwrap();
            let m = msg.clone();
            let writer = gort::go!(move || (&w).write_all(&m).unwrap());
            let mut got = vec![0; n];
            c.read_exact(&mut got).unwrap();
            writer.join().unwrap();
            assert!(got == msg, "echo of {n} bytes differs");
        }
    });
}

#[test]
fn many_connections_echo_every_byte() {
    let conns = 200;
    run(move || {
        let (l, addr) = listen();
        echo_server(l);
        let clients: Vec<_> = (0..conns)
            .map(|c| {
                gort::go!(move || {
                    let mut s = TcpStream::connect(addr).unwrap();
                    let mut got = [0u8; 64];
                    for m in 0..100u64 {
                        let msg = pattern(c << 32 | m, 64);
                        s.write_all(&msg).unwrap();
                        s.read_exact(&mut got).unwrap();
                        assert_eq!(&got[..], &msg[..]);
                    }
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
    });
}

#[test]
fn vectored_io_and_peek() {
    run(|| {
        let (l, addr) = listen();
        let server = gort::go!(move || {
            let (mut s, _) = l.accept().unwrap();
            let (mut a, mut b) = ([0u8; 3], [0u8; 5]);
            let mut peeked = [0u8; 8];
            let n = s.peek(&mut peeked).unwrap();
            assert!(n > 0 && peeked[..n] == b"abcdefgh"[..n]);
            let mut got = 0;
            while got < 8 {
                let mut bufs = if got < 3 {
                    vec![IoSliceMut::new(&mut a[got..]), IoSliceMut::new(&mut b)]
                } else {
                    vec![IoSliceMut::new(&mut b[got - 3..])]
                };
                let n = s.read_vectored(&mut bufs).unwrap();
                assert!(n > 0);
                got += n;
            }
            assert_eq!((&a, &b), (b"abc", b"defgh"));
        });
        let mut c = TcpStream::connect(addr).unwrap();
        let n = c
            .write_vectored(&[
                IoSlice::new(b"abc"),
                IoSlice::new(b""),
                IoSlice::new(b"defgh"),
            ])
            .unwrap();
        assert_eq!(n, 8);
        server.join().unwrap();
    });
}

#[test]
fn accept_reports_the_peer_and_addresses_match() {
    run(|| {
        let (l, addr) = listen();
        let c = TcpStream::connect(addr).unwrap();
        let (s, peer) = l.accept().unwrap();
        assert_eq!(peer, c.local_addr().unwrap());
        assert_eq!(s.peer_addr().unwrap(), c.local_addr().unwrap());
        assert_eq!(c.peer_addr().unwrap(), addr);
        assert_eq!(s.local_addr().unwrap(), addr);
        assert!(format!("{c:?}").contains("TcpStream"));
    });
}

#[test]
fn connect_to_a_closed_port_is_refused() {
    run(|| {
        let (l, addr) = listen();
        drop(l);
        let e = TcpStream::connect(addr).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
        let e = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
        let e = TcpStream::connect_timeout(&addr, Duration::ZERO).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        // Every resolved address is tried; an unresolvable one is an error.
        let e = TcpStream::connect(&[][..] as &[SocketAddr]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    });
}

#[test]
fn connect_by_name_resolves_inside_blocking() {
    run(|| {
        let (l, addr) = listen();
        let c = TcpStream::connect(("localhost", addr.port()))
            .or_else(|_| TcpStream::connect(format!("127.0.0.1:{}", addr.port())))
            .unwrap();
        let (_s, peer) = l.accept().unwrap();
        assert_eq!(peer, c.local_addr().unwrap());
    });
}

#[test]
fn half_close_gives_eof_while_the_peer_still_writes() {
    run(|| {
        let (l, addr) = listen();
        let server = gort::go!(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut req = Vec::new();
            s.read_to_end(&mut req).unwrap(); // ends at the client's FIN
            assert_eq!(req, b"question");
            s.write_all(b"answer").unwrap();
        });
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(b"question").unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut resp = Vec::new();
        c.read_to_end(&mut resp).unwrap();
        assert_eq!(resp, b"answer");
        server.join().unwrap();
        // Writing after our own shutdown(Write) is an error, not a signal.
        let e = c.write(b"x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BrokenPipe, "{e}");
    });
}

/// One connection whose reader parks first (nothing was sent), then the
/// peer resets it (linger 0): returns the reader's error. The read deadline
/// turns a lost wake-up into a wrong error instead of a hang.
fn reset_behind_a_parked_reader(l: &TcpListener, addr: SocketAddr) -> std::io::Error {
    let mut c = TcpStream::connect(addr).unwrap();
    let (s, _) = l.accept().unwrap();
    s.set_linger(Some(Duration::ZERO)).unwrap();
    assert_eq!(s.linger().unwrap(), Some(Duration::ZERO));
    c.set_read_deadline(Some(Instant::now() + Duration::from_secs(5)));
    let reader = gort::go!(move || {
        let mut buf = [0u8; 16];
        c.read(&mut buf)
    });
    gort::yield_now();
    drop(s);
    reader.join().unwrap().unwrap_err()
}

#[test]
fn peer_reset_is_connection_reset_on_read() {
    run(|| {
        let (l, addr) = listen();
        let e = reset_behind_a_parked_reader(&l, addr);
        assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}");
    });
}

/// A read that parks on `EAGAIN` and is resumed by another M must judge its
/// retry by that retry's error. std's errno accessor is a constant function
/// to LLVM, so an I/O loop that read errno through it inline kept the first
/// thread's errno address: after a migration the retry's `ECONNRESET` read
/// as the first thread's `EAGAIN`, and the reader parked again for an edge
/// already delivered (a hang in about a third of single runs of the test
/// above, release builds only; see `util::last_os_error`). Many rounds on
/// two Ps make a migration between the two reads near certain.
#[test]
fn a_read_resumed_on_another_thread_sees_its_own_error() {
    run(|| {
        let (l, addr) = listen();
        for round in 0..300 {
            let e = reset_behind_a_parked_reader(&l, addr);
            assert_eq!(e.kind(), ErrorKind::ConnectionReset, "round {round}: {e}");
        }
    });
}

/// One round of a stream whose end arrives right behind its last data: the
/// server reads a short "x", acknowledges it, and reads again (parking
/// first, as after any short read); the client then sends "yz" and ends
/// the stream at once (`reset`: with an RST instead of a FIN), so the data
/// and the end usually come in one poller event. Returns what the server
/// read and how its reading ended.
fn stream_end_behind_data(rt: &gort::Runtime, reset: bool, wait: bool) -> (Vec<u8>, ErrorKind) {
    let (l, addr) = rt.block_on(listen);
    let server = rt.spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        // A hang would fail here, not stall the test.
        s.set_read_deadline(Some(Instant::now() + Duration::from_secs(10)));
        let mut got = Vec::new();
        let mut buf = [0u8; 16];
        loop {
            match s.read(&mut buf) {
                Ok(0) => return (got, ErrorKind::UnexpectedEof),
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    if got == b"x" {
                        s.write_all(b"k").unwrap();
                    }
                }
                Err(e) => return (got, e.kind()),
            }
        }
    });
    // The client is this plain thread.
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(b"x").unwrap();
    let mut ack = [0u8; 1];
    c.read_exact(&mut ack).unwrap();
    if wait {
        wait_parked(rt, 1);
    }
    if reset {
        c.set_linger(Some(Duration::ZERO)).unwrap();
        c.write_all(b"yz").unwrap();
        drop(c);
    } else {
        c.write_all(b"yz").unwrap();
        c.shutdown(Shutdown::Write).unwrap();
    }
    server.join().unwrap()
}

#[test]
fn the_end_of_a_stream_right_behind_its_last_data_is_seen_after_a_short_read() {
    support::with_timeout(120, || {
        let rt = support::rt(2);
        for round in 0..200 {
            let (got, end) = stream_end_behind_data(&rt, false, round % 2 == 0);
            assert_eq!(
                (got.as_slice(), end),
                (&b"xyz"[..], ErrorKind::UnexpectedEof),
                "round {round}: the stream must end with all its data and EOF"
            );
            let (got, end) = stream_end_behind_data(&rt, true, round % 2 == 0);
            assert!(
                b"xyz".starts_with(&got) && got.starts_with(b"x"),
                "round {round}: read {got:?}"
            );
            assert_eq!(
                end,
                ErrorKind::ConnectionReset,
                "round {round}: a reset ends the stream with ConnectionReset"
            );
        }
    });
}

#[test]
fn close_wakes_a_blocked_reader_from_another_coroutine() {
    support::with_timeout(20, || {
        let rt = support::rt(2);
        let (l, addr) = rt.block_on(listen);
        let (client, server) = rt.block_on(move || {
            let c = TcpStream::connect(addr).unwrap();
            let (s, _) = l.accept().unwrap();
            (Arc::new(c), s)
        });
        let c = client.clone();
        let reader = rt.spawn(move || {
            let t = Instant::now();
            let r = (&*c).read(&mut [0u8; 8]);
            (r, t.elapsed())
        });
        wait_parked(&rt, 1);
        let c = client.clone();
        rt.block_on(move || c.close());
        let (r, _) = reader.join().unwrap();
        let e = r.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotConnected, "{e}");
        assert!(e.to_string().contains("closed"), "{e}");
        // Later calls fail the same way, and the peer saw a shutdown.
        let e = (&*client).write(b"x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotConnected);
        let n = rt.block_on(move || (&server).read(&mut [0u8; 8]).unwrap());
        assert_eq!(n, 0);
    });
}

#[test]
fn close_wakes_a_blocked_writer_from_another_coroutine() {
    support::with_timeout(20, || {
        let rt = support::rt(2);
        let (l, addr) = rt.block_on(listen);
        let (client, _server) = rt.block_on(move || {
            let c = TcpStream::connect(addr).unwrap();
            let (s, _) = l.accept().unwrap();
            (Arc::new(c), s)
        });
        let c = client.clone();
        // The peer never reads: the writer fills both socket buffers, then
        // parks.
        let writer = rt.spawn(move || {
            let chunk = vec![7u8; 1 << 16];
            let mut sent = 0usize;
            loop {
                match (&*c).write(&chunk) {
                    Ok(n) => sent += n,
                    Err(e) => return (e, sent),
                }
            }
        });
        wait_parked(&rt, 1);
        let c = client.clone();
        rt.block_on(move || c.close());
        let (e, sent) = writer.join().unwrap();
        assert_eq!(e.kind(), ErrorKind::NotConnected, "{e}");
        assert!(sent > 0);
    });
}

#[test]
fn concurrent_readers_of_one_stream_take_turns() {
    run(|| {
        let (l, addr) = listen();
        let c = Arc::new(TcpStream::connect(addr).unwrap());
        let (mut s, _) = l.accept().unwrap();
        let total = Arc::new(AtomicUsize::new(0));
        let readers: Vec<_> = (0..8)
            .map(|_| {
                let (c, total) = (c.clone(), total.clone());
                gort::go!(move || {
                    let mut buf = [0u8; 100];
                    loop {
                        match (&*c).read(&mut buf) {
                            Ok(0) => return,
                            Ok(n) => {
                                assert!(buf[..n].iter().all(|&b| b == 0xAB));
                                total.fetch_add(n, Ordering::SeqCst);
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                })
            })
            .collect();
        for _ in 0..200 {
            s.write_all(&[0xAB; 1000]).unwrap();
            gort::yield_now();
        }
        s.shutdown(Shutdown::Write).unwrap();
        for r in readers {
            r.join().unwrap();
        }
        assert_eq!(total.load(Ordering::SeqCst), 200_000);
    });
}

#[test]
fn write_to_a_closed_peer_is_an_error_not_sigpipe() {
    const NAME: &str = "write_to_a_closed_peer_is_an_error_not_sigpipe";
    if !support::is_child(NAME) {
        let out = support::run_in_child(NAME);
        assert_eq!(support::killed_by(&out), None, "the child died of a signal");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    // Rust ignores SIGPIPE in its binaries; put the default (death) back so
    // a send without MSG_NOSIGNAL would kill this process.
    // SAFETY: setting a signal disposition to SIG_DFL.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    run(|| {
        let (l, addr) = listen();
        let mut c = TcpStream::connect(addr).unwrap();
        let (s, _) = l.accept().unwrap();
        drop(s);
        let e = loop {
            match c.write(&[1u8; 1024]) {
                Ok(n) => {
                    assert!(n > 0);
                    gort::yield_now();
                }
                Err(e) => break e,
            }
        };
        assert!(
            matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset),
            "{e}"
        );
        let e = c.write_vectored(&[IoSlice::new(b"x")]).unwrap_err();
        assert!(
            matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset),
            "{e}"
        );
    });
}

#[test]
fn plain_thread_use_without_a_runtime() {
    support::with_timeout(20, || {
        // No runtime anywhere: the calls block their threads in poll(2).
        let (l, addr) = listen();
        let server = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).unwrap();
            s.write_all(&buf).unwrap();
            s
        });
        let mut c = TcpStream::connect(addr).unwrap();
        let d = Duration::from_millis(60);
        let t = Instant::now();
        c.set_read_deadline(Some(t + d));
        let e = c.read(&mut [0u8; 4]).unwrap_err();
        let el = t.elapsed();
        assert_eq!(e.kind(), ErrorKind::TimedOut);
        // Fired, and not early; how close to on time is net_deadline's
        // check (this binary runs heavier tests alongside).
        assert!(el >= d && el < d + Duration::from_millis(500), "{el:?}");
        c.set_read_deadline(None);
        c.write_all(b"hello").unwrap();
        let mut buf = [0u8; 5];
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        drop(server.join().unwrap());
    });
}

#[test]
fn socket_of_one_runtime_used_from_another() {
    support::with_timeout(20, || {
        let a = support::rt(2);
        let b = support::rt(1);
        // Created (so registered) in runtime A.
        let (l, addr) = a.block_on(listen);
        let (c, s) = a.block_on(move || {
            let c = TcpStream::connect(addr).unwrap();
            let (s, _) = l.accept().unwrap();
            (c, s)
        });
        // Used in runtime B: the read blocks (poll(2) inside blocking, so
        // B's only P keeps running other coroutines).
        let reader = b.spawn(move || {
            let mut c = c;
            let mut buf = [0u8; 3];
            c.read_exact(&mut buf).unwrap();
            c.set_read_deadline(Some(Instant::now() + Duration::from_millis(30)));
            let e = c.read(&mut buf).unwrap_err();
            (buf, e.kind())
        });
        let other = b.block_on(|| 41 + 1);
        assert_eq!(other, 42);
        let _s = a.block_on(move || {
            let mut s = s;
            s.write_all(b"abc").unwrap();
            s // kept open: the second read must time out, not see EOF
        });
        let (buf, kind) = reader.join().unwrap();
        assert_eq!(&buf, b"abc");
        assert_eq!(kind, ErrorKind::TimedOut);
    });
}

#[test]
fn socket_outlives_its_runtime() {
    support::with_timeout(20, || {
        let (c, mut s) = {
            let rt = support::rt(1);
            rt.block_on(|| {
                let (l, addr) = listen();
                let c = TcpStream::connect(addr).unwrap();
                let (s, _) = l.accept().unwrap();
                (c, s)
            })
        };
        let reader = std::thread::spawn(move || {
            let mut c = c;
            let mut buf = [0u8; 2];
            c.read_exact(&mut buf).unwrap();
            buf
        });
        s.write_all(b"ok").unwrap();
        assert_eq!(&reader.join().unwrap(), b"ok");
    });
}

#[test]
fn try_clone_reads_and_writes_the_same_connection() {
    run(|| {
        let (l, addr) = listen();
        echo_server(l);
        let c = TcpStream::connect(addr).unwrap();
        let w = c.try_clone().unwrap();
        assert_ne!(
            std::os::fd::AsRawFd::as_raw_fd(&c),
            std::os::fd::AsRawFd::as_raw_fd(&w)
        );
        let writer = gort::go!(move || {
            let mut w = w;
            for i in 0..100u8 {
                w.write_all(&[i; 10]).unwrap();
            }
            w
        });
        let mut got = vec![0u8; 1000];
        (&c).read_exact(&mut got).unwrap();
        for (i, chunk) in got.chunks(10).enumerate() {
            assert!(chunk.iter().all(|&b| b == i as u8));
        }
        writer.join().unwrap();
    });
}

#[test]
fn conversions_with_std() {
    run(|| {
        // std -> gort: the std listener becomes non-blocking and pollable.
        let std_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = std_l.local_addr().unwrap();
        let l = TcpListener::from(std_l);
        let std_c = std::net::TcpStream::connect(addr).unwrap();
        let (s, _) = l.accept().unwrap();
        let mut c = TcpStream::from(std_c);
        // gort -> std: blocking again, the same descriptor (moved, not
        // duplicated: the conversion cannot fail for want of descriptors).
        let raw = std::os::fd::AsRawFd::as_raw_fd(&s);
        let mut std_s: std::net::TcpStream = s.into();
        assert_eq!(std::os::fd::AsRawFd::as_raw_fd(&std_s), raw);
        c.write_all(b"std").unwrap();
        let mut buf = [0u8; 3];
        gort::blocking(|| std_s.read_exact(&mut buf)).unwrap();
        assert_eq!(&buf, b"std");
        // Raw descriptors round-trip.
        let fd = std::os::fd::IntoRawFd::into_raw_fd(c);
        // SAFETY: `fd` was just released by a stream and is owned by no one.
        let mut c = unsafe { <TcpStream as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        std_s.write_all(b"raw").unwrap();
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"raw");
        let std_l: std::net::TcpListener = l.into_std().unwrap();
        assert_eq!(std_l.local_addr().unwrap(), addr);
    });
}

#[test]
fn socket_options() {
    run(|| {
        let (l, addr) = listen();
        let c = TcpStream::connect(addr).unwrap();
        let _s = l.accept().unwrap();
        c.set_nodelay(true).unwrap();
        assert!(c.nodelay().unwrap());
        c.set_nodelay(false).unwrap();
        assert!(!c.nodelay().unwrap());
        assert_eq!(c.keepalive().unwrap(), None);
        let ka = KeepAlive::new()
            .idle(Duration::from_secs(30))
            .interval(Duration::from_millis(2500))
            .count(4);
        c.set_keepalive(Some(ka)).unwrap();
        let got = c.keepalive().unwrap().unwrap();
        assert_eq!(got.idle_time(), Duration::from_secs(30));
        assert_eq!(got.interval_time(), Duration::from_secs(3)); // rounded up
        assert_eq!(got.probe_count(), Some(4));
        c.set_keepalive(None).unwrap();
        assert_eq!(c.keepalive().unwrap(), None);
        c.set_linger(Some(Duration::from_secs(2))).unwrap();
        assert_eq!(c.linger().unwrap(), Some(Duration::from_secs(2)));
        c.set_linger(None).unwrap();
        assert_eq!(c.linger().unwrap(), None);
        c.set_ttl(33).unwrap();
        assert_eq!(c.ttl().unwrap(), 33);
        assert!(c.take_error().unwrap().is_none());
        l.set_ttl(44).unwrap();
        assert_eq!(l.ttl().unwrap(), 44);
    });
}

#[test]
fn bind_reuseport_shares_a_port() {
    run(|| {
        let a = TcpListener::bind_reuseport("127.0.0.1:0").unwrap();
        let addr = a.local_addr().unwrap();
        let b = TcpListener::bind_reuseport(addr).unwrap();
        assert_eq!(b.local_addr().unwrap(), addr);
        // Without SO_REUSEPORT the port is taken.
        let e = TcpListener::bind(addr).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AddrInUse);
        // The kernel spreads connections over both; each accepts its own.
        let (a, b) = (Arc::new(a), Arc::new(b));
        let accepted = Arc::new(AtomicUsize::new(0));
        for l in [a.clone(), b.clone()] {
            let accepted = accepted.clone();
            gort::go!(move || {
                while l.accept().is_ok() {
                    accepted.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        let conns: Vec<_> = (0..20).map(|_| TcpStream::connect(addr).unwrap()).collect();
        while accepted.load(Ordering::SeqCst) < conns.len() {
            gort::yield_now();
        }
        a.close();
        b.close();
    });
}

#[test]
fn listener_close_and_deadline_stop_accept() {
    support::with_timeout(20, || {
        let rt = support::rt(2);
        let l = Arc::new(rt.block_on(|| TcpListener::bind("127.0.0.1:0").unwrap()));
        let l2 = l.clone();
        let acceptor = rt.spawn(move || l2.accept().map(|_| ()));
        wait_parked(&rt, 1);
        let l2 = l.clone();
        rt.block_on(move || l2.close());
        let e = acceptor.join().unwrap().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotConnected, "{e}");

        let d = Duration::from_millis(40);
        let e = rt.block_on(move || {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let t = Instant::now();
            l.set_deadline(Some(t + d));
            let e = l.accept().unwrap_err();
            let el = t.elapsed();
            // Fired, and not early; how close to on time is net_deadline's
            // check (this binary runs heavier tests alongside).
            assert!(el >= d && el < d + Duration::from_millis(500), "{el:?}");
            e
        });
        assert_eq!(e.kind(), ErrorKind::TimedOut);
    });
}

#[test]
fn dropping_the_runtime_with_readers_blocked_leaves_the_socket_usable() {
    support::with_timeout(20, || {
        let (c, mut s) = {
            let (l, addr) = listen();
            let c = Arc::new(TcpStream::connect(addr).unwrap());
            let (s, _) = l.accept().unwrap();
            (c, s)
        };
        {
            let rt = support::rt(2);
            // One reader parks on the poller, the others queue behind it
            // for the stream's read lock.
            let readers: Vec<_> = (0..4)
                .map(|_| {
                    let c = c.clone();
                    rt.spawn(move || (&*c).read(&mut [0u8; 1]).map(|_| ()))
                })
                .collect();
            wait_parked(&rt, 1);
            // The runtime unwinds them all.
            drop(rt);
            for r in readers {
                assert!(r.join().is_err(), "an unwound coroutine has no result");
            }
        }
        // The read lock was released: a plain thread reads fine.
        s.write_all(b"z").unwrap();
        let mut b = [0u8; 1];
        (&*c).read_exact(&mut b).unwrap();
        assert_eq!(&b, b"z");
    });
}

/// Two coroutines readied by the poller in one batch stay on the M that
/// polled (a small batch wakes no other M); if the one that runs first then
/// computes without yielding, the other must still run soon on the idle P
/// (sysmon sees the P stuck with work queued and wakes an M), not wait for
/// the long runner to finish.
#[test]
fn a_coroutine_readied_behind_a_long_runner_is_taken_by_an_idle_p() {
    run(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        for round in 0..20 {
            let (ca, cb) = (
                std::net::TcpStream::connect(addr).unwrap(),
                std::net::TcpStream::connect(addr).unwrap(),
            );
            let (mut sa, _) = l.accept().unwrap();
            let (mut sb, _) = l.accept().unwrap();
            let done = Arc::new(AtomicUsize::new(0));
            let d = done.clone();
            let runner = gort::go!(move || {
                let mut b = [0u8; 1];
                sa.read_exact(&mut b).unwrap();
                // Computes (no yield) until the other has run, or gives up.
                let t = Instant::now();
                while d.load(Ordering::Acquire) == 0 && t.elapsed() < Duration::from_secs(5) {
                    std::hint::spin_loop();
                }
                t.elapsed()
            });
            let d = done.clone();
            let other = gort::go!(move || {
                let mut b = [0u8; 1];
                sb.read_exact(&mut b).unwrap();
                d.store(1, Ordering::Release);
            });
            // Let both park in read, then make both readable at once: b
            // first, so that the batch's last (run first) is the runner.
            gort::time::sleep(Duration::from_millis(5));
            std::thread::spawn(move || {
                (&cb).write_all(b"b").unwrap();
                (&ca).write_all(b"a").unwrap();
                std::thread::sleep(Duration::from_millis(50));
            });
            let waited = runner.join().unwrap();
            other.join().unwrap();
            assert!(
                waited < Duration::from_secs(2),
                "round {round}: the readied coroutine waited {waited:?} behind a long runner"
            );
        }
    });
}
