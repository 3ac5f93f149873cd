//! gort's demo: a Redis-protocol server and a few thousand clients in one
//! process, every one of them a coroutine, with the runtime's counters
//! live.
//!
//! ```text
//! cargo run --release --example demo             # 2,000 clients for 5 s
//! cargo run --release --example demo -- 10 500   # 500 clients for 10 s
//! GORT_DEMO_SECS=2 GORT_DEMO_CLIENTS=4000 cargo run --release --example demo
//! ```
//!
//! 1. The server is examples/kv_server.rs (a sharded map behind
//!    `gort::sync::Mutex`, one coroutine per connection), on a loopback
//!    port.
//! 2. Each client coroutine opens its own connection, waits for the start
//!    (a channel closed to broadcast it), then sends GETs and SETs (4 to 1)
//!    one at a time, each waiting for its reply, on keys of its own, so
//!    every GET's answer is checked against the client's last SET.
//! 3. A progress line shows requests/s, live coroutines, worker threads
//!    (Ms) and context switches/s from `Runtime::stats`, in place on a
//!    terminal, one line a second otherwise; then a summary: requests,
//!    latency percentiles, switches per request, the peak of coroutines.
//! 4. The echo server of examples/echo_server.rs (its `serve`, one
//!    coroutine per connection) under a few hundred client coroutines for
//!    a second: round trips/s, every reply checked.
//! 5. What the pieces cost: a switch, a spawn, a yield.
//!
//! 2,000 clients take 4,000 descriptors (both ends of each connection are
//! in this process): the soft `RLIMIT_NOFILE` is raised to the hard limit
//! first, and the client count lowered, with a message, if that is not
//! enough.

#[path = "kv_server.rs"]
#[allow(dead_code)]
mod kv_server;

#[path = "echo_server.rs"]
#[allow(dead_code)]
mod echo_server;

