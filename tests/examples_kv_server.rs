//! The kv_server example: the RESP state machine on its own (any slicing of
//! the input gives the same replies; protocol errors; expiry on an
//! injected clock), then the server over real TCP: every command,
//! pipelining, inline commands, expiry on the real clock, protocol errors
//! closing the connection, a big value, and many coroutines incrementing
//! one key. Clients are std TcpStreams (and gort ones in coroutines);
//! their read timeouts are watchdogs only.

mod support;

#[path = "../examples/kv_server.rs"]
#[allow(dead_code)]
mod kv_server;

use std::{
    io::{Read, Write},
    net::TcpStream,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};
use support::ExampleServer as Server;

use kv_server::{Cond, Expiry, IncrError, Session, Store, parse_i64};

// ---------------------------------------------------------------------
// A RESP client

/// One reply.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

use Reply::{Array, Bulk, Error, Int, Simple};

fn ok() -> Reply {
    Simple("OK".into())
}

fn bulk(v: &str) -> Reply {
    Bulk(Some(v.as_bytes().to_vec()))
}

fn nil() -> Reply {
    Bulk(None)
}

fn err(msg: &str) -> Reply {
    Error(msg.into())
}

/// Parses one reply from the start of `buf`; `None` if incomplete.
fn parse_reply(buf: &[u8]) -> Option<(Reply, usize)> {
    let cr = buf.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&buf[1..cr]).expect("a UTF-8 reply line");
    let next = cr + 2;
    let reply = match buf[0] {
        b'+' => Simple(line.into()),
        b'-' => Error(line.into()),
        b':' => Int(line.parse().expect("an integer reply")),
        b'$' => {
            let n: i64 = line.parse().expect("a bulk length");
            if n < 0 {
                return Some((nil(), next));
            }
            let n = n as usize;
            if buf.len() < next + n + 2 {
                return None;
            }
            assert_eq!(&buf[next + n..next + n + 2], b"\r\n", "a bulk's CRLF");
            return Some((Bulk(Some(buf[next..next + n].to_vec())), next + n + 2));
        }
        b'*' => {
            let n: i64 = line.parse().expect("an array length");
            if n < 0 {
                return Some((Array(None), next));
            }
            let mut items = Vec::new();
            let mut at = next;
            for _ in 0..n {
                let (r, len) = parse_reply(&buf[at..])?;
                items.push(r);
                at += len;
            }
            return Some((Array(Some(items)), at));
        }
        other => panic!("not a reply: {:?}", other as char),
    };
    Some((reply, next))
}

/// Every reply in `out` (which holds whole replies only).
fn parse_all(mut out: &[u8]) -> Vec<Reply> {
    let mut rs = Vec::new();
    while !out.is_empty() {
        let (r, n) = parse_reply(out).expect("a complete reply");
        rs.push(r);
        out = &out[n..];
    }
    rs
}

/// A request in RESP's multibulk form.
fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        v.extend_from_slice(a);
        v.extend_from_slice(b"\r\n");
    }
    v
}

/// `encode` of a command written as words (no spaces inside arguments).
fn cmd(words: &str) -> Vec<u8> {
    let args: Vec<&[u8]> = words.split(' ').map(str::as_bytes).collect();
    encode(&args)
}

/// A client connection with its unparsed input: std's TcpStream from a
/// test thread, or gort's from a coroutine.
struct Conn<S> {
    s: S,
    buf: Vec<u8>,
}

impl<S: Read + Write> Conn<S> {
    fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
    }

    /// Reads until one whole reply is in, and parses it.
    fn reply(&mut self) -> Reply {
        loop {
            if let Some((r, n)) = parse_reply(&self.buf) {
                self.buf.drain(..n);
                return r;
            }
            let mut chunk = [0u8; 16 * 1024];
            match self.s.read(&mut chunk) {
                Ok(0) => panic!(
                    "EOF before a whole reply: {:?}",
                    String::from_utf8_lossy(&self.buf)
                ),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("reading a reply: {e} (a stall?)"),
            }
        }
    }

    /// Sends a command given as words, returns its reply.
    fn call(&mut self, words: &str) -> Reply {
        self.send(&cmd(words));
        self.reply()
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
            Err(e) => panic!("no EOF: {e}"),
        }
    }
}

