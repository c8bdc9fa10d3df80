//! The head: a fixed-capacity, append-only block of rows that writers fill without locks.
//!
//! # Protocol
//!
//! 1. Reserve: a writer takes a row index with `reserved.fetch_add(1)`. An index at or past the
//!    capacity means the head is full: the writer hands its row back to the caller, who rotates
//!    the epoch to a fresh head ([`crate::epoch`]) and tries again there.
//! 2. Write: the writer stores the row's metadata into its slot and its vector into the slot's
//!    span of the arena, one preallocated `capacity x dim` array of every slot's vector, so
//!    that a scan streams through them and scores them in blocks as a sealed segment's does.
//!    The index is its own, so nobody else writes the slot or the span, and no reader reads
//!    them before step 3.
//! 3. Publish: the writer sets the slot's `ready` flag with `Release`, then bumps `published`.
//!
//! Readers scan rows `0..len()` and read a slot, or its span, only after loading its `ready`
//! flag with `Acquire`; a block scan first finds the published rows from the first one (writers
//! publish in about the order they reserve) and reads their spans as one slice. Whether a
//! published row is *visible* is then decided by its add seq and the reader's
//! [`ReadView`](crate::seq::ReadView), not by the head.
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
//! - H2: a slot whose `ready` flag a reader saw set holds a complete row (metadata and span), and
//!   is never written again.
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

use std::ops::Range;

use crate::ids::SegmentId;
use crate::metric::score_rows;
use crate::query::{SearchOptions, TopK};
use crate::rows::RowMeta;
use crate::rows::RowRef;
use crate::rows::SealedRows;
use crate::rows::Tombstones;
use crate::segment::SegmentData;
use crate::seq::ReadView;
use crate::sync::{Arc, AtomicBool, AtomicUsize, Ordering, UnsafeCell, bug};

/// A row for [`Head::try_append`]: its vector is copied into the head's arena.
pub struct HeadRow {
    pub meta: Arc<RowMeta>,
    pub vector: Box<[f32]>,
}

struct Slot {
    ready: AtomicBool,
    meta: UnsafeCell<Option<Arc<RowMeta>>>,
}

/// See the module docs.
pub struct Head {
    id: SegmentId,
    dim: usize,
    slots: Box<[Slot]>,
    /// `capacity x dim` values: slot `i`'s vector is values `i * dim..(i + 1) * dim`, written by
    /// the slot's writer before its `ready` flag, like the slot's metadata.
    vectors: Box<[UnsafeCell<f32>]>,
    reserved: AtomicUsize,
    published: AtomicUsize,
    /// Rows reserved before [`Head::close`]; `usize::MAX` while open (see the module docs).
    closed_len: AtomicUsize,
    tombstones: Arc<Tombstones>,
}

// SAFETY: a slot's metadata cell and its span of `vectors` are written by the one writer that
// reserved it (H1), before its `ready` flag is published, and only read after that flag is seen
// (H2). Row contents (`Arc<RowMeta>`, `f32`) are themselves Send + Sync.
unsafe impl Sync for Head {}
// SAFETY: as above; moving a Head between threads moves owned rows.
unsafe impl Send for Head {}

/// `len` zeroed cells, written now: a page of the arena first touched by a writer's append
/// would fault there, and a fault can wait milliseconds for the process's memory map while
/// another thread maps or unmaps a large file (a persist, a merge freeing a graph). The writer
/// that rotates to a fresh head pays for the whole arena once instead.
fn arena(len: usize) -> Box<[UnsafeCell<f32>]> {
    (0..len).map(|_| UnsafeCell::new(0.0)).collect()
}

