//! Timers: per-P timer heaps (`heap.rs`), and, with the netpoll issue,
//! `sleep`, `after`, `Timer` and `Ticker` on top of them, with the poller
//! sleeping until the earliest timer of all Ps.

#![cfg_attr(
    not(test),
    allow(
        dead_code,
        reason = "wired into the scheduler by the netpoll/timers issue"
    )
)]

pub(crate) mod heap;
