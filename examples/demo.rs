//! gort's demo: coroutines switching on one thread, and what a switch costs.
//!
//! `cargo run --release --example demo`
//!
//! 1. a generator: a coroutine yielding Fibonacci numbers;
//! 2. ten thousand coroutines taking turns, round-robin, on one thread;
//! 3. the measured cost of one resume+suspend round trip, beside the cost
//!    of handing control between two OS threads;
//! 4. the M:N scheduler: a hundred thousand `go!` coroutines on every core,
//!    and what a `yield_now` costs;
//! 5. the network poller: Go's echo server (`for { c := l.Accept(); go
//!    serve(c) }`) and a few hundred client coroutines in the same process,
//!    talking over loopback TCP for two seconds.

use std::{
    hint::black_box,
    sync::{
        Arc,
        atomic::{AtomicU32, AtomicU64, Ordering},
    },
    time::Instant,
};

use gort::{
    coro::{Builder, Coroutine, CoroutineResult, Yielder},
    stack,
};

fn main() -> std::io::Result<()> {
    println!("gort demo: stackful coroutines on guard-paged mmap stacks\n");

    // 1. A generator.
    let mut fib = Coroutine::<(), u64, &str>::new(|y, ()| {
        let (mut a, mut b) = (0u64, 1u64);
        while a < 1000 {
            y.suspend(a);
            (a, b) = (b, a + b);
        }
        "done"
    })?;
    print!("fibonacci generator:");
    while let CoroutineResult::Yield(n) = fib.resume(()) {
        print!(" {n}");
    }
    println!("\n");

    // 2. Many coroutines interleaved.
    const N: usize = 10_000;
    let start = Instant::now();
    let mut crowd: Vec<Coroutine<u64, u64, u64>> = (0..N)
        .map(|i| {
            Builder::new()
                .stack_size(64 * 1024)
                .build(move |y: &Yielder<u64, u64>, mut total| {
                    for round in 0..10 {
                        total = y.suspend(total + i as u64 * round);
                    }
                    total
                })
        })
        .collect::<Result<_, _>>()?;
    let mapped = stack::stats().guarded_mapped;
    let mut total = 0;
    let mut finished = 0;
    while finished < N {
        for co in crowd.iter_mut().filter(|c| !c.is_finished()) {
            match co.resume(total) {
                CoroutineResult::Yield(t) => total = t,
                CoroutineResult::Return(t) => {
                    total = t;
                    finished += 1;
                }
            }
        }
    }
    println!(
        "{N} coroutines x 11 turns each, round-robin: {:.1} ms (creation included), checksum {total}; \
         {mapped} guarded stacks were mapped at once",
        start.elapsed().as_secs_f64() * 1e3,
    );
    drop(crowd);
    println!(
        "after drop: {} stacks kept in the pool for reuse\n",
        stack::stats().pooled
    );

    // 3. The switch cost.
    let coro_ns = median_of(11, coroutine_round_trip_ns);
    let thread_ns = median_of(5, thread_round_trip_ns);
    println!("one coroutine resume+suspend round trip: {coro_ns:7.2} ns  (median of 11 x 2M)");
    println!(
        "one OS-thread hand-off round trip:       {thread_ns:7.0} ns  (median of 5 x 50k, futex, same core)"
    );
    println!("coroutine switch is {:.0}x cheaper", thread_ns / coro_ns);
    println!("(`bash benches/compare.sh switch` puts gort beside corosensei)\n");

    // 4. The M:N scheduler: Go's `go`, on every core.
    let rt = gort::Runtime::builder().build()?;
    let (spawned, spawn_ns, yield_ns) = rt.block_on(|| {
        const N: u64 = 100_000;
        let sum = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let handles: Vec<_> = (0..N)
            .map(|i| {
                let sum = sum.clone();
                gort::go!(move || sum.fetch_add(i, Ordering::Relaxed))
            })
            .collect();
        for h in handles {
            h.join().expect("coroutine");
        }
        let spawn_ns = start.elapsed().as_nanos() as f64 / N as f64;
        assert_eq!(sum.load(Ordering::Relaxed), N * (N - 1) / 2);
        const Y: u64 = 1_000_000;
        let other = gort::spawn(|| (0..Y).for_each(|_| gort::yield_now()));
        let start = Instant::now();
        (0..Y).for_each(|_| gort::yield_now());
        other.join().expect("yielder");
        (
            N,
            spawn_ns,
            start.elapsed().as_nanos() as f64 / (2 * Y) as f64,
        )
    });
    println!(
        "scheduler ({} Ps): {spawned} coroutines spawned and joined at {spawn_ns:.0} ns each; \
         a yield_now through the scheduler: {yield_ns:.1} ns",
        rt.procs()
    );
    println!("{}", rt.schedtrace());
    println!(
        "(`bash benches/compare.sh yield|spawn` puts the scheduler beside Go, may and tokio)\n"
    );

    // 5. The network poller: an echo server and its clients, all coroutines.
    let (clients, secs, reqs) = rt.block_on(echo_demo)?;
    println!(
        "echo over loopback TCP: {clients} client coroutines, 64-byte messages, {secs:.1} s: \
         {reqs} round trips = {:.0} requests/s",
        reqs as f64 / secs
    );
    println!("{}", rt.schedtrace());
    println!(
        "(`bash benches/compare.sh echo` drives examples/echo_server beside Go, tokio and may)"
    );
    Ok(())
}