// ---------------------------------------------------------------------
// The session, without I/O

/// A store on a clock the test moves.
fn manual_store() -> (Store, Arc<AtomicU64>) {
    let now = Arc::new(AtomicU64::new(1_000));
    let n = now.clone();
    (
        Store::with_clock(Box::new(move || n.load(Ordering::SeqCst))),
        now,
    )
}

/// Feeds `input` in pieces of `step` bytes, as reads would deliver it
/// (keeping the unconsumed rest, as the connection loop does), to a fresh
/// session over `store`.
fn feed_in_steps(store: &Store, input: &[u8], step: usize) -> (Vec<u8>, bool) {
    let mut s = Session::default();
    let mut out = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    for chunk in input.chunks(step) {
        pending.extend_from_slice(chunk);
        let used = s.feed(&pending, store, &mut out);
        pending.drain(..used);
        if s.closing() {
            break;
        }
    }
    (out, s.closing())
}

/// The replies to `input` fed whole to a fresh session over `store`.
fn run(store: &Store, input: &[u8]) -> Vec<Reply> {
    let (out, _) = feed_in_steps(store, input, input.len().max(1));
    parse_all(&out)
}

/// Requests given as words, one per line, in multibulk form.
fn cmds(lines: &[&str]) -> Vec<u8> {
    lines.iter().flat_map(|l| cmd(l)).collect()
}

#[test]
fn pipeline_any_slicing() {
    let mut input = cmds(&["SET k v", "GET k", "INCR n", "INCR n"]);
    input.extend_from_slice(b"PING\r\nECHO \"two words\"\r\n\r\n*0\r\n");
    input.extend_from_slice(&encode(&[b"SET", b"bin\r\n\0", &[0xff; 300]]));
    input.extend_from_slice(&cmds(&[
        "GET bin\r\n\0",
        "MGET k n missing",
        "DEL k n missing",
    ]));
    let expected = vec![
        ok(),
        bulk("v"),
        Int(1),
        Int(2),
        Simple("PONG".into()),
        bulk("two words"),
        ok(),
        Bulk(Some(vec![0xff; 300])),
        Array(Some(vec![bulk("v"), bulk("2"), nil()])),
        Int(2),
    ];
    let (whole, closing) = feed_in_steps(&Store::new(), &input, input.len());
    assert!(!closing);
    assert_eq!(parse_all(&whole), expected);
    // Any cut of the byte stream gives the very same bytes out.
    for step in [1, 2, 3, 5, 7, 13, 64, 100] {
        assert_eq!(
            feed_in_steps(&Store::new(), &input, step),
            (whole.clone(), false),
            "step {step}"
        );
    }
}

#[test]
fn protocol_errors() {
    for (input, msg) in [
        (&b"*x\r\n"[..], "invalid multibulk length"),
        (b"*2000000\r\n", "invalid multibulk length"),
        (b"*1\r\nGET\r\n", "expected '$', got 'G'"),
        (b"*1\r\n$x\r\n", "invalid bulk length"),
        (b"*1\r\n$-1\r\n", "invalid bulk length"),
        (b"*1\r\n$999999999999\r\n", "invalid bulk length"),
        (b"SET a \"b c\r\n", "unbalanced quotes in request"),
        (b"SET a 'b'c\r\n", "unbalanced quotes in request"),
    ] {
        for step in [1, input.len()] {
            let mut good = cmd("PING");
            good.extend_from_slice(input);
            good.extend_from_slice(&cmd("PING")); // never answered
            let (out, closing) = feed_in_steps(&Store::new(), &good, step);
            assert!(closing, "{:?}", String::from_utf8_lossy(input));
            assert_eq!(
                parse_all(&out),
                [
                    Simple("PONG".into()),
                    err(&format!("ERR Protocol error: {msg}"))
                ],
                "{:?} step {step}",
                String::from_utf8_lossy(input)
            );
        }
    }
    // Lines too long without a newline.
    for (prefix, msg) in [
        (&b""[..], "too big inline request"),
        (b"*", "too big mbulk count string"),
        (b"*1\r\n$", "too big bulk count string"),
    ] {
        let mut input = prefix.to_vec();
        input.resize(prefix.len() + kv_server::MAX_INLINE + 10, b'1');
        let (out, closing) = feed_in_steps(&Store::new(), &input, 4096);
        assert!(closing);
        assert_eq!(
            parse_all(&out),
            [err(&format!("ERR Protocol error: {msg}"))]
        );
    }
    // QUIT: OK, then nothing more.
    let mut input = cmds(&["PING", "QUIT", "PING"]);
    input.extend_from_slice(b"*x\r\n");
    let (out, closing) = feed_in_steps(&Store::new(), &input, 3);
    assert!(closing);
    assert_eq!(parse_all(&out), [Simple("PONG".into()), ok()]);
}

