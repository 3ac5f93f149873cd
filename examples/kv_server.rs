//! A Redis-protocol (RESP2) key-value server: the Go program of
//! `benches/go/kv/main.go`, which has the usual shape of Go Redis servers
//! (tidwall/redcon's example, the "build your own Redis" servers): a
//! goroutine per connection with a buffered reader and writer, a map of
//! byte strings split into shards, each behind a `sync.Mutex`.
//! Works with the real `redis-cli` and `redis-benchmark`.
//!
//! ```text
//! cargo run --release --example kv_server -- 127.0.0.1:6380
//! redis-cli -p 6380 set greeting hello
//! redis-benchmark -p 6380 -t ping,set,get -n 100000 -c 50 -q
//! ```
//!
//! | Go                                              | here                                                  |
//! |-------------------------------------------------|-------------------------------------------------------|
//! | `l, _ := net.Listen("tcp", addr)`               | `TcpListener::bind(addr)`, then [`serve`]             |
//! | `for { c, _ := l.Accept(); go handle(c, s) }`   | [`serve`]: `listener.accept()`, `gort::go!(move \|\| serve_conn(conn, store))` |
//! | `c.(*net.TCPConn).SetNoDelay(true)` (Go's default) | `conn.set_nodelay(true)`                           |
//! | `bufio.NewReaderSize(c, 16<<10)`                | one 16 KiB read buffer per connection, reused (grown for a big request) |
//! | `bufio.Writer`, flushed when `r.Buffered() == 0` | one output buffer per connection: every reply to what one `read` returned, in one `write` |
//! | `type shard struct { mu sync.Mutex; m map[string]entry }` | `gort::sync::Mutex<Shard>` holding a `HashMap<Box<[u8]>, Entry>` (foldhash, as Go's map hashes with AES) |
//! | `shards [64]shard`, picked by `maphash.Bytes(seed, key)` | [`Store`]: [`SHARDS`] shards, picked by a seeded foldhash of the key |
//! | `if e.exp != 0 && e.exp <= now { delete(m, k) }` | lazy expiry on every access, plus [`Store::sweep`]   |
//! | `ticker := time.NewTicker(100 * time.Millisecond)` | `gort::time::Ticker::new(SWEEP_EVERY)`             |
//! | `select { case <-done: return; case <-ticker.C: sweep() }` | `gort::select! { recv(stop) -> _ => return, recv(ticker.c()) -> _ => ... }` |
//! | `defer close(done)` when `Serve` returns        | the `stop` sender dropped when [`serve`] returns      |
//! | `time.Now()` in the store                       | [`Store::with_clock`]: an injectable millisecond clock |
//!
//! # Protocol
//! Requests are RESP arrays of bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`)
//! or inline commands (`GET k\r\n`, split as `redis-cli` and Redis split
//! them: quotes and `\x41` escapes work). Every complete request in what
//! one `read` returned is answered in order into one output buffer, which
//! goes out in one `write`; a request cut by the end of a read is resumed
//! (not re-parsed) when more arrives. A malformed request gets Redis's
//! `-ERR Protocol error: ...` after the replies to the requests before it,
//! and the connection is closed, as Redis does.
//!
//! Commands: `PING [msg]`, `ECHO msg`, `SET key value [NX|XX] [EX s|PX ms|KEEPTTL]`,
//! `GET`, `DEL key...`, `EXISTS key...`, `MGET key...`, `MSET k v ...`,
//! `INCR`, `DECR`, `INCRBY`, `DECRBY`, `TTL`, `PTTL`, `DBSIZE`,
//! `FLUSHDB`/`FLUSHALL`, `SELECT 0`, `QUIT`; and what the tools send when
//! they connect: `CONFIG GET save|appendonly|*` (redis-benchmark: no
//! persistence here) and `COMMAND ...` (redis-cli: an empty array). Replies
//! and error messages are Redis 7's, byte for byte. Anything else gets
//! `-ERR unknown command ...`. Every value is a string: there are no lists
//! or hashes, so no `WRONGTYPE`.
//!
//! # Differences from Redis
//! Redis runs one command at a time; here commands of different
//! connections run in parallel on every P, each key under its shard's lock,
//! so `MGET`, `MSET`, `DEL` and `EXISTS` over several keys are atomic per
//! key, not as a whole. Expired keys are removed when touched and by a
//! sweeper that walks [`SWEEP_SHARDS`] shards every [`SWEEP_EVERY`] (Redis
//! samples keys ten times a second instead). One database only.

use std::{
    collections::HashMap,
    hash::BuildHasher,
    io::{self, Read, Write},
    net::Shutdown,
    ops::Range,
    sync::Arc,
    time::{Duration, Instant},
};

use foldhash::fast::RandomState;
use gort::{
    chan::{self, Receiver},
    net::{TcpListener, TcpStream},
    sync::Mutex,
    time::Ticker,
};

/// Shards of the key space, each behind its own lock.
pub const SHARDS: usize = 64;

/// Largest bulk string accepted in a request (Redis's `proto-max-bulk-len`).
pub const MAX_BULK: usize = 512 * 1024 * 1024;

/// Most arguments in one request (beyond: `invalid multibulk length`).
pub const MAX_ARGS: usize = 1024 * 1024;

