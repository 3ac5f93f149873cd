//! `echo_may`: the may side of `compare.sh echo`.
//!
//! A TCP echo server on may with 2 workers (`may::config().set_workers(2)`):
//! an accept loop in a `may::go!` coroutine sets `TCP_NODELAY` (as Go does
//! by default) and spawns one coroutine per connection, which reads into a
//! 4 KiB buffer and writes back what it read (`write_all`) until the peer
//! closes.
//!
//! Usage: `echo_may ADDR` (e.g. `127.0.0.1:9000`); runs until killed.

use std::io::{Read, Write};

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(addr), None) = (args.next(), args.next()) else {
        eprintln!("usage: echo_may ADDR");
        std::process::exit(2)
    };
    may::config().set_workers(2);
    let listener =
        may::net::TcpListener::bind(&addr).unwrap_or_else(|e| panic!("echo_may: bind {addr}: {e}"));
    let acceptor = may::go!(move || {
        for conn in listener.incoming() {
            let mut conn = match conn {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of descriptors, a connection reset before accept:
                    // report it and keep serving.
                    eprintln!("echo_may: accept: {e}");
                    may::coroutine::sleep(std::time::Duration::from_millis(1));
                    continue;
                }
            };
            // Small writes go out at once, as in Go (which sets TCP_NODELAY
            // on every connection) and in gort's example.
            let _ = conn.set_nodelay(true);
            may::go!(move || {
                let mut buf = [0u8; 4096];
                loop {
                    let n = match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if conn.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    acceptor.join().expect("may's accept loop panicked");
}
