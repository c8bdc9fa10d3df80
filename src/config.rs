//! Index configuration.

use crate::error::{Error, Result};
use crate::merge::MergePolicy;
use crate::metric::Metric;

/// How an index is built. `dim` is required; everything else has a default.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexConfig {
    /// Vector dimension; every vector added or searched must have it.
    pub dim: usize,
    /// Default: [`Metric::Cosine`].
    pub metric: Metric,
    /// Rows per head. A full head is frozen at once (writers move to a fresh head) and sealed
    /// into a segment off the write path. Default 4096: a head is scanned exactly on every
    /// search, so it should stay small; sealing it costs one copy of its vectors.
    pub head_capacity: usize,
    /// Seal frozen heads on a background thread owned by the index (default). When false, call
    /// [`VectorIndex::maintain`](crate::VectorIndex::maintain) yourself; until then frozen heads
    /// are searched exactly, so nothing is ever invisible.
    pub background: bool,
    /// How many writers may be inside a mutation at once (default 64); more wait for a slot.
    pub writer_slots: usize,
    /// Most distinct terms the concept vocabulary keeps (default 50 000).
    pub vocabulary_limit: usize,
    /// When sealed segments are merged and vacuumed.
    pub merge: MergePolicy,
    /// The index built over each sealed segment.
    pub segment_index: SegmentIndex,
}

/// The index each sealed segment gets, built in the background off the write path.
///
/// Defaults, for 10k-10M chunks of 384-d embeddings: `"HNSW32"` with efConstruction 80 and
/// efSearch 64. HNSW answers a query in roughly logarithmic time with recall near 0.95-0.99 at
/// these settings and needs no training (an IVF index needs a training set per segment, and small
/// segments train badly); M=32 costs 256 bytes of graph per vector, small beside a 1.5 KB 384-d
/// vector. Segments below `min_rows` rows stay exact: scanning a few thousand rows is as fast as
/// walking a graph, and skips the build. Raise `ef_search` (or pass `SearchOptions::ef_search`)
/// for recall, lower it for speed.
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentIndex {
    /// `"exact"` (scan, no FAISS), or a FAISS factory string: `"Flat"`, `"HNSW32"`,
    /// `"HNSW32,SQ8"`, `"IVF1024,Flat"`, ... The default is `"HNSW32"` with the `faiss` feature
    /// and `"exact"` without it.
    pub factory: String,
    /// HNSW graph quality at build time (default 80).
    pub ef_construction: usize,
    /// HNSW candidate list at query time (default 64); per query: `SearchOptions::ef_search`.
    pub ef_search: usize,
    /// IVF lists probed at query time (default 16); per query: `SearchOptions::nprobe`.
    pub nprobe: usize,
    /// Segments with fewer rows stay exact (default 2048).
    pub min_rows: usize,
    /// OpenMP threads for building an index (default 0: OpenMP's default, all cores; or set
    /// `OMP_NUM_THREADS`). Builds run on the background worker, off every caller's path.
    pub build_threads: usize,
    /// OpenMP threads per query (default 1). Many threads search at once; giving each query a
    /// team of threads would oversubscribe the cores. Raise it only for few, large queries.
    pub search_threads: usize,
}

impl Default for SegmentIndex {
    fn default() -> Self {
        Self {
            factory: if cfg!(feature = "faiss") { "HNSW32" } else { "exact" }.to_owned(),
            ef_construction: 80,
            ef_search: 64,
            nprobe: 16,
            min_rows: 2048,
            build_threads: 0,
            search_threads: 1,
        }
    }
}

impl SegmentIndex {
    /// Exact (scanned) segments.
    pub fn exact() -> Self {
        Self { factory: "exact".to_owned(), ..Self::default() }
    }

    /// A FAISS factory string, other settings at their defaults.
    pub fn faiss(factory: impl Into<String>) -> Self {
        Self { factory: factory.into(), ..Self::default() }
    }

    pub fn is_exact(&self) -> bool {
        self.factory == "exact"
    }
}

impl IndexConfig {
    /// Defaults for vectors of dimension `dim`.
    pub fn new(dim: usize) -> Self {
        Self {
            dim,
            metric: Metric::Cosine,
            head_capacity: 4096,
            background: true,
            writer_slots: 64,
            vocabulary_limit: 50_000,
            merge: MergePolicy::default(),
            segment_index: SegmentIndex::default(),
        }
    }

    pub fn metric(mut self, metric: Metric) -> Self {
        self.metric = metric;
        self
    }

    pub fn head_capacity(mut self, rows: usize) -> Self {
        self.head_capacity = rows;
        self
    }

    pub fn background(mut self, on: bool) -> Self {
        self.background = on;
        self
    }

    pub fn segment_index(mut self, segment_index: SegmentIndex) -> Self {
        self.segment_index = segment_index;
        self
    }

    pub fn merge_policy(mut self, merge: MergePolicy) -> Self {
        self.merge = merge;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |reason: &str| Err(Error::InvalidConfig { reason: reason.to_owned() });
        if self.dim == 0 {
            return bad("dim must be at least 1");
        }
        if self.head_capacity == 0 || self.head_capacity > u32::MAX as usize {
            return bad("head_capacity must be between 1 and 2^32-1");
        }
        if self.writer_slots == 0 {
            return bad("writer_slots must be at least 1");
        }
        if !self.segment_index.is_exact() {
            #[cfg(feature = "faiss")]
            crate::segment::faiss::FaissIndex::check_factory(&self.segment_index.factory, self.metric, self.dim)?;
            #[cfg(not(feature = "faiss"))]
            return bad("a FAISS segment index needs the `faiss` feature; use SegmentIndex::exact()");
        }
        Ok(())
    }
}
