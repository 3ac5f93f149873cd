//! The http_hello example: the request/response state machine on its own
//! (any slicing of the input gives the same answers), then the server over
//! real TCP: keep-alive, pipelining in order, `Connection: close`,
//! HTTP/1.0, malformed requests. Clients are std TcpStreams; their read
//! timeouts are watchdogs only.

mod support;

#[path = "../examples/http_hello.rs"]
#[allow(dead_code)]
mod http_hello;

use std::{
    io::{ErrorKind, Read, Write},
    net::TcpStream,
};
use support::ExampleServer as Server;

use http_hello::{BODY, Session, http_date};

const DATE: &[u8] = b"Sun, 06 Nov 1994 08:49:37 GMT";

/// One parsed response.
#[derive(Debug)]
struct Response {
    version: u8,
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parses one response from the start of `buf` (`head`: it answers a HEAD,
/// so it has no body); `None` if incomplete. Returns it and its length.
fn parse_response(buf: &[u8], head: bool) -> Option<(Response, usize)> {
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut r = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(n) = r.parse(buf).expect("a well-formed response") else {
        return None;
    };
    let headers: Vec<(String, String)> = r
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8(h.value.to_vec()).unwrap(),
            )
        })
        .collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .expect("every response has a Content-Length")
        .1
        .parse()
        .unwrap();
    let len = if head { 0 } else { len };
    if buf.len() < n + len {
        return None;
    }
    Some((
        Response {
            version: r.version.unwrap(),
            status: r.code.unwrap(),
            headers,
            body: buf[n..n + len].to_vec(),
        },
        n + len,
    ))
}

/// Every response in `out` (all complete), given which answer HEADs.
fn parse_all(mut out: &[u8], heads: &[bool]) -> Vec<Response> {
    let mut rs = Vec::new();
    for &head in heads {
        let (r, n) = parse_response(out, head).expect("a complete response");
        rs.push(r);
        out = &out[n..];
    }
    assert!(
        out.is_empty(),
        "trailing bytes: {:?}",
        String::from_utf8_lossy(out)
    );
    rs
}

fn assert_hello(r: &Response, version: u8) {
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.version, version, "{r:?}");
    assert_eq!(r.body, BODY);
    assert_eq!(r.header("Content-Type"), Some("text/plain; charset=utf-8"));
    assert!(
        r.header("Date")
            .is_some_and(|d| d.ends_with(" GMT") && d.len() == 29)
    );
}

/// Feeds `input` in pieces of `step` bytes, as reads would deliver it
/// (keeping the unconsumed rest, as the connection loop does).
fn feed_in_steps(input: &[u8], step: usize) -> (Vec<u8>, bool) {
    let mut s = Session::default();
    let mut out = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    for chunk in input.chunks(step) {
        pending.extend_from_slice(chunk);
        let used = s.feed(&pending, DATE, &mut out);
        pending.drain(..used);
        if s.closing() {
            break;
        }
    }
    (out, s.closing())
}

const PIPELINE: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n\
    POST /submit HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello=world\
    HEAD / HTTP/1.1\r\nHost: a\r\n\r\n\
    GET /x?y=z HTTP/1.1\r\nhost: a\r\nConnection: keep-alive\r\n\r\n";