/// Longest inline request, or `*`/`$` count line, without its newline
/// (Redis's `PROTO_INLINE_MAX_SIZE`).
pub const MAX_INLINE: usize = 64 * 1024;

/// Largest request (all its arguments) a connection may buffer; a client
/// going beyond is disconnected (Redis's `client-query-buffer-limit`).
pub const MAX_QUERY: usize = 1024 * 1024 * 1024;

/// How often the sweeper runs, and how many shards it walks each time
/// (so it visits every shard every 1.6 s).
pub const SWEEP_EVERY: Duration = Duration::from_millis(100);
/// See [`SWEEP_EVERY`].
pub const SWEEP_SHARDS: usize = 4;

/// A connection's read buffer, and its output buffer's starting size
/// (Redis reads 16 KiB at a time).
const IO_BUF: usize = 16 * 1024;

/// How long a closing connection waits for the client to finish sending.
const LINGER: Duration = Duration::from_millis(500);

/// `Entry::expires` of a key without a time to live.
const NEVER: u64 = u64::MAX;

// ---------------------------------------------------------------------
// The store

/// A millisecond clock: any monotonic count of milliseconds.
pub type Clock = Box<dyn Fn() -> u64 + Send + Sync>;

/// The key space: [`SHARDS`] hash maps, each behind a `gort::sync::Mutex`
/// (which parks a waiting coroutine, not its thread). No lock is held
/// across I/O, and never more than one at a time.
pub struct Store {
    shards: Box<[Mutex<Shard>]>,
    /// Picks a key's shard (the maps hash with their own keys). foldhash,
    /// seeded at random, as Go's maphash and map hash are: std's SipHash
    /// cost ~4% of the server's samples at `redis-benchmark -P 16`.
    pick: RandomState,
    clock: Clock,
}

#[derive(Default)]
struct Shard {
    map: HashMap<Box<[u8]>, Entry, RandomState>,
    /// Entries with a time to live: the sweeper skips shards without.
    expiring: usize,
}

struct Entry {
    value: Vec<u8>,
    /// When the key expires, on the store's clock; [`NEVER`] for never.
    expires: u64,
}

impl Entry {
    fn expired(&self, clock: &Clock) -> bool {
        self.expires != NEVER && self.expires <= clock()
    }
}

/// The condition of a `SET`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cond {
    /// Always set.
    Always,
    /// `NX`: only if the key does not exist.
    IfAbsent,
    /// `XX`: only if the key exists.
    IfPresent,
}

/// What a `SET` does to the key's time to live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// No time to live (plain `SET`).
    Clear,
    /// Expires at this instant of the store's clock (`EX`, `PX`).
    At(u64),
    /// `KEEPTTL`: as it was.
    Keep,
}

/// Why an `INCR` failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncrError {
    /// The value is not a 64-bit decimal integer.
    NotInteger,
    /// The result would not fit in 64 bits.
    Overflow,
}

impl Default for Store {
    fn default() -> Store {
        Store::new()
    }
}

impl Store {
    /// An empty store on the real clock (milliseconds since its creation).
    pub fn new() -> Store {
        let epoch = Instant::now();
        Store::with_clock(Box::new(move || epoch.elapsed().as_millis() as u64))
    }

    /// An empty store on the given clock (tests drive expiry with it).
    pub fn with_clock(clock: Clock) -> Store {
        Store {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            pick: RandomState::default(),
            clock,
        }
    }

    /// The store's clock, in milliseconds.
    pub fn now_ms(&self) -> u64 {
        (self.clock)()
    }

    fn shard(&self, key: &[u8]) -> &Mutex<Shard> {
        &self.shards[self.pick.hash_one(key) as usize % SHARDS]
    }

    /// Calls `f` with the value of `key` (`None` if absent or expired),
    /// under the shard's lock, so the value is read without a copy.
    pub fn get_with<R>(&self, key: &[u8], f: impl FnOnce(Option<&[u8]>) -> R) -> R {
        let mut guard = self.shard(key).lock();
        let shard = &mut *guard;
        match shard.map.get(key) {
            Some(e) if !e.expired(&self.clock) => return f(Some(&e.value)),
            Some(_) => shard.remove(key),
            None => {}
        }
        f(None)
    }

    /// Sets `key` to `value` if `cond` holds, with the time to live
    /// `expiry`; returns whether it did. An existing entry's value buffer
    /// is reused.
    pub fn set(&self, key: &[u8], value: &[u8], cond: Cond, expiry: Expiry) -> bool {
        let mut guard = self.shard(key).lock();
        let shard = &mut *guard;
        if let Some(e) = shard.map.get_mut(key) {
            let live = !e.expired(&self.clock);
            if (live && cond == Cond::IfAbsent) || (!live && cond == Cond::IfPresent) {
                if !live {
                    shard.remove(key);
                }
                return false;
            }
            e.value.clear();
            e.value.extend_from_slice(value);
            let expires = match expiry {
                Expiry::Clear => NEVER,
                Expiry::At(t) => t,
                // An expired key was gone: it kept no time to live.
                Expiry::Keep if live => e.expires,
                Expiry::Keep => NEVER,
            };
            shard.expiring -= usize::from(e.expires != NEVER);
            shard.expiring += usize::from(expires != NEVER);
            e.expires = expires;
            return true;
        }
        if cond == Cond::IfPresent {
            return false;
        }
        let expires = match expiry {
            Expiry::At(t) => t,
            Expiry::Clear | Expiry::Keep => NEVER,
        };
        shard.expiring += usize::from(expires != NEVER);
        shard.map.insert(
            key.into(),
            Entry {
                value: value.to_vec(),
                expires,
            },
        );
        true
    }

