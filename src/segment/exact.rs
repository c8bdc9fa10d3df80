//! The rows of a sealed segment, and the exact (brute-force, "plain") scan over them.

use crate::ids::SegmentId;
use crate::metric::score_rows;
use crate::query::{SearchOptions, TopK};
use crate::rows::RowRef;
use crate::rows::Tombstones;
use crate::rows::{ArchivedStoredRow, SealedRows};
use crate::segment::fields::FieldIndex;
use crate::segment::prepared::SegmentFilter;
use crate::seq::{ReadView, SeqNo};
use crate::sync::{Arc, OnceLock};

/// Sealed rows (in their file format: owned bytes after sealing, a mapping after open; one
/// contiguous vector array, so a scan streams through memory) and their tombstones. Shared by
/// every version of one sealed segment (exact, then FAISS-indexed).
pub struct SegmentData {
    id: SegmentId,
    rows: Arc<SealedRows>,
    tombstones: Arc<Tombstones>,
    /// Made by the first filtered search that needs them, or at sealing (`with_fields`).
    fields: OnceLock<FieldIndex>,
}

impl SegmentData {
    /// Rows from elsewhere: a file opened from disk, say. `tombstones` has one slot per row.
    /// The field columns are made when a filtered search first needs them.
    pub fn new(id: SegmentId, rows: Arc<SealedRows>, tombstones: Arc<Tombstones>) -> Self {
        Self { id, rows, tombstones, fields: OnceLock::new() }
    }

    /// [`SegmentData::new`], with the field columns made now if some row has metadata: for a
    /// segment just sealed or merged (by a background thread), so that the first filtered search
    /// does not make them.
    pub fn with_fields(id: SegmentId, rows: Arc<SealedRows>, tombstones: Arc<Tombstones>) -> Self {
        let data = Self::new(id, rows, tombstones);
        if data.rows.rows().iter().any(|row| !row.metadata.is_empty()) {
            data.fields();
        }
        data
    }

    /// The field columns of the rows ([`crate::segment::fields`]).
    pub fn fields(&self) -> &FieldIndex {
        self.fields.get_or_init(|| FieldIndex::build(&self.rows))
    }

    /// `options`' filters compiled against the field columns; `None` if they accept every row.
    pub fn filter<'a>(&'a self, options: &'a SearchOptions) -> Option<SegmentFilter<'a>> {
        if options.accepts_all() {
            return None;
        }
        SegmentFilter::new(&self.rows, self.fields(), options)
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

    /// Bytes of the rows file (vectors, row metadata, ids) and of the field columns, if made.
    pub fn bytes(&self) -> usize {
        self.rows.file_bytes().len() + self.fields.get().map_or(0, FieldIndex::bytes)
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
        self.scan_filtered(first, query, view, self.filter(options).as_ref(), top);
    }

    /// [`SegmentData::scan_from`] with the filters compiled (`None`: every row passes). Where
    /// the field columns list fewer rows than the scan would read, only those are scored.
    pub fn scan_filtered(
        &self,
        first: usize,
        query: &[f32],
        view: &ReadView,
        filter: Option<&SegmentFilter<'_>>,
        top: &mut TopK,
    ) {
        /// Rows per block: the scores fit in 1 KiB of stack.
        const BLOCK: usize = 256;
        if let Some(filter) = filter {
            if filter.rejects_all() {
                return;
            }
            // Listed rows are read one by one, a block's rows in one pass: a listed row costs a
            // few times a streamed one.
            if filter.listed().is_some_and(|listed| listed.saturating_mul(4) < self.len().saturating_sub(first)) {
                let rows = filter.candidates();
                let from = rows.partition_point(|&row| (row as usize) < first);
                self.score_rows(rows[from..].iter().map(|&row| row as usize), query, view, filter, top);
                return;
            }
        }
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
                if filter.is_none_or(|f| f.passes(index)) {
                    let vector = &vectors[offset * dim..(offset + 1) * dim];
                    top.offer_scored(RowRef::Sealed { rows: &self.rows, index: index as u32, row }, vector, score);
                }
            }
        }
    }

    /// Offers to `top` each of `rows` that is visible and live in `view` and passes `filter`,
    /// cheapest check first: the filter (a column read), then the score, and only for a row
    /// whose score could be kept, its visibility (as [`SegmentData::scan_from`] does).
    pub fn score_rows(
        &self,
        rows: impl Iterator<Item = usize>,
        query: &[f32],
        view: &ReadView,
        filter: &SegmentFilter<'_>,
        top: &mut TopK,
    ) {
        let metas = self.rows.rows();
        let all_visible = view.covers(self.max_add_seq().saturating_add(1)) && self.tombstones.dead_count() == 0;
        for index in rows {
            if !filter.passes(index) {
                continue;
            }
            let Some(vector) = self.rows.vector(index) else { continue };
            let score = top.metric().score(query, vector);
            if !top.may_keep(score) {
                continue;
            }
            if let Some(row) = metas.get(index)
                && (all_visible || self.row_visible(index, row, view))
            {
                top.offer_scored(RowRef::Sealed { rows: &self.rows, index: index as u32, row }, vector, score);
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