/// Starts Go's classic echo server on an ephemeral port and runs client
/// coroutines against it; returns (clients, seconds, round trips).
fn echo_demo() -> std::io::Result<(usize, f64, u64)> {
    use std::io::{Read, Write};

    use gort::net::{TcpListener, TcpStream};

    const CLIENTS: usize = 300;
    const SECS: f64 = 2.0;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    gort::go!(move || {
        // for { conn, err := l.Accept(); go serve(conn) }
        while let Ok((mut conn, _)) = listener.accept() {
            gort::go!(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 || conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    let total = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let total = total.clone();
            gort::go!(move || -> std::io::Result<()> {
                let mut conn = TcpStream::connect(addr)?;
                let msg = [i as u8; 64];
                let mut back = [0u8; 64];
                let mut n = 0u64;
                while start.elapsed().as_secs_f64() < SECS {
                    conn.write_all(&msg)?;
                    conn.read_exact(&mut back)?;
                    assert_eq!(back, msg, "the echo came back changed");
                    n += 1;
                }
                total.fetch_add(n, Ordering::Relaxed);
                Ok(())
            })
        })
        .collect();
    for c in clients {
        c.join().expect("client coroutine")?;
    }
    let secs = start.elapsed().as_secs_f64();
    Ok((CLIENTS, secs, total.load(Ordering::Relaxed)))
}

fn median_of(n: usize, f: fn() -> f64) -> f64 {
    let mut v: Vec<f64> = (0..n).map(|_| f()).collect();
    v.sort_by(f64::total_cmp);
    v[n / 2]
}

fn coroutine_round_trip_ns() -> f64 {
    const ROUNDS: u64 = 2_000_000;
    let mut co = Coroutine::<u64, u64, ()>::new(|y, mut n| {
        loop {
            n = y.suspend(n + 1);
        }
    })
    .expect("coroutine");
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

/// Two threads passing a token through one futex word: each hand-off is a
/// wake of the other thread and a sleep of this one. Both run on CPU 0, so
/// this is a context switch, not a cross-core wake-up (which costs ten
/// times more on a VM).
fn thread_round_trip_ns() -> f64 {
    const ROUNDS: u32 = 50_000;
    let saved = affinity();
    pin_to_cpu0();
    let word = Arc::new(AtomicU32::new(0));
    let w = word.clone();
    let other = std::thread::spawn(move || {
        pin_to_cpu0();
        for i in 0..ROUNDS {
            wait_for(&w, 2 * i + 1);
            w.store(2 * i + 2, Ordering::Release);
            wake(&w);
        }
    });
    let start = Instant::now();
    for i in 0..ROUNDS {
        word.store(2 * i + 1, Ordering::Release);
        wake(&word);
        wait_for(&word, 2 * i + 2);
    }
    let ns = start.elapsed().as_nanos() as f64 / f64::from(ROUNDS);
    other.join().unwrap();
    set_affinity(&saved);
    ns
}

fn affinity() -> libc::cpu_set_t {
    // SAFETY: a zeroed cpu_set_t is valid; sched_getaffinity fills it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set);
        set
    }
}

fn set_affinity(set: &libc::cpu_set_t) {
    // SAFETY: sets this thread's affinity from a valid mask.
    unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set) };
}

fn pin_to_cpu0() {
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET writes inside it.
    let set = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        set
    };
    set_affinity(&set);
}

fn wait_for(w: &AtomicU32, want: u32) {
    loop {
        let cur = w.load(Ordering::Acquire);
        if cur == want {
            return;
        }
        // SAFETY: FUTEX_WAIT on a live AtomicU32; returns at once if it
        // no longer holds `cur`.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                w.as_ptr(),
                libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                cur,
                std::ptr::null::<libc::timespec>(),
            );
        }
    }
}

fn wake(w: &AtomicU32) {
    // SAFETY: FUTEX_WAKE on a live AtomicU32.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            w.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1,
        );
    }
}