    /// Removes `key`; returns whether it existed (and had not expired).
    pub fn del(&self, key: &[u8]) -> bool {
        let mut guard = self.shard(key).lock();
        let shard = &mut *guard;
        match shard.map.get(key) {
            Some(e) => {
                let live = !e.expired(&self.clock);
                shard.remove(key);
                live
            }
            None => false,
        }
    }

    /// Whether `key` exists (and has not expired).
    pub fn exists(&self, key: &[u8]) -> bool {
        self.get_with(key, |v| v.is_some())
    }

    /// Adds `delta` to the integer in `key` (0 if absent), keeping its
    /// time to live; returns the new value.
    pub fn incr_by(&self, key: &[u8], delta: i64) -> Result<i64, IncrError> {
        let mut guard = self.shard(key).lock();
        let shard = &mut *guard;
        if let Some(e) = shard.map.get_mut(key) {
            let old = if e.expired(&self.clock) {
                shard.expiring -= 1;
                e.expires = NEVER;
                0
            } else {
                parse_i64(&e.value).ok_or(IncrError::NotInteger)?
            };
            let new = old.checked_add(delta).ok_or(IncrError::Overflow)?;
            e.value.clear();
            push_int(&mut e.value, new);
            return Ok(new);
        }
        let mut value = Vec::new();
        push_int(&mut value, delta);
        shard.map.insert(
            key.into(),
            Entry {
                value,
                expires: NEVER,
            },
        );
        Ok(delta)
    }

    /// The time to live of `key` in milliseconds: `None` if it does not
    /// exist, `Some(None)` if it has none.
    pub fn ttl_ms(&self, key: &[u8]) -> Option<Option<u64>> {
        let mut guard = self.shard(key).lock();
        let shard = &mut *guard;
        let e = shard.map.get(key)?;
        if e.expires == NEVER {
            return Some(None);
        }
        let now = self.now_ms();
        if e.expires <= now {
            shard.remove(key);
            return None;
        }
        Some(Some(e.expires - now))
    }

    /// Keys stored, counting expired ones not removed yet (as Redis's
    /// `DBSIZE`).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().map.len()).sum()
    }

    /// Whether [`len`](Store::len) is zero.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every key.
    pub fn clear(&self) {
        for s in self.shards.iter() {
            // Freed after the lock is released.
            let old = std::mem::take(&mut *s.lock());
            drop(old);
        }
    }

    /// Removes the expired keys of `count` shards from `first` on (modulo
    /// [`SHARDS`]); returns how many it removed. Shards without keys with a
    /// time to live cost one lock.
    pub fn sweep(&self, first: usize, count: usize) -> usize {
        let now = self.now_ms();
        let mut removed = 0;
        for i in first..first + count.min(SHARDS) {
            let mut guard = self.shards[i % SHARDS].lock();
            let shard = &mut *guard;
            if shard.expiring == 0 {
                continue;
            }
            let before = shard.map.len();
            let mut expiring = 0;
            shard.map.retain(|_, e| {
                let keep = e.expires == NEVER || e.expires > now;
                expiring += usize::from(keep && e.expires != NEVER);
                keep
            });
            shard.expiring = expiring;
            removed += before - shard.map.len();
        }
        removed
    }
}

impl Shard {
    fn remove(&mut self, key: &[u8]) {
        if let Some(e) = self.map.remove(key) {
            self.expiring -= usize::from(e.expires != NEVER);
        }
    }
}

// ---------------------------------------------------------------------
// Serving

