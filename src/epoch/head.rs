//! The head: a fixed-capacity, append-only block of rows that writers fill without locks.
//!
//! # Protocol
//!
//! 1. Reserve: a writer takes a row index with `reserved.fetch_add(1)`. An index at or past the
//!    capacity means the head is full: the writer hands its row back to the caller, who rotates
//!    the epoch to a fresh head ([`crate::epoch`]) and tries again there.
//! 2. Write: the writer stores the row into its slot. The index is its own, so nobody else writes
//!    the slot, and no reader reads it before step 3.
//! 3. Publish: the writer sets the slot's `ready` flag with `Release`, then bumps `published`.
//!
//! Readers scan rows `0..len()` and read a slot only after loading its `ready` flag with
//! `Acquire`. Whether a published row is *visible* is then decided by its add seq and the
//! reader's [`ReadView`](crate::seq::ReadView), not by the head.
//!
//! Capacity is fixed when the head is made, so appending never reallocates and never stalls.
//!
//! Closing ([`Head::close`], for sealing a head before it fills): `reserved.fetch_add(capacity)`
//! makes every later reservation land past the capacity (the head looks full), and the value it
//! returns is the number of rows reserved before it, which the closer then stores in
//! `closed_len`. `len()` is `min(reserved, capacity, closed_len)`: until the store is seen it
//! is the capacity, which only makes a reader look at slots that will never be ready (it skips
//! them) and the sealer wait (`is_settled` stays false).
//!
//! # Invariants
//!
//! - H1: each slot is written by exactly one writer, once (the `fetch_add` hands out each index once).
//! - H2: a slot whose `ready` flag a reader saw set holds a complete row, and is never written again.
//! - H3: once `published == len()` and the head is no longer the epoch's current head, no slot
//!   of it changes again: it can be sealed ([`Head::is_settled`]).
//! - H4: a head is closed at most once, and `closed_len` counts exactly the reservations that
//!   came before the close (the fetch_add orders every reservation before or after it); each of
//!   those rows is published, and no later one is.
//!
//! # Orderings
//!
//! - `ready.store(true, Release)` / `ready.load(Acquire)`: the row written in step 2 happens before
//!   any read of it (H2).
//! - `reserved` is `Relaxed`: it only bounds the scan; the data is guarded by `ready`.
//! - `published.fetch_add(Release)` / `load(Acquire)` in [`Head::is_settled`]: the sealer that sees
//!   the final count also sees every row.
//! - The close's `fetch_add` on `reserved` is `Relaxed`: what it decides (which reservations are
//!   in) is the modification order of that one atomic. `closed_len` is `Relaxed` too: it only
//!   bounds scans and the sealer's count, the rows themselves are guarded by their `ready` flags
//!   and `published`, and a stale `usize::MAX` only means the capacity (see above).

use crate::ids::SegmentId;
use crate::rows::RowMeta;
use crate::rows::RowRef;
use crate::rows::SealedRows;
use crate::rows::Tombstones;
use crate::segment::SegmentData;
use crate::seq::ReadView;
use crate::sync::{Arc, AtomicBool, AtomicUsize, Ordering, UnsafeCell};

/// A row as the head holds it.
pub struct HeadRow {
    pub meta: Arc<RowMeta>,
    pub vector: Box<[f32]>,
}

struct Slot {
    ready: AtomicBool,
    row: UnsafeCell<Option<HeadRow>>,
}

/// See the module docs.
pub struct Head {
    id: SegmentId,
    slots: Box<[Slot]>,
    reserved: AtomicUsize,
    published: AtomicUsize,
    /// Rows reserved before [`Head::close`]; `usize::MAX` while open (see the module docs).
    closed_len: AtomicUsize,
    tombstones: Arc<Tombstones>,
}

// SAFETY: a slot's `UnsafeCell` is written by the one writer that reserved it (H1), before its
// `ready` flag is published, and only read after that flag is seen (H2). Row contents
// (`Arc<RowMeta>`, `Box<[f32]>`) are themselves Send + Sync.
unsafe impl Sync for Head {}
// SAFETY: as above; moving a Head between threads moves owned rows.
unsafe impl Send for Head {}

impl Head {
    /// An empty head with room for `capacity` rows.
    pub fn new(id: SegmentId, capacity: usize) -> Self {
        let slots = (0..capacity).map(|_| Slot { ready: AtomicBool::new(false), row: UnsafeCell::new(None) }).collect();
        Self {
            id,
            slots,
            reserved: AtomicUsize::new(0),
            published: AtomicUsize::new(0),
            closed_len: AtomicUsize::new(usize::MAX),
            tombstones: Arc::new(Tombstones::new(capacity)),
        }
    }

