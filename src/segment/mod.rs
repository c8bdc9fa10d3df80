//! Sealed segments: immutable blocks of rows, searched with `&self` from any number of threads.
//!
//! A head, once full and settled, is sealed into a segment with the *same* [`SegmentId`], the
//! same row numbers and the same [`Tombstones`](crate::tombstones::Tombstones), so a location
//! `(segment, row)` stays valid across sealing and a delete can land on either. A segment first
//! exists as exact (its rows are scanned); with the `faiss` feature and a FAISS factory string
//! configured, the background worker then builds a FAISS index over its vectors and publishes a
//! new version of the segment that shares the same [`SegmentData`] and adds the index.

pub mod exact;
#[cfg(feature = "faiss")]
pub mod faiss;
#[cfg(feature = "faiss")]
mod groups;

use std::time::Duration;

use crate::head::Head;
use crate::row::RowRef;
use crate::search::{SearchOptions, TopK};
use crate::seq::ReadView;
use crate::sync::Arc;
use crate::tombstones::Tombstones;

pub use exact::SegmentData;

/// Identifies a head and the segment sealed from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SegmentId(pub u64);

/// Where a row lives: which head or segment, and its index there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RowLoc {
    pub segment: SegmentId,
    pub row: u32,
}

/// One version of a sealed segment: its rows, and (with the `faiss` feature) an index over them.
pub struct Segment {
    data: Arc<SegmentData>,
    #[cfg(feature = "faiss")]
    ann: Option<Arc<faiss::FaissIndex>>,
}

impl Segment {
    /// A segment searched by scanning.
    pub fn exact(data: SegmentData) -> Self {
        Self::from_data(Arc::new(data))
    }

    fn from_data(data: Arc<SegmentData>) -> Self {
        Self {
            data,
            #[cfg(feature = "faiss")]
            ann: None,
        }
    }

    /// The same rows with a FAISS index over them.
    #[cfg(feature = "faiss")]
    pub fn with_ann(&self, ann: faiss::FaissIndex) -> Self {
        Self { data: self.data.clone(), ann: Some(Arc::new(ann)) }
    }

    /// The FAISS index, if one is attached.
    #[cfg(feature = "faiss")]
    pub fn ann(&self) -> Option<&faiss::FaissIndex> {
        self.ann.as_deref()
    }

    /// Never an index without the `faiss` feature.
    #[cfg(not(feature = "faiss"))]
    pub fn ann(&self) -> Option<&std::convert::Infallible> {
        None
    }

    pub fn data(&self) -> &Arc<SegmentData> {
        &self.data
    }

    pub fn id(&self) -> SegmentId {
        self.data.id()
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn tombstones(&self) -> &Arc<Tombstones> {
        self.data.tombstones()
    }

    /// Whether a FAISS index is attached.
    pub fn is_indexed(&self) -> bool {
        #[cfg(feature = "faiss")]
        return self.ann.is_some();
        #[cfg(not(feature = "faiss"))]
        false
    }

    /// "exact", or the FAISS factory string of the attached index.
    pub fn kind(&self) -> String {
        #[cfg(feature = "faiss")]
        if let Some(ann) = &self.ann {
            return ann.factory().to_owned();
        }
        "exact".to_owned()
    }

    /// Bytes of rows, vectors and the FAISS index.
    pub fn bytes(&self) -> usize {
        #[cfg(feature = "faiss")]
        if let Some(ann) = &self.ann {
            return self.data.bytes() + ann.bytes();
        }
        self.data.bytes()
    }

    /// How long building the FAISS index took, if there is one.
    pub fn build_time(&self) -> Option<Duration> {
        #[cfg(feature = "faiss")]
        if let Some(ann) = &self.ann {
            return Some(ann.build_time());
        }
        None
    }

    /// How many vectors the FAISS index holds, if there is one: the rows, or fewer when some
    /// rows repeat a vector (they share one graph node).
    pub fn indexed_vectors(&self) -> Option<usize> {
        #[cfg(feature = "faiss")]
        if let Some(ann) = &self.ann {
            return Some(ann.indexed_vectors());
        }
        None
    }

    /// Offers this segment's best rows for `query` (prepared) to `top` through its FAISS
    /// index. Returns false, having offered nothing, if there is no index or FAISS failed:
    /// the caller then scans.
    pub fn search_indexed(&self, query: &[f32], view: &ReadView, options: &SearchOptions, top: &mut TopK) -> bool {
        #[cfg(feature = "faiss")]
        if let Some(ann) = &self.ann {
            match ann.search_into(&self.data, query, view, options, top) {
                Ok(()) => return true,
                Err(e) => tracing::warn!(segment = self.id().0, error = %e, "FAISS search failed; scanning instead"),
            }
        }
        let _ = (query, view, options, top);
        false
    }
}

/// Either kind of row container an epoch holds. Dispatch happens once per container, not per row.
#[derive(Clone, Copy)]
pub enum Source<'a> {
    Head(&'a Head),
    Sealed(&'a Segment),
}

impl<'a> Source<'a> {
    pub fn id(self) -> SegmentId {
        match self {
            Source::Head(h) => h.id(),
            Source::Sealed(s) => s.id(),
        }
    }

    pub fn tombstones(self) -> &'a Arc<Tombstones> {
        match self {
            Source::Head(h) => h.tombstones(),
            Source::Sealed(s) => s.tombstones(),
        }
    }

    /// Rows in this container (published or not, live or not).
    pub fn len(self) -> usize {
        match self {
            Source::Head(h) => h.len(),
            Source::Sealed(s) => s.len(),
        }
    }

    /// Runs `f` on a row's metadata and vector, if the row exists (and, in a head, is published).
    pub fn with_row<R>(self, row: usize, f: impl FnOnce(RowRef<'_>, &[f32]) -> R) -> Option<R> {
        match self {
            Source::Head(h) => h.with_row(row, |r| f(RowRef::Owned(&r.meta), &r.vector)),
            Source::Sealed(s) => s.data.row(row).map(|(meta, vector)| f(meta, vector)),
        }
    }

    /// Calls `f` with every row that is visible and live in `view`.
    pub fn for_each_visible(self, view: &ReadView, f: impl FnMut(usize, RowRef<'_>, &[f32])) {
        match self {
            Source::Head(h) => h.for_each_visible(view, f),
            Source::Sealed(s) => s.data.for_each_visible(view, f),
        }
    }

    /// Offers the best rows of this container for `query` to `top`: through the FAISS index
    /// of an indexed segment, otherwise by scanning.
    pub fn search(self, query: &[f32], view: &ReadView, options: &SearchOptions, top: &mut TopK) {
        match self {
            Source::Sealed(segment) => {
                if !segment.search_indexed(query, view, options, top) {
                    segment.data.scan(query, view, options, top);
                }
            }
            Source::Head(head) => head.for_each_visible(view, |_, meta, vector| {
                if options.accepts(meta) {
                    top.offer(query, meta, vector);
                }
            }),
        }
    }
}
