//! A 4-ary min-heap of timer entries, one per P (Go keeps a 4-ary heap per
//! P too: shallower than a binary heap, so a push or pop touches fewer
//! cache lines).
//!
//! Entries are `(when, seq, item)`. Stopping or moving a timer does not
//! search the heap: the timer's owner bumps the timer's sequence number, and
//! an entry whose `seq` no longer matches is *stale* and skipped when it
//! reaches the top (the same idea as Go's stale-deadline check through
//! `pollDesc.rseq`). Stale entries are counted; when they are half the heap,
//! it is rebuilt without them, so the heap stays O(live timers).

/// One scheduled firing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry<T> {
    /// When to fire, in the runtime's nanoseconds.
    pub(crate) when: u64,
    /// The timer's sequence number when this entry was pushed.
    pub(crate) seq: u64,
    pub(crate) item: T,
}

/// The heap. `is_live(entry)` decides staleness (the caller compares the
/// entry's `seq` with the timer's current one).
#[derive(Debug)]
pub(crate) struct TimerHeap<T> {
    entries: Vec<Entry<T>>,
    /// Entries known to be stale but still in the heap.
    stale: usize,
}

impl<T> Default for TimerHeap<T> {
    fn default() -> Self {
        TimerHeap {
            entries: Vec::new(),
            stale: 0,
        }
    }
}

impl<T> TimerHeap<T> {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn push(&mut self, e: Entry<T>) {
        self.entries.reserve(1);
        let i = self.entries.len();
        let es = self.entries.as_mut_ptr();
        // SAFETY: room for one more entry was reserved; `place` fills slot
        // i (the hole) and moves only initialized entries below it, then
        // the length covers the new entry. Nothing in between can panic.
        unsafe {
            place_up(es, i, e);
            self.entries.set_len(i + 1);
        }
    }

    /// The earliest entry's time, stale or not (a lower bound for the next
    /// firing; the caller pops and skips stale ones).
    pub(crate) fn peek_when(&self) -> Option<u64> {
        self.entries.first().map(|e| e.when)
    }

    /// Removes and returns the earliest entry.
    ///
    /// Floyd's bottom-up pop: the hole left by the root walks down along
    /// the smaller child to a leaf (one comparison per child, none against
    /// the moved entry), then the last entry is placed by sifting it up
    /// from there. The last entry is usually a late timer that belongs near
    /// the bottom, so this does about half the comparisons of a plain sift
    /// down, and moves entries into a hole instead of swapping them.
    pub(crate) fn pop(&mut self) -> Option<Entry<T>> {
        let last = self.entries.pop()?;
        let n = self.entries.len();
        if n == 0 {
            return Some(last);
        }
        let es = self.entries.as_mut_ptr();
        // SAFETY: slots 0..n are initialized. The root is read out (slot 0
        // becomes the hole); each step copies a child into the hole and
        // the hole moves to that child; `place_up` finally writes `last`
        // into the hole. Every slot ends initialized exactly once, and
        // nothing in between can panic (u64 comparisons only).
        unsafe {
            let top = std::ptr::read(es);
            let mut hole = 0;
            loop {
                let first = 4 * hole + 1;
                if first >= n {
                    break;
                }
                let when = |c: usize| (*es.add(c)).when;
                let min = if first + 4 <= n {
                    // All four children: a tournament, no loop.
                    let a = if when(first + 1) < when(first) {
                        first + 1
                    } else {
                        first
                    };
                    let b = if when(first + 3) < when(first + 2) {
                        first + 3
                    } else {
                        first + 2
                    };
                    if when(b) < when(a) { b } else { a }
                } else {
                    let mut min = first;
                    for c in first + 1..n {
                        if when(c) < when(min) {
                            min = c;
                        }
                    }
                    min
                };
                std::ptr::copy_nonoverlapping(es.add(min), es.add(hole), 1);
                hole = min;
            }
            place_up(es, hole, last);
            Some(top)
        }
    }

    /// Pops up to `max` entries due at `now` for which `is_live` holds,
    /// skipping (and dropping) stale ones, and hands each to `fire`.
    /// Returns how many fired.
    pub(crate) fn run_due(
        &mut self,
        now: u64,
        max: usize,
        is_live: impl Fn(&Entry<T>) -> bool,
        mut fire: impl FnMut(Entry<T>),
    ) -> usize {
        let mut n = 0;
        while n < max && self.peek_when().is_some_and(|w| w <= now) {
            let e = self.pop().expect("peeked");
            if is_live(&e) {
                fire(e);
                n += 1;
            } else {
                self.stale = self.stale.saturating_sub(1);
            }
        }
        n
    }

