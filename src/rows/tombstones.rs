//! Seq-stamped deletes, one slot per row of a head or segment.
//!
//! # Protocol
//!
//! A row is live until a delete stores its seq into the row's slot (once: a row is deleted at
//! most once). A reader treats the row as dead in a view iff the stored seq is included in that
//! view, so a delete still in flight, or after the view, does not change what the view sees.
//!
//! A head and the segment sealed from it share one `Tombstones` (the segment keeps the head's
//! row numbers), so a delete that lands while the head is being sealed is never lost.
//!
//! # Invariants
//!
//! - T1: a slot goes from `LIVE` to some seq at most once.
//! - T2: deletes of one row are serialized by the document's entry in the id maps, so the CAS
//!   below only fails if the row was already deleted.
//!
//! # Forwarding (merges)
//!
//! When a merge copies rows into a new segment, it sets a *forward* on each source's tombstones
//! (the new tombstones and the row mapping), issues a `SeqCst` fence, then copies every source
//! delete to the new segment once more before publishing it. A deleter marks the source row,
//! issues a `SeqCst` fence, then follows the forward if it is set, before its operation
//! completes. By the fences (a Dekker pattern), either the merge's final copy sees the delete, or
//! the deleter sees the forward: a merged segment never lacks a delete whose operation completed.
//!
//! # Orderings
//!
//! The delete marks are `Relaxed`: a reader only relies on a delete whose operation its view
//! includes, and the [`Sequencer`](crate::seq::Sequencer) already makes that operation's
//! writes visible (Release on completing the operation, Acquire when taking the view). The two
//! `SeqCst` fences above order a mark against the forward (see Forwarding).

use crate::seq::{ReadView, SeqNo};
use crate::sync::{Arc, AtomicU64, AtomicUsize, OnceLock, Ordering, bug, fence};

const LIVE: SeqNo = SeqNo::MAX;

/// The delete seq of each row.
pub struct Tombstones {
    deleted_at: Box<[AtomicU64]>,
    /// How many rows are deleted (by any operation so far); drives vacuum.
    dead: AtomicUsize,
    /// Set once, by a merge that copied these rows elsewhere.
    forward: OnceLock<Forward>,
}

/// Where a merge copied this block's rows: the new tombstones, and each row's new index
/// ([`DROPPED`] for rows the merge left out, which are already deleted).
pub struct Forward {
    pub target: Arc<Tombstones>,
    pub rows: Box<[u32]>,
}

/// A row a merge did not copy.
pub const DROPPED: u32 = u32::MAX;

impl Tombstones {
    /// `rows` live rows.
    pub fn new(rows: usize) -> Self {
        Self::from_seqs((0..rows).map(|_| None))
    }

    /// Rows already deleted at the given seqs (a merge carries deletes of copied rows over).
    pub fn from_seqs(seqs: impl IntoIterator<Item = Option<SeqNo>>) -> Self {
        let deleted_at: Box<[AtomicU64]> = seqs.into_iter().map(|s| AtomicU64::new(s.unwrap_or(LIVE))).collect();
        let dead = deleted_at.iter().filter(|s| s.load(Ordering::Relaxed) != LIVE).count();
        Self { deleted_at, dead: AtomicUsize::new(dead), forward: OnceLock::new() }
    }

    /// Marks `row` deleted by operation `seq`. Returns false if it was already deleted or out
    /// of range.
    pub fn delete(&self, row: usize, seq: SeqNo) -> bool {
        let Some(slot) = self.deleted_at.get(row) else {
            return false;
        };
        // Relaxed: see the module docs.
        let deleted = slot.compare_exchange(LIVE, seq, Ordering::Relaxed, Ordering::Relaxed).is_ok();
        if deleted {
            // Relaxed: a statistic for the merge policy.
            self.dead.fetch_add(1, Ordering::Relaxed);
        }
        deleted
    }

    /// Marks `row` deleted by `seq` here and wherever merges copied it (see Forwarding).
    /// Returns whether this block's row was live.
    pub fn delete_and_forward(&self, row: usize, seq: SeqNo) -> bool {
        let deleted = self.delete(row, seq);
        let (mut tombstones, mut row) = (self, row);
        loop {
            // SeqCst: pairs with the fence in `forward_to` (see Forwarding). (An injected bug
            // for the loom models leaves both fences out.)
            if !bug!("forward_no_fence") {
                fence(Ordering::SeqCst);
            }
            let Some(forward) = tombstones.forward.get() else { break };
            let Some(&to) = forward.rows.get(row) else { break };
            if to == DROPPED {
                break;
            }
            forward.target.delete(to as usize, seq);
            (tombstones, row) = (&*forward.target, to as usize);
        }
        deleted
    }

    /// Records where a merge copied these rows, then orders that before the merge's final copy
    /// of deletes. Returns false if a forward was already set (a block is merged once).
    pub fn forward_to(&self, forward: Forward) -> bool {
        let first = self.forward.set(forward).is_ok();
        // SeqCst: pairs with the fence in `delete_and_forward` (see Forwarding).
        if !bug!("forward_no_fence") {
            fence(Ordering::SeqCst);
        }
        first
    }

    /// The seq that deleted `row`, if any.
    pub fn deleted_at(&self, row: usize) -> Option<SeqNo> {
        let seq = self.deleted_at.get(row)?.load(Ordering::Relaxed);
        (seq != LIVE).then_some(seq)
    }

    /// Whether `row` is deleted in `view`.
    #[inline]
    pub fn is_dead_in(&self, row: usize, view: &ReadView) -> bool {
        self.deleted_at(row).is_some_and(|seq| view.includes(seq))
    }

    /// Rows deleted by any operation so far.
    pub fn dead_count(&self) -> usize {
        self.dead.load(Ordering::Relaxed)
    }
}