use std::{
    hint::black_box,
    io::{self, IsTerminal, Read, Write},
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use gort::{
    chan::{self, Receiver},
    coro::{Coroutine, CoroutineResult},
    net::{TcpListener, TcpStream},
    sync::{Semaphore, WaitGroup},
};

const DEFAULT_SECS: f64 = 5.0;
const DEFAULT_CLIENTS: usize = 2_000;
/// Keys each client writes and reads.
const KEYS_PER_CLIENT: usize = 8;
/// Out of 100 requests, this many are GETs (the rest SETs).
const GET_PERCENT: u64 = 80;
/// Connections being opened at once (the listener's backlog may be as
/// small as 128 on an older kernel).
const CONNECTING_AT_ONCE: usize = 128;
/// Client coroutines of the echo phase, and how long it runs.
const ECHO_CLIENTS: usize = 300;
const ECHO_SECS: f64 = 1.0;
/// Descriptors kept for the rest of the process.
const SPARE_FDS: libc::rlim_t = 64;

fn main() -> io::Result<()> {
    let secs = setting(1, "GORT_DEMO_SECS")
        .unwrap_or(DEFAULT_SECS)
        .max(0.1);
    let wanted = setting(2, "GORT_DEMO_CLIENTS").map_or(DEFAULT_CLIENTS, |n: f64| n as usize);
    let (clients, note) = fit_fd_limit(wanted.max(1));

    let rt = gort::Runtime::builder().build()?;
    println!(
        "gort demo: a Redis-protocol server (examples/kv_server.rs) and {} client \
         coroutines in one process, on {} Ps\n",
        sep(clients),
        rt.procs()
    );
    if let Some(note) = note {
        println!("{note}\n");
    }
    let listener = Arc::new(rt.block_on(|| TcpListener::bind("127.0.0.1:0"))?);
    let addr = listener.local_addr()?;
    let serving = {
        let listener = listener.clone();
        let store = Arc::new(kv_server::Store::new());
        rt.spawn(move || kv_server::serve(&listener, store))
    };

    // Start the clients; they connect, then wait for `start` to close.
    let shared = Arc::new(Shared::default());
    let connected = WaitGroup::new();
    connected.add(clients as i64);
    let (start_tx, start) = chan::bounded::<()>(0);
    let slots = Arc::new(Semaphore::new(CONNECTING_AT_ONCE));
    let connect_began = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|id| {
            let (shared, connected, start, slots) = (
                shared.clone(),
                connected.clone(),
                start.clone(),
                slots.clone(),
            );
            rt.spawn(move || client(id, addr, &shared, &slots, &connected, &start))
        })
        .collect();
    connected.wait(); // this plain thread blocks; the coroutines park
    println!(
        "{} connections opened in {:.2} s",
        sep(clients),
        connect_began.elapsed().as_secs_f64(),
    );

    // Run, showing progress.
    let before = rt.stats();
    let began = Instant::now();
    start_tx.close(); // go
    let peak = progress(&rt, &shared, began + Duration::from_secs_f64(secs));
    shared.stop.store(true, Relaxed);
    let mut failed = 0;
    for h in handles {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                if failed == 0 {
                    eprintln!("a client failed: {e}");
                }
                failed += 1;
            }
            Err(_) => failed += 1, // its panic was printed
        }
    }
    let took = began.elapsed().as_secs_f64();
    let after = rt.stats();

    // The summary.
    let requests = shared.requests.load(Relaxed);
    let gets = shared.gets.load(Relaxed);
    println!(
        "\n{} requests in {took:.1} s = {} requests/s ({} GET, {} SET), {} wrong replies{}",
        sep(requests),
        sep((requests as f64 / took) as u64),
        sep(gets),
        sep(requests - gets),
        shared.wrong.load(Relaxed),
        failures(failed)
    );
    println!(
        "latency, send to reply, with {} requests always in flight: p50 {}, p99 {}, max {}",
        sep(clients),
        fmt_ns(shared.latency.quantile(0.50)),
        fmt_ns(shared.latency.quantile(0.99)),
        fmt_ns(shared.latency.quantile(1.0)),
    );
    let switches = after.switches - before.switches;
    println!(
        "{} context switches = {:.1} per request; peak {} coroutines on {} Ms",
        sep(switches),
        switches as f64 / requests.max(1) as f64,
        sep(peak),
        after.threads
    );

    listener.close();
    serving.join().expect("the server")?;

    echo(&rt, ECHO_CLIENTS.min(clients), ECHO_SECS.min(secs))?;

    // What the pieces cost.
    println!("\nwhat the pieces cost:");
    let switch_ns = median_of(5, coroutine_round_trip_ns);
    println!("  a coroutine switch there and back (resume + suspend): {switch_ns:.1} ns");
    let (spawn_ns, yield_ns) = rt.block_on(spawn_and_yield_ns);
    println!(
        "  go! + join, 100,000 coroutines on {} Ps: {spawn_ns:.0} ns each",
        rt.procs()
    );
    println!("  a yield_now through the scheduler: {yield_ns:.1} ns");
    println!("(benches/README.md puts these beside Go, tokio and may)");
    Ok(())
}