impl Head {
    /// An empty head with room for `capacity` rows of `dim` values.
    pub fn new(id: SegmentId, capacity: usize, dim: usize) -> Self {
        let slots =
            (0..capacity).map(|_| Slot { ready: AtomicBool::new(false), meta: UnsafeCell::new(None) }).collect();
        Self {
            id,
            dim: dim.max(1),
            slots,
            vectors: arena(capacity * dim.max(1)),
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
        let before = if bug!("close_check_then_act") {
            // An injected bug for the loom models: a load, then the RMW, so a reservation in
            // between gets a slot at or above `before`, which the close then leaves out.
            let before = self.reserved.load(Ordering::Relaxed);
            self.reserved.fetch_add(self.capacity(), Ordering::Relaxed);
            before
        } else {
            // Relaxed: this RMW and the writers' fetch_adds are ordered by `reserved`'s
            // modification order alone; a reservation before it got a slot below `before`, one
            // after it got none.
            self.reserved.fetch_add(self.capacity(), Ordering::Relaxed)
        };
        if before >= self.capacity() {
            return false; // full, or closed by an earlier close (H4)
        }
        // Relaxed: see `len`.
        self.closed_len.store(before, Ordering::Relaxed);
        true
    }

    /// Appends a row, returning its index, or gives the row back if the head is full. The
    /// vector must have the head's dimension (the index checked it).
    pub fn try_append(&self, row: HeadRow) -> Result<usize, HeadRow> {
        debug_assert_eq!(row.vector.len(), self.dim);
        // Relaxed: reservation only; publication is the `ready` flag (see the module docs).
        let index = self.reserved.fetch_add(1, Ordering::Relaxed);
        let Some(slot) = self.slots.get(index) else {
            return Err(row);
        };
        if bug!("publish_before_write") {
            // An injected bug for the loom models: the row published before it is written.
            slot.ready.store(true, Ordering::Release);
        }
        // SAFETY: `index` came from the fetch_add above, so this thread is the only writer of
        // the slot and of its span of the arena (H1), and readers touch neither until `ready` is
        // set below (H2).
        unsafe { self.write_vector(index, &row.vector) };
        // SAFETY: as above.
        slot.meta.with_mut(|cell| unsafe { *cell = Some(row.meta) });
        // Release: the row written above happens before any reader's Acquire load of `ready`.
        // (Relaxed is a bug injected for the loom models and scripts/tsan's control run.)
        let order = if bug!("publish_relaxed") { Ordering::Relaxed } else { Ordering::Release };
        slot.ready.store(true, order);
        // Release: pairs with the Acquire in `is_settled`.
        self.published.fetch_add(1, Ordering::Release);
        Ok(index)
    }

    /// Copies `vector` into slot `index`'s span of the arena.
    ///
    /// # Safety
    /// The caller is the slot's only writer and no reader reads the span yet (H1, H2).
    unsafe fn write_vector(&self, index: usize, vector: &[f32]) {
        let span = &self.vectors[index * self.dim..(index + 1) * self.dim];
        #[cfg(not(vecindex_loom))]
        {
            let n = vector.len().min(self.dim);
            // SAFETY: `span` is `dim` cells of `f32` laid out as `f32`s (`repr(transparent)`),
            // every byte inside an `UnsafeCell`, so writing through a pointer derived from the
            // shared slice is allowed; nobody else accesses them now (the caller's contract).
            unsafe { std::ptr::copy_nonoverlapping(vector.as_ptr(), span.as_ptr().cast::<f32>().cast_mut(), n) };
        }
        #[cfg(vecindex_loom)]
        for (cell, &x) in span.iter().zip(vector) {
            // SAFETY: the caller's contract.
            cell.with_mut(|p| unsafe { *p = x });
        }
    }

    /// Runs `f` on the vectors of rows `rows`, one after another.
    ///
    /// # Safety
    /// Every row in `rows` is published: its `ready` flag was loaded `true` with `Acquire`.
    unsafe fn with_vectors<R>(&self, rows: Range<usize>, f: impl FnOnce(&[f32]) -> R) -> R {
        let span = &self.vectors[rows.start * self.dim..rows.end * self.dim];
        #[cfg(not(vecindex_loom))]
        {
            // SAFETY: the rows are published, so their spans are complete and never written again
            // (H2); the cells are laid out as `f32`s (`repr(transparent)`).
            f(unsafe { std::slice::from_raw_parts(span.as_ptr().cast::<f32>(), span.len()) })
        }
        #[cfg(vecindex_loom)]
        {
            // SAFETY: as above; loom checks each cell's accesses, so they are read one by one.
            let copied: Vec<f32> = span.iter().map(|cell| cell.with(|p| unsafe { *p })).collect();
            f(&copied)
        }
    }

    /// Whether every reserved row has been published. Only meaningful once the head is frozen
    /// (no longer receiving new reservations): then no row changes again (H3).
    pub fn is_settled(&self) -> bool {
        // Acquire: pairs with the Release increments in `try_append`.
        self.published.load(Ordering::Acquire) >= self.len()
    }

    /// Whether row `index` is published.
    #[inline]
    fn is_ready(&self, index: usize) -> bool {
        // Acquire: pairs with the Release store in `try_append` (H2).
        self.slots.get(index).is_some_and(|slot| slot.ready.load(Ordering::Acquire))
    }

    /// The metadata of row `index`, which must be published.
    #[inline]
    fn meta(&self, index: usize) -> Option<&Arc<RowMeta>> {
        // SAFETY: the caller saw the slot's `ready` flag set, so its metadata is complete and
        // never written again (H2).
        self.slots.get(index)?.meta.with(|cell| unsafe { (*cell).as_ref() })
    }

    /// Calls `f` with each published row: its index, metadata and vector.
    pub fn for_each(&self, mut f: impl FnMut(usize, &Arc<RowMeta>, &[f32])) {
        for index in 0..self.len() {
            self.with_row(index, |meta, vector| f(index, meta, vector));
        }
    }

    /// Runs `f` on row `index` (its metadata and vector) if it is published.
    pub fn with_row<R>(&self, index: usize, f: impl FnOnce(&Arc<RowMeta>, &[f32]) -> R) -> Option<R> {
        if !self.is_ready(index) {
            return None;
        }
        let meta = self.meta(index)?;
        // SAFETY: `ready` was seen set just above.
        Some(unsafe { self.with_vectors(index..index + 1, |vector| f(meta, vector)) })
    }

    /// Whether row `index`, published with metadata `meta`, is visible and live in `view`.
    #[inline]
    fn is_visible(&self, index: usize, meta: &RowMeta, view: &ReadView) -> bool {
        view.includes(meta.add_seq) && !self.tombstones.is_dead_in(index, view)
    }

    /// Calls `f` with each row that is visible and live in `view`.
    pub fn for_each_visible(&self, view: &ReadView, mut f: impl FnMut(usize, RowRef<'_>, &[f32])) {
        self.for_each(|index, meta, vector| {
            if self.is_visible(index, meta, view) {
                f(index, RowRef::Owned(meta), vector);
            }
        });
    }

    /// Offers to `top` every row visible and live in `view` that `options` accepts, as a sealed
    /// segment's scan does: the published rows from the first are scored a block at a time
    /// straight from the arena, and only a row whose score could enter `top` is checked for
    /// visibility, deletes and filters. The result is the one `for_each_visible` +
    /// `TopK::offer` gives.
    pub fn scan(&self, query: &[f32], view: &ReadView, options: &SearchOptions, top: &mut TopK) {
        self.scan_from(0, query, view, options, top);
    }

    /// [`Head::scan`] of the rows from `first` on.
    pub fn scan_from(&self, first: usize, query: &[f32], view: &ReadView, options: &SearchOptions, top: &mut TopK) {
        /// Rows per block: the scores fit in 1 KiB of stack.
        const BLOCK: usize = 256;
        let len = self.len();
        // Writers publish in about the order they reserve: the rows before the first one not
        // published yet are nearly all of them.
        let ready = (first..len).find(|&index| !self.is_ready(index)).unwrap_or(len);
        let offer = |top: &mut TopK, index: usize, score: f32| {
            let meta = self.meta(index).filter(|meta| self.is_visible(index, meta, view)).map(RowRef::Owned);
            if let Some(meta) = meta.filter(|&m| options.accepts(m)) {
                self.with_row(index, |_, vector| top.offer_scored(meta, vector, score));
            }
        };
        let mut scores = [0.0f32; BLOCK];
        for start in (first.min(ready)..ready).step_by(BLOCK) {
            let end = (start + BLOCK).min(ready);
            let scores = &mut scores[..end - start];
            // SAFETY: every row below `ready` was seen published above.
            unsafe { self.with_vectors(start..end, |vectors| score_rows(top.metric(), query, vectors, scores)) };
            for (offset, &score) in scores.iter().enumerate() {
                if top.may_keep(score) {
                    offer(top, start + offset, score);
                }
            }
        }
        for index in ready..len {
            if let Some(score) = self.with_row(index, |_, vector| top.metric().score(query, vector)) {
                offer(top, index, score);
            }
        }
    }

    /// Encodes this head, once settled, into a sealed segment's rows: same id, same row numbers, shared tombstones.
    ///
    /// Returns `None` if some reserved row is not published yet (call again later).
    pub fn seal(&self, dim: usize) -> Option<SegmentData> {
        // An injected bug for the loom models seals it unsettled, skipping unpublished rows.
        if !bug!("seal_unsettled") && !self.is_settled() {
            return None;
        }
        let mut metas = Vec::with_capacity(self.len());
        let mut vectors = Vec::with_capacity(self.len() * dim);
        for index in 0..self.len() {
            let copied = self.with_row(index, |meta, vector| {
                metas.push(meta.clone());
                vectors.extend_from_slice(vector);
            });
            if !bug!("seal_unsettled") {
                copied?;
            }
        }
        let rows = metas.iter().map(RowRef::Owned).zip(vectors.chunks_exact(dim.max(1)));
        let encoded = SealedRows::encode(dim, rows);
        Some(SegmentData::with_fields(self.id(), encoded, self.tombstones().clone()))
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
        let head = Head::new(SegmentId(0), 4, 1);
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
        let head = Head::new(SegmentId(0), 1, 1);
        assert!(head.try_append(row("a")).is_ok());
        assert!(!head.close());
        assert_eq!(head.len(), 1);
        assert!(head.is_settled());
    }
}
