//! The sequencer: hands out sequence numbers and tells readers which operations are complete.
//!
//! # Protocol
//!
//! The sequencer holds a counter `next` and a small table of *in-flight slots*, one per writer
//! running at the moment. A writer:
//!
//! 1. claims an idle slot by CAS, writing `PENDING | e` where `e` is a value of `next` it read
//!    just before (so `e` is at most the seq it is about to get);
//! 2. takes its seq `s = next.fetch_add(1)`;
//! 3. stores `s` into its slot;
//! 4. does its work (rows, tombstones), then stores `IDLE` into its slot.
//!
//! A reader ([`Sequencer::view`]) loads `upper = next`, then scans the slots. A slot holding an
//! active `s < upper` is an operation that is still in flight: the view leaves it out entirely.
//! A slot holding `PENDING | e` with `e < upper` may or may not own a seq below `upper` yet; the
//! reader waits for that slot to move on, which is the writer's next instruction or two. Nothing
//! else waits: a search never waits for an operation's work to finish.
//!
//! A snapshot ([`Sequencer::snapshot`]) loads `upper = next` and waits until no slot holds an
//! operation below `upper`. It waits only for operations already in flight: operations that start
//! later get a seq of at least `upper` and never block it, and it never blocks them.
//!
//! # Invariants
//!
//! - I1: while an operation with seq `s` is between steps 2 and 4, its slot holds `PENDING | e`
//!   (with `e <= s`) or `s`.
//! - I2: if a reader's load of `next` returns a value above `s`, the reader's scan sees the slot of
//!   operation `s` in state `PENDING | e`, `s`, or a later state; and if that later state is reached,
//!   everything operation `s` wrote is visible to the reader.
//! - I3 (consequence): for a view with `upper`, every operation `s < upper` that the view includes
//!   had finished all its writes before the reader's scan, and they are visible to it.
//!
//! # Orderings
//!
//! - The slot claim CAS is `Acquire`: it synchronizes with the previous owner's `IDLE` store, so the
//!   previous operation's writes happen before anything this writer later publishes with `Release`.
//! - `next.fetch_add` is `Release`: a reader that loads (`Acquire`) a value above `s` synchronizes
//!   with it (fetch_adds continue each other's release sequences) and so sees the claim (I2).
//! - The store of `s` and of `IDLE` are `Release`; slot loads are `Acquire`. Reading `IDLE` (or any
//!   later value) therefore makes the finished operation's rows and tombstones visible (I3).
//! - The read of `next` in step 1 is `Relaxed`: it only has to be `<= s`, which coherence of the
//!   single counter guarantees for a later `fetch_add` in the same thread. (It is a `fetch_add(0)`
//!   rather than a load so that loom explores it; see `begin`.)

use crate::seq::{ReadView, SeqNo};
use crate::sync::{AtomicU64, AtomicUsize, Ordering, bug, spin_wait};

const IDLE: u64 = u64::MAX;
const PENDING: u64 = 1 << 63;

/// One in-flight slot, on its own cache line so writers do not bounce each other's lines.
#[repr(align(64))]
struct Slot(AtomicU64);

/// Hands out [`SeqNo`]s and computes [`ReadView`]s. See the module docs for the protocol.
pub struct Sequencer {
    next: AtomicU64,
    slots: Box<[Slot]>,
    /// Where the next writer starts looking for an idle slot; spreads writers over the table.
    hint: AtomicUsize,
}

/// An operation in flight. Dropping it marks the operation complete.
#[must_use = "the operation is complete when this guard drops"]
pub struct InFlight<'a> {
    slot: &'a AtomicU64,
    seq: SeqNo,
}

impl InFlight<'_> {
    /// The seq of this operation.
    pub fn seq(&self) -> SeqNo {
        self.seq
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        // Release: publishes every write of this operation to readers that load the slot.
        self.slot.store(IDLE, Ordering::Release);
    }
}

impl Sequencer {
    /// A sequencer whose first operation gets seq `first`, with room for `slots` writers at once
    /// (more writers than that wait for a slot to free up; they never wait for readers).
    pub fn new(first: SeqNo, slots: usize) -> Self {
        let slots = (0..slots.max(1)).map(|_| Slot(AtomicU64::new(IDLE))).collect();
        Self { next: AtomicU64::new(first), slots, hint: AtomicUsize::new(0) }
    }

    /// The seq the next operation will get (all operations so far are below it).
    pub fn next_seq(&self) -> SeqNo {
        self.next.load(Ordering::Acquire)
    }