#[test]
fn inline_commands() {
    let store = Store::new();
    let rs = run(
        &store,
        b"PING\r\nping hello\nSET  k   \"a \\\"quoted\\\" \\x41\\n\"  \r\nGET k\r\n\
          set k2 'it\\'s'\r\nGET k2\r\n   \r\nMGET k2 nokey\r\n",
    );
    assert_eq!(
        rs,
        [
            Simple("PONG".into()),
            bulk("hello"),
            ok(),
            bulk("a \"quoted\" A\n"),
            ok(),
            bulk("it's"),
            Array(Some(vec![bulk("it's"), nil()])),
        ]
    );
}

#[test]
fn wrong_types_and_arguments() {
    let store = Store::new();
    let arity = |name: &str| {
        err(&format!(
            "ERR wrong number of arguments for '{name}' command"
        ))
    };
    let not_int = err("ERR value is not an integer or out of range");
    let syntax = err("ERR syntax error");
    let bad_expire = err("ERR invalid expire time in 'set' command");
    let input = cmds(&[
        "GET",
        "GET a b",
        "SET k",
        "PING a b",
        "ECHO",
        "DEL",
        "EXISTS",
        "MGET",
        "MSET a",
        "MSET a 1 b",
        "INCR",
        "INCRBY n",
        "TTL",
        "SELECT",
        "CONFIG",
        "CONFIG GET",
        "SET s text",
        "INCR s",
        "INCRBY s 1",
        "INCRBY n x",
        "INCRBY n 1.5",
        "DECRBY n -9223372036854775808",
        "SET big 9223372036854775807",
        "INCR big",
        "SET small -9223372036854775808",
        "DECR small",
        "SET z 007",
        "INCR z",
        "SET k v EX",
        "SET k v EX x",
        "SET k v EX 0",
        "SET k v PX -5",
        "SET k v EX 9223372036854776",
        "SET k v NX XX",
        "SET k v EX 1 PX 1",
        "SET k v EX 1 KEEPTTL",
        "SET k v GET",
        "SELECT 1",
        "SELECT x",
        "FLUSHALL NOW",
        "CONFIG SET save x",
        "NOSUCH a b",
        "s",
    ]);
    assert_eq!(
        run(&store, &input),
        [
            arity("get"),
            arity("get"),
            arity("set"),
            arity("ping"),
            arity("echo"),
            arity("del"),
            arity("exists"),
            arity("mget"),
            arity("mset"),
            arity("mset"),
            arity("incr"),
            arity("incrby"),
            arity("ttl"),
            arity("select"),
            arity("config"),
            arity("config|get"),
            ok(),
            not_int.clone(),
            not_int.clone(),
            not_int.clone(),
            not_int.clone(),
            err("ERR decrement would overflow"),
            ok(),
            err("ERR increment or decrement would overflow"),
            ok(),
            err("ERR increment or decrement would overflow"),
            ok(),
            not_int.clone(),
            syntax.clone(),
            not_int.clone(),
            bad_expire.clone(),
            bad_expire.clone(),
            bad_expire,
            syntax.clone(),
            syntax.clone(),
            syntax.clone(),
            syntax.clone(),
            err("ERR DB index is out of range"),
            not_int,
            syntax,
            err("ERR unknown subcommand 'SET'. Try CONFIG HELP."),
            err("ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' "),
            err("ERR unknown command 's', with args beginning with: "),
        ]
    );
    // The failed commands changed nothing.
    assert_eq!(
        run(&store, &cmds(&["MGET s n big small z k", "DBSIZE"])),
        [
            Array(Some(vec![
                bulk("text"),
                nil(),
                bulk("9223372036854775807"),
                bulk("-9223372036854775808"),
                bulk("007"),
                nil()
            ])),
            Int(4)
        ]
    );
    // A newline in an error message becomes a space.
    assert_eq!(
        run(&store, &encode(&[b"NO\r\nSUCH"])),
        [err(
            "ERR unknown command 'NO  SUCH', with args beginning with: "
        )]
    );
}