#[test]
fn date_format() {
    assert_eq!(&http_date(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
    assert_eq!(&http_date(784_111_777), DATE); // RFC 9110's example
    assert_eq!(&http_date(951_825_600), b"Tue, 29 Feb 2000 12:00:00 GMT");
    assert_eq!(&http_date(4_102_444_799), b"Thu, 31 Dec 2099 23:59:59 GMT");
}

#[test]
fn pipelined_requests_any_slicing() {
    let (whole, closing) = feed_in_steps(PIPELINE, PIPELINE.len());
    assert!(!closing);
    let rs = parse_all(&whole, &[false, false, true, false]);
    for r in &rs {
        assert_eq!(r.status, 200);
        assert_eq!(r.header("Connection"), None);
        assert_eq!(r.header("Date"), Some(std::str::from_utf8(DATE).unwrap()));
    }
    assert_hello(&rs[0], 1);
    // Any cut of the byte stream gives the very same bytes out.
    for step in [1, 2, 3, 7, 13, 50, 64] {
        assert_eq!(
            feed_in_steps(PIPELINE, step),
            (whole.clone(), false),
            "step {step}"
        );
    }
}

#[test]
fn connection_close_and_http10() {
    // Connection: close ends the conversation; what follows is ignored.
    let input = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n\
        GET / HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n\
        GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let (out, closing) = feed_in_steps(input, input.len());
    assert!(closing);
    let rs = parse_all(&out, &[false, false]);
    assert_eq!(rs[0].header("Connection"), None);
    assert_eq!(rs[1].header("Connection"), Some("close"));

    // HTTP/1.0: closes unless asked to keep alive.
    let (out, closing) = feed_in_steps(b"GET / HTTP/1.0\r\n\r\n", 5);
    assert!(closing);
    let r = &parse_all(&out, &[false])[0];
    assert_hello(r, 0);
    assert_eq!(r.header("Connection"), Some("close"));
    let (out, closing) = feed_in_steps(
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n",
        9,
    );
    assert!(closing);
    let rs = parse_all(&out, &[false, false]);
    assert_eq!(rs[0].header("Connection"), Some("keep-alive"));
    assert_eq!(rs[1].header("Connection"), Some("close"));
}

#[test]
fn bad_requests() {
    for (input, status) in [
        (&b"BLAH\r\n\r\n"[..], 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nbad header\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400), // HTTP/1.1 without Host
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n",
            400,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            400,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            501,
        ),
    ] {
        for step in [1, input.len()] {
            let (out, closing) = feed_in_steps(input, step);
            assert!(closing, "{:?}", String::from_utf8_lossy(input));
            let r = &parse_all(&out, &[false])[0];
            assert_eq!(r.status, status, "{:?}", String::from_utf8_lossy(input));
            assert_eq!(r.header("Connection"), Some("close"));
        }
    }
    // Good requests before a bad one are answered first.
    let (out, closing) = feed_in_steps(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nnonsense\r\n\r\n", 4);
    assert!(closing);
    let rs = parse_all(&out, &[false, false]);
    assert_eq!((rs[0].status, rs[1].status), (200, 400));
    // Too many headers, and headers too large: 431.
    let mut many = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 0..http_hello::MAX_HEADERS {
        many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    let (out, _) = feed_in_steps(&many, many.len());
    assert_eq!(parse_all(&out, &[false])[0].status, 431);
    let mut huge = b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: ".to_vec();
    huge.resize(http_hello::MAX_HEADER_BYTES + 100, b'a');
    let (out, closing) = feed_in_steps(&huge, 4096);
    assert!(closing);
    assert_eq!(parse_all(&out, &[false])[0].status, 431);
}

// ---------------------------------------------------------------------
// Over TCP

/// A client connection to the example's server.
fn connect(server: &Server) -> Conn {
    Conn {
        s: server.connect_std(),
        buf: Vec::new(),
    }
}

fn start() -> Server {
    Server::start(http_hello::serve)
}

/// A client connection with its unparsed input.
struct Conn {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn send(&mut self, req: &[u8]) {
        self.s.write_all(req).unwrap();
    }

    /// Reads until one whole response is in, and parses it.
    fn response(&mut self, head: bool) -> Response {
        loop {
            if let Some((r, n)) = parse_response(&self.buf, head) {
                self.buf.drain(..n);
                return r;
            }
            let mut chunk = [0u8; 4096];
            match self.s.read(&mut chunk) {
                Ok(0) => panic!(
                    "EOF before a whole response: {:?}",
                    String::from_utf8_lossy(&self.buf)
                ),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("reading a response: {e} (a stall?)"),
            }
        }
    }

    /// The server closed the connection after what was read.
    fn expect_eof(&mut self) {
        assert!(
            self.buf.is_empty(),
            "unexpected bytes: {:?}",
            String::from_utf8_lossy(&self.buf)
        );
        let mut b = [0u8; 64];
        match self.s.read(&mut b) {
            Ok(0) => {}
            Ok(n) => panic!(
                "more bytes instead of EOF: {:?}",
                String::from_utf8_lossy(&b[..n])
            ),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => panic!("reset instead of EOF"),
            Err(e) => panic!("no EOF: {e}"),
        }
    }
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";

#[test]
fn tcp_keep_alive_pipelining_close() {
    support::with_timeout(60, || {
        let server = start();

        // Keep-alive: several requests, one at a time, on one connection.
        let mut c = connect(&server);
        for _ in 0..5 {
            c.send(GET);
            let r = c.response(false);
            assert_hello(&r, 1);
            assert_eq!(r.header("Connection"), None);
        }

        // Pipelined: sent in one write, answered in order (the HEAD's
        // response has no body, so an out-of-order answer would not parse
        // as expected), and the connection stays usable.
        let mut batch = Vec::new();
        for i in 0..20 {
            batch.extend_from_slice(if i % 3 == 1 {
                b"HEAD / HTTP/1.1\r\nHost: localhost\r\n\r\n"
            } else {
                GET
            });
        }
        c.send(&batch);
        for i in 0..20 {
            let r = c.response(i % 3 == 1);
            assert_eq!(r.status, 200);
            assert_eq!(r.body.is_empty(), i % 3 == 1, "response {i} out of order");
        }
        // A pipeline split across writes, with a body in it.
        c.send(b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nab");
        c.send(b"cde");
        c.send(GET);
        assert_hello(&c.response(false), 1);
        assert_hello(&c.response(false), 1);

        // Connection: close: the response says so, then EOF; requests
        // pipelined after it are not answered.
        let mut batch = GET.to_vec();
        batch.extend_from_slice(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        batch.extend_from_slice(GET);
        c.send(&batch);
        assert_eq!(c.response(false).header("Connection"), None);
        let r = c.response(false);
        assert_hello(&r, 1);
        assert_eq!(r.header("Connection"), Some("close"));
        c.expect_eof();

        // HTTP/1.0 without keep-alive: one response, then EOF.
        let mut c = connect(&server);
        c.send(b"GET / HTTP/1.0\r\n\r\n");
        let r = c.response(false);
        assert_hello(&r, 0);
        c.expect_eof();

        // HTTP/1.0 with keep-alive: stays open.
        let mut c = connect(&server);
        for _ in 0..3 {
            c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
            let r = c.response(false);
            assert_hello(&r, 0);
            assert_eq!(r.header("Connection"), Some("keep-alive"));
        }

        // Malformed: 400, then close (after the good one before it).
        let mut c = connect(&server);
        let mut batch = GET.to_vec();
        batch.extend_from_slice(b"GET / HTTP/1.1\r\nHost localhost\r\n\r\n");
        c.send(&batch);
        assert_hello(&c.response(false), 1);
        let r = c.response(false);
        assert_eq!(r.status, 400);
        assert_eq!(r.header("Connection"), Some("close"));
        c.expect_eof();

        server.stop();
    });
}

#[test]
fn tcp_many_connections() {
    // A few dozen clients at once, each with a few keep-alive requests:
    // one coroutine per connection, none waiting on another.
    support::with_timeout(60, || {
        let server = start();
        let mut conns: Vec<Conn> = (0..50).map(|_| connect(&server)).collect();
        for round in 0..3 {
            for c in conns.iter_mut() {
                c.send(GET);
            }
            for c in conns.iter_mut() {
                let r = c.response(false);
                assert_hello(&r, 1);
                assert_eq!(r.header("Connection"), None, "round {round}");
            }
        }
        server.stop();
    });
}