/// Serves RESP clients accepted from `listener` until it is closed
/// ([`TcpListener::close`]), then returns `Ok`; connections already open
/// carry on. Runs a sweeper for expired keys while it serves. Runs inside
/// a gort runtime.
pub fn serve(listener: &TcpListener, store: Arc<Store>) -> io::Result<()> {
    // Closed (by dropping the sender) when serve returns: the sweeper's
    // `done` channel.
    let (stop_tx, stop) = chan::bounded::<()>(0);
    let sweeper = {
        let store = store.clone();
        gort::go!(move || sweeper(&store, &stop))
    };
    let mut backoff = Duration::ZERO;
    let result = loop {
        match listener.accept() {
            Ok((conn, _peer)) => {
                backoff = Duration::ZERO;
                let store = store.clone();
                gort::go!(move || serve_conn(conn, &store));
            }
            // Closed by `TcpListener::close` (Go's net.ErrClosed).
            Err(e) if e.kind() == io::ErrorKind::NotConnected => break Ok(()),
            Err(e) => {
                // Out of descriptors or another temporary error: back off
                // as Go's http.Server does (5 ms doubling to 1 s).
                backoff = (backoff * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
                eprintln!("kv_server: accept: {e}; retrying in {backoff:?}");
                gort::time::sleep(backoff);
            }
        }
    };
    drop(stop_tx);
    let _ = sweeper.join();
    result
}

/// Removes expired keys a few shards at a time until `stop` is closed.
fn sweeper(store: &Store, stop: &Receiver<()>) {
    let ticker = Ticker::new(SWEEP_EVERY);
    let mut next = 0;
    loop {
        gort::select! {
            recv(stop) -> _ => return,
            recv(ticker.c()) -> _ => {
                store.sweep(next, SWEEP_SHARDS);
                next = (next + SWEEP_SHARDS) % SHARDS;
            }
        }
    }
}

/// One connection: read, answer every complete request read so far in one
/// write, repeat, until the client closes, sends `QUIT` or breaks the
/// protocol.
pub fn serve_conn(mut conn: TcpStream, store: &Store) {
    // Replies are written whole, at once: no reason to delay them.
    let _ = conn.set_nodelay(true);
    let mut buf = vec![0u8; IO_BUF];
    let (mut start, mut end) = (0, 0); // unparsed bytes: buf[start..end]
    let mut out = Vec::with_capacity(IO_BUF);
    let mut session = Session::default();
    loop {
        if end == buf.len() {
            if start > 0 {
                buf.copy_within(start..end, 0);
                (start, end) = (0, end - start);
            } else if buf.len() >= MAX_QUERY {
                return; // as Redis: "closing client that reached max query buffer length"
            } else {
                // One request larger than the buffer (a big value): grow.
                buf.resize(buf.len() * 2, 0);
            }
        }
        match conn.read(&mut buf[end..]) {
            Ok(0) => return, // the client closed
            Ok(n) => end += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
        start += session.feed(&buf[start..end], store, &mut out);
        if start == end {
            (start, end) = (0, 0);
            if buf.len() > IO_BUF {
                // A big request is done: give its memory back.
                buf.truncate(IO_BUF);
                buf.shrink_to_fit();
            }
        }
        if !out.is_empty() {
            if conn.write_all(&out).is_err() {
                return;
            }
            out.clear();
            if out.capacity() > 64 * IO_BUF {
                out.shrink_to(IO_BUF);
            }
        }
        if session.closing() {
            linger_close(&mut conn, &mut buf);
            return;
        }
    }
}

/// Closes the connection after its last reply without losing that reply:
/// closing a socket with unread input makes the kernel send a reset, which
/// may destroy the reply before the client reads it. So shut the sending
/// side (the client sees EOF after the reply) and read what the client
/// still sends, until it closes or for [`LINGER`].
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

// ---------------------------------------------------------------------
// The protocol

/// The RESP state of one connection, apart from its I/O, so it can be
/// driven (and tested) with any slicing of the input.
#[derive(Debug, Default)]
pub struct Session {
    /// The current request's arguments: ranges of the request's bytes
    /// (multibulk) or of `inline` (inline).
    args: Vec<Range<usize>>,
    /// An inline request's arguments, unquoted.
    inline: Vec<u8>,
    /// A multibulk request cut by the end of the input.
    partial: Option<Partial>,
    /// `QUIT` or a protocol error: ignore further input, then close.
    closing: bool,
}

/// Where a cut multibulk request stopped: its arguments so far are in
/// `Session::args`, relative to the request's start.
#[derive(Debug, Clone, Copy)]
struct Partial {
    /// Arguments still to come.
    left: usize,
    /// Where the next one starts, from the request's start.
    pos: usize,
}

/// What parsing the start of the input came to.
enum Parsed {
    /// A whole request of this many bytes; its arguments are in
    /// `Session::args` (none: nothing to run), over the input or over
    /// `Session::inline`.
    Request { len: usize, inline: bool },
    /// More input is needed.
    Incomplete,
}

/// A malformed request (Redis's words, after `-ERR Protocol error: `).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolError {
    /// A multibulk argument not starting with `$`.
    ExpectedDollar(u8),
    /// A bad `*` count.
    MultibulkLength,
    /// A bad `$` length.
    BulkLength,
    /// A `*` line longer than [`MAX_INLINE`].
    BigMultibulkCount,
    /// A `$` line longer than [`MAX_INLINE`].
    BigBulkCount,
    /// An inline request longer than [`MAX_INLINE`].
    BigInline,
    /// An inline request with a quote not closed, or closed and not
    /// followed by a space.
    UnbalancedQuotes,
}

impl ProtocolError {
    fn reply(self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"-ERR Protocol error: ");
        match self {
            ProtocolError::ExpectedDollar(c) => {
                out.extend_from_slice(b"expected '$', got '");
                out.push(if c.is_ascii_graphic() || c == b' ' {
                    c
                } else {
                    b'?'
                });
                out.push(b'\'');
            }
            ProtocolError::MultibulkLength => out.extend_from_slice(b"invalid multibulk length"),
            ProtocolError::BulkLength => out.extend_from_slice(b"invalid bulk length"),
            ProtocolError::BigMultibulkCount => {
                out.extend_from_slice(b"too big mbulk count string");
            }
            ProtocolError::BigBulkCount => out.extend_from_slice(b"too big bulk count string"),
            ProtocolError::BigInline => out.extend_from_slice(b"too big inline request"),
            ProtocolError::UnbalancedQuotes => {
                out.extend_from_slice(b"unbalanced quotes in request");
            }
        }
        out.extend_from_slice(b"\r\n");
    }
}

