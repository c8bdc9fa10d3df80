//! The exact (brute-force, "plain") sealed segment: rows plus one contiguous vector array.

use crate::chunk::RowMeta;
use crate::head::Head;
use crate::segment::SegmentId;
use crate::seq::ReadView;
use crate::sync::Arc;
use crate::tombstones::Tombstones;

/// An immutable block of rows searched by scanning. Its vectors are contiguous, so a scan streams
/// through memory.
pub struct ExactSegment {
    id: SegmentId,
    dim: usize,
    rows: Vec<Arc<RowMeta>>,
    vectors: Vec<f32>,
    tombstones: Arc<Tombstones>,
}

impl ExactSegment {
    /// Seals a settled head: same id, same row numbers, shared tombstones.
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
        complete.then(|| Self {
            id: head.id(),
            dim,
            rows,
            vectors,
            tombstones: head.tombstones().clone(),
        })
    }

    /// A segment from loaded rows (`vectors` holds `rows.len() * dim` values).
    pub fn from_parts(
        id: SegmentId,
        dim: usize,
        rows: Vec<Arc<RowMeta>>,
        vectors: Vec<f32>,
        tombstones: Tombstones,
    ) -> Self {
        debug_assert_eq!(rows.len() * dim, vectors.len());
        Self {
            id,
            dim,
            rows,
            vectors,
            tombstones: Arc::new(tombstones),
        }
    }

    pub fn id(&self) -> SegmentId {
        self.id
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn tombstones(&self) -> &Arc<Tombstones> {
        &self.tombstones
    }

    /// Bytes held by vectors and row metadata (approximate for strings).
    pub fn bytes(&self) -> usize {
        let meta: usize = self
            .rows
            .iter()
            .map(|r| {
                r.chunk_id.len()
                    + r.doc_id.len()
                    + r.text.len()
                    + r.metadata
                        .iter()
                        .map(|(k, v)| k.len() + v.len())
                        .sum::<usize>()
            })
            .sum();
        self.vectors.len() * std::mem::size_of::<f32>() + meta
    }

    pub fn row(&self, index: usize) -> Option<(&Arc<RowMeta>, &[f32])> {
        let meta = self.rows.get(index)?;
        Some((
            meta,
            &self.vectors[index * self.dim..(index + 1) * self.dim],
        ))
    }

    pub fn for_each_visible(
        &self,
        view: &ReadView,
        mut f: impl FnMut(usize, &Arc<RowMeta>, &[f32]),
    ) {
        let vectors = self.vectors.chunks_exact(self.dim.max(1));
        for (index, (meta, vector)) in self.rows.iter().zip(vectors).enumerate() {
            if view.includes(meta.add_seq) && !self.tombstones.is_dead_in(index, view) {
                f(index, meta, vector);
            }
        }
    }
}
