//! `echo_tokio`: the tokio side of `compare.sh echo`.
//!
//! A TCP echo server on a `multi_thread` runtime with 2 workers: the accept
//! loop sets `TCP_NODELAY` (as Go does by default) and spawns one task per
//! connection, which reads into a 4 KiB buffer and writes back what it read
//! (`write_all`) until the peer closes.
//!
//! Usage: `echo_tokio ADDR` (e.g. `127.0.0.1:9000`); runs until killed.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(addr), None) = (args.next(), args.next()) else {
        eprintln!("usage: echo_tokio ADDR");
        std::process::exit(2)
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_io()
        .build()
        .expect("build a tokio runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .unwrap_or_else(|e| panic!("echo_tokio: bind {addr}: {e}"));
        loop {
            let mut conn = match listener.accept().await {
                Ok((conn, _)) => conn,
                Err(e) => {
                    // Out of descriptors, a connection reset before accept:
                    // report it and keep serving.
                    eprintln!("echo_tokio: accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                    continue;
                }
            };
            // Small writes go out at once, as in Go (which sets TCP_NODELAY
            // on every connection) and in gort's example.
            let _ = conn.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                loop {
                    let n = match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if conn.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
}