#[test]
fn integers_as_redis_reads_them() {
    for (s, v) in [
        ("0", Some(0)),
        ("-1", Some(-1)),
        ("42", Some(42)),
        ("9223372036854775807", Some(i64::MAX)),
        ("-9223372036854775808", Some(i64::MIN)),
        ("9223372036854775808", None),
        ("-9223372036854775809", None),
        ("-0", None),
        ("007", None),
        ("+1", None),
        (" 1", None),
        ("1 ", None),
        ("", None),
        ("-", None),
        ("1e3", None),
    ] {
        assert_eq!(parse_i64(s.as_bytes()), v, "{s:?}");
    }
}

#[test]
fn expiry_on_an_injected_clock() {
    let (store, now) = manual_store();
    let advance = |ms: u64| now.fetch_add(ms, Ordering::SeqCst);
    let rs = run(
        &store,
        &cmds(&[
            "SET a 1 PX 100",
            "SET b 2 EX 2",
            "SET c 3",
            "PTTL a",
            "TTL b",
            "TTL c",
            "TTL zz",
        ]),
    );
    assert_eq!(rs, [ok(), ok(), ok(), Int(100), Int(2), Int(-1), Int(-2)]);
    advance(99);
    assert_eq!(
        run(&store, &cmds(&["GET a", "PTTL a", "INCR a", "PTTL a"])),
        [bulk("1"), Int(1), Int(2), Int(1)], // INCR keeps the time to live
    );
    advance(1);
    assert_eq!(
        run(&store, &cmds(&["GET a", "EXISTS a b", "PTTL a", "TTL b"])),
        [nil(), Int(1), Int(-2), Int(2)] // TTL rounds, as Redis: 1.9 s is 2
    );
    // KEEPTTL keeps it; a plain SET clears it; XX on an expired key fails
    // and NX succeeds.
    assert_eq!(
        run(
            &store,
            &cmds(&[
                "SET b 3 KEEPTTL",
                "PTTL b",
                "SET c 4 EX 1",
                "SET c 5",
                "TTL c"
            ])
        ),
        [ok(), Int(1900), ok(), ok(), Int(-1)]
    );
    advance(1900);
    assert_eq!(
        run(
            &store,
            &cmds(&["SET b x XX", "GET b", "SET b y NX", "GET b", "TTL b"])
        ),
        [nil(), nil(), ok(), bulk("y"), Int(-1)]
    );
    // INCR on an expired key starts from 0, without a time to live.
    assert_eq!(
        run(&store, &cmds(&["SET n 41 PX 5", "INCR n"])),
        [ok(), Int(42)]
    );
    advance(5);
    assert_eq!(run(&store, &cmds(&["INCR n", "PTTL n"])), [Int(1), Int(-1)]);

    // The sweeper's work: expired keys go without being touched.
    assert!(store.set(b"x", b"1", Cond::Always, Expiry::At(store.now_ms() + 10)));
    for i in 0..1000 {
        let key = format!("e{i}");
        let at = store.now_ms() + if i % 2 == 0 { 10 } else { 1_000_000 };
        assert!(store.set(key.as_bytes(), b"v", Cond::Always, Expiry::At(at)));
    }
    let before = store.len();
    advance(10);
    assert_eq!(store.len(), before, "nothing removed until swept");
    let removed: usize = (0..kv_server::SHARDS)
        .step_by(kv_server::SWEEP_SHARDS)
        .map(|first| store.sweep(first, kv_server::SWEEP_SHARDS))
        .sum();
    assert_eq!(removed, 501);
    assert_eq!(store.len(), before - 501);
    assert_eq!(store.sweep(0, kv_server::SHARDS), 0);
    assert!(store.exists(b"e1") && !store.exists(b"e0"));
}