impl Session {
    /// Runs every complete request at the start of `input` against
    /// `store`, appending the replies to `out`, and returns how many bytes
    /// of `input` it consumed; the rest (a cut request) must be passed
    /// again, with more after it.
    pub fn feed(&mut self, input: &[u8], store: &Store, out: &mut Vec<u8>) -> usize {
        let mut at = 0;
        while at < input.len() {
            if self.closing {
                return input.len(); // nothing after QUIT or an error counts
            }
            let req = &input[at..];
            let parsed = if self.partial.is_some() || req[0] == b'*' {
                self.parse_multibulk(req)
            } else {
                self.parse_inline(req)
            };
            match parsed {
                Ok(Parsed::Request { len, inline }) => {
                    if !self.args.is_empty() {
                        let args = Args {
                            src: if inline { &self.inline } else { req },
                            ranges: &self.args,
                        };
                        self.closing = execute(&args, store, out) == Flow::Close;
                    }
                    at += len;
                }
                Ok(Parsed::Incomplete) => return at,
                Err(e) => {
                    e.reply(out);
                    self.closing = true;
                }
            }
        }
        at
    }

    /// True once a reply closed the connection: write out what
    /// [`feed`](Session::feed) produced, then close.
    pub fn closing(&self) -> bool {
        self.closing
    }

    /// `*<n>\r\n` then `n` times `$<len>\r\n<len bytes>\r\n`, resumed where
    /// the previous call stopped.
    fn parse_multibulk(&mut self, req: &[u8]) -> Result<Parsed, ProtocolError> {
        let mut p = match self.partial.take() {
            Some(p) => p,
            None => {
                let Some(cr) = find_cr(req, 1) else {
                    return if req.len() > MAX_INLINE {
                        Err(ProtocolError::BigMultibulkCount)
                    } else {
                        Ok(Parsed::Incomplete)
                    };
                };
                if cr + 1 >= req.len() {
                    return Ok(Parsed::Incomplete); // the '\n' is still to come
                }
                let n = parse_i64(&req[1..cr]).ok_or(ProtocolError::MultibulkLength)?;
                if n > MAX_ARGS as i64 {
                    return Err(ProtocolError::MultibulkLength);
                }
                self.args.clear();
                if n <= 0 {
                    // `*0` and `*-1`: nothing to run (as Redis).
                    return Ok(Parsed::Request {
                        len: cr + 2,
                        inline: false,
                    });
                }
                Partial {
                    left: n as usize,
                    pos: cr + 2,
                }
            }
        };
        while p.left > 0 {
            let rest = &req[p.pos..];
            let Some(&first) = rest.first() else {
                self.partial = Some(p);
                return Ok(Parsed::Incomplete);
            };
            if first != b'$' {
                return Err(ProtocolError::ExpectedDollar(first));
            }
            let Some(cr) = find_cr(rest, 1) else {
                if rest.len() > MAX_INLINE {
                    return Err(ProtocolError::BigBulkCount);
                }
                self.partial = Some(p);
                return Ok(Parsed::Incomplete);
            };
            let len = parse_i64(&rest[1..cr])
                .filter(|&n| n >= 0 && n <= MAX_BULK as i64)
                .ok_or(ProtocolError::BulkLength)? as usize;
            // The bulk and its "\r\n" (not checked, as Redis does not).
            let data = cr + 2;
            if rest.len() < data + len + 2 {
                self.partial = Some(p);
                return Ok(Parsed::Incomplete);
            }
            self.args.push(p.pos + data..p.pos + data + len);
            p.pos += data + len + 2;
            p.left -= 1;
        }
        Ok(Parsed::Request {
            len: p.pos,
            inline: false,
        })
    }

