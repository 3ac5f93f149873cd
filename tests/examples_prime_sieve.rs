//! The prime_sieve example: the chain of filter coroutines yields the
//! right primes and winds down completely.

mod support;

#[path = "../examples/prime_sieve.rs"]
#[allow(dead_code)]
mod prime_sieve;

/// The first `n` primes by trial division.
fn trial_division(n: usize) -> Vec<u64> {
    let mut out = Vec::with_capacity(n);
    let mut k = 2u64;
    while out.len() < n {
        if (2..k)
            .take_while(|d| d * d <= k)
            .all(|d| !k.is_multiple_of(d))
        {
            out.push(k);
        }
        k += 1;
    }
    out
}

#[test]
fn first_100_primes() {
    let got = support::with_timeout(30, || support::rt(2).block_on(|| prime_sieve::primes(100)));
    assert_eq!(got.len(), 100);
    assert_eq!(got[..10], [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]);
    assert_eq!(got[99], 541);
    assert_eq!(got, trial_division(100));
}

#[test]
fn one_proc_and_repeated_runs() {
    // On one P the chain is a pure hand-off; running it again in the same
    // runtime shows the previous chain's coroutines all ended (sieve joins
    // them) rather than piling up.
    support::with_timeout(30, || {
        support::rt(1).block_on(|| {
            for _ in 0..3 {
                assert_eq!(prime_sieve::primes(300), trial_division(300));
            }
            assert!(prime_sieve::primes(0).is_empty());
            assert_eq!(prime_sieve::primes(1), [2]);
        })
    });
}

#[test]
fn emits_in_order_as_found() {
    let seen = support::with_timeout(30, || {
        support::rt(2).block_on(|| {
            let mut seen = Vec::new();
            prime_sieve::sieve(25, |p| seen.push(p));
            seen
        })
    });
    assert_eq!(seen, trial_division(25));
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
}
