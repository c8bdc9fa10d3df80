//! Sealed segments: immutable blocks of rows, searched with `&self` from any number of threads.
//!
//! A head, once full and settled, is sealed into a segment with the *same* [`SegmentId`], the
//! same row numbers and the same [`Tombstones`](crate::rows::tombstones::Tombstones), so a location
//! `(segment, row)` stays valid across sealing and a delete can land on either. A segment first
//! exists as exact (its rows are scanned); with the `faiss` feature and a FAISS factory string
//! configured, the background worker then builds a FAISS index over its vectors and publishes a
//! new version of the segment that shares the same [`SegmentData`] and adds the index.

#[cfg(feature = "faiss")]
pub mod cpu;
pub mod exact;
#[cfg(feature = "faiss")]
pub mod faiss;
pub mod fields;
pub(crate) mod graph;
#[cfg(feature = "faiss")]
mod groups;

use std::time::Duration;

use crate::ids::SegmentId;
use crate::query::{SearchOptions, TopK};
use crate::rows::Tombstones;
use crate::seq::ReadView;
use crate::sync::Arc;

pub mod prepared;
mod settings;

pub use exact::SegmentData;
pub use settings::{SegmentIndex, SegmentKind};

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
    #[cfg_attr(not(feature = "faiss"), allow(dead_code))]
    pub fn is_indexed(&self) -> bool {
        #[cfg(feature = "faiss")]
        return self.ann.is_some();
        #[cfg(not(feature = "faiss"))]
        false
    }

    /// How it is searched: through its FAISS index, or exactly.
    pub fn kind(&self) -> SegmentKind {
        #[cfg(feature = "faiss")]
        if let Some(ann) = &self.ann {
            return SegmentKind::Faiss(ann.factory().to_owned());
        }
        SegmentKind::Exact
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