/// The echo phase: examples/echo_server.rs's `serve` behind an accept
/// loop, `clients` coroutines each sending 64-byte messages and checking
/// every reply, for `secs`.
fn echo(rt: &gort::Runtime, clients: usize, secs: f64) -> io::Result<()> {
    let listener = Arc::new(rt.block_on(|| TcpListener::bind("127.0.0.1:0"))?);
    let addr = listener.local_addr()?;
    let accepting = {
        let listener = listener.clone();
        rt.spawn(move || {
            while let Ok((conn, _)) = listener.accept() {
                let _ = conn.set_nodelay(true);
                gort::go!(move || echo_server::serve(conn));
            }
        })
    };
    let (stop, trips) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let began = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|i| {
            let (stop, trips) = (stop.clone(), trips.clone());
            rt.spawn(move || -> io::Result<()> {
                let mut conn = TcpStream::connect(addr)?;
                conn.set_nodelay(true)?;
                let msg = [i as u8; 64];
                let mut reply = [0u8; 64];
                while !stop.load(Relaxed) {
                    conn.write_all(&msg)?;
                    conn.read_exact(&mut reply)?;
                    if reply != msg {
                        return Err(io::Error::other("the echo differs from the message"));
                    }
                    trips.fetch_add(1, Relaxed);
                }
                Ok(())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Relaxed);
    let failed = handles
        .into_iter()
        .map(|h| h.join())
        .filter(|r| !matches!(r, Ok(Ok(()))))
        .count();
    let took = began.elapsed().as_secs_f64();
    listener.close();
    accepting.join().expect("the accept loop");
    let trips = trips.load(Relaxed);
    println!(
        "\necho (examples/echo_server.rs): {} client coroutines, 64-byte messages: {} round trips \
         in {took:.1} s = {} round trips/s, every reply checked{}",
        sep(clients),
        sep(trips),
        sep((trips as f64 / took) as u64),
        failures(failed)
    );
    Ok(())
}

/// What a summary line adds about failed clients (nothing if none).
fn failures(failed: usize) -> String {
    if failed > 0 {
        format!(", {failed} clients failed")
    } else {
        String::new()
    }
}

/// The `n`th command-line argument, else the environment variable `var`.
fn setting(n: usize, var: &str) -> Option<f64> {
    std::env::args()
        .nth(n)
        .or_else(|| std::env::var(var).ok())
        .and_then(|s| s.trim().parse().ok())
}

/// Raises the soft descriptor limit to the hard one, and returns how many
/// of `wanted` clients fit (each takes two descriptors), with a note when
/// that is fewer.
fn fit_fd_limit(wanted: usize) -> (usize, Option<String>) {
    let need = 2 * wanted as libc::rlim_t + SPARE_FDS;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills in the rlimit it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return (wanted, None); // no limit to read: try, and report failures
    }
    let mut have = lim.rlim_cur;
    // The hard limit may be "infinity", which Linux refuses as a soft
    // limit (descriptors are capped by fs.nr_open): then ask for what is
    // needed.
    for target in [lim.rlim_max, need.min(lim.rlim_max)] {
        if target <= have {
            break;
        }
        let new = libc::rlimit {
            rlim_cur: target,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit reads the rlimit it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) } == 0 {
            have = target;
            break;
        }
    }
    if have >= need {
        return (wanted, None);
    }
    let fit = (have.saturating_sub(SPARE_FDS) / 2).max(1) as usize;
    let note = format!(
        "(the descriptor limit is {}: {} clients would need {}, so {} run; \
         raise `ulimit -Hn` for more)",
        sep(have),
        sep(wanted),
        sep(need),
        sep(fit)
    );
    (fit, Some(note))
}

// ---------------------------------------------------------------------
// The clients

/// What the clients share with the main thread.
#[derive(Default)]
struct Shared {
    requests: AtomicU64,
    gets: AtomicU64,
    wrong: AtomicU64,
    stop: AtomicBool,
    latency: Histogram,
}