#[test]
fn store_api() {
    let store = Store::new();
    assert!(store.set(b"k", b"v", Cond::IfAbsent, Expiry::Clear));
    assert!(!store.set(b"k", b"w", Cond::IfAbsent, Expiry::Clear));
    assert!(store.set(b"k", b"w", Cond::IfPresent, Expiry::Keep));
    assert!(!store.set(b"j", b"w", Cond::IfPresent, Expiry::Clear));
    assert_eq!(
        store.get_with(b"k", |v| v.map(<[u8]>::to_vec)),
        Some(b"w".to_vec())
    );
    assert_eq!(store.incr_by(b"k", 1), Err(IncrError::NotInteger));
    assert_eq!(store.incr_by(b"i", -5), Ok(-5));
    assert_eq!(store.incr_by(b"i", i64::MIN), Err(IncrError::Overflow));
    assert_eq!(store.ttl_ms(b"i"), Some(None));
    assert_eq!(store.ttl_ms(b"nope"), None);
    assert!(store.del(b"k") && !store.del(b"k"));
    assert_eq!(store.len(), 1);
    store.clear();
    assert!(store.is_empty());
}

// ---------------------------------------------------------------------
// Over TCP

/// A client connection to the example's server.
fn connect(server: &Server) -> Conn<TcpStream> {
    Conn {
        s: server.connect_std(),
        buf: Vec::new(),
    }
}

fn start() -> Server {
    Server::start(|l| kv_server::serve(l, Arc::new(Store::new())))
}

#[test]
fn tcp_every_command() {
    support::with_timeout(60, || {
        let server = start();
        let mut c = connect(&server);
        assert_eq!(c.call("PING"), Simple("PONG".into()));
        assert_eq!(c.call("PING hi"), bulk("hi"));
        assert_eq!(c.call("ECHO hello"), bulk("hello"));
        assert_eq!(c.call("GET k"), nil());
        assert_eq!(c.call("SET k v1"), ok());
        assert_eq!(c.call("GET k"), bulk("v1"));
        assert_eq!(c.call("set k v2"), ok()); // names are case-insensitive
        assert_eq!(c.call("get k"), bulk("v2"));
        assert_eq!(c.call("SET k v3 NX"), nil());
        assert_eq!(c.call("SET other v XX"), nil());
        assert_eq!(c.call("SET t v EX 100"), ok());
        let Int(ttl) = c.call("TTL t") else { panic!() };
        assert!((99..=100).contains(&ttl), "{ttl}");
        let Int(pttl) = c.call("PTTL t") else {
            panic!()
        };
        assert!((90_000..=100_000).contains(&pttl), "{pttl}");
        assert_eq!(c.call("SET p v PX 100000"), ok());
        assert_eq!(c.call("EXISTS k t p nope k"), Int(4));
        assert_eq!(c.call("MSET a 1 b 2"), ok());
        assert_eq!(
            c.call("MGET a nope b"),
            Array(Some(vec![bulk("1"), nil(), bulk("2")]))
        );
        assert_eq!(c.call("INCR a"), Int(2));
        assert_eq!(c.call("INCR fresh"), Int(1));
        assert_eq!(c.call("INCRBY fresh 10"), Int(11));
        assert_eq!(c.call("DECR fresh"), Int(10));
        assert_eq!(c.call("DECRBY fresh 20"), Int(-10));
        assert_eq!(c.call("DBSIZE"), Int(6));
        assert_eq!(c.call("DEL a b nope"), Int(2));
        assert_eq!(c.call("DEL a"), Int(0));
        assert_eq!(c.call("SELECT 0"), ok());
        // What redis-benchmark and redis-cli ask when they start.
        assert_eq!(
            c.call("CONFIG GET save"),
            Array(Some(vec![bulk("save"), bulk("")]))
        );
        assert_eq!(
            c.call("CONFIG GET appendonly"),
            Array(Some(vec![bulk("appendonly"), bulk("no")]))
        );
        assert_eq!(c.call("CONFIG GET maxmemory"), Array(Some(vec![])));
        assert_eq!(c.call("COMMAND DOCS"), Array(Some(vec![])));
        assert_eq!(c.call("COMMAND"), Array(Some(vec![])));
        assert_eq!(
            c.call("HELLO 3"),
            err("ERR unknown command 'HELLO', with args beginning with: '3' ")
        );
        assert_eq!(c.call("FLUSHALL"), ok());
        assert_eq!(c.call("DBSIZE"), Int(0));
        // A binary-safe key and value.
        c.send(&encode(&[b"SET", b"\0\r\n", b"\r\n\0"]));
        assert_eq!(c.reply(), ok());
        c.send(&encode(&[b"GET", b"\0\r\n"]));
        assert_eq!(c.reply(), Bulk(Some(b"\r\n\0".to_vec())));
        // A second connection sees the same data.
        let mut d = connect(&server);
        assert_eq!(d.call("DBSIZE"), Int(1));
        // QUIT: OK, then the server closes.
        assert_eq!(c.call("QUIT"), ok());
        c.expect_eof();
        assert_eq!(d.call("PING"), Simple("PONG".into()));
        drop(d);
        server.stop();
    });
}