    /// A line of space-separated arguments, as Redis splits it
    /// (`sdssplitargs`).
    fn parse_inline(&mut self, req: &[u8]) -> Result<Parsed, ProtocolError> {
        let Some(nl) = req.iter().position(|&b| b == b'\n') else {
            return if req.len() > MAX_INLINE {
                Err(ProtocolError::BigInline)
            } else {
                Ok(Parsed::Incomplete)
            };
        };
        let line = &req[..nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        self.args.clear();
        self.inline.clear();
        split_args(line, &mut self.inline, &mut self.args)?;
        Ok(Parsed::Request {
            len: nl + 1,
            inline: true,
        })
    }
}

/// The first `\r` in `buf` from `from` on.
fn find_cr(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .iter()
        .position(|&b| b == b'\r')
        .map(|i| i + from)
}

/// Splits an inline request into arguments as Redis's `sdssplitargs`:
/// separated by spaces; `"..."` with `\n \r \t \b \a \\ \" \xHH` escapes;
/// `'...'` with `\'`; a closing quote must be followed by a space or the
/// end. The unquoted bytes go to `dst`, their ranges to `ranges`.
fn split_args(
    line: &[u8],
    dst: &mut Vec<u8>,
    ranges: &mut Vec<Range<usize>>,
) -> Result<(), ProtocolError> {
    // C strings end at a NUL; so does an inline request in Redis.
    let line = &line[..line.iter().position(|&b| b == 0).unwrap_or(line.len())];
    let is_space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);
    let hex_at = |j: usize| {
        line.get(j)
            .and_then(|&b| (b as char).to_digit(16))
            .map(|d| d as u8)
    };
    let mut i = 0;
    loop {
        while i < line.len() && is_space(line[i]) {
            i += 1;
        }
        if i == line.len() {
            return Ok(());
        }
        let start = dst.len();
        let (mut in_dq, mut in_sq) = (false, false);
        loop {
            let c = line.get(i).copied();
            if in_dq {
                match c {
                    None => return Err(ProtocolError::UnbalancedQuotes),
                    Some(b'\\')
                        if line.get(i + 1) == Some(&b'x')
                            && let (Some(h), Some(l)) = (hex_at(i + 2), hex_at(i + 3)) =>
                    {
                        dst.push(h * 16 + l);
                        i += 3;
                    }
                    Some(b'\\') if i + 1 < line.len() => {
                        i += 1;
                        dst.push(match line[i] {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 0x08,
                            b'a' => 0x07,
                            other => other,
                        });
                    }
                    Some(b'"') => {
                        if line.get(i + 1).is_some_and(|&b| !is_space(b)) {
                            return Err(ProtocolError::UnbalancedQuotes);
                        }
                        i += 1;
                        break;
                    }
                    Some(b) => dst.push(b),
                }
            } else if in_sq {
                match c {
                    None => return Err(ProtocolError::UnbalancedQuotes),
                    Some(b'\\') if line.get(i + 1) == Some(&b'\'') => {
                        dst.push(b'\'');
                        i += 1;
                    }
                    Some(b'\'') => {
                        if line.get(i + 1).is_some_and(|&b| !is_space(b)) {
                            return Err(ProtocolError::UnbalancedQuotes);
                        }
                        i += 1;
                        break;
                    }
                    Some(b) => dst.push(b),
                }
            } else {
                match c {
                    None | Some(b' ' | b'\n' | b'\r' | b'\t') => break,
                    Some(b'"') => in_dq = true,
                    Some(b'\'') => in_sq = true,
                    Some(b) => dst.push(b),
                }
            }
            i += 1;
        }
        ranges.push(start..dst.len());
    }
}

/// A request's arguments, the command name first.
pub struct Args<'a> {
    src: &'a [u8],
    ranges: &'a [Range<usize>],
}

impl<'a> Args<'a> {
    /// How many arguments, the command name included.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Whether there are none (never, for a request that runs).
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Argument `i` (0: the command name).
    pub fn get(&self, i: usize) -> &'a [u8] {
        &self.src[self.ranges[i].clone()]
    }

    /// Arguments from `from` on.
    fn rest(&self, from: usize) -> impl Iterator<Item = &'a [u8]> + '_ {
        (from..self.len()).map(|i| self.get(i))
    }
}

/// Whether the connection goes on after a command.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Close,
}

/// The commands understood.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmd {
    Ping,
    Echo,
    Get,
    Set,
    Del,
    Exists,
    MGet,
    MSet,
    Incr,
    Decr,
    IncrBy,
    DecrBy,
    Ttl,
    PTtl,
    DbSize,
    FlushDb,
    FlushAll,
    Select,
    Config,
    Command,
    Quit,
}

impl Cmd {
    fn lookup(name: &[u8]) -> Option<Cmd> {
        let mut upper = [0u8; 8];
        let upper = upper.get_mut(..name.len())?;
        upper.copy_from_slice(name);
        upper.make_ascii_uppercase();
        Some(match &*upper {
            b"GET" => Cmd::Get,
            b"SET" => Cmd::Set,
            b"PING" => Cmd::Ping,
            b"ECHO" => Cmd::Echo,
            b"DEL" => Cmd::Del,
            b"EXISTS" => Cmd::Exists,
            b"MGET" => Cmd::MGet,
            b"MSET" => Cmd::MSet,
            b"INCR" => Cmd::Incr,
            b"DECR" => Cmd::Decr,
            b"INCRBY" => Cmd::IncrBy,
            b"DECRBY" => Cmd::DecrBy,
            b"TTL" => Cmd::Ttl,
            b"PTTL" => Cmd::PTtl,
            b"DBSIZE" => Cmd::DbSize,
            b"FLUSHDB" => Cmd::FlushDb,
            b"FLUSHALL" => Cmd::FlushAll,
            b"SELECT" => Cmd::Select,
            b"CONFIG" => Cmd::Config,
            b"COMMAND" => Cmd::Command,
            b"QUIT" => Cmd::Quit,
            _ => return None,
        })
    }

    /// The name in error messages, and Redis's arity: `n` arguments
    /// exactly (the name included), or at least `-n`.
    fn spec(self) -> (&'static str, i32) {
        match self {
            Cmd::Ping => ("ping", -1),
            Cmd::Echo => ("echo", 2),
            Cmd::Get => ("get", 2),
            Cmd::Set => ("set", -3),
            Cmd::Del => ("del", -2),
            Cmd::Exists => ("exists", -2),
            Cmd::MGet => ("mget", -2),
            Cmd::MSet => ("mset", -3),
            Cmd::Incr => ("incr", 2),
            Cmd::Decr => ("decr", 2),
            Cmd::IncrBy => ("incrby", 3),
            Cmd::DecrBy => ("decrby", 3),
            Cmd::Ttl => ("ttl", 2),
            Cmd::PTtl => ("pttl", 2),
            Cmd::DbSize => ("dbsize", 1),
            Cmd::FlushDb => ("flushdb", -1),
            Cmd::FlushAll => ("flushall", -1),
            Cmd::Select => ("select", 2),
            Cmd::Config => ("config", -2),
            Cmd::Command => ("command", -1),
            Cmd::Quit => ("quit", -1),
        }
    }
}