    /// Makes `seq` the next seq handed out, if none at or above it was: replay at open gives
    /// each logged operation its own seq again. Only while no operation runs.
    pub fn skip_to(&self, seq: SeqNo) {
        self.next.fetch_max(seq, Ordering::AcqRel);
    }

    /// Starts an operation: claims a slot and takes a seq.
    pub fn begin(&self) -> InFlight<'_> {
        // Relaxed: the hint only spreads writers; any value is correct.
        let start = self.hint.fetch_add(1, Ordering::Relaxed);
        let n = self.slots.len();
        let mut round = 0u32;
        loop {
            for i in 0..n {
                let slot = &self.slots[(start + i) % n].0;
                // Relaxed: only has to be <= the seq fetched below (coherence of `next`).
                // An RMW rather than a load: loom's DPOR misses races where a thread loads an
                // atomic and then RMWs it (it never schedules another thread's load after the
                // RMW), which hid the `seq_relaxed` and `snapshot_no_wait` bugs from the models.
                // The RMW reads the latest value, one of the values a load may read, so the
                // argument above is unchanged; it costs one uncontended `lock xadd`.
                let entering = self.next.fetch_add(0, Ordering::Relaxed);
                // Acquire: see the module docs (orders us after the slot's previous operation).
                if slot.compare_exchange(IDLE, PENDING | entering, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                    // Release: a reader that sees a later `next` must see our PENDING claim (I2).
                    // (Relaxed is a bug injected for the loom models.)
                    let order = if bug!("seq_relaxed") { Ordering::Relaxed } else { Ordering::Release };
                    let seq = self.next.fetch_add(1, order);
                    // Release: carries the previous operation's completion to readers of `seq`.
                    slot.store(seq, Ordering::Release);
                    return InFlight { slot, seq };
                }
            }
            spin_wait(round);
            round = round.saturating_add(1);
        }
    }

    /// A view of every operation that is complete now, without waiting for any in flight.
    pub fn view(&self) -> ReadView {
        // Acquire: pairs with the Release fetch_add of every operation below `upper` (I2).
        let upper = self.next.load(Ordering::Acquire);
        let mut in_flight = Vec::new();
        for slot in self.slots.iter() {
            let mut round = 0u32;
            loop {
                // Acquire: reading IDLE or a later owner's value makes the finished op visible (I3).
                let value = slot.0.load(Ordering::Acquire);
                if value == IDLE {
                    break;
                }
                if value & PENDING != 0 {
                    if value & !PENDING >= upper {
                        break; // its seq will be >= upper: not in this view anyway
                    }
                    spin_wait(round); // between claim and fetch_add: a few instructions
                    round = round.saturating_add(1);
                    continue;
                }
                if value < upper {
                    in_flight.push(value);
                }
                break;
            }
        }
        ReadView::new(upper, in_flight)
    }

    /// Waits for every operation in flight below the current `next`, and returns a view of
    /// exactly the operations before it. New operations are never blocked.
    pub fn snapshot(&self) -> ReadView {
        let upper = self.next.load(Ordering::Acquire);
        for slot in self.slots.iter() {
            let mut round = 0u32;
            loop {
                let value = slot.0.load(Ordering::Acquire);
                let below = if value == IDLE {
                    false
                } else if value & PENDING != 0 {
                    value & !PENDING < upper
                } else {
                    value < upper
                };
                // An injected bug for the loom models waits for none.
                if !below || bug!("snapshot_no_wait") {
                    break;
                }
                spin_wait(round);
                round = round.saturating_add(1);
            }
        }
        ReadView::up_to(upper)
    }
}

#[cfg(all(test, not(vecindex_loom)))]
mod tests {
    use super::*;

    #[test]
    fn seqs_are_dense_and_views_exclude_in_flight() {
        let seq = Sequencer::new(1, 4);
        let a = seq.begin();
        let b = seq.begin();
        assert_eq!((a.seq(), b.seq()), (1, 2));
        let view = seq.view();
        assert_eq!(view.upper(), 3);
        assert!(!view.includes(1) && !view.includes(2));
        drop(a);
        let view = seq.view();
        assert!(view.includes(1) && !view.includes(2));
        drop(b);
        assert_eq!(seq.snapshot(), ReadView::up_to(3));
    }

    #[test]
    fn more_writers_than_slots_still_progress() {
        let seq = crate::sync::Arc::new(Sequencer::new(1, 1));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let seq = seq.clone();
                std::thread::spawn(move || (0..1000).map(|_| seq.begin().seq()).max())
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(seq.next_seq(), 4001);
    }
}