    pub fn id(&self) -> SegmentId {
        self.id
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    pub fn tombstones(&self) -> &Arc<Tombstones> {
        &self.tombstones
    }

    /// Rows reserved so far (published or about to be).
    pub fn len(&self) -> usize {
        // Relaxed: a bound for scans only (see the module docs).
        let reserved = self.reserved.load(Ordering::Relaxed).min(self.capacity());
        // Relaxed: a stale `usize::MAX` leaves the capacity as the bound (see the module docs).
        reserved.min(self.closed_len.load(Ordering::Relaxed))
    }

    /// Takes no more rows: every later [`Head::try_append`] gives its row back, as for a full
    /// head, so the caller rotates to a fresh head. Returns whether this call closed it (false
    /// if it was full or closed already). See the module docs.
    pub fn close(&self) -> bool {
        #[cfg(vecindex_bug = "close_check_then_act")]
        let before = self.reserved.load(Ordering::Relaxed);
        // Relaxed: this RMW and the writers' fetch_adds are ordered by `reserved`'s modification
        // order alone; a reservation before it got a slot below `before`, one after it got none.
        #[cfg(not(vecindex_bug = "close_check_then_act"))]
        let before = self.reserved.fetch_add(self.capacity(), Ordering::Relaxed);
        #[cfg(vecindex_bug = "close_check_then_act")]
        self.reserved.fetch_add(self.capacity(), Ordering::Relaxed);
        if before >= self.capacity() {
            return false; // full, or closed by an earlier close (H4)
        }
        // Relaxed: see `len`.
        self.closed_len.store(before, Ordering::Relaxed);
        true
    }

    /// Appends a row, returning its index, or gives the row back if the head is full.
    pub fn try_append(&self, row: HeadRow) -> Result<usize, HeadRow> {
        // Relaxed: reservation only; publication is the `ready` flag (see the module docs).
        let index = self.reserved.fetch_add(1, Ordering::Relaxed);
        let Some(slot) = self.slots.get(index) else {
            return Err(row);
        };
        #[cfg(vecindex_bug = "publish_before_write")]
        slot.ready.store(true, Ordering::Release);
        // SAFETY: `index` came from the fetch_add above, so this thread is the slot's only
        // writer (H1), and readers do not touch it until `ready` is set below (H2).
        slot.row.with_mut(|cell| unsafe { *cell = Some(row) });
        #[cfg(not(vecindex_bug = "publish_relaxed"))]
        let order = Ordering::Release;
        #[cfg(vecindex_bug = "publish_relaxed")]
        let order = Ordering::Relaxed;
        // Release: the row written above happens before any reader's Acquire load of `ready`.
        slot.ready.store(true, order);
        // Release: pairs with the Acquire in `is_settled`.
        self.published.fetch_add(1, Ordering::Release);
        Ok(index)
    }

    /// Whether every reserved row has been published. Only meaningful once the head is frozen
    /// (no longer receiving new reservations): then no row changes again (H3).
    pub fn is_settled(&self) -> bool {
        // Acquire: pairs with the Release increments in `try_append`.
        self.published.load(Ordering::Acquire) >= self.len()
    }

    /// Calls `f` with each published row: its index, metadata and vector.
    pub fn for_each(&self, mut f: impl FnMut(usize, &Arc<RowMeta>, &[f32])) {
        for index in 0..self.len() {
            self.with_row(index, |row| f(index, &row.meta, &row.vector));
        }
    }

    /// Runs `f` on row `index` if it is published.
    pub fn with_row<R>(&self, index: usize, f: impl FnOnce(&HeadRow) -> R) -> Option<R> {
        let slot = self.slots.get(index)?;
        // Acquire: pairs with the Release store in `try_append` (H2).
        if !slot.ready.load(Ordering::Acquire) {
            return None;
        }
        // SAFETY: `ready` is set, so the slot holds a complete row that is never written again (H2).
        slot.row.with(|cell| unsafe { (*cell).as_ref().map(f) })
    }

    /// Calls `f` with each row that is visible and live in `view`.
    pub fn for_each_visible(&self, view: &ReadView, mut f: impl FnMut(usize, RowRef<'_>, &[f32])) {
        self.for_each(|index, meta, vector| {
            if view.includes(meta.add_seq) && !self.tombstones.is_dead_in(index, view) {
                f(index, RowRef::Owned(meta), vector);
            }
        });
    }

    /// Encodes this head, once settled, into a sealed segment's rows: same id, same row numbers, shared tombstones.
    ///
    /// Returns `None` if some reserved row is not published yet (call again later).
    pub fn seal(&self, dim: usize) -> Option<SegmentData> {
        #[cfg(not(vecindex_bug = "seal_unsettled"))]
        if !self.is_settled() {
            return None;
        }
        let mut metas = Vec::with_capacity(self.len());
        let mut vectors = Vec::with_capacity(self.len() * dim);
        for index in 0..self.len() {
            let copied = self.with_row(index, |row| {
                metas.push(row.meta.clone());
                vectors.extend_from_slice(&row.vector);
            });
            #[cfg(not(vecindex_bug = "seal_unsettled"))]
            copied?;
            #[cfg(vecindex_bug = "seal_unsettled")]
            let _ = copied;
        }
        let rows = metas.iter().map(RowRef::Owned).zip(vectors.chunks_exact(dim.max(1)));
        let encoded = SealedRows::encode(dim, rows);
        Some(SegmentData::new(self.id(), encoded, self.tombstones().clone()))
    }
}

#[cfg(all(test, not(vecindex_loom)))]
mod tests {
    use super::*;
    use crate::chunk::Chunk;

    fn row(id: &str) -> HeadRow {
        let (meta, vector) = RowMeta::from_chunk(Chunk::new(id, "d", vec![1.0]), 1, 0);
        HeadRow { meta: Arc::new(meta), vector: vector.into_boxed_slice() }
    }

    #[test]
    fn a_closed_head_keeps_its_rows_and_takes_no_more() {
        let head = Head::new(SegmentId(0), 4);
        assert_eq!(head.try_append(row("a")).ok(), Some(0));
        assert_eq!(head.try_append(row("b")).ok(), Some(1));
        assert!(head.close());
        assert!(!head.close(), "a head closes once");
        assert!(head.try_append(row("c")).is_err(), "a closed head takes no rows");
        assert_eq!(head.len(), 2);
        assert!(head.is_settled());
        let mut ids = Vec::new();
        head.for_each(|_, meta, _| ids.push(meta.chunk_id.clone()));
        assert_eq!(ids, ["a", "b"]);
    }

    #[test]
    fn closing_a_full_head_changes_nothing() {
        let head = Head::new(SegmentId(0), 1);
        assert!(head.try_append(row("a")).is_ok());
        assert!(!head.close());
        assert_eq!(head.len(), 1);
        assert!(head.is_settled());
    }
}