const NOT_INTEGER: &str = "ERR value is not an integer or out of range";

/// Runs one request, appending its reply to `out`.
fn execute(args: &Args<'_>, store: &Store, out: &mut Vec<u8>) -> Flow {
    let Some(cmd) = Cmd::lookup(args.get(0)) else {
        unknown_command(args, out);
        return Flow::Continue;
    };
    let (name, arity) = cmd.spec();
    let n = args.len();
    let arity_ok = if arity >= 0 {
        n == arity as usize
    } else {
        n >= arity.unsigned_abs() as usize
    };
    // Extra shapes Redis checks in the command itself.
    let shape_ok = match cmd {
        Cmd::Ping => n <= 2,
        Cmd::MSet => n % 2 == 1,
        Cmd::FlushDb | Cmd::FlushAll => n <= 2,
        _ => true,
    };
    if !arity_ok || !shape_ok {
        wrong_arity(name, out);
        return Flow::Continue;
    }
    match cmd {
        Cmd::Ping if n == 1 => out.extend_from_slice(b"+PONG\r\n"),
        Cmd::Ping | Cmd::Echo => bulk(out, args.get(1)),
        Cmd::Get => store.get_with(args.get(1), |v| match v {
            Some(v) => bulk(out, v),
            None => nil(out),
        }),
        Cmd::Set => return set(args, store, out),
        Cmd::Del => int(out, args.rest(1).filter(|k| store.del(k)).count() as i64),
        Cmd::Exists => int(out, args.rest(1).filter(|k| store.exists(k)).count() as i64),
        Cmd::MGet => {
            array(out, n - 1);
            for k in args.rest(1) {
                store.get_with(k, |v| match v {
                    Some(v) => bulk(out, v),
                    None => nil(out),
                });
            }
        }
        Cmd::MSet => {
            for i in (1..n).step_by(2) {
                store.set(args.get(i), args.get(i + 1), Cond::Always, Expiry::Clear);
            }
            ok(out);
        }
        Cmd::Incr | Cmd::Decr | Cmd::IncrBy | Cmd::DecrBy => {
            let delta = match cmd {
                Cmd::Incr => 1,
                Cmd::Decr => -1,
                _ => match parse_i64(args.get(2)) {
                    None => return error(out, NOT_INTEGER),
                    Some(i64::MIN) if cmd == Cmd::DecrBy => {
                        return error(out, "ERR decrement would overflow");
                    }
                    Some(d) if cmd == Cmd::DecrBy => -d,
                    Some(d) => d,
                },
            };
            match store.incr_by(args.get(1), delta) {
                Ok(v) => int(out, v),
                Err(IncrError::NotInteger) => return error(out, NOT_INTEGER),
                Err(IncrError::Overflow) => {
                    return error(out, "ERR increment or decrement would overflow");
                }
            }
        }
        Cmd::Ttl | Cmd::PTtl => int(
            out,
            match store.ttl_ms(args.get(1)) {
                None => -2,
                Some(None) => -1,
                Some(Some(ms)) if cmd == Cmd::Ttl => (ms.saturating_add(500) / 1000) as i64,
                Some(Some(ms)) => ms.min(i64::MAX as u64) as i64,
            },
        ),
        Cmd::DbSize => int(out, store.len() as i64),
        Cmd::FlushDb | Cmd::FlushAll => {
            let mode_ok = n == 1
                || args.get(1).eq_ignore_ascii_case(b"SYNC")
                || args.get(1).eq_ignore_ascii_case(b"ASYNC");
            if !mode_ok {
                return error(out, "ERR syntax error");
            }
            store.clear();
            ok(out);
        }
        Cmd::Select => match parse_i64(args.get(1)) {
            None => return error(out, NOT_INTEGER),
            Some(0) => ok(out),
            Some(_) => return error(out, "ERR DB index is out of range"),
        },
        Cmd::Config => return config(args, out),
        // What redis-cli asks for its hints: it copes with an empty list.
        Cmd::Command => array(out, 0),
        Cmd::Quit => {
            ok(out);
            return Flow::Close;
        }
    }
    Flow::Continue
}

