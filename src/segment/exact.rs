//! The rows of a sealed segment, and the exact (brute-force, "plain") scan over them.

use crate::chunk::RowMeta;
use crate::head::Head;
use crate::segment::SegmentId;
use crate::seq::{ReadView, SeqNo};
use crate::sync::Arc;
use crate::tombstones::Tombstones;

/// Immutable rows plus one contiguous vector array (a scan streams through memory), and the
/// rows' tombstones. Shared by every version of one sealed segment (exact, then FAISS-indexed).
pub struct SegmentData {
    id: SegmentId,
    dim: usize,
    rows: Vec<Arc<RowMeta>>,
    vectors: Vec<f32>,
    tombstones: Arc<Tombstones>,
    /// The highest add seq of any row: a view that covers the next seq sees every row added.
    max_add_seq: SeqNo,
}

impl SegmentData {
    /// Copies a settled head: same id, same row numbers, shared tombstones.
    ///
    /// Returns `None` if some reserved row is not published yet (call again later).
    pub fn seal(head: &Head, dim: usize) -> Option<Self> {
        if !head.is_settled() {
            return None;
        }
        let mut rows = Vec::with_capacity(head.len());
        let mut vectors = Vec::with_capacity(head.len() * dim);
        let mut complete = true;
        for index in 0..head.len() {
            let copied = head.with_row(index, |row| {
                rows.push(row.meta.clone());
                vectors.extend_from_slice(&row.vector);
            });
            complete &= copied.is_some();
        }
        complete.then(|| Self::assemble(head.id(), dim, rows, vectors, head.tombstones().clone()))
    }

    /// Rows from elsewhere (a snapshot, a merge); `vectors` holds `rows.len() * dim` values.
    pub fn from_parts(
        id: SegmentId,
        dim: usize,
        rows: Vec<Arc<RowMeta>>,
        vectors: Vec<f32>,
        tombstones: Tombstones,
    ) -> Self {
        Self::assemble(id, dim, rows, vectors, Arc::new(tombstones))
    }

    fn assemble(
        id: SegmentId,
        dim: usize,
        rows: Vec<Arc<RowMeta>>,
        vectors: Vec<f32>,
        tombstones: Arc<Tombstones>,
    ) -> Self {
        debug_assert_eq!(rows.len() * dim, vectors.len());
        let max_add_seq = rows.iter().map(|r| r.add_seq).max().unwrap_or(0);
        Self { id, dim, rows, vectors, tombstones, max_add_seq }
    }

    pub fn id(&self) -> SegmentId {
        self.id
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn max_add_seq(&self) -> SeqNo {
        self.max_add_seq
    }

    pub fn tombstones(&self) -> &Arc<Tombstones> {
        &self.tombstones
    }

    /// All vectors, row after row.
    pub fn vectors(&self) -> &[f32] {
        &self.vectors
    }

    /// Bytes held by vectors and row metadata (strings approximately).
    pub fn bytes(&self) -> usize {
        let meta: usize = self
            .rows
            .iter()
            .map(|r| {
                std::mem::size_of::<RowMeta>()
                    + r.chunk_id.len()
                    + r.doc_id.len()
                    + r.text.len()
                    + r.metadata.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
            })
            .sum();
        self.vectors.len() * std::mem::size_of::<f32>() + meta
    }

    pub fn row(&self, index: usize) -> Option<(&Arc<RowMeta>, &[f32])> {
        let meta = self.rows.get(index)?;
        Some((meta, &self.vectors[index * self.dim..(index + 1) * self.dim]))
    }

    /// Whether row `index` is visible and live in `view`.
    #[inline]
    pub fn is_visible(&self, index: usize, view: &ReadView) -> bool {
        self.rows.get(index).is_some_and(|meta| view.includes(meta.add_seq)) && !self.tombstones.is_dead_in(index, view)
    }

    /// Calls `f` with every row visible and live in `view`.
    pub fn for_each_visible(&self, view: &ReadView, mut f: impl FnMut(usize, &Arc<RowMeta>, &[f32])) {
        let vectors = self.vectors.chunks_exact(self.dim.max(1));
        // Fast path: the view sees every add and no delete has happened, so no row needs its
        // metadata read to decide (a delete the view includes finished before the view was
        // taken, and counted itself in `dead_count` before finishing).
        if view.covers(self.max_add_seq.saturating_add(1)) && self.tombstones.dead_count() == 0 {
            for (index, (meta, vector)) in self.rows.iter().zip(vectors).enumerate() {
                f(index, meta, vector);
            }
            return;
        }
        for (index, (meta, vector)) in self.rows.iter().zip(vectors).enumerate() {
            if view.includes(meta.add_seq) && !self.tombstones.is_dead_in(index, view) {
                f(index, meta, vector);
            }
        }
    }
}