/// One client: connect, wait for the start, then GET and SET its own keys
/// one request at a time until told to stop, checking every reply.
fn client(
    id: usize,
    addr: SocketAddr,
    shared: &Shared,
    slots: &Semaphore,
    connected: &WaitGroup,
    start: &Receiver<()>,
) -> io::Result<()> {
    slots.acquire(1);
    let conn = TcpStream::connect(addr);
    slots.release(1);
    connected.done();
    let mut conn = conn?;
    conn.set_nodelay(true)?;
    let _ = start.recv(); // fails when closed: the start signal

    let keys: Vec<Vec<u8>> = (0..KEYS_PER_CLIENT)
        .map(|k| format!("client:{id}:key:{k}").into_bytes())
        .collect();
    let mut last_set: [Option<u64>; KEYS_PER_CLIENT] = [None; KEYS_PER_CLIENT];
    let mut rng = 0x9e37_79b9_7f4a_7c15 ^ (id as u64 + 1).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let mut req = Vec::with_capacity(128);
    let mut buf = [0u8; 256];
    let (mut seq, mut gets, mut wrong) = (0u64, 0u64, 0u64);
    while !shared.stop.load(Relaxed) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let k = (rng >> 32) as usize % KEYS_PER_CLIENT;
        let get = rng % 100 < GET_PERCENT;
        let key = &keys[k];
        req.clear();
        if get {
            write!(req, "*2\r\n$3\r\nGET\r\n${}\r\n", key.len())?;
            req.extend_from_slice(key);
            req.extend_from_slice(b"\r\n");
        } else {
            seq += 1;
            write!(req, "*3\r\n$3\r\nSET\r\n${}\r\n", key.len())?;
            req.extend_from_slice(key);
            req.extend_from_slice(b"\r\n$32\r\n");
            req.extend_from_slice(&value(seq));
            req.extend_from_slice(b"\r\n");
        }
        let sent = Instant::now();
        conn.write_all(&req)?;
        let reply = read_reply(&mut conn, &mut buf)?;
        shared.latency.record(sent.elapsed());
        let right = if get {
            gets += 1;
            match (last_set[k], reply) {
                (None, Reply::Nil) => true,
                (Some(s), Reply::Bulk(r)) => buf[r] == value(s),
                _ => false,
            }
        } else {
            last_set[k] = Some(seq);
            matches!(reply, Reply::Ok)
        };
        wrong += u64::from(!right);
        shared.requests.fetch_add(1, Relaxed);
    }
    shared.gets.fetch_add(gets, Relaxed);
    shared.wrong.fetch_add(wrong, Relaxed);
    Ok(())
}

/// The 32-byte value of a client's `seq`th SET: the number, zero-padded.
fn value(seq: u64) -> [u8; 32] {
    let mut v = [b'0'; 32];
    let mut n = seq;
    for d in v.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    v
}

/// The replies the clients expect.
enum Reply {
    Ok,
    Nil,
    /// A bulk string: where it is in the buffer.
    Bulk(std::ops::Range<usize>),
}

/// Reads one reply (all of it: nothing else is in flight).
fn read_reply(conn: &mut TcpStream, buf: &mut [u8]) -> io::Result<Reply> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let mut len = 0;
    loop {
        match conn.read(&mut buf[len..])? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => len += n,
        }
        let got = &buf[..len];
        let Some(cr) = got.windows(2).position(|w| w == b"\r\n") else {
            if len == buf.len() {
                return Err(bad("reply too long"));
            }
            continue;
        };
        match got[0] {
            b'+' if &got[..cr] == b"+OK" => return Ok(Reply::Ok),
            b'$' if &got[..cr] == b"$-1" => return Ok(Reply::Nil),
            b'$' => {
                let n: usize = std::str::from_utf8(&got[1..cr])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| bad("bad bulk length"))?;
                if cr + 2 + n + 2 <= len {
                    return Ok(Reply::Bulk(cr + 2..cr + 2 + n));
                }
                if cr + 2 + n + 2 > buf.len() {
                    return Err(bad("reply too long"));
                }
            }
            _ => {
                let line = String::from_utf8_lossy(&got[..cr]).into_owned();
                return Err(io::Error::new(io::ErrorKind::InvalidData, line));
            }
        }
    }
}

// ---------------------------------------------------------------------
// Progress and latency

/// Shows progress until `end`; returns the peak of live coroutines.
fn progress(rt: &gort::Runtime, shared: &Shared, end: Instant) -> usize {
    let tty = io::stdout().is_terminal();
    let every = Duration::from_millis(if tty { 250 } else { 1000 });
    let began = Instant::now();
    let mut peak = 0;
    let (mut then, mut last_requests, mut last_switches) = (began, 0, rt.stats().switches);
    let mut next_line = began + every;
    loop {
        let now = Instant::now();
        let wake = next_line.min(end).min(now + Duration::from_millis(50));
        std::thread::sleep(wake.saturating_duration_since(now));
        let now = Instant::now();
        let st = rt.stats();
        peak = peak.max(st.coroutines);
        if now >= next_line || now >= end {
            let dt = now.duration_since(then).as_secs_f64().max(1e-9);
            let requests = shared.requests.load(Relaxed);
            let line = format!(
                "{:5.1} s  {:>9} requests/s  {:>6} coroutines  {:>2} Ms  {:>11} switches/s",
                now.duration_since(began).as_secs_f64(),
                sep(((requests - last_requests) as f64 / dt) as u64),
                sep(st.coroutines),
                st.threads,
                sep(((st.switches - last_switches) as f64 / dt) as u64),
            );
            if tty {
                print!("\r{line}");
                let _ = io::stdout().flush();
            } else {
                println!("{line}");
            }
            (then, last_requests, last_switches) = (now, requests, st.switches);
            next_line += every;
        }
        if now >= end {
            break;
        }
    }
    if tty {
        println!();
    }
    peak
}