    /// Notes that one entry became stale; rebuilds the heap without stale
    /// entries once they are half of it.
    pub(crate) fn note_stale(&mut self, is_live: impl Fn(&Entry<T>) -> bool) {
        self.stale += 1;
        if self.stale * 2 > self.entries.len() {
            self.entries.retain(|e| is_live(e));
            self.stale = 0;
            for i in (0..self.entries.len() / 4 + 1).rev() {
                self.sift_down(i);
            }
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.entries.len();
        loop {
            let first = 4 * i + 1;
            if first >= n {
                break;
            }
            let last = (first + 4).min(n);
            let mut min = first;
            for c in first + 1..last {
                if self.entries[c].when < self.entries[min].when {
                    min = c;
                }
            }
            if self.entries[min].when >= self.entries[i].when {
                break;
            }
            self.entries.swap(i, min);
            i = min;
        }
    }
}

/// Writes `e` into the hole at `hole`, first moving each parent later
/// than `e` down into the hole (a sift up without swaps).
///
/// # Safety
/// `es[hole]` is a hole (uninitialized or moved out) inside the heap's
/// allocation and every slot above it on the path to the root is an
/// initialized entry of a valid heap.
unsafe fn place_up<T>(es: *mut Entry<T>, mut hole: usize, e: Entry<T>) {
    // SAFETY: per the contract; each parent is copied into the hole, which
    // then moves to the parent's slot; `e` fills the last hole.
    unsafe {
        while hole > 0 {
            let parent = (hole - 1) / 4;
            if (*es.add(parent)).when <= e.when {
                break;
            }
            std::ptr::copy_nonoverlapping(es.add(parent), es.add(hole), 1);
            hole = parent;
        }
        std::ptr::write(es.add(hole), e);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// xorshift, so the test needs no crate.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn pops_in_time_order() {
        let mut h = TimerHeap::default();
        let mut rng = Rng(0x1234_5678);
        let mut whens: Vec<u64> = (0..10_000).map(|_| rng.next() % 1_000_000).collect();
        for (i, &w) in whens.iter().enumerate() {
            h.push(Entry {
                when: w,
                seq: 0,
                item: i,
            });
        }
        whens.sort_unstable();
        let popped: Vec<u64> = std::iter::from_fn(|| h.pop().map(|e| e.when)).collect();
        assert_eq!(popped, whens);
    }

    #[test]
    fn stale_entries_are_skipped_and_compacted_against_a_model() {
        // Timers 0..500, each with a current seq; random pushes (resets),
        // stops and clock advances, checked against a plain model.
        let mut h = TimerHeap::default();
        let mut seq: HashMap<usize, u64> = HashMap::new();
        let mut model: HashMap<usize, u64> = HashMap::new(); // timer -> when
        let mut rng = Rng(99);
        let mut now = 0u64;
        for step in 0..200_000u64 {
            let t = (rng.next() % 500) as usize;
            match rng.next() % 4 {
                0 | 1 => {
                    // (Re)set timer t.
                    let s = seq.entry(t).or_insert(0);
                    if model.contains_key(&t) {
                        *s += 1; // the old entry goes stale
                        let cur = seq.clone();
                        h.note_stale(|e| cur[&e.item] == e.seq);
                    }
                    let when = now + rng.next() % 10_000;
                    h.push(Entry {
                        when,
                        seq: seq[&t],
                        item: t,
                    });
                    model.insert(t, when);
                }
                2 => {
                    // Stop timer t.
                    if model.remove(&t).is_some() {
                        *seq.get_mut(&t).unwrap() += 1;
                        let cur = seq.clone();
                        h.note_stale(|e| cur[&e.item] == e.seq);
                    }
                }
                _ => {
                    now += rng.next() % 3_000;
                    let cur = seq.clone();
                    let mut fired = Vec::new();
                    h.run_due(
                        now,
                        usize::MAX,
                        |e| cur[&e.item] == e.seq,
                        |e| fired.push((e.item, e.when)),
                    );
                    let mut expect: Vec<(usize, u64)> = model
                        .iter()
                        .filter(|&(_, &w)| w <= now)
                        .map(|(&t, &w)| (t, w))
                        .collect();
                    for (t, _) in &expect {
                        model.remove(t);
                        *seq.get_mut(t).unwrap() += 1; // fired: a later push is a new incarnation
                    }
                    fired.sort_unstable();
                    expect.sort_unstable();
                    assert_eq!(fired, expect, "step {step}");
                }
            }
            assert!(
                h.len() <= 2 * model.len() + 2,
                "stale entries piled up: {} for {} live",
                h.len(),
                model.len()
            );
        }
    }

    #[test]
    fn every_item_is_dropped_exactly_once_with_ties() {
        // Items that count their owners: the hole-moving push and pop must
        // neither leak nor double-drop one. Many equal `when`s (ties).
        let token = std::sync::Arc::new(());
        let mut rng = Rng(7);
        let mut h = TimerHeap::default();
        let mut popped = Vec::new();
        for i in 0..5_000u64 {
            h.push(Entry {
                when: rng.next() % 64,
                seq: i,
                item: token.clone(),
            });
            if i % 3 == 0 {
                let e = h.pop().expect("not empty");
                popped.push(e.when);
            }
        }
        assert_eq!(std::sync::Arc::strong_count(&token), 1 + h.len());
        let mut last = 0;
        while let Some(e) = h.pop() {
            assert!(e.when >= last, "out of order: {} after {last}", e.when);
            last = e.when;
        }
        drop(h);
        assert_eq!(std::sync::Arc::strong_count(&token), 1);
        assert_eq!(popped.len(), 1_667);
    }
}
