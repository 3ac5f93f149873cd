//! What `gort::lock_os_thread` costs: a park/ready round trip between two
//! coroutines on a 2-P runtime, with one of them wired to its thread and
//! without. Wired, every park sends the thread to sleep and hands its P
//! away, and every ready hands a P back and wakes that thread: two thread
//! hand-offs per park, against none for an unwired coroutine.
//!
//! Prints `compare locked_park_roundtrip gort_wired=<ns> gort_unwired=<ns>
//! ratio=<wired/unwired>` (median of alternating samples).

use std::sync::{Arc, Mutex};

use gort::rt::{self, Gp, WaitReason};
use gort_compare::{median, min_max, ns_per};

/// A one-slot signal built on gopark/goready.
#[derive(Default)]
struct Signal {
    state: Mutex<(bool, Option<Gp>)>,
}

impl Signal {
    fn wait(&self) {
        let mut st = self.state.lock().unwrap();
        if std::mem::take(&mut st.0) {
            return;
        }
        // SAFETY: the callback owns the guard and publishes the coroutine last.
        unsafe {
            rt::gopark(
                move |g| {
                    st.1 = Some(g);
                    drop(st);
                    true
                },
                WaitReason::Other,
            )
        };
    }

    fn signal(&self) {
        let mut st = self.state.lock().unwrap();
        match st.1.take() {
            Some(g) => {
                drop(st);
                // SAFETY: published by `wait`; readied once.
                unsafe { rt::goready(g) };
            }
            None => st.0 = true,
        }
    }
}

/// ns per ping-pong round trip (two parks, two readies).
fn sample(rt: &gort::Runtime, rounds: usize, wired: bool) -> f64 {
    rt.block_on(move || {
        let (a, b) = (Arc::new(Signal::default()), Arc::new(Signal::default()));
        let (a2, b2) = (a.clone(), b.clone());
        let pong = gort::spawn(move || {
            if wired {
                gort::lock_os_thread();
            }
            for _ in 0..rounds {
                a2.wait();
                b2.signal();
            }
        });
        let ns = ns_per(rounds, || {
            for _ in 0..rounds {
                a.signal();
                b.wait();
            }
        });
        pong.join().unwrap();
        ns
    })
}

fn main() {
    let rt = gort::Runtime::builder().procs(2).build().expect("runtime");
    let (mut wired, mut unwired) = (Vec::new(), Vec::new());
    sample(&rt, 2_000, true);
    sample(&rt, 20_000, false);
    for _ in 0..11 {
        wired.push(sample(&rt, 5_000, true));
        unwired.push(sample(&rt, 200_000, false));
    }
    let (wlo, whi) = min_max(&wired);
    let (ulo, uhi) = min_max(&unwired);
    let (w, u) = (median(&mut wired), median(&mut unwired));
    eprintln!("wired {wlo:.0}..{whi:.0} ns, unwired {ulo:.1}..{uhi:.1} ns (11 samples each)");
    println!(
        "compare locked_park_roundtrip gort_wired={w:.0} gort_unwired={u:.1} ratio={:.1}",
        w / u
    );
}