/// `SET key value [NX|XX] [EX seconds|PX milliseconds|KEEPTTL]`, with
/// Redis's checks in Redis's order: the options' syntax first, then the
/// expire time.
fn set(args: &Args<'_>, store: &Store, out: &mut Vec<u8>) -> Flow {
    let mut cond = Cond::Always;
    let mut keep_ttl = false;
    let mut expire: Option<(&[u8], u64)> = None; // (value, ms per unit)
    let mut i = 3;
    while i < args.len() {
        let opt = args.get(i);
        let next = (i + 1 < args.len()).then(|| args.get(i + 1));
        if opt.eq_ignore_ascii_case(b"NX") && cond != Cond::IfPresent {
            cond = Cond::IfAbsent;
        } else if opt.eq_ignore_ascii_case(b"XX") && cond != Cond::IfAbsent {
            cond = Cond::IfPresent;
        } else if opt.eq_ignore_ascii_case(b"KEEPTTL") && expire.is_none() {
            keep_ttl = true;
        } else if let (Some(v), false, None) = (next, keep_ttl, expire)
            && (opt.eq_ignore_ascii_case(b"EX") || opt.eq_ignore_ascii_case(b"PX"))
        {
            let unit = if opt.eq_ignore_ascii_case(b"EX") {
                1000
            } else {
                1
            };
            expire = Some((v, unit));
            i += 1;
        } else {
            return error(out, "ERR syntax error");
        }
        i += 1;
    }
    let expiry = match expire {
        None if keep_ttl => Expiry::Keep,
        None => Expiry::Clear,
        Some((v, unit)) => {
            let Some(n) = parse_i64(v) else {
                return error(out, NOT_INTEGER);
            };
            // Positive, and its deadline representable (Redis: in signed
            // 64-bit milliseconds).
            let at = u64::try_from(n)
                .ok()
                .filter(|&n| n > 0)
                .and_then(|n| n.checked_mul(unit))
                .and_then(|ms| ms.checked_add(store.now_ms()))
                .filter(|&at| at <= i64::MAX as u64);
            match at {
                Some(at) => Expiry::At(at),
                None => return error(out, "ERR invalid expire time in 'set' command"),
            }
        }
    };
    if store.set(args.get(1), args.get(2), cond, expiry) {
        ok(out);
    } else {
        nil(out);
    }
    Flow::Continue
}

/// `CONFIG GET parameter...`: redis-benchmark asks for `save` and
/// `appendonly` when it starts; nothing is saved here.
fn config(args: &Args<'_>, out: &mut Vec<u8>) -> Flow {
    const PARAMS: [(&str, &str); 2] = [("save", ""), ("appendonly", "no")];
    let sub = args.get(1);
    if !sub.eq_ignore_ascii_case(b"GET") {
        let msg = format!(
            "ERR unknown subcommand '{}'. Try CONFIG HELP.",
            String::from_utf8_lossy(&sub[..sub.len().min(128)])
        );
        return error(out, &msg);
    }
    if args.len() < 3 {
        wrong_arity("config|get", out);
        return Flow::Continue;
    }
    let found: Vec<_> = PARAMS
        .iter()
        .filter(|(name, _)| {
            args.rest(2)
                .any(|p| p == b"*" || p.eq_ignore_ascii_case(name.as_bytes()))
        })
        .collect();
    array(out, 2 * found.len());
    for (name, value) in found {
        bulk(out, name.as_bytes());
        bulk(out, value.as_bytes());
    }
    Flow::Continue
}

/// Redis 7's message: the name and the first arguments, 128 bytes at most.
fn unknown_command(args: &Args<'_>, out: &mut Vec<u8>) {
    let name = args.get(0);
    let mut msg = format!(
        "ERR unknown command '{}', with args beginning with: ",
        String::from_utf8_lossy(&name[..name.len().min(128)])
    );
    let mut listed = String::new();
    for a in args.rest(1) {
        if listed.len() >= 128 {
            break;
        }
        let room = 128 - listed.len();
        listed.push('\'');
        listed.push_str(&String::from_utf8_lossy(&a[..a.len().min(room)]));
        listed.push_str("' ");
    }
    msg.push_str(&listed);
    error(out, &msg);
}

fn wrong_arity(name: &str, out: &mut Vec<u8>) {
    error(
        out,
        &format!("ERR wrong number of arguments for '{name}' command"),
    );
}

// ---------------------------------------------------------------------
// Replies

fn ok(out: &mut Vec<u8>) {
    out.extend_from_slice(b"+OK\r\n");
}

/// An error reply; newlines in it become spaces, as Redis makes them.
fn error(out: &mut Vec<u8>, msg: &str) -> Flow {
    out.push(b'-');
    out.extend(
        msg.bytes()
            .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
    out.extend_from_slice(b"\r\n");
    Flow::Continue
}

fn int(out: &mut Vec<u8>, n: i64) {
    out.push(b':');
    push_int(out, n);
    out.extend_from_slice(b"\r\n");
}

fn bulk(out: &mut Vec<u8>, v: &[u8]) {
    out.push(b'$');
    push_int(out, v.len() as i64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(v);
    out.extend_from_slice(b"\r\n");
}

fn nil(out: &mut Vec<u8>) {
    out.extend_from_slice(b"$-1\r\n");
}

fn array(out: &mut Vec<u8>, n: usize) {
    out.push(b'*');
    push_int(out, n as i64);
    out.extend_from_slice(b"\r\n");
}

/// Appends `n` in decimal.
fn push_int(out: &mut Vec<u8>, n: i64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut v = n.unsigned_abs();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[i..]);
}

/// A decimal 64-bit integer as Redis reads one (`string2ll`): an optional
/// `-`, no `+`, no spaces, no leading zeros.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    match digits {
        [b'0'] if !neg => return Some(0),
        [b'1'..=b'9', ..] if digits.len() <= 19 => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if neg {
        0i64.checked_sub_unsigned(v)
    } else {
        i64::try_from(v).ok()
    }
}

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:6380".to_string());
    gort::run(move || {
        let listener = TcpListener::bind(&addr)?;
        let local = listener.local_addr()?;
        eprintln!(
            "kv_server: listening on {local} with {} Ps (redis-cli -p {})",
            gort::procs(),
            local.port()
        );
        serve(&listener, Arc::new(Store::new()))
    })
}