#[test]
fn tcp_pipelining() {
    support::with_timeout(60, || {
        let server = start();
        let mut c = connect(&server);
        // 100 commands in one write, answered in order: each reply names
        // its request.
        let mut batch = Vec::new();
        let mut expected = Vec::new();
        for i in 0..100 {
            match i % 4 {
                0 => {
                    batch.extend_from_slice(&cmd(&format!("SET key{i} value{i}")));
                    expected.push(ok());
                }
                1 => {
                    batch.extend_from_slice(&cmd(&format!("GET key{}", i - 1)));
                    expected.push(bulk(&format!("value{}", i - 1)));
                }
                2 => {
                    batch.extend_from_slice(&cmd("INCR counter"));
                    expected.push(Int(i / 4 + 1));
                }
                _ => {
                    batch.extend_from_slice(format!("ECHO {i}\r\n").as_bytes()); // inline
                    expected.push(bulk(&i.to_string()));
                }
            }
        }
        c.send(&batch);
        let got: Vec<Reply> = (0..100).map(|_| c.reply()).collect();
        assert_eq!(got, expected);

        // A pipeline cut anywhere across writes, with pauses between them
        // (so the server reads the pieces separately).
        let pipeline = cmds(&["SET cut abcdefghij", "GET cut", "APPEND cut x", "GET cut"]);
        for cut in [1, 5, 13, 22, 30, pipeline.len() - 1] {
            c.send(&pipeline[..cut]);
            std::thread::sleep(Duration::from_millis(5));
            c.send(&pipeline[cut..]);
            assert_eq!(c.reply(), ok());
            assert_eq!(c.reply(), bulk("abcdefghij"));
            assert!(matches!(c.reply(), Error(e) if e.starts_with("ERR unknown command 'APPEND'")));
            assert_eq!(c.reply(), bulk("abcdefghij"), "cut at {cut}");
        }
        server.stop();
    });
}

#[test]
fn tcp_inline_and_big_values() {
    support::with_timeout(60, || {
        let server = start();
        let mut c = connect(&server);
        // Inline, as typed into telnet (or sent by PING_INLINE).
        c.send(b"PING\r\nSET greeting \"hello world\"\r\nGET greeting\nEXISTS greeting nope\r\n");
        assert_eq!(c.reply(), Simple("PONG".into()));
        assert_eq!(c.reply(), ok());
        assert_eq!(c.reply(), bulk("hello world"));
        assert_eq!(c.reply(), Int(1));
        // A value far larger than the read buffer, both ways.
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        c.send(&encode(&[b"SET", b"big", &big]));
        assert_eq!(c.reply(), ok());
        c.send(&encode(&[b"GET", b"big"]));
        assert_eq!(c.reply(), Bulk(Some(big.clone())));
        c.send(&encode(&[b"MGET", b"big", b"big"]));
        assert_eq!(
            c.reply(),
            Array(Some(vec![Bulk(Some(big.clone())), Bulk(Some(big))]))
        );
        assert_eq!(c.call("PING"), Simple("PONG".into()));
        server.stop();
    });
}

