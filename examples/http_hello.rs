//! An HTTP/1.1 "Hello, World!" server: the Go net/http hello world
//! (`http.HandleFunc("/", hello); http.ListenAndServe(addr, nil)`, the
//! server every HTTP benchmark starts from), with net/http's connection
//! handling written out: one coroutine per connection, keep-alive,
//! pipelining, `Connection: close`, HTTP/1.0. Requests are parsed by the
//! `httparse` crate.
//!
//! ```text
//! cargo run --release --example http_hello -- 127.0.0.1:8080
//! wrk -t1 -c50 -d5s http://127.0.0.1:8080/
//! ```
//!
//! | Go (net/http)                                   | here                                               |
//! |-------------------------------------------------|----------------------------------------------------|
//! | `http.ListenAndServe(addr, nil)`                | `TcpListener::bind(addr)`, then [`serve`]          |
//! | `srv.Serve(l)`: `for { rw, err := l.Accept() ... }` | [`serve`]: `listener.accept()`, back-off on EMFILE |
//! | `go c.serve(ctx)`                               | `gort::go!(move \|\| serve_conn(conn))`            |
//! | `c.bufr = newBufioReader(c.r)` (4 KiB, pooled)  | one read buffer per connection, reused             |
//! | `http.ReadRequest(c.bufr)`                      | `httparse::Request::parse` on the buffered bytes   |
//! | `func hello(w, r) { w.Write([]byte("Hello, World!")) }` | [`Session::feed`] appends the response to `out` |
//! | `w.finishRequest()`: flush the `bufio.Writer`   | one `write_all` per read, for every request it held |
//! | `c.rwc.(*net.TCPConn).SetNoDelay(true)` (Go's default) | `conn.set_nodelay(true)`                    |
//! | `Date:` header, cached per second               | [`DateCache`], per connection                      |
//! | `r.Close` / `w.closeAfterReply`                 | [`Session::closing`]                               |
//! | `c.closeWriteAndWait()`                         | [`serve_conn`]'s lingering close                   |
//! | `400 Bad Request` + close on a malformed request | the same, from [`Session::feed`]                  |
//!
//! # Keep-alive and pipelining
//! A connection is kept open after a response unless the request said
//! `Connection: close`, or was HTTP/1.0 without `Connection: keep-alive`
//! (that one gets `Connection: keep-alive` back and stays open). Every
//! complete request in what one `read` returned is answered, in order,
//! into one output buffer, and the lot goes out in one `write`; a request
//! cut by the end of the read waits in the buffer for the next read.
//! Request bodies (`Content-Length`) are skipped; chunked request bodies
//! are not supported (`501`, then close). A malformed request gets `400`
//! (too many or too large headers: `431`) after the responses to the
//! requests before it, and the connection is closed.
//!
//! # Differences from net/http
//! Go answers one request at a time (it reads the next request of a
//! pipeline only after flushing the previous response, though into the
//! same buffered writer); this server answers a whole read's worth at
//! once, which is what makes pipelining cheap. Like net/http, it answers
//! every path and method with the same handler (HEAD gets no body).

