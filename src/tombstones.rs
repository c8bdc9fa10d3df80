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
//! # Orderings
//!
//! `Relaxed` throughout: a reader only relies on a delete whose operation its view includes, and
//! the [`Sequencer`](crate::snapshot::Sequencer) already makes that operation's writes visible
//! (Release on completing the operation, Acquire when taking the view).

use crate::seq::{ReadView, SeqNo};
use crate::sync::{AtomicU64, Ordering};

const LIVE: SeqNo = SeqNo::MAX;

/// The delete seq of each row.
pub struct Tombstones {
    deleted_at: Box<[AtomicU64]>,
}

impl Tombstones {
    /// `rows` live rows.
    pub fn new(rows: usize) -> Self {
        Self {
            deleted_at: (0..rows).map(|_| AtomicU64::new(LIVE)).collect(),
        }
    }

    /// Marks `row` deleted by operation `seq`. Returns false if it was already deleted or out
    /// of range.
    pub fn delete(&self, row: usize, seq: SeqNo) -> bool {
        let Some(slot) = self.deleted_at.get(row) else {
            return false;
        };
        // Relaxed: see the module docs.
        slot.compare_exchange(LIVE, seq, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
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
        self.deleted_at
            .iter()
            .filter(|s| s.load(Ordering::Relaxed) != LIVE)
            .count()
    }
}