#[test]
fn tcp_protocol_error_closes() {
    support::with_timeout(60, || {
        let server = start();
        for (bad, msg) in [
            (&b"*1\r\n$x\r\n"[..], "invalid bulk length"),
            (b"*2\r\n$3\r\nGET\r\n:1\r\n", "expected '$', got ':'"),
            (b"GET \"a\r\n", "unbalanced quotes in request"),
        ] {
            let mut c = connect(&server);
            let mut input = cmd("SET a 1");
            input.extend_from_slice(bad);
            input.extend_from_slice(&cmd("GET a")); // after the error: ignored
            c.send(&input);
            assert_eq!(c.reply(), ok());
            assert_eq!(c.reply(), err(&format!("ERR Protocol error: {msg}")));
            c.expect_eof();
        }
        // The server is still fine.
        assert_eq!(connect(&server).call("GET a"), bulk("1"));
        server.stop();
    });
}

#[test]
fn tcp_expiry_real_clock() {
    support::with_timeout(60, || {
        let server = start();
        let mut c = connect(&server);
        // A short PX: the key is there, then gone. Polled with a bound,
        // not slept on: a loaded machine only makes it take longer.
        let set_at = Instant::now();
        assert_eq!(c.call("SET short v PX 50"), ok());
        assert_eq!(c.call("SET long v EX 1000"), ok());
        let deadline = set_at + Duration::from_secs(10);
        loop {
            let r = c.call("GET short");
            if r == nil() {
                break;
            }
            assert_eq!(r, bulk("v"));
            assert!(Instant::now() < deadline, "the key never expired");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(
            set_at.elapsed() >= Duration::from_millis(50),
            "expired early"
        );
        assert_eq!(c.call("EXISTS short long"), Int(1));
        // The sweeper removes expired keys nobody touches: DBSIZE counts
        // them until then.
        for i in 0..200 {
            c.send(&cmd(&format!("SET gone{i} v PX 20")));
        }
        for _ in 0..200 {
            assert_eq!(c.reply(), ok());
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let Int(n) = c.call("DBSIZE") else { panic!() };
            if n == 1 {
                break; // only `long`
            }
            assert!(Instant::now() < deadline, "the sweeper left {n} keys");
            std::thread::sleep(Duration::from_millis(20));
        }
        server.stop();
    });
}

#[test]
fn concurrent_incr_is_exact() {
    // Many client coroutines (gort TcpStreams) increment one key: every
    // value from 1 to the total is handed out exactly once.
    const CLIENTS: usize = 50;
    const EACH: usize = 200;
    support::with_timeout(120, || {
        let server = start();
        let addr = server.addr;
        let mut seen: Vec<i64> = server.rt.block_on(move || {
            let clients: Vec<_> = (0..CLIENTS)
                .map(|_| {
                    gort::go!(move || {
                        let s = gort::net::TcpStream::connect(addr).unwrap();
                        let mut c = Conn { s, buf: Vec::new() };
                        let mut got = Vec::with_capacity(EACH);
                        for _ in 0..EACH {
                            let Int(v) = c.call("INCR hits") else {
                                panic!("INCR did not answer an integer")
                            };
                            // Each client sees its own values increase.
                            assert!(got.last().is_none_or(|&l| l < v));
                            got.push(v);
                        }
                        got
                    })
                })
                .collect();
            clients
                .into_iter()
                .flat_map(|h| h.join().expect("client coroutine"))
                .collect()
        });
        seen.sort_unstable();
        let total = (CLIENTS * EACH) as i64;
        assert!(
            seen.iter().copied().eq(1..=total),
            "values lost or repeated"
        );
        assert_eq!(connect(&server).call("GET hits"), bulk(&total.to_string()));
        server.stop();
    });
}

#[test]
fn tcp_client_vanishing_mid_request() {
    // A client that sends half a request and leaves: the server drops the
    // connection and goes on.
    support::with_timeout(60, || {
        let server = start();
        let mut c = connect(&server);
        c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\nabc");
        drop(c);
        let mut d = connect(&server);
        assert_eq!(d.call("GET k"), nil());
        assert_eq!(d.call("PING"), Simple("PONG".into()));
        server.stop();
    });
}
