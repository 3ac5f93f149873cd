//! gort::net UDP: datagrams, connected sockets, deadlines, close, shared
//! receivers.

mod support;

use std::{
    collections::HashSet,
    io::ErrorKind,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use gort::net::UdpSocket;

fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    support::with_timeout(20, move || support::rt(2).block_on(f))
}

fn bind() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").unwrap()
}

#[test]
fn send_to_and_recv_from() {
    run(|| {
        let (a, b) = (bind(), bind());
        let (aa, ba) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        // The receiver parks first; the datagram wakes it.
        let receiver = gort::go!(move || {
            let mut buf = [0u8; 64];
            let (n, from) = b.recv_from(&mut buf).unwrap();
            assert_eq!((&buf[..n], from), (&b"ping"[..], aa));
            // Peek leaves it queued; a short buffer truncates.
            let (n, _) = b.peek_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"second");
            let mut short = [0u8; 3];
            let (n, _) = b.recv_from(&mut short).unwrap();
            assert_eq!(&short[..n], b"sec");
            b.send_to(b"pong", from).unwrap();
        });
        gort::yield_now();
        assert_eq!(a.send_to(b"ping", ba).unwrap(), 4);
        assert_eq!(a.send_to(b"second", ba).unwrap(), 6);
        let mut buf = [0u8; 64];
        let (n, from) = a.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"pong"[..], ba));
        receiver.join().unwrap();
    });
}

#[test]
fn connected_send_and_recv() {
    run(|| {
        let (a, b) = (bind(), bind());
        a.connect(b.local_addr().unwrap()).unwrap();
        b.connect(a.local_addr().unwrap()).unwrap();
        assert_eq!(a.peer_addr().unwrap(), b.local_addr().unwrap());
        a.send(b"").unwrap(); // an empty datagram is a datagram
        a.send(b"hello").unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(b.recv(&mut buf).unwrap(), 0);
        assert_eq!(b.peek(&mut buf).unwrap(), 5);
        assert_eq!(b.recv(&mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"hello");
        // Only the connected peer's datagrams arrive.
        let c = bind();
        c.send_to(b"stranger", b.local_addr().unwrap()).unwrap();
        a.send(b"friend").unwrap();
        let n = b.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"friend");
    });
}

#[test]
fn recv_deadline_fires_on_time() {
    run(|| {
        let s = bind();
        let d = Duration::from_millis(40);
        let t = Instant::now();
        s.set_read_deadline(Some(t + d));
        let e = s.recv_from(&mut [0u8; 8]).unwrap_err();
        let el = t.elapsed();
        assert_eq!(e.kind(), ErrorKind::TimedOut);
        // Fired, and not early; how close to on time is net_deadline's
        // check (this binary runs heavier tests alongside).
        assert!(el >= d && el < d + Duration::from_millis(500), "{el:?}");
        // Cleared: a datagram sent later is received.
        s.set_read_deadline(None);
        let addr = s.local_addr().unwrap();
        gort::go!(move || {
            gort::time::sleep(Duration::from_millis(5));
            bind().send_to(b"x", addr).unwrap();
        });
        assert_eq!(s.recv_from(&mut [0u8; 8]).unwrap().0, 1);
        // Both deadlines at once; a past one fails sends too.
        s.set_deadline(Some(Instant::now()));
        assert_eq!(
            s.send_to(b"x", addr).unwrap_err().kind(),
            ErrorKind::TimedOut
        );
        s.set_write_deadline(None);
        s.send_to(b"x", addr).unwrap();
    });
}

#[test]
fn close_wakes_a_blocked_receiver() {
    run(|| {
        let s = Arc::new(bind());
        let s2 = s.clone();
        let r = gort::go!(move || s2.recv_from(&mut [0u8; 8]).map(|_| ()));
        gort::yield_now();
        s.close();
        let e = r.join().unwrap().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotConnected);
    });
}

#[test]
fn shared_socket_many_receivers_each_get_whole_datagrams() {
    run(|| {
        let s = Arc::new(bind());
        let addr = s.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(HashSet::new()));
        let n = 500u32;
        let receivers: Vec<_> = (0..4)
            .map(|_| {
                let (s, seen) = (s.clone(), seen.clone());
                gort::go!(move || {
                    let mut buf = [0u8; 8];
                    loop {
                        let (len, _) = s.recv_from(&mut buf).unwrap();
                        assert_eq!(len, 8);
                        let v = u32::from_le_bytes(buf[..4].try_into().unwrap());
                        assert_eq!(buf[4..], (!v).to_le_bytes());
                        if v == u32::MAX {
                            return;
                        }
                        assert!(seen.lock().unwrap().insert(v), "duplicate {v}");
                    }
                })
            })
            .collect();
        let tx = bind();
        for v in 0..n {
            let mut d = [0u8; 8];
            d[..4].copy_from_slice(&v.to_le_bytes());
            d[4..].copy_from_slice(&(!v).to_le_bytes());
            tx.send_to(&d, addr).unwrap();
            if v % 50 == 0 {
                // Do not overrun the receive buffer (UDP drops then).
                while seen.lock().unwrap().len() + 100 < v as usize {
                    gort::yield_now();
                }
            }
        }
        while seen.lock().unwrap().len() < n as usize {
            gort::yield_now();
        }
        for _ in 0..4 {
            let mut d = [0u8; 8];
            d[..4].copy_from_slice(&u32::MAX.to_le_bytes());
            d[4..].copy_from_slice(&0u32.to_le_bytes());
            tx.send_to(&d, addr).unwrap();
        }
        for r in receivers {
            r.join().unwrap();
        }
        assert_eq!(seen.lock().unwrap().len(), n as usize);
    });
}

#[test]
fn options_clone_and_conversions() {
    run(|| {
        let s = bind();
        s.set_broadcast(true).unwrap();
        assert!(s.broadcast().unwrap());
        s.set_ttl(9).unwrap();
        assert_eq!(s.ttl().unwrap(), 9);
        let c = s.try_clone().unwrap();
        assert_eq!(c.local_addr().unwrap(), s.local_addr().unwrap());
        let std_s: std::net::UdpSocket = c.into();
        let addr = s.local_addr().unwrap();
        let peer = bind();
        peer.send_to(b"via std", addr).unwrap();
        let mut buf = [0u8; 16];
        let (n, _) = gort::blocking(|| std_s.recv_from(&mut buf)).unwrap();
        assert_eq!(&buf[..n], b"via std");
        let back = UdpSocket::from(std_s);
        peer.send_to(b"back", addr).unwrap();
        let (n, _) = back.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"back");
        // Sending to a closed port: the ICMP error shows up later.
        let gone = bind();
        let gone_addr = gone.local_addr().unwrap();
        drop(gone);
        s.connect(gone_addr).unwrap();
        s.send(b"x").unwrap();
        s.set_read_deadline(Some(Instant::now() + Duration::from_secs(2)));
        let e = s.recv(&mut buf).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
    });
}
