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
//! Readers scan rows `0..min(reserved, capacity)` and read a slot only after loading its `ready`
//! flag with `Acquire`. Whether a published row is *visible* is then decided by its add seq and
//! the reader's [`ReadView`](crate::seq::ReadView), not by the head.
//!
//! Capacity is fixed when the head is made, so appending never reallocates and never stalls.
//!
//! # Invariants
//!
//! - H1: each slot is written by exactly one writer, once (the `fetch_add` hands out each index once).
//! - H2: a slot whose `ready` flag a reader saw set holds a complete row, and is never written again.
//! - H3: once `published == min(reserved, capacity)` and the head is no longer the epoch's
//!   current head, no slot of it changes again: it can be sealed ([`Head::is_settled`]).
//!
//! # Orderings
//!
//! - `ready.store(true, Release)` / `ready.load(Acquire)`: the row written in step 2 happens before
//!   any read of it (H2).
//! - `reserved` is `Relaxed`: it only bounds the scan; the data is guarded by `ready`.
//! - `published.fetch_add(Release)` / `load(Acquire)` in [`Head::is_settled`]: the sealer that sees
//!   the final count also sees every row.

use crate::chunk::RowMeta;
use crate::row::RowRef;
use crate::segment::SegmentId;
use crate::seq::ReadView;
use crate::sync::{Arc, AtomicBool, AtomicUsize, Ordering, UnsafeCell};
use crate::tombstones::Tombstones;

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
        self.reserved.load(Ordering::Relaxed).min(self.capacity())
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
}
