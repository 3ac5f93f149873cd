//! `http_hyper`: the hyper side of `compare.sh http`.
//!
//! An HTTP/1.1 "Hello, World!" server on hyper 1.x (`server::conn::http1`,
//! keep-alive on, as by default) over a tokio `multi_thread` runtime with 2
//! workers: the accept loop sets `TCP_NODELAY` (as Go does, and gort's
//! `examples/http_hello`) and spawns one task per connection, which serves
//! every request with the same response: `200 OK` with `Date` (hyper's
//! cached header), `Content-Length: 13` and `Content-Type: text/plain;
//! charset=utf-8`, the headers net/http and gort's example send. Pipelined
//! responses are flushed together (`pipeline_flush`), as gort's example
//! answers a whole read's worth of requests in one write.
//!
//! Usage: `http_hyper ADDR` (e.g. `127.0.0.1:8080`); runs until killed.

use std::convert::Infallible;

use http_body_util::Full;
use hyper::{
    Request, Response,
    body::{Bytes, Incoming},
    header::{CONTENT_TYPE, HeaderValue},
    server::conn::http1,
    service::service_fn,
};
use hyper_util::rt::TokioIo;

/// The response body.
const BODY: &[u8] = b"Hello, World!";

async fn hello(_req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut resp = Response::new(Full::new(Bytes::from_static(BODY)));
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(resp)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(addr), None) = (args.next(), args.next()) else {
        eprintln!("usage: http_hyper ADDR");
        std::process::exit(2)
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("build a tokio runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .unwrap_or_else(|e| panic!("http_hyper: bind {addr}: {e}"));
        loop {
            let conn = match listener.accept().await {
                Ok((conn, _)) => conn,
                Err(e) => {
                    // Out of descriptors, a connection reset before accept:
                    // report it and keep serving.
                    eprintln!("http_hyper: accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                    continue;
                }
            };
            let _ = conn.set_nodelay(true);
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .pipeline_flush(true)
                    .serve_connection(TokioIo::new(conn), service_fn(hello))
                    .await;
            });
        }
    });
}
