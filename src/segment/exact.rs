//! The rows of a sealed segment, and the exact (brute-force, "plain") scan over them.

use crate::ids::SegmentId;
use crate::metric::score_rows;
use crate::query::{SearchOptions, TopK};
use crate::rows::RowRef;
use crate::rows::Tombstones;
use crate::rows::{ArchivedStoredRow, SealedRows};
use crate::seq::{ReadView, SeqNo};
use crate::sync::Arc;

/// Sealed rows (in their file format: owned bytes after sealing, a mapping after open; one
/// contiguous vector array, so a scan streams through memory) and their tombstones. Shared by
/// every version of one sealed segment (exact, then FAISS-indexed).
pub struct SegmentData {
    id: SegmentId,
    rows: Arc<SealedRows>,
    tombstones: Arc<Tombstones>,
}

impl SegmentData {
    /// Rows from elsewhere: a merge, or a file opened from disk. `tombstones` has one slot per row.
    pub fn new(id: SegmentId, rows: Arc<SealedRows>, tombstones: Arc<Tombstones>) -> Self {
        Self { id, rows, tombstones }
    }

    pub fn id(&self) -> SegmentId {
        self.id
    }

    #[cfg_attr(not(feature = "faiss"), allow(dead_code))]
    pub fn dim(&self) -> usize {
        self.rows.dim()
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// The highest add seq of any row: a view that covers the next seq sees every row added.
    pub fn max_add_seq(&self) -> SeqNo {
        self.rows.max_add_seq()
    }

    pub fn tombstones(&self) -> &Arc<Tombstones> {
        &self.tombstones
    }

    /// The rows file.
    pub fn rows(&self) -> &Arc<SealedRows> {
        &self.rows
    }

    /// All vectors, row after row.
    #[cfg_attr(not(feature = "faiss"), allow(dead_code))]
    pub fn vectors(&self) -> &[f32] {
        self.rows.vectors()
    }

    /// Bytes of the rows file (vectors, row metadata, ids).
    pub fn bytes(&self) -> usize {
        self.rows.file_bytes().len()
    }

    pub fn row(&self, index: usize) -> Option<(RowRef<'_>, &[f32])> {
        Some((RowRef::sealed(&self.rows, index)?, self.rows.vector(index)?))
    }

    /// Whether row `index` is visible and live in `view`.
    #[inline]
    #[cfg_attr(not(feature = "faiss"), allow(dead_code))]
    pub fn is_visible(&self, index: usize, view: &ReadView) -> bool {
        self.rows.row(index).is_some_and(|row| self.row_visible(index, row, view))
    }

    /// Whether `row`, the metadata of row `index`, is visible and live in `view`.
    #[inline]
    fn row_visible(&self, index: usize, row: &ArchivedStoredRow, view: &ReadView) -> bool {
        view.includes(row.add_seq.to_native()) && !self.tombstones.is_dead_in(index, view)
    }

    /// Offers to `top` every row visible and live in `view` that `options` accepts, scoring
    /// first: rows are scored a block at a time in one tight loop, and only a row whose score
    /// could enter `top` is checked for visibility, deletes and filters. Every row is still
    /// scored, so the result is the one `for_each_visible` + `TopK::offer` gives.
    pub fn scan(&self, query: &[f32], view: &ReadView, options: &SearchOptions, top: &mut TopK) {
        self.scan_from(0, query, view, options, top);
    }

    /// [`SegmentData::scan`] of the rows from `first` on.
    pub fn scan_from(&self, first: usize, query: &[f32], view: &ReadView, options: &SearchOptions, top: &mut TopK) {
        /// Rows per block: the scores fit in 1 KiB of stack.
        const BLOCK: usize = 256;
        let dim = self.rows.dim().max(1);
        let metas = self.rows.rows();
        // As in `for_each_visible`: no row needs its add seq or tombstone read.
        let all_visible = view.covers(self.max_add_seq().saturating_add(1)) && self.tombstones.dead_count() == 0;
        let mut scores = [0.0f32; BLOCK];
        let vectors = self.rows.vectors();
        let first = first.min(vectors.len() / dim);
        for (block, vectors) in vectors[first * dim..].chunks(BLOCK * dim).enumerate() {
            let scores = &mut scores[..vectors.len() / dim];
            score_rows(top.metric(), query, vectors, scores);
            for (offset, &score) in scores.iter().enumerate() {
                if !top.may_keep(score) {
                    continue;
                }
                let index = first + block * BLOCK + offset;
                let Some(row) = metas.get(index) else { break };
                if !all_visible && !self.row_visible(index, row, view) {
                    continue;
                }
                let meta = RowRef::Sealed { rows: &self.rows, index: index as u32, row };
                if options.accepts(meta) {
                    top.offer_scored(meta, score);
                }
            }
        }
    }

    /// Calls `f` with every row visible and live in `view`.
    pub fn for_each_visible(&self, view: &ReadView, mut f: impl FnMut(usize, RowRef<'_>, &[f32])) {
        let dim = self.rows.dim().max(1);
        let vectors = self.rows.vectors().chunks_exact(dim);
        let rows = self.rows.rows().iter().zip(vectors).enumerate();
        // Fast path: the view sees every add and no delete has happened, so no row needs its
        // add seq read to decide (a delete the view includes finished before the view was
        // taken, and counted itself in `dead_count` before finishing).
        let all_visible = view.covers(self.max_add_seq().saturating_add(1)) && self.tombstones.dead_count() == 0;
        for (index, (row, vector)) in rows {
            if all_visible || self.row_visible(index, row, view) {
                f(index, RowRef::Sealed { rows: &self.rows, index: index as u32, row }, vector);
            }
        }
    }
}
