//! Go's concurrent prime sieve (go.dev/doc/play/sieve.go, the program on
//! the Go home page), ported line for line: a generator coroutine feeds
//! 2, 3, 4, ... into a chain of filter coroutines, one per prime found so
//! far, joined by unbuffered channels. Whatever reaches the end of the
//! chain is the next prime, which gets a filter of its own.
//!
//! ```text
//! cargo run --release --example prime_sieve        # the first 100 primes
//! cargo run --release --example prime_sieve -- 1000
//! ```
//!
//! | Go (sieve.go)                           | here                                           |
//! |-----------------------------------------|------------------------------------------------|
//! | `func main()` (runtime starts itself)   | `gort::run(\|\| ...)`                          |
//! | `ch := make(chan int)` (unbuffered)     | `let (tx, rx) = chan::bounded::<u64>(0)`       |
//! | `chan<- int` / `<-chan int` parameters  | `Sender<u64>` / `Receiver<u64>`                |
//! | `go Generate(ch)`                       | `gort::go!(move \|\| generate(tx))`            |
//! | `ch <- i`                               | `tx.send(i)`                                   |
//! | `i := <-in` in `for { ... }`            | `for i in input` (the receiver iterates)       |
//! | `go Filter(ch, ch1, prime)`             | `gort::go!(move \|\| filter(rx, tx1, prime))`  |
//! | `ch = ch1`                              | `rx = rx1`                                     |
//! | `prime := <-ch`                         | `rx.recv()`                                    |
//! | main returns, goroutines die with it    | dropping the last receiver: see below          |
//!
//! One difference, on purpose: in Go the filters and the generator are
//! simply killed when `main` returns. Here each of them stops when its
//! send fails because the receiving end is gone, so once the caller drops
//! the end of the chain the shutdown ripples back to the generator and
//! every coroutine ends by returning (the next number that gets through
//! every filter meets the dropped end). [`sieve`] joins them all, so it
//! leaks nothing and can be called again inside a long-lived runtime.

use gort::chan::{self, Receiver, Sender};

/// Sends the sequence 2, 3, 4, ... to `ch` until nobody listens.
fn generate(ch: Sender<u64>) {
    for i in 2.. {
        if ch.send(i).is_err() {
            return;
        }
    }
}

/// Copies the values from `input` to `output`, removing those divisible
/// by `prime`; stops when either side is gone.
fn filter(input: Receiver<u64>, output: Sender<u64>, prime: u64) {
    for i in input {
        if i % prime != 0 && output.send(i).is_err() {
            return;
        }
    }
}

/// Runs the sieve for the first `n` primes, handing each to `emit` as it
/// comes out of the chain. Must run inside a gort runtime: it spawns one
/// generator and `n` filter coroutines, and joins them all before
/// returning.
pub fn sieve(n: usize, mut emit: impl FnMut(u64)) {
    let (tx, mut rx) = chan::bounded::<u64>(0); // ch := make(chan int)
    let mut coroutines = Vec::with_capacity(n + 1);
    coroutines.push(gort::go!(move || generate(tx))); // go Generate(ch)
    for _ in 0..n {
        let prime = rx.recv().expect("the chain never ends on its own");
        emit(prime);
        let (tx1, rx1) = chan::bounded::<u64>(0);
        coroutines.push(gort::go!(move || filter(rx, tx1, prime)));
        rx = rx1;
    }
    // The end of the chain goes away: the last filter's next send fails,
    // it returns and drops its input, and so on back to the generator.
    drop(rx);
    for c in coroutines {
        c.join().expect("sieve coroutines do not panic");
    }
}

/// The first `n` primes, by [`sieve`]. Must run inside a gort runtime.
pub fn primes(n: usize) -> Vec<u64> {
    let mut out = Vec::with_capacity(n);
    sieve(n, |p| out.push(p));
    out
}

fn main() {
    let n = match std::env::args().nth(1) {
        None => 100,
        Some(a) => a.parse::<usize>().unwrap_or_else(|_| {
            eprintln!("usage: prime_sieve [N]   (N: how many primes, default 100)");
            std::process::exit(2)
        }),
    };
    // println! takes stdout's lock per line: a lock held across a park
    // (each recv parks) would be held across a possible thread migration.
    gort::run(move || sieve(n, |p| println!("{p}")));
}