use std::{
    io::{self, Read, Write},
    net::Shutdown,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use gort::net::{TcpListener, TcpStream};

/// The response body.
pub const BODY: &[u8] = b"Hello, World!";
// The Content-Length written by `Session::answer`.
const _: () = assert!(BODY.len() == 13);

/// Most bytes of request line and headers accepted (net/http: 1 MiB);
/// beyond that, `431` and close.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Most headers in one request (httparse needs a fixed array); beyond
/// that, `431` and close.
pub const MAX_HEADERS: usize = 32;

/// The read buffer's starting size (net/http's `bufio.Reader`: 4 KiB).
const READ_BUF: usize = 8 * 1024;

/// How long a closing connection waits for the client to finish sending
/// (net/http's `rstAvoidanceDelay` is 500 ms).
const LINGER: Duration = Duration::from_millis(500);

/// Serves HTTP on connections accepted from `listener` until it is closed
/// ([`TcpListener::close`]), then returns `Ok`; connections already open
/// carry on. Runs inside a gort runtime.
pub fn serve(listener: &TcpListener) -> io::Result<()> {
    let mut backoff = Duration::ZERO;
    loop {
        match listener.accept() {
            Ok((conn, _peer)) => {
                backoff = Duration::ZERO;
                gort::go!(move || serve_conn(conn));
            }
            // Closed by `TcpListener::close` (Go's net.ErrClosed).
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(()),
            Err(e) => {
                // Out of descriptors or another temporary error: back off
                // as net/http does (5 ms doubling to 1 s).
                backoff = (backoff * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
                eprintln!("http_hello: accept: {e}; retrying in {backoff:?}");
                gort::time::sleep(backoff);
            }
        }
    }
}

/// One connection: read, answer every complete request read so far in one
/// write, repeat, until the client closes or a response closes.
pub fn serve_conn(mut conn: TcpStream) {
    // The responses are written whole, at once: no reason to delay them.
    let _ = conn.set_nodelay(true);
    let mut buf = vec![0u8; READ_BUF];
    let (mut start, mut end) = (0, 0); // unparsed bytes: buf[start..end]
    let mut out = Vec::with_capacity(READ_BUF);
    let mut session = Session::default();
    let mut date = DateCache::default();
    loop {
        if end == buf.len() {
            if start > 0 {
                buf.copy_within(start..end, 0);
                (start, end) = (0, end - start);
            } else {
                // One request larger than the buffer: grow. Session::feed
                // refuses headers over MAX_HEADER_BYTES, which bounds this.
                buf.resize(buf.len() * 2, 0);
            }
        }
        match conn.read(&mut buf[end..]) {
            Ok(0) => return, // the client closed
            Ok(n) => end += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
        start += session.feed(&buf[start..end], date.get(), &mut out);
        if start == end {
            (start, end) = (0, 0);
        }
        if !out.is_empty() {
            if conn.write_all(&out).is_err() {
                return;
            }
            out.clear();
        }
        if session.closing() {
            linger_close(&mut conn, &mut buf);
            return;
        }
    }
}

/// Closes the connection after its last response without losing that
/// response: closing a socket with unread input makes the kernel send a
/// reset, which may destroy the response before the client reads it. So
/// shut the sending side (the client sees EOF after the response) and
/// read what the client still sends, until it closes or for [`LINGER`]
/// (net/http's `closeWriteAndWait`).
fn linger_close(conn: &mut TcpStream, buf: &mut [u8]) {
    if conn.shutdown(Shutdown::Write).is_err() {
        return;
    }
    conn.set_read_deadline(Some(Instant::now() + LINGER));
    let mut drained = 0;
    while drained < 256 * 1024 {
        match conn.read(buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => drained += n,
        }
    }
}

/// The HTTP state of one connection, apart from its I/O, so it can be
/// driven (and tested) with any slicing of the input.
#[derive(Debug, Default)]
pub struct Session {
    /// Bytes of the current request's body not consumed yet.
    body_left: u64,
    /// The last response closes the connection; ignore further input.
    closing: bool,
}

impl Session {
    /// Answers every complete request at the start of `input`, appending
    /// the responses to `out`, and returns how many bytes of `input` it
    /// consumed; the rest (a cut request) must be passed again, with more
    /// after it. `date` is the `Date` header's value.
    pub fn feed(&mut self, input: &[u8], date: &[u8], out: &mut Vec<u8>) -> usize {
        let mut pos = 0;
        loop {
            if self.closing {
                return input.len(); // nothing after a closing response counts
            }
            if self.body_left > 0 {
                let n = self.body_left.min((input.len() - pos) as u64);
                pos += n as usize;
                self.body_left -= n;
                if self.body_left > 0 {
                    return pos;
                }
            }
            if pos == input.len() {
                return pos;
            }
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(&input[pos..]) {
                Ok(httparse::Status::Complete(n)) => {
                    pos += n;
                    self.answer(&req, date, out);
                }
                Ok(httparse::Status::Partial) => {
                    if input.len() - pos > MAX_HEADER_BYTES {
                        self.fail(431, out);
                    }
                    return pos;
                }
                Err(httparse::Error::TooManyHeaders) => self.fail(431, out),
                Err(_) => self.fail(400, out),
            }
        }
    }

    /// True once a response closed the connection: write out what
    /// [`feed`](Session::feed) produced, then close.
    pub fn closing(&self) -> bool {
        self.closing
    }

    /// The hello handler, with net/http's connection rules around it.
    fn answer(&mut self, req: &httparse::Request<'_, '_>, date: &[u8], out: &mut Vec<u8>) {
        let http11 = req.version == Some(1);
        let (mut close, mut keep_alive, mut host) = (false, false, false);
        let mut length: Option<u64> = None;
        for h in req.headers.iter() {
            let name = h.name.as_bytes();
            if name.eq_ignore_ascii_case(b"host") {
                host = true;
            } else if name.eq_ignore_ascii_case(b"connection") {
                for token in h.value.split(|&b| b == b',') {
                    let token = token.trim_ascii();
                    close |= token.eq_ignore_ascii_case(b"close");
                    keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            } else if name.eq_ignore_ascii_case(b"content-length") {
                let n = std::str::from_utf8(h.value.trim_ascii())
                    .ok()
                    .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|s| s.parse::<u64>().ok());
                match (n, length) {
                    (Some(n), None) => length = Some(n),
                    (Some(n), Some(m)) if n == m => {}
                    _ => return self.fail(400, out), // bad or conflicting
                }
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                return self.fail(501, out);
            }
        }
        if http11 && !host {
            return self.fail(400, out); // as net/http: "missing required Host header"
        }
        self.body_left = length.unwrap_or(0);
        let persist = if http11 { !close } else { keep_alive && !close };
        out.extend_from_slice(if http11 {
            b"HTTP/1.1 200 OK\r\nDate: "
        } else {
            b"HTTP/1.0 200 OK\r\nDate: "
        });
        out.extend_from_slice(date);
        out.extend_from_slice(
            b"\r\nContent-Length: 13\r\nContent-Type: text/plain; charset=utf-8\r\n",
        );
        if !persist {
            out.extend_from_slice(b"Connection: close\r\n");
            self.closing = true;
        } else if !http11 {
            out.extend_from_slice(b"Connection: keep-alive\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if req.method != Some("HEAD") {
            out.extend_from_slice(BODY);
        }
    }

    /// An error response, after which the connection closes.
    fn fail(&mut self, status: u16, out: &mut Vec<u8>) {
        let reason = match status {
            400 => "Bad Request",
            431 => "Request Header Fields Too Large",
            _ => "Not Implemented",
        };
        let body = format!("{status} {reason}");
        let head = format!(
            "HTTP/1.1 {body}\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(body.as_bytes());
        self.closing = true;
    }
}

/// The `Date` header's value, reformatted at most once a second.
#[derive(Debug, Default)]
pub struct DateCache {
    secs: u64,
    text: [u8; 29],
}

impl DateCache {
    /// The current date in HTTP's format.
    pub fn get(&mut self) -> &[u8] {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if now != self.secs || self.text[0] == 0 {
            self.secs = now;
            self.text = http_date(now);
        }
        &self.text
    }
}

/// `secs` after the Unix epoch in HTTP's date format (RFC 9110's
/// IMF-fixdate): `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(secs: u64) -> [u8; 29] {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let days = secs / 86400;
    let rem = secs % 86400;
    let (hour, min, sec) = (rem / 3600, rem / 60 % 60, rem % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);

    let mut b = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    b[..3].copy_from_slice(DAYS[(days % 7) as usize]);
    let two = |b: &mut [u8], v: u64| {
        b[0] = b'0' + (v / 10 % 10) as u8;
        b[1] = b'0' + (v % 10) as u8;
    };
    two(&mut b[5..7], day);
    b[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
    two(&mut b[12..14], year / 100);
    two(&mut b[14..16], year);
    two(&mut b[17..19], hour);
    two(&mut b[20..22], min);
    two(&mut b[23..25], sec);
    b
}

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".to_string());
    gort::run(move || {
        let listener = TcpListener::bind(&addr)?;
        eprintln!(
            "http_hello: listening on http://{} with {} Ps",
            listener.local_addr()?,
            gort::procs()
        );
        serve(&listener)
    })
}