/// A latency histogram: 16 buckets per power of two of nanoseconds (each
/// within 6.25%), counted atomically by every client.
struct Histogram {
    counts: Box<[AtomicU64]>,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            counts: (0..64 * 16).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl Histogram {
    fn index(ns: u64) -> usize {
        if ns < 16 {
            return ns as usize;
        }
        let shift = 63 - ns.leading_zeros() as usize - 4;
        ((shift + 1) << 4) + ((ns >> shift) as usize & 15)
    }

    /// The middle of bucket `i`, in nanoseconds.
    fn middle(i: usize) -> u64 {
        if i < 16 {
            return i as u64;
        }
        let shift = (i >> 4) - 1;
        (((i & 15) as u64 | 16) << shift) + (1u64 << shift) / 2
    }

    fn record(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.counts[Self::index(ns)].fetch_add(1, Relaxed);
    }

    /// The `q` quantile (0 to 1) in nanoseconds.
    fn quantile(&self, q: f64) -> u64 {
        let counts: Vec<u64> = self.counts.iter().map(|c| c.load(Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total.max(1));
        let mut seen = 0;
        for (i, &c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::middle(i);
            }
        }
        0
    }
}

fn fmt_ns(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns} ns"),
        1_000..1_000_000 => format!("{:.1} µs", ns as f64 / 1e3),
        _ => format!("{:.1} ms", ns as f64 / 1e6),
    }
}

/// An integer with thousands separators.
fn sep(n: impl std::fmt::Display) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

// ---------------------------------------------------------------------
// What the pieces cost

fn median_of(n: usize, f: fn() -> f64) -> f64 {
    let mut v: Vec<f64> = (0..n).map(|_| f()).collect();
    v.sort_by(f64::total_cmp);
    v[n / 2]
}

/// One resume + suspend round trip of a bare coroutine, in nanoseconds.
fn coroutine_round_trip_ns() -> f64 {
    const ROUNDS: u64 = 2_000_000;
    let mut co = Coroutine::<u64, u64, ()>::new(|y, mut n| {
        loop {
            n = y.suspend(n + 1);
        }
    })
    .expect("a coroutine");
    let start = Instant::now();
    let mut n = 0;
    for _ in 0..ROUNDS {
        if let CoroutineResult::Yield(v) = co.resume(black_box(n)) {
            n = v;
        }
    }
    assert_eq!(n, ROUNDS);
    start.elapsed().as_nanos() as f64 / ROUNDS as f64
}

/// `go!` + join of 100,000 coroutines, and a `yield_now` between two
/// coroutines, in nanoseconds each.
fn spawn_and_yield_ns() -> (f64, f64) {
    const N: u64 = 100_000;
    let sum = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let handles: Vec<_> = (0..N)
        .map(|i| {
            let sum = sum.clone();
            gort::go!(move || sum.fetch_add(i, Relaxed))
        })
        .collect();
    for h in handles {
        h.join().expect("a coroutine");
    }
    let spawn_ns = start.elapsed().as_nanos() as f64 / N as f64;
    assert_eq!(sum.load(Relaxed), N * (N - 1) / 2);
    const Y: u64 = 1_000_000;
    let other = gort::spawn(|| (0..Y).for_each(|_| gort::yield_now()));
    let start = Instant::now();
    (0..Y).for_each(|_| gort::yield_now());
    other.join().expect("the other yielder");
    (spawn_ns, start.elapsed().as_nanos() as f64 / (2 * Y) as f64)
}
